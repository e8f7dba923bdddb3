"""Review 14 (scheduler and live-explorer use): one config rule for every command and the API, safe re-runs and
kills, distinct exit codes, up-front checks. Each test failed on the code before its fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.testing import focus_rows

REPO = Path(__file__).resolve().parents[1]

#: A budget of $1 on all costs: `check` fires whenever this config is read, and says nothing when it is not.
CONFIG = """\
tag_policy:
  keys:
    team: {aliases: [Team, owner-team]}
budgets:
  items:
    - {name: Everything, scope: {}, monthly: 1}
alerts:
  budgets: true
  forecast: false
  guardrails: false
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project: finops.yaml at its root, a notebooks/ folder, and a warehouse whose team tag has two spellings."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "finops.yaml").write_text(CONFIG, encoding="utf-8")
    con = fk.connect(str(root / "data" / "warehouse.duckdb"), write=True)
    focus_rows([dict(cost="100", day="2026-10-03", tags={"team": "nlp"}),
                dict(cost="300", day="2026-10-04", tags={"Team": "nlp"})], con)
    con.close()
    return root


def _env_without_config(monkeypatch) -> None:
    monkeypatch.delenv("FINOPS_CONFIG", raising=False)
    monkeypatch.setenv("FINOPS_QUIET", "1")


# -- 1. one config discovery rule --------------------------------------------------------------------------------

def test_check_from_a_subfolder_reads_the_projects_config(project, monkeypatch, capsys):
    """`check` run from notebooks/ said "no alerts" (exit 0) while the root's budget fired (exit 1)."""
    _env_without_config(monkeypatch)
    wh = str(project / "data" / "warehouse.duckdb")
    monkeypatch.chdir(project)
    assert main(["check", "--warehouse", wh, "--as-of", "2026-10-04"]) == 1
    root_out = capsys.readouterr().out
    monkeypatch.chdir(project / "notebooks")
    assert main(["check", "--warehouse", wh, "--as-of", "2026-10-04"]) == 1
    assert capsys.readouterr().out == root_out


def test_cli_and_api_find_the_same_config(project, monkeypatch):
    _env_without_config(monkeypatch)
    from finops_kit import api, report
    from finops_kit.cli import build_parser
    from finops_kit.config import find_config, load_config

    monkeypatch.chdir(project / "notebooks")
    want = (project / "finops.yaml").resolve()
    assert find_config() is not None and Path(find_config()).resolve() == want
    assert load_config().path is not None and Path(load_config().path).resolve() == want
    assert Path(api._config(None)).resolve() == want
    args = build_parser("report").parse_args(["report", "x"])
    assert Path(report._settings(args)["config_path"]) == want
    # the same team figures from the subfolder as from the root (the Team alias consolidated)
    con = fk.connect(str(project / "data" / "warehouse.duckdb"), read_only=True, quiet=True)
    try:
        sub = fk.costs(by="team", con=con)
        monkeypatch.chdir(project)
        top = fk.costs(by="team", con=con)
    finally:
        con.close()
    assert list(sub["team"]) == list(top["team"]) == ["nlp"]


