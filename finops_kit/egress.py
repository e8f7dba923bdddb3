"""Data transfer from the bill: internet egress, inter-region, inter-AZ, CDN and NAT, and who causes it.

AI teams move data: training sets read from a bucket in another region every epoch, checkpoints copied across zones,
inference responses served to the internet through a NAT gateway. Transfer lines are small one by one and large in
sum, and they hide in every service's bill. This module classifies FOCUS rows with ``data/transfer_types.csv``
(rules on ``x_UsageType | SkuMeter | ChargeDescription``, e.g. ``USE1-USW2-AWS-Out-Bytes`` → Inter-region,
``USE1-DataTransfer-Regional-Bytes`` → Inter-AZ, ``Network Internet Egress from Americas to EMEA`` → Internet
egress, ``Standard Data Transfer Out`` → Internet egress) and answers:

* spend and GB by transfer type, per source service, region and team (:func:`by_type`), the largest flows
  (:func:`largest_flows`);
* what the tiered internet egress price implies at the current volume — list cost by tier, marginal and average
  $/GB, GB to the next tier (:func:`tier_cost`, :func:`tiered_egress`; tiers in the dated
  ``data/egress_prices.csv``);
* training data read across regions: inter-region transfer out of a storage service into a region where the
  same month has GPU/ML spend (:func:`cross_region_training`), with the cost of keeping a replica instead.

Money from the bill stays DECIMAL; GB are floats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import duckdb
import pandas as pd

from . import units
from .errors import InputError
from .sources.base import sql_str
from .storage import (
    ACCOUNT_EXPR,
    BUCKET_EXPR,
    ROW_TEXT,
    _rules,
    checked_dimensions,
    frame,
    frame_over,
    over,
    quantity_in,
    read_table,
    rule_case,
    scoped,
    storage_rows_sql,
    stored_gb_months,
    unit_key,
    values_sql,
)
from .storage import _units as units_table

TRANSFER_RULES_ENV = "FINOPS_TRANSFER_TYPES"
EGRESS_PRICES_ENV = "FINOPS_EGRESS_PRICES"
TRANSFER_TYPES = ("Internet egress", "Inter-region", "Inter-AZ", "CDN", "NAT gateway", "Ingress", "Other transfer")
#: Services whose outbound transfer is "data read from storage".
STORAGE_SERVICE_RE = "(?i)simple storage|^s3$|cloud storage|^storage|storage accounts|blob"


def transfer_rules(path: str | None = None) -> tuple[dict[str, str], ...]:
    """The transfer-type rules (``$FINOPS_TRANSFER_TYPES`` may point to a reviewed copy)."""
    rows = _rules("transfer_types.csv", path or os.environ.get(TRANSFER_RULES_ENV))
    for r in rows:
        if r.get("transfer_type") not in TRANSFER_TYPES:
            raise InputError(r["_where"], f"transfer_type {r.get('transfer_type')!r} is not one of "
                             f"{list(TRANSFER_TYPES)}", column="transfer_type", row=int(r["_row"]))
        if r.get("direction") not in ("in", "out"):
            raise InputError(r["_where"], f"direction {r.get('direction')!r}: expected 'in' or 'out'",
                             column="direction", row=int(r["_row"]))
    return rows


@cache
def _region_codes() -> str:
    rows = read_table("aws_region_codes.csv")
    return values_sql([(r["code"].upper(), r["region"]) for r in rows], ("code", "region"))


def transfer_rows(con: duckdb.DuckDBPyConnection, **filters: Any) -> duckdb.DuckDBPyRelation:
    """:func:`transfer_rows_sql` as a relation."""
    return con.sql(transfer_rows_sql(con, **filters))


def transfer_rows_sql(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
                      providers: Iterable[str] | str | None = None, config: Any = None, team_key: str = "team",
                      rules_path: str | None = None, scope: Any = None) -> str:
    """SQL of the data-transfer FOCUS rows with their type, direction, source and destination region, GB and cost.

    Columns: provider, service, transfer_type, direction, month, account, billing_account (BillingAccountId: the
    payer, whose monthly volume the price tiers count), region (source), dest_region, bucket, team, ai_workload,
    usage_type, cost (EffectiveCost, DECIMAL), billed_cost, gb.
    """
    sc = scoped(con, scope, start, end, providers, config)
    rules = transfer_rules(rules_path)
    rule_tab = values_sql([(i, r["transfer_type"], r["direction"]) for i, r in enumerate(rules)],
                          ("rule_id", "transfer_type", "direction"), alias="r")
    pair = "'([A-Z]{2,4}[0-9]?)-([A-Z]{2,4}[0-9]?)-AWS-(In|Out)-Bytes'"
    return f"""
        WITH src AS (
          SELECT *, {rule_case(rules)} AS _rule, {ROW_TEXT} AS _text
          FROM {sc.rows_sql()}
        ), u AS (SELECT * FROM {units_table()}), codes AS (SELECT * FROM {_region_codes()})
        SELECT ProviderName AS provider, ServiceName AS service, r.transfer_type, r.direction,
               date_trunc('month', ChargePeriodStart) AS month, {ACCOUNT_EXPR} AS account,
               BillingAccountId AS billing_account, coalesce(RegionId, c1.region) AS region,
               coalesce(c2.region, nullif(regexp_extract(_text,
                   '(?i)(?:data transfer to|egress from [A-Za-z ]+ to|\\bto) ([A-Z][A-Za-z0-9 ().&-]*?)\\s*(\\||$)',
                   1), '')) AS dest_region,
               {BUCKET_EXPR} AS bucket, {sc.attribution.dimension_sql(team_key)} AS team,
               x_AiWorkload AS ai_workload, x_UsageType AS usage_type,
               EffectiveCost AS cost, BilledCost AS billed_cost,
               {quantity_in('gb')} AS gb
        FROM src
        JOIN {rule_tab} ON r.rule_id = src._rule
        LEFT JOIN u uc ON uc.unit = {unit_key('src.ConsumedUnit')}
        LEFT JOIN u up ON up.unit = {unit_key('src.PricingUnit')}
        LEFT JOIN codes c1 ON c1.code = nullif(regexp_extract(coalesce(x_UsageType, ''), {pair}, 1), '')
        LEFT JOIN codes c2 ON c2.code = nullif(regexp_extract(coalesce(x_UsageType, ''), {pair}, 2), '')
    """


DIMENSIONS = ("provider", "service", "transfer_type", "direction", "month", "account", "billing_account", "region",
              "dest_region", "bucket", "team", "ai_workload")


def _dims(by: str | Sequence[str]) -> list[str]:
    return checked_dimensions(by, DIMENSIONS, "transfer analysis")


def by_type(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] = ("provider", "transfer_type"),
            **filters: Any) -> pd.DataFrame:
    """Transfer spend (EffectiveCost) and GB per dimension, with the effective $/GB; largest first."""
    dims = _dims(by)
    rows = transfer_rows_sql(con, **filters)
    g = ", ".join(dims)
    return frame_over(con, rows, f"""
        SELECT {g}, sum(cost) AS cost, {units.total("gb")} AS gb,
               CAST(sum(cost) AS DOUBLE) / nullif({units.total("gb", "cost IS NOT NULL")}, 0) AS usd_per_gb
        FROM rel GROUP BY {g} ORDER BY cost DESC NULLS LAST, {g}
    """)


def largest_flows(con: duckdb.DuckDBPyConnection, top: int = 15, **filters: Any) -> pd.DataFrame:
    """The ``top`` outbound flows (provider, service, type, source → destination region, team) by cost."""
    rows = transfer_rows_sql(con, **filters)
    return frame_over(con, rows, f"""
        WITH f AS (
          SELECT provider, service, transfer_type, region, coalesce(dest_region, '') AS dest_region, team,
                 sum(cost) AS cost, {units.total("gb")} AS gb, count(DISTINCT month) AS months
          FROM rel WHERE direction = 'out' GROUP BY ALL
        )
        SELECT *, CAST(cost AS DOUBLE) / nullif(CAST(sum(cost) OVER () AS DOUBLE), 0) AS share,
               CAST(cost AS DOUBLE) / nullif(gb, 0) AS usd_per_gb
        FROM f ORDER BY cost DESC NULLS LAST, provider, service, transfer_type, region, dest_region, team
        LIMIT {int(top)}
    """)


# ----------------------------------------------------------------------------------------------------------------
# tiered internet egress

@dataclass(frozen=True)
class Tier:
    start_gb: Decimal
    end_gb: Decimal | None
    price_per_gb: Decimal
    currency: str = "USD"  # the price's currency (the table's ``currency`` column; USD where it has none)


@dataclass
class EgressPrices:
    tiers: dict[tuple[str, str], list[Tier]]
    path: str
    as_of: str
    #: (provider, transfer_type) whose tier rows' source says they were not checked against a citable price list
    unverified: frozenset[tuple[str, str]] = frozenset()

    def get(self, provider: str, transfer_type: str) -> list[Tier]:
        return self.tiers.get((provider, transfer_type), [])


def load_egress_prices(path: str | None = None) -> EgressPrices:
    """Read the dated transfer price tiers (packaged default, ``$FINOPS_EGRESS_PRICES`` or ``path``)."""
    path = str(path) if path else os.environ.get(EGRESS_PRICES_ENV) or None
    rows = read_table("egress_prices.csv", path)
    where = path or "finops_kit/data/egress_prices.csv"
    need = ("provider", "transfer_type", "tier_start_gb", "tier_end_gb", "price_per_gb", "as_of")
    if rows and any(c not in rows[0] for c in need):
        raise InputError(where, f"missing column(s); expected {list(need)}")
    tiers: dict[tuple[str, str], list[Tier]] = {}
    for r in rows:
        try:
            t = Tier(Decimal(r["tier_start_gb"] or "0"), Decimal(r["tier_end_gb"]) if r["tier_end_gb"] else None,
                     Decimal(r["price_per_gb"]), (r.get("currency") or "USD").strip().upper())
        except ArithmeticError:
            raise InputError(where, "tier_start_gb, tier_end_gb and price_per_gb must be numbers",
                             row=int(r["_row"])) from None
        tiers.setdefault((r["provider"], r["transfer_type"]), []).append(t)
    for key, ts in tiers.items():
        if len({t.currency for t in ts}) > 1:  # tier costs are added up: one currency per provider and type
            raise InputError(where, f"tiers of {key[0]} {key[1]} are in several currencies "
                                    f"({', '.join(sorted({t.currency for t in ts}))}); expected one")
        ts.sort(key=lambda t: t.start_gb)
        for a, b in zip(ts, ts[1:], strict=False):
            if a.end_gb is None or a.end_gb != b.start_gb:
                raise InputError(where, f"tiers of {key[0]} {key[1]} are not contiguous at {a.end_gb} GB")
    dates = sorted({r["as_of"] for r in rows})
    weak = frozenset((r["provider"], r["transfer_type"]) for r in rows if "unverified" in r.get("source", "").lower())
    return EgressPrices(tiers, where, dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}", weak)


def tier_cost(gb: Any, tiers: Sequence[Tier]) -> dict[str, Any]:
    """List cost of ``gb`` GB in one month under tiered prices, with the marginal/average $/GB and next tier.

    Tiers are half-open, [start, end): the marginal price is that of the tier holding the *next* GB, so at an
    exact boundary (100 GB, 10,240 GB) it is the price of the tier that starts there, not of the one just filled.
    Example (AWS, methods.md): 20,000 GB = 100 free + 10,140 × 0.09 + 9,760 × 0.085 = $1,742.20.
    """
    v = Decimal(str(gb))
    cost = Decimal(0)
    for t in tiers:
        if v <= t.start_gb:
            break
        top = v if t.end_gb is None else min(v, t.end_gb)
        cost += (top - t.start_gb) * t.price_per_gb
    # the tier the next GB falls in: start <= v < end (the first tier below its start, the last one beyond)
    cur = next((t for t in tiers if v < t.start_gb or t.end_gb is None or v < t.end_gb), None)
    marginal = cur.price_per_gb if cur is not None else Decimal(0)
    next_at = cur.end_gb if cur is not None else None
    nxt = next((t for t in tiers if next_at is not None and t.start_gb == next_at), None)
    return {"gb": float(v), "list_cost": cost, "average_per_gb": (cost / v if v else Decimal(0)),
            "marginal_per_gb": marginal, "next_tier_gb": None if next_at is None else float(next_at),
            "gb_to_next_tier": None if next_at is None else float(next_at - v),
            "next_tier_price": None if nxt is None else nxt.price_per_gb}


def tiered_egress(con: duckdb.DuckDBPyConnection, prices: EgressPrices | str | None = None,
                  **filters: Any) -> pd.DataFrame:
    """Internet egress per provider, billing account and month: billed cost vs the list price the tier table implies.

    Per billing account because that is what a tier counts: AWS applies its internet-egress tiers and the 100 GB
    free allowance to each payer's (billing account's) monthly volume, aggregated across its linked accounts,
    services and regions -- two payers with 80 GB each both stay in their free allowance (list cost 0), where
    pooling them into one 160 GB month priced 60 GB at $0.09 ($5.40). ``billing_account`` is ``BillingAccountId``.

    Shows whether the bill matches the public tiers (a gap means a discount, a free allowance or a price change)
    and, at the current volume, the marginal $/GB of one more GB and how far the next, cheaper tier is.
    ``price_unverified`` marks providers whose tier table is not backed by a citable source (say so beside the
    list cost). ``price_currency`` is the tier table's currency: where it is not the bill's, there is no list
    cost (the packaged tiers are USD; a EUR bill is not compared with them).
    """
    table = prices if isinstance(prices, EgressPrices) else load_egress_prices(prices)
    rows = transfer_rows_sql(con, **filters)
    # the bill's currency: a tier table in another one is not compared with it (a USD list cost shown as EUR)
    currency = getattr(scoped(con, filters.get("scope"), filters.get("start"), filters.get("end"),
                              filters.get("providers"), filters.get("config")), "currency", None)
    monthly = con.execute(over(rows, f"""
        SELECT provider, billing_account, month, {units.total("gb")} AS gb, sum(cost) AS billed_cost
        FROM rel WHERE transfer_type = 'Internet egress' AND gb IS NOT NULL GROUP BY ALL
        ORDER BY provider, billing_account NULLS FIRST, month
    """)).fetchall()
    out = []
    for provider, billing_account, month, gb, billed in monthly:
        tiers = table.get(provider, "Internet egress")
        row = {"provider": provider, "billing_account": billing_account, "month": month, "gb": float(gb or 0),
               "billed_cost": billed,
               "price_unverified": (provider, "Internet egress") in table.unverified,
               "price_currency": tiers[0].currency if tiers else None}
        if tiers and (currency is None or tiers[0].currency == currency):
            tc = tier_cost(gb or 0, tiers)
            row |= {k: tc[k] for k in ("list_cost", "average_per_gb", "marginal_per_gb", "next_tier_gb",
                                       "gb_to_next_tier", "next_tier_price")}
        out.append(row)
    df = pd.DataFrame(out, columns=["provider", "billing_account", "month", "gb", "billed_cost", "list_cost",
                                    "average_per_gb", "marginal_per_gb", "next_tier_gb", "gb_to_next_tier",
                                    "next_tier_price", "price_unverified", "price_currency"])
    df.attrs["price_as_of"] = table.as_of
    return df


# ----------------------------------------------------------------------------------------------------------------
# training data read across regions

def cross_region_training(con: duckdb.DuckDBPyConnection, *, min_cost: float = 0, **filters: Any) -> pd.DataFrame:
    """Inter-region transfer into regions that run GPU/ML work the same month (likely training data reads).

    A bucket in us-east-1 feeding training jobs in us-west-2 pays inter-region transfer on every epoch. For each
    such flow (``source_is_storage`` says whether it leaves an object store or another resource): GB and cost per month, the destination's AI spend that month, how many times the bucket's
    volume crossed (``reads_of_bucket``), and the monthly cost of a replica in the destination at the bucket's
    current $/GB-month (``replica_monthly_cost``, excluding the one-time copy) — when the replica is cheaper,
    co-locate the data with the compute.
    """
    rows = transfer_rows_sql(con, **filters)
    flows = frame_over(con, rows, f"""
        SELECT provider, month, bucket, team, service, region, dest_region, {units.total("gb")} AS gb,
               sum(cost) AS cost, bool_or(regexp_matches(service, {sql_str(STORAGE_SERVICE_RE)})) AS from_storage_service
        FROM rel
        WHERE transfer_type = 'Inter-region' AND direction = 'out'
        GROUP BY ALL ORDER BY ALL
    """)
    if flows.empty:
        return flows.drop(columns=["from_storage_service"]).assign(
            ai_spend_in_dest=[], bucket_gb=[], source_is_storage=[], reads_of_bucket=[], replica_monthly_cost=[])
    ai = frame(con.sql(f"""
        SELECT ProviderName AS provider, date_trunc('month', ChargePeriodStart) AS month, RegionId AS dest_region,
               sum(EffectiveCost) AS ai_spend_in_dest
        FROM {scoped(con, filters.get('scope'), filters.get('start'), filters.get('end'), filters.get('providers'),
                     filters.get('config')).rows_sql()}
        WHERE x_AiWorkload IS NOT NULL AND RegionId IS NOT NULL
        GROUP BY ALL
    """))
    st = frame_over(con, storage_rows_sql(con, **filters), f"""
        SELECT provider, month, bucket, {stored_gb_months()} AS bucket_gb,
               sum(cost) FILTER (WHERE charge_kind = 'storage') AS storage_cost
        FROM st GROUP BY ALL
    """, name="st")
    df = flows.merge(ai, on=["provider", "month", "dest_region"], how="inner")
    df = df.merge(st, on=["provider", "month", "bucket"], how="left")
    # a source is storage when the service is an object store or the resource also bills storage (CUR 2.0 puts
    # S3 transfer under "AWS Data Transfer" with the bucket as the resource)
    df["source_is_storage"] = df["from_storage_service"].astype(bool) | df["bucket_gb"].notna()

    def replica(r: pd.Series) -> Decimal | None:
        gbv, sc = r["bucket_gb"], r["storage_cost"]
        if gbv is None or gbv != gbv or not gbv or sc is None:
            return None
        return (Decimal(str(sc))).quantize(Decimal("0.01"))  # same volume, same class, other region

    df["reads_of_bucket"] = [(g / b if b and b == b else None) for g, b in zip(df["gb"], df["bucket_gb"],
                                                                              strict=True)]
    df["replica_monthly_cost"] = df.apply(replica, axis=1) if len(df) else []
    df = df[df["cost"].map(lambda c: float(c or 0)) >= float(min_cost)]
    return df.drop(columns=["storage_cost", "from_storage_service"]).sort_values(["cost", "month"], ascending=[False, True],
                                                         key=lambda s: s.map(float) if s.name == "cost" else s
                                                         ).reset_index(drop=True)


def cross_region_summary(xr: pd.DataFrame) -> pd.DataFrame:
    """:func:`cross_region_training` over the whole scope: one row per flow (provider, source resource, service,
    team, source and destination region) with its months, GB, transfer cost and the destination's AI spend, largest
    GB first. ``source_is_storage`` is True for a flow out of an object store: only those are data a replica next to
    the GPUs can replace (a flow from a compute instance is not a data set to co-locate)."""
    keys = ["provider", "bucket", "service", "team", "region", "dest_region", "source_is_storage"]
    cols = [*keys, "months", "gb", "cost", "ai_spend_in_dest"]
    if xr.empty:
        return pd.DataFrame(columns=cols)
    out = xr.groupby(keys, dropna=False).agg(months=("month", "nunique"), gb=("gb", "sum"), cost=("cost", "sum"),
                                             ai_spend_in_dest=("ai_spend_in_dest", "sum")).reset_index()
    out["source_is_storage"] = out["source_is_storage"].astype(bool)
    return out.sort_values("gb", ascending=False).reset_index(drop=True)[cols]


CENT = Decimal("0.01")


def category_differences(con: duckdb.DuckDBPyConnection, sc: Any) -> dict[str, Any]:
    """How FOCUS ``ServiceCategory`` 'Storage' and 'Networking' differ, on this bill, from the kit's storage and
    transfer definitions (``storage_cost`` / ``transfer_cost`` of :mod:`finops_kit.metrics`: rows classified by the
    storage class and transfer type tables, whatever the service). Amounts are EffectiveCost (DECIMAL); each
    ``*_services`` lists the services holding the difference, largest first."""
    from .metrics import MONEY
    from .storage import storage_rules

    rows = con.execute(f"""
        WITH r AS (SELECT ServiceName AS service, coalesce(ServiceCategory, '') AS category, EffectiveCost AS cost,
                          {rule_case(storage_rules())} IS NOT NULL AS is_storage,
                          {rule_case(transfer_rules())} IS NOT NULL AS is_transfer
                   FROM {sc.rows_sql()})
        SELECT kind, service, sum(cost)::{MONEY} AS cost FROM (
          SELECT 'storage_category' AS kind, NULL AS service, cost FROM r WHERE category = 'Storage'
          UNION ALL SELECT 'not_storage_in_storage', service, cost FROM r WHERE category = 'Storage' AND NOT is_storage
          UNION ALL SELECT 'storage_elsewhere', service, cost FROM r WHERE category <> 'Storage' AND is_storage
          UNION ALL SELECT 'networking_category', NULL, cost FROM r WHERE category = 'Networking'
          UNION ALL SELECT 'not_transfer_in_networking', service, cost FROM r
                    WHERE category = 'Networking' AND NOT is_transfer
          UNION ALL SELECT 'transfer_elsewhere', service, cost FROM r WHERE category <> 'Networking' AND is_transfer)
        GROUP BY ALL ORDER BY kind, cost DESC NULLS LAST, service""").fetchall()
    out: dict[str, Any] = {}
    for kind in ("storage_category", "not_storage_in_storage", "storage_elsewhere", "networking_category",
                 "not_transfer_in_networking", "transfer_elsewhere"):
        mine = [(s, Decimal(c or 0)) for k, s, c in rows if k == kind]
        out[kind] = sum((c for _s, c in mine), Decimal(0))
        if kind not in ("storage_category", "networking_category"):
            out[kind + "_services"] = [s for s, c in mine if s is not None and c]
    return out


def category_note(diff: dict[str, Any], money: Any, top: int = 2) -> str:
    """One sentence from :func:`category_differences`: what FOCUS's 'Storage' and 'Networking' labels hold that the
    storage and transfer figures do not, and the reverse; only the differences this bill has. ``money`` formats an
    amount (the report's ``nb.money``)."""
    def part(key: str, text: str) -> str | None:
        if not diff[key].quantize(CENT):  # a difference under half a cent is no difference in a report
            return None
        names = diff[key + "_services"][:top]
        return f"{text} {money(diff[key])}" + (f" (mostly {', '.join(names)})" if names else "")

    out = []
    for label, total, figure, parts in (
            ("Storage", "storage_category", "storage", [part("not_storage_in_storage", "holds charges that are not storage,"),
                                             part("storage_elsewhere", "leaves out storage billed under other "
                                                                       "categories,")]),
            ("Networking", "networking_category", "data-transfer", [part("not_transfer_in_networking", "holds charges that are not "
                                                                                      "data transfer,"),
                                                   part("transfer_elsewhere", "leaves out data transfer billed "
                                                                              "under other categories,")])):
        said = [p for p in parts if p]
        head = f"'{label}' {money(diff[total])}"
        out.append(f"{head} {' and '.join(said)}" if said else f"{head} equals the {figure} figure to the cent")
    return ("ServiceCategory above is FOCUS's label of the service, not these definitions: " + "; ".join(out) + ".")
