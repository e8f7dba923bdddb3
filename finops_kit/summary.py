"""The answer first: the summary block every report opens with (scope, headline figures, top actions).

Why a module: a reader (the analyst, or the manager they forward the page to) should get the answer on the first
screen, and a figure shown in two reports must be the same figure. So the block is computed here, never typed in a
notebook: the figures come from :mod:`finops_kit.metrics` (one definition each), the periods compared from
:mod:`finops_kit.scope` (closed periods only), and each action's owner from :mod:`finops_kit.attribution` (through
the analysis function that produced it: every kit table with a ``team`` column took it from ``owner_sql``).

Which period the figures describe: the **latest closed billing period in scope**, compared with **the closed period
before it** (same providers and accounts, even when that period is before the scope's start). An open period is
never compared (its month is not complete); a scope without a closed period shows its figures over the whole scope,
without a change. A scope given as charge days is summarized on its days, against as many days holding as many
1sts of a month, moved back by whole months (:func:`finops_kit.scope.previous_window`: month-long charges booked
on the 1st fall in both windows or in neither), or without a change when no such window lies just before.

Typical notebook use (right after ``nb.header``; later cells add the actions they back)::

    from finops_kit import summary as sm
    s = sm.summarize(con, sc, ["effective_cost", "ai_cost", "unallocated_cost", "tag_coverage"],
                     title="Tagging audit")
    s.show()                                  # displays the block now; later add_* calls redraw it in place
    ...
    s.add_actions(always_on, what="Schedule non-production GPU {resource_id} ({instance_type})",
                  dollars="monthly_saving", owner="team", section="5. Dev vs prod", basis="per month")
    s.add_action("Fix the 'team' tag on account X", 1234.5, owner="vision", section="3. Tag policy audit",
                 basis="in scope")  # cost at stake, not a saving (BASIS_KINDS)

``section`` is the text of the report heading (Markdown ``## ...``) that backs the action: the link goes to the
anchor nbconvert and JupyterLab give that heading (:func:`anchor`). Every value in the block is HTML-escaped.

What the actions' dollars are decides where they go (:data:`BASIS_KINDS`, :meth:`Summary.action_groups`): savings
if done, variances (over budget, above expected) and cost at stake (the spend a tag fix concerns: not money saved)
are listed apart, never ranked together; a resource appears once per kind; a saving resting on an assumed figure
(``assumed=``) is ranked by its dollars like the others and says so in brackets; and the block says that savings
of different actions on the same usage are alternatives, not additive.

Figures available (:data:`FIGURES`): ``effective_cost`` (spend), ``billed_cost``, ``ai_cost``, ``storage_cost``,
``transfer_cost``, ``shared_cost``, ``unallocated_cost``, ``accelerator_cost``, ``spot_share`` (of the
accelerator-hours that could run on spot), ``tag_coverage`` (cost-weighted coverage of the allocation key). A figure that is not a
metric (a forecast, a budget) is added with :meth:`Summary.add_figure` from the package function that computed it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pandas as pd

from .budgets import crossing_text, pending_part
from .metrics import spot_share, tag_coverage, totals
from .scope import Scope, _month_end, previous_window, resolve_scope
from .tagging import HOURS_PER_MONTH

#: Output metadata marking the block (``{"finops_kit": "summary"}``), like the header's.
META = {"finops_kit": "summary"}
#: How many actions the block lists (the rest stay in their sections).
MAX_ACTIONS = 5
#: The attribute `finops-kit report` pages use to find the block.
CSS_CLASS = "finops-summary"


@dataclass(frozen=True)
class FigureDef:
    """How one headline figure is read from the metrics of a period."""

    label: str
    kind: str  # money | percent (a fraction 0..1) | number
    read: Callable[[Any, Scope], Any]
    help: str
    #: the sentence printed under the figures for the period shown (:attr:`Figure.detail`), when the figure needs
    #: one to be read right beside another (None: the label says it all)
    explain: Callable[[Any, Scope], str] | None = None


def _cached(con: Any, sc: Scope, name: str, fn: Callable[[Any, Scope], pd.DataFrame]) -> pd.DataFrame:
    """One metrics table per scope object (a summary reads several figures from the same table)."""
    memo = sc.__dict__.setdefault("_summary_memo", {})
    if name not in memo:
        memo[name] = fn(con, sc)
    return memo[name]


def _total(name: str) -> Callable[[Any, Scope], Any]:
    def read(con: Any, sc: Scope) -> Any:
        t = _cached(con, sc, "totals", totals)
        t = t[t["currency"] == sc.currency] if sc.currency is not None else t
        return t.iloc[0][name] if len(t) == 1 else None
    return read


def _spot(column: str) -> Callable[[Any, Scope], Any]:
    def read(con: Any, sc: Scope) -> Any:
        s = _cached(con, sc, "spot", spot_share)
        s = s[s["provider"] == "(all)"]
        if sc.currency is not None:
            s = s[s["currency"] == sc.currency]
        if len(s) != 1:
            return None
        v = s.iloc[0][column]
        return None if v is None or (isinstance(v, float) and v != v) else v
    return read


def _coverage(con: Any, sc: Scope) -> Any:
    key = sc.attribution.allocation.key
    cov = _cached(con, sc, "tag_coverage", tag_coverage)
    row = cov[cov["key"] == key]
    return None if row.empty else float(row.iloc[0]["coverage"]) / 100


def unallocated_detail(con: Any, sc: Scope) -> str:
    """Why "Unallocated" is less than the untagged share of the coverage figure, in one sentence: the charges
    without a valid allocation-key tag (the coverage figure's untagged dollars, :func:`finops_kit.metrics.tag_coverage`)
    less the shared costs among them (``allocation.shared``: tax, adjustments, unused commitments..., pooled and
    spread over every team, so not unallocated), with credits on the untagged charges that are left.

    Why: the demo's block printed "Unallocated (untagged): $16,800" beside "Allocation-key tag coverage: 90.8%";
    a reader takes 9.2% of October's spend, about $45.7k, as untagged, and asks where $28.9k went (review s17 prose,
    finding 9): it is October's tax ($23,509) and unused commitments ($5,374), untagged but shared."""
    attr = sc.attribution
    a, key = attr.allocation, attr.allocation.key
    cov = _cached(con, sc, "tag_coverage", tag_coverage)
    row = cov[cov["key"] == key]
    if row.empty:
        return ""
    untagged, total = (Decimal(str(row.iloc[0][c])) for c in ("untagged_cost", "total_cost"))
    from .sources.base import sql_str

    # which rule of allocation.shared makes an untagged charge shared (the first that holds, as shared_sql's ORs)
    whens = [f"WHEN ChargeCategory = {sql_str(c)} THEN {sql_str(c)}" for c in a.shared_charge_categories]
    if a.unused_commitments_shared:
        whens.append("WHEN CommitmentDiscountStatus = 'Unused' THEN 'unused commitments'")
    whens += [f"WHEN ServiceName = {sql_str(n)} THEN {sql_str(n)}" for n in a.shared_service_names]
    reason = f"CASE {' '.join(whens)} ELSE {sql_str('shared ' + key + ' values')} END"
    rows = con.sql(f"""
        SELECT {reason} AS reason, sum(EffectiveCost) AS cost
        FROM {sc.rows_sql()}
        WHERE EffectiveCost > 0 AND {attr.value_sql(key)} IS NULL AND {attr.shared_sql()}
        GROUP BY ALL ORDER BY cost DESC, reason""").fetchall()
    cur = sc.currency
    shared = sum((Decimal(str(c)) for _, c in rows), Decimal(0))
    parts = [f"{r} {_money(c, cur)}" for r, c in rows if abs(Decimal(str(c))) >= Decimal("0.5")]
    share = f" ({100 * untagged / total:.1f}% of positive charges)" if total else ""
    text = f"charges without a valid '{key}' tag: {_money(untagged, cur)}{share}"
    if shared >= Decimal("0.5"):
        text += (f"; {_money(shared, cur)} of them are shared costs ({', '.join(parts)}): in the shared pool "
                 "(allocation.shared), not unallocated")
    unallocated = _total("unallocated_cost")(con, sc)
    rest = None if unallocated is None else Decimal(str(unallocated)) - (untagged - shared)
    if rest is not None and abs(rest) >= Decimal("0.5"):
        text += f"; credits and refunds on the untagged charges: {_money(rest, cur)}"
    return text + "."


