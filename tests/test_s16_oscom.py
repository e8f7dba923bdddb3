"""Commitments and operating systems (review of OSes, findings 2, 5 and the commitments part of 1): AWS sizing per
platform with discounts realized on the same OS (an estimate from Linux's otherwise), the OS named in the purchase
line, and licence rows (role ``license``) never counted as usage a commitment could cover."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import commitments as cm
from finops_kit import scope, units

from .test_commitments import REPO

LINUX_RATE, WINDOWS_RATE, LINUX_RI_RATE = "5.672", "7.88", "3.573"  # g5.12xlarge us-east-1; Windows = + 48 x 0.046


def _ec2(day: str, itype: str, hours: int, list_rate: str, eff_rate: str | None = None, *, op: str, res: str,
         cid: str | None = None, region: str = "us-east-1", ctype: str = "Reserved Instance") -> dict:
    """One day of an EC2 instance (its OS in the usage operation), on demand or under an RI."""
    lst = Decimal(list_rate) * hours
    eff = Decimal(eff_rate) * hours if eff_rate else lst
    row = dict(ProviderName="AWS", ServiceCategory="Compute", x_AiWorkload="Accelerated compute", day=day,
               x_InstanceType=itype, ConsumedQuantity=str(hours), ConsumedUnit="Hours", PricingQuantity=str(hours),
               PricingUnit="Hours", ResourceId=res, RegionId=region, x_Operation=op,
               x_UsageType=f"USE1-BoxUsage:{itype}", BilledCost=str(eff if cid is None else 0),
               EffectiveCost=str(eff), ListCost=str(lst), ContractedCost=str(lst),
               PricingCategory="Standard" if cid is None else "Committed")
    if cid:
        row.update(CommitmentDiscountId=cid, CommitmentDiscountType=ctype,
                   CommitmentDiscountCategory="Usage" if ctype == "Reserved Instance" else "Spend",
                   CommitmentDiscountStatus="Used",
                   x_reservation_end_time="2027-08-31T00:00:00Z")
    return row


def _reviewers_fleet(windows_ri: bool = False) -> list[dict]:
    """The review's fixture: 4 Linux g5.12xlarge under Linux RIs (5.672 -> 3.573/h, 37% off) and 4 Windows
    g5.12xlarge on demand (7.88/h), 1 September - 4 November 2026 (September and October closed). ``windows_ri``:
    a fifth Windows instance under a Windows RI at 5.781/h (3.573 + the undiscounted 2.208 licence: 26.6% off)."""
    rows = []
    for d in pd.date_range("2026-09-01", "2026-11-04"):
        d = str(d.date())
        for i in range(4):
            rows.append(_ec2(d, "g5.12xlarge", 24, LINUX_RATE, LINUX_RI_RATE, op="RunInstances", res=f"i-lin{i}",
                             cid=f"ri-lin-{i}"))
            rows.append(_ec2(d, "g5.12xlarge", 24, WINDOWS_RATE, op="RunInstances:0002", res=f"i-win{i}"))
        if windows_ri:
            rows.append(_ec2(d, "g5.12xlarge", 24, WINDOWS_RATE, "5.781", op="RunInstances:0002", res="i-win-ri",
                             cid="ri-win"))
    return rows


def _recommend(rows: list[dict], **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    from finops_kit.testing import focus_rows

    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    return cm.recommend(con, sc, today=dt.date(2026, 11, 4), **kw)


def test_windows_hours_are_sized_apart_with_the_linux_discount_scaled_to_their_compute():
    """Pooled with the Linux g5s and sized at the Linux RIs' realized 37%, the 4 Windows g5.12xlarge were "+$31.52/h
    under Reserved Instance (realized 37% on g5)", a gain of $102,180 a year. A Windows RI costs the Linux RI rate
    plus the licence at its on-demand price: 37.0063% x 5.672 / 7.88 = 26.64% off, a gain of 31.52 x 0.26637 x
    8,760 = $73,549 a year; the Linux group is at its optimum (gain 0)."""
    rec, curves = _recommend(_reviewers_fleet())
    assert rec["gain_vs_today_year"].max() == pytest.approx(73548.96, abs=0.01)  # was 102,180.15
    assert set(zip(rec["operating_system"], rec["instance_family"], strict=True)) == {("Linux", "g5"),
                                                                                     ("Windows", "g5")}
    lin = rec[rec["operating_system"] == "Linux"].iloc[0]
    win = rec[rec["operating_system"] == "Windows"].iloc[0]
    linux_d = 1 - 3.573 / 5.672
    assert lin["discount"] == pytest.approx(linux_d, abs=1e-6)
    assert (lin["optimal_level"], lin["change_level"], lin["gain_vs_today_year"]) == (
        pytest.approx(22.688), pytest.approx(0.0, abs=1e-9), pytest.approx(0.0, abs=1e-6))
    assert len(rec[rec["operating_system"] == "Windows"]) == 1  # never the Linux 37% on Windows hours
    assert win["discount"] == pytest.approx(linux_d * 5.672 / 7.88, abs=1e-6)
    assert win["option"].startswith("Reserved Instance (estimated 26.6% on Windows: 37% realized on Linux g5")
    assert "get a quote" in win["option"]
    assert (win["mean_level"], win["optimal_level"], win["change_level"]) == (
        pytest.approx(31.52), pytest.approx(31.52), pytest.approx(31.52))
    assert win["gain_vs_today_year"] == pytest.approx(4 * (7.88 - (5.672 - 5.672 * linux_d + 2.208)) * 8760,
                                                      abs=0.01)
    assert win["gain_vs_today_year"] == pytest.approx(73548.96, abs=0.01)
    assert set(curves["operating_system"]) == {"Linux", "Windows"}
    best = cm.best_options(rec)
    assert list(best["operating_system"]) == ["Windows", "Linux"]  # the Windows gain first; Linux kept, not dropped
    line = cm.purchase_line(best.iloc[0])
    assert line.startswith("Buy Reserved Instance (estimated 26.6% on Windows")
    assert "for AWS g5 Windows: reserve instances worth $31.52/h at on-demand list price on top of" in line
    assert line.endswith("a Windows RI is not size-flexible: buy it per instance size")
    assert cm.largest_opportunity(best).startswith("Largest opportunity: AWS g5 Windows — commit to $31.52/h")


def test_windows_usage_takes_the_discount_a_windows_ri_realized():
    """With a Windows RI in place (5.781/h against 7.88: 26.64% realized), the Windows group is sized with it -- the
    same OS's realized discount, no estimate -- and the Linux group with the Linux RIs' 37.0%."""
    rec, _ = _recommend(_reviewers_fleet(windows_ri=True))
    assert sorted(rec["discount"].round(6)) == [round(1 - 5.781 / 7.88, 6), round(1 - 3.573 / 5.672, 6)]
    win = rec[rec["operating_system"] == "Windows"]
    assert list(win["option"]) == ["Reserved Instance (realized 27% on g5)"]
    assert win["discount"].iloc[0] == pytest.approx(1 - 5.781 / 7.88, abs=1e-9)
    lin = rec[rec["operating_system"] == "Linux"]
    assert lin["discount"].iloc[0] == pytest.approx(1 - 3.573 / 5.672, abs=1e-9)
    disc = cm.realized_discounts(cm.inventory(*_con_sc(_reviewers_fleet(windows_ri=True))))
    fam = disc[disc["family"] == "g5"].set_index("operating_system")["discount"]
    assert fam.to_dict() == {"Linux": pytest.approx(1 - 3.573 / 5.672), "Windows": pytest.approx(1 - 5.781 / 7.88)}


def test_a_savings_plan_over_linux_and_windows_realizes_a_discount_per_os():
    """One Compute Savings Plan covers 2 Linux g5.12xlarge (5.672 -> 4.08384/h, 28% off) and 2 Windows ones
    (7.88 -> 4.08384 + the 2.208 licence = 6.29184/h, 20.15% off); 2 more Windows run on demand. Its blend (24.8%)
    sizes neither OS: the Windows group takes the 20.15% the plan realized on Windows hours, the Linux one 28%."""
    rows = []
    for d in pd.date_range("2026-09-01", "2026-11-04"):
        d = str(d.date())
        for i in range(2):
            rows.append(_ec2(d, "g5.12xlarge", 24, LINUX_RATE, "4.08384", op="RunInstances", res=f"i-lin{i}",
                             cid="sp-1", ctype="Savings Plan"))
            rows.append(_ec2(d, "g5.12xlarge", 24, WINDOWS_RATE, "6.29184", op="RunInstances:0002",
                             res=f"i-win{i}", cid="sp-1", ctype="Savings Plan"))
            rows.append(_ec2(d, "g5.12xlarge", 24, WINDOWS_RATE, op="RunInstances:0002", res=f"i-win-od{i}"))
    rec, _ = _recommend(rows)
    got = rec.set_index("operating_system")[["option", "discount"]]
    assert got.loc["Windows", "option"] == "Savings Plan (realized 20% on g5)"
    assert got.loc["Windows", "discount"] == pytest.approx(1 - 6.29184 / 7.88, abs=1e-9)
    assert got.loc["Linux", "discount"] == pytest.approx(0.28, abs=1e-9)
    win = rec[rec["operating_system"] == "Windows"].iloc[0]
    assert (win["committed_now"], win["change_level"]) == (pytest.approx(2 * 7.88), pytest.approx(2 * 7.88))
    assert win["gain_vs_today_year"] == pytest.approx(2 * 7.88 * (1 - 6.29184 / 7.88) * 8760)


def _con_sc(rows: list[dict]):
    from finops_kit.testing import focus_rows

    con = focus_rows(rows)
    return con, scope.resolve(con, str(REPO / "finops.yaml"))


def test_an_os_without_its_own_commitment_or_a_linux_price_is_sized_only_with_a_quote():
    """Windows g6e.12xlarge (no Linux g6e usage in the bill, not in the kit's price table): no estimate can be made
    of its licence-free share, so the Linux g5 RI's 37% never sizes it; a quote does (30% of 15.0/h all month:
    15 x 0.30 x 8,760 = $39,420 a year). An unlisted operation (SQL Server, ``RunInstances:0006``) is a platform of
    its own, never pooled with Windows or Linux."""
    rows = _reviewers_fleet()
    for d in pd.date_range("2026-09-01", "2026-11-04"):
        rows.append(_ec2(str(d.date()), "g6e.12xlarge", 24, "15.0", op="RunInstances:0002", res="i-g6e"))
        rows.append(_ec2(str(d.date()), "g6e.12xlarge", 24, "16.0", op="RunInstances:0006", res="i-g6e-sql"))
    rec, _ = _recommend(rows)
    assert not (rec["instance_family"] == "g6e").any()
    assert cm.unsized_note(rec) == (
        "Not sized (2): AWS g6e Windows, AWS g6e operation RunInstances:0006: no commitment in scope realized a "
        "discount on their provider, platform and operating system, and none could be estimated; pass a quote "
        "(extra_options, e.g. \"1-year quote=0.30\") to size them.")
    quoted, _ = _recommend(rows, extra_options=["1-year quote=0.30"])
    g6e = quoted[quoted["instance_family"] == "g6e"].set_index("operating_system")
    assert set(g6e.index) == {"Windows", "operation RunInstances:0006"}
    assert list(g6e["option"]) == ["1-year quote", "1-year quote"]
    assert g6e.loc["Windows", "gain_vs_today_year"] == pytest.approx(15.0 * 0.30 * 8760)
    assert cm.unsized_note(quoted) == ""
    assert g6e.loc["operation RunInstances:0006", "gain_vs_today_year"] == pytest.approx(16.0 * 0.30 * 8760)


def _gcp_windows_a2() -> list[dict]:
    """The review's GCP fixture: one a2-highgpu-1g on demand, September-October closed, with its A100 (2.934/h),
    12 vCPU (0.0331/h each), 85 GB RAM (0.0044/GB-h) and Windows licence (12 x 0.046 = 0.552/h) SKUs."""
    g = dict(ProviderName="Google Cloud", InvoiceIssuerName="Google", PublisherName="Google",
             ServiceName="Compute Engine", ServiceCategory="Compute", RegionId="us-central1",
             x_InstanceType="a2-highgpu-1g", ResourceId="projects/p/zones/us-central1-a/instances/win-a2")
    rows = []
    for d in pd.date_range("2026-09-01", "2026-11-01"):
        d = str(d.date())
        rows += [dict(g, day=d, x_UsageType="Nvidia Tesla A100 GPU running in Americas", ConsumedQuantity=24,
                      ConsumedUnit="Hours", cost=24 * 2.934, x_AiWorkload="Accelerated compute"),
                 dict(g, day=d, x_UsageType="A2 Instance Core running in Americas", ConsumedQuantity=24 * 12,
                      ConsumedUnit="Hours", cost=24 * 12 * 0.0331),
                 dict(g, day=d, x_UsageType="A2 Instance Ram running in Americas", ConsumedQuantity=24 * 85,
                      ConsumedUnit="GiBy.h", cost=24 * 85 * 0.0044),
                 dict(g, day=d, x_UsageType="Licensing Fee for Windows Server 2022 Datacenter Edition (CPU cost)",
                      ConsumedQuantity=24 * 12, ConsumedUnit="Hours", cost=24 * 12 * 0.046)]
    return rows


def test_a_cud_is_sized_without_the_windows_licence_sku():
    """CUDs never cover a premium OS licence: the sizing counted the 0.552/h licence SKU in the on-demand value
    (level 4.2572/h, gain $13,798 a year at a 37% quote); the CUD-eligible value is 3.7052/h (GPU + vCPU + RAM),
    a gain of 3.7052 x 0.37 x 8,760 = $12,009.29 a year. The licence stays out of coverage's eligible spend too."""
    con, sc = _con_sc(_gcp_windows_a2())
    rec, _ = cm.recommend(con, sc, extra_options={"1-year resource CUD quote": 0.37}, today=dt.date(2026, 11, 1))
    r = rec.iloc[0]
    vm = 2.934 + 12 * 0.0331 + 85 * 0.0044
    assert r["gain_vs_today_year"] == pytest.approx(12009.29424)  # was 13,798.44 with the licence
    assert (r["operating_system"], r["mean_level"], r["optimal_level"], r["optimal_instances"]) == (
        cm.ANY_OS, pytest.approx(vm), pytest.approx(vm), pytest.approx(1.0))
    assert r["gain_vs_today_year"] == pytest.approx(vm * 0.37 * 8760) == pytest.approx(12009.29424)
    cov = cm.coverage(con, sc, by=("provider", "period"), closed_only=True)
    sep = cov[cov["period"] == dt.date(2026, 9, 1)].iloc[0]
    assert sep["eligible_list_cost"] == Decimal(str(round(vm * 24 * 30, 6))).quantize(sep["eligible_list_cost"])
    assert sep["on_demand_cost"] == sep["eligible_list_cost"]
    import finops_kit as fk

    september = scope.resolve(con, str(REPO / "finops.yaml"), {"billing_period_start": "2026-09",
                                                               "billing_period_end": "2026-09"})
    m = fk.metrics(con, september).commitments.set_index("provider")
    assert m.loc["Google Cloud", "on_demand_cost"] == sep["on_demand_cost"]  # finops-kit metrics: the same rule


