"""AWS line items shared by the CUR 2.0 and legacy CUR writers.

Turns AWS workload-days into CUR line items with AWS's own mechanics, and records what each line adds to the
billed (unblended) and amortized totals *by construction*, not by re-reading the written columns:

* on-demand ``Usage``; spot ``Usage`` with ``SpotUsage:<type>`` usage types at the Spot Advisor discount;
* Compute Savings Plans (one No Upfront, one All Upfront bought mid-window) and a SageMaker Savings Plan on the
  ranker endpoint (fee lines under product code ``MachineLearningSavingsPlans``): ``SavingsPlanCoveredUsage`` at the
  on-demand price plus a ``SavingsPlanNegation`` per covered line, a daily ``SavingsPlanRecurringFee`` carrying
  TotalCommitmentToDate / UsedCommitment, and the ``SavingsPlanUpfrontFee`` on the purchase day;
* a partial-upfront EC2 Reserved Instance (2 x g5.12xlarge): ``DiscountedUsage`` at 0 unblended with
  ``reservation/EffectiveCost``, a monthly ``RIFee`` with the unused amounts, and the upfront ``Fee``;
* credits, a refund and monthly tax on closed months.

Rows are dicts keyed by legacy CUR column names (``lineItem/UnblendedCost``); the CUR 2.0 writer renames them.
Product attributes live in ``_product`` (snake_case keys) so each writer can lay them out its own way.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from . import ai_tokens, commitment_facts, model
from .model import Planted, Workload, days_in_month, fmt, money, next_month

ACCOUNTS = {
    # key: (payer id, payer name, usage account id, usage account name)
    "ml-prod": ("111122223333", "Acme AI (management)", "210987654321", "acme-ml-prod"),
    "ml-research": ("111122223333", "Acme AI (management)", "309876543210", "acme-ml-research"),
    "ml-dev": ("111122223333", "Acme AI (management)", "408765432109", "acme-ml-dev"),
    "data": ("111122223333", "Acme AI (management)", "507654321098", "acme-data-lake"),
    "lab-research": ("999988887777", "Helix Research Lab", "888877776666", "helix-compute"),
    "lab-data": ("999988887777", "Helix Research Lab", "777766665555", "helix-data"),
}
PAYERS = {"111122223333": "Acme AI (management)", "999988887777": "Helix Research Lab"}
MAIN_PAYER, LAB_PAYER = "111122223333", "999988887777"

REGIONS = {
    "us-east-1": ("", "USE1", "US East (N. Virginia)"),
    "us-west-2": ("USW2-", "USW2", "US West (Oregon)"),
}

# On-demand $/h, us-east-1, price list of Sep 2026 (../shared/notes/methods.md); spot = on-demand x (1 - s)
# with s from the mid-2025 Spot Instance Advisor snapshot in the same notes. g6e/g5.48xl spot uses 0.59.
EC2 = {
    "p4d.24xlarge": (Decimal("21.96"), Decimal("0.67"), "p4d", 96, 8, "1152 GiB"),
    "p5.48xlarge": (Decimal("55.04"), Decimal("0.52"), "p5", 192, 8, "2048 GiB"),
    "g5.xlarge": (Decimal("1.006"), Decimal("0.59"), "g5", 4, 1, "16 GiB"),
    "g5.12xlarge": (Decimal("5.672"), Decimal("0.59"), "g5", 48, 4, "192 GiB"),
    "g5.48xlarge": (Decimal("16.288"), Decimal("0.59"), "g5", 192, 8, "768 GiB"),
    "g6.xlarge": (Decimal("0.8048"), Decimal("0.58"), "g6", 4, 1, "16 GiB"),
    "inf2.xlarge": (Decimal("0.7582"), Decimal("0.78"), "inf2", 4, 1, "16 GiB"),
    "trn1.32xlarge": (Decimal("21.50"), Decimal("0.79"), "trn1", 128, 16, "512 GiB"),
}

# key: (product code, product name, product family, usage type (no region prefix), operation, pricing unit,
#       price per unit, quantity kind, extra product attributes)
# quantity kinds: gbmo = GB stored prorated per day; gb = GB moved; req = requests priced per 1,000;
# tok = 1K tokens; hours; objmo = thousands of monitored objects prorated per day
CATALOG: dict[str, tuple] = {
    "sm-train-p4d": ("AmazonSageMaker", "Amazon SageMaker", "ML Instance", "USE1-Train:ml.p4d.24xlarge",
                     "RunInstance", "Hrs", Decimal("37.688"), "hours", {"instance_type": "ml.p4d.24xlarge"}),
    "sm-host-g5-2xl": ("AmazonSageMaker", "Amazon SageMaker", "ML Instance", "USE1-Host:ml.g5.2xlarge",
                       "RunInstance", "Hrs", Decimal("1.515"), "hours", {"instance_type": "ml.g5.2xlarge"}),
    "sm-notebook-g5": ("AmazonSageMaker", "Amazon SageMaker", "ML Instance", "USE1-Notebk:ml.g5.xlarge",
                       "RunInstance", "Hrs", Decimal("1.408"), "hours", {"instance_type": "ml.g5.xlarge"}),
    "bedrock-llama-in": ("AmazonBedrock", "Amazon Bedrock", "Amazon Bedrock",
                         "USE1-Llama3-3-70B-input-tokens", "InvokeModelInference", "1K tokens",
                         Decimal("0.00072"), "tok", {"model": "Llama 3.3 70B Instruct"}),
    "bedrock-llama-out": ("AmazonBedrock", "Amazon Bedrock", "Amazon Bedrock",
                          "USE1-Llama3-3-70B-output-tokens", "InvokeModelInference", "1K tokens",
                          Decimal("0.00072"), "tok", {"model": "Llama 3.3 70B Instruct"}),
    "bedrock-titan-embed": ("AmazonBedrock", "Amazon Bedrock", "Amazon Bedrock",
                            "USE1-TitanEmbeddingsV2-Text-input-tokens", "InvokeModelInference", "1K tokens",
                            Decimal("0.00002"), "tok", {"model": "Titan Text Embeddings V2"}),
    "s3-standard": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-ByteHrs",
                    "StandardStorage", "GB-Mo", Decimal("0.023"), "gbmo", {"storage_class": "General Purpose"}),
    "s3-it-fa": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-INT-FA-ByteHrs",
                 "IntelligentTieringFAStorage", "GB-Mo", Decimal("0.023"), "gbmo",
                 {"storage_class": "Intelligent-Tiering"}),
    "s3-it-ia": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-INT-IA-ByteHrs",
                 "IntelligentTieringIAStorage", "GB-Mo", Decimal("0.0125"), "gbmo",
                 {"storage_class": "Intelligent-Tiering"}),
    "s3-it-monitoring": ("AmazonS3", "Amazon Simple Storage Service", "Storage",
                         "Monitoring-Automation-INT", "IntelligentTieringObjectMonitoring", "Objects",
                         Decimal("0.0025"), "objmo", {"storage_class": "Intelligent-Tiering"}),
    "s3-sia": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-SIA-ByteHrs",
               "StandardIAStorage", "GB-Mo", Decimal("0.0125"), "gbmo", {"storage_class": "Infrequent Access"}),
    "s3-gir": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-GIR-ByteHrs",
               "GlacierInstantRetrievalStorage", "GB-Mo", Decimal("0.004"), "gbmo",
               {"storage_class": "Glacier Instant Retrieval"}),
    "s3-glacier": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-GlacierByteHrs",
                   "GlacierStorage", "GB-Mo", Decimal("0.0036"), "gbmo", {"storage_class": "Archive"}),
    "s3-deep-archive": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "TimedStorage-GDA-ByteHrs",
                        "DeepArchiveStorage", "GB-Mo", Decimal("0.00099"), "gbmo",
                        {"storage_class": "Deep Archive"}),
    "s3-requests-tier1": ("AmazonS3", "Amazon Simple Storage Service", "API Request", "Requests-Tier1",
                          "PutObject", "Requests", Decimal("0.005"), "req", {"group": "S3-API-Tier1"}),
    "s3-requests-tier2": ("AmazonS3", "Amazon Simple Storage Service", "API Request", "Requests-Tier2",
                          "GetObject", "Requests", Decimal("0.0004"), "req", {"group": "S3-API-Tier2"}),
    "s3-retrieval-sia": ("AmazonS3", "Amazon Simple Storage Service", "Fee", "Retrieval-SIA",
                         "GetObject", "GB", Decimal("0.01"), "gb", {"storage_class": "Infrequent Access"}),
    "s3-retrieval-gir": ("AmazonS3", "Amazon Simple Storage Service", "Fee", "Retrieval-GIR",
                         "GetObject", "GB", Decimal("0.03"), "gb", {"storage_class": "Glacier Instant Retrieval"}),
    "s3-early-delete-gda": ("AmazonS3", "Amazon Simple Storage Service", "Storage", "EarlyDelete-GDA",
                            "DeleteObject", "GB-Mo", Decimal("0.00099"), "gb", {"storage_class": "Deep Archive"}),
    "ebs-gp3": ("AmazonEC2", "Amazon Elastic Compute Cloud", "Storage", "EBS:VolumeUsage.gp3",
                "CreateVolume-Gp3", "GB-Mo", Decimal("0.08"), "gbmo", {"volume_api_name": "gp3"}),
    "dt-internet-out": ("AWSDataTransfer", "AWS Data Transfer", "Data Transfer", "DataTransfer-Out-Bytes",
                        "RunInstances", "GB", Decimal("0.09"), "gb",
                        {"transfer_type": "AWS Outbound", "to_location": "External"}),
    "dt-inter-region": ("AWSDataTransfer", "AWS Data Transfer", "Data Transfer", "USE1-USW2-AWS-Out-Bytes",
                        "RunInstances", "GB", Decimal("0.02"), "gb",
                        {"transfer_type": "InterRegion Outbound", "to_location": "US West (Oregon)"}),
    "dt-inter-az": ("AWSDataTransfer", "AWS Data Transfer", "Data Transfer", "DataTransfer-Regional-Bytes",
                    "InterZone-Out", "GB", Decimal("0.01"), "gb", {"transfer_type": "IntraRegion"}),
    "nat-bytes": ("AmazonEC2", "Amazon Elastic Compute Cloud", "NAT Gateway", "NatGateway-Bytes",
                  "NatGateway", "GB", Decimal("0.045"), "gb", {"group": "NGW:NatGateway"}),
    "nat-hours": ("AmazonEC2", "Amazon Elastic Compute Cloud", "NAT Gateway", "NatGateway-Hours",
                  "NatGateway", "Hrs", Decimal("0.045"), "hours", {"group": "NGW:NatGateway"}),
    "cdn-out": ("AmazonCloudFront", "Amazon CloudFront", "Data Transfer", "US-DataTransfer-Out-Bytes",
                "WEB", "GB", Decimal("0.085"), "gb", {"transfer_type": "CloudFront Outbound"}),
}


@dataclass(frozen=True)
class SavingsPlan:
    arn: str
    start: date
    end: date
    hourly: Decimal
    payment: str  # No Upfront | All Upfront
    discount: Decimal = Decimal("0.28")
    #: savingsPlan/OfferingType: ComputeSavingsPlans (EC2, Fargate, Lambda) or SageMakerSavingsPlans (SageMaker
    #: training, hosting, notebooks); it decides the fee line's product code and usage type
    offering: str = "ComputeSavingsPlans"

    @property
    def daily(self) -> Decimal:
        return self.hourly * 24

    @property
    def sagemaker(self) -> bool:
        return self.offering == "SageMakerSavingsPlans"

    @property
    def usage_type(self) -> str:
        prefix = "MachineLearningSP" if self.sagemaker else "ComputeSP"
        return f"{prefix}:1yr{self.payment.replace(' ', '')}"

    @property
    def product_code(self) -> str:
        """lineItem/ProductCode of the plan's fee lines (SavingsPlanRecurringFee / UpfrontFee)."""
        return "MachineLearningSavingsPlans" if self.sagemaker else "ComputeSavingsPlans"

    @property
    def product_name(self) -> str:
        return "Savings Plans for Machine Learning" if self.sagemaker else "Savings Plans for AWS Compute usage"

    @property
    def label(self) -> str:
        return "SageMaker Savings Plan" if self.sagemaker else "Compute Savings Plan"

    def covers(self, w: Workload, product_code: str) -> bool:
        """Whether this plan applies to the workload's on-demand usage: a Compute SP to EC2 usage of workloads
        marked ``commit="sp"``, a SageMaker SP to SageMaker usage of workloads marked ``commit="sm-sp"``."""
        if self.sagemaker:
            return w.commit == "sm-sp" and product_code == "AmazonSageMaker"
        return w.commit == "sp" and product_code == "AmazonEC2"


