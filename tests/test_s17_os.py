"""Operating systems after the regression review csg (commitments per OS, spot per OS): an Azure pay-as-you-go
Windows VM is a Windows group sized on its compute only (finding 1), a Google Cloud licence SKU is never re-priced at
a spot rate nor blended into a compute rate (finding 2), a reserved Azure Windows VM is one Windows VM, not a Linux
fleet plus a Windows group without hours (finding 3), and the docs say what the data holds (finding 4)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from finops_kit import commitments as cm
from finops_kit import scope, spot
from finops_kit.testing import focus_rows

from .test_commitments import REPO
from .test_s16_oscom import _azure_reserved_windows_vm

AZ = dict(ProviderName="Microsoft", ServiceCategory="Compute", RegionId="eastus", ServiceName="Virtual Machines",
          ConsumedQuantity="24", ConsumedUnit="Hours", PricingQuantity="24", PricingUnit="Hours",
          x_AiWorkload="Accelerated compute")
RESERVED = dict(BilledCost="0", PricingCategory="Committed", CommitmentDiscountType="Reservation",
                CommitmentDiscountId="/providers/Microsoft.Capacity/reservationOrders/o-1/reservations/r-1",
                CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Used")


def _azure_linux_reserved_and_windows_payg(windows_type: str = "Standard_NC24ads_A100_v4",
                                           windows_meter: str = "NCads A100 v4 Series Windows NC24ads A100 v4"
                                           ) -> list[dict]:
    """The review's r/azure_win.py: VM A, Linux, under a reservation (3.673/h list, 2.2038/h, 40% off); VM B,
    Windows, pay as you go on the Windows meter (3.673 compute + 1.104 licence = 4.777/h). Sep-Oct 2023 closed."""
    rows = []
    for d in pd.date_range("2023-09-01", "2023-11-01"):
        d = str(d.date())
        rows.append(dict(AZ, **RESERVED, day=d, ResourceId="vm-lin", x_InstanceType="Standard_NC24ads_A100_v4",
                         x_UsageType="NCads A100 v4 Series NC24ads A100 v4",
                         EffectiveCost=str(Decimal("2.2038") * 24), ListCost=str(Decimal("3.673") * 24),
                         ContractedCost=str(Decimal("3.673") * 24)))
        rows.append(dict(AZ, day=d, ResourceId="vm-win", x_InstanceType=windows_type, x_UsageType=windows_meter,
                         cost=str(Decimal("4.777") * 24), PricingCategory="Standard"))
    return rows


def _recommend(rows: list[dict]) -> pd.DataFrame:
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc, today=dt.date(2023, 11, 1))
    return rec


# ------------------------------------------------------------------------------------------------ finding 1
def test_an_azure_payg_windows_vm_is_a_windows_group_sized_on_its_compute_only():
    """Before: one 'any OS' group at 8.45/h sized at the Linux reservation's 40%, licence included: a gain of
    $16,738.61 a year. A reservation discounts the Windows VM's 3.673/h of compute, not its 1.104/h licence:
    3.673 x 0.40 x 8,760 = $12,870.19 a year, in a Windows group of its own, its purchase line naming the OS."""
    rec = _recommend(_azure_linux_reserved_and_windows_payg())
    by_os = rec.set_index("operating_system")
    assert set(by_os.index) == {"Linux", "Windows"}  # was {'any OS'}
    win = by_os.loc["Windows"]
    assert win["discount"] == pytest.approx(0.40 * 3.673 / 4.777)  # the bill's base-meter rate / Windows meter rate
    assert win["gain_vs_today_year"] == pytest.approx(12870.192)  # was 16,738.608
    assert by_os.loc["Linux", "gain_vs_today_year"] == pytest.approx(0.0, abs=1e-6)
    lines = [cm.purchase_line(r) for _, r in cm.best_options(rec).iterrows()]
    assert lines[0].startswith("Buy Reservation (") and "for Microsoft NCads A100 v4 Windows: reserve instances" in lines[0]
    assert "$4.78/h in all" in lines[0]
    assert "the licence billed apart and not discounted" in lines[0]


def test_the_windows_hours_are_windows_in_commitment_coverage_as_in_spot_coverage():
    """One answer: the hours the spot report calls Windows are Windows in commitment coverage (were 'any OS')."""
    con = focus_rows(_azure_linux_reserved_and_windows_payg())
    sep = scope.resolve(con, str(REPO / "finops.yaml"), {"billing_period_start": "2023-09",
                                                         "billing_period_end": "2023-09"})
    cov = cm.coverage(con, sep, by=("provider", "operating_system")).set_index("operating_system")
    assert cov.loc["Windows", "eligible_hours"] == 720.0 and cov.loc["Windows", "committed_hours"] == 0.0
    assert cov.loc["Linux", "committed_hours"] == 720.0
    sp = spot.spot_coverage(con, by=("operating_system",), scope=sep).df().set_index("operating_system")
    assert sp.loc["Windows", "on_demand_hours"] == 720.0 and sp.loc["Linux", "committed_hours"] == 720.0


def test_an_azure_windows_group_without_a_base_meter_rate_in_the_bill_is_left_unsized_with_its_reason():
    """A Windows NC48ads_A100_v4 with no base-meter hour of its type in the bill: its licence-free share is unknown,
    so the Linux NC24's 40% never sizes its whole Windows price (before: 'any OS' at 40%, licence included)."""
    rec = _recommend(_azure_linux_reserved_and_windows_payg(
        "Standard_NC48ads_A100_v4", "NCads A100 v4 Series Windows NC48ads A100 v4"))
    assert set(rec["operating_system"]) == {"Linux"}
    assert cm.unsized_note(rec) == (
        "Not sized (1): Microsoft NCads A100 v4 Windows: a commitment discounts their compute only, not the OS licence "
        "in their price, and the bill has no licence-free rate (a Linux hour or base meter of the same instance type "
        "and region) to take the licence out with; pass a quote (extra_options, e.g. \"1-year quote=0.30\") to size "
        "them.")


