"""Shared fixtures. Tests may read ../shared but skip cleanly when it is absent."""

from __future__ import annotations

import os
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

    c = fk.connect(warehouse)
    yield c
    c.close()
