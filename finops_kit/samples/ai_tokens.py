"""Token line items of managed generative AI, in each provider's native shape (issue 16, the token part).

What a real bill has and the kit must survive, per provider:

* **AWS Bedrock** (CUR 2.0 for the main organisation, legacy CUR for the research lab): one line per model, token
  type and day -- ``USE1-Claude4Sonnet-input-tokens``, ``-output-tokens``, ``-cache-read-input-token-count``,
  ``-cache-write-input-token-count``, batch (``-batch``) and global cross-region (``-cross-region-global``)
  suffixes -- priced per ``1K tokens``; a provisioned-throughput line per hour in ``1K TPM Hour``; a chat
  application that turned prompt caching on in May 2026 (input tokens move to cache reads); calls through a tagged
  application inference profile (tags on the bill) beside untagged on-demand calls; and in the lab, a model the
  kit's rule table does not know (``DeepSeek-R1``), which must be listed as unmatched, never dropped.
* **Azure OpenAI / Foundry Models**: meters of two generations (``gpt-4o-mini-0718-Inp-glbl`` per ``1K``,
  ``GPT 5 Inpt Glbl`` / ``GPT 5 cached Inp glbl`` per ``1M``), a regional and a batch deployment, and a PTU
  deployment billed per hour under a PTU reservation (:mod:`.ai_commitments`).
* **Vertex AI Gemini**: token type in the SKU description (``Text Input``, ``Text Output``, ``Thinking Text
  Output``, ``Input Text Caching``, ``(Long)`` context) priced per token (``count``), and context-cache storage
  billed in hours.

Token counts are whole tokens (what the provider meters) and prices are list prices of 2026 (approximate), so every
line's cost is exact in its format's decimals and the planted unit costs are exact. :func:`facts` recomputes the
same lines (a pure function of the seed) and states what the token analysis must find, for ``PLANTED.json``.
The writers call :func:`aws_lines`, :func:`azure_rows` and :func:`gcp_rows`: one hook each.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import ai_commitments, model
from .model import Workload

D = Decimal
#: Prompt caching turned on for the support bot (Claude Sonnet 4 on Bedrock) on this day.
CACHE_ON = date(2026, 5, 1)


@dataclass(frozen=True)
class Meter:
    """One billed line kind: its native name, unit, price per unit and what it is (for the planted facts)."""

    key: str
    provider: str  # aws | azure | gcp
    name: str      # usage type / meter name / SKU description as the provider writes it
    unit: str      # pricing unit as the provider writes it
    block: int     # tokens (or hours) per pricing unit
    price: Decimal  # per pricing unit
    model: str | None
    token_type: str | None  # None: not a token line (capacity, cache storage)
    tier: str = "standard"
    batch: bool = False


M = Meter
METERS = {m.key: m for m in (
    # --- Bedrock, us-east-1 (main organisation) ---
    M("cs4-in", "aws", "USE1-Claude4Sonnet-input-tokens", "1K tokens", 1000, D("0.003"), "Claude Sonnet 4", "input"),
    M("cs4-out", "aws", "USE1-Claude4Sonnet-output-tokens", "1K tokens", 1000, D("0.015"), "Claude Sonnet 4", "output"),
    M("cs4-cr", "aws", "USE1-Claude4Sonnet-cache-read-input-token-count", "1K tokens", 1000, D("0.0003"),
      "Claude Sonnet 4", "cache read"),
    M("cs4-cw", "aws", "USE1-Claude4Sonnet-cache-write-input-token-count", "1K tokens", 1000, D("0.00375"),
      "Claude Sonnet 4", "cache write"),
    M("cs4-in-batch", "aws", "USE1-Claude4Sonnet-input-tokens-batch", "1K tokens", 1000, D("0.0015"),
      "Claude Sonnet 4", "input", "batch", True),
    M("cs4-out-batch", "aws", "USE1-Claude4Sonnet-output-tokens-batch", "1K tokens", 1000, D("0.0075"),
      "Claude Sonnet 4", "output", "batch", True),
    M("h45-in-global", "aws", "USE1-Claude4-5Haiku-input-tokens-cross-region-global", "1K tokens", 1000, D("0.001"),
      "Claude Haiku 4.5", "input", "cross-region global"),
    M("h45-out-global", "aws", "USE1-Claude4-5Haiku-output-tokens-cross-region-global", "1K tokens", 1000,
      D("0.005"), "Claude Haiku 4.5", "output", "cross-region global"),
    M("h35-in", "aws", "USE1-Claude3-5Haiku-input-tokens", "1K tokens", 1000, D("0.0008"), "Claude 3.5 Haiku",
      "input"),
    M("h35-out", "aws", "USE1-Claude3-5Haiku-output-tokens", "1K tokens", 1000, D("0.004"), "Claude 3.5 Haiku",
      "output"),
    M("h35-pt", "aws", "USE1-Claude3-5Haiku-ProvisionedThroughput", "1K TPM Hour", 1, D("0.04"), "Claude 3.5 Haiku",
      None),
    # --- Bedrock, us-west-2 (research lab, legacy CUR) ---
    M("nova-in", "aws", "USW2-NovaPro-input-tokens", "1K tokens", 1000, D("0.0008"), "Nova Pro", "input"),
    M("nova-out", "aws", "USW2-NovaPro-output-tokens", "1K tokens", 1000, D("0.0032"), "Nova Pro", "output"),
    M("dsr1-in", "aws", "USW2-DeepSeek-R1-input-tokens", "1K tokens", 1000, D("0.00135"), None, "input"),
    M("dsr1-out", "aws", "USW2-DeepSeek-R1-output-tokens", "1K tokens", 1000, D("0.0054"), None, "output"),
    # --- Azure OpenAI, East US: two meter generations, 1K and 1M units ---
    M("4om-in", "azure", "gpt-4o-mini-0718-Inp-glbl", "1K", 1000, D("0.00015"), "gpt-4o-mini", "input", "global"),
    M("4om-out", "azure", "gpt-4o-mini-0718-Outp-glbl", "1K", 1000, D("0.0006"), "gpt-4o-mini", "output", "global"),
    M("4om-in-reg", "azure", "gpt-4o-mini-0718-Inp-regnl", "1K", 1000, D("0.000165"), "gpt-4o-mini", "input",
      "regional"),
    M("4om-out-reg", "azure", "gpt-4o-mini-0718-Outp-regnl", "1K", 1000, D("0.00066"), "gpt-4o-mini", "output",
      "regional"),
    M("4om-in-batch", "azure", "gpt-4o-mini-0718-Batch-Inp-glbl", "1K", 1000, D("0.000075"), "gpt-4o-mini", "input",
      "global, batch", True),
    M("4om-out-batch", "azure", "gpt-4o-mini-0718-Batch-Outp-glbl", "1K", 1000, D("0.0003"), "gpt-4o-mini", "output",
      "global, batch", True),
    M("g5-in", "azure", "GPT 5 Inpt Glbl", "1M", 1_000_000, D("1.25"), "gpt-5", "input", "global"),
    M("g5-cached", "azure", "GPT 5 cached Inp glbl", "1M", 1_000_000, D("0.125"), "gpt-5", "cache read", "global"),
    M("g5-out", "azure", "GPT 5 Outp Glbl", "1M", 1_000_000, D("10"), "gpt-5", "output", "global"),
    M("ptu", "azure", "Provisioned Managed Global", "1 Hour", 1, D("1"), None, None),
    # --- Vertex AI Gemini, us-central1: priced per token (count) ---
    M("g25p-in", "gcp", "Gemini 2.5 Pro Text Input - Predictions", "count", 1, D("0.00000125"), "Gemini 2.5 Pro",
      "input"),
    M("g25p-out", "gcp", "Gemini 2.5 Pro Text Output - Predictions", "count", 1, D("0.00001"), "Gemini 2.5 Pro",
      "output"),
    M("g25p-think", "gcp", "Gemini 2.5 Pro Thinking Text Output - Predictions", "count", 1, D("0.00001"),
      "Gemini 2.5 Pro", "thinking"),
    M("g25p-cache", "gcp", "Gemini 2.5 Pro Input Text Caching - Predictions", "count", 1, D("0.0000003125"),
      "Gemini 2.5 Pro", "cache read"),
    M("g25p-in-long", "gcp", "Gemini 2.5 Pro Text Input (Long) - Predictions", "count", 1, D("0.0000025"),
      "Gemini 2.5 Pro", "input", "long context"),
    M("g25p-out-long", "gcp", "Gemini 2.5 Pro Text Output (Long) - Predictions", "count", 1, D("0.000015"),
      "Gemini 2.5 Pro", "output", "long context"),
    M("g25p-storage", "gcp", "Gemini 2.5 Pro Caching Storage", "hour", 1, D("0.45"), "Gemini 2.5 Pro", None),
)}


@dataclass(frozen=True)
class App:
    """One application calling models: who owns it (for tags), where it is billed, and its daily volume per meter
    (tokens, or hours for capacity/storage meters) before growth, weekends and noise."""

    name: str
    provider: str
    account: str
    team: str | None
    project: str | None
    env: str | None
    region: str
    volumes: tuple[tuple[str, int], ...]
    tagged: bool = True      # Bedrock: an application inference profile whose tags reach the bill
    growth: float = 0.0
    weekly: float = 0.0
    noise: float = 0.0
    start: date = model.PERIOD_START
    tag_style: int = 0
    step: int = 1            # token counts are multiples of this (GCP costs have 6 decimals)
    #: (meter, from meter, divisor): that meter's tokens are exactly the other's / divisor (a fixed token mix)
    linked: tuple[tuple[str, str, int], ...] = ()
    extra_tags: tuple[tuple[str, str], ...] = ()


APPS = (
    App("support-bot", "aws", "ml-prod", "nlp", "support-bot", "prod", "us-east-1",
        (("cs4-in", 60_000_000), ("cs4-out", 3_000_000), ("cs4-cr", 0), ("cs4-cw", 0)),
        growth=0.04, weekly=0.35, noise=0.1, start=date(2026, 1, 5)),
    App("eval-batch", "aws", "ml-prod", "research", "llm-eval", "dev", "us-east-1",
        (("cs4-in-batch", 40_000_000), ("cs4-out-batch", 4_000_000)), weekly=0.8, noise=0.3,
        start=date(2026, 3, 2), tag_style=1),
    App("ticket-triage", "aws", "ml-prod", None, None, None, "us-east-1",
        (("h45-in-global", 25_000_000), ("h45-out-global", 2_500_000)), tagged=False, growth=0.03, weekly=0.5,
        noise=0.15, start=date(2026, 6, 1)),
    App("ranker-pt", "aws", "ml-prod", "recsys", "ranker-api", "prod", "us-east-1", (("h35-pt", 24 * 50),),
        start=date(2026, 7, 1), tag_style=2),
    # on-demand Claude 3.5 Haiku beside the provisioned throughput of the same model (samples/ai_commitments.py):
    # re-ranking calls, 10 input tokens per output token exactly
    App("ranker-rerank", "aws", "ml-prod", "recsys", "ranker-api", "prod", "us-east-1",
        (("h35-in", 36_000_000), ("h35-out", 0)), growth=0.05, weekly=0.4, noise=0.1, start=date(2026, 3, 2),
        tag_style=2, step=10, linked=(("h35-out", "h35-in", 10),)),
    App("lab-assistant", "aws", "lab-research", "research", "protein-fold", "prod", "us-west-2",
        (("nova-in", 8_000_000), ("nova-out", 1_200_000)), tagged=False, weekly=0.6, noise=0.2,
        start=date(2026, 2, 2)),
    App("lab-reasoning", "aws", "lab-research", "research", "protein-fold", "dev", "us-west-2",
        (("dsr1-in", 1_500_000), ("dsr1-out", 900_000)), tagged=False, weekly=0.7, noise=0.3,
        start=date(2026, 9, 7)),
    App("doc-search", "azure", "ai-prod", "vision", "doc-search", "prod", "eastus",
        (("4om-in", 90_000_000), ("4om-out", 9_000_000), ("4om-in-reg", 10_000_000), ("4om-out-reg", 1_000_000)),
        growth=0.05, weekly=0.4, noise=0.1, tag_style=1),
    App("doc-backfill", "azure", "ai-prod", "vision", "doc-search", "prod", "eastus",
        (("4om-in-batch", 150_000_000), ("4om-out-batch", 10_000_000)), weekly=0.9, noise=0.3,
        start=date(2026, 4, 6), tag_style=1),
    App("copilot", "azure", "ai-prod", "platform", "copilot", "prod", "eastus",
        (("g5-in", 12_000_000), ("g5-cached", 20_000_000), ("g5-out", 1_500_000)), growth=0.06, weekly=0.6,
        noise=0.1, start=date(2026, 3, 2), tag_style=0),
    # PTUs deployed (and reserved) for the copilot's gpt-5: samples/ai_commitments.py
    App("copilot-ptu", "azure", "ai-prod", "platform", "copilot", "prod", "eastus", (("ptu", 24 * 15),),
        start=date(2026, 8, 1), tag_style=0, extra_tags=(("model", "gpt-5"),)),
    App("research-agent", "gcp", "llm-research", "nlp", "research-agent", "dev", "us-central1",
        (("g25p-in", 20_000_000), ("g25p-out", 1_000_000), ("g25p-think", 2_500_000), ("g25p-cache", 30_000_000),
         ("g25p-in-long", 4_000_000), ("g25p-out-long", 200_000), ("g25p-storage", 20)),
        growth=0.03, weekly=0.5, noise=0.15, start=date(2026, 2, 2), tag_style=2, step=10_000),
)


@dataclass(frozen=True)
class Line:
    app: App
    meter: Meter
    day: date
    units: Decimal   # in the meter's pricing unit, as billed
    tokens: int      # 0 for capacity / storage meters
    cost: Decimal


def _tags(app: App, day: date) -> dict[str, str]:
    """The tags the bill carries (the kit's tag spellings per owner; none for untagged Bedrock on-demand calls)."""
    if app.provider == "aws" and not app.tagged:
        return {}
    w = Workload(app.name, app.provider, app.account, app.team, app.project, app.env, app.name, app.region, 1.0,
                 tag_style=app.tag_style, extra_tags=app.extra_tags)
    return model.tags_for(w, day)


def lines(provider: str, seed: int, account: str | None = None) -> list[Line]:
    """Every token / capacity line of ``provider`` (optionally one billing account's), in day and app order.
    Deterministic in ``seed``: the writers and :func:`facts` see the same lines."""
    out = []
    for app in APPS:
        if app.provider != provider or (account is not None and app.account != account):
            continue
        rng = random.Random(f"{seed}|ai-tokens|{app.name}")
        for d in model.days():
            noise = rng.gauss(0.0, 1.0)
            if d < app.start:
                continue
            f = (1.0 + app.growth) ** ((d - model.PERIOD_START).days / 30.4375)
            if d.weekday() >= 5:
                f *= 1.0 - app.weekly
            f *= max(0.05, 1.0 + app.noise * noise)
            vols = dict(app.volumes)
            if app.name == "support-bot" and d >= CACHE_ON:
                # prompt caching on: 75% of the prompt is a cached prefix, re-written to the cache now and then
                prompt = vols["cs4-in"]
                vols.update({"cs4-in": prompt // 4, "cs4-cr": prompt * 70 // 100, "cs4-cw": prompt * 5 // 100})
            if "ptu" in vols:  # PTUs deployed that day (samples/ai_commitments.py)
                vols["ptu"] = 24 * ai_commitments.ptus_deployed(d)
            counted: dict[str, int] = {}
            linked = {k: (src, div) for k, src, div in app.linked}
            for key, _ in app.volumes:
                m = METERS[key]
                v = vols[key]
                if key in linked:
                    src, div = linked[key]
                    tokens = counted.get(src, 0) // div
                    if tokens <= 0:
                        continue
                    units = D(tokens) / m.block
                    out.append(Line(app, m, d, units, tokens, units * m.price))
                    continue
                if v <= 0:
                    continue
                if m.token_type is None:  # hours of capacity or cache storage: whole hours, every day
                    units = D(v)
                    tokens = 0
                else:
                    tokens = max(app.step, round(v * f / app.step) * app.step)
                    units = D(tokens) / m.block
                counted[key] = tokens
                out.append(Line(app, m, d, units, tokens, units * m.price))
    return out


# ------------------------------------------------------------------------------------------------ writers

def aws_lines(lines_: Any, payer: str) -> None:
    """Add the Bedrock lines of ``payer``'s accounts to an :class:`~.aws_common.AwsLines` (CUR 2.0 and legacy)."""
    from .aws_common import ACCOUNTS, REGIONS, stable_hex

    accounts = [k for k, v in ACCOUNTS.items() if v[0] == payer]
    for ln in (x for a in accounts for x in lines("aws", lines_.seed, a)):
        app, m = ln.app, ln.meter
        _, _, acct, _ = ACCOUNTS[app.account]
        location = REGIONS[app.region][2]
        row = lines_._base(app.account, ln.day, ln.day + timedelta(days=1), "Usage", "AmazonBedrock")
        if m.token_type is None:
            rid = f"arn:aws:bedrock:{app.region}:{acct}:provisioned-model/{stable_hex(12, app.name)}"
            operation = "ProvisionedThroughput"
        elif app.tagged:
            rid = f"arn:aws:bedrock:{app.region}:{acct}:application-inference-profile/{stable_hex(12, app.name)}"
            operation = "InvokeModelInference"
        else:
            rid = ""  # on-demand invocation without an inference profile: no resource id, no tags
            operation = "InvokeModelInference"
        row.update({
            "lineItem/UsageType": m.name, "lineItem/Operation": operation, "lineItem/AvailabilityZone": "",
            "lineItem/ResourceId": rid, "lineItem/UsageAmount": ln.units,
            "lineItem/UnblendedRate": m.price, "lineItem/BlendedRate": m.price,
            "lineItem/LineItemDescription": f"${model.fmt(m.price)} per {m.unit} for {m.name} in {location}",
            "pricing/publicOnDemandCost": ln.cost, "pricing/publicOnDemandRate": m.price, "pricing/term": "OnDemand",
            "pricing/unit": m.unit,
        })
        row["_product"] = {"product_name": "Amazon Bedrock", "servicecode": "AmazonBedrock",
                           "product_family": "Amazon Bedrock", "region_code": app.region, "location": location,
                           "location_type": "AWS Region", "usagetype": m.name, "operation": operation,
                           "sku": stable_hex(16, m.name).upper(), "model": m.model or "DeepSeek-R1",
                           "region": app.region}
        row["_tags"] = _tags(app, ln.day)
        row["_cost_category"] = {"BusinessUnit": "Research" if app.team == "research" else "AI Platform"} \
            if app.team else {}
        lines_._add(row, ln.cost, ln.cost)


def azure_rows(rows: Any) -> None:
    """Add the Azure OpenAI lines to an :class:`~.azure.AzureRows` (the same row in actual and amortized: on-demand)."""
    import json

    from .aws_common import deterministic_uuid, stable_hex
    from .azure import SUBSCRIPTIONS

    for ln in lines("azure", rows.seed):
        app, m = ln.app, ln.meter
        if m.key == "ptu":  # PTU: on demand, then reserved (samples/ai_commitments.py)
            ai_commitments.azure_ptu_rows(rows, ln)
            continue
        sub, _ = SUBSCRIPTIONS[app.account]
        rg = f"rg-{app.team or 'shared'}-{app.env or 'misc'}"
        name = f"acme-aoai-{app.project}"
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"
        product = (f"Azure OpenAI - {m.name}" if m.token_type else "Azure OpenAI - Provisioned Managed Global")
        tags = _tags(app, ln.day)
        for target in (rows.actual, rows.amortized):
            row = rows._base(app.account, ln.day)
            row.update({
                "ServiceFamily": "AI + Machine Learning", "ConsumedService": "Microsoft.CognitiveServices",
                "MeterId": deterministic_uuid("meter", "aoai", m.name), "MeterName": m.name,
                "MeterCategory": "Cognitive Services", "MeterSubCategory": "Azure OpenAI", "MeterRegion": "US East",
                "ProductId": f"DZH318Z0{stable_hex(8, product).upper()}", "ProductName": product,
                "ResourceGroupName": rg, "ResourceId": rid, "ResourceLocation": app.region, "Location": "US East",
                "EffectivePrice": m.price, "Quantity": ln.units, "UnitOfMeasure": m.unit, "ChargeType": "Usage",
                "Frequency": "UsageBased", "PricingModel": "OnDemand", "PayGPrice": m.price, "UnitPrice": m.price,
                "AdditionalInfo": None, "Tags": json.dumps(tags, separators=(",", ":")) if tags else None,
            })
            target.append(rows._cost(row, ln.cost, ln.cost))


def gcp_rows(rows: Any) -> None:
    """Add the Vertex AI Gemini lines to a :class:`~.gcp.GcpRows`."""
    for ln in lines("gcp", rows.seed):
        app, m = ln.app, ln.meter
        labels = [{"key": k, "value": v} for k, v in _tags(app, ln.day).items()]
        if m.token_type is None:
            amount, unit = float(ln.units * 3600), "seconds"
        else:
            amount, unit = float(ln.units), "count"
        rows._row("vertex", m.name, app.account, ln.day, ln.day + timedelta(days=1), w=None, cost=ln.cost,
                  cost_at_list=ln.cost, amount=amount, unit=unit, pricing_amount=ln.units, pricing_unit=m.unit,
                  price=m.price, credits=[], labels=labels, region=app.region)


# ------------------------------------------------------------------------------------------------ planted facts

def _per_m(cost: Decimal, tokens: int) -> str:
    return str((cost * 1_000_000 / tokens).quantize(D("0.000001"), rounding=ROUND_HALF_UP)) if tokens else ""


def facts(seed: int, providers: tuple[str, ...] | list[str]) -> dict:
    """What the token analysis must find on the base sample: per provider, model and token type the tokens, cost
    and cost per 1M tokens (EffectiveCost = list here); the support bot's prompt-cache savings; the batch discount;
    the capacity lines; the unmatched model. All from the lines as written, exact."""
    names = {"aws": "AWS", "azure": "Microsoft", "gcp": "Google Cloud"}
    groups: dict[tuple[str, str, str], list] = defaultdict(lambda: [0, D(0)])
    capacity: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unmatched: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    cache_storage = D(0)
    tiers: dict[tuple[str, str, str, str], list] = defaultdict(lambda: [0, D(0)])
    for p in providers:
        for ln in lines(p, seed):
            m = ln.meter
            if m.model is None and m.token_type is not None:
                unmatched[(names[p], m.name)] += ln.cost
            elif m.token_type is None and m.key.endswith("storage"):
                cache_storage += ln.cost
            elif m.key == "ptu":  # amortized: reservation-covered PTU-hours at its rate plus the unused ones
                used, _, unused = ai_commitments.ptu_day_cost(ln.day, ln.units)
                capacity[(names[p], m.name)] += used + unused
            elif m.token_type is None:
                capacity[(names[p], m.name)] += ln.cost
            else:
                g = groups[(names[p], m.model, m.token_type)]
                g[0] += ln.tokens
                g[1] += ln.cost
                t = tiers[(names[p], m.model, m.token_type, m.tier)]
                t[0] += ln.tokens
                t[1] += ln.cost
    unit_costs = [{"provider": p, "model": mo, "token_type": tt, "tokens": n, "cost": str(c),
                   "cost_per_1m": _per_m(c, n)} for (p, mo, tt), (n, c) in sorted(groups.items())]
    doc: dict[str, Any] = {
        "note": "token lines of Bedrock (CUR 2.0 and legacy CUR), Azure OpenAI and Vertex AI Gemini "
                "(finops_kit/samples/ai_tokens.py); EffectiveCost = ListCost = BilledCost on these lines; "
                "cost_per_1m = cost x 1,000,000 / tokens rounded half up to 6 decimals",
        "unit_costs": unit_costs,
        "capacity": [{"provider": p, "usage_type": u, "cost": str(c)} for (p, u), c in sorted(capacity.items())],
        "unmatched": [{"provider": p, "usage_type": u, "cost": str(c), "reason": "no model rule matches"}
                      for (p, u), c in sorted(unmatched.items())],
        "break_even": ai_commitments.break_even_facts(seed, providers),
    }
    if "aws" in providers:
        # Claude Sonnet 4, on-demand standard tier: output unit cost, and what prompt caching saved
        out = tiers[("AWS", "Claude Sonnet 4", "output", "standard")]
        inp = tiers[("AWS", "Claude Sonnet 4", "input", "standard")]
        cr = tiers[("AWS", "Claude Sonnet 4", "cache read", "standard")]
        cw = tiers[("AWS", "Claude Sonnet 4", "cache write", "standard")]
        rate = inp[1] / inp[0]
        read_savings = cr[0] * rate - cr[1]
        write_premium = cw[1] - cw[0] * rate
        batch = tiers[("AWS", "Claude Sonnet 4", "output", "batch")]
        doc["headline"] = {
            "claude_sonnet_4_output_on_demand_per_1m": _per_m(out[1], out[0]),
            "claude_sonnet_4_output_batch_per_1m": _per_m(batch[1], batch[0]),
            "claude_sonnet_4_cache": {"tier": "standard", "input_tokens": inp[0], "cache_read_tokens": cr[0],
                                      "cache_write_tokens": cw[0],
                                      "cache_hit_share": str((D(cr[0]) / (inp[0] + cr[0] + cw[0])).quantize(
                                          D("0.000001"), rounding=ROUND_HALF_UP)),
                                      "read_savings": str(read_savings), "write_premium": str(write_premium),
                                      "net_savings": str(read_savings - write_premium),
                                      "caching_on": CACHE_ON.isoformat()},
        }
    if "gcp" in providers:
        doc["cache_storage"] = [{"provider": "Google Cloud", "model": "Gemini 2.5 Pro", "cost": str(cache_storage)}]
    return doc
