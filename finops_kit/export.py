"""Export the FOCUS table as typed parquet (what the FOCUS validator and BI tools want) or CSV."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .errors import ConfigError, FinopsError
from .schema import columns_by_version, focus_columns
from .sources.base import sql_str
from .warehouse import FOCUS_TABLE, first_row, scalar, write_error

#: FOCUS versions ``export`` writes: the internal 1.2 table as it is, or FOCUS 1.3 Cost and Usage
FOCUS_VERSIONS = ("1.2", "1.3")


def export_focus(con: duckdb.DuckDBPyConnection, out: str, *, where: str | None = None,
                 focus_only: bool = False, drop_empty: bool = False, focus_version: str = "1.2") -> int:
    """Write the FOCUS rows (optionally filtered) to ``out``; returns the row count.

    ``focus_only`` drops the ``x_`` custom columns (some consumers only accept spec columns). ``drop_empty``
    leaves out non-mandatory columns that are NULL on every exported row: in FOCUS a Conditional or Recommended
    column is present when the provider supports the feature, and a present column must satisfy its rules, so
    an all-NULL column would wrongly claim support (the warehouse table always has all 57 columns).

    ``focus_version="1.3"`` writes FOCUS 1.3 Cost and Usage: the 1.2 columns (ProviderName and PublisherName are
    deprecated in 1.3, not removed) plus the columns 1.3 added (data/focus_columns_by_version.csv), taken from
    the ``x_`` columns a 1.3 input was read into. ServiceProviderName is the 1.2 ProviderName (its replacement),
    HostProviderName the service provider unless the input named a host (FOCUS 1.3: they are equal unless the
    host is exposed). As in 1.2, every column of the version is written unless ``drop_empty``.
    """
    if focus_version not in FOCUS_VERSIONS:
        raise ConfigError(f"--focus-version {focus_version}: expected one of {', '.join(FOCUS_VERSIONS)}")
    filt = f" WHERE {where}" if where else ""
    if where:  # checked before anything is created: a typo in --where must not leave folders or files behind
        probe = f"SELECT count(*) FROM {FOCUS_TABLE}{filt}"
        try:
            if len(con.extract_statements(probe)) != 1:  # "1; DROP TABLE focus" is two statements
                raise ConfigError(f"--where {where!r}: expected one SQL condition, not several statements")
            first_row(con, probe)
        except duckdb.Error as exc:
            raise ConfigError(f"--where {where!r}: {_first_line(exc)}") from None
    if Path(out).is_dir():
        raise ConfigError(f"--out {out}: is a folder; expected a .parquet or .csv file name")
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create its folder ({exc.strerror or exc})") from None
    names = [r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()]
    # JSON columns as plain text: FOCUS defines them as JSON strings, and readers of parquet's JSON logical type
    # disagree (the FOCUS validator rejects it)
    json_cols = {c.name for c in focus_columns() if c.focus_type == "JSON"}
    items = {n: f'CAST("{n}" AS VARCHAR)' if n in json_cols else f'"{n}"' for n in names}
    mandatory = {c.name for c in focus_columns() if c.feature_level == "Mandatory"}
    if focus_version == "1.3":
        later = {c for c, lv in columns_by_version().items() if lv["1.3"] and not lv["1.2"]}
        for c in sorted(later):
            x = f"x_{c}"
            items[c] = f'CAST("{x}" AS VARCHAR)' if x in names else "CAST(NULL AS VARCHAR)"
            items.pop(x, None)
        items["ServiceProviderName"] = (f"coalesce({items['ServiceProviderName']}, ProviderName)")
        items["HostProviderName"] = f"coalesce({items['HostProviderName']}, {items['ServiceProviderName']})"
        mandatory |= {c for c in later if columns_by_version()[c]["1.3"] == "Mandatory"}
    if focus_only:
        items = {n: e for n, e in items.items() if not n.startswith("x_")}
    if drop_empty:
        optional = [n for n in items if n not in mandatory]
        counts = first_row(con,
            "SELECT " + ", ".join(f"count({items[n]})" for n in optional) + f" FROM {FOCUS_TABLE}{filt}"
        ) if optional else ()
        empty = {n for n, c in zip(optional, counts, strict=True) if c == 0}
        items = {n: e for n, e in items.items() if n not in empty}
    if not out.lower().endswith(".parquet"):  # CSV: dates as FOCUS writes them, ISO 8601 UTC with T and Z
        stamps = {c.name for c in focus_columns() if c.focus_type == "Date/Time"}
        items = {n: f"strftime({e}, '%Y-%m-%dT%H:%M:%SZ')" if n in stamps else e for n, e in items.items()}
    cols = ", ".join(f'{e} AS "{n}"' for n, e in items.items())
    query = f"SELECT {cols} FROM {FOCUS_TABLE}{filt}"
    fmt = "FORMAT PARQUET" if out.lower().endswith(".parquet") else "FORMAT CSV, HEADER"
    try:
        con.execute(f"COPY ({query}) TO {sql_str(out)} ({fmt})")
    except duckdb.Error as exc:
        raise write_error(out, exc) or FinopsError(f"--out {out}: cannot write ({_first_line(exc)})") from None
    return scalar(con, f"SELECT count(*) FROM ({query})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
