"""Azure Cost Management exports (EA, MCA, legacy pay-as-you-go; actual and amortized) -> FOCUS 1.2.

Azure's own FOCUS export *is* FOCUS: it has BilledCost/ChargePeriodStart/BillingPeriodStart and is routed to the
``focus`` source (detected first), which keeps its ``x_`` columns. This module reads the provider-native exports.

Headers are data: ``data/azure_header_aliases.csv`` maps every known spelling (PascalCase, camelCase, legacy PAYG
``PreTaxCost``/``UsageDateTime``/``InstanceId``, localized ``Abonnement-GUID (SubscriptionGuid)``, a UTF-8 BOM) to one
canonical name, per file, so one ingest may mix header variants. EA quirks handled: ``Tags`` without outer braces,
``MM/DD/YYYY`` dates, inclusive end dates (FOCUS periods are [start, end): +1 day).

Actual vs amortized (Microsoft: "all amortized rows + only Purchase/Refund commitment rows from actual"):

* Each file's dataset is known from a ``manifest.json`` next to it (``"type": "ActualCost"/"AmortizedCost"``), else
  from its file or folder names (``actual`` / ``amortiz``), else from its content (unused reservation/savings-plan rows or priced
  commitment usage -> amortized; priced commitment purchases -> actual; neither -> actual, where both views agree).
* When both datasets of one scope (billing profile / account, else subscription) and billing period are ingested in
  one call, rows are matched one to one on (date, subscription, resource, meter, quantity, charge type, pricing
  model, benefit, product order): a matched pair is ONE FOCUS row with BilledCost from actual and EffectiveCost from
  amortized; an actual-only row (commitment purchases/refunds) has EffectiveCost 0; an amortized-only row (unused
  commitment) has BilledCost 0. This is Microsoft's rule written as a row match, so BilledCost sums to the actual
  total and EffectiveCost to the amortized total by construction and no cost is counted twice, even when the two
  exports disagree (``x_AzureDataset`` says where each row came from: ``actual+amortized``, ``actual``,
  ``amortized``).
* Only one dataset: actual -> BilledCost = EffectiveCost = Cost (the invoice view: purchases are not amortized,
  reservation-covered usage is 0); amortized -> EffectiveCost = Cost, and BilledCost = 0 for commitment-covered and
  unused-commitment rows (Microsoft's conversion), Cost otherwise.
* Re-exports of the same scope and period replace earlier data: ``x_SourceKey = azure|scope|YYYY-MM``.

Currency: ``BillingCurrency`` (or its aliases) per row; a file without any currency column is an error unless
``currency.assume_source_currency`` is set in ``finops.yaml`` (never a silent guess). MCA exports price in
``PricingCurrency`` (``UnitPrice``/``PayGPrice``, e.g. USD) and bill in ``BillingCurrency`` (e.g. EUR), with
``ExchangeRatePricingToBilling``: FOCUS 1.2 keeps every cost and ListUnitPrice/ContractedUnitPrice in the billing
currency, so prices are converted with that rate, and the file's own prices are PricingCurrencyListUnitPrice/
PricingCurrencyContractedUnitPrice. A file without ``PricingCurrency`` (EA, pay-as-you-go) prices in its billing
currency.

Units: an hour meter's ``Quantity`` is the usage in hours whatever its pricing block (a VM-day on a '100 Hours' meter
has Quantity 24): ConsumedQuantity = Quantity in ConsumedUnit 'Hours', PricingQuantity = Quantity / block in
PricingUnit '100 Hours' (Microsoft's FOCUS conversion; block sizes from ``data/azure_pricing_units.csv``, see
:func:`time_blocks`). ``AdditionalInfo.UsageType`` is kept as ``x_Operation`` (ComputeHR_SW: a VM's licence row,
which ``data/usage_units.csv`` counts without hours).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path

import duckdb

from ..datafiles import data_rows
from ..errors import InputError
from ..schema import MONEY
from ..warehouse import FOCUS_TABLE, first_row
from .base import Source, StagedSource, ident, read_header, register, sql_str

CANONICAL_EXTRA = ("_file", "_row", "_role", "_dmy")
#: columns the row match between actual and amortized uses (identical in both datasets for the same charge)
MATCH_KEY = ("Date", "SubscriptionId", "ResourceId", "MeterId", "Quantity", "ChargeType", "PricingModel",
             "BenefitId", "ReservationId", "ProductOrderId")
CURRENCY_ALIASES = ("BillingCurrency", "BillingCurrencyCode", "Currency", "billingCurrency")
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%d.%m.%Y")
X_COLUMNS = ("x_AzureDataset", "x_ChargeType", "x_PricingModel", "x_ResourceGroupName", "x_CostCenter",
             "x_SkuMeterCategory", "x_InvoiceSectionName", "x_SkuMeterId", "x_ResourceLocation")


def _data_rows(name: str) -> list[dict[str, str]]:
    return data_rows(name)


@cache
def time_blocks() -> tuple[tuple[str, int, str], ...]:
    """(UnitOfMeasure, PricingBlockSize, DistinctUnits) of ``data/azure_pricing_units.csv`` (the finops-toolkit's
    pricing units) whose distinct unit measures time (a unit of ``data/hour_units.csv``): '1 Hour', '10 Hours',
    '100 Hours', '1000 Hours', '100 Core Hours', '10 Minutes', ... The first row of a UnitOfMeasure listed twice wins.

    Why: a cost file's ``Quantity`` on such a meter is the usage in the distinct unit (a VM-day on a '100 Hours'
    meter has Quantity 24) and the block only prices it (Microsoft's FOCUS conversion: PricingQuantity = Quantity /
    PricingBlockSize). Kept as the ConsumedUnit, '100 Hours' made 24 hours 2,400 instance-hours, and '10 Hours'
    (not a time unit the hour table knew) none. Other units keep Quantity as a count of blocks (see the table)."""
    from ..units import hour_units  # here, not at import: units imports the sources package

    time_units = {u for u, _ in hour_units()}
    out: dict[str, tuple[str, int, str]] = {}
    for r in _data_rows("azure_pricing_units.csv"):
        uom, distinct = r["UnitOfMeasure"].strip(), r["DistinctUnits"].strip()
        if uom and distinct.lower() in time_units and uom not in out:
            out[uom] = (uom, int(r["PricingBlockSize"]), distinct)
    return tuple(out.values())


def per_block(block: int) -> str | None:
    """1 / ``block`` as an exact decimal literal of at most 8 decimals ('0.01' for 100, '0.02' for 50), None when
    it has none (60, 150). Why: DuckDB divides decimals in DOUBLE, which keeps about 16 significant digits, so
    Quantity / block would move PricingQuantity in its 12th decimal even for a block of 1; a product with an exact
    decimal stays exact."""
    r = Decimal(1) / Decimal(block)
    return f"{r:f}" if r * block == 1 and -r.as_tuple().exponent <= 8 else None


@cache
def header_aliases() -> dict[str, str]:
    """lower-case alias -> canonical column name."""
    return {r["alias"].lower(): r["canonical"] for r in _data_rows("azure_header_aliases.csv")}


@cache
def canonical_names() -> tuple[str, ...]:
    return tuple(dict.fromkeys(header_aliases().values()))


def canonical_header(name: str) -> str | None:
    """The canonical name of one header cell, or None when unknown."""
    n = name.replace("\ufeff", "").strip()
    m = re.search(r"\(([^()]+)\)\s*$", n)
    if m and m.group(1).strip().lower() in header_aliases():
        n = m.group(1).strip()
    return header_aliases().get(n.lower())


def header_map(columns: Sequence[str]) -> dict[int, str]:
    """Position -> canonical name for a file's header (the first spelling of a duplicated canonical wins)."""
    out: dict[int, str] = {}
    seen: set[str] = set()
    for i, c in enumerate(columns):
        can = canonical_header(c)
        if can and can not in seen:
            out[i] = can
            seen.add(can)
    return out


