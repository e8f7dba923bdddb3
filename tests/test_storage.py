"""Storage inventory, lifecycle economics and recommendations on hand-built FOCUS tables.

Every expected number below is computed by hand from the dated default prices (../shared/notes/methods.md,
copied into finops_kit/data/storage_prices.csv); the arithmetic is written out next to each assertion.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from finops_kit import storage as st
from finops_kit.errors import ConfigError, InputError
from finops_kit.testing import focus_rows

from .conftest import local_moto_server

S3 = "Amazon Simple Storage Service"
NO_CONFIG: dict = {}  # tag key 'team' only, independent of the repo's finops.yaml


@pytest.fixture(scope="module")
def prices() -> st.PriceTable:
    return st.load_prices()


def s3(day: str, usage_type: str, qty: float, unit: str = "GB-Mo", cost: float = 0.0, bucket: str = "ml-data",
       **kw) -> dict:
    return dict(day=day, ServiceName=S3, ServiceCategory="Storage", x_UsageType=usage_type,
                ConsumedQuantity=qty, ConsumedUnit=unit, PricingQuantity=qty, PricingUnit=unit, cost=cost,
                ResourceId=bucket, RegionId="us-east-1", **kw)


# ------------------------------------------------------------------------------------------------ pure functions

def test_break_even_standard_to_ia_and_glacier_ir(prices):
    std, ia = prices["AWS", "S3 Standard"], prices["AWS", "S3 Standard-IA"]
    gir = prices["AWS", "S3 Glacier Instant Retrieval"]
    # a* = (p_A - p_B)/(r_B - r_A) = (0.023 - 0.0125)/(0.01 - 0) = 0.0105/0.01 = 1.05
    assert st.break_even_access(std.price_per_gb_month, ia.price_per_gb_month, std.retrieval_per_gb,
                                ia.retrieval_per_gb) == Decimal("1.05")
    # (0.023 - 0.004)/(0.03 - 0) = 0.019/0.03 = 0.6333...
    a = st.break_even_access(std.price_per_gb_month, gir.price_per_gb_month, std.retrieval_per_gb,
                             gir.retrieval_per_gb)
    assert abs(a - Decimal("0.633333")) < Decimal("0.000001")
    # no higher retrieval fee in B: no break-even
    assert st.break_even_access("0.023", "0.0125", "0.01", "0.01") is None


def test_payback_of_a_128_kb_object_to_ia(prices):
    ia = prices["AWS", "S3 Standard-IA"]
    # c_t = $0.01 per 1,000 transitions = $0.00001 per object; size = 128 KB = 128/1024^2 GB = 0.0001220703125 GB;
    # p_A - p_B = 0.023 - 0.0125 = 0.0105 $/GB-month; size x dp = 1.2817e-6 $/month; H = 1e-5/1.2817e-6 = 7.80
    h = st.payback_months(ia.transition_per_1000, 128, "0.023", ia.price_per_gb_month)
    assert h == Decimal("0.00001") / (Decimal("0.0001220703125") * Decimal("0.0105"))
    assert round(float(h), 2) == 7.80
    # a 1 MB object is 8x larger: pays back 8x faster
    assert round(float(st.payback_months("0.01", 1024, "0.023", "0.0125")), 4) == round(7.8019 / 8, 4)
    assert st.payback_months("0.01", 128, "0.0125", "0.023") is None


def test_early_deletion_and_intelligent_tiering_mix():
    # 20 days in a 90-day class bill 90 days: factor 4.5
    assert st.billed_lifetime_factor(20, 90) == Decimal("4.5")
    assert st.billed_lifetime_factor(120, 90) == 1
    # q = 0.5: Frequent 0.5, Infrequent 0.5 - 0.125 = 0.375, Archive Instant 0.5^3 = 0.125
    assert st.intelligent_tiering_mix(0.5) == (Decimal("0.5"), Decimal("0.375"), Decimal("0.125"))
    assert st.intelligent_tiering_mix(3) == (1, 0, 0)


def test_monthly_cost_small_objects_and_overhead(prices):
    ia, gfr = prices["AWS", "S3 Standard-IA"], prices["AWS", "S3 Glacier Flexible Retrieval"]
    # 1,024 GB of 64 KB objects in IA: each billed as 128 KB -> 2,048 GB x 0.0125 = 25.60, no reads
    s = st.Scenario(Decimal(1024), Decimal(64), Decimal(0))
    assert st.monthly_cost(ia, s) == Decimal("25.6")
    # Glacier Flexible adds 40 KB per object, 32 KB at its own price and 8 KB at S3 Standard: 1,024 GB of 1 MB
    # objects = 1,048,576 objects x 1,056 KB = 1,056 GB x 0.0036 = 3.8016, + 8 GB x 0.023 = 0.184;
    # reads 0.1 x 1,024 x 0.01 = 1.024
    s = st.Scenario(Decimal(1024), Decimal(1024), Decimal("0.1"))
    assert st.monthly_cost(gfr, s, prices) == Decimal("3.8016") + Decimal("0.184") + Decimal("1.024")
    with pytest.raises(ValueError, match="standard class"):
        st.monthly_cost(gfr, s)  # the 8 KB need the Standard price: never silently priced at the archive rate


@pytest.mark.parametrize("object_kb, kit_before, understated_pct", [(1024, "1.0534", 14), (64, "1.6474", 63)])
def test_deep_archive_bills_8_kb_per_object_at_standard(prices, object_kb, kit_before, understated_pct):
    gda = prices["AWS", "S3 Glacier Deep Archive"]
    assert (gda.overhead_kb, gda.standard_overhead_kb) == (32, 8)
    s = st.Scenario(Decimal(1024), Decimal(object_kb), Decimal(0))
    objects = Decimal(1024 * 1024 * 1024) / object_kb
    # AWS: (size + 32 KB) at 0.00099 + 8 KB at 0.023 per object
    by_hand = objects * ((object_kb + 32) * Decimal("0.00099") + 8 * Decimal("0.023")) / (1024 * 1024)
    got = st.monthly_cost(gda, s, prices)
    assert got == by_hand  # 1 MB: 1,024 x (1,056 x 0.00099 + 0.184)/1,024 = $1.2294; 64 KB: 16 x 0.27904 = $4.4646
    # the old model, all 40 KB at 0.00099, was 14% (1 MB objects) / 63% (64 KB objects) too low
    old = objects * (object_kb + 40) * Decimal("0.00099") / (1024 * 1024)
    assert round(old, 4) == Decimal(kit_before)
    assert round(100 * (1 - old / got)) == understated_pct


def test_price_table_is_dated_and_validated(tmp_path, prices):
    assert prices.as_of == "2025-06-01"
    assert prices["AWS", "S3 Standard"].price_per_gb_month == Decimal("0.023")
    assert prices["Google Cloud", "GCS Archive"].min_days == 365
    bad = tmp_path / "p.csv"
    text = (st.resources.files("finops_kit") / "data/storage_prices.csv").read_text()
    bad.write_text(text.replace("AWS,S3 Standard,0.023", "AWS,S3 Standard,zero"))
    with pytest.raises(InputError, match=r"p.csv, row \d+, column 'price_per_gb_month'.*not a number"):
        st.load_prices(bad)
    bad.write_text(text.replace("2025-06-01,methods.md\n", "June 2025,methods.md\n", 1))
    with pytest.raises(InputError, match="as_of"):
        st.load_prices(bad)


# ------------------------------------------------------------------------------------------------ classification

CASES = [
    # AWS CUR usage types
    (dict(x_UsageType="USE1-TimedStorage-ByteHrs"), "S3 Standard", "storage"),
    (dict(x_UsageType="TimedStorage-ByteHrs"), "S3 Standard", "storage"),  # us-east-1 has no prefix
    (dict(x_UsageType="USE1-TimedStorage-SIA-ByteHrs"), "S3 Standard-IA", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-ZIA-ByteHrs"), "S3 One Zone-IA", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-GIR-ByteHrs"), "S3 Glacier Instant Retrieval", "storage"),
    (dict(x_UsageType="USW2-TimedStorage-GlacierByteHrs"), "S3 Glacier Flexible Retrieval", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-GDA-ByteHrs"), "S3 Glacier Deep Archive", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-INT-FA-ByteHrs"), "S3 Intelligent-Tiering Frequent Access", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-INT-IA-ByteHrs"), "S3 Intelligent-Tiering Infrequent Access", "storage"),
    (dict(x_UsageType="USE1-TimedStorage-INT-AIA-ByteHrs"), "S3 Intelligent-Tiering Archive Instant Access",
     "storage"),
    (dict(x_UsageType="USE1-TimedStorage-SIA-SmObjects"), "S3 Standard-IA", "overhead"),
    (dict(x_UsageType="USE1-Monitoring-Automation-INT", ConsumedUnit="Objects"), "S3 Intelligent-Tiering",
     "monitoring"),
    (dict(x_UsageType="USE1-Retrieval-SIA", ConsumedUnit="GB"), "S3 Standard-IA", "retrieval"),
    (dict(x_UsageType="USE1-EarlyDelete-GIR"), "S3 Glacier Instant Retrieval", "early_deletion"),
    (dict(x_UsageType="USE1-Requests-Tier2", ConsumedUnit="Requests"), "S3 Standard", "request"),
    (dict(x_UsageType="USE1-Requests-GIR-Tier2", ConsumedUnit="Requests"), "S3 Glacier Instant Retrieval",
     "request"),
    (dict(x_UsageType="USE1-Requests-Tier4", ConsumedUnit="Requests"), "S3 Standard-IA", "transition"),
    # FOCUS file with only a ChargeDescription (the official FOCUS sample's S3 storage line)
    (dict(x_UsageType=None, ChargeDescription="$0.023 per GB - first 50 TB / month of storage used"),
     "S3 Standard", "storage"),
    (dict(x_UsageType=None, ChargeDescription="$0.004 per GB-Month of storage used in Glacier Instant Retrieval"),
     "S3 Glacier Instant Retrieval", "storage"),
    # not S3: same usage type under EFS, EBS volumes
    (dict(ServiceName="Amazon Elastic File System", x_UsageType="USE2-TimedStorage-ByteHrs"), "EFS", "storage"),
    (dict(ServiceName="Amazon Elastic Compute Cloud", x_UsageType="USE1-EBS:VolumeUsage.gp3"), "EBS volume",
     "storage"),
    # GCS SKU descriptions
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Standard Storage US Multi-region",
          ConsumedUnit="GiB Months"), "GCS Standard", "storage"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Nearline Storage US Multi-region",
          ConsumedUnit="GiB Months"), "GCS Nearline", "storage"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Coldline Storage Americas"),
     "GCS Coldline", "storage"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Archive Storage US Multi-region"),
     "GCS Archive", "storage"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Coldline Data Retrieval"),
     "GCS Coldline", "retrieval"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Nearline Storage Early Delete"),
     "GCS Nearline", "early_deletion"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage",
          x_UsageType="Multi-Region Standard Class B Operations"), "GCS Standard", "request"),
    (dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Nearline Class A Operations"),
     "GCS Nearline", "request"),
    # Azure meters (SkuMeter) and charge descriptions
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Hot LRS Data Stored"),
     "Azure Blob Hot", "storage"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Hot RA-GRS Data Stored"),
     "Azure Blob Hot", "storage"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Cool LRS Data Stored"),
     "Azure Blob Cool", "storage"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Cold LRS Data Stored"),
     "Azure Blob Cold", "storage"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Archive LRS Data Stored"),
     "Azure Blob Archive", "storage"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Archive Data Retrieval"),
     "Azure Blob Archive", "retrieval"),
    (dict(ProviderName="Microsoft", ServiceName="Storage", x_UsageType=None, SkuMeter="Cool LRS Early Delete"),
     "Azure Blob Cool", "early_deletion"),
    (dict(ProviderName="Microsoft", ServiceName="Storage Accounts", x_UsageType=None, SkuMeter=None,
          ChargeDescription="Tiered Block Blob - Hot LRS - Write Operations - US Central"), "Azure Blob Hot",
     "request"),
]


def test_class_and_charge_kind_per_provider():
    rows = []
    for i, (over, _, _) in enumerate(CASES):
        r = dict(day="2026-10-01", ServiceName=S3, ServiceCategory="Storage", ConsumedQuantity=1,
                 ConsumedUnit="GB-Mo", cost=1, ResourceId=f"r{i}")
        r.update(over)
        rows.append(r)
    # rows that are not storage: transfer out of S3, EC2 compute
    rows.append(dict(day="2026-10-01", ServiceName=S3, x_UsageType="USE1-DataTransfer-Out-Bytes", cost=1,
                     ResourceId="transfer"))
    rows.append(dict(day="2026-10-01", x_UsageType="USE1-BoxUsage:p4d.24xlarge", cost=1, ResourceId="ec2"))
    con = focus_rows(rows)
    got = {b: (c, k) for b, c, k in st.storage_rows(con, config=NO_CONFIG).query(
        "r", "SELECT bucket, storage_class, charge_kind FROM r").fetchall()}
    wrong = [(over, got.get(f"r{i}")) for i, (over, cls, kind) in enumerate(CASES) if got.get(f"r{i}") != (cls, kind)]
    assert not wrong
    assert "transfer" not in got and "ec2" not in got


def test_units_normalize_to_gb_months():
    gcs = dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", x_UsageType="Standard Storage US Multi-region")
    con = focus_rows([
        # 1 GiB stored for a 730-hour month = 2^30 x 2,628,000 byte-seconds = 1 GB-month
        dict(day="2026-10-01", ConsumedQuantity=2**30 * 2628000, ConsumedUnit="byte-seconds", ResourceId="a", **gcs),
        dict(day="2026-10-01", ConsumedQuantity=730, ConsumedUnit="GB Hours", ResourceId="b", **gcs),
        dict(day="2026-10-01", ConsumedQuantity=None, ConsumedUnit=None, PricingQuantity=2, PricingUnit="1 GB/Month",
             ResourceId="c", **gcs),
        dict(day="2026-10-01", ConsumedQuantity=1, ConsumedUnit="TB-Months", ResourceId="d", **gcs),
    ])
    got = dict(st.storage_rows(con, config=NO_CONFIG).query("r", "SELECT bucket, gb_month FROM r").fetchall())
    assert got == pytest.approx({"a": 1.0, "b": 1.0, "c": 2.0, "d": 1024.0})


# ------------------------------------------------------------------------------------------------ inventory

def test_inventory_growth_and_team_aliases():
    rows = []
    for month, gb in (("2026-07-31", 1000), ("2026-08-31", 1100), ("2026-09-30", 1210)):  # closed months
        rows.append(s3(month, "USE1-TimedStorage-ByteHrs", gb, cost=gb * 0.023, tags={"Team": "vision"}))
        rows.append(s3(month, "USE1-Requests-Tier2", 1_000_000, unit="Requests", cost=0.4, tags={"Team": "vision"}))
    rows.append(s3("2026-09-15", "USE1-EarlyDelete-GIR", 10, cost=1.5, bucket="ckpt", tags={"team": "nlp"}))
    con = focus_rows(rows)
    cfg = {"tag_policy": {"keys": {"team": {"aliases": ["Team"]}}}}
    inv = st.inventory(con, by=["team", "storage_class"], config=cfg)
    vision = inv[inv["team"] == "vision"].iloc[0]
    # storage 0.023 x (1000 + 1100 + 1210) = 76.13; requests 3 x 0.40 = 1.20
    assert vision["storage_cost"] == Decimal("76.130000000000")
    assert vision["request_cost"] == Decimal("1.2")
    assert vision["cost"] == Decimal("77.33")
    assert vision["avg_gb"] == pytest.approx(3310 / 3)
    assert vision["requests"] == 3_000_000
    nlp = inv[inv["team"] == "nlp"].iloc[0]
    assert (nlp["storage_class"], nlp["early_deletion_cost"]) == ("S3 Glacier Instant Retrieval", Decimal("1.5"))
    # 'Team' is a case variant of 'team' (tag_policy consolidates variants); without that, it is untagged
    assert set(st.inventory(con, by="team", config=NO_CONFIG)["team"]) == {"vision", "nlp"}
    strict = {"tag_policy": {"keys": {"team": {}}, "consolidate_variants": False}}
    assert "(untagged)" in set(st.inventory(con, by="team", config=strict)["team"])
    # growth: 1000 -> 1100 -> 1210 is +10%/month; next month 1331 GB at 0.023 $/GB = 30.61
    g = st.growth(con, by="storage_class", months_ahead=2, config=NO_CONFIG)
    g = g[g["storage_class"] == "S3 Standard"]
    assert g["monthly_growth"].iloc[0] == pytest.approx(0.10)
    proj = g[g["kind"] == "projected"]
    assert proj["gb"].tolist() == pytest.approx([1331.0, 1464.1])
    assert proj["storage_cost"].iloc[0] == Decimal("30.61")


# ------------------------------------------------------------------------------------------------ recommendations

def one_bucket(gb: float = 10240, months: tuple[str, ...] = ("2026-10-15",), extra: list | None = None):
    rows = [s3(m, "USE1-TimedStorage-ByteHrs", gb, cost=gb * 0.023) for m in months]
    return focus_rows(rows + (extra or []))


def test_recommendation_hand_computed(prices):
    con = one_bucket()
    recs = st.recommend(con, prices, access_fraction=0.1, avg_object_kb=1024, config=NO_CONFIG)
    ia = recs[recs["target_class"] == "S3 Standard-IA"].iloc[0]
    # now: 10,240 GB x 0.023 = 235.52. In IA: 10,240 x 0.0125 = 128 + reads 0.1 x 10,240 x 0.01 = 10.24 -> 138.24
    # saving 97.28; 10,240 GB / 1 MB = 10,485,760 objects x $0.01/1000 = 104.8576 once; payback 1.078 months
    assert ia["access_source"] == "parameter"
    assert ia["current_monthly_cost"] == Decimal("235.52")
    assert ia["new_monthly_cost"] == Decimal("138.24")
    assert ia["monthly_saving"] == Decimal("97.28")
    assert ia["one_time_cost"] == Decimal("104.86")
    assert ia["payback_months"] == pytest.approx(104.8576 / 97.28)
    assert ia["break_even_access"] == pytest.approx(1.05)
    # archive classes are cheaper on paper but not proposed for data read 10%/month
    gfr = recs[recs["target_class"] == "S3 Glacier Flexible Retrieval"].iloc[0]
    assert not gfr["eligible"] and "not proposed" in gfr["warning"]
    best = recs[recs["recommended"]]
    assert len(best) == 1 and best.iloc[0]["eligible"]
    assert best.iloc[0]["monthly_saving"] == recs[recs["eligible"]]["monthly_saving"].max()
    assert recs.attrs["price_as_of"] == "2025-06-01"
    # min_saving hides it
    assert not st.recommend(con, prices, access_fraction=0.1, min_saving=10_000, config=NO_CONFIG)[
        "recommended"].any()


def test_small_objects_make_ia_expensive(prices):
    con = one_bucket()
    big = st.recommend(con, prices, access_fraction=0.1, avg_object_kb=1024, config=NO_CONFIG)
    small = st.recommend(con, prices, access_fraction=0.1, avg_object_kb=32, config=NO_CONFIG)
    ia = small[small["target_class"] == "S3 Standard-IA"].iloc[0]
    # 32 KB objects are billed as 128 KB: 4 x 10,240 GB x 0.0125 = 512 + 10.24 reads = 522.24 > 235.52 today
    assert ia["new_monthly_cost"] == Decimal("522.24") and ia["monthly_saving"] < 0
    assert "128 KB minimum billable size" in ia["warning"]
    it = small[small["target_class"] == "S3 Intelligent-Tiering"].iloc[0]
    assert it["monthly_saving"] <= 0 and "not monitored" in it["warning"]
    assert big[big["target_class"] == "S3 Standard-IA"].iloc[0]["monthly_saving"] > 0


@pytest.mark.parametrize("lifetime", [20, 60, 100, 200, None])
def test_lifetime_rule_never_silent(prices, lifetime):
    con = one_bucket(months=("2026-09-15", "2026-10-15"))
    recs = st.recommend(con, prices, access_fraction=0.0, lifetime_days=lifetime, config=NO_CONFIG)
    assert len(recs)
    for r in recs.itertuples():
        if r.min_days > r.lifetime_days - r.transition_after_days:
            assert f"minimum storage duration {r.min_days} d exceeds the data's observed lifetime" in r.warning
    if lifetime is None:  # lower bound: Sept+Oct in the bill = 61 days
        assert set(recs["lifetime_basis"]) == {"seen in the bill (lower bound)"}
        assert recs["lifetime_days"].iloc[0] == 61
    if lifetime == 20:  # gone before 30 days: nothing can be moved by a 30-day rule
        assert set(recs["target_class"]) == {"S3 Intelligent-Tiering"}


def test_early_deletion_priced_when_lifetime_is_known(prices):
    con = one_bucket(gb=1024)
    recs = st.recommend(con, prices, access_fraction=0.0, lifetime_days=60, config=NO_CONFIG)
    gir = recs[recs["target_class"] == "S3 Glacier Instant Retrieval"].iloc[0]
    # objects live 60 d and move at 30 d: half the data (512 GB) is in GIR, for 30 d of a 90-d minimum (x3)
    # GIR storage 512 x 0.004 x 3 = 6.144; the other half stays in Standard 512 x 0.023 = 11.776;
    # new objects per month 524,288 x 30.4375/30 = 531,934.8 x $0.02/1000 = 10.6387 transition fees
    # new cost 6.144 + 11.776 + 10.6387 = 28.5587 vs 23.552 today: not worth it
    assert gir["new_monthly_cost"] == Decimal("28.56")
    assert gir["monthly_saving"] == Decimal("-5.01")
    assert "early-deletion charges are included" in gir["warning"]
    assert not gir["recommended"]


def test_access_and_lifetime_derived_from_the_bill(prices):
    extra = [s3("2026-10-15", "USE1-Requests-Tier2", 1_000_000, unit="Requests", cost=0.4),
             s3("2026-10-15", "USE1-Requests-Tier1", 102_400, unit="Requests", cost=0.512)]
    con = one_bucket(gb=1000, extra=extra)
    recs = st.recommend(con, prices, avg_object_kb=1024, config=NO_CONFIG)
    r = recs.iloc[0]
    # reads: 1,000,000 GETs x 1 MB = 976.5625 GB over 1,000 GB stored -> a = 0.9765625 per month
    assert r["access_source"].startswith("bill") and r["access"] == pytest.approx(0.9765625)
    # writes: 102,400 PUTs x 1 MB = 100 GB/month; 1,000 GB / 100 GB = 10 months x 30.4375 d = 304 d
    assert r["lifetime_basis"].startswith("turnover") and r["lifetime_days"] == 304
    # at a ~= 0.98/month, below the IA break-even of 1.05 but above Glacier IR's 0.633
    gir = recs[recs["target_class"] == "S3 Glacier Instant Retrieval"].iloc[0]
    assert "above the break-even" in gir["warning"] and gir["monthly_saving"] < 0


def test_recommend_rejects_bad_parameters(prices):
    con = one_bucket()
    with pytest.raises(ConfigError, match="group_by"):
        st.recommend(con, prices, group_by="planet")
    with pytest.raises(ConfigError, match="avg_object_kb"):
        st.recommend(con, prices, avg_object_kb=0)


# ------------------------------------------------------------------------------------------------ S3 lifecycle JSON

@pytest.fixture()
def moto_s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 (free port), fake credentials, stopped after the test."""
    pytest.importorskip("moto.server")
    import boto3
    from botocore.config import Config
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with local_moto_server() as url:
        yield boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                           config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def test_lifecycle_json_accepted_by_s3(moto_s3, prices):
    import botocore.exceptions

    rows = [s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 10240, cost=235.52, bucket="ml-datasets",
               tags={"team": "vision"}),
            s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 2048, cost=47.10, bucket="ckpt-archive",
               tags={"team": "nlp"})]
    con = focus_rows(rows)
    recs = st.recommend(con, prices, access_fraction=0.0, archive_max_access=0.0, config=NO_CONFIG)
    configs = st.lifecycle_configurations(recs, top=5)
    assert set(configs) == {"ml-datasets", "ckpt-archive"}
    by_tag = st.lifecycle_configurations(
        st.recommend(con, prices, group_by="team", access_fraction=0.2, config=NO_CONFIG), top=5)
    # a team is a bucket tag: its rules cover its buckets whole, never filter on an object tag
    assert set(by_tag) == {"ml-datasets", "ckpt-archive"}
    assert not any("Tag" in r["Filter"] or "And" in r["Filter"] for c in by_tag.values() for r in c["Rules"])
    moto_s3.create_bucket(Bucket="ml-datasets")
    for name, cfg in [*configs.items(), *by_tag.items()]:
        st.validate_lifecycle_configuration(cfg)
        moto_s3.put_bucket_lifecycle_configuration(Bucket="ml-datasets", LifecycleConfiguration=cfg)
        back = moto_s3.get_bucket_lifecycle_configuration(Bucket="ml-datasets")["Rules"]
        assert [(r["ID"], r["Status"], r["Transitions"]) for r in back] == \
            [(r["ID"], r["Status"], r["Transitions"]) for r in cfg["Rules"]], name
    # the server does validate the schema shape: a Filter with two bare conditions is rejected
    bad = {"Rules": [{"ID": "x", "Status": "Enabled", "Filter": {"Prefix": "", "Tag": {"Key": "a", "Value": "b"}},
                      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]}
    with pytest.raises(botocore.exceptions.ClientError, match="MalformedXML"):
        moto_s3.put_bucket_lifecycle_configuration(Bucket="ml-datasets", LifecycleConfiguration=bad)
    with pytest.raises(ConfigError, match="exactly one"):
        st.validate_lifecycle_configuration(bad)
    with pytest.raises(ConfigError, match="Days >= 30"):
        st.validate_lifecycle_configuration({"Rules": [{"ID": "y", "Status": "Enabled", "Filter": {"Prefix": ""},
                                                        "Transitions": [{"Days": 7, "StorageClass": "STANDARD_IA"}]}]})
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"


def test_what_if_formula_matches_the_model_and_binds_a_slider(prices):
    coef, curve = st.what_if(prices, "AWS", 10240, avg_object_kb=1024)
    # the browser evaluates fixed + a*per_access + IT tier terms; it must equal monthly_cost at any a
    for a in (0.0, 0.3, 1.0, 1.7):
        q = min(a, 1)
        for r in coef.itertuples():
            browser = (r.fixed + a * r.per_access + r.it_fa * q + r.it_ia * ((1 - q) - (1 - q) ** 3)
                       + r.it_aia * (1 - q) ** 3)
            model = float(st.monthly_cost(prices["AWS", r.storage_class],
                                          st.Scenario(Decimal(10240), Decimal(1024), Decimal(str(a))), prices))
            assert browser == pytest.approx(model, rel=1e-9), (r.storage_class, a)
    # Standard at a=0: 10,240 x 0.023 = 235.52; Standard-IA per unit of a: 10,240 x 0.01 = 102.40
    assert coef.set_index("storage_class").loc["S3 Standard", "fixed"] == pytest.approx(235.52)
    assert coef.set_index("storage_class").loc["S3 Standard-IA", "per_access"] == pytest.approx(102.40)
    spec = st.what_if_chart(coef, curve, access=0.2).to_dict()
    (param,) = [p for p in spec["params"] if p["name"] == "access"]
    assert param["bind"]["input"] == "range" and param["value"] == 0.2
    assert len(spec["datasets"]) <= 4 and all(len(v) <= 1000 for v in spec["datasets"].values())


def test_what_if_table_shows_what_each_class_costs(prices):
    """The report's what-if table read ``fixed`` as 'monthly cost at a=0': for Intelligent-Tiering that is only the
    monitoring fee, $6.55 for 10,240 GB of 4 MB objects that cost $47.51 (10,240 x 0.004 in Archive Instant +
    2,621,440 objects x $0.0025/1000), shown cheaper than Deep Archive (found by a review). The table's costs are
    the model's at every a."""
    coef, _ = st.what_if(prices, "AWS", 10240, avg_object_kb=4096)
    costs = st.what_if_costs(coef, (0.0, 0.5)).set_index("storage_class")
    assert costs.loc["S3 Intelligent-Tiering", "cost_at_0"] == pytest.approx(10240 * 0.004 + 2621440 * 0.0025 / 1000)
    for cls in costs.index:
        for a in (0.0, 0.5):
            model = float(st.monthly_cost(prices["AWS", cls], st.Scenario(Decimal(10240), Decimal(4096),
                                                                          Decimal(str(a))), prices))
            assert costs.loc[cls, f"cost_at_{a:g}"] == pytest.approx(model, rel=1e-9), (cls, a)
    assert any(c.startswith("break_even_vs_") for c in costs.columns)
    for a in (0.0, 0.3):  # the report's table, also when the chosen a is 0
        table = st.what_if_table(coef, a)
        assert table.columns[1] == "monthly cost, nothing read" and table.columns[-1].startswith("break-even a* vs ")
        assert len(table.columns) == (3 if a == 0 else 4)


def test_savings_chart_has_one_bar_per_recommendation(prices):
    # one bucket holding Standard and Standard-IA data: two recommendations (both to Glacier IR in the demo) that
    # a "bucket → target" label stacked into one bar
    con = focus_rows([s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 10240, cost=235.52),
                      s3("2026-10-15", "USE1-TimedStorage-SIA-ByteHrs", 20480, cost=256.0)])
    recs = st.recommend(con, prices, access_fraction=0.01, config=NO_CONFIG)
    best = recs[recs["recommended"]]
    assert len(best) == 2 and best["group"].nunique() == 1
    spec = st.savings_chart(best).to_dict()
    rows = next(iter(spec["datasets"].values()))
    labels = [r["label"] for r in rows]
    assert len(labels) == len(set(labels)) == 2  # one bar each: nothing to stack
    assert all(": Standard" in lb and " → " in lb and "S3 " not in lb for lb in labels)  # short, readable labels
    assert spec["encoding"]["y"]["sort"] == [r["label"] for r in sorted(rows, key=lambda r: -r["monthly_saving"])]
    assert "aggregate" not in spec["encoding"]["x"]


