"""The headline figures of a scope: ``finops-kit metrics`` and ``fk.metrics(con, scope)``.

Why one module: every report quotes the same handful of numbers (what we spent, on AI, on GPUs, untagged, on storage
and on transfer, shared). Each comes from exactly one definition here, built on the kit's other single answers
(:mod:`finops_kit.scope` for which charges and which currency, :mod:`finops_kit.attribution` for tags and shared
cost, :mod:`finops_kit.units` for hours), and the curated notebooks take their headline numbers from these
functions, so two reports can no longer disagree.

Definitions (also in ``docs/metrics.md``, with the JSON schema):

* **billed_cost** / **effective_cost**: sum of BilledCost / EffectiveCost (amortized, credits included) in scope.
* **ai_cost**: EffectiveCost of rows classified AI/ML (``x_AiWorkload``, ``data/ai_workloads.csv``; the other rows of an
  accelerated instance included, tax and adjustments never: :mod:`finops_kit.classify`), also per category.
* **accelerators**: cost, instance-hours and accelerator-hours of accelerated instances per provider, instance
  family and pricing class (:func:`finops_kit.units.accelerated_usage_sql`: usage rows and the credits billed
  against them; fees, purchases and unused commitments have no hours; an unused commitment is the pricing class
  'Unused commitment' of the family its commitment covered, so the families add up to **spot**'s cost); **spot_share** = spot accelerator-hours /
  accelerator-hours that could run on spot (:func:`finops_kit.units.spot_share_sql`: usage without a spot market,
  ``data/no_spot_market.csv`` -- SageMaker endpoints and notebooks -- is left out and shown apart as
  ``no_spot_market_accelerator_hours``). Hours the instance catalog cannot give stay unknown (NULL, never 0), with
  the cost that has them (``unknown_accelerator_cost``, ``unknown_instance_cost``) and the types listed in
  **unknown_types** (:func:`unknown_types`, :func:`unknown_types_note`).
* **storage_cost**: EffectiveCost of the rows the storage class table classifies (``data/storage_classes.csv``: capacity
  in GB-months, requests, retrievals, monitoring, early deletion), whatever ServiceCategory the provider gave the
  service -- EBS volumes billed under EC2 count, data transfer billed under S3 does not. FOCUS ServiceCategory
  'Storage' is a service-level label and differs (it has S3 transfer, lacks EBS). **storage_gb_months**: GB-months
  of data stored, :func:`finops_kit.storage.stored_gb_months` (the storage inventory's definition: charge kind
  ``storage`` only, not early deletion or overhead).
* **transfer_cost**: EffectiveCost of the rows the transfer type table classifies (``data/transfer_types.csv``:
  internet egress, inter-region, inter-AZ, CDN, NAT gateway, ingress), whatever the service; not ServiceCategory
  'Networking' (which holds NAT-gateway hours and load balancers, and lacks transfer billed under S3 or EC2).
* **shared_cost**: EffectiveCost of rows that are shared under ``allocation.shared`` (tax, adjustments, unused
  commitments, the shared tag values of the allocation key); **unallocated_cost**: not shared and without a valid
  value of the allocation key (showback's ``(untagged)`` line).
* **tag_coverage**: per required key of ``tag_policy`` (and all required keys at once): cost-weighted coverage over
  positive-cost charges, and **untagged_cost** = the positive cost where the key is missing, empty or invalid (never
  more than the scope's positive cost).
* **completeness**: per provider and billing period in scope, the first and last day with data and whether the
  period is closed.
* **commitments**: per provider and ``(all)``: coverage of eligible accelerated usage (on demand + committed
  instance-hours, :func:`finops_kit.commitments.coverage`) in hours and list value, the eligible on-demand spend, and
  the commitments' used / unused cost, utilization and savings realized (``CommitmentDiscountStatus`` Used/Unused,
  :func:`finops_kit.commitments.summary`).
* **provisioned** (when the scope has PTU / provisioned-throughput lines): per provider and model, the capacity's
  hourly price, the same model's pay-as-you-go price per token and the break-even in tokens per hour with the
  hours per day above it (:func:`finops_kit.commitments.provisioned_break_even`).
* **tokens** (only when the scope has token lines): per provider, model and token type of the managed generative-AI
  services, the tokens and EffectiveCost of the token rows and ``cost_per_1m`` = cost x 1,000,000 / tokens
  (:func:`finops_kit.tokens.unit_costs`: ``data/ai_token_rules.csv``, token counts scaled by the unit's block size).

* **ai_units** (only when GPU utilization files or a runs file are given: ``--gpu-metrics``/``--host-map``,
  ``--runs-file``): idle GPU-hours and dollars, cost per utilized GPU-hour and scheduling savings of
  :func:`finops_kit.gpu.idle_gpu`, and the training runs of :func:`finops_kit.unit_economics.training_runs` (run
  tags, SageMaker training job ids, the runs file): how many, their cost and GPU-hours, cost per GPU-hour. The AI
  unit economics report quotes the same functions.

Every money figure is grouped by BillingCurrency (a resolved scope holds one currency, or one converted currency).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from . import scope as scope_mod
from . import units
from .commitments import summary as commitment_summary
from .egress import transfer_rules
from .errors import ConfigError
from .schema import MONEY
from .scope import Scope, bind
from .storage import charge_kinds_sql, rule_case, storage_rules, stored_gb_months

#: Version of the JSON document ``finops-kit metrics --json`` writes (docs/metrics.md, "Schema versions"). Raised
#: when a key changes meaning or goes away, so a scheduler comparing month over month knows the figures moved by
#: definition, not by spend. 2: ``spot.spot_share`` counts only hours that could run on spot (session 15). 3: unknown
#: hours are null, not 0, with the cost that has them (``unknown_*_cost``, ``unknown_types``); the pricing class
#: 'Unused capacity reservation'; GCP GPU / TPU families without a machine type (session 16); the pricing class
#: 'Unused commitment' in its commitment's family (session 17).
SCHEMA_VERSION = 3
RATE = "DECIMAL(38,6)"


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A small aggregate as pandas, DECIMAL money kept as Decimal."""
    from .querycache import frame

    return frame(con, sql)  # reused across kernels and runs on an unchanged warehouse


