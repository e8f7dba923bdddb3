"""The embedded warehouse: one DuckDB file holding the FOCUS table, the ingest log and the reconciliation proof.

Why DuckDB: set-based SQL over tens of millions of line items on a laptop, exact DECIMAL sums, parquet and CSV
readers, and a single file a notebook can open read-only while nobody is ingesting.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .errors import ConfigError, FinopsError
from .schema import LINEAGE_COLUMNS, MONEY, table_ddl

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
FOCUS_TABLE = "focus"

_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS ingest_log (
  ingest_id VARCHAR PRIMARY KEY,
  started_at TIMESTAMP,
  finished_at TIMESTAMP,
  source_format VARCHAR,
  inputs JSON,           -- what the user asked for (paths, globs, s3:// URLs)
  files JSON,            -- [{{path, size, sha256}}] of the files read
  skipped JSON,          -- [{{path, reason}}] e.g. superseded S3 assemblies
  source_keys JSON,      -- replacement keys written by this ingest
  rows BIGINT,
  replaced_rows BIGINT,  -- rows of earlier ingests with the same keys that this ingest replaced
  status VARCHAR         -- active | replaced (all its rows were replaced by a later ingest)
);
CREATE TABLE IF NOT EXISTS reconciliation (
  ingest_id VARCHAR,
  source_format VARCHAR,
  billing_period_start TIMESTAMP,
  currency VARCHAR,
  source_rows BIGINT,
  focus_rows BIGINT,
  source_billed {MONEY},
  focus_billed {MONEY},
  source_effective {MONEY},
  focus_effective {MONEY},
  ok BOOLEAN
);
"""

#: Largest difference tolerated between a source total and the normalized total (issue: 0.000001).
TOLERANCE = "0.000001"


def warehouse_path(path: str | os.PathLike | None = None) -> str:
    """The warehouse file: the argument, else $FINOPS_WAREHOUSE, else data/warehouse.duckdb."""
    return str(path or os.environ.get("FINOPS_WAREHOUSE") or DEFAULT_WAREHOUSE)


#: A DuckDB memory limit: a number and a unit (``2GB``, ``512MiB``, ``1.5 GB``) or a share of RAM (``50%``).
MEMORY_LIMIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)\s*$", re.IGNORECASE)


def memory_limit_setting(value: str, name: str = "FINOPS_MEMORY_LIMIT") -> str:
    """``value`` checked as a memory size before it is written into a ``SET`` statement (never pasted raw)."""
    m = MEMORY_LIMIT_RE.match(str(value))
    if not m or float(m.group(1)) <= 0 or (m.group(2) == "%" and float(m.group(1)) > 100):
        raise ConfigError(f"{name}={value!r}: expected a memory size such as 2GB, 512MiB or 50%")
    return f"{m.group(1)}{m.group(2)}"


