"""Writer: AWS CUR 2.0 (Data Exports) parquet, as delivered to S3 with OVERWRITE_REPORT.

Layout (the folder stands for the export's S3 prefix)::

    <export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet
    <export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json

CUR 2.0 has a fixed schema (the column list of the Data Exports table dictionary, as in the SELECT a user
saves in an export definition); product attributes that are not top-level columns live in the ``product``
MAP, tags in ``resource_tags`` (keys ``user_<tag>``), cost categories in ``cost_category``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import aws_common as aws
from . import model
from ._write import replication, write_json

EXPORT = "acme-ai-cur2"
BUCKET = "acme-billing-exports"
S3_PREFIX = "cur2"

#: The CUR 2.0 columns, in the order of the Data Exports table dictionary.
COLUMNS = ["bill_bill_type", "bill_billing_entity", "bill_billing_period_end_date", "bill_billing_period_start_date", "bill_invoice_id", "bill_invoicing_entity", "bill_payer_account_id", "bill_payer_account_name", "cost_category", "discount", "discount_bundled_discount", "discount_total_discount", "identity_line_item_id", "identity_time_interval", "line_item_availability_zone", "line_item_blended_cost", "line_item_blended_rate", "line_item_currency_code", "line_item_legal_entity", "line_item_line_item_description", "line_item_line_item_type", "line_item_net_unblended_cost", "line_item_net_unblended_rate", "line_item_normalization_factor", "line_item_normalized_usage_amount", "line_item_operation", "line_item_product_code", "line_item_resource_id", "line_item_tax_type", "line_item_unblended_cost", "line_item_unblended_rate", "line_item_usage_account_id", "line_item_usage_account_name", "line_item_usage_amount", "line_item_usage_end_date", "line_item_usage_start_date", "line_item_usage_type", "pricing_currency", "pricing_lease_contract_length", "pricing_offering_class", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate", "pricing_purchase_option", "pricing_rate_code", "pricing_rate_id", "pricing_term", "pricing_unit", "product", "product_comment", "product_fee_code", "product_fee_description", "product_from_location", "product_from_location_type", "product_from_region_code", "product_instance_family", "product_instance_type", "product_instancesku", "product_location", "product_location_type", "product_operation", "product_pricing_unit", "product_product_family", "product_region_code", "product_servicecode", "product_sku", "product_to_location", "product_to_location_type", "product_to_region_code", "product_usagetype", "reservation_amortized_upfront_cost_for_usage", "reservation_amortized_upfront_fee_for_billing_period", "reservation_availability_zone", "reservation_effective_cost", "reservation_end_time", "reservation_modification_status", "reservation_net_amortized_upfront_cost_for_usage", "reservation_net_amortized_upfront_fee_for_billing_period", "reservation_net_effective_cost", "reservation_net_recurring_fee_for_usage", "reservation_net_unused_amortized_upfront_fee_for_billing_period", "reservation_net_unused_recurring_fee", "reservation_net_upfront_value", "reservation_normalized_units_per_reservation", "reservation_number_of_reservations", "reservation_recurring_fee_for_usage", "reservation_reservation_a_r_n", "reservation_start_time", "reservation_subscription_id", "reservation_total_reserved_normalized_units", "reservation_total_reserved_units", "reservation_units_per_reservation", "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_normalized_unit_quantity", "reservation_unused_quantity", "reservation_unused_recurring_fee", "reservation_upfront_value", "resource_tags", "savings_plan_amortized_upfront_commitment_for_billing_period", "savings_plan_end_time", "savings_plan_instance_type_family", "savings_plan_net_amortized_upfront_commitment_for_billing_period", "savings_plan_net_recurring_commitment_for_billing_period", "savings_plan_net_savings_plan_effective_cost", "savings_plan_offering_type", "savings_plan_payment_option", "savings_plan_purchase_term", "savings_plan_recurring_commitment_for_billing_period", "savings_plan_region", "savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_effective_cost", "savings_plan_savings_plan_rate", "savings_plan_start_time", "savings_plan_total_commitment_to_date", "savings_plan_used_commitment"]
MAPS = {"product", "resource_tags", "cost_category", "discount"}
TIMESTAMPS = {"bill_billing_period_end_date", "bill_billing_period_start_date", "line_item_usage_end_date",
              "line_item_usage_start_date"}
DOUBLES = {
    "discount_bundled_discount", "discount_total_discount", "line_item_blended_cost",
    "line_item_net_unblended_cost", "line_item_normalization_factor", "line_item_normalized_usage_amount",
    "line_item_unblended_cost", "line_item_usage_amount", "pricing_public_on_demand_cost",
    "reservation_amortized_upfront_cost_for_usage", "reservation_amortized_upfront_fee_for_billing_period",
    "reservation_effective_cost", "reservation_net_amortized_upfront_cost_for_usage",
    "reservation_net_amortized_upfront_fee_for_billing_period", "reservation_net_effective_cost",
    "reservation_net_recurring_fee_for_usage", "reservation_net_unused_amortized_upfront_fee_for_billing_period",
    "reservation_net_unused_recurring_fee", "reservation_net_upfront_value", "reservation_recurring_fee_for_usage",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_normalized_unit_quantity",
    "reservation_unused_quantity", "reservation_unused_recurring_fee", "reservation_upfront_value",
    "savings_plan_amortized_upfront_commitment_for_billing_period",
    "savings_plan_net_amortized_upfront_commitment_for_billing_period",
    "savings_plan_net_recurring_commitment_for_billing_period", "savings_plan_net_savings_plan_effective_cost",
    "savings_plan_recurring_commitment_for_billing_period", "savings_plan_savings_plan_effective_cost",
    "savings_plan_savings_plan_rate", "savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
}
_CATEGORY = {"identity": "identity", "bill": "bill", "lineItem": "line_item", "pricing": "pricing",
             "reservation": "reservation", "savingsPlan": "savings_plan"}
#: product attributes that are top-level ``product_*`` columns in CUR 2.0; every other one goes in the map
TOP_PRODUCT = {c[len("product_"):] for c in COLUMNS if c.startswith("product_")}


def cur2_name(legacy: str) -> str:
    """'lineItem/UsageAccountId' -> 'line_item_usage_account_id'; 'savingsPlan/SavingsPlanARN' ->
    'savings_plan_savings_plan_a_r_n' (CUR 2.0 splits every capital, hence a_r_n)."""
    cat, name = legacy.split("/", 1)
    return f"{_CATEGORY[cat]}_{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}"


def _ts(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)


def schema() -> pa.Schema:
    fields = []
    for c in COLUMNS:
        if c in MAPS:
            t = pa.map_(pa.string(), pa.string())
        elif c in TIMESTAMPS:
            t = pa.timestamp("ms", tz="UTC")
        elif c in DOUBLES:
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(c, t))
    return pa.schema(fields)


def to_table(rows: list[dict]) -> pa.Table:
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    known = set(COLUMNS)
    for r in rows:
        rec: dict[str, object] = {}
        for k, v in r.items():
            if k.startswith("_") or v is None or v == "":
                continue
            name = cur2_name(k)
            if name not in known:
                raise AssertionError(f"{k} -> {name} is not a CUR 2.0 column")
            rec[name] = v
        prod_map = {}
        for k, v in r["_product"].items():
            if k in TOP_PRODUCT:
                rec[f"product_{k}"] = v
            else:
                prod_map[k] = v
        rec["product"] = sorted(prod_map.items())
        rec["resource_tags"] = sorted((f"user_{k}", v) for k, v in r["_tags"].items())
        rec["cost_category"] = sorted(r["_cost_category"].items())
        rec["discount"] = []
        rec["pricing_currency"] = "USD"
        for c in COLUMNS:
            v = rec.get(c)
            if v is None:
                cols[c].append(None)
            elif c in TIMESTAMPS:
                cols[c].append(_ts(v))
            elif c in DOUBLES:
                cols[c].append(float(v))
            elif c in MAPS:
                cols[c].append(v)
            else:
                cols[c].append(model.fmt(v) if not isinstance(v, str) else v)
    sch = schema()
    return pa.table({c: pa.array(cols[c], sch.field(c).type) for c in COLUMNS}, schema=sch)


def _manifest(period: date, files: list[str], execution: str) -> dict:
    sch = schema()
    return {
        "executionId": execution,
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{aws.MAIN_PAYER}:export/{EXPORT}-"
                     f"{aws.deterministic_uuid('export', EXPORT)}",
        "exportName": EXPORT,
        "billingPeriod": {"start": f"{period:%Y-%m-%d}T00:00:00.000Z",
                          "end": f"{model.next_month(period):%Y-%m-%d}T00:00:00.000Z"},
        "bucket": BUCKET,
        "columns": [{"name": f.name, "type": _type_name(f.type)} for f in sch],
        "dataFiles": [f"s3://{BUCKET}/{S3_PREFIX}/{f}" for f in files],
        "additionalOutputFiles": [],
    }


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_map(t):
        return "map<string,string>"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_floating(t):
        return "double"
    return "string"


def write(out: Path, seed: int, planted: model.Planted, rows: int | None = None) -> dict:
    """Write the main organisation's CUR 2.0 export; return {'totals': [...], 'files': [...]}."""
    target = rows
    rows = aws.payer_lines(aws.MAIN_PAYER, seed, planted, "aws-cur2")
    replicate = replication(target, len(rows))
    root = out / "aws-cur2"
    files = []
    for period, prow in aws.by_period(rows):
        part = f"BILLING_PERIOD={period:%Y-%m}"
        rel = f"{EXPORT}/data/{part}/{EXPORT}-00001.snappy.parquet"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        table = to_table(prow)
        if replicate > 1:
            table = _replicate(table, replicate)
        pq.write_table(table, path, compression="snappy", row_group_size=1_000_000)
        files.append(str(path.relative_to(out)))
        write_json(root / EXPORT / "metadata" / part / f"{EXPORT}-Manifest.json",
                   _manifest(period, [rel], aws.deterministic_uuid(seed, EXPORT, period)))
    totals = aws.totals(rows, "AWS", "aws-cur2", aws.MAIN_PAYER)
    if replicate > 1:
        totals = aws.scale_totals(totals, replicate)
    return {"totals": totals, "files": files}


def _replicate(table: pa.Table, k: int) -> pa.Table:
    """k copies of a month's lines with distinct line item and resource ids (for scale tests)."""
    import pyarrow.compute as pc

    parts = [table]
    for r in range(1, k):
        t = table.set_column(table.schema.get_field_index("identity_line_item_id"), "identity_line_item_id",
                             pc.binary_join_element_wise(table["identity_line_item_id"], pa.scalar(f"r{r}"), ""))
        rid = table["line_item_resource_id"]
        t = t.set_column(t.schema.get_field_index("line_item_resource_id"), "line_item_resource_id",
                         pc.binary_join_element_wise(rid, pa.scalar(f"-{r}"), ""))
        parts.append(t)
    return pa.concat_tables(parts)
