"""``finops-kit guard``: Terraform/OpenTofu plan checks for AI cost, with a priced change estimate.

Fixtures: ``tests/fixtures/guard/real_terraform/plan.json`` was written by Terraform 1.11 itself (built-in
``terraform_data`` only: the providers could not be downloaded here); ``aws_plan.json``, ``gcp_plan.json`` and
``azure_plan.json`` are hand-written in the same format (``make_fixtures.py`` wrote them), one resource per guarded
type and edge case. Prices are checked against numbers computed by hand from data/ec2_ondemand_prices.csv and the
bundled Spot Advisor feed (savings s: g5.xlarge 59%, p5.48xlarge 52% in us-east-1).
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from finops_kit import guard
from finops_kit.cli import main
from finops_kit.errors import ConfigError, InputError

from .conftest import FIXTURES, REPO

G = FIXTURES / "guard"
H = Decimal("730.5")  # hours per month (tagging.HOURS_PER_MONTH)

#: terraform_data mapped like an AWS instance: lets the guard read Terraform's own plan output.
TF_DATA_TYPES = """resource_type,provider,kind,ai,pool,instance_type,count,max_count,accelerators,accelerator_type,\
accelerator_count,spot,tags,tags_format,idle_shutdown,provisioned,launch_template,note
terraform_data,AWS,instance,accelerators,,input.instance_type,input.count,,,,,input.spot=true,input.tags,map,,,,test
"""


def _config(**guardrails) -> dict:
    """The repo's finops.yaml (its tag_policy and allocation: the rules the bill is judged by) + guardrails."""
    cfg = yaml.safe_load((REPO / "finops.yaml").read_text())
    cfg["guardrails"] = guardrails
    return cfg


def _write_config(tmp_path: Path, **guardrails) -> str:
    p = tmp_path / "finops.yaml"
    p.write_text(yaml.safe_dump(_config(**guardrails)))
    return str(p)


def _check(result: guard.GuardResult, rule: str, subject: str) -> guard.Check:
    hits = [c for c in result.checks if c.rule == rule and c.subject == subject]
    assert len(hits) == 1, [(c.rule, c.subject, c.status) for c in result.checks]
    return hits[0]


def _res(result: guard.GuardResult, address: str) -> guard.Resource:
    return next(r for r in result.resources if r.address == address)


