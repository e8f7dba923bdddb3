"""Ingest rules on realistic messy inputs: one call per folder, every byte read once, no double counting, no
silent loss. Inputs are the committed sample exports (data/samples, written by the seeded generator) or
transformations of them; expected totals come from the generator's PLANTED.json, never from hand-picked numbers.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
PLANTED = json.loads((SAMPLES / "PLANTED.json").read_text(encoding="utf-8"))
#: PLANTED dataset -> the source format that reads it
DATASET_FORMAT = {"aws-cur2": "aws-cur2", "aws-cur-legacy": "aws-cur", "gcp": "gcp", "azure": "azure"}
GCP_FILES = sorted((SAMPLES / "gcp").glob("*.jsonl.gz"))


def planted(dataset: str, period: str | None = None) -> tuple[Decimal, Decimal]:
    """Known (billed, amortized) of a dataset, for one billing period or all of them."""
    rows = [t for t in PLANTED["totals"] if t["dataset"] == dataset and period in (None, t["billing_period"])]
    assert rows
    return sum(Decimal(t["billed"]) for t in rows), sum(Decimal(t["amortized"]) for t in rows)


def totals(warehouse: str, where: str = "true") -> tuple[int, Decimal, Decimal]:
    con = fk.connect(warehouse, read_only=True)
    try:
        n, b, e = con.execute(f"SELECT count(*), sum(BilledCost), sum(EffectiveCost) FROM focus WHERE {where}").fetchone()
        return n, b or Decimal(0), e or Decimal(0)
    finally:
        con.close()


def close(a: Decimal, b: Decimal) -> bool:
    return abs(Decimal(a) - Decimal(b)) <= Decimal("0.0001")


def snapshot(warehouse: str) -> tuple:
    con = fk.connect(warehouse, read_only=True)
    try:
        return (con.execute("SELECT count(*), sum(BilledCost), string_agg(DISTINCT x_IngestId) FROM focus").fetchone(),
                con.execute("SELECT count(*), string_agg(status ORDER BY ingest_id) FROM ingest_log").fetchone(),
                con.execute("SELECT count(*) FROM reconciliation").fetchone())
    finally:
        con.close()


def run(args: list[str], warehouse: str, capsys) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--warehouse", warehouse, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(args: list[str], warehouse: str, capsys, pattern: str) -> str:
    fk.connect(warehouse, write=True).close()  # an existing warehouse, so that "unchanged" is about its content
    before = snapshot(warehouse)
    code, _, err = run(args, warehouse, capsys)
    assert code == 2, err
    err = err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("finops-kit: error: "), err
    assert re.search(pattern, err), err
    assert snapshot(warehouse) == before
    return err


def reconcile_ok(warehouse: str, capsys) -> bool:
    code = main(["reconcile", "--warehouse", warehouse])
    capsys.readouterr()
    return code == 0


# ---- one call per folder --------------------------------------------------------------------------------------
def test_one_call_over_the_whole_samples_folder(warehouse, capsys):
    """`finops-kit samples --out X && finops-kit ingest X`: every format in one transaction, the generator's own
    PLANTED.json and roadmap.yaml listed as skipped, and each dataset equal to its planted totals."""
    code, out, err = run([str(SAMPLES)], warehouse, capsys)
    assert code == 0, err
    assert re.search(r"skipped .*PLANTED\.json: not billing data", err)
    assert re.search(r"skipped .*roadmap\.yaml: not a billing export", err)
    assert "one transaction" in out
    for dataset, fmt in DATASET_FORMAT.items():
        _, billed, amortized = totals(warehouse, f"x_SourceFormat = '{fmt}'")
        want = planted(dataset)
        assert close(billed, want[0]) and close(amortized, want[1]), (dataset, billed, want)
    con = fk.connect(warehouse, read_only=True)
    assert con.execute("SELECT count(DISTINCT finished_at), count(*) FROM ingest_log").fetchone() == (1, 4)
    con.close()
    assert reconcile_ok(warehouse, capsys)


def test_unreadable_billing_file_in_a_folder_is_still_an_error(tmp_path, warehouse, capsys):
    folder = tmp_path / "exports"
    shutil.copytree(SAMPLES / "gcp", folder / "gcp")
    shutil.copy(SAMPLES / "PLANTED.json", folder)
    victim = folder / "gcp" / GCP_FILES[3].name
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    refused([str(folder)], warehouse, capsys, re.escape(victim.name) + r": cannot read file.*(truncated|corrupt)")


def test_json_document_named_explicitly_is_refused(warehouse, capsys):
    refused([str(SAMPLES / "PLANTED.json")], warehouse, capsys, r"PLANTED\.json: row 1: not a JSON object per line")


# ---- the same bytes read once -----------------------------------------------------------------------------------
def test_identical_files_are_read_once(tmp_path, warehouse, capsys):
    src = GCP_FILES[5]
    copy = tmp_path / "copy-of-export.jsonl.gz"
    shutil.copy(src, copy)
    code, _, err = run([str(src), str(copy)], warehouse, capsys)
    assert code == 0, err
    assert f"skipped {copy}: same content as {src}" in err
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(src))[0])


def test_recursive_glob_through_a_self_referencing_symlink(tmp_path, warehouse, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(GCP_FILES[0], folder)
    os.symlink(".", folder / "loop")
    code, out, err = run([str(folder / "**" / "*.jsonl.gz")], warehouse, capsys)
    assert code == 0, err
    assert "from 1 file(s)" in out
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(GCP_FILES[0]))[0])


def _period_of(gcp_file: Path) -> str:
    m = re.search(r"_(\d{4})(\d{2})\.jsonl\.gz$", gcp_file.name)
    return f"{m.group(1)}-{m.group(2)}"


def test_a_bad_file_of_one_format_rolls_back_every_format(tmp_path, warehouse, capsys):
    """Formats are written one after the other in one transaction: a bad value in the last one leaves nothing."""
    lines = gzip.decompress(GCP_FILES[2].read_bytes()).decode().splitlines()
    row = json.loads(lines[9])
    row["cost"] = "12,5"
    lines[9] = json.dumps(row)
    bad = tmp_path / GCP_FILES[2].name
    bad.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    refused([str(SAMPLES / "aws-cur2"), str(bad)], warehouse, capsys,
            re.escape(bad.name) + r", row 10, column 'cost': cannot parse '12,5'")


# ---- one billing period from one assembly -----------------------------------------------------------------------
LEGACY = SAMPLES / "aws-cur-legacy" / "helix-research-cur"
RESTATED = LEGACY / "20261001-20261101"  # the generator's restated month: two assemblies, the manifest names one


def test_two_assemblies_named_by_a_glob_read_only_the_current_one(warehouse, capsys):
    code, _, err = run([str(RESTATED / "*" / "*.csv.gz")], warehouse, capsys)
    assert code == 0, err
    superseded = PLANTED["datasets"]["aws-cur-legacy"]["superseded_files"][0]
    assert f"skipped {SAMPLES / superseded}: superseded assembly" in err
    _, billed, amortized = totals(warehouse)
    assert (close(billed, planted("aws-cur-legacy", "2026-10")[0])
            and close(amortized, planted("aws-cur-legacy", "2026-10")[1])), billed


def test_two_assemblies_named_as_files_read_only_the_current_one(warehouse, capsys):
    files = sorted(str(p) for p in RESTATED.glob("*/*.csv.gz"))
    code, _, err = run(files, warehouse, capsys)
    assert code == 0, err
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("aws-cur-legacy", "2026-10")[0])


def test_two_assemblies_without_a_manifest_are_refused(tmp_path, warehouse, capsys):
    copy = tmp_path / "helix-research-cur" / RESTATED.name
    shutil.copytree(RESTATED, copy, ignore=shutil.ignore_patterns("*Manifest.json"))
    assemblies = sorted(p.name for p in copy.iterdir())
    for args in ([str(copy / "*" / "*.csv.gz")], [str(tmp_path)]):
        err = refused(args, warehouse, capsys, r"billing period 20261001-20261101 comes from two assemblies")
        assert assemblies[0] in err and assemblies[1] in err


# ---- the same charge in two files -------------------------------------------------------------------------------
def _gcp_lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def test_gcp_rows_repeated_in_two_files_are_refused_or_dropped(tmp_path, warehouse, capsys):
    """A month's export plus an extract of some of its rows: refused with the file pair and the count; with
    --dedupe the copies are dropped, counted, and the month equals the planted total (reconciled)."""
    month = GCP_FILES[4]
    lines = _gcp_lines(month)
    extract = _write_lines(tmp_path / "extract.jsonl.gz", lines[100:400])
    err = refused([str(month), str(extract)], warehouse, capsys,
                  r"extract\.jsonl\.gz: 300 row\(s\) repeat charges of .*" + re.escape(month.name))
    assert "--dedupe" in err
    code, out, err = run([str(month), str(extract), "--dedupe"], warehouse, capsys)
    assert code == 0, err
    assert f"dropped 300 duplicate row(s) of {extract}" in err and "dropped 300 duplicate source row(s)" in out
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(month))[0])
    assert reconcile_ok(warehouse, capsys)


def test_overlapping_gcp_exports_add_the_overlap_only_once_with_dedupe(tmp_path, warehouse, capsys):
    month = GCP_FILES[7]
    lines = _gcp_lines(month)
    cut = len(lines) * 6 // 10
    _write_lines(tmp_path / "export-a.jsonl.gz", lines[:cut])
    _write_lines(tmp_path / "export-b.jsonl.gz", lines[cut - 150:])
    refused([str(tmp_path)], warehouse, capsys, r"export-b\.jsonl\.gz: 150 row\(s\) repeat charges of .*export-a")
    code, _, err = run([str(tmp_path), "--dedupe"], warehouse, capsys)
    assert code == 0, err
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(month))[0])


def _cur2_month(period: str) -> Path:
    return SAMPLES / "aws-cur2" / "acme-ai-cur2" / "data" / f"BILLING_PERIOD={period}" / "acme-ai-cur2-00001.snappy.parquet"


def test_aws_line_items_repeated_across_files_by_identity(tmp_path, warehouse, capsys):
    """AWS's own identity (line item id + time interval) finds the repeat; exact copies can be dropped, a repeated
    identity with other values cannot (which one is right is not in the files)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(_cur2_month("2026-04"))
    loose = tmp_path / "downloads"
    loose.mkdir()
    pq.write_table(table, loose / "april-1-full.parquet")
    pq.write_table(table.slice(0, 250), loose / "april-2-part.parquet")
    refused([str(loose)], warehouse, capsys, r"april-2-part\.parquet: 250 row\(s\) repeat charges of .*april-1-full\.parquet "
            r"\(same identity/LineItemId and identity/TimeInterval\)")
    code, _, err = run([str(loose), "--dedupe"], warehouse, capsys)
    assert code == 0, err
    _, billed, amortized = totals(warehouse)
    assert close(billed, planted("aws-cur2", "2026-04")[0]) and close(amortized, planted("aws-cur2", "2026-04")[1])
    # the same line items with a changed cost: not copies
    part = table.slice(0, 250)
    i = part.column_names.index("line_item_unblended_cost")
    part = part.set_column(i, "line_item_unblended_cost", pc.multiply(part["line_item_unblended_cost"], 2))
    pq.write_table(part, loose / "april-2-part.parquet")
    refused([str(loose), "--dedupe"], warehouse, capsys, r"april-2-part\.parquet: 250 row\(s\) have the "
            r"identity/LineItemId and identity/TimeInterval of charges in .*april-1-full\.parquet but different values")


