"""Operating systems in the spot analysis (review of operating systems and platforms, findings 3, 6 and 7).

Prices as in the review: g5.12xlarge us-east-1 Linux on demand $5.672/h, Windows $7.88/h (Linux + 48 vCPU x
$0.046 licence), Linux spot $2.382/h; an Azure Standard_NV36ads_A10_v5 Windows VM $4.856/h, Linux spot $0.64/h.
"""

from __future__ import annotations

import pytest

from finops_kit import spot
from finops_kit.errors import ConfigError, InputError
from finops_kit.testing import focus_rows

AWS = dict(ProviderName="AWS", RegionId="us-east-1", ConsumedUnit="Hours", x_AiWorkload="Accelerated compute",
           day="2026-10-05")
AZURE = dict(ProviderName="Microsoft", InvoiceIssuerName="Microsoft", PublisherName="Microsoft",
             ServiceName="Virtual Machines", RegionId="eastus", ConsumedUnit="Hours",
             x_AiWorkload="Accelerated compute", day="2026-10-05", x_InstanceType="Standard_NV36ads_A10_v5")
VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"


def _one(df, **keys):
    sel = df
    for k, v in keys.items():
        sel = sel[sel[k].astype(str) == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def _sql_server_od(**k):
    """100 h of g5.xlarge 'Windows with SQL Server Standard' on demand (RunInstances:0006, not mapped) at $1.67/h."""
    return dict(AWS, x_InstanceType="g5.xlarge", cost=167.0, ConsumedQuantity=100,
                x_UsageType="USE1-BoxUsage:g5.xlarge", x_Operation="RunInstances:0006", ResourceId="i-sql", **k)


def test_unknown_os_borrows_no_spot_rate_of_another_platform():
    """Finding 3. Before: every row of unknown OS (NULL) matched every other (NULL IS NOT DISTINCT FROM NULL): the
    SQL Server hours took an Ubuntu Pro spot instance's $0.42/h (basis 'observed', saving $125.00 instead of
    $91.85 at the flat 55%), and an Azure Windows VM a Linux spot VM's $0.64/h (saving $421.60 instead of
    $267.08). After: both stay 'flat', and their OS reads 'unknown (RunInstances:0006)' / 'Windows' (the Azure meter says so)."""
    ubuntu_pro_spot = dict(AWS, x_InstanceType="g5.xlarge", cost=42.0, ConsumedQuantity=100,
                           x_UsageType="USE1-SpotUsage:g5.xlarge", x_Operation="RunInstances:0g00:SV001",
                           PricingCategory="Dynamic", ResourceId="i-ubuntu")
    adv = spot.load_advisor()
    w = spot.spot_what_if(focus_rows([_sql_server_od(), ubuntu_pro_spot]), adv, by=("month",))
    r = _one(w, instance_type="g5.xlarge")
    assert (r.basis, r.operating_system) == ("flat", "unknown (RunInstances:0006)")
    assert float(r.spot_rate) == pytest.approx(0.7515) and float(r.saving) == pytest.approx(91.85)

    win_od = dict(AZURE, cost=485.6, ConsumedQuantity=100, x_UsageType="NVadsA10 v5 Series Windows NV36ads A10 v5",
                  ResourceId=VM + "win1")
    lin_spot = dict(AZURE, cost=64.0, ConsumedQuantity=100, x_UsageType="NVadsA10 v5 Series NV36ads A10 v5 Spot",
                    PricingCategory="Dynamic", ResourceId=VM + "lin1")
    w = spot.spot_what_if(focus_rows([win_od, lin_spot]), adv, by=("month",))
    r = _one(w, instance_type="Standard_NV36ads_A10_v5")
    assert (r.basis, r.operating_system) == ("flat", "Windows")  # the meter says Windows; the spot row is Linux
    assert float(r.spot_rate) == pytest.approx(2.1852) and float(r.saving) == pytest.approx(267.08)


def test_unknown_aws_code_takes_the_spot_rate_of_the_same_code():
    """What data/ec2_usage_operations.csv promises: an unmapped code borrows the spot rate the bill shows for the
    same code (RunInstances:0006:SV001 spot at $0.80/h prices RunInstances:0006 on demand: saving $87.00), and
    only that one when another code's spot rate is cheaper (Ubuntu Pro at $0.42/h)."""
    sql_spot = dict(AWS, x_InstanceType="g5.xlarge", cost=80.0, ConsumedQuantity=100,
                    x_UsageType="USE1-SpotUsage:g5.xlarge", x_Operation="RunInstances:0006:SV001",
                    PricingCategory="Dynamic", ResourceId="i-sql-spot")
    ubuntu_pro_spot = dict(sql_spot, cost=42.0, x_Operation="RunInstances:0g00:SV001", ResourceId="i-ubuntu")
    w = spot.spot_what_if(focus_rows([_sql_server_od(), sql_spot, ubuntu_pro_spot]), None, by=("month",))
    r = _one(w, instance_type="g5.xlarge")
    assert (r.basis, r.operating_system) == ("observed", "unknown (RunInstances:0006)")
    assert float(r.spot_rate) == pytest.approx(0.80) and float(r.saving) == pytest.approx(87.0)


def test_unknown_os_rows_say_why_they_are_priced_flat():
    """The summary action and the report's sentence say that the OS is unknown and no other row's rate was
    borrowed; a row of known OS priced flat keeps the plain note."""
    a = spot.WhatIfAssumptions()
    lin_od = dict(AWS, x_InstanceType="p4d.24xlarge", cost=219.6, ConsumedQuantity=10,
                  x_UsageType="USE1-BoxUsage:p4d.24xlarge", x_Operation="RunInstances", ResourceId="i-p4d")
    w = spot.what_if_actions(spot.spot_what_if(focus_rows([_sql_server_od(), lin_od]), None, a, by=("month",)), a)
    unknown, linux = _one(w, instance_type="g5.xlarge"), _one(w, instance_type="p4d.24xlarge")
    assert unknown.price_note.endswith(spot.UNKNOWN_OS_NOTE) and bool(unknown.assumed)
    assert linux.basis == "flat" and spot.UNKNOWN_OS_NOTE not in linux.price_note
    note = spot.what_if_os_note(w)
    assert note.startswith("100 on-demand hours (1 line(s)) have no operating system in the bill")
    assert note.endswith("100 h on basis 'flat'.")
    assert spot.what_if_os_note(w[w.instance_type == "p4d.24xlarge"]) == ""
    assert spot.what_if_os_note(w.iloc[:0]) == ""


def _mixed_g5():
    """100 h each of g5.12xlarge Linux on demand, Windows on demand and Linux spot, plus 10 h of an Azure VM."""
    g5 = dict(AWS, x_InstanceType="g5.12xlarge", ConsumedQuantity=100, x_UsageType="USE1-BoxUsage:g5.12xlarge")
    return focus_rows([
        dict(g5, cost=567.2, x_Operation="RunInstances", ResourceId="i-lin"),
        dict(g5, cost=788.0, x_Operation="RunInstances:0002", ResourceId="i-win"),
        dict(g5, cost=238.2, x_Operation="RunInstances:SV001", x_UsageType="USE1-SpotUsage:g5.12xlarge",
             PricingCategory="Dynamic", ResourceId="i-lin-spot"),
        dict(AZURE, cost=48.56, ConsumedQuantity=10, x_UsageType="NVadsA10 v5 Series NV36ads A10 v5",
             ResourceId=VM + "az1"),
    ])


def test_rates_and_spot_coverage_split_by_operating_system():
    """Finding 6. Before: `operating_system` was no dimension (ConfigError) and the one on-demand g5.12xlarge rate
    was $6.776/h, a blend of Linux and Windows nobody pays. After: $5.672 Linux and $7.88 Windows, the what-if's
    own on-demand rates; the Azure row reads 'Linux' (its meter does not say Windows: data/vm_operating_systems.csv)."""
    con = _mixed_g5()
    rates = spot.effective_rates(con, by=("instance_type", "operating_system")).df()
    g5 = rates[rates.instance_type == "g5.12xlarge"]
    assert float(_one(g5, operating_system="Linux", pricing="On-demand").rate_per_hour) == pytest.approx(5.672)
    assert float(_one(g5, operating_system="Windows", pricing="On-demand").rate_per_hour) == pytest.approx(7.88)
    assert float(_one(g5, operating_system="Linux", pricing="Spot").rate_per_hour) == pytest.approx(2.382)
    azure = _one(rates, instance_type="Standard_NV36ads_A10_v5")
    assert azure.operating_system == "Linux" and float(azure.rate_per_hour) == pytest.approx(4.856)
    w = spot.spot_what_if(con, spot.load_advisor(), by=("month",))
    w = w[w.instance_type == "g5.12xlarge"]
    for os_name in ("Linux", "Windows"):
        assert float(_one(w, operating_system=os_name).on_demand_rate) == pytest.approx(
            float(_one(g5, operating_system=os_name, pricing="On-demand").rate_per_hour))
    cov = spot.spot_coverage(con, by=("provider", "operating_system")).df()
    assert float(_one(cov, provider="AWS", operating_system="Linux").spot_hours_share) == 0.5
    assert float(_one(cov, provider="AWS", operating_system="Windows").spot_hours_share) == 0
    assert _one(cov, provider="Microsoft", operating_system="Linux").total_hours == 10


def test_operating_system_parameter_is_checked_in_one_line():
    """Finding 7: the report's OS parameter takes the Advisor's names in any case, else stops with one line."""
    assert spot.operating_system_name("windows") == "Windows" and spot.operating_system_name(" Linux ") == "Linux"
    for bad in ("Linux/UNIX", "RHEL", ""):
        with pytest.raises(ConfigError) as e:
            spot.operating_system_name(bad)
        assert "\n" not in str(e.value) and "expected one of Linux, Windows" in str(e.value)


def test_ranking_follows_the_operating_system():
    """The bundled Advisor (2025-06), us-east-1: g5 ranks 15th on Linux (worst band '>20%' for g5.12xlarge) and
    4th on Windows ('<5%'): the notebook passes its OS to the ranking."""
    adv = spot.load_advisor()
    ranks = {o: _one(spot.rank_gpu_families(adv, "us-east-1", o), family="g5")["rank"] for o in spot.OS_NAMES}
    assert ranks == {"Linux": 15, "Windows": 4}
    assert adv.get("g5.12xlarge", "us-east-1", "Linux")["band_label"] == ">20%"
    assert adv.get("g5.12xlarge", "us-east-1", "Windows")["band_label"] == "<5%"


def test_a_missing_price_list_is_one_line(tmp_path):
    """The report's price_table parameter: a path that does not exist gave a FileNotFoundError traceback."""
    with pytest.raises(InputError, match="on-demand price list not found"):
        spot.ondemand_prices(tmp_path / "nope.csv")
