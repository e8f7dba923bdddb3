"""Session 15 review (narration), items 7, 8, 12 and the storage callout of 15: a growth rate needs two closed
months, a whole-scope total names its span, the lifecycle total counts every recommendation, and only flows out of
an object store become a co-location action."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest

from finops_kit import egress as eg
from finops_kit import scope as S
from finops_kit import storage as st
from finops_kit.testing import focus_rows

S3 = "Amazon Simple Storage Service"
EC2 = "Amazon Elastic Compute Cloud"


def _bucket(first: str, last: str, gb: float = 1000.0):
    """One S3 bucket holding ``gb`` GB every day from ``first`` to ``last`` (daily CUR rows)."""
    rows = []
    for d in pd.date_range(first, last):
        q = gb / d.days_in_month
        rows.append(dict(day=str(d.date()), ServiceName=S3, ServiceCategory="Storage",
                         x_UsageType="USE1-TimedStorage-ByteHrs", ConsumedQuantity=q, ConsumedUnit="GB-Mo",
                         PricingQuantity=q, PricingUnit="GB-Mo", cost=Decimal(str(round(q * 0.023, 6))),
                         ResourceId="ml-data", RegionId="us-east-1"))
    return focus_rows(rows)


# ------------------------------------------------------------------------------------------------ item 7


def test_one_closed_month_has_no_growth_and_no_projection():
    """Review r3 (demo, AWS, Oct 2026): 'AWS | 0.0%' and a flat six-month projection from one closed month."""
    con = _bucket("2026-10-01", "2026-10-31")
    sc = S.resolve(con, {}, {"billing_period_start": "2026-10", "billing_period_end": "2026-10"})
    g = st.growth(con, "provider", scope=sc)
    assert math.isnan(g["monthly_growth"].iloc[0])  # before: 0.0
    assert "projected" not in set(g["kind"])  # before: six projected months at the same GB
    table = st.growth_table(g)
    assert table["growth_basis"].iloc[0].startswith("no growth: 1 closed billing period")
    assert "No growth rate or projection for AWS" in st.growth_note(table)


def test_no_closed_month_does_not_fall_back_to_open_months():
    """Review r2 (FOCUS sample, no closed period): the growth was computed over the open months despite the caption
    'closed billing periods only'. Here Oct is whole but Nov is open: October alone is one closed month."""
    con = _bucket("2026-09-01", "2026-11-05")
    sc = S.resolve(con, {}, {"date_start": "2026-09-15", "date_end": "2026-11-05"})  # part of Sep, Oct, Nov open
    g = st.growth(con, "provider", scope=sc)
    assert math.isnan(g["monthly_growth"].iloc[0]) and "projected" not in set(g["kind"])
    sc = S.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-11-05"})  # no closed month at all
    g = st.growth(con, "provider", scope=sc)
    assert math.isnan(g["monthly_growth"].iloc[0])
    assert set(g["kind"]) == {"actual (open period)"}
    assert "no closed billing periods" in g["growth_basis"].iloc[0]


def test_two_closed_months_still_give_a_growth_and_its_basis():
    con = focus_rows([dict(day=d, ServiceName=S3, ServiceCategory="Storage", x_UsageType="USE1-TimedStorage-ByteHrs",
                           ConsumedQuantity=gb, ConsumedUnit="GB-Mo", PricingQuantity=gb, PricingUnit="GB-Mo",
                           cost=gb * 0.023, ResourceId="ml-data", RegionId="us-east-1")
                      for d, gb in (("2026-09-30", 1000.0), ("2026-10-31", 1100.0), ("2026-11-30", 1210.0))])
    g = st.growth(con, "provider", months_ahead=1)
    table = st.growth_table(g)
    assert table["monthly_growth"].iloc[0] == pytest.approx(0.10)
    assert table["growth_basis"].iloc[0] == "3 closed billing periods, 2026-09 to 2026-11"
    assert st.growth_note(table) is None
    assert g.loc[g["kind"] == "projected", "gb"].tolist() == pytest.approx([1331.0])


# ------------------------------------------------------------------------------------------------ item 8


def test_scope_span_names_the_periods_a_whole_scope_total_covers():
    con = _bucket("2026-08-01", "2026-11-05")
    assert S.resolve(con, {}, {}).span() == "4 billing periods, 2026-08 to 2026-11 (1\u20135, open)"
    one = S.resolve(con, {}, {"billing_period_start": "2026-10", "billing_period_end": "2026-10"})
    assert one.span() == "the billing period 2026-10"
    days = S.resolve(con, {}, {"date_start": "2026-10-05", "date_end": "2026-10-18"})
    assert days.span() == "charge days 5 Oct 2026 to 18 Oct 2026"
    # the query is read to its end: the report's next query on the connection must not meet an unfinished result
    assert days.con.execute("SELECT 42").fetchall() == [(42,)]
    assert len(st.growth(con, "provider", scope=days)) > 0


# ------------------------------------------------------------------------------------------------ item 12


def test_recommended_totals_count_every_recommendation_not_the_rows_shown():
    """Review r5 (-p top_n=3): '8 recommended transitions save $12,937.90/month (top 3 shown)' summed the 3 rows."""
    recs = pd.DataFrame({"recommended": [True, False, True, True],
                         "monthly_saving": [Decimal("10.00"), Decimal("99.00"), Decimal("5.50"), Decimal("1.25")],
                         "one_time_cost": [Decimal("1.00"), Decimal("9.00"), Decimal("2.00"), None]})
    t = st.recommended_totals(recs)
    assert t == {"count": 3, "monthly_saving": Decimal("16.75"), "one_time_cost": Decimal("3.00")}
    empty = st.recommended_totals(recs.iloc[0:0])
    assert empty == {"count": 0, "monthly_saving": Decimal(0), "one_time_cost": Decimal(0)}


# ------------------------------------------------------------------------------------------------ item 15


def test_cross_region_summary_says_which_flows_leave_an_object_store():
    """Review r1: 'Co-locate the data read from i-03e652b832d37b5a7' while the row says Source is storage: no."""
    rows = [
        dict(day="2026-10-05", ServiceName=S3, x_UsageType="USE1-USW2-AWS-Out-Bytes", ConsumedQuantity=8192,
             ConsumedUnit="GB", cost=163.84, RegionId="us-east-1", ResourceId="imagenet-shards"),
        dict(day="2026-10-05", ServiceName=S3, x_UsageType="USE1-TimedStorage-ByteHrs", ConsumedQuantity=2048,
             ConsumedUnit="GB-Mo", cost=47.104, RegionId="us-east-1", ResourceId="imagenet-shards"),
        dict(day="2026-10-05", ServiceName="AWS Data Transfer", x_UsageType="USE1-USW2-AWS-Out-Bytes",
             ConsumedQuantity=50000, ConsumedUnit="GB", cost=1000, RegionId="us-east-1",
             ResourceId="i-03e652b832d37b5a7"),
        dict(day="2026-10-06", ServiceName=EC2, x_UsageType="USW2-BoxUsage:p4d.24xlarge", cost=30000,
             RegionId="us-west-2", x_AiWorkload="Accelerated compute"),
    ]
    con = focus_rows(rows)
    flows = eg.cross_region_summary(eg.cross_region_training(con, config={}))
    by = flows.set_index("bucket")
    assert not by.loc["i-03e652b832d37b5a7", "source_is_storage"]
    assert by.loc["imagenet-shards", "source_is_storage"]
    assert by.loc["i-03e652b832d37b5a7", "cost"] == Decimal("1000")
    assert flows["bucket"].tolist() == ["i-03e652b832d37b5a7", "imagenet-shards"]  # largest GB first
    assert eg.cross_region_summary(eg.cross_region_training(con, config={}).iloc[0:0]).empty


# ------------------------------------------------------------------------------------------------ item 13


def test_the_ai_report_reads_no_demo_file_unless_given_and_the_demo_config_gives_them():
    """Review r2: the FOCUS sample's AI report read data/samples/_ai_units (the notebook's defaults) and listed 7 demo
    hosts as '2,736 GPU-hours on no bill in scope'. The defaults are empty; finops.yaml (make demo) names the files."""
    from pathlib import Path

    from finops_kit import report
    from finops_kit.config import load_config

    repo = Path(__file__).resolve().parents[1]
    info = report.read_notebook_info(repo / "notebooks" / "ai_unit_economics.ipynb")
    side = ("gpu_metrics_dir", "host_map_file", "runs_file", "business_metrics_file")
    assert {n: info.params[n].default for n in side} == dict.fromkeys(side, "")
    demo = load_config(repo / "finops.yaml")["reports"]["parameters"]
    assert all((repo / demo[n]).exists() for n in side), demo
    [job] = report.plan([info], {}, demo, str(repo / "wh.duckdb"), None)
    assert job.parameters["runs_file"] == "data/samples/_ai_units/training_runs.csv" and job.cli_parameters == {}


def test_idle_gpu_says_when_the_metrics_and_the_bill_do_not_overlap(tmp_path):
    """Review r2: 'Every accelerated resource billed in the window has utilization metrics.' on a bill with no
    accelerator-hours in the metrics' window (metrics Oct 2026, bill Sep 2024)."""
    from pathlib import Path

    from finops_kit import gpu

    side = Path(__file__).resolve().parents[1] / "data" / "samples" / "_ai_units" / "gpu"
    con = focus_rows([dict(day="2024-09-05", ServiceName=EC2, x_UsageType="USE1-BoxUsage:m5.large", cost=10,
                           ResourceId="i-0abc")])
    sc = S.resolve(con, {}, {})
    gpu.load_utilization(con, side, side / "hosts.csv")
    idle = gpu.idle_gpu(con, sc)
    assert idle.unmonitored.empty and not idle.overlaps  # before: no way to tell the two apart
    assert idle.totals["cost_per_utilized_gpu_hour"] is None and idle.totals["unbilled_resources"] == 7


