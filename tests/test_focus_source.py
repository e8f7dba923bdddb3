"""FOCUS files in: version upgrade, real-world quirks, exact money, reconciliation, idempotence."""

from __future__ import annotations

import gzip
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.ingest import detect_format

FIX = Path(__file__).parent / "fixtures" / "focus"
QUIRKY = FIX / "quirky_focus_1_2.csv"


def test_quirky_file_normalizes_enums_nulls_timestamps_and_keeps_extra_columns(warehouse):
    res = fk.ingest(str(QUIRKY), warehouse=warehouse)
    assert res.rows == 4
    con = fk.connect(warehouse, read_only=True)
    rows = con.execute(
        "SELECT ChargeCategory, ChargeClass, ChargeFrequency, PricingCategory, ServiceCategory, "
        "ChargePeriodStart, BilledCost, Tags, x_Team, x_VendorExtra FROM focus ORDER BY ChargePeriodStart"
    ).fetchall()
    first = rows[0]
    assert first[:5] == ("Usage", None, "Usage-Based", "Standard", "AI and Machine Learning")
    assert str(first[5]) == "2026-01-01 00:00:00"
    assert first[6] == Decimal("10.50")
    assert "größe-😀" in first[7]
    assert first[8:] == ("vision", "a")
    by_cat = {r[0]: r for r in rows}
    assert by_cat["Tax"][2] == "One-Time" and by_cat["Tax"][6] == Decimal("0.000000000001")
    assert by_cat["Credit"][3] == "Other" and str(by_cat["Credit"][5]) == "2026-01-14 00:00:00"
    assert rows[-1][1] == "Correction" and rows[-1][4] == "Compute"


def test_money_is_exact_and_reconciled_per_period_and_currency(warehouse):
    res = fk.ingest(str(QUIRKY), warehouse=warehouse)
    rec = {(r["billing_period"], r["currency"]): r for r in res.reconciliation}
    jan = rec[("2026-01", "USD")]
    # hand sum: 10.50 + 0.000000000001 - 2.25 ; effective 9.25 + 0.000000000001 - 2.25
    assert jan["source_billed"] == jan["focus_billed"] == Decimal("8.250000000001")
    assert jan["focus_effective"] == Decimal("7.000000000001")
    assert rec[("2026-02", "USD")]["focus_billed"] == Decimal("3.00")
    assert all(r["ok"] for r in res.reconciliation)


def test_official_focus_sample_loads_and_reconciles(shared, warehouse):
    path = shared / "corpus/focus/sample-data/FOCUS-1.0/focus_sample.csv"
    res = fk.ingest(str(path), warehouse=warehouse)
    assert res.rows == 1000
    assert all(r["ok"] for r in res.reconciliation)
    con = fk.connect(warehouse, read_only=True)
    # the non-standard "Id" column of the sample is kept as a custom column
    assert con.execute("SELECT count(x_Id) FROM focus").fetchone()[0] == 1000
    total = con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0]
    assert total == sum(r["source_billed"] for r in res.reconciliation)
    # 1.0 file upgraded to 1.2 columns: InvoiceId (new in 1.2) exists and is NULL; PricingCurrency defaults to
    # the billing currency and the spec's "Other (<category>)" fills a missing ServiceSubcategory
    assert con.execute("SELECT count(InvoiceId), count(*) FILTER (PricingCurrency = BillingCurrency), "
                       "count(*) FILTER (ServiceSubcategory = 'Other (' || ServiceCategory || ')') "
                       "FROM focus").fetchone() == (0, 1000, 1000)


