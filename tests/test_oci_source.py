"""OCI cost reports: the corpus sample loads, reconciles, maps services and tags, and passes the FOCUS validator."""

from __future__ import annotations

import csv
import gzip
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


# ---- incremental report files ---------------------------------------------------------------------------------
# OCI writes a tenancy's cost report as INCREMENTAL files (reports/cost-csv/<16-digit sequence number>.csv.gz):
# each holds new line items (unique lineItem/referenceNo), several files a day, corrections as new lines. Each file
# is therefore its own replacement key: the next file of the same day is added, the same file again replaces itself.

def _money(rows: list[dict]) -> Decimal:
    """The sample's billed total as the warehouse stores it (each amount rounded to 12 places, then summed)."""
    return sum((Decimal(r["cost/myCost"]).quantize(Decimal("1e-12"), ROUND_HALF_UP) for r in rows), Decimal(0))


def _write(path, header: list[str], rows: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture()
def oci_parts(oci_file, tmp_path):
    """The sample split by hour into the two files OCI would deliver for one day (same tenancy, month and day):
    ``(first file, second file, header, rows of the first, rows of the second)``."""
    with open(oci_file, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or []), list(reader)
    early = [r for r in rows if r["lineItem/intervalUsageStart"][11:13] < "08"]
    late = [r for r in rows if r["lineItem/intervalUsageStart"][11:13] >= "08"]
    assert early and late and {r["lineItem/intervalUsageStart"][:10] for r in rows} == {"2023-11-13"}
    first = _write(tmp_path / "oci" / "0001000000000001.csv", header, early)
    second = _write(tmp_path / "oci" / "0001000000000002.csv", header, late)
    return first, second, header, early, late


def _totals(warehouse: str) -> tuple:
    con = fk.connect(warehouse, read_only=True)
    try:
        got = con.execute("SELECT strftime(BillingPeriodStart, '%Y-%m'), count(*), sum(BilledCost), "
                          "sum(EffectiveCost), count(DISTINCT x_LineItemId) FROM focus GROUP BY ALL").fetchall()
        rec = fk.reconciliation_table(con).fetchall()
    finally:
        con.close()
    return got, rec


def test_oci_files_of_one_day_ingested_one_by_one_are_all_kept(oci_parts, tmp_path):
    """Found by a review: the second incremental file of a day covered every stored usage day of the tenancy's
    month, so it REPLACED the first (billed 1.399941 of 2.523589) and reconcile still said ok."""
    first, second, _, early, late = oci_parts
    one_by_one, together = str(tmp_path / "one_by_one.duckdb"), str(tmp_path / "together.duckdb")
    r1 = fk.ingest(str(first), warehouse=one_by_one)
    r2 = fk.ingest(str(second), warehouse=one_by_one)
    assert (r1.rows, r2.rows) == (len(early), len(late)) and r2.replaced_rows == 0
    fk.ingest([str(first), str(second)], warehouse=together)
    (got,), rec = _totals(one_by_one)
    total = _money(early + late)
    assert got == ("2023-11", 506, total, total, 506)
    assert _totals(together)[0] == [got]
    # both ingests stay in the reconciliation, each with its own file's rows and money, and both are ok
    assert sorted((r[4], r[6]) for r in rec) == sorted([(len(early), _money(early)), (len(late), _money(late))])
    assert all(r[-1] for r in rec)


def test_oci_same_file_ingested_again_is_stored_once(oci_parts, tmp_path, warehouse):
    """A re-run over the same file replaces it, also when it was downloaded under another name: the file id is
    the 16-digit sequence number in its name (``reports/cost-csv/0001000000000001.csv.gz`` as the bucket names it,
    ``reports_cost-csv_0001000000000001.csv.gz`` as some download tools flatten it)."""
    first, second, header, early, late = oci_parts
    fk.ingest(str(first), warehouse=warehouse)
    fk.ingest(str(second), warehouse=warehouse)
    again = fk.ingest(str(first), warehouse=warehouse)
    assert again.replaced_rows == len(early)
    flat = _write(tmp_path / "download" / "reports_cost-csv_0001000000000001.csv.gz", header, early)
    again = fk.ingest(str(flat), warehouse=warehouse)
    assert again.replaced_rows == len(early) and again.rows == len(early)
    (got,), rec = _totals(warehouse)
    assert got[1:3] == (506, _money(early + late)) and got[-1] == 506
    assert all(r[-1] for r in rec) and sum(r[4] for r in rec) == 506


def test_oci_rows_carry_their_file_key_and_line_item_id(oci_parts, oci_file, warehouse):
    first, second, _, early, late = oci_parts
    fk.ingest([str(first), str(second), str(oci_file.parent / "oci_cost_report_sample.csv")], warehouse=warehouse,
              dedupe=True)
    con = fk.connect(warehouse, read_only=True)
    tenancy = early[0]["lineItem/tenantId"]
    keys = dict(con.execute("SELECT x_SourceKey, count(*) FROM focus GROUP BY ALL").fetchall())
    # the whole sample repeats both parts' line items: with --dedupe they are kept once, from the parts
    assert keys == {f"oci|{tenancy}|2023-11|0001000000000001": len(early),
                    f"oci|{tenancy}|2023-11|0001000000000002": len(late)}
    ids = dict(con.execute("SELECT x_LineItemId, x_SourceFile FROM focus").fetchall())
    assert set(ids) == {r["lineItem/referenceNo"] for r in early + late}


def test_oci_line_item_repeated_in_two_files_of_one_call_is_refused(oci_parts, tmp_path, warehouse):
    """Within one call, a line item (lineItem/referenceNo) in two files is a repeat even when the copy's values
    differ (they are not copies, so --dedupe cannot choose either)."""
    first, _, header, early, _ = oci_parts
    changed = [dict(r, **{"cost/myCost": "1"}) if i == 0 else r for i, r in enumerate(early)]
    copy = _write(tmp_path / "copy" / "0001000000000009.csv", header, changed)
    for dedupe in (False, True):
        with pytest.raises(fk.InputError, match="lineItem/referenceNo"):
            fk.ingest([str(first), str(copy)], warehouse=warehouse, dedupe=dedupe)


def test_oci_line_items_already_stored_from_another_file_are_refused(oci_parts, tmp_path, warehouse):
    first, _, header, early, _ = oci_parts
    fk.ingest(str(first), warehouse=warehouse)
    renamed = _write(tmp_path / "elsewhere" / "copy-of-the-first.csv", header, early)
    con = fk.connect(warehouse, read_only=True)
    before = con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone()
    con.close()
    with pytest.raises(fk.InputError, match=rf"copy-of-the-first\.csv: {len(early):,} line item\(s\) already stored "
                                            r"from .*\.csv \(same lineItem/referenceNo\).*count them twice"):
        fk.ingest(str(renamed), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == before  # nothing written
    con.close()


def test_a_warehouse_keyed_before_per_file_keys_is_upgraded_not_doubled(oci_parts, warehouse):
    """OCI rows stored before each file had its own key carry ``oci|tenancy|month`` and no x_LineItemId: the same
    file ingested again was added beside them (review: 1,012 rows, twice the bill, reconcile ok). Their keys are
    upgraded to the per-file key first, so the re-run replaces them; files named without a sequence number keep
    their folder in the key (dl1/cost_report.csv and dl2/cost_report.csv are two files)."""
    first, second, header, early, late = oci_parts
    fk.ingest(str(first), warehouse=warehouse)
    con = fk.connect(warehouse, write=True)
    con.execute("UPDATE focus SET x_SourceKey = array_to_string(string_split(x_SourceKey, '|')[1:3], '|'), "
                "x_LineItemId = NULL")
    con.close()
    fk.ingest(str(first), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    n, keys = con.execute("SELECT count(*), list(DISTINCT x_SourceKey) FROM focus").fetchone()
    con.close()
    assert n == len(early) and len(keys) == 1 and keys[0].endswith("|0001000000000001")
    a = _write(first.parent.parent / "dl1" / "cost_report.csv", header, early)
    b = _write(first.parent.parent / "dl2" / "cost_report.csv", header, late)
    wh2 = str(first.parent.parent / "w2.duckdb")
    fk.ingest(str(a), warehouse=wh2)
    fk.ingest(str(b), warehouse=wh2)
    fk.ingest(str(a), warehouse=wh2)  # the same file again replaces itself
    con = fk.connect(wh2, read_only=True)
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == len(early) + len(late)
    con.close()


def test_oci_blank_cell_every_row_needs_is_named_by_file_row_and_column(oci_parts, tmp_path, warehouse):
    """A blank currency on the 3rd data row: one line naming the file, the row and the report column, and nothing
    written (``sources.base.first_bad_cell``, shared with the base diagnosis and CUR 2.0's map columns)."""
    _, _, header, early, _ = oci_parts
    rows = [dict(r) for r in early[:5]]
    rows[2]["cost/currencyCode"] = "  "
    bad = _write(tmp_path / "bad" / "0001000000000009.csv", header, rows)
    with pytest.raises(fk.InputError) as err:
        fk.ingest(str(bad), warehouse=warehouse)
    text = str(err.value)
    assert "0001000000000009.csv" in text and "cost/currencyCode" in text and "row 3" in text, text
    assert "every OCI cost report row needs one" in text and "\n" not in text
    from pathlib import Path

    assert not Path(warehouse).exists()  # refused before anything was written
