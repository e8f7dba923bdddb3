"""The fit cache (finops_kit/fitcache.py): a hit returns exactly what the fit returned, a changed warehouse misses,
concurrent processes share it safely."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import fitcache
from finops_kit import forecast as fc
from finops_kit import scope as scope_mod


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "fits"
    monkeypatch.setenv(fitcache.ENV, str(folder))
    fitcache.clear_memory()
    fitcache.stats.reset()
    yield folder
    fitcache.clear_memory()


def _series(n: int = 140, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 1000 + 2.5 * t + 120 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 25, n)


def _same(a: fc.ModelForecast, b: fc.ModelForecast) -> None:
    assert a.model == b.model
    assert (a.daily_factor, a.total_factor, a.held_out_days) == (b.daily_factor, b.total_factor, b.held_out_days)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.paths, b.paths)
    assert a.intervals.keys() == b.intervals.keys()
    for lv in a.intervals:
        assert np.array_equal(a.lo(lv), b.lo(lv)) and np.array_equal(a.hi(lv), b.hi(lv))


@pytest.mark.parametrize("model", ["ets", "sarimax"])
def test_a_hit_is_bit_for_bit_the_fit(cache, monkeypatch, model):
    y = _series()
    monkeypatch.setenv(fitcache.ENV, "off")
    plain = fc.fit_forecast(y, 20, model, 80)
    assert not cache.exists() and fitcache.stats.misses == 0  # off: nothing kept, nothing counted
    monkeypatch.setenv(fitcache.ENV, str(cache))
    first = fc.fit_forecast(y, 20, model, 80)
    assert (fitcache.stats.misses, fitcache.stats.hits) == (1, 0)
    assert first.held_out_days > 0  # the calibrated fit (held-out refit) is what is cached
    fitcache.clear_memory()  # as a new kernel: from disk
    again = fc.fit_forecast(y, 20, model, 80)
    assert (fitcache.stats.misses, fitcache.stats.hits) == (1, 1)
    same_process = fc.fit_forecast(y, 20, model, 80)
    assert fitcache.stats.memory_hits == 1
    for got in (first, again, same_process):
        _same(plain, got)
    same_process.mean[:] = 0  # a caller changing its copy does not change the cache
    _same(plain, fc.fit_forecast(y, 20, model, 80))


def test_any_change_of_series_or_spec_is_a_miss(cache):
    y = _series()
    fc.fit_forecast(y, 20, "ets", 80)
    y2 = y.copy()
    y2[-1] += 0.01
    fc.fit_forecast(y2, 20, "ets", 80)      # one day's cost differs
    fc.fit_forecast(y, 21, "ets", 80)       # horizon
    fc.fit_forecast(y, 20, "ets", 95)       # level
    fc.fit_forecast(y, 20, "ets", 80, reps=200)
    fc.fit_forecast(y[1:], 20, "ets", 80)   # history window
    assert (fitcache.stats.misses, fitcache.stats.hits, fitcache.stats.memory_hits) == (6, 0, 0)
    assert len(list(cache.glob("*/*.npz"))) == 6


def test_a_damaged_entry_is_a_miss_and_is_replaced(cache):
    y = _series()
    want = fc.fit_forecast(y, 14, "ets", 80)
    [entry] = cache.glob("*/*.npz")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated (a crash of another writer, a full disk)
    fitcache.clear_memory()
    _same(want, fc.fit_forecast(y, 14, "ets", 80))
    assert (fitcache.stats.misses, fitcache.stats.hits) == (2, 0)
    fitcache.clear_memory()
    _same(want, fc.fit_forecast(y, 14, "ets", 80))
    assert fitcache.stats.hits == 1


def test_pruning_drops_the_least_recently_used(cache):
    for seed in range(3):
        fc.fit_forecast(_series(seed=seed), 14, "ets", 80)
    entries = sorted(cache.glob("*/*.npz"), key=lambda p: p.stat().st_mtime)
    size = entries[0].stat().st_size
    assert fitcache.prune(cache, max_bytes=2 * size + size // 2) == 1
    assert not entries[0].exists() and entries[1].exists() and entries[2].exists()


_WORKER = """
import sys, numpy as np
from finops_kit import forecast as fc, fitcache
rng = np.random.default_rng(3); t = np.arange(140)
y = 1000 + 2.5 * t + 120 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 25, 140)
out = [fc.fit_forecast(y[:n], 14, "ets", 80) for n in (100, 120, 140)]
np.save(sys.argv[1], np.concatenate([f.mean for f in out] + [f.paths.ravel() for f in out]))
"""


def test_concurrent_processes_share_the_cache_safely(cache, tmp_path):
    """Two report kernels fitting the same series at once: both get the fit, every entry is whole, no temp file
    is left behind, and a third process reads the entries back exactly."""
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / f"r{i}.npy")]) for i in range(2)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    a, b = (np.load(tmp_path / f"r{i}.npy") for i in range(2))
    assert np.array_equal(a, b)
    assert len(list(cache.glob("*/*.npz"))) == 3 and not list(cache.rglob("*.tmp"))
    subprocess.run([sys.executable, "-c", _WORKER, str(tmp_path / "r2.npy")], check=True, timeout=600)
    assert np.array_equal(a, np.load(tmp_path / "r2.npy"))


def _forecast_numbers(path: str) -> list[tuple]:
    con = fk.connect(path, read_only=True, quiet=True)
    try:
        sc = scope_mod.resolve(con, "finops.yaml")
        out = []
        for dim in ("total", "team"):
            for r in fc.forecast(con, dim, horizon="month", top=3, backtest_origins=2, scope=sc):
                out.append((dim, r.value, r.model, r.expected_total, r.total_lo, r.total_hi,
                            None if r.daily is None or r.daily.empty else r.daily.to_json(date_format="iso"),
                            None if r.backtest is None or r.backtest.empty else r.backtest.to_json(date_format="iso")))
        return out
    finally:
        con.close()


def test_warehouse_unchanged_hits_with_identical_figures_changed_misses(cache, sample_warehouse, tmp_path):
    """The issue's contract: a report run on an unchanged warehouse reuses every fit and prints the same figures;
    after the warehouse changes, the series that changed are fitted again (never a stale fit)."""
    wh = tmp_path / "wh.duckdb"
    shutil.copy(sample_warehouse, wh)
    first = _forecast_numbers(str(wh))
    assert any(x[3] is not None and x[3] > 0 for x in first)
    cold = fitcache.stats.misses
    assert cold > 10 and fitcache.stats.hits == 0
    fitcache.clear_memory()
    fitcache.stats.reset()
    second = _forecast_numbers(str(wh))
    assert second == first
    assert fitcache.stats.misses == 0 and fitcache.stats.hits == cold  # every fit came from the cache

    con = fk.connect(str(wh), write=True, quiet=True)  # a re-ingest that changes the last two weeks' costs
    last = con.execute("SELECT max(ChargePeriodStart) FROM focus").fetchall()[0][0]
    con.execute("UPDATE focus SET EffectiveCost = EffectiveCost * 1.25, BilledCost = BilledCost * 1.25 "
                "WHERE ChargePeriodStart > ?::TIMESTAMP - INTERVAL 14 DAY AND ChargeCategory = 'Usage'",
                [pd.Timestamp(last).to_pydatetime()])
    con.close()
    fitcache.clear_memory()
    fitcache.stats.reset()
    third = _forecast_numbers(str(wh))
    assert fitcache.stats.misses > 0
    assert [x[3] for x in third] != [x[3] for x in first]
    total = next(x for x in third if x[0] == "total")
    assert total[3] > next(x for x in first if x[0] == "total")[3]


def test_a_sarima_fit_started_elsewhere_is_never_served_to_a_call_without_that_start(cache, monkeypatch):
    # the backtest starts each origin's SARIMA optimizer from the previous origin's estimate
    # (fit_forecast(start=...)): the same optimum to tolerance, not to the bit, so the start is part of the key
    y = _series(200)
    started = fc.fit_forecast(y, 14, "sarimax", reps=50, start=np.array([0.3, -0.5, -0.5]))
    cold = fc.fit_forecast(y, 14, "sarimax", reps=50)
    assert fitcache.stats.misses == 2  # two keys, two fits
    monkeypatch.setenv(fitcache.ENV, "off")
    fresh = fc.fit_forecast(y, 14, "sarimax", reps=50)
    _same(cold, fresh)  # what a process without the cache computes, to the bit
    assert not np.array_equal(started.mean, cold.mean)  # the start did move the optimum (in its last digits)
    assert started.params is not None and np.allclose(started.params, cold.params, atol=5e-3)  # MA near -1: flat


def test_each_backtest_origin_starts_sarima_from_the_previous_origins_estimate(cache, monkeypatch):
    from finops_kit import backtest as bt

    calls = []
    real = bt.fit_forecast

    def spy(train, h, model, level, **kw):
        out = real(train, h, model, level, **kw)
        calls.append((model, len(train), kw.get("start"), out.params))
        return out

    monkeypatch.setattr(bt, "fit_forecast", spy)
    bt.backtest(_series(200), horizon=7, origins=3, models=("sarimax", "ets"))
    sarima = [c for c in calls if c[0] == "sarimax"]
    assert [c[1] for c in sarima] == [179, 186, 193] and sarima[0][2] is None
    for prev, cur in zip(sarima[:-1], sarima[1:], strict=True):
        assert np.array_equal(cur[2], prev[3])  # the previous (shorter) origin's estimate
    assert all(c[2] is None and c[3] is None for c in calls if c[0] == "ets")  # ETS has no start to pass
