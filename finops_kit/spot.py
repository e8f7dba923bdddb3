"""Spot for model training: what the bill says, what the Spot Advisor says, and what the traces say.

Three inputs, three questions:

* **The bill** (the FOCUS table): how much GPU/accelerator compute already runs on spot (PricingCategory
  ``Dynamic``) versus on demand (``Standard``) and under commitments (``Committed``), per team, instance family,
  region and month; the effective hourly rate actually paid in each; and what the on-demand hours would have cost
  at spot prices, with the assumption behind every number shown in a ``basis`` column.
* **The EC2 Spot Instance Advisor feed** (``spot-advisor-data.json``): savings ``s`` (% vs on demand) and the
  interruption band ``r`` (0..4 = <5%, 5-10%, 10-15%, 15-20%, >20% of instances interrupted per month) for each
  region/OS/instance type. Key on ``r``: the feed's ``ranges[].max`` reads 5, 11, 16, 22, 100, not the labels.
* **Availability/preemption traces** (optional, :class:`finops_kit.checkpoint.Trace`): measured interruptions,
  which for GPU types are far more frequent than the Advisor bands suggest.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from . import checkpoint as ck
from . import units
from .classify import ai_rules
from .datafiles import data_rows
from .errors import ConfigError, InputError
from .querycache import own_objects
from .querycache import relation as _relation
from .schema import MONEY

#: Where a fresh copy of the feed is published (the kit never fetches it on its own: pass it to load_advisor).
ADVISOR_URL = "https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json"
BUNDLED_ADVISOR = "data/spot-advisor-data_2025-06.json"
OS_NAMES = ("Linux", "Windows")
#: The label of a billed row whose operating system the bill does not give (SageMaker, AWS operation codes
#: ``data/ec2_usage_operations.csv`` does not list, a provider ``data/vm_operating_systems.csv`` has no rule for; Azure
#: and Google Cloud VM rows have one): :func:`finops_kit.spot_prices.operating_system_label_sql`.
UNKNOWN_OS = "unknown"
RATE = "DECIMAL(38,6)"


# ------------------------------------------------------------------------------------------- data tables
def _data_csv(name: str, path: str | os.PathLike | None = None) -> pd.DataFrame:
    return pd.DataFrame(data_rows(name, path))


def instance_catalog(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Accelerator count/model per EC2 instance type (``data/ec2_accelerated_instances.csv``)."""
    df = _data_csv("ec2_accelerated_instances.csv", path)
    for c in ("accelerators", "accelerator_memory_gib", "vcpus"):
        df[c] = pd.to_numeric(df[c])
    return df


