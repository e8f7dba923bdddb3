"""``finops-kit ingest --engine spark`` against the DuckDB ingest: same rows, same totals, same errors.

One local Spark session per xdist worker (``local[2]``, 2 shuffle partitions, no UI). Under CI (``CI=true``) a
missing Java or pyspark fails these tests instead of skipping them: CI installs both (``.ci/run``, the dev extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from finops_kit.ingest import ingest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: Spark starts a JVM and runs every sample format twice: with the report/browser suites in the full run (make test)
slow = pytest.mark.slow

#: columns that differ by design between two runs (the run's id)
PER_RUN = {"x_IngestId"}


def _need_spark() -> None:
    from finops_kit.spark import JAVA_HINT, java_available

    problems = []
    try:
        import pyspark  # noqa: F401
    except ImportError:
        problems.append("pyspark is not installed (pip install -e '.[dev]')")
    if not java_available():
        problems.append(JAVA_HINT)
    if problems:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("; ".join(problems))
        pytest.skip("; ".join(problems))


@pytest.fixture(scope="session")
def spark():
    _need_spark()
    from finops_kit.spark import session

    s = session("local[2]", shuffle_partitions=2)
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _duckdb(paths: list[str], tmp: Path) -> duckdb.DuckDBPyConnection:
    wh = tmp / "wh.duckdb"
    ingest(paths, warehouse=str(wh), progress=False)
    return duckdb.connect(str(wh), read_only=True)


def _dataset_view(con: duckdb.DuckDBPyConnection, dataset: Path, name: str = "ds") -> None:
    glob = str(dataset / "focus" / "**" / "*.parquet")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{glob}', "
                "hive_partitioning = false, union_by_name = true)")


def assert_same(con: duckdb.DuckDBPyConnection, dataset: Path) -> None:
    """Identical per-period/currency totals, row counts and rows (every column but the run id)."""
    _dataset_view(con, dataset)
    wh_cols = [r[0] for r in con.execute("DESCRIBE focus").fetchall()]
    ds_cols = {r[0]: r[1] for r in con.execute("DESCRIBE ds").fetchall()}
    assert set(wh_cols) == set(ds_cols), set(wh_cols) ^ set(ds_cols)
    assert ds_cols["BilledCost"] == "DECIMAL(38,12)" and ds_cols["ChargePeriodStart"] == "TIMESTAMP"
    totals = ("SELECT strftime(BillingPeriodStart, '%Y-%m'), BillingCurrency, count(*), sum(BilledCost), "
              "sum(EffectiveCost), sum(ListCost), sum(ContractedCost) FROM {} GROUP BY ALL ORDER BY ALL")
    assert con.execute(totals.format("focus")).fetchall() == con.execute(totals.format("ds")).fetchall()
    cols = ", ".join(f'CAST("{c}" AS VARCHAR)' if c == "Tags" or c == "SkuPriceDetails" else f'"{c}"'
                     for c in wh_cols if c not in PER_RUN)
    for a, b in (("focus", "ds"), ("ds", "focus")):
        diff = con.execute(f"SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b} LIMIT 3").fetchall()
        assert diff == [], f"rows in {a} not in {b}: {diff}"


SAMPLE_FORMATS = {
    "aws-cur-legacy": [SAMPLES / "aws-cur-legacy"],
    "aws-cur2": [SAMPLES / "aws-cur2"],
    "azure": [SAMPLES / "azure"],
    "gcp": [SAMPLES / "gcp"],
    "focus": [FIXTURES / "focus" / "quirky_focus_1_2.csv"],
}


@slow
@pytest.mark.parametrize("fmt", list(SAMPLE_FORMATS))
def test_spark_ingest_equals_duckdb_ingest(spark, tmp_path, fmt):
    from finops_kit.spark import ingest_spark

    paths = [str(p) for p in SAMPLE_FORMATS[fmt]]
    dataset = tmp_path / "ds"
    res = ingest_spark(paths, str(dataset), spark=spark)
    con = _duckdb(paths, tmp_path)
    assert res.rows == con.execute("SELECT count(*) FROM focus").fetchall()[0][0] > 0
    assert all(r["ok"] for r in res.reconciliation)
    assert_same(con, dataset)
    # partition folders are derived from the rows they hold
    glob = str(dataset / "focus" / "**" / "*.parquet")
    wrong = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) WHERE provider <> "
                        "ProviderName OR billing_period <> strftime(BillingPeriodStart, '%Y-%m')").fetchall()[0][0]
    assert wrong == 0
    assert (dataset / "finops-dataset.json").is_file() and (dataset / "tables" / "reconciliation.parquet").is_file()


def test_make_test_stops_with_one_line_when_java_is_missing(tmp_path):
    """``make java`` (part of ``make test``) without Java and without apt-get: exit 1 and one line saying how."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java, no apt-get
    out = subprocess.run([sys.executable, str(REPO / "tests" / "java_check.py"), "--ensure"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no Java for the Spark tests" in out.stderr