def _squash(expr: str) -> str:
    return f"regexp_replace(lower(trim(coalesce({expr}, ''))), '[^a-z0-9]', '', 'g')"


def _values(rows: Sequence[Sequence[str | None]]) -> str:
    return ", ".join("(" + ", ".join("NULL" if v in (None, "") else sql_str(v) for v in r) + ")" for r in rows)


#: the same formats with the day before the month (a file re-saved in a European locale): chosen per file on evidence,
#: see :func:`day_month_order`
DMY_FORMATS = tuple(f.replace("%m/%d", "%d/%m") for f in DATE_FORMATS if "%m/%d" in f)


def _date_text(expr: str) -> str:
    """Date text as strptime takes it: trimmed, fractional seconds cut to 6 digits (the usage-details API writes
    ``2023-08-01T00:00:00.0000000Z``, and ``%f`` reads at most 6)."""
    return f"regexp_replace(trim({expr}), '([.][0-9]{{6}})[0-9]+', '\\1')"


def azure_date(expr: str, dmy: str | None = "_dmy") -> str:
    """SQL: Azure date text (MM/DD/YYYY, ISO, ...) as a TIMESTAMP at midnight; NULL when unparseable. ``dmy``: the
    staged row's flag that its file writes DD/MM/YYYY (None: MM/DD/YYYY)."""
    mdy = "date_trunc('day', try_strptime(" + _date_text(expr) + ", " + _fmts(DATE_FORMATS) + "))"
    if dmy is None:
        return mdy
    return (f"CASE WHEN {dmy} THEN date_trunc('day', try_strptime({_date_text(expr)}, {_fmts(DMY_FORMATS)})) "
            f"ELSE {mdy} END")


def _fmts(formats: Sequence[str]) -> str:
    return "[" + ", ".join(sql_str(f) for f in formats) + "]"


def day_month_order(con: duckdb.DuckDBPyConnection, path: str, select: str) -> bool:
    """Whether the file behind ``select`` (canonical columns) writes its slash dates DD/MM/YYYY.

    Microsoft writes MM/DD/YYYY; a file re-saved in a European locale has DD/MM/YYYY. Only evidence decides, and
    the same order holds for every date column of the file:

    * a ``Date`` that reads only one way (a day over 12) decides;
    * else a ``BillingPeriodStartDate``/``EndDate`` that reads only one way (``05/31/2021``: MM/DD;
      ``31/08/2023``: DD/MM) decides;
    * else Microsoft's MM/DD.

    Why no more than that: a regression review found the guesses that went further wrong -- "the rows in one month
    under DD/MM and in several under MM/DD" moved a quarter of monthly charges on the 5th into May, and "the dates
    inside their billing period" refused a file for one late row. A file whose every date and period bound reads
    both ways is read as Microsoft writes it.
    """
    first = first_row(con, f"SELECT trim(Date) FROM ({select}) WHERE nullif(trim(Date), '') IS NOT NULL LIMIT 1")
    if first is None or not re.match(r"^[0-9]{1,2}/[0-9]{1,2}/", first[0]):
        return False  # ISO (or other) dates: no order to decide, and no second read of the file

    def read(col: str, dmy: bool) -> str:
        return f"try_strptime({_date_text(col)}, {_fmts(DMY_FORMATS if dmy else DATE_FORMATS)})"

    def only(col: str) -> str:  # (some value reads only MM/DD, some value reads only DD/MM) for a column
        v = f"nullif(trim({col}), '')"
        return (f"bool_or({v} IS NOT NULL AND {read(v, False)} IS NOT NULL AND {read(v, True)} IS NULL), "
                f"bool_or({v} IS NOT NULL AND {read(v, False)} IS NULL AND {read(v, True)} IS NOT NULL)")

    row = first_row(con, f"SELECT {only('Date')}, {only('BillingPeriodStartDate')}, {only('BillingPeriodEndDate')} "
                         f"FROM ({select})")
    if row is None:
        return False
    date_m, date_u, bs_m, bs_u, be_m, be_u = (bool(v) for v in row)
    if date_m != date_u:
        return date_u  # a Date reads only one way (both ways at once: the diagnosis names the bad row)
    period_m, period_u = bs_m or be_m, bs_u or be_u
    if period_m != period_u:
        return period_u
    return False