def connect(path: str | os.PathLike | None = None, *, write: bool | None = None, read_only: bool | None = None,
            memory_limit: str | None = None, quiet: bool | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse: read-only unless asked to write, and never created by a reader.

    ``fk.connect()`` (no path) is the interactive form: it finds the project's warehouse (``$FINOPS_WAREHOUSE``
    or ``data/warehouse.duckdb``) from any folder of the project with :func:`finops_kit.project.find_in_project`
    -- the rule the curated notebooks use for their ``warehouse`` parameter -- and prints one line saying which
    file it opened and what it holds (``quiet=True`` to silence; :func:`info` gives the same as a value). Why
    read-only by default: DuckDB lets any number of read-only processes share the file, but a read-write
    connection locks out every other process, so a scratch kernel that merely reads would stop every curated
    notebook and ``finops-kit report`` ("Conflicting lock is held").

    A FOCUS dataset (a folder holding ``finops-dataset.json``, or ``s3://bucket/prefix``; see
    :mod:`finops_kit.dataset`) opens as an in-memory DuckDB whose tables are views over its parquet files, with
    the same table names and column types: every query, notebook and command runs on it unchanged. Datasets are
    read-only (``write=True`` is one line saying so).

    ``write=True`` (or the older ``read_only=False``) opens for writing, creating and upgrading the file;
    ``":memory:"`` gives a scratch warehouse (always writable). A reader given a missing file gets one line
    naming every place it looked, never an empty warehouse that would make every report show $0.00.

    Every reason the file cannot be opened (locked by another process, a folder, not a DuckDB file, truncated,
    read-only file system, parent is a file) is one :class:`FinopsError` line; see :func:`open_error`.
    """
    if write is not None and read_only is not None and bool(write) == bool(read_only):
        raise ValueError(f"connect(): write={write!r} and read_only={read_only!r} contradict each other")
    writable = bool(write) if write is not None else (read_only is False)
    target = warehouse_path(path)
    env_limit = os.environ.get("FINOPS_MEMORY_LIMIT")
    limit = None
    if memory_limit or env_limit:  # checked before anything is created
        limit = memory_limit_setting(memory_limit or env_limit,
                                     "FINOPS_MEMORY_LIMIT" if (memory_limit or env_limit) == env_limit
                                     else "memory_limit")
    if target == ":memory:":
        writable = True
    elif not target.startswith("s3://"):
        target = _locate(target, discover=path is None, writable=writable)
    from . import dataset

    if target != ":memory:" and dataset.is_location(target):  # a FOCUS dataset folder or s3:// prefix
        if writable:
            raise dataset.read_only_error(target)
        con = dataset.open_dataset(target, memory_limit=limit)
        return _opened(con, path, quiet)
    try:
        if target != ":memory:" and writable:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(target, read_only=not writable)
    except (duckdb.Error, OSError) as exc:
        raise open_error(target, exc, not writable) from None
    try:
        if target != ":memory:":
            _check_complete(con, Path(target))
        configure(con, limit)
        if writable:
            ensure_schema(con)
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise open_error(target, exc, not writable) from None
    return _opened(con, path, quiet)


def _opened(con: duckdb.DuckDBPyConnection, path: str | os.PathLike | None,
            quiet: bool | None) -> duckdb.DuckDBPyConnection:
    """``fk.connect()`` without a path: remember the connection for the one-line API and say what it opened."""
    if path is None:
        _DEFAULT["con"] = con  # the one-line API (fk.costs) answers on this connection too
        if not (quiet if quiet is not None else os.environ.get("FINOPS_QUIET") == "1"):
            print(info(con))
    return con


@contextlib.contextmanager
def in_file_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block on one thread with insertion order kept, then restore both settings.

    Why: with several threads DuckDB reads a file's chunks in whatever order they finish (a bad value planted at
    row 3,000 was reported at 5,904), so the error paths that number a file's rows (the ingest's diagnosis, the
    native-row locator of the quality checks) read on one thread in file order: the same row, every time.
    """
    threads, order = con.execute("SELECT current_setting('threads'), current_setting('preserve_insertion_order')"
                                 ).fetchall()[0]
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")
        con.execute(f"SET preserve_insertion_order = {'true' if order else 'false'}")


#: DuckDB worker threads of every connection the kit opens, when set (a whole number >= 1); else DuckDB's default,
#: one per core. ``finops-kit report`` sets it in its kernels to the cores shared among the reports running at once.
THREADS_ENV = "FINOPS_DUCKDB_THREADS"


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """The session settings of every connection the kit opens (a warehouse file or a FOCUS dataset's views).

    ``memory_limit`` must already be checked (:func:`memory_limit_setting`).
    """
    con.execute("SET TimeZone = 'UTC'")  # FOCUS dates are UTC; naive source timestamps are read as UTC
    if not _stdout_is_tty() or os.environ.get("FINOPS_REPORT") == "1":
        # DuckDB draws its progress bar on stdout for any query over 2 s: in piped output (finops-kit metrics
        # --json > file, a subprocess, a kernel) it corrupts what the command prints
        # (a report kernel: DuckDB's Jupyter bar is an ipywidgets FloatProgress that drags the 1.9 MB widget
        # manager into the static page)
        con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads.isdigit() and int(threads) >= 1:
        con.execute(f"SET threads = {int(threads)}")


#: The connection of the last ``fk.connect()`` without a path: ``fk.costs``/``fk.explore`` reuse it.
_DEFAULT: dict[str, duckdb.DuckDBPyConnection | None] = {"con": None}


