"""Data quality of every ingest: invariants checked on the normalized rows, findings stored and summarized.

FOCUS input is checked, not trusted, and so is every other source's normalized output. Each rule is one of:

* **reject** — breaks an invariant the analyses rely on (a NULL BilledCost drops out of every total while the
  reconciliation, which sums the same NULLs, still says ok). The ingest fails with one line naming the file, the
  data row (where the source can locate it), the column, the value and what was expected; nothing is written.
* **report** — real providers emit it (charges outside their billing period, cost that differs from unit price
  times quantity after rounding or tiering): the rows are loaded, counted and their money summed.
* **repair** — a documented, lossless correction made on the way in (an enum value in the wrong case, a
  non-standard column given its ``x_`` prefix, a negative unit price whose sign moves to the quantity): counted,
  never silent. Rows carry their repairs in ``x_Repair``.

All rules run as one set-based aggregate over the rows an ingest wrote, inside its transaction. Findings go to the
``data_quality`` table (per ingest, file and rule: rows, BilledCost affected, cost difference); :func:`summary_line`
is the one line every report header shows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache

import duckdb

from .datafiles import data_rows
from .errors import InputError
from .schema import MONEY, allowed_values, focus_columns
from .sources.base import Source, StagedSource, ident, sql_str
from .warehouse import FOCUS_TABLE, has_table, in_file_order

TABLE = "data_quality"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
  ingest_id VARCHAR,
  source_format VARCHAR,
  source_file VARCHAR,
  rule VARCHAR,          -- see quality.rules() and REPAIRS
  kind VARCHAR,          -- report | repair | info (a reject never reaches the table: the ingest fails)
  column_name VARCHAR,
  rows BIGINT,
  billed_cost {MONEY},   -- sum of BilledCost of the rows concerned
  difference {MONEY},    -- report rules on cost: sum of |cost - unit price x quantity|
  detail VARCHAR
)
"""

#: Cost vs unit price x quantity: a difference is reported when it exceeds both a cent and 1% of the cost.
#: Providers round unit prices (AWS to 10 decimals, Azure to 4-8) and price some usage in tiers or blocks, so smaller
#: differences are rounding, not data errors.
COST_TOLERANCE_ABS = "0.01"
COST_TOLERANCE_REL = "0.01"

#: Repairs recorded per row in ``x_Repair`` (comma-separated) by the sources and the shared conformance step.
REPAIRS = {
    "enum_spelling": "an enumerated value in another case or spelling ('usage', 'ONE TIME') written as the spec's "
                     "value; the meaning is unchanged",
    "negative_unit_price": "a negative unit price made positive with the sign moved to PricingQuantity (FOCUS unit "
                           "prices are never negative; a refund is a negative quantity), so price x quantity is "
                           "unchanged",
    "region_name_without_id": "a RegionName whose region id is unknown cleared (RegionName MUST be NULL when RegionId "
                              "is NULL); the source's location text stays in the source's x_ column where it has one",
    "x_prefix": "a non-standard column kept under an x_ name (FOCUS custom columns must start with x_)",
}


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # reject | report
    column: str  # the column the message names
    condition: str  # SQL over the normalized FOCUS columns: true on an offending row
    expected: str  # what was expected, for the error message
    reason: str  # why the rule exists (docs and closing note)
    difference: str | None = None  # report rules on cost: the money difference of a row
    #: the kind for native (non-FOCUS) sources, whose exports we do not control: a reject that real exports in the
    #: corpus break (koku's test currency 'MC', GCP rows ending before they start) is reported for them instead
    native_kind: str | None = None
    #: value-set rules: the allowed values of ``column`` (``condition`` is then built from the values seen)
    allowed: tuple[str, ...] | None = None
    null_ok: bool = True

    def kind_for(self, source_name: str) -> str:
        return self.kind if source_name == "focus" or self.native_kind is None else self.native_kind


@cache
def currencies() -> tuple[str, ...]:
    """ISO 4217 codes accepted as FOCUS currencies (data/iso_4217_currencies.csv)."""
    return tuple(r["code"] for r in data_rows("iso_4217_currencies.csv"))


