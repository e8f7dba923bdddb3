"""Bad input: one line naming the file, the row/column and what was expected; the warehouse is left unchanged."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main

FIX = Path(__file__).parent / "fixtures" / "focus"
GOOD = FIX / "quirky_focus_1_2.csv"


def snapshot(warehouse: str) -> tuple:
    con = fk.connect(warehouse, read_only=True)
    try:
        return (
            con.execute("SELECT count(*), sum(BilledCost), string_agg(DISTINCT x_IngestId) FROM focus").fetchone(),
            con.execute("SELECT count(*) FROM ingest_log").fetchone(),
            con.execute("SELECT count(*) FROM reconciliation").fetchone(),
            tuple(r[0] for r in con.execute("DESCRIBE focus").fetchall()),
        )
    finally:
        con.close()


@pytest.fixture()
def loaded(warehouse):
    fk.ingest(str(GOOD), warehouse=warehouse)
    return warehouse


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _variant(tmp_path: Path, name: str, old: str, new: str, line: int = 2) -> str:
    lines = GOOD.read_text(encoding="utf-8").splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return _write(tmp_path / name, "\n".join(lines) + "\n")


def assert_refused(warehouse: str, paths: list[str], pattern: str, capsys) -> str:
    before = snapshot(warehouse)
    code = main(["ingest", *paths, "--warehouse", warehouse, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("finops-kit: error: ")
    import re

    assert re.search(pattern, err), err
    assert snapshot(warehouse) == before
    return err


def test_empty_file(loaded, tmp_path, capsys):
    p = _write(tmp_path / "empty.csv", "")
    assert_refused(loaded, [p], r"empty\.csv: empty file; expected a header row", capsys)


def test_header_only_file(loaded, tmp_path, capsys):
    p = _write(tmp_path / "header.csv", GOOD.read_text().splitlines()[0] + "\n")
    assert_refused(loaded, [p], r"header\.csv: no billing rows found", capsys)


def test_unknown_format_lists_what_was_seen(loaded, tmp_path, capsys):
    p = _write(tmp_path / "other.csv", "date,amount,what\n2026-01-01,3,x\n")
    err = assert_refused(loaded, [p], r"other\.csv: unknown billing export format; saw columns \[date, amount, what\]", capsys)
    assert "focus (BilledCost, ChargePeriodStart, BillingPeriodStart)" in err


def test_unparseable_number_names_file_row_and_column(loaded, tmp_path, capsys):
    p = _variant(tmp_path, "badnum.csv", "10.50,111", "ten,111", line=2)
    assert_refused(loaded, [p], r"badnum\.csv, row 1, column 'BilledCost': cannot parse 'ten'; expected a number", capsys)


def test_unparseable_date_names_file_row_and_column(loaded, tmp_path, capsys):
    p = _variant(tmp_path, "baddate.csv", "2026-01-15T00:00:00Z", "15/01/2026", line=4)
    assert_refused(loaded, [p], r"baddate\.csv, row 3, column 'ChargePeriodEnd': cannot parse '15/01/2026'; "
                   r"expected a date/time", capsys)


def test_missing_required_column(loaded, tmp_path, capsys):
    lines = GOOD.read_text().splitlines()
    header = lines[0].split(",")
    idx = header.index("EffectiveCost")
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out)
    for row in csv.reader(lines):
        w.writerow(row[:idx] + row[idx + 1:])
    p = _write(tmp_path / "nocol.csv", out.getvalue())
    assert_refused(loaded, [p], r"nocol\.csv: missing required column\(s\) 'EffectiveCost' for format focus", capsys)


def test_truncated_gzip(loaded, tmp_path, capsys):
    data = gzip.compress(GOOD.read_bytes() * 200)
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    assert_refused(loaded, [str(p)], r"cut\.csv\.gz: cannot read file.*(truncated|corrupt)", capsys)


def test_several_formats_in_one_call_are_one_transaction(loaded, tmp_path, capsys, shared):
    aws = shared / "corpus/raw/aws/legacy_cur/koku__test_cur.csv"
    assert main(["ingest", str(GOOD), str(aws), "--warehouse", loaded, "--no-progress"]) == 0
    con = fk.connect(loaded, read_only=True)
    try:
        assert con.execute("SELECT list(DISTINCT x_SourceFormat ORDER BY x_SourceFormat) FROM focus").fetchone()[0] \
            == ["aws-cur", "focus"]
    finally:
        con.close()


def test_unsupported_file_type(loaded, tmp_path, capsys):
    p = _write(tmp_path / "bill.xlsx", "not really")
    assert_refused(loaded, [p], r"bill\.xlsx: unsupported file type", capsys)


def test_missing_file(loaded, tmp_path, capsys):
    assert_refused(loaded, [str(tmp_path / "nope.csv")], r"nope\.csv: (file not found|no file matches)", capsys)


def test_reconciliation_failure_rolls_back(loaded, monkeypatch, capsys):
    """A mapping bug that loses money must never be written: simulate one by breaking the mapping."""
    from finops_kit.sources.focus import FocusSource

    original = FocusSource.focus_sql
    monkeypatch.setattr(FocusSource, "focus_sql",
                        lambda self, staged: original(self, staged) + " WHERE ChargeCategory <> 'Credit'")
    err = assert_refused(loaded, [str(GOOD)], r"reconciliation failed for 1 period/currency total\(s\), "
                         r"first 2026-01 USD: source billed 8\.250000000001 vs FOCUS BilledCost 10\.500000000001", capsys)
    assert "nothing was written" in err


def test_cli_reconcile_prints_table(loaded, capsys):
    assert main(["reconcile", "--warehouse", loaded]) == 0
    out = capsys.readouterr().out
    assert "2026-01" in out and "8.250000" in out and "0 failing" in out


# ------------------------------------------------------------------ native formats: a rejected row is named
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def _csv_excerpt(src: Path, dest: Path, column: str, row: int, rows: int = 12) -> str:
    """The header and first ``rows`` data rows of a real-shaped export, with ``column`` emptied in data row ``row``."""
    import csv

    opener = gzip.open if src.name.endswith(".gz") else open
    with opener(src, "rt", newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = [next(reader) for _ in range(rows)]
    body[row - 1][header.index(column)] = ""
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *body])
    return str(dest)


def _native_case(kind: str, tmp_path: Path, shared_dir: Path | None) -> tuple[str, str, str]:
    """(file, FOCUS column, what was expected) of an excerpt of a sample export whose data row 5 lacks a value."""
    money, date = "expected a number", "expected a date/time"
    if kind == "aws-cur-cost":
        src = sorted(SAMPLES.glob("aws-cur-legacy/**/*.csv.gz"))[0]
        return _csv_excerpt(src, tmp_path / "cur-1.csv", "lineItem/UnblendedCost", 5), "BilledCost", money
    if kind == "aws-cur-date":
        src = sorted(SAMPLES.glob("aws-cur-legacy/**/*.csv.gz"))[0]
        return _csv_excerpt(src, tmp_path / "cur-1.csv", "lineItem/UsageStartDate", 5), "ChargePeriodStart", date
    if kind == "azure":
        src = sorted(SAMPLES.glob("azure/actual/*.csv.gz"))[0]
        return _csv_excerpt(src, tmp_path / src.name.removesuffix(".gz"), "CostInBillingCurrency", 5), "BilledCost", money
    if kind == "oci":
        if shared_dir is None:
            pytest.skip("../shared corpus not available")
        src = shared_dir / "corpus/focus/provider-native/oci/oci_cost_report_sample.csv"
        return _csv_excerpt(src, tmp_path / "oci.csv", "cost/myCost", 5), "BilledCost", money
    if kind == "gcp":
        import json

        src = sorted(SAMPLES.glob("gcp/*.jsonl.gz"))[0]
        with gzip.open(src, "rt", encoding="utf-8") as fh:
            lines = [json.loads(next(fh)) for _ in range(12)]
        lines[4]["usage_end_time"] = None
        dest = tmp_path / src.name.removesuffix(".gz")
        dest.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        return str(dest), "ChargePeriodEnd", date
    import duckdb  # aws-cur2: Parquet, as the CUR 2.0 export writes it

    src = sorted(SAMPLES.glob("aws-cur2/**/*.parquet"))[0]
    dest = tmp_path / "acme-ai-cur2" / "data" / "BILLING_PERIOD=2025-10" / "acme-ai-cur2-00001.snappy.parquet"
    dest.parent.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET threads = 1")  # the excerpt keeps the file's row order
    con.execute(f"COPY (SELECT * EXCLUDE (_n) REPLACE (CASE WHEN _n = 5 THEN NULL ELSE line_item_unblended_cost END "
                f"AS line_item_unblended_cost) FROM (SELECT *, row_number() OVER () AS _n FROM read_parquet('{src}') "
                f"LIMIT 12) ORDER BY _n) TO '{dest}'")
    con.close()
    return str(dest), "BilledCost", money


@pytest.mark.parametrize("kind", ["aws-cur-cost", "aws-cur-date", "aws-cur2", "gcp", "azure", "oci"])
def test_native_export_row_refused_for_data_quality_is_named(kind, warehouse, tmp_path, capsys):
    """A native export (AWS CUR legacy and 2.0, GCP, Azure, OCI) row without a mandatory value is refused at its
    row, as a FOCUS file's is: the file, data row 5 (the row after the header is 1), the column, what was
    expected; exit 2 and nothing written. Before, the line named the file and the column only."""
    from .conftest import SHARED

    path, column, expected = _native_case(kind, tmp_path, SHARED if SHARED.exists() else None)
    fk.ingest(str(GOOD), warehouse=warehouse)
    import re

    assert_refused(warehouse, [path], rf"{re.escape(path)}, row 5, column '{column}': NULL; {expected}", capsys)


@pytest.mark.parametrize("field, value, expected", [
    ("labels", "oops", "expected array"),                      # labels as a string, not a list of key/value records
    ("credits", {"name": "x"}, "expected array"),              # one credit record, not a list
    ("service", ["Compute Engine"], "expected object"),        # a list where the record belongs
])
def test_gcp_record_of_the_wrong_json_type_is_named_by_row_and_column(tmp_path, capsys, field, value, expected):
    """DuckDB's JSON reader said 'JSON transform error ... in line 5: Expected ARRAY, but got VARCHAR: "oops"' for a
    value on line 3 (its line is where its buffer was, not the record); the error now names the record's row, the
    line and the field, with what was expected."""
    import json

    src = sorted(SAMPLES.glob("gcp/*.jsonl.gz"))[0]
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        rows = [json.loads(next(fh)) for _ in range(12)]
    rows[2][field] = value
    dest = tmp_path / src.name.removesuffix(".gz")
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + "\n" +  # a blank line: row 4 is on line 5
                    "".join(json.dumps(r) + "\n" for r in rows[3:]), encoding="utf-8")
    wh = tmp_path / "wh.duckdb"
    assert main(["ingest", str(dest), "--warehouse", str(wh)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert f"{dest}, row 3, column {field!r}: " in err[0] and expected in err[0] and "(line 3)" in err[0], err[0]
    assert not wh.exists() or fk.connect(str(wh), read_only=True).sql("SELECT count(*) FROM focus").fetchall() == [(0,)]
