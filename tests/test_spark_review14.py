"""Session 14's ingest refusals on the Spark engine: the same input sequence gives the same one-line refusal (or the
same rows) on both engines, and a refused call leaves both stores as they were.

The AWS fixtures carry ``identity/TimeInterval`` as every real CUR does: with it AWS files are one Spark task each
(their charge identity finds repeats across tasks), which is where two reports of one month were summed on Spark.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_aws_sources import BILLED, SP_RI, _rows, cur2_table
from tests.test_ingest_review14 import (
    _azure_pair,
    _cur2_execution,
    _cur2_export,
    _month_to_date,
    _touch_later,
    _write_legacy,
)
from tests.test_spark_parity import _both_engines, _snapshot, _warehouse_state, assert_same, slow


@pytest.fixture()
def cli_spark(spark, monkeypatch):
    """The CLI on the tests' Spark session (``_both_engines`` runs ``finops-kit ingest`` on both engines)."""
    monkeypatch.delenv("FINOPS_SPARK_MASTER", raising=False)
    return spark


def _timed(rows: list[dict]) -> list[dict]:
    """The fixture rows with AWS's ``identity/TimeInterval`` (the charge's usage start/end)."""
    return [{"identity/LineItemId": r["identity/LineItemId"],
             "identity/TimeInterval": f"{r['lineItem/UsageStartDate']}/{r['lineItem/UsageEndDate']}", **r}
            for r in rows]


def _hourly(rows: list[dict]) -> list[dict]:
    """Another report's copy of the same charges: other line item ids (no repeat for the identity check to find)."""
    return [dict(r, **{"identity/LineItemId": "h" + r["identity/LineItemId"]}) for r in rows]


def _legacy_reports(root: Path) -> str:
    rows = _timed(_rows(SP_RI))
    _write_legacy(root / "cur" / "daily-report-1.csv", rows)
    _write_legacy(root / "cur" / "hourly-report-1.csv", _hourly(rows))
    return str(root / "cur")


def _cur2_exports(root: Path) -> str:
    rows = _timed(_rows(SP_RI))
    _cur2_export(root / "bucket", "cur-daily", cur2_table(rows))
    _cur2_export(root / "bucket", "cur-hourly", cur2_table(_hourly(rows)))
    return str(root / "bucket")


def _legacy_and_cur2(root: Path) -> str:
    rows = _timed(_rows(SP_RI))
    _write_legacy(root / "in" / "legacy" / "daily-report-1.csv", rows)
    (root / "in" / "cur2").mkdir(parents=True)
    pq.write_table(cur2_table(_hourly(rows)), root / "in" / "cur2" / "cur2-00001.snappy.parquet")
    return str(root / "in")


TWO_COPIES = {"legacy-reports": (_legacy_reports, "two reports of aws|111111111111|2026-01 in one call"),
              "cur2-exports": (_cur2_exports, "two reports of aws|111111111111|2026-01 in one call"),
              "legacy-and-cur2": (_legacy_and_cur2, "billing period aws|111111111111|2026-01 is in two formats")}


@slow
@pytest.mark.parametrize("case", list(TWO_COPIES))
def test_two_aws_copies_of_one_month_in_one_call_are_refused_alike_on_both_engines(cli_spark, tmp_path, capsys,
                                                                                    case):
    """A daily and an hourly report (legacy CUR, or CUR 2.0 exports) of one payer and month, or a legacy report and
    a CUR 2.0 export of it, in one call: the DuckDB ingest refuses them; on Spark each file was its own task, no
    line item repeated, and the month was summed twice -- 32 rows, BilledCost 3789.00 instead of 1894.50,
    reconciled, exit 0. Now the same line on both engines, and no dataset."""
    make, says = TWO_COPIES[case]
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([make(tmp_path)], wh, ds, capsys)
    assert duck_code == 2 and len(duck_err.splitlines()) == 1 and says in duck_err, duck_err
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert not wh.exists() and not ds.exists()


def _parts(root: Path) -> str:
    rows = _timed(_rows(SP_RI))
    _write_legacy(root / "cur" / "daily-report-1.csv", rows[:7])
    _write_legacy(root / "cur" / "daily-report-2.csv", rows[7:])
    return str(root / "cur")


def _members(root: Path) -> str:
    rows = _timed(_rows(SP_RI))
    _write_legacy(root / "cur" / "team-a-1.csv", rows, account="333333333333")
    _write_legacy(root / "cur" / "team-b-1.csv", rows, id_prefix="b", account="444444444444")
    return str(root / "cur")