def test_markdown_money_renders_without_stray_asterisks():
    from nbconvert.filters.markdown import markdown2html_mistune

    from finops_kit import notebook as nb

    text = (f"**9 recommended transitions** save **{nb.money(23281.37)}/month** (top 9 shown) for a one-time "
            f"**{nb.money(1234)}** in transition fees.")
    assert "**" in markdown2html_mistune(text)  # the two $ signs open a math span: bold markers leak
    html = markdown2html_mistune(nb.md(text).data)
    assert "**" not in html and html.count("<strong>") == 3 and "$23,281.37/month</strong>" in html


def test_gcs_prices_are_regional_and_cite_the_per_gib_hour_rate(prices):
    import re

    for cls in ("GCS Standard", "GCS Nearline", "GCS Coldline", "GCS Archive"):
        p = prices["Google Cloud", cls]
        assert "multi-region" not in p.region.lower() and p.region.startswith("us-central1")
        assert "cloud.google.com/storage/pricing" in p.source
        hourly = Decimal(re.search(r"\$([0-9.]+)/GiB-hour", p.source).group(1))
        assert round(hourly * 730, 4) == p.price_per_gb_month  # Google lists GiB-hours; a month is 730 h


def test_recommendations_name_unverified_prices_and_a_bill_rate_the_table_does_not_match(prices):
    gcs = dict(ProviderName="Google Cloud", ServiceName="Cloud Storage", ResourceId="acme-vision-prod-datasets",
               x_UsageType="Standard Storage US Multi-region", ConsumedUnit="GB-Mo")
    aws = s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 10240, cost=235.52, bucket="ml-data")
    # 10,240 GB at the US multi-region rate 0.026 = $266.24 (the table's regional rate is 0.020)
    con = focus_rows([dict(day="2026-10-15", ConsumedQuantity=10240, cost=266.24, **gcs), aws])
    recs = st.recommend(con, prices, access_fraction=0.05, config=NO_CONFIG)
    best = recs[recs["recommended"]].set_index("provider")
    assert best.loc["AWS", "unverified_prices"] == ""  # S3 Standard -> Glacier IR: both rows from methods.md
    assert best.loc["Google Cloud", "unverified_prices"] != ""  # retrieval/Class A fees of the cold GCS classes
    assert "rate $0.026/GB-month differs from the price table's $0.02" in best.loc["Google Cloud", "warning"]
    assert "differs" not in best.loc["AWS", "warning"]
    note = st.unverified_note(best.reset_index())
    assert note.startswith("1 of 2 recommendations") and "acme-vision-prod-datasets" in note
    assert st.unverified_note(best.loc[["AWS"]].reset_index()) is None


