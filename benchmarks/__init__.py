"""Ingest benchmark (not a test): finops-kit vs a bare DuckDB read+write vs focus-converter 1.0.0."""
