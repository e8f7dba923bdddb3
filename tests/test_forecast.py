"""Forecasts, backtest metrics and roadmap components on synthetic series whose truth is known."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: statsmodels fits are 3-10x slower with 2 threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from datetime import date  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from finops_kit import backtest as bt  # noqa: E402
from finops_kit.errors import ConfigError  # noqa: E402
from finops_kit.forecast import daily_series, fit_forecast, forecast, period_end, period_start  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

WEEK = np.array([120.0, 130.0, 125.0, 128.0, 110.0, -150.0, -163.0])  # weekday pattern, weekends low; sums to 100


def synthetic(n: int = 210, seed: int = 3, noise: float = 15.0) -> np.ndarray:
    """1000 + 3/day trend + weekly pattern + N(0, noise): the kind of series a GPU-heavy team produces."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 1000 + 3.0 * t + WEEK[t % 7] - WEEK.mean() + rng.normal(0, noise, n)


def test_metrics_against_hand_computed_values():
    y, yhat = [100, 200, 0, 50], [110, 180, 10, 50]
    assert bt.mape(y, yhat) == pytest.approx(100 * (0.1 + 0.1 + 0.0) / 3)  # the y = 0 day is skipped
    assert bt.smape(y, yhat) == pytest.approx(100 * (20 / 210 + 40 / 380 + 2.0 + 0.0) / 4)
    train = [10, 20, 30, 40, 50, 60, 70, 14, 25]  # seasonal diffs |14-10|, |25-20| -> scale 4.5
    assert bt.mase_scale(train) == pytest.approx(4.5)
    assert bt.mase([3, 5], [4, 3], train) == pytest.approx(1.5 / 4.5)
    assert bt.bias([3, 5], [4, 3]) == pytest.approx(-0.5)
    assert bt.coverage([1, 5, 10], [0, 6, 9], [2, 8, 11]) == pytest.approx(2 / 3)
    # alpha = 0.2: in, below by 1 (width 2 + 10*1), in
    assert bt.winkler([1, 5, 10], [0, 6, 9], [2, 8, 11], 80) == pytest.approx((2 + 12 + 2) / 3)
    assert bt.winkler([12], [9], [11], 95) == pytest.approx(2 + (2 / 0.05) * 1)


def test_maturity_bands():
    assert [bt.maturity_band(v) for v in (3, -7, 15, 25, None)] == ["run", "walk", "crawl", "below crawl", "n/a"]


def test_ets_forecast_error_and_interval_coverage_on_known_series():
    y = synthetic(238)
    train, test = y[:210], y[210:]
    truth = 1000 + 3.0 * np.arange(210, 238) + WEEK[np.arange(210, 238) % 7] - WEEK.mean()
    fc = fit_forecast(train, 28, "ets", 80)
    assert fc.model == "ets"
    # point forecast within 3% of the noise-free truth on every day, 1.5% on average
    rel = np.abs(fc.mean - truth) / truth
    assert rel.max() < 0.03 and rel.mean() < 0.015
    cov80 = bt.coverage(test, fc.lo(80), fc.hi(80))
    cov95 = bt.coverage(test, fc.lo(95), fc.hi(95))
    assert 0.6 <= cov80 <= 1.0, cov80  # 28 days: binomial(28, 0.8) is inside [0.6, 1] with > 99% probability
    assert cov95 >= 0.82, cov95
    assert np.all(fc.hi(95) - fc.lo(95) > fc.hi(80) - fc.lo(80))


def test_backtest_beats_seasonal_naive_and_picks_a_model():
    res = bt.backtest(synthetic(180), horizon=14, origins=3, level=80)
    assert set(res["model"]) == {"ets", "sarimax", "seasonal_naive"}
    by = res.set_index("model")
    assert by.loc["ets", "mase"] < by.loc["seasonal_naive", "mase"]
    assert by.loc["ets", "total_error_pct"] < by.loc["seasonal_naive", "total_error_pct"]
    assert bt.choose_model(res) in ("ets", "sarimax")
    text = bt.trust_statement(res, bt.choose_model(res), 80)
    assert text.startswith("Trust: ") and "same weekday last week" in text


