"""Leftovers of the usage-units review (session 17): the instance catalog knows the current AWS accelerated types,
and an unused commitment is in the family its commitment covered, with the pricing class 'Unused commitment' and no
hours, so that the families of ``metrics.accelerators`` add up to ``metrics.spot``'s cost (docs/metrics.md: "cost
of accelerated instances (unused commitments included)") for AWS, Azure and GCP alike.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from finops_kit import metrics, scope, units
from finops_kit.testing import focus_rows

AC = "Accelerated compute"
DAY = "2026-11-05"


def _unused_fixture() -> duckdb.DuckDBPyConnection:
    """One day of each provider's commitment, used and unused:

    * AWS: a g5.12xlarge reservation, 20 h used (USD 80) and its 4 unused hours (USD 16, ``HeavyUsage:``);
    * Azure: a reserved Standard_NC8as_T4_v3, 20 h used (USD 9.024), and the reservation's ``UnusedReservation``
      row of 4 h (USD 1.8048), whose meter is the size alone ('NC8as T4 v3'), with no VM size and no resource;
    * GCP: an a2-highgpu-8g's A100 GPUs under a CUD, 16 GPU-hours (USD 40), and the CUD's 8 unused GPU-hours
      (USD 20, 'Commitment v1: A100 GPU in Americas for 1 Year', machine type 'a100', no resource)."""
    common = {"day": DAY, "PricingCategory": "Committed", "x_AiWorkload": AC}
    return focus_rows([
        {**common, "ProviderName": "AWS", "ResourceId": "i-g5", "x_InstanceType": "g5.12xlarge",
         "x_UsageType": "USE1-BoxUsage:g5.12xlarge", "ConsumedQuantity": 20, "ConsumedUnit": "Hours", "cost": 80,
         "CommitmentDiscountId": "ri-1", "CommitmentDiscountStatus": "Used"},
        {**common, "ProviderName": "AWS", "ResourceId": "ri-1", "x_InstanceType": "g5.12xlarge",
         "x_UsageType": "USE1-HeavyUsage:g5.12xlarge", "ConsumedQuantity": 4, "ConsumedUnit": "Hours", "cost": 16,
         "CommitmentDiscountId": "ri-1", "CommitmentDiscountStatus": "Unused"},
        {**common, "ProviderName": "Microsoft", "ResourceId": "/subscriptions/s/vm-t4",
         "x_InstanceType": "Standard_NC8as_T4_v3", "x_UsageType": "NCasT4 v3 Series NC8as T4 v3",
         "ConsumedQuantity": 20, "ConsumedUnit": "Hours", "cost": Decimal("9.024"),
         "CommitmentDiscountId": "res-1", "CommitmentDiscountStatus": "Used"},
        {**common, "ProviderName": "Microsoft", "ResourceId": None, "x_UsageType": "NC8as T4 v3",
         "ConsumedQuantity": 4, "ConsumedUnit": "Hours", "cost": Decimal("1.8048"), "ServiceName": "Azure Reservations",
         "CommitmentDiscountId": "res-1", "CommitmentDiscountStatus": "Unused"},
        {**common, "ProviderName": "Google Cloud", "ResourceId": "vm-a2", "x_InstanceType": "a2-highgpu-8g",
         "x_UsageType": "Nvidia Tesla A100 GPU running in Americas", "ConsumedQuantity": 16 * 3600,
         "ConsumedUnit": "seconds", "cost": 40, "CommitmentDiscountId": "cud-1", "CommitmentDiscountStatus": "Used"},
        {**common, "ProviderName": "Google Cloud", "ResourceId": None, "x_InstanceType": "a100",
         "x_UsageType": "Commitment v1: A100 GPU in Americas for 1 Year", "ConsumedQuantity": 8 * 3600,
         "ConsumedUnit": "seconds", "cost": 20, "CommitmentDiscountId": "cud-1", "CommitmentDiscountStatus": "Unused"},
    ])


def _families_add_up(con: duckdb.DuckDBPyConnection, sc: scope.Scope) -> None:
    """Σ accelerators.cost = spot.cost per provider and currency, and for all providers per currency."""
    acc, spot = metrics.accelerators(con, sc), metrics.spot_share(con, sc)
    by = acc.groupby(["provider", "currency"]).cost.sum()
    for r in spot.itertuples():
        if r.provider == "(all)":
            assert acc[acc.currency == r.currency].cost.sum() == r.cost, r
        else:
            assert by.get((r.provider, r.currency), Decimal(0)) == r.cost, r


def test_unused_commitments_are_in_their_commitments_family_on_every_provider() -> None:
    """Before: Azure's unused reservation (USD 1.8048) was in no family (the families summed to 9.024, the spot
    cost 10.8288), GCP's unused A100 CUD (USD 20) was a family 'a100' of its own, 'Committed' with 0 hours, and
    AWS's unused g5 hours were in 'g5 Committed' (USD 96 for 20 used hours). Now each is its commitment's family
    in the class 'Unused commitment' with no hours, and the families add up to the spot cost of each provider."""
    con = _unused_fixture()
    sc = scope.resolve(con, None)
    _families_add_up(con, sc)
    acc = metrics.accelerators(con, sc).set_index(["provider", "family", "pricing"])
    expect = {("AWS", "g5"): (Decimal(80), Decimal(16)),
              ("Microsoft", "NCasT4 v3"): (Decimal("9.024"), Decimal("1.8048")),
              ("Google Cloud", "a2-highgpu"): (Decimal(40), Decimal(20))}
    assert len(acc) == 6
    for (prov, fam), (used, unused) in expect.items():
        assert acc.loc[(prov, fam, "Committed"), "cost"] == used
        u = acc.loc[(prov, fam, units.UNUSED_COMMITMENT)]
        assert u.cost == unused and u.instance_hours == 0 and u.accelerator_hours == 0
        assert pd.isna(u.rate_per_instance_hour) and pd.isna(u.rate_per_accelerator_hour)
    # the used class's rate is that of its hours only: g5 80 / 20 h
    assert acc.loc[("AWS", "g5", "Committed"), "rate_per_instance_hour"] == Decimal(4)
    # row level: an unused commitment has no hours of any kind
    rows = con.sql(f"SELECT instance_hours, accelerator_hours, vcpu_hours FROM ({units.accelerated_usage_sql()}) "
                   f"WHERE pricing = '{units.UNUSED_COMMITMENT}'").fetchall()
    assert rows == [(None, None, None)] * 3


def test_unused_reservation_alone_takes_its_family_from_its_meter() -> None:
    """An Azure unused reservation whose reserved VM did not run in scope: its meter names the size
    ('NC8as T4 v3'), so it is 'NCasT4 v3', not a row without a family (before: no accelerators row at all, the
    spot cost 1.8048)."""
    con = focus_rows([{"day": DAY, "PricingCategory": "Committed", "x_AiWorkload": AC, "ProviderName": "Microsoft",
                       "x_UsageType": "NC8as T4 v3", "ConsumedQuantity": 4, "ConsumedUnit": "Hours",
                       "cost": Decimal("1.8048"), "CommitmentDiscountId": "res-1",
                       "CommitmentDiscountStatus": "Unused"}])
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    assert acc[["family", "pricing", "cost"]].values.tolist() == [["NCasT4 v3", units.UNUSED_COMMITMENT,
                                                                    Decimal("1.8048")]]
    _families_add_up(con, sc)
    assert metrics.unknown_types(con, sc).empty


def test_unused_commitment_without_any_family_is_still_a_family_row() -> None:
    """An unused commitment whose type names nothing the kit can read (no type, no covered usage in scope) is the
    family '(no instance type)', so its cost is still in the families' sum."""
    con = focus_rows([{"day": DAY, "PricingCategory": "Committed", "x_AiWorkload": AC, "ProviderName": "Microsoft",
                       "x_UsageType": "Reservation", "cost": 3, "CommitmentDiscountId": "res-9",
                       "CommitmentDiscountStatus": "Unused"}])
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    assert acc[["family", "pricing", "cost"]].values.tolist() == [[units.NO_INSTANCE_TYPE,
                                                                    units.UNUSED_COMMITMENT, Decimal(3)]]
    _families_add_up(con, sc)


