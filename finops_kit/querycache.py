"""Aggregate query results reused across report kernels and runs, keyed by the warehouse they were read from.

Why: the six curated reports run in six kernels, and each one asks the warehouse the same questions -- the
summary block's figures of the latest closed period and the one before (every report), ``fk.metrics`` of the
whole scope (tagging, storage, spot), the commitments and token tables -- and a re-run of the suite on an
unchanged warehouse (a scheduled monthly run, ``make bench`` after ``make demo``) asks them all again. The answers
are small aggregates (a few rows); computing one costs 0.1-1.5 s of DuckDB time over the FOCUS table.

What the key is: the SQL text and the state of the warehouse it ran on -- nothing else can change the answer
once these checks pass (:func:`cacheable`):

* the connection is **read-only on a warehouse file** (a DuckDB file lock keeps writers out while it is open);
  in-memory databases, FOCUS datasets (views over Parquet) and writable connections are never cached;
* the query reads only **persistent tables and views of that file** (by the parsed query: no temporary table or
  view -- the attribution maps are temporary --, no registered DataFrame, no file or table function, no macro or
  UDF) and calls **nothing volatile** (``now()``, ``current_date``, ``random()``, settings, environment); the one
  exception is the kit's own temporary tables of :func:`materialized`, whose name is a digest of the cacheable query
  that fills them (a relation several queries of a report read, derived once per connection);
* the warehouse state is the file's identity and change stamp (path, device, inode, size, mtime and ctime in
  nanoseconds, the same for its ``.wal``) together with its **ingest ledger** (every ingest id, status, finish
  time and source file sha256, read through the same connection): a new ingest changes both, an edit that bypasses
  ``finops-kit ingest`` changes the file's stamp; plus the settings that change how values print (time zone,
  calendar, collation) and the DuckDB / pyarrow versions that produce the table.

Everything the kit decides (scope, periods, currency, attribution rules, usage units, config) is written into
the SQL text as literals, so another scope or config is another key. An entry is the query's Arrow table (IPC
file): a hit returns ``table.to_pandas()`` exactly as the uncached path builds it (Decimal money, dtypes).

Where: ``$FINOPS_QUERY_CACHE`` (``off``: every query runs, nothing is kept), else ``queries/`` in the kit's cache
folder (:func:`finops_kit.assets.cache_dir`). Written atomically (temporary file renamed into place), so
concurrent kernels see a whole entry or none; an unreadable entry is a miss. Kept under :data:`MAX_BYTES` by
dropping the least recently used entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

ENV = "FINOPS_QUERY_CACHE"
#: Largest size of the cache folder before the least recently used entries are removed.
MAX_BYTES = 128 * 1024 * 1024
#: Results kept in memory per process.
MEMORY_ENTRIES = 256
#: Bump to invalidate every entry when the entry format or the key changes.
FORMAT = 1

#: Functions (and bare keywords such as ``current_date``, which parse as column names) whose value depends on
#: something besides the warehouse: time, randomness, sequences, settings, the environment, the catalog. A query
#: calling one is never cached. Matched against the parsed query's function and bare column names, not its text
#: (a string literal such as 'Amazon S3' or 'now' is data).
VOLATILE = re.compile(
    r"(now|today|current_\w+|localtime|localtimestamp|get_current_\w+|transaction_timestamp|epoch_ms_now|"
    r"random|setseed|uuid|gen_random_uuid|uuidv\d|nextval|currval|getenv|getvariable|duckdb_\w+|pragma_\w+|"
    r"version|txid_current|pg_\w+|has_\w+_privilege|col_description|obj_description|shobj_description|"
    r"format_pg_type|pg_typeof)", re.IGNORECASE)


@dataclass
class Stats:
    """Hits, misses and queries that could not be cached, in this process (tests read them)."""

    hits: int = 0
    memory_hits: int = 0
    misses: int = 0
    uncacheable: int = 0

    def reset(self) -> None:
        self.hits = self.memory_hits = self.misses = self.uncacheable = 0


stats = Stats()
_memory: OrderedDict[str, Any] = OrderedDict()


def folder() -> Path | None:
    """The cache folder, or None when caching is off (``FINOPS_QUERY_CACHE=off``)."""
    from .assets import cache_folder

    return cache_folder(ENV, "queries")


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The answer of one SELECT as an Arrow table, as ``con.sql(sql).to_arrow_table()`` gives it.

    Why ``execute``: a relation parses and binds its query to learn its columns, then again to run it; a report's
    queries are up to 30 kB of generated SQL, where that second parse and bind is a fifth of the query's time
    (12 of the storage report's queries: 0.42 vs 0.33 s; the six reports' first run: 0.85 s less CPU). DuckDB
    warns that Arrow from a DB-API result copies the rows: these are small aggregates, so that one warning is
    silenced here (and only here)."""
    ensure(con, sql)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result makes an extra copy",
                                category=UserWarning)
        return con.execute(sql).to_arrow_table()


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()  # fetched whole: the connection stays usable


