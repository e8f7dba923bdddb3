"""Writer: GCP Cloud Billing detailed (resource-level) export rows, as BigQuery exports them to JSON.

One gzip newline-delimited JSON file per invoice month, each line a BigQuery row with the export's nested
fields: ``service{id,description}``, ``sku{id,description}``, ``project{id,number,name,labels[],...}``,
``labels[]``, ``system_labels[]``, ``location{...}``, ``resource{name,global_name}``, ``price{...}``, ``cost``,
``cost_at_list``, ``currency``, ``usage{amount,unit,amount_in_pricing_units,pricing_unit}``,
``credits[]{name,amount,full_name,id,type}``, ``invoice{month}``, ``cost_type``, ``adjustment_info``.
Timestamps are written the way BigQuery writes TIMESTAMP to JSON (``2026-01-05 00:00:00 UTC``).

Mechanics: a VM-day is one row per SKU component (cores in vCPU-seconds, RAM in byte-seconds, GPUs in GPU-seconds,
as real exports bill an a2-highgpu-8g: 96 vCPU, 680 GiB, 8 x A100 40GB at us-central1 list prices), and a VM runs at
most 24 h a day (a fleet of 48 instance-hours is two VMs); spot VMs use the "Spot Preemptible"
SKUs; a resource-based CUD on A100 GPUs bills a daily commitment fee and gives COMMITTED_USAGE_DISCOUNT
credits on covered GPU usage; the new spend-based CUD model bills Vertex AI prediction at the discounted rate
(``cost_at_list`` keeps the list price) with a daily fee offset by FEE_UTILIZATION_OFFSET credits; sustained
use, promotion and free-tier credits; zero, one or several credits per row; monthly tax, rounding errors and
one manual adjustment. Net cost = cost + sum(credits.amount), per invoice month.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from . import ai_tokens, commitment_facts, model
from ._write import replication
from .aws_common import stable_hex
from .model import Planted, Workload, money

BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
PROJECTS = {
    "vision-prod": ("acme-vision-prod", "412845530187", "Vision Prod", {"cost-center": "cc-1001"}),
    "llm-research": ("acme-llm-research", "583190447725", "LLM Research", {"cost-center": "cc-1002"}),
    "recsys-prod": ("acme-recsys-prod", "739025118462", "Recsys Prod", {"cost-center": "cc-1003"}),
    "platform-shared": ("acme-platform-shared", "268407735901", "Platform Shared", {}),
}
SERVICES = {
    "compute": ("6F81-5844-456A", "Compute Engine"),
    "storage": ("95FF-2EF5-5EA1", "Cloud Storage"),
    "vertex": ("C7E2-9256-1C43", "Vertex AI"),
    "network": ("E505-1604-58F8", "Networking"),
    "invoice": ("", "Invoice"),
}
GIB = 1 << 30

# component = (service, sku description, usage unit, pricing unit, $ per pricing unit, pricing units per
#              VM-hour (or per workload unit), kind). Prices: us-central1 list prices as of 2026 (approx.).
_A2 = [("compute", "A2 Instance Core running in Americas", "seconds", "hour", "0.031611", 96, "core"),
       ("compute", "A2 Instance Ram running in Americas", "byte-seconds", "gibibyte hour", "0.004237", 680, "ram"),
       ("compute", "Nvidia Tesla A100 GPU running in Americas", "seconds", "hour", "2.933908", 8, "gpu")]
_A3 = [("compute", "A3 Instance Core running in Americas", "seconds", "hour", "0.028667", 208, "core"),
       ("compute", "A3 Instance Ram running in Americas", "byte-seconds", "gibibyte hour", "0.003843", 1872, "ram"),
       ("compute", "Nvidia H100 80GB GPU running in Americas", "seconds", "hour", "9.396500", 8, "gpu")]
_N1T4 = [("compute", "N1 Predefined Instance Core running in Americas", "seconds", "hour", "0.031611", 8, "core"),
         ("compute", "N1 Predefined Instance Ram running in Americas", "byte-seconds", "gibibyte hour",
          "0.004237", 30, "ram"),
         ("compute", "Nvidia Tesla T4 GPU running in Americas", "seconds", "hour", "0.350000", 1, "gpu")]
_G2 = [("compute", "G2 Instance Core running in Americas", "seconds", "hour", "0.024890", 8, "core"),
       ("compute", "G2 Instance Ram running in Americas", "byte-seconds", "gibibyte hour", "0.002916", 32, "ram"),
       ("compute", "Nvidia L4 GPU running in Americas", "seconds", "hour", "0.560000", 1, "gpu")]
SPOT_FACTOR = {"a2-highgpu-8g": Decimal("0.35"), "a3-highgpu-8g": Decimal("0.40")}
VMS = {"a2-highgpu-8g": _A2, "a3-highgpu-8g": _A3, "n1-standard-8-t4": _N1T4, "g2-standard-8": _G2}
OTHER = {
    "vertex-train-a100": ("vertex", "Custom model training Nvidia A100 GPU running in Americas", "seconds",
                          "hour", "3.372965", 1, "gpu"),
    "vertex-predict-l4": ("vertex", "Online/Batch Prediction: g2-standard-8 with NVIDIA L4 in Americas",
                          "seconds", "hour", "1.135600", 1, "hours"),
    "gemini-flash-in": ("vertex", "Gemini 2.5 Flash Text Input - Predictions", "count", "count", "0.0000003",
                        1000, "tokens"),
    "gemini-flash-out": ("vertex", "Gemini 2.5 Flash Text Output - Predictions", "count", "count", "0.0000025",
                         1000, "tokens"),
    "gcs-standard": ("storage", "Standard Storage US Multi-region", "byte-seconds", "gibibyte month", "0.026",
                     1, "gbmo"),
    "gcs-nearline": ("storage", "Nearline Storage US Multi-region", "byte-seconds", "gibibyte month", "0.010",
                     1, "gbmo"),
    "gcs-coldline": ("storage", "Coldline Storage US Multi-region", "byte-seconds", "gibibyte month", "0.004",
                     1, "gbmo"),
    "gcs-archive": ("storage", "Archive Storage US Multi-region", "byte-seconds", "gibibyte month", "0.0012",
                    1, "gbmo"),
    "gcs-class-a": ("storage", "Multi-Region Standard Class A Operations", "requests", "requests",
                    "0.00001", 1000, "ops"),
    "gcs-coldline-retrieval": ("storage", "Coldline Data Retrieval US Multi-region", "bytes", "gibibyte",
                               "0.02", 1, "gb"),
    "gcs-nearline-early-delete": ("storage", "Nearline Storage Early Delete US Multi-region", "byte-seconds",
                                  "gibibyte month", "0.010", 1, "gbmo1"),
    "gce-egress-americas": ("compute", "Network Internet Data Transfer Out from Americas to Americas", "bytes",
                            "gibibyte", "0.12", 1, "gb"),
    "gce-inter-region": ("compute", "Network Inter Region Data Transfer Out from Americas to Americas",
                         "bytes", "gibibyte", "0.02", 1, "gb"),
    "cloud-nat": ("network", "Networking Cloud NAT Data Processing", "bytes", "gibibyte", "0.045", 1, "gb"),
    "cdn-egress": ("network", "Networking Cloud CDN Cache Data Transfer Out North America", "bytes",
                   "gibibyte", "0.08", 1, "gb"),
}
CUD_A100_GPUS = 8
#: subscription.instance_id of the commitments' fee rows (a GUID, as the CUD metadata export and the billing export
#: of the spend-based CUD model state it)
CUD_A100_SUBSCRIPTION = "6f3a1c9e-2b7d-4e58-9a14-0c8d5e2f7b31"
CUD_FLEX_SUBSCRIPTION = "b82e4d17-9c3a-4f06-8e55-1a7c3d9b2e60"
CUD_A100_RATE = Decimal("1.848362")  # 1-year resource-based commitment price per A100 GPU-hour
FLEX_FROM = date(2026, 1, 1)
FLEX_DISCOUNT = Decimal("0.28")
FLEX_DAILY = Decimal("30")  # spend-based commitment, $ per day at the discounted rate
PROMO_BUDGET = Decimal("3000")


def _ts(d: date) -> str:
    return f"{d.isoformat()} 00:00:00 UTC"


def _sku_id(desc: str) -> str:
    h = stable_hex(12, "gcp-sku", desc).upper()
    return f"{h[:4]}-{h[4:8]}-{h[8:12]}"


def _labels(tags: dict[str, str]) -> list[dict]:
    """GCP label keys and values are lower case (letters, digits, '-' and '_'): anything else becomes '_', so an
    owner e-mail arrives as ``vision-leads_acme_example`` (and fails the policy's e-mail pattern, as in real bills)."""
    out = {}
    for k, v in tags.items():
        out[re.sub(r"[^a-z0-9_-]", "_", k.lower())] = re.sub(r"[^a-z0-9_-]", "_", v.lower())
    return [{"key": k, "value": v} for k, v in out.items()]


def _vm_hours(u: model.Usage, instances: int) -> list[tuple[Decimal, Decimal]]:
    """(hours, baseline hours) per VM of a workload-day: a VM runs at most 24 hours a day.

    ``instances`` VMs share the day evenly when that fits (an endpoint fleet); otherwise a steady VM runs 24 h
    and burst VMs take the rest (a training fleet of 48 instance-hours a day is two VMs, not one VM billed 48 h).
    """
    q, b = u.quantity, u.baseline
    n = max(1, instances)
    if q <= 24 * n and b <= 24 * n:
        return [(Decimal(repr(q / n)), Decimal(repr(b / n)))] * n
    out = []
    while q > 1e-9 or b > 1e-9:
        hq, hb = min(q, 24.0), min(b, 24.0)
        out.append((Decimal(repr(round(hq, 6))), Decimal(repr(round(hb, 6)))))
        q, b = max(0.0, q - hq), max(0.0, b - hb)
    return out


class GcpRows:
    def __init__(self, seed: int, planted: Planted):
        self.seed = seed
        self.planted = planted
        self.rows: list[dict] = []
        self.promo_left = PROMO_BUDGET

    def _row(self, service: str, sku: str, project_key: str, start: date, end: date, *, w: Workload | None,
             cost: Decimal, cost_at_list: Decimal, amount: float, unit: str, pricing_amount: Decimal,
             pricing_unit: str, price: Decimal, credits: list[dict], cost_type: str = "regular",
             labels: list[dict] | None = None, system_labels: list[dict] | None = None,
             resource: tuple[str, str] | None = None, zone: str | None = None, region: str | None = "us-central1",
             adjustment: dict | None = None) -> dict:
        pid, pnum, pname, plabels = PROJECTS[project_key]
        sid, sdesc = SERVICES[service]
        loc = region or "global"
        row = {
            "billing_account_id": BILLING_ACCOUNT,
            "service": {"id": sid, "description": sdesc},
            "sku": {"id": _sku_id(sku) if sku != "Tax" else "", "description": sku},
            "usage_start_time": _ts(start),
            "usage_end_time": _ts(end),
            "project": {"id": pid, "number": pnum, "name": pname,
                        "labels": [{"key": k, "value": v} for k, v in plabels.items()],
                        "ancestry_numbers": f"/493817260045/{pnum}/",
                        "ancestors": [{"resource_name": f"projects/{pnum}", "display_name": pid},
                                      {"resource_name": "organizations/493817260045", "display_name": "acme.ai"}]},
            "labels": labels or [],
            "system_labels": system_labels or [],
            "location": {"location": zone or loc, "country": "US" if region else None, "region": region,
                         "zone": zone},
            "resource": {"name": resource[0], "global_name": resource[1]} if resource else
                        {"name": None, "global_name": None},
            "tags": [],
            "price": {"effective_price": float(price), "tier_start_amount": 0.0, "unit": pricing_unit,
                      "pricing_unit_quantity": 1.0},
            "transaction_type": "GOOGLE",
            "seller_name": "Google",
            "export_time": f"{(end + timedelta(days=1)).isoformat()} 06:{int(stable_hex(2, sku), 16) % 60:02d}:00 UTC",
            "cost": float(cost),
            "cost_at_list": float(cost_at_list),
            "currency": "USD",
            "currency_conversion_rate": 1.0,
            "usage": {"amount": amount, "unit": unit, "amount_in_pricing_units": float(pricing_amount),
                      "pricing_unit": pricing_unit},
            "credits": credits,
            "invoice": {"month": f"{start:%Y%m}", "publisher_type": "GOOGLE"},
            "cost_type": cost_type,
            "adjustment_info": adjustment or {"id": None, "description": None, "mode": None, "type": None},
            "_bp": start.replace(day=1),
            "_net": cost + sum((Decimal(repr(c["amount"])) for c in credits), Decimal(0)),
        }
        self.rows.append(row)
        return row

    # ------------------------------------------------------------------------------------------------
    def usage(self, workloads: list[Workload]) -> None:
        per_day = model.usage_by_day(workloads, self.seed)
        for d in per_day:
            cud_left = Decimal(CUD_A100_GPUS * 24)
            flex_used = Decimal(0)
            fee_rows = []
            for u in per_day[d]:
                flex_used += self._workload_day(u, d, cud_left_ref := [cud_left])
                cud_left = cud_left_ref[0]
            # daily commitment fees (resource-based A100 CUD, spend-based flex CUD with its offset credit)
            fee = money(CUD_A100_RATE * CUD_A100_GPUS * 24, 6)
            fee_rows.append(self._row("compute", "Commitment v1: A100 GPU in Americas for 1 Year", "vision-prod", d,
                                      d + timedelta(days=1), w=None, cost=fee, cost_at_list=fee, amount=86400.0 * 8,
                                      unit="seconds", pricing_amount=Decimal(192), pricing_unit="hour",
                                      price=CUD_A100_RATE, credits=[]))
            fee_rows[-1]["subscription"] = {"instance_id": CUD_A100_SUBSCRIPTION,
                                            "display_name": "a100-us-central1-1y"}
            # GPU-hours the commitment did not cover that day (weekends: the fleet runs below 8 GPUs)
            commitment_facts.record_gcp(self.planted, CUD_A100_SUBSCRIPTION, d.replace(day=1),
                                        committed_hours=Decimal(CUD_A100_GPUS * 24), unused_hours=cud_left,
                                        fee=fee, unused_cost=money(cud_left * CUD_A100_RATE, 10))
            if d >= FLEX_FROM:
                offset = min(FLEX_DAILY, flex_used)
                credits = [{"name": "Committed use discount: fee utilization offset",
                            "amount": -float(money(offset, 6)), "full_name": "Fee utilization offset",
                            "id": "FEE_UTILIZATION_OFFSET-vertex-prediction", "type": "FEE_UTILIZATION_OFFSET"}
                           ] if offset > 0 else []
                flex = self._row("vertex", "Commitment - dollar based v1: Vertex AI Prediction for 1 Year",
                                 "recsys-prod", d, d + timedelta(days=1), w=None, cost=FLEX_DAILY,
                                 cost_at_list=FLEX_DAILY, amount=float(FLEX_DAILY), unit="requests",
                                 pricing_amount=FLEX_DAILY, pricing_unit="count", price=Decimal(1), credits=credits)
                flex["subscription"] = {"instance_id": CUD_FLEX_SUBSCRIPTION,
                                        "display_name": "vertex-prediction-flex-1y"}

    def _workload_day(self, u: model.Usage, d: date, cud_left: list[Decimal]) -> Decimal:
        """Rows of one workload-day; returns the discounted spend that counts against the flex commitment."""
        w = u.workload
        end = d + timedelta(days=1)
        labels = _labels(model.tags_for(w, d))
        flex = Decimal(0)
        zone = f"{w.region}-{'abcf'[int(stable_hex(2, w.name), 16) % 4]}" if w.region != "us" else None
        region = w.region if w.region != "us" else None
        if w.sku in VMS:
            comps = VMS[w.sku]
            spot = w.pricing == "spot"
            factor = SPOT_FACTOR.get(w.sku, Decimal(1)) if spot else Decimal(1)
            sys_labels = [{"key": "compute.googleapis.com/machine_spec", "value": w.sku.replace("-t4", "")},
                          {"key": "compute.googleapis.com/cores", "value": str(comps[0][5])},
                          {"key": "compute.googleapis.com/memory", "value": str(comps[1][5] * 1024)}]
            for i, (hours, base_hours) in enumerate(_vm_hours(u, w.instances)):
                name = f"{w.name}-{i + 1}"
                pid = PROJECTS[w.account][0]
                res = (name, f"//compute.googleapis.com/projects/{pid}/zones/{zone}/instances/"
                             f"{int(stable_hex(15, w.name, i), 16)}")
                for service, desc, unit, punit, price, per, kind in comps:
                    desc = f"Spot Preemptible {desc}" if spot else desc
                    p = money(Decimal(price) * factor, 6)
                    qty = money(hours * per, 6)
                    cost = money(qty * p, 6)
                    base_cost = money(money(base_hours * per, 6) * p, 6)
                    amount = float(qty * 3600) if unit == "seconds" else float(qty * 3600 * GIB)
                    credits = []
                    if kind == "gpu" and w.commit == "cud-a100" and not spot:
                        covered = min(qty, cud_left[0])
                        cud_left[0] -= covered
                        if covered > 0:
                            credits.append({"name": "Committed use discount: A100 GPU",
                                            "amount": -float(money(covered * p, 6)),
                                            "full_name": "Committed use discount: A100 GPU (1 year)",
                                            "id": "CommittedUsageDiscount-a100-1y",
                                            "type": "COMMITTED_USAGE_DISCOUNT"})
                    if w.sku == "n1-standard-8-t4":
                        credits.append({"name": "Sustained usage discount",
                                        "amount": -float(money(cost * Decimal("0.30"), 6)),
                                        "full_name": "Sustained usage discount", "id": f"SUD-{_sku_id(desc)}",
                                        "type": "SUSTAINED_USAGE_DISCOUNT"})
                        if d < date(2025, 12, 1):
                            credits.append({"name": "Startup program credit",
                                            "amount": -float(money(cost * Decimal("0.70"), 6)),
                                            "full_name": "Google for Startups Cloud Program",
                                            "id": "PROMO-startups-2025", "type": "PROMOTION"})
                    row = self._row(service, desc, w.account, d, end, w=w, cost=cost, cost_at_list=cost,
                                    amount=amount, unit=unit, pricing_amount=qty, pricing_unit=punit, price=p,
                                    credits=credits, labels=labels, system_labels=sys_labels, resource=res,
                                    zone=zone)
                    self._delta(u, row, cost - base_cost)
            return flex
        service, desc, unit, punit, price, per, kind = OTHER[w.sku]
        p = Decimal(price)
        q = Decimal(repr(u.quantity))
        qb = Decimal(repr(u.baseline))
        dim = model.days_in_month(d)
        if kind == "gbmo":
            pq, pqb = money(q / dim, 6), money(qb / dim, 6)
            amount = float(money(q * GIB * 86400, 0))
        elif kind == "gbmo1":
            pq, pqb = money(q, 6), money(qb, 6)
            amount = float(money(q * GIB * 86400 * dim, 0))
        elif kind == "gb":
            pq, pqb = money(q, 6), money(qb, 6)
            amount = float(money(q * GIB, 0))
        elif kind in ("tokens", "ops"):
            pq, pqb = money(q * per, 0), money(qb * per, 0)
            amount = float(pq)
        else:  # hours
            pq, pqb = money(q, 6), money(qb, 6)
            amount = float(pq * 3600)
        list_cost = money(pq * p, 6)
        cost = list_cost
        base_cost = money(pqb * p, 6)
        credits = []
        if w.commit == "flex-cud" and d >= FLEX_FROM:
            cost = money(list_cost * (1 - FLEX_DISCOUNT), 6)  # new spend-based CUD model: discounted price
            base_cost = money(base_cost * (1 - FLEX_DISCOUNT), 6)
            flex = cost
        if w.sku.startswith("gemini") and self.promo_left > 0:
            amt = min(cost, self.promo_left)
            self.promo_left -= amt
            credits.append({"name": "Generative AI trial credit", "amount": -float(amt),
                            "full_name": "Vertex AI generative AI trial credit", "id": "PROMO-genai-trial",
                            "type": "PROMOTION"})
        if kind == "ops":
            free = min(cost, Decimal("0.05"))
            if free > 0:
                credits.append({"name": "Free tier", "amount": -float(free), "full_name": "Free tier",
                                "id": "FreeTier-storage-ops", "type": "FREE_TIER"})
        res = None
        pid = PROJECTS[w.account][0]
        if service == "storage":
            bucket = f"{pid}-{w.project}"
            res = (bucket, f"//storage.googleapis.com/projects/_/buckets/{bucket}")
        elif service == "vertex" and not w.sku.startswith("gemini"):
            ep = f"projects/{PROJECTS[w.account][1]}/locations/{w.region}/endpoints/{int(stable_hex(12, w.name), 16)}"
            res = (ep, f"//aiplatform.googleapis.com/{ep}")
        row = self._row(service, desc, w.account, d, end, w=w, cost=cost, cost_at_list=list_cost, amount=amount,
                        unit=unit, pricing_amount=pq, pricing_unit=punit,
                        price=p if cost == list_cost else money(p * (1 - FLEX_DISCOUNT), 6),
                        credits=credits, labels=labels, resource=res, zone=zone if service == "compute" else None,
                        region=region)
        self._delta(u, row, cost - base_cost)
        return flex

    def _delta(self, u: model.Usage, row: dict, delta: Decimal) -> None:
        if u.event:
            self.planted.add_delta(u.event, provider="Google Cloud", dataset="gcp", day=u.day, team=u.workload.team,
                                   service=row["service"]["description"], delta=delta,
                                   description=model.event_description(u.workload, u.event))

    def tax_and_adjustments(self) -> None:
        net: dict[date, Decimal] = defaultdict(Decimal)
        for r in self.rows:
            net[r["_bp"]] += r["_net"]
        current = model.TODAY.replace(day=1)
        for bp in model.billing_periods():
            end = min(model.next_month(bp), model.TODAY)
            rounding = money(Decimal(int(stable_hex(4, "round", bp), 16) % 9 - 4) / 1000, 6)
            if rounding:
                self._row("invoice", "Rounding error", "platform-shared", bp, end, w=None, cost=rounding,
                          cost_at_list=rounding, amount=0.0, unit="", pricing_amount=Decimal(0), pricing_unit="",
                          price=Decimal(0), credits=[], cost_type="rounding error", region=None)
            if bp < current:
                tax = money(net[bp] * Decimal("0.0725"), 2)
                self._row("invoice", "Tax", "platform-shared", bp, end, w=None, cost=tax, cost_at_list=tax,
                          amount=0.0, unit="", pricing_amount=Decimal(0), pricing_unit="", price=Decimal(0),
                          credits=[], cost_type="tax", region=None)
        d = date(2026, 4, 20)
        self._row("compute", "Nvidia Tesla A100 GPU running in Americas", "vision-prod", d, d + timedelta(days=1),
                  w=None, cost=Decimal("-480.00"), cost_at_list=Decimal("-480.00"), amount=0.0, unit="seconds",
                  pricing_amount=Decimal(0), pricing_unit="hour", price=Decimal(0), credits=[],
                  cost_type="adjustment",
                  adjustment={"id": "ADJ-2026-04-GPU-SLA", "description": "SLA credit: A100 capacity outage",
                              "mode": "MANUAL_ADJUSTMENT", "type": "GENERAL_ADJUSTMENT"})


def write(out: Path, seed: int, planted: Planted, rows: int | None = None) -> dict:
    g = GcpRows(seed, planted)
    g.usage(model.gcp_workloads())
    ai_tokens.gcp_rows(g)  # Vertex AI Gemini token lines (samples/ai_tokens.py)
    g.tax_and_adjustments()
    replicate = replication(rows, len(g.rows))
    by_month: dict[date, list[dict]] = defaultdict(list)
    for r in g.rows:
        by_month[r["_bp"]].append(r)
    root = out / "gcp"
    root.mkdir(parents=True, exist_ok=True)
    files, totals = [], []
    acct = BILLING_ACCOUNT.replace("-", "_")
    for bp, rows in sorted(by_month.items()):
        rows.sort(key=lambda r: (r["usage_start_time"], r["project"]["id"], r["service"]["description"],
                                 r["sku"]["description"], r["resource"]["name"] or ""))
        path = root / f"gcp_billing_export_resource_v1_{acct}_{bp:%Y%m}.jsonl.gz"
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            for k in range(max(1, replicate)):
                for r in rows:
                    rec = {key: v for key, v in r.items() if not key.startswith("_")}
                    if k and rec["resource"]["name"]:
                        rec = {**rec, "resource": {"name": f"{rec['resource']['name']}-{k}",
                                                   "global_name": f"{rec['resource']['global_name']}-{k}"}}
                    gz.write(json.dumps(rec, separators=(",", ":")).encode() + b"\n")
        files.append(str(path.relative_to(out)))
        billed = sum((r["_net"] for r in rows), Decimal(0)) * max(1, replicate)
        totals.append({"provider": "Google Cloud", "dataset": "gcp", "billing_account_id": BILLING_ACCOUNT,
                       "billing_period": f"{bp:%Y-%m}", "currency": "USD", "billed": str(billed),
                       "amortized": str(billed), "rows": len(rows) * max(1, replicate)})
    return {"totals": totals, "files": files}
