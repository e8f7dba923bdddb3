"""The one internal schema: FOCUS 1.2 Cost and Usage columns, as DuckDB types.

The column list is data (``data/focus_1_2_columns.csv``, parsed from the FOCUS 1.2 specification, CC-BY-4.0), so
that a spec update is a reviewed CSV diff, not a code change. Money and quantities are DECIMAL end to end: a
float sum of a million line items drifts by cents, and the reconciliation proof would be meaningless.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources

#: Exact money: 38 digits, 12 after the point. CUR and GCP carry up to 10-12 decimals per line item;
#: 26 integer digits leave room for any bill.
MONEY = "DECIMAL(38,12)"
QUANTITY = "DECIMAL(38,12)"
#: The step of :data:`MONEY` (12 places), for money computed in Python (:func:`money_exact`).
MONEY_QUANTUM = Decimal("1e-12")


def money_exact(value: Decimal | int | str) -> Decimal:
    """``value`` at the warehouse's money scale (:data:`MONEY`, 12 places, half up as DuckDB casts): money a Python
    step divides (a month scaled by the share of it billed, a total split over months) stays exact to the same
    step as every amount the SQL returns, instead of the 28 significant digits of Decimal's default context (the
    expiry calendar held 9537.666666666666666666666667 as a monthly value)."""
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)

_DUCKDB_TYPES = {
    "Decimal": MONEY,
    "String": "VARCHAR",
    "Date/Time": "TIMESTAMP",
    "JSON": "JSON",
}

#: Lineage and enrichment columns every source module fills (FOCUS custom columns start with ``x_``).
LINEAGE_COLUMNS: dict[str, str] = {
    "x_SourceFormat": "VARCHAR",  # registry name of the source module, e.g. "aws-cur2"
    "x_SourceFile": "VARCHAR",  # path of the file the row came from
    "x_SourceKey": "VARCHAR",  # replacement key: a re-ingest of the same key replaces the earlier rows
    "x_IngestId": "VARCHAR",  # the ingest that wrote the row (ingest_log.ingest_id)
    "x_UsageType": "VARCHAR",  # provider usage type / SKU description (storage class, transfer type, ...)
    "x_Operation": "VARCHAR",  # provider operation, where the source has one
    "x_InstanceType": "VARCHAR",  # VM / instance / machine type, where the row is compute
    "x_AiWorkload": "VARCHAR",  # AI/ML classification (see data/ai_workloads.csv); NULL = not AI
    "x_Repair": "VARCHAR",  # documented repairs made to this row on the way in (quality.REPAIRS), comma-separated
}


@dataclass(frozen=True)
class FocusColumn:
    name: str
    feature_level: str  # Mandatory / Recommended / Conditional
    allows_nulls: bool
    focus_type: str  # Decimal / String / Date/Time / JSON
    duckdb_type: str


@cache
def focus_columns() -> tuple[FocusColumn, ...]:
    """All 57 FOCUS 1.2 Cost and Usage columns, in the spec's (alphabetical) order."""
    text = resources.files("finops_kit").joinpath("data/focus_1_2_columns.csv").read_text(encoding="utf-8")
    cols = []
    for row in csv.DictReader(text.splitlines()):
        cols.append(
            FocusColumn(
                name=row["ColumnId"],
                feature_level=row["FeatureLevel"],
                allows_nulls=row["AllowsNulls"] == "True",
                focus_type=row["DataType"],
                duckdb_type=_DUCKDB_TYPES[row["DataType"]],
            )
        )
    return tuple(cols)


@cache
def focus_column_names() -> tuple[str, ...]:
    return tuple(c.name for c in focus_columns())


@cache
def allowed_values() -> dict[str, tuple[str, ...]]:
    """Enumerated FOCUS 1.2 columns and their allowed values (ServiceCategory, ChargeCategory, ...)."""
    text = resources.files("finops_kit").joinpath("data/focus_1_2_allowed_values.csv").read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        out.setdefault(row["ColumnId"], []).append(row["Value"])
    return {k: tuple(v) for k, v in out.items()}


@cache
def service_subcategories() -> dict[str, str]:
    """ServiceSubcategory -> its ServiceCategory (FOCUS 1.2 pairs)."""
    text = resources.files("finops_kit").joinpath("data/focus_1_2_service_categories.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return {r["ServiceSubcategory"]: r["ServiceCategory"] for r in rows}


@cache
def columns_by_version() -> dict[str, dict[str, str]]:
    """Cost and Usage column -> {"1.0": level, ..., "1.4": level} ('' where the column is not in that version)."""
    from .datafiles import data_rows

    return {row["ColumnId"]: {v: row[f"FOCUS_{v}"] for v in ("1.0", "1.1", "1.2", "1.3", "1.4")}
            for row in data_rows("focus_columns_by_version.csv")}


def money_columns() -> tuple[str, ...]:
    return tuple(c.name for c in focus_columns() if c.focus_type == "Decimal")


def table_ddl(table: str = "focus") -> str:
    """CREATE TABLE statement for the warehouse's FOCUS table (FOCUS columns, then lineage columns)."""
    parts = [f'"{c.name}" {c.duckdb_type}' for c in focus_columns()]
    parts += [f'"{n}" {t}' for n, t in LINEAGE_COLUMNS.items()]
    return f"CREATE TABLE IF NOT EXISTS {table} (\n  " + ",\n  ".join(parts) + "\n)"
