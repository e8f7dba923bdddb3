"""Prose review of the rendered commitments report (s17, findings #3, #12 and #15's first two bullets).

* #3: the Azure OpenAI PTU reservation is valued against its hourly PTU list price in sections 3 and 4 (65.5% saved,
  "+$5,741.42 a month if it lapses") while section 5b finds its model's pay-as-you-go tokens never above break-even;
  5b's "Capacity hours 2,832" did not reconcile with section 2's 37,320 + 5,160 hours (PTU-hours).
* #12: the purchase line read "Commit to $33.15/h of on-demand AWS g5 Linux usage (+$29.71/h on demand; a plan of
  $20.55/h in all at the commitment rate) under Reserved Instance ..." -- no order a trainee can place.
* #15: the overview's "the bill falls by $618.41 a month" netted letting an RI lapse (-$1,012.73) with renewing a
  plan (+$394.32); section 2 promised "an action in the summary for each commitment used less than 95%" while the
  summary keeps the largest five.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from finops_kit import commitments as cm
from finops_kit import notebook as nbk
from finops_kit import scope

from .test_commitments import _days, _lapse_overview, _lapse_rows, _run_report_cells, _vm

REPO = Path(__file__).resolve().parents[1]


def _ptu_row(cal: pd.DataFrame) -> pd.Series:
    rows = cal[cal["name"].astype(str).str.contains("PTU")]
    assert len(rows) == 1, cal[["provider", "name"]]
    return rows.iloc[0]


# ------------------------------------------------------------------------------------------------ #3
def test_the_ptu_reservation_s_expiry_row_names_its_basis_and_carries_5b_s_verdict(sample_scope):
    """Before: the calendar's PTU row said only "bill change per month if it lapses +$5,741.42" (against its PTU
    list price) and had no column for anything else. Now it says what that value is and 5b's verdict."""
    con, sc = sample_scope
    cal = cm.expiry(con, sc)
    ptu = _ptu_row(cal)
    assert ptu["bill_change_if_lapsed"] > 0  # the figure stays: against the capacity's list price
    basis = ptu["lapse_basis"]
    assert basis.startswith("vs the capacity's hourly list price (15 capacity units per deployment hour), "
                            "not pay-as-you-go tokens; gpt-5's pay-as-you-go tokens never ran above break-even "
                            "(0.0 h/day): check the deployment's own traffic before renewing (section 5b)"), basis
    # every other commitment lapses to on-demand prices: no basis to name
    assert set(cal.loc[cal["commitment_id"] != ptu["commitment_id"], "lapse_basis"]) == {""}
    # as a decision (as if it ended within 90 days): the rise names its basis and the renewal is 5b's, not section 5's
    soon = cal[cal["commitment_id"] == ptu["commitment_id"]].assign(days_left=30)
    what = cm.expiry_decisions(soon).iloc[0]["what"]
    assert "/month vs the capacity's hourly list price if it lapses" in what, what
    assert "of usage at the capacity's hourly list price vs" in what
    assert what.endswith("gpt-5's pay-as-you-go tokens never ran above break-even (0.0 h/day): check the "
                         "deployment's own traffic before renewing (section 5b)"), what
    assert "size the renewal in section 5" not in what


def test_the_savings_basis_of_a_ptu_is_its_list_price_and_5b_verdict(sample_scope):
    con, sc = sample_scope
    notes = cm.provisioned_notes(con, sc)
    inv = cm.inventory(con, sc)
    ptu_ids = [i for i, n in zip(inv["commitment_id"], inv["name"], strict=True) if "PTU" in str(n)]
    assert list(notes) == ptu_ids  # only the provisioned-throughput reservation
    assert "pay-as-you-go tokens never ran above break-even" in notes[ptu_ids[0]]


def test_5b_hours_are_deployment_hours_that_reconcile_with_the_ptu_hours_of_section_2(sample_scope):
    """Before: 5b printed "Capacity hours 2,832" and section 2 "37,320 hours" used + "5,160 hours" unused of the same
    reservation. 2,832 deployment hours x 15 PTU = 42,480 PTU-hours = 37,320 + 5,160."""
    con, sc = sample_scope
    be = cm.provisioned_break_even(con, sc).set_index(["provider", "model"])
    g = be.loc[("Microsoft", "gpt-5")]
    assert g["units_per_hour"] == pytest.approx(15.0)
    inv = cm.inventory(con, sc).set_index("commitment_id")
    (cid,) = g["commitment_ids"]
    used, unused = Decimal(str(inv.loc[cid, "used_quantity"])), Decimal(str(inv.loc[cid, "unused_quantity"]))
    assert Decimal(str(g["capacity_units"])) == used + unused
    assert g["capacity_units"] == pytest.approx(g["capacity_hours"] * g["units_per_hour"])
    assert nbk.label("capacity_hours") == "Deployment hours (capacity billed)"
    assert nbk.label("units_per_hour") == "Capacity units per deployment hour"
    # the 5b sentence and the calendar read one verdict
    assert cm.provisioned_verdict(g.to_dict()).startswith("pay-as-you-go traffic alone ran below it most hours")
    bedrock = be.loc[("AWS", "Claude 3.5 Haiku")]
    assert bedrock["units_per_hour"] == pytest.approx(50.0)
    assert cm.provisioned_verdict(bedrock.to_dict(), short=True).endswith("the capacity pays for itself")


