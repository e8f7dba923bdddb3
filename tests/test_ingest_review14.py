"""Session 14 ingest review: each test reproduces one reviewed problem (see the commit messages) with a small
fixture built here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_kit.errors import InputError
from finops_kit.ingest import ingest
from tests.test_aws_sources import BILLED, SP_RI, _rows, _totals, cur2_table


def _write_legacy(path: Path, rows: list[dict], id_prefix: str = "", account: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            r = dict(r)
            r["identity/LineItemId"] = id_prefix + r["identity/LineItemId"]
            if account is not None:
                r["lineItem/UsageAccountId"] = account
            w.writerow(r)
    return path


# ---- 1. two reports / exports of one payer and month in one call are two copies, not parts ------------------------
def test_two_legacy_reports_of_one_month_in_one_call_are_refused_not_summed(tmp_path, con):
    rows = _rows(SP_RI)
    daily = _write_legacy(tmp_path / "cur" / "daily-report-1.csv", rows)
    hourly = _write_legacy(tmp_path / "cur" / "hourly-report-1.csv", rows, id_prefix="h")
    with pytest.raises(InputError) as got:
        ingest(str(tmp_path / "cur"), con=con)
    text = str(got.value)
    assert "\n" not in text and daily.name in text and hourly.name in text
    assert "two reports" in text
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0


def test_parts_of_one_legacy_report_are_still_summed(tmp_path, con):
    rows = _rows(SP_RI)
    _write_legacy(tmp_path / "cur" / "daily-report-1.csv", rows[:7])
    _write_legacy(tmp_path / "cur" / "daily-report-2.csv", rows[7:])
    ingest(str(tmp_path / "cur"), con=con)
    assert _totals(con)[1] == BILLED


def test_reports_of_different_usage_accounts_of_one_payer_are_added(tmp_path, con):
    """A member account's own report and another member's: disjoint charges of one payer's month, both kept."""
    rows = _rows(SP_RI)
    _write_legacy(tmp_path / "cur" / "team-a-1.csv", rows, account="333333333333")
    _write_legacy(tmp_path / "cur" / "team-b-1.csv", rows, id_prefix="b", account="444444444444")
    ingest(str(tmp_path / "cur"), con=con)
    assert _totals(con)[1] == 2 * BILLED


def _cur2_export(root: Path, export: str, table) -> None:
    data = root / export / "data" / "BILLING_PERIOD=2026-01"
    data.mkdir(parents=True)
    pq.write_table(table, data / f"{export}-00001.snappy.parquet")
    meta = root / export / "metadata" / "BILLING_PERIOD=2026-01"
    meta.mkdir(parents=True)
    (meta / f"{export}-Manifest.json").write_text(json.dumps({
        "exportName": export, "billingPeriod": {"start": "2026-01-01T00:00:00.000Z"}, "dataFiles": [
            f"s3://bucket/exports/{export}/data/BILLING_PERIOD=2026-01/{export}-00001.snappy.parquet"]}))


def test_two_cur2_exports_of_one_month_in_one_call_are_refused_not_summed(tmp_path, con):
    rows = _rows(SP_RI)
    _cur2_export(tmp_path / "bucket", "cur-daily", cur2_table(rows))
    hourly = [dict(r, **{"identity/LineItemId": "h" + r["identity/LineItemId"]}) for r in rows]
    _cur2_export(tmp_path / "bucket", "cur-hourly", cur2_table(hourly))
    with pytest.raises(InputError) as got:
        ingest(str(tmp_path / "bucket"), con=con)
    text = str(got.value)
    assert "\n" not in text and "cur-daily" in text and "cur-hourly" in text
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0

