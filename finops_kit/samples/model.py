"""The provider-neutral workload model behind the sample billing exports.

A sample is a set of :class:`Workload` s (one GPU training fleet, one inference endpoint, one bucket tier, one
egress path, ...) owned by teams and projects, each with a daily quantity profile: a base amount, a weekly
seasonality (less on weekends), a trend, noise, an active window and optional planted events. Provider writers
(``aws_common``, ``gcp``, ``azure``) turn a workload-day into native line items with that provider's prices,
commitment mechanics and column names; this module knows nothing of any provider's format.

Why a model and not random rows: the analyses (forecasts, anomalies, tag coverage, idle GPUs, storage tiering,
commitment utilization) need *structure* to find — seasonality, growth, a runaway job, a masked pair of opposite
changes, a 24/7 dev GPU box, tag gaps that close over time — and tests need the planted truth to compare with.
Everything is seeded: the same seed gives the same workloads, quantities and therefore byte-identical files.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

#: First day of the first billing period in the samples.
PERIOD_START = date(2025, 10, 1)
#: "Today" of the sample world; data runs through the day before (the last billing period is partial).
TODAY = date(2026, 11, 27)
DEFAULT_SEED = 20251001

TEAMS = ("vision", "nlp", "recsys", "platform", "research")


def days(start: date = PERIOD_START, end: date = TODAY) -> Iterator[date]:
    d = start
    while d < end:
        yield d
        d += timedelta(days=1)


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def billing_periods(start: date = PERIOD_START, end: date = TODAY) -> list[date]:
    out, m = [], month_start(start)
    while m < end:
        out.append(m)
        m = next_month(m)
    return out


def days_in_month(d: date) -> int:
    return (next_month(d) - month_start(d)).days


_Q = {n: Decimal(1).scaleb(-n) for n in range(0, 13)}


def money(x: float | Decimal, places: int = 10) -> Decimal:
    """A float amount as an exact Decimal with ``places`` decimals (what the writer prints is what we sum)."""
    d = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    return d.quantize(_Q[places], rounding=ROUND_HALF_EVEN)


def fmt(d: Decimal | None) -> str:
    """Plain decimal text without exponent or trailing zeros ('21.96', '0.0000123', '0')."""
    if d is None:
        return ""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass(frozen=True)
class Event:
    """A planted change: a multiplier on one workload's quantity over [start, end), or a whole extra workload."""

    name: str
    start: date
    end: date
    multiplier: float = 1.0
    description: str = ""


@dataclass(frozen=True)
class Workload:
    """One billable thing, described without any provider vocabulary.

    ``units`` is the base daily quantity in the catalog SKU's unit (instance-hours, GB-month of a bucket tier,
    GB transferred, 1K tokens, ...). ``count`` instances of a 24/7 resource use ``count * 24`` hours a day.
    """

    name: str
    provider: str
    account: str
    team: str | None
    project: str | None
    env: str | None
    sku: str
    region: str
    units: float
    pricing: str = "on_demand"  # on_demand | spot
    weekly: float = 0.0  # weekend dip (0.4 = 40% less on Saturday and Sunday)
    growth: float = 0.0  # compound growth per month
    noise: float = 0.0  # relative standard deviation of daily noise
    cap: float | None = None  # maximum daily quantity (e.g. count * 24 hours)
    start: date = PERIOD_START
    end: date = TODAY
    commit: str | None = None  # commitment pool key the provider writer may apply
    tag_style: int = 0  # which spelling of the tag keys/values this resource's owner uses
    tagged_from: date | None = None  # tags missing before this day (tag policy rolled out later)
    extra_tags: tuple[tuple[str, str], ...] = ()
    events: tuple[Event, ...] = ()
    planted: str | None = None  # a whole workload that exists only as a planted event
    note: str = ""
    instances: int = 1  # distinct resources (e.g. endpoint instances) the quantity is spread over

    def with_(self, **kw) -> Workload:
        return replace(self, **kw)


@dataclass
class Usage:
    """A workload-day: the quantity billed and the quantity without planted events (for the planted deltas)."""

    workload: Workload
    day: date
    quantity: float
    baseline: float
    event: str | None = None


