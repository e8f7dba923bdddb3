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
    fk.connect(warehouse).close()  # an existing warehouse, so that "unchanged" is about its content
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