def _plan(tmp_path: Path, *changes: dict, config: dict | None = None, name: str = "plan.json") -> str:
    doc = {"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": list(changes),
           "configuration": config or {"provider_config": {"aws": {"name": "aws", "expressions": {
               "region": {"constant_value": "us-east-1"}}}}, "root_module": {}}}
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def _rc(address: str, type_: str, after: dict | None, before: dict | None = None, actions: list[str] | None = None,
        unknown: dict | None = None) -> dict:
    name = address.split(".")[-1].split("[")[0]
    acts = actions or (["create"] if before is None else ["delete"] if after is None else ["update"])
    return {"address": address, "mode": "managed", "type": type_, "name": name,
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": acts, "before": before, "after": after, "after_unknown": unknown or {}}}


TAGS = {"team": "nlp", "env": "prod", "project": "chat", "owner": "ana@example.com", "model": "llama"}


# ------------------------------------------------------------------------------------ real Terraform output
def test_real_terraform_plan_actions_modules_unknowns_and_prices(tmp_path):
    types = tmp_path / "types.csv"
    types.write_text(TF_DATA_TYPES)
    res = guard.evaluate(G / "real_terraform" / "plan.json",
                         _config(default_region="us-east-1", max_accelerators={"per_team": {"default": 16}}),
                         types_path=str(types))
    actions = {r.address: r.change.action for r in res.resources}
    assert actions == {
        "terraform_data.fresh": "create", "terraform_data.gone": "delete", "terraform_data.keep": "no-op",
        "terraform_data.seed": "create", "terraform_data.swap": "replace",
        'module.team["nlp"].terraform_data.node[0]': "no-op", 'module.team["nlp"].terraform_data.node[1]': "no-op",
        'module.team["vision"].terraform_data.node[0]': "create",
        'module.team["vision"].terraform_data.node[1]': "create"}
    # delete lowers the cost by the p4d price; replace is before p4d, after p5 (hand-computed)
    assert _res(res, "terraform_data.gone").delta == -(Decimal("21.96") * H).quantize(Decimal("0.01"))
    swap = _res(res, "terraform_data.swap")
    assert swap.cost_before.monthly == Decimal("16041.78") and swap.cost_after.monthly == Decimal("40206.72")
    assert _res(res, "terraform_data.fresh").cost_after.monthly == (2 * Decimal("5.672") * H).quantize(Decimal("0.01"))
    # input.tags.project is unknown until apply (it references terraform_data.seed.id): reported, not guessed
    fresh = _check(res, "required_tags", "terraform_data.fresh")
    assert "project known after apply" in fresh.message and "project missing" not in fresh.message
    # Environment=production on swap is prod through tag_policy's aliases, as on the bill
    assert res.resources[[r.address for r in res.resources].index("terraform_data.swap")].attrs["after"]["env"] \
        == ("ok", "prod", None)
    # team vision: fresh (2 x 4 A10G) + two new p4d nodes (8 + 8) = 24 > 16; nlp keeps its no-op nodes only
    team = _check(res, "max_accelerators_per_team", "team=vision")
    assert team.status == "violation" and "24 accelerators" in team.message
    assert not [c for c in res.checks if c.subject == "team=nlp"]
    assert res.totals()["delta"] == Decimal("8286.79") - Decimal("16041.78") + (Decimal("40206.72") -
                                                                               Decimal("16041.78")) + 2 * Decimal("16041.78")


# ------------------------------------------------------------------------------------------------ AWS
@pytest.fixture(scope="module")
def aws_result() -> guard.GuardResult:
    return guard.evaluate(G / "aws_plan.json", _config(
        max_accelerators={"per_change": 64, "per_team": {"default": 48, "vision": 4}, "per_user": 40},
        allowed_accelerators={"prod": ["A100", "H100", "A10G"], "staging": ["A10G", "H100"],
                              "default": ["T4", "A10G", "L4"]},
        provisioned_throughput={"approval_tag": "finops-approval"}, max_monthly_increase=20000))


def test_aws_prices_against_hand_computed_numbers(aws_result):
    r = aws_result
    # on-demand p4d.24xlarge: 21.96 $/h x 730.5 h
    assert _res(r, "aws_instance.trainer").cost_after.monthly == Decimal("16041.78")
    # for_each spot instances in a module: 1.006 x (1 - 59%) x 730.5 = 301.30 each
    for k in ("a", "b"):
        c = _res(r, f'module.inference.aws_instance.api["{k}"]').cost_after
        assert c.monthly == Decimal("301.30") and "59% spot savings" in c.basis
    # ASG from a launch template created in the same plan (id unknown: found through the configuration reference):
    # desired 2 x g5.12xlarge 5.672 = 8286.79; accelerators at max_size 4 x 4 GPUs
    asg = _res(r, "aws_autoscaling_group.gpu")
    assert asg.cost_after.monthly == Decimal("8286.79") and asg.after.accelerators() == 16
    assert asg.after.tags["project"] == "ranker"  # the template's instance tags reach the instances
    assert _res(r, "aws_launch_template.gpu").cost_after.monthly == 0
    # EKS node group scaled 1 -> 3 spot p5.48xlarge: 55.04 x 48% x 730.5 per node
    eks = _res(r, "aws_eks_node_group.train")
    assert eks.cost_before.monthly == Decimal("19299.23") and eks.cost_after.monthly == Decimal("57897.68")
    # deleting p3.2xlarge (region from its availability zone) lowers the cost by 3.06 x 730.5
    assert _res(r, "aws_instance.legacy").delta == Decimal("-2235.33")
    t = r.totals()
    assert t["delta"] == Decimal("16041.78") + 2 * Decimal("301.30") + Decimal("8286.79") + \
        Decimal("57897.68") - Decimal("19299.23") - Decimal("2235.33")
    # never silently $0: SageMaker, Bedrock and the unknown type are listed as excluded, with why
    excluded = dict(t["excluded"])
    assert set(excluded) == {"aws_sagemaker_endpoint_configuration.llm", "aws_sagemaker_notebook_instance.sandbox",
                             "aws_bedrock_provisioned_model_throughput.claude", "aws_instance.dynamic"}
    assert "known after apply: instance_type" in excluded["aws_instance.dynamic"]
    assert "ec2_ondemand_prices.csv" in r.price_source and "Spot Advisor" in r.price_source
    assert r.ignored == 1  # aws_s3_bucket


def test_aws_rules(aws_result):
    r = aws_result
    st = {(c.rule, c.subject): c.status for c in r.checks}
    assert st[("non_production", "aws_instance.trainer")] == "violation"
    assert ("non_production", 'module.inference.aws_instance.api["a"]') not in st  # production: not applied
    assert st[("non_production", "aws_eks_node_group.train")] == "pass"          # staging, but spot
    assert st[("non_production", "aws_autoscaling_group.gpu")] == "violation"    # staging, on demand
    assert st[("non_production", "aws_sagemaker_notebook_instance.sandbox")] == "violation"  # no lifecycle config
    assert st[("allowed_accelerators", "aws_instance.trainer")] == "violation"   # A100 in dev
    assert st[("allowed_accelerators", "aws_eks_node_group.train")] == "pass"    # H100 in staging
    assert st[("allowed_accelerators", "aws_instance.dynamic")] == "unknown"
    assert st[("max_accelerators_per_team", "team=vision")] == "violation"
    assert st[("max_accelerators_per_team", "team=recsys")] == "pass"            # ASG: 16 <= 48
    nlp = _check(r, "max_accelerators_per_team", "team=nlp")                      # 44 <= 48, but dynamic's
    assert nlp.status == "unknown" and "aws_instance.dynamic" in nlp.message      # type is unknown
    assert st[("max_accelerators_per_user", "owner=ana@example.com")] == "violation"  # 44 > 40
    assert st[("max_accelerators_per_change", "plan")] == "unknown"               # dynamic's count unknown
    assert st[("provisioned_throughput", "aws_bedrock_provisioned_model_throughput.claude")] == "violation"
    assert st[("max_monthly_increase", "plan")] == "violation"
    assert st[("required_tags", "aws_instance.trainer")] == "pass"  # provider default_tags are in tags_all
    assert r.exit_code == 1


# ------------------------------------------------------------------------------------------- rule by rule
def _instance(address: str, itype: str, tags: dict, spot: bool = False) -> dict:
    return _rc(address, "aws_instance", {"instance_type": itype, "tags_all": tags, "instance_market_options":
                                         [{"market_type": "spot"}] if spot else []})


def test_required_tags_judged_like_the_bill(tmp_path):
    plan = _plan(tmp_path,
                 _instance("aws_instance.ok", "g5.xlarge", {**TAGS, "Team": None} | {"Team": "nlp"}),
                 _instance("aws_instance.variant", "g5.xlarge", {**{k: v for k, v in TAGS.items() if k != "env"},
                                                                 "ENV": "Production"}),
                 _instance("aws_instance.typo", "g5.xlarge", {**{k: v for k, v in TAGS.items() if k != "env"},
                                                              "enviroment": "prod"}),
                 _instance("aws_instance.badval", "g5.xlarge", {**TAGS, "env": "qa-lab"}),
                 _instance("aws_instance.cpu", "t3.large", {k: v for k, v in TAGS.items() if k != "model"}))
    r = guard.evaluate(plan, _config())
    assert _check(r, "required_tags", "aws_instance.ok").status == "pass"
    assert _check(r, "required_tags", "aws_instance.variant").status == "pass"   # alias + value alias
    typo = _check(r, "required_tags", "aws_instance.typo")
    assert typo.status == "violation" and "'enviroment', a near-duplicate" in typo.message
    bad = _check(r, "required_tags", "aws_instance.badval")
    assert bad.status == "violation" and "env='qa-lab' is not one of prod, staging, dev, test, sandbox" in bad.message
    assert _check(r, "required_tags", "aws_instance.cpu").status == "pass"       # model: only on AI spend
    off = guard.evaluate(plan, _config(required_tags=False))
    assert not [c for c in off.checks if c.rule == "required_tags"]


def test_accelerator_limits_pass_and_fail(tmp_path):
    plan = _plan(tmp_path, _instance("aws_instance.a", "p4d.24xlarge", TAGS),
                 _instance("aws_instance.b", "g5.xlarge", {**TAGS, "team": "vision", "owner": "bo@example.com"}))
    ok = guard.evaluate(plan, _config(max_accelerators={"per_change": 9, "per_team": {"nlp": 8, "default": 1},
                                                        "per_user": 8}))
    assert {c.status for c in ok.checks if c.rule.startswith("max_acc")} == {"pass"} and ok.exit_code == 0
    bad = guard.evaluate(plan, _config(max_accelerators={"per_change": 8, "per_team": 7, "per_user": 0}))
    assert _check(bad, "max_accelerators_per_change", "plan").status == "violation"
    team = _check(bad, "max_accelerators_per_team", "team=nlp")
    assert team.status == "violation" and team.impact == Decimal("16041.78")
    assert _check(bad, "max_accelerators_per_team", "team=vision").status == "pass"
    assert _check(bad, "max_accelerators_per_user", "owner=bo@example.com").status == "violation"
    assert bad.exit_code == 1


def test_allowed_families_and_non_production(tmp_path):
    dev = {**TAGS, "env": "Development"}
    plan = _plan(tmp_path, _instance("aws_instance.h100", "p5.48xlarge", dev),
                 _instance("aws_instance.a10g", "g5.xlarge", dev, spot=True),
                 _instance("aws_instance.p4d_family", "p4d.24xlarge", TAGS))
    r = guard.evaluate(plan, _config(allowed_accelerators={"prod": ["p4d"], "dev": ["A10G", "t4"]}))
    h = _check(r, "allowed_accelerators", "aws_instance.h100")
    assert h.status == "violation" and "NVIDIA H100" in h.message and "env=dev" in h.message
    assert _check(r, "allowed_accelerators", "aws_instance.a10g").status == "pass"
    assert _check(r, "allowed_accelerators", "aws_instance.p4d_family").status == "pass"  # by instance family
    assert _check(r, "non_production", "aws_instance.h100").status == "violation"
    assert _check(r, "non_production", "aws_instance.a10g").status == "pass"      # spot
    assert not [c for c in r.checks if c.rule == "non_production" and c.subject == "aws_instance.p4d_family"]
    off = guard.evaluate(plan, _config(non_production="off"))
    assert not [c for c in off.checks if c.rule == "non_production"]


def test_provisioned_throughput_needs_approval(tmp_path):
    bedrock = {"model_arn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2", "model_units": 1,
               "commitment_duration": "OneMonth", "tags_all": TAGS}
    plan = _plan(tmp_path, _rc("aws_bedrock_provisioned_model_throughput.a", "aws_bedrock_provisioned_model_throughput",
                               bedrock),
                 _rc("aws_bedrock_provisioned_model_throughput.b", "aws_bedrock_provisioned_model_throughput",
                     {**bedrock, "tags_all": {**TAGS, "finops-approval": "FIN-123"}}))
    r = guard.evaluate(plan, _config(provisioned_throughput={"approval_tag": "finops-approval"}))
    assert _check(r, "provisioned_throughput", "aws_bedrock_provisioned_model_throughput.a").status == "violation"
    assert _check(r, "provisioned_throughput", "aws_bedrock_provisioned_model_throughput.b").status == "pass"
    listed = guard.evaluate(plan, _config(provisioned_throughput={
        "approval_tag": "finops-approval", "approved_addresses": ["aws_bedrock_provisioned_model_throughput.*"]}))
    assert {c.status for c in listed.checks if c.rule == "provisioned_throughput"} == {"pass"}


def test_max_monthly_increase_and_unknowns(tmp_path):
    plan = _plan(tmp_path, _instance("aws_instance.a", "g5.xlarge", TAGS))
    assert _check(guard.evaluate(plan, _config(max_monthly_increase=734.88)), "max_monthly_increase",
                  "plan").status == "pass"   # 1.006 x 730.5 = 734.883 -> 734.88
    assert _check(guard.evaluate(plan, _config(max_monthly_increase=734)), "max_monthly_increase",
                  "plan").status == "violation"
    unknown = _plan(tmp_path, _rc("aws_instance.u", "aws_instance", {"tags_all": TAGS},
                                  unknown={"instance_type": True}), name="u.json")
    r = guard.evaluate(unknown, _config(max_monthly_increase=100))
    c = _check(r, "max_monthly_increase", "plan")
    assert c.status == "unknown" and "aws_instance.u" in c.message and r.exit_code == 0
    assert guard.evaluate(unknown, _config(max_monthly_increase=100, fail_on_unknown=True)).exit_code == 1


def test_launch_template_found_by_name(tmp_path):
    plan = _plan(tmp_path,
                 _rc("aws_launch_template.lt", "aws_launch_template",
                     {"name": "gpu-lt", "instance_type": "p4d.24xlarge",
                      "instance_market_options": [{"market_type": "spot"}]}, actions=["no-op"],
                     before={"name": "gpu-lt", "instance_type": "p4d.24xlarge",
                             "instance_market_options": [{"market_type": "spot"}]}),
                 _rc("aws_autoscaling_group.g", "aws_autoscaling_group",
                     {"desired_capacity": None, "min_size": 1, "max_size": 2, "launch_template": [{"name": "gpu-lt"}],
                      "tag": [{"key": k, "value": v, "propagate_at_launch": True} for k, v in TAGS.items()]}))
    r = guard.evaluate(plan, _config())
    g = _res(r, "aws_autoscaling_group.g")
    # min_size when desired_capacity is not set; spot from the template: 21.96 x (1 - 67%) x 730.5
    assert g.cost_after.monthly == (Decimal("21.96") * Decimal("0.33") * H).quantize(Decimal("0.01"))
    assert g.after.accelerators() == 16 and _check(r, "required_tags", "aws_autoscaling_group.g").status == "pass"


# -------------------------------------------------------------------------------------------- GCP, Azure
def test_gcp_attached_and_built_in_accelerators_workbench_idle():
    r = guard.evaluate(G / "gcp_plan.json", _config(allowed_accelerators={"default": ["T4", "L4"]}))
    assert _res(r, "google_compute_instance.t4_dev").after.accelerators() == 2      # N1 + 2 attached T4
    assert _res(r, "google_compute_instance.a100_train").after.accelerators() == 8  # built into a2-highgpu-8g
    assert _res(r, "google_container_node_pool.l4").after.accelerators() == 6       # 1 L4 x max 6 nodes
    st = {(c.rule, c.subject): c.status for c in r.checks}
    assert st[("non_production", "google_compute_instance.t4_dev")] == "pass"       # preemptible / SPOT
    assert st[("non_production", "google_workbench_instance.ok")] == "pass"         # idle-timeout-seconds
    assert st[("non_production", "google_workbench_instance.always_on")] == "violation"
    assert st[("allowed_accelerators", "google_compute_instance.t4_dev")] == "pass"
    assert st[("allowed_accelerators", "google_compute_instance.a100_train")] == "violation"
    # GCP labels cannot hold '@': the owner pattern of tag_policy fails on the plan as it does on the bill
    assert "owner='bo_example_com'" in _check(r, "required_tags", "google_compute_instance.t4_dev").message
    assert all(c.monthly is None and c.status == "not priced" for c in
               (x.cost_after for x in r.resources))  # no GCP price table: listed, never $0


def test_azure_ptu_and_ml_instance():
    r = guard.evaluate(G / "azure_plan.json", _config(
        provisioned_throughput={"approved_addresses": ["azurerm_cognitive_deployment.gpt4o_ptu"]}))
    st = {(c.rule, c.subject): c.status for c in r.checks}
    assert st[("provisioned_throughput", "azurerm_cognitive_deployment.gpt4o_ptu")] == "pass"
    assert ("provisioned_throughput", "azurerm_cognitive_deployment.gpt4o_paygo") not in st  # GlobalStandard
    assert st[("non_production", "azurerm_kubernetes_cluster_node_pool.gpu")] == "pass"      # priority Spot
    assert st[("non_production", "azurerm_machine_learning_compute_instance.dev")] == "violation"
    assert _res(r, "azurerm_kubernetes_cluster_node_pool.gpu").cost_after.status == "unknown"  # node_count
    assert _res(r, "azurerm_kubernetes_cluster_node_pool.gpu").after.accelerators() == 3       # max_count 3 x 1
    assert not [c for c in r.checks if c.rule == "required_tags" and "cognitive" in c.subject]  # carries no tags
    unapproved = guard.evaluate(G / "azure_plan.json", _config(provisioned_throughput={"approval_tag": "approval"}))
    assert _check(unapproved, "provisioned_throughput", "azurerm_cognitive_deployment.gpt4o_ptu").status == "violation"


def test_type_table_covers_the_issue_and_is_consistent():
    types = guard.resource_types()
    for t in ("aws_instance", "aws_launch_template", "aws_autoscaling_group", "aws_eks_node_group",
              "aws_sagemaker_endpoint_configuration", "aws_sagemaker_notebook_instance",
              "aws_bedrock_provisioned_model_throughput", "google_compute_instance", "google_container_node_pool",
              "google_workbench_instance", "azurerm_linux_virtual_machine", "azurerm_kubernetes_cluster_node_pool",
              "azurerm_machine_learning_compute_instance", "azurerm_cognitive_deployment"):
        assert t in types and types[t].note
    fixtures = {rc["type"] for f in ("aws_plan.json", "gcp_plan.json", "azure_plan.json", "os_plan.json")
                for rc in json.loads((G / f).read_text())["resource_changes"]}
    assert set(types) <= fixtures  # a fixture per guarded type


# ----------------------------------------------------------------------------------------------- hostile
def _good_doc() -> dict:
    return json.loads((G / "aws_plan.json").read_text())


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"not json at all", "not valid JSON"),
    (b"PK\x03\x04binary", "binary plan file"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[1, 2]", "$: expected a JSON object"),
    (b'{"resource_changes": []}', "$.format_version: expected a plan JSON format version 1.x, got nothing"),
    (b'{"format_version": "2.0", "resource_changes": []}', "got '2.0'"),
    (b'{"format_version": "1.2", "values": {}}', "not a state file"),
    (b'{"format_version": "1.2", "resource_changes": {}}', "$.resource_changes: expected a list"),
    (b'{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "name": "b", '
     b'"change": {"actions": ["destroy"]}}]}', "$.resource_changes[0].change.actions: expected a list of"),
    (b'{"format_version": "1.2", "resource_changes": [{"type": "a", "name": "b", "change": {}}]}',
     "$.resource_changes[0].address: expected a non-empty string"),
    (b'{"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "name": "b", '
     b'"change": {"actions": ["create"], "after": "x"}}]}', "$.resource_changes[0].change.after: expected an object"),
    (b'{"format_version": NaN}', "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_hostile_plan_files_one_line_exit_2(tmp_path, capsys, content, expected):
    p = tmp_path / "plan.json"
    p.write_bytes(content)
    with pytest.raises(InputError) as exc:
        guard.read_plan(p)
    assert expected in str(exc.value) and str(p) in str(exc.value) and "\n" not in str(exc.value)
    assert main(["guard", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


@pytest.mark.parametrize("value, expected", [
    (10 ** 30, "expected a whole number 0..1,000,000"),
    (-1, "expected a whole number"),
    (2.5, "expected a whole number"),
    ("lots", "expected a whole number"),
    (1e308, "expected a whole number"),
])
def test_hostile_counts(tmp_path, value, expected):
    doc = _good_doc()
    eks = next(rc for rc in doc["resource_changes"] if rc["type"] == "aws_eks_node_group")
    eks["change"]["after"]["scaling_config"][0]["max_size"] = value
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(InputError) as exc:
        guard.evaluate(p, _config())
    assert "aws_eks_node_group.train" in str(exc.value) and expected in str(exc.value)
    assert "$.resource_changes[" in str(exc.value)


def test_missing_optional_fields_are_not_guessed(tmp_path):
    doc = _good_doc()
    for rc in doc["resource_changes"]:
        rc["change"].pop("after_unknown", None)
        rc.pop("module_address", None)
    doc.pop("configuration")
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(doc))
    r = guard.evaluate(p, _config())  # no provider block: the region is unknown, so nothing AWS is priced
    assert _res(r, "aws_instance.trainer").cost_after.status == "not priced"
    assert "region unknown" in _res(r, "aws_instance.trainer").cost_after.basis
    assert _res(r, "aws_instance.legacy").cost_before.monthly == Decimal("2235.33")  # its AZ names the region
    r2 = guard.evaluate(p, _config(default_region="us-east-1"))
    assert _res(r2, "aws_instance.trainer").cost_after.monthly == Decimal("16041.78")


@pytest.mark.parametrize("guardrails, expected", [
    ({"max_acelerators": {}}, "guardrails.max_acelerators: unknown setting"),
    ({"max_accelerators": {"per_teem": 3}}, "guardrails.max_accelerators.per_teem: unknown setting"),
    ({"max_accelerators": {"per_change": -1}}, "per_change: expected a whole number >= 0"),
    ({"max_accelerators": {"per_team": {"nlp": "eight"}}}, "per_team.nlp: expected a whole number"),
    ({"allowed_accelerators": {"dev": "T4"}}, "allowed_accelerators.dev: expected a list"),
    ({"non_production": "sometimes"}, "non_production: expected spot_or_idle_shutdown or off"),
    ({"provisioned_throughput": {"aproval_tag": "x"}}, "provisioned_throughput.aproval_tag: unknown setting"),
    ({"max_monthly_increase": "lots"}, "max_monthly_increase: expected an amount >= 0"),
    ({"required_tags": "yes"}, "required_tags: expected true or false"),
    ({"max_accelerators": {"per_user": 2}, "user_key": "usr"}, "guardrails.user_key: 'usr' is not a tag_policy key"),
])
def test_config_errors_are_one_line_exit_2(tmp_path, capsys, guardrails, expected):
    cfg = _write_config(tmp_path, **guardrails)
    with pytest.raises(ConfigError) as exc:
        guard.evaluate(G / "aws_plan.json", cfg)
    assert expected in str(exc.value)
    assert main(["guard", str(G / "aws_plan.json"), "--config", cfg]) == 2
    assert expected in capsys.readouterr().err


def test_unknown_section_typo_is_refused(tmp_path):
    p = tmp_path / "finops.yaml"
    p.write_text("guardrail:\n  max_monthly_increase: 5\n")
    with pytest.raises(ConfigError, match="did you mean 'guardrails'"):
        guard.evaluate(G / "aws_plan.json", str(p))


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_junit_end_to_end_three_rules(tmp_path, capsys):
    """A plan that breaks three rules: non-production on demand, accelerator family, monthly increase."""
    plan = _plan(tmp_path, _instance("aws_instance.big", "p5.48xlarge", {**TAGS, "env": "dev"}))
    cfg = _write_config(tmp_path, allowed_accelerators={"dev": ["T4"]}, max_monthly_increase=10000)
    assert main(["guard", plan, "--config", cfg, "--format", "junit"]) == 1
    root = ET.fromstring(capsys.readouterr().out)
    suite = root.find("testsuite")
    assert suite.get("failures") == "3"
    failed = sorted(tc.get("classname") for tc in suite.iter("testcase") if tc.find("failure") is not None)
    assert failed == ["finops-kit.guard.allowed_accelerators", "finops-kit.guard.max_monthly_increase",
                      "finops-kit.guard.non_production"]
    msg = next(tc for tc in suite.iter("testcase") if tc.get("classname").endswith("max_monthly_increase"))
    assert "$40,206.72" in msg.find("failure").get("message")  # 55.04 x 730.5


def test_cli_exit_0_and_formats(tmp_path, capsys):
    plan = _plan(tmp_path, _instance("aws_instance.ok", "g5.xlarge", TAGS, spot=True))
    cfg = _write_config(tmp_path, max_monthly_increase=1000)
    assert main(["guard", plan, "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "0 violation(s)" in out and "+$301.30" in out
    assert main(["guard", plan, "--config", cfg, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["monthly"]["delta"] == "301.30" and doc["exit_code"] == 0
    bad = _plan(tmp_path, _instance("aws_instance.dev", "p5.48xlarge", {**TAGS, "env": "dev"}), name="bad.json")
    assert main(["guard", bad, "--config", cfg, "--format", "github"]) == 1
    gh = capsys.readouterr().out.splitlines()
    assert gh[0].startswith("::error file=") and ",title=finops-kit guard " in gh[0]
    assert any(line.startswith("::notice ") for line in gh)
    assert main(["guard", bad, "--config", cfg, "--format", "markdown"]) == 1
    md = capsys.readouterr().out
    assert "\\$40,206.72" in md and "$40" not in md.replace("\\$", "")
    out_file = tmp_path / "report.md"
    assert main(["guard", bad, "--config", cfg, "--format", "markdown", "--out", str(out_file)]) == 1
    assert out_file.read_text().startswith("### finops-kit guard")


def test_cli_help_names_formats_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["guard", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "text,json,junit,github,markdown" in out and "1: violations" in out


def test_config_dict_is_not_mutated():
    cfg = _config(max_accelerators={"per_team": 3})
    before = copy.deepcopy(cfg)
    guard.evaluate(G / "aws_plan.json", cfg)
    assert cfg == before


# ------------------------------------------------------------------------------- the same rules from the bill
def _gpu_rows() -> list[dict]:
    """14 days of daily EC2 rows (hand-computed answers): team alpha runs one on-demand p4d.24xlarge in dev and two
    in prod around the clock (3 x 8 = 24 A100s); team beta runs a spot g5.xlarge in dev around the clock and an
    on-demand g5.xlarge in dev 10 hours a day (stopped at night: an idle shutdown in effect)."""
    import pandas as pd

    def row(day, rid, itype, hours, tags, spot=False):
        rate = {"p4d.24xlarge": 21.96, "g5.xlarge": 1.006}[itype] * (0.41 if spot else 1)
        return dict(day=day, ResourceId=rid, x_InstanceType=itype, ConsumedQuantity=hours, ConsumedUnit="Hours",
                    x_UsageType=f"USE1-{'SpotUsage' if spot else 'BoxUsage'}:{itype}",
                    PricingCategory="Dynamic" if spot else "Standard", x_AiWorkload="Accelerated compute",
                    cost=round(rate * hours, 2), tags=tags)

    alpha = {"team": "alpha", "owner": "al@example.com", "project": "p", "model": "m"}
    beta = {"team": "beta", "owner": "be@example.com", "project": "p", "model": "m"}
    rows = []
    for d in pd.date_range("2026-11-01", "2026-11-14", freq="D"):
        day = str(d.date())
        rows += [row(day, "i-alpha-dev", "p4d.24xlarge", 24, {**alpha, "Environment": "development"}),
                 row(day, "i-alpha-prod-1", "p4d.24xlarge", 24, {**alpha, "env": "prod"}),
                 row(day, "i-alpha-prod-2", "p4d.24xlarge", 24, {**alpha, "env": "prod"}),
                 row(day, "i-beta-spot", "g5.xlarge", 24, {**beta, "env": "dev"}, spot=True),
                 row(day, "i-beta-office", "g5.xlarge", 10, {**beta, "env": "dev"})]
    return rows


@pytest.fixture(scope="module")
def gpu_warehouse(tmp_path_factory) -> str:
    import finops_kit as fk
    from finops_kit.testing import focus_rows

    path = str(tmp_path_factory.mktemp("guard_bill") / "wh.duckdb")
    con = fk.connect(path, write=True)
    focus_rows(_gpu_rows(), con)
    con.close()
    return path


BILL_RULES = dict(max_accelerators={"per_team": {"default": 16}, "per_user": 32},
                  allowed_accelerators={"prod": ["A100"], "dev": ["A10G"]})


def test_bill_checks_hand_computed(gpu_warehouse):
    import finops_kit as fk

    con = fk.connect(gpu_warehouse, read_only=True)
    try:
        checks = guard.bill_checks(con, _config(**BILL_RULES), as_of="2026-11-14", days=14)
    finally:
        con.close()
    got = {(c.rule, c.subject): c for c in checks}
    assert set(got) == {("non_production", "i-alpha-dev"), ("max_accelerators_per_team", "team=alpha"),
                        ("allowed_accelerators", "env=dev:p4d")}
    np_ = got[("non_production", "i-alpha-dev")]
    assert "p4d.24xlarge (env=dev, team=alpha)" in np_.message and "on demand" in np_.message
    assert "24.0 accelerators" in got[("max_accelerators_per_team", "team=alpha")].message  # 3 x 8 A100, limit 16
    dev = got[("allowed_accelerators", "env=dev:p4d")].message
    assert "NVIDIA A100" in dev and "2,688 accelerator-hours" in dev  # 8 x 24 h x 14 days
    # beta's spot instance and its office-hours instance pass, as they would in a plan; per_user 24 <= 32


def test_bill_checks_keep_to_the_charges_the_scope_selects(sample_warehouse):
    # check -p providers=AWS: the guardrails judged every provider's resources whatever the scope (Azure and GCP
    # dev GPUs among the AWS alerts); they judge the scope's charges, over the rule's own window
    import finops_kit as fk
    from finops_kit.scope import Scope, bind

    cfg = yaml.safe_load((REPO / "finops.yaml").read_text())
    con = fk.connect(sample_warehouse, read_only=True)
    try:
        every = guard.bill_checks(con, cfg, as_of="2026-11-26", days=14)
        aws = guard.bill_checks(con, cfg, as_of="2026-11-26", days=14,
                                scope=bind(con, Scope.parse({"providers": ["AWS"], "billing_period_start": "2026-06"}),
                                           cfg))
        whole = guard.bill_checks(con, cfg, as_of="2026-11-26", days=14, scope=bind(con, None, cfg))
    finally:
        con.close()
    non_aws = [c.subject for c in every if c.rule == "non_production" and not c.subject.startswith("i-")]
    assert non_aws and all(c.subject.startswith("i-") for c in aws if c.rule == "non_production")
    judged = [c for c in aws if c.status != "not judged in this scope"]  # limits on every provider: notes, not checks
    assert 0 < len(judged) < len(every)
    assert [c.message for c in whole] == [c.message for c in every]  # the scope's periods do not apply


def test_plan_and_bill_tell_one_story(gpu_warehouse, tmp_path):
    """The same finops.yaml judges a plan creating alpha's dev A100 box and the bill where it already runs."""
    import finops_kit as fk

    plan = _plan(tmp_path, _instance("aws_instance.dev", "p4d.24xlarge",
                                     {"team": "alpha", "owner": "al@example.com", "project": "p", "model": "m",
                                      "Environment": "development"}))
    planned = guard.evaluate(plan, _config(**BILL_RULES))
    con = fk.connect(gpu_warehouse, read_only=True)
    try:
        billed = guard.bill_checks(con, _config(**BILL_RULES), as_of="2026-11-14")
    finally:
        con.close()
    for rule in ("non_production", "allowed_accelerators"):
        assert _check(planned, rule, "aws_instance.dev").status == "violation"
        assert any(c.rule == rule and c.status == "violation" for c in billed)


def test_check_command_reports_guardrails(gpu_warehouse, tmp_path, capsys):
    cfg = _write_config(tmp_path, **BILL_RULES)
    assert main(["check", "--warehouse", gpu_warehouse, "--config", cfg, "--as-of", "2026-11-14"]) == 1
    out = capsys.readouterr().out
    assert out.count("[guardrail]") == 3 and "non_production i-alpha-dev" in out
    data = _config(**BILL_RULES)
    data["alerts"] = {"budgets": False, "guardrails": False}
    Path(cfg).write_text(yaml.safe_dump(data))
    assert main(["check", "--warehouse", gpu_warehouse, "--config", cfg, "--as-of", "2026-11-14"]) == 0
    data["alerts"] = {"guardrails": {"lookback_dayz": 3}}
    Path(cfg).write_text(yaml.safe_dump(data))
    assert main(["check", "--warehouse", gpu_warehouse, "--config", cfg, "--as-of", "2026-11-14"]) == 2
    assert "alerts.guardrails: expected true, false or {lookback_days: N}" in capsys.readouterr().err


def test_check_on_the_sample_data_finds_the_planted_always_on_gpus(sample_warehouse):
    """PLANTED.json: dev GPUs left on 24/7 (AWS g5.48xlarge and g6.xlarge, GCP g2-standard-8, Azure NC24ads A100)."""
    import finops_kit as fk

    planted = json.loads((REPO / "data" / "samples" / "PLANTED.json").read_text())
    always_on = {p["sku"] for section in planted.values() if isinstance(section, list) for p in section
                 if isinstance(p, dict) and "24/7" in str(p.get("note", "")) and p.get("env") == "dev"}
    assert always_on
    con = fk.connect(sample_warehouse, read_only=True)
    try:
        last = con.sql("SELECT max(CAST(ChargePeriodStart AS DATE)) FROM focus WHERE ChargeCategory = 'Usage'"
                       ).fetchall()[0][0]
        checks = guard.bill_checks(con, yaml.safe_load((REPO / "finops.yaml").read_text()), as_of=last)
    finally:
        con.close()
    flagged = " ".join(c.message for c in checks if c.rule == "non_production")
    for sku in always_on:
        assert sku.split("_")[0] in flagged.replace("Standard_", ""), (sku, flagged)


def test_sensitive_tag_values_are_judged_but_not_printed(tmp_path):
    rc = _instance("aws_instance.s", "g5.xlarge", {**TAGS, "owner": "not-an-email-SECRET"})
    rc["change"]["after_sensitive"] = {"tags_all": {"owner": True}}
    r = guard.evaluate(_plan(tmp_path, rc), _config())
    c = _check(r, "required_tags", "aws_instance.s")
    assert c.status == "violation" and "owner=(sensitive value)" in c.message
    assert "SECRET" not in guard.render_text(r) + guard.render_json(r)


def test_bill_peak_day_is_the_first_day_at_the_peak_whatever_the_row_order():
    """Team alpha runs 24 A100s on each of the 14 days: its check names the first day at that peak, 2026-11-01,
    from either storage order (arg_max by the daily average picked whichever tied day the scan met last)."""
    import finops_kit as fk
    from finops_kit.testing import focus_rows

    rows = _gpu_rows()
    days = []
    for ordered in (rows, rows[::-1]):
        con = fk.connect(":memory:", write=True)
        con.execute("SET threads = 1")  # one thread scans in storage order: the two orders really differ
        focus_rows(ordered, con)
        checks = guard.bill_checks(con, _config(**BILL_RULES), as_of="2026-11-14", days=14)
        con.close()
        (team,) = [c for c in checks if (c.rule, c.subject) == ("max_accelerators_per_team", "team=alpha")]
        days.append(team.message.split("on average on ")[1][:10])
    assert days[0] == days[1] == "2026-11-01"


def test_markdown_escapes_what_a_plan_says():
    """A plan's tag values reach the pull-request comment: '<img src=...>' and '[x](https://...)' rendered as an
    image and a link there (the junit output escaped them; found by a review). In the markdown every character a
    renderer reads as markup is escaped, so the text shows as written."""
    from finops_kit.guard import _md

    got = _md("a|b <img src=https://evil.example/t.png> [x](https://evil.example) *bold* `code` $5 & _u_ !")
    for raw in ("<img", "[x]", "](", "*bold*", "`code`", "a|b", " $5", " & "):
        assert raw not in got, (raw, got)
    assert "&lt;img" in got and "\\[x\\]" in got and "\\|" in got and "\\$5" in got


# ---------------------------------------------------------------------------- review of the plan reading (s12)
def _doc_plan(tmp_path: Path, doc: dict, name: str = "plan.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.9.5", **doc}))
    return str(p)


AWS_CFG = {"provider_config": {"aws": {"name": "aws", "expressions": {"region": {"constant_value": "us-east-1"}}}},
           "root_module": {}}


def _asg(address: str, after: dict | None, before: dict | None = None, actions: list[str] | None = None,
         tags: dict | None = None, propagate: bool = True) -> dict:
    tag = [{"key": k, "value": v, "propagate_at_launch": propagate} for k, v in (tags or TAGS).items()]
    a = None if after is None else {"name": "g", "launch_template": [], "mixed_instances_policy": [], "tag": tag,
                                    **after}
    b = None if before is None else {"name": "g", "launch_template": [], "mixed_instances_policy": [], "tag": tag,
                                     **before}
    return _rc(address, "aws_autoscaling_group", a, b, actions)


def test_forget_keeps_the_instance_running_and_billed(tmp_path):
    """removed { lifecycle { destroy = false } } (Terraform 1.7+): actions ["forget"]; the instance keeps running
    unmanaged. It was counted as a delete (-8 accelerators, -$16,041.78), hiding a new p4d from per_change."""
    p4d = {"instance_type": "p4d.24xlarge", "tags_all": TAGS}
    plan = _plan(tmp_path, _rc("aws_instance.old", "aws_instance", None, p4d, ["forget"]),
                 _rc("aws_instance.new", "aws_instance", p4d))
    r = guard.evaluate(plan, _config(max_accelerators={"per_change": 4, "per_team": {"nlp": 8}},
                                     max_monthly_increase=5000))
    old = _res(r, "aws_instance.old")
    assert old.change.action == "forget" and old.delta == 0
    assert _check(r, "max_accelerators_per_change", "plan").status == "violation"   # +8, the forget adds 0
    assert r.totals()["delta"] == Decimal("16041.78")
    team = _check(r, "max_accelerators_per_team", "team=nlp")   # after the plan: old (still running) + new = 16
    assert team.status == "violation" and "16 accelerators" in team.message
    row = next(x for x in guard._rows(r) if x["address"] == "aws_instance.old")
    assert row["action"] == "forget" and row["accelerators_after"] == 8 and row["monthly_delta"] == 0
    assert "forget   aws_instance.old" in guard.render_text(r) and r.exit_code == 1


def test_zero_maximum_without_autoscaling_does_not_win_over_node_count(tmp_path):
    """azurerm writes max_count = 0 when autoscaling is off; GKE max_node_count = 0 when total limits are used."""
    aks = {"name": "gpu", "vm_size": "Standard_NC24ads_A100_v4", "node_count": 8, "min_count": 0, "max_count": 0,
           "auto_scaling_enabled": False, "priority": "Regular", "tags": TAGS}
    gke = {"name": "gpu", "location": "us-central1", "node_count": None, "initial_node_count": 0,
           "autoscaling": [{"min_node_count": 0, "max_node_count": 0, "total_min_node_count": 0,
                            "total_max_node_count": 40}],
           "node_config": [{"machine_type": "n1-standard-8", "guest_accelerator": [{"type": "nvidia-tesla-t4",
                                                                                   "count": 4}],
                            "resource_labels": TAGS}]}
    plan = _plan(tmp_path,
                 _rc("azurerm_kubernetes_cluster_node_pool.gpu", "azurerm_kubernetes_cluster_node_pool", aks,
                     {**aks, "node_count": 1}),
                 _rc("google_container_node_pool.gpu", "google_container_node_pool", gke,
                     unknown={"node_count": True}))
    r = guard.evaluate(plan, _config())
    aks_r = _res(r, "azurerm_kubernetes_cluster_node_pool.gpu")
    assert aks_r.before.accelerators() == 1 and aks_r.after.accelerators() == 8   # 1 A100 per NC24ads
    assert _res(r, "google_container_node_pool.gpu").after.accelerators() == 160  # 40 nodes x 4 T4


def test_launch_template_change_under_a_noop_group_is_checked(tmp_path):
    """A group on version $Latest (or $Default) runs what its template says: the template g5.xlarge -> p4d.24xlarge
    changes the group's instances although Terraform shows the group as no-op."""
    lt = {"id": "lt-0abc", "name": "gpu", "tag_specifications": [{"resource_type": "instance", "tags": TAGS}]}
    group = {"desired_capacity": 2, "min_size": 0, "max_size": 4,
             "launch_template": [{"id": "lt-0abc", "name": "gpu", "version": "$Latest"}]}
    plan = _plan(tmp_path,
                 _rc("aws_launch_template.gpu", "aws_launch_template", {**lt, "instance_type": "p4d.24xlarge"},
                     {**lt, "instance_type": "g5.xlarge"}, unknown={"latest_version": True}),
                 _asg("aws_autoscaling_group.gpu", group, group, ["no-op"]))
    r = guard.evaluate(plan, _config(max_accelerators={"per_change": 4}))
    g = _res(r, "aws_autoscaling_group.gpu")
    assert g.changed and g.before.accelerators() == 4 and g.after.accelerators() == 32
    # 2 x (21.96 - 1.006) x 730.5
    assert g.delta == Decimal("30613.79") and r.totals()["delta"] == Decimal("30613.79")
    c = _check(r, "max_accelerators_per_change", "plan")
    assert c.status == "violation" and "adds 28 accelerators" in c.message
    # a group pinned to a version number keeps it: not changed
    pinned = {**group, "launch_template": [{"id": "lt-0abc", "name": "gpu", "version": "1"}]}
    plan2 = _plan(tmp_path,
                  _rc("aws_launch_template.gpu", "aws_launch_template", {**lt, "instance_type": "p4d.24xlarge"},
                      {**lt, "instance_type": "g5.xlarge"}),
                  _asg("aws_autoscaling_group.gpu", pinned, pinned, ["no-op"]), name="pinned.json")
    assert not _res(guard.evaluate(plan2, _config()), "aws_autoscaling_group.gpu").changed


def test_retag_that_pushes_a_team_over_its_limit_is_a_violation(tmp_path):
    research = {**TAGS, "team": "research"}
    p4d = {"instance_type": "p4d.24xlarge"}
    plan = _plan(tmp_path,
                 _rc("aws_instance.a", "aws_instance", {**p4d, "tags_all": research}, {**p4d, "tags_all": research},
                     ["no-op"]),
                 _rc("aws_instance.b", "aws_instance", {**p4d, "tags_all": research}, {**p4d, "tags_all": TAGS}))
    r = guard.evaluate(plan, _config(max_accelerators={"per_team": {"research": 8, "default": 64}}))
    c = _check(r, "max_accelerators_per_team", "team=research")
    assert c.status == "violation" and "16 accelerators" in c.message and "aws_instance.b" in c.message
    assert r.exit_code == 1


def test_unknown_tags_all_reads_the_known_tags(tmp_path):
    """AWS: tags_all is unknown when any tag value is; the keys of `tags` are known and judged, never untagged."""
    rc = _rc("aws_instance.train", "aws_instance",
             {"instance_type": "p4d.24xlarge", "tags": {**TAGS, "Name": None}, "tags_all": None},
             unknown={"tags": {"Name": True}, "tags_all": True})
    dev = _rc("aws_instance.dev", "aws_instance",
              {"instance_type": "p4d.24xlarge", "tags": {k: v for k, v in TAGS.items() if k != "env"},
               "tags_all": None}, unknown={"tags_all": True})
    r = guard.evaluate(_plan(tmp_path, rc, dev), _config(allowed_accelerators={"prod": ["A100"], "default": ["T4"]}))
    assert _res(r, "aws_instance.train").attrs["after"]["env"] == ("ok", "prod", None)
    assert _check(r, "allowed_accelerators", "aws_instance.train").status == "pass"
    assert not [c for c in r.checks if c.rule == "non_production" and c.subject == "aws_instance.train"]
    # env not in tags and tags_all unknown (provider default_tags may set it): unknown, not a violation
    assert _res(r, "aws_instance.dev").attrs["after"]["env"][0] == "unknown"
    assert _check(r, "allowed_accelerators", "aws_instance.dev").status == "unknown"
    assert _check(r, "non_production", "aws_instance.dev").status == "unknown"
    assert r.exit_code == 0


def test_on_demand_base_capacity_is_on_demand(tmp_path):
    """mixed_instances_policy: instances up to on_demand_base_capacity are on demand; above, the percentage."""
    def group(base, pct, desired, mx):
        return {"desired_capacity": desired, "min_size": desired, "max_size": mx, "mixed_instances_policy": [{
            "launch_template": [{"launch_template_specification": [{"launch_template_id": "lt-x"}],
                                 "override": [{"instance_type": "p5.48xlarge"}]}],
            "instances_distribution": [{"on_demand_base_capacity": base,
                                        "on_demand_percentage_above_base_capacity": pct}]}]}
    dev = {**TAGS, "env": "dev"}
    plan = _plan(tmp_path, _asg("aws_autoscaling_group.base", group(4, 0, 4, 4), tags=dev),
                 _asg("aws_autoscaling_group.mixed", group(1, 0, 3, 3), tags=dev),
                 _asg("aws_autoscaling_group.spot", group(0, 0, 2, 2), tags=dev))
    r = guard.evaluate(plan, _config())
    assert _res(r, "aws_autoscaling_group.base").cost_after.monthly == Decimal("160826.88")   # 4 x 55.04 x 730.5
    assert _check(r, "non_production", "aws_autoscaling_group.base").status == "violation"
    # 1 on demand + 2 spot (52% savings): 55.04 x 730.5 x (1 + 2 x 0.48)
    assert _res(r, "aws_autoscaling_group.mixed").cost_after.monthly == \
        (Decimal("55.04") * H * (1 + 2 * Decimal("0.48"))).quantize(Decimal("0.01"))
    assert _check(r, "non_production", "aws_autoscaling_group.mixed").status == "violation"  # one on demand
    assert _check(r, "non_production", "aws_autoscaling_group.spot").status == "pass"


def test_module_provider_region_expression_is_not_the_root_region(tmp_path):
    p4d = {"instance_type": "p4d.24xlarge", "tags_all": TAGS}
    rc = {**_rc("module.tokyo.aws_instance.gpu", "aws_instance", p4d), "module_address": "module.tokyo"}
    cfg = {"provider_config": {**AWS_CFG["provider_config"], "module.tokyo:aws": {
        "name": "aws", "module_address": "module.tokyo", "expressions": {"region": {"references": ["var.region"]}}}},
        "root_module": {"module_calls": {"tokyo": {"source": "./gpu", "module": {"resources": [
            {"address": "aws_instance.gpu", "mode": "managed", "type": "aws_instance", "name": "gpu",
             "provider_config_key": "module.tokyo:aws"}]}}}}}
    r = guard.evaluate(_doc_plan(tmp_path, {"resource_changes": [rc], "configuration": cfg}),
                       _config(default_region="us-east-1"))
    c = _res(r, "module.tokyo.aws_instance.gpu").cost_after
    assert c.monthly is None and c.status == "not priced" and "region" in c.basis
    # a root provider region = var.region: the plan's variables give it (not default_region)
    root = {"provider_config": {"aws": {"name": "aws", "expressions": {"region": {"references": ["var.region"]}}}},
            "root_module": {}}
    doc = {"resource_changes": [_rc("aws_instance.x", "aws_instance", p4d)], "configuration": root,
           "variables": {"region": {"value": "us-west-2"}}}
    r2 = guard.evaluate(_doc_plan(tmp_path, doc, "v.json"), _config(default_region="eu-west-1"))
    assert "us-west-2" in _res(r2, "aws_instance.x").cost_after.basis
    doc["variables"] = {"region": {"value": "ap-northeast-1"}}
    r3 = guard.evaluate(_doc_plan(tmp_path, doc, "v2.json"), _config(default_region="us-east-1"))
    assert "ap-northeast-1" in _res(r3, "aws_instance.x").cost_after.basis


@pytest.mark.parametrize("value, expected", [
    (10 ** 400, "expected a whole number 0..1,000,000"),
    (-3, "expected a whole number 0..1,000,000, got -3"),
    ("lots", "expected a whole number"),
])
def test_count_errors_name_the_file_and_the_attribute_path(tmp_path, capsys, value, expected):
    rc = _asg("aws_autoscaling_group.a", {"desired_capacity": value, "min_size": 0, "max_size": 2})
    plan = _plan(tmp_path, rc)
    with pytest.raises(InputError) as exc:
        guard.evaluate(plan, _config())
    msg = str(exc.value)
    assert msg.startswith(plan + ": $.resource_changes[0].change.after.desired_capacity (aws_autoscaling_group.a): ") and expected in msg
    assert main(["guard", plan]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_regional_gke_pool_counts_every_zone(tmp_path):
    pool = {"name": "a100", "location": "us-central1", "node_count": 1, "initial_node_count": 1,
            "autoscaling": [{"min_node_count": 0, "max_node_count": 6, "total_min_node_count": None,
                             "total_max_node_count": None}],
            "node_config": [{"machine_type": "a2-highgpu-8g", "guest_accelerator": [], "resource_labels": TAGS}]}
    zones = ["us-central1-a", "us-central1-b", "us-central1-c"]
    plan = _plan(tmp_path,
                 _rc("google_container_node_pool.a", "google_container_node_pool", {**pool, "node_locations": zones}),
                 _rc("google_container_node_pool.u", "google_container_node_pool", pool,
                     unknown={"node_locations": True}),
                 _rc("google_container_node_pool.z", "google_container_node_pool",
                     {**pool, "node_count": 0, "autoscaling": []}, unknown={"node_locations": True}))
    r = guard.evaluate(plan, _config(max_accelerators={"per_change": 100}))
    a = _res(r, "google_container_node_pool.a")
    assert a.after.pools[0].count == 3 and a.after.accelerators() == 144    # 3 zones x 6 x 8 A100
    assert _res(r, "google_container_node_pool.u").after.accelerators() is guard.UNKNOWN
    assert _res(r, "google_container_node_pool.z").after.accelerators() == 0    # 0 per zone: 0 whatever the zones
    c = _check(r, "max_accelerators_per_change", "plan")
    assert c.status == "violation" and "google_container_node_pool.u" in c.message


def test_markdown_code_spans_are_not_backslash_escaped():
    """CommonMark shows backslashes inside a code span as written: `aws\\_instance.new` showed a backslash."""
    from finops_kit.guard import _md_code

    assert _md_code("aws_instance.new") == "`aws_instance.new`"
    assert _md_code('module.m["a*b$"].x') == '`module.m["a*b$"].x`'
    assert _md_code("a|b") == "`a\\|b`"                       # a table cell: the pipe is GFM-escaped
    assert _md_code("a|b", table=False) == "`a|b`"
    assert _md_code("x`y\nz") == "``x`y z``"                  # a longer fence than any backtick run
    assert _md_code("`x") == "`` `x ``"


def test_markdown_addresses_are_shown_as_written(tmp_path):
    plan = _plan(tmp_path, _instance("aws_instance.new_box", "p5.48xlarge", {**TAGS, "env": "dev"}))
    md = guard.render_markdown(guard.evaluate(plan, _config()))
    assert "`aws_instance.new_box`" in md and "aws\\_instance" not in md


def test_autoscaling_group_tags_not_propagated_do_not_reach_the_instances(tmp_path):
    group = {"desired_capacity": 1, "min_size": 0, "max_size": 2, "mixed_instances_policy": [{
        "launch_template": [{"launch_template_specification": [{"launch_template_id": "lt-x"}],
                             "override": [{"instance_type": "g5.xlarge"}]}],
        "instances_distribution": [{"on_demand_percentage_above_base_capacity": 100}]}]}
    plan = _plan(tmp_path, _asg("aws_autoscaling_group.g", group, propagate=False),
                 _asg("aws_autoscaling_group.p", group))
    r = guard.evaluate(plan, _config())
    c = _check(r, "required_tags", "aws_autoscaling_group.g")
    assert c.status == "violation" and "team missing" in c.message
    assert _check(r, "required_tags", "aws_autoscaling_group.p").status == "pass"


def test_a_zonal_gke_pool_without_node_locations_in_the_plan_is_one_zone(tmp_path):
    # node_locations is Optional+Computed: a zonal pool that does not set it shows it as known after apply. Its
    # location is one zone, so it runs in that zone: 3 x a2-highgpu-8g = 24 A100 for team research (limit 8) was
    # "unknown, at least 0" and exit 0 after the per-zone change; only a regional pool's zones are unknown
    pool = {"name": "l4-pool", "location": "us-central1-a", "node_count": 3, "initial_node_count": None,
            "autoscaling": [], "node_config": [{"machine_type": "a2-highgpu-8g", "guest_accelerator": [],
                                                "resource_labels": {**TAGS, "team": "research"}}]}
    plan = _plan(tmp_path, _rc("google_container_node_pool.z", "google_container_node_pool", pool,
                               unknown={"node_locations": True}))
    r = guard.evaluate(plan, _config(max_accelerators={"per_team": {"default": 8}}))
    assert _res(r, "google_container_node_pool.z").after.accelerators() == 24
    c = _check(r, "max_accelerators_per_team", "team=research")
    assert c.status == "violation" and "24" in c.message


def test_an_unknown_tag_specifications_is_not_read_from_the_template_own_tags(tmp_path):
    # the template's own tags_all (team=platform, env=prod) never reach its instances: with tag_specifications
    # known only after apply the instances' tags are unknown, not platform/prod (a p4d in dev passed every rule)
    lt = {"id": "lt-9", "name": "gpu9", "instance_type": "p4d.24xlarge",
          "tags": {**TAGS, "team": "platform"}, "tags_all": {**TAGS, "team": "platform"}}
    plan = _plan(tmp_path,
                 _rc("aws_launch_template.gpu9", "aws_launch_template", lt,
                     unknown={"tag_specifications": True, "id": True}),
                 _rc("aws_autoscaling_group.g9", "aws_autoscaling_group",
                     {"name": "g9", "desired_capacity": 2, "min_size": 0, "max_size": 2,
                      "launch_template": [{"id": "lt-9", "name": "gpu9", "version": "$Latest"}], "tag": []},
                     unknown={"launch_template": [{"id": True}]}))
    r = guard.evaluate(plan, _config(max_accelerators={"per_team": {"default": 64}},
                                     allowed_accelerators={"prod": ["A100"], "default": ["T4"]}))
    st = {(c.rule, c.subject): c.status for c in r.checks}
    assert st[("required_tags", "aws_autoscaling_group.g9")] == "unknown"
    assert st[("allowed_accelerators", "aws_autoscaling_group.g9")] == "unknown"
    assert ("max_accelerators_per_team", "team=platform") not in st


def test_create_then_forget_runs_the_old_object_and_the_new_one(tmp_path):
    # Terraform's CreateThenForget (replace under lifecycle { destroy = false }): the old p4d keeps running
    # unmanaged and a new one is created beside it -- +8 accelerators and +$16,041.78, not a net zero
    box = {"instance_type": "p4d.24xlarge", "tags_all": {**TAGS, "team": "research"}}
    plan = _plan(tmp_path, _rc("aws_instance.a", "aws_instance", box, before=box, actions=["create", "forget"]))
    r = guard.evaluate(plan, _config(max_accelerators={"per_change": 4, "per_team": {"default": 8}}))
    assert r.totals()["delta"] == (Decimal("21.96") * H).quantize(Decimal("0.01"))
    assert _check(r, "max_accelerators_per_change", "plan").status == "violation"
    team = _check(r, "max_accelerators_per_team", "team=research")
    assert team.status == "violation" and "16" in team.message
