"""``python -m benchmarks forecast-calibration [--series 250] [--histories 112,365] [--workers 1]``

Nominal vs empirical coverage of the forecast's prediction intervals, before and after calibration (issue 13,
"intervals too narrow on trending data"). For each process (a trending and a flat ETS(A,Ad,A) process,
:func:`finops_kit.testing.ets_process`: the model is correctly specified, so any shortfall comes from
estimating its parameters) and each history length, ``--series`` seeded series are simulated with
``--horizon`` more days; the model is fitted on the history and scored on the days after it:

* **daily**: share of the horizon's days inside the 80% (95%) daily interval, averaged over series;
* **total**: share of series whose horizon total lies inside the 80% (95%) interval of the simulated period
  totals (what the forecast report's range and the budgets' breach probabilities are read from).

Variants, all from the same fit of each series: ``model`` = the model's own intervals (the code before
calibration, ``fit_forecast(..., calibrate=False)``); ``held-out`` = what ``fit_forecast`` returns (widened to
the errors of a model fitted on the first half of the history: the daily intervals keep the held-out share of
the excess variance, the totals all of it; see :func:`finops_kit.forecast.calibrate_intervals`); for
comparison, ``half share for totals`` keeps only the held-out share for the totals too, and ``full excess``
keeps all of it for both.

The ± figures are one standard error: binomial sqrt(p(1-p)/N) for totals (one independent total per series),
the standard deviation of per-series daily coverage over sqrt(N) for days (days of one series are correlated).
With 250 series the total's standard error is 2.5 points, so a ±5-point check is a 2-sigma check.
Takes about 2 CPU-minutes per 100 series x history length of a year (less for shorter histories).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: statsmodels fits are 3-10x slower with 2 threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("FINOPS_FIT_CACHE", "off")  # thousands of simulated series, each fitted once: nothing to reuse

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

VARIANTS = ("model", "held-out", "half share for totals", "full excess")
LEVELS = (80.0, 95.0)


def score(y: np.ndarray, future: np.ndarray, model: str = "ets") -> dict:
    """Coverage of one series' daily and total intervals at 80/95% for each variant, plus timings."""
    from finops_kit.forecast import calibrate_intervals, fit_forecast, held_out_errors

    h = len(future)
    t0 = time.perf_counter()
    raw = fit_forecast(y, h, model, 80, calibrate=False)
    t1 = time.perf_counter()
    held = held_out_errors(y, raw.model, h)
    t2 = time.perf_counter()
    fcs = {"model": raw}
    if held is not None:
        fcs["held-out"] = calibrate_intervals(raw, held[0], 80, held[1])  # = fit_forecast(y, h, model, 80)
        fcs["half share for totals"] = calibrate_intervals(raw, held[0], 80, held[1], held[1])
        fcs["full excess"] = calibrate_intervals(raw, held[0], 80, 1.0, 1.0)
    out: dict = {"fit_s": t1 - t0, "calib_s": t2 - t1, "model": raw.model}
    for name, fc in fcs.items():
        totals = fc.paths.sum(axis=0)
        for lv in LEVELS:
            a = (1 - lv / 100) / 2
            lo, hi = np.quantile(totals, [a, 1 - a])
            out[(name, "daily", lv)] = float(np.mean((future >= fc.lo(lv)) & (future <= fc.hi(lv))))
            out[(name, "total", lv)] = float(lo <= future.sum() <= hi)
        out[(name, "width")] = float(np.mean(fc.hi(80) - fc.lo(80)))
    return out


def _job(args: tuple[str, int, int, int, int, str]) -> dict:
    from finops_kit.testing import ets_process

    process, n, h, seed, i, model = args
    y = ets_process(np.random.default_rng(seed + i), n + h, process == "trending")
    return {"process": process, "history": n, **score(y[:n], y[n:], model)}