# Spellings seen in real tag data. Index = Workload.tag_style. Every key of the demo tag_policy (finops.yaml) is
# carried, with the gaps and variants a real bill has: case/separator variants and aliases of the keys, value
# aliases (prd, stg, preprod, qa), a missing owner, an owner that is not an e-mail, AI spend without a model tag.
_ENV_KEYS = ("env", "Env", "environment", "Environment", "env")
_TEAM_KEYS = ("team", "Team", "owner_team", "TEAM", "owner-team")
_PROJECT_KEYS = ("project", "Project", "project", "app", "project")
_OWNER_KEYS = ("owner", "Owner", "owner", "contact", None)       # style 4 never set an owner
_MODEL_KEYS = ("model", "Model", "model_name", None, "ml_model")   # style 3 tags no model
_ENV_VALUES = {
    "prod": ("prod", "Prod", "production", "prd", "PROD"),
    "staging": ("staging", "Staging", "stg", "preprod", "stage"),
    "dev": ("dev", "Dev", "development", "dev", "DEV"),
    "test": ("test", "Test", "qa", "QA", "test"),
}
#: The model a project trains or serves (AI spend must carry it: tag_policy.keys.model.required = ai).
_MODELS = {
    "detector-v3": "yolo-v8", "detector-api": "yolo-v8", "segmenter": "sam-vit-h", "segmenter-api": "sam-vit-h",
    "llm-finetune": "llama-3-8b", "llm-pretrain": "acme-lm-7b", "chat-api": "llama-3-70b", "chat-eval": "llama-3-70b",
    "ranker": "dlrm-v2", "ranker-api": "dlrm-v2", "protein-fold": "alphafold2",
}


def _stable(text: str) -> int:
    """A hash that is the same in every run (Python's hash() of a str is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def tags_for(w: Workload, day: date) -> dict[str, str]:
    """The user tags a workload carried on ``day``: variant keys/values, gaps and late tagging included."""
    if w.tagged_from and day < w.tagged_from:
        return {}
    s = w.tag_style % len(_ENV_KEYS)
    tags: dict[str, str] = {}
    if w.team is not None:
        key = _TEAM_KEYS[s]
        if key == "owner_team" and _stable(w.name) % 2:
            key = "business_unit"  # the finance org's name for the same thing
        tags[key] = w.team
        owner_key = _OWNER_KEYS[s]
        if owner_key:
            # style 2 writes the team's name where an e-mail address belongs: an invalid owner
            tags[owner_key] = f"{w.team} team" if s == 2 else f"{w.team}-leads@acme.example"
    if w.project is not None:
        tags[_PROJECT_KEYS[s]] = w.project
        model_key = _MODEL_KEYS[s]
        if model_key and w.project in _MODELS:
            tags[model_key] = _MODELS[w.project]
    if w.env is not None:
        tags[_ENV_KEYS[s]] = _ENV_VALUES.get(w.env, (w.env,) * 5)[s]
    for k, v in w.extra_tags:
        tags[k] = v
    return tags


def _months_elapsed(day: date) -> float:
    return (day - PERIOD_START).days / 30.4375


def usage(w: Workload, seed: int) -> Iterator[Usage]:
    """Daily quantities of one workload. Deterministic in (seed, workload name)."""
    rng = random.Random(f"{seed}|{w.name}")
    for d in days():
        noise = rng.gauss(0.0, 1.0)  # drawn every day so that windows do not shift the sequence
        if not (w.start <= d < w.end):
            continue
        q = w.units * (1.0 + w.growth) ** _months_elapsed(d)
        if d.weekday() >= 5:
            q *= 1.0 - w.weekly
        q *= max(0.0, 1.0 + w.noise * noise)
        if w.cap is not None:
            q = min(q, w.cap)
        base = q
        event = w.planted
        for ev in w.events:
            if ev.start <= d < ev.end:
                q *= ev.multiplier
                event = ev.name
        if w.planted:
            base = 0.0
        q = round(q, 6)
        base = round(base, 6)
        if q <= 0 and base <= 0:
            continue
        yield Usage(w, d, q, base, event)


def usage_by_day(workloads: list[Workload], seed: int) -> dict[date, list[Usage]]:
    """All workloads' daily usage grouped by day (days in order, workloads in the given order within a day)."""
    per_day: dict[date, list[Usage]] = defaultdict(list)
    for w in workloads:
        for u in usage(w, seed):
            per_day[u.day].append(u)
    return dict(sorted(per_day.items()))


