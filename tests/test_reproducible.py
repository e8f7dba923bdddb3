"""Reports are reproducible: the same FOCUS rows give the same figures, digit for digit, whatever order the
warehouse stores them in.

Why this test: DOUBLE measures (hours, GB, requests, utilization) summed with a plain ``sum()``/``avg()`` change in
their last digits with the order rows are added in, and DuckDB's parallel aggregation does not fix that order --
two renders of the storage report on one warehouse differed in ~250 chart values. Here the sample warehouse is
stored twice with its ``focus`` rows in two different orders and every analysis the curated notebooks call runs on
both with one thread (so the scan order really differs); the answers must be identical (``check_exact``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import anomaly as an
from finops_kit import budgets as bu
from finops_kit import commitments as cm
from finops_kit import egress as eg
from finops_kit import forecast as fc
from finops_kit import gpu, scope, spot
from finops_kit import storage as st
from finops_kit import summary as sm
from finops_kit import tagging as tg
from finops_kit import tokens as tk
from finops_kit import unit_economics as ue
from finops_kit.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "finops.yaml")
AI = REPO / "data" / "samples" / "_ai_units"

#: Two storage orders of the same rows: a hash of the row number, and the ingest order reversed.
ORDERS = {"hashed": "hash(rowid)", "reversed": "rowid DESC"}


@pytest.fixture(scope="module")
def reordered(sample_warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sample warehouse copied twice, each copy's ``focus`` rows rewritten in one of :data:`ORDERS`."""
    import duckdb

    out = {}
    base = tmp_path_factory.mktemp("reordered")
    for name, order in ORDERS.items():
        path = str(base / f"{name}.duckdb")
        shutil.copy(sample_warehouse, path)
        con = duckdb.connect(path)
        try:
            con.execute("SET threads = 1")  # one writer thread: the rows are stored in exactly this order
            con.execute(f"CREATE TEMP TABLE _rows AS SELECT * FROM focus ORDER BY {order}")
            con.execute("DELETE FROM focus")
            con.execute("INSERT INTO focus SELECT * FROM _rows")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        out[name] = path
    return out


def _opened(path: str) -> Any:
    con = fk.connect(path, read_only=True)
    con.execute("SET threads = 1")  # one thread scans and adds in storage order: the two orders really differ
    return con


