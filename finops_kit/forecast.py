"""Daily cost series and forecasts to the end of the month, quarter or year, with prediction intervals.

What a monthly cost review needs from a forecast is not a single number but three: where the period will land,
how wide the honest range is, and how much the model has earned the right to be believed on *this* bill. So:

* ``daily_series`` aggregates the FOCUS table **in DuckDB** into one small daily frame per dimension value
  (EffectiveCost by ChargePeriodStart day; exact DECIMAL sums, turned into floats only for the statistics).
* Only usage-based charges are modelled: a monthly support fee or a one-off commitment purchase on the 1st is
  not a weekly-seasonal process and would wreck an ETS fit. Recurring charges are carried forward from the last
  full month as an explicit, labelled component -- a monthly charge not billed yet this month (the tax posts when
  the month is invoiced) is expected once (:func:`_recurring_component`); one-time charges are not forecast (they
  are listed instead).
* Models: ``ets`` (ETS(A,Ad,A): Holt-Winters additive with damped trend and weekly seasonality, statsmodels
  ``ETSModel`` for proper prediction intervals), ``sarimax`` ((1,1,1)(0,1,1)7) and the ``seasonal_naive``
  baseline ("same weekday last week"). ``model="auto"`` picks the model with the lowest MASE in a rolling-origin
  backtest (:mod:`finops_kit.backtest`) and falls back to the baseline when nothing beats it.
* Period totals (month/quarter/year) and their intervals come from simulated sample paths, because summing
  daily interval bounds overstates the range of a total.
* Intervals are calibrated on the series' own history (:func:`calibrate_intervals`): the model's intervals
  assume its fitted parameters are the true ones, which makes them too narrow (simulated correctly specified
  ETS, 16 weeks of history: nominal 80% intervals covered 72-75% of days and 64-66% of 28-day totals). The model
  is fitted once more on the first half of the history and forecasts from every origin in the second half; each
  daily interval, and the simulated period totals (hence budgets' breach probabilities), are widened to those
  held-out errors (then 79-80% of days and 76-77% of totals; at a year of history 81% and 83%). Histories
  under 16 weeks keep the model's own intervals, and the trust statement says so. Those figures are ETS on ETS
  processes, 28 days ahead. Further ahead the last calibrated step's widening is reused: at a year of history
  (``python -m benchmarks forecast-calibration --histories 365 --processes trending --series 60``) ETS's 80%
  ranges held 88% of 90-day and 87% of 180-day totals (cautious), SARIMA's -- misspecified for that process --
  78% and 68% (too narrow at half a year). So a quarter's or a year's range is read with care, and the trust
  grade asks for held-out totals of the forecast's own length (:func:`held_out_window_errors`): a year of history
  holds 7 of 28 days, 2 of 90 and 1 of 180, too few for "high".
* Fewer than 5 weeks of history: no forecast, and the result says so (AWS Budgets needs about as much).

Forecast numbers are statistical estimates (floats); actuals stay DECIMAL. Money shown to people is rounded to
cents at the edge.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from statistics import NormalDist
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .errors import ConfigError
from .warehouse import FOCUS_TABLE

#: Minimum history for a forecast: 5 weeks (AWS Budgets forecast alerts need about as much).
MIN_HISTORY_DAYS = 35
SEASON = 7
MODELS = ("ets", "sarimax", "seasonal_naive")
#: Rolling origins of the backtest that chooses a forecast's model (``model="auto"``), 7 days apart. One number for
#: every caller -- the forecast report's total and per-team tables, budget status, ``finops-kit check`` -- because
#: the origins decide the model and the model decides the figure: with 4 origins for the total, 2 per team, 3 for
#: a budget and ETS for the alerts, team nlp's November was $202,430 in one table and $202,175 in the next. Two
#: origins: each model forecasts the horizon (7-28 days) twice, from a week apart, up to the last day of data; ten
#: statsmodels fits per series (2 origins x ETS and SARIMA, each with its held-out calibration fit, then the chosen
#: model's forecast and its calibration).
BACKTEST_ORIGINS = 2
MODEL_LABELS = {
    "ets": "ETS(A,Ad,A) Holt-Winters, weekly seasonality",
    "sarimax": "SARIMA(1,1,1)(0,1,1)7",
    "seasonal_naive": "Seasonal naive (same weekday last week)",
}

#: dimension name -> (SQL expression over a FOCUS row, label). NULLs become "(none)". Tag dimensions (None here, and
#: any other ``tag_policy`` key) come from the scope's attribution (:mod:`finops_kit.attribution`): ``team`` is the
#: showback owner -- a valid value, ``(shared)`` or ``(untagged)`` -- so budgets and forecasts split cost exactly as
#: showback does.
DIMENSIONS: dict[str, tuple[str, str]] = {
    "total": ("'Total'", "Total"),
    "provider": ("ProviderName", "Provider"),
    "service_category": ("ServiceCategory", "Service category"),
    "service": ("ServiceName", "Service"),
    "account": ("coalesce(SubAccountName, SubAccountId)", "Account"),
    "region": ("coalesce(RegionName, RegionId)", "Region"),
    "team": (None, "Team"),
    "project": (None, "Project"),
    "env": (None, "Environment"),
    "ai": ("CASE WHEN x_AiWorkload IS NULL THEN 'Non-AI' ELSE 'AI' END", "AI vs non-AI"),
    "ai_workload": ("coalesce(x_AiWorkload, 'Non-AI')", "AI workload"),
    "usage_type": ("x_UsageType", "Usage type"),
    "instance_type": ("x_InstanceType", "Instance type"),
    "charge_category": ("ChargeCategory", "Charge category"),
    "pricing_category": ("PricingCategory", "Pricing category"),
}


def scoped(con: duckdb.DuckDBPyConnection, scope: Any = None) -> Any:
    """The resolved :class:`~finops_kit.scope.Scope` of a time-series analysis (``None``: the whole warehouse).

    Forecasts, budgets and anomaly detection read the scope's providers, accounts and currency over *every*
    period (history before the scope's start is the model's training data); the scope's period sets the 'as of'
    (:func:`last_day`).
    """
    from .scope import bind

    return bind(con, scope)


def dimension_sql(dimension: str, scope: Any = None) -> str:
    """SQL for a dimension's value with NULLs labelled, so that untagged cost stays visible as its own line."""
    expr = DIMENSIONS[dimension][0] if dimension in DIMENSIONS else None
    if expr is not None:
        return f"coalesce(CAST({expr} AS VARCHAR), '(none)')"
    if scope is not None and dimension in scope.attribution.policy.keys:
        return scope.attribution.dimension_sql(dimension)
    if dimension in DIMENSIONS:
        raise ConfigError(f"dimension {dimension!r} is a tag: it needs a resolved scope (finops_kit.scope)"
                          if scope is None else f"dimension {dimension!r}: not a key of tag_policy in finops.yaml")
    raise ConfigError(f"unknown dimension {dimension!r}; expected one of {', '.join(DIMENSIONS)}")


#: The other spelling a budget's or roadmap item's key may name a value by: an account by its id (FOCUS SubAccountId)
#: as well as by its name (the ``account`` dimension's value, SubAccountName where there is one), as ``-p
#: sub_accounts`` takes either. Why: a budget on ``account: '210987654321'`` (acme-ml-prod's id) read "matches no
#: charges", the demo's account values being names. Which charges such a value selects is
#: :func:`finops_kit.scope.account_match_sql`'s (the name first: an id that is another account's name is that
#: account), for budgets (:func:`filter_sql`) and scopes alike.
VALUE_ALIASES: dict[str, str] = {"account": "SubAccountId"}


def filter_sql(filters: dict[str, Any] | None, scope: Any = None, columns: dict[str, str] | None = None) -> str:
    """AND-ed equality filters {dimension: value or [values]} as a SQL predicate; a value may be spelled as the
    dimension's :data:`VALUE_ALIASES` column holds it (an account by its id): an account key matches as ``-p
    sub_accounts`` does (:func:`finops_kit.scope.account_match_sql`: the name first, an id unless it is another
    account's name), so a budget and a scope naming the same account count the same charges. ``columns``: a
    dimension's value computed already, by the column that holds it (:func:`_filtered_rows`)."""
    from .scope import account_match_sql

    parts = ["TRUE"]
    for dim, val in (filters or {}).items():
        vals = val if isinstance(val, list | tuple | set) else [val]
        value = (columns or {}).get(dim) or dimension_sql(dim, scope)
        if dim == "account":
            parts.append(account_match_sql([str(v) for v in vals], value))
        else:
            lits = ", ".join("'" + str(v).replace("'", "''") + "'" for v in vals)
            parts.append(f"{value} IN ({lits})")
    return " AND ".join(parts)


#: Which charges a daily series holds. Unused commitment rows are Usage-Based in FOCUS, but they are booked once
#: a month (on the 1st) for what a commitment did not cover: they behave like recurring fees, so they are carried
#: forward with them and kept out of usage forecasts and anomaly detection (commitment utilization is its own topic).
_UNUSED = "coalesce(CommitmentDiscountStatus, '') = 'Unused'"
CHARGES = {
    "usage": f"coalesce(ChargeFrequency, 'Usage-Based') = 'Usage-Based' AND NOT {_UNUSED}",
    "recurring": f"(ChargeFrequency = 'Recurring' OR {_UNUSED})",
    "one_time": "ChargeFrequency = 'One-Time'",
    "all": "TRUE",
}


def _day(d: date | str | pd.Timestamp | None) -> date | None:
    if d is None or d == "":
        return None
    try:
        return pd.Timestamp(d).date()
    except (ValueError, TypeError):
        raise ConfigError(f"invalid date {d!r}; expected YYYY-MM-DD") from None