@cache
def rules() -> tuple[Rule, ...]:
    """Every reject and report rule, in the order an error is looked for."""
    out: list[Rule] = []
    for c in ("BilledCost", "EffectiveCost"):
        out.append(Rule("null_money", "reject", c, f"{c} IS NULL", "a number (mandatory FOCUS cost column)",
                        "a NULL cost drops out of every total while the reconciliation still balances"))
    for c in ("ListCost", "ContractedCost"):
        out.append(Rule("null_money", "report", c, f"{c} IS NULL", "a number (mandatory FOCUS cost column)",
                        "the official FOCUS sample has NULL ContractedCost rows; savings analyses treat a NULL list "
                        "or contracted cost as unknown, the billed and amortized totals do not depend on it"))
    for c in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
        out.append(Rule("null_date", "reject", c, f"{c} IS NULL", "a date/time (mandatory FOCUS period column)",
                        "a row without its period is in no month, no forecast and no scope"))
    out.append(Rule("currency", "reject", "BillingCurrency", "", "an ISO 4217 currency code such as USD",
                    "money is summed per currency; an unknown code cannot be converted or compared",
                    native_kind="report", allowed=currencies(), null_ok=False))
    # FOCUS 1.2: PricingCurrency is "the national or virtual currency" of the price (the spec's virtual-currency
    # example prices in 'Token'): a code outside ISO 4217 is reported, never refused; money is summed in
    # BillingCurrency, which must be ISO 4217
    out.append(Rule("currency", "report", "PricingCurrency", "", "an ISO 4217 currency code such as USD, or a "
                    "virtual currency (reported)", "a virtual currency cannot be converted or compared with a "
                    "national one; the prices in it are kept as given", allowed=currencies()))
    # NULL is refused only in Mandatory columns: Microsoft's FOCUS export leaves the Recommended ChargeFrequency empty
    required = {c.name for c in focus_columns() if c.feature_level == "Mandatory" and not c.allows_nulls}
    for col, values in allowed_values().items():
        out.append(Rule("allowed_values", "reject", col, "", f"one of {', '.join(values)} (FOCUS 1.2)",
                        "analyses branch on these values (a 'Refund' category is in no usage, purchase or credit "
                        "total)", allowed=values, null_ok=col not in required))
    for start, end in (("ChargePeriodStart", "ChargePeriodEnd"), ("BillingPeriodStart", "BillingPeriodEnd")):
        out.append(Rule("end_before_start", "reject", end, f"{end} < {start}", f"a time at or after {start}",
                        "a negative duration breaks hourly rates, day counts and period filters",
                        native_kind="report"))
    out.append(Rule("tags_not_object", "reject", "Tags", "Tags IS NOT NULL AND json_type(Tags) <> 'OBJECT'",
                    "a JSON object of tag keys and values", "attribution reads tags as key/value pairs"))
    out.append(Rule("charge_outside_billing_period", "report", "ChargePeriodStart",
                    "coalesce(ChargeClass, '') <> 'Correction' AND (ChargePeriodStart < BillingPeriodStart "
                    "OR ChargePeriodEnd > BillingPeriodEnd)",
                    "a charge period inside its billing period",
                    "providers bill late usage and period-spanning fees in a later month; the row belongs to its "
                    "billing period's invoice (corrections refer to earlier periods by design and are not counted)"))
    for cost, price in (("ListCost", "ListUnitPrice"), ("ContractedCost", "ContractedUnitPrice")):
        # the product of two DECIMAL(38,12) is DECIMAL(38,24), which holds less than 1e14: a larger cost or
        # product made the whole check fail (ConversionException). Exact in MONEY when the product fits, else in
        # DOUBLE (a report's difference, not a total), NULL only beyond what FOCUS's DECIMAL holds
        diff = (f"coalesce(try(abs({cost} - CAST({price} * PricingQuantity AS {MONEY}))), "
                f"try(CAST(abs(CAST({cost} AS DOUBLE) - CAST({price} AS DOUBLE) * CAST(PricingQuantity AS DOUBLE)) "
                f"AS {MONEY})))")
        out.append(Rule(f"{cost[:-4].lower()}_cost_vs_price", "report", cost,
                        f"{diff} > greatest({COST_TOLERANCE_ABS}, {COST_TOLERANCE_REL} * abs({cost}))",
                        f"{cost} = {price} x PricingQuantity",
                        "tiered and block pricing, minimum charges and rounded unit prices make real exports "
                        "differ; larger differences than rounding are worth a look but not a refusal",
                        difference=diff))
    return tuple(out)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``data_quality`` table if missing (also the reference schema of a FOCUS dataset's table)."""
    con.execute(_DDL)


@dataclass
class Finding:
    source_file: str
    rule: str
    kind: str
    column: str | None
    rows: int
    billed_cost: Decimal | None
    difference: Decimal | None = None
    detail: str | None = None


def check(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource, ingest_id: str,
          passthrough: dict[str, str], mapped: Callable[[StagedSource], str] | None = None) -> list[Finding]:
    """Check the rows ingest ``ingest_id`` wrote; raise :class:`InputError` on a reject, else store the findings.

    One aggregate over the new rows (grouped by source file) evaluates every rule; a second, over the few rows
    that carry ``x_Repair``, counts the repairs. ``mapped``: the ingest's own SELECT of the FOCUS rows of a staged
    source, with which a reject in a format that cannot map its rows back (the native ones) is located.
    """
    ensure_table(con)
    rs = _with_conditions(con, ingest_id, rules())
    renamed = source.renamed_columns(staged, passthrough)
    notes = source.file_notes(staged)
    xcols = list(renamed.items())
    # pass 1 over every new row: how many rows break each rule, per file (sum of CASE: cheaper than FILTERs)
    counts = [f"sum(CASE WHEN {r.condition} THEN 1 ELSE 0 END)::BIGINT" for r in rs]
    counts += [f"count({ident(x)})" for _, x in xcols] + ["count(*)"]
    per_file = con.execute(f"SELECT x_SourceFile, {', '.join(counts)} FROM {FOCUS_TABLE} WHERE x_IngestId = ? "
                           "GROUP BY x_SourceFile ORDER BY x_SourceFile", [ingest_id]).fetchall()
    found: list[Finding] = []
    hit_rules = sorted({i for _, *n in per_file for i, r in enumerate(rs) if n[i]})
    for file, *n in per_file:
        for i in hit_rules:
            r = rs[i]
            if n[i] and r.kind_for(source.name) == "reject":
                value = con.execute(f"SELECT CAST({ident(r.column)} AS VARCHAR) FROM {FOCUS_TABLE} "
                                    f"WHERE x_IngestId = ? AND x_SourceFile = ? AND ({r.condition}) LIMIT 1",
                                    [ingest_id, file]).fetchall()[0][0]
                raise _reject(con, source, staged, r, file, value, n[i], mapped)
    # pass 2, only over the rows some report rule matched: the money they carry
    money: dict[tuple[str, int], tuple] = {}
    if hit_rules:
        sums = ", ".join(f"sum(BilledCost) FILTER (WHERE {rs[i].condition}), "
                         + (f"sum({rs[i].difference}) FILTER (WHERE {rs[i].condition})" if rs[i].difference else "NULL")
                         for i in hit_rules)
        any_hit = " OR ".join(f"({rs[i].condition})" for i in hit_rules)
        for file, *m in con.execute(f"SELECT x_SourceFile, {sums} FROM {FOCUS_TABLE} WHERE x_IngestId = ? "
                                    f"AND ({any_hit}) GROUP BY x_SourceFile", [ingest_id]).fetchall():
            for k, i in enumerate(hit_rules):
                money[(file, i)] = (m[2 * k], m[2 * k + 1])
    for file, *n in per_file:
        for i in hit_rules:
            if n[i]:
                billed, diff = money.get((file, i), (None, None))
                found.append(Finding(file, rs[i].name, rs[i].kind_for(source.name), rs[i].column, n[i], billed, diff))
        for (src, x), c in zip(xcols, n[len(rs):-1], strict=True):
            if c:
                found.append(Finding(file, "x_prefix", "repair", x, c, None, detail=f"{src} -> {x}"))
        if file in notes:
            found.append(Finding(file, "detected_version", "info", None, n[-1], None, detail=notes[file]))
    for file, token, n, billed in con.execute(
            "SELECT x_SourceFile, token, count(*), sum(BilledCost) FROM (SELECT x_SourceFile, BilledCost, "
            f"unnest(string_split(x_Repair, ',')) AS token FROM {FOCUS_TABLE} WHERE x_IngestId = ? AND x_Repair IS NOT NULL) "
            "GROUP BY ALL ORDER BY ALL", [ingest_id]).fetchall():
        rule, _, column = token.partition(":")
        found.append(Finding(file, rule, "repair", column or None, n, billed))
    for f in found:
        con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [ingest_id, source.name, f.source_file, f.rule, f.kind, f.column, f.rows, f.billed_cost,
                     f.difference, f.detail])
    return found


