"""``finops-kit metrics --engine spark``: the headline figures of a FOCUS dataset, with the whole-table work on Spark.

Why this design (measured; see the commit that added it). The metrics layer is ~30 DuckDB statements per scope
built by :mod:`finops_kit.scope`, :mod:`~finops_kit.attribution`, :mod:`~finops_kit.units`,
:mod:`~finops_kit.tagging`, :mod:`~finops_kit.commitments` and :mod:`~finops_kit.tokens`. Transpiled with sqlglot
(read duckdb, write spark) and run on Spark 4.3 over the sample dataset, 8 of its 23 non-DROP statements ran and
matched; the other 15 failed (``json_each`` over the tags, ``damerau_levenshtein`` and ``regexp_full_match`` in
the tag policy's key and value maps, ``json_exists`` in the shared/owner rules, DuckDB's ``rowid`` in the tag audit
and the token rows, and everything built on those temp tables). Making them portable would mean a second copy of the
attribution and tag audit in a subset both engines run -- the drift this kit exists to avoid.

So Spark does the part that needs the whole table and DuckDB finishes with the unchanged metrics layer:

1. **Reduce on Spark.** One statement, :func:`reduction_sql`, generated from :data:`KEYS` and :data:`MEASURES`
   and valid SQL in both engines (no transpiling): group the dataset's FOCUS rows by the columns the metrics layer
   reads (:data:`KEYS`) plus the sign of every summed column, sum the additive columns (:data:`MEASURES`, exact
   ``DECIMAL(38,12)``) and count the line items (:data:`LINE_ITEMS`). Rows that are not part of an accelerated
   instance (no accelerated row in their resource and charge period) lose their resource and keep their charge
   period to the day (:func:`_coarse`): the metrics read those only through the instance rules and day-level
   rules. Every other filter, classification rule, join and window of the metrics layer is a function of the key
   columns, and every figure a sum of the measures (hours and GB are linear in the quantities; ``EffectiveCost >
   0`` and ``count(*) = count(ListCost)`` are decided by the sign keys), so the metrics of the reduced table are
   the metrics of the table.
2. **Finish in DuckDB.** The reduced rows come back to the driver as Arrow, become the ``focus`` table of an
   in-memory DuckDB with the warehouse's column types, and :func:`finops_kit.metrics.metrics` runs on it as on any
   warehouse; the two line counts it reports (``totals.rows``, ``completeness.rows``) are read from the Spark
   counts. The output (JSON and text) is that of ``finops-kit metrics`` on the same data, every digit on the
   samples (money is exact, hours and GB are exact sums: ``units.total``).

How much it shrinks, measured: hourly line items of resources that are not accelerated instances collapse to one
row per day and tag set (the sample bills split into hours, 1,565,309 rows, reduce to 769,900: the accelerated
instances' hours are half the rows and stay); the daily sample bills keep their 65,456 rows (one line per
resource, day and usage type, unique in the key columns). 32 of ~110 columns travel. Two per-row roundings are
applied to a collapsed row's sum instead of to each line item: token counts to 6 decimals (:mod:`finops_kit.tokens`)
and hours/GB to 9 (``units.total``); they only move a figure when a line item's quantity carries more decimals than
that (a bill's token counts are whole; the difference is at most half a unit of the last decimal per line item).
Measured on a real CUR: transfer_gb 49.390201523 here, 49.390201519 on DuckDB. Rounding per line item here would
need each row's unit factor (GB-hours to GB-months, TB to GB, hours per unit), which the unit rules of
:mod:`finops_kit.units` apply in DuckDB after the reduction -- a second copy of them on Spark is the drift this
design avoids, and not collapsing quantity rows would undo the reduction. A new
figure that reads a column missing from :data:`KEYS` fails loudly (DuckDB: column not found).

GPU utilization files and a runs file (``ai_units``) join per-resource, per-hour data outside the warehouse and
are not supported here: run ``finops-kit metrics`` on DuckDB for them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .schema import LINEAGE_COLUMNS, MONEY, focus_columns
from .warehouse import FOCUS_TABLE

if TYPE_CHECKING:  # pragma: no cover - pyspark is an optional extra
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

    from .metrics import Metrics
    from .scope import Scope

#: The columns the metrics layer reads other than the summed ones: the keys of the reduction. (The test
#: ``test_metrics_read_only_the_reduced_columns`` parses every statement the metrics layer runs and fails when it
#: reads a column that is not here or in MEASURES.)
KEYS = ("BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
        "CapacityReservationStatus", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
        "CommitmentDiscountId", "CommitmentDiscountStatus", "CommitmentDiscountUnit", "ConsumedUnit", "InvoiceId", "PricingCategory",
        "PricingUnit", "ProviderName", "RegionId",
        "ResourceId", "ResourceName", "ServiceCategory", "ServiceName", "SkuMeter", "SubAccountId",
        "SubAccountName", "Tags", "x_AiWorkload", "x_InstanceType", "x_Operation", "x_UsageType")
#: Additive columns, summed exactly. ContractedCost is converted with the others when the scope converts currency.
MEASURES = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity", "PricingQuantity",
            "CommitmentDiscountQuantity")
#: The reduced table's count of the line items each of its rows stands for.
LINE_ITEMS = "x_LineItems"



def _q(name: str) -> str:
    """A column name as both engines read it: the names here are plain identifiers, which need no quoting (and
    the two engines quote differently: Spark with backticks, DuckDB with double quotes)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain column name: {name!r}")
    return name


