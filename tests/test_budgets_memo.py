"""budget_status computed again with the same arguments on the same read-only warehouse (the forecast report's
section 4, then its alerts, asking for it with reuse=True) is a copy of the answer computed before (finops_kit.budgets._status_key) -- and is
computed again whenever anything that decides it differs: the day asked, level, model, roadmap, budgets, the
scope's providers or tag policy, a writable connection, forecasts given by the caller, a shadowed focus table."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import budgets as bu
from finops_kit.config import load_config
from finops_kit.scope import resolve

REPO = Path(__file__).resolve().parents[1]
GCP = REPO / "data" / "samples" / "gcp"
CFG = str(REPO / "finops.yaml")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("memo") / "wh.duckdb")
    fk.ingest([str(p) for p in sorted(GCP.glob("*_2026*.jsonl.gz"))], warehouse=path, progress=False)
    return path


@pytest.fixture()
def computed(monkeypatch) -> list:
    """budget_status's computations, as they happen (each answers a frame naming its arguments)."""
    calls: list = []

    def fake(con, budgets, sc, **kw):
        calls.append(kw)
        return pd.DataFrame({"budget": [b.name for b in budgets], "call": len(calls)})

    monkeypatch.setattr(bu, "_budget_status", fake)
    return calls


def test_the_same_arguments_are_computed_once_and_answered_by_a_copy(warehouse, computed):
    con = fk.connect(warehouse, read_only=True)
    budgets = bu.load_budgets(load_config(CFG))[0]
    first = bu.budget_status(con, budgets, level=80, scope=resolve(con, CFG), reuse=True)
    first.loc[0, "budget"] = "changed by its reader"
    again = bu.budget_status(con, budgets, scope=resolve(con, CFG), reuse=True)  # another scope object, the same scope
    assert len(computed) == 1 and again["call"].tolist() == [1] * len(budgets)
    assert again.loc[0, "budget"] == budgets[0].name


def test_anything_that_decides_it_differing_is_computed_again(warehouse, computed, tmp_path):
    cfg = load_config(CFG)
    budgets = bu.load_budgets(cfg)[0]
    con = fk.connect(warehouse, read_only=True)
    sc = resolve(con, CFG)
    n = 0

    def fresh(**kw) -> bool:
        nonlocal n
        args = dict(as_of=None, level=80, roadmap=None, model="auto", scope=sc, reuse=True) | kw
        b = args.pop("budgets", budgets)
        c = args.pop("con", con)
        bu.budget_status(c, b, **args)
        was, n = n, len(computed)
        return n == was + 1

    assert fresh()
    assert not fresh()
    assert fresh(as_of="2026-10-14")
    assert fresh(level=95)
    assert fresh(model="ets")
    assert fresh(roadmap=[{"name": "x", "start": "2026-10-01", "daily": 10}])
    more = [replace(budgets[0], monthly=(budgets[0].monthly or Decimal(0)) + 1), *budgets[1:]]
    assert fresh(budgets=more)
    assert fresh(scope=resolve(con, CFG, {"billing_period_end": "2026-09"}))
    other = copy.deepcopy(cfg)
    other["tag_policy"]["keys"]["team"].setdefault("aliases", []).append("squad")
    assert fresh(scope=resolve(con, other))
    assert fresh()
    assert fresh(forecast_results={}) and fresh(forecast_results={})  # forecasts given: never reused
    assert fresh(con=fk.connect(warehouse, read_only=True), scope=None)  # another connection
    assert fresh(reuse=False) and fresh(reuse=False)  # not asked for: computed (a caller may have patched code)
    path = str(tmp_path / "rw.duckdb")
    shutil.copy(warehouse, path)
    rw = fk.connect(path, write=True)
    assert fresh(con=rw, scope=None) and fresh(con=rw, scope=None)  # a writable warehouse: never reused
    con.execute("CREATE TEMP TABLE focus AS SELECT * FROM main.focus")  # a shadowed FOCUS table: never reused
    assert fresh(scope=resolve(con, CFG)) and fresh(scope=resolve(con, CFG))


def test_a_reused_status_is_the_status_computed_again(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPS_FIT_CACHE", str(tmp_path / "fits"))
    con = fk.connect(warehouse, read_only=True)
    budgets = bu.load_budgets(load_config(CFG))[0]
    first = bu.budget_status(con, budgets, scope=resolve(con, CFG))
    again = bu.budget_status(con, budgets, scope=resolve(con, CFG), reuse=True)
    assert bu._status_memo[con][1] is not again
    bu._status_memo.clear()
    fresh = bu.budget_status(con, budgets, scope=resolve(con, CFG))
    pd.testing.assert_frame_equal(again, fresh)
    pd.testing.assert_frame_equal(first, fresh)