def test_parts_of_one_aws_delivery_ingested_one_by_one_are_refused(tmp_path, warehouse, capsys):
    """``<report>-00001`` and ``-00002`` in one folder are parts of one delivery: different charges of the same
    days. Ingested one call each, the second covered every stored day and replaced the first, exit 0, reconcile
    ok, with half the month gone (review: 2025-01 billed 389 -> 229). Each part alone is now refused while a
    stored sibling part is not in the input; both in one call are the month; ``--replace`` still forces it."""
    import pyarrow.parquet as pq

    table = pq.read_table(_cur2_month("2026-04"))
    folder = tmp_path / "acme-ai-cur2" / "data" / "BILLING_PERIOD=2026-04"
    folder.mkdir(parents=True)
    even = [i for i in range(table.num_rows) if i % 2 == 0]  # interleaved: both parts hold every usage day
    odd = [i for i in range(table.num_rows) if i % 2 == 1]
    part1, part2 = folder / "acme-ai-cur2-00001.snappy.parquet", folder / "acme-ai-cur2-00002.snappy.parquet"
    pq.write_table(table.take(even), part1)
    pq.write_table(table.take(odd), part2)
    assert run([str(part1)], warehouse, capsys)[0] == 0
    part1_alone = totals(warehouse)
    refused([str(part2)], warehouse, capsys, r"billing period aws\|111122223333\|2026-04: the warehouse holds part\(s\) "
            r"acme-ai-cur2-00001\.snappy\.parquet of the delivery in .*BILLING_PERIOD=2026-04 and this input "
            r"only acme-ai-cur2-00002\.snappy\.parquet.*ingest every part in one call")
    code, _, err = run([str(part1), str(part2)], warehouse, capsys)  # the whole delivery: replaces part 1
    assert code == 0, err
    _, billed, amortized = totals(warehouse)
    assert close(billed, planted("aws-cur2", "2026-04")[0]) and close(amortized, planted("aws-cur2", "2026-04")[1])
    assert reconcile_ok(warehouse, capsys)
    refused([str(part1)], warehouse, capsys, r"holds part\(s\) acme-ai-cur2-00002\.snappy\.parquet")
    code, out, err = run([str(part1), "--replace"], warehouse, capsys)
    assert code == 0, err
    assert "note: --replace: billing period aws|111122223333|2026-04: the warehouse holds part(s) acme-ai-cur2-00002" in err
    assert "the stored parts were replaced by it" in err and "replaced 1,806 earlier rows" in out
    assert totals(warehouse) == part1_alone  # forced: what part 1 alone holds


