"""``finops-kit metrics --engine spark`` gives the figures of ``finops-kit metrics``, and the kit's portable SQL
forms give one answer on DuckDB and Spark where the naive transpile does not.

The metrics on Spark reduce the FOCUS dataset on Spark (:func:`finops_kit.spark_metrics.reduction_sql`) and finish
with the unchanged metrics layer in DuckDB, so two things are checked separately: the reduction loses nothing (on
DuckDB alone, fast) and Spark computes the same reduction (on a local Spark). Every figure is compared exactly:
money is decimal text, hours and GB are summed exactly (``units.total``).
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import duckdb
import pytest

from finops_kit import portable
from finops_kit import spark_metrics as SM
from finops_kit.cli import main
from finops_kit.metrics import metrics
from finops_kit.scope import Scope

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "finops.yaml")
#: The scopes tests/test_consistency.py reads: three closed billing periods, and October alone.
SCOPES = {"aug-oct": {"billing_period_start": "2026-08", "billing_period_end": "2026-10"},
          "oct": {"billing_period_start": "2026-10", "billing_period_end": "2026-10"}}


def same(a: Any, b: Any, where: str = "") -> None:
    """Identical documents: every figure, its type and its digits (decimal money, hours and GB summed exactly)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {len(a)} rows != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def duckdb_metrics(warehouse: str, params: dict[str, str]):
    import finops_kit as fk

    con = fk.connect(warehouse, read_only=True)
    try:
        return metrics(con, Scope.parse(params).resolve(con, CONFIG))
    finally:
        con.close()


@pytest.fixture(scope="module")
def dataset(sample_warehouse, tmp_path_factory) -> str:
    """The sample warehouse as a FOCUS dataset (``finops-kit export --dataset``: focus/provider=<ProviderName>/
    billing_period=<YYYY-MM>/*.parquet, tables/, finops-dataset.json)."""
    from finops_kit.dataset import write_dataset

    root = tmp_path_factory.mktemp("dataset") / "ds"
    con = duckdb.connect(sample_warehouse, read_only=True)
    try:
        write_dataset(con, root)
    finally:
        con.close()
    return str(root)


# ------------------------------------------------------------------------------- the reduction (DuckDB only)
@pytest.mark.parametrize("name", list(SCOPES))
def test_metrics_of_the_reduced_table_equal_the_warehouse_metrics(sample_warehouse, name):
    """Every figure, from the reduced rows (the metrics layer reads no column the reduction drops: it would fail
    with 'column not found')."""
    params = SCOPES[name]
    want = duckdb_metrics(sample_warehouse, params)
    src = duckdb.connect(sample_warehouse, read_only=True)
    reduced = src.sql(SM.reduction_sql()).to_arrow_table()
    src.close()
    con = duckdb.connect()
    SM.load_reduced(con, reduced)
    got = metrics(con, Scope.parse(params).resolve(con, CONFIG))
    SM.line_counts(got)
    same(want.to_dict(), got.to_dict(), name)
    assert want.to_text() == got.to_text()
    assert int(sum(got.completeness["rows"])) >= int(got.totals["rows"].sum()) > 0


