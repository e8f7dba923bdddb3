"""Deterministic file writing shared by the sample writers (no wall clock, no thread-order effects).

Small samples are written from Arrow tables; ``replicate`` > 1 streams the same rows k times through DuckDB
(``FROM range(k), rows``) with per-copy ids, so a 10M-row benchmark file never exists as Python objects.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from .model import fmt


def text(v: object) -> str | None:
    """A cell as the text a billing export would hold (None -> empty)."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        return fmt(v)
    s = str(v)
    return s if s != "" else None


def string_table(columns: list[str], rows: list[dict]) -> pa.Table:
    return pa.table({c: pa.array([text(r.get(c)) for r in rows], pa.string()) for c in columns})


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def copy_csv_gz(table: pa.Table, path: Path, *, replicate: int = 1, limit: int | None = None,
                vary: dict[str, str] | None = None) -> int:
    """Write ``table`` as gzip CSV with a header; return the number of data rows written.

    With ``replicate`` k the rows are emitted k times; ``vary`` gives per-copy SQL expressions for columns that
    must differ between copies (``{col}`` is the original column, ``r`` the copy number, 0 for the original).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if replicate <= 1 and limit is None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        cols = table.column_names
        data = table.to_pydict()
        n = table.num_rows
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(cols)
            for i in range(n):
                w.writerow(["" if data[c][i] is None else data[c][i] for c in cols])
        os.replace(tmp, path)
        return n
    # DuckDB's column names are case-insensitive and a CUR header has case variants (user:Env and user:env): the
    # columns go through DuckDB under positional names and the real header is written as a first gzip member
    # (a multi-member gzip file is one valid stream for gzip, DuckDB and AWS's own readers).
    names = table.column_names
    con = duckdb.connect()
    con.execute("SET threads = 1")  # one writer thread: same rows in the same order on every run
    con.register("base", table.rename_columns([f"c{i}" for i in range(len(names))]))
    exprs = []
    vary = vary or {}
    for i, c in enumerate(names):
        q = f"c{i}"
        if c in vary:
            exprs.append(f"CASE WHEN r = 0 THEN {q} ELSE {vary[c].format(col=q)} END AS {q}")
        else:
            exprs.append(q)
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    sql = f"SELECT {', '.join(exprs)} FROM range({int(replicate)}) t(r), base{lim}"
    body = path.with_suffix(path.suffix + ".body")
    con.execute(f"COPY ({sql}) TO '{body}' (FORMAT csv, HEADER false, COMPRESSION gzip)")
    con.close()
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(names)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as out:
        out.write(gzip.compress(line.getvalue().encode("utf-8"), mtime=0))
        with open(body, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    body.unlink()
    os.replace(tmp, path)
    total = replicate * table.num_rows
    return total if limit is None else min(int(limit), total)


def replication(target_rows: int | None, base_rows: int) -> int:
    """How many copies of the base population give about ``target_rows`` line items (at least one)."""
    if not target_rows or base_rows <= 0:
        return 1
    return max(1, round(target_rows / base_rows))