def test_actual_and_amortized_azure_exports_are_not_repeats(warehouse, capsys):
    """The same charge is in both Azure datasets by design: the row key includes the dataset."""
    code, _, err = run([str(SAMPLES / "azure")], warehouse, capsys)
    assert code == 0, err
    _, billed, amortized = totals(warehouse)
    assert close(billed, planted("azure")[0]) and close(amortized, planted("azure")[1])


# ---- never remove stored rows the input does not cover ----------------------------------------------------------
def _gcp_by_day(path: Path, keep) -> list[str]:
    """The export rows whose usage day (day of month) passes ``keep``."""
    return [ln for ln in _gcp_lines(path) if keep(int(json.loads(ln)["usage_start_time"][8:10]))]


def test_gcp_month_ingested_in_two_halves_keeps_both(tmp_path, warehouse, capsys):
    month = GCP_FILES[6]
    first = _write_lines(tmp_path / "first-half.jsonl.gz", _gcp_by_day(month, lambda d: d <= 15))
    second = _write_lines(tmp_path / "second-half.jsonl.gz", _gcp_by_day(month, lambda d: d > 15))
    assert run([str(first)], warehouse, capsys)[0] == 0
    code, out, err = run([str(second)], warehouse, capsys)
    assert code == 0, err
    assert "added to 1 stored billing period(s) on other usage days" in out
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(month))[0])
    assert reconcile_ok(warehouse, capsys)


