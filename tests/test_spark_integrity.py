"""The Spark ingest keeps the dataset and its proof whole where the DuckDB ingest keeps the warehouse whole.

Each test reproduces a reviewer's finding on tiny inputs: a re-ingested month left a stale reconciliation row, rows
without a ProviderName were lost from a rewritten partition, a dataset inside the input folder was read as input,
a dataset path with glob characters crashed, and huge costs crashed the quality check or were refused differently.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.test_spark_parity import _both_engines, _drop_a_row, _snapshot, assert_same, slow

FOCUS_HEADER = ("AvailabilityZone,BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
                "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,ChargePeriodEnd,"
                "ChargePeriodStart,ContractedCost,EffectiveCost,InvoiceIssuerName,ListCost,PricingCategory,"
                "PricingQuantity,PricingUnit,ProviderName,PublisherName,ServiceCategory,ServiceName,"
                "ServiceSubcategory,Tags")


def _focus_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> str:
    """A FOCUS 1.2 CSV: one usage day per row ``(account, provider, day YYYY-MM-DD, BilledCost)``."""
    lines = [FOCUS_HEADER]
    for account, provider, day, cost in rows:
        y, m, d = (int(x) for x in day.split("-"))
        nxt_m = f"{y + (m == 12)}-{m % 12 + 1:02d}-01"
        lines.append(f"z1,{cost},{account},Edge Co,USD,{nxt_m}T00:00:00Z,{y}-{m:02d}-01T00:00:00Z,Usage,,d,"
                     f"Usage-Based,{y}-{m:02d}-{d + 1:02d}T00:00:00Z,{day}T00:00:00Z,{cost},{cost},Nubis,{cost},"
                     f"Standard,1,Hours,{provider},Nubis,Compute,VM,,")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture()
def cli_spark(spark, monkeypatch):
    """The CLI on the tests' Spark session (``_both_engines`` runs ``finops-kit ingest`` on both engines)."""
    monkeypatch.delenv("FINOPS_SPARK_MASTER", raising=False)
    return spark


def _reconciliation(store: Path) -> list[tuple]:
    """``finops-kit reconcile``'s rows without the ingest id (one per ingest, different by design)."""
    from finops_kit.warehouse import connect, reconciliation_table

    con = connect(str(store), read_only=True, quiet=True)
    try:
        return sorted(tuple(v for i, v in enumerate(r) if i != 1) for r in reconciliation_table(con).fetchall())
    finally:
        con.close()


