"""Session 15: the report index's "html missing" entry says how to get the page back with a command that works --
the notebook, its ``-p`` parameters quoted for a shell (credentials redacted), ``--out`` relative. Before, it said
"re-run report forecast_vs_actual__providers-AWS-c7b0036d__as_of-2026-11-26 into this folder": the report's name,
not a notebook, so running it gave "no such notebook" (exit 2) for every run with parameters. Each test failed on
the code before its fix."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.testing import focus_rows


def _entries(out: Path) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads((out / "index.json").read_text(encoding="utf-8"))["reports"]}


def _command(entry: dict) -> str:
    """The ``finops-kit report ...`` command of an entry's message, up to the parenthesis after it."""
    error = entry["error"]
    assert "finops-kit report " in error, error
    return error[error.index("finops-kit report "):].rsplit(" (its executed notebook", 1)[0]


def test_html_missing_entry_gives_the_notebook_and_parameters_and_the_command_works(tmp_path, monkeypatch):
    """The reviewer's case on a tiny notebook: render it with -p, delete its .html, render another report into the
    folder; the entry's command, run as printed (from the project folder), renders the same report again."""
    import nbformat

    monkeypatch.chdir(tmp_path)  # the project folder: where the command runs, what its paths are relative to
    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows([dict(cost="100", day="2026-10-03"), dict(cost="50", day="2026-11-02", ProviderName="Google Cloud")],
               con)
    con.close()
    config = tmp_path / "finops.yaml"
    config.write_text("budgets:\n  items:\n    - {name: Everything, monthly: 1000}\n", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('providers = ["AWS", "Google Cloud"]\nlabel = "all"\nwarehouse = ""\n'
                                       'config_path = ""')
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell("print(label)")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(tmp_path / "notebooks" / "tiny.ipynb"))
    common = ["--warehouse", "wh.duckdb", "--config", "finops.yaml", "--out", "reports/2026-11", "--jobs", "1"]
    assert main(["report", "tiny", "-p", 'providers=["AWS"]', "-p", "label=Q4 & 'more'", *common]) == 0
    out = tmp_path / "reports" / "2026-11"
    [name] = _entries(out)
    assert name.startswith("tiny__providers-AWS-")
    (out / f"{name}.html").unlink()
    assert main(["report", "tiny", *common]) == 0  # another report into the same folder
    entry = _entries(out)[name]
    assert entry["status"] == "html missing"
    command = _command(entry)
    assert command == ("finops-kit report tiny -p providers='[\"AWS\"]' -p label='Q4 & '\"'\"'more'\"'\"'' "
                       "--warehouse wh.duckdb --config finops.yaml --out reports/2026-11"), command
    assert entry["error"].startswith(f"html missing: {name}.html is gone; re-run report tiny with its parameters")
    assert str(tmp_path) not in entry["error"]
    words = shlex.split(command)
    assert words[:2] == ["finops-kit", "report"]
    assert main(words[1:]) == 0  # the command as printed: the same report, the page back, the entry 'ok' again
    assert (out / f"{name}.html").is_file()
    by = _entries(out)
    assert set(by) == {name, "tiny"} and by[name]["status"] == "ok" and by[name]["error"] is None


def test_rerun_command_passes_the_name_parameters_only_redacted_and_a_foreign_notebook_by_path(tmp_path, monkeypatch):
    """A default from the config is in ``parameters`` but not in the name (passing it would name another report);
    a credential in a value reads [redacted]; a notebook outside notebooks/ is named by its path."""
    from finops_kit import report

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    name = "usage__source-https-redacted-example.com-x-5d1e8a0c__top_n-5"
    entry = {"name": name, "notebook": "books/usage.ipynb", "title": "Usage", "status": "ok",
             "parameters": {"providers": ["AWS"], "source": "https://[redacted]@example.com/x", "top_n": 5,
                            "warehouse": "data/warehouse.duckdb"},
             "html": f"{name}.html", "ipynb": f"{name}.ipynb", "started": "2026-12-01T00:00:00Z", "duration_s": 1.0,
             "error": None}
    (out / "index.json").write_text(json.dumps({"reports": [entry]}), encoding="utf-8")
    (out / f"{name}.ipynb").write_text("{}")
    report.write_index(out, [], secrets=["hunter2secret"])
    [kept] = json.loads((out / "index.json").read_text(encoding="utf-8"))["reports"]
    assert _command(kept) == ("finops-kit report books/usage.ipynb -p source='https://[redacted]@example.com/x' "
                              "-p top_n=5 --warehouse data/warehouse.duckdb --out out"), kept["error"]
    assert "providers" not in _command(kept)
