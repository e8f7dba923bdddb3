"""The scope of an analysis: which charges a report reads, parsed and validated once for every notebook and module.

Every curated notebook takes the same scope parameters (``finops-kit report -p NAME=VALUE``):

==========================  =========================================================================================
``billing_period_start``    first billing period, ``YYYY-MM`` (empty: the first in the warehouse)
``billing_period_end``      last billing period, ``YYYY-MM``, **inclusive** (empty: the last)
``date_start``              instead of billing periods: first charge day, ``YYYY-MM-DD``
``date_end``                last charge day, ``YYYY-MM-DD``, **inclusive** (the whole day counts)
``providers``               e.g. ``[AWS, Google Cloud]`` (empty: all); names as in FOCUS ProviderName, any case
``billing_accounts``        BillingAccountId or BillingAccountName values (empty: all)
``sub_accounts``            SubAccountId or SubAccountName values (AWS accounts, GCP projects, Azure subscriptions)
``currency``                billing currency to report in (see below; empty: the scope's only currency)
==========================  =========================================================================================

One end convention: **both ends are inclusive**, for months and for days (``2026-10`` .. ``2026-10`` is October;
``2026-10-01`` .. ``2026-10-31`` is October too). Billing periods select on ``BillingPeriodStart`` (the invoice
month, what reconciliation ties to); a date range selects on ``ChargePeriodStart`` (when the usage happened).

A window of charge days, decided here once: a charge billed for a whole month (tax, a monthly fee, the unused part of
a reservation, booked on the 1st) counts whole on the day it is booked, like every other charge; the window's
"previous period" is as many days holding as many 1sts, moved back by whole months (:func:`previous_window`), so
both windows hold as many days and as many month-long charges (or nothing is compared); and a "per month" figure
read from the window divides each month's sum by the share of that month the window covers
(:meth:`Scope.month_share`), counting a month-long charge whole. One exception, for a ratio over the same days: a
commitment's use (used / unused, utilization) counts the share of a month-long used or unused row the window holds
(:func:`finops_kit.commitments.commitment_rows_sql`; for a row of the whole month, its ``month_share``).

Currency, decided here once: with ``currency.reporting_currency`` and ``rates_file`` in ``finops.yaml`` every amount
is converted to that currency with the user's rates (a missing rate is an error). Without rates, ``currency=EUR``
keeps only charges billed in EUR; a scope holding several billing currencies and no ``currency`` is an error naming
them -- amounts are never added across currencies.

A scope that matches no charge (an empty, future or filtered-out period) is :class:`NoDataError`: "no data for this
scope", exit 3 -- never a report of $0.00. A malformed or inverted parameter is a :class:`ConfigError`, exit 2.

Completeness (:func:`completeness`): per provider and billing period, the first and last day with data and whether the
period is **closed**. The rule: a period is closed when the provider's charges reach the period's last day (a
charge starting on the last day of the month) or the provider already has charges in a later billing period.
Otherwise it is open ("1-26 Nov 2026, open"): growth rates, projections, sizing and month-over-month comparisons use
closed periods only, and charts mark open ones.

Typical use::

    sc = scope.resolve(con, config, billing_period_start="2026-08", providers=["AWS"])
    con.sql(f"SELECT sum(EffectiveCost) FROM {sc.rows_sql()}")     # the charges in scope, money in sc.currency
    sc.attribution.label_sql("team")                                 # team of a row under tag_policy
    sc.describe()                                                    # one line for a report header
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

import duckdb
import pandas as pd

from .errors import ConfigError, FinopsError
from .schema import MONEY
from .sources.base import sql_str
from .warehouse import FOCUS_TABLE

#: The scope parameters every curated notebook takes: name -> (default, help for the parameters cell).
PARAMETERS: dict[str, tuple[Any, str]] = {
    "billing_period_start": ("", "first billing period, YYYY-MM (empty: the first in the warehouse)"),
    "billing_period_end": ("", "last billing period, YYYY-MM, inclusive (empty: the last)"),
    "date_start": ("", "or: first charge day, YYYY-MM-DD (instead of billing periods)"),
    "date_end": ("", "last charge day, YYYY-MM-DD, inclusive"),
    "providers": ([], 'e.g. ["AWS", "Google Cloud"] (empty: all)'),
    "billing_accounts": ([], "BillingAccountId or name (empty: all)"),
    "sub_accounts": ([], "SubAccountId or name: AWS account, GCP project, Azure subscription (empty: all)"),
    "currency": ("", "billing currency to report in (empty: the scope's only currency)"),
}
#: The parameters that choose which charges (not which days): a command with a window of its own (``check`` and its
#: guardrails) takes these only.
CHARGE_PARAMETERS = ("providers", "billing_accounts", "sub_accounts", "currency")

#: Money columns converted when the scope reports in a converted currency.
MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_CODE = re.compile(r"^[A-Z]{3}$")


class NoDataError(FinopsError):
    """The scope matches no charge: "no data for this scope", never a report of zeros -- exit 3, "nothing to
    judge", for every command: neither 1 (an alert fired, a report failed) nor 2 (a typo in the job), so that a
    scheduler can tell an export that has not arrived, or a job asking for the wrong period, from both."""

    exit_code = 3


def parameters_cell() -> str:
    """The scope lines of a notebook's parameters cell (what every curated notebook declares)."""
    lines = []
    for name, (default, help_text) in PARAMETERS.items():
        value = repr(default) if not isinstance(default, str) else f'"{default}"'
        lines.append(f"{name} = {value}".ljust(30) + f"# {help_text}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ parsing


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _month(value: Any, name: str) -> dt.date | None:
    s = _text(value)
    if not s:
        return None
    m = _MONTH.match(s)
    if not m or not 1 <= int(m.group(2)) <= 12:
        hint = " (a day: use date_start/date_end)" if _DAY.match(s) else ""
        raise ConfigError(f"parameter {name}: {s!r} is not a billing period; expected YYYY-MM such as 2026-10{hint}")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def _day(value: Any, name: str) -> dt.date | None:
    s = _text(value)
    if not s:
        return None
    try:
        if not _DAY.match(s):
            raise ValueError
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"parameter {name}: {s!r} is not a day; expected YYYY-MM-DD such as 2026-10-31") from None