def test_partial_overlap_is_refused_unless_replace(tmp_path, warehouse, capsys):
    month = GCP_FILES[8]
    period = _period_of(month)
    early = _write_lines(tmp_path / "days-01-20.jsonl.gz", _gcp_by_day(month, lambda d: d <= 20))
    late = _write_lines(tmp_path / "days-15-31.jsonl.gz", _gcp_by_day(month, lambda d: d >= 15))
    assert run([str(early)], warehouse, capsys)[0] == 0
    refused([str(late)], warehouse, capsys,
            rf"billing period gcp\|01A2B3-C4D5E6-F7A8B9\|{period}: the warehouse holds usage days {period}-01\.\."
            rf"{period}-20 and this input {period}-15\.\.{period}-\d\d; .* pass --replace")
    code, _, err = run([str(late), "--replace"], warehouse, capsys)
    assert code == 0, err
    assert f"note: --replace: billing period gcp|01A2B3-C4D5E6-F7A8B9|{period} held usage days" in err
    assert "14 of them are not in this input" in err
    con = fk.connect(warehouse, read_only=True)
    first_day = con.execute("SELECT min(CAST(ChargePeriodStart AS DATE)) FROM focus").fetchone()[0]
    con.close()
    assert str(first_day) == f"{period}-15"
    assert reconcile_ok(warehouse, capsys)


