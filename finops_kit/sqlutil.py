"""SQL building blocks shared by the rule-driven modules (token rules, usage units).

:func:`derive_once`: columns that depend on a few text columns alone (a rule table of regular expressions over
usage types, SKUs and units) computed once per distinct combination of those columns instead of once per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .sources.base import ident


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


__all__ = ["derive_once"]
