"""Text the package computes for the reports' prose (review s17 prose): every whole-scope sentence under a summary
names its span, every summary saving is per month, every share names its denominator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from finops_kit import scope as S
from finops_kit import spot
from finops_kit import summary as sm
from finops_kit import tagging as tg
from finops_kit.notebook import money
from finops_kit.testing import focus_rows

CONFIG = {
    "tag_policy": {"keys": {"team": {"required": True, "aliases": ["Team"]}}},
    "allocation": {"key": "team", "method": "none", "shared": {"tag_values": ["platform"]}},
}
ROWS = [
    # August and September are closed; October is the latest closed; November is open
    dict(day="2026-08-03", cost=80, tags={"team": "vision"}),
    dict(day="2026-09-03", cost=100, tags={"team": "vision"}),
    dict(day="2026-09-04", cost=20),                                      # untagged
    dict(day="2026-10-03", cost=150, tags={"team": "vision"}),
    dict(day="2026-10-04", cost=30),                                      # untagged
    dict(day="2026-10-05", cost=50, tags={"team": "nlp"}),
    dict(day="2026-10-06", cost=-30, tags={"team": "nlp"}, ChargeCategory="Credit"),  # a credit
    dict(day="2026-11-02", cost=7, tags={"team": "nlp"}),                 # open
]


@pytest.fixture()
def bill():
    con = focus_rows(ROWS)
    yield con
    con.close()


def test_a_whole_scope_sentence_names_its_span_and_the_period_of_the_block(bill):
    """spot_analysis printed "(all): 35.0% of the 1,099,894 accelerator-hours ..." right under a block showing Oct
    2026's 40.1%, without saying it was the whole 14-month scope (review s17 prose, finding 1)."""
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"])
    text = s.whole_scope_text()
    assert text == (f"Over the whole scope, {sc.span()} -- not Oct 2026 alone, the period of the figures above")
    assert "4 billing periods, 2026-08 to 2026-11 (1–2, open)" in text
    one = S.resolve(bill, CONFIG, billing_period_start="2026-10", billing_period_end="2026-10")
    assert sm.summarize(bill, one, ["effective_cost"]).whole_scope_text() == \
        "In the billing period 2026-10, as the figures above"
    nov = S.resolve(bill, CONFIG, billing_period_start="2026-11", billing_period_end="2026-11")
    assert sm.summarize(bill, nov, ["effective_cost"]).whole_scope_text().startswith("Over the whole scope, ")


def test_the_maturity_band_of_the_summary_period_is_printed(bill):
    """The tagging audit's headline read 90.8% (run) for Oct while section 2 printed only the scope's 89.3% -> walk.
    Oct here: 150 + 50 of 230 positive dollars tagged = 87.0% -> walk (bands 70/85/90)."""
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost", "tag_coverage"])
    line = tg.headline_maturity(s, tg.MaturityBands(), "team")
    assert line == "In Oct 2026 (the period of the figures above): 87.0% of dollars carry a valid 'team' tag -> walk."
    assert tg.headline_maturity(sm.summarize(bill, sc, ["effective_cost"]), tg.MaturityBands(), "team") == ""


def test_the_violation_share_names_its_denominator_positive_charges_before_credits(bill):
    """"74.2% of the spend in scope" was of the $5,326,352 of positive charges while the report printed $5,209,233
    net of credits (review s17 prose, finding 10). Here: untagged 20 + 30 of 80+100+20+150+30+50+7 = 437 positive
    dollars (the -30 credit is left out) = 11.4%."""
    sc = S.resolve(bill, CONFIG, {})
    audit = tg.TagAudit(bill, scope=sc)
    assert audit.positive_spend() == pytest.approx(437.0)
    text = audit.violated_spend_text(lambda v: money(v, "USD"))
    assert text == ("Charges with at least one violation: $50.00 (2 charges, 11.4% of the $437.00 of positive "
                    "charges in scope (before credits)).")


def _gpu(day, cost, hours, pricing, **k):
    row = dict(day=day, cost=cost, ConsumedQuantity=hours, ConsumedUnit="Hours", ProviderName="AWS",
               RegionId="us-east-1", x_InstanceType="p4d.24xlarge", x_AiWorkload="Accelerated compute",
               PricingCategory=pricing, tags={"team": "nlp"})
    return {**row, **k}