def test_open_last_month_is_not_a_drop_in_growth_or_sizing(prices):
    """Data to 26 Nov, like the sample export: November's GB-months cover 26 of 30 days. Growth, the projection and
    lifecycle sizing use the closed months (before: growth fell from +10% to ~+0.6%, sizing was ~13% low)."""
    rows = []
    for day, gb in (("2026-08-31", 1000.0), ("2026-09-30", 1100.0), ("2026-10-31", 1210.0),
                    ("2026-11-26", 1331.0 * 26 / 30)):  # one usage row per month ending on its last billed day
        rows.append(s3(day, "USE1-TimedStorage-ByteHrs", gb, cost=gb * 0.023))
    con = focus_rows(rows)
    g = st.growth(con, by="storage_class", months_ahead=1, config=NO_CONFIG)
    assert g["monthly_growth"].iloc[0] == pytest.approx(0.10)
    assert g.loc[g["kind"] == "actual (open period)", "month"].dt.month.tolist() == [11]
    assert g.loc[g["kind"] == "projected", "gb"].tolist() == pytest.approx([1331.0])
    recs = st.recommend(con, prices, access_fraction=0.1, avg_object_kb=1024, config=NO_CONFIG)
    assert float(recs["gb"].iloc[0]) == pytest.approx(1210.0)  # the last closed month, not 26/30 of November


