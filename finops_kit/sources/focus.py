"""FOCUS files (1.0, 1.1, 1.2; CSV, CSV.gz, parquet) -> FOCUS 1.2.

Real FOCUS exports are not always tidy: literal ``NULL`` strings, timestamps without ``T``/``Z``, enum values in
the wrong case, provider-specific columns without the ``x_`` prefix. This module upgrades older versions to the
1.2 column set (renames from ``data/focus_renames.csv``; columns new in 1.2 are NULL), normalizes enum spelling
against the spec's allowed values, and keeps every non-standard column as an ``x_`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from ..datafiles import data_rows
from ..schema import LINEAGE_COLUMNS, allowed_values, focus_column_names, focus_columns
from .base import (
    Source,
    StagedSource,
    ident,
    iso_guard,
    iso_timestamp,
    money_expr,
    period_expr,
    register,
    sql_str,
    timestamp_expr,
    x_column_name,
)

#: Lineage columns a FOCUS file may carry (the kit's own export) whose values describe the charge, not the file:
#: kept as they are. The others (format, file, ingest id, replacement key) are set by the ingest reading the file.
CARRIED_LINEAGE = ("x_UsageType", "x_Operation", "x_InstanceType", "x_AiWorkload")


@cache
def renames() -> dict[str, str]:
    return {r["old_name"]: r["new_name"] for r in data_rows("focus_renames.csv") if r["old_name"] != r["new_name"]}


def _squash(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def enum_normalizer(column_sql: str, column: str) -> str:
    """CASE expression mapping any spelling of an allowed value ('usage', 'ONE TIME') to the spec's spelling.

    Unknown values pass through unchanged (the validator and our tests flag them; dropping data would hide it).
    """
    values = allowed_values().get(column)
    if not values:
        return column_sql
    whens = " ".join(f"WHEN {sql_str(_squash(v))} THEN {sql_str(v)}" for v in values)
    squashed = f"regexp_replace(lower(trim({column_sql})), '[^a-z0-9]', '', 'g')"
    canonical = ", ".join(sql_str(v) for v in values)
    # fast path: values already spelled as the spec says skip the regex
    return (f"CASE WHEN {column_sql} IN ({canonical}) THEN {column_sql} "
            f"ELSE CASE {squashed} {whens} ELSE trim({column_sql}) END END")


def iso_text(expr: str) -> str:
    """The trimmed text of an ISO 8601 date/time, or NULL when it is not one (for diagnosis)."""
    t = f"trim(CAST({expr} AS VARCHAR))"
    return f"CASE WHEN {iso_guard(t)} THEN {t} END"


def utc_timestamp(expr: str) -> str:
    """:func:`~.base.iso_timestamp` for an expression of unknown type (prefer the type-aware ``timestamp_expr``)."""
    return iso_timestamp(f"trim(CAST({expr} AS VARCHAR))", raw=f"CAST({expr} AS VARCHAR)")


@register
class FocusSource(Source):
    name = "focus"
    description = "FOCUS 1.0/1.1/1.2 cost and usage files (any provider)"
    signature = ("BilledCost", "ChargePeriodStart", "BillingPeriodStart")
    required_columns = ("BilledCost", "EffectiveCost", "BillingPeriodStart", "BillingPeriodEnd",
                        "ChargePeriodStart", "ChargePeriodEnd", "BillingCurrency")
    numeric_columns = tuple(c.name for c in focus_columns() if c.focus_type == "Decimal")
    timestamp_columns = tuple(c.name for c in focus_columns() if c.focus_type == "Date/Time")
    key_family = "focus"

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        cols = {renames().get(c, c) for c in columns}
        return all(s in cols for s in cls.signature)

    def csv_options(self) -> dict[str, object]:
        return {**super().csv_options(), "nullstr": ["", "NULL", "null"]}

    def prepare_value(self, expr: str, typ: str) -> str:
        return iso_text(expr) if typ == "TIMESTAMPTZ" else f"trim({expr})"

    def _source_name(self, staged: StagedSource, focus_name: str) -> str | None:
        if focus_name in staged.columns:
            return focus_name
        return next((old for old, new in renames().items() if new == focus_name and old in staged.columns), None)

    def focus_sql(self, staged: StagedSource) -> str:
        exprs = []
        for col in focus_columns():
            src = self._source_name(staged, col.name)
            if src is None:
                continue  # columns new in later versions stay NULL
            ref = ident(src)
            if col.focus_type == "Decimal":
                expr = money_expr(staged, src)
            elif col.name in ("BillingPeriodStart", "BillingPeriodEnd"):
                expr = period_expr(staged, src)  # the period as written, never a converted instant
            elif col.focus_type == "Date/Time":
                expr = timestamp_expr(staged, src)
            elif col.focus_type == "JSON":
                expr = f"CAST(nullif(trim(CAST({ref} AS VARCHAR)), '') AS JSON)"
            elif col.name in allowed_values():
                expr = enum_normalizer(f"CAST({ref} AS VARCHAR)", col.name)
            else:
                expr = f"CAST({ref} AS VARCHAR)"
            exprs.append(f"{expr} AS {ident(col.name)}")
        exprs.append("_file AS x_SourceFile")
        provider = self._source_name(staged, "ProviderName")
        exprs.append(
            f"concat_ws('|', 'focus', {ident(provider) if provider else 'NULL'}, {ident('BillingAccountId')}, "
            f"strftime({period_expr(staged, 'BillingPeriodStart')}, '%Y-%m')) AS x_SourceKey"
            if "BillingAccountId" in staged.columns else "NULL AS x_SourceKey"
        )
        for src in CARRIED_LINEAGE:  # the kit's own export: what the original source said is kept
            if src in staged.columns:
                exprs.append(f"CAST({ident(src)} AS VARCHAR) AS {ident(src)}")
        for src, x_name in self.passthrough_columns(staged).items():
            exprs.append(f"CAST({ident(src)} AS VARCHAR) AS {ident(x_name)}")
        return f"SELECT {', '.join(exprs)} FROM {staged.view}"

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        # lineage columns in a file (the kit's own export) are not pass-through: this ingest writes its own
        # x_SourceFormat/x_SourceFile/x_IngestId/x_SourceKey, and passing them through too named each twice
        # ("Binder Error ... x_SourceFormat_1" on export -> ingest)
        known = set(focus_column_names()) | set(renames()) | {"_file"} | set(LINEAGE_COLUMNS)
        return {c: x_column_name(c) for c in staged.columns if c not in known}

    def source_totals_sql(self, staged: StagedSource) -> str:
        billed = money_expr(staged, self._source_name(staged, "BilledCost"))
        effective = money_expr(staged, self._source_name(staged, "EffectiveCost"))
        return (
            f"SELECT {period_expr(staged, 'BillingPeriodStart')} AS billing_period_start, "
            f"trim({ident('BillingCurrency')}) AS currency, count(*) AS source_rows, "
            f"sum({billed}) AS billed, sum({effective}) AS effective "
            f"FROM {staged.view} GROUP BY ALL"
        )