#: Key columns whose detail only the accelerated-instance rules need (:func:`finops_kit.units.accelerated_usage_sql`
#: groups a resource's rows per charge period); on every other row they are coarsened (see :func:`reduction_sql`).
INSTANCE_DETAIL = ("ResourceId", "ResourceName", "ChargePeriodStart", "ChargePeriodEnd")


def _coarse(column: str) -> str:
    """A key column's value on a row that is not part of an accelerated instance (``_instance = 0``).

    No resource (the metrics read ResourceId and ResourceName only through the accelerated-instance rules); the
    charge period to the day, which keeps every day-level rule: a date scope's day bounds and the month on
    ChargePeriodStart, completeness's first day (the start's day) and last day (the day of ``end - 1 s`` for a
    usage row with ``end > start``)."""
    return {
        "ResourceId": "CAST(NULL AS STRING)",
        "ResourceName": "CAST(NULL AS STRING)",
        "ChargePeriodStart": "date_trunc('DAY', ChargePeriodStart)",
        "ChargePeriodEnd": ("CASE WHEN ChargePeriodEnd > ChargePeriodStart "
                            "THEN date_trunc('DAY', ChargePeriodEnd - INTERVAL 1 SECOND) + INTERVAL 1 DAY "
                            "ELSE date_trunc('DAY', ChargePeriodStart) END"),
    }[column]


def reduction_sql(table: str = FOCUS_TABLE) -> str:
    """The one statement Spark runs (and DuckDB, in the tests): the FOCUS rows of ``table`` grouped by
    :data:`KEYS` and the sign of each of :data:`MEASURES` (NULL, negative, zero, positive stay apart), the measures
    summed as exact decimals, and the line count. Plain SQL both engines parse the same way.

    Rows of a resource and charge period that holds an accelerated row (the kit's one AI classification,
    :func:`finops_kit.units.accelerated_row_sql`) keep every key as it is: the instance rules pick a pricing class
    and instance type across them. Every other row is coarsened (:func:`_coarse`): hourly line items of one
    resource, and the same charge on many resources with the same tags, become one row per day."""
    from .units import INSTANCE_KEY, accelerated_row_sql

    flag = (f"CASE WHEN ResourceId IS NOT NULL THEN max(CASE WHEN {accelerated_row_sql()} THEN 1 ELSE 0 END) "
            f"OVER (PARTITION BY {', '.join(INSTANCE_KEY)}) ELSE 0 END")
    cols = ", ".join(_q(c) for c in (*KEYS, *MEASURES) if c not in INSTANCE_DETAIL)
    detail = ", ".join(f"CASE WHEN _instance = 1 THEN {_q(c)} ELSE {_coarse(c)} END AS {_q(c)}"
                       for c in INSTANCE_DETAIL)
    keys = ", ".join(_q(k) for k in KEYS)
    sums = ", ".join(f"CAST(sum({_q(m)}) AS {MONEY}) AS {_q(m)}" for m in MEASURES)
    signs = ", ".join(f"sign({_q(m)})" for m in MEASURES)
    return (f"SELECT {keys}, {sums}, count(*) AS {LINE_ITEMS} FROM ("
            f"SELECT {cols}, {detail} FROM (SELECT *, {flag} AS _instance FROM {table}) _f) _k "
            f"GROUP BY {keys}, {signs}")


def warehouse_types() -> dict[str, str]:
    """DuckDB type of each reduced column, as the warehouse declares it (JSON tags, TIMESTAMP, DECIMAL money)."""
    types = {c.name: c.duckdb_type for c in focus_columns()} | dict(LINEAGE_COLUMNS)
    out = {c: types.get(c, "VARCHAR") for c in (*KEYS, *MEASURES)}
    out[LINE_ITEMS] = "BIGINT"
    return out


