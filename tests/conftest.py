"""Shared fixtures. Tests may read ../shared but skip cleanly when it is absent."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

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
