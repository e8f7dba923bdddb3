"""Commitments, session 16: the sizing window of a group without the provider in ``by``, one computation for
``recommend`` and ``no_sizing_reason``, and a charge-day window that cuts a commitment's month-long rows."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_kit import commitments as cm
from finops_kit import scope

from .test_commitments import REPO, _days, _vm


def _two_providers() -> list[dict]:
    """AWS: a p4d RI'd 24 h a day, September and October closed (3 days of November); Google Cloud: an a2 on
    demand 24 h a day at 3.00/h, September closed, 1-10 October open."""
    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-1", res="i-1", end="2027-06-01T00:00:00Z")
            for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 31), *_days("2026-11-01", 3)]]
    rows += [_vm("Google Cloud", d, "a2-highgpu-1g", 24, "3.00", res="gce-1")
             for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]]
    return rows


def test_a_family_is_sized_over_its_providers_closed_periods_without_the_provider_in_by():
    """``recommend(by=("instance_family",))`` padded the Google a2 family (closed through September) with AWS's
    closed October: 61 days, 31 of them zero, sized at 0 ($0 a year) where its own 30 days size it at 3.00/h,
    $7,884 a year at a 30% quote -- the figure ``by=("provider", "instance_family")`` gives."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_two_providers())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc, by=("instance_family",))
    a2 = hu[hu["instance_family"] == "a2-highgpu"]
    assert (len(a2), a2["day"].min(), a2["day"].max()) == (30, dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert len(hu[hu["instance_family"] == "p4d"]) == 61
    quote = ["1-year quote=0.30"]
    rec, _ = cm.recommend(con, sc, by=("instance_family",), extra_options=quote)
    with_provider, _ = cm.recommend(con, sc, extra_options=quote)
    got = rec[(rec["instance_family"] == "a2-highgpu") & (rec["option"] == "1-year quote")].iloc[0]
    want = with_provider[(with_provider["instance_family"] == "a2-highgpu")].iloc[0]
    assert (got["days"], got["optimal_level"]) == (30, pytest.approx(3.0))
    assert got["optimal_net_savings_year"] == pytest.approx(7884.0) == want["optimal_net_savings_year"]


def test_a_group_of_several_providers_is_sized_over_the_days_all_of_them_cover():
    """A group holding both providers' usage (one team) is sized over September only: AWS's October would count
    without Google's usage of it (Google's October is open)."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_two_providers())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc, by=("team",))
    assert (len(hu), hu["day"].min(), hu["day"].max()) == (30, dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert list(hu["on_demand_per_hour"].astype(float)) == [pytest.approx(20.0 + 3.0)] * 30


def test_a_family_is_sized_with_its_own_providers_options_without_the_provider_in_by():
    """Without the provider in ``by`` every provider's options sized every family: the Google a2 family (no
    commitment of Google's) got "AWS Reserved Instance (realized 35% on compute)", $9,198 a year, a discount no
    Google commitment gives. Its options are its provider's: here only the quote."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_two_providers())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc, by=("instance_family",), extra_options=["1-year quote=0.30"])
    assert sorted(rec.loc[rec["instance_family"] == "a2-highgpu", "option"]) == ["1-year quote"]
    assert sorted(rec.loc[rec["instance_family"] == "p4d", "option"]) == [
        "1-year quote", "AWS Reserved Instance (realized 35% on compute)"]
    assert set(cm.hourly_usage(con, sc, by=("instance_family",))["providers"]) == {"AWS", "Google Cloud"}


def test_no_sizing_reason_is_what_recommend_decided_without_reading_the_warehouse_again(monkeypatch):
    """The report's cell called ``no_sizing_reason(con, sc, ...)`` after an empty ``recommend``: it ran the usage,
    inventory and discount queries recommend had just run. The empty table now carries the sentence; the three
    cases give the same sentences as before (asked from the warehouse, without ``rec``)."""
    from finops_kit.testing import focus_rows

    on_demand = focus_rows([_vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-1")
                            for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 5)]])
    no_usage = focus_rows([dict(day="2026-09-01", cost="1.00"), dict(day="2026-10-01", cost="1.00")])
    cases = []
    for con in (on_demand, no_usage):
        sc = scope.resolve(con, str(REPO / "finops.yaml"))
        rec, curves = cm.recommend(con, sc)
        assert rec.empty and curves.empty
        cases.append((con, sc, rec, cm.no_sizing_reason(con, sc)))
    assert "no commitment in scope realized a discount" in cases[0][3]
    assert cases[1][3].startswith("No eligible accelerated usage")

    def asked(*a, **k):
        raise AssertionError("no_sizing_reason read the warehouse again")

    monkeypatch.setattr(cm, "hourly_usage", asked)
    monkeypatch.setattr(cm, "inventory", asked)
    for con, sc, rec, want in cases:
        assert cm.no_sizing_reason(con, sc, rec=rec) == want


