"""Budgets, actual vs budget vs forecast, variance decomposition, and the roadmap file.

``finops.yaml`` sections read here::

    budgets:
      currency: USD
      thresholds: [80, 100]          # % of budget: alert when actual (or forecast) reaches it
      items:
        - name: LLM team
          scope: {team: llm}         # any forecast dimension: team, project, provider, service_category, ai, ...
                                     # (an account by its name or its id: forecast.VALUE_ALIASES)
          monthly: 95000             # every month ...
          months: {"2026-12": 120000}  # ... except these (only `months`: no budget in the other months;
                                       # 0: spend nothing, any spend is over budget)
    roadmap:
      file: data/samples/roadmap.yaml
      gpu_hour_rate: 4.10            # $ per GPU-hour when an item gives GPU-hours instead of $

Why variance is decomposed: "we are 12% over" starts a meeting; "+$9.8k of it is the llm team's on-demand
p5 hours in us-east-1, the rest is a storage price change" ends it. The change between two periods is split
along each dimension (service, account, team, usage type) and, where FOCUS gives a pricing quantity, into price
(unit rate changed) vs volume (more units) effects that add up exactly to the change.
"""

from __future__ import annotations

import csv
import io
import math
import weakref
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from .backtest import maturity_band
from .config import naming_file, reject_unknown, section
from .currency import format_money
from .errors import ConfigError, FinopsError
from .forecast import (
    _CHARGE_IDENTITY,
    BACKTEST_ORIGINS,
    CHARGES,
    DIMENSIONS,
    _by_filter,
    _day,
    _exact_frame,
    _recurring_by_value,
    _recurring_by_value_many,
    about_other_scope,
    as_of_day,
    as_of_days,
    daily_series_many,
    data_through_note,
    dimension_sql,
    dimension_values,
    filter_sql,
    forecast,
    forecast_inputs,
    found_nowhere,
    outside_scope,
    partly_outside,
    pending_recurring,
    scope_values_by_cost,
    scoped,
)
from .querycache import arrow

CENT = Decimal("0.01")


# --------------------------------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    name: str
    scope: dict[str, Any]
    #: every month's amount; None: only the ``months`` named have a budget
    monthly: Decimal | None
    months: dict[str, Decimal]
    #: the currency the amounts are in (``budgets.currency``); None: the scope's, whatever it is
    currency: str | None = None

    def for_month(self, month: str) -> Decimal | None:
        """Budget of ``month`` ('YYYY-MM'); None when the budget has none that month (only ``months`` given and
        not this one). An explicit 0 is a budget: spend nothing (any spend is over it)."""
        return self.months.get(month, self.monthly)

    def amount(self, month: str) -> Decimal:
        """Budget of ``month`` as an amount, 0 where it has none (:meth:`for_month` tells the two apart)."""
        got = self.for_month(month)
        return Decimal(0) if got is None else got


def _money(v: Any, key: str) -> Decimal:
    try:
        d = Decimal(str(v))
    except Exception:
        raise ConfigError(f"budgets: {key} = {v!r}: expected an amount of money") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"budgets: {key} = {v!r}: expected a non-negative amount")
    return d


def load_budgets(cfg: dict[str, Any]) -> tuple[list[Budget], list[float]]:
    """Budgets and alert thresholds (% of budget) from a loaded config; validated with one-line errors that name
    the config file and the key (an unknown setting too: ``montsh:`` silently meant "no budget for that month")."""
    with naming_file(cfg):
        return _load_budgets(cfg)


def _load_budgets(cfg: dict[str, Any]) -> tuple[list[Budget], list[float]]:
    sec = section(cfg, "budgets", {}) or {}
    if not isinstance(sec, dict):
        raise ConfigError("budgets: expected a mapping with 'items'")
    reject_unknown(sec, {"currency", "thresholds", "items"}, "budgets")
    raw = sec.get("thresholds", [80, 100])
    items = raw if isinstance(raw, list) else [raw]
    try:
        thresholds = [float(t) for t in items]
    except (TypeError, ValueError):
        raise ConfigError(f"budgets.thresholds: expected a list of % numbers, e.g. [80, 100]; got {raw!r}") from None
    # a percent of the budget above 0: -10 or 0 alerted at any spend, and true read as 1%
    if any(isinstance(t, bool) for t in items) or any(not (t > 0 and math.isfinite(t)) for t in thresholds):
        raise ConfigError(f"budgets.thresholds: expected percents of the budget above 0, e.g. [80, 100]; got {raw!r}")
    currency = _currency_code(sec.get("currency"), "budgets.currency")
    out = []
    for i, it in enumerate(sec.get("items", []) or []):
        where = f"items[{i}]"
        if not isinstance(it, dict) or "name" not in it:
            raise ConfigError(f"budgets: {where}: expected a mapping with name, scope and monthly")
        reject_unknown(it, {"name", "scope", "monthly", "months"}, f"budgets.{where}")
        if not isinstance(it.get("scope") or {}, dict):
            raise ConfigError(f"budgets: {where}.scope: expected a mapping such as {{team: nlp}}")
        if not isinstance(it.get("months") or {}, dict):
            raise ConfigError(f"budgets: {where}.months: expected a mapping such as {{\"2026-12\": 120000}}")
        scope = it.get("scope", {}) or {}
        for k in scope:
            if k not in DIMENSIONS or k == "total":
                raise ConfigError(f"budgets: {where}.scope.{k}: unknown dimension; expected one of "
                                  f"{', '.join(d for d in DIMENSIONS if d != 'total')}")
        if "monthly" not in it and not it.get("months"):
            raise ConfigError(f"budgets: {where} ({it['name']}): needs 'monthly' or 'months'")
        months = {}
        for m, v in (it.get("months") or {}).items():
            m = str(m)
            try:
                pd.Period(m, freq="M")
            except ValueError:
                raise ConfigError(f"budgets: {where}.months.{m}: expected YYYY-MM") from None
            months[m] = _money(v, f"{where}.months.{m}")
        monthly = _money(it["monthly"], f"{where}.monthly") if "monthly" in it else None  # only `months`
        if any(b.name == str(it["name"]) for b in out):  # a name is how the report, check and the index tell them
            raise ConfigError(f"budgets: {where}: a second budget named {str(it['name'])!r}; each budget needs its "
                              "own name (the report, check's alerts and its notes tell budgets apart by name)")
        out.append(Budget(str(it["name"]), dict(scope), monthly, months, currency))
    return out, thresholds


def month_actuals(con: duckdb.DuckDBPyConnection, filters: dict[str, Any], start: date, end: date, *,
                  scope: Any = None) -> pd.DataFrame:
    """Actual EffectiveCost per month in [start, end] for a budget's filters (all charges, Decimal)."""
    sc = scoped(con, scope)
    sql = f"""
        SELECT strftime(ChargePeriodStart, '%Y-%m') AS month, sum(EffectiveCost) AS actual
        FROM {sc.rows_sql(period=False)}
        WHERE {filter_sql(filters, sc)} AND ChargePeriodStart >= DATE '{start}' AND ChargePeriodStart < DATE '{end}' + 1
        GROUP BY 1 ORDER BY 1
    """
    return _exact_frame(con, sql)


def same_currency(budgets: list[Budget], sc: Any) -> None:
    """Refuse to compare budgets with spend in another currency (one line naming both).

    Why: ``budgets.currency`` was never read, so with ``currency.reporting_currency: EUR`` the USD budgets were
    compared with EUR-converted spend and every budget alert went quiet. Converting a budget with the spend's rate
    table would silently move the owner's number; the owner states the budget in the currency it is managed in."""
    cur = getattr(sc, "currency", None)
    for b in budgets:
        if b.currency and cur and b.currency != cur:
            raise ConfigError(f"budgets.currency is {b.currency} but the scope reports in {cur} "
                              "(currency.reporting_currency or -p currency): budgets are compared with spend in "
                              f"one currency; state the budgets in {cur} (budgets.currency: {cur}) or report in "
                              f"{b.currency}")


#: The status of a budget :func:`budgets_in_scope` does not judge in a narrowed scope.
NOT_JUDGED = "not judged in this scope"


