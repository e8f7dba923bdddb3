"""Ingest: files of one billing-export format -> FOCUS rows in the warehouse, proven by reconciliation.

One ingest is one transaction. Either every row is written, the rows it replaces are gone and the
reconciliation proof holds, or the warehouse is exactly as before and the user gets one line saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import uuid
import zlib
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import duckdb

from . import delivery
from . import inputs as inputs_mod
from .classify import ai_workload_sql, complete_accelerated_instances
from .conformance import conformance_select
from .errors import FinopsError, InputError, ReconciliationError
from .quality import Finding
from .quality import check as check_quality
from .schema import LINEAGE_COLUMNS, MONEY, focus_columns
from .sources.base import (
    NotJsonRecords,
    Source,
    StagedSource,
    file_kind,
    ident,
    read_header,
    registry,
    sql_list,
    sql_str,
)
from .warehouse import (
    FOCUS_TABLE,
    TOLERANCE,
    add_custom_columns,
    connect,
    in_file_order,
    removed_if_failed,
    scalar,
    warehouse_path,
    write_error,
)


@dataclass
class IngestResult:
    """What one ingest call wrote. A call over files of several formats has one part per format (``parts``); the
    top-level fields then add them up (``source_format`` lists the formats)."""

    ingest_id: str
    source_format: str
    files: list[str]
    rows: int
    replaced_rows: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    reconciliation: list[dict] = field(default_factory=list)
    parts: list[IngestResult] = field(default_factory=list)
    #: exact copies of charges dropped by ``dedupe``: [{path, first, rows}] (rows of ``path`` already in ``first``)
    dropped: list[dict] = field(default_factory=list)
    #: keys (provider | account | period) whose stored rows were kept because this input's usage days are others
    added_to: list[str] = field(default_factory=list)
    #: what the user must know although nothing failed (e.g. stored days removed by ``replace``)
    notes: list[str] = field(default_factory=list)
    quality: list[Finding] = field(default_factory=list)  # data-quality findings (reports, repairs), see quality.py
    #: FOCUS columns that identify one charge in the written rows (Source.focus_identity; None: the whole row)
    identity: list[str] | None = None

    def summary(self) -> str:
        if len(self.parts) > 1:
            lines = [p.summary() for p in self.parts]
            total = f"one transaction: {self.rows:,} rows of {len(self.parts)} formats"
            if self.skipped:
                total += f", skipped {len(self.skipped)} file(s)"
            return "\n".join(lines + [total])
        periods = sorted({r["billing_period"] for r in self.reconciliation})
        span = f"{periods[0]}..{periods[-1]}" if len(periods) > 1 else (periods[0] if periods else "-")
        msg = (f"ingested {self.rows:,} rows of {self.source_format} from {len(self.files)} file(s), "
               f"billing periods {span}, reconciled {len(self.reconciliation)} period/currency total(s)")
        if self.replaced_rows:
            msg += f", replaced {self.replaced_rows:,} earlier rows"
        if self.added_to:
            msg += (f", added to {len(self.added_to)} stored billing period(s) on other usage days "
                    f"({', '.join(self.added_to[:3])}{', ...' if len(self.added_to) > 3 else ''})")
        if self.dropped:
            msg += f", dropped {sum(d['rows'] for d in self.dropped):,} duplicate source row(s)"
        if self.skipped:
            msg += f", skipped {len(self.skipped)} file(s)"
        return msg


#: The most :func:`ingest_memory_limit` gives however many files: 4 GB, or a quarter of the machine's memory if less.
INGEST_MEMORY_CEILING_MB = 4096


def _physical_memory_mb() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))
    except (AttributeError, ValueError, OSError):
        return None


def ingest_memory_limit(n_files: int, physical_mb: int | None = None) -> str:
    """DuckDB's buffer cap for an ingest on our own connection ($FINOPS_MEMORY_LIMIT overrides it).

    The insert streams row groups to disk, so a cap keeps peak memory flat however large the export (measured at 1M
    rows: 0.85 GB instead of 1.8 GB, same time). DuckDB also reserves read buffers per input file (dozens of small
    monthly CSVs need more than one big one), so the cap grows with the number of files, 256 MB each from 1 GB --
    up to a ceiling: a year of four providers' monthly exports is ~80 files, and 80 x 256 MB = 20 GB let an ingest
    of 2.6M rows grow to 7.9 GB and fail out of memory on a machine that had less to give, where 3 GB sufficed (the
    scale review: 3 min 19 s at 3.0 GB). The ceiling is :data:`INGEST_MEMORY_CEILING_MB` or a quarter of the
    machine's memory, whichever is less, never under 1 GB."""
    physical = _physical_memory_mb() if physical_mb is None else physical_mb
    ceiling = min(INGEST_MEMORY_CEILING_MB, physical // 4) if physical else INGEST_MEMORY_CEILING_MB
    return f"{max(1024, min(256 * n_files, ceiling))}MB"


def plan_formats(files: list[str], found: set[str] | frozenset[str] = frozenset(),
                 source_format: str = "auto") -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """Group the files by their detected format: ``({format: files}, skipped)``.

    A file nobody claims is an error (one line naming it and the columns seen), except a JSON file that was found
    by walking a folder or expanding a glob (``found``): JSON that is not billing records (``PLANTED.json``, a
    config or a report) is listed as skipped. CSV and parquet files are tabular: one nobody claims, or any file
    that cannot be read (truncated gzip), is still an error, so a billing export is never dropped silently.
    """
    sources = registry()
    if source_format != "auto":
        if source_format not in sources:
            raise FinopsError(f"unknown --format {source_format!r}; known: auto, {', '.join(sources)}")
        for f in files:
            read_header(f)  # empty / truncated files fail here with a clear message
        return {source_format: list(files)}, []
    groups: dict[str, list[str]] = {}
    skipped: list[dict[str, str]] = []
    for f in files:
        lenient = f in found and file_kind(f) == "json"
        try:
            cols = read_header(f)
        except InputError as exc:
            if lenient and isinstance(exc, NotJsonRecords):
                skipped.append({"path": f, "reason": "not billing data (not one JSON record per line)"})
                continue
            raise
        match = next((s for s in sources.values() if s.detect(cols, f)), None)
        companion = None if match is not None else next(
            (why for s in sources.values() if (why := s.not_billing(cols)) is not None), None)
        if companion is not None:
            if f not in found:
                raise InputError(f, f"{companion}: ingest those")
            skipped.append({"path": f, "reason": companion})
            continue
        if match is None:
            if lenient:
                skipped.append({"path": f, "reason": "not billing data (JSON records no format claims)"})
                continue
            shown = ", ".join(cols[:8]) + (f", ... ({len(cols)} columns)" if len(cols) > 8 else "")
            known = "; ".join(f"{s.name} ({', '.join(s.signature)})" for s in sources.values())
            raise InputError(f, f"unknown billing export format; saw columns [{shown}]; expected one of: {known}")
        groups.setdefault(match.name, []).append(f)
    return groups, skipped


def plan_inputs(paths: list[str], *, cache_dir: str | None = None, source_format: str = "auto",
                exclude: list[str] | None = None) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """What the user typed -> ``({format: files}, skipped)``, or the one-line error: shared by every engine, so
    the DuckDB and the Spark ingest read the same files and refuse the same input.

    ``exclude``: the files and folders of the store the ingest writes (a Spark dataset's manifest, ``focus/``,
    ``tables/`` and staging folders: :func:`finops_kit.spark.store_paths`; a DuckDB warehouse is skipped by its
    extension). Files inside them are listed as skipped, not read: a dataset inside the input folder would
    otherwise be read by the next run (its ``tables/*.parquet`` are no billing export, its ``focus/`` files are
    this input already normalized); exports kept beside them in the dataset's folder are input."""
    resolved = inputs_mod.resolve(list(paths), cache_dir=cache_dir)
    if exclude:
        own = [os.path.abspath(os.path.expanduser(e)) for e in exclude]
        keep = []
        for f in resolved.files:
            p = os.path.abspath(f)
            store = next((o for o in own if p == o or p.startswith(o.rstrip(os.sep) + os.sep)), None)
            if store is None:
                keep.append(f)
            else:
                resolved.skipped.append({"path": f, "reason": f"the store this ingest writes ({store}), not input"})
        resolved.files = keep
    if not resolved.files:
        why = (f" ({resolved.skipped[0]['path']} skipped: {resolved.skipped[0]['reason']})"
               if resolved.skipped else "")
        raise InputError(", ".join(paths), f"nothing to ingest{why}")
    groups, not_billing = plan_formats(resolved.files, resolved.found, source_format)
    if not groups:
        raise InputError(", ".join(paths), f"nothing to ingest: none of the {len(resolved.files)} file(s) is a "
                                           f"billing export (first: {not_billing[0]['path']})")
    return groups, resolved.skipped + not_billing


def detect_format(files: list[str]) -> type[Source]:
    """The one source format of these files; a one-line error if none matches or they hold several."""
    groups, _ = plan_formats(files)
    if len(groups) > 1:
        parts = "; ".join(f"{name}: {paths[0]}" + (f" (+{len(paths) - 1})" if len(paths) > 1 else "")
                          for name, paths in groups.items())
        raise InputError(None, f"files of several formats ({parts})")
    return registry()[next(iter(groups))]


def _file_fingerprint(path: str) -> dict:
    """Size and sha256 of a file; a gzip file's CRC-32 and length are verified too.

    DuckDB inflates gzip without checking the CRC that ends each member: a flipped bit that still inflates (a
    digit becoming another digit) was ingested as a different amount, reconciled against itself. The check runs
    on the hashing thread while DuckDB reads; a damaged file is an InputError that the ingest reports first.
    Cost: inflating once more, ~1.5-3 CPU-s per GB of CSV, on the second core.
    """
    digest = inputs_mod.sha256_of(path)
    if path.lower().endswith(".gz"):
        _verify_gzip(path)
    return {"path": str(path), "size": os.path.getsize(path), "sha256": digest}


def _verify_gzip(path: str) -> None:
    """Inflate every member only to let zlib check its CRC-32 and length (bounded chunks; output discarded)."""
    import gzip

    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 22):
                pass
    except EOFError:
        raise InputError(path, "cannot read file: the gzip stream ends inside a compressed block; it is "
                               "truncated (download or export it again)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise InputError(path, f"cannot read file: damaged gzip ({exc}); it is corrupt (download or export it "
                               "again)") from None


def _focus_select(source: Source, staged: StagedSource, ingest_id: str, passthrough: dict[str, str]) -> str:
    """The source's mapping, completed to the full FOCUS column set plus lineage and enrichment columns.

    Columns the mapping does not produce are NULL; every column is cast to its warehouse type here, once, so
    that source modules stay short and a bad value fails loudly (and is then diagnosed) instead of being coerced.
    """
    con = staged.extra["con"]
    mapping = source.focus_sql(staged)
    mapped = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({mapping}) LIMIT 0").fetchall()}
    cols = []
    for c in focus_columns():
        expr = ident(c.name) if c.name in mapped else "NULL"
        cols.append(f"CAST({expr} AS {c.duckdb_type}) AS {ident(c.name)}")
    family = source.key_family or source.name
    default_key = (f"concat_ws('|', {sql_str(family)}, BillingAccountId, "
                   f"strftime(CAST(BillingPeriodStart AS TIMESTAMP), '%Y-%m'))")
    fixed = {"x_IngestId": sql_str(ingest_id), "x_SourceFormat": sql_str(source.name)}
    for name, typ in LINEAGE_COLUMNS.items():
        if name in fixed:
            expr = fixed[name]
        elif name == "x_SourceKey":
            expr = f"coalesce({ident(name)}, {default_key})" if name in mapped else default_key
        elif name == "x_AiWorkload":
            name = "x_AiWorkload_src"  # the source's own classification, if any; completed below
            expr = "x_AiWorkload" if "x_AiWorkload" in mapped else "NULL"
        else:
            expr = ident(name) if name in mapped else "NULL"
        cols.append(f"CAST({expr} AS {typ}) AS {ident(name)}")
    cols += [f"CAST({ident(x)} AS VARCHAR) AS {ident(x)}" for x in passthrough.values() if x in mapped]
    available = {c.name for c in focus_columns()} | set(LINEAGE_COLUMNS)
    types = {c.name: c.duckdb_type for c in focus_columns()}
    completed = f"SELECT {', '.join(cols)} FROM ({mapping})"
    return (
        f"SELECT * EXCLUDE (x_AiWorkload_src), "
        f"{ai_workload_sql('x_AiWorkload_src', available, provider=source.provider_name)} "
        f"AS x_AiWorkload FROM ({conformance_select(completed, types)})"
    )


def ingest(paths: list[str] | str, *, warehouse: str | None = None, con: duckdb.DuckDBPyConnection | None = None,
           **options) -> IngestResult:
    """Ingest billing files into the warehouse; see :func:`ingest_files` for the options and guarantees.

    When the call opens the warehouse itself, a failure also removes what opening it created (a new warehouse
    file, its folders), as the CLI always did: ``fk.ingest(bad_file, warehouse="new/wh.duckdb")`` used to leave
    ``new/`` and an empty warehouse behind.
    """
    if con is not None:
        return ingest_files(paths, warehouse=warehouse, con=con, **options)
    with removed_if_failed(warehouse):
        return ingest_files(paths, warehouse=warehouse, **options)


def ingest_files(
    paths: list[str] | str,
    *,
    warehouse: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    source_format: str = "auto",
    cache_dir: str | None = None,
    progress: bool | None = None,
    keep_source_columns: bool = False,
    dedupe: bool = False,
    replace: bool = False,
) -> IngestResult:
    """Ingest billing files into the warehouse (see module docstring for the guarantees).

    Files are grouped by their detected format and every group is written in the same transaction, so pointing
    at an exports folder with several providers' exports is one call: all of it is written, or none of it.

    ``keep_source_columns`` keeps every source column the mapping does not consume as an ``x_`` column instead of
    the format's curated extras (AWS CUR; see ``data/aws_cur_extra_columns.csv``).

    A charge found in two files of the call is refused (file pair and count); ``dedupe`` drops exact copies
    instead and reports how many. Stored rows of the same account and billing period are replaced when the input
    covers all their usage days, kept when it shares none, and otherwise the call is refused unless ``replace``
    (see :func:`_replace_older`).
    """
    if isinstance(paths, str):
        paths = [paths]
    groups, skipped = plan_inputs(list(paths), cache_dir=cache_dir, source_format=source_format)
    all_files = [f for files in groups.values() for f in files]
    own = con is None
    con = con or connect(warehouse_path(warehouse), write=True, memory_limit=os.environ.get("FINOPS_MEMORY_LIMIT")
                         or ingest_memory_limit(len(all_files)))
    show = sys.stderr.isatty() if progress is None else progress
    con.execute(f"SET enable_progress_bar = {'true' if show else 'false'}")
    # Row order in the FOCUS table carries no meaning (every analysis aggregates or sorts), and keeping the file's
    # order makes DuckDB buffer out-of-order row groups under the ingest's memory cap: measured at 10M CUR rows,
    # 108 s instead of 119 s at the same 1.1 GB peak. The caller's setting is restored afterwards.
    keep_order = scalar(con, "SELECT current_setting('preserve_insertion_order')")
    con.execute("SET preserve_insertion_order = false")
    started = datetime.now(UTC).replace(tzinfo=None)
    # hashing a multi-GB export takes seconds: do it on a thread while DuckDB reads (both release the GIL)
    hasher = ThreadPoolExecutor(max_workers=2)
    fingerprints_future = hasher.submit(lambda: {f: _file_fingerprint(f) for f in all_files})
    parts: list[_Part] = []
    current: tuple[Source, list[str], str] | None = None  # what is being written, to diagnose a failure
    shield = _DeferredInterrupt()
    con.execute("BEGIN TRANSACTION")
    try:
        for name, files in groups.items():
            source = registry()[name]()
            source.keep_source_columns = keep_source_columns
            current = (source, files, f"src_{uuid.uuid4().hex[:8]}")
            parts.append(_write_part(con, hasher, *current, dedupe=dedupe))
        _one_format_per_key(con, parts)
        _one_report_per_key(con, parts)
        this_call = [p.result.ingest_id for p in parts]
        fingerprints = fingerprints_future.result()
        finished = datetime.now(UTC).replace(tzinfo=None)
        for part in parts:
            res = part.result
            fmt = registry()[res.source_format]
            _upgrade_stored_keys(con, fmt, this_call)
            other_format = _same_month_in_another_format(con, res, this_call, replace)
            stored_conflict_outcome(fmt.stored_conflict(con, res.ingest_id, part.keys, this_call), replace,
                                    res.notes)
            res.replaced_rows, res.added_to = _replace_older(con, res.ingest_id, part.keys, this_call, replace,
                                                             res.notes)
            _refuse_stored_line_items(con, fmt, res.ingest_id, this_call)
            res.replaced_rows += other_format
            con.execute(
                "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
                [res.ingest_id, started, finished, res.source_format,
                 json.dumps(list(paths)), json.dumps([fingerprints[f] for f in res.files]),
                 json.dumps(skipped + [{"path": d["path"], "reason": f"{d['rows']} row(s) dropped by --dedupe: "
                                        f"exact copies of charges in {d['first']}"} for d in res.dropped]),
                 json.dumps(part.keys), res.rows, res.replaced_rows],
            )
        # the other rows of an accelerated instance (a GCP VM's cores, RAM, licence) are its accelerated compute:
        # over the whole table, so that an instance whose rows came in two ingests is classed too
        complete_accelerated_instances(con)
        shield.start()  # from here on a Ctrl-C cannot stop the ingest: see _DeferredInterrupt
        con.execute("COMMIT")
    except BaseException as exc:
        shield.stop()
        with contextlib.suppress(duckdb.Error):  # a failed COMMIT already ended the transaction: keep ITS error
            con.execute("ROLLBACK")
        try:
            if isinstance(exc, Exception):  # not on Ctrl-C: that must not wait for the hashing thread
                damaged = _damaged_input(fingerprints_future)
                if damaged is not None:  # a damaged gzip explains whatever DuckDB made of it
                    raise damaged from None
            disk = write_error(warehouse_path(warehouse) if own else "warehouse", getattr(exc, "cause", exc))
            if disk is not None:  # out of space is not a conversion error of the input
                raise disk from None
            if isinstance(exc, _CastFailure) and current:  # diagnose outside the aborted transaction, then report
                raise _diagnose(con, *current, exc.cause) from None
            raise
        finally:
            hasher.shutdown(wait=True, cancel_futures=True)
            _release(con, keep_order, own)
    global last_commit
    try:
        last_commit = (warehouse_path(warehouse) if own else None, sum(p.result.rows for p in parts))
        hasher.shutdown()
        _release(con, keep_order, own)
        result = _combined([p.result for p in parts], all_files, skipped)
        if shield.interrupted:
            result.notes.append(f"Ctrl-C came while the ingest was being committed; the commit completed: "
                                f"{result.rows:,} rows are stored")
    finally:
        shield.stop()
    return result


#: ``(warehouse file or None, rows)`` of the last ingest this process committed. A Ctrl-C that reaches the CLI
#: after it (while the summary prints) must not say that nothing was written: ``cli`` reads this, and clears it
#: before each command.
last_commit: tuple[str | None, int] | None = None


class _DeferredInterrupt:
    """Ctrl-C from just before COMMIT until the ingest's cleanup is done: recorded, not raised.

    A KeyboardInterrupt after COMMIT returned (the hashing thread's shutdown and closing the warehouse, which
    checkpoints, take ~0.2 s of a large ingest) used to reach the CLI as "an interrupted ingest writes nothing"
    while every row was stored; and it cannot be told apart from one just before COMMIT once raised. So the
    interrupt is held back over that stretch: COMMIT completes (DuckDB only stops a query when Python's SIGINT
    handler raises), the cleanup finishes, and the result carries a note that the Ctrl-C came after the commit.
    Only the main thread receives signals and may set a handler; elsewhere, or when SIGINT is ignored, nothing
    changes.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, frame: object) -> None:
        self.interrupted = True

    def start(self) -> None:
        # SIGTERM too when the CLI turned it into an interrupt (a scheduler stops a job with it): a Python handler
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous = signal.getsignal(sig)
                if previous in (signal.SIG_IGN, None) or (sig == signal.SIGTERM and not callable(previous)):
                    continue
                signal.signal(sig, self._record)
            except ValueError:  # not the main thread
                return
            self._previous[sig] = previous

    def stop(self) -> None:
        while self._previous:
            sig, previous = self._previous.popitem()
            signal.signal(sig, previous)


def _combined(results: list[IngestResult], all_files: list[str], skipped: list[dict[str, str]]) -> IngestResult:
    """The result of the call: its one format's result, or the parts of several formats added up."""
    if len(results) == 1:
        results[0].skipped = skipped
        return results[0]
    return IngestResult(results[0].ingest_id, ", ".join(r.source_format for r in results), all_files,
                        sum(r.rows for r in results), sum(r.replaced_rows for r in results), skipped,
                        [rec for r in results for rec in r.reconciliation], results,
                        [d for r in results for d in r.dropped], [k for r in results for k in r.added_to],
                        [n for r in results for n in r.notes])


@dataclass
class _Part:
    """One format's share of an ingest call: its result and the replacement keys it wrote."""

    result: IngestResult
    keys: list[str]


def _write_part(con: duckdb.DuckDBPyConnection, pool: ThreadPoolExecutor, source: Source, files: list[str],
                view: str, dedupe: bool = False, scan_for_duplicates: bool = False) -> _Part:
    """Map, write and reconcile the files of one format inside the caller's transaction.

    Charges repeated across files (the same line-item identity, or for formats without one the same row) are
    refused, or with ``dedupe`` dropped when they are exact copies. Only an ingest of several files can repeat a
    charge this way, so a single file pays nothing for the check. Formats whose identity is in the written rows
    (AWS) are checked there, which costs milliseconds; the others, and AWS once a repeat was found, by one more
    read of the staged files.
    """
    ingest_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    try:
        staged = _stage(source, con, files, view)
    except duckdb.Error as exc:
        raise _read_error(files, exc) from None
    source.check_columns(staged)
    if source.dataset_table:  # a FOCUS dataset other than Cost and Usage (1.3 Contract Commitment): its own table
        res = IngestResult(ingest_id, source.name, files, source.load_dataset(con, staged, ingest_id), 0, [])
        con.execute(f"DROP VIEW IF EXISTS {view}")
        return _Part(res, [])
    identity = source.focus_identity(staged)
    in_focus = identity if len(files) > 1 else None
    dropped: list[dict] = []
    if len(files) > 1 and (scan_for_duplicates or not in_focus):
        try:
            dropped = _repeated_charges(con, source, staged, dedupe)
        except duckdb.Error as exc:
            raise _CastFailure(exc) from None
        if dropped:
            staged.view = _first_copies(con, source, staged)
    # the source's own totals come from a second read of the files, on a second connection, while the main
    # one maps and writes: the proof stays independent of the mapping and costs no extra wall time
    totals_future = pool.submit(_source_totals, con.cursor(), type(source)(), files, f"{view}_totals", bool(dropped))
    passthrough = source.passthrough_columns(staged)
    add_custom_columns(con, list(passthrough.values()))
    select = _focus_select(source, staged, ingest_id, passthrough)
    try:
        con.execute(f"INSERT INTO {FOCUS_TABLE} BY NAME {select}")
    except duckdb.Error as exc:
        totals_future.cancel()
        raise _CastFailure(exc) from None
    if in_focus and not scan_for_duplicates and _repeated_in_focus(con, ingest_id, in_focus):
        # rare: find the file pairs (and, with --dedupe, the exact copies) in the source rows, then write again
        con.execute(f"DELETE FROM {FOCUS_TABLE} WHERE x_IngestId = ?", [ingest_id])
        _wait(totals_future)
        return _write_part(con, pool, source, files, view, dedupe, scan_for_duplicates=True)
    rows = scalar(con, f"SELECT count(*) FROM {FOCUS_TABLE} WHERE x_IngestId = ?", [ingest_id])
    if rows == 0:
        raise InputError(files[0], "no billing rows found (header only?)")
    try:
        source_totals = totals_future.result()
    except duckdb.Error as exc:
        raise _CastFailure(exc) from None
    findings = check_quality(con, source, staged, ingest_id, passthrough,
                             lambda part: _focus_select(source, part, ingest_id, passthrough))
    recon = _reconcile(con, source, staged, ingest_id, source_totals)
    keys = [r[0] for r in con.execute(
        f"SELECT DISTINCT x_SourceKey FROM {FOCUS_TABLE} WHERE x_IngestId = ? ORDER BY 1", [ingest_id]).fetchall()]
    con.execute(f"DROP VIEW IF EXISTS {view}")
    con.execute(f"DROP VIEW IF EXISTS {view}_once")
    return _Part(IngestResult(ingest_id, source.name, files, rows, 0, [], recon, dropped=dropped, quality=findings,
                              identity=identity), keys)


def _wait(future) -> None:
    """Let a background read finish (its result is not needed); its errors are found again by the rerun."""
    with contextlib.suppress(Exception):
        future.result()


def _repeated_in_focus(con: duckdb.DuckDBPyConnection, ingest_id: str, identity: list[str]) -> bool:
    """Whether one line-item identity was written from two different files of this ingest."""
    cols = ", ".join(ident(c) for c in identity)
    return scalar(con,
        f"SELECT count(*) FROM (SELECT {cols} FROM {FOCUS_TABLE} WHERE x_IngestId = ? GROUP BY ALL "
        f"HAVING count(DISTINCT x_SourceFile) > 1 LIMIT 1)", [ingest_id]) > 0


def _repeated_charges(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource,
                      dedupe: bool) -> list[dict]:
    """Charges that occur in more than one file: ``[{file, first, rows}]`` when they may be dropped, else an error.

    A charge is repeated when its row key (:meth:`Source.row_key_sql`) occurs in two files; the copy in the file
    that sorts first is kept. Without ``dedupe`` any repeat is refused with the first file pair and the count.
    With it, exact copies are dropped; a repeated identity whose rows differ is still refused (which is right
    cannot be told from the files).
    """
    key, content = source.row_key_sql(staged), source.row_content_sql(staged)
    pairs = con.execute(f"""
        WITH r AS (SELECT _file, {_file_rank(staged)} AS _rank, {key} AS _k, {content} AS _h FROM {staged.view}),
        g AS (SELECT _k, arg_min(_file, _rank) AS first, count(DISTINCT _h) AS versions FROM r GROUP BY _k
              HAVING count(DISTINCT _file) > 1)
        SELECT g.first, r._file, count(*) AS n, max(g.versions) > 1 AS differ
        FROM r JOIN g USING (_k) WHERE r._file <> g.first GROUP BY ALL ORDER BY n DESC, 1, 2""").fetchall()
    if not pairs:
        return []
    first, later, n, differ = pairs[0]
    more = f" (and {len(pairs) - 1} more file pair(s))" if len(pairs) > 1 else ""
    if not dedupe:
        raise InputError(later, f"{n:,} row(s) repeat charges of {first} (same {source.row_identity}){more}; they "
                                "would be counted twice: remove the copy, or pass --dedupe to drop exact duplicates")
    # a restating format: a file whose repeated rows come with others of its own is a second run of the export
    # (those others may be revisions); one made only of copies (the same export saved twice) is dropped
    other = _rows_beyond_copies(con, source, staged, [(a, b) for a, b, _, _ in pairs]) if source.rows_restated \
        else None
    if other is not None:
        first, later, n = other
        raise InputError(later, f"{n:,} row(s) repeat charges of {first} (same {source.row_identity}){more}: two "
                                f"runs of one {source.name} export, and its re-exports restate rows in place, so a "
                                "row that differs may be a revision of one in the other file rather than a new "
                                "charge and --dedupe cannot tell: ingest the newer export alone (it replaces the "
                                "stored month)")
    bad = next((p for p in pairs if p[3]), None)
    if bad:
        raise InputError(bad[1], f"{bad[2]:,} row(s) have the {source.row_identity} of charges in {bad[0]} but "
                                 "different values; they are not copies, so --dedupe cannot choose: ingest one file")
    return [{"path": later, "first": first, "rows": n} for first, later, n, _ in pairs]


def _rows_beyond_copies(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource,
                        pairs: list[tuple[str, str]]) -> tuple[str, str, int] | None:
    """The first ``(first file, later file, repeated rows)`` of ``pairs`` whose later file also holds rows that are
    not in the first file, or None when every later file is made only of copies."""
    key = source.row_key_sql(staged)
    for first, later in pairs:
        extra, repeated = con.execute(f"""
            WITH r AS (SELECT _file, {key} AS _k FROM {staged.view} WHERE _file IN (?, ?))
            SELECT count(*) FILTER (WHERE _k NOT IN (SELECT _k FROM r WHERE _file = ?)), count(*)
            FROM r WHERE _file = ?""", [first, later, first, later]).fetchone()
        if extra:
            return first, later, repeated - extra
    return None


def _first_copies(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource) -> str:
    """A view of the staged rows without the copies of charges that an earlier file of the ingest already holds."""
    view = f"{staged.view}_once"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {view} AS SELECT * EXCLUDE (_k, _rank) FROM (
        SELECT *, {source.row_key_sql(staged)} AS _k, {_file_rank(staged)} AS _rank FROM {staged.view})
        QUALIFY _rank = min(_rank) OVER (PARTITION BY _k)""")
    return view


def _file_rank(staged: StagedSource) -> str:
    """A file's position in the ingest (the order the user named them, folders in name order): the earlier file
    keeps a repeated charge."""
    return f"list_position({sql_list(staged.files)}, _file)"


def _one_format_per_key(con: duckdb.DuckDBPyConnection, parts: list[_Part]) -> None:
    """Refuse one account's billing period delivered in two formats of one call (legacy CUR and CUR 2.0 of the
    same month): each is complete on its own, so loading both would count the month twice."""
    seen: dict[str, _Part] = {}
    for part in parts:
        for key in part.keys:
            other = seen.setdefault(key, part)
            if other is not part:
                a, b = other.result, part.result
                raise InputError(None, f"billing period {key} is in two formats of this call ({a.source_format}: "
                                       f"{_file_of_key(con, a.ingest_id, key)}; {b.source_format}: "
                                       f"{_file_of_key(con, b.ingest_id, key)}); each holds the whole period, so "
                                       "loading both would count it twice: ingest one of them")


def report_of(path: str) -> str | None:
    """The report or export a file of a format delivered in parts belongs to: its delivery folder
    (``<report>/`` of a legacy period folder, ``<export>/`` of a CUR 2.0 ``data/BILLING_PERIOD=`` folder), else its
    folder and its name without the part number (``cur/daily-report`` of ``cur/daily-report-1.csv``, AWS's own
    naming); None for a file named otherwise (renamed by the user: which report it came from is unknown)."""
    root = delivery.delivery_root(Path(path))
    if root is not None:
        return str(root)
    p = _posix(path)
    m = _PART.match(p.name)
    return str(p.parent / m["stem"]) if m else None


def _one_report_per_key(con: duckdb.DuckDBPyConnection, parts: list[_Part]) -> None:
    """Refuse two reports (or CUR 2.0 exports) of one account's billing period in one call when they hold charges
    of the same usage account (:func:`refuse_two_reports`, the rule both engines apply): the facts are read from
    this call's rows, per part."""
    for part in parts:
        if not registry()[part.result.source_format].delivered_in_parts or len(part.result.files) < 2:
            continue
        files = con.execute(f"SELECT DISTINCT x_SourceKey, x_SourceFile FROM {FOCUS_TABLE} WHERE x_IngestId = ? "
                            "ORDER BY ALL", [part.result.ingest_id]).fetchall()
        several = several_reports(files)
        if several:
            refuse_two_reports(several, con.execute(
                f"SELECT x_SourceKey, x_SourceFile, list(DISTINCT SubAccountId) FROM {FOCUS_TABLE} "
                "WHERE x_IngestId = ? AND x_SourceKey IN (SELECT unnest(?)) GROUP BY ALL ORDER BY ALL",
                [part.result.ingest_id, sorted(several)]).fetchall())


