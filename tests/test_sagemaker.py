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
