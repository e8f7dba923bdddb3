"""The trust grade and statement rest on evidence they name: held-out period totals, overlapping backtest windows,
too few days to judge calibration, a constant history (review of session 14, items 6, 7 and 11)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from finops_kit import backtest as bt  # noqa: E402
from finops_kit.forecast import ModelForecast, fit_forecast, held_out_window_errors  # noqa: E402


def test_held_out_window_errors_are_the_totals_of_non_overlapping_windows():
    y = np.arange(1.0, 21.0)  # day i costs i + 1
    # origin first + i forecasts days first + i + 1 .. first + i + h; rows: errors of 2-day windows
    errors = np.array([[1.0, 1.0], [9.0, 9.0], [-2.0, 0.0], [9.0, 9.0], [0.5, 0.5], [1.0, np.nan]])
    got = held_out_window_errors(y, errors, first=3)
    # windows at rows 0, 2, 4 (origins 3, 5, 7): actual totals y[4:6] = 5+6, y[6:8] = 7+8, y[8:10] = 9+10
    assert got == pytest.approx([100 * 2 / 11, 100 * 2 / 15, 100 * 1 / 19])
    # a window that runs past the history (NaN) ends the list; a window whose actual total is 0 is skipped
    assert held_out_window_errors(np.zeros(20), errors, first=3) == []


def _row(**kw):
    row = {"total_error_pct": 2.0, "coverage": 0.8, "level": 80.0, "origins": 2, "horizon_days": 7,
           "step_days": 7, "flat_history": False}
    row.update(kw)
    return row


def _mf(windows: int, err: float) -> ModelForecast:
    return ModelForecast("ets", np.ones(7), {80.0: (np.zeros(7), np.full(7, 2.0))}, np.ones((7, 2)),
                         held_out_days=100, held_out_windows=windows, held_out_total_error_pct=err)


def test_high_needs_held_out_totals_as_well_as_the_backtest():
    assert bt.trust_level(_row(), _mf(7, 3.0)) == "high"
    # the backtest alone (two windows) no longer earns "high": before, these were all high
    assert bt.trust_level(_row()) == "medium"
    assert bt.trust_level(_row(), _mf(2, 1.0)) == "medium"  # fewer than 3 held-out totals
    assert bt.trust_level(_row(), _mf(7, 6.0)) == "medium"  # held-out totals outside the run band
    assert bt.trust_level(_row(), _mf(7, 4.97)) == "medium"  # printed "5.0%": not in the run band ("< 5%")
    assert bt.trust_level(_row(), _mf(7, 12.0)) == "low"  # held-out totals missed by over 10%
    # the backtest found the interval off -- on enough days to judge it (14 days are not: no veto, as the statement
    # says "too few days to judge its calibration"; the demo's Total read "medium" with no reason given)
    assert bt.trust_level(_row(coverage=0.4, horizon_days=28, step_days=7), _mf(7, 3.0)) == "medium"
    assert bt.trust_level(_row(coverage=1.0), _mf(7, 3.0)) == "high"
    assert bt.trust_level(_row(flat_history=True), _mf(7, 0.0)) == "medium"


def _trending(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 1000 + 2.0 * t + np.array([0, 0, 0, 0, 0, -300, -300])[t % 7] + rng.normal(0, 20, n)


def test_statement_names_overlapping_windows_and_the_held_out_totals():
    y = _trending(365)
    res = bt.backtest(y, horizon=28, origins=2)
    model = bt.choose_model(res)
    fc = fit_forecast(y, 28, model, 80)
    text = bt.trust_statement(res, model, 80, fc)
    assert "the windows share 21 of their 28 days" in text
    assert f"Over {fc.held_out_windows} held-out 28-day totals" in text and fc.held_out_windows == 7
    # 16 weeks of history: 55 held-out days hold one whole 28-day window: medium at most, and the statement says why
    y = _trending(112)
    res = bt.backtest(y, horizon=28, origins=2)
    model = bt.choose_model(res)
    fc = fit_forecast(y, 28, model, 80)
    text = bt.trust_statement(res, model, 80, fc)
    assert fc.held_out_windows == 1 and "fewer than 3 such totals, so the grade is medium at most" in text
    assert not text.startswith("Trust: high")


def test_too_few_backtest_days_to_judge_calibration_and_a_constant_history():
    y = _trending(200)
    res = bt.backtest(y, horizon=7, origins=2)  # 14 days
    text = bt.trust_statement(res, bt.choose_model(res), 80)
    assert "of the 14 actual days" in text and "too few days to judge its calibration" in text
    assert "well calibrated" not in text
    flat = np.full(120, 100.0)
    res = bt.backtest(flat, horizon=28, origins=2)
    model = bt.choose_model(res)
    text = bt.trust_statement(res, model, 80, fit_forecast(flat, 28, model, 80))
    assert text.startswith("Trust: medium. The history is constant") and "MASE nan" not in text