def several_reports(files: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The keys whose files come from more than one report (:func:`report_of`): ``{key: {report: its first
    file}}`` from ``(key, file)`` pairs of one format's rows of one call, sorted. Files whose report cannot be told
    are not compared."""
    reports: dict[str, dict[str, str]] = {}  # key -> {report: its first file}
    for key, f in files:
        if (report := report_of(f)) is not None:
            reports.setdefault(key, {}).setdefault(report, f)
    return {k: reports[k] for k in sorted(k for k, r in reports.items() if len(r) > 1)}


def refuse_two_reports(several: dict[str, dict[str, str]], accounts: list[tuple[str, str, list]]) -> None:
    """Refuse two reports (or CUR 2.0 exports) of one account's billing period in one call when they hold charges
    of the same usage account: each is a complete copy of that month (a daily and an hourly export, say), not a
    part of one delivery, so summing them would count the month twice. Parts of one delivery share their report
    (:func:`report_of`); reports of different usage accounts of one payer (members' own reports) hold different
    charges and are added.

    ``several``: :func:`several_reports`; ``accounts``: ``(key, file, its rows' SubAccountIds)`` of those keys'
    files, None standing for rows without a usage account. One rule for both engines: the DuckDB ingest reads these
    facts from its rows, the Spark ingest from the rows its tasks returned (tasks hold single files of AWS formats,
    so only the driver sees two reports of a key)."""
    subs: dict[tuple[str, str], set] = {}
    for key, f, ids in accounts:
        if (report := report_of(f)) is not None:
            subs.setdefault((key, report), set()).update(ids)
    for key, reports in several.items():
        names = sorted(reports)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                sa, sb = subs[(key, a)], subs[(key, b)]
                shared = sorted(x for x in sa & sb if x is not None)
                if not shared and not (None in sa and None in sb):  # a blank on one side is not shared
                    continue
                whose = (f"usage account(s) {', '.join(shared[:3])}{' and more' if len(shared) > 3 else ''}"
                         if shared else "charges without a usage account")
                raise InputError(reports[b], f"two reports of {key} in one call: {_posix(a).name} "
                                 f"({reports[a]}) and {_posix(b).name} ({reports[b]}) both hold its "
                                 f"{whose}; each report or export is a complete copy of the month, not a part "
                                 "of one delivery, so summing them would count it twice: ingest one report "
                                 "(one call per report or export folder)")


def stored_conflict_outcome(conflict: str | None, replace: bool, notes: list[str]) -> None:
    """What a :meth:`Source.stored_conflict` sentence does, on both engines: refuses the call, or with ``replace``
    becomes a note (the stored rows of the key are then replaced by the replacement rule)."""
    if conflict is None:
        return
    if not replace:
        raise InputError(None, f"{conflict}, or pass --replace to keep only this input's")
    notes.append(f"--replace: {conflict}; the stored rows were replaced by this input")


def _same_month_in_another_format(con: duckdb.DuckDBPyConnection, res: IngestResult, this_call: list[str],
                                  replace: bool) -> int:
    """Rows of the same provider, billing account and billing period under another key family: the provider's
    FOCUS export and its native export (CUR, GCP, Azure) of one month hold the same charges, and their keys differ
    (``focus|AWS|acct|month`` vs ``aws|acct|month``), so without this check both would stay and the month would
    count twice while each ingest reconciles. Refused (in one call always; against stored rows unless ``replace``,
    which deletes the stored rows of those months)."""
    family = "split_part(x_SourceKey, '|', 1)"
    found = con.execute(f"""
        WITH mine AS (SELECT DISTINCT ProviderName, BillingAccountId, BillingPeriodStart, {family} AS fam
                      FROM {FOCUS_TABLE} WHERE x_IngestId = ?)
        SELECT f.x_SourceKey, min(f.x_SourceFormat), min(f.x_IngestId), min(f.x_SourceFile), count(*),
               bool_or(f.x_IngestId IN (SELECT unnest(?))) AS in_call
        FROM {FOCUS_TABLE} f JOIN mine m USING (ProviderName, BillingAccountId, BillingPeriodStart)
        WHERE f.x_IngestId <> ? AND {family.replace('x_SourceKey', 'f.x_SourceKey')} <> m.fam
        GROUP BY 1 ORDER BY in_call DESC, 1""", [res.ingest_id, this_call, res.ingest_id]).fetchall()
    if not found:
        return 0
    key, fmt, _, file, _, in_call = found[0]
    if in_call or not replace:
        where = f"in {file}, also in this call" if in_call else f"already stored from {file}"
        more = f" (+{len(res.files) - 1} files)" if len(res.files) > 1 else ""
        fix = "ingest one of them" if in_call else "ingest one of them, or pass --replace to replace the stored rows"
        raise InputError(None, f"the charges of {key} ({fmt}, {where}) are also in the {res.source_format} input "
                               f"{res.files[0]}{more}: the same provider, billing account and billing period in two "
                               f"formats would count twice: {fix}")
    keys = [r[0] for r in found]
    gone = con.execute(
        f"""SELECT x_IngestId, BillingPeriodStart, BillingCurrency, count(*), sum(BilledCost)::{MONEY},
                   sum(EffectiveCost)::{MONEY}
            FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?)) GROUP BY ALL""", [keys]).fetchall()
    con.execute(f"DELETE FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?))", [keys])
    _shrink_reconciliation(con, gone)
    res.notes.append(f"--replace: removed {sum(g[3] for g in gone):,} stored row(s) of {', '.join(keys)}: the same "
                     f"months in another format than {res.source_format}")
    _mark_replaced(con, res.ingest_id)
    return sum(g[3] for g in gone)


def _mark_replaced(con: duckdb.DuckDBPyConnection, ingest_id: str) -> None:
    """Earlier ingests with no rows left are 'replaced' (the reconciliation and fingerprints show active ones)."""
    con.execute(
        f"""UPDATE ingest_log SET status = 'replaced'
            WHERE status = 'active' AND ingest_id <> ?
              AND ingest_id NOT IN (SELECT DISTINCT x_IngestId FROM {FOCUS_TABLE})""",
        [ingest_id],
    )


def _file_of_key(con: duckdb.DuckDBPyConnection, ingest_id: str, key: str) -> str:
    return scalar(con, f"SELECT min(x_SourceFile) FROM {FOCUS_TABLE} WHERE x_IngestId = ? AND x_SourceKey = ?",
                       [ingest_id, key])


def _damaged_input(fingerprints) -> InputError | None:
    """The InputError of the hashing thread (a damaged gzip), waiting for it; None when the files are intact."""
    try:
        exc = fingerprints.exception()
    except CancelledError:
        return None
    return exc if isinstance(exc, InputError) else None


def _release(con: duckdb.DuckDBPyConnection, keep_order: bool, own: bool) -> None:
    """Close the ingest's own connection, or give a caller's connection back with its insertion-order setting."""
    if own:
        con.close()
    else:
        con.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")


class _CastFailure(Exception):
    def __init__(self, cause: duckdb.Error):
        super().__init__(str(cause))
        self.cause = cause


def _diagnose(con: duckdb.DuckDBPyConnection, source: Source, files: list[str], view: str,
              cause: duckdb.Error) -> InputError:
    if _unreadable(str(cause)) or _malformed(str(cause)) or "json transform error" in str(cause).lower():
        return _read_error(files, cause)  # (a JSON value of the wrong kind: located by _read_error)
    # Rows are numbered in the order the files are read: the diagnosis, which only runs on the failure path, reads
    # on one thread in file order (warehouse.in_file_order), the same row every time.
    try:
        with in_file_order(con):
            staged = _stage(source, con, files, view)
            try:
                return with_line(source.diagnose(con, staged, cause))
            finally:
                con.execute(f"DROP VIEW IF EXISTS {view}")
    except duckdb.Error:  # the diagnosis could not read the file either: report what DuckDB said about it
        return _read_error(files, cause)


def with_line(err: InputError) -> InputError:
    """The error with the line of the file its data row starts on: CSV rows can span lines (quoted line breaks)
    and JSON files can hold blank lines, so the row alone does not say where to look in an editor."""
    if err.row is None or not err.file or not os.path.isfile(err.file):
        return err
    try:
        kind = file_kind(err.file)
    except InputError:
        return err
    if kind == "parquet":
        return err
    line = _line_of_row(err.file, err.row, kind)
    if line is None:
        return err
    located = InputError(None, f"{err} (line {line})")
    located.file, located.column, located.row = err.file, err.column, err.row
    return located


def _line_of_row(path: str, row: int, kind: str) -> int | None:
    """The 1-based line where data row ``row`` (1 = the first row after a CSV header) starts."""
    import csv
    import gzip as gz
    import io

    raw = gz.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as fh:
        if kind == "json":
            n = 0
            for i, text in enumerate(fh, start=1):
                if text.strip():
                    n += 1
                    if n == row:
                        return i
            return None
        reader = csv.reader(fh)
        previous_end = 0
        for i, _ in enumerate(reader):  # record 0 is the header
            if i == row:
                return previous_end + 1
            previous_end = reader.line_num
    return None


def _malformed(message: str) -> bool:
    """Whether a DuckDB error is about the file's syntax (malformed JSON, a broken CSV line), not a value."""
    low = message.lower()
    # a JSON *cell* that does not parse (FOCUS Tags in a CSV) is a cast "Conversion Error": diagnosed by the source
    return ("malformed json" in low and "conversion error" not in low) or "csv error" in low


def _stage(source: Source, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
    """Stage the files on ``con``; the staged source remembers its connection (mappings may need to ask it)."""
    staged = source.stage(con, files, view)
    staged.extra["con"] = con
    return staged


def _unreadable(message: str) -> bool:
    """Whether a DuckDB error means the file itself could not be read (truncated or corrupt compression)."""
    low = message.lower()
    if "malformed json" in low:  # a bad JSON cell ('unexpected end of data'), diagnosed by the source
        return False
    return any(w in low for w in ("gzip", "decompress", "unexpected end", "truncated"))


def _read_error(files: list[str], exc: Exception) -> InputError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    bad = next((f for f in files if f in str(exc)), files[0])
    if _unreadable(text):
        return InputError(bad, f"cannot read file; is it truncated or corrupt? ({text})")
    # DuckDB counts lines: a JSON record per line (row = line), a CSV header line first (row = line - 1)
    json_line = re.search(r"malformed json.*? in line (\d+)", text, re.IGNORECASE)
    csv_line = re.search(r"csv error on line: (\d+)", text, re.IGNORECASE)
    if json_line:
        row, why = _first_bad_json_line(bad, int(json_line.group(1)))
        return InputError(bad, f"malformed JSON ({why or text}); expected one JSON object per line", row=row)
    if csv_line:
        return InputError(bad, f"malformed CSV ({text})", row=max(int(csv_line.group(1)) - 1, 1))
    transform = re.search(r"json transform error.*?: expected (\w+), but got (\w+): (.+)$", text, re.IGNORECASE)
    if transform:
        expected, got, literal = transform.groups()
        found = _first_json_value(bad, got, literal)
        if found:
            row, column = found
            what = f"expected {_json_kind(expected)}, got {_json_kind(got, shape=False)}: {literal}"
            return with_line(InputError(bad, what, row=row, column=column))
    return InputError(bad, f"cannot read file ({text})")


#: How DuckDB's JSON transform errors name JSON kinds -> (word, shape) of the kit's error line, Python types.
_JSON_KINDS: dict[str, tuple[str, str, tuple[type, ...]]] = {
    "ARRAY": ("array", "[...]", (list,)), "OBJECT": ("object", "{...}", (dict,)), "VARCHAR": ("string", "", (str,)),
    "BOOLEAN": ("true/false", "", (bool,)), "BIGINT": ("number", "", (int, float)),
    "UBIGINT": ("number", "", (int, float)), "DOUBLE": ("number", "", (int, float)),
    "NULL": ("null", "", (type(None),)),
}


def _json_kind(name: str, shape: bool = True) -> str:
    """'array [...]' for DuckDB's ARRAY (without the shape: 'array'); an unknown kind in lower case."""
    word, form, _ = _JSON_KINDS.get(name.upper(), (name.lower(), "", ()))
    return f"{word} {form}" if shape and form else word


def _json_text(path: str) -> TextIO:
    """A JSON-lines file (gzip or not) opened as text for the error-path readers; bad bytes replaced."""
    import gzip

    if path.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - the caller's with closes it


def _first_json_value(path: str, kind: str, literal: str) -> tuple[int, str] | None:
    """(data row, field path) of the first record holding ``literal`` (a JSON value, as DuckDB's transform error
    quotes it) as a value of JSON kind ``kind``, or None.

    Why: DuckDB's JSON reader reports the line its buffer was at, not the record's ('in line 5' and 'in line 1'
    for a bad value on line 3), and not which field; a user needs both to fix an export. Read on the error path
    only, line by line (rows are the non-blank lines, as the reader counts records)."""
    try:
        want = json.loads(literal)
    except ValueError:
        return None  # a value DuckDB shortened: not findable by equality
    types = _JSON_KINDS.get(kind.upper(), ("", "", ()))[2]
    if not types:
        return None

    def find(node: object, where: str) -> str | None:
        if where and type(node) in types and node == want:  # exact types: a JSON true is not the number 1
            return where
        if isinstance(node, dict):
            for k, v in node.items():
                hit = find(v, f"{where}.{k}" if where else str(k))
                if hit:
                    return hit
        elif isinstance(node, list):
            for v in node:
                hit = find(v, where)
                if hit:
                    return hit
        return None

    try:
        with _json_text(path) as fh:
            row = 0
            for line in fh:
                if not line.strip():
                    continue
                row += 1
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                field = find(record, "")
                if field:
                    return row, field
    except (OSError, EOFError):
        return None
    return None


def _first_bad_json_line(path: str, upto: int) -> tuple[int, str | None]:
    """The first line up to ``upto`` that is not a JSON value, and why (DuckDB reports where its parser stopped,
    which is the line after an unterminated string)."""
    try:
        with _json_text(path) as fh:
            for n, line in enumerate(fh, 1):
                if n > upto:
                    break
                if line.strip():
                    try:
                        json.loads(line.rstrip("\r\n"))
                    except ValueError as exc:
                        return n, str(exc)
    except (OSError, EOFError):
        pass
    return upto, None


def _source_totals(cur: duckdb.DuckDBPyConnection, source: Source, files: list[str], view: str,
                   first_copies: bool = False) -> list[tuple]:
    """The source's own billed and amortized totals per billing period and currency (its own connection).

    ``first_copies``: the totals of the source without the exact copies that ``--dedupe`` drops (selected here
    from the raw rows by the same row key, not from what the mapping wrote)."""
    try:
        cur.execute("SET enable_progress_bar = false")  # the main connection shows the one progress bar
        staged = _stage(source, cur, files, view)
        if first_copies:
            staged.view = _first_copies(cur, source, staged)
        return cur.execute(
            f"""SELECT CAST(billing_period_start AS TIMESTAMP), currency, sum(source_rows)::BIGINT,
                       sum(billed)::{MONEY}, sum(effective)::{MONEY}
                FROM ({source.source_totals_sql(staged)}) GROUP BY ALL"""
        ).fetchall()
    finally:
        cur.close()


def _reconcile(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource, ingest_id: str,
               source_totals: list[tuple]) -> list[dict]:
    """Compare the source's own totals with the normalized totals, per billing period and currency."""
    table = f"_src_totals_{ingest_id.replace('-', '_')}"
    con.execute(f"CREATE TEMP TABLE {table} (billing_period_start TIMESTAMP, currency VARCHAR, source_rows BIGINT, "
                f"billed {MONEY}, effective {MONEY})")
    if source_totals:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?)", source_totals)
    rows = con.execute(
        f"""
        WITH s AS (SELECT * FROM {table}), f AS (
          SELECT BillingPeriodStart AS billing_period_start, BillingCurrency AS currency, count(*) AS focus_rows,
                 sum(BilledCost)::{MONEY} AS billed, sum(EffectiveCost)::{MONEY} AS effective
          FROM {FOCUS_TABLE} WHERE x_IngestId = ? GROUP BY ALL
        )
        SELECT coalesce(s.billing_period_start, f.billing_period_start), coalesce(s.currency, f.currency),
               coalesce(s.source_rows, 0), coalesce(f.focus_rows, 0),
               coalesce(s.billed, 0), coalesce(f.billed, 0), coalesce(s.effective, 0), coalesce(f.effective, 0)
        FROM s FULL OUTER JOIN f
          ON s.billing_period_start IS NOT DISTINCT FROM f.billing_period_start
         AND s.currency IS NOT DISTINCT FROM f.currency
        ORDER BY 1, 2
        """,
        [ingest_id],
    ).fetchall()
    con.execute(f"DROP TABLE {table}")
    out, bad = [], []
    for period, cur, srows, frows, sb, fb, se, fe in rows:
        ok = abs(sb - fb) <= type(sb)(TOLERANCE) and abs(se - fe) <= type(se)(TOLERANCE)
        rec = {"billing_period": period.strftime("%Y-%m") if period else None, "currency": cur,
               "source_rows": srows, "focus_rows": frows, "source_billed": sb, "focus_billed": fb,
               "source_effective": se, "focus_effective": fe, "ok": ok}
        out.append(rec)
        con.execute("INSERT INTO reconciliation VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [ingest_id, source.name, period, cur, srows, frows, sb, fb, se, fe, ok])
        if not ok:
            bad.append(rec)
    if bad:
        b = bad[0]
        raise ReconciliationError(
            f"{staged.files[0]}: reconciliation failed for {len(bad)} period/currency total(s), first "
            f"{b['billing_period']} {b['currency']}: source billed {b['source_billed']} vs FOCUS BilledCost "
            f"{b['focus_billed']}, source amortized {b['source_effective']} vs FOCUS EffectiveCost "
            f"{b['focus_effective']}; nothing was written"
        )
    return out


def _replace_older(con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str], this_call: list[str],
                   replace: bool = False, notes: list[str] | None = None) -> tuple[int, list[str]]:
    """Apply the replacement rule to stored rows of earlier ingests with the same keys: ``(replaced rows, keys
    added to)``.

    Per key (provider | account | billing period), by the usage days (``ChargePeriodStart``'s date) of the stored
    rows and of this input:

    * the input covers every stored day -> the stored rows are replaced (a restatement, a re-run, a migration);
    * no day in common -> the input is added beside them (a month delivered in parts, e.g. GCP daily exports);
    * anything else -> refused, naming the period and both day ranges: replacing would delete stored days the input
      does not hold, adding would count the shared days twice. ``replace`` replaces the whole key anyway.

    The reconciliation rows of the ingests that lose rows are kept true: a period/currency with no rows left is
    removed from it, one with rows left is reduced by exactly what was deleted (it was proven equal before).
    """
    if not keys:
        return 0, []
    older = scalar(con,
        f"SELECT count(*) FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?)) "
        f"AND x_IngestId NOT IN (SELECT unnest(?))", [keys, this_call])
    if not older:
        return 0, []
    day = "CAST(coalesce(ChargePeriodStart, BillingPeriodStart) AS DATE)"
    coverage = con.execute(f"""
        WITH new AS (SELECT DISTINCT x_SourceKey AS k, {day} AS d FROM {FOCUS_TABLE} WHERE x_IngestId = ?),
        old AS (SELECT DISTINCT x_SourceKey AS k, {day} AS d FROM {FOCUS_TABLE}
                WHERE x_SourceKey IN (SELECT unnest(?)) AND x_IngestId NOT IN (SELECT unnest(?))),
        span AS (SELECT k, min(d) AS first, max(d) AS last FROM new GROUP BY k)
        SELECT o.k, count(*) AS stored_days, count(n.d) AS shared_days, min(o.d), max(o.d), s.first, s.last
        FROM old o LEFT JOIN new n ON n.k = o.k AND n.d = o.d JOIN span s ON s.k = o.k
        GROUP BY o.k, s.first, s.last ORDER BY o.k""", [ingest_id, keys, this_call]).fetchall()
    replaced_keys, added_to = replacement_decision(coverage, replace, notes,
                                                   _recency(con, ingest_id, [c[0] for c in coverage], this_call))
    if not replaced_keys:
        return 0, added_to
    which = "x_SourceKey IN (SELECT unnest(?)) AND x_IngestId NOT IN (SELECT unnest(?))"
    gone = con.execute(
        f"""SELECT x_IngestId, BillingPeriodStart, BillingCurrency, count(*), sum(BilledCost)::{MONEY},
                   sum(EffectiveCost)::{MONEY}
            FROM {FOCUS_TABLE} WHERE {which} GROUP BY ALL""", [replaced_keys, this_call]).fetchall()
    con.execute(f"DELETE FROM {FOCUS_TABLE} WHERE {which}", [replaced_keys, this_call])
    _shrink_reconciliation(con, gone)
    _mark_replaced(con, ingest_id)
    return sum(g[3] for g in gone), added_to


@dataclass(frozen=True)
class Recency:
    """What the rows themselves say, beyond usage days, about whether this input may replace the stored copy of
    one key (provider | account | period): is it older, and does it hold every sub-account the stored copy holds.

    Usage days cannot tell an older copy of a month from a newer one when both cover the same days (an AWS
    assembly holds the whole month-to-date, and a restatement changes amounts, not days). Two facts can:

    * the invoice: AWS and Azure fill ``InvoiceId`` once the month is invoiced and never empty it again, so stored
      invoiced rows replaced by rows without an invoice id would revert final charges to an estimate;
    * the delivery: when the stored rows were ingested, their period's manifest named the current assembly and the
      files of the others were skipped as superseded (kept in ``ingest_log.skipped``); an input read from one of
      those superseded assemblies is an older copy, whatever the file's time stamp says after a copy.
    """

    stored_invoice: str | None  # an InvoiceId of the stored rows (None: the stored month is not invoiced)
    stored_file: str | None  # a file the stored rows came from (an invoiced one when there is one)
    new_invoice: str | None  # an InvoiceId of this input's rows
    new_file: str | None  # a file of this input
    #: "assembly X (superseded by assembly Y, named by manifest M)" when this input is an assembly the stored
    #: rows' delivery listed as superseded
    superseded: str | None = None
    #: the stored sub-accounts (``SubAccountId``) this input does not hold, with their rows and billed money, when
    #: the input names sub-accounts of the key at all. A key groups several: AWS usage accounts under one payer
    #: (a linked account's own CUR carries its payer's id), GCP projects of a billing account, Azure subscriptions
    #: of a billing profile, OCI compartments of a tenancy, FOCUS SubAccountIds of a BillingAccountId. A copy with
    #: the same usage days but fewer sub-accounts is a narrower export, not a newer one, and replacing with it
    #: would delete the others' money.
    missing_sub_accounts: str | None = None
    #: "part(s) R-1.csv of the delivery in folder F and this input only R-2.csv" when the stored rows came from
    #: numbered parts of one delivery folder (:attr:`Source.delivered_in_parts`) and this input holds some other
    #: part of that folder but not them: parts hold different charges of the same days, so an input that covers
    #: every stored day is another part, not a newer copy, and replacing with it would delete the stored parts
    other_parts: str | None = None


def _recency(con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str], this_call: list[str]
             ) -> dict[str, Recency]:
    """:class:`Recency` of each stored key, from the stored rows, this ingest's rows and the ingest log.

    The queries only gather per-key facts; :func:`recency_of` turns them into evidence, so that the Spark ingest,
    which gathers the same facts over a partitioned dataset, decides with the same code."""
    if not keys:
        return {}
    side = """SELECT x_SourceKey, min(InvoiceId),
                     coalesce(min(x_SourceFile) FILTER (WHERE InvoiceId IS NOT NULL), min(x_SourceFile))
              FROM {t} WHERE x_SourceKey IN (SELECT unnest(?)) AND {which} GROUP BY x_SourceKey"""
    stored = {k: (inv, f) for k, inv, f in con.execute(
        side.format(t=FOCUS_TABLE, which="x_IngestId NOT IN (SELECT unnest(?))"), [keys, this_call]).fetchall()}
    new = {k: (inv, f) for k, inv, f in con.execute(
        side.format(t=FOCUS_TABLE, which="x_IngestId = ?"), [keys, ingest_id]).fetchall()}
    logged = con.execute(
        f"""WITH owners AS (SELECT DISTINCT x_SourceKey AS k, x_IngestId AS i FROM {FOCUS_TABLE}
                            WHERE x_SourceKey IN (SELECT unnest(?)) AND x_IngestId NOT IN (SELECT unnest(?)))
            SELECT o.k, l.skipped FROM owners o JOIN ingest_log l ON l.ingest_id = o.i""",
        [keys, this_call]).fetchall()
    superseded = superseded_assemblies(logged)
    input_files = con.execute(
        f"SELECT DISTINCT x_SourceKey, x_SourceFile FROM {FOCUS_TABLE} WHERE x_IngestId = ? "
        "AND x_SourceKey IN (SELECT unnest(?)) ORDER BY ALL", [ingest_id, list(superseded)]).fetchall() \
        if superseded else []
    parts = [f for f, cls in registry().items() if cls.delivered_in_parts]
    files = con.execute(
        f"""SELECT DISTINCT x_SourceKey, x_IngestId = ?, x_SourceFile FROM {FOCUS_TABLE}
            WHERE x_SourceKey IN (SELECT unnest(?)) AND x_SourceFormat IN (SELECT unnest(?))
              AND (x_IngestId = ? OR x_IngestId NOT IN (SELECT unnest(?))) AND x_SourceFile IS NOT NULL
            ORDER BY ALL""", [ingest_id, keys, parts, ingest_id, this_call]).fetchall() if parts else []
    return recency_of(keys, stored, new, superseded, input_files, _missing_sub_accounts(con, ingest_id, keys,
                                                                                        this_call), files)


