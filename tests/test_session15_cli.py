"""Session 15 (what a scheduler sees): ``check`` tells "nothing to judge" (exit 3) from "alerts fired" (exit 1), and
the report index keeps an entry whose page is gone while its executed notebook is there. Each test failed on the
code before its fix."""

from __future__ import annotations

import json
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


def test_old_data_is_an_alert_exit_1_not_nothing_to_judge(warehouse, tmp_path, capsys, monkeypatch):
    """Data exists but stopped long ago (no --as-of: judged as of today): the [data] freshness alert is an alert,
    exit 1, even when no budget fires -- the export stopped, someone must look."""
    import datetime as dt

    from finops_kit import alerts

    class Today(dt.date):
        @classmethod
        def today(cls):
            return cls(2026, 12, 5)

    monkeypatch.setattr(alerts, "date", Today)
    assert main(["check", "--warehouse", warehouse, "--config", _config(tmp_path, 10_000)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("finops-kit check: 1 alert(s)\n  [data] no charges from AWS after 2026-10-04 (62 days "), out


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


# -- 2. the report index keeps an entry whose page is gone while its executed notebook is there ----------------------

def _entry(name: str, **kw) -> dict:
    return {"name": name, "notebook": f"notebooks/{name}.ipynb", "title": name.title(), "status": "ok",
            "parameters": {}, "html": f"{name}.html", "ipynb": f"{name}.ipynb", "started": "2026-12-01T00:00:00Z",
            "duration_s": 1.0, "error": None, **kw}


def _index(out: Path, *entries: dict) -> None:
    out.mkdir(exist_ok=True)
    (out / "index.json").write_text(json.dumps({"reports": list(entries)}), encoding="utf-8")


def test_an_entry_whose_page_is_gone_but_notebook_kept_stays_listed_linking_the_notebook(tmp_path):
    """Before: render two reports into one folder, delete one's .html (its .ipynb kept), render the other again:
    the first vanished from index.json and index.html -- though its executed notebook was right there."""
    from finops_kit import report

    out = tmp_path / "out"
    _index(out, _entry("alpha"), _entry("beta"))
    (out / "alpha.ipynb").write_text("{}")
    (out / "beta.html").write_text("<p>b</p>")
    (out / "beta.ipynb").write_text("{}")
    report.write_index(out, [])
    by = {e["name"]: e for e in json.loads((out / "index.json").read_text())["reports"]}
    assert set(by) == {"alpha", "beta"}
    a = by["alpha"]
    assert a["status"] == "html missing" and a["html"] is None and a["ipynb"] == "alpha.ipynb"
    assert a["error"].startswith("html missing: alpha.html is gone; re-run report alpha"), a["error"]
    assert a["rendered"] == {"status": "ok", "error": None, "html": "alpha.html"}
    assert by["beta"]["status"] == "ok"
    page = (out / "index.html").read_text()
    assert '<tr data-status="html missing"><td class="report"><a href="alpha.ipynb">Alpha</a>' in page
    assert "re-run report alpha" in page and 'href="alpha.html"' not in page and 'href="None"' not in page
    assert "2 report(s), 1 page missing: re-run it" in page and "FAILED" not in page
    for href in re.findall(r'href="([^"]+)"', page):
        assert (out / href).is_file(), href
    # the page is back (rendered again, or restored from a copy): the entry is what it was
    (out / "alpha.html").write_text("<p>a</p>")
    report.write_index(out, [])
    a = {e["name"]: e for e in json.loads((out / "index.json").read_text())["reports"]}["alpha"]
    assert (a["status"], a["html"], a["error"], "rendered" in a) == ("ok", "alpha.html", None, False)


def test_an_entry_with_neither_file_goes_and_a_failed_ones_reason_is_kept(tmp_path):
    from finops_kit import report

    out = tmp_path / "out"
    _index(out, _entry("gone"), _entry("broke", status="failed", error="cell 3: ZeroDivisionError"))
    (out / "broke.ipynb").write_text("{}")
    report.write_index(out, [])
    [b] = json.loads((out / "index.json").read_text())["reports"]
    assert b["name"] == "broke" and b["status"] == "html missing"
    assert b["rendered"] == {"status": "failed", "error": "cell 3: ZeroDivisionError", "html": "broke.html"}
    assert "1 report(s), 1 page missing" in (out / "index.html").read_text()


@pytest.mark.parametrize("html, ipynb", [("/etc/hostname", "x.ipynb"), ("../outside.html", "x.ipynb"),
                                         ("x.html", "/etc/hostname"), ("sub/x.html", "../outside.ipynb")])
def test_an_index_entry_never_links_a_file_outside_the_folder(tmp_path, html, ipynb):
    """An edited or foreign index.json naming an absolute path or one outside --out: before, an absolute .html that
    existed (/etc/hostname) was kept and linked from index.html, its path written into the page."""
    from finops_kit import report

    out = tmp_path / "out"
    (tmp_path / "outside.html").write_text("x")
    (tmp_path / "outside.ipynb").write_text("x")
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "x.html").write_text("x")
    (out / "x.html").write_text("x")
    (out / "x.ipynb").write_text("x")
    _index(out, _entry("x", html=html, ipynb=ipynb, title='<script>alert(1)</script>'))
    report.write_index(out, [])
    data = json.loads((out / "index.json").read_text())
    page = (out / "index.html").read_text()
    for e in data["reports"]:
        assert e["html"] in (None, "x.html") and e["ipynb"] in (None, "x.ipynb"), e
    assert "/etc/hostname" not in page + json.dumps(data) and "outside" not in page + json.dumps(data)
    assert "<script>" not in page
    for href in re.findall(r'href="([^"]+)"', page):
        assert "/" not in href and (out / href).is_file(), href


def test_report_rerun_keeps_the_entry_whose_page_was_deleted(warehouse, tmp_path):
    """The scheduler's case end to end: two reports into one --out, one page deleted, the other re-run."""
    import nbformat

    books = tmp_path / "books"
    books.mkdir()
    for name in ("alpha", "beta"):
        book = nbformat.v4.new_notebook()
        book.cells = [nbformat.v4.new_markdown_cell(f"# {name.title()}"), nbformat.v4.new_code_cell("print(1)")]
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(book, str(books / f"{name}.ipynb"))
    out = tmp_path / "out"
    common = ["--notebooks-dir", str(books), "--out", str(out), "--jobs", "1", "--config", _config(tmp_path, 1),
              "--warehouse", warehouse]
    assert main(["report", "alpha", "beta", *common]) == 0
    (out / "alpha.html").unlink()
    assert main(["report", "beta", *common]) == 0
    by = {e["name"]: e for e in json.loads((out / "index.json").read_text())["reports"]}
    assert by["alpha"]["status"] == "html missing" and by["alpha"]["ipynb"] == "alpha.ipynb"
    assert by["beta"]["status"] == "ok" and (out / "beta.html").is_file()


# -- 3. --help and the README's "Use it" say the same -------------------------------------------------------------

def _help(command: str) -> str:
    from finops_kit.cli import build_parser

    return " ".join(build_parser(command)._subparsers._group_actions[0].choices[command].format_help().split())


def test_the_readme_ingest_line_lists_every_format_the_cli_takes():
    """The README's `--format auto|focus|...|oci` left out focus-contract-commitment, which `formats` lists."""
    from finops_kit.sources import registry

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [listed] = re.findall(r"^finops-kit ingest PATH_OR_GLOB\.\.\. \[--format ([\w|-]+)\]", readme, flags=re.M)
    assert set(listed.split("|")) == {"auto", *registry()}


def test_help_says_what_the_readme_says_of_all_and_as_of():
    """`report --all` said "every notebooks/*.ipynb" whatever --notebooks-dir named; `check --as-of` did not say
    that leaving it out adds the stale-data alert (README: alerts.max_data_age_days)."""
    report = _help("report")
    assert "--all every *.ipynb of the --notebooks-dir folder (default: notebooks)" in report, report
    check = _help("check")
    assert "[data] alert" in check and "alerts.max_data_age_days" in check, check


def test_no_doc_says_another_exit_code_for_a_scope_without_charges():
    """docs/metrics.md still said "A scope without charges is exit 1" once that became exit 3."""
    said = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        said += [(path.name, m.group(0)) for m in re.finditer(
            r"(?:without (?:any )?charges?|no data for this scope|no charges in)[^.|]{0,80}?exit `?(\d+)", text)
            if m.group(1) != "3"]
    assert said == []


def test_the_docs_say_when_check_exits_3_as_it_does(warehouse, tmp_path, capsys):
    """README and check --help promised exit 3 for "an export that has not arrived", but check judges as of the last
    day billed: --as-of after the data is judged (exit 0 here), only an --as-of before it is nothing to judge. The
    docs now say so, and that a stopped export is the [data] alert's (regression review s15-bud #2)."""
    cfg = _config(tmp_path, 10_000)
    assert main(["check", "--warehouse", warehouse, "--config", cfg, "--as-of", "2026-12-20"]) == 0
    assert main(["check", "--warehouse", warehouse, "--config", cfg, "--as-of", "2026-09-30"]) == 3
    capsys.readouterr()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = " ".join(dict(re.findall(r"^\| `(\d+)` \| ([^|]+)\|", readme, flags=re.M))["3"].split())
    for text in (row, _help("check")):
        assert "has not arrived, a" not in text and "export that has not arrived" not in text.split("`check`")[-1]
        assert "never after the scope's last day billed" in text and "before its data" in text, text
        assert "A late or stopped export is not" in text and "[data]" in text, text
