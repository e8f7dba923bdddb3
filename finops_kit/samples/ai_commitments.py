"""Provisioned AI throughput as a commitment, in the providers' native shapes, and its planted break-even.

Why: PTU and provisioned throughput are commitments (an hourly price whether or not tokens flow), and whether one
pays off is a break-even question against the same model's pay-as-you-go tokens. The sample bill therefore has,
for each provider, the capacity line *and* pay-as-you-go tokens of the same model:

* **Azure OpenAI PTU reservation** (copilot, gpt-5): 15 PTUs of Global Provisioned Managed deployed from 2026-08-01,
  covered from that day by a 1-year PTU reservation for 15 PTUs, paid monthly, as Azure bills a reservation: the *actual* export carries the monthly ``Purchase`` and
  the covered PTU-hours at 0, the *amortized* export the covered PTU-hours at the reservation's hourly rate with the
  reservation id (``PricingModel`` Reservation) and, after the deployment shrank to 10 PTUs on 2026-10-15, an
  ``UnusedReservation`` row per day for the 5 idle PTUs. The PTU account carries a ``model`` tag (the PTU meter is
  the same for every model: the tag is where the bill says which model the capacity serves). Pay-as-you-go gpt-5
  tokens of the same application are :mod:`.ai_tokens`' ``copilot`` lines.
* **Bedrock provisioned throughput** (ranker, Claude 3.5 Haiku): the model units of :mod:`.ai_tokens`' ``ranker-pt``
  and, from 2026-03-02, on-demand Claude 3.5 Haiku tokens of the same team (``ranker-rerank``: input and output in
  an exact 10:1 mix, so the break-even has a closed form, see :func:`break_even_facts`).

:func:`break_even_facts` recomputes both from the lines as written (exact Decimals) for ``PLANTED.json``.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import commitment_facts, model

D = Decimal
#: PTUs deployed for the copilot (the ``ptu`` meter of :mod:`.ai_tokens`, billed in PTU-hours)
PTU_DEPLOYED = ((date(2026, 8, 1), 15), (date(2026, 10, 15), 10))
#: list price of one PTU-hour of Global Provisioned Managed (pay-as-you-go PTU, 2026, approx.)
PTU_HOURLY = D("1")
#: 1-year Azure OpenAI PTU reservation: 2,652 per PTU per year, billed monthly; its hourly rate is what one reserved
#: PTU-hour costs in the amortized export
PTU_RESERVED = 15
PTU_RESERVATION_START = date(2026, 8, 1)
PTU_RESERVATION_END = date(2027, 8, 1)
PTU_RESERVATION_HOURLY = model.money(D(2652) / 8760, 6)
PTU_RESERVATION_NAME = "AOAI_PTU_Global_eastus_1y"
PTU_PRODUCT = "Azure OpenAI Service Provisioned Managed, Global, 1 Year"
PTU_MODEL = "gpt-5"
#: the Bedrock pair: capacity usage type key and the on-demand token meters of the same model (see .ai_tokens)
BEDROCK_CAPACITY = "h35-pt"
BEDROCK_PAYG = ("h35-in", "h35-out")


def ptus_deployed(day: date) -> int:
    """PTUs deployed on ``day`` (0 before the deployment)."""
    n = 0
    for start, count in PTU_DEPLOYED:
        if day >= start:
            n = count
    return n


def reserved(day: date) -> bool:
    return PTU_RESERVATION_START <= day < PTU_RESERVATION_END


def _reservation() -> Any:
    from .azure import Commitment

    return Commitment("Reservation", PTU_RESERVATION_NAME, PTU_RESERVATION_START, PTU_RESERVATION_END,
                      PTU_RESERVATION_HOURLY, D(1) - PTU_RESERVATION_HOURLY / PTU_HOURLY, count=PTU_RESERVED)


def ptu_day_cost(day: date, ptu_hours: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(amortized cost of the deployed PTU-hours, unused reserved PTU-hours, their amortized cost) of one day."""
    if not reserved(day):
        return ptu_hours * PTU_HOURLY, D(0), D(0)
    used = min(ptu_hours, D(PTU_RESERVED * 24))
    unused = D(PTU_RESERVED * 24) - used
    return model.money(used * PTU_RESERVATION_HOURLY, 10), unused, model.money(unused * PTU_RESERVATION_HOURLY, 10)