def test_a_failed_fit_is_named_in_the_backtest_not_scored_under_the_models_name():
    # a fixed daily charge (an amortized reservation: the same $312.50 every day) leaves ETS/SARIMAX nothing to
    # fit: fit_forecast falls back to the seasonal-naive baseline, and the backtest must say so
    y = np.full(90, 312.5)
    res = bt.backtest(y, horizon=14, origins=3, level=80)
    assert list(res["model"]) == ["ets (failed → seasonal naive)", "sarimax (failed → seasonal naive)",
                                  "seasonal_naive"]
    assert list(res["failed_fits"]) == [3, 3, 0]
    assert "fit failed" in res["label"].iloc[0]
    assert bt.choose_model(res) == "seasonal_naive"
    # a failed row never wins, even when its (baseline) numbers look best
    frame = pd.DataFrame({"model": ["ets (failed at 1 of 3 origins → seasonal naive)", "seasonal_naive"],
                          "mase": [0.5, 1.0], "winkler": [5.0, 6.0]})
    assert bt.choose_model(frame) == "seasonal_naive"
    ok = bt.backtest(synthetic(120), horizon=14, origins=2, level=80, models=("ets", "seasonal_naive"))
    assert list(ok["model"]) == ["ets", "seasonal_naive"] and list(ok["failed_fits"]) == [0, 0]


def test_choose_model_falls_back_to_baseline():
    frame = pd.DataFrame({"model": ["ets", "seasonal_naive"], "mase": [1.3, 1.0], "winkler": [5.0, 6.0]})
    assert bt.choose_model(frame) == "seasonal_naive"


def _rows(values: np.ndarray, start: str, **extra) -> list[dict]:
    days = pd.date_range(start, periods=len(values), freq="D")
    return [dict(day=str(d.date()), cost=round(float(v), 2), **extra) for d, v in zip(days, values, strict=True)]


def test_forecast_from_warehouse_month_end_with_interval():
    y = synthetic(150)
    con = focus_rows(_rows(y, "2026-06-19", tags={"Team": "ml-research"}))  # through 2026-11-15
    res = forecast(con, "team", horizon="month", level=80, backtest_origins=2)
    assert [r.value for r in res] == ["ml-research"]
    r = res[0]
    assert r.ok and r.as_of == date(2026, 11, 15) and r.period_end == date(2026, 11, 30)
    actual_mtd = round(sum(round(float(v), 2) for v in y[-15:]), 2)
    assert float(r.actual_to_date) == pytest.approx(actual_mtd)
    t = np.arange(150, 165)
    truth_rest = (1000 + 3.0 * t + WEEK[t % 7] - WEEK.mean()).sum()
    assert r.expected_total == pytest.approx(actual_mtd + truth_rest, rel=0.01)
    assert r.total_lo < r.expected_total < r.total_hi
    assert len(r.daily) == 15 and {"lo_80", "hi_80", "lo_95", "hi_95"} <= set(r.daily.columns)



def test_a_given_model_can_skip_the_backtest_and_the_forecast_says_so():
    con = focus_rows(_rows(synthetic(150), "2026-06-19"))  # through 2026-11-15
    kept, skipped = (forecast(con, horizon="month", model="ets", backtest_origins=n)[0] for n in (2, 0))
    assert skipped.backtest is None and kept.backtest is not None
    assert skipped.trust.startswith("Not backtested") and "Trust:" in kept.trust
    # the forecast does not depend on its backtest once the model is given
    assert (skipped.expected_total, skipped.total_lo, skipped.total_hi) == (kept.expected_total, kept.total_lo,
                                                                          kept.total_hi)
    with pytest.raises(ConfigError, match="backtest_origins"):
        forecast(con, horizon="month", model="auto", backtest_origins=0)

def test_too_little_history_says_so():
    con = focus_rows(_rows(np.full(20, 50.0), "2026-11-01"))
    (r,) = forecast(con, "total")
    assert not r.ok and "5 weeks" in r.message and r.expected_total is None
    assert float(r.actual_to_date) == pytest.approx(1000.0)


