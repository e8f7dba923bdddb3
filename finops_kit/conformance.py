"""Shared FOCUS 1.2 conformance, applied to every source's mapped rows (the dialects' shared base).

A FOCUS column that is present must satisfy the spec's rules, and the warehouse table always has all 57 columns.
Rules that follow from the spec alone — not from any one provider — are written here once instead of in every
source module:

* **fill** a NULL with the value the spec defines from other columns (ServiceSubcategory "Other (<category>)",
  PricingCurrency = BillingCurrency, pricing-currency amounts when both currencies are the same, account types and
  region names from reviewed tables, a region id from a region name or alias (data/region_aliases.csv), a name from
  its id where the provider exports no name);
* **clear** what the spec says MUST be NULL (a RegionName without a known RegionId, unless it is spelled like
  one; PricingQuantity and SkuId on Tax rows, ConsumedQuantity on anything but used Usage, CommitmentDiscount*
  without a CommitmentDiscountId, a PricingUnit without a PricingQuantity, a quantity without a unit on credits
  and adjustments);
* **normalize** units to the FOCUS unit format ("Hrs" -> "Hours", "GB-Mo" -> "GB-Months", data/units.csv);
* **derive** the unit prices FOCUS requires: ContractedUnitPrice and ListUnitPrice MUST NOT be null on Usage and
  Purchase rows that are not corrections, and price x PricingQuantity MUST match the cost. A source that exports a
  rate the kit's costs are built from maps it itself (Azure UnitPrice/PayGPrice, OCI unitPrice, CUR
  publicOnDemandRate); any price still missing is the row's own cost / PricingQuantity (when the quantity is not
  zero), one rule for every source. The provider's other rates are not used: CUR's lineItem/UnblendedRate is the
  on-demand rate on RI-covered rows whose ContractedCost is the on-demand cost, and misses the kit's ContractedCost
  by more than the quality tolerance on about 2,000 sample rows, so it stays in x_line_item_unblended_rate; GCP's
  price.effective_price is after discounts the kit keeps out of ContractedCost.

Money columns are never touched here, so the reconciliation proof is unaffected.
"""

from __future__ import annotations

from functools import cache

from .datafiles import data_rows
from .sources.base import sql_str


def _rows(name: str) -> list[dict[str, str]]:
    return data_rows(name)


def _case(expr: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return "NULL"
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in pairs)
    return f"CASE {expr} {whens} END"


#: lookups joined (hash joins on tiny tables) rather than evaluated as CASE chains: 400 WHEN branches per row
#: cost seconds per million rows, a join costs a probe
UNIT_JOINS = {"PricingUnit": "_pu", "ConsumedUnit": "_cu", "CommitmentDiscountUnit": "_du"}


def focus_unit(column: str) -> str:
    """The column's unit in FOCUS unit format (unknown spellings pass through unchanged)."""
    return f"coalesce({UNIT_JOINS[column]}.focus_unit, nullif(trim({column}), ''))"


@cache
def lookup_ctes() -> str:
    """``WITH`` entries for the unit and region tables (data/units.csv, data/regions.csv)."""
    # keys must be unique, or the LEFT JOIN would repeat rows (the first entry of a duplicate wins)
    unit_map: dict[str, str] = {}
    for r in _rows("units.csv"):
        unit_map.setdefault(r["provider_unit"], r["focus_unit"])
    region_map: dict[tuple[str, str], str] = {}
    for r in _rows("regions.csv"):
        region_map.setdefault((r["provider_name"], r["region_id"]), r["region_name"])
    # region spellings -> id: every region name, then the reviewed aliases (first entry of a duplicate wins)
    alias_map: dict[tuple[str, str], str] = {}
    for (p, i), n in region_map.items():
        alias_map.setdefault((p, n.strip().lower()), i)
    for r in _rows("region_aliases.csv"):
        alias_map.setdefault((r["provider_name"], r["alias"].strip().lower()), r["region_id"])
    units = ", ".join(f"({sql_str(k)}, {sql_str(v)})" for k, v in unit_map.items())
    regions = ", ".join(f"({sql_str(p)}, {sql_str(i)}, {sql_str(n)})" for (p, i), n in region_map.items())
    aliases = ", ".join(f"({sql_str(p)}, {sql_str(a)}, {sql_str(i)})" for (p, a), i in alias_map.items())
    return (f"_units(provider_unit, focus_unit) AS (VALUES {units}), "
            f"_regions(provider_name, region_id, region_name) AS (VALUES {regions}), "
            f"_region_aliases(provider_name, alias, region_id) AS (VALUES {aliases})")


