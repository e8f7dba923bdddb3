"""Usage units review (session 16, findings 5-7): unknown accelerator-hours stay unknown, GCP rows without a catalog
machine type get a GPU-model / TPU-version family, and an unused On-Demand Capacity Reservation is unused capacity.

The fixtures are small exports shaped like the real ones (a legacy CUR on the header of the repo's CUR fixture, a GCP
detailed export as JSON lines), with the reviewer's figures worked out by hand in each test.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import metrics, scope, units
from finops_kit.ingest import ingest

HERE = Path(__file__).parent
RI = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-p5"


def _cur(path: Path, extra: list[dict[str, str]] | None = None) -> Path:
    """The reviewer's AWS CUR fixture (fx/aws_cur.csv): p4d on demand 24 h (USD 786.48) with USD 9 of transfer on
    its id, p4d spot 10 h, a p5 under a reservation 24 h, a g6f.2xlarge 24 h (USD 30), an unused p5 On-Demand
    Capacity Reservation 4 h (USD 393.36); ``extra`` rows as (usage type, resource, amount, cost, type)."""
    hdr = (HERE / "fixtures/aws/sp_ri_legacy.csv").read_text().splitlines()[0].split(",")
    rows: list[dict[str, str]] = []

    def r(lt: str, ut: str, res: str, amt: str, cost: str, itype: str = "", *, unit: str = "Hrs",
          ri: str = "", ri_eff: str = "", od: str = "", op: str = "RunInstances") -> None:
        d = dict.fromkeys(hdr, "")
        d.update({"identity/LineItemId": f"li-{len(rows)}", "bill/PayerAccountId": "111111111111",
                  "bill/BillingPeriodStartDate": "2026-11-01T00:00:00Z",
                  "bill/BillingPeriodEndDate": "2026-12-01T00:00:00Z", "lineItem/UsageAccountId": "222222222222",
                  "lineItem/LineItemType": lt, "lineItem/UsageStartDate": "2026-11-05T00:00:00Z",
                  "lineItem/UsageEndDate": "2026-11-06T00:00:00Z", "lineItem/ProductCode": "AmazonEC2",
                  "lineItem/UsageType": ut, "lineItem/Operation": op, "lineItem/ResourceId": res,
                  "lineItem/UsageAmount": amt, "lineItem/CurrencyCode": "USD", "lineItem/UnblendedCost": cost,
                  "product/ProductName": "Amazon Elastic Compute Cloud", "product/instanceType": itype,
                  "product/region": "us-east-1", "product/servicecode": "AmazonEC2",
                  "pricing/publicOnDemandCost": od or cost, "pricing/unit": unit,
                  "reservation/ReservationARN": ri, "reservation/EffectiveCost": ri_eff,
                  "resourceTags/user:team": "nlp"})
        rows.append(d)

    r("Usage", "BoxUsage:p4d.24xlarge", "i-p4d-od", "24", "786.48", "p4d.24xlarge")
    r("Usage", "SpotUsage:p4d.24xlarge", "i-p4d-spot", "10", "120.00", "p4d.24xlarge", od="327.70",
      op="RunInstances:SV001")
    r("DiscountedUsage", "BoxUsage:p5.48xlarge", "i-p5-ri", "24", "0", "p5.48xlarge", ri=RI, ri_eff="1200.00",
      od="2360.16")
    r("RIFee", "HeavyUsage:p5.48xlarge", "", "24", "1200.00", "p5.48xlarge", ri=RI)
    r("Usage", "BoxUsage:g6f.2xlarge", "i-g6f", "24", "30.00", "g6f.2xlarge")
    r("Usage", "DataTransfer-Out-Bytes", "i-p4d-od", "100", "9.00", unit="GB")
    r("Usage", "UnusedBox:p5.48xlarge", "cr-0abc", "4", "393.36", "p5.48xlarge")
    for ut, res, amt, cost, itype in extra or []:
        r("Usage", ut, res, amt, cost, itype)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, hdr)
        w.writeheader()
        w.writerows(rows)
    return path


def _con(*files: Path) -> duckdb.DuckDBPyConnection:
    con = fk.connect(":memory:")
    ingest([str(f) for f in files], con=con, progress=False)
    return con


def _family(df, provider: str, family: str, pricing: str):
    hit = df[(df.provider == provider) & (df.family == family) & (df.pricing == pricing)]
    assert len(hit) == 1, df.to_string()
    return hit.iloc[0]


# ---------------------------------------------------------------------------------------- finding 7: ODCR
def test_unused_capacity_reservation_is_not_on_demand_demand(tmp_path: Path) -> None:
    """UnusedBox:p5.48xlarge (4 h, USD 393.36) was 'p5 On-demand' spend with 0 hours, and the commitments' eligible
    on-demand spend counted it (USD 1,532.99 instead of 1,139.63)."""
    con = _con(_cur(tmp_path / "cur.csv"))
    row = con.execute("SELECT CapacityReservationStatus, CapacityReservationId FROM focus "
                      "WHERE x_UsageType = 'UnusedBox:p5.48xlarge'").fetchall()
    assert row == [("Unused", "cr-0abc")]
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    assert not len(acc[(acc.family == "p5") & (acc.pricing == "On-demand")])
    unused = _family(acc, "AWS", "p5", units.UNUSED_CAPACITY)
    assert unused.cost == Decimal("393.36")
    com = metrics.metrics(con, sc).commitments
    assert com[com.provider == "AWS"].iloc[0].on_demand_cost == Decimal("816.48")  # p4d 786.48 + g6f 30.00


# --------------------------------------------------------------------------- finding 5: unknown stays unknown
def test_catalog_knows_the_gpu_families_the_classifier_names() -> None:
    """ai_workloads.csv classes g6f, p6-b300 and p6e-gb200 as GPU families; the catalog had none of them. A g6f has
    a fraction of an L4, which counts as that fraction of a GPU-hour."""
    cat = {units.type_key(str(r["instance_type"])): r for r in units.instance_types()}
    assert (cat["g6f.2xlarge"]["accelerators"], cat["g6f.2xlarge"]["vcpus"]) == (0.25, 8)
    assert cat["g6f.large"]["accelerators"] == 0.125 and cat["gr6f.4xlarge"]["accelerators"] == 0.5
    assert (cat["p6-b300.48xlarge"]["accelerators"], cat["p6-b300.48xlarge"]["accelerator"]) == (8, "NVIDIA B300")
    assert (cat["p6e-gb200.36xlarge"]["accelerators"], cat["p6e-gb200.36xlarge"]["vcpus"]) == (4, 144)


def test_fractional_gpu_hours_and_rate(tmp_path: Path) -> None:
    """g6f.2xlarge 24 h for USD 30 was 'g6f On-demand 0 accelerator-hours'; it is 24 x 0.25 = 6 L4 GPU-hours at
    USD 5.00 per GPU-hour, and the spot share counts them: 80 / (80 + 192 + 192 + 6) (p4d od, p5 RI, g6f)."""
    con = _con(_cur(tmp_path / "cur.csv"))
    sc = scope.resolve(con, None)
    g6f = _family(metrics.accelerators(con, sc), "AWS", "g6f", "On-demand")
    assert (g6f.instance_hours, g6f.accelerator_hours, g6f.rate_per_accelerator_hour) == (24, 6, Decimal("5"))
    spot = metrics.spot_share(con, sc).iloc[0]
    assert spot.accelerator_hours == 470 and spot.spot_share == pytest.approx(80 / 470)


def _runs(path: Path, ids: str) -> Path:
    path.write_text(f"run_id,start,end,resource_ids\nrun-1,2026-11-05T00:00:00Z,2026-11-06T00:00:00Z,{ids}\n")
    return path


def test_unknown_type_is_unknown_not_zero(tmp_path: Path) -> None:
    """A type the catalog does not know (p9.48xlarge, 24 h, USD 30): its family showed 0 accelerator-hours, the
    totals left its cost out of nothing, and a training run of it and the p4d (i-p4d-od: USD 786.48 + USD 9 of
    transfer, 192 GPU-hours) cost (786.48 + 9 + 30) / 192 = 4.30 per GPU-hour instead of (786.48 + 9) / 192 = 4.14."""
    con = _con(_cur(tmp_path / "cur.csv", [("BoxUsage:p9.48xlarge", "i-p9", "24", "30.00", "p9.48xlarge")]))
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    p9 = _family(acc, "AWS", "p9", "On-demand")
    assert p9.instance_hours == 24 and pd.isna(p9.accelerator_hours)  # unknown, not 0
    assert p9.unknown_accelerator_cost == Decimal("30") and pd.isna(p9.rate_per_accelerator_hour)
    assert _family(acc, "AWS", "p4d", "On-demand").unknown_accelerator_cost == 0
    spot = metrics.spot_share(con, sc).iloc[0]
    assert spot.unknown_accelerator_cost == Decimal("30") and spot.accelerator_hours == 470
    from finops_kit import spot as spot_mod

    cov = spot_mod.spot_coverage(con, by=("instance_family",), scope=sc).df().set_index("instance_family")
    assert pd.isna(cov.loc["p9", "total_accelerator_hours"]) and cov.loc["p9", "unknown_accelerator_cost"] == 30
    assert cov.loc["p9", "total_hours"] == 24 and cov.loc["p4d", "total_accelerator_hours"] == 272
    from finops_kit import commitments

    com = commitments.coverage(con, sc, by=("instance_family",)).set_index("instance_family")
    assert com.loc["p9", "eligible_hours"] == 24 and pd.isna(com.loc["p9", "eligible_accelerator_hours"])  # was 0
    unknown = metrics.unknown_types(con, sc)
    assert unknown[["instance_type", "unknown", "cost"]].values.tolist() == [
        ["p9.48xlarge", "accelerator-hours", Decimal("30")]]
    m = metrics.metrics(con, sc)
    assert "unknown_types" in m.tables and "p9.48xlarge" in m.to_text()
    assert metrics.unknown_types_note(unknown) == (
        "1 instance type not in the instance catalog: AWS p9.48xlarge (accelerator-hours unknown; USD 30.00). Their "
        "cost is in the totals; their unknown hours are in no hour figure, share or rate (add a missing type to "
        "finops_kit/data/ec2_accelerated_instances.csv or machine_types.csv; a GCP GPU or TPU SKU billed without its "
        "machine type, or an OCI GPU SKU, names no shape: there is no instance count to add).")
    assert metrics.unknown_types_note(unknown.iloc[:0]) == ""
    from finops_kit import unit_economics

    t = unit_economics.training_runs(con, sc, _runs(tmp_path / "runs.csv", "i-p4d-od;i-p9")).table.iloc[0]
    assert (t.cost, t.accelerator_hours, t.unknown_accelerator_cost) == (825.48, 192, 30)
    assert t.cost_per_gpu_hour == pytest.approx(795.48 / 192)  # 4.1431, not 4.2994
    au = metrics.metrics(con, sc, runs_file=str(tmp_path / "runs.csv")).ai_units.iloc[0]
    assert au.training_run_unknown_accelerator_cost == 30
    assert au.cost_per_training_gpu_hour == pytest.approx(795.48 / 192)


def test_reviewer_training_run_with_g6f_in_the_catalog(tmp_path: Path) -> None:
    """The reviewer's run (i-p4d-od and i-g6f): with the g6f in the catalog its 6 L4 GPU-hours count, so the run
    costs 825.48 / 198 = 4.1691 per GPU-hour."""
    con = _con(_cur(tmp_path / "cur.csv"))
    from finops_kit import unit_economics

    t = unit_economics.training_runs(con, scope.resolve(con, None),
                                     _runs(tmp_path / "runs.csv", "i-p4d-od;i-g6f")).table.iloc[0]
    assert (t.accelerator_hours, t.unknown_accelerator_cost) == (198, 0)
    assert t.cost_per_gpu_hour == pytest.approx(825.48 / 198)


# ------------------------------------------------------------------ finding 6: GCP rows without a machine type
def _gcp(path: Path) -> Path:
    """The reviewer's fx/gcp_nospec.jsonl: a GCP detailed export without the machine_spec system label (as the
    corpus's koku__detailed_*.csv files) -- an a2 VM with 8 A100 for 24 h (core USD 76, GPU USD 560), an N1 VM with 4
    T4 for 24 h (core USD 6, GPU USD 33.60) -- and a Cloud TPU 'TPU v5e chip' SKU, 8 chips for 24 h (USD 230.40)."""
    day = 86400

    def row(sku: str, cost: str, amount: int, pamount: int, res: str, svc: str = "Compute Engine") -> dict:
        return {"billing_account_id": "01AAAA-BBBBBB-CCCCCC",
                "project": {"id": "ml-train", "number": "1", "name": "ml-train", "labels": []},
                "location": {"location": "us-central1", "country": "US", "region": "us-central1",
                             "zone": "us-central1-a"},
                "usage_start_time": "2026-11-05 00:00:00 UTC", "usage_end_time": "2026-11-06 00:00:00 UTC",
                "export_time": "2026-11-05 06:00:00 UTC", "currency": "USD", "currency_conversion_rate": 1.0,
                "invoice": {"month": "202611"}, "cost_type": "regular",
                "service": {"id": "6F81-5844-456A" if svc == "Compute Engine" else "E000-TPU", "description": svc},
                "sku": {"id": "SKU-" + sku[:12], "description": sku}, "cost": cost, "cost_at_list": cost,
                "labels": [], "system_labels": [],
                "resource": {"name": res, "global_name": f"//compute.googleapis.com/projects/ml-train/zones/"
                                                         f"us-central1-a/instances/{res}"},
                "usage": {"amount": amount, "unit": "seconds", "amount_in_pricing_units": pamount,
                          "pricing_unit": "hour"},
                "credits": []}

    rows = [row("A2 Instance Core running in Americas", "76.00", 96 * day, 96 * 24, "a2-nospec"),
            row("Nvidia Tesla A100 GPU running in Americas", "560.00", 8 * day, 8 * 24, "a2-nospec"),
            row("N1 Predefined Instance Core running in Americas", "6.00", 8 * day, 8 * 24, "n1-t4-nospec"),
            row("Nvidia Tesla T4 GPU running in Americas", "33.60", 4 * day, 4 * 24, "n1-t4-nospec"),
            row("TPU v5e chip running in Americas", "230.40", 8 * day, 8 * 24, "tpu-v5e-pod", svc="Cloud TPU")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gcp_gpus_without_machine_type_are_families_per_model_and_tpu_per_version(tmp_path: Path) -> None:
    """Without machine_spec, A100 and T4 were pooled into family 'nvidia-tesla' at a blended USD 2.35 per GPU-hour
    (675.60 / 288) with 0 instance-hours, and the TPU's 192 chip-hours and USD 230.40 were in the totals only.
    Now: nvidia-a100 636 / 192 = 3.3125, nvidia-t4 39.60 / 96 = 0.4125, tpu-v5e 230.40 / 192 = 1.20 per
    accelerator-hour; instance-hours unknown (null) with their cost named; the families add up to the totals."""
    con = _con(_gcp(tmp_path / "gcp.jsonl"))
    assert con.execute("SELECT x_InstanceType FROM focus WHERE x_UsageType LIKE 'TPU%'").fetchall() == [("tpu-v5e",)]
    sc = scope.resolve(con, None)
    acc = metrics.accelerators(con, sc)
    assert sorted(acc.family) == ["nvidia-a100", "nvidia-t4", "tpu-v5e"]
    want = {"nvidia-a100": ("636", 192, "3.3125"), "nvidia-t4": ("39.6", 96, "0.4125"), "tpu-v5e": ("230.4", 192, "1.2")}
    for fam, (cost, ah, rate) in want.items():
        r = _family(acc, "Google Cloud", fam, "On-demand")
        assert (r.cost, r.accelerator_hours, r.rate_per_accelerator_hour) == (Decimal(cost), ah, Decimal(rate))
        assert pd.isna(r.instance_hours) and r.unknown_instance_cost == Decimal(cost)  # unknown, not 0
    tot = metrics.spot_share(con, sc).iloc[0]
    assert tot.cost == sum(acc.cost) == Decimal("906") and tot.accelerator_hours == sum(acc.accelerator_hours) == 480
    assert pd.isna(tot.instance_hours) and tot.unknown_instance_cost == Decimal("906")
    unknown = metrics.unknown_types(con, sc)
    assert set(unknown.instance_type) == {"nvidia-tesla-a100", "nvidia-tesla-t4", "tpu-v5e"}
    assert set(unknown.unknown) == {"instance-hours"}


def test_guard_counts_a_fraction_of_a_gpu(tmp_path: Path) -> None:
    """The guardrails read accelerators per instance from the same catalog: g6f.2xlarge (a quarter of an L4
    each, two instances) add half a GPU, not 0 (int(0.25)) and not 'unknown' (the type missing from the catalog)."""
    import yaml

    from finops_kit import guard

    change = {"address": "aws_instance.g6f", "mode": "managed", "type": "aws_instance", "name": "g6f",
              "provider_name": "registry.terraform.io/hashicorp/aws",
              "change": {"actions": ["create"], "before": None, "after_unknown": {},
                         "after": {"instance_type": "g6f.2xlarge", "tags_all": {"team": "nlp"},
                                   "instance_market_options": []}}}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.11.4",
                                "resource_changes": [change, {**change, "address": "aws_instance.g6f2"}],
                                "configuration": {"provider_config": {"aws": {"name": "aws", "expressions": {
                                    "region": {"constant_value": "us-east-1"}}}}, "root_module": {}}}))
    cfg = yaml.safe_load((HERE.parent / "finops.yaml").read_text())
    cfg["guardrails"] = {"max_accelerators": {"per_change": 1}}
    res = guard.evaluate(str(plan), cfg)
    assert [r.after.accelerators() for r in res.resources] == [0.25, 0.25]
