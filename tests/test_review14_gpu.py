"""Review 14 (consistency review, items 1, 5 and 8): one answer for GPU usage and AI service lines.

Each test here failed on the code before its fix (stated per test)."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from finops_kit import units
from finops_kit.classify import ai_workload_case, ai_workload_sql, complete_accelerated_instances
from finops_kit.testing import focus_rows

SM = "Amazon SageMaker"
AIML = "AI and Machine Learning"

# (x_InstanceType, x_UsageType, expected x_AiWorkload) of Amazon SageMaker rows
SAGEMAKER = [
    ("ml.p4d.24xlarge", "USE1-Train:ml.p4d.24xlarge", "Accelerated compute"),
    (None, "USE1-Train:ml.p4d.24xlarge", "Accelerated compute"),   # AWS FOCUS export: the type is in the usage type
    (None, "USW2-Host:ml.g5.2xlarge", "Accelerated compute"),      # a GPU endpoint
    ("ml.g4dn.xlarge", "USE1-Notebk:ml.g4dn.xlarge", "Accelerated compute"),
    (None, "USE1-Host:ml.inf2.xlarge", "Accelerated compute"),
    (None, "USE1-Train:ml.trn1.32xlarge", "Accelerated compute"),
    ("ml.m5.xlarge", "USE1-Host:ml.m5.xlarge", "ML platform"),    # an endpoint without GPU
    (None, "USE1-Processing:ml.c5.xlarge", "ML platform"),        # processing on CPU
    (None, "USE1-Notebk:ml.t3.medium", "ML platform"),
    (None, "USE1-Train:VolumeUsage.gp2", "ML platform"),          # the job's storage
    (None, "USE1-Host:Data-Bytes-In", "ML platform"),
    (None, None, "ML platform"),
]


@pytest.mark.parametrize(("itype", "usage", "expected"), SAGEMAKER, ids=[f"{r[0]}|{r[1]}" for r in SAGEMAKER])
@pytest.mark.parametrize("provider", [None, "AWS"])
def test_sagemaker_gpu_instances_are_accelerated_compute(itype, usage, expected, provider):
    """Item 1: an ml.p4d.24xlarge is 8 A100s whichever service bills it. Before the fix every SageMaker row was
    'ML platform' (the AWS instance-type rule did not read the ``ml.`` prefix), so on the demo $75,794.57 and
    16,089 GPU-hours of SageMaker training were missing from every GPU figure while Azure ML and Vertex AI GPUs
    were counted. Non-GPU SageMaker instances and SageMaker's other charges stay 'ML platform'."""
    con = duckdb.connect()
    got = con.execute(f"SELECT {ai_workload_case(provider=provider)} FROM (SELECT 'AWS' AS ProviderName, "
                      f"? AS x_InstanceType, ? AS x_UsageType, '{SM}' AS ServiceName, "
                      f"'{AIML}' AS ServiceCategory)", [itype, usage]).fetchone()[0]
    assert got == expected


