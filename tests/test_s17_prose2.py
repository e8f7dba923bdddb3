"""Session 17 (prose review of the rendered demo, findings 2, 7, 11 and 15): a budget's over-budget line names the
once-a-month charges its forecast expects again, a team budget wholly inside a narrowed scope is judged, the
forecast headline carries its comparisons, and the forecast's words follow its own dates and backtests."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

pytest.importorskip("duckdb")

from finops_kit import budgets as bu  # noqa: E402
from finops_kit.alerts import evaluate  # noqa: E402
from finops_kit.scope import Scope, bind  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

from .test_s16_budgets import _budgets, _days  # noqa: E402


def test_a_team_budget_whose_charges_are_all_inside_a_narrowed_scope_is_judged():
    # review prose #7: with -p providers=["AWS"] the demo's research budget (every charge of research on AWS, every
    # month) was "not judged in this scope: it covers all providers" -- $12,972.02 spent of $12,000, over budget in
    # the report without the parameter, no alert here -- while the same run judged research's accelerator limit.
    # Before: NOT_JUDGED for research; after: judged, over budget, alerted. A team with charges left out -- Microsoft
    # in June only, months before the judged one -- is listed with where and when, not the generic sentence
    con = focus_rows(_days("2026-09-16", 60, "100", ProviderName="AWS", tags={"team": "research"})
                     + _days("2026-09-16", 60, "40", ProviderName="AWS", tags={"team": "nlp"})
                     + _days("2026-06-01", 30, "50", ProviderName="Microsoft", tags={"team": "nlp"}))
    items = [{"name": "research", "scope": {"team": "research"}, "monthly": 1000},
             {"name": "nlp", "scope": {"team": "nlp"}, "monthly": 5000}]
    aws = bind(con, Scope.parse({"providers": ["AWS"]}))
    st = bu.budget_status(con, _budgets(items), as_of="2026-11-14", forecast_results={}, scope=aws).set_index("budget")
    assert st.loc["research", "status"] == "over budget"  # 14 x $100 = $1,400 of $1,000
    assert st.loc["research", "actual_mtd"] == Decimal("1400.00")
    assert st.loc["nlp", "status"] == bu.NOT_JUDGED
    assert st.loc["nlp", "note"] == ("not judged in this scope: it covers charges on Microsoft in 2026-06 too, which "
                                     "this scope leaves out; this scope is AWS only")
    cfg = {"budgets": {"thresholds": [100], "items": items}, "alerts": {"forecast": False}}
    notes: list[str] = []
    alerts = evaluate(con, cfg, "2026-11-14", scope=Scope.parse({"providers": ["AWS"]}), notes=notes)
    assert [a.subject for a in alerts if a.kind == "budget"] == ["research"]
    assert notes == ["nlp: it covers charges on Microsoft in 2026-06 too, which this scope leaves out; this scope is "
                     "AWS only"]


def _tax_bill() -> list[dict]:
    """$100/day of EC2 Sep 1 .. Nov 14, and each month's tax ($2,000, booked on the 1st for the month before, as
    AWS books it) for September and October; November's has not posted."""
    from datetime import datetime

    rows = _days("2026-09-01", 75, "100", ServiceName="EC2")
    for day, end in (("2026-09-01", datetime(2026, 10, 1)), ("2026-10-01", datetime(2026, 11, 1))):
        rows.append(dict(day=day, cost="2000", ServiceName="Tax", ChargeCategory="Tax", ChargeFrequency="Recurring",
                         ChargePeriodEnd=end))
    return rows


def test_an_over_budget_line_names_the_once_a_month_charges_its_forecast_expects_again():
    # review prose #2: the demo's summary read "Budget Shared platform (2026-11): forecast $60,441 vs $50,000,
    # crosses it 2026-11-27" -- $23,508.81 of that forecast is October's tax, expected again and placed on the first
    # forecast day (the day after the data ends): without it $36,932.56, under the budget, and no spend on the 27th.
    # Before: no such column, no such words; after: the amount and what it is, in the table, the summary and the
    # line under the budget table
    from finops_kit import scope as S
    from finops_kit import summary as sm

    con = focus_rows(_tax_bill())
    budgets = _budgets([{"name": "All", "monthly": 3200}])
    st = bu.budget_status(con, budgets, as_of="2026-11-14")
    row = st.iloc[0]
    assert row["not_posted_yet"] == Decimal("2000.00") and row["not_posted_what"] == "October's tax"
    assert row["forecast"] == pytest.approx(5000, abs=1)  # 14 x $100 + 16 x $100 + October's tax again
    assert str(row["breach_date"]) == "2026-11-15"  # $1,400 + $2,000 on the first forecast day
    sc = S.resolve(con, {}, {})
    s = sm.add_budget_actions(sm.summarize(con, sc, ["effective_cost"]), st, budgets, "4. Budgets")
    (action,) = [a.text() for a in s.actions]
    assert action == ("Budget All (2026-11): forecast $5,000 (of which $2,000 is October's tax expected again, not "
                      "posted yet) vs $3,200, crosses it 2026-11-15")
    line = bu.not_posted_sentence(st, "USD")
    assert line.startswith("All: its forecast $5,000.00 counts October's tax $2,000.00, booked once a month and not "
                           "posted yet (expected again); without it $3,000.00, under the $3,200.00 budget.")
    assert line.endswith("Its breach date 2026-11-15 is the first forecast day, where such charges are placed, not a "
                         "day of spend.")