def _with_conditions(con: duckdb.DuckDBPyConnection, ingest_id: str, rs: tuple[Rule, ...]) -> list[Rule]:
    """Value-set rules get the condition for the values this ingest actually has.

    Currencies and enums have a handful of distinct values: one pass collects them per column, so the main pass
    tests ``col IN (<the few bad ones>)`` instead of ``NOT IN (<180 currency codes>)`` per row (measured 1.1 s
    per 1.8M rows for the currency list alone)."""
    sets = [r for r in rs if r.allowed is not None]
    # one list per distinct column (BillingCurrency has two rules); list(DISTINCT) keeps a NULL as None
    columns = list(dict.fromkeys(r.column for r in sets))
    lists = con.execute("SELECT " + ", ".join(f"list(DISTINCT {ident(c)})" for c in columns)
                        + f" FROM {FOCUS_TABLE} WHERE x_IngestId = ?", [ingest_id]).fetchall()[0]
    by_column = dict(zip(columns, lists, strict=True))
    out = []
    for r in rs:
        if r.allowed is None:
            out.append(r)
            continue
        seen = by_column[r.column] or []
        bad = sorted(v for v in seen if v is not None and v not in r.allowed)
        parts = [f"{ident(r.column)} IN ({', '.join(sql_str(v) for v in bad)})"] if bad else []
        if None in seen and not r.null_ok:
            parts.append(f"{ident(r.column)} IS NULL")
        out.append(replace(r, condition=" OR ".join(parts) or "false"))
    return out


