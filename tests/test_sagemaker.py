"""SageMaker ML instances: one rule for what is one (an ``ml.`` instance type, :data:`finops_kit.units.SAGEMAKER_TYPE_PREFIX`),
spot share over the hours that have a spot market, and commitment sizing that never pools SageMaker with EC2."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
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

    from .test_commitments import _days, _vm

    rows = []
    for d in _days("2026-09-01", 30):
        rows += [_vm("AWS", d, "g5.xlarge", 24, "1.00", "0.70", cid="ri-g5", res="i-g5"),
                 _vm("AWS", d, "g5.xlarge", 24, "1.00", res="i-g5b"),
                 _vm("AWS", d, "ml.g5.2xlarge", 24, "2.00", "1.00", cid="sp-sm", ctype="Savings Plan", res="ep-1",
                     ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "ml.g5.2xlarge", 24, "2.00", res="ep-2", ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "ml.p4d.24xlarge", 24, "30.00", res="job-1", ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-p4d")]
    rows.append(_vm("AWS", "2026-10-01", "p4d.24xlarge", 24, "20.00", res="i-p4d"))
    return focus_rows(rows)


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
    assert list(rec.columns[:4]) == ["provider", "platform", "instance_family", "currency"]
    assert {(f, p) for f, p in zip(rec["instance_family"], rec["platform"], strict=True)} == {
        ("g5", "instances"), ("p4d", "instances"), ("ml.g5", "SageMaker"), ("ml.p4d", "SageMaker")}