def _stamp(path: Path) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "-"
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


#: Per connection: (catalog version, the file's path, its change stamps, the digest of warehouse_state).
_state_at: weakref.WeakKeyDictionary[Any, tuple[int, Path, str, str | None]] = weakref.WeakKeyDictionary()
#: Per connection: (catalog version, current database, its persistent tables and views, the temporary ones).
_tables_at: weakref.WeakKeyDictionary[Any, tuple[int, str, frozenset[str], frozenset[str]]] = (
    weakref.WeakKeyDictionary())


def warehouse_state(con: duckdb.DuckDBPyConnection) -> str | None:
    """The state of the warehouse file this connection reads, as a digest; None when its answers must not be
    cached (not a file, not read-only, no ingest ledger).

    Read once per catalog version of the connection (every SET, ATTACH, USE and DDL moves it: the settings and
    the database read are the same until it moves) as long as the file's change stamps are unchanged: a lookup
    then costs two ``stat`` calls instead of two catalog queries (1.4 ms, ~100 lookups per report kernel)."""
    version = _catalog_version(con)
    seen = _state_at.get(con) if version is not None else None
    if seen is not None and seen[0] == version and _stamps(seen[1]) == seen[2]:
        return seen[3]
    digest, path = _warehouse_state(con)
    if version is not None and path is not None:
        _state_at[con] = (version, path, _stamps(path), digest)
    return digest


def _stamps(path: Path) -> str:
    return f"{_stamp(path)}\n{_stamp(Path(str(path) + '.wal'))}"


def _warehouse_state(con: duckdb.DuckDBPyConnection) -> tuple[str | None, Path | None]:
    """:func:`warehouse_state` read from the connection, and the file's path (None when not a file)."""
    try:
        db = _rows(con, "SELECT path, readonly, current_setting('TimeZone'), current_setting('Calendar'), "
                        "current_setting('default_collation') FROM duckdb_databases() "
                        "WHERE database_name = current_database()")
        if not db or not db[0][0] or not db[0][1]:
            return None, None
        path = Path(db[0][0]).resolve()
        if not path.is_file():
            return None, None
        settings = db[0][2:]
        ledger = _rows(con, "SELECT ingest_id, status, source_format, finished_at, files FROM ingest_log "
                            "ORDER BY ingest_id, source_format")
    except duckdb.Error:
        return None, None
    import pyarrow

    h = hashlib.sha256(f"format {FORMAT}\nduckdb {duckdb.__version__}\npyarrow {pyarrow.__version__}\n".encode())
    h.update(f"{path}\n{_stamps(path)}\n".encode())
    h.update(repr(settings).encode())
    h.update(repr(ledger).encode())
    return h.hexdigest(), path


