"""Session 17 (regression review 'bud'): one month-close rule for the budget history, the accelerator limits'
horizon, teams whose accelerators all run outside a narrowed scope, accelerator counts across currencies, an account
named like another account's id, and the metrics schema table."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("duckdb")

from finops_kit import budgets as bu  # noqa: E402
from finops_kit import guard  # noqa: E402
from finops_kit.alerts import evaluate, notes_text  # noqa: E402
from finops_kit.scope import Scope, bind  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

from .test_guard import BILL_RULES, _config, _gpu_rows  # noqa: E402
from .test_s16_budgets import _azure_gpus, _budgets, _days, _month_close_bill  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _limits(con, cfg, scope=None) -> dict[str, tuple[str, str]]:
    sc = bind(con, Scope.parse(scope), cfg) if scope else None
    return {c.subject: (c.status, c.message) for c in guard.bill_checks(con, cfg, as_of="2026-11-14", scope=sc)
            if c.rule.startswith("max_accelerators")}


def test_the_budget_history_grades_a_closed_month_as_its_last_day_judged_it_until_the_invoice_posts():
    # $100/day Sep 1 .. Oct 31, September's tax $500 (booked Sep 1), October's not posted; Nov 1 delivered. As of Oct
    # 31 budget_status (and check) said "forecast $3,600 = 103%"; the next day the history graded October at its
    # $3,100 actual: -11.43%, "crawl". One rule: the month counts the same not_posted_yet amount until it posts
    con = focus_rows(_month_close_bill(october_tax=False) + _days("2026-11-01", 1, "100", ServiceName="EC2"))
    budgets = _budgets([{"name": "All", "monthly": 3500}])
    last_day = bu.budget_status(con, budgets, as_of="2026-10-31", forecast_results={}).iloc[0]
    assert last_day["forecast"] == pytest.approx(3600.0) and last_day["status"] == "forecast over budget"
    hist = bu.budget_history(con, budgets, as_of="2026-11-01").set_index("month")
    october = hist.loc["2026-10"]
    assert october["variance"] == Decimal("100.00")  # 3,100 + 500 - 3,500: the figure check alerted on (was -400)
    assert october["actual"] == Decimal("3100.00") and october["not_posted_yet"] == Decimal("500.00")
    assert october["variance_pct"] == pytest.approx(100 / 35) and october["band"] == "run"
    assert october["note"].startswith("invoice not posted yet")
    assert hist.loc["2026-09", "variance"] == Decimal("0.00") and pd.isna(hist.loc["2026-09", "note"])
    assert bu.history_sentence(hist.reset_index()).startswith("All, 2026-10: invoice not posted yet")
    # October's tax ($600, dated Oct 1) posted: October is graded on its actual alone
    posted = focus_rows(_month_close_bill(october_tax=True) + _days("2026-11-01", 1, "100", ServiceName="EC2"))
    october = bu.budget_history(posted, budgets, as_of="2026-11-01").set_index("month").loc["2026-10"]
    assert october["actual"] == Decimal("3700.00") and october["not_posted_yet"] == 0
    assert october["variance"] == Decimal("200.00") and pd.isna(october["note"])
    # once November has closed too, a charge still absent has stopped: October is graded on what posted
    later = focus_rows(_month_close_bill(october_tax=False) + _days("2026-11-01", 31, "100", ServiceName="EC2"))
    hist = bu.budget_history(later, budgets, as_of="2026-12-01").set_index("month")
    assert hist.loc["2026-10", "variance"] == Decimal("-400.00") and pd.isna(hist.loc["2026-10", "note"])


def test_a_limit_is_narrowed_only_by_the_accelerators_its_window_leaves_out():
    # the company left Azure in June: with -p providers=[AWS] team alpha's limit (24 A100s on AWS, limit 16) was
    # "not judged: it covers all providers" (a provider months before the 14-day window); before, a violation
    con = focus_rows(_gpu_rows() + _days("2026-06-01", 30, "50", ProviderName="Microsoft", tags={"team": "alpha"}))
    cfg = _config(**BILL_RULES)
    aws = _limits(con, cfg, {"providers": ["AWS"]})
    assert aws == _limits(con, cfg)
    assert aws["team=alpha"][0] == "violation" and "24.0 accelerators" in aws["team=alpha"][1]


def test_check_judges_a_team_budget_and_its_limit_on_the_charges_up_to_the_judged_month():
    # Azure added on Dec 1 for team alpha; check --as-of 2026-11-14 -p providers=[AWS] judged alpha's limit but
    # listed alpha's budget as "not judged: it covers all providers" (December's charges) where the forecast report
    # of billing period 2026-11 judged it
    con = focus_rows(_gpu_rows() + _days("2026-12-01", 5, "50", ProviderName="Microsoft", tags={"team": "alpha"}))
    cfg = _config(**BILL_RULES)
    cfg["budgets"] = {"items": [{"name": "alpha", "scope": {"team": "alpha"}, "monthly": 100000}]}
    cfg["alerts"] = {"forecast": False}
    notes: list[str] = []
    alerts = evaluate(con, cfg, "2026-11-14", scope=Scope.parse({"providers": ["AWS"]}), notes=notes)
    assert notes == []
    assert [a.subject for a in alerts if a.kind == "guardrail" and a.subject.startswith("team=")] == ["team=alpha"]
    report = bu.budget_status(con, bu.load_budgets(cfg)[0], as_of="2026-11-14", forecast_results={},
                              scope=bind(con, Scope.parse({"providers": ["AWS"], "billing_period_end": "2026-11"}),
                                         cfg))
    assert report.iloc[0]["status"] != bu.NOT_JUDGED and report.iloc[0]["actual_mtd"] == Decimal("22135.68")


def test_a_team_whose_accelerators_all_run_outside_the_scope_is_listed_as_not_judged():
    # team gamma runs 3 x Azure ND96asr_v4 (24 A100s, limit 16): the whole warehouse alerts; -p providers=[AWS]
    # neither alerted nor listed it (nor its owner), while it listed alpha and beta
    con = focus_rows(_gpu_rows() + _azure_gpus("gamma", "ga@example.com", 3))
    cfg = _config(**BILL_RULES)
    assert _limits(con, cfg)["team=gamma"][0] == "violation"
    aws = _limits(con, cfg, {"providers": ["AWS"]})
    why = ("it counts accelerators on Microsoft in 2026-11-01..2026-11-14, which this scope leaves out; this scope "
           "is AWS only")
    assert aws["team=gamma"] == (bu.NOT_JUDGED, why) and aws["owner=ga@example.com"] == (bu.NOT_JUDGED, why)
    assert aws["team=alpha"][0] == "violation"  # all of alpha's accelerators are AWS: judged
    notes: list[str] = []
    evaluate(con, {**cfg, "alerts": {"forecast": False, "budgets": False}}, "2026-11-14",
             scope=Scope.parse({"providers": ["AWS"]}), notes=notes)
    text = notes_text(notes)
    assert "max_accelerators_per_team team=gamma: it counts accelerators on Microsoft" in text
    assert "max_accelerators_per_user owner=ga@example.com: it counts accelerators on Microsoft" in text


def test_accelerators_add_up_across_currencies():
    # team beta also runs 2 x Azure ND96asr_v4 billed in EUR (16 A100s); per_team 16. A warehouse billing in two
    # currencies is checked one currency at a time: -p currency=USD saw 1.4 accelerators, -p currency=EUR 16.0, and
    # neither alerted on the 17.4 beta ran
    con = focus_rows(_gpu_rows() + _azure_gpus("beta", "be@example.com", 2, currency="EUR"))
    cfg = _config(**BILL_RULES)
    for cur in ("USD", "EUR"):
        got = _limits(con, cfg, {"currency": cur})
        status, message = got["team=beta"]
        assert status == "violation" and "ran 17.4 accelerators" in message
        assert "16,800 EUR and $279 of accelerated compute" in message  # costs per currency, never added


def test_an_account_value_is_its_name_before_it_is_another_accounts_id():
    # GCP: project 'ml-prod-4711' is named 'ml-prod' ($100/day); the older project whose id is 'ml-prod' is named
    # 'ML prod (legacy)' ($10/day). A budget on account 'ml-prod' counted both: $1,540, "over budget" (1,500)
    con = focus_rows(_days("2026-10-01", 45, "100", ProviderName="Google Cloud", SubAccountId="ml-prod-4711",
                           SubAccountName="ml-prod")
                     + _days("2026-10-01", 45, "10", ProviderName="Google Cloud", SubAccountId="ml-prod",
                             SubAccountName="ML prod (legacy)"))
    budgets = _budgets([{"name": "ml-prod", "scope": {"account": "ml-prod"}, "monthly": 1500},
                        {"name": "by id", "scope": {"account": "ml-prod-4711"}, "monthly": 1500}])
    st = bu.budget_status(con, budgets, as_of="2026-11-14", forecast_results={}).set_index("budget")
    assert st.loc["ml-prod", "actual_mtd"] == Decimal("1400.00") and st.loc["ml-prod", "status"] != "over budget"
    assert st.loc["by id", "actual_mtd"] == Decimal("1400.00")  # an id naming no account: still the account's id


def test_the_schema_table_says_what_version_3_changed_in_commitments():
    # version 3's row named the accelerators/spot/pricing changes only; a charge-day window's utilization went from
    # 1.0 to 0.5 with the same rows (a month-long unused row counts for its share) and licence rows left eligible
    # usage: a consumer comparing documents read both as changes of use
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| 3 |"))
    assert re.search(r"share of its charge period inside the window", row)
    assert "`utilization` 1.0" in row and "0.5" in row and "0.8782" in row and "0.8449" in row
    assert "licence rows" in row and "`eligible_hours`" in row and "3,439.44" in row and "2,644.56" in row
