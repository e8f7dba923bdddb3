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