#: The headline figures a summary can show (definitions: docs/metrics.md and :mod:`finops_kit.metrics`).
FIGURES: dict[str, FigureDef] = {
    "effective_cost": FigureDef("Spend", "money", _total("effective_cost"), "EffectiveCost: amortized, credits included"),
    "billed_cost": FigureDef("Billed", "money", _total("billed_cost"), "BilledCost: what the invoice says"),
    "ai_cost": FigureDef("AI/ML spend", "money", _total("ai_cost"), "rows classified AI/ML (data/ai_workloads.csv)"),
    "storage_cost": FigureDef("Storage", "money", _total("storage_cost"), "rows of data/storage_classes.csv"),
    "transfer_cost": FigureDef("Data transfer", "money", _total("transfer_cost"), "rows of data/transfer_types.csv"),
    "shared_cost": FigureDef("Shared cost", "money", _total("shared_cost"), "allocation.shared in finops.yaml"),
    "unallocated_cost": FigureDef("Unallocated (untagged, after shared costs are pooled)", "money",
                                  _total("unallocated_cost"), "not shared and without a valid allocation-key tag",
                                  lambda con, sc: unallocated_detail(con, sc)),
    "accelerator_cost": FigureDef("Accelerated compute", "money", _spot("cost"), "GPU/TPU/accelerator instances"),
    "spot_share": FigureDef("Spot share of accelerator-hours", "percent", _spot("spot_share"),
                            "spot accelerator-hours / accelerator-hours that could run on spot "
                            "(SageMaker endpoints and notebooks have no spot market)"),
    "tag_coverage": FigureDef("Allocation-key tag coverage", "percent", _coverage,
                              "cost-weighted share of dollars with a valid allocation-key tag"),
}