def summarize(rows: list[dict]) -> list[dict]:
    """One line per process x history x variant: mean coverage and its standard error, width vs the model's."""
    out = []
    keys = sorted({(r["process"], r["history"]) for r in rows}, key=lambda k: (k[0] != "trending", k[1]))
    for process, n in keys:
        group = [r for r in rows if r["process"] == process and r["history"] == n]
        base_width = np.mean([r[("model", "width")] for r in group])
        for v in VARIANTS:
            got = [r for r in group if (v, "width") in r]
            if not got:
                continue
            line = {"process": process, "history_days": n, "variant": v, "series": len(got),
                    "width_vs_model": float(np.mean([r[(v, "width")] for r in got]) / base_width)}
            for kind in ("daily", "total"):
                for lv in LEVELS:
                    x = np.array([r[(v, kind, lv)] for r in got])
                    p = float(x.mean())
                    se = (math.sqrt(p * (1 - p) / len(x)) if kind == "total"
                          else float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan"))
                    line[f"{kind}_{int(lv)}"], line[f"{kind}_{int(lv)}_se"] = p, se
            out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks forecast-calibration",
                                 description=__doc__.split("\n\n")[1].replace("\n", " "))
    ap.add_argument("--series", type=int, default=250, help="series per process and history length (default 250)")
    ap.add_argument("--histories", default="112,365", help="history lengths in days, comma-separated")
    ap.add_argument("--horizon", type=int, default=28, help="days forecast (the period total's length)")
    ap.add_argument("--processes", default="trending,flat", help="trending and/or flat")
    ap.add_argument("--model", default="ets", choices=("ets", "sarimax"), help="forecast model (default ets)")
    ap.add_argument("--seed", type=int, default=50_000, help="seed of the first series (series i uses seed+i)")
    ap.add_argument("--workers", type=int, default=1, help="processes (the machine may be shared: default 1)")
    ap.add_argument("--json", help="also write the per-series results and the summary to this JSON file")
    args = ap.parse_args(argv)
    histories = [int(x) for x in args.histories.split(",") if x.strip()]
    processes = [p.strip() for p in args.processes.split(",") if p.strip()]
    if set(processes) - {"trending", "flat"}:
        ap.error("--processes: trending and/or flat")
    jobs = [(p, n, args.horizon, args.seed, i, args.model) for p in processes for n in histories
            for i in range(args.series)]
    t = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(args.workers) if args.workers > 1 else nullcontext() as pool:
        for row in (pool.map(_job, jobs, chunksize=4) if pool else map(_job, jobs)):
            rows.append(row)
            if len(rows) % 50 == 0 or len(rows) == len(jobs):
                print(f"  {len(rows)}/{len(jobs)} series ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t
    summary = summarize(rows)
    print(f"forecast interval calibration: {args.model}, {args.series} series per line, {args.horizon}-day horizon "
          f"(period total = sum of the {args.horizon} days); nominal 80% / 95%; +- = 1 standard error")
    head = (f"{'process':<9} {'history':>7}  {'variant':<22} {'daily 80%':>13} {'total 80%':>13} "
            f"{'daily 95%':>13} {'total 95%':>13} {'width':>6}")
    print(head)
    print("-" * len(head))
    for s in summary:
        def cell(key: str, s: dict = s) -> str:
            return f"{100 * s[key]:5.1f} +-{100 * s[key + '_se']:4.1f}"
        print(f"{s['process']:<9} {s['history_days']:>6}d  {s['variant']:<22} {cell('daily_80'):>13} "
              f"{cell('total_80'):>13} {cell('daily_95'):>13} {cell('total_95'):>13} {s['width_vs_model']:5.2f}x")
    fit = np.mean([r["fit_s"] for r in rows])
    cal = np.mean([r["calib_s"] for r in rows])
    print(f"\nmean time per series: model fit {fit:.2f} s, calibration (held-out fit + filter) {cal:.2f} s; "
          f"wall {wall:.0f} s with {args.workers} worker(s)")
    print("width = mean width of the 80% daily interval relative to the model's own")
    if args.json:
        per_series = [{k if isinstance(k, str) else "|".join(str(x) for x in k): v for k, v in r.items()}
                      for r in rows]
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary, "series": per_series},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
