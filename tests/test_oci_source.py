"""OCI cost reports: the corpus sample loads, reconciles, maps services and tags, and passes the FOCUS validator."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal

import pytest

import finops_kit as fk
from finops_kit.export import export_focus

from .focus_validator import TOP_RULE, find_python312, validate


@pytest.fixture()
def oci_file(shared):
    return shared / "corpus/focus/provider-native/oci/oci_cost_report_sample.csv"


def test_oci_sample_loads_and_reconciles_to_the_penny(oci_file, warehouse):
    with open(oci_file, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # money is stored as DECIMAL(38,12): each amount rounded half away from zero to 12 places, then summed exactly
    hand_total = sum(Decimal(r["cost/myCost"]).quantize(Decimal("1e-12"), ROUND_HALF_UP) for r in rows)
    res = fk.ingest(str(oci_file), warehouse=warehouse)
    assert res.source_format == "oci" and res.rows == len(rows) == 506
    (rec,) = res.reconciliation
    assert rec["billing_period"] == "2023-11" and rec["currency"] == "USD" and rec["ok"]
    assert rec["focus_billed"] == hand_total


def test_oci_mapping_service_categories_accounts_and_tags(oci_file, warehouse):
    fk.ingest(str(oci_file), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    cats = dict(con.execute("SELECT ServiceName, ServiceCategory FROM focus GROUP BY ALL").fetchall())
    assert cats["Monitoring"] == "Management and Governance" and cats["Block Volume"] == "Storage"
    assert con.execute("SELECT DISTINCT BillingAccountName FROM focus").fetchall() == [("platformpm2022",)]
    tag = con.execute("SELECT json_extract_string(Tags, '$.\"Valtest.Cat\"') FROM focus "
                      "WHERE Tags IS NOT NULL AND Tags::VARCHAR LIKE '%Valtest%' LIMIT 1").fetchone()[0]
    assert tag == "boots"
    # rows without any tag value get NULL Tags, not an empty object
    assert con.execute("SELECT count(*) FROM focus WHERE Tags::VARCHAR = '{}'").fetchone()[0] == 0
    assert con.execute("SELECT min(BillingPeriodStart), max(BillingPeriodEnd) FROM focus").fetchone() == (
        __import__("datetime").datetime(2023, 11, 1), __import__("datetime").datetime(2023, 12, 1))


@pytest.mark.slow
def test_oci_normalized_output_passes_focus_validator(oci_file, tmp_path, shared):
    if find_python312() is None:
        pytest.skip("python3.12 is not installed (the FOCUS validator needs it)")
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest(str(oci_file), warehouse=wh)
    out = tmp_path / "oci.parquet"
    export_focus(fk.connect(wh, read_only=True), str(out))
    results = validate(out, shared / "tools" / "focus-validator", tmp_path)
    assert results[TOP_RULE] == "ok", sorted(r for r, m in results.items() if m != "ok")