def _exact_frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run ``sql`` and keep DECIMAL columns as ``decimal.Decimal`` (``.df()`` would turn them into floats).

    Through the query cache (:mod:`finops_kit.querycache`): the forecast report asks 43 distinct aggregates 75
    times (budget status again for the alerts; every budget's figures in one query per kind), a re-run all of them
    again. Arrow gives the values and dtypes the
    rows would (Decimal, date, str, int; checked on every query of the forecast report) except for a column
    typed DECIMAL(38,0), which is also how DuckDB hands over a HUGEINT (an int in the rows): such a result is
    read as rows instead."""
    import pyarrow as pa

    from .querycache import arrow

    table = arrow(con, sql)
    if any(pa.types.is_decimal(f.type) and f.type.scale == 0 for f in table.schema):
        cur = con.execute(sql)
        return pd.DataFrame.from_records(cur.fetchall(), columns=[d[0] for d in cur.description])
    if table.num_rows == 0:  # as the rows give an empty result: no dtypes
        return pd.DataFrame(columns=table.column_names)
    return table.to_pandas()


def last_day(con: duckdb.DuckDBPyConnection, scope: Any = None) -> date | None:
    """The last day with any charge in the scope (the whole warehouse without a scope). An analysis's 'as of' is
    :func:`as_of_day`, which does not go past the data any provider has delivered."""
    src = scope.rows_sql() if scope is not None else FOCUS_TABLE
    row = con.execute(f"SELECT max(CAST(ChargePeriodStart AS DATE)) FROM {src}").fetchall()[0]  # fetch fully:
    # DuckDB keeps a result open after fetchone() and the connection's next relation query would fail
    return row[0] if row else None


def data_through(con: duckdb.DuckDBPyConnection, scope: Any = None,
                 filters: dict[str, Any] | None = None) -> date | None:
    """The last day whose spend the scope's data holds for every provider still delivering it: the earliest, over
    those providers, of the last whole day of their daily or hourly usage rows (the last day with any charge where
    a provider has none). A provider whose data ends more than :data:`~finops_kit.scope.LATE_DELIVERY_DAYS` before
    the latest provider's has stopped (left for another cloud), it is not late: it holds nobody back. With
    ``filters``, only the providers with the filtered charges in that window count.

    Why: exports arrive late -- AWS rewrites the month's CUR about once a day, Azure's export often runs a day or
    two behind AWS. A day after a provider's last delivered day is unknown, not $0: read as $0 it pulled a forecast
    below the money already spent (a negative daily baseline) and silenced the budget alert. A day whose hourly
    rows stop before midnight is not whole (GCP rows to 05:00 UTC), so the day before it is the last one.
    """
    return data_through_many(con, scope, [filters])[0]


def _filtered_rows(sc: Any, filters: list[dict[str, Any] | None], source: str, where: str = "TRUE"
                   ) -> tuple[str, list[str]]:
    """A FROM item of ``source``'s rows (``where``) with each dimension the ``filters`` name computed once per row
    (a column ``_fk_dim_N``), and each filter's predicate over it (:func:`filter_sql`). Why: a batched query with a
    filter per budget evaluated the team's attribution (tags, shared rules) once per budget and row: 3.5 times the
    cost of one budget's query instead of about one."""
    dims = list(dict.fromkeys(d for f in filters for d in (f or {})))
    cols = {d: f"_fk_dim_{i}" for i, d in enumerate(dims)}
    extra = "".join(f", {dimension_sql(d, sc)} AS {cols[d]}" for d in dims)
    return (f"(SELECT *{extra} FROM {source} WHERE {where})",
            [filter_sql(f, sc, cols) for f in filters])


def data_through_many(con: duckdb.DuckDBPyConnection, scope: Any, filters: list[dict[str, Any] | None]
                      ) -> list[date | None]:
    """:func:`data_through` for each of ``filters`` (one per budget), from one query: each provider's last whole
    day is the same for all of them, only the day its filtered charges last touched differs (one column each).
    Why: budget status asked it once per budget (and the alerts again), 14 queries of the forecast report that each
    scanned the scope for the providers' last whole day. A one-item list runs the query :func:`data_through` runs."""
    from .scope import LAST_WHOLE_DAY, LATE_DELIVERY_DAYS

    if not filters:
        return []
    sc = scoped(con, scope)
    if len(filters) == 1:
        rows, preds = sc.rows_sql(), [filter_sql(filters[0], sc)]
    else:
        rows, preds = _filtered_rows(sc, filters, sc.rows_sql())
    touched = ", ".join(f"max(CAST(ChargePeriodStart AS DATE)) FILTER (WHERE {p}) AS touched_{i}"
                        for i, p in enumerate(preds))
    days = ", ".join(f"coalesce(min(last) FILTER (WHERE touched_{i} >= last - INTERVAL {LATE_DELIVERY_DAYS} DAY), "
                     f"min(last)) AS day_{i}" for i in range(len(filters)))
    # through the query cache: budget status asks it, each budget's forecast and the alerts again
    row = _exact_frame(con, f"""
        WITH p AS (
          SELECT ProviderName, {LAST_WHOLE_DAY} AS last, {touched}
          FROM {rows} GROUP BY ALL),
        a AS (SELECT * FROM p WHERE last >= (SELECT max(last) FROM p) - INTERVAL {LATE_DELIVERY_DAYS} DAY)
        SELECT {days}
        FROM a
        """)
    values = [row[f"day_{i}"].iloc[0] if len(row) else None for i in range(len(filters))]
    return [None if v is None or pd.isna(v) else pd.Timestamp(v).date() for v in values]


def data_through_note(asked: date | None, as_of: date) -> str:
    """What a forecast or budget row says when its 'as of' is earlier than the day asked (:func:`as_of_day`);
    empty when it is not."""
    if asked is None or as_of >= asked:
        return ""
    return f"data through {as_of} (as of {asked} was asked): the days after it are forecast, not counted as $0"


def as_of_day(con: duckdb.DuckDBPyConnection, scope: Any = None, as_of: date | str | None = None,
              filters: dict[str, Any] | None = None) -> date | None:
    """The 'as of' day of a forecast, budget, alert or anomaly scan: the day asked for, but never after
    :func:`data_through` (a day not delivered yet is forecast, not counted as $0); without one, that day."""
    return as_of_days(con, scope, as_of, [filters])[0]


def as_of_days(con: duckdb.DuckDBPyConnection, scope: Any, as_of: date | str | None,
               filters: list[dict[str, Any] | None]) -> list[date | None]:
    """:func:`as_of_day` for each of ``filters``, from one query (:func:`data_through_many`)."""
    asked = _day(as_of)
    return [asked or through if asked is None or through is None else min(asked, through)
            for through in data_through_many(con, scope, filters)]


def daily_series(con: duckdb.DuckDBPyConnection, dimension: str = "total", *, start: date | str | None = None,
                 end: date | str | None = None, filters: dict[str, Any] | None = None, charges: str = "usage",
                 top: int | None = None, scope: Any = None) -> pd.DataFrame:
    """Daily EffectiveCost per value of ``dimension`` in [start, end] (inclusive), zero-filled, long format.

    Columns: ``day`` (datetime64), ``value`` (dimension value), ``cost`` (Decimal, exact), ``y`` (float, for
    models). Aggregation runs in DuckDB; only days × values come back. ``top`` keeps the N largest values and
    folds the rest into "(other)" -- when the rest is two values or more: "(other)" standing for one value would
    hide its name and save no line.
    """
    return daily_series_many(con, dimension, [filters], start=start, end=end, charges=charges, top=top,
                             scope=scope)[0]


def _by_filter(con: duckdb.DuckDBPyConnection, sc: Any, filters: list[dict[str, Any] | None], select: str,
               where: str) -> list[pd.DataFrame]:
    """``SELECT {select} ... WHERE {where} GROUP BY ALL`` over the scope's rows once per item of ``filters``, as one
    query: each row is counted once for every filter that selects it (``_k``, its index), grouped by it too, and the
    result split per filter -- the frames the per-filter queries give (an empty frame with the columns where a
    filter selects no row). Why: budget status ran each of its aggregates once per budget (and the alerts again):
    the forecast report's 87 small queries. A one-item list runs the plain query, without ``_k``."""
    if len(filters) == 1:
        return [_exact_frame(con, f"""
        SELECT {select}
        FROM {sc.rows_sql(period=False)} WHERE {filter_sql(filters[0], sc)} AND {where} GROUP BY ALL
    """)]
    source, preds = _filtered_rows(sc, filters, sc.rows_sql(period=False), where)
    tags = ", ".join(f"CASE WHEN {p} THEN {i} END" for i, p in enumerate(preds))
    rows = _exact_frame(con, f"""
        SELECT _k, {select}
        FROM (SELECT *, unnest(list_filter([{tags}], lambda k: k IS NOT NULL)) AS _k FROM {source})
        GROUP BY ALL
    """)
    cols = [c for c in rows.columns if c != "_k"]
    parts = {k: g[cols].reset_index(drop=True) for k, g in rows.groupby("_k", sort=False)} if len(rows) else {}
    return [parts.get(i, pd.DataFrame(columns=cols)) for i in range(len(filters))]


def daily_series_many(con: duckdb.DuckDBPyConnection, dimension: str, filters: list[dict[str, Any] | None], *,
                      start: date | str | None = None, end: date | str | None = None, charges: str = "usage",
                      top: int | None = None, scope: Any = None) -> list[pd.DataFrame]:
    """:func:`daily_series` for each of ``filters`` (one per budget), from one query (:func:`_by_filter`)."""
    if charges not in CHARGES:
        raise ConfigError(f"charges={charges!r}; expected one of {', '.join(CHARGES)}")
    sc = scoped(con, scope)
    dim = dimension_sql(dimension, sc)
    s, e = _day(start), _day(end)
    where = [CHARGES[charges]]
    if s:
        where.append(f"ChargePeriodStart >= DATE '{s}'")
    if e:
        where.append(f"ChargePeriodStart < DATE '{e}' + INTERVAL 1 DAY")
    aggs = _by_filter(con, sc, filters, f"CAST(ChargePeriodStart AS DATE) AS day, {dim} AS value, "
                      "sum(EffectiveCost) AS cost", " AND ".join(where))
    return [_daily_frame(agg, s, e, top) for agg in aggs]


def _daily_frame(agg: pd.DataFrame, s: date | None, e: date | None, top: int | None) -> pd.DataFrame:
    """The daily aggregate (day, value, cost) as :func:`daily_series` returns it: top values, zero-filled."""
    if agg.empty:
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "value": pd.Series(dtype=object),
                             "cost": pd.Series(dtype=object), "y": pd.Series(dtype=float)})
    agg["day"] = pd.to_datetime(agg["day"])
    agg["cost"] = agg["cost"].map(lambda v: Decimal(0) if v is None else v)
    if top is not None:
        totals = agg.groupby("value")["cost"].sum().sort_values(ascending=False)
        keep = set(totals.index[:top])
        if len(totals) > top + 1:
            agg["value"] = agg["value"].where(agg["value"].isin(keep), "(other)")
            agg = agg.groupby(["day", "value"], as_index=False)["cost"].sum()
    first = pd.Timestamp(s) if s else agg["day"].min()
    last = pd.Timestamp(e) if e else agg["day"].max()
    days = pd.date_range(first, last, freq="D")
    values = sorted(agg["value"].unique())
    grid = pd.MultiIndex.from_product([days, values], names=["day", "value"])
    # each (day, value) of the aggregate put at its place in the grid (day-major, as the product is), $0 elsewhere:
    # what reindexing the aggregate on the grid gives, without hashing a MultiIndex per series (50 series a report)
    d, v = days.get_indexer(agg["day"]), pd.Index(values).get_indexer(agg["value"])
    inside = (d >= 0) & (v >= 0)
    cost = np.full(len(grid), Decimal(0), dtype=object)
    cost[d[inside] * len(values) + v[inside]] = [
        Decimal(0) if c is None or (isinstance(c, float) and math.isnan(c)) else c
        for c in agg["cost"].to_numpy(dtype=object)[inside]]
    out = pd.Series(cost, index=grid, name="cost").reset_index()
    out["y"] = out["cost"].astype(float)
    return out


# --------------------------------------------------------------------------------------------------- models
def _z(level: float) -> float:
    """The standard normal quantile of a two-sided ``level`` % interval. The standard library's (Wichura's AS241,
    as scipy's, equal to 1e-15): a re-run whose fits come from the cache then never imports ``scipy.stats``
    (0.9 s of a report kernel) for the seasonal-naive baseline's intervals."""
    return NormalDist().inv_cdf(0.5 + level / 200)


def _check_level(level: float) -> float:
    level = float(level)
    if not 50 <= level < 100:
        raise ConfigError(f"interval level {level}: expected a percentage between 50 and 99 (80 or 95)")
    return level


@dataclass
class ModelForecast:
    """Point forecast, interval and simulated paths for the next ``h`` days of one series."""

    model: str
    mean: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lo, hi)
    paths: np.ndarray  # (h, reps) sample paths for totals over the horizon
    #: how far the model's own intervals were widened by :func:`calibrate_intervals` at the requested level
    #: (mean factor over the daily intervals, factor of the period-total paths; 1.0 = not widened) and on how
    #: many held-out days; ``held_out_days`` 0 = not calibrated (history too short, or ``calibrate=False``)
    daily_factor: float = 1.0
    total_factor: float = 1.0
    held_out_days: int = 0
    #: the held-out evidence on period totals (:func:`held_out_window_errors`): how many non-overlapping windows of
    #: the forecast's length the held-out days hold, and the mean absolute % error of their totals (NaN: none)
    held_out_windows: int = 0
    held_out_total_error_pct: float = float("nan")
    #: the estimated parameters (SARIMA; None for the other models): where the next backtest origin's SARIMA
    #: optimizer starts (:func:`finops_kit.backtest.backtest`)
    params: np.ndarray | None = None

    def lo(self, level: float) -> np.ndarray:
        return self.intervals[float(level)][0]

    def hi(self, level: float) -> np.ndarray:
        return self.intervals[float(level)][1]


#: Origins skipped at the start of a history (the states still carry their initial values there) and the fewest
#: realised errors a calibration factor is estimated from.
_BURN_IN = 2 * SEASON
_MIN_ERRORS = 30
#: Fewest days the held-out calibration fit is estimated on (8 weeks).
_MIN_FIT = 56


def _origin_errors(y: np.ndarray, forecasts: np.ndarray, first: int = _BURN_IN) -> np.ndarray:
    """Realised errors ``y[t + k] - forecasts[i, k - 1]`` of forecasts made at origins ``t = first + i``.

    NaN where ``t + k`` lies beyond the history.
    """
    n_orig, kmax = forecasts.shape
    idx = np.arange(first, first + n_orig)[:, None] + np.arange(1, kmax + 1)[None, :]
    ok = idx < len(y)
    actual = np.where(ok, y[np.minimum(idx, len(y) - 1)], np.nan)
    return actual - forecasts


def held_out_window_errors(y: np.ndarray, errors: np.ndarray, first: int) -> list[float]:
    """Absolute % errors of the totals of non-overlapping windows of ``h`` days (``errors``' width), forecast from
    held-out origins ``first``, ``first + h``, ... (``errors`` row i is the origin ``first + i``, as
    :func:`held_out_errors` returns them); windows whose actual total is 0 are skipped.

    Why: the trust grade needs evidence on period totals that the backtest's two windows cannot give (a week
    apart, 28-day windows share 21 days). The held-out fit forecasts from every origin after the cut at the cost
    of one filter pass; windows that do not overlap turn that into independent totals: 7 of 28 days at a year of
    history, 1 at 16 weeks (55 held-out days), 2 of 90 days at a year."""
    y = np.asarray(y, float)
    h = errors.shape[1]
    out = []
    for i in range(0, errors.shape[0], max(h, 1)):
        e = errors[i, :h]
        if len(e) < h or not np.all(np.isfinite(e)):
            break
        actual = float(y[first + i + 1:first + i + 1 + h].sum())
        if actual != 0:
            out.append(100 * abs(float(e.sum())) / abs(actual))
    return out


