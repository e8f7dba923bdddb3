"""Rolling-origin backtests: how well each model would have forecast *this* bill, and how much to trust it.

A forecast's credibility is earned on the user's own history, not asserted. From several origins in the recent
past we fit each model on the data before the origin, forecast the next ``horizon`` days and score the result
against what was actually billed. The seasonal-naive baseline ("same weekday last week") is always scored: a
model that does not beat it is not worth its complexity, and MASE < 1 says exactly that it does.

Metric definitions (``methods.md``): MAPE = 100/n Σ|y−ŷ|/|y| (days with y = 0 skipped); sMAPE = 100/n Σ
2|y−ŷ|/(|y|+|ŷ|); MASE = mean|y−ŷ| / mean_{t>m}|y_t − y_{t−m}| over the training data, m = 7; bias = mean(ŷ − y)
(positive = over-forecast); coverage = share of actuals inside [lo, hi]; Winkler = (u−l) + (2/α)(l−y)[y<l] +
(2/α)(y−u)[y>u]. ``total_error_pct`` is the absolute % error of the forecast *total* over the horizon — the
"forecast variance" that the kit's variance bands (< 20/10/5%: its defaults, not a FinOps Foundation
publication) grade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .forecast import MODEL_LABELS, MODELS, SEASON, ModelForecast, fit_forecast


def mape(y, yhat) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    mask = y != 0
    return float(100 * np.mean(np.abs(y[mask] - yhat[mask]) / np.abs(y[mask]))) if mask.any() else float("nan")


def smape(y, yhat) -> float:
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    den = np.abs(y) + np.abs(yhat)
    terms = np.where(den == 0, 0.0, 2 * np.abs(y - yhat) / np.where(den == 0, 1, den))
    return float(100 * np.mean(terms))


def mase_scale(train, m: int = SEASON) -> float:
    """Mean absolute seasonal-naive error in-sample: the yardstick MASE divides by."""
    train = np.asarray(train, float)
    return float(np.mean(np.abs(train[m:] - train[:-m]))) if len(train) > m else float("nan")


def mase(y, yhat, train, m: int = SEASON) -> float:
    scale = mase_scale(train, m)
    err = float(np.mean(np.abs(np.asarray(y, float) - np.asarray(yhat, float))))
    return err / scale if scale > 0 else float("nan")


def bias(y, yhat) -> float:
    return float(np.mean(np.asarray(yhat, float) - np.asarray(y, float)))


def coverage(y, lo, hi) -> float:
    y = np.asarray(y, float)
    return float(np.mean((y >= np.asarray(lo, float)) & (y <= np.asarray(hi, float))))


def winkler(y, lo, hi, level: float) -> float:
    """Mean Winkler interval score at ``level`` % (lower is better: narrow intervals that still hold)."""
    y, lo, hi = (np.asarray(a, float) for a in (y, lo, hi))
    alpha = 1 - level / 100
    score = (hi - lo) + (2 / alpha) * (lo - y) * (y < lo) + (2 / alpha) * (y - hi) * (y > hi)
    return float(np.mean(score))


def backtest(y, *, horizon: int = 14, origins: int = 4, step: int = 7, level: float = 80,
             models: tuple[str, ...] = MODELS, min_train: int = 28) -> pd.DataFrame:
    """Rolling-origin evaluation of each model on the daily series ``y``.

    Origins are the last ``origins`` points spaced ``step`` days apart such that each has ``horizon`` days of
    actuals after it. Returns one row per model with the pooled metrics (MASE scaled per origin).

    When an ETS/SARIMAX fit fails (or a flat series leaves nothing to fit), :func:`fit_forecast` falls back to
    the seasonal-naive baseline. Those numbers are not the model's, so the row says so: ``model`` reads
    "ets (failed → seasonal naive)" (or "... failed at k of n origins ...") and ``failed_fits`` counts them;
    :func:`choose_model` never picks such a row.
    """
    y = np.asarray(y, float)
    n = len(y)
    ends = [n - horizon - k * step for k in range(origins)]
    ends = sorted(e for e in ends if e >= min_train)
    rows = []
    for model in models:
        acts, preds, los, his, scaled, tot_err, tot_in = [], [], [], [], [], [], []
        failed, start = 0, None
        for e in ends:
            train, test = y[:e], y[e:e + horizon]
            # SARIMA starts from the estimate at the previous origin (a week less data): a third fewer likelihood
            # evaluations than from the held-out fit's, the same optimum to the optimizer's tolerance
            fc = fit_forecast(train, len(test), model, level, reps=200, start=start)
            start = fc.params if fc.model == model else None
            failed += fc.model != model
            acts.append(test)
            preds.append(fc.mean)
            los.append(fc.lo(level))
            his.append(fc.hi(level))
            scale = mase_scale(train)
            scaled.append(np.abs(test - fc.mean) / scale if scale > 0 else np.full(len(test), np.nan))
            if test.sum() != 0:
                tot_err.append(100 * abs(fc.mean.sum() - test.sum()) / abs(test.sum()))
            q = np.quantile(fc.paths.sum(axis=0), [(1 - level / 100) / 2, 1 - (1 - level / 100) / 2])
            tot_in.append(bool(q[0] <= test.sum() <= q[1]))
        if not ends:
            continue
        a, p, lo, hi = (np.concatenate(v) for v in (acts, preds, los, his))
        sc = np.concatenate(scaled)
        act_sum = a.sum()
        name, label = model, MODEL_LABELS[model]
        if failed:
            where = "" if failed == len(ends) else f" at {failed} of {len(ends)} origins"
            name = f"{model} (failed{where} → seasonal naive)"
            label = f"{label} (fit failed{where}: seasonal-naive numbers)"
        rows.append({
            "model": name, "label": label, "failed_fits": failed, "origins": len(ends), "horizon_days": horizon,
            "mape": mape(a, p), "smape": smape(a, p), "mase": float(np.nanmean(sc)) if np.isfinite(sc).any() else np.nan,
            "bias": bias(a, p), "bias_pct": float(100 * (p.sum() - act_sum) / abs(act_sum)) if act_sum else np.nan,
            "coverage": coverage(a, lo, hi), "winkler": winkler(a, lo, hi, level),
            "total_error_pct": float(np.mean(tot_err)) if tot_err else np.nan,
            "total_coverage": float(np.mean(tot_in)), "level": level, "step_days": step,
            "flat_history": bool(all(mase_scale(y[:e]) == 0 for e in ends)),
        })
    return pd.DataFrame(rows)


def choose_model(bt: pd.DataFrame) -> str:
    """Lowest MASE wins; the seasonal-naive baseline wins ties and any case where nothing beats it. A model
    whose fit failed at some origin (scored with seasonal-naive numbers there) is not a candidate."""
    if bt is not None and not bt.empty:
        bt = bt[bt["model"].isin(MODELS)]
    if bt is None or bt.empty or bt["mase"].isna().all():
        return "seasonal_naive"
    best = bt.sort_values(["mase", "winkler"]).iloc[0]
    base = bt.loc[bt["model"] == "seasonal_naive", "mase"]
    if not base.empty and not best["mase"] < base.iloc[0]:
        return "seasonal_naive"
    return str(best["model"])


def maturity_band(variance_pct: float | None) -> str:
    """Band of a forecast (or budget) variance: run < 5%, walk < 10%, crawl < 20%.

    The kit's default bands, named after the FinOps crawl/walk/run stages; the numbers are not taken from a
    FinOps Foundation publication, so reports call them the kit's bands.
    """
    if variance_pct is None or not np.isfinite(variance_pct):
        return "n/a"
    v = abs(variance_pct)
    return "run" if v < 5 else "walk" if v < 10 else "crawl" if v < 20 else "below crawl"


#: Fewest distinct backtest days on which a statement judges an interval's calibration (as many as a calibration
#: factor is estimated from, :data:`finops_kit.forecast._MIN_ERRORS`).
MIN_CALIBRATION_DAYS = 30


def backtest_days(row: pd.Series | dict) -> int:
    """Distinct days the backtest's windows cover: windows of ``horizon_days`` from origins ``step_days`` apart
    share days when the horizon is longer than the step (2 origins, 28-day horizon: 35 days, not 56)."""
    n, h = int(row["origins"]), int(row["horizon_days"])
    step = int(row.get("step_days", h) if hasattr(row, "get") else h)
    return h + (n - 1) * min(step, h) if n > 0 else 0


def windows_overlap(row: pd.Series | dict) -> bool:
    """Whether the backtest's windows share days (their errors are then largely one error seen twice)."""
    step = row.get("step_days", row["horizon_days"]) if hasattr(row, "get") else row["horizon_days"]
    return int(row["origins"]) > 1 and int(step) < int(row["horizon_days"])