def test_token_summary_counts_the_service_lines_it_reconciled():
    """Review r2: 'Every class adds up to the service lines exactly.' over an empty reconciliation table."""
    from finops_kit import tokens as tk

    con = focus_rows([dict(day="2024-09-05", ServiceName=EC2, x_UsageType="USE1-BoxUsage:m5.large", cost=10)])
    s = tk.summary(con, S.resolve(con, {}, {}))
    assert s.services == 0 and s.tokens == 0 and s.cost_per_1m is None


def test_unit_costs_say_how_many_metrics_days_the_scope_holds(tmp_path):
    """Review r2: 'Cost … not in any unit cost: $0.00 of $0.00: .' for a metrics file of Oct 2026 on a 2024 bill."""
    from finops_kit import unit_economics as ue

    bm = tmp_path / "bm.csv"
    bm.write_text("date,application,requests,tokens\n2026-10-01,chat,1000,\n2026-10-02,chat,1000,\n")
    con = focus_rows([dict(day="2024-09-05", ServiceName=EC2, x_UsageType="USE1-BoxUsage:m5.large", cost=10)])
    cfg = {"tag_policy": {"keys": {"project": {}}}}
    u = ue.inference_unit_costs(con, S.resolve(con, cfg, {}), bm)
    assert u.days_in_scope == 0 and u.total_cost == 0
    assert tuple(str(d) for d in u.metrics_days) == ("2026-10-01", "2026-10-02")
    con = focus_rows([dict(day="2026-10-02", ServiceName=EC2, x_UsageType="USE1-BoxUsage:m5.large", cost=10,
                           Tags={"project": "chat"})])
    u = ue.inference_unit_costs(con, S.resolve(con, cfg, {}), bm)
    assert u.days_in_scope == 1 and u.total_cost == Decimal("10")


