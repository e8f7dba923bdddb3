"""Token costs from the bill (finops_kit.tokens): token lines of Bedrock, Azure OpenAI and Vertex AI shaped as the
kit's sources write them into FOCUS (x_UsageType = usage type / meter / SKU description, PricingUnit after
conformance), with the right answers computed by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from finops_kit import scope as S
from finops_kit import tokens as tk
from finops_kit.errors import ConfigError
from finops_kit.testing import focus_rows

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "finops.yaml")
D = Decimal


def bedrock(usage_type: str, qty: str, cost: str, unit: str = "1000 Tokens", **kw) -> dict:
    return dict(ServiceName="Amazon Bedrock", ServiceCategory="AI and Machine Learning", x_UsageType=usage_type,
                SkuMeter=usage_type, PricingUnit=unit, PricingQuantity=qty, ConsumedUnit=unit, ConsumedQuantity=qty,
                cost=cost, day=kw.pop("day", "2026-10-05"), x_AiWorkload="Managed AI service", **kw)


def azure(meter: str, qty: str, cost: str, unit: str, **kw) -> dict:
    return dict(ProviderName="Microsoft", PublisherName="Microsoft", InvoiceIssuerName="Microsoft",
                ServiceName="Azure AI Services", ServiceCategory="AI and Machine Learning",
                x_UsageType=f"Azure OpenAI {meter}", SkuMeter=f"Azure OpenAI {meter}", PricingUnit=unit,
                PricingQuantity=qty, cost=cost, day=kw.pop("day", "2026-10-06"), x_AiWorkload="Managed AI service",
                **kw)


def vertex(sku: str, qty: str, cost: str, unit: str = "Count", **kw) -> dict:
    return dict(ProviderName="Google Cloud", PublisherName="Google Cloud", InvoiceIssuerName="Google",
                ServiceName="Vertex AI", ServiceCategory="AI and Machine Learning", x_UsageType=sku, SkuMeter=sku,
                PricingUnit=unit, PricingQuantity=qty, cost=cost, day=kw.pop("day", "2026-10-07"),
                x_AiWorkload="Managed AI service", **kw)


ROWS = [
    # Bedrock, CUR shape: 1K-token blocks
    bedrock("USE1-Claude4Sonnet-input-tokens", "1000", "3.00", tags={"team": "nlp", "app": "chat-api"}),
    bedrock("USE1-Claude4Sonnet-output-tokens", "200", "3.00", tags={"team": "nlp", "app": "chat-api"}),
    bedrock("USE1-Claude4Sonnet-cache-read-input-token-count", "500", "0.15", tags={"team": "nlp"}),
    bedrock("USE1-Claude4Sonnet-cache-write-input-token-count", "100", "0.375"),
    bedrock("USE1-Claude4Sonnet-output-tokens-batch", "200", "1.50"),
    bedrock("USE1-Claude4Sonnet-input-tokens-cross-region-global", "100", "0.30", day="2026-09-10"),
    # an unknown model: listed as unmatched, never dropped
    bedrock("USE1-SuperModel9-input-tokens", "50", "1.00"),
    # a token usage type with a unit that is no token count
    bedrock("USE1-NovaPro-input-tokens", "2", "0.40", unit="Hours"),
    # provisioned throughput, hourly
    bedrock("USE1-Claude4Sonnet-ProvisionedThroughput", "24", "480.00", unit="1K TPM Hour"),
    # a credit on Bedrock: on the AI service lines, not a token
    dict(ServiceName="Amazon Bedrock", ServiceCategory="AI and Machine Learning", ChargeCategory="Credit",
         cost="-5.00", day="2026-10-01", x_AiWorkload="Managed AI service"),
    # Azure OpenAI: 1K and 1M meters, cached input (one cache line costs nothing)
    azure("gpt-4o-mini-0718-Inp-glbl", "2000", "0.30", "1000 Units", tags={"team": "vision"}),
    azure("GPT 5 Inpt Glbl", "2", "2.50", "1000000 Units", tags={"team": "vision"}),
    azure("GPT 5 cached Inp glbl", "4", "0.50", "1000000 Units", tags={"team": "vision"}),
    azure("GPT 5 cached Inp glbl", "1", "0", "1000000 Units", tags={"team": "vision"}),
    azure("GPT 5 Outp Glbl", "0.5", "5.00", "1000000 Units", tags={"team": "vision"}),
    azure("gpt-4o-mini-0718-Batch-Inp-glbl", "1000", "0.075", "1000 Units"),
    azure("gpt-4o Provisioned Managed Global", "24", "24.00", "Hours"),
    # Vertex AI Gemini: token type in the SKU description, caching storage in hours
    vertex("Gemini 2.5 Pro Text Input - Predictions", "1000000", "1.25"),
    vertex("Gemini 2.5 Pro Thinking Text Output - Predictions", "100000", "1.00"),
    vertex("Gemini 2.5 Pro Text Output - Predictions", "100000", "1.00"),
    vertex("Gemini 2.5 Pro Input Text Caching - Predictions", "400000", "0.125"),
    vertex("Gemini 2.5 Pro Text Input (Long) - Predictions", "200000", "0.50"),
    vertex("Gemini 2.5 Pro Caching Storage", "10", "0.45", unit="Hours"),
    vertex("Custom model training Nvidia A100 GPU running in Americas", "2", "6.75", unit="Hours"),
    # not an AI service: never read
    dict(ServiceName="Amazon Elastic Compute Cloud", x_UsageType="BoxUsage:p4d.24xlarge", cost="21.96",
         day="2026-10-05", PricingUnit="Hours", PricingQuantity="1"),
]


@pytest.fixture()
def con():
    c = focus_rows(ROWS)
    yield c
    c.close()


@pytest.fixture()
def sc(con):
    return S.resolve(con, CONFIG, {})


def _row(df, **match):
    m = df
    for k, v in match.items():
        m = m[m[k] == v]
    assert len(m) == 1, (match, df)
    return m.iloc[0]


def test_rule_table_has_provenance_and_validates():
    rs = tk.rules()
    assert {r.kind for r in rs} == set(tk.KINDS)
    assert all(r.source for r in rs), "every rule names its source"
    assert {r.value for r in rs if r.kind == "token"} == set(tk.TOKEN_TYPES)


def test_unit_costs_per_provider_model_and_token_type(con, sc):
    uc = tk.unit_costs(con, sc)
    out = _row(uc, provider="AWS", model="Claude Sonnet 4", token_type="output")
    # 200K on-demand tokens for $3.00 and 200K batch tokens for $1.50: 400K tokens, $4.50
    assert out["tokens_exact"] == D("400000")
    assert out["cost_per_1m"] == D("11.250000")
    inp = _row(uc, provider="AWS", model="Claude Sonnet 4", token_type="input")
    assert inp["tokens_exact"] == D("1100000") and inp["cost"] == D("3.30")
    assert _row(uc, model="Claude Sonnet 4", token_type="cache read")["cost_per_1m"] == D("0.300000")
    assert _row(uc, model="Claude Sonnet 4", token_type="cache write")["cost_per_1m"] == D("3.750000")
    # Azure: a 1K meter and a 1M meter count the same tokens
    assert _row(uc, model="gpt-4o-mini", token_type="input")["tokens_exact"] == D("3000000")
    assert _row(uc, model="gpt-5", token_type="input")["cost_per_1m"] == D("1.250000")
    assert _row(uc, model="gpt-5", token_type="output")["cost_per_1m"] == D("10.000000")
    # the zero-cost cache line still counts its tokens: 5M cached tokens for $0.50
    cached = _row(uc, model="gpt-5", token_type="cache read")
    assert cached["tokens_exact"] == D("5000000") and cached["cost_per_1m"] == D("0.100000")
    # Vertex: thinking is its own token type; (Long) context is a tier of input
    assert _row(uc, model="Gemini 2.5 Pro", token_type="thinking")["cost_per_1m"] == D("10.000000")
    assert _row(uc, model="Gemini 2.5 Pro", token_type="input")["tokens_exact"] == D("1200000")
    assert _row(uc, model="Gemini 2.5 Pro", token_type="cache read")["cost_per_1m"] == D("0.312500")
    assert set(uc["provider"]) == {"AWS", "Microsoft", "Google Cloud"}
    assert (uc["list_per_1m"] == uc["cost_per_1m"]).all()  # list = effective in this bill


def test_tiers_and_batch(con, sc):
    rows = con.sql(f"SELECT x_UsageType, x_TokenTier, x_TokenBatch FROM {tk.rows_sql(con, sc)} "
                   "WHERE x_TokenClass = 'tokens'").fetchall()
    tiers = {u: (t, b) for u, t, b in rows}
    assert tiers["USE1-Claude4Sonnet-output-tokens-batch"] == ("batch", True)
    assert tiers["USE1-Claude4Sonnet-input-tokens-cross-region-global"] == ("cross-region global", False)
    assert tiers["USE1-Claude4Sonnet-input-tokens"] == ("standard", False)
    assert tiers["Azure OpenAI gpt-4o-mini-0718-Batch-Inp-glbl"] == ("global, batch", True)
    assert tiers["Azure OpenAI GPT 5 Inpt Glbl"] == ("global", False)
    assert tiers["Gemini 2.5 Pro Text Input (Long) - Predictions"] == ("long context", False)
    bv = tk.batch_vs_on_demand(con, sc)
    out = _row(bv, model="Claude Sonnet 4", token_type="output")
    assert out["on_demand_per_1m"] == D("15.000000") and out["batch_per_1m"] == D("7.500000")
    assert out["batch_discount"] == pytest.approx(0.5)
    assert out["batch_opportunity"] == D("1.50")  # 200K on-demand tokens at the batch rate: $1.50 instead of $3.00
    mini = _row(bv, model="gpt-4o-mini", token_type="input")
    assert mini["batch_per_1m"] == D("0.075000") and mini["on_demand_per_1m"] == D("0.150000")


def test_cache_hit_share_and_savings(con, sc):
    cs = tk.cache_savings(con, sc)
    claude = _row(cs, model="Claude Sonnet 4", tier="standard")
    # prompt tokens 1M input + 500K cache read + 100K cache write; input rate $3/1M
    assert claude["cache_hit_share"] == pytest.approx(500 / 1600)
    assert claude["read_savings"] == D("1.35")        # 500K x $3/1M - $0.15
    assert claude["write_premium"] == D("0.075")      # $0.375 - 100K x $3/1M
    assert claude["net_savings"] == D("1.275")
    gpt5 = _row(cs, model="gpt-5")
    assert gpt5["read_savings"] == D("5.75")          # 5M x $1.25/1M - $0.50 (the zero-cost line counts)
    gem = _row(cs, model="Gemini 2.5 Pro")
    # the standard tier's input rate ($1.25/1M) prices 400K cached tokens: $0.50 - $0.125; storage $0.45
    assert gem["tier"] == "standard" and gem["storage_cost"] == D("0.45")
    assert gem["net_savings"] == D("0.375") - D("0.45")


def test_unmatched_rows_are_listed_with_the_reason_and_reconcile(con, sc):
    un = tk.unmatched(con, sc)
    reasons = dict(zip(un["usage_type"], un["reason"], strict=True))
    assert reasons == {"USE1-SuperModel9-input-tokens": "no model rule matches",
                       "USE1-NovaPro-input-tokens": "unit 'Hours' is not a token count"}
    rec = tk.reconcile(con, sc)
    assert rec["ok"].all()
    aws = _row(rec, provider="AWS")
    assert aws["unmatched"] == D("1.40")
    assert aws["provisioned throughput"] == D("480.00")
    assert aws["not usage"] == D("-5.00")
    assert aws["service_cost"] == D("3.00") + D("3.00") + D("0.15") + D("0.375") + D("1.50") + D("0.30") + D(
        "1.00") + D("0.40") + D("480.00") - D("5.00")
    gcp = _row(rec, provider="Google Cloud")
    assert gcp["cache storage"] == D("0.45") and gcp["other AI usage"] == D("6.75")
    assert _row(rec, provider="Microsoft")["provisioned throughput"] == D("24.00")
    s = tk.summary(con, sc)
    assert s.reconciled and s.unmatched_rows == 2 and s.unmatched_cost == D("1.40")
    assert s.token_cost + s.other_cost + s.unmatched_cost == s.service_cost


def test_reconciliation_fails_when_a_row_goes_missing(con, sc, monkeypatch):
    """A classification that loses a row (here: the unmatched ones) must not reconcile."""
    real = tk.rows_sql

    def dropping(con, sc, path=None):
        return f"(SELECT * FROM {real(con, sc, path)} WHERE x_TokenClass <> 'unmatched')"

    monkeypatch.setattr(tk, "rows_sql", dropping)
    rec = tk.reconcile(con, sc)
    assert not _row(rec, provider="AWS")["ok"]
    assert _row(rec, provider="Microsoft")["ok"]


def test_per_team_and_application_through_the_tag_policy(con, sc):
    by_team = tk.unit_costs(con, sc, by=("team",))
    nlp = _row(by_team, team="nlp")
    assert nlp["cost"] == D("6.15")  # input, output and the tagged cache read; 'app' counts as project
    vision = _row(by_team, team="vision")
    assert vision["cost"] == D("8.30")
    by_app = tk.unit_costs(con, sc, by=("project",))
    assert _row(by_app, project="chat-api")["cost"] == D("6.00")
    assert "(untagged)" in set(by_app["project"])
    with pytest.raises(ConfigError, match="not in tag_policy"):
        tk.unit_costs(con, sc, by=("no_such_key",))


def test_trend_by_month(con, sc):
    tr = tk.trend(con, sc, by=("model",))
    sep = tr[tr["month"].astype(str).str.startswith("2026-09")]
    assert list(sep["model"]) == ["Claude Sonnet 4"] and sep.iloc[0]["cost_per_1m"] == D("3.000000")


def test_mixed_currencies_follow_the_scope_rules():
    c = focus_rows([*ROWS[:2], {**bedrock("USE1-Claude4Sonnet-input-tokens", "1000", "2.80"), "BillingCurrency": "EUR",
                                "BillingAccountId": "acct-eu"}])
    try:
        with pytest.raises(ConfigError, match="several billing currencies"):
            S.resolve(c, CONFIG, {})
        eur = S.resolve(c, CONFIG, {"currency": "EUR"})
        uc = tk.unit_costs(c, eur)
        assert list(uc["currency"]) == ["EUR"]
        assert _row(uc, token_type="input")["cost_per_1m"] == D("2.800000")
        usd = tk.unit_costs(c, S.resolve(c, CONFIG, {"currency": "USD"}))
        assert _row(usd, token_type="input")["cost_per_1m"] == D("3.000000")
    finally:
        c.close()


def test_a_user_rule_file_is_validated(tmp_path):
    bad = tmp_path / "rules.csv"
    bad.write_text("kind,provider_pattern,column,pattern,value,batch,source\n"
                   "token,.*,x_UsageType,(?i)input,prompt,,me\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.csv: rule 1, column value: 'prompt'"):
        tk.rules(bad)
    bad.write_text("kind,provider_pattern,column,pattern,value,batch,source\n"
                   "model,.*,NoSuchColumn,x,m,,me\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="column column: 'NoSuchColumn'"):
        tk.rules(bad)


def test_a_user_rule_file_recognises_a_new_model(con, sc, tmp_path):
    """The answer follows the reviewed table at query time: adding a rule matches the unknown model, no re-ingest."""
    own = tmp_path / "rules.csv"
    text = (REPO / "finops_kit" / "data" / "ai_token_rules.csv").read_text(encoding="utf-8")
    own.write_text(text + "model,(?i)aws,x_UsageType,(?i)-SuperModel9-,Super Model 9,,our bill 2026-10\n",
                   encoding="utf-8")
    uc = tk.unit_costs(con, sc, path=own)
    assert _row(uc, model="Super Model 9")["cost_per_1m"] == D("20.000000")
    assert list(tk.unmatched(con, sc, path=own)["usage_type"]) == ["USE1-NovaPro-input-tokens"]


def test_actions_name_dollars_and_owner(con, sc):
    acts = tk.actions(con, sc)
    batch = acts[acts["kind"] == "batch"].set_index("what")
    claude = batch.loc["Move work that can wait on Claude Sonnet 4 (AWS) to batch"]
    assert claude["dollars"] == D("1.50") and claude["owner"] == "nlp"  # most Claude Sonnet 4 spend is nlp's
    mini = batch.loc["Move work that can wait on gpt-4o-mini (Microsoft) to batch"]
    assert mini["dollars"] == D("0.15") and mini["owner"] == "vision"  # 2M on-demand tokens at $0.075/1M: $0.15
    assert set(batch["section"]) == {"5. Batch vs on-demand"}
    un = acts[acts["kind"] == "unmatched"]
    assert sorted(un["dollars"]) == [D("0.40"), D("1.00")]


def test_summary_block_gets_token_figures_and_actions(con, sc):
    from finops_kit import summary as sm

    block = tk.add_to_summary(sm.summarize(con, sc, ["ai_cost"], title="AI unit economics"), con, sc)
    figs = sm.figures_of(block)
    assert block.current is not None and block.current.isoformat() == "2026-09-01"  # October is open (5th-7th)
    assert figs["token_cost"] == D("0.30") and figs["cost_per_1m"] == D("3.000000")
    # batch savings first, then the unmatched lines' cost (at stake: a rule would explain it, nothing is saved)
    assert [(k, [a.dollars for a in acts]) for k, acts in block.action_groups()] == [
        ("saving", [D("1.50"), D("0.15")]), ("at stake", [D("1.00"), D("0.40")])]


def test_metrics_show_token_figures_only_when_there_are_token_lines(con, sc):
    from finops_kit.metrics import metrics

    m = metrics(con, sc)
    assert "tokens" in m.to_dict()
    assert _row(m.tokens, model="gpt-5", token_type="output")["cost_per_1m"] == D("10.000000")
    plain = focus_rows([dict(cost="21.96", day="2026-10-05", x_UsageType="BoxUsage:p4d.24xlarge")])
    try:
        m2 = metrics(plain, S.resolve(plain, CONFIG, {}))
        assert m2.tokens.empty and "tokens" not in m2.to_dict()
    finally:
        plain.close()


# ---- a model rule matches that model only; other modalities are listed, not folded into text tokens

VARIANTS = [
    azure("GPT 5 Inpt Glbl", "100", "125.00", "1000000 Units"),          # gpt-5 input: $1.25 / 1M
    azure("GPT 5 nano Inpt Glbl", "100", "5.00", "1000000 Units"),       # another model, 25x cheaper
    azure("GPT 5.1 Inpt Glbl", "100", "125.00", "1000000 Units"),        # a newer model
    azure("GPT 5 mini Inpt Glbl", "100", "25.00", "1000000 Units"),      # has its own rule
    azure("gpt 4.1 Inp glbl", "100", "200.00", "1000000 Units"),         # gpt-4.1: $2.00 / 1M
    azure("gpt 4.1 nano Inp glbl", "100", "10.00", "1000000 Units"),
    azure("o3 Inp glbl", "100", "200.00", "1000000 Units"),
    azure("o3 mini Inp glbl", "100", "110.00", "1000000 Units"),
    azure("gpt-4o-0806 Inp glbl Tokens", "1000", "2.50", "1000 Units"),  # gpt-4o: $2.50 / 1M
    azure("gpt-4o-mini-0718-Inp-glbl", "1000", "0.15", "1000 Units"),
    azure("gpt-4o-rt-aud-Inp-glbl", "1", "40.00", "1000000 Units"),     # realtime audio input, $40 / 1M
    azure("gpt-4o Provisioned Managed Global", "24", "24.00", "Hours"),
    vertex("Gemini 2.5 Flash Text Output - Predictions", "1000000", "2.50"),
    vertex("Gemini 2.5 Flash Image Output - Predictions", "1000000", "30.00"),
]


@pytest.fixture()
def variants():
    c = focus_rows(VARIANTS)
    yield c, S.resolve(c, CONFIG, {})
    c.close()


def test_a_model_rule_matches_that_model_only(variants):
    """'GPT 5 nano', 'GPT 5.1', 'gpt 4.1 nano', 'o3 mini' are other models: listed as unmatched, never folded into
    gpt-5 / gpt-4.1 / o3 (gpt-5 input read $0.85 / 1M instead of $1.25 with them)."""
    con, sc = variants
    models = dict(con.sql(f"SELECT x_UsageType, x_AiModel FROM {tk.rows_sql(con, sc)}").fetchall())
    assert models["Azure OpenAI GPT 5 Inpt Glbl"] == "gpt-5"
    assert models["Azure OpenAI GPT 5 mini Inpt Glbl"] == "gpt-5-mini"
    assert models["Azure OpenAI gpt 4.1 Inp glbl"] == "gpt-4.1"
    assert models["Azure OpenAI o3 Inp glbl"] == "o3"
    assert models["Azure OpenAI gpt-4o-0806 Inp glbl Tokens"] == "gpt-4o"
    assert models["Azure OpenAI gpt-4o-mini-0718-Inp-glbl"] == "gpt-4o-mini"
    uc = tk.unit_costs(con, sc)
    assert _row(uc, model="gpt-5", token_type="input")["cost_per_1m"] == D("1.250000")
    assert _row(uc, model="gpt-5-mini", token_type="input")["cost_per_1m"] == D("0.250000")
    assert _row(uc, model="gpt-4.1", token_type="input")["cost_per_1m"] == D("2.000000")
    assert _row(uc, model="o3", token_type="input")["cost_per_1m"] == D("2.000000")
    assert _row(uc, model="gpt-4o", token_type="input")["cost_per_1m"] == D("2.500000")
    assert _row(uc, model="gpt-4o-mini", token_type="input")["cost_per_1m"] == D("0.150000")
    un = tk.unmatched(con, sc)
    reasons = dict(zip(un["usage_type"], un["reason"], strict=True))
    for meter in ("GPT 5 nano Inpt Glbl", "GPT 5.1 Inpt Glbl", "gpt 4.1 nano Inp glbl", "o3 mini Inp glbl"):
        assert reasons[f"Azure OpenAI {meter}"] == "no model rule matches", meter


def test_audio_image_and_realtime_meters_are_unmatched_not_text_tokens(variants):
    """Realtime audio ($40 / 1M) is not gpt-4o text input ($2.50), an image output ($30 / 1M) not Gemini 2.5 Flash
    text output ($2.50): the table prices text tokens, so those meters are listed with the modality."""
    con, sc = variants
    uc = tk.unit_costs(con, sc)
    assert _row(uc, model="Gemini 2.5 Flash", token_type="output")["cost_per_1m"] == D("2.500000")
    assert _row(uc, model="gpt-4o", token_type="input")["rows"] == 1
    un = tk.unmatched(con, sc)
    reasons = dict(zip(un["usage_type"], un["reason"], strict=True))
    assert reasons["Azure OpenAI gpt-4o-rt-aud-Inp-glbl"] == "realtime audio tokens: no model rule for them"
    assert reasons["Gemini 2.5 Flash Image Output - Predictions"] == "image tokens: no model rule for them"
    assert sum(un["cost"]) == D("40.00") + D("30.00") + D("5.00") + D("125.00") + D("10.00") + D("110.00")
    assert tk.reconcile(con, sc)["ok"].all()
    cap = tk.capacity(con, sc)
    assert _row(cap, provider="Microsoft")["cost"] == D("24.00")


def test_a_rule_for_a_modality_prices_its_meters(variants, tmp_path):
    """A model rule for the modality (column modality) makes those meters token rows of their own model, even
    appended after the text rules."""
    con, sc = variants
    own = tmp_path / "rules.csv"
    text = (REPO / "finops_kit" / "data" / "ai_token_rules.csv").read_text(encoding="utf-8")
    own.write_text(text + "model,(?i)microsoft,x_UsageType,(?i)gpt-4o-rt-aud-,gpt-4o-realtime,,our bill 2026-10,"
                   "realtime audio\n", encoding="utf-8")
    uc = tk.unit_costs(con, sc, path=own)
    assert _row(uc, model="gpt-4o-realtime", token_type="input")["cost_per_1m"] == D("40.000000")
    assert _row(uc, model="gpt-4o", token_type="input")["cost_per_1m"] == D("2.500000")
    assert "Azure OpenAI gpt-4o-rt-aud-Inp-glbl" not in set(tk.unmatched(con, sc, path=own)["usage_type"])
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,provider_pattern,column,pattern,value,batch,source,modality\n"
                   "model,.*,x_UsageType,x,m,,me,smell\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="column modality: 'smell'"):
        tk.rules(bad)


# ---- the reconciliation is a check that can fail

def test_reconciliation_fails_when_the_service_list_loses_a_service(con, sc, monkeypatch):
    """The services' total is recomputed from the FOCUS rows themselves (the service rules applied to each row), not
    from the list of services the classification used: a service missing from that list must not reconcile."""
    real = tk.service_names
    monkeypatch.setattr(tk, "service_names", lambda con, sc, path=None: [
        p for p in real(con, sc, path) if p[0] != "Microsoft"])
    rec = tk.reconcile(con, sc)
    ms = _row(rec, provider="Microsoft")
    assert not ms["ok"] and ms["service_cost"] == D("32.375") and pd.isna(ms["classified_cost"])
    assert _row(rec, provider="AWS")["ok"]
    assert not tk.summary(con, sc).reconciled


def test_reconciliation_fails_when_a_row_is_counted_twice(con, sc, monkeypatch):
    real = tk.rows_sql

    def doubling(con, sc, path=None):
        r = real(con, sc, path)
        return f"(SELECT * FROM {r} UNION ALL SELECT * FROM {r} WHERE x_UsageType = 'Azure OpenAI GPT 5 Outp Glbl')"

    monkeypatch.setattr(tk, "rows_sql", doubling)
    rec = tk.reconcile(con, sc)
    assert not _row(rec, provider="Microsoft")["ok"]
    assert _row(rec, provider="Google Cloud")["ok"]


def test_reconciliation_fails_when_a_usage_row_lands_in_not_usage(con, sc, monkeypatch):
    """Usage rows make up tokens + capacity + cache storage + other + unmatched, the rest of the services' rows
    'not usage': both halves are checked against the FOCUS ChargeCategory, so a class that swallows a Usage line
    (here the unmatched Bedrock lines filed as 'not usage') does not reconcile even though the total still does."""
    real = tk.rows_sql

    def misfiling(con, sc, path=None):
        return (f"(SELECT * REPLACE (CASE WHEN x_TokenClass = 'unmatched' THEN 'not usage' ELSE x_TokenClass END "
                f"AS x_TokenClass) FROM {real(con, sc, path)})")

    monkeypatch.setattr(tk, "rows_sql", misfiling)
    rec = tk.reconcile(con, sc)
    aws = _row(rec, provider="AWS")
    assert aws["classified_cost"] == aws["service_cost"]
    assert not aws["ok"]
    assert _row(rec, provider="Microsoft")["ok"]
