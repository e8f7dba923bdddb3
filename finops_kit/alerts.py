"""``finops-kit check``: budget and anomaly alert rules for a scheduled (daily/monthly) run.

Exit codes: 0 = no alert, 1 = at least one alert fired (a stale-data ``[data]`` alert included), 2 = error (bad
config, no warehouse), 3 = nothing to judge: no charge in the scope from the first of the judged month to the judged
day (``--as-of``, never after the scope's last day billed; default: that day) -- an empty warehouse or scope, an
``--as-of`` before its data (:func:`nothing_to_judge`). A late or stopped export is not 3: ``check`` judges as of the
last day billed, and without ``--as-of`` the ``[data]`` alert (exit 1) says the data stopped arriving. A cron job or CI step notifies on a non-zero exit and forwards the short
summary printed on stdout.

``finops.yaml``::

    alerts:
      budgets: true                 # evaluate every budget of the budgets section ...
      forecast: true                # ... against its end-of-month forecast too, not only the actual (also once
                                    # an actual threshold fired; not a threshold the actual has crossed already)
      forecast_thresholds: [100]    # % of the budget the forecast must reach (each above 0)
      anomalies:
        dimensions: [total, team, service]
        lookback_days: 3            # events that touch the last N days before --as-of (reported whole)
        window: 28                  # trailing days of the robust baseline
        threshold: 3.5              # robust z (1.4826·MAD)
        min_impact: 500             # $ floor
        min_impact_pct: 20          # % of expected
      guardrails: true              # the guardrails section (finops-kit guard) applied to the bill too; or
                                    # {lookback_days: 14}: days up to --as-of read (default 14)

Scope parameters (``-p providers=[AWS]``, billing or sub accounts, currency) choose the charges judged. A budget is
judged in a scope narrowed to some providers or accounts only when its own scope names them
(:func:`finops_kit.budgets.budgets_in_scope`); the others raise no alert and are listed after the alerts as "not
judged in this scope" (the exit code is the alerts').

``guardrails``: with a ``guardrails`` section in the config (and unless ``alerts.guardrails: false``), running
resources that break a plan guardrail fire too (:func:`finops_kit.guard.bill_checks`): non-production accelerators
charged around the clock on demand, a team's or owner's accelerators above its maximum, accelerator models not allowed
in an environment -- so the plan check and the bill tell one story. A team's limit is for its accelerators on every
provider and in every billing currency (counts add up across currencies): a scope whose providers or accounts leave
out some of the team's accelerator usage of the rule's window lists it as "not judged in this scope" (after the
budgets), every such team, even one whose accelerators all run outside the scope.

The budgets are judged on the charges up to the end of the judged month (:func:`until_month_end`): a later month
does not decide whether the scope leaves out a budget's charges, as in the forecast report of that billing period.
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from . import scope as scope_mod
from .config import flag, load_config, naming_file, reject_unknown, section
from .currency import format_money
from .errors import ConfigError


@dataclass
class Alert:
    kind: str  # budget | forecast | anomaly | guardrail
    subject: str
    message: str


#: ``check --help``'s epilog: what each exit code means to the scheduler running it (the README's table, for check)
EXIT_CODES = """\
exit codes:
  0    no alert fired
  1    alerts fired (printed on stdout), a [data] alert on stale data included: someone must look
  2    bad command line, config or warehouse path (one stderr line naming it)
  3    nothing to judge: no charge in the scope from the first of the judged month to the judged
       day (--as-of, never after the scope's last day billed; default: that day) -- an empty
       warehouse or scope, an --as-of before its data (one stderr line saying what the warehouse
       holds). A late or stopped export is not 3: check judges as of the last day billed, and
       without --as-of the [data] alert (1) says the data stopped arriving
  75   the warehouse is in use by another process: retry later
  130  interrupted (Ctrl-C); 143: stopped with SIGTERM
"""


def configure_parser(parser: argparse.ArgumentParser, command: str = "check") -> None:
    parser.epilog = EXIT_CODES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--warehouse", help="warehouse file or FOCUS dataset (folder or s3://bucket/prefix; default: "
                            "$FINOPS_WAREHOUSE or data/warehouse.duckdb)")
    parser.add_argument("--config", help="config file (default: $FINOPS_CONFIG or ./finops.yaml)")
    parser.add_argument("--as-of", dest="as_of", help="evaluate as of this day, YYYY-MM-DD, never after the last day billed (a later day "
                             "is judged as of that one; default: the last day billed, and then a [data] alert when "
                             "that is more than alerts.max_data_age_days before today)")
    parser.add_argument("--quiet", action="store_true", help="print only the alerts, no 'all clear' line")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="scope parameter: " + ", ".join(CHECK_PARAMETERS) + " (the days are --as-of's)")


#: The scope parameters ``check`` takes (as ``metrics`` and the reports, ``-p currency=USD``): which charges are
#: checked. Not the periods and days: ``check`` judges the month of ``--as-of`` up to that day.
CHECK_PARAMETERS = scope_mod.CHARGE_PARAMETERS


#: The settings of the ``alerts`` section; anything else is a typo that would silently switch a rule off.
SETTINGS = frozenset({"budgets", "forecast", "forecast_thresholds", "anomalies", "guardrails", "max_data_age_days"})


@dataclass(frozen=True)
class Settings:
    """The ``alerts`` section, validated: read once, before any query, so a typo fails every run the same way."""

    budgets: bool = True
    forecast: bool = True
    forecast_thresholds: tuple[float, ...] = (100.0,)
    anomalies: Any = None  # anomaly.Rules, or None when anomaly alerts are off
    dimensions: tuple[str, ...] = ("total",)
    lookback_days: int = 3
    guardrails: bool = True
    guardrail_days: int = 14
    #: ``check`` without ``--as-of`` alerts when the last day billed is more days than this before today (default:
    #: scope.LATE_DELIVERY_DAYS, the delay after which a provider's export counts as gone rather than late)
    max_data_age_days: int = 7


def settings(cfg: dict[str, Any]) -> Settings:
    """The validated ``alerts`` section of ``cfg``; a mistake is one :class:`ConfigError` line naming the config
    file and the key (``alerts.anomalys: unknown setting``): a misspelled rule must never read as "no alerts"."""
    from .anomaly import Rules

    with naming_file(cfg):
        sec = section(cfg, "alerts", {}) or {}
        if not isinstance(sec, dict):
            raise ConfigError("alerts: expected a mapping (budgets, forecast, anomalies)")
        reject_unknown(sec, set(SETTINGS), "alerts")
        raw = sec.get("forecast_thresholds", [100])
        if not isinstance(raw, list) or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in raw):
            raise ConfigError(f"alerts.forecast_thresholds = {raw!r}: expected a list of % numbers, e.g. [100]")
        if not all(t > 0 and math.isfinite(t) for t in raw):  # [-5] alerted at 11% of the budget
            raise ConfigError(f"alerts.forecast_thresholds = {raw!r}: expected percents of the budget above 0, "
                              "e.g. [100]")
        out: dict[str, Any] = dict(budgets=flag(sec, "budgets", True, "alerts"),
                                   forecast=flag(sec, "forecast", True, "alerts"),
                                   forecast_thresholds=tuple(float(t) for t in raw))
        an = sec.get("anomalies")
        if an not in (None, False, {}):
            if not isinstance(an, dict):
                raise ConfigError("alerts.anomalies: expected a mapping (dimensions, lookback_days, min_impact, ...) "
                                  f"or false, got {an!r}")
            out["anomalies"] = Rules.from_config(an)
            dims = an.get("dimensions", ["total"])
            if not isinstance(dims, list) or not dims or not all(isinstance(d, str) for d in dims):
                raise ConfigError(f"alerts.anomalies.dimensions = {dims!r}: expected a list such as [total, team]")
            out["dimensions"] = tuple(dims)
            lookback = an.get("lookback_days", 3)
            if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
                raise ConfigError(f"alerts.anomalies.lookback_days = {lookback!r}: expected a whole number of days "
                                  ">= 1")
            out["lookback_days"] = lookback
        gr = sec.get("guardrails", True)
        if not (isinstance(gr, bool) or (isinstance(gr, dict) and set(gr) <= {"lookback_days"})):
            raise ConfigError("alerts.guardrails: expected true, false or {lookback_days: N}")
        days = gr.get("lookback_days", 14) if isinstance(gr, dict) else 14
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
            raise ConfigError(f"alerts.guardrails.lookback_days: expected a whole number of days 1..366, got {days!r}")
        out.update(guardrails=bool(gr), guardrail_days=days)
        from .scope import LATE_DELIVERY_DAYS

        age = sec.get("max_data_age_days", LATE_DELIVERY_DAYS)
        if isinstance(age, bool) or not isinstance(age, int) or age < 1:
            raise ConfigError(f"alerts.max_data_age_days = {age!r}: expected a whole number of days >= 1")
        out["max_data_age_days"] = age
    return Settings(**out)


def evaluate(con: Any, cfg: dict[str, Any], as_of: date | str | None = None,
             base_dir: str | Path | None = None, scope: Any = None, notes: list[str] | None = None,
             reuse: bool = False) -> list[Alert]:
    """All alerts that fire for the warehouse ``con`` under config ``cfg`` as of a day.

    ``base_dir`` is where relative paths in the config (the roadmap file) are looked up besides the working
    directory: the config file's folder. ``notes``, when given, receives one line per budget the scope does not
    judge (:func:`finops_kit.budgets.budgets_in_scope`: ``-p providers=AWS`` and a budget on all providers): not
    an alert, but a scheduled run must not read their silence as "on track"; and one per team accelerator limit it
    does not judge, marked :data:`GUARDRAIL_NOTE` (:func:`finops_kit.guard.bill_checks`).

    ``reuse``: the budgets' status is the one last computed on ``con`` when that had the same arguments on the same
    read-only warehouse (:func:`finops_kit.budgets.budget_status` ``reuse``): the forecast report computes it in
    its section 4, a few cells before its alerts, and the second computation was 0.4 s of its kernel.
    """
    from .anomaly import scan
    from .budgets import (
        NOT_JUDGED,
        budget_status,
        crossing_text,
        load_budgets,
        load_roadmap,
        pending_part,
        roadmap_scope_problems,
    )
    from .forecast import _day, as_of_day

    opts = settings(cfg)
    budgets, thresholds = load_budgets(cfg)
    from .scope import bind

    sc = bind(con, scope, cfg)
    as_of_d = as_of_day(con, sc, as_of)

    def money(value: Any, signed: bool = False) -> str:  # in the scope's currency, as every report
        return format_money(value, sc.currency, 0, signed=signed)

    nothing_to_judge(con, sc, as_of_d)
    # the budgets are judged on the charges up to the end of the judged month, as the forecast report with
    # billing_period_end judges them: whether a scope leaves out a budget's charges (forecast.narrowed) is decided
    # up to the scope's end, and a provider that starts billing after the month (Azure from December, check --as-of
    # 2026-11-14 -p providers=[AWS]) made check list the budget as not judged while the report judged it
    month_sc = until_month_end(sc, as_of_d)
    alerts: list[Alert] = []
    if opts.budgets and budgets:
        use_fc = opts.forecast
        # a forecast is an estimate: by default it alerts only when it says the budget will be exceeded
        forecast_thresholds = opts.forecast_thresholds
        roadmap = load_roadmap(cfg=cfg, base_dir=base_dir) if use_fc else []
        # each budget as of the last day its own providers have delivered (budget_status decides it)
        with _quiet_convergence():
            if use_fc:
                st = budget_status(con, budgets, as_of=as_of, roadmap=roadmap, scope=month_sc, reuse=reuse)
            else:
                st = budget_status(con, budgets, as_of=as_of, forecast_results={b.name: _NoForecast() for b in budgets},
                                   scope=month_sc)
        asked = _day(as_of)
        for name, line in roadmap_scope_problems(con, roadmap, month_sc, named=True):  # as a budget's scope typo
            alerts.append(Alert("roadmap", name, f"{line}, so it reaches no forecast of that value, only the total: "
                                                 "a typo? fix its scope in the roadmap file"))
        for r in st.to_dict("records"):
            if r["status"] == "matches no charges":  # a typo in the scope: the budget is never checked
                alerts.append(Alert("budget", r["budget"], f"{r['budget']}: its scope {r['note']}, so it is never "
                                                           "checked: fix its scope in the budgets config"))
                continue
            if r["status"] == NOT_JUDGED:  # its amount is for charges this scope leaves out (budgets_in_scope)
                if notes is not None:
                    notes.append(f"{r['budget']}: {r['note'].split(': ', 1)[-1]}")
                continue
            if r["budget_amount"] is None:  # status "no budget": a budget given for other months only
                continue
            amount = float(r["budget_amount"])
            late = f"; data through {r['as_of']}" if asked is not None and r["as_of"] < asked else ""
            if amount <= 0:  # an explicit 0: spend nothing, so any spend (or spend forecast) is over it
                through = f" ({late[2:]})" if late else ""
                if float(r["actual_mtd"]) > 0:
                    alerts.append(Alert("budget", r["budget"], f"{r['budget']}: {money(r['actual_mtd'])} spent in "
                                                               f"{r['month']} against a {money(0)} budget{through}"))
                elif use_fc and r["forecast"] is not None and float(r["forecast"]) > 0:
                    when = f", first spend expected on {r['breach_date']}" if r["breach_date"] else ""
                    alerts.append(Alert("forecast", r["budget"], f"{r['budget']}: forecast {money(r['forecast'])} for "
                                                                 f"{r['month']} against a {money(0)} budget{when}"
                                                                 f"{through}"))
                continue
            used = 100 * float(r["actual_mtd"]) / amount
            hit = [t for t in thresholds if used >= t]
            if hit:
                alerts.append(Alert("budget", r["budget"],
                                    f"{r['budget']}: {money(r['actual_mtd'])} spent in {r['month']} = "
                                    f"{used:.0f}% of the {money(amount)} budget (threshold {max(hit):.0f}%{late})"))
            # the forecast rule is evaluated whether or not an actual threshold fired ("80% spent" is a heads-up,
            # "over budget on the 28th" is the alert to act on); a threshold the actual has already crossed is
            # not said again by the forecast, and a budget gets one forecast alert, at its highest crossed threshold
            if use_fc and r["forecast"] is not None:
                f_used = 100 * float(r["forecast"]) / amount
                f_hit = [t for t in forecast_thresholds if f_used >= t and used < t]
                if f_hit:
                    when = crossing_text(r, "crossing the budget on")
                    alerts.append(Alert("forecast", r["budget"],
                                        f"{r['budget']}: forecast {money(r['forecast'])}{pending_part(r, money)} "
                                        f"for {r['month']} = {f_used:.0f}% of the {money(amount)} budget{when} "
                                        f"(threshold {max(f_hit):.0f}%{late})"))
    if opts.anomalies is not None:
        since = as_of_d - timedelta(days=opts.lookback_days - 1)
        ev = scan(con, opts.dimensions, start=since, end=as_of_d, rules=opts.anomalies, scope=sc)
        for r in ev.to_dict("records"):
            when = str(r["start"]) + (f"..{r['end']}" if r["end"] != r["start"] else "")
            pct = f" ({r['impact_pct']:+.0f}%)" if r["impact_pct"] is not None else ""
            alerts.append(Alert("anomaly", f"{r['dimension']}={r['value']}",
                                f"cost anomaly {r['dimension']}={r['value']} on {when}: {money(r['actual'])} vs "
                                f"{money(r['expected'])} expected, impact {money(r['impact'], signed=True)}{pct}"))
    if cfg.get("guardrails") is not None and opts.guardrails:
        from .guard import bill_checks

        for c in bill_checks(con, cfg, as_of=as_of_d, days=opts.guardrail_days, scope=sc):
            if c.status == NOT_JUDGED:  # a team's limit on every provider, in a narrowed scope: a note, as budgets
                if notes is not None:
                    notes.append(f"{GUARDRAIL_NOTE}{c.rule} {c.subject}: {c.message}")
                continue
            alerts.append(Alert("guardrail", c.subject, f"{c.rule} {c.subject}: {c.message}"))
    return alerts


def until_month_end(sc: Any, as_of_d: date) -> Any:
    """``sc`` ending on the last day of ``as_of_d``'s month (or earlier, where it already ends): what ``check``
    judges -- "the month of --as-of up to that day" -- so nothing after that month decides how its budgets are
    judged. The same charges as the forecast report given ``billing_period_end`` of that month."""
    from dataclasses import replace

    nxt = date(as_of_d.year + as_of_d.month // 12, as_of_d.month % 12 + 1, 1)
    end = nxt - timedelta(days=1)
    return sc if sc.end is not None and sc.end <= end else replace(sc, end=end)


def nothing_to_judge(con: Any, sc: Any, as_of_d: date | None) -> None:
    """Raise :class:`~finops_kit.scope.NoDataError` (exit 3) when the scope has no charge in the month ``check``
    judges, from its first day to ``as_of_d`` (``--as-of`` capped at the scope's last day billed:
    :func:`finops_kit.forecast.as_of_day`): an empty warehouse or scope, or an ``--as-of`` before its data. A
    stopped export is judged as of its last day, not here: the ``[data]`` alert reports it. Judged, such a month was "no alerts" (exit 0: a $1 budget is not breached by nothing) or,
    when a guardrail's own scope found nothing, exit 1 -- the code of a fired alert; a scheduler must tell "a budget
    is breached" from "the export did not arrive, or the job asked for the wrong day"."""
    from dataclasses import replace

    from .scope import NoDataError, _coverage_text

    if as_of_d is None:
        raise NoDataError(f"no data for this scope ({sc.describe()}): the warehouse holds {_coverage_text(con)}")
    month = replace(sc, start=as_of_d.replace(day=1), end=as_of_d, basis="charge_period")
    if con.execute(f"SELECT count(*) FROM {month.rows_sql()}").fetchone()[0] == 0:
        raise NoDataError(f"no data for this scope ({month.describe()}): no charges in {month.start} .. {as_of_d}, "
                          f"the month check judges, so nothing to judge; the warehouse holds {_coverage_text(con)}")


@contextmanager
def _quiet_convergence() -> Iterator[None]:
    """Drop statsmodels' ConvergenceWarnings raised inside (a fit that stopped at its iteration limit still gives
    its forecast, and the backtest grades it): `check` runs from cron, and a warning on stderr is noise in its mail.
    Every other warning is re-issued once per text and place (the outer filters decide as before); errors are not
    touched. Told by class name, so that a run whose fits all come from the cache does not import statsmodels (and
    scipy) for this."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        seen = set()
        for w in caught:
            key = (str(w.message), w.category, w.filename, w.lineno)
            if key in seen or (w.category.__name__ == "ConvergenceWarning"
                               and w.category.__module__.startswith("statsmodels")):
                continue
            seen.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


class _NoForecast:
    """Stands in for a forecast when ``alerts.forecast`` is off (budget_status then uses actuals only)."""

    ok = False
    message = "forecast disabled in alerts config"
    expected_total = total_lo = total_hi = None


def freshness_alert(con: Any, cfg: dict[str, Any], scope: Any, today: date) -> Alert | None:
    """An alert naming each provider of the scope whose data stops more than ``alerts.max_data_age_days`` before
    ``today`` (its last whole day of daily or hourly usage, as :func:`finops_kit.forecast.data_through` counts it).

    Why: ``check`` judges the last day billed (a day not delivered is not $0 spent), so an export or ingest that
    stopped replayed the same alerts -- or the same silence -- every day, and nothing said the data was old. Per
    provider, because the scope's "data through" leaves out a provider far behind the others (it has stopped): a
    GCP export dead for three weeks beside a live AWS one is the case to catch."""
    from .forecast import scoped
    from .scope import LAST_WHOLE_DAY, bind

    limit = settings(cfg).max_data_age_days
    sc = scoped(con, bind(con, scope, cfg))
    rows = con.execute(f"""
        SELECT ProviderName, {LAST_WHOLE_DAY} AS last
        FROM {sc.rows_sql(period=False)} GROUP BY ALL ORDER BY last, ProviderName""").fetchall()
    # a provider whose data ended before the month ahead of the latest provider's last month has been left (a
    # migration), not lost: named every day forever it would be noise
    latest = max((last for _, last in rows if last is not None), default=None)
    since = (date(latest.year, latest.month, 1) - timedelta(days=1)).replace(day=1) if latest else None
    old = [(p, last) for p, last in rows if last is not None and last >= since and (today - last).days > limit]
    if not old:
        return None
    said = "; ".join(f"{p} after {last} ({(today - last).days} days before today)" for p, last in old)
    return Alert("data", "freshness", f"no charges from {said}: more than alerts.max_data_age_days = {limit} "
                                      f"before {today}; the alerts are as of the last day delivered: check those "
                                      "exports and the ingest job")


def run(args: argparse.Namespace, command: str = "check") -> int:
    import finops_kit as fk

    from .report import parse_parameters
    from .scope import Scope

    cli = parse_parameters(getattr(args, "parameter", None) or [])
    bad = [n for n in cli if n not in CHECK_PARAMETERS]
    if bad:
        raise ConfigError(f"-p {bad[0]}: check takes {', '.join(CHECK_PARAMETERS)}; it judges the month of --as-of "
                          "up to that day (not periods or date ranges)")
    scope = Scope.parse({n: v for n, (_raw, v) in cli.items()}) if cli else None
    cfg = load_config(args.config)
    con = fk.connect(args.warehouse, read_only=True, quiet=True)
    try:
        config_dir = Path(args.config).resolve().parent if args.config else Path.cwd()
        notes: list[str] = []
        alerts = evaluate(con, cfg, args.as_of, base_dir=config_dir, scope=scope, notes=notes)
        if not args.as_of:  # judged as of the last day billed: say when that is long ago (a dead export or ingest)
            stale = freshness_alert(con, cfg, scope, date.today())
            alerts = ([stale] if stale else []) + alerts
    finally:
        con.close()
    if not alerts:
        if not args.quiet:
            print("finops-kit check: no alerts")
            _print_notes(notes)
        return 0
    print(f"finops-kit check: {len(alerts)} alert(s)")
    for a in alerts:
        print(f"  [{a.kind}] {a.message}")
    if not args.quiet:
        _print_notes(notes)
    return 1


def _print_notes(notes: list[str]) -> None:
    """The budgets the scope did not judge, after the alerts (not alerts: they change no exit code)."""
    if notes:
        print(notes_text(notes))


#: How :func:`evaluate`'s ``notes`` tell a guardrail limit the scope did not judge from a budget ("[guardrail]
#: max_accelerators_per_team team=nlp: it covers all providers; ..."), as check's alert lines are marked.
GUARDRAIL_NOTE = "[guardrail] "


def notes_text(notes: list[str]) -> str:
    """What ``check`` prints after its alerts about the budgets and guardrail limits the scope did not judge
    (``notes`` of :func:`evaluate`), one line per reason (and per guardrail rule); empty without any."""
    if not notes:
        return ""
    from .budgets import not_judged_groups

    budgets = [n for n in notes if not n.startswith(GUARDRAIL_NOTE)]
    rules: dict[str, list[tuple[str, str]]] = {}
    for n in notes:
        if n.startswith(GUARDRAIL_NOTE):  # "[guardrail] rule subject: reason"
            head, _, reason = n[len(GUARDRAIL_NOTE):].partition(": ")
            rule, _, subject = head.partition(" ")
            rules.setdefault(rule, []).append((subject, reason))
    limits = sum(len(v) for v in rules.values())
    counted = " and ".join(filter(None, [f"{len(budgets)} budget(s)" if budgets else "",
                                         f"{limits} guardrail limit(s)" if limits else ""]))
    groups = not_judged_groups([(name, reason) for name, _, reason in (n.partition(": ") for n in budgets)])
    return "\n".join([f"not judged in this scope ({counted}, no alert; check without -p judges them):"]
                     + [f"  {', '.join(names)}: {why}" for names, why in groups]
                     + [f"  {rule} {', '.join(names)}: {why}" for rule, pairs in rules.items()
                        for names, why in not_judged_groups(pairs)])
