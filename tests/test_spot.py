"""Spot coverage from hand-built FOCUS rows, and the Spot Advisor feed parsed from both snapshots."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import spot
from finops_kit.errors import ConfigError, InputError
from finops_kit.testing import focus_rows

ADVISOR_2025 = "corpus/raw/aws/spot/spotinfo__spot-advisor-data_2025-06.json"
ADVISOR_2021 = "corpus/raw/aws/spot/spotinfo__spot-advisor-data_2021-02.json"


def _row(**k):
    base = dict(ProviderName="AWS", RegionId="us-east-1", ConsumedUnit="Hours", x_AiWorkload="Accelerated compute")
    base.update(k)
    return base


@pytest.fixture()
def bill():
    """Two months of GPU usage; every number below is worked out by hand from these rows."""
    return focus_rows([
        # Jan, research: 10 h spot p4d at $10/h, 10 h on-demand p4d at $21.96/h
        _row(day="2026-01-05", cost=100, ConsumedQuantity=10, x_InstanceType="p4d.24xlarge",
             PricingCategory="Dynamic", tags={"team": "research"}),
        _row(day="2026-01-06", cost=219.6, ConsumedQuantity=10, x_InstanceType="p4d.24xlarge",
             PricingCategory="Standard", tags={"team": "research"}),
        # Jan, search (tag key spelled 'Team'): 50 h on-demand g5.xlarge at $1.006/h
        _row(day="2026-01-06", cost=50.3, ConsumedQuantity=50, x_InstanceType="g5.xlarge",
             PricingCategory="Standard", tags={"Team": "search"}),
        # Feb, untagged: 5 h committed p4d at $12/h; a $5 on-demand p4d row without a time unit
        _row(day="2026-02-06", cost=60, ConsumedQuantity=5, x_InstanceType="p4d.24xlarge",
             PricingCategory="Committed", CommitmentDiscountId="ri-1"),
        _row(day="2026-02-06", cost=5, ConsumedQuantity=None, ConsumedUnit=None, x_InstanceType="p4d.24xlarge",
             PricingCategory="Standard"),
        # Feb, research: 7200 s of spot usage found through the usage type only (PricingCategory missing)
        _row(day="2026-02-07", cost=4, ConsumedQuantity=7200, ConsumedUnit="Seconds", x_InstanceType="g5.xlarge",
             PricingCategory=None, x_UsageType="USE1-SpotUsage:g5.xlarge", tags={"team": "research"}),
        # not accelerated, and not usage: both left out
        _row(day="2026-02-06", cost=7, x_InstanceType="m5.xlarge", x_AiWorkload=None, ConsumedQuantity=3),
        _row(day="2026-02-01", cost=1000, x_InstanceType="p4d.24xlarge", ChargeCategory="Purchase",
             PricingCategory="Committed"),
        # a GPU on another cloud billed as its own SKU, no machine type: 4 GPU-hours in seconds, accelerated compute
        # (x_AiWorkload); its instance-hours are unknown (finops_kit.units never guesses them)
        _row(day="2026-02-08", cost=8, ConsumedQuantity=14400, ConsumedUnit="Seconds", ProviderName="Google Cloud",
             RegionId="us-central1", x_InstanceType=None, x_UsageType="Spot Preemptible Nvidia Tesla T4 GPU running in Americas",
             PricingCategory="Dynamic", tags={"team": "search"}),
    ])


def _by(df, **keys):
    sel = df
    for k, v in keys.items():
        sel = sel[sel[k].astype(str) == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def test_spot_coverage_by_month_and_team(bill):
    df = spot.spot_coverage(bill, by=("month", "team")).df()
    r = _by(df, team="research", month="2026-01-01")
    assert (r.spot_cost, r.spot_hours, r.on_demand_cost, r.on_demand_hours) == (100, 10, pytest.approx(219.6), 10)
    assert r.spot_hours_share == 0.5 and r.spot_cost_share == pytest.approx(round(100 / 319.6, 4))
    s = _by(df, team="search", month="2026-01-01")
    assert s.on_demand_hours == 50 and s.spot_hours == 0 and s.spot_hours_share == 0
    u = _by(df, team="(untagged)", month="2026-02-01")
    assert (u.committed_cost, u.committed_hours, u.on_demand_cost, u.total_hours) == (60, 5, 5, 5)
    f = _by(df, team="research", month="2026-02-01")
    assert (f.spot_cost, f.spot_hours, f.spot_hours_share) == (4, 2, 1)  # 7200 s = 2 h, via SpotUsage
    total = spot.spot_coverage(bill, by=()).df()
    assert total.total_cost.sum() == pytest.approx(100 + 219.6 + 50.3 + 60 + 5 + 4 + 8)  # no m5, no purchase


def test_spot_coverage_by_family_and_region_keeps_decimals(bill):
    rel = spot.spot_coverage(bill, by=("instance_family", "region"))
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["spot_cost"].startswith("DECIMAL")
    df = rel.df()
    p4d = _by(df, instance_family="p4d")
    assert p4d.total_hours == 25 and p4d.total_cost == pytest.approx(384.6)
    gcp = _by(df, region="us-central1")
    assert gcp.instance_family == "(no instance type)" and gcp.spot_cost == 8
    # a GCP GPU row without its machine type: its instance-hours are unknown (NULL, with their cost), not 0
    assert pd.isna(gcp.spot_hours) and gcp.unknown_instance_cost == 8
    assert gcp.spot_accelerator_hours == 4 and gcp.spot_accelerator_hours_share == 1
    exact = bill.execute("SELECT sum(on_demand_cost) FROM (" + rel.sql_query() + ")").fetchone()[0]
    assert exact == Decimal("274.900000000000")  # 219.6 + 50.3 + 5, exact


def test_effective_rates(bill):
    df = spot.effective_rates(bill).df()
    od = _by(df, instance_type="p4d.24xlarge", pricing="On-demand")
    assert od.rate_per_hour == pytest.approx(21.96)  # the $5 row without hours is left out of the rate ...
    assert od.rows_without_hours == 1  # ... and counted
    assert od.rate_per_accelerator_hour == pytest.approx(21.96 / 8)
    assert _by(df, instance_type="p4d.24xlarge", pricing="Spot").rate_per_hour == 10
    assert _by(df, instance_type="p4d.24xlarge", pricing="Committed").rate_per_hour == 12
    assert _by(df, instance_type="g5.xlarge", pricing="Spot").rate_per_hour == 2  # $4 / 2 h


def test_spot_what_if_bases(bill):
    adv = spot.load_advisor()  # bundled 2025-06 snapshot: g5.xlarge us-east-1 Linux s = 59
    df = spot.spot_what_if(bill, adv, by=("month",))
    p4d = _by(df, instance_type="p4d.24xlarge", month="2026-01-01")
    assert p4d.basis == "observed" and p4d.spot_rate == 10  # the bill's own p4d spot rate
    assert p4d.spot_priced_cost == 100 and p4d.saving == pytest.approx(119.6)
    g5 = _by(df, instance_type="g5.xlarge", month="2026-01-01")
    # g5.xlarge has an observed spot rate too ($2/h, in Feb): observed wins over the Advisor
    assert g5.basis == "observed" and g5.spot_priced_cost == 100
    nohours = _by(df, month="2026-02-01")
    assert nohours.basis == "no hours" and nohours.spot_priced_cost != nohours.spot_priced_cost  # NaN
    # without observed rates: the Advisor's s, then the flat discount; with an interruption overhead
    a = spot.WhatIfAssumptions(use_observed=False, overhead=1.1, flat_discount=0.5)
    df = spot.spot_what_if(bill, adv, a, by=("month",))
    g5 = _by(df, instance_type="g5.xlarge", month="2026-01-01")
    assert g5.basis == "advisor" and g5.advisor_savings_pct == 59
    assert g5.spot_priced_cost == pytest.approx(50 * 1.006 * 0.41 * 1.1, abs=1e-5)
    flat = _by(spot.spot_what_if(bill, None, a, by=("month",)), instance_type="p4d.24xlarge", month="2026-01-01")
    assert flat.basis == "flat" and flat.spot_priced_cost == pytest.approx(10 * 21.96 * 0.5 * 1.1)
    with pytest.raises(ConfigError, match="overhead"):
        spot.WhatIfAssumptions(overhead=0.9)
    with pytest.raises(ConfigError, match="unknown dimension"):
        spot.spot_coverage(bill, by=("colour",))


def test_what_if_reprices_hours_only():
    """An on-demand p4d with 10 hours ($219.60) and, for the same team and month, $50 of on-demand cost that no
    hour accounts for (a fee line without a time unit). Only the hours move to spot: the saving is $219.60 - 10 h x
    $10/h = $119.60, not $169.60 (the $50 used to count as 100% saved); the $50 is shown as not re-priced."""
    con = focus_rows([
        _row(day="2026-01-05", cost=100, ConsumedQuantity=10, x_InstanceType="p4d.24xlarge",
             PricingCategory="Dynamic", tags={"team": "research"}),
        _row(day="2026-01-06", cost=219.6, ConsumedQuantity=10, x_InstanceType="p4d.24xlarge",
             PricingCategory="Standard", tags={"team": "research"}),
        _row(day="2026-01-07", cost=50, ConsumedQuantity=1, ConsumedUnit=None, x_InstanceType="p4d.24xlarge",
             PricingCategory="Standard", tags={"team": "research"}),
    ])
    df = spot.spot_what_if(con, None, by=("team",))
    row = _by(df, instance_type="p4d.24xlarge", team="research")
    assert row.basis == "observed" and row.spot_rate == 10
    assert row.on_demand_cost == pytest.approx(219.6) and row.not_repriced_cost == pytest.approx(50)
    assert row.spot_priced_cost == pytest.approx(100) and row.saving == pytest.approx(119.6)
    summary = spot.what_if_summary(df).set_index("basis")
    assert summary.loc["total", "saving"] == pytest.approx(119.6)
    assert summary.loc["total", "not_repriced_cost"] == pytest.approx(50)
    assert summary.loc["total", "on_demand_cost"] == pytest.approx(219.6)


def test_advisor_2025_snapshot_matches_methods(shared):
    adv = spot.load_advisor(shared / ADVISOR_2025)
    assert adv.regions == 33 and len(adv.table) == 25323 and adv.global_rate == "<10%"
    # methods.md, us-east-1 Linux mid-2025: savings / band
    expected = {"p4d.24xlarge": (67, "10-15%"), "p5.48xlarge": (52, ">20%"), "g5.xlarge": (59, ">20%"),
                "g6e.xlarge": (58, "5-10%"), "inf2.xlarge": (78, "<5%"), "trn1.32xlarge": (79, "<5%")}
    for itype, (s, label) in expected.items():
        got = adv.get(itype, "us-east-1", "Linux")
        assert (got["savings_pct"], got["band_label"]) == (s, label), itype
    p4d = adv.get("p4d.24xlarge", "us-east-1")
    assert p4d["band"] == 2 and (p4d["interrupt_lower_pct"], p4d["interrupt_upper_pct"]) == (10, 15)
    # the bundled copy is the same snapshot
    assert spot.load_advisor().table.equals(adv.table)


def test_advisor_2021_snapshot_and_comparison(shared):
    old = spot.load_advisor(shared / ADVISOR_2021)
    assert old.regions == 21 and len(old.table) == 7890 and old.global_rate == "<5%"
    assert set(old.table.band) <= {0, 1, 2, 3, 4}
    new = spot.load_advisor(shared / ADVISOR_2025)
    cmp = spot.compare_snapshots(old, new, ["p4d.24xlarge", "p5.48xlarge"], "us-east-1").set_index("instance_type")
    assert cmp.loc["p4d.24xlarge", "savings_pct_old"] == 70 and cmp.loc["p4d.24xlarge", "band_old"] == 0
    assert cmp.loc["p4d.24xlarge", "band_new"] == 2
    assert cmp.loc["p5.48xlarge", "savings_pct_old"] != cmp.loc["p5.48xlarge", "savings_pct_old"]  # not in 2021


def test_advisor_keys_on_r_not_max(tmp_path):
    doc = {"ranges": [{"index": i, "label": lab, "dots": i, "max": m}
                      for i, (lab, m) in enumerate([("<5%", 5), ("5-10%", 11), ("10-15%", 16), ("15-20%", 22),
                                                    (">20%", 100)])],
           "instance_types": {"p4d.24xlarge": {"cores": 96, "ram_gb": 1152.0, "emr": True}},
           "spot_advisor": {"us-east-1": {"Linux": {"p4d.24xlarge": {"s": 67, "r": 3}}}}, "global_rate": "<10%"}
    p = tmp_path / "adv.json"
    p.write_text(json.dumps(doc))
    got = spot.load_advisor(p).get("p4d.24xlarge", "us-east-1")
    assert got["band"] == 3 and got["band_label"] == "15-20%" and got["interrupt_upper_pct"] == 20
    doc["spot_advisor"]["us-east-1"]["Linux"]["p4d.24xlarge"] = {"s": 67}
    p.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"spot_advisor\.us-east-1\.Linux\.p4d\.24xlarge"):
        spot.load_advisor(p)
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        spot.load_advisor(p)
    with pytest.raises(InputError, match="could not download"):
        spot.load_advisor("http://127.0.0.1:9/spot-advisor-data.json")


def test_rank_gpu_families():
    adv = spot.load_advisor()
    rank = spot.rank_gpu_families(adv, "us-east-1")
    assert list(rank["rank"]) == list(range(1, len(rank) + 1))
    assert rank.net_saving_pct.is_monotonic_decreasing
    fams = set(rank.family)
    assert {"p4d", "p5", "g5", "trn1", "inf2"} <= fams and "m5" not in fams and "c7g" not in fams
    p5 = rank.set_index("family").loc["p5"]
    assert p5.worst_band_label == ">20%"
    # net saving is below the raw Advisor saving: interruptions cost something
    assert (rank.net_saving_pct <= rank.median_savings_pct + 1e-9).all()
    with pytest.raises(ConfigError, match="no accelerated instance types"):
        spot.rank_gpu_families(adv, "mars-east-1")


def test_data_tables():
    prices = spot.ondemand_prices()
    assert spot.ondemand_price("p4d.24xlarge", "us-east-1", prices) == 21.96
    assert prices.price_date.str.len().gt(0).all() and prices.source.str.len().gt(0).all()
    cat = spot.instance_catalog().set_index("instance_type")
    assert cat.loc["p5.48xlarge", "accelerators"] == 8 and cat.loc["trn1.32xlarge", "accelerators"] == 16


def test_what_if_keeps_operating_systems_apart():
    """100 on-demand Windows g5.xlarge hours (RunInstances:0002) at $1.19/h. Before: re-priced with Linux figures,
    the Advisor's Linux s = 59% ($0.4879/h, saving $70.21) or the bill's Linux spot rate of the same type. After:
    the Windows entry, s = 76%: $0.2856/h, saving $90.44; the Linux spot rate prices Linux hours only."""
    from finops_kit.testing import focus_rows

    base = dict(ProviderName="AWS", RegionId="us-east-1", ConsumedUnit="Hours", x_AiWorkload="Accelerated compute",
                day="2026-10-05", x_InstanceType="g5.xlarge")
    win = dict(base, cost=119.0, ConsumedQuantity=100, x_UsageType="USE1-BoxUsage:g5.xlarge",
               x_Operation="RunInstances:0002", ResourceId="i-win")
    lin_spot = dict(base, cost=41.246, ConsumedQuantity=100, x_UsageType="USE1-SpotUsage:g5.xlarge",
                    x_Operation="RunInstances:SV001", PricingCategory="Dynamic", ResourceId="i-lin")
    lin_od = dict(base, cost=100.6, ConsumedQuantity=100, x_UsageType="USE1-BoxUsage:g5.xlarge",
                  x_Operation="RunInstances", ResourceId="i-lin-od")
    adv = spot.load_advisor()
    for rows in ([win], [win, lin_spot, lin_od]):
        w = spot.spot_what_if(focus_rows(rows), adv, by=("month",))
        (r,) = w[w.on_demand_cost.astype(float) == 119.0].itertuples()
        assert float(r.spot_rate) == pytest.approx(0.2856) and float(r.saving) == pytest.approx(90.44)
        assert (r.basis, r.advisor_savings_pct, r.operating_system) == ("advisor", 76, "Windows")
    (r,) = w[w.on_demand_cost.astype(float) == 100.6].itertuples()  # Linux hours take the bill's Linux spot rate
    assert (r.basis, r.operating_system) == ("observed", "Linux") and float(r.spot_rate) == pytest.approx(0.41246)


def test_what_if_actions_mark_the_flat_discount_as_assumed(bill):
    """The demo's summary listed "$108,607 over the scope · Run the on-demand Standard_ND96isr_H100_v5 hours in
    eastus on spot" as if priced, while its basis was 'flat' (flat_spot_discount = 0.55): the action says it is an
    assumed discount (ranked by its dollars, like every action)."""
    import dataclasses

    from finops_kit import scope as S
    from finops_kit import summary as sm

    a = spot.WhatIfAssumptions(use_observed=False, flat_discount=0.55)
    adv = spot.load_advisor()  # without p4d.24xlarge: its hours take the flat discount
    adv = dataclasses.replace(adv, table=adv.table[adv.table.instance_type != "p4d.24xlarge"])
    w = spot.what_if_actions(spot.spot_what_if(bill, adv, a, by=("month",)), a)
    flat = _by(w, instance_type="p4d.24xlarge", month="2026-01-01")
    assert flat.basis == "flat" and bool(flat.assumed)
    assert flat.price_note.startswith("assumed flat 55% spot discount")
    adv = _by(w, instance_type="g5.xlarge", month="2026-01-01")
    assert adv.basis == "advisor" and not adv.assumed and adv.price_note == ""
    s = sm.summarize(bill, S.resolve(bill, None, {}), ["effective_cost"])
    s.add_actions(w, what="Run {instance_type} on spot", dollars="saving", owner="team", section="Back",
                  basis="over the scope", assumed="assumed", note="{price_note}")
    (acts,) = [acts for kind, acts in s.action_groups() if kind == "saving"]
    # the flat row saves more ($219.60 x 0.55 = $120.78 > the g5's $29.68): ranked by its dollars, saying why (one
    # rule for every action: by dollars, an assumed one marked; review s17 prose, finding 15)
    assert float(flat.saving) > float(adv.saving)
    assert [a.what for a in acts] == ["Run p4d.24xlarge on spot", "Run g5.xlarge on spot"]
    assert "[assumed flat 55% spot discount (flat_spot_discount)" in s.to_text()
    assert spot.what_if_actions(w.iloc[:0], a).empty


def test_scenario_context_says_what_the_bill_holds_of_the_planned_job(bill):
    """The savings report read "Expected: Reduced training costs by 67%" on any bill, from notebook defaults
    (p4d.24xlarge, the synthetic price cache of 2026-08-29..2026-11-27), also on the FOCUS sample (Sep 2024, no
    accelerated compute): it now says it is a scenario and what the bill holds of it."""
    ctx = spot.scenario_context(bill, "p4d.24xlarge", "us-east-1", ("2026-01-01", "2026-01-31"))
    assert ctx[0].startswith("This is a scenario, not a saving measured on the bill")
    assert ctx[1] == ("The bill in scope (2026-01-05..2026-02-08) has 25 hours of p4d.24xlarge in us-east-1, "
                      "10 of them on demand.")
    assert ctx[2] == "The spot prices (2026-01-01..2026-01-31) cover 27 of the bill's days (2026-01-05..2026-02-08)."
    ctx = spot.scenario_context(bill, "p5.48xlarge", "us-east-1", ("2026-08-29", "2026-11-27"))
    assert ctx[1] == ("The bill in scope (2026-01-05..2026-02-08) has no p5.48xlarge hours in us-east-1; its "
                      "accelerated compute with the most cost is p4d.24xlarge in us-east-1.")
    assert ctx[2].endswith("do not overlap: they are not the prices the bill's usage met.")
    assert spot.scenario_context(bill, "p4d.24xlarge", "us-east-1", ("2025-12-01", "2026-03-01"))[2] == \
        "The spot prices (2025-12-01..2026-03-01) cover the bill's days (2026-01-05..2026-02-08)."
    assert spot.scenario_context(bill, "p4d.24xlarge", "us-east-1")[2] == "No cached spot price was used."
    no_gpu = focus_rows([_row(day="2024-09-03", cost=12, x_InstanceType="m5.xlarge", x_AiWorkload=None,
                              ConsumedQuantity=3)])
    ctx = spot.scenario_context(no_gpu, "p4d.24xlarge", "us-east-1", ("2026-08-29", "2026-11-27"))
    assert ctx[1] == "The bill in scope (2024-09-03..2024-09-03) has no accelerated compute: nothing in it runs this job."
    assert "(2026-08-29..2026-11-27) and the bill (2024-09-03..2024-09-03) do not overlap" in ctx[2]