def budgets_in_scope(con: duckdb.DuckDBPyConnection, budgets: list[Budget], scope: Any = None
                     ) -> tuple[list[Budget], dict[str, str]]:
    """The budgets this scope judges, and the ones it lists without judging them (name -> why, in words).

    A budget's amount is for the charges its own scope names: all providers', unless it names one. In a scope
    narrowed by charge parameters (``-p providers=...``, billing or sub accounts) it is judged only when its scope
    confines it to charges inside (:func:`finops_kit.forecast.outside_scope`, the rule roadmap items follow too): a
    budget naming provider AWS in an AWS scope, or a team's budget whose charges, every period up to the scope's end,
    all lie inside (``partly_outside(whose=True)``: the reason names the charges left out, where and when). The others are listed "not judged in this scope" with the reason
    ("it covers all providers; this scope is AWS only") and raise no alert. Why: the AWS-only report compared the
    company-wide $500,000 with the AWS actual and forecast and said "on track" (-51.2%), and the nlp budget's
    breach forecast on all providers disappeared. A budget about another scope's charges entirely
    (:func:`finops_kit.forecast.about_other_scope`: an Azure budget in an AWS report) is in neither list. A budget
    naming a value no charge of the warehouse carries (:func:`finops_kit.forecast.found_nowhere`: a typo, 'Oracel')
    is judged in every scope, so that :func:`budget_status` reports it as matching nothing whatever the scope."""
    sc = scoped(con, scope)
    judged, not_judged = [], {}
    for b in budgets:
        if found_nowhere(con, b.scope, sc):  # a typo is nobody's scope: reported here as in the whole warehouse
            judged.append(b)
            continue
        if about_other_scope(con, b.scope, sc):
            continue  # another scope's budget entirely: in neither list
        why = partly_outside(con, b.scope, sc, whose=True)  # outside_scope's second part (the first: above)
        if why is None:
            judged.append(b)
        else:
            not_judged[b.name] = why
    return judged, not_judged


def not_judged_groups(pairs: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """(names, reason) once per reason, in the order the reasons first come, for the budgets a scope did not judge
    (``pairs``: (name, reason)); a reason said of several ("it covers all providers; ...") reads "each covers ...".
    Why one function: the report's sentence (:func:`not_judged_sentence`) and ``check``'s note
    (:func:`finops_kit.alerts.notes_text`) each grouped them their own way."""
    why: dict[str, list[str]] = {}
    for name, reason in pairs:
        why.setdefault(reason, []).append(name)
    return [(names, "each " + reason[3:] if len(names) > 1 and reason.startswith("it ") else reason)
            for reason, names in why.items()]


def not_judged_sentence(status: pd.DataFrame) -> str:
    """One line per reason naming the budgets :func:`budget_status` did not judge in this scope (empty when it
    judged all): what a reader of the budget table must know about the rows without figures."""
    if status is None or status.empty or "status" not in status:
        return ""
    rows = status[status["status"] == NOT_JUDGED]
    lines = []
    for names, why in not_judged_groups([(b, str(n).split(": ", 1)[-1]) for b, n in zip(rows["budget"], rows["note"],
                                                                                        strict=True)]):
        one = len(names) == 1
        lines.append(f"Not judged in this scope: {', '.join(names)} ({why}). "
                     f"{'Its amount is' if one else 'Their amounts are'} for charges this scope leaves out, so this "
                     f"scope's spend is not compared with {'it' if one else 'them'}; the report without the "
                     f"narrowing parameters judges {'it' if one else 'them'}.")
    return "\n".join(lines)


#: The columns of :func:`budget_status`, in order.
STATUS_COLUMNS = ["budget", "scope", "month", "as_of", "budget_amount", "actual_mtd", "pct_used", "burn_rate",
                  "days_elapsed", "days_left", "required_daily", "forecast", "forecast_lo", "forecast_hi",
                  "not_posted_yet", "variance", "variance_pct", "breach_date", "breach_probability", "status", "note",
                  "not_posted_what"]


def _status_row(b: Budget, status: str, note: str | None, **figures: Any) -> dict[str, Any]:
    """One row of :func:`budget_status`: the budget's name and scope in words, its status and note, and the
    ``figures`` it has (every other column empty). Why: the row was spelled out three times (judged, not judged, no
    budget), twenty keys each, and a column added to one had to be added to the others by hand."""
    unknown = set(figures) - set(STATUS_COLUMNS)
    if unknown:
        raise TypeError(f"budget_status has no column {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(STATUS_COLUMNS)
    row.update(figures, budget=b.name, scope=", ".join(f"{k}={v}" for k, v in b.scope.items()) or "all costs",
               status=status, note=note)
    return row


#: Per connection: (key, status) of the latest :func:`budget_status` computed on it (see :func:`_status_key`).
_status_memo: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], pd.DataFrame]] = weakref.WeakKeyDictionary()


def _status_key(con: duckdb.DuckDBPyConnection, sc: Any, budgets: list[Budget], as_of: Any, level: float,
                forecast_results: Any, roadmap: Any, model: str) -> tuple[Any, ...] | None:
    """What decides :func:`budget_status`'s answer on ``con``, or None when it must be computed (never reused).

    Why: the forecast report computes its budgets' status in section 4 and its alerts (:func:`finops_kit.alerts.
    evaluate`, section 7) the same again, with the same arguments -- 0.4 s of Python even when every query and fit
    comes from the caches. The answer is a function of: the warehouse (a read-only file with an ingest ledger,
    :func:`finops_kit.querycache.warehouse_state`, which moves with the file's change stamps and the session's
    time zone, calendar and collation), its FOCUS table not shadowed by a temporary object or macro
    (:func:`finops_kit.querycache.cacheable`); the budgets, the day asked, level, roadmap and model as given
    (compared by ``repr``: an equal value spelled otherwise is only a miss); the scope -- its period, providers,
    accounts, currency and conversion (``repr``), the rows it reads with the rates it converts by
    (:meth:`~finops_kit.scope.Scope.rows_sql`) and the tag policy and allocation its attribution reads teams by.
    Forecasts given by the caller (``forecast_results``) are never keyed: computed every time. Only
    ``budget_status(..., reuse=True)`` reads the answer kept."""
    from .querycache import cacheable, warehouse_state

    if forecast_results is not None or getattr(sc, "con", None) is not con:
        return None
    state = warehouse_state(con)
    rows = sc.rows_sql()
    if state is None or not cacheable(con, f"SELECT * FROM {rows}"):
        return None
    attr = sc.attribution
    return (state, repr(sc), rows, attr.policy, attr.allocation, repr(budgets), repr(as_of), repr(level),
            repr(roadmap), repr(model))


def budget_status(con: duckdb.DuckDBPyConnection, budgets: list[Budget], *, as_of: date | str | None = None,
                  level: float = 80, forecast_results: dict[str, Any] | None = None,
                  roadmap: list[dict] | None = None, model: str = "auto", scope: Any = None,
                  reuse: bool = False) -> pd.DataFrame:
    """Actual vs budget vs forecast for the month containing ``as_of``, one row per budget.

    Columns: budget, month, as_of (the day it is judged on: ``as_of``, or the last day its providers have delivered
    when that is earlier, :func:`~finops_kit.forecast.as_of_day`), budget_amount, actual_mtd, burn_rate (per day so far), days_elapsed, days_left,
    required_daily (to land on budget; empty once it is exceeded), forecast (end of month), forecast_lo/hi,
    variance ($, %: forecast vs budget), pct_used, breach_date (first day cumulative actual+forecast exceeds budget; the actual day when
    already breached), breach_probability (share of simulated month totals above budget; 1.0 once the actual has
    crossed it), status: "over budget" once the actual has crossed it, "forecast over budget", "on track", "no
    forecast (20 days of history)" (the reason: a forecast needs 5 weeks of usage history; nothing is judged on
    track without one), "no budget" (a budget given for other ``months`` only: nothing to compare, no alert) or
    "matches no charges" (the scope names a value no charge carries) or "not judged in this scope" (a scope
    narrowed by charge parameters, and a budget whose own scope covers charges it leaves out: its note says why,
    :func:`budgets_in_scope`; no actual, forecast or alert). An explicit budget of 0 means "spend nothing": any
    spend (or forecast spend) is over it; its percentages are empty.

    ``variance`` and ``variance_pct`` are the forecast's (forecast - budget); without a forecast they are empty, not
    month-to-date against the whole month's budget. Judged on a month's last day, the month's days are over: its
    forecast (and range) is its actual plus what :func:`not_posted_yet` still expects -- last month's
    once-a-month charges (the tax) not posted yet, the rule the forecast adds them by and the variance section sets
    them apart by -- and without such charges the month is complete: its forecast is its actual, and the variance
    is the month's final one. A scope with no usage-based
    charges (a support plan billed monthly) is forecast as its actual plus its recurring charges
    (:func:`finops_kit.forecast.forecast`).

    ``roadmap``: a budget's forecast counts the items that name every key of its scope with its value (a budget on
    {team: nlp} the items that say team: nlp; on {ai: AI} only items that say ai: AI; a budget with no scope every
    item).

    ``reuse``: when the latest status computed on this connection had the same arguments on the same read-only
    warehouse (:func:`_status_key`), answer a copy of it instead of computing it again -- the forecast report's
    alerts (section 7) judge the budgets its section 4 has just computed. Asked for by the caller, who knows
    nothing else has changed in between (no code patched, as a test does); every other call computes.
    """
    sc = scoped(con, scope)
    key = _status_key(con, sc, budgets, as_of, level, forecast_results, roadmap, model)
    seen = _status_memo.get(con) if key is not None and reuse else None
    if seen is not None and seen[0] == key:
        return seen[1].copy()
    out = _budget_status(con, budgets, sc, as_of=as_of, level=level, forecast_results=forecast_results,
                         roadmap=roadmap, model=model)
    if key is not None:
        _status_memo[con] = (key, out.copy())
    return out


