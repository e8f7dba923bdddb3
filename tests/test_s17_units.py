"""Regression review of usage units (session 17): hours the catalog cannot give stay unknown (NULL), hours known to
be 0 are 0, and the cost with unknown hours is named -- in training runs, the commitments headline, the tagging
audit's dev-vs-prod table and a GCP standard export's vCPU row.

The fixtures are the session-16 ones (tests/test_s16_units.py, tests/test_s16_oci_gpu.py) plus the reviewer's row.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import commitments, metrics, scope, tagging, unit_economics
from finops_kit.ingest import ingest

from .test_s16_oci_gpu import MORE, REVIEWER, _report
from .test_s16_units import _con, _cur, _family, _gcp, _runs

M5 = ("BoxUsage:m5.xlarge", "i-m5", "24", "4.608", "m5.xlarge")
P9 = ("BoxUsage:p9.48xlarge", "i-p9", "24", "30.00", "p9.48xlarge")


# ------------------------------------------------------------------- finding 1: training runs and CPU instances
def test_cpu_instance_in_a_run_has_no_gpu_hours_not_unknown_ones(tmp_path: Path) -> None:
    """A run of the on-demand p4d (USD 786.48 + USD 9 transfer on its id, 192 GPU-hours) and an m5.xlarge head node
    (24 h, USD 4.608): the m5 has no GPU, so none of the run's cost has unknown GPU-hours. Before: unknown
    accelerator cost 4.608 and 795.48 / 192 = 4.1431 per GPU-hour (with no type listed as missing); now 0 and
    800.088 / 192 = 4.1671."""
    con = _con(_cur(tmp_path / "cur.csv", [M5]))
    sc = scope.resolve(con, None)
    t = unit_economics.training_runs(con, sc, _runs(tmp_path / "runs.csv", "i-p4d-od;i-m5")).table.iloc[0]
    assert (t.cost, t.accelerator_hours, t.unknown_accelerator_cost) == (800.088, 192, 0)
    assert t.cost_per_gpu_hour == pytest.approx(800.088 / 192)
    assert metrics.unknown_types(con, sc).empty
    au = metrics.metrics(con, sc, runs_file=str(tmp_path / "runs.csv")).ai_units.iloc[0]
    assert au.training_run_unknown_accelerator_cost == 0
    assert au.cost_per_training_gpu_hour == pytest.approx(800.088 / 192)


def test_run_entirely_on_an_unknown_type_has_unknown_gpu_hours(tmp_path: Path) -> None:
    """A run only on a type the catalog lacks (p9.48xlarge, 24 h, USD 30): its GPU-hours are unknown (NULL), not
    0.0 (before: accelerator_hours 0.0); the metrics' training_run_gpu_hours is null too (was 0.0)."""
    con = _con(_cur(tmp_path / "cur.csv", [P9]))
    sc = scope.resolve(con, None)
    t = unit_economics.training_runs(con, sc, _runs(tmp_path / "runs.csv", "i-p9")).table.iloc[0]
    assert pd.isna(t.accelerator_hours) and t.spot_accelerator_hours == 0  # none ran on spot: known 0
    assert (t.cost, t.unknown_accelerator_cost) == (30, 30) and pd.isna(t.cost_per_gpu_hour)
    m = metrics.metrics(con, sc, runs_file=str(tmp_path / "runs.csv"))
    au = m.to_dict()["ai_units"][0]
    assert au["training_run_gpu_hours"] is None and au["cost_per_training_gpu_hour"] is None
    assert au["training_run_unknown_accelerator_cost"] == 30
    # a known run beside it keeps the known sum (units.known_total's rule: NULL only when none is known)
    con = _con(_cur(tmp_path / "cur2.csv", [P9]))
    (tmp_path / "runs2.csv").write_text("run_id,start,end,resource_ids\n"
                                        "run-1,2026-11-05T00:00:00Z,2026-11-06T00:00:00Z,i-p9\n"
                                        "run-2,2026-11-05T00:00:00Z,2026-11-06T00:00:00Z,i-p4d-od\n")
    au = metrics.metrics(con, scope.resolve(con, None), runs_file=str(tmp_path / "runs2.csv")).ai_units.iloc[0]
    assert au.training_run_gpu_hours == 192 and au.cost_per_training_gpu_hour == pytest.approx(795.48 / 192)