@dataclass(frozen=True)
class Reservation:
    arn: str
    start: date
    end: date
    count: int
    instance_type: str
    upfront_hourly: Decimal
    recurring_hourly: Decimal


SAVINGS_PLANS = (
    SavingsPlan("arn:aws:savingsplans::111122223333:savingsplan/3f1b7c52-8d0e-4f3a-9e61-2b4c6d8e0a11",
                date(2025, 6, 1), date(2026, 6, 1), Decimal("8"), "No Upfront"),
    SavingsPlan("arn:aws:savingsplans::111122223333:savingsplan/7a2c9e44-1b6d-4c8f-a053-9d7e2f1b3c22",
                date(2026, 5, 1), date(2027, 5, 1), Decimal("6"), "All Upfront"),
    # the first plan was renewed for another year without upfront payment
    SavingsPlan("arn:aws:savingsplans::111122223333:savingsplan/c81d0f93-5e2a-4b7c-8f14-6a3b9c2d4e33",
                date(2026, 6, 1), date(2027, 6, 1), Decimal("8"), "No Upfront"),
    # a SageMaker Savings Plan sized on the ranker endpoint (2 x ml.g5.2xlarge = 2.121/h at the plan's rate): about
    # 15% of it is never used; it ends 2027-01-15, inside the expiry calendar's 60-day window
    SavingsPlan("arn:aws:savingsplans::111122223333:savingsplan/e4a7c2d9-6b1f-4e83-9a50-3c8d1f2b7e44",
                date(2026, 1, 15), date(2027, 1, 15), Decimal("2.5"), "No Upfront", Decimal("0.30"),
                "SageMakerSavingsPlans"),
)
RESERVATION = Reservation(
    "arn:aws:ec2:us-east-1:210987654321:reserved-instances/5e8b2d1a-9c47-4f60-b3a2-7d1e0c9f8b44",
    date(2025, 12, 1), date(2026, 12, 1), 2, "g5.12xlarge", Decimal("1.7583"), Decimal("1.7583"))