def test_a_restated_month_replaces_the_stored_one(tmp_path, warehouse, capsys):
    """A re-export covering every stored day (plus later ones) replaces: the month-to-date grows."""
    month = GCP_FILES[9]
    early = _write_lines(tmp_path / "month-to-date.jsonl.gz", _gcp_by_day(month, lambda d: d <= 10))
    assert run([str(early)], warehouse, capsys)[0] == 0
    code, out, err = run([str(month)], warehouse, capsys)
    assert code == 0, err
    assert "replaced" in out
    _, billed, _ = totals(warehouse)
    assert close(billed, planted("gcp", _period_of(month))[0])
    assert reconcile_ok(warehouse, capsys)


def test_restating_one_month_of_a_multi_month_ingest_keeps_reconcile_passing(warehouse, capsys):
    """The README's restatement case: ingest every month, then one month again (identical data)."""
    assert run([str(SAMPLES / "gcp")], warehouse, capsys)[0] == 0
    assert run([str(GCP_FILES[4])], warehouse, capsys)[0] == 0
    assert reconcile_ok(warehouse, capsys)
    _, billed, amortized = totals(warehouse)
    assert close(billed, planted("gcp")[0]) and close(amortized, planted("gcp")[1])
    con = fk.connect(warehouse, read_only=True)
    periods = con.execute("SELECT count(*), count(DISTINCT billing_period_start) FROM reconciliation").fetchone()
    con.close()
    assert periods == (len(GCP_FILES), len(GCP_FILES))


# ---- the billing period comes from the billing-period columns ----------------------------------------------------
def test_offset_timestamps_keep_their_billing_month(tmp_path, warehouse, capsys):
    """A March CUR written with +05:00 offsets is March (its bill/BillingPeriodStartDate says so), not February
    (the UTC instant of March 1 00:00 +05:00): February's stored rows stay."""
    feb, mar = (next((LEGACY / p).glob("*/*.csv.gz")) for p in ("20260201-20260301", "20260301-20260401"))
    text = gzip.decompress(mar.read_bytes()).decode()
    shifted = re.sub(r"T(\d\d:\d\d:\d\d)(\.000)?Z", r"T\1\2+05:00", text)
    assert shifted != text
    march = tmp_path / "march-local.csv.gz"
    march.write_bytes(gzip.compress(shifted.encode()))
    assert run([str(feb)], warehouse, capsys)[0] == 0
    code, out, err = run([str(march)], warehouse, capsys)
    assert code == 0, err
    assert "billing periods 2026-03" in out and "replaced" not in out
    for period in ("2026-02", "2026-03"):
        _, billed, amortized = totals(warehouse, f"strftime(BillingPeriodStart, '%Y-%m') = '{period}'")
        assert close(billed, planted("aws-cur-legacy", period)[0]), period
    assert reconcile_ok(warehouse, capsys)


