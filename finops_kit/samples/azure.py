"""Writer: Azure Cost Management exports (Microsoft Customer Agreement, PascalCase columns), actual and amortized.

Per month one *actual* and one *amortized* file of the same scope (a billing profile)::

    actual/<scope>_<YYYYMM>.csv.gz      ChargeType Usage + Purchase/Refund of commitments; RI/SP-covered usage at 0
    amortized/<scope>_<YYYYMM>.csv.gz   usage at effective price incl. RI/SP-covered usage, UnusedReservation
                                        and UnusedSavingsPlan rows; no Purchase rows

so that the combination rule matters: all amortized rows + only the Purchase/Refund commitment rows of the
actual file; billed total = sum(actual), amortized total = sum(amortized). Dates are MM/DD/YYYY and
BillingPeriodEndDate is the inclusive last day, as Azure writes them. Costs exclude credits and taxes (MCA).
Commitments: a 1-year reservation for 4 x NC8as_T4_v3 paid monthly (3 VMs use it: 25% unused), a compute
savings plan from 2026-04 paid monthly, a refund on the reservation, and an Azure OpenAI PTU reservation
(:mod:`.ai_commitments`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from . import ai_commitments, ai_tokens, commitment_facts, model
from ._write import copy_csv_gz, replication, string_table
from .aws_common import deterministic_uuid, stable_hex
from .model import Planted, Workload, money

BILLING_ACCOUNT = ("7c1e3f52-9a4d-5b60-8e27-1d3c5a7f9b02:4e8a2c61-3b5d-4f79-a0c2-6e1d8b3f5a74_2019-05-31")
BILLING_ACCOUNT_NAME = "Acme AI Inc."
BILLING_PROFILE = ("KX4M-7QPL-BG7-PGB", "Acme AI US")
INVOICE_SECTION = ("R2VT-9HJD-PJA-PGB", "AI Platform")
SCOPE = "billingprofile-KX4M-7QPL-BG7-PGB"
SUBSCRIPTIONS = {
    "ai-prod": ("0b7d3e1a-6c2f-4a58-9e13-5d8b2c7f4a61", "acme-ai-prod"),
    "ai-research": ("2f9a6c4e-1d7b-4e30-8b52-7c3e9a1d5f82", "acme-ai-research"),
    "ai-dev": ("5e2c8a7d-3f1b-4d69-a4e8-9b6c2d1f7e03", "acme-ai-dev"),
}

# key: (MeterCategory, MeterSubCategory, MeterName, ServiceFamily, ConsumedService, UnitOfMeasure, $ per unit,
#       quantity kind, ProductName, provider resource type, VM size)  -- East US list prices, 2026 (approx.)
CATALOG: dict[str, tuple] = {
    "NC24ads_A100_v4": ("Virtual Machines", "NCads A100 v4 Series", "NC24ads A100 v4", "Compute",
                        "Microsoft.Compute", "1 Hour", "3.673", "hours",
                        "Virtual Machines NCads A100 v4 Series - NC24ads A100 v4 - US East",
                        "Microsoft.Compute/virtualMachines", "Standard_NC24ads_A100_v4"),
    "ND96isr_H100_v5": ("Virtual Machines", "NDsr H100 v5 Series", "ND96isr H100 v5", "Compute",
                        "Microsoft.Compute", "1 Hour", "98.32", "hours",
                        "Virtual Machines NDsr H100 v5 Series - ND96isr H100 v5 - US East",
                        "Microsoft.Compute/virtualMachines", "Standard_ND96isr_H100_v5"),
    "NC8as_T4_v3": ("Virtual Machines", "NCasT4 v3 Series", "NC8as T4 v3", "Compute", "Microsoft.Compute",
                    "1 Hour", "0.752", "hours", "Virtual Machines NCasT4 v3 Series - NC8as T4 v3 - US East",
                    "Microsoft.Compute/virtualMachines", "Standard_NC8as_T4_v3"),
    "aml-NC24ads_A100_v4": ("Virtual Machines", "NCads A100 v4 Series", "NC24ads A100 v4", "Compute",
                            "Microsoft.MachineLearningServices", "1 Hour", "3.673", "hours",
                            "Virtual Machines NCads A100 v4 Series - NC24ads A100 v4 - US East",
                            "Microsoft.MachineLearningServices/workspaces", "Standard_NC24ads_A100_v4"),
    "aml-endpoint-NC6s_v3": ("Virtual Machines", "NCSv3 Series", "NC6s v3", "Compute",
                             "Microsoft.MachineLearningServices", "1 Hour", "3.06", "hours",
                             "Virtual Machines NCSv3 Series - NC6s v3 - US East",
                             "Microsoft.MachineLearningServices/workspaces", "Standard_NC6s_v3"),
    "aoai-gpt4o-in": ("Cognitive Services", "Azure OpenAI", "gpt-4o-0806 Inp glbl Tokens", "AI + Machine Learning",
                      "Microsoft.CognitiveServices", "1K", "0.0025", "units",
                      "Azure OpenAI - gpt-4o-0806 Input global Tokens", "Microsoft.CognitiveServices/accounts", ""),
    "aoai-gpt4o-out": ("Cognitive Services", "Azure OpenAI", "gpt-4o-0806 Outp glbl Tokens", "AI + Machine Learning",
                       "Microsoft.CognitiveServices", "1K", "0.01", "units",
                       "Azure OpenAI - gpt-4o-0806 Output global Tokens", "Microsoft.CognitiveServices/accounts",
                       ""),
    "blob-hot": ("Storage", "Tiered Block Blob", "Hot LRS Data Stored", "Storage", "Microsoft.Storage",
                 "1 GB/Month", "0.0184", "gbmo", "Tiered Block Blob - Hot LRS - US East",
                 "Microsoft.Storage/storageAccounts", ""),
    "blob-cool": ("Storage", "Tiered Block Blob", "Cool LRS Data Stored", "Storage", "Microsoft.Storage",
                  "1 GB/Month", "0.01", "gbmo", "Tiered Block Blob - Cool LRS - US East",
                  "Microsoft.Storage/storageAccounts", ""),
    "blob-cold": ("Storage", "Tiered Block Blob", "Cold LRS Data Stored", "Storage", "Microsoft.Storage",
                  "1 GB/Month", "0.0036", "gbmo", "Tiered Block Blob - Cold LRS - US East",
                  "Microsoft.Storage/storageAccounts", ""),
    "blob-archive": ("Storage", "Tiered Block Blob", "Archive LRS Data Stored", "Storage", "Microsoft.Storage",
                     "1 GB/Month", "0.00099", "gbmo", "Tiered Block Blob - Archive LRS - US East",
                     "Microsoft.Storage/storageAccounts", ""),
    "blob-hot-read": ("Storage", "Tiered Block Blob", "Hot Read Operations", "Storage", "Microsoft.Storage",
                      "10K", "0.0044", "units", "Tiered Block Blob - Hot LRS - US East",
                      "Microsoft.Storage/storageAccounts", ""),
    "blob-cold-early-delete": ("Storage", "Tiered Block Blob", "Cold LRS Early Delete", "Storage",
                               "Microsoft.Storage", "1 GB/Month", "0.0036", "units",
                               "Tiered Block Blob - Cold LRS - US East", "Microsoft.Storage/storageAccounts", ""),
    "bw-internet-out": ("Bandwidth", "", "Standard Data Transfer Out", "Networking", "Microsoft.Compute", "1 GB",
                        "0.087", "units", "Rtn Preference: MGN - Standard Data Transfer Out - Zone 1",
                        "Microsoft.Compute/virtualMachines", ""),
    "bw-inter-region": ("Bandwidth", "Inter-Region", "Intra Continent Data Transfer Out", "Networking",
                        "Microsoft.Compute", "1 GB", "0.02", "units",
                        "Bandwidth Inter-Region - Intra Continent Data Transfer Out - NAM",
                        "Microsoft.Compute/virtualMachines", ""),
}
SPOT_FACTOR = Decimal("0.33")

COLUMNS = ["InvoiceId", "PreviousInvoiceId", "BillingAccountId", "BillingAccountName", "BillingProfileId", "BillingProfileName", "InvoiceSectionId", "InvoiceSectionName", "ResellerName", "ResellerMpnId", "CostCenter", "BillingPeriodEndDate", "BillingPeriodStartDate", "ServicePeriodEndDate", "ServicePeriodStartDate", "Date", "ServiceFamily", "ProductOrderId", "ProductOrderName", "ConsumedService", "MeterId", "MeterName", "MeterCategory", "MeterSubCategory", "MeterRegion", "ProductId", "ProductName", "SubscriptionId", "SubscriptionName", "PublisherType", "PublisherId", "PublisherName", "ResourceGroupName", "ResourceId", "ResourceLocation", "Location", "EffectivePrice", "Quantity", "UnitOfMeasure", "ChargeType", "BillingCurrency", "PricingCurrency", "CostInBillingCurrency", "CostInPricingCurrency", "CostInUsd", "PaygCostInBillingCurrency", "PaygCostInUsd", "ExchangeRatePricingToBilling", "ExchangeRateDate", "IsAzureCreditEligible", "ServiceInfo1", "ServiceInfo2", "AdditionalInfo", "Tags", "PayGPrice", "Frequency", "Term", "ReservationId", "ReservationName", "PricingModel", "UnitPrice", "CostAllocationRuleName", "benefitId", "benefitName", "Provider"]


class Commitment:
    def __init__(self, kind: str, name: str, start: date, end: date, hourly: Decimal, discount: Decimal,
                 count: int = 0):
        self.kind, self.name, self.start, self.end = kind, name, start, end
        self.hourly, self.discount, self.count = hourly, discount, count
        order = deterministic_uuid("azure", kind, name, "order")
        ident = deterministic_uuid("azure", kind, name)
        if kind == "Reservation":
            self.benefit_id = f"/providers/Microsoft.Capacity/reservationOrders/{order}/reservations/{ident}"
        else:
            self.benefit_id = (f"/providers/Microsoft.BillingBenefits/savingsPlanOrders/{order}/"
                               f"savingsPlans/{ident}")
        self.order, self.ident = order, ident

    def monthly_payment(self) -> Decimal:
        """Monthly billing plan: Azure charges hourly commitment x 730 hours each month."""
        return money(self.hourly * 730 * (self.count or 1), 6)


RESERVATION = Commitment("Reservation", "NC8as_T4_v3_eastus_1y", date(2025, 9, 15), date(2026, 9, 15),
                         money(Decimal("0.752") * Decimal("0.60"), 6), Decimal("0.40"), count=4)
RESERVATION_RENEWAL = Commitment("Reservation", "NC8as_T4_v3_eastus_1y_renewal", date(2026, 9, 15),
                                 date(2027, 9, 15), money(Decimal("0.752") * Decimal("0.60"), 6),
                                 Decimal("0.40"), count=4)
SAVINGS_PLAN = Commitment("SavingsPlan", "Compute_SavingsPlan_2026-04-01", date(2026, 4, 1), date(2027, 4, 1),
                          Decimal("5"), Decimal("0.35"))


def mdy(d: date) -> str:
    return d.strftime("%m/%d/%Y")


class AzureRows:
    def __init__(self, seed: int, planted: Planted):
        self.seed = seed
        self.planted = planted
        self.actual: list[dict] = []
        self.amortized: list[dict] = []

    def _base(self, sub_key: str, d: date) -> dict:
        sub, sub_name = SUBSCRIPTIONS[sub_key]
        bp = d.replace(day=1)
        closed = bp < model.TODAY.replace(day=1)
        return {
            "InvoiceId": f"G0{int(stable_hex(8, 'azinv', bp), 16) % 10**8:08d}" if closed else None,
            "BillingAccountId": BILLING_ACCOUNT, "BillingAccountName": BILLING_ACCOUNT_NAME,
            "BillingProfileId": BILLING_PROFILE[0], "BillingProfileName": BILLING_PROFILE[1],
            "InvoiceSectionId": INVOICE_SECTION[0], "InvoiceSectionName": INVOICE_SECTION[1],
            "BillingPeriodStartDate": mdy(bp), "BillingPeriodEndDate": mdy(model.next_month(bp) - timedelta(days=1)),
            "ServicePeriodStartDate": mdy(bp),
            "ServicePeriodEndDate": mdy(model.next_month(bp) - timedelta(days=1)),
            "Date": mdy(d), "SubscriptionId": sub, "SubscriptionName": sub_name,
            "BillingCurrency": "USD", "PricingCurrency": "USD", "ExchangeRatePricingToBilling": Decimal(1),
            "ExchangeRateDate": mdy(bp), "IsAzureCreditEligible": "True", "PublisherType": "Microsoft",
            "PublisherName": "Microsoft", "Provider": "Azure", "_bp": bp,
        }

    @staticmethod
    def _cost(row: dict, cost: Decimal, payg: Decimal) -> dict:
        row["CostInBillingCurrency"] = cost
        row["CostInPricingCurrency"] = cost
        row["CostInUsd"] = cost
        row["PaygCostInBillingCurrency"] = payg
        row["PaygCostInUsd"] = payg
        row["_cost"] = cost
        return row

    # ------------------------------------------------------------------------------------------------
    def usage(self, workloads: list[Workload]) -> None:
        per_day = model.usage_by_day(workloads, self.seed)
        for d in per_day:
            ri = next((c for c in (RESERVATION, RESERVATION_RENEWAL) if c.start <= d < c.end), None)
            ri_left = Decimal(ri.count * 24) if ri else Decimal(0)
            sp_left = SAVINGS_PLAN.hourly * 24 if SAVINGS_PLAN.start <= d < SAVINGS_PLAN.end else Decimal(0)
            state = {"ri": ri, "ri_left": ri_left, "sp_left": sp_left}
            for u in per_day[d]:
                self._workload_day(u, d, state)
            if ri and state["ri_left"] > 0:
                self._unused(ri, d, state["ri_left"], money(state["ri_left"] * ri.hourly, 10))
            if sp_left and state["sp_left"] > 0:
                self._unused(SAVINGS_PLAN, d, state["sp_left"], money(state["sp_left"], 10))

    def _resource(self, w: Workload, sub: str, i: int) -> tuple[str, str, str]:
        cat = CATALOG[w.sku]
        rg = f"rg-{w.team or 'shared'}-{w.env or 'misc'}"
        rtype = cat[9]
        if rtype == "Microsoft.Compute/virtualMachines":
            name = f"{w.name.removeprefix('az-')}-{i + 1:02d}"
        elif rtype == "Microsoft.Storage/storageAccounts":
            name = f"acme{(w.team or 'shared')}{w.project.replace('-', '')}"[:24]
        elif rtype == "Microsoft.MachineLearningServices/workspaces":
            name = f"aml-{w.team}-{w.env}"
        else:
            name = "acme-aoai-eastus"
        return rg, name, f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{rtype}/{name}"

    def _workload_day(self, u: model.Usage, d: date, state: dict) -> None:
        w = u.workload
        (cat, sub_cat, meter, family, consumed, uom, price, kind, product, _rtype, size) = CATALOG[w.sku]
        spot = w.pricing == "spot"
        p = money(Decimal(price) * (SPOT_FACTOR if spot else 1), 6)
        payg_price = p
        meter_name = f"{meter} Spot" if spot else meter
        sub, _ = SUBSCRIPTIONS[w.account]
        tags = model.tags_for(w, d)
        n = max(1, w.instances)
        dim = model.days_in_month(d)
        for i in range(n):
            q = Decimal(repr(u.quantity / n))
            qb = Decimal(repr(u.baseline / n))
            if kind == "gbmo":
                q, qb = q / dim, qb / dim
            q, qb = money(q, 8), money(qb, 8)
            rg, name, rid = self._resource(w, sub, i)
            info = {"UsageType": "ComputeHR", "ImageType": "Canonical", "ServiceType": size, "VMName": name,
                    "VCPUs": 24} if size else None
            if w.sku.startswith("aml-") and info:
                info["VMName"] = f"{name}-compute-{i + 1}"

            def make(qty: Decimal, model_: str, cost: Decimal, eff_price: Decimal, charge: str = "Usage",
                     benefit: Commitment | None = None, rg: str = rg, rid: str = rid,
                     info: dict | None = info) -> dict:
                row = self._base(w.account, d)
                row.update({
                    "ServiceFamily": family, "ConsumedService": consumed,
                    "MeterId": deterministic_uuid("meter", w.sku, meter_name), "MeterName": meter_name,
                    "MeterCategory": cat, "MeterSubCategory": sub_cat or None, "MeterRegion": "US East",
                    "ProductId": f"DZH318Z0{stable_hex(8, product).upper()}", "ProductName": product,
                    "ResourceGroupName": rg, "ResourceId": rid, "ResourceLocation": w.region,
                    "Location": "US East", "EffectivePrice": eff_price, "Quantity": qty, "UnitOfMeasure": uom,
                    "ChargeType": charge, "Frequency": "UsageBased", "PricingModel": model_,
                    "PayGPrice": payg_price, "UnitPrice": payg_price,
                    "AdditionalInfo": json.dumps(info, separators=(",", ":")) if info else None,
                    "Tags": json.dumps(tags, separators=(",", ":")) if tags else None,
                })
                if benefit is not None:
                    row["benefitId"] = benefit.benefit_id
                    row["benefitName"] = benefit.name
                    row["ProductOrderId"] = benefit.order
                    row["Term"] = "12"
                    if benefit.kind == "Reservation":
                        row["ReservationId"] = benefit.ident
                        row["ReservationName"] = benefit.name
                        row["ProductOrderName"] = "Reserved VM Instance, Standard_NC8as_T4_v3, US East, 1 Year"
                    else:
                        row["ProductOrderName"] = "Compute savings plan, 1 Year"
                return self._cost(row, cost, money(qty * payg_price, 10))

            base_cost = money(qb * p, 10)
            delta = (money(q * p, 10) - base_cost) if u.event else Decimal(0)
            if u.event:
                svc = "Azure Machine Learning" if consumed == "Microsoft.MachineLearningServices" else (
                    "Azure OpenAI" if consumed == "Microsoft.CognitiveServices" else cat)
                self.planted.add_delta(u.event, provider="Microsoft", dataset="azure", day=d, team=w.team,
                                       service=svc, delta=delta, description=model.event_description(w, u.event))
            ri = state["ri"]
            if w.commit == "ri" and ri is not None and not spot and state["ri_left"] > 0:
                cov = min(q, state["ri_left"])
                state["ri_left"] -= cov
                eff = money(cov * ri.hourly, 10)
                commitment_facts.record(self.planted, ri.benefit_id, d.replace(day=1), provider="Microsoft",
                                        kind="Reservation", used_hours=cov, used_cost=eff, family=w.sku)
                self.actual.append(make(cov, "Reservation", Decimal(0), Decimal(0), benefit=ri))
                self.amortized.append(make(cov, "Reservation", eff, ri.hourly, benefit=ri))
                q -= cov
            if w.commit == "sp" and not spot and state["sp_left"] > 0 and q > 0:
                sp_price = money(p * (1 - SAVINGS_PLAN.discount), 6)
                cov = min(q, money(state["sp_left"] / sp_price, 8))
                eff = money(cov * sp_price, 10)
                state["sp_left"] -= eff
                commitment_facts.record(self.planted, SAVINGS_PLAN.benefit_id, d.replace(day=1), provider="Microsoft",
                                        kind="SavingsPlan", used_cost=eff)
                self.actual.append(make(cov, "SavingsPlan", Decimal(0), Decimal(0), benefit=SAVINGS_PLAN))
                self.amortized.append(make(cov, "SavingsPlan", eff, sp_price, benefit=SAVINGS_PLAN))
                q -= cov
            if q > 0:
                c = money(q * p, 10)
                pm = "Spot" if spot else "OnDemand"
                self.actual.append(make(q, pm, c, p))
                self.amortized.append(make(q, pm, c, p))

    def _unused(self, c: Commitment, d: date, qty: Decimal, cost: Decimal) -> None:
        commitment_facts.record(self.planted, c.benefit_id, d.replace(day=1), provider="Microsoft",
                                kind=c.kind, unused_cost=money(cost, 10),
                                unused_hours=money(qty, 8) if c.kind == "Reservation" else Decimal(0))
        row = self._base("ai-prod", d)
        is_ri = c.kind == "Reservation"
        row.update({
            "ServiceFamily": "Compute", "ConsumedService": "Microsoft.Capacity" if is_ri else
            "Microsoft.BillingBenefits", "ChargeType": "UnusedReservation" if is_ri else "UnusedSavingsPlan",
            "Frequency": "UsageBased", "PricingModel": c.kind, "Quantity": money(qty, 8),
            "UnitOfMeasure": "1 Hour" if is_ri else "1 Dollar", "EffectivePrice": c.hourly if is_ri else Decimal(1),
            "MeterCategory": "Virtual Machines" if is_ri else "Savings Plan",
            "MeterName": "NC8as T4 v3" if is_ri else "Compute Savings Plan", "MeterRegion": "US East",
            "ProductName": ("Virtual Machines NCasT4 v3 Series - NC8as T4 v3 - US East" if is_ri
                            else "Compute savings plan"),
            "benefitId": c.benefit_id, "benefitName": c.name, "ProductOrderId": c.order, "Term": "12",
            "ReservationId": c.ident if is_ri else None, "ReservationName": c.name if is_ri else None,
        })
        self.amortized.append(self._cost(row, cost, Decimal(0)))

    def purchases_and_refund(self) -> None:
        for c in (RESERVATION, RESERVATION_RENEWAL, SAVINGS_PLAN):
            for bp in model.billing_periods():
                day = bp.replace(day=min(c.start.day, model.days_in_month(bp)))
                if not (c.start <= day < c.end) or day >= model.TODAY:
                    continue
                self._purchase(c, day, c.monthly_payment(), "Purchase", "Recurring")
        self._purchase(RESERVATION, date(2026, 7, 10), Decimal("-250.00"), "Refund", "OneTime")

    def _purchase(self, c: Commitment, d: date, amount: Decimal, charge: str, frequency: str) -> None:
        row = self._base("ai-prod", d)
        is_ri = c.kind == "Reservation"
        row.update({
            "ServiceFamily": "Compute", "ConsumedService": None, "ChargeType": charge, "Frequency": frequency,
            "PricingModel": c.kind, "Quantity": Decimal(1), "UnitOfMeasure": "1 Hour" if is_ri else "1 Dollar",
            "EffectivePrice": amount, "UnitPrice": amount, "MeterCategory": None,
            "ProductName": ("Reserved VM Instance, Standard_NC8as_T4_v3, US East, 1 Year" if is_ri
                            else "Compute savings plan, 1 Year"),
            "ProductOrderId": c.order,
            "ProductOrderName": ("Reserved VM Instance, Standard_NC8as_T4_v3, US East, 1 Year" if is_ri
                                 else "Compute savings plan, 1 Year"),
            "benefitId": c.benefit_id, "benefitName": c.name, "Term": "12",
            "ReservationId": c.ident if is_ri else None, "ReservationName": c.name if is_ri else None,
        })
        self.actual.append(self._cost(row, amount, Decimal(0)))


def write(out: Path, seed: int, planted: Planted, rows: int | None = None) -> dict:
    a = AzureRows(seed, planted)
    a.usage(model.azure_workloads())
    ai_tokens.azure_rows(a)  # Azure OpenAI token and PTU lines (samples/ai_tokens.py)
    a.purchases_and_refund()
    ai_commitments.azure_ptu_purchases(a)  # the PTU reservation's monthly payments (samples/ai_commitments.py)
    replicate = replication(rows, len(a.actual))
    files, totals = [], []
    sums: dict[date, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0])
    for dataset, rows, idx in (("actual", a.actual, 0), ("amortized", a.amortized, 1)):
        by_month: dict[date, list[dict]] = defaultdict(list)
        for r in rows:
            by_month[r["_bp"]].append(r)
            sums[r["_bp"]][idx] += r["_cost"]
            sums[r["_bp"]][idx + 2] += 1
        for bp, mrows in sorted(by_month.items()):
            mrows.sort(key=lambda r: (r["Date"][6:] + r["Date"][:5], r["SubscriptionId"], r["ChargeType"],
                                      r.get("ResourceId") or "", r.get("MeterName") or "", r["PricingModel"]))
            path = out / "azure" / dataset / f"{SCOPE}_{bp:%Y%m}.csv.gz"
            copy_csv_gz(string_table(COLUMNS, mrows), path, replicate=replicate,
                        vary={"ResourceId": "CASE WHEN {col} IS NULL THEN NULL ELSE {col} || '-' || r::VARCHAR END"})
            files.append(str(path.relative_to(out)))
    k = max(1, replicate)
    for bp, (billed, amortized, n_act, n_am) in sorted(sums.items()):
        totals.append({"provider": "Microsoft", "dataset": "azure", "billing_account_id": BILLING_ACCOUNT,
                       "billing_period": f"{bp:%Y-%m}", "currency": "USD", "billed": str(billed * k),
                       "amortized": str(amortized * k), "rows": n_act * k, "rows_amortized": n_am * k})
    return {"totals": totals, "files": files}