#: Fewest non-overlapping held-out windows (:func:`~finops_kit.forecast.held_out_window_errors`) a "high" grade
#: rests on.
MIN_HELD_OUT_WINDOWS = 3


def trust_level(row: pd.Series | dict, forecast: ModelForecast | None = None) -> str:
    """high / medium / low from the errors on period totals and the interval's calibration.

    Totals matter more than single days to a budget owner, so the maturity-band error of the totals drives it:
    high = run band (< 5%) in the backtest *and* over at least :data:`MIN_HELD_OUT_WINDOWS` non-overlapping
    held-out windows of the forecast's length (``forecast``, the final fit), with an interval the backtest did not
    find off by more than 15 points; medium = within 10% in both; low otherwise.

    Why the held-out windows: the backtest's two windows alone graded "high" on thin evidence -- a week apart,
    28-day windows share 21 days, so their errors are nearly one error seen twice; an independent review simulated
    150 series and found 35% of those graded high missing the next 28-day total by more than 5%. Without enough
    held-out windows (history under 16 weeks, or a quarter or a year to forecast) the grade is medium at most. A
    constant history is medium at most too: every model repeats it exactly, which says nothing about change.
    """
    tot, cov, lv = row["total_error_pct"], row["coverage"], row["level"]
    # too few backtest days to judge the interval (what the statement then says) is no veto either
    judged = "step_days" not in row or backtest_days(row) >= MIN_CALIBRATION_DAYS
    calibrated = abs(cov * 100 - lv) <= 15 or not judged
    flat = bool(row.get("flat_history", False)) if hasattr(row, "get") else False
    held = forecast.held_out_total_error_pct if forecast is not None else float("nan")
    enough = forecast is not None and forecast.held_out_windows >= MIN_HELD_OUT_WINDOWS
    tot, held = round(float(tot), 1), round(float(held), 1)  # as the statement prints them: "5.0%" is not "< 5%"
    if np.isfinite(tot) and tot < 5 and calibrated and enough and held < 5 and not flat:
        return "high"
    if np.isfinite(tot) and tot < 10 and not (np.isfinite(held) and held >= 10):
        return "medium"
    return "low"


