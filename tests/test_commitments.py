"""Commitments: closed forms of sizing and break-even, and coverage / utilization / savings / expiry on the sample
exports, checked against the providers' own raw columns (read here from the files, independently of the mapping)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import commitments as cm
from finops_kit import scope

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
RI_ARN = "arn:aws:ec2:us-east-1:210987654321:reserved-instances/5e8b2d1a-9c47-4f60-b3a2-7d1e0c9f8b44"


# ------------------------------------------------------------------------------------------- closed forms
def test_break_even_utilization_is_commitment_rate_over_on_demand_rate():
    assert cm.break_even_utilization(0.72, 1.0) == pytest.approx(0.72)
    assert cm.break_even_utilization(10.763664, 14.949534) == pytest.approx(0.72, abs=1e-6)
    with pytest.raises(ValueError):
        cm.break_even_utilization(1.0, 0.0)


def test_optimal_level_is_the_discount_quantile_of_usage():
    """Usage 1..10 instances (one hour each), on demand 1.00/h, commitment 0.65/h (35% off).
    S(c) = sum(min(u, c)) - 0.65 * c * 10: S(3) = 27 - 19.5 = 7.5, S(4) = 34 - 26 = 8.0, S(5) = 40 - 32.5 = 7.5.
    The optimum covers the 35th percentile: P(u > 4) = 0.6 <= 0.65 < P(u > 3) = 0.7."""
    usage = list(range(1, 11))
    curve = cm.savings_curve(usage, 1.0, 0.65).set_index("level")
    assert curve.loc[3.0, "net_savings"] == pytest.approx(7.5)
    assert curve.loc[4.0, "net_savings"] == pytest.approx(8.0)
    assert curve.loc[5.0, "net_savings"] == pytest.approx(7.5)
    assert curve.loc[4.0, "utilization"] == pytest.approx(34 / 40)
    assert curve.loc[0.0, "net_savings"] == 0
    assert cm.optimal_level(usage, 1.0, 0.65) == 4.0
    # no discount, no commitment; a flat usage is covered whole at any discount
    assert cm.optimal_level(usage, 1.0, 1.0) == 0.0
    assert cm.optimal_level([3.0] * 24, 2.0, 1.0) == 3.0


def test_level_at_risk_covers_the_chosen_percentile_of_hours():
    usage = [5, 1, 9, 3, 7, 2, 10, 4, 8, 6]
    assert cm.level_at_risk(usage, 10) == 1
    assert cm.level_at_risk(usage, 50) == 5
    assert cm.level_at_risk(usage, 100) == 10
    with pytest.raises(ValueError):
        cm.level_at_risk(usage, 101)


def test_sizing_counts_days_without_usage_as_zero():
    """A family that ran 4 instances for 10 days of a 100-day window is not steady: committing costs money."""
    days = pd.date_range("2026-01-01", periods=100, freq="D")
    frame = pd.DataFrame({"provider": "AWS", "instance_family": "p5", "currency": "USD", "day": days,
                          "instances": [4.0 if i < 10 else 0.0 for i in range(100)],
                          "committed_instances": 0.0, "on_demand_rate": 55.04})
    out = cm.sizing(frame, {"1-year": 0.3})
    assert out["optimal_level"].iloc[0] == 0.0 and out["optimal_net_savings_year"].iloc[0] == 0.0
    assert out["break_even_utilization"].iloc[0] == pytest.approx(0.7)


def test_sizing_says_what_moving_from_todays_level_is_worth():
    """Flat usage of 5 instances, 2 covered today, 40% off a 10.00/h rate: the optimum covers all 5 (50.00/h of
    on-demand value, the unit levels are in; 5 instances of the one size); moving from 2 to 5 saves
    3 instances x 10.00 x 40% x 8760 h a year."""
    frame = pd.DataFrame({"provider": "AWS", "instance_family": "p4d", "currency": "USD",
                          "day": pd.date_range("2026-01-01", periods=30, freq="D"), "instances": 5.0,
                          "committed_instances": 2.0, "on_demand_rate": 10.0})
    row = cm.sizing(frame, {"1-year": 0.4}, risk_percentile=50).iloc[0]
    assert row["optimal_level"] == 50.0 and row["change_level"] == 30.0 and row["optimal_instances"] == 5.0
    assert row["level_unit"] == "on-demand USD/h" and row["optimal_commitment_per_hour"] == pytest.approx(30.0)
    assert row["gain_vs_today_year"] == pytest.approx(3 * 10.0 * 0.4 * 8760)
    assert row["optimal_net_savings_year"] == pytest.approx(5 * 10.0 * 0.4 * 8760)
    assert row["risk_level"] == 50.0 and row["risk_instances"] == 5.0 and row["optimal_utilization"] == 1.0


def test_extra_options_are_parsed_or_refused_in_one_line():
    from finops_kit.errors import ConfigError

    assert cm.parse_options(["3-year quote=0.45", "SP=0.3"]) == {"3-year quote": 0.45, "SP": 0.3}
    assert cm.parse_options({"x": 0.1}) == {"x": 0.1} and cm.parse_options([]) == {}
    for bad, words in ((["0.45"], "expected NAME=DISCOUNT"), (["q=abc"], "expected a number"),
                       (["q=1.5"], "fraction in [0, 1)")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            cm.parse_options(bad)


# ------------------------------------------------------------------------------------------- sample data
def _planted_files(dataset: str, sub: str = "") -> list[str]:
    doc = json.loads((SAMPLES / "PLANTED.json").read_text(encoding="utf-8"))
    return [str(SAMPLES / f) for f in doc["datasets"][dataset]["files"] if sub in f]


def test_reserved_instance_unused_dollars_equal_the_cur_unused_fee_columns(sample_scope):
    """The RI's unused cost (FOCUS Unused rows) is what CUR 2.0 states on its RIFee rows, read from the parquet."""
    con, sc = sample_scope
    files = _planted_files("aws-cur2")
    raw = duckdb.sql(f"""
        SELECT sum(CAST(reservation_unused_recurring_fee AS DECIMAL(38,12))
                   + CAST(reservation_unused_amortized_upfront_fee_for_billing_period AS DECIMAL(38,12))),
               sum(CAST(reservation_effective_cost AS DECIMAL(38,12))) FILTER (WHERE line_item_line_item_type = 'DiscountedUsage')
        FROM read_parquet({files!r}) WHERE reservation_reservation_a_r_n = '{RI_ARN}'""").fetchall()[0]
    inv = cm.inventory(con, sc).set_index("commitment_id")
    ri = inv.loc[RI_ARN]
    assert ri["unused_cost"] == raw[0] and ri["used_cost"] == raw[1]
    assert ri["utilization"] == pytest.approx(float(raw[1] / (raw[0] + raw[1])))
    assert ri["type"] == "Reserved Instance" and ri["end_date"] == dt.date(2026, 12, 1)


def test_azure_reservation_is_three_quarters_used(sample_scope):
    """The Azure sample's reservation covers 4 x NC8as_T4_v3 and 3 VMs use it around the clock: 75% utilization,
    the unused quarter exactly the amortized export's UnusedReservation cost."""
    con, sc = sample_scope
    files = _planted_files("azure", "azure/actual/")
    amortized = [f.replace("/actual/", "/amortized/") for f in files]
    raw = duckdb.sql(f"""
        SELECT sum(CAST(CostInBillingCurrency AS DECIMAL(38,12))) FROM read_csv({amortized!r}, all_varchar=true)
        WHERE ChargeType = 'UnusedReservation'""").fetchall()[0][0]
    inv = cm.inventory(con, sc)
    res = inv[(inv["provider"] == "Microsoft") & (inv["type"] == "Reservation")]
    assert len(res) == 3  # the T4 reservation, its renewal and the Azure OpenAI PTU reservation
    t4 = res[res["name"].str.startswith("NC8as_T4_v3")]
    assert list(t4["utilization"]) == [pytest.approx(0.75), pytest.approx(0.75)]
    assert sum(res["unused_cost"]) == raw


def test_savings_plan_savings_count_the_covered_usage_once(sample_scope):
    """Savings of AWS Savings Plans = on-demand value of the covered usage - its SP effective cost - unused, from
    CUR's own columns. The SavingsPlanNegation rows (ListCost 0) must not cancel the covered usage's list value."""
    con, sc = sample_scope
    files = _planted_files("aws-cur2")
    od, eff, unused = duckdb.sql(f"""
        SELECT sum(CAST(pricing_public_on_demand_cost AS DECIMAL(38,12)))
                 FILTER (WHERE line_item_line_item_type = 'SavingsPlanCoveredUsage'),
               sum(CAST(savings_plan_savings_plan_effective_cost AS DECIMAL(38,12)))
                 FILTER (WHERE line_item_line_item_type = 'SavingsPlanCoveredUsage'),
               sum(CAST(savings_plan_total_commitment_to_date AS DECIMAL(38,12))
                   - CAST(savings_plan_used_commitment AS DECIMAL(38,12)))
                 FILTER (WHERE line_item_line_item_type = 'SavingsPlanRecurringFee')
        FROM read_parquet({files!r})""").fetchall()[0]
    inv = cm.inventory(con, sc)
    sp = inv[(inv["provider"] == "AWS") & (inv["type"] == "Savings Plan")]
    assert len(sp) == 4  # three Compute Savings Plans and a SageMaker Savings Plan
    assert sum(sp["covered_list_cost"]) == od and sum(sp["used_cost"]) == eff and sum(sp["unused_cost"]) == unused
    assert sum(sp["savings"]) == od - eff - unused > 0


def test_utilization_per_period_adds_up_to_the_inventory(sample_scope):
    con, sc = sample_scope
    per = cm.utilization(con, sc, by=("commitment", "period"))
    inv = cm.inventory(con, sc).set_index("commitment_id")
    for cid, g in per.groupby("commitment_id"):
        assert sum(g["used_cost"]) == inv.loc[cid, "used_cost"]
        assert sum(g["unused_cost"]) == inv.loc[cid, "unused_cost"]
    # the RI's owner decommissioned half its instances on 2026-09-01: from then on half the RI is unused
    ri = per[per["commitment_id"] == RI_ARN].set_index("period")
    assert ri.loc[dt.date(2026, 10, 1), "utilization"] == pytest.approx(0.5)
    assert ri.loc[dt.date(2026, 10, 1), "closed"] and not ri.loc[dt.date(2026, 11, 1), "closed"]