def test_gzip_and_parquet_forms_give_identical_totals(tmp_path, warehouse):
    gz = tmp_path / "f.csv.gz"
    with open(QUIRKY, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    pq = tmp_path / "f.parquet"
    con = fk.connect(":memory:")
    con.execute(f"COPY (SELECT * FROM read_csv('{QUIRKY}', all_varchar=true, nullstr=['NULL', ''])) TO '{pq}' (FORMAT parquet)")
    totals = []
    for f in (QUIRKY, gz, pq):
        res = fk.ingest(str(f), warehouse=str(tmp_path / f"{f.name}.duckdb"))
        totals.append(sorted((r["billing_period"], r["focus_billed"], r["focus_effective"]) for r in res.reconciliation))
    assert totals[0] == totals[1] == totals[2]


def test_reingest_replaces_instead_of_adding(warehouse):
    fk.ingest(str(QUIRKY), warehouse=warehouse)
    second = fk.ingest(str(QUIRKY), warehouse=warehouse)
    assert second.replaced_rows == 4
    con = fk.connect(warehouse, read_only=True)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (4, Decimal("11.250000000001"))
    status = dict(con.execute("SELECT status, count(*) FROM ingest_log GROUP BY 1").fetchall())
    assert status == {"active": 1, "replaced": 1}
    assert all(r[-1] for r in fk.reconciliation_table(con).fetchall())


def test_ai_workload_classification_from_rule_table(warehouse):
    fk.ingest(str(QUIRKY), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    got = dict(con.execute("SELECT ServiceName, x_AiWorkload FROM focus").fetchall())
    assert got["Amazon SageMaker"] == "ML platform"
    assert got["Amazon EC2"] is None


def test_detects_focus_by_header():
    assert detect_format([str(QUIRKY)]).name == "focus"


@pytest.mark.parametrize("folder", ["commitment_discount_scenarios", "commitment_discount_flexibility"])
def test_spec_example_fragments_are_refused_with_the_missing_column(shared, warehouse, folder):
    """The spec's appendix examples are illustrative fragments without BillingCurrency, not billing exports."""
    f = sorted((shared / "corpus/focus/spec/v1.2_examples" / folder).glob("*.csv"))[0]
    with pytest.raises(fk.InputError, match=r"missing required column\(s\) 'BillingCurrency'"):
        fk.ingest(str(f), warehouse=warehouse)


def test_spec_saas_example_with_us_dates_is_refused_not_misread(shared, warehouse):
    """'4/1/25' is not ISO 8601; DuckDB alone would read it as the year 4."""
    f = shared / "corpus/focus/spec/v1.2_examples/saas_examples/spend_agreements/saas_spend_agreements_a1.csv"
    with pytest.raises(fk.InputError, match=r"row 1, column 'BillingPeriodEnd': cannot parse '5/1/25'"):
        fk.ingest(str(f), warehouse=warehouse)


@pytest.mark.parametrize("text, expected", [
    ("2025-10-01T05:30:00Z", "2025-10-01 05:30:00"),
    ("2025-10-01T05:30:00.000Z", "2025-10-01 05:30:00"),
    (" 2025-10-01T05:30:00Z", "2025-10-01 05:30:00"),  # padded: not the fast path, same instant
    ("2025-10-01T07:30:00+02:00", "2025-10-01 05:30:00"),  # an offset is converted, never dropped
    ("2025-10-01 05:30:00", "2025-10-01 05:30:00"),
    ("2025-10-01", "2025-10-01 00:00:00"),
    (None, None),
])
def test_iso_timestamps_read_as_utc(text, expected):
    from finops_kit.sources.base import iso_timestamp
    from finops_kit.warehouse import connect

    con = connect(":memory:")
    try:
        got = con.execute(f"SELECT CAST({iso_timestamp('trim(v)', raw='v')} AS VARCHAR) FROM (SELECT ?::VARCHAR AS v)",
                          [text]).fetchone()[0]
    finally:
        con.close()
    assert got == expected


def test_non_iso_timestamp_is_an_error_not_a_misread():
    import duckdb

    from finops_kit.sources.base import iso_timestamp
    from finops_kit.warehouse import connect

    con = connect(":memory:")
    try:
        for text in ("4/1/25", "4/1/25Z"):
            with pytest.raises(duckdb.Error, match="ISO 8601|Conversion"):
                con.execute(f"SELECT {iso_timestamp('trim(v)', raw='v')} FROM (SELECT ?::VARCHAR AS v)", [text])
    finally:
        con.close()
