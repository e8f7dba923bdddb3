"""Text the package computes for the reports' prose (review s17 prose, findings 8, 9 and 13): the team is named the
team and the ``owner`` tag the owner tag, with whom to ask when the tag is missing; "Unallocated" says why it is
less than the untagged share of the coverage figure; the blended cost per 1M tokens names its mix."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from finops_kit import gpu
from finops_kit import scope as S
from finops_kit import summary as sm
from finops_kit import tokens as tk
from finops_kit.metrics import metrics
from finops_kit.testing import focus_rows

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "tag_policy": {"keys": {"team": {"required": True}}},
    "allocation": {"key": "team", "method": "none",
                   "shared": {"tag_values": ["platform"], "charge_categories": ["Tax", "Adjustment"],
                              "unused_commitments": True}},
}
ROWS = [
    dict(day="2026-09-03", cost=100, tags={"team": "vision"}),
    dict(day="2026-10-03", cost=150, tags={"team": "vision"}),
    dict(day="2026-10-04", cost=30),                                         # untagged usage: unallocated
    dict(day="2026-10-05", cost=40, ChargeCategory="Tax"),                   # untagged, shared
    dict(day="2026-10-06", cost=10, CommitmentDiscountStatus="Unused"),      # untagged, shared
    dict(day="2026-10-07", cost=-5, ChargeCategory="Credit"),                # a credit on untagged charges
    dict(day="2026-11-02", cost=7, tags={"team": "vision"}),                 # open
]


@pytest.fixture()
def bill():
    con = focus_rows(ROWS)
    yield con
    con.close()


def test_unallocated_says_what_the_untagged_share_of_coverage_holds_beside_it(bill):
    """The demo's block: "Unallocated (untagged): $16,800" beside "Allocation-key tag coverage: 90.8%": a reader
    takes 9.2% of October, $45.7k, as untagged; the $28.9k between is tax and unused commitments, untagged but
    shared (finding 9). Here: $80 of October's $230 positive charges has no team tag (65.2% coverage); $50 of it is
    shared (Tax $40, unused commitments $10); unallocated $25 = the $30 left less a $5 credit."""
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["unallocated_cost", "tag_coverage"])
    f = {x.key: x for x in s.figures}
    oct_ = metrics(bill, S.resolve(bill, CONFIG, billing_period_start="2026-10", billing_period_end="2026-10"))
    assert f["unallocated_cost"].value == oct_.total("unallocated_cost") == Decimal("25")
    assert f["tag_coverage"].value == pytest.approx(150 / 230)
    detail = ("charges without a valid 'team' tag: $80 (34.8% of positive charges); $50 of them are shared costs "
              "(Tax $40, unused commitments $10): in the shared pool (allocation.shared), not unallocated; credits "
              "and refunds on the untagged charges: -$5.")
    assert f["unallocated_cost"].detail == detail
    text = s.to_text()
    assert "- Unallocated (untagged, after shared costs are pooled): $25 (" in text
    assert f"\n  {detail}\n" in text
    assert f"<b>Unallocated (untagged, after shared costs are pooled)</b>: {detail.replace(chr(39), '&#x27;')}" \
        in s.to_html()
    # the untagged dollars are the coverage metric's, to the cent
    cov = oct_.tag_coverage.set_index("key")
    assert Decimal(str(cov.loc["team", "untagged_cost"])) == Decimal("80")


def test_no_untagged_charges_no_shared_part_named():
    con = focus_rows([dict(day="2026-09-03", cost=100, tags={"team": "vision"}),
                      dict(day="2026-10-03", cost=100, tags={"team": "vision"}),
                      dict(day="2026-11-03", cost=1, tags={"team": "vision"})])
    try:
        s = sm.summarize(con, S.resolve(con, CONFIG, {}), ["unallocated_cost"])
        assert s.figures[0].detail == "charges without a valid 'team' tag: $0 (0.0% of positive charges)."
    finally:
        con.close()


def test_summary_actions_name_the_team_as_the_team(bill):
    """The block said "owner nlp" of i-02e9b32251ed2a9be while the AI report's table had "Owner (untagged)" (the
    ``owner`` tag) for the same resource (finding 8): the block names the allocation key's value as the team."""
    sc = S.resolve(bill, CONFIG, {})
    s = sm.summarize(bill, sc, ["effective_cost"])
    s.add_action("Schedule i-02e9b32251ed2a9be", Decimal("100"), "nlp", "5. Dev vs prod", basis="per month")
    assert "Schedule i-02e9b32251ed2a9be; team nlp; see '5. Dev vs prod'" in s.to_text()
    assert "owner nlp" not in s.to_text()
    assert "&middot; team <b>nlp</b>" in s.to_html() and "owner <b>" not in s.to_html()