class _Names:
    """What :func:`_analysis` reads off a parse tree, collected while ``json.loads`` builds it (its ``object_hook``
    sees every JSON object once, innermost first): no second walk over the ~100,000 nodes of a report's query."""

    def __init__(self) -> None:
        self.tables: set[tuple[str, str, str]] = set()
        self.ctes: set[str] = set()
        self.functions: set[str] = set()
        self.calls: set[str] = set()
        self.table_functions: list[str] = []

    def __call__(self, node: dict[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        if kind == "BASE_TABLE":
            self.tables.add((str(node.get("catalog_name") or ""), str(node.get("schema_name") or ""),
                             str(node.get("table_name") or "")))
        elif kind == "TABLE_FUNCTION":
            self.table_functions.append(json.dumps(node.get("function"))[:80])
        if node.get("class") == "FUNCTION" and node.get("function_name"):
            self.functions.add(str(node["function_name"]).lower())
            self.calls.add(str(node["function_name"]).lower())
        if node.get("class") == "COLUMN_REF" and len(node.get("column_names") or []) == 1:
            self.functions.add(str(node["column_names"][0]).lower())  # current_date & co. parse as bare names
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            self.ctes.update(str(e.get("key")) for e in cte_map.get("map", []) if isinstance(e, dict))
        return node


#: (tables read, CTE names, function and bare names, names called as functions) of one SELECT.
Parsed = tuple[frozenset[tuple[str, str, str]], frozenset[str], frozenset[str], frozenset[str]]
_parsed: OrderedDict[str, Parsed | None] = OrderedDict()


def _analysis(con: duckdb.DuckDBPyConnection, sql: str) -> Parsed | None:
    """(tables read, CTE names, function and bare names, names called) of one SELECT; None when it is not one parsable SELECT or
    calls a table function. A pure function of the text (DuckDB's parser, no binding): kept per process."""
    k = hashlib.sha256(sql.encode()).hexdigest()
    if k in _parsed:
        return _parsed[k]
    out = None
    names = _Names()
    try:  # without nulls and empty lists: 13% less JSON to build and read, the same names
        tree = json.loads(_rows(con, "SELECT json_serialize_sql(?::VARCHAR, skip_null := true, skip_empty := true)",
                                [sql])[0][0], object_hook=names)
    except (duckdb.Error, ValueError, IndexError):
        tree = {"error": True}
    if not tree.get("error") and len(tree.get("statements") or []) == 1 and not names.table_functions:
        out = (frozenset(names.tables), frozenset(c.lower() for c in names.ctes), frozenset(names.functions),
               frozenset(names.calls))
    _parsed[k] = out
    while len(_parsed) > MEMORY_ENTRIES:
        _parsed.popitem(last=False)
    return out


def cacheable(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Whether ``sql``'s answer depends on nothing but the warehouse file's tables: one SELECT reading only
    persistent tables and views of the current database (none shadowed by a temporary object), no table function,
    no session-defined function or macro (a temporary macro may shadow a built-in), nothing volatile
    (:data:`VOLATILE`).

    Bare column names are checked against :data:`VOLATILE` too (``current_date`` parses as one); a real column
    with such a name only costs a miss."""
    parsed = _analysis(con, sql)
    return parsed is not None and _session_ok(con, parsed)



#: Per connection: (catalog version, names of its session-defined functions and macros at that version).
_defined_at: weakref.WeakKeyDictionary[Any, tuple[int, frozenset[str]]] = weakref.WeakKeyDictionary()
#: Names of DuckDB's own functions (``internal``), listed once per process (and again when a call is not among them).
_builtin: set[str] = set()


def _catalog_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """DuckDB's count of the statements on this connection that may change what a name binds to (a macro, table,
    view, registered DataFrame), or None where this DuckDB does not say."""
    from duckdb import _seam

    try:
        return int(_seam.catalog_version(con))
    except (AttributeError, TypeError, ValueError, duckdb.Error):
        return None


def _session_functions(con: duckdb.DuckDBPyConnection, calls: frozenset[str]) -> frozenset[str]:
    """The names of the functions and macros defined in this session (not DuckDB's own), as far as ``calls`` needs.

    Why not list them on every lookup: ``duckdb_functions()`` builds all ~3,300 functions' rows, 9 ms, most of a
    cache hit's cost (105 lookups in a first run of the six reports). What may change the answer between two
    lookups: a macro, which may take a built-in's name (``CREATE TEMP MACRO lower(x)``) and moves the connection's
    catalog version; and a Python UDF (``create_function``), which does not move it but cannot take a built-in's
    name. So a query that calls only built-ins reuses the listing of the same catalog version; one that calls
    anything else lists again."""
    version = _catalog_version(con)
    if version is not None and _builtin and calls <= _builtin:
        seen = _defined_at.get(con)
        if seen is not None and seen[0] == version:
            return seen[1]
    rows = _rows(con, "SELECT lower(function_name), bool_or(internal), bool_or(NOT internal) FROM duckdb_functions() "
                      "GROUP BY ALL")  # a name may be both: a macro shadowing a built-in
    _builtin.update(name for name, builtin, _ in rows if builtin)
    defined = frozenset(name for name, _, session in rows if session)
    if version is not None:
        _defined_at[con] = (version, defined)
    return defined


@contextlib.contextmanager
def own_objects(con: duckdb.DuckDBPyConnection):
    """Around statements of the kit that only create, replace or drop its own temporary tables and views (or
    register a frame): none of them defines a function or macro, so the listing of the session's functions made
    before them (:func:`_session_functions`) still holds after them and is carried to the catalog version they
    leave behind, as is the warehouse state (:func:`warehouse_state`: temporary objects are not part of it; its
    file stamps are still checked at every lookup). Why: every such statement moves the catalog version, and the
    next cache lookup listed DuckDB's ~3,300 functions again (10 ms) -- about 36 times in the six curated
    reports' first run (attribution maps, tag-audit views, the kit's derived relations: 0.37 s of CPU)."""
    before = _catalog_version(con)
    try:
        yield
    finally:
        after = _catalog_version(con)
        if before is not None and after is not None and after != before:
            defined = _defined_at.get(con)
            if defined is not None and defined[0] == before:
                _defined_at[con] = (after, defined[1])
            state = _state_at.get(con)
            if state is not None and state[0] == before:
                _state_at[con] = (after, *state[1:])


def _session_ok(con: duckdb.DuckDBPyConnection, parsed: Parsed) -> bool:
    """The checks of :func:`cacheable` that depend on the connection's session, not on the query's text: nothing
    volatile, no session function or macro among the names called, every table read a persistent one of this
    file not shadowed by a temporary object. Run on every lookup, hit or miss."""
    tables, cte_names, functions, calls = parsed
    if any(VOLATILE.fullmatch(f) for f in functions):
        return False
    try:
        db, persistent, temporary = _tables(con)
        defined = _session_functions(con, calls)
    except duckdb.Error:
        return False
    if functions & defined:
        return False
    for catalog, schema, name in tables:
        low = name.lower()
        if not catalog and not schema and low in cte_names:
            continue
        if low in _defs:  # the kit's own temporary table (materialized): its rows are its name's query, which
            # must itself read only this file's tables in this session (a temporary 'focus' made since would fill
            # it with other rows than its name says)
            inner = _analysis(con, _defs[low])
            if inner is None or not _session_ok(con, inner):
                return False
            continue
        if catalog not in ("", db) or schema not in ("", "main"):
            return False
        if low not in persistent or low in temporary:
            return False
    return True


def _tables(con: duckdb.DuckDBPyConnection) -> tuple[str, frozenset[str], frozenset[str]]:
    """The current database, its persistent tables and views, and the connection's temporary ones (lower case).
    Listed once per catalog version: a table, view, registered DataFrame, ATTACH or USE moves it."""
    version = _catalog_version(con)
    seen = _tables_at.get(con) if version is not None else None
    if seen is not None and seen[0] == version:
        return seen[1], seen[2], seen[3]
    db, persistent, temporary = _rows(con, """
        SELECT current_database(),
               (SELECT coalesce(list(lower(table_name)), []) FROM duckdb_tables()
                 WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary)
            || (SELECT coalesce(list(lower(view_name)), []) FROM duckdb_views()
                 WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary
                   AND NOT internal),
               (SELECT coalesce(list(lower(table_name)), []) FROM duckdb_tables() WHERE temporary)
            || (SELECT coalesce(list(lower(view_name)), []) FROM duckdb_views() WHERE temporary)""")[0]
    out = (db, frozenset(persistent or ()), frozenset(temporary or ()))
    if version is not None:
        _tables_at[con] = (version, *out)
    return out


#: Largest FOCUS table (rows, DuckDB's estimate) whose derived relations :func:`materialized` keeps as temporary
#: tables; past it every query derives them again, as it did before (memory stays bounded by the query's own).
MATERIALIZE_MAX_ROWS = 1_000_000
#: The kit's temporary tables (name -> the SELECT whose rows they hold; the name is a digest of it), and per
#: connection those made on it (by :func:`ensure`, when a query that reads one first runs there) and the answer
#: :func:`materialized` gave for each name asked (kept or not: asked once per connection, as a writable or large
#: warehouse's answer does not change while the connection is open).
_defs: dict[str, str] = {}
_made: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_named: weakref.WeakKeyDictionary[Any, dict[str, bool]] = weakref.WeakKeyDictionary()


def materialized(con: duckdb.DuckDBPyConnection | None, sql: str, kind: str) -> str:
    """A FROM item for the rows of the SELECT ``sql``: on a read-only warehouse connection, a temporary table of
    them, made once per connection -- when a query that reads it first runs (:func:`ensure`), so a kernel whose
    queries all come from the cache never derives it --; else ``(sql)``, derived by each query as before.

    Why: one scope's accelerated usage (:func:`finops_kit.units.accelerated_usage_sql`, 25 kB of SQL: every
    instance's rows grouped, its class and hours, each VM's OS) was derived again by each of the commitments,
    spot, metrics and tagging queries that read it: 0.09-0.25 s each, 20 queries in the six curated reports of
    the demo warehouse, most of their time.

    The table's name carries a digest of ``sql``, so a query that names it says exactly which rows it reads: such
    a query stays cacheable (:func:`_session_ok` accepts the kit's own tables, made from queries that are
    cacheable themselves). Only on a read-only connection to a warehouse file (:func:`warehouse_state`: no
    writer can change the rows under the table while it is open) and up to :data:`MATERIALIZE_MAX_ROWS` rows of
    FOCUS."""
    if con is None:
        return f"({sql})"
    name = f"_fk_{kind}_{hashlib.sha256(sql.encode()).hexdigest()[:24]}"
    named = _named.setdefault(con, {})
    if name not in named:
        named[name] = _may_materialize(con, sql)
        if named[name]:
            _defs[name] = sql
    return name if named[name] else f"({sql})"


def kept(item: str) -> bool:
    """Whether a FROM item of :func:`materialized` is the kit's temporary table (else the query itself, derived by
    each query that reads it)."""
    return item.startswith("_fk_")


def _may_materialize(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    if warehouse_state(con) is None:
        return False
    try:
        size = _rows(con, "SELECT max(estimated_size) FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = 'main' AND lower(table_name) = 'focus' AND NOT temporary")
    except duckdb.Error:
        return False
    if not size or size[0][0] is None or size[0][0] > MATERIALIZE_MAX_ROWS:
        return False
    return cacheable(con, sql)


def ensure(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Make, on ``con``, the temporary tables of :func:`materialized` that ``sql`` names and that are not made there
    yet (and first the ones their own queries name). Called before a query runs: by :func:`arrow` on every run,
    and by the modules that run a query themselves (``con.sql``) on its text."""
    if not _defs:
        return
    made = _made.get(con)
    for name, defining in list(_defs.items()):
        if name in sql and (made is None or name not in made):
            ensure(con, defining)
            with own_objects(con):
                try:
                    con.execute(f"CREATE TEMP TABLE {name} AS {defining}")
                except duckdb.OutOfMemoryException:  # the rows do not fit: a view derives them in each query
                    con.execute(f"CREATE TEMP VIEW {name} AS {defining}")
            made = _made.setdefault(con, set())
            made.add(name)


