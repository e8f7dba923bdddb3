"""The batched reads of budget status and history (one query for every budget) give what the per-budget reads give."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from datetime import date, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from finops_kit import budgets as bu  # noqa: E402
from finops_kit import forecast as fc  # noqa: E402
from finops_kit.scope import Scope, bind  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402


def _days(start: str, n: int, cost, **extra) -> list[dict]:
    return [dict(day=str(d.date()), cost=cost, **extra) for d in pd.date_range(start, periods=n, freq="D")]


def _bill():
    """USD and EUR charges, Sep 1 .. Nov 10 (November partial): two accounts (by id and name), two teams, a monthly
    tax booked on the 1st (November's not posted), a daily recurring fee, a one-time purchase, and an Azure export
    two days behind AWS."""
    rows = (_days("2026-09-01", 71, "100.25", SubAccountId="111", SubAccountName="prod",
                  tags={"team": "alpha", "project": "p1"})
            + _days("2026-09-01", 71, "7.5", SubAccountId="222", SubAccountName="dev", tags={"team": "beta"})
            + _days("2026-09-01", 69, "40", ProviderName="Microsoft", SubAccountId="az1", SubAccountName="az",
                    tags={"team": "alpha"})
            + _days("2026-09-01", 71, "3", ChargeFrequency="Recurring", SubAccountId="222", SubAccountName="dev",
                    tags={"team": "beta"})
            + _days("2026-09-01", 71, "55", BillingCurrency="EUR", SubAccountId="333", SubAccountName="eu",
                    tags={"team": "alpha"})
            + [dict(day="2026-11-03", cost="250", ChargeFrequency="One-Time", ChargeCategory="Purchase",
                    SubAccountId="111", SubAccountName="prod", tags={"team": "alpha"})])
    for m in ("2026-09-01", "2026-10-01"):
        start = pd.Timestamp(m)
        rows.append(dict(day=m, cost="600", ServiceName="Tax", ChargeCategory="Tax", ChargeFrequency="Recurring",
                         ChargeDescription=f"Tax for {m[:7]}", SubAccountId="111", SubAccountName="prod",
                         ChargePeriodEnd=datetime(start.year, start.month + 1, 1)))
    return focus_rows(rows)


FILTERS = [None, {"team": "alpha"}, {"team": "beta"}, {"account": "111"}, {"account": "dev", "team": "beta"},
           {"provider": "Microsoft"}, {"team": "nobody"}, {"project": "p1", "team": ["alpha", "beta"]}]


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_each_batched_read_is_the_per_filter_read(currency):
    con = _bill()
    sc = bind(con, Scope.parse({"currency": currency}))
    assert fc.data_through_many(con, sc, FILTERS) == [fc.data_through(con, sc, f) for f in FILTERS]
    assert fc.as_of_days(con, sc, "2026-11-30", FILTERS) == [fc.as_of_day(con, sc, "2026-11-30", f) for f in FILTERS]
    for kw in (dict(start=date(2026, 11, 1), end=date(2026, 11, 10), charges="all"),
               dict(start=date(2025, 11, 11), end=date(2026, 11, 10), top=6)):
        for many, f in zip(fc.daily_series_many(con, "total", FILTERS, scope=sc, **kw), FILTERS, strict=True):
            pd.testing.assert_frame_equal(many, fc.daily_series(con, "total", filters=f, scope=sc, **kw))
    d = date(2026, 11, 10)
    for f, many, todate, recurring in zip(
            FILTERS, fc.forecast_inputs(con, "total", FILTERS, as_of=d, scope=sc),
            fc._period_to_date(con, "total", FILTERS, date(2026, 11, 1), d, sc),
            fc._recurring_by_value_many(con, "total", FILTERS, d, sc), strict=True):
        (one,) = fc._period_to_date(con, "total", [f], date(2026, 11, 1), d, sc)
        # a filter without rows: the plain query's aggregate names the constant value 'Total' with $0, the batched
        # one has no row for it -- the forecast reads a missing value as $0 (todate.get(value, (0, 0)))
        assert todate == {v: a for v, a in one.items() if any(a)}
        if many.as_of == d:  # an Azure-only filter is read as of its own day (two days behind)
            assert many.todate == todate
        single = fc._recurring_by_value(con, "total", f, d, sc)
        assert recurring.keys() == single.keys() == many.recurring.keys()
        for v in single:
            pd.testing.assert_frame_equal(recurring[v].sort_values(["day", "charge"]).reset_index(drop=True),
                                          single[v].sort_values(["day", "charge"]).reset_index(drop=True))
        if many.as_of == d:
            pd.testing.assert_frame_equal(many.series, fc.daily_series(
                con, "total", start=date(2025, 11, 11), end=d, filters=f, top=6, scope=sc))
    if currency == "USD":  # the tax (USD, account prod) is pending for the budgets that hold it
        assert fc.pending_recurring(fc._recurring_by_value(con, "total", {"account": "111"}, d, sc)["Total"],
                                    d)["cost"].tolist() == [600.0]


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts, an empty cell as None (one budget's frame holds None where many budgets' hold NaN)."""
    return [{k: None if v is None or v != v else v for k, v in r.items()} for r in frame.to_dict("records")]


def test_budget_status_and_history_of_many_budgets_are_each_budget_s_own():
    con = _bill()
    sc = bind(con, Scope.parse({"currency": "USD"}))
    items = [{"name": "All", "monthly": 5000}, {"name": "alpha", "scope": {"team": "alpha"}, "monthly": 3000},
             {"name": "beta", "scope": {"team": "beta"}, "monthly": 100},
             {"name": "prod by id", "scope": {"account": "111"}, "monthly": 2500},
             {"name": "azure", "scope": {"provider": "Microsoft"}, "monthly": 1000},
             {"name": "December only", "scope": {"team": "alpha"}, "months": {"2026-12": 10}},
             {"name": "typo", "scope": {"team": "alpah"}, "monthly": 10}]
    budgets = bu.load_budgets({"budgets": {"items": items}})[0]
    for as_of in (None, "2026-11-09", "2026-10-31"):  # the last: a complete month
        together = bu.budget_status(con, budgets, as_of=as_of, model="seasonal_naive", scope=sc)
        alone = [r for b in budgets for r in _records(bu.budget_status(con, [b], as_of=as_of, model="seasonal_naive",
                                                                       scope=sc))]
        assert _records(together) == alone
        assert together["as_of"].nunique() == (1 if as_of == "2026-10-31" else 2)  # Azure's export is two days behind: its own as-of day
        history = bu.budget_history(con, budgets, as_of=as_of, scope=sc)
        assert _records(history) == [r for b in budgets
                                     for r in _records(bu.budget_history(con, [b], as_of=as_of, scope=sc))]
        assert len(history)
        if as_of is None:  # October's tax (account 111 by its id), not posted in November yet, in the forecast
            st = together.set_index("budget")
            assert st.loc["prod by id", "not_posted_yet"] == Decimal("600.00") == st.loc["All", "not_posted_yet"]
            assert st.loc["beta", "not_posted_yet"] == 0 and st.loc["typo", "status"] == "matches no charges"
