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
# the report-durations record (finops_kit/report.py) likewise: the tests render many temporary notebooks and must not
# write into the user's ~/.cache/finops-kit; kept between test runs like the caches above, so the curated reports
# still start longest first. The Vega bundle and widget manager stay in the user's (warm) cache folder.
os.environ.setdefault("FINOPS_DURATIONS_CACHE",
                      os.path.join(tempfile.gettempdir(), f"finops-kit-test-durations-{os.getuid()}"))

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
def curated_reports(sample_warehouse, tmp_path_factory):
    """Every notebook in notebooks/ rendered over the sample warehouse for ``report_figures.SCOPE`` (three closed
    months of every provider), in one run, as ``finops-kit report --all -p ...`` does: ``(out folder, {notebook stem:
    ReportResult})``. Shared by the browser checks and the consistency checks.

    Rendered ONCE per test run (~45 s of two cores): the first pytest-xdist worker to need it renders into the
    run's common temp folder under an exclusive file lock; the other waits for the lock and reads the results
    (the documented xdist recipe; xdist_group/--dist loadgroup would do it by scheduling, but xdist 3.8 sets
    ``item._nodeid``, which pytest 9 no longer reads, so the groups are silently ignored). The reports of all
    workers come from identical sample warehouses (same committed samples, same ingest)."""
    import dataclasses
    import fcntl
    import json as _json

    from finops_kit import report

    from .report_figures import SCOPE

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-N/, shared by the workers' popen-gwN/ folders
    out = root / "curated-reports"
    done = out / "results.json"
    with open(root / "curated-reports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.is_file():
            infos = [report.read_notebook_info(p) for p in report.discover(REPO / "notebooks")]
            cli = {k: (v, v) for k, v in SCOPE.items()}
            # the config's reports.parameters, as `make demo` passes them (the AI report's sample side files)
            from finops_kit.config import load_config

            defaults = (load_config(REPO / "finops.yaml").get("reports") or {}).get("parameters") or {}
            jobs = report.plan(infos, cli, defaults, str(Path(sample_warehouse).resolve()), str(REPO / "finops.yaml"),
                               every=True)
            results = report.run_jobs(jobs, out, timeout_cell=300, timeout_notebook=900)
            done.write_text(_json.dumps([dataclasses.asdict(r) for r in results], default=str), encoding="utf-8")
        results = [report.ReportResult(**r) for r in _json.loads(done.read_text(encoding="utf-8"))]
    return out, {Path(r.notebook).stem: r for r in results}


@pytest.fixture(scope="session")
def sample_con(sample_warehouse):
    """A read-only connection to :func:`sample_warehouse`, shared by the tests of one worker that only read."""
    import finops_kit as fk

    c = fk.connect(sample_warehouse, read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def sample_scope(sample_warehouse):
    """A read-only connection to :func:`sample_warehouse` and its whole-warehouse scope resolved with the project's
    finops.yaml, per test module: ``con, sc = sample_scope``."""
    import finops_kit as fk
    from finops_kit import scope

    con = fk.connect(sample_warehouse, read_only=True)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    yield con, sc
    con.close()


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