# --------------------------------------------------------------------------------------------- the analyses
def _storage(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    f = dict(scope=sc, config=load_config(CONFIG))
    prices = st.load_prices(None)
    return {
        "inventory": st.inventory(con, by=["provider", "storage_class"], **f),
        "inventory_team": st.inventory(con, by=["team"], **f),
        "inventory_buckets": st.inventory(con, by=["provider", "bucket", "storage_class", "team"], **f),
        "monthly": st.monthly(con, by=["storage_class"], **f),
        "growth": st.growth(con, by="provider", window=6, months_ahead=6, **f),
        "charges": st.charges(con, by=["provider", "storage_class"], **f),
        "recommend": st.recommend(con, prices, group_by="bucket", **f),
        "recommend_team": st.recommend(con, prices, group_by="team", access_from_bill=False, **f),
    }


def _egress(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    f = dict(scope=sc, config=load_config(CONFIG))
    return {
        "by_type": eg.by_type(con, by=["provider", "transfer_type"], **f),
        "by_team": eg.by_type(con, by=["team", "transfer_type"], **f),
        "largest_flows": eg.largest_flows(con, top=10, **f),
        "tiered": eg.tiered_egress(con, eg.load_egress_prices(None), **f),
        "cross_region": eg.cross_region_training(con, **f),
    }


def _tagging(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    audit = tg.TagAudit(con, scope=sc)
    return {
        "by_provider": tg.spend_summary(con, "provider", scope=sc),
        "months": tg.spend_summary(con, "month", scope=sc),
        "by_category": tg.spend_summary(con, ["service_category", "ai_workload"], scope=sc),
        "trend": tg.ai_trend(con, scope=sc),
        "accelerator_families": tg.accelerator_families(con, scope=sc),
        "managed_ai_services": tg.managed_ai_services(con, scope=sc),
        "coverage": audit.coverage(),
        "coverage_ai": audit.coverage(ai_only=True),
        "coverage_by": [audit.coverage(dim) for dim in ("provider", "account", "service", "month")],
        "violations": audit.violations(),
        "key_map": audit.key_map(),
        "top_values": audit.top_values(),
        "environments": audit.environments(),
        "always_on_gpus": audit.always_on_gpus(),
    }


def _ai_units(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    files = gpu.utilization_files(AI / "gpu")  # read in two orders too: the samples reach DuckDB in that order
    gpu.load_utilization(con, files[::-1] if flip else files, AI / "gpu" / "hosts.csv")
    idle = gpu.idle_gpu(con, sc)
    runs = ue.training_runs(con, sc, AI / "training_runs.csv")
    units = ue.inference_unit_costs(con, sc, AI / "business_metrics.csv")
    return {
        "gpu_hours": con.sql(f"SELECT * FROM {gpu.TABLE} ORDER BY ALL").df(),
        "idle_gpu": idle, "training_runs": runs, "inference_unit_costs": units,
        "token_summary": tk.summary(con, sc), "token_reconcile": tk.reconcile(con, sc),
        "unit_costs": tk.unit_costs(con, sc), "token_trend": tk.trend(con, sc, by=("provider", "model")),
        "cache_savings": tk.cache_savings(con, sc), "batch": tk.batch_vs_on_demand(con, sc),
        "capacity": tk.capacity(con, sc),
    }


def _spot(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    advisor = spot.load_advisor(spot.resolve_path("finops_kit/data/spot-advisor-data_2025-06.json"))
    return {
        "coverage_month": spot.spot_coverage(con, by=("month",), scope=sc).df(),
        "coverage_team": spot.spot_coverage(con, by=("team", "instance_family", "region"), scope=sc).df(),
        "effective_rates": spot.effective_rates(con, by=("provider", "region", "instance_type"), scope=sc).df(),
        "what_if": spot.spot_what_if(con, advisor, spot.WhatIfAssumptions(), by=("team",), scope=sc),
    }


def _commitments(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    rec, curves = cm.recommend(con, sc, risk_percentile=10)
    return {
        "inventory": cm.inventory(con, sc), "summary": cm.summary(con, sc),
        "coverage": cm.coverage(con, sc, by=("provider", "instance_family"), closed_only=True),
        "coverage_team": cm.coverage(con, sc, by=("team",), closed_only=True),
        "coverage_trend": cm.coverage(con, sc, by=("period", "provider")),
        "utilization": cm.utilization(con, sc, by=("period", "type")),
        "hourly_usage": cm.hourly_usage(con, sc), "recommend": rec, "curves": curves,
        "provisioned": cm.provisioned_break_even(con, sc),
    }


def _headline(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    figures = ["effective_cost", "ai_cost", "accelerator_cost", "spot_share", "storage_cost", "transfer_cost",
               "unallocated_cost", "tag_coverage"]
    return {"metrics": fk.metrics(con, sc).to_dict(), "summary": sm.figures_of(sm.summarize(con, sc, figures))}


def _forecast(con: Any, sc: Any, flip: bool) -> dict[str, Any]:
    as_of = fc.last_day(con, sc)
    total = fc.forecast(con, "total", as_of=as_of, horizon="month", level=80, scope=sc)
    base0 = (as_of.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    start, _ = an.scan_window(con, as_of - dt.timedelta(days=59), as_of, scope=sc)
    return {
        "forecast": fc.forecast_frame(total), "forecast_totals": [(f.expected_total, f.total_lo, f.total_hi)
                                                                  for f in total],
        "anomalies": an.scan(con, ("total", "team", "service"), start=start, end=as_of, scope=sc),
        "change": bu.decompose_change(con, (base0, as_of.replace(day=1) - dt.timedelta(days=1)),
                                      (as_of.replace(day=1), as_of), top=3, scope=sc),
        "price_volume": bu.price_volume(con, (base0, as_of.replace(day=1) - dt.timedelta(days=1)),
                                        (as_of.replace(day=1), as_of), top=8, scope=sc),
    }


ANALYSES: dict[str, Callable[[Any, Any, bool], dict[str, Any]]] = {
    "storage": _storage, "egress": _egress, "tagging": _tagging, "ai_units": _ai_units, "spot": _spot,
    "commitments": _commitments, "headline": _headline, "forecast": _forecast,
}


# ------------------------------------------------------------------------------------------------ comparison
def differences(a: Any, b: Any, where: str) -> list[str]:
    """Where ``a`` and ``b`` differ, to the last digit: frames by ``assert_frame_equal(check_exact=True)``,
    dataclasses and containers field by field (NaN equals NaN). Every difference is listed, not just the first."""
    out: list[str] = []
    if isinstance(a, pd.DataFrame | pd.Series):
        check = pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame) else pd.testing.assert_series_equal
        try:
            check(a, b, check_exact=True, obj=where)
        except AssertionError as exc:
            if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame) and a.shape == b.shape \
                    and list(a.columns) == list(b.columns):  # one line per differing column
                for col in a.columns:
                    try:
                        pd.testing.assert_series_equal(a[col], b[col], check_exact=True, obj=f"{where}.{col}")
                    except AssertionError as e:
                        out.append(str(e).strip().splitlines()[0] + " " + " ".join(str(e).split()[-40:])[:400])
            out = out or [str(exc)[:600]]
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return [f"{where}: {type(a)} != {type(b)}"]
        for f in dataclasses.fields(a):
            out += differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        if not isinstance(b, dict) or list(a) != list(b):
            return [f"{where}: keys {list(a)} != {list(b) if isinstance(b, dict) else b!r}"]
        for k in a:
            out += differences(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return [f"{where}: {a!r} != {b!r}"]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += differences(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
            out.append(f"{where}: arrays differ")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        pass
    elif hasattr(a, "__dict__") and not isinstance(a, type) and type(a).__module__.startswith("finops_kit"):
        out += differences(vars(a), vars(b), where)
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")
    return out


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_figures_do_not_depend_on_the_order_rows_are_stored_in(reordered: dict[str, str], analysis: str) -> None:
    results = []
    for flip, path in enumerate(reordered.values()):
        con = _opened(path)
        try:
            sc = scope.resolve(con, CONFIG, {})
            results.append(ANALYSES[analysis](con, sc, bool(flip)))
        finally:
            con.close()
    diff = differences(results[0], results[1], analysis)
    assert not diff, f"{len(diff)} figure(s) depend on the row order:\n" + "\n".join(diff)


def test_gpu_hourly_utilization_does_not_depend_on_the_order_of_the_samples(tmp_path: Path) -> None:
    """The sample GPU files hold whole percents, whose sums are exact in any order; real exporters (DCGM,
    CloudWatch averages) give fractions, and ``avg()`` of 0.1, 0.2, 0.3 is 0.20000000000000004 in that order and
    0.19999999999999998 in the reverse one. An hour's utilization, and every mean built on it, must not follow the read order."""
    import duckdb

    hosts = tmp_path / "hosts.csv"
    hosts.write_text("host,resource_id,timezone\ngpu-a,i-0aaa,UTC\n")
    samples = [("00:10:00", "0.1"), ("00:20:00", "0.2"), ("00:30:00", "0.3")]
    got = []
    for name, rows in (("forward", samples), ("backward", samples[::-1])):
        (tmp_path / name).mkdir()
        log = tmp_path / name / "gpu-a.csv"
        log.write_text("timestamp, index, uuid, utilization.gpu [%], memory.used [MiB]\n" + "".join(
            f"2026/10/05 {t}.000, 0, GPU-1, {u} %, 100 MiB\n" for t, u in rows))
        con = duckdb.connect()
        con.execute("SET threads = 1")
        gpu.load_utilization(con, [log], hosts)
        got.append(con.execute(f"SELECT utilization, samples FROM {gpu.TABLE}").fetchall())
        con.close()
    assert got[0] == got[1] == [(0.6 / 3, 3)]  # the exact sum over the count, in either order


def test_renamed_commitment_has_one_name_whatever_the_row_order() -> None:
    """A commitment renamed mid-period carries two CommitmentDiscountNames; ``any_value`` showed whichever row the
    scan met first. The inventory names it by its latest name, in either storage order."""
    from finops_kit import commitments as cm_
    from finops_kit.testing import focus_rows

    def row(day: str, name: str) -> dict:
        return dict(ProviderName="Amazon Web Services", ServiceName="Amazon Elastic Compute Cloud",
                    ServiceCategory="Compute", ChargeCategory="Usage", day=day, cost="1.00",
                    ConsumedQuantity="1", ConsumedUnit="Hours", PricingQuantity="1", PricingUnit="Hours",
                    CommitmentDiscountId="arn:aws:ec2:us-east-1:1:reserved-instances/ri-1",
                    CommitmentDiscountName=name, CommitmentDiscountType="Reserved Instance",
                    CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Used", PricingCategory="Committed")

    names = []
    rows = [row("2026-09-03", "ri-old"), row("2026-09-04", "ri-new")]
    for ordered in (rows, rows[::-1]):
        con = fk.connect(":memory:", write=True)
        con.execute("SET threads = 1")  # one thread scans in insertion order: the two orders really differ
        focus_rows(ordered, con)
        names.append(cm_.inventory(con, scope.resolve(con, CONFIG))["name"].tolist())
        con.close()
    assert names[0] == names[1] == ["ri-new"]


# ------------------------------------------------------------------ picks among rows that disagree or tie
def _in_two_orders(rows: list[dict], answer: Callable[[Any, Any], Any]) -> list[Any]:
    """``answer(con, scope)`` over the same FOCUS rows stored in two orders (one thread scans in storage order)."""
    from finops_kit.testing import focus_rows

    got = []
    for ordered in (rows, rows[::-1]):
        con = fk.connect(":memory:", write=True)
        con.execute("SET threads = 1")
        focus_rows(ordered, con)
        got.append(answer(con, scope.resolve(con, CONFIG)))
        con.close()
    return got


def _charge(resource: str, tags: dict, cost: str = "50.00", **kw: Any) -> dict:
    return dict(dict(ProviderName="Amazon Web Services", ServiceName="Amazon Elastic Compute Cloud",
                     ServiceCategory="Compute", ChargeCategory="Usage", day="2026-09-03", cost=cost,
                     BillingAccountId="111122223333", ResourceId=resource, tags=tags), **kw)


def test_suggested_spelling_of_a_tag_key_on_equal_dollars_whatever_the_row_order() -> None:
    """'CostCenter' and 'cost_center' (a key outside the policy) on two instances of $50 each: the audit tells
    the owners to rename one to the other. The spelling with the most dollars wins; on equal dollars the one on
    more charges, then the first in code-point order -- 'CostCenter' from either order (before: the pick followed
    the scan, so one order said rename CostCenter, the other rename cost_center)."""
    rows = [_charge("i-0a1", {"CostCenter": "cc-4410"}), _charge("i-0b2", {"cost_center": "cc-4410"})]

    def variants(con: Any, sc: Any) -> list[str]:
        v = tg.TagAudit(con, scope=sc).violations()
        return sorted(v[(v.type == "key variant") & v.key.isna()].action)

    got = _in_two_orders(rows, variants)
    assert got[0] == got[1] == ['rename tag "cost_center" to "CostCenter"']


def test_consolidated_spelling_of_a_tag_value_on_equal_dollars_whatever_the_row_order() -> None:
    """team=Vision and team=vision on $50 each are one team; its name is the spelling with the most dollars, on
    equal dollars the first in code-point order ('Vision'), from either order."""
    rows = [_charge("i-0a1", {"team": "Vision"}), _charge("i-0b2", {"team": "vision"})]

    def teams(con: Any, sc: Any) -> list[str]:
        return [r[0] for r in con.execute(f"SELECT DISTINCT {sc.attribution.label_sql('team')} "
                                          f"FROM {sc.rows_sql()}").fetchall()]

    got = _in_two_orders(rows, teams)
    assert got[0] == got[1] == ["Vision"]


def test_owner_of_a_resource_on_equal_dollars_whatever_the_row_order() -> None:
    """An instance retagged mid-day from vision to nlp bills $10 under each: the work list names one owner, the
    one with the most dollars, on equal dollars the first by name ('nlp'), from either order."""
    rows = [_charge("i-0a1", {"team": "vision"}, cost="10.00", x_UsageType="BoxUsage:g5.xlarge"),
            _charge("i-0a1", {"team": "nlp"}, cost="10.00", x_UsageType="EBSOptimized:g5.xlarge")]
    got = _in_two_orders(rows, lambda con, sc: sm.resource_owners(con, sc, ["i-0a1"]))
    assert got[0] == got[1] == {"i-0a1": "nlp"}


def test_billing_account_renamed_mid_month_has_one_name_on_the_report_cover(tmp_path: Path) -> None:
    """An account renamed mid-month carries two BillingAccountNames; the report cover names it by its latest name
    (then the larger name), whatever the order its rows are stored in."""
    from finops_kit import report
    from finops_kit.testing import focus_rows

    rows = [_charge("i-0a1", {}, day="2026-09-03", BillingAccountName="acme-research"),
            _charge("i-0a1", {}, day="2026-09-04", BillingAccountName="acme-ai-research")]
    names = []
    for i, ordered in enumerate((rows, rows[::-1])):
        path = str(tmp_path / f"wh{i}.duckdb")
        con = fk.connect(path, write=True)
        con.execute("SET threads = 1")
        focus_rows(ordered, con)
        con.execute("CHECKPOINT")
        con.close()
        cover = report.data_coverage(path)
        names.append(json_names(cover))
    assert names[0] == names[1] == ["acme-ai-research"]


def json_names(cover: dict[str, Any]) -> list[str]:
    """The billing-account names on a report cover."""
    out = []
    for p in cover["providers"]:
        out += [a["name"] for a in p.get("accounts", [])]
    return out
