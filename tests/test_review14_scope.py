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
    assert (s2.previous.start, s2.previous.end) == (D(2026, 8, 25), D(2026, 9, 8))
    # the same days of the month, so as many days as those months give (31 Aug: 15 days against 14)
    assert s2.figures[0].value == Decimal(14 * 10 + 300) and s2.figures[0].previous == Decimal(15 * 10 + 300)


@pytest.mark.parametrize(("start", "end", "before"), [
    (D(2026, 10, 5), D(2026, 10, 18), (D(2026, 9, 5), D(2026, 9, 18))),
    (D(2026, 9, 21), D(2026, 10, 4), (D(2026, 8, 21), D(2026, 9, 4))),
    (D(2026, 10, 1), D(2026, 10, 31), (D(2026, 9, 1), D(2026, 9, 30))),     # a whole month: the month before
    (D(2026, 10, 5), D(2026, 11, 20), (D(2026, 8, 5), D(2026, 9, 20))),     # longer than a month: no overlap
    (D(2026, 3, 31), D(2026, 3, 31), (D(2026, 2, 28), D(2026, 2, 28))),     # no 31 Feb: its last day
    (D(2026, 1, 10), D(2026, 12, 31), (D(2025, 1, 10), D(2025, 12, 31))),
])
def test_previous_window_examples(start, end, before):
    assert S.previous_window(start, end) == before


def test_previous_window_holds_as_many_firsts_and_never_overlaps():
    def firsts(a, b):
        return sum(1 for d in pd.date_range(a, b) if d.day == 1)

    days = pd.date_range("2027-12-01", "2028-03-31")  # a leap February
    for a in days[::3]:
        for n in (1, 2, 6, 7, 13, 14, 27, 28, 29, 30, 31, 45, 62, 90):
            s, e = a.date(), (a + pd.Timedelta(days=n - 1)).date()
            ps, pe = S.previous_window(s, e)
            assert pe < s and ps <= pe, (s, e, ps, pe)
            assert firsts(ps, pe) == firsts(s, e), (s, e, ps, pe)
