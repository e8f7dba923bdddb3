"""Regression review s17 (one-OS answer, budgets): an account id's budget, the spot what-if's Windows spot rate, an
Azure SQL Server licence's OS, a licence's pricing class in a partly reserved VM-day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

pytest.importorskip("duckdb")

from finops_kit import budgets as bu  # noqa: E402
from finops_kit import commitments as cm  # noqa: E402
from finops_kit import scope, spot, units  # noqa: E402
from finops_kit.forecast import filter_sql  # noqa: E402
from finops_kit.scope import Scope  # noqa: E402
from finops_kit.spot_prices import operating_system_rows_sql  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

from .test_commitments import REPO  # noqa: E402


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


# ------------------------------------------------------------------------------------------------ finding 4
def _partly_reserved_vm() -> list[dict]:
    """vm-x, 31 days: 12 h a day on the Windows meter (4.777/h), 12 h on the base meter under reservation r-1
    (list 3.673/h, effective 2.2038/h) with its Windows licence (1.104/h, PricingCategory Standard)."""
    res = dict(PricingCategory="Committed", CommitmentDiscountType="Reservation", BilledCost="0",
               CommitmentDiscountId="/providers/Microsoft.Capacity/reservationOrders/o-1/reservations/r-1",
               CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Used")
    az = dict(AZ, ConsumedQuantity="12", PricingQuantity="12", ResourceId="vm-x")
    rows = []
    for d in [str(d.date()) for d in pd.date_range("2023-09-01", "2023-10-01")]:
        rows += [dict(az, day=d, x_UsageType="NCads A100 v4 Series Windows NC24ads A100 v4",
                      cost=str(Decimal("4.777") * 12), PricingCategory="Standard"),
                 dict(az, **res, day=d, x_UsageType="NCads A100 v4 Series NC24ads A100 v4",
                      EffectiveCost=str(Decimal("2.2038") * 12), ListCost=str(Decimal("3.673") * 12),
                      ContractedCost=str(Decimal("3.673") * 12)),
                 dict(az, day=d, ServiceName="Virtual Machines Licenses", x_UsageType="Windows Server 24 vCPU VM License",
                      cost=str(Decimal("1.104") * 12), PricingCategory="Standard")]
    return rows


def test_a_partly_reserved_vm_days_licence_is_committed_with_its_base_meter_hours():
    """Before (and still): the reserved hours' Windows licence goes to On-demand (5.881/h, 2,187.73) because the
    VM-day also has on-demand Windows-meter hours. Expected: On-demand 4.777/h (1,777.04, as commitments.coverage
    says), Committed 2.2038 + 1.104 = 3.3078/h."""
    con = focus_rows(_partly_reserved_vm())
    rates = spot.effective_rates(con, by=("operating_system",)).df().set_index("pricing")
    assert float(rates.loc["On-demand", "rate_per_hour"]) == pytest.approx(4.777)  # was 5.881
    assert float(rates.loc["Committed", "rate_per_hour"]) == pytest.approx(3.3078)  # was 2.2038
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    od = cm.coverage(con, sc, by=("operating_system",)).set_index("operating_system").loc["Windows", "on_demand_cost"]
    cov = spot.spot_coverage(con, by=("operating_system",)).df().set_index("operating_system")
    assert Decimal(str(cov.loc["Windows", "on_demand_cost"])) == Decimal(od) == Decimal("1777.044")  # was 2,187.73


def _two_class_vm(reserved_h: int, od_h: int, licence_per_h: str = "1.104") -> list[dict]:
    """vm-y, 10 days: ``reserved_h`` h a day on the base meter under reservation r-1 (2.2038/h, list 3.673/h),
    ``od_h`` h on the base meter on demand (3.673/h), one Windows licence row for all of them (PricingCategory
    Standard)."""
    res = dict(PricingCategory="Committed", CommitmentDiscountType="Reservation", BilledCost="0",
               CommitmentDiscountId="/providers/Microsoft.Capacity/reservationOrders/o-1/reservations/r-1",
               CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Used")
    rows = []
    for d in _days():
        rows += [dict(AZ, **res, day=d, ResourceId="vm-y", ConsumedQuantity=str(reserved_h),
                      PricingQuantity=str(reserved_h), x_UsageType="NCads A100 v4 Series NC24ads A100 v4",
                      EffectiveCost=str(Decimal("2.2038") * reserved_h), ListCost=str(Decimal("3.673") * reserved_h),
                      ContractedCost=str(Decimal("3.673") * reserved_h)),
                 dict(AZ, day=d, ResourceId="vm-y", ConsumedQuantity=str(od_h), PricingQuantity=str(od_h),
                      x_UsageType="NCads A100 v4 Series NC24ads A100 v4", PricingCategory="Standard",
                      cost=str(Decimal("3.673") * od_h)),
                 dict(AZ, day=d, ResourceId="vm-y", ServiceName="Virtual Machines Licenses",
                      ConsumedQuantity=str(reserved_h + od_h), PricingQuantity=str(reserved_h + od_h),
                      x_UsageType="Windows Server 24 vCPU VM License",
                      cost=str(Decimal(licence_per_h) * (reserved_h + od_h)), PricingCategory="Standard")]
    return rows


def test_a_licence_row_is_split_pro_rata_over_its_base_meter_hours_classes():
    """A VM-day whose base-meter hours bill in two classes (12 h reserved at 2.2038/h, 12 h on demand at 3.673/h)
    and one Windows licence row for the 24 h (1.104/h): half the licence is the reserved hours', half the on-demand
    hours'. Before: the whole licence On-demand (5.881/h) and Committed 2.2038/h; now Committed 2.2038 + 1.104 =
    3.3078/h, On-demand 3.673 + 1.104 = 4.777/h."""
    con = focus_rows(_two_class_vm(12, 12))
    rates = spot.effective_rates(con, by=("operating_system",)).df().set_index("pricing")
    assert float(rates.loc["Committed", "rate_per_hour"]) == pytest.approx(3.3078)  # was 2.2038
    assert float(rates.loc["On-demand", "rate_per_hour"]) == pytest.approx(4.777)  # was 5.881


def test_a_split_licence_row_adds_up_to_the_row_exactly():
    """7 h reserved and 17 h on demand, a licence of 1.0000000000003/h: the parts are 7/24 and 17/24 of the row,
    rounded at the 12th decimal, and add up to it exactly, money and quantities; the columns keep their type."""
    con = focus_rows(_two_class_vm(7, 17, "1.0000000000003"))
    u = f"({units.accelerated_usage_sql('TRUE', 'focus')})"
    cols = ", ".join(f"sum({c})" for c in units.SPLIT_COLUMNS)
    lic = "x_UsageType LIKE 'Windows%'"
    assert con.sql(f"SELECT {cols} FROM {u} WHERE {lic}").fetchall() == \
        con.sql(f"SELECT {cols} FROM focus WHERE {lic}").fetchall()
    parts = con.sql(f"SELECT pricing, count(*), sum(EffectiveCost), sum(ConsumedQuantity) FROM {u} WHERE {lic} "
                    "GROUP BY ALL ORDER BY ALL").fetchall()
    day = round(Decimal("1.0000000000003") * 24, 12)  # as stored: 24.000000000007
    assert [(p, n, q) for p, n, _, q in parts] == [("Committed", 10, Decimal(70)), ("On-demand", 10, Decimal(170))]
    for (_, _, cost, _), h in zip(parts, (7, 17), strict=True):  # each part within a unit of the 12th decimal
        assert abs(cost - 10 * day * h / 24) <= Decimal("10e-12")
    types = {r[0]: r[1] for r in con.sql(f"DESCRIBE SELECT * FROM {u}").fetchall()}
    assert {types[c] for c in units.SPLIT_COLUMNS} == {"DECIMAL(38,12)"}


def test_a_split_reads_only_the_columns_a_spark_reduction_keeps():
    from finops_kit import spark_metrics

    assert set(units.SPLIT_COLUMNS) <= set(spark_metrics.MEASURES)