def default_connection() -> duckdb.DuckDBPyConnection:
    """The project's warehouse for the one-line API: the connection of the last ``fk.connect()`` if it is still
    open, else a new read-only ``fk.connect()`` (which says which file it opened)."""
    con = _DEFAULT["con"]
    if con is not None:
        try:
            con.execute("SELECT 1").fetchall()
            return con
        except duckdb.Error:  # closed by the user
            _DEFAULT["con"] = None
    con = connect()
    return con


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def _locate(target: str, *, discover: bool, writable: bool) -> str:
    """The file to open. A reader's relative path that does not exist here is looked up in the parent folders up
    to the project root (see :mod:`finops_kit.project`); the default warehouse is created at the project root,
    not in the folder a notebook happens to run in. A reader that finds nothing gets one line naming where it
    looked."""
    from . import project

    p = Path(target).expanduser()
    if p.exists() or (writable and not discover):  # a writer's explicit path means exactly that path
        return target
    found = project.find_in_project(p)
    if found is not None:
        return str(found)
    if writable:
        return str(project.resolve(p))
    if p.is_absolute():
        raise FinopsError(f"{target}: no warehouse here; run 'finops-kit ingest' first")
    looked = ", ".join(str(b / p) for b in project.search_folders())
    raise FinopsError(f"{target}: no warehouse found (looked in {looked}); run 'finops-kit ingest' first, or "
                      "pass the warehouse's path (nothing was created)")


@dataclass(frozen=True)
class WarehouseInfo:
    """Which file (or FOCUS dataset) a connection opened and what it holds; ``str()`` is one line."""

    path: str
    read_only: bool
    rows: int
    periods: tuple[str, ...]
    providers: tuple[str, ...]
    #: for a FOCUS dataset (:mod:`finops_kit.dataset`): the engine that wrote it ("duckdb", "spark"); else None
    dataset_engine: str | None = None
    #: for a FOCUS dataset: when it was written (UTC, ISO 8601)
    dataset_created_at: str | None = None

    def __str__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        what = "warehouse"
        if self.dataset_engine:
            what = "FOCUS dataset"
            mode = f"read-only, written by {self.dataset_engine} at {self.dataset_created_at}"
        if not self.rows:
            return f"{what} {self.path} ({mode}): empty (no billing data ingested)"
        span = self.periods[0] if len(self.periods) == 1 else f"{self.periods[0]}..{self.periods[-1]}"
        return (f"{what} {self.path} ({mode}): {self.rows:,} FOCUS rows, billing periods {span} "
                f"({len(self.periods)}), providers {', '.join(self.providers)}")


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``con``'s database has a table or view ``name`` (an opened FOCUS dataset's tables are views)."""
    complete(con)
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND "
                            "table_catalog = current_database() AND table_schema = 'main'",
                            [name]).fetchall()[0][0])


def info(con: duckdb.DuckDBPyConnection) -> WarehouseInfo:
    """The file behind ``con`` and what it holds (rows, billing periods, providers), for a one-line summary."""
    from .dataset import opened

    complete(con)
    path, ro = con.execute("SELECT coalesce(path, ':memory:'), readonly FROM duckdb_databases() "
                           "WHERE database_name = current_database()").fetchall()[0]
    ds = opened(con)
    extra: dict[str, Any] = {}
    if ds:
        path, ro = ds["location"], True
        extra = {"dataset_engine": ds["engine"], "dataset_created_at": ds["created_at"]}
    if not has_table(con, FOCUS_TABLE):
        return WarehouseInfo(path, bool(ro), 0, (), (), **extra)
    rows, periods, providers = con.execute(
        f"SELECT (SELECT count(*) FROM {FOCUS_TABLE}), "
        f"(SELECT list(p ORDER BY p) FROM (SELECT DISTINCT strftime(BillingPeriodStart, '%Y-%m') AS p "
        f"  FROM {FOCUS_TABLE} WHERE BillingPeriodStart IS NOT NULL)), "
        f"(SELECT list(p ORDER BY p) FROM (SELECT DISTINCT ProviderName AS p FROM {FOCUS_TABLE} "
        f"  WHERE ProviderName IS NOT NULL))").fetchall()[0]
    return WarehouseInfo(path, bool(ro), int(rows), tuple(periods or ()), tuple(providers or ()), **extra)


def complete(con: duckdb.DuckDBPyConnection) -> None:
    """Finish a result left open by ``con.execute(...).fetchone()``.

    Why: DuckDB 2.0 keeps a partly fetched ``execute()`` result open, and the connection's next relation query
    (``con.sql``, ``con.table``) raises ResourceInUseException. Running the open statement to its end is what
    DuckDB 1.x did implicitly; a connection without an open result is left as it is.
    """
    with contextlib.suppress(duckdb.ConnectionException):  # a closed connection fails on its own next use
        con.complete()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first column of the first row of ``sql`` (None without rows), fetched fully so that the connection
    stays usable (see :func:`complete`)."""
    row = first_row(con, sql, params)
    return None if row is None else row[0]


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple | None:
    """The first row of ``sql`` or None, fetched fully (a ``LIMIT 1`` query costs nothing more); unlike
    ``execute().fetchone()`` it does not leave a result open on the connection."""
    rows = con.execute(sql, params).fetchmany(1) if params is not None else con.execute(sql).fetchmany(1)
    complete(con)
    return rows[0] if rows else None