def test_coverage_of_a_fully_reserved_family_and_of_spot_free_eligible_usage(sample_scope):
    con, sc = sample_scope
    cov = cm.coverage(con, sc, by=("provider", "instance_family"), closed_only=True)
    t4 = cov[(cov["provider"] == "Microsoft") & (cov["instance_family"] == "NCasT4 v3")].iloc[0]
    assert t4["coverage_hours"] == pytest.approx(1.0) and t4["on_demand_cost"] == 0
    # eligible = on demand + committed accelerated usage: spot hours are not in the denominator
    m = fk.metrics(con, sc)
    acc = m.accelerators
    want = acc[(acc["pricing"].isin(["On-demand", "Committed"]))]
    total = cm.coverage(con, sc, by=("provider",))
    for prov, g in want.groupby("provider"):
        row = total[total["provider"] == prov].iloc[0]
        # a family whose instance-hours are unknown (null: GCP Vertex AI GPUs) has none to add
        assert row["eligible_hours"] == pytest.approx(float(g["instance_hours"].sum()), rel=1e-9)
        committed = float(g[g["pricing"] == "Committed"]["instance_hours"].sum())
        assert row["committed_hours"] == pytest.approx(committed, rel=1e-9)


def test_expiry_calendar_lists_the_reservation_ending_within_30_days(sample_scope):
    con, sc = sample_scope
    today = cm.as_of(con, sc)
    assert today == dt.date(2026, 11, 26)
    cal = cm.expiry(con, sc).set_index("commitment_id")
    ri = cal.loc[RI_ARN]
    assert ri["window"] == "30 days" and ri["days_left"] == 5
    assert ri["value_period"] == dt.date(2026, 10, 1) and ri["current_utilization"] == pytest.approx(0.5)
    # the first AWS Savings Plan ended 2026-06-01 and is not in the calendar; the Azure ones have no end in the export
    assert (cal["provider"] == "AWS").sum() == 4
    sm = cal[cal["offering"] == "SageMakerSavingsPlans"].iloc[0]  # the SageMaker SP ends 2027-01-15: 60-day window
    assert sm["end_date"] == dt.date(2027, 1, 15) and sm["days_left"] == 50 and sm["window"] == "60 days"
    assert set(cal[cal["provider"] == "Microsoft"]["window"]) == {"unknown"}
    assert Decimal(str(ri["monthly_value"])) > 0


def test_hourly_usage_is_read_from_closed_periods_only(sample_scope):
    con, sc = sample_scope
    hu = cm.hourly_usage(con, sc)
    closed = set(sc.closed_periods())
    months = {dt.date(d.year, d.month, 1) for d in hu["day"]}
    assert months <= closed and max(hu["day"]) < dt.date(2026, 11, 1)
    # every family has one value per day of the window (days without usage are zeros)
    n = hu.groupby(["provider", "instance_family"]).size()
    assert n.nunique() == 1


def test_savings_plan_covered_hours_are_counted_once(sample_scope):
    """CUR bills SP-covered usage twice (SavingsPlanCoveredUsage + its SavingsPlanNegation, both with the usage
    amount); its instance-hours are the covered rows' usage amounts, once, and the negation adds no list value."""
    con, sc = sample_scope
    files = _planted_files("aws-cur2")
    raw = duckdb.sql(f"""
        SELECT sum(CAST(line_item_usage_amount AS DOUBLE)) FROM read_parquet({files!r})
        WHERE line_item_line_item_type IN ('SavingsPlanCoveredUsage', 'DiscountedUsage')
          AND line_item_usage_type LIKE '%:p4d.%'""").fetchall()[0][0]
    cov = cm.coverage(con, sc, by=("provider", "instance_family")).set_index(["provider", "instance_family"])
    assert cov.loc[("AWS", "p4d"), "committed_hours"] == pytest.approx(raw, rel=1e-12)
    neg = con.execute("""SELECT count(*), sum(ConsumedQuantity), sum(ListCost), max(ListUnitPrice) FROM focus
                         WHERE ChargeCategory = 'Usage' AND BilledCost < 0 AND x_SourceFormat = 'aws-cur2'
                           AND CommitmentDiscountType = 'Savings Plan'""").fetchall()[0]
    assert neg[0] > 0 and neg[1:] == (0, 0, 0)


def test_metrics_report_commitment_coverage_utilization_and_unused_dollars(sample_scope):
    """`finops-kit metrics` carries the commitment figures: the (all) row adds up the providers and equals the
    inventory's used/unused totals and the coverage table."""
    con, sc = sample_scope
    m = fk.metrics(con, sc)
    t = m.commitments.set_index("provider")
    inv = cm.inventory(con, sc)
    assert t.loc["(all)", "unused_cost"] == sum(inv["unused_cost"]) and t.loc["(all)", "used_cost"] == sum(inv["used_cost"])
    assert t.loc["AWS", "unused_cost"] == sum(inv[inv["provider"] == "AWS"]["unused_cost"])
    cov = cm.coverage(con, sc, by=())
    assert t.loc["(all)", "coverage_hours"] == pytest.approx(cov["coverage_hours"].iloc[0], rel=1e-12)
    assert 0 < t.loc["(all)", "utilization"] < 1 and 0 < t.loc["Google Cloud", "utilization"] < 1
    doc = m.to_dict()
    assert {r["provider"] for r in doc["commitments"]} == {"AWS", "Google Cloud", "Microsoft", "(all)"}


# ------------------------------------------------------------------------------------------- planted facts
def _planted_commitments() -> dict:
    return json.loads((SAMPLES / "PLANTED.json").read_text(encoding="utf-8"))["commitments"]


def test_planted_unused_dollars_utilization_and_end_dates_are_recovered_exactly(sample_scope):
    """Every commitment the generator billed: its used and unused dollars (the generator's own Decimals) are the
    inventory's to the cent and beyond, its utilization follows, and the end dates the exports carry are read."""
    con, sc = sample_scope
    planted = _planted_commitments()["commitments"]
    assert len(planted) == 9
    inv = cm.inventory(con, sc).set_index("commitment_id")
    for p in planted:
        got = inv.loc[p["commitment_id"]]
        assert got["used_cost"] == Decimal(p["used_cost"]), p["commitment_id"]
        assert got["unused_cost"] == Decimal(p["unused_cost"]), p["commitment_id"]
        assert got["utilization"] == pytest.approx(float(Decimal(p["utilization"])), abs=1e-12)
        want_end = dt.date.fromisoformat(p["end_date"]) if p["end_date"] else None
        assert (got["end_date"] if got["end_date"] == got["end_date"] else None) == want_end
        if Decimal(p["used_hours"]):  # reservations: the hours they covered
            assert got["covered_hours"] == pytest.approx(float(Decimal(p["used_hours"])), rel=1e-12)
        if "covered_list_cost" in p:  # Savings Plans: the on-demand value of the usage they covered
            assert got["covered_list_cost"] == Decimal(p["covered_list_cost"]), p["commitment_id"]
        # CommitmentDiscountQuantity/Unit: reservations in hours (AWS RI, Azure reservations incl. the PTU one),
        # savings plans in commitment dollars (AWS and Azure)
        if p["provider"] == "Microsoft" and p["type"] == "Reservation":
            assert got["quantity_unit"] == "Hours" and got["used_quantity"] == Decimal(p["used_hours"])
            assert (got["unused_quantity"] or 0) == Decimal(p["unused_hours"]), p["commitment_id"]
        elif p["provider"] == "Microsoft":
            assert got["quantity_unit"] == "USD" and got["used_quantity"] == Decimal(p["used_cost"])
            assert got["unused_quantity"] == Decimal(p["unused_cost"])
        if p["provider"] == "AWS":
            if p["type"] == "Reserved Instance":
                assert got["quantity_unit"] == "Hours" and got["used_quantity"] == Decimal(p["used_hours"])
                assert got["unused_quantity"] == Decimal(p["hours"]) - Decimal(p["used_hours"])
            else:
                assert got["quantity_unit"] == "USD" and got["used_quantity"] == Decimal(p["used_cost"])
                assert got["unused_quantity"] == Decimal(p["unused_cost"])
    ri = next(p for p in planted if p["commitment_id"] == RI_ARN)
    per = cm.utilization(con, sc, by=("commitment", "period"))
    per = per[per["commitment_id"] == RI_ARN].set_index("period")
    for p in ri["periods"]:
        month = dt.date.fromisoformat(p["billing_period"] + "-01")
        assert per.loc[month, "unused_cost"] == Decimal(p["unused_cost"])


def test_planted_family_coverage_is_recovered_exactly(sample_scope):
    """The generator's eligible and committed instance-hours per AWS instance family (SP and RI coverage applied
    line by line) are what coverage reads back from FOCUS through units.py."""
    con, sc = sample_scope
    fams = [f for f in _planted_commitments()["families"] if Decimal(f["eligible_hours"])]
    cov = cm.coverage(con, sc, by=("provider", "instance_family")).set_index(["provider", "instance_family"])
    assert {f["instance_family"] for f in fams} >= {"p4d", "g5"}
    for f in fams:
        got = cov.loc[(f["provider"], f["instance_family"])]
        assert got["eligible_hours"] == pytest.approx(float(Decimal(f["eligible_hours"])), rel=1e-12)
        assert got["committed_hours"] == pytest.approx(float(Decimal(f["committed_hours"])), rel=1e-12)
        assert got["coverage_hours"] == pytest.approx(float(Decimal(f["coverage_hours"])), rel=1e-12)