# ---------------------------------------------------------------------------- lifecycle configurations per bucket

def data_lake():
    """One AWS account, two nlp buckets: ``nlp-corpora`` (Standard) and ``nlp-ckpt`` (Standard and Standard-IA):
    the two classes of the account, of the team and of ``nlp-ckpt`` are each recommended into Glacier IR."""
    acct = dict(SubAccountId="111122223333", SubAccountName="acme-data-lake", tags={"team": "nlp"})
    return focus_rows([
        s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 10240, cost=235.52, bucket="nlp-corpora", **acct),
        s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 4096, cost=94.21, bucket="nlp-ckpt", **acct),
        s3("2026-10-15", "USE1-TimedStorage-SIA-ByteHrs", 8192, cost=102.40, bucket="nlp-ckpt", **acct)])


@pytest.mark.parametrize("group_by", ["bucket", "account", "team"])
def test_lifecycle_configuration_per_bucket_has_unique_rule_ids(prices, group_by):
    # S3 Standard and S3 Standard-IA both to Glacier IR after 30 days: one group, two recommendations, and a
    # lifecycle rule cannot select objects by their current class -- both are the same rule, which S3 (and
    # validate_lifecycle_configuration) refuses twice under one ID
    recs = st.recommend(data_lake(), prices, group_by=group_by, access_fraction=0.1, config=NO_CONFIG)
    best = recs[recs["recommended"]]
    assert set(best["target_class"]) == {"S3 Glacier Instant Retrieval"}
    assert len(best) == (3 if group_by == "bucket" else 2)
    configs = st.lifecycle_configurations(recs, top=5)
    # a lifecycle configuration belongs to one bucket: keyed by the real bucket names, never by the group
    assert set(configs) == {"nlp-corpora", "nlp-ckpt"}
    for bucket, cfg in configs.items():
        st.validate_lifecycle_configuration(cfg)
        ids = [r["ID"] for r in cfg["Rules"]]
        assert len(ids) == len(set(ids)) == 1, (bucket, ids)
        (rule,) = cfg["Rules"]
        assert rule["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER_IR"}]
        # a bucket, an account's or a team's bucket (team is a bucket tag, not an object tag): every object above
        # the minimum billable size
        assert rule["Filter"] == {"ObjectSizeGreaterThan": 131072}
        assert "account" not in rule["ID"] and "acme-data-lake" not in rule["ID"] and "nlp" not in rule["ID"]


