"""SQL the kit writes once in DuckDB's dialect and that means the same after sqlglot transpiles it to Spark SQL.

Why: sqlglot translates DuckDB SQL to Spark SQL function by function, and some translations run but answer
differently (``../shared/notes/engines-and-scale.md``: of 58 probe queries 5 silently differed, 9 failed). Each
function here is the kit's one spelling of an operation whose naive form is such a trap; ``tests/
test_spark_metrics.py`` runs every one on both engines next to the naive form and shows the difference:

=====================  ==========================================  ==============================================
operation              naive DuckDB form (trap on Spark)           portable form (here)
=====================  ==========================================  ==============================================
replace every match    ``regexp_replace(s, p, r)``: DuckDB the     :func:`regexp_replace_all` (``'g'``: all, both)
                       first match, Spark every match
day of week            ``dayofweek(d)`` / ``extract(dow ...)``:    :func:`day_of_week`: days since a Sunday
                       Sunday 0 in DuckDB, 1 in Spark; ``isodow``  mod 7 (Sunday 0, Saturday 6)
                       transpiles to a wrong formula
tag value              ``element_at(map, k)``: a list in DuckDB    :func:`tag_value`: JSON extraction from the
                       (``[]`` when missing), the value in Spark   Tags text (NULL when missing, both)
first list element     ``xs[1]``: NULL on an empty list in         :func:`first_element`: guarded by the length
                       DuckDB, an error under Spark's ANSI mode
hours between          ``date_diff('hour', a, b)``: hour           :func:`hours_between`: elapsed seconds / 3600
                       boundaries crossed (DuckDB) vs whole hours
                       elapsed (Spark)
=====================  ==========================================  ==============================================

:func:`to_spark` is the transpile step (sqlglot, read ``duckdb``, write ``spark``). The metrics path on Spark
(:mod:`finops_kit.spark_metrics`) needs none of these: its one statement is plain SQL both engines parse alike.
"""

from __future__ import annotations

import re

from .errors import ConfigError
from .sources.base import sql_str

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def regexp_replace_all(expr: str, pattern: str, replacement: str) -> str:
    """SQL: ``expr`` with every match of ``pattern`` (an RE2/Java regular expression) replaced."""
    return f"regexp_replace({expr}, {sql_str(pattern)}, {sql_str(replacement)}, 'g')"


def day_of_week(expr: str) -> str:
    """SQL: the day of week of a date or timestamp, Sunday 0 .. Saturday 6 (DuckDB's ``dayofweek`` numbering), from
    the days since Sunday 1970-01-04 (kept non-negative for earlier dates)."""
    days = f"CAST(date_diff('day', DATE '1970-01-04', CAST({expr} AS DATE)) AS BIGINT)"
    return f"((({days}) % 7 + 7) % 7)"


def tag_value(tags: str, key: str) -> str:
    """SQL: the value of tag ``key`` in a FOCUS Tags JSON text (NULL when the key is missing or ``tags`` is NULL)."""
    if not key or '"' in key or "\\" in key:
        raise ValueError(f"tag key {key!r}: empty, or with a quote or backslash")
    # $."cost center" is DuckDB's path for any other key; sqlglot writes it as Spark's $['cost center']
    path = "$." + key if _IDENT.fullmatch(key) else f'$."{key}"'
    return f"json_extract_string({tags}, {sql_str(path)})"


def first_element(expr: str) -> str:
    """SQL: the first element of a list, NULL when the list is empty or NULL."""
    return f"(CASE WHEN array_length({expr}) > 0 THEN ({expr})[1] END)"


def hours_between(start: str, end: str) -> str:
    """SQL: hours elapsed from ``start`` to ``end`` (DOUBLE; Spark counts whole seconds)."""
    return f"(CAST(epoch({end}) - epoch({start}) AS DOUBLE) / 3600)"


def to_spark(sql: str) -> str:
    """``sql`` (DuckDB dialect) as Spark SQL, transpiled by sqlglot (part of the ``spark`` extra)."""
    try:
        import sqlglot
    except ImportError:
        raise ConfigError("transpiling to Spark SQL needs sqlglot: pip install 'finops-kit[spark]'") from None
    return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="spark"))


__all__ = ["day_of_week", "first_element", "hours_between", "regexp_replace_all", "tag_value", "to_spark"]
