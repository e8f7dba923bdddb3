"""``finops-kit guard`` and the operating system: Windows VMs are guarded, and priced at the Windows price where the
plan says Windows; elsewhere the output says once that it used Linux prices.

Review finding (operating systems): an untagged 8 x H100 ``azurerm_windows_virtual_machine`` passed with exit 0 (the
type was not in data/guard_resource_types.csv) where the same VM as ``azurerm_linux_virtual_machine`` got 3
violations; a Windows g5.12xlarge was priced at the Linux $5.672/h ($4,143.40 a month instead of $5,756.34 at $7.88/h)
and nothing said the price was Linux's. Fixture: tests/fixtures/guard/os_plan.json (make_os_fixture.py wrote it).
Hand figures: 730.5 hours per month; Windows price = Linux price + vCPUs x $0.046 (data/ec2_ondemand_prices.csv);
Spot Advisor g5.xlarge us-east-1 Windows s = 76%.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from finops_kit import guard
from finops_kit.cli import main

from .conftest import FIXTURES, REPO

G = FIXTURES / "guard"
H = Decimal("730.5")
UNTAGGED_H100 = {"name": "vm", "size": "Standard_ND96isr_H100_v5", "priority": "Regular", "location": "eastus",
                 "tags": {}}


def _config(**guardrails) -> dict:
    cfg = yaml.safe_load((REPO / "finops.yaml").read_text())
    cfg["guardrails"] = {"allowed_accelerators": {"prod": ["H100", "A100", "A10G", "T4"], "default": ["T4"]},
                         **guardrails}
    return cfg


def _plan(tmp_path: Path, *changes: dict) -> str:
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": list(changes),
                             "configuration": {"provider_config": {}, "root_module": {}}}))
    return str(p)


def _rc(address: str, after: dict) -> dict:
    type_, name = address.split(".")
    return {"address": address, "mode": "managed", "type": type_, "name": name,
            "change": {"actions": ["create"], "before": None, "after": after, "after_unknown": {"id": True}}}


def _res(result: guard.GuardResult, address: str) -> guard.Resource:
    return next(r for r in result.resources if r.address == address)


def _statuses(result: guard.GuardResult, address: str) -> dict[str, str]:
    return {c.rule: c.status for c in result.checks if c.subject == address}


@pytest.fixture(scope="module")
def os_plan() -> guard.GuardResult:
    return guard.evaluate(G / "os_plan.json", _config())


def test_windows_vm_is_judged_like_the_linux_vm(tmp_path):
    """The review's plan: the same untagged 8 x H100 VM, once Linux and once Windows. Before: Linux 3 violations,
    Windows 0 and exit 0 ('1 other resource(s) of types without AI cost rules were not checked')."""
    plan = _plan(tmp_path, _rc("azurerm_linux_virtual_machine.lin", UNTAGGED_H100),
                 _rc("azurerm_windows_virtual_machine.win", UNTAGGED_H100))
    r = guard.evaluate(plan, _config())
    assert r.ignored == 0
    lin, win = _statuses(r, "azurerm_linux_virtual_machine.lin"), _statuses(r, "azurerm_windows_virtual_machine.win")
    assert win == lin == {"required_tags": "violation", "allowed_accelerators": "violation",
                          "non_production": "violation"}
    assert _res(r, "azurerm_windows_virtual_machine.win").after.accelerators() == 8
    only_win = guard.evaluate(_plan(tmp_path, _rc("azurerm_windows_virtual_machine.win", UNTAGGED_H100)), _config())
    assert only_win.exit_code == 1 and len(only_win.violations) == 3


def test_every_azure_vm_and_scale_set_type_is_guarded(os_plan):
    """Windows and Linux scale sets (instances x accelerators of the sku), the flexible (orchestrated) scale set and
    the legacy VM / scale set resources: counted, judged, and their OS read from the plan."""
    want = {  # address: (accelerators, spot, OS)
        "azurerm_windows_virtual_machine.win": (8, False, "Windows"),
        "azurerm_windows_virtual_machine_scale_set.win": (3, True, "Windows"),     # 3 x A100, priority Spot
        "azurerm_linux_virtual_machine_scale_set.lin": (2, False, "Linux"),
        "azurerm_orchestrated_virtual_machine_scale_set.flex": (1, False, "Windows"),  # os_profile.windows_configuration
        "azurerm_virtual_machine.legacy": (1, False, "Windows"),                   # os_profile_windows_config
        "azurerm_virtual_machine_scale_set.legacy": (2, True, "Linux"),            # sku.capacity 2, priority Low
        "azurerm_kubernetes_cluster_node_pool.win": (1, False, "Windows"),         # os_type Windows
    }
    got = {a: (_res(os_plan, a).after.accelerators(), _res(os_plan, a).after.spot,
               _res(os_plan, a).after.operating_system) for a in want}
    assert got == want
    for a, (_, _, os_name) in want.items():
        assert _res(os_plan, a).cost_after.basis.endswith(f", {os_name})")  # not priced, and the reason names the OS


def test_aws_windows_is_priced_at_the_windows_price(os_plan):
    """Windows where the plan says so: get_password_data (password data exists for Windows only), an AMI the plan
    read (data.aws_ami platform_details), a launch template's AMI through its group, an EKS ami_type."""
    monthly = {a: _res(os_plan, a).cost_after.monthly for a in (
        "aws_instance.win_password", "aws_instance.win_ami", "aws_instance.linux_ami", "aws_instance.unsaid",
        "aws_instance.win_spot", "aws_autoscaling_group.win", "aws_eks_node_group.win")}
    assert monthly == {
        "aws_instance.win_password": Decimal("5756.34"),     # 7.88 x 730.5 (was 4,143.40 at the Linux 5.672)
        "aws_instance.win_ami": Decimal("5756.34"),
        "aws_instance.linux_ami": Decimal("4143.40"),        # 5.672 x 730.5
        "aws_instance.unsaid": Decimal("4143.40"),           # not said: the Linux price, stated once (below)
        "aws_instance.win_spot": Decimal("208.63"),          # 1.19 x (1 - 0.76) x 730.5 = 208.6308 (Windows Advisor s)
        "aws_autoscaling_group.win": Decimal("1738.59"),     # 2 x 1.19 x 730.5
        "aws_eks_node_group.win": Decimal("518.66"),         # 0.71 x 730.5 = 518.655 (ami_type WINDOWS_CORE_2022)
    }
    assert Decimal("7.88") * H == Decimal("5756.340") and Decimal("5.672") * H == Decimal("4143.3960")
    assert "g5.12xlarge us-east-1 Windows on-demand $7.88/h" in _res(os_plan, "aws_instance.win_ami").cost_after.basis
    assert "76% spot savings" in _res(os_plan, "aws_instance.win_spot").cost_after.basis


