"""Ctrl-C around an ingest's COMMIT: the message must say what is stored.

An interrupt before COMMIT writes nothing (exit 130, "an interrupted ingest writes nothing"). One that arrives once
COMMIT has begun used to print the same line while the rows were stored (the reviewer hit it 7 times in 16 runs:
the hashing thread's shutdown and closing the warehouse take ~0.2 s after COMMIT). The signal is raised here at a
fixed point of the ingest (``signal.raise_signal`` runs the handler at once), so no test depends on timing.
"""

from __future__ import annotations

import importlib
import signal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main

ingest_mod = importlib.import_module("finops_kit.ingest")  # (finops_kit.ingest is also the function)

REPO = Path(__file__).resolve().parents[1]
MONTH = REPO / "data" / "samples" / "aws-cur2" / "acme-ai-cur2" / "data" / "BILLING_PERIOD=2026-01"

pytestmark = pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")


def _rows(warehouse: str) -> int:
    con = fk.connect(warehouse, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM focus").fetchone()[0]
    finally:
        con.close()


def _sigint_before(monkeypatch, name: str, module=ingest_mod) -> None:
    """Deliver SIGINT (as Ctrl-C does) when the ingest calls ``module.name``, then let the call run."""
    original = getattr(module, name)

    def interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)


def _ingest(warehouse: str, capsys) -> tuple[int, str, str]:
    code = main(["ingest", str(MONTH), "--warehouse", warehouse, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


@pytest.mark.parametrize("existing", [True, False])
def test_ctrl_c_after_commit_reports_the_stored_ingest(tmp_path, monkeypatch, capsys, existing):
    """SIGINT while the committed ingest closes the warehouse: it used to exit 130 saying nothing was written
    (and a warehouse the ingest had created was deleted again). The cleanup finishes, exit 0, and a note says
    the Ctrl-C came after the commit."""
    warehouse = str(tmp_path / "wh.duckdb")
    if existing:
        fk.connect(warehouse, write=True).close()
    _sigint_before(monkeypatch, "_release")
    code, out, err = _ingest(warehouse, capsys)
    assert code == 0, err
    assert "writes nothing" not in err
    assert out.startswith("ingested ") and "rows of aws-cur2" in out
    n = _rows(warehouse)
    assert n > 0
    assert f"note: Ctrl-C came while the ingest was being committed; the commit completed: {n:,} rows are stored" \
        in err, err


def test_ctrl_c_while_printing_the_summary_says_the_ingest_is_stored(tmp_path, monkeypatch, capsys):
    """The ingest has returned and the CLI is printing: the interrupt cannot undo anything, and says so."""
    warehouse = str(tmp_path / "wh.duckdb")

    def summary(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_mod.IngestResult, "summary", summary)
    code, _, err = _ingest(warehouse, capsys)
    n = _rows(warehouse)
    assert code == 0 and n > 0, err
    assert err.splitlines()[-1] == (f"finops-kit: interrupted (Ctrl-C) after the ingest was committed: {n:,} rows "
                                    "are stored; nothing was lost, only its report was cut short"), err


def test_ctrl_c_before_commit_still_writes_nothing(tmp_path, monkeypatch, capsys):
    """The interrupt lands before COMMIT: exit 130, the one line, the warehouse unchanged; and a later, unrelated
    interrupt of the same process is not taken for one after this call's commit."""
    warehouse = str(tmp_path / "wh.duckdb")
    fk.connect(warehouse, write=True).close()
    assert _ingest(warehouse, capsys)[0] == 0  # a committed ingest earlier in this process
    before = _rows(warehouse)
    _sigint_before(monkeypatch, "complete_accelerated_instances")
    code, out, err = _ingest(warehouse, capsys)
    assert code == 130 and out == ""
    assert err.splitlines() == ["finops-kit: interrupted (Ctrl-C); an interrupted ingest writes nothing"]
    assert _rows(warehouse) == before


def test_library_ingest_interrupted_after_commit_returns_its_result(tmp_path, monkeypatch):
    """``fk.ingest`` in a notebook: the result comes back with the note instead of a KeyboardInterrupt whose
    traceback would suggest the cell did nothing."""
    warehouse = str(tmp_path / "wh.duckdb")
    _sigint_before(monkeypatch, "_release")
    res = fk.ingest(str(MONTH), warehouse=warehouse, progress=False)
    assert res.rows == _rows(warehouse) > 0
    assert any(n.startswith("Ctrl-C came while the ingest was being committed") for n in res.notes), res.notes