@dataclass
class Figure:
    """One headline figure: its value in the period shown and, when there is one, in the previous closed period."""

    key: str
    label: str
    kind: str
    value: Any
    previous: Any = None
    note: str = ""
    #: what a figure without a previous period's value is compared with, in words (a forecast: its range, budget
    #: and the last closed month's actual, :func:`add_forecast_figure`); shown where the change would be
    comparison: str = ""
    #: a sentence printed under the figures, "label: detail" (what the figure holds and what it leaves out, when
    #: another figure of the block would otherwise be read as contradicting it)
    detail: str = ""

    @property
    def change(self) -> Any:
        """Absolute change (money, or percentage points as a fraction for percent figures); None without a base."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_pct(self) -> float | None:
        """Relative change in % of the previous value (money and numbers only; None when the base is 0)."""
        if self.kind == "percent" or self.change is None or not self.previous:
            return None
        return 100.0 * float(self.change) / abs(float(self.previous))


#: What an action's dollars are, by its ``basis`` (the words printed after the dollars): a **saving** (money the
#: bill would drop by if the action is done), an **increase to avoid** (money the bill would rise by unless it is
#: done: a commitment to renew), a **variance** (spend over a budget or above the expected level) or
#: **cost at stake** (the spend the action concerns -- a tag fix, transfer to co-locate -- not money saved); and
#: over what time (a month, or the whole scope). Kinds are ranked apart, and within a kind a month's dollars come
#: before dollars over the scope: dollars of different kinds or spans are never compared. A basis not listed is
#: ``other``.
BASIS_KINDS: dict[str, tuple[str, str]] = {
    "per month": ("saving", "month"),
    "unused per month": ("saving", "month"),
    "over the scope": ("saving", "scope"),
    "over budget": ("variance", ""),
    "above expected": ("variance", ""),  # a spike over its days, a budget over its month: by dollars
    "in scope": ("at stake", "scope"),
    "transfer cost in scope": ("at stake", "scope"),
    # commitments ending soon (commitments.expiry_decisions): letting one lapse lowers the bill; renewing one does
    # not lower today's bill, it keeps it from rising
    "per month saved if it lapses": ("saving", "month"),
    "per month more if it lapses": ("avoid", "month"),
}
#: The spans in the order a kind lists them.
SPANS = ("month", "scope", "")
#: The kinds in the order the block shows them, with the heading of each group.
KINDS: dict[str, str] = {
    "saving": "Savings if done (each measured alone)",
    "avoid": "Increases to avoid (the bill rises unless done)",
    "variance": "Over budget or above expected",
    "at stake": "Cost at stake (spend the action concerns, not money saved)",
    "other": "Other actions",
}
#: Under the savings: why they are not added up.
ALTERNATIVES_NOTE = ("Each saving is measured alone: savings of different actions on the same usage are "
                     "alternatives, not additive (spot, an office-hours schedule or a commitment on the same GPUs "
                     "claim the same hours), here and across reports.")


#: Days in an average month: what a total over a span of days is divided by to state it per month -- the kit's one
#: month (:data:`finops_kit.tagging.HOURS_PER_MONTH`, 730.5 h, which the schedule and guardrail savings use), in days.
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


def months_of_span(days: Any) -> float | None:
    """The months a saving's lines span (``days`` of charges / :data:`DAYS_PER_MONTH`), at least one: a burst of a
    few days is never extrapolated to a month. None without a span.

    Why one rule: every saving the summary ranks is "per month" (:data:`BASIS_KINDS`); spot's and the token batch
    actions were totals over the scope (14 billing periods in the demo) ranked beside a month's dollars (review s17
    prose, finding 4). They divide by this, the schedule and storage savings are monthly rates already."""
    if days is None or days != days:
        return None
    return max(float(days) / DAYS_PER_MONTH, 1.0)


def per_month(total: Any, days: Any) -> Decimal | None:
    """``total`` over a span of ``days`` as dollars per month (:func:`months_of_span`), to the cent."""
    months = months_of_span(days)
    if months is None or total is None or total != total:
        return None
    return (Decimal(str(total)) / Decimal(str(round(months, 6)))).quantize(Decimal("0.01"))


def basis_kind(basis: str) -> str:
    """The kind of an action's dollars from its basis (:data:`BASIS_KINDS`; ``other`` when not listed)."""
    return BASIS_KINDS.get(basis.strip(), ("other", ""))[0]


def _rank(a: Action) -> tuple[int, float]:
    """Within a kind: a month's dollars before dollars over the scope, then the largest dollars first -- an action
    on an assumed figure in its place by dollars, marked by its note (one rule: the spot summary listed $138,158,
    $88,131 then $108,607, the assumed line moved last, which read as unsorted; review s17 prose, finding 15)."""
    span = BASIS_KINDS[a.basis.strip()][1] if a.basis.strip() in BASIS_KINDS else ""
    return SPANS.index(span), -abs(float(a.dollars or 0))


