"""Regressions of the storage review (57dc8bd), each on a small hand-built bill whose right answer is computed by
hand next to the assertion; each test named after a wrong result failed on 57dc8bd.

1. The shared-bucket refusal (meant for team configurations, which are whole-bucket rules) counted the kit's label
   ``(no resource id)`` as a bucket: two accounts with bill rows without a ResourceId "shared" it and neither was
   recommended (real FOCUS sample, group_by='account': 0 of 12 AWS candidates eligible, 8 before the review).
"""

from __future__ import annotations

from finops_kit import storage as st
from finops_kit.testing import focus_rows

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
