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


# ------------------------------------------------------------------------------------------------------ forecasts
def forecast_frame(results: Sequence[Any]) -> pd.DataFrame:
    """Cumulative spend in each forecast's period (one row per series and day), for :func:`forecast_period` and
    :func:`forecast_small_multiples`: ``value``, ``day``, ``kind`` (actual/forecast), ``cum`` and the fan ``lo``/``hi``.

    Actuals are the period's daily cost to ``as_of``; the forecast continues from the actual to date with the daily
    expected cost. The fan opens from the actual to date (no uncertainty) to the period total's interval
    (``total_lo``..``total_hi``, what the report states) in proportion to the square root of the days ahead -- the
    way the spread of a sum of daily errors grows; only its end point is a forecast figure.
    """
    parts = []
    for r in results:
        h = r.history
        h = h[pd.to_datetime(h["day"]).dt.date >= r.period_start]
        cum0 = float(r.actual_to_date)
        # the daily history is usage-based; scale it to the actual to date (all charges) so both ends agree
        acc = h["actual"].astype(float).cumsum()
        scale = cum0 / float(acc.iloc[-1]) if len(acc) and float(acc.iloc[-1]) else 1.0
        parts.append(pd.DataFrame({"value": r.value, "day": pd.to_datetime(h["day"]), "kind": "actual",
                                   "cum": acc * scale, "lo": float("nan"), "hi": float("nan")}))
        if r.ok and len(r.daily):
            d = r.daily
            n = len(d)
            steps = (pd.Series(range(1, n + 1), dtype=float) / n) ** 0.5
            cum = cum0 + d["expected"].astype(float).cumsum().reset_index(drop=True)
            end = float(cum.iloc[-1])
            lo = cum - (end - float(r.total_lo)) * steps
            hi = cum + (float(r.total_hi) - end) * steps
            start = pd.DataFrame({"value": [r.value], "day": [pd.Timestamp(r.as_of)], "kind": ["forecast"],
                                  "cum": [cum0], "lo": [cum0], "hi": [cum0]})
            parts.append(start)
            parts.append(pd.DataFrame({"value": r.value, "day": pd.to_datetime(d["day"]).reset_index(drop=True),
                                       "kind": "forecast", "cum": cum, "lo": lo, "hi": hi}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["value", "day", "kind", "cum", "lo", "hi"])
    out["day"] = pd.to_datetime(out["day"]).dt.strftime("%Y-%m-%d")
    return plot_frame(out)


def budget_lines(budgets: Iterable[Any], dimension: str, start: Any, end: Any) -> dict[str, float]:
    """Budget of each series over the forecast period (the sum of the months' amounts): ``{value: amount}``.

    A budget applies to a series when its scope is exactly that series (``{team: nlp}`` for the team ``nlp``;
    no scope for ``Total``), so a line is never drawn against a series it does not cover -- nor for a period none
    of whose months the budget covers (a budget given only for other months: no budget, not a $0 line).
    """
    months = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")
    out: dict[str, float] = {}
    for b in budgets:
        sc = dict(getattr(b, "scope", None) or {})
        if not sc and dimension in ("total", None):
            key = "Total"
        elif list(sc) == [dimension]:
            key = str(sc[dimension])
        elif not sc:
            key = "Total"
        else:
            continue
        amounts = [b.for_month(str(m)) for m in months] if hasattr(b, "for_month") else \
            [b.amount(str(m)) for m in months]
        if all(a is None for a in amounts):
            continue
        out[key] = out.get(key, 0.0) + sum(float(a) for a in amounts if a is not None)
    return out


def _budget_frame(lines: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"value": list(lines), "budget": list(lines.values()),
                         "label": [f"budget ${v:,.0f}" for v in lines.values()]})


def _period_layers(data: pd.DataFrame, budgets: pd.DataFrame, level: float) -> list[alt.Chart]:
    x = alt.X("day:T", title=None, axis=alt.Axis(format="%d %b", labelOverlap=True))
    y_title = "spend in the period (cumulative)"
    base = alt.Chart(data).encode(x=x)
    fan = base.transform_filter(alt.datum.kind == "forecast").mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("lo:Q", title=y_title, axis=alt.Axis(format=MONEY_SHORT)), y2="hi:Q",
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("lo:Q", format=MONEY, title=f"low ({level:g}%)"),
                 alt.Tooltip("hi:Q", format=MONEY, title=f"high ({level:g}%)")])
    lines = base.mark_line(point=alt.OverlayMarkDef(size=10)).encode(
        y=alt.Y("cum:Q", title=y_title),
        color=alt.Color("kind:N", title=None, scale=alt.Scale(domain=["actual", "forecast"],
                                                              range=["#333333", "#4c78a8"])),
        strokeDash=alt.StrokeDash("kind:N", legend=None,
                                  scale=alt.Scale(domain=["actual", "forecast"], range=[[1, 0], [5, 3]])),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("kind:N"), alt.Tooltip("cum:Q", format=MONEY, title="to date")])
    layers = [fan, lines]
    if len(budgets):
        b = alt.Chart(budgets)
        layers.append(b.mark_rule(color="#c62828", strokeDash=[6, 3]).encode(
            y="budget:Q", tooltip=[alt.Tooltip("budget:Q", format=MONEY, title="budget")]))
        layers.append(b.mark_text(align="left", baseline="bottom", dx=2, dy=-2, color="#c62828", fontSize=11).encode(
            y="budget:Q", x=alt.value(2), text="label:N"))
    return layers