def test_reduction_collapses_line_items_and_keeps_what_the_rules_need():
    """Hourly rows of a resource become one row per day with their count and sums; a credit and a charge of the
    same keys stay two rows (tag coverage counts positive cost), so do a row without ListCost and one with it; the
    hourly rows of an accelerated instance keep their resource and hour (the instance rules group by them)."""
    con = duckdb.connect()
    given = {"ResourceId": "r", "ChargePeriodStart": "s", "x_AiWorkload": "ai", "EffectiveCost": "e", "ListCost": "l",
             "ProviderName": "'AWS'", "ChargeCategory": "'Usage'", "ChargePeriodEnd": "s + INTERVAL 1 HOUR",
             "ConsumedQuantity": "1"}
    cols = ", ".join(f'CAST({given.get(c, "NULL")} AS {t}) AS "{c}"'
                     for c, t in SM.warehouse_types().items() if c != SM.LINE_ITEMS)
    con.execute(f"""CREATE TABLE focus AS SELECT {cols} FROM (VALUES
        ('a', TIMESTAMP '2026-10-04 10:00', NULL, 2.5, 1), ('a', TIMESTAMP '2026-10-04 11:00', NULL, 2.5, 1),
        ('a', TIMESTAMP '2026-10-04 12:00', NULL, 2.5, 1), ('a', TIMESTAMP '2026-10-05 00:00', NULL, 1, 1),
        ('b', TIMESTAMP '2026-10-04 10:00', NULL, 5, 1), ('b', TIMESTAMP '2026-10-04 10:00', NULL, -3, 1),
        ('c', TIMESTAMP '2026-10-04 10:00', NULL, 1, NULL), ('c', TIMESTAMP '2026-10-04 11:00', NULL, 1, 1),
        ('g', TIMESTAMP '2026-10-04 10:00', 'Accelerated compute', 4, 1),
        ('g', TIMESTAMP '2026-10-04 11:00', 'Accelerated compute', 4, 1)) t(r, s, ai, e, l)""")
    got = [(r, str(s), str(e), None if lc is None else float(lc), float(ec), float(q), n)
           for r, s, e, lc, ec, q, n in con.execute(
               f"SELECT ResourceId, ChargePeriodStart, ChargePeriodEnd, ListCost, EffectiveCost, ConsumedQuantity, "
               f"{SM.LINE_ITEMS} FROM ({SM.reduction_sql()}) ORDER BY ALL NULLS LAST").fetchall()]
    day, nxt, after = "2026-10-04 00:00:00", "2026-10-05 00:00:00", "2026-10-06 00:00:00"
    assert got == [
        ("g", "2026-10-04 10:00:00", "2026-10-04 11:00:00", 1.0, 4.0, 1.0, 1),
        ("g", "2026-10-04 11:00:00", "2026-10-04 12:00:00", 1.0, 4.0, 1.0, 1),
        (None, day, nxt, 1.0, -3.0, 1.0, 1),     # b's credit
        (None, day, nxt, 5.0, 13.5, 5.0, 5),     # a's three hours, b's charge, c's hour with ListCost
        (None, day, nxt, None, 1.0, 1.0, 1),     # c's hour without ListCost
        (None, nxt, after, 1.0, 1.0, 1.0, 1),    # a's next day
    ]


def test_engine_spark_refuses_gpu_files_and_needs_a_dataset(capsys, tmp_path):
    assert main(["metrics", "--engine", "spark", "--warehouse", "x", "--runs-file", "runs.csv"]) == 2
    assert "--runs-file" in capsys.readouterr().err
    assert main(["metrics", "--engine", "spark"]) == 2
    assert "--warehouse" in capsys.readouterr().err
    assert main(["metrics", "--engine", "spark", "--warehouse", str(tmp_path)]) == 2  # checked before Spark starts
    assert "not a FOCUS dataset" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- on Spark
@pytest.mark.slow
def test_spark_metrics_equal_duckdb_metrics(spark, sample_warehouse, dataset):
    params = SCOPES["oct"]
    want = duckdb_metrics(sample_warehouse, params)
    got = SM.spark_metrics(dataset, Scope.parse(params), CONFIG, spark=spark)
    same(want.to_dict(), got.to_dict(), "oct")
    assert want.to_text() == got.to_text()


@pytest.mark.slow
def test_cli_engine_spark_json_equals_duckdb_json(spark, sample_warehouse, dataset):
    """``finops-kit metrics --engine spark --json`` (reusing the active session) == ``finops-kit metrics --json`` on
    the warehouse and on the same dataset opened by DuckDB."""
    ps = [a for k, v in SCOPES["aug-oct"].items() for a in ("-p", f"{k}={v}")]

    def run(*extra: str) -> dict[str, Any]:
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert main(["metrics", "--json", "--config", CONFIG, *ps, *extra]) == 0
        return json.loads(buf.getvalue())

    want = run("--warehouse", sample_warehouse)
    got = run("--engine", "spark", "--warehouse", dataset)
    same(want, got, "aug-oct")
    same(run("--warehouse", dataset), got, "aug-oct on the dataset")
    assert want["totals"][0]["rows"] > 0 and want["completeness"]


# ------------------------------------------------------------------------------------- dialect traps
#: Two rows: Sunday 4 Oct 2026 with tags {"team": "ml", "cost center": "r&d"} and an empty list; Monday 5 Oct
#: with tags {"env": "prod"} and the list [7, 8].
ROWS = """(SELECT * FROM (VALUES
    (1, DATE '2026-10-04', '{"team": "ml", "cost center": "r&d"}', 'a  b   c',
     TIMESTAMP '2026-10-04 10:59:00', TIMESTAMP '2026-10-04 11:01:00'),
    (2, DATE '2026-10-05', '{"env": "prod"}', 'x y', TIMESTAMP '2026-10-04 10:00:00', TIMESTAMP '2026-10-04 12:30:00')
  ) AS t(i, d, tags, s, a, b))"""
