"""Leftovers of the s17 reviews found in the rendered demo reports: money kept at the warehouse's scale (12 places,
exact) where a Python or SQL step divides it, the attributed team in the guardrail findings, and zero-cost rows
outside a budget's scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pandas as pd

from finops_kit import commitments as cm
from finops_kit import scope
from finops_kit import storage as st
from finops_kit.testing import focus_rows
from tests.test_commitments import _days, _vm

REPO = Path(__file__).resolve().parents[1]
S3 = "Amazon Simple Storage Service"


def _places(d: Decimal) -> int:
    return -d.as_tuple().exponent


# --------------------------------------------------------------------------- 1. expiry calendar at MONEY's scale
def test_expiry_scales_a_part_month_to_money_places_not_28_digits():
    """An RI bought 2026-03-20 at 13.00/h billed 12 days of March with one hour fewer every third day (3,692.00 for
    284 h). Scaled to March's 31 days its monthly value is 3,692.00 x 31/12 = 9,537.6666...: the calendar held
    Decimal('9537.666666666666666666666667') and a bill change of 6573.653333333333333333333333 (28 significant
    digits, Decimal's default context); now 9537.666666666667 and 6573.653333333333, the 12 places of every
    amount the warehouse returns (schema.MONEY)."""
    rows = [_vm("AWS", d, "p4d.24xlarge", 24 if i % 3 else 23, "21.96", "13.00", cid="ri-mid", res="i-1",
                end="2027-03-20T00:00:00Z") for i, d in enumerate(_days("2026-03-20", 12))]
    rows += [_vm("AWS", d, "p4d.24xlarge", 24, "21.96", "13.00", cid="ri-mid", res="i-1",
                 end="2027-03-20T00:00:00Z") for d in _days("2026-04-01", 5)]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    ri = cm.expiry(con, sc).set_index("commitment_id").loc["ri-mid"]
    assert ri["value_period"] == dt.date(2026, 3, 1) and ri["value_days"] == 12
    assert ri["monthly_value"] == Decimal("9537.666666666667") and _places(ri["monthly_value"]) == 12
    assert ri["lapses_to_on_demand"] == Decimal("16111.32")
    assert ri["bill_change_if_lapsed"] == Decimal("6573.653333333333")
    for c in ("monthly_value", "lapses_to_on_demand", "bill_change_if_lapsed"):
        assert _places(ri[c]) <= 12, (c, ri[c])


# --------------------------------------------------------------------------- 2. storage per month stays exact
def _bucket_rows(first: str, last: str, cost: str = "0.10") -> list[dict]:
    return [dict(day=str(d.date()), ServiceName=S3, ServiceCategory="Storage",
                 x_UsageType="USE1-TimedStorage-ByteHrs", ConsumedQuantity=100.0, ConsumedUnit="GB-Mo",
                 PricingQuantity=100.0, PricingUnit="GB-Mo", cost=Decimal(cost), ResourceId="ml-data",
                 RegionId="us-east-1") for d in pd.date_range(first, last)]


def test_storage_monthly_cost_stays_exact_and_months_add_up_to_the_bill():
    """A bucket billed 0.10 a day in September and October. The recommendation's month cost (per_month) was a
    DOUBLE in every scope -- DuckDB divides a DECIMAL in floating point and that CASE branch typed the whole
    column: October came to 3.1000000000000014 (float) in a billing-period scope. Now Decimal 3.10, and the
    months per_month gives add up to the bill exactly (6.10 = 3.00 + 3.10). In a 5-18 Oct window each of the 14
    days is scaled by 31/14 at MONEY's 12 places: 14 x 0.221428571429 = 3.100000000006 (was 3.100000000000001,
    a float)."""
    con = focus_rows(_bucket_rows("2026-09-01", "2026-10-31"))
    sc = scope.resolve(con, {}, {"billing_period_start": "2026-09", "billing_period_end": "2026-10"})
    g = st._group_stats(con, "bucket", {"scope": sc, "config": {}})
    cost = g["cost"].iloc[0]
    assert isinstance(cost, Decimal) and cost == Decimal("3.10")  # before: 3.1000000000000014 (float)
    rows = st.storage_rows_sql(con, scope=sc, config={})
    months = st.frame_over(con, rows, f"""
        SELECT month, sum({st.per_month("rel.cost", "rel.month_long", money=True)}) AS cost, sum(cost) AS billed
        FROM rel {st.month_share_join(sc, 'rel.month')} GROUP BY month ORDER BY month""")
    assert all(isinstance(v, Decimal) for v in months["cost"])
    assert list(months["cost"]) == [Decimal("3.00"), Decimal("3.10")]
    assert sum(months["cost"]) == sum(months["billed"]) == Decimal("6.10")

    win = scope.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-10-18"})
    g = st._group_stats(con, "bucket", {"scope": win, "config": {}})
    cost = g["cost"].iloc[0]
    assert isinstance(cost, Decimal) and cost == 14 * Decimal("0.221428571429")  # before: 3.100000000000001


# --------------------------------------------------------------------------- 3. guard: the attributed team
def _guard_cfg(per_team: dict, value_aliases: dict | None = None) -> dict:
    from tests.test_guard import _config

    cfg = _config(max_accelerators={"per_team": per_team})
    if value_aliases:
        cfg["tag_policy"]["keys"]["team"]["value_aliases"] = value_aliases
    return cfg


def _team_checks(checks) -> dict[str, str]:
    return {c.subject: c.status for c in checks if c.rule == "max_accelerators_per_team"}


def test_plan_guard_names_the_team_as_the_config_and_the_bill_spell_it(tmp_path):
    """A plan tags two p4d.24xlarge (8 A100 each) team=Vision, one team=NLP and one team=nlp-team (a value alias
    of nlp), and one team=platform (a shared value of allocation.shared). Limits: vision 16, nlp 16, default 4.
    Before: 'team=Vision' judged by the default limit (violation, 16 > 4) -- the plan's own spelling, where the
    limit, the bill and fk.costs(by='team') say vision -- and 'team=platform' a violation (8 > 4) as if it were a
    team. Now: 'team=vision' 16 (pass, limit 16), 'team=nlp' 16 (NLP and nlp-team, pass), and the platform
    instance is the '(shared)' pool, judged only by a limit named '(shared)'."""
    from finops_kit import guard
    from tests.test_guard import TAGS, _instance, _plan

    plan = _plan(tmp_path, _instance("aws_instance.v1", "p4d.24xlarge", {**TAGS, "team": "Vision"}),
                 _instance("aws_instance.v2", "p4d.24xlarge", {**TAGS, "team": "Vision"}),
                 _instance("aws_instance.n1", "p4d.24xlarge", {**TAGS, "team": "NLP"}),
                 _instance("aws_instance.n2", "p4d.24xlarge", {**TAGS, "team": "nlp-team"}),
                 _instance("aws_instance.p", "p4d.24xlarge", {**TAGS, "team": "platform"}))
    aliases = {"nlp": ["nlp-team"]}
    got = _team_checks(guard.evaluate(plan, _guard_cfg({"vision": 16, "nlp": 16, "default": 4}, aliases)).checks)
    # before: {'team=Vision': 'violation', 'team=nlp': 'pass', 'team=platform': 'violation'}
    assert got == {"team=vision": "pass", "team=nlp": "pass"}
    shared = _team_checks(guard.evaluate(plan, _guard_cfg({"vision": 16, "nlp": 16, "default": 4, "(shared)": 4},
                                                          aliases)).checks)
    assert shared == {"team=vision": "pass", "team=nlp": "pass", "team=(shared)": "violation"}


def _gpu_bill() -> list[dict]:
    """14 days of on-demand prod p4d.24xlarge (8 A100 each) around the clock: team nlp two instances, NLP one (a
    spelling of nlp: fewer dollars), platform (a shared value) three."""
    rows = []
    for d in pd.date_range("2026-11-01", "2026-11-14", freq="D"):
        for rid, team in (("i-n1", "nlp"), ("i-n2", "nlp"), ("i-n3", "NLP"), ("i-p1", "platform"),
                          ("i-p2", "platform"), ("i-p3", "platform")):
            rows.append(dict(day=str(d.date()), ResourceId=rid, x_InstanceType="p4d.24xlarge", ConsumedQuantity=24,
                             ConsumedUnit="Hours", x_UsageType="USE1-BoxUsage:p4d.24xlarge",
                             PricingCategory="Standard", x_AiWorkload="Accelerated compute", cost=527.04,
                             tags={"team": team, "owner": "al@example.com", "project": "p", "model": "m",
                                   "env": "prod"}))
    return rows


def test_bill_guard_and_a_plan_read_with_the_warehouse_name_the_team_as_costs_by_team(tmp_path):
    """The bill: nlp runs 24 A100s (two instances tagged nlp, one NLP), the shared pool (team=platform) 24.
    fk.costs(by='team') shows 'nlp' and '(shared)'. Before: the bill's guard said 'team=platform ran 24.0
    accelerators ... above its limit of 20' (the tag value, judged as a team by the default limit); now the pool is
    '(shared)', judged only by a '(shared)' limit. A plan read with the warehouse (guard --warehouse) spells a
    new team=NLP instance 'nlp', as the bill does (no per_team limit names it)."""
    import finops_kit as fk
    from finops_kit import guard
    from tests.test_guard import TAGS, _instance, _plan

    path = str(tmp_path / "wh.duckdb")
    con = fk.connect(path, write=True)
    focus_rows(_gpu_bill(), con)
    con.close()
    con = fk.connect(path, read_only=True)
    try:
        teams = set(fk.costs(by="team", con=con, config=_guard_cfg({"default": 20}))["team"])
        assert teams == {"nlp", "(shared)"}
        bill = _team_checks(guard.bill_checks(con, _guard_cfg({"default": 20}), as_of="2026-11-14"))
        assert bill == {"team=nlp": "violation"}  # before: also 'team=platform': 'violation'
        bill = _team_checks(guard.bill_checks(con, _guard_cfg({"default": 20, "(shared)": 16}),
                                              as_of="2026-11-14"))
        assert bill == {"team=nlp": "violation", "team=(shared)": "violation"}
        plan = _plan(tmp_path, _instance("aws_instance.a", "p4d.24xlarge", {**TAGS, "team": "NLP"}))
        alone = _team_checks(guard.evaluate(plan, _guard_cfg({"default": 64})).checks)
        assert alone == {"team=NLP": "pass"}  # the plan alone knows no other spelling
        read = _team_checks(guard.evaluate(plan, _guard_cfg({"default": 64}), warehouse=con).checks)
        assert read == {"team=nlp": "pass"}
        assert _team_checks(guard.evaluate(plan, _guard_cfg({"default": 64}), warehouse=path).checks) == read
    finally:
        con.close()


# --------------------------------------------------------------------------- 4. zero-cost rows outside the scope
def test_a_zero_cost_row_outside_the_scope_leaves_no_money_out_but_its_hours_count_for_a_limit():
    """AWS bills team alpha $100/day; Microsoft has free-tier lines for alpha at EffectiveCost 0.00. With
    -p providers=[AWS] both budgets (all costs, team alpha) were 'not judged in this scope' (it covers all
    providers): the 0.00 rows were charges left out. A charge of 0 leaves nothing out of a budget: now both are
    judged, on track at $1,400 on Nov 14, as in the whole warehouse. A credit (-30.00) on Microsoft is money: it
    still narrows. An accelerator limit counts hours: team gamma's fully credited Azure A100s (24 of them, cost 0)
    still leave part of its count out of an AWS scope: 'not judged', before and after."""
    from finops_kit import budgets as bu
    from finops_kit import forecast as fc
    from finops_kit import guard
    from finops_kit.scope import Scope, bind
    from tests.test_guard import BILL_RULES, _config, _gpu_rows
    from tests.test_s16_budgets import _azure_gpus, _budgets, _days

    aws = _days("2026-09-16", 60, "100", ProviderName="AWS", tags={"team": "alpha"})
    free = _days("2026-09-16", 60, "0", ProviderName="Microsoft", tags={"team": "alpha"})
    budgets = _budgets([{"name": "All", "monthly": 5000},
                        {"name": "alpha", "scope": {"team": "alpha"}, "monthly": 5000}])

    con = focus_rows(aws + free)
    sc = bind(con, Scope.parse({"providers": ["AWS"]}), {})
    assert not fc.narrowed(con, sc, charges=True)  # before: True
    got = bu.budget_status(con, budgets, as_of="2026-11-14", forecast_results={}, scope=sc).set_index("budget")
    assert list(got["status"]) == ["on track", "on track"]  # before: 'not judged in this scope' twice
    assert list(got["actual_mtd"]) == [Decimal("1400.00"), Decimal("1400.00")]

    credited = focus_rows(aws + free + _days("2026-11-02", 1, "-30", ProviderName="Microsoft",
                                            ChargeCategory="Credit", tags={"team": "alpha"}))
    sc = bind(credited, Scope.parse({"providers": ["AWS"]}), {})
    assert fc.narrowed(credited, sc, charges=True)
    got = bu.budget_status(credited, budgets, as_of="2026-11-14", forecast_results={}, scope=sc)
    assert set(got["status"]) == {bu.NOT_JUDGED}

    gpus = focus_rows(_gpu_rows() + [dict(r, cost=0) for r in _azure_gpus("gamma", "ga@example.com", 3)])
    cfg = _config(**BILL_RULES)
    limits = {c.subject: c.status for c in guard.bill_checks(
        gpus, cfg, as_of="2026-11-14", scope=bind(gpus, Scope.parse({"providers": ["AWS"]}), cfg))
        if c.rule.startswith("max_accelerators")}
    assert limits["team=gamma"] == bu.NOT_JUDGED and limits["owner=ga@example.com"] == bu.NOT_JUDGED
    assert limits["team=alpha"] == "violation"  # all of alpha's accelerators are AWS: judged