def forecast_period(total: Any, budgets: Iterable[Any] = (), events: pd.DataFrame | None = None,
                    title: str | None = None) -> alt.Chart:
    """Where the period will land: cumulative actual to ``as_of``, the forecast with its fan to the period end, the
    budget line(s) of the total, and the cost anomalies of the total marked on the actual line (red points)."""
    data = forecast_frame([total])
    lines = budget_lines(budgets, "total", total.period_start, total.period_end)
    bud = _budget_frame({"Total": lines["Total"]} if "Total" in lines else {})
    layers = _period_layers(data, bud, float(total.level))
    if events is not None and len(events):
        ev = events[events["dimension"] == "total"] if "dimension" in events.columns else events
        actual = data[data["kind"] == "actual"].set_index("day")["cum"]
        rows = []
        for e in ev.itertuples():
            day = pd.Timestamp(e.peak_day if hasattr(e, "peak_day") else e.start).strftime("%Y-%m-%d")
            if day in actual.index:
                rows.append({"day": day, "cum": float(actual[day]), "impact": float(e.impact),
                             "what": f"anomaly {e.start}..{e.end}: {e.direction} ${float(e.impact):,.0f}"})
        if rows:
            layers.append(alt.Chart(pd.DataFrame(rows)).mark_point(size=120, color="#c62828", filled=True,
                                                                   shape="diamond").encode(
                x="day:T", y="cum:Q", tooltip=[alt.Tooltip("what:N", title="anomaly"),
                                               alt.Tooltip("impact:Q", format=MONEY, title="impact")]))
    heading = title or (f"{total.period_start:%d %b} – {total.period_end:%d %b %Y}: actual to {total.as_of:%d %b}, "
                        f"forecast with its {total.level:g}% range, budget")
    return alt.layer(*layers).properties(title=heading, width=680, height=260)


def forecast_small_multiples(results: Sequence[Any], budgets: Iterable[Any] = (), dimension: str = "team",
                             columns: int = 3, title: str | None = None) -> alt.Chart:
    """One small cumulative chart per series (team, provider...): actual, forecast fan and the series' own budget;
    independent y axes so a small team's landing is as readable as a large one's."""
    results = [r for r in results if r.value != "Total"]
    data = forecast_frame(results)
    if data.empty:
        raise ValueError("forecast_small_multiples: no series besides the total to draw")
    start = min(r.period_start for r in results)
    end = max(r.period_end for r in results)
    bud = budget_lines(budgets, dimension, start, end)
    data = data.merge(_budget_frame(bud), on="value", how="left") if bud else data.assign(budget=float("nan"),
                                                                                         label=None)
    level = float(results[0].level) if results else 80.0
    x = alt.X("day:T", title=None, axis=alt.Axis(format="%d %b", labelOverlap=True, tickCount=4))
    base = alt.Chart().encode(x=x)
    fan = base.transform_filter(alt.datum.kind == "forecast").mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("lo:Q", title=None, axis=alt.Axis(format=MONEY_SHORT)), y2="hi:Q")
    line_ = base.mark_line().encode(
        y=alt.Y("cum:Q"), color=alt.Color("kind:N", title=None, scale=alt.Scale(
            domain=["actual", "forecast"], range=["#333333", "#4c78a8"])),
        strokeDash=alt.StrokeDash("kind:N", legend=None, scale=alt.Scale(domain=["actual", "forecast"],
                                                                         range=[[1, 0], [5, 3]])),
        tooltip=[alt.Tooltip("value:N"), alt.Tooltip("day:T"), alt.Tooltip("cum:Q", format=MONEY, title="to date"),
                 alt.Tooltip("lo:Q", format=MONEY, title=f"low ({level:g}%)"),
                 alt.Tooltip("hi:Q", format=MONEY, title=f"high ({level:g}%)")])
    rule = base.transform_filter("isValid(datum.budget)").mark_rule(color="#c62828", strokeDash=[6, 3]).encode(
        y="mean(budget):Q", x=alt.value(0), x2=alt.value(200))
    chart = alt.layer(fan, line_, rule, data=data).properties(width=200, height=120).facet(
        facet=alt.Facet("value:N", title=None), columns=columns).resolve_scale(y="independent")
    return chart.properties(title=title or f"Per {dimension}: spend in the period, forecast and budget (dashed red)")