def _budget_status(con: duckdb.DuckDBPyConnection, budgets: list[Budget], sc: Any, *, as_of: date | str | None,
                   level: float, forecast_results: dict[str, Any] | None, roadmap: list[dict] | None,
                   model: str) -> pd.DataFrame:
    """:func:`budget_status` computed, on the scope ``sc`` bound to ``con``."""
    same_currency(budgets, sc)
    rows = []
    known: dict[str, list[str]] = {}  # each dimension's values in scope, read once for all budgets
    asked = _day(as_of)
    judged, not_judged = budgets_in_scope(con, budgets, sc)
    given = {b.name: getattr((forecast_results or {}).get(b.name), "as_of", None) for b in budgets}
    # every budget's as-of day, month-to-date series and forecast data read once for all of them (one query per
    # kind, forecast.forecast_inputs), not once per budget: the same figures, the forecast report's slowest part
    ask = [b for b in budgets if b.name in not_judged or (b in judged and given[b.name] is None)]
    day_of = dict(zip((b.name for b in ask), as_of_days(con, sc, as_of, [b.scope for b in ask]), strict=True))
    todo = [b for b in budgets if b in judged and b.name not in not_judged and (given[b.name] or day_of[b.name])]
    mtd, inputs = {}, {}
    for d in dict.fromkeys(given[b.name] or day_of[b.name] for b in todo):
        group = [b for b in todo if (given[b.name] or day_of[b.name]) == d]
        mstart = date(d.year, d.month, 1)
        mtd.update(zip((b.name for b in group), daily_series_many(
            con, "total", [b.scope for b in group], start=mstart, end=d, charges="all", scope=sc), strict=True))
        fore = [b for b in group if (forecast_results or {}).get(b.name) is None
                and d < (pd.Timestamp(mstart) + pd.offsets.MonthEnd(0)).date()]
        inputs.update(zip((b.name for b in fore), forecast_inputs(con, "total", [b.scope for b in fore], horizon="month",
                                                                   scope=sc, _as_of_days=[d] * len(fore)), strict=True))
    for b in budgets:
        if b not in judged and b.name not in not_judged:
            continue  # a budget on charges outside this scope (another provider's): not this scope's to judge
        if b.name in not_judged:  # it covers charges this scope leaves out: its amount is not for this scope's
            as_of_d = day_of[b.name] or asked
            month = f"{as_of_d:%Y-%m}" if as_of_d else None
            rows.append(_status_row(b, NOT_JUDGED, f"{NOT_JUDGED}: {not_judged[b.name]}", month=month, as_of=as_of_d,
                                    budget_amount=b.for_month(month) if month else None))
            continue
        fc = (forecast_results or {}).get(b.name)
        # each budget as of the last day its providers have delivered (a day not delivered is not $0 spent): an
        # Azure budget is not judged on the days AWS has and Azure has not; a given forecast has its own day
        as_of_d = given[b.name] or day_of[b.name]
        if as_of_d is None:
            raise FinopsError("the warehouse holds no charges: no budget to check; run 'finops-kit ingest' first")
        month = f"{as_of_d:%Y-%m}"
        mstart = date(as_of_d.year, as_of_d.month, 1)
        mend = (pd.Timestamp(mstart) + pd.offsets.MonthEnd(0)).date()
        amount = b.for_month(month)  # None: no budget this month (a budget given for other months only)
        nothing = scope_matches_nothing(con, b.scope, sc, known)
        daily = mtd[b.name]
        actual = sum(daily["cost"], Decimal(0)) if not daily.empty else Decimal(0)
        elapsed = (as_of_d - mstart).days + 1
        left = (mend - as_of_d).days
        late = data_through_note(asked, as_of_d) or None
        if amount is None and not nothing:
            rows.append(_status_row(b, "no budget", "; ".join(t for t in (late, f"no budget for {month}: the budget "
                                                                          f"names {', '.join(sorted(b.months))} only")
                                                              if t),
                                    month=month, as_of=as_of_d, actual_mtd=actual.quantize(CENT),
                                    burn_rate=(actual / elapsed).quantize(CENT), days_elapsed=elapsed, days_left=left))
            continue
        amount = Decimal(0) if amount is None else amount
        complete = left == 0  # the month is over as of its last day: its actual is its final figure, no forecast
        if fc is None and not complete:
            res = forecast(con, "total", as_of=as_of_d, horizon="month", level=level, filters=b.scope,
                           roadmap=[r for r in (roadmap or []) if _roadmap_in_scope(r, b.scope)], model=model,
                           backtest_origins=BACKTEST_ORIGINS if model == "auto" else 0, scope=sc,
                           inputs=inputs[b.name])
            # no trust statement is shown: a backtest runs only to choose the model, the same way as for every
            # forecast (forecast.BACKTEST_ORIGINS), so a team's budget forecast is the team's forecast
            fc = res[0] if res else None
        ok = fc is not None and fc.ok and not complete
        # last month's once-a-month charges not posted yet (the tax): in the forecast (forecast.pending_recurring,
        # the same rule), and in a complete month's figure -- its days are over, not always its charges
        pend = (_pending_parts(con, as_of_d, b.scope, sc, inputs[b.name].recurring if b.name in inputs else None)
                if complete or ok else None)
        owed = sum(pend["amount"], Decimal(0)).quantize(CENT) if pend is not None and len(pend) else Decimal(0)
        f_total = float(actual + owed) if complete else fc.expected_total if ok else None
        breach, prob = None, (float(f_total > float(amount)) if complete else None)
        cum = daily.sort_values("day").assign(c=lambda d: d["y"].cumsum()) if not daily.empty else daily
        over = cum[cum["c"] > float(amount)] if not daily.empty else cum
        if not over.empty:
            # already over: the month cannot end below the budget (spend is not refunded by waiting); a $0 budget
            # is over on the first day anything is spent
            breach, prob = over["day"].iloc[0].date(), 1.0
        elif ok:
            path = float(actual) + fc.daily["expected"].cumsum()
            hit = fc.daily.loc[path > float(amount), "day"]
            breach = hit.iloc[0].date() if not hit.empty else None
            prob = float(np.mean(fc.total_paths > float(amount)))
        # forecast vs budget; no forecast, no variance (month-to-date against the whole month's budget is not one)
        var = (Decimal(str(round(f_total, 2))) - amount) if f_total is not None else None
        var_pct = float(100 * var / amount) if amount and var is not None else None
        status = ("matches no charges" if nothing else "over budget" if actual > amount else
                  "forecast over budget" if f_total is not None and f_total > float(amount) else
                  "on track" if f_total is not None else f"no forecast ({_no_forecast_reason(fc)})")
        rows.append(_status_row(
            b, status, nothing or "; ".join(t for t in (late, _complete_note(owed, sc.currency) if complete else
                                                        None if fc is None or fc.ok else fc.message)
                                            if t) or None,
            month=month, as_of=as_of_d, budget_amount=amount, actual_mtd=actual.quantize(CENT),
            pct_used=float(100 * actual / amount) if amount else None,
            burn_rate=(actual / elapsed).quantize(CENT), days_elapsed=elapsed, days_left=left,
            # none once the budget is exceeded: no daily spend lands the month on it (the status says over budget)
            required_daily=((amount - actual) / left).quantize(CENT) if left > 0 and actual <= amount else None,
            forecast=round(f_total, 2) if f_total is not None else None,
            forecast_lo=round(f_total, 2) if complete else round(fc.total_lo, 2) if ok else None,
            forecast_hi=round(f_total, 2) if complete else round(fc.total_hi, 2) if ok else None,
            not_posted_yet=owed if pend is not None else None,
            not_posted_what=_pending_words(pend, as_of_d) if owed else None,
            variance=var.quantize(CENT) if var is not None else None, variance_pct=var_pct,
            breach_date=breach, breach_probability=prob))
    return pd.DataFrame(rows)