# ------------------------------------------------------------------------------------------------ finding 2
G = dict(ProviderName="Google Cloud", InvoiceIssuerName="Google", PublisherName="Google", ServiceName="Compute Engine",
         ServiceCategory="Compute", RegionId="us-central1", x_InstanceType="a2-highgpu-1g")


def _a2(name: str, pricing: str, *, licence: bool = False) -> list[dict]:
    """Ten days of an a2-highgpu-1g: on demand (A100 2.934/h, 12 vCPU x 0.0331, 85 GB x 0.0044) or spot (0.88,
    12 x 0.0099, 85 x 0.0013), with its Windows Server licence SKU (12 x 0.046 = 0.552/h) if ``licence``."""
    spot_vm = pricing == "Dynamic"
    gpu, core, ram = (0.88, 0.0099, 0.0013) if spot_vm else (2.934, 0.0331, 0.0044)
    pre = "Spot Preemptible " if spot_vm else ""
    r = dict(G, ResourceId=f"projects/p/zones/us-central1-a/instances/{name}", PricingCategory=pricing)
    rows = []
    for d in pd.date_range("2026-09-01", "2026-09-10"):
        d = str(d.date())
        rows += [dict(r, day=d, x_UsageType=f"{pre}Nvidia Tesla A100 GPU running in Americas", ConsumedQuantity=24,
                      ConsumedUnit="Hours", cost=24 * gpu, x_AiWorkload="Accelerated compute"),
                 dict(r, day=d, x_UsageType=f"{pre}A2 Instance Core running in Americas", ConsumedQuantity=24 * 12,
                      ConsumedUnit="Hours", cost=24 * 12 * core),
                 dict(r, day=d, x_UsageType=f"{pre}A2 Instance Ram running in Americas", ConsumedQuantity=24 * 85,
                      ConsumedUnit="GiBy.h", cost=24 * 85 * ram)]
        if licence:
            rows.append(dict(r, day=d, x_UsageType="Licensing Fee for Windows Server 2022 Datacenter Edition (CPU cost)",
                             ConsumedQuantity=24 * 12, ConsumedUnit="Hours", cost=24 * 12 * 0.046))
    return rows


def test_the_spot_what_if_never_reprices_a_google_cloud_licence_sku():
    """Before: the Windows VM's 0.552/h licence was re-priced at the Linux spot VM's rate (on-demand rate 4.2572/h,
    saving 755.50). A licence bills the same on Spot VMs: the compute (3.7052/h) is re-priced, the licence
    (0.552 x 240 = 132.48) is not_repriced_cost; saving (3.7052 - 1.1093) x 240 = 623.02."""
    con = focus_rows(_a2("win-a2", "Standard", licence=True) + _a2("lin-spot", "Dynamic"))
    w = spot.spot_what_if(con, by=("month",))
    assert len(w) == 1
    r = w.iloc[0]
    assert r["basis"] == "observed"
    assert float(r["on_demand_rate"]) == pytest.approx(3.7052)  # was 4.2572
    assert float(r["spot_rate"]) == pytest.approx(1.1093)
    assert float(r["not_repriced_cost"]) == pytest.approx(132.48)
    assert float(r["saving"]) == pytest.approx(623.016)  # was 755.496
    tot = spot.what_if_summary(w).set_index("basis").loc["total"]
    assert float(tot["on_demand_cost"] + tot["not_repriced_cost"]) == pytest.approx(240 * (3.7052 + 0.552))


