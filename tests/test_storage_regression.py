"""Regressions of the storage review (57dc8bd), each on a small hand-built bill whose right answer is computed by
hand next to the assertion; each test named after a wrong result failed on 57dc8bd.

1. The shared-bucket refusal (meant for team configurations, which are whole-bucket rules) counted the kit's label
   ``(no resource id)`` as a bucket: two accounts with bill rows without a ResourceId "shared" it and neither was
   recommended (real FOCUS sample, group_by='account': 0 of 12 AWS candidates eligible, 8 before the review).
2. The access profile was per group, not per (group, class): an Azure container's Hot reads made its unread Cool
   data "read" 15x a month (modeled $52,192/month against $3,264 billed) and Cool -> Cold disappeared.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import storage as st
from finops_kit.testing import focus_rows
from tests.test_storage_review import azure_container

S3 = "Amazon Simple Storage Service"
NO_CONFIG: dict = {}
MONTHS = ("2026-08-15", "2026-09-15", "2026-10-15")


def s3(day: str, gb: float, account: str, bucket: str | None) -> dict:
    return dict(day=day, ServiceName=S3, ServiceCategory="Storage", x_UsageType="USE1-TimedStorage-ByteHrs",
                ConsumedQuantity=gb, ConsumedUnit="GB-Mo", PricingQuantity=gb, PricingUnit="GB-Mo",
                cost=gb * 0.023, ResourceId=bucket, ResourceName=None, SubAccountId=account, SubAccountName=account,
                RegionId="us-east-1")


# ------------------------------------------------------------------- 1. '(no resource id)' is not a bucket

def test_rows_without_a_bucket_do_not_make_accounts_share_one():
    # accounts A and B each hold 10,240 GB in S3 Standard on rows without a ResourceId (FOCUS exports without
    # resource-level data); A also has its bucket a-data. Before: both "shared" the bucket '(no resource id)',
    # nothing was eligible ("not proposed: bucket(s) (no resource id) also hold data of B").
    rows = [s3(d, 10240, acct, None) for d in MONTHS for acct in ("A", "B")]
    rows += [s3(d, 10240, "A", "arn:aws:s3:::a-data") for d in MONTHS]
    recs = st.recommend(focus_rows(rows), config=NO_CONFIG, group_by="account", access_fraction=0.0)
    assert not recs["warning"].str.contains("also hold data of").any()
    best = recs[recs["recommended"]].set_index("group")
    assert set(best.index) == {"A", "B"}
    # Glacier Deep Archive at a = 0: A holds 20,480 GB, B 10,240 GB
    assert best.loc["A", "buckets"] == ("a-data",) and best.loc["B", "buckets"] == ()
    # the rows without a bucket are recommended, and the warning says no rule can be written for them
    assert "10,240 of 20,480 GB is on bill rows without a bucket" in best.loc["A", "warning"]
    assert "all of this data is on bill rows without a bucket" in best.loc["B", "warning"]
    # only a real bucket gets a configuration (no '(no resource id)' key); B's takes none of the top places
    configs = st.lifecycle_configurations(recs, top=1)
    assert set(configs) == {"a-data"}
    st.validate_lifecycle_configuration(configs["a-data"])


def test_a_real_bucket_holding_two_accounts_data_is_still_refused():
    # the rule 57dc8bd added stays where it is right: a whole-bucket rule on 'common' would move both accounts' data
    rows = [s3(d, 10240, acct, "arn:aws:s3:::common") for d in MONTHS for acct in ("A", "B")]
    recs = st.recommend(focus_rows(rows), config=NO_CONFIG, group_by="account", access_fraction=0.0)
    assert not recs["eligible"].any() and recs["warning"].str.contains("also hold data of").all()
    # grouped by bucket the group is the bucket: nothing is shared
    by_bucket = st.recommend(focus_rows(rows), config=NO_CONFIG, group_by="bucket", access_fraction=0.0)
    assert by_bucket["recommended"].any() and not by_bucket["warning"].str.contains("also hold").any()


# -------------------------------------------------------------- 2. the access profile of a (group, class)

def azure_hot_reads_cool_unread():
    # one container: Hot 1,000 GB read 3,000,000 times a month; Cool 10,000 GB ($100/month), never read
    return focus_rows(azure_container(cool_gb=10000))


def billed_per_month(con, group_by: str = "bucket") -> dict[tuple[str, str], Decimal]:
    """Billed storage + retrieval cost per (group, class) and month: what current_monthly_cost models."""
    inv = st.inventory(con, by=[group_by, "storage_class", "month"], config=NO_CONFIG)
    return {(g, c): s + r for g, c, s, r, m in zip(inv[group_by], inv["storage_class"], inv["storage_cost"],
                                                   inv["retrieval_cost"], inv["month"], strict=True)
            if pd.Timestamp(m) == pd.Timestamp("2026-10-01")}


def test_a_class_access_profile_comes_from_its_own_reads():
    con = azure_hot_reads_cool_unread()
    recs = st.recommend(con, config=NO_CONFIG, avg_object_kb=1024)
    access = recs.groupby("current_class")["access"].first()
    # Hot: 2,929.6875 GB read / 1,000 GB; Cool: nothing read (before: 2,929.69 / 11,000 = 0.266 for both)
    assert access["Azure Blob Hot"] == pytest.approx(3_000_000 / 1024 / 1000)
    assert access["Azure Blob Cool"] == 0
    assert set(recs["access_source"]) == {st.ACCESS_FROM_BILL}
    # plausible against the bill: each class's modeled current monthly cost is its billed storage + retrieval
    # (Cool: 10,000 x $0.010 = $100 billed, $0 retrieval; before: $100 + 0.266 x 10,000 x $0.01 = $126.63)
    billed = billed_per_month(con)
    for r in recs.itertuples():
        assert float(r.current_monthly_cost) == pytest.approx(float(billed[(r.group, r.current_class)]), rel=0.02)
    # Cool -> Cold priced at a = 0: 10,000 x (0.010 - 0.0036) = $64.00 a month (before: $10.73, reads at 0.266 x
    # $0.03 retrieval); one-time 10,240,000 objects x $0.018/1,000 = $184.32
    cold = recs[(recs["current_class"] == "Azure Blob Cool") & (recs["target_class"] == "Azure Blob Cold")].iloc[0]
    assert cold["monthly_saving"] == Decimal("64.00") and cold["one_time_cost"] == Decimal("184.32")
    assert cold["eligible"]
    # Hot is read 2.9x a month: no colder class pays
    assert not recs[recs["current_class"] == "Azure Blob Hot"]["recommended"].any()


def test_a_group_without_any_read_in_the_bill_uses_the_parameter():
    # no read measure anywhere in the group: the bill does not meter reads, so a is the access_fraction parameter
    con = azure_hot_reads_cool_unread()
    con.execute("DELETE FROM focus WHERE SkuMeter = 'Hot Read Operations'")
    recs = st.recommend(con, config=NO_CONFIG, avg_object_kb=1024, access_fraction=0.1)
    assert set(recs["access_source"]) == {"parameter"} and set(recs["access"]) == {0.1}


def test_demo_classes_read_in_the_bill_are_modeled_at_their_billed_cost(sample_con):
    # every (bucket, class) of the demo whose access comes from the bill: modeled current monthly cost within 5% of
    # the class's billed storage + retrieval in the sized month. Before: acmevisiondatasets' Cool (never read, its
    # Hot sibling read 1.12e11 times) modeled at $198,979.36 against $3,263.72 billed; nlp-checkpoints-1098's Glacier
    # IR at $2,983.69 against $2,583.03 (its Standard-IA retrievals counted as its own)
    recs = st.recommend(sample_con, avg_object_kb=4096)  # the report's object size
    inv = st.inventory(sample_con, by=["bucket", "storage_class", "month"])
    read = recs[recs["access_source"] == st.ACCESS_FROM_BILL]
    assert len(read.groupby(["group", "current_class"])) >= 7
    for (bucket, cls), part in read.groupby(["group", "current_class"]):
        rows = inv[(inv["bucket"] == bucket) & (inv["storage_class"] == cls)]
        month = rows.iloc[(rows["gb_months"] - part["gb"].iloc[0]).abs().argsort()[:1]]  # the sized month
        billed = float(month["storage_cost"].iloc[0] + month["retrieval_cost"].iloc[0])
        assert float(part["current_monthly_cost"].iloc[0]) == pytest.approx(billed, rel=0.05), (bucket, cls)
    cool = recs[(recs["group"] == "acmevisiondatasets") & (recs["current_class"] == "Azure Blob Cool")]
    assert (cool["access"] == 0).all()
    assert cool[cool["target_class"] == "Azure Blob Cold"]["monthly_saving"].iloc[0] == Decimal("2030.82")