#: DuckDB's file header: three 4 KiB blocks before the first data block
_DUCKDB_HEADER_BYTES = 3 * 4096


def _check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a truncated warehouse file at open time, not halfway through a command that reads a missing block.

    Without a pending WAL every block DuckDB uses is in the file, so the file is at least header + used blocks long.
    Used, not total: a checkpoint cuts free blocks off the end of the file, and DuckDB still counts them in
    ``total_blocks`` (as ``free_blocks``) when the file is opened again -- a warehouse whose last ingest replaced a
    month with a smaller one was refused as damaged while it was healthy.
    """
    if not path.is_file() or Path(f"{path}.wal").exists():
        return
    block_size, total_blocks, free_blocks = first_row(
        con, "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()")
    expected = _DUCKDB_HEADER_BYTES + (int(total_blocks) - int(free_blocks)) * int(block_size)
    if path.stat().st_size < expected:
        raise duckdb.IOException(f"Could not read enough bytes from file: {path.stat().st_size} of {expected}")


class WarehouseBusy(FinopsError):
    """The warehouse is locked by another process: a temporary condition, exit 75 (``EX_TEMPFAIL`` of sysexits.h),
    which a scheduler can retry on -- unlike exit 2, "fix the job definition"."""

    exit_code = 75


def open_error(target: str, exc: BaseException, read_only: bool) -> FinopsError:
    """One line for a warehouse that cannot be opened: what is wrong with the path and what to do about it."""
    text = " ".join(str(exc).split())
    low = text.lower()
    lock = re.search(r"conflicting lock is held in (.*?) \(PID (\d+)\)", text, re.IGNORECASE)
    if lock:
        holder = f"PID {lock.group(2)} ({_command_line(int(lock.group(2))) or lock.group(1)})"
        if "read-only mode" in low:  # DuckDB's hint: the holder only reads, and this process wants to write
            advice = ("it only reads (a notebook kernel that called fk.connect(), fk.costs() or fk.explore(), or a "
                      "running report), but writing needs the file alone: close that session (con.close() or shut "
                      "the kernel down) or retry once it is done")
        elif read_only:
            advice = ("it is writing (an ingest, or a session opened with write=True) and readers cannot share the "
                      "file with a writer: retry when it has finished")
        else:
            advice = ("it holds the file for writing (another ingest, or a session opened with write=True): retry "
                      "when it has finished, or close that session")
        return WarehouseBusy(f"{target}: the warehouse is in use by {holder}; {advice} (exit {WarehouseBusy.exit_code}: "
                             "temporary)")
    code = getattr(exc, "errno", None)
    if isinstance(exc, IsADirectoryError) or "is a directory" in low:
        return FinopsError(f"{target}: is a folder; --warehouse expects a .duckdb file (e.g. {target}/warehouse.duckdb) "
                           f"or a FOCUS dataset folder (this one has no {_dataset_manifest()})")
    if isinstance(exc, NotADirectoryError | FileExistsError) or "not a directory" in low:
        parent = next((str(p) for p in Path(target).parents if p.is_file()), str(Path(target).parent))
        return FinopsError(f"{target}: {parent} is a file, not a folder; choose another --warehouse")
    if code == errno.EROFS or "read-only file system" in low:
        return FinopsError(f"{target}: read-only file system; the warehouse cannot be written here"
                           + ("" if read_only else " (readers can still open it read-only)"))
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in low:
        return FinopsError(f"{target}: permission denied; the warehouse cannot be "
                           f"{'read' if read_only else 'opened for writing'} here")
    if code == errno.ENOSPC or "no space left" in low:
        return FinopsError(f"{target}: out of disk space while opening the warehouse; free space and run again")
    if "not a valid duckdb database" in low or "could not read enough bytes" in low or "corrupt" in low \
            or "checksum" in low or "serialization" in low:
        size = Path(target).stat().st_size if Path(target).is_file() else 0
        what = "empty" if size == 0 else ("truncated or damaged" if "enough bytes" in low or "checksum" in low
                                          else "not a DuckDB warehouse file")
        return FinopsError(f"{target}: {what} ({size:,} bytes); expected a finops-kit warehouse. Rebuild it with "
                           "'finops-kit ingest' into a new file, or restore a backup")
    return FinopsError(f"{target}: cannot open the warehouse ({text[:300]})")


def _dataset_manifest() -> str:
    from .dataset import MANIFEST

    return MANIFEST


def _command_line(pid: int) -> str | None:
    """The command line of a process (Linux /proc), shortened: who holds a lock."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a for a in raw.decode("utf-8", "replace").split("\0") if a]
    if not args:
        return None
    args[0] = Path(args[0]).name
    line = " ".join(args)
    return line if len(line) <= 120 else line[:117] + "..."