def test_roadmap_items_are_added_as_labelled_components():
    y = synthetic(120)
    rows = _rows(y, "2026-07-18", tags={"team": "alpha"}) + _rows(y / 2, "2026-07-18", tags={"team": "beta"})
    con = focus_rows(rows)  # through 2026-11-14
    item = {"name": "Launch", "kind": "launch", "start": date(2026, 11, 26), "end": None, "daily": 100.0,
            "basis": "$100/day", "scope": {"team": "alpha"}}
    base = {r.value: r for r in forecast(con, "team", backtest_origins=1, model="ets")}
    adj = {r.value: r for r in forecast(con, "team", backtest_origins=1, model="ets", roadmap=[item])}
    assert adj["alpha"].expected_total - base["alpha"].expected_total == pytest.approx(500.0)  # Nov 26..30
    assert adj["beta"].expected_total == pytest.approx(base["beta"].expected_total)
    comp = adj["alpha"].components.set_index("label")
    assert comp.loc["Roadmap: Launch", "amount"] == pytest.approx(500.0)
    (tot,) = forecast(con, "total", backtest_origins=1, model="ets", roadmap=[item])
    assert "Roadmap: Launch" in set(tot.components["label"])


def test_recurring_charges_are_carried_forward_not_modelled():
    rows = _rows(np.full(80, 100.0), "2026-09-01")
    rows += [dict(day="2026-10-01", cost=700, ChargeFrequency="Recurring", ChargeDescription="Support plan"),
             dict(day="2026-10-15", cost=300, ChargeFrequency="Recurring", ChargeDescription="Licence")]
    con = focus_rows(rows)  # usage through 2026-11-19; November's fees (the 1st, the 15th) are not billed yet
    usage = daily_series(con, "total", start="2026-10-01", end="2026-10-01")
    assert float(usage["y"].iloc[0]) == 100.0  # the recurring fee is not in the modelled series
    (r,) = forecast(con, "total", horizon="month", backtest_origins=1)
    # their days have passed, but a monthly fee not billed yet is still expected: on the first forecast day
    assert r.components.set_index("kind").loc["recurring", "amount"] == pytest.approx(1000.0)
    assert r.daily.set_index("day").loc[pd.Timestamp("2026-11-20"), "recurring"] == pytest.approx(1000.0)
    (q,) = forecast(con, "total", horizon="quarter", backtest_origins=1)
    assert q.components.set_index("kind").loc["recurring", "amount"] == pytest.approx(2000.0)  # + Dec 1, Dec 15
    assert q.expected_total == pytest.approx(float(q.actual_to_date) + 42 * 100 + 2000, rel=1e-6)


def _teams_with_recurring_and_one_time() -> list[dict]:
    """Three teams' usage (Sep 1 .. Nov 19), each with monthly recurring fees on its own days (alpha's of the 15th
    and beta's of the 3rd not billed yet in November) and a one-time purchase this month; one team has no fee."""
    rows = []
    for i, team in enumerate(("alpha", "beta", "gamma")):
        rows += _rows(synthetic(80, seed=10 + i) / (i + 1), "2026-09-01", tags={"team": team})
        for day, fee, what in ((("2026-10-01", 700, "Support"), ("2026-10-15", 300, "Licence"),
                                ("2026-10-31", 50, "Port"), ("2026-11-01", 700, "Support"))
                               if team == "alpha" else (("2026-10-03", 120, "Support"),) if team == "beta" else ()):
            rows.append(dict(day=day, cost=fee, ChargeFrequency="Recurring", ChargeDescription=what,
                             tags={"team": team}))
        rows.append(dict(day="2026-11-05", cost=1000 * (i + 1), ChargeFrequency="One-Time", tags={"team": team}))
    return rows