def load_reduced(con: duckdb.DuckDBPyConnection, reduced: Any) -> None:
    """Create ``focus`` in ``con`` from the reduced rows (an Arrow table or anything DuckDB can scan), with the
    warehouse's column types."""
    con.register("_fk_reduced", reduced)
    try:
        cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in warehouse_types().items())
        con.execute(f"CREATE OR REPLACE TABLE {FOCUS_TABLE} AS SELECT {cols} FROM _fk_reduced")
    finally:
        con.unregister("_fk_reduced")


def line_counts(m: Metrics) -> None:
    """Put the line-item counts into ``m`` (``totals.rows`` and ``completeness.rows``): on the reduced table
    ``count(*)`` counts groups, :data:`LINE_ITEMS` the charges they stand for. Same scope SQL as the figures."""
    sc = m.scope
    con = sc.con
    per_cur = dict(con.execute(f"SELECT BillingCurrency, CAST(sum({LINE_ITEMS}) AS BIGINT) FROM {sc.rows_sql()} "
                               "GROUP BY ALL").fetchall())
    if not m.totals.empty:
        m.totals["rows"] = [int(per_cur[c]) for c in m.totals["currency"]]
    per_period = {(p, b): int(n) for p, b, n in con.execute(
        f"SELECT ProviderName, CAST(date_trunc('month', BillingPeriodStart) AS DATE), "
        f"CAST(sum({LINE_ITEMS}) AS BIGINT) FROM {FOCUS_TABLE} WHERE {sc.where(period=False)} GROUP BY ALL"
    ).fetchall()}
    if not m.completeness.empty:
        m.completeness["rows"] = [per_period[(p, b)] for p, b in
                                  zip(m.completeness["provider"], m.completeness["billing_period"], strict=True)]


# --------------------------------------------------------------------------------------------------- Spark side
def check_dataset(dataset: str | os.PathLike) -> str:
    """The dataset's root, after checking a local folder's manifest (a FOCUS dataset of a layout this kit reads:
    :func:`finops_kit.dataset.read_manifest`), so a wrong path fails in one line before Spark starts."""
    root = str(dataset).rstrip("/")
    if "://" not in root:
        from .dataset import read_manifest

        read_manifest(root)
    return root


def focus_dataframe(spark: SparkSession, dataset: str | os.PathLike) -> DataFrame:
    """The FOCUS rows of a dataset folder (``DATASET/focus/provider=.../billing_period=.../*.parquet``) as a Spark
    DataFrame with the files' columns (the partition keys are derived, so they are dropped) and timestamps without
    time zone, as the warehouse has them."""
    root = check_dataset(dataset)
    path = f"{root}/focus"
    from .spark import glob_escaped  # a folder named p[1] is a path, not a pattern

    df = spark.read.option("basePath", path).parquet(glob_escaped(path))
    return _without_zone(df.drop(*[c for c in ("provider", "billing_period") if c in df.columns]))


def _without_zone(df: DataFrame) -> DataFrame:
    """Zoned timestamps (a writer that stored them so, or ``date_trunc`` on Spark) as the warehouse's timestamps
    without time zone: the wall time in the session's zone, UTC (:func:`session`)."""
    from pyspark.sql import types as T

    for f in df.schema.fields:
        if isinstance(f.dataType, T.TimestampType):
            df = df.withColumn(f.name, df[f.name].cast(T.TimestampNTZType()))
    return df


def reduce_on_spark(spark: SparkSession, dataset: str | os.PathLike) -> Any:
    """Run :func:`reduction_sql` on Spark over the dataset; the reduced rows as an Arrow table on the driver."""
    view = "_fk_focus"
    focus_dataframe(spark, dataset).createOrReplaceTempView(view)
    try:
        return _without_zone(spark.sql(reduction_sql(view))).toArrow()
    finally:
        spark.catalog.dropTempView(view)


def spark_metrics(dataset: str | os.PathLike, scope: Scope | None = None, config: Any = None,
                  spark: SparkSession | None = None, master: str | None = None) -> Metrics:
    """The :class:`~finops_kit.metrics.Metrics` of ``scope`` over a FOCUS dataset, the whole-table part on Spark
    (``spark``, or a session on ``master``); see the module doc."""
    import duckdb

    from .metrics import metrics
    from .scope import Scope as _Scope
    from .spark import session  # the kit's one session: local[*], a cluster, Spark Connect, or the active one

    check_dataset(dataset)
    reduced = reduce_on_spark(spark or session(master), dataset)
    con = duckdb.connect()
    load_reduced(con, reduced)
    sc = (scope or _Scope()).resolve(con, config)
    m = metrics(con, sc)
    line_counts(m)
    return m


__all__ = ["KEYS", "LINE_ITEMS", "MEASURES", "check_dataset", "focus_dataframe", "line_counts", "load_reduced", "reduce_on_spark",
           "reduction_sql", "spark_metrics", "warehouse_types"]