LIST = "(CASE WHEN i = 2 THEN [7, 8] ELSE CAST([] AS INTEGER[]) END)"


def both(spark, expr: str) -> tuple[Any, Any]:
    """``expr`` over ROWS on DuckDB, and transpiled (portable.to_spark) on Spark: the values, or the error class."""
    if importlib.util.find_spec("sqlglot") is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("the dialect-trap tests need sqlglot under CI (pip install 'finops-kit[spark]')")
        pytest.skip("sqlglot is not installed")
    sql = f"SELECT {expr} AS v FROM {ROWS} ORDER BY i"
    try:
        d = [r[0] for r in duckdb.connect().sql(sql).fetchall()]
    except duckdb.Error as exc:
        d = type(exc).__name__
    try:
        s = [r[0] for r in spark.sql(portable.to_spark(sql)).collect()]
    except Exception as exc:  # noqa: BLE001 - Spark's analysis/runtime errors: which one is the finding
        s = getattr(exc, "getCondition", lambda: None)() or type(exc).__name__
    return d, s


def test_trap_regexp_replace_first_match_vs_all(spark):
    naive = both(spark, r"regexp_replace(s, '\s+', ' ')")
    assert naive == (["a b   c", "x y"], ["a b c", "x y"])  # DuckDB: first match only; Spark: every match
    assert both(spark, portable.regexp_replace_all("s", r"\s+", " ")) == (["a b c", "x y"], ["a b c", "x y"])


def test_trap_day_of_week_sunday_zero_vs_one(spark):
    assert both(spark, "dayofweek(d)") == ([0, 1], [1, 2])
    assert both(spark, "extract(dow FROM d)") == ([0, 1], [1, 2])
    iso = both(spark, "isodow(d)")
    assert iso[0] == [7, 1] and iso[1] != iso[0]  # sqlglot's ISO formula is off on Spark too
    assert both(spark, portable.day_of_week("d")) == ([0, 1], [0, 1])
    assert both(spark, portable.day_of_week("a")) == ([0, 0], [0, 0])  # timestamps too


def test_trap_map_access_on_a_missing_key(spark):
    """A MAP's element_at is a list in DuckDB ([] when the key is missing) and the value in Spark; the kit reads tags
    from the JSON text, which gives the value or NULL on both."""
    d, s = both(spark, "element_at(CAST(json(tags) AS MAP(VARCHAR, VARCHAR)), 'team')")
    assert d == [["ml"], []] and s == ["ml", None]
    assert both(spark, portable.tag_value("tags", "team")) == (["ml", None], ["ml", None])
    assert both(spark, portable.tag_value("tags", "cost center")) == (["r&d", None], ["r&d", None])


def test_trap_first_element_of_an_empty_list_under_ansi(spark):
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"  # Spark 4's default
    d, s = both(spark, f"{LIST}[1]")
    assert d == [None, 7] and isinstance(s, str) and "INVALID_ARRAY_INDEX" in s
    assert both(spark, portable.first_element(LIST)) == ([None, 7], [None, 7])


def test_trap_date_diff_hour_boundaries_vs_elapsed(spark):
    """Not used by the metrics (they count hours from ConsumedQuantity), kept because a duration rule will be."""
    assert both(spark, "date_diff('hour', a, b)") == ([1, 2], [0, 2])
    d, s = both(spark, portable.hours_between("a", "b"))
    assert d == s and d[1] == 2.5 and math.isclose(d[0], 2 / 60)




@pytest.mark.slow
def test_metrics_on_a_spark_ingested_dataset_equal_the_warehouse_metrics(spark, sample_warehouse, tmp_path):
    """End to end on Spark: the sample bills ingested by ``finops-kit ingest --engine spark``, then ``metrics
    --engine spark`` on that dataset == ``finops-kit metrics`` on the DuckDB warehouse of the same bills."""
    from finops_kit.spark import ingest_spark

    dataset = tmp_path / "spark-ds"
    ingest_spark([str(REPO / "data" / "samples")], str(dataset), spark=spark)
    params = SCOPES["aug-oct"]
    want = duckdb_metrics(sample_warehouse, params)
    got = SM.spark_metrics(dataset, Scope.parse(params), CONFIG, spark=spark)
    same(want.to_dict(), got.to_dict(), "spark-ingested")
    assert want.to_text() == got.to_text()
