"""Ingest: files of one billing-export format -> FOCUS rows in the warehouse, proven by reconciliation.

One ingest is one transaction. Either every row is written, the rows it replaces are gone and the
reconciliation proof holds, or the warehouse is exactly as before and the user gets one line saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from . import inputs as inputs_mod
from .classify import ai_workload_case
from .conformance import conformance_select
from .errors import FinopsError, InputError, ReconciliationError
from .schema import LINEAGE_COLUMNS, MONEY, focus_columns
from .sources.base import Source, StagedSource, ident, read_header, registry, sql_str
from .warehouse import FOCUS_TABLE, TOLERANCE, add_custom_columns, connect


@dataclass
class IngestResult:
    ingest_id: str
    source_format: str
    files: list[str]
    rows: int
    replaced_rows: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    reconciliation: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        periods = sorted({r["billing_period"] for r in self.reconciliation})
        span = f"{periods[0]}..{periods[-1]}" if len(periods) > 1 else (periods[0] if periods else "-")
        msg = (f"ingested {self.rows:,} rows of {self.source_format} from {len(self.files)} file(s), "
               f"billing periods {span}, reconciled {len(self.reconciliation)} period/currency total(s)")
        if self.replaced_rows:
            msg += f", replaced {self.replaced_rows:,} earlier rows"
        if self.skipped:
            msg += f", skipped {len(self.skipped)} superseded file(s)"
        return msg


#: DuckDB's buffer cap for an ingest on our own connection: the insert streams row groups to disk, so a cap keeps
#: peak memory flat however large the export (measured at 1M rows: 0.85 GB instead of 1.8 GB, same time). DuckDB
#: also reserves read buffers per input file (dozens of small monthly CSVs need more than one big one), so the cap
#: grows with the number of files. $FINOPS_MEMORY_LIMIT overrides it.
def ingest_memory_limit(n_files: int) -> str:
    return f"{max(1024, 256 * n_files)}MB"


def detect_format(files: list[str]) -> type[Source]:
    """The one source format of these files; a one-line error if none matches or formats are mixed."""
    sources = registry()
    found: dict[str, list[str]] = {}
    for f in files:
        cols = read_header(f)
        match = next((s for s in sources.values() if s.detect(cols, f)), None)
        if match is None:
            shown = ", ".join(cols[:8]) + (f", ... ({len(cols)} columns)" if len(cols) > 8 else "")
            known = "; ".join(f"{s.name} ({', '.join(s.signature)})" for s in sources.values())
            raise InputError(f, f"unknown billing export format; saw columns [{shown}]; expected one of: {known}")
        found.setdefault(match.name, []).append(f)
    if len(found) > 1:
        parts = "; ".join(f"{name}: {paths[0]}" + (f" (+{len(paths) - 1})" if len(paths) > 1 else "")
                          for name, paths in found.items())
        raise InputError(None, f"mixed formats in one ingest ({parts}); ingest each format in its own call")
    return sources[next(iter(found))]


def _file_fingerprint(path: str) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"path": str(path), "size": os.path.getsize(path), "sha256": h.hexdigest()}


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
        f"coalesce(x_AiWorkload_src, {ai_workload_case(available, provider=source.provider_name)}) "
        f"AS x_AiWorkload FROM ({conformance_select(completed, types)})"
    )


def ingest(
    paths: list[str] | str,
    *,
    warehouse: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    source_format: str = "auto",
    cache_dir: str | None = None,
    progress: bool | None = None,
    keep_source_columns: bool = False,
) -> IngestResult:
    """Ingest billing files of one format into the warehouse (see module docstring for the guarantees).

    ``keep_source_columns`` keeps every source column the mapping does not consume as an ``x_`` column instead of
    the format's curated extras (AWS CUR; see ``data/aws_cur_extra_columns.csv``).
    """
    if isinstance(paths, str):
        paths = [paths]
    resolved = inputs_mod.resolve(list(paths), cache_dir=cache_dir)
    if not resolved.files:
        raise InputError(", ".join(paths), "nothing to ingest")
    if source_format == "auto":
        source_cls = detect_format(resolved.files)
    else:
        sources = registry()
        if source_format not in sources:
            raise FinopsError(f"unknown --format {source_format!r}; known: auto, {', '.join(sources)}")
        source_cls = sources[source_format]
        for f in resolved.files:
            read_header(f)  # empty / truncated files fail here with a clear message
    source = source_cls()
    source.keep_source_columns = keep_source_columns
    own = con is None
    con = con or connect(warehouse, memory_limit=os.environ.get("FINOPS_MEMORY_LIMIT")
                         or ingest_memory_limit(len(resolved.files)))
    show = sys.stderr.isatty() if progress is None else progress
    con.execute(f"SET enable_progress_bar = {'true' if show else 'false'}")
    # Row order in the FOCUS table carries no meaning (every analysis aggregates or sorts), and keeping the file's
    # order makes DuckDB buffer out-of-order row groups under the ingest's memory cap: measured at 10M CUR rows,
    # 108 s instead of 119 s at the same 1.1 GB peak. The caller's setting is restored afterwards.
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = " + os.environ.get("PIO", "false"))
    ingest_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    started = datetime.now(UTC).replace(tzinfo=None)
    # hashing a multi-GB export takes seconds: do it on a thread while DuckDB reads (both release the GIL)
    hasher = ThreadPoolExecutor(max_workers=2)
    fingerprints_future = hasher.submit(lambda: [_file_fingerprint(f) for f in resolved.files])
    view = f"src_{uuid.uuid4().hex[:8]}"
    con.execute("BEGIN TRANSACTION")
    try:
        try:
            staged = _stage(source, con, resolved.files, view)
        except duckdb.Error as exc:
            raise _read_error(resolved.files, exc) from None
        source.check_columns(staged)
        # the source's own totals come from a second read of the files, on a second connection, while the main
        # one maps and writes: the proof stays independent of the mapping and costs no extra wall time
        totals_future = hasher.submit(_source_totals, con.cursor(), type(source)(), resolved.files, f"{view}_totals")
        passthrough = source.passthrough_columns(staged)
        add_custom_columns(con, list(passthrough.values()))
        select = _focus_select(source, staged, ingest_id, passthrough)
        try:
            con.execute(f"INSERT INTO {FOCUS_TABLE} BY NAME {select}")
        except duckdb.Error as exc:
            raise _CastFailure(exc) from None
        rows = con.execute(f"SELECT count(*) FROM {FOCUS_TABLE} WHERE x_IngestId = ?", [ingest_id]).fetchone()[0]
        if rows == 0:
            raise InputError(resolved.files[0], "no billing rows found (header only?)")
        try:
            source_totals = totals_future.result()
        except duckdb.Error as exc:
            raise _CastFailure(exc) from None
        recon = _reconcile(con, source, staged, ingest_id, source_totals)
        keys = [r[0] for r in con.execute(
            f"SELECT DISTINCT x_SourceKey FROM {FOCUS_TABLE} WHERE x_IngestId = ? ORDER BY 1", [ingest_id]).fetchall()]
        replaced = _replace_older(con, ingest_id, keys)
        con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
            [ingest_id, started, datetime.now(UTC).replace(tzinfo=None), source.name, json.dumps(list(paths)),
             json.dumps(fingerprints_future.result()), json.dumps(resolved.skipped), json.dumps(keys), rows, replaced],
        )
        con.execute(f"DROP VIEW IF EXISTS {view}")
        con.execute("COMMIT")
    except BaseException as exc:
        con.execute("ROLLBACK")
        try:
            if isinstance(exc, _CastFailure):  # diagnose outside the aborted transaction, then report
                raise _diagnose(con, source, resolved.files, view, exc.cause) from None
            raise
        finally:
            hasher.shutdown(wait=True, cancel_futures=True)
            _release(con, keep_order, own)
    hasher.shutdown()
    _release(con, keep_order, own)
    return IngestResult(ingest_id, source.name, resolved.files, rows, replaced, resolved.skipped, recon)


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
    if _unreadable(str(cause)):
        return _read_error(files, cause)
    staged = _stage(source, con, files, view)
    try:
        return source.diagnose(con, staged, cause)
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")


def _stage(source: Source, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
    """Stage the files on ``con``; the staged source remembers its connection (mappings may need to ask it)."""
    staged = source.stage(con, files, view)
    staged.extra["con"] = con
    return staged


def _unreadable(message: str) -> bool:
    """Whether a DuckDB error means the file itself could not be read (truncated or corrupt compression)."""
    low = message.lower()
    return any(w in low for w in ("gzip", "decompress", "unexpected end", "truncated"))


def _read_error(files: list[str], exc: Exception) -> InputError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    bad = next((f for f in files if f in str(exc)), files[0])
    if _unreadable(text):
        return InputError(bad, f"cannot read file; is it truncated or corrupt? ({text})")
    return InputError(bad, f"cannot read file ({text})")


def _source_totals(cur: duckdb.DuckDBPyConnection, source: Source, files: list[str], view: str) -> list[tuple]:
    """The source's own billed and amortized totals per billing period and currency (its own connection)."""
    try:
        cur.execute("SET enable_progress_bar = false")  # the main connection shows the one progress bar
        staged = _stage(source, cur, files, view)
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


def _replace_older(con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str]) -> int:
    """Delete rows of earlier ingests that carry the same replacement keys (restatements, re-runs)."""
    if not keys:
        return 0
    older = con.execute(
        f"SELECT count(*) FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?)) AND x_IngestId <> ?",
        [keys, ingest_id],
    ).fetchone()[0]
    if older:
        con.execute(f"DELETE FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?)) AND x_IngestId <> ?",
                    [keys, ingest_id])
        con.execute(
            f"""UPDATE ingest_log SET status = 'replaced'
                WHERE status = 'active' AND ingest_id <> ?
                  AND ingest_id NOT IN (SELECT DISTINCT x_IngestId FROM {FOCUS_TABLE})""",
            [ingest_id],
        )
    return older


__all__ = ["IngestResult", "ingest", "detect_format"]