def _statuses(store: Path) -> list[str]:
    import finops_kit as fk

    con = fk.connect(str(store), quiet=True) if store.is_dir() else duckdb.connect(str(store), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT status FROM ingest_log").fetchall())
    finally:
        con.close()


@slow
def test_reingesting_one_month_shrinks_the_reconciliation_as_duckdb_does(cli_spark, tmp_path, capsys):
    """A two-month ingest, then one of its months again: the earlier ingest keeps the other month, so it stays
    active, and its row for the replaced month must go (the DuckDB ingest's ``_shrink_reconciliation``). Spark
    deleted reconciliation rows only of ingests whose every key was replaced: a stale row, ``reconcile`` failing."""
    both = _focus_csv(tmp_path / "in" / "both.csv", [("a1", "Nubis", "2026-01-01", "3"),
                                                     ("a1", "Nubis", "2026-02-01", "4")])
    jan = _focus_csv(tmp_path / "in2" / "jan.csv", [("a1", "Nubis", "2026-01-01", "5")])
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    assert [c for c, _ in _both_engines([both], wh, ds, capsys)] == [0, 0]
    out = _both_engines([jan], wh, ds, capsys)
    assert [c for c, _ in out] == [0, 0], out
    duck, spark = _reconciliation(wh), _reconciliation(ds)
    assert spark == duck
    assert len(duck) == 2 and all(r[-1] for r in duck)  # Feb of the first ingest, Jan of the second: all ok
    assert _statuses(ds) == _statuses(wh) == ["active", "active"]
    assert_same(wh, ds)
    # and a third ingest replacing February too leaves the first ingest without rows: 'replaced' on both
    feb = _focus_csv(tmp_path / "in3" / "feb.csv", [("a1", "Nubis", "2026-02-01", "6")])
    assert [c for c, _ in _both_engines([feb], wh, ds, capsys)] == [0, 0]
    assert _reconciliation(ds) == _reconciliation(wh)
    assert _statuses(ds) == _statuses(wh) == ["active", "active", "replaced"]


@slow
def test_rows_without_a_provider_stay_when_their_partition_is_rewritten(cli_spark, tmp_path, capsys):
    """Two FOCUS files of one month from two accounts, ProviderName empty: the second ingest rewrites the
    partition of NULL providers and must keep the first file's rows (Spark compared ``provider == None``, never
    true, and kept none: 2 rows, 5.00 instead of 4 rows, 10.00, exit 0)."""
    one = _focus_csv(tmp_path / "a" / "np1_202601.csv", [("np1", "", "2026-01-01", "2.5"),
                                                         ("np1", "", "2026-01-02", "2.5")])
    two = _focus_csv(tmp_path / "b" / "np2_202601.csv", [("np2", "", "2026-01-01", "2.5"),
                                                         ("np2", "", "2026-01-02", "2.5")])
    # and a file with rows of both kinds (the partitions it touches were sorted: None < 'Nubis' raised)
    mixed = _focus_csv(tmp_path / "c" / "np3_202601.csv", [("np3", "", "2026-01-01", "1"),
                                                           ("np4", "Nubis", "2026-01-01", "1")])
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    for f in (one, two, mixed):
        assert [c for c, _ in _both_engines([f], wh, ds, capsys)] == [0, 0]
    con = assert_same(wh, ds)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (6, Decimal("12"))
    assert _reconciliation(ds) == _reconciliation(wh)


def test_the_proof_refuses_a_run_that_loses_stored_rows_of_a_rewritten_partition(spark, tmp_path):
    """The reconciliation proves the run's own rows; the stored rows a rewritten partition keeps are counted
    before the write and after it, so one lost on the way refuses the run and leaves the dataset as it was."""
    from finops_kit.errors import ReconciliationError
    from finops_kit.spark import ingest_spark

    ds = tmp_path / "ds"
    ingest_spark([_focus_csv(tmp_path / "a" / "x1_202601.csv", [("x1", "Nubis", "2026-01-01", "1"),
                                                                  ("x1", "Nubis", "2026-01-02", "2")])],
                 str(ds), spark=spark)
    before = _snapshot(ds)

    def lose_a_stored_row(focus_dir: Path) -> None:  # keeps the run's rows, drops one stored row
        import pyarrow.parquet as pq

        for f in focus_dir.rglob("*.parquet"):
            t = pq.read_table(f)
            stored = [i for i, v in enumerate(t.column("BillingAccountId").to_pylist()) if v == "x1"]
            if stored:
                pq.write_table(t.take([i for i in range(t.num_rows) if i != stored[0]]), f)
                return

    with pytest.raises(ReconciliationError, match="stored row.*nothing was written") as err:
        ingest_spark([_focus_csv(tmp_path / "b" / "x2_202601.csv", [("x2", "Nubis", "2026-01-01", "5")])],
                     str(ds), spark=spark, _before_reconcile=lose_a_stored_row)
    assert len(str(err.value).splitlines()) == 1
    assert _snapshot(ds) == before


@slow
def test_a_dataset_inside_the_input_folder_is_not_read_as_input(cli_spark, tmp_path, capsys):
    """``finops-kit ingest inside --engine spark --dataset inside/focus-dataset`` twice: the second run read the
    dataset's own files (tables/data_quality.parquet: unknown billing export format, exit 2). They are listed as
    skipped, and the second run is a re-run (same rows)."""
    from finops_kit.cli import main
    from finops_kit.ingest import plan_inputs

    inside = tmp_path / "inside"
    _focus_csv(inside / "acme_202601.csv", [("a1", "Nubis", "2026-01-01", "3")])
    ds = inside / "focus-dataset"
    for _ in range(2):
        code = main(["ingest", str(inside), "--engine", "spark", "--dataset", str(ds), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 0, err
    assert re.search(r"skipped .*focus-dataset.*the store this ingest writes", err), err
    wh = tmp_path / "wh.duckdb"
    assert main(["ingest", str(inside / "acme_202601.csv"), "--warehouse", str(wh), "--no-progress"]) == 0
    assert_same(wh, ds)
    formats, skipped = plan_inputs([str(inside)], exclude=[str(ds)])
    assert formats == {"focus": [str(inside / "acme_202601.csv")]}
    assert skipped and all("focus-dataset" in s["path"] for s in skipped)


def test_exports_kept_in_the_dataset_folder_are_input_its_store_is_not(tmp_path):
    """Only the store's own files are left out of an ingest's input: a review found the whole dataset folder
    excluded, so exports kept in ``lake/raw/`` could no longer be ingested into ``lake`` (exit 2, nothing to
    ingest). No Spark needed: the planning is shared by both engines."""
    from finops_kit.ingest import plan_inputs
    from finops_kit.spark import store_paths

    lake = tmp_path / "lake"
    _focus_csv(lake / "raw" / "acme_202601.csv", [("a1", "Nubis", "2026-01-01", "3")])
    (lake / "tables").mkdir(parents=True)
    (lake / "tables" / "data_quality.parquet").write_bytes(b"PAR1")
    (lake / "_staging-1234").mkdir()
    (lake / "_staging-1234" / "x.csv").write_text("a,b\n1,2\n")
    (lake / "finops-dataset.json").write_text("{}")
    formats, skipped = plan_inputs([str(lake)], exclude=store_paths(lake))
    assert formats == {"focus": [str(lake / "raw" / "acme_202601.csv")]}
    assert {Path(s["path"]).name for s in skipped} >= {"data_quality.parquet", "x.csv"}


@slow
def test_a_dataset_path_with_glob_characters_is_a_path(spark, tmp_path):
    """``--dataset 'p[1]{a,b}?'``: Spark's reader expanded the path as a pattern (PATH_NOT_FOUND on its own
    staging folder) and left an empty folder. Now it ingests, re-ingests (reads the stored rows back) and a
    failed run into a new folder leaves nothing behind."""
    from finops_kit.errors import ReconciliationError
    from finops_kit.spark import ingest_spark

    ds = tmp_path / "p[1]{a,b}?"
    jan = _focus_csv(tmp_path / "in" / "acme_202601.csv", [("a1", "Nubis", "2026-01-01", "3")])
    feb = _focus_csv(tmp_path / "in2" / "acme_202602.csv", [("a1", "Nubis", "2026-02-01", "4")])
    assert ingest_spark([jan], str(ds), spark=spark).rows == 1
    assert ingest_spark([feb], str(ds), spark=spark).rows == 1
    wh = tmp_path / "wh.duckdb"
    from finops_kit.ingest import ingest

    ingest([jan], warehouse=str(wh), progress=False)
    ingest([feb], warehouse=str(wh), progress=False)
    assert_same(wh, ds)
    new = tmp_path / "q[2]" / "ds{x}"
    with pytest.raises(ReconciliationError):
        ingest_spark([jan], str(new), spark=spark, _before_reconcile=_drop_a_row)
    assert not (tmp_path / "q[2]").exists()


def _huge_cur(folder: Path) -> list[str]:
    """Two parts of one legacy CUR month, each with one charge of 6e25: each part's total fits FOCUS's
    DECIMAL(38,12), their sum does not."""
    src = Path(__file__).resolve().parent / "fixtures" / "aws" / "sp_ri_legacy.csv"
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    month = folder / "20260101-20260201"
    month.mkdir(parents=True)
    for n, part in enumerate((rows[:7], rows[7:]), 1):
        part[0] = {**part[0], "lineItem/UnblendedCost": "60000000000000000000000000"}
        path = month / f"huge-cur-{n}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(part)
        out.append(str(path))
    return out


def test_a_huge_contracted_cost_does_not_crash_the_quality_check(tmp_path):
    """ContractedCost >= 1e14 fits FOCUS's DECIMAL(38,12) but not the DECIMAL(38,24) of ContractedUnitPrice x
    PricingQuantity: the quality check crashed (ConversionException at quality.py, exit 1)."""
    from finops_kit.cli import main

    part = _huge_cur(tmp_path / "in")[0]
    assert main(["ingest", part, "--warehouse", str(tmp_path / "wh.duckdb"), "--no-progress"]) == 0
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert con.execute("SELECT max(BilledCost) FROM focus").fetchone()[0] == Decimal("6e25")


@slow
def test_a_total_beyond_focus_decimal_is_the_same_refusal_on_both_engines(cli_spark, tmp_path, capsys):
    """Two CUR parts whose sum overflows DECIMAL(38,12): DuckDB refuses with one line (exit 2); Spark ingested
    each part in its own task and crashed in its proof (ArithmeticException, exit 1). Same line now, nothing
    written on either engine."""
    _huge_cur(tmp_path / "in")
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([str(tmp_path / "in")], wh, ds, capsys)
    assert duck_code == 2 and len(duck_err.splitlines()) == 1, duck_err
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert not wh.exists() and not ds.exists()