def _reject(con: duckdb.DuckDBPyConnection, source: Source, staged: StagedSource, rule: Rule, file: str,
            value: str | None, n: int, mapped: Callable[[StagedSource], str] | None = None) -> InputError:
    """The one-line error for a reject rule, at the first offending data row: where the source maps it back
    itself (FOCUS), else where the ingest's mapping of the file's first rows first produces an offending row."""
    located = source.locate(con, staged, rule.condition, rule.column, file)
    if located is None and mapped is not None:
        located = first_mapped_row(con, staged, file, rule.condition, rule.column, mapped)
    row = None
    if located is not None:
        row, value = located
    shown = "NULL" if value is None else repr(value)
    more = f" ({n:,} rows in this file)" if n > 1 else ""
    return InputError(file, f"{shown}; expected {rule.expected}{more}", column=rule.column, row=row)


def first_mapped_row(con: duckdb.DuckDBPyConnection, staged: StagedSource, file: str, condition: str, column: str,
                     mapped: Callable[[StagedSource], str]) -> tuple[int, str | None] | None:
    """(data row, normalized text of ``column``) of the first row of ``file`` whose FOCUS rows hold ``condition``.

    Why a search: a native export's row becomes FOCUS rows through the source's whole mapping (a GCP row and its
    credits, an AWS fee and its unused part, amortization over the month), which does not carry the source row's
    number. So the file's rows are numbered once in file order (one thread, insertion order kept; 1 = the first
    data row, as :class:`InputError` counts), and the smallest ``k`` whose first ``k`` rows, mapped exactly as the
    ingest maps them, give an offending row is found by bisection: ~log2(rows) runs of the mapping, only on the
    error path. None when the mapping cannot be run over part of the file or no prefix offends.
    """
    table, view = f"{staged.view}_located", f"{staged.view}_prefix"
    try:
        with in_file_order(con):
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT *, row_number() OVER () AS _located_row "
                        f"FROM {staged.view} WHERE _file = {sql_str(file)}")
        part = replace(staged, view=view)

        def offending(k: int) -> list[tuple]:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS "
                        f"SELECT * EXCLUDE (_located_row) FROM {table} WHERE _located_row <= {int(k)}")
            return con.execute(f"SELECT CAST({ident(column)} AS VARCHAR) FROM ({mapped(part)}) "
                               f"WHERE {condition} LIMIT 1").fetchall()

        lo, hi = 1, con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        if not hi or not offending(hi):
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            if offending(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo, offending(lo)[0][0]
    except duckdb.Error:
        return None
    finally:  # after a failed query the ingest's transaction is aborted (and rolled back by the caller)
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP VIEW IF EXISTS {view}")
            con.execute(f"DROP TABLE IF EXISTS {table}")


def finding_lines(findings: list[Finding]) -> list[str]:
    """What an ingest prints: one line per rule (summed over files), report rules first."""
    totals: dict[tuple[str, str, str | None], list] = {}
    for f in findings:
        if f.kind == "info":
            continue
        t = totals.setdefault((f.kind, f.rule, f.column), [0, Decimal(0), set()])
        t[0] += f.rows
        t[1] += f.billed_cost or 0
        t[2].add(f.source_file)
    lines = [f"{f.source_file}: {f.detail}" for f in findings if f.kind == "info"]
    for (kind, rule, column), (n, billed, files) in sorted(totals.items(), key=lambda kv: (kv[0][0] != "report",
                                                                                           kv[0][1:] )):
        what = rule + (f" ({column})" if column else "")
        money = f", BilledCost {billed:,.2f}" if kind == "report" or billed else ""
        lines.append(f"data quality {kind}: {what}: {n:,} rows in {len(files)} file(s){money}")
    return lines


def summary_line(con: duckdb.DuckDBPyConnection) -> str:
    """One line on the data quality of what the warehouse holds now (active ingests), for report headers."""
    # fetchall, not fetchone: DuckDB 2.0 keeps a partly fetched result open, and the notebook's next con.sql()
    # then failed with "connection has an unfinished result" (every report's first query after the header)
    if not has_table(con, TABLE):  # a table of a warehouse file, or a view of an opened FOCUS dataset
        return "Data quality: not recorded (the warehouse was ingested before data-quality checks)"
    rows = con.execute(
        f"""SELECT q.kind, q.rule, sum(q.rows)::BIGINT, sum(q.billed_cost),
                   string_agg(DISTINCT q.detail, '; ' ORDER BY q.detail)
            FROM {TABLE} q JOIN ingest_log l USING (ingest_id) WHERE l.status = 'active'
            GROUP BY q.kind, q.rule ORDER BY q.kind, q.rule""").fetchall()
    # 'info' rows (the FOCUS version a file was read as) are no finding: they follow the verdict, never replace it
    info = "; ".join(f"{rule.replace('_', ' ')} {n:,} rows" + (f" ({detail})" if detail else "")
                     for kind, rule, n, _billed, detail in rows if kind == "info")
    rows = [r[:4] for r in rows if r[0] != "info"]
    if not rows:
        return ("Data quality: no findings (no rows outside their billing period, no cost off its price x quantity, "
                "no repairs)" + (f"; noted: {info}" if info else ""))
    parts = []
    for kind in ("report", "repair"):
        items = [(rule, n, billed) for k, rule, n, billed in rows if k == kind]
        if items:
            shown = ", ".join(f"{rule.replace('_', ' ')} {n:,} rows" + (f" (BilledCost {billed:,.2f})"
                                                                         if kind == "report" else "")
                              for rule, n, billed in items)
            parts.append(f"{'reported' if kind == 'report' else 'repaired'}: {shown}")
    if info:
        parts.append(f"noted: {info}")
    return "Data quality: " + "; ".join(parts)


__all__ = ["REPAIRS", "Rule", "Finding", "rules", "check", "finding_lines", "summary_line"]
