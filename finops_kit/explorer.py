"""``fk.explore()``: one ipywidgets explorer over the warehouse, for live JupyterLab.

Scope filters (billing-period range, provider, account), an all / AI-only / GPU-only toggle, drill-down
team -> service -> resource with breadcrumbs, the chart and the table of the current view, and "export this view"
to CSV or parquet. Every view is one :func:`finops_kit.api.costs` call: the scope, the attribution (a team is the
team whatever the tag's spelling) and the GPU rules are the package's, not the explorer's. It opens populated.

    import finops_kit as fk
    fk.explore()                        # the project's warehouse (fk.connect()), finops.yaml
    ex = fk.explore(); ex.drill("nlp"); ex.view()   # the same from code: the current view as a CostFrame
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from .api import CostFrame, _config, _connection, costs

#: The drill-down path: each level's value filters the next.
LEVELS = ("team", "service", "resource")
ALL = "(all)"
MODES = {"all spend": {}, "AI/ML only": {"ai_only": True}, "GPU only": {"gpu_only": True}}
#: Rows the chart shows (the table shows the whole view, up to nb.table's max_rows).
CHART_ROWS = 15


def _choices(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [str(r[0]) for r in con.execute(sql).fetchall() if r[0] is not None]


def explore(con: duckdb.DuckDBPyConnection | None = None, *, config: Any = None,
            levels: Sequence[str] = LEVELS, export_dir: str | Path = "exports") -> Any:
    """Build and return the explorer widget (display it, or leave it as a cell's last expression)."""
    return Explorer(_connection(con), config=_config(config), levels=levels, export_dir=export_dir)


class Explorer:
    """The explorer: ``.widget`` is the ipywidgets box; :meth:`view`, :meth:`drill`, :meth:`up` and
    :meth:`export` do from code what the controls do."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, config: Any = None, levels: Sequence[str] = LEVELS,
                 export_dir: str | Path = "exports") -> None:
        import ipywidgets as w

        from .notebook import in_report, live_charts
        from .project import resolve as resolve_path
        from .warehouse import FOCUS_TABLE

        if not in_report():
            live_charts()  # the kit's Vega bundle, not Altair's CDN renderer
        self.con, self.config, self.levels = con, config, tuple(levels)
        self.export_dir = resolve_path(export_dir)
        self.path: list[tuple[str, str]] = []  # (level, value) chosen so far
        periods = _choices(con, f"SELECT DISTINCT strftime(BillingPeriodStart, '%Y-%m') AS p FROM {FOCUS_TABLE} "
                                "WHERE BillingPeriodStart IS NOT NULL ORDER BY p")
        providers = _choices(con, f"SELECT DISTINCT ProviderName AS p FROM {FOCUS_TABLE} ORDER BY p")
        accounts = _choices(con, "SELECT DISTINCT coalesce(SubAccountName, SubAccountId) AS a "
                                 f"FROM {FOCUS_TABLE} ORDER BY a")
        if not periods:
            from .scope import NoDataError

            raise NoDataError("the warehouse holds no billing data: nothing to explore")
        self.periods = w.SelectionRangeSlider(options=periods, index=(0, len(periods) - 1),
                                              description="periods", layout=w.Layout(width="420px"))
        self.provider = w.Dropdown(options=[ALL, *providers], value=ALL, description="provider")
        self.account = w.Dropdown(options=[ALL, *accounts], value=ALL, description="account")
        self.mode = w.ToggleButtons(options=list(MODES), value="all spend")
        self.crumbs = w.HBox([])
        self.pick = w.Dropdown(options=[], description="drill into")
        self.drill_button = w.Button(description="drill down", icon="arrow-down")
        self.fmt = w.Dropdown(options=["csv", "parquet"], value="csv", layout=w.Layout(width="90px"))
        self.export_button = w.Button(description="export this view", icon="download")
        self.message = w.HTML()
        self.chart_out, self.table_out = w.Output(), w.Output()
        self.widget = w.VBox([
            w.HBox([self.periods, self.mode]), w.HBox([self.provider, self.account]),
            self.crumbs, w.HBox([self.pick, self.drill_button]),
            self.chart_out, self.table_out, w.HBox([self.fmt, self.export_button, self.message])],
            layout=w.Layout(border="1px solid #ddd", padding="6px"))
        self.widget.add_class("finops-explorer")
        for c in (self.periods, self.provider, self.account, self.mode):
            c.observe(lambda _change: self.refresh(), names="value")
        self.drill_button.on_click(lambda _b: self.drill(self.pick.value) if self.pick.value else None)
        self.export_button.on_click(lambda _b: self.export())
        self.current: CostFrame | None = None
        self.refresh()

    # ------------------------------------------------------------------------------------------------ state

    @property
    def level(self) -> str:
        return self.levels[min(len(self.path), len(self.levels) - 1)]

    def _args(self) -> dict[str, Any]:
        a, b = self.periods.value
        args: dict[str, Any] = dict(period=(a, b), con=self.con, config=self.config, **MODES[self.mode.value])
        if self.provider.value != ALL:
            args["providers"] = [self.provider.value]
        if self.account.value != ALL:
            args["accounts"] = [self.account.value]
        if self.path:
            args["where"] = dict(self.path)
        return args

    def view(self) -> CostFrame:
        """The current view: cost by the current level under the filters and the drill-down path."""
        return costs(self.level, **self._args())

    def drill(self, value: str) -> None:
        """Go one level down into ``value`` of the current level (the last level only re-filters)."""
        if len(self.path) >= len(self.levels) - 1:
            return
        self.path.append((self.level, value))
        self.refresh()

    def up(self, depth: int = 0) -> None:
        """Back to the level at ``depth`` of the breadcrumbs (0: the top)."""
        self.path = self.path[:depth]
        self.refresh()

    # ------------------------------------------------------------------------------------------------ drawing

    def _breadcrumbs(self) -> None:
        import ipywidgets as w

        items = [w.Button(description=f"all {self.levels[0]}s", layout=w.Layout(width="auto"))]
        items[0].on_click(lambda _b: self.up(0))
        for i, (lvl, val) in enumerate(self.path, start=1):
            b = w.Button(description=f"{lvl}: {val}", layout=w.Layout(width="auto"))
            b.on_click(lambda _b, d=i: self.up(d))
            items += [w.HTML("&rsaquo;"), b]
        items[-1].button_style = "info"  # where we are
        self.crumbs.children = items

    def refresh(self) -> None:
        """Recompute the view and redraw chart, table, breadcrumbs and the drill-down choices."""
        import pandas as pd

        from . import charts as ch
        from .errors import FinopsError

        self._breadcrumbs()
        try:
            view = self.view()
        except FinopsError as exc:  # a scope without data: say so in the widget instead of a dead control
            self.current = None
            self.pick.options = []
            self.chart_out.outputs = ()
            self.table_out.outputs = ({"output_type": "display_data", "metadata": {},
                                       "data": {"text/html": f"<p class='finops-explorer-empty'>"
                                                             f"{html.escape(str(exc))}</p>",
                                                "text/plain": str(exc)}},)
            return
        self.current = view
        self.pick.options = [str(v) for v in view[self.level]] if len(self.path) < len(self.levels) - 1 else []
        self.drill_button.disabled = not self.pick.options
        title = " › ".join([f"{lvl} {val}" for lvl, val in self.path] or ["all"]) + f": cost by {self.level}"
        top = pd.DataFrame(view.head(CHART_ROWS))
        chart = ch.bar(top.assign(cost=top["cost"].astype(float)), self.level, "cost", title=title)
        # replaced, not cleared and re-captured: works without a kernel (tests) and does not flicker
        self.chart_out.outputs = ()
        self.chart_out.append_display_data(chart.properties(width=520))
        self.table_out.outputs = ()
        self.table_out.append_display_data(view)
        self.message.value = ""

    def export(self, path: str | Path | None = None) -> Path:
        """Write the current view (exact amounts) to ``path`` or ``exports/explore-<level>-<time>.<fmt>`` under
        the project root; returns the file written."""
        view = self.current if self.current is not None else self.view()
        fmt = self.fmt.value
        if path is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            path = self.export_dir / f"explore-{self.level}-{stamp}.{fmt}"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        import pandas as pd

        plain = pd.DataFrame(view).copy()
        if str(path).endswith(".parquet"):
            plain.to_parquet(path, index=False)
        else:
            plain.to_csv(path, index=False)
        self.message.value = f"wrote {html.escape(str(path))} ({len(plain):,} rows)"
        return path

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


__all__ = ["Explorer", "LEVELS", "explore"]
