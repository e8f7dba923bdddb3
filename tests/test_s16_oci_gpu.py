"""OCI GPU compute is AI spend measured in GPU-hours (review of usage units, finding 1).

Oracle bills a GPU shape per GPU per hour (unit ``GPU Per Hour``); the cost report names no shape. Before the OCI
rules of ``data/ai_workloads.csv``, ``data/usage_units.csv`` and ``data/hour_units.csv``, an OCI GPU row was neither
accelerated compute nor measured: the reviewer's H100 + A10 day ($2,016, 240 GPU-hours) was missing from the AI
headline and from every GPU figure. The fixtures are the reviewer's, on the header of the corpus OCI cost report.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

import finops_kit as fk
from finops_kit import units
from finops_kit.cli import main

SAMPLE = "corpus/focus/provider-native/oci/oci_cost_report_sample.csv"

#: (description, SKU, unit, quantity, cost, resource): the reviewer's two GPU instances for one day (8 H100 and
#: 2 A10 for 24 h), an OCPU row of an E4 VM (no GPU), a GPU SKU that names no GPU model (the A100 40GB shape's
#: "GPU - E4"), a GPU software licence billed per GPU-hour beside the H100's GPUs (its SKU "B00000" is a stand-in),
#: and an H200 with the unit spelt "GPU Hours" (Oracle spells its OCPU unit both "OCPU Per Hour" and "OCPU Hours").
REVIEWER = [
    ("Compute - GPU - H100", "B98415", "GPU Per Hour", "192", "1920.00", "gpu-h100-01"),
    ("Compute - GPU - A10", "B95909", "GPU Per Hour", "48", "96.00", "gpu-a10-01"),
]
MORE = [
    ("Standard - E4", "B93113", "OCPU Hours", "48", "1.20", "vm-e4-01"),
    ("Compute - GPU - E4", "B93544", "GPU Per Hour", "16", "48.00", "gpu-e4-01"),
    ("NVIDIA AI Enterprise - GPU - H100", "B00000", "GPU Per Hour", "192", "192.00", "gpu-h100-01"),
    ("OCI - Compute - GPU - H200", "B110519", "GPU Hours", "8", "80.00", "gpu-h200-01"),
]


def _report(path: Path, shared: Path, lines: list[tuple[str, ...]]) -> str:
    """An OCI cost report with the corpus sample's columns (its first row's tenancy and compartment) and ``lines``
    for 5 Nov 2026, 00:00-24:00, as the reviewer's ``oci_fx.py`` builds it."""
    with open(shared / SAMPLE, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, template = list(reader.fieldnames or []), next(reader)
    rows = []
    for i, (desc, sku, unit, qty, cost, res) in enumerate(lines):
        row = {k: ("" if k.startswith("tags/") else v) for k, v in template.items()}
        row.update({"lineItem/referenceNo": f"ref-gpu-{i}", "lineItem/intervalUsageStart": "2026-11-05T00:00Z",
                    "lineItem/intervalUsageEnd": "2026-11-06T00:00Z", "product/service": "COMPUTE",
                    "product/resourceId": f"ocid1.instance.oc1.iad.{res}", "usage/billedQuantity": qty,
                    "cost/productSku": sku, "product/Description": desc,
                    "cost/unitPrice": str(Decimal(cost) / Decimal(qty)), "cost/myCost": cost,
                    "cost/billingUnitReadable": "", "cost/skuUnitDescription": unit, "lineItem/isCorrection": "false",
                    "lineItem/backreferenceNo": ""})
        rows.append(row)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        w.writerows(rows)
    return str(path)


def test_reviewer_oci_gpu_day_is_ai_spend_with_its_gpu_hours_in_metrics(shared, tmp_path, capsys):
    """`finops-kit metrics` on the reviewer's fixture: AI cost $2,016.00 (was 0), 240 GPU-hours (was none), the
    H100 at $10.00 and the A10 at $2.00 per GPU-hour, and no instance-hours or instance-hour rate (the report names
    no shape, so none can be known)."""
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest(_report(tmp_path / "oci_cost.csv", shared, REVIEWER), warehouse=wh)
    cfg = tmp_path / "finops.yaml"
    cfg.write_text(yaml.safe_dump({}))
    assert main(["metrics", "--warehouse", wh, "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (tot,) = doc["totals"]
    assert Decimal(tot["ai_cost"]) == Decimal(tot["effective_cost"]) == Decimal("2016.00")
    assert [(a["category"], Decimal(a["cost"])) for a in doc["ai"]] == [("Accelerated compute", Decimal("2016.00"))]
    fam = {a["family"]: a for a in doc["accelerators"] if a["provider"] == "Oracle"}
    assert set(fam) == {"h100", "a10"}
    assert fam["h100"]["accelerator_hours"] == 192 and Decimal(fam["h100"]["rate_per_accelerator_hour"]) == 10
    assert fam["a10"]["accelerator_hours"] == 48 and Decimal(fam["a10"]["rate_per_accelerator_hour"]) == 2
    assert fam["h100"]["rate_per_instance_hour"] is None and fam["a10"]["rate_per_instance_hour"] is None
    # unknown, not 0 (schema version 3): the whole cost is the cost with unknown instance-hours, and the types are
    # listed as not in the catalog
    assert fam["h100"]["instance_hours"] is None and Decimal(fam["h100"]["unknown_instance_cost"]) == Decimal("1920.00")
    assert {(u["instance_type"], u["unknown"]) for u in doc["unknown_types"] if u["provider"] == "Oracle"} == {
        ("H100", "instance-hours"), ("A10", "instance-hours")}
    (spot,) = [s for s in doc["spot"] if s["provider"] == "Oracle"]
    assert spot["accelerator_hours"] == 240 and Decimal(spot["cost"]) == Decimal("2016.00")


def test_oci_rows_measure_gpu_hours_only_and_never_invent_instance_hours(shared, tmp_path):
    """Per row: a GPU-hour row is accelerated compute with accelerator-hours = its quantity, instance-hours and vCPU
    -hours unknown (NULL, not 0) and the GPU model its description names as type and family; a GPU SKU naming no
    model keeps its GPU-hours without a family; a GPU licence billed per GPU-hour has no hours (the H100's GPUs are
    counted once); an OCPU row is neither AI spend nor measured (an OCPU is 2 vCPUs on x86, 1 on Ampere: no factor
    the rules can apply)."""
    con = fk.connect(":memory:")
    fk.ingest(_report(tmp_path / "oci_cost.csv", shared, REVIEWER + MORE), con=con, progress=False)
    got = {r[0]: r[1:] for r in con.execute(f"""
        SELECT x_UsageType, x_AiWorkload, _unit_role, _instance_type, instance_family, instance_hours,
               accelerator_hours, vcpu_hours, accelerators_per_instance
        FROM ({units.row_sql()})""").fetchall()}
    assert got["Compute - GPU - H100"] == ("Accelerated compute", "accelerator", "H100", "h100", None, 192.0, None,
                                           None)
    assert got["Compute - GPU - A10"] == ("Accelerated compute", "accelerator", "A10", "a10", None, 48.0, None, None)
    assert got["Compute - GPU - E4"] == ("Accelerated compute", "accelerator", None, None, None, 16.0, None, None)
    assert got["OCI - Compute - GPU - H200"] == ("Accelerated compute", "accelerator", "H200", "h200", None, 8.0, None,
                                                 None)
    assert got["NVIDIA AI Enterprise - GPU - H100"][:2] == ("Accelerated compute", "license")
    assert got["NVIDIA AI Enterprise - GPU - H100"][4:7] == (None, None, None)
    assert got["Standard - E4"][0] is None and got["Standard - E4"][4:7] == (None, None, None)
    # the instance usage every GPU report reads: 264 GPU-hours (192 + 48 + 8 + 16, the licence's none), the licence's
    # $192 in the H100 instance's cost, and no instance-hours anywhere
    acc = con.execute(f"""SELECT instance_family, sum(EffectiveCost), sum(accelerator_hours),
                                 count(instance_hours), bool_or(has_instance_hours)
                          FROM ({units.accelerated_usage_sql()}) GROUP BY ALL ORDER BY 1 NULLS LAST""").fetchall()
    assert acc == [("a10", Decimal("96"), 48.0, 0, False), ("h100", Decimal("2112"), 192.0, 0, False),
                   ("h200", Decimal("80"), 8.0, 0, False), (None, Decimal("48"), 16.0, 0, False)]


@pytest.mark.parametrize("model", ["a10", "a100", "h100", "h200", "b200", "gb200", "l40s", "mi300x", "v100"])
def test_an_oci_gpu_model_is_no_catalog_instance_type(model):
    """The GPU model an OCI row takes as its type must not find a catalog row (which would multiply its GPU-hours
    into instance-hours of a shape the report does not name): the catalog is keyed by type alone."""
    assert units.type_key(model) not in {units.type_key(str(r["instance_type"])) for r in units.instance_types()}


def test_corpus_oci_sample_has_no_ai_spend_and_no_hours(shared):
    """The real OCI cost report (no GPU rows) still reconciles, and the OCI rules class and measure none of its
    OCPU, memory, database, storage or monitoring rows."""
    con = fk.connect(":memory:")
    res = fk.ingest(str(shared / SAMPLE), con=con, progress=False)
    assert all(r["ok"] for r in res.reconciliation) and res.rows == 506
    assert con.execute(f"""SELECT count(*) FILTER (WHERE x_AiWorkload IS NOT NULL),
                                  count(*) FILTER (WHERE coalesce(instance_hours, accelerator_hours, vcpu_hours)
                                                   IS NOT NULL)
                           FROM ({units.row_sql()})""").fetchone() == (0, 0)