def line_item_id(*parts: object) -> str:
    """A 52-character base32 id like identity/LineItemId, stable for the same inputs."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def stable_hex(n: int, *parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:n]


def ts(d: date) -> str:
    return f"{d.isoformat()}T00:00:00.000Z"


def _region(region: str) -> tuple[str, str, str]:
    return REGIONS[region]


def _resource_ids(w: Workload, acct: str) -> list[str]:
    """Stable resource ids for a workload (one per instance)."""
    kind = w.sku
    reg = w.region
    out = []
    for i in range(max(1, w.instances)):
        h = stable_hex(17, w.name, i)
        if kind in EC2:
            out.append(f"i-0{h[:16]}")
        elif kind.startswith("s3-"):
            bucket = f"{w.team or 'shared'}-{w.project or 'data'}-{acct[-4:]}"
            out.append(bucket)
        elif kind == "ebs-gp3":
            out.append(f"vol-0{h[:16]}")
        elif kind.startswith("nat-"):
            out.append(f"arn:aws:ec2:{reg}:{acct}:natgateway/nat-0{stable_hex(16, w.account, 'nat')}")
        elif kind == "cdn-out":
            out.append(f"arn:aws:cloudfront::{acct}:distribution/E{stable_hex(13, w.name).upper()}")
        elif kind.startswith("sm-host"):
            out.append(f"arn:aws:sagemaker:{reg}:{acct}:endpoint/{w.project}")
        elif kind.startswith("sm-train"):
            out.append(f"arn:aws:sagemaker:{reg}:{acct}:training-job/{w.project}-{h[:8]}")
        elif kind.startswith("sm-notebook"):
            out.append(f"arn:aws:sagemaker:{reg}:{acct}:notebook-instance/{w.team or 'shared'}-{h[:6]}")
        elif kind.startswith("dt-"):
            out.append(f"i-0{h[:16]}")
        else:
            out.append("")  # Bedrock on-demand inference has no resource id
    return out


class AwsLines:
    """Accumulates CUR line items for one payer, with their billed/amortized contribution."""

    def __init__(self, payer: str, seed: int, planted: Planted, dataset: str):
        self.payer = payer
        self.seed = seed
        self.planted = planted
        self.dataset = dataset
        self.rows: list[dict] = []
        self._n = 0
        self.rng = random.Random(f"{seed}|aws|{payer}")

    # -------------------------------------------------------------------------------------------------
    def _base(self, acct_key: str | None, start: date, end: date, line_type: str, product_code: str) -> dict:
        payer_name = PAYERS[self.payer]
        if acct_key is None:
            acct, acct_name = self.payer, payer_name
        else:
            _, _, acct, acct_name = ACCOUNTS[acct_key]
        self._n += 1
        bp = start.replace(day=1)
        return {
            "identity/LineItemId": line_item_id(self.seed, self.payer, self._n),
            "identity/TimeInterval": f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T00:00:00Z",
            "bill/InvoiceId": "",  # filled per billing period by the writer (blank until final)
            "bill/InvoicingEntity": "Amazon Web Services, Inc.",
            "bill/BillingEntity": "AWS",
            "bill/BillType": "Anniversary",
            "bill/PayerAccountId": self.payer,
            "bill/PayerAccountName": payer_name,
            "bill/BillingPeriodStartDate": ts(bp),
            "bill/BillingPeriodEndDate": ts(next_month(bp)),
            "lineItem/UsageAccountId": acct,
            "lineItem/UsageAccountName": acct_name,
            "lineItem/LineItemType": line_type,
            "lineItem/UsageStartDate": ts(start),
            "lineItem/UsageEndDate": ts(end),
            "lineItem/ProductCode": product_code,
            "lineItem/CurrencyCode": "USD",
            "lineItem/LegalEntity": "Amazon Web Services, Inc.",
            "_bp": bp,
            "_product": {},
            "_tags": {},
            "_cost_category": {},
        }

    def _add(self, row: dict, unblended: Decimal, effective: Decimal, *, team: str | None = None,
             service: str = "", event: str | None = None, delta: Decimal = Decimal(0), day: date | None = None,
             description: str = "") -> None:
        row["lineItem/UnblendedCost"] = unblended
        row["lineItem/BlendedCost"] = unblended
        row["_billed"] = unblended
        row["_effective"] = effective
        self.rows.append(row)
        if event:
            self.planted.add_delta(event, provider="AWS", dataset=self.dataset, day=day or date.min, team=team,
                                   service=service, delta=delta, description=description)

    # -------------------------------------------------------------------------------------------------
    def usage_rows(self, workloads: list[Workload]) -> None:
        """All workload-days, with Savings Plan and Reserved Instance coverage applied day by day."""
        per_day: dict[date, list[tuple[Workload, model.Usage]]] = defaultdict(list)
        for w in workloads:
            for u in model.usage(w, self.seed):
                per_day[u.day].append((w, u))
        ri_used: dict[date, Decimal] = defaultdict(Decimal)  # bp -> used reserved hours
        plans = SAVINGS_PLANS if self.payer == MAIN_PAYER else ()  # the lab owns no commitments
        for d in sorted(per_day):
            sp_left = {sp.arn: sp.daily for sp in plans if sp.start <= d < sp.end}
            sp_used = {arn: Decimal(0) for arn in sp_left}
            for w, u in per_day[d]:
                self._usage_day(w, u, d, sp_left, sp_used, ri_used)
            for sp in plans:
                if sp.arn in sp_used:
                    self._sp_fee(sp, d, sp_used[sp.arn])
        self._ri_fees(ri_used)
        for sp in plans:
            if sp.payment == "All Upfront" and model.PERIOD_START <= sp.start < model.TODAY:
                self._sp_upfront(sp)
        if model.PERIOD_START <= RESERVATION.start < model.TODAY and self.payer == MAIN_PAYER:
            self._ri_upfront()

    def _usage_day(self, w: Workload, u: model.Usage, d: date, sp_left: dict, sp_used: dict,
                   ri_used: dict) -> None:
        _, _, acct, _ = ACCOUNTS[w.account]
        prefix, short, location = _region(w.region)
        end = d + timedelta(days=1)
        tags = model.tags_for(w, d)
        rids = _resource_ids(w, acct)
        n = len(rids)
        if w.sku in EC2:
            od, saving, family, vcpu, gpu, memory = EC2[w.sku]
            spot = w.pricing == "spot"
            price = money(od * (1 - saving), 6) if spot else od
            usage_type = f"{prefix}{'SpotUsage' if spot else 'BoxUsage'}:{w.sku}"
            operation = "RunInstances:SV001" if spot else "RunInstances"
            product_code, service = "AmazonEC2", "Amazon Elastic Compute Cloud"
            unit = "Hrs"
            product = {"product_name": service, "servicecode": "AmazonEC2", "product_family": "Compute Instance",
                       "instance_type": w.sku, "instance_family": family, "vcpu": str(vcpu), "gpu": str(gpu),
                       "memory": memory, "operating_system": "Linux", "tenancy": "Shared",
                       "marketoption": "Spot" if spot else "OnDemand", "region_code": w.region,
                       "location": location, "location_type": "AWS Region", "usagetype": usage_type,
                       "operation": operation, "sku": stable_hex(16, usage_type).upper()}
            qty_kind = "hours"
            desc = (f"${fmt(price)} per Spot Linux {w.sku} Instance Hour" if spot else
                    f"${fmt(price)} per On Demand Linux {w.sku} Instance Hour")
            term = "Spot" if spot else "OnDemand"
        else:
            (product_code, service, family, usage_type, operation, unit, price, qty_kind,
             attrs) = CATALOG[w.sku]
            spot = False
            product = {"product_name": service, "servicecode": product_code, "product_family": family,
                       "region_code": w.region, "location": location, "location_type": "AWS Region",
                       "usagetype": usage_type, "operation": operation,
                       "sku": stable_hex(16, usage_type).upper(), **attrs}
            desc = f"${fmt(price)} per {unit} for {usage_type} in {location}"
            term = "OnDemand"
        dim = days_in_month(d)
        cc = {"BusinessUnit": "Research" if w.team == "research" else "AI Platform"} if w.team else {}
        for i, rid in enumerate(rids):
            qty, base = u.quantity / n, u.baseline / n
            if qty_kind == "gbmo" or qty_kind == "objmo":
                qty, base = qty / dim, base / dim
            qty_d = money(qty, 8)
            base_d = money(base, 8)
            unit_price = price / 1000 if qty_kind == "req" else price
            cost = money(qty_d * unit_price, 10)
            base_cost = money(base_d * unit_price, 10)
            delta = cost - base_cost if u.event else Decimal(0)
            common = dict(team=w.team, service=service, event=u.event, delta=delta, day=d,
                          description=model.event_description(w, u.event))
            row_tags = {} if w.sku.startswith("bedrock") else tags

            def fill(row: dict, q: Decimal, rate: Decimal, line_desc: str, i: int = i, rid: str = rid,
                     unit_price: Decimal = unit_price, row_tags: dict = row_tags) -> dict:
                row.update({
                    "lineItem/UsageType": usage_type, "lineItem/Operation": operation,
                    "lineItem/AvailabilityZone": (f"{w.region}{'abcd'[i % 4]}" if w.sku in EC2
                                                  or w.sku == "ebs-gp3" else ""),
                    "lineItem/ResourceId": rid, "lineItem/UsageAmount": q,
                    "lineItem/UnblendedRate": rate, "lineItem/BlendedRate": rate,
                    "lineItem/LineItemDescription": line_desc,
                    "pricing/publicOnDemandCost": money(q * unit_price, 10),
                    "pricing/publicOnDemandRate": unit_price, "pricing/term": term, "pricing/unit": unit,
                })
                if w.sku in EC2:
                    row["lineItem/NormalizationFactor"] = Decimal(vcpu) / 2
                    row["lineItem/NormalizedUsageAmount"] = q * Decimal(vcpu) / 2
                row["_product"] = {**product, "region": w.region}
                row["_tags"] = dict(row_tags)
                row["_cost_category"] = dict(cc)
                return row

            # Reserved Instance coverage (the g5.12xlarge reservation; whole hours of the covered instances)
            if w.commit == "ri" and RESERVATION.start <= d < RESERVATION.end and w.sku == RESERVATION.instance_type:
                eff_rate = RESERVATION.upfront_hourly + RESERVATION.recurring_hourly
                row = fill(self._base(w.account, d, end, "DiscountedUsage", product_code), qty_d, Decimal(0),
                           f"{w.sku} reserved instance applied")
                row["pricing/term"] = "Reserved"
                row["reservation/ReservationARN"] = RESERVATION.arn
                row["reservation/EffectiveCost"] = money(qty_d * eff_rate, 10)
                row["reservation/AmortizedUpfrontCostForUsage"] = money(qty_d * RESERVATION.upfront_hourly, 10)
                row["reservation/RecurringFeeForUsage"] = money(qty_d * RESERVATION.recurring_hourly, 10)
                ri_used[d.replace(day=1)] += qty_d
                self._add(row, Decimal(0), row["reservation/EffectiveCost"], **common)
                commitment_facts.record_family(self.planted, "AWS", family, hours=qty_d, committed=qty_d)
                continue
            # Savings Plan coverage (on-demand compute only), partial coverage splits the line
            covered = Decimal(0)
            if w.commit in ("sp", "sm-sp") and not spot:
                for sp in (p for p in SAVINGS_PLANS if p.covers(w, product_code)):
                    left = sp_left.get(sp.arn, Decimal(0))
                    if left <= 0 or covered >= qty_d:
                        continue
                    sp_rate = money(price * (1 - sp.discount), 6)
                    can = min(qty_d - covered, money(left / sp_rate, 8))
                    if can <= 0:
                        continue
                    eff = money(can * sp_rate, 10)
                    od_cost = money(can * price, 10)
                    sp_left[sp.arn] = left - eff
                    sp_used[sp.arn] += eff
                    commitment_facts.record(self.planted, sp.arn, d.replace(day=1), provider="AWS",
                                            kind="Savings Plan", end=sp.end, covered_list_cost=od_cost)
                    row = fill(self._base(w.account, d, end, "SavingsPlanCoveredUsage", product_code), can, price,
                               f"{w.sku} usage covered by Savings Plan")
                    row["savingsPlan/SavingsPlanARN"] = sp.arn
                    row["savingsPlan/SavingsPlanRate"] = sp_rate
                    row["savingsPlan/SavingsPlanEffectiveCost"] = eff
                    share = can / qty_d
                    self._add(row, od_cost, eff, **{**common, "delta": money(delta * share, 10)})
                    neg = fill(self._base(w.account, d, end, "SavingsPlanNegation", product_code), can, -price,
                               f"SavingsPlanNegation used by AccountId : {acct} and UsageSku : {product['sku']}")
                    neg["savingsPlan/SavingsPlanARN"] = sp.arn
                    neg["savingsPlan/SavingsPlanRate"] = sp_rate
                    neg["pricing/publicOnDemandCost"] = Decimal(0)
                    self._add(neg, -od_cost, Decimal(0), team=w.team, service=service)
                    covered += can
            rest = qty_d - covered
            if w.sku in EC2 and not spot:
                commitment_facts.record_family(self.planted, "AWS", family, hours=qty_d, committed=covered)
            if rest > 0:
                row = fill(self._base(w.account, d, end, "Usage", product_code), rest, unit_price, desc)
                share = rest / qty_d if qty_d else Decimal(1)
                c = money(rest * unit_price, 10)
                if covered:
                    common = {**common, "delta": money(delta * share, 10)}
                self._add(row, c, c, **common)

    def _sp_fee(self, sp: SavingsPlan, d: date, used: Decimal) -> None:
        row = self._base(None, d, d + timedelta(days=1), "SavingsPlanRecurringFee", sp.product_code)
        upfront = sp.payment == "All Upfront"
        billed = Decimal(0) if upfront else sp.daily
        total = sp.daily
        row.update({
            "lineItem/UsageType": sp.usage_type, "lineItem/Operation": "", "lineItem/UsageAmount": Decimal(24),
            "lineItem/UnblendedRate": Decimal(0) if upfront else sp.hourly,
            "lineItem/LineItemDescription": f"{sp.payment} {sp.label} recurring fee",
            "lineItem/ResourceId": sp.arn,
            "savingsPlan/SavingsPlanARN": sp.arn, "savingsPlan/TotalCommitmentToDate": total,
            "savingsPlan/UsedCommitment": used,
            "savingsPlan/RecurringCommitmentForBillingPeriod": billed,
            "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod": total if upfront else Decimal(0),
            "savingsPlan/StartTime": ts(sp.start), "savingsPlan/EndTime": ts(sp.end),
            "savingsPlan/PaymentOption": sp.payment, "savingsPlan/PurchaseTerm": "1yr",
            "savingsPlan/OfferingType": sp.offering,
            "pricing/unit": "Hrs", "pricing/term": "Savings Plan",
        })
        row["_product"] = {"product_name": sp.product_name,
                           "servicecode": sp.product_code, "product_family": "Savings Plan",
                           "usagetype": sp.usage_type}
        self._add(row, billed, total - used)
        commitment_facts.record(self.planted, sp.arn, d.replace(day=1), provider="AWS", kind="Savings Plan",
                                end=sp.end, used_cost=used, unused_cost=total - used)

    def _sp_upfront(self, sp: SavingsPlan) -> None:
        end = sp.start + timedelta(days=1)
        row = self._base(None, sp.start, end, "SavingsPlanUpfrontFee", sp.product_code)
        upfront = sp.hourly * 24 * 365
        row.update({
            "bill/BillType": "Purchase", "lineItem/UsageType": sp.usage_type, "lineItem/Operation": "",
            "lineItem/UsageAmount": Decimal(1), "lineItem/UnblendedRate": upfront,
            "lineItem/LineItemDescription": f"All Upfront {sp.label} purchase, 1 year",
            "lineItem/ResourceId": sp.arn, "savingsPlan/SavingsPlanARN": sp.arn,
            "savingsPlan/StartTime": ts(sp.start), "savingsPlan/EndTime": ts(sp.end),
            "savingsPlan/PaymentOption": sp.payment, "savingsPlan/PurchaseTerm": "1yr",
            "savingsPlan/OfferingType": sp.offering, "pricing/term": "Savings Plan",
        })
        row["_product"] = {"product_name": sp.product_name,
                           "servicecode": sp.product_code, "product_family": "Savings Plan",
                           "usagetype": sp.usage_type}
        self._add(row, upfront, Decimal(0))

    def _ri_fees(self, used_by_bp: dict[date, Decimal]) -> None:
        r = RESERVATION
        if self.payer != MAIN_PAYER:
            return
        for bp in model.billing_periods():
            start = max(bp, r.start)
            end = min(next_month(bp), r.end, model.TODAY)
            if start >= end:
                continue
            hours = Decimal((end - start).days * 24 * r.count)
            used = used_by_bp.get(bp, Decimal(0))
            unused = hours - used
            row = self._base("ml-prod", start, end, "RIFee", "AmazonEC2")
            row.update({
                "lineItem/UsageType": f"HeavyUsage:{r.instance_type}", "lineItem/Operation": "RunInstances",
                "lineItem/UsageAmount": hours, "lineItem/UnblendedRate": r.recurring_hourly,
                "lineItem/LineItemDescription": (f"USD {fmt(r.recurring_hourly)} hourly fee per Linux/UNIX "
                                                  f"(Amazon VPC), {r.instance_type} instance"),
                "lineItem/ResourceId": r.arn, "pricing/term": "Reserved", "pricing/unit": "Hrs",
                "reservation/ReservationARN": r.arn,
                "reservation/AmortizedUpfrontFeeForBillingPeriod": money(hours * r.upfront_hourly, 10),
                "reservation/UnusedQuantity": unused,
                "reservation/UnusedRecurringFee": money(unused * r.recurring_hourly, 10),
                "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": money(unused * r.upfront_hourly, 10),
                "reservation/NumberOfReservations": Decimal(r.count),
                "reservation/TotalReservedUnits": hours,
                "reservation/UpfrontValue": money(r.upfront_hourly * 8760 * r.count, 10),
                "reservation/StartTime": ts(r.start), "reservation/EndTime": ts(r.end),
            })
            row["_product"] = {"product_name": "Amazon Elastic Compute Cloud", "servicecode": "AmazonEC2",
                               "product_family": "Compute Instance", "instance_type": r.instance_type,
                               "region_code": "us-east-1"}
            eff = row["reservation/UnusedRecurringFee"] + row["reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"]
            self._add(row, money(hours * r.recurring_hourly, 10), eff)
            commitment_facts.record(self.planted, r.arn, bp, provider="AWS", kind="Reserved Instance",
                                    end=r.end, hours=hours, used_hours=used, unused_cost=eff,
                                    used_cost=money(used * (r.upfront_hourly + r.recurring_hourly), 10))

    def _ri_upfront(self) -> None:
        r = RESERVATION
        row = self._base("ml-prod", r.start, r.start + timedelta(days=1), "Fee", "AmazonEC2")
        upfront = money(r.upfront_hourly * 8760 * r.count, 10)
        row.update({
            "bill/BillType": "Purchase", "lineItem/UsageType": f"HeavyUsage:{r.instance_type}",
            "lineItem/Operation": "RunInstances", "lineItem/UsageAmount": Decimal(r.count),
            "lineItem/UnblendedRate": money(upfront / r.count, 10),
            "lineItem/LineItemDescription": f"Sign up charge for subscription: {stable_hex(9, r.arn)}, "
                                            f"planId: {stable_hex(7, 'plan', r.arn)}",
            "lineItem/ResourceId": r.arn, "reservation/ReservationARN": r.arn, "pricing/term": "Reserved",
            "reservation/UpfrontValue": upfront,
        })
        row["_product"] = {"product_name": "Amazon Elastic Compute Cloud", "servicecode": "AmazonEC2",
                           "product_family": "Compute Instance", "instance_type": r.instance_type}
        self._add(row, upfront, Decimal(0))

    # -------------------------------------------------------------------------------------------------
    def credits_refunds_tax(self, credits: list[tuple[str, str, Decimal, str]],
                            refund: tuple[date, str, Decimal, str] | None) -> None:
        """Monthly credits (capped by the product's monthly usage), one refund, tax on closed months.

        ``credits`` = [(product code, account key, monthly cap, description)], applied while a budget lasts.
        """
        usage_by: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
        for r in self.rows:
            usage_by[(r["_bp"], r["lineItem/ProductCode"])] += r["_billed"]
        for product_code, acct, cap, desc in credits:
            budget = cap * 6
            for bp in model.billing_periods():
                if budget <= 0:
                    break
                amt = min(cap, usage_by.get((bp, product_code), Decimal(0)), budget)
                if amt <= 0:
                    continue
                budget -= amt
                end = min(next_month(bp), model.TODAY)
                row = self._base(acct, bp, end, "Credit", product_code)
                row.update({"lineItem/LineItemDescription": desc, "lineItem/UsageAmount": Decimal(0),
                            "lineItem/UsageType": "", "lineItem/Operation": ""})
                row["_product"] = {"product_name": _product_name(product_code), "servicecode": product_code}
                self._add(row, -amt, -amt)
        if refund:
            d, product_code, amt, desc = refund
            row = self._base("ml-prod", d, d + timedelta(days=1), "Refund", product_code)
            row.update({"bill/BillType": "Refund", "lineItem/LineItemDescription": desc,
                        "lineItem/UsageAmount": Decimal(0), "lineItem/UsageType": "", "lineItem/Operation": ""})
            row["_product"] = {"product_name": _product_name(product_code), "servicecode": product_code}
            self._add(row, -amt, -amt)
        # sales tax on closed billing periods, per usage account and product, 6% of positive billed amount
        billed: dict[tuple[date, str, str], Decimal] = defaultdict(Decimal)
        for r in self.rows:
            billed[(r["_bp"], r["lineItem/UsageAccountId"], r["lineItem/ProductCode"])] += r["_billed"]
        acct_key = {v[2]: k for k, v in ACCOUNTS.items()}
        acct_key[self.payer] = None
        current = model.TODAY.replace(day=1)
        for (bp, acct, product_code), amount in sorted(billed.items()):
            if bp >= current or amount <= 0:
                continue
            tax = money(amount * Decimal("0.06"), 2)
            row = self._base(acct_key[acct], bp, next_month(bp), "Tax", product_code)
            row.update({"lineItem/LineItemDescription": f"Tax for product code {product_code}",
                        "lineItem/TaxType": "US Sales Tax", "lineItem/UsageAmount": Decimal(1),
                        "lineItem/UsageType": "", "lineItem/Operation": ""})
            row["_product"] = {"product_name": _product_name(product_code), "servicecode": product_code}
            self._add(row, tax, tax)

    def finalize(self) -> list[dict]:
        """Invoice ids on closed periods (blank for the open month), rows ordered by period, start, id."""
        current = model.TODAY.replace(day=1)
        for r in self.rows:
            if r["_bp"] < current:
                r["bill/InvoiceId"] = f"{int(stable_hex(9, self.payer, r['_bp']), 16) % 10**10:010d}"
        self.rows.sort(key=lambda r: (r["_bp"], r["lineItem/UsageStartDate"], r["lineItem/UsageAccountId"],
                                      r["lineItem/ProductCode"], r["identity/LineItemId"]))
        return self.rows


def _product_name(code: str) -> str:
    for v in CATALOG.values():
        if v[0] == code:
            return v[1]
    return {"AmazonEC2": "Amazon Elastic Compute Cloud", "ComputeSavingsPlans": "Savings Plans for AWS Compute usage",
            "MachineLearningSavingsPlans": "Savings Plans for Machine Learning"}.get(code, code)


def payer_lines(payer: str, seed: int, planted: Planted, dataset: str) -> list[dict]:
    """Every CUR line of one payer (main org or research lab) over the sample window."""
    lines = AwsLines(payer, seed, planted, dataset)
    wl = [w for w in model.aws_workloads() if ACCOUNTS[w.account][0] == payer]
    lines.usage_rows(wl)
    ai_tokens.aws_lines(lines, payer)  # Bedrock token lines (samples/ai_tokens.py)
    if payer == MAIN_PAYER:
        lines.credits_refunds_tax(
            [("AmazonBedrock", "ml-prod", Decimal("2500"), "AWS Generative AI Accelerator credit")],
            (date(2026, 7, 15), "AmazonEC2", Decimal("1250.00"),
             "Refund for EC2 capacity reservation billing error (case 17632541)"))
    else:
        lines.credits_refunds_tax(
            [("AmazonEC2", "lab-research", Decimal("1500"), "AWS Cloud Credit for Research")], None)
    return lines.finalize()


def by_period(rows: list[dict]) -> list[tuple[date, list[dict]]]:
    """The lines grouped by billing period, in period order (one export file or delivery per period)."""
    groups: dict[date, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["_bp"]].append(r)
    return sorted(groups.items())


def scale_totals(totals: list[dict], k: int) -> list[dict]:
    """Known totals of an export whose lines are written ``k`` times (``--rows`` scaling)."""
    return [{**t, "billed": str(Decimal(t["billed"]) * k), "amortized": str(Decimal(t["amortized"]) * k),
             "rows": t["rows"] * k} for t in totals]


def totals(rows: list[dict], provider: str, dataset: str, account: str) -> list[dict]:
    """Known totals per billing period and currency, from the generator's own per-line contributions."""
    agg: dict[tuple[date, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for r in rows:
        a = agg[(r["_bp"], r["lineItem/CurrencyCode"])]
        a[0] += r["_billed"]
        a[1] += r["_effective"]
        a[2] += 1
    return [{"provider": provider, "dataset": dataset, "billing_account_id": account,
             "billing_period": bp.strftime("%Y-%m"), "currency": cur, "billed": str(v[0]),
             "amortized": str(v[1]), "rows": v[2]} for (bp, cur), v in sorted(agg.items())]


def deterministic_uuid(*parts: object) -> str:
    return str(uuid.UUID(hex=stable_hex(32, *parts), version=4))