def test_spot_summary_actions_are_savings_per_month_over_the_lines_span():
    """The spot summary listed "$138,158 over the scope" beside other reports' "$7,984 per month": a 14-month
    total ranked about 14x too high in a savings backlog (review s17 prose, finding 4). A line's saving is now
    divided by the months its on-demand hours span (5 Jan .. 5 Mar 2026 = 60 days = 1.971 months); a line of one
    day counts one month, never extrapolated."""
    con = focus_rows([
        _gpu("2026-01-05", 219.6, 10, "Standard"), _gpu("2026-03-05", 219.6, 10, "Standard"),
        _gpu("2026-01-06", 100, 10, "Dynamic"),  # observed spot rate $10/h
        _gpu("2026-02-10", 50.3, 50, "Standard", x_InstanceType="g5.xlarge"),  # one day: one month
    ])
    a = spot.WhatIfAssumptions(overhead=1.0)
    w = spot.what_if_actions(spot.spot_what_if(con, None, a, by=()), a).set_index("instance_type")
    p4d, g5 = w.loc["p4d.24xlarge"], w.loc["g5.xlarge"]
    assert Decimal(str(p4d.saving)) == Decimal("239.20")  # 439.20 on demand - 20 h x $10
    assert p4d.span_days == pytest.approx(60.0) and p4d.months == pytest.approx(60 / (365.25 / 12))
    assert p4d.monthly_saving == Decimal("121.34")  # 239.20 / 1.971253
    assert p4d.span_note == "$239 over the 2.0 months of its on-demand hours, 5 Jan 2026 to 5 Mar 2026"
    assert g5.months == 1.0 and g5.monthly_saving == (Decimal(str(g5.saving))).quantize(Decimal("0.01"))
    s = sm.summarize(con, S.resolve(con, None, {}), ["effective_cost"])
    s.add_actions(w.reset_index(), what="Run {instance_type} on spot ({span_note})", dollars="monthly_saving",
                  owner="team", basis="per month", section="Back")
    (acts,) = [acts for kind, acts in s.action_groups() if kind == "saving"]
    assert [(a.basis, str(a.dollars)) for a in acts][0] == ("per month", "121.34")
    assert "$121 per month: Run p4d.24xlarge on spot ($239 over the 2.0 months" in s.to_text()


def test_the_spot_notebook_states_its_summary_savings_per_month():
    """The notebook passes the per-month column with the 'per month' basis (not the scope total)."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[1] / "notebooks" / "spot_analysis.ipynb").read_text())
    src = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'dollars="monthly_saving", owner="team", basis="per month"' in src
    assert "over the scope" not in src.split("report_summary.add_actions(spot.what_if_actions")[1].split(")\n")[0]


def _bedrock(usage_type: str, qty: str, cost: str, day: str) -> dict:
    return dict(ServiceName="Amazon Bedrock", ServiceCategory="AI and Machine Learning", x_UsageType=usage_type,
                SkuMeter=usage_type, PricingUnit="1000 Tokens", PricingQuantity=qty, ConsumedUnit="1000 Tokens",
                ConsumedQuantity=qty, cost=cost, day=day, x_AiWorkload="Managed AI service", tags={"team": "nlp"})


def test_a_token_batch_saving_in_the_summary_is_per_month_of_the_models_span():
    """The AI report's summary listed "$27,101 over the scope: Move work that can wait on Claude Sonnet 4 (AWS) to
    batch" beside savings per month (review s17 prose, finding 4). On-demand output tokens on 5 Jan and 5 Mar 2026
    (60 days = 1.97 months): 400 at $15/1M = $6.00; batch at $7.50/1M: the saving $3.00, $1.52 per month."""
    from finops_kit import tokens as tk

    con = focus_rows([
        _bedrock("USE1-Claude4Sonnet-output-tokens", "200", "3.00", "2026-01-05"),
        _bedrock("USE1-Claude4Sonnet-output-tokens", "200", "3.00", "2026-03-05"),
        _bedrock("USE1-Claude4Sonnet-output-tokens-batch", "200", "1.50", "2026-02-05"),
    ])
    sc = S.resolve(con, CONFIG, {})
    acts = tk.actions(con, sc)
    batch = acts[acts["kind"] == "batch"].iloc[0]
    assert batch["dollars"] == Decimal("3.00") and batch["span_days"] == pytest.approx(60.0)
    assert batch["dollars_per_month"] == Decimal("1.52")  # 3.00 / 1.971253
    block = tk.add_to_summary(sm.summarize(con, sc, ["ai_cost"]), con, sc)
    (acts_,) = [a for k, a in block.action_groups() if k == "saving"]
    assert (acts_[0].basis, acts_[0].dollars) == ("per month", Decimal("1.52"))
    assert "$2 per month: Move work that can wait on Claude Sonnet 4 (AWS) to batch ($3 over the 2.0 months of its " \
           "on-demand tokens)" in block.to_text()


def test_the_idle_gpu_window_is_named_with_its_length():
    """"Scheduling savings $2,084.86" was a 7-day window's, unlabelled (review s17 prose, finding 4)."""
    import datetime as dt

    from finops_kit import gpu

    idle = gpu.IdleGpu.__new__(gpu.IdleGpu)
    idle.window = (dt.datetime(2026, 10, 5, 0), dt.datetime(2026, 10, 12, 0))  # the end of the last hour
    assert idle.window_text() == "the 7-day metrics window (05 Oct 2026 00:00 to 12 Oct 2026 00:00 UTC)"
    idle.window = (dt.datetime(2026, 10, 5, 0), dt.datetime(2026, 10, 8, 12))
    assert idle.window_text().startswith("the 3.5-day metrics window")


