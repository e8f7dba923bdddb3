"""Hand-built FOCUS tables for unit tests and examples.

Analyses are tested on small tables whose right answer is computed by hand. ``focus_rows`` fills the mandatory
columns with plain defaults so that a test states only what matters to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .schema import LINEAGE_COLUMNS, focus_columns
from .warehouse import FOCUS_TABLE, connect

DEFAULTS: dict[str, Any] = {
    "BillingAccountId": "acct-1",
    "BillingAccountName": "Test account",
    "BillingCurrency": "USD",
    "ChargeCategory": "Usage",
    "ChargeFrequency": "Usage-Based",
    "InvoiceIssuerName": "AWS",
    "ProviderName": "AWS",
    "PublisherName": "AWS",
    "ServiceName": "Amazon Elastic Compute Cloud",
    "ServiceCategory": "Compute",
    "PricingCategory": "Standard",
    "x_SourceFormat": "test",
    "x_SourceKey": "test",
    "x_IngestId": "test",
}


def focus_rows(rows: Iterable[dict[str, Any]], con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """Insert rows into the FOCUS table of ``con`` (a new in-memory warehouse by default) and return ``con``.

    Each row may set any FOCUS or ``x_`` column. Shortcuts: ``cost`` sets BilledCost, EffectiveCost, ListCost and
    ContractedCost at once; ``day`` ('2026-01-05') sets a one-day ChargePeriod and its month's BillingPeriod;
    ``tags`` (a dict) is serialized to the Tags JSON.
    """
    import json

    con = con or connect(":memory:")
    records = []
    for r in rows:
        rec = dict(DEFAULTS)
        r = dict(r)
        if "cost" in r:
            c = r.pop("cost")
            for k in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
                rec[k] = c
        if "day" in r:
            d = pd.Timestamp(r.pop("day"))
            rec["ChargePeriodStart"] = d.to_pydatetime()
            rec["ChargePeriodEnd"] = (d + pd.Timedelta(days=1)).to_pydatetime()
            start = datetime(d.year, d.month, 1)
            rec["BillingPeriodStart"] = start
            rec["BillingPeriodEnd"] = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).to_pydatetime()
        if "tags" in r:
            t = r.pop("tags")
            rec["Tags"] = None if t is None else json.dumps(t, ensure_ascii=False)
        rec.update(r)
        records.append(rec)
    cols = [c.name for c in focus_columns()] + list(LINEAGE_COLUMNS)
    types = {c.name: c.duckdb_type for c in focus_columns()} | LINEAGE_COLUMNS
    extra = sorted({k for rec in records for k in rec} - set(cols))
    if extra:
        unknown = [k for k in extra if not k.startswith("x_")]
        if unknown:
            raise KeyError(f"not FOCUS columns: {unknown}")
        for x in extra:
            con.execute(f'ALTER TABLE {FOCUS_TABLE} ADD COLUMN IF NOT EXISTS "{x}" VARCHAR')
        cols += extra
        types |= {x: "VARCHAR" for x in extra}
    df = pd.DataFrame([{c: rec.get(c) for c in cols} for rec in records], columns=cols).astype(object)
    con.register("_focus_rows_df", df)
    select = ", ".join(f'CAST("{c}" AS {types[c]}) AS "{c}"' for c in cols)
    con.execute(f"INSERT INTO {FOCUS_TABLE} BY NAME SELECT {select} FROM _focus_rows_df")
    con.unregister("_focus_rows_df")
    return con



def focus_file(path: str | Any, rows: Iterable[dict[str, Any]]) -> str:
    """A warehouse file at ``path`` holding ``rows`` (as :func:`focus_rows` builds them), closed so that a command
    (``finops-kit check --warehouse PATH``) can open it; returns the path as a string."""
    con = connect(str(path), write=True)
    try:
        focus_rows(rows, con)
    finally:
        con.close()
    return str(path)

def ets_process(rng: np.random.Generator, n: int, trend: bool) -> np.ndarray:
    """``n`` days of cost from a known ETS(A,Ad,A) process, for interval-calibration tests and the benchmark.

    Level 200, weekly swing +-15, noise sd 5, smoothing alpha 0.2 (level), gamma 0.05 (season), damping 0.98.
    Trending: a slope of 1/day that itself drifts (beta 0.02); flat: no slope and beta 0. The forecast model is
    correctly specified for it, so any shortfall in coverage comes from estimating its parameters.
    """
    alpha, beta, gamma, phi, sigma = 0.2, 0.02 if trend else 0.0, 0.05, 0.98, 5.0
    level, slope = 200.0, 1.0 if trend else 0.0
    season = list(15 * np.sin(2 * np.pi * np.arange(7) / 7))
    y = np.empty(n)
    for t in range(n):
        e = rng.normal(0.0, sigma)
        s = season[t % 7]
        y[t] = level + phi * slope + s + e
        level, slope = level + phi * slope + alpha * e, phi * slope + beta * e
        season[t % 7] = s + gamma * e
    return y