def _monthly_unused_rows() -> list[dict]:
    """An RI ``ri-m`` ending 2026-11-20, billed as AWS bills one: each day 12 h of covered p4d usage (list 10.00/h,
    6.00/h at its rate: used 72.00 a day) and, per month, ONE unused row booked on the 1st for the month's 12 unused
    hours a day (2,160.00 for September, 2,232.00 for October, 360.00 for 1-5 November, the month so far).
    September and October are closed (November has data); it is half used every day."""
    from decimal import Decimal

    rows = [_vm("AWS", d, "p4d.24xlarge", 12, "10.00", "6.00", cid="ri-m", res="i-1", end="2026-11-20T00:00:00Z")
            for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 31), *_days("2026-11-01", 5)]]
    for start, end, days in ((dt.datetime(2026, 9, 1), dt.datetime(2026, 10, 1), 30),
                             (dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1), 31),
                             (dt.datetime(2026, 11, 1), dt.datetime(2026, 11, 6), 5)):
        cost = str(Decimal("72.00") * days)
        rows.append(dict(ProviderName="AWS", day=str(start.date()), ChargePeriodStart=start, ChargePeriodEnd=end,
                         ChargeCategory="Usage", cost="0", EffectiveCost=cost, BilledCost=cost, ListCost="0",
                         ContractedCost="0", CommitmentDiscountId="ri-m", CommitmentDiscountType="Reserved Instance",
                         CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused",
                         CommitmentDiscountQuantity=str(12 * days), CommitmentDiscountUnit="Hours",
                         x_reservation_end_time="2026-11-20T00:00:00Z"))
    return rows


def test_a_window_starting_after_the_1st_counts_the_part_of_the_months_unused_row_it_holds():
    """Over charge days 2 Oct-5 Nov 2026 the October unused row (booked on 1 October) was out of scope: the RI read
    100% used in October and section 4 said "Renew or replace ...: the bill rises $1,488.00/month" (2,232.00 of
    October's cost against usage worth 3,720.00) where the whole October (50% used, 4,464.00 a month) says "let it
    lapse: saves $744.00/month". Now a row billed for longer than a day counts for the share of it the window
    holds: 30/31 of October's, exactly 2,160.00 -- the same decision as over the billing periods."""
    from decimal import Decimal

    from finops_kit.testing import focus_rows

    con = focus_rows(_monthly_unused_rows())
    whole = scope.resolve(con, str(REPO / "finops.yaml"))
    days = scope.resolve(con, str(REPO / "finops.yaml"), date_start="2026-10-02", date_end="2026-11-05")
    for sc in (whole, days):
        cal = cm.expiry(con, sc).set_index("commitment_id")
        ri = cal.loc["ri-m"]
        assert (ri["value_period"], ri["current_utilization"]) == (dt.date(2026, 10, 1), 0.5), sc.describe()
        assert ri["monthly_value"] == Decimal("4464.00") and ri["bill_change_if_lapsed"] == Decimal("-744.00")
        dec = cm.expiry_decisions(cm.expiry(con, sc)).set_index("resource_id").loc["ri-m"]
        assert dec["decision"] == "let it lapse" and dec["dollars"] == Decimal("744.00")
        inv = cm.inventory(con, sc)
        pc = cm.utilization(con, sc, by=("commitment", "period"))
        under, ending = cm.underused(pc, inv, dt.date(2026, 11, 5))
        assert list(ending["commitment_id"]) == ["ri-m"] and under.empty  # 50% used: decided in section 4
    inv = cm.inventory(con, days).set_index("commitment_id").loc["ri-m"]
    assert inv["used_cost"] == inv["unused_cost"] == Decimal("2520.00")  # 35 days of 72.00 each side
    assert inv["unused_quantity"] == Decimal("420") and inv["first_day"] == dt.date(2026, 10, 2)
    per = cm.utilization(con, days, by=("period",)).set_index("period")
    assert per.loc[dt.date(2026, 10, 1), "unused_cost"] == Decimal("2160.00")  # 2,232.00 x 30/31
    assert list(per["utilization"]) == [0.5, 0.5]