def conformance_select(inner: str, types: dict[str, str]) -> str:
    """``SELECT`` applying :func:`conformance_exprs` to the completed rows of ``inner`` (all FOCUS columns)."""
    joins = " ".join(f"LEFT JOIN _units {alias} ON {alias}.provider_unit = trim(i.{col})"
                     for col, alias in UNIT_JOINS.items())
    joins += " LEFT JOIN _regions _rg ON _rg.provider_name = i.ProviderName AND _rg.region_id = i.RegionId"
    joins += (" LEFT JOIN _region_aliases _ra ON i.RegionId IS NULL AND _ra.provider_name = i.ProviderName "
              "AND _ra.alias = lower(trim(i.RegionName))")
    replace = ", ".join(f'CAST({expr} AS {types[name]}) AS "{name}"' for name, expr in conformance_exprs().items())
    return f"WITH {lookup_ctes()} SELECT i.* REPLACE ({replace}, {repair_expr()} AS x_Repair) FROM ({inner}) i {joins}"


#: A RegionName spelled like a region id (lower-case words joined by hyphens: 'us-sanjose-1', 'us-central1') with
#: no RegionId is that id: OCI rows of the official FOCUS sample write their region id in RegionName, and the rule
#: "RegionName MUST be null when RegionId is null" cleared it. A display name ('East US') is looked up in
#: region_aliases.csv; one that is neither is cleared and flagged in x_Repair.
ID_SHAPED_REGION_NAME = "regexp_full_match(trim(RegionName), '[a-z]{2,}(-[a-z0-9]+)+')"

#: rows on which FOCUS 1.2 requires PricingQuantity, ContractedUnitPrice and ListUnitPrice (and SkuId)
PRICED_ROW = "(ChargeCategory IN ('Usage', 'Purchase') AND coalesce(ChargeClass, '') <> 'Correction')"


def unit_price(price: str, cost: str) -> str:
    """The source's unit price, else ``cost / PricingQuantity`` on a row that FOCUS requires a price on.

    Derived from the kit's own cost so that price x quantity = cost holds by construction (to the 12 decimals the
    price keeps). A zero or missing quantity gives no price: nothing honest can be said about it. The result may be
    negative (a negative cost at a positive quantity): the sign then moves to the quantity as for a source's price.
    """
    return (f"coalesce({price}, CASE WHEN {PRICED_ROW} AND PricingQuantity <> 0 "
            f"THEN CAST({cost} / PricingQuantity AS DECIMAL(38,12)) END)")


def repair_expr() -> str:
    """``x_Repair`` of a row: the source's repairs plus the value-changing ones made here (quality.REPAIRS).

    The common row has none: the CASE skips the string work unless a condition holds.
    """
    negative = (f"({unit_price('ListUnitPrice', 'ListCost')} < 0 "
                f"OR {unit_price('ContractedUnitPrice', 'ContractedCost')} < 0 OR PricingCurrencyListUnitPrice < 0 "
                "OR PricingCurrencyContractedUnitPrice < 0)")
    nameless = (f"(RegionId IS NULL AND nullif(trim(RegionName), '') IS NOT NULL AND _ra.region_id IS NULL "
                f"AND NOT coalesce({ID_SHAPED_REGION_NAME}, false))")
    return (f"CASE WHEN x_Repair IS NOT NULL OR {negative} OR {nameless} THEN nullif(concat_ws(',', x_Repair, "
            f"CASE WHEN {negative} THEN 'negative_unit_price' END, "
            f"CASE WHEN {nameless} THEN 'region_name_without_id' END), '') END")