def trust_statement(bt: pd.DataFrame, model: str, level: float, forecast: ModelForecast | None = None) -> str:
    """One plain-language paragraph: how the chosen model did on this history and what that means.

    The coverage it states is the backtest's: the share of actual days inside the daily interval, and how many
    of the backtest's period totals fell inside the total's interval -- of the same calibrated intervals the
    forecast shows (:func:`~finops_kit.forecast.fit_forecast`). ``forecast`` (the final fit) adds how far its
    intervals were widened by that calibration.
    """
    if bt is None or bt.empty or model not in set(bt["model"]):
        return "No backtest was possible (too little history): treat the forecast as indicative only."
    row = bt.set_index("model").loc[model]
    base = bt.set_index("model").loc["seasonal_naive"] if "seasonal_naive" in set(bt["model"]) else None
    cov = row["coverage"] * 100
    n_tot = int(row["origins"])
    h_days, days = int(row["horizon_days"]), backtest_days(row)
    totals = f" and {round(row['total_coverage'] * n_tot)} of {n_tot} {h_days}-day totals"
    if bool(row.get("flat_history", False)):
        return (f"Trust: {trust_level(row, forecast)}. The history is constant: {MODEL_LABELS[model]} repeats it exactly, as any "
                "model would, and its range has no width. Nothing in the history tells how this cost could change: "
                "read the forecast as 'unchanged', not as a measured certainty.")
    if days < MIN_CALIBRATION_DAYS:
        calib = (f"its {level:.0f}% interval held {cov:.0f}% of the {days} actual days{totals} (too few days to "
                 "judge its calibration)")
    elif abs(cov - level) <= 10:
        calib = f"its {level:.0f}% interval held {cov:.0f}% of actual days{totals} (well calibrated)"
    elif cov < level:
        calib = (f"its {level:.0f}% interval held only {cov:.0f}% of actual days{totals} (ranges too narrow: read "
                 "them as optimistic)")
    else:
        calib = f"its {level:.0f}% interval held {cov:.0f}% of actual days{totals} (ranges on the cautious side)"
    calib += "" if forecast is None else ". " + calibration_note(forecast)
    vs = ""
    if base is not None and model != "seasonal_naive" and np.isfinite(base["mase"]) and base["mase"] > 0:
        gain = 100 * (1 - row["mase"] / base["mase"])
        vs = f"; daily errors {gain:.0f}% smaller than 'same weekday last week'"
    elif model == "seasonal_naive":
        vs = "; no model beat 'same weekday last week', so that simple rule is used"
    direction = "over" if row["bias"] > 0 else "under"
    band = maturity_band(row["total_error_pct"])
    shared = ""
    if windows_overlap(row):
        step = int(row["step_days"])
        shared = (f" (from origins {step} days apart: the windows share {h_days - step} of their {h_days} days, "
                  "so their errors are nearly one error seen twice)")
    held = ""
    if forecast is not None and forecast.held_out_days:
        k, err = forecast.held_out_windows, forecast.held_out_total_error_pct
        days = len(forecast.mean)
        held = (f" Over {k} held-out {days}-day totals (forecast without seeing them: " +
                ("the rule's own past" if forecast.model == "seasonal_naive" else
                 "parameters estimated on the first half of the history") +
                f") it missed by {err:.1f}% on average" if k else
                f" The held-out days hold no whole {days}-day total to check it on")
        if k < MIN_HELD_OUT_WINDOWS:
            held += f"; fewer than {MIN_HELD_OUT_WINDOWS} such totals, so the grade is medium at most"
        held += "."
    return (
        f"Trust: {trust_level(row, forecast)}. In {int(row['origins'])} backtests on this bill's own history{shared}, "
        f"{MODEL_LABELS[model]} missed {int(row['horizon_days'])}-day totals by {row['total_error_pct']:.1f}% on "
        f"average (kit variance band: {band}); daily error MAPE {row['mape']:.1f}%, MASE {row['mase']:.2f}{vs}; "
        f"it tended to {direction}-forecast by {abs(row['bias_pct']):.1f}%; {calib}.{held}"
    )


def calibration_note(fc: ModelForecast) -> str:
    """How the forecast's intervals were calibrated (:func:`~finops_kit.forecast.calibrate_intervals`), in words."""
    if fc.held_out_days == 0:
        return ("Its ranges are the model's own (too little history to calibrate them on held-out days: "
                "they assume the model's estimated parameters are exact and tend to be too narrow)")
    if fc.model == "seasonal_naive":
        how = f"the errors the rule made on {fc.held_out_days} past days"
    else:
        how = (f"the errors a fit on the first half of the history made on the {fc.held_out_days} days after it "
               "(the model's own ranges assume its estimated parameters are exact)")
    if fc.daily_factor <= 1.005 and fc.total_factor <= 1.005:
        return f"Its ranges were checked against {how} and already held them"
    return (f"Its ranges are calibrated: widened {fc.daily_factor:.2f}x for days and {fc.total_factor:.2f}x for "
            f"totals to {how}")
