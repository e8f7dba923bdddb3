"""Shared fixtures. Tests may read ../shared but skip cleanly when it is absent."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# model fits (finops_kit/fitcache.py) shared by the tests and the report kernels they start, not in ~/.cache
os.environ.setdefault("FINOPS_FIT_CACHE", os.path.join(tempfile.gettempdir(), f"finops-kit-test-fits-{os.getuid()}"))
# query results (finops_kit/querycache.py) likewise; keyed by each warehouse file's state, so the many warehouses the
# tests build never share an entry
os.environ.setdefault("FINOPS_QUERY_CACHE", os.path.join(tempfile.gettempdir(), f"finops-kit-test-queries-{os.getuid()}"))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FINOPS_SHARED", REPO.parent / "shared"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared corpus; skips the test when it is not there."""
    if not SHARED.exists():
        pytest.skip("../shared corpus not available")
    return SHARED


@pytest.fixture()
def warehouse(tmp_path: Path) -> str:
    """Path of a fresh warehouse file for one test."""
    return str(tmp_path / "wh.duckdb")


@pytest.fixture()
def con(warehouse: str):
    import finops_kit as fk

    c = fk.connect(warehouse, write=True)
    yield c
    c.close()


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory) -> str:
    """A warehouse built from the committed data/samples as `make demo` builds it: one call over the whole folder
    (one per test worker)."""
    import finops_kit as fk

    samples = REPO / "data" / "samples"
    if not (samples / "PLANTED.json").exists():
        pytest.fail(f"{samples} is incomplete: run 'finops-kit samples --out data/samples' and commit it")
    path = str(tmp_path_factory.mktemp("samples") / "warehouse.duckdb")
    fk.ingest([str(samples)], warehouse=path, progress=False)
    return path


@pytest.fixture(scope="session")
def sample_con(sample_warehouse):
    """A read-only connection to :func:`sample_warehouse`, shared by the tests of one worker that only read."""
    import finops_kit as fk

    c = fk.connect(sample_warehouse, read_only=True)
    yield c
    c.close()


@contextmanager
def local_moto_server():
    """A real moto server (server mode) on 127.0.0.1 and a free port, stopped on exit; yields its URL.

    Tests that talk to AWS APIs use it through the real boto3 client, never through network or mocks elsewhere.
    """
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_env(monkeypatch, tmp_path):
    """AWS variables pointing boto3 at a local moto server (no profile, no metadata service); yields a client."""
    boto3 = pytest.importorskip("boto3")
    with local_moto_server() as endpoint:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(var, raising=False)
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                     "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                     "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
                     "AWS_EC2_METADATA_DISABLED": "true"}.items():
            monkeypatch.setenv(k, v)
        yield boto3.client("s3", endpoint_url=endpoint)


def _spark_missing(reason: str) -> None:
    """Skip a Spark test where Spark cannot run -- but fail under CI=true, where CI installs Java and pyspark."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"Spark tests need pyspark and Java under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session per test worker: local[2], UI and progress bars off, 2 shuffle partitions, UTC.
    Skips cleanly when pyspark or Java is missing (fails under CI=true)."""
    import shutil

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _spark_missing("pyspark is not installed (pip install 'finops-kit[spark]')")
    home = os.environ.get("JAVA_HOME")
    if not (shutil.which("java") or (home and Path(home, "bin", "java").exists())):
        _spark_missing("Java is not installed (Spark needs Java 17)")
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers import this venv's duckdb/finops_kit
    session = (SparkSession.builder.master("local[2]").appName("finops-kit tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.default.parallelism", "2")
               .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
