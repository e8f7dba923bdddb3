"""Realistic export shapes the committed samples do not have, derived from them with DuckDB (test helper).

The sample generator writes one tidy shape per provider. Real exports vary in ways that broke conformance:

* AWS bills EC2 data transfer under ``lineItem/ProductCode`` AmazonEC2 ("Amazon Elastic Compute Cloud") with
  ``product/servicecode`` AWSDataTransfer, so one ServiceName carries two service codes;
* AWS accounts use many more services than the samples' seven;
* older CUR exports and some line items carry ``product/location`` ("US West (Oregon)") but no region code;
* Azure EA/MCA exports write ``ResourceLocation`` as a display name ("East US", "US West 2") instead of the id;
* Azure Marketplace and some first-party rows have a ``MeterId`` but no ``ProductId``/``PartNumber``.

Each builder reads one billing period of the committed samples and writes a variant file with those shapes; the
totals are unchanged (only labels move), so reconciliation still has to hold.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"

#: (product code, product name) of services the samples do not use, all in data/aws_services.csv
OTHER_AWS_SERVICES = [
    ("AmazonRDS", "Amazon Relational Database Service"),
    ("AWSLambda", "AWS Lambda"),
    ("AmazonDynamoDB", "Amazon DynamoDB"),
    ("AmazonECS", "Amazon Elastic Container Service"),
    ("AmazonCloudWatch", "AmazonCloudWatch"),
    ("AmazonKinesis", "Amazon Kinesis"),
]


def aws_cur2_variant(out: Path, period: str = "2026-05") -> Path:
    """One CUR 2.0 month with EC2 data transfer, more services and rows without a region code."""
    src = SAMPLES / "aws-cur2" / "acme-ai-cur2" / "data" / f"BILLING_PERIOD={period}"
    files = sorted(src.glob("*.parquet"))
    assert files, f"no CUR 2.0 sample for {period}"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"variant-cur2-{period}.parquet"
    codes = ", ".join(f"('{c}', '{n}', {i})" for i, (c, n) in enumerate(OTHER_AWS_SERVICES))
    k = len(OTHER_AWS_SERVICES)
    con = duckdb.connect()
    try:
        con.execute(f"""
            COPY (
              WITH src AS (SELECT *, hash(identity_line_item_id) % 3 = 0 AS _other,
                                  hash(identity_line_item_id || 'service') % {k} AS _pick
                           FROM read_parquet({[str(f) for f in files]})),
              svc(code, pname, pick) AS (VALUES {codes})
              SELECT src.* EXCLUDE (_other, _pick, line_item_product_code, product, product_region_code,
                                    product_servicecode),
                     -- data transfer out of EC2 is billed under the EC2 product code and name
                     CASE WHEN line_item_product_code = 'AWSDataTransfer' AND line_item_line_item_type = 'Usage'
                          THEN 'AmazonEC2'
                          WHEN line_item_product_code = 'AmazonS3' AND _other THEN svc.code
                          ELSE line_item_product_code END AS line_item_product_code,
                     CASE WHEN line_item_product_code = 'AmazonS3' AND _other THEN svc.code
                          ELSE product_servicecode END AS product_servicecode,
                     CASE WHEN line_item_product_code = 'AWSDataTransfer' AND line_item_line_item_type = 'Usage'
                          THEN map_concat(product, MAP {{'product_name': 'Amazon Elastic Compute Cloud'}})
                          WHEN line_item_product_code = 'AmazonS3' AND _other
                          THEN map_concat(product, MAP {{'product_name': svc.pname}})
                          WHEN product_region_code = 'us-west-2'
                          THEN map_from_entries(list_filter(map_entries(product), lambda e: e.key <> 'region'))
                          ELSE product END AS product,
                     -- some line items name the region only by its location
                     CASE WHEN product_region_code = 'us-west-2' THEN NULL ELSE product_region_code END
                       AS product_region_code
              FROM src LEFT JOIN svc ON svc.pick = src._pick
            ) TO '{target}' (FORMAT PARQUET)
        """)
    finally:
        con.close()
    return target


def azure_variant(out: Path, period: str = "202605") -> list[Path]:
    """One Azure month (actual and amortized) with display-name locations and meters without a product id."""
    written = []
    for dataset in ("actual", "amortized"):
        files = sorted((SAMPLES / "azure" / dataset).glob(f"*_{period}.csv.gz"))
        assert files, f"no Azure {dataset} sample for {period}"
        (out / dataset).mkdir(parents=True, exist_ok=True)
        target = out / dataset / files[0].name
        con = duckdb.connect()
        try:
            con.execute(f"""
                COPY (
                  SELECT * REPLACE (
                    CASE WHEN ResourceLocation = 'eastus' AND hash(ResourceId) % 3 = 0 THEN 'East US'
                         WHEN ResourceLocation = 'eastus' AND hash(ResourceId) % 3 = 1 THEN 'US East'
                         ELSE ResourceLocation END AS ResourceLocation,
                    CASE WHEN MeterCategory = 'Storage' THEN NULL ELSE ProductId END AS ProductId)
                  FROM read_csv('{files[0]}', all_varchar = true, header = true)
                ) TO '{target}' (FORMAT CSV, HEADER, COMPRESSION GZIP)
            """)
        finally:
            con.close()
        written.append(target)
    return written