@dataclass
class Action:
    """A thing to do, its dollars, who owns it and the report section that backs it.

    ``kind`` says what the dollars are (:data:`KINDS`; from the basis by :data:`BASIS_KINDS` unless given);
    ``resource`` the resource it acts on (the block lists a resource once per kind); ``assumed`` marks dollars that
    rest on an assumed figure rather than a price or a measurement (ranked by its dollars, marked) and
    ``note`` says which."""

    what: str
    dollars: Any
    owner: str
    section: str
    basis: str = ""  # "per month", "in Oct 2026", "forecast over budget"...
    kind: str = ""
    resource: str | None = None
    assumed: bool = False
    note: str = ""
    merged: int = 1  # how many actions this line stands for (a resource's actions of one kind are merged)

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = basis_kind(self.basis)
        if self.kind not in KINDS:
            raise ValueError(f"action kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def anchor(self) -> str:
        return anchor(self.section)

    def text(self) -> str:
        """What to do, with the note on an assumed figure."""
        return self.what + (f" [{self.note}]" if self.note else "")


def anchor(heading: str) -> str:
    """The id nbconvert (and JupyterLab) give a Markdown heading: spaces -> ``-``, URL-quoted. ``"3. Tag policy
    audit"`` -> ``"3.-Tag-policy-audit"``. Pass the heading text without the leading ``#``s and formatting."""
    text = heading.lstrip("#").strip()
    return quote(text.replace(" ", "-"), safe="?/:@!$&'()*+,;=")


@dataclass(frozen=True)
class Days:
    """A window of charge days, both ends inclusive: what the summary of a scope given as days compares."""

    start: dt.date
    end: dt.date


def comparison_periods(sc: Scope) -> tuple[dt.date | Days | None, dt.date | Days | None]:
    """(latest closed billing period in scope, the closed period before it) -- first days; None when missing.

    Closed for every provider in scope (:meth:`Scope.closed_periods`). The previous period may lie before the
    scope's start (the same providers and accounts): a one-month report still shows its change.

    A scope given as charge days (``date_start``/``date_end``) is summarized on those days -- not on the whole
    billing period around them, which contradicted the report's body -- up to the last day with charges (the
    scope's own figures, as the body and ``finops-kit metrics`` show them), against as many days holding as many
    1sts, moved back by whole months (:func:`finops_kit.scope.previous_window`: as many days, and as many
    month-long charges booked on the 1st); None when no such window lies just before or it reaches before the data.
    """
    if sc.basis == "charge_period":
        return _day_windows(sc)
    closed = sc.closed_periods()
    if not closed:
        return None, None
    current = max(closed)
    c = sc.completeness()
    before = c[c["billing_period"] < current]
    ok = before.groupby("billing_period")["closed"].all() if len(before) else pd.Series(dtype=bool)
    prev = [p for p, v in ok.items() if v]
    return current, (max(prev) if prev else None)


def _day_windows(sc: Scope) -> tuple[Days | None, Days | None]:
    con = sc._need_con()
    first, last = con.execute(f"SELECT min(CAST(ChargePeriodStart AS DATE)), max(CAST(ChargePeriodStart AS DATE)) "
                              f"FROM {sc.rows_sql(period=False)}").fetchall()[0]
    if first is None:
        return None, None
    start, end = sc.start or first, min(sc.end or last, last)
    if end < start:
        return None, None
    before = previous_window(start, end)
    return Days(start, end), (Days(*before) if before is not None and before[0] >= first else None)


def _no_days_before(current: Days) -> str:
    """Why a window of charge days shows no change: no like window before it, or no data there."""
    if previous_window(current.start, current.end) is None:
        return (", not compared: no window of as many days just before holds as many 1sts of a month "
                "(month-long charges are booked on the 1st)")
    return ", no data in the days before to compare with"


def period_scope(sc: Scope, period: dt.date | Days) -> Scope:
    """The scope restricted to one billing period, or to a window of charge days (:class:`Days`), with the same
    providers, accounts and currency rule, resolved."""
    if isinstance(period, Days):
        one = dataclasses.replace(sc, start=period.start, end=period.end, basis="charge_period", con=None)
    else:
        one = dataclasses.replace(sc, start=period, end=_month_end(period), basis="billing_period", con=None)
    out = resolve_scope(sc._need_con(), one, sc.config)
    # attribution is built over the whole warehouse: the same maps for every scope, built once
    out.__dict__["attribution"] = sc.attribution
    return out


def _period_name(p: dt.date | Days | None) -> str:
    if isinstance(p, Days):
        if p.start == p.end:
            return f"{p.start.day} {p.start:%b %Y}"
        if (p.start.year, p.start.month) == (p.end.year, p.end.month):
            return f"{p.start.day}\u2013{p.end.day} {p.end:%b %Y}"
        if p.start.year == p.end.year:
            return f"{p.start.day} {p.start:%b}\u2013{p.end.day} {p.end:%b %Y}"
        return f"{p.start.day} {p.start:%b %Y}\u2013{p.end.day} {p.end:%b %Y}"
    return f"{p:%b %Y}" if p else ""


@dataclass
class Summary:
    """The summary block of one report (see the module doc). Build it with :func:`summarize`."""

    title: str
    scope: Scope
    figures: list[Figure]
    current: dt.date | Days | None
    previous: dt.date | Days | None
    actions: list[Action] = field(default_factory=list)
    max_actions: int = MAX_ACTIONS
    _display: Any = field(default=None, repr=False)

    # -------------------------------------------------------------------------------------------- building
    def add_figure(self, label: str, value: Any, kind: str = "money", previous: Any = None, note: str = "",
                   key: str | None = None, detail: str = "") -> Summary:
        """Add a figure computed by another package function (a forecast, a budget): it is shown as given;
        ``detail``: a sentence printed under the figures (:attr:`Figure.detail`)."""
        if kind not in ("money", "percent", "number"):
            raise ValueError(f"kind must be money, percent or number, not {kind!r}")
        self.figures.append(Figure(key or label, label, kind, value, previous, note, detail=detail))
        return self._redraw()

    def add_action(self, what: str, dollars: Any, owner: Any, section: str, basis: str = "", *,
                   kind: str = "", resource: Any = None, assumed: bool = False, note: str = "") -> Summary:
        """Add one action (``kind``, ``resource``, ``assumed``, ``note``: see :class:`Action`)."""
        self.actions.append(Action(str(what), dollars, owner_label(owner), section, basis, kind,
                                   _resource_key(resource), bool(assumed), note))
        return self._redraw()

    def add_actions(self, df: pd.DataFrame, *, what: str | Callable[[Any], str], dollars: str, owner: str,
                    section: str, basis: str = "", top: int | None = None, kind: str = "",
                    assumed: str | None = None, note: str | Callable[[Any], str] = "") -> Summary:
        """Add one action per row of ``df`` (the largest ``top`` by ``dollars``): ``what`` is a format string over
        the row's columns (``"Schedule {resource_id}"``) or a function of the row; ``owner`` names the column
        holding the owner (a team from attribution). Rows without positive dollars are skipped (an action worth
        nothing is not an action). ``{resource}`` in ``what`` is the row's resource as a reader knows it
        (:func:`resource_label` of ``resource_id``/``resource_name``); ``resource_id`` is the action's resource.
        ``assumed`` names a boolean column: true where the row's dollars rest on an assumed figure, said by
        ``note`` (a format string or a function of the row, shown on those rows only)."""
        if df is None or len(df) == 0:
            return self._redraw()
        rows = df[df[dollars].notna()]
        rows = rows.assign(_d=rows[dollars].map(float)).sort_values("_d", ascending=False)
        rows = rows[rows["_d"] > 0]
        for rec in itertools.islice(rows.to_dict("records"), top or self.max_actions):
            fields = {k: _plain(v) for k, v in rec.items()}
            if "resource_id" in rec:
                fields.setdefault("resource", resource_label(rec.get("resource_id"), rec.get("resource_name")))
            text = what(rec) if callable(what) else what.format(**fields)
            flag = rec.get(assumed) if assumed else None
            is_assumed = flag is not None and flag == flag and bool(flag)  # NaN/None: not assumed
            words = (note(rec) if callable(note) else note.format(**fields)) if is_assumed else ""
            self.actions.append(Action(text, rec[dollars], owner_label(rec.get(owner)), section, basis, kind,
                                       _resource_key(rec.get("resource_id")), is_assumed, words))
        return self._redraw()

    def action_groups(self) -> list[tuple[str, list[Action]]]:
        """The actions the block lists, per kind (:data:`KINDS`, in that order; empty kinds left out).

        Rules (one place for every report): dollars of different kinds are never ranked together; within a kind
        a month's dollars before dollars over the scope (:data:`BASIS_KINDS`), then the largest dollars first (ties
        keep their order; an action resting on an assumed figure takes its place by dollars and carries its note in
        brackets); a resource appears
        once per kind -- its actions are merged into one line, at the largest dollars (never their sum: two fixes
        of one resource concern the same spend, two savings on it are alternatives); at most :attr:`max_actions`
        per kind."""
        out = []
        for kind in KINDS:
            acts = _merge_same_resource([a for a in self.actions if a.kind == kind])
            acts = sorted(acts, key=_rank)[: self.max_actions]
            if acts:
                out.append((kind, acts))
        return out

    def ranked_actions(self) -> list[Action]:
        """The actions the block lists, in its order (:meth:`action_groups`)."""
        return [a for _, acts in self.action_groups() for a in acts]

    # -------------------------------------------------------------------------------------------- output
    def period_text(self) -> str:
        if self.current is None:
            return "over the whole scope (no closed billing period in it: no change shown)"
        days = isinstance(self.current, Days)
        text = (f"{_period_name(self.current)} "
                f"({'the charge days in scope' if days else 'latest closed billing period in scope'})")
        if self.previous is not None:
            text += f", change vs {_period_name(self.previous)}"
        else:
            text += (_no_days_before(self.current) if days else ", no earlier closed period to compare with")
        return text

    def whole_scope_text(self) -> str:
        """The words a whole-scope figure printed under the block starts with: "Over the whole scope, 14 billing
        periods, 2025-10 to 2026-11 (1–26, open) -- not Oct 2026 alone, the period of the figures above".

        Why: every report's block shows the latest closed period, and the section under it printed the same metric
        over the whole scope without saying so: spot share 40.1% above, 35.0% below; tag coverage 90.8% (run)
        above, 89.3% (walk) below; cost per 1M tokens 0.60 above, 0.58 below (review s17 prose, finding 1). A scope
        that is the block's period ("In the billing period 2026-10, as the figures above") says so instead."""
        span = self.scope.span()
        if self.current is None:
            return f"Over the whole scope, {span} (as the figures above)"
        # a scope of days is summarized on its days; a scope whose only billing period is the block's is that period
        periods = self.scope._need_con().execute(
            f"SELECT DISTINCT BillingPeriodStart::DATE FROM {self.scope.rows_sql()}").fetchall()
        if isinstance(self.current, Days) or {p for (p,) in periods} <= {self.current}:
            return f"In {span}, as the figures above"
        return f"Over the whole scope, {span} -- not {_period_name(self.current)} alone, the period of the figures above"

    @property
    def owner_word(self) -> str:
        """What an action's owner is, as the block labels it: the allocation key (``team``), whose value
        :mod:`finops_kit.attribution` gave it ("team nlp").

        Why: the block said "owner nlp", while the AI report's idle-GPU table has an "owner" column for the
        ``owner`` tag (the contact), empty for the same resource: one word for two things (review s17 prose, finding
        8). The team is named as the team; the ``owner`` tag as the owner tag."""
        return self.scope.attribution.allocation.key

    def to_html(self) -> str:
        """The block as escaped HTML (inline styles: it must look the same live and in the offline page)."""
        e = html.escape
        cards = "".join(self._card_html(f) for f in self.figures)
        details = "".join(f'<div class="finops-figure-detail" style="margin-top:4px;color:#555;font-size:12px">'
                          f'<b>{e(f.label)}</b>: {e(f.detail)}</div>' for f in self.figures if f.detail)
        groups = self.action_groups()
        if groups:
            parts = []
            for kind, acts in groups:
                items = "".join(
                    f'<li style="margin:3px 0"><b>{e(_money(a.dollars, self.scope.currency))}</b>'
                    f'{(" " + e(a.basis)) if a.basis else ""} &middot; {e(a.text())} &middot; '
                    f'{e(self.owner_word)} <b>{e(a.owner)}</b> &middot; <a href="#{e(a.anchor, quote=True)}">{e(a.section)}</a></li>'
                    for a in acts)
                note = (f'<p style="margin:2px 0;color:#555;font-size:12px">{e(ALTERNATIVES_NOTE)}</p>'
                        if kind == "saving" else "")
                parts.append(f'<div style="margin-top:4px;color:#37474f">{e(KINDS[kind])}</div>'
                             f'<ol style="margin:2px 0 0 0;padding-left:22px">{items}</ol>{note}')
            more = len(self.actions) - sum(a.merged for _, acts in groups for a in acts)
            tail = (f'<p style="margin:2px 0;color:#666;font-size:12px">{more} more in the sections below.</p>'
                    if more > 0 else "")
            actions = (f'<div class="finops-actions" style="margin-top:8px"><b>Top actions by dollars</b>'
                       f'{"".join(parts)}{tail}</div>')
        else:
            actions = ""
        open_note = self.scope.open_labels()
        opened = ("; open (not compared): " + ", ".join(open_note.values())) if open_note else ""
        return (f'<div class="{CSS_CLASS}" style="border:1px solid #cfd8dc;border-left:5px solid #1565c0;'
                f'border-radius:6px;padding:10px 14px;margin:6px 0 12px 0;background:#f7fafd;font-size:13px;'
                f'max-width:1180px;box-sizing:border-box">'
                f'<div style="font-size:15px;font-weight:600;margin-bottom:2px">{e(self.title)}: the answer first</div>'
                f'<div class="finops-summary-scope" style="color:#37474f">Scope: {e(self.scope.describe())}. '
                f'Figures: {e(self.period_text())}{e(opened)}.</div>'
                f'<div style="display:flex;flex-wrap:wrap;gap:8px;margin-top:8px">{cards}</div>{details}{actions}</div>')

    def _card_html(self, f: Figure) -> str:
        e = html.escape
        value = _fmt(f.value, f.kind, self.scope.currency)
        change = self._change_text(f)
        color = "#555"
        if f.change is not None and f.change != 0 and f.kind == "money":
            color = "#c62828" if f.change > 0 else "#2e7d32"  # spend up is the thing to look at
        note = f'<div style="color:#777;font-size:11px">{e(f.note)}</div>' if f.note else ""
        return (f'<div class="finops-figure" style="flex:1 1 170px;min-width:150px;max-width:260px;background:#fff;'
                f'border:1px solid #e0e0e0;border-radius:5px;padding:6px 10px">'
                f'<div style="color:#546e7a;font-size:12px">{e(f.label)}</div>'
                f'<div class="finops-figure-value" style="font-size:20px;font-weight:600;'
                f'font-variant-numeric:tabular-nums">{e(value)}</div>'
                f'<div style="color:{color};font-size:12px">{e(change)}</div>{note}</div>')

    def _change_text(self, f: Figure) -> str:
        if f.change is None and f.comparison:
            return f.comparison
        if f.change is None:  # a figure added by another function (a forecast) has no previous period
            return "no comparison" if self.previous is not None and f.key in FIGURES else ""
        vs = f"vs {_period_name(self.previous)}" if self.previous else "vs previous"
        if f.kind == "percent":
            return f"{100 * float(f.change):+.1f} pts {vs}"
        pct = f" ({f.change_pct:+.1f}%)" if f.change_pct is not None else ""
        sign = "+" if f.change >= 0 else "-"
        amount = _fmt(abs(f.change), f.kind, self.scope.currency)
        return f"{sign}{amount}{pct} {vs}"

    def to_text(self) -> str:
        """Plain text of the block (what a log or ``print`` shows; the consistency test reads it)."""
        lines = [f"{self.title}: the answer first", f"Scope: {self.scope.describe()}. Figures: {self.period_text()}."]
        for f in self.figures:
            ch = self._change_text(f)
            lines.append(f"- {f.label}: {_fmt(f.value, f.kind, self.scope.currency)}" + (f" ({ch})" if ch else ""))
            if f.detail:
                lines.append(f"  {f.detail}")
        for kind, acts in self.action_groups():
            lines.append(f"{KINDS[kind]}:")
            for i, a in enumerate(acts, 1):
                lines.append(f"{i}. {_money(a.dollars, self.scope.currency)}{(' ' + a.basis) if a.basis else ''}: "
                             f"{a.text()}; {self.owner_word} {a.owner}; see '{a.section}'")
            if kind == "saving":
                lines.append(ALTERNATIVES_NOTE)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self._page_html()

    def _page_html(self) -> str:
        """:meth:`to_html` out of MathJax's reach: JupyterLab typesets HTML outputs, and two dollar amounts in
        one line of the block rendered as a LaTeX span (tests/test_live_lab.py)."""
        from .notebook import NO_MATH

        return f'<div class="{NO_MATH}">{self.to_html()}</div>'

    def __repr__(self) -> str:
        return self.to_text()

    def _bundle(self) -> dict[str, str]:
        return {"text/html": self._page_html(), "text/plain": self.to_text()}

    def show(self) -> Summary:
        """Display the block now (in the notebook cell that calls it); later ``add_*`` calls update it in place
        (a Jupyter display id, which nbclient also honours when a report is rendered)."""
        from IPython.display import display

        self._display = display(self._bundle(), raw=True, metadata=META, display_id=True)
        return self

    def _redraw(self) -> Summary:
        if self._display is not None:
            self._display.update(self._bundle(), raw=True, metadata=META)
        return self


def _resource_key(resource: Any) -> str | None:
    """A resource id as the block compares it (None when there is none: such actions are never merged)."""
    if resource is None or (isinstance(resource, float) and resource != resource) or not str(resource).strip():
        return None
    return str(resource).strip().lower()  # Azure spells one VM's id in two cases


def _merge_same_resource(actions: list[Action]) -> list[Action]:
    """One line per resource (of one kind): the line of the largest dollars, the other actions on
    the same resource appended to its text ("; or ..." for savings: alternatives; "; also ..." otherwise), its
    dollars kept -- never the sum."""
    out: list[Action] = []
    seen: dict[str, int] = {}
    order = sorted(actions, key=_rank)
    for a in order:
        if a.resource is None or a.resource not in seen:
            if a.resource is not None:
                seen[a.resource] = len(out)
            out.append(dataclasses.replace(a))
            continue
        first = out[seen[a.resource]]
        joint = "; or " if a.kind == "saving" else "; also "
        first.what += joint + a.what + (f" (see '{a.section}')" if a.section != first.section else "")
        if a.note and a.note not in first.note:
            first.note = "; ".join(x for x in (first.note, a.note) if x)
        first.merged += a.merged
    return out


def resource_owners(con: Any, sc: Scope, resource_ids: Sequence[Any]) -> dict[str, str]:
    """Resource id -> its owner under the allocation key (:meth:`Attribution.owner_sql`: a team, ``(shared)`` or
    ``(untagged)``): the owner with the most dollars of the resource's charges in scope, on equal dollars the
    first by name (never the row the scan met first). Why: a work list by resource (tag violations) names who
    fixes each line by the same rule showback and budgets use."""
    from .sources.base import sql_str

    ids = sorted({str(r) for r in resource_ids if r is not None and not (isinstance(r, float) and r != r)})
    if not ids:
        return {}
    lst = ", ".join(sql_str(i) for i in ids)
    rows = con.sql(f"""
        SELECT ResourceId, arg_min(owner, (-cost, owner)) FROM (  -- equal dollars: the first owner by name
          SELECT ResourceId, {sc.attribution.owner_sql()} AS owner, sum(EffectiveCost) AS cost
          FROM {sc.rows_sql()} WHERE ResourceId IN ({lst}) GROUP BY ALL) GROUP BY ResourceId""").fetchall()
    return {str(r): str(o) for r, o in rows}


def top_owner(df: pd.DataFrame, key: str, owner: str = "team", dollars: str = "cost") -> dict[Any, str]:
    """``key`` value -> the ``owner`` with the most ``dollars`` in ``df`` (e.g. bucket -> team from a kit
    inventory grouped by bucket and team)."""
    if df is None or df.empty:
        return {}
    d = df.assign(_d=df[dollars].map(float)).sort_values("_d", ascending=False)
    return {k: owner_label(v) for k, v in d.drop_duplicates(key)[[key, owner]].itertuples(index=False)}


def add_budget_actions(s: Summary, status: pd.DataFrame, budgets: Sequence[Any], section: str) -> Summary:
    """One action per budget forecast to end over budget (:func:`finops_kit.budgets.budget_status`): dollars =
    forecast - budget, owner = the budget's allocation-key value (its ``scope``), else ``(all)``. A budget already
    over with no forecast (under 5 weeks of history: its variance is empty) is an action too: dollars = spent -
    budget."""
    if status is None or status.empty:
        return s
    key = s.scope.attribution.allocation.key
    owners = {b.name: (b.scope or {}).get(key) for b in budgets}
    no_forecast = status["variance"].map(lambda v: v is None or v != v)
    spent_over = status[no_forecast & (status["status"] == "over budget")] if "status" in status else status[:0]
    for r in spent_over.to_dict("records"):
        s.actions.append(Action(
            f"Budget {r['budget']} ({r['month']}): spent {_money(r['actual_mtd'], s.scope.currency)} vs "
            f"{_money(r['budget_amount'], s.scope.currency)} (no forecast yet)",
            Decimal(r["actual_mtd"]) - Decimal(r["budget_amount"]), owner_label(owners.get(r["budget"]) or "(all)"),
            section, "over budget"))
    over = status[status["variance"].map(lambda v: v is not None and v == v and float(v) > 0)]
    for r in over.to_dict("records"):
        s.actions.append(Action(
            f"Budget {r['budget']} ({r['month']}): forecast {_money(r['forecast'], s.scope.currency)}"
            f"{pending_part(r, lambda v: _money(v, s.scope.currency))} vs {_money(r['budget_amount'], s.scope.currency)}"
            f"{crossing_text(r)}",
            r["variance"], owner_label(owners.get(r["budget"]) or "(all)"), section, "over budget"))
    return s._redraw()


def _known(v: Any) -> bool:
    return v is not None and v == v and v != ""


def add_anomaly_actions(s: Summary, events: pd.DataFrame, section: str, top: int = 3,
                        since: dt.date | None = None) -> Summary:
    """The largest upward cost anomalies of the allocation-key dimension (:func:`finops_kit.anomaly.scan`), owner =
    that team; dollars = the impact (actual - expected) of the event. ``since``: only events still running on or
    after that day (a spike from last spring is history, not an action)."""
    if events is None or events.empty:
        return s
    key = s.scope.attribution.allocation.key
    ups = events[(events["dimension"] == key) & (events["impact"].map(float) > 0)]
    if since is not None:
        ups = ups[ups["end"].map(lambda d: pd.Timestamp(d).date() >= since)]
    for r in itertools.islice(ups.to_dict("records"), top):
        days = f"{r['start']}" + (f" .. {r['end']}" if r["end"] != r["start"] else "")
        s.actions.append(Action(f"Explain the {key} {r['value']} cost spike {days}", r["impact"],
                                owner_label(r["value"]), section, "above expected"))
    return s._redraw()


def resource_labels(df: pd.DataFrame, id_column: str = "resource_id", name_column: str = "resource_name") -> list[str]:
    """:func:`resource_label` of every row of ``df`` (for a table column a reader can scan)."""
    names = df[name_column] if name_column in df.columns else [None] * len(df)
    return [resource_label(i, n) for i, n in zip(df[id_column], names, strict=True)]


def add_forecast_figure(s: Summary, total: Any, budgets: Sequence[Any] = ()) -> Summary:
    """The total forecast of the open period (:func:`finops_kit.forecast.forecast`, dimension ``total``) as a
    figure: expected total compared, as every headline figure is, with its interval, the total budget of its month
    and the last closed month's actual (with the changes in %), and the actual to date. Nothing when there is no
    forecast. ``budgets``: the budgets this scope judges (:func:`finops_kit.budgets.budgets_in_scope`); the first
    on all costs (no scope) with an amount for the forecast's month is the total budget.

    Why: the demo's block read "Forecast Nov 2026: $493,316" and nothing else, where every other line says what it
    is compared with: not the $500,000 budget, not the 80% range, not October's $488,947."""
    if total is None or not getattr(total, "ok", False) or total.expected_total is None:
        return s
    cur = s.scope.currency
    value = float(total.expected_total)
    one_month = (total.period_start.year, total.period_start.month) == (total.period_end.year, total.period_end.month)
    label = f"Forecast {total.period_start:%b %Y}" if one_month else f"Forecast to {total.period_end:%d %b %Y}"
    parts = [f"{int(total.level)}% range {_money(total.total_lo, cur)} \u2013 {_money(total.total_hi, cur)}"]

    def pct(base: Any) -> str:
        return f", {100 * (value - float(base)) / abs(float(base)):+.1f}%" if base else ""

    month = f"{total.period_start:%Y-%m}"
    amounts = [b.for_month(month) for b in budgets if not (b.scope or {})] if one_month else []
    amount = next((a for a in amounts if a is not None), None)
    if amount is not None:
        parts.append(f"budget {_money(amount, cur)}{pct(amount)}")
    if isinstance(s.current, dt.date) and s.current < total.period_start:  # the last closed month, a whole one
        closed = next((f.value for f in s.figures if f.key == "effective_cost"), None)
        if closed is None:
            closed = FIGURES["effective_cost"].read(s.scope._need_con(), period_scope(s.scope, s.current))
        if closed is not None:
            parts.append(f"{_period_name(s.current)} actual {_money(closed, cur)}{pct(closed)}")
    note = f"{_money(total.actual_to_date, cur)} to {total.as_of:%d %b}"
    s.figures.append(Figure("forecast_total", label, "money", total.expected_total, None, note, "; ".join(parts)))
    return s._redraw()


def owner_label(owner: Any) -> str:
    """An owner as the block shows it: the attributed team, else ``(untagged)``."""
    if owner is None or (isinstance(owner, float) and owner != owner) or str(owner).strip() == "":
        return "(untagged)"
    return str(owner)


def resource_label(resource_id: Any, resource_name: Any = None) -> str:
    """A resource as a reader recognises it: its name, else the last part of a long provider id
    (``/subscriptions/.../virtualMachines/dev-nc-a100-01`` -> ``dev-nc-a100-01``)."""
    name = _plain(resource_name)
    if name != "?" and str(name).strip():
        return str(name)
    if _resource_key(resource_id) is None:
        return "charges without a resource id"
    rid = str(_plain(resource_id))
    return rid.rstrip("/").rsplit("/", 1)[-1] if "/" in rid else rid


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return "?"
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    return v


def _money(v: Any, currency: str | None) -> str:
    from .notebook import money

    return money(v, currency or "USD", places=0) if v is not None else "n/a"


def _fmt(v: Any, kind: str, currency: str | None) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if kind == "money":
        return _money(v, currency)
    if kind == "percent":
        return f"{100 * float(v):.1f}%"
    return f"{float(v):,.0f}" if abs(float(v)) >= 100 else f"{float(v):,.2f}"


def summarize(con: Any, sc: Scope, figures: Sequence[str] = ("effective_cost",), *, title: str = "Summary",
              max_actions: int = MAX_ACTIONS) -> Summary:
    """The summary of a resolved scope: the named :data:`FIGURES` for the latest closed period in scope (and the
    closed period before it), no actions yet. ``con`` is the scope's connection."""
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise KeyError(f"summary: unknown figure(s) {unknown}; known: {', '.join(FIGURES)}")
    current, previous = comparison_periods(sc)
    cur_sc = period_scope(sc, current) if current else sc
    prev_sc = period_scope(sc, previous) if previous else None
    out: list[Figure] = []
    for name in figures:
        d = FIGURES[name]
        value = d.read(con, cur_sc)
        before = d.read(con, prev_sc) if prev_sc is not None else None
        detail = d.explain(con, cur_sc) if d.explain is not None and value is not None else ""
        out.append(Figure(name, d.label, d.kind, value, before, detail=detail))
    return Summary(title, sc, out, current, previous, max_actions=max_actions)


def figures_of(s: Summary) -> dict[str, Any]:
    """``{figure key: value}`` of a summary (what tests compare with :mod:`finops_kit.metrics`)."""
    return {f.key: f.value for f in s.figures}


__all__ = ["ALTERNATIVES_NOTE", "BASIS_KINDS", "DAYS_PER_MONTH", "months_of_span", "per_month", "FIGURES", "KINDS", "SPANS", "Action", "basis_kind", "Days", "Figure", "Summary", "anchor", "comparison_periods", "figures_of", "owner_label",
           "period_scope", "resource_label", "resource_owners", "summarize", "top_owner",
           "add_budget_actions", "add_anomaly_actions", "add_forecast_figure", "resource_labels"]