# ------------------------------------------------------------------------------------------------ Azure rows

def azure_ptu_rows(rows: Any, ln: Any) -> None:
    """The copilot's PTU line of one day in the Azure exports: on demand before the reservation; reservation-covered
    (actual 0, amortized at the reservation rate, with the reservation id) and the day's unused reserved PTU-hours
    (amortized only, ``UnusedReservation``) after it. Records the reservation's planted facts."""
    from .aws_common import deterministic_uuid, stable_hex
    from .azure import SUBSCRIPTIONS

    app, m, day = ln.app, ln.meter, ln.day
    sub, _ = SUBSCRIPTIONS[app.account]
    rg = f"rg-{app.team or 'shared'}-{app.env or 'misc'}"
    rid = (f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/"
           f"acme-aoai-{app.project}-ptu")
    product = "Azure OpenAI - Provisioned Managed Global"
    from .ai_tokens import _tags

    tags = _tags(app, day)
    res = _reservation()
    used_cost, unused_hours, unused_cost = ptu_day_cost(day, ln.units)
    meter = {"ServiceFamily": "AI + Machine Learning", "ConsumedService": "Microsoft.CognitiveServices",
             "MeterId": deterministic_uuid("meter", "aoai", m.name), "MeterName": m.name,
             "MeterCategory": "Cognitive Services", "MeterSubCategory": "Azure OpenAI", "MeterRegion": "US East",
             "ProductId": f"DZH318Z0{stable_hex(8, product).upper()}", "ProductName": product,
             "UnitOfMeasure": m.unit, "Location": "US East", "PayGPrice": PTU_HOURLY, "UnitPrice": PTU_HOURLY}
    benefit = {"benefitId": res.benefit_id, "benefitName": res.name, "ProductOrderId": res.order,
               "ProductOrderName": PTU_PRODUCT, "ReservationId": res.ident, "ReservationName": res.name, "Term": "12"}
    for target, cost in ((rows.actual, None), (rows.amortized, used_cost)):
        row = rows._base(app.account, day)
        row.update(meter)
        row.update({"ResourceGroupName": rg, "ResourceId": rid, "ResourceLocation": app.region,
                    "Quantity": ln.units, "ChargeType": "Usage", "Frequency": "UsageBased",
                    "AdditionalInfo": None, "Tags": json.dumps(tags, separators=(",", ":")) if tags else None})
        if reserved(day):
            row.update(benefit)
            row.update({"PricingModel": "Reservation",
                        "EffectivePrice": D(0) if cost is None else PTU_RESERVATION_HOURLY})
            target.append(rows._cost(row, D(0) if cost is None else cost, ln.units * PTU_HOURLY))
        else:
            row.update({"PricingModel": "OnDemand", "EffectivePrice": PTU_HOURLY})
            target.append(rows._cost(row, ln.cost, ln.cost))
    if not reserved(day):
        return
    bp = day.replace(day=1)
    commitment_facts.record(rows.planted, res.benefit_id, bp, provider="Microsoft", kind="Reservation",
                            used_hours=ln.units, used_cost=used_cost, hours=D(PTU_RESERVED * 24))
    if unused_hours:
        commitment_facts.record(rows.planted, res.benefit_id, bp, provider="Microsoft", kind="Reservation",
                                unused_hours=unused_hours, unused_cost=unused_cost)
        row = rows._base(app.account, day)
        row.update(meter)
        row.update(benefit)
        row.update({"ChargeType": "UnusedReservation", "Frequency": "UsageBased", "PricingModel": "Reservation",
                    "Quantity": unused_hours, "EffectivePrice": PTU_RESERVATION_HOURLY, "PayGPrice": None,
                    "UnitPrice": None})
        rows.amortized.append(rows._cost(row, unused_cost, D(0)))