# ---- error rows are exact ---------------------------------------------------------------------------------------
PLANTED_ROWS = (3000, 5000)


def _cur_rows(n: int) -> tuple[list[str], list[list[str]]]:
    """``n`` data rows of a sample legacy CUR month (its rows repeated), with bad costs at PLANTED_ROWS."""
    import csv
    import io

    month = next((LEGACY / "20260301-20260401").glob("*/*.csv.gz"))
    header, *body = list(csv.reader(io.StringIO(gzip.decompress(month.read_bytes()).decode())))
    rows = [list(r) for r in (body * (n // len(body) + 1))[:n]]
    cost = header.index("lineItem/UnblendedCost")
    for r in PLANTED_ROWS:
        rows[r - 1][cost] = f"bad-{r}"
    return header, rows


def _write_cur(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    data = buf.getvalue().encode()
    if path.name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(header)}), path, row_group_size=500)
    else:
        path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["cur.csv", "cur.csv.gz", "cur.parquet"])
def test_a_bad_value_is_reported_at_its_exact_row_every_time(tmp_path, warehouse, capsys, name):
    header, rows = _cur_rows(7000)
    bad = _write_cur(tmp_path / name, header, rows)
    line = "" if name.endswith(".parquet") else r" \(line 3001\)"
    for _ in range(4):
        refused([str(bad)], warehouse, capsys, re.escape(name) + r", row 3000, column 'lineItem/UnblendedCost': "
                r"cannot parse 'bad-3000'; expected a number" + line + "$")


def test_the_row_is_counted_in_its_own_file(tmp_path, warehouse, capsys):
    """Two files: the bad value in the second is reported at its row in that file, on one thread or many."""
    header, rows = _cur_rows(7000)
    clean = [r for i, r in enumerate(rows, start=1) if i not in PLANTED_ROWS]
    first = _write_cur(tmp_path / "a.csv.gz", header, clean[:6000])
    second = _write_cur(tmp_path / "b.csv.gz", header, rows)
    for _ in range(3):
        refused([str(first), str(second)], warehouse, capsys,
                r"b\.csv\.gz, row 3000, column 'lineItem/UnblendedCost': cannot parse 'bad-3000'")


def test_gcp_error_row_is_exact(tmp_path, warehouse, capsys):
    lines = [ln for f in GCP_FILES[:5] for ln in _gcp_lines(f)][:7000]
    for r in PLANTED_ROWS:
        row = json.loads(lines[r - 1])
        row["cost"] = f"bad-{r}"
        lines[r - 1] = json.dumps(row)
    bad = _write_lines(tmp_path / "months.jsonl.gz", lines)
    for _ in range(3):
        refused([str(bad)], warehouse, capsys, r"months\.jsonl\.gz, row 3000, column 'cost': cannot parse 'bad-3000'; "
                r"expected a number \(line 3000\)$")


