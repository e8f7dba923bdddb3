"""Attribution decided once (finops_kit.attribution) and read the same by every analysis: hand-built warehouses,
every expected number computed by hand in the comments."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from finops_kit import metrics as M
from finops_kit.errors import ConfigError
from finops_kit.forecast import dimension_sql
from finops_kit.scope import Scope, bind
from finops_kit.showback import load_allocation, showback
from finops_kit.tagging import TagAudit, load_policy
from finops_kit.testing import focus_rows

D = "2026-01-05"
CONFIG = {
    "tag_policy": {
        "environment_key": "env",
        "keys": {
            "project": {"aliases": ["Project", "project_name"], "pattern": "[A-Za-z0-9][A-Za-z0-9._-]{1,63}"},
            "team": {"aliases": ["Team", "team_name"], "pattern": "[A-Za-z][A-Za-z0-9._-]{1,63}"},
            "model": {"required": "ai", "aliases": ["Model"], "pattern": "[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}"},
            "env": {"allowed": ["prod", "dev"]},
        },
    },
    "allocation": {"key": "team", "method": "none",
                   "shared": {"tag_values": ["shared", "platform"], "charge_categories": ["Tax"]}},
}


def _cfg(**team):
    c = copy.deepcopy(CONFIG)
    c["tag_policy"]["keys"]["team"].update(team)
    return c


def _cov(con, sc, key="team"):
    with TagAudit(con, scope=sc) as a:
        row = a.coverage().set_index("key").loc[key]
    return row["covered_cost"], row["total_cost"]


def _owners(sb):
    return {o: Decimal(str(c)) for o, c in sb.table[["owner", "direct_cost"]].itertuples(index=False)}


# ------------------------------------------------------------------------------ 1. variants fold onto a valid one


def test_an_invalid_spelling_never_absorbs_a_valid_one():
    # 'ml ops' (a space: fails the pattern) has the most dollars; 'ml-ops' is valid: the valid spelling is the
    # canonical one, and the invalid variant folds onto it (as 'B' folds onto 'b' in test_showback)
    con = focus_rows([{"cost": 100, "day": D, "tags": {"team": "ml ops"}},
                      {"cost": 10, "day": D, "tags": {"team": "ml-ops"}},
                      {"cost": 50, "day": D, "tags": {"team": "nlp"}}])
    sc = bind(con, Scope(), CONFIG)
    assert sc.attribution.values["team"]["ml-ops"] == ("ml-ops", "ok")
    assert sc.attribution.values["team"]["ml ops"] == ("ml-ops", "ok")
    assert _cov(con, sc) == (160.0, 160.0)
    with TagAudit(con, scope=sc) as a:
        v = a.violations()
    assert not v["detail"].str.contains("ml-ops is not allowed").any()
    assert "team=ml ops means ml-ops" in set(v["detail"])
    assert _owners(showback(con, CONFIG, CONFIG, scope=sc)) == {"ml-ops": 110, "nlp": 50}
    assert M.totals(con, sc)["unallocated_cost"][0] == 0


def test_all_spellings_invalid_fold_onto_the_most_dollars():
    con = focus_rows([{"cost": 100, "day": D, "tags": {"team": "ml ops"}},
                      {"cost": 10, "day": D, "tags": {"team": "ML OPS"}}])
    sc = bind(con, Scope(), CONFIG)
    assert sc.attribution.values["team"]["ML OPS"] == ("ml ops", "invalid")
    assert _cov(con, sc) == (0.0, 110.0)


# ------------------------------------------------------------------------------ 2. an alias listed twice


@pytest.mark.parametrize("aliases", [["Team", "Team"], ["team", "Team"], ["Team", "team", "team_name", "Team"]])
def test_an_alias_listed_twice_counts_once(aliases):
    con = focus_rows([{"cost": 100, "day": D, "tags": {"team": "nlp"}},
                      {"cost": 100, "day": D, "tags": {"Team": "vision"}},
                      {"cost": 100, "day": D, "tags": {"env": "prod"}}])
    cfg = _cfg(aliases=aliases)
    sc = bind(con, Scope(), cfg)
    assert _cov(con, sc) == (200.0, 300.0)
    with TagAudit(con, scope=sc) as a:
        km = a.key_map()
        v = a.violations()
    assert sorted(km["raw_key"]) == ["Team", "env", "team"]
    assert km.set_index("raw_key").loc["team", "key_match"] == "canonical"
    assert not v["detail"].eq('"team" is an alias of "team"').any()
    assert v.set_index("detail").loc['"Team" is an alias of "team"', "cost"] == 100
    assert load_policy(cfg).keys["team"].aliases.count("Team") == 1
    assert "team" not in load_policy(cfg).keys["team"].aliases


# ------------------------------------------------------------------------------ 3. project labels stay separate


def test_a_project_label_is_not_a_spelling_of_a_resource_tag():
    # GCP: the project's label 'name' is stored as 'project:name'; 'project:name' ~ alias 'project_name' once ':'
    # and '_' are dropped, but a label of the project is not the resource's project tag (README, GCP notes)
    con = focus_rows([{"cost": 100, "day": D, "ProviderName": "Google Cloud",
                       "tags": {"team": "nlp", "project:name": "acme-ml-prod", "project:team": "vision"}}])
    sc = bind(con, Scope(), CONFIG)
    attr = sc.attribution
    assert "project" not in attr.raw_keys
    assert con.sql(f"SELECT {attr.label_sql('project')} FROM {sc.rows_sql()}").fetchall() == [("(untagged)",)]
    with TagAudit(con, scope=sc) as a:
        km = a.key_map().set_index("raw_key")
        assert km.loc["project:name", "key_match"] == "not in policy"
        assert km.loc["project:team", "key_match"] == "not in policy"
        assert _cov(con, sc, "project") == (0.0, 100.0)
    # listed as an alias, the project label counts (README: add project:team as an alias)
    cfg = copy.deepcopy(CONFIG)
    cfg["tag_policy"]["keys"]["project"]["aliases"].append("project:name")
    sc2 = bind(con, Scope(), cfg)
    assert sc2.attribution.raw_keys["project"] == ["project:name"]


# ------------------------------------------------------------------------------ 4. one spelling in every scope


def test_a_team_is_spelled_the_same_whatever_the_providers_of_the_scope():
    con = focus_rows([{"cost": 100, "day": D, "ProviderName": "AWS", "tags": {"team": "nlp"}},
                      {"cost": 10, "day": D, "ProviderName": "Microsoft", "tags": {"team": "NLP"}}])
    for prov in ([], ["Microsoft"]):
        sc = bind(con, Scope.parse({"providers": prov}), CONFIG)
        got = con.sql(f"SELECT ProviderName, {dimension_sql('team', sc)} FROM {sc.rows_sql()} ORDER BY 1").fetchall()
        assert ("Microsoft", "nlp") in got, prov


def test_a_team_is_spelled_the_same_whatever_the_currency_of_the_scope():
    con = focus_rows([{"cost": 100, "day": D, "tags": {"team": "nlp"}},
                      {"cost": 10, "day": D, "tags": {"team": "NLP"}},
                      {"cost": 5, "day": D, "BillingCurrency": "EUR", "tags": {"team": "NLP"}},
                      {"cost": 1, "day": D, "BillingCurrency": "EUR", "tags": {"team": "nlp"}}])
    for cur, total in (("USD", 110), ("EUR", 6)):
        sc = bind(con, Scope.parse({"currency": cur}), CONFIG)
        assert _owners(showback(con, CONFIG, CONFIG, scope=sc)) == {"nlp": total}, cur


# ------------------------------------------------------------------------------ 5. a key required on AI spend only


def test_showback_by_an_ai_key_attributes_non_ai_rows_like_owner_sql():
    con = focus_rows([{"cost": 100, "day": D, "tags": {"team": "nlp", "model": "llama-3-8b"}},
                      {"cost": 50, "day": D, "x_AiWorkload": "Managed AI service",
                       "tags": {"team": "nlp", "model": "gpt-5"}},
                      {"cost": 10, "day": D, "tags": {"team": "vision"}}])
    sc = bind(con, Scope(), CONFIG)
    sb = showback(con, CONFIG, CONFIG, key="model", scope=sc)
    assert _owners(sb) == {"llama-3-8b": 100, "gpt-5": 50, "(untagged)": 10}
    dims = dict(con.sql(f"SELECT {dimension_sql('model', sc)}, sum(EffectiveCost) FROM {sc.rows_sql()} "
                        "GROUP BY 1").fetchall())
    assert dims == {"llama-3-8b": 100, "gpt-5": 50, "(untagged)": 10}
    # `required: ai` still decides where a missing model is a violation and what coverage counts
    with TagAudit(con, scope=sc) as a:
        assert _cov(con, sc, "model") == (50.0, 50.0)
        v = a.violations()
        assert not ((v["key"] == "model") & (v["type"] == "missing key")).any()
        assert a.top_values("model")["value"].tolist() == ["gpt-5"]


# ------------------------------------------------------------------------------ 6. always-on GPUs: owner_sql labels


def test_always_on_gpus_name_owners_like_owner_sql():
    from finops_kit import summary as sm

    rows = []
    for rid, tags in (("i-platform", {"team": "platform", "env": "dev"}), ("i-untagged", {"env": "dev"}),
                      ("i-nlp", {"team": "nlp", "env": "dev"})):
        for d in range(10):
            rows.append({"cost": 48, "day": f"2026-01-{d + 5:02d}", "ResourceId": rid, "ConsumedQuantity": 24,
                         "ConsumedUnit": "Hours", "x_InstanceType": "p4d.24xlarge",
                         "x_AiWorkload": "Accelerated compute", "tags": tags})
    # i-mixed: its GPU hours carry no team, its $1,000 disk does: the owner is named from all its charges in scope
    rows += [{**r, "ResourceId": "i-mixed"} for r in rows if r["ResourceId"] == "i-untagged"]
    rows.append({"cost": 1000, "day": "2026-01-05", "ResourceId": "i-mixed", "ServiceCategory": "Storage",
                 "tags": {"team": "vision", "env": "dev"}})
    con = focus_rows(rows)
    sc = bind(con, Scope(), CONFIG)
    with TagAudit(con, scope=sc) as a:
        g = a.always_on_gpus(include_untagged=True)
    got = dict(zip(g["resource_id"], g["team"], strict=True))
    assert got == {"i-platform": "(shared)", "i-untagged": "(untagged)", "i-nlp": "nlp", "i-mixed": "vision"}
    assert got == sm.resource_owners(con, sc, list(g["resource_id"]))


# ------------------------------------------------------------------------------ 7. bad config: one-line errors


@pytest.mark.parametrize("pattern", ["(?!test)[a-z]+", r"([a-z])\1?[a-z]+", "(", "[a-z"])
def test_a_pattern_duckdb_cannot_run_is_a_config_error(pattern):
    with pytest.raises(ConfigError, match=r"tag_policy\.keys\.team\.pattern: ") as e:
        load_policy(_cfg(pattern=pattern))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("pct", [float("nan"), float("inf"), "nan", -1, 101])
def test_a_fixed_percentage_must_be_a_finite_percentage(pct):
    with pytest.raises(ConfigError, match=r"allocation\.fixed\.vision: expected a finite percentage") as e:
        load_allocation({"fixed": {"vision": pct}})
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("env", [["env"], {"env": 1}, 5])
def test_environment_key_must_be_a_key_name(env):
    c = copy.deepcopy(CONFIG)
    c["tag_policy"]["environment_key"] = env
    with pytest.raises(ConfigError, match=r"tag_policy\.environment_key: expected .*key"):
        load_policy(c)


# ------------------------------------------------------------------------------ 8. a key repeated in one JSON


def test_a_repeated_json_key_is_read_the_same_everywhere():
    con = focus_rows([{"cost": 7, "day": D, "tags": {"team": "x"}, "Tags": '{"team":"dupA","team":"dupB"}'},
                      {"cost": 3, "day": D, "tags": {"team": "x"}, "Tags": '{"team":"dupB","team":"dupA"}'}])
    sc = bind(con, Scope(), CONFIG)
    by_sql = con.sql(f"SELECT {sc.attribution.owner_sql()} FROM {sc.rows_sql()} "
                     "ORDER BY EffectiveCost DESC").fetchall()
    with TagAudit(con, scope=sc) as a:
        wide = a.sql("SELECT team FROM @wide ORDER BY cost DESC").fetchall()
    assert by_sql == wide == [("dupA",), ("dupB",)]
    assert _owners(showback(con, CONFIG, CONFIG, scope=sc)) == {"dupA": 7, "dupB": 3}