AZURE_VM = "/subscriptions/s/resourceGroups/rg-vision/providers/Microsoft.Compute/virtualMachines/win-a100"


def _azure_reserved_windows_vm() -> list[dict]:
    """The review's Azure fixture in FOCUS: one Standard_NC24ads_A100_v4 all of September 2023 (and 1 October),
    its compute under a VM reservation (list 3.673/h, effective 2.2038/h, 40% off) and its Windows licence billed
    apart on demand (24 vCPU x 0.046 = 1.104/h), the VM's size in x_InstanceType on both rows as the Azure source
    reads AdditionalInfo.ServiceType."""
    common = dict(ProviderName="Microsoft", ServiceCategory="Compute", RegionId="eastus", ResourceId=AZURE_VM,
                  x_InstanceType="Standard_NC24ads_A100_v4", ConsumedQuantity="24", ConsumedUnit="Hours",
                  PricingQuantity="24", PricingUnit="Hours")
    rows = []
    for d in pd.date_range("2023-09-01", "2023-10-01"):
        d = str(d.date())
        rows.append(dict(common, day=d, ServiceName="Virtual Machines", x_AiWorkload="Accelerated compute",
                         x_UsageType="NCads A100 v4 Series NC24ads A100 v4", BilledCost="0",
                         EffectiveCost=str(Decimal("2.2038") * 24), ListCost=str(Decimal("3.673") * 24),
                         ContractedCost=str(Decimal("3.673") * 24), PricingCategory="Committed",
                         CommitmentDiscountId="/providers/Microsoft.Capacity/reservationOrders/o-1/reservations/r-1",
                         CommitmentDiscountType="Reservation", CommitmentDiscountCategory="Usage",
                         CommitmentDiscountStatus="Used"))
        rows.append(dict(common, day=d, ServiceName="Virtual Machines Licenses",
                         x_UsageType="Windows Server 24 vCPU VM License", cost=Decimal("1.104") * 24,
                         PricingCategory="Standard"))
    return rows