# --------------------------------------------------------------------------------------------------------
# The sample organisation: who runs what, where. Provider writers own the SKU catalogs these names refer to.
# --------------------------------------------------------------------------------------------------------

D = date


def aws_workloads() -> list[Workload]:
    """The main AWS organisation (CUR 2.0) and the research lab payer (legacy CUR)."""
    W = Workload
    main = [
        # --- GPU training: on-demand and spot, weekday-heavy, growing ---
        W("vision-train-p4d", "aws", "ml-prod", "vision", "detector-v3", "prod", "p4d.24xlarge", "us-east-1",
          units=28, weekly=0.5, growth=0.02, noise=0.25, cap=48, commit="sp", tag_style=0),
        W("vision-train-p4d-spot", "aws", "ml-prod", "vision", "detector-v3", "prod", "p4d.24xlarge", "us-east-1",
          units=30, pricing="spot", weekly=0.4, growth=0.03, noise=0.3, cap=72, tag_style=0),
        W("nlp-train-p5-spot", "aws", "ml-research", "nlp", "llm-finetune", "prod", "p5.48xlarge", "us-east-1",
          units=20, pricing="spot", weekly=0.3, growth=0.06, noise=0.3, cap=48, start=D(2026, 2, 1),
          tag_style=1),
        W("nlp-train-p5", "aws", "ml-research", "nlp", "llm-pretrain", "prod", "p5.48xlarge", "us-east-1",
          units=16, weekly=0.2, noise=0.2, cap=24, start=D(2026, 4, 6), end=D(2026, 5, 18), tag_style=1),
        W("recsys-train-g5", "aws", "ml-prod", "recsys", "ranker", "test", "g5.48xlarge", "us-west-2",
          units=12, weekly=0.6, noise=0.3, cap=24, tag_style=2),
        W("research-trn1", "aws", "ml-research", "nlp", "llm-pretrain", "dev", "trn1.32xlarge", "us-east-1",
          units=10, pricing="spot", weekly=0.5, noise=0.4, cap=24, start=D(2026, 6, 1), tag_style=1),
        # the planted runaway job: 4 x p5 on-demand left running for three days
        W("nlp-runaway-p5", "aws", "ml-research", "nlp", "llm-finetune", "dev", "p5.48xlarge", "us-east-1",
          units=96, start=D(2026, 6, 10), end=D(2026, 6, 13), tag_style=1, planted="aws-runaway-training",
          note="4 x p5.48xlarge on-demand fine-tuning job never stopped"),
        # --- inference: 24/7, slowly growing ---
        W("vision-infer-g5", "aws", "ml-prod", "vision", "detector-api", "prod", "g5.xlarge", "us-east-1",
          units=72, cap=96, growth=0.01, commit="sp", tag_style=0, instances=4),
        W("recsys-infer-inf2", "aws", "ml-prod", "recsys", "ranker-api", "prod", "inf2.xlarge", "us-east-1",
          units=96, commit="sp", tag_style=2, instances=4),
        W("nlp-infer-g5-a", "aws", "ml-prod", "nlp", "chat-api", "prod", "g5.12xlarge", "us-east-1",
          units=24, commit="ri", tag_style=3),
        W("nlp-infer-g5-b", "aws", "ml-prod", "nlp", "chat-api", "prod", "g5.12xlarge", "us-east-1",
          units=24, commit="ri", end=D(2026, 9, 1), tag_style=3,
          note="decommissioned 2026-09-01: half the g5.12xlarge reservation is unused afterwards"),
        # the forgotten non-production GPU box, running 24/7
        W("nlp-dev-box-g5", "aws", "ml-dev", "nlp", "llm-finetune", "dev", "g5.48xlarge", "us-east-1",
          units=24, start=D(2026, 1, 12), tag_style=4, note="dev GPU box never stopped (24/7 non-production)"),
        W("platform-dev-g5", "aws", "ml-dev", None, None, None, "g5.xlarge", "us-east-1", units=10, weekly=0.9,
          noise=0.2, cap=24, note="untagged notebook GPU"),
        # --- managed AI services ---
        W("vision-sm-train", "aws", "ml-prod", "vision", "segmenter", "prod", "sm-train-p4d", "us-east-1",
          units=6, weekly=0.7, noise=0.5, cap=16, tag_style=0),
        W("recsys-sm-endpoint", "aws", "ml-prod", "recsys", "ranker-api", "prod", "sm-host-g5-2xl", "us-east-1",
          units=48, commit="sm-sp", tag_style=2),
        W("platform-sm-notebooks", "aws", "ml-dev", "platform", "notebooks", "dev", "sm-notebook-g5", "us-east-1",
          units=40, weekly=0.85, noise=0.2, tag_style=0, tagged_from=D(2026, 2, 1)),
        W("nlp-bedrock-in", "aws", "ml-prod", "nlp", "chat-api", "prod", "bedrock-llama-in", "us-east-1",
          units=180_000, growth=0.08, weekly=0.25, noise=0.15, tag_style=3),
        W("nlp-bedrock-out", "aws", "ml-prod", "nlp", "chat-api", "prod", "bedrock-llama-out", "us-east-1",
          units=45_000, growth=0.08, weekly=0.25, noise=0.15, tag_style=3),
        W("recsys-bedrock-embed", "aws", "ml-prod", "recsys", "ranker", "prod", "bedrock-titan-embed",
          "us-east-1", units=900_000, growth=0.04, noise=0.1, tag_style=2),
        # --- storage: S3 classes with growth, EBS ---
        W("vision-s3-standard", "aws", "data", "vision", "datasets", "prod", "s3-standard", "us-east-1",
          units=180_000, growth=0.04, tag_style=0),
        W("vision-s3-it-fa", "aws", "data", "vision", "datasets", "prod", "s3-it-fa", "us-east-1",
          units=90_000, growth=0.05, tag_style=0),
        W("vision-s3-it-ia", "aws", "data", "vision", "datasets", "prod", "s3-it-ia", "us-east-1",
          units=160_000, growth=0.05, tag_style=0),
        W("vision-s3-it-monitor", "aws", "data", "vision", "datasets", "prod", "s3-it-monitoring", "us-east-1",
          units=42_000, growth=0.05, tag_style=0),
        W("nlp-s3-standard", "aws", "data", "nlp", "corpora", "prod", "s3-standard", "us-east-1",
          units=120_000, growth=0.07, tag_style=1),
        W("nlp-s3-sia", "aws", "data", "nlp", "checkpoints", "prod", "s3-sia", "us-east-1",
          units=250_000, growth=0.06, tag_style=1),
        W("nlp-s3-gir", "aws", "data", "nlp", "checkpoints", "prod", "s3-gir", "us-east-1",
          units=300_000, growth=0.05, tag_style=1),
        W("platform-s3-glacier", "aws", "data", "platform", "logs-archive", "prod", "s3-glacier", "us-east-1",
          units=600_000, growth=0.03, tag_style=0),
        W("platform-s3-deep", "aws", "data", "platform", "logs-archive", "prod", "s3-deep-archive", "us-east-1",
          units=1_500_000, growth=0.02, tag_style=0),
        W("vision-s3-put", "aws", "data", "vision", "datasets", "prod", "s3-requests-tier1", "us-east-1",
          units=9_000, weekly=0.4, noise=0.3, tag_style=0),
        W("vision-s3-get", "aws", "data", "vision", "datasets", "prod", "s3-requests-tier2", "us-east-1",
          units=160_000, weekly=0.4, noise=0.3, tag_style=0),
        W("nlp-s3-retrieval-sia", "aws", "data", "nlp", "checkpoints", "prod", "s3-retrieval-sia", "us-east-1",
          units=1_500, weekly=0.5, noise=0.6, tag_style=1),
        W("nlp-s3-retrieval-gir", "aws", "data", "nlp", "checkpoints", "prod", "s3-retrieval-gir", "us-east-1",
          units=400, weekly=0.5, noise=0.6, tag_style=1),
        W("platform-s3-early-delete", "aws", "data", "platform", "logs-archive", "prod", "s3-early-delete-gda",
          "us-east-1", units=220_000, start=D(2026, 3, 16), end=D(2026, 3, 17), tag_style=0,
          note="deep-archive objects deleted before 180 days"),
        W("vision-ebs-gp3", "aws", "ml-prod", "vision", "detector-v3", "prod", "ebs-gp3", "us-east-1",
          units=60_000, growth=0.03, tag_style=0, tagged_from=D(2025, 12, 1)),
        W("nlp-ebs-gp3", "aws", "ml-research", "nlp", "llm-finetune", "dev", "ebs-gp3", "us-east-1",
          units=40_000, growth=0.05, tag_style=1),
        # --- data transfer ---
        W("vision-egress", "aws", "ml-prod", "vision", "detector-api", "prod", "dt-internet-out", "us-east-1",
          units=2_200, growth=0.03, weekly=0.2, noise=0.15, tag_style=0),
        W("nlp-egress", "aws", "ml-prod", "nlp", "chat-api", "prod", "dt-internet-out", "us-east-1",
          units=900, growth=0.06, weekly=0.2, noise=0.15, tag_style=3),
        W("recsys-inter-region", "aws", "ml-prod", "recsys", "ranker", "staging", "dt-inter-region",
          "us-east-1", units=3_000, weekly=0.3, noise=0.2, tag_style=2),
        W("vision-inter-az", "aws", "ml-prod", "vision", "detector-v3", "prod", "dt-inter-az", "us-east-1",
          units=14_000, weekly=0.4, noise=0.25, growth=0.02, tag_style=0),
        W("platform-nat-bytes", "aws", "ml-prod", "platform", "network", "prod", "nat-bytes", "us-east-1",
          units=6_500, noise=0.15, growth=0.02, tag_style=0, tagged_from=D(2026, 4, 1)),
        W("platform-nat-hours", "aws", "ml-prod", "platform", "network", "prod", "nat-hours", "us-east-1",
          units=72, tag_style=0, tagged_from=D(2026, 4, 1)),
        W("vision-cdn", "aws", "ml-prod", "vision", "detector-api", "prod", "cdn-out", "us-east-1",
          units=4_000, weekly=0.15, noise=0.1, growth=0.03, tag_style=0),
    ]
    lab = [
        W("lab-train-g5-spot", "aws", "lab-research", "research", "protein-fold", "dev", "g5.12xlarge",
          "us-east-1", units=30, pricing="spot", weekly=0.5, noise=0.3, cap=72, tag_style=1),
        W("lab-train-p4d", "aws", "lab-research", "research", "protein-fold", "prod", "p4d.24xlarge",
          "us-east-1", units=8, weekly=0.6, noise=0.5, cap=24, start=D(2026, 1, 5), tag_style=1),
        W("lab-notebook-g6", "aws", "lab-research", "research", "notebooks", "dev", "g6.xlarge", "us-east-1",
          units=24, tag_style=4, note="24/7 notebook GPU"),
        W("lab-sm-notebook", "aws", "lab-research", "research", "notebooks", "dev", "sm-notebook-g5",
          "us-east-1", units=10, weekly=0.9, noise=0.2, tag_style=1),
        W("lab-s3-standard", "aws", "lab-data", "research", "datasets", "prod", "s3-standard", "us-east-1",
          units=80_000, growth=0.03, tag_style=1),
        W("lab-s3-deep", "aws", "lab-data", "research", "raw-instrument-data", "prod", "s3-deep-archive",
          "us-east-1", units=900_000, growth=0.04, tag_style=1),
        W("lab-s3-get", "aws", "lab-data", "research", "datasets", "prod", "s3-requests-tier2", "us-east-1",
          units=60_000, weekly=0.5, noise=0.3, tag_style=1),
        W("lab-egress", "aws", "lab-research", "research", "protein-fold", "prod", "dt-internet-out",
          "us-east-1", units=300, noise=0.3, tag_style=1),
        W("lab-ebs", "aws", "lab-research", None, None, None, "ebs-gp3", "us-east-1", units=12_000,
          note="untagged volumes"),
    ]
    return main + lab + [w for w in unit_economics_workloads() if w.provider == "aws"]


