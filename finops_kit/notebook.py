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
``live_only(widget, static=None, note=None)``, ``money(value, currency=SCOPE_CURRENCY)``, ``LIVE_ONLY_NOTE``.
Money is shown in the currency of the scope resolved by :func:`scope` (USD until then).

Why two renderers: in a report run (``finops-kit report`` sets ``FINOPS_REPORT=1`` for its kernels) each
Altair chart is emitted as a ``<div>`` plus a small ``vegaEmbed`` call; the Vega/Vega-Lite/vega-embed bundle is
put into the page ONCE by the kit's nbconvert template, so the HTML works offline and stays small. Live in
JupyterLab, Altair's default renderer is used (JupyterLab ships Vega), so the notebook behaves normally.

Safety: every value shown by ``header`` and ``table`` goes through ``html.escape``; chart specs embedded in
the page have ``</`` escaped so a data value cannot close the ``<script>`` element.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
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
_PATH_SUFFIXES = ("_path", "_file", "_dir")


def resolve_project_paths(namespace: dict[str, Any], start: Path | None = None) -> None:
    """Make relative file parameters work when the notebook is opened live from ``notebooks/``.

    Reports run with the project root as working directory, where ``data/warehouse.duckdb`` resolves. JupyterLab
    starts the kernel in the notebook's folder instead; a relative path that does not exist there is looked up in
    the parent folders (up to the project root, marked by ``finops.yaml`` or ``pyproject.toml``) and replaced by
    the absolute path found. Paths that exist as given, absolute paths and empty values are left alone.
    """
    here = (start or Path.cwd()).resolve()
    candidates = [here, *here.parents][:4]
    for name, value in list(namespace.items()):
        if not isinstance(value, str) or not value or name.startswith("_"):
            continue
        if name not in PATH_PARAMETERS and not name.endswith(_PATH_SUFFIXES):
            continue
        p = Path(value)
        if p.is_absolute() or (here / p).exists():
            continue
        for base in candidates[1:]:
            if (base / p).exists():
                namespace[name] = str(base / p)
                break
            if (base / "finops.yaml").exists() or (base / "pyproject.toml").exists():
                break


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
    else:
        alt.renderers.enable("default")


