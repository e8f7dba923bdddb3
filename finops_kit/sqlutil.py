"""SQL building blocks shared by the rule-driven modules (token rules, usage units, storage classes).

:func:`derive_once`: columns that depend on a few text columns alone (a rule table of regular expressions over
usage types, SKUs and units) computed once per distinct combination of those columns instead of once per row.
:func:`first_match`: the value of the first matching rule of an ordered rule table, with the condition that
consecutive rules share (provider, service) written once.
:func:`money_times_sql`: money times a ratio, exact at the 12 places of :data:`~finops_kit.schema.MONEY`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from .schema import MONEY
from .sources.base import ident


def money_times_sql(col: str, num: str, den: str) -> str:
    """SQL: the money ``col`` times ``num / den`` (integers, ``den`` > 0) as :data:`~finops_kit.schema.MONEY`,
    rounded half away from zero at its 12th decimal (as DuckDB casts), in integer arithmetic.

    Why: DuckDB divides a DECIMAL in floating point -- ``cost * 31 / 14`` is a DOUBLE, and a CASE with one such
    branch makes every branch DOUBLE: the storage module's per-month cost (:func:`finops_kit.storage.per_month`)
    was a float even where nothing was scaled (31 daily rows of 0.10 came to 3.1000000000000014). ``num = den``
    gives ``col`` exactly. The one such split of the kit: the commitments' charge-day window share
    (:func:`finops_kit.commitments.commitment_rows_sql`) and the licence rows' split over pricing classes
    (:func:`finops_kit.units.accelerated_usage_sql`) use it too."""
    v = f"CAST(CAST({col} AS {MONEY}) * 1000000000000 AS HUGEINT)"
    return (f"(CAST((2 * {v} * ({num}) + sign({v}) * ({den})) // (2 * ({den})) AS DECIMAL(38,0)) "
            f"* CAST(0.000000000001 AS {MONEY}))")


def derive_once(source: str, keys: Sequence[str], derived: Mapping[str, str]) -> str:
    """SQL FROM item: every row of ``source`` plus the ``derived`` columns (name -> SQL expression over the
    ``keys`` columns alone), each evaluated once per distinct combination of ``keys`` and joined back (NULL-safe).

    Why: a rule table evaluated per row ran every regular expression of every rule on every row -- most of the time
    of the token and usage-unit queries (0.1-0.2 s each on 67k rows, and a report runs dozens). A bill has few
    distinct (provider, usage type, unit, ...) combinations (hundreds for 67k rows in the samples), the value
    depends on them alone, so the rules run on those and a hash join hands each row its values. ``source`` is
    read twice (its distinct keys, its rows) rather than materialized: a column scan is cheaper than buffering
    every column of every row. A ``derived`` expression that reads a column outside ``keys`` fails to bind, so the
    shortcut cannot silently change an answer.
    """
    ks = [ident(k) for k in keys]
    cols = ", ".join(f"{expr} AS {ident(name)}" for name, expr in derived.items())
    on = " AND ".join(f"_rows.{k} IS NOT DISTINCT FROM _keys.{k}" for k in ks)
    return f"""(
      WITH _src AS NOT MATERIALIZED (SELECT * FROM {source}),
      _keys AS (SELECT *, {cols} FROM (SELECT DISTINCT {', '.join(ks)} FROM _src))
      SELECT _rows.*, _keys.* EXCLUDE ({', '.join(ks)})
      FROM _src _rows JOIN _keys ON {on})"""


def first_match(rules: Sequence[tuple[str, str, str]], default: str | None = None) -> str:
    """SQL: the value of the first rule whose conditions hold (``default``, else NULL, when none does).

    ``rules``: (shared condition, own condition, value) in rule order; ``TRUE`` as the shared condition means none.
    The same answer as ``CASE WHEN shared1 AND own1 THEN v1 WHEN shared2 AND own2 THEN v2 ... END``, written as
    one ``CASE`` per run of consecutive rules with the same shared condition, tested once, and ``coalesce`` over
    the runs in rule order (a value is never NULL, so the first run with a match decides). Why: the rule tables
    list their rules by provider and service (98 storage rules in 6 runs), and DuckDB spends most of a rule
    query's time planning it -- per expression, not per row once the rules run per distinct combination
    (:func:`derive_once`) -- so testing the provider and service patterns once per run instead of once per rule
    halves the expressions and the planning.
    """
    runs = []
    for shared, group in groupby(rules, key=lambda r: r[0]):
        whens = " ".join(f"WHEN {own} THEN {value}" for _, own, value in group)
        runs.append(f"CASE {whens} END" if shared == "TRUE" else f"CASE WHEN {shared} THEN CASE {whens} END END")
    parts = runs + ([default] if default is not None else [])
    if not parts:
        return "NULL"
    return parts[0] if len(parts) == 1 else "coalesce(" + ",\n  ".join(parts) + ")"


__all__ = ["derive_once", "first_match"]
