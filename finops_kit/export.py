"""Export the FOCUS table as typed parquet (what the FOCUS validator and BI tools want) or CSV."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .sources.base import sql_str
from .warehouse import FOCUS_TABLE


def export_focus(con: duckdb.DuckDBPyConnection, out: str, *, where: str | None = None,
                 focus_only: bool = False) -> int:
    """Write the FOCUS rows (optionally filtered) to ``out``; returns the row count.

    ``focus_only`` drops the ``x_`` custom columns (some consumers only accept spec columns).
    """
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cols = "* EXCLUDE (COLUMNS('^x_'))" if focus_only else "*"
    query = f"SELECT {cols} FROM {FOCUS_TABLE}" + (f" WHERE {where}" if where else "")
    fmt = "FORMAT PARQUET" if out.lower().endswith(".parquet") else "FORMAT CSV, HEADER"
    con.execute(f"COPY ({query}) TO {sql_str(out)} ({fmt})")
    return con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