# ------------------------------------------------------------------------------------------------ #12
def _g5(**kw) -> pd.Series:
    r = dict(provider="AWS", instance_family="g5", operating_system="Linux", currency="USD",
             option="Reserved Instance (realized 38% on g5)", optimal_level=33.15, change_level=29.71,
             committed_now=3.44, optimal_commitment_per_hour=20.553, optimal_instances=float("nan"), lapsing_now=5.67,
             lapsing_by="2026-12-01",
             lapsing_ids=["arn:aws:ec2:us-east-1:210987654321:reserved-instances/5e8b2d1a-9c47-4f60-b3a2-7d1e0c9f8b44"])
    r.update(kw)
    return pd.Series(r)


def test_the_purchase_line_is_an_order_a_trainee_can_place():
    """Before: "Commit to $33.15/h of on-demand AWS g5 Linux usage (+$29.71/h on demand; a plan of $20.55/h in all at
    the commitment rate) under Reserved Instance (realized 38% on g5)". Same figures, an order."""
    line = cm.purchase_line(_g5())
    assert line == ("Buy Reserved Instance (realized 38% on g5) for AWS g5 Linux: reserve instances worth $29.71/h "
                    "at on-demand list price on top of the $3.44/h covered today, $33.15/h in all (about $20.55/h in "
                    "all at the commitment rate); this replaces reserved-instances/5e8b2d1a-9c47-4f60-b3a2-"
                    "7d1e0c9f8b44 ($5.67/h), which lapses 2026-12-01"), line
    assert "on demand;" not in line and "a plan of" not in line
    one_size = cm.purchase_line(_g5(optimal_instances=2.0, lapsing_now=0.0, lapsing_ids=[]))
    assert "$33.15/h in all, ≈ 2.0 instances' worth (about" in one_size and "replaces" not in one_size
    plan = cm.purchase_line(_g5(option="Savings Plan (realized 30% on ml.g5)", instance_family="ml.g5",
                                operating_system="any OS", lapsing_ids=[], lapsing_now=0.0))
    assert plan == ("Buy Savings Plan (realized 30% on ml.g5) for AWS ml.g5: an hourly commitment of $20.55/h in all "
                    "at the plan rate, covering $33.15/h of usage at on-demand list price ($29.71/h more than the "
                    "$3.44/h covered today)"), plan


def test_the_sizing_names_the_commitment_a_purchase_replaces():
    """ri-half ends 2026-10-20, within 30 days of the report day: the p4d purchase replaces it, by name."""
    from finops_kit.testing import focus_rows

    con = focus_rows(_lapse_rows())
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    rec, _ = cm.recommend(con, sc, risk_percentile=10, extra_options=["3-year quote=0.45"])
    p4d = rec[rec["instance_family"] == "p4d.24xlarge"] if "p4d.24xlarge" in set(rec["instance_family"]) else \
        rec[rec["instance_family"] == "p4d"]
    assert not p4d.empty
    assert all(list(ids) == ["ri-half"] for ids in p4d["lapsing_ids"])
    assert "this replaces ri-half ($5.00/h), which lapses 2026-10-20" in cm.purchase_line(p4d.iloc[0])


# ------------------------------------------------------------------------------------------------ #15
def test_the_overview_prints_each_direction_of_what_expires_not_the_net():
    """_lapse_rows: ri-half lapsing lowers the bill by 720.00 a month, sp-full lapsing raises it by 2,160.00; the
    overview said "rises by $1,440.00 a month" (the net of two opposite decisions)."""
    text = _lapse_overview()
    assert ("the bill falls by $720.00 a month for 1 of them (let it lapse) and rises by $2,160.00 a month for 1 of "
            "them (renew or replace it): separate decisions, listed in section 4") in text, text
    assert "$1,440.00" not in text


def test_section_2_says_the_summary_keeps_the_largest_and_lists_them_all(tmp_path):
    nb = json.loads((REPO / "notebooks" / "commitments.ipynb").read_text("utf-8"))
    md = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "an action in the summary for each commitment used" not in md
    assert "the summary at the top keeps only the report's largest actions by dollars" in " ".join(md.split())
    rows = _lapse_rows()
    for d in [*_days("2026-09-01", 30), *_days("2026-10-01", 10)]:  # ri-long: half used, ends in 2028
        rows += [_vm("AWS", d, "g5.xlarge", 12, "1.00", "0.60", cid="ri-long", res="i-7", end="2028-01-01T00:00:00Z"),
                 dict(day=d, ChargeCategory="Usage", cost="0", EffectiveCost="7.20", BilledCost="7.20",
                      CommitmentDiscountId="ri-long", CommitmentDiscountType="Reserved Instance",
                      CommitmentDiscountCategory="Usage", CommitmentDiscountStatus="Unused",
                      x_reservation_end_time="2028-01-01T00:00:00Z")]
    out = _run_report_cells(tmp_path, rows)
    assert ("Used less than 95% in their latest closed month (1; the summary at the top keeps the report's largest 5 "
            "actions, this list has all):") in out, out[-3000:]
    assert "Use\\, exchange or shrink ri\\-long\\: 50\\% used in Sep 2026: \\$216.00 unused." in out
