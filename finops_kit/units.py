"""Usage units: the one place that says how many instance-hours, accelerator-hours, vCPU-hours, GB-months and GB
transferred a FOCUS row stands for.

Why one module: providers bill compute in different shapes, and every analysis that counts "GPU hours" on its own
gets a different answer. AWS bills an instance-hour per row (``BoxUsage:p4d.24xlarge``, 1 h = 8 A100-hours).
GCP bills a VM as separate SKUs in seconds: ``A2 Instance Core`` (vCPU-seconds), ``A2 Instance Ram``
(byte-seconds) and ``Nvidia Tesla A100 GPU`` (GPU-seconds); summing their seconds as "hours" counts an
a2-highgpu-8g hour 104 times. Azure bills a VM meter per hour and an unused reservation as a row without usage.
The rules live in reviewed tables, not in code:

* ``data/usage_units.csv`` — what a row's time quantity counts (role: instance, accelerator, vcpu, memory,
  license, none), per provider, from its SKU / usage type;
* ``data/ec2_accelerated_instances.csv`` (AWS) and ``data/machine_types.csv`` (GCP, Azure) — accelerators and
  vCPUs per instance type;
* ``data/hour_units.csv`` — which ConsumedUnit spellings measure time, and how many hours one unit is;
* ``data/storage_units.csv`` — volume units (GB-months, GB, request counts).

Rules (the answer every report gives):

* Only ``ChargeCategory = 'Usage'`` rows that are not unused commitments have hours. Reservation and savings-plan
  fees, purchases, credits, unused reservations, RAM and licence lines never count as hours of any kind. An unused
  commitment is the pricing class 'Unused commitment' in the family its commitment covered
  (:func:`accelerated_usage_sql`), so every family's rows add up to the accelerated cost.
* instance-hours: an ``instance`` row's hours; a GCP ``accelerator`` row's accelerator-hours / the machine type's
  accelerators (a2-highgpu-8g: GPU-hours / 8); a GCP ``vcpu`` row's vCPU-hours / the machine type's vCPUs, only for
  machine types without built-in accelerators (N1 VMs with attached GPUs). Never vCPU or RAM seconds as such.
* accelerator-hours (GPU, TPU chip, Trainium, Inferentia): an ``instance`` row's hours x accelerators per instance;
  an ``accelerator`` row's hours.
* vCPU-hours: an ``instance`` row's hours x vCPUs per instance; a ``vcpu`` row's hours.
* An instance's cost is all of its compute rows: GCP's vCPU, RAM, GPU and licence rows and the credits billed
  against them (rows of one resource and charge period), not the data transfer or storage billed on its id. Its pricing class (Spot / On-demand / Committed) is that of its
  accelerator row (else its instance or vCPU row; of several, the costliest), so a VM whose GPUs run under a committed-use discount is one
  committed instance, not a committed GPU plus an on-demand VM without hours.

A SageMaker ML instance (an instance type that starts with ``ml.``, :data:`SAGEMAKER_TYPE_PREFIX`: the one
place that rule is written, read through :func:`is_sagemaker_type` and :func:`sagemaker_type_sql`) has the
accelerators and vCPUs of its EC2 type and the family ``ml.p4d`` (:data:`_SAGEMAKER_FAMILY`); its GPUs are
accelerated compute as Azure ML's and Vertex AI's are, and only SageMaker Savings Plans cover it
(:func:`commitment_platform`).

Instance types missing from the catalog still get instance-hours from ``instance`` rows; their accelerator-hours and
vCPU-hours are NULL (unknown) until a row is added to the catalog table. Unknown stays unknown in every report: such
a row is flagged (``accelerator_hours_unknown``, ``instance_hours_unknown``: a GCP GPU or TPU row whose machine type
the catalog does not know has accelerator-hours but no instance-hours), a total says how much cost has unknown hours
(:func:`unknown_cost`), a total of nothing but unknown hours is NULL, not 0 (:func:`known_total`), a rate per hour
never divides the cost of such rows by the other rows' hours (:func:`rate_sql`), and :func:`unknown_types_sql` lists
the types. Why: ``coalesce(total(accelerator_hours), 0)`` showed a g6f.2xlarge day (USD 30) as 0 GPU-hours, and a
training run's cost per GPU-hour divided its USD 30 by the p4d's hours (4.30 instead of 4.14).

Only accelerated compute (:func:`accelerated_row_sql`, the one AI classification) can have unknown
accelerator-hours: the AWS catalog lists accelerated types only, so an instance of a type it lacks that the
classification does not call accelerated (an m5.xlarge head node, an Azure D-series VM, a SageMaker ml.m5) has no
GPU -- none of its cost is "cost with unknown GPU-hours". Why: flagged by the catalog alone, a training run's CPU
instance (m5.xlarge, USD 4.608) was counted as unknown accelerator cost and left out of the run's cost per GPU-hour
(4.1431 instead of 4.1671), with no type listed as missing.

A fraction of a GPU counts as that fraction: the catalog's ``accelerators`` of a g6f.2xlarge (a quarter of an L4) is
0.25, so its hour is 0.25 L4 GPU-hours and its rate per GPU-hour the price of a whole L4's worth, comparable with a
g6's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from .datafiles import data_rows
from .sources.base import ident, sql_str
from .sqlutil import derive_once, money_times_sql
from .warehouse import FOCUS_TABLE

#: Roles of data/usage_units.csv, and the order in which a resource's rows decide its pricing class.
ROLES = ("accelerator", "instance", "vcpu", "memory", "license", "none")

#: The pricing class of capacity reserved and not used (:data:`UNUSED_CAPACITY_SQL`).
UNUSED_CAPACITY = "Unused capacity reservation"
#: The family of an unused commitment row whose commitment covered nothing in the rows read and whose own type
#: names no family (:func:`accelerated_usage_sql`).
NO_INSTANCE_TYPE = "(no instance type)"
#: The pricing class of a commitment's unused part (``CommitmentDiscountStatus = 'Unused'``: an AWS reservation's
#: unused hours, an Azure ``UnusedReservation`` row, a GCP CUD's unused GPU-hours). Such a row has no hours of any
#: kind and is in the family its commitment covered (:func:`accelerated_usage_sql`). Why a class of its own: it was
#: 'Committed' spend with 0 hours (GCP's unused A100 CUD a family 'a100' of its own, USD 14,448.42 at 0 hours on the
#: demo) or, without a VM size (Azure), in no family, so the families did not add up to the accelerated cost.
UNUSED_COMMITMENT = "Unused commitment"
#: Pricing class of a row: 'Unused capacity reservation' (:data:`UNUSED_CAPACITY_SQL`), 'Unused commitment'
#: (:data:`UNUSED_COMMITMENT`), 'Spot' = PricingCategory Dynamic (or an AWS SpotUsage usage type), 'Committed' =
#: Committed or a commitment discount, 'On-demand' = Standard.
_PRICING = """CASE
  WHEN {unused_capacity} THEN 'Unused capacity reservation'
  WHEN coalesce(CommitmentDiscountStatus, '') = 'Unused' THEN 'Unused commitment'
  WHEN PricingCategory = 'Dynamic' OR {spot_usage_type} THEN 'Spot'
  WHEN PricingCategory = 'Committed' OR CommitmentDiscountId IS NOT NULL THEN 'Committed'
  WHEN PricingCategory = 'Standard' THEN 'On-demand'
  ELSE coalesce(PricingCategory, '(none)') END"""
#: An AWS spot usage type (``USE1-SpotUsage:p4d.24xlarge``).
SPOT_USAGE_TYPE_SQL = "regexp_matches(coalesce(x_UsageType, ''), '(?i)SpotUsage')"
#: An AWS usage type of an On-Demand Capacity Reservation's unused capacity (``UnusedBox:p5.48xlarge``,
#: ``USE1-UnusedDed:p4d.24xlarge``).
UNUSED_CAPACITY_USAGE_TYPE_SQL = "regexp_matches(coalesce(x_UsageType, ''), '(?i)(^|[-:])Unused(Box|Ded):')"
#: Whether a row is reserved capacity that sat unused: FOCUS ``CapacityReservationStatus = 'Unused'`` (the AWS
#: source sets it from the usage type; an AWS FOCUS export has it), or such a usage type. Why a class of its own:
#: an unused On-Demand Capacity Reservation (p5.48xlarge, 4 h, USD 393.36) was 'On-demand' spend with 0 hours,
#: which the commitment and spot what-ifs read as on-demand demand; it is idle capacity, beside unused commitments.
UNUSED_CAPACITY_SQL = "(coalesce(CapacityReservationStatus, '') = 'Unused' OR {unused_capacity_usage_type})"
PRICING_SQL = _PRICING.format(
    spot_usage_type=SPOT_USAGE_TYPE_SQL,
    unused_capacity=UNUSED_CAPACITY_SQL.format(unused_capacity_usage_type=UNUSED_CAPACITY_USAGE_TYPE_SQL))

#: The measures :func:`row_sql` adds to a row (all DOUBLE; NULL = the row does not measure it).
MEASURES = ("instance_hours", "accelerator_hours", "vcpu_hours")


# ------------------------------------------------------------------------------------------------ tables
@cache
def usage_rules() -> tuple[dict[str, str], ...]:
    """The rows of ``data/usage_units.csv`` (first match wins)."""
    rules = tuple(data_rows("usage_units.csv"))
    for r in rules:
        if r["role"] not in ROLES:
            raise ValueError(f"data/usage_units.csv: unknown role {r['role']!r}; expected one of {ROLES}")
    return rules


@cache
def instance_types() -> tuple[dict[str, object], ...]:
    """Accelerators, accelerator model and vCPUs per instance type, all providers (AWS table + GCP/Azure table)."""
    out: list[dict[str, object]] = []
    for r in data_rows("ec2_accelerated_instances.csv"):
        out.append({"provider": "AWS", "instance_type": r["instance_type"], "family": r["family"],
                    "accelerators": accelerator_count(r["accelerators"]), "accelerator": r["accelerator"],
                    "vcpus": int(r["vcpus"])})
    for r in data_rows("machine_types.csv"):
        out.append({"provider": r["provider"], "instance_type": r["instance_type"], "family": r["family"],
                    "accelerators": accelerator_count(r["accelerators"]), "accelerator": r["accelerator"] or None,
                    "vcpus": int(r["vcpus"])})
    return tuple(out)


def accelerator_count(text: str) -> int | float:
    """The ``accelerators`` of a catalog row: a whole number, or the fraction of one accelerator an instance has
    (``0.25``: a g6f.2xlarge's quarter of an L4; see the module doc for how a fraction counts)."""
    n = float(text)
    if n < 0:
        raise ValueError(f"instance catalog: accelerators {text!r} is negative")
    return int(n) if n == int(n) else n


@cache
def hour_units() -> tuple[tuple[str, float], ...]:
    """(unit spelling in lower case, hours per unit) of ``data/hour_units.csv``."""
    return tuple((r["unit"].strip().lower(), float(r["hours_per_unit"])) for r in data_rows("hour_units.csv"))


# ------------------------------------------------------------------------------------------- expressions
def hours_per_unit_sql(unit: str = "ConsumedUnit") -> str:
    """SQL: how many hours one ``unit`` is (NULL when the unit does not measure time)."""
    whens = " ".join(f"WHEN {sql_str(u)} THEN {h!r}" for u, h in hour_units())
    return f"(CASE lower(trim(coalesce({unit}, ''))) {whens} ELSE NULL END)"


def _provider_case(rows: Sequence[dict[str, str]], then: str) -> str:
    whens = []
    for r in rows:
        col = f"coalesce(CAST({ident(r['column'])} AS VARCHAR), '')"
        cond = f"regexp_matches({col}, {sql_str(r['pattern'])})"
        if r["provider_pattern"].strip() not in ("", ".*", "(?i).*"):
            cond = f"regexp_matches(coalesce(ProviderName, ''), {sql_str(r['provider_pattern'])}) AND {cond}"
        if r["column"] not in ("x_InstanceType",):
            cond = f"{ident(r['column'])} IS NOT NULL AND {cond}"
        whens.append(f"WHEN {cond} THEN {then.format(**r)}")
    return "CASE " + " ".join(whens) + " END" if whens else "CAST(NULL AS VARCHAR)"


def no_spot_market_sql() -> str:
    """SQL: whether a row is usage that has no spot market (``data/no_spot_market.csv``: SageMaker endpoints,
    notebooks, processing and batch transform; only SageMaker training has managed spot)."""
    conds = []
    for r in data_rows("no_spot_market.csv"):
        cond = f"regexp_matches(coalesce(CAST({r['column']} AS VARCHAR), ''), {sql_str(r['pattern'])})"
        if r["provider_pattern"].strip() not in ("", ".*", "(?i).*"):
            cond = f"regexp_matches(coalesce(ProviderName, ''), {sql_str(r['provider_pattern'])}) AND {cond}"
        conds.append(f"({cond})")
    return "(" + (" OR ".join(conds) or "FALSE") + ")"


def spot_eligible_sql(pricing: str = "pricing") -> str:
    """SQL: whether a row's hours are hours that could run on spot -- the denominator of every spot share: usage
    with a spot market (``spot_market``, :func:`row_sql`) and whatever ran on spot. ``pricing``: the column of
    the row's pricing class (``_row_pricing`` over :func:`row_sql` rows).

    Why: a SageMaker endpoint or notebook has no spot market (``data/no_spot_market.csv``); counted in the
    denominator, its hours diluted the spot share of every report, and a team running endpoints beside spot
    training could never reach 100%. The spot what-if already kept those hours at on-demand; the share now
    divides by the same hours the what-if could move. (A row billed at spot had a market whatever the table says,
    so a share is never above 1.)"""
    return f"(spot_market OR {pricing} = 'Spot')"


def spot_share_sql(measure: str, pricing: str = "pricing", *, money: bool = False) -> str:
    """SQL aggregate: the spot share of ``measure`` (``accelerator_hours``, ``instance_hours``; weighted as
    ``accelerator_hours * w``; ``EffectiveCost`` with ``money``: summed as the exact decimal it is, not by
    :func:`total`): spot / the part that could run on spot (:func:`spot_eligible_sql`), NULL when nothing could.
    The one definition of "spot share" in the kit (metrics, summary, spot coverage, ``fk.costs``, the tagging
    audit's families, training runs, the guardrails' non-production check)."""
    def part(where: str) -> str:
        return f"sum({measure}) FILTER (WHERE {where})" if money else total(measure, where)

    spot = f"{pricing} = 'Spot'"
    return f"(coalesce({part(spot)}, 0) / nullif({part(spot_eligible_sql(pricing))}, 0))"


def no_spot_market_total(measure: str, pricing: str = "pricing", *, money: bool = False) -> str:
    """SQL aggregate: the part of ``measure`` that could not run on spot (:func:`spot_eligible_sql` false), which
    a table that reports hours beside a spot share shows apart; 0 when none. ``money``: ``EffectiveCost`` summed as
    the exact decimal it is (as :func:`spot_share_sql`), not by :func:`total`."""
    where = f"NOT {spot_eligible_sql(pricing)}"
    return f"coalesce({f'sum({measure}) FILTER (WHERE {where})' if money else total(measure, where)}, 0)"


def role_sql() -> str:
    """SQL: the ``role`` of ``data/usage_units.csv`` that a row's time quantity counts as (NULL: no rule)."""
    return _provider_case(usage_rules(), "'{role}'")


def instance_type_sql(provider: str | None = None) -> str:
    """SQL: the row's instance / machine type: x_InstanceType, else read from the usage type / SKU by the
    ``instance_type_pattern`` of a ``data/usage_units.csv`` rule of the row's provider.

    Why the usage type: an AWS Data Exports FOCUS file has no instance type column; the type is only in
    x_UsageType (``USE1-SpotUsage:g5.xlarge``, ``USE1-BoxUsage:p4d.24xlarge``). Without reading it every AWS type
    of such a bill was '(no instance type)': no accelerator-hours (spot share NaN), and the spot what-if priced
    p4d hours at a g5 spot rate. The AI classifier reads the type through this same expression
    (:func:`finops_kit.classify.ai_workload_case`), so "which type is this row" has one answer. ``provider``: the
    one ProviderName every row has (a source of one provider): its rules' provider tests are decided here, once.
    """
    from .classify import _provider_matches

    whens = []
    for r in usage_rules():
        if not r["instance_type_pattern"]:
            continue
        cond = ""
        if r["provider_pattern"].strip() in ("", ".*", "(?i).*"):
            pass
        elif provider is not None:
            if not _provider_matches(provider, r["provider_pattern"]):
                continue
        else:
            cond = f"regexp_matches(coalesce(ProviderName, ''), {sql_str(r['provider_pattern'])})"
        got = (f"nullif(regexp_extract(coalesce(CAST({ident(r['column'])} AS VARCHAR), ''), "
               f"{sql_str(r['instance_type_pattern'])}, 1), '')")
        whens.append(f"CASE WHEN {cond} THEN {got} END" if cond else got)
    return f"coalesce(nullif(trim(x_InstanceType), ''), {', '.join(whens) or 'NULL'})"


#: The prefix of a SageMaker ML instance type (``ml.p4d.24xlarge``, ``ml.m5.xlarge``), in lower case: "an instance
#: type that starts with ``ml.`` is a SageMaker ML instance" is written here only. Every reading of the rule derives
#: from it: :func:`is_sagemaker_type` (Python), :func:`sagemaker_type_sql` (SQL over a type),
#: :func:`sagemaker_row_sql` (SQL over a row: its x_InstanceType or its usage type), the catalog key that drops it
#: (:func:`type_key`), the family that keeps it (:data:`_SAGEMAKER_FAMILY`) and :func:`commitment_platform`.
#: Why one constant: the rule was spelled in three modules (the family's SQL, the commitment platform's Python,
#: the ingest's classing of a SageMaker row), and a change to one (AWS names a new ML platform's types) would
#: leave the others deciding differently which rows SageMaker commitments can cover.
SAGEMAKER_TYPE_PREFIX = "ml."
#: The same prefix as a regex fragment (``ml\.``), for the patterns that drop it.
_SAGEMAKER_PREFIX_RE = re.escape(SAGEMAKER_TYPE_PREFIX)


def is_sagemaker_type(name: object) -> bool:
    """Whether an instance type (or family: ``ml.p4d``) is a SageMaker ML instance's, case-insensitive; False for
    anything that is not a string (no type)."""
    return isinstance(name, str) and name.lower().startswith(SAGEMAKER_TYPE_PREFIX)


def sagemaker_type_sql(expr: str) -> str:
    """SQL of :func:`is_sagemaker_type` over the VARCHAR expression ``expr`` (NULL when ``expr`` is NULL)."""
    return f"starts_with(lower({expr}), {sql_str(SAGEMAKER_TYPE_PREFIX)})"


def sagemaker_row_sql(alias: str | None = None) -> str:
    """SQL: whether a FOCUS row (of table ``alias``) bills a SageMaker ML instance: its ``x_InstanceType`` is a
    SageMaker type (:func:`sagemaker_type_sql`), or its AWS usage type names one after the colon
    (``USE1-Host:ml.m5.xlarge``: an AWS FOCUS export has no instance type column). Never NULL.

    The usage type is read with any operation before the colon, not only those :func:`instance_type_sql` reads a
    type from (``data/usage_units.csv``): a row that names an ``ml.`` type is a SageMaker instance row whether or not
    the kit counts its hours."""
    a = alias + "." if alias else ""
    return (f"(coalesce({sagemaker_type_sql(a + 'x_InstanceType')}, FALSE) "
            f"OR contains(coalesce(lower({a}x_UsageType), ''), {sql_str(':' + SAGEMAKER_TYPE_PREFIX)}))")


def type_key(name: str) -> str:
    """How an instance type is looked up in the catalog: lower case, without Azure's ``Standard_`` or SageMaker's
    ``ml.`` prefix (:data:`SAGEMAKER_TYPE_PREFIX`) and without spaces or underscores, so
    ``Standard_NC24ads_A100_v4`` (VM size), ``NC24ads A100 v4`` (Azure meter name) and ``ml.p4d.24xlarge`` find
    their row."""
    return re.sub(r"[^a-z0-9.\-]", "", re.sub(f"^(standard_|{_SAGEMAKER_PREFIX_RE})", "", name.strip().lower()))


def type_key_sql(expr: str) -> str:
    """SQL of :func:`type_key`."""
    return (f"regexp_replace(regexp_replace(lower(trim({expr})), {sql_str(f'^(standard_|{_SAGEMAKER_PREFIX_RE})')}, "
            f"''), '[^a-z0-9.\\-]', '', 'g')")


@cache
def catalog_values() -> str:
    """The instance catalog as a ``(VALUES ...) AS _cat(...)`` relation, keyed by :func:`type_key`."""
    seen: dict[str, dict[str, object]] = {}
    for r in instance_types():
        seen.setdefault(type_key(str(r["instance_type"])), r)
    lit = lambda v: "NULL" if v is None else str(v) if isinstance(v, int) else sql_str(str(v))  # noqa: E731
    # accelerators as DOUBLE: a fraction (0.25) and whole numbers in one column, never a DECIMAL
    body = ", ".join(f"({sql_str(k)}, {lit(r['family'])}, CAST({r['accelerators']!r} AS DOUBLE), "
                     f"{lit(r['accelerator'])}, "
                     f"{lit(r['vcpus'])})" for k, r in seen.items())
    return f"(VALUES {body}) AS _cat(_c_type, _c_family, _c_accelerators, _c_accelerator, _c_vcpus)"


#: The family of an instance type the catalog does not know: p4d.24xlarge -> p4d, a2-highgpu-8g -> a2-highgpu,
#: standard_nc24ads_a100_v4 -> NC-series (types are lower case here; a SageMaker type's ``ml.`` is added back by
#: :data:`_SAGEMAKER_FAMILY`). A GCP GPU read from its SKU because the row has no machine type (an export without
#: the ``machine_spec`` label, Vertex AI GPUs) is its GPU model: nvidia-tesla-a100 -> nvidia-a100, nvidia-tesla-t4
#: -> nvidia-t4, nvidia-a100-80gb stays (GCP prices and commits GPUs per model); a Cloud TPU its version (tpu-v5e).
#: Why: the type-prefix rule pooled A100, T4, V100, P100, P4 and K80 into 'nvidia-tesla' at one blended rate
#: (review fixture: $2.35 per GPU-hour for an A100 at $3.31 and a T4 at $0.41).
_FALLBACK_FAMILY = """CASE
  WHEN {t} IS NULL THEN NULL
  WHEN starts_with({t}, 'nvidia-') THEN regexp_replace({t}, '^nvidia-tesla-', 'nvidia-')
  WHEN contains({t}, '.') THEN split_part(regexp_replace({t}, '^{sagemaker}', ''), '.', 1)
  WHEN regexp_matches({t}, '^standard_') THEN
       upper(regexp_extract(regexp_replace({t}, '^standard_', ''), '^([a-z]+)[0-9]', 1)) || '-series'
  WHEN contains({t}, '-') THEN split_part({t}, '-', 1) || coalesce('-' || nullif(split_part({t}, '-', 2), ''), '')
  ELSE {t} END"""

#: The family of a SageMaker ML instance is its EC2 family with ``ml.``: ml.p4d.24xlarge -> ml.p4d (the catalog
#: gives its accelerators under the EC2 name). Why apart from EC2's p4d: EC2 reservations and Compute or EC2
#: Instance Savings Plans never apply to SageMaker, and a SageMaker Savings Plan never to EC2, so a family is what
#: one commitment can cover. Pooled, the SageMaker plan that covers ml.g5.2xlarge endpoints became the realized
#: "Savings Plan on g5" discount offered for EC2 g5 instances.
_SAGEMAKER_FAMILY = ("CASE WHEN " + sagemaker_type_sql("{t}") + f" THEN {sql_str(SAGEMAKER_TYPE_PREFIX)} ELSE '' END"
                     " || {family}")


#: The commitment platforms of :func:`commitment_platform`.
SAGEMAKER_PLATFORM, INSTANCES_PLATFORM = "SageMaker", "instances"


def commitment_platform(family: object) -> str:
    """What commitments can cover an instance family: ``"SageMaker"`` for a SageMaker family (``ml.p4d``, see
    :data:`_SAGEMAKER_FAMILY`: only SageMaker Savings Plans), else ``"instances"`` (EC2 reservations and Compute /
    EC2 Instance Savings Plans, other providers' reservations and CUDs). None (no family) is ``"instances"``."""
    return SAGEMAKER_PLATFORM if is_sagemaker_type(family) else INSTANCES_PLATFORM


def commitment_platform_sql(family: str) -> str:
    """SQL of :func:`commitment_platform` over the family expression ``family``."""
    return (f"CASE WHEN {sagemaker_type_sql(family)} THEN {sql_str(SAGEMAKER_PLATFORM)} "
            f"ELSE {sql_str(INSTANCES_PLATFORM)} END")


def row_sql(where: str = "TRUE", source: str = FOCUS_TABLE) -> str:
    """SQL: every column of the ``source`` rows matching ``where``, plus the row's usage measures.

    Added columns: ``instance_hours``, ``accelerator_hours``, ``vcpu_hours`` (DOUBLE, NULL = not measured or
    unknown), ``accelerator_hours_unknown`` (BOOLEAN: an instance row of accelerated compute,
    :func:`accelerated_row_sql`, whose type the catalog does not know: it ran, its accelerator-hours are unknown),
    ``instance_hours_unknown`` (a GCP accelerator or vCPU row whose machine type
    the catalog does not know: its instance-hours are unknown),
    ``accelerators_per_instance``, ``accelerator`` (model), ``instance_family``, ``spot_market`` (BOOLEAN: false for
    usage that has no spot market, :func:`no_spot_market_sql`), and the internals ``_unit_role``,
    ``_instance_type``, ``_hours`` (the row's time quantity in hours) and ``_row_pricing`` (its pricing class).
    ``source`` is the FOCUS table or a FROM item over it (e.g. :meth:`finops_kit.scope.Scope.rows_sql`, whose
    ``_rowid`` and converted money then pass through).
    """
    # the unit rules, the catalog key, the hours per unit and the spot usage type read these few columns only:
    # evaluated once per distinct combination of them, not per row
    base = ["ProviderName", "x_InstanceType", "x_UsageType", "ConsumedUnit"]
    keys = [*base, *sorted({r["column"] for r in [*usage_rules(), *data_rows("no_spot_market.csv")]} - set(base))]
    by_type = {"_unit_role": role_sql(), "_instance_type": instance_type_sql(),
               "_type_key": type_key_sql(instance_type_sql()), "_hours_per_unit": hours_per_unit_sql(),
               "_spot_usage_type": SPOT_USAGE_TYPE_SQL, "_unused_capacity_usage_type": UNUSED_CAPACITY_USAGE_TYPE_SQL,
               "_no_spot_market": no_spot_market_sql()}
    hours = ("CASE WHEN ChargeCategory = 'Usage' AND coalesce(CommitmentDiscountStatus, '') <> 'Unused' "
             "THEN CAST(ConsumedQuantity AS DOUBLE) * _hours_per_unit END")
    fallback = _FALLBACK_FAMILY.format(t="lower(_instance_type)", sagemaker=_SAGEMAKER_PREFIX_RE)
    family = _SAGEMAKER_FAMILY.format(t="_instance_type", family=f"coalesce(_c_family, {fallback})")
    return f"""
      SELECT _r.* EXCLUDE (_c_type, _c_family, _c_accelerators, _c_accelerator, _c_vcpus),
        CASE WHEN _unit_role = 'instance' THEN _hours
             WHEN _unit_role = 'accelerator' AND _c_accelerators > 0 THEN _hours / _c_accelerators
             WHEN _unit_role = 'vcpu' AND _c_accelerators = 0 AND _c_vcpus > 0 THEN _hours / _c_vcpus
        END AS instance_hours,
        CASE WHEN _unit_role = 'instance' THEN _hours * _c_accelerators
             WHEN _unit_role = 'accelerator' THEN _hours END AS accelerator_hours,
        CASE WHEN _unit_role = 'instance' THEN _hours * _c_vcpus
             WHEN _unit_role = 'vcpu' THEN _hours END AS vcpu_hours,
        coalesce(_unit_role = 'instance' AND _hours IS NOT NULL AND _c_accelerators IS NULL
                 AND {accelerated_row_sql()}, FALSE) AS accelerator_hours_unknown,
        coalesce(_hours IS NOT NULL AND ((_unit_role = 'accelerator' AND _c_accelerators IS NULL)
                                         OR (_unit_role = 'vcpu' AND _c_vcpus IS NULL)), FALSE)
          AS instance_hours_unknown,
        _c_accelerators AS accelerators_per_instance, _c_accelerator AS accelerator,
        {family} AS instance_family
      FROM (SELECT _s.* EXCLUDE (_type_key, _hours_per_unit, _spot_usage_type, _unused_capacity_usage_type,
                                 _no_spot_market),
                   NOT coalesce(_s._no_spot_market, FALSE) AS spot_market, _cat.*
            FROM (SELECT *, {hours} AS _hours, {_PRICING.format(spot_usage_type="_spot_usage_type", unused_capacity=UNUSED_CAPACITY_SQL.format(
                      unused_capacity_usage_type="_unused_capacity_usage_type"))} AS _row_pricing
                  FROM {derive_once(f"(SELECT * FROM {source} WHERE {where})", keys, by_type)}) _s
            LEFT JOIN {catalog_values()} ON _cat._c_type = _s._type_key) _r"""


#: One instance: a resource's rows of one charge period (a GCP VM's vCPU, RAM, GPU and licence SKUs of a day). The
#: one grouping of :func:`accelerated_usage_sql`, of the ingest's classing of an instance's other rows
#: (:func:`finops_kit.classify.complete_accelerated_instances`) and of the Spark metrics reduction.
INSTANCE_KEY = ("ProviderName", "ResourceId", "ChargePeriodStart")


def resource_key_sql(expr: str = "ResourceId") -> str:
    """SQL: the key by which rows of one resource are grouped in per-resource tables (idle GPUs, always-on
    accelerators): the ResourceId without case.

    Why: Azure resource IDs are case-insensitive and its cost exports spell one VM's id in different cases on
    different days (``resourceGroups/rg-vision-dev`` and ``resourcegroups/RG-VISION-DEV``); grouped as written,
    one VM became two rows and its idle dollars or schedule saving were counted twice. AWS instance ids and GCP
    resource names are lower case, so no two real resources differ only in case. Shown tables name the resource
    by the first spelling (``min(ResourceId)``).
    """
    return f"lower({expr})"


#: FOCUS ServiceCategory values of rows that are never part of an instance's compute, even when they carry the
#: instance's ResourceId: data transfer (CUR bills an instance's ``DataTransfer-Out-Bytes`` on its instance id) and
#: storage (what :mod:`finops_kit.egress` and :mod:`finops_kit.storage` analyse).
NOT_INSTANCE_CATEGORIES = ("Networking", "Storage")


def instance_charges_sql(alias: str | None = None) -> str:
    """SQL: whether a row (of table ``alias``) is a charge of an instance's compute: Usage rows and the credits
    billed against them, except data-transfer and storage rows (:data:`NOT_INSTANCE_CATEGORIES`).

    Why the exception: an instance's rows were all Usage and Credit rows of its ResourceId and charge period, so a
    g5.12xlarge that also served $20/h of internet egress had $616.13 of "idle GPU" dollars in a day whose compute
    cost $136.13, and its egress counted as accelerated compute in every headline. Transfer and storage are
    priced, reported and optimised by other rules (egress tiers, storage classes); they are not accelerated
    compute whatever resource they are billed on. A row without a ServiceCategory stays in (a GPU VM's vCPU, RAM,
    GPU and licence SKUs are Compute).

    Nor is a row whose ConsumedUnit measures stored or moved bytes (:func:`volume_units`) unless the
    classification calls that row itself accelerated compute: SageMaker bills a training job's ML storage volume
    (``USE1-Train:VolumeUsage.gp2``, GB-months) and an endpoint's data processed (``USE1-Host:Data-Bytes-In``, GB)
    on the job's or endpoint's ARN with the service's own category, 'AI and Machine Learning'; as part of a GPU
    job they would be accelerated compute and divide into its GPU-hour rates. Memory billed by time (GCP's RAM in
    byte-seconds, GiB-hours) is not such a unit and stays in. (A row the rules class accelerated compute by itself
    stays in whatever its unit, so the class and the accelerated usage keep one figure.)"""
    a = alias + "." if alias else ""
    cats = ", ".join(sql_str(c) for c in NOT_INSTANCE_CATEGORIES)
    vol = ", ".join(sql_str(u) for u in volume_units())
    return (f"({a}ChargeCategory IN ('Usage', 'Credit') AND coalesce({a}ServiceCategory, '') NOT IN ({cats}) "
            f"AND ({a}x_AiWorkload = 'Accelerated compute' "
            f"OR coalesce({unit_key(a + 'ConsumedUnit')}, '') NOT IN ({vol})))")


@cache
def volume_units() -> tuple[str, ...]:
    """The units of ``data/storage_units.csv`` (as :func:`unit_key` spells them) that measure bytes stored over a
    month or bytes moved: kind ``gb`` and the month-based ``gb_month`` units. Not the hour-based ones (GB-hours,
    GiB hours: a provider may bill an instance's memory so) -- an instance's compute is measured in time."""
    return tuple(sorted({r["unit"].strip().lower() for r in data_rows("storage_units.csv")
                         if r["kind"] == "gb" or (r["kind"] == "gb_month" and float(r["factor"]) >= 1)}))


def accelerated_row_sql() -> str:
    """SQL: whether a row is accelerated compute by itself: the kit's one AI classification
    (``x_AiWorkload``, from ``data/ai_workloads.csv``) says so."""
    return "(x_AiWorkload = 'Accelerated compute')"


def anchor_order_sql() -> str:
    """SQL: the key by which :func:`accelerated_usage_sql` ranks a resource's rows to find the one whose pricing
    class, instance type and family its other rows take (smallest first; NULL: the row is never picked).

    Only Usage rows of the first three :data:`ROLES` take part, accelerator before instance before vCPU. Within a
    role the row with the largest EffectiveCost comes first; rows of equal cost by pricing class, instance type and
    family name. Why the whole key: ranked by role alone, two accelerator rows of one VM-day (on demand and spot)
    tie and ``arg_min`` returns whichever the scan met last, so the VM's vCPU and RAM rows were Spot from one
    storage order and On-demand from the other. Rows equal on every part of the key give the same answer whichever
    is picked.
    """
    role = ("CASE " + " ".join(f"WHEN _unit_role = {sql_str(r)} THEN {i}" for i, r in enumerate(ROLES[:3]))
            + " END")
    return (f"CASE WHEN ChargeCategory = 'Usage' AND ({role}) IS NOT NULL THEN "
            f"struct_pack(r := {role}, c := -coalesce(EffectiveCost, 0), p := coalesce(_row_pricing, ''), "
            f"t := coalesce(_instance_type, ''), f := coalesce(instance_family, '')) END")


#: The additive columns of a licence row that :func:`accelerated_usage_sql` splits over its instance's pricing
#: classes: money and quantities (those a Spark metrics reduction keeps, :data:`finops_kit.spark_metrics.MEASURES`).
SPLIT_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity")


def accelerated_usage_sql(where: str = "TRUE", source: str = FOCUS_TABLE) -> str:
    """SQL: the rows of accelerated instances in ``where``, with their measures, pricing class and family.

    A resource's rows for one charge period (a GCP VM's vCPU, RAM, GPU and licence rows and the credits billed
    against them) belong to one instance, which is accelerated when any of its rows is; rows without a ResourceId
    stand alone. Kept: Usage rows, and Credit rows billed against an accelerated instance (committed-use and
    sustained-use credits lower its effective cost) -- never the data-transfer or storage rows billed on the
    instance's id (:func:`instance_charges_sql`): this is the one "accelerated compute" of every report (metrics,
    AI unit economics, training runs, idle GPUs, the ingest's classing). Instance and accelerator rows keep their own pricing class
    and type (an Azure VM-day split into a savings-plan row and an on-demand row stays split). The instance's other
    rows (vCPU, RAM, licence, credits) keep their own class too when an instance or accelerator row of the same
    charge period bills in that class (a GCP VM recreated as spot under the same name bills on-demand and spot
    GPU, vCPU and RAM rows in one day: the spot VM's cores are spot spend), with that row's type and family.
    Otherwise they take the class, type and family of its accelerator row, else its instance row, else its vCPU
    row (a VM whose cores a committed-use discount covers while its GPU bills on demand stays one on-demand
    instance, as its hours do). When several rows share that top role, the one with the largest ``EffectiveCost``
    decides -- the class most of the instance's top-role spend was billed under -- then, on equal cost, the
    smallest pricing class, instance type and family by name (:func:`anchor_order_sql`), so the pick never follows
    the order the rows are stored or scanned in. A licence row (role ``license``) of an instance with base-meter
    hours (kind ``base`` of ``data/vm_operating_systems.csv``: an Azure VM's licence-free compute meter) bills in
    the classes of those hours, pro rata: one row per class, with that class's type and family and its share of
    the hours of the licence row's money and quantities (:data:`SPLIT_COLUMNS`, exact to the 12th decimal, the
    parts adding up to the row) -- the licence licenses the VM whose compute those hours are, whatever class it
    was billed under. Why: an Azure VM-day of 12 h pay-as-you-go on the Windows meter (licence inside) and 12 h
    reserved on the base meter put the reserved hours' Windows licence (PricingCategory Standard) in the
    On-demand class: On-demand 5.881/h (2,187.73, where commitment coverage says 1,777.04) and Committed
    2.2038/h, where they cost 4.777/h and 2.2038 + 1.104 = 3.3078/h (review s17, finding 4).

    An unused commitment (:data:`UNUSED_COMMITMENT`) keeps its own class whatever instance it is billed on, has no
    hours, and is in the family its commitment (``CommitmentDiscountId``) covered in these rows -- the costliest
    family of its Used rows --, else its own type's family, else :data:`NO_INSTANCE_TYPE`. Why: the families of a
    provider must add up to its accelerated cost (``metrics.spot``), and an unused commitment is the cost of the
    capacity it bought. GCP's unused A100 CUD (its type 'a100') was a family 'a100' beside the a2-highgpu it
    covered, and an Azure UnusedReservation row (no VM size) was in no family: the demo's Azure families summed
    to 567,884.14 of 572,453.89.

    Columns: the FOCUS columns, ``instance_type``, ``instance_family``, ``accelerator``,
    ``accelerators_per_instance``, ``unit_role``, ``pricing`` (Spot / On-demand / Committed / ...),
    ``instance_hours`` (also as ``hours``), ``accelerator_hours``, ``vcpu_hours``, ``spot_market`` (the row's own, as
    :func:`row_sql`: the denominator of a spot share, :func:`spot_share_sql`), and ``has_instance_hours`` /
    ``has_accelerator_hours``: whether the row's instance has those hours (so that a rate divides the cost of
    exactly the instances whose hours it counts: all of a GCP VM's rows, not only its GPU row; an instance with a
    row of unknown accelerator-hours has none), ``instance_hours_unknown`` / ``accelerator_hours_unknown``: the
    row's instance ran but those hours are unknown (its type is not in the catalog; see the module doc): every
    row of it, so :func:`unknown_cost` is the instance's whole cost. An accelerated instance billed by vCPU whose
    machine type's accelerator count the catalog lacks (a GCP ``A2 Instance Core`` row of a standard export, which
    names the series ``a2``, not the machine type) has unknown accelerator-hours too, unless one of its rows
    measures them (its GPU row, when the export names the resource: then its GPU-hours are known). Why: the
    standalone a2 core row (USD 76) was family ``a2`` with 0.0 accelerator-hours. ``source`` as in :func:`row_sql`.
    """
    from .spot_prices import vm_os_kind_sql

    key = ", ".join(INSTANCE_KEY)
    rank = anchor_order_sql()
    # the instance's anchor and measured hours per (provider, resource, charge period): one GROUP BY joined back
    # (NULL-safe on provider and period), not five window functions over as many partitions
    def same(alias: str) -> str:  # the row's instance: its resource (joined on) and these, NULL-safe
        return " AND ".join(f"{alias}.{c} IS NOT DISTINCT FROM _rows.{c}" for c in ("ProviderName", "ChargePeriodStart"))

    # the rows of the accelerated instances, chosen before the usage measures are derived (by row_sql, row by row:
    # the same rows either way): the accelerated instances' keys read from a few columns of the charges, and only
    # the chosen rows carried, once, through the derivation -- not every charge's ~120 columns through it, a
    # second wide copy and a join (a third of the relation's CPU on the demo warehouse)
    charges = f"(SELECT * FROM {source} WHERE ({where}) AND {instance_charges_sql()})"
    accelerated = (f"(SELECT _c.* FROM {charges} _c LEFT JOIN _acc_keys _k ON "
                   + " AND ".join(f"_k.{c} = _c.{c}" for c in INSTANCE_KEY)  # as USING (INSTANCE_KEY) joined
                   + f" WHERE (_c.ResourceId IS NULL AND {accelerated_row_sql()}) OR _k.ResourceId IS NOT NULL)")
    own = "ChargeCategory = 'Usage' AND _unit_role IN ('instance', 'accelerator')"  # rows with a class of their own
    # a licence row over base-meter hours of several classes: one row per class, its money and quantities that
    # class's share of the hours (the shares of a row add up to it exactly: cumulative parts)
    split = ", ".join(f"CASE WHEN _lic_w IS NULL OR _lic_w = _lic_tot THEN {c} ELSE "
                      f"{money_times_sql(c, '_lic_cum', '_lic_tot')} - {money_times_sql(c, '_lic_cum - _lic_w', '_lic_tot')} "
                      f"END AS {c}" for c in SPLIT_COLUMNS)
    return f"""
      WITH _acc_keys AS (SELECT DISTINCT {key} FROM {charges} WHERE ResourceId IS NOT NULL AND {accelerated_row_sql()}),
      _rows AS (
        SELECT *, coalesce(_unit_role = 'vcpu' AND _hours IS NOT NULL AND accelerators_per_instance IS NULL
                           AND {accelerated_row_sql()}, FALSE) AS _vcpu_ah_unknown
        FROM ({row_sql("TRUE", accelerated)})),
      _anchor AS (
        SELECT {key},
          arg_min(_row_pricing, {rank}) AS _anchor_pricing,
          arg_min(_instance_type, {rank}) AS _anchor_type,
          arg_min(instance_family, {rank}) AS _anchor_family,
          bool_or(instance_hours IS NOT NULL) AS _any_instance_hours,
          bool_or(accelerator_hours IS NOT NULL) AS _any_accelerator_hours,
          bool_or(instance_hours_unknown) AS _any_ih_unknown,
          bool_or(accelerator_hours_unknown) AS _any_ah_unknown,
          bool_or(_vcpu_ah_unknown) AS _any_vcpu_ah_unknown
        FROM _rows WHERE ResourceId IS NOT NULL GROUP BY ALL),
      _by_class AS (
        SELECT {key}, _row_pricing AS _class,
          arg_min(_instance_type, {rank}) AS _class_type,
          arg_min(instance_family, {rank}) AS _class_family
        FROM _rows WHERE ResourceId IS NOT NULL AND {own} GROUP BY ALL),
      _cd_family AS (  -- the family each commitment covered in these rows: the costliest, then by name
        SELECT ProviderName, CommitmentDiscountId,
          arg_min(_f, struct_pack(c := -_c, f := _f)) AS _cd_fam
        FROM (SELECT ProviderName, CommitmentDiscountId, instance_family AS _f, sum(EffectiveCost) AS _c
              FROM _rows WHERE CommitmentDiscountId IS NOT NULL AND CommitmentDiscountStatus = 'Used'
                AND instance_family IS NOT NULL GROUP BY ALL) GROUP BY ALL),
      _lic_keys AS (  -- the instances with a licence row: the only ones whose base-meter hours are read (few)
        SELECT DISTINCT {key} FROM _rows WHERE ResourceId IS NOT NULL AND _unit_role = 'license'),
      _base_cls AS (
        SELECT {key}, _row_pricing AS _class, {total("instance_hours")} AS _h,
          arg_min(_instance_type, {rank}) AS _t, arg_min(instance_family, {rank}) AS _f
        FROM _rows SEMI JOIN _lic_keys USING ({key})
        WHERE ResourceId IS NOT NULL AND {own} AND instance_hours IS NOT NULL
          AND {vm_os_kind_sql()} = 'base' GROUP BY ALL),
      _base_part AS (  -- each class's share of the base-meter hours, in whole micro-hours (exact shares)
        SELECT {key}, _class, _t, _f, _w,
          CAST(sum(_w) OVER (PARTITION BY {key} ORDER BY _h DESC, _class
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS HUGEINT) AS _cum,
          CAST(sum(_w) OVER (PARTITION BY {key}) AS HUGEINT) AS _tot
        FROM (SELECT *, CAST(round(_h * 1000000) AS HUGEINT) AS _w FROM _base_cls) WHERE _w > 0),
      _inst AS (
        SELECT _rows.*,
          {own} AS _own, _rows._row_pricing = {sql_str(UNUSED_COMMITMENT)} AS _unused, _cd._cd_fam,
          _bp._class AS _lic_class, _bp._t AS _base_type, _bp._f AS _base_family,
          _bp._w AS _lic_w, _bp._cum AS _lic_cum, _bp._tot AS _lic_tot,
          _c._class IS NOT NULL AS _in_class,
          _c._class_type, _c._class_family,
          _a._anchor_pricing, _a._anchor_type, _a._anchor_family,
          CASE WHEN _rows.ResourceId IS NOT NULL THEN _a._any_instance_hours
               ELSE instance_hours IS NOT NULL END AS has_instance_hours,
          CASE WHEN _rows.ResourceId IS NOT NULL THEN _a._any_accelerator_hours AND NOT _a._any_ah_unknown
               ELSE accelerator_hours IS NOT NULL END AS has_accelerator_hours,
          CASE WHEN _rows.ResourceId IS NOT NULL THEN NOT _a._any_instance_hours AND _a._any_ih_unknown
               ELSE instance_hours_unknown END AS _i_ih_unknown,
          CASE WHEN _rows.ResourceId IS NOT NULL
                 THEN _a._any_ah_unknown OR (_a._any_vcpu_ah_unknown AND NOT _a._any_accelerator_hours)
               ELSE accelerator_hours_unknown OR _vcpu_ah_unknown END AS _i_ah_unknown
        FROM _rows LEFT JOIN _anchor _a ON _a.ResourceId = _rows.ResourceId AND {same("_a")}
          LEFT JOIN _by_class _c ON _c.ResourceId = _rows.ResourceId AND {same("_c")}
                                 AND _c._class = _rows._row_pricing
          LEFT JOIN _base_part _bp ON _rows._unit_role = 'license' AND _bp.ResourceId = _rows.ResourceId
                                   AND {same("_bp")}
          LEFT JOIN _cd_family _cd ON _rows._row_pricing = {sql_str(UNUSED_COMMITMENT)}
                                   AND _cd.CommitmentDiscountId = _rows.CommitmentDiscountId
                                   AND _cd.ProviderName IS NOT DISTINCT FROM _rows.ProviderName)
      SELECT * EXCLUDE (_unit_role, _instance_type, _hours, _row_pricing, _anchor_pricing, _anchor_type,
                        _anchor_family, instance_family, _own, _unused, _in_class, _class_type, _class_family,
                        instance_hours_unknown, accelerator_hours_unknown, _i_ih_unknown, _i_ah_unknown,
                        _vcpu_ah_unknown, _lic_class, _base_type, _base_family, _lic_w, _lic_cum, _lic_tot,
                        _cd_fam)
               REPLACE ({split}),
             coalesce(_i_ih_unknown, FALSE) AS instance_hours_unknown,
             coalesce(_i_ah_unknown, FALSE) AS accelerator_hours_unknown,
             CASE WHEN _own THEN _instance_type WHEN _lic_class IS NOT NULL THEN coalesce(_base_type, _instance_type)
                  WHEN _in_class THEN coalesce(_class_type, _instance_type)
                  ELSE coalesce(_anchor_type, _instance_type) END AS instance_type,
             CASE WHEN _unused THEN coalesce(_cd_fam, instance_family, {sql_str(NO_INSTANCE_TYPE)})
                  WHEN _own THEN instance_family WHEN _lic_class IS NOT NULL THEN coalesce(_base_family, instance_family)
                  WHEN _in_class THEN coalesce(_class_family, instance_family)
                  ELSE coalesce(_anchor_family, instance_family) END AS instance_family,
             _unit_role AS unit_role,
             CASE WHEN _own OR _unused THEN _row_pricing WHEN _lic_class IS NOT NULL THEN _lic_class
                  WHEN _in_class THEN _row_pricing ELSE coalesce(_anchor_pricing, _row_pricing) END
               AS pricing,
             instance_hours AS hours
      FROM _inst
      WHERE ChargeCategory = 'Usage' OR _anchor_pricing IS NOT NULL"""


#: The exact type DOUBLE measures (hours, GB) are summed in by :func:`total`: 9 decimals (a millionth of a
#: millisecond-hour) and 29 integer digits.
MEASURE_SUM_TYPE = "DECIMAL(38,9)"


def accelerated_usage_from(con: Any, sc: Any, *, rowid: bool = False) -> str:
    """A FROM item: :func:`accelerated_usage_sql` of the scope's rows, derived once per read-only connection
    (:func:`finops_kit.querycache.materialized`) instead of once per query that reads it; run such a query
    through :mod:`finops_kit.querycache`, or call :func:`finops_kit.querycache.ensure` on its text first.
    ``rowid``: each row's ``_rowid`` too (:meth:`~finops_kit.scope.Scope.rows_sql`), for a caller that joins the
    usage back to its charges (the tag audit) -- another table than without it."""
    from .querycache import materialized

    return materialized(con, accelerated_usage_sql(source=sc.rows_sql(rowid=rowid)), "usage")


def total(expr: str, where: str | None = None) -> str:
    """SQL aggregate: the sum of a DOUBLE measure (hours, GB) that does not depend on the order rows are added in.

    Why: a floating-point sum differs in its last digits with the order of the additions, and that order is not
    fixed -- DuckDB adds per thread and then combines, a FOCUS dataset is scanned file by file in parallel, Spark
    per partition. The same data then gave different ``finops-kit metrics --json`` (``accelerator_hours``
    65385.7813642798 from a dataset, ...79 from the warehouse file). Each row's value is rounded once to
    :data:`MEASURE_SUM_TYPE` (exact from then on) and the decimal sum is cast back to DOUBLE, so the result is
    the same for every engine, thread count and partitioning. ``where``: the aggregate's FILTER condition.
    """
    filt = f" FILTER (WHERE {where})" if where else ""
    return f"CAST(sum(CAST({expr} AS {MEASURE_SUM_TYPE})){filt} AS DOUBLE)"


def exact(expr: str, where: str | None = None) -> str:
    """SQL aggregate: :func:`total` before its cast back to DOUBLE, the exact :data:`MEASURE_SUM_TYPE` sum, for a
    sum that is added up again (per-day totals summed over a window): adding the DOUBLE totals would bring the
    order dependence back."""
    filt = f" FILTER (WHERE {where})" if where else ""
    return f"sum(CAST({expr} AS {MEASURE_SUM_TYPE})){filt}"


def rate_sql(hours: str = "instance_hours", measured: str = "has_instance_hours", typ: str = "DECIMAL(38,6)",
             cost: str = "EffectiveCost") -> str:
    """SQL aggregate: cost per hour over :func:`accelerated_usage_sql` rows, e.g. per instance-hour (default) or
    per accelerator-hour (``accelerator_hours``, ``has_accelerator_hours``).

    The cost is that of the instances whose hours are counted (``measured``) and the hours are theirs: every rate
    in the kit divides the same cost by the same hours, so the spot analysis and the tagging audit show the same
    rate for a family, and the cost of an instance with unknown hours never divides by the other instances' hours.
    """
    return f"CAST(sum({cost}) FILTER (WHERE {measured}) / nullif({total(hours, measured)}, 0) AS {typ})"


#: The flag of :func:`accelerated_usage_sql` that says a measure is unknown on a row's instance.
UNKNOWN_FLAGS = {"instance_hours": "instance_hours_unknown", "accelerator_hours": "accelerator_hours_unknown",
                 "hours": "instance_hours_unknown"}


def known_total(measure: str, where: str | None = None, weight: str | None = None) -> str:
    """SQL aggregate over :func:`accelerated_usage_sql` rows: the :func:`total` of ``measure`` (``instance_hours``,
    ``accelerator_hours``) over the rows whose hours are known, 0 when there are none -- but NULL (unknown) when
    every row that ran has unknown hours: a g6f day the catalog did not know was "0 GPU-hours". ``where``: an
    aggregate FILTER as :func:`total`'s; ``weight``: a factor of each row's hours (a training run's share of a
    row, ``w``). Also over :func:`row_sql` rows, whose flags have the same names. What part of the cost has
    unknown hours is :func:`unknown_cost`."""
    flag = UNKNOWN_FLAGS[measure]
    expr = f"{measure} * {weight}" if weight else measure
    filt = f" FILTER (WHERE {where})" if where else ""
    return (f"CASE WHEN {total(expr, where)} IS NULL AND coalesce(bool_or({flag}){filt}, FALSE) "
            f"THEN NULL ELSE coalesce({total(expr, where)}, 0) END")


def unknown_cost(measure: str, money: str = "EffectiveCost", typ: str = "DECIMAL(38,12)") -> str:
    """SQL aggregate over :func:`accelerated_usage_sql` rows: the cost of the instances whose ``measure``
    (``instance_hours``, ``accelerator_hours``) is unknown (their type is not in the catalog), 0 when none -- the
    part of a total that its hours cannot cover, shown beside every total of those hours."""
    return f"CAST(coalesce(sum({money}) FILTER (WHERE {UNKNOWN_FLAGS[measure]}), 0) AS {typ})"


def unknown_types_sql(source: str = FOCUS_TABLE) -> str:
    """SQL: the instance types in ``source`` whose accelerator-hours or instance-hours are unknown, per provider,
    currency, type and family: ``unknown`` (which hours: 'accelerator-hours', 'instance-hours' or both), ``cost``
    (of those instances' rows), and the hours that are known of them. The "types not in the catalog" line of the
    metrics and the reports: add them to ``data/ec2_accelerated_instances.csv`` / ``data/machine_types.csv``."""
    return f"""
      SELECT ProviderName AS provider, BillingCurrency AS currency,
             coalesce(instance_type, '(no instance type)') AS instance_type, instance_family AS family,
             CASE WHEN bool_or(accelerator_hours_unknown) AND bool_or(instance_hours_unknown)
                  THEN 'accelerator-hours, instance-hours'
                  WHEN bool_or(accelerator_hours_unknown) THEN 'accelerator-hours' ELSE 'instance-hours' END
               AS unknown,
             CAST(sum(EffectiveCost) AS DECIMAL(38,12)) AS cost, {total("instance_hours")} AS instance_hours,
             {total("accelerator_hours")} AS accelerator_hours
      FROM ({accelerated_usage_sql(source=source)})
      WHERE accelerator_hours_unknown OR instance_hours_unknown
      GROUP BY ALL ORDER BY provider, currency, cost DESC, instance_type"""


# ---------------------------------------------------------------------------------- volume (GB) measures
def unit_key(expr: str) -> str:
    """SQL normalizing a unit string the way ``storage_units.csv`` lists them (lower case, single spaces)."""
    return f"lower(regexp_replace(trim({expr}), '\\s+', ' ', 'g'))"


@cache
def volume_units_values() -> str:
    """``storage_units.csv`` as a ``(VALUES ...) AS t(unit, kind, factor)`` relation to join as ``uc``/``up``."""
    rows = data_rows("storage_units.csv")
    body = ", ".join(f"({sql_str(r['unit'].lower())}, {sql_str(r['kind'])}, {float(r['factor'])!r})" for r in rows)
    return f"(VALUES {body}) AS t(unit, kind, factor)"


def quantity_in(kind: str) -> str:
    """SQL for a row's quantity in the base unit of ``kind`` (gb_month, gb, count), from ConsumedQuantity when its
    unit is of that kind, else PricingQuantity; NULL when neither is. Expects the unit table joined as ``uc``
    (ConsumedUnit) and ``up`` (PricingUnit)."""
    return (f"CASE WHEN uc.kind = {sql_str(kind)} THEN CAST(ConsumedQuantity AS DOUBLE) * uc.factor "
            f"WHEN up.kind = {sql_str(kind)} THEN CAST(PricingQuantity AS DOUBLE) * up.factor END")