def gcp_workloads() -> list[Workload]:
    W = Workload
    return [
        # A100 (A2) and H100 (A3) VMs; a2 on-demand covered by a GPU CUD, spot fleets without
        W("gcp-vision-a2", "gcp", "vision-prod", "vision", "detector-v3", "prod", "a2-highgpu-8g", "us-central1",
          units=30, weekly=0.5, noise=0.25, growth=0.02, cap=48, commit="cud-a100", tag_style=0),
        W("gcp-vision-a2-spot", "gcp", "vision-prod", "vision", "detector-v3", "prod", "a2-highgpu-8g",
          "us-central1", units=20, pricing="spot", weekly=0.4, noise=0.35, cap=48, tag_style=0),
        W("gcp-llm-a3-spot", "gcp", "llm-research", "nlp", "llm-pretrain", "prod", "a3-highgpu-8g",
          "us-central1", units=16, pricing="spot", weekly=0.3, noise=0.3, growth=0.05, cap=48,
          start=D(2026, 1, 15), tag_style=2),
        W("gcp-llm-a3", "gcp", "llm-research", "nlp", "llm-pretrain", "prod", "a3-highgpu-8g", "us-central1",
          units=8, weekly=0.2, noise=0.3, cap=24, start=D(2026, 7, 1), tag_style=2),
        W("gcp-recsys-t4", "gcp", "recsys-prod", "recsys", "ranker-api", "prod", "n1-standard-8-t4",
          "us-central1", units=72, tag_style=1, instances=3),
        W("gcp-dev-g2", "gcp", "llm-research", "nlp", "sandbox", "dev", "g2-standard-8", "us-central1",
          units=24, tag_style=3, note="L4 dev VM running 24/7"),
        # Vertex AI
        W("gcp-vertex-train", "gcp", "vision-prod", "vision", "segmenter", "prod", "vertex-train-a100",
          "us-central1", units=10, weekly=0.7, noise=0.5, cap=32, tag_style=0),
        W("gcp-vertex-predict", "gcp", "recsys-prod", "recsys", "ranker-api", "prod", "vertex-predict-l4",
          "us-central1", units=48, growth=0.02, commit="flex-cud", tag_style=1),
        W("gcp-gemini-in", "gcp", "llm-research", "nlp", "chat-eval", "prod", "gemini-flash-in", "us-central1",
          units=250_000, growth=0.07, weekly=0.3, noise=0.2, tag_style=2, tagged_from=D(2026, 1, 1)),
        W("gcp-gemini-out", "gcp", "llm-research", "nlp", "chat-eval", "prod", "gemini-flash-out", "us-central1",
          units=60_000, growth=0.07, weekly=0.3, noise=0.2, tag_style=2, tagged_from=D(2026, 1, 1)),
        # Cloud Storage classes
        W("gcp-gcs-standard", "gcp", "vision-prod", "vision", "datasets", "prod", "gcs-standard", "us",
          units=150_000, growth=0.05, tag_style=0),
        W("gcp-gcs-nearline", "gcp", "vision-prod", "vision", "datasets", "prod", "gcs-nearline", "us",
          units=200_000, growth=0.04, tag_style=0),
        W("gcp-gcs-coldline", "gcp", "platform-shared", "platform", "backups", "prod", "gcs-coldline", "us",
          units=400_000, growth=0.03, tag_style=4),
        W("gcp-gcs-archive", "gcp", "platform-shared", "platform", "backups", "prod", "gcs-archive", "us",
          units=900_000, growth=0.02, tag_style=4),
        W("gcp-gcs-class-a", "gcp", "vision-prod", "vision", "datasets", "prod", "gcs-class-a", "us",
          units=400, weekly=0.4, noise=0.3, tag_style=0),
        W("gcp-gcs-retrieval", "gcp", "platform-shared", "platform", "backups", "prod", "gcs-coldline-retrieval",
          "us", units=300, noise=0.8, tag_style=4),
        W("gcp-gcs-early-delete", "gcp", "vision-prod", "vision", "datasets", "prod", "gcs-nearline-early-delete",
          "us", units=30_000, start=D(2026, 5, 4), end=D(2026, 5, 5), tag_style=0),
        # network
        W("gcp-vision-egress", "gcp", "vision-prod", "vision", "detector-api", "prod", "gce-egress-americas",
          "us-central1", units=1_500, weekly=0.2, noise=0.15, growth=0.03, tag_style=0,
          events=(Event("gcp-egress-spike", D(2026, 8, 20), D(2026, 8, 22), 12.0,
                        "a public dataset mirror was hot-linked: 12x internet egress for two days"),)),
        W("gcp-inter-region", "gcp", "llm-research", "nlp", "llm-pretrain", "prod", "gce-inter-region",
          "us-central1", units=5_000, weekly=0.3, noise=0.3, tag_style=2),
        W("gcp-nat", "gcp", "platform-shared", "platform", "network", "prod", "cloud-nat", "us-central1",
          units=4_000, noise=0.2, tag_style=4, tagged_from=D(2026, 3, 1)),
        W("gcp-cdn", "gcp", "vision-prod", "vision", "detector-api", "prod", "cdn-egress", "us-central1",
          units=2_000, weekly=0.15, noise=0.1, tag_style=0),
    ] + [w for w in unit_economics_workloads() if w.provider == "gcp"]


