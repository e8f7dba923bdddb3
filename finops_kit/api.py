"""One-line answers for a notebook: ``fk.costs(by=["team", "service"], period="2026-10", ai_only=True)``.

Why a separate API: "GPU spend by team" written as the obvious query on the ``team`` tag was wrong ($653k
untagged: the tag is also spelled ``Team``, ``owner-team``, ...), and the right answer needed the scope, the
attribution and the unit rules by hand. These functions are thin: which charges (:mod:`finops_kit.scope`: periods,
providers, accounts, currency, completeness), who owns them (:mod:`finops_kit.attribution` under ``tag_policy``),
what a GPU-hour is (:mod:`finops_kit.units`) and what a dimension means (:data:`finops_kit.forecast.DIMENSIONS`,
shared with budgets and forecasts) are decided there, once; here they are only combined into one aggregate query
in DuckDB. The result is a small :class:`CostFrame`: a pandas DataFrame with exact Decimal money that *displays*
money as ``$1,234.56`` and states its scope and completeness.

    import finops_kit as fk
    fk.costs(by="service", period="last closed").head(5)      # top services, last closed month
    fk.costs(by="team", gpu_only=True)                          # GPU spend by team (tag spellings consolidated)
    fk.costs(by="account", where={"team": "(untagged)"})        # untagged spend by account
    fk.change(by="service")                                     # month over month (closed months)
    fk.costs(by="instance_family", gpu_only=True)               # spot share of accelerator-hours by family
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from . import units
from .errors import ConfigError
from .schema import MONEY
from .sources.base import ident, sql_str

#: Dimensions of the accelerated-compute rows (need ``gpu_only=True``): from :func:`units.accelerated_usage_sql`.
GPU_DIMENSIONS: dict[str, str] = {
    "instance_family": "coalesce(instance_family, '(none)')",
    "instance_type": "coalesce(instance_type, '(none)')",
    "accelerator": "coalesce(accelerator, '(none)')",
    "pricing": "coalesce(pricing, '(none)')",
}
#: Dimensions :data:`finops_kit.forecast.DIMENSIONS` does not have (a billing period, a resource).
EXTRA_DIMENSIONS: dict[str, str] = {
    "month": "strftime(BillingPeriodStart, '%Y-%m')",
    "billing_account": "coalesce(BillingAccountName, BillingAccountId, '(none)')",
    "resource": "coalesce(ResourceName, ResourceId, '(none)')",
}
#: ``period=`` values meaning the latest billing period that is closed for every provider in scope.
LAST_CLOSED = ("last closed", "last_closed", "last-closed")

# --------------------------------------------------------------------------------------------------- the frame

class CostFrame(pd.DataFrame):
    """A DataFrame whose money columns (exact ``Decimal``) display as ``$1,234.56`` and whose display states the
    scope and its completeness. Everything else is plain pandas; ``.scope`` is the resolved scope."""

    _metadata = ["money_columns", "percent_columns", "quantity_columns", "scope_text", "completeness", "currency",
                 "scope", "config_text", "nonzero_only_columns"]

    @property
    def _constructor(self) -> type[CostFrame]:
        return CostFrame

    def _meta(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def _shown(self) -> tuple[list[str], list[str]]:
        cols = {str(c) for c in self.columns}
        return ([c for c in self._meta("money_columns") or () if c in cols],
                [c for c in self._meta("percent_columns") or () if c in cols])

    def _note(self) -> str:
        return " ".join(x for x in (self._meta("scope_text"), self._meta("completeness"), self._meta("config_text"))
                        if x)

    def _displayed(self) -> pd.DataFrame:
        """The frame as displayed: without the columns that are shown only when some row has a value other than 0
        (``unknown_accelerator_cost``: a column of $0.00 on every line says nothing; it appears, on every line, as
        soon as some cost has unknown accelerator-hours). The frame itself keeps every column."""
        from .notebook import empty_columns

        plain = pd.DataFrame(self)
        return plain.drop(columns=empty_columns(plain, self._meta("nonzero_only_columns")))

    def _repr_html_(self) -> str:  # type: ignore[override]
        from .notebook import NO_MATH, table

        money, pct = self._shown()
        shown = self._displayed()
        out = table(shown, money=[c for c in money if c in shown.columns], percent=[c for c in pct if c in shown.columns],
                    currency=self._meta("currency") or "USD").markup
        note = self._note()
        return out + (f'<p class="finops-scope {NO_MATH}" style="font-size:11px;color:#555;margin:0 0 8px 0">'
                      f"{html.escape(note)}</p>" if note else "")

    def formatted(self) -> pd.DataFrame:
        """A copy with money as text (``$1,234.56``) and percentages as ``12.3%``: what the display shows."""
        from .notebook import money as fmt

        money, pct = self._shown()
        cur = self._meta("currency") or "USD"
        plain = self._displayed().copy()
        for c in money:
            if c not in plain.columns:
                continue
            plain[c] = plain[c].map(lambda v: fmt(v, cur))
        for c in pct:
            if c in plain.columns:
                plain[c] = plain[c].map(lambda v: "" if v is None or v != v else f"{float(v):.1%}")
        for c in self._meta("quantity_columns") or ():
            if c in plain.columns:
                plain[c] = plain[c].map(lambda v: "" if v is None or v != v else f"{float(v):,.0f}")
        return plain

    def __repr__(self) -> str:
        note = self._note()
        return self.formatted().to_string(index=False) + (f"\n{note}" if note else "")


def _frame(df: pd.DataFrame, sc: Any, money: Sequence[str], percent: Sequence[str] = (),
           nonzero_only: Sequence[str] = ()) -> CostFrame:
    out = CostFrame(df)
    out.nonzero_only_columns = list(nonzero_only)
    out.money_columns = list(money)
    out.percent_columns = list(percent)
    out.quantity_columns = [c for c in ("accelerator_hours",) if c in df.columns]
    out.currency = sc.currency or "USD"
    out.scope_text = f"Scope: {sc.describe()}."
    out.completeness = sc.completeness_note()
    out.config_text = config_note(sc.config)
    out.scope = sc
    return out


def config_note(config: Any) -> str:
    """Which config a frame's figures were computed under: its file (relative to the working directory when inside
    it), or that none was found and the kit's defaults apply (team figures differ: no tag_policy aliases)."""
    import os

    from .config import config_file

    path = config_file(config) if isinstance(config, dict) else config
    if isinstance(config, dict) and config and path is None:
        return "Config: given in code."
    if not path:
        return "Config: no finops.yaml found (kit defaults: no tag_policy aliases, no allocation)."
    rel = os.path.relpath(os.path.abspath(str(path)))
    return f"Config: {str(path) if rel.startswith('..') else rel}."