def _classified(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """A warehouse of ``rows`` classified as the ingest classifies them (the rules, then the instances' rows)."""
    con = focus_rows(rows)
    con.execute(f"UPDATE focus SET x_AiWorkload = {ai_workload_sql()}")
    complete_accelerated_instances(con)
    return con


def test_sagemaker_training_job_counts_its_gpu_hours():
    """Item 1: a SageMaker training job on ml.p4d.24xlarge has 8 accelerator-hours per instance-hour in the kit's
    one accelerated usage (metrics, spot share, commitment coverage, families), once; its tax stays out of AI spend
    and a CPU processing job stays ML platform. Its family is ml.p4d, not EC2's p4d: no EC2 commitment covers it,
    and no SageMaker plan covers EC2. Before the fix the job had no accelerated usage at all."""
    arn = "arn:aws:sagemaker:us-east-1:1:training-job/segmenter-1"
    con = _classified([
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, x_UsageType="USE1-Train:ml.p4d.24xlarge",
             ResourceId=arn, ConsumedQuantity=10, ConsumedUnit="Hours", cost=377.0),
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, x_UsageType="USE1-Processing:ml.m5.xlarge",
             ResourceId="arn:aws:sagemaker:us-east-1:1:processing-job/etl", ConsumedQuantity=5,
             ConsumedUnit="Hours", cost=1.15),
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, ChargeCategory="Tax", cost=30.0),
        dict(day="2026-10-01", x_InstanceType="p4d.24xlarge", x_UsageType="USE1-BoxUsage:p4d.24xlarge",
             ResourceId="i-1", ConsumedQuantity=2, ConsumedUnit="Hours", cost=65.0),
    ])
    got = con.execute(f"""
        SELECT ServiceName, instance_family, sum(EffectiveCost), {units.total('hours')},
               {units.total('accelerator_hours')}
        FROM ({units.accelerated_usage_sql()}) GROUP BY ALL ORDER BY ALL""").fetchall()
    assert [(s, f, float(c), h, a) for s, f, c, h, a in got] == [
        ("Amazon Elastic Compute Cloud", "p4d", 65.0, 2.0, 16.0),
        (SM, "ml.p4d", 377.0, 10.0, 80.0)]
    ai = dict(con.execute("SELECT coalesce(x_AiWorkload, '-'), sum(EffectiveCost) FROM focus GROUP BY ALL")
              .fetchall())
    assert {k: float(v) for k, v in ai.items()} == {"Accelerated compute": 442.0, "ML platform": 1.15, "-": 30.0}


def test_ai_service_lines_are_the_ai_spend_of_those_services():
    """Item 5: "the AI service lines total" of the token reconciliation is the AI spend of those services, the
    rows ``x_AiWorkload`` classes (usage, credits, purchases), never their tax or adjustments: AWS books a Tax line
    per service and no other provider does. Before the fix the demo's Bedrock lines were $237,484.62 in
    ai_unit_economics (incl. $12,121.54 tax) and $225,363.08 in metrics and the tagging audit."""
    from pathlib import Path

    from finops_kit import scope as S
    from finops_kit import tokens as tk

    def bedrock(cat: str, cost: float, usage: str | None = "USE1-Claude4Sonnet-input-tokens", **kw) -> dict:
        return dict(day="2026-10-05", ServiceName="Amazon Bedrock", ServiceCategory=AIML, ChargeCategory=cat,
                    x_UsageType=usage, SkuMeter=usage, PricingUnit="1000 Tokens", PricingQuantity=1000,
                    cost=cost, **kw)

    con = _classified([
        bedrock("Usage", 3.0),
        bedrock("Usage", 3.0, "USE1-Claude4Sonnet-output-tokens"),
        bedrock("Credit", -2.0, None, ChargeClass=None),
        bedrock("Tax", 0.6, None),
        bedrock("Adjustment", -0.5, None),
    ])
    sc = S.resolve(con, str(Path(__file__).resolve().parents[1] / "finops.yaml"), {})
    ai = con.execute("SELECT sum(EffectiveCost) FROM focus WHERE x_AiWorkload IS NOT NULL").fetchone()[0]
    s = tk.summary(con, sc)
    assert s.service_cost == ai == Decimal("4.00")
    assert s.token_cost == Decimal("6.00") and s.other_cost == Decimal("-2.00") and s.reconciled
    rec = tk.reconcile(con, sc)
    assert rec["ok"].all() and rec.iloc[0]["not usage"] == Decimal("-2.00")


