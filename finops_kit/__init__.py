"""finops-kit: FinOps for AI — billing exports normalized to FOCUS 1.2 in DuckDB, reconciled, and reported.

    import finops_kit as fk
    con = fk.connect()              # data/warehouse.duckdb (or $FINOPS_WAREHOUSE)
    fk.focus(con).aggregate("ServiceCategory, sum(EffectiveCost)")
"""

from .errors import ConfigError, FinopsError, InputError, ReconciliationError
from .ingest import IngestResult, ingest
from .metrics import Metrics, metrics
from .warehouse import connect, fingerprint, focus, reconciliation_table

__all__ = [
    "ConfigError", "FinopsError", "InputError", "ReconciliationError", "IngestResult",
    "Metrics", "connect", "fingerprint", "focus", "ingest", "metrics", "reconciliation_table",
]
