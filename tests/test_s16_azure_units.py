"""Azure usage units (review of session 16, findings 2-4): block-priced hour meters, VM licence rows, meter-name
aliases of VM sizes.

Each test builds an Azure Cost Management export shaped like the reviewer's fixtures (/tmp/rev-units/az_fx.py,
az_blocks_fx.py) and checks the figures worked out by hand from it:

* Microsoft's FOCUS conversion (finops-toolkit docs-mslearn/focus/convert.md): ConsumedQuantity = Quantity,
  ConsumedUnit = the distinct unit, PricingQuantity = Quantity / PricingBlockSize. Three ND96asr_v4 VM-days of
  Quantity 24 on '1 Hour', '10 Hours' and '100 Hours' meters are 72 instance-hours and 576 GPU-hours, $27.30 per
  instance-hour and $3.4125 per GPU-hour (the kit said 2,424 and 19,392, $0.0676 per GPU-hour).
* A VM's premium-software row (AdditionalInfo UsageType ComputeHR_SW) carries the VM size but no hours of its own:
  an NC24ads_A100_v4 VM-day with a licence row is 24 GPU-hours at (88.18 + 26.50) / 24 (the kit said 48).
* The meter 'ND96asr A100 v4' is the VM size Standard_ND96asr_v4 (8 A100): 20 spot hours are 160 spot GPU-hours,
  37.7% of the fleet's 424 (the kit said 0.0%).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit import commitments, metrics, spot, units
from finops_kit.datafiles import data_rows
from finops_kit.ingest import ingest
from finops_kit.scope import resolve

HEADER = ["BillingAccountId", "BillingAccountName", "BillingPeriodStartDate", "BillingPeriodEndDate",
          "SubscriptionId", "SubscriptionName", "Date", "ProductName", "MeterCategory", "MeterSubCategory",
          "MeterName", "MeterId", "ConsumedService", "ResourceId", "ResourceLocation", "Quantity", "UnitOfMeasure",
          "UnitPrice", "PayGPrice", "CostInBillingCurrency", "BillingCurrency", "ChargeType", "PricingModel",
          "AdditionalInfo", "ReservationId", "ReservationName", "Frequency"]
SUB = "0b7d3e1a-6c2f-4a58-9e13-5d8b2c7f4a61"
ND = "Standard_ND96asr_v4"
NC = "Standard_NC24ads_A100_v4"


def _row(vm: str, size: str | None, meter: str, sub: str, qty: object, uom: str, cost: str, *,
         cat: str = "Virtual Machines", model: str = "OnDemand", usage_type: str | None = "ComputeHR",
         unit_price: str = "", reservation: str = "", ratio: str | None = None) -> dict[str, str]:
    info: dict[str, object] = {"UsageType": usage_type, "ServiceType": size, "VMName": vm}
    if not usage_type:
        del info["UsageType"]
    if ratio is not None:
        info["RINormalizationRatio"] = ratio
    return {
        "BillingAccountId": "8611537", "BillingAccountName": "Acme", "BillingPeriodStartDate": "11/01/2026",
        "BillingPeriodEndDate": "11/30/2026", "SubscriptionId": SUB, "SubscriptionName": "gpu",
        "Date": "11/05/2026", "ProductName": f"{cat} {sub} - {meter} - US East", "MeterCategory": cat,
        "MeterSubCategory": sub, "MeterName": meter, "MeterId": f"m-{meter}-{uom}", "ConsumedService": "Microsoft.Compute",
        "ResourceId": f"/subscriptions/{SUB}/resourceGroups/rg-gpu/providers/Microsoft.Compute/virtualMachines/{vm}",
        "ResourceLocation": "eastus", "Quantity": str(qty), "UnitOfMeasure": uom, "UnitPrice": unit_price,
        "PayGPrice": unit_price, "CostInBillingCurrency": cost, "BillingCurrency": "USD",
        "ChargeType": "Usage", "PricingModel": model,
        "AdditionalInfo": json.dumps(info) if size else "",
        "ReservationId": reservation, "ReservationName": reservation and "nd-1y", "Frequency": "UsageBased"}


def _ingest(tmp_path: Path, rows: list[dict[str, str]]):
    path = tmp_path / "actual" / "cost_202611.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, HEADER)
        w.writeheader()
        w.writerows(rows)
    con = fk.connect(":memory:")
    ingest([str(path)], con=con, progress=False)
    return con


def _family(con, family: str, pricing: str = "On-demand"):
    acc = metrics.accelerators(con, resolve(con, {}))
    return acc[(acc.family == family) & (acc.pricing == pricing)].iloc[0]


def test_block_priced_hour_meters_count_the_usage_once(tmp_path):
    """Quantity is the usage in hours whatever the meter's pricing block; the block only prices it."""
    con = _ingest(tmp_path, [
        _row("nd-blk1", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "1 Hour", "655.20"),
        _row("nd-blk10", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "10 Hours", "655.20"),
        _row("nd-blk100", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "100 Hours", "655.20"),
    ])
    rows = con.execute("SELECT ConsumedQuantity, ConsumedUnit, PricingQuantity, PricingUnit FROM focus "
                       "ORDER BY PricingQuantity DESC").fetchall()
    assert rows == [(Decimal(24), "Hours", Decimal(24), "Hours"), (Decimal(24), "Hours", Decimal("2.4"), "10 Hours"),
                    (Decimal(24), "Hours", Decimal("0.24"), "100 Hours")]
    fam = _family(con, "NDasr A100 v4")
    assert (fam.instance_hours, fam.accelerator_hours) == (72, 576)  # 3 VMs x 24 h, 8 A100 each
    assert float(fam.rate_per_instance_hour) == pytest.approx(27.30)  # 1965.60 / 72
    assert float(fam.rate_per_accelerator_hour) == pytest.approx(3.4125)  # 1965.60 / 576
    day = commitments.hourly_usage(con, resolve(con, {}), closed_only=False)
    assert float(day.instances.sum()) == pytest.approx(3)  # 72 instance-hours / 24, not 101