def test_an_os_without_a_price_is_not_priced_as_linux(os_plan):
    """An AMI billed as 'Windows with SQL Server Standard': the table has no such price; the Linux one would
    understate it, so the resource is excluded from the total with the reason."""
    c = _res(os_plan, "aws_instance.sql_ami").cost_after
    assert (c.monthly, c.status) == (None, "not priced")
    assert "no Windows with SQL Server Standard on-demand price for g5.xlarge in us-east-1" in c.basis
    assert "aws_instance.sql_ami" in [a for a, _ in os_plan.totals()["excluded"]]


def test_linux_assumption_is_stated_once(os_plan, tmp_path, capsys):
    """One line in every format, counting the priced resources whose OS the plan does not say; absent when the
    plan says every OS."""
    assert "Linux prices for 1 resource(s) whose operating system the plan does not say" in os_plan.price_source
    assert main(["guard", str(G / "os_plan.json"), "--config", str(REPO / "finops.yaml")]) == 0
    text = capsys.readouterr().out
    assert text.count("whose operating system the plan does not say") == 1
    assert guard.render_markdown(os_plan).count("Linux prices for 1 resource") == 1  # (s) is escaped
    assert "Linux prices for 1 resource(s)" in json.loads(guard.render_json(os_plan))["price_source"]

    said = {"ami": "ami-0abcdef1234567890", "instance_type": "g5.12xlarge", "get_password_data": True, "tags": {}}
    r = guard.evaluate(_plan(tmp_path, _rc("aws_instance.win", said)), _config(default_region="us-east-1"))
    assert _res(r, "aws_instance.win").cost_after.monthly == Decimal("5756.34")
    assert "operating system" not in r.price_source
    two = guard.evaluate(_plan(tmp_path, _rc("aws_instance.a", {**said, "get_password_data": False}),
                               _rc("aws_instance.b", {**said, "get_password_data": False})),
                         _config(default_region="us-east-1"))
    assert "Linux prices for 2 resource(s)" in two.price_source
    assert {r.cost_after.monthly for r in two.resources} == {Decimal("4143.40")}


def test_gcp_windows_image_is_named(os_plan):
    """GCP is not priced yet; the plan's Windows image (and GKE image_type) is carried to the reason."""
    assert _res(os_plan, "google_compute_instance.win").after.operating_system == "Windows"
    assert _res(os_plan, "google_container_node_pool.win").after.operating_system == "Windows"


def test_unknown_ami_is_not_guessed(tmp_path):
    """An AMI known only after apply: the OS is unknown, never taken from another resource; priced at the Linux
    price and counted in the one line."""
    rc = _rc("aws_instance.x", {"instance_type": "g5.xlarge", "get_password_data": False, "tags": {}})
    rc["change"]["after_unknown"] = {"id": True, "ami": True}
    r = guard.evaluate(_plan(tmp_path, rc), _config(default_region="us-east-1"))
    assert _res(r, "aws_instance.x").after.operating_system is guard.UNKNOWN
    assert _res(r, "aws_instance.x").cost_after.monthly == (Decimal("1.006") * H).quantize(Decimal("0.01"))
    assert "Linux prices for 1 resource(s)" in r.price_source


@pytest.mark.parametrize("prior_state", [
    "x", [], 3, {"values": []}, {"values": {"root_module": {"resources": 7, "child_modules": "m"}}},
    {"values": {"root_module": {"resources": [1, {"mode": "data", "type": "aws_ami", "values": ["ami-1"]},
                                              {"mode": "data", "type": "aws_ami", "values": {"id": 5,
                                                                                               "platform": None}}]}}},
])
def test_a_malformed_prior_state_reads_no_ami(tmp_path, prior_state):
    """The plan is input: a prior_state of another shape is no AMI read, never a traceback."""
    rc = _rc("aws_instance.x", {"ami": "ami-1", "instance_type": "g5.xlarge", "get_password_data": False, "tags": {}})
    p = Path(_plan(tmp_path, rc))
    doc = json.loads(p.read_text())
    doc["prior_state"] = prior_state
    p.write_text(json.dumps(doc))
    r = guard.evaluate(p, _config(default_region="us-east-1"))
    assert _res(r, "aws_instance.x").after.operating_system is None
    assert _res(r, "aws_instance.x").cost_after.monthly == (Decimal("1.006") * H).quantize(Decimal("0.01"))
