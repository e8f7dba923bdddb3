"""Tag audit on hand-built FOCUS tables: every expected number below is computed by hand in the comments.

Rule for negative costs (credits/refunds): coverage, violations and top-N use rows with EffectiveCost > 0 only;
the dev vs prod spend table is net (credits included).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from finops_kit.attribution import kv_sql
from finops_kit.errors import ConfigError
from finops_kit.tagging import (
    ALL_REQUIRED,
    OTHER,
    UNTAGGED,
    TagAudit,
    accelerator_families,
    load_policy,
    maturity_band,
    spend_summary,
)
from finops_kit.testing import focus_rows

POLICY = {
    "environment_key": "env",
    "production_values": ["prod"],
    "keys": {
        "team": {"aliases": ["Team"], "pattern": "[a-z][a-z0-9-]*"},
        "env": {"aliases": ["environment"], "allowed": ["prod", "dev", "staging"],
                "value_aliases": {"prod": ["Production", "prd"]}},
        "project": {"required": True},
        "owner": {"pattern": r"[^@\s]+@[^@\s]+"},
        "model": {"required": "ai"},
    },
}

D = "2026-01-05"
ROWS = [
    # 1: everything valid                                                                         +100
    {"cost": 100, "day": D, "ResourceId": "r1", "SubAccountId": "111", "SubAccountName": "research",
     "tags": {"team": "ml-research", "env": "prod", "project": "llm", "owner": "a@x.com", "cost_center": "cc1"}},
    # 2: alias key Team, case variant Env, value alias Production -> prod; owner missing             +50
    {"cost": 50, "day": D, "ResourceId": "r2", "SubAccountId": "111", "SubAccountName": "research",
     "tags": {"Team": "ml-research", "Env": "Production", "project": "llm", "CostCenter": "cc1"}},
    # 3: case variant TEAM; alias environment; empty project; owner missing                           +30
    {"cost": 30, "day": D, "ResourceId": "r3", "SubAccountId": "222", "SubAccountName": "search",
     "tags": {"TEAM": "search", "environment": "dev", "project": ""}},
    # 4: value case variant Search -> search; invalid env; near-duplicate key projct; owner missing   +20
    {"cost": 20, "day": D, "ResourceId": "r4", "SubAccountId": "222", "SubAccountName": "search",
     "tags": {"team": "Search", "env": "staging-eu", "projct": "rag"}},
    # 5: a credit: left out of coverage, violations and top-N                                         -10
    {"cost": -10, "day": D, "ChargeCategory": "Credit", "tags": {"team": "ml-research"}},
    # 6: zero cost, no tags: left out everywhere it would be a ratio                                    0
    {"cost": 0, "day": D, "ResourceId": "r6"},
    # 7: untagged GPU (AI): everything missing, model required here                                   +40
    {"cost": 40, "day": D, "ResourceId": "gpu-7", "SubAccountId": "333", "SubAccountName": "sandbox",
     "x_AiWorkload": "Accelerated compute", "x_InstanceType": "p4d.24xlarge"},
    # 8: managed AI, all valid, unicode values                                                        +60
    {"cost": 60, "day": D, "ResourceId": "r8", "SubAccountId": "111", "SubAccountName": "research",
     "x_AiWorkload": "Managed AI service", "ServiceName": "Amazon Bedrock",
     "tags": {"team": "ml-research", "env": "prod", "project": "chat", "owner": "b@x.com",
              "model": "clé-modèle-β"}},
]
POSITIVE_TOTAL = 300.0  # 100 + 50 + 30 + 20 + 40 + 60


@pytest.fixture(scope="module")
def audit():
    con = focus_rows(ROWS)
    a = TagAudit(con, POLICY)
    yield a
    con.close()


def _cov(df, key):
    row = df[df["key"] == key].iloc[0]
    return row["covered_cost"], row["total_cost"], row["coverage"], row["band"]


def test_maturity_bands_boundaries():
    assert maturity_band(69.99) == "pre-crawl"
    assert maturity_band(70.0) == "crawl"
    assert maturity_band(84.99) == "crawl"
    assert maturity_band(85.0) == "walk"
    assert maturity_band(89.99) == "walk"
    assert maturity_band(90.0) == "run"  # every band is reached at or above its threshold
    assert maturity_band(None) == "n/a"


def test_maturity_bands_are_the_kits_configurable_defaults():
    """The bands are not a FinOps Foundation publication: they are the kit's defaults, labelled so, and a team sets
    its own in tag_policy.maturity_bands (before, the key was rejected and the bands were fixed in code)."""
    con = focus_rows(ROWS)
    try:
        default = TagAudit(con, POLICY)
        assert _cov(default.coverage(), "env")[3] == "crawl"  # 80% of dollars
        assert "kit's defaults" in default.policy.maturity_bands.describe()
        own = TagAudit(con, POLICY | {"maturity_bands": {"crawl": 50, "walk": 75, "run": 95}})
        cov = own.coverage()
        assert _cov(cov, "env")[3] == "walk" and _cov(cov, "team")[3] == "walk"  # 80%, 86.7%
        assert _cov(cov, "owner")[3] == "crawl"  # 53.3%
        assert own.policy.maturity_bands.describe() == "crawl ≥ 50%, walk ≥ 75%, run ≥ 95% (tag_policy.maturity_bands)"
    finally:
        con.close()
    with pytest.raises(ConfigError, match=r"tag_policy\.maturity_bands\.run: bands must not decrease"):
        load_policy(POLICY | {"maturity_bands": {"walk": 92}})
    with pytest.raises(ConfigError, match=r"tag_policy\.maturity_bands\.walk: expected a percentage"):
        load_policy(POLICY | {"maturity_bands": {"walk": "high"}})
    with pytest.raises(ConfigError, match=r"tag_policy\.maturity_bands\.sprint: unknown setting"):
        load_policy(POLICY | {"maturity_bands": {"sprint": 99}})


def test_coverage_cost_weighted(audit):
    df = audit.coverage()
    # team: rows 1, 2 (alias), 3 (case variant), 4 (value variant), 8 = 260 of 300
    assert _cov(df, "team") == pytest.approx((260.0, 300.0, 260 / 3, "walk"))
    # env: 1, 2 (Production -> prod), 3, 8 = 240; row 4 invalid, row 7 missing
    assert _cov(df, "env") == pytest.approx((240.0, 300.0, 80.0, "crawl"))
    # project: 1, 2, 8 = 210; row 3 empty, row 4 only has the typo 'projct'
    assert _cov(df, "project") == pytest.approx((210.0, 300.0, 70.0, "crawl"))
    assert _cov(df, "owner") == pytest.approx((160.0, 300.0, 160 / 3, "pre-crawl"))
    # model is required on AI spend only: rows 7 and 8
    assert _cov(df, "model") == pytest.approx((60.0, 100.0, 60.0, "pre-crawl"))
    # every applicable key valid: rows 1 and 8
    assert _cov(df, ALL_REQUIRED) == pytest.approx((160.0, 300.0, 160 / 3, "pre-crawl"))
    assert list(df["key"]) == ["team", "env", "project", "owner", "model", ALL_REQUIRED]


def test_coverage_by_account_and_ai(audit):
    df = audit.coverage("account")
    search = df[df["account"] == "search"]
    # account search: rows 3 (30) and 4 (20); env valid only on row 3
    assert _cov(search, "env") == pytest.approx((30.0, 50.0, 60.0, "pre-crawl"))
    assert _cov(search, "team") == pytest.approx((50.0, 50.0, 100.0, "run"))
    ai = audit.coverage(ai_only=True)
    assert _cov(ai, "team") == pytest.approx((60.0, 100.0, 60.0, "pre-crawl"))
    month = audit.coverage("month")
    assert set(month["month"].astype(str)) == {"2026-01-01"}


def test_key_map_detects_aliases_variants_and_typos(audit):
    km = audit.key_map().set_index("raw_key")
    assert km.loc["team", "key_match"] == "canonical"
    assert km.loc["Team", "key_match"] == "alias"
    assert (km.loc["TEAM", "key_match"], km.loc["TEAM", "policy_key"]) == ("variant", "team")
    assert (km.loc["Env", "key_match"], km.loc["Env", "policy_key"]) == ("variant", "env")
    assert (km.loc["projct", "key_match"], km.loc["projct", "policy_key"]) == ("near-duplicate", "project")
    assert not km.loc["projct", "counted"]
    assert km.loc["cost_center", "key_match"] == "not in policy"
    assert km.loc["Env", "cost"] == pytest.approx(50.0)


def test_value_consolidation(audit):
    vm = audit.value_map("env").set_index("raw_value")
    assert (vm.loc["Production", "value"], vm.loc["Production", "value_match"]) == ("prod", "alias")
    assert vm.loc["staging-eu", "status"] == "invalid"
    tv = audit.value_map("team").set_index("raw_value")
    # 'Search' (20) folds into the spelling with more dollars, 'search' (30)
    assert (tv.loc["Search", "value"], tv.loc["Search", "value_match"]) == ("search", "variant")
    pv = audit.value_map("project").set_index("raw_value")
    assert pv.loc["", "status"] == "empty"
    mv = audit.value_map("model")
    assert list(mv["value"]) == ["clé-modèle-β"] and list(mv["status"]) == ["ok"]


def test_violations_ranked_by_dollars(audit):
    v = audit.violations()
    assert list(v["cost"]) == sorted(v["cost"], reverse=True)

    def cost(type_, key, raw_key=None):
        sel = v[(v["type"] == type_) & (v["key"].fillna("") == (key or ""))]
        if raw_key is not None:
            sel = sel[sel["raw_key"] == raw_key]
        assert len(sel) == 1, (type_, key, raw_key, sel)
        return sel.iloc[0]

    top = v.iloc[0]
    assert (top["type"], top["key"], top["cost"]) == ("missing key", "owner", pytest.approx(140.0))  # 50+30+20+40
    assert top["resources"] == 4 and top["accounts"] == 3
    assert cost("missing key", "team")["cost"] == pytest.approx(40.0)
    assert cost("missing key", "project")["cost"] == pytest.approx(60.0)  # row 4 (typo only) + row 7
    assert cost("empty value", "project")["cost"] == pytest.approx(30.0)
    inv = cost("invalid value", "env")
    assert inv["cost"] == pytest.approx(20.0) and inv["raw_value"] == "staging-eu"
    assert inv["top_resources"] == "r4" and inv["top_accounts"] == "search"
    assert cost("key variant", "team", "Team")["cost"] == pytest.approx(50.0)
    assert cost("key variant", "team", "TEAM")["cost"] == pytest.approx(30.0)
    assert cost("key variant", "env", "Env")["cost"] == pytest.approx(50.0)
    assert cost("key variant", "project", "projct")["cost"] == pytest.approx(20.0)
    # spellings of a key outside the policy: the one with fewer dollars is the one to rename
    cc = cost("key variant", None, "CostCenter")
    assert cc["cost"] == pytest.approx(50.0) and "cost_center" in cc["action"]
    assert cost("value variant", "env", "Env")["cost"] == pytest.approx(50.0)
    assert cost("value variant", "team", "team")["cost"] == pytest.approx(20.0)
    # the credit (row 5) and the zero row (6) never show up
    assert not v["top_resources"].fillna("").str.contains("r6").any()
    assert pytest.approx(100 * 140 / POSITIVE_TOTAL) == top["pct_of_spend"]


def test_export_violations_csv(audit, tmp_path):
    import csv

    path = tmp_path / "out" / "violations.csv"
    n = audit.export_violations(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert n == len(rows) > 0
    owner = [r for r in rows if r["type"] == "missing key" and r["key"] == "owner"]
    assert {r["resource_id"] for r in owner} == {"r2", "r3", "r4", "gpu-7"}
    assert sum(float(r["cost"]) for r in owner) == pytest.approx(140.0)
    assert owner[0]["cost"] == "50.000000000000"  # exact decimals, largest first


def test_top_values_with_untagged(audit):
    t = audit.top_values("team", top_n=1)
    assert list(t["value"]) == ["ml-research", OTHER, UNTAGGED]
    assert list(t["cost"]) == pytest.approx([210.0, 50.0, 40.0])  # 100+50+60, search 30+20, row 7
    assert list(t["share"]) == pytest.approx([70.0, 50 / 3, 40 / 3])
    e = audit.top_values("env", top_n=5).set_index("value")
    # invalid staging-eu (20) + missing (40) are untagged
    assert e.loc["prod", "cost"] == pytest.approx(210.0) and e.loc[UNTAGGED, "cost"] == pytest.approx(60.0)
    m = audit.top_values("model").set_index("value")  # AI spend only
    assert m.loc["clé-modèle-β", "cost"] == pytest.approx(60.0) and m.loc[UNTAGGED, "cost"] == pytest.approx(40.0)
    with pytest.raises(ConfigError, match="nope"):
        audit.top_values("nope")


def test_environments(audit):
    e = audit.environments().set_index("environment")
    assert e.loc["prod", "env_class"] == "production"
    assert e.loc["prod", "cost"] == pytest.approx(210.0) and e.loc["prod", "ai_cost"] == pytest.approx(60.0)
    assert e.loc["dev", "env_class"] == "non-production" and e.loc["dev", "cost"] == pytest.approx(30.0)
    # untagged is net: 20 (invalid env) - 10 (credit) + 0 + 40
    assert e.loc[UNTAGGED, "cost"] == pytest.approx(50.0)
    # one daily GPU row without a time quantity: no hours (finops_kit.units never takes hours from the period)
    assert e.loc[UNTAGGED, "gpu_hours"] == 0


def test_scope_filters():
    con = focus_rows(ROWS + [
        {"cost": 1000, "day": "2026-02-03", "ProviderName": "Google Cloud", "tags": {"team": "x-team"}},
    ])
    a = TagAudit(con, POLICY, start="2026-02", end="2026-02")
    assert _cov(a.coverage(), "team")[:2] == pytest.approx((1000.0, 1000.0))
    b = TagAudit(con, POLICY, providers=["aws"])
    assert _cov(b.coverage(), "team")[1] == pytest.approx(POSITIVE_TOTAL)
    s = spend_summary(con, "provider", providers="AWS,Google Cloud").set_index("provider")
    assert s.loc["AWS", "cost"] == pytest.approx(290.0) and s.loc["AWS", "ai_cost"] == pytest.approx(100.0)
    with pytest.raises(ConfigError, match="billing_period_start"):
        TagAudit(con, POLICY, start="not a month")


def test_duplicate_keys_on_one_row_prefer_canonical():
    con = focus_rows([{"cost": 10, "day": D, "tags": {"env": "dev", "Env": "prod", "environment": "prod"}}])
    a = TagAudit(con, POLICY)
    assert a.top_values("env").set_index("value").loc["dev", "cost"] == pytest.approx(10.0)


def test_consolidation_off_counts_only_declared_names():
    con = focus_rows(ROWS)
    a = TagAudit(con, {**POLICY, "consolidate_variants": False})
    # TEAM (30) no longer counts, nor does 'Search' fold into 'search'; Search fails the lowercase pattern
    assert _cov(a.coverage(), "team")[0] == pytest.approx(210.0)


def test_policy_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"tag_policy\.keys\.env\.pattern: invalid regular expression"):
        load_policy({"keys": {"env": {"pattern": "("}}})
    with pytest.raises(ConfigError, match=r"tag_policy\.keys\.env\.value_aliases\.live: not one of the allowed"):
        load_policy({"keys": {"env": {"allowed": ["prod"], "value_aliases": {"live": ["x"]}}}})
    with pytest.raises(ConfigError, match=r"tag_policy\.keys\.team\.required: expected true, false or ai"):
        load_policy({"keys": {"team": {"required": "sometimes"}}})
    with pytest.raises(ConfigError, match=r"tag_policy\.keys: expected a mapping"):
        load_policy({"keys": {}})
    with pytest.raises(ConfigError, match="already used"):
        load_policy({"keys": {"team": {"aliases": ["owner"]}, "owner": {}}})


def test_repo_policy_loads():
    from pathlib import Path

    p = load_policy(Path(__file__).resolve().parents[1] / "finops.yaml")
    assert {"project", "team", "model", "env", "owner"} <= set(p.keys)
    assert p.keys["env"].value_aliases["production"] == "prod"
    assert (p.maturity_bands.crawl, p.maturity_bands.walk, p.maturity_bands.run) == (70, 85, 90)


def _hourly(rid: str, env: str, start: datetime, hours: int, keep=lambda t: True, cost: float = 2.0):
    out = []
    for h in range(hours):
        t = start + timedelta(hours=h)
        if not keep(t):
            continue
        out.append({"cost": cost, "ResourceId": rid, "ChargePeriodStart": t, "ChargePeriodEnd": t + timedelta(hours=1),
                    "BillingPeriodStart": datetime(2026, 1, 1), "BillingPeriodEnd": datetime(2026, 2, 1),
                    "ConsumedQuantity": 1, "ConsumedUnit": "Hours", "x_InstanceType": "g5.xlarge",
                    "x_AiWorkload": "Accelerated compute", "tags": {"env": env, "team": "ml-research"}})
    return out


def test_always_on_gpus_and_schedule_saving():
    mon = datetime(2026, 1, 5)  # a Monday; 8 days = 192 hours, 6 weekdays and a weekend

    def office(t):
        return t.isoweekday() <= 5 and 8 <= t.hour < 19

    rows = (_hourly("gpu-dev-247", "dev", mon, 192)
            + _hourly("gpu-dev-office", "dev", mon, 192, keep=office)
            + _hourly("gpu-prod-247", "prod", mon, 192))
    # daily rows of 24 hours for 10 days: also around the clock
    rows += [{"cost": 48, "ResourceId": "gpu-daily", "day": (mon + timedelta(days=d)).strftime("%Y-%m-%d"),
              "ConsumedQuantity": 24, "ConsumedUnit": "Hrs", "x_AiWorkload": "Accelerated compute",
              "x_InstanceType": "p4d.24xlarge", "tags": {"environment": "Dev"}} for d in range(10)]
    con = focus_rows(rows)
    a = TagAudit(con, POLICY)
    res = a.always_on_gpus(office_start=8, office_end=19, office_days=[1, 2, 3, 4, 5]).set_index("resource_id")
    assert "gpu-prod-247" not in res.index  # production is out of scope
    r = res.loc["gpu-dev-247"]
    # off-hours in 8 days: 6 weekdays x 13 h + 2 weekend days x 24 h = 126, all charged at $2
    assert bool(r["always_on"]) and r["off_hours"] == 126 and r["off_hours_charged"] == 126
    assert r["off_hours_cost"] == pytest.approx(252.0)
    assert r["monthly_saving"] == pytest.approx(252 / 192 * 730.5)
    assert r["monthly_cost"] == pytest.approx(384 / 192 * 730.5)
    assert not bool(res.loc["gpu-dev-office", "always_on"])
    assert res.loc["gpu-dev-office", "off_hours_charged"] == 0
    d = res.loc["gpu-daily"]
    # 10 days: 8 weekdays x 13 + 2 weekend days x 24 = 152 off-hours at $2 (48/24)
    assert bool(d["always_on"]) and d["off_hours"] == 152
    assert d["monthly_saving"] == pytest.approx(304 / 240 * 730.5)
    # a wider office window means fewer off-hours to save
    wide = a.always_on_gpus(office_start=0, office_end=24, office_days=[1, 2, 3, 4, 5, 6]).set_index("resource_id")
    assert wide.loc["gpu-dev-247", "off_hours"] == 24  # only the Sunday
    with pytest.raises(ConfigError, match="office hours"):
        a.always_on_gpus(office_start=19, office_end=8)
    # accelerator families
    fam = accelerator_families(con).set_index("family")
    assert fam.loc["p4d", "instance_hours"] == pytest.approx(240.0)
    assert fam.loc["g5", "cost"] == pytest.approx(2.0 * (192 + 66 + 192))


@pytest.mark.slow
def test_notebook_renders_on_official_focus_sample(shared, tmp_path):
    """The report runs top to bottom on a warehouse built from the official FOCUS 1.0 sample and shows numbers;
    when chromium is installed, the offline HTML also passes the browser checks (charts drawn, bound inputs live,
    no network request)."""
    import json
    from pathlib import Path

    import finops_kit as fk
    from finops_kit import report

    repo = Path(__file__).resolve().parents[1]
    wh = tmp_path / "focus.duckdb"
    fk.ingest([str(shared / "corpus/focus/sample-data/FOCUS-1.0/focus_sample.csv")], warehouse=str(wh))
    info = report.read_notebook_info(repo / "notebooks/tagging_audit.ipynb")
    jobs = report.plan([info], {}, {}, str(wh), str(repo / "finops.yaml"))
    (tmp_path / "out").mkdir()
    [res] = report.run_jobs(jobs, tmp_path / "out", timeout_cell=300, timeout_notebook=600)
    assert res.status == "ok", res.error
    executed = json.loads((tmp_path / "out" / res.ipynb).read_text(encoding="utf-8"))
    text = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert not any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))
    # the FOCUS sample's 'environment', 'application', 'business_unit' keys are policy aliases: real numbers
    assert "Total spend $14.98" in text
    assert "ties to the bill of the scope" in text
    html = (tmp_path / "out" / res.html).read_text(encoding="utf-8")
    assert "BrightPathMatrix" in html and "environment" in html

    from tests.browser_check import check_report, chromium_path

    if chromium_path() is None:
        pytest.skip("chromium not installed: browser checks skipped")
    rep = check_report(tmp_path / "out" / res.html)
    assert rep.charts >= 6 and rep.charts_with_marks >= 6 and rep.bound_inputs >= 3 and not rep.blocked


def test_always_on_gpu_spelled_in_two_cases_is_one_resource():
    """Azure spells one VM's ResourceId in two cases (days 1-7 and 8-14): one always-on row over the 14 days with
    the saving once -- was two rows of 7 days, each with the whole $1,804.89/month saving."""
    a = "/subscriptions/5e2c/resourceGroups/rg-vision-dev/providers/Microsoft.Compute/virtualMachines/dev-nc-a100-01"
    b = a.replace("resourceGroups/rg-vision-dev", "resourcegroups/RG-VISION-DEV")
    rows = [{"cost": "88.16", "ResourceId": a if d < 7 else b, "day": f"2026-10-{5 + d:02d}", "ProviderName": "Microsoft",
             "ConsumedQuantity": 24, "ConsumedUnit": "Hours", "x_AiWorkload": "Accelerated compute",
             "x_InstanceType": "Standard_NC24ads_A100_v4", "tags": {"env": "dev", "team": "vision"}}
            for d in range(14)]
    g = TagAudit(focus_rows(rows), POLICY).always_on_gpus()
    assert len(g) == 1 and g.iloc[0]["resource_id"] == a
    assert g.iloc[0]["span_days"] == 14 and bool(g.iloc[0]["always_on"])
    # 14 days: 10 weekdays x 13 off-hours + 4 weekend days x 24 = 226 off-hours at $88.16/24
    assert g.iloc[0]["monthly_saving"] == pytest.approx(226 * 88.16 / 24 / 336 * 730.5)


def test_violation_totals_count_each_charge_once_per_type(audit):
    """A charge with several keys misspelled is one charge: the sample's "key variant $8,938,481.84" (the lines of
    a type summed, a charge tagged Team/Project/Owner/Env counted four times) exceeded its whole spend of
    $5,209,232.89; the charges behind key variants cost $2,522,880.38."""
    t = audit.violation_totals().set_index("type")
    # key variants: row 2 (Team, Env, CostCenter: 3 findings, $50), row 3 (TEAM, environment: 2, $30), row 4
    # (projct: 1, $20) -- $100 of charges, not the $230 the lines add up to
    assert audit.violations().query("type == 'key variant'")["cost"].sum() == pytest.approx(230.0)
    kv = t.loc["key variant"]
    assert (kv["cost"], kv["charges"], kv["findings"]) == (pytest.approx(100.0), 3, 6)
    # missing key: owner on rows 2, 3, 4 and 7; team, env, project and model on row 7; project on row 4
    mk = t.loc["missing key"]
    assert (mk["cost"], mk["charges"]) == (pytest.approx(140.0), 4)
    assert (t["cost"] <= POSITIVE_TOTAL).all()


def test_resource_work_lists_a_resource_once_with_all_its_keys(audit):
    """The summary listed one resource twice in its top 3 (i-02e6e9067a46b92b2: env, then model, the same
    $244,457): the work list per resource names every key to fix on one line, its charges counted once."""
    w = audit.resource_work().set_index("resource_id")
    assert w.index.is_unique
    r2 = w.loc["r2"]
    assert r2["cost"] == pytest.approx(50.0) and r2["charges"] == 1
    assert r2["keys"] == "CostCenter, env, owner, team" and r2["n_keys"] == 4
    assert r2["types"] == "key variant, missing key, value variant"
    assert 'rename tag "Team" to "team"' in r2["actions"] and 'rename tag "Env" to "env"' in r2["actions"]
    assert w.loc["gpu-7", "cost"] == pytest.approx(40.0)
    assert list(w["cost"]) == sorted(w["cost"], reverse=True)


def test_violated_spend_counts_each_charge_once_and_matches_the_work_list(audit):
    """The per-type totals count a charge once per type (demo: $7.90M against $5.21M of spend) and nothing said
    what the violations concern altogether: the charges with any violation, each once, and their share."""
    cost, charges, share = audit.violated_spend()
    assert cost == pytest.approx(audit.resource_work()["cost"].sum())
    assert cost <= POSITIVE_TOTAL and cost < audit.violation_totals()["cost"].sum()
    assert share == pytest.approx(100 * cost / POSITIVE_TOTAL)
    assert charges == int(audit.resource_work()["charges"].sum())


def test_key_value_table_per_tag_set_equals_every_row_parsed():
    """The audit's (key, value) table is built per distinct tag set (speed, session 19); it holds exactly what
    parsing every row's Tags and joining them back to the rows gave: rows, positive dollars (NULL when none),
    types -- on a tag set shared by a credit, a zero and positive rows, a key repeated in one JSON object, JSON
    null, number and nested values, an empty object and no tags at all."""
    dup = '{"env": "dev", "env": "prod", "team": "a"}'
    rows = [
        {"cost": 10, "day": D, "Tags": dup}, {"cost": 2.5, "day": D, "Tags": dup},
        {"cost": -4, "day": D, "ChargeCategory": "Credit", "Tags": dup}, {"cost": 0, "day": D, "Tags": dup},
        {"cost": -1, "day": D, "ChargeCategory": "Credit", "tags": {"team": "b"}},
        {"cost": 3, "day": D, "Tags": '{"team": null, "n": 7, "o": {"x": [1, 2]}, "": "blank key"}'},
        {"cost": 1, "day": D, "Tags": "{}"}, {"cost": 5, "day": D},
        {"cost": 0.125, "day": D, "tags": {"team": "a", "env": "dev"}},
    ]
    con = focus_rows(rows)
    a = TagAudit(con, POLICY)
    old = a.sql("""SELECT r.raw_key, r.raw_value, count(*) AS rows,
                          sum(s.cost) FILTER (WHERE s.cost > 0) AS positive_cost
                   FROM @raw r JOIN @scope s USING (_rid) GROUP BY ALL ORDER BY ALL""")
    new = a.sql("SELECT raw_key, raw_value, rows, positive_cost FROM @kv ORDER BY ALL")
    assert new.types == old.types
    assert new.fetchall() == old.fetchall()
    assert ("env", "dev", 5, pytest.approx(12.625)) in [tuple(r) for r in new.fetchall()]
    # the attribution maps' input over the FOCUS table, as Attribution.build read it before
    old = con.sql("""SELECT j.key AS raw_key, j.value ->> '$' AS raw_value, count(*) AS rows,
                            sum(s.EffectiveCost) FILTER (WHERE s.EffectiveCost > 0) AS positive_cost
                     FROM focus s, json_each(s.Tags) j GROUP BY ALL ORDER BY ALL""")
    new = con.sql(f"SELECT * FROM ({kv_sql('focus')}) ORDER BY ALL")
    assert new.types == old.types
    assert new.fetchall() == old.fetchall()
    con.close()