def test_block_priced_reservation_hours_and_contracted_cost(tmp_path):
    """A reservation's CommitmentDiscountQuantity is the hours used (x the flexibility ratio), and a price per
    '100 Hours' prices Quantity / 100 (Microsoft: ContractedCost = UnitPrice x Quantity / PricingBlockSize)."""
    con = _ingest(tmp_path, [
        _row("nd-ri", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "100 Hours", "0", model="Reservation",
             reservation="/providers/Microsoft.Capacity/reservationOrders/o/reservations/r1", ratio="2"),
        _row("nd-od", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "100 Hours", "655.20", unit_price="2730"),
    ])
    got = {r[0]: r[1:] for r in con.execute("SELECT ResourceName, CommitmentDiscountQuantity, CommitmentDiscountUnit, "
                                            "ContractedCost, ContractedUnitPrice FROM focus").fetchall()}
    assert got["nd-ri"][:2] == (Decimal(48), "Hours")  # 24 h x ratio 2, not 4,800
    assert got["nd-od"][2:] == (Decimal("655.2"), Decimal(2730))  # 2730 per 100 h x 0.24, not 65,520


def test_a_vm_licence_row_is_no_second_instance(tmp_path):
    """ComputeHR_SW carries the VM size in ServiceType: its cost is the VM's, its hours are not counted again."""
    con = _ingest(tmp_path, [
        _row("nc-win-01", NC, "NC24ads A100 v4", "NCadsA100v4 Series Windows", 24, "1 Hour", "88.18"),
        _row("nc-win-01", NC, "24 vCPU VM License", "Windows Server", 24, "1 Hour", "26.50",
             cat="Virtual Machines Licenses", usage_type="ComputeHR_SW"),
    ])
    fam = _family(con, "NCads A100 v4")
    assert (fam.instance_hours, fam.accelerator_hours) == (24, 24)
    assert float(fam.cost) == pytest.approx(114.68)  # both rows: the licence is part of the VM's cost
    assert float(fam.rate_per_accelerator_hour) == pytest.approx(114.68 / 24)  # $4.78, not $2.39
    roles = dict(con.execute(f"SELECT x_Operation, _unit_role FROM ({units.row_sql()})").fetchall())
    assert roles == {"ComputeHR": "instance", "ComputeHR_SW": "license"}


def test_a_licence_meter_without_usage_type_is_a_licence(tmp_path):
    """A 'Virtual Machines Licenses' row with the VM size but no UsageType is known by its meter name."""
    con = _ingest(tmp_path, [
        _row("nc-rhel-01", NC, "NC24ads A100 v4", "NCadsA100v4 Series", 24, "1 Hour", "88.18", usage_type=None),
        _row("nc-rhel-01", NC, "1-4 vCPU VM License", "Red Hat Enterprise Linux", 24, "1 Hour", "2.16",
             cat="Virtual Machines Licenses", usage_type=None),
    ])
    fam = _family(con, "NCads A100 v4")
    assert (fam.instance_hours, fam.accelerator_hours, float(fam.cost)) == (24, 24, pytest.approx(90.34))


