"""Export the FOCUS table as typed parquet (what the FOCUS validator and BI tools want) or CSV."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .errors import ConfigError, FinopsError
from .schema import focus_columns
from .sources.base import sql_str
from .warehouse import FOCUS_TABLE, write_error


def export_focus(con: duckdb.DuckDBPyConnection, out: str, *, where: str | None = None,
                 focus_only: bool = False, drop_empty: bool = False) -> int:
    """Write the FOCUS rows (optionally filtered) to ``out``; returns the row count.

    ``focus_only`` drops the ``x_`` custom columns (some consumers only accept spec columns). ``drop_empty``
    leaves out non-mandatory columns that are NULL on every exported row: in FOCUS a Conditional or Recommended
    column is present when the provider supports the feature, and a present column must satisfy its rules, so
    an all-NULL column would wrongly claim support (the warehouse table always has all 57 columns).
    """
    filt = f" WHERE {where}" if where else ""
    if where:  # checked before anything is created: a typo in --where must not leave folders or files behind
        probe = f"SELECT count(*) FROM {FOCUS_TABLE}{filt}"
        try:
            if len(con.extract_statements(probe)) != 1:  # "1; DROP TABLE focus" is two statements
                raise ConfigError(f"--where {where!r}: expected one SQL condition, not several statements")
            con.execute(probe).fetchone()
        except duckdb.Error as exc:
            raise ConfigError(f"--where {where!r}: {_first_line(exc)}") from None
    if Path(out).is_dir():
        raise ConfigError(f"--out {out}: is a folder; expected a .parquet or .csv file name")
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create its folder ({exc.strerror or exc})") from None
    names = [r[0] for r in con.execute(f"DESCRIBE {FOCUS_TABLE}").fetchall()]
    if focus_only:
        names = [n for n in names if not n.startswith("x_")]
    if drop_empty:
        mandatory = {c.name for c in focus_columns() if c.feature_level == "Mandatory"}
        optional = [n for n in names if n not in mandatory]
        counts = con.execute(
            "SELECT " + ", ".join(f'count("{n}")' for n in optional) + f" FROM {FOCUS_TABLE}{filt}"
        ).fetchone() if optional else ()
        empty = {n for n, c in zip(optional, counts, strict=True) if c == 0}
        names = [n for n in names if n not in empty]
    # JSON columns as plain text: FOCUS defines them as JSON strings, and readers of parquet's JSON logical type
    # disagree (the FOCUS validator rejects it)
    json_cols = {c.name for c in focus_columns() if c.focus_type == "JSON"}
    cols = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n in json_cols else f'"{n}"' for n in names)
    query = f"SELECT {cols} FROM {FOCUS_TABLE}{filt}"
    fmt = "FORMAT PARQUET" if out.lower().endswith(".parquet") else "FORMAT CSV, HEADER"
    try:
        con.execute(f"COPY ({query}) TO {sql_str(out)} ({fmt})")
    except duckdb.Error as exc:
        raise write_error(out, exc) or FinopsError(f"--out {out}: cannot write ({_first_line(exc)})") from None
    return con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