# ---- one month in two formats -----------------------------------------------------------------------------------
def test_a_focus_export_of_a_stored_month_is_not_added_twice(tmp_path, warehouse, capsys):
    """The provider's FOCUS export and its native export of one month hold the same charges under different keys
    (focus|AWS|... vs aws|...): refused, or replaced with --replace; never both."""
    month = _cur2_month("2026-05")
    assert run([str(month)], warehouse, capsys)[0] == 0
    focus_file = tmp_path / "aws-focus-2026-05.csv"
    assert main(["export", "--warehouse", warehouse, "--out", str(focus_file)]) == 0
    capsys.readouterr()
    refused([str(focus_file)], warehouse, capsys, r"the charges of aws\|111122223333\|2026-05 \(aws-cur2, already "
            r"stored from .*\) are also in the focus input .*aws-focus-2026-05\.csv.*pass --replace")
    code, _, err = run([str(focus_file), "--replace"], warehouse, capsys)
    assert code == 0, err
    assert "note: --replace: removed" in err
    _, billed, amortized = totals(warehouse)
    assert close(billed, planted("aws-cur2", "2026-05")[0]) and close(amortized, planted("aws-cur2", "2026-05")[1])
    assert totals(warehouse, "x_SourceFormat = 'aws-cur2'")[0] == 0
    assert reconcile_ok(warehouse, capsys)
    # both in one call: refused whatever the flags
    other = tmp_path / "other.duckdb"
    refused([str(month), str(focus_file), "--replace"], str(other), capsys, r"also in this call")


def test_both_engines_print_data_quality_findings_alike(capsys):
    """A Spark task hands its findings to the driver as JSON (money as text); the driver rebuilds the DuckDB
    ingest's :class:`Finding` (exact Decimal money), so the CLI prints them with the same code and no conversion of
    its own. Money with more digits than a float holds must survive the trip."""
    import json
    from decimal import Decimal
    from types import SimpleNamespace

    from finops_kit.commands import _print_ingest
    from finops_kit.quality import Finding
    from finops_kit.spark import _finding, _finding_json

    findings = [Finding("a.csv", "negative_unit_price", "repair", None, 1, Decimal("-250.00")),
                Finding("b.csv", "cost_mismatch", "report", "BilledCost", 3, Decimal("1234567890.123456789012"),
                        Decimal("0.000000000001"), "off by a trillionth")]
    travelled = [_finding(json.loads(json.dumps(_finding_json(f)))) for f in findings]
    assert travelled == findings and all(type(f) is Finding for f in travelled)
    printed = []
    for quality in (findings, travelled):
        result = SimpleNamespace(skipped=[], dropped=[], notes=[], parts=[], quality=quality, summary=lambda: "ok")
        assert _print_ingest(result) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] == ("ok\ndata quality report: cost_mismatch (BilledCost): 3 rows in 1 file(s), "
                                        "BilledCost 1,234,567,890.12\ndata quality repair: negative_unit_price: 1 "
                                        "rows in 1 file(s), BilledCost -250.00\n")


# ---- a copy of the month with fewer sub-accounts never replaces it -----------------------------------------------
LEGACY_OCTOBER = SAMPLES / "aws-cur-legacy" / "helix-research-cur" / "20261001-20261101"


def _legacy_october_file() -> Path:
    """The current assembly's file of the sample's October (the one its manifest names)."""
    manifest = json.loads((LEGACY_OCTOBER / "helix-research-cur-Manifest.json").read_text(encoding="utf-8"))
    (path,) = (LEGACY_OCTOBER / manifest["assemblyId"]).glob("*.csv.gz")
    return path