def test_provisioned_throughput_break_even_in_tokens_per_hour():
    """An Azure OpenAI PTU deployment of gpt-4o billed 2.00/h for two days, and pay-as-you-go gpt-4o tokens at
    2.50 per 1M input and 10.00 per 1M output (blended over the billed mix: 3M in + 1M out = 17.50 for 4M tokens =
    4.375 per 1M). Break-even = 2.00 / 4.375e-6 = 457,142.857 tokens per hour; day 1's pay-as-you-go tokens (4M / 24
    = 166,667 per hour) are below it, day 2's (24M / 24 = 1M per hour) above."""
    from finops_kit.testing import focus_rows

    def azure(meter: str, qty: str, cost: str, unit: str, day: str) -> dict:
        return dict(ProviderName="Microsoft", PublisherName="Microsoft", InvoiceIssuerName="Microsoft",
                    ServiceName="Azure AI Services", ServiceCategory="AI and Machine Learning",
                    x_UsageType=f"Azure OpenAI {meter}", SkuMeter=f"Azure OpenAI {meter}", PricingUnit=unit,
                    PricingQuantity=qty, cost=cost, day=day, x_AiWorkload="Managed AI service")

    con = focus_rows([
        azure("gpt-4o Provisioned Managed Global", "24", "48.00", "Hours", "2026-10-05"),
        azure("gpt-4o Provisioned Managed Global", "24", "48.00", "Hours", "2026-10-06"),
        azure("gpt-4o-0806-Inp-glbl", "3", "7.50", "1000000 Units", "2026-10-05"),
        azure("gpt-4o-0806-Outp-glbl", "1", "10.00", "1000000 Units", "2026-10-05"),
        azure("gpt-4o-0806-Inp-glbl", "18", "45.00", "1000000 Units", "2026-10-06"),
        azure("gpt-4o-0806-Outp-glbl", "6", "60.00", "1000000 Units", "2026-10-06"),
    ])
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    be = cm.provisioned_break_even(con, sc)
    assert len(be) == 1
    row = be.iloc[0]
    assert row["capacity_hours"] == 48 and row["hourly_cost"] == Decimal("2")
    assert float(row["payg_per_1m"]) == pytest.approx(122.5 / 28)
    # exact: 2.00 x 28M tokens / 122.50
    assert row["break_even_tokens_per_hour"] == Decimal("2") * 28_000_000 / Decimal("122.5")
    assert (row["payg_days"], row["days_payg_above"]) == (2, 1)
    assert row["hours_per_day_above"] == 12  # day 2's 24 hours above, over 2 days
    assert row["payg_mix"] == {"input": 21_000_000, "output": 7_000_000}