def manifest_role(path: str) -> str | None:
    """Dataset type from a Cost Management manifest.json beside the file (or up to two folders up)."""
    p = Path(path).resolve().parent
    for folder in (p, p.parent, p.parent.parent):
        for m in folder.glob("*anifest*.json"):
            try:
                text = m.read_text(encoding="utf-8-sig", errors="replace")[:200000]
            except OSError:
                continue
            found = re.search(r'"type"\s*:\s*"(ActualCost|AmortizedCost|Usage)"', text, re.IGNORECASE)
            if found:
                return "amortized" if found.group(1).lower() == "amortizedcost" else "actual"
    return None


def name_role(path: str) -> str | None:
    """Dataset from the file name, else from the nearest three folder names (``actual/``, ``…-amortized/``,
    Microsoft's ``<exportName>/<dates>/<runId>/`` layout). A name mentioning both words is no evidence."""
    p = Path(path)
    for names in ([p.name], [q.name for q in list(p.parents)[:3]]):
        low = " ".join(names).lower()
        amortized, actual = "amortiz" in low, "actual" in low
        if amortized != actual:
            return "amortized" if amortized else "actual"
        if amortized:  # both words: ambiguous, let the content decide
            return None
    return None


def _assumed_currency() -> str | None:
    from ..config import load_config, section

    try:
        cur = section(section(load_config(), "currency", {}), "assume_source_currency")
    except Exception:  # a broken config is reported by the modules that own it
        return None
    return str(cur).strip().upper() if cur else None


