"""The FOCUS dataset (issue 19): a warehouse written as hive-partitioned parquet opens as the same warehouse.

Fast tests use a small warehouse (three GCP billing periods of the samples plus a FOCUS file whose provider name
needs escaping); the slow test renders every curated report from a dataset of the full samples.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

import finops_kit as fk
from finops_kit import dataset as ds
from finops_kit.cli import main
from finops_kit.errors import FinopsError
from finops_kit.warehouse import reconciliation_table

from .conftest import FIXTURES, REPO

#: a provider name with a space, a slash, a colon and a percent sign: escaped in its partition folder
ODD_PROVIDER = "Acme / Cloud: Ltd 100%"
GCP_MONTHS = ("202609", "202610", "202611")


def _odd_focus_file(folder: Path) -> Path:
    """The quirky FOCUS fixture (x_ columns, unicode tags, three periods) under a provider name that needs escaping."""
    rows = list(csv.reader(io.StringIO((FIXTURES / "focus" / "quirky_focus_1_2.csv").read_text(encoding="utf-8"))))
    col = rows[0].index("ProviderName")
    for r in rows[1:]:
        r[col] = ODD_PROVIDER
    out = folder / "odd_provider_focus.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return out


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    """Three GCP billing periods of the samples and the odd-provider FOCUS file, ingested as `finops-kit ingest`."""
    d = tmp_path_factory.mktemp("dataset_wh")
    gcp = sorted(p for p in (REPO / "data" / "samples" / "gcp").iterdir() if p.name.split("_")[-1][:6] in GCP_MONTHS)
    assert len(gcp) == 3
    wh = d / "wh.duckdb"
    fk.ingest([str(p) for p in gcp], warehouse=str(wh), progress=False)
    fk.ingest([str(_odd_focus_file(d))], warehouse=str(wh), progress=False)
    return wh


@pytest.fixture(scope="module")
def small_dataset(small_warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset_out") / "focus-dataset"
    assert main(["export", "--dataset", str(out), "--warehouse", str(small_warehouse)]) == 0
    return out


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------------------------------------ round trip

def test_round_trip_gives_the_same_rows_types_and_reconciliation(small_warehouse, small_dataset):
    wh = fk.connect(small_warehouse, read_only=True)
    d = fk.connect(small_dataset)
    try:
        assert d.sql("DESCRIBE focus").fetchall() == wh.sql("DESCRIBE focus").fetchall()
        rows = _rows(wh, "focus")
        assert len(rows) > 1000 and _rows(d, "focus") == rows
        for t in ("ingest_log", "reconciliation", "data_quality"):
            assert _rows(d, t) == _rows(wh, t), t
        rec = reconciliation_table(d).fetchall()
        assert rec == reconciliation_table(wh).fetchall() and rec and all(r[-1] for r in rec)
        # money stays exact DECIMAL: the sums are equal to the last digit
        q = "SELECT sum(BilledCost), sum(EffectiveCost), typeof(sum(BilledCost)) FROM focus"
        assert d.sql(q).fetchall() == wh.sql(q).fetchall()
        assert d.sql(q).fetchall()[0][2].startswith("DECIMAL")
    finally:
        wh.close()
        d.close()


def test_hive_layout_on_disk(small_warehouse, small_dataset):
    m = json.loads((small_dataset / ds.MANIFEST).read_text())
    assert m["layout_version"] == 1 and m["engine"] == "duckdb" and m["partition_by"] == ["provider", "billing_period"]
    assert set(ds.MANIFEST_KEYS) <= set(m)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["created_at"]) and len(m["fingerprint"]) == 64
    wh = fk.connect(small_warehouse, read_only=True)
    try:
        parts = wh.sql("SELECT ProviderName, strftime(BillingPeriodStart, '%Y-%m'), count(*) FROM focus "
                       "GROUP BY ALL ORDER BY ALL").fetchall()
        types = wh.sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'focus' "
                       "ORDER BY ordinal_position").fetchall()
        n = wh.sql("SELECT count(*) FROM focus").fetchall()[0][0]
    finally:
        wh.close()
    assert m["rows"] == n and [(c["name"], c["type"]) for c in m["columns"]] == types
    assert [(p["provider"], p["billing_period"], p["rows"]) for p in m["partitions"]] == parts
    on_disk = {p.parent.relative_to(small_dataset / "focus").as_posix() for p in ds.focus_files(small_dataset)}
    assert on_disk == {f"provider={ds.escape_partition_value(p)}/billing_period={b}" for p, b, _ in parts}
    # Hive's escaping, as Spark writes it: the space stays, '/', ':' and '%' are %XX
    assert "provider=Acme %2F Cloud%3A Ltd 100%25" in {p.split("/")[0] for p in on_disk}
    assert "provider=Google Cloud" in {p.split("/")[0] for p in on_disk}
    # the partition keys are not columns of the files; ProviderName keeps its own type
    one = ds.focus_files(small_dataset)[0]
    cols = {r[0]: r[1] for r in duckdb.connect().sql(
        f"DESCRIBE SELECT * FROM read_parquet('{one}', hive_partitioning = false)").fetchall()}
    assert "provider" not in cols and "billing_period" not in cols
    assert cols["BilledCost"] == "DECIMAL(38,12)" and cols["Tags"] == "JSON" and cols["ProviderName"] == "VARCHAR"
    assert sorted(p.name for p in (small_dataset / "tables").iterdir()) == \
        ["data_quality.parquet", "ingest_log.parquet", "reconciliation.parquet"]
    assert not list(small_dataset.parent.glob("*.tmp-*"))  # nothing left of the staging folder


@pytest.mark.parametrize("value, folder", [
    ("AWS", "AWS"), ("Google Cloud", "Google Cloud"), ("A/B", "A%2FB"), ("x=1:2%", "x%3D1%3A2%25"),
    ("tab\there", "tab%09here"), ("größe", "größe"), (None, "__HIVE_DEFAULT_PARTITION__"),
])
def test_partition_values_use_hive_escaping(value, folder):
    assert ds.escape_partition_value(value) == folder
    assert ds.unescape_partition_value(folder) == value
    # DuckDB's own spelling (%20 for a space) reads back as the same value
    assert ds.unescape_partition_value(folder.replace(" ", "%20")) == value


def test_info_says_dataset_and_engine(small_dataset, capsys, monkeypatch):
    monkeypatch.setenv("FINOPS_WAREHOUSE", str(small_dataset))
    monkeypatch.delenv("FINOPS_QUIET", raising=False)
    con = fk.connect()
    try:
        line = capsys.readouterr().out.strip()
        assert line == str(fk.info(con))
        assert line.startswith(f"FOCUS dataset {small_dataset.resolve()} (read-only, written by duckdb at ")
        assert "billing periods 2026-01..2026-11" in line and ODD_PROVIDER in line
        assert fk.info(con).dataset_engine == "duckdb"
        assert fk.costs(by="provider", con=con)["cost"].sum() > 0  # the one-line API works on it
    finally:
        con.close()


def test_every_command_accepts_a_dataset(small_warehouse, small_dataset, capsys):
    for args in (["reconcile"], ["metrics", "--json"]):
        assert main([*args, "--warehouse", str(small_warehouse)]) == 0
        from_wh = capsys.readouterr().out
        assert main([*args, "--warehouse", str(small_dataset)]) == 0
        from_ds = capsys.readouterr().out
        # the same text: reconciliation table (ingest ids, periods, totals) and every metric, hours and GB included
        # (summed exactly by units.total: a parallel scan of 16 files adds DOUBLEs in another order than the file)
        assert from_ds == from_wh
        if args[0] == "metrics":
            assert json.loads(from_ds)["totals"]


def test_a_dataset_is_read_only(small_dataset, tmp_path, capsys):
    before = sorted(str(p) for p in small_dataset.rglob("*"))
    sample = REPO / "data" / "samples" / "gcp"
    assert main(["ingest", str(sample), "--warehouse", str(small_dataset), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "datasets are read-only" in err and "export --dataset" in err
    with pytest.raises(FinopsError, match="read-only"):
        fk.connect(small_dataset, write=True)
    con = fk.connect(small_dataset)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("INSERT INTO focus SELECT * FROM focus LIMIT 1")
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM reconciliation")
    finally:
        con.close()
    assert sorted(str(p) for p in small_dataset.rglob("*")) == before


def test_export_is_atomic_and_never_overwrites_other_folders(small_warehouse, small_dataset, tmp_path, capsys,
                                                             monkeypatch):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    assert main(["export", "--dataset", str(other), "--warehouse", str(small_warehouse)]) == 2
    err = capsys.readouterr().err
    assert "not a FOCUS dataset" in err and "refusing to overwrite" in err
    assert [p.name for p in other.iterdir()] == ["cat.jpg"]
    # a failure halfway leaves neither the new folder nor a staging folder; an earlier dataset stays as it was
    target = _copy(small_dataset, tmp_path / "earlier")
    before = (target / ds.MANIFEST).read_text()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ds, "write_manifest", boom)
    fresh = tmp_path / "new" / "deeper" / "ds"
    for dest in (fresh, target):
        assert main(["export", "--dataset", str(dest), "--warehouse", str(small_warehouse)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "out of disk space" in err, err
    assert not (tmp_path / "new").exists()
    assert (target / ds.MANIFEST).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "photos"]
    monkeypatch.undo()
    # re-export over an earlier dataset replaces it
    assert main(["export", "--dataset", str(target), "--warehouse", str(small_warehouse)]) == 0
    assert json.loads((target / ds.MANIFEST).read_text())["created_at"] >= json.loads(before)["created_at"]
    assert main(["export", "--dataset", str(target), "--where", "1=1", "--warehouse", str(small_warehouse)]) == 2
    assert "--where" in capsys.readouterr().err


def test_a_dataset_re_exports_to_the_same_dataset(small_dataset, tmp_path):
    again = tmp_path / "again"
    con = fk.connect(small_dataset)
    try:
        m = ds.write_dataset(con, again)
    finally:
        con.close()
    a, b = fk.connect(small_dataset), fk.connect(again)
    try:
        assert _rows(a, "focus") == _rows(b, "focus") and m.rows == ds.read_manifest(small_dataset).rows
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------------------------ bad folders

def _wrong_type_file(root: Path) -> None:
    f = ds.focus_files(root)[0]
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (CAST(BilledCost AS DOUBLE) AS BilledCost) FROM read_parquet('{f}', "
                f"hive_partitioning = false)) TO '{f}.new' (FORMAT parquet)")
    con.close()
    Path(f"{f}.new").replace(f)


def _empty_focus(root: Path) -> None:
    shutil.rmtree(root / "focus")
    (root / "focus").mkdir()


def _wrong_version(root: Path) -> None:
    m = json.loads((root / ds.MANIFEST).read_text())
    m["layout_version"] = 2
    (root / ds.MANIFEST).write_text(json.dumps(m))


def _misplaced(root: Path) -> None:
    """Two files swapped between partitions: the row count still adds up, the partition values do not."""
    a = next(f for f in ds.focus_files(root) if "Google" in str(f))
    b = next(f for f in ds.focus_files(root) if "Google" not in str(f))
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / ds.MANIFEST).unlink(), r"not a FOCUS dataset: no finops-dataset\.json"),
    (_wrong_version, r"layout version 2 is not supported"),
    (_wrong_type_file, r"data_0\.parquet: column 'BilledCost' is DOUBLE; the warehouse schema has DECIMAL\(38,12\)"),
    (_empty_focus, r"focus: no parquet files \(an empty dataset\)"),
    (lambda r: (r / "tables" / "reconciliation.parquet").unlink(), r"reconciliation\.parquet: missing"),
    (_misplaced, r"its folder says provider"),
])
def test_bad_dataset_folders_are_one_line_errors(small_dataset, tmp_path, capsys, damage, message):
    root = _copy(small_dataset, tmp_path / "bad")
    damage(root)
    with pytest.raises(FinopsError, match=message):
        ds.validate(root)
    if (root / ds.MANIFEST).exists():  # without a manifest the folder is no dataset: --warehouse says so
        assert main(["reconcile", "--warehouse", str(root)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
    else:
        assert main(["reconcile", "--warehouse", str(root)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "finops-dataset.json" in err, err


def test_manifest_types_must_be_the_warehouse_schema(small_dataset, tmp_path):
    root = _copy(small_dataset, tmp_path / "bad")
    m = json.loads((root / ds.MANIFEST).read_text())
    for c in m["columns"]:
        if c["name"] == "EffectiveCost":
            c["type"] = "DOUBLE"
    (root / ds.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(FinopsError, match=r"focus\.EffectiveCost is declared DOUBLE; the warehouse schema has "
                                          r"DECIMAL\(38,12\)"):
        fk.connect(root)


def test_json_stored_as_string_reads_back_as_json(small_dataset, tmp_path, small_warehouse):
    """Spark has no JSON type: a Tags column written as a plain string is accepted and read back as JSON."""
    root = _copy(small_dataset, tmp_path / "strings")
    for f in ds.focus_files(root):
        con = duckdb.connect()
        con.execute(f"COPY (SELECT * REPLACE (CAST(Tags AS VARCHAR) AS Tags, CAST(SkuPriceDetails AS VARCHAR) AS "
                    f"SkuPriceDetails) FROM read_parquet('{f}', hive_partitioning = false)) TO '{f}.new' "
                    "(FORMAT parquet)")
        con.close()
        Path(f"{f}.new").replace(f)
    a, b = fk.connect(root), fk.connect(small_warehouse, read_only=True)
    try:
        assert a.sql("DESCRIBE focus").fetchall() == b.sql("DESCRIBE focus").fetchall()
        assert _rows(a, "focus") == _rows(b, "focus")
    finally:
        a.close()
        b.close()


def test_notebook_warehouse_parameter_finds_a_dataset_from_a_subfolder(small_dataset, tmp_path, monkeypatch):
    from finops_kit.notebook import resolve_project_paths

    project = tmp_path / "proj"
    (project / "notebooks").mkdir(parents=True)
    (project / "finops.yaml").write_text("{}\n")
    shutil.copytree(small_dataset, project / "data" / "focus-dataset")
    ns = {"warehouse": "data/focus-dataset"}
    resolve_project_paths(ns, project / "notebooks")
    assert Path(ns["warehouse"]) == project / "data" / "focus-dataset"
    monkeypatch.chdir(project / "notebooks")
    con = fk.connect("data/focus-dataset")
    try:
        assert fk.info(con).dataset_engine == "duckdb"
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ s3

boto3 = pytest.importorskip("boto3")


def _upload(client, folder: Path, bucket: str, prefix: str) -> None:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            client.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(folder).as_posix()}")


def _keys(client, bucket: str, prefix: str) -> dict[str, str]:
    got = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: o["ETag"] for o in got}


def test_export_writes_a_dataset_straight_to_s3(s3_env, small_warehouse, tmp_path, monkeypatch, capsys):
    """``export --dataset s3://...`` (and ``ingest --engine spark --dataset s3://...``, same code:
    dataset.writable): written into the prefix's mirror, published with boto3, manifest last, stale objects
    deleted; another machine's fk.connect opens it with the warehouse's rows."""
    client = s3_env
    client.create_bucket(Bucket="lake")
    writer, reader = tmp_path / "writer", tmp_path / "reader"
    writer.mkdir()
    reader.mkdir()
    monkeypatch.chdir(writer)
    assert main(["export", "--dataset", "s3://lake/team/ds", "--warehouse", str(small_warehouse)]) == 0
    assert "wrote FOCUS dataset s3://lake/team/ds" in capsys.readouterr().out
    local = tmp_path / "local-export"
    assert main(["export", "--dataset", str(local), "--warehouse", str(small_warehouse)]) == 0
    expected = {f.relative_to(local).as_posix() for f in local.rglob("*") if f.is_file()}
    assert set(_keys(client, "lake", "team/ds/")) == expected
    monkeypatch.chdir(reader)
    con, wh = fk.connect("s3://lake/team/ds"), fk.connect(small_warehouse, read_only=True)
    try:
        assert _rows(con, "focus") == _rows(wh, "focus")
        assert _rows(con, "reconciliation") == _rows(wh, "reconciliation")
    finally:
        con.close()
        wh.close()
    # a smaller warehouse written to the same prefix: the odd provider's partition objects are deleted
    smaller = tmp_path / "gcp-only.duckdb"
    gcp = sorted(p for p in (REPO / "data" / "samples" / "gcp").iterdir() if p.name.split("_")[-1][:6] in GCP_MONTHS)
    fk.ingest([str(p) for p in gcp], warehouse=str(smaller), progress=False)
    monkeypatch.chdir(writer)
    assert main(["export", "--dataset", "s3://lake/team/ds", "--warehouse", str(smaller)]) == 0
    assert not [k for k in _keys(client, "lake", "team/ds/") if "Acme" in k]
    monkeypatch.chdir(reader)
    con = fk.connect("s3://lake/team/ds")
    try:
        assert con.sql("SELECT count(DISTINCT ProviderName) FROM focus").fetchall() == [(1,)]
    finally:
        con.close()
    # a prefix holding other things is refused before anything is uploaded: one line, exit 2
    client.put_object(Bucket="lake", Key="other/notes.txt", Body=b"not a dataset")
    capsys.readouterr()
    assert main(["export", "--dataset", "s3://lake/other", "--warehouse", str(smaller)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no finops-dataset.json" in err and "refusing" in err, err
    assert set(_keys(client, "lake", "other/")) == {"notes.txt"}


def test_open_a_dataset_from_s3(s3_env, small_dataset, small_warehouse, tmp_path, monkeypatch, capsys):
    client = s3_env
    client.create_bucket(Bucket="lake")
    _upload(client, small_dataset, "lake", "finops/focus")
    monkeypatch.chdir(tmp_path)  # the cache goes under the working folder's data/cache/datasets
    con = fk.connect("s3://lake/finops/focus")
    wh = fk.connect(small_warehouse, read_only=True)
    try:
        assert _rows(con, "focus") == _rows(wh, "focus")
        assert str(fk.info(con)).startswith("FOCUS dataset s3://lake/finops/focus (read-only, written by duckdb")
    finally:
        con.close()
        wh.close()
    cache = tmp_path / "data" / "cache" / "datasets" / "lake" / "finops" / "focus"
    assert (cache / ds.MANIFEST).is_file()
    # the dataset is rewritten without the odd provider: the mirror drops the partition that is gone
    odd = [k["Key"] for k in client.list_objects_v2(Bucket="lake", Prefix="finops/focus/focus/provider=Acme")
           ["Contents"]]
    for k in odd:
        client.delete_object(Bucket="lake", Key=k)
    m = json.loads((small_dataset / ds.MANIFEST).read_text())
    gone = sum(p["rows"] for p in m["partitions"] if p["provider"] == ODD_PROVIDER)
    m["rows"] -= gone
    client.put_object(Bucket="lake", Key=f"finops/focus/{ds.MANIFEST}", Body=json.dumps(m).encode())
    con = fk.connect("s3://lake/finops/focus")
    try:
        assert con.sql("SELECT count(*) FROM focus WHERE ProviderName = ?", params=[ODD_PROVIDER]).fetchall() \
            == [(0,)]
    finally:
        con.close()
    assert not [p for p in cache.rglob("*") if "Acme" in str(p)]
    # a prefix that is not a dataset, a missing bucket: one line each
    _upload(client, small_dataset / "tables", "lake", "not-a-dataset")
    for url, msg in (("s3://lake/not-a-dataset", "no finops-dataset.json under this prefix"),
                     ("s3://no-such-bucket/x", "bucket does not exist")):
        assert main(["reconcile", "--warehouse", url]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err


# ------------------------------------------------------------------------------------------------ every report

@pytest.mark.slow
def test_every_curated_report_renders_from_a_dataset_with_the_warehouse_figures(sample_warehouse, tmp_path,
                                                                                 monkeypatch):
    """`finops-kit report --all --warehouse DATASET` on the samples' dataset: every report renders, and every figure
    test_consistency checks on reports rendered from the warehouse equals the warehouse's metrics here too."""
    import inspect

    from . import report_figures as rf
    from . import test_consistency as tc

    data = tmp_path / "focus-dataset"
    assert main(["export", "--dataset", str(data), "--warehouse", sample_warehouse]) == 0
    out = tmp_path / "reports"
    monkeypatch.chdir(REPO)  # the notebooks' side files (data/samples/_ai_units) are project-relative
    params = [x for k, v in rf.SCOPE.items() for x in ("-p", f"{k}={v}")]
    assert main(["report", "--all", "--warehouse", str(data), "--out", str(out), "--config",
                 str(REPO / "finops.yaml"), *params]) == 0
    index = json.loads((out / "index.json").read_text())
    texts = {Path(e["notebook"]).stem: rf.texts(out / e["ipynb"]) for e in index["reports"]}
    assert set(rf.CURATED) <= set(texts) and all(e["status"] == "ok" for e in index["reports"])
    checks = [f for n, f in vars(tc).items() if n.startswith("test_") and callable(f)
              and n != "test_every_report_and_the_index_state_the_same_scope"]  # counts the warehouse run's reports
    assert len(checks) >= 10
    with rf.headline(sample_warehouse) as head:
        for name, text in texts.items():
            assert head[2].describe() in text, f"{name} does not state its scope"
        for check in checks:
            args = {"rendered": (out, texts), "headline": head}
            check(**{p: args[p] for p in inspect.signature(check).parameters})
