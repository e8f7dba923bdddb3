"""The shared base of every source module (one file per billing-export format, like sqlglot's dialects).

A source module turns files of one format into FOCUS 1.2 rows with three pieces of SQL:

* :meth:`Source.stage` — a temporary view over the raw files (CSV read as text so that bad values are found and
  reported by us, not silently coerced; parquet read with its own types), with a ``_file`` column;
* :meth:`Source.focus_sql` — one readable ``SELECT`` that maps the staged columns to FOCUS columns (missing
  FOCUS columns are filled with NULL by the orchestrator);
* :meth:`Source.source_totals_sql` — the source's own billed and amortized totals per billing period and
  currency, computed from the raw columns *independently of the mapping*: the reconciliation proof compares them.

Differences between formats are data: column renames and enum maps live in CSV files under ``finops_kit/data``.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

import duckdb

from ..errors import InputError
from ..schema import MONEY
from ..warehouse import first_row

#: ``.csv.zip`` and ``.tsv`` are listed so that a folder or an AWS delivery holding them does not skip them as
#: "not a billing export": :func:`file_kind` refuses them by name, with the reason (see :data:`REFUSED_SUFFIXES`).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".snappy.parquet", ".gz.parquet")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
#: Billing-looking names that are not read, and why. DuckDB cannot stream ZIP ('compression type "zip" not
#: implemented'), and extracting a member would put the source file's lineage, fingerprint and error lines on a
#: temporary copy; every source module but FOCUS also fixes the delimiter to ',', so a tab-separated Azure or CUR
#: file would be read as one column. Refused before anything is read, instead of failing later with binary bytes
#: or one merged column in the message.
REFUSED_SUFFIXES = {
    ".csv.zip": "ZIP archives are not read; expected .csv, .csv.gz or .parquet: unzip it (an AWS CUR ZIP holds one "
                "CSV) or have the export written with GZIP or Parquet compression",
    ".tsv": "tab-separated files are not read; expected comma-separated .csv or .csv.gz (or .parquet): export "
            "the data as CSV",
}


def file_kind(path: str) -> str:
    """'csv', 'parquet' or 'json' from the file name; raise a one-line error otherwise."""
    low = path.lower()
    refused = next((why for suffix, why in REFUSED_SUFFIXES.items() if low.endswith(suffix)), None)
    if refused:
        raise InputError(path, refused)
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(CSV_SUFFIXES):
        return "csv"
    if low.endswith(JSON_SUFFIXES):
        return "json"
    raise InputError(path, "unsupported file type; expected .csv, .csv.gz, .parquet, .json(l) or .ndjson(.gz)")


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_str(v) for v in values) + "]"


def ident(name: str) -> str:
    """A quoted SQL identifier (source columns contain '/', '.', spaces and parentheses)."""
    return '"' + name.replace('"', '""') + '"'


class NotJsonRecords(InputError):
    """A .json file whose first line is not a JSON object: a JSON document (config, report), not billing records."""


def _open_binary(path: str) -> BinaryIO:
    """The file's bytes as the reader sees them (a .gz file inflated)."""
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _open_text(path: str) -> io.TextIOBase:
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="replace", newline="")


#: How much of a CSV or JSON file :func:`read_header` checks for UTF-8 (every header read, so kept cheap: about a
#: millisecond). A bad byte further on is found when DuckDB's sniffer or reader meets it (see :meth:`Source.stage`).
ENCODING_PROBE_BYTES = 1 << 20

#: What a file is, from its first bytes, when it is not text at all (a renamed archive or parquet file).
_MAGIC = ((b"PK\x03\x04", "a ZIP archive, not CSV text; unzip it first"),
          (b"\x1f\x8b", "gzip-compressed, but not named .gz; rename it to end in .gz"),
          (b"PAR1", "a parquet file, not CSV text; rename it to end in .parquet"))
_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 little-endian"), (b"\x00\x00\xfe\xff", "UTF-32 big-endian"),
         (b"\xff\xfe", "UTF-16 little-endian"), (b"\xfe\xff", "UTF-16 big-endian"))
_SAVE_AS = "expected UTF-8: export or save the file as UTF-8"