def test_demo_warehouse_families_add_up_to_the_spot_cost(sample_warehouse: str) -> None:
    """The demo: Azure's families summed to 567,884.14 against a spot cost of 572,453.89 (its unused NC8as T4 v3
    reservation, 4,569.75, in no family) and GCP had a family 'a100' (the unused A100 CUD, 14,448.42, Committed,
    0 hours). Now every provider adds up; the unused commitments are g5 7,342.66, a2-highgpu 14,448.42 and
    NCasT4 v3 4,569.75."""
    con = duckdb.connect(sample_warehouse, read_only=True)
    try:
        sc = scope.resolve(con, None)
        _families_add_up(con, sc)
        acc = metrics.accelerators(con, sc)
        assert "a100" not in set(acc.family)
        unused = acc[acc.pricing == units.UNUSED_COMMITMENT].set_index(["provider", "family"]).cost
        assert {k: round(v, 2) for k, v in unused.items()} == {
            ("AWS", "g5"): Decimal("7342.66"), ("Google Cloud", "a2-highgpu"): Decimal("14448.42"),
            ("Microsoft", "NCasT4 v3"): Decimal("4569.75")}
    finally:
        con.close()


# ------------------------------------------------------------------------- the EC2 accelerated-instance catalog
def test_trn2_ultraserver_type_is_in_the_catalog() -> None:
    """trn2u.48xlarge (a Trn2 UltraServer node: 16 Trainium2 chips, 192 vCPUs, as trn2.48xlarge), 24 h at USD 1,000:
    before, its accelerator-hours were unknown (NULL, 'accelerator-hours' in unknown_types, USD 1,000 of unknown
    accelerator cost); now 24 x 16 = 384 Trainium2-hours, 24 x 192 = 4,608 vCPU-hours, USD 2.604167 per
    accelerator-hour, nothing unknown."""
    con = focus_rows([{"day": DAY, "ProviderName": "AWS", "ResourceId": "i-trn2u", "x_InstanceType": "trn2u.48xlarge",
                       "x_UsageType": "USE1-BoxUsage:trn2u.48xlarge", "ConsumedQuantity": 24, "ConsumedUnit": "Hours",
                       "cost": 1000, "x_AiWorkload": AC}])
    sc = scope.resolve(con, None)
    assert metrics.unknown_types(con, sc).empty
    acc = metrics.accelerators(con, sc).iloc[0]
    assert (acc.family, acc.instance_hours, acc.accelerator_hours) == ("trn2u", 24, 384)
    assert acc.unknown_accelerator_cost == 0 and acc.rate_per_accelerator_hour == Decimal("2.604167")
    vcpu = con.sql(f"SELECT vcpu_hours, accelerator FROM ({units.row_sql()})").fetchall()
    assert vcpu == [(24 * 192, "AWS Trainium2")]


@pytest.mark.parametrize("family", ["p5en", "p6-b200", "g6e", "gr6", "inf2", "dl1", "dl2q", "trn2", "trn2u"])
def test_current_aws_accelerated_families_are_in_the_catalog(family: str) -> None:
    """The current AWS accelerated-computing families the review named have catalog rows (so their hours are known)."""
    assert any(r["provider"] == "AWS" and r["family"] == family and r["accelerators"] for r in units.instance_types())
