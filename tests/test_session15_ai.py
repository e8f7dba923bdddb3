"""Session 15 regression review (rr-sto), items 2, 3 and 5: the idle-GPU sentences hold when no billed GPU-hour
was observed, the training-runs section says where its runs come from and that no runs file was given, and the
storage growth note gives a charge-day scope's own reason (months cut short), not an open period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd

from finops_kit import gpu
from finops_kit import scope as S
from finops_kit import storage as st
from finops_kit import unit_economics as ue
from finops_kit.testing import focus_rows

from .test_gpu import _g5_hours  # a g5.12xlarge billed hourly from T0, 2026-10-06

REPO = Path(__file__).resolve().parents[1]
HEADER = "timestamp, index, uuid, utilization.gpu [%], memory.used [MiB]\n"
T0 = dt.datetime(2026, 10, 6)


def money(v) -> str:
    return f"${float(v):,.2f}"


def _idle(tmp: Path, rows: list[dict], util: float, host_rid: str) -> gpu.IdleGpu:
    log = tmp / "gpu-a.csv"
    log.write_text(HEADER + "".join(f"{T0 + dt.timedelta(minutes=m):%Y/%m/%d %H:%M:%S}.000, {g}, GPU-{g:04d}, "
                                    f"{util} %, 100 MiB\n" for m in range(24 * 60) for g in range(4)))
    hosts = tmp / "hosts.csv"
    hosts.write_text(f"host,resource_id,timezone\ngpu-a,{host_rid},UTC\n")
    con = focus_rows(rows)
    gpu.load_utilization(con, [log], hosts)
    return gpu.idle_gpu(con, S.resolve(con, str(REPO / "finops.yaml"), {}))


# ------------------------------------------------------------------------------------------------ item 2


def test_idle_note_when_no_billed_gpu_hour_was_observed(tmp_path):
    """Review rr-sto 2 (demo, Microsoft, Oct 2026): '$0.00 was paid for 0 idle GPU-hours, 0% of the 0 GPU-hours
    observed on 0 instances. No observed GPU-hour did work (all idle)' -- nothing was observed, let alone idle.
    Here a g5 billed 24 h ($136.13) while the only metrics belong to another instance."""
    r = _idle(tmp_path, _g5_hours("i-0aaa", range(24)), 0, "i-0bbb")
    t = r.totals
    assert r.overlaps and t["monitored_resources"] == 0 and t["observed_gpu_hours"] == 0
    text = r.note("charge days 6 Oct 2026", money)
    assert "all idle" not in text and "0%" not in text and "0 instances" not in text
    assert "no billed GPU-hour was observed" in text
    assert "none of the 1 accelerated resource billed in the window ($136.13) has a utilization metric" in text
    assert "1 monitored host had 96 GPU-hours on no bill in scope" in text


def test_idle_note_all_idle_and_busy(tmp_path):
    """The sentences that remain: all idle is said only of observed hours; one instance is one instance."""
    idle = _idle(tmp_path, _g5_hours("i-0aaa", range(24)), 0, "i-0aaa").note("x", money)
    assert "No observed GPU-hour did work (all idle)" in idle
    assert "**$136.13** was paid for **96 idle GPU-hours**, 100% of the 96 GPU-hours observed on 1 instance." in idle
    assert "Every accelerated resource billed in the window has a utilization metric" in idle
    assert "every monitored host matches billed accelerator-hours" in idle
    busy = _idle(tmp_path, _g5_hours("i-0aaa", range(24)), 90, "i-0aaa").note("x", money)
    assert "0 idle GPU-hours**, 0% of the 96" in busy and "A GPU-hour of real work cost **$1.42**" in busy


def test_idle_note_when_the_files_and_the_bill_do_not_overlap(tmp_path):
    r = _idle(tmp_path, [dict(day="2024-09-05", ServiceName="Amazon Elastic Compute Cloud",
                              x_UsageType="USE1-BoxUsage:m5.large", cost=10, ResourceId="i-0abc")], 0, "i-0bbb")
    text = r.note("the billing period 2024-09", money)
    assert not r.overlaps and text.startswith("**The utilization files and the bill in scope do not overlap.**")
    assert "(the billing period 2024-09) has no accelerator-hours" in text and "1 monitored host had 96" in text


# ------------------------------------------------------------------------------------------------ item 3


def _run_bill(tmp_path):
    rows = (_g5_hours("i-0aaa", range(24), tags={"team": "ml", "training-run": "tagged-1"})
            + _g5_hours("i-0bbb", range(24)))
    con = focus_rows(rows)
    runs = tmp_path / "runs.csv"
    runs.write_text("run_id,start,end,resource_ids\nlisted-1,2026-10-06T00:00:00Z,2026-10-06T12:00:00Z,i-0bbb\n")
    return con, S.resolve(con, {}, {}), runs


def test_runs_say_their_sources_and_that_no_runs_file_was_given(tmp_path):
    """Review rr-sto 3: without a runs file the section still spoke of 'a resource of the runs file' and its totals
    changed silently (demo $76,589.13 in runs with the file, $76,125.33 without)."""
    con, sc, runs_file = _run_bill(tmp_path)
    without = ue.training_runs(con, sc)
    assert without.runs_file is None and list(without.table["run_id"]) == ["tagged-1"]
    assert without.sources == ("Training runs come from the tags training-run and vertex-ai-pipelines-run-billing-id; "
                               "then resource ids matching training-job/([^/]+)$ (SageMaker training job names); "
                               "no runs file was given, so a run listed only in one is not found here and its GPU "
                               "cost counts as in no run")
    note = without.gpu_note("x", money)
    assert "runs file counts only" not in note and "no runs file was given" in note
    assert "$136.13** of which" not in note and "**$272.26**, of which $136.13 is in runs" in note
    assert "runs-file run" not in without.numerator

    with_file = ue.training_runs(con, sc, runs_file)
    assert with_file.runs_file == "runs.csv" and set(with_file.table["run_id"]) == {"tagged-1", "listed-1"}
    assert with_file.sources.endswith("; then the runs file runs.csv")
    assert "a resource of the runs file counts only between its run's start and end" in with_file.gpu_note("x", money)
    assert "runs-file run count in proportion" in with_file.numerator
    assert with_file.attributed_gpu_cost == Decimal("204.192")


def test_runs_gpu_note_without_accelerated_compute():
    con = focus_rows([dict(day="2024-09-05", ServiceName="Amazon Elastic Compute Cloud",
                           x_UsageType="USE1-BoxUsage:m5.large", cost=10)])
    r = ue.training_runs(con, S.resolve(con, {}, {}))
    assert r.gpu_note("the billing period 2024-09", money) == ("No accelerated compute in scope (the billing period "
                                                               "2024-09): no GPU cost for a run to take.")


# ------------------------------------------------------------------------------------------------ item 5


def _bucket(first: str, last: str, gb: float = 1000.0):
    rows = []
    for d in pd.date_range(first, last):
        q = gb / d.days_in_month
        rows.append(dict(day=str(d.date()), ServiceName="Amazon Simple Storage Service", ServiceCategory="Storage",
                         x_UsageType="USE1-TimedStorage-ByteHrs", ConsumedQuantity=q, ConsumedUnit="GB-Mo",
                         PricingQuantity=q, PricingUnit="GB-Mo", cost=Decimal(str(round(q * 0.023, 6))),
                         ResourceId="ml-data", RegionId="us-east-1"))
    return focus_rows(rows)


def test_growth_note_in_a_charge_day_scope_names_the_months_cut_short():
    """Review rr-sto 5 (demo, charge days 5-18 Oct 2026): the note blamed 'an open period (data not complete)';
    October is closed, the scope covers 14 of its 31 days."""
    con = _bucket("2026-08-01", "2026-11-30")
    sc = S.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-10-18"})
    note = st.growth_note(st.growth_table(st.growth(con, "provider", scope=sc)), scope=sc)
    assert "open" not in note
    assert "the scope's charge days cover 2026-10 (14 of 31 days) only in part" in note


def test_growth_note_names_an_open_period_when_that_is_the_reason():
    con = _bucket("2026-10-01", "2026-11-05")  # Oct closed, Nov open (1-5)
    sc = S.resolve(con, {}, {})
    note = st.growth_note(st.growth_table(st.growth(con, "provider", scope=sc)), scope=sc)
    assert "an open billing period (AWS 1\u20135 Nov 2026, open) would read as a drop" in note
    assert "only in part" not in note
    sc = S.resolve(con, {}, {"date_start": "2026-10-15", "date_end": "2026-11-05"})
    note = st.growth_note(st.growth_table(st.growth(con, "provider", scope=sc)), scope=sc)
    assert "2026-10 (17 of 31 days) and 2026-11 (5 of 30 days) only in part" in note and "AWS 1\u20135 Nov" in note
