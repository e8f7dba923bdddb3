"""Session 15 (what a scheduler sees): ``check`` tells "nothing to judge" (exit 3) from "alerts fired" (exit 1), and
the report index keeps an entry whose page is gone while its executed notebook is there. Each test failed on the
code before its fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.testing import focus_rows

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, monthly: int) -> str:
    """One budget on all costs (``monthly`` dollars), no forecast, no guardrails: what fires is the budget alone."""
    path = tmp_path / f"finops-{monthly}.yaml"
    path.write_text(f"""\
budgets:
  items:
    - {{name: Everything, monthly: {monthly}}}
alerts:
  forecast: false
  guardrails: false
""", encoding="utf-8")
    return str(path)


@pytest.fixture()
def warehouse(tmp_path: Path) -> str:
    """$400 of AWS charges on 3-4 Oct 2026 and $50 of Google Cloud on 2 Nov 2026."""
    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows([dict(cost="100", day="2026-10-03"), dict(cost="300", day="2026-10-04"),
                dict(cost="50", day="2026-11-02", ProviderName="Google Cloud")], con)
    con.close()
    return str(wh)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.delenv("FINOPS_CONFIG", raising=False)
    monkeypatch.setenv("FINOPS_QUIET", "1")


# -- 1. check: 0 ok, 1 alerts, 3 nothing to judge ----------------------------------------------------------------

def test_check_exit_0_when_nothing_fires(warehouse, tmp_path, capsys):
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 10_000),
                 "--as-of", "2026-10-04"]) == 0
    assert capsys.readouterr().out == "finops-kit check: no alerts\n"


def test_check_exit_1_when_a_budget_fires(warehouse, tmp_path, capsys):
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 1), "--as-of", "2026-10-04"]) == 1
    assert "[budget] Everything: $400 spent in 2026-10" in capsys.readouterr().out


def test_check_on_a_month_without_charges_is_exit_3_not_all_clear(warehouse, tmp_path, capsys):
    """Before: `check --as-of 2026-09-20` (the month before the data begins) judged a month of nothing: "no
    alerts", exit 0 -- with a guardrails section it was "no data for this scope", exit 1, the alerts' code."""
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 1), "--as-of", "2026-09-20"]) == 3
    cap = capsys.readouterr()
    assert cap.out == ""
    [line] = cap.err.strip().splitlines()
    assert "no charges in 2026-09-01 .. 2026-09-20" in line and "nothing to judge" in line, line
    assert "2026-10 .. 2026-11" in line, line  # what the warehouse does hold: wrong period, or a late export?


def test_check_on_a_provider_without_charges_that_month_is_exit_3(warehouse, tmp_path, capsys):
    """Google Cloud is in the warehouse (so not a typo, exit 2) but has no charge in October."""
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 1), "--as-of", "2026-10-04",
                 "-p", "providers=[Google Cloud]", "--quiet"]) == 3
    assert "nothing to judge" in capsys.readouterr().err


def test_check_on_an_empty_warehouse_is_exit_3(tmp_path, capsys):
    """Before: exit 1 ("no data for this scope"), the code of a fired alert."""
    wh = tmp_path / "empty.duckdb"
    fk.connect(str(wh), write=True).close()
    assert main(["check", "--warehouse", str(wh), "--config", _config(tmp_path, 1)]) == 3
    assert "no data for this scope" in capsys.readouterr().err


def test_a_scope_naming_what_is_not_there_stays_exit_2(warehouse, tmp_path, capsys):
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 1),
                 "-p", "providers=[Oracle]"]) == 2
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 1), "-p", "currency=EUR"]) == 2


def test_old_data_is_an_alert_exit_1_not_nothing_to_judge(warehouse, tmp_path, capsys):
    """Data exists but stopped long ago (no --as-of: judged as of today): the [data] freshness alert is an alert,
    exit 1, even when no budget fires -- the export stopped, someone must look."""
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 10_000)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("finops-kit check: 1 alert(s)\n  [data] no charges from AWS after 2026-10-04 "), out


def test_report_on_a_scope_without_charges_is_exit_3(warehouse, tmp_path, capsys):
    """The same code for every command: `report` on a month with no charges said exit 1, "a report failed"."""
    out = tmp_path / "out"
    assert main(["report", "--all", "--warehouse", warehouse, "--out", str(out),
                 "-p", "billing_period_start=2027-01"]) == 3
    assert "no data for this scope" in capsys.readouterr().err and not out.exists()


def test_exit_codes_are_documented_alike_in_readme_check_help_and_scheduling():
    """Every exit code the kit returns is in the README's table; check --help and docs/scheduling.md name 3."""
    from finops_kit.cli import build_parser
    from finops_kit.scope import NoDataError

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\d+)` \| ([^|]+)\|", readme, flags=re.M))
    assert set(table) == {"0", "1", "2", "3", "75", "130", "143"}
    assert NoDataError.exit_code == 3 and "no charges" in table["3"]
    assert "no data in the scope" not in table["1"]
    sub = build_parser("check")._subparsers._group_actions[0].choices["check"]
    text = " ".join(sub.format_help().split())
    for code in ("0", "1", "2", "3", "75"):
        assert re.search(rf"(^|\s){code}\b", text), code
    assert "3 " in text and "nothing to judge" in text
    assert "| 3 |" in (REPO / "docs" / "scheduling.md").read_text(encoding="utf-8").replace("`", "")
