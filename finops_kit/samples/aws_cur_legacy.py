"""Writer: AWS legacy Cost and Usage Report (CUR 1) as delivered to S3, gzip CSV with slash columns.

Layout (the folder stands for the S3 report prefix, as after ``aws s3 sync s3://bucket/cur/ aws-cur-legacy/``)::

    <report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json               names the current assemblyId + reportKeys
    <report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-1.csv.gz
    <report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-Manifest.json  copy of the manifest of that assembly

The column set varies month to month as in real CUR: a ``resourceTags/user:<key>`` column exists only for
keys seen that month, ``savingsPlan/*`` / ``reservation/*`` columns only when such lines exist. One month is
restated: an older assembly with different totals stays in its folder and only the manifest's one counts.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from . import aws_common as aws
from . import model
from ._write import copy_csv_gz, replication, string_table, write_json

REPORT = "helix-research-cur"
BUCKET = "helix-billing-reports"
S3_PREFIX = "cur"
RESTATED_PERIOD = date(2026, 10, 1)

BASE_COLUMNS = [
    "identity/LineItemId", "identity/TimeInterval", "bill/InvoiceId", "bill/InvoicingEntity",
    "bill/BillingEntity", "bill/BillType", "bill/PayerAccountId", "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate", "lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate",
    "lineItem/UsageEndDate", "lineItem/ProductCode", "lineItem/UsageType", "lineItem/Operation",
    "lineItem/AvailabilityZone", "lineItem/ResourceId", "lineItem/UsageAmount", "lineItem/NormalizationFactor",
    "lineItem/NormalizedUsageAmount", "lineItem/CurrencyCode", "lineItem/UnblendedRate",
    "lineItem/UnblendedCost", "lineItem/BlendedRate", "lineItem/BlendedCost", "lineItem/LineItemDescription",
    "lineItem/TaxType", "lineItem/LegalEntity",
]
PRICING_COLUMNS = ["pricing/publicOnDemandCost", "pricing/publicOnDemandRate", "pricing/term", "pricing/unit"]
RESERVATION_COLUMNS = [
    "reservation/AmortizedUpfrontCostForUsage", "reservation/AmortizedUpfrontFeeForBillingPeriod",
    "reservation/EffectiveCost", "reservation/EndTime", "reservation/NumberOfReservations",
    "reservation/RecurringFeeForUsage", "reservation/ReservationARN", "reservation/StartTime",
    "reservation/TotalReservedUnits", "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedQuantity", "reservation/UnusedRecurringFee", "reservation/UpfrontValue",
]
SAVINGS_PLAN_COLUMNS = [
    "savingsPlan/TotalCommitmentToDate", "savingsPlan/SavingsPlanARN", "savingsPlan/SavingsPlanRate",
    "savingsPlan/UsedCommitment", "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", "savingsPlan/RecurringCommitmentForBillingPeriod",
    "savingsPlan/StartTime", "savingsPlan/EndTime", "savingsPlan/OfferingType", "savingsPlan/PaymentOption",
    "savingsPlan/PurchaseTerm",
]
#: legacy CUR product attribute names (camelCase; ProductName is capitalised in real reports)
PRODUCT_NAMES = {"product_name": "ProductName"}


def product_column(key: str) -> str:
    name = PRODUCT_NAMES.get(key) or re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
    return f"product/{name}"


def flatten(row: dict) -> dict:
    """A line as legacy CUR cells: product attributes, user tags and cost categories become columns."""
    out = {k: v for k, v in row.items() if not k.startswith("_")}
    for k, v in row["_product"].items():
        out[product_column(k)] = v
    for k, v in row["_tags"].items():
        out[f"resourceTags/user:{k}"] = v
    for k, v in row["_cost_category"].items():
        out[f"costCategory/{k}"] = v
    return out


def columns_for(rows: list[dict]) -> list[str]:
    present = set()
    for r in rows:
        present.update(k for k, v in r.items() if v is not None and v != "")
    cols = list(BASE_COLUMNS)
    cols += sorted(c for c in present if c.startswith("product/"))
    cols += PRICING_COLUMNS
    if any(c.startswith("reservation/") for c in present):
        cols += RESERVATION_COLUMNS
    if any(c.startswith("savingsPlan/") for c in present):
        cols += SAVINGS_PLAN_COLUMNS
    cols += sorted(c for c in present if c.startswith("resourceTags/"))
    cols += sorted(c for c in present if c.startswith("costCategory/"))
    return cols


def _manifest(period: date, assembly: str, columns: list[str], key: str, account: str) -> dict:
    end = model.next_month(period)
    return {
        "assemblyId": assembly,
        "account": account,
        "columns": [{"category": c.split("/", 1)[0], "name": c.split("/", 1)[1]} for c in columns],
        "charset": "UTF-8",
        "compression": "GZIP",
        "contentType": "text/csv",
        "reportId": aws.stable_hex(64, "report", REPORT),
        "reportName": REPORT,
        "billingPeriod": {"start": period.strftime("%Y%m%dT000000.000Z"), "end": end.strftime("%Y%m%dT000000.000Z")},
        "bucket": BUCKET,
        "reportKeys": [key],
        "additionalArtifactKeys": [],
    }


def write(out: Path, seed: int, planted: model.Planted, rows: int | None = None) -> dict:
    """Write the research lab's legacy CUR delivery; return {'totals': [...], 'files': [...], 'skipped': [...]}."""
    target = rows
    rows = aws.payer_lines(aws.LAB_PAYER, seed, planted, "aws-cur-legacy")
    replicate = replication(target, len(rows))
    root = out / "aws-cur-legacy"
    files, skipped = [], []
    for period, prow in aws.by_period(rows):
        rng = f"{period:%Y%m%d}-{model.next_month(period):%Y%m%d}"
        versions = []
        if period == RESTATED_PERIOD:
            # the first delivery of the month: before the research credit was applied, one day short
            cutoff = aws.ts(model.next_month(period) - timedelta(days=1))
            early = [r for r in prow if r["lineItem/LineItemType"] != "Credit"
                     and r["lineItem/UsageStartDate"] < cutoff]
            versions.append(("superseded", early))
        versions.append(("current", prow))
        for kind, vrows in versions:
            assembly = aws.deterministic_uuid(seed, REPORT, period, kind)
            flat = [flatten(r) for r in vrows]
            cols = columns_for(flat)
            rel = f"{REPORT}/{rng}/{assembly}/{REPORT}-1.csv.gz"
            path = root / rel
            copy_csv_gz(string_table(cols, flat), path, replicate=replicate,
                        vary={"identity/LineItemId": "md5({col} || r::VARCHAR)",
                              "lineItem/ResourceId": "CASE WHEN {col} IS NULL THEN NULL ELSE {col} || '-' || r::VARCHAR END"})
            manifest = _manifest(period, assembly, cols, f"{S3_PREFIX}/{rel}", aws.LAB_PAYER)
            write_json(root / REPORT / rng / assembly / f"{REPORT}-Manifest.json", manifest)
            if kind == "current":
                write_json(root / REPORT / rng / f"{REPORT}-Manifest.json", manifest)
                files.append(str(path.relative_to(out)))
            else:
                skipped.append(str(path.relative_to(out)))
    totals = aws.totals(rows, "AWS", "aws-cur-legacy", aws.LAB_PAYER)
    if replicate > 1:
        totals = aws.scale_totals(totals, replicate)
    return {"totals": totals, "files": files, "skipped": skipped}


def write_benchmark_file(path: Path, rows: int, seed: int = model.DEFAULT_SEED) -> dict:
    """One legacy CUR CSV.gz of about ``rows`` line items for the ingest benchmark.

    Built from the main organisation's lines (Savings Plans, RIs, spot, storage, transfer, tax...) for all
    billing periods, with the union of the months' columns, replicated through DuckDB and cut at ``rows``.
    Returns the exact number of rows and billed/amortized totals of the file's complete copies.
    """
    planted = model.Planted()
    base = aws.payer_lines(aws.MAIN_PAYER, seed, planted, "benchmark")
    flat = [flatten(r) for r in base]
    cols = columns_for(flat)
    k = max(1, -(-rows // len(flat)))
    n = copy_csv_gz(string_table(cols, flat), path, replicate=k, limit=rows,
                    vary={"identity/LineItemId": "md5({col} || r::VARCHAR)",
                          "lineItem/ResourceId": "CASE WHEN {col} IS NULL THEN NULL ELSE {col} || '-' || r::VARCHAR END"})
    return {"path": str(path), "rows": n, "base_rows": len(flat), "copies": k, "columns": len(cols)}