def _posix(path: str) -> PurePosixPath:
    """A stored file path with either separator, as a POSIX path (folders and names compare alike)."""
    return PurePosixPath(str(path).replace("\\", "/"))


def _assembly(path: str) -> str:
    """The assembly folder a delivered file sits in (its parent folder's name, whichever separator)."""
    return _posix(path).parent.name


def superseded_assemblies(logged: list[tuple[str, str | None]]) -> dict[str, dict[str, str]]:
    """Per key, the assemblies the stored rows' deliveries skipped as superseded: ``{key: {assembly: "superseded
    by assembly Y, named by the manifest M"}}`` from ``(key, ingest_log.skipped JSON)`` of the stored rows'
    ingests. One reading of the log for both engines (the Spark dataset keeps the same column in
    ``tables/ingest_log.parquet``)."""
    superseded: dict[str, dict[str, str]] = {}
    for key, skipped in logged:
        for entry in json.loads(skipped or "[]"):
            got = delivery.superseding_assembly(str(entry.get("reason", "")))
            if got is not None:
                superseded.setdefault(key, {})[_assembly(str(entry.get("path", "")))] = (
                    f"superseded by assembly {got[1]}, named by the manifest {got[0]}")
    return superseded


#: A numbered part of a delivery: ``<report>-<n><extensions>`` (``helix-cur-1.csv.gz``, ``acme-00002.snappy.parquet``)
#: with a part number of 1 to 5 digits, as AWS writes them -- not a date stamp (``acme-cur-20260415``,
#: ``acme-cur-2026-04-15``: month-to-date snapshots, which replace each other)
_PART = re.compile(r"^(?P<stem>.+?)(?<!\d{4}-\d{2})-(?P<n>\d{1,5})(?P<ext>\.[^-]+)$")