def test_contract_commitment_burn_down_sums_the_applied_cost_of_focus_1_3(tmp_path):
    """FOCUS 1.3 Contract Commitment + Cost and Usage written by focus-data-toolkit (an independent implementation):
    the cost applied to each commitment is the sum of its ContractApplied elements, read here from the CSV."""
    import csv
    import subprocess
    import sys

    pytest.importorskip("focus_data_toolkit", reason="focus-data-toolkit is a dev dependency")
    out = tmp_path / "fdt"
    done = subprocess.run([sys.executable, "-m", "focus_data_toolkit.cli", "generate", "--provider", "aws",
                           "--focus-version", "1.3", "--rows", "400", "--seed", "7", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest(str(out), warehouse=wh, progress=False)
    con = fk.connect(wh, read_only=True)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    today = cm.as_of(con, sc)
    burn = cm.contract_burndown(con, sc).set_index("commitment_id")
    want: dict[str, Decimal] = {}
    with open(out / "focus_1_3_cost_and_usage_aws.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["ContractApplied"] and dt.date.fromisoformat(r["ChargePeriodStart"][:10]) <= today:
                for e in json.loads(r["ContractApplied"])["Elements"]:
                    if "ContractCommitmentAppliedCost" not in e:  # an element applying a quantity only
                        continue
                    cid = e["ContractCommitmentId"]
                    want[cid] = want.get(cid, Decimal(0)) + Decimal(str(e["ContractCommitmentAppliedCost"]))
    with open(out / "focus_1_3_contract_commitment_aws.csv", newline="", encoding="utf-8") as fh:
        commitments = list(csv.DictReader(fh))
    assert len(burn) == len(commitments) and any(v > 0 for v in want.values())
    for c in commitments:
        cid = c["ContractCommitmentId"]
        assert float(burn.loc[cid, "applied_cost"]) == pytest.approx(float(want.get(cid, 0)), abs=1e-6)
        assert burn.loc[cid, "commitment_cost"] == Decimal(c["ContractCommitmentCost"])
    first = burn.iloc[0]
    term = (first["period_end"] - first["period_start"]).total_seconds()
    elapsed = (pd.Timestamp(today) - first["period_start"]).total_seconds() + 86400
    assert first["elapsed_share"] == pytest.approx(elapsed / term)
    assert first["projected_shortfall"] == pytest.approx(
        float(first["commitment_cost"]) - float(first["applied_cost"]) / first["elapsed_share"])
    con.close()


# ------------------------------------------------------------------------------------------- provisioned AI (samples)
def _planted_break_even() -> list[dict]:
    return json.loads((SAMPLES / "PLANTED.json").read_text(encoding="utf-8"))["ai_tokens"]["break_even"]


def test_bedrock_provisioned_throughput_break_even_closed_form(sample_scope):
    """Bedrock provisioned throughput of Claude 3.5 Haiku: 50 model units at 0.04 per '1K TPM Hour' = 2.00 per hour.
    The same model on demand: 0.0008 per 1K input and 0.004 per 1K output tokens, billed in an exact 10:1 mix, so one
    token costs (10 x 0.0000008 + 1 x 0.000004) / 11 = 0.000012 / 11 and the break-even is
    2.00 / (0.000012 / 11) = 1,833,333.33 tokens per hour (44M tokens a day)."""
    con, sc = sample_scope
    be = cm.provisioned_break_even(con, sc).set_index(["provider", "model"])
    row = be.loc[("AWS", "Claude 3.5 Haiku")]
    assert row["hourly_cost"] == Decimal("2.00")
    assert row["payg_mix"]["input"] == 10 * row["payg_mix"]["output"]
    per_token = (10 * Decimal("0.0000008") + Decimal("0.000004")) / 11
    assert row["break_even_tokens_per_hour"] == Decimal("2.00") / per_token
    assert round(row["break_even_tokens_per_hour"], 2) == Decimal("1833333.33")


def test_planted_provisioned_break_even_is_recovered_exactly(sample_scope):
    """Both capacity lines of the samples have the same model billed pay-as-you-go (Bedrock Claude 3.5 Haiku; Azure
    OpenAI gpt-5 PTU, model from the deployment's tag, reserved, with unused PTU-hours): hourly price,
    tokens, break-even, days and hours per day above it are the generator's, and `finops-kit metrics` shows them."""
    con, sc = sample_scope
    planted = _planted_break_even()
    assert {(p["provider"], p["model"]) for p in planted} == {("AWS", "Claude 3.5 Haiku"), ("Microsoft", "gpt-5")}
    be = cm.provisioned_break_even(con, sc).set_index(["provider", "model"])
    m = fk.metrics(con, sc)
    assert "provisioned" in m.tables
    mt = m.provisioned.set_index(["provider", "model"])
    for p in planted:
        row = be.loc[(p["provider"], p["model"])]
        assert row["capacity_cost"] == Decimal(p["capacity_cost"]), p["model"]
        assert row["capacity_hours"] == float(p["capacity_hours"])
        assert row["hourly_cost"] == Decimal(p["hourly_cost"])
        assert row["payg_tokens"] == p["payg_tokens"] and row["payg_cost"] == Decimal(p["payg_cost"])
        assert row["payg_mix"] == p["payg_mix"]
        # closed form over the stated mix: hourly price / (sum of tokens x price per token / tokens)
        per_token = sum(n * Decimal(p["payg_prices_per_token"][t]) for t, n in p["payg_mix"].items()) / p["payg_tokens"]
        closed = Decimal(p["hourly_cost"]) / per_token
        assert round(closed, 6) == Decimal(p["break_even_tokens_per_hour"])
        assert round(row["break_even_tokens_per_hour"], 6) == Decimal(p["break_even_tokens_per_hour"])
        assert (row["payg_days"], row["days_payg_above"]) == (p["payg_days"], p["days_payg_above"])
        assert round(row["hours_per_day_above"], 6) == Decimal(p["hours_per_day_above"])
        assert mt.loc[(p["provider"], p["model"]), "break_even_tokens_per_hour"] == row["break_even_tokens_per_hour"]
    doc = m.to_dict()
    assert {r["model"] for r in doc["provisioned"]} == {"Claude 3.5 Haiku", "gpt-5"}


def test_azure_ptu_reservation_unused_ptu_hours(sample_scope):
    """The Azure OpenAI PTU reservation (15 PTUs from 2026-08-01) covers the deployment's PTU-hours; after it shrank
    to 10 PTUs on 2026-10-15, 5 PTUs x 24 h a day are UnusedReservation rows of the amortized export."""
    from finops_kit.samples import ai_commitments as ac

    con, sc = sample_scope
    files = [f.replace("/actual/", "/amortized/") for f in _planted_files("azure", "azure/actual/")]
    raw = duckdb.sql(f"""
        SELECT sum(CAST(CostInBillingCurrency AS DECIMAL(38,12))), sum(CAST(Quantity AS DECIMAL(38,12))), count(*)
        FROM read_csv({files!r}, all_varchar=true)
        WHERE ChargeType = 'UnusedReservation' AND ReservationName = '{ac.PTU_RESERVATION_NAME}'""").fetchall()[0]
    days = (dt.date(2026, 11, 27) - dt.date(2026, 10, 15)).days
    assert raw[2] == days and raw[1] == 5 * 24 * days
    assert raw[0] == 5 * 24 * days * ac.PTU_RESERVATION_HOURLY
    inv = cm.inventory(con, sc).set_index("commitment_id")
    ptu = inv.loc[ac.reservation_id()]
    assert ptu["unused_cost"] == raw[0] and ptu["type"] == "Reservation"
    planted = next(p for p in _planted_commitments()["commitments"] if p["commitment_id"] == ac.reservation_id())
    assert Decimal(planted["unused_hours"]) == 5 * 24 * days


def test_gcp_resource_cud_unused_per_period_is_observable(sample_scope):
    """The A100 CUD's fee rows carry subscription.instance_id in the export (read here from the JSONL); the kit
    gives them that commitment id, links the CUD credits to it and bills fee - credits applied as Unused: per billing
    period the generator's unused GPU-hours x the commitment price, to the cent (covered hours are derived from the
    credits' 6-decimal amounts), and the committed hours exactly."""
    from finops_kit.samples import gcp as gs

    con, sc = sample_scope
    planted = next(g for g in _planted_commitments()["gcp_cud"] if g["commitment_id"] == gs.CUD_A100_SUBSCRIPTION)
    files = _planted_files("gcp")
    raw = duckdb.sql(f"""
        SELECT count(*), sum(CAST(cost AS DECIMAL(38,12))) FROM read_json({files!r}, format='newline_delimited')
        WHERE subscription.instance_id = '{gs.CUD_A100_SUBSCRIPTION}'""").fetchall()[0]
    fees = con.execute(f"""SELECT count(*), sum(BilledCost), sum(CommitmentDiscountQuantity),
                                  any_value(CommitmentDiscountUnit) FROM focus
                           WHERE ChargeCategory = 'Purchase' AND CommitmentDiscountId = '{gs.CUD_A100_SUBSCRIPTION}'
                        """).fetchall()[0]
    assert fees[:2] == raw and fees[3] == "Hours"
    assert fees[2] == sum(Decimal(p["committed_hours"]) for p in planted["periods"])
    per = cm.utilization(con, sc, by=("commitment", "period"))
    per = per[per["commitment_id"] == gs.CUD_A100_SUBSCRIPTION].set_index("period")
    assert len(per) == len(planted["periods"])
    for p in planted["periods"]:
        month = dt.date.fromisoformat(p["billing_period"] + "-01")
        assert abs(per.loc[month, "unused_cost"] - Decimal(p["unused_cost"])) < Decimal("0.01"), p
        assert per.loc[month, "used_cost"] + per.loc[month, "unused_cost"] > 0
    inv = cm.inventory(con, sc).set_index("commitment_id").loc[gs.CUD_A100_SUBSCRIPTION]
    assert bool(inv["unused_observable"]) and 0 < inv["utilization"] < 1
    total = sum(Decimal(p["unused_hours"]) for p in planted["periods"])
    assert abs(inv["unused_quantity"] - total) < Decimal("0.01") and inv["quantity_unit"] == "Hours"


def test_covered_hours_do_not_depend_on_the_order_rows_are_summed_in():
    """Hours are DOUBLE (ConsumedQuantity x hours per unit); a floating-point sum changes in its last digits with
    the order of the additions, which DuckDB's parallel scan does not fix -- a commitments chart value differed in
    the 7th digit between two runs of the same report. The same rows in two orders must give the same figures."""
    from finops_kit.testing import focus_rows

    def row(hours: str) -> dict:
        return dict(ProviderName="Amazon Web Services", ServiceName="Amazon Elastic Compute Cloud",
                    ServiceCategory="Compute", ChargeCategory="Usage", day="2026-09-03", cost="1.00",
                    ConsumedQuantity=hours, ConsumedUnit="Hours", PricingQuantity=hours, PricingUnit="Hours",
                    CommitmentDiscountId="arn:aws:ec2:us-east-1:1:reserved-instances/ri-1",
                    CommitmentDiscountType="Reserved Instance", CommitmentDiscountCategory="Usage",
                    CommitmentDiscountStatus="Used", PricingCategory="Committed")

    figures = []
    for hours in (["0.1", "0.2", "0.3"], ["0.3", "0.2", "0.1"]):
        con = fk.connect(":memory:", write=True)
        con.execute("SET threads = 1")  # one thread scans in insertion order: the two orders really differ
        focus_rows([row(h) for h in hours], con)
        sc = scope.resolve(con, str(REPO / "finops.yaml"))
        figures.append(cm.inventory(con, sc)["covered_hours"].tolist())
    assert figures[0] == figures[1] == [0.6]


@pytest.mark.parametrize("raw, shown", [
    ("arn:aws:ec2:us-east-1:210987654321:reserved-instances/5e8b2d1a-9c47-4f60-b3a2-7d1e0c9f8b44",
     "reserved-instances/5e8b2d1a-9c47-4f60-b3a2-7d1e0c9f8b44"),
    ("arn:aws:savingsplans::210987654321:savingsplan/abcd-1234", "savingsplan/abcd-1234"),
    ("/providers/Microsoft.Capacity/reservationOrders/o-1/reservations/r-2", "reservations/r-2"),
    ("projects/p/regions/us-central1/commitments/cud-a100-1y", "commitments/cud-a100-1y"),
    ("ML training 3yr", "ML training 3yr"),
    (None, ""),
])
def test_a_commitment_has_one_display_name(raw, shown):
    """One reservation appeared under three names in the commitments report (the first 48 or 60 characters of its
    ARN, its last 24): the package gives one name, the distinctive end of the id (found by a review)."""
    assert cm.display_name(raw) == shown


# ------------------------------------------------------------------------------------------- review fixes (hand-made)
def _vm(provider: str, day: str, itype: str, hours: float, list_rate: str, eff_rate: str | None = None, *,
        cid: str | None = None, ctype: str | None = None, res: str = "vm-1", end: str | None = None, **kw) -> dict:
    """One day of an accelerated VM (x_AiWorkload set as the ingest's classification would), on demand or covered."""
    lst = Decimal(list_rate) * Decimal(str(hours))
    eff = Decimal(eff_rate) * Decimal(str(hours)) if eff_rate is not None else lst
    row = dict(ProviderName=provider, ServiceCategory="Compute", x_AiWorkload="Accelerated compute", day=day,
               x_InstanceType=itype, ConsumedQuantity=str(hours), ConsumedUnit="Hours", PricingQuantity=str(hours),
               PricingUnit="Hours", ResourceId=res, BilledCost=str(eff if cid is None else 0), EffectiveCost=str(eff),
               ListCost=str(lst), ContractedCost=str(lst), PricingCategory="Standard" if cid is None else "Committed")
    if cid:
        row.update(CommitmentDiscountId=cid, CommitmentDiscountType=ctype or "Reserved Instance",
                   CommitmentDiscountCategory="Usage" if (ctype or "Reserved Instance") != "Savings Plan" else "Spend",
                   CommitmentDiscountStatus="Used")
    if end:
        row["x_reservation_end_time"] = end
    row.update(kw)
    return row


def _days(start: str, n: int) -> list[str]:
    return [str(d.date()) for d in pd.date_range(start, periods=n, freq="D")]


def test_compute_sizing_uses_the_discount_of_commitments_that_cover_compute():
    """Azure: a VM reservation realizes 40% on T4 VMs, an Azure OpenAI PTU reservation 70% on provisioned
    throughput; AWS: an RI 30% on g5, a SageMaker Savings Plan 50% on ml.g5. Pooled per provider and type, the PTU
    lifted the VM discount to 1 - (14.40 + 3.00) / (24 + 10) = 48.8% and the SageMaker plan became an EC2 option
    (found by a review). A100 / p4d usage is sized with the compute commitments' discounts only: the family's own
    where it has one (g5), else the type's over compute instances (40% for the A100, 30% for p4d)."""
    from finops_kit.testing import focus_rows

    rows = []
    for d in _days("2026-09-01", 30):
        rows += [
            _vm("Microsoft", d, "Standard_NC8as_T4_v3", 24, "1.00", "0.60", cid="res-vm", ctype="Reservation",
                res="vm-t4", ServiceName="Virtual Machines"),
            dict(ProviderName="Microsoft", ServiceName="Azure AI Services", ServiceCategory="AI and Machine Learning",
                 x_AiWorkload="Managed AI service", day=d, BilledCost="0", EffectiveCost="3.00", ListCost="10.00",
                 ContractedCost="10.00", ConsumedQuantity="24", ConsumedUnit="Hours", PricingCategory="Committed",
                 x_UsageType="Azure OpenAI Provisioned Managed Global", CommitmentDiscountId="res-ptu",
                 CommitmentDiscountType="Reservation", CommitmentDiscountCategory="Usage",
                 CommitmentDiscountStatus="Used"),
            _vm("Microsoft", d, "Standard_NC24ads_A100_v4", 48, "3.00", res="vm-a100", ServiceName="Virtual Machines"),
            _vm("AWS", d, "g5.xlarge", 24, "1.00", "0.70", cid="ri-g5", res="i-g5"),
            _vm("AWS", d, "ml.g5.2xlarge", 24, "2.00", "1.00", cid="sp-sm", ctype="Savings Plan", res="nb-1",
                ServiceName="Amazon SageMaker", ServiceCategory="AI and Machine Learning", x_AiWorkload="ML platform"),
            _vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-p4d"),
            _vm("AWS", d, "g5.xlarge", 24, "1.00", res="i-g5b")]
    rows.append(_vm("AWS", "2026-10-01", "p4d.24xlarge", 24, "20.00", res="i-p4d"))
    rows.append(_vm("Microsoft", "2026-10-01", "Standard_NC24ads_A100_v4", 48, "3.00", res="vm-a100"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    disc = cm.realized_discounts(cm.inventory(con, sc))
    az = disc[(disc["provider"] == "Microsoft") & (disc["type"] == "Reservation") & disc["family"].isna()]
    az = az.set_index("covers")["discount"]
    assert az["Compute"] == pytest.approx(0.4) and az["AI and Machine Learning"] == pytest.approx(0.7)
    t4 = disc[disc["family"] == "NCasT4 v3"]
    assert len(t4) == 1 and t4["discount"].iloc[0] == pytest.approx(0.4)
    rec, _ = cm.recommend(con, sc, risk_percentile=10)
    got = {(r.provider, r.instance_family): set() for r in rec.itertuples()}
    for r in rec.itertuples():
        got[(r.provider, r.instance_family)].add(round(r.discount, 9))
    assert got[("Microsoft", "NCads A100 v4")] == {0.4}
    assert got[("AWS", "g5")] == {0.3} and got[("AWS", "p4d")] == {0.3}  # no SageMaker plan for EC2


def test_a_refund_credit_on_a_commitment_is_not_used_commitment():
    """A Savings Plan: 10.00 a day of covered usage (list 14.00), 2.00 unused, and a one-time -1,000 refund credit
    tagged with the plan. The refund is not commitment usage: utilization 10 / 12, realized rate 1 - 10 / 14. A GCP
    committed-use credit (usage-based, against the covered VM) still is."""
    from finops_kit.testing import focus_rows

    rows = []
    for d in _days("2026-09-01", 30):
        rows += [_vm("AWS", d, "g5.xlarge", 10, "1.40", "1.00", cid="sp-1", ctype="Savings Plan", res="i-1"),
                 dict(day=d, ChargeCategory="Usage", cost="0", EffectiveCost="2.00", BilledCost="0",
                      CommitmentDiscountId="sp-1", CommitmentDiscountType="Savings Plan",
                      CommitmentDiscountCategory="Spend", CommitmentDiscountStatus="Unused")]
        rows += [_vm("Google Cloud", d, "a2-highgpu-1g", 24, "3.00", res="gce-1", cid="cud-1",
                     ctype="Committed Use Discount"),
                 dict(ProviderName="Google Cloud", day=d, ChargeCategory="Credit", ChargeFrequency="Usage-Based",
                      BilledCost="-24.00", EffectiveCost="-24.00", ListCost="0", ContractedCost="0",
                      ResourceId="gce-1", CommitmentDiscountId="cud-1", CommitmentDiscountType="Committed Use Discount",
                      CommitmentDiscountCategory="Usage", x_AiWorkload="Accelerated compute")]
    rows.append(dict(day="2026-09-20", ChargeCategory="Credit", ChargeFrequency="One-Time", cost="-1000",
                     ListCost="0", ContractedCost="0", CommitmentDiscountId="sp-1",
                     CommitmentDiscountType="Savings Plan", CommitmentDiscountCategory="Spend"))
    rows.append(dict(day="2026-09-21", ChargeCategory="Credit", ChargeClass="Correction",
                     ChargeFrequency="Usage-Based", cost="-50", ListCost="0", ContractedCost="0",
                     CommitmentDiscountId="sp-1", CommitmentDiscountType="Savings Plan",
                     CommitmentDiscountCategory="Spend"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    inv = cm.inventory(con, sc).set_index("commitment_id")
    sp = inv.loc["sp-1"]
    assert sp["used_cost"] == Decimal("300.00") and sp["unused_cost"] == Decimal("60.00")
    assert sp["utilization"] == pytest.approx(300 / 360)
    assert sp["savings_rate"] == pytest.approx(1 - 360 / 420)
    cud = inv.loc["cud-1"]  # 30 x (72.00 - 24.00): the CUD credit carries the discount
    assert cud["used_cost"] == Decimal("1440.00") and cud["covered_list_cost"] == Decimal("2160.00")
    per = cm.utilization(con, sc, by=("commitment",)).set_index("commitment_id")
    assert per.loc["sp-1", "used_cost"] == Decimal("300.00")


def test_sizing_of_a_family_of_mixed_sizes_is_in_on_demand_dollars_per_hour():
    """g5 runs 4 x g5.xlarge (1.00/h) all 28 days and one g5.48xlarge (16.00/h) the first 14: 20.00/h then 4.00/h of
    on-demand value. Counted as instances at the family's average rate (5, then 4 instances of 2.4211/h) the
    optimum was 4 'instances' = 9.68/h, more than twice the 4.00/h that runs all the time. In on-demand dollars per
    hour, 30% off: P(u > 4.00) = 0.5 <= 0.7, so 4.00/h, saving 0.3 x 4.00 x 8760 a year; no instance equivalent
    (two sizes). p4d has one size: its level is also given in instances."""
    from finops_kit.testing import focus_rows

    rows = []
    for i, d in enumerate(_days("2026-02-01", 28)):
        rows.append(_vm("AWS", d, "g5.xlarge", 96, "1.00", res="i-small"))
        if i < 14:
            rows.append(_vm("AWS", d, "g5.48xlarge", 24, "16.00", res="i-big"))
        rows.append(_vm("AWS", d, "p4d.24xlarge", 48, "20.00", res="i-p4d"))
    rows.append(_vm("AWS", "2026-03-01", "g5.xlarge", 96, "1.00", res="i-small"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    usage = cm.hourly_usage(con, sc)
    g5 = usage[usage["instance_family"] == "g5"]
    assert list(g5["on_demand_per_hour"].round(9).unique()) == [20.0, 4.0]
    out = cm.sizing(g5, {"1-year": 0.3}, risk_percentile=10).iloc[0]
    assert out["level_unit"] == "on-demand USD/h"
    assert out["optimal_level"] == pytest.approx(4.0)
    assert out["optimal_net_savings_year"] == pytest.approx(0.3 * 4.0 * 8760)
    assert out["optimal_commitment_per_hour"] == pytest.approx(0.7 * 4.0)
    assert pd.isna(out["optimal_instances"]) and out["sizes"] == 2
    p4d = cm.sizing(usage[usage["instance_family"] == "p4d"], {"1-year": 0.3}).iloc[0]
    assert p4d["optimal_level"] == pytest.approx(40.0) and p4d["optimal_instances"] == pytest.approx(2.0)


def test_committed_today_leaves_out_commitments_that_lapse_within_the_first_window():
    """Two p4d RIs cover 2 instances on the last closed day; one ends 2026-10-15, five days after the report date:
    it is not capacity a purchase made now can count on. committed_now counts the other (20.00/h of on-demand value);
    the lapsing one is stated next to it (lapsing_now, with its end)."""
    from finops_kit.testing import focus_rows

    rows = []
    for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]:
        rows += [_vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-soon", res="i-1",
                     end="2026-10-15T00:00:00Z"),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-later", res="i-2",
                     end="2027-09-01T00:00:00Z"),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-3")]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    assert cm.as_of(con, sc) == dt.date(2026, 10, 10)
    rec, _ = cm.recommend(con, sc, extra_options={"1-year": 0.35})
    row = rec[rec["option"] == "1-year"].iloc[0]
    assert row["committed_now"] == pytest.approx(20.0) and row["lapsing_now"] == pytest.approx(20.0)
    assert row["lapsing_by"] == dt.date(2026, 10, 15)
    assert row["optimal_level"] == pytest.approx(60.0) and row["change_level"] == pytest.approx(40.0)
    assert row["gain_vs_today_year"] == pytest.approx(40.0 * 0.35 * 8760)


def test_expiry_monthly_value_of_a_commitment_bought_mid_month_is_a_full_month():
    """An RI bought 2026-02-15 at 13.00/h: February (closed) billed 14 days = 4,368.00. Its monthly value is that
    scaled to the 28 days of February, 8,736.00 (exact), with the days it covers stated."""
    from finops_kit.testing import focus_rows

    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "21.96", "13.00", cid="ri-mid", res="i-1",
                end="2027-02-15T00:00:00Z") for d in [*_days("2026-02-15", 14), *_days("2026-03-01", 10)]]
    rows += [_vm("AWS", d, "p4d.24xlarge", 24, "21.96", res="i-2") for d in _days("2026-02-01", 14)]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    cal = cm.expiry(con, sc).set_index("commitment_id")
    ri = cal.loc["ri-mid"]
    assert ri["value_period"] == dt.date(2026, 2, 1) and ri["value_days"] == 14
    assert ri["monthly_value"] == Decimal("8736.00")


def test_commitment_rules_of_the_rewrite_review():
    """Three regressions of the $/h rewrite (review): a CUD credit with an empty ChargeFrequency (a Recommended
    FOCUS column that Microsoft's export, and some FOCUS files, leave empty) is use, as the kit reads NULL as
    Usage-Based everywhere else (used cost had jumped 3,408 -> 5,112 and savings to 0); a group with no
    instance-hours (accelerator SKU rows) is not sized; and the 30-day lapse window counts from the report's date
    when one is given, as the expiry calendar does."""
    from finops_kit.testing import focus_rows

    rows = []
    for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]:
        rows += [_vm("Google Cloud", d, "a2-highgpu-1g", 24, "3.00", res="gce-1", cid="cud-1",
                     ctype="Committed Use Discount"),
                 dict(ProviderName="Google Cloud", day=d, ChargeCategory="Credit", ChargeFrequency=None,
                      BilledCost="-24.00", EffectiveCost="-24.00", ListCost="0", ContractedCost="0",
                      ResourceId="gce-1", CommitmentDiscountId="cud-1", CommitmentDiscountType="Committed Use Discount",
                      CommitmentDiscountCategory="Usage", x_AiWorkload="Accelerated compute"),
                 dict(ProviderName="Google Cloud", day=d, ChargeCategory="Usage", cost="5.00", ListCost="5.00",
                      ServiceName="Vertex AI", x_AiWorkload="Accelerated compute", SkuMeter="Nvidia A100 GPU",
                      x_InstanceType=None, ResourceId=None),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-1", res="i-1",
                     end="2026-11-25T00:00:00Z"),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-2")]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    cud = cm.inventory(con, sc).set_index("commitment_id").loc["cud-1"]
    assert cud["used_cost"] == Decimal(40 * 48)  # 40 days x (72.00 - 24.00)
    rec, _ = cm.recommend(con, sc)
    assert set(rec["instance_family"]) <= {"a2", "a2-highgpu", "p4d"}, set(rec["instance_family"])
    p4d = lambda r: r[r["instance_family"] == "p4d"].iloc[0]  # noqa: E731
    assert p4d(rec)["lapsing_now"] == 0  # ends 2026-11-25: 46 days after the last usage day, 2026-10-10
    early, _ = cm.recommend(con, sc, today=dt.date(2026, 10, 30))
    assert p4d(early)["lapsing_now"] == pytest.approx(20.0) and p4d(early)["committed_now"] == 0



def ec2_and_sagemaker_rows() -> list[dict]:
    """September 2026 (closed: a day of October follows): EC2 g5 (1.00/h list, half under a 30%-off RI) and p4d
    (20.00/h), SageMaker ml.g5 endpoints (2 x 2.00/h, one under a 50%-off SageMaker Savings Plan) and an ml.p4d
    training job (30.00/h). Also tests/test_sagemaker.py's."""
    rows = []
    for d in _days("2026-09-01", 30):
        rows += [_vm("AWS", d, "g5.xlarge", 24, "1.00", "0.70", cid="ri-g5", res="i-g5"),
                 _vm("AWS", d, "g5.xlarge", 24, "1.00", res="i-g5b"),
                 _vm("AWS", d, "ml.g5.2xlarge", 24, "2.00", "1.00", cid="sp-sm", ctype="Savings Plan", res="ep-1",
                     ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "ml.g5.2xlarge", 24, "2.00", res="ep-2", ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "ml.p4d.24xlarge", 24, "30.00", res="job-1", ServiceName="Amazon SageMaker"),
                 _vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-p4d")]
    rows.append(_vm("AWS", "2026-10-01", "p4d.24xlarge", 24, "20.00", res="i-p4d"))
    return rows


def test_sagemaker_families_are_sized_with_sagemaker_plans_only():
    """Review 14: once SageMaker GPU instances count as accelerated compute, the sizing table offered 'Reserved
    Instance (realized 38% on compute)' for ml.p4d and ml.g5 -- EC2 reservations never apply to SageMaker. A
    SageMaker family gets the SageMaker plans' discount (or none), an EC2 family never gets it."""
    from finops_kit.testing import focus_rows

    con = focus_rows(ec2_and_sagemaker_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    disc = cm.realized_discounts(cm.inventory(con, sc))
    assert set(disc.loc[disc["platform"] == "SageMaker", "type"]) == {"Savings Plan"}
    rec, _ = cm.recommend(con, sc, risk_percentile=10)
    got: dict[str, set] = {}
    for r in rec.itertuples():
        got.setdefault(r.instance_family, set()).add(round(r.discount, 9))
    assert got["ml.g5"] == {0.5} and got["g5"] == {0.3} and got["p4d"] == {0.3}
    # a SageMaker Savings Plan applies to any SageMaker instance family: ml.p4d is sized with it, never the RI's 30%,
    # and its option says so (not "on compute", which reads as a Compute Savings Plan)
    assert got["ml.p4d"] == {0.5}
    assert set(rec.loc[rec["instance_family"] == "ml.p4d", "option"]) == {"Savings Plan (realized 50% on SageMaker "
                                                                          "instances)"}


# ------------------------------------------------------------------------ review of the narration (2026-12-05)
def _lapse_rows() -> list[dict]:
    """September (closed) and 1-10 October 2026 of three commitments:

    * ``ri-half``, an RI ending 2026-10-20, half used: 12 h a day covered (list 10.00/h, 6.00/h at its rate) and
      12 h a day unused at 6.00/h: it costs 144.00 a day, its usage is worth 120.00 a day on demand;
    * ``sp-full``, a savings plan ending 2026-12-01, fully used: 24 h a day, list 10.00/h, 7.00/h at its rate:
      it costs 168.00 a day for usage worth 240.00;
    * ``res-az``, an Azure reservation whose export carries no end date: 24 h a day, list 4.00/h, 2.40/h."""
    rows = []
    for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]:
        rows += [_vm("AWS", d, "p4d.24xlarge", 12, "10.00", "6.00", cid="ri-half", res="i-1",
                     end="2026-10-20T00:00:00Z"),
                 dict(day=d, ChargeCategory="Usage", cost="0", EffectiveCost="72.00", BilledCost="72.00",
                      CommitmentDiscountId="ri-half", CommitmentDiscountType="Reserved Instance",
                      CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused",
                      CommitmentDiscountQuantity="12", CommitmentDiscountUnit="Hours",
                      x_reservation_end_time="2026-10-20T00:00:00Z"),
                 _vm("AWS", d, "g5.48xlarge", 24, "10.00", "7.00", cid="sp-full", ctype="Savings Plan", res="i-2",
                     x_savings_plan_end_time="2026-12-01T00:00:00Z"),
                 _vm("Microsoft", d, "Standard_NC24ads_A100_v4", 24, "4.00", "2.40", cid="res-az",
                     ctype="Reservation", res="vm-1", ServiceName="Virtual Machines")]
    return rows


def test_expiry_states_the_net_bill_change_if_a_commitment_lapses():
    """Review 2026-12-05: the calendar called the list value of the covered usage "the monthly bill increase if
    nobody renews", and the summary said "$4,220 per month back at on-demand prices · Decide on" an RI that costs
    5,232.70 a month for usage worth 4,219.97: its lapse LOWERS the bill by 1,012.73. Here: the half-used RI costs
    4,320.00 a month (30 x 144.00) for usage worth 3,600.00: lapsing saves 720.00 a month (let it lapse); the full
    savings plan costs 5,040.00 for usage worth 7,200.00: lapsing raises the bill 2,160.00 (renew or replace)."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    cal = cm.expiry(con, sc).set_index("commitment_id")
    ri, sp, az = cal.loc["ri-half"], cal.loc["sp-full"], cal.loc["res-az"]
    assert ri["monthly_value"] == Decimal("4320.00") and ri["lapses_to_on_demand"] == Decimal("3600.00")
    assert ri["bill_change_if_lapsed"] == Decimal("-720.00")
    assert sp["bill_change_if_lapsed"] == Decimal("2160.00")
    assert az["window"] == "unknown" and az["bill_change_if_lapsed"] == Decimal("1152.00")  # 30 x (96.00 - 57.60)
    dec = cm.expiry_decisions(cm.expiry(con, sc)).set_index("name")
    assert list(dec.index) == ["ri-half", "sp-full"]  # ending within 90 days; the unknown end is not decided on
    assert dec.loc["ri-half", "decision"] == "let it lapse" and dec.loc["ri-half", "dollars"] == Decimal("720.00")
    assert "saves $720.00/month" in dec.loc["ri-half", "what"]
    assert not dec.loc["ri-half", "what"].lower().startswith(("renew", "decide"))
    assert dec.loc["sp-full", "decision"] == "renew or replace" and dec.loc["sp-full", "dollars"] == Decimal("2160.00")
    assert "rises $2,160.00/month" in dec.loc["sp-full", "what"]
    # the summary block places these dollars by what they are: letting one lapse saves a month's dollars, renewing
    # one keeps the bill from rising (not a saving); an unknown basis fell into "Other actions" after every saving
    from finops_kit.summary import BASIS_KINDS

    assert BASIS_KINDS[dec.loc["ri-half", "basis"]] == ("saving", "month")
    assert BASIS_KINDS[dec.loc["sp-full", "basis"]] == ("avoid", "month")


def _lapse_overview() -> str:
    """The commitments overview (:func:`finops_kit.commitments.overview_lines`) of :func:`_lapse_rows`, as text."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    head = cm.summary(con, sc).set_index("provider").loc["(all)"]
    today = cm.as_of(con, sc)
    return "\n".join(cm.overview_lines(head, cm.inventory(con, sc), cm.expiry(con, sc, today=today), today))


def test_overview_counts_unknown_end_dates_and_the_net_change_of_what_expires():
    """Review 2026-12-05: "Expiring within 90 days of 2026-11-26: 2 commitment(s), $7,092.70 a month." left out 5
    active Azure/GCP commitments worth $19,442.80 a month whose end the export does not carry."""
    text = _lapse_overview()
    # 4,320 + 5,040; the two directions apart, not netted to "rises by $1,440.00" (-720 + 2,160; prose review #15)
    assert ("2 commitment(s) costing $9,360.00 a month (used + unused); if they lapse and their usage stays, the bill "
            "falls by $720.00 a month for 1 of them (let it lapse) and rises by $2,160.00 a month for 1 of them "
            "(renew or replace it)") in text
    assert "1 more active commitment(s) costing $1,728.00 a month (Microsoft" in text  # 30 x 57.60


def test_overview_holds_without_eligible_usage_or_commitment_cost():
    """Review 2026-12-05: the report failed on the official FOCUS sample ("cell 4: TypeError: unsupported format
    string passed to NoneType.__format__"): two savings plans cover non-accelerated usage at EffectiveCost 0, so
    coverage and utilization are None. Every sentence must hold: no eligible usage, no commitment cost."""
    head = pd.Series({"currency": "USD", "coverage_hours": None, "coverage_cost": None, "on_demand_cost": Decimal(0),
                      "used_cost": Decimal(0), "unused_cost": Decimal(0), "utilization": None,
                      "savings": Decimal("0.14")})
    inv = pd.DataFrame({"used_cost": [Decimal(0)], "unused_cost": [Decimal(0)],
                        "covered_list_cost": [Decimal("0.14")]})
    today = dt.date(2024, 9, 30)
    empty = pd.DataFrame(columns=cm.EXPIRY_COLUMNS)
    lines = cm.overview_lines(head, inv, empty, today)
    text = "\n".join(lines)
    assert "no eligible usage in scope" in text and "no utilization to show" in text
    assert "1 commitment(s) cost $0.00 in scope" in text and "None" not in text and "nan" not in text
    assert "none; no commitment billed within two days" in text
    assert cm.expiry_decisions(empty).empty


def test_commitment_quantities_are_shown_in_their_unit_not_as_money():
    """Review 2026-12-05: an RI's used hours were printed "$15,240.00" beside "Hours" (the table formats a Decimal
    column as money)."""
    assert cm.quantity_text(Decimal("15240.000000"), "Hours") == "15,240 hours"
    assert cm.quantity_text(Decimal("7816.88"), "Hours") == "7,816.88 hours"
    assert cm.quantity_text(Decimal("22205.91"), "USD", "USD") == "$22,205.91"
    assert cm.quantity_text(Decimal("10"), "EUR", "EUR") == "10.00 EUR"
    assert cm.quantity_text(None, "Hours") == "" and cm.quantity_text(Decimal(3), None) == "3"
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    inv = cm.inventory(con, scope.resolve(con, str(REPO / "finops.yaml")))
    shown = cm.with_quantity_text(inv).set_index("commitment_id")
    assert shown.loc["ri-half", "unused_quantity"] == "480 hours" and "quantity_unit" not in shown.columns


def _run_report_cells(tmp_path: Path, rows: list[dict]) -> str:
    """The commitments notebook's own code cells over a warehouse of ``rows``, run in a separate interpreter (the
    cells set the notebook module's global state): what they display, then the summary's actions."""
    import subprocess
    import sys

    from finops_kit.testing import focus_rows

    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows(rows, con)
    con.close()
    runner = tmp_path / "run.py"
    runner.write_text(_CELL_RUNNER, encoding="utf-8")
    out = subprocess.run([sys.executable, str(runner), str(REPO / "notebooks" / "commitments.ipynb"), str(wh),
                          str(REPO / "finops.yaml")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def test_commitments_report_runs_on_commitments_without_eligible_usage(tmp_path):
    """The report on data like the FOCUS sample's commitments (a savings plan covering a CPU instance at
    EffectiveCost 0, no accelerated usage) failed in its first figures box (review 2026-12-05)."""
    rows = []
    for d in ["2024-09-04", "2024-09-20", "2024-09-21"]:
        rows += [dict(day=d, x_InstanceType="m5.large", ConsumedQuantity="1", ConsumedUnit="Hours", ResourceId="i-1",
                      BilledCost="0", EffectiveCost="0", ListCost="0.0464", ContractedCost="0.0464",
                      PricingCategory="Committed", CommitmentDiscountId="arn:aws:savingsplans::1:savingsplan/sp-1",
                      CommitmentDiscountType="Savings Plan", CommitmentDiscountCategory="Spend",
                      CommitmentDiscountStatus="Used"),
                 dict(day=d, ConsumedQuantity="1", ConsumedUnit="Hours", ResourceId="i-2", cost="0.10")]
    out = _run_report_cells(tmp_path, rows)
    assert "no eligible usage in scope" in out and "no utilization to show" in out


def test_commitments_report_decides_expiries_on_the_net_change_and_shows_hours_as_hours(tmp_path):
    """The report's summary action for an expiring commitment uses the net bill change (review 2026-12-05: "$4,220
    per month back at on-demand prices · Decide on" an RI whose lapse saves 1,012.73 a month), and its quantities
    table shows hours as hours ("$15,240.00" beside "Hours")."""
    out = _run_report_cells(tmp_path, _lapse_rows())
    actions = [line for line in out.splitlines() if line.startswith("ACTION|")]
    assert any(a.startswith("ACTION|720.00|per month saved if it lapses|Let AWS Reserved Instance ri-half ending "
                            "2026-10-20") for a in actions), actions
    assert any(a.startswith("ACTION|2160.00|per month more if it lapses|Renew or replace AWS Savings Plan sp-full")
               for a in actions), actions
    assert not any("back at on-demand" in a or "Decide on" in a for a in actions), actions
    assert "480 hours" in out and "$480.00" not in out  # ri-half's unused hours: 40 days x 12 h


#: executes a notebook's code cells in order with its parameters set, printing every displayed Markdown/text
_CELL_RUNNER = '''
import sys
sys.path.insert(0, ".")
import nbformat
import IPython.display

book, wh, config = sys.argv[1], sys.argv[2], sys.argv[3]


def show(obj, *args, **kwargs):
    text = getattr(obj, "_repr_markdown_", None) or getattr(obj, "_repr_html_", None)
    print(text() if text else repr(obj)[:200])


IPython.display.display = show
ns = {}
for cell in nbformat.read(book, as_version=4).cells:
    if cell.cell_type != "code":
        continue
    exec(compile(cell.source, "cell", "exec"), ns)
    if "parameters" in cell.metadata.get("tags", []):
        ns.update(warehouse=wh, config_path=config)
    ns["display"] = show
for a in ns["s"].actions:
    print(f"ACTION|{float(a.dollars):.2f}|{a.basis}|{a.what}|{a.resource}")
for a in ns["s"].ranked_actions():
    print(f"LINE|{a.kind}|{a.resource}|{a.what}")
'''


def _burst_rows() -> list[dict]:
    """An RI-covered p4d that ran 1-3 September 2026 only (24 h a day, list 20.00/h, 13.00/h at its rate); a bucket
    billed in October closes September."""
    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-b", res="i-1", end="2027-09-01T00:00:00Z")
            for d in _days("2026-09-01", 3)]
    rows += [dict(day=d, ServiceName="Amazon S3", ServiceCategory="Storage", cost="1.00", ResourceId="b-1")
             for d in _days("2026-10-01", 5)]
    return rows


def test_a_burst_in_a_closed_month_is_not_sized_as_steady_usage():
    """Three days of a closed September are 27 days of zero usage too: the series ran from the first to the last
    day with usage, so the burst read as a steady 20.00/h and the report said "commit to $20.00/h ... $61,320.00 a
    year net of all on demand" (found reading the narration on other data). Now the optimum is 0: nothing to buy."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_burst_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc)
    assert len(hu) == 30 and hu["on_demand_per_hour"].astype(float).sum() == pytest.approx(3 * 20.0)
    rec, _ = cm.recommend(con, sc)
    assert rec["optimal_level"].max() == 0 and rec["optimal_net_savings_year"].max() == 0
    assert cm.largest_opportunity(rec[rec["optimal_net_savings_year"] > 0]).endswith("nothing to buy.")


def test_largest_opportunity_sentence_holds_when_nothing_changes():
    """A family already at its optimum: the report said "shrink by $0.00/h of on-demand value at renewal"."""
    row = dict(provider="AWS", instance_family="p4d", currency="USD", option="Reserved Instance (realized 35% on p4d)",
               optimal_level=20.0, change_level=0.0, committed_now=20.0, lapsing_now=0.0, lapsing_by=None,
               optimal_net_savings_year=61320.0, gain_vs_today_year=0.0, optimal_utilization=1.0,
               break_even_utilization=0.65)
    text = cm.largest_opportunity(pd.DataFrame([row]))
    assert "shrink" not in text and "$0.00" not in text and text.startswith("Every family is at its optimal level")
    text = cm.largest_opportunity(pd.DataFrame([{**row, "change_level": -5.0, "gain_vs_today_year": 100.0}]))
    assert "shrink by $5.00/h of on-demand value at renewal" in text and "$100.00 more than today's level" in text
    text = cm.largest_opportunity(pd.DataFrame([{**row, "change_level": 5.0, "gain_vs_today_year": 100.0,
                                                 "lapsing_now": 2.0, "lapsing_by": dt.date(2026, 12, 1)}]))
    assert "buy $5.00/h more of on-demand value; $20.00/h covered today, $2.00/h more lapsing by 2026-12-01" in text


def test_commitments_report_runs_when_no_family_is_worth_a_commitment(tmp_path):
    """With nothing to buy (the 3-day burst), the sizing cell raised IndexError (best.head(1).iloc[0]) and the
    net-savings chart after it too (fams[0])."""
    out = _run_report_cells(tmp_path, _burst_rows())
    assert "nothing to buy." in out


def test_no_sizing_says_when_the_bill_has_usage_but_no_discount_to_size_it_with():
    """A bill without commitments: steady p4d usage on demand for a closed month. The report said "No steady
    accelerator usage with a commitment option", which reads as "no steady usage"; the usage is steady, there is
    only no discount to size it with until a quote is given."""
    from finops_kit.testing import focus_rows

    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "20.00", res="i-1") for d in [*_days("2026-09-01", 30),
                                                                           *_days("2026-10-01", 5)]]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc)
    assert rec.empty
    assert "no commitment in scope realized a discount" in cm.no_sizing_reason(con, sc)
    assert not cm.recommend(con, sc, extra_options=["1-year quote=0.30"])[0].empty
    empty = focus_rows([dict(day="2026-09-01", cost="1.00"), dict(day="2026-10-01", cost="1.00")])
    assert cm.no_sizing_reason(empty, scope.resolve(empty, str(REPO / "finops.yaml"))).startswith(
        "No eligible accelerated usage")


def test_expiry_as_of_a_past_day_lists_what_was_active_then_valued_by_then():
    """as_of in the past: a reservation first billed on 1 October was listed as active on 25 September, and every
    commitment was valued with the last closed month of the whole warehouse (a June as_of read October's bill)."""
    from finops_kit.testing import focus_rows

    rows = _lapse_rows() + [_vm("AWS", d, "g5.xlarge", 24, "1.00", "0.60", cid="late", res="i-9")
                            for d in _days("2026-10-01", 10)]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    now = cm.expiry(con, sc).set_index("commitment_id")
    assert "late" in now.index and now.loc["ri-half", "value_period"] == dt.date(2026, 9, 1)
    then = cm.expiry(con, sc, today=dt.date(2026, 9, 25)).set_index("commitment_id")
    assert "late" not in then.index
    assert then.loc["ri-half", "days_left"] == 25 and then.loc["ri-half", "value_period"] == dt.date(2026, 9, 1)
    early = cm.expiry(con, sc, today=dt.date(2026, 10, 3)).set_index("commitment_id")  # September closed by then
    assert early.loc["late", "value_period"] == dt.date(2026, 10, 1)  # its only month, its 10 billed days scaled to 31
    assert early.loc["late", "monthly_value"] == Decimal("446.40")  # 24 x 0.60 x 31


def test_expiry_on_the_last_day_of_a_closed_month_values_the_commitment_with_that_month():
    """Data through a closed October: the report day (the last usage day) is 31 October, and the expiry calendar
    skipped October (a month counted as closed only after its last day), valuing an RI fully used in September but
    half used in October with September: "Renew or replace ... the bill rises $2,880.00/month" where letting it
    lapse saves $744 a month (regression review, t10)."""
    from finops_kit.testing import focus_rows

    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "10.00", "6.00", cid="ri-1", res="i-1", end="2026-12-15T00:00:00Z")
            for d in _days("2026-09-01", 30)]
    for d in _days("2026-10-01", 31):
        rows.append(_vm("AWS", d, "p4d.24xlarge", 12, "10.00", "6.00", cid="ri-1", res="i-1",
                        end="2026-12-15T00:00:00Z"))
        rows.append(dict(day=d, ChargeCategory="Usage", cost="0", EffectiveCost="72.00", BilledCost="72.00",
                         CommitmentDiscountId="ri-1", CommitmentDiscountType="Reserved Instance",
                         CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused",
                         x_reservation_end_time="2026-12-15T00:00:00Z"))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    today = cm.as_of(con, sc)
    assert today == dt.date(2026, 10, 31)
    cal = cm.expiry(con, sc, today=today).set_index("commitment_id")
    assert cal.loc["ri-1", "value_period"] == dt.date(2026, 10, 1)
    assert cal.loc["ri-1", "monthly_value"] == Decimal("4464.00")  # 31 x 24 x 6.00, half of it unused
    assert cal.loc["ri-1", "bill_change_if_lapsed"] == Decimal("-744.00")  # 31 x 12 x 10.00 on demand - 4,464
    decide = cm.expiry_decisions(cal.reset_index())
    assert list(decide["decision"]) == ["let it lapse"] and decide["what"][0].startswith("Let AWS Reserved Instance")


def test_sizing_window_is_the_days_the_closed_periods_cover_not_calendar_months():
    """The window was the calendar months of the usage days (regression review, t3 / t11): an export enabled on
    15 September counted 1-14 September as zero usage (a steady 20.00/h p4d sized at $21,110 a year instead of
    $61,320), and a closed October's hours dated 1 November UTC (GCP's invoice month) added November as 30 days of
    zero (a steady 3.00/h a2 family sized at 0). The burst rule stays: a closed month's days without usage are 0."""
    from finops_kit.testing import focus_rows

    rows = []
    for d in [*_days("2026-09-15", 16), *_days("2026-10-01", 31), *_days("2026-11-01", 5)]:
        rows += [_vm("AWS", d, "p4d.24xlarge", 12, "20.00", "13.00", cid="ri-1", res="i-1",
                     end="2027-06-01T00:00:00Z"),
                 _vm("AWS", d, "p4d.24xlarge", 12, "20.00", res="i-2")]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc)
    assert (hu["day"].min(), hu["day"].max(), len(hu)) == (dt.date(2026, 9, 15), dt.date(2026, 10, 31), 47)
    rec, _ = cm.recommend(con, sc)
    assert rec["optimal_level"].max() == pytest.approx(20.0)
    assert rec["optimal_net_savings_year"].max() == pytest.approx(61320.0)  # 20 x 0.35 x 8,760

    rows = [_vm("Google Cloud", d, "a2-highgpu-1g", 24, "3.00", res="gce-1")
            for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 31), *_days("2026-11-01", 10)]]
    rows.append(_vm("Google Cloud", "2026-11-01", "a2-highgpu-1g", 7, "3.00", res="gce-1",
                    ChargePeriodStart=dt.datetime(2026, 11, 1, 0), ChargePeriodEnd=dt.datetime(2026, 11, 1, 7),
                    BillingPeriodStart=dt.datetime(2026, 10, 1), BillingPeriodEnd=dt.datetime(2026, 11, 1)))
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc)
    assert (hu["day"].min(), hu["day"].max(), len(hu)) == (dt.date(2026, 9, 1), dt.date(2026, 10, 31), 61)
    assert (hu["on_demand_per_hour"].astype(float) > 0).all()
    rec, _ = cm.recommend(con, sc, extra_options=["1-year quote=0.30"])
    assert rec["optimal_level"].max() == pytest.approx(3.0)
    assert rec["optimal_net_savings_year"].max() == pytest.approx(7884.0)  # 3 x 0.30 x 8,760


def test_a_provider_is_sized_over_its_own_closed_periods():
    """One window for every provider padded a provider whose October is still open with 31 days of zero (its
    closed September is the window), and a provider whose export began in October with zeros for September."""
    from finops_kit.testing import focus_rows

    rows = [_vm("AWS", d, "p4d.24xlarge", 24, "20.00", "13.00", cid="ri-1", res="i-1", end="2027-06-01T00:00:00Z")
            for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 31), *_days("2026-11-01", 3)]]
    rows += [_vm("Microsoft", d, "Standard_NC24ads_A100_v4", 24, "4.00", res="vm-9") for d in _days("2026-10-01", 31)]
    rows += [dict(ProviderName="Microsoft", day=d, cost="1.00", ResourceId="disk-1") for d in _days("2026-11-01", 3)]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    hu = cm.hourly_usage(con, sc)
    ms = hu[hu["provider"] == "Microsoft"]
    assert len(ms) == 31 and (ms["on_demand_per_hour"].astype(float) == 96.0 / 24).all()
    assert len(hu[hu["provider"] == "AWS"]) == 61
    assert [(p, str(a), str(b)) for p, a, b in cm.closed_windows(sc)] == [
        ("AWS", "2026-09-01", "2026-10-31"), ("Microsoft", "2026-10-01", "2026-10-31")]