def azure_workloads() -> list[Workload]:
    W = Workload
    window = (D(2026, 9, 1), D(2026, 9, 15))
    return [
        W("az-vision-nc-a100", "azure", "ai-prod", "vision", "detector-v3", "prod", "NC24ads_A100_v4", "eastus",
          units=40, weekly=0.5, noise=0.25, cap=72, growth=0.02, commit="sp", tag_style=1),
        W("az-vision-nc-a100-spot", "azure", "ai-prod", "vision", "detector-v3", "prod", "NC24ads_A100_v4",
          "eastus", units=36, pricing="spot", weekly=0.4, noise=0.3, cap=96, tag_style=1),
        W("az-llm-nd-h100", "azure", "ai-research", "nlp", "llm-pretrain", "prod", "ND96isr_H100_v5",
          "eastus", units=8, weekly=0.2, noise=0.3, cap=24, start=D(2026, 3, 2), tag_style=2),
        W("az-recsys-t4", "azure", "ai-prod", "recsys", "ranker-api", "prod", "NC8as_T4_v3", "eastus",
          units=72, commit="ri", tag_style=0, instances=3),
        W("az-dev-nc-a100", "azure", "ai-dev", "vision", "sandbox", "dev", "NC24ads_A100_v4", "eastus",
          units=24, start=D(2026, 5, 1), tag_style=3, note="dev A100 VM running 24/7"),
        # Azure ML training compute (billed as VM meters via Microsoft.MachineLearningServices)
        W("az-recsys-aml-train", "azure", "ai-prod", "recsys", "ranker", "prod", "aml-NC24ads_A100_v4",
          "eastus", units=160, weekly=0.5, noise=0.15, cap=200, tag_style=0,
          events=(Event("azure-masked-pair", *window, 0.15,
                        "ranker training moved off Azure ML onto Azure OpenAI fine-tuning for two weeks"),)),
        W("az-recsys-aoai-burst", "azure", "ai-prod", "recsys", "ranker", "prod", "aoai-gpt4o-in", "eastus",
          units=200_000, weekly=0.5, noise=0.15, start=window[0], end=window[1], tag_style=0,
          planted="azure-masked-pair"),
        W("az-nlp-aoai-in", "azure", "ai-prod", "nlp", "chat-api", "prod", "aoai-gpt4o-in", "eastus",
          units=60_000, growth=0.07, weekly=0.3, noise=0.15, tag_style=2),
        W("az-nlp-aoai-out", "azure", "ai-prod", "nlp", "chat-api", "prod", "aoai-gpt4o-out", "eastus",
          units=15_000, growth=0.07, weekly=0.3, noise=0.15, tag_style=2),
        W("az-aml-endpoint", "azure", "ai-prod", "vision", "segmenter-api", "prod", "aml-endpoint-NC6s_v3",
          "eastus", units=48, tag_style=1, tagged_from=D(2026, 2, 1)),
        # Blob tiers
        W("az-blob-hot", "azure", "ai-prod", "vision", "datasets", "prod", "blob-hot", "eastus",
          units=120_000, growth=0.04, tag_style=1),
        W("az-blob-cool", "azure", "ai-prod", "vision", "datasets", "prod", "blob-cool", "eastus",
          units=200_000, growth=0.04, tag_style=1),
        W("az-blob-cold", "azure", "ai-research", "nlp", "checkpoints", "prod", "blob-cold", "eastus",
          units=250_000, growth=0.05, tag_style=2),
        W("az-blob-archive", "azure", "ai-research", "platform", "archive", "prod", "blob-archive", "eastus",
          units=700_000, growth=0.02, tag_style=3),
        W("az-blob-reads", "azure", "ai-prod", "vision", "datasets", "prod", "blob-hot-read", "eastus",
          units=30_000, weekly=0.4, noise=0.3, tag_style=1),
        W("az-blob-early-delete", "azure", "ai-research", "nlp", "checkpoints", "prod", "blob-cold-early-delete",
          "eastus", units=40_000, start=D(2026, 7, 7), end=D(2026, 7, 8), tag_style=2),
        # bandwidth
        W("az-egress", "azure", "ai-prod", "vision", "detector-api", "prod", "bw-internet-out", "eastus",
          units=1_200, weekly=0.2, noise=0.15, growth=0.03, tag_style=1),
        W("az-inter-region", "azure", "ai-research", "nlp", "llm-pretrain", "prod", "bw-inter-region", "eastus",
          units=2_500, weekly=0.3, noise=0.3, tag_style=2, tagged_from=D(2026, 1, 1)),
    ]