def _names(value: Any, name: str) -> tuple[str, ...]:
    """A list parameter: a list, a comma-separated string, or empty. ``[AWS`` (broken YAML) is an error."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        if "[" in value or "]" in value:
            raise ConfigError(f"parameter {name}: {value!r} is not a list; expected e.g. [AWS, Google Cloud] "
                              "(quote names with commas) or a single name")
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list | tuple | set):
        items = value
    else:
        items = [value]
    out = []
    for v in items:
        if isinstance(v, list | dict | tuple):
            raise ConfigError(f"parameter {name}: expected a list of names, got {value!r}")
        s = _text(v)
        if "[" in s or "]" in s:
            raise ConfigError(f"parameter {name}: {s!r} is not a name; expected e.g. [AWS, Google Cloud]")
        if s and s not in out:
            out.append(s)
    return tuple(out)


@dataclass(frozen=True)
class Scope:
    """Which charges an analysis reads (see the module doc). ``start``/``end`` are inclusive days.

    ``basis`` is ``billing_period`` (whole months on BillingPeriodStart) or ``charge_period`` (days on
    ChargePeriodStart). A resolved scope (``resolve``) also knows its currency, rates and connection.
    """

    start: dt.date | None = None
    end: dt.date | None = None
    basis: str = "billing_period"
    providers: tuple[str, ...] = ()
    billing_accounts: tuple[str, ...] = ()
    sub_accounts: tuple[str, ...] = ()
    currency: str | None = None
    # set by resolve()
    convert: bool = False
    rates: Any = field(default=None, compare=False, repr=False)
    con: Any = field(default=None, compare=False, repr=False)
    config: Any = field(default=None, compare=False, repr=False)

    # -------------------------------------------------------------------------------------------- parse

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Scope:
        """Validate scope parameters (a notebook's or ``-p`` values); unknown names are ignored here.

        Raises a one-line :class:`ConfigError` naming the parameter: a malformed month or day, months mixed with
        days, an end before the start, a broken list such as ``[AWS``, a currency that is not an ISO code.
        """
        p = {**(params or {}), **kwargs}
        m0 = _month(p.get("billing_period_start"), "billing_period_start")
        m1 = _month(p.get("billing_period_end"), "billing_period_end")
        d0 = _day(p.get("date_start"), "date_start")
        d1 = _day(p.get("date_end"), "date_end")
        if (m0 or m1) and (d0 or d1):
            raise ConfigError("parameters billing_period_start/end and date_start/end: give billing periods or a "
                              "date range, not both")
        if m0 and m1 and m1 < m0:
            raise ConfigError(f"parameter billing_period_end: {m1:%Y-%m} is before billing_period_start {m0:%Y-%m}")
        if d0 and d1 and d1 < d0:
            raise ConfigError(f"parameter date_end: {d1} is before date_start {d0}")
        basis = "charge_period" if (d0 or d1) else "billing_period"
        start, end = (d0, d1) if basis == "charge_period" else (m0, _month_end(m1) if m1 else None)
        cur = _text(p.get("currency")).upper() or None
        if cur is not None and not _CODE.match(cur):
            raise ConfigError(f"parameter currency: {cur!r}; expected an ISO 4217 code such as USD")
        return cls(start=start, end=end, basis=basis, providers=_names(p.get("providers"), "providers"),
                   billing_accounts=_names(p.get("billing_accounts"), "billing_accounts"),
                   sub_accounts=_names(p.get("sub_accounts"), "sub_accounts"), currency=cur)

    @classmethod
    def of(cls, start: Any = None, end: Any = None, providers: Any = None) -> Scope:
        """Compatibility: ``start``/``end`` as months (YYYY-MM, inclusive) or days (YYYY-MM-DD, inclusive)."""
        s, e = _text(start), _text(end)
        if (s and _DAY.match(s)) or (e and _DAY.match(e)) or isinstance(start, dt.date) or isinstance(end, dt.date):
            return cls.parse(date_start=s[:10] if _MONTH.match(s) is None else s + "-01",
                             date_end=e if not _MONTH.match(e) else _month_end(_month(e, "end")).isoformat(),
                             providers=providers)
        return cls.parse(billing_period_start=s, billing_period_end=e, providers=providers)

    # -------------------------------------------------------------------------------------------- SQL

    def where(self, *, period: bool = True) -> str:
        """SQL predicate over the FOCUS table (without currency conversion). ``period=False`` leaves out the
        time filter (completeness looks at every period of the providers and accounts in scope)."""
        parts = ["TRUE"]
        col = "BillingPeriodStart" if self.basis == "billing_period" else "ChargePeriodStart"
        if period and self.start:
            parts.append(f"{col} >= TIMESTAMP {sql_str(self.start.isoformat())}")
        if period and self.end:
            parts.append(f"{col} < TIMESTAMP {sql_str((self.end + dt.timedelta(days=1)).isoformat())}")
        if self.providers:
            parts.append("lower(ProviderName) IN (" + ", ".join(sql_str(p.lower()) for p in self.providers) + ")")
        if self.billing_accounts:
            v = ", ".join(sql_str(a) for a in self.billing_accounts)
            parts.append(f"(BillingAccountId IN ({v}) OR BillingAccountName IN ({v}))")
        if self.sub_accounts:
            parts.append(account_match_sql(self.sub_accounts))
        if self.currency and not self.convert:
            parts.append(f"BillingCurrency = {sql_str(self.currency)}")
        return " AND ".join(parts)

    def rows_sql(self, *, rowid: bool = False, period: bool = True) -> str:
        """A FROM item (parenthesized subquery) of the FOCUS rows in scope, money in the scope's currency.

        With conversion, BilledCost/EffectiveCost/ListCost/ContractedCost are converted and BillingCurrency is
        the reporting currency (``x_SourceCurrency`` keeps the original). ``rowid`` adds ``_rowid`` (the table's
        rowid: a stable row key for joins).
        """
        src, rid = FOCUS_TABLE, ""
        if rowid:  # a FOCUS dataset's view has no rowid: its keyed view carries one (finops_kit.dataset)
            from .dataset import row_source

            src, rid = row_source(self.con)
        if not self.convert:
            return f"(SELECT f.*{rid} FROM {src} f WHERE {self.where(period=period)})"
        to = self.currency
        rows = [r for r in self.rates.rows if r[2] == to]
        vals = ", ".join(f"({sql_str(m)}, {sql_str(fr)}, CAST({sql_str(r)} AS {MONEY}))" for m, fr, _, r in rows) \
            or f"(NULL, NULL, CAST(NULL AS {MONEY}))"
        rate = (f"CASE WHEN f.BillingCurrency = {sql_str(to)} THEN CAST(1 AS {MONEY}) "
                f"ELSE coalesce(m.rate, a.rate) END")
        repl = ", ".join(f"CAST(f.{c} * {rate} AS {MONEY}) AS {c}" for c in MONEY_COLUMNS)
        return (f"(SELECT f.* REPLACE ({repl}, {sql_str(to)} AS BillingCurrency), "
                f"f.BillingCurrency AS x_SourceCurrency{rid} "
                f"FROM {src} f "
                f"LEFT JOIN (VALUES {vals}) m(month, frm, rate) "
                f"  ON m.frm = f.BillingCurrency AND m.month = strftime(f.BillingPeriodStart, '%Y-%m') "
                f"LEFT JOIN (VALUES {vals}) a(month, frm, rate) ON a.frm = f.BillingCurrency AND a.month = '*' "
                f"WHERE {self.where(period=period)})")

    # -------------------------------------------------------------------------------------------- words

    def period_text(self) -> str:
        """The scope's days in words: "billing periods 2026-08 .. 2026-10 (inclusive)", "billing periods from
        2026-10", "every billing period" (an open bound read "first" or "last", which an error line printed as if
        they were values: "no data for this scope (billing periods first .. last (inclusive); ...)")."""
        if self.basis == "billing_period":
            a, b = (f"{self.start:%Y-%m}" if self.start else None), (f"{self.end:%Y-%m}" if self.end else None)
            kind = "billing periods"
        else:
            a, b = (str(self.start) if self.start else None), (str(self.end) if self.end else None)
            kind = "charge days"
        if a and b:
            return f"{kind} {a} .. {b} (inclusive)"
        if a or b:
            return f"{kind} from {a}" if a else f"{kind} up to {b} (inclusive)"
        return f"every {kind[:-1]}" if kind == "billing periods" else "every charge day"

    def describe(self) -> str:
        """One line for a report header: period, providers, accounts, currency."""
        parts = [self.period_text(), "providers: " + (", ".join(self.providers) or "all")]
        if self.billing_accounts:
            parts.append("billing accounts: " + ", ".join(self.billing_accounts))
        if self.sub_accounts:
            parts.append("sub accounts: " + ", ".join(self.sub_accounts))
        if self.currency:
            how = (f"converted to {self.currency} with {getattr(self.rates, 'path', 'the rate file')}"
                   if self.convert else f"in {self.currency}")
            parts.append(f"amounts {how}")
        return "; ".join(parts)

    def parameters(self) -> dict[str, Any]:
        """The scope as notebook parameters (what a report received)."""
        out: dict[str, Any] = {}
        if self.basis == "billing_period":
            out["billing_period_start"] = f"{self.start:%Y-%m}" if self.start else ""
            out["billing_period_end"] = f"{self.end:%Y-%m}" if self.end else ""
        else:
            out["date_start"] = self.start.isoformat() if self.start else ""
            out["date_end"] = self.end.isoformat() if self.end else ""
        out.update(providers=list(self.providers), billing_accounts=list(self.billing_accounts),
                   sub_accounts=list(self.sub_accounts), currency=self.currency or "")
        return out

    # -------------------------------------------------------------------------------------------- resolved

    def resolve(self, con: duckdb.DuckDBPyConnection, config: Any = None) -> Scope:
        """Check the scope against the warehouse and decide its currency (see the module doc)."""
        return resolve_scope(con, self, config)

    def _need_con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise FinopsError("scope: not resolved; call scope.resolve(con, config) first")
        return self.con

    @cached_property
    def attribution(self) -> Any:
        """The :class:`~finops_kit.attribution.Attribution` of the whole warehouse (every period, provider, account
        and currency) under the config's tag policy."""
        from .attribution import Attribution
        from .config import load_config

        cfg = self.config if isinstance(self.config, dict) else load_config(self.config)
        policy, allocation = attribution_settings(cfg)
        # built over the whole FOCUS table, not this scope's rows: a charge's team is spelled the same in every
        # report whatever its period, providers, accounts or currency (a scope of one provider must not pick
        # another dominant spelling), and a time series reading history before the scope's start (forecast,
        # anomaly) finds its values
        return Attribution.build(self._need_con(), FOCUS_TABLE, policy, allocation)

    def completeness(self) -> pd.DataFrame:
        """Per provider and billing period: first/last day with data, closed or open (see :func:`completeness`)."""
        if "_completeness" not in self.__dict__:
            self.__dict__["_completeness"] = completeness(self._need_con(), self)
        return self.__dict__["_completeness"].copy()

    def closed_periods(self) -> list[dt.date]:
        """Billing periods (first days) in scope that are closed for every provider in scope."""
        c = self.completeness()
        if c.empty:
            return []
        ok = c.groupby("billing_period")["closed"].all()
        return [p for p, v in ok.items() if v and self._in_period(p)]

    def open_periods(self) -> pd.DataFrame:
        """The open (provider, billing period) rows in scope, with their label ("1-26 Nov 2026, open")."""
        c = self.completeness()
        return c[~c["closed"] & c["billing_period"].map(self._in_period)].reset_index(drop=True)

    def _in_period(self, p: dt.date) -> bool:
        if self.basis != "billing_period":
            return (self.start is None or _month_end(p) >= self.start) and (self.end is None or p <= self.end)
        return (self.start is None or p >= self.start) and (self.end is None or p <= self.end)

    def month_share(self, period: dt.date) -> Fraction:
        """The share of billing period ``period`` (its first day) the scope covers: the days of the month inside
        the scope's charge-day window over the days of the month -- 14/31 of October for 5-18 Oct, 0 for a month
        outside the window, 1 for a month of a billing-period scope (its charges are the whole month's).

        Why: a "per month" figure read from a window of days is that window's sum divided by this share, so the
        same bucket, commitment or schedule is the same dollars per month whatever the window. Storage sized a
        bucket at 131,881 GB in a 5-18 Oct scope (14 days of GB-months read as a month) and 293,735 GB over the
        whole scope: "$2,274 per month" against "$5,057 per month". A charge billed for the whole month (booked on
        the 1st, see :func:`previous_window`) is one month's charge already: it is counted whole, never divided.
        """
        first = dt.date(period.year, period.month, 1)
        last = _month_end(first)
        if self.basis == "billing_period":
            return Fraction(int((self.start is None or first >= self.start) and (self.end is None or first <= self.end)))
        a = max(first, self.start or first)
        b = min(last, self.end or last)
        return Fraction(max((b - a).days + 1, 0), last.day)

    def open_through(self) -> dict[dt.date, dt.date]:
        """Open billing period (of the providers and accounts in scope) -> the last whole day its data holds for
        every provider still delivering: the earliest ``last_day`` of the providers open in it, leaving out a
        provider more than :data:`LATE_DELIVERY_DAYS` behind the latest day any provider delivered (it left; it
        holds nobody back) -- the rule of :func:`finops_kit.forecast.data_through`, so a summary's "1-20 Nov, open",
        the header's "Microsoft 1-20 Nov" and the forecast's "data through 2026-11-20" are one day. Why: the label
        took the latest provider's day, and a warehouse with Microsoft 6 days behind read "1-26 Nov 2026, open" in
        the summary above a forecast "to 20 Nov"."""
        c = self.completeness()
        if c.empty:
            return {}
        latest = max(c["last_day"])
        out: dict[dt.date, dt.date] = {}
        for p, g in c[~c["closed"]].groupby("billing_period"):
            days = list(g["last_day"])
            live = [d for d in days if d >= latest - dt.timedelta(days=LATE_DELIVERY_DAYS)]
            out[p] = min(live or days)
        return out

    def period_labels(self) -> dict[dt.date, str]:
        """Billing period -> chart label: ``2026-10`` when closed, ``2026-11 (1-26, open)`` when open (through
        :meth:`open_through`), ``2024-10 (open, data through 30 Sep)`` when no day of it is billed yet."""
        c = self.completeness()
        through = self.open_through()
        out: dict[dt.date, str] = {}
        for p in sorted(set(c["billing_period"])):
            if p not in through:
                out[p] = f"{p:%Y-%m}"
            elif through[p] < p:
                out[p] = f"{p:%Y-%m} (open, data through {through[p].day} {through[p]:%b})"
            else:
                out[p] = f"{p:%Y-%m} (1\u2013{min(through[p], _month_end(p)).day}, open)"
        return out

    def span(self) -> str:
        """What "over the scope" covers, from the charges in it: ``14 billing periods, 2025-10 to 2026-11 (1–26,
        open)``, ``the billing period 2026-10`` or ``charge days 5 Oct 2026 to 18 Oct 2026`` -- for a whole-scope
        total printed under a summary that shows one month (the storage report's totals, the AI report's "nothing
        in scope" sentences)."""
        row = self._need_con().execute(f"""
            SELECT min(BillingPeriodStart)::DATE, max(BillingPeriodStart)::DATE, count(DISTINCT BillingPeriodStart),
                   min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE FROM {self.rows_sql()}""").fetchall()[0]
        first, last, n, day0, day1 = row
        if first is None:
            return "no charge in scope"
        if self.basis == "charge_period":
            return (f"the charge day {day0:%-d %b %Y}" if day0 == day1 else
                    f"charge days {day0:%-d %b %Y} to {day1:%-d %b %Y}")
        labels = self.period_labels()
        a, b = labels.get(first, f"{first:%Y-%m}"), labels.get(last, f"{last:%Y-%m}")
        return f"the billing period {a}" if n == 1 else f"{n} billing periods, {a} to {b}"

    def open_labels(self) -> dict[dt.date, str]:
        """Open billing periods in scope -> label "1–20 Nov 2026, open": through the day every provider still
        delivering has reached (:meth:`open_through`)."""
        through = self.open_through()
        return {p: open_label(p, through[p]) for p in sorted(set(self.open_periods()["billing_period"]))}

    def closed_sql(self, provider: str = "ProviderName",
                   month: str = "date_trunc('month', ChargePeriodStart)") -> str:
        """SQL: TRUE when a row's month is a closed billing period of its provider (see :func:`completeness`)."""
        c = self.completeness()
        keys = [f"{p}|{m:%Y-%m}" for p, m, ok in zip(c["provider"], c["billing_period"], c["closed"], strict=True)
                if ok]
        if not keys:
            return "FALSE"
        return (f"list_contains([{', '.join(sql_str(k) for k in keys)}], "
                f"coalesce({provider}, '') || '|' || strftime({month}, '%Y-%m'))")

    def completeness_note(self) -> str:
        """One sentence for a report: which periods in scope are open, and what that means for the figures."""
        op = self.open_periods()
        if op.empty:
            return "Every billing period in scope is closed (complete)."
        items = "; ".join(f"{r.provider} {r.label}" for r in op.itertuples())
        return (f"Open billing periods (data not complete): {items}. Totals include them as billed so far; growth "
                "rates, projections, sizing and month-over-month comparisons use closed periods only.")


#: An account's value as every table of the kit shows it (the ``account`` dimension): its name, its id where a
#: charge carries no name.
ACCOUNT_VALUE = "coalesce(SubAccountName, SubAccountId)"


def account_match_sql(values: Iterable[str], value_sql: str = ACCOUNT_VALUE) -> str:
    """SQL predicate: the charges of the accounts ``values`` names, each value an account's name or its id -- the one
    rule of ``-p sub_accounts`` (:meth:`Scope.where`) and of a budget's or roadmap item's ``account`` key
    (:func:`finops_kit.forecast.filter_sql`), so a scope and a budget naming the same value select the same charges.

    A value matches the account whose value (``value_sql``: its name, its id on a charge without one) it is, and the
    account whose SubAccountId it is -- unless it is the name of a *different* account (a charge whose
    SubAccountName is the value and whose SubAccountId is not), over the whole warehouse: the name comes first.

    Why: a GCP SubAccountId is the project id, a word; with project 'ml-prod-4711' named 'ml-prod' and an older
    project whose id is 'ml-prod', a budget on 'ml-prod' counted both (1,540.00 instead of the 1,400.00 every table
    calls 'ml-prod'). The names were first read from the account values, an id included where a charge has no name:
    as soon as one charge of account 210987654321 lacked its name (a legacy CUR month), its id became a "name" and
    a budget on that id counted only the nameless charge (10.00 of 1,010.00), while ``-p sub_accounts`` counted
    them all."""
    quoted = [sql_str(str(v)) for v in values]
    lits = ", ".join(quoted)
    named_otherwise = (f"SELECT SubAccountName FROM {FOCUS_TABLE} WHERE SubAccountName IS NOT NULL "
                       "AND SubAccountId IS DISTINCT FROM SubAccountName")
    ids = (f"SELECT v FROM (VALUES {', '.join(f'({q})' for q in quoted)}) _ids(v) "
           f"WHERE v NOT IN ({named_otherwise})")
    return f"({value_sql} IN ({lits}) OR CAST(SubAccountId AS VARCHAR) IN ({ids}))"


def attribution_settings(cfg: Mapping[str, Any]) -> tuple[Any, Any]:
    """The validated ``tag_policy`` and ``allocation`` sections of a config: (TagPolicy, Allocation).

    Every command reads tags through a scope (:attr:`Scope.attribution`), and :func:`resolve_scope` calls this
    before any query, so a misspelled setting (``tag_policy.keyz``, ``allocation.key: teem``) is the same one-line
    error naming the config file for ``metrics``, ``check`` and a report alike -- not a fallback policy that reports
    6x the unallocated cost, nor a budget scope that silently matches nothing. Without ``tag_policy.keys`` the
    policy is the allocation key alone (its exact name and case variants).
    """
    from .config import config_file, section
    from .showback import Allocation
    from .tagging import TagPolicy

    where = config_file(cfg) or "config"
    alloc_raw = section(cfg, "allocation", {})
    allocation = Allocation.from_dict(alloc_raw, where)
    raw = section(cfg, "tag_policy", {})
    if isinstance(raw, dict) and not raw.get("keys"):
        raw = {**raw, "keys": {allocation.key: {}}}
    policy = TagPolicy.from_dict(raw, where)
    explicit = isinstance(alloc_raw, dict) and "key" in alloc_raw
    if explicit and allocation.key not in policy.keys:
        raise ConfigError(f"{where}: allocation.key: {allocation.key!r} is not a tag_policy key "
                          f"(expected one of {', '.join(policy.keys)})")
    return policy, allocation


def _month_end(d: dt.date) -> dt.date:
    nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def open_label(period: dt.date, through: dt.date) -> str:
    """An open billing period as a reader sees it: "1–26 Nov 2026, open" (data through the 26th), or "Oct 2024,
    open (data through 30 Sep 2024)" when its data holds no day of the month yet -- a charge of 30 Sep billed in
    October's period was labelled "1–30 Oct 2024, open", thirty days the data does not have."""
    if through < period:
        return f"{period:%b %Y}, open (data through {through.day} {through:%b %Y})"
    return f"1\u2013{min(through, _month_end(period)).day} {period:%b %Y}, open"


def _months_back(d: dt.date, k: int) -> dt.date:
    """``d`` ``k`` calendar months earlier, on the same day of the month or the month's last day (31 Mar -> 28 Feb)."""
    y, m = divmod(d.year * 12 + d.month - 1 - k, 12)
    first = dt.date(y, m + 1, 1)
    return first.replace(day=min(d.day, _month_end(first).day))


def _firsts(start: dt.date, end: dt.date) -> int:
    """How many 1sts of a month ``start`` .. ``end`` (inclusive) holds."""
    months = (end.year * 12 + end.month) - (start.year * 12 + start.month)
    return months + (start.day == 1)


def previous_window(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
    """The charge days a window of charge days (both ends inclusive) is compared with: **as many days, as many
    1sts of a month, before it** -- the window moved back by whole months -- or None when no such window lies just
    before (the summary then shows no comparison rather than a biased one).

    Why as many 1sts: charges billed for a whole month -- tax, monthly fees, the unused part of a reservation --
    are booked on the 1st (their ChargePeriodStart), so a window holding a 1st carries a month of them and one
    without carries none. 5-18 Oct against the 14 days before (21 Sep-4 Oct) read -10.3% on the demo while
    like-for-like spend rose 1.2%: those days held $26,125 of month-long charges booked on 1 Oct. Why as many
    days: 1-31 Mar against 1-28 Feb read +19.0% on nearly flat spend, 29-31 Mar against 28 Feb +269.3% (the same
    bias the day-for-day budget variance avoids, :func:`finops_kit.budgets.day_for_day`).

    The rule: ``k`` is the fewest whole months that move ``end`` (same day of the month, or the month's last day
    when it has no such day) before ``start``. Candidates, in order: the window of as many days **ending** on
    ``end`` moved back ``k`` months; the one **starting** on ``start`` moved back ``k`` months (if it ends before
    ``start``); the same two ``k + 1`` months back. The first holding as many 1sts is the previous window; none:
    None. When the earlier month has the days, this is simply the same days of the month::

        5-18 Oct 2026          -> 5-18 Sep          (same days)
        21 Sep-4 Oct           -> 22 Aug-4 Sep      (14 days ending on the 4th, one 1st; not 21 Aug: 15 days)
        1-31 Oct               -> 31 Aug-30 Sep     (31 days ending on Sep's last day, one 1st)
        29-31 Mar 2026         -> 26-28 Feb         (3 days ending on Feb's last day, no 1st; not 28 Feb alone)
        30-31 May              -> 29-30 Apr
        31 Mar 2026            -> 28 Feb            (31 Mar 2028 -> 29 Feb 2028)
        1-31 Mar 2026          -> 29 Jan-28 Feb     (31 days holding one 1st; not 1-28 Feb)
        2-31 May 2026          -> 2-31 Mar          (30 days ending 30 Apr or starting 2 Apr hold 1 Apr)
        1 Jan-31 Dec 2026      -> 1 Jan-31 Dec 2025
        1 Jan-31 Dec 2028      -> 31 Dec 2026-31 Dec 2027   (366 days, twelve 1sts)
        1 Jan-31 Dec 2029      -> 1 Jan-30 Dec 2028 (ending 31 Dec it would start 2 Jan: eleven 1sts)
        1 Feb-1 Mar 2026       -> None              (29 days holding two 1sts: only a February does that)

    Each month-long charge counts whole on the day it is booked, as every analysis of the scope counts it. This is
    the one rule for the "previous period" of a charge-day scope (:func:`finops_kit.summary.comparison_periods`).
    """
    length = end - start
    want = _firsts(start, end)
    k = 1
    while _months_back(end, k) >= start:
        k += 1
    for months in (k, k + 1):
        pe = _months_back(end, months)
        ps = _months_back(start, months)
        for before in ((pe - length, pe), (ps, ps + length)):
            if before[1] < start and _firsts(*before) == want:
                return before
    return None


def parse(params: Mapping[str, Any] | None = None, **kwargs: Any) -> Scope:
    """:meth:`Scope.parse` as a function."""
    return Scope.parse(params, **kwargs)


def resolve(con: duckdb.DuckDBPyConnection, config: Any = None, params: Mapping[str, Any] | None = None,
            **kwargs: Any) -> Scope:
    """Parse scope parameters and resolve them against the warehouse in one step (what notebooks call)."""
    return resolve_scope(con, Scope.parse(params, **kwargs), config)


def resolve_scope(con: duckdb.DuckDBPyConnection, scope: Scope, config: Any = None) -> Scope:
    """Decide the scope's currency, check that it holds charges, and bind it to ``con`` and ``config``.

    Errors: unknown provider/account names (ConfigError naming the ones the warehouse has), several billing
    currencies without ``currency`` or rates (ConfigError naming them), no charge in scope (NoDataError).
    """
    from . import currency as cur_mod
    from .config import load_config

    cfg = config if isinstance(config, dict) else load_config(config)
    attribution_settings(cfg)  # a typo in tag_policy/allocation fails here, whether or not the command reads tags
    sc = replace(scope, con=None, convert=False, rates=None, currency=scope.currency)
    if sc.providers:
        known = [r[0] for r in con.execute(
            f"SELECT DISTINCT ProviderName FROM {FOCUS_TABLE} WHERE ProviderName IS NOT NULL ORDER BY 1").fetchall()]
        low = {k.lower(): k for k in known}
        bad = [p for p in sc.providers if p.lower() not in low]
        if bad:
            raise ConfigError(f"parameter providers: {', '.join(map(repr, bad))} not in the warehouse "
                              f"(it holds {', '.join(known) or 'no data'})")
    for name, cols in (("billing_accounts", ("BillingAccountId", "BillingAccountName")),
                       ("sub_accounts", ("SubAccountId", "SubAccountName"))):
        wanted = getattr(sc, name)
        if wanted:
            lst = ", ".join(sql_str(v) for v in wanted)
            found = {r[0] for c in cols for r in con.execute(
                f"SELECT DISTINCT {c} FROM {FOCUS_TABLE} WHERE {c} IN ({lst})").fetchall()}
            bad = [w for w in wanted if w not in found]
            if bad:
                raise ConfigError(f"parameter {name}: {', '.join(map(repr, bad))} not in the warehouse")
    settings = cur_mod.settings(cfg)
    target = sc.currency or (str(settings["reporting_currency"]).upper() if settings["reporting_currency"] else None)
    plain = replace(sc, currency=None)
    currencies = [r[0] for r in con.execute(
        f"SELECT DISTINCT coalesce(BillingCurrency, '(none)') FROM {FOCUS_TABLE} WHERE {plain.where()} ORDER BY 1"
    ).fetchall()]
    if not currencies:
        raise NoDataError(f"no data for this scope ({sc.describe()}): the warehouse holds "
                          f"{_coverage_text(con)}")
    if target and settings["rates_file"] and any(c != target for c in currencies):
        rates = cur_mod.load_rates(settings["rates_file"])
        sc = replace(sc, currency=target, convert=True, rates=rates)
        # the scope's months and every month before them (of its providers and accounts): forecasts, budgets and
        # anomaly baselines read the history, where a missing rate would silently drop the spend (NULL); nothing
        # reads past the scope's end, so a rate not published yet for a later month is not asked for
        missing = con.execute(
            f"SELECT DISTINCT x_SourceCurrency, strftime(BillingPeriodStart, '%Y-%m') FROM "
            f"{replace(sc, start=None).rows_sql()} WHERE EffectiveCost IS NULL "
            "AND x_SourceCurrency IS DISTINCT FROM BillingCurrency ORDER BY 1, 2 LIMIT 20").fetchall()
        if missing:
            shown = ", ".join(f"{c} {m}" for c, m in missing)
            raise ConfigError(f"{rates.path}: no rate to {target} for {shown}; add month,from_currency,to_currency,"
                              "rate lines (or a '*' month) -- amounts are never converted with a guessed rate")
    elif target:
        if target not in currencies:  # a parameter naming what is not there, as an unknown provider: exit 2
            raise ConfigError(f"parameter currency: no charge billed in {target} in this scope (it holds "
                              f"{', '.join(currencies)}); pick one of those, or set currency.reporting_currency and "
                              "rates_file to convert")
        sc = replace(sc, currency=target)
    elif len(currencies) > 1:
        raise ConfigError(f"the scope holds amounts in several billing currencies ({', '.join(currencies)}): pick one "
                          f"with -p currency={currencies[0]}, or set currency.reporting_currency and rates_file in "
                          "finops.yaml to convert; amounts are never added across currencies")
    else:
        sc = replace(sc, currency=currencies[0] if currencies[0] != "(none)" else None)
    object.__setattr__(sc, "con", con)
    object.__setattr__(sc, "config", cfg)
    return sc


def _coverage_text(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(f"SELECT strftime(min(BillingPeriodStart), '%Y-%m'), strftime(max(BillingPeriodStart), '%Y-%m'), "
                      f"string_agg(DISTINCT ProviderName, ', ' ORDER BY ProviderName) FROM {FOCUS_TABLE}").fetchall()[0]
    if not row or row[0] is None:
        return "no charges (run 'finops-kit ingest')"
    return f"billing periods {row[0]} .. {row[1]} of {row[2]}"


def bind(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, config: Any = None, **legacy: Any) -> Scope:
    """The resolved scope an analysis function works on: ``scope`` as given when resolved on ``con``, else
    resolved here; ``None`` means the whole warehouse. ``legacy`` start/end/providers keywords (months or days,
    both inclusive) are accepted for callers that predate :class:`Scope`."""
    if scope is not None and scope.con is con:
        return scope
    if scope is None:
        lg = {k: v for k, v in legacy.items() if v not in (None, "", [], ())}
        scope = Scope.of(lg.get("start"), lg.get("end"), lg.get("providers")) if lg else Scope()
    return resolve_scope(con, scope, config)


#: Days a provider's export may run behind another's, or one billing account's behind another of the same
#: provider, before the one behind counts as gone (it left, an account was closed or migrated) rather than late.
#: Exports normally arrive within 1-3 days (AWS rewrites the month's CUR about daily; Azure runs a day or two
#: behind). Used by :func:`completeness` and :func:`finops_kit.forecast.data_through`.
LATE_DELIVERY_DAYS = 7
#: The usage rows that show how far a delivery has come: daily and hourly ones. A usage row spanning the month (a
#: hosted zone, the unused part of a reservation fee, booked on the 1st) says nothing about it. Used by
#: :func:`completeness` and :func:`finops_kit.forecast.data_through`.
DELIVERED_USAGE = ("ChargeCategory = 'Usage' AND ChargePeriodEnd > ChargePeriodStart "
                   "AND ChargePeriodEnd <= ChargePeriodStart + INTERVAL 1 DAY")
#: SQL aggregate: the last whole day a group's data reaches -- its daily or hourly usage's latest end minus a day,
#: else (no such rows) its last charge day. Used by :func:`finops_kit.forecast.data_through` and
#: :func:`finops_kit.alerts.freshness_alert` per provider.
LAST_WHOLE_DAY = (f"coalesce(CAST(max(ChargePeriodEnd) FILTER (WHERE {DELIVERED_USAGE}) - INTERVAL 1 DAY AS DATE), "
                  "max(CAST(ChargePeriodStart AS DATE)))")


def completeness(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> pd.DataFrame:
    """Per provider and billing period (of the providers/accounts in scope, every period): first and last day
    with data, days in the period, and ``closed``; ``label`` reads "2026-10" or "1-26 Nov 2026, open".

    Decided per billing account, because each billing account is its own delivery (a payer's CUR, a billing
    account's GCP export): one payer's finished month does not make another's partial month complete. A provider's
    period is closed when it is closed for every billing account that has charges in it; the last day shown for an
    open period is that of the account furthest behind, which the label names when others are complete.

    An account's period is closed when its usage reaches the end of the billing period (``BillingPeriodEnd``, as
    an instant, never before the first of the next month -- an inclusive end written by a third-party file does
    not close the month a day early; hourly rows that stop at 05:00 on the last day have not reached it), when the
    account has charges in a later period, when every row of the period is invoiced (``InvoiceId``: the month is
    final even if the account stopped using the cloud on the 3rd), or when its provider has delivered usage
    :data:`LATE_DELIVERY_DAYS` past the period's end: an account still short of it then has ended or moved (a
    migration), not fallen behind -- GCP and OCI exports carry no invoice id to say so. An account with no usage
    row in the period (only a tax line, only credits) does not decide it; a provider with none at all (fees booked
    on the 1st of a new month) is closed once its charges reach the period's last day or a later period.

    ``last_day`` is the last WHOLE day the usage rows reach (their latest end minus a day: hourly rows that stop at
    05:00 on the 26th reach through the 25th), the day :func:`finops_kit.forecast.data_through` counts, so a label
    and a forecast's "data through" name the same day; an open period whose data holds no day of its month yet is
    labelled "Oct 2024, open (data through 30 Sep 2024)" (:func:`open_label`), never "1-30 Oct".

    How far usage has been delivered is read from the daily and hourly usage rows only: a usage row spanning the
    month (a hosted zone, the unused part of a reservation fee, booked on the 1st) says nothing about it. Month-long
    rows decide only where an account's period has nothing shorter (a monthly-granularity export). Fees booked on
    the 1st for the month never make it complete.
    """
    where = (scope or Scope()).where(period=False)
    df = con.execute(f"""
        WITH a AS (
          SELECT ProviderName AS provider, BillingAccountId AS account,
                 CAST(date_trunc('month', BillingPeriodStart) AS DATE) AS billing_period,
                 min(CAST(ChargePeriodStart AS DATE)) AS first_day,
                 coalesce(max(ChargePeriodEnd) FILTER (WHERE {DELIVERED_USAGE}),
                          max(ChargePeriodEnd) FILTER (WHERE ChargeCategory = 'Usage'
                            AND ChargePeriodEnd > ChargePeriodStart)) AS usage_end,
                 max(CAST(ChargePeriodStart AS DATE)) AS last_start,
                 greatest(max(BillingPeriodEnd),
                          CAST(date_trunc('month', max(BillingPeriodStart)) + INTERVAL 1 MONTH AS TIMESTAMP))
                   AS period_end,
                 count(InvoiceId) = count(*) AS invoiced,
                 count(*) AS rows
          FROM {FOCUS_TABLE} WHERE {where} GROUP BY ALL),
        b AS (
          SELECT *, coalesce(CAST(usage_end - INTERVAL 1 DAY AS DATE), last_start) AS last_day,
                 billing_period < max(billing_period) OVER (PARTITION BY provider) AS provider_later,
                 (usage_end IS NULL OR usage_end >= period_end OR invoiced
                  OR billing_period < max(billing_period) OVER (PARTITION BY provider, account)
                  OR max(usage_end) OVER (PARTITION BY provider)
                       >= period_end + INTERVAL {LATE_DELIVERY_DAYS} DAY) AS account_closed
          FROM a)
        SELECT provider, billing_period, min(first_day) AS first_day,
               CASE WHEN bool_and(account_closed) THEN max(last_day)
                    ELSE min(last_day) FILTER (WHERE NOT account_closed) END AS last_day,
               CAST(last_day(billing_period) AS DATE) AS period_last_day, sum(rows)::BIGINT AS rows,
               CASE WHEN bool_or(usage_end IS NOT NULL) THEN bool_and(account_closed)
                    ELSE bool_or(last_day >= last_day(billing_period) OR provider_later) END AS closed,
               CASE WHEN bool_or(account_closed) AND NOT bool_and(account_closed)
                    THEN string_agg(DISTINCT coalesce(account, '(none)'), ', ' ORDER BY coalesce(account, '(none)'))
                           FILTER (WHERE NOT account_closed) END AS accounts_behind
        FROM b GROUP BY provider, billing_period ORDER BY billing_period, provider""").df()
    for c in ("billing_period", "first_day", "last_day", "period_last_day"):
        df[c] = pd.to_datetime(df[c]).dt.date
    df["days_with_data"] = [(b - a).days + 1 for a, b in zip(df["first_day"], df["last_day"], strict=True)]
    df["label"] = [f"{p:%Y-%m}" if c else open_label(p, last)
                   + (f" (billing account {behind})" if isinstance(behind, str) else "")
                   for p, last, c, behind in zip(df["billing_period"], df["last_day"], df["closed"],
                                                 df["accounts_behind"], strict=True)]
    return df.drop(columns="accounts_behind")


__all__ = ["PARAMETERS", "NoDataError", "Scope", "bind", "completeness", "parameters_cell", "parse",
           "previous_window", "resolve", "resolve_scope"]
