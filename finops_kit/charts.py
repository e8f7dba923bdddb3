"""Charts for the curated notebooks: one theme, money formats, stable colors, and a few generic builders.

Every notebook uses the same look so that "AWS" or team "vision" has the same color in every report a
FinOps Champion forwards. Builders take SMALL, already aggregated DataFrames (aggregate in DuckDB first:
only aggregates go into chart specs, never raw billing rows) and return Altair charts.

API (stable; notebooks call these)::

    import finops_kit.charts as ch
    ch.enable_theme()                        # done by finops_kit.notebook.setup()
    ch.MONEY, ch.MONEY_SHORT                 # d3 formats: "$,.2f" and "$,.3~s"
    ch.color(field, values, kind="provider"|"team"|"category"|"auto", title=None, legend=True) -> alt.Color
    ch.color_map(values, kind) -> {value: "#rrggbb"}   # same colors outside Altair
    ch.bar(df, dimension, value, color=None, kind="auto", title=None, top=None, horizontal=True)
    ch.stacked_area(df, time, value, color, kind="auto", title=None, time_unit="yearmonth")
    ch.line(df, time, value, color=None, kind="auto", title=None, time_unit="yearmonthdate")
    ch.stacked_bar(df, time, value, color, kind="auto", title=None, time_unit="yearmonth")
    ch.dropdown(chart, field, values, label=None, name=None) -> chart with a bound <select> filtering `field`
    ch.legend_highlight(chart, field) -> chart whose legend click highlights one series
    ch.plot_frame(df) -> copy of df with Decimal columns as float (for plotting only)

Interactivity that survives in the offline report comes from Altair params bound to inputs (``dropdown``,
legend selections, brushes); it runs in the browser without a kernel.

Safety: titles, axis labels and tooltips are rendered by Vega as SVG text or by vega-tooltip, which escapes
HTML by default, so a tag value such as ``<script>alert(1)</script>`` shows as text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import altair as alt
import pandas as pd

#: d3-format strings for money. Full precision for tooltips and tables, short for axes.
MONEY = "$,.2f"
MONEY_SHORT = "$,.3~s"
PERCENT = ".1%"

#: Largest number of rows a builder accepts: a chart spec holds aggregates, not billing line items.
MAX_ROWS = 5000

#: Fixed colors for providers (by FOCUS ProviderName and common short names), close to their brand colors.
PROVIDER_COLORS: dict[str, str] = {
    "AWS": "#FF9900",
    "Amazon Web Services": "#FF9900",
    "Google Cloud": "#4285F4",
    "GCP": "#4285F4",
    "Google": "#4285F4",
    "Microsoft": "#7FBA00",
    "Microsoft Azure": "#7FBA00",
    "Azure": "#7FBA00",
    "OpenAI": "#10A37F",
    "Anthropic": "#C9785D",
    "Oracle": "#C74634",
    "Other": "#9E9E9E",
}

#: Fixed colors for the FOCUS 1.2 ServiceCategory values.
CATEGORY_COLORS: dict[str, str] = {
    "AI and Machine Learning": "#7B3FBF",
    "Analytics": "#1F77B4",
    "Business Applications": "#8C564B",
    "Compute": "#D62728",
    "Databases": "#2CA02C",
    "Developer Tools": "#BCBD22",
    "Identity": "#E377C2",
    "Integration": "#17BECF",
    "Internet of Things": "#AEC7E8",
    "Management and Governance": "#98DF8A",
    "Media": "#FF9896",
    "Migration": "#C5B0D5",
    "Mobile": "#C49C94",
    "Multicloud": "#F7B6D2",
    "Networking": "#FF7F0E",
    "Security": "#9467BD",
    "Storage": "#8C8C00",
    "Web": "#DBDB8D",
    "Other": "#9E9E9E",
}

#: Color for "untagged"/"unallocated" buckets in every chart: grey says "nobody owns this".
UNALLOCATED_COLOR = "#BDBDBD"
UNALLOCATED_NAMES = {"(untagged)", "untagged", "(none)", "unallocated", "(unallocated)", "", "None", "null"}

#: Palette for teams/projects and other open-ended values (Tableau 20, colorblind-reasonable order).
PALETTE: tuple[str, ...] = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
    "#A0CBE8", "#FFBE7D", "#FF9D9A", "#86BCB6", "#8CD17D", "#F1CE63", "#D4A6C8", "#FABFD2", "#D7B5A6",
    "#499894", "#79706E",
)

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "font": FONT,
            "view": {"continuousWidth": 560, "continuousHeight": 300, "stroke": None},
            "axis": {"labelFontSize": 11, "titleFontSize": 12, "gridColor": "#EEEEEE", "domainColor": "#999999"},
            "legend": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 220},
            "title": {"fontSize": 14, "anchor": "start", "subtitleColor": "#666666"},
            "range": {"category": list(PALETTE)},
            "numberFormat": ",.2~f",
        }
    }


_THEME_REGISTERED = False


def enable_theme() -> None:
    """Register and enable the ``finops`` Altair theme (idempotent)."""
    global _THEME_REGISTERED
    if not _THEME_REGISTERED:
        alt.theme.register("finops", enable=False)(_theme)
        _THEME_REGISTERED = True
    alt.theme.enable("finops")


def _stable_index(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:4], "big") % len(PALETTE)


def color_map(values: Iterable[Any], kind: str = "auto") -> dict[str, str]:
    """Color per value, the same in every report.

    ``provider`` and ``category`` use fixed brand/category colors; ``team`` (and any other open-ended
    dimension) uses a hash of the value into :data:`PALETTE`, so "vision" keeps its color whatever other
    teams a report shows. Collisions inside one chart are resolved by probing in sorted order, which is
    deterministic. Untagged/unallocated buckets are always grey.
    """
    names = sorted({"" if v is None else str(v) for v in values})
    fixed = {"provider": PROVIDER_COLORS, "category": CATEGORY_COLORS}.get(kind)
    if kind == "auto":
        if names and all(n in PROVIDER_COLORS or n in UNALLOCATED_NAMES for n in names):
            fixed = PROVIDER_COLORS
        elif names and all(n in CATEGORY_COLORS or n in UNALLOCATED_NAMES for n in names):
            fixed = CATEGORY_COLORS
    out: dict[str, str] = {}
    used: set[str] = set()
    for n in names:
        if n in UNALLOCATED_NAMES or n.lower() in UNALLOCATED_NAMES:
            out[n] = UNALLOCATED_COLOR
        elif fixed and n in fixed:
            out[n] = fixed[n]
            used.add(fixed[n])
    for n in names:
        if n in out:
            continue
        i = _stable_index(n)
        for step in range(len(PALETTE)):
            c = PALETTE[(i + step) % len(PALETTE)]
            if c not in used:
                break
        out[n] = c
        used.add(c)
    return out


def color(field: str, values: Iterable[Any], kind: str = "auto", title: str | None = None,
          legend: bool = True, **kwargs: Any) -> alt.Color:
    """An ``alt.Color`` encoding on nominal ``field`` with the kit's stable colors for ``values``."""
    cmap = color_map(values, kind)
    scale = alt.Scale(domain=list(cmap), range=list(cmap.values()))
    return alt.Color(f"{field}:N", scale=scale, title=title if title is not None else field,
                     legend=alt.Legend() if legend else None, **kwargs)