def _what_the_bytes_are(path: str, head: bytes) -> str | None:
    """Why a text billing file whose first bytes are ``head`` is not UTF-8 text, from magic numbers, a byte order
    mark or NUL bytes (UTF-16 as written by Excel's "Unicode Text" or PowerShell); None when it may be UTF-8.

    Without this, UTF-16 reached the "unknown format" message with its NUL bytes inside the one error line."""
    for magic, what in _MAGIC:
        if head.startswith(magic) and not (magic == b"\x1f\x8b" and path.lower().endswith(".gz")):
            return what
    if head.startswith(b"\x1f\x8b"):  # a .gz whose content is gzip again
        return "gzip-compressed twice; expected one gzip layer over CSV or JSON text"
    for bom, name in _BOMS:
        if head.startswith(bom):
            return f"not UTF-8 text ({name}, by its byte order mark); {_SAVE_AS}"
    first_line = head[:head.find(b"\n") if b"\n" in head else 4096]
    if b"\x00" not in first_line:
        return None
    odd, even = first_line[1::2].count(0), first_line[0::2].count(0)
    if odd > len(first_line) // 4 and not even:
        return f"not UTF-8 text (UTF-16 little-endian: every other byte is NUL); {_SAVE_AS}"
    if even > len(first_line) // 4 and not odd:
        return f"not UTF-8 text (UTF-16 big-endian: every other byte is NUL); {_SAVE_AS}"
    return "NUL bytes in the first line: binary data, not CSV or JSON text; expected a UTF-8 text export"


def first_non_utf8(path: str, limit: int | None = None) -> tuple[int, int, int] | None:
    """(byte offset, line, byte value) of the first byte of ``path`` that is not UTF-8, or None.

    Reads the (inflated) bytes in chunks, at most about ``limit`` of them; a character cut by the limit is not an
    error, one cut by the end of the file is. Used on every header read (a bounded probe) and, unbounded, only on
    the error path of :meth:`Source.stage`, so that a Latin-1 or Windows-1252 export is named as such instead of
    "malformed CSV (CSV Error on Line: 2)".
    """
    offset, line, carry = 0, 1, b""
    with _open_binary(path) as raw:
        while True:
            chunk = raw.read(1 << 20)
            data = carry + chunk
            capped = limit is not None and offset + len(data) >= limit
            try:
                data.decode("utf-8")
                good = len(data)
            except UnicodeDecodeError as exc:
                cut = exc.reason == "unexpected end of data" and exc.end == len(data)
                if not cut or not chunk:
                    return offset + exc.start, line + data.count(b"\n", 0, exc.start), data[exc.start]
                if capped:
                    return None
                good = exc.start
            if not chunk or capped:
                return None
            line += data.count(b"\n", 0, good)
            offset += good
            carry = data[good:]


def encoding_error(path: str, limit: int | None = None,
                   error: type[InputError] = InputError) -> InputError | None:
    """The one-line error (of class ``error``) of a CSV/JSON file that is not UTF-8 text, or None.

    Never quotes the bad bytes: the line names what the file looks like and where the first bad byte is (see
    :func:`first_non_utf8`)."""
    with _open_binary(path) as raw:
        head = raw.read(4096)
    what = _what_the_bytes_are(path, head)
    if what:
        return error(path, what)
    bad = first_non_utf8(path, limit)
    if bad is None:
        return None
    offset, line, byte = bad
    where = f"byte offset {offset}" + (" of the uncompressed text" if path.lower().endswith(".gz") else "")
    return error(path, f"line {line}: not UTF-8 text (byte 0x{byte:02x} at {where}; Windows-1252 or "
                       f"Latin-1?); {_SAVE_AS}")


#: Longest line accepted (the header in read_header, any row in read_csv). A CSV header of thousands of tag
#: columns is a few hundred KB and a valid 3 MiB cell must fit (DuckDB's default of 2 MB rejected it as "CSV Error
#: on Line: 1"); a 9 MB gzip whose first line expands to 2 GiB must not be read into memory to find that out.
MAX_HEADER_CHARS = 8 << 20
#: DuckDB's own default read buffer (16 x its default line size): set explicitly, because raising max_line_size
#: alone would also raise the buffer reserved per file
CSV_BUFFER_SIZE = 32 << 20


