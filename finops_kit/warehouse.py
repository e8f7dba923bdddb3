"""The embedded warehouse: one DuckDB file holding the FOCUS table, the ingest log and the reconciliation proof.

Why DuckDB: set-based SQL over tens of millions of line items on a laptop, exact DECIMAL sums, parquet and CSV
readers, and a single file a notebook can open read-only while nobody is ingesting.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .schema import LINEAGE_COLUMNS, MONEY, table_ddl

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
FOCUS_TABLE = "focus"

_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS ingest_log (
  ingest_id VARCHAR PRIMARY KEY,
  started_at TIMESTAMP,
  finished_at TIMESTAMP,
  source_format VARCHAR,
  inputs JSON,           -- what the user asked for (paths, globs, s3:// URLs)
  files JSON,            -- [{{path, size, sha256}}] of the files read
  skipped JSON,          -- [{{path, reason}}] e.g. superseded S3 assemblies
  source_keys JSON,      -- replacement keys written by this ingest
  rows BIGINT,
  replaced_rows BIGINT,  -- rows of earlier ingests with the same keys that this ingest replaced
  status VARCHAR         -- active | replaced (all its rows were replaced by a later ingest)
);
CREATE TABLE IF NOT EXISTS reconciliation (
  ingest_id VARCHAR,
  source_format VARCHAR,
  billing_period_start TIMESTAMP,
  currency VARCHAR,
  source_rows BIGINT,
  focus_rows BIGINT,
  source_billed {MONEY},
  focus_billed {MONEY},
  source_effective {MONEY},
  focus_effective {MONEY},
  ok BOOLEAN
);
"""

#: Largest difference tolerated between a source total and the normalized total (issue: 0.000001).
TOLERANCE = "0.000001"


def warehouse_path(path: str | os.PathLike | None = None) -> str:
    """The warehouse file: the argument, else $FINOPS_WAREHOUSE, else data/warehouse.duckdb."""
    return str(path or os.environ.get("FINOPS_WAREHOUSE") or DEFAULT_WAREHOUSE)


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and, unless read-only, create/upgrade) the warehouse. ``":memory:"`` gives a scratch warehouse."""
    target = warehouse_path(path)
    if target != ":memory:" and not read_only:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    if read_only and target != ":memory:" and not Path(target).exists():
        from .errors import FinopsError

        raise FinopsError(f"{target}: no warehouse here; run 'finops-kit ingest' first")
    con = duckdb.connect(target, read_only=read_only and target != ":memory:")
    con.execute("SET TimeZone = 'UTC'")  # FOCUS dates are UTC; naive source timestamps are read as UTC
    if memory_limit or os.environ.get("FINOPS_MEMORY_LIMIT"):
        con.execute(f"SET memory_limit = '{memory_limit or os.environ['FINOPS_MEMORY_LIMIT']}'")
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(table_ddl(FOCUS_TABLE))
    existing = {r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()}
    for name, typ in LINEAGE_COLUMNS.items():  # warehouses made by an older kit gain new lineage columns
        if name not in existing:
            con.execute(f'ALTER TABLE {FOCUS_TABLE} ADD COLUMN "{name}" {typ}')
    con.execute(_LOG_DDL)


def focus(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The FOCUS 1.2 table as a DuckDB relation, ready for SQL (``fk.focus(con).filter(...)``)."""
    return con.table(FOCUS_TABLE)


def focus_columns_present(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()]


def add_custom_columns(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Add ``x_`` pass-through columns (VARCHAR) that the table does not have yet."""
    have = set(focus_columns_present(con))
    for n in names:
        if n not in have:
            con.execute(f'ALTER TABLE {FOCUS_TABLE} ADD COLUMN "{n}" VARCHAR')
            have.add(n)


def reconciliation_table(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Source vs normalized totals per ingest, billing period and currency, re-checked against the live table.

    The ``focus_*`` columns are recomputed now from the FOCUS table, so a later manual edit of the warehouse
    shows up as a difference here.
    """
    return con.sql(
        f"""
        WITH live AS (
          SELECT x_IngestId AS ingest_id, BillingPeriodStart AS billing_period_start,
                 BillingCurrency AS currency, count(*) AS focus_rows,
                 sum(BilledCost) AS focus_billed, sum(EffectiveCost) AS focus_effective
          FROM {FOCUS_TABLE} GROUP BY ALL
        )
        SELECT r.source_format, l.ingest_id, strftime(r.billing_period_start, '%Y-%m') AS billing_period,
               r.currency, r.source_rows, coalesce(live.focus_rows, 0) AS focus_rows,
               r.source_billed, coalesce(live.focus_billed, 0)::{MONEY} AS focus_billed,
               r.source_effective, coalesce(live.focus_effective, 0)::{MONEY} AS focus_effective,
               abs(r.source_billed - coalesce(live.focus_billed, 0)) <= {TOLERANCE}
                 AND abs(r.source_effective - coalesce(live.focus_effective, 0)) <= {TOLERANCE} AS ok
        FROM reconciliation r
        JOIN ingest_log l USING (ingest_id)
        LEFT JOIN live USING (ingest_id, billing_period_start, currency)
        WHERE l.status = 'active'
        ORDER BY r.source_format, billing_period, r.currency
        """
    )


def fingerprint(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Input fingerprint of what the warehouse holds now: every source file with size, sha256 and periods."""
    return con.sql(
        f"""
        WITH f AS (
          SELECT l.ingest_id, l.source_format, l.finished_at,
                 unnest(CAST(l.files AS STRUCT(path VARCHAR, size BIGINT, sha256 VARCHAR)[])) AS file
          FROM ingest_log l WHERE l.status = 'active'
        ), p AS (
          SELECT x_IngestId AS ingest_id, string_agg(DISTINCT strftime(BillingPeriodStart, '%Y-%m'), ', '
                 ORDER BY strftime(BillingPeriodStart, '%Y-%m')) AS billing_periods
          FROM {FOCUS_TABLE} GROUP BY 1
        )
        SELECT f.source_format, f.file.path AS path, f.file.size AS size_bytes, f.file.sha256 AS sha256,
               p.billing_periods, f.ingest_id, f.finished_at AS ingested_at
        FROM f LEFT JOIN p USING (ingest_id)
        ORDER BY f.source_format, path
        """
    )