_color = color  # builders have a ``color`` argument that shadows the function


def plot_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` ready for a chart spec: Decimal money becomes float (plotting only), and the frame is
    refused when it is too large to be an aggregate."""
    if len(df) > MAX_ROWS:
        raise ValueError(f"chart data has {len(df)} rows (> {MAX_ROWS}): aggregate in DuckDB before plotting")
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object and s.map(lambda v: isinstance(v, Decimal)).any():
            out[col] = s.map(lambda v: float(v) if isinstance(v, Decimal) else v).astype("float64")
        elif str(s.dtype).startswith("decimal"):  # pyarrow decimal dtype
            out[col] = s.astype("float64")
    return out


def _tooltip(cols: Sequence[tuple[str, str]], money: Sequence[str]) -> list[alt.Tooltip]:
    tips = []
    for name, typ in cols:
        if name in money:
            tips.append(alt.Tooltip(f"{name}:Q", format=MONEY, title=name))
        else:
            tips.append(alt.Tooltip(f"{name}:{typ}", title=name))
    return tips


def bar(df: pd.DataFrame, dimension: str, value: str, color: str | None = None, kind: str = "auto",
        title: str | None = None, top: int | None = None, horizontal: bool = True,
        value_title: str | None = None, money: bool = True) -> alt.Chart:
    """Bars of ``value`` per ``dimension`` (largest first), optionally stacked/colored by ``color``.

    ``top`` keeps the ``top`` largest dimension values. ``money=False`` formats the value as a plain number.
    """
    data = plot_frame(df)
    if top is not None:
        keep = data.groupby(dimension, dropna=False)[value].sum().nlargest(top).index
        data = data[data[dimension].isin(keep)]
    fmt = MONEY_SHORT if money else ",.3~s"
    sort = alt.EncodingSortField(field=value, op="sum", order="descending")
    dim = alt.Y(f"{dimension}:N", sort=sort, title=dimension) if horizontal else alt.X(
        f"{dimension}:N", sort=sort, title=dimension)
    val_axis = alt.Axis(format=fmt)
    val = (alt.X if horizontal else alt.Y)(f"sum({value}):Q", title=value_title or value, axis=val_axis)
    tip_cols = [(dimension, "N")] + ([(color, "N")] if color and color != dimension else [])
    tips = _tooltip(tip_cols, []) + [alt.Tooltip(f"sum({value}):Q", format=MONEY if money else ",.2f",
                                                 title=value_title or value)]
    enc: dict[str, Any] = {"y" if horizontal else "x": dim, "x" if horizontal else "y": val, "tooltip": tips}
    if color:
        enc["color"] = _color(color, data[color].unique(), kind)
    chart = alt.Chart(data).mark_bar().encode(**enc)
    if horizontal:
        chart = chart.properties(height=alt.Step(18))
    return chart.properties(title=title) if title else chart


def _time_chart(mark: str, df: pd.DataFrame, time: str, value: str, color_field: str | None, kind: str,
                title: str | None, time_unit: str, value_title: str | None, money: bool) -> alt.Chart:
    data = plot_frame(df)
    fmt = MONEY_SHORT if money else ",.3~s"
    x = alt.X(f"{time_unit}({time}):T", title=None)
    y = alt.Y(f"sum({value}):Q", title=value_title or value, axis=alt.Axis(format=fmt),
              stack=True if mark in ("area", "bar") else None)
    tips = [alt.Tooltip(f"{time_unit}({time}):T", title=time)]
    if color_field:
        tips.append(alt.Tooltip(f"{color_field}:N", title=color_field))
    tips.append(alt.Tooltip(f"sum({value}):Q", format=MONEY if money else ",.2f", title=value_title or value))
    enc: dict[str, Any] = {"x": x, "y": y, "tooltip": tips}
    if color_field:
        enc["color"] = _color(color_field, data[color_field].unique(), kind)
    chart = getattr(alt.Chart(data), f"mark_{mark}")(**({"point": True} if mark == "line" else {})).encode(**enc)
    return chart.properties(title=title) if title else chart


def stacked_area(df: pd.DataFrame, time: str, value: str, color: str, kind: str = "auto",
                 title: str | None = None, time_unit: str = "yearmonth", value_title: str | None = None,
                 money: bool = True) -> alt.Chart:
    """Stacked area of ``value`` over ``time`` split by ``color`` (e.g. monthly cost by provider)."""
    return _time_chart("area", df, time, value, color, kind, title, time_unit, value_title, money)


def stacked_bar(df: pd.DataFrame, time: str, value: str, color: str, kind: str = "auto",
                title: str | None = None, time_unit: str = "yearmonth", value_title: str | None = None,
                money: bool = True) -> alt.Chart:
    """Stacked bars of ``value`` per period split by ``color`` (monthly cost by team, category...)."""
    return _time_chart("bar", df, time, value, color, kind, title, time_unit, value_title, money)


def line(df: pd.DataFrame, time: str, value: str, color: str | None = None, kind: str = "auto",
         title: str | None = None, time_unit: str = "yearmonthdate", value_title: str | None = None,
         money: bool = True) -> alt.Chart:
    """Line of ``value`` over ``time`` (one line per ``color`` value if given), with points for tooltips."""
    return _time_chart("line", df, time, value, color, kind, title, time_unit, value_title, money)


def mark_open_periods(chart: alt.Chart, scope: Any, time: str = "month", time_unit: str = "yearmonth") -> alt.Chart:
    """Layer a dashed rule and a label ("1–26 Nov 2026, open") on every open billing period of ``scope`` (a resolved
    :class:`~finops_kit.scope.Scope`), so a partial month never reads as a drop. Apply it last (after
    :func:`dropdown` / :func:`legend_highlight`); the chart is returned unchanged when every period is closed."""
    labels = scope.open_labels()
    if not labels:
        return chart
    data = pd.DataFrame({time: [pd.Timestamp(p).strftime("%Y-%m-%d") for p in labels], "label": list(labels.values())})
    base = alt.Chart(data).encode(x=alt.X(f"{time_unit}({time}):T"))
    rule = base.mark_rule(strokeDash=[4, 3], color="#c62828")
    text = base.mark_text(align="left", baseline="top", dx=3, dy=2, color="#c62828", fontSize=11).encode(
        y=alt.value(0), text="label:N")
    return alt.layer(chart, rule, text)


def dropdown(chart: alt.Chart, field: str, values: Iterable[Any], label: str | None = None,
             name: str | None = None, all_label: str = "All") -> alt.Chart:
    """Add a ``<select>`` bound to an Altair param that filters ``chart`` on ``field``; works offline.

    The first option shows every value. ``name`` must be unique per chart (default derived from ``field``).
    """
    opts = [None] + sorted({str(v) for v in values if v is not None})
    pname = name or "sel_" + "".join(ch if ch.isalnum() else "_" for ch in field)
    param = alt.param(
        name=pname, value=None,
        bind=alt.binding_select(options=opts, labels=[all_label] + opts[1:], name=(label or field) + " "),
    )
    field_ref = "datum[" + _js_string(field) + "]"
    return chart.add_params(param).transform_filter(f"{pname} === null || {field_ref} === {pname}")


def legend_highlight(chart: alt.Chart, field: str, name: str | None = None) -> alt.Chart:
    """Click a legend entry to highlight that series (others fade); works offline."""
    pname = name or "hl_" + "".join(ch if ch.isalnum() else "_" for ch in field)
    sel = alt.selection_point(name=pname, fields=[field], bind="legend")
    return chart.add_params(sel).encode(opacity=alt.condition(sel, alt.value(1.0), alt.value(0.2)))


def _js_string(s: str) -> str:
    import json

    return json.dumps(s)