def missing_parts_text(files: list[tuple[bool, str]]) -> str | None:
    """``"part(s) A of the delivery in F and this input only B"`` (see :attr:`Recency.other_parts`) from one key's
    ``(is this input's, file)`` pairs, or None when no stored part is missing from a delivery folder this input
    draws parts from. Parts are siblings when folder, name before ``-<n>`` and extensions are the same."""
    def group(f: str) -> tuple[str, str, str] | None:
        path = _posix(f)
        m = _PART.match(path.name)
        return (str(path.parent), m["stem"], m["ext"]) if m else None

    mine = {f for is_new, f in files if is_new}
    drawn = {g for g in map(group, mine) if g is not None}
    lost = sorted(f for is_new, f in files if not is_new and f not in mine and group(f) in drawn)
    if not lost:
        return None
    folder = str(_posix(lost[0]).parent)
    kept = sorted(f for f in mine if group(f) == group(lost[0]))

    def names(fs: list[str]) -> str:
        shown = [_posix(f).name for f in fs[:3]]
        return ", ".join(shown) + (f" and {len(fs) - 3} more" if len(fs) > 3 else "")

    return f"part(s) {names(lost)} of the delivery in {folder} and this input only {names(kept)}"


def recency_of(keys: list[str], stored: dict[str, tuple], new: dict[str, tuple],
               superseded: dict[str, dict[str, str]], input_files: list[tuple[str, str]],
               missing: dict[str, str], files: list[tuple[str, bool, str]] | None = None) -> dict[str, Recency]:
    """:class:`Recency` per key from the facts either engine gathers: ``stored`` / ``new`` ``{key: (an InvoiceId,
    a file)}`` of the stored rows and of this input, ``superseded`` (:func:`superseded_assemblies`), this input's
    ``(key, file)`` pairs of the keys in ``superseded``, ``missing`` (:func:`missing_sub_accounts_text`) and
    ``files``: ``(key, is this input's, file)`` of the keys whose format is delivered in parts
    (:func:`missing_parts_text`)."""
    per_key: dict[str, list[tuple[bool, str]]] = {}
    for key, is_new, f in files or []:
        per_key.setdefault(key, []).append((bool(is_new), f))
    input_assemblies: dict[str, list[tuple[str, str]]] = {}
    for key, f in sorted(input_files):
        input_assemblies.setdefault(key, []).append((_assembly(f), f))
    out = {}
    for key in keys:
        stale = next((f"{f} is assembly {asm}, {superseded[key][asm]}" for asm, f in input_assemblies.get(key, [])
                      if asm in superseded.get(key, {})), None)
        out[key] = Recency(*stored.get(key, (None, None)), *new.get(key, (None, None)), superseded=stale,
                           missing_sub_accounts=missing.get(key),
                           other_parts=missing_parts_text(per_key[key]) if key in per_key else None)
    return out


