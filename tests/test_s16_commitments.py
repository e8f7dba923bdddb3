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
