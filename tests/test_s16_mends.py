"""Mends of session 16: one input fingerprint (the report index's cover, a report run's record and a FOCUS
dataset's manifest read the same digest of the same warehouse, ``warehouse.input_digest``, a file recorded without a
sha256 included); the ingest's memory cap."""

from __future__ import annotations

import json

import finops_kit as fk
from finops_kit import dataset, report
from finops_kit.testing import focus_rows

ROWS = [{"ProviderName": "AWS", "cost": 10, "day": "2026-10-05"}]


def _warehouse(tmp_path, *, drop_one_digest: bool = False) -> str:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    wh = str(tmp_path / "wh.duckdb")
    con = fk.connect(wh, write=True)
    focus_rows(ROWS, con)
    files = [{"path": str(a), "size": 3, "sha256": "aa" * 32}, {"path": str(b), "size": 4, "sha256": "bb" * 32}]
    if drop_one_digest:
        files[1]["sha256"] = None
    con.execute("INSERT INTO ingest_log (ingest_id, source_format, files, status) VALUES ('i1', 'focus', ?, 'active')",
                [json.dumps(files)])
    con.close()
    return wh


def _three(wh: str) -> tuple:
    con = fk.connect(wh, read_only=True)
    try:
        ds = dataset.input_fingerprint(con)
    finally:
        con.close()
    return report.data_coverage(wh)["input"]["sha256"], report.input_fingerprint(wh)["sha256"], ds


def test_cover_run_record_and_dataset_manifest_agree(tmp_path):
    cover, run, ds = _three(_warehouse(tmp_path))
    assert cover == run == ds and cover is not None


def test_a_file_without_a_digest_still_counts_everywhere(tmp_path):
    whole = _three(_warehouse(tmp_path / "whole"))
    missing = _three(_warehouse(tmp_path / "missing", drop_one_digest=True))
    assert len(set(missing)) == 1  # the dataset's copy used to skip the file the other two counted
    assert missing[0] != whole[0]
    assert report.input_fingerprint(str(tmp_path / "missing" / "wh.duckdb"))["files"] == 2


def test_ingest_memory_cap_grows_with_files_up_to_a_ceiling():
    # 80 monthly files gave a 20 GB cap: an ingest of 2.6M rows grew to 7.9 GB and failed where 3 GB sufficed
    from finops_kit.ingest import ingest_memory_limit

    assert ingest_memory_limit(1, physical_mb=24576) == "1024MB"
    assert ingest_memory_limit(10, physical_mb=24576) == "2560MB"
    assert ingest_memory_limit(80, physical_mb=24576) == "4096MB"
    assert ingest_memory_limit(80, physical_mb=8192) == "2048MB"  # a quarter of a small machine
    assert ingest_memory_limit(80, physical_mb=2048) == "1024MB"  # never under 1 GB
