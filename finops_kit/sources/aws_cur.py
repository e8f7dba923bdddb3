"""AWS Cost and Usage Report (legacy CUR) -> FOCUS 1.2, in both column spellings AWS delivers it.

* **Slash columns** (``lineItem/UnblendedCost``, ``resourceTags/user:team``), CSV / CSV.gz / parquet, as CUR writes
  to S3 for "text/csv" reports;
* **Athena snake_case** (``line_item_unblended_cost``, ``resource_tags_user_team``), what CUR writes for Athena /
  parquet delivery. This is still the legacy CUR (dynamic columns, one column per tag), *not* CUR 2.0.

The mapping is written once against the legacy slash names; :class:`CurColumns` resolves each name to whatever the
file has (slash, snake_case, or a key of a CUR 2.0 MAP column, see :mod:`.aws_cur2`), and yields ``NULL`` for a
column this month's report does not have. AWS adds and drops columns month to month (``savingsPlan/*`` appears the
month a Savings Plan is bought, ``lineItem/NetUnblendedCost`` only when a discount exists), so nothing but the
few ``REQUIRED`` columns may be assumed. Slash and Athena files given in one call are staged as one view with
one column per meaning (:func:`merge_styles`), so each row maps and passes through as its file would alone.

Cost semantics (``../shared/notes/billing-semantics.md``; rule tables in ``data/aws_line_item_types.csv``):

* ``BilledCost`` = ``lineItem/UnblendedCost`` on every row. Summing all rows is the invoice: the
  ``SavingsPlanNegation`` rows cancel the on-demand priced ``SavingsPlanCoveredUsage``; discount line items
  (``EdpDiscount``, ``PrivateRateDiscount``, ...) are rows of their own. ``lineItem/NetUnblendedCost`` and the
  ``discount`` columns are *not* used for cost (that would count discounts twice); they are kept as ``x_`` columns.
* ``EffectiveCost`` = the amortized rule set used by AWS's dashboards and the FOCUS converters: covered usage at its
  effective cost, negation and upfront fees 0, the unused commitment on the fee rows.
* ``SavingsPlanNegation`` rows keep their BilledCost (the invoice needs it) but carry ListCost 0, ListUnitPrice 0 and
  ConsumedQuantity 0: the list value and the consumed hours of SP-covered usage are on its ``SavingsPlanCoveredUsage``
  row, and counting them on both rows cancels the savings (ListCost) and doubles the instance-hours (ConsumedQuantity).
* FOCUS models a commitment's monthly fee as a ``Purchase`` (EffectiveCost 0) plus a ``Usage`` row with
  ``CommitmentDiscountStatus = 'Unused'`` carrying the unused amount. A CUR ``RIFee`` / ``SavingsPlanRecurringFee``
  row with a non-zero unused amount therefore becomes **two** FOCUS rows (the only case where FOCUS rows outnumber
  source rows; ``x_CommitmentUnusedRow = 'true'`` marks the second). Totals are unchanged.
* Split cost allocation rows (EKS pods / ECS tasks, ``lineItem/Operation`` ``EKSPod-EC2`` / ``ECSTask-EC2``)
  re-state cost already carried by the EC2 instance rows. They are kept for visibility with every cost column 0 and
  their allocated amounts in ``x_split_line_item_*`` columns; the source totals leave them out as well.
* Tags: ``resourceTags/user:<key>`` become ``{"<key>": value}`` (prefix stripped); AWS-generated tags
  (``resourceTags/aws:createdBy``) keep their ``aws:`` prefix so they stay distinguishable. Athena / CUR 2.0 only
  carry the snake_cased key (``resource_tags_user_cost_center`` -> ``cost_center``); the original spelling is lost
  upstream. Empty tag values are dropped; a row without tags has ``Tags`` NULL.
* Extra columns: the CUR columns listed in ``data/aws_cur_extra_columns.csv`` (lineage, normalization, commitment
  terms, the product attributes GPU, storage and transfer analyses read) are kept as ``x_<snake_case>`` columns,
  named the same for slash, Athena and CUR 2.0 input. The rest of what the mapping does not consume is dropped by
  default, because FOCUS already carries its meaning and each kept column costs ingest time on every row;
  ``keep_source_columns`` (``finops-kit ingest --keep-source-columns``) keeps every unconsumed column (CUR 2.0: the
  whole ``product`` MAP as JSON text in ``x_product``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources

import duckdb

from ..datafiles import data_rows
from ..errors import InputError
from ..schema import MONEY
from .base import (
    Source,
    StagedSource,
    file_kind,
    first_bad_cell,
    ident,
    iso_timestamp,
    json_object_expr,
    period_timestamp,
    read_header,
    register,
    sql_str,
)
from .focus import iso_text

#: Columns the mapping cannot do without (legacy spelling).
REQUIRED = ("lineItem/UnblendedCost", "lineItem/LineItemType", "bill/BillingPeriodStartDate",
            "lineItem/UsageStartDate", "lineItem/CurrencyCode")

#: Source columns parsed as numbers / timestamps (legacy spelling), for error diagnosis.
NUMERIC = ("lineItem/UnblendedCost", "lineItem/UsageAmount", "pricing/publicOnDemandCost",
           "pricing/publicOnDemandRate", "savingsPlan/SavingsPlanEffectiveCost", "savingsPlan/TotalCommitmentToDate",
           "savingsPlan/UsedCommitment", "reservation/EffectiveCost",
           "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "reservation/UnusedRecurringFee",
           "reservation/UnusedQuantity", "split_line_item/SplitCost", "split_line_item/UnusedCost")
TIMESTAMPS = ("bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate", "lineItem/UsageStartDate",
              "lineItem/UsageEndDate")

#: Prefixes of columns folded into Tags / x_CostCategories (never kept as x_ columns of their own).
FOLDED_PREFIXES = ("resource_tags_", "cost_category_")


@cache
def extra_columns() -> tuple[frozenset[str], tuple[str, ...]]:
    """The curated extra columns (data/aws_cur_extra_columns.csv) as (exact snake names, snake prefixes)."""
    names = [r["column"].strip() for r in data_rows("aws_cur_extra_columns.csv")]
    return (frozenset(n for n in names if not n.endswith("*")),
            tuple(n[:-1] for n in names if n.endswith("*")))


#: Operations of split cost allocation rows (they repeat the EC2 instance cost; see module docstring).
SPLIT_OPERATION_PREFIXES = ("EKSPod-", "ECSTask-")
COMMITMENT_FEES = ("RIFee", "SavingsPlanRecurringFee")
#: x_ columns the mapping derives itself (listed in passthrough_columns so that the warehouse gains them)
DERIVED = "<derived>"
DERIVED_COLUMNS = ("x_CostCategories", "x_CommitmentUnusedRow", "x_SplitCostAllocationRow", "x_InvoicingEntity")


# ---- names ---------------------------------------------------------------------------------------------------
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(legacy: str) -> str:
    """Athena / CUR 2.0 spelling of a legacy column, the way AWS converts it.

    ``lineItem/UnblendedCost`` -> ``line_item_unblended_cost``; ``savingsPlan/SavingsPlanARN`` ->
    ``savings_plan_savings_plan_a_r_n`` (every capital letter starts a word, as in AWS's own Athena tables).
    """
    out = []
    for part in re.split(r"[/:]", legacy):
        out.append(_CAMEL.sub("_", part).lower().strip("_"))
    return re.sub(r"[^0-9a-z]+", "_", "_".join(p for p in out if p)).strip("_")


@cache
def line_item_types() -> dict[str, dict[str, str]]:
    return {r["LineItemType"]: r for r in data_rows("aws_line_item_types.csv")}


@cache
def services() -> dict[str, tuple[str, str]]:
    text = resources.files("finops_kit").joinpath("data/aws_services.csv").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return {r["ServiceCode"]: (r["ServiceCategory"], r["ServiceSubcategory"]) for r in csv.DictReader(lines)}


def _case(expr: str, column: str, default: str = "NULL") -> str:
    """CASE over the line item type table for one attribute column."""
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v[column]) if v[column] else 'NULL'}"
                     for k, v in line_item_types().items())
    return f"CASE {expr} {whens} ELSE {default} END"


def _in(expr: str, values: Sequence[str]) -> str:
    return f"{expr} IN ({', '.join(sql_str(v) for v in values)})"


def _types_with(column: str, value: str) -> list[str]:
    return [k for k, v in line_item_types().items() if v[column] == value]


# ---- column resolution -------------------------------------------------------------------------------------------
class CurColumns:
    """Resolve legacy CUR column names to SQL over whatever spelling the staged file uses.

    ``flavour`` is ``legacy`` (slash names), ``athena`` (snake_case) or ``cur2`` (snake_case + MAP columns).
    Every accessor returns SQL that is ``NULL`` when the column is absent, so that the mapping is generated from
    the columns present.
    """

    MAPS = {"product": "product_", "resource_tags": "resource_tags_", "cost_category": "cost_category_",
            "discount": "discount_"}

    def __init__(self, types: dict[str, str], flavour: str, original_names: dict[str, str] | None = None,
                 snake_names: frozenset[str] = frozenset()):
        self.types = types
        self.flavour = flavour
        self.original_names = original_names or {}  # staged alias -> header spelling (case variants, see stage)
        # legacy flavour only: Athena columns of a mixed-style ingest that no slash file has (see merge_styles);
        # a legacy name is looked up by its snake spelling among them
        self.snake_names = snake_names
        self.exact = {self.original(c): c for c in types}
        self.lower = {self.original(c).lower(): c for c in types}
        self.used: set[str] = set()

    def original(self, column: str) -> str:
        return self.original_names.get(column, column)

    def name(self, legacy: str) -> str | None:
        """The staged column for a legacy name, or None."""
        if self.flavour == "legacy":
            found = self.exact.get(legacy) or self.lower.get(legacy.lower())
            if found is None and self.snake_names and snake(legacy) in self.snake_names:
                return snake(legacy)
            return found
        s = snake(legacy)
        return s if s in self.types else None

    def has(self, legacy: str) -> bool:
        return self.name(legacy) is not None or self._map_key(legacy) is not None

    def _map_key(self, legacy: str) -> tuple[str, str] | None:
        if self.flavour != "cur2":
            return None
        s = snake(legacy)
        for col, prefix in self.MAPS.items():
            if col in self.types and s.startswith(prefix):
                return col, s[len(prefix):]
        return None

    def map_expr(self, column: str) -> str:
        """A CUR 2.0 MAP column as MAP(VARCHAR, VARCHAR) (CSV exports carry it as JSON text). Parquet maps of other
        value types (``discount`` is ``map<string,double>`` in AWS's dictionary) get their values as text."""
        t = self.types[column].upper().replace(" ", "")
        if t == "MAP(VARCHAR,VARCHAR)":
            return ident(column)
        if t.startswith("MAP"):
            return f"CAST({ident(column)} AS MAP(VARCHAR, VARCHAR))"
        return f"TRY_CAST(CAST(nullif(trim(CAST({ident(column)} AS VARCHAR)), '') AS JSON) AS MAP(VARCHAR, VARCHAR))"

    def raw(self, legacy: str) -> str | None:
        n = self.name(legacy)
        if n is not None:
            self.used.add(n)
            return ident(n)
        mk = self._map_key(legacy)
        if mk is not None:
            return f"{self.map_expr(mk[0])}[{sql_str(mk[1])}]"
        return None

    def text(self, legacy: str) -> str:
        r = self.raw(legacy)
        if r is None:
            return "CAST(NULL AS VARCHAR)"
        n = self.name(legacy)
        if n is not None and self.types.get(n, "").upper() == "VARCHAR":
            # CUR text is not padded: no trim (it cost ~2.4 s per million rows); '' is NULL as in the reader
            return f"nullif({r}, '')"
        return f"nullif(trim(CAST({r} AS VARCHAR)), '')"

    def num(self, legacy: str) -> str:
        """A money/quantity column as DECIMAL; text and numeric parquet types are both accepted."""
        n = self.name(legacy)
        if n is None:
            r = self.raw(legacy)  # a MAP key (text) or absent
            return f"CAST(NULL AS {MONEY})" if r is None else f"CAST(nullif(trim({r}), '') AS {MONEY})"
        self.used.add(n)
        if self.types[n].upper() in ("VARCHAR", "BLOB"):
            # no trim(): the DECIMAL cast itself accepts surrounding blanks, and a dozen trims per row cost ~0.8 CPU-s
            # per million rows. A blank-only cell is not a number and is reported as such.
            return f"CAST(nullif({ident(n)}, '') AS {MONEY})"
        return f"CAST({ident(n)} AS {MONEY})"

    def ts(self, legacy: str, *, period: bool = False) -> str:
        """A date/time column as a UTC TIMESTAMP; ``period``: a billing-period boundary, taken as written (its
        offset dropped, see :func:`~finops_kit.sources.base.period_timestamp`)."""
        n = self.name(legacy)
        if n is None:
            return "CAST(NULL AS TIMESTAMP)"
        self.used.add(n)
        t = self.types[n].upper()
        if t.startswith("TIMESTAMP") or t == "DATE":
            return f"CAST({ident(n)} AS TIMESTAMP)" if "TIME ZONE" not in t else f"CAST({ident(n)} AS TIMESTAMP)"
        parse = period_timestamp if period else iso_timestamp
        return parse(f"nullif(trim({ident(n)}), '')", raw=ident(n))

    # ---- tags and cost categories ------------------------------------------------------------------------
    def tag_columns(self) -> list[tuple[str, str]]:
        """[(column, tag key)] for one-column-per-tag flavours (legacy, Athena)."""
        out = []
        for c in self.types:
            if self.flavour == "legacy" and c.lower().startswith("resourcetags/"):
                key = self.original(c).split("/", 1)[1]
                out.append((c, key[5:] if key.lower().startswith("user:") else key))
            elif self.flavour == "athena" and c.startswith("resource_tags_"):
                key = c[len("resource_tags_"):]
                if key.startswith("user_"):
                    out.append((c, key[5:]))
                elif key.startswith("aws_"):
                    out.append((c, "aws:" + key[4:]))
                else:
                    out.append((c, key))
        return out

    def category_columns(self) -> list[tuple[str, str]]:
        out = []
        for c in self.types:
            if self.flavour == "legacy" and c.lower().startswith("costcategory/"):
                out.append((c, self.original(c).split("/", 1)[1]))
            elif self.flavour == "athena" and c.startswith("cost_category_"):
                out.append((c, c[len("cost_category_"):]))
        return out

    @staticmethod
    def json_of(pairs: list[tuple[str, str]]) -> str:
        """JSON object text of the non-empty (column, key) values; NULL when none."""
        return json_object_expr([(k, f"nullif(trim(CAST({ident(c)} AS VARCHAR)), '')") for c, k in pairs])

    def json_of_map(self, column: str, rename_tags: bool) -> str:
        """JSON object text of a CUR 2.0 MAP column (tag keys: ``user_`` stripped, ``aws_`` -> ``aws:``)."""
        m = self.map_expr(column)
        entries = f"list_filter(map_entries({m}), lambda e: nullif(trim(e.value), '') IS NOT NULL)"
        if rename_tags:
            key = ("CASE WHEN starts_with(e.key, 'user_') THEN e.key[6:] WHEN starts_with(e.key, 'user:') "
                   "THEN e.key[6:] WHEN starts_with(e.key, 'aws_') THEN 'aws:' || e.key[5:] ELSE e.key END")
            entries = f"list_transform({entries}, lambda e: {{'key': {key}, 'value': e.value}})"
        return (f"CASE WHEN len({entries}) > 0 THEN CAST(to_json(map_from_entries({entries})) AS VARCHAR) END")

    def tags_json(self) -> str:
        if self.flavour == "cur2":
            return self.json_of_map("resource_tags", True) if "resource_tags" in self.types else "NULL"
        return self.json_of(self.tag_columns())

    def categories_json(self) -> str:
        if self.flavour == "cur2":
            return self.json_of_map("cost_category", False) if "cost_category" in self.types else "NULL"
        return self.json_of(self.category_columns())


# ---- the mapping -------------------------------------------------------------------------------------------------
class CurMapping:
    """The FOCUS mapping and the independent source totals, shared by legacy CUR and CUR 2.0."""

    def __init__(self, cols: CurColumns, view: str, source_name: str):
        self.c = cols
        self.view = view
        self.source_name = source_name

    # building blocks over the raw view ------------------------------------------------------------------------
    def _split_row(self) -> str:
        op = self.c.text("lineItem/Operation")
        tests = " OR ".join(f"starts_with({op}, {sql_str(p)})" for p in SPLIT_OPERATION_PREFIXES)
        return f"coalesce({tests}, false)"

    def amortized(self) -> str:
        """EffectiveCost of one CUR row by the amortization rule set (used by the source totals)."""
        c = self.c
        lt = c.text("lineItem/LineItemType")
        unblended = c.num("lineItem/UnblendedCost")
        ri_arn = c.text("reservation/ReservationARN")
        return f"""CASE {lt}
            WHEN 'SavingsPlanCoveredUsage' THEN coalesce({c.num('savingsPlan/SavingsPlanEffectiveCost')}, 0)
            WHEN 'SavingsPlanRecurringFee' THEN coalesce({c.num('savingsPlan/TotalCommitmentToDate')}, 0)
                                               - coalesce({c.num('savingsPlan/UsedCommitment')}, 0)
            WHEN 'SavingsPlanNegation' THEN 0
            WHEN 'SavingsPlanUpfrontFee' THEN 0
            WHEN 'DiscountedUsage' THEN coalesce({c.num('reservation/EffectiveCost')}, 0)
            WHEN 'RIFee' THEN coalesce({c.num('reservation/UnusedAmortizedUpfrontFeeForBillingPeriod')}, 0)
                              + coalesce({c.num('reservation/UnusedRecurringFee')}, 0)
            ELSE CASE WHEN {lt} = 'Fee' AND {ri_arn} IS NOT NULL THEN 0 ELSE {unblended} END END"""

    def source_totals_sql(self) -> str:
        """Plain sum of the unblended cost and the amortized sum, per billing period and currency.

        Written directly over the raw columns, independently of :meth:`focus_sql` (which splits fee rows and
        maps per part), so that the reconciliation is a real check of the mapping.
        """
        c = self.c
        # grouped by the raw period text, so the date/time parse runs once per group instead of once per row
        period = c.name("bill/BillingPeriodStartDate")
        return (
            f"SELECT {c.ts('bill/BillingPeriodStartDate', period=True)} AS billing_period_start, "
            f"{c.text('lineItem/CurrencyCode')} AS currency, count(*) AS source_rows, "
            f"sum({c.num('lineItem/UnblendedCost')}) FILTER (WHERE NOT {self._split_row()}) AS billed, "
            f"sum({self.amortized()}) FILTER (WHERE NOT {self._split_row()}) AS effective "
            f"FROM {self.view} GROUP BY {ident(period)}, {c.text('lineItem/CurrencyCode')}"
        )

    def focus_sql(self, passthrough: dict[str, str]) -> str:
        c = self.c
        svc = services()
        svc_values = ", ".join(f"({sql_str(k)}, {sql_str(a)}, {sql_str(b)})" for k, (a, b) in svc.items())
        lt = "lt"
        usage_like = ["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"]
        from ..units import UNUSED_CAPACITY_USAGE_TYPE_SQL as unused_capacity  # here: units imports sources

        spot = ("(coalesce(x_UsageType, '') LIKE '%SpotUsage%' "
                "OR coalesce(purchase_option, '') IN ('Spot Instances', 'Spot') OR coalesce(market_option, '') = 'Spot')")
        # stage 1: raw values, named once ----------------------------------------------------------------
        raw = {
            "lt": f"coalesce({c.text('lineItem/LineItemType')}, 'Usage')",
            "unblended": c.num("lineItem/UnblendedCost"),
            "usage_amount": c.num("lineItem/UsageAmount"),
            "od_cost": c.num("pricing/publicOnDemandCost"),
            "od_rate": c.num("pricing/publicOnDemandRate"),
            "sp_effective": c.num("savingsPlan/SavingsPlanEffectiveCost"),
            "sp_total": c.num("savingsPlan/TotalCommitmentToDate"),
            "sp_unused": f"coalesce({c.num('savingsPlan/TotalCommitmentToDate')}, 0) - "
                         f"coalesce({c.num('savingsPlan/UsedCommitment')}, 0)",
            "ri_effective": c.num("reservation/EffectiveCost"),
            "ri_unused": f"coalesce({c.num('reservation/UnusedAmortizedUpfrontFeeForBillingPeriod')}, 0) + "
                         f"coalesce({c.num('reservation/UnusedRecurringFee')}, 0)",
            "ri_unused_qty": c.num("reservation/UnusedQuantity"),
            "ri_arn": c.text("reservation/ReservationARN"),
            "sp_arn": c.text("savingsPlan/SavingsPlanARN"),
            "split_row": self._split_row(),
            "bp_start": c.ts("bill/BillingPeriodStartDate", period=True),
            "usage_start": c.ts("lineItem/UsageStartDate"),
            "product_code": c.text("lineItem/ProductCode"),
            "service_code": c.text("product/servicecode"),
            "x_UsageType": c.text("lineItem/UsageType"),
            "purchase_option": f"coalesce({c.text('product/PurchaseOption')}, {c.text('pricing/PurchaseOption')})",
            "market_option": c.text("product/marketoption"),
        }
        raw_sql = ", ".join(f"{v} AS {ident(k)}" for k, v in raw.items())
        keep = {  # columns passed through stage 1 unchanged
            "BillingAccountId": c.text("bill/PayerAccountId"),
            "BillingAccountName": c.text("bill/PayerAccountName"),
            "SubAccountId": c.text("lineItem/UsageAccountId"),
            "SubAccountName": c.text("lineItem/UsageAccountName"),
            "BillingCurrency": c.text("lineItem/CurrencyCode"),
            "PricingCurrency": c.text("pricing/currency"),
            "BillingPeriodEnd": c.ts("bill/BillingPeriodEndDate", period=True),
            "ChargePeriodEnd": c.ts("lineItem/UsageEndDate"),
            "ChargeDescription": c.text("lineItem/LineItemDescription"),
            "InvoiceId": c.text("bill/InvoiceId"),
            # AWS invoices its own services and AWS Marketplace sales, so the issuer is the provider, spelled the
            # same way ("Amazon Web Services, Inc." and "AWS" are one entity; FOCUS reads different spellings as
            # a reseller). The legal invoicing entity is kept in x_InvoicingEntity.
            "InvoiceIssuerName": "'AWS'",
            "x_InvoicingEntity": c.text("bill/InvoicingEntity"),
            # the seller: AWS for its own services, the Marketplace seller's legal entity otherwise
            "PublisherName": (f"CASE WHEN coalesce({c.text('bill/BillingEntity')}, 'AWS') = 'AWS' THEN 'AWS' "
                              f"ELSE coalesce({c.text('lineItem/LegalEntity')}, {c.text('bill/BillingEntity')}) END"),
            "ServiceName": f"coalesce({c.text('product/ProductName')}, {c.text('lineItem/ProductCode')}, "
                           f"{c.text('product/servicename')})",
            "RegionId": f"coalesce({c.text('product/regionCode')}, {c.text('product/region')})",
            "RegionName": c.text("product/location"),
            "AvailabilityZone": c.text("lineItem/AvailabilityZone"),
            "ResourceId": c.text("lineItem/ResourceId"),
            "SkuId": c.text("product/sku"),
            "SkuPriceId": f"coalesce({c.text('pricing/RateCode')}, {c.text('pricing/RateId')})",
            "PricingUnit": c.text("pricing/unit"),
            # a SavingsPlanNegation row cancels the billed cost of covered usage; the list value of that usage is on
            # the SavingsPlanCoveredUsage row, so the negation's list price is 0 (ListCost = price x quantity = 0)
            "ListUnitPrice": (f"CASE WHEN {c.text('lineItem/LineItemType')} = 'SavingsPlanNegation' THEN 0 "
                              f"ELSE {c.num('pricing/publicOnDemandRate')} END"),
            "Tags": c.tags_json(),
            "x_CostCategories": c.categories_json(),
            "x_Operation": c.text("lineItem/Operation"),
            "x_InstanceType": c.text("product/instanceType"),
            "x_SourceFile": "_file",
        }
        if self.c.flavour == "cur2" and "discount" in c.types:
            keep["x_Discounts"] = c.json_of_map("discount", False)
        keep_sql = ", ".join(f"{v} AS {ident(k)}" for k, v in keep.items())
        pass_sql = "".join(f", CAST({ident(src) if not src.startswith('(') else src} AS VARCHAR) AS {ident(x)}"
                           for src, x in passthrough.items() if not src.startswith(DERIVED))
        stage1 = f"SELECT {raw_sql}, {keep_sql}{pass_sql} FROM {self.view}"

        # stage 2: one or two FOCUS rows per CUR row ------------------------------------------------------
        unused_amount = f"CASE {lt} WHEN 'RIFee' THEN ri_unused ELSE sp_unused END"
        parts = (f"unnest(CASE WHEN {_in(lt, COMMITMENT_FEES)} AND NOT split_row AND {unused_amount} <> 0 "
                 "THEN [false, true] ELSE [false] END) AS unused_part")
        effective = f"""CASE
            WHEN split_row THEN 0
            WHEN unused_part THEN {unused_amount}
            WHEN {_in(lt, COMMITMENT_FEES)} THEN 0
            WHEN {lt} = 'SavingsPlanCoveredUsage' THEN coalesce(sp_effective, 0)
            WHEN {lt} IN ('SavingsPlanNegation', 'SavingsPlanUpfrontFee') THEN 0
            WHEN {lt} = 'DiscountedUsage' THEN coalesce(ri_effective, 0)
            WHEN {lt} = 'Fee' AND ri_arn IS NOT NULL THEN 0
            ELSE unblended END"""
        list_cost = f"""CASE
            WHEN split_row OR unused_part THEN 0
            WHEN {_in(lt, usage_like)} THEN coalesce(od_cost, od_rate * usage_amount, unblended)
            WHEN {lt} = 'SavingsPlanNegation' THEN 0
            ELSE unblended END"""
        contracted = f"""CASE
            WHEN split_row OR unused_part THEN 0
            WHEN {lt} = 'DiscountedUsage' THEN coalesce(od_cost, unblended)
            WHEN {lt} = 'SavingsPlanNegation' THEN 0
            ELSE unblended END"""
        attrs = ", ".join([
            f"{_case(lt, 'ChargeCategory', sql_str('Usage'))} AS cat0",
            f"{_case(lt, 'ChargeFrequency', sql_str('Usage-Based'))} AS freq0",
            f"{_case(lt, 'pricing', sql_str('usage'))} AS pricing0",
            f"CASE WHEN {lt} = 'Fee' AND ri_arn IS NOT NULL THEN 'ri' ELSE {_case(lt, 'commitment')} END AS commit0",
            f"{_case(lt, 'status')} AS status0",
        ])
        category = "CASE WHEN unused_part THEN 'Usage' ELSE cat0 END"
        pricing_kind = "pricing0"
        pricing = (f"CASE WHEN unused_part THEN 'Committed' WHEN {pricing_kind} = 'usage' THEN "
                   f"CASE WHEN {spot} THEN 'Dynamic' ELSE 'Standard' END ELSE {pricing_kind} END")
        commitment = "commit0"
        cd_id = f"CASE {commitment} WHEN 'ri' THEN ri_arn WHEN 'sp' THEN sp_arn END"
        status = (f"CASE WHEN unused_part THEN 'Unused' WHEN {cd_id} IS NOT NULL AND ({category}) = 'Usage' "
                  "THEN coalesce(status0, 'Used') END")
        exprs = {
            "BilledCost": "CASE WHEN split_row OR unused_part THEN 0 ELSE unblended END",
            "EffectiveCost": effective,
            "ListCost": list_cost,
            "ContractedCost": contracted,
            "ChargeCategory": category,
            "ChargeClass": (f"CASE WHEN {lt} = 'Refund' AND usage_start < bp_start THEN 'Correction' END"),
            "ChargeFrequency": "CASE WHEN unused_part THEN 'Usage-Based' ELSE freq0 END",
            "PricingCategory": pricing,
            "CommitmentDiscountId": cd_id,
            "CommitmentDiscountType": (f"CASE WHEN {cd_id} IS NOT NULL THEN CASE {commitment} "
                                       "WHEN 'ri' THEN 'Reserved Instance' WHEN 'sp' THEN 'Savings Plan' END END"),
            "CommitmentDiscountCategory": (f"CASE WHEN {cd_id} IS NOT NULL THEN CASE {commitment} "
                                           "WHEN 'ri' THEN 'Usage' WHEN 'sp' THEN 'Spend' END END"),
            "CommitmentDiscountStatus": status,
            # FOCUS 1.2: RIs are measured in hours (used: the covered usage; unused: reservation/UnusedQuantity;
            # the monthly fee: the hours it buys), Savings Plans in commitment dollars (used: the covered usage's
            # SP effective cost; unused: TotalCommitmentToDate - UsedCommitment; the fee: TotalCommitmentToDate;
            # the upfront fee: its amount; a negation consumes none). The RI upfront Fee stays NULL: CUR states a
            # count of reservations there, not the hours they buy.
            "CommitmentDiscountQuantity": f"""CASE WHEN {cd_id} IS NULL THEN NULL
                WHEN unused_part THEN CASE WHEN {lt} = 'RIFee' THEN ri_unused_qty ELSE sp_unused END
                WHEN {lt} IN ('DiscountedUsage', 'RIFee') THEN usage_amount
                WHEN {lt} = 'SavingsPlanCoveredUsage' THEN sp_effective
                WHEN {lt} = 'SavingsPlanNegation' THEN 0
                WHEN {lt} = 'SavingsPlanRecurringFee' THEN sp_total
                WHEN {lt} = 'SavingsPlanUpfrontFee' THEN unblended END""",
            "CommitmentDiscountUnit": f"""CASE WHEN {cd_id} IS NULL THEN NULL
                WHEN {lt} IN ('DiscountedUsage', 'RIFee') THEN 'Hours'
                WHEN {lt} IN ('SavingsPlanCoveredUsage', 'SavingsPlanNegation', 'SavingsPlanRecurringFee',
                              'SavingsPlanUpfrontFee') THEN BillingCurrency END""",
            # FOCUS 1.2: a Usage row MUST have a PricingQuantity. An unused RI row has its unused hours; an unused
            # Savings Plan row the commitment hours left unused: the fee's hours (its usage amount, else the length
            # of its charge period) x unused / total commitment. Its costs other than EffectiveCost are 0, so its
            # unit prices are 0 and price x quantity = cost holds.
            "PricingQuantity": f"""CASE WHEN unused_part THEN CASE WHEN {lt} = 'RIFee' THEN ri_unused_qty
                ELSE CAST(coalesce(usage_amount, date_diff('second', usage_start, ChargePeriodEnd) / 3600)
                          * sp_unused / nullif(sp_total, 0) AS {MONEY}) END
                ELSE usage_amount END""",
            # the usage a Savings Plan covered is consumed once, on its SavingsPlanCoveredUsage row: the negation row
            # consumes nothing (with its usage amount, every SP-covered hour counted twice in instance-hours)
            "ConsumedQuantity": (f"CASE WHEN ({category}) = 'Usage' AND NOT unused_part THEN "
                                 f"CASE WHEN {lt} = 'SavingsPlanNegation' THEN 0 ELSE usage_amount END END"),
            "ConsumedUnit": f"CASE WHEN ({category}) = 'Usage' AND NOT unused_part THEN PricingUnit END",
            "BillingPeriodStart": "bp_start",
            "ChargePeriodStart": "usage_start",
            "ProviderName": sql_str(CurSourceBase.provider_name),
            # keyed by the product code that ServiceName names: EC2 data transfer is ProductCode AmazonEC2 with
            # servicecode AWSDataTransfer, and FOCUS wants one ServiceCategory per ServiceName (ServiceName-C-005)
            "ServiceCategory": "coalesce(s2.cat, CASE WHEN product_code IS NULL THEN s1.cat END, 'Other')",
            "ServiceSubcategory": "coalesce(s2.sub, CASE WHEN product_code IS NULL THEN s1.sub END, 'Other (Other)')",
            "x_UsageType": "x_UsageType",
            # FOCUS 1.2: the unused portion of an On-Demand Capacity Reservation (UnusedBox:p5.48xlarge on the
            # reservation's cr- id) is CapacityReservationStatus 'Unused'; finops_kit.units classes it as unused
            # capacity, not on-demand usage
            "CapacityReservationStatus": f"CASE WHEN {unused_capacity} THEN 'Unused' END",
            "CapacityReservationId": f"CASE WHEN {unused_capacity} THEN ResourceId END",
            "x_SourceKey": (f"concat_ws('|', {sql_str(self.source_name)}, BillingAccountId, "
                            "strftime(bp_start, '%Y-%m'))"),
            "x_CommitmentUnusedRow": "CASE WHEN unused_part THEN 'true' END",
            "x_SplitCostAllocationRow": "CASE WHEN split_row THEN 'true' END",
        }
        out = ", ".join(f"{v} AS {ident(k)}" for k, v in exprs.items())
        keep_cols = ", ".join(ident(k) for k in keep) + "".join(f", {ident(x)}" for x in passthrough.values())
        return (
            f"WITH svc(code, cat, sub) AS (VALUES {svc_values}),\n"
            f"cur AS ({stage1}),\n"
            f"parts AS (SELECT *, {attrs}, {parts} FROM cur)\n"
            f"SELECT {out}, {keep_cols}\n"
            f"FROM parts LEFT JOIN svc s1 ON s1.code = parts.service_code "
            f"LEFT JOIN svc s2 ON s2.code = parts.product_code"
        )


# ---- the source modules -----------------------------------------------------------------------------------------
class CurSourceBase(Source):
    """What legacy CUR and CUR 2.0 share: column resolution, staging with types, diagnosis and pass-through."""

    provider_name = "AWS"
    delivered_in_parts = True  # <report>-<n>.csv.gz / <report>-0000n.snappy.parquet of one assembly or period folder

    flavour_default = "legacy"

    def flavour(self, columns: Sequence[str]) -> str:
        raise NotImplementedError

    def csv_options(self) -> dict[str, object]:
        # CUR CSVs have no row-level quirks except short rows (trailing empty fields missing, seen in koku's test
        # CUR): pad them with NULL rather than failing the whole month.
        return {**super().csv_options(), "delim": ",", "null_padding": True}

    def stage(self, con: duckdb.DuckDBPyConnection, files: list[str], view: str) -> StagedSource:
        """Stage all files as one view; slash and Athena files of one call are merged to one spelling first.

        The files of a format share one ``union_by_name`` view. Without the merge, a call with both spellings has
        ``identity/LineItemId`` *and* ``identity_line_item_id``: the mapping would read only the slash columns
        (the Athena rows lose their cost) and both would be kept as ``x_identity_line_item_id``.
        """
        headers = {f: read_header(f) for f in files} if len(files) > 1 else {}
        styles = {f: self.flavour(h) for f, h in headers.items()}
        snake_names: frozenset[str] = frozenset()
        if {"legacy", "athena"} <= set(styles.values()):
            staged = super().stage(con, files, f"{view}_raw")
            snake_names, spelling = merge_styles(con, staged, view,
                                                 {n for f, h in headers.items() if styles[f] == "legacy" for n in h})
            staged.extra.update(athena_spelling=spelling, athena_files={f for f, s in styles.items() if s == "athena"})
        else:
            staged = super().stage(con, files, view)
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall() if r[0] != "_file"}
        flavour = self.flavour(list(types))
        cols = CurColumns(types, flavour, staged.original_names, snake_names)
        staged.extra.update(types=types, cols=cols, flavour=flavour)
        # the diagnosis (base class) looks for these names in the file's own spelling
        self.numeric_columns = tuple(n for n in (cols.name(x) for x in NUMERIC) if n)
        self.timestamp_columns = tuple(n for n in (cols.name(x) for x in TIMESTAMPS)
                                       if n and types[n].upper() == "VARCHAR")
        return staged

    def check_columns(self, staged: StagedSource) -> None:
        cols: CurColumns = staged.extra["cols"]
        missing = [r if cols.flavour == "legacy" else snake(r) for r in REQUIRED if cols.name(r) is None]
        if missing:
            where = staged.files[0] if len(staged.files) == 1 else f"{staged.files[0]} (+{len(staged.files) - 1} files)"
            raise InputError(where, f"missing required column(s) {', '.join(repr(m) for m in missing)} "
                                    f"for format {self.name}")

    def prepare_value(self, expr: str, typ: str) -> str:
        return iso_text(expr) if typ == "TIMESTAMPTZ" else f"trim({expr})"

    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """The base diagnosis, with the column spelled as the bad file has it: in a mixed slash/Athena call the
        staged column is the slash one (see :func:`merge_styles`), which the Athena file does not contain. A CUR
        2.0 CSV map column (``product``, ``resource_tags``...) whose cell is not JSON is named with its row."""
        bad_map = _bad_map_cell(con, staged)
        if bad_map is not None:
            return bad_map
        err = super().diagnose(con, staged, exc)
        athena = staged.extra.get("athena_spelling", {}).get(err.column or "")
        if athena is None or err.file not in staged.extra.get("athena_files", ()):
            return err
        where = str(InputError(err.file, "", column=err.column, row=err.row))  # "<file>, row n, column 'c': "
        return InputError(err.file, str(err)[len(where):], column=athena, row=err.row)

    def _mapping(self, staged: StagedSource) -> CurMapping:
        return CurMapping(staged.extra["cols"], staged.view, self.key_family or self.name)

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        """The curated extra columns (or, with ``keep_source_columns``, every unconsumed one) as ``x_<snake>``."""
        cols: CurColumns = staged.extra["cols"]
        mapping = self._mapping(staged)
        mapping.focus_sql({})  # records which columns the mapping consumes
        used = set(cols.used)
        exact, prefixes = extra_columns()
        # a header in another case (LINEITEM/NORMALIZATIONFACTOR) has no camel case left to snake: it is matched
        # on its letters and digits instead, so its curated column is not silently dropped
        squashed = {re.sub(r"[^0-9a-z]", "", n): n for n in exact}
        out: dict[str, str] = {}
        for c in cols.types:
            if c in used or c in cols.MAPS:
                continue
            s = snake(c) if cols.flavour == "legacy" else c
            if s not in exact and not s.startswith(prefixes):
                s = squashed.get(re.sub(r"[^0-9a-z]", "", cols.original(c).lower()), s)
            if s.startswith(FOLDED_PREFIXES):
                continue
            if self.keep_source_columns or s in exact or s.startswith(prefixes):
                out[c] = "x_" + s
        for d in DERIVED_COLUMNS + (("x_Discounts",) if cols.flavour == "cur2" and "discount" in cols.types else ()):
            out[DERIVED + d] = d
        if cols.flavour == "cur2" and "product" in cols.types:
            product = cols.map_expr("product")
            if self.keep_source_columns:
                out[f"(CAST(to_json({product}) AS VARCHAR))"] = "x_product"
            for s in sorted(n for n in exact if n.startswith("product_")):
                if cols.name(s) is None:  # not a top-level CUR 2.0 column: look it up in the MAP
                    out[f"({product}[{sql_str(s[len('product_'):])}])"] = "x_" + s
        return out

    row_identity = "identity/LineItemId and identity/TimeInterval"

    def row_key_sql(self, staged: StagedSource) -> str:
        """AWS's own line-item identity: ``identity/LineItemId`` within ``identity/TimeInterval``."""
        cols: CurColumns = staged.extra["cols"]
        names = [cols.name("identity/LineItemId"), cols.name("identity/TimeInterval")]
        if None in names:
            return self.row_content_sql(staged)
        return f"hash({', '.join(ident(n) for n in names)})"

    def focus_identity(self, staged: StagedSource) -> list[str] | None:
        cols: CurColumns = staged.extra["cols"]
        kept = self.passthrough_columns(staged)
        line_item = cols.name("identity/LineItemId")
        if line_item is None or cols.name("identity/TimeInterval") is None or line_item not in kept:
            return None
        # the time interval is the usage start/end the mapping writes as the charge period
        return [kept[line_item], "ChargePeriodStart", "ChargePeriodEnd"]

    def focus_sql(self, staged: StagedSource) -> str:
        return self._mapping(staged).focus_sql(self.passthrough_columns(staged))

    def source_totals_sql(self, staged: StagedSource) -> str:
        return self._mapping(staged).source_totals_sql()


def _squash(name: str) -> str:
    """Letters and digits of a column name, lower case: ``LINEITEM/NORMALIZATIONFACTOR`` has no camel case left
    for :func:`snake` to split, but squashes to the same text as ``line_item_normalization_factor``."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _folded_legacy_name(column: str) -> str:
    """The slash spelling of an Athena tag / cost category column that gives the same key as the Athena reading:
    ``resource_tags_user_team`` -> ``resourceTags/user:team`` (key ``team``), ``resource_tags_aws_created_by`` ->
    ``resourceTags/aws:created_by``, ``cost_category_team`` -> ``costCategory/team``."""
    if column.startswith("cost_category_"):
        return "costCategory/" + column[len("cost_category_"):]
    key = column[len("resource_tags_"):]
    if key.startswith("user_"):
        return "resourceTags/user:" + key[5:]
    if key.startswith("aws_"):
        return "resourceTags/aws:" + key[4:]
    return "resourceTags/" + key


def merge_styles(con: duckdb.DuckDBPyConnection, staged: StagedSource, view: str, legacy_header: set[str]
                 ) -> tuple[frozenset[str], dict[str, str]]:
    """Create ``view`` over ``staged`` (slash and Athena files unioned by name) with one column per meaning.

    Every row comes from one file, so the two spellings of a column never both hold a value: an Athena column
    with a slash counterpart is folded into it (``coalesce``, the slash name stays, so the mapping, the row key
    and the ``x_`` name are those of a slash-only ingest). Athena tag and cost category columns are renamed to
    the slash spelling that yields the key the Athena file alone yields (``team``, ``aws:created_by``), under a
    unique alias (``original_names`` restores the spelling). The other Athena columns stay as they are; their
    names are returned, for :class:`CurColumns` to find them by their snake spelling and for the ``x_`` names,
    which equal an Athena-only ingest's, with ``{slash column: the Athena column folded into it}`` (an error in an
    Athena file names the column as that file spells it). ``staged`` is updated to describe ``view``.
    """
    def original(c: str) -> str:
        return staged.original_names.get(c, c)

    raw = [c for c in staged.columns if c != "_file"]
    slash = [c for c in raw if original(c) in legacy_header]
    by_snake: dict[str, list[str]] = {}
    by_squash: dict[str, list[str]] = {}
    for c in sorted(slash):
        by_snake.setdefault(snake(original(c)), []).append(c)
        by_squash.setdefault(_squash(original(c)), []).append(c)
    partner: dict[str, str] = {}  # slash column -> the Athena column folded into it
    extra: list[str] = []  # select items of the Athena-only columns
    renamed: dict[str, str] = {}
    snake_names: set[str] = set()
    for c in raw:
        if c in slash:
            continue
        name = original(c)
        if name.startswith(FOLDED_PREFIXES):
            alias = f"{_folded_legacy_name(name)}~{name}"
            renamed[alias] = _folded_legacy_name(name)
            extra.append(f"{ident(c)} AS {ident(alias)}")
            continue
        match = next((p for p in by_snake.get(name, []) + by_squash.get(_squash(name), []) if p not in partner),
                     None)
        if match is not None:
            partner[match] = c
        else:
            snake_names.add(c)
            extra.append(ident(c))
    items = []
    for c in slash:
        other = partner.get(c)
        if other is None:
            items.append(ident(c))
        elif staged.types.get(c) == staged.types.get(other):
            items.append(f"coalesce({ident(c)}, {ident(other)}) AS {ident(c)}")
        else:  # typed parquet of two layouts: text is what every accessor of CurColumns accepts
            items.append(f"coalesce(CAST({ident(c)} AS VARCHAR), CAST({ident(other)} AS VARCHAR)) AS {ident(c)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {', '.join(items + extra)}, _file FROM {staged.view}")
    described = con.execute(f"DESCRIBE {view}").fetchall()
    staged.view = view
    staged.columns = [r[0] for r in described]
    staged.types = {r[0]: r[1] for r in described}
    staged.original_names = {a: n for a, n in {**staged.original_names, **renamed}.items() if a in staged.types}
    return frozenset(snake_names), {c: original(a) for c, a in partner.items()}


def _is_legacy(columns: Sequence[str]) -> bool:
    low = [c.lower() for c in columns]
    return any(c.startswith("lineitem/") for c in low) and any(c.startswith("bill/") for c in low)


def _is_snake_cur(columns: Sequence[str]) -> bool:
    cols = set(columns)
    return "line_item_line_item_type" in cols or "line_item_unblended_cost" in cols


def _bad_map_cell(con: duckdb.DuckDBPyConnection, staged: StagedSource) -> InputError | None:
    """The first cell of a CUR 2.0 map column carried as text that is not JSON (the Hive/Athena rendering
    ``{k=v, ...}``, say), as a one-line error naming file, row and column; None when there is none."""
    cols = staged.extra.get("cols")
    if cols is None or cols.flavour != "cur2":
        return None
    for column in CurColumns.MAPS:
        if column not in cols.types or cols.types[column].upper().startswith("MAP"):
            continue
        bad = first_bad_cell(con, staged, column, "v IS NOT NULL AND NOT coalesce(json_valid(v), false)",
                             f"nullif(trim(CAST({ident(column)} AS VARCHAR)), '')")
        if bad:
            shown = bad[2] if len(bad[2]) <= 80 else bad[2][:77] + "..."
            return InputError(bad[0], f"cannot parse {shown!r}; expected a JSON object (a CUR 2.0 CSV map column)",
                              column=column, row=bad[1])
    return None


@register
class AwsCurSource(CurSourceBase):
    name = "aws-cur"
    description = "AWS Cost and Usage Report (legacy CUR: slash columns or Athena snake_case; CSV, CSV.gz, parquet)"
    signature = ("lineItem/LineItemType", "lineItem/UnblendedCost")
    key_family = "aws"  # legacy CUR and CUR 2.0 of one payer and month replace each other (a migration never double counts)

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        if _is_legacy(columns):
            return True
        # Athena snake_case legacy CUR: one column per tag, no CUR 2.0 MAP columns
        return _is_snake_cur(columns) and not {"product", "resource_tags"} & set(columns)

    def flavour(self, columns: Sequence[str]) -> str:
        return "legacy" if _is_legacy(columns) else "athena"


__all__ = ["AwsCurSource", "CurSourceBase", "CurColumns", "CurMapping", "snake", "file_kind"]