def calibrate_intervals(fc: ModelForecast, errors: np.ndarray, level: float, share: float = 1.0,
                        total_share: float = 1.0) -> ModelForecast:
    """Widen ``fc``'s daily intervals and period-total paths to the errors the model made on held-out data.

    Why: a model's intervals treat its estimated parameters as known. On a trending series that understates the
    error, and the error of a period *total* -- a sum of correlated daily errors, most exposed to a misestimated
    trend -- most of all (simulated correctly specified ETS, 16-week histories: nominal 80% intervals covered ~72%
    of days and ~70% of 28-day totals; ``python -m benchmarks forecast-calibration``). The errors of the final
    model at past origins do not show this (its parameters were chosen on those very days: measured 0.94-1.14x
    its own widths), and refitting per origin or per simulated path is too slow for a report of many series. So
    :func:`held_out_errors` fits the model once more on the first half of the history, runs that model's filter
    over the whole history and returns ``errors`` (origins after the cut x steps ahead): forecasts whose
    parameters never saw the days they are scored on, made from every origin at the cost of one filter pass.

    Rules: the daily interval at step k is scaled by the ratio of the empirical ``lv``-quantile of |error| at
    steps k-3..k+3 to the model's half-width at k, per level; the sample paths are scaled around the mean by
    the same ratio for the sum over the horizon (at the requested ``level``), so period totals and breach
    probabilities inherit it. Steps with fewer than ``_MIN_ERRORS`` realised errors reuse the last estimated
    factor. Intervals are only ever widened (a factor below 1 counts as 1).

    Only a ``share`` of the excess variance ``factor^2 - 1`` is kept for the daily intervals, ``total_share`` for
    the totals. :func:`fit_forecast` passes ``share`` = the part of the history the held-out parameters were
    estimated on (one half): their estimation error is larger than the final model's by about 1/share (the
    variance of an estimate falls with the sample size). The totals keep all of it (``total_share`` 1): a
    total's factor rests on a few effectively independent windows (held-out days / horizon: 2 at 16 weeks of
    history, 6-7 at a year), so it is noisy from series to series, and noise in a widening factor lowers the
    average coverage. Measured (benchmark, 250 series per case, 28-day totals, nominal 80%): with the half
    share the totals covered 70-73% at 16 weeks of history and 82-83% at a year; with all of it 76-78% and
    82-86%; the daily intervals 79-81% with the half share and 82-83% with all of it.
    """
    h = len(fc.mean)
    counts = np.sum(np.isfinite(errors), axis=0)
    steps = min(int(np.sum(counts >= _MIN_ERRORS)), h)  # steps with enough realised errors (counts fall with k)
    if steps == 0:
        return fc
    intervals, daily_factor = {}, 1.0
    # the empirical quantiles of |error| at steps k-3..k+3, every level's from one pass over each window (the
    # same values as one np.nanquantile per level and step)
    levels = list(fc.intervals)
    err = np.abs(errors[:, :steps])
    quant = np.array([np.nanquantile(err[:, max(0, k - 3):k + 4], [lv / 100 for lv in levels]) for k in range(steps)])
    for i, (lv, (lo, hi)) in enumerate(fc.intervals.items()):
        half = (hi - lo) / 2
        factor = np.ones(h)
        for k in range(steps):
            factor[k] = quant[k, i] / half[k] if half[k] > 0 else 1.0
        factor[steps:] = factor[steps - 1]
        factor = np.sqrt(1.0 + share * np.maximum(factor**2 - 1.0, 0.0))
        intervals[lv] = (fc.mean - factor * (fc.mean - lo), fc.mean + factor * (hi - fc.mean))
        if lv == level:
            daily_factor = float(np.mean(factor))
    paths, total_factor = fc.paths, 1.0
    if paths.shape[1] > 1:
        cum = errors[:, :steps].sum(axis=1)
        cum = np.abs(cum[np.isfinite(cum)])
        model = np.abs(paths[:steps].sum(axis=0) - fc.mean[:steps].sum())
        m_q = float(np.quantile(model, level / 100))
        if len(cum) >= _MIN_ERRORS and m_q > 0:
            c = float(np.quantile(cum, level / 100)) / m_q
            total_factor = math.sqrt(1.0 + total_share * max(c * c - 1.0, 0.0))
            paths = fc.mean[:, None] + total_factor * (paths - fc.mean[:, None])
    return ModelForecast(fc.model, fc.mean, intervals, paths, daily_factor, total_factor, int(counts[0]),
                         fc.held_out_windows, fc.held_out_total_error_pct, fc.params)


#: The held-out fit estimates on whole blocks of this many days (see :func:`_held_out_cut`).
_HELD_OUT_BLOCK = 4 * SEASON