def test_meter_name_nd96asr_a100_v4_is_the_vm_size_nd96asr_v4(tmp_path):
    """The reviewer's fleet: 160 of its 424 GPU-hours ran on spot, found from the meter name alone."""
    con = _ingest(tmp_path, [
        _row("nd-train-01", ND, "ND96asr A100 v4", "NDasrA100v4 Series", 24, "1 Hour", "655.20"),
        _row("nc-win-01", NC, "NC24ads A100 v4", "NCadsA100v4 Series Windows", 24, "1 Hour", "88.18"),
        _row("nc-win-01", NC, "24 vCPU VM License", "Windows Server", 24, "1 Hour", "26.50",
             cat="Virtual Machines Licenses", usage_type="ComputeHR_SW"),
        _row("nd-spot-01", None, "ND96asr A100 v4 Spot", "NDasrA100v4 Series", 20, "1 Hour", "131.04",
             model="Spot"),
        _row("nc-blk-01", NC, "NC24ads A100 v4", "NCadsA100v4 Series", 24, "10 Hours", "88.18"),
        _row("nc-meter-01", None, "NC24ads A100 v4", "NCadsA100v4 Series", 24, "1 Hour", "88.18"),
    ])
    fam = _family(con, "NDasr A100 v4", "Spot")
    assert (fam.instance_hours, fam.accelerator_hours) == (20, 160)
    share = metrics.spot_share(con, resolve(con, {})).iloc[0]
    assert (share.accelerator_hours, share.spot_accelerator_hours) == (424, 160)  # 192 + 24 + 160 + 24 + 24
    assert float(share.spot_share) == pytest.approx(160 / 424)  # 37.7%, not 0.0%
    cov = spot.spot_coverage(con, by=()).df().iloc[0]
    assert float(cov.spot_accelerator_hours_share) == pytest.approx(round(160 / 424, 4))


def test_azure_meter_aliases_repeat_their_vm_sizes():
    """An alias row (a meter spelling) has the family, accelerators and vCPUs of the VM size it names."""
    rows = {units.type_key(r["instance_type"]): r for r in data_rows("machine_types.csv") if r["provider"] == "Microsoft"}
    aliases = {"nd96asra100v4": "nd96asrv4"}
    for alias, size in aliases.items():
        a, s = dict(rows[alias]), dict(rows[size])
        assert a.pop("instance_type") != s.pop("instance_type") and a == s


#: Azure meter names (Retail Prices API skuName / cost-export MeterName) of the catalog's GPU VM sizes, as public
#: code maps them (Standard_ND96asr_v4 -> 'ND96asr A100 v4', Standard_ND96amsr_A100_v4 -> 'ND96amsr A100 v4',
#: Standard_ND96isr_H100_v5 -> 'ND96isr H100 v5', Standard_NC24ads_A100_v4 -> 'NC24ads A100 v4',
#: Standard_NV72ads_A10_v5 -> 'NV72ads A10 v5') and the reviewer's fixtures: (MeterSubCategory, MeterName, GPUs).
METERS = [("NDasrA100v4 Series", "ND96asr A100 v4 Spot", 8), ("NDamsrA100v4 Series", "ND96amsr A100 v4", 8),
          ("NDisrH100v5 Series", "ND96isr H100 v5", 8), ("NDisrH200v5 Series", "ND96isr H200 v5 Low Priority", 8),
          ("NCadsA100v4 Series", "NC24ads A100 v4", 1), ("NCadsA100v4 Series Windows", "NC96ads A100 v4", 4),
          ("NVadsA10v5 Series", "NV72ads A10 v5", 2), ("NCasT4v3 Series", "NC64as T4 v3", 4),
          ("NCSv3 Series", "NC24rs v3", 4), ("NCadsH100v5 Series", "NC80adis H100 v5 Spot", 2),
          ("NDisrMI300Xv5 Series", "ND96isr MI300X v5", 8)]


def test_azure_gpu_meter_names_find_their_vm_size_in_the_catalog():
    """Every listed meter spelling, on a row without AdditionalInfo, is a catalog size with its GPUs."""
    con = fk.connect(":memory:")
    values = ", ".join(f"('Microsoft', NULL, '{sub} {meter}')" for sub, meter, _ in METERS)
    got = con.execute(f"""SELECT _t.x_UsageType, _cat._c_accelerators
        FROM (SELECT *, {units.type_key_sql(units.instance_type_sql())} AS _k
              FROM (VALUES {values}) _v(ProviderName, x_InstanceType, x_UsageType)) _t
        LEFT JOIN {units.catalog_values()} ON _cat._c_type = _t._k""").fetchall()
    assert dict(got) == {f"{sub} {meter}": gpus for sub, meter, gpus in METERS}


def test_pricing_quantity_stays_exact(tmp_path):
    """Quantity / block is a decimal product, not a DOUBLE division: no digit of a 20-digit quantity moves."""
    q = "12345678.123456789012"
    con = _ingest(tmp_path, [_row("vm-1", ND, "ND96asr A100 v4", "NDasrA100v4 Series", q, "1 Hour", "1"),
                             _row("vm-2", ND, "ND96asr A100 v4", "NDasrA100v4 Series", q, "100 Hours", "1")])
    got = dict(con.execute("SELECT ResourceName, PricingQuantity FROM focus").fetchall())
    assert got == {"vm-1": Decimal(q), "vm-2": Decimal("123456.781234567890")}
