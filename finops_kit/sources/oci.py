"""Oracle Cloud (OCI) cost reports (``reports/cost-csv``) -> FOCUS 1.2.

OCI bills calendar months, and the report has no billing-period column: the billing period is the month of
``lineItem/intervalUsageStart``. ``cost/myCost`` is what the customer is charged (unit price x billed quantity,
after the customer's discounts), so it is both BilledCost and EffectiveCost; the report carries no public list
price, so ListCost = ContractedCost = myCost; ListUnitPrice is not mapped here, and the shared conformance step
derives it on Usage and Purchase rows as ListCost / PricingQuantity (FOCUS requires it there), i.e. the
customer's own price, not a public list price the report does not have.
Following Oracle's own FOCUS reports, the tenancy is the billing account (named after its root compartment)
and compartments are sub-accounts.
Tags arrive as one ``tags/<namespace>.<key>`` column each and become one Tags JSON object.

No row gets an ``x_InstanceType``: the report names no shape (``BM.GPU.H100.8`` is not in it), and a type guessed
from a SKU would give GPU counts and instance-hours the bill does not hold. What an OCI row measures is data, read
from the columns mapped here (``ConsumedUnit`` = ``cost/skuUnitDescription``, ``x_UsageType`` =
``product/Description``): a GPU SKU billed per GPU per hour (``GPU Per Hour``) is accelerated compute
(``data/ai_workloads.csv``) whose quantity is accelerator-hours and whose family is the GPU model its description
names (``data/usage_units.csv``: ``Compute - GPU - H100`` -> ``h100``); its instance-hours stay unknown.

Report files are incremental, not restatements. OCI writes a tenancy's cost report as a sequence of files
(``reports/cost-csv/<16-digit sequence number>.csv.gz``, several a day); each holds line items no other file holds
(``lineItem/referenceNo``), and a correction arrives as new lines (``lineItem/isCorrection``) in a later file, never
as a re-delivery of an earlier one. Oracle's own loader (oci-python-sdk ``examples/usage_reports_to_adw``) keeps
a FILE_ID per row and loads each file once. So the replacement key of a row names its file:
``x_SourceKey = oci|<tenancy>|<YYYY-MM>|<file id>``, where the file id is the file's 16-digit sequence number when
its name holds one (``0001000000123456.csv.gz`` as the bucket names it, ``reports_cost-csv_0001000000123456.csv.gz``
as some download tools flatten the path, ``0001000000123456.csv`` once unpacked: one file, one id), otherwise its
path without extensions (a name outside OCI's sequence, such as ``cost_report.csv``, tells two files apart only by
their folders). The next file of a day is then added beside the stored ones (no key in
common), and the same file ingested again replaces itself (an idempotent re-run).

The line item's ``lineItem/referenceNo`` is kept as ``x_LineItemId``, and it is the identity by which a charge
repeated in two files of one ingest is found (refused, or dropped with ``--dedupe`` when the copies are equal).
The same line items ingested in a LATER call from a file of another name are a different key: the ingest finds
them among the stored rows by ``x_LineItemId`` (``stored_identity``) and refuses them, on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import duckdb

from ..datafiles import data_rows
from ..errors import InputError
from ..schema import LINEAGE_COLUMNS, MONEY, focus_column_names
from .base import (
    Source,
    StagedSource,
    first_bad_cell,
    ident,
    json_object_expr,
    register,
    sql_str,
    x_column_names,
)
from .focus import utc_timestamp

#: the line item's own id, and the x_ column that keeps it
REFERENCE_NO = "lineItem/referenceNo"
LINE_ITEM_ID = "x_LineItemId"
#: the report's columns the mapping reads (``tags/*`` too); every other column is kept as an ``x_`` column
#: (``cost/myCostOverage`` -> ``x_cost_myCostOverage``, ``cost/attributedCost``, ``cost/subscriptionId``, ...)
MAPPED = frozenset({
    REFERENCE_NO, "lineItem/tenantId", "lineItem/intervalUsageStart", "lineItem/intervalUsageEnd",
    "lineItem/isCorrection", "product/service", "product/compartmentId", "product/compartmentName",
    "product/region", "product/availabilityDomain", "product/resourceId", "product/Description",
    "usage/billedQuantity", "cost/myCost", "cost/unitPrice", "cost/currencyCode", "cost/skuUnitDescription",
    "cost/productSku"})
#: columns a row cannot do without: a blank one is refused naming the file, row and column (a blank
#: ``cost/myCost`` fails its cast and is named by the base diagnosis)
NOT_BLANK = ("lineItem/intervalUsageStart", "cost/currencyCode", "lineItem/tenantId")
#: extensions taken off a file's name for its id (any order and number: .csv.gz, .csv, .CSV.GZ)
_EXTENSIONS = r"(\.(csv|gz|gzip|zip|bz2|zst|txt))+$"


def file_id_sql(path: str) -> str:
    """SQL: the id of the report file at ``path`` (see the module docstring): the last 16-digit number in its name
    that no other digit touches, else the path (``/`` for either separator) without extensions -- a name such as
    ``cost_report.csv`` names no file of OCI's sequence, so two of them in two folders are two files (a copy of
    stored line items under another path is refused by their ``x_LineItemId``)."""
    name = f"regexp_replace(regexp_replace({path}, '^.*[/\\\\]', ''), '{_EXTENSIONS}', '', 'i')"
    seq = f"list_filter(regexp_extract_all({name}, '[0-9]+'), lambda n: length(n) = 16)"
    whole = f"regexp_replace(replace({path}, '\\', '/'), '{_EXTENSIONS}', '', 'i')"
    return f"coalesce({seq}[-1], {whole})"


#: Rows stored before each file was its own key carry ``oci|<tenancy>|<YYYY-MM>``: the per-file key they get before
#: the replacement rule runs (:meth:`OciCostReport.stored_key_upgrade`), so that a re-run of their file replaces them
OLD_KEY = "len(string_split(x_SourceKey, '|')) = 3"


@cache
def oci_services() -> tuple[dict[str, str], ...]:
    return tuple(data_rows("oci_services.csv"))


def _lookup(field: str, fallback: str) -> str:
    whens = " ".join(f"WHEN {sql_str(r['service'])} THEN {sql_str(r[field])}" for r in oci_services())
    return f"CASE {ident('product/service')} {whens} ELSE {fallback} END"


@register
class OciCostReport(Source):
    name = "oci"
    provider_name = "Oracle"
    description = "Oracle Cloud Infrastructure cost reports (CSV, CSV.gz)"
    signature = ("lineItem/referenceNo", "cost/myCost", "lineItem/intervalUsageStart")
    required_columns = ("lineItem/intervalUsageStart", "lineItem/intervalUsageEnd", "cost/myCost",
                        "cost/currencyCode", "lineItem/tenantId", "product/service")
    numeric_columns = ("cost/myCost", "usage/billedQuantity", "cost/unitPrice")
    timestamp_columns = ("lineItem/intervalUsageStart", "lineItem/intervalUsageEnd")
    key_family = "oci"
    row_identity = "lineItem/referenceNo"
    stored_identity = LINE_ITEM_ID  # files are incremental: a line item stored from another file is a copy

    def _col(self, staged: StagedSource, name: str, cast: str | None = None) -> str:
        if name not in staged.columns:
            return "NULL"
        ref = ident(name)
        return f"CAST(trim({ref}) AS {cast})" if cast else ref

    @classmethod
    def not_billing(cls, columns: Sequence[str]) -> str | None:
        """OCI's usage report (``reports/usage-csv``): the cost report's line items without any ``cost/`` column."""
        if REFERENCE_NO in columns and "lineItem/intervalUsageStart" in columns and not any(
                c.startswith("cost/") for c in columns):
            return ("OCI usage report (no cost columns), not a cost export: the costs are in the cost reports "
                    "(reports/cost-csv)")
        return None

    def passthrough_columns(self, staged: StagedSource) -> dict[str, str]:
        """``lineItem/referenceNo`` as ``x_LineItemId``, and every column the mapping does not read as an ``x_``
        column (the overage columns, ``cost/attributedCost``, ``cost/subscriptionId``, ...)."""
        out = {REFERENCE_NO: LINE_ITEM_ID} if REFERENCE_NO in staged.columns else {}
        rest = [c for c in staged.columns if c not in MAPPED and not c.startswith("tags/") and not c.startswith("_")]
        reserved = {*focus_column_names(), *LINEAGE_COLUMNS, LINE_ITEM_ID, "x_AiWorkload_src"}
        out.update(x_column_names(rest, reserved))
        return out

    def diagnose(self, con: duckdb.DuckDBPyConnection, staged: StagedSource, exc: Exception) -> InputError:
        """A blank value in a column no row can do without, named by its file, row and report column; else the base
        diagnosis."""
        for column in NOT_BLANK:
            if column not in staged.columns:
                continue
            bad = first_bad_cell(con, staged, column, "v IS NULL", f"nullif(trim(CAST({ident(column)} AS VARCHAR)), '')")
            if bad:
                return InputError(bad[0], "an empty value; every OCI cost report row needs one", column=column,
                                  row=bad[1])
        return super().diagnose(con, staged, exc)

    @classmethod
    def stored_key_upgrade(cls) -> tuple[str, str] | None:
        return (f"x_SourceFormat = {sql_str(cls.name)} AND {OLD_KEY}",
                f"x_SourceKey || '|' || {file_id_sql('x_SourceFile')}")

    def row_key_sql(self, staged: StagedSource) -> str:
        """One value per line item: its ``lineItem/referenceNo`` (a row without one: the whole row)."""
        if REFERENCE_NO not in staged.columns:
            return self.row_content_sql(staged)
        ref = f"nullif(trim({ident(REFERENCE_NO)}), '')"
        return f"CASE WHEN {ref} IS NULL THEN {self.row_content_sql(staged)} ELSE hash({ref}) END"

    def focus_sql(self, staged: StagedSource) -> str:
        c = self._col
        start = utc_timestamp(ident("lineItem/intervalUsageStart"))
        cost = c(staged, "cost/myCost", MONEY)
        tag_cols = [n for n in staged.columns if n.startswith("tags/")]
        tags = json_object_expr([(n[len("tags/"):], f"nullif(trim({ident(n)}), '')") for n in tag_cols])
        # the tenancy's name is the name of its root compartment (the compartment whose id is the tenancy's)
        root_name = (f"max(CASE WHEN {c(staged, 'product/compartmentId')} = {ident('lineItem/tenantId')} THEN "
                     f"{c(staged, 'product/compartmentName')} END) OVER (PARTITION BY {ident('lineItem/tenantId')})")
        correction = f"lower(coalesce({c(staged, 'lineItem/isCorrection')}, 'false')) = 'true'"
        return f"""
        SELECT
          {cost} AS BilledCost, {cost} AS EffectiveCost, {cost} AS ListCost, {cost} AS ContractedCost,
          {c(staged, 'cost/unitPrice', MONEY)} AS ContractedUnitPrice,
          {c(staged, 'usage/billedQuantity', MONEY)} AS PricingQuantity,
          {c(staged, 'cost/skuUnitDescription')} AS PricingUnit,
          {c(staged, 'usage/billedQuantity', MONEY)} AS ConsumedQuantity,
          {c(staged, 'cost/skuUnitDescription')} AS ConsumedUnit,
          CASE WHEN nullif(trim({ident('cost/currencyCode')}), '') IS NULL THEN error('empty cost/currencyCode')
               ELSE trim({ident('cost/currencyCode')}) END AS BillingCurrency,
          {ident('lineItem/tenantId')} AS BillingAccountId,
          {root_name} AS BillingAccountName,
          {c(staged, 'product/compartmentId')} AS SubAccountId,
          {c(staged, 'product/compartmentName')} AS SubAccountName,
          'Tenancy' AS BillingAccountType, 'Compartment' AS SubAccountType,
          CASE WHEN {start} IS NULL THEN error('empty lineItem/intervalUsageStart')
               ELSE date_trunc('month', {start}) END AS BillingPeriodStart,
          date_trunc('month', {start}) + INTERVAL 1 MONTH AS BillingPeriodEnd,
          {start} AS ChargePeriodStart,
          {utc_timestamp(ident('lineItem/intervalUsageEnd'))} AS ChargePeriodEnd,
          'Usage' AS ChargeCategory,
          CASE WHEN {correction} THEN 'Correction' END AS ChargeClass,
          'Usage-Based' AS ChargeFrequency,
          'Standard' AS PricingCategory,
          {c(staged, 'product/Description')} AS ChargeDescription,
          {sql_str(self.provider_name)} AS ProviderName, 'Oracle' AS PublisherName, 'Oracle' AS InvoiceIssuerName,
          {_lookup('service_name', ident('product/service'))} AS ServiceName,
          {_lookup('service_category', "'Other'")} AS ServiceCategory,
          {_lookup('service_subcategory', "NULL")} AS ServiceSubcategory,
          {c(staged, 'product/region')} AS RegionId,
          {c(staged, 'product/region')} AS RegionName,
          nullif(trim({c(staged, 'product/availabilityDomain')}), '') AS AvailabilityZone,
          {c(staged, 'product/resourceId')} AS ResourceId,
          CASE WHEN {c(staged, 'product/resourceId')} IS NOT NULL THEN
            {_lookup('service_subcategory', "'Other'")} END AS ResourceType,
          {c(staged, 'cost/productSku')} AS SkuId,
          {c(staged, 'product/Description')} AS SkuMeter,
          {c(staged, 'product/Description')} AS x_UsageType,
          {tags} AS Tags,
          {c(staged, REFERENCE_NO)} AS {LINE_ITEM_ID},
          {"".join(f"CAST({ident(src)} AS VARCHAR) AS {ident(x)}, " for src, x in self.passthrough_columns(staged).items()
                   if src != REFERENCE_NO)}
          _file AS x_SourceFile,
          concat_ws('|', {sql_str(self.key_family)}, {ident('lineItem/tenantId')},
                    strftime(date_trunc('month', {start}), '%Y-%m'), {file_id_sql('_file')}) AS x_SourceKey
        FROM {staged.view}
        """

    def source_totals_sql(self, staged: StagedSource) -> str:
        start = utc_timestamp(ident("lineItem/intervalUsageStart"))
        cost = f"CAST(trim({ident('cost/myCost')}) AS {MONEY})"
        return (f"SELECT date_trunc('month', {start}) AS billing_period_start, trim({ident('cost/currencyCode')}) "
                f"AS currency, count(*) AS source_rows, sum({cost}) AS billed, sum({cost}) AS effective "
                f"FROM {staged.view} GROUP BY ALL")
