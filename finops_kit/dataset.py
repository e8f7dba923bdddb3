"""The FOCUS dataset: the warehouse as hive-partitioned parquet, the interchange between DuckDB and Spark.

Why a dataset and not only the DuckDB file: a DuckDB file is one writer's private format. A folder of parquet
partitioned by provider and billing period is what a lake engine (Spark on EMR/Databricks/Dataproc, Athena,
Fabric) writes and reads natively, so a FOCUS table normalized on a cluster can come back to a laptop and every
curated notebook runs on it, and a warehouse built here can go to the lake. Both engines write exactly this
layout (``finops-kit export --dataset DIR`` here, the Spark ingest there), and :func:`open_dataset` (behind
``fk.connect(DIR)``) opens either as a read-only warehouse with the same table names and the same column types::

    DATASET/
      finops-dataset.json                                   # the manifest: see MANIFEST_KEYS
      focus/provider=<ProviderName>/billing_period=<YYYY-MM>/<part>.parquet
      tables/<name>.parquet                                 # ingest_log, reconciliation, data_quality, ...

Rules (what a writer must do, whatever the engine):

- ``focus`` files hold every column of the warehouse's FOCUS table (FOCUS 1.2 columns, lineage and other ``x_``
  columns) with the warehouse's types: money and quantities ``DECIMAL(38,12)`` (exact: the reconciliation proof
  is re-checked on the dataset), dates ``TIMESTAMP`` without time zone (Spark: ``TimestampNTZType``), JSON
  columns as JSON or as plain strings (Spark has no JSON type; the view casts them back, see
  :data:`FILE_TYPE_ALIASES`). The partition keys are derived (:data:`PARTITION_SQL`) and are *not* columns of
  the files: ``ProviderName`` and ``BillingPeriodStart`` stay in the files with their own types.
- Partition folder values use Hive's path escaping (:func:`escape_partition_value`, the escaping Spark and Hive
  write: ``/``, ``=``, ``%``, ``:`` ... become ``%XX``; a space stays a space), so ``provider=Google Cloud``.
- ``tables/<name>.parquet``: every other table of the warehouse, one file each; ``ingest_log`` and
  ``reconciliation`` are required (the notebooks' header shows the input fingerprint and the reconciliation).
- The manifest is written last and the folder appears atomically (:func:`staging`): a reader never sees half a
  dataset, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from .errors import FinopsError
from .sources.base import ident, sql_str
from .warehouse import FOCUS_TABLE, configure, ensure_schema, scalar, write_error

#: The layout this kit writes and reads; a reader refuses any other (a newer layout may move files).
LAYOUT_VERSION = 1
#: The manifest file at the dataset's root; its presence is what makes a folder a dataset.
MANIFEST = "finops-dataset.json"
#: Keys every manifest has (``partitions`` and ``kit_version``/``engine_version`` are optional).
MANIFEST_KEYS = ("layout_version", "engine", "created_at", "rows", "columns", "partition_by", "fingerprint",
                 "tables")
#: Engines that write datasets (the manifest's ``engine``).
ENGINES = ("duckdb", "spark")
FOCUS_DIR = "focus"
TABLES_DIR = "tables"
#: Partition keys, outermost first.
PARTITION_KEYS = ("provider", "billing_period")
#: How each partition key is derived from a FOCUS row, in DuckDB SQL (Spark: ``ProviderName`` and
#: ``date_format(BillingPeriodStart, 'yyyy-MM')``).
PARTITION_SQL = {"provider": "ProviderName", "billing_period": "strftime(BillingPeriodStart, '%Y-%m')"}
#: Hive's folder name of a NULL (or empty) partition value.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: Tables a dataset must carry besides ``focus``.
REQUIRED_TABLES = ("ingest_log", "reconciliation")
#: File types a reader accepts for a warehouse type besides the type itself: JSON text stored as a plain string.
FILE_TYPE_ALIASES: dict[str, tuple[str, ...]] = {"JSON": ("VARCHAR",)}
#: Where ``s3://`` datasets are mirrored (project-relative; apart from the S3 delivery cache, which the mirror
#: must never prune).
DEFAULT_CACHE = "data/cache/datasets"
#: The FOCUS view with a stable ``_rowid`` row key (see :func:`row_source`).
KEYED_VIEW = "finops_dataset.focus_rows"
#: Name of the DuckDB variable that marks a connection as an opened dataset (see :func:`opened`).
VARIABLE = "finops_dataset"

#: Characters Hive (and Spark's ``ExternalCatalogUtils.escapePathName``) escape in a partition folder name.
_HIVE_ESCAPE = frozenset('"#%\'*/:=?\\\x7f{[]^') | frozenset(chr(c) for c in range(1, 32))


# ------------------------------------------------------------------------------------------------ the layout

def escape_partition_value(value: str | None) -> str:
    """A partition value as Hive writes it in a folder name (``A/B`` -> ``A%2FB``; NULL -> the default partition).

    Why Hive's escaping and not DuckDB's (which also escapes spaces as ``%20``): it is what Spark writes, so a
    dataset has one spelling on disk whichever engine wrote it, and Athena/Glue read it as written.
    """
    if value is None or value == "":
        return NULL_PARTITION
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPE else c for c in value)


def unescape_partition_value(text: str) -> str | None:
    """The value of an escaped partition folder name (any ``%XX`` decoded, as Hive and DuckDB read it)."""
    return None if text == NULL_PARTITION else urllib.parse.unquote(text)


def partition_dir(provider: str | None, billing_period: str | None) -> str:
    """``provider=<p>/billing_period=<YYYY-MM>``: where a partition's files live under ``focus/``."""
    return f"provider={escape_partition_value(provider)}/billing_period={escape_partition_value(billing_period)}"