def test_effective_rates_account_for_all_accelerated_cost():
    """Item 8: the spot analysis's "Effective hourly rates actually paid" table adds up to the accelerated compute
    in scope. A Vertex AI training GPU billed in GPU-seconds on an accelerator type the catalog has no machine for
    has accelerator-hours and no instance-hours: its cost is shown with its rate per accelerator-hour. An unused
    committed-use discount has no hours: its cost is shown with no rate, as ``cost_without_hours``. Before the fix
    both costs were blank (on the demo $11,232.63 of nvidia-a100 and $14,448.42 of the unused a100 CUD), so the
    table summed to less than "Accelerated compute" without saying why."""
    from pathlib import Path

    from finops_kit import scope as S
    from finops_kit import spot

    gcp = dict(ProviderName="Google Cloud", PublisherName="Google Cloud", InvoiceIssuerName="Google",
               day="2026-10-05", RegionId="us-central1")
    con = _classified([
        dict(gcp, ServiceName="Vertex AI", ServiceCategory=AIML, x_InstanceType="nvidia-a100",
             x_UsageType="Custom model training Nvidia A100 GPU running in Americas", ConsumedUnit="Seconds",
             ConsumedQuantity=36000, cost=33.7, ResourceId="projects/p/locations/us-central1/customJobs/1"),
        dict(gcp, ServiceName="Compute Engine", x_InstanceType="a100", ChargeCategory="Usage",
             x_UsageType="Commitment v1: A100 GPU in Americas for 1 Year", CommitmentDiscountStatus="Unused",
             CommitmentDiscountId="projects/p/regions/us-central1/commitments/c1", PricingCategory="Committed",
             cost=14.4),
        dict(day="2026-10-05", RegionId="us-east-1", x_InstanceType="p4d.24xlarge",
             x_UsageType="USE1-BoxUsage:p4d.24xlarge", ResourceId="i-1", ConsumedQuantity=2, ConsumedUnit="Hours",
             cost=65.0),
    ])
    sc = S.resolve(con, str(Path(__file__).resolve().parents[1] / "finops.yaml"), {})
    rel = spot.effective_rates(con, scope=sc)
    rates = pd.DataFrame(rel.fetchall(), columns=rel.columns).set_index("instance_type")  # DECIMAL kept exact
    total = sum(c for (c,) in spot.spot_coverage(con, by=("provider",), scope=sc).select("total_cost").fetchall())
    assert sum(rates["cost"].fillna(0)) == total == Decimal("113.1")
    gpu = rates.loc["nvidia-a100"]
    assert gpu["cost"] == Decimal("33.7") and gpu["accelerator_hours"] == 10.0
    assert gpu["rate_per_accelerator_hour"] == Decimal("3.37") and pd.isna(gpu["rate_per_hour"])
    assert gpu["cost_without_hours"] == 0
    unused = rates.loc["a100"]
    assert unused["cost"] == Decimal("14.4") and unused["cost_without_hours"] == Decimal("14.4")
    assert pd.isna(unused["rate_per_hour"]) and pd.isna(unused["rate_per_accelerator_hour"])
    assert unused["rows_without_hours"] == 1 and gpu["rows_without_hours"] == 0
    p4d = rates.loc["p4d.24xlarge"]
    assert p4d["cost"] == Decimal("65") and p4d["rate_per_hour"] == Decimal("32.5")
    assert p4d["rate_per_accelerator_hour"] == Decimal("4.0625")


def test_sagemaker_job_storage_and_data_on_its_arn_stay_ml_platform():
    """Item 1, the job's other rows: SageMaker bills a GPU training job's ML storage volume (GB-months) and an
    endpoint's data processed (GB) on the job's or endpoint's ARN, in FOCUS ServiceCategory 'AI and Machine
    Learning', not Storage or Networking. They are not the instance's compute: rows measuring stored or moved
    bytes are never part of an instance (units.instance_charges_sql), so they stay 'ML platform' and out of the
    accelerated cost and its rates. Failed before: the ingest's completion classed them 'Accelerated compute'."""
    arn = "arn:aws:sagemaker:us-east-1:1:training-job/segmenter-1"
    ep = "arn:aws:sagemaker:us-east-1:1:endpoint/ranker"
    sm = dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML)
    con = _classified([
        dict(sm, x_UsageType="USE1-Train:ml.p4d.24xlarge", ResourceId=arn, ConsumedQuantity=10,
             ConsumedUnit="Hours", cost=377.0),
        dict(sm, x_UsageType="USE1-Train:VolumeUsage.gp2", ResourceId=arn, ConsumedQuantity=50,
             ConsumedUnit="GB-Months", cost=5.0),
        dict(sm, x_UsageType="USE1-Host:ml.g5.2xlarge", ResourceId=ep, ConsumedQuantity=24,
             ConsumedUnit="Hours", cost=36.72),
        dict(sm, x_UsageType="USE1-Host:Data-Bytes-In", ResourceId=ep, ConsumedQuantity=100,
             ConsumedUnit="GB", cost=1.6),
    ])
    got = dict(con.execute("SELECT x_UsageType, x_AiWorkload FROM focus").fetchall())
    assert got == {"USE1-Train:ml.p4d.24xlarge": "Accelerated compute", "USE1-Train:VolumeUsage.gp2": "ML platform",
                   "USE1-Host:ml.g5.2xlarge": "Accelerated compute", "USE1-Host:Data-Bytes-In": "ML platform"}
    cost = con.execute(f"SELECT sum(EffectiveCost) FROM ({units.accelerated_usage_sql()})").fetchone()[0]
    assert cost == Decimal("413.72")