def workloads(provider: str) -> list[Workload]:
    return {"aws": aws_workloads, "gcp": gcp_workloads, "azure": azure_workloads}[provider]()


@dataclass
class Planted:
    """What a writer learned while writing: per planted event the extra cost, and the known totals."""

    events: dict[str, dict] = field(default_factory=dict)
    totals: list[dict] = field(default_factory=list)
    #: per commitment id, what the writer billed for it (see samples/commitment_facts.py)
    commitments: dict[str, dict] = field(default_factory=dict)

    def add_delta(self, event: str, *, provider: str, dataset: str, day: date, team: str | None,
                  service: str, delta: Decimal, description: str = "") -> None:
        ev = self.events.setdefault(event, {
            "event": event, "provider": provider, "dataset": dataset, "start": day, "end": day,
            "teams": set(), "services": {}, "extra_cost": Decimal(0), "description": description})
        ev["start"] = min(ev["start"], day)
        ev["end"] = max(ev["end"], day)
        if team:
            ev["teams"].add(team)
        ev["services"][service] = ev["services"].get(service, Decimal(0)) + delta
        ev["extra_cost"] += delta
        if description and not ev["description"]:
            ev["description"] = description


def event_description(w: Workload, event: str | None) -> str:
    if event is None:
        return ""
    for ev in w.events:
        if ev.name == event:
            return ev.description
    return w.note


