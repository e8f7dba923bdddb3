"""The input fingerprint of report headers names each file's own billing periods."""

from __future__ import annotations

import re

import finops_kit as fk
from finops_kit.warehouse import fingerprint

from .conftest import REPO


def test_each_file_lists_its_own_billing_periods(warehouse):
    # two monthly GCP exports in one ingest: before, both rows listed the periods of the whole ingest
    files = sorted((REPO / "data" / "samples" / "gcp").glob("*_2025*.jsonl.gz"))[:2]
    assert len(files) == 2
    fk.ingest([str(f) for f in files], warehouse=warehouse, progress=False)
    con = fk.connect(warehouse, read_only=True)
    try:
        rows = fingerprint(con).df()
    finally:
        con.close()
    assert len(rows) == 2
    for path, periods in zip(rows["path"], rows["billing_periods"], strict=True):
        month = re.search(r"_(\d{4})(\d{2})\.jsonl\.gz$", path)
        assert periods == f"{month[1]}-{month[2]}", (path, periods)