@slow
@pytest.mark.parametrize(("make", "months"), [(_parts, 1), (_members, 2)], ids=["parts", "member-reports"])
def test_parts_and_member_reports_in_separate_tasks_still_add_up_on_spark(cli_spark, tmp_path, capsys, make,
                                                                          months):
    """What the refusal must not catch: parts of one report, and members' own reports of one payer (other usage
    accounts), are added on both engines -- each file its own Spark task, decided on the driver without a re-run."""
    import duckdb

    from finops_kit.cli import main

    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    given = make(tmp_path)
    assert main(["ingest", given, "--warehouse", str(wh), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["ingest", given, "--engine", "spark", "--dataset", str(ds), "--no-progress"]) == 0
    said = capsys.readouterr()
    assert "(2 task(s))" in said.out + said.err, said  # one task per file, not merged and run again
    assert_same(wh, ds)
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == months * BILLED
    con.close()


@slow
@pytest.mark.parametrize("first", ["actual", "amortized", "pair"])
def test_azure_other_dataset_in_a_later_call_is_refused_alike_on_both_engines(cli_spark, tmp_path, capsys, first):
    """Azure's actual and amortized exports of a month with a reservation, the second in a later call: the DuckDB
    ingest refuses it (Source.stored_conflict); Spark never asked the hook and replaced the stored dataset, exit 0
    -- actual then amortized left BilledCost 10.00 (the 30.00 reservation purchase gone), amortized then actual
    EffectiveCost 40.00 (the purchase counted when bought), the pair then actual alone 40.00/40.00 instead of
    40.00/11.50. Now the same line on both engines, both stores as they were; ``--replace`` keeps only the new
    dataset on both, with the same note and rows."""
    actual, amortized = _azure_pair(tmp_path)
    setup, later = {"actual": (actual, amortized), "amortized": (amortized, actual),
                    "pair": (tmp_path / "az", actual)}[first]
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    assert [code for code, _ in _both_engines([str(setup)], wh, ds, capsys)] == [0, 0]
    before = (_warehouse_state(wh), _snapshot(ds))
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([str(later)], wh, ds, capsys)
    assert duck_code == 2 and len(duck_err.splitlines()) == 1 and "together in one call" in duck_err, duck_err
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert (_warehouse_state(wh), _snapshot(ds)) == before
    out = _both_engines([str(later), "--replace"], wh, ds, capsys)
    assert [code for code, _ in out] == [0, 0], out
    notes = [[ln for ln in err.splitlines() if ln.startswith("note: --replace: ")] for _, err in out]
    assert notes[0] == notes[1] and any("dataset" in n for n in notes[0]), notes
    assert_same(wh, ds)


@slow
def test_cur2_execution_is_chosen_alike_on_both_engines(cli_spark, tmp_path, capsys):
    """Pin (this already held: both engines plan their input with ingest.plan_inputs): of two CUR 2.0 executions
    of a period the one its time stamp names current is loaded on both engines, whatever the file times say, and
    executions nothing tells apart are refused with the same line."""
    old = _cur2_execution(tmp_path / "a", "20260111T020000Z-aaaa", _timed(_month_to_date(False)))
    _cur2_execution(tmp_path / "a", "20260201T020000Z-bbbb", _timed(_month_to_date(True)))
    _touch_later(old)
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    out = _both_engines([str(tmp_path / "a" / "cur2")], wh, ds, capsys)
    assert [code for code, _ in out] == [0, 0], out
    con = assert_same(wh, ds)
    assert con.execute("SELECT count(DISTINCT x_SourceFile), min(x_SourceFile) FROM focus").fetchone()[1].count(
        "20260201T020000Z-bbbb") == 1
    con.close()
    old = _cur2_execution(tmp_path / "b", "3f1c0e7a-aaaa", _timed(_month_to_date(False)))
    _cur2_execution(tmp_path / "b", "0b2d9e11-bbbb", _timed(_month_to_date(False)))
    _touch_later(old)
    before = (_warehouse_state(wh), _snapshot(ds))
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([str(tmp_path / "b" / "cur2")], wh, ds, capsys)
    assert duck_code == 2 and re.search(r"3f1c0e7a-aaaa.*0b2d9e11-bbbb|0b2d9e11-bbbb.*3f1c0e7a-aaaa", duck_err)
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert (_warehouse_state(wh), _snapshot(ds)) == before
