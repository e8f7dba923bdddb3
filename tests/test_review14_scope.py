"""Review 14 (consistency), items 2, 3 and 7: a charge-day scope compares like with like, storage "per month" is
per month whatever the window, and an open period's label says how far the data goes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import scope as S
from finops_kit import summary as sm
from finops_kit.metrics import metrics
from finops_kit.testing import focus_rows

D = dt.date


def _month_long(first: str, cost: int, **kw):
    """A charge booked on the 1st for the whole month (tax, a monthly fee, an unused reservation)."""
    start = pd.Timestamp(first)
    end = start + pd.offsets.MonthBegin(1)
    return dict(ChargePeriodStart=start.to_pydatetime(), ChargePeriodEnd=end.to_pydatetime(),
                BillingPeriodStart=start.to_pydatetime(), BillingPeriodEnd=end.to_pydatetime(),
                BilledCost=cost, EffectiveCost=cost, ListCost=cost, ContractedCost=cost, **kw)


# ------------------------------------------------------------------------------------------------ item 2


def _steady_bill():
    """$10 a day from 1 Aug to 3 Nov, and $300 of tax booked on the 1st of each month for the month."""
    rows = [{"day": str(d.date()), "cost": Decimal(10)} for d in pd.date_range("2026-08-01", "2026-11-03")]
    rows += [_month_long(m, 300, ChargeCategory="Tax") for m in ("2026-08-01", "2026-09-01", "2026-10-01",
                                                                    "2026-11-01")]
    return focus_rows(rows)


def test_a_charge_day_window_is_compared_with_the_same_days_of_an_earlier_month():
    # 5-18 Oct 2026 vs the 14 days before (21 Sep - 4 Oct) said spend -10.3% on the demo: the days before held the
    # month-long charges booked on 1 Oct, the window none. Steady spend must read as no change.
    con = _steady_bill()
    sc = S.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-10-18"})
    s = sm.summarize(con, sc, ["effective_cost"])
    f = s.figures[0]
    assert f.value == Decimal(140) == metrics(con, sc).total("effective_cost")  # the body's figure, unchanged
    assert f.previous == Decimal(140) and f.change == 0
    assert (s.previous.start, s.previous.end) == (D(2026, 9, 5), D(2026, 9, 18))
    assert "change vs 5\u201318 Sep 2026" in s.period_text()
    # a window holding a 1st is compared with one holding a 1st: both carry one month's tax
    sc2 = S.resolve(con, {}, {"date_start": "2026-09-25", "date_end": "2026-10-08"})
    s2 = sm.summarize(con, sc2, ["effective_cost"])
    # as many days too (25 Aug - 8 Sep was 15 days against 14: +$10 of "change" on flat spend)
    assert (s2.previous.start, s2.previous.end) == (D(2026, 8, 26), D(2026, 9, 8))
    assert s2.figures[0].value == Decimal(14 * 10 + 300) == s2.figures[0].previous


def _firsts(a, b):
    return sum(1 for d in pd.date_range(a, b) if d.day == 1)


@pytest.mark.parametrize(("start", "end", "before"), [
    # the same days of the month, a month earlier, when that month has them
    (D(2026, 10, 5), D(2026, 10, 18), (D(2026, 9, 5), D(2026, 9, 18))),
    # across a month boundary: ends on the same day (4 Sep), 14 days like 21 Sep - 4 Oct (not 21 Aug - 4 Sep: 15)
    (D(2026, 9, 21), D(2026, 10, 4), (D(2026, 8, 22), D(2026, 9, 4))),
    (D(2026, 10, 1), D(2026, 10, 31), (D(2026, 8, 31), D(2026, 9, 30))),    # 31 days: 1-30 Sep is 30
    (D(2026, 10, 5), D(2026, 11, 20), (D(2026, 8, 5), D(2026, 9, 20))),     # longer than a month: no overlap
    # a shorter month before: the window keeps its length, the end its day (or the month's last day)
    (D(2026, 3, 29), D(2026, 3, 31), (D(2026, 2, 26), D(2026, 2, 28))),     # not 28 Feb alone (3 days vs 1)
    (D(2026, 5, 30), D(2026, 5, 31), (D(2026, 4, 29), D(2026, 4, 30))),     # not 30 Apr alone
    (D(2026, 3, 1), D(2026, 3, 31), (D(2026, 1, 29), D(2026, 2, 28))),      # not 1-28 Feb: 31 days, one 1st
    (D(2026, 3, 31), D(2026, 3, 31), (D(2026, 2, 28), D(2026, 2, 28))),     # no 31 Feb: its last day
    (D(2026, 2, 1), D(2026, 2, 28), (D(2026, 1, 1), D(2026, 1, 28))),
    (D(2026, 1, 10), D(2026, 12, 31), (D(2025, 1, 10), D(2025, 12, 31))),
    # whole years: the year before when it has as many days
    (D(2026, 1, 1), D(2026, 12, 31), (D(2025, 1, 1), D(2025, 12, 31))),
    # a leap year (366 days): 366 days ending 31 Dec 2027, twelve 1sts like 2028
    (D(2028, 1, 1), D(2028, 12, 31), (D(2026, 12, 31), D(2027, 12, 31))),
    # the year after one (365 days): ending 31 Dec 2028 it would start 2 Jan and miss 1 Jan (11 1sts against 12),
    # so it starts on the same day instead
    (D(2029, 1, 1), D(2029, 12, 31), (D(2028, 1, 1), D(2028, 12, 30))),
    # leap Februaries
    (D(2028, 3, 1), D(2028, 3, 31), (D(2028, 1, 30), D(2028, 2, 29))),
    (D(2028, 3, 31), D(2028, 3, 31), (D(2028, 2, 29), D(2028, 2, 29))),
    (D(2028, 3, 30), D(2028, 3, 31), (D(2028, 2, 28), D(2028, 2, 29))),
    (D(2028, 2, 1), D(2028, 2, 29), (D(2028, 1, 1), D(2028, 1, 29))),
    # no 30 days without a 1st end on 30 Apr or start on 2 Apr: the same days two months earlier
    (D(2026, 5, 2), D(2026, 5, 31), (D(2026, 3, 2), D(2026, 3, 31))),
    # 29 days holding two 1sts (only a February does that): nothing just before is like it
    (D(2026, 2, 1), D(2026, 3, 1), None),
])
def test_previous_window_examples(start, end, before):
    assert S.previous_window(start, end) == before
    if before is not None:
        assert (before[1] - before[0]) == (end - start) and before[1] < start
        assert _firsts(*before) == _firsts(start, end)


def test_previous_window_has_as_many_days_and_1sts_and_never_overlaps():
    # the review: 29-31 Mar 2026 vs 28 Feb read +269.3% (3 days against 1), 1-31 Mar vs 1-28 Feb +19.0% on
    # nearly flat spend. Every window compared has as many days and as many 1sts, before the window -- or none.
    days = pd.date_range("2027-11-01", "2029-03-31")  # a leap February and the year after it
    none = []
    for a in days[::2]:
        for n in (1, 2, 3, 6, 7, 13, 14, 27, 28, 29, 30, 31, 45, 59, 60, 62, 90, 91, 92, 365, 366):
            s, e = a.date(), (a + pd.Timedelta(days=n - 1)).date()
            got = S.previous_window(s, e)
            if got is None:
                none.append((s, e))
                continue
            ps, pe = got
            assert pe < s and (pe - ps).days + 1 == n, (s, e, ps, pe)
            assert _firsts(ps, pe) == _firsts(s, e), (s, e, ps, pe)
            # the same days of the month whole months earlier whenever those are as many days (and as many 1sts)
            k = next(k for k in range(1, 40) if S._months_back(e, k) < s)
            same = (S._months_back(s, k), S._months_back(e, k))
            if (same[1] - same[0]).days + 1 == n and _firsts(*same) == _firsts(s, e):
                assert got == same, (s, e, got, same)
    # windows without a like one just before are rare, and never a plain week, fortnight or calendar month
    assert len(none) < 0.01 * len(days[::2]) * 21
    assert not [w for w in none if (w[1] - w[0]).days + 1 in (7, 14) or (w[0].day == 1 and w[1] ==
                                                                        S._month_end(w[0]))]


def test_a_charge_day_window_without_a_like_window_before_shows_no_comparison():
    # 1 Feb - 1 Mar holds two month-long charges in 29 days; the days before hold one: no biased comparison
    rows = [{"day": str(d.date()), "cost": Decimal(10)} for d in pd.date_range("2025-10-01", "2026-04-05")]
    con = focus_rows(rows)
    sc = S.resolve(con, {}, {"date_start": "2026-02-01", "date_end": "2026-03-01"})
    s = sm.summarize(con, sc, ["effective_cost"])
    assert s.previous is None and s.figures[0].previous is None
    assert "1 Feb\u20131 Mar 2026" in s.period_text() and "as many 1sts" in s.period_text()
    assert "no data in the days before" not in s.period_text()
    # 29-31 Mar is compared with the three days ending 28 Feb, not with 28 Feb alone
    sc3 = S.resolve(con, {}, {"date_start": "2026-03-29", "date_end": "2026-03-31"})
    s3 = sm.summarize(con, sc3, ["effective_cost"])
    assert (s3.previous.start, s3.previous.end) == (D(2026, 2, 26), D(2026, 2, 28))
    assert s3.figures[0].previous == s3.figures[0].value == Decimal(30)


# ------------------------------------------------------------------------------------------------ item 3

S3 = "Amazon Simple Storage Service"


def _s3(day, usage_type, qty, cost, unit="GB-Mo", **kw):
    return dict(day=day, ServiceName=S3, ServiceCategory="Storage", x_UsageType=usage_type, ConsumedQuantity=qty,
                ConsumedUnit=unit, PricingQuantity=qty, PricingUnit=unit, cost=cost, ResourceId="vision-datasets",
                RegionId="us-east-1", **kw)


def _steady_bucket(gb=300_000.0, gets_per_day=2_000_000):
    """A bucket holding ``gb`` GB every day of Sep - 5 Nov 2026 (daily CUR rows), read ``gets_per_day`` times a
    day; September and October are closed, November open."""
    from decimal import Decimal as Dec

    rows = []
    for d in pd.date_range("2026-09-01", "2026-11-05"):
        q = gb / d.days_in_month
        rows.append(_s3(str(d.date()), "USE1-TimedStorage-ByteHrs", q, Dec(str(round(q * 0.023, 6)))))
        rows.append(_s3(str(d.date()), "USE1-Requests-Tier2", gets_per_day, Dec(str(gets_per_day * 0.0000004)),
                        unit="Requests"))
    return focus_rows(rows)


def _best(con, sc):
    from finops_kit import storage as st

    recs = st.recommend(con, st.load_prices(), scope=sc, avg_object_kb=1024)
    return recs[recs["recommended"]].iloc[0]


def test_storage_per_month_figures_are_per_month_in_a_charge_day_scope():
    # the review: vision-datasets-1098 S3 Standard -> Glacier IR saved $5,057/month sized at 293,735 GB over the
    # whole scope, and "$2,274/month" sized at 131,881 GB (= 14/31 of it) for 5-18 Oct: 14 days of GB-months were
    # read as one month's average. A per-month figure is per month whatever the window.
    from finops_kit import storage as st

    con = _steady_bucket()
    whole = S.resolve(con, {})
    october = S.resolve(con, {}, {"billing_period_start": "2026-10", "billing_period_end": "2026-10"})
    days = S.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-10-18"})
    a, o, b = _best(con, whole), _best(con, october), _best(con, days)
    assert a["gb"] == pytest.approx(300_000, rel=1e-9) and o["gb"] == pytest.approx(300_000, rel=1e-9)
    assert b["gb"] == pytest.approx(300_000, rel=1e-9)            # before: 135,483.87 (14/31 of it)
    # reads per month, not per 14 days: October's 62 million GETs, as the October billing period reads them
    assert b["access"] == pytest.approx(float(o["access"]), rel=1e-9)
    assert float(o["access"]) == pytest.approx(31 * 2_000_000 / 1024 / 300_000, rel=1e-9)
    assert b["target_class"] == o["target_class"]
    assert b["monthly_saving"] == o["monthly_saving"] and b["one_time_cost"] == o["one_time_cost"]
    inv = st.inventory(con, by="storage_class", scope=days).set_index("storage_class")
    assert inv.loc["S3 Standard", "avg_gb"] == pytest.approx(300_000, rel=1e-9)
    # a window of whole months is sized as the billing period is
    octo = S.resolve(con, {}, {"date_start": "2026-10-01", "date_end": "2026-10-31"})
    assert _best(con, octo)["gb"] == pytest.approx(300_000, rel=1e-9)


@pytest.mark.parametrize(("params", "period", "share"), [
    ({"date_start": "2026-10-05", "date_end": "2026-10-18"}, D(2026, 10, 1), (14, 31)),
    ({"date_start": "2026-10-05", "date_end": "2026-10-18"}, D(2026, 9, 1), (0, 30)),
    ({"date_start": "2026-09-21", "date_end": "2026-10-04"}, D(2026, 9, 1), (10, 30)),
    ({"date_start": "2026-10-20"}, D(2026, 10, 1), (12, 31)),
    ({"billing_period_start": "2026-10", "billing_period_end": "2026-10"}, D(2026, 10, 1), (31, 31)),
    ({}, D(2024, 2, 1), (29, 29)),
])
def test_month_share_is_the_days_the_scope_covers_of_the_period(params, period, share):
    from fractions import Fraction

    assert S.Scope.parse(params).month_share(period) == Fraction(*share)


def test_storage_egress_per_month_is_per_month_in_a_charge_day_scope():
    # the egress share of a bucket's reads: GB out per month, not per window
    from finops_kit import storage as st

    rows = [dict(day=str(d.date()), ServiceName=S3, ServiceCategory="Networking",
                 x_UsageType="USE1-DataTransfer-Out-Bytes", ConsumedQuantity=100, ConsumedUnit="GB",
                 PricingQuantity=100, PricingUnit="GB", cost=Decimal(9), ResourceId="vision-datasets",
                 RegionId="us-east-1") for d in pd.date_range("2026-09-01", "2026-11-05")]
    con = focus_rows(rows)
    out = {}
    for name, p in (("october", {"billing_period_start": "2026-10", "billing_period_end": "2026-10"}),
                    ("days", {"date_start": "2026-10-05", "date_end": "2026-10-18"})):
        sc = S.resolve(con, {}, p)
        out[name] = st._egress_gb(con, "bucket", {"scope": sc, "config": {}})
    assert out["october"] == {("AWS", "vision-datasets"): pytest.approx(3100)}
    assert out["days"] == {("AWS", "vision-datasets"): pytest.approx(3100)}  # before: 1,400 (14 days)


def test_storage_growth_leaves_out_a_month_the_window_holds_part_of():
    # 15 Sep - 5 Nov: 16 days of September's GB-months before a whole October read as +88% a month
    from finops_kit import storage as st

    con = _steady_bucket()
    sc = S.resolve(con, {}, {"date_start": "2026-09-15", "date_end": "2026-11-05"})
    m = st.monthly(con, "provider", scope=sc)
    assert m["closed"].tolist() == [False, True, False]  # part of Sep, Oct whole, Nov open
    g = st.growth(con, "provider", scope=sc)
    # one closed month (October) is no rate: no growth, no projection (session 15; before: a made-up 0.0%)
    assert g["monthly_growth"].isna().all() and "projected" not in set(g["kind"])


# ------------------------------------------------------------------------------------------------ item 7


def _daily(first, last, cost=10, **kw):
    return [{"day": str(d.date()), "cost": Decimal(cost), **kw} for d in pd.date_range(first, last)]


def test_an_open_period_is_labelled_through_the_provider_furthest_behind():
    # the review's lagging warehouse: the summary said "1-26 Nov 2026, open" while the header said "Microsoft
    # 1-20 Nov" and the forecast "data through 2026-11-20": one "data through" for the scope, the forecast's
    from finops_kit import forecast as fc

    con = focus_rows(_daily("2026-10-01", "2026-11-26")
                     + _daily("2026-10-01", "2026-11-20", 5, ProviderName="Microsoft"))
    sc = S.resolve(con, {}, {})
    assert fc.data_through(con, sc) == D(2026, 11, 20)
    assert sc.open_labels() == {D(2026, 11, 1): "1\u201320 Nov 2026, open"}       # before: 1-26
    assert sc.period_labels()[D(2026, 11, 1)] == "2026-11 (1\u201320, open)"      # before: 1-26
    labels = sc.open_periods().set_index("provider")["label"]
    assert labels["Microsoft"] == "1\u201320 Nov 2026, open" and labels["AWS"] == "1\u201326 Nov 2026, open"
    # a provider gone for more than LATE_DELIVERY_DAYS (it left) holds nobody back, as in the forecast
    gone = focus_rows(_daily("2026-10-01", "2026-11-26")
                      + _daily("2026-10-01", "2026-11-10", 5, ProviderName="Microsoft"))
    gsc = S.resolve(gone, {}, {})
    assert fc.data_through(gone, gsc) == D(2026, 11, 26)
    assert gsc.open_labels() == {D(2026, 11, 1): "1\u201326 Nov 2026, open"}


def test_an_open_period_label_never_names_days_it_has_no_data_for():
    # the corpus FOCUS sample: an Oracle period whose only charge day is 30 Sep was labelled "1-30 Oct 2024, open"
    oracle = {"ChargePeriodStart": dt.datetime(2024, 9, 30), "ChargePeriodEnd": dt.datetime(2024, 10, 1),
              "BillingPeriodStart": dt.datetime(2024, 10, 1), "BillingPeriodEnd": dt.datetime(2024, 11, 1),
              "ProviderName": "Oracle", "cost": Decimal(3)}
    con = focus_rows(_daily("2024-09-01", "2024-09-30") + [oracle])
    sc = S.resolve(con, {}, {})
    row = sc.open_periods().set_index("provider").loc["Oracle"]
    assert row["last_day"] == D(2024, 9, 30)
    assert row["label"] == "Oct 2024, open (data through 30 Sep 2024)"            # before: "1-30 Oct 2024, open"
    assert sc.open_labels() == {D(2024, 10, 1): "Oct 2024, open (data through 30 Sep 2024)"}
    assert sc.period_labels()[D(2024, 10, 1)] == "2024-10 (open, data through 30 Sep)"


def test_an_open_period_label_counts_whole_days_as_the_forecast_does():
    # hourly rows that stop at 05:00 on the 26th: the 26th is not a whole day; the forecast's data runs through the
    # 25th, and so does the label
    from finops_kit import forecast as fc

    rows, t = [], dt.datetime(2026, 11, 1)
    while t < dt.datetime(2026, 11, 26, 5):
        rows.append({"ChargePeriodStart": t, "ChargePeriodEnd": t + dt.timedelta(hours=1), "cost": Decimal(1),
                     "BillingPeriodStart": dt.datetime(2026, 11, 1), "BillingPeriodEnd": dt.datetime(2026, 12, 1),
                     "ProviderName": "Google Cloud"})
        t += dt.timedelta(hours=1)
    con = focus_rows(rows)
    sc = S.resolve(con, {}, {})
    assert fc.data_through(con, sc) == D(2026, 11, 25)
    assert sc.open_labels() == {D(2026, 11, 1): "1\u201325 Nov 2026, open"}         # before: 1-26