def _held_out_cut(n: int) -> int | None:
    """Where :func:`held_out_errors` splits a history of ``n`` days: the first half, rounded down to whole 4-week
    blocks, estimates the parameters; None when the history is too short to spare the data (< 16 weeks).

    Why blocks: the backtest forecasts from origins a week apart and then from the last day (histories of n - 14,
    n - 7 and n days of one series); split at the same day, all of them hold out after the same first ``cut`` days
    and share one held-out fit (:func:`_held_out_params`) instead of estimating three on nearly the same data. At
    16 weeks (the shortest history calibrated) the cut is the exact half, at a year 168 of 365 days."""
    cut = _HELD_OUT_BLOCK * (n // (2 * _HELD_OUT_BLOCK))
    return None if cut < _MIN_FIT or n - cut < _MIN_ERRORS + 1 else cut


def _held_out_params(y: np.ndarray, model: str) -> np.ndarray | None:
    """ETS or SARIMA parameters estimated on the first :func:`_held_out_cut` days of ``y`` (the held-out fit of
    :func:`held_out_errors`), or None when the history is too short. A pure function of those days and the model:
    kept in this process for the next series that starts with the same days (unless the fit cache is off, when
    every result is computed)."""
    cut = _held_out_cut(len(y))
    if cut is None:
        return None
    from . import fitcache

    days = np.ascontiguousarray(y[:cut], dtype=np.float64).tobytes()
    fit = _held_out_fit if fitcache.folder() is not None else _held_out_fit.__wrapped__
    return fit(model, days).copy()  # a copy: the kept array is shared


@functools.lru_cache(maxsize=64)
def _held_out_fit(model: str, days: bytes) -> np.ndarray:
    y = np.frombuffer(days, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "ets":
            params = _ets_model(y).fit(disp=False, maxiter=200, return_params=True)
        else:
            params = _sarimax_estimate(y)
    return np.asarray(params, dtype=float)


def held_out_errors(y: np.ndarray, model: str, h: int, *,
                    params: np.ndarray | None = None) -> tuple[np.ndarray, float] | None:
    """Errors of forecasts 1..``h`` days ahead from past origins, by a model that did not see those days, and
    the share of the history that model was estimated on (see :func:`calibrate_intervals`).

    ETS/SARIMAX: parameters estimated on the first half of ``y`` (in whole 4-week blocks, :func:`_held_out_cut`;
    ``params`` when the caller has them already), the whole series filtered with them, errors from every origin
    after the cut. Seasonal naive estimates nothing: its errors from every origin after a two-week burn-in,
    share 1. None when the history is too short to spare the data (< 16 weeks for a model
    with parameters): the model's own intervals are then used.
    """
    y = np.asarray(y, dtype=float)
    if model == "seasonal_naive":
        # from origin t the forecast of t + k is the same weekday's value in the last week up to t
        t = np.arange(_BURN_IN, len(y) - 1)[:, None]
        return _origin_errors(y, y[t - SEASON + 1 + np.arange(h)[None, :] % SEASON]), 1.0
    cut = _held_out_cut(len(y))
    if cut is None:
        return None
    # Only the held-out parameters and the filtered states are used: no results object is built for the held-out
    # fit and none with a parameter covariance for the filter pass (statsmodels computes one by numerical
    # differentiation, several likelihood evaluations each, for standard errors nothing here reads). The same
    # optimizer from the same start, so the same parameters and errors to the last bit.
    if params is None:  # the held-out parameters, unless the caller has them already (the same estimate)
        params = _held_out_params(y, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if model == "ets":
            full = _ets_model(y)
            phi = float(params[full.param_names.index("damping_trend")])
            forecasts = _ets_origin_forecasts(full.smooth(params, return_raw=True)[1], phi, h, cut)
        else:
            forecasts = _state_space_origin_forecasts(_sarimax_model(y).filter(params, cov_type="none"), h, cut)
    return _origin_errors(y, forecasts, cut), cut / len(y)


def _seasonal_naive(y: np.ndarray, h: int, levels: tuple[float, ...], reps: int,
                    rng: np.random.Generator) -> ModelForecast:
    m = SEASON
    last = y[-m:]
    mean = np.array([last[i % m] for i in range(h)], dtype=float)
    resid = y[m:] - y[:-m]
    sigma = float(np.sqrt(np.mean(resid**2))) if len(resid) else 0.0
    k = np.arange(h) // m + 1  # seasons ahead: the error accumulates like a random walk per weekday
    sd = sigma * np.sqrt(k)
    n_seasons = int(k.max())
    noise = rng.normal(0.0, sigma, size=(reps, n_seasons, m)).cumsum(axis=1).reshape(reps, -1)[:, :h]
    intervals = {lv: (mean - _z(lv) * sd, mean + _z(lv) * sd) for lv in levels}
    return ModelForecast("seasonal_naive", mean, intervals, mean[:, None] + noise.T)


def _ets(y: np.ndarray, h: int, levels: tuple[float, ...], reps: int, seed: int) -> ModelForecast:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = _ets_model(y).fit(disp=False, maxiter=200)
        pred = fit.get_prediction(start=len(y), end=len(y) + h - 1)
        intervals = {}
        for lv in levels:
            sf = pred.summary_frame(alpha=1 - lv / 100)
            intervals[lv] = (sf["pi_lower"].to_numpy(), sf["pi_upper"].to_numpy())
        paths = fit.simulate(h, repetitions=reps, anchor="end", rng=np.random.default_rng(seed))
    return ModelForecast("ets", np.asarray(pred.predicted_mean, dtype=float), intervals,
                         np.asarray(paths, dtype=float).reshape(h, reps))


def _ets_model(y: np.ndarray) -> Any:
    """ETS(A,Ad,A) with heuristic initial states (level, trend and the weekly pattern from the first weeks, as
    Hyndman et al. 2008, 2.6.1), the four smoothing and damping parameters estimated.

    Why not estimate the 9 initial states by maximum likelihood too (statsmodels' default): on the demo's six
    team series, 12 backtests each, those 13-parameter fits stopped unconverged at 200 iterations 10 times in 72,
    landed on optimizers' local optima, and took 5.9x the CPU (5.3 vs 0.9 s) for the same accuracy (MASE 0.792 vs
    0.787, 7-day total error 4.20% vs 4.44%). The calibration benchmark's calibrated intervals hold as before
    (80%: 78.5-80.8% of days, 75.6-82.8% of 28-day totals), the model's own are less narrow."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    return ETSModel(pd.Series(y), error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=SEASON,
                    initialization_method="heuristic")


def _ets_origin_forecasts(states: Any, phi: float, h: int, first: int = _BURN_IN) -> np.ndarray:
    """Forecasts 1..h steps ahead from every past origin t >= ``first`` with the fitted parameters.

    ETS(A,Ad,A) from the states after observing day t (``states``: level, trend and seasonal per day, as
    ``ETSModel.smooth(params)`` gives them; ``phi`` the damping parameter): level + (phi + ... + phi^k) * trend +
    the seasonal state of the same weekday in the last season, exactly what ``fit.forecast`` does from the last
    day.
    """
    states = np.asarray(states, dtype=float)
    damp = np.cumsum(phi ** np.arange(1, h + 1))
    t = np.arange(first, len(states) - 1)[:, None]
    k = np.arange(h)[None, :]
    return states[t, 0] + damp[None, :] * states[t, 1] + states[t - SEASON + 1 + k % SEASON, 2]


def _sarimax_model(y: np.ndarray) -> Any:
    """SARIMA(1,1,1)(0,1,1)7 with the error variance concentrated out of the likelihood (Harvey 1989, 3.4): the
    same maximum-likelihood model, its variance computed in closed form from the filter instead of searched for.
    Why: the optimizer's numerical gradient then costs 4 likelihood evaluations instead of 5 and it converges in
    fewer steps -- the fits take half the time (a year of 6 team series: 3.2 -> 1.7 s), forecasts within 0.1%
    (the optimizer's tolerance on a flat likelihood)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    return SARIMAX(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, SEASON), concentrate_scale=True)


def _sarimax_estimate(y: np.ndarray, start_params: np.ndarray | None = None) -> np.ndarray:
    """Maximum-likelihood parameters of :func:`_sarimax_model` on ``y`` (``start_params``: where the optimizer
    starts, statsmodels' own start values when None), estimated on the differenced series.

    Why: :func:`_sarimax_model` carries the differencing ``(1 - B)(1 - B^7)`` in 8 of its 17 states, with an
    approximate diffuse start (variance 1e6) that leaves the first 8 days out of the likelihood. That likelihood is
    the likelihood of the differenced series up to O(1e-6) (the diffuse likelihood of an ARIMA is the differenced
    series', Ansley and Kohn 1985), which ``simple_differencing`` filters with the 9 ARMA states only: each
    likelihood evaluation costs about 0.6x, the same parameters. Measured on the demo's 8 series x 3 fits and their
    held-out fits: parameters within 1e-6 (log-likelihood within 1e-8) except where the likelihood is flat at the
    invertibility boundary (an MA coefficient at -0.997 or more: up to 3e-3, the optimizer's tolerance there) and
    one backtest fit the 17-state optimizer had left on a worse local optimum (log-likelihood 1.9 higher here).
    Forecasting, intervals, paths and the held-out errors still run the 17-state model with these parameters."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    model = SARIMAX(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, SEASON), concentrate_scale=True,
                    simple_differencing=True)
    return np.asarray(model.fit(start_params=start_params, disp=False, maxiter=100, return_params=True), dtype=float)


def _sarimax(y: np.ndarray, h: int, levels: tuple[float, ...], reps: int, seed: int,
             start_params: np.ndarray | None = None) -> ModelForecast:
    """SARIMA forecast of ``h`` days. ``start_params``: where the optimizer starts (statsmodels' own start values
    when None); :func:`_fit_forecast` passes the held-out fit's parameters, which it needs anyway."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the estimated parameters, then one filter pass with them: forecasts and paths start from the filtered
        # state at the last day, so neither the smoother nor the parameter covariance (numerical derivatives)
        # that ``fit`` would add are read -- the same numbers without them
        params = _sarimax_estimate(y, start_params)
        fit = _sarimax_model(y).filter(params, cov_type="none")
        fc = fit.get_forecast(h)
        intervals = {}
        for lv in levels:
            ci = np.asarray(fc.conf_int(alpha=1 - lv / 100))
            intervals[lv] = (ci[:, 0], ci[:, 1])
        paths = _state_space_paths(fit, h, reps, np.random.default_rng(seed))
    return ModelForecast("sarimax", np.asarray(fc.predicted_mean), intervals, paths, params=params)


def _state_space_paths(fit: Any, h: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` sample paths of the next ``h`` days, (h, reps): what ``fit.simulate(h, repetitions=reps,
    anchor="end", rng=rng)`` returns, to 1e-15 relative, all repetitions at once.

    Why: statsmodels simulates one repetition after another, a Python loop over a simulation smoother (13 ms of
    a 200-path simulation of 7 days, a fifth of a SARIMA forecast's time). The same draws from ``rng`` in the same
    order -- the initial states of every path from N(a, P) of the last predicted state, then per path its h
    measurement variates and its h state variates -- through the same recursion y_t = d + Z a_t + chol(H) e_t,
    a_t+1 = c + T a_t + R chol(Q) n_t, with the filter results' system matrices (time-invariant; their covariances
    already carry the concentrated scale). ``test_sarima_paths_are_statsmodels_simulated_paths`` compares."""
    fr = fit.filter_results
    k_endog, k_posdef = fr.k_endog, fr.k_posdef
    a = rng.multivariate_normal(fit.predicted_state[:, -1], fit.predicted_state_cov[:, :, -1], size=reps).T
    v = rng.normal(size=(reps, h * (k_endog + k_posdef)))
    eps = v[:, :h * k_endog].reshape(reps, h, k_endog)
    eta = v[:, h * k_endog:].reshape(reps, h, k_posdef)
    c_h, c_q = (np.linalg.cholesky(m) if np.any(m) else m for m in (fr.obs_cov[:, :, 0], fr.state_cov[:, :, 0]))
    design, obs_icpt = fr.design[:, :, 0], fr.obs_intercept[:, 0][:, None]
    trans, st_icpt, sel = fr.transition[:, :, 0], fr.state_intercept[:, 0][:, None], fr.selection[:, :, 0]
    out = np.empty((h, reps))
    for t in range(h):
        out[t] = (obs_icpt + design @ a + c_h @ eps[:, t, :].T)[0]
        a = st_icpt + trans @ a + sel @ (c_q @ eta[:, t, :].T)
    return out


def _state_space_origin_forecasts(fit: Any, h: int, first: int = _BURN_IN) -> np.ndarray:
    """Forecasts 1..h steps ahead from every past origin t >= ``first`` with the fitted parameters.

    From the Kalman filter's one-step predicted states a(t+1|t): y(t+k|t) = Z T^(k-1) a(t+1|t) + d (time-
    invariant system matrices), the same recursion ``get_forecast`` runs from the last day.
    """
    fr = fit.filter_results
    design, obs_icpt = fr.design[:, :, 0], float(fr.obs_intercept[0, 0])
    trans, st_icpt = fr.transition[:, :, 0], fr.state_intercept[:, 0][:, None]
    a = np.asarray(fr.predicted_state)[:, first + 1:fr.nobs]
    out = np.empty((a.shape[1], h))
    for k in range(h):
        out[:, k] = (design @ a)[0] + obs_icpt
        a = trans @ a + st_icpt
    return out


def _finite(fc: ModelForecast) -> bool:
    return bool(np.all(np.isfinite(fc.mean)) and all(np.all(np.isfinite(b)) for lh in fc.intervals.values()
                                                     for b in lh))


def fit_forecast(y: np.ndarray | pd.Series, h: int, model: str = "ets", level: float = 80, *, reps: int = 500,
                 seed: int = 7, paths: bool = True, calibrate: bool = True,
                 start: np.ndarray | None = None) -> ModelForecast:
    """Forecast ``h`` days after the daily series ``y`` with one model, with intervals at ``level`` and at the
    80%/95% levels a report toggles between. ETS/SARIMAX failures fall back to the seasonal-naive baseline (a
    flat or all-zero series has nothing for them to fit).

    The intervals and sample paths are calibrated on held-out errors (:func:`held_out_errors`,
    :func:`calibrate_intervals`); ``calibrate=False`` returns the model's own, which assume its estimated
    parameters are the true ones (kept for the calibration benchmark). A failed calibration fit leaves the
    model's own intervals (it does not fail the forecast).

    ``start`` (SARIMA only): where its optimizer starts -- the estimate at the previous backtest origin, a week
    shorter (:func:`finops_kit.backtest.backtest`); None: the held-out fit's parameters. The optimum is the same
    to the optimizer's tolerance, not to the last bit, so a given start is part of the fit cache key: a call
    without one never reads a fit that started elsewhere.
    """
    y = np.asarray(y, dtype=float)
    level = _check_level(level)
    reps = reps if paths else 1
    if model not in MODELS:
        raise ConfigError(f"unknown forecast model {model!r}; expected one of {', '.join(MODELS)} or 'auto'")
    start = np.asarray(start, dtype=float) if start is not None and model == "sarimax" else None
    if model == "seasonal_naive":  # nothing is estimated: computing it is cheaper than reading it back
        return _fit_forecast(y, h, model, level, reps, seed, calibrate)
    from . import fitcache  # fits are reused across sections, kernels and runs (exact, keyed by the series)

    # the start only in the key of a fit that was given one: every other key (and its cached fit) stays as it was
    where = {} if start is None else {"start": start.tobytes().hex()}
    arrays = fitcache.cached_arrays(
        y, lambda: _fit_arrays(_fit_forecast(y, h, model, level, reps, seed, calibrate, start)), __file__,
        h=int(h), model=model, level=level, reps=int(reps), seed=int(seed), calibrate=bool(calibrate), **where)
    return _fit_from_arrays(arrays)


def _fit_arrays(fc: ModelForecast) -> dict[str, np.ndarray]:
    """A :class:`ModelForecast` as plain arrays (what the fit cache stores, without pickle)."""
    levels = sorted(fc.intervals)
    out = {"model": np.array(fc.model), "mean": np.asarray(fc.mean, dtype=float),
           "paths": np.asarray(fc.paths, dtype=float), "levels": np.array(levels, dtype=float),
           "factors": np.array([fc.daily_factor, fc.total_factor, fc.held_out_days, fc.held_out_windows,
                                fc.held_out_total_error_pct], dtype=float)}
    if fc.params is not None:
        out["params"] = np.asarray(fc.params, dtype=float)
    for i, lv in enumerate(levels):
        out[f"lo{i}"], out[f"hi{i}"] = (np.asarray(b, dtype=float) for b in fc.intervals[lv])
    return out


def _fit_from_arrays(a: dict[str, np.ndarray]) -> ModelForecast:
    daily, total, held, windows, window_error = (float(v) for v in a["factors"])
    intervals = {float(lv): (a[f"lo{i}"], a[f"hi{i}"]) for i, lv in enumerate(a["levels"])}
    return ModelForecast(str(a["model"]), a["mean"], intervals, a["paths"], daily, total, int(held), int(windows),
                         window_error, a.get("params"))


def _fit_forecast(y: np.ndarray, h: int, model: str, level: float, reps: int, seed: int,
                  calibrate: bool, start: np.ndarray | None = None) -> ModelForecast:
    """:func:`fit_forecast` without the cache (see :mod:`finops_kit.fitcache`)."""
    levels = tuple(sorted({level, 80.0, 95.0}))
    rng = np.random.default_rng(seed)
    fc, half = None, None
    if model != "seasonal_naive" and not np.allclose(y, y[0]):
        try:
            if model == "ets":
                fc = _ets(y, h, levels, reps, seed)
            else:
                # the held-out fit first: its parameters (estimated on the first half of the same series) start
                # the full fit near its optimum -- 3x fewer likelihood evaluations, the same optimum to 1e-4 --
                # and are then reused for the calibration instead of being estimated a second time
                if calibrate:
                    try:
                        half = _held_out_params(y, "sarimax")
                    except (ValueError, np.linalg.LinAlgError, IndexError):
                        half = None  # a failed calibration fit leaves the model's own intervals, as below
                fc = _sarimax(y, h, levels, reps, seed, start_params=half if start is None else start)
        except (ValueError, np.linalg.LinAlgError, IndexError):
            fc = None
    if fc is None or not _finite(fc):
        fc = _seasonal_naive(y, h, levels, reps, rng)
    if not calibrate:
        return fc
    try:
        held = held_out_errors(y, fc.model, h, params=half if fc.model == "sarimax" else None)
    except (ValueError, np.linalg.LinAlgError, IndexError):
        held = None
    if held is None:
        return fc
    first = _BURN_IN if fc.model == "seasonal_naive" else _held_out_cut(len(y))
    windows = held_out_window_errors(y, held[0], first)
    fc.held_out_windows = len(windows)
    fc.held_out_total_error_pct = float(np.mean(windows)) if windows else float("nan")
    out = calibrate_intervals(fc, held[0], level, held[1])
    return out if _finite(out) else fc


# --------------------------------------------------------------------------------------------------- periods
def period_end(as_of: date, horizon: str | int) -> date:
    """Last day of the month/quarter/year containing ``as_of`` (or ``as_of`` + N days for an int)."""
    if isinstance(horizon, int) or str(horizon).isdigit():
        return as_of + timedelta(days=int(horizon))
    ts = pd.Timestamp(as_of)
    if horizon == "month":
        return (ts + pd.offsets.MonthEnd(0)).date()
    if horizon == "quarter":
        return (ts + pd.offsets.QuarterEnd(0)).date()
    if horizon == "year":
        return (ts + pd.offsets.YearEnd(0)).date()
    raise ConfigError(f"horizon {horizon!r}: expected month, quarter, year or a number of days")


def period_start(as_of: date, horizon: str | int) -> date:
    """First day of the period whose actuals count toward the forecast total."""
    if horizon == "quarter":
        return date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    if horizon == "year":
        return date(as_of.year, 1, 1)
    if horizon == "month":
        return date(as_of.year, as_of.month, 1)
    return as_of + timedelta(days=1)


# --------------------------------------------------------------------------------------------------- results
@dataclass
class Forecast:
    """The forecast of one series (one dimension value) to the end of a period."""

    dimension: str
    value: str
    as_of: date
    period_start: date
    period_end: date
    level: float
    model: str | None
    history: pd.DataFrame  # day, actual
    daily: pd.DataFrame  # day, baseline, lo, hi, roadmap, recurring, expected (future days)
    actual_to_date: Decimal  # all charges in [period_start, as_of]
    expected_total: float | None = None
    total_lo: float | None = None
    total_hi: float | None = None
    total_paths: np.ndarray | None = None  # simulated period totals (for breach probabilities)
    backtest: pd.DataFrame | None = None
    trust: str = ""
    message: str | None = None  # why there is no forecast
    components: pd.DataFrame = field(default_factory=pd.DataFrame)  # label, kind, amount over the horizon
    one_time_to_date: Decimal = Decimal(0)
    #: what the reader must know beside the trust statement: why the 'as of' is earlier than asked
    #: (:func:`as_of_day`), roadmap items planned above the bill (:func:`roadmap_above_bill`); empty when nothing
    note: str = ""
    #: interval calibration of the final fit (:class:`ModelForecast`; held_out_days 0 = the model's own intervals)
    daily_factor: float = 1.0
    total_factor: float = 1.0
    held_out_days: int = 0

    @property
    def ok(self) -> bool:
        return self.message is None

    def summary(self) -> dict[str, Any]:
        """One row for a table: period, actual to date, expected total and interval, model and trust."""
        def r2(v: Any) -> float | None:
            return None if v is None else round(float(v), 2)

        return {
            "dimension": self.dimension, "value": self.value, "as_of": self.as_of,
            "period": f"{self.period_start} .. {self.period_end}",
            "actual_to_date": self.actual_to_date.quantize(Decimal("0.01")),
            "expected_total": r2(self.expected_total), f"lo_{int(self.level)}": r2(self.total_lo),
            f"hi_{int(self.level)}": r2(self.total_hi), "model": self.model,
            "note": " ".join(t for t in (self.note, self.message or self.trust) if t),
        }


def _value_rows(con: duckdb.DuckDBPyConnection, dimension: str, filters: list[dict | None], start: date, end: date,
                scope: Any, columns: str, by_day: bool, charges: str = "all") -> list[pd.DataFrame]:
    """One aggregate over [start, end] grouped by the dimension's value (and the day with ``by_day``), for each of
    ``filters``: every value of a forecast from one scan of the warehouse, instead of one query per value with the
    value as a filter (the same rows: grouping by the dimension's SQL selects what ``dimension IN (value)`` would),
    and every budget's from one query (:func:`_by_filter`)."""
    day = "CAST(ChargePeriodStart AS DATE) AS day, " if by_day else ""
    return _by_filter(con, scope, filters, f"{day}{dimension_sql(dimension, scope)} AS value, {columns}",
                      f"{CHARGES[charges]} AND ChargePeriodStart >= DATE '{start}' "
                      f"AND ChargePeriodStart < DATE '{end}' + INTERVAL 1 DAY")


def _period_to_date(con: duckdb.DuckDBPyConnection, dimension: str, filters: list[dict | None], start: date,
                    end: date, scope: Any) -> list[dict[str, tuple[Decimal, Decimal]]]:
    """Per filter, per value: (all charges, one-time charges) in [start, end], exact."""
    return [{v: (Decimal(0) if c is None else c, Decimal(0) if o is None else o)
             for v, c, o in rows.itertuples(index=False)}
            for rows in _value_rows(con, dimension, filters, start, end, scope,
                                    f"sum(EffectiveCost) AS cost, "
                                    f"sum(EffectiveCost) FILTER (WHERE {CHARGES['one_time']}) AS ot", by_day=False)]


#: Dates in a charge description ("... for 2026-10", "Support fee October 2026", "01.10.2026", "10/2026",
#: "20261001"), removed from it where it stands for the SKU: a fee whose description names its month was a new charge
#: every month, so November's posted and October's was expected again (+$3,000 in the review). Only whole dates with
#: a four-digit year and a valid month (and day): a price ("$0.2048 per Hour"), a version ("Kafka 3.5.10"), an id
#: ("Commitment ID 202611"), a bare year ("Windows Server 2019") or a bare month word ("May") is kept -- stripped,
#: two charges that differ only by them were one, and the second was never expected. RE2 (DuckDB's
#: regexp_replace), case-insensitive.
_MONTH_NAMES = ("jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?"
                "|nov(ember)?|dec(ember)?")
_MM, _DD, _YYYY = r"(0?[1-9]|1[0-2])", r"(0?[1-9]|[12][0-9]|3[01])", r"(19|20)[0-9][0-9]"
_DATE_TOKENS = (rf"\b{_YYYY}[-/]{_MM}([-/]{_DD}(T[0-9:.]+Z?)?)?\b"  # 2026-10, 2026-10-01(T00:00:00Z), 2026/10
                rf"|\b{_DD}[-/.]{_MM}[-/.]{_YYYY}\b"             # 01.10.2026, 1/10/2026 (day first)
                rf"|\b{_MM}[-/.]{_DD}[-/.]{_YYYY}\b"             # 10/01/2026 (month first)
                rf"|\b{_MM}[-/]{_YYYY}\b"                        # 10/2026, 10-2026 (not 10.2026: a number)
                r"|\b(19|20)[0-9][0-9](0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])\b"  # 20261001
                rf"|\b({_MONTH_NAMES})\.?[ ,-]+{_YYYY}\b")        # October 2026, Oct-2026, Oct. 2026
#: What makes two recurring rows the same charge in two months: provider, billing account, sub account, service,
#: charge category, SKU (the description without its dates where a provider gives none, as AWS for taxes and
#: fees: :data:`_DATE_TOKENS`), commitment and billing currency. Enough to tell one account's EC2 tax from another's
#: and a licence from a port fee; nothing that changes from month to month (amounts, charge dates, invoice ids).
_CHARGE_IDENTITY = ("concat_ws('|', " + ", ".join(
    f"coalesce(CAST({c} AS VARCHAR), '')" for c in (
        "ProviderName", "BillingAccountId", "SubAccountId", "ServiceName", "ChargeCategory",
        f"coalesce(SkuId, regexp_replace(ChargeDescription, '{_DATE_TOKENS}', '', 'gi'))", "CommitmentDiscountId",
        "BillingCurrency")) + ")")


def _recurring_by_value(con: duckdb.DuckDBPyConnection, dimension: str, filters: dict | None, as_of: date,
                        scope: Any = None) -> dict[str, pd.DataFrame]:
    """Recurring charges per value from the first day of the last full month through ``as_of``, one row per charge
    (:data:`_CHARGE_IDENTITY`) and day: ``day`` (Timestamp), ``charge``, ``cost`` (float; None counts as 0: the row
    posted), ``monthly`` (the rows cover more than one day: a charge for a period, such as a month's tax) and
    ``recurring`` (ChargeFrequency 'Recurring', not an idle-commitment row). One query for every value."""
    return _recurring_by_value_many(con, dimension, [filters], as_of, scope)[0]


def _recurring_by_value_many(con: duckdb.DuckDBPyConnection, dimension: str, filters: list[dict | None],
                             as_of: date, scope: Any = None) -> list[dict[str, pd.DataFrame]]:
    """:func:`_recurring_by_value` for each of ``filters`` (one per budget), from one query."""
    lm_start = (pd.Timestamp(as_of.year, as_of.month, 1) - pd.offsets.MonthBegin(1)).date()
    out = []
    for rows in _value_rows(con, dimension, filters, lm_start, as_of, scoped(con, scope),
                            f"{_CHARGE_IDENTITY} AS charge, sum(EffectiveCost) AS cost, "
                            "bool_or(ChargePeriodEnd > ChargePeriodStart + INTERVAL 1 DAY) AS monthly, "
                            "bool_or(ChargeFrequency = 'Recurring') AS recurring", by_day=True, charges="recurring"):
        if rows.empty:
            out.append({})
            continue
        rows["day"] = pd.to_datetime(rows["day"])
        rows["cost"] = [0.0 if c is None or (isinstance(c, float) and math.isnan(c)) else float(c)
                        for c in rows["cost"]]
        rows["monthly"] = rows["monthly"].fillna(False).astype(bool)
        rows["recurring"] = rows["recurring"].fillna(False).astype(bool)
        out.append({str(v): g.drop(columns="value").reset_index(drop=True)
                    for v, g in rows.groupby("value", sort=False)})
    return out


def _once_a_month(charges: pd.DataFrame | None, as_of: date) -> pd.DataFrame:
    """Last month's charges booked once a month (see :func:`_recurring_component`), one row per charge
    (:data:`_CHARGE_IDENTITY`, the index): ``day`` (its day last month) and ``cost`` (float). ``charges``: as
    :func:`_recurring_by_value` returns them for ``as_of``."""
    cols = ["n_days", "monthly", "recurring", "day", "cost"]
    if charges is None or charges.empty:
        return pd.DataFrame(columns=cols)
    last = charges[charges["day"] < pd.Timestamp(as_of.year, as_of.month, 1)]
    if last.empty:
        return pd.DataFrame(columns=cols)
    cadence = last.groupby("charge").agg(n_days=("day", "nunique"), monthly=("monthly", "any"),
                                         recurring=("recurring", "any"), day=("day", "first"), cost=("cost", "sum"))
    return cadence[(cadence["n_days"] == 1) & (cadence["monthly"] | cadence["recurring"])]


def _posted_this_month(charges: pd.DataFrame | None, as_of: date) -> set[str]:
    """The charges (:data:`_CHARGE_IDENTITY`) with a row in ``as_of``'s month up to ``as_of``."""
    if charges is None or charges.empty:
        return set()
    return set(charges.loc[charges["day"] >= pd.Timestamp(as_of.year, as_of.month, 1), "charge"])


def pending_recurring(charges: pd.DataFrame | None, as_of: date) -> pd.DataFrame:
    """Last month's once-a-month charges that have not posted yet in ``as_of``'s month: the charges
    :func:`_recurring_component` expects again this month (the tax that posts when the month is invoiced, dated the
    1st), one row per charge (index: :data:`_CHARGE_IDENTITY`) with last month's ``day`` and ``cost``.

    One rule for the forecast (it adds them) and the variance decomposition
    (:func:`finops_kit.budgets.pending_charges`: they are set apart, not a change): October's tax booked on the 1st
    has no November counterpart on the 26th because November is not invoiced yet, not because it stopped."""
    once = _once_a_month(charges, as_of)
    return once[~once.index.isin(_posted_this_month(charges, as_of))]


def _recurring_component(charges: pd.DataFrame | None, as_of: date, start: date, end: date) -> pd.Series:
    """Recurring charges expected in (``as_of``, ``end``]: last full month's, carried forward (float per day).

    Why carried rather than modelled: subscriptions, support plans, licences, taxes and monthly commitment fees are
    known in advance; a statistical model would only smear them over the month. ``charges``: the value's recurring
    charges from the first day of the last full month through ``as_of`` (:func:`_recurring_by_value`; None: none).
    ``start``: the first day of the period whose charges the forecast counts (:func:`period_start`).

    Two kinds of charge, told apart by how last month booked them (:data:`_CHARGE_IDENTITY` names a charge):

    * **Once a month**: a charge booked on a single day last month, either a charge for a period (its rows cover
      more than a day, as a month's tax or an AWS monthly commitment fee) or a ChargeFrequency 'Recurring' fee
      (Azure books a monthly reservation payment as a one-day row). Such a charge is often booked late -- the tax
      posts when the month is invoiced, dated the 1st -- so its date having passed says nothing: **this month it is
      expected until the same charge has posted this month** (then it is not expected twice), at last month's
      amount. Where: on its day of the month when that is still ahead (the last day of a shorter month); when its
      day has passed, on the first forecast day -- it is spend of a day already gone, it counts in the month
      whenever it posts, and putting it on the first day keeps the running total honest for budgets' breach dates
      (a charge placed on the period's last day would hide a breach until then). A charge dated before ``start``
      (an N-day horizon starts tomorrow) is not part of the period. Later months: once, on its day of the month.
    * **Daily**: booked on several days last month (an idle commitment booked per day, daily fee lines). A day of
      such a charge that has passed is final -- a day without a row is a day without the charge -- so only the days
      ahead get last month's amount of the same day of the month (a day past last month's length: the 28th's).

    A charge that first appears this month is not carried (last month is the template).
    """
    days = pd.date_range(as_of + timedelta(days=1), end, freq="D")
    out = pd.Series(0.0, index=days)
    if charges is None or charges.empty or days.empty:
        return out
    month_start = pd.Timestamp(as_of.year, as_of.month, 1)
    last_month_end = month_start - pd.Timedelta(days=1)
    last = charges[charges["day"] < month_start]
    if last.empty:
        return out
    once = _once_a_month(charges, as_of)
    daily = last[~last["charge"].isin(once.index)]
    by_dom = ({d: 0.0 for d in range(1, last_month_end.day + 1)}
              | daily.groupby(daily["day"].dt.day)["cost"].sum().to_dict())
    acc = out.to_numpy(copy=True)  # added to by position, in the order the Series was: the same sums, without
    # a Series lookup per day and charge (a budget's forecast and its pending charges ask it once each)
    for i, day in enumerate(days.day):
        dom = min(day, 28) if day > 28 and day not in by_dom else day
        acc[i] += float(by_dom.get(dom, 0.0))
    posted = _posted_this_month(charges, as_of)
    for month in pd.period_range(month_start, end, freq="M"):
        for charge, day, cost in zip(once.index, once["day"], once["cost"], strict=True):
            due = month.start_time + pd.Timedelta(days=min(day.day, month.days_in_month) - 1)
            if month.start_time == month_start:  # this month: expected until it has posted
                if charge in posted or due.date() < start:
                    continue
                due = max(due, days[0])  # its day has passed: the first forecast day
            if days[0] <= due <= days[-1]:
                acc[(due - days[0]).days] += float(cost)
    return pd.Series(acc, index=days)


def nothing_to_forecast(con: duckdb.DuckDBPyConnection, scope: Any, as_of: date | None) -> None:
    """Raise :class:`~finops_kit.scope.NoDataError` ("no data for this scope", exit 3) when the scope holds no
    charge on or before ``as_of`` (an empty warehouse or scope, an as-of day before the data): there is no history
    to forecast from and no actual to date. Why: ``report forecast_vs_actual -p as_of=2025-09-30`` on data starting
    in October got no forecast back and failed with "IndexError: list index out of range"."""
    from .querycache import arrow
    from .scope import NoDataError, _coverage_text

    sc = scoped(con, scope)
    first = arrow(con, f"SELECT min(CAST(ChargePeriodStart AS DATE)) FROM {sc.rows_sql(period=False)}"
                  ).column(0).to_pylist()[0]
    if as_of is None or first is None:
        raise NoDataError(f"no data for this scope ({sc.describe()}): nothing to forecast; the warehouse holds "
                          f"{_coverage_text(con)}")
    if first > as_of:
        raise NoDataError(f"no data for this scope ({sc.describe()}) on or before {as_of}, the as-of day: its charges "
                          f"start on {first}, so there is nothing to forecast from; the warehouse holds "
                          f"{_coverage_text(con)}")


@dataclass
class ForecastInputs:
    """What :func:`forecast` reads from the warehouse for one filter (:func:`forecast_inputs`): the as-of day, the
    daily usage series of the history, each value's charges to date in the period (all, one-time) and recurring
    charges since last month's first day. ``key``: (dimension, filters, horizon, top, history_days) read for."""

    as_of: date
    key: tuple
    series: pd.DataFrame
    todate: dict[str, tuple[Decimal, Decimal]]
    recurring: dict[str, pd.DataFrame]


def forecast_inputs(con: duckdb.DuckDBPyConnection, dimension: str, filters: list[dict | None], *,
                    as_of: date | str | None = None, horizon: str | int = "month", top: int = 6,
                    history_days: int = 365, scope: Any = None,
                    _as_of_days: list[date | None] | None = None) -> list[ForecastInputs | None]:
    """:func:`forecast`'s data for each of ``filters`` (a budget's scope each), one query per kind for all the
    filters with the same as-of day (:func:`as_of_days`; None where it has none: no data). Why: budget status
    forecast each budget with its own five queries, and the alerts again: most of the forecast report's 87."""
    sc = scoped(con, scope)
    days = _as_of_days if _as_of_days is not None else as_of_days(con, sc, as_of, filters)
    out: list[ForecastInputs | None] = [None] * len(filters)
    for d in dict.fromkeys(x for x in days if x is not None):
        idx = [i for i, x in enumerate(days) if x == d]
        group = [filters[i] for i in idx]
        end, pstart = period_end(d, horizon), period_start(d, horizon)
        series = daily_series_many(con, dimension, group, start=d - timedelta(days=history_days - 1), end=d, top=top,
                                   scope=sc)
        todate = _period_to_date(con, dimension, group, pstart, d, sc)
        recurring = (_recurring_by_value_many(con, dimension, group, d, sc) if (end - d).days > 0 else
                     [{} for _ in group])
        for j, i in enumerate(idx):
            out[i] = ForecastInputs(d, (dimension, filters[i], horizon, top, history_days), series[j], todate[j],
                                    recurring[j])
    return out


def forecast(con: duckdb.DuckDBPyConnection, dimension: str = "total", *, as_of: date | str | None = None,
             horizon: str | int = "month", level: float = 80, model: str = "auto", filters: dict | None = None,
             roadmap: list[dict[str, Any]] | None = None, top: int = 6, history_days: int = 365,
             backtest_origins: int = BACKTEST_ORIGINS, values: list[str] | None = None,
             scope: Any = None, inputs: ForecastInputs | None = None) -> list[Forecast]:
    """Forecast every value of ``dimension`` (the ``top`` largest plus "(other)", see :func:`daily_series`) to
    the end of the period.

    ``roadmap`` items (see :mod:`finops_kit.budgets` ``load_roadmap``) are added after ``as_of`` as labelled
    components on top of the statistical baseline. An item's days up to ``as_of`` are billed already: its planned
    daily amount is taken out of the training history on those days (for the values it applies to,
    :func:`roadmap_daily`), so the baseline is the usage without the item and the item counts once -- an item
    running at ``as_of`` was otherwise learned by the model and added again (the review's case: $157,679 expected
    for a month that cost $81,870). The history shown (``Forecast.history``) stays what was billed.

    ``backtest_origins=0`` skips the backtest (``backtest`` None, a trust statement that says so): only with a
    given ``model``, for callers that show the forecast but not how it did in the past (budget status, alerts);
    the forecast itself does not depend on the backtest once the model is given.

    ``inputs``: this forecast's data, read already by :func:`forecast_inputs` with many others (budget status: every
    budget's from one query per kind) for ``as_of`` = ``inputs.as_of`` and the same dimension, filters, horizon,
    ``top`` and ``history_days``; the forecast is the one its own queries give.
    """
    from .backtest import backtest, calibration_note, choose_model, trust_statement

    level = _check_level(level)
    if backtest_origins < 1 and model == "auto":
        raise ConfigError("model='auto' is chosen by a backtest: it needs backtest_origins >= 1")
    sc = scoped(con, scope)
    stated = sorted({str(it["currency"]) for it in roadmap or [] if it.get("currency")})
    if stated and sc.currency and stated != [sc.currency]:
        raise ConfigError(f"roadmap amounts are in {', '.join(stated)} (roadmap.currency, else budgets.currency) "
                          f"but the scope reports in {sc.currency}: a forecast adds them in one currency; "
                          f"state the roadmap in {sc.currency} (roadmap.currency) or report in {stated[0]}")
    roadmap = roadmap_in_scope(con, roadmap or [], sc)
    asked = _day(as_of)
    if inputs is not None and (inputs.as_of != asked or inputs.key != (dimension, filters, horizon, top, history_days)):
        raise ValueError(f"forecast inputs read for {inputs.as_of} {inputs.key}, not for {asked} "
                         f"{(dimension, filters, horizon, top, history_days)}")
    # given inputs were read for an as-of day on or before the data: the one as_of_day returns for it
    as_of_d = inputs.as_of if inputs is not None else as_of_day(con, sc, asked, filters)
    nothing_to_forecast(con, sc, as_of_d)
    late = data_through_note(asked, as_of_d)
    late = f"{late[0].upper()}{late[1:]}." if late else ""
    end = period_end(as_of_d, horizon)
    pstart = period_start(as_of_d, horizon)
    h = (end - as_of_d).days
    if inputs is None:
        inputs = forecast_inputs(con, dimension, [filters], as_of=as_of_d, horizon=horizon, top=top,
                                 history_days=history_days, scope=sc, _as_of_days=[as_of_d])[0]
    series, todate, recurring = inputs.series, inputs.todate, inputs.recurring  # todate: value -> (all, one-time)
    if values is not None:
        series = series[series["value"].isin(values)]
    results: list[Forecast] = []
    for value, g in series.groupby("value", sort=False):
        g = g.sort_values("day")
        nz = g.loc[g["y"] != 0, "day"]
        g = g[g["day"] >= nz.min()] if len(nz) else g.iloc[0:0]
        hist = g[["day", "y"]].rename(columns={"y": "actual"}).reset_index(drop=True)
        if value == "(other)":
            shown = set(series["value"].unique())
            actual_td = sum((a for v, (a, _) in todate.items() if v not in shown), Decimal(0))
        else:
            actual_td = todate.get(value, (Decimal(0), Decimal(0)))[0]
        ot = todate.get(value, (Decimal(0), Decimal(0)))[1]
        fc = Forecast(dimension, value, as_of_d, pstart, end, level, None, hist, pd.DataFrame(), actual_td,
                      one_time_to_date=ot, note=late)
        if len(hist) < MIN_HISTORY_DAYS:
            fc.message = (f"only {len(hist)} days of history (< 5 weeks): no forecast for {value}; "
                          "a forecast needs at least 35 days of daily cost")
            results.append(fc)
            continue
        if h <= 0:
            fc.message = "the period has ended: nothing left to forecast"
            results.append(fc)
            continue
        # a roadmap item's past days (start .. as_of) are in the history already: the model learns the usage
        # without them, and the item's remaining days are added below (else an item running at 'as of' counted twice)
        past_plan = roadmap_daily(roadmap or [], dimension, value, pd.DatetimeIndex(hist["day"]), filters)
        y = without_roadmap(hist["actual"].to_numpy(), past_plan)
        fc.note = " ".join(t for t in (fc.note, roadmap_above_bill(hist["actual"].to_numpy(), past_plan, value)) if t)
        scored = MODELS if model == "auto" else tuple(dict.fromkeys((model, "seasonal_naive")))
        bt = (backtest(y, horizon=min(max(h, 7), 28), origins=backtest_origins, level=level, models=scored)
              if backtest_origins >= 1 else None)
        chosen = choose_model(bt) if model == "auto" else model
        mf = fit_forecast(y, h, chosen, level)
        days = pd.date_range(as_of_d + timedelta(days=1), end, freq="D")
        if value == "(other)":  # the folded values' recurring charges, each carried as its own
            shown = set(series["value"].unique())
            rec = sum((_recurring_component(c, as_of_d, pstart, end) for v, c in recurring.items()
                       if v not in shown), pd.Series(0.0, index=days))
        else:
            rec = _recurring_component(recurring.get(value), as_of_d, pstart, end)
        rm = roadmap_daily(roadmap or [], dimension, value, days, filters)
        extra = rec.to_numpy() + rm.sum(axis=1).to_numpy()
        daily = pd.DataFrame({"day": days, "baseline": mf.mean, "lo": mf.lo(level) + extra,
                              "hi": mf.hi(level) + extra, "recurring": rec.to_numpy(),
                              "roadmap": rm.sum(axis=1).to_numpy()})
        for lv in (80, 95):
            daily[f"lo_{lv}"], daily[f"hi_{lv}"] = mf.lo(lv) + extra, mf.hi(lv) + extra
        daily["expected"] = daily["baseline"] + daily["recurring"] + daily["roadmap"]
        totals = mf.paths.sum(axis=0) + extra.sum() + float(actual_td)
        alpha = 1 - level / 100
        fc.model = mf.model
        fc.daily_factor, fc.total_factor, fc.held_out_days = mf.daily_factor, mf.total_factor, mf.held_out_days
        fc.daily = daily
        fc.backtest = bt
        fc.trust = (trust_statement(bt, mf.model, level, mf) if bt is not None else
                    f"Not backtested ({MODEL_LABELS[mf.model]} was given, not chosen on this bill's history). "
                    + calibration_note(mf) + ".")
        fc.expected_total = float(actual_td) + float(daily["expected"].sum())
        fc.total_lo = float(np.quantile(totals, alpha / 2))
        fc.total_hi = float(np.quantile(totals, 1 - alpha / 2))
        fc.total_paths = totals
        comp = [{"label": f"Actual to date ({pstart} .. {as_of_d})", "kind": "actual", "amount": float(actual_td)},
                {"label": f"Baseline forecast ({MODEL_LABELS[mf.model]})", "kind": "baseline",
                 "amount": float(mf.mean.sum())}]
        fc.components = pd.DataFrame(comp + _added_components(rec, rm))
        results.append(fc)
    results += _no_usage_forecasts(series, todate, recurring, roadmap or [], dimension, filters, values, top,
                                   as_of_d, pstart, end, level, late)
    return results


def _no_usage_forecasts(series: pd.DataFrame, todate: dict[str, tuple[Decimal, Decimal]],
                        recurring: dict[str, pd.DataFrame], roadmap: list[dict[str, Any]], dimension: str,
                        filters: dict | None, values: list[str] | None, top: int | None, as_of: date, pstart: date,
                        end: date, level: float, late: str) -> list[Forecast]:
    """Forecasts of the values that have charges this period or recurring charges to expect, but no usage-based
    history (a support plan billed monthly, a value whose only charge this month is a purchase): the actual to date
    plus the recurring component and the roadmap items that name the value, with a baseline of 0 and no range
    (nothing is modelled). Why: such a value had no row, so per-value tables did not add up to the Total (a support
    fee not posted yet was in the Total and in no service) and a budget on it read $0, "on track", and never
    alerted. Values folded into an existing "(other)" are counted there already; past ``top`` values, two or more
    of them are one "(other)" row, as :func:`daily_series` folds."""
    shown = set(series["value"].unique())
    if "(other)" in shown:
        return []
    charged = [v for v, (a, o) in todate.items() if a or o]  # an empty aggregate still names its constant value
    extra = [v for v in dict.fromkeys([*charged, *recurring]) if v not in shown and (values is None or v in values)]
    if not extra:
        return []
    days = pd.date_range(as_of + timedelta(days=1), end, freq="D")

    def size(v: str) -> float:
        return float(todate.get(v, (Decimal(0), Decimal(0)))[0]) + float(
            _recurring_component(recurring.get(v), as_of, pstart, end).sum())

    extra.sort(key=lambda v: (-abs(size(v)), v))
    groups = [(v, [v]) for v in extra]
    keep = len(extra) if top is None else max(0, top - len(shown))
    if len(extra) - keep >= 2:
        groups = groups[:keep] + [("(other)", extra[keep:])]
    out = []
    for value, members in groups:
        actual = sum((todate.get(v, (Decimal(0), Decimal(0)))[0] for v in members), Decimal(0))
        ot = sum((todate.get(v, (Decimal(0), Decimal(0)))[1] for v in members), Decimal(0))
        fc = Forecast(dimension, value, as_of, pstart, end, level, None,
                      pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "actual": pd.Series(dtype=float)}),
                      pd.DataFrame(), actual, one_time_to_date=ot, note=late)
        if days.empty:
            fc.message = "the period has ended: nothing left to forecast"
            out.append(fc)
            continue
        rec = sum((_recurring_component(recurring.get(v), as_of, pstart, end) for v in members),
                  pd.Series(0.0, index=days))
        rm = roadmap_daily(roadmap, dimension, value, days, filters)
        extra_daily = rec.to_numpy() + rm.sum(axis=1).to_numpy()
        daily = pd.DataFrame({"day": days, "baseline": 0.0, "lo": extra_daily, "hi": extra_daily,
                              "recurring": rec.to_numpy(), "roadmap": rm.sum(axis=1).to_numpy()})
        for lv in (80, 95):
            daily[f"lo_{lv}"], daily[f"hi_{lv}"] = extra_daily, extra_daily
        daily["expected"] = daily["baseline"] + daily["recurring"] + daily["roadmap"]
        fc.daily = daily
        fc.expected_total = fc.total_lo = fc.total_hi = float(actual) + float(extra_daily.sum())
        fc.total_paths = np.array([fc.expected_total])
        fc.trust = ("No usage-based charges to model: the period is its actual to date plus its recurring charges "
                    "(last month's, carried forward where not billed yet)" + (" and roadmap items" if len(rm.columns)
                                                                              else "") + "; no range.")
        comp = [{"label": f"Actual to date ({pstart} .. {as_of})", "kind": "actual", "amount": float(actual)}]
        fc.components = pd.DataFrame(comp + _added_components(rec, rm))
        out.append(fc)
    return out


def _added_components(rec: pd.Series, rm: pd.DataFrame) -> list[dict[str, Any]]:
    """The forecast components added to the baseline: the recurring charges (when any) and each roadmap item."""
    out = []
    if rec.abs().sum() > 0:
        out.append({"label": "Recurring charges (last month's, carried forward where not billed yet)",
                    "kind": "recurring", "amount": float(rec.sum())})
    out += [{"label": f"Roadmap: {col}", "kind": "roadmap", "amount": float(rm[col].sum())} for col in rm.columns]
    return out


def dimension_values(con: duckdb.DuckDBPyConnection, dim: str, scope: Any = None, *,
                     everywhere: bool = False) -> set[str]:
    """The values of ``dim`` that the scope's charges carry (over all its periods) or, ``everywhere``, that any
    charge of the warehouse carries, with their other spelling (:data:`VALUE_ALIASES`: the accounts' ids). Through the query cache: every forecast of a report (the total, each team,
    each budget) and every budget asks again."""
    from .querycache import arrow

    sc = scoped(con, scope)
    source = f"{FOCUS_TABLE} f" if everywhere else sc.rows_sql(period=False)
    other = ({str(v) for v in arrow(con, f"SELECT DISTINCT CAST({VALUE_ALIASES[dim]} AS VARCHAR) FROM {source} "
                                         f"WHERE {VALUE_ALIASES[dim]} IS NOT NULL").column(0).to_pylist()}
             if dim in VALUE_ALIASES else set())  # an account's id names it too (filter_sql)
    if not everywhere:
        return {str(v) for v in scope_values_by_cost(con, dim, sc)} | other
    return {str(v) for v in arrow(con, f"SELECT DISTINCT {dimension_sql(dim, sc)} FROM {FOCUS_TABLE} f")
            .column(0).to_pylist()} | other


def scope_values_by_cost(con: duckdb.DuckDBPyConnection, dim: str, scope: Any = None) -> list[Any]:
    """The values of ``dim`` that the scope's charges carry (over all its periods), largest EffectiveCost first:
    one cached query for :func:`dimension_values` and for the values a "matches no charge" message lists
    (:func:`finops_kit.budgets.scope_matches_nothing`), which read the same values twice."""
    from .querycache import arrow

    sc = scoped(con, scope)
    return arrow(con, f"SELECT {dimension_sql(dim, sc)} AS v FROM {sc.rows_sql(period=False)} GROUP BY v "
                      "ORDER BY sum(EffectiveCost) DESC NULLS LAST, v").column(0).to_pylist()


def about_other_scope(con: duckdb.DuckDBPyConnection, filters: dict[str, Any] | None, scope: Any = None) -> bool:
    """Whether ``filters`` (a budget's or a roadmap item's scope) are about charges outside this scope entirely: a
    key names only values outside it -- values that charges of the warehouse carry, none of them in the scope
    (another provider, account or currency than a narrowed report's), or values the scope's own charge parameters
    leave out, billed or not (``provider: Oracle`` in ``-p providers=[AWS]``, before Oracle bills anything). Such a
    budget is not this scope's to judge and such an item not its forecast's to add; a value no charge carries
    anywhere and that the scope's parameters do not rule out (a typo, a project not billed yet) is not "outside".
    A budget or item naming a value no charge carries anywhere is reported as matching nothing in every scope all
    the same: :func:`found_nowhere` is asked before this (an Oracle item is reported, and not added here).

    The rule applies in every scope that leaves out charges of the warehouse, whatever parameter narrows it:
    providers, accounts or the currency (a USD scope of a warehouse whose Azure rows are billed in EUR: the Azure
    roadmap item was added to the USD forecasts, +$3,000, and the Azure budget alerted as a typo).

    Why one rule for both: with ``-p providers=AWS`` an item ``provider: Microsoft`` was added to the AWS total and
    the Azure budget alerted as a typo; and budgets and roadmap items had a rule each, which disagreed on a scope
    naming another provider together with a value found nowhere (the budget was judged here, the item dropped).
    Both are now about the other provider's scope; a value found nowhere is reported in every scope
    (:func:`found_nowhere`: budgets_in_scope and roadmap_scope_problems ask it first). A budget or item
    partly outside a narrowed scope (one on all providers in an AWS-only report) is :func:`outside_scope`'s: listed
    as not judged, not added."""
    return _other_scope_key(con, filters, scoped(con, scope)) is not None


#: The keys of a budget's or a roadmap item's scope that say which charges it is about in the terms of the scope's
#: charge parameters (:data:`finops_kit.scope.CHARGE_PARAMETERS`): the provider and the (sub) account. A team,
#: project, environment or AI key says whose spend it is, wherever it is billed.
CHARGE_KEYS = ("provider", "account")
#: Keys naming what one provider bills -- its service, region, usage type or instance type (EC2, us-east-1,
#: ``USE1-BoxUsage:p4d.24xlarge``): a budget on them is confined by the charges they select, and is judged in a
#: narrowed scope when every such charge lies inside it (a regression review: an EC2 budget was "all providers" in an
#: AWS scope holding all 13,241 EC2 rows). Not a team or a category: whose spend, or what kind, can move across
#: providers, and the budget would stop being judged the day it did.
BILL_KEYS = ("service", "region", "usage_type", "instance_type")


#: What a budget counts, so what a row must carry to be "left out": money. A limit that counts a quantity says its
#: own (:func:`finops_kit.guard.bill_checks` counts accelerator-hours, of rows whatever their cost).
LEFT_OUT_MEASURE = "f.EffectiveCost"


def _left_out_sql(sc: Any, *, charges: bool = False, measure: str = LEFT_OUT_MEASURE) -> str:
    """SQL predicate over the FOCUS table (alias ``f``) of the charges the scope leaves out among those it could
    read: every period up to its end (all of them when it has none; nothing reads past a scope's end). ``charges``:
    left out by its providers and accounts (its charge parameters), whatever their currency.

    Only a row whose ``measure`` (the budget's EffectiveCost) is not zero leaves anything out: a free-tier or fully
    credited line of 0.00 on a provider outside the scope changes no budget's actual or forecast, yet it made every
    budget of an AWS scope "not judged: it covers all providers" (review s17). A credit (negative) is money and does
    leave something out."""
    from dataclasses import replace

    from .scope import Scope

    kept = replace(sc, currency=None, convert=False) if charges else sc
    until = Scope(end=sc.end, basis=sc.basis).where() if sc.end else "TRUE"
    return f"{until} AND NOT coalesce({kept.where(period=False)}, FALSE) AND coalesce({measure}, 0) <> 0"


def narrowed(con: duckdb.DuckDBPyConnection, scope: Any = None, *, charges: bool = False) -> bool:
    """Whether the scope is really narrowed: its parameters leave out a charge the warehouse holds up to the scope's
    end (:func:`_left_out_sql`). ``charges``: by its providers or accounts (the currency aside, see
    :func:`outside_scope`). One cached count; a scope without such parameters answers False and asks nothing.

    Why a parameter alone does not decide it: ``-p providers=[AWS, Google Cloud, Microsoft]`` names every provider
    the demo holds and leaves no charge out, yet it was read as narrowed -- a budget naming Oracle (billed nowhere)
    was "not judged: it covers provider Oracle; this scope is AWS, Google Cloud, Microsoft only" instead of the
    whole warehouse's "matches no charges" alert, and a roadmap item naming a provider billed nowhere went
    unreported. Every period up to the end, not only the judged month: a budget's forecast is fitted on a year of
    history and its closed months are graded, so a scope leaving out an earlier provider's charges would give its
    budgets other figures than the whole warehouse does."""
    from .querycache import arrow

    sc = scoped(con, scope)
    if not (sc.providers or sc.billing_accounts or sc.sub_accounts or (not charges and sc.currency and not sc.convert)):
        return False
    sql = f"SELECT count(*) FROM {FOCUS_TABLE} f WHERE {_left_out_sql(sc, charges=charges)}"
    return bool(arrow(con, sql).column(0).to_pylist()[0])


def found_nowhere(con: duckdb.DuckDBPyConnection, filters: dict[str, Any] | None, scope: Any = None) -> list[str]:
    """The keys of ``filters`` (a budget's or a roadmap item's scope) naming only values no charge of the warehouse
    carries -- any period, provider, account or currency: a typo ('Oracel', team 'nlpp'), or a value not billed yet,
    which no data can tell apart. Such a budget or item is reported as matching nothing in every scope, as in the
    whole warehouse (:func:`finops_kit.budgets.budgets_in_scope`, :func:`finops_kit.budgets.roadmap_scope_problems`).

    Why: a narrowed scope decided first whether the budget was its own, and a typo never got that far -- with
    ``-p providers=[AWS]`` a budget on provider 'Oracel' was dropped as another scope's and one on team 'nlpp' was
    "not judged: it covers all providers", while the whole warehouse alerted on both as typos."""
    sc = scoped(con, scope)
    out = []
    for dim, val in (filters or {}).items():
        if dim not in DIMENSIONS and dim not in sc.attribution.policy.keys:
            continue  # not a dimension (load_budgets and load_roadmap refuse such keys)
        wanted = {str(v) for v in (val if isinstance(val, list | tuple | set) else [val])}
        if wanted and not wanted & dimension_values(con, dim, sc, everywhere=True):
            out.append(dim)
    return out


def _ruled_out(con: duckdb.DuckDBPyConnection, sc: Any, dim: str, values: set[str], inside: set[str]) -> set[str]:
    """The ``values`` of key ``dim`` that the scope's own charge parameters leave out, billed or not: a provider
    not among ``-p providers``, an account neither among ``-p sub_accounts`` nor carried by a charge in the scope
    (``inside``: the account values the scope's charges carry, ids and names). Empty when the scope does not narrow
    that key (an account in a provider scope: where an account not billed yet will bill is not known), or leaves
    out no charge by its providers and accounts (:func:`narrowed`: every provider named)."""
    if not narrowed(con, sc, charges=True):
        return set()
    if dim == "provider" and sc.providers:
        allowed = {p.lower() for p in sc.providers}
        return {v for v in values if v.lower() not in allowed}
    if dim == "account" and sc.sub_accounts:
        return {v for v in values if v not in sc.sub_accounts and v not in inside}
    return set()


def _other_scope_key(con: duckdb.DuckDBPyConnection, filters: dict[str, Any] | None, sc: Any) -> str | None:
    """The first key of ``filters`` that is about charges outside the scope, in words ("provider Microsoft, which
    no charge in this scope carries"), or None (:func:`about_other_scope`)."""
    if not filters or not narrowed(con, sc):
        return None  # the scope reads every charge of the warehouse: nothing is outside it
    for dim, val in filters.items():
        if dim not in DIMENSIONS and dim not in sc.attribution.policy.keys:
            continue  # not a dimension (load_budgets and load_roadmap refuse such keys)
        wanted = {str(v) for v in (val if isinstance(val, list | tuple | set) else [val])}
        inside = dimension_values(con, dim, sc)
        if wanted & inside:
            continue
        if wanted & dimension_values(con, dim, sc, everywhere=True):
            return f"{dim} {', '.join(sorted(wanted))}, which no charge in this scope carries"
        if wanted and _ruled_out(con, sc, dim, wanted, inside) == wanted:
            return f"{dim} {', '.join(sorted(wanted))}, which this scope's parameters leave out"
    return None


def _scope_words(sc: Any) -> str:
    """What a narrowed scope holds, for "this scope is ... only": "AWS", "account acme-ml-prod", or, narrowed by its
    currency alone, "USD-billed charges"."""
    only = list(filter(None, [", ".join(sc.providers),
                              f"account {', '.join(sc.sub_accounts)}" if sc.sub_accounts else "",
                              f"billing account {', '.join(sc.billing_accounts)}" if sc.billing_accounts else ""]))
    if not only and sc.currency and not sc.convert:
        only = [f"{sc.currency}-billed charges"]
    return " and ".join(only) or "narrower"


def outside_scope(con: duckdb.DuckDBPyConnection, filters: dict[str, Any] | None, scope: Any = None) -> str | None:
    """Why a budget or a roadmap item (its scope: ``filters``) is not this scope's to judge or to add, in words --
    ``"it covers all providers; this scope is AWS only"`` -- or None when it is.

    The rule, one for budgets (:func:`finops_kit.budgets.budget_status`, ``budget_history``, ``finops-kit check``)
    and roadmap items (:func:`roadmap_in_scope`), in two parts:

    * entirely about another scope (:func:`about_other_scope`), in any narrowed scope -- by providers, accounts
      or currency: an Azure budget in an AWS report, an Azure item in a USD report of a warehouse billing Azure in
      EUR, an item naming a provider the scope's ``-p providers`` leaves out (billed yet or not);
    * partly outside, in a scope narrowed by charge parameters (providers, billing or sub accounts): a budget or an
      item belongs to it only when its own scope confines it to charges inside: its :data:`CHARGE_KEYS` select no
      charge of the warehouse (any period) that the scope leaves out, and name no provider or account the scope's
      parameters leave out -- a budget naming provider AWS in an AWS scope. A budget on all costs, a team or
      ``ai: AI`` covers every provider's charges: its amount was set for all of them, and the scope's actual and
      forecast are a part of them (an AWS-only report compared the company's $500,000 with the AWS spend and said
      "on track"). A roadmap item naming no provider may land on any provider: it is not added to an AWS-only
      forecast. A budget on a team (``whose``, :func:`partly_outside`) covers the team's charges: one whose charges
      up to the scope's end all lie inside is judged (research, all on AWS, in an AWS report); the day the team
      spends elsewhere it is listed as not judged, with where and when.

    The currency parameter does not make a budget "partly outside": budgets and the roadmap are stated in one
    currency (``budgets.currency``, else the scope's) and compared only with a scope in it -- amounts are never added
    across currencies, so a budget is about the charges billed (or converted) in its currency, and no budget key
    could confine it further. A value no charge carries anywhere and that the scope's parameters do not rule out (a
    typo, a project not billed yet) selects no charge outside: the budget is judged here and reported as matching
    nothing, the item reaches the total, as in the whole warehouse."""
    sc = scoped(con, scope)
    other = _other_scope_key(con, filters, sc)
    if other is not None:
        return f"it is about other charges ({other}); this scope is {_scope_words(sc)} only"
    return partly_outside(con, filters, sc)


def partly_outside(con: duckdb.DuckDBPyConnection, filters: dict[str, Any] | None, sc: Any, *,
                   whose: bool = False) -> str | None:
    """The second part of :func:`outside_scope` (a budget or item not about another scope entirely): why it covers
    charges the narrowed scope leaves out, or None when its scope confines it inside. For a caller that has asked
    :func:`about_other_scope` already (:func:`finops_kit.budgets.budgets_in_scope`).

    ``whose`` (budgets): a key saying whose spend it is (team, project, ``ai``...) selects charges too -- the budget
    covers the charges all its keys select, and is partly outside only when one of them, in any period up to the
    scope's end (its forecast's year of history, its graded months), is a charge the scope leaves out; the reason
    then names where and when ("it covers charges on Microsoft too in 2026-03..2026-06, which this scope leaves
    out"), the words of the accelerator limits (:mod:`finops_kit.guard`). Why: with ``-p providers=["AWS"]`` the
    demo's research budget, every charge of it on AWS in every month, was "not judged: it covers all providers"
    ($12,972.02 of $12,000 spent, over budget in the report without the parameter, no alert here) while the same
    run judged research's accelerator limit. Roadmap items keep the charge keys only (an item naming no provider may
    land on any provider)."""
    if not narrowed(con, sc, charges=True):
        return None  # its providers and accounts leave out no charge (every provider named; the currency: above)
    keys = {k: v for k, v in (filters or {}).items() if k in CHARGE_KEYS or k in BILL_KEYS}
    others = {k: v for k, v in (filters or {}).items() if k not in keys} if whose else {}
    out = _exact_frame(con, f"""
        SELECT ProviderName AS provider, SubAccountId AS account_id, SubAccountName AS account,
               BillingAccountId AS billing_id, BillingAccountName AS billing_account,
               strftime(min(ChargePeriodStart), '%Y-%m') AS first_month,
               strftime(max(ChargePeriodStart), '%Y-%m') AS last_month
        FROM {FOCUS_TABLE} f
        WHERE {filter_sql(keys | others, sc)} AND {_left_out_sql(sc, charges=True)}
        GROUP BY ALL""")

    def named(key: str) -> list[str]:
        val = keys.get(key)
        return [] if val is None else [str(v) for v in (val if isinstance(val, list | tuple | set) else [val])]

    # a value the scope's parameters leave out, not billed yet (provider [AWS, Oracle] in an AWS scope)
    ruled_out = {k: _ruled_out(con, sc, k, set(named(k)), dimension_values(con, k, sc) if k == "account" else set())
                 for k in CHARGE_KEYS if named(k)}
    if out.empty and not any(ruled_out.values()):
        return None

    def listed(values: Any) -> str:
        vals = sorted({str(v) for v in values if v is not None and v == v})
        return ", ".join(vals[:5]) + (f" and {len(vals) - 5} more" if len(vals) > 5 else "")

    def left_out(ids: str, names: str, wanted: tuple[str, ...]) -> pd.Series:
        return ~(out[ids].isin(wanted) | out[names].isin(wanted))

    covers, only = [], []
    providers = {p.lower() for p in sc.providers}
    if sc.providers and (ruled_out.get("provider") or any(str(p).lower() not in providers for p in out["provider"])):
        covers.append(f"provider {listed(named('provider'))}" if named("provider") else "all providers")
        only.append(", ".join(sc.providers))
    if sc.sub_accounts and (ruled_out.get("account") or left_out("account_id", "account", sc.sub_accounts).any()):
        covers.append(f"account {listed(named('account'))}" if named("account") else "all accounts")
        only.append(f"account {', '.join(sc.sub_accounts)}")
    if sc.billing_accounts and (gone := left_out("billing_id", "billing_account", sc.billing_accounts)).any():
        others = out.loc[gone, "billing_account"].fillna(out.loc[gone, "billing_id"])
        covers.append(f"charges of billing account {listed(others)}")
        only.append(f"billing account {', '.join(sc.billing_accounts)}")
    if not covers:  # outside on a parameter the checks above do not name (none today)
        return "some of the charges it covers are outside this scope"
    if others and not any(ruled_out.values()):  # whose spend: name the charges left out, where and when
        return f"it covers charges {_where_when(out, sc)} too, which this scope leaves out; this scope is " \
               f"{' and '.join(only)} only"
    return f"it covers {' and '.join(covers)}; this scope is {' and '.join(only)} only"


def _where_when(out: pd.DataFrame, sc: Any) -> str:
    """Where and when the charges in ``out`` (:func:`partly_outside`'s rows) lie, in words: "on Microsoft in
    2026-03..2026-06", "on Google Cloud in 2025-10..2026-11 and Microsoft in 2026-03", by provider when the scope
    names providers, else by account."""
    by = (out["provider"] if sc.providers else
          out["account"].fillna(out["account_id"]) if sc.sub_accounts else
          out["billing_account"].fillna(out["billing_id"]))
    g = out.assign(_w=by.fillna("(none)")).groupby("_w").agg(first=("first_month", "min"), last=("last_month", "max"))
    parts = [f"{w} in {r.first}" + (f"..{r.last}" if r.last != r.first else "") for w, r in g.iterrows()]
    where = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return ("on " if sc.providers else "of account " if sc.sub_accounts else "of billing account ") + where


def roadmap_in_scope(con: duckdb.DuckDBPyConnection, items: list[dict[str, Any]], scope: Any = None) -> list[dict]:
    """The roadmap items that belong to this scope's forecasts (:func:`outside_scope`): an Azure item, or an item
    naming no provider, is not added to an AWS-only forecast. An item naming a value no charge carries yet (a new
    project) stays: it reaches the total."""
    if not items:
        return []
    sc = scoped(con, scope)
    return [it for it in items if outside_scope(con, it.get("scope"), sc) is None]


def without_roadmap(y: np.ndarray, planned: pd.DataFrame) -> np.ndarray:
    """The history ``y`` without what the roadmap items running in it planned: the model learns the usage without
    an item and :func:`forecast` adds the item's remaining days once (else an item running at 'as of' counted
    twice). ``planned``: the items' planned daily amounts on the history's days (:func:`roadmap_daily`).

    An item that adds cost is taken out at its plan, at most the day's cost (a history never goes below 0: an item
    planned at three times what was billed made a month's forecast -$380,363); one that lowers cost (a
    decommission) is given back at its plan. Why the plan and not an estimate of what the bill shows of it: a
    regression review found that estimate (the cost above the level before the item) flattened the item's days to
    a fixed weekly pattern -- inflating the trust grade -- and stopped giving a decommission back once growth
    covered it, or when it started before the history."""
    y = np.asarray(y, dtype=float)
    plan = planned.sum(axis=1).to_numpy(dtype=float) if len(planned.columns) else np.zeros(len(y))
    take = np.where(plan > 0, np.minimum(plan, np.maximum(y, 0.0)), plan)  # plan < 0 (a decommission): given back
    return y - take


def roadmap_above_bill(y: np.ndarray, planned: pd.DataFrame, value: str) -> str:
    """A sentence when roadmap items planned more on past days than ``value`` was billed (empty when not).

    Why: :func:`without_roadmap` takes an item out at its plan, at most the day's cost, so such days train the model
    at $0 and the forecast adds the whole plan ahead -- for an item running below its plan (a smaller run, a later
    start than written) the plan, not the bill, decides the forecast. The kit cannot tell a wrong plan from a
    ramp-up; the reader is told which items and by how much, to check them."""
    y = np.asarray(y, dtype=float)
    if not len(planned.columns):
        return ""
    plan = planned.sum(axis=1).to_numpy(dtype=float)
    running = plan > 0
    above = running & (plan > y)
    if not above.any():
        return ""
    names = [str(c) for c in planned.columns if (planned[c].to_numpy(dtype=float)[above] > 0).any()]
    return (f"Roadmap {', '.join(repr(n) for n in names)} planned ${plan[above].max():,.0f} a day, more than {value} "
            f"was billed on {int(above.sum())} of {int(running.sum())} days it ran so far (at most "
            f"${max(float(y[above].max()), 0.0):,.0f}): those days train the model at $0 and the forecast adds the "
            "whole plan ahead; check the item's amount and start date.")


def roadmap_daily(items: list[dict[str, Any]], dimension: str, value: str, days: pd.DatetimeIndex,
                  filters: dict | None = None) -> pd.DataFrame:
    """Daily $ of each roadmap item that applies to ``dimension`` = ``value`` over ``days`` (one column each):
    the days ahead (added to the forecast) or the history's (taken out of the training series, :func:`forecast`).

    An item applies when it names the forecast dimension's value and every filter's value (team, provider,
    project, ...); every item applies to the unfiltered total.
    """
    cols: dict[str, np.ndarray] = {}
    scope = dict(filters or {})
    if dimension != "total":
        scope[dimension] = value
    for it in items:
        attrs = it.get("scope", {})
        if any(k not in attrs or str(attrs[k]) != str(v) for k, v in scope.items()):
            continue  # an item is attributed only where it names the value (it cannot be split otherwise)
        start, stop = pd.Timestamp(it["start"]), pd.Timestamp(it["end"]) if it.get("end") else None
        mask = (days >= start) & ((days <= stop) if stop is not None else True)
        arr = np.where(mask, float(it["daily"]), 0.0)
        if arr.any():
            cols[it["name"]] = cols.get(it["name"], 0) + arr
    return pd.DataFrame(cols, index=days) if cols else pd.DataFrame(index=days)


def forecast_frame(results: list[Forecast], *, history_days: int = 90) -> pd.DataFrame:
    """Long-format frame for charts: dimension value, day, kind (actual/forecast), amount, lo, hi (floats)."""
    parts = []
    for r in results:
        h = r.history.tail(history_days)
        parts.append(pd.DataFrame({"value": r.value, "day": h["day"], "kind": "actual", "amount": h["actual"],
                                   "lo": np.nan, "hi": np.nan}))
        if r.ok:
            d = r.daily
            parts.append(pd.DataFrame({"value": r.value, "day": d["day"], "kind": "forecast",
                                       "amount": d["expected"], "lo": d["lo"], "hi": d["hi"]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def backtest_evidence(result: Forecast) -> str:
    """How much evidence the forecast's backtest is, in the words of its own windows: "2 backtests of 7-day
    windows, origins 7 days apart (the windows share no day): 14 days of evidence, little on their own" -- or "...
    28-day windows, origins 7 days apart (they share 21 of their 28 days): 35 days ...". Empty without a backtest.
    Why: the report's prose said "a week apart, 28-day windows share 21 days" above a table showing 7-day horizons
    7 days apart, which share no day."""
    from .backtest import backtest_days

    bt = result.backtest
    if bt is None or len(bt) == 0:
        return ""
    rows = bt[bt["model"] == result.model]
    row = (rows if len(rows) else bt).iloc[0]
    n, h = int(row["origins"]), int(row["horizon_days"])
    step = int(row["step_days"]) if "step_days" in row and row["step_days"] == row["step_days"] else h
    if n < 2:
        windows = f"1 backtest of a {h}-day window"
    else:
        share = (f"they share {h - step} of their {h} days, so their errors are nearly one error seen twice"
                 if step < h else "the windows share no day")
        windows = f"{n} backtests of {h}-day windows, origins {step} days apart ({share})"
    return f"{windows}: {backtest_days(row)} days of evidence, little on their own."


def summary_table(results: list[Forecast]) -> pd.DataFrame:
    return pd.DataFrame([r.summary() for r in results])


def chart_frame(results: list[Forecast], *, history_days: int = 60) -> pd.DataFrame:
    """Small long-format frame for the offline chart: value, day, kind, amount and both interval levels."""
    parts = []
    for r in results:
        h = r.history.tail(history_days)
        parts.append(pd.DataFrame({"value": r.value, "day": h["day"], "kind": "actual", "amount": h["actual"]}))
        if r.ok:
            d = r.daily
            parts.append(pd.DataFrame({"value": r.value, "day": d["day"], "kind": "forecast",
                                       "amount": d["expected"], "lo_80": d["lo_80"], "hi_80": d["hi_80"],
                                       "lo_95": d["lo_95"], "hi_95": d["hi_95"]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def chart(frame: pd.DataFrame, *, title: str = "Daily cost: actual and forecast", default: str | None = None,
          level: int = 80):
    """Altair chart of actual + forecast with a dimension dropdown and an 80/95% interval toggle (both work in
    the offline HTML report: they are Vega params bound to inputs, not Python callbacks)."""
    import altair as alt

    values = list(dict.fromkeys(frame["value"]))
    df = frame.assign(day=pd.to_datetime(frame["day"]).dt.strftime("%Y-%m-%d"))
    pick = alt.param(name="series", value=default or values[0],
                     bind=alt.binding_select(options=values, name="Series "))
    lv = alt.param(name="level", value=level, bind=alt.binding_radio(options=[80, 95], name="Interval % "))
    base = alt.Chart(df).transform_filter(alt.datum.value == pick).encode(
        x=alt.X("day:T", title=None))
    band = base.transform_filter(alt.datum.kind == "forecast").transform_calculate(
        lo="level == 80 ? datum.lo_80 : datum.lo_95", hi="level == 80 ? datum.hi_80 : datum.hi_95",
    ).mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("lo:Q", title="EffectiveCost per day", axis=alt.Axis(format="$,.0f")), y2="hi:Q",
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("lo:Q", format="$,.0f", title="low"),
                 alt.Tooltip("hi:Q", format="$,.0f", title="high")])
    lines = base.mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        y=alt.Y("amount:Q"), color=alt.Color("kind:N", title=None,
                                             scale=alt.Scale(domain=["actual", "forecast"],
                                                             range=["#333333", "#4c78a8"])),
        strokeDash=alt.StrokeDash("kind:N", legend=None,
                                  scale=alt.Scale(domain=["actual", "forecast"], range=[[1, 0], [5, 3]])),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("kind:N"), alt.Tooltip("amount:Q", format="$,.0f")])
    return (band + lines).add_params(pick, lv).properties(title=title, width=680, height=280)