def _complete_note(owed: Decimal, currency: str | None) -> str:
    """A month judged on its last day, in words: complete, or its days over with ``owed`` still expected."""
    if not owed:
        return "the month is complete: its forecast is its actual"
    return (f"the month's days are over, not its invoice: its forecast is its actual and last month's once-a-month "
            f"charges not posted yet ({format_money(owed, currency)}, expected again)")


def not_posted_yet(con: duckdb.DuckDBPyConnection, as_of: date, *, filters: dict[str, Any] | None = None,
                   scope: Any = None, recurring: dict[str, pd.DataFrame] | None = None) -> Decimal:
    """Last month's once-a-month charges (a month's tax, dated the 1st) that have not posted yet in ``as_of``'s
    month, in money (exact): what :func:`budget_status` still expects of a month judged on its last day.

    One rule, :func:`finops_kit.forecast.pending_recurring`, which the forecast adds them by and
    :func:`pending_charges` sets them apart by. Why: on the demo without October's tax posted (as at the close of
    October, before the invoice), a report as of 2026-10-31 said in its variance section "September's tax
    $22,158.03 ... has no October counterpart yet: not posted yet, not stopped" and, for the Cloud total budget,
    "the month is complete: its forecast is its actual" ($465,437.86, the tax left out). ``recurring``: as in
    :func:`_pending_parts`, when read already."""
    parts = _pending_parts(con, _day(as_of), filters, scoped(con, scope), recurring)
    return sum(parts["amount"], Decimal(0)).quantize(CENT)