@cache
def conformance_exprs() -> dict[str, str]:
    """FOCUS column -> SQL expression over the completed (pre-conformance) row."""
    accounts = _rows("account_types.csv")
    subcategory = "coalesce(ServiceSubcategory, 'Other (' || ServiceCategory || ')')"
    same_currency = "(PricingCurrency IS NULL OR PricingCurrency = BillingCurrency)"
    is_tax = "ChargeCategory = 'Tax'"
    consumed = "(ChargeCategory = 'Usage' AND coalesce(CommitmentDiscountStatus, '') <> 'Unused')"
    no_commitment = "CommitmentDiscountId IS NULL"
    unitless = "nullif(trim(PricingUnit), '') IS NULL"
    contracted_price = unit_price("ContractedUnitPrice", "ContractedCost")
    list_price = unit_price("ListUnitPrice", "ListCost")
    negative_price = f"(coalesce({contracted_price}, {list_price}) < 0 AND PricingQuantity > 0)"
    region_id = (f"coalesce(RegionId, _ra.region_id, CASE WHEN {ID_SHAPED_REGION_NAME} THEN trim(RegionName) END)")
    return {
        # --- fills: values the spec defines from other columns --------------------------------------------
        "ServiceSubcategory": subcategory,
        "PricingCurrency": "coalesce(PricingCurrency, BillingCurrency)",
        "PricingCurrencyEffectiveCost":
            f"coalesce(PricingCurrencyEffectiveCost, CASE WHEN {same_currency} THEN EffectiveCost END)",
        "PricingCurrencyListUnitPrice":
            f"abs(coalesce(PricingCurrencyListUnitPrice, CASE WHEN {same_currency} THEN {list_price} END))",
        "PricingCurrencyContractedUnitPrice":
            f"abs(coalesce(PricingCurrencyContractedUnitPrice, CASE WHEN {same_currency} THEN {contracted_price} END))",
        "BillingAccountType": "coalesce(BillingAccountType, CASE WHEN BillingAccountId IS NOT NULL THEN "
                              f"{_case('ProviderName', [(r['provider_name'], r['billing_account_type']) for r in accounts])} END)",
        "SubAccountType": "coalesce(SubAccountType, CASE WHEN SubAccountId IS NOT NULL THEN "
                          f"{_case('ProviderName', [(r['provider_name'], r['sub_account_type']) for r in accounts])} END)",
        # exports without account names (legacy CUR, GCP projects without names): the id is the best name we have
        "BillingAccountName": "coalesce(BillingAccountName, BillingAccountId)",
        "SubAccountName": "coalesce(SubAccountName, SubAccountId)",
        # a region named without its id ('US East', 'US West (Oregon)'): the id from the reviewed names and aliases;
        # a name whose id stays unknown is cleared (RegionName MUST be null when RegionId is null)
        "RegionId": region_id,
        "RegionName": f"CASE WHEN {region_id} IS NOT NULL THEN coalesce(RegionName, _rg.region_name, RegionId) END",
        "ResourceType": f"coalesce(ResourceType, CASE WHEN ResourceId IS NOT NULL THEN {subcategory} END)",
        "SkuMeter": "coalesce(SkuMeter, CASE WHEN SkuId IS NOT NULL AND NOT coalesce(" + is_tax + ", false) "
                    "THEN coalesce(x_UsageType, ChargeDescription) END)",
        # --- clears: what the spec says MUST be NULL ------------------------------------------------------
        # a quantity without a unit cannot be read: on credits and adjustments it is dropped; on Usage and
        # Purchase (where FOCUS requires a quantity) the unit becomes the generic count unit "Units"
        "PricingQuantity": f"CASE WHEN {is_tax} OR ({unitless} AND ChargeCategory NOT IN ('Usage', 'Purchase')) "
                           f"THEN NULL WHEN {negative_price} THEN -PricingQuantity ELSE PricingQuantity END",
        # unit prices are never negative in FOCUS: a refund is a negative quantity at the (positive) price;
        # a price the source lacks on a Usage or Purchase row is derived from the cost (unit_price)
        "ContractedUnitPrice": f"abs({contracted_price})",
        "ListUnitPrice": f"abs({list_price})",
        "PricingUnit": f"CASE WHEN {is_tax} OR PricingQuantity IS NULL THEN NULL "
                       f"WHEN ChargeCategory IN ('Usage', 'Purchase') THEN coalesce({focus_unit('PricingUnit')}, 'Units') "
                       f"ELSE {focus_unit('PricingUnit')} END",
        "SkuId": f"CASE WHEN {is_tax} THEN NULL ELSE SkuId END",
        "SkuPriceId": f"CASE WHEN {is_tax} THEN NULL ELSE SkuPriceId END",
        "ConsumedQuantity": f"CASE WHEN {consumed} THEN ConsumedQuantity END",
        "ConsumedUnit": f"CASE WHEN {consumed} AND ConsumedQuantity IS NOT NULL THEN {focus_unit('ConsumedUnit')} END",
        "CommitmentDiscountCategory": f"CASE WHEN {no_commitment} THEN NULL ELSE CommitmentDiscountCategory END",
        "CommitmentDiscountType": f"CASE WHEN {no_commitment} THEN NULL ELSE CommitmentDiscountType END",
        "CommitmentDiscountName": f"CASE WHEN {no_commitment} THEN NULL ELSE CommitmentDiscountName END",
        "CommitmentDiscountStatus": f"CASE WHEN {no_commitment} THEN NULL ELSE CommitmentDiscountStatus END",
        "CommitmentDiscountQuantity": f"CASE WHEN {no_commitment} THEN NULL ELSE CommitmentDiscountQuantity END",
        "CommitmentDiscountUnit": f"CASE WHEN {no_commitment} THEN NULL ELSE {focus_unit('CommitmentDiscountUnit')} END",
    }
