"""Open an offline report in headless Debian chromium with the network blocked and check that it really works.

``check_report(path, screenshot=...)`` returns a :class:`BrowserReport` and raises ``AssertionError`` with a
precise message when: a request to anything but ``file:``/``data:`` was attempted, a page error or console
error occurred, a chart has no drawn marks, a stored widget view was not rendered, (when the page has a
bound input) changing that input does not change its chart, the page shows an absolute local path (visible text
with every code cell opened, links and sources), the "Show all code" button does not open the folded code, or
the file is over 2 MB while it embeds no widget.

It also measures the first screen for the caller to assert on: where the first headline figure of the summary
block ends at 1440x900, and which output areas (tables) need sideways scrolling at 1280 px.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/lib/chromium-browser/chromium-browser")
#: Size a report may have when it embeds no widget (issue 17: the widget manager is half of a 3.6 MB page).
MAX_BYTES_WITHOUT_WIDGETS = 2_000_000
INSTALL_HINT = ("no chromium binary: install Debian's 'chromium' package (sudo apt-get install chromium, as .ci/run "
                "does) or set FINOPS_CHROMIUM to the browser executable")
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
    page_bytes: int = 0
    absolute_paths: list[str] = field(default_factory=list)
    folded_code_cells: int = 0
    code_shown_after_toggle: int | None = None
    first_headline_bottom: float | None = None   # px from the top of the page at 1440x900; None: no summary block
    scrolling_outputs: list[str] = field(default_factory=list)  # at 1280 px: output areas wider than the page
    page_scroll_width: int = 0


def absolute_paths(text: str) -> list[str]:
    """'/<a top-level folder of this machine>/...' in ``text``, not inside a URL or a relative path."""
    tops = "|".join(re.escape(d) for d in sorted(os.listdir("/")) if os.path.isdir(os.path.join("/", d)))
    return re.findall(rf"(?<![\w.:/~-])/(?:{tops})/[^\s\"'<>]*", text)


_JS_FIRST_SCREEN = """() => {
  const fig = document.querySelector('.finops-summary .finops-figure-value, .finops-summary .finops-figure');
  const headline = fig ? fig.getBoundingClientRect().bottom + window.scrollY : null;
  return {headline: headline};
}"""

_JS_OVERFLOW = """() => {
  const wide = [];
  document.querySelectorAll('.jp-OutputArea-output, .jp-RenderedHTMLCommon table').forEach(el => {
    if (el.closest('details:not([open])')) return;          // wide detail folded away is allowed
    if (el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > window.innerWidth + 1) {
      const t = el.querySelector('caption, th');
      wide.push((t ? t.textContent : el.textContent).trim().slice(0, 60) + ' (' + el.scrollWidth + ' px)');
    }
  });
  return {wide: wide, scrollWidth: document.documentElement.scrollWidth};
}"""

_JS_VISIBLE_CODE = """() => Array.from(document.querySelectorAll('details.finops-code .jp-InputArea'))
    .filter(e => e.checkVisibility()).length"""

_JS_TEXT_AND_LINKS = """() => document.body.innerText + '\\n' + Array.from(document.querySelectorAll('[href], [src]'))
    .map(e => (e.getAttribute('href') || '') + ' ' + (e.getAttribute('src') || '')).join('\\n')"""


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
        raise RuntimeError(INSTALL_HINT)
    rep = BrowserReport(page_bytes=Path(path).stat().st_size)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})

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
            rep.first_headline_bottom = page.evaluate(_JS_FIRST_SCREEN)["headline"]
            if screenshot is not None:  # the first screen a reader sees, at 1440x900, code folded
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                rep.screenshot = str(screenshot)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.wait_for_timeout(200)
            state = page.evaluate(_JS_STATE)
            wide = page.evaluate(_JS_OVERFLOW)
            rep.scrolling_outputs, rep.page_scroll_width = wide["wide"], wide["scrollWidth"]
            rep.folded_code_cells = page.evaluate("() => document.querySelectorAll('details.finops-code').length")
            if rep.folded_code_cells:
                hidden_before = page.evaluate(_JS_VISIBLE_CODE)
                page.click(".finops-code-toggle")
                rep.code_shown_after_toggle = page.evaluate(_JS_VISIBLE_CODE) if hidden_before == 0 else -1
            rep.absolute_paths = absolute_paths(page.evaluate(_JS_TEXT_AND_LINKS))
            rep.charts, rep.charts_with_marks = state["charts"], state["withMarks"]
            rep.widget_views, rep.widgets_rendered = state["views"], state["rendered"]
            rep.bound_inputs, rep.live_only_notes = state["binds"], state["notes"]
            if rep.bound_inputs:
                rep.bound_input_changed_chart = _change_bound_input(page)
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
    if rep.absolute_paths:
        problems.append(f"absolute local paths in the page: {rep.absolute_paths[:3]}")
    if rep.folded_code_cells and rep.code_shown_after_toggle != rep.folded_code_cells:
        problems.append(f"'Show all code' showed {rep.code_shown_after_toggle} of {rep.folded_code_cells} folded code "
                        "cells (-1: code was visible before the click)")
    if rep.widget_views == 0 and rep.page_bytes > MAX_BYTES_WITHOUT_WIDGETS:
        problems.append(f"{rep.page_bytes:,} bytes without any widget (limit {MAX_BYTES_WITHOUT_WIDGETS:,})")
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


def ensure_chromium() -> int:
    """``python tests/browser_check.py --ensure`` (``make test``): install Debian's chromium when it is missing.

    As root (or with passwordless sudo) on a Debian-like system: ``apt-get install chromium``, as ``.ci/run``
    does. Otherwise, or when that fails: one line saying how to get it, exit 1 (the rule of java_check.py).
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from java_check import ensure_debian_package

    return ensure_debian_package("chromium", "the browser tests", lambda: chromium_path() is not None, INSTALL_HINT)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--ensure"]:
        print("usage: python tests/browser_check.py --ensure", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure_chromium())
