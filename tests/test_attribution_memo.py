"""Attribution.build reuses the maps of the whole FOCUS table on a connection whose warehouse cannot change under
it (finops_kit.attribution._memo_state) -- and only there: another policy or allocation, a writable connection, a
shadowed focus table, another connection or another row set builds them again."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit import attribution as A
from finops_kit.config import load_config
from finops_kit.scope import attribution_settings, resolve

REPO = Path(__file__).resolve().parents[1]
GCP = REPO / "data" / "samples" / "gcp"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("memo") / "wh.duckdb")
    fk.ingest([str(next(GCP.glob("*_202609.jsonl.gz")))], warehouse=path, progress=False)
    return path


def _maps(at: A.Attribution) -> tuple:
    return at.raw_keys, at.values, at.con.execute(f"SELECT * FROM {at.keymap} ORDER BY raw_key").fetchall()


def _settings(cfg=None):
    return attribution_settings(cfg or load_config(str(REPO / "finops.yaml")))


def test_the_whole_table_maps_are_reused_on_a_read_only_warehouse(warehouse):
    con = fk.connect(warehouse, read_only=True)
    pol, alloc = _settings()
    first = A.Attribution.build(con, "focus", pol, alloc)
    assert A.Attribution.build(con, "focus", pol, alloc) is first
    # two scopes of one connection (the report's, the alerts' month scope): one build
    cfg = str(REPO / "finops.yaml")
    assert resolve(con, cfg).attribution is resolve(con, cfg, {"providers": ["Google Cloud"]}).attribution
    # the same maps as a build that reuses nothing
    con2 = fk.connect(warehouse, read_only=True)
    assert _maps(A.Attribution.build(con2, "(SELECT * FROM focus)", pol, alloc)) == _maps(first)


def test_another_policy_or_allocation_is_built_again(warehouse):
    con = fk.connect(warehouse, read_only=True)
    cfg = load_config(str(REPO / "finops.yaml"))
    pol, alloc = _settings(cfg)
    first = A.Attribution.build(con, "focus", pol, alloc)
    other = copy.deepcopy(cfg)
    other["tag_policy"]["keys"]["team"].setdefault("aliases", []).append("squad")
    pol2, _ = _settings(other)
    assert pol2 != pol
    assert A.Attribution.build(con, "focus", pol2, alloc) is not first
    other = copy.deepcopy(cfg)
    other.setdefault("allocation", {})["key"] = "project"
    _, alloc2 = _settings(other)
    assert alloc2 != alloc
    assert A.Attribution.build(con, "focus", pol, alloc2) is not first
    assert A.Attribution.build(con, "focus", pol, alloc) is first  # the first is still kept


def test_not_reused_on_a_writable_connection_a_shadowed_table_another_connection_or_rows(warehouse, tmp_path):
    pol, alloc = _settings()
    path = str(tmp_path / "rw.duckdb")
    shutil.copy(warehouse, path)
    rw = fk.connect(path, write=True)
    assert A.Attribution.build(rw, "focus", pol, alloc) is not A.Attribution.build(rw, "focus", pol, alloc)
    rw.close()
    con = fk.connect(warehouse, read_only=True)
    first = A.Attribution.build(con, "focus", pol, alloc)
    assert A.Attribution.build(con, "(SELECT * FROM focus)", pol, alloc) is not first
    assert A.Attribution.build(fk.connect(warehouse, read_only=True), "focus", pol, alloc) is not first
    con.execute("CREATE TEMP TABLE focus AS SELECT * FROM main.focus LIMIT 0")  # a shadowed FOCUS table
    shadowed = A.Attribution.build(con, "focus", pol, alloc)
    assert shadowed is not first and shadowed.raw_keys == {}
    assert A.Attribution.build(con, "focus", pol, alloc) is not shadowed