def test_spot_what_if_does_not_move_sagemaker_endpoints_and_notebooks_to_spot():
    """Item 1, the spot what-if: counted as accelerated compute, SageMaker's on-demand GPU hours entered the
    what-if and were re-priced at a spot rate (flat 55% off on the demo: $58,134 of "saving", $16,447 of it on
    endpoints and notebooks). SageMaker has managed spot for training jobs only; endpoints, notebooks, processing
    and batch transform have no spot market (data/no_spot_market.csv): their hours stay at their on-demand rate,
    basis 'no spot market', saving 0. A training job is re-priced like any on-demand hour. Failed before: the
    endpoint and the notebook had basis 'flat' and a saving."""
    from pathlib import Path

    from finops_kit import scope as S
    from finops_kit import spot

    sm = dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, RegionId="us-east-1", ConsumedUnit="Hours")
    con = _classified([
        dict(sm, x_UsageType="USE1-Train:ml.p4d.24xlarge", ResourceId="arn:j", ConsumedQuantity=10, cost=377.0),
        dict(sm, x_UsageType="USE1-Host:ml.g5.2xlarge", ResourceId="arn:e", ConsumedQuantity=24, cost=36.72),
        dict(sm, x_UsageType="USE1-Notebk:ml.g5.xlarge", ResourceId="arn:n", ConsumedQuantity=24, cost=33.84),
    ])
    sc = S.resolve(con, str(Path(__file__).resolve().parents[1] / "finops.yaml"), {})
    w = spot.spot_what_if(con, None, spot.WhatIfAssumptions(flat_discount=0.5), by=(), scope=sc).set_index("instance_type")
    train = w.loc["ml.p4d.24xlarge"]
    assert train["basis"] == "flat" and train["saving"] == 188.5
    for t, cost in (("ml.g5.2xlarge", 36.72), ("ml.g5.xlarge", 33.84)):
        row = w.loc[t]
        assert row["basis"] == "no spot market", t
        assert row["on_demand_cost"] == row["spot_priced_cost"] == cost and row["saving"] == 0, t
    total = spot.what_if_summary(w.reset_index()).set_index("basis").loc["total"]
    assert total["saving"] == pytest.approx(188.5) and total["on_demand_cost"] == pytest.approx(377 + 36.72 + 33.84)


def test_a_cpu_instance_on_a_gpu_endpoints_arn_stays_ml_platform():
    """Regression review of review 14: one SageMaker ARN bills several instance types (an endpoint's GPU production
    variant and CPU shadow variant); completing the instance's rows made the CPU variant accelerated compute (an
    'ml.m5' accelerator family with 0 accelerator-hours in metrics)."""
    arn = "arn:aws:sagemaker:us-east-1:1:endpoint/ranker-api"
    con = _classified([
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, x_UsageType="USE1-Host:ml.g5.2xlarge",
             ResourceId=arn, ConsumedQuantity=24, ConsumedUnit="Hours", cost=36.0),
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, x_UsageType="USE1-Host:ml.m5.xlarge",
             ResourceId=arn, ConsumedQuantity=24, ConsumedUnit="Hours", cost=5.5),
        dict(day="2026-10-01", ServiceName=SM, ServiceCategory=AIML, x_InstanceType="ml.c5.xlarge",
             x_UsageType="USE1-Host:ml.c5.xlarge", ResourceId=arn, ConsumedQuantity=24, ConsumedUnit="Hours",
             cost=4.9)])
    got = dict(con.execute("SELECT x_UsageType, x_AiWorkload FROM focus").fetchall())
    assert got == {"USE1-Host:ml.g5.2xlarge": "Accelerated compute", "USE1-Host:ml.m5.xlarge": "ML platform",
                   "USE1-Host:ml.c5.xlarge": "ML platform"}