def _missing_sub_accounts(con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str], this_call: list[str]
                          ) -> dict[str, str]:
    """Per key, the stored sub-accounts this input lacks (see :func:`missing_sub_accounts_text`).

    Only keys whose input rows name a ``SubAccountId`` are compared: an input without sub-account data says
    nothing about which sub-accounts it covers. Rows without a sub-account (on either side) are not compared."""
    rows = con.execute(
        f"""WITH new AS (SELECT DISTINCT x_SourceKey AS k, SubAccountId AS s FROM {FOCUS_TABLE}
                         WHERE x_IngestId = ? AND x_SourceKey IN (SELECT unnest(?)) AND SubAccountId IS NOT NULL),
            lost AS (SELECT o.* FROM {FOCUS_TABLE} o
                     WHERE o.x_SourceKey IN (SELECT k FROM new) AND o.x_IngestId NOT IN (SELECT unnest(?))
                       AND o.SubAccountId IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM new n WHERE n.k = o.x_SourceKey AND n.s = o.SubAccountId))
            SELECT x_SourceKey, list(DISTINCT SubAccountId ORDER BY SubAccountId), count(*),
                   (SELECT list([c, CAST(b AS VARCHAR)]) FROM (SELECT BillingCurrency AS c, sum(BilledCost) AS b
                                                              FROM lost l WHERE l.x_SourceKey = lost.x_SourceKey
                                                              GROUP BY c)),
                   min(x_SourceFile), min(SubAccountType), min(ProviderName),
                   (SELECT list(s ORDER BY s) FROM new WHERE new.k = lost.x_SourceKey)
            FROM lost GROUP BY x_SourceKey ORDER BY x_SourceKey""", [ingest_id, keys, this_call]).fetchall()
    return {key: missing_sub_accounts_text(subs, n, [(c, None if b is None else Decimal(b)) for c, b in billed],
                                           file, sub_type, provider, kept)
            for key, subs, n, billed, file, sub_type, provider, kept in rows}


