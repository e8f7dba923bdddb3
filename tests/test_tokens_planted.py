"""The token analysis recovers the planted facts of the sample data exactly (data/samples/PLANTED.json,
``ai_tokens``: written by finops_kit/samples/ai_tokens.py from the lines it emitted in each provider's format)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit import scope as S
from finops_kit import tokens as tk

REPO = Path(__file__).resolve().parents[1]
PLANTED = REPO / "data" / "samples" / "PLANTED.json"
D = Decimal


@pytest.fixture(scope="module")
def facts() -> dict:
    doc = json.loads(PLANTED.read_text(encoding="utf-8"))
    assert "ai_tokens" in doc, "PLANTED.json has no ai_tokens facts: run 'finops-kit samples --out data/samples'"
    return doc["ai_tokens"]


@pytest.fixture(scope="module")
def env(sample_warehouse):
    con = fk.connect(sample_warehouse, read_only=True)
    try:
        yield con, S.resolve(con, str(REPO / "finops.yaml"), {})
    finally:
        con.close()


def _one(df, **match):
    m = df
    for k, v in match.items():
        m = m[m[k] == v]
    assert len(m) == 1, match
    return m.iloc[0]


def test_planted_unit_costs_are_recovered_exactly(env, facts):
    con, sc = env
    uc = tk.unit_costs(con, sc)
    assert len(facts["unit_costs"]) >= 15  # every model and token type of the three providers
    for f in facts["unit_costs"]:
        row = _one(uc, provider=f["provider"], model=f["model"], token_type=f["token_type"])
        assert row["tokens_exact"] == D(f["tokens"]), f
        assert row["cost"] == D(f["cost"]), f
        assert row["cost_per_1m"] == D(f["cost_per_1m"]), f


def test_planted_headline_output_price_batch_and_cache_savings(env, facts):
    con, sc = env
    h = facts["headline"]
    bv = _one(tk.batch_vs_on_demand(con, sc), provider="AWS", model="Claude Sonnet 4", token_type="output")
    assert bv["on_demand_per_1m"] == D(h["claude_sonnet_4_output_on_demand_per_1m"]) == D("15.000000")
    assert bv["batch_per_1m"] == D(h["claude_sonnet_4_output_batch_per_1m"]) == D("7.500000")
    c = h["claude_sonnet_4_cache"]
    cs = _one(tk.cache_savings(con, sc), provider="AWS", model="Claude Sonnet 4", tier=c["tier"])
    assert cs["cache_read_tokens"] == c["cache_read_tokens"] and cs["input_tokens"] == c["input_tokens"]
    assert cs["read_savings"] == D(c["read_savings"])
    assert cs["write_premium"] == D(c["write_premium"])
    assert cs["net_savings"] == D(c["net_savings"])
    assert round(D(cs["cache_hit_share"]), 6) == D(c["cache_hit_share"])


def test_planted_capacity_cache_storage_and_unmatched_lines(env, facts):
    con, sc = env
    cap = tk.capacity(con, sc)
    for f in facts["capacity"]:
        got = cap[(cap["provider"] == f["provider"]) & cap["usage_type"].str.endswith(f["usage_type"])]["cost"].sum()
        assert got == D(f["cost"]), f
    un = tk.unmatched(con, sc)
    for f in facts["unmatched"]:
        row = _one(un, provider=f["provider"], usage_type=f["usage_type"])
        assert row["cost"] == D(f["cost"]) and row["reason"] == f["reason"]
    rec = tk.reconcile(con, sc)
    assert rec["ok"].all()
    assert _one(rec, provider="Google Cloud")["cache storage"] == D(facts["cache_storage"][0]["cost"])
    assert sum(rec["unmatched"]) == sum(D(f["cost"]) for f in facts["unmatched"])


def test_caching_lowered_the_support_bots_unit_cost(env, facts):
    """The trend shows what turning caching on did: Claude Sonnet 4 prompt tokens cost less per 1M after."""
    con, sc = env
    tr = tk.trend(con, sc, by=("provider", "model", "tier"))
    cs4 = tr[(tr["model"] == "Claude Sonnet 4") & (tr["tier"] == "standard")].set_index("month")
    on = facts["headline"]["claude_sonnet_4_cache"]["caching_on"]
    before = [v for m, v in cs4["cost_per_1m"].items() if str(m) < on]
    after = [v for m, v in cs4["cost_per_1m"].items() if str(m) >= on]
    assert before and after and max(after) < min(before)