def test_a_commitment_is_one_line_of_the_summary_and_an_ending_one_is_decided_by_the_expiry_calendar(tmp_path):
    """The summary listed one RI twice with contradicting advice ("$2,616 unused per month · Use, exchange or
    shrink" and "$1,013 per month saved if it lapses · Let ... lapse"): the commitments actions had no
    ``resource_id``, so the summary could not tell they concern one commitment, and a commitment ending within the
    expiry window was also told to shrink for a monthly saving it will not live to realize (regression review).
    Now every commitments action names its commitment, and an underused one ending within 90 days is left to the
    expiry decision; one ending later is still told to use, exchange or shrink."""
    rows = _lapse_rows()
    for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]:
        rows += [_vm("AWS", d, "g5.xlarge", 12, "1.00", "0.60", cid="ri-long", res="i-7", end="2028-01-01T00:00:00Z"),
                 dict(day=d, ChargeCategory="Usage", cost="0", EffectiveCost="7.20", BilledCost="7.20",
                      CommitmentDiscountId="ri-long", CommitmentDiscountType="Reserved Instance",
                      CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused",
                      x_reservation_end_time="2028-01-01T00:00:00Z")]
    out = _run_report_cells(tmp_path, rows)
    actions = [line.split("|") for line in out.splitlines() if line.startswith("ACTION|")]
    # a section-5 purchase names the RI it replaces ("...; this replaces ri-half ($5.00/h), which lapses
    # 2026-10-20", prose review #12): a line of the family, not of the commitment (resource_id None)
    buys = [a for a in actions if a[3].startswith("Buy ")]
    assert all(a[4] == "None" for a in buys), buys
    actions = [a for a in actions if a not in buys]
    half = [a for a in actions if "ri-half" in a[3]]
    assert len(half) == 1 and half[0][3].startswith("Let AWS Reserved Instance ri-half") and half[0][4] == "ri-half"
    long = [a for a in actions if "ri-long" in a[3]]
    assert len(long) == 1 and long[0][3].startswith("Use, exchange or shrink ri-long") and long[0][4] == "ri-long"
    assert long[0][1] == "216.00"  # September's unused: 30 x 12 h x 0.60
    assert all(a[4] != "None" for a in actions if a[2] != "per month"), actions  # section 5 is per family
    assert "1 underused commitment(s) end within 90 days of 2026-10-10" in out and "ri-half." in out
    lines = [line for line in out.splitlines() if line.startswith("LINE|")]
    assert sum("ri-half" in line and "|Buy " not in line for line in lines) == 1, lines


