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
"""

from __future__ import annotations

from functools import cache

from ..datafiles import data_rows
from ..schema import MONEY
from .base import Source, StagedSource, ident, json_object_expr, register, sql_str
from .focus import utc_timestamp


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

    def _col(self, staged: StagedSource, name: str, cast: str | None = None) -> str:
        if name not in staged.columns:
            return "NULL"
        ref = ident(name)
        return f"CAST(trim({ref}) AS {cast})" if cast else ref

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
          trim({ident('cost/currencyCode')}) AS BillingCurrency,
          {ident('lineItem/tenantId')} AS BillingAccountId,
          {root_name} AS BillingAccountName,
          {c(staged, 'product/compartmentId')} AS SubAccountId,
          {c(staged, 'product/compartmentName')} AS SubAccountName,
          'Tenancy' AS BillingAccountType, 'Compartment' AS SubAccountType,
          date_trunc('month', {start}) AS BillingPeriodStart,
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
          _file AS x_SourceFile
        FROM {staged.view}
        """

    def source_totals_sql(self, staged: StagedSource) -> str:
        start = utc_timestamp(ident("lineItem/intervalUsageStart"))
        cost = f"CAST(trim({ident('cost/myCost')}) AS {MONEY})"
        return (f"SELECT date_trunc('month', {start}) AS billing_period_start, trim({ident('cost/currencyCode')}) "
                f"AS currency, count(*) AS source_rows, sum({cost}) AS billed, sum({cost}) AS effective "
                f"FROM {staged.view} GROUP BY ALL")