def missing_sub_accounts_text(subs: list[str], rows: int, billed: list[tuple[str | None, Decimal | None]],
                              file: str | None, sub_type: str | None, provider: str | None, kept: list[str]) -> str:
    """``"member account(s) A, B (n row(s), x USD billed, from F) and this input only C"`` (see
    :attr:`Recency.missing_sub_accounts`) from one key's lost stored rows: their sorted sub-accounts, row count,
    billed money per currency, first file, ``min(SubAccountType)`` and ``min(ProviderName)``, and the input's
    sorted sub-accounts. Both engines aggregate these facts and format them here, so they print one line alike.

    The money is printed as DuckDB's ``printf('%,.2f', …)`` did (through a double), currencies in order with
    rows without a currency last."""
    def shown(ids: list[str]) -> str:
        return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    money = " + ".join(f"{float(b):,.2f} {c if c is not None else '(no currency)'}"
                       for c, b in sorted(billed, key=lambda cb: (cb[0] is None, cb[0] or "")) if b is not None)
    noun = sub_type.lower() if sub_type is not None else "usage account" if provider == "AWS" else "sub-account"
    return (f"{noun}(s) {shown(subs)} ({rows:,} row(s), {money or None} billed, from {file}) and this input only "
            f"{shown(kept)}")