def _script_json(obj: Any) -> str:
    """JSON safe inside an HTML ``<script>``: ``</`` and ``<!--`` cannot end or confuse the element."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return (text.replace("</", "<\\/").replace("<!--", "<\\!--")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


#: vega-embed options: export (SVG/PNG) stays, anything that would open an external site goes.
EMBED_OPTIONS = {"actions": {"export": True, "source": False, "compiled": False, "editor": False},
                 "renderer": "svg"}


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
        "window.vegaEmbed(el,spec," + _script_json(EMBED_OPTIONS) + ")"
        ".catch(function(e){el.setAttribute('data-error','1');el.textContent='Chart error: '+e;});})();"
    )
    body = (f'<div id="{div_id}" class="finops-chart vega-embed-target"></div>\n'
            f'<script type="text/javascript">{script}</script>')
    return {"text/html": body, "text/plain": plain}


# --------------------------------------------------------------------------------------------------------------
# formatting and tables

def money(value: Any, currency: str | None = SCOPE_CURRENCY, places: int = 2) -> str:
    """``1234.5`` -> ``$1,234.50`` (``-$3.00`` for negatives; ``1,234.50 EUR`` for other currencies)."""
    if currency == SCOPE_CURRENCY:
        currency = _state["currency"]
    if value is None or (isinstance(value, float) and value != value):
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    r = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)  # money rounds half up, not to even
    text = f"{abs(r):,.{places}f}"
    sign = "-" if r < 0 else ""
    if currency in (None, ""):
        return sign + text
    if currency == "USD":
        return f"{sign}${text}"
    return f"{sign}{text} {currency}"


def md(text: str) -> Any:
    """Markdown for ``display`` with every ``$`` escaped: Jupyter and nbconvert read a pair of dollar signs as
    inline math, so "**$1.00/month** ... **$2.00**" rendered as one math span with stray ``**`` around it."""
    from IPython.display import Markdown

    return Markdown(text.replace("\\$", "$").replace("$", "\\$"))


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


_TABLE_CSS = ("border-collapse:collapse;font-size:12px;margin:4px 0 12px 0;")
_TH = "text-align:left;border-bottom:1px solid #999;padding:3px 8px;"  # lab CSS right-aligns by default
_TD = "border-bottom:1px solid #eee;padding:3px 8px;"


def table(df: Any, money: Iterable[str] | None = None, percent: Iterable[str] | None = None,
          currency: str | None = SCOPE_CURRENCY, caption: str | None = None, max_rows: int = 200) -> HTMLTable:
    """Escaped HTML table of a (small) DataFrame or DuckDB relation.

    Money columns (``money=[...]``, plus any column holding ``Decimal`` values) are shown as ``$1,234.56``;
    ``percent=[...]`` columns as ``12.3%``. Every header, cell and caption is HTML-escaped, so a tag value like
    ``<script>alert(1)</script>`` shows as text. Only the first ``max_rows`` rows are shown, with a note.
    """
    if hasattr(df, "df") and not hasattr(df, "iloc"):  # DuckDB relation
        df = df.limit(max_rows + 1).df()
    money_cols = set(money or ())
    pct_cols = set(percent or ())
    unknown = (money_cols | pct_cols) - {str(c) for c in df.columns}
    if unknown:
        raise KeyError(f"table(): no column(s) {sorted(unknown)}; columns are {[str(c) for c in df.columns]}")
    shown = df.head(max_rows)
    for c in df.columns:
        col = shown[c]
        is_decimal = str(col.dtype).startswith("decimal") or (
            col.dtype == object and col.map(lambda v: isinstance(v, Decimal)).any())
        if is_decimal and c not in pct_cols:
            money_cols.add(str(c))
    head = "".join(f'<th style="{_TH}">{html.escape(str(c))}</th>' for c in shown.columns)
    rows, text_rows = [], []
    for rec in shown.itertuples(index=False, name=None):
        cells, texts = [], []
        for c, v in zip(shown.columns, rec, strict=True):
            text, numeric = _cell(v, str(c) in money_cols, str(c) in pct_cols, currency)
            align = "text-align:right;font-variant-numeric:tabular-nums;" if numeric else "text-align:left;"
            cells.append(f'<td style="{_TD}{align}">{text}</td>')
            texts.append(html.unescape(text))
        rows.append("<tr>" + "".join(cells) + "</tr>")
        text_rows.append(" | ".join(texts))
    cap = f'<caption style="caption-side:top;text-align:left;font-weight:600">{html.escape(caption)}</caption>' \
        if caption else ""
    more = ""
    if len(df) > max_rows:
        more = f'<p style="font-size:11px;color:#666">showing the first {max_rows} of {len(df):,} rows</p>'
    markup = (f'<table class="finops-table" style="{_TABLE_CSS}">{cap}<thead><tr>{head}</tr></thead>'
              f'<tbody>{"".join(rows)}</tbody></table>{more}')
    text = "\n".join([" | ".join(str(c) for c in shown.columns), *text_rows])
    return HTMLTable(markup, text)


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
        f'<tr><th style="{_TH}font-weight:500">{html.escape(str(k))}</th>'
        f'<td style="{_TD}text-align:left"><code>{html.escape(json.dumps(v, default=str, ensure_ascii=False))}</code></td></tr>'
        for k, v in items.items())
    return f'<table class="finops-table" style="{_TABLE_CSS}">{rows}</table>'


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
    parts = [
        '<div class="finops-header" style="border:1px solid #ddd;border-radius:6px;padding:10px 14px;'
        'margin:6px 0 14px 0;background:#fafafa;font-size:13px">',
        f'<h2 style="margin:0 0 6px 0">{html.escape(title)}</h2>' if title else "",
        f'<p style="margin:2px 0">Rendered {html.escape(now)} · ',
        " · ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in versions.items()),
        "</p>",
        f'<p style="margin:6px 0;color:{color};font-weight:600">Reconciliation: {html.escape(status)}</p>',
        (f'<p class="finops-scope" style="margin:6px 0"><b>Scope:</b> {html.escape(scope.describe())}<br>'
         f'{html.escape(scope.completeness_note())}</p>' if scope is not None else ""),
        f'<p style="margin:2px 0">{html.escape(quality_line(con))}</p>',
        "<details><summary><b>Parameters</b></summary>", _kv_table(params), "</details>",
        f"<details><summary><b>Input fingerprint</b> ({len(fp)} source files)</summary>",
        table(fp_show, caption=None).markup if len(fp_show) else "<p>no files</p>", "</details>",
        f"<details {'open' if n_bad else ''}><summary><b>Reconciliation</b> (source vs normalized totals)"
        "</summary>",
        table(rec_show, money=[c for c in rec_show.columns if c.endswith(("_billed", "_effective"))],
              currency=None).markup if len(rec_show) else "<p>nothing ingested</p>",
        "</details></div>",
    ]
    plain = f"{title or 'Report'} — rendered {now}; parameters {json.dumps(params, default=str)}; {status}"
    if scope is not None:
        plain += f"; scope: {scope.describe()}"
    display({"text/html": "".join(parts), "text/plain": plain}, raw=True, metadata={META_KEY: "header"})


# --------------------------------------------------------------------------------------------------------------
# ipywidgets

def live_only(widget: Any, static: Any = None, note: str | None = None) -> None:
    """Show an ipywidgets control live; in a static report show a clear note instead of a dead control.

    ``static`` (a chart, table, or a callable returning one) is displayed in reports in place of the control,
    typically the view at the default selection. Controls linked client-side with ``jslink`` do work in
    reports; display those directly instead of through this helper.
    """
    from IPython.display import display

    if not in_report():
        display(widget)
        return
    text = html.escape(note or LIVE_ONLY_NOTE)
    display({"text/html": f'<div class="finops-live-only" style="border-left:4px solid #f0ad4e;'
                          f'background:#fff8e1;padding:6px 10px;margin:6px 0;font-size:13px">'
                          f'&#9432; {text}</div>',
             "text/plain": f"[{note or LIVE_ONLY_NOTE}]"}, raw=True)
    if static is not None:
        display(static() if callable(static) else static)