def azure_ptu_purchases(rows: Any) -> None:
    """The reservation's monthly payments (actual export, ``Purchase``, Recurring) on its anniversary day."""
    res = _reservation()
    for bp in model.billing_periods():
        day = bp.replace(day=min(res.start.day, model.days_in_month(bp)))
        if not (res.start <= day < res.end) or day >= model.TODAY:
            continue
        amount = res.monthly_payment()
        row = rows._base("ai-prod", day)
        row.update({
            "ServiceFamily": "AI + Machine Learning", "ConsumedService": None, "ChargeType": "Purchase",
            "Frequency": "Recurring", "PricingModel": "Reservation", "Quantity": D(PTU_RESERVED),
            "UnitOfMeasure": "1 Hour", "EffectivePrice": amount, "UnitPrice": amount, "MeterCategory": None,
            "ProductName": PTU_PRODUCT, "ProductOrderId": res.order, "ProductOrderName": PTU_PRODUCT,
            "benefitId": res.benefit_id, "benefitName": res.name, "Term": "12",
            "ReservationId": res.ident, "ReservationName": res.name,
        })
        rows.actual.append(rows._cost(row, amount, D(0)))


def reservation_id() -> str:
    return _reservation().benefit_id


# ------------------------------------------------------------------------------------------------ planted facts

def _q(x: Decimal, places: str = "0.000001") -> str:
    return str(x.quantize(D(places), rounding=ROUND_HALF_UP))


def break_even_facts(seed: int, providers: tuple[str, ...] | list[str]) -> list[dict]:
    """Per provider and model with capacity: the capacity's cost and hours (distinct charge hours: one day of
    capacity is 24 h however many rows bill it), its hourly price, the model's pay-as-you-go tokens and cost, and

        break-even tokens per hour = hourly capacity price / pay-as-you-go price per token
                                   = hourly price x pay-as-you-go tokens / pay-as-you-go cost

    (the price per token is the model's blended price over its own billed mix of token types), the days whose
    pay-as-you-go tokens alone averaged more than that per hour, and the hours per day above it (daily bills: 24 h
    on such a day). Whole sample window; exact from the generator's lines."""
    from .ai_tokens import lines

    out = []
    names = {"aws": "AWS", "azure": "Microsoft"}
    for p, key, payg_keys in (("aws", BEDROCK_CAPACITY, BEDROCK_PAYG), ("azure", "ptu", None)):
        if p not in providers:
            continue
        ls = lines(p, seed)
        cap = [ln for ln in ls if ln.meter.key == key]
        mdl = cap[0].meter.model or PTU_MODEL
        cost = D(0)
        for ln in cap:
            if p == "azure":
                used, _, unused = ptu_day_cost(ln.day, ln.units)
                cost += used + unused
            else:
                cost += ln.cost
        hours = D(24 * len({ln.day for ln in cap}))
        payg = [ln for ln in ls if ln.meter.token_type is not None and ln.meter.model == mdl
                and (payg_keys is None or ln.meter.key in payg_keys)]
        tokens = sum(ln.tokens for ln in payg)
        payg_cost = sum((ln.cost for ln in payg), D(0))
        hourly = cost / hours
        be = hourly * tokens / payg_cost
        per_day: dict[date, int] = {}
        for ln in payg:
            per_day[ln.day] = per_day.get(ln.day, 0) + ln.tokens
        above = sum(1 for v in per_day.values() if D(v) / 24 > be)
        mix = {}
        for ln in payg:
            mix[ln.meter.token_type] = mix.get(ln.meter.token_type, 0) + ln.tokens
        out.append({"provider": names[p], "model": mdl, "capacity_usage_type": cap[0].meter.name,
                    "capacity_cost": str(cost), "capacity_hours": str(hours), "hourly_cost": str(hourly),
                    "payg_tokens": tokens, "payg_cost": str(payg_cost), "payg_mix": mix,
                    "payg_prices_per_token": {ln.meter.token_type: str(ln.meter.price / ln.meter.block)
                                              for ln in payg},
                    "break_even_tokens_per_hour": _q(be), "payg_days": len(per_day), "days_payg_above": above,
                    "hours_per_day_above": _q(D(24 * above) / len(per_day)) if per_day else None})
    return out
