"""Regression review s17 (one-OS answer, budgets): an account id's budget, the spot what-if's Windows spot rate, an
Azure SQL Server licence's OS, a licence's pricing class in a partly reserved VM-day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

pytest.importorskip("duckdb")

from finops_kit import budgets as bu  # noqa: E402
from finops_kit import spot, units  # noqa: E402
from finops_kit.forecast import filter_sql  # noqa: E402
from finops_kit.scope import Scope  # noqa: E402
from finops_kit.spot_prices import operating_system_rows_sql  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402


def _sum(con, where: str) -> Decimal:
    return con.sql(f"SELECT sum(EffectiveCost) FROM focus WHERE {where}").fetchall()[0][0]


# ------------------------------------------------------------------------------------------------ finding 1
def test_a_budget_on_an_account_id_counts_the_accounts_named_charges_when_some_lack_the_name():
    """Before: one nameless charge of account 210987654321 (a legacy CUR month) made its id a "name", and a budget
    on the id counted that charge alone: 10.00 of 1,010.00."""
    con = focus_rows([
        dict(day="2026-09-05", cost="1000", ProviderName="AWS", SubAccountId="210987654321",
             SubAccountName="acme-ml-prod"),
        dict(day="2026-09-01", cost="10", ProviderName="AWS", SubAccountId="210987654321", SubAccountName=None)])
    assert _sum(con, filter_sql({"account": "210987654321"})) == Decimal("1010")  # was 10
    assert _sum(con, filter_sql({"account": "acme-ml-prod"})) == Decimal("1000")
    got = bu.month_actuals(con, {"account": "210987654321"}, dt.date(2026, 9, 1), dt.date(2026, 9, 30))
    assert Decimal(got["actual"].iloc[0]) == Decimal("1010")
    # -p sub_accounts selects the same charges
    assert _sum(con, Scope(sub_accounts=("210987654321",)).where()) == Decimal("1010")


def test_a_scope_and_a_budget_naming_an_account_select_the_same_charges():
    """Before: project 'ml-prod-4711' named 'ml-prod' (100.00) and an older project whose id is 'ml-prod' (10.00):
    a budget on 'ml-prod' counted the first (100.00), ``-p sub_accounts=ml-prod`` both (110.00). One rule now: the
    name first, an id only when it is no other account's name."""
    con = focus_rows([
        dict(day="2026-10-01", cost="100", ProviderName="Google Cloud", SubAccountId="ml-prod-4711",
             SubAccountName="ml-prod"),
        dict(day="2026-10-01", cost="10", ProviderName="Google Cloud", SubAccountId="ml-prod",
             SubAccountName="ML prod (legacy)")])
    for value, want in (("ml-prod", "100"), ("ml-prod-4711", "100"), ("ML prod (legacy)", "10")):
        budget = _sum(con, filter_sql({"account": value}))
        scoped = _sum(con, Scope(sub_accounts=(value,)).where())
        assert (budget, scoped) == (Decimal(want), Decimal(want)), value  # ml-prod's scope was 110


# ------------------------------------------------------------------------------------------------ finding 2
AZ = dict(ProviderName="Microsoft", ServiceCategory="Compute", RegionId="eastus", ServiceName="Virtual Machines",
          ConsumedQuantity="24", ConsumedUnit="Hours", PricingQuantity="24", PricingUnit="Hours",
          x_AiWorkload="Accelerated compute", x_InstanceType="Standard_NC24ads_A100_v4")


def _days(n: int = 10) -> list[str]:
    return [str(d.date()) for d in pd.date_range("2023-09-01", periods=n)]


def test_the_spot_what_if_prices_a_windows_hour_at_the_windows_spot_rate_licence_included():
    """A spot Windows VM bills its compute on the base spot meter (1.0/h) and its licence on a licence meter
    (1.104/h); a pay-as-you-go Windows VM bills 4.777/h on the Windows meter, licence included. Before: the
    what-if's observed spot rate left the licence out (1.0/h, saving 906.48) where effective_rates says 2.104/h;
    now 2.104/h, spot-priced 504.96, saving 641.52."""
    rows = []
    for d in _days():
        rows += [dict(AZ, day=d, ResourceId="vm-spot", x_UsageType="NCads A100 v4 Series NC24ads A100 v4 Spot",
                      cost=str(Decimal("1.0") * 24), PricingCategory="Dynamic"),
                 dict(AZ, day=d, ResourceId="vm-spot", ServiceName="Virtual Machines Licenses",
                      x_UsageType="Windows Server 24 vCPU VM License", cost=str(Decimal("1.104") * 24),
                      PricingCategory="Dynamic"),
                 dict(AZ, day=d, ResourceId="vm-payg", x_UsageType="NCads A100 v4 Series Windows NC24ads A100 v4",
                      cost=str(Decimal("4.777") * 24), PricingCategory="Standard")]
    con = focus_rows(rows)
    rates = spot.effective_rates(con, by=("operating_system",)).df().set_index("pricing")
    assert float(rates.loc["Spot", "rate_per_hour"]) == pytest.approx(2.104)
    w = spot.spot_what_if(con, by=("operating_system",))
    assert len(w) == 1
    r = w.iloc[0]
    assert (r["operating_system"], r["basis"]) == ("Windows", "observed")
    assert float(r["spot_rate"]) == pytest.approx(2.104)  # was 1.0
    assert Decimal(str(r["spot_priced_cost"])) == Decimal("504.96")  # was 240.00
    assert Decimal(str(r["saving"])) == Decimal("641.52")  # was 906.48
    assert Decimal(str(r["not_repriced_cost"])) == 0


