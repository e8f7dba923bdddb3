"""Delivery folders as AWS writes them: only the assembly / execution the period's manifest names is loaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import finops_kit as fk
from finops_kit.errors import InputError
from finops_kit.ingest import ingest
from tests.test_aws_sources import AMORTIZED, BILLED, SP_RI, _rows, _totals, cur2_table

OLD, NEW = "0e3a1c52-old0-4c1f-9d1e-000000000001", "7f1b2d63-new0-4a2b-8c3d-000000000002"


def make_legacy_delivery(root: Path, report: str = "cur-hourly") -> dict:
    """A restated January 2026 in the S3 key layout: an older assembly (one file, different numbers) and the
    current one (two files) named by the period's manifest; each assembly also holds its manifest copy."""
    period = root / report / "20260101-20260201"
    lines = SP_RI.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    old_body = [ln.replace(",32.77,", ",99.99,", 1) for ln in body]  # the earlier estimate of the month
    files = {
        OLD: {f"{report}-1.csv.gz": [header, *old_body]},
        NEW: {f"{report}-1.csv.gz": [header, *body[:7]], f"{report}-2.csv.gz": [header, *body[7:]]},
    }
    for asm, parts in files.items():
        (period / asm).mkdir(parents=True)
        for name, rows in parts.items():
            (period / asm / name).write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
        manifest = {"assemblyId": asm, "reportName": report, "compression": "GZIP", "contentType": "text/csv",
                    "billingPeriod": {"start": "20260101T000000.000Z", "end": "20260201T000000.000Z"},
                    "bucket": "billing-bucket",
                    "reportKeys": [f"prefix/{report}/20260101-20260201/{asm}/{n}" for n in parts]}
        (period / asm / f"{report}-Manifest.json").write_text(json.dumps(manifest))
        if asm == NEW:
            (period / f"{report}-Manifest.json").write_text(json.dumps(manifest))
    return {"period": period, "current": sorted(str(period / NEW / n) for n in files[NEW]),
            "old": str(period / OLD / f"{report}-1.csv.gz")}


def test_restated_legacy_period_loads_only_the_current_assembly(tmp_path, con):
    d = make_legacy_delivery(tmp_path / "bucket")
    res = ingest(str(tmp_path / "bucket"), con=con)
    assert sorted(res.files) == d["current"]
    assert [s["path"] for s in res.skipped] == [d["old"]]
    assert "superseded assembly" in res.skipped[0]["reason"] and NEW in res.skipped[0]["reason"]
    assert _totals(con) == (16, BILLED, AMORTIZED)  # the old assembly's 99.99 is not in any total
    logged = json.loads(con.execute("SELECT skipped FROM ingest_log").fetchone()[0])
    assert logged[0]["path"] == d["old"]


def test_period_folder_itself_and_idempotence(tmp_path, warehouse):
    d = make_legacy_delivery(tmp_path / "bucket")
    for _ in range(2):  # same delivery twice: replaced, not added
        fk.ingest(str(d["period"]), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)
        assert con.execute("SELECT count(*) FROM ingest_log WHERE status = 'active'").fetchone()[0] == 1
    finally:
        con.close()


def test_restatement_replaces_the_earlier_assembly(tmp_path, warehouse):
    """The old assembly's file, downloaded earlier and ingested then, is replaced by the delivery's current one."""
    d = make_legacy_delivery(tmp_path / "bucket")
    earlier = tmp_path / "earlier-download" / Path(d["old"]).name
    earlier.parent.mkdir()
    earlier.write_bytes(Path(d["old"]).read_bytes())
    fk.ingest(str(earlier), warehouse=warehouse)
    fk.ingest(str(tmp_path / "bucket"), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)
    finally:
        con.close()


def test_manifest_naming_a_missing_file_is_an_error(tmp_path):
    d = make_legacy_delivery(tmp_path / "bucket")
    Path(d["current"][1]).unlink()
    with pytest.raises(InputError, match=r"cur-hourly-2\.csv\.gz: listed in the manifest of 20260101-20260201 but "
                                         r"not found; the delivery is incomplete"):
        ingest(str(tmp_path / "bucket"), con=fk.connect(":memory:"))


def make_cur2_export(root: Path, export: str = "cur2-daily") -> dict:
    """CUR 2.0 Data Exports layout: a January with a manifest (one listed part, one stale unlisted part) and a
    February whose data is there but whose manifest is not written yet."""
    table = cur2_table(_rows(SP_RI))
    out = {}
    for period in ("2026-01", "2026-02"):
        data = root / export / "data" / f"BILLING_PERIOD={period}"
        data.mkdir(parents=True)
        pq.write_table(table, data / f"{export}-00001.snappy.parquet")
        out[period] = str(data / f"{export}-00001.snappy.parquet")
    stale = root / export / "data" / "BILLING_PERIOD=2026-01" / f"{export}-00002.snappy.parquet"
    pq.write_table(table, stale)
    meta = root / export / "metadata" / "BILLING_PERIOD=2026-01"
    meta.mkdir(parents=True)
    (meta / f"{export}-Manifest.json").write_text(json.dumps({
        "executionId": "3f1c0e7a-0000-4000-8000-000000000001",
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:111111111111:export/cur2-daily-abc",
        "billingPeriod": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-02-01T00:00:00.000Z"},
        "columns": [], "dataFiles": [
            f"s3://billing-bucket/exports/{export}/data/BILLING_PERIOD=2026-01/{export}-00001.snappy.parquet"]}))
    return {"current": out["2026-01"], "stale": str(stale), "unfinished": out["2026-02"]}


def test_cur2_export_folder(tmp_path, con):
    d = make_cur2_export(tmp_path / "exports")
    res = ingest(str(tmp_path / "exports"), con=con)
    assert res.source_format == "aws-cur2"
    assert res.files == [d["current"]]
    reasons = {s["path"]: s["reason"] for s in res.skipped}
    assert "not listed in the current manifest" in reasons[d["stale"]]
    assert "no manifest for billing period BILLING_PERIOD=2026-02" in reasons[d["unfinished"]]
    assert _totals(con) == (16, BILLED, AMORTIZED)


def test_folder_without_manifest_loads_every_file(tmp_path, con):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.csv").write_bytes(SP_RI.read_bytes())
    res = ingest(str(tmp_path / "loose"), con=con)
    assert res.skipped == [] and _totals(con) == (16, BILLED, AMORTIZED)


def test_superseded_assembly_named_directly_is_skipped_by_the_manifest(tmp_path, con):
    """Naming files (or a glob) inside a delivery applies the period's manifest as a folder ingest does."""
    d = make_legacy_delivery(tmp_path / "bucket")
    res = ingest([d["old"], *d["current"]], con=con)
    assert sorted(res.files) == d["current"]
    assert [s["path"] for s in res.skipped] == [d["old"]] and NEW in res.skipped[0]["reason"]
    assert _totals(con) == (16, BILLED, AMORTIZED)
    with pytest.raises(InputError, match=r"nothing to ingest \(.*cur-hourly-1\.csv\.gz skipped: superseded"):
        ingest(d["old"], con=con)

