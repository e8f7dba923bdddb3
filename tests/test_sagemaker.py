"""SageMaker ML instances: one rule for what is one (an ``ml.`` instance type, :data:`finops_kit.units.SAGEMAKER_TYPE_PREFIX`),
spot share over the hours that have a spot market, and commitment sizing that never pools SageMaker with EC2."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from finops_kit import units

REPO = Path(__file__).resolve().parents[1]

TYPES = [None, "", "ml.p4d.24xlarge", "ML.G5.2xlarge", "ml.p4d", "ml.", "ml", "xml.m5", "p4d.24xlarge", "m_l.x",
         "Standard_NC24ads_A100_v4", "a2-highgpu-8g"]


@pytest.mark.parametrize("name", TYPES, ids=[repr(t) for t in TYPES])
def test_python_and_sql_readings_of_the_sagemaker_rule_agree(name):
    """The Python predicate, its SQL, the commitment platform in Python and SQL and the family's prefix all read
    one constant: a type is SageMaker in one of them exactly when it is in the others."""
    con = duckdb.connect()
    lit = "CAST(NULL AS VARCHAR)" if name is None else "'" + name + "'"
    sql, platform, family = con.execute(
        f"SELECT coalesce({units.sagemaker_type_sql(lit)}, FALSE), {units.commitment_platform_sql(lit)}, "
        f"{units._SAGEMAKER_FAMILY.format(t=lit, family=repr('x'))}").fetchone()
    want = isinstance(name, str) and name.lower().startswith("ml.")
    assert units.is_sagemaker_type(name) is want and sql is want
    assert platform == units.commitment_platform(name) == ("SageMaker" if want else "instances")
    assert family == ("ml.x" if want else "x")
    if name:
        assert units.type_key(name) == con.execute(f"SELECT {units.type_key_sql(lit)}").fetchone()[0]


def test_a_sagemaker_row_is_named_by_its_type_or_its_usage_type():
    """The ingest's SageMaker row (never completed from another row of its ARN) is the same rule over a row:
    x_InstanceType, or the type an AWS usage type names after its colon."""
    con = duckdb.connect()
    rows = [(None, None, False), ("ml.m5.xlarge", None, True), (None, "USE1-Host:ml.m5.xlarge", True),
            (None, "USE1-AsyncInf:ML.g5.xlarge", True), ("g5.xlarge", "USE1-BoxUsage:g5.xlarge", False),
            (None, "USE1-Train:VolumeUsage.gp2", False), ("xml.a", "a:xml.b", False)]
    values = ", ".join(f"({'NULL' if t is None else repr(t)}, {'NULL' if u is None else repr(u)})" for t, u, _ in rows)
    got = con.execute(f"SELECT {units.sagemaker_row_sql('f')} FROM (VALUES {values}) f(x_InstanceType, x_UsageType)"
                      ).fetchall()
    assert [g for (g,) in got] == [w for _, _, w in rows]


def test_the_sagemaker_prefix_is_spelled_in_units_only():
    """No module of the kit spells the ``ml.`` rule again (a quoted ``'ml.'``, ``LIKE 'ml.%'``, ``'%:ml.%'`` or a
    regex ``^ml\\.``): each reads :mod:`finops_kit.units`. The sample generator writes bills, it does not read
    them, and the data tables (``data/*.csv``) are mappings with their own provenance."""
    spelled = re.compile(r"""(['"]\^?|%:)ml(\\\\|\\)?\.(['"%]|$)""", re.M)
    hits = [f"{p.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}"
            for p in sorted((REPO / "finops_kit").rglob("*.py"))
            if p.name != "units.py" and "samples" not in p.parts
            for text in [p.read_text(encoding="utf-8")] for m in spelled.finditer(text)]
    assert hits == []


# ------------------------------------------------------------------------------ commitments: one platform a group
def _ec2_and_sagemaker() -> duckdb.DuckDBPyConnection:
    """September 2026 (closed: a day of October follows): EC2 g5 (1.00/h list, half under a 30%-off RI) and p4d
    (20.00/h), SageMaker ml.g5 endpoints (2 x 2.00/h, one under a 50%-off SageMaker Savings Plan) and an ml.p4d
    training job (30.00/h). On-demand value per hour: EC2 22.00, SageMaker 34.00."""
    from finops_kit.testing import focus_rows

    from .test_commitments import ec2_and_sagemaker_rows

    return focus_rows(ec2_and_sagemaker_rows())


@pytest.mark.parametrize("by", [("provider",), (), ("provider", "region")])
def test_recommend_never_pools_ec2_and_sagemaker_usage(by):
    """Grouped without the family (an API path), EC2 and SageMaker usage were one level of 56.00/h on-demand value
    sized with the EC2 reservation's 30%: a commitment no one can buy (a SageMaker plan never covers EC2, an RI never
    SageMaker). Each group is now one commitment platform, sized with that platform's plans only."""
    from finops_kit import commitments as cm
    from finops_kit import scope

    con = _ec2_and_sagemaker()
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, curves = cm.recommend(con, sc, risk_percentile=10, by=by)
    assert {round(v, 6) for v in rec["mean_level"]} == {22.0, 34.0}  # was {56.0}, at 30% off
    assert "platform" in rec.columns and "platform" in curves.columns
    levels = rec.groupby("platform")["mean_level"].agg(lambda x: {round(v, 6) for v in x}).to_dict()
    assert levels == {"instances": {22.0}, "SageMaker": {34.0}}
    discounts = rec.groupby("platform")["discount"].agg(lambda x: {round(v, 9) for v in x}).to_dict()
    assert discounts == {"instances": {0.3}, "SageMaker": {0.5}}
    assert set(curves["platform"]) == {"instances", "SageMaker"}


def test_recommend_by_family_is_unchanged_but_for_its_platform_column():
    """The report's grouping: a family has one platform, so the groups and their sizing are those of before."""
    from finops_kit import commitments as cm
    from finops_kit import scope

    con = _ec2_and_sagemaker()
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc, risk_percentile=10)
    assert list(rec.columns[:5]) == ["provider", "platform", "operating_system", "instance_family", "currency"]
    assert {(f, p) for f, p in zip(rec["instance_family"], rec["platform"], strict=True)} == {
        ("g5", "instances"), ("p4d", "instances"), ("ml.g5", "SageMaker"), ("ml.p4d", "SageMaker")}


# ---------------------------------------------------------------- spot share: of the hours that could run on spot
def _spot_and_endpoints() -> duckdb.DuckDBPyConnection:
    """One day: team ml runs a SageMaker training job on managed spot (ml.p4d.24xlarge, 10 h = 80 GPU-hours) and a
    notebook (ml.g5.xlarge, 24 on-demand GPU-hours) tagged with the job's run; team serving only an endpoint
    (ml.g5.2xlarge, 24 on-demand GPU-hours); team web EC2 p4d.24xlarge on demand (10 h = 80 GPU-hours).
    Endpoints and notebooks have no spot market (data/no_spot_market.csv): 48 of the 208 GPU-hours."""
    from finops_kit.classify import ai_workload_sql, complete_accelerated_instances
    from finops_kit.testing import focus_rows

    sm = dict(day="2026-10-01", ProviderName="AWS", ServiceName="Amazon SageMaker",
              ServiceCategory="AI and Machine Learning", RegionId="us-east-1", ConsumedUnit="Hours")
    con = focus_rows([
        dict(sm, x_UsageType="USE1-Train:ml.p4d.24xlarge", ResourceId="arn:aws:sagemaker:us-east-1:1:training-job/a",
             ConsumedQuantity=10, cost=120.0, PricingCategory="Dynamic", tags={"team": "ml", "training-run": "r1"}),
        dict(sm, x_UsageType="USE1-Notebk:ml.g5.xlarge", ResourceId="arn:aws:sagemaker:us-east-1:1:notebook/n",
             ConsumedQuantity=24, cost=33.84, PricingCategory="Standard", tags={"team": "ml", "training-run": "r1"}),
        dict(sm, x_UsageType="USE1-Host:ml.g5.2xlarge", ResourceId="arn:aws:sagemaker:us-east-1:1:endpoint/e",
             ConsumedQuantity=24, cost=36.72, PricingCategory="Standard", tags={"team": "serving"}),
        dict(day="2026-10-01", ProviderName="AWS", ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute",
             RegionId="us-east-1", x_UsageType="USE1-BoxUsage:p4d.24xlarge", x_InstanceType="p4d.24xlarge",
             ResourceId="i-1", ConsumedQuantity=10, ConsumedUnit="Hours", cost=219.6, PricingCategory="Standard",
             tags={"team": "web"}),
    ])
    con.execute(f"UPDATE focus SET x_AiWorkload = {ai_workload_sql()}")
    complete_accelerated_instances(con)
    return con


def test_spot_share_leaves_out_hours_without_a_spot_market():
    """Spot share = spot GPU-hours / GPU-hours that could run on spot: 80 / (208 - 48) = 0.5, not 80 / 208 = 0.385
    (the what-if already kept those hours on demand; the share still divided by them). Team ml runs all it can on
    spot: 100%, not 80 / 104; team serving has no hours that could run on spot: no share (NULL), not 0%. The
    no-spot-market hours are shown apart in the tables that report hours."""
    from finops_kit import metrics, scope, spot

    con = _spot_and_endpoints()
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    m = metrics.spot_share(con, sc).set_index("provider").loc["(all)"]
    assert m["spot_share"] == pytest.approx(0.5)
    assert m["accelerator_hours"] == 208 and m["spot_accelerator_hours"] == 80
    assert m["no_spot_market_accelerator_hours"] == 48 and m["no_spot_market_instance_hours"] == 48
    team = spot.spot_coverage(con, by=("team",), scope=sc).df().set_index("team")
    assert team.loc["ml", "spot_accelerator_hours_share"] == 1.0 and team.loc["ml", "spot_hours_share"] == 1.0
    assert team.loc["ml", "spot_cost_share"] == 1.0
    assert team.loc["web", "spot_accelerator_hours_share"] == 0.0
    assert pd.isna(team.loc["serving", "spot_accelerator_hours_share"])
    assert team.loc["serving", "no_spot_market_accelerator_hours"] == 24
    assert team.loc["serving", "no_spot_market_cost"] == pytest.approx(36.72)
    assert team.loc["ml", "total_accelerator_hours"] == 104  # the hours are all still there


def test_every_report_gives_the_same_spot_share():
    """metrics, the summary figure, spot coverage, fk.costs(gpu_only), the tagging audit's families and the training
    runs each computed "spot share" on its own, all over every accelerator-hour; they now read
    units.spot_share_sql and agree (per family: ml.p4d 100%, ml.g5 none, p4d 0%)."""
    import finops_kit as fk
    from finops_kit import metrics, scope, spot, tagging, unit_economics
    from finops_kit import summary as sm

    con = _spot_and_endpoints()
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    headline = metrics.spot_share(con, sc).set_index("provider").loc["(all)", "spot_share"]
    assert headline == pytest.approx(0.5)
    assert sm.figures_of(sm.summarize(con, sc, ["spot_share"]))["spot_share"] == pytest.approx(headline)
    cov = spot.spot_coverage(con, by=("provider",), scope=sc).df()
    assert cov["spot_accelerator_hours_share"].iloc[0] == pytest.approx(headline)
    costs = fk.costs(by="provider", gpu_only=True, con=con, config=str(REPO / "finops.yaml"))
    assert costs["spot_share"].iloc[0] == pytest.approx(headline)
    fam = tagging.accelerator_families(con, scope=sc).set_index("family")["spot_share"]
    assert fam["ml.p4d"] == 100.0 and fam["p4d"] == 0.0 and pd.isna(fam["ml.g5"])
    runs = unit_economics.training_runs(con, sc).table.set_index("run_id")
    assert runs.loc["r1", "spot_share"] == 1.0 and runs.loc["r1", "accelerator_hours"] == 104
