"""finops-kit: FinOps for AI — billing exports normalized to FOCUS 1.2 in DuckDB, reconciled, and reported.

    import finops_kit as fk
    con = fk.connect()              # the project's data/warehouse.duckdb (or $FINOPS_WAREHOUSE), read-only
    fk.focus(con).aggregate("ServiceCategory, sum(EffectiveCost)")
    fk.costs(by="team", gpu_only=True)   # one-line answers on the semantic layer (finops_kit.api)
"""

from .errors import ConfigError, FinopsError, InputError, ReconciliationError
from .ingest import IngestResult, ingest
from .warehouse import connect, fingerprint, focus, info, reconciliation_table

_API = ("costs", "change", "CostFrame")


def __getattr__(name: str):
    """``fk.metrics`` / ``fk.Metrics`` load on first use: the metrics layer imports pandas (~0.3-1 s), which a
    CLI start such as ``finops-kit ingest`` does not need. ``finops_kit.metrics`` is both the submodule and, by
    being callable, the function ``fk.metrics(con, scope)`` (see the end of metrics.py)."""
    if name in ("metrics", "Metrics"):
        import importlib

        module = importlib.import_module(f"{__name__}.metrics")  # not `from . import`: that asks __getattr__ again
        return module if name == "metrics" else module.Metrics
    if name in _API:  # the one-line API (finops_kit.api) imports pandas too
        import importlib

        return getattr(importlib.import_module(f"{__name__}.api"), name)
    if name == "explore":
        import importlib

        return importlib.import_module(f"{__name__}.explorer").explore
    raise AttributeError(f"module 'finops_kit' has no attribute {name!r}")


__all__ = [
    "ConfigError", "FinopsError", "InputError", "ReconciliationError", "IngestResult",
    "Metrics", "connect", "fingerprint", "focus", "info", "ingest", "metrics", "reconciliation_table",
    "costs", "change", "CostFrame", "explore",
]