def test_underused_and_expiry_decisions_name_the_commitment():
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    per = cm.utilization(con, sc, by=("commitment", "period"))
    inv = cm.inventory(con, sc)
    under, ending = cm.underused(per, inv, dt.date(2026, 10, 10))
    assert under.empty and list(ending["resource_id"]) == ["ri-half"]
    later = inv.assign(end_date=[dt.date(2027, 6, 1), *inv["end_date"][1:]])  # ends beyond 90 days: act on it
    under, ending = cm.underused(per, later, dt.date(2026, 10, 10))
    assert list(under["resource_id"]) == ["ri-half"] and ending.empty
    decide = cm.expiry_decisions(cm.expiry(con, sc))
    assert sorted(decide["resource_id"]) == ["ri-half", "sp-full"]
    under, ending = cm.underused(per, inv, dt.date(2026, 12, 1))  # billed last on 10 October: gone, nothing to do
    assert under.empty and ending.empty


def test_a_three_letter_unit_is_money_only_when_it_is_the_rows_currency():
    """Any three capital letters read as a currency: 1,000 "GPU" (or TPU, CPU) units came out as "1,000.00 GPU",
    money (regression review)."""
    for unit in ("GPU", "TPU", "CPU"):
        assert cm.quantity_text(Decimal("1000"), unit, "USD") == f"1,000 {unit}"
    assert cm.quantity_text(Decimal("1000"), "usd", "USD") == "$1,000.00"
    assert cm.quantity_text(Decimal("1000"), "USD", "EUR") == "1,000 USD"  # not the bill's currency: its code
    inv = pd.DataFrame({"used_quantity": [Decimal("8"), Decimal("22205.91")], "unused_quantity": [None, None],
                        "quantity_unit": ["GPU", "USD"], "currency": ["USD", "USD"]})
    assert list(cm.with_quantity_text(inv)["used_quantity"]) == ["8 GPU", "$22,205.91"]


