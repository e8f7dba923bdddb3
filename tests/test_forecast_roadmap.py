"""Roadmap items in a forecast: an item already running at 'as of', and items whose scope names no charge."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: statsmodels fits are 3-10x slower with 2 threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from finops_kit import budgets as bu  # noqa: E402
from finops_kit.forecast import forecast, roadmap_daily, without_roadmap  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

WEEK = np.array([1.0, 1.1, 1.05, 1.08, 0.95, 0.6, 0.55])
RUN = (pd.Timestamp("2026-11-10"), pd.Timestamp("2026-11-20"))


def _inflight_bill() -> list[dict]:
    """The review's case R2: ~$1,000/day usage with a weekly pattern and a training run of +$5,000/day on
    Nov 10..20, billed through Nov 15."""
    rng = np.random.default_rng(2)
    rows = []
    for d in pd.date_range("2026-06-01", "2026-11-15", freq="D"):
        run = 5000 if RUN[0] <= d <= RUN[1] else 0
        rows.append(dict(day=str(d.date()), cost=round(float(1000 * WEEK[d.day_of_week] + rng.normal(0, 20) + run), 2),
                         tags={"team": "nlp"}))
    return rows


def test_an_item_running_at_as_of_is_counted_once():
    """Review (s14, case R2): the training run was on the roadmap and already in the history, so the baseline
    learned its $5,000/day and the roadmap added its 5 remaining days on top: $157,679 expected for a month that
    truly costs $81,870. The item's planned amount is taken out of the training history on its past days, and its
    remaining days are added as before."""
    con = focus_rows(_inflight_bill())
    item = bu._roadmap_item(dict(name="training run", kind="training_run", start="2026-11-10", end="2026-11-20",
                                 cost=55000, team="nlp"), 0, Path("roadmap.yaml"), None)
    truth = sum(1000 * WEEK[d.day_of_week] for d in pd.date_range("2026-11-01", "2026-11-30")) + 55000
    for dimension, filters in (("total", None), ("team", None), ("total", {"team": "nlp"})):
        (r,) = forecast(con, dimension, as_of="2026-11-15", roadmap=[item], filters=filters)
        assert r.expected_total == pytest.approx(truth, rel=0.03), (dimension, filters)
        assert r.total_lo < truth < r.total_hi
        comp = r.components.set_index("kind")["amount"]
        assert comp["roadmap"] == pytest.approx(25000.0)  # Nov 16..20, added once
        assert comp["baseline"] == pytest.approx(15 * 1000 * WEEK.mean(), rel=0.05)  # the usage without the run
        assert r.history["actual"].max() > 5000  # the history shown is still what was billed


def test_roadmap_daily_covers_any_days_given():
    item = {"name": "x", "daily": 10.0, "start": pd.Timestamp("2026-11-10").date(),
            "end": pd.Timestamp("2026-11-12").date(), "scope": {"team": "a"}}
    days = pd.date_range("2026-11-09", "2026-11-13")
    got = roadmap_daily([item], "team", "a", days)["x"].tolist()
    assert got == [0, 10, 10, 10, 0] and roadmap_daily([item], "team", "b", days).empty


# ------------------------------------------------------------------------------------ item scopes vs the data
def _two_provider_bill() -> list[dict]:
    gcp = {"ProviderName": "Google Cloud", "ServiceName": "Compute Engine"}
    return [dict(day=str(d.date()), cost="100", tags={"team": t}, **p) for d in pd.date_range("2026-11-01", "2026-11-10")
            for t, p in (("nlp", {}), ("vision", gcp))]


def test_a_roadmap_item_whose_scope_names_no_charge_says_so_in_the_report_and_in_check(tmp_path):
    """Review (s14): the shipped roadmap said provider 'GCP' and 'Azure' (the data says 'Google Cloud' and
    'Microsoft') and team 'platform' (folded into '(shared)' by allocation.shared): those items silently reached no
    per-provider, per-team or budget forecast. One line per item names the key, the value and the valid values;
    `check` says it as an alert, as for a budget whose scope matches nothing."""
    from finops_kit.alerts import evaluate

    con = focus_rows(_two_provider_bill())
    rm = tmp_path / "roadmap.yaml"
    rm.write_text("items:\n"
                  "  - {name: Launch, kind: launch, start: 2026-12-01, daily_cost: 10, team: vision, provider: GCP}\n"
                  "  - {name: Run, kind: training_run, start: 2026-12-01, daily_cost: 10, team: nlp, provider: AWS}\n"
                  "  - {name: Shutdown, kind: decommission, start: 2026-12-01, daily_cost: 5, team: platform}\n")
    items = bu.load_roadmap(rm)
    lines = bu.roadmap_scope_problems(con, items)
    assert lines == [
        "roadmap item 'Launch': provider 'GCP' matches no charge in scope (its provider values: AWS, Google Cloud)",
        "roadmap item 'Shutdown': team 'platform' matches no charge in scope (its team values: nlp, vision)"]
    cfg = {"budgets": {"items": [{"name": "all", "monthly": 100000}]}, "roadmap": {"file": str(rm)},
           "alerts": {"anomalies": False}}
    said = [a for a in evaluate(con, cfg, "2026-11-10") if a.kind == "roadmap"]
    assert [a.subject for a in said] == ["Launch", "Shutdown"]
    assert "provider 'GCP' matches no charge" in said[0].message and "reaches no forecast" in said[0].message


def test_a_roadmap_item_with_an_unknown_key_is_a_config_error(tmp_path):
    from finops_kit.errors import ConfigError

    rm = tmp_path / "roadmap.yaml"
    rm.write_text("items:\n  - {name: Launch, kind: launch, start: 2026-12-01, daily_cost: 10, teem: vision}\n")
    with pytest.raises(ConfigError, match=r"item 1 \(Launch\)\.teem: unknown setting \(did you mean 'team'\?"):
        bu.load_roadmap(rm)


def test_the_shipped_roadmap_names_values_of_the_sample_data(sample_con):
    from finops_kit.config import load_config
    from finops_kit.scope import bind

    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "finops.yaml")
    items = bu.load_roadmap(cfg=cfg, base_dir=repo)
    assert bu.roadmap_scope_problems(sample_con, items, bind(sample_con, None, cfg)) == []
    # the AI items reach the AI spend budget, the Spark decommission the shared platform's
    budgets = {b.name: b for b in bu.load_budgets(cfg)[0]}
    reach = {n: [i["name"] for i in items if bu._roadmap_in_scope(i, budgets[n].scope)] for n in budgets}
    assert any("pretraining" in n for n in reach["AI spend"]) and any("Spark" in n for n in reach["Shared platform"])


def test_an_item_planned_above_what_was_billed_never_makes_the_history_negative():
    """Regression review (s14): the planned amount was taken out of the history whatever the bill showed: an item
    planned at three times what was billed made the month's forecast negative (-$380,363). At most a day's cost is
    taken out: the forecast stays above what was already spent."""
    con = focus_rows(_inflight_bill())  # the run truly adds $5,000/day over Nov 10..20
    item = bu._roadmap_item(dict(name="training run", kind="training_run", start="2026-11-10", end="2026-11-20",
                                 cost=165000, team="nlp"), 0, Path("roadmap.yaml"), None)  # planned $15,000/day
    (r,) = forecast(con, "total", as_of="2026-11-15", roadmap=[item])
    comp = r.components.set_index("kind")["amount"]
    assert comp["baseline"] > 0 and r.daily["baseline"].min() >= 0
    assert comp["roadmap"] == pytest.approx(75000.0)  # the plan's remaining days, as planned
    assert r.expected_total > comp["actual"]


def test_without_roadmap_takes_out_the_plan_never_below_0_and_gives_back_a_decommission():
    days = pd.date_range("2026-10-01", periods=40)
    rng = np.random.default_rng(4)
    y = 100.0 + np.arange(40) + rng.normal(0, 5, 40)  # growth and noise
    y[30:] += 80.0  # an item planned and billed at $80/day from day 30
    plan = pd.DataFrame({"up": np.where(np.arange(40) >= 30, 80.0, 0.0)}, index=days)
    got = without_roadmap(y, plan)
    assert got[30:] == pytest.approx(y[30:] - 80.0) and got[:30] == pytest.approx(y[:30])  # growth and noise kept
    # a decommission planned at -$20/day, in a growing bill and from before the history: given back every day
    dec = pd.DataFrame({"down": np.full(40, -20.0)}, index=days)
    assert without_roadmap(y, dec) == pytest.approx(y + 20.0)
    # a plan above the day's cost: at most the day's cost is taken out, never below 0
    assert without_roadmap(np.full(5, 10.0), pd.DataFrame({"x": np.full(5, 25.0)})).tolist() == [0.0] * 5


def test_an_item_about_charges_outside_the_scope_is_not_this_scopes():
    """Regression review (s14): with providers=AWS an item 'provider: Google Cloud' was added to the AWS total and
    taken out of its history; an item naming a value no charge carries yet (a new project) still reaches it when it
    names provider AWS. Review s15 #1: one naming no provider may land on any provider -- the AWS-only forecast no
    longer adds it (the rule budgets follow: finops_kit.forecast.outside_scope); the whole warehouse does."""
    from finops_kit.scope import Scope, bind

    con = focus_rows(_two_provider_bill() * 5)
    con = focus_rows([dict(day=str(d.date()), cost="100", tags={"team": "nlp"})
                      for d in pd.date_range("2026-09-01", "2026-10-31")], con)
    gcp = bu._roadmap_item(dict(name="GCP launch", kind="launch", start="2026-11-12", daily_cost=500,
                                provider="Google Cloud"), 0, Path("roadmap.yaml"), None)
    new = bu._roadmap_item(dict(name="New project", kind="launch", start="2026-11-12", daily_cost=70,
                                project="brand-new", provider="AWS"), 1, Path("roadmap.yaml"), None)
    anywhere = bu._roadmap_item(dict(name="Anywhere", kind="launch", start="2026-11-12", daily_cost=30,
                                     project="brand-new"), 2, Path("roadmap.yaml"), None)
    aws = bind(con, Scope.parse({"providers": ["AWS"]}))
    (r,) = forecast(con, "total", as_of="2026-11-10", roadmap=[gcp, new, anywhere], scope=aws)
    labels = set(r.components["label"])
    assert "Roadmap: New project" in labels and not {"Roadmap: GCP launch", "Roadmap: Anywhere"} & labels
    (whole,) = forecast(con, "total", as_of="2026-11-10", roadmap=[gcp, new, anywhere])
    assert {"Roadmap: New project", "Roadmap: GCP launch", "Roadmap: Anywhere"} <= set(whole.components["label"])


def test_an_item_planned_above_the_bill_is_named():
    """Left open by session 14: an item planned far above what was billed on its days trains the model at $0 on
    them, silently. The forecast now says which item, its plan and the most that was billed."""
    con = focus_rows(_inflight_bill())
    item = bu._roadmap_item(dict(name="big run", kind="training_run", start="2026-11-10", end="2026-11-20",
                                 cost=11 * 20000, team="nlp"), 0, Path("roadmap.yaml"), None)
    (r,) = forecast(con, "team", as_of="2026-11-15", roadmap=[item])
    assert "Roadmap 'big run' planned $20,000 a day, more than nlp was billed on 6 of 6 days" in r.note
    assert "check the item's amount and start date" in r.summary()["note"]
    ok = bu._roadmap_item(dict(name="training run", kind="training_run", start="2026-11-10", end="2026-11-20",
                               cost=55000, team="nlp"), 0, Path("roadmap.yaml"), None)
    (r,) = forecast(con, "team", as_of="2026-11-15", roadmap=[ok])
    assert "Roadmap" not in r.note  # planned at what the bill shows: nothing to say


def test_an_as_of_before_the_data_is_no_data_for_this_scope():
    # regression review (s15 bud #7): `report forecast_vs_actual -p as_of=2025-09-30` on data starting 2025-10-01
    # failed with "cell 4: IndexError: list index out of range": forecast() returned no forecast at all and the
    # notebook took [0]. Before the data there is nothing to forecast: the package's "no data for this scope" (exit 3)
    from finops_kit.scope import NoDataError

    con = focus_rows([dict(day=str(d.date()), cost="100") for d in pd.date_range("2025-10-01", periods=45)])
    with pytest.raises(NoDataError, match=r"no data for this scope .* on or before 2025-09-30, the as-of day: its "
                                          r"charges start on 2025-10-01, so there is nothing to forecast from"):
        forecast(con, "total", as_of="2025-09-30")
    assert forecast(con, "total", as_of="2025-10-01", backtest_origins=0, model="seasonal_naive")  # its first day


def test_the_report_shows_no_backtest_table_when_no_backtest_was_possible():
    # found rendering the review's mid.duckdb (data from 2025-10-15) as of 2025-11-20: 37 days are enough for a
    # forecast but not for a backtest (an empty frame), and the report's backtest cell failed with "cell 5:
    # KeyError: ['level', 'label'] not found in axis"; the forecast's trust line already says no backtest was possible
    import json

    import finops_kit.notebook as nb

    con = focus_rows([dict(day=str(d.date()), cost="100") for d in pd.date_range("2025-10-15", periods=37)])
    total = forecast(con, "total", as_of="2025-11-20")[0]
    assert total.ok and total.backtest is not None and total.backtest.empty
    assert "No backtest was possible" in total.trust
    book = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "forecast_vs_actual.ipynb").read_text())
    (cell,) = [c for c in book["cells"] if c["cell_type"] == "code" and "total.backtest" in "".join(c["source"])]
    shown: list = []
    exec("".join(cell["source"]), {"total": total, "nb": nb, "display": shown.append,  # noqa: S102 - the cell
                                   "frac": lambda df, *cols: df})
    assert shown == []