def isclose(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def unit_economics_workloads() -> list[Workload]:
    """Workloads of the AI unit economics sample (:mod:`.ai_units`): a fine-tuning run tagged ``training-run``
    (spot and on-demand GPUs, its checkpoint volume and its inter-region copy, all tagged), a Vertex AI pipeline
    run carrying ``vertex-ai-pipelines-run-billing-id``, and a small always-on embedding API whose daily cost is one
    on-demand g6.xlarge (so its cost per 1k requests is known exactly)."""
    W = Workload
    run = (("training-run", "llm-ft-20261014"),)
    window = {"start": D(2026, 10, 14), "end": D(2026, 10, 16)}
    vertex = (("vertex-ai-pipelines-run-billing-id", "8512934470312345678"),)
    return [
        W("nlp-run-ft-spot", "aws", "ml-research", "nlp", "llm-finetune", "dev", "g5.12xlarge", "us-east-1",
          units=40, pricing="spot", instances=2, tag_style=1, extra_tags=run, **window),
        W("nlp-run-ft-od", "aws", "ml-research", "nlp", "llm-finetune", "dev", "g5.12xlarge", "us-east-1",
          units=8, tag_style=1, extra_tags=run, **window),
        W("nlp-run-ft-ckpt", "aws", "ml-research", "nlp", "llm-finetune", "dev", "ebs-gp3", "us-east-1",
          units=3_000, tag_style=1, extra_tags=run, **window),
        W("nlp-run-ft-copy", "aws", "ml-research", "nlp", "llm-finetune", "dev", "dt-inter-region", "us-east-1",
          units=600, tag_style=1, extra_tags=run, **window),
        W("recsys-embed-g6", "aws", "ml-prod", "recsys", "embed-api", "prod", "g6.xlarge", "us-east-1",
          units=24, start=D(2026, 9, 1), tag_style=0),
        W("gcp-vertex-run", "gcp", "vision-prod", "vision", "segmenter", "prod", "vertex-train-a100", "us-central1",
          units=16, start=D(2026, 10, 20), end=D(2026, 10, 21), tag_style=0, extra_tags=vertex),
    ]
