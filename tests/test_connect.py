"""``fk.connect()`` as a scratch notebook uses it: found from any folder of the project, read-only, never creating
an empty warehouse, sharing the file with the curated notebooks, and robust to plain DuckDB use of the connection.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import finops_kit as fk
from finops_kit.errors import FinopsError
from finops_kit.testing import focus_rows
from finops_kit.warehouse import first_row, info, scalar

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Path:
    """A project folder as `make demo` leaves it: finops.yaml, data/warehouse.duckdb, notebooks/deep/er."""
    monkeypatch.delenv("FINOPS_WAREHOUSE", raising=False)
    root = tmp_path / "proj"
    (root / "notebooks" / "deep" / "er").mkdir(parents=True)
    (root / "finops.yaml").write_text("{}\n")
    con = fk.connect(str(root / "data" / "warehouse.duckdb"), write=True)
    focus_rows([dict(cost="10.50", day="2026-09-03", tags={"team": "vision"}),
                dict(cost="4.25", day="2026-10-03", ProviderName="Google Cloud")], con)
    con.close()
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("sub", ["", "notebooks", "notebooks/deep/er"])
def test_connect_finds_the_project_warehouse_from_any_folder(project, monkeypatch, capsys, sub):
    monkeypatch.chdir(project / sub)
    before = _files(project)
    con = fk.connect()
    try:
        wi = info(con)
        assert Path(wi.path) == project / "data" / "warehouse.duckdb"
        assert wi.read_only and wi.rows == 2 and wi.periods == ("2026-09", "2026-10")
        assert wi.providers == ("AWS", "Google Cloud")
        with pytest.raises(duckdb.Error):  # read-only: a scratch kernel cannot lock the curated notebooks out
            con.execute("CREATE TABLE t (x INT)")
    finally:
        con.close()
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"warehouse {project / 'data' / 'warehouse.duckdb'} (read-only): 2 FOCUS rows"), line
    assert "2026-09..2026-10 (2)" in line and "AWS, Google Cloud" in line
    assert _files(project) == before  # nothing created (no notebooks/data/warehouse.duckdb)


def test_connect_never_creates_an_empty_warehouse_when_reading(tmp_path, monkeypatch):
    monkeypatch.delenv("FINOPS_WAREHOUSE", raising=False)
    root = tmp_path / "empty-proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "finops.yaml").write_text("{}\n")
    monkeypatch.chdir(root / "notebooks")
    before = _files(root)
    for call in (lambda: fk.connect(), lambda: fk.connect("data/warehouse.duckdb"),
                 lambda: fk.connect("data/warehouse.duckdb", read_only=True)):
        with pytest.raises(FinopsError) as e:
            call()
        msg = str(e.value)
        assert len(msg.splitlines()) == 1 and "no warehouse found" in msg and "nothing was created" in msg
        assert str(root / "notebooks" / "data" / "warehouse.duckdb") in msg  # names where it looked
        assert str(root / "data" / "warehouse.duckdb") in msg
    assert _files(root) == before


def test_connect_write_creates_and_a_path_alone_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    con = fk.connect("wh.duckdb", write=True)
    assert not info(con).read_only
    con.close()
    with pytest.raises(ValueError):
        fk.connect("wh.duckdb", write=True, read_only=True)
    con = fk.connect(str(tmp_path / "wh.duckdb"))  # an explicit path without write= opens read-only
    assert info(con).read_only
    con.close()


READER = """
import sys
import finops_kit as fk
con = fk.connect(sys.argv[1], read_only=True)
print(fk.focus(con).aggregate("count(*)").fetchall()[0][0])
"""


def test_a_curated_reader_runs_while_a_scratch_kernel_holds_the_default_connection(project, monkeypatch):
    monkeypatch.chdir(project / "notebooks")
    scratch = fk.connect(quiet=True)  # what the README tells a scratch notebook to run
    try:
        out = subprocess.run([sys.executable, "-c", READER, str(project / "data" / "warehouse.duckdb")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-500:]
        assert out.stdout.strip() == "2"
    finally:
        scratch.close()


def test_focus_works_after_a_plain_fetchone(project, monkeypatch):
    monkeypatch.chdir(project)
    con = fk.connect(quiet=True)
    try:
        assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 2  # leaves the result open in DuckDB 2
        got = fk.focus(con).aggregate("sum(EffectiveCost) AS c").fetchall()[0][0]
        assert str(got).startswith("14.75")
        assert scalar(con, "SELECT count(*) FROM focus WHERE ProviderName = ?", ["AWS"]) == 1
        assert first_row(con, "SELECT ProviderName FROM focus WHERE false") is None
        assert con.sql("SELECT 1").fetchall() == [(1,)]  # the helpers leave no result open either
    finally:
        con.close()


@pytest.mark.slow
def test_curated_notebook_report_runs_while_a_scratch_kernel_holds_fk_connect(sample_warehouse, tmp_path,
                                                                            monkeypatch):
    from finops_kit import report

    monkeypatch.setenv("FINOPS_WAREHOUSE", sample_warehouse)
    scratch = fk.connect(quiet=True)
    try:
        info_ = report.read_notebook_info(REPO / "notebooks" / "tagging_audit.ipynb")
        jobs = report.plan([info_], {}, {}, sample_warehouse, str(REPO / "finops.yaml"))
        (res,) = report.run_jobs(jobs, tmp_path / "out", timeout_cell=300, timeout_notebook=900)
        assert res.status == "ok", res.error
    finally:
        scratch.close()


def test_side_files_resolve_from_the_project_root_in_a_live_kernel(project):
    """The spot notebook's price cache and trace list, as a kernel started in notebooks/ sees them."""
    from finops_kit.notebook import resolve_project_paths

    (project / "data" / "spot" / "sample_cache").mkdir(parents=True)
    (project / "traces").mkdir()
    (project / "traces" / "a.json").write_text("{}")
    ns = {"price_cache": "data/spot/sample_cache", "trace_paths": ["traces/a.json", "traces/missing.json"],
          "warehouse": "data/warehouse.duckdb", "dimension": "team", "advisor_path": "https://example.com/x.json"}
    resolve_project_paths(ns, start=project / "notebooks" / "deep")
    assert ns["price_cache"] == str(project / "data" / "spot" / "sample_cache")
    assert ns["trace_paths"] == [str(project / "traces" / "a.json"), str(project / "traces" / "missing.json")]
    assert ns["warehouse"] == str(project / "data" / "warehouse.duckdb")
    assert ns["dimension"] == "team" and ns["advisor_path"] == "https://example.com/x.json"
