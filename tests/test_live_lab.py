"""Issue 21's proof: the curated notebooks in a live JupyterLab with no network.

JupyterLab is started on 127.0.0.1 with the kernels of this environment, over a copy of the project whose warehouse
holds the sample data; headless chromium opens each curated notebook, runs all cells with every request that is
not to 127.0.0.1 aborted (and recorded), and the test asserts: no error output, every chart drawn (the kit's own
Vega bundle, no CDN), every explorer rendered and a changed control updates its output, no ``$...$`` rendered as
math -- while a scratch kernel of the same project holds ``fk.connect()``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_check import CHROMIUM_ARGS, chromium_path  # noqa: E402
from live_lab import lab_server, problems, run_notebook  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None, reason="no chromium binary (Debian package 'chromium')"),
]


def make_project(root: Path, warehouse: Path) -> Path:
    """A project as `make demo` leaves it: the repo's files (linked), its own data/warehouse.duckdb, the
    notebooks, and a user's scratch notebook."""
    root.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.name in ("data", "notebooks", "reports") or item.name.startswith("."):
            continue
        (root / item.name).symlink_to(item)
    (root / "data").mkdir()
    for item in (REPO / "data").iterdir():
        if not item.name.endswith((".duckdb", ".wal")) and item.name != "cache":
            (root / "data" / item.name).symlink_to(item)
    shutil.copyfile(warehouse, root / "data" / "warehouse.duckdb")
    (root / "notebooks").mkdir()
    for nb in REPO.glob("notebooks/*.ipynb"):
        shutil.copyfile(nb, root / "notebooks" / nb.name)
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in SCRATCH])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(root / "notebooks" / "scratch.ipynb"))
    return root


def curated() -> list[str]:
    """Every curated notebook (notebooks/*.ipynb, as finops-kit report --all lists them)."""
    return sorted(p.stem for p in REPO.glob("notebooks/*.ipynb") if not p.name.startswith(("_", ".")))


#: A user's scratch notebook in notebooks/: the README's Python section, run live (its kernel stays up, holding
#: the default connection, while the curated notebooks run)
SCRATCH = [
    "import finops_kit as fk\ncon = fk.connect()",
    'fk.costs(by="team", period="last closed", gpu_only=True)',
    'fk.change(by="service").head(5)',
    "fk.explore()",
]


@pytest.mark.timeout(1500)  # ~3 min on an idle 2-core machine; several times that while other suites run
def test_curated_notebooks_run_live_in_jupyterlab_offline(sample_warehouse, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    import finops_kit as fk

    root = make_project(tmp_path / "proj", Path(sample_warehouse))
    monkeypatch.chdir(root / "notebooks")
    monkeypatch.delenv("FINOPS_WAREHOUSE", raising=False)
    scratch = fk.connect(quiet=True)  # a scratch kernel holding the default connection the whole time
    blocked: list[str] = []
    reports = []
    t0 = time.monotonic()
    try:
        with lab_server(root, tmp_path) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                origin = base.split("|")[0]

                def route(r):
                    if r.request.url.startswith((origin, "data:", "blob:")):
                        r.continue_()
                    else:
                        blocked.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                reports.append(run_notebook(page, base, "notebooks/scratch.ipynb", keep_kernel=True,
                                            screenshot=tmp_path / "scratch.png"))
                for name in curated():
                    reports.append(run_notebook(page, base, f"notebooks/{name}.ipynb",
                                                screenshot=tmp_path / f"{name}.png"))
            finally:
                browser.close()
    finally:
        scratch.close()
    total = time.monotonic() - t0
    summary = "; ".join(f"{r.notebook}: {r.seconds:.0f}s, {r.charts_drawn}/{r.charts} charts, {r.widgets} widgets, "
                        f"explorer changed={r.explorer_changed}" for r in reports)
    print(f"live JupyterLab, {total:.0f}s: {summary}")
    bad = {r.notebook: problems(r) for r in reports if problems(r)}
    assert reports[0].explorers >= 1, "fk.explore() in the scratch notebook rendered no explorer"
    assert not bad, bad
    assert not blocked, f"requests that tried to leave the machine: {sorted(set(blocked))[:10]}"
    assert not (root / "notebooks" / "data").exists()  # nobody created an empty warehouse next to the notebooks
