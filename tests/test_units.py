"""Usage units (finops_kit.units): instance-, accelerator- and vCPU-hours from rows shaped like the real exports.

GCP rows go through the GCP source as a BigQuery export (NDJSON): a VM is billed as separate vCPU (seconds), RAM
(byte-seconds) and GPU (seconds) SKUs, with the machine type in ``system_labels``. AWS and Azure rows are FOCUS
rows as their sources write them. Every expected number is worked out by hand from the prices below.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import finops_kit as fk
from finops_kit import spot, tagging, units
from finops_kit.ingest import ingest
from finops_kit.testing import focus_rows

GIB = 1 << 30
DAY = "2026-10-05"
# us-central1 list prices ($/h per vCPU, per GiB, per GPU); a2-highgpu-8g = 96 vCPU, 680 GiB, 8 x A100 40GB
CORE, RAM, A100 = Decimal("0.031611"), Decimal("0.004237"), Decimal("2.933908")
A2_HOUR = 96 * CORE + 680 * RAM + 8 * A100  # 29.387080 $/instance-hour on demand
SPOT = Decimal("0.35")


def _gcp(sku: str, unit: str, amount: float, cost: Decimal, *, machine: str | None, resource: str | None,
         credits: list[dict] | None = None, hours: float = 24) -> dict:
    pricing_unit = {"seconds": "hour", "byte-seconds": "gibibyte hour"}.get(unit, unit)
    return {
        "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "SKU-" + str(abs(hash(sku)) % 10000), "description": sku},
        "usage_start_time": f"{DAY} 00:00:00 UTC", "usage_end_time": "2026-10-06 00:00:00 UTC",
        "project": {"id": "acme-ml", "number": "1", "name": "ML", "labels": []},
        "labels": [{"key": "team", "value": "vision"}],
        "system_labels": [{"key": "compute.googleapis.com/machine_spec", "value": machine}] if machine else [],
        "location": {"location": "us-central1-a", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "resource": {"name": resource, "global_name": f"//compute.googleapis.com/{resource}" if resource else None},
        "cost": float(cost), "currency": "USD",
        "usage": {"amount": amount, "unit": unit, "amount_in_pricing_units": hours, "pricing_unit": pricing_unit},
        "credits": credits or [], "invoice": {"month": "202610"}, "cost_type": "regular",
    }


def _vm(name: str, machine: str, hours: int, comps: list[tuple[str, str, int, Decimal]], factor: Decimal = Decimal(1),
        prefix: str = "", gpu_credit: Decimal | None = None) -> list[dict]:
    """One VM-day as GCP bills it: one row per SKU component, usage = count x seconds (RAM: x GiB x seconds)."""
    rows = []
    for sku, kind, count, price in comps:
        cost = count * hours * price * factor
        amount = count * hours * 3600 * (GIB if kind == "ram" else 1)
        credits = []
        if kind == "gpu" and gpu_credit is not None:
            credits = [{"name": "Committed use discount: A100 GPU", "amount": float(gpu_credit),
                        "full_name": "Committed use discount: A100 GPU (1 year)", "id": "cud-a100",
                        "type": "COMMITTED_USAGE_DISCOUNT"}]
        rows.append(_gcp(prefix + sku, "byte-seconds" if kind == "ram" else "seconds", amount, cost, machine=machine,
                         resource=name, credits=credits, hours=count * hours))
    return rows


A2 = [("A2 Instance Core running in Americas", "core", 96, CORE),
      ("A2 Instance Ram running in Americas", "ram", 680, RAM),
      ("Nvidia Tesla A100 GPU running in Americas", "gpu", 8, A100)]
N1_T4 = [("N1 Predefined Instance Core running in Americas", "core", 8, Decimal("0.031611")),
         ("N1 Predefined Instance Ram running in Americas", "ram", 30, Decimal("0.004237")),
         ("Nvidia Tesla T4 GPU running in Americas", "gpu", 1, Decimal("0.35")),
         # mixed OS: a Windows licence billed per vCPU-second, and the VM's external IP in seconds: no hours
         ("Licensing Fee for Windows Server 2022 Datacenter Edition (CPU cost)", "core", 8, Decimal("0.046")),
         ("External IP Charge on a Standard VM", "ip", 1, Decimal("0.005"))]
TPU = [("TPU v5 Lite PodSlice chip running in Americas", "tpu", 4, Decimal("1.2"))]
CUD_CREDIT = -192 * A100  # the CUD covers the VM's 8 GPUs for 24 h ...
CUD_FEE = 192 * Decimal("1.848362")  # ... at the commitment price; the GCP source amortizes the fee into the credit


def _export(path) -> None:
    rows = (_vm("vm-od", "a2-highgpu-8g", 10, A2)
            + _vm("vm-spot", "a2-highgpu-8g", 20, A2, factor=SPOT, prefix="Spot Preemptible ")
            + _vm("vm-cud", "a2-highgpu-8g", 24, A2, gpu_credit=CUD_CREDIT)
            + _vm("vm-t4", "n1-standard-8", 24, N1_T4)
            + _vm("tpu-1", "ct5lp-hightpu-4t", 5, TPU)
            # the commitment's own fee: a Purchase, never hours
            + [_gcp("Commitment v1: A100 GPU in Americas for 1 Year", "seconds", 8 * 86400.0, CUD_FEE,
                    machine=None, resource=None, hours=192)])
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def _aws_azure() -> list[dict]:
    aws = dict(ProviderName="AWS", RegionId="us-east-1", ConsumedUnit="Hours", x_AiWorkload="Accelerated compute",
               day=DAY)
    az = dict(aws, ProviderName="Microsoft", RegionId="eastus", ServiceName="Virtual Machines")
    return [
        # Trainium on spot: 10 instance-hours = 160 Trainium-hours
        dict(aws, cost=45.15, ConsumedQuantity=10, x_InstanceType="trn1.32xlarge", PricingCategory="Dynamic",
             x_UsageType="USE1-SpotUsage:trn1.32xlarge", ResourceId="i-trn"),
        # mixed OS: p3.2xlarge Linux and Windows hours of one type; each hour counts once
        dict(aws, cost=30.6, ConsumedQuantity=10, x_InstanceType="p3.2xlarge", x_UsageType="BoxUsage:p3.2xlarge",
             x_Operation="RunInstances", ResourceId="i-lin"),
        dict(aws, cost=39.8, ConsumedQuantity=10, x_InstanceType="p3.2xlarge", x_UsageType="BoxUsage:p3.2xlarge",
             x_Operation="RunInstances:0002", ResourceId="i-win"),
        # reservation fee (Purchase) and an unused reservation: cost, never hours
        dict(aws, cost=100, ConsumedQuantity=24, x_InstanceType="g5.12xlarge", ChargeCategory="Purchase",
             x_UsageType="HeavyUsage:g5.12xlarge", PricingCategory="Committed"),
        dict(aws, cost=20, ConsumedQuantity=4, x_InstanceType="g5.12xlarge", x_UsageType="HeavyUsage:g5.12xlarge",
             PricingCategory="Committed", CommitmentDiscountId="ri-1", CommitmentDiscountStatus="Unused"),
        # Azure: an A100 VM meter (1 GPU per NC24ads_A100_v4) and an unused reservation row without a VM size
        dict(az, cost=36.73, ConsumedQuantity=10, x_InstanceType="Standard_NC24ads_A100_v4",
             x_UsageType="NCads A100 v4 Series NC24ads A100 v4", ResourceId="/subscriptions/s/vm1"),
        # an export without the VM size (no AdditionalInfo): the meter names it; a Windows meter counts hours too
        dict(az, cost=22.4, ConsumedQuantity=5, x_InstanceType=None, ResourceId="/subscriptions/s/vm2",
             x_UsageType="NCads A100 v4 Series Windows NC24ads A100 v4"),
        dict(az, cost=10.8, ConsumedQuantity=None, ConsumedUnit=None, x_InstanceType=None,
             ServiceName="Azure Reservations", x_UsageType="NC8as T4 v3", PricingCategory="Committed",
             CommitmentDiscountId="res-1", CommitmentDiscountStatus="Unused"),
    ]


@pytest.fixture(scope="module")
def bill(tmp_path_factory):
    con = fk.connect(":memory:")
    path = tmp_path_factory.mktemp("gcp") / "export.jsonl"
    _export(path)
    ingest([str(path)], con=con, progress=False)
    return focus_rows(_aws_azure(), con)


def _usage(con, by: str) -> dict:
    rows = con.execute(f"""
        SELECT {by}, sum(EffectiveCost), sum(instance_hours), sum(accelerator_hours), sum(vcpu_hours),
               {units.rate_sql()}, {units.rate_sql("accelerator_hours", "has_accelerator_hours")}
        FROM ({units.accelerated_usage_sql()}) GROUP BY ALL""").fetchall()
    return {r[0] if len(r) == 7 else r[:-6]: r[-6:] for r in rows}


def test_gcp_vm_components_give_instance_hours_from_the_machine_type(bill):
    u = _usage(bill, "instance_type, pricing")
    cost, ih, ah, vh, rate, arate = u[("a2-highgpu-8g", "On-demand")]
    # 10 instance-hours, not 10 + 960 vCPU-hours + 80 GPU-hours; the RAM row's byte-seconds count nothing
    assert (ih, ah, vh) == (pytest.approx(10), pytest.approx(80), pytest.approx(960))
    assert cost == 10 * A2_HOUR and rate == round(A2_HOUR, 6)  # the list price of an a2-highgpu-8g hour
    assert arate == round(A2_HOUR / 8, 6)
    s = u[("a2-highgpu-8g", "Spot")]
    assert s[1] == pytest.approx(20) and s[4] == round(A2_HOUR * SPOT, 6) and s[4] < rate
    # the VM whose GPUs run under the CUD is one committed instance: its vCPU and RAM rows and the credit count
    c = u[("a2-highgpu-8g", "Committed")]
    assert c[1] == pytest.approx(24) and c[0] == 24 * A2_HOUR + CUD_CREDIT + CUD_FEE
    assert c[4] == round(A2_HOUR - 8 * A100 + 8 * Decimal("1.848362"), 6) and s[4] < c[4] < rate
    # N1 with an attached T4: instance-hours from vCPU-hours / 8 vCPUs; licence and IP rows are cost, not hours
    t4 = u[("n1-standard-8", "On-demand")]
    assert (t4[1], t4[2], t4[3]) == (pytest.approx(24), pytest.approx(24), pytest.approx(192))
    assert t4[0] == 24 * (8 * Decimal("0.031611") + 30 * Decimal("0.004237") + Decimal("0.35") + 8 * Decimal("0.046")
                          + Decimal("0.005"))
    # TPU VM: chip-seconds -> chip-hours, instance-hours = chip-hours / 4 chips
    tpu = u[("ct5lp-hightpu-4t", "On-demand")]
    assert (tpu[1], tpu[2]) == (pytest.approx(5), pytest.approx(20))


def test_aws_and_azure_instances_fees_and_unused_reservations(bill):
    u = _usage(bill, "instance_type, pricing")
    assert u[("trn1.32xlarge", "Spot")][1:3] == (pytest.approx(10), pytest.approx(160))  # 16 Trainium chips
    p3 = u[("p3.2xlarge", "On-demand")]
    assert p3[1:3] == (pytest.approx(20), pytest.approx(20))  # Linux + Windows hours, one V100 each
    assert u[("Standard_NC24ads_A100_v4", "On-demand")][1:3] == (pytest.approx(10), pytest.approx(10))
    assert u[("NC24ads A100 v4", "On-demand")][1:4] == (pytest.approx(5), pytest.approx(5), pytest.approx(120))
    # the unused reservations are committed cost without any hours (the fee row is not usage at all)
    rows = bill.execute(f"""SELECT ProviderName, sum(EffectiveCost), sum(instance_hours), sum(accelerator_hours)
                            FROM ({units.accelerated_usage_sql()}) WHERE CommitmentDiscountStatus = 'Unused'
                            GROUP BY 1 ORDER BY 1""").fetchall()
    assert rows == [("AWS", Decimal(20), None, None), ("Microsoft", Decimal("10.8"), None, None)]
    fam = tagging.accelerator_families(bill)
    assert not fam.family.isna().any()
    assert not fam.family.str.contains("NC8as|Reservation", case=False).any()  # not a "family"
    assert set(fam.currency) == {"USD"}


def test_rates_agree_across_reports(bill):
    fam = tagging.accelerator_families(bill).set_index(["provider", "family"])
    rates = spot.effective_rates(bill, by=("provider", "instance_family")).df()
    for (provider, family), f in fam.iterrows():
        r = rates[(rates.provider == provider) & (rates.instance_family == family)]
        if r.hours.notna().any():
            # the cost the rate divides: the group's cost less the instances without hours (unused commitments)
            per_hour = (float((r.cost.fillna(0) - r.cost_without_hours).sum()) / float(r.hours.fillna(0).sum()))
            assert f.cost_per_hour == pytest.approx(per_hour, rel=1e-6), family
    a2 = fam.loc[("Google Cloud", "a2-highgpu")]
    assert a2.instance_hours == pytest.approx(54) and a2.accelerator_hours == pytest.approx(432)
    assert a2.cost_per_accelerator_hour == pytest.approx(a2.cost_per_hour / 8)
    # spot share of accelerator-hours: 160 of the 432 A100-hours
    assert a2.spot_share == pytest.approx(100 * 160 / 432)


def test_spot_coverage_counts_instance_and_accelerator_hours(bill):
    cov = spot.spot_coverage(bill, by=("provider",)).df().set_index("provider")
    g = cov.loc["Google Cloud"]
    # spot: 20 a2 hours (160 GPU-h); all: 10 + 20 + 24 a2, 24 n1, 5 TPU instance-hours
    assert float(g.spot_hours) == pytest.approx(20) and float(g.total_hours) == pytest.approx(83)
    assert float(g.total_accelerator_hours) == pytest.approx(80 + 160 + 192 + 24 + 20)
    assert g.spot_accelerator_hours_share == pytest.approx(round(160 / 476, 4))
    w = spot.spot_what_if(bill, None, by=())
    a2 = w[w.instance_type == "a2-highgpu-8g"].iloc[0]
    # Compute Engine prices compute the same for every OS (licences are rows of their own): the bill's own a2 spot
    # rate prices the on-demand a2 hours (data/vm_operating_systems.csv)
    assert (a2.basis, a2.operating_system) == ("observed", "any (licence billed apart)") and a2.saving > 0
    rates = spot.effective_rates(bill, by=("instance_type",)).df().set_index(["instance_type", "pricing"])
    # spot is cheaper per instance-hour than on demand
    assert rates.loc[("a2-highgpu-8g", "Spot"), "rate_per_hour"] < rates.loc[("a2-highgpu-8g", "On-demand"),
                                                                               "rate_per_hour"]
    assert float(a2.on_demand_hours) == pytest.approx(10)


def test_hour_units_never_from_fees_or_unknown_units():
    con = focus_rows([
        dict(day=DAY, cost=5, ConsumedQuantity=3, ConsumedUnit="GB-Months", x_InstanceType="p4d.24xlarge",
             x_AiWorkload="Accelerated compute", x_UsageType="BoxUsage:p4d.24xlarge"),
        dict(day=DAY, cost=5, ConsumedQuantity=2, ConsumedUnit="Hours", x_InstanceType="p4d.24xlarge",
             x_AiWorkload="Accelerated compute", x_UsageType="EBSOptimized:p4d.24xlarge"),
        dict(day=DAY, cost=5, ConsumedQuantity=120, ConsumedUnit="minutes", x_InstanceType="p4d.24xlarge",
             x_AiWorkload="Accelerated compute", x_UsageType="BoxUsage:p4d.24xlarge"),
    ])
    got = con.execute(f"SELECT sum(instance_hours), sum(accelerator_hours), count(*) "
                      f"FROM ({units.accelerated_usage_sql()})").fetchone()
    assert got == (pytest.approx(2), pytest.approx(16), 3)  # only the 120 minutes of BoxUsage


def test_sample_gcp_gpu_vms_per_component_and_rated_near_list(sample_warehouse):
    """The committed sample bills GCP GPU VMs as real exports do, and the kit rates them near the list price."""
    con = fk.connect(sample_warehouse, read_only=True)
    vm_days = con.execute("""
        SELECT ResourceId, ChargePeriodStart,
               sum(ConsumedQuantity) FILTER (WHERE x_UsageType LIKE '%A2 Instance Core%') AS core_s,
               sum(ConsumedQuantity) FILTER (WHERE x_UsageType LIKE '%A2 Instance Ram%') AS ram_byte_s,
               sum(ConsumedQuantity) FILTER (WHERE x_UsageType LIKE '%A100 GPU%') AS gpu_s,
               string_agg(DISTINCT ConsumedUnit, ',' ORDER BY ConsumedUnit) AS units
        FROM focus WHERE x_InstanceType = 'a2-highgpu-8g' AND ChargeCategory = 'Usage' GROUP BY ALL""").fetchall()
    assert len(vm_days) > 300
    for _rid, _day, core_s, ram_byte_s, gpu_s, unit_names in vm_days:
        seconds = float(gpu_s) / 8  # one VM's seconds that day: 96 vCPU, 680 GiB and 8 A100 each
        assert float(core_s) / 96 == pytest.approx(seconds) and float(ram_byte_s) / (680 * GIB) == pytest.approx(seconds)
        assert 0 < seconds <= 86400 and unit_names == "B-Seconds,Seconds"
    rates = spot.effective_rates(con, by=("provider", "instance_type")).df()
    a2 = rates[rates.instance_type == "a2-highgpu-8g"].set_index("pricing")
    od, sp = float(a2.loc["On-demand", "rate_per_hour"]), float(a2.loc["Spot", "rate_per_hour"])
    assert 0.9 * float(A2_HOUR) <= od <= 1.1 * float(A2_HOUR) and sp < od  # list $29.39/h; spot below it
    fam = spot.spot_coverage(con, by=("provider", "instance_family")).df()
    a2_share = fam[fam.instance_family == "a2-highgpu"].iloc[0]
    assert a2_share.spot_hours_share == a2_share.spot_accelerator_hours_share  # 8 GPUs per instance either way
    what_if = spot.spot_what_if(con, by=())
    assert (what_if[what_if.instance_type == "a2-highgpu-8g"].saving > 0).all()
    con.close()


def test_total_of_a_double_measure_does_not_depend_on_the_order_of_the_rows():
    """A plain DOUBLE sum differs in its last digits with the order rows are added in (threads, dataset files,
    Spark partitions); units.total gives the same figure for every order."""
    import duckdb

    from finops_kit import units

    con = duckdb.connect()
    con.execute("SET threads = 1")  # one thread: rows are added in the order given
    orders = ("(0.1::DOUBLE), (0.2::DOUBLE), (0.3::DOUBLE)", "(0.3::DOUBLE), (0.2::DOUBLE), (0.1::DOUBLE)")
    plain = {con.execute(f"SELECT sum(x) FROM (VALUES {o}) t(x)").fetchall()[0][0] for o in orders}
    exact = {con.execute(f"SELECT {units.total('x')} FROM (VALUES {o}) t(x)").fetchall()[0][0] for o in orders}
    assert len(plain) == 2  # 0.6000000000000001 and 0.6
    assert exact == {0.6}
    assert con.execute(f"SELECT {units.total('x', 'x > 0.15')} FROM (VALUES {orders[0]}) t(x)").fetchall() \
        == [(0.5,)]


def test_an_instances_pricing_class_does_not_depend_on_the_order_of_its_rows(tmp_path):
    """A GCP VM recreated as spot under the same name bills two GPU rows of one role in one day: on demand (10 h,
    $234.71) and spot (14 h, $115.01), and vCPU and RAM rows of both. Each vCPU and RAM row keeps its own class
    when the VM has a GPU row of that class (the spot VM's cores are spot, the on-demand VM's on demand), from
    either export order; a class without a GPU row of its own takes that of the GPU row with the larger
    EffectiveCost (see the next test). Before: every vCPU and RAM row took the larger GPU row's class, so the
    spot VM's $28.99 of cores and RAM were counted as on-demand spend; ranked by role only, the pick even followed
    the order the rows were stored in."""
    rows = (_vm("vm-mixed", "a2-highgpu-8g", 10, A2)
            + _vm("vm-mixed", "a2-highgpu-8g", 14, A2, factor=SPOT, prefix="Spot Preemptible "))
    got = []
    for name, ordered in (("forward", rows), ("backward", rows[::-1])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in ordered) + "\n")
        con = fk.connect(":memory:")
        con.execute("SET threads = 1")  # one thread scans in storage order: the two orders really differ
        ingest([str(path)], con=con, progress=False)
        got.append(con.execute(f"""SELECT unit_role, pricing, count(*), sum(EffectiveCost), min(instance_type)
                                   FROM ({units.accelerated_usage_sql()}) GROUP BY ALL ORDER BY ALL""").fetchall())
        con.close()
    spot_cores = 96 * 14 * CORE * SPOT
    spot_ram = 680 * 14 * RAM * SPOT
    assert got[0] == got[1]
    assert [(r, p, n) for r, p, n, _, _ in got[0]] == [
        ("accelerator", "On-demand", 1), ("accelerator", "Spot", 1), ("memory", "On-demand", 1),
        ("memory", "Spot", 1), ("vcpu", "On-demand", 1), ("vcpu", "Spot", 1)]
    cost = {(r, p): c for r, p, _, c, _ in got[0]}
    assert abs(cost[("vcpu", "Spot")] - spot_cores) < Decimal("0.01")
    assert abs(cost[("memory", "Spot")] - spot_ram) < Decimal("0.01")
    assert {t for *_, t in got[0]} == {"a2-highgpu-8g"}


def test_a_row_whose_class_has_no_instance_row_takes_the_top_one(tmp_path):
    """The fallback of the rule above: a VM-day whose GPU is billed on demand while a committed-use discount
    covers its cores (the vCPU rows say Committed, no GPU row does) stays one on-demand instance -- its vCPU and
    RAM rows take the GPU row's class, as the instance's hours do."""
    rows = _vm("vm-cud", "a2-highgpu-8g", 24, A2)
    core = next(r for r in rows if "Core" in r["sku"]["description"])
    core["credits"] = [{"name": "Committed use discount: A2 Cores", "amount": -core["cost"], "id": "cud-a2-cores",
                        "full_name": "Committed use discount: A2 Cores (1 year)", "type": "COMMITTED_USAGE_DISCOUNT"}]
    path = tmp_path / "cud.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    con = fk.connect(":memory:")
    ingest([str(path)], con=con, progress=False)
    classes = con.execute("SELECT DISTINCT PricingCategory FROM focus WHERE ChargeCategory = 'Usage' "
                          "ORDER BY 1").fetchall()
    got = con.execute(f"""SELECT unit_role, ChargeCategory, pricing, count(*) FROM ({units.accelerated_usage_sql()})
                          GROUP BY ALL ORDER BY ALL""").fetchall()
    con.close()
    assert classes == [("Committed",), ("Standard",)]  # the cores really are committed usage
    assert got == [("accelerator", "Usage", "On-demand", 1), ("memory", "Usage", "On-demand", 1),
                   ("vcpu", "Credit", "On-demand", 1), ("vcpu", "Usage", "On-demand", 1)]


def test_accelerated_compute_is_one_figure_row_class_and_instance_usage(tmp_path):
    """'Accelerated compute' is one answer: the rows classed so (x_AiWorkload) and the accelerated instances'
    usage (:func:`units.accelerated_usage_sql`: a GCP VM's GPU, vCPU, RAM, licence and IP rows and their credits)
    add up to the same dollars.

    A review of the demo found three totals for the label in three reports: by row class $2,401,567.40, by
    instance $2,408,961.24 (the N1 cores and RAM of GPU VMs, $6,913.84 net of credits, have no GPU in their SKU),
    and a GPU adjustment (-$480) counted by one and not the other. The ingest now classes the other rows of an
    accelerated instance (same resource and charge period, Usage or Credit) as accelerated, and a tax or
    adjustment line as no AI workload. This test failed before."""
    con = fk.connect(":memory:")
    path = tmp_path / "export.jsonl"
    _export(path)
    ingest([str(path)], con=con, progress=False)
    by_class = con.execute("SELECT sum(EffectiveCost) FROM focus WHERE x_AiWorkload = 'Accelerated compute' "
                           "AND ChargeCategory IN ('Usage', 'Credit')").fetchone()[0]
    by_instance = con.execute(f"SELECT sum(EffectiveCost) FROM ({units.accelerated_usage_sql()})").fetchone()[0]
    assert by_class == by_instance
    # the T4 VM's N1 cores, RAM, licence and IP rows are its accelerated compute; the commitment fee (a Purchase of
    # A100 capacity) keeps its class by SKU
    t4 = dict(con.execute("SELECT x_UsageType, x_AiWorkload FROM focus WHERE ResourceName = 'vm-t4' "
                          "OR ResourceId LIKE '%vm-t4'").fetchall())
    assert t4 and set(t4.values()) == {"Accelerated compute"}, t4


def test_the_other_rows_of_an_accelerated_instance_are_accelerated_compute():
    """The ingest's completion step: a VM's rows (Usage or Credit) in a charge period where one of its rows is
    accelerated compute are accelerated compute too; another VM's and another day's are not; running it twice
    changes nothing."""
    from finops_kit.classify import complete_accelerated_instances

    con = focus_rows([
        {"cost": 100, "day": "2026-01-05", "ProviderName": "Google Cloud", "ResourceId": "vm-1",
         "ChargeCategory": "Usage", "x_AiWorkload": "Accelerated compute"},
        {"cost": 5, "day": "2026-01-05", "ProviderName": "Google Cloud", "ResourceId": "vm-1",
         "ChargeCategory": "Usage", "x_AiWorkload": None},  # the GPU VM's cores
        {"cost": -2, "day": "2026-01-05", "ProviderName": "Google Cloud", "ResourceId": "vm-1",
         "ChargeCategory": "Credit", "x_AiWorkload": None},  # a sustained-use credit on them
        {"cost": 4, "day": "2026-01-06", "ProviderName": "Google Cloud", "ResourceId": "vm-1",
         "ChargeCategory": "Usage", "x_AiWorkload": None},  # the next day, GPU detached
        {"cost": 7, "day": "2026-01-05", "ProviderName": "Google Cloud", "ResourceId": "vm-2",
         "ChargeCategory": "Usage", "x_AiWorkload": None},  # another VM, no GPU
        {"cost": 3, "day": "2026-01-05", "ProviderName": "Google Cloud", "ResourceId": "vm-1",
         "ChargeCategory": "Tax", "x_AiWorkload": None},  # never usage of the instance
    ])
    assert complete_accelerated_instances(con) == 2
    got = con.execute("SELECT ResourceId, ChargeCategory, EffectiveCost::INT, x_AiWorkload FROM focus "
                      "ORDER BY ResourceId, ChargePeriodStart, ChargeCategory, EffectiveCost").fetchall()
    assert got == [("vm-1", "Credit", -2, "Accelerated compute"), ("vm-1", "Tax", 3, None),
                   ("vm-1", "Usage", 5, "Accelerated compute"), ("vm-1", "Usage", 100, "Accelerated compute"),
                   ("vm-1", "Usage", 4, None), ("vm-2", "Usage", 7, None)]
    assert complete_accelerated_instances(con) == 0


# ------------------------------------------------------------------- AWS Data Exports FOCUS: type in x_UsageType
_AWS_FOCUS_HEADER = ("BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,"
                     "ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,ChargePeriodEnd,ChargePeriodStart,"
                     "ConsumedQuantity,ConsumedUnit,ContractedCost,EffectiveCost,InvoiceIssuerName,ListCost,"
                     "PricingCategory,PricingQuantity,PricingUnit,ProviderName,PublisherName,RegionId,RegionName,"
                     "ResourceId,ServiceCategory,ServiceName,SkuId,SubAccountId,Tags,x_UsageType,x_Operation,"
                     "x_ServiceCode")


def _aws_focus_row(cost: str, qty: int, pricing: str, resource: str, usage_type: str, operation: str,
                   category: str = "Compute") -> str:
    """A row as AWS Data Exports (FOCUS 1.2) writes it: no instance type column."""
    return (f"{cost},111,Acme,USD,2026-11-01T00:00:00Z,2026-10-01T00:00:00Z,Usage,,x,Usage-Based,"
            f"2026-10-06T00:00:00Z,2026-10-05T00:00:00Z,{qty},Hrs,{cost},{cost},AWS,{cost},{pricing},{qty},Hrs,"
            f"AWS,AWS,us-east-1,US East (N. Virginia),{resource},{category},Amazon Elastic Compute Cloud,SKU1,222,"
            f"\"{{\"\"team\"\":\"\"nlp\"\"}}\",{usage_type},{operation},AmazonEC2")


def test_aws_focus_export_reads_the_instance_type_from_the_usage_type(tmp_path):
    """An AWS Data Exports FOCUS file has no instance type column: the type is only in x_UsageType. Before, every
    type was '(no instance type)': 0 accelerator-hours, spot share NaN, and the what-if priced 10 p4d hours at the
    g5.xlarge spot rate ($215.48 'saved', 98%). Expected (the same rows with x_InstanceType filled in): 180
    accelerator-hours (100 g5 + 10 x 8 p4d), spot share 100/180, p4d re-priced at Advisor s=67: $7.2468/h."""
    f = tmp_path / "aws_focus.csv"
    f.write_text("\n".join([
        _AWS_FOCUS_HEADER,
        _aws_focus_row("41.246", 100, "Dynamic", "i-g5spot", "USE1-SpotUsage:g5.xlarge", "RunInstances:SV001"),
        _aws_focus_row("219.6", 10, "Standard", "i-p4d", "USE1-BoxUsage:p4d.24xlarge", "RunInstances"),
        _aws_focus_row("3.5", 10, "Standard", "vol-1", "USE1-EBS:VolumeUsage.gp3", "CreateVolume-Gp3",
                       "Storage"),
    ]) + "\n")
    ingest([str(f)], warehouse=str(tmp_path / "w.duckdb"), progress=False)
    con = fk.connect(str(tmp_path / "w.duckdb"))
    # the classifier reads the same type: the instance rows are accelerated compute by their type
    got = dict(con.sql("SELECT x_UsageType, x_AiWorkload FROM focus").fetchall())
    assert got["USE1-SpotUsage:g5.xlarge"] == got["USE1-BoxUsage:p4d.24xlarge"] == "Accelerated compute"
    types = dict(con.sql(f"SELECT x_UsageType, {units.instance_type_sql()} FROM focus").fetchall())
    assert types == {"USE1-SpotUsage:g5.xlarge": "g5.xlarge", "USE1-BoxUsage:p4d.24xlarge": "p4d.24xlarge",
                     "USE1-EBS:VolumeUsage.gp3": None}
    m = fk.metrics(con).spot.set_index("provider").loc["AWS"]
    assert m.accelerator_hours == pytest.approx(180.0)
    assert m.spot_share == pytest.approx(100 / 180)
    w = spot.spot_what_if(con, spot.load_advisor(), by=("month",))
    (row,) = w.itertuples()
    assert (row.instance_type, row.basis, row.on_demand_hours) == ("p4d.24xlarge", "advisor", 10.0)
    assert float(row.spot_rate) == pytest.approx(7.2468)
    assert float(row.saving) == pytest.approx(147.132)


def test_usage_type_patterns_read_only_their_providers_usage_types():
    """The AWS pattern must not read a type out of another provider's SKU text."""
    con = focus_rows([
        dict(ProviderName="Google Cloud", x_UsageType="SpotUsage:g5.xlarge", cost=1.0, day=DAY),
        dict(ProviderName="AWS", x_UsageType="USW2-Train:ml.p4d.24xlarge", cost=1.0, day=DAY),
        dict(ProviderName="AWS", x_UsageType="USE1-DedicatedUsage:p5.48xlarge", cost=1.0, day=DAY),
    ])
    got = [r[0] for r in con.sql(f"SELECT {units.instance_type_sql()} FROM focus ORDER BY ALL NULLS FIRST").fetchall()]
    assert got == [None, "ml.p4d.24xlarge", "p5.48xlarge"]


def test_data_transfer_and_storage_billed_on_an_instance_are_not_its_compute():
    """CUR bills an instance's internet egress (and some providers a VM's disk) on the instance's ResourceId. They
    are Networking / Storage (FOCUS ServiceCategory), not accelerated compute: neither the instance usage nor the
    ingest's completion step counts them. Before, the g5.12xlarge's day was $616.13 of accelerated compute
    ($136.13 of instance-hours + $480 of egress) and the egress rows were classed 'Accelerated compute'."""
    from finops_kit.classify import complete_accelerated_instances

    day = dict(day="2026-10-06", ResourceId="i-0aaa", ProviderName="AWS")
    con = focus_rows([
        day | dict(cost="136.128", x_InstanceType="g5.12xlarge", x_UsageType="BoxUsage:g5.12xlarge",
                   ConsumedUnit="Hours", ConsumedQuantity="24", x_AiWorkload="Accelerated compute"),
        day | dict(cost="480", x_UsageType="USE1-DataTransfer-Out-Bytes", ServiceCategory="Networking",
                   ServiceName="AWS Data Transfer", ConsumedUnit="GB", ConsumedQuantity="5332.8"),
        day | dict(cost="3.20", x_UsageType="EBS:VolumeUsage.gp3", ServiceCategory="Storage",
                   ConsumedUnit="GB-Mo", ConsumedQuantity="1"),
    ])
    got = con.execute(f"SELECT sum(EffectiveCost), {units.total('accelerator_hours')} "
                      f"FROM ({units.accelerated_usage_sql()})").fetchone()
    assert got == (Decimal("136.128"), 96.0)
    assert complete_accelerated_instances(con) == 0
    assert con.execute("SELECT count(*) FROM focus WHERE x_AiWorkload = 'Accelerated compute'").fetchone()[0] == 1


def test_aws_focus_export_gpu_fees_are_ai_spend_without_instance_hours(tmp_path):
    """Reservation fees, unused reservations and EBS-optimized charges of a GPU type are spending on accelerated
    compute (the classifier's loose usage-type rule), but no instance-hours (the units read a type only from
    instance usage types). Before, removing that rule left them unclassified: AI spend dropped by their cost."""
    f = tmp_path / "aws_focus.csv"
    f.write_text("\n".join([
        _AWS_FOCUS_HEADER,
        _aws_focus_row("219.6", 10, "Standard", "i-p4d", "USE1-BoxUsage:p4d.24xlarge", "RunInstances"),
        _aws_focus_row("19.22", 1, "Committed", "ri-1", "USE1-HeavyUsage:p4d.24xlarge", "RunInstances"),
        _aws_focus_row("32.77", 1, "Committed", "cr-1", "USE1-UnusedBox:p4d.24xlarge", "RunInstances"),
        _aws_focus_row("1.5", 10, "Standard", "i-p4d", "USE1-EBSOptimized:p4d.24xlarge", "RunInstances"),
    ]) + "\n")
    ingest([str(f)], warehouse=str(tmp_path / "w.duckdb"), progress=False)
    con = fk.connect(str(tmp_path / "w.duckdb"))
    got = dict(con.sql("SELECT x_UsageType, x_AiWorkload FROM focus").fetchall())
    assert set(got.values()) == {"Accelerated compute"}, got
    types = dict(con.sql(f"SELECT x_UsageType, {units.instance_type_sql()} FROM focus").fetchall())
    assert types["USE1-BoxUsage:p4d.24xlarge"] == "p4d.24xlarge"
    assert types["USE1-HeavyUsage:p4d.24xlarge"] is None and types["USE1-EBSOptimized:p4d.24xlarge"] is None
    m = fk.metrics(con).spot.set_index("provider").loc["AWS"]
    assert m.accelerator_hours == pytest.approx(80.0)  # the 10 p4d hours x 8 GPUs, nothing from the fee rows