def totals(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """One row per currency: billed, effective, AI/ML, storage, transfer, shared and unallocated cost, GB-months of
    storage and GB transferred (see the module doc for each definition)."""
    attr = sc.attribution
    srules, trules = storage_rules(), transfer_rules()
    return _frame(con, f"""
        WITH r AS (
          SELECT *, _srule IS NOT NULL AS _storage FROM (
            SELECT *, {rule_case(srules)} AS _srule, {rule_case(trules)} IS NOT NULL AS _transfer,
                   {attr.shared_sql()} AS _shared, {attr.owner_sql()} AS _owner
            FROM {sc.rows_sql()})),
        u AS (SELECT * FROM {units.volume_units_values()}), sk AS (SELECT * FROM {charge_kinds_sql(srules)})
        SELECT BillingCurrency AS currency,
          sum(BilledCost)::{MONEY} AS billed_cost,
          sum(EffectiveCost)::{MONEY} AS effective_cost,
          coalesce(sum(EffectiveCost) FILTER (WHERE x_AiWorkload IS NOT NULL), 0)::{MONEY} AS ai_cost,
          coalesce(sum(EffectiveCost) FILTER (WHERE _storage), 0)::{MONEY} AS storage_cost,
          coalesce({stored_gb_months('sk.charge_kind', units.quantity_in('gb_month'))}, 0) AS storage_gb_months,
          coalesce(sum(EffectiveCost) FILTER (WHERE _transfer), 0)::{MONEY} AS transfer_cost,
          coalesce({units.total(units.quantity_in('gb'), '_transfer')}, 0) AS transfer_gb,
          coalesce(sum(EffectiveCost) FILTER (WHERE _shared), 0)::{MONEY} AS shared_cost,
          coalesce(sum(EffectiveCost) FILTER (WHERE _owner = '(untagged)'), 0)::{MONEY} AS unallocated_cost,
          count(*) AS rows
        FROM r
        LEFT JOIN u uc ON uc.unit = {units.unit_key('r.ConsumedUnit')}
        LEFT JOIN u up ON up.unit = {units.unit_key('r.PricingUnit')}
        LEFT JOIN sk ON sk.rule_id = r._srule
        GROUP BY ALL ORDER BY currency""")


def ai_by_category(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """AI/ML EffectiveCost per currency and ``x_AiWorkload`` category."""
    return _frame(con, f"""
        SELECT BillingCurrency AS currency, x_AiWorkload AS category, sum(EffectiveCost)::{MONEY} AS cost
        FROM {sc.rows_sql()} WHERE x_AiWorkload IS NOT NULL GROUP BY ALL ORDER BY currency, cost DESC""")


def accelerators(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """Accelerated instances per provider, family, pricing class and currency: cost, instance-hours,
    accelerator-hours and the effective rates per instance-hour and per accelerator-hour. An unused commitment is
    the class 'Unused commitment' of the family its commitment covered (:func:`finops_kit.units.accelerated_usage_sql`),
    so a provider's families add up to :func:`spot_share`'s cost. (Before: an Azure unused reservation, which names
    no VM size, was in no family -- the demo's Azure families summed to 567,884.14 of 572,453.89.)

    Hours the catalog cannot give stay unknown (:func:`finops_kit.units.known_total`): a family whose every
    instance has unknown accelerator-hours shows NULL, not 0, and ``unknown_accelerator_cost`` /
    ``unknown_instance_cost`` are the cost of its instances whose hours are unknown (types listed by
    :func:`unknown_types`); the rates divide only the cost of the instances whose hours they count."""
    return _frame(con, f"""
        SELECT ProviderName AS provider, instance_family AS family, pricing,
               BillingCurrency AS currency, sum(EffectiveCost)::{MONEY} AS cost,
               {units.known_total("instance_hours")} AS instance_hours,
               {units.known_total("accelerator_hours")} AS accelerator_hours,
               {units.rate_sql("instance_hours", "has_instance_hours", RATE)} AS rate_per_instance_hour,
               {units.rate_sql("accelerator_hours", "has_accelerator_hours", RATE)} AS rate_per_accelerator_hour,
               {units.unknown_cost("instance_hours", typ=MONEY)} AS unknown_instance_cost,
               {units.unknown_cost("accelerator_hours", typ=MONEY)} AS unknown_accelerator_cost
        FROM {units.accelerated_usage_from(con, sc)}
        WHERE instance_family IS NOT NULL
        GROUP BY ALL ORDER BY provider, family, pricing""")


#: The spot rows of :func:`units.accelerated_usage_sql`.
SPOT = "pricing = 'Spot'"


def spot_share(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """Per provider and currency, and overall (provider ``(all)``): accelerator-hours, spot accelerator-hours and
    the spot share of accelerator-hours (:func:`finops_kit.units.spot_share_sql`: of the hours that could run on
    spot); the same for instance-hours; the accelerator- and instance-hours that have no spot market (in the
    hours, not in the share's denominator); and the cost whose instance- or accelerator-hours are unknown (types not
    in the catalog, :func:`unknown_types`): hours and share are of the known hours only, NULL when none is known."""
    return _frame(con, f"""
        WITH u AS (SELECT * FROM {units.accelerated_usage_from(con, sc)})
        SELECT coalesce(ProviderName, '(all)') AS provider, BillingCurrency AS currency,
               sum(EffectiveCost)::{MONEY} AS cost,
               coalesce(sum(EffectiveCost) FILTER (WHERE pricing = 'Spot'), 0)::{MONEY} AS spot_cost,
               {units.known_total("accelerator_hours")} AS accelerator_hours,
               {units.known_total("accelerator_hours", SPOT)} AS spot_accelerator_hours,
               {units.spot_share_sql("accelerator_hours")} AS spot_share,
               {units.known_total("instance_hours")} AS instance_hours,
               {units.known_total("instance_hours", SPOT)} AS spot_instance_hours,
               {units.no_spot_market_total("accelerator_hours")} AS no_spot_market_accelerator_hours,
               {units.no_spot_market_total("instance_hours")} AS no_spot_market_instance_hours,
               {units.unknown_cost("instance_hours", typ=MONEY)} AS unknown_instance_cost,
               {units.unknown_cost("accelerator_hours", typ=MONEY)} AS unknown_accelerator_cost
        FROM u GROUP BY GROUPING SETS ((ProviderName, BillingCurrency), (BillingCurrency))
        ORDER BY currency, provider = '(all)', provider""")


def unknown_types(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """The "types not in the catalog" line: accelerated instance types whose accelerator-hours or instance-hours are
    unknown (:func:`finops_kit.units.unknown_types_sql`), with their cost -- the part of the accelerator totals no
    hour figure covers. Empty when the catalog knows every type."""
    return _frame(con, units.unknown_types_sql(sc.rows_sql()))


def unknown_types_note(df: pd.DataFrame) -> str:
    """The sentence a report prints under its unit tables about :func:`unknown_types` (``df``): which types, which
    hours, what cost; empty when the catalog knows every type. Why a sentence: a rate or a spot share of the known
    hours is true of those hours only, and the reader must see how much spend it leaves out."""
    if df.empty:
        return ""
    items = "; ".join(f"{r.provider} {r.instance_type} ({r.unknown} unknown; {r.currency} {float(r.cost):,.2f})"
                      for r in df.itertuples())
    n = len(df)
    return (f"{n} instance type{'s' if n != 1 else ''} not in the instance catalog: {items}. Their cost is in the "
            "totals; their unknown hours are in no hour figure, share or rate (add a missing type to "
            "finops_kit/data/ec2_accelerated_instances.csv or machine_types.csv; a GCP GPU or TPU SKU billed "
            "without its machine type, or an OCI GPU SKU, names no shape: there is no instance count to add).")


def ai_units(con: duckdb.DuckDBPyConnection, sc: Scope, gpu_metrics: Any = None, host_map: Any = None,
             runs_file: Any = None) -> pd.DataFrame:
    """One row: idle GPU dollars over the utilization files' window (when ``gpu_metrics`` is given) and the
    training runs of the scope (run tags, resource ids and ``runs_file``); see the module doc."""
    from . import gpu, unit_economics

    row: dict[str, Any] = {"currency": sc.currency}
    if gpu_metrics:
        gpu.load_utilization(con, gpu_metrics, host_map)
        t = gpu.idle_gpu(con, sc).totals
        row.update({k: t[k] for k in ("window_start", "window_end", "idle_threshold", "observed_gpu_hours",
                                      "idle_gpu_hours", "idle_cost", "cost_per_utilized_gpu_hour",
                                      "schedule_savings", "unmonitored_cost")})
    runs = unit_economics.training_runs(con, sc, runs_file or None).table
    row.update({"training_runs": len(runs), "training_run_cost": float(runs["cost"].sum()),
                # the known GPU-hours; None (unknown) when every run's are unknown (units.known_total's rule)
                "training_run_gpu_hours": (None if len(runs) and runs["accelerator_hours"].isna().all()
                                           else float(runs["accelerator_hours"].sum())),
                "training_run_unknown_accelerator_cost": float(runs["unknown_accelerator_cost"].sum())})
    # the cost whose GPU-hours are unknown never divides by the other rows' hours (finops_kit.units)
    row["cost_per_training_gpu_hour"] = (
        (row["training_run_cost"] - row["training_run_unknown_accelerator_cost"]) / row["training_run_gpu_hours"]
        if row["training_run_gpu_hours"] else None)
    return pd.DataFrame([row])


def tag_coverage(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """Per required tag key (and ``(all required)``): covered, total and untagged positive cost, coverage %."""
    from .tagging import TagAudit

    with TagAudit(con, scope=sc) as audit:
        cov = audit.coverage()
    cov.insert(0, "currency", sc.currency)
    cov["untagged_cost"] = cov["total_cost"] - cov["covered_cost"]
    return cov[["currency", "key", "covered_cost", "untagged_cost", "total_cost", "coverage", "band"]]


def completeness(sc: Scope) -> pd.DataFrame:
    """Per provider and billing period in scope: first and last day with data, closed or open, chart label."""
    c = sc.completeness()
    if c.empty:
        return c
    return c[c["billing_period"].map(sc._in_period)].reset_index(drop=True)


#: The tables of :class:`Metrics`, in the order they are computed and shown.
TABLES = ("totals", "ai", "accelerators", "spot", "tag_coverage", "completeness", "commitments", "tokens",
          "unknown_types", "provisioned")
#: Tables shown (``Metrics.tables``: JSON, text) only when they have rows: a scope without token lines, without
#: accelerated types missing from the catalog or without provisioned throughput has nothing to say there.
OPTIONAL_TABLES = ("tokens", "unknown_types", "provisioned")


@dataclass
class Metrics:
    """The headline figures of one resolved scope (see the module doc for the definitions). A table is None when
    :func:`metrics` was asked for others only (``tables=``): not computed, never an empty answer."""

    scope: Scope
    totals: pd.DataFrame | None
    ai: pd.DataFrame | None
    accelerators: pd.DataFrame | None
    spot: pd.DataFrame | None
    tag_coverage: pd.DataFrame | None
    completeness: pd.DataFrame | None
    commitments: pd.DataFrame | None = field(default_factory=pd.DataFrame)
    tokens: pd.DataFrame | None = field(default_factory=pd.DataFrame)
    provisioned: pd.DataFrame | None = field(default_factory=pd.DataFrame)
    unknown_types: pd.DataFrame | None = field(default_factory=pd.DataFrame)
    tables: tuple[str, ...] = field(default=tuple(t for t in TABLES if t not in OPTIONAL_TABLES))
    ai_units: pd.DataFrame | None = None  # only when GPU utilization files or a runs file were given

    def total(self, name: str, currency: str | None = None) -> Decimal:
        """One figure of :func:`totals` (e.g. ``storage_cost``) in the scope's (or the given) currency."""
        t = self.totals
        if t is None:
            raise ConfigError(f"metrics: {name} is a figure of the totals table, which was not asked for "
                              f"(tables={list(self.tables)!r})")
        cur = currency or self.scope.currency
        if cur is not None:
            t = t[t["currency"] == cur]
        if len(t) != 1:
            raise ConfigError(f"metrics: {name} needs one currency; the scope holds {list(self.totals['currency'])}")
        return t.iloc[0][name]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``finops-kit metrics --json`` (schema in docs/metrics.md)."""
        return {"schema_version": SCHEMA_VERSION, "scope": self.scope.describe(),
                "parameters": self.scope.parameters(), "currency": self.scope.currency,
                **{t: _records(getattr(self, t)) for t in self.tables}}

    def to_text(self) -> str:
        """The tables as plain text (what ``finops-kit metrics`` prints)."""
        parts = [f"Scope: {self.scope.describe()}"]
        for t in self.tables:
            # None and NaN print as "null", the JSON's word (unknown hours, undefined ratios), never "NaN"/"None"
            df = getattr(self, t).map(lambda v: f"{v:,.2f}" if isinstance(v, Decimal) else
                                      float("nan") if v is None else v)
            parts.append(f"\n{t}\n" + ("(none)" if df.empty else df.to_string(index=False, float_format=_num,
                                                                                 na_rep="null")))
        return "\n".join(parts)


def _num(x: float) -> str:
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4f}"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    def val(v: Any) -> Any:
        if v is None or (isinstance(v, float) and v != v):
            return None
        if isinstance(v, Decimal):
            return format(v.quantize(Decimal("0.000001")), "f")
        if isinstance(v, pd.Timestamp):
            return v.date().isoformat()
        if hasattr(v, "isoformat"):
            return v.isoformat()
        if hasattr(v, "item"):
            return v.item()
        return v
    return [{k: val(v) for k, v in r.items()} for r in df.to_dict("records")]


def metrics(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, config: Any = None,
            gpu_metrics: Any = None, host_map: Any = None, runs_file: Any = None,
            tables: Sequence[str] | None = None, **params: Any) -> Metrics:
    """The headline figures of ``scope`` (a :class:`~finops_kit.scope.Scope`, or scope parameters as keywords:
    ``billing_period_start='2026-08', providers=['AWS']``; none = the whole warehouse). With ``gpu_metrics``
    (utilization files, with ``host_map``) or ``runs_file`` the ``ai_units`` table is added.

    ``tables``: compute only these of :data:`TABLES` (default: all); the others are None on the result and are
    not in its ``tables`` (what ``to_dict``/``to_text`` show), while an optional table asked for by name is shown
    even when empty. Why: a report quoting one figure (the tagging audit and the storage report read ``totals``,
    the spot report ``spot`` and ``unknown_types``) computed all ten tables for it, about 1 s of a fresh kernel.
    Each table is the same function of the scope whichever others are computed: the same figures."""
    if scope is None and params:
        scope = Scope.parse(params)
    want = _tables_asked(tables)
    sc = bind(con, scope, config)
    # one resolved scope, one answer: a report quoting its headline figures in several sections (storage and
    # transfer in the storage report) reads the same tables, computed once -- as the scope already keeps its
    # completeness and attribution for the life of the connection; a caller gets copies it may change
    memo = sc.__dict__.setdefault("_metrics_tables", {})
    for name in want:
        if name not in memo:
            memo[name] = _TABLE_FUNCTIONS[name](con, sc)
    values = {name: memo[name].copy() for name in want}
    shown = tuple(name for name in want
                  if tables is not None or name not in OPTIONAL_TABLES or not values[name].empty)
    m = Metrics(scope=sc, **{name: values.get(name) for name in TABLES}, tables=shown)
    if gpu_metrics or host_map or runs_file:
        m.ai_units = ai_units(con, sc, gpu_metrics, host_map, runs_file)
        m.tables = (*m.tables, "ai_units")
    return m


def _tables_asked(tables: Sequence[str] | None) -> tuple[str, ...]:
    """``tables`` of :func:`metrics` checked and in :data:`TABLES` order (None: all of them)."""
    if tables is None:
        return TABLES
    if isinstance(tables, str):
        tables = [tables]
    unknown = [t for t in tables if t not in TABLES]
    if unknown or not tables:
        raise ConfigError(f"metrics: tables {list(tables)!r}; expected some of {', '.join(TABLES)}")
    return tuple(t for t in TABLES if t in tables)


def provisioned_break_even(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """Per provider and model with provisioned AI throughput (PTU, Bedrock provisioned throughput): hourly capacity
    price, the same model's pay-as-you-go tokens and price, the break-even in tokens per hour and the hours per day
    above it (:func:`finops_kit.commitments.provisioned_break_even`, the figures the commitments report shows)."""
    from .commitments import provisioned_break_even as be

    df = be(con, sc)
    return df[["provider", "model", "currency", "capacity_cost", "capacity_hours", "hourly_cost", "payg_tokens",
               "payg_cost", "payg_per_1m", "break_even_tokens_per_hour", "payg_days", "days_payg_above",
               "hours_per_day_above"]].reset_index(drop=True)


def token_unit_costs(con: duckdb.DuckDBPyConnection, sc: Scope) -> pd.DataFrame:
    """Per currency, provider, model and token type: tokens, EffectiveCost and cost per 1M tokens of the token rows
    (:func:`finops_kit.tokens.unit_costs`, the figures the AI unit economics report shows)."""
    from .tokens import unit_costs

    uc = unit_costs(con, sc)
    return uc[["currency", "provider", "model", "token_type", "tokens", "cost", "cost_per_1m"]].reset_index(drop=True)


#: The function computing each table of :data:`TABLES` (each a function of the connection and the resolved scope).
_TABLE_FUNCTIONS: dict[str, Callable[[duckdb.DuckDBPyConnection, Scope], pd.DataFrame]] = {
    "totals": totals, "ai": ai_by_category, "accelerators": accelerators, "spot": spot_share,
    "tag_coverage": tag_coverage, "completeness": lambda _con, sc: completeness(sc),
    "commitments": commitment_summary, "tokens": token_unit_costs, "unknown_types": unknown_types,
    "provisioned": provisioned_break_even}


# ------------------------------------------------------------------------------------------------------------ CLI
def configure_parser(p: argparse.ArgumentParser, command: str = "metrics") -> None:
    p.add_argument("--warehouse", help="warehouse file or FOCUS dataset (folder or s3://bucket/prefix; default: "
                            "$FINOPS_WAREHOUSE or data/warehouse.duckdb)")
    p.add_argument("--config", help="finops.yaml (default: $FINOPS_CONFIG or ./finops.yaml)")
    p.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="scope parameter: " + ", ".join(scope_mod.PARAMETERS))
    p.add_argument("--json", action="store_true", help="write the figures as JSON (schema: docs/metrics.md)")
    p.add_argument("--gpu-metrics", metavar="PATH", help="GPU utilization files or folder (nvidia-smi CSV, "
                   "CloudWatch / Prometheus JSON): adds idle GPU dollars (ai_units)")
    p.add_argument("--host-map", metavar="FILE", help="host,resource_id[,timezone] CSV for nvidia-smi / DCGM hosts")
    p.add_argument("--runs-file", metavar="FILE", help="training runs CSV (run_id,start,end,resource_ids): adds "
                   "training-run cost (ai_units)")
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="spark: compute the whole-table part on Apache Spark over a FOCUS dataset folder given as "
                        "--warehouse (finops_kit/spark_metrics.py); same output")
    p.add_argument("--spark-master", metavar="URL", help="with --engine spark: local[N], spark://..., or sc://... "
                   "(Spark Connect); default $FINOPS_SPARK_MASTER or local[*]")


def run(args: argparse.Namespace, command: str = "metrics") -> int:
    from .report import parse_parameters
    from .warehouse import connect

    cli = parse_parameters(args.parameter)
    bad = [n for n in cli if n not in scope_mod.PARAMETERS]
    if bad:
        raise ConfigError(f"-p {bad[0]}: not a scope parameter; metrics takes {', '.join(scope_mod.PARAMETERS)}")
    sc = Scope.parse({n: v for n, (_raw, v) in cli.items()})
    if getattr(args, "engine", "duckdb") == "spark":
        from .spark_metrics import spark_metrics

        if getattr(args, "gpu_metrics", None) or getattr(args, "runs_file", None):
            raise ConfigError("--gpu-metrics/--runs-file: not with --engine spark (they join per-resource hours "
                              "outside the warehouse); run them with the default engine on the dataset")
        if not args.warehouse:
            raise ConfigError("--engine spark: give the FOCUS dataset folder with --warehouse DIR")
        m = spark_metrics(args.warehouse, sc, args.config, master=args.spark_master)
        print(json.dumps(m.to_dict(), indent=2) if args.json else m.to_text())
        return 0
    con = connect(args.warehouse or os.environ.get("FINOPS_WAREHOUSE"), read_only=True, quiet=True)
    try:
        m = metrics(con, sc.resolve(con, args.config), gpu_metrics=getattr(args, "gpu_metrics", None),
                    host_map=getattr(args, "host_map", None), runs_file=getattr(args, "runs_file", None))
    finally:
        con.close()
    print(json.dumps(m.to_dict(), indent=2) if args.json else m.to_text())
    return 0


class _CallableModule(types.ModuleType):
    """``fk.metrics(con, scope)`` calls :func:`metrics` while ``finops_kit.metrics`` stays this module.

    Why: the package loads this module lazily (it pulls in pandas), and Python's import system binds the
    submodule as the package attribute ``metrics`` whenever it is first imported, whichever code imports it
    first. A callable module keeps ``fk.metrics(...)`` working in every import order (documented in the
    language reference, "Customizing module attribute access")."""

    def __call__(self, con: duckdb.DuckDBPyConnection, scope: Scope | None = None, config: Any = None,
                 **params: Any) -> Metrics:
        return metrics(con, scope, config, **params)


sys.modules[__name__].__class__ = _CallableModule