def test_no_config_found_is_said_in_one_line(project, tmp_path, monkeypatch, capsys):
    """Outside any project: the kit's defaults, and one stderr line says so (it changes what check and metrics
    find); the CostFrame's note says it too."""
    _env_without_config(monkeypatch)
    elsewhere = tmp_path / "analyst"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    wh = str(project / "data" / "warehouse.duckdb")
    assert main(["check", "--warehouse", wh, "--as-of", "2026-10-04"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finops.yaml" in err[0] and "defaults" in err[0], err
    assert main(["metrics", "--warehouse", wh, "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no finops.yaml" in err[0], err
    # check --quiet (a cron job mails whatever it prints) stays quiet about a documented default
    assert main(["check", "--warehouse", wh, "--as-of", "2026-10-04", "--quiet"]) == 0
    assert capsys.readouterr().err.strip() == ""
    con = fk.connect(wh, read_only=True, quiet=True)
    try:
        frame = fk.costs(by="team", con=con)
    finally:
        con.close()
    assert "no finops.yaml" in repr(frame)
    monkeypatch.chdir(project)
    con = fk.connect(wh, read_only=True, quiet=True)
    try:
        assert "Config: finops.yaml" in repr(fk.costs(by="team", con=con))
    finally:
        con.close()


# -- 2. FINOPS_CONFIG for every command ----------------------------------------------------------------------------

def test_finops_config_is_followed_by_report_as_by_check(project, tmp_path, monkeypatch):
    """`report` injected ./finops.yaml while `check` read $FINOPS_CONFIG: the alert said the budget was blown and
    the published report said "on track"."""
    from finops_kit import report
    from finops_kit.cli import build_parser

    alt = tmp_path / "alt.yaml"
    alt.write_text(CONFIG.replace("monthly: 1", "monthly: 1000000"), encoding="utf-8")
    monkeypatch.setenv("FINOPS_CONFIG", str(alt))
    monkeypatch.chdir(project)
    args = build_parser("report").parse_args(["report", "x"])
    assert Path(report._settings(args)["config_path"]) == alt.resolve()
    wh = str(project / "data" / "warehouse.duckdb")
    assert main(["check", "--warehouse", wh, "--as-of", "2026-10-04"]) == 0  # the $1M budget does not fire


def test_finops_config_naming_a_missing_file_is_an_error(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FINOPS_CONFIG", str(tmp_path / "nope.yaml"))
    monkeypatch.chdir(project)
    assert main(["check", "--warehouse", str(project / "data" / "warehouse.duckdb")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "FINOPS_CONFIG" in err and "nope.yaml" in err, err


# -- 4. an interrupted re-run leaves the previous outputs and a true index ---------------------------------------

def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    full = {**os.environ, "PYTHONPATH": str(REPO), "FINOPS_QUIET": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "finops_kit.cli", *args], cwd=cwd, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _sleepy_notebook(path: Path) -> Path:
    import nbformat

    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("warehouse = 'data/warehouse.duckdb'")
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Sleepy"), params,
                  nbformat.v4.new_code_cell("import os, time\nif os.environ.get('MARK'):\n    open(os.environ['MARK'], 'w').close()\n"
                                            "time.sleep(float(os.environ.get('SLEEP_S', '0')))\n"
                                            "print('slept')")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


def _index_links_exist(out: Path) -> None:
    index = json.loads((out / "index.json").read_text())
    for e in index["reports"]:
        assert (out / e["html"]).is_file(), e
        if e.get("ipynb"):
            assert (out / e["ipynb"]).is_file(), e
    page = (out / "index.html").read_text()
    import re

    for href in re.findall(r'href="([^"]+)"', page):
        assert (out / href).is_file(), href


@pytest.mark.slow
def test_a_killed_rerun_leaves_the_previous_reports_and_a_true_index(project, monkeypatch):
    """A re-run killed with SIGTERM (Airflow's execution_timeout, timeout(1)) deleted each running report's
    .ipynb before it ran, while the index still listed it "ok" with a link to the missing file."""
    books = project / "books"
    books.mkdir()
    _sleepy_notebook(books / "sleepy.ipynb")
    args = ("report", "--all", "--notebooks-dir", "books", "--out", "out", "--jobs", "1")
    first = _cli(*args, cwd=project)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    out = project / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"sleepy.ipynb", "sleepy.html", "index.json", "index.html"} <= set(before)
    mark = project / "running"
    second = _cli(*args, cwd=project, env={"SLEEP_S": "60", "MARK": str(mark)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not mark.exists():
        time.sleep(0.2)
    assert mark.exists(), "the re-run's kernel never reached its cell"
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=60)
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == before  # the previous run's files, untouched
    _index_links_exist(out)
    third = _cli(*args, cwd=project)
    assert third.wait(timeout=300) == 0, third.stderr.read()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the dead run's temporary files are gone
    _index_links_exist(out)


def test_index_drops_links_to_files_that_are_gone(tmp_path):
    from finops_kit import report

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.html").write_text("<p>a</p>")
    entry = {"name": "a", "notebook": "a.ipynb", "title": "A", "status": "ok", "parameters": {}, "html": "a.html",
             "ipynb": "a.ipynb", "started": "2026-12-01T00:00:00Z", "duration_s": 1.0}
    (out / "index.json").write_text(json.dumps({"reports": [entry]}))
    report.write_index(out, [])
    [e] = json.loads((out / "index.json").read_text())["reports"]
    assert e["ipynb"] is None
    _index_links_exist(out)


# -- 5. SIGTERM during a first ingest leaves nothing behind, like Ctrl-C ----------------------------------------

def test_sigterm_during_a_first_ingest_leaves_no_folder(tmp_path):
    target = tmp_path / "new" / "w.duckdb"
    proc = _cli("ingest", str(REPO / "data" / "samples"), "--warehouse", str(target), "--no-progress", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not target.exists():
        time.sleep(0.02)
    assert target.exists(), "the ingest never created its warehouse"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    err = proc.stderr.read()
    assert rc == 143, (rc, err)
    assert not (tmp_path / "new").exists()
    assert "SIGTERM" in err and "writes nothing" in err and len(err.strip().splitlines()) == 1, err


# -- 6. a warehouse held by another process: a message naming the situation, and a retryable exit code -----------

def _hold(wh: str, *, write: bool) -> subprocess.Popen:
    code = (f"import finops_kit as fk, sys, time; con = fk.connect({wh!r}, quiet=True, "
            f"{'write=True' if write else 'read_only=True'}); print('open', flush=True); time.sleep(120)")
    p = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "open"
    return p


def test_a_notebook_holding_the_warehouse_blocks_ingest_with_exit_75_and_says_to_close_it(project, capsys):
    """A kernel that called fk.connect() made the nightly ingest exit 2 ("fix the job definition") with the advice
    to "open the warehouse read-only" -- given to the writer, which cannot."""
    wh = str(project / "data" / "warehouse.duckdb")
    holder = _hold(wh, write=False)
    try:
        rc = main(["ingest", str(next((REPO / "data" / "samples" / "gcp").glob("*_202511.jsonl.gz"))), "--warehouse", wh,
                   "--no-progress"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert rc == 75, err
    assert "\n" not in err and f"PID {holder.pid}" in err, err
    assert "read_only=True" not in err and "close" in err and "retry" in err, err


def test_a_reader_blocked_by_an_ingest_gets_exit_75(project, capsys):
    wh = str(project / "data" / "warehouse.duckdb")
    holder = _hold(wh, write=True)
    try:
        rc = main(["check", "--warehouse", wh])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip()
    assert rc == 75, err
    assert "\n" not in err and "retry" in err, err


# -- 8. a config typo stops report and metrics up front --------------------------------------------------------------

@pytest.mark.parametrize("typo", [("monthly: 1", "montly: 1", "budgets.items[0].montly"),
                                  ("monthly: 1", 'monthly: "500k"', "monthly"),
                                  ("  forecast: false", "  forcast: false", "alerts.forcast")])
def test_a_config_typo_is_exit_2_before_any_report_runs(project, monkeypatch, capsys, typo):
    """A typo in a section only the notebooks read became a failed report (exit 1, the others published), and
    `metrics` ignored it (exit 0)."""
    old, new, key = typo
    monkeypatch.chdir(project)
    (project / "finops.yaml").write_text(CONFIG.replace(old, new), encoding="utf-8")
    books = project / "books"
    books.mkdir()
    _sleepy_notebook(books / "sleepy.ipynb")
    wh = str(project / "data" / "warehouse.duckdb")
    assert main(["report", "--all", "--notebooks-dir", "books", "--warehouse", wh, "--out", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "finops.yaml" in err and key in err, err
    assert not (project / "out").exists()  # nothing ran, nothing was written
    assert main(["metrics", "--warehouse", wh]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "finops.yaml" in err and key in err, err


# -- 9. timeouts: positive numbers only ----------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--timeout-cell", "-1"), ("--timeout-cell", "0"),
                                         ("--timeout-notebook", "0"), ("--timeout-notebook", "nan"),
                                         ("--timeout-cell", "inf")])
def test_timeouts_must_be_positive_numbers(project, monkeypatch, capsys, flag, value):
    """`--timeout-cell -1` ran the suite twice and marked every report "timeout"; `--timeout-cell 0` was silently
    600 s."""
    monkeypatch.chdir(project)
    books = project / "books"
    books.mkdir()
    _sleepy_notebook(books / "sleepy.ipynb")
    rc = main(["report", "--all", "--notebooks-dir", "books", "--out", "out", flag, value])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "\n" not in err and flag in err and "positive" in err, err
    assert not (project / "out").exists()


# -- 10. an unwritable --out is found before any kernel runs ----------------------------------------------------------

def test_an_unwritable_out_folder_is_exit_2_before_any_kernel(project, monkeypatch, capsys):
    """An immutable --out was found only after the kernels had run (5.8 s for two reports, then exit 2).
    /proc is a folder nobody, not even root, can create files in."""
    from finops_kit import report

    ran = []
    monkeypatch.setattr(report, "run_jobs", lambda *a, **k: ran.append(1) or [])
    monkeypatch.chdir(project)
    books = project / "books"
    books.mkdir()
    _sleepy_notebook(books / "sleepy.ipynb")
    rc = main(["report", "--all", "--notebooks-dir", "books", "--out", "/proc"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not ran, err
    assert "\n" not in err and "--out /proc" in err and "writ" in err, err


# -- 3. each report's input fingerprint, and where it differs from "Data covered" ------------------------------------

@pytest.mark.slow
def test_each_report_records_the_data_it_read_and_the_index_flags_other_data(tmp_path, monkeypatch):
    """A report re-run after a new ingest listed the earlier reports under the new "Data covered" although they had
    read other data; an ingest between two kernels of one run went unseen."""
    from finops_kit import report

    monkeypatch.chdir(tmp_path)
    gcp = sorted((REPO / "data" / "samples" / "gcp").glob("*.jsonl.gz"))
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest([str(gcp[0])], warehouse=wh, progress=False)
    first = _sleepy_notebook(tmp_path / "first.ipynb")
    second = _sleepy_notebook(tmp_path / "second.ipynb")
    out = tmp_path / "out"
    jobs = report.plan([report.read_notebook_info(first)], {}, {}, wh, None)
    [r1] = report.run_jobs(jobs, out, timeout_cell=60, timeout_notebook=120)
    assert r1.status == "ok", r1.error
    before = report.data_coverage(wh)["input"]
    assert r1.input == {"sha256": before["sha256"], "files": 1}
    index = json.loads((out / "index.json").read_text())
    assert index["reports"][0]["input"]["sha256"] == index["coverage"]["input"]["sha256"]
    assert "other data" not in (out / "index.html").read_text()

    fk.ingest([str(gcp[1])], warehouse=wh, progress=False)  # new data, then only the second report is run
    jobs = report.plan([report.read_notebook_info(second)], {}, {}, wh, None)
    [r2] = report.run_jobs(jobs, out, timeout_cell=60, timeout_notebook=120)
    assert r2.input["files"] == 2 and r2.input["sha256"] != r1.input["sha256"]
    index = json.loads((out / "index.json").read_text())
    by_name = {e["name"]: e for e in index["reports"]}
    assert by_name["second"]["input"]["sha256"] == index["coverage"]["input"]["sha256"]
    assert by_name["first"]["input"]["sha256"] == before["sha256"]  # what it read, kept
    page = (out / "index.html").read_text()
    assert page.count('class="other-data"') == 1 and before["sha256"][:16] in page, page
    assert "1 read other data" in page and by_name["first"]["other_data"] and by_name["second"]["other_data"] is None


# -- 12. the README lists every environment variable and every flag ---------------------------------------------------

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_every_environment_variable_the_kit_reads_is_documented():
    import re

    read = set()
    for path in (REPO / "finops_kit").rglob("*.py"):
        read |= set(re.findall(r"FINOPS_[A-Z0-9_]+", path.read_text(encoding="utf-8")))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert read and {"FINOPS_CONFIG", "FINOPS_QUIET", "FINOPS_MEMORY_LIMIT"} <= read
    assert sorted(v for v in read if f"`{v}`" not in readme) == []


def test_every_flag_of_every_command_is_documented():
    import re

    from finops_kit.cli import COMMANDS, build_parser

    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    missing = []
    for command in COMMANDS:
        sub = build_parser(command)._subparsers._group_actions[0].choices[command]
        for action in sub._actions:
            missing += [f"{command} {o}" for o in action.option_strings
                        if o.startswith("--") and o != "--help" and not re.search(re.escape(o) + r"(?![\w-])", text)]
    assert missing == []


def test_the_readme_python_examples_print_what_the_readme_shows(sample_warehouse, monkeypatch):
    """The five one-line questions of the README, run on the committed samples (as `make demo` builds them), print
    exactly the tables shown under them (they had drifted: 65,456 rows, a different top-5, other team figures)."""
    import re

    from finops_kit import warehouse

    monkeypatch.setenv("FINOPS_WAREHOUSE", sample_warehouse)
    monkeypatch.setenv("FINOPS_QUIET", "1")
    monkeypatch.delenv("FINOPS_CONFIG", raising=False)
    monkeypatch.chdir(REPO)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pairs = re.findall(r"```python\n(fk\.(?:costs|change)\(.*?)\s+# \d\..*?\n```\n```text\n([^`]*)```", readme)
    assert len(pairs) == 5
    monkeypatch.setitem(warehouse._DEFAULT, "con", None)
    try:
        for expr, shown in pairs:
            assert repr(eval(expr, {"fk": fk})) + "\n" == shown, expr  # noqa: S307 - the README's own code
        con = warehouse._DEFAULT["con"]
        assert f"{fk.info(con).rows:,} FOCUS rows" in readme
    finally:
        if warehouse._DEFAULT["con"] is not None:
            warehouse._DEFAULT["con"].close()
