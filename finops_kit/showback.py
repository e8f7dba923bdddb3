"""Showback: cost per team or project, with untagged and shared costs on their own lines, optionally allocated.

Why separate lines: a showback that silently spreads untagged or shared cost hides the tagging gap it should
expose. The table always shows each owner's *direct* cost (EffectiveCost of charges whose showback tag is valid),
then the shared pool (taxes, idle commitments, charges tagged ``shared``...) and the untagged pool. With an
allocation method the pools are spread over the owners and the method is printed beside the numbers:

- ``even``: every owner with direct cost in the period gets 1/n;
- ``proportional``: in proportion to each owner's positive direct cost;
- ``fixed``: the percentages of ``allocation.fixed`` in ``finops.yaml`` (they must sum to 100).

Costs are net EffectiveCost (credits and refunds included) so that the total of the table ties to the bill of the
scope to the cent; ``Showback.reconciles`` says whether it does (an exact DECIMAL comparison in DuckDB). Allocated
amounts are rounded to 1e-6 and the rounding residue goes to the owner with the largest weight, so a pool is always
allocated exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .attribution import SHARED, UNTAGGED, values_sql
from .config import load_config, reject_unknown, section
from .errors import ConfigError
from .schema import MONEY
from .sources.base import sql_str
from .tagging import TagAudit

METHODS = ("none", "even", "proportional", "fixed")


@dataclass(frozen=True)
class Allocation:
    """The ``allocation`` section: which key to show back by, what is shared, and how pools are spread."""

    key: str = "team"
    method: str = "none"
    allocate_untagged: bool = False
    shared_tag_values: tuple[str, ...] = ("shared",)
    shared_charge_categories: tuple[str, ...] = ("Tax",)
    unused_commitments_shared: bool = True
    shared_service_names: tuple[str, ...] = ()
    fixed: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "finops.yaml") -> Allocation:
        pre = f"{where}: allocation"
        if not isinstance(data, dict):
            raise ConfigError(f"{pre}: expected a mapping")
        reject_unknown(data, {"key", "method", "allocate_untagged", "shared", "fixed"}, pre)
        method = str(data.get("method", "none"))
        if method not in METHODS:
            raise ConfigError(f"{pre}.method: expected one of {', '.join(METHODS)}, got {method!r}")
        shared = data.get("shared") or {}
        if not isinstance(shared, dict):
            raise ConfigError(f"{pre}.shared: expected a mapping (tag_values, charge_categories, ...)")
        reject_unknown(shared, {"tag_values", "charge_categories", "unused_commitments", "service_names"},
                       f"{pre}.shared")

        def strs(v: Any, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            if v is None:
                return default
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError(f"{pre}.shared.{name}: expected a list of strings")
            return tuple(v)

        fixed: dict[str, Decimal] = {}
        raw_fixed = data.get("fixed") or {}
        if not isinstance(raw_fixed, dict):
            raise ConfigError(f"{pre}.fixed: expected a mapping owner -> percent")
        for owner, pct in raw_fixed.items():
            bad = f"{pre}.fixed.{owner}: expected a finite percentage 0..100, got {pct!r}"
            if isinstance(pct, bool) or not isinstance(pct, int | float | str):
                raise ConfigError(bad)
            try:
                d = Decimal(str(pct).strip())
            except ArithmeticError:
                raise ConfigError(bad) from None
            if not d.is_finite() or not 0 <= d <= 100:  # NaN/Infinity parse as Decimals; NaN does not compare
                raise ConfigError(bad)
            fixed[str(owner)] = d
        if method == "fixed":
            total = sum(fixed.values(), Decimal(0))
            if not fixed or abs(total - 100) > Decimal("0.01"):
                raise ConfigError(f"{pre}.fixed: percentages must sum to 100 for method fixed (they sum to {total})")
        for flag in ("allocate_untagged",):
            if not isinstance(data.get(flag, False), bool):
                raise ConfigError(f"{pre}.{flag}: expected true or false")
        unused = shared.get("unused_commitments", True)
        if not isinstance(unused, bool):
            raise ConfigError(f"{pre}.shared.unused_commitments: expected true or false")
        return cls(key=str(data.get("key", "team")), method=method,
                   allocate_untagged=bool(data.get("allocate_untagged", False)),
                   shared_tag_values=strs(shared.get("tag_values"), "tag_values", ("shared",)),
                   shared_charge_categories=strs(shared.get("charge_categories"), "charge_categories", ("Tax",)),
                   unused_commitments_shared=unused,
                   shared_service_names=strs(shared.get("service_names"), "service_names", ()),
                   fixed=fixed)


def load_allocation(source: Allocation | dict | str | os.PathLike | None = None) -> Allocation:
    """The allocation settings from an Allocation, a config dict (whole file or the section) or a yaml path."""
    if isinstance(source, Allocation):
        return source
    if isinstance(source, dict):
        data = source.get("allocation", source)
        return Allocation.from_dict(data or {}, "config")
    cfg = load_config(source)
    where = Path(str(source or os.environ.get("FINOPS_CONFIG") or "finops.yaml")).name
    return Allocation.from_dict(section(cfg, "allocation", {}), where)


@dataclass
class Showback:
    """The showback table, the method in words (print it beside the numbers) and the tie-out to the bill."""

    table: pd.DataFrame
    method: str
    key: str
    total: Decimal
    reconciles: bool

    def __str__(self) -> str:
        return f"{self.method}\n{self.table.to_string(index=False)}"

    def _repr_html_(self) -> str:
        fmt = {c: "{:,.2f}".format for c in ("direct_cost", "allocated", "total_cost") if c in self.table}
        fmt["share"] = "{:.1f}%".format
        html = self.table.to_html(index=False, formatters=fmt, na_rep="")
        tie = "ties to the bill" if self.reconciles else "DOES NOT tie to the bill"
        return f"<p><b>Method:</b> {self.method} Total {self.total:,.2f} ({tie}).</p>{html}"


def showback(con: duckdb.DuckDBPyConnection, policy: Any = None, allocation: Any = None, *,
             key: str | None = None, method: str | None = None, by_month: bool = False,
             audit: TagAudit | None = None, start: Any = None, end: Any = None, providers: Any = None,
             scope: Any = None) -> Showback:
    """Cost per owner (team or project) with shared and untagged pools, optionally allocated.

    ``policy``/``allocation`` default to ``finops.yaml``; ``key`` and ``method`` override the config. Every month
    is allocated on its own (the weights of that month); ``by_month`` keeps one row per month and owner, otherwise
    an owner's row is the sum of its months. Pass an existing ``audit`` to
    reuse its temp views (same scope). Columns: [month], owner, kind (owner / shared / untagged), direct_cost,
    allocated, total_cost, share (percent of the period's total).
    """
    if isinstance(allocation, str | os.PathLike) or allocation is None:
        alloc = load_allocation(allocation if allocation is not None else policy
                                if isinstance(policy, str | os.PathLike) else None)
    else:
        alloc = load_allocation(allocation)
    own = audit is None
    a = audit or TagAudit(con, policy, start=start, end=end, providers=providers, scope=scope)
    try:
        return _showback(a, alloc, key or alloc.key, method or alloc.method, by_month)
    finally:
        if own:
            a.close()


def _showback(a: TagAudit, alloc: Allocation, key: str, method: str, by_month: bool) -> Showback:
    if key not in a.policy.keys:
        raise ConfigError(f"allocation.key: {key!r} is not a tag_policy key ({', '.join(a.policy.keys)})")
    if method not in METHODS:
        raise ConfigError(f"allocation method {method!r}: expected one of {', '.join(METHODS)}")
    if method == "fixed" and not alloc.fixed:
        raise ConfigError("allocation.fixed: method fixed needs percentages per owner")
    shared_sql, shared_words = a.attribution.shared_sql(key, alloc), a.attribution.shared_words(key, alloc)
    # a charge's owner as Attribution.owner_sql reads it (budgets, forecasts, metrics): the key's valid value
    # wherever the tag is set -- `required: ai` only decides where a missing tag is a violation
    owner = a.attribution.value_sql(key)
    # Every month's pool is spread with that month's weights, whether or not the table is per month: a table of
    # several months is the sum of its months, so it agrees owner by owner with the monthly chart beside it (spread
    # once with the whole scope's weights, one team's share moved by $4,473.53 on the demo between the two).
    period = "month"
    pools = "('shared', 'untagged')" if alloc.allocate_untagged else "('shared')"
    fixed = values_sql([(o, str(p)) for o, p in alloc.fixed.items()], ["owner", "pct"], ["VARCHAR", "DECIMAL(9,4)"])
    if method == "even":
        weight = "CASE WHEN has_direct THEN 1.0 / count(*) FILTER (WHERE has_direct) OVER w ELSE 0 END"
    elif method == "proportional":
        weight = ("CASE WHEN direct > 0 THEN CAST(direct AS DOUBLE) / "
                  "nullif(CAST(sum(greatest(direct, 0)) OVER w AS DOUBLE), 0) ELSE 0 END")
    elif method == "fixed":
        weight = "coalesce(CAST(pct AS DOUBLE), 0) / 100.0"
    else:
        weight = "0.0"
    allocating = method != "none"
    # the charges' exact (DECIMAL) sums per period, kind and owner, made once per audit for each key and shared
    # rule: every sum below is a sum of them, the same to the last digit as over the charges, and the methods and
    # the monthly table no longer scan every charge each (twice: the tie-out and the table)
    c = a.table(f"""
        SELECT period, kind, owner, sum(cost) AS cost
        FROM (SELECT period, cost, CASE WHEN shared THEN 'shared' WHEN owner IS NULL THEN 'untagged' ELSE 'owner' END
                       AS kind, owner
              FROM (SELECT {period} AS period, cost, {shared_sql} AS shared, {owner} AS owner FROM @wide))
        GROUP BY ALL""")
    sql = f"""
        WITH c AS (SELECT period, cost, kind, owner FROM {c}),
        direct AS (SELECT period, owner, sum(cost) AS direct, sum(cost) <> 0 AS has_direct FROM c WHERE kind = 'owner'
                   GROUP BY ALL),
        periods AS (SELECT DISTINCT period FROM c),
        owners AS (  -- owners with direct cost, plus (fixed) owners that only receive a share
          SELECT p.period, o.owner, coalesce(d.direct, 0) AS direct, coalesce(d.has_direct, FALSE) AS has_direct
          FROM periods p
          JOIN (SELECT owner FROM direct UNION SELECT owner FROM ({fixed}) WHERE {'TRUE' if method == 'fixed' else 'FALSE'}) o
            ON TRUE
          LEFT JOIN direct d ON d.period IS NOT DISTINCT FROM p.period AND d.owner = o.owner
          WHERE d.owner IS NOT NULL OR {'TRUE' if method == 'fixed' else 'FALSE'}),
        pool AS (SELECT period, coalesce(sum(cost) FILTER (WHERE kind IN {pools}), 0) AS pool FROM c GROUP BY ALL),
        weighted AS (
          SELECT o.*, {weight} AS weight
          FROM owners o LEFT JOIN ({fixed}) f USING (owner)
          WINDOW w AS (PARTITION BY o.period)),
        alloc0 AS (
          SELECT w.*, CAST(round(p.pool * CAST(w.weight AS DECIMAL(38,12)), 6) AS {MONEY}) AS allocated0, p.pool,
                 row_number() OVER (PARTITION BY w.period ORDER BY w.weight DESC, w.direct DESC, w.owner) AS rk
          FROM weighted w JOIN pool p ON p.period IS NOT DISTINCT FROM w.period),
        alloc AS (  -- the rounding residue goes to the owner with the largest weight: the pool is spread exactly
          SELECT *, allocated0 + CASE WHEN rk = 1 AND sum(weight) OVER (PARTITION BY period) > 0
                                      THEN pool - sum(allocated0) OVER (PARTITION BY period) ELSE 0 END AS allocated
          FROM alloc0),
        any_weight AS (SELECT period, sum(weight) > 0 AS ok FROM weighted GROUP BY ALL),
        lines AS (
          SELECT period, owner, 'owner' AS kind, direct AS direct_cost,
                 CASE WHEN {str(allocating).upper()} THEN allocated ELSE 0 END AS allocated FROM alloc
          UNION ALL
          SELECT c.period, CASE kind WHEN 'shared' THEN {sql_str(SHARED)} ELSE {sql_str(UNTAGGED)} END, kind, sum(cost),
                 CASE WHEN {str(allocating).upper()} AND kind IN {pools} AND coalesce(bool_or(aw.ok), FALSE)
                      THEN -sum(cost) ELSE 0 END
          FROM c LEFT JOIN any_weight aw ON aw.period IS NOT DISTINCT FROM c.period
          WHERE kind IN ('shared', 'untagged') GROUP BY c.period, kind)
        SELECT {"period" if by_month else "CAST(NULL AS DATE)"} AS month, owner, kind,
               CAST(sum(direct_cost) AS {MONEY}) AS direct_cost, CAST(sum(allocated) AS {MONEY}) AS allocated,
               CAST(sum(direct_cost + allocated) AS {MONEY}) AS total_cost
        FROM lines GROUP BY ALL"""
    con = a.con
    total, table_total = con.execute(
        f"SELECT (SELECT sum(cost) FROM {a.names['scope']}), (SELECT sum(total_cost) FROM ({sql}))").fetchall()[0]
    total = total if total is not None else Decimal(0)
    table_total = table_total if table_total is not None else Decimal(0)
    df = con.sql(f"""
        SELECT month, owner, kind, CAST(direct_cost AS DOUBLE) AS direct_cost, CAST(allocated AS DOUBLE) AS allocated,
               CAST(total_cost AS DOUBLE) AS total_cost,
               100.0 * CAST(total_cost AS DOUBLE) / nullif(CAST(sum(total_cost) OVER (PARTITION BY month) AS DOUBLE), 0)
                 AS share
        FROM ({sql})
        ORDER BY month, CASE kind WHEN 'owner' THEN 0 WHEN 'shared' THEN 1 ELSE 2 END, total_cost DESC, owner""").df()
    if not by_month:
        df = df.drop(columns="month")
    shared_total = float(df.loc[df["kind"] == "shared", "direct_cost"].sum())
    untagged_total = float(df.loc[df["kind"] == "untagged", "direct_cost"].sum())
    how = {
        "none": "not allocated (shown on their own lines)",
        "even": "allocated evenly (1/n) over the owners with non-zero direct cost",
        "proportional": "allocated in proportion to each owner's positive direct cost",
        "fixed": "allocated by fixed percentages (" + ", ".join(f"{o} {p}%" for o, p in alloc.fixed.items()) + ")",
    }[method]
    pools_words = "shared and untagged costs" if alloc.allocate_untagged else "shared costs"
    untagged_words = "" if alloc.allocate_untagged else f" Untagged {untagged_total:,.2f} is shown on its own line."
    monthly = " Each month is allocated with its own weights." if allocating else ""
    method_text = (f"Showback by {key} (EffectiveCost, credits included). Shared = {shared_words} "
                   f"({shared_total:,.2f}). Method: {pools_words} {how}.{untagged_words}{monthly}")
    df.attrs["method"] = method_text
    return Showback(table=df, method=method_text, key=key, total=total, reconciles=total == table_total)
