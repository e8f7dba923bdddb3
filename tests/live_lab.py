"""Drive a real JupyterLab with headless Debian chromium (playwright) and every external request blocked.

``lab_server(root)`` starts ``python -m jupyterlab`` on 127.0.0.1 (the kernels are the test environment's
python, as for a user of the project's .venv) with its own settings, runtime and workspace folders, and
``run_notebook(page, base, path)`` opens a notebook, runs all cells through the app's own command and returns a
:class:`LiveReport` of what a user would see: error outputs, charts drawn, widgets rendered, whether changing an
explorer's control changed its output, math rendered from ``$`` signs, requests that tried to leave the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: JupyterLab settings for the run: every cell in the DOM (no windowing), no news or update checks.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


@dataclass
class LiveReport:
    notebook: str
    seconds: float = 0.0
    cells: int = 0
    errors: list[str] = field(default_factory=list)
    charts: int = 0
    charts_drawn: int = 0
    chart_errors: list[str] = field(default_factory=list)
    widgets: int = 0
    widget_errors: list[str] = field(default_factory=list)
    explorers: int = 0
    explorer_changed: bool | None = None
    math: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, tmp: Path, timeout: float = 90) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving ``root``; yields its base URL with the token."""
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp / "lab-settings"
    for name, value in SETTINGS.items():
        plugin, file = name.rsplit("/", 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True)
        (settings / plugin / file).write_text(json.dumps(value))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jcfg"), "JUPYTER_RUNTIME_DIR": str(tmp / "jrt"),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("FINOPS_REPORT", None)
    log = open(tmp / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'ws'}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--ServerApp.disable_check_xsrf=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: "
                                       + (tmp / "jupyterlab.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield f"{base}|{token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_WAIT_APP = """(path) => {
  const app = window.jupyterapp;
  const w = app && app.shell && app.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.sessionContext || !w.content || !w.content.model) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && w.context.isReady;
}"""

_RUN_ALL = """async () => {
  const w = window.jupyterapp.shell.currentWidget;
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
  return w.content.model.cells.length;
}"""

_DONE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session.kernel;
  const cells = Array.from(w.content.model.cells).filter(c => c.type === 'code' && c.sharedModel.source.trim());
  return k.status === 'idle' && cells.every(c => c.executionCount !== null);
}"""

_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const node = w.node;
  const errors = [];
  let expected = 0;
  for (const c of w.content.model.cells) {
    if (c.type !== 'code') continue;
    for (const o of c.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
      const h = o.data && o.data['text/html'];
      const text = Array.isArray(h) ? h.join('') : (h || '');
      expected += (text.match(/class="finops-chart/g) || []).length;
    }
  }
  const charts = Array.from(node.querySelectorAll('.finops-chart'));
  const drawn = charts.filter(c => {
    const svg = c.querySelector('svg');
    return (svg && svg.querySelector('.mark-rect, .mark-area, .mark-line, .mark-symbol, .mark-arc, .mark-rule, '
                                     + '.mark-text, .mark-group')) || (c.querySelector('canvas') || {}).width > 0;
  });
  const widgetErrors = Array.from(node.querySelectorAll('.jp-RenderedText, .jupyter-widgets'))
      .map(e => e.textContent).filter(t => /Error displaying widget|model not found/i.test(t));
  return {expected, charts: charts.length, drawn: drawn.length, errors,
          chartErrors: Array.from(node.querySelectorAll('.finops-chart[data-error]')).map(e => e.textContent),
          widgets: node.querySelectorAll('.jupyter-widgets').length, widgetErrors,
          explorers: node.querySelectorAll('.widget-vbox .widget-output').length,
          math: Array.from(node.querySelectorAll('mjx-container, .MathJax, .MathJax_Display'))
                .map(e => (e.closest('.jp-OutputArea-output, .jp-MarkdownOutput') || e).textContent.slice(0, 80))};
}"""

def change_explorer(page, timeout_ms: int = 120000) -> bool | None:
    """Change a control of the first explorer (an ipywidgets box holding an Output) as a user would -- pick the
    next dropdown option, or type a new value into an integer slider's readout -- and report whether the
    explorer's output changed (None: no explorer with such a control)."""
    boxes = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-vbox:has(.widget-output)")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        out = box.locator(".widget-output").first
        before = out.inner_html()
        select = box.locator(".widget-dropdown select")
        readouts = box.locator(".widget-readout[contenteditable=true]")
        if select.count() and select.first.locator("option").count() >= 2:
            sel = select.first
            current = sel.evaluate("e => e.selectedIndex")
            sel.select_option(index=(current + 1) % sel.locator("option").count())
        elif readouts.count():
            ro = next((readouts.nth(j) for j in range(readouts.count())
                       if readouts.nth(j).inner_text().strip().isdigit()), None)
            if ro is None:
                continue
            ro.click()
            ro.fill(str(int(ro.inner_text().strip()) + 1))
            ro.press("Enter")
        else:
            continue
        try:
            page.wait_for_function("([el, before]) => el.innerHTML !== before && el.innerHTML.length > 0",
                                   arg=[out.element_handle(), before], timeout=timeout_ms, polling=200)
        except Exception:
            return False
        return True
    return None


_CLOSE = """async (keep) => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!keep) await w.sessionContext.shutdown();
  w.context.model.dirty = false;
  w.dispose();
}"""


def run_notebook(page, base: str, relpath: str, timeout_s: float = 300, screenshot: Path | None = None,
                 keep_kernel: bool = False) -> LiveReport:
    """Open ``relpath`` in JupyterLab, run all cells, wait for charts, change an explorer; report (no asserts).
    The notebook is closed afterwards; its kernel is shut down unless ``keep_kernel``."""
    url, token = base.split("|")
    rep = LiveReport(relpath)
    t0 = time.monotonic()
    page.goto(f"{url}/lab/tree/{relpath}?token={token}", wait_until="domcontentloaded",
              timeout=int(timeout_s * 1000))
    page.wait_for_function(_WAIT_APP, arg=relpath, timeout=int(timeout_s * 1000), polling=250)
    rep.cells = page.evaluate(_RUN_ALL)
    page.wait_for_function(_DONE, timeout=int(timeout_s * 1000), polling=250)
    with contextlib.suppress(Exception):  # charts draw asynchronously; the state below says which did not
        page.wait_for_function(
            "() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.finops-chart'))"
            ".every(c => c.querySelector('svg, canvas') || c.hasAttribute('data-error'))", timeout=30000)
    page.wait_for_timeout(500)  # MathJax typesets lazily
    st = page.evaluate(_STATE)
    rep.errors, rep.chart_errors, rep.math = st["errors"], st["chartErrors"], st["math"]
    rep.charts = max(st["charts"], st["expected"])
    rep.charts_drawn = st["drawn"]
    rep.widgets, rep.widget_errors, rep.explorers = st["widgets"], st["widgetErrors"], st["explorers"]
    if rep.explorers:
        rep.explorer_changed = change_explorer(page)
    rep.seconds = time.monotonic() - t0
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=False)
    page.evaluate(_CLOSE, keep_kernel)
    return rep


def problems(rep: LiveReport) -> list[str]:
    """What is wrong with a notebook run, in words (empty: it works as a user expects)."""
    out = []
    if rep.errors:
        out.append(f"error outputs: {rep.errors[:3]}")
    if rep.charts == 0:
        out.append("no chart")
    if rep.charts_drawn != rep.charts:
        out.append(f"only {rep.charts_drawn} of {rep.charts} charts drawn {rep.chart_errors[:2]}")
    if rep.widget_errors:
        out.append(f"widget errors: {rep.widget_errors[:2]}")
    if rep.explorers and rep.explorer_changed is not True:
        out.append(f"changing an explorer's control did not update its output ({rep.explorer_changed})")
    if rep.math:
        out.append(f"$...$ rendered as math: {rep.math[:3]}")
    return out