def write_error(target: str, exc: BaseException) -> FinopsError | None:
    """One line for a failure to *write* the warehouse (out of space, read-only, I/O error), else None.

    Used where a write fails mid-command, so that "no space left on device" is reported as what it is and not
    as a conversion error of the input.
    """
    text = " ".join(str(exc).split())
    low = text.lower()
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "no space left" in low or "disk full" in low:
        return FinopsError(f"{target}: out of disk space while writing the warehouse; nothing was written. Free "
                           "space and run again")
    if code == errno.EROFS or "read-only file system" in low:
        return FinopsError(f"{target}: read-only file system; nothing was written")
    if code == errno.EDQUOT or "quota" in low:
        return FinopsError(f"{target}: disk quota exceeded while writing the warehouse; nothing was written")
    return None


@contextlib.contextmanager
def removed_if_failed(path: str | os.PathLike | None) -> Iterator[None]:
    """Undo what opening the warehouse created (folders, the file, its WAL) when the command fails.

    A failed command must leave the disk as it found it: an ingest into a missing folder that fails on its
    input must not leave the folder and an empty warehouse behind.
    """
    target = warehouse_path(path)
    if target == ":memory:":
        yield
        return
    p = Path(target).absolute()
    new = [q for q in [p, *p.parents] if not q.exists() and not q.is_symlink()]
    try:
        yield
    except BaseException:
        for q in new:  # deepest first
            for f in (q, q.with_name(q.name + ".wal")):
                if f.is_file():
                    with contextlib.suppress(OSError):
                        f.unlink()
            if q.is_dir():
                with contextlib.suppress(OSError):
                    q.rmdir()  # only when empty
        raise


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(table_ddl(FOCUS_TABLE))
    existing = {r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()}
    for name, typ in LINEAGE_COLUMNS.items():  # warehouses made by an older kit gain new lineage columns
        if name not in existing:
            con.execute(f'ALTER TABLE {FOCUS_TABLE} ADD COLUMN "{name}" {typ}')
    con.execute(_LOG_DDL)