def read_header(path: str) -> list[str]:
    """Column names of a billing file, cheaply: the first CSV line, the parquet schema, the first JSON record.

    Errors (empty file, truncated gzip, unreadable parquet) become one-line :class:`InputError`.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(path, "file not found")
    if p.stat().st_size == 0:
        raise InputError(path, "empty file; expected a header row and billing rows")
    kind = file_kind(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        # a .json that is not UTF-8 text is not JSON records either: skipped when a folder walk found it (a
        # Windows tool's UTF-16 settings file), refused when it was named
        bad = encoding_error(path, ENCODING_PROBE_BYTES, NotJsonRecords if kind == "json" else InputError)
        if bad:
            raise bad
        with _open_text(path) as fh:
            first = fh.readline(MAX_HEADER_CHARS + 1)
        if len(first) > MAX_HEADER_CHARS:
            raise InputError(path, f"the first line is longer than {MAX_HEADER_CHARS >> 20} MiB without a line "
                                   "break; expected a header row (is it a billing export?)", row=1)
        if not first.strip():
            raise InputError(path, "empty file; expected a header row and billing rows")
        if kind == "json":
            try:
                return list(json.loads(first).keys())
            except (json.JSONDecodeError, AttributeError) as exc:
                raise NotJsonRecords(path, f"row 1: not a JSON object per line ({exc})") from None
        import csv

        return [c.strip() for c in next(csv.reader([first.rstrip("\r\n")]))]
    except (EOFError, gzip.BadGzipFile, OSError, zlib_error()) as exc:
        raise InputError(path, f"cannot read file ({type(exc).__name__}: {exc}); is it truncated or corrupt?") from None
    except InputError:
        raise
    except Exception as exc:  # pyarrow errors have many classes
        raise InputError(path, f"cannot read file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def case_aliases(headers: Sequence[Sequence[str]]) -> dict[str, str]:
    """``{name: alias}`` for the header names that another name equals up to case (over all files of an ingest).

    The alias appends ``~<n>`` (n = rank of the spelling among its case variants), so it is the same in every
    file and distinct from its variants. (A header with exact duplicates is refused by :meth:`Source.stage`.)
    """
    if any(len(set(h)) != len(h) for h in headers):
        return {}
    spellings: dict[str, set[str]] = {}
    for header in headers:
        for name in header:
            spellings.setdefault(name.lower(), set()).add(name)
    return {name: f"{name}~{i}" for group in spellings.values() if len(group) > 1
            for i, name in enumerate(sorted(group))}


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


@dataclass
class StagedSource:
    """What :meth:`Source.stage` produced: the view name and the columns it has."""

    view: str
    columns: list[str]
    files: list[str]
    extra: dict = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # column -> DuckDB type name
    original_names: dict[str, str] = field(default_factory=dict)  # alias -> the file's own spelling (see stage)

    def has(self, *names: str) -> bool:
        return all(n in self.columns for n in names)

    def is_text(self, column: str) -> bool:
        return self.types.get(column, "VARCHAR").upper() == "VARCHAR"


def json_object_expr(pairs: Sequence[tuple[str, str]]) -> str:
    """SQL for the JSON object text ``{"key": value, ...}`` of (key, text expression) pairs; NULL values are left
    out and a row with none gives NULL.

    Built as text with ``concat_ws`` (which skips NULLs) and ``to_json`` (which escapes the value): 3x cheaper per
    row than building a MAP and serializing it, which mattered for one-column-per-tag exports with millions of
    rows. Columns that carry the same key (``user:env`` and ``user:Env`` differ, but two spellings of one key in
    Athena's snake_case do not) are merged, first non-empty value wins, so the object never repeats a key.
    """
    merged: dict[str, list[str]] = {}
    for key, expr in pairs:
        merged.setdefault(key, []).append(expr)
    if not merged:
        return "CAST(NULL AS VARCHAR)"
    members = []
    for key, exprs in merged.items():
        value = exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"
        members.append(f"{sql_str(json.dumps(key, ensure_ascii=False) + ':')} || to_json({value})")
    return f"nullif('{{' || concat_ws(',', {', '.join(members)}) || '}}', '{{}}')"


def money_expr(staged: StagedSource, column: str) -> str:
    """A source column as exact money. Text is trimmed and cast (errors are diagnosed); typed parquet numbers
    are cast directly, which is several times faster than a round trip through text."""
    ref = ident(column)
    if column not in staged.columns:
        return f"CAST(NULL AS {MONEY})"
    return f"CAST(trim({ref}) AS {MONEY})" if staged.is_text(column) else f"CAST({ref} AS {MONEY})"


#: ISO 8601 starts 'YYYY-MM-DD'. Checked by character positions, which is far cheaper than a regex per value;
#: DuckDB alone would read '4/1/25' as the year 4.
def iso_guard(text_expr: str) -> str:
    return f"(substr({text_expr}, 5, 1) = '-' AND substr({text_expr}, 8, 1) = '-')"


def iso_timestamp(text_expr: str, raw: str | None = None) -> str:
    """ISO 8601 text (with or without T, Z or an offset) as a UTC TIMESTAMP; an error for anything else.

    The connection's TimeZone is UTC, so text without an offset is read as UTC, as FOCUS requires. The error
    message is found again by diagnosis, which names file, row and column.

    Billing exports almost always write UTC with a ``Z`` suffix. That case is tested first on ``raw`` (the
    untrimmed text, when the caller has it) and cast straight to TIMESTAMP, which is the same instant without the
    trim and the time zone conversion: 2.7x cheaper per value (measured: 0.39 -> 0.14 s per million), and a CUR
    row has four of them. Anything else (offsets, no suffix, padding) takes the general path.
    """
    checked = (f"CASE WHEN {text_expr} IS NULL OR {iso_guard(text_expr)} THEN {text_expr} "
               f"ELSE error('not an ISO 8601 date/time: ' || {text_expr}) END")
    general = f"CAST(CAST({checked} AS TIMESTAMPTZ) AS TIMESTAMP)"
    probe = raw or text_expr
    return f"CASE WHEN {probe}[-1] = 'Z' AND {iso_guard(probe)} THEN CAST({probe} AS TIMESTAMP) ELSE {general} END"


def period_timestamp(text_expr: str, raw: str | None = None) -> str:
    """A billing-period boundary as the provider wrote it: the date and time on the text, its offset dropped.

    A billing period is a calendar month of the provider's own reckoning, not an instant: ``2026-03-01T00:00:00+05:00``
    starts the March period although the same instant is February 28 in UTC. Converting it first (as
    :func:`iso_timestamp` does for charge times) would file a March export under February, and its replacement
    key would then delete the real February. Non-ISO text is an error, as for every timestamp.
    """
    checked = (f"CASE WHEN {text_expr} IS NULL OR {iso_guard(text_expr)} THEN {text_expr} "
               f"ELSE error('not an ISO 8601 date/time: ' || {text_expr}) END")
    probe = raw or text_expr
    return (f"CASE WHEN {probe}[-1] = 'Z' AND {iso_guard(probe)} THEN CAST({probe} AS TIMESTAMP) "
            f"ELSE CAST(substr({checked}, 1, 19) AS TIMESTAMP) END")


def period_expr(staged: StagedSource, column: str) -> str:
    """A source's billing-period column as the provider wrote it (see :func:`period_timestamp`); typed parquet
    values are taken as they are (parquet stores no offset to drop)."""
    ref = ident(column)
    if column not in staged.columns:
        return "CAST(NULL AS TIMESTAMP)"
    if staged.is_text(column):
        return period_timestamp(f"trim({ref})", raw=ref)
    return f"CAST({ref} AS TIMESTAMP)"


def timestamp_expr(staged: StagedSource, column: str) -> str:
    """A source column as a UTC TIMESTAMP: ISO 8601 text (with or without T, Z or an offset; the session time zone
    is UTC), or a typed parquet timestamp/date. Non-ISO text raises an error that diagnosis pinpoints."""
    ref = ident(column)
    if column not in staged.columns:
        return "CAST(NULL AS TIMESTAMP)"
    if staged.is_text(column):
        return iso_timestamp(f"trim({ref})", raw=ref)
    return f"CAST({ref} AS TIMESTAMP)"  # typed timestamp/date; a TIMESTAMPTZ is rendered in the session's UTC


def explain_missing_columns(staged: StagedSource, missing: Sequence[str]) -> None:
    """Raise the real reason when a required column is in a file's header but not in what DuckDB read.

    Two causes made "missing required column BilledCost" a misleading message: the column appears twice in
    different case (``BilledCost`` and ``billedcost``: which one is the cost?), or a malformed row (too few or too
    many fields, an unterminated quote) made DuckDB's dialect sniffer give up and read each line as one column.
    The file is scanned here, on the error path only, to name the row.
    """
    for alias, original in staged.original_names.items():
        for m in missing:
            if original.lower() == m.lower():
                spellings = sorted(o for o in staged.original_names.values() if o.lower() == m.lower())
                raise InputError(_file_of(staged, alias), f"column {m!r} appears more than once in different case "
                                                          f"({', '.join(map(repr, spellings))}); expected it once",
                                 column=m)
    for f in staged.files:
        if file_kind(f) != "csv":
            continue
        header = read_header(f)
        if not any(m in header for m in missing):
            continue
        with _open_text(f) as fh:
            import csv

            reader = csv.reader(fh, strict=True)
            try:
                names = next(reader)
                for row_no, row in enumerate(reader, 1):
                    if len(row) != len(names) and row:
                        raise InputError(f, f"malformed CSV row: {len(row)} fields where the header has "
                                            f"{len(names)}; expected one value per column", row=row_no)
            except csv.Error as exc:
                raise InputError(f, f"malformed CSV ({exc}; an unterminated quote?)",
                                 row=max(reader.line_num - 1, 1)) from None


def raise_encoding_error(files: Sequence[str]) -> None:
    """Raise the encoding error of the first CSV/JSON file that is not UTF-8 text; return if they all are.

    For the error path of a read: DuckDB's sniffer reports a bad byte past what :func:`read_header` checks as
    "CSV Error on Line: N" (with the undecodable line in the message); the files are scanned in full only then."""
    for f in files:
        try:
            if file_kind(f) == "parquet":
                continue
            bad = encoding_error(f)
        except (InputError, EOFError, OSError, zlib_error()):
            continue  # unreadable or refused by name: the caller's own error says so
        if bad:
            raise bad


def _file_of(staged: StagedSource, alias: str) -> str:
    return staged.files[0] if len(staged.files) == 1 else f"{staged.files[0]} (+{len(staged.files) - 1} files)"


class Source:
    """Base class of source modules. Subclasses set the class attributes and write the three SQL methods."""

    #: registry name, used by ``--format`` and stored in ``x_SourceFormat``
    name: ClassVar[str] = ""
    #: one-line description shown in format listings and detection errors
    description: ClassVar[str] = ""
    #: columns whose presence identifies the format (all must be present), in the file's own spelling
    signature: ClassVar[tuple[str, ...]] = ()
    #: columns the mapping cannot do without; a missing one is a one-line error naming it
    required_columns: ClassVar[tuple[str, ...]] = ()
    #: source columns cast to numbers / timestamps by the mapping; used to pinpoint a bad value
    numeric_columns: ClassVar[tuple[str, ...]] = ()
    timestamp_columns: ClassVar[tuple[str, ...]] = ()
    #: the ProviderName every row of this format carries, when it is fixed (None: it varies, as in FOCUS files)
    provider_name: ClassVar[str | None] = None
    #: how a row's replacement key starts (the rest is billing account and billing period)
    key_family: ClassVar[str] = ""
    #: the format's deliveries split a month into numbered parts of one folder (``<report>-<n>.<ext>``): files that
    #: hold different charges of the same days, so one part must not replace another (see the ingest's
    #: replacement rule, :func:`finops_kit.ingest.missing_parts_text`)
    delivered_in_parts: ClassVar[bool] = False
    #: an ``x_`` column (written by :meth:`passthrough_columns`) whose value names one line item for good, across
    #: files and ingests (OCI's ``lineItem/referenceNo``): for formats whose files are incremental, where a file of
    #: another name holding stored line items is a copy, not a restatement -- the ingest refuses it (see
    #: :func:`finops_kit.ingest.stored_line_items_error`)
    stored_identity: ClassVar[str | None] = None
    #: a re-export of the same scope and days may change a row's values in place (Azure's month-to-date exports,
    #: amortization applied later) and the rows carry no id: two files that share rows are two runs of one export,
    #: not overlapping pieces, so ``--dedupe`` cannot tell a revised row from a new charge and refuses them
    rows_restated: ClassVar[bool] = False
    #: formats of a FOCUS dataset other than Cost and Usage (1.3 Contract Commitment) load into this table with
    #: :meth:`load_dataset` instead of mapping to FOCUS rows
    dataset_table: ClassVar[str | None] = None
    #: keep every source column the mapping does not consume as an ``x_`` column, not only the format's curated
    #: extras (set per ingest; formats whose extras are a fixed list ignore it)
    keep_source_columns: bool = False

    # ---- detection -------------------------------------------------------------------------------------
    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        """True when a file with these columns is of this format. Override for anything subtler."""
        cols = set(columns)
        return bool(cls.signature) and all(s in cols for s in cls.signature)

    # ---- staging ---------------------------------------------------------------------------------------
    def csv_options(self) -> dict[str, object]:
        """read_csv options; all columns as text so that the mapping's casts (and our errors) decide."""
        return {"header": True, "all_varchar": True, "nullstr": ["", "NULL"], "quote": '"', "escape": '"',
                "max_line_size": MAX_HEADER_CHARS, "buffer_size": CSV_BUFFER_SIZE}

    def stage(self, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
        """Create a temporary view ``view`` over the raw files (plus a ``_file`` column).

        CSV headers may hold names that differ only in case (AWS writes ``resourceTags/user:Env`` and
        ``resourceTags/user:env`` as two columns). DuckDB's identifiers are case-insensitive: it would rename one
        to ``..._1`` within a file and merge them across files. Such names are read under distinct aliases and
        ``StagedSource.original_names`` maps each alias back to the file's own spelling.
        """
        kind = file_kind(files[0])
        flist = sql_list(files)
        aliases: dict[str, str] = {}
        if kind == "parquet":
            src = f"read_parquet({flist}, filename = '_file', union_by_name = true)"
        elif kind == "json":
            src = f"read_json({flist}, format = 'newline_delimited', filename = '_file', union_by_name = true)"
        else:
            rendered = []
            for k, v in self.csv_options().items():
                if isinstance(v, bool):
                    rendered.append(f"{k} = {'true' if v else 'false'}")
                elif isinstance(v, list):
                    rendered.append(f"{k} = {sql_list(v)}")
                else:
                    rendered.append(f"{k} = {sql_str(str(v))}")
            opts = ", ".join(rendered)
            headers = {f: read_header(f) for f in files}
            for f, header in headers.items():  # two columns of one name: which one is the value? (DuckDB would
                seen: set[str] = set()         # rename the second to name_1 and a tag key would become "env_1")
                dup = next((c for c in header if c in seen or seen.add(c)), None)
                if dup is not None:
                    raise InputError(f, f"column {dup!r} appears more than once {header.count(dup)} times; "
                                        "expected it once", column=dup)  # the FOCUS source's wording
            aliases = case_aliases(list(headers.values()))
            if aliases:
                src = "(" + " UNION ALL BY NAME ".join(
                    f"SELECT * FROM read_csv({sql_str(f)}, {opts}, filename = '_file', "
                    f"names = {sql_list([aliases.get(h, h) for h in header])})" for f, header in headers.items()) + ")"
            else:
                src = f"read_csv({flist}, {opts}, filename = '_file', union_by_name = true)"
        try:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {src}")
            described = con.execute(f"DESCRIBE {view}").fetchall()
        except duckdb.Error:
            raise_encoding_error(files)
            raise
        return StagedSource(view=view, columns=[r[0] for r in described], files=files,
                            types={r[0]: r[1] for r in described},
                            original_names={a: n for n, a in aliases.items()})

    def check_columns(self, staged: StagedSource) -> None:
        missing = [c for c in self.required_columns if c not in staged.columns]
        if missing:
            explain_missing_columns(staged, missing)
            raise InputError(
                staged.files[0] if len(staged.files) == 1 else f"{staged.files[0]} (+{len(staged.files) - 1} files)",
                f"missing required column(s) {', '.join(repr(m) for m in missing)} for format {self.name}",
            )

    # ---- mapping ---------------------------------------------------------------------------------------
    def focus_sql(self, staged: StagedSource) -> str:
        raise NotImplementedError

    def source_totals_sql(self, staged: StagedSource) -> str:
        """SELECT billing_period_start TIMESTAMP, currency VARCHAR, billed DECIMAL, effective DECIMAL."""
        raise NotImplementedError

    @classmethod
    def stored_key_upgrade(cls) -> tuple[str, str] | None:
        """``(which stored rows, their new x_SourceKey)`` as SQL over FOCUS columns, when this format's replacement
        key changed and rows stored under the old one must be re-keyed before the replacement rule compares keys
        (else a re-run of their file is added beside them); None: nothing to upgrade."""
        return None

    @classmethod
    def not_billing(cls, columns: Sequence[str]) -> str | None:
        """Why a file of this provider that no format claims is no billing export (a companion report with no cost,
        such as OCI's usage report), as a phrase; None when it is not one. Found in a folder it is listed as
        skipped; named on its own it is refused with this phrase."""
        return None

    #: the columns of the FOCUS table :meth:`stored_conflict` reads (empty: it has no rule). The Spark ingest hands
    #: the hook the distinct values of these columns of the stored and new rows of its keys, as a DuckDB table of
    #: the same name, so both engines decide with the hook's own SQL.
    stored_conflict_columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def stored_conflict(cls, con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str],
                        this_call: list[str]) -> str | None:
        """Why this ingest's rows (``ingest_id``) may neither replace nor join the stored rows of its ``keys``
        (rows of ingests outside ``this_call``), whatever their usage days say, as one sentence naming the input
        and the stored file; None when nothing of the kind. The ingest refuses with it unless ``--replace``
        (:func:`finops_kit.ingest.stored_conflict_outcome`). Reads only :attr:`stored_conflict_columns`."""
        return None

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        """Source columns kept verbatim as ``x_`` custom columns: {source column: x_ column}."""
        return {}

    # ---- duplicate charges ---------------------------------------------------------------------------
    #: what identifies one charge, for the duplicate check across the files of one ingest (named in its errors)
    row_identity: ClassVar[str] = "values in every column"

    def row_key_sql(self, staged: StagedSource) -> str:
        """SQL over the staged view: one value per charge, equal for two rows that are the same charge.

        The default is the whole row: formats without a line-item id (GCP, Azure, FOCUS) have no narrower key that
        two different charges could never share, so only a row repeated verbatim is a duplicate.
        """
        return self.row_content_sql(staged)

    def row_content_sql(self, staged: StagedSource) -> str:
        """SQL over the staged view: a hash of the whole source row (not the file it came from or its position)."""
        cols = [c for c in staged.columns if c not in ("_file", "_row")]
        return f"hash({', '.join(ident(c) for c in cols)})"

    def focus_identity(self, staged: StagedSource) -> list[str] | None:
        """FOCUS columns that hold the row key after the insert, or None. When a format has them (AWS: the line
        item id and its time interval), repeated charges are found in the written rows at almost no cost instead of
        by reading the files once more."""
        return None

    def load_dataset(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, ingest_id: str) -> int:
        """Write the staged rows to :attr:`dataset_table` (inside the ingest's transaction); returns the row count."""
        raise NotImplementedError

    def renamed_columns(self, staged: StagedSource, passthrough: dict[str, str]) -> dict[str, str]:
        """Source columns whose name the ingest changed as a documented repair ({source column: x_ column}).

        Native formats keep their extras under ``x_`` names by design (not a repair); a FOCUS file whose custom
        column lacks the ``x_`` the spec requires is repaired, and the data-quality summary counts it."""
        return {}

    def file_notes(self, staged: StagedSource) -> dict[str, str]:
        """A note per file printed at ingest and kept in data_quality (the FOCUS reader: the version detected)."""
        return {}

    def locate(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, condition: str, column: str,
               file: str) -> tuple[int, str | None] | None:
        """(data row, source value) of the first row of ``file`` where ``condition`` (SQL over FOCUS columns)
        holds, for an error message; None when the format cannot map normalized rows back to its rows."""
        return None

    # ---- diagnosis -------------------------------------------------------------------------------------
    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """Find the first file/row/column whose value the mapping could not cast, for a one-line error.

        Runs only on the failure path, so the happy path pays nothing for it. Rows are counted from 1 = the
        first data row of the file (the header is not counted).
        """
        checks = [(c, MONEY, "a number") for c in self.numeric_columns] + [
            (c, "TIMESTAMPTZ", "a date/time") for c in self.timestamp_columns
        ]
        for column, typ, expected in checks:
            if column not in staged.columns:
                continue
            bad = first_bad_cell(con, staged, column,
                                 f"v IS NOT NULL AND TRY_CAST({self.prepare_value('v', typ)} AS {typ}) IS NULL")
            if bad:
                return InputError(bad[0], f"cannot parse {bad[2]!r}; expected {expected}", column=column, row=bad[1])
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return InputError(staged.files[0], f"cannot convert to FOCUS ({first})")

    def prepare_value(self, expr: str, typ: str) -> str:
        """How a raw text value is prepared before a cast to ``typ`` (overridable per format)."""
        return f"trim({expr})"


def first_bad_cell(con: duckdb.DuckDBPyConnection, staged: StagedSource, column: str, bad: str,
                   value: str | None = None) -> tuple[str, int, str | None] | None:
    """The first ``(file, row, value)`` of ``column`` in ``staged`` where the SQL condition ``bad`` (over ``v``,
    the cell as ``value`` gives it: its text by default) holds; None when no cell does or the check itself cannot
    run. Rows count from 1 = the first data row of each file (the header is not counted).

    Why one helper: every one-line error of an ingest that names a file, row and column ("cannot parse '12,5' in
    column X of row 7") comes from this query; the base diagnosis, CUR 2.0's map columns and OCI's blank cells each
    had their own copy. It runs only on the failure path."""
    v = value if value is not None else f"CAST({ident(column)} AS VARCHAR)"
    try:
        return first_row(con, f"SELECT _file, rn, v FROM (SELECT _file, row_number() OVER (PARTITION BY _file) AS rn, "
                              f"{v} AS v FROM {staged.view}) WHERE {bad} LIMIT 1")
    except duckdb.Error:
        return None


_REGISTRY: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: make a source module selectable by name and by auto-detection."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Source]]:
    from . import _load_all  # noqa: F401  (imports every source module so that they register)

    return dict(_REGISTRY)


_X_NAME = re.compile(r"[^0-9A-Za-z_]+")


def x_column_name(source_column: str) -> str:
    """``x_`` custom column name for an unknown source column ('product/region' -> 'x_product_region')."""
    base = _X_NAME.sub("_", source_column).strip("_")
    return base if base.startswith("x_") else f"x_{base}"


def x_column_names(source_columns: Sequence[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """``{source column: x_ column}`` for columns kept as they are, every x_ name distinct (in any case).

    :func:`x_column_name` maps different columns to one name ('cost center' and 'cost-center', 'MyTag' and
    'x_MyTag', 'Kostenstelle_ü' and 'Kostenstelle_é'), and DuckDB's names are case-insensitive, so such a file was
    refused with a Binder error although both columns are harmless. The rule, which depends only on the header,
    so a re-ingest of the same file writes the same names:

    * a column already spelled as its x_ name (``x_MyTag``) keeps it;
    * otherwise the first column in header order gets the plain name;
    * the others get ``_2``, ``_3``, ... in header order, skipping any name another column or ``reserved``
      (the table's own columns: FOCUS and lineage) holds, in any case.
    """
    plain = {c: x_column_name(c) for c in source_columns}
    taken = {r.lower() for r in reserved}
    out: dict[str, str] = {}
    for c in source_columns:
        if plain[c] == c and c.lower() not in taken:
            out[c] = c
            taken.add(c.lower())
    for c in source_columns:
        if c not in out and plain[c].lower() not in taken:
            out[c] = plain[c]
            taken.add(plain[c].lower())
    wanted = {p.lower() for p in plain.values()}
    for c in source_columns:
        if c in out:
            continue
        n = 2
        while f"{plain[c]}_{n}".lower() in taken or f"{plain[c]}_{n}".lower() in wanted:
            n += 1
        out[c] = f"{plain[c]}_{n}"
        taken.add(out[c].lower())
    return {c: out[c] for c in source_columns}