def replacement_decision(coverage: list[tuple], replace: bool = False, notes: list[str] | None = None,
                         recency: dict[str, Recency] | None = None) -> tuple[list[str], list[str]]:
    """The replacement rule of :func:`_replace_older` on the usage-day coverage of each stored key:
    ``(keys to replace, keys added to)``; one rule for every engine (the Spark ingest computes the same coverage
    over a partitioned dataset).

    ``coverage`` rows: ``(key, stored_days, shared_days, stored_first, stored_last, new_first, new_last)``.
    ``recency`` (per key, where known): a replacement that would put an older copy of the month in place of a newer
    one -- an assembly the stored delivery superseded, or an estimate over the invoiced month -- or a narrower one
    -- a copy without some stored sub-accounts, such as a linked account's own CUR over its payer's month -- is
    refused like a partial overlap, and ``replace`` forces it with a note.
    """
    replaced_keys, added_to = [], []
    for key, stored_days, shared_days, old_first, old_last, new_first, new_last in coverage:
        if shared_days == stored_days or replace:
            evidence = (recency or {}).get(key)
            # each kind of evidence: why, what replacing would do and what to do instead, the --replace note
            for why, harm, note in (
                    (_older_copy(key, evidence), "; replacing would put an older copy of the month in place of the "
                     "stored one: ingest the current delivery", "the stored rows were replaced by it"),
                    (_fewer_sub_accounts(key, evidence), ": replacing would delete the charges of those not in this "
                     "input (a linked account's own CUR over its payer's, an export of some projects or "
                     "subscriptions of the account): ingest a copy that holds them too",
                     "the stored charges of those not in this input were removed"),
                    (_other_parts(key, evidence), "; parts of one delivery hold different charges of the same days, "
                     "so replacing would delete the stored parts: ingest every part in one call (the folder, or "
                     "all its files)", "the stored parts were replaced by it")):
                if why is None:
                    continue
                if not replace:
                    raise InputError(None, f"{why}{harm}, or pass --replace to replace the stored period with this "
                                           "input")
                if notes is not None:
                    notes.append(f"--replace: {why}; {note}")
            replaced_keys.append(key)
            if shared_days != stored_days and notes is not None:
                notes.append(f"--replace: billing period {key} held usage days {old_first}..{old_last}; "
                             f"{stored_days - shared_days} of them are not in this input ({new_first}..{new_last}) "
                             "and were removed")
        elif shared_days == 0:
            added_to.append(key)
        else:
            raise InputError(None, f"billing period {key}: the warehouse holds usage days {old_first}..{old_last} "
                                   f"and this input {new_first}..{new_last}; they overlap but the input does not "
                                   "cover every stored day, so replacing would delete stored days and adding would "
                                   "count the shared days twice: ingest input that covers the stored days, or pass "
                                   "--replace to replace the whole period with this input")
    return replaced_keys, added_to