def _idle(rows: list[dict]) -> gpu.IdleGpu:
    df = pd.DataFrame(rows, columns=["resource_id", "team", "owner", "idle_cost"])
    return gpu.IdleGpu(None, (None, None), "USD", df, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {})


def test_idle_gpu_contacts_ask_the_team_when_the_owner_tag_is_missing():
    """The AI report said "A resource with (untagged) owner has nobody to ask" of a resource whose team (nlp) the
    summary named (finding 8): the owner tag's contact when there is one, else its team; nobody only without
    both."""
    r = _idle([dict(resource_id="i-a", team="nlp", owner="(untagged)", idle_cost=Decimal("2410.62")),
               dict(resource_id="i-b", team="(untagged)", owner="(untagged)", idle_cost=Decimal("111.06")),
               dict(resource_id="i-c", team="vision", owner="ana@example.com", idle_cost=Decimal("3")),
               dict(resource_id="i-d", team="recsys", owner="(untagged)", idle_cost=Decimal("0"))])
    text = r.contacts(lambda v: f"${float(v):,.2f}")
    assert text == ("**Who to ask** about the idle resources above: `i-a` ($2,410.62 idle): no `owner` tag, so no "
                    "named contact; ask its team (nlp) and fix the tag; `i-b` ($111.06 idle): no `owner` tag and no "
                    "team: nobody to ask, fix its tags first (the tagging audit); `i-c` ($3.00 idle): ask "
                    "ana@example.com (its `owner` tag).")
    assert "i-d" not in text  # no idle dollars: nothing to ask
    none = _idle([dict(resource_id="i-d", team="recsys", owner="(untagged)", idle_cost=Decimal("0"))])
    assert none.contacts(str) == "No resource had idle GPU dollars in the metrics' window: nobody to ask."


def test_ai_report_labels_the_owner_tag_and_says_whom_to_ask():
    nb = json.loads((REPO / "notebooks" / "ai_unit_economics.ipynb").read_text(encoding="utf-8"))
    src = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "has\nnobody to ask" not in src and "idle.contacts(nb.money, top_n)" in src
    assert '"owner_tag"' in src and src.count('rename(columns={"owner": "owner_tag"})') == 2  # idle, unmonitored
    labels = (REPO / "finops_kit" / "data" / "column_labels.csv").read_text(encoding="utf-8")
    assert "\nowner_tag,Owner tag,key," in labels  # shown beside Team, as the tag it is
    tagging = json.loads((REPO / "notebooks" / "tagging_audit.ipynb").read_text(encoding="utf-8"))
    tsrc = "\n".join("".join(c["source"]) for c in tagging["cells"])
    assert 'owner="owner"' not in tsrc and "owner=team_key" in tsrc


def _bedrock(usage_type: str, qty: str, cost: str, day: str = "2026-09-05") -> dict:
    return dict(ServiceName="Amazon Bedrock", ServiceCategory="AI and Machine Learning", x_UsageType=usage_type,
                SkuMeter=usage_type, PricingUnit="1000 Tokens", PricingQuantity=qty, ConsumedUnit="1000 Tokens",
                ConsumedQuantity=qty, cost=cost, day=day, x_AiWorkload="Managed AI service")


def test_blended_cost_per_1m_tokens_names_its_mix():
    """"Cost per 1M tokens (USD): 0.60" read as a token's price; 42% of October's tokens were Titan embeddings at
    0.02 per 1M (finding 13). Here: 10M tokens in September for $24.12 (2.41 per 1M): Titan 6M (60%, 0.02 per 1M),
    Claude input 3M, output 1M; input 90% at 1.01 per 1M, output 10% at 15.00."""
    con = focus_rows([
        _bedrock("USE1-TitanEmbeddingsV2-Text-input-tokens", "6000", "0.12"),
        _bedrock("USE1-Claude4Sonnet-input-tokens", "3000", "9.00"),
        _bedrock("USE1-Claude4Sonnet-output-tokens", "1000", "15.00"),
        _bedrock("USE1-Claude4Sonnet-input-tokens", "1", "0.003", day="2026-10-05"),  # October: open
    ])
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), {})
        block = tk.add_to_summary(sm.summarize(con, sc, ["ai_cost"]), con, sc)
        f = {x.key: x for x in block.figures}["cost_per_1m"]
        assert f.label == "Cost per 1M tokens, blended (USD)" and float(f.value) == pytest.approx(2.412)
        mix = ("blended over 2 models and every token type, weighted by their tokens: Titan Text Embeddings V2 is "
               "60% of the tokens at 0.02 per 1M; by token type input 90% (1.01 per 1M), output 10% (15.00 per "
               "1M). A change in this mix moves the blended figure with no price changing: compare models and "
               "token types in sections 2 and 3.")
        assert f.detail == mix
        assert "- Cost per 1M tokens, blended (USD): 2.41" in block.to_text() and f"\n  {mix}" in block.to_text()
    finally:
        con.close()