def ondemand_prices(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Dated on-demand list prices (``data/ec2_ondemand_prices.csv``: Linux, and Windows for the types the Spot
    Advisor lists with Windows, per ``operating_system``; pass your own price list to override or extend it, e.g.
    with current prices or other OSes). A table without ``operating_system`` is read as Linux. A missing file is a
    one-line InputError, as the spot report's ``price_table`` parameter must be."""
    if path is not None and not os.path.exists(path):
        raise InputError(str(path), "on-demand price list not found")
    df = _data_csv("ec2_ondemand_prices.csv", path)
    missing = {"instance_type", "region", "usd_per_hour", "price_date", "source"} - set(df.columns)
    if missing:
        raise InputError(str(path or "ec2_ondemand_prices.csv"), f"missing columns {sorted(missing)}")
    df["usd_per_hour"] = pd.to_numeric(df["usd_per_hour"])
    if "operating_system" not in df:
        df["operating_system"] = "Linux"
    return df


def ondemand_price(instance_type: str, region: str, prices: pd.DataFrame | None = None,
                   operating_system: str = "Linux") -> float | None:
    p = ondemand_prices() if prices is None else prices
    hit = p[(p.instance_type == instance_type) & (p.region == region) & (p.operating_system == operating_system)]
    return float(hit.usd_per_hour.iloc[0]) if len(hit) else None


def bundled_path(relative: str) -> str:
    """Absolute path of a file shipped inside the package (e.g. the bundled Advisor snapshot)."""
    return str(resources.files("finops_kit").joinpath(relative))


def resolve_path(path: str) -> str:
    """``path`` if it exists from the working directory, else the same path inside the installed package.

    Why: notebook parameters are literal strings such as ``finops_kit/data/spot/...``; papermill runs them from
    the repo root for ``make demo`` but a user may render reports from elsewhere.
    """
    if not path or path.startswith(("http://", "https://")) or os.path.exists(path):
        return path
    rel = path.split("finops_kit/", 1)[1] if "finops_kit/" in path else path
    candidate = bundled_path(rel)
    return candidate if os.path.exists(candidate) else path


# ------------------------------------------------------------------------------------ Spot Advisor feed
@dataclass
class Advisor:
    """A parsed Spot Advisor snapshot: one row per region/OS/instance type, plus where it came from."""

    table: pd.DataFrame
    source: str
    global_rate: str | None
    regions: int

    def get(self, instance_type: str, region: str, os_name: str = "Linux") -> dict | None:
        t = self.table
        hit = t[(t.instance_type == instance_type) & (t.region == region) & (t.os == os_name)]
        return hit.iloc[0].to_dict() if len(hit) else None


def operating_system_name(name: str) -> str:
    """The Spot Advisor operating system a plan is for (:data:`OS_NAMES`, any letter case), or a one-line
    ConfigError naming the ones there are.

    Why: the spot report ranked GPU families and planned its job with Linux figures whatever the fleet runs; the
    Advisor's bands differ by OS (g5.12xlarge in us-east-1: '>20%' on Linux, '<5%' on Windows), so the report
    takes an ``operating_system`` parameter, and a value the feed has no figures for ('Linux/UNIX', 'RHEL')
    must stop it with one line rather than yield empty rankings.
    """
    for known in OS_NAMES:
        if str(name).strip().lower() == known.lower():
            return known
    raise ConfigError(f"operating_system: expected one of {', '.join(OS_NAMES)} (the Spot Advisor's operating "
                      f"systems), got {name!r}")


def _read_source(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=30) as resp:  # noqa: S310 - user-supplied feed URL
                return resp.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise InputError(source, f"could not download the Spot Advisor feed ({getattr(exc, 'reason', exc)})") \
                from None
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise InputError(source, "Spot Advisor file not found") from None


def load_advisor(source: str | os.PathLike | None = None) -> Advisor:
    """Parse a ``spot-advisor-data.json`` from a file path or an http(s) URL (default: the bundled snapshot).

    Bands are taken from ``r`` and labelled through the feed's own ``ranges`` (matched on ``index``); the
    ``max`` values are ignored because they do not match the labels.
    """
    src = str(source) if source else bundled_path(BUNDLED_ADVISOR)
    raw = _read_source(src)
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(src, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or "spot_advisor" not in doc:
        raise InputError(src, "not a Spot Advisor feed: expected keys 'spot_advisor', 'ranges', 'instance_types'")
    labels = {int(r["index"]): r["label"] for r in doc.get("ranges", []) if "index" in r and "label" in r}
    bands = ck.advisor_bands()
    labels = {r: labels.get(r, b.label) for r, b in bands.items()}
    specs = doc.get("instance_types") or {}
    rows = []
    for region, by_os in doc["spot_advisor"].items():
        for os_name, by_type in (by_os or {}).items():
            for itype, v in (by_type or {}).items():
                if not isinstance(v, dict) or "r" not in v or "s" not in v:
                    raise InputError(src, "expected an object with 's' and 'r'",
                                     column=f"spot_advisor.{region}.{os_name}.{itype}")
                r = int(v["r"])
                if r not in bands:
                    raise InputError(src, f"interruption band r={r} outside 0..4",
                                     column=f"spot_advisor.{region}.{os_name}.{itype}.r")
                spec = specs.get(itype) or {}
                rows.append((region, os_name, itype, itype.split(".")[0], int(v["s"]), r, labels[r],
                             bands[r].lower_pct, bands[r].upper_pct, spec.get("cores"), spec.get("ram_gb")))
    table = pd.DataFrame(rows, columns=["region", "os", "instance_type", "family", "savings_pct", "band",
                                        "band_label", "interrupt_lower_pct", "interrupt_upper_pct", "vcpus",
                                        "ram_gb"])
    return Advisor(table=table, source=src, global_rate=doc.get("global_rate"), regions=len(doc["spot_advisor"]))


def _accelerated_pattern() -> str:
    """The AWS instance-type regex of ``data/ai_workloads.csv`` (one definition of 'accelerated' in the kit)."""
    for r in ai_rules():
        if r["column"] == "x_InstanceType" and re.search(r"aws|amazon", r["provider_pattern"], re.I):
            return r["pattern"]
    return r"^(p[0-9]+[a-z]*|g[0-9]+[a-z]*|trn[0-9]+[a-z]*|inf[0-9]+[a-z]*|dl[0-9]+[a-z]*)\."


def accelerated(advisor: Advisor, region: str | None = None, os_name: str = "Linux") -> pd.DataFrame:
    """Advisor rows of GPU/accelerator instance types, joined to accelerator counts where the catalog knows them."""
    t = advisor.table
    t = t[t.instance_type.str.match(_accelerated_pattern()) & (t.os == os_name)]
    if region:
        t = t[t.region == region]
    cat = instance_catalog()[["instance_type", "accelerators", "accelerator"]]
    return t.merge(cat, on="instance_type", how="left")


def rank_gpu_families(advisor: Advisor, region: str, os_name: str = "Linux", *, reference_job: ck.JobSpec | None = None,
                      band_assumption: str = "mid") -> pd.DataFrame:
    """GPU/accelerator families in a region ranked by savings net of interruption risk.

    ``net_saving_pct`` is the closed-form expected saving of a reference job (default: 1 node, 100 h of work,
    5 min checkpoints, 10 min restarts) at the family's median Advisor saving and the node MTBF implied by each
    type's band (:func:`finops_kit.checkpoint.band_to_mtbf`, ``band_assumption``). It only orders families; the
    Advisor's bands are optimistic for GPUs (see the traces), so treat it as a ranking, not a forecast.
    """
    acc = accelerated(advisor, region, os_name)
    if acc.empty:
        raise ConfigError(f"Spot Advisor ({advisor.source}): no accelerated instance types for region {region!r}, "
                          f"OS {os_name!r}")
    job = reference_job or ck.JobSpec(work_hours=100, checkpoint_hours=5 / 60, restart_hours=10 / 60,
                                      od_price=1.0, spot_price=0.5)
    mtbf = {r: ck.band_to_mtbf(r, band_assumption) for r in range(5)}

    def net(row) -> float:
        j = job.with_(od_price=1.0, spot_price=max(1e-6, 1 - row.savings_pct / 100))
        return 100 * ck.closed_form(j, mtbf[int(row.band)]).cost_saving

    acc = acc.assign(net_saving_pct=acc.apply(net, axis=1))
    g = acc.groupby("family").agg(
        types=("instance_type", "count"), median_savings_pct=("savings_pct", "median"),
        min_savings_pct=("savings_pct", "min"), max_savings_pct=("savings_pct", "max"),
        mean_band=("band", "mean"), worst_band=("band", "max"), best_band=("band", "min"),
        net_saving_pct=("net_saving_pct", "median"), accelerator=("accelerator", "first"),
    ).reset_index()
    labels = {r: b.label for r, b in ck.advisor_bands().items()}
    g["worst_band_label"] = g.worst_band.map(labels)
    g["best_band_label"] = g.best_band.map(labels)
    g = g.sort_values(["net_saving_pct", "median_savings_pct"], ascending=False).reset_index(drop=True)
    g.insert(0, "rank", range(1, len(g) + 1))
    return g


def compare_snapshots(old: Advisor, new: Advisor, instance_types: Sequence[str], region: str,
                      os_name: str = "Linux") -> pd.DataFrame:
    """How savings and bands moved between two snapshots for the chosen types (NaN where a type is new)."""
    def pick(a: Advisor) -> pd.DataFrame:
        t = a.table
        return t[(t.region == region) & (t.os == os_name) & t.instance_type.isin(instance_types)][
            ["instance_type", "savings_pct", "band", "band_label"]].set_index("instance_type")
    out = pick(old).merge(pick(new), left_index=True, right_index=True, how="outer", suffixes=("_old", "_new"))
    return out.reindex(list(instance_types)).rename_axis("instance_type").reset_index()


# ------------------------------------------------------------------------------------- the bill (FOCUS)
PRICING_ORDER = ("Spot", "On-demand", "Committed")


def accelerated_usage_sql(scope: Any) -> str:
    """SQL of accelerated instances' rows with month, team, family, region, pricing class, cost and hours.

    ``scope`` is a resolved :class:`~finops_kit.scope.Scope`: its rows (money in its currency) and its attribution
    give the team (``tag_policy`` keys and aliases; ``(shared)``/``(untagged)`` exactly as in showback).
    Rows, hours and pricing classes come from :func:`finops_kit.units.accelerated_usage_sql` (the kit's one
    answer): a GCP VM's vCPU, RAM and GPU rows and its credits are one instance; ``hours`` are instance-hours
    (an a2-highgpu-8g hour is one hour, not 104 SKU-hours), ``accelerator_hours`` GPU/TPU/Trainium/Inferentia
    hours; fees, purchases and unused commitments have no hours. Pricing class: 'Spot' = PricingCategory Dynamic
    (or an AWS ``SpotUsage`` usage type), 'Committed' = Committed or a CommitmentDiscountId, 'On-demand' = Standard;
    'Unused commitment' and 'Unused capacity reservation' rows (no hours) are in :func:`spot_coverage`'s
    ``other_cost``.
    ``has_hours`` / ``has_accelerator_hours`` mark the rows of instances whose hours are counted,
    ``instance_hours_unknown`` / ``accelerator_hours_unknown`` those whose hours are unknown (type not in the catalog).
    ``operating_system``: the platform of the row's instance (:func:`finops_kit.spot_prices.operating_system_rows_sql`,
    the one answer commitments read too: the EC2 OS read from the usage operation; ``unknown (<operation>)`` for an
    AWS code the kit does not map; an Azure or Google Cloud VM's from ``data/vm_operating_systems.csv``, an Azure VM
    whose licence row names its OS taking that OS for its base-meter rows; ``unknown`` otherwise). ``spot_market``:
    false for usage that cannot run on spot (:func:`finops_kit.units.no_spot_market_sql`), as
    :func:`finops_kit.units.row_sql` gives it. ``unit_role`` as the units give it; ``licence_apart``: a licence row
    (role ``license``) that is not part of its label's price -- every licence row under the label
    ``any (licence billed apart)`` (a Compute Engine premium-image SKU), and one that names no OS or another OS than
    its instance's (an Azure SQL Server licence): :func:`effective_rates` and :func:`spot_coverage` show its cost
    apart, in no rate or spot share (a licence named by its own OS, an Azure Windows licence of a Windows VM, is part
    of that OS's price).
    """
    from .querycache import ensure
    from .spot_prices import operating_system_usage_from

    rows = operating_system_usage_from(scope.con, scope)  # derived once per read-only connection
    if scope.con is not None:  # made now: spot's queries (and a caller's con.sql) run on the connection itself
        ensure(scope.con, rows)
    return f"""
      SELECT date_trunc('month', ChargePeriodStart) AS month, ChargePeriodStart AS charge_start,
             ChargePeriodEnd AS charge_end, ProviderName AS provider,
             {scope.attribution.owner_sql()} AS team, coalesce(instance_type, '(no instance type)') AS instance_type,
             coalesce(instance_family, '(no instance type)') AS instance_family,
             coalesce(RegionId, '(no region)') AS region, pricing, BillingCurrency AS currency,
             operating_system,
             EffectiveCost, ListCost, CAST(hours AS DECIMAL(38,6)) AS hours,
             CAST(accelerator_hours AS DECIMAL(38,6)) AS accelerator_hours,
             has_instance_hours AS has_hours, has_accelerator_hours, spot_market,
             instance_hours_unknown, accelerator_hours_unknown, unit_role,
             coalesce(unit_role = 'license' AND licence_os IS DISTINCT FROM operating_system, FALSE) AS licence_apart
      FROM {rows}"""


def _scope(con: duckdb.DuckDBPyConnection, scope: Any, start: Any, end: Any) -> Any:
    """The resolved scope (``scope`` wins; legacy ``start``/``end`` are months or days, both inclusive)."""
    from .scope import bind

    return bind(con, scope, None, start=start, end=end)


#: The dimensions of spot coverage, rates and the what-if. ``operating_system`` as
#: :func:`accelerated_usage_sql` gives it: a rate per instance-hour that blends Linux and Windows hours is a rate
#: nobody pays (100 h each of Linux at $5.672/h and Windows at $7.88/h showed one g5.12xlarge rate of $6.776/h).
_DIMS = ("month", "provider", "team", "instance_family", "instance_type", "operating_system", "region", "currency")


def _dims(by: Sequence[str]) -> list[str]:
    bad = [d for d in by if d not in _DIMS]
    if bad:
        raise ConfigError(f"spot coverage: unknown dimension(s) {bad}; expected some of {list(_DIMS)}")
    return list(by)


#: The cost of a row of :func:`accelerated_usage_sql` that spot could move: none of a licence billed apart.
_NOT_APART_COST = "CASE WHEN licence_apart THEN NULL ELSE EffectiveCost END"
#: A row whose cost a per-hour rate of :func:`effective_rates` or :func:`spot_what_if` divides: not a licence row
#: billed apart (a rate labelled 'any (licence billed apart)' is the compute's).
_RATED = "NOT licence_apart"


def spot_coverage(con: duckdb.DuckDBPyConnection, by: Sequence[str] = ("month",), *,
                  start: Any = None, end: Any = None, scope: Any = None
                  ) -> duckdb.DuckDBPyRelation:
    """Accelerated compute per ``by`` (always also per currency): cost, instance-hours and accelerator-hours by
    pricing class, the part of them that has no spot market, spot shares.

    ``spot_hours_share`` = spot instance-hours / instance-hours that could run on spot;
    ``spot_accelerator_hours_share`` = the same for accelerator-hours (they differ when 8-GPU and 1-GPU instances
    mix); ``spot_cost_share`` = spot cost / cost that could run on spot (:func:`finops_kit.units.spot_share_sql`,
    the kit's one spot share). ``no_spot_market_hours``, ``no_spot_market_accelerator_hours`` and
    ``no_spot_market_cost``: the part of the on-demand and committed figures that has no spot market
    (:func:`finops_kit.units.no_spot_market_sql`: SageMaker endpoints and notebooks), left out of the shares' denominators and still
    in ``total_*``. A group with no hours that could run on spot has no share (NULL), not 0. Hours are those of
    :mod:`finops_kit.units`: known hours, NULL when every instance of the group has unknown hours (a type not in the
    catalog), whose cost is ``unknown_instance_cost`` / ``unknown_accelerator_cost``.

    ``licence_apart_cost``: the licence rows billed apart from the label's price (``licence_apart`` of
    :func:`accelerated_usage_sql`: a Compute Engine Windows Server SKU under 'any (licence billed apart)'). They are
    in their pricing class's cost and ``total_cost`` (the table adds up to the accelerated compute of the scope) but
    not in ``spot_cost_share``: a licence is billed at the same price on spot, so it is no cost spot could move
    (the share counted a Windows VM's licence in the on-demand denominator).
    """
    dims = _dims(by)
    if "currency" not in dims:
        dims.append("currency")
    cols = ", ".join(dims)
    per_class = ",\n".join(
        f"  coalesce(sum(EffectiveCost) FILTER (WHERE pricing = '{p}'), 0)::{MONEY} AS \"{k}_cost\",\n"
        f"  {units.known_total('hours', 'pricing = ' + repr(p))} AS \"{k}_hours\",\n"
        f"  {units.known_total('accelerator_hours', 'pricing = ' + repr(p))} AS \"{k}_accelerator_hours\""
        for p, k in (("Spot", "spot"), ("On-demand", "on_demand"), ("Committed", "committed")))
    return _relation(con, f"""
      WITH u AS ({accelerated_usage_sql(_scope(con, scope, start, end))})
      SELECT {cols},
        {per_class},
        coalesce(sum(EffectiveCost) FILTER (WHERE pricing NOT IN ('Spot', 'On-demand', 'Committed')), 0)::{MONEY}
          AS other_cost,
        sum(EffectiveCost)::{MONEY} AS total_cost,
        {units.known_total("hours")} AS total_hours,
        {units.known_total("accelerator_hours")} AS total_accelerator_hours,
        {units.no_spot_market_total("hours")} AS no_spot_market_hours,
        {units.no_spot_market_total("accelerator_hours")} AS no_spot_market_accelerator_hours,
        {units.no_spot_market_total("EffectiveCost", money=True)}::{MONEY} AS no_spot_market_cost,
        round({units.spot_share_sql("hours")}, 4) AS spot_hours_share,
        round({units.spot_share_sql("accelerator_hours")}, 4) AS spot_accelerator_hours_share,
        round({units.spot_share_sql(_NOT_APART_COST, money=True)}, 4) AS spot_cost_share,
        coalesce(sum(EffectiveCost) FILTER (WHERE licence_apart), 0)::{MONEY} AS licence_apart_cost,
        {units.unknown_cost("hours", typ=MONEY)} AS unknown_instance_cost,
        {units.unknown_cost("accelerator_hours", typ=MONEY)} AS unknown_accelerator_cost
      FROM u GROUP BY ALL ORDER BY {cols}""")


def effective_rates(con: duckdb.DuckDBPyConnection, by: Sequence[str] = ("provider", "region", "instance_type"), *,
                    start: Any = None, end: Any = None, scope: Any = None
                    ) -> duckdb.DuckDBPyRelation:
    """Effective hourly rate actually paid per pricing class: per instance-hour and per accelerator-hour.

    ``cost`` is all the accelerated compute of the group (:func:`finops_kit.units.accelerated_usage_sql`), so the
    table adds up to "Accelerated compute" of the scope (:func:`spot_coverage`'s ``total_cost``). Each rate divides
    the cost of the instances whose hours it counts (:func:`finops_kit.units.rate_sql`, the same rates
    :func:`finops_kit.tagging.accelerator_families` shows, whose all-in cost per family-hour keeps the
    licence rows that this table shows apart, below): ``rate_per_hour`` = their cost / instance-hours,
    ``rate_per_accelerator_hour`` = the cost of instances with accelerator-hours / accelerator-hours (a GPU billed
    on its own accelerator type, such as a Vertex AI training GPU, has only the latter). ``cost_without_hours`` is
    the part of ``cost`` no rate divides: instances with neither kind of hours (an unused reservation or
    committed-use discount), ``rows_without_hours`` their rows. ``discount_vs_list`` = 1 - EffectiveCost /
    ListCost over the instances with hours.

    Why all the cost: the table showed cost only over instances with instance-hours, so a review found it blank
    for $11,232.63 of Vertex AI A100 GPUs (3,330 accelerator-hours, rated $3.37 per accelerator-hour) and a
    $14,448.42 unused A100 commitment, and summing to less than "Accelerated compute" without saying why.

    Licence rows billed apart from the label's price (``licence_apart`` of :func:`accelerated_usage_sql`: every
    licence SKU under Compute Engine's 'any (licence billed apart)') are in ``cost`` and shown as
    ``licence_apart_cost``, never in a rate: that label's rate is the compute's, the same for every OS, and a
    Windows VM's licence in it made a rate nobody pays (a Linux a2-highgpu-1g at 3.7052/h and a Windows one beside
    it read 3.9812/h). A licence named by its instance's own OS (an Azure Windows licence of a reserved Windows VM,
    labelled Windows) is part of that OS's rate: what the Windows VM costs an hour, as its Windows meter says on
    demand. So ``cost`` = the rated cost + ``cost_without_hours`` + ``licence_apart_cost`` (+ the cost of
    instances with unknown hours).
    """
    dims = _dims(by)
    if "currency" not in dims:
        dims.append("currency")
    cols = ", ".join(dims)
    hours = "(coalesce(has_hours, FALSE) OR coalesce(has_accelerator_hours, FALSE))"
    rel = _relation(con, f"""
      WITH u AS ({accelerated_usage_sql(_scope(con, scope, start, end))})
      SELECT {cols}, pricing,
        sum(EffectiveCost)::{MONEY} AS cost,
        {units.total("hours")} AS hours,
        {units.total("accelerator_hours")} AS accelerator_hours,
        {units.rate_sql("hours", f"has_hours AND {_RATED}", RATE)} AS rate_per_hour,
        {units.rate_sql("accelerator_hours", f"has_accelerator_hours AND {_RATED}", RATE)}
          AS rate_per_accelerator_hour,
        round(1 - sum(EffectiveCost) FILTER (WHERE {hours} AND {_RATED})
             / nullif(sum(ListCost) FILTER (WHERE {hours} AND {_RATED}), 0), 4) AS discount_vs_list,
        coalesce(sum(EffectiveCost) FILTER (WHERE NOT {hours}), 0)::{MONEY} AS cost_without_hours,
        count(*) FILTER (WHERE NOT {hours}) AS rows_without_hours,
        coalesce(sum(EffectiveCost) FILTER (WHERE licence_apart AND {hours}), 0)::{MONEY} AS licence_apart_cost
      FROM u
      GROUP BY ALL ORDER BY {cols}, pricing""")
    return _materialize(con, rel)


def _materialize(con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """A relation that no longer depends on a temporarily registered frame (small aggregates only)."""
    tbl = rel.to_arrow_table()
    return con.from_arrow(tbl)


@dataclass(frozen=True)
class WhatIfAssumptions:
    """How on-demand hours are re-priced at spot; every row of :func:`spot_what_if` names the rule it used.

    1. ``observed``: the spot rate this bill itself shows for the same provider, region, instance type and
       operating system -- never across OSes: a row whose OS the bill does not give (``unknown``: SageMaker, a
       provider without OS rules) takes no observed rate, and an AWS code the kit does not map (``unknown (<operation>)``:
       SQL Server editions, BYOL, Ubuntu Pro) only the rate of spot rows of the same code;
    2. ``advisor``: the on-demand rate paid x (1 - Advisor savings s) for that region/type and operating system
       (Linux or Windows: the feed has no other);
    3. ``flat``: the on-demand rate paid x (1 - ``flat_discount``) (CID's KPI dashboard assumes 55%).
    ``overhead`` multiplies spot hours for interruptions (lost work, checkpoints, restarts), e.g. T_w/T_s from
    :func:`finops_kit.checkpoint.closed_form`; 1.0 means "no interruptions", an optimistic bound.
    """

    flat_discount: float = 0.55
    overhead: float = 1.0
    use_observed: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.flat_discount < 1:
            raise ConfigError(f"spot what-if: flat_discount must be in [0, 1), got {self.flat_discount!r}")
        if self.overhead < 1:
            raise ConfigError(f"spot what-if: overhead must be >= 1 (interruptions only add time), got {self.overhead!r}")


def spot_what_if(con: duckdb.DuckDBPyConnection, advisor: Advisor | None = None,
                 assumptions: WhatIfAssumptions | None = None, by: Sequence[str] = ("month", "team"), *,
                 start: Any = None, end: Any = None, scope: Any = None) -> pd.DataFrame:
    """What the on-demand accelerated hours would have cost spot-priced, per ``by`` x instance type x basis.

    Only hours are re-priced: ``on_demand_cost`` is the cost of the on-demand instances whose hours are counted
    (:mod:`finops_kit.units`), ``spot_priced_cost`` = those hours x the spot rate x overhead, and ``saving`` the
    difference. On-demand cost without hours (fees, rows no instance's hours account for) cannot move to spot: it
    is reported as ``not_repriced_cost`` and is never part of a saving (it used to count as 100% saved). ``basis``
    names the rule of :class:`WhatIfAssumptions` that priced the row; a group with no hours at all has basis
    'no hours' and no saving. Operating systems stay apart (``operating_system``, from the row's usage operation):
    a Windows hour is re-priced with Windows figures only, as :func:`finops_kit.spot_prices.price_stats` keeps
    them apart (before, 100 Windows g5.xlarge hours at $1.19/h took the Linux Advisor s = 59%, $0.4879/h and a
    $70.21 saving, instead of s = 76%, $0.2856/h and $90.44). A row of unknown OS borrows no other row's rate
    unless both carry the same AWS operation code (:func:`finops_kit.spot_prices.operating_system_label_sql`):
    before, every such row shared one rate, so 100 h of an Azure Windows VM at $4.856/h took a Linux spot VM's
    $0.64/h (saving $421.60 instead of $267.08 at the flat 55%). Hours of usage that has no spot market
    (:func:`finops_kit.units.no_spot_market_sql`: SageMaker endpoints and notebooks) keep their on-demand rate, basis 'no spot
    market', saving 0 -- counted in the on-demand hours and cost, never as a saving.

    Licence rows billed apart from their label's price (``licence_apart`` of :func:`accelerated_usage_sql`: a
    Compute Engine "Licensing Fee for Windows Server" SKU, an Azure SQL Server licence meter) are never re-priced:
    a premium image's licence bills at the same price on Spot VMs, so their cost is ``not_repriced_cost``, and an
    observed spot rate is the spot rows' compute without them. Before, an on-demand Windows a2-highgpu-1g's
    0.552/h licence was "saved" at a Linux spot VM's rate: $755.50 over 240 h instead of (3.7052 - 1.1093) x 240 =
    $623.02 (review csg, finding 2). A licence that is part of its OS's price (an Azure Windows licence of a Windows
    VM billing its compute on the base meter) is in the rates as :func:`effective_rates` has it: a spot Windows VM's
    rate is its spot compute plus its licence, as a pay-as-you-go Windows meter's rate holds the licence. Before,
    every licence row was left out of the observed rate, and Windows meter hours at 4.777/h were re-priced at the
    spot VM's compute alone (1.0/h, saving 906.48 over 240 h) where a Windows hour on spot costs 1.0 + 1.104 =
    2.104/h (saving 641.52; review s17, finding 2).

    ``first_day``/``last_day``/``span_days``: the charge days the line's re-priced hours span (NULL without hours),
    which :func:`what_if_actions` divides a saving over the scope by to state it per month.
    """
    from .sources.base import sql_str

    a = assumptions or WhatIfAssumptions()
    dims = [d for d in _dims(by) if d not in ("instance_type", "region", "provider", "currency", "operating_system")]
    adv = (advisor.table[["region", "os", "instance_type", "savings_pct"]]
           if advisor is not None else pd.DataFrame({"region": pd.Series(dtype=str), "os": pd.Series(dtype=str),
                                                      "instance_type": pd.Series(dtype=str),
                                                      "savings_pct": pd.Series(dtype=int)}))
    with own_objects(con):  # a registered frame, no function or macro
        con.register("_spot_advisor", adv)
    dim_cols = "".join(f"{d}, " for d in dims)
    # the hours' cost re-priced, on both sides, is the rated cost of effective_rates: a licence billed apart (a
    # Compute Engine premium-image SKU, an Azure SQL Server licence) costs the same on spot and is never re-priced;
    # a licence that is part of its OS's price (an Azure Windows licence of a Windows VM whose compute bills on the
    # base meter) is in the spot rate as it is in a Windows meter's on-demand rate
    repriced = _RATED
    try:
        df = _relation(con, f"""
          WITH u AS ({accelerated_usage_sql(_scope(con, scope, start, end))}),
          observed AS (
            SELECT provider, region, instance_type, operating_system, currency,
                   {units.rate_sql("hours", f"has_hours AND {repriced}", "DOUBLE")} AS spot_rate
            FROM u WHERE pricing = 'Spot' GROUP BY ALL),
          od AS (
            SELECT {dim_cols}provider, region, instance_type, operating_system, currency, spot_market,
                   sum(EffectiveCost) AS od_cost, {units.total("hours")} AS od_hours,
                   sum(EffectiveCost) FILTER (WHERE has_hours AND {repriced}) AS od_cost_with_hours,
                   -- the days the line's re-priced hours span: what a saving "per month" divides by
                   min(charge_start) FILTER (WHERE has_hours AND {repriced}) AS _first,
                   max(charge_end) FILTER (WHERE has_hours AND {repriced}) AS _last
            FROM u WHERE pricing = 'On-demand' GROUP BY ALL),
          priced AS (
            SELECT od.*, o.spot_rate AS observed_rate,
                   od.od_cost_with_hours / nullif(od.od_hours, 0) AS od_rate,
                   CASE WHEN od.provider ILIKE '%aws%' OR od.provider ILIKE '%amazon%' THEN a.savings_pct END
                     AS advisor_savings_pct
            FROM od
            LEFT JOIN observed o ON {'TRUE' if a.use_observed else 'FALSE'} AND o.provider = od.provider
              AND o.region = od.region AND o.instance_type = od.instance_type AND o.currency = od.currency
              AND o.operating_system = od.operating_system AND od.operating_system <> {sql_str(UNKNOWN_OS)}
            LEFT JOIN _spot_advisor a ON a.region = od.region AND a.instance_type = od.instance_type
              AND a.os = od.operating_system)
          , rated AS (
          SELECT {dim_cols}provider, region, instance_type, operating_system, currency,
            CASE WHEN od_hours IS NULL OR od_hours = 0 THEN 'no hours'
                 WHEN NOT spot_market THEN 'no spot market'
                 WHEN observed_rate IS NOT NULL THEN 'observed'
                 WHEN advisor_savings_pct IS NOT NULL THEN 'advisor'
                 ELSE 'flat' END AS basis,
            coalesce(od_cost_with_hours, 0)::{MONEY} AS on_demand_cost, od_hours AS on_demand_hours,
            (od_cost - coalesce(od_cost_with_hours, 0))::{MONEY} AS not_repriced_cost,
            CAST(od_rate AS {RATE}) AS on_demand_rate,
            CAST(CASE WHEN od_hours IS NULL OR od_hours = 0 THEN NULL
                      WHEN NOT spot_market THEN od_rate
                      WHEN observed_rate IS NOT NULL THEN observed_rate
                      WHEN advisor_savings_pct IS NOT NULL THEN od_rate * (1 - advisor_savings_pct / 100.0)
                      ELSE od_rate * (1 - {a.flat_discount!r}) END AS {RATE}) AS spot_rate,
            advisor_savings_pct, epoch(_last - _first) / 86400.0 AS span_days,
            CAST(_first AS DATE) AS first_day, CAST(_last - INTERVAL 1 SECOND AS DATE) AS last_day
          FROM priced)
          SELECT * EXCLUDE (_spot_priced), {a.overhead!r} AS overhead, _spot_priced AS spot_priced_cost,
            CAST(on_demand_cost - _spot_priced AS {MONEY}) AS saving
          FROM (SELECT *,
                  -- no spot market: the hours stay on demand at the cost paid (saving exactly 0, no rate rounding)
                  CASE WHEN basis = 'no spot market' THEN on_demand_cost
                       ELSE CAST(on_demand_hours * spot_rate * CAST({a.overhead!r} AS DECIMAL(12,6)) AS {MONEY})
                  END AS _spot_priced
                FROM rated) ORDER BY ALL""").df()
    finally:
        con.unregister("_spot_advisor")
    return df


def what_if_summary(what_if: pd.DataFrame) -> pd.DataFrame:
    """Totals of :func:`spot_what_if` per currency and basis, plus a 'total' line per currency.

    Why: a report's savings sentence must quote a table the reader can see; the detail can run to hundreds of
    rows, this summary cannot. ``on_demand_cost`` and ``saving`` cover re-priced hours only; ``not_repriced_cost``
    is the on-demand cost without hours that stays where it is.
    """
    cols = ["on_demand_cost", "not_repriced_cost", "on_demand_hours", "spot_priced_cost", "saving"]
    if what_if.empty:
        return pd.DataFrame(columns=["currency", "basis", "lines", *cols])
    g = (what_if.groupby(["currency", "basis"], as_index=False)
         .agg(lines=("basis", "size"), **{c: (c, lambda x: x.dropna().sum()) for c in cols}))
    tot = (g.groupby("currency", as_index=False).agg(lines=("lines", "sum"), **{c: (c, "sum") for c in cols})
           .assign(basis="total"))
    return pd.concat([g, tot], ignore_index=True)[["currency", "basis", "lines", *cols]]


#: The what-if bases whose spot rate is an assumption, not a price (the words a summary action carries).
ASSUMED_BASES = {"flat": "assumed flat {discount:.0%} spot discount (flat_spot_discount): no observed or Advisor "
                         "price for it"}
#: Added to the note of a row whose operating system the bill does not give (:func:`what_if_actions`).
UNKNOWN_OS_NOTE = "; the bill names no operating system for it, so no spot rate of another row is borrowed"


def what_if_os_note(what_if: pd.DataFrame) -> str:
    """One sentence on the on-demand hours of :func:`spot_what_if` whose operating system the bill does not give
    ('' when there are none): how many, and on which bases they were priced.

    Why: such hours take no other row's observed spot rate (an Azure Windows VM used to take a Linux spot VM's);
    the reader should know that their figures rest on the flat discount or a same-code rate, and why.
    """
    if what_if is None or what_if.empty or "operating_system" not in what_if:
        return ""
    unknown = what_if[what_if["operating_system"].astype(str).str.startswith(UNKNOWN_OS)
                      & ~what_if["basis"].isin(["no hours", "no spot market"])]
    if unknown.empty:
        return ""
    hours = float(unknown["on_demand_hours"].fillna(0).sum())
    bases = "; ".join(f"{float(h):,.0f} h on basis '{b}'" for b, h in
                      unknown.groupby("basis")["on_demand_hours"].sum().sort_index().items())
    return (f"{hours:,.0f} on-demand hours ({len(unknown)} line(s)) have no operating system in the bill "
            f"('{UNKNOWN_OS}': SageMaker, AWS operation codes data/ec2_usage_operations.csv does not list, "
            f"providers data/vm_operating_systems.csv has no rule for). They borrow no spot rate of another row "
            f"unless it has the same AWS operation code (a Windows hour must not take a Linux spot rate): {bases}.")


def what_if_actions(what_if: pd.DataFrame, assumptions: WhatIfAssumptions | None = None, *,
                    since: Any = None) -> pd.DataFrame:
    """The rows of :func:`spot_what_if` as summary actions: ``assumed`` is true where the spot rate is an
    assumption (:data:`ASSUMED_BASES`: basis 'flat'), ``price_note`` says which (empty elsewhere);
    ``monthly_saving`` is the line's saving per month and ``span_note`` says what it was divided from.

    Why assumed: the demo's summary listed "$108,607 over the scope · Run the on-demand Standard_ND96isr_H100_v5
    hours in eastus on spot" beside observed and Advisor-priced rows, while its rate was on-demand x (1 - 0.55), a
    typed parameter; such a row now says so (:class:`finops_kit.summary.Action`).

    Why per month: every other report's summary action is a saving per month (a schedule, a commitment, a lifecycle
    rule) and the block ranks savings by dollars; spot's "$138,158 over the scope" (14 billing periods, one open)
    sat beside "$7,984 per month" and ranked a backlog about 14x too high (review s17 prose, finding 4). The line's
    saving over the scope is divided by the months its re-priced on-demand hours span (``span_days`` of
    :func:`spot_what_if`, :func:`finops_kit.summary.per_month`: at least one month, a short burst is never
    extrapolated to a month); ``span_note`` names the days. ``since`` (a date, or the summary's period: anything
    with a ``start``): a line whose on-demand hours ended before it has no ``monthly_saving`` -- usage that stopped
    is history, not an action (the demo's p5.48xlarge line, 6 Apr to 12 Jun 2026, read "$11,688 per month" in an
    Oct 2026 summary), as :func:`finops_kit.summary.add_anomaly_actions` leaves out old spikes."""
    from .notebook import money
    from .summary import months_of_span, per_month

    a = assumptions or WhatIfAssumptions()
    if what_if is None or what_if.empty:
        return pd.DataFrame(columns=[*(what_if.columns if what_if is not None else []), "assumed", "price_note",
                                     "months", "monthly_saving", "span_note"])
    assumed = what_if["basis"].isin(list(ASSUMED_BASES))
    unknown = (what_if["operating_system"].astype(str).str.startswith(UNKNOWN_OS)
               if "operating_system" in what_if else pd.Series(False, index=what_if.index))
    notes = [ASSUMED_BASES[b].format(discount=a.flat_discount) + (UNKNOWN_OS_NOTE if u else "")
             if b in ASSUMED_BASES else "" for b, u in zip(what_if["basis"], unknown, strict=True)]
    span = what_if["span_days"] if "span_days" in what_if else pd.Series(None, index=what_if.index, dtype=float)
    months = [months_of_span(d) for d in span]
    monthly = [per_month(v, d) for v, d in zip(what_if["saving"], span, strict=True)]
    since = getattr(since, "start", since)
    if since is not None and "last_day" in what_if:
        monthly = [None if t is None or t != t or pd.Timestamp(t).date() < since else m
                   for m, t in zip(monthly, what_if["last_day"], strict=True)]
    cur = what_if["currency"] if "currency" in what_if else pd.Series("USD", index=what_if.index)
    first = what_if["first_day"] if "first_day" in what_if else pd.Series(None, index=what_if.index)
    last = what_if["last_day"] if "last_day" in what_if else pd.Series(None, index=what_if.index)
    span_notes = ["" if m is None or v is None or v != v else
                  f"{money(v, c or 'USD', places=0)} over the {m:,.1f} months of its on-demand hours"
                  + (f", {pd.Timestamp(f):%-d %b %Y} to {pd.Timestamp(t):%-d %b %Y}" if f is not None and f == f
                     and t is not None and t == t else "")
                  for v, m, c, f, t in zip(what_if["saving"], months, cur, first, last, strict=True)]
    return what_if.assign(assumed=assumed, price_note=notes, months=months, monthly_saving=monthly,
                          span_note=span_notes)


def scenario_context(con: duckdb.DuckDBPyConnection, instance_type: str, region: str,
                     price_window: tuple[Any, Any] | None = None, *, scope: Any = None) -> list[str]:
    """Sentences that place the planned job of a savings report against the bill in scope.

    The savings report prices a job described by parameters (instance type, region, GPU-hours, nodes) at a spot
    price from a cache: a scenario, the same on any bill. These sentences say so, and what the bill holds: no
    accelerated compute at all, or not this instance type in this region (then the bill's accelerated instance
    type with the most cost), or its hours of it; and whether the spot prices' window (``price_window``: first and
    last day, None when no cached price was used) overlaps the bill's charge days.

    Why: the FOCUS sample (Sep 2024, no accelerated compute) read "Expected: Reduced training costs by 67%" from
    the demo's p4d.24xlarge and its synthetic price cache of 2026-08-29..2026-11-27, as if achieved on that bill.
    """
    sc = _scope(con, scope, None, None)
    first, last = con.execute(f"SELECT min(CAST(ChargePeriodStart AS DATE)), max(CAST(ChargePeriodStart AS DATE)) "
                              f"FROM {sc.rows_sql()}").fetchall()[0]
    out = [f"This is a scenario, not a saving measured on the bill: the job (its work, nodes, checkpoint and "
           f"restart times), the instance type {instance_type} in {region} and the spot price come from the "
           f"report's parameters, and it reads the same on any bill."]
    if first is None:
        out.append("The scope has no charges.")
        return out
    bill = f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
    df = _relation(con, f"""
        SELECT instance_type, region, sum(EffectiveCost) AS cost, sum(hours) AS hours,
               sum(hours) FILTER (WHERE pricing = 'On-demand') AS od_hours
        FROM ({accelerated_usage_sql(sc)}) GROUP BY ALL
        ORDER BY cost DESC, instance_type, region""").df()
    if df.empty:
        out.append(f"The bill in scope ({bill}) has no accelerated compute: nothing in it runs this job.")
    else:
        mine = df[(df["instance_type"] == instance_type) & (df["region"] == region)]
        hours = float(mine["hours"].fillna(0).sum()) if len(mine) else 0.0
        if not hours:
            top = df.iloc[0]
            out.append(f"The bill in scope ({bill}) has no {instance_type} hours in {region}; its accelerated "
                       f"compute with the most cost is {top['instance_type']} in {top['region']}.")
        else:
            od = float(mine["od_hours"].fillna(0).sum())
            out.append(f"The bill in scope ({bill}) has {hours:,.0f} hours of {instance_type} in {region}, "
                       f"{od:,.0f} of them on demand.")
    if price_window is None:
        out.append("No cached spot price was used.")
        return out
    ps, pe = (pd.Timestamp(d).date() for d in price_window)
    prices = f"{ps:%Y-%m-%d}..{pe:%Y-%m-%d}"
    if pe < first or ps > last:
        out.append(f"The spot prices ({prices}) and the bill ({bill}) do not overlap: they are not the prices the "
                   "bill's usage met.")
    elif ps <= first and pe >= last:
        out.append(f"The spot prices ({prices}) cover the bill's days ({bill}).")
    else:
        days = (min(pe, last) - max(ps, first)).days + 1
        out.append(f"The spot prices ({prices}) cover {days:,} of the bill's days ({bill}).")
    return out