def test_a_storage_action_on_an_unverified_price_or_a_differing_bill_rate_carries_the_caveat(bill):
    """The storage summary read "$3,505 per month: Lifecycle rule on acme-vision-prod-datasets: GCS Standard to GCS
    Coldline" with neither the body's "Check first" (unverified price) nor the row's rate warning (finding 5)."""
    import pandas as pd

    from finops_kit import storage as st

    recs = pd.DataFrame({
        "group": ["a", "b", "c"], "current_class": ["GCS Standard", "S3 Standard", "S3 Standard"],
        "target_class": ["GCS Coldline", "S3 Glacier Instant Retrieval", "S3 Standard-IA"],
        "monthly_saving": [Decimal("3505"), Decimal("900"), Decimal("100")], "team": ["vision", "nlp", "nlp"],
        "unverified_prices": ["GCS Coldline", "", ""],
        "warning": ["the bill's GCS Standard rate $0.026/GB-month differs from the price table's $0.02 "
                    "(us-central1): a different location or a negotiated rate; use a price table with your rates",
                    "", "single availability zone: only for data you can re-create"]})
    c = st.action_caveats(recs)
    assert list(c["assumed"]) == [True, False, False]
    assert c["price_note"][0] == ("price unverified (GCS Coldline): check the provider's price list; the bill's GCS "
                                  "Standard rate $0.026/GB-month differs from the price table's $0.02 (us-central1): "
                                  "a different location or a negotiated rate")
    s = sm.summarize(bill, S.resolve(bill, CONFIG, {}), ["effective_cost"])
    s.add_actions(c, dollars="monthly_saving", owner="team", basis="per month", section="Ranked recommendations",
                  what="Lifecycle rule on {group}: {current_class} to {target_class}", assumed="assumed",
                  note="{price_note}")
    text = s.to_text()
    assert "$3,505 per month: Lifecycle rule on a: GCS Standard to GCS Coldline [price unverified (GCS Coldline)" in text
    assert "$900 per month: Lifecycle rule on b: S3 Standard to S3 Glacier Instant Retrieval; team nlp" in text


def test_a_spot_line_whose_hours_ended_before_the_summary_period_is_no_action():
    """Per month, the demo's p5.48xlarge line (on-demand hours 6 Apr to 12 Jun 2026) read "$11,688 per month" in a
    summary of Oct 2026: usage that stopped is history, not a saving to act on."""
    import datetime as dt

    con = focus_rows([_gpu("2026-01-05", 219.6, 10, "Standard"), _gpu("2026-01-06", 100, 10, "Dynamic"),
                      _gpu("2026-03-05", 50.3, 50, "Standard", x_InstanceType="g5.xlarge")])
    a = spot.WhatIfAssumptions(overhead=1.0, flat_discount=0.5)
    w = spot.spot_what_if(con, None, a, by=())
    kept = spot.what_if_actions(w, a, since=dt.date(2026, 2, 1)).set_index("instance_type")
    assert kept.loc["p4d.24xlarge", "monthly_saving"] is None  # ended 5 Jan
    assert kept.loc["g5.xlarge", "monthly_saving"] == Decimal("25.15")  # 50.30 x 0.5, one day: one month
    assert spot.what_if_actions(w, a).set_index("instance_type").loc["p4d.24xlarge", "monthly_saving"] is not None