def test_a_google_cloud_licence_is_in_no_compute_rate_and_no_spot_cost_share():
    """Before: a Linux and a Windows on-demand a2-highgpu-1g read one 'any (licence billed apart)' rate of 3.9812/h,
    a rate nobody pays. The label's rate is the compute's, 3.7052/h; the licence is shown apart in the cost."""
    con = focus_rows(_a2("win-a2", "Standard", licence=True) + _a2("lin-a2", "Standard") + _a2("lin-spot", "Dynamic"))
    rates = spot.effective_rates(con, by=("provider", "instance_type", "operating_system")).df().set_index("pricing")
    od = rates.loc["On-demand"]
    assert od["operating_system"] == "any (licence billed apart)"
    assert float(od["rate_per_hour"]) == pytest.approx(3.7052)  # was 3.9812
    assert float(od["licence_apart_cost"]) == pytest.approx(132.48)
    assert float(od["cost"]) == pytest.approx(480 * 3.7052 + 132.48)  # the cost still adds up
    cov = spot.spot_coverage(con, by=("operating_system",)).df().iloc[0]
    assert float(cov["licence_apart_cost"]) == pytest.approx(132.48)
    assert float(cov["total_cost"]) == pytest.approx(480 * 3.7052 + 132.48 + 240 * 1.1093)
    assert float(cov["spot_cost_share"]) == pytest.approx(round(240 * 1.1093 / (720 * 0 + 480 * 3.7052 + 240 * 1.1093), 4))


# ------------------------------------------------------------------------------------------------ finding 3
def test_a_reserved_azure_windows_vm_is_one_windows_vm_in_every_table():
    """Before: 'Linux' committed 744 h at 1,639.63 and 'Windows' 821.38 with no hours. The licence row names the
    VM's OS: one Windows VM of 744 h and 2,461.00 in spot coverage, whose rate is what it costs an hour
    (2.2038 + 1.104 = 3.3078), Windows in commitment coverage and the commitment's inventory too."""
    con = focus_rows(_azure_reserved_windows_vm())
    cov = spot.spot_coverage(con, by=("operating_system",)).df()
    assert list(cov["operating_system"]) == ["Windows"]
    r = cov.iloc[0]
    assert (float(r["committed_hours"]), float(r["committed_cost"])) == (744.0, pytest.approx(2461.0032))
    assert float(r["licence_apart_cost"]) == 0
    rates = spot.effective_rates(con, by=("operating_system",)).df()
    assert list(rates["operating_system"]) == ["Windows"]
    assert float(rates.iloc[0]["rate_per_hour"]) == pytest.approx(3.3078)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    assert set(cm.coverage(con, sc, by=("operating_system",))["operating_system"]) == {"Windows"}
    assert list(cm.inventory(con, sc)["operating_systems"]) == ["Windows"]
    # the reservation's 40% is on the VM's compute (its licence billed apart): it sizes the VM's compute at 40%
    rec, _ = cm.recommend(con, sc, today=dt.date(2023, 10, 1))
    assert list(rec["option"]) == ["Reservation (realized 40% on NCads A100 v4)"]
    assert rec.iloc[0]["operating_system"] == "Windows"


def test_a_reserved_windows_vms_compute_discount_sizes_a_payg_windows_vm_on_its_compute_only():
    """A Windows realized discount that was on compute alone (the reserved VM's base meter) is no discount on a
    pay-as-you-go Windows meter's licence: the Windows group (3.673/h reserved + 4.777/h on demand) is sized at
    40% x 3.673 / 4.777, the share of the hours a new reservation would cover (the reserved compute's share of 1
    blended in, 40% x 0.869, gained $14,551.69): buying the on-demand VM gains 3.673 x 0.40 x 8,760 = $12,870.19."""
    rows = _azure_reserved_windows_vm()
    for d in pd.date_range("2023-09-01", "2023-10-01"):
        rows.append(dict(AZ, day=str(d.date()), ResourceId="vm-win-payg", x_InstanceType="Standard_NC24ads_A100_v4",
                         x_UsageType="NCads A100 v4 Series Windows NC24ads A100 v4", cost=str(Decimal("4.777") * 24),
                         PricingCategory="Standard"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc, today=dt.date(2023, 10, 1))
    assert list(rec["operating_system"]) == ["Windows"]
    r = rec.iloc[0]
    assert r["discount"] == pytest.approx(0.40 * 3.673 / 4.777)
    assert r["gain_vs_today_year"] == pytest.approx(12870.192)


# ------------------------------------------------------------------------------------------------ finding 4
def test_the_docs_say_what_the_os_data_holds():
    root = Path(__file__).resolve().parents[1]
    assert "Linux only" not in (root / "finops_kit" / "spot.py").read_text()
    nb = json.loads((root / "notebooks" / "spot_analysis.ipynb").read_text())
    assert not any("Linux only" in "".join(c["source"]) for c in nb["cells"])
    assert "Azure" not in spot.UNKNOWN_OS_NOTE
    w = pd.DataFrame({"operating_system": ["unknown (RunInstances:0006)"], "basis": ["flat"],
                      "on_demand_hours": [10.0]})
    note = spot.what_if_os_note(w)
    assert "Azure" not in note and "Google Cloud" not in note
    assert "Windows" in set(spot.ondemand_prices()["operating_system"])
    doc = cm.operating_system_sql.__doc__
    assert "Azure reservations cover the compute of any OS (their licences" not in doc
    assert "pay-as-you-go Windows VM" in doc