# --------------------------------------------------------------------------------------------------- scope

def _connection(con: duckdb.DuckDBPyConnection | None) -> duckdb.DuckDBPyConnection:
    """``con``, else the project's warehouse: the last ``fk.connect()``, or opened read-only now and reused."""
    if con is not None:
        return con
    from .warehouse import default_connection

    return default_connection()


def _config(config: Any) -> Any:
    """The config argument, else :func:`finops_kit.config.find_config` ($FINOPS_CONFIG, else the project's
    ``finops.yaml`` found from any folder; None: the kit defaults) -- the rule every command uses."""
    if config is not None:
        return config
    from .config import find_config

    found = find_config()
    return str(found) if found else None


def _period_params(period: Any) -> dict[str, str]:
    if period is None or period == "":
        return {}
    if isinstance(period, str | dt.date):
        period = (period, period)
    if not isinstance(period, Sequence) or len(period) != 2:
        raise ConfigError(f"period={period!r}: expected 'YYYY-MM', ('YYYY-MM', 'YYYY-MM') or 'last closed'")
    a, b = (str(p) if not isinstance(p, dt.date) else f"{p:%Y-%m}" for p in period)
    return {"billing_period_start": a, "billing_period_end": b}


def scope(period: Any = None, *, con: duckdb.DuckDBPyConnection | None = None, config: Any = None,
          providers: Iterable[str] | str | None = None, accounts: Iterable[str] | str | None = None,
          **params: Any) -> Any:
    """The resolved :class:`~finops_kit.scope.Scope` of a one-line question (the same parser as the reports).

    ``period``: ``"2026-10"``, ``("2026-08", "2026-10")`` (inclusive) or ``"last closed"`` (the latest billing
    period closed for every provider in scope); ``accounts`` are sub accounts (AWS account, GCP project, Azure
    subscription); any other scope parameter (``date_start``, ``billing_accounts``, ``currency``...) by name.
    """
    from .scope import NoDataError, resolve

    con = _connection(con)
    cfg = _config(config)
    base = dict(params)
    if providers:
        base["providers"] = [providers] if isinstance(providers, str) else list(providers)
    if accounts:
        base["sub_accounts"] = [accounts] if isinstance(accounts, str) else list(accounts)
    if isinstance(period, str) and period.strip().lower() in LAST_CLOSED:
        closed = resolve(con, cfg, base).closed_periods()
        if not closed:
            raise NoDataError("no closed billing period in this scope (every period is still open)")
        period = f"{max(closed):%Y-%m}"
    return resolve(con, cfg, {**base, **_period_params(period)})