def focus(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The FOCUS 1.2 table as a DuckDB relation, ready for SQL (``fk.focus(con).filter(...)``).

    Works after plain DuckDB use of the same connection: a result left open by ``con.execute(...).fetchone()``
    is finished first (see :func:`complete`) instead of failing with ResourceInUseException.
    """
    complete(con)
    return con.table(FOCUS_TABLE)


def focus_columns_present(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()]


def add_custom_columns(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """Add ``x_`` pass-through columns (VARCHAR) that the table does not have yet.

    Compared without case, as DuckDB names columns: a stored ``x_costcentre`` is the column a later file's
    ``x_CostCentre`` writes into (``INSERT ... BY NAME`` matches it), not a second column to add, which failed with
    "Column ... already exists"."""
    have = {c.lower() for c in focus_columns_present(con)}
    for n in names:
        if n.lower() not in have:
            con.execute(f'ALTER TABLE {FOCUS_TABLE} ADD COLUMN "{n}" VARCHAR')
            have.add(n.lower())


def reconciliation_table(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Source vs normalized totals per ingest, billing period and currency, re-checked against the live table.

    The ``focus_*`` columns are recomputed now from the FOCUS table, so a later manual edit of the warehouse
    shows up as a difference here. Rows are matched by source format too: one Spark ingest of several formats
    writes one ingest id (the DuckDB ingest one per format), and each format's source totals must meet its own rows.
    """
    return con.sql(
        f"""
        WITH live AS (
          SELECT x_IngestId AS ingest_id, x_SourceFormat AS source_format, BillingPeriodStart AS billing_period_start,
                 BillingCurrency AS currency, count(*) AS focus_rows,
                 sum(BilledCost) AS focus_billed, sum(EffectiveCost) AS focus_effective
          FROM {FOCUS_TABLE} GROUP BY ALL
        )
        SELECT r.source_format, l.ingest_id, strftime(r.billing_period_start, '%Y-%m') AS billing_period,
               r.currency, r.source_rows, coalesce(live.focus_rows, 0) AS focus_rows,
               r.source_billed, coalesce(live.focus_billed, 0)::{MONEY} AS focus_billed,
               r.source_effective, coalesce(live.focus_effective, 0)::{MONEY} AS focus_effective,
               abs(r.source_billed - coalesce(live.focus_billed, 0)) <= {TOLERANCE}
                 AND abs(r.source_effective - coalesce(live.focus_effective, 0)) <= {TOLERANCE} AS ok
        FROM reconciliation r
        JOIN ingest_log l USING (ingest_id)
        LEFT JOIN live ON live.ingest_id = r.ingest_id AND live.source_format = r.source_format
          AND live.billing_period_start IS NOT DISTINCT FROM r.billing_period_start
          AND live.currency IS NOT DISTINCT FROM r.currency  -- a native row may lack either (a finding, stored)
        WHERE l.status = 'active'
        ORDER BY r.source_format, billing_period, r.currency
        """
    )


def active_file_digests(con: duckdb.DuckDBPyConnection) -> list[str | None]:
    """The sha256 of every source file the warehouse holds now (active ingests), one per file (None where a file
    was recorded without one); read from the ingest log only, so it is cheap enough to take before and after every
    report. Empty when nothing was ingested."""
    if not has_table(con, "ingest_log"):
        return []
    return [r[0] for r in con.sql(
        "SELECT f.sha256 FROM (SELECT unnest(CAST(files AS STRUCT(path VARCHAR, size BIGINT, sha256 VARCHAR)[])) "
        "AS f FROM ingest_log WHERE status = 'active')").fetchall()]


def input_digest(sha256s: list[Any]) -> str | None:
    """The input fingerprint: one sha256 over the sorted sha256 of every active source file; None without files.

    The one definition behind the report index's cover, each report run's record and a FOCUS dataset's manifest
    (they computed it three times, and the dataset's copy skipped a file recorded without a digest where the
    others counted it). A file without a digest counts as ``None``: it still changes the fingerprint."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(str(x) for x in sha256s)).encode()).hexdigest() if sha256s else None


def fingerprint(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Input fingerprint of what the warehouse holds now: every source file with size, sha256 and periods."""
    return con.sql(
        f"""
        WITH f AS (
          SELECT l.ingest_id, l.source_format, l.finished_at,
                 unnest(CAST(l.files AS STRUCT(path VARCHAR, size BIGINT, sha256 VARCHAR)[])) AS file
          FROM ingest_log l WHERE l.status = 'active'
        ), p AS (  -- per file, not per ingest: a 14-file ingest listed all 14 periods on every file's row
          SELECT x_IngestId AS ingest_id, x_SourceFile AS path,
                 string_agg(DISTINCT strftime(BillingPeriodStart, '%Y-%m'), ', '
                            ORDER BY strftime(BillingPeriodStart, '%Y-%m')) AS billing_periods
          FROM {FOCUS_TABLE} GROUP BY ALL
        )
        SELECT f.source_format, f.file.path AS path, f.file.size AS size_bytes, f.file.sha256 AS sha256,
               p.billing_periods, f.ingest_id, f.finished_at AS ingested_at
        FROM f LEFT JOIN p ON p.ingest_id = f.ingest_id AND p.path = f.file.path
        ORDER BY f.source_format, path
        """
    )