def test_a_breach_in_the_data_reads_crossed_it_on():
    # review prose #15: research, over its budget on 2026-11-25 with data through the 26th, read "crosses it
    # 2026-11-25" (a forecast's words for a day already in the data). Before: "crosses it"; after: "crossed it on"
    from finops_kit import scope as S
    from finops_kit import summary as sm

    con = focus_rows(_days("2026-09-01", 75, "100", ServiceName="EC2"))
    budgets = _budgets([{"name": "All", "monthly": 1000}])
    st = bu.budget_status(con, budgets, as_of="2026-11-14")
    assert str(st.iloc[0]["breach_date"]) == "2026-11-11"  # $100 a day: over $1,000 on the 11th
    s = sm.add_budget_actions(sm.summarize(con, S.resolve(con, {}, {}), ["effective_cost"]), st, budgets, "4")
    (action,) = [a.text() for a in s.actions]
    assert action.endswith("vs $1,000, crossed it on 2026-11-11")


def test_the_forecast_headline_is_compared_with_its_range_budget_and_last_closed_month():
    # review prose #11: "Forecast Nov 2026: $493,316" was the one headline figure compared with nothing (the demo:
    # budget $500,000, 80% range $490,247 - $496,257, October $488,947). Before: no comparison in the text block;
    # after: range, the total budget and % of it, the last closed month's actual and the change
    from finops_kit import forecast as fc
    from finops_kit import scope as S
    from finops_kit import summary as sm

    con = focus_rows(_days("2026-09-01", 75, "100", ServiceName="EC2"))
    sc = S.resolve(con, {}, {})
    s = sm.summarize(con, sc, ["effective_cost"])
    total = fc.forecast(con, "total", as_of="2026-11-14", horizon="month", scope=sc)[0]
    budgets = _budgets([{"name": "All", "monthly": 2500}, {"name": "t", "scope": {"team": "x"}, "monthly": 9}])
    sm.add_forecast_figure(s, total, budgets)
    line = [x for x in s.to_text().splitlines() if x.startswith("- Forecast Nov 2026")][0]
    lo, hi = (sm._money(v, "USD") for v in (total.total_lo, total.total_hi))
    assert line == (f"- Forecast Nov 2026: $3,000 (80% range {lo} \u2013 {hi}; budget $2,500, +20.0%; Oct 2026 actual "
                    "$3,100, -3.2%)")
    assert "$1,400 to 14 Nov" in s.to_html()  # the actual to date stays under the card
    sm.add_forecast_figure(s2 := sm.summarize(con, sc, ["effective_cost"]), total)  # no budget: range and month
    assert "(80% range" in s2.to_text() and "budget" not in s2.to_text() and "Oct 2026 actual $3,100" in s2.to_text()


def test_the_backtest_words_follow_its_own_windows():
    # review prose #15: the report said "a week apart, 28-day windows share 21 days" above a table of 7-day
    # horizons 7 days apart, which share no day. Before: no such function (fixed words in the notebook)
    from types import SimpleNamespace

    from finops_kit import forecast as fc

    def bt(h, step, n=2):
        return SimpleNamespace(model="ets", backtest=pd.DataFrame([{"model": "ets", "origins": n, "horizon_days": h,
                                                                    "step_days": step}]))

    assert fc.backtest_evidence(bt(7, 7)) == ("2 backtests of 7-day windows, origins 7 days apart (the windows share "
                                              "no day): 14 days of evidence, little on their own.")
    assert fc.backtest_evidence(bt(28, 7)).startswith("2 backtests of 28-day windows, origins 7 days apart (they "
                                                      "share 21 of their 28 days")
    assert "35 days of evidence" in fc.backtest_evidence(bt(28, 7))
    assert fc.backtest_evidence(SimpleNamespace(model="ets", backtest=None)) == ""
