"""The summary block (finops_kit.summary): figures of the latest closed period vs the one before, equal to metrics;
actions ranked by dollars with an owner and a working section link; every value escaped."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import scope as S
from finops_kit import summary as sm
from finops_kit.metrics import metrics
from finops_kit.testing import focus_rows

CONFIG = {
    "tag_policy": {"keys": {"team": {"required": True, "aliases": ["Team"]}}},
    "allocation": {"key": "team", "method": "none", "shared": {"tag_values": ["platform"]}},
}
XSS = "<script>alert(1)</script>"

ROWS = [
    # August and September are closed (later periods exist); October is the latest closed; November is open
    dict(day="2026-08-03", cost=80, tags={"team": "vision"}),
    dict(day="2026-09-03", cost=100, tags={"team": "vision"}),
    dict(day="2026-09-04", cost=20),                                      # untagged
    dict(day="2026-10-03", cost=150, tags={"Team": "vision"}),           # an alias: still vision
    dict(day="2026-10-04", cost=30),                                      # untagged
    dict(day="2026-10-05", cost=50, tags={"team": "nlp"}, x_AiWorkload="Managed AI service"),
    dict(day="2026-11-02", cost=7, tags={"team": "nlp"}),                 # open: never compared
]


@pytest.fixture()
def bill():
    con = focus_rows(ROWS)
    yield con
    con.close()


def test_figures_are_the_latest_closed_period_vs_the_one_before_and_equal_metrics(bill):
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost", "ai_cost", "unallocated_cost", "tag_coverage"], title="T")
    assert (s.current.isoformat(), s.previous.isoformat()) == ("2026-10-01", "2026-09-01")
    f = {x.key: x for x in s.figures}
    assert f["effective_cost"].value == Decimal("230") and f["effective_cost"].previous == Decimal("120")
    assert f["effective_cost"].change == Decimal("110")
    assert f["effective_cost"].change_pct == pytest.approx(100 * 110 / 120)
    assert f["ai_cost"].value == Decimal("50") and f["ai_cost"].previous == Decimal("0")
    assert f["ai_cost"].change_pct is None  # no % change from zero
    assert f["unallocated_cost"].value == Decimal("30") and f["unallocated_cost"].previous == Decimal("20")
    assert f["tag_coverage"].value == pytest.approx(200 / 230) and f["tag_coverage"].previous == pytest.approx(100 / 120)
    # one answer per question: the figures are finops-kit metrics of that billing period
    oct_ = metrics(bill, S.resolve(bill, CONFIG, billing_period_start="2026-10", billing_period_end="2026-10"))
    assert sm.figures_of(s)["effective_cost"] == oct_.total("effective_cost")
    assert sm.figures_of(s)["unallocated_cost"] == oct_.total("unallocated_cost")
    text = s.to_text()
    assert "Spend: $230 (+$110 (+91.7%) vs Sep 2026)" in text
    assert "Oct 2026 (latest closed billing period in scope), change vs Sep 2026" in text
    html_ = s.to_html()
    assert "1–2 Nov 2026, open" in html_ and "Unallocated (untagged, after shared costs are pooled)" in html_
    assert "+3.6 pts vs Sep 2026" in html_  # team coverage 87.0% (200 of 230) vs 83.3% (100 of 120)


def test_one_period_scope_compares_with_the_period_before_its_start(bill):
    sc = S.resolve(bill, CONFIG, billing_period_start="2026-10", billing_period_end="2026-10")
    s = sm.summarize(bill, sc, ["effective_cost"])
    assert s.previous.isoformat() == "2026-09-01" and s.figures[0].previous == Decimal("120")


def test_open_period_only_shows_the_scope_without_a_change(bill):
    sc = S.resolve(bill, CONFIG, billing_period_start="2026-11", billing_period_end="2026-11")
    s = sm.summarize(bill, sc, ["effective_cost"])
    assert s.current is None and s.figures[0].value == Decimal("7") and s.figures[0].change is None
    assert "no closed billing period" in s.to_text() and "vs" not in s.to_text().split("\n")[2]


def test_actions_ranked_by_dollars_capped_with_owner_and_section_anchor(bill):
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"], max_actions=3)
    df = pd.DataFrame({"resource_id": ["/subscriptions/x/virtualMachines/vm-a", "i-b", "i-c", "i-d"],
                       "team": ["vision", None, "nlp", "nlp"],
                       "saving": [10.0, 500.0, 42.5, float("nan")]})
    s.add_actions(df, what="Schedule {resource_id}", dollars="saving", owner="team", section="5. Dev vs prod",
                  basis="per month")
    s.add_action("Fix the team tag", Decimal("100"), owner="", section="3. Tag policy audit", basis="in scope")
    s.add_actions(df, what="Move {resource_id} to spot", dollars="saving", owner="team", section="6. Spot",
                  basis="per month", top=1)
    ranked = s.ranked_actions()
    # savings first, largest first; "Move i-b to spot" is the same resource as "Schedule i-b": one line, $500 once
    assert [a.dollars for a in ranked] == [500.0, 42.5, 10.0, Decimal("100")]
    assert [a.owner for a in ranked] == ["(untagged)", "nlp", "vision", "(untagged)"]
    assert ranked[0].what == "Schedule i-b; or Move i-b to spot (see '6. Spot')"
    assert all(a.section and a.anchor for a in ranked)
    html_ = s.to_html()
    assert 'href="#5.-Dev-vs-prod"' in html_ and 'href="#3.-Tag-policy-audit"' in html_
    assert "<b>$500</b> per month" in html_ and "more in the sections below" not in html_
    assert "1. $500 per month: Schedule i-b; or Move i-b to spot (see '6. Spot'); team (untagged); see '5. Dev vs " \
           "prod'" in s.to_text()
    s.add_action("Schedule i-e", 1, owner="x", section="5. Dev vs prod", basis="per month")
    assert len(s.ranked_actions()) == 4 and "1 more in the sections below" in s.to_html()  # 3 savings at most
    assert sm.resource_label("/subscriptions/x/virtualMachines/vm-a") == "vm-a"
    assert sm.resource_label("i-b", "named") == "named"


def test_anchor_is_the_id_nbconvert_gives_the_heading():
    from nbconvert.filters.strings import add_anchor

    for heading in ("3. Tag policy audit", "6. Cost spikes: which team, project and resource type — and what to check",
                    "2. Lifecycle recommendations"):
        produced = add_anchor(f"<h2>{heading}</h2>")
        assert re.search(r'id="([^"]+)"', produced).group(1) == sm.anchor("## " + heading)


def test_every_value_is_escaped(bill):
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"], title=XSS)
    s.add_action(XSS, 5, owner='"><img src=x onerror=alert(1)>', section=XSS)
    s.add_figure(XSS, Decimal("1"), note=XSS)
    html_ = s.to_html()
    assert "<script>" not in html_ and "<img" not in html_
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_
    assert 'href="#%3Cscript%3Ealert(1)%3C/script%3E"' in html_


def test_unknown_figure_is_refused(bill):
    sc = S.resolve(bill, CONFIG, {})
    with pytest.raises(KeyError, match="unknown figure"):
        sm.summarize(bill, sc, ["nope"])


def test_budget_and_anomaly_actions_name_the_team_and_skip_old_spikes(bill):
    import datetime as dt
    from dataclasses import dataclass

    @dataclass
    class B:
        name: str
        scope: dict

    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"])
    status = pd.DataFrame([
        {"budget": "nlp", "month": "2026-11", "forecast": 120.0, "budget_amount": 100.0, "variance": 20.0,
         "breach_date": dt.date(2026, 11, 20)},
        {"budget": "all", "month": "2026-11", "forecast": 90.0, "budget_amount": 100.0, "variance": -10.0,
         "breach_date": None}])
    sm.add_budget_actions(s, status, [B("nlp", {"team": "nlp"}), B("all", {})], "4. Budgets")
    events = pd.DataFrame([
        {"dimension": "team", "value": "vision", "start": dt.date(2026, 11, 1), "end": dt.date(2026, 11, 2),
         "impact": 50.0},
        {"dimension": "team", "value": "nlp", "start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 1),
         "impact": 500.0},                                   # a spring spike: history, not an action
        {"dimension": "service", "value": "EC2", "start": dt.date(2026, 11, 1), "end": dt.date(2026, 11, 1),
         "impact": 900.0}])                                  # no team: not an owned action
    sm.add_anomaly_actions(s, events, "6. Spikes", since=dt.date(2026, 10, 15))
    got = [(a.owner, float(a.dollars), a.basis) for a in s.ranked_actions()]
    assert got == [("vision", 50.0, "above expected"), ("nlp", 20.0, "over budget")]
    assert "crosses it 2026-11-20" in s.ranked_actions()[1].what
    # a budget already over with no forecast (a new team, under 5 weeks of history: its variance is empty) is an
    # action too, for what was spent over it (it was dropped once the variance stopped comparing month-to-date)
    young = pd.DataFrame([{"budget": "new", "month": "2026-11", "forecast": None, "budget_amount": Decimal("100"),
                           "actual_mtd": Decimal("130.00"), "variance": None, "breach_date": dt.date(2026, 11, 9),
                           "status": "over budget"}])
    sm.add_budget_actions(s, young, [B("new", {"team": "new"})], "4. Budgets")
    (a,) = [a for a in s.ranked_actions() if a.owner == "new"]
    assert float(a.dollars) == 30.0 and "spent" in a.what and "no forecast yet" in a.what
    s.add_figure("Forecast Nov 2026", 123.0, note="80% range")
    assert "no comparison" not in s.to_html().split("Forecast Nov 2026")[1]


def test_a_scope_of_charge_days_is_summarized_on_those_days():
    # a report run with date_start/date_end showed the whole month in its summary ("Figures: Oct 2025, spend
    # $310") above a body that said $110 for the days asked: the answer first must answer the scope asked
    import datetime as dt

    con = focus_rows([{"day": str(d.date()), "cost": Decimal(10)} for d in pd.date_range("2025-09-01", "2025-11-03")])
    sc = S.resolve(con, {}, {"date_start": "2025-10-10", "date_end": "2025-10-20"})
    s = sm.summarize(con, sc, ["effective_cost"])
    assert sm.figures_of(s)["effective_cost"] == Decimal(110) == metrics(con, sc).total("effective_cost")
    assert s.figures[0].previous == Decimal(110)  # the same days of the month before: 10 .. 20 Sep
    assert s.period_text() == "10\u201320 Oct 2025 (the charge days in scope), change vs 10\u201320 Sep 2025"
    assert sm.period_scope(sc, s.current).start == dt.date(2025, 10, 10)
    # a window reaching before the data has no previous window to compare with
    early = S.resolve(con, {}, {"date_start": "2025-09-01", "date_end": "2025-09-05"})
    assert sm.summarize(con, early, ["effective_cost"]).previous is None


def test_a_charge_day_scope_summary_equals_its_body_when_a_provider_lags():
    # Azure two days behind AWS: the summary of "from Nov 10" is the scope's own spend (the body's, metrics'),
    # not the spend up to the day both providers have delivered
    rows = ([{"day": str(d.date()), "cost": Decimal(10)} for d in pd.date_range("2025-10-01", "2025-11-26")]
            + [{"day": str(d.date()), "cost": Decimal(5), "ProviderName": "Microsoft"}
               for d in pd.date_range("2025-10-01", "2025-11-24")])
    con = focus_rows(rows)
    sc = S.resolve(con, {}, {"date_start": "2025-11-10"})
    s = sm.summarize(con, sc, ["effective_cost"])
    assert sm.figures_of(s)["effective_cost"] == metrics(con, sc).total("effective_cost") == Decimal(17 * 10 + 15 * 5)


def test_actions_of_different_kinds_are_ranked_apart(bill):
    """tagging_audit ranked "$268,918 in scope" (the cost under a resource whose tag needs a fix) above "$7,984 per
    month" of real saving: savings are ranked among themselves (a month's before the scope's), cost at stake after
    them, under its own heading;
    the block says savings on the same usage are alternatives; an action priced at an assumed discount takes its
    place by dollars and says so (spot's $108,607 at flat_spot_discount = 0.55)."""
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"])
    s.add_action("Fix the tags on i-a", Decimal("268918"), "vision", "3. Tag policy audit", "in scope")
    s.add_action("Schedule i-b", Decimal("7984"), "nlp", "5. Dev vs prod", "per month")
    spot = pd.DataFrame({"instance_type": ["H100", "A100", "g5"], "team": ["nlp", "recsys", "nlp"],
                         "saving": [108607.0, 138158.0, 88131.0], "flat": [True, False, False]})
    s.add_actions(spot, what="Run {instance_type} on spot", dollars="saving", owner="team", section="Back to the bill",
                  basis="over the scope", assumed="flat", note="assumed flat discount, no observed price")
    groups = s.action_groups()
    assert [k for k, _ in groups] == ["saving", "at stake"]
    # a month's saving first, then savings over the scope by dollars, the assumed one in its place, marked (one
    # rule: "$138,158, $88,131, $108,607" read as unsorted; review s17 prose, finding 15)
    assert [a.what for a in groups[0][1]] == ["Schedule i-b", "Run A100 on spot", "Run H100 on spot", "Run g5 on spot"]
    assert groups[0][1][2].assumed and groups[0][1][2].text().endswith("[assumed flat discount, no observed price]")
    assert [a.what for a in groups[1][1]] == ["Fix the tags on i-a"]
    text = s.to_text()
    assert text.index("Savings if done") < text.index("Cost at stake") < text.index("$268,918")
    assert sm.ALTERNATIVES_NOTE in text and sm.ALTERNATIVES_NOTE in html.unescape(s.to_html())
    assert "not money saved" in text
    # without a saving there is no sentence about adding savings up
    t = sm.summarize(bill, sc, ["effective_cost"])
    t.add_action("Fix the tags on i-a", Decimal("5"), "vision", "3. Tag policy audit", "in scope")
    assert sm.ALTERNATIVES_NOTE not in t.to_text()
    with pytest.raises(ValueError, match="kind"):
        sm.Action("x", 1, "o", "s", kind="nonsense")


def test_every_basis_an_action_is_given_has_a_kind():
    """A basis missing from BASIS_KINDS falls into "Other actions", after every saving: twice in one session a
    report's new words ("per month saved if it lapses", "transfer cost in scope") met a summary that did not know
    them. Every basis written in a curated notebook or in the package's actions must be listed."""
    import json
    import re
    from pathlib import Path

    from finops_kit.summary import BASIS_KINDS

    root = Path(__file__).resolve().parents[1]
    written: set[str] = set()
    for path in (root / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            written |= set(re.findall(r'basis="([^"]+)"', "".join(cell["source"])))
    for path in (root / "finops_kit").glob("*.py"):
        text = path.read_text()
        written |= set(re.findall(r'add_actions?\([^)]*?basis="([^"]+)"', text, flags=re.S))
        written |= set(re.findall(r'dollars, basis = [^\n]*"([^"]+)"\n', text))  # commitments.expiry_decisions
    assert {"per month", "in scope", "transfer cost in scope", "per month saved if it lapses",
            "per month more if it lapses", "over the scope"} <= written  # the scan finds what it should
    assert sorted(b for b in written if b not in BASIS_KINDS) == []