def test_lifecycle_rule_ids_are_unique_short_and_deterministic(prices):
    long_team = "nlp-" + "x" * 300
    a = st.lifecycle_rule("GLACIER_IR", 30, tag=("team", long_team))
    assert len(a["ID"]) <= 255 and a["ID"].startswith("finops-kit-glacier-ir-after-30d-nlp-xxx")
    assert a == st.lifecycle_rule("GLACIER_IR", 30, tag=("team", long_team))  # deterministic
    b = st.lifecycle_rule("GLACIER_IR", 30, tag=("team", long_team + "y"))
    assert a["ID"] != b["ID"]  # two long values differing past the cut keep distinct IDs
    # tag values that read alike once cleaned (nlp.a / nlp_a -> nlp-a) in one bucket's configuration keep distinct
    # IDs (a hand-written tag rule: the kit's own configurations filter on no tag)
    rules: list = []
    for value in ("nlp.a", "nlp_a", "nlp.a"):
        st._add_rule(rules, st.lifecycle_rule("GLACIER_IR", 30, tag=("team", value)))
    assert len(rules) == 2 and rules[0]["ID"] != rules[1]["ID"]
    assert all(r["ID"].startswith("finops-kit-glacier-ir-after-30d-nlp-a") for r in rules)
    st.validate_lifecycle_configuration({"Rules": rules})
    # two groups recommended into one bucket (a hand-made frame): the same whole-bucket rule, once
    rows = [s3("2026-10-15", "USE1-TimedStorage-ByteHrs", 10240, cost=235.52, bucket="shared",
               tags={"team": "nlp.a"})]
    one = st.recommend(focus_rows(rows), prices, group_by="team", access_fraction=0.1, config=NO_CONFIG)
    one = one[one["recommended"]]
    assert len(one) == 1
    recs = st.pd.concat([one, one.assign(group="nlp_a")], ignore_index=True)
    recs.attrs.update(one.attrs)
    configs = st.lifecycle_configurations(recs, top=5)
    assert list(configs) == ["shared"] and len(configs["shared"]["Rules"]) == 1
    st.validate_lifecycle_configuration(configs["shared"])
    assert st.lifecycle_configurations(recs, top=5) == configs