def _pending_parts(con: duckdb.DuckDBPyConnection, d: date, filters: dict[str, Any] | None, sc: Any,
                   recurring: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """:func:`not_posted_yet` by kind ("tax", "recurring fee", ...: :func:`pending_charges`' kinds): kind, amount
    (exact); no rows when nothing is pending. ``recurring``: the filters' recurring charges as of ``d`` (dimension
    total), when read already (:func:`~finops_kit.forecast.forecast_inputs`)."""
    month = date(d.year, d.month, 1)
    last = ((pd.Timestamp(month) - pd.offsets.MonthBegin(1)).date(), month - timedelta(days=1))
    pend = _pending(con, last, (month, d), filters, sc, recurring)
    if pend == "FALSE":
        return pd.DataFrame(columns=["kind", "amount"])
    return _exact_frame(con, f"""
        SELECT {_PENDING_KIND} AS kind, sum(EffectiveCost) AS amount
        FROM {sc.rows_sql(period=False)}
        WHERE {filter_sql(filters, sc)} AND {pend}
        GROUP BY 1 HAVING sum(EffectiveCost) <> 0 ORDER BY abs(sum(EffectiveCost)) DESC, 1""")


def _pending_words(parts: pd.DataFrame | None, as_of: date) -> str | None:
    """What :func:`_pending_parts` expects again, in words: "October's tax", "October's tax and recurring fee"."""
    if parts is None or parts.empty:
        return None
    last = pd.Timestamp(as_of.year, as_of.month, 1) - pd.offsets.MonthBegin(1)
    return f"{last:%B}'s {' and '.join(str(k) for k in parts['kind'])}"


def not_posted_sentence(status: pd.DataFrame, currency: str | None = None) -> str:
    """One line per budget whose forecast (or month figure) counts once-a-month charges not posted yet
    (``not_posted_yet``: last month's tax, expected again): how much, what, and what the forecast is without
    them; when they alone carry the running total over the budget on the first forecast day -- where the forecast
    places them (:func:`finops_kit.forecast._recurring_component`) -- that the breach date is that placement, not a
    day of spend. Why: the demo's "Shared platform" read "forecast $60,441 vs $50,000, crosses it 2026-11-27", the
    day after the data ends; $23,508.81 of it is October's tax, and without it the forecast is $36,932.56, under the
    budget: a reader asked the platform team what spikes on the 27th."""
    if status is None or status.empty or "not_posted_yet" not in status:
        return ""
    lines = []
    for r in status.to_dict("records"):
        owed, f_total, amount = r.get("not_posted_yet"), r.get("forecast"), r.get("budget_amount")
        if owed is None or owed != owed or not owed or f_total is None or f_total != f_total:
            continue
        rest = Decimal(str(f_total)) - Decimal(owed)
        side = ("over" if rest > amount else "under") if amount is not None else ""
        line = (f"{r['budget']}: its {'month figure' if not r.get('days_left') else 'forecast'} "
                f"{format_money(Decimal(str(f_total)), currency)} counts {r.get('not_posted_what') or 'charges'} "
                f"{format_money(Decimal(owed), currency)}, booked once a month and not posted yet (expected again); "
                f"without it {format_money(rest, currency)}"
                + (f", {side} the {format_money(Decimal(amount), currency)} budget" if side else ""))
        breach, as_of = r.get("breach_date"), r.get("as_of")
        if (r.get("days_left") and breach is not None and breach == breach and as_of is not None
                and breach == as_of + timedelta(days=1) and Decimal(r["actual_mtd"]) <= Decimal(amount)
                and Decimal(r["actual_mtd"]) + Decimal(owed) > Decimal(amount)):
            line += (f". Its breach date {breach} is the first forecast day, where such charges are placed, not a day"
                     " of spend")
        lines.append(line + ".")
    return "\n".join(lines)


def _no_forecast_reason(fc: Any) -> str:
    """Why a budget has no forecast, in a few words for its status: "20 days of history", "forecast disabled in
    alerts config", "no charges to forecast"."""
    if fc is None:
        return "no charges to forecast"
    history = getattr(fc, "history", None)
    if isinstance(history, pd.DataFrame) and fc.message and "days of history" in fc.message:
        return f"{len(history)} days of history"
    return str(fc.message or "no forecast").split(":")[0]


def scope_matches_nothing(con: duckdb.DuckDBPyConnection, filters: dict[str, Any], scope: Any = None,
                          known: dict[str, list[str]] | None = None) -> str | None:
    """Why a budget's scope can match no charge -- ``"team 'nlpp' matches no charge in scope (its team values:
    cv, nlp, ...)"`` -- or None when every dimension of it names a value the scope's charges carry (over all its
    periods). Why: a typo in a budget's scope read $0 spent, "on track", and never alerted. ``known``: each
    dimension's values already read (filled here), for a caller that checks several budgets. A key naming a value no
    charge of the warehouse carries (:func:`finops_kit.forecast.found_nowhere`) is said first, with the values of
    the whole warehouse (in the scope's currency): the same line in every scope, ``-p providers=[AWS]`` or none."""
    from dataclasses import replace

    sc = scoped(con, scope)
    known = {} if known is None else known
    nowhere = found_nowhere(con, filters, sc)
    for dim, val in sorted((filters or {}).items(), key=lambda kv: kv[0] not in nowhere):
        wanted = [str(v) for v in (val if isinstance(val, list | tuple | set) else [val])]
        if dim not in known:  # through the query cache: the report, then its alerts, ask again
            known[dim] = scope_values_by_cost(con, dim, sc)
        values = known[dim]
        if dim in nowhere:  # a typo: said as the whole warehouse (of the scope's currency) says it, in any scope
            values = scope_values_by_cost(con, dim, replace(sc, providers=(), billing_accounts=(), sub_accounts=()))
        elif set(wanted) & dimension_values(con, dim, sc):  # a value, or its other spelling (an account's id)
            continue
        if not set(wanted) & set(values):
            shown = ", ".join(sorted(map(str, values[:12]))) + (f" and {len(values) - 12} more" if len(values) > 12
                                                               else "")
            return (f"{dim} {', '.join(repr(v) for v in wanted)} matches no charge in scope "
                    f"(its {dim} values: {shown or 'none'})")
    return None


def budget_history(con: duckdb.DuckDBPyConnection, budgets: list[Budget], *, as_of: date | str | None = None,
                   months: int = 6, scope: Any = None) -> pd.DataFrame:
    """Closed months: budget, actual, variance $ and %, and the kit's variance band (:func:`backtest.maturity_band`),
    of the budgets the scope judges (:func:`budgets_in_scope`: in an AWS-only scope, a budget on all providers is
    not graded against the AWS spend).

    A month is graded on the figure :func:`budget_status` judged it by on its last day, until its invoice is in:
    the latest closed month counts, besides its ``actual``, the once-a-month charges of the month before that have
    not posted in it yet (:func:`not_posted_yet` as of its last day: the tax, posted with the invoice after the
    month's last day and dated the 1st) in ``not_posted_yet``, and its ``note`` says so ("invoice not posted yet:
    ..."); ``variance`` is ``actual + not_posted_yet - budget_amount``. Once the charge posts (a row dated in the
    month) the amount is 0 and the month is graded on its actual alone. Why this rule and not a month flagged
    "not graded" until then: it is the month-close rule of :func:`budget_status` (and of the forecast and the
    variance section, :func:`finops_kit.forecast.pending_recurring`), so the month has one figure whoever reads it
    -- ``check`` on October 31 alerted "forecast $3,600 = 103% of the $3,500 budget" and the next day this history
    graded October at its $3,100 actual, 11.4% under ("crawl"), the tax still not posted; a flagged month would
    leave the matrix without the month ``check`` had just alerted on and take the band from the month before. Only
    the latest closed month: an invoice posts within days of the month's end, so a charge still absent once the
    next month has closed too has stopped (a support plan cancelled), and an older month is graded on what posted.

    The columns are there when no month is (:data:`HISTORY_COLUMNS`): a warehouse whose data starts in the as-of
    month has no closed month, and the forecast report failed on that frame (KeyError: 'month', the corpus FOCUS
    sample)."""
    sc = scoped(con, scope)
    same_currency(budgets, sc)
    as_of_d = as_of_day(con, sc, as_of)
    first = (pd.Timestamp(as_of_d).to_period("M") - months).start_time.date()
    data_start = con.execute(
        f"SELECT min(CAST(ChargePeriodStart AS DATE)) FROM {sc.rows_sql(period=False)}").fetchall()[0][0]
    if data_start is None:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    first = max(first, date(data_start.year, data_start.month, 1))  # no budget history before the data starts
    last = date(as_of_d.year, as_of_d.month, 1) - timedelta(days=1)
    rows = []
    judged = budgets_in_scope(con, budgets, sc)[0]  # the budgets this scope judges (budget_status lists the rest)
    # every budget's months and the latest month's recurring charges, one query each for all budgets (not one per
    # budget): the figures month_actuals and not_posted_yet give
    actuals = _by_filter(con, sc, [b.scope for b in judged], "strftime(ChargePeriodStart, '%Y-%m') AS month, "
                         "sum(EffectiveCost) AS actual",
                         f"ChargePeriodStart >= DATE '{first}' AND ChargePeriodStart < DATE '{last}' + 1")
    recurring = _recurring_by_value_many(con, "total", [b.scope for b in judged], last, sc)
    for b, months_, rec in zip(judged, actuals, recurring, strict=True):
        act = months_.set_index("month")["actual"]
        latest = f"{last:%Y-%m}"
        for p in pd.period_range(first, last, freq="M"):
            m = str(p)
            amount = b.for_month(m)
            if amount is None:  # no budget that month: nothing to compare
                continue
            a = Decimal(act.get(m, 0) or 0)
            # the latest closed month's invoice may not be in: budget_status's month-close rule, until it posts
            owed = (not_posted_yet(con, last, filters=b.scope, scope=sc, recurring=rec) if m == latest
                    else Decimal(0))
            var = a + owed - amount
            pct = float(100 * var / amount) if amount else None
            rows.append({"budget": b.name, "month": m, "budget_amount": amount, "actual": a.quantize(CENT),
                         "not_posted_yet": owed, "variance": var.quantize(CENT), "variance_pct": pct,
                         "band": maturity_band(pct),
                         "note": (f"invoice not posted yet: graded with last month's once-a-month charges not posted "
                                  f"yet ({format_money(owed, sc.currency)}, expected again), as on its last day"
                                  if owed else None)})
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


#: The columns of :func:`budget_history`: ``not_posted_yet`` is what the latest closed month still expects (0 once
#: its invoice is in), counted in its ``variance``; ``note`` says so.
HISTORY_COLUMNS = ["budget", "month", "budget_amount", "actual", "not_posted_yet", "variance", "variance_pct", "band",
                   "note"]


def history_sentence(history: pd.DataFrame) -> str:
    """One line per budget whose latest closed month is graded with charges not posted yet (empty when none): what
    a reader of :func:`history_matrix` (variance % only) must know about that month's figure."""
    if history is None or history.empty or "note" not in history:
        return ""
    rows = history[history["note"].notna()]
    return "\n".join(f"{r.budget}, {r.month}: {r.note}." for r in rows.itertuples())


def history_matrix(history: pd.DataFrame) -> pd.DataFrame:
    """:func:`budget_history` as one row per budget: a column per closed month with its variance %, and the latest
    month's band. Empty (columns budget, band) when there is no closed month."""
    if history.empty:
        return pd.DataFrame(columns=["budget", "band"])
    months = history.sort_values("month")
    matrix = months.pivot_table(index="budget", columns="month", values="variance_pct", sort=False).reset_index()
    matrix.columns = [str(c) for c in matrix.columns]
    matrix["band"] = matrix["budget"].map(months.groupby("budget")["band"].last())
    return matrix


# --------------------------------------------------------------------------------------------------- variance
def day_for_day(as_of: date | str) -> tuple[tuple[date, date], tuple[date, date]]:
    """The periods of a day-for-day comparison of the month containing ``as_of``: ``(base, current)``, each an
    inclusive (first, last) day range with the same number of days -- the first N days of the month before and of
    this month, N = this month's days through ``as_of``, at most the month before's length.

    Why: the report compared Feb 1..28 with Mar 1..31 as "day for day" (+10.7% on a flat $1,000/day); on the 31st
    after a 30-day month +3.3%. When the month before is shorter, the current period stops at its length (Mar
    1..28 against Feb 1..28) rather than comparing more days with fewer."""
    d = _day(as_of)
    cur0 = date(d.year, d.month, 1)
    base0 = (pd.Timestamp(cur0) - pd.offsets.MonthBegin(1)).date()
    n = min(d.day, (cur0 - base0).days)
    return (base0, base0 + timedelta(days=n - 1)), (cur0, cur0 + timedelta(days=n - 1))


DECOMPOSE_DIMENSIONS = ("service", "account", "team", "project", "usage_type", "region")
#: The columns of :func:`decompose_change`.
DECOMPOSE_COLUMNS = ["dimension", "value", "base", "current", "delta", "pct_of_base", "growth_pct"]


def nothing_to_compare(con: duckdb.DuckDBPyConnection, base: tuple[date | str, date | str],
                       current: tuple[date | str, date | str], *, filters: dict[str, Any] | None = None,
                       scope: Any = None) -> str | None:
    """Why two windows cannot be compared -- the earlier one holds no charge of the scope, or the data starts
    after its first day (it covers only part of it) -- in a sentence, or None when they can.
    :func:`decompose_change` and :func:`price_volume` return nothing then.

    Why: the FOCUS sample's report compared 2024-08-01..08-29 (no data exists) with September, so every dollar of
    September read as a change ("Amazon EC2 +$12.00, before $0.00"); and a warehouse starting on 2025-10-15 compared
    6 days of October (1..20) with 20 of November: every row read about +240% "of its own before". Comparing only
    the days both windows hold would compare different weekdays and month positions under the same headings; the
    honest answer is that there is no comparable earlier window yet."""
    (b0, b1), _ = ((_day(a), _day(b)) for a, b in (base, current))
    sc = scoped(con, scope)
    # through the query cache: the report asks it, then pending_charges, decompose_change and price_volume again
    first, held = arrow(
        con, f"SELECT min(CAST(ChargePeriodStart AS DATE)), count(*) FILTER (WHERE ChargePeriodStart >= DATE '{b0}' "
        f"AND ChargePeriodStart < DATE '{b1}' + 1) FROM {sc.rows_sql(period=False)} "
        f"WHERE {filter_sql(filters, sc)}").to_pylist()[0].values()
    if first is None:
        return "Nothing to compare: no charge in this scope."
    if not held:
        when = f"the data in this scope starts on {first}" if first > b1 else "no charge in this scope is dated in it"
        return (f"Nothing to compare: the earlier window ({b0} .. {b1}) holds no charge ({when}), so every dollar "
                "of the later one would read as a change; no change is shown.")
    if first > b0:
        held_days, days = (b1 - first).days + 1, (b1 - b0).days + 1
        return (f"Nothing to compare: the data in this scope starts on {first}, inside the earlier window ({b0} .. "
                f"{b1}), which it covers for {held_days} of its {days} days, so the later window's other days would "
                "read as a change; no change is shown.")
    return None


def _pending(con: duckdb.DuckDBPyConnection, base: tuple[date, date], current: tuple[date, date],
             filters: dict[str, Any] | None, sc: Any, recurring: dict[str, pd.DataFrame] | None = None) -> str:
    """SQL predicate of the earlier window's rows that :func:`pending_charges` sets apart ("FALSE": none).
    ``recurring``: :func:`~finops_kit.forecast._recurring_by_value` (dimension total) as of ``current``'s last day,
    when read already."""
    (b0, b1), (_c0, c1) = base, current
    if recurring is None:
        recurring = _recurring_by_value(con, "total", filters, c1, sc)
    pend = pending_recurring(recurring.get("Total"), c1)
    pend = pend[(pend["day"] >= pd.Timestamp(b0)) & (pend["day"] <= pd.Timestamp(b1))] if len(pend) else pend
    if pend.empty:
        return "FALSE"
    month = date(c1.year, c1.month, 1)
    last = (pd.Timestamp(month) - pd.offsets.MonthBegin(1)).date()
    ids = ", ".join("'" + str(c).replace("'", "''") + "'" for c in pend.index)
    return (f"({CHARGES['recurring']} AND ChargePeriodStart >= DATE '{max(b0, last)}' "
            f"AND ChargePeriodStart < DATE '{min(b1, month - timedelta(days=1))}' + 1 "
            f"AND {_CHARGE_IDENTITY} IN ({ids}))")


#: The kind of a charge set apart as not posted yet, in words (:func:`pending_charges`, :func:`not_posted_sentence`).
_PENDING_KIND = ("CASE WHEN coalesce(CommitmentDiscountStatus, '') = 'Unused' THEN 'unused commitment' "
                 "WHEN ChargeCategory IN ('Tax', 'Credit', 'Adjustment') THEN lower(ChargeCategory) "
                 "ELSE 'recurring fee' END")


def pending_charges(con: duckdb.DuckDBPyConnection, base: tuple[date | str, date | str],
                    current: tuple[date | str, date | str], *, filters: dict[str, Any] | None = None,
                    scope: Any = None) -> pd.DataFrame:
    """The earlier window's charges a comparison sets apart: last month's once-a-month recurring charges (a
    month's tax, booked on the 1st) that have not posted yet in the month of ``current``'s last day -- the rule the
    forecast adds them by (:func:`finops_kit.forecast.pending_recurring`). One row per provider and kind: provider,
    kind ("tax", "unused commitment", "recurring fee", ...), month (of the earlier window's rows), amount (Decimal).

    Why: October 1-26 against November 1-26 showed October's tax ($13,235.35 AWS + $10,273.46 Google Cloud, dated
    Oct 1) as a fall to $0 leading every dimension (team (shared) -$23,220.87, service Invoice, usage type Tax,
    region (none)) while the forecast of the same report expected it: November is not invoiced yet. Set apart, the
    movers are the real ones ((shared) +$288)."""
    (b0, b1), (c0, c1) = ((_day(a), _day(b)) for a, b in (base, current))
    sc = scoped(con, scope)
    cols = ["provider", "kind", "month", "amount"]
    if nothing_to_compare(con, (b0, b1), (c0, c1), filters=filters, scope=sc):
        return pd.DataFrame(columns=cols)
    pend = _pending(con, (b0, b1), (c0, c1), filters, sc)
    if pend == "FALSE":
        return pd.DataFrame(columns=cols)
    return _exact_frame(con, f"""
        SELECT ProviderName AS provider,
               {_PENDING_KIND} AS kind,
               strftime(min(ChargePeriodStart), '%Y-%m') AS month, sum(EffectiveCost) AS amount
        FROM {sc.rows_sql(period=False)}
        WHERE {filter_sql(filters, sc)} AND {pend}
        GROUP BY 1, 2 ORDER BY 2, abs(sum(EffectiveCost)) DESC, 1""")


def pending_sentence(pending: pd.DataFrame, current: tuple[date | str, date | str], currency: str | None,
                     as_of: date | str | None = None) -> str:
    """The line that says what :func:`pending_charges` set apart (empty when nothing): "Set apart, not counted as a
    change: October's tax $23,508.81 (AWS $13,235.35, Google Cloud $10,273.46) has no November counterpart yet
    ...". ``as_of``: the report's day; on a month's last day the forecast has nothing left to forecast, and the
    line says who expects the charge then: the budgets' month figure (:func:`not_posted_yet`, the same rule)."""
    if pending is None or pending.empty:
        return ""
    pending = pending[pending["amount"] != 0]
    if pending.empty:
        return ""
    month = pd.Period(str(pending["month"].min()), freq="M")
    now = pd.Period(_day(current[1]), freq="M")
    parts = []
    for kind, g in pending.groupby("kind", sort=False):
        total = sum(g["amount"], Decimal(0))
        by = (" (" + ", ".join(f"{r.provider} {format_money(r.amount, currency)}" for r in g.itertuples()) + ")"
              if len(g) > 1 else f" ({g['provider'].iloc[0]})")
        parts.append(f"{kind} {format_money(total, currency)}{by}")
    day = _day(as_of)
    closed = day is not None and (day + timedelta(days=1)).day == 1  # the month's last day: its days are over
    who = ("the month's days are over, not its invoice: the budgets count it in the month's figure" if closed else
           "the forecast expects it again")
    return (f"Set apart, not counted as a change: {month:%B}'s {'; '.join(parts)}, booked once a month, has no "
            f"{now:%B} counterpart yet: not posted yet, not stopped ({who}). The rows below compare the rest.")


def decompose_change(con: duckdb.DuckDBPyConnection, base: tuple[date | str, date | str],
                     current: tuple[date | str, date | str], *, dimensions: tuple[str, ...] = DECOMPOSE_DIMENSIONS,
                     filters: dict[str, Any] | None = None, top: int = 5, scope: Any = None) -> pd.DataFrame:
    """Split the change in EffectiveCost from ``base`` to ``current`` (inclusive date ranges) per dimension.

    One row per (dimension, value) among the ``top`` movers of each dimension plus "(all other)" so that every
    dimension's deltas add up to the same total change. Columns: dimension, value, base, current, delta,
    ``pct_of_base`` = delta / the whole scope's spend in ``base`` × 100 ("Change (% of all spend before)") and
    ``growth_pct`` = delta / the row's own ``base`` × 100 ("Change (% of its own before)": the row's growth, -100
    for a value that stopped; empty when its ``base`` is 0). Money Decimal, percentages floats.

    Why both, and never a share of the net change: when movers offset each other the net change is near zero and
    shares explode (+23,628% and −45,931% of a −$42 change in the demo). The earlier period's spend of the whole
    scope is a stable denominator, and the rows of a dimension still add up to the total % change -- but next to a
    row's own "Before" a reader takes it for the row's growth (Virtual Machines $28,931.60 -> $32,641.29 read
    "0.9%", its growth is +12.8%; Invoice $10,273 -> $0 read "-2.5%"), so the column says what it divides by and
    the row's own growth stands beside it.

    Set apart: the earlier window's once-a-month recurring charges not posted yet this month
    (:func:`pending_charges`): they are not a change. Nothing when the earlier window starts before the data
    (:func:`nothing_to_compare`).
    """
    (b0, b1), (c0, c1) = ((_day(a), _day(b)) for a, b in (base, current))
    sc = scoped(con, scope)
    if nothing_to_compare(con, (b0, b1), (c0, c1), filters=filters, scope=sc):
        return pd.DataFrame(columns=DECOMPOSE_COLUMNS)
    pend = _pending(con, (b0, b1), (c0, c1), filters, sc)
    rows = []
    for dim in dimensions:
        sql = f"""
            SELECT {dimension_sql(dim, sc)} AS value,
                   coalesce(sum(EffectiveCost) FILTER (WHERE ChargePeriodStart >= DATE '{b0}'
                       AND ChargePeriodStart < DATE '{b1}' + 1), 0) AS base,
                   coalesce(sum(EffectiveCost) FILTER (WHERE ChargePeriodStart >= DATE '{c0}'
                       AND ChargePeriodStart < DATE '{c1}' + 1), 0) AS current
            FROM {sc.rows_sql(period=False)}
            WHERE {filter_sql(filters, sc)} AND ((ChargePeriodStart >= DATE '{b0}' AND ChargePeriodStart < DATE '{b1}' + 1)
               OR (ChargePeriodStart >= DATE '{c0}' AND ChargePeriodStart < DATE '{c1}' + 1)) AND NOT {pend}
            GROUP BY 1
        """
        df = _exact_frame(con, sql)
        if df.empty:
            continue
        df["delta"] = df["current"] - df["base"]
        df = df.loc[df["delta"].map(abs).astype(float).sort_values(ascending=False).index]
        head, tail = df.iloc[:top], df.iloc[top:]
        if not tail.empty:
            head = pd.concat([head, pd.DataFrame([{"value": "(all other)", "base": sum(tail["base"], Decimal(0)),
                                                   "current": sum(tail["current"], Decimal(0)),
                                                   "delta": sum(tail["delta"], Decimal(0))}])])
        base_total = sum(df["base"], Decimal(0))
        head = head.assign(dimension=dim, pct_of_base=[float(100 * d / base_total) if base_total else None
                                                       for d in head["delta"]],
                           growth_pct=[float(100 * d / b) if b else None
                                       for d, b in zip(head["delta"], head["base"], strict=True)])
        rows.append(head)
    if not rows:
        return pd.DataFrame(columns=DECOMPOSE_COLUMNS)
    return pd.concat(rows, ignore_index=True)[DECOMPOSE_COLUMNS]


def price_volume(con: duckdb.DuckDBPyConnection, base: tuple[date | str, date | str],
                 current: tuple[date | str, date | str], *, filters: dict[str, Any] | None = None,
                 top: int = 10, scope: Any = None) -> pd.DataFrame:
    """Price vs volume effects per (service, usage type, pricing unit) where FOCUS gives PricingQuantity.

    volume = (q1 − q0)·p0, price = (p1 − p0)·q1 with p = cost/quantity; items without a quantity in one of
    the periods (new, stopped, or not metered) go to ``other`` so that volume + price + other = delta exactly.
    The same charges as :func:`decompose_change`: pending recurring charges set apart, nothing when the earlier
    window starts before the data.
    """
    (b0, b1), (c0, c1) = ((_day(a), _day(b)) for a, b in (base, current))
    sc = scoped(con, scope)
    if nothing_to_compare(con, (b0, b1), (c0, c1), filters=filters, scope=sc):
        return pd.DataFrame()
    pend = _pending(con, (b0, b1), (c0, c1), filters, sc)
    sql = f"""
        WITH g AS (
          SELECT ServiceName AS service, coalesce(x_UsageType, '(none)') AS usage_type,
                 coalesce(PricingUnit, '(none)') AS unit,
                 coalesce(sum(EffectiveCost) FILTER (WHERE ChargePeriodStart < DATE '{b1}' + 1
                     AND ChargePeriodStart >= DATE '{b0}'), 0) AS c0,
                 coalesce(sum(EffectiveCost) FILTER (WHERE ChargePeriodStart >= DATE '{c0}'
                     AND ChargePeriodStart < DATE '{c1}' + 1), 0) AS c1,
                 coalesce(sum(PricingQuantity) FILTER (WHERE ChargePeriodStart < DATE '{b1}' + 1
                     AND ChargePeriodStart >= DATE '{b0}'), 0) AS q0,
                 coalesce(sum(PricingQuantity) FILTER (WHERE ChargePeriodStart >= DATE '{c0}'
                     AND ChargePeriodStart < DATE '{c1}' + 1), 0) AS q1
          FROM {sc.rows_sql(period=False)}
          WHERE {filter_sql(filters, sc)} AND ((ChargePeriodStart >= DATE '{b0}' AND ChargePeriodStart < DATE '{b1}' + 1)
             OR (ChargePeriodStart >= DATE '{c0}' AND ChargePeriodStart < DATE '{c1}' + 1)) AND NOT {pend}
          GROUP BY ALL
        )
        SELECT *, c1 - c0 AS delta FROM g ORDER BY abs(c1 - c0) DESC
    """
    df = _exact_frame(con, sql)
    if df.empty:
        return df
    vol, price, other, p0s, p1s = [], [], [], [], []
    for r in df.itertuples():
        if r.q0 > 0 and r.q1 > 0:
            p0, p1 = r.c0 / r.q0, r.c1 / r.q1
            v = ((r.q1 - r.q0) * p0).quantize(Decimal("0.000001"))
            pr = r.delta - v  # = (p1 − p0)·q1 exactly, up to the rounding of v
            vol.append(v)
            price.append(pr)
            other.append(Decimal(0))
            p0s.append(float(p0))
            p1s.append(float(p1))
        else:
            vol.append(Decimal(0))
            price.append(Decimal(0))
            other.append(r.delta)
            p0s.append(None)
            p1s.append(None)
    df = df.assign(unit_price_base=p0s, unit_price_current=p1s, volume_effect=vol, price_effect=price,
                   other_effect=other)
    return df.head(top).reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- roadmap
ROADMAP_KINDS = {"training_run": 1, "launch": 1, "expansion": 1, "decommission": -1, "saving": -1}
_SCOPE_KEYS = tuple(d for d in DIMENSIONS if d != "total")
_ITEM_KEYS = {"name", "kind", "start", "end", "cost", "daily_cost", "gpu_hours", "gpu_hour_rate", "currency"}


def load_roadmap(path: str | Path | None = None, *, cfg: dict[str, Any] | None = None,
                 base_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Read a roadmap (YAML ``items:`` list or CSV) into normalized items with a daily $ amount.

    Each item: name, kind (training_run / launch / expansion add cost; decommission / saving remove it), start,
    optional end (inclusive; open-ended launches run to the horizon), and one of ``cost`` (total $ spread evenly
    over start..end), ``daily_cost`` ($ per day), or ``gpu_hours`` (× ``gpu_hour_rate`` of the item or of the
    ``roadmap`` config section, spread over start..end). Scope keys (team, project, provider, ai, ...) attribute
    the item to dimension values as the data spells them (provider 'Google Cloud', the team as attributed: a team
    ``allocation.shared`` folds is '(shared)'); :func:`roadmap_scope_problems` names the ones no charge carries. An
    item reaches a forecast or a budget only where it names every key of its scope with that value
    (:func:`_roadmap_in_scope`); every item reaches the unfiltered total. Any other key is a one-line error.
    """
    sec = section(cfg or {}, "roadmap", {}) or {}
    default_rate = sec.get("gpu_hour_rate")
    # the currency the roadmap's amounts are stated in: roadmap.currency, else the budgets' (the same plan);
    # None: the scope's, whatever it is (forecast() refuses a roadmap in another currency than the scope's)
    named = "roadmap.currency" if sec.get("currency") else "budgets.currency"
    currency = _currency_code(sec.get("currency") or (section(cfg or {}, "budgets", {}) or {}).get("currency"),
                              named)
    target = path or sec.get("file")
    if not target:
        return []
    p = Path(target)
    if not p.is_absolute() and base_dir is not None and not p.exists():
        p = Path(base_dir) / p
    if not p.exists():
        raise ConfigError(f"{target}: roadmap file not found")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".csv":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        raw = [{k: v for k, v in r.items() if v not in (None, "")} for r in csv.DictReader(io.StringIO("\n".join(lines)))]
        default_rate = default_rate
    else:
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
        raw = doc.get("items", []) if isinstance(doc, dict) else doc
        if isinstance(doc, dict) and doc.get("gpu_hour_rate") is not None and default_rate is None:
            default_rate = doc["gpu_hour_rate"]
        if isinstance(doc, dict) and doc.get("currency") is not None:  # the file's own word wins
            currency = _currency_code(doc["currency"], f"{p}: currency")
    return [_roadmap_item(r, i, p, default_rate, currency) for i, r in enumerate(raw or [])]


def _currency_code(value: Any, named: str) -> str | None:
    """An ISO 4217 code (upper case) or None; anything else is a one-line error naming the setting."""
    if value is None:
        return None
    from .quality import currencies

    if not isinstance(value, str) or value.strip().upper() not in currencies():
        raise ConfigError(f"{named}: {value!r}; expected an ISO 4217 currency code such as USD")
    return value.strip().upper()


def _roadmap_item(r: dict[str, Any], i: int, p: Path, default_rate: Any, currency: str | None = None
                  ) -> dict[str, Any]:
    where = f"{p}: item {i + 1}"
    if not isinstance(r, dict) or "name" not in r or "start" not in r:
        raise ConfigError(f"{where}: expected name, kind, start and one of cost, daily_cost, gpu_hours")
    if r.get("currency") not in (None, ""):  # an item (a CSV column) may state its own
        currency = _currency_code(r["currency"], f"{where} ({r['name']}): currency")
    reject_unknown(r, _ITEM_KEYS | set(_SCOPE_KEYS), f"{where} ({r['name']})")  # 'teem: nlp' applied to all
    kind = str(r.get("kind", "launch"))
    if kind not in ROADMAP_KINDS:
        raise ConfigError(f"{where} ({r['name']}): kind {kind!r}; expected one of {', '.join(ROADMAP_KINDS)}")
    start = _day(r["start"])
    end = _day(r.get("end"))
    if end is not None and end < start:
        raise ConfigError(f"{where} ({r['name']}): end {end} is before start {start}")
    days = (end - start).days + 1 if end else None

    def num(key: str) -> float:
        try:
            return float(r[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{where} ({r['name']}): {key} = {r[key]!r}: expected a number") from None

    def money(v: float, places: int = 0) -> str:
        return format_money(v, currency, places) if currency else f"{v:,.{places}f}"

    if "daily_cost" in r:
        daily, basis = num("daily_cost"), f"{money(num('daily_cost'))}/day"
    elif "cost" in r or "gpu_hours" in r:
        if days is None:
            raise ConfigError(f"{where} ({r['name']}): a total cost or GPU-hours needs an end date")
        if "cost" in r:
            total, basis = num("cost"), f"{money(num('cost'))} over {days} days"
        else:
            rate = r.get("gpu_hour_rate", default_rate)
            if rate is None:
                raise ConfigError(f"{where} ({r['name']}): gpu_hours needs gpu_hour_rate (item or roadmap section)")
            total = num("gpu_hours") * float(rate)
            basis = f"{num('gpu_hours'):,.0f} GPU-h × {money(float(rate), 2)}"
        daily = total / days
    else:
        raise ConfigError(f"{where} ({r['name']}): needs cost, daily_cost or gpu_hours")
    scope = {k: str(r[k]) for k in _SCOPE_KEYS if k in r and r[k] not in (None, "")}
    sign = ROADMAP_KINDS[kind]
    return {"name": str(r["name"]), "kind": kind, "start": start, "end": end, "daily": sign * abs(daily),
            "basis": basis, "scope": scope, "currency": currency}


def roadmap_scope_problems(con: duckdb.DuckDBPyConnection, items: list[dict[str, Any]], scope: Any = None, *,
                           named: bool = False) -> list[Any]:
    """One line per roadmap item whose scope names a value no charge in scope carries -- ``"roadmap item 'Launch':
    provider 'GCP' matches no charge in scope (its provider values: AWS, Google Cloud, Microsoft)"`` -- as
    :func:`scope_matches_nothing` checks budgets (every key of the item that matches nothing, in one line).

    Why: an item applies to a forecast only where it names the forecast's value exactly (:func:`_roadmap_in_scope`,
    :func:`finops_kit.forecast.roadmap_daily`); 'GCP' for 'Google Cloud', or team 'platform' that allocation.shared
    folds into '(shared)', silently reached no per-provider, per-team or budget forecast. ``named``: (item name,
    line) pairs. A value new in the plan (a project with no charge yet) is named too: the line cannot tell it from
    a typo, and the item reaches only the total until charges carry it."""
    from .forecast import roadmap_in_scope

    sc = scoped(con, scope)
    known: dict[str, list[str]] = {}
    here = {id(it) for it in roadmap_in_scope(con, items, sc)}  # the forecasts' own rule: one answer
    out = []
    for it in items:
        keys = it.get("scope") or {}
        if id(it) not in here:  # an item this scope's forecasts do not add (another provider's, or one naming no
            # provider in an AWS-only scope: forecast.outside_scope): only its typos are this scope's to report,
            # as in the whole warehouse (forecast.found_nowhere)
            keys = {k: keys[k] for k in found_nowhere(con, keys, sc)}
        why = [w for k, v in keys.items() if (w := scope_matches_nothing(con, {k: v}, sc, known)) is not None]
        if why:
            line = f"roadmap item {it['name']!r}: {'; '.join(why)}"
            out.append((it["name"], line) if named else line)
    return out


def _roadmap_in_scope(item: dict[str, Any], scope: dict[str, Any]) -> bool:
    """Whether a roadmap item reaches a budget: it names every key of the budget's scope with the budget's value
    (an item cannot be split between values). A budget with no scope gets every item; a budget on {team: nlp}
    the items that say team: nlp, whatever else they name; a budget on {ai: AI} only items that say ai: AI."""
    attrs = item.get("scope", {})
    return all(k in attrs and str(attrs[k]) == str(v) for k, v in scope.items())


def roadmap_table(items: list[dict[str, Any]], con: duckdb.DuckDBPyConnection | None = None,
                  scope: Any = None) -> pd.DataFrame:
    """The roadmap as a table for the report (what was added to the forecast, and on what basis). With ``con``:
    ``in_this_forecast`` says whether the scope's forecasts add the item ("yes"), or why not ("no: it covers all
    providers; this scope is AWS only": :func:`finops_kit.forecast.outside_scope`, the rule the forecasts apply),
    so that an AWS-only report does not list an Azure launch as if it were in its total."""
    sc = scoped(con, scope) if con is not None else None
    rows = []
    for it in items:
        row = {"item": it["name"], "kind": it["kind"], "start": it["start"], "end": it["end"],
               "daily_$": round(it["daily"], 2), "basis": it["basis"],
               "scope": ", ".join(f"{k}={v}" for k, v in it["scope"].items()) or "total"}
        if sc is not None:
            why = outside_scope(con, it.get("scope"), sc)
            row["in_this_forecast"] = "yes" if why is None else f"no: {why}"
        rows.append(row)
    return pd.DataFrame(rows)


def pending_part(r: dict[str, Any], money: Any) -> str:
    """The part of a budget's forecast (a :func:`budget_status` row ``r``) that is last month's once-a-month
    charges not posted yet (``not_posted_yet``), in words, with ``money`` the caller's formatter: " (of which
    $23,509 is October's tax expected again, not posted yet)"; empty when none. One sentence for the report's
    summary and `finops-kit check`. Why: the demo's "Shared platform" line read "forecast $60,441 vs $50,000":
    $23,508.81 of it was October's tax, expected again, and the pool's own spend was under its budget."""
    owed = r.get("not_posted_yet")
    if owed is None or owed != owed or not owed:
        return ""
    return f" (of which {money(owed)} is {r.get('not_posted_what') or 'once-a-month charges'} expected again, not posted yet)"


def crossing_text(r: dict[str, Any], verb: str = "crosses it") -> str:
    """When a budget's running total crosses it (a :func:`budget_status` row ``r``): ", crossed it on 2026-11-25"
    when that day is in the data (on or before the day it is judged on), ", crosses it 2026-11-27" when it is
    forecast (``verb`` words the forecast case). Why: research, over on the 25th with data through the 26th, read
    "crosses it 2026-11-25"; and a pending once-a-month charge is placed on the first forecast day, so a forecast
    crossing can be the day after the data ends."""
    breach, as_of = r.get("breach_date"), r.get("as_of")
    if breach is None or breach != breach or breach == "":
        return ""
    if as_of is not None and as_of == as_of and as_of != "" and pd.Timestamp(breach) <= pd.Timestamp(as_of):
        return f", crossed it on {breach}"
    return f", {verb} {breach}"