def test_a_window_ending_before_the_months_end_counts_only_its_part_of_the_unused_row():
    """Over 1-14 October the whole October unused row (2,232.00) stood against 14 days of use (1,008.00): 31.1%
    used, where the RI is half used every day. Its 14/31 is 1,008.00 exactly; a 5-18 October window (no 1st) read
    100% and now reads 50%; summary (the headline and ``finops-kit metrics``) says the same."""
    from decimal import Decimal

    from finops_kit.testing import focus_rows

    con = focus_rows(_monthly_unused_rows())
    for a, b in (("2026-10-01", "2026-10-14"), ("2026-10-05", "2026-10-18")):
        sc = scope.resolve(con, str(REPO / "finops.yaml"), date_start=a, date_end=b)
        inv = cm.inventory(con, sc).set_index("commitment_id").loc["ri-m"]
        assert inv["used_cost"] == inv["unused_cost"] == Decimal("1008.00"), (a, b)
        assert inv["utilization"] == 0.5 and inv["unused_quantity"] == Decimal("168")
        head = cm.summary(con, sc).set_index("provider").loc["(all)"]
        assert (head["utilization"], head["unused_cost"]) == (0.5, Decimal("1008.00"))


def test_a_part_of_a_row_is_exact_to_the_money_scale():
    """1,000.00 unused over three days, one of them in the window: 333.333333333333 (DuckDB divides a DECIMAL in
    floating point: 333.33333333333331)."""
    from decimal import Decimal

    from finops_kit.testing import focus_rows

    rows = [_vm("AWS", d, "p4d.24xlarge", 1, "10.00", "6.00", cid="ri-x", res="i-1") for d in _days("2026-10-01", 5)]
    rows.append(dict(ProviderName="AWS", day="2026-10-01", ChargePeriodStart=dt.datetime(2026, 10, 1),
                     ChargePeriodEnd=dt.datetime(2026, 10, 4), ChargeCategory="Usage", cost="0",
                     EffectiveCost="1000.00", BilledCost="1000.00", ListCost="0", ContractedCost="0",
                     CommitmentDiscountId="ri-x", CommitmentDiscountType="Reserved Instance",
                     CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"), date_start="2026-10-03", date_end="2026-10-05")
    assert cm.inventory(con, sc).set_index("commitment_id").loc["ri-x", "unused_cost"] == Decimal("333.333333333333")


def test_the_report_decides_an_expiry_over_a_charge_day_window_as_over_the_months(tmp_path):
    """The report's own cells with ``date_start=2026-10-02``: section 4 and the summary said "Renew or replace AWS
    Reserved Instance ri-m ... (100% used in Oct 2026): the bill rises $1,488.00/month"; they now say what the
    billing periods say, "Let ... lapse: saves $744.00/month", and the overview counts its 4,464.00 a month."""
    import subprocess
    import sys

    import finops_kit as fk
    from finops_kit.testing import focus_rows

    from .test_commitments import _CELL_RUNNER

    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows(_monthly_unused_rows(), con)
    con.close()
    runner = tmp_path / "run.py"
    runner.write_text(_CELL_RUNNER.replace(
        "ns.update(warehouse=wh, config_path=config)",
        "ns.update(warehouse=wh, config_path=config, date_start='2026-10-02', date_end='2026-11-05')"), "utf-8")
    out = subprocess.run([sys.executable, str(runner), str(REPO / "notebooks" / "commitments.ipynb"), str(wh),
                          str(REPO / "finops.yaml")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "charge days 2026-10-02 .. 2026-11-05" in out.stdout
    # not the section-5 purchase that names ri-m as the RI it replaces (prose review #12)
    actions = [a for a in out.stdout.splitlines() if a.startswith("ACTION|") and "ri-m" in a
               and "|Buy " not in a]
    assert len(actions) == 1 and actions[0].startswith(
        "ACTION|744.00|per month saved if it lapses|Let AWS Reserved Instance ri-m ending 2026-11-20 (50% used in "
        "Oct 2026) lapse"), actions
    assert "costing \\$4,464.00 a month (used + unused)" in out.stdout
