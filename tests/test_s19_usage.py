"""The accelerated usage relation chooses an accelerated instance's rows before it derives their usage measures
(units.accelerated_usage_sql: a few columns read for the instances' keys, only their rows carried through
units.row_sql): the same rows and columns as deriving every charge's measures first and keeping the accelerated
instances' rows after -- the formulation it replaced, kept here as the reference -- on bills shaped like the real
ones (a GCP VM billed per component with a CUD credit, spot and TPU VMs, a CUD's fee, AWS and Azure unused
commitments, an Azure VM-day split over two classes with its licence row, transfer billed on a GPU instance) and on
the sample warehouse, for the whole of it and for one month, and through the OS relation the spot and commitment
analyses read."""

from __future__ import annotations

import pytest

pytest.importorskip("duckdb")

import finops_kit as fk  # noqa: E402
from finops_kit import units  # noqa: E402
from finops_kit.ingest import ingest  # noqa: E402
from finops_kit.scope import Scope, resolve  # noqa: E402
from finops_kit.spot_prices import operating_system_rows_sql  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

from .test_s17_review2 import AZ, _two_class_vm  # noqa: E402
from .test_units import DAY, _aws_azure, _export  # noqa: E402


def _reference(where: str = "TRUE", source: str = "focus") -> str:
    """The relation as it was derived before: every charge's measures (row_sql), then the accelerated instances'
    rows kept by a join on their keys; the groupings and the final projection are the production's own."""
    new = units.accelerated_usage_sql(where, source)
    _, tail = new.split("\n      _anchor AS (", 1)
    key = ", ".join(units.INSTANCE_KEY)
    acc = units.accelerated_row_sql()
    head = f"""
      WITH _u AS ({units.row_sql(f"({where}) AND {units.instance_charges_sql()}", source)}),
      _acc_keys AS (SELECT DISTINCT {key} FROM _u WHERE ResourceId IS NOT NULL AND {acc}),
      _rows AS (
        SELECT _u.*, coalesce(_unit_role = 'vcpu' AND _hours IS NOT NULL AND accelerators_per_instance IS NULL
                              AND {acc}, FALSE) AS _vcpu_ah_unknown
        FROM _u LEFT JOIN _acc_keys k USING ({key})
        WHERE (ResourceId IS NULL AND {acc}) OR k.ResourceId IS NOT NULL),"""
    return head + "\n      _anchor AS (" + tail


def _same(con, got: str, want: str) -> int:
    """Same column names and types in the same order, and the same multiset of rows; returns the row count."""
    assert con.execute(f"DESCRIBE SELECT * FROM ({got})").fetchall() == \
        con.execute(f"DESCRIBE SELECT * FROM ({want})").fetchall()
    diff = con.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM ({got}) EXCEPT ALL SELECT * FROM ({want}))), "
                   f"(SELECT count(*) FROM (SELECT * FROM ({want}) EXCEPT ALL SELECT * FROM ({got})))").fetchone()
    assert diff == (0, 0)
    return con.execute(f"SELECT count(*) FROM ({got})").fetchone()[0]


def _check(con, sc: Scope) -> int:
    rows = sc.rows_sql()
    got, want = units.accelerated_usage_sql(source=rows), _reference(source=rows)
    n = _same(con, got, want)
    _same(con, f"SELECT * FROM {operating_system_rows_sql(f'({got})', rows)}",
          f"SELECT * FROM {operating_system_rows_sql(f'({want})', rows)}")
    return n


def test_the_accelerated_usage_is_the_reference_relation_on_bills_shaped_like_the_real_ones(tmp_path):
    con = fk.connect(":memory:")
    path = tmp_path / "export.jsonl"
    _export(path)
    ingest([str(path)], con=con, progress=False)
    extra = [dict(r, ResourceId="vm-z", day="2026-10-05") for r in _two_class_vm(6, 18)[:3]]
    extra += [dict(AZ, day=DAY, ResourceId="vm-z", ServiceCategory="Networking", x_UsageType="Data Transfer Out",
                   ConsumedUnit="GB", ConsumedQuantity="100", cost="8.7", x_AiWorkload=None),
              dict(AZ, day=DAY, ResourceId="vm-cpu", x_AiWorkload=None, x_InstanceType="Standard_D4s_v5",
                   x_UsageType="Dsv5 Series D4s v5", cost="4.6"),
              dict(AZ, day=DAY, ResourceId=None, x_UsageType="NCads A100 v4 Series NC24ads A100 v4", cost="3.5")]
    focus_rows(_aws_azure() + _two_class_vm(12, 12) + extra, con)
    assert _check(con, resolve(con)) > 50
    assert _same(con, units.accelerated_usage_sql(), _reference()) > 50
    # a where of the callers' kind (guard, spot): rows of some instances only
    where = "lower(ResourceId) IN ('vm-y', 'vm-z', 'vm-cud')"
    assert _same(con, units.accelerated_usage_sql(where), _reference(where)) > 5


@pytest.mark.parametrize("params", [{}, {"billing_period_start": "2026-10", "billing_period_end": "2026-10"}])
def test_the_accelerated_usage_is_the_reference_relation_on_the_sample_warehouse(sample_warehouse, params):
    con = fk.connect(sample_warehouse)
    try:
        assert _check(con, resolve(con, params=params)) > 1000
    finally:
        con.close()
