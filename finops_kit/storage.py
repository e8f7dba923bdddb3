"""Storage inventory and lifecycle recommendations from the bill: what sits in hot storage and what moving it costs.

Training sets, checkpoints and model artifacts pile up in the most expensive class. This module reads only the FOCUS
table and answers three questions a FinOps analyst asks about object storage:

1. **Inventory** — spend and volume (GB-months from ``ConsumedQuantity``/``PricingQuantity``, units normalized by
   ``data/storage_units.csv``) per provider, service, storage class/tier, bucket, account, team tag and month;
   request, retrieval, early-deletion, monitoring and transition charges; growth rate and a projection. The class
   of a row comes from ``data/storage_classes.csv`` (rules on ``x_UsageType | SkuMeter | ChargeDescription``), so
   CUR usage types (``USE1-TimedStorage-SIA-ByteHrs``), GCS SKUs (``Nearline Storage US Multi-region``) and Azure
   meters (``Hot LRS Data Stored``) land in the same classes.
2. **Lifecycle economics** — a transition A → B pays when the monthly read fraction ``a`` is below the break-even
   ``a* = (p_A − p_B)/(r_B − r_A)`` (p = $/GB-month, r = retrieval $/GB); the per-object transition fee ``c_t``
   pays back after ``H = c_t/(size·(p_A − p_B))`` months; minimum storage durations bill ``max(lifetime, min)``;
   small objects are billed at the class's minimum size; Intelligent-Tiering adds a per-object monitoring fee.
3. **Recommendations** — per bucket (or tag group) and current class, every cheaper target priced with those rules,
   ranked by monthly saving, with the one-time transition cost and payback months, and an S3 lifecycle
   configuration (JSON accepted by ``put_bucket_lifecycle_configuration``) for the top ones.

Prices are data: ``data/storage_prices.csv`` is a dated default (methods.md) that a user replaces with their own
rates (``load_prices(path)``); every result carries the table's ``as_of`` date. Money from the bill stays DECIMAL;
the recommendation model also computes in :class:`~decimal.Decimal`, volumes (GB-months) are floats.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .attribution import SHARED, UNTAGGED
from .errors import ConfigError, InputError
from .sources.base import sql_str
from .sqlutil import first_match, money_times_sql
from .units import exact, quantity_in, total, unit_key
from .units import volume_units_values as _units

#: Environment variables pointing at a user's reviewed copies of the mapping/price tables.
STORAGE_RULES_ENV = "FINOPS_STORAGE_CLASSES"
STORAGE_PRICES_ENV = "FINOPS_STORAGE_PRICES"

KB_PER_GB = Decimal(1024 * 1024)
DAYS_PER_MONTH = Decimal("30.4375")
#: The row text the mapping tables match: usage type, SKU meter and charge description (any may be NULL).
ROW_TEXT = "concat_ws(' | ', x_UsageType, SkuMeter, ChargeDescription)"
CHARGE_KINDS = ("storage", "overhead", "request", "retrieval", "early_deletion", "monitoring", "transition", "other")
INTELLIGENT_TIERING = "S3 Intelligent-Tiering"
#: Closed billing periods a growth rate needs (one month is a level, not a rate).
MIN_GROWTH_MONTHS = 2


# ----------------------------------------------------------------------------------------------------------------
# data files

def read_table(name: str, path: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """Rows of a CSV data file (``#`` comment lines skipped): ``path`` if given, else the packaged ``data/<name>``."""
    if path:
        p = Path(path)
        if not p.exists():
            raise InputError(str(p), "file not found")
        text = p.read_text(encoding="utf-8-sig")
        where = str(p)
    else:
        text = resources.files("finops_kit").joinpath(f"data/{name}").read_text(encoding="utf-8")
        where = f"finops_kit/data/{name}"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(where, "no header row; expected a CSV with a header")
    rows = list(csv.DictReader(lines))
    return [{k: (v or "").strip() for k, v in r.items() if k is not None} | {"_where": where, "_row": str(i + 2)}
            for i, r in enumerate(rows)]


def _require(rows: list[dict[str, str]], columns: Sequence[str], where: str) -> None:
    if rows:
        missing = [c for c in columns if c not in rows[0]]
        if missing:
            raise InputError(where, f"missing column(s) {missing}; expected {list(columns)}")


@cache
def _rules(name: str, path: str | None) -> tuple[dict[str, str], ...]:
    rows = read_table(name, path)
    _require(rows, ("provider_pattern", "service_pattern", "pattern"), path or name)
    for r in rows:
        for col in ("provider_pattern", "service_pattern", "pattern"):
            try:
                re.compile(r[col])
            except re.error as exc:
                raise InputError(r["_where"], f"invalid regular expression ({exc})", column=col,
                                 row=int(r["_row"])) from None
    return tuple(rows)


def storage_rules(path: str | None = None) -> tuple[dict[str, str], ...]:
    """The storage class rules (``$FINOPS_STORAGE_CLASSES`` may point to a reviewed copy)."""
    rows = _rules("storage_classes.csv", path or os.environ.get(STORAGE_RULES_ENV))
    _require(list(rows), ("storage_class", "charge_kind", "operation"), path or "storage_classes.csv")
    for r in rows:
        if r["charge_kind"] not in CHARGE_KINDS:
            raise InputError(r["_where"], f"charge_kind {r['charge_kind']!r} is not one of {list(CHARGE_KINDS)}",
                             column="charge_kind", row=int(r["_row"]))
    return rows


def charge_kinds_sql(rules: Sequence[dict[str, str]]) -> str:
    """The rules' charge kinds as a ``(VALUES ...) AS t(rule_id, charge_kind)`` relation, keyed by the index
    :func:`rule_case` gives (to join where a query needs the kind of a row but not the rest of
    :func:`storage_rows_sql`, as ``finops-kit metrics`` does)."""
    return values_sql([(i, r["charge_kind"]) for i, r in enumerate(rules)], ("rule_id", "charge_kind"))


#: The charge kind whose GB-months are data stored (:func:`stored_gb_months`).
STORED_KIND = "storage"


def stored_gb_months(charge_kind: str = "charge_kind", gb_month: str = "gb_month", where: str | None = None, *,
                     exact_sum: bool = False) -> str:
    """SQL aggregate: GB-months of data STORED -- the one definition of the inventory, the monthly volume, the
    sizing of recommendations and ``finops-kit metrics``' ``storage_gb_months``.

    Only rows of charge kind ``storage`` count. Why: other storage rows bill in GB-months too but measure no
    data held -- early deletion bills the remainder of a class's minimum duration for data already deleted
    (``EarlyDelete-ByteHrs``), overhead rows per-object metadata. Counted as volume, a real CUR sample showed
    38.89 GB-months in ``metrics`` against 11.92 stored in the inventory (27 GB-months of early deletion).
    ``charge_kind`` / ``gb_month``: the SQL of the row's charge kind and GB-months; ``where``: a further filter;
    ``exact_sum``: the exact DECIMAL sum (:func:`~finops_kit.units.exact`) for a sum that is added up again.
    """
    cond = f"{charge_kind} = {sql_str(STORED_KIND)}" + (f" AND ({where})" if where else "")
    return exact(gb_month, cond) if exact_sum else total(gb_month, cond)


def rule_case(rules: Sequence[dict[str, str]], text_expr: str = ROW_TEXT) -> str:
    """SQL giving the index of the first matching rule (NULL when none): one pass, set-based.

    Why a correlated scalar subquery around the ``CASE``: the rules are up to three regular expressions each,
    tried in order until one matches, and most rows (compute, AI, fees) match none, so evaluated per row the
    ``CASE`` was most of the time of every storage, transfer and metrics query (0.4 s per query on 65k rows).
    Its value depends only on ProviderName, ServiceName and the columns of ``text_expr``, which take a few hundred
    distinct combinations in a bill of millions of rows; DuckDB decorrelates the subquery into a join on exactly
    those distinct values (a delim join, NULL-safe), so the regular expressions run once per combination and the
    result is the same rule for every row (measured 1.2 s -> 0.14 s on the sample warehouse). The rules of one
    provider and service test those patterns once (:func:`~finops_kit.sqlutil.first_match`).
    """
    if not rules:
        return "CAST(NULL AS INTEGER)"
    first = first_match([
        (f"regexp_matches(coalesce(_fk_provider, ''), {sql_str('(?i)' + r['provider_pattern'])}) "
         f"AND regexp_matches(coalesce(_fk_service, ''), {sql_str('(?i)' + r['service_pattern'])})",
         f"regexp_matches(_fk_text, {sql_str('(?i)' + r['pattern'])})", str(i))
        for i, r in enumerate(rules)])
    return (f"(SELECT {first} FROM (SELECT ProviderName AS _fk_provider, "
            f"ServiceName AS _fk_service, {text_expr} AS _fk_text))")


def values_sql(rows: Sequence[Sequence[Any]], columns: Sequence[str], alias: str = "t") -> str:
    """A ``(VALUES ...) AS t(cols)`` relation of literals (for small mapping tables joined in SQL)."""
    def lit(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, int | float | Decimal):
            return repr(float(v)) if isinstance(v, float) else str(v)
        return sql_str(str(v))
    body = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
    return f"(VALUES {body}) AS {alias}({', '.join(columns)})"


def frame(rel: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A small aggregate as pandas with DECIMAL money kept as :class:`~decimal.Decimal` (``.df()`` makes floats)."""
    return rel.to_arrow_table().to_pandas()


# ----------------------------------------------------------------------------------------------------------------
# filters and dimensions shared with egress.py

def scoped(con: duckdb.DuckDBPyConnection, scope: Any = None, start: Any = None, end: Any = None,
           providers: Iterable[str] | str | None = None, config: Any = None) -> Any:
    """The resolved :class:`~finops_kit.scope.Scope` of a storage or transfer analysis (``scope`` wins; the
    legacy ``start``/``end`` are months or days, both inclusive, as everywhere in the kit)."""
    from .scope import bind

    return bind(con, scope, config, start=start, end=end, providers=providers)


#: The bucket label of a row without a ResourceName or ResourceId (the fallback of :data:`BUCKET_EXPR`): not a
#: bucket -- no lifecycle rule can be written for it, and two groups "sharing" it share no bucket.
NO_BUCKET = "(no resource id)"
#: SQL: the bucket/container/account a row belongs to (ResourceName, else the last segment of ResourceId).
BUCKET_EXPR = ("coalesce(nullif(ResourceName, ''), nullif(regexp_extract(ResourceId, '([^/:]+)/*$', 1), ''), "
               f"{sql_str(NO_BUCKET)})")
ACCOUNT_EXPR = "coalesce(nullif(SubAccountName, ''), nullif(SubAccountId, ''), BillingAccountId)"


# ----------------------------------------------------------------------------------------------------------------
# classified rows and the inventory

def storage_rows(con: duckdb.DuckDBPyConnection, **filters: Any) -> duckdb.DuckDBPyRelation:
    """:func:`storage_rows_sql` as a relation."""
    return con.sql(storage_rows_sql(con, **filters))


def storage_rows_sql(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
                     providers: Iterable[str] | str | None = None, config: Any = None, team_key: str = "team",
                     rules_path: str | None = None, scope: Any = None) -> str:
    """SQL of the storage-related FOCUS rows with their class and charge kind, normalized volumes and dimensions.

    Columns: provider, service, storage_class, charge_kind, operation, month, account, region, bucket, team
    (the attribution of ``tag_policy``: a valid value, ``(shared)`` or ``(untagged)``), usage_type, cost
    (EffectiveCost, DECIMAL), billed_cost, gb_month, gb, items (requests/objects), closed (the month is a closed
    billing period of its provider: growth and sizing use closed months only), month_long (billed for more than a
    day: a month's charge booked on its 1st, counted whole in a "per month" figure -- :func:`month_shares`).
    """
    sc = scoped(con, scope, start, end, providers, config)
    rules = storage_rules(rules_path)
    rule_tab = values_sql([(i, r["storage_class"], r["charge_kind"], r["operation"] or None)
                           for i, r in enumerate(rules)], ("rule_id", "storage_class", "charge_kind", "operation"),
                          alias="r")
    return f"""
        WITH src AS (
          SELECT *, {rule_case(rules)} AS _rule FROM {sc.rows_sql()}
        ), u AS (SELECT * FROM {_units()})
        SELECT ProviderName AS provider, ServiceName AS service, r.storage_class, r.charge_kind, r.operation,
               date_trunc('month', ChargePeriodStart) AS month, {ACCOUNT_EXPR} AS account,
               RegionId AS region, {BUCKET_EXPR} AS bucket, {sc.attribution.dimension_sql(team_key)} AS team,
               x_UsageType AS usage_type, EffectiveCost AS cost, BilledCost AS billed_cost,
               {quantity_in('gb_month')} AS gb_month, {quantity_in('gb')} AS gb, {quantity_in('count')} AS items,
               {sc.closed_sql()} AS closed, {MONTH_LONG} AS month_long
        FROM src
        JOIN {rule_tab} ON r.rule_id = src._rule
        LEFT JOIN u uc ON uc.unit = {unit_key('src.ConsumedUnit')}
        LEFT JOIN u up ON up.unit = {unit_key('src.PricingUnit')}
    """


#: SQL: the row is billed for more than a day (a month-long charge booked on the 1st), not a daily or hourly row.
MONTH_LONG = "coalesce(ChargePeriodEnd > ChargePeriodStart + INTERVAL 1 DAY, false)"


def month_shares(sc: Any) -> str:
    """SQL VALUES ``(m, num, den)``: for each month the scope reaches, the share of its days the scope covers
    (:meth:`~finops_kit.scope.Scope.month_share`, num/den): 14/31 for October in a 5-18 Oct scope; only months not
    covered whole are listed. Join on ``CAST(m AS DATE) = CAST(month AS DATE)``; a month not listed counts whole.

    Why: every "per month" figure of this module (a recommendation's GB, cost, reads and writes per month, the
    inventory's average GB, egress per month) is a month's sum divided by this share: a 5-18 Oct scope sized a
    bucket at 131,881 GB (14 days of GB-months as a month's average) where the whole scope said 293,735 GB, and
    its saving "per month" was 45% of the whole scope's for the same bucket. A month-long row (``month_long``) is
    one month's charge already and is counted whole. In a billing-period scope every share is 1 (nothing changes).
    """
    rows: list[tuple[str, int, int]] = []
    if sc.basis != "billing_period":
        c = sc.completeness()
        lo = min([*c["billing_period"], *([sc.start] if sc.start else [])], default=None)
        hi = max([*c["billing_period"], *([sc.end] if sc.end else [])], default=None)
        if lo is not None and hi is not None:
            m = dt.date(lo.year, lo.month, 1)
            while m <= hi:
                f = sc.month_share(m)
                if f != 1:
                    rows.append((m.isoformat(), f.numerator, f.denominator))
                m = (m + dt.timedelta(days=32)).replace(day=1)
    return values_sql(rows or [("1970-01-01", 1, 1)], ("m", "num", "den"), alias="sh")


def month_share_join(sc: Any, month: str) -> str:
    """SQL: ``LEFT JOIN`` :func:`month_shares` as ``sh`` on the month column ``month`` (what :func:`per_month`
    reads)."""
    return f"LEFT JOIN {month_shares(sc)} ON CAST(sh.m AS DATE) = CAST({month} AS DATE)"


def per_month(expr: str, long: str = "month_long", *, money: bool = False) -> str:
    """SQL: a row's ``expr`` scaled to a whole month (joined with :func:`month_shares` as ``sh``): divided by the
    share of its month the scope covers, unless the row is ``long`` (billed for the month) or the month is whole.

    ``money``: ``expr`` is money and stays :data:`~finops_kit.schema.MONEY` (exact, 12 places:
    :func:`~finops_kit.sqlutil.money_times_sql`). DuckDB divides a DECIMAL in floating point, and one DOUBLE branch
    makes the whole CASE DOUBLE: a recommendation's monthly cost was a float in every scope, even where nothing is
    scaled -- October's 31 daily storage rows of 0.10 came to 3.1000000000000014, not the bill's 3.10. Scaled, each
    row is rounded at the 12th decimal (14 days of 0.10 in a 5-18 Oct window: 14 x 0.221428571429)."""
    scaled = money_times_sql(expr, "sh.den", "sh.num") if money else f"{expr} * sh.den / sh.num"
    return (f"CASE WHEN {long} OR sh.num IS NULL OR sh.num = sh.den THEN {expr} "
            f"WHEN sh.num = 0 THEN NULL ELSE {scaled} END")


def over(rows_sql: str, sql: str, name: str = "rel") -> str:
    """SQL: ``sql`` (a SELECT, possibly WITH ...) reading the rows of ``rows_sql`` as the CTE ``name``.

    Why one statement instead of a relation's ``.query(name, sql)``: that creates a temporary view (binding the
    whole row SQL), queries it (binding it again) and drops it, for every table of a report; and a query over a
    temporary view is never reused by :mod:`finops_kit.querycache`. As one statement over the warehouse's own table
    it is planned once and, when it already ran on this warehouse state, not run again.
    """
    body = sql.strip()
    if body[:4].upper() == "WITH" and body[4:5].isspace():
        return f"WITH {name} AS ({rows_sql}),\n{body[5:]}"
    return f"WITH {name} AS ({rows_sql})\n{body}"


def frame_over(con: duckdb.DuckDBPyConnection, rows_sql: str, sql: str, name: str = "rel") -> pd.DataFrame:
    """:func:`over` as a frame (DECIMAL kept as Decimal), through the query cache. The rows are derived once per
    read-only connection (:func:`finops_kit.querycache.materialized`): the storage report's 14 tables read the
    same few row sets (each row's storage class and charge kind by the rules' regular expressions: 60-70 ms a
    query on the demo warehouse)."""
    from .querycache import frame as cached
    from .querycache import materialized

    return cached(con, over(f"SELECT * FROM {materialized(con, rows_sql, 'rows')}", sql, name))


DIMENSIONS = ("provider", "service", "storage_class", "charge_kind", "month", "account", "region", "bucket", "team")


def checked_dimensions(by: str | Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """``by`` as a list of dimension names, or a one-line error naming the unknown ones and the allowed set."""
    dims = [by] if isinstance(by, str) else list(by)
    bad = [d for d in dims if d not in allowed]
    if bad:
        raise ConfigError(f"{what}: unknown dimension(s) {bad}; expected some of {list(allowed)}")
    return dims


def _dims(by: str | Sequence[str]) -> list[str]:
    return checked_dimensions(by, DIMENSIONS, "storage inventory")


def inventory(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = ("provider", "storage_class"),
              **filters: Any) -> pd.DataFrame:
    """Storage spend and volume per dimension, with each charge kind's cost in its own column.

    ``gb_months`` is the GB-months stored in the period (:func:`stored_gb_months`). ``avg_gb`` is the average
    volume stored per month, over the group's CLOSED months only: a month counts when it is a closed billing period
    for every row of the group in it (:meth:`~finops_kit.scope.Scope.closed_sql`, the rule :func:`monthly` and
    :func:`growth` use). Why: an open month holds only the days billed so far, so dividing its GB-months by one
    whole month read a steady 10,000 GB with 5 days of November billed as 7,222 GB. A group with no closed month
    (all its data in an open period) is averaged over the days billed instead: its GB-months divided by the days
    with data (the scope's completeness, ``days_with_data``) as a share of each month's days. ``avg_gb_basis``
    says which: ``closed months`` or ``days billed (no closed month)``. ``cost`` is every storage-related charge
    (EffectiveCost). Sorted by cost, largest first.
    """
    dims = _dims(by)
    sc = scoped(con, filters.get("scope"), filters.get("start"), filters.get("end"), filters.get("providers"),
                filters.get("config"))
    rows = storage_rows_sql(con, **{**filters, "scope": sc})
    g = ", ".join(dims)
    kinds = ", ".join(f"sum(cost) FILTER (WHERE charge_kind = {sql_str(k)}) AS {k}_cost" for k in CHARGE_KINDS)
    comp = sc.completeness()

    def billed(first: dt.date, last: dt.date, n: int) -> int:
        # the days billed that the scope holds: all of them, or those in its window of charge days
        if sc.basis == "billing_period":
            return n
        a, b = max(first, sc.start or first), min(last, sc.end or last)
        return max((b - a).days + 1, 0)

    covered = values_sql([(p, str(m), float(billed(a, b, n)) / float(last.day)) for p, m, a, b, n, last in
                          zip(comp["provider"], comp["billing_period"], comp["first_day"], comp["last_day"],
                              comp["days_with_data"], comp["period_last_day"], strict=True)]
                         or [("", "1970-01-01", 1.0)], ("provider", "period", "share"), alias="c")
    same = " AND ".join(f"a.{d} IS NOT DISTINCT FROM i.{d}" for d in dims)
    sql = f"""
        WITH m AS (
          -- per group and month: GB-months stored, closed (every row's billing period closed) and, for an open
          -- month, the share of its days billed
          SELECT {", ".join(f"rel.{d}" for d in dims)}, rel.month AS _month, {stored_gb_months(exact_sum=True)} AS gb,
                 -- a closed month's GB-months per whole month: the days of it the scope's window holds are a share
                 -- of it (month_shares; 1 in a billing-period scope), a row billed for the month counts whole
                 {stored_gb_months(gb_month=per_month("gb_month"), exact_sum=True)} AS gb_whole,
                 bool_and(closed) AS _closed, max(c.share) AS _share
          FROM rel LEFT JOIN {covered}
            ON c.provider = rel.provider AND CAST(c.period AS DATE) = CAST(rel.month AS DATE)
          {month_share_join(sc, 'rel.month')}
          WHERE charge_kind = {sql_str(STORED_KIND)} AND gb_month IS NOT NULL
          GROUP BY ALL
        ), a AS (
          SELECT {g},
                 -- exact sums (DECIMAL) of the months: the same figure whatever order the rows are stored in
                 CASE WHEN bool_or(_closed)
                      THEN CAST(sum(gb_whole) FILTER (WHERE _closed) AS DOUBLE) / count(*) FILTER (WHERE _closed)
                      ELSE CAST(sum(gb) AS DOUBLE) / nullif(sum(CAST(_share AS DECIMAL(18, 12))), 0) END AS avg_gb,
                 CASE WHEN bool_or(_closed) THEN 'closed months' ELSE 'days billed (no closed month)' END
                   AS avg_gb_basis
          FROM m GROUP BY {g}
        ), i AS (
          SELECT {g}, sum(cost) AS cost, {kinds},
                 {stored_gb_months()} AS gb_months,
                 {total("gb", "charge_kind = 'retrieval'")} AS retrieved_gb,
                 {total("items", "charge_kind = 'request'")} AS requests
          FROM rel GROUP BY {g}
        )
        SELECT i.* EXCLUDE (retrieved_gb, requests), a.avg_gb, i.retrieved_gb, i.requests, a.avg_gb_basis
        FROM i LEFT JOIN a ON {same}
        ORDER BY cost DESC NULLS LAST, {", ".join(f"i.{d}" for d in dims)}
    """
    df = frame_over(con, rows, sql)
    for k in CHARGE_KINDS:
        col = f"{k}_cost"
        df[col] = df[col].map(lambda v: Decimal(0) if v is None or (isinstance(v, float) and math.isnan(v)) else v)
    return df


def monthly(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = ("provider", "storage_class"),
            **filters: Any) -> pd.DataFrame:
    """Per month: average GB stored (storage GB-months), storage cost, all storage-related cost, and ``closed``
    (False for a month whose billing period is still open, or that the scope's window of charge days holds only
    part of -- :func:`month_shares`: its GB-months and cost cover only some of its days, and growth would read a
    16-day September before a whole October as +88% a month)."""
    dims = [d for d in _dims(by) if d != "month"]
    sc = scoped(con, filters.get("scope"), filters.get("start"), filters.get("end"), filters.get("providers"),
                filters.get("config"))
    rows = storage_rows_sql(con, **{**filters, "scope": sc})
    g = ", ".join(["month", *dims])
    return frame_over(con, rows, f"""
        SELECT {g}, coalesce({stored_gb_months()}, 0) AS gb,
               sum(cost) AS cost, coalesce(sum(cost) FILTER (WHERE charge_kind = 'storage'), 0) AS storage_cost,
               bool_and(closed AND (sh.num IS NULL OR sh.num = sh.den)) AS closed
        FROM rel {month_share_join(sc, 'rel.month')}
        GROUP BY {g} ORDER BY {g}
    """)


def growth(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = "provider", *, window: int = 6,
           months_ahead: int = 6, **filters: Any) -> pd.DataFrame:
    """Compound monthly growth of stored GB per group and a projection ``months_ahead`` months out.

    Closed billing periods only (see :mod:`finops_kit.scope`): an open month holds only the days billed so far and
    would read as a drop. g = (GB_last / GB_first)^(1/(n−1)) − 1 over the last ``window`` closed months; projected
    GB_{t+h} = GB_last·(1+g)^h from the last closed month, projected storage cost at that month's storage
    $/GB-month. A group with fewer than two closed months holding GB has no growth (``monthly_growth`` NaN) and
    no projection: one month is not a rate, and an open month is never used in its place. Returns one row per
    group and month with ``kind`` 'actual', 'actual (open period)' (shown, not used) or 'projected', the group's
    ``monthly_growth`` and ``growth_basis`` (the closed months it rests on, or why there is none).
    """
    dims = [d for d in _dims(by) if d != "month"]
    m = monthly(con, dims, **filters)
    out = []
    groups = m.groupby(dims, dropna=False, sort=True) if dims else [((), m)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        part = part.sort_values("month")
        part = part[part["gb"] > 0]
        if part.empty:
            continue
        tail = part[part["closed"].astype(bool)].tail(window)
        n = len(tail)
        g = math.nan
        if n >= MIN_GROWTH_MONTHS:
            first, last = float(tail["gb"].iloc[0]), float(tail["gb"].iloc[-1])
            g = (last / first) ** (1 / (n - 1)) - 1
            basis = (f"{n} closed billing periods, {pd.Timestamp(tail['month'].iloc[0]):%Y-%m} to "
                     f"{pd.Timestamp(tail['month'].iloc[-1]):%Y-%m}")
        else:
            basis = (f"no growth: {n if n else 'no'} closed billing period{'' if n == 1 else 's'} with GB stored "
                     f"in scope ({MIN_GROWTH_MONTHS} needed)")
        base = dict(zip(dims, key, strict=True))
        for rec in part.itertuples(index=False):
            out.append(base | {"month": rec.month, "gb": float(rec.gb), "storage_cost": rec.storage_cost,
                               "kind": "actual" if rec.closed else "actual (open period)",
                               "monthly_growth": g, "growth_basis": basis})
        if n < MIN_GROWTH_MONTHS:
            continue
        last_cost = Decimal(str(tail["storage_cost"].iloc[-1] or 0))
        per_gb = last_cost / Decimal(str(last)) if last else Decimal(0)
        last_month = pd.Timestamp(tail["month"].iloc[-1])
        for h in range(1, months_ahead + 1):
            gb = last * (1 + g) ** h
            out.append(base | {"month": last_month + pd.DateOffset(months=h), "gb": gb,
                               "storage_cost": (per_gb * Decimal(str(gb))).quantize(Decimal("0.01")),
                               "kind": "projected", "monthly_growth": g, "growth_basis": basis})
    return pd.DataFrame(out, columns=[*dims, "month", "gb", "storage_cost", "kind", "monthly_growth",
                                      "growth_basis"])


def growth_table(gr: pd.DataFrame, by: str | Sequence[str] = "provider") -> pd.DataFrame:
    """One row per group of :func:`growth`: ``monthly_growth`` (NaN without two closed months) and its basis."""
    dims = [d for d in _dims(by) if d != "month"]
    cols = [*dims, "monthly_growth", "growth_basis"]
    if gr.empty:
        return pd.DataFrame(columns=cols)
    return gr.groupby(dims, dropna=False, sort=True)[["monthly_growth", "growth_basis"]].first().reset_index()[cols]


def growth_note(table: pd.DataFrame, by: str = "provider", scope: Any = None) -> str | None:
    """A sentence naming the groups of :func:`growth_table` without a growth figure and why, else None.

    With the ``scope`` the reasons are the scope's own: the months its charge days cover only in part (a part of a
    month's GB-months would read as a drop: :meth:`~finops_kit.scope.Scope.month_share`) and its open billing periods
    (data not complete) of those groups; without one, both are named as what a month must not be."""
    missing = table[table["monthly_growth"].isna()]
    if missing.empty:
        return None
    names = ", ".join(str(v) for v in missing[by])
    head = (f"No growth rate or projection for {names}: a compound monthly growth needs {MIN_GROWTH_MONTHS} closed "
            "billing periods with GB stored, each whole in scope")
    tail = "; a scope holding two such months gives one."
    if scope is None:
        return (head + ": a month the scope's charge days cover only in part, or an open period (data not complete), "
                "would read as a drop" + tail)
    c = scope.completeness()
    cut = []
    for p in sorted(set(c["billing_period"])):
        share, days = scope.month_share(p), pd.Timestamp(p).days_in_month
        if 0 < share < 1:
            cut.append(f"{p:%Y-%m} ({int(share * days)} of {days} days)")
    op = scope.open_periods()
    if by == "provider":
        op = op[op["provider"].isin(set(missing[by]))]
    opened = [f"{r.provider} {r.label}" if by == "provider" else r.label for r in op.itertuples()]
    why = []
    if cut:
        why.append(f"the scope's charge days cover {' and '.join(cut)} only in part, and a part of a month's GB "
                   "would read as a drop (a billing-period scope, or charge days from a month's first day to its "
                   "last, holds whole months)")
    if opened:
        why.append(f"{'an open billing period' if len(opened) == 1 else 'open billing periods'} "
                   f"({'; '.join(opened)}) would read as a drop (data not complete)")
    return head + "".join(": " + w if i == 0 else "; " + w for i, w in enumerate(why)) + (
        "; the basis column counts the closed months each holds" + tail)


def charges(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = ("provider", "storage_class"),
            **filters: Any) -> pd.DataFrame:
    """Cost by charge kind (request, retrieval, early deletion, monitoring, transition, overhead, storage)."""
    dims = _dims(by)
    rows = storage_rows_sql(con, **filters)
    g = ", ".join([*dims, "charge_kind"])
    return frame_over(con, rows, f"""
        SELECT {g}, sum(cost) AS cost, {total("gb")} AS gb, {total("items")} AS items
        FROM rel GROUP BY {g} ORDER BY cost DESC NULLS LAST, {g}
    """)


# ----------------------------------------------------------------------------------------------------------------
# prices

@dataclass(frozen=True)
class StoragePrice:
    """One storage class's list prices (see the header of ``data/storage_prices.csv`` for the units)."""

    provider: str
    storage_class: str
    price_per_gb_month: Decimal
    retrieval_per_gb: Decimal
    transition_per_1000: Decimal
    monitoring_per_1000: Decimal
    min_days: int
    min_object_kb: Decimal
    overhead_kb: Decimal
    standard_overhead_kb: Decimal
    min_age_days: int
    access: str
    api_class: str
    region: str
    currency: str
    as_of: str
    source: str


@dataclass
class PriceTable:
    """The dated storage price table: look up a class with ``table[(provider, storage_class)]``."""

    prices: dict[tuple[str, str], StoragePrice]
    path: str
    as_of: str
    sources: list[str] = field(default_factory=list)

    def __getitem__(self, key: tuple[str, str]) -> StoragePrice:
        return self.prices[key]

    def get(self, provider: str, storage_class: str) -> StoragePrice | None:
        return self.prices.get((provider, storage_class))

    @property
    def currency(self) -> str | None:
        """The currency of the prices (the ``currency`` column) when every row has the same one, else None."""
        found = {p.currency for p in self.prices.values()}
        return found.pop() if len(found) == 1 else None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([p.__dict__ for p in self.prices.values()])

    def unverified(self, provider: str, storage_class: str) -> bool:
        """Whether the row's ``source`` says part of it was not checked against a citable price list."""
        p = self.get(provider, storage_class)
        return p is not None and "unverified" in p.source.lower()


PRICE_COLUMNS = ("provider", "storage_class", "price_per_gb_month", "retrieval_per_gb", "transition_per_1000",
                 "monitoring_per_1000", "min_days", "min_object_kb", "overhead_kb", "standard_overhead_kb", "min_age_days",
                 "access",
                 "api_class", "region", "currency", "as_of", "source")


def load_prices(path: str | os.PathLike | None = None) -> PriceTable:
    """Read the storage price table (the packaged dated default, ``$FINOPS_STORAGE_PRICES`` or ``path``).

    Every value is checked: a bad number or date is a one-line error naming the file, row and column.
    """
    path = str(path) if path else os.environ.get(STORAGE_PRICES_ENV) or None
    rows = read_table("storage_prices.csv", path)
    where = path or "finops_kit/data/storage_prices.csv"
    if not rows:
        raise InputError(where, "no price rows")
    _require(rows, PRICE_COLUMNS, where)
    prices: dict[tuple[str, str], StoragePrice] = {}
    for r in rows:
        row = int(r["_row"])
        vals: dict[str, Any] = {}
        for c in PRICE_COLUMNS:
            v = r[c]
            if c in ("price_per_gb_month", "retrieval_per_gb", "transition_per_1000", "monitoring_per_1000",
                     "min_object_kb", "overhead_kb", "standard_overhead_kb", "min_days", "min_age_days"):
                try:
                    d = Decimal(v or "0")
                except ArithmeticError:
                    raise InputError(where, f"{v!r} is not a number", column=c, row=row) from None
                if d < 0 or not d.is_finite():
                    raise InputError(where, f"{v!r} must be a non-negative number", column=c, row=row)
                vals[c] = int(d) if c in ("min_days", "min_age_days") else d
            else:
                vals[c] = v
        try:
            dt.date.fromisoformat(vals["as_of"])
        except ValueError:
            raise InputError(where, f"as_of {vals['as_of']!r}: expected an ISO date YYYY-MM-DD", column="as_of",
                             row=row) from None
        vals["currency"] = vals["currency"].upper()
        if not re.fullmatch(r"[A-Z]{3}", vals["currency"]):
            raise InputError(where, f"currency {r['currency']!r}: expected the ISO 4217 code of the prices (USD)",
                             column="currency", row=row)
        if vals["access"] not in ("instant", "hours"):
            raise InputError(where, f"access {vals['access']!r}: expected 'instant' or 'hours'", column="access",
                             row=row)
        prices[(vals["provider"], vals["storage_class"])] = StoragePrice(**vals)
    dates = sorted({p.as_of for p in prices.values()})
    as_of = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
    return PriceTable(prices, where, as_of, sorted({p.source for p in prices.values()}))


# ----------------------------------------------------------------------------------------------------------------
# the lifecycle economics (pure functions, tested against hand-computed values)

def _d(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def break_even_access(price_a: Any, price_b: Any, retrieval_a: Any = 0, retrieval_b: Any = 0) -> Decimal | None:
    """Monthly read fraction a* = (p_A − p_B)/(r_B − r_A) below which class B is cheaper than A.

    ``None`` when B's retrieval fee is not higher than A's (then B is cheaper at every access rate if p_B < p_A,
    and never if p_B ≥ p_A). Example (methods.md): Standard → Standard-IA = (0.023 − 0.0125)/0.01 = 1.05.
    """
    pa, pb, ra, rb = _d(price_a), _d(price_b), _d(retrieval_a), _d(retrieval_b)
    if rb <= ra:
        return None
    return (pa - pb) / (rb - ra)


def payback_months(transition_per_1000: Any, object_kb: Any, price_a: Any, price_b: Any) -> Decimal | None:
    """Months for one object's transition fee to be repaid by the cheaper storage: H = c_t/(size·(p_A − p_B)).

    ``c_t`` = transition_per_1000/1000 per object, size in GB = object_kb/1024². ``None`` when B is not cheaper.
    Example: a 128 KB object to Standard-IA: 0.00001/(0.0001220703125 × 0.0105) ≈ 7.80 months.
    """
    dp = _d(price_a) - _d(price_b)
    size_gb = _d(object_kb) / KB_PER_GB
    if dp <= 0 or size_gb <= 0:
        return None
    return (_d(transition_per_1000) / 1000) / (size_gb * dp)


def billed_lifetime_factor(days_in_class: Any, min_days: int) -> Decimal:
    """Early deletion bills max(lifetime, minimum duration): the billed/used ratio of storage in a class."""
    t = _d(days_in_class)
    if t <= 0:
        raise ValueError("days_in_class must be positive")
    return max(t, Decimal(min_days)) / t


def intelligent_tiering_mix(access: Any) -> tuple[Decimal, Decimal, Decimal]:
    """Steady-state share of data in the Frequent / Infrequent / Archive Instant tiers of S3 Intelligent-Tiering.

    With probability q = min(a, 1) that an object is read in a month, an object sits in Infrequent Access after
    30 days without access and in Archive Instant Access after 90: shares q, (1−q) − (1−q)³, (1−q)³.
    """
    q = min(_d(access), Decimal(1))
    cold = (1 - q) ** 3
    return q, (1 - q) - cold, cold


def it_price_per_gb(prices: PriceTable, access: Any, provider: str = "AWS") -> Decimal:
    fa, ia, aia = intelligent_tiering_mix(access)
    p = prices.get
    return (fa * p(provider, "S3 Intelligent-Tiering Frequent Access").price_per_gb_month
            + ia * p(provider, "S3 Intelligent-Tiering Infrequent Access").price_per_gb_month
            + aia * p(provider, "S3 Intelligent-Tiering Archive Instant Access").price_per_gb_month)


@dataclass
class Scenario:
    """A storage group: volume, object size, access and lifetime, the inputs of :func:`monthly_cost`."""

    gb: Decimal
    avg_object_kb: Decimal
    access: Decimal                      # GB read per month / GB stored
    lifetime_days: Decimal | None = None  # None: long-lived data
    apply_early_deletion: bool = True     # False when the lifetime is only a lower bound

    @property
    def objects(self) -> Decimal:
        return self.gb * KB_PER_GB / self.avg_object_kb if self.avg_object_kb > 0 else Decimal(0)


def monthly_cost(price: StoragePrice, s: Scenario, prices: PriceTable | None = None) -> Decimal:
    """Steady-state monthly cost of keeping the scenario's data in one class.

    storage = billed GB × p × early-deletion factor, where billed GB counts each object at least the class's
    minimum size plus its per-object overhead at the class price, plus the overhead billed at the standard class
    (``standard_overhead_kb``: S3 Glacier Flexible/Deep Archive, 8 KB per object at S3 Standard); reads = a × GB × r; monitoring = objects × fee/1000 (Intelligent-
    Tiering, only objects ≥ 128 KB are monitored and tiered). Intelligent-Tiering's price is the access-dependent
    tier mix of :func:`intelligent_tiering_mix`.
    """
    objects = s.objects
    if price.storage_class == INTELLIGENT_TIERING:
        if prices is None:
            raise ValueError("pricing Intelligent-Tiering needs the price table (its tiers)")
        if s.avg_object_kb < price.min_object_kb:  # not monitored, stays in Frequent Access
            return s.gb * prices.get(price.provider, "S3 Intelligent-Tiering Frequent Access").price_per_gb_month
        return s.gb * it_price_per_gb(prices, s.access, price.provider) + objects * price.monitoring_per_1000 / 1000
    per_object_kb = max(s.avg_object_kb, price.min_object_kb) + price.overhead_kb
    billed_gb = objects * per_object_kb / KB_PER_GB if s.avg_object_kb > 0 else s.gb
    factor = Decimal(1)
    if s.lifetime_days and s.apply_early_deletion and price.min_days:
        factor = billed_lifetime_factor(s.lifetime_days, price.min_days)
    # S3 Glacier Flexible Retrieval / Deep Archive bill 32 KB of index per object at the archive price and 8 KB
    # of name and metadata at S3 Standard: pricing all 40 KB at the archive rate understates small-object archives
    # (Deep Archive: -14% at 1 MB objects, -63% at 64 KB) and tilts recommendations towards archive classes.
    standard_overhead = Decimal(0)
    if price.standard_overhead_kb and s.avg_object_kb > 0:
        std = standard_class(prices, price.provider) if prices is not None else None
        if std is None:
            raise ValueError(f"pricing {price.storage_class}'s per-object overhead at the standard class needs the "
                             f"price table with a {price.provider} class whose api_class is STANDARD")
        standard_overhead = objects * price.standard_overhead_kb / KB_PER_GB * std.price_per_gb_month
    return (billed_gb * price.price_per_gb_month * factor + standard_overhead
            + s.access * s.gb * price.retrieval_per_gb + objects * price.monitoring_per_1000 / 1000)


def standard_class(prices: PriceTable, provider: str) -> StoragePrice | None:
    """The provider's standard (hot) class, the one whose ``api_class`` is STANDARD (S3 Standard for AWS)."""
    return next((p for (prov, _), p in sorted(prices.prices.items()) if prov == provider
                 and p.api_class == "STANDARD"), None)


# ----------------------------------------------------------------------------------------------------------------
# recommendations

GROUPS = ("bucket", "team", "account")
#: Classes a lifecycle rule is never proposed into: the Intelligent-Tiering tiers are reached through the
#: Intelligent-Tiering class itself, Reduced Redundancy is a legacy class.
NOT_TARGETS = {"S3 Reduced Redundancy"}


def _group_stats(con: duckdb.DuckDBPyConnection, group_by: str, filters: dict[str, Any]) -> pd.DataFrame:
    """Per provider, group and storage class: current GB (last closed month), span, activity (monthly averages).

    Reads are the CLASS's own: ``retrieved_gb_month`` and ``reads_month`` count the retrieval and read-request rows
    the storage rules classify into that class (``Requests-SIA-Tier2`` / ``Retrieval-SIA`` are Standard-IA's, ``Cool
    Read Operations`` Azure Cool's, ``Requests-Tier2`` / ``Hot Read Operations`` the standard class's), so data that is
    never read is not modeled as read because another class of the group is. ``group_reads`` is whether any class of
    the group shows a read measure. Writes (``writes_month``) stay per group: they measure the group's turnover
    (the data's lifetime), and objects reach a colder class by transition, not by a PUT billed to it.
    ``gb_no_bucket``: the GB (same month) on rows without a bucket (:data:`NO_BUCKET`).
    """
    sc = scoped(con, filters.get("scope"), filters.get("start"), filters.get("end"), filters.get("providers"),
                filters.get("config"))
    rows = storage_rows_sql(con, **{**filters, "scope": sc})
    grp = group_by
    return frame_over(con, rows, f"""
        WITH rel AS (
          -- every measure per whole month: a window of days covering 14 of October's 31 days holds 14/31 of its
          -- GB-months, requests and cost (month_shares); a row billed for the month counts whole
          SELECT raw.* REPLACE ({per_month("raw.gb_month", "raw.month_long")} AS gb_month,
                                {per_month("raw.gb", "raw.month_long")} AS gb,
                                {per_month("raw.items", "raw.month_long")} AS items,
                                {per_month("raw.cost", "raw.month_long", money=True)} AS cost),
                 raw.items AS items_as_billed  -- a count of objects monitored is a level, not a flow: not scaled
          FROM raw {month_share_join(sc, 'raw.month')}
        ), st AS (
          SELECT provider, {grp} AS grp, storage_class, month, {stored_gb_months()} AS gb, sum(cost) AS cost,
                 coalesce({stored_gb_months(where=f"bucket = {sql_str(NO_BUCKET)}")}, 0) AS gb_no_bucket,
                 bool_and(closed) AS closed, list(DISTINCT bucket ORDER BY bucket) AS buckets
          FROM rel WHERE charge_kind = {sql_str(STORED_KIND)} AND gb_month IS NOT NULL GROUP BY ALL
        ), last AS (
          -- size from the latest closed billing period: an open month's GB-months cover only the days billed so
          -- far (the span still counts every month seen)
          SELECT provider, grp, coalesce(max(month) FILTER (WHERE closed), max(month)) AS size_month,
                 max(month) AS last_month, min(month) AS first_month, count(DISTINCT month) AS months
          FROM st GROUP BY ALL
        ), cur AS (
          SELECT st.provider, st.grp, st.storage_class, st.gb, st.cost, st.gb_no_bucket, st.buckets, last.last_month,
                 last.first_month, last.months,
                 (SELECT sum(p.gb) FROM st p WHERE p.provider = st.provider AND p.grp = st.grp
                    AND p.storage_class = st.storage_class
                    AND p.month = last.size_month - INTERVAL 1 MONTH) AS gb_prev
          FROM st JOIN last USING (provider, grp) WHERE st.month = last.size_month
        ), act AS (
          -- reads per class: the rules classify retrieval and request rows by the class they read
          SELECT provider, {grp} AS grp, storage_class,
                 coalesce({total("gb", "charge_kind = 'retrieval'")}, 0) AS retrieved_gb,
                 coalesce({total("items", "charge_kind = 'request' AND operation = 'read'")}, 0) AS reads
          FROM rel GROUP BY ALL
        ), grp_act AS (
          SELECT provider, {grp} AS grp,
                 coalesce({total("gb", "charge_kind = 'retrieval'")}, 0) > 0
                   OR coalesce({total("items", "charge_kind = 'request' AND operation = 'read'")}, 0) > 0
                   AS group_reads,
                 coalesce({total("items", "charge_kind = 'request' AND operation = 'write'")}, 0) AS writes,
                 max(items_as_billed) FILTER (WHERE charge_kind = 'monitoring') AS monitored_objects
          FROM rel GROUP BY ALL
        )
        SELECT cur.*, coalesce(act.retrieved_gb, 0) / greatest(cur.months, 1) AS retrieved_gb_month,
               coalesce(act.reads, 0) / greatest(cur.months, 1) AS reads_month,
               coalesce(g.group_reads, false) AS group_reads,
               coalesce(g.writes, 0) / greatest(cur.months, 1) AS writes_month,
               g.monitored_objects
        FROM cur LEFT JOIN act USING (provider, grp, storage_class) LEFT JOIN grp_act g USING (provider, grp)
        WHERE cur.gb > 0
        ORDER BY cur.provider, cur.grp, cur.storage_class
    """, name="raw")


def _egress_gb(con: duckdb.DuckDBPyConnection, group_by: str, filters: dict[str, Any]) -> dict[tuple, float]:
    """GB per month leaving each storage group (internet, inter-region, CDN): bytes out are bytes read."""
    from .egress import transfer_rows_sql

    sc = scoped(con, filters.get("scope"), filters.get("start"), filters.get("end"), filters.get("providers"),
                filters.get("config"))
    # per whole month: a month the scope's window holds part of is scaled by its share (month_shares)
    rows = con.execute(over(transfer_rows_sql(con, **{**filters, "scope": sc}), f"""
        SELECT provider, {group_by} AS grp,
               {total(per_month("rel.gb", "false"))}
                 / greatest(count(DISTINCT month), 1) AS gb_month
        FROM rel {month_share_join(sc, 'rel.month')}
        WHERE direction = 'out' AND transfer_type IN ('Internet egress', 'Inter-region', 'CDN')
          AND regexp_matches(service, '(?i)storage|^s3$') AND gb IS NOT NULL
        GROUP BY ALL
    """)).fetchall()
    return {(p, g): float(v or 0) for p, g, v in rows}


#: ``access_source`` of a group whose access profile comes from the bill (:func:`recommend`).
ACCESS_FROM_BILL = "bill (largest of the class's retrievals, its GET requests × object size, egress by GB stored)"


def _gb_text(gb: Any) -> str:
    """GB for a sentence: whole GB with separators, three significant digits below 10 GB."""
    return f"{float(gb):,.0f}" if float(gb) >= 10 else f"{float(gb):.3g}"


def _q(x: Any, places: str = "0.01") -> Decimal:
    return _d(x).quantize(Decimal(places))


def recommend(con: duckdb.DuckDBPyConnection, prices: PriceTable | str | None = None, *,
              group_by: str = "bucket", access_fraction: float = 0.1, access_from_bill: bool = True,
              avg_object_kb: float = 1024, lifetime_days: float | None = None, transition_after_days: int = 30,
              min_saving: float = 0, archive_max_access: float = 0.01, start: Any = None, end: Any = None,
              providers: Iterable[str] | str | None = None, config: Any = None,
              team_key: str = "team", scope: Any = None) -> pd.DataFrame:
    """Every cheaper class for each (provider, group, current class), priced, ranked by monthly saving.

    Inputs per group and current class, from the bill: current size (GB-months of the last closed month with
    storage), the access profile a = GB read per month / GB stored OF THAT CLASS — the LARGEST of the class's
    retrieval GB, the class's GET requests × ``avg_object_kb`` and its share of the group's storage egress — and the
    data's lifetime: the ``lifetime_days`` parameter, else the group's turnover GB stored / GB written per month
    (PUT requests × ``avg_object_kb``) in days, else the span the group has been in the bill (a lower bound).

    Which reads are a class's: the retrieval and request rows the storage rules classify into it (``Retrieval-SIA``
    and ``Requests-SIA-Tier2`` are Standard-IA's, ``Cool Read Operations`` Azure Cool's, ``Requests-Tier2`` and
    ``Hot Read Operations`` the standard class's). Egress cannot be attributed to a class (a transfer row names
    the bucket, not the class the bytes were read from), so the group's egress is apportioned by GB stored: each
    class gets egress × its GB / the group's GB, i.e. the same egress read fraction for every class. When the bill
    shows reads (or egress) for any class of the group, a class without any has a = 0: the bill meters its reads
    and there were none. Only a group whose bill shows no read at all uses the ``access_fraction`` parameter.
    Why per class: a per-group profile modeled the demo's unread Azure Cool data (326,372 GB, $3,264 billed in the
    sized month, $0 retrieval) as read 15×/month from its Hot sibling's reads: $52,192/month, and Cool -> Cold
    vanished. Each class's modeled ``current_monthly_cost`` should be close to its billed storage + retrieval.

    Why the largest and not the sum: the three measure the same bytes read (a GET of an object served to the
    internet bills a request, the egress of its bytes and, from an IA class, their retrieval), so each is a lower
    bound of the bytes read; adding them counted one read two or three times (2,000 GB read of 10,000 GB stored
    gave a = 0.4 instead of 0.2 and recommended One Zone-IA saving $90/month instead of Glacier IR saving $130).

    Model (steady state, per month): data older than D = max(``transition_after_days``, the class's minimum age)
    moves — a share (L − D)/L when the lifetime L is estimated; it is billed in B for max(L − D, min_days)
    (early deletion), each object at least the class's minimum size plus overhead; reads cost a × GB × r_B; the
    existing objects pay the transition fee once (``one_time_cost``) and new objects every month. A target whose
    minimum duration exceeds the observed lifetime is never proposed silently: ``warning`` says so (and the cost
    includes the early-deletion charge when the lifetime is an estimate rather than a lower bound).

    Classes that need a restore before reading (``access = hours``: Glacier Flexible, Deep Archive, Azure Archive)
    are ``eligible`` only when a ≤ ``archive_max_access``: cheap on paper, but a job that reads the data stalls.

    ``unverified_prices`` names the classes (current, target) whose price row is marked unverified in the table:
    a saving that rests on them must be checked against the provider's price list before acting.

    Returns one row per candidate with ``recommended`` True for the best eligible one of each group when its
    saving is at least ``min_saving``; sorted by monthly saving, largest first. ``attrs['price_as_of']`` is the price date.
    ``buckets`` names the buckets (containers) holding the group's current class in the sized month: the buckets a
    lifecycle configuration for the row goes on (:func:`lifecycle_configurations`). Rows without a bucket
    (:data:`NO_BUCKET`, no ResourceId/ResourceName) are in no bucket: they are not listed, no rule can be written for
    them (``warning`` says how many GB), and they never make two groups "share" a bucket.

    Shared buckets: grouped by team or account, a group's configuration is one whole-bucket rule per bucket of the
    group, so a group's class in a bucket that also holds another group's data is not ``eligible`` (the rule
    would move the other group's data too; ``warning`` names them). Grouped by bucket the group is the bucket, and
    nothing is shared.

    Currency: ``currency`` is that of the prices and the bill a row compares. The price table states its currency
    (its ``currency`` column; the packaged one is USD); a group billed in another currency (a EUR bill) is not
    priced -- a USD saving is not a EUR saving, and a made-up exchange rate is not a saving either -- and is listed
    in ``attrs['not_priced']`` (records of provider, group, current class, gb, reason; :func:`currency_note` says
    it in a sentence), as :func:`finops_kit.egress.tiered_egress` leaves the list cost out for such a bill.
    """
    if group_by not in GROUPS:
        raise ConfigError(f"group_by {group_by!r}: expected one of {list(GROUPS)}")
    if avg_object_kb is None or float(avg_object_kb) <= 0:
        raise ConfigError(f"avg_object_kb must be a positive number of KB, not {avg_object_kb!r}")
    if access_fraction is None or float(access_fraction) < 0:
        raise ConfigError(f"access_fraction must be >= 0 (GB read per month / GB stored), not {access_fraction!r}")
    if lifetime_days is not None and float(lifetime_days) <= 0:
        raise ConfigError(f"lifetime_days must be positive, not {lifetime_days!r}")
    table = prices if isinstance(prices, PriceTable) else load_prices(prices)
    sc = scoped(con, scope, start, end, providers, config)
    filters = dict(start=start, end=end, providers=providers, config=config, team_key=team_key, scope=sc)
    bill_currency = getattr(sc, "currency", None)
    not_priced: list[dict[str, Any]] = []
    stats = _group_stats(con, group_by, filters)
    egress = _egress_gb(con, group_by, filters) if access_from_bill and len(stats) else {}
    kb = _d(avg_object_kb)
    out: list[dict[str, Any]] = []
    totals = stats.groupby(["provider", "grp"])["gb"].sum().to_dict() if len(stats) else {}
    # which groups hold data in each bucket: a lifecycle rule covers a whole bucket (see lifecycle_configurations)
    holders: dict[tuple[str, str], set[str]] = {}
    for s in stats.itertuples(index=False):
        for b in (s.buckets if s.buckets is not None else ()):
            if str(b) != NO_BUCKET:  # rows without a bucket are in no bucket: they share none
                holders.setdefault((s.provider, str(b)), set()).add(str(s.grp))
    for s in stats.itertuples(index=False):
        cur = table.get(s.provider, s.storage_class)
        if cur is None or s.storage_class.startswith(INTELLIGENT_TIERING):
            continue  # not an object-storage class we price, or already auto-tiered
        if bill_currency is not None and cur.currency != bill_currency:
            not_priced.append({"provider": s.provider, "group": s.grp, "current_class": s.storage_class,
                               "gb": float(s.gb), "reason": f"billed in {bill_currency}; the price table is in "
                               f"{cur.currency} ({table.path}): use a price table in {bill_currency}"})
            continue
        gb = _d(round(float(s.gb), 6))
        group_gb = _d(round(float(totals[(s.provider, s.grp)]), 6))
        # access profile of THIS class: its retrievals, its GETs x object size and its share of the group's storage
        # egress (by GB stored) each measure (part of) the same bytes read -- a GET served to the internet is one
        # read, billed as a request AND as egress -- so each is a lower bound and the largest is the estimate
        group_egress = _d(round(egress.get((s.provider, s.grp), 0.0), 6))
        read_gb = max(_d(round(float(s.retrieved_gb_month or 0), 6)),
                      _d(round(float(s.reads_month or 0), 3)) * kb / KB_PER_GB,
                      group_egress * gb / group_gb if group_gb > 0 else Decimal(0))
        if access_from_bill and gb > 0 and (bool(s.group_reads) or group_egress > 0):
            # the bill meters this group's reads: a class without any was not read (a = 0), not "unknown"
            access, access_source = read_gb / gb, ACCESS_FROM_BILL
        else:
            access, access_source = _d(access_fraction), "parameter"
        # lifetime
        span_days = _d((pd.Timestamp(s.last_month) + pd.DateOffset(months=1) - pd.Timestamp(s.first_month)).days)
        written_gb = _d(round(float(s.writes_month or 0), 3)) * kb / KB_PER_GB
        if lifetime_days is not None:
            life, basis, estimate = _d(lifetime_days), "parameter", True
        elif written_gb > 0:
            life, basis, estimate = group_gb / written_gb * DAYS_PER_MONTH, "turnover (GB stored / GB written)", True
        else:
            life, basis, estimate = span_days, "seen in the bill (lower bound)", False
        gb_prev = _d(round(float(s.gb_prev), 6)) if s.gb_prev is not None and s.gb_prev == s.gb_prev else gb
        objects = gb * KB_PER_GB / kb
        # the buckets holding this class of the group (one bucket when grouped by bucket): where a rule goes
        # (a row without a bucket, NO_BUCKET, is not a bucket: it takes no rule and shares no bucket with anyone)
        buckets = tuple(sorted({str(b) for b in (s.buckets if s.buckets is not None else ())} - {NO_BUCKET}))
        shared_with = (sorted({g for b in buckets for g in holders.get((s.provider, b), ())} - {str(s.grp)})
                       if group_by != "bucket" else [])
        no_bucket_gb = (gb if group_by == "bucket" and str(s.grp) == NO_BUCKET
                        else min(_d(round(float(s.gb_no_bucket or 0), 6)), gb))
        # the effective $/GB-month the bill shows for this class in the last month (storage rows only)
        bill_rate = (_d(round(float(s.cost), 6)) / gb if s.cost is not None and s.cost == s.cost and s.cost > 0
                     and gb > 0 and cur.price_per_gb_month > 0 else None)
        for (prov, cls), tgt in sorted(table.prices.items()):
            if prov != s.provider or cls == s.storage_class or cls in NOT_TARGETS or tgt.currency != cur.currency:
                continue
            is_it = cls == INTELLIGENT_TIERING
            if cls.startswith(INTELLIGENT_TIERING) and not is_it:
                continue
            if is_it and s.storage_class != "S3 Standard":
                continue
            if not is_it and tgt.price_per_gb_month >= cur.price_per_gb_month:
                continue
            days_after = 0 if is_it else max(int(transition_after_days), tgt.min_age_days)
            if estimate and life <= days_after:
                continue  # data is gone before it is old enough to move: nothing would transition
            share = (life - days_after) / life if estimate else Decimal(1)
            moved = Scenario(gb * share, kb, access)
            in_b = Scenario(gb * share, kb, access, lifetime_days=(life - days_after) if estimate else None,
                            apply_early_deletion=estimate)
            cost_now = monthly_cost(cur, Scenario(gb, kb, access), table)
            cost_a_moved = monthly_cost(cur, moved, table)
            cost_b = monthly_cost(tgt, in_b, table)
            if estimate:
                new_objects = objects * share * DAYS_PER_MONTH / (life - days_after)
            else:
                new_objects = max(gb - gb_prev, Decimal(0)) * KB_PER_GB / kb
            ongoing = new_objects * tgt.transition_per_1000 / 1000
            new_cost = cost_now - cost_a_moved + cost_b + ongoing
            saving = cost_now - new_cost
            one_time = objects * share * tgt.transition_per_1000 / 1000
            warnings = []
            if bill_rate is not None and abs(bill_rate / cur.price_per_gb_month - 1) > Decimal("0.1"):
                # e.g. a GCS US multi-region bucket ($0.026) priced with the table's regional rate ($0.020)
                warnings.append(f"the bill's {s.storage_class} rate ${float(bill_rate):.4g}/GB-month differs from "
                                f"the price table's ${float(cur.price_per_gb_month):.4g} ({cur.region}): a "
                                "different location or a negotiated rate; use a price table with your rates")
            if tgt.min_days and life < tgt.min_days + days_after:
                warnings.append(
                    f"minimum storage duration {tgt.min_days} d exceeds the data's observed lifetime in the class "
                    f"(~{int(max(life - days_after, 0))} d of {int(life)} d, {basis}): "
                    + ("early-deletion charges are included" if estimate
                       else "objects deleted sooner pay early-deletion charges"))
            if tgt.min_object_kb and kb < tgt.min_object_kb and not is_it:
                warnings.append(f"objects average {float(kb):g} KB < {tgt.min_object_kb} KB minimum billable size "
                                f"(each billed as {tgt.min_object_kb} KB; S3 lifecycle skips < 128 KB by default)")
            if is_it and kb < tgt.min_object_kb:
                warnings.append("objects < 128 KB are not monitored or tiered: Intelligent-Tiering saves nothing")
            eligible = True
            if no_bucket_gb > 0:
                warnings.append(
                    ("all of this data is" if no_bucket_gb >= gb else
                     f"{_gb_text(no_bucket_gb)} of {_gb_text(gb)} GB is")
                    + " on bill rows without a bucket (no ResourceId/ResourceName): no lifecycle rule can be "
                    "written for it until its bucket is known"
                    + ("" if no_bucket_gb >= gb else "; the saving assumes it moves too"))
            if shared_with:
                # a team's (account's) data in a bucket that also holds another group's: the whole-bucket rule the
                # group's configuration is (lifecycle_configurations) would move both; a team is a bucket
                # (resource) tag, not an object tag a rule could filter on
                eligible = False
                warnings.append(f"not proposed: bucket(s) {', '.join(buckets)} also hold data of "
                                f"{', '.join(shared_with)}; a lifecycle rule applies to a whole bucket -- see "
                                "group_by='bucket'")
            if tgt.access == "hours":
                warnings.append("not instantly readable: a restore takes hours; only for data you can wait for")
                if access > _d(archive_max_access):
                    eligible = False
                    warnings.append(f"not proposed: access {float(access):.3g}/month > archive_max_access "
                                    f"{archive_max_access:g}")
            if "One Zone" in cls:
                warnings.append("single availability zone: only for data you can re-create")
            a_star = None if is_it else break_even_access(cur.price_per_gb_month, tgt.price_per_gb_month,
                                                         cur.retrieval_per_gb, tgt.retrieval_per_gb)
            if a_star is not None and access > a_star:
                warnings.append(f"access {float(access):.3g}/month is above the break-even {float(a_star):.3g}: "
                                "retrievals would cost more than the storage saves")
            out.append({
                "provider": s.provider, "group": s.grp, "buckets": buckets,
                "current_class": s.storage_class, "target_class": cls,
                "api_class": tgt.api_class, "gb": float(gb), "objects": int(objects), "access": float(access),
                "access_source": access_source, "lifetime_days": int(life), "lifetime_basis": basis,
                "transition_after_days": days_after, "moved_share": float(share),
                "break_even_access": None if a_star is None else float(a_star),
                "current_monthly_cost": _q(cost_now), "new_monthly_cost": _q(new_cost),
                "monthly_saving": _q(saving), "one_time_cost": _q(one_time),
                "payback_months": (float(one_time / saving) if saving > 0 else None),
                "min_days": tgt.min_days, "min_object_kb": float(tgt.min_object_kb),
                "warning": "; ".join(warnings), "eligible": eligible, "currency": cur.currency,
                "price_as_of": tgt.as_of,
                "unverified_prices": ", ".join(c for c in (s.storage_class, cls) if table.unverified(prov, c)),
            })
    cols = ["provider", "group", "buckets", "current_class", "target_class", "api_class", "gb", "objects", "access",
            "access_source", "lifetime_days", "lifetime_basis", "transition_after_days", "moved_share",
            "break_even_access", "current_monthly_cost", "new_monthly_cost", "monthly_saving", "one_time_cost",
            "payback_months", "min_days", "min_object_kb", "warning", "eligible", "currency", "price_as_of",
            "unverified_prices"]
    df = pd.DataFrame(out, columns=cols)
    if len(df):
        df["_s"] = df["monthly_saving"].map(float)
        df = df.sort_values(["_s", "provider", "group", "target_class"], ascending=[False, True, True, True])
        ok = df["eligible"] & (df["_s"] > 0) & (df["_s"] >= float(min_saving))
        first = ~df[ok].duplicated(["provider", "group", "current_class"])
        df["recommended"] = False
        df.loc[first[first].index, "recommended"] = True
        df = df.drop(columns="_s").reset_index(drop=True)
        df.insert(0, "rank", range(1, len(df) + 1))
    else:
        df["recommended"] = pd.Series(dtype=bool)
        df.insert(0, "rank", pd.Series(dtype=int))
    # a tuple of records, not a frame: pandas compares attrs when frames are concatenated
    df.attrs.update(price_as_of=table.as_of, price_path=table.path, group_by=group_by, not_priced=tuple(not_priced))
    return df


def recommended_totals(recs: pd.DataFrame) -> dict[str, Any]:
    """Every recommended transition of :func:`recommend` (one per provider, group and current class, so they add
    up), however many rows a report shows: ``count``, ``monthly_saving`` and ``one_time_cost`` (Decimal)."""
    best = recs[recs["recommended"].astype(bool)] if len(recs) else recs

    def add(col: str) -> Decimal:
        return sum((_d(v) for v in best[col] if v is not None and v == v), Decimal(0)) if len(best) else Decimal(0)

    return {"count": len(best), "monthly_saving": add("monthly_saving"), "one_time_cost": add("one_time_cost")}


def currency_note(recs: pd.DataFrame) -> str | None:
    """A sentence naming the groups :func:`recommend` did not price because the bill's currency is not the price
    table's (None when every group was priced)."""
    skipped = recs.attrs.get("not_priced") or ()
    if not skipped:
        return None
    names = "; ".join(f"{r['group']} ({r['current_class']})" for r in skipped)
    reasons = "; ".join(dict.fromkeys(r["reason"] for r in skipped))
    return f"{len(skipped)} storage group(s) have no lifecycle recommendation: {reasons}. Not priced: {names}."


def unverified_note(recs: pd.DataFrame) -> str | None:
    """A sentence naming the recommendations whose saving rests on a price marked unverified (None if none)."""
    if recs.empty or "unverified_prices" not in recs:
        return None
    weak = recs[recs["unverified_prices"].astype(str) != ""]
    if weak.empty:
        return None
    saving = sum((_d(v) for v in weak["monthly_saving"]), Decimal(0))
    total = sum((_d(v) for v in recs["monthly_saving"]), Decimal(0))
    names = "; ".join(f"{g} ({c} → {t}: {u})" for g, c, t, u in
                      zip(weak["group"], weak["current_class"], weak["target_class"], weak["unverified_prices"],
                          strict=True))
    return (f"{len(weak)} of {len(recs)} recommendations (${saving:,.2f} of ${total:,.2f}/month) rest on prices the "
            f"table marks unverified — check them against the provider's price list before acting: {names}.")


#: The part of a recommendation's ``warning`` that says the bill's rate is not the price table's (the saving is
#: priced at the table's rate, not at what the bill shows).
RATE_MISMATCH = "differs from the price table"


def action_caveats(recs: pd.DataFrame) -> pd.DataFrame:
    """``recs`` with ``assumed`` (the saving rests on a price the table marks unverified, or on a table rate the
    bill's own rate differs from) and ``price_note`` (the caveat a summary action carries, '' elsewhere).

    Why: the storage summary read "$3,505 per month: Lifecycle rule on acme-vision-prod-datasets: GCS Standard to
    GCS Coldline" while the body said "Check first" (4 of 8 savings rest on unverified prices) and the row warned
    "the bill's GCS Standard rate $0.026/GB-month differs from the price table's $0.02"; the spot summary already
    marked its assumed discount (review s17 prose, finding 5). No price is changed here."""
    if recs.empty:
        return recs.assign(assumed=pd.Series(dtype=bool), price_note=pd.Series(dtype=str))
    notes, flags = [], []
    unverified = recs["unverified_prices"] if "unverified_prices" in recs else pd.Series("", index=recs.index)
    warning = recs["warning"] if "warning" in recs else pd.Series("", index=recs.index)
    for u, w in zip(unverified.fillna("").astype(str), warning.fillna("").astype(str), strict=True):
        parts = []
        if u:
            parts.append(f"price unverified ({u}): check the provider's price list")
        parts += [x.strip() for x in w.split(";") if RATE_MISMATCH in x]
        flags.append(bool(parts))
        notes.append("; ".join(parts))
    return recs.assign(assumed=flags, price_note=notes)


def short_class(storage_class: str) -> str:
    """A storage class name without its provider prefix, for chart labels (S3 Glacier Deep Archive → Glacier
    Deep Archive, GCS Coldline → Coldline, Azure Blob Cool → Cool)."""
    return re.sub(r"^(S3|GCS|Azure Blob)\s+", "", storage_class)


def savings_chart(recs: pd.DataFrame, title: str = "Monthly saving of the top recommendations") -> Any:
    """One horizontal bar per recommendation, labelled "rank. group: current → target", largest saving on top.

    Why a label per row: two recommendations for one bucket (its Standard and its Standard-IA data, both to
    Glacier IR) used to share the label "bucket → target" and Vega-Lite stacked them into one bar.
    """
    import altair as alt

    from . import charts as ch

    df = ch.plot_frame(recs)
    df["label"] = [f"{r}. {g}: {short_class(c)} → {short_class(t)}" for r, g, c, t in
                   zip(df["rank"], df["group"].astype(str), df["current_class"], df["target_class"], strict=True)]
    order = df.sort_values("monthly_saving", ascending=False)["label"].tolist()
    return alt.Chart(df, title=title).mark_bar().encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=420)),
        x=alt.X("monthly_saving:Q", title="Monthly saving", axis=alt.Axis(format=ch.MONEY_SHORT)),
        color=ch.color("provider", df["provider"], kind="provider"),
        tooltip=["group:N", "current_class:N", "target_class:N",
                 alt.Tooltip("monthly_saving:Q", format=ch.MONEY), alt.Tooltip("one_time_cost:Q", format=ch.MONEY),
                 alt.Tooltip("payback_months:Q", format=".1f"), "warning:N"],
    ).properties(width=420, height=alt.Step(22))


# ----------------------------------------------------------------------------------------------------------------
# S3 lifecycle configuration

S3_LIFECYCLE_CLASSES = {"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}
#: S3's limit on a lifecycle rule ID.
MAX_RULE_ID = 255


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _rule_id(readable: str, suffix: str = "") -> str:
    """A rule ID of at most :data:`MAX_RULE_ID` characters: ``readable`` (plus ``-suffix``), or, when too long, its
    first characters and ``-`` and 8 hex digits of its hash (two long IDs differing past the cut stay distinct)."""
    text = f"{readable}-{suffix}" if suffix else readable
    if len(text) <= MAX_RULE_ID:
        return text
    tail = f"-{_digest(readable)}" + (f"-{suffix}" if suffix else "")
    return readable[:MAX_RULE_ID - len(tail)] + tail


def _add_rule(rules: list[dict[str, Any]], rule: dict[str, Any]) -> None:
    """Append ``rule`` to one bucket's ``rules`` unless the same rule is there already; an ID taken by a different
    rule gets ``-`` and 8 hex digits of the rule's content (deterministic, whatever the order)."""
    body = {k: v for k, v in rule.items() if k != "ID"}
    if any({k: v for k, v in r.items() if k != "ID"} == body for r in rules):
        return  # e.g. the Standard and the Standard-IA data of one bucket, both to Glacier IR after 30 days
    if rule["ID"] in {r["ID"] for r in rules}:
        rule = {**rule, "ID": _rule_id(rule["ID"], _digest(json.dumps(body, sort_keys=True, default=str)))}
    rules.append(rule)


def lifecycle_rule(target_api_class: str, days: int, *, min_object_bytes: int = 0, tag: tuple[str, str] | None = None,
                   abort_multipart_days: int | None = 7) -> dict[str, Any]:
    """One S3 lifecycle rule (the shape of ``put_bucket_lifecycle_configuration``'s ``Rules`` items)."""
    if target_api_class not in S3_LIFECYCLE_CLASSES:
        raise ConfigError(f"{target_api_class!r} is not an S3 lifecycle transition class")
    if target_api_class in ("STANDARD_IA", "ONEZONE_IA") and days < 30:
        days = 30  # S3 rejects transitions to the IA classes before 30 days
    conds: dict[str, Any] = {}
    if tag:
        conds["Tags"] = [{"Key": tag[0], "Value": tag[1]}]
    if min_object_bytes:
        conds["ObjectSizeGreaterThan"] = int(min_object_bytes)
    if len(conds) > 1 or "Tags" in conds and min_object_bytes:
        flt: dict[str, Any] = {"And": conds}
    elif tag:
        flt = {"Tag": {"Key": tag[0], "Value": tag[1]}}
    elif min_object_bytes:
        flt = {"ObjectSizeGreaterThan": int(min_object_bytes)}
    else:
        flt = {"Prefix": ""}
    rule: dict[str, Any] = {
        "ID": _rule_id(f"finops-kit-{target_api_class.lower().replace('_', '-')}-after-{days}d"
                       + (f"-{re.sub(r'[^A-Za-z0-9-]', '-', tag[1])}" if tag else "")),
        "Status": "Enabled", "Filter": flt,
        "Transitions": [{"Days": int(days), "StorageClass": target_api_class}],
    }
    if abort_multipart_days and not tag:  # S3 refuses AbortIncompleteMultipartUpload with a tag filter
        rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort_multipart_days)}
    return rule


def lifecycle_configurations(recs: pd.DataFrame, top: int = 5, team_key: str = "team") -> dict[str, dict[str, Any]]:
    """S3 lifecycle configurations for the ``top`` recommended AWS transitions, one per bucket (the argument of
    ``put_bucket_lifecycle_configuration --bucket <key>``).

    A configuration belongs to one bucket, so every group gives one configuration per bucket it holds (the
    ``buckets`` column of :func:`recommend`), and every rule covers the WHOLE bucket (no tag filter): a bucket
    group its own bucket, an account or a team each of its buckets. Why no ``team=<group>`` object-tag filter for
    a team: the kit's team is a cost-allocation tag, i.e. a tag on the bucket (the resource), which S3 does not
    copy onto the objects; its value may come from an alias key (``business_unit=vision``) and may be the kit's
    label ``(untagged)`` or ``(shared)``, which no object carries. Such a rule passed validation and matched no
    object while its saving was counted. :func:`recommend` never recommends a team's class in a bucket that also
    holds another group's data (a whole-bucket rule would move both), so a whole-bucket rule moves exactly the
    data it was priced for. ``team_key`` is kept for callers; rules no longer filter on it.

    Data on bill rows without a bucket (:data:`NO_BUCKET`) gets no configuration: ``"(no resource id)"`` is the
    kit's label, not a bucket, and a recommendation whose data is all there is skipped (it does not take one of the
    ``top`` places). A recommendation without a ``buckets`` column (a frame from before it) keeps a placeholder key
    ``"<each bucket of team <group>>"`` / ``"<each bucket of account <group>>"``. Objects under the target's minimum
    billable size are excluded with ``ObjectSizeGreaterThan`` (S3's own default since 2024).

    A rule cannot select objects by their current class: two recommendations of one bucket into the same class after
    the same age (its Standard and its Standard-IA data, both to Glacier IR) are one rule. Rule IDs are unique
    within each configuration and at most 255 characters (S3's limits), and the same for the same recommendations.
    """
    group_by = recs.attrs.get("group_by", "bucket")
    has_buckets = "buckets" in recs.columns
    chosen = recs[recs["recommended"] & (recs["provider"].str.contains("(?i)aws|amazon", regex=True))
                  & recs["api_class"].isin(S3_LIFECYCLE_CLASSES)]
    configs: dict[str, dict[str, Any]] = {}
    done = 0
    for r in chosen.itertuples(index=False):
        if done >= top:
            break
        min_bytes = int(r.min_object_kb * 1024) if r.min_object_kb and r.api_class != "INTELLIGENT_TIERING" else 0
        buckets = [str(b) for b in (getattr(r, "buckets", None) or ())]
        if group_by == "bucket":
            buckets = [str(r.group)]
        elif not has_buckets:
            buckets = [f"<each bucket of {group_by} {r.group}>"]
        buckets = [b for b in buckets if b != NO_BUCKET]
        if not buckets:
            continue  # only rows without a bucket: no configuration can name one (recommend()'s warning says so)
        done += 1
        rule = lifecycle_rule(r.api_class, int(r.transition_after_days), min_object_bytes=min_bytes)
        for bucket in buckets:
            _add_rule(configs.setdefault(bucket, {"Rules": []})["Rules"], rule)
    return configs


def validate_lifecycle_configuration(config: dict[str, Any]) -> None:
    """Check the rules S3 enforces that a local S3 emulator may not: class names, the 30-day minimum age for the
    IA classes, one filter form per rule, no AbortIncompleteMultipartUpload with a tag filter. Raises ConfigError."""
    rules = config.get("Rules")
    if not isinstance(rules, list) or not rules:
        raise ConfigError("lifecycle configuration: 'Rules' must be a non-empty list")
    ids = set()
    for i, rule in enumerate(rules):
        where = f"lifecycle rule {i} ({rule.get('ID')!r})"
        if rule.get("Status") not in ("Enabled", "Disabled"):
            raise ConfigError(f"{where}: Status must be Enabled or Disabled")
        if rule.get("ID") in ids or len(str(rule.get("ID", ""))) > 255:
            raise ConfigError(f"{where}: ID must be unique and at most 255 characters")
        ids.add(rule.get("ID"))
        flt = rule.get("Filter", {})
        if len(flt) != 1 or next(iter(flt)) not in ("Prefix", "Tag", "ObjectSizeGreaterThan",
                                                    "ObjectSizeLessThan", "And"):
            raise ConfigError(f"{where}: Filter must hold exactly one of Prefix, Tag, ObjectSize*, And")
        has_tag = "Tag" in flt or "Tags" in flt.get("And", {})
        tags = ([flt["Tag"]] if "Tag" in flt else []) + list(flt.get("And", {}).get("Tags", []))
        labels = [t.get("Value") for t in tags if t.get("Value") in (UNTAGGED, SHARED)]
        if labels:
            raise ConfigError(f"{where}: tag filter value {labels[0]!r} is the kit's label for data without (or with "
                              "a shared) tag value, which no object carries: the rule would match nothing")
        if has_tag and "AbortIncompleteMultipartUpload" in rule:
            raise ConfigError(f"{where}: AbortIncompleteMultipartUpload cannot be used with a tag filter")
        for t in rule.get("Transitions", []):
            if t.get("StorageClass") not in S3_LIFECYCLE_CLASSES:
                raise ConfigError(f"{where}: StorageClass {t.get('StorageClass')!r} is not a transition class")
            if not isinstance(t.get("Days"), int) or t["Days"] < 0:
                raise ConfigError(f"{where}: Days must be a non-negative integer")
            if t["StorageClass"] in ("STANDARD_IA", "ONEZONE_IA") and t["Days"] < 30:
                raise ConfigError(f"{where}: transitions to {t['StorageClass']} need Days >= 30")


# ----------------------------------------------------------------------------------------------------------------
# what-if: monthly cost per class as a function of the access rate (for the offline slider)

def what_if(prices: PriceTable, provider: str, gb: float, avg_object_kb: float = 1024,
            classes: Sequence[str] | None = None, lifetime_days: float | None = None,
            grid: Sequence[float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly cost of ``gb`` GB held in each class, as a function of the monthly read fraction a.

    Returns ``(coefficients, curve)``. ``coefficients`` has, per class, cost(a) = fixed + a·per_access +
    it_fa·q + it_ia·((1−q) − (1−q)³) + it_aia·(1−q)³ with q = min(a, 1) (the ``it_*`` terms are non-zero only for
    Intelligent-Tiering): a browser can evaluate it for any slider value without a kernel. ``curve`` is
    :func:`monthly_cost` on a grid of a (for lines), plus ``break_even`` rows of each class against the first
    (most expensive) class. Both are small aggregates, floats for plotting.
    """
    kb, v = _d(avg_object_kb), _d(gb)
    cands = [p for (prov, cls), p in sorted(table_items(prices)) if prov == provider
             and cls not in NOT_TARGETS and (classes is None or cls in classes)
             and not (cls.startswith(INTELLIGENT_TIERING) and cls != INTELLIGENT_TIERING)]
    if not cands:
        raise ConfigError(f"what-if: no priced storage classes for provider {provider!r}")
    cands.sort(key=lambda p: -p.price_per_gb_month)
    life = _d(lifetime_days) if lifetime_days else None
    coef = []
    for p in cands:
        s0 = Scenario(v, kb, Decimal(0), lifetime_days=life)
        if p.storage_class == INTELLIGENT_TIERING and kb >= p.min_object_kb:
            tiers = [prices.get(provider, f"{INTELLIGENT_TIERING} {t}").price_per_gb_month
                     for t in ("Frequent Access", "Infrequent Access", "Archive Instant Access")]
            fixed = s0.objects * p.monitoring_per_1000 / 1000
            coef.append((p.storage_class, float(fixed), 0.0, *(float(v * t) for t in tiers)))
        else:
            coef.append((p.storage_class, float(monthly_cost(p, s0, prices)), float(v * p.retrieval_per_gb),
                         0.0, 0.0, 0.0))
    coefficients = pd.DataFrame(coef, columns=["storage_class", "fixed", "per_access", "it_fa", "it_ia", "it_aia"])
    grid = list(grid) if grid is not None else [round(i * 0.02, 2) for i in range(0, 101)]
    curve = pd.DataFrame([(p.storage_class, a, float(monthly_cost(p, Scenario(v, kb, _d(a), lifetime_days=life),
                                                                  prices)))
                          for p in cands for a in grid], columns=["storage_class", "access", "monthly_cost"])
    base = cands[0]
    be = [(p.storage_class, break_even_access(base.price_per_gb_month, p.price_per_gb_month,
                                              base.retrieval_per_gb, p.retrieval_per_gb)) for p in cands[1:]]
    coefficients["break_even_vs_" + base.storage_class] = [None] + [None if b is None else float(b) for _, b in be]
    return coefficients, curve


def what_if_costs(coefficients: pd.DataFrame, access: Sequence[float] = (0.0,)) -> pd.DataFrame:
    """Monthly cost of each class of :func:`what_if` at the read fractions ``access`` (one column per value,
    ``cost_at_<a>``), from its ``coefficients`` by the formula the browser evaluates, with the break-even column.

    Why not read ``fixed`` as "the cost when nothing is read": for Intelligent-Tiering the storage is in the tier
    terms (``it_aia`` at a = 0), and ``fixed`` is only the monitoring fee -- the report's table showed $6.55 for
    10,240 GB that cost $47.51, cheaper than Deep Archive. The same formula as the chart, so table and slider agree.
    """
    out = coefficients[["storage_class"]].copy()
    for a in dict.fromkeys(float(x) for x in access):
        q = min(float(a), 1.0)
        out[f"cost_at_{a:g}"] = (coefficients["fixed"] + float(a) * coefficients["per_access"]
                                 + coefficients["it_fa"] * q + coefficients["it_ia"] * ((1 - q) - (1 - q) ** 3)
                                 + coefficients["it_aia"] * (1 - q) ** 3)
    be = [c for c in coefficients.columns if c.startswith("break_even_vs_")]
    return pd.concat([out, coefficients[be]], axis=1)


def what_if_table(coefficients: pd.DataFrame, access: float) -> pd.DataFrame:
    """:func:`what_if_costs` at a = 0 and at ``access``, with headers in words (the report's table)."""
    costs = what_if_costs(coefficients, (0.0, access))
    names = {"cost_at_0": "monthly cost, nothing read"}
    names.setdefault(f"cost_at_{float(access):g}", f"monthly cost at a={float(access):g}")
    names.update({c: "break-even a* vs " + c[len("break_even_vs_"):] for c in costs.columns
                  if c.startswith("break_even_vs_")})
    return costs.rename(columns=names)


def table_items(prices: PriceTable) -> list[tuple[tuple[str, str], StoragePrice]]:
    return list(prices.prices.items())


def what_if_chart(coefficients: pd.DataFrame, curve: pd.DataFrame, access: float = 0.1, max_access: float = 2.0,
                  title: str = "Monthly cost by storage class vs how much of the data is read each month") -> Any:
    """Lines of cost vs access per class, a rule and a bar chart that follow an access slider in the browser.

    The slider is an Altair param bound to a range input, so it works in the offline HTML report (no kernel):
    the bars evaluate the ``coefficients`` formula of :func:`what_if` at the slider's value.
    """
    import altair as alt

    from . import charts as ch

    classes = coefficients["storage_class"].tolist()
    colors = ch.color_map(classes, kind="category")
    scale = alt.Scale(domain=classes, range=[colors[c] for c in classes])
    color = alt.Color("storage_class:N", title="Storage class", scale=scale)
    slider = alt.param(name="access", value=float(access),
                       bind=alt.binding_range(min=0, max=float(max_access), step=0.01,
                                              name="Monthly read fraction (GB read / GB stored): "))
    curve = curve[curve["access"] <= max_access]
    lines = alt.Chart(curve, title=title).mark_line().encode(
        x=alt.X("access:Q", title="GB read per month / GB stored"),
        y=alt.Y("monthly_cost:Q", title="Monthly cost", axis=alt.Axis(format=ch.MONEY_SHORT)),
        color=color,
        tooltip=[alt.Tooltip("storage_class:N", title="Class"), alt.Tooltip("access:Q", format=".2f"),
                 alt.Tooltip("monthly_cost:Q", title="Monthly cost", format=ch.MONEY)],
    ).properties(width=420, height=280)
    rule = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4], color="#333").transform_calculate(
        a="access").encode(x="a:Q")
    q = "min(access, 1)"
    expr = (f"datum.fixed + access * datum.per_access + datum.it_fa * {q} + datum.it_ia * ((1 - {q}) - "
            f"pow(1 - {q}, 3)) + datum.it_aia * pow(1 - {q}, 3)")
    base = alt.Chart(coefficients[["storage_class", "fixed", "per_access", "it_fa", "it_ia", "it_aia"]]
                     ).transform_calculate(cost=expr)
    bars = base.mark_bar().encode(
        y=alt.Y("storage_class:N", sort=alt.EncodingSortField("cost", order="ascending"), title=None),
        x=alt.X("cost:Q", title="Monthly cost at the chosen read fraction", axis=alt.Axis(format=ch.MONEY_SHORT)),
        color=alt.Color("storage_class:N", scale=scale, legend=None),
        tooltip=[alt.Tooltip("storage_class:N", title="Class"),
                 alt.Tooltip("cost:Q", title="Monthly cost", format=ch.MONEY)],
    ).properties(width=300, height=280, title="Cheapest class at the slider value (top)")
    text = base.mark_text(align="left", dx=3).encode(
        y=alt.Y("storage_class:N", sort=alt.EncodingSortField("cost", order="ascending")),
        x="cost:Q", text=alt.Text("cost:Q", format=ch.MONEY_SHORT))
    return alt.hconcat(lines + rule, bars + text).add_params(slider)