def _fewer_sub_accounts(key: str, r: Recency | None) -> str | None:
    """Why this input covers less of ``key`` than the stored rows although it covers their days (None: it holds
    every stored sub-account, or cannot tell)."""
    if r is None or not r.missing_sub_accounts:
        return None
    return f"billing period {key}: the warehouse holds {r.missing_sub_accounts} ({r.new_file or 'no file'})"


def _other_parts(key: str, r: Recency | None) -> str | None:
    """Why this input is another part of the stored delivery, not a copy of it (None: it is not known to be)."""
    if r is None or not r.other_parts:
        return None
    return f"billing period {key}: the warehouse holds {r.other_parts}"


def _older_copy(key: str, r: Recency | None) -> str | None:
    """Why this input is an older copy of ``key`` than the stored rows (None: not known to be older).

    The delivery's own identity (the superseded assembly) comes first: it is the most direct evidence."""
    if r is None:
        return None
    if r.superseded:
        return f"billing period {key}: this input {r.superseded}, when the stored rows were ingested"
    if r.stored_invoice and not r.new_invoice:
        return (f"billing period {key} was invoiced: the warehouse holds the final month (InvoiceId "
                f"{r.stored_invoice}, from {r.stored_file}) and this input is not invoiced ({r.new_file}), an "
                "earlier estimate of it")
    return None


def _upgrade_stored_keys(con: duckdb.DuckDBPyConnection, source: type[Source], this_call: list[str]) -> None:
    """Re-key rows an earlier version stored under this format's old replacement key
    (:meth:`Source.stored_key_upgrade`)."""
    upgrade = source.stored_key_upgrade()
    if upgrade is not None:
        where, key = upgrade
        con.execute(f"UPDATE {FOCUS_TABLE} SET x_SourceKey = {key} WHERE {where} "
                    "AND x_IngestId NOT IN (SELECT unnest(?))", [this_call])


def stored_line_items_error(source: type[Source], new_file: str, stored_file: str, rows: int) -> InputError:
    """The one-line refusal of line items already stored from another file (both engines print it)."""
    return InputError(new_file, f"{rows:,} line item(s) already stored from {stored_file} (same "
                                f"{source.row_identity}): this format's files are incremental, so this is a copy "
                                "and adding it would count them twice; ingest only files not ingested yet (the same "
                                "file again, under its own name, replaces itself)")


def _refuse_stored_line_items(con: duckdb.DuckDBPyConnection, source: type[Source], ingest_id: str,
                              this_call: list[str]) -> None:
    """Refuse this ingest's rows whose :attr:`Source.stored_identity` is stored from an earlier ingest (after the
    replacement rule, so a file that just replaced itself is not compared with its own old rows)."""
    col = source.stored_identity
    if col is None or col not in {r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()}:
        return
    hit = con.execute(
        f"""SELECT n.x_SourceFile, o.x_SourceFile, count(*) AS rows FROM {FOCUS_TABLE} n
            JOIN {FOCUS_TABLE} o ON o.{ident(col)} = n.{ident(col)} AND o.x_SourceFormat = n.x_SourceFormat
                                AND o.BillingAccountId IS NOT DISTINCT FROM n.BillingAccountId
            WHERE n.x_IngestId = ? AND o.x_IngestId NOT IN (SELECT unnest(?))
            GROUP BY ALL ORDER BY rows DESC, 1, 2 LIMIT 1""", [ingest_id, this_call]).fetchall()
    if hit:
        raise stored_line_items_error(source, *hit[0])


def _shrink_reconciliation(con: duckdb.DuckDBPyConnection, gone: list[tuple]) -> None:
    """Take replaced rows out of their ingests' reconciliation (see :func:`_replace_older`)."""
    for ingest_id, period, currency, rows, billed, effective in gone:
        left = scalar(con,
            f"SELECT count(*) FROM {FOCUS_TABLE} WHERE x_IngestId = ? AND BillingPeriodStart IS NOT DISTINCT FROM ? "
            f"AND BillingCurrency IS NOT DISTINCT FROM ?", [ingest_id, period, currency])
        shrink_reconciliation_row(con, ingest_id, period, currency, rows, billed, effective, left)


def shrink_reconciliation_row(con: duckdb.DuckDBPyConnection, ingest_id: str, period: Any, currency: Any,
                              rows: int, billed: Any, effective: Any, left: int) -> None:
    """One (ingest, billing period, currency) of the ``reconciliation`` table after a replacement took ``rows``
    of its rows (``billed``/``effective`` their totals) and ``left`` remain: the row goes when none remain, else
    both its source and FOCUS sides shrink by what went -- the proof still compares the rows that are stored.
    Both engines apply it (the Spark ingest to its tables/reconciliation.parquet)."""
    match = "ingest_id = ? AND billing_period_start IS NOT DISTINCT FROM ? AND currency IS NOT DISTINCT FROM ?"
    if left == 0:
        con.execute(f"DELETE FROM reconciliation WHERE {match}", [ingest_id, period, currency])
    else:
        con.execute(
            f"""UPDATE reconciliation SET focus_rows = focus_rows - ?,
                  source_billed = source_billed - ?, focus_billed = focus_billed - ?,
                  source_effective = source_effective - ?, focus_effective = focus_effective - ?
                WHERE {match}""", [rows, billed, billed, effective, effective, ingest_id, period, currency])


__all__ = ["IngestResult", "Recency", "ingest", "detect_format", "plan_inputs", "replacement_decision",
           "recency_of", "superseded_assemblies", "missing_sub_accounts_text", "missing_parts_text",
           "stored_line_items_error", "shrink_reconciliation_row"]
