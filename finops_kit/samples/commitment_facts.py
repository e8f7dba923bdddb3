"""Planted commitment facts: what the sample writers billed for each reservation / savings plan, as they wrote it.

The writers call :func:`record` (per commitment and billing period) and :func:`record_family` (eligible and
committed instance-hours per provider and instance family) while they generate lines; ``PLANTED.json`` gets the
``commitments`` section from :func:`section`. The figures are the generator's own amounts (the same Decimals it
wrote into the exports), so a test that recovers them from the FOCUS table checks the whole path: native columns,
source mapping, units and :mod:`finops_kit.commitments`.

Figures are those of the base sample (``--rows`` replicates lines with new ids but not these records).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

FIELDS = ("hours", "used_hours", "unused_hours", "used_cost", "unused_cost")
#: Written only for the commitments whose writer records them: the on-demand (list) value of the usage a commitment
#: covered (AWS Savings Plans: ``pricing/publicOnDemandCost`` of their covered lines), the coverage in dollars.
OPTIONAL = ("covered_list_cost",)


def record(planted: Any, commitment_id: str, period: date, *, provider: str, kind: str, end: date | None = None,
           family: str | None = None, **amounts: Decimal) -> None:
    """Add ``amounts`` (any of :data:`FIELDS`, per billing period; :data:`OPTIONAL` ones, per commitment) to one
    commitment."""
    c = planted.commitments.setdefault(commitment_id, {"provider": provider, "type": kind, "end": end,
                                                       "families": set(), "periods": {}})
    if family:
        c["families"].add(family)
    p = c["periods"].setdefault(period, dict.fromkeys(FIELDS, Decimal(0)))
    for k, v in amounts.items():
        if k in OPTIONAL:
            c.setdefault("optional", dict.fromkeys(OPTIONAL, Decimal(0)))[k] += Decimal(v)
            continue
        p[k] += Decimal(v)


def record_family(planted: Any, provider: str, family: str, *, hours: Decimal, committed: Decimal) -> None:
    """Eligible (on-demand or committed, not spot) instance-hours of one instance family, and the committed part."""
    f = planted.commitments.setdefault("_families", {}).setdefault((provider, family), [Decimal(0), Decimal(0)])
    f[0] += Decimal(hours)
    f[1] += Decimal(committed)


def record_gcp(planted: Any, commitment_id: str, period: date, *, committed_hours: Decimal, unused_hours: Decimal,
               fee: Decimal, unused_cost: Decimal) -> None:
    """A GCP resource-based CUD's day: hours committed and left unused, the fee and the unused part's cost (unused
    hours x the commitment's hourly price). Kept apart from :func:`record`: the kit derives the covered hours from the
    credit amounts (credit / on-demand price), exact to the credits' 6 decimals, not to the generator's Decimals."""
    g = planted.commitments.setdefault("_gcp", {}).setdefault(commitment_id, {})
    p = g.setdefault(period, dict.fromkeys(("committed_hours", "unused_hours", "fee", "unused_cost"), Decimal(0)))
    p["committed_hours"] += committed_hours
    p["unused_hours"] += unused_hours
    p["fee"] += fee
    p["unused_cost"] += unused_cost


def _ratio(a: Decimal, b: Decimal) -> str | None:
    return str(a / b) if b else None


def section(planted: Any) -> dict:
    """The ``commitments`` section of PLANTED.json: per commitment its totals, utilization (used / (used + unused)
    cost), end date and per-period figures; per provider and family the eligible hours and coverage."""
    items = []
    for cid, c in sorted(planted.commitments.items()):
        if cid.startswith("_"):
            continue
        tot = dict.fromkeys(FIELDS, Decimal(0))
        periods = []
        for bp, p in sorted(c["periods"].items()):
            for k in FIELDS:
                tot[k] += p[k]
            periods.append({"billing_period": f"{bp:%Y-%m}", **{k: str(v) for k, v in p.items()},
                            "utilization": _ratio(p["used_cost"], p["used_cost"] + p["unused_cost"])})
        items.append({"provider": c["provider"], "commitment_id": cid, "type": c["type"],
                      "end_date": c["end"].isoformat() if c["end"] else None,
                      "families": sorted(c["families"]), **{k: str(v) for k, v in tot.items()},
                      "utilization": _ratio(tot["used_cost"], tot["used_cost"] + tot["unused_cost"]),
                      **{k: str(v) for k, v in c.get("optional", {}).items()},
                      "periods": periods})
    fams = [{"provider": prov, "instance_family": fam, "eligible_hours": str(h), "committed_hours": str(ch),
             "coverage_hours": _ratio(ch, h)}
            for (prov, fam), (h, ch) in sorted(planted.commitments.get("_families", {}).items())]
    gcp = [{"provider": "Google Cloud", "commitment_id": cid, "type": "Committed Use Discount",
            "periods": [{"billing_period": f"{bp:%Y-%m}", **{k: str(v) for k, v in p.items()}}
                        for bp, p in sorted(per.items())]}
           for cid, per in sorted(planted.commitments.get("_gcp", {}).items())]
    return {"note": "generator's own amounts (base sample): utilization = used / (used + unused) EffectiveCost; "
                    "coverage = committed / eligible (on-demand + committed, not spot) instance-hours; gcp_cud: "
                    "resource-based CUD hours committed and unused per billing period, unused cost = unused hours x "
                    "the commitment's hourly price",
            "commitments": items, "families": fams, "gcp_cud": gcp}