@pytest.fixture
def azure_licence_role(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``license`` role the units rules give an Azure VM's licence row (MeterCategory 'Virtual Machines
    Licenses', UsageType ComputeHR_SW), as GCP's "Licensing Fee" rows have it: stubbed ahead of the rules here, so
    that this test is about what commitments do with a licence row, whatever rule the units table uses for it."""
    rules = units.usage_rules()
    stub = {"provider_pattern": "(?i)microsoft|azure", "column": "x_UsageType", "pattern": r"(?i)\bvm license\b",
            "role": "license", "instance_type_pattern": "", "note": "test stub: Azure VM licence rows"}
    monkeypatch.setattr(units, "usage_rules", lambda: (stub, *rules))


def test_a_reservation_is_never_sized_or_counted_to_cover_an_azure_licence_row(azure_licence_role: None):
    """With the licence row counted as usage of the reserved VM, the kit sized a reservation to cover it ("+$1.104/h
    ... worth $3,868/yr" when it was a second VM) and, with the ``license`` role, still counted its list value as
    committed usage (mean level 4.777/h, eligible list 3,439.44 in September). The VM's compute alone is eligible:
    3.673 x 720 = 2,644.56, all of it reserved; the level is 3.673/h, committed today in full: nothing to buy."""
    con, sc = _con_sc(_azure_reserved_windows_vm())
    roles = con.sql(f"SELECT DISTINCT x_UsageType, unit_role FROM ({units.accelerated_usage_sql()})").fetchall()
    assert ("Windows Server 24 vCPU VM License", "license") in roles
    sep = scope.resolve(con, str(REPO / "finops.yaml"), {"billing_period_start": "2023-09",
                                                         "billing_period_end": "2023-09"})
    cov = cm.coverage(con, sep, by=("provider",)).iloc[0]
    assert (cov["eligible_hours"], cov["committed_hours"], cov["coverage_hours"]) == (720.0, 720.0, 1.0)
    assert cov["eligible_list_cost"] == cov["committed_list_cost"] == Decimal("2644.56")
    assert cov["on_demand_cost"] == 0 and cov["coverage_cost"] == 1.0
    rec, _ = cm.recommend(con, sc, today=dt.date(2023, 10, 1))
    assert list(rec["option"]) == ["Reservation (realized 40% on NCads A100 v4)"]
    r = rec.iloc[0]
    assert (r["mean_level"], r["committed_now"], r["optimal_level"]) == (
        pytest.approx(3.673), pytest.approx(3.673), pytest.approx(3.673))
    assert r["change_level"] == pytest.approx(0.0, abs=1e-9) and r["gain_vs_today_year"] == pytest.approx(0.0, abs=1e-6)
    assert cm.best_options(rec)["gain_vs_today_year"].max() < 0.01  # no purchase line


def test_the_report_names_the_os_in_its_purchase_line_and_sentence(tmp_path):
    """The commitments report's own cells on the review's fleet: its section-5 action and sentence name the OS and
    size the Windows g5s at the estimate ($73,548.96 a year, $6,129.08 a month), and it does not drop the Linux
    group for the Windows one (the cell grouped by provider and family)."""
    from .test_commitments import _run_report_cells

    out = _run_report_cells(tmp_path, _reviewers_fleet())
    assert "for AWS g5 Windows: reserve instances worth $31.52/h at on-demand list price on top of" in out
    assert "a Windows RI is not size-flexible: buy it per instance size" in out
    assert "Largest opportunity: AWS g5 Windows — commit to $31.52/h" in out
    assert "$73,548.96 more than today's level" in out
    assert "$102,180" not in out