@register
class AzureCostSource(Source):
    name = "azure"
    provider_name = "Microsoft"
    description = "Azure Cost Management export (EA, MCA, pay-as-you-go; actual and/or amortized; any header variant)"
    signature = ("Date|UsageDateTime", "Cost|CostInBillingCurrency|PreTaxCost", "MeterCategory|MeterId|ConsumedService")
    required_columns = ("Date", "Cost")
    numeric_columns = ("Cost", "Quantity", "PayGPrice", "UnitPrice", "PayGCost", "ExchangeRatePricingToBilling")
    timestamp_columns = ("Date",)
    key_family = "azure"
    rows_restated = True  # a month-to-date re-export restates rows in place: two runs are two versions

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        can = {canonical_header(c) for c in columns}
        markers = {"MeterCategory", "MeterId", "MeterName", "ConsumedService", "SubscriptionId", "ResourceGroup",
                   "ChargeType", "PricingModel", "ResourceId"}
        return bool({"Date", "Cost"} & can) and len(markers & can) >= 2

    # ---- staging -------------------------------------------------------------------------------------------
    def stage(self, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
        parts, present, no_currency = [], set(), []
        for f in files:
            reader, described = self._reader(con, f)
            hmap = header_map(read_header(f))
            by_name = {hmap[i]: described[i] for i in hmap if i < len(described)}
            if "BillingCurrency" not in by_name:
                no_currency.append(f)
            present |= set(by_name)
            exprs = [f"{ident(by_name[c])} AS {ident(c)}" if c in by_name else f"CAST(NULL AS VARCHAR) AS {ident(c)}"
                     for c in canonical_names()]
            if "BillingCurrency" not in by_name and _assumed_currency():
                exprs[canonical_names().index("BillingCurrency")] = f"{sql_str(_assumed_currency())} AS BillingCurrency"
            exprs += [f"{sql_str(f)} AS _file", "row_number() OVER () AS _row"]
            parts.append((f, f"SELECT {', '.join(exprs)} FROM {reader}"))
        if no_currency and not _assumed_currency():
            raise InputError(no_currency[0], "no currency column (BillingCurrency, BillingCurrencyCode, Currency); the "
                             "costs' currency is unknown and mixing it with other currencies would be silent: add "
                             "the column, or set currency.assume_source_currency in finops.yaml")
        roles = {f: manifest_role(f) or name_role(f) or self._content_role(con, sql) for f, sql in parts}
        dmy = {f: day_month_order(con, f, sql) for f, sql in parts}
        union = " UNION ALL ".join(f"SELECT *, {sql_str(roles[f])} AS _role, {str(dmy[f]).upper()} AS _dmy "
                                   f"FROM ({sql})" for f, sql in parts)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {union}")
        cols = [c for c in canonical_names() if c in present or c == "BillingCurrency"] + list(CANONICAL_EXTRA)
        return StagedSource(view=view, columns=cols, files=files, extra={"roles": roles, "dmy": dmy})

    def file_notes(self, staged: StagedSource) -> dict[str, str]:
        """Files whose dates were read day first (see :func:`day_month_order`)."""
        return {f: "dates read as DD/MM/YYYY (day first), not Microsoft's MM/DD/YYYY: the file's dates say so"
                for f, dmy in staged.extra.get("dmy", {}).items() if dmy}

    @staticmethod
    def _reader(con: duckdb.DuckDBPyConnection, path: str) -> tuple[str, list[str]]:
        """read_csv over one export and its column names. Exports edited on Windows mix CRLF and LF line ends,
        which DuckDB's strict sniffer rejects: then the file is read again with strict_mode off (still RFC 4180
        quoting, and the header decides the column count)."""
        base = (f"read_csv({sql_str(path)}, header = true, all_varchar = true, delim = ',', quote = '\"', "
                f"escape = '\"', nullstr = ['', 'NULL'], null_padding = true")
        probe = con.cursor()  # a failed sniff must not abort the ingest's transaction
        try:
            for reader in (base + ")", base + ", strict_mode = false)"):
                try:
                    return reader, [r[0] for r in probe.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
                except duckdb.Error as exc:
                    last = exc
            raise last
        finally:
            probe.close()

    def _content_role(self, con: duckdb.DuckDBPyConnection, select: str) -> str:
        commit = f"{_squash('PricingModel')} IN ('reservation', 'savingsplan')"
        cost = f"coalesce(TRY_CAST(trim(Cost) AS {MONEY}), 0)"
        row = first_row(con,
            f"SELECT bool_or({_squash('ChargeType')} IN ('unusedreservation', 'unusedsavingsplan') "
            f"  OR ({commit} AND {_squash('ChargeType')} = 'usage' AND {cost} <> 0)), "
            f"bool_or({commit} AND {_squash('ChargeType')} IN ('purchase', 'refund') AND {cost} <> 0) "
            f"FROM ({select})")
        return "amortized" if row[0] and not row[1] else "actual"

    #: the staged row includes its dataset (_role): the same charge is in the actual and the amortized export
    row_identity = "values in every column and the same dataset (actual or amortized)"

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        return {x: x for x in X_COLUMNS}

    # ---- mapping -------------------------------------------------------------------------------------------
    def _rows_cte(self, staged: StagedSource) -> str:
        """Typed rows with scope, billing period, charge/pricing maps and the match key."""
        charge = _values([(_sq(r["ChargeType"]), r["ChargeCategory"], r["ChargeClass"], r["CommitmentDiscountStatus"])
                          for r in _data_rows("azure_charge_types.csv")])
        pricing = _values([(_sq(r["PricingModel"]), r["PricingCategory"], r["CommitmentDiscountType"],
                            r["CommitmentDiscountCategory"]) for r in _data_rows("azure_pricing_models.csv")])
        key = ", ".join(f"coalesce(trim({ident(c)}), '')" for c in MATCH_KEY)
        return f"""
ct(k, cat, cls, status) AS (VALUES {charge}),
pm(k, pcat, ctype, ccat) AS (VALUES {pricing}),
rows AS (
  SELECT v.*,
    CAST(trim(v.Cost) AS {MONEY}) AS _cost,
    {azure_date('v.Date')} AS _date,
    coalesce({azure_date('v.BillingPeriodStartDate')}, date_trunc('month', {azure_date('v.Date')})) AS _period,
    coalesce(v.BillingProfileId, v.BillingAccountId, v.SubscriptionId) AS _scope,
    coalesce(v.BillingProfileName, v.BillingAccountName, v.SubscriptionName) AS _scope_name,
    coalesce(ct.cat, error('unknown ChargeType')) AS _charge_category, ct.cls AS _charge_class, ct.status AS _status,
    coalesce(pm.pcat, error('unknown PricingModel')) AS _pricing_category, pm.ctype AS _ctype, pm.ccat AS _ccat,
    pm.k IN ('reservation', 'savingsplan') AND ct.k IN ('usage', 'unusedreservation', 'unusedsavingsplan')
      AS _commitment_usage,
    concat_ws(chr(31), {key}) AS _key
  FROM {staged.view} v
  LEFT JOIN ct ON ct.k = CASE WHEN {_squash('v.ChargeType')} = '' THEN 'usage' ELSE {_squash('v.ChargeType')} END
  LEFT JOIN pm ON pm.k = CASE WHEN {_squash('v.PricingModel')} = '' THEN 'ondemand'
                              ELSE {_squash('v.PricingModel')} END
)"""

    def focus_sql(self, staged: StagedSource) -> str:
        cols = [c for c in canonical_names()] + ["_file", "_row", "_role", "_dmy", "_cost", "_date", "_period", "_scope",
                                                 "_scope_name", "_charge_category", "_charge_class", "_status",
                                                 "_pricing_category", "_ctype", "_ccat", "_commitment_usage"]
        coalesced = ", ".join(f"coalesce(m.{ident(c)}, a.{ident(c)}) AS {ident(c)}" for c in cols)
        svc_rows = _data_rows("azure_services.csv")
        svc = _values([(str(i), r["ConsumedService"], r["ResourceType"], r["ServiceName"], r["ServiceCategory"],
                        r["ServiceSubcategory"]) for i, r in enumerate(svc_rows)])
        tags = "trim(Tags)"
        tags_json = (f"CASE WHEN {tags} IS NULL OR {tags} IN ('', '{{}}') THEN NULL "
                     f"WHEN starts_with({tags}, '{{') THEN {tags} ELSE '{{' || {tags} || '}}' END")
        info = "trim(AdditionalInfo)"
        info_json = f"CASE WHEN starts_with({info}, '{{') THEN {info} ELSE '{{' || {info} || '}}' END"
        from ..units import hours_per_unit_sql  # here, not at import: units imports the sources package

        # the usage's own unit ('Hours' for a '100 Hours' meter) and the quantity priced (Quantity / block): one
        # table, data/azure_pricing_units.csv, through time_blocks(); other units are counted in their blocks
        consumed_unit = "coalesce(_blk.distinct_unit, UnitOfMeasure)"
        hours_sql = hours_per_unit_sql(consumed_unit)
        blocks = _values([(u, str(b), per_block(b), d) for u, b, d in time_blocks()])
        ratio = (f"CASE WHEN {info} <> '' AND json_valid({info_json}) THEN TRY_CAST(json_extract_string({info_json}, "
                 f"'$.RINormalizationRatio') AS DECIMAL(18,6)) END")
        money = lambda e: f"CAST(trim({e}) AS {MONEY})"  # noqa: E731
        # a cost from a unit price (pricing currency) in the billing currency: price x quantity x _fx; without a
        # price or quantity the row's own billed cost, as for any source without prices
        pricing_quantity = (f"CASE WHEN _blk.per_block IS NOT NULL "
                            f"THEN CAST({money('Quantity')} * CAST(_blk.per_block AS DECIMAL(18,8)) AS {MONEY}) "
                            f"WHEN _blk.block_size IS NOT NULL "
                            f"THEN CAST({money('Quantity')} / CAST(_blk.block_size AS INTEGER) AS {MONEY}) "
                            f"ELSE {money('Quantity')} END")
        # ... per block: Microsoft's ContractedCost = UnitPrice x Quantity / PricingBlockSize
        from_price = lambda price: (f"CASE WHEN {money(price)} * {money('Quantity')} IS NULL THEN _billed "  # noqa: E731
                                    f"ELSE CAST({money(price)} * {pricing_quantity} AS {MONEY}) * _fx END")
        return f"""
WITH {self._rows_cte(staged)},
sp AS (SELECT _scope, _period, bool_or(_role = 'actual') AND bool_or(_role = 'amortized') AS _paired
       FROM rows GROUP BY ALL),
keyed AS (
  SELECT rows.*, sp._paired,
    row_number() OVER (PARTITION BY rows._scope, rows._period, rows._role, rows._key ORDER BY rows._file, rows._row)
      AS _occ
  FROM rows JOIN sp ON sp._scope IS NOT DISTINCT FROM rows._scope AND sp._period IS NOT DISTINCT FROM rows._period
),
joined AS (
  SELECT {coalesced},
    coalesce(a._cost, 0) AS _billed, coalesce(m._cost, 0) AS _effective,
    CASE WHEN a._file IS NULL THEN 'amortized' WHEN m._file IS NULL THEN 'actual' ELSE 'actual+amortized' END
      AS x_AzureDataset
  FROM (SELECT * FROM keyed WHERE _paired AND _role = 'actual') a
  FULL OUTER JOIN (SELECT * FROM keyed WHERE _paired AND _role = 'amortized') m
    ON a._scope IS NOT DISTINCT FROM m._scope AND a._period = m._period AND a._key = m._key AND a._occ = m._occ
),
single AS (
  SELECT {', '.join(ident(c) for c in cols)},
    CASE WHEN _role = 'amortized' AND _commitment_usage THEN 0 ELSE _cost END AS _billed,
    _cost AS _effective,
    _role AS x_AzureDataset
  FROM keyed WHERE NOT _paired
),
allrows AS (SELECT * FROM joined UNION ALL BY NAME SELECT * FROM single),
svc(ord, consumed, rtype, name, cat, sub) AS (VALUES {svc}),
by_type AS (SELECT rtype, arg_min(name, CAST(ord AS INT)) AS name, arg_min(cat, CAST(ord AS INT)) AS cat,
                   arg_min(sub, CAST(ord AS INT)) AS sub FROM svc WHERE rtype IS NOT NULL GROUP BY rtype),
by_consumed AS (SELECT consumed,
                   arg_min(name, CAST(ord AS INT) + CASE WHEN starts_with(rtype, consumed || '/') THEN 0
                                                         ELSE 100000 END) AS name,
                   arg_min(cat, CAST(ord AS INT) + CASE WHEN starts_with(rtype, consumed || '/') THEN 0
                                                        ELSE 100000 END) AS cat,
                   arg_min(sub, CAST(ord AS INT) + CASE WHEN starts_with(rtype, consumed || '/') THEN 0
                                                        ELSE 100000 END) AS sub
                FROM svc WHERE consumed IS NOT NULL GROUP BY consumed),
typed AS (
  SELECT allrows.*,
    nullif(regexp_extract(lower(coalesce(ResourceId, '')), '/providers/([^/]+/[^/]+)', 1), '') AS _rtype,
    upper(nullif(trim(PricingCurrency), '')) AS _pricing_currency
  FROM allrows
),
-- _fx: billing-currency units per pricing-currency unit. 1 when the prices are in the billing currency (no
-- PricingCurrency: EA and pay-as-you-go; or the same code), else ExchangeRatePricingToBilling. When that rate is
-- missing the converted costs and prices are NULL (unknown, reported by the quality check), never the unconverted
-- figure under the billing currency's code; ListCost then still comes from PaygCostInBillingCurrency when the file
-- has it. (Cost / CostInPricingCurrency is no exact rate: both are rounded, and 0 on covered usage.)
priced AS (
  SELECT typed.*,
    CASE WHEN coalesce(_pricing_currency, upper(trim(BillingCurrency))) = upper(trim(BillingCurrency)) THEN 1
         ELSE {money('ExchangeRatePricingToBilling')} END AS _fx
  FROM typed
)
SELECT
  {sql_str(self.provider_name)} AS ProviderName,
  coalesce(PublisherName, 'Microsoft') AS PublisherName,
  coalesce(PartnerName, ResellerName, 'Microsoft') AS InvoiceIssuerName,
  _scope AS BillingAccountId,
  _scope_name AS BillingAccountName,
  CASE WHEN BillingProfileId IS NOT NULL THEN 'Billing Profile' WHEN BillingAccountId IS NOT NULL
       THEN 'Billing Account' ELSE 'Subscription' END AS BillingAccountType,
  SubscriptionId AS SubAccountId,
  SubscriptionName AS SubAccountName,
  CASE WHEN SubscriptionId IS NOT NULL THEN 'Subscription' END AS SubAccountType,
  CASE WHEN trim(coalesce(BillingCurrency, '')) = '' THEN error('empty currency')
       ELSE upper(trim(BillingCurrency)) END AS BillingCurrency,
  _period AS BillingPeriodStart,
  coalesce({azure_date('BillingPeriodEndDate')} + INTERVAL 1 DAY, _period + INTERVAL 1 MONTH) AS BillingPeriodEnd,
  CASE WHEN _date IS NULL THEN error('unparseable Date') ELSE _date END AS ChargePeriodStart,
  _date + INTERVAL 1 DAY AS ChargePeriodEnd,
  _charge_category AS ChargeCategory,
  _charge_class AS ChargeClass,
  CASE {_squash('Frequency')} WHEN 'usagebased' THEN 'Usage-Based' WHEN 'recurring' THEN 'Recurring'
       WHEN 'onetime' THEN 'One-Time' ELSE CASE WHEN _charge_category = 'Purchase' THEN 'One-Time'
       ELSE 'Usage-Based' END END AS ChargeFrequency,
  coalesce(ProductName, MeterName, MeterCategory) AS ChargeDescription,
  _billed AS BilledCost,
  _effective AS EffectiveCost,
  coalesce({money('PayGCost')}, {from_price('PayGPrice')}) AS ListCost,
  {from_price('UnitPrice')} AS ContractedCost,
  {money('PayGPrice')} * _fx AS ListUnitPrice,
  {money('UnitPrice')} * _fx AS ContractedUnitPrice,
  _pricing_currency AS PricingCurrency,
  {money('PayGPrice')} AS PricingCurrencyListUnitPrice,
  {money('UnitPrice')} AS PricingCurrencyContractedUnitPrice,
  {money('Quantity')} AS ConsumedQuantity,
  {consumed_unit} AS ConsumedUnit,
  {pricing_quantity} AS PricingQuantity,
  UnitOfMeasure AS PricingUnit,
  CASE WHEN _charge_category IN ('Usage', 'Purchase') THEN _pricing_category END AS PricingCategory,
  coalesce(BenefitId, CASE WHEN _ctype IS NOT NULL THEN ReservationId END) AS CommitmentDiscountId,
  coalesce(BenefitName, CASE WHEN _ctype IS NOT NULL THEN ReservationName END) AS CommitmentDiscountName,
  CASE WHEN coalesce(BenefitId, ReservationId) IS NOT NULL THEN _ctype END AS CommitmentDiscountType,
  CASE WHEN coalesce(BenefitId, ReservationId) IS NOT NULL THEN _ccat END AS CommitmentDiscountCategory,
  CASE WHEN _status IS NOT NULL THEN _status
       WHEN _commitment_usage AND coalesce(BenefitId, ReservationId) IS NOT NULL THEN 'Used' END
    AS CommitmentDiscountStatus,
  -- FOCUS 1.2 CommitmentDiscountQuantity/Unit (Microsoft's own FocusCost export leaves them empty). A reservation
  -- (category Usage) is counted in hours of the reserved size: Quantity (the usage in the distinct unit, whatever the
  -- pricing block: 24 on a '100 Hours' meter) x hours per ConsumedUnit (data/hour_units.csv: 'Hours' 1, 'Minutes'
  -- 1/60) x the instance-size-flexibility ratio AdditionalInfo.RINormalizationRatio (a Standard_DS2_v2
  -- hour uses 2 hours of a DS1_v2 reservation; 1 when absent), on covered and UnusedReservation rows alike. A savings
  -- plan (category Spend) in commitment dollars: the amortized cost of its covered / UnusedSavingsPlan rows and the
  -- amount of its purchases. A reservation purchase states a count of reservations, not hours: NULL (as AWS's RI Fee).
  CASE WHEN coalesce(BenefitId, ReservationId) IS NULL OR _ctype IS NULL THEN NULL
       WHEN _ccat = 'Usage' AND _charge_category = 'Usage'
         THEN CAST(CAST({money('Quantity')} * CAST({hours_sql} AS DECIMAL(18,6)) AS {MONEY}) * coalesce({ratio}, 1) AS {MONEY})
       WHEN _ccat = 'Spend' AND _charge_category = 'Usage' THEN _effective
       WHEN _ccat = 'Spend' AND _charge_category = 'Purchase' THEN _billed END AS CommitmentDiscountQuantity,
  CASE WHEN coalesce(BenefitId, ReservationId) IS NULL OR _ctype IS NULL THEN NULL
       WHEN _ccat = 'Usage' AND _charge_category = 'Usage' AND {hours_sql} IS NOT NULL THEN 'Hours'
       WHEN _ccat = 'Spend' AND _charge_category IN ('Usage', 'Purchase') THEN upper(trim(BillingCurrency)) END
    AS CommitmentDiscountUnit,
  InvoiceId AS InvoiceId,
  ResourceId AS ResourceId,
  coalesce(ResourceName, nullif(regexp_extract(coalesce(ResourceId, ''), '([^/]+)$', 1), '')) AS ResourceName,
  _rtype AS ResourceType,
  CASE WHEN NOT contains(coalesce(ResourceLocation, ' '), ' ') THEN lower(ResourceLocation) END AS RegionId,
  coalesce(Location, ResourceLocation) AS RegionName,
  AvailabilityZone AS AvailabilityZone,
  coalesce(bt.name, bc.name, MeterCategory, ServiceName, ProductOrderName, ProductName, 'Unknown') AS ServiceName,
  coalesce(bt.cat, bc.cat, 'Other') AS ServiceCategory,
  coalesce(bt.sub, bc.sub, 'Other (Other)') AS ServiceSubcategory,
  coalesce(ProductId, PartNumber) AS SkuId,
  -- a price needs its SKU (SkuPriceId-C-008: one parent SkuId); Marketplace rows have a meter but no product id
  CASE WHEN coalesce(ProductId, PartNumber) IS NOT NULL THEN MeterId END AS SkuPriceId,
  MeterId AS x_SkuMeterId,
  ResourceLocation AS x_ResourceLocation,
  CASE WHEN ({tags_json}) IS NULL THEN NULL WHEN CASE WHEN json_valid({tags_json}) THEN json_type({tags_json}) = 'OBJECT' ELSE false END
       THEN CAST({tags_json} AS JSON) ELSE error('unparseable Tags') END AS Tags,
  nullif(concat_ws(' ', MeterSubCategory, MeterName), '') AS x_UsageType,
  CASE WHEN {info} <> '' AND json_valid({info_json}) THEN json_extract_string({info_json}, '$.ServiceType') END
    AS x_InstanceType,
  -- the meter's usage kind: ComputeHR (the VM's compute hours) or ComputeHR_SW (its premium software / licence
  -- charge, which carries the same VM size in ServiceType: data/usage_units.csv counts it as a licence, no hours)
  CASE WHEN {info} <> '' AND json_valid({info_json}) THEN json_extract_string({info_json}, '$.UsageType') END
    AS x_Operation,
  x_AzureDataset,
  ChargeType AS x_ChargeType,
  PricingModel AS x_PricingModel,
  ResourceGroup AS x_ResourceGroupName,
  CostCenter AS x_CostCenter,
  MeterCategory AS x_SkuMeterCategory,
  InvoiceSectionName AS x_InvoiceSectionName,
  _file AS x_SourceFile,
  concat_ws('|', 'azure', _scope, strftime(_period, '%Y-%m')) AS x_SourceKey
FROM priced
LEFT JOIN by_type bt ON bt.rtype = priced._rtype
LEFT JOIN by_consumed bc ON bc.consumed = lower(trim(priced.ConsumedService))
LEFT JOIN (VALUES {blocks}) _blk(uom, block_size, per_block, distinct_unit) ON _blk.uom = trim(priced.UnitOfMeasure)
"""

    def source_totals_sql(self, staged: StagedSource) -> str:
        """Billed from the actual dataset and effective from the amortized one, per period and currency.

        Computed per dataset from the raw rows (no row matching), so it checks the matching. A scope/period with
        only one dataset: actual -> both totals from it; amortized -> effective = all, billed = all but
        commitment-covered and unused-commitment rows (Microsoft's conversion).
        """
        return f"""
WITH {self._rows_cte(staged)},
t AS (
  SELECT _scope, _period, upper(trim(BillingCurrency)) AS currency, _role, count(*) AS n, sum(_cost) AS c,
         coalesce(sum(_cost) FILTER (WHERE NOT _commitment_usage), 0) AS c_billable
  FROM rows GROUP BY ALL
),
sp AS (SELECT _scope, _period, bool_or(_role = 'actual') AS has_a, bool_or(_role = 'amortized') AS has_m
       FROM t GROUP BY ALL)
SELECT t._period AS billing_period_start, currency, sum(n) AS source_rows,
  sum(CASE WHEN _role = 'actual' THEN c WHEN NOT has_a THEN c_billable ELSE 0 END) AS billed,
  sum(CASE WHEN _role = 'amortized' THEN c WHEN NOT has_m THEN c ELSE 0 END) AS effective
FROM t JOIN sp ON sp._scope IS NOT DISTINCT FROM t._scope AND sp._period = t._period
GROUP BY ALL
"""

    stored_conflict_columns = ("x_SourceKey", "x_IngestId", "x_AzureDataset", "x_SourceFile", "x_PricingModel")

    @classmethod
    def stored_conflict(cls, con: duckdb.DuckDBPyConnection, ingest_id: str, keys: list[str],
                        this_call: list[str]) -> str | None:
        """The stored rows of a scope and month hold a dataset (actual / amortized) this input does not, and the
        month has reservation or savings-plan rows (without them both views are the same rows).

        Replacing would lose that dataset: the actual dataset's commitment purchases (BilledCost), or the amortized
        view (EffectiveCost would count a purchase when bought instead of spread over its use). Adding would count
        commitment costs twice. The two are paired row by row only when both are in one call (see the module
        docstring), so the later one is refused; a re-export of the same dataset(s) replaces as before."""
        if not keys:
            return None
        commit = f"{_squash('x_PricingModel')} IN ('reservation', 'savingsplan')"
        has = "bool_or({side} AND x_AzureDataset IN ('{d}', 'actual+amortized'))"
        row = first_row(con, f"""
            WITH r AS (SELECT x_SourceKey AS k, x_IngestId = ? AS new, x_AzureDataset, x_SourceFile, {commit} AS c
                       FROM {FOCUS_TABLE} WHERE x_SourceKey IN (SELECT unnest(?))
                         AND (x_IngestId = ? OR x_IngestId NOT IN (SELECT unnest(?))))
            SELECT k, {has.format(side='new', d='actual')} AS new_a, {has.format(side='new', d='amortized')} AS new_m,
                   {has.format(side='NOT new', d='actual')} AS old_a,
                   {has.format(side='NOT new', d='amortized')} AS old_m,
                   min(x_SourceFile) FILTER (WHERE new), min(x_SourceFile) FILTER (WHERE NOT new)
            FROM r GROUP BY k
            HAVING bool_or(NOT new) AND bool_or(c) AND ((old_a AND NOT new_a) OR (old_m AND NOT new_m))
            ORDER BY k LIMIT 1""", [ingest_id, keys, ingest_id, this_call])
        if row is None:
            return None
        key, new_a, new_m, old_a, old_m, new_file, old_file = row
        name = lambda a, m: "actual and amortized datasets" if a and m else (  # noqa: E731
            "actual dataset" if a else "amortized dataset")
        lost = ("the actual dataset's commitment purchases and billed amounts" if old_a and not new_a else
                "the amortized view (EffectiveCost would count commitment purchases when bought)")
        return (f"{new_file}: the stored rows of {key} are Azure's {name(old_a, old_m)} (from {old_file}) and this "
                f"input is the {name(new_a, new_m)}: replacing would lose {lost}, and adding would count "
                "reservation/savings-plan costs twice: ingest the actual and amortized exports of the month together "
                "in one call (they are paired row by row)")

    # ---- diagnosis -----------------------------------------------------------------------------------------
    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """First file/row/column whose value the mapping cannot use, named in the file's own header spelling."""
        no_date = "coalesce(Date, '')"
        charge = [_sq(r["ChargeType"]) for r in _data_rows("azure_charge_types.csv")] + [""]
        pricing = [_sq(r["PricingModel"]) for r in _data_rows("azure_pricing_models.csv")] + [""]
        tags = "trim(Tags)"
        tj = f"CASE WHEN starts_with({tags}, '{{') THEN {tags} ELSE '{{' || {tags} || '}}' END"
        checks = [
            ("Cost", "Cost IS NULL OR TRY_CAST(trim(Cost) AS DECIMAL(38,12)) IS NULL", "a number (the row's cost)"),
            ("Date", f"{azure_date(no_date)} IS NULL",
             "a date (MM/DD/YYYY, DD/MM/YYYY or YYYY-MM-DD)"),
            ("BillingPeriodStartDate", f"BillingPeriodStartDate IS NOT NULL AND "
             f"{azure_date('BillingPeriodStartDate')} IS NULL", "a date (MM/DD/YYYY, DD/MM/YYYY or YYYY-MM-DD)"),
            ("BillingCurrency", "trim(coalesce(BillingCurrency, '')) = ''", "a currency code"),
            ("ChargeType", f"{_squash('ChargeType')} NOT IN {_tuple(charge)}",
             "a known ChargeType (see data/azure_charge_types.csv)"),
            ("PricingModel", f"{_squash('PricingModel')} NOT IN {_tuple(pricing)}",
             "a known PricingModel (see data/azure_pricing_models.csv)"),
            ("Tags", f"trim(coalesce(Tags, '')) NOT IN ('', '{{}}') AND NOT CASE WHEN json_valid({tj}) THEN "
             f"json_type({tj}) = 'OBJECT' ELSE false END", "a JSON object of tags (with or without the outer braces)"),
        ] + [(c, f"{ident(c)} IS NOT NULL AND TRY_CAST(trim({ident(c)}) AS DECIMAL(38,12)) IS NULL", "a number")
             for c in ("Quantity", "PayGPrice", "UnitPrice", "PayGCost", "ExchangeRatePricingToBilling")]
        for column, where, expected in checks:
            bad = first_row(con, f"SELECT _file, _row, {ident(column)} FROM {staged.view} WHERE {where} LIMIT 1")
            if bad:
                shown = "an empty value" if bad[2] is None else repr(_clip(bad[2]))
                return InputError(bad[0], f"cannot use {shown}; expected {expected}",
                                  column=self._file_header(bad[0], column), row=bad[1])
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return InputError(staged.files[0], f"cannot convert to FOCUS ({first})")

    @staticmethod
    def _file_header(path: str, canonical: str) -> str:
        for i, can in header_map(read_header(path)).items():
            if can == canonical:
                return read_header(path)[i].replace("\ufeff", "")
        return canonical


def _sq(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _tuple(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def _clip(text: object, n: int = 60) -> str:
    t = str(text)
    return t if len(t) <= n else t[: n - 3] + "..."


__all__ = ["AzureCostSource", "canonical_header", "header_map"]