def test_recurring_and_period_to_date_per_value_are_those_of_the_value_alone():
    con = focus_rows(_teams_with_recurring_and_one_time())
    by_team = {r.value: r for r in forecast(con, "team", horizon="quarter", model="seasonal_naive",
                                            backtest_origins=1)}
    assert set(by_team) == {"alpha", "beta", "gamma"}
    for team, r in by_team.items():
        (alone,) = forecast(con, "total", horizon="quarter", model="seasonal_naive", filters={"team": team},
                            backtest_origins=1)
        assert r.actual_to_date == alone.actual_to_date and r.one_time_to_date == alone.one_time_to_date
        assert r.daily["recurring"].tolist() == alone.daily["recurring"].tolist()
        assert r.expected_total == alone.expected_total
    rec = by_team["alpha"].daily.set_index("day")["recurring"]
    # data through Nov 19: the support fee posted on Nov 1; the licence (the 15th) is not billed yet: expected on the
    # first forecast day; the port fee of the 31st on November's last day; in December all three on their days
    assert rec[rec != 0].to_dict() == {pd.Timestamp("2026-11-20"): 300.0, pd.Timestamp("2026-11-30"): 50.0,
                                       pd.Timestamp("2026-12-01"): 700.0, pd.Timestamp("2026-12-15"): 300.0,
                                       pd.Timestamp("2026-12-31"): 50.0}
    assert by_team["alpha"].one_time_to_date == 1000 and by_team["gamma"].daily["recurring"].eq(0).all()


def test_a_forecast_per_value_asks_the_warehouse_as_often_for_many_values_as_for_one(monkeypatch):
    # the carried-forward recurring charges and the period's actual and one-time charges of every value come
    # from one query each, not two or three per value (a team forecast ran 3 + 2 x teams queries)
    from finops_kit import forecast as fc_mod

    con = focus_rows(_teams_with_recurring_and_one_time())
    queries: list[str] = []
    real = fc_mod._exact_frame
    monkeypatch.setattr(fc_mod, "_exact_frame", lambda c, sql: queries.append(sql) or real(c, sql))
    counts = []
    for values in (["alpha"], ["alpha", "beta", "gamma"]):
        queries.clear()
        assert len(forecast(con, "team", horizon="month", model="seasonal_naive", values=values)) == len(values)
        counts.append(len(queries))
    # the values' aggregates (3) and the day the data is delivered through (forecast.data_through, 1)
    assert counts[0] == counts[1] <= 4

def test_periods_and_bad_parameters():
    assert period_end(date(2026, 11, 27), "quarter") == date(2026, 12, 31)
    assert period_start(date(2026, 11, 27), "quarter") == date(2026, 10, 1)
    assert period_end(date(2026, 2, 3), "month") == date(2026, 2, 28)
    assert period_end(date(2026, 2, 3), 10) == date(2026, 2, 13)
    with pytest.raises(ConfigError):
        period_end(date(2026, 2, 3), "fortnight")
    with pytest.raises(ConfigError):
        fit_forecast(np.ones(50), 5, "prophet")
    with pytest.raises(ConfigError):
        fit_forecast(np.arange(50.0), 5, "ets", level=120)


def test_no_curated_notebook_chooses_forecast_models_its_own_way():
    # One answer per question: how a forecast's model is chosen (forecast.BACKTEST_ORIGINS, model="auto") is the
    # package's rule. A notebook passing its own origins or a fixed model to the tables that show forecasts made
    # the same team's November two figures in one report (review, session 8); only an explorer whose model the
    # reader picks (model=<widget>.value) may pass one.
    import json
    import re
    from pathlib import Path

    def calls(src: str) -> list[str]:  # the argument text of every forecast(...) / budget_status(...) call
        out = []
        for m in re.finditer(r"\b(?:forecast|budget_status)\(", src):
            depth, i = 1, m.end()
            while depth and i < len(src):
                depth += {"(": 1, ")": -1}.get(src[i], 0)
                i += 1
            out.append(src[m.end():i - 1])
        return out

    books = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    seen = 0
    for book in books:
        for cell in json.loads(book.read_text(encoding="utf-8"))["cells"]:
            for args in calls("".join(cell["source"])):
                seen += 1
                assert "backtest_origins" not in args, f"{book.name}: passes backtest_origins ({args})"
                for fixed in re.findall(r"\bmodel\s*=\s*([^,)\s]+)", args):
                    assert fixed.endswith(".value"), f"{book.name}: passes model={fixed}"
    assert seen >= 4  # the forecast report's total, per-team, budget and explorer forecasts