def test_sagemaker_cpu_instance_beside_gpu_instance_on_one_arn(tmp_path: Path) -> None:
    """One SageMaker endpoint ARN billing an ml.p4d.24xlarge (24 h, USD 900) and an ml.m5.xlarge (24 h, USD 5):
    the m5 (not accelerated compute, classed by its own type) made the whole endpoint's GPU-hours unknown: ml.p4d
    had no rate per GPU-hour, USD 900 of unknown accelerator cost, and ml.p4d.24xlarge was listed as a type
    missing from the catalog. Now: 900 / 192 = 4.6875 per GPU-hour, no unknown cost, no type listed."""
    arn = "arn:aws:sagemaker:us-east-1:222222222222:endpoint/ep-1"
    con = _con(_cur(tmp_path / "cur.csv", [("Host:ml.p4d.24xlarge", arn, "24", "900.00", "ml.p4d.24xlarge"),
                                           ("Host:ml.m5.xlarge", arn, "24", "5.00", "ml.m5.xlarge")]))
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    p4d = _family(acc, "AWS", "ml.p4d", "On-demand")
    assert (p4d.accelerator_hours, p4d.rate_per_accelerator_hour) == (192, Decimal("4.6875"))
    assert p4d.unknown_accelerator_cost == 0 and sum(acc.unknown_accelerator_cost) == 0
    assert metrics.unknown_types(con, sc).empty


# -------------------------------------------------------- finding 2: commitments headline with unknown hours
def test_commitments_summary_keeps_unknown_eligible_hours_unknown(tmp_path: Path) -> None:
    """GCP GPUs without machine type (USD 906 on demand): `finops-kit metrics` printed 0 eligible instance-hours
    while commitments.coverage said NULL. Now NULL in both, printed as null (never NaN), and the report's
    overview says the hours are unknown, not that nothing ran."""
    con = _con(_gcp(tmp_path / "gcp.jsonl"))
    sc = scope.resolve(con, None)
    s = commitments.summary(con, sc).set_index("provider")
    assert pd.isna(s.loc["Google Cloud", "eligible_hours"]) and pd.isna(s.loc["(all)", "eligible_hours"])
    assert s.loc["(all)", "on_demand_cost"] == Decimal("906") and s.loc["(all)", "coverage_hours"] is None
    cov = commitments.coverage(con, sc, by=("provider",)).iloc[0]
    assert pd.isna(cov.eligible_hours)
    m = metrics.metrics(con, sc)
    assert m.to_dict()["commitments"][0]["eligible_hours"] is None
    text = m.to_text()
    assert "NaN" not in text and "None" not in text
    head = s.reset_index().iloc[[1]].iloc[0]
    lines = commitments.overview_lines(head, commitments.inventory(con, sc), commitments.expiry(con, sc),
                                       pd.Timestamp("2026-11-30").date())
    assert "instance-hours of the eligible accelerated usage in scope are unknown" in lines[0]
    assert "no eligible usage" not in lines[0]


def test_commitments_summary_all_row_is_the_known_sum(tmp_path: Path) -> None:
    """AWS (known hours) beside GCP (unknown): the (all) row is AWS's eligible hours, not NULL and not AWS + 0."""
    con = _con(_cur(tmp_path / "cur.csv"), _gcp(tmp_path / "gcp.jsonl"))
    s = commitments.summary(con, scope.resolve(con, None)).set_index("provider")
    aws = s.loc["AWS", "eligible_hours"]
    assert aws > 0 and pd.isna(s.loc["Google Cloud", "eligible_hours"])
    assert s.loc["(all)", "eligible_hours"] == aws
    assert s.loc["(all)", "coverage_hours"] == pytest.approx(s.loc["AWS", "coverage_hours"])