# ------------------------------------------------------------------------------------------------ finding 3
def test_a_pay_as_you_go_windows_vms_sql_server_licence_is_a_windows_vms_cost():
    """A Windows VM on the Windows meter (4.777/h) with a SQL Server licence (2.4/h), 10 days. Before: the licence
    fell to the base rule and read Linux: a 'Linux' line of 576.00 with no hours beside Windows 1,146.48. One
    Windows line now, 1,722.48, the licence billed apart (576.00), in no rate."""
    rows = []
    for d in _days():
        rows += [dict(AZ, day=d, ResourceId="vm-win", PricingCategory="Standard",
                      x_UsageType="NCads A100 v4 Series Windows NC24ads A100 v4", cost=str(Decimal("4.777") * 24)),
                 dict(AZ, day=d, ResourceId="vm-win", PricingCategory="Standard",
                      ServiceName="Virtual Machines Licenses", x_UsageType="SQL Server Standard 24 vCPU VM License",
                      cost=str(Decimal("2.4") * 24))]
    con = focus_rows(rows)
    cov = spot.spot_coverage(con, by=("operating_system",)).df()
    assert list(cov["operating_system"]) == ["Windows"]  # was ['Linux', 'Windows']
    r = cov.iloc[0]
    assert (Decimal(str(r["total_cost"])), Decimal(str(r["licence_apart_cost"]))) == (Decimal("1722.48"),
                                                                                      Decimal("576.00"))
    rates = spot.effective_rates(con, by=("operating_system",)).df()
    assert list(rates["operating_system"]) == ["Windows"]
    assert float(rates.iloc[0]["rate_per_hour"]) == pytest.approx(4.777)
    assert float(rates.iloc[0]["licence_apart_cost"]) == pytest.approx(576.0)


def test_a_linux_vms_sql_server_licence_stays_linux_and_a_reserved_windows_vms_takes_windows():
    """The SQL Server licence takes its VM's OS whichever row names it: the base meter alone (Linux), a Windows
    licence row of a reserved VM (Windows)."""
    rows = []
    for d in _days(2):
        rows += [dict(AZ, day=d, ResourceId="vm-lin", PricingCategory="Standard",
                      x_UsageType="NCads A100 v4 Series NC24ads A100 v4", cost="88.152"),
                 dict(AZ, day=d, ResourceId="vm-lin", PricingCategory="Standard",
                      ServiceName="Virtual Machines Licenses", x_UsageType="SQL Server Standard 24 vCPU VM License",
                      cost="57.6"),
                 dict(AZ, day=d, ResourceId="vm-res", PricingCategory="Committed",
                      x_UsageType="NCads A100 v4 Series NC24ads A100 v4", cost="52.8912"),
                 dict(AZ, day=d, ResourceId="vm-res", PricingCategory="Standard",
                      ServiceName="Virtual Machines Licenses", x_UsageType="Windows Server 24 vCPU VM License",
                      cost="26.496"),
                 dict(AZ, day=d, ResourceId="vm-res", PricingCategory="Standard",
                      ServiceName="Virtual Machines Licenses", x_UsageType="SQL Server Standard 24 vCPU VM License",
                      cost="57.6")]
    con = focus_rows(rows)
    rows = operating_system_rows_sql(f"({units.accelerated_usage_sql('TRUE', 'focus')})", "focus")
    got = con.sql(f"SELECT ResourceId, operating_system, bool_and(licence_os IS NULL) FILTER (WHERE x_UsageType "
                  f"LIKE 'SQL%') FROM {rows} GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [("vm-lin", "Linux", True), ("vm-res", "Windows", True)]  # vm-lin's licence billed apart