def relation(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """``con.sql(sql)`` once the kit's temporary tables it names are made (:func:`ensure`): for a query that runs
    on the connection itself, outside the cache (a lazy relation, a query reading a registered frame)."""
    ensure(con, sql)
    return con.sql(sql)


def execute(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """``con.execute(sql)`` once the kit's temporary tables it names are made (:func:`ensure`): :func:`relation`
    for a result read at once (``fetchall``), parsed and bound once."""
    ensure(con, sql)
    return con.execute(sql)


def _key(state: str, sql: str) -> str:
    return hashlib.sha256(f"{state}\n{sql}".encode()).hexdigest()


def arrow(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """``con.sql(sql).to_arrow_table()``: from memory, else from disk, else run and stored (when cacheable).

    An entry carries the parse of its query (tables, CTEs, names called; a pure function of the SQL text and the
    DuckDB version, both in the key), so a hit re-runs only the session checks (:func:`_session_ok`), not the
    parse of a 30 kB query."""
    base = folder()
    state = warehouse_state(con) if base is not None else None
    if base is None or state is None:
        stats.uncacheable += 1
        return _run(con, sql)
    k = _key(state, sql)
    path = base / k[:2] / f"{k}.arrow"
    entry = _memory.get(k)
    from_disk = False
    if entry is not None:
        _memory.move_to_end(k)
    elif path.is_file():
        try:
            entry = _read(path)
        except (OSError, ValueError, EOFError, KeyError):  # a damaged entry is a miss
            with contextlib.suppress(OSError):
                path.unlink()
        else:
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used goes first when the folder is pruned
            _remember(k, entry)
            from_disk = True
    if entry is not None:
        table, parsed = entry
        if not _session_ok(con, parsed):
            stats.uncacheable += 1
            return _run(con, sql)
        if from_disk:
            stats.hits += 1
        else:
            stats.memory_hits += 1
        return table
    parsed = _analysis(con, sql)
    if parsed is None or not _session_ok(con, parsed):
        stats.uncacheable += 1
        return _run(con, sql)
    table = _run(con, sql)
    stats.misses += 1
    _remember(k, (table, parsed))
    _store(path, table, parsed)
    return table


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A small aggregate as pandas, DECIMAL money kept as Decimal: ``con.sql(sql).to_arrow_table().to_pandas()``,
    the table reused when the same query already ran on the same warehouse state (a fresh DataFrame each call)."""
    return arrow(con, sql).to_pandas()


#: Schema metadata key of an entry's query parse (removed again when the entry is read).
_META = b"finops_querycache"


def _read(path: Path) -> tuple[Any, Parsed]:
    import pyarrow as pa

    try:
        with pa.OSFile(str(path), "rb") as f:
            table = pa.ipc.open_file(f).read_all()
    except pa.ArrowException as exc:
        raise ValueError(f"{path}: {exc}") from None
    meta = dict(table.schema.metadata or {})
    info = json.loads(meta.pop(_META))
    names = frozenset(info["functions"])
    parsed = (frozenset(tuple(t) for t in info["tables"]), frozenset(info["ctes"]), names,
              frozenset(info.get("calls", names)))
    return table.replace_schema_metadata(meta or None), parsed


def _remember(k: str, entry: tuple[Any, Parsed]) -> None:
    _memory[k] = entry  # Arrow tables are immutable: shared safely
    _memory.move_to_end(k)
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)


def _store(path: Path, table: Any, parsed: Parsed) -> None:
    """Write one entry atomically; a cache that cannot be written (read-only, full disk) is simply not used."""
    import pyarrow as pa

    tables, ctes, functions, calls = parsed
    info = json.dumps({"tables": sorted(tables), "ctes": sorted(ctes), "functions": sorted(functions),
                       "calls": sorted(calls)})
    stored = table.replace_schema_metadata({**(table.schema.metadata or {}), _META: info.encode()})
    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as f, pa.ipc.new_file(f, stored.schema) as w:
            w.write_table(stored)

    from .fitcache import write_entry

    write_entry(path, write, MAX_BYTES, "*/*.arrow", errors=(OSError, pa.ArrowException))


def clear_memory() -> None:
    """Forget the results held in this process (the disk entries stay)."""
    _memory.clear()


__all__ = ["ENV", "Stats", "arrow", "cacheable", "clear_memory", "ensure", "execute", "folder", "frame", "kept",
           "materialized", "own_objects", "relation", "stats", "warehouse_state"]