def test_commitments_summary_oci_gpu_eligible_hours_unknown(shared, tmp_path: Path) -> None:
    """OCI GPU spend (USD 2,144 on demand eligible): eligible instance-hours were 0.0, now NULL."""
    con = fk.connect(":memory:")
    ingest([_report(tmp_path / "oci.csv", shared, REVIEWER + MORE)], con=con, progress=False)
    s = commitments.summary(con, scope.resolve(con, {})).set_index("provider")
    assert pd.isna(s.loc["Oracle", "eligible_hours"]) and pd.isna(s.loc["(all)", "eligible_hours"])
    assert s.loc["Oracle", "on_demand_cost"] == Decimal("2144")


# ------------------------------------------------------------------ finding 3: tagging audit's dev vs prod
def test_tagging_environments_gpu_hours_unknown_for_oci(shared, tmp_path: Path) -> None:
    """OCI GPU spend (USD 2,336) had gpu_hours 0.0 in the dev-vs-prod table; its instance-hours are unknown (an OCI
    GPU SKU names no shape): gpu_hours NULL, with the cost named (unknown_instance_cost 2,336)."""
    con = fk.connect(":memory:")
    ingest([_report(tmp_path / "oci.csv", shared, REVIEWER + MORE)], con=con, progress=False)
    env = tagging.TagAudit(con).environments().iloc[0]
    assert (env.environment, env.gpu_cost, env.unknown_instance_cost) == ("(untagged)", 2336, 2336)
    assert pd.isna(env.gpu_hours)


def test_tagging_environments_known_hours_unchanged(tmp_path: Path) -> None:
    """AWS instances the catalog knows: GPU hours as before (p4d 24 + 10, p5 24, g6f 24 = 82), no unknown cost."""
    con = _con(_cur(tmp_path / "cur.csv"))
    env = tagging.TagAudit(con).environments()
    assert env.gpu_hours.sum() == 82 and (env.unknown_instance_cost == 0).all()


# ------------------------------------------------- finding 4: GCP standard export (no resource name), a2 core row
def _standard(tmp_path: Path) -> Path:
    """The GCP fixture without ``resource`` (GCP's standard usage-cost export names no resource)."""
    rows = [json.loads(line) for line in _gcp(tmp_path / "g.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("resource")
    path = tmp_path / "g_std.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gcp_standard_export_a2_core_row_has_unknown_gpu_hours(tmp_path: Path) -> None:
    """The a2 core row (USD 76) stands alone: its series 'a2' is no machine type, so its instance's accelerator
    count is unknown. It was family a2 with 0.0 accelerator-hours; now NULL with its cost as
    unknown_accelerator_cost 76, listed among the unknown types. The nvidia-a100 GPU row keeps its 192 GPU-hours
    (560 / 192 = 2.9167: the core cost cannot be joined to it without a resource name)."""
    con = _con(_standard(tmp_path))
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    a2 = _family(acc, "Google Cloud", "a2", "On-demand")
    assert pd.isna(a2.accelerator_hours) and a2.unknown_accelerator_cost == Decimal("76")
    a100 = _family(acc, "Google Cloud", "nvidia-a100", "On-demand")
    assert (a100.accelerator_hours, a100.unknown_accelerator_cost) == (192, 0)
    tot = metrics.spot_share(con, sc).iloc[0]
    assert tot.accelerator_hours == 480 and tot.unknown_accelerator_cost == Decimal("76")
    unknown = metrics.unknown_types(con, sc).set_index("instance_type")
    assert unknown.loc["a2", "unknown"] == "accelerator-hours, instance-hours"


def test_gcp_detailed_export_unknown_type_gpu_hours_stay_known(tmp_path: Path) -> None:
    """With the resource name the a2 core row is one instance with its GPU row, whose GPU-hours are measured: the
    vCPU row's unknown accelerator count does not make them unknown (636 / 192 = 3.3125, no unknown cost)."""
    con = _con(_gcp(tmp_path / "g.jsonl"))
    acc = metrics.accelerators(con, scope.resolve(con, None))
    a100 = _family(acc, "Google Cloud", "nvidia-a100", "On-demand")
    assert (a100.accelerator_hours, a100.rate_per_accelerator_hour) == (192, Decimal("3.3125"))
    assert sum(acc.unknown_accelerator_cost) == 0
