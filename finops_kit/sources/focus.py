"""FOCUS Cost and Usage files (1.0 to 1.4; CSV, CSV.gz, parquet) -> FOCUS 1.2.

Real FOCUS exports are not always tidy: literal ``NULL`` strings, timestamps without ``T``/``Z``, enum values in
the wrong case, provider-specific columns without the ``x_`` prefix. This module upgrades older versions to the
1.2 column set (renames from ``data/focus_renames.csv``; columns new in 1.2 are NULL), reads 1.3 and 1.4 files into
it (their new columns such as ServiceProviderName, HostProviderName, Allocated* and ContractApplied are kept as
``x_`` columns; 1.4's ServiceProviderName stands in for the removed ProviderName and PublisherName), normalizes enum
spelling against the spec's allowed values, and keeps every non-standard column as an ``x_`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import duckdb

from ..datafiles import data_rows
from ..errors import InputError
from ..schema import (
    LINEAGE_COLUMNS,
    MONEY,
    allowed_values,
    columns_by_version,
    focus_column_names,
    focus_columns,
)
from .base import (
    Source,
    StagedSource,
    ident,
    iso_guard,
    iso_timestamp,
    money_expr,
    period_expr,
    read_header,
    register,
    sql_str,
    timestamp_expr,
    x_column_names,
)

#: Lineage columns a FOCUS file may carry (the kit's own export) whose values describe the charge, not the file:
#: kept as they are. The others (format, file, ingest id, replacement key) are set by the ingest reading the file.
CARRIED_LINEAGE = ("x_UsageType", "x_Operation", "x_InstanceType", "x_AiWorkload")


@cache
def rename_pairs() -> tuple[tuple[str, str], ...]:
    """(name in an older or newer file, FOCUS 1.2 column) from data/focus_renames.csv; one name may serve two."""
    return tuple((r["old_name"], r["new_name"]) for r in data_rows("focus_renames.csv")
                 if r["old_name"] != r["new_name"])


@cache
def renames() -> dict[str, str]:
    """{other version's name: FOCUS 1.2 name} (first entry per name)."""
    out: dict[str, str] = {}
    for old, new in rename_pairs():
        out.setdefault(old, new)
    return out


@cache
def later_columns() -> frozenset[str]:
    """Cost and Usage columns of FOCUS 1.3/1.4 that 1.2 does not have: kept as ``x_`` columns (and read in place
    of a removed 1.2 column where data/focus_renames.csv says so)."""
    return frozenset(c for c, levels in columns_by_version().items()
                     if not levels["1.2"] and (levels["1.3"] or levels["1.4"]))


def detect_version(header: Sequence[str]) -> str:
    """The FOCUS version of a Cost and Usage header, from the columns each version introduced or removed
    (data/focus_columns_by_version.csv): the newest version one of its columns belongs to; 1.4 also when
    ServiceProviderName stands without the ProviderName that 1.4 removed. A file that uses no optional column
    of a later version reads as the earliest version its columns allow."""
    cols = set(header)
    levels = columns_by_version()
    if ("ServiceProviderName" in cols and "ProviderName" not in cols) or any(
            c in cols and levels[c]["1.4"] and not levels[c]["1.3"] for c in levels):
        return "1.4"
    for version, before in (("1.3", "1.2"), ("1.2", "1.1"), ("1.1", "1.0")):
        if any(c in cols and levels[c][version] and not levels[c][before] for c in levels):
            return version
    return "1.0"


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
    description = "FOCUS 1.0-1.4 cost and usage files (any provider)"
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
        return next((old for old, new in rename_pairs() if new == focus_name and old in staged.columns), None)

    def file_notes(self, staged: StagedSource) -> dict[str, str]:
        """The FOCUS version each file was read as (printed at ingest and kept in data_quality)."""
        return {f: f"FOCUS {detect_version(read_header(f))} Cost and Usage (the newest version among its columns)"
                for f in staged.files}

    def column_expr(self, staged: StagedSource, column: str) -> str | None:
        """SQL for one FOCUS 1.2 column over the staged file, or None when the file does not have it."""
        col = next(c for c in focus_columns() if c.name == column)
        src = self._source_name(staged, col.name)
        if src is None:
            return None  # columns new in later versions stay NULL
        ref = ident(src)
        if col.focus_type == "Decimal":
            return money_expr(staged, src)
        if col.name in ("BillingPeriodStart", "BillingPeriodEnd"):
            return period_expr(staged, src)  # the period as written, never a converted instant
        if col.focus_type == "Date/Time":
            return timestamp_expr(staged, src)
        if col.focus_type == "JSON":
            return f"CAST(nullif(trim(CAST({ref} AS VARCHAR)), '') AS JSON)"
        if col.name in allowed_values():
            return enum_normalizer(f"CAST({ref} AS VARCHAR)", col.name)
        return f"CAST({ref} AS VARCHAR)"

    def repair_expr(self, staged: StagedSource) -> str:
        """``x_Repair`` tokens of the repairs made here: enum values respelled as the spec's (quality.REPAIRS)."""
        tokens, odd = [], []
        for column, values in allowed_values().items():
            src = self._source_name(staged, column)
            if src is None:
                continue
            raw = f"CAST({ident(src)} AS VARCHAR)"
            canonical = ", ".join(sql_str(v) for v in values)
            respelled = f"({raw} NOT IN ({canonical}) AND {enum_normalizer(raw, column)} IN ({canonical}))"
            odd.append(f"{raw} NOT IN ({canonical})")
            tokens.append(f"CASE WHEN {respelled} THEN {sql_str('enum_spelling:' + column)} END")
        if not tokens:
            return "CAST(NULL AS VARCHAR)"
        return f"CASE WHEN {' OR '.join(odd)} THEN nullif(concat_ws(',', {', '.join(tokens)}), '') END"

    def focus_sql(self, staged: StagedSource) -> str:
        exprs = []
        for col in focus_columns():
            expr = self.column_expr(staged, col.name)
            if expr is not None:
                exprs.append(f"{expr} AS {ident(col.name)}")
        exprs.append(f"{self.repair_expr(staged)} AS x_Repair")
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
        # columns of 1.3/1.4 are kept as x_ columns even where they also stand in for a removed 1.2 column
        # two extra columns with one x_ name ('cost center', 'cost-center') are both kept: x_column_names gives
        # the later ones a _2, _3 suffix, and keeps clear of the table's own columns in any case ('x_sourcefile')
        known = (set(focus_column_names()) | (set(renames()) - later_columns()) | {"_file"}
                 | set(LINEAGE_COLUMNS))
        reserved = {*focus_column_names(), *LINEAGE_COLUMNS, "x_AiWorkload_src"}
        return x_column_names([c for c in staged.columns if c not in known], reserved)

    def renamed_columns(self, staged: StagedSource, passthrough: dict[str, str]) -> dict[str, str]:
        """Custom columns the file wrote without the ``x_`` prefix FOCUS requires (kept under their x_ name)."""
        return {src: x for src, x in passthrough.items() if src != x and src not in later_columns()}

    def check_columns(self, staged: StagedSource) -> None:
        """Required columns present, and no FOCUS column twice in one header (in any case: 'BilledCost' and
        'billedcost'): which of the two is the cost is a guess, and reading both would double it."""
        spec = {c.lower(): c for c in (*focus_column_names(), *renames())}
        for f in staged.files:
            seen: dict[str, list[str]] = {}
            for name in read_header(f):
                if name.lower() in spec:
                    seen.setdefault(spec[name.lower()], []).append(name)
            dup = next(((c, names) for c, names in seen.items() if len(names) > 1), None)
            if dup:
                how = ("in different case (" + ", ".join(map(repr, sorted(dup[1]))) + ")"
                       if len(set(dup[1])) > 1 else f"{len(dup[1])} times")
                raise InputError(f, f"column {dup[0]!r} appears more than once {how}; expected it once",
                                 column=dup[0])
        super().check_columns(staged)

    def locate(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, condition: str, column: str,
               file: str) -> tuple[int, str | None] | None:
        """The first data row (1 = the row after the header) of ``file`` where ``condition`` holds, with the
        file's own text of ``column``."""
        cols = []
        for c in focus_columns():
            expr = self.column_expr(staged, c.name)
            cols.append(f"{expr if expr is not None else 'NULL'} AS {ident(c.name)}")
        src = self._source_name(staged, column)
        raw = f"CAST({ident(src)} AS VARCHAR)" if src else "NULL"
        return _first_row(con, staged, file, f"{raw} AS _raw, {', '.join(cols)}", condition)

    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """Numbers and dates as every source; then JSON columns (Tags, SkuPriceDetails) whose text is not JSON."""
        found = super().diagnose(con, staged, exc)
        if found.row is not None:
            return found
        for c in focus_columns():
            src = self._source_name(staged, c.name)
            if c.focus_type != "JSON" or src is None:
                continue
            raw = f"nullif(trim(CAST({ident(src)} AS VARCHAR)), '')"
            for f in staged.files:
                hit = _first_row(con, staged, f, f"{raw} AS _raw", "_raw IS NOT NULL AND NOT json_valid(_raw)")
                if hit:
                    return InputError(f, f"cannot parse {hit[1]!r}; expected a JSON object", column=c.name,
                                      row=hit[0])
        return found

    def source_totals_sql(self, staged: StagedSource) -> str:
        billed = money_expr(staged, self._source_name(staged, "BilledCost"))
        effective = money_expr(staged, self._source_name(staged, "EffectiveCost"))
        return (
            f"SELECT {period_expr(staged, 'BillingPeriodStart')} AS billing_period_start, "
            f"trim({ident('BillingCurrency')}) AS currency, count(*) AS source_rows, "
            f"sum({billed}) AS billed, sum({effective}) AS effective "
            f"FROM {staged.view} GROUP BY ALL"
        )


def _first_row(con: duckdb.DuckDBPyConnection, staged: StagedSource, file: str, select: str,
               condition: str) -> tuple[int, str | None] | None:
    """(data row, ``_raw``) of the first row of ``file`` where ``condition`` holds over ``select``.

    Only on the error path: rows are numbered in file order on one thread with insertion order kept (a parallel
    read numbers them in whatever order its threads finish), unless the staged view numbers them itself."""
    numbered = (staged.view if "_row" in staged.columns else
                f"(SELECT *, row_number() OVER (PARTITION BY _file) AS _row FROM {staged.view} "
                f"WHERE _file = {sql_str(file)})")
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")
    try:
        hit = con.execute(f"SELECT _row, _raw FROM (SELECT _row, {select} FROM {numbered} "
                          f"WHERE _file = {sql_str(file)}) WHERE {condition} ORDER BY _row LIMIT 1").fetchall()
        hit = hit[0] if hit else None
    except duckdb.Error:
        return None
    finally:
        con.execute(f"SET threads = {threads}")
        con.execute(f"SET preserve_insertion_order = {'true' if order else 'false'}")
    return (int(hit[0]), hit[1]) if hit else None


CONTRACT_COMMITMENT_TABLE = "focus_contract_commitment"
_CC_TYPES = {"Decimal": MONEY, "Date/Time": "TIMESTAMP", "JSON": "VARCHAR", "String": "VARCHAR"}


@cache
def contract_commitment_columns() -> tuple[tuple[str, str, str], ...]:
    """(column, version introduced, FOCUS data type) of the Contract Commitment dataset (1.3, expanded in 1.4)."""
    return tuple((r["ColumnId"], r["IntroducedVersion"], r["DataType"])
                 for r in data_rows("focus_contract_commitment_columns.csv"))


@register
class FocusContractCommitmentSource(Source):
    """The FOCUS 1.3/1.4 Contract Commitment dataset: negotiated commitments (EDP, MACC, RI and savings plan terms).

    It holds no charges, so it is not Cost and Usage: its rows go to their own table (one row per commitment; a
    re-delivered commitment replaces the stored one, as the dataset is the provider's current list) and the
    reconciliation, which proves charges, does not apply.
    """

    name = "focus-contract-commitment"
    description = "FOCUS 1.3/1.4 Contract Commitment dataset (loaded into its own table)"
    signature = ("ContractCommitmentId", "ContractCommitmentPeriodStart", "ContractCommitmentType")
    required_columns = ("ContractCommitmentId",)
    dataset_table = CONTRACT_COMMITMENT_TABLE

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        return all(c in columns for c in cls.signature) and "BilledCost" not in columns

    def csv_options(self) -> dict[str, object]:
        return {**super().csv_options(), "nullstr": ["", "NULL", "null"]}

    def load_dataset(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, ingest_id: str) -> int:
        cols = contract_commitment_columns()
        ddl = ", ".join(f"{ident(c)} {_CC_TYPES[t]}" for c, _, t in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {CONTRACT_COMMITMENT_TABLE} ({ddl}, x_FocusVersion VARCHAR, "
                    "x_SourceFile VARCHAR, x_IngestId VARCHAR)")
        newer = {c for c, v, _ in cols if v != "1.3"}
        exprs = []
        for c, _, t in cols:
            if c not in staged.columns:
                exprs.append(f"NULL AS {ident(c)}")
            elif t == "Decimal":
                exprs.append(f"{money_expr(staged, c)} AS {ident(c)}")
            elif t == "Date/Time":
                exprs.append(f"{timestamp_expr(staged, c)} AS {ident(c)}")
            else:
                exprs.append(f"nullif(trim(CAST({ident(c)} AS VARCHAR)), '') AS {ident(c)}")
        version = "1.4" if newer & set(staged.columns) else "1.3"
        select = (f"SELECT {', '.join(exprs)}, {sql_str(version)} AS x_FocusVersion, _file AS x_SourceFile, "
                  f"{sql_str(ingest_id)} AS x_IngestId FROM {staged.view}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _cc_new AS {select}")
        try:
            self._check(con, staged)
            con.execute(f"DELETE FROM {CONTRACT_COMMITMENT_TABLE} WHERE ContractCommitmentId IN "
                        "(SELECT ContractCommitmentId FROM _cc_new)")
            con.execute(f"INSERT INTO {CONTRACT_COMMITMENT_TABLE} BY NAME SELECT * FROM _cc_new")
            return con.execute("SELECT count(*) FROM _cc_new").fetchall()[0][0]
        finally:
            con.execute("DROP TABLE IF EXISTS _cc_new")

    def _check(self, con: duckdb.DuckDBPyConnection, staged: StagedSource) -> None:
        """The invariants a commitment needs: an id, a currency code, a period that does not end before it starts."""
        from ..quality import currencies

        codes = ", ".join(sql_str(c) for c in currencies())
        checks = [("ContractCommitmentId", "ContractCommitmentId IS NULL", "a commitment id"),
                  ("BillingCurrency", f"BillingCurrency IS NOT NULL AND BillingCurrency NOT IN ({codes})",
                   "an ISO 4217 currency code such as USD"),
                  ("ContractCommitmentPeriodEnd", "ContractCommitmentPeriodEnd < ContractCommitmentPeriodStart",
                   "a time at or after ContractCommitmentPeriodStart")]
        for column, condition, expected in checks:
            bad = con.execute(f"SELECT x_SourceFile, CAST({ident(column)} AS VARCHAR) FROM _cc_new WHERE {condition} "
                              "LIMIT 1").fetchall()
            bad = bad[0] if bad else None
            if bad:
                raw = f"CAST({ident(column)} AS VARCHAR)" if column in staged.columns else "NULL"
                cols = ", ".join(f"{ident(c)}" for c, _, _ in contract_commitment_columns() if c in staged.columns)
                hit = _first_row(con, staged, bad[0], f"{raw} AS _raw, {cols}",
                                 condition.replace("ContractCommitmentPeriodEnd < ContractCommitmentPeriodStart",
                                                   "TRY_CAST(ContractCommitmentPeriodEnd AS TIMESTAMP) < "
                                                   "TRY_CAST(ContractCommitmentPeriodStart AS TIMESTAMP)"))
                value = hit[1] if hit else bad[1]
                raise InputError(bad[0], f"{'NULL' if value is None else repr(value)}; expected {expected}",
                                 column=column, row=hit[0] if hit else None)

