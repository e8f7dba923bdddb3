"""``finops-kit ingest --engine spark`` against the DuckDB ingest: same rows, same totals, same errors.

One local Spark session per xdist worker (``local[2]``, 2 shuffle partitions, no UI). Under CI (``CI=true``) a
missing Java or pyspark fails these tests instead of skipping them: CI installs both (``.ci/run``, the dev extra).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from finops_kit.errors import InputError, ReconciliationError
from finops_kit.ingest import ingest
from tests.test_oci_source import oci_file, oci_parts  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Spark starts a JVM and runs every sample format twice: with the report/browser suites in the full run (make test)
slow = pytest.mark.slow

#: columns that differ by design between two runs (the run's id)
PER_RUN = {"x_IngestId"}


def _need_spark() -> None:
    from finops_kit.spark import JAVA_HINT, java_available

    problems = []
    try:
        import pyspark  # noqa: F401
    except ImportError:
        problems.append("pyspark is not installed (pip install -e '.[dev]')")
    if not java_available():
        problems.append(JAVA_HINT)
    if problems:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


@pytest.fixture(scope="session")
def spark():
    _need_spark()
    from finops_kit.spark import session

    s = session("local[2]", shuffle_partitions=2)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _duckdb(paths: list[str], tmp: Path, **kw) -> Path:
    wh = tmp / "wh.duckdb"
    ingest(paths, warehouse=str(wh), progress=False, **kw)
    return wh


def assert_same(warehouse: Path, dataset: Path) -> duckdb.DuckDBPyConnection:
    """The Spark dataset opened as ``fk.connect(DATASET)`` opens it vs the DuckDB warehouse: identical columns and
    types, per-period/currency totals, row counts and rows (every column but the run id)."""
    import finops_kit as fk

    con = fk.connect(str(dataset), quiet=True)
    con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
    wh_cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'wh' "
                          "AND table_name = 'focus' ORDER BY ordinal_position").fetchall()
    ds_cols = [tuple(r[:2]) for r in con.execute("DESCRIBE focus").fetchall()]
    assert sorted(ds_cols) == sorted(wh_cols), set(ds_cols) ^ set(wh_cols)
    totals = ("SELECT strftime(BillingPeriodStart, '%Y-%m'), BillingCurrency, count(*), sum(BilledCost), "
              "sum(EffectiveCost), sum(ListCost), sum(ContractedCost) FROM {} GROUP BY ALL ORDER BY ALL")
    assert con.execute(totals.format("wh.focus")).fetchall() == con.execute(totals.format("focus")).fetchall()
    cols = ", ".join(f'"{c}"' for c, _ in wh_cols if c not in PER_RUN)
    for a, b in (("wh.focus", "focus"), ("focus", "wh.focus")):
        diff = con.execute(f"SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b} LIMIT 3").fetchall()
        assert diff == [], f"rows in {a} not in {b}: {diff}"
    # what every report header shows: the proof re-checked against the rows the dataset holds (one Spark ingest
    # of several formats wrote one ingest id, and the header compared each format's source totals with the rows
    # of all formats: 'DO NOT reconcile' on a correct dataset)
    from finops_kit.warehouse import reconciliation_table

    bad = [r for r in reconciliation_table(con).fetchall() if not r[-1]]
    assert bad == [], bad[:3]
    return con


SAMPLE_FORMATS = {
    "aws-cur-legacy": [SAMPLES / "aws-cur-legacy"],
    "aws-cur2": [SAMPLES / "aws-cur2"],
    "azure": [SAMPLES / "azure"],
    "gcp": [SAMPLES / "gcp"],
    "focus": [FIXTURES / "focus" / "quirky_focus_1_2.csv"],
    "two formats in one call": [SAMPLES / "gcp", FIXTURES / "focus" / "quirky_focus_1_2.csv"],
}


@slow
@pytest.mark.parametrize("fmt", list(SAMPLE_FORMATS))
def test_spark_ingest_equals_duckdb_ingest(spark, tmp_path, fmt):
    from finops_kit.spark import ingest_spark

    paths = [str(p) for p in SAMPLE_FORMATS[fmt]]
    dataset = tmp_path / "ds"
    res = ingest_spark(paths, str(dataset), spark=spark)
    wh = tmp_path / "wh.duckdb"
    duck = ingest(paths, warehouse=str(wh), progress=False)
    con = assert_same(wh, dataset)
    assert res.rows == con.execute("SELECT count(*) FROM focus").fetchall()[0][0] > 0
    # the same data-quality findings, as the same type (Finding, money exact), whichever engine ran
    duck_findings = [f for r in (duck.parts or [duck]) for f in r.quality]
    assert sorted(res.quality, key=repr) == sorted(duck_findings, key=repr)
    assert all(r["ok"] for r in res.reconciliation)
    # the reconciliation proof travels with the data and holds there too
    recon = con.execute("SELECT count(*), bool_and(ok), sum(focus_rows) FROM reconciliation").fetchall()[0]
    assert recon == (len(res.reconciliation), True, res.rows)
    from finops_kit.dataset import validate

    assert validate(dataset).engine == "spark"


def test_make_test_stops_with_one_line_when_java_is_missing(tmp_path):
    """``make java`` (part of ``make test``) without Java and without apt-get: exit 1 and one line saying how."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java, no apt-get
    out = subprocess.run([sys.executable, str(REPO / "tests" / "java_check.py"), "--ensure"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no Java for the Spark tests" in out.stderr


#: the shared corpus: one call with every format (real exports by others; Azure EA actual + amortized as a pair)
CORPUS = [
    "corpus/raw/aws/legacy_cur/focus_converters__sample-anonymous-aws-export-dataset.csv",
    "corpus/raw/aws/legacy_cur/koku__test_cur.csv",
    "corpus/raw/azure/finops-toolkit__EA_ActualCost_Small.csv",
    "corpus/raw/azure/finops-toolkit__EA_AmortizedCost_Small.csv",
    "corpus/raw/gcp/koku__tmp_example_2020-10.csv",
    "corpus/focus/sample-data/FOCUS-1.0/focus_sample.csv",
    "corpus/focus/provider-native/oci/oci_cost_report_sample.csv",
]


@slow
def test_shared_corpus_in_one_call_equals_duckdb(spark, tmp_path, shared):
    from finops_kit.spark import ingest_spark

    paths = [str(shared / p) for p in CORPUS]
    res = ingest_spark(paths, str(tmp_path / "ds"), spark=spark)
    assert {"aws-cur", "azure", "gcp", "focus", "oci"} <= set(res.formats)
    assert_same(_duckdb(paths, tmp_path), tmp_path / "ds")


def _bad_csv(tmp_path: Path) -> Path:
    """A legacy CUR file whose 3rd data row has an unterminated quote (a truncated upload)."""
    src = FIXTURES / "aws" / "sp_ri_legacy.csv"
    lines = src.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(",", ',"', 1)
    bad = tmp_path / "bad-cur.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


@slow
def test_malformed_csv_row_gives_the_same_one_line_error(spark, tmp_path):
    from finops_kit.spark import ingest_spark

    bad = _bad_csv(tmp_path)
    with pytest.raises(InputError) as duck:
        ingest([str(bad)], warehouse=str(tmp_path / "wh.duckdb"), progress=False)
    with pytest.raises(InputError) as on_spark:
        ingest_spark([str(bad)], str(tmp_path / "ds"), spark=spark)
    assert str(on_spark.value) == str(duck.value)
    assert "\n" not in str(on_spark.value) and str(bad) in str(on_spark.value)
    assert on_spark.value.file == duck.value.file and on_spark.value.row == duck.value.row
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())  # nothing partial written


def _copy_a_part(focus_dir: Path) -> None:
    part = sorted(focus_dir.rglob("*.parquet"))[0]
    shutil.copy(part, part.with_name("copy-" + part.name))


def _drop_a_row(focus_dir: Path) -> None:
    part = sorted(focus_dir.rglob("*.parquet"))[0]
    con = duckdb.connect()
    kept = con.sql(f"SELECT * FROM read_parquet('{part}') OFFSET 1").to_arrow_table()
    con.close()
    import pyarrow.parquet as pq

    pq.write_table(kept, part)


@slow
@pytest.mark.parametrize("damage", [_copy_a_part, _drop_a_row], ids=["duplicated-rows", "dropped-row"])
def test_reconciliation_on_spark_fails_on_damaged_output_and_writes_nothing(spark, tmp_path, damage):
    from finops_kit.spark import ingest_spark

    dataset = tmp_path / "ds"
    with pytest.raises(ReconciliationError, match="reconciliation failed.*nothing was written"):
        ingest_spark([str(SAMPLES / "gcp")], str(dataset), spark=spark, _before_reconcile=damage)
    assert not (dataset / "finops-dataset.json").exists() and not (dataset / "focus").exists()


@slow
def test_rerun_is_idempotent_and_a_partial_input_adds_to_its_period(spark, tmp_path):
    """Re-ingesting replaces the rows of its keys (no double counting); the DuckDB path does the same."""
    from finops_kit.spark import ingest_spark

    files = sorted(str(p) for p in (SAMPLES / "gcp").glob("*.jsonl.gz"))[:3]
    dataset = tmp_path / "ds"
    first = ingest_spark(files, str(dataset), spark=spark)
    again = ingest_spark(files, str(dataset), spark=spark)
    assert again.replaced_rows == first.rows == again.rows
    con = assert_same(_duckdb(files, tmp_path), dataset)
    log = con.execute("SELECT ingest_id, status FROM ingest_log ORDER BY started_at").fetchall()
    assert log == [(first.ingest_id, "replaced"), (again.ingest_id, "active")]
    assert con.execute("SELECT DISTINCT ingest_id FROM reconciliation").fetchall() == [(again.ingest_id,)]


@slow
def test_charges_repeated_across_tasks_are_refused_like_duckdb_and_deduped(spark, tmp_path):
    """A copy of one month's export under a name without a period lands in another task: the key it shares merges
    the two tasks, and the DuckDB rule refuses it with the same line (or --dedupe drops the copies)."""
    import gzip

    from finops_kit.spark import ingest_spark

    month = sorted((SAMPLES / "gcp").glob("*.jsonl.gz"))[0]
    other = sorted((SAMPLES / "gcp").glob("*.jsonl.gz"))[1]
    copy = tmp_path / "in" / "copy-of-export.jsonl"  # 40 rows of the month re-sent (not a byte-identical file)
    copy.parent.mkdir()
    (tmp_path / "dd").mkdir()
    with gzip.open(month, "rt", encoding="utf-8") as fh:
        copy.write_text("".join(fh.readlines()[:40]), encoding="utf-8")
    paths = [str(month), str(other), str(copy)]
    with pytest.raises(InputError) as duck:
        ingest(paths, warehouse=str(tmp_path / "wh.duckdb"), progress=False)
    with pytest.raises(InputError) as on_spark:
        ingest_spark(paths, str(tmp_path / "ds"), spark=spark, tasks=3)
    assert str(on_spark.value) == str(duck.value)
    res = ingest_spark(paths, str(tmp_path / "ds"), spark=spark, dedupe=True, tasks=3)
    assert res.dropped and res.dropped[0]["path"] == str(copy)
    assert_same(_duckdb(paths, tmp_path / "dd", dedupe=True), tmp_path / "ds")


def _sized(folder: Path, name: str, mb: int) -> str:
    """A file of ``mb`` MiB (sparse: only its size matters to the packing)."""
    path = folder / name
    with open(path, "wb") as fh:
        fh.truncate(mb * 2**20)
    return str(path)


def test_tasks_stay_bounded_when_the_input_grows(tmp_path):
    """At 10M rows the 14 monthly CUR files were packed into 2 x cores = 4 tasks of ~2.5M rows each: a task's
    rows are one partition in the JVM, so its memory grew with the input. Small files are still packed into
    the asked number of tasks; beyond ``tasks x TASK_BYTES`` there are more tasks, none above TASK_BYTES unless
    it is one file (or one billing period of a format without charge identity), which is never split."""
    from finops_kit.spark import TASK_BYTES, file_groups

    mb = TASK_BYTES // 2**20
    small = [_sized(tmp_path, f"small-{i:02d}.csv.gz", 1) for i in range(14)]
    assert len(file_groups({"aws-cur": small}, tasks=4)) == 4
    big = [_sized(tmp_path, f"month-{i:02d}.csv.gz", mb // 3) for i in range(14)]
    groups = file_groups({"aws-cur": big}, tasks=4)
    assert sorted(f for g in groups for f in g) == sorted(big)
    assert len(groups) == -(-14 * (mb // 3) // mb) > 4
    assert all(sum(os.path.getsize(f) for f in g) <= TASK_BYTES for g in groups)
    huge = [_sized(tmp_path, "huge.csv.gz", 3 * mb), *small[:3]]
    groups = file_groups({"aws-cur": huge}, tasks=2)
    assert [huge[0]] in groups and sorted(f for g in groups for f in g) == sorted(huge)
    # a format without charge identity keeps a billing period's files in one task, whatever their size
    gcp = [_sized(tmp_path, f"gcp_billing_202605_{i}.csv", mb) for i in range(3)]
    assert file_groups({"gcp": gcp}, tasks=2) == [gcp]


def test_a_local_spark_gets_kryo_and_a_heap_sized_to_its_cores():
    """``local[2]`` at 1M rows died with OutOfMemoryError in Spark's default 1 GB heap, Java-serialized cache
    (see spark.local_conf). The kit's own local session asks for Kryo and a heap of 1 GB per core (at least 2 GB);
    a heap the user chose, or a cluster, is left alone."""
    from finops_kit.spark import local_conf

    kryo = "org.apache.spark.serializer.KryoSerializer"
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    if ram_gb < 16:
        pytest.skip("the heap is capped at a quarter of the RAM: this machine has less than 16 GB")
    assert local_conf("local[2]", {}) == {"spark.serializer": kryo, "spark.driver.memory": "2g"}
    assert local_conf("local[4]", {})["spark.driver.memory"] == "4g"
    assert local_conf("local", {})["spark.driver.memory"] == "2g"
    assert local_conf("local[*]", {})["spark.driver.memory"] == f"{max(2, os.cpu_count() or 2)}g"
    assert local_conf("local[2]", {"SPARK_DRIVER_MEMORY": "8g"}) == {"spark.serializer": kryo}
    assert local_conf("local[2]", {"PYSPARK_SUBMIT_ARGS": "--driver-memory 6g pyspark-shell"}) == {
        "spark.serializer": kryo}
    assert local_conf("spark://head:7077", {}) == {"spark.serializer": kryo}


@slow
def test_spark_ingest_writes_straight_to_s3(spark, s3_env, tmp_path, monkeypatch):
    """``ingest --engine spark --dataset s3://...``: the dataset in the bucket (through the kit's boto3 layer, a
    moto server on 127.0.0.1) opens elsewhere with the DuckDB warehouse's rows; a re-run replaces the stored rows
    (the mirror is synced first) and leaves no stale objects."""
    from finops_kit.spark import ingest_spark

    s3_env.create_bucket(Bucket="lake")
    paths = [str(SAMPLES / "gcp")]
    writer, reader = tmp_path / "writer", tmp_path / "reader"
    writer.mkdir()
    reader.mkdir()
    monkeypatch.chdir(writer)
    first = ingest_spark(paths, "s3://lake/focus", spark=spark)
    assert first.dataset == "s3://lake/focus"
    keys = {o["Key"] for o in s3_env.list_objects_v2(Bucket="lake", Prefix="focus/")["Contents"]}
    again = ingest_spark(paths, "s3://lake/focus", spark=spark)
    assert again.replaced_rows == first.rows
    after = {o["Key"] for o in s3_env.list_objects_v2(Bucket="lake", Prefix="focus/")["Contents"]}
    parts = {k for k in after if k.endswith(".parquet") and "/focus/provider=" in f"/{k}"}
    assert parts and not parts & keys  # every partition rewritten, the old part files deleted
    monkeypatch.chdir(reader)
    con = assert_same(_duckdb(paths, tmp_path), "s3://lake/focus")
    assert con.execute("SELECT count(*) FROM focus").fetchall()[0][0] == again.rows


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (what a reader of the dataset could see)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dataset_with_two_partitions(root: Path) -> None:
    for part in ("provider=AWS/billing_period=2026-09", "provider=AWS/billing_period=2026-10"):
        (root / "focus" / part).mkdir(parents=True)
        (root / "focus" / part / "part-0.parquet").write_bytes(b"old " + part.encode())
    (root / "tables").mkdir()
    (root / "tables" / "ingest_log.parquet").write_bytes(b"old log")
    (root / "finops-dataset.json").write_text('{"old": true}')


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5, 6, 7, 100])
def test_a_failed_swap_leaves_the_dataset_as_it_was(tmp_path, monkeypatch, fail_at):
    """The Spark ingest changes the dataset in steps (a rename per partition, then the tables, then the manifest).
    Whichever step fails, undo puts back every old folder and file: a reader sees the dataset as before the ingest,
    with nothing of the new one and nothing set aside left behind. Before, the old versions of the partitions
    already swapped were deleted with the trash folder even when a later rename failed."""
    from finops_kit.spark import _Swap

    root = tmp_path / "ds"
    _dataset_with_two_partitions(root)
    before = _snapshot(root)
    staged = tmp_path / "ds" / "_staging-x"
    for part in ("provider=AWS/billing_period=2026-10", "provider=GCP/billing_period=2026-10"):
        (staged / "focus" / part).mkdir(parents=True)
        (staged / "focus" / part / "part-0.parquet").write_bytes(b"new " + part.encode())
    (staged / "ingest_log.parquet").write_bytes(b"new log")
    (staged / "finops-dataset.json").write_text('{"new": true}')
    real_rename, calls = Path.rename, []

    def rename(self, target):
        calls.append(self)
        if len(calls) == fail_at:
            raise OSError(f"disk full at step {fail_at}")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    swap = _Swap(root)
    with pytest.raises(OSError, match="disk full"):
        try:
            for part in ("provider=AWS/billing_period=2026-10", "provider=GCP/billing_period=2026-10"):
                swap.replace(staged / "focus" / part, root / "focus" / part)
            swap.replace(staged / "ingest_log.parquet", root / "tables" / "ingest_log.parquet")
            swap.replace(staged / "finops-dataset.json", root / "finops-dataset.json")
            raise OSError("disk full after the last step")
        except BaseException:
            swap.undo()
            raise
    monkeypatch.setattr(Path, "rename", real_rename)
    shutil.rmtree(staged)
    assert _snapshot(root) == before
    assert sorted(p.name for p in root.iterdir()) == ["finops-dataset.json", "focus", "tables"]
    assert sorted(p.name for p in (root / "focus").iterdir()) == ["provider=AWS"]  # no empty GCP folder left


def _one_partition_swapped(root: Path, staged: Path):
    """A dataset of two partitions whose 2026-10 partition has been swapped for a staged one (not yet committed)."""
    from finops_kit.spark import _Swap

    _dataset_with_two_partitions(root)
    (staged / "p").mkdir(parents=True)
    (staged / "p" / "part-0.parquet").write_bytes(b"new")
    swap = _Swap(root)
    swap.replace(staged / "p", root / "focus" / "provider=AWS" / "billing_period=2026-10")
    return swap


def test_a_step_that_cannot_be_undone_keeps_the_old_versions_and_says_where(tmp_path, monkeypatch):
    from finops_kit.errors import FinopsError

    root = tmp_path / "ds"
    swap = _one_partition_swapped(root, tmp_path / "new")

    def rename(self, target):
        raise OSError("read-only file system")

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(FinopsError, match=r"1 change\(s\) could not be undone.*previous versions are kept in .*_trash-"):
        swap.undo()
    monkeypatch.undo()
    kept = next(root.glob("_trash-*"))
    assert (kept / "old" / "focus" / "provider=AWS" / "billing_period=2026-10" / "part-0.parquet").read_bytes() \
        == b"old provider=AWS/billing_period=2026-10"


def test_a_committed_swap_keeps_the_new_and_drops_what_it_set_aside(tmp_path):
    root = tmp_path / "ds"
    swap = _one_partition_swapped(root, tmp_path / "new")
    swap.commit()
    assert (root / "focus" / "provider=AWS" / "billing_period=2026-10" / "part-0.parquet").read_bytes() == b"new"
    assert (root / "focus" / "provider=AWS" / "billing_period=2026-09" / "part-0.parquet").read_bytes().startswith(
        b"old")
    assert sorted(p.name for p in root.iterdir()) == ["finops-dataset.json", "focus", "tables"]


@slow
def test_a_failure_after_the_partitions_moved_restores_the_dataset(spark, tmp_path, monkeypatch):
    """A re-ingest whose last step fails (here the dataset's validation) leaves the stored dataset byte for byte as
    it was -- partitions, tables and manifest -- and the next run works."""
    from finops_kit import spark as sp

    files = sorted(str(p) for p in (SAMPLES / "gcp").glob("*.jsonl.gz"))[:2]
    dataset = tmp_path / "ds"
    first = sp.ingest_spark(files, str(dataset), spark=spark)
    before = _snapshot(dataset)

    def broken(root):
        raise OSError("validation could not read a footer")

    import finops_kit.dataset as ds

    monkeypatch.setattr(ds, "validate", broken)
    with pytest.raises(OSError, match="footer"):
        sp.ingest_spark(files, str(dataset), spark=spark)
    assert _snapshot(dataset) == before
    monkeypatch.undo()
    again = sp.ingest_spark(files, str(dataset), spark=spark)
    assert again.replaced_rows == first.rows


# ---- evidence beyond usage days: both engines refuse (or, with --replace, replace) the same inputs -------------
def _superseded_copy(tmp_path: Path) -> tuple[list[list[str]], list[str], str]:
    """The stored month came from a delivery that skipped the old assembly as superseded; a stale sync of that
    assembly is an older copy."""
    from tests.test_delivery import NEW, OLD, make_legacy_delivery

    d = make_legacy_delivery(tmp_path / "bucket")
    stale = tmp_path / "old-sync" / "cur-hourly" / d["period"].name
    (stale / OLD).mkdir(parents=True)
    shutil.copy(d["old"], stale / OLD)
    shutil.copy(d["period"] / OLD / "cur-hourly-Manifest.json", stale / "cur-hourly-Manifest.json")
    return ([[str(tmp_path / "bucket")]], [str(tmp_path / "old-sync")],
            rf"billing period aws\|111111111111\|2026-01: this input .*{OLD}.*superseded by assembly {NEW}")


def _estimate_over_invoiced(tmp_path: Path) -> tuple[list[list[str]], list[str], str]:
    """Estimate, then the invoiced month; the estimate again is an older copy (no InvoiceId)."""
    from tests.test_delivery import add_invoiced_assembly, make_legacy_delivery

    estimate = make_legacy_delivery(tmp_path / "estimate")
    add_invoiced_assembly(tmp_path / "final" / "cur-hourly" / estimate["period"].name)
    return ([[str(tmp_path / "estimate")], [str(tmp_path / "final")]], [str(tmp_path / "estimate")],
            r"billing period aws\|111111111111\|2026-01 was invoiced: .*not invoiced")


def _member_over_payer(tmp_path: Path) -> tuple[list[list[str]], list[str], str]:
    """The payer's month, then a member account's own CUR of it: the same days, fewer usage accounts."""
    from tests.test_ingest_rules import LEGACY_OCTOBER, _member_cur

    member_cur, member, others = _member_cur(tmp_path)
    return ([[str(LEGACY_OCTOBER)]], [str(member_cur)],
            rf"billing period aws\|\d+\|2026-10: the warehouse holds .*{others[0]}.* and this input only {member}")


def _another_part(tmp_path: Path) -> tuple[list[list[str]], list[str], str]:
    """Part 1 of a CUR 2.0 period folder, then part 2 alone: the same days, other charges of one delivery."""
    import pyarrow.parquet as pq

    from tests.test_ingest_rules import _cur2_month

    table = pq.read_table(_cur2_month("2026-04"))
    folder = tmp_path / "acme-ai-cur2" / "data" / "BILLING_PERIOD=2026-04"
    folder.mkdir(parents=True)
    parts = [folder / f"acme-ai-cur2-0000{i}.snappy.parquet" for i in (1, 2)]
    for i, part in enumerate(parts):
        pq.write_table(table.take(list(range(i, table.num_rows, 2))), part)
    return ([[str(parts[0])]], [str(parts[1])],
            r"billing period aws\|111122223333\|2026-04: the warehouse holds part\(s\) acme-ai-cur2-00001")


EVIDENCE = {"superseded-assembly": _superseded_copy, "estimate-over-invoiced": _estimate_over_invoiced,
            "member-account-cur": _member_over_payer, "another-part": _another_part}


def _both_engines(args: list[str], wh: Path, ds: Path, capsys) -> list[tuple[int, str]]:
    """``finops-kit ingest ARGS`` into the warehouse, then with ``--engine spark`` into the dataset (the CLI reuses
    the test's active Spark session): ``[(exit code, stderr)]`` of each."""
    from finops_kit.cli import main

    out = []
    for extra in (["--warehouse", str(wh)], ["--engine", "spark", "--dataset", str(ds)]):
        code = main(["ingest", *args, *extra, "--no-progress"])
        out.append((code, capsys.readouterr().err.strip()))
    return out


def _warehouse_state(wh: Path) -> tuple:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return (con.execute("SELECT count(*), count(InvoiceId), sum(BilledCost), string_agg(DISTINCT x_IngestId) "
                            "FROM focus").fetchall(),
                con.execute("SELECT ingest_id, status FROM ingest_log ORDER BY ALL").fetchall(),
                con.execute("SELECT * FROM reconciliation ORDER BY ALL").fetchall())
    finally:
        con.close()


@slow
@pytest.mark.parametrize("evidence", list(EVIDENCE))
def test_an_older_or_narrower_copy_is_refused_alike_on_both_engines(spark, tmp_path, capsys, monkeypatch, evidence):
    """The DuckDB ingest refuses a copy of a stored month that the rows show is older (an assembly the stored
    delivery superseded, an estimate over the invoiced month) or narrower (a member account's CUR over its payer's
    month). The Spark ingest called the same rule without that evidence and replaced the month, exit 0: the same
    input sequence now gives the same one-line refusal on both engines, and leaves both stores as they were;
    ``--replace`` replaces on both, with the same notes and the same rows."""
    monkeypatch.delenv("FINOPS_SPARK_MASTER", raising=False)
    (tmp_path / "in").mkdir()
    setup, stale, pattern = EVIDENCE[evidence](tmp_path / "in")
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    for args in setup:
        assert [code for code, _ in _both_engines(args, wh, ds, capsys)] == [0, 0]
    before = (_warehouse_state(wh), _snapshot(ds))
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines(stale, wh, ds, capsys)
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert duck_code == 2 and len(duck_err.splitlines()) == 1 and duck_err.startswith("finops-kit: error: ")
    assert re.search(pattern + r".*--replace", duck_err), duck_err
    assert (_warehouse_state(wh), _snapshot(ds)) == before
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([*stale, "--replace"], wh, ds, capsys)
    assert duck_code == spark_code == 0, (duck_err, spark_err)
    notes = [[ln for ln in err.splitlines() if ln.startswith("note: --replace: ")] for err in (duck_err, spark_err)]
    assert notes[0] == notes[1] and notes[0], notes
    assert_same(wh, ds)


@slow
def test_oci_files_add_up_and_a_renamed_copy_is_refused_alike_on_both_engines(spark, tmp_path, capsys, monkeypatch,
                                                                               oci_parts):  # noqa: F811
    """OCI report files are incremental: the second file of a day is added on both engines (it had replaced the
    first: 2023-11 billed 2.523589 -> 1.399941, exit 0), and the first file again under another name is refused
    with the same line on both, leaving both stores as they were."""
    from tests.test_oci_source import _write

    monkeypatch.delenv("FINOPS_SPARK_MASTER", raising=False)
    first, second, header, early, _ = oci_parts
    wh, ds = tmp_path / "wh.duckdb", tmp_path / "ds"
    for f in (first, second):
        assert [code for code, _ in _both_engines([str(f)], wh, ds, capsys)] == [0, 0]
    assert_same(wh, ds)
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone()[0] == 506
    con.close()
    before = (_warehouse_state(wh), _snapshot(ds))
    copy = _write(tmp_path / "elsewhere" / "copy.csv", header, early)
    (duck_code, duck_err), (spark_code, spark_err) = _both_engines([str(copy)], wh, ds, capsys)
    assert (spark_code, spark_err) == (duck_code, duck_err)
    assert duck_code == 2 and "line item(s) already stored from" in duck_err, duck_err
    assert (_warehouse_state(wh), _snapshot(ds)) == before


@slow
def test_spark_upgrades_old_oci_keys_as_duckdb_does(spark):
    """Rows stored by an earlier version under ``oci|tenancy|month`` get the per-file key the DuckDB ingest gives
    them (the same SQL rule), so a re-run of their file replaces them on Spark too; other rows are untouched."""
    from finops_kit.spark import _upgrade_stored_keys

    rows = [("oci", "oci|t1|2023-11", "in/reports_cost-csv_0001000000000007.csv.gz", 1),
            ("oci", "oci|t1|2023-11", "dl1/cost_report.csv", 2),
            ("oci", "oci|t1|2023-11|0001000000000008", "in/0001000000000008.csv", 3),
            ("aws-cur", "aws|111|2023-11", "cur/report-1.csv", 4)]
    df = spark.createDataFrame(rows, "x_SourceFormat string, x_SourceKey string, x_SourceFile string, n int")
    got = sorted(tuple(r) for r in _upgrade_stored_keys(spark, df).collect())
    assert got == sorted([("oci", "oci|t1|2023-11|0001000000000007", rows[0][2], 1),
                          ("oci", "oci|t1|2023-11|dl1/cost_report", rows[1][2], 2), rows[2], rows[3]])
