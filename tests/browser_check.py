"""Open an offline report in headless Debian chromium with the network blocked and check that it really works.

``check_report(path, screenshot=...)`` returns a :class:`BrowserReport` and raises ``AssertionError`` with a
precise message when: a request to anything but ``file:``/``data:`` was attempted, a page error or console
error occurred, a chart has no drawn marks, a stored widget view was not rendered, or (when the page has a
bound input) changing that input does not change its chart.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium_path() -> str | None:
    """The real chromium binary (not Debian's /usr/bin/chromium wrapper script), or None."""
    env = os.environ.get("FINOPS_CHROMIUM")
    for cand in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and not found.startswith("/usr/bin/") else None


@dataclass
class BrowserReport:
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    charts: int = 0
    charts_with_marks: int = 0
    widget_views: int = 0
    widgets_rendered: int = 0
    bound_inputs: int = 0
    bound_input_changed_chart: bool | None = None
    live_only_notes: int = 0
    screenshot: str | None = None


_JS_STATE = """() => {
  const charts = Array.from(document.querySelectorAll('.finops-chart'));
  const withMarks = charts.filter(c => {
    const svg = c.querySelector('svg');
    if (svg && svg.querySelectorAll('path, rect, line, circle, text, symbol').length > 0 &&
        svg.querySelector('.mark-rect, .mark-area, .mark-line, .mark-symbol, .mark-arc, .mark-rule, .mark-text'))
      return true;
    const canvas = c.querySelector('canvas');
    return !!canvas && canvas.width > 0;
  });
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  const rendered = document.querySelectorAll('.widget-inline-hbox, .jupyter-widgets.widget-container, '
      + '.widget-slider, .widget-text, .widget-dropdown, .lm-Widget.jupyter-widgets').length;
  return {charts: charts.length, withMarks: withMarks.length, views: views, rendered: rendered,
          binds: document.querySelectorAll('.vega-bind select, .vega-bind input').length,
          notes: document.querySelectorAll('.finops-live-only').length,
          errors: Array.from(document.querySelectorAll('.finops-chart[data-error]')).map(e => e.textContent)};
}"""


def check_report(path: Path, screenshot: Path | None = None, timeout_ms: int = 30000,
                 expect_charts: bool = True) -> BrowserReport:
    """Render ``path`` in chromium with every non-file/data request aborted; assert it works (see module doc)."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no chromium binary")
    rep = BrowserReport()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def route(r):
                url = r.request.url
                if url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    rep.blocked.append(url)
                    r.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda e: rep.page_errors.append(str(e)))
            page.on("console", lambda m: rep.console_errors.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: None if r.url.startswith(("file:", "data:")) or r.url in rep.blocked
                    else rep.blocked.append(r.url))
            page.goto(Path(path).resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            # wait until every chart has drawn (vegaEmbed is async) and the widget manager has run
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll('.finops-chart'))
                          .every(c => c.querySelector('svg, canvas') || c.hasAttribute('data-error'))""",
                timeout=timeout_ms)
            views = page.evaluate(
                "() => document.querySelectorAll('script[type=\"application/vnd.jupyter.widget-view+json\"]').length")
            if views:
                page.wait_for_function(
                    "() => document.querySelectorAll('.jupyter-widgets.widget-inline-hbox, "
                    ".jupyter-widgets.widget-container, .lm-Widget.jupyter-widgets').length > 0",
                    timeout=timeout_ms)
            state = page.evaluate(_JS_STATE)
            rep.charts, rep.charts_with_marks = state["charts"], state["withMarks"]
            rep.widget_views, rep.widgets_rendered = state["views"], state["rendered"]
            rep.bound_inputs, rep.live_only_notes = state["binds"], state["notes"]
            if rep.bound_inputs:
                rep.bound_input_changed_chart = _change_bound_input(page)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
                rep.screenshot = str(screenshot)
            chart_errors = state["errors"]
        finally:
            browser.close()
    problems = []
    if rep.blocked:
        problems.append(f"external requests attempted: {rep.blocked[:5]}")
    if rep.page_errors:
        problems.append(f"page errors: {rep.page_errors[:5]}")
    if chart_errors:
        problems.append(f"chart errors: {chart_errors[:3]}")
    if expect_charts and rep.charts == 0:
        problems.append("no charts in the page")
    if rep.charts_with_marks != rep.charts:
        problems.append(f"only {rep.charts_with_marks} of {rep.charts} charts have drawn marks")
    if rep.widget_views and rep.widgets_rendered == 0:
        problems.append(f"{rep.widget_views} widget view(s) stored but none rendered")
    if rep.bound_inputs and not rep.bound_input_changed_chart:
        problems.append("changing a bound input did not change its chart")
    assert not problems, f"{path}: " + "; ".join(problems)
    return rep


def _change_bound_input(page) -> bool:
    """Change the first bound <select> (or range input) and report whether its chart's SVG changed."""
    return bool(page.evaluate("""async () => {
      const el = document.querySelector('.vega-bind select, .vega-bind input[type=range]');
      if (!el) return false;
      const chart = el.closest('.finops-chart') || el.closest('.vega-embed') || document;
      const svg = () => (chart.querySelector('svg') || {outerHTML: ''}).outerHTML;
      const before = svg();
      if (el.tagName === 'SELECT') {
        if (el.options.length < 2) return false;
        el.selectedIndex = (el.selectedIndex + 1) % el.options.length;
      } else {
        el.value = String(Number(el.min) + (Number(el.max) - Number(el.min)) / 2 + 1);
      }
      el.dispatchEvent(new Event('change', {bubbles: true}));
      el.dispatchEvent(new Event('input', {bubbles: true}));
      await new Promise(r => setTimeout(r, 400));
      return svg() !== before;
    }"""))
