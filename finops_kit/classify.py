"""AI/ML workload classification of normalized rows, driven by ``data/ai_workloads.csv``.

Why a table and not code: which instance families and services count as "AI spend" is a policy a FinOps team
reviews and extends (a new accelerator family, an in-house model gateway). The table compiles into one SQL
``CASE`` expression evaluated by DuckDB over the normalized rows.
"""

from __future__ import annotations

import os
from functools import cache

from .datafiles import data_rows
from .sources.base import ident, sql_str

AI_RULES_ENV = "FINOPS_AI_RULES"


@cache
def _rules(path: str | None) -> tuple[dict[str, str], ...]:
    return tuple(data_rows("ai_workloads.csv", path))


def ai_rules(path: str | None = None) -> tuple[dict[str, str], ...]:
    """The classification rules (a user may point $FINOPS_AI_RULES to a reviewed copy of their own)."""
    return _rules(path or os.environ.get(AI_RULES_ENV))


def _re(pattern: str) -> str:
    # DuckDB's RE2 accepts (?i) inline; strip a duplicated flag for readability of generated SQL
    return sql_str(pattern)


def ai_workload_case(available_columns: set[str] | None = None, path: str | None = None) -> str:
    """SQL expression giving the x_AiWorkload category of a normalized row, or NULL."""
    whens = []
    for r in ai_rules(path):
        col = r["column"]
        if available_columns is not None and col not in available_columns:
            continue
        whens.append(
            f"WHEN regexp_matches(coalesce(ProviderName, ''), {_re(r['provider_pattern'])}) "
            f"AND regexp_matches(coalesce(CAST({ident(col)} AS VARCHAR), ''), {_re(r['pattern'])}) "
            f"THEN {sql_str(r['category'])}"
        )
    if not whens:
        return "CAST(NULL AS VARCHAR)"
    return "CASE " + " ".join(whens) + " END"