def is_location(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` names a dataset rather than a DuckDB file: an ``s3://`` URL, or a folder holding
    :data:`MANIFEST` (a folder without one is not taken for a dataset; :func:`validate` says what is missing)."""
    if path is None:
        return False
    text = str(path)
    if text.startswith("s3://"):
        return True
    return (Path(text).expanduser() / MANIFEST).is_file()


@cache
def reference_schema() -> dict[str, tuple[tuple[str, str], ...]]:
    """The kit's own tables as this version creates them: ``{table: ((column, DuckDB type), ...)}``.

    The contract both engines are held to: a dataset column of one of these tables must have exactly this type.
    ``x_`` columns of ``focus`` beyond these (custom columns of a source) are ``VARCHAR``.
    """
    from . import quality

    con = duckdb.connect()
    try:
        ensure_schema(con)
        quality.ensure_table(con)
        return {t: tuple(cols) for t, cols in table_columns(con).items()}
    finally:
        con.close()


def table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Every table and view of ``con``'s main schema with its columns and DuckDB types, in column order."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_catalog = current_database() "
        "ORDER BY table_name, ordinal_position").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for t, c, ty in rows:
        out.setdefault(t, []).append((c, ty))
    return out


def expected_type(table: str, column: str) -> str | None:
    """The type the kit requires for ``table.column`` (None: not fixed by the kit, the manifest decides)."""
    ref = dict(reference_schema().get(table, ()))
    if column in ref:
        return ref[column]
    if table == FOCUS_TABLE and column.startswith("x_"):
        return "VARCHAR"
    return None


def input_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    """sha256 over the sorted sha256 of every active source file (the reports' input fingerprint); None when the
    warehouse records no files."""
    from .warehouse import active_file_digests, input_digest

    return input_digest(active_file_digests(con))


# ------------------------------------------------------------------------------------------------ the manifest

@dataclass(frozen=True)
class Manifest:
    """A dataset's ``finops-dataset.json``, validated; ``raw`` is the file's content."""

    path: Path
    layout_version: int
    engine: str
    created_at: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    partition_by: tuple[str, ...]
    fingerprint: str | None
    tables: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def build_manifest(*, engine: str, rows: int, columns: Sequence[tuple[str, str]], fingerprint: str | None,
                   tables: Mapping[str, Mapping[str, Any]], partitions: Sequence[Mapping[str, Any]] = (),
                   engine_version: str | None = None, created_at: str | None = None) -> dict[str, Any]:
    """The manifest a writer puts at the dataset's root (both engines call this, so the JSON is one shape).

    ``columns``: the FOCUS table's ``(name, DuckDB type)`` in column order; ``tables``: ``{name: {"rows": n,
    "columns": [(name, type), ...]}}``; ``partitions``: ``[{"provider", "billing_period", "rows"}]``.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        kit = version("finops-kit")
    except PackageNotFoundError:
        kit = "0+unknown"
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {ENGINES}")
    return {
        "layout_version": LAYOUT_VERSION,
        "engine": engine,
        "engine_version": engine_version,
        "kit_version": kit,
        "created_at": created_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rows": int(rows),
        "columns": [{"name": n, "type": t} for n, t in columns],
        "partition_by": list(PARTITION_KEYS),
        "fingerprint": fingerprint,
        "tables": {n: {"rows": int(t["rows"]), "columns": [{"name": c, "type": ty} for c, ty in t["columns"]]}
                   for n, t in sorted(tables.items())},
        "partitions": [{"provider": p["provider"], "billing_period": p["billing_period"], "rows": int(p["rows"])}
                       for p in partitions],
    }


def write_manifest(folder: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write the manifest into ``folder`` (last, after every data file)."""
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | os.PathLike) -> Manifest:
    """The manifest of ``folder``, checked for shape and layout version (not yet against the files)."""
    root = Path(folder)
    if not root.is_dir():
        raise FinopsError(f"{root}: no dataset here (not a folder)")
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise FinopsError(f"{root}: not a FOCUS dataset: no {MANIFEST} (write one with 'finops-kit export "
                          f"--dataset {root}')")
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FinopsError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise FinopsError(f"{mpath}: expected a JSON object")
    version = raw.get("layout_version")
    if version != LAYOUT_VERSION:
        raise FinopsError(f"{mpath}: layout version {version!r} is not supported (this kit reads version "
                          f"{LAYOUT_VERSION}); write the dataset again with this kit")
    missing = [k for k in MANIFEST_KEYS if k not in raw]
    if missing:
        raise FinopsError(f"{mpath}: missing key(s) {', '.join(missing)}")
    if raw["engine"] not in ENGINES:
        raise FinopsError(f"{mpath}: engine {raw['engine']!r} unknown; expected one of {', '.join(ENGINES)}")
    if list(raw["partition_by"]) != list(PARTITION_KEYS):
        raise FinopsError(f"{mpath}: partition_by {raw['partition_by']!r}; expected {list(PARTITION_KEYS)!r}")
    try:
        columns = tuple((str(c["name"]), str(c["type"])) for c in raw["columns"])
        tables = {str(n): {"rows": int(t["rows"]),
                           "columns": tuple((str(c["name"]), str(c["type"])) for c in t["columns"])}
                  for n, t in raw["tables"].items()}
        rows = int(raw["rows"])
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise FinopsError(f"{mpath}: columns/tables/rows not as expected ({type(exc).__name__}: {exc})") from None
    for table, cols in ((FOCUS_TABLE, columns), *((n, t["columns"]) for n, t in tables.items())):
        _check_declared(mpath, table, cols)
    return Manifest(root, int(version), str(raw["engine"]), str(raw["created_at"]), rows, columns,
                    tuple(raw["partition_by"]), raw.get("fingerprint"), tables, raw)


def _check_declared(mpath: Path, table: str, cols: Sequence[tuple[str, str]]) -> None:
    """The manifest's types of ``table`` equal the kit's schema, and every column the kit requires is there."""
    have = dict(cols)
    for name, typ in cols:
        want = expected_type(table, name)
        if want is not None and typ != want:
            raise FinopsError(f"{mpath}: {table}.{name} is declared {typ}; the warehouse schema has {want}")
    ref = reference_schema().get(table, ())
    absent = [n for n, _ in ref if n not in have]
    if absent:
        raise FinopsError(f"{mpath}: {table} lacks column(s) {', '.join(absent[:5])}"
                          f"{' ...' if len(absent) > 5 else ''} of the warehouse schema")


# ------------------------------------------------------------------------------------------------ validation

def focus_files(root: str | os.PathLike) -> list[Path]:
    """The dataset's FOCUS parquet files, sorted (hidden and ``_`` files, e.g. Spark's markers, are not data)."""
    base = Path(root) / FOCUS_DIR
    return sorted(p for p in base.glob("*/*/*.parquet") if not p.name.startswith((".", "_")))


def validate(folder: str | os.PathLike) -> Manifest:
    """Check that ``folder`` is a complete dataset of this layout; one :class:`FinopsError` line if not.

    Checked without reading the data (parquet footers only, so it costs the same for 10^3 and 10^9 rows): the
    manifest (:func:`read_manifest`), every FOCUS file under a ``provider=/billing_period=`` folder with exactly
    the manifest's columns and the warehouse's types, each file's ProviderName and BillingPeriodStart inside its
    partition (min/max statistics), the row counts of the manifest, and every table file.
    """
    m = read_manifest(folder)
    root = m.path
    files = focus_files(root)
    if not files:
        raise FinopsError(f"{root / FOCUS_DIR}: no parquet files (an empty dataset); export a warehouse that "
                          "holds FOCUS rows")
    con = duckdb.connect()
    try:
        declared = dict(m.columns)
        for f in files:
            _check_partition_path(root, f)
            _check_file_types(con, f, FOCUS_TABLE, m.columns)
        n = scalar(con, f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({_file_list(files)})")
        if int(n) != m.rows:
            raise FinopsError(f"{root / FOCUS_DIR}: the files hold {int(n):,} rows, {MANIFEST} says {m.rows:,} "
                              "(a partition is missing, extra or rewritten)")
        _check_partition_values(con, root, files, declared)
        for name, t in m.tables.items():
            f = root / TABLES_DIR / f"{name}.parquet"
            if not f.is_file():
                raise FinopsError(f"{f}: missing (listed in {MANIFEST})")
            _check_file_types(con, f, name, t["columns"])
            n = scalar(con, f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({sql_str(str(f))})")
            if int(n) != t["rows"]:
                raise FinopsError(f"{f}: holds {int(n):,} rows, {MANIFEST} says {t['rows']:,}")
        absent = [t for t in REQUIRED_TABLES if t not in m.tables]
        if absent:
            raise FinopsError(f"{root / MANIFEST}: no table(s) {', '.join(absent)} (required: the reconciliation "
                              "proof and the input fingerprint travel with the data)")
    except duckdb.Error as exc:
        raise FinopsError(f"{root}: cannot read the dataset's parquet files ({str(exc).splitlines()[0][:200]})"
                          ) from None
    finally:
        con.close()
    return m


def _file_list(files: Sequence[Path]) -> str:
    return "[" + ", ".join(sql_str(str(f)) for f in files) + "]"


def _check_partition_path(root: Path, f: Path) -> None:
    rel = f.relative_to(root / FOCUS_DIR).parts
    if len(rel) != 3 or not rel[0].startswith("provider=") or not rel[1].startswith("billing_period="):
        raise FinopsError(f"{f}: not under {FOCUS_DIR}/provider=<name>/billing_period=<YYYY-MM>/")


def _check_file_types(con: duckdb.DuckDBPyConnection, f: Path, table: str,
                      declared: Sequence[tuple[str, str]]) -> None:
    """The columns of one parquet file are the declared ones, each of the declared type (or an alias of it)."""
    got = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_str(str(f))}, hive_partitioning = false)").fetchall()}
    want = dict(declared)
    for name, typ in got.items():
        if name not in want:
            where = " (a partition key is derived from the folders, never stored)" if name in PARTITION_KEYS else ""
            raise FinopsError(f"{f}: column {name!r} is not in {MANIFEST}'s {table} columns{where}")
        if typ != want[name] and typ not in FILE_TYPE_ALIASES.get(want[name], ()):
            raise FinopsError(f"{f}: column {name!r} is {typ}; the warehouse schema has {want[name]}")
    missing = [n for n in want if n not in got]
    if missing:
        raise FinopsError(f"{f}: lacks column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")


def _check_partition_values(con: duckdb.DuckDBPyConnection, root: Path, files: Sequence[Path],
                            declared: Mapping[str, str]) -> None:
    """Every file's ProviderName and billing period lie in its folder's partition (from the footers' min/max;
    a file without statistics is scanned for the two columns)."""
    stats: dict[tuple[str, str], list[Any]] = {}
    for fn, col, lo, hi in con.execute(
            "SELECT file_name, path_in_schema, min(stats_min_value), max(stats_max_value) "
            f"FROM parquet_metadata({_file_list(files)}) "
            "WHERE path_in_schema IN ('ProviderName', 'BillingPeriodStart') GROUP BY ALL").fetchall():
        stats[(str(fn), col)] = [lo, hi]
    for f in files:
        rel = f.relative_to(root / FOCUS_DIR).parts
        provider = unescape_partition_value(rel[0].split("=", 1)[1])
        period = unescape_partition_value(rel[1].split("=", 1)[1])
        p = stats.get((str(f), "ProviderName"), [None, None])
        b = stats.get((str(f), "BillingPeriodStart"), [None, None])
        if None in p or None in b:
            p = b = None
            lo_p, hi_p, lo_b, hi_b = con.execute(
                f"SELECT min(ProviderName), max(ProviderName), min({PARTITION_SQL['billing_period']}), "
                f"max({PARTITION_SQL['billing_period']}) FROM read_parquet({sql_str(str(f))}, hive_partitioning = false)").fetchall()[0]
        else:
            lo_p, hi_p = p
            lo_b, hi_b = (str(x)[:7] for x in b)
        if not (lo_p == hi_p == provider) or not (lo_b == hi_b == period):
            raise FinopsError(f"{f}: holds ProviderName {lo_p!r}..{hi_p!r} and billing periods {lo_b}..{hi_b}; "
                              f"its folder says provider {provider!r}, billing period {period}")


# ------------------------------------------------------------------------------------------------ writing

@contextlib.contextmanager
def staging(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh folder next to ``target`` to write a dataset into; on success it replaces ``target`` in one rename.

    Why: a reader (a notebook, a report run) must see the old dataset or the new one, never half of one, and a
    failed write (disk full, a bad row, Ctrl-C) must leave nothing behind. ``target`` may be missing, an empty
    folder or an earlier dataset; anything else (a file, a folder of other things) is refused before anything is
    written, so an export never deletes a user's files.
    """
    dest = Path(target).expanduser()
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir():
            raise FinopsError(f"{dest}: is a file; --dataset expects a folder (new, empty or an earlier dataset)")
        if any(dest.iterdir()) and not (dest / MANIFEST).is_file():
            raise FinopsError(f"{dest}: is a folder that is not a FOCUS dataset (no {MANIFEST}); refusing to "
                              "overwrite it: choose a new or empty folder")
    created = [q for q in [dest.parent.absolute(), *dest.parent.absolute().parents] if not q.exists()]
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise FinopsError(f"{dest}: cannot create the dataset's folder ({exc.strerror or exc})") from None
    old: Path | None = None
    try:
        yield tmp
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old / "dataset")
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "dataset").exists() and not dest.exists():
            os.rename(old / "dataset", dest)  # put the earlier dataset back
        for q in created:  # deepest first: only the folders this call made, and only when empty
            with contextlib.suppress(OSError):
                q.rmdir()
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_dataset(con: duckdb.DuckDBPyConnection, target: str | os.PathLike) -> Manifest:
    """Write the warehouse behind ``con`` as a dataset at ``target`` (DuckDB's partitioned ``COPY``); atomic.

    The FOCUS table goes out as it is stored (same columns, same types), partitioned by :data:`PARTITION_SQL`;
    every other table of the warehouse goes to ``tables/``. The result is validated (:func:`validate`) before it
    replaces ``target``. Works on a warehouse file and on an opened dataset (a re-export).
    """
    schema = table_columns(con)
    if FOCUS_TABLE not in schema:
        raise FinopsError("the warehouse has no FOCUS table; run 'finops-kit ingest' first")
    rows, null_keys = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE ProviderName IS NULL OR BillingPeriodStart IS NULL) "
        f"FROM {FOCUS_TABLE}").fetchall()[0]
    if not rows:
        raise FinopsError("the warehouse holds no FOCUS rows; nothing to write as a dataset")
    if null_keys:
        raise FinopsError(f"{null_keys:,} FOCUS row(s) without ProviderName or BillingPeriodStart (both mandatory "
                          "in FOCUS); they cannot be partitioned")
    keys = ", ".join(f"{sql} AS {k}" for k, sql in PARTITION_SQL.items())
    parts = con.execute(f"SELECT {', '.join(PARTITION_SQL.values())}, count(*) FROM {FOCUS_TABLE} "
                        "GROUP BY ALL ORDER BY ALL").fetchall()
    others = {t: c for t, c in schema.items() if t != FOCUS_TABLE}
    dest = Path(target).expanduser()
    try:
        with staging(dest) as tmp:
            (tmp / FOCUS_DIR).mkdir()
            con.execute(f"COPY (SELECT *, {keys} FROM {FOCUS_TABLE}) TO {sql_str(str(tmp / FOCUS_DIR))} "
                        f"(FORMAT parquet, PARTITION_BY ({', '.join(PARTITION_KEYS)}))")
            _hive_folder_names(tmp / FOCUS_DIR)
            (tmp / TABLES_DIR).mkdir()
            tables = {}
            for t, cols in others.items():
                con.execute(f"COPY (SELECT * FROM {ident(t)}) TO {sql_str(str(tmp / TABLES_DIR / f'{t}.parquet'))} "
                            "(FORMAT parquet)")
                tables[t] = {"rows": scalar(con, f"SELECT count(*) FROM {ident(t)}"), "columns": cols}
            manifest = build_manifest(
                engine="duckdb", engine_version=duckdb.__version__, rows=rows, columns=schema[FOCUS_TABLE],
                fingerprint=input_fingerprint(con) if "ingest_log" in others else None, tables=tables,
                partitions=[{"provider": p, "billing_period": b, "rows": n} for p, b, n in parts])
            write_manifest(tmp, manifest)
            validate(tmp)
    except duckdb.Error as exc:
        raise write_error(str(dest), exc) or FinopsError(
            f"{dest}: cannot write the dataset ({str(exc).splitlines()[0][:200]})") from None
    return read_manifest(dest)


def _hive_folder_names(base: Path) -> None:
    """Rename DuckDB's partition folders (URL-encoded: ``Google%20Cloud``) to Hive's escaping (``Google Cloud``)."""
    for level in (1, 2):
        for d in sorted(base.glob("/".join(["*"] * level)), key=lambda p: len(p.parts), reverse=True):
            if not d.is_dir() or "=" not in d.name:
                continue
            key, _, raw = d.name.partition("=")
            value = None if raw in ("NULL", NULL_PARTITION) else urllib.parse.unquote(raw)
            name = f"{key}={escape_partition_value(value)}"
            if name != d.name:
                os.rename(d, d.with_name(name))


# ------------------------------------------------------------------------------------------------ reading

@contextlib.contextmanager
def writable(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """A local folder to write the dataset at ``location`` into: the folder itself, or for ``s3://bucket/prefix``
    the mirror of the prefix (synced first, so a re-run sees the stored rows and replaces them by the usual rules),
    published back with :func:`finops_kit.s3.publish_prefix` (manifest last, stale objects deleted) when the block
    succeeds. A failure inside the block uploads nothing. The writer (Spark's driver) must see this folder: true for
    a local master; on a cluster, the mirror must be on a shared mount like any dataset folder."""
    text = str(location)
    if not text.startswith("s3://"):
        yield Path(text).expanduser()
        return
    from . import project, s3

    base = Path(cache_dir) if cache_dir else project.resolve(DEFAULT_CACHE)
    folder = s3.sync_prefix(text, base, allow_empty=True).absolute()  # a Spark JVM may have another cwd
    if not (folder / MANIFEST).is_file():
        if any(f.is_file() and f.name != s3.ETAG_INDEX for f in folder.rglob("*")):
            raise FinopsError(f"{text}: holds objects but no {MANIFEST} (not a finops-kit dataset): refusing to "
                              "write into it")
        (folder / s3.ETAG_INDEX).unlink(missing_ok=True)  # an empty prefix: the writers expect an empty folder
    yield folder
    s3.publish_prefix(folder, text, last=MANIFEST)


def local_copy(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder of a dataset: the folder itself, or for ``s3://bucket/prefix`` a mirror of the prefix in
    the cache (only changed objects are downloaded; see :func:`finops_kit.s3.sync_prefix`). Validated."""
    text = str(location)
    if text.startswith("s3://"):
        from . import project, s3

        base = Path(cache_dir) if cache_dir else project.resolve(DEFAULT_CACHE)
        folder = s3.sync_prefix(text, base, required=MANIFEST)
    else:
        folder = Path(text).expanduser()
    validate(folder)
    return folder


def open_dataset(location: str | os.PathLike, *, memory_limit: str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose ``focus`` and other tables are views over the dataset's parquet files.

    Why views and not a load: nothing is copied (a 10^9-row dataset opens in the time it takes to read the
    footers), and the dataset stays the one copy. The views select the manifest's columns in its order and cast
    a JSON column stored as a string back to JSON, so ``DESCRIBE focus`` equals the warehouse's and every query
    of the kit runs unchanged. Read-only by construction: a view cannot be written (and
    :func:`finops_kit.warehouse.connect` refuses ``write=True`` on a dataset before getting here).
    """
    folder = local_copy(location, cache_dir)
    m = read_manifest(folder)
    con = duckdb.connect(":memory:")
    try:
        configure(con, memory_limit)
        files = focus_files(folder)
        _create_view(con, FOCUS_TABLE, m.columns, files, union=True)
        _create_keyed_view(con, m.columns, files)
        for name, t in m.tables.items():
            _create_view(con, name, t["columns"], [folder / TABLES_DIR / f"{name}.parquet"], union=False)
        meta = {"location": str(location) if str(location).startswith("s3://") else str(folder.resolve()),
                "local": str(folder.resolve()), "engine": m.engine, "created_at": m.created_at,
                "layout_version": m.layout_version, "rows": m.rows}
        con.execute(f"SET VARIABLE {VARIABLE} = ?", [json.dumps(meta)])
    except duckdb.Error as exc:
        con.close()
        raise FinopsError(f"{location}: cannot open the dataset ({str(exc).splitlines()[0][:200]})") from None
    return con


def _create_view(con: duckdb.DuckDBPyConnection, name: str, columns: Sequence[tuple[str, str]],
                 files: Sequence[Path], *, union: bool) -> None:
    """``CREATE VIEW name`` over ``files`` with the declared columns, in order, of the declared types."""
    probe = {r[0]: r[1] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_file_list(files)}, union_by_name = {str(union).lower()})"
    ).fetchall()}
    items = [f"CAST({ident(c)} AS {t}) AS {ident(c)}" if probe.get(c) != t else ident(c) for c, t in columns]
    con.execute(f"CREATE VIEW {ident(name)} AS SELECT {', '.join(items)} FROM read_parquet({_file_list(files)}, "
                f"hive_partitioning = false, union_by_name = {str(union).lower()})")


def _create_keyed_view(con: duckdb.DuckDBPyConnection, columns: Sequence[tuple[str, str]],
                       files: Sequence[Path]) -> None:
    """``finops_dataset.focus_rows``: the ``focus`` view plus ``_rowid``, a stable row key (file number x 2^40 +
    row number in the file) standing in for the table rowid that :meth:`finops_kit.scope.Scope.rows_sql` joins on
    (a view over parquet has no rowid, and ``row_number() OVER ()`` differs between two scans). In its own schema,
    so it is neither a table of the dataset nor written by a re-export."""
    keys = ", ".join(f"({sql_str(str(f))}, {i})" for i, f in enumerate(files))
    items = ", ".join(f"CAST(p.{ident(c)} AS {t}) AS {ident(c)}" for c, t in columns)
    con.execute(f"CREATE SCHEMA {KEYED_VIEW.split('.')[0]}")
    con.execute(f"CREATE VIEW {KEYED_VIEW} AS SELECT {items}, "
                f"CAST(k.n * 1099511627776 + p.file_row_number AS BIGINT) AS _rowid "
                f"FROM read_parquet({_file_list(files)}, hive_partitioning = false, union_by_name = true, "
                f"filename = true, file_row_number = true) p JOIN (VALUES {keys}) k(filename, n) USING (filename)")


def opened(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """What :func:`open_dataset` recorded on ``con`` (location, engine, created_at...), None for a warehouse."""
    try:
        value = con.execute(f"SELECT getvariable('{VARIABLE}')").fetchall()[0][0]
    except duckdb.Error:
        return None
    return json.loads(value) if value else None


def row_source(con: duckdb.DuckDBPyConnection | None) -> tuple[str, str]:
    """(FROM item, extra select item) of the FOCUS rows with a ``_rowid`` row key: the table and its rowid in a
    warehouse file, the keyed view (whose ``*`` already holds ``_rowid``) in an opened dataset."""
    if con is not None and opened(con):
        return KEYED_VIEW, ""
    return FOCUS_TABLE, ", f.rowid AS _rowid"


def read_only_error(location: str | os.PathLike) -> FinopsError:
    """The one line for any attempt to write into a dataset."""
    return FinopsError(f"{location}: is a FOCUS dataset, and datasets are read-only; ingest into a warehouse file "
                       "(--warehouse data/warehouse.duckdb) and write a dataset from it with 'finops-kit export "
                       "--dataset DIR'")


__all__ = [
    "ENGINES", "FILE_TYPE_ALIASES", "FOCUS_DIR", "LAYOUT_VERSION", "MANIFEST", "MANIFEST_KEYS", "NULL_PARTITION",
    "PARTITION_KEYS", "PARTITION_SQL", "REQUIRED_TABLES", "TABLES_DIR", "Manifest", "build_manifest",
    "escape_partition_value", "expected_type", "focus_files", "input_fingerprint", "is_location", "local_copy",
    "open_dataset", "opened", "partition_dir", "row_source", "read_manifest", "read_only_error", "reference_schema", "staging",
    "table_columns", "unescape_partition_value", "validate", "write_dataset", "write_manifest",
]
