"""Real-browser checks of the offline reports (Debian chromium via the playwright package, network blocked).

Each report is opened from file:// with every request that is not file:/data: aborted and recorded, and must
show: no attempted external request, no page error, drawn marks in every chart, rendered widgets, and a bound
input that changes its chart; no absolute local path in the page; the "Show all code" button opens the folded
code; at most 2 MB when no widget is embedded. A screenshot of the first screen (1440x900) is saved under the
test's tmp output. Without a chromium binary the tests skip with the install hint, except under CI (``CI`` set, as
``.ci/run`` does), where they fail: a browser check never skips silently in CI.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from finops_kit import report

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_check import INSTALL_HINT, MAX_BYTES_WITHOUT_WIDGETS, check_report, chromium_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE_NB = Path(__file__).resolve().parent / "fixtures" / "notebooks" / "report_smoke.ipynb"
#: every curated notebook (new ones are checked as soon as they land in notebooks/)
CURATED = tuple(p.stem for p in report.discover(REPO / "notebooks"))

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="session", autouse=True)
def _chromium() -> None:
    """Skip with the install hint on a developer machine without chromium; fail under CI."""
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {INSTALL_HINT}", pytrace=False)
        pytest.skip(INSTALL_HINT)


def _run(paths: list[Path], warehouse: Path, out: Path, config: Path | None = None) -> dict[str, report.ReportResult]:
    infos = [report.read_notebook_info(p) for p in paths]
    jobs = report.plan(infos, {}, {}, str(warehouse.resolve()), str(config.resolve()) if config else None)
    results = report.run_jobs(jobs, out, timeout_cell=300, timeout_notebook=900)
    return {Path(r.notebook).stem: r for r in results}


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory) -> Path:
    import finops_kit as fk
    from finops_kit.testing import focus_rows

    root = tmp_path_factory.mktemp("browser-smoke")
    wh = root / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows([
        dict(cost="10.50", day="2026-09-03", tags={"team": "vision"}),
        dict(cost="20.25", day="2026-10-03", tags={"team": "<script>alert(1)</script>"}, ProviderName="Google Cloud"),
        dict(cost="5", day="2026-10-04", tags={"team": '"><img src=x onerror=alert(1)>'}, ProviderName="Microsoft"),
        dict(cost="7", day="2026-10-05", tags={"team": "vision"}),
    ], con)
    con.close()
    results = _run([FIXTURE_NB], wh, root / "out")
    r = results["report_smoke"]
    assert r.status == "ok", r.error
    return root / "out" / r.html


def test_fixture_report_works_offline_in_chromium(smoke_report, tmp_path):
    rep = check_report(smoke_report, screenshot=tmp_path / "report_smoke.png")
    assert rep.charts == 2 and rep.charts_with_marks == 2
    assert rep.widget_views >= 1 and rep.widgets_rendered >= 2  # jslink'd slider + text
    assert rep.bound_inputs >= 1 and rep.bound_input_changed_chart
    assert rep.live_only_notes == 1
    assert Path(rep.screenshot).stat().st_size > 10_000
    assert rep.folded_code_cells >= 5 and rep.code_shown_after_toggle == rep.folded_code_cells
    assert rep.absolute_paths == []


def test_hostile_tag_values_do_not_execute(smoke_report):
    """The XSS payloads in tag values are shown as text: no alert dialog, no injected <img>."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
                       else r.abort())
            page.goto(smoke_report.as_uri(), wait_until="load")
            page.wait_for_function("() => document.querySelectorAll('.finops-chart svg.marks').length === 2")
            page.hover(".finops-chart svg .mark-rect path")  # a tooltip over a bar
            page.wait_for_timeout(300)
            assert dialogs == []
            assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
            assert page.get_by_text("<script>alert(1)</script>").count() >= 1
        finally:
            browser.close()


# -- the curated notebooks over a warehouse built from the sample exports --------------------------------------

# ``curated_reports`` (conftest): every curated notebook rendered once per test run, for the consistency tests' scope


@pytest.mark.parametrize("name", CURATED)
def test_curated_report_works_offline_in_chromium(name, curated_reports, tmp_path):
    out, results = curated_reports
    r = results[name]
    assert r.status == "ok", f"{name}: {r.error}"
    rep = check_report(out / r.html, screenshot=tmp_path / f"{name}.png")
    assert rep.charts >= 1 and rep.charts_with_marks == rep.charts
    assert rep.absolute_paths == [] and rep.folded_code_cells > 0
    assert rep.code_shown_after_toggle == rep.folded_code_cells  # "Show all code" opens every folded cell
    if rep.widget_views == 0:
        assert rep.page_bytes <= MAX_BYTES_WITHOUT_WIDGETS, f"{name}: {rep.page_bytes:,} bytes"
    print(f"{name}: {rep.page_bytes / 1e6:.2f} MB, headline bottom {rep.first_headline_bottom} px at 1440x900, "
          f"page width {rep.page_scroll_width} px at 1280, wide outputs {rep.scrolling_outputs[:3]}")
    shutil.copy(out / r.html, tmp_path / r.html)  # keep the page beside its screenshot for inspection


def _opens_with_summary(name: str) -> bool:
    """Whether the notebook shows the package-computed summary block (issue 17 item 1, finops_kit.summary)."""
    import nbformat

    book = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
    return any(c.cell_type == "code" and "summarize(" in c.source for c in book.cells)


@pytest.mark.parametrize("name", CURATED)
def test_curated_report_first_screen(name, curated_reports, tmp_path):
    """The answer on the first screen: the first headline figure ends within 900 px at 1440x900, and no output
    (table) needs sideways scrolling at 1280 px (wide detail folded into a closed <details> is allowed).

    Binding for every notebook that shows the summary block (calls ``summarize(``); a notebook not reworked yet is
    reported as xfail (not checked), and the check binds as soon as the notebook shows the block."""
    out, results = curated_reports
    r = results[name]
    assert r.status == "ok", f"{name}: {r.error}"
    if not _opens_with_summary(name):
        pytest.xfail(f"{name} does not show the summary block yet (issue 17 items 1 and 3)")
    rep = check_report(out / r.html, screenshot=tmp_path / f"{name}-first-screen.png")
    assert rep.first_headline_bottom is not None, f"{name}: no .finops-summary figure in the page"
    assert rep.first_headline_bottom <= 900, f"{name}: first headline figure ends at {rep.first_headline_bottom} px"
    assert rep.page_scroll_width <= 1280, f"{name}: the page is {rep.page_scroll_width} px wide at 1280"
    assert rep.scrolling_outputs == [], f"{name}: sideways scrolling at 1280 px: {rep.scrolling_outputs[:3]}"