def _member_cur(tmp_path: Path) -> tuple[Path, str, list[str]]:
    """A linked (member) account's own CUR of the payer's October: the same bill/PayerAccountId, the rows of one
    usage account only. -> (file, the member account, the payer CUR's other usage accounts)."""
    import csv

    with gzip.open(_legacy_october_file(), "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("lineItem/UsageAccountId")
    accounts = sorted({r[col] for r in rows[1:]})
    assert len(accounts) > 1  # the sample's payer month holds several usage accounts
    member = accounts[0]
    path = tmp_path / f"member-{member}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0])
        w.writerows(r for r in rows[1:] if r[col] == member)
    return path, member, accounts[1:]


def test_a_member_accounts_cur_never_replaces_the_payers_month(tmp_path, warehouse, capsys):
    """A linked account's own CUR has the payer's key (aws|payer|month) and the same usage days: it replaced the
    payer's whole month and the other accounts' money was gone, exit 0, reconcile passing. Refused in one line
    naming the accounts that would disappear; --replace forces it and says so."""
    member_cur, member, others = _member_cur(tmp_path)
    assert run([str(LEGACY_OCTOBER)], warehouse, capsys)[0] == 0
    payer = totals(warehouse)
    err = refused([str(member_cur)], warehouse, capsys,
                  r"billing period aws\|\d+\|2026-10: the warehouse holds (member|usage) account\(s\) "
                  + re.escape(", ".join(others)) + r" \(\d+ row\(s\), [\d,.]+ USD billed, from .*\) and this input only "
                  + member + r" \(.*" + re.escape(member_cur.name) + r"\): .*--replace")
    assert "\n" not in err
    code, out, err = run([str(member_cur), "--replace"], warehouse, capsys)
    assert code == 0 and "replaced" in out, err
    assert re.search(r"note: --replace: billing period aws\|\d+\|2026-10: .*" + re.escape(others[0]), err), err
    assert totals(warehouse)[0] < payer[0]
    assert reconcile_ok(warehouse, capsys)


def test_the_payers_cur_still_replaces_a_member_accounts_month(tmp_path, warehouse, capsys):
    """The other way round nothing is lost: the payer's CUR holds the member's account and more, so it replaces
    the member's rows, and a re-run of the payer's month replaces it as before."""
    member_cur, _, _ = _member_cur(tmp_path)
    assert run([str(member_cur)], warehouse, capsys)[0] == 0
    for _ in range(2):
        code, out, err = run([str(LEGACY_OCTOBER)], warehouse, capsys)
        assert code == 0 and "replaced" in out, err
    _, billed, amortized = totals(warehouse)
    assert (close(billed, planted("aws-cur-legacy", "2026-10")[0])
            and close(amortized, planted("aws-cur-legacy", "2026-10")[1]))
    assert reconcile_ok(warehouse, capsys)


def test_a_gcp_export_of_fewer_projects_never_replaces_the_month(tmp_path, warehouse, capsys):
    """The same rule for every format whose key groups sub-accounts: a GCP billing account's month (key
    gcp|billing account|month) re-exported for one project only would have deleted the other projects."""
    month = GCP_FILES[3]
    lines = _gcp_lines(month)
    projects = sorted({json.loads(ln)["project"]["id"] for ln in lines if json.loads(ln).get("project")})
    assert len(projects) > 1
    one = _write_lines(tmp_path / "one-project.jsonl.gz",
                       [ln for ln in lines if (json.loads(ln).get("project") or {}).get("id") == projects[0]])
    assert run([str(month)], warehouse, capsys)[0] == 0
    refused([str(one)], warehouse, capsys,
            r"billing period gcp\|01A2B3-C4D5E6-F7A8B9\|\d{4}-\d\d: .*project.*" + re.escape(projects[1])
            + r".*--replace")


def test_numbered_parts_are_told_from_date_stamped_snapshots():
    """Only ``<report>-<n>`` with a part number of 1 to 5 digits is a part; a date stamp is not (review: month-to-date
    snapshots ``acme-cur-20260415`` then ``acme-cur-20260502`` were refused as two parts of one delivery)."""
    from finops_kit.ingest import missing_parts_text

    def lost(stored: str, new: str) -> str | None:
        return missing_parts_text([(False, f"d/{stored}"), (True, f"d/{new}")])

    assert lost("report-1.csv.gz", "report-2.csv.gz") is not None
    assert lost("acme-00001.snappy.parquet", "acme-00002.snappy.parquet") is not None
    assert lost("acme-cur-20260415.parquet", "acme-cur-20260502.parquet") is None  # YYYYMMDD
    assert lost("acme-cur-2026-04-15.csv", "acme-cur-2026-04-30.csv") is None  # YYYY-MM-DD
    assert lost("report-1.csv.gz", "report-2.csv") is None  # other extensions: not one delivery
    assert missing_parts_text([(False, "a/report-1.csv"), (True, "b/report-2.csv")]) is None  # other folders
