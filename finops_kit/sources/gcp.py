"""GCP Cloud Billing export (standard and detailed / resource-level) -> FOCUS 1.2.

Accepted forms, all normalized by :meth:`GcpBillingSource.stage` into one flat view of text columns:

* BigQuery rows exported as newline-delimited JSON (``.json``/``.jsonl``/``.ndjson``, optionally ``.gz``) or as
  parquet, with the nested ``service``, ``sku``, ``project``, ``location``, ``invoice`` records and the REPEATED
  records ``labels``, ``project.labels``, ``system_labels`` (key/value) and ``credits`` (name, amount, full_name, id,
  type);
* the flattened CSV with dotted names (``service.description``), where the repeated records are JSON text or the
  Python ``repr`` text that ``pandas``/``str()`` writes (single quotes, ``None``), as in the koku fixtures.

Money semantics (why the rows look the way they do):

* GCP bills ``cost`` and lists credits (negative) next to it. The invoice net is ``cost + sum(credits.amount)``.
  Each export row becomes **one charge row** (BilledCost = EffectiveCost = ``cost``) plus **one FOCUS ``Credit`` row
  per credit** (BilledCost = EffectiveCost = the credit amount, ListCost = ContractedCost = 0), with the same
  service, SKU, project, resource, labels and period. So ``sum(BilledCost)`` is the net bill, credits stay visible
  by type (``x_CreditType``: sustained use, committed use incl. the spend-based ``FEE_UTILIZATION_OFFSET``,
  promotion, free tier, ...), and no cost is ever repeated: rows without credits keep their single charge row (the
  "comma-UNNEST" trap of GCP's own sample queries drops them and repeats cost once per credit).
* GCP has no amortized view of its own. EffectiveCost = BilledCost row by row, except committed-use fees: a month's
  CUD fee is spread over that month's CUD credit rows of the same kind (see ``AMORTIZE_CUD_FEES``), so the fee's
  Purchase row has EffectiveCost 0 and covered usage carries the commitment's real cost, as FOCUS amortizes
  commitment purchases. Totals are unchanged to the last decimal.
* Commitments: a CUD fee row's CommitmentDiscountId is the export's ``subscription.instance_id`` (the commitment's
  subscription GUID, which Google's CUD metadata export ``cud_subscriptions_export`` also carries), its
  CommitmentDiscountQuantity what it commits (a resource-based fee: usage.amount_in_pricing_units in hours; a
  spend-based fee: its dollars). When one identified commitment is a month's only fee of its kind, its CUD credits
  and the usage they cover take its id. For a resource-based one the unused part is observable: the credits cover
  ``quantity x credit / cost`` hours (a COMMITTED_USAGE_DISCOUNT credit is the on-demand price of what it covered),
  the fee share of those hours is *applied* (spread over the credits), and fee - applied becomes one Usage row per
  month with CommitmentDiscountStatus Unused (BilledCost 0), as AWS's and Azure's unused commitment rows. Usage carrying a committed-use credit gets
  PricingCategory ``Committed``; Spot/preemptible SKUs ``Dynamic``.
* ``cost_type`` tax / adjustment / rounding error -> ChargeCategory Tax / Adjustment (``data/gcp_cost_types.csv``).
* BillingPeriod comes from ``invoice.month`` (late usage lands in the month it is invoiced in, as on the invoice).
* Tags: resource ``labels`` as they are, **project labels under the key prefix ``project:``** (``project:team``), so a
  label set on the project stays distinguishable from one set on the resource. ``system_labels`` are provider
  metadata, not user tags: they feed x_InstanceType (``compute.googleapis.com/machine_spec``) only.

Reconciliation: the source total is ``sum(cost) + sum(credits.amount)`` per invoice month and currency, computed from
the raw credit text with JSON path extraction, independently of the row mapping.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections.abc import Sequence
from functools import cache

import duckdb

from ..datafiles import data_rows
from ..errors import InputError
from ..schema import MONEY
from ..warehouse import first_row
from .base import Source, StagedSource, file_kind, ident, register, sql_str
from .focus import utc_timestamp

#: (flat column of the staged view, dotted path in the export, kind). kind 'list' = repeated key/value or credit record.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("billing_account_id", "billing_account_id", "scalar"),
    ("service_id", "service.id", "scalar"),
    ("service_description", "service.description", "scalar"),
    ("sku_id", "sku.id", "scalar"),
    ("sku_description", "sku.description", "scalar"),
    ("usage_start_time", "usage_start_time", "scalar"),
    ("usage_end_time", "usage_end_time", "scalar"),
    ("project_id", "project.id", "scalar"),
    ("project_number", "project.number", "scalar"),
    ("project_name", "project.name", "scalar"),
    ("project_labels", "project.labels", "labels"),
    ("labels", "labels", "labels"),
    ("system_labels", "system_labels", "labels"),
    ("location_location", "location.location", "scalar"),
    ("location_country", "location.country", "scalar"),
    ("location_region", "location.region", "scalar"),
    ("location_zone", "location.zone", "scalar"),
    ("resource_name", "resource.name", "scalar"),
    ("resource_global_name", "resource.global_name", "scalar"),
    ("export_time", "export_time", "scalar"),
    ("cost", "cost", "scalar"),
    ("cost_at_list", "cost_at_list", "scalar"),
    ("currency", "currency", "scalar"),
    ("currency_conversion_rate", "currency_conversion_rate", "scalar"),
    ("usage_amount", "usage.amount", "scalar"),
    ("usage_unit", "usage.unit", "scalar"),
    ("usage_amount_in_pricing_units", "usage.amount_in_pricing_units", "scalar"),
    ("usage_pricing_unit", "usage.pricing_unit", "scalar"),
    ("credits", "credits", "credits"),
    ("invoice_month", "invoice.month", "scalar"),
    ("cost_type", "cost_type", "scalar"),
    ("seller_name", "seller_name", "scalar"),
    ("transaction_type", "transaction_type", "scalar"),
    ("subscription_instance_id", "subscription.instance_id", "scalar"),
)
LIST_FIELDS = tuple(f for f, _, k in FIELDS if k != "scalar")

LABELS_T = '[{"key":"VARCHAR","value":"VARCHAR"}]'
CREDITS_T = '[{"name":"VARCHAR","amount":"VARCHAR","full_name":"VARCHAR","id":"VARCHAR","type":"VARCHAR"}]'
_LABEL_STRUCT = "STRUCT(key VARCHAR, value VARCHAR)[]"
_CREDIT_STRUCT = "STRUCT(name VARCHAR, amount VARCHAR, full_name VARCHAR, id VARCHAR, type VARCHAR)[]"

#: DuckDB name of the Python-repr fallback parser (registered per connection, used only for values SQL cannot do).
PYREPR_UDF = "finops_gcp_pyrepr_to_json"

#: Amortization of committed-use fees (EffectiveCost only; BilledCost is never touched). Per billing account, month,
#: currency and commitment category (Usage = resource-based, Spend = spend-based), the month's applied CUD fee F
#: (the whole fee; for one identified resource-based commitment, fee x covered hours / committed hours, the rest an
#: Unused row) is spread over that category's CUD credit rows in proportion to their credit, so each covered charge's EffectiveCost is its
#: cost net of the commitment's true saving (credit + fee share) and the fee row's EffectiveCost is 0, as FOCUS wants
#: for commitment purchases. Shares telescope over a cumulative sum, so they add up to F exactly (no rounding
#: drift). A month whose fee has no matching credit keeps the fee on the Purchase row: it bought nothing that month.
AMORTIZE_CUD_FEES = f"""
fees AS (
  SELECT BillingAccountId, BillingPeriodStart, BillingCurrency, CommitmentDiscountCategory AS cat, sum(BilledCost) AS fee,
    count(DISTINCT CommitmentDiscountId) AS n_ids, count(*) FILTER (WHERE CommitmentDiscountId IS NULL) AS n_anon,
    min(CommitmentDiscountId) AS fee_id,  -- used only when the month's fees are of one commitment id
    arg_max(CommitmentDiscountName, (ChargePeriodStart, CommitmentDiscountName)) AS fee_name,
    sum(CommitmentDiscountQuantity) AS committed_qty,
    min(ChargePeriodStart) AS fee_start, max(ChargePeriodEnd) AS fee_end
  FROM out WHERE ChargeCategory = 'Purchase' AND CommitmentDiscountType IS NOT NULL GROUP BY ALL
),
covered AS (
  SELECT BillingAccountId, BillingPeriodStart, BillingCurrency, CommitmentDiscountCategory AS cat,
         ChargePeriodStart AS day, sum(_covered_qty) AS covered_qty
  FROM out WHERE ChargeCategory = 'Credit' AND CommitmentDiscountCategory IS NOT NULL GROUP BY ALL
),
measured AS (
  SELECT BillingAccountId, BillingPeriodStart, BillingCurrency, cat FROM fees
  WHERE n_ids = 1 AND n_anon = 0 AND cat = 'Usage' AND coalesce(committed_qty, 0) > 0
),
fee_days AS (  -- per charge period of a measured commitment's fees: what it committed and what its credits covered
  SELECT d.*, CASE WHEN d.fee_day = 0 OR d.qty_day = 0 THEN CAST(0 AS {MONEY})
                   ELSE CAST(CAST(d.fee_day AS DOUBLE) * greatest(0.0, 1.0 - CAST(coalesce(c.covered_qty, 0) AS DOUBLE)
                                                                      / CAST(d.qty_day AS DOUBLE)) AS {MONEY})
              END AS unused_day
  FROM (SELECT o.BillingAccountId, o.BillingPeriodStart, o.BillingCurrency, o.CommitmentDiscountCategory AS cat,
               o.ChargePeriodStart AS day, sum(o.BilledCost) AS fee_day, sum(o.CommitmentDiscountQuantity) AS qty_day
        FROM out o JOIN measured m ON m.BillingAccountId = o.BillingAccountId
          AND m.BillingPeriodStart = o.BillingPeriodStart AND m.BillingCurrency = o.BillingCurrency
          AND m.cat = o.CommitmentDiscountCategory
        WHERE o.ChargeCategory = 'Purchase' AND o.CommitmentDiscountType IS NOT NULL GROUP BY ALL) d
  LEFT JOIN covered c USING (BillingAccountId, BillingPeriodStart, BillingCurrency, cat, day)
),
applied AS (
  SELECT f.*, n_ids = 1 AND n_anon = 0 AS one, m.cat IS NOT NULL AS measured,
    fee - coalesce((SELECT sum(unused_day) FROM fee_days u WHERE u.BillingAccountId = f.BillingAccountId
                     AND u.BillingPeriodStart = f.BillingPeriodStart AND u.BillingCurrency = f.BillingCurrency
                     AND u.cat = f.cat), 0) AS applied
  FROM fees f LEFT JOIN measured m USING (BillingAccountId, BillingPeriodStart, BillingCurrency, cat)
),
cud AS (
  SELECT *, CommitmentDiscountCategory AS cat, row_number() OVER (
      PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency, CommitmentDiscountCategory
      ORDER BY ChargePeriodStart, ResourceId, SkuId, x_CreditTypeRaw, BilledCost, CommitmentDiscountId) AS rn
  FROM out WHERE ChargeCategory = 'Credit' AND CommitmentDiscountCategory IS NOT NULL
),
cum AS (
  SELECT cud.*, f.applied AS fee, f.one, f.fee_id, f.fee_name,
    sum(BilledCost) OVER (PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency, cat ORDER BY rn
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_credit,
    sum(BilledCost) OVER (PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency, cat) AS total_credit
  FROM cud JOIN applied f USING (BillingAccountId, BillingPeriodStart, BillingCurrency, cat)
),
shared AS (
  SELECT *, CASE WHEN rn = max(rn) OVER (PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency, cat)
                 THEN fee
                 ELSE CAST(CAST(fee AS DOUBLE) * (CAST(cum_credit AS DOUBLE) / CAST(total_credit AS DOUBLE)) AS {MONEY})
            END AS cum_share
  FROM cum WHERE total_credit <> 0
),
amortized_groups AS (
  SELECT DISTINCT BillingAccountId, BillingPeriodStart, BillingCurrency, cat FROM shared
  UNION SELECT BillingAccountId, BillingPeriodStart, BillingCurrency, cat FROM applied WHERE measured
),
allocated AS (
  SELECT * EXCLUDE (cat, rn, fee, cum_credit, total_credit, cum_share, one, fee_id, fee_name) REPLACE (
    EffectiveCost + cum_share - coalesce(lag(cum_share) OVER (
      PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency, cat ORDER BY rn), 0) AS EffectiveCost,
    CASE WHEN one THEN fee_id ELSE CommitmentDiscountId END AS CommitmentDiscountId,
    CASE WHEN one THEN fee_name ELSE CommitmentDiscountName END AS CommitmentDiscountName)
  FROM shared
),
kept AS (
  SELECT out.*, g.cat IS NOT NULL AS _amortized, a.one AS _one, a.fee_id AS _fee_id, a.fee_name AS _fee_name
  FROM out LEFT JOIN amortized_groups g
    ON g.BillingAccountId = out.BillingAccountId AND g.BillingPeriodStart = out.BillingPeriodStart
   AND g.BillingCurrency = out.BillingCurrency AND g.cat = out.CommitmentDiscountCategory
   AND out.CommitmentDiscountCategory IS NOT NULL
   AND (out.ChargeCategory = 'Credit' OR (out.ChargeCategory = 'Purchase' AND out.CommitmentDiscountType IS NOT NULL))
  LEFT JOIN applied a
    ON a.BillingAccountId = out.BillingAccountId AND a.BillingPeriodStart = out.BillingPeriodStart
   AND a.BillingCurrency = out.BillingCurrency AND a.cat = out.CommitmentDiscountCategory
   AND out.ChargeCategory = 'Usage' AND out.CommitmentDiscountCategory IS NOT NULL
),
unused AS (  -- one Unused row per charge period of a measured commitment's fees (BilledCost 0)
  SELECT p.* EXCLUDE (_rn) REPLACE (
    'Usage' AS ChargeCategory, 'Usage-Based' AS ChargeFrequency,
    'Unused commitment: ' || coalesce(p.ChargeDescription, '') AS ChargeDescription,
    CAST(0 AS {MONEY}) AS BilledCost, u.unused_day AS EffectiveCost,
    CAST(0 AS {MONEY}) AS ListCost, CAST(0 AS {MONEY}) AS ContractedCost,
    CAST(CAST(u.qty_day AS DOUBLE) * CAST(u.unused_day AS DOUBLE) / CAST(u.fee_day AS DOUBLE) AS {MONEY})
      AS CommitmentDiscountQuantity,
    CAST(CAST(u.qty_day AS DOUBLE) * CAST(u.unused_day AS DOUBLE) / CAST(u.fee_day AS DOUBLE) AS {MONEY})
      AS PricingQuantity,
    CAST(NULL AS {MONEY}) AS ConsumedQuantity, CAST(NULL AS VARCHAR) AS ConsumedUnit,
    'Unused' AS CommitmentDiscountStatus)
  FROM (SELECT *, row_number() OVER (PARTITION BY BillingAccountId, BillingPeriodStart, BillingCurrency,
                                                  CommitmentDiscountCategory, ChargePeriodStart ORDER BY SkuId) AS _rn
        FROM out WHERE ChargeCategory = 'Purchase' AND CommitmentDiscountType IS NOT NULL) p
  JOIN fee_days u ON u.BillingAccountId = p.BillingAccountId AND u.BillingPeriodStart = p.BillingPeriodStart
   AND u.BillingCurrency = p.BillingCurrency AND u.cat = p.CommitmentDiscountCategory AND u.day = p.ChargePeriodStart
  WHERE p._rn = 1 AND u.unused_day > 0
)
SELECT * EXCLUDE (_amortized, _one, _fee_id, _fee_name, _covered_qty) REPLACE (
  CASE WHEN _amortized AND ChargeCategory = 'Purchase' THEN CAST(0 AS {MONEY}) ELSE EffectiveCost END AS EffectiveCost,
  CASE WHEN _one THEN _fee_id ELSE CommitmentDiscountId END AS CommitmentDiscountId,
  CASE WHEN _one THEN _fee_name ELSE CommitmentDiscountName END AS CommitmentDiscountName)
FROM kept WHERE NOT (_amortized AND ChargeCategory = 'Credit')
UNION ALL BY NAME
SELECT * EXCLUDE (_covered_qty) FROM allocated
UNION ALL BY NAME
SELECT * EXCLUDE (_covered_qty) FROM unused
"""

X_COLUMNS = ("x_CreditType", "x_CreditTypeRaw", "x_CostType", "x_ServiceId", "x_ProjectNumber")


def _data_rows(name: str) -> list[dict[str, str]]:
    return data_rows(name)


@cache
def services() -> tuple[dict[str, str], ...]:
    return tuple(_data_rows("gcp_services.csv"))


@cache
def credit_types() -> tuple[dict[str, str], ...]:
    return tuple(_data_rows("gcp_credit_types.csv"))


@cache
def cost_types() -> tuple[dict[str, str], ...]:
    return tuple(_data_rows("gcp_cost_types.csv"))


def _values(rows: Sequence[Sequence[str | None]]) -> str:
    return ", ".join("(" + ", ".join("NULL" if v in (None, "") else sql_str(v) for v in r) + ")" for r in rows)


def pyrepr_to_json(text: str | None) -> str | None:
    """A Python-repr list (``[{'key': 'a', 'value': None}]``) as JSON text; None when it is not a list literal.

    Only called for values that the SQL fast path (quote swap) cannot turn into valid JSON, e.g. a label value with
    an apostrophe, which Python writes in double quotes.
    """
    if text is None:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    return json.dumps(value, default=str)


def json_list_text(col: str, udf: str = PYREPR_UDF) -> str:
    """SQL: the JSON text of a repeated-record column, from JSON or Python-repr text; NULL when unparseable.

    Fast path in SQL: a Python repr without any double quote or backslash has all strings in single quotes and no
    quote inside them, so swapping quotes and turning the bare tokens None/True/False (after '[', ',' or ':') into
    JSON literals is exact. Anything else goes to the ``ast.literal_eval`` UDF.
    """
    v = f"trim(CAST({ident(col)} AS VARCHAR))"
    swapped = f"replace({v}, '''', '\"')"
    for py, js in (("None", "null"), ("True", "true"), ("False", "false")):
        swapped = f"regexp_replace({swapped}, '([\\[,:]\\s*){py}\\b', '\\1{js}', 'g')"
    fast = f"CASE WHEN NOT contains({v}, '\"') AND NOT contains({v}, '\\') THEN {swapped} END"
    return (
        f"CASE WHEN {v} IS NULL OR {v} = '' THEN '[]' "
        f"WHEN CASE WHEN json_valid({v}) THEN json_type({v}) = 'ARRAY' ELSE false END THEN {v} "
        f"WHEN CASE WHEN json_valid({fast}) THEN json_type({fast}) = 'ARRAY' ELSE false END THEN {fast} "
        f"ELSE {udf}({v}) END"
    )


def _struct_has(type_str: str, field: str) -> bool:
    return re.search(r'[(,]\s*"?' + re.escape(field) + r'"?\s', type_str) is not None


def _json_columns() -> str:
    """read_json ``columns`` for the export: every known leaf as text (money stays exact), repeated records typed."""
    tops: dict[str, dict[str, str] | str] = {}
    for _, path, kind in FIELDS:
        typ = {"labels": _LABEL_STRUCT, "credits": _CREDIT_STRUCT}.get(kind, "VARCHAR")
        parts = path.split(".")
        if len(parts) == 1:
            tops[parts[0]] = typ
        else:
            sub = tops.setdefault(parts[0], {})
            assert isinstance(sub, dict)
            sub[parts[1]] = typ
    items = []
    for name, typ in tops.items():
        if isinstance(typ, dict):
            typ = "STRUCT(" + ", ".join(f"{ident(k)} {t}" for k, t in typ.items()) + ")"
        items.append(f"{sql_str(name)}: {sql_str(typ)}")
    return "{" + ", ".join(items) + "}"


_udf_serial = itertools.count(1)


def register_udf(con: duckdb.DuckDBPyConnection) -> str:
    """The name of the Python-repr fallback UDF on this connection, registering it when the catalog lacks it.

    A rolled-back ingest drops the function from DuckDB's catalog while the Python side still holds its name, and
    a name cannot be registered twice: so each registration gets a fresh name.
    """
    found = con.execute("SELECT function_name FROM duckdb_functions() WHERE function_name LIKE ? LIMIT 1",
                        [PYREPR_UDF + "%"]).fetchall()
    if found:
        return found[0][0]
    name = f"{PYREPR_UDF}_{next(_udf_serial)}"
    con.create_function(name, pyrepr_to_json, ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False)
    return name


@register
class GcpBillingSource(Source):
    name = "gcp"
    provider_name = "Google Cloud"
    description = "GCP Cloud Billing export (BigQuery rows as NDJSON/parquet, or flattened CSV with dotted names)"
    signature = ("billing_account_id", "cost", "usage_start_time", "service(.description)")
    required_columns = ("billing_account_id", "cost", "currency", "usage_start_time", "usage_end_time",
                        "invoice_month")
    numeric_columns = ("cost", "cost_at_list", "usage_amount", "usage_amount_in_pricing_units")
    timestamp_columns = ("usage_start_time", "usage_end_time")
    key_family = "gcp"

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        cols = set(columns)
        return ({"billing_account_id", "cost", "usage_start_time"} <= cols
                and bool({"service", "service.description"} & cols))

    # ---- staging -------------------------------------------------------------------------------------------
    def _reader(self, path: str) -> str:
        kind = file_kind(path)
        if kind == "parquet":
            return f"read_parquet({sql_str(path)})"
        if kind == "json":
            return (f"read_json({sql_str(path)}, format = 'newline_delimited', columns = {_json_columns()}, "
                    f"maximum_object_size = 67108864)")
        return (f"read_csv({sql_str(path)}, header = true, all_varchar = true, nullstr = ['', 'NULL'], "
                f"quote = '\"', escape = '\"')")

    def stage(self, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
        """One flat text view over all files (any mix of the three forms), with ``_file`` and ``_row``."""
        self._udf = register_udf(con)
        parts = []
        for f in files:
            reader = self._reader(f)
            types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
            exprs = []
            for flat, path, kind in FIELDS:
                top, _, leaf = path.partition(".")
                if path in types:
                    ref, typ = ident(path), types[path]
                elif leaf and top in types and types[top].startswith("STRUCT") and _struct_has(types[top], leaf):
                    ref, typ = f"{ident(top)}.{ident(leaf)}", "STRUCT-LEAF"
                    if kind != "scalar":
                        typ = "LIST"
                else:
                    exprs.append(f"CAST(NULL AS VARCHAR) AS {flat}")
                    continue
                if kind != "scalar" and (typ.endswith("[]") or typ == "LIST" or typ.startswith("STRUCT")):
                    exprs.append(f"CAST(to_json({ref}) AS VARCHAR) AS {flat}")
                else:
                    exprs.append(f"CAST({ref} AS VARCHAR) AS {flat}")
            exprs += [f"{sql_str(f)} AS _file", "row_number() OVER () AS _row"]
            parts.append(f"SELECT {', '.join(exprs)} FROM {reader}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + " UNION ALL ".join(parts))
        present = {flat for f in files for flat in self._present(con, f)}
        staged = StagedSource(view=view, columns=[c for c, _, _ in FIELDS if c in present] + ["_file", "_row"],
                              files=files)
        return staged

    def _present(self, con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
        """Flat fields a file really has (so that a missing required column is named, not silently NULL)."""
        if file_kind(path) == "json":
            from .base import read_header

            first = set(read_header(path))
            return [flat for flat, p, _ in FIELDS if p.split(".")[0] in first]
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {self._reader(path)}").fetchall()}
        out = []
        for flat, path_, _ in FIELDS:
            top, _, leaf = path_.partition(".")
            if path_ in types or (leaf and top in types and _struct_has(types[top], leaf)):
                out.append(flat)
        return out

    def check_columns(self, staged: StagedSource) -> None:
        missing = [c for c in self.required_columns if c not in staged.columns]
        if missing:
            dotted = {flat: path for flat, path, _ in FIELDS}
            raise InputError(
                staged.files[0] if len(staged.files) == 1 else f"{staged.files[0]} (+{len(staged.files) - 1} files)",
                f"missing required column(s) {', '.join(repr(dotted[m]) for m in missing)} for format {self.name}",
            )

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        return {x: x for x in X_COLUMNS}

    # ---- mapping -------------------------------------------------------------------------------------------
    def _parsed_cte(self, staged: StagedSource) -> str:
        """The staged rows with the repeated records parsed; an unparseable value raises (then diagnosed)."""
        cols = []
        for col in LIST_FIELDS:
            typ = CREDITS_T if col == "credits" else LABELS_T
            j = json_list_text(col, self._udf)
            cols.append(
                f"from_json(CASE WHEN ({j}) IS NULL THEN error('unparseable {col}') ELSE ({j}) END, "
                f"{sql_str(typ)}) AS _{col}"
            )
        return f"SELECT *, {', '.join(cols)} FROM {staged.view}"

    def focus_sql(self, staged: StagedSource) -> str:
        money = lambda e: f"CAST(trim(CAST({e} AS VARCHAR)) AS {MONEY})"  # noqa: E731
        svc = _values([(r["ServiceName"].lower(), r["ServiceCategory"], r["ServiceSubcategory"]) for r in services()])
        ctypes = _values([(r["cost_type"], r["ChargeCategory"], r["ChargeFrequency"]) for r in cost_types()])
        cred = _values([(r["type"], r["credit_label"], r["commitment_category"]) for r in credit_types()])
        cud_types = sql_str_list([r["type"] for r in credit_types() if r["commitment_category"]])
        from ..units import hours_per_unit_sql  # here, not at import: units imports the sources package

        hours_sql = hours_per_unit_sql("usage_pricing_unit")
        has_list = "cost_at_list" in staged.columns
        tag_pairs = ("list_concat(list_transform(_labels, lambda l: to_json(l.key) || ':' || to_json(l.value)), "
                     "list_transform(_project_labels, lambda l: to_json('project:' || l.key) || ':' || "
                     "to_json(l.value)))")
        return f"""
WITH svc(name, cat, sub) AS (VALUES {svc}),
ctype(cost_type, cat, freq) AS (VALUES {ctypes}),
ctyp(type, label, commitment_category) AS (VALUES {cred}),
p AS ({self._parsed_cte(staged)}),
r AS (
  SELECT p.*,
    {money('cost')} AS _cost,
    CASE WHEN trim(invoice_month) IS NULL THEN error('missing invoice.month')
         ELSE strptime(trim(invoice_month), '%Y%m') END AS _period,
    coalesce(ct.cat, error('unknown cost_type ' || coalesce(p.cost_type, 'NULL'))) AS _charge_category,
    ct.freq AS _freq,
    regexp_matches(coalesce(sku_description, ''), '(?i)^commitment') AS _commitment_fee,
    list_filter(_credits, lambda c: c.type IN {cud_types}) AS _cud,
    CASE WHEN len({tag_pairs}) > 0 THEN '{{' || array_to_string({tag_pairs}, ',') || '}}' END AS _tags,
    coalesce(
      list_extract(list_filter(_system_labels, lambda l: l.key = 'compute.googleapis.com/machine_spec'), 1).value,
      nullif(lower(regexp_extract(coalesce(sku_description, ''),
        '(?i)^(?:spot preemptible |preemptible |commitment v[0-9]+: )?([a-z][0-9]+[a-z]?) '
        || '(?:instance|custom|amd|arm|memory|gpu)', 1)), ''),
      nullif(regexp_replace(lower(regexp_extract(coalesce(sku_description, ''), '(?i)(nvidia .+?) gpu', 1)),
        '[^a-z0-9]+', '-', 'g'), ''),
      nullif(regexp_replace(lower(regexp_extract(coalesce(sku_description, ''), '(?i)\\b(tpu[ -]?v[0-9]+[a-z]*)\\b',
        1)), '[^a-z0-9]+', '-', 'g'), '')
    ) AS _instance_type,
    s.cat AS _svc_cat, s.sub AS _svc_sub
  FROM p
  LEFT JOIN ctype ct ON ct.cost_type = lower(trim(p.cost_type))
  LEFT JOIN svc s ON s.name = lower(trim(p.service_description))
),
base AS (
  SELECT
    {sql_str(self.provider_name)} AS ProviderName,
    coalesce(seller_name, 'Google Cloud') AS PublisherName,
    'Google Cloud' AS InvoiceIssuerName,
    billing_account_id AS BillingAccountId,
    billing_account_id AS BillingAccountName,
    'Billing Account' AS BillingAccountType,
    project_id AS SubAccountId,
    coalesce(project_name, project_id) AS SubAccountName,
    CASE WHEN project_id IS NOT NULL THEN 'Project' END AS SubAccountType,
    trim(currency) AS BillingCurrency,
    _period AS BillingPeriodStart,
    _period + INTERVAL 1 MONTH AS BillingPeriodEnd,
    {utc_timestamp('usage_start_time')} AS ChargePeriodStart,
    {utc_timestamp('usage_end_time')} AS ChargePeriodEnd,
    service_description AS ServiceName,
    coalesce(_svc_cat, 'Other') AS ServiceCategory,
    coalesce(_svc_sub, 'Other (Other)') AS ServiceSubcategory,
    sku_id AS SkuId,
    location_region AS RegionId,
    location_region AS RegionName,
    location_zone AS AvailabilityZone,
    coalesce(resource_global_name, resource_name) AS ResourceId,
    resource_name AS ResourceName,
    CAST(_tags AS JSON) AS Tags,
    sku_description AS x_UsageType,
    _instance_type AS x_InstanceType,
    cost_type AS x_CostType,
    service_id AS x_ServiceId,
    project_number AS x_ProjectNumber,
    _file AS x_SourceFile,
    concat_ws('|', 'gcp', billing_account_id, strftime(_period, '%Y-%m')) AS x_SourceKey,
    *
  FROM r
),
out AS (
SELECT * EXCLUDE ({_internal_columns(staged)}),
  CASE WHEN _commitment_fee AND _charge_category = 'Usage' THEN 'Purchase' ELSE _charge_category END
    AS ChargeCategory,
  CASE WHEN _commitment_fee AND _charge_category = 'Usage' THEN 'Recurring' ELSE _freq END AS ChargeFrequency,
  coalesce(sku_description, service_description) AS ChargeDescription,
  _cost AS BilledCost,
  _cost AS EffectiveCost,
  _cost AS ContractedCost,
  {f"coalesce({money('cost_at_list')}, _cost)" if has_list else '_cost'} AS ListCost,
  {money('usage_amount')} AS ConsumedQuantity,
  usage_unit AS ConsumedUnit,
  {money('usage_amount_in_pricing_units')} AS PricingQuantity,
  usage_pricing_unit AS PricingUnit,
  CASE WHEN _charge_category NOT IN ('Usage') THEN NULL
       WHEN regexp_matches(coalesce(sku_description, ''), '(?i)\\b(preemptible|spot)\\b') THEN 'Dynamic'
       WHEN _commitment_fee OR len(_cud) > 0 THEN 'Committed'
       ELSE 'Standard' END AS PricingCategory,
  CASE WHEN len(_cud) > 0 AND NOT _commitment_fee THEN list_extract(_cud, 1).id
       WHEN _commitment_fee THEN nullif(trim(subscription_instance_id), '') END AS CommitmentDiscountId,
  CASE WHEN len(_cud) > 0 AND NOT _commitment_fee THEN coalesce(list_extract(_cud, 1).full_name,
       list_extract(_cud, 1).name)
       WHEN _commitment_fee AND nullif(trim(subscription_instance_id), '') IS NOT NULL THEN sku_description
       END AS CommitmentDiscountName,
  -- a CUD fee states what it commits: a resource-based fee its hours (usage.amount_in_pricing_units in an hour
  -- unit, data/hour_units.csv), a spend-based fee its dollars (the fee); NULL when neither can be read
  CASE WHEN _commitment_fee AND NOT regexp_matches(coalesce(sku_description, ''), '(?i)dollar|spend')
            AND {hours_sql} IS NOT NULL
         THEN CAST({money('usage_amount_in_pricing_units')} * CAST({hours_sql} AS DECIMAL(18,6)) AS {MONEY})
       WHEN _commitment_fee AND regexp_matches(coalesce(sku_description, ''), '(?i)dollar|spend') THEN _cost
       END AS CommitmentDiscountQuantity,
  CASE WHEN _commitment_fee AND NOT regexp_matches(coalesce(sku_description, ''), '(?i)dollar|spend')
            AND {hours_sql} IS NOT NULL THEN 'Hours'
       WHEN _commitment_fee AND regexp_matches(coalesce(sku_description, ''), '(?i)dollar|spend')
         THEN trim(currency) END AS CommitmentDiscountUnit,
  CAST(NULL AS {MONEY}) AS _covered_qty,
  CASE WHEN len(_cud) > 0 AND NOT _commitment_fee
       THEN (SELECT commitment_category FROM ctyp WHERE ctyp.type = list_extract(_cud, 1).type)
       WHEN _commitment_fee THEN CASE WHEN regexp_matches(sku_description, '(?i)dollar|spend') THEN 'Spend'
                                      ELSE 'Usage' END END AS CommitmentDiscountCategory,
  CASE WHEN len(_cud) > 0 OR _commitment_fee THEN 'Committed Use Discount' END AS CommitmentDiscountType,
  CASE WHEN len(_cud) > 0 AND NOT _commitment_fee AND _charge_category = 'Usage' THEN 'Used' END
    AS CommitmentDiscountStatus,
  CAST(NULL AS VARCHAR) AS x_CreditType,
  CAST(NULL AS VARCHAR) AS x_CreditTypeRaw
FROM base
UNION ALL BY NAME
SELECT * EXCLUDE ({_internal_columns(staged)}, _c, _label, _ccat),
  'Credit' AS ChargeCategory,
  coalesce(_freq, 'Usage-Based') AS ChargeFrequency,
  coalesce(_label, 'Other credit') || ': ' || coalesce(_c.full_name, _c.name, _c.id, _c.type, 'credit')
    AS ChargeDescription,
  {money('_c.amount')} AS BilledCost,
  {money('_c.amount')} AS EffectiveCost,
  CAST(0 AS {MONEY}) AS ContractedCost,
  CAST(0 AS {MONEY}) AS ListCost,
  CAST(NULL AS {MONEY}) AS ConsumedQuantity,
  CAST(NULL AS VARCHAR) AS ConsumedUnit,
  CAST(NULL AS {MONEY}) AS PricingQuantity,
  CAST(NULL AS VARCHAR) AS PricingUnit,
  CAST(NULL AS VARCHAR) AS PricingCategory,
  CASE WHEN _ccat IS NOT NULL THEN _c.id END AS CommitmentDiscountId,
  CASE WHEN _ccat IS NOT NULL THEN coalesce(_c.full_name, _c.name) END AS CommitmentDiscountName,
  CAST(NULL AS {MONEY}) AS CommitmentDiscountQuantity,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountUnit,
  -- the usage a resource-based CUD credit covered, in the row's pricing units: a COMMITTED_USAGE_DISCOUNT credit
  -- is the on-demand price of the covered part, so covered = quantity x credit / cost
  CASE WHEN _ccat = 'Usage' AND _cost > 0
       THEN CAST({money('usage_amount_in_pricing_units')} * CAST(-{money('_c.amount')} / _cost AS DECIMAL(18,12))
                 AS {MONEY}) END AS _covered_qty,
  _ccat AS CommitmentDiscountCategory,
  CASE WHEN _ccat IS NOT NULL THEN 'Committed Use Discount' END AS CommitmentDiscountType,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountStatus,
  coalesce(_label, 'Other credit') AS x_CreditType,
  _c.type AS x_CreditTypeRaw
FROM (
  SELECT b.*, ctyp.label AS _label, nullif(ctyp.commitment_category, '') AS _ccat
  FROM (SELECT base.*, unnest(_credits) AS _c FROM base) b
  LEFT JOIN ctyp ON ctyp.type = b._c.type
)
),
{AMORTIZE_CUD_FEES}
"""

    def source_totals_sql(self, staged: StagedSource) -> str:
        # Credits summed from the JSON text by path extraction (not through the row mapping's from_json + unnest).
        credit_sum = (f"list_sum(list_transform(json_extract_string(({json_list_text('credits', self._udf)}), '$[*].amount'), "
                      f"lambda a: CAST(trim(a) AS {MONEY})))")
        return f"""
SELECT strptime(trim(invoice_month), '%Y%m') AS billing_period_start, trim(currency) AS currency,
       count(*) AS source_rows,
       sum(CAST(trim(cost) AS {MONEY})) + coalesce(sum({credit_sum}), 0) AS billed,
       sum(CAST(trim(cost) AS {MONEY})) + coalesce(sum({credit_sum}), 0) AS effective
FROM {staged.view} GROUP BY ALL
"""

    # ---- diagnosis -----------------------------------------------------------------------------------------
    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """Name the file/row/column of an unparseable repeated record, invoice month or cost_type first."""
        self._udf = register_udf(con)
        dotted = {flat: path for flat, path, _ in FIELDS}
        for col in LIST_FIELDS:
            if col not in staged.columns:
                continue
            bad = first_row(con,
                f"SELECT _file, _row, {ident(col)} FROM {staged.view} WHERE ({json_list_text(col, self._udf)}) IS NULL LIMIT 1"
            )
            if bad:
                shape = "{name, amount, full_name, id, type}" if col == "credits" else "{key, value}"
                return InputError(bad[0], f"cannot parse {_clip(bad[2])!r}; expected a JSON or Python-repr list of "
                                  f"{shape} records", column=dotted[col], row=bad[1])
        if "credits" in staged.columns:  # a credit amount that is not a number (NaN, text) named, not "cannot convert"
            amounts = f"json_extract_string(({json_list_text('credits', self._udf)}), '$[*].amount')"
            bad = first_row(con,
                f"SELECT _file, _row, a FROM (SELECT _file, _row, unnest({amounts}) AS a FROM {staged.view}) "
                f"WHERE a IS NOT NULL AND TRY_CAST(trim(a) AS {MONEY}) IS NULL LIMIT 1")
            if bad:
                return InputError(bad[0], f"cannot parse credit amount {bad[2]!r}; expected a number",
                                  column="credits.amount", row=bad[1])
        bad = first_row(con,
            f"SELECT _file, _row, invoice_month FROM {staged.view} "
            f"WHERE try_strptime(trim(coalesce(invoice_month, '')), '%Y%m') IS NULL LIMIT 1")
        if bad:
            return InputError(bad[0], f"cannot parse {bad[2]!r}; expected a month as YYYYMM", column="invoice.month",
                              row=bad[1])
        known = sql_str_list([r["cost_type"] for r in cost_types()])
        bad = first_row(con,
            f"SELECT _file, _row, cost_type FROM {staged.view} "
            f"WHERE lower(trim(coalesce(cost_type, ''))) NOT IN {known} LIMIT 1")
        if bad:
            return InputError(bad[0], f"unknown cost_type {bad[2]!r}; expected one of "
                              f"{', '.join(r['cost_type'] for r in cost_types())} (see data/gcp_cost_types.csv)",
                              column="cost_type", row=bad[1])
        checks = [(c, MONEY, "a number") for c in self.numeric_columns] + [
            (c, "TIMESTAMPTZ", "a date/time") for c in self.timestamp_columns]
        for column, typ, expected in checks:
            if column not in staged.columns:
                continue
            bad = first_row(con,
                f"SELECT _file, _row, {column} FROM {staged.view} "
                f"WHERE {column} IS NOT NULL AND TRY_CAST(trim({column}) AS {typ}) IS NULL LIMIT 1")
            if bad:
                return InputError(bad[0], f"cannot parse {bad[2]!r}; expected {expected}", column=dotted[column],
                                  row=bad[1])
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return InputError(staged.files[0], f"cannot convert to FOCUS ({first})")

    def prepare_value(self, expr: str, typ: str) -> str:
        return f"trim({expr})"


def _internal_columns(staged: StagedSource) -> str:
    raw = [c for c, _, _ in FIELDS] + ["_file", "_row"] + [f"_{c}" for c in LIST_FIELDS]
    derived = ["_cost", "_period", "_charge_category", "_freq", "_commitment_fee", "_cud", "_tags", "_instance_type",
               "_svc_cat", "_svc_sub"]
    return ", ".join(ident(c) for c in raw + derived)


def sql_str_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def _clip(text: str | None, n: int = 60) -> str:
    t = str(text)
    return t if len(t) <= n else t[: n - 3] + "..."
