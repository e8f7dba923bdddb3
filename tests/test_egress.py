"""Data-transfer classification, tiered egress pricing and cross-region training reads on hand-built FOCUS rows.

Expected numbers are computed by hand from the AWS tiers in ../shared/notes/methods.md (first 100 GB free,
$0.09/GB to 10 TB, $0.085 next 40 TB, $0.07 next 100 TB, $0.05 beyond; 1 TB = 1,024 GB as billed).
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import egress as eg
from finops_kit.testing import focus_rows

NO_CONFIG: dict = {}
S3 = "Amazon Simple Storage Service"
EC2 = "Amazon Elastic Compute Cloud"

CASES = [
    # AWS CUR usage types
    (dict(ServiceName=EC2, x_UsageType="USE1-DataTransfer-Out-Bytes"), "Internet egress", "out", None),
    (dict(ServiceName=S3, x_UsageType="DataTransfer-Out-Bytes"), "Internet egress", "out", None),
    (dict(ServiceName=S3, x_UsageType="USE1-USW2-AWS-Out-Bytes"), "Inter-region", "out", "us-west-2"),
    (dict(ServiceName=S3, x_UsageType="CAN1-USE1-AWS-In-Bytes"), "Inter-region", "in", "us-east-1"),
    (dict(ServiceName=EC2, x_UsageType="USE1-DataTransfer-Regional-Bytes"), "Inter-AZ", "out", None),
    (dict(ServiceName=EC2, x_UsageType="USE1-DataTransfer-xAZ-Out-Bytes"), "Inter-AZ", "out", None),
    (dict(ServiceName=EC2, x_UsageType="USE1-NatGateway-Bytes"), "NAT gateway", "out", None),
    (dict(ServiceName=S3, x_UsageType="USE1-CloudFront-Out-Bytes"), "CDN", "out", None),
    (dict(ServiceName="Amazon CloudFront", x_UsageType="US-DataTransfer-Out-Bytes"), "CDN", "out", None),
    (dict(ServiceName=EC2, x_UsageType="USE1-DataTransfer-In-Bytes"), "Ingress", "in", None),
    # FOCUS ChargeDescriptions (official FOCUS 1.0 sample wording, no usage type)
    (dict(ServiceName=EC2, ChargeDescription="$0.090 per GB - first 10 TB / month data transfer out beyond the "
                                             "global free tier"), "Internet egress", "out", None),
    (dict(ServiceName=EC2, ChargeDescription="$0.010 per GB - regional data transfer - in/out/between EC2 AZs or "
                                             "using elastic IPs or ELB"), "Inter-AZ", "out", None),
    (dict(ServiceName=S3, ChargeDescription="$0.02 per GB - US West (Oregon) data transfer to US East (Northern "
                                            "Virginia)"), "Inter-region", "out", "US East (Northern Virginia)"),
    # GCP SKU descriptions
    (dict(ProviderName="Google Cloud", ServiceName="Compute Engine",
          x_UsageType="Network Internet Egress from Americas to EMEA"), "Internet egress", "out", "EMEA"),
    (dict(ProviderName="Google Cloud", ServiceName="Compute Engine",
          x_UsageType="Network Inter Region Egress from Americas to EMEA"), "Inter-region", "out", "EMEA"),
    (dict(ProviderName="Google Cloud", ServiceName="Compute Engine", x_UsageType="Network Inter Zone Egress"),
     "Inter-AZ", "out", None),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage",
          x_UsageType="Download Worldwide Destinations (excluding Asia & Australia)"), "Internet egress", "out",
     None),
    (dict(ProviderName="Google Cloud", ServiceName="Networking", x_UsageType="Cloud CDN Cache Egress from NA"),
     "CDN", "out", None),
    (dict(ProviderName="Google Cloud", ServiceName="Networking", x_UsageType="Cloud NAT Gateway Data processing"),
     "NAT gateway", "out", None),
    # Azure meters
    (dict(ProviderName="Microsoft", ServiceName="Bandwidth", x_UsageType=None, SkuMeter="Standard Data Transfer Out"),
     "Internet egress", "out", None),
    (dict(ProviderName="Microsoft", ServiceName="Bandwidth", x_UsageType=None,
          SkuMeter="Intra Continent Data Transfer Out"), "Inter-region", "out", None),
    (dict(ProviderName="Microsoft", ServiceName="Virtual Network", x_UsageType=None, SkuMeter="Intra-Region Egress",
          ChargeDescription="Virtual Network Peering - Intra-Region Egress"), "Inter-AZ", "out", None),
    (dict(ProviderName="Microsoft", ServiceName="Bandwidth", x_UsageType=None, SkuMeter="Data Transfer In"),
     "Ingress", "in", None),
]


def test_transfer_type_per_provider():
    rows = []
    for i, (over, *_rest) in enumerate(CASES):
        r = dict(day="2026-10-01", ConsumedQuantity=10, ConsumedUnit="GB", cost=1, ResourceId=f"r{i}",
                 RegionId="us-east-1", x_UsageType=None)
        r.update(over)
        rows.append(r)
    rows.append(dict(day="2026-10-01", ServiceName=S3, x_UsageType="USE1-TimedStorage-ByteHrs", cost=1,
                     ResourceId="storage"))
    con = focus_rows(rows)
    got = {b: (t, d, dest) for b, t, d, dest in eg.transfer_rows(con, config=NO_CONFIG).query(
        "r", "SELECT bucket, transfer_type, direction, dest_region FROM r").fetchall()}
    wrong = [(over, got.get(f"r{i}")) for i, (over, ttype, direction, dest) in enumerate(CASES)
             if got.get(f"r{i}") != (ttype, direction, dest)]
    assert not wrong
    assert "storage" not in got


@pytest.mark.parametrize("gb, cost", [
    (50, "0"),                                     # inside the free 100 GB
    (5000, "441.00"),                              # 4,900 x 0.09
    (20000, "1742.200"),                           # 10,140 x 0.09 + 9,760 x 0.085 = 912.6 + 829.6
    (200000, "13882.200"),                         # 912.6 + 40,960 x 0.085 + 102,400 x 0.07 + 46,400 x 0.05
])
def test_tier_cost_by_hand(gb, cost):
    tiers = eg.load_egress_prices().get("AWS", "Internet egress")
    assert eg.tier_cost(gb, tiers)["list_cost"] == Decimal(cost)


def test_tier_position_at_current_volume():
    tiers = eg.load_egress_prices().get("AWS", "Internet egress")
    tc = eg.tier_cost(5000, tiers)
    # 5,000 GB sits in the $0.09 tier; the $0.085 tier starts at 10,240 GB, 5,240 GB away
    assert (tc["marginal_per_gb"], tc["gb_to_next_tier"], tc["next_tier_price"]) == \
        (Decimal("0.09"), 5240.0, Decimal("0.085"))
    assert tc["average_per_gb"] == Decimal("441") / Decimal(5000)


@pytest.mark.parametrize("gb, marginal, next_gb, next_price", [
    (0, "0", 100.0, "0.09"),            # the first GB is free; the paid tier starts at 100 GB
    (100, "0.09", 10240.0, "0.085"),    # exactly at a boundary the next GB is paid at the tier starting there
    (10240, "0.085", 51200.0, "0.07"),
    (153600, "0.05", None, None),       # the last tier is open-ended
])
def test_marginal_price_at_an_exact_tier_boundary(gb, marginal, next_gb, next_price):
    tiers = eg.load_egress_prices().get("AWS", "Internet egress")
    tc = eg.tier_cost(gb, tiers)
    assert tc["marginal_per_gb"] == Decimal(marginal)
    assert tc["next_tier_gb"] == next_gb
    assert tc["next_tier_price"] == (None if next_price is None else Decimal(next_price))
    # the marginal price is what one more GB adds to the list cost
    assert eg.tier_cost(gb + 1, tiers)["list_cost"] - tc["list_cost"] == Decimal(marginal)


def test_by_type_flows_and_tiered_bill():
    rows = [
        dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USE1-DataTransfer-Out-Bytes", ConsumedQuantity=20000,
             ConsumedUnit="GB", cost=1742.20, RegionId="us-east-1", tags={"team": "serving"}),
        dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USE1-DataTransfer-Regional-Bytes",
             ConsumedQuantity=3000, ConsumedUnit="GB", cost=30, RegionId="us-east-1", tags={"team": "training"}),
        dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USE1-NatGateway-Bytes", ConsumedQuantity=1000,
             ConsumedUnit="GB", cost=45, RegionId="us-east-1", tags={"team": "training"}),
    ]
    con = focus_rows(rows)
    t = eg.by_type(con, by=["team", "transfer_type"], config=NO_CONFIG)
    assert t.iloc[0][["team", "transfer_type", "cost", "gb"]].tolist() == \
        ["serving", "Internet egress", Decimal("1742.2"), 20000.0]
    assert t[t["transfer_type"] == "NAT gateway"]["usd_per_gb"].iloc[0] == pytest.approx(0.045)
    flows = eg.largest_flows(con, top=2, config=NO_CONFIG)
    assert flows["transfer_type"].tolist() == ["Internet egress", "NAT gateway"]
    assert flows["share"].iloc[0] == pytest.approx(1742.2 / 1817.2)
    tiered = eg.tiered_egress(con, config=NO_CONFIG)
    row = tiered.iloc[0]
    assert (row["gb"], row["billed_cost"], row["list_cost"]) == (20000.0, Decimal("1742.2"), Decimal("1742.2"))
    assert row["marginal_per_gb"] == Decimal("0.085") and tiered.attrs["price_as_of"] == "2026-01-01"


def test_cross_region_training_reads():
    rows = [
        # 8 TB/month read from an S3 bucket in us-east-1 into us-west-2, where p4d training runs
        dict(day="2026-10-05", ServiceName=S3, x_UsageType="USE1-USW2-AWS-Out-Bytes", ConsumedQuantity=8192,
             ConsumedUnit="GB", cost=163.84, RegionId="us-east-1", ResourceId="imagenet-shards"),
        dict(day="2026-10-05", ServiceName=S3, x_UsageType="USE1-TimedStorage-ByteHrs", ConsumedQuantity=2048,
             ConsumedUnit="GB-Mo", cost=47.104, RegionId="us-east-1", ResourceId="imagenet-shards"),
        dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USW2-BoxUsage:p4d.24xlarge", cost=30000,
             RegionId="us-west-2", x_AiWorkload="Accelerated compute"),
        # a flow into a region without AI spend is not a training read
        dict(day="2026-10-05", ServiceName=S3, x_UsageType="USE1-EUC1-AWS-Out-Bytes", ConsumedQuantity=100,
             ConsumedUnit="GB", cost=2, RegionId="us-east-1", ResourceId="logs"),
    ]
    con = focus_rows(rows)
    df = eg.cross_region_training(con, config=NO_CONFIG)
    assert len(df) == 1
    r = df.iloc[0]
    assert (r["bucket"], r["region"], r["dest_region"]) == ("imagenet-shards", "us-east-1", "us-west-2")
    assert r["cost"] == Decimal("163.84") and r["ai_spend_in_dest"] == Decimal("30000") and r["source_is_storage"]
    # 8,192 GB crossed for a 2,048 GB bucket: read 4 times; a replica costs its storage, $47.10/month
    assert r["reads_of_bucket"] == pytest.approx(4.0)
    assert r["replica_monthly_cost"] == Decimal("47.10")


def test_tiered_egress_says_which_providers_rest_on_unverified_tiers():
    prices = eg.load_egress_prices()
    assert ("Google Cloud", "Internet egress") in prices.unverified
    assert ("AWS", "Internet egress") not in prices.unverified  # methods.md
    rows = [dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USE1-DataTransfer-Out-Bytes", ConsumedQuantity=500,
                 ConsumedUnit="GB", cost=36, RegionId="us-east-1"),
            dict(day="2026-10-05", ProviderName="Google Cloud", ServiceName="Compute Engine",
                 x_UsageType="Network Internet Egress from Americas to Americas", ConsumedQuantity=500,
                 ConsumedUnit="GB", cost=60, RegionId="us-central1")]
    te = eg.tiered_egress(focus_rows(rows), prices).set_index("provider")
    assert not te.loc["AWS", "price_unverified"]
    assert bool(te.loc["Google Cloud", "price_unverified"])


def test_tier_prices_in_another_currency_are_not_compared_with_the_bill():
    # the packaged tiers are USD; a bill in EUR was compared with them and the USD list cost shown as EUR
    # ('5,373.06 EUR' beside a 7,583.43 EUR bill): without a price table in the bill's currency there is no
    # comparison, and the row says which currency the tiers are in
    from finops_kit import scope as S

    rows = [dict(day="2026-10-05", ServiceName=EC2, x_UsageType="USE1-DataTransfer-Out-Bytes", ConsumedQuantity=500,
                 ConsumedUnit="GB", cost=36, RegionId="us-east-1", BillingCurrency=cur) for cur in ("EUR", "USD")]
    con = focus_rows(rows)
    eur = eg.tiered_egress(con, scope=S.resolve(con, NO_CONFIG, currency="EUR")).iloc[0]
    assert eur["list_cost"] is None or pd.isna(eur["list_cost"])
    assert eur["price_currency"] == "USD" and eur["billed_cost"] == Decimal(36)
    usd = eg.tiered_egress(con, scope=S.resolve(con, NO_CONFIG, currency="USD")).iloc[0]
    assert usd["list_cost"] == Decimal(36) and usd["price_currency"] == "USD"  # (500 - 100) GB x 0.09


def test_a_tier_table_with_two_currencies_for_one_provider_is_refused(tmp_path):
    # tier costs are added up: a table with Google Cloud tier 1 in USD and tier 2 in EUR summed the two
    from finops_kit.errors import InputError

    t = tmp_path / "egress.csv"
    t.write_text("provider,transfer_type,tier_start_gb,tier_end_gb,price_per_gb,currency,as_of,source\n"
                 "Google Cloud,Internet egress,0,1024,0.12,USD,2026-01-01,x\n"
                 "Google Cloud,Internet egress,1024,,0.11,EUR,2026-01-01,x\n")
    with pytest.raises(InputError, match="several currencies"):
        eg.load_egress_prices(str(t))
