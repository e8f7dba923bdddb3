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