def _dimension(name: str, sc: Any, gpu: bool) -> str:
    """SQL of a dimension named in words; tag dimensions through the scope's attribution (``environment`` is the
    policy's ``environment_key``; a name that is an alias of a policy key, such as ``application``, is that key)."""
    from .forecast import DIMENSIONS, dimension_sql

    if name in GPU_DIMENSIONS:
        if not gpu:
            raise ConfigError(f"dimension {name!r} describes accelerated instances: add gpu_only=True")
        return GPU_DIMENSIONS[name]
    if name in EXTRA_DIMENSIONS:
        return EXTRA_DIMENSIONS[name]
    policy = sc.attribution.policy
    key = policy.environment_key if name == "environment" else name
    if key not in policy.keys and key not in DIMENSIONS:
        key = next((k.name for k in policy.keys.values() if name.lower() in {a.lower() for a in k.aliases}), key)
    try:
        return dimension_sql(key, sc)
    except ConfigError:
        known = sorted({*DIMENSIONS, *EXTRA_DIMENSIONS, *GPU_DIMENSIONS, *policy.keys, "environment"} - {"total"})
        raise ConfigError(f"unknown dimension {name!r}; expected one of {', '.join(known)}") from None


def _source(sc: Any, gpu: bool, ai: bool, where: Mapping[str, Any] | None) -> tuple[str, str]:
    """(FROM item, WHERE predicate) of the charges asked for."""
    src = f"({units.accelerated_usage_sql(source=sc.rows_sql())})" if gpu else sc.rows_sql()
    preds = ["TRUE"]
    if ai:
        preds.append("x_AiWorkload IS NOT NULL")  # the kit's one AI/ML classification (metrics.ai_cost)
    for dim, val in (where or {}).items():
        vals = val if isinstance(val, list | tuple | set) else [val]
        preds.append(f"{_dimension(dim, sc, gpu)} IN ({', '.join(sql_str(str(v)) for v in vals)})")
    return src, " AND ".join(preds)


# --------------------------------------------------------------------------------------------------- answers

def costs(by: str | Sequence[str] = (), period: Any = None, *, ai_only: bool = False, gpu_only: bool = False,
          where: Mapping[str, Any] | None = None, con: duckdb.DuckDBPyConnection | None = None,
          config: Any = None, providers: Iterable[str] | str | None = None,
          accounts: Iterable[str] | str | None = None, **params: Any) -> CostFrame:
    """EffectiveCost (amortized, credits included) grouped by dimensions named in words, largest first.

    ``by``: any of ``team``, ``environment``, ``owner``, ``project``/``application``, ``model`` (attributed under
    ``tag_policy``: aliases and spellings consolidated; ``(untagged)``/``(shared)`` as their own lines),
    ``service``, ``service_category``, ``provider``, ``account``, ``billing_account``, ``region``, ``month``,
    ``resource``, ``ai_workload``, ``usage_type``, ``charge_category``...; with ``gpu_only=True`` also
    ``instance_family``, ``instance_type``, ``accelerator``, ``pricing``. ``ai_only``: charges classified AI/ML;
    ``gpu_only``: accelerated instances (:func:`units.accelerated_usage_sql`), adding ``accelerator_hours`` (of the
    types the catalog knows; NULL when none is known), ``spot_share`` (spot accelerator-hours / accelerator-hours
    that could run on spot, as ``finops-kit metrics``: :func:`finops_kit.units.spot_share_sql`) and
    ``unknown_accelerator_cost`` (the cost whose accelerator-hours are unknown, :func:`units.unknown_cost`). ``where``: equality
    filters on the same dimensions (``{"team": "(untagged)"}``). Scope arguments as :func:`scope`.

    Columns: the dimensions, ``cost`` (exact Decimal in the scope's currency), ``share`` of the total shown.
    """
    dims = [by] if isinstance(by, str) else list(by)
    con = _connection(con)
    sc = scope(period, con=con, config=config, providers=providers, accounts=accounts, **params)
    src, pred = _source(sc, gpu_only, ai_only, where)
    sel = [f"{_dimension(d, sc, gpu_only)} AS {ident(d)}" for d in dims]
    gpu_cols = ""
    if gpu_only:
        gpu_cols = (f", {units.known_total('accelerator_hours')} AS accelerator_hours, "
                    f"{units.spot_share_sql('accelerator_hours')} AS spot_share, "
                    f"{units.unknown_cost('accelerator_hours', typ=MONEY)} AS unknown_accelerator_cost")
    sql = (f"SELECT {', '.join([*sel, ''])}sum(EffectiveCost)::{MONEY} AS cost{gpu_cols} "
           f"FROM {src} WHERE {pred} {'GROUP BY ALL' if dims else ''} ORDER BY cost DESC NULLS LAST"
           + (", " + ", ".join(ident(d) for d in dims) if dims else ""))
    df = con.sql(sql).to_arrow_table().to_pandas()
    total = sum((v for v in df["cost"] if v is not None), Decimal(0))
    df["share"] = [float(v / total) if total and v is not None else None for v in df["cost"]]
    return _frame(df, sc, ["cost", "unknown_accelerator_cost"] if gpu_only else ["cost"],
                  ["share", "spot_share"] if gpu_only else ["share"], nonzero_only=["unknown_accelerator_cost"])