# ------------------------------------------------------------------------------------------------ item 15 (tagging)


def test_category_note_states_only_the_differences_the_bill_has():
    """Review r2 (FOCUS sample): "'Storage' $0.00 also holds transfer billed under S3 and lacks EBS volumes billed
    under EC2" was typed; on the demo 'Storage' holds no transfer at all (its $23,743.76 of non-storage is S3 fees
    the class table does not classify) while EBS ($158,908.96) is outside it."""
    import finops_kit.notebook as nb

    rows = [
        dict(day="2026-10-05", ServiceName=S3, ServiceCategory="Storage", x_UsageType="USE1-TimedStorage-ByteHrs",
             ConsumedQuantity=1000, ConsumedUnit="GB-Mo", cost=23),
        dict(day="2026-10-05", ServiceName=EC2, ServiceCategory="Compute", x_UsageType="USE1-EBS:VolumeUsage.gp3",
             ConsumedQuantity=500, ConsumedUnit="GB-Mo", cost=40),
        dict(day="2026-10-05", ServiceName=EC2, ServiceCategory="Compute", x_UsageType="USE1-USW2-AWS-Out-Bytes",
             ConsumedQuantity=100, ConsumedUnit="GB", cost=2),
        dict(day="2026-10-05", ServiceName=EC2, ServiceCategory="Compute", x_UsageType="USE1-BoxUsage:m5.large",
             cost=100),
    ]
    con = focus_rows(rows)
    d = eg.category_differences(con, S.resolve(con, {}, {}))
    assert d["storage_category"] == Decimal("23") and d["storage_elsewhere"] == Decimal("40")
    assert d["storage_elsewhere_services"] == [EC2] and d["not_storage_in_storage"] == 0
    assert d["transfer_elsewhere"] == Decimal("2") and d["networking_category"] == 0
    note = eg.category_note(d, nb.money)
    assert "'Storage' $23.00 leaves out storage billed under other categories, $40.00 (mostly " + EC2 + ")" in note
    assert "holds charges that are not storage" not in note
    assert "'Networking' $0.00 leaves out data transfer billed under other categories, $2.00" in note
    bare = focus_rows([rows[0]])
    note = eg.category_note(eg.category_differences(bare, S.resolve(bare, {}, {})), nb.money)
    assert "'Storage' $23.00 equals the storage figure to the cent" in note
    assert "'Networking' $0.00 equals the data-transfer figure to the cent" in note