def test_underused_reads_periods_closed_by_the_report_day_and_leaves_ended_commitments_out():
    """Regression review: with a past report day, section 2 used the warehouse's latest closed month (a June
    report: "Use, exchange or shrink RI ...: 50% used in Oct 2026"); and an RI that ended the day before the report
    day was "decided by the expiry calendar (section 4)", which lists only commitments ending after it."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    per = cm.utilization(con, sc, by=("commitment", "period"))
    inv = cm.inventory(con, sc)
    under, ending = cm.underused(per, inv, dt.date(2026, 9, 15))  # September is not closed by then: nothing read
    assert under.empty and ending.empty
    under, ending = cm.underused(per, inv, dt.date(2026, 10, 1))  # September closed by the report day
    assert under.empty and list(ending["resource_id"]) == ["ri-half"] and list(ending["period"].astype(str)) == [
        "2026-09-01"]
    # an RI billed through the report day whose end date has passed: in neither table
    ended = inv.assign(last_day=dt.date(2026, 10, 21), end_date=dt.date(2026, 10, 20))
    under, ending = cm.underused(per, ended, dt.date(2026, 10, 21))
    assert under.empty and ending.empty


def test_group_labels_match_group_label_row_by_row():
    """cm.group_labels (the report's curve labels, read column by column) names every row as cm.group_label does."""
    df = pd.DataFrame({"provider": ["AWS", "AWS", "Google Cloud", "Microsoft"],
                       "instance_family": ["g5", "g5", "a2-highgpu", "NCads_A100_v4"],
                       "operating_system": ["Windows", cm.ANY_OS, None, float("nan")]})
    assert cm.group_labels(df) == [cm.group_label(r) for _, r in df.iterrows()]
    assert cm.group_labels(df.drop(columns=["operating_system"])) == [
        cm.group_label(r) for _, r in df.drop(columns=["operating_system"]).iterrows()]


def test_savings_curve_levels_at_once_as_one_by_one():
    """Float levels are computed all at once: the same figures as one level at a time (other numbers take that path)."""
    usage = [0.0, 1.5, 2.0, 2.0, 3.25, 0.5]
    floats = cm.savings_curve(usage, 1.0, 0.6, [0.0, 0.5, 2.0, 2.5, 9.0])
    ints = cm.savings_curve(usage, 1.0, 0.6, [0, 0.5, 2, 2.5, 9])
    pd.testing.assert_frame_equal(floats, ints.astype(floats.dtypes.to_dict()), check_exact=True)
    assert floats["utilization"].isna().tolist() == [True, False, False, False, False]