def change(by: str | Sequence[str] = "service", period: Any = "last closed", *, vs: Any = None,
           ai_only: bool = False, gpu_only: bool = False, where: Mapping[str, Any] | None = None,
           con: duckdb.DuckDBPyConnection | None = None, config: Any = None,
           providers: Iterable[str] | str | None = None, accounts: Iterable[str] | str | None = None,
           **params: Any) -> CostFrame:
    """Change of EffectiveCost from one billing period to another per dimension, largest change first.

    Default: the last closed month against the month before (month-over-month comparisons use closed periods
    only -- :mod:`finops_kit.scope`). ``period``/``vs``: ``"YYYY-MM"`` each. Columns: the dimensions, ``before``,
    ``after``, ``change`` (money) and ``change_pct`` (of ``before``; empty when it was 0).
    """
    dims = [by] if isinstance(by, str) else list(by)
    con = _connection(con)
    cur = scope(period, con=con, config=config, providers=providers, accounts=accounts, **params)
    if cur.basis != "billing_period" or cur.start is None or cur.end is None \
            or (cur.start.year, cur.start.month) != (cur.end.year, cur.end.month):
        raise ConfigError("change(): period must be one billing period (YYYY-MM or 'last closed')")
    before = vs or f"{(pd.Timestamp(cur.start) - pd.offsets.MonthBegin(1)):%Y-%m}"
    prev = scope(before, con=con, config=config, providers=providers, accounts=accounts, **params)
    kw = dict(ai_only=ai_only, gpu_only=gpu_only, where=where, con=con, config=config, providers=providers,
              accounts=accounts, **params)
    a = pd.DataFrame(costs(dims, f"{prev.start:%Y-%m}", **kw))
    b = pd.DataFrame(costs(dims, f"{cur.start:%Y-%m}", **kw))
    keep = [*dims, "cost"]
    m = a[keep].merge(b[keep], on=dims, how="outer", suffixes=("_before", "_after")) if dims else \
        pd.DataFrame({"cost_before": a["cost"], "cost_after": b["cost"]})
    m = m.rename(columns={"cost_before": "before", "cost_after": "after"})
    for c in ("before", "after"):
        m[c] = [v if isinstance(v, Decimal) else Decimal(0) for v in m[c]]
    m["change"] = [y - x for x, y in zip(m["before"], m["after"], strict=True)]
    m["change_pct"] = [float(d / x) if x else None for d, x in zip(m["change"], m["before"], strict=True)]
    m = m.sort_values("change", key=lambda s: s.map(abs), ascending=False).reset_index(drop=True)
    both = scope((f"{prev.start:%Y-%m}", f"{cur.start:%Y-%m}"), con=con, config=config, providers=providers,
                 accounts=accounts, **params)
    return _frame(m, both, ["before", "after", "change"], ["change_pct"])


__all__ = ["CostFrame", "change", "costs", "scope"]
