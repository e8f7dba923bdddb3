"""``finops-kit guard``: AI cost guardrails on a Terraform / OpenTofu plan, before anything is deployed.

Input is the JSON of ``terraform show -json plan.out`` (``tofu show -json`` writes the same format, version 1.x).
The guard reads ``resource_changes``: create / update / delete / replace actions, resources in modules and the
instances of ``count`` / ``for_each``. A value Terraform only knows after apply (``after_unknown``) is reported as
unknown, never guessed: an unknown instance type is neither priced nor checked against a family rule, it is listed.

Why offline and in the kit: the same ``finops.yaml`` that judges the bill judges the plan. Tags are read through
:class:`finops_kit.attribution.Attribution` built from ``tag_policy`` (aliases, case variants, value aliases and
patterns exactly as in the tagging audit), accelerators per instance type come from the catalog of
:mod:`finops_kit.units`, and prices from the kit's dated price tables. Which attribute of which resource type holds
the instance type, count, accelerators, spot setting, tags and idle shutdown is data:
``finops_kit/data/guard_resource_types.csv``.

Rules (``guardrails`` in ``finops.yaml``)::

    guardrails:
      required_tags: true            # changed resources carry the tag_policy keys the bill needs (ai keys on AI spend)
      max_accelerators:              # accelerators = instances x accelerators per instance, at the autoscaling maximum
        per_change: 32               # net accelerators this plan adds
        per_team: {default: 16, nlp: 64}   # after the plan, per value of allocation.key (team); a number = all teams
        per_user: 8                  # after the plan, per value of user_key (default owner)
      allowed_accelerators:          # per canonical environment (tag_policy.environment_key); default = any other
        prod: [A100, H100, L4]
        default: [T4, L4, A10G]
      non_production: spot_or_idle_shutdown   # accelerators and notebooks outside production: spot or idle shutdown
      provisioned_throughput:
        approval_tag: finops-approval         # PTU / Bedrock model units need this tag (non-empty) ...
        approved_addresses: []                # ... or their address here (resource types without tags)
      max_monthly_increase: 20000    # priced monthly cost increase of one plan
      fail_on_unknown: false         # true: a rule that cannot be decided (unknown until apply) fails the check
      default_region: us-east-1      # AWS region when neither the resource nor its provider block says
      prices: null                   # your own EC2 on-demand price list (columns of data/ec2_ondemand_prices.csv)

Exit codes: 0 no violation, 1 violations, 2 bad plan or config (one line naming the file, the JSON path and what
was expected).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import html
import json
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from .config import load_config, reject_unknown, section
from .datafiles import data_rows
from .errors import ConfigError, InputError

#: Hours in an average month: the one figure the kit turns hourly rates into monthly ones with (tagging).
from .tagging import HOURS_PER_MONTH

FORMATS = ("text", "json", "junit", "github", "markdown")
ACTIONS = {"no-op", "create", "read", "update", "delete", "forget"}
#: Largest plan accepted: plans of very large workspaces reach tens of MB; beyond this it is not a plan.
MAX_PLAN_BYTES = 512 << 20
#: Largest instance / unit count accepted from a plan: more is a broken or hostile file, not a deployment.
MAX_COUNT = 1_000_000
RULES = ("required_tags", "max_accelerators_per_change", "max_accelerators_per_team", "max_accelerators_per_user",
         "allowed_accelerators", "non_production", "provisioned_throughput", "max_monthly_increase")


class _Unknown:
    """A value Terraform knows only after apply."""

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = _Unknown()


# ------------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class Guardrails:
    """The validated ``guardrails`` section."""

    required_tags: bool = True
    per_change: int | None = None
    per_team: dict[str, int] = field(default_factory=dict)   # team -> limit; 'default' for the others
    per_user: int | None = None
    team_key: str | None = None                               # default: allocation.key
    user_key: str = "owner"
    allowed_accelerators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    non_production: str = "spot_or_idle_shutdown"             # or 'off'
    approval_tag: str | None = None
    approved_addresses: tuple[str, ...] = ()
    max_monthly_increase: Decimal | None = None
    fail_on_unknown: bool = False
    default_region: str | None = None
    prices: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "finops.yaml") -> Guardrails:
        pre = f"{where}: guardrails"
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{pre}: expected a mapping (required_tags, max_accelerators, ...)")
        reject_unknown(data, {"required_tags", "max_accelerators", "team_key", "user_key", "allowed_accelerators",
                              "non_production", "provisioned_throughput", "max_monthly_increase",
                              "fail_on_unknown", "default_region", "prices"}, pre)
        kw: dict[str, Any] = {}
        for name in ("required_tags", "fail_on_unknown"):
            if name in data:
                if not isinstance(data[name], bool):
                    raise ConfigError(f"{pre}.{name}: expected true or false, got {data[name]!r}")
                kw[name] = data[name]
        ma = data.get("max_accelerators") or {}
        if not isinstance(ma, dict):
            raise ConfigError(f"{pre}.max_accelerators: expected a mapping per_change / per_team / per_user")
        reject_unknown(ma, {"per_change", "per_team", "per_user"}, f"{pre}.max_accelerators")
        if ma.get("per_change") is not None:
            kw["per_change"] = _count(ma["per_change"], f"{pre}.max_accelerators.per_change")
        if ma.get("per_user") is not None:
            kw["per_user"] = _count(ma["per_user"], f"{pre}.max_accelerators.per_user")
        pt = ma.get("per_team")
        if pt is not None:
            if isinstance(pt, dict):
                kw["per_team"] = {str(k): _count(v, f"{pre}.max_accelerators.per_team.{k}") for k, v in pt.items()}
            else:
                kw["per_team"] = {"default": _count(pt, f"{pre}.max_accelerators.per_team")}
        for name in ("team_key", "user_key", "default_region", "prices"):
            if data.get(name) is not None:
                if not isinstance(data[name], str) or not data[name].strip():
                    raise ConfigError(f"{pre}.{name}: expected a string, got {data[name]!r}")
                kw[name] = data[name].strip()
        aa = data.get("allowed_accelerators") or {}
        if not isinstance(aa, dict):
            raise ConfigError(f"{pre}.allowed_accelerators: expected a mapping environment -> list of accelerator "
                              "models or instance families (e.g. prod: [A100, H100])")
        allowed = {}
        for env, fams in aa.items():
            if not isinstance(fams, list) or not all(isinstance(f, str) and f.strip() for f in fams):
                raise ConfigError(f"{pre}.allowed_accelerators.{env}: expected a list of accelerator models or "
                                  "instance families, e.g. [A100, H100, p5]")
            allowed[str(env)] = tuple(f.strip() for f in fams)
        kw["allowed_accelerators"] = allowed
        if "non_production" in data:
            np_ = data["non_production"]
            if np_ not in ("spot_or_idle_shutdown", "off", False):
                raise ConfigError(f"{pre}.non_production: expected spot_or_idle_shutdown or off, got {np_!r}")
            kw["non_production"] = "off" if np_ is False else np_
        pth = data.get("provisioned_throughput")
        if pth is not None:
            if not isinstance(pth, dict):
                raise ConfigError(f"{pre}.provisioned_throughput: expected a mapping (approval_tag, "
                                  "approved_addresses)")
            reject_unknown(pth, {"approval_tag", "approved_addresses"}, f"{pre}.provisioned_throughput")
            tag = pth.get("approval_tag")
            if tag is not None and (not isinstance(tag, str) or not tag.strip()):
                raise ConfigError(f"{pre}.provisioned_throughput.approval_tag: expected a tag key, got {tag!r}")
            addrs = pth.get("approved_addresses") or []
            if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
                raise ConfigError(f"{pre}.provisioned_throughput.approved_addresses: expected a list of resource "
                                  "addresses (globs allowed)")
            kw["approval_tag"] = tag.strip() if tag else None
            kw["approved_addresses"] = tuple(addrs)
        if data.get("max_monthly_increase") is not None:
            v = data["max_monthly_increase"]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{pre}.max_monthly_increase: expected an amount >= 0, got {v!r}")
            kw["max_monthly_increase"] = Decimal(str(v))
        return cls(**kw)


def _count(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{where}: expected a whole number >= 0, got {v!r}")
    return v


# ------------------------------------------------------------------------------------------ type table
@dataclass(frozen=True)
class TypeSpec:
    """One row of ``data/guard_resource_types.csv``."""

    resource_type: str
    provider: str
    kind: str
    ai: str
    pool: str
    instance_type: str
    count: str
    max_count: str
    accelerators: str
    accelerator_type: str
    accelerator_count: str
    spot: str
    on_demand_base: str
    on_demand_percentage: str
    tags: str
    tags_format: str
    idle_shutdown: str
    provisioned: str
    launch_template: str
    operating_system: str                     # what the plan says of the OS (see the table's header)
    note: str


KINDS = {"instance", "template", "node_pool", "notebook", "endpoint", "provisioned"}


@cache
def resource_types(path: str | None = None) -> dict[str, TypeSpec]:
    """The guarded resource types (``data/guard_resource_types.csv``), validated."""
    out = {}
    for r in data_rows("guard_resource_types.csv", path):
        spec = TypeSpec(**{k: (r.get(k) or "").strip() for k in TypeSpec.__dataclass_fields__})
        if spec.kind not in KINDS or spec.ai not in ("always", "accelerators") or \
                spec.tags_format not in ("map", "key_value_list"):
            raise ValueError(f"data/guard_resource_types.csv: {spec.resource_type}: bad kind, ai or tags_format")
        out[spec.resource_type] = spec
    return out


# ----------------------------------------------------------------------------------------- plan reading
@dataclass
class Change:
    """One resource instance of ``resource_changes``."""

    address: str
    module_address: str
    type: str
    name: str
    index: Any
    actions: tuple[str, ...]
    before: dict | None
    after: dict | None
    after_unknown: Any
    path: str                                  # JSON path of the entry, for messages
    after_sensitive: Any = None                # values Terraform marks sensitive: judged, never printed
    file: str = ""                             # the plan file, for messages
    via: str = ""                              # why a no-op resource is effectively changed (its launch template)

    @property
    def action(self) -> str:
        a = set(self.actions)
        if {"create", "delete"} <= a:
            return "replace"
        for name in ("create", "delete", "update", "read", "forget"):
            if name in a:
                return name
        return "no-op"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_plan(path: str | os.PathLike) -> tuple[dict, list[Change]]:
    """The plan document and its managed resource changes; any defect is one :class:`InputError` line."""
    p = Path(path)
    f = str(path)
    if not p.exists():
        raise InputError(f, "plan file not found")
    if not p.is_file():
        raise InputError(f, "is a folder; expected the JSON of `terraform show -json plan.out`")
    size = p.stat().st_size
    if size > MAX_PLAN_BYTES:
        raise InputError(f, f"{size:,} bytes; a plan JSON is at most {MAX_PLAN_BYTES:,} bytes")
    raw = p.read_bytes()
    if raw[:4] == b"PK\x03\x04":
        raise InputError(f, "is a binary plan file (zip); convert it first: terraform show -json plan.out > plan.json")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); expected the "
                            "JSON of `terraform show -json plan.out`") from None
    if not text.strip():
        raise InputError(f, "empty file; expected the JSON of `terraform show -json plan.out`")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); expected the "
                            "output of `terraform show -json plan.out`") from None
    except ValueError as exc:
        raise InputError(f, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f, "JSON nested too deeply to be a plan") from None
    if not isinstance(doc, dict):
        raise InputError(f, f"$: expected a JSON object (a plan), got {_jtype(doc)}")
    fv = doc.get("format_version")
    if not isinstance(fv, str) or not re.fullmatch(r"1(\.\d+)*", fv):
        got = "nothing" if fv is None else repr(fv)
        raise InputError(f, f"$.format_version: expected a plan JSON format version 1.x, got {got} (is this the "
                            "output of `terraform show -json plan.out`?)")
    if "resource_changes" not in doc and "planned_values" not in doc:
        raise InputError(f, "$.resource_changes: missing; expected a plan (`terraform show -json plan.out`), not a "
                            "state file or a configuration")
    rcs = doc.get("resource_changes", [])
    if not isinstance(rcs, list):
        raise InputError(f, f"$.resource_changes: expected a list, got {_jtype(rcs)}")
    changes = []
    for i, rc in enumerate(rcs):
        jp = f"$.resource_changes[{i}]"
        if not isinstance(rc, dict):
            raise InputError(f, f"{jp}: expected an object, got {_jtype(rc)}")
        for key in ("address", "type", "name"):
            if not isinstance(rc.get(key), str) or not rc.get(key):
                raise InputError(f, f"{jp}.{key}: expected a non-empty string, got {_show(rc.get(key))}")
        mode = rc.get("mode", "managed")
        if mode not in ("managed", "data"):
            raise InputError(f, f"{jp}.mode: expected managed or data, got {_show(mode)}")
        ch = rc.get("change")
        if not isinstance(ch, dict):
            raise InputError(f, f"{jp}.change: expected an object with actions, before, after, got {_show(ch)}")
        acts = ch.get("actions")
        if not isinstance(acts, list) or not acts or not all(isinstance(a, str) and a in ACTIONS for a in acts):
            raise InputError(f, f"{jp}.change.actions: expected a list of {', '.join(sorted(ACTIONS))}, got "
                                f"{_show(acts)}")
        for key in ("before", "after"):
            if ch.get(key) is not None and not isinstance(ch[key], dict):
                raise InputError(f, f"{jp}.change.{key}: expected an object or null, got {_jtype(ch[key])}")
        au = ch.get("after_unknown", {})
        if au is not None and not isinstance(au, dict | bool):
            raise InputError(f, f"{jp}.change.after_unknown: expected an object, got {_jtype(au)}")
        if mode != "managed":
            continue
        change = Change(address=rc["address"], module_address=str(rc.get("module_address") or ""),
                        type=rc["type"], name=rc["name"], index=rc.get("index"), actions=tuple(acts),
                        before=ch.get("before"), after=ch.get("after"), after_unknown=au or {}, path=jp,
                        after_sensitive=ch.get("after_sensitive"), file=f)
        if set(acts) == {"create", "forget"}:
            # Terraform's CreateThenForget (a replacement under lifecycle { destroy = false }): "must be replaced,
            # but the existing object will not be destroyed" -- the old object keeps running, unmanaged (a forget),
            # and a new one is created beside it (a create): both bill
            changes.append(dataclasses.replace(change, actions=("forget",), after=change.before, after_unknown={}))
            changes.append(dataclasses.replace(change, actions=("create",), before=None))
        else:
            changes.append(change)
    return doc, changes


def _jtype(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    s = json.dumps(v)[:60] if not isinstance(v, _Unknown) else repr(v)
    return s if v is not None else "nothing"


# ------------------------------------------------------------------------------------------ value paths
def _node(v: Any, u: Any, parts: list[str]) -> tuple[Any, Any]:
    """Walk ``parts`` down the planned values ``v`` and the after_unknown tree ``u`` together."""
    for i, head in enumerate(parts):
        if u is True:
            return UNKNOWN, True
        if head == "*":
            if not isinstance(v, list):
                return None, None
            return [_node(item, u[j] if isinstance(u, list) and j < len(u) else None, parts[i + 1:])
                    for j, item in enumerate(v)], None
        if head.isdigit():
            k = int(head)
            v = v[k] if isinstance(v, list) and k < len(v) else None
            u = u[k] if isinstance(u, list) and k < len(u) else None
        else:
            v = v.get(head) if isinstance(v, dict) else None
            u = u.get(head) if isinstance(u, dict) else None
    if u is True:
        return UNKNOWN, True
    return v, u


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str | list | dict) and not v)


def _value_at(values: dict | None, unknown: Any, spec: str) -> tuple[Any, str, Any]:
    """(value, path, factor) of the first alternative of ``spec`` ('a;b') that is set; value UNKNOWN, or None when
    none is set.

    A number is a constant. An alternative that is unknown stops the search: a later one would be a guess.
    ``path>0``: only a positive number counts as set (providers write 0 for an unset maximum). ``path per list``:
    the value is per element of ``list`` (per zone of node_locations): factor = its length, UNKNOWN when the list is
    unknown or not in the plan (a silent lower bound otherwise); else factor 1.
    """
    for alt in (a.strip() for a in spec.split(";") if a.strip()):
        alt, _, per = (x.strip() for x in alt.partition(" per "))
        positive = alt.endswith(">0")
        alt = alt.removesuffix(">0").strip()
        if re.fullmatch(r"\d+", alt):
            return int(alt), alt, 1
        v, _ = _node(values, unknown, alt.split("."))
        if v is UNKNOWN:
            return UNKNOWN, alt, 1
        if isinstance(v, list) and v and isinstance(v[0], tuple):  # a '*' path: values of the elements
            vals = [x for x, _ in v]
            if any(x is UNKNOWN for x in vals):
                return UNKNOWN, alt, 1
            v = vals
        if _empty(v) or positive and isinstance(v, int | float) and not isinstance(v, bool) and v <= 0:
            continue
        factor: Any = 1
        if per:
            items, _ = _node(values, unknown, per.split("."))
            factor = len(items) if isinstance(items, list) and items else UNKNOWN
        return v, alt, factor
    return None, "", 1


def _value(values: dict | None, unknown: Any, spec: str, where: str) -> Any:
    """The value of :func:`_value_at` (no count factor)."""
    return _value_at(values, unknown, spec)[0]


def _test(values: dict | None, unknown: Any, spec: str) -> bool | Any:
    """A spot / idle / provisioned test (``path=a|b;path2``): True, False or UNKNOWN."""
    if not spec:
        return False
    if spec == "always":
        return True
    saw_unknown = False
    for alt in (a.strip() for a in spec.split(";") if a.strip()):
        path, _, want = alt.partition("=")
        v, _ = _node(values, unknown, path.split("."))
        if v is UNKNOWN:
            saw_unknown = True
            continue
        if _empty(v):
            continue
        if not want:
            return True
        text = json.dumps(v) if isinstance(v, bool) else str(v)
        if text.lower() in {w.lower() for w in want.split("|")}:
            return True
    return UNKNOWN if saw_unknown else False


# ----------------------------------------------------------------------------------------- resource state
@dataclass
class Pool:
    """A group of identical instances (or model units) one state of a resource runs."""

    instance_type: Any                        # str, UNKNOWN or None (not set)
    count: Any                                # int, UNKNOWN or None
    max_count: Any                            # int, UNKNOWN or None (no autoscaling maximum)
    accelerators_per_instance: Any            # number (0.25: a g6f's quarter GPU), UNKNOWN or None (not in catalog)
    accelerator: str | None                   # accelerator model (catalog) or attached type
    family: str | None

    @property
    def accelerators(self) -> Any:
        """Accelerators at the autoscaling maximum (what the change permits)."""
        n = self.max_count if self.max_count is not None else self.count
        per = self.accelerators_per_instance
        if n is UNKNOWN or per is UNKNOWN:
            return UNKNOWN
        if not n or self.instance_type is None:
            return 0  # no instances, or no instance type set (a serverless variant)
        if per is None:
            return UNKNOWN  # an accelerated type missing from the catalog: its count is not guessed
        return n * self.accelerators_per_instance


@dataclass
class State:
    """What one side (before / after) of a change runs."""

    pools: list[Pool]
    tags: dict[str, str] | None               # None: the type carries no tags
    tags_unknown: bool                        # the whole tag map is known only after apply
    spot: Any                                 # True / False / UNKNOWN
    idle_shutdown: Any
    provisioned: Any
    region: Any                               # str, UNKNOWN (provider region an expression) or None
    unknown: list[str] = field(default_factory=list)   # attributes known only after apply
    unknown_tag_keys: set[str] = field(default_factory=set)   # tag keys whose value is known only after apply
    sensitive_values: set[str] = field(default_factory=set)   # tag values marked sensitive (never printed)
    on_demand: tuple[int, int] | None = None  # a spot mix: (on-demand base, on-demand % above the base)
    operating_system: Any = None              # Linux, Windows, ... as the plan says it; UNKNOWN; None: not said

    def accelerators(self) -> Any:
        total = 0
        for p in self.pools:
            a = p.accelerators
            if a is UNKNOWN:
                return UNKNOWN
            total += a
        return total


@dataclass
class Priced:
    """Monthly cost of one state: the amount, or why it has none."""

    monthly: Decimal | None
    basis: str                                # price source, or the reason it is not priced
    status: str                               # priced | not priced | unknown
    os_assumed: bool = False                  # priced at the Linux price: the plan does not say the OS


@dataclass
class Resource:
    """A guarded resource change with both states, their prices and their attribution."""

    change: Change
    spec: TypeSpec
    before: State | None
    after: State | None
    cost_before: Priced | None = None
    cost_after: Priced | None = None
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)   # side -> key -> (status, value)

    @property
    def address(self) -> str:
        return self.change.address

    @property
    def changed(self) -> bool:
        return self.change.action in ("create", "update", "replace")

    @property
    def unchanged(self) -> bool:
        """Runs and bills after the plan as before: a no-op, or a forget (removed from state, still running)."""
        return self.change.action in ("no-op", "forget")

    @property
    def delta(self) -> Decimal | None:
        a = self.cost_after.monthly if self.cost_after else Decimal(0)
        b = self.cost_before.monthly if self.cost_before else Decimal(0)
        if a is None or b is None:
            return None
        return a - b


def _jpath(change: Change, side: str, path: str) -> str:
    """JSON path of an attribute of one side of a change: ``$.resource_changes[0].change.after.a[0].b``."""
    parts = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path.split(".") if p)
    return f"{change.path}.change.{side}{parts}"


def _int(v: Any, change: Change, what: str) -> Any:
    """A whole number 0..MAX_COUNT; ``what`` is the attribute's JSON path (:func:`_jpath`)."""
    if v is None or v is UNKNOWN:
        return v
    where = f"{what} ({change.address})"
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InputError(change.file or None, f"{where}: expected a whole number, got {_show(v)}")
    if isinstance(v, int):
        n: float | int = v
    else:
        try:
            n = float(v)
        except (ValueError, OverflowError):
            raise InputError(change.file or None, f"{where}: expected a whole number, got {_show(v)}") from None
    if isinstance(n, float) and (not math.isfinite(n) or n != int(n)) or not 0 <= n <= MAX_COUNT:
        raise InputError(change.file or None, f"{where}: expected a whole number 0..{MAX_COUNT:,}, got {_show(v)}")
    return int(n)


@cache
def _catalog() -> dict[str, dict[str, object]]:
    from . import units

    out: dict[str, dict[str, object]] = {}
    for r in units.instance_types():
        out.setdefault(units.type_key(str(r["instance_type"])), r)
    return out


def _catalog_entry(instance_type: str) -> dict[str, object] | None:
    from . import units

    return _catalog().get(units.type_key(instance_type))


def _tags(values: dict | None, unknown: Any, spec: TypeSpec) -> tuple[dict[str, str] | None, bool, set[str]]:
    """(tags, whole map unknown, keys whose value is unknown) of one state; tags None: the type carries none."""
    if not spec.tags:
        return None, False, set()
    later = False   # tags_all is unknown: keys missing from tags (read next) are unknown, not absent
    for alt in (a.strip() for a in spec.tags.split(";") if a.strip()):
        alt, _, cond = alt.partition("?")
        v, u = _node(values, unknown, alt.split("."))
        if v is UNKNOWN:
            # only the AWS provider's tags_all (the resource's tags plus the provider's default_tags) holds the
            # next alternative's keys; any other unknown alternative (a launch template's tag_specifications) is
            # the instances' tags, unknown -- the template's own tags_all never reach its instances
            if alt.rsplit(".", 1)[-1] != "tags_all":
                return {}, True, set()
            later = True
            continue
        maps: list[tuple[Any, Any]] = v if isinstance(v, list) and v and isinstance(v[0], tuple) else [(v, u)]
        out: dict[str, str] = {}
        whole, keys = False, set()
        for m, mu in maps:
            if m is UNKNOWN:
                whole = True
                continue
            if spec.tags_format == "key_value_list":
                for j, item in enumerate(m if isinstance(m, list) else []):
                    if isinstance(item, dict) and isinstance(item.get("key"), str):
                        val = item.get("value")
                        iu = mu[j] if isinstance(mu, list) and j < len(mu) else None
                        if cond:  # `list?path=a|b`: only the elements that reach the bill (propagate_at_launch)
                            cpath, _, want = cond.partition("=")
                            cv, _ = _node(item, iu, cpath.split("."))
                            if cv is UNKNOWN:
                                keys.add(item["key"])
                                continue
                            text = json.dumps(cv) if isinstance(cv, bool) else str(cv)
                            if text.lower() not in {w.lower() for w in want.split("|")}:
                                continue
                        if iu is True or isinstance(iu, dict) and iu.get("value") is True:
                            keys.add(item["key"])
                        elif isinstance(val, str | int | float) and not isinstance(val, bool):
                            out[item["key"]] = str(val)
            elif isinstance(m, dict) or isinstance(mu, dict):
                out.update({str(k): str(x) for k, x in (m or {}).items() if isinstance(x, str | int | float)
                            and not isinstance(x, bool)})
                if isinstance(mu, dict):
                    keys |= {str(k) for k, x in mu.items() if x is True}
        if out or whole or keys:
            return out, whole or later, keys
    return {}, later, set()


def _region(values: dict | None, provider_region: Any, default: str | None) -> Any:
    if isinstance(values, dict):
        r = values.get("region")
        if isinstance(r, str) and r:
            return r
        az = values.get("availability_zone")
        if isinstance(az, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", az):
            return az[:-1]
    return provider_region or default  # UNKNOWN (an expression in the provider block) is never the default


#: A zone name (``us-central1-a``): a GKE pool located in one zone runs there when its node_locations are not set.
_ZONE_RE = re.compile(r"[a-z]+(?:-[a-z]+)*\d+-[a-z]")


def _count_at(root: Any, ru: Any, spec: str, change: Change, side: str, prefix: str, unknowns: list[str],
              location: Any = None) -> Any:
    """A count attribute of a pool: a whole number (x zones for a per-zone count), UNKNOWN or None.

    A per-zone count whose zone list is not in the plan (GKE's node_locations is Optional+Computed: known after
    apply when not set) is in one zone when the pool's ``location`` is a zone -- a zonal cluster's pools run in
    its zone -- and unknown otherwise (a regional pool's zones are the cluster's, not in the plan)."""
    v, path, factor = _value_at(root, ru, spec)
    n = _int(v, change, _jpath(change, side, prefix + path))
    if factor is UNKNOWN and isinstance(location, str) and _ZONE_RE.fullmatch(location):
        factor = 1
    if n is UNKNOWN:
        unknowns.append(prefix + (path or spec.split(";")[0]))
    elif n and factor is UNKNOWN:
        per = next((a.partition(" per ")[2].strip() for a in spec.split(";") if " per " in a), "zones")
        unknowns.append(f"{per} (zones of a per-zone count)")
        return UNKNOWN
    elif n:
        return n * factor
    return n  # None or 0 (0 in every zone is 0)


def _state(change: Change, side: str, spec: TypeSpec, lt: State | None, provider_region: Any,
           rules: Guardrails, amis: dict[str, str] | None = None) -> State | None:
    values = change.after if side == "after" else change.before
    if values is None:
        return None
    unknown = change.after_unknown if side == "after" else {}
    unknowns: list[str] = []
    roots: list[tuple[Any, Any, str]] = []
    if spec.pool:
        v, _ = _node(values, unknown, spec.pool.split("."))
        if v is UNKNOWN:
            unknowns.append(spec.pool)
        elif isinstance(v, list):
            roots = [(x, xu, f"{spec.pool.rstrip('*').rstrip('.')}.{j}") for j, (x, xu) in enumerate(v)
                     if isinstance(x, dict)]
    else:
        roots = [(values, unknown, "")]
    pools = []
    for root, ru, label in roots:
        itype = _value(root, ru, spec.instance_type, label)
        if itype is None and lt is not None and lt.pools:
            itype = lt.pools[0].instance_type
        prefix = f"{label}." if label else ""
        location = next((x.get("location") for x in (root, values) if isinstance(x, dict) and x.get("location")),
                        None)
        count = _count_at(root, ru, spec.count, change, side, prefix, unknowns, location) if spec.count else 1
        max_count = _count_at(root, ru, spec.max_count, change, side, prefix, unknowns, location) \
            if spec.max_count else None
        if itype is UNKNOWN:
            unknowns.append(prefix + spec.instance_type.split(";")[0])
        per, model, family = None, None, None
        if isinstance(itype, str) and spec.kind != "provisioned":
            cat = _catalog_entry(itype)
            if cat is not None:
                per, model, family = cat["accelerators"], cat.get("accelerator"), str(cat["family"])  # a fraction: g6f
        if spec.accelerators and (per in (None, 0)):
            attached, _ = _node(values, unknown, spec.accelerators.split("."))
            if attached is UNKNOWN:
                per = UNKNOWN
                unknowns.append(spec.accelerators)
            elif isinstance(attached, list) and attached:
                n_att = 0
                for j, (blk, bu) in enumerate(attached):
                    if not isinstance(blk, dict):
                        continue
                    typ = _value(blk, bu, spec.accelerator_type, "")
                    cnt_v, cnt_path, _ = _value_at(blk, bu, spec.accelerator_count)
                    cnt = _int(cnt_v, change, _jpath(change, side, f"{spec.accelerators.rstrip('*').rstrip('.')}"
                                                                   f".{j}.{cnt_path}"))
                    if typ is UNKNOWN or cnt is UNKNOWN:
                        n_att = UNKNOWN
                        unknowns.append(f"{spec.accelerators.rstrip('*').rstrip('.')}.{j}")
                        break
                    n_att += cnt or 0
                    if isinstance(typ, str) and not model:
                        model = typ.rsplit("/", 1)[-1]
                per = n_att
        if spec.kind == "provisioned":
            per = 0
        elif per is None and isinstance(itype, str):
            per = 0 if not _looks_accelerated(itype, spec.provider) else None
        pools.append(Pool(itype, count, max_count, per, model, family))
    tags, tags_unknown, unknown_keys = _tags(values, unknown, spec)
    if lt is not None and lt.tags is not None:
        tags = {**lt.tags, **(tags or {})}
        tags_unknown = tags_unknown or lt.tags_unknown
        unknown_keys |= lt.unknown_tag_keys
    if tags_unknown or unknown_keys:
        unknowns.append(spec.tags.split(";")[0].partition("?")[0] + (f" ({', '.join(sorted(unknown_keys))})" if unknown_keys else ""))
    spot = _test(values, unknown, spec.spot)
    if spot is False and lt is not None:
        spot = lt.spot
    on_demand = None
    if spec.on_demand_base or spec.on_demand_percentage:
        base_v, base_p, _ = _value_at(values, unknown, spec.on_demand_base)
        pct_v, pct_p, _ = _value_at(values, unknown, spec.on_demand_percentage)
        if base_v is UNKNOWN or pct_v is UNKNOWN:
            spot = UNKNOWN
            unknowns.append(base_p if base_v is UNKNOWN else pct_p)
        elif base_v is not None or pct_v is not None:
            base = _int(base_v, change, _jpath(change, side, base_p)) or 0
            pct = 100 if pct_v is None else _int(pct_v, change, _jpath(change, side, pct_p))
            if pct > 100:
                raise InputError(change.file or None, f"{_jpath(change, side, pct_p)} ({change.address}): expected a "
                                                      f"percentage 0..100, got {_show(pct_v)}")
            on_demand = (base, pct)
            tops = [p.max_count if p.max_count is not None else p.count for p in pools]
            spot = UNKNOWN if any(t is UNKNOWN for t in tops) else \
                all(_on_demand_count(t or 0, base, pct) == 0 for t in tops)  # spot only if no instance is on demand
    idle = _test(values, unknown, spec.idle_shutdown)
    prov = _test(values, unknown, spec.provisioned)
    for val, attr in ((spot, spec.spot), (idle, spec.idle_shutdown), (prov, spec.provisioned)):
        if val is UNKNOWN:
            unknowns.append(attr.split("=")[0].split(";")[0])
    region = _region(values, provider_region, rules.default_region)
    secret: set[str] = set()
    if side == "after" and change.after_sensitive and tags:
        for alt in (a.strip() for a in spec.tags.split(";") if a.strip()):
            mark, _ = _node(change.after_sensitive, None, alt.partition("?")[0].split("."))
            marks = [m for m, _ in mark] if isinstance(mark, list) and mark and isinstance(mark[0], tuple) else [mark]
            for m in marks:
                if m is True:
                    secret |= set(tags.values())
                elif isinstance(m, dict):
                    secret |= {tags[k] for k, v in m.items() if v is True and k in tags}
    os_name = _operating_system(values, unknown, spec.operating_system, amis or {})
    if (os_name is None or os_name is UNKNOWN) and lt is not None and lt.operating_system is not None:
        os_name = lt.operating_system  # an autoscaling / node group runs its launch template's image
    return State(pools, tags, tags_unknown, spot, idle, prov, region, sorted(set(unknowns)), unknown_keys, secret,
                 on_demand, os_name)


def _operating_system(values: dict | None, unknown: Any, spec: str, amis: dict[str, str]) -> Any:
    """The OS a state runs as far as the plan says (the ``operating_system`` column): a name, UNKNOWN, or None.

    Why: a Windows hour costs the Linux price plus its licence (g5.12xlarge us-east-1: $7.88 vs $5.672/h), and
    ``azurerm_windows_virtual_machine`` says so by its type; an ``aws_instance`` has no OS argument, so only
    ``get_password_data`` (Windows only) or an AMI the plan read tells. An unknown value stops the search (a
    later alternative would be a guess).
    """
    for alt in (a.strip() for a in spec.split(";") if a.strip()):
        name, sep, test = (x.strip() for x in alt.partition(":"))
        if not sep:
            return name
        if name == "ami":
            v, _ = _node(values, unknown, test.split("."))
            if v is UNKNOWN:
                return UNKNOWN
            if isinstance(v, str) and v in amis:
                return amis[v]
            continue
        m = re.fullmatch(r"([^=~]+)(?:([=~])(.*))?", test)
        if not m:
            continue
        path, op, want = m.group(1).strip(), m.group(2), m.group(3) or ""
        v, _ = _node(values, unknown, path.split("."))
        if v is UNKNOWN:
            return UNKNOWN
        if _empty(v):
            continue
        if not op:
            return name
        text = (json.dumps(v) if isinstance(v, bool) else str(v)).lower()
        wants = [w.strip().lower() for w in want.split("|") if w.strip()]
        if op == "=" and text in wants or op == "~" and any(w in text for w in wants):
            return name
    return None


def _ami_platforms(doc: dict) -> dict[str, str]:
    """AMI id -> OS of the AMIs the plan read: ``data.aws_ami`` in ``prior_state`` (data sources are read while
    planning), through their ``platform_details`` (the AMI billing platform: 'Windows', 'Linux/UNIX', 'Red Hat
    Enterprise Linux', ...) and ``data/ec2_product_descriptions.csv``; a platform that table does not name (Windows
    with SQL Server, BYOL) keeps its own name, which no price row carries: not priced rather than priced as Linux.
    ``platform`` = 'windows' alone is Windows."""
    from .spot_prices import product_operating_systems

    names = {str(d).lower(): str(o) for d, o in product_operating_systems().itertuples(index=False)}
    out: dict[str, str] = {}

    def get(d: Any, key: str) -> Any:  # a plan is input: any level may be of another JSON type
        return d.get(key) if isinstance(d, dict) else None

    mods = [get(get(get(doc, "prior_state"), "values"), "root_module"), get(get(doc, "planned_values"), "root_module")]
    while mods:
        mod = mods.pop()
        if not isinstance(mod, dict):
            continue
        children = get(mod, "child_modules")
        mods.extend(children if isinstance(children, list) else [])
        resources = get(mod, "resources")
        for r in resources if isinstance(resources, list) else []:
            if get(r, "mode") != "data" or get(r, "type") != "aws_ami" or not isinstance(get(r, "values"), dict):
                continue
            v = r["values"]
            details = v.get("platform_details")
            os_name = names.get(details.lower(), details) if isinstance(details, str) and details else \
                ("Windows" if str(v.get("platform") or "").lower() == "windows" else None)
            for key in ("id", "image_id"):
                if os_name and isinstance(v.get(key), str) and v[key]:
                    out[v[key]] = os_name
    return out


def _on_demand_count(n: int, base: int, pct: int) -> int:
    """On-demand instances of ``n`` in a spot mix: all up to the base, then ``pct`` % of the rest (rounded up)."""
    return min(n, base) + math.ceil(max(n - base, 0) * pct / 100)


@cache
def _accelerated_patterns() -> tuple[tuple[str, str], ...]:
    from .classify import ai_rules

    return tuple((r["provider_pattern"], r["pattern"]) for r in ai_rules() if r["column"] == "x_InstanceType")


def _looks_accelerated(itype: str, provider: str) -> bool:
    """Whether ``data/ai_workloads.csv`` calls an instance type missing from the catalog accelerated (then its
    accelerator count is unknown rather than 0)."""
    from . import units

    key = units.type_key(itype)
    for prov, pat in _accelerated_patterns():
        try:
            if re.search(_py_re(prov), provider) and (re.search(_py_re(pat), itype) or re.search(_py_re(pat), key)):
                return True
        except re.error:
            continue
    return False


def _py_re(pattern: str) -> str:
    """RE2 patterns of the data tables in Python: a leading (?i) anywhere is made global."""
    return ("(?i)" + pattern.replace("(?i)", "")) if "(?i)" in pattern else pattern


# --------------------------------------------------------------------------------------- configuration
def _config_index(doc: dict) -> dict[tuple[tuple[str, ...], str], dict]:
    """(module call path, 'type.name') -> the resource's configuration block, built once per plan (a scan per
    resource would be quadratic on plans of thousands of resources)."""
    cached = doc.get("_finops_config_index")
    if isinstance(cached, dict):
        return cached
    index: dict[tuple[tuple[str, ...], str], dict] = {}
    stack: list[tuple[tuple[str, ...], Any, int]] = [((), (doc.get("configuration") or {}).get("root_module"), 0)]
    while stack:
        path, mod, depth = stack.pop()
        if not isinstance(mod, dict) or depth > 100:
            continue
        for r in mod.get("resources") or []:
            if isinstance(r, dict) and isinstance(r.get("address"), str):
                index.setdefault((path, r["address"]), r)
        for name, call in (mod.get("module_calls") or {}).items():
            if isinstance(call, dict):
                stack.append(((*path, str(name)), call.get("module"), depth + 1))
    doc["_finops_config_index"] = index
    return index


def _resource_config(doc: dict, ch: Change) -> dict | None:
    path = tuple(re.findall(r"module\.([^.\[]+)", ch.module_address or ""))
    return _config_index(doc).get((path, f"{ch.type}.{ch.name}"))


def _provider_region(doc: dict, ch: Change) -> Any:
    """The ``region`` of the provider block a resource uses (root or module provider config): its constant, the
    plan's value of a root variable it references, UNKNOWN for any other expression (never another block's region),
    None when the block sets none."""
    cfg = _resource_config(doc, ch)
    key = (cfg or {}).get("provider_config_key") or ch.type.split("_", 1)[0]
    pcs = (doc.get("configuration") or {}).get("provider_config") or {}
    for k in (key, key.split(":")[-1]):
        pc = pcs.get(k)
        if not isinstance(pc, dict):
            continue  # no block under the module's key: the module inherits the root provider
        expr = (pc.get("expressions") or {}).get("region")
        if not isinstance(expr, dict) or not expr:
            return None
        region = expr.get("constant_value")
        if isinstance(region, str) and region:
            return region
        refs = expr.get("references") or []
        if not pc.get("module_address") and refs and isinstance(refs[0], str) and refs[0].startswith("var."):
            var = ((doc.get("variables") or {}).get(refs[0][4:]) or {}).get("value")
            if isinstance(var, str) and var:
                return var
        return UNKNOWN
    return None


def _launch_template(doc: dict, ch: Change, spec: TypeSpec, side: str, by_key: dict[str, list[Change]]
                     ) -> Change | None:
    """The aws_launch_template change an autoscaling group / node group uses, by id, name or config reference."""
    if not spec.launch_template:
        return None
    values = ch.after if side == "after" else ch.before
    for alt in spec.launch_template.split(";"):
        blk, _ = _node(values, ch.after_unknown if side == "after" else {}, alt.split("."))
        if isinstance(blk, dict):
            for key in ("id", "launch_template_id", "name", "launch_template_name"):
                val = blk.get(key)
                if isinstance(val, str) and val and by_key.get(val):
                    return by_key[val][0]
    # created in the same plan: the id is unknown; follow the configuration's reference
    cfg = _resource_config(doc, ch)
    for alt in spec.launch_template.split(";"):
        expr: Any = (cfg or {}).get("expressions")
        for part in alt.split("."):
            expr = expr[int(part)] if part.isdigit() and isinstance(expr, list) and int(part) < len(expr) else \
                (expr.get(part) if isinstance(expr, dict) else None)
        if not isinstance(expr, dict):
            continue
        for key in ("id", "launch_template_id", "name", "launch_template_name"):
            refs = (expr.get(key) or {}).get("references") if isinstance(expr.get(key), dict) else None
            for ref in refs or []:
                m = re.fullmatch(r"aws_launch_template\.([A-Za-z0-9_-]+)(\[.*\])?(\.\w+)?", str(ref))
                if m:
                    base = (f"{ch.module_address}." if ch.module_address else "") + f"aws_launch_template.{m.group(1)}"
                    cands = by_key.get(base, [])
                    same = [c for c in cands if c.index == ch.index]
                    if len(cands) == 1 or len(same) == 1:
                        return cands[0] if len(cands) == 1 else same[0]
    return None


def _lt_version(ch: Change, spec: TypeSpec) -> str | None:
    """The launch template version a group's after state asks for ('$Latest', '$Default', a number), None unset."""
    for alt in spec.launch_template.split(";"):
        blk, _ = _node(ch.after, ch.after_unknown, alt.split("."))
        if isinstance(blk, dict):
            v = blk.get("version")
            return str(v) if v not in (None, "") else None
    return None


# ------------------------------------------------------------------------------------------------ prices
@dataclass(frozen=True)
class PriceBook:
    """On-demand prices (per instance-hour) and spot savings the estimate uses, with their source."""

    ondemand: dict[tuple[str, str, str], tuple[Decimal, str, str]]   # (type, region, OS) -> (usd/h, date, source)
    spot_savings: dict[tuple[str, str, str], int]                     # (type, region, OS) -> savings % vs on demand
    spot_source: str

    @classmethod
    def load(cls, prices: str | None = None) -> PriceBook:
        from .spot import BUNDLED_ADVISOR, load_advisor, ondemand_prices

        od = {}
        df = ondemand_prices(prices)
        for r in df.itertuples():
            od.setdefault((str(r.instance_type), str(r.region), str(r.operating_system)),
                          (Decimal(str(r.usd_per_hour)), str(r.price_date), str(r.source)))
        adv = load_advisor().table
        savings = {(str(t), str(rg), str(o)): int(s) for t, rg, o, s in zip(adv.instance_type, adv.region, adv.os,
                                                                             adv.savings_pct, strict=True)}
        return cls(od, savings, f"EC2 Spot Advisor feed {Path(BUNDLED_ADVISOR).stem.split('_')[-1]} "
                                f"(savings vs on-demand)")

    def price(self, spec: TypeSpec, state: State) -> Priced:
        """Monthly cost of a state: instances x on-demand (or spot) rate x hours per month, at the price of the OS
        the plan says (a Windows price carries the licence), else the Linux price (``Priced.os_assumed``): a Windows
        g5.12xlarge was priced $4,143.40 a month instead of $5,756.34, and nothing said the price was Linux's."""
        from . import units

        said = state.operating_system if isinstance(state.operating_system, str) else None
        os_name = said or "Linux"

        if spec.kind == "template":
            return Priced(Decimal(0), "a launch template runs nothing itself (priced on its group)", "priced")
        if spec.kind == "provisioned":
            if state.provisioned is UNKNOWN:
                return Priced(None, "sku known after apply", "unknown")
            if state.provisioned is False:
                return Priced(None, "billed per token: no fixed monthly cost in the plan", "not priced")
            return Priced(None, "no provisioned-throughput price in the kit's tables", "not priced")
        if state.unknown and any(p.instance_type is UNKNOWN or p.count is UNKNOWN for p in state.pools):
            return Priced(None, "known after apply: " + ", ".join(state.unknown), "unknown")
        if not state.pools:
            if state.unknown:
                return Priced(None, "known after apply: " + ", ".join(state.unknown), "unknown")
            return Priced(Decimal(0), "no instances", "priced")
        total = Decimal(0)
        bases = []
        for p in state.pools:
            if not p.count:
                continue
            if not isinstance(p.instance_type, str):
                return Priced(None, "no instance type (serverless or not set)", "not priced")
            sagemaker = units.is_sagemaker_type(p.instance_type)
            if spec.provider != "AWS" or sagemaker:
                what = "SageMaker ml.* instances" if sagemaker else spec.provider
                return Priced(None, f"no {what} price in the kit's tables ({p.instance_type}"
                                    f"{', ' + said if said else ''})", "not priced")
            if state.region is UNKNOWN:
                return Priced(None, "region unknown: the provider block's region is an expression the plan does not "
                                    "resolve", "not priced")
            if state.region is None:
                return Priced(None, "region unknown (set guardrails.default_region)", "not priced")
            hit = self.ondemand.get((p.instance_type, state.region, os_name))
            if hit is None:
                if said and said != "Linux":
                    return Priced(None, f"no {said} on-demand price for {p.instance_type} in {state.region} in the "
                                        f"price table (the plan says {said}; the Linux price would understate it)",
                                  "not priced")
                return Priced(None, f"{p.instance_type} in {state.region} not in the on-demand price table",
                              "not priced")
            rate, date, source = hit
            basis = f"{p.instance_type} {state.region} {said + ' ' if said else ''}on-demand ${rate}/h ({date}, {source})"
            if state.spot is UNKNOWN:
                return Priced(None, "spot setting known after apply", "unknown")
            n_spot = p.count if state.spot else 0
            if state.on_demand is not None:  # a spot mix: the base and a percentage above it stay on demand
                n_spot = p.count - _on_demand_count(p.count, *state.on_demand)
            n_od = p.count - n_spot
            if n_od:
                total += rate * n_od * Decimal(str(HOURS_PER_MONTH))
                bases.append(f"{n_od} x {basis}")
            if n_spot:
                s = self.spot_savings.get((p.instance_type, state.region, os_name))
                if s is None:
                    return Priced(None, f"spot: no Spot Advisor {os_name} savings for {p.instance_type} in "
                                        f"{state.region}", "not priced")
                total += rate * (100 - s) / 100 * n_spot * Decimal(str(HOURS_PER_MONTH))
                bases.append(f"{n_spot} x {basis} - {s}% spot savings ({self.spot_source})")
        return Priced(total.quantize(Decimal("0.01")), "; ".join(bases) or "no instances", "priced",
                      os_assumed=bool(bases) and not said)


# ------------------------------------------------------------------------------------------- attribution
def _attribute(resources: list[Resource], cfg: dict, warehouse: Any = None,
               rules: Guardrails | None = None) -> Any:
    """Judge every state's tags by ``tag_policy`` through :class:`~finops_kit.attribution.Attribution`.

    The tags of the plan become rows (Tags JSON) of a small DuckDB table, and the attribution the tagging audit uses
    maps them: aliases, case/separator variants, value aliases, allowed values and patterns all apply. Fills
    ``Resource.attrs[side][key] = (status, canonical value, raw key)`` and ``Resource.attrs["shared"][side]``
    (the allocation key's value is one of ``allocation.shared.tag_values``); returns the attribution.

    Which spelling a value folds onto is the one the rest of the kit shows (``fk.costs(by='team')``):

    * with a ``warehouse`` (a path or an open connection), the maps are built over its FOCUS table plus the plan's
      rows at zero cost -- the warehouse's dollars decide, exactly as :attr:`finops_kit.scope.Scope.attribution`;
    * without one, the names the guardrails judge by (``max_accelerators.per_team`` keys) are spellings too, and
      win over the plan's own: a plan tagging ``team=NLP`` was reported as ``team=NLP`` and judged by the
      ``default`` limit while the bill and the limit say ``nlp`` (review s17).
    """
    import duckdb

    from .attribution import Attribution, values_sql
    from .sources.base import ident, sql_str

    rows = []
    for i, r in enumerate(resources):
        for side in ("before", "after"):
            st = getattr(r, side)
            if st is not None and st.tags is not None:
                tags: dict[str, str | None] = {**st.tags, **{k: None for k in st.unknown_tag_keys}}
                rows.append((i * 2 + (side == "after"), json.dumps(tags), 1))
    policy = {"tag_policy": cfg.get("tag_policy") or {}}
    own = warehouse is not None and not isinstance(warehouse, str | os.PathLike)
    if warehouse is None:
        con = duckdb.connect()
        source = "_guard_rows"
        team_key = (rules.team_key if rules else None) or ((cfg.get("allocation") or {}).get("key") or "team")
        names = [n for n in (rules.per_team if rules else {}) if n not in ("default", SHARED)]
        # the config's spellings outweigh every plan row (rows carry cost 1 each)
        weight = len(rows) + 1
        extra = [(-1 - j, json.dumps({team_key: n}), weight) for j, n in enumerate(names)]
    else:
        from .warehouse import FOCUS_TABLE, connect

        con = warehouse if own else connect(warehouse, read_only=True, quiet=True)
        source = (f"(SELECT Tags, EffectiveCost FROM {FOCUS_TABLE} "
                  "UNION ALL SELECT Tags, CAST(0 AS DECIMAL(18,2)) FROM _guard_rows)")
        extra = []
    try:
        table = values_sql(rows + extra or [(-1, "{}", 0)], ["rid", "Tags", "EffectiveCost"],
                           ["INTEGER", "JSON", "DECIMAL(18,2)"])
        con.execute(f"CREATE OR REPLACE TEMP TABLE _guard_rows AS {table}")
        attr = Attribution.build(con, source if warehouse is not None else "_guard_rows", policy,
                                 {"allocation": cfg.get("allocation") or {}})
        keys = list(attr.policy.keys)
        cols = ", ".join(f"{attr.raw_value_sql(k)} AS {ident(k + '_raw')}, "
                         f"{attr.value_sql(k)} AS {ident(k + '_ok')}" for k in keys)
        shared_vals = [v.lower() for v in attr.allocation.shared_tag_values]
        akey = attr.allocation.key
        shared = (f"coalesce(lower({attr.value_sql(akey, valid_only=False)}) IN "
                  f"({', '.join(sql_str(v) for v in shared_vals)}), FALSE)"
                  if shared_vals and akey in attr.policy.keys else "FALSE")
        got = con.execute(f"SELECT rid, {cols}, {shared} FROM _guard_rows WHERE rid >= 0").fetchall()
        near = dict(con.execute(f"SELECT raw_key, canon_key FROM {attr.keymap} "
                                "WHERE key_match = 'near-duplicate'").fetchall())
        counted = dict(con.execute(f"SELECT raw_key, canon_key FROM {attr.keymap} WHERE counts").fetchall())
    finally:
        if own:
            con.execute("DROP TABLE IF EXISTS _guard_rows")
        else:
            con.close()
    for row in got:
        rid = row[0]
        r = resources[rid // 2]
        side = "after" if rid % 2 else "before"
        st = getattr(r, side)
        out = {}
        pending = {counted[k] for k in st.unknown_tag_keys if k in counted}
        for j, k in enumerate(keys):
            raw, ok = row[1 + 2 * j], row[2 + 2 * j]
            if k in pending or (st.tags_unknown and raw is None):
                out[k] = ("unknown", None, None)
            elif raw is None:
                hint = next((rk for rk in (st.tags or {}) if near.get(rk) == k), None)
                out[k] = ("missing", None, hint)
            elif not str(raw).strip():
                out[k] = ("empty", None, None)
            elif ok is None:
                out[k] = ("invalid", raw, None)
            else:
                out[k] = ("ok", ok, None)
        r.attrs[side] = out
        r.attrs.setdefault("shared", {})[side] = bool(row[-1])
    return attr


# --------------------------------------------------------------------------------------------- findings
@dataclass
class Check:
    """One rule applied to one subject (a resource address, a team, a user or the whole plan)."""

    rule: str
    subject: str
    status: str                      # pass | violation | unknown
    message: str
    impact: Decimal | None = None    # monthly $ the subject adds (None: not priced)


@dataclass
class GuardResult:
    """What ``finops-kit guard`` found in one plan."""

    plan: str
    terraform_version: str | None
    resources: list[Resource]
    checks: list[Check]
    ignored: int                     # managed resources of types the guard does not price or judge
    price_source: str
    rules: Guardrails

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if c.status == "violation"]

    @property
    def unknowns(self) -> list[Check]:
        return [c for c in self.checks if c.status == "unknown"]

    @property
    def exit_code(self) -> int:
        return 1 if self.violations or (self.rules.fail_on_unknown and self.unknowns) else 0

    def totals(self) -> dict[str, Any]:
        """Monthly before / after / delta of the priced resources, and what the total excludes."""
        before = after = Decimal(0)
        excluded: list[tuple[str, str]] = []
        for r in self.resources:
            if r.unchanged:
                continue
            d = r.delta
            if d is None:
                side = next(c for c in (r.cost_before, r.cost_after) if c is not None and c.monthly is None)
                excluded.append((r.address, f"{side.status}: {side.basis}"))
                continue
            before += r.cost_before.monthly if r.cost_before else Decimal(0)
            after += r.cost_after.monthly if r.cost_after else Decimal(0)
        return {"before": before, "after": after, "delta": after - before, "excluded": excluded}


def evaluate(plan_path: str | os.PathLike, config: dict | str | os.PathLike | None = None,
             *, types_path: str | None = None, warehouse: Any = None) -> GuardResult:
    """Read a plan, price it and apply the ``guardrails`` of ``config`` (a dict, a path, or the default file).

    ``warehouse`` (a path or an open connection, optional): the plan's tag values are spelled as the warehouse
    spells them (:func:`_attribute`), so ``team=NLP`` on the plan is the ``nlp`` the bill and the reports show."""
    cfg = config if isinstance(config, dict) else load_config(config)
    where = "config" if isinstance(config, dict) else Path(str(config or os.environ.get("FINOPS_CONFIG")
                                                                  or "finops.yaml")).name
    rules = Guardrails.from_dict(section(cfg, "guardrails", {}), where)
    doc, changes = read_plan(plan_path)
    types = resource_types(types_path)
    lt_by: dict[str, list[Change]] = {}
    for ch in changes:
        if ch.type == "aws_launch_template":
            base = re.sub(r"\[[^\]]*\]$", "", ch.address)
            lt_by.setdefault(base, []).append(ch)
            for vals in (ch.after, ch.before):
                for key in ("id", "name"):
                    if isinstance(vals, dict) and isinstance(vals.get(key), str) and vals[key]:
                        lt_by.setdefault(vals[key], []).append(ch)
    resources, ignored = [], 0
    lt_states: dict[tuple[str, str], State | None] = {}
    amis = _ami_platforms(doc)
    for ch in changes:
        spec = types.get(ch.type)
        if spec is None:
            ignored += 1
            continue
        region = _provider_region(doc, ch) if spec.provider == "AWS" else None
        sides = {}
        for side in ("before", "after"):
            lt_ch = _launch_template(doc, ch, spec, side, lt_by)
            lt = None
            if lt_ch is not None:
                key = (lt_ch.address, side)
                if key not in lt_states:
                    lt_states[key] = _state(lt_ch, side, types["aws_launch_template"], None,
                                            _provider_region(doc, lt_ch), rules, amis)
                lt = lt_states[key]
            sides[side] = _state(ch, side, spec, lt, region, rules, amis)
            if side == "after" and ch.action == "no-op" and lt_ch is not None and \
                    lt_ch.action in ("create", "update", "replace"):
                version = _lt_version(ch, spec)
                if version in ("$Latest", "$Default", None):
                    # the group launches the template's new version: effectively changed (Terraform shows no-op)
                    ch.actions = ("update",)
                    ch.via = f"no-op in the plan; its launch template {lt_ch.address} changes (version " \
                             f"{version or '$Default'})"
        if ch.action == "forget":
            sides["after"] = sides["before"]  # removed { destroy = false }: still runs and bills, just unmanaged
        resources.append(Resource(ch, spec, sides["before"], sides["after"]))
    book = PriceBook.load(rules.prices)
    for r in resources:
        r.cost_before = book.price(r.spec, r.before) if r.before else None
        r.cost_after = book.price(r.spec, r.after) if r.after else None
    attr = _attribute(resources, cfg, warehouse, rules)
    checks = _checks(resources, rules, attr)
    # one line, not one per resource: how many priced changes the plan leaves the OS of (Linux price taken)
    assumed = sum(1 for r in resources if not r.unchanged and any(c is not None and c.os_assumed
                                                                  for c in (r.cost_before, r.cost_after)))
    os_note = (f"; Linux prices for {assumed} resource(s) whose operating system the plan does not say (a Windows, "
               f"RHEL or SUSE instance costs more)" if assumed else "")
    source = (f"on-demand: {rules.prices or 'finops_kit/data/ec2_ondemand_prices.csv'} (dated per row){os_note}; "
              f"spot: {book.spot_source}; {HOURS_PER_MONTH} hours per month")
    return GuardResult(str(plan_path), doc.get("terraform_version"), resources, checks, ignored, source, rules)


def _is_ai(r: Resource, st: State) -> bool:
    if r.spec.ai == "always":
        return True
    acc = st.accelerators()
    return acc is UNKNOWN or acc > 0


def _checks(resources: list[Resource], rules: Guardrails, attr: Any) -> list[Check]:
    policy = attr.policy
    team_key = rules.team_key or attr.allocation.key
    env_key = policy.environment_key
    for k, what in ((team_key, "team_key"), (rules.user_key, "user_key")):
        if (what == "team_key" and rules.per_team or what == "user_key" and rules.per_user is not None) \
                and k not in policy.keys:
            raise ConfigError(f"guardrails.{what}: {k!r} is not a tag_policy key ({', '.join(policy.keys)})")
    checks: list[Check] = []
    changed = [r for r in resources if r.changed and r.after is not None]

    def val(r: Resource, key: str | None, side: str = "after") -> str | None:
        s = r.attrs.get(side, {}).get(key or "")
        return s[1] if s and s[0] == "ok" else None

    def is_later(r: Resource, key: str | None, side: str = "after") -> bool:
        """The tag's value is known only after apply (never '(untagged)')."""
        s = r.attrs.get(side, {}).get(key or "")
        return bool(s) and s[0] == "unknown"

    def who_of(r: Resource, key: str | None, side: str = "after") -> str:
        """The team (owner) as the bill shows it: a shared value of the allocation key is ``(shared)``
        (:meth:`~finops_kit.attribution.Attribution.owner_sql`), as in ``fk.costs(by='team')``."""
        if key == attr.allocation.key and r.attrs.get("shared", {}).get(side):
            return SHARED
        return val(r, key, side) or (LATER if is_later(r, key, side) else "(untagged)")

    # required tags: the tag_policy keys the bill needs, judged like the bill
    if rules.required_tags:
        for r in changed:
            st = r.after
            assert st is not None
            if st.tags is None:
                continue
            need = [k for k, kp in policy.keys.items() if kp.required == "all" or
                    (kp.required == "ai" and _is_ai(r, st))]
            bad, pending = [], []
            for k in need:
                status, raw, hint = r.attrs.get("after", {}).get(k, ("missing", None, None))
                if status == "ok":
                    continue
                if status == "unknown":
                    pending.append(k)
                    continue
                kp = policy.keys[k]
                if status == "missing":
                    bad.append(f"{k} missing" + (f" (found {hint!r}, a near-duplicate of the key)" if hint else ""))
                elif status == "empty":
                    bad.append(f"{k} empty")
                else:
                    shown = "(sensitive value)" if raw in st.sensitive_values else repr(raw)
                    bad.append(f"{k}={shown} is not {kp.describe_rule()}")
            if bad:
                later = f"; {', '.join(pending)} known after apply" if pending else ""
                checks.append(Check("required_tags", r.address, "violation",
                                    "tag_policy: " + "; ".join(bad) + later, r.delta))
            elif pending:
                checks.append(Check("required_tags", r.address, "unknown",
                                    f"tag value known after apply: {', '.join(pending)}", r.delta))
            else:
                checks.append(Check("required_tags", r.address, "pass", "required tags present and valid"))

    # accelerator limits
    def acc(st: State | None) -> Any:
        return 0 if st is None else st.accelerators()

    if rules.per_change is not None:
        before = after = 0
        unknown = []
        for r in resources:
            if r.unchanged:
                continue
            a, b = acc(r.after), acc(r.before)
            if a is UNKNOWN or b is UNKNOWN:
                unknown.append(r.address)
                continue
            before += b
            after += a
        added = after - before
        adders = [r for r in resources if not r.unchanged and acc(r.after) is not UNKNOWN
                  and acc(r.before) is not UNKNOWN and acc(r.after) > acc(r.before)]
        impact = _impact(adders)
        if added > rules.per_change:
            checks.append(Check("max_accelerators_per_change", "plan", "violation",
                                f"the plan adds {added} accelerators (at autoscaling maximum), above the limit "
                                f"of {rules.per_change}" + (f"; plus unknown counts on {', '.join(unknown)}"
                                                            if unknown else ""), impact))
        elif unknown:
            checks.append(Check("max_accelerators_per_change", "plan", "unknown",
                                f"the plan adds at least {added} accelerators; counts known after apply on "
                                f"{', '.join(unknown)}"))
        else:
            checks.append(Check("max_accelerators_per_change", "plan", "pass",
                                f"the plan adds {added} accelerators (limit {rules.per_change})"))

    for rule, key, limits in (("max_accelerators_per_team", team_key, rules.per_team),
                              ("max_accelerators_per_user", rules.user_key,
                               {"default": rules.per_user} if rules.per_user is not None else {})):
        if not limits:
            continue
        groups: dict[str, dict[str, Any]] = {}
        for r in resources:
            for side in ("before", "after"):
                st = getattr(r, side)
                if st is None or (side == "before" and r.change.action == "no-op"):
                    continue
                who = who_of(r, key, side)
                g = groups.setdefault(who, {"before": 0, "after": 0, "unknown": [], "adds": [], "impact": Decimal(0)})
                a = acc(st)
                if a is UNKNOWN:
                    g["unknown"].append(r.address)
                    continue
                if r.change.action == "no-op":
                    g["before"] += a
                    g["after"] += a
                else:
                    g[side] += a
            # a change adds to a group when it adds accelerators or moves them into the group (a retag)
            if r.changed and acc(r.after) not in (0, UNKNOWN) and (acc(r.before) is UNKNOWN or
                                                                 acc(r.after) is UNKNOWN or
                                                                 acc(r.after) > acc(r.before) or
                                                                 who_of(r, key) != who_of(r, key, "before")):
                who = who_of(r, key)
                groups.setdefault(who, {"before": 0, "after": 0, "unknown": [], "adds": [],
                                        "impact": Decimal(0)})["adds"].append(r.address)
                groups[who].setdefault("adders", []).append(r)
        for who, g in sorted(groups.items()):
            limit = _limit(limits, who)
            if limit is None or not (g["adds"] or g["unknown"] or g["after"] > g["before"]) or who == "(untagged)":
                continue  # resources without a valid team/owner tag are the required_tags rule's finding
            label = f"{key}={who}"
            if who == LATER:
                if g["adds"] or g["unknown"]:
                    checks.append(Check(rule, label, "unknown", f"{key} known after apply on "
                                                                f"{', '.join(sorted(set(g['adds'] + g['unknown'])))}"))
                continue
            if g["after"] > limit and g["after"] > g["before"]:
                checks.append(Check(rule, label, "violation",
                                    f"{label} would run {g['after']} accelerators (at autoscaling maximum), above "
                                    f"its limit of {limit}; added by {', '.join(g['adds'])}",
                                    _impact(g.get("adders", []))))
            elif g["unknown"]:
                checks.append(Check(rule, label, "unknown",
                                    f"{label} runs at least {g['after']} accelerators (limit {limit}); counts "
                                    f"known after apply on {', '.join(sorted(set(g['unknown'])))}"))
            else:
                checks.append(Check(rule, label, "pass", f"{label}: {g['after']} accelerators (limit {limit})"))

    # allowed accelerator families per environment; non-production spot or idle shutdown
    for r in changed:
        st = r.after
        assert st is not None
        env = val(r, env_key) if env_key else None
        env_later = bool(env_key) and is_later(r, env_key)   # known after apply: never judged as untagged
        production = env is not None and env in policy.production_values
        a = st.accelerators()
        if rules.allowed_accelerators and a is not UNKNOWN and a > 0 or a is UNKNOWN and rules.allowed_accelerators:
            allowed = rules.allowed_accelerators.get(env or "", rules.allowed_accelerators.get("default"))
            if env_later:
                checks.append(Check("allowed_accelerators", r.address, "unknown",
                                    f"{env_key} known after apply: allowed accelerators not decided"))
            elif allowed is not None:
                bad, unk = [], []
                for p in st.pools:
                    if p.accelerators_per_instance is UNKNOWN or p.instance_type is UNKNOWN:
                        unk.append(str(p.instance_type))
                    elif p.accelerators_per_instance and not _family_allowed(p, allowed):
                        bad.append(f"{p.instance_type} ({p.accelerator or p.family or 'accelerator unknown'})")
                envl = f"{env_key}={env or (LATER if env_later else '(untagged)')}"
                if bad:
                    checks.append(Check("allowed_accelerators", r.address, "violation",
                                        f"{', '.join(bad)} not allowed in {envl} (allowed: {', '.join(allowed)})",
                                        r.delta))
                elif unk:
                    checks.append(Check("allowed_accelerators", r.address, "unknown",
                                        f"accelerator type known after apply ({envl})"))
                else:
                    checks.append(Check("allowed_accelerators", r.address, "pass", f"allowed in {envl}"))
        if rules.non_production != "off" and not production and (r.spec.kind == "notebook" or a is UNKNOWN or a > 0):
            envl = f"{env_key}={env or (LATER if env_later else '(untagged)')}"
            if st.spot is True or st.idle_shutdown is True:
                checks.append(Check("non_production", r.address, "pass",
                                    f"{envl}: {'spot' if st.spot is True else 'idle shutdown'}"))
            elif st.spot is UNKNOWN or st.idle_shutdown is UNKNOWN or a is UNKNOWN or env_later:
                checks.append(Check("non_production", r.address, "unknown",
                                    f"{envl}: spot / idle shutdown / accelerators known after apply"))
            else:
                how = [w for w, attr_ in (("spot capacity", r.spec.spot), ("an idle shutdown", r.spec.idle_shutdown))
                       if attr_]
                what = "notebook" if r.spec.kind == "notebook" else f"{a} accelerators"
                hint = (f" (set {' or '.join(how)}: {'; '.join(x for x in (r.spec.spot, r.spec.idle_shutdown) if x)})"
                        if how else " (this resource type has no spot or idle shutdown setting in its provider)")
                checks.append(Check("non_production", r.address, "violation",
                                    f"{envl} is not production: {what} on demand without idle shutdown{hint}",
                                    r.delta))

    # provisioned AI throughput needs an approval
    for r in changed:
        st = r.after
        assert st is not None
        if r.spec.kind != "provisioned" or st.provisioned is False:
            continue
        if rules.approval_tag is None and not rules.approved_addresses:
            continue
        approved_addr = any(fnmatch.fnmatchcase(r.address, pat) for pat in rules.approved_addresses)
        tag_val = None
        if rules.approval_tag and st.tags:
            tag_val = next((v for k, v in st.tags.items() if k.lower() == rules.approval_tag.lower() and v.strip()),
                           None)
        if approved_addr or tag_val:
            checks.append(Check("provisioned_throughput", r.address, "pass",
                                f"approved ({'address listed' if approved_addr else f'{rules.approval_tag}={tag_val}'})"))
        elif st.provisioned is UNKNOWN or st.tags_unknown:
            checks.append(Check("provisioned_throughput", r.address, "unknown", "SKU or tags known after apply"))
        else:
            units = ", ".join(str(p.count) for p in st.pools)
            where = (f"tag {rules.approval_tag!r}" if rules.approval_tag and st.tags is not None else None)
            opts = " or ".join(x for x in (where, "guardrails.provisioned_throughput.approved_addresses") if x)
            checks.append(Check("provisioned_throughput", r.address, "violation",
                                f"provisioned AI throughput ({units} units, {st.pools[0].instance_type if st.pools else ''})"
                                f" without approval: needs {opts}", r.delta))

    # monthly cost increase of the plan
    if rules.max_monthly_increase is not None:
        res = GuardResult("", None, resources, [], 0, "", rules).totals()
        delta, excluded = res["delta"], res["excluded"]
        limit = rules.max_monthly_increase
        ex = f"; excludes {len(excluded)} resource(s) not priced" if excluded else ""
        if delta > limit:
            checks.append(Check("max_monthly_increase", "plan", "violation",
                                f"the plan adds ${delta:,.2f} per month, above the limit of ${limit:,.2f}{ex}", delta))
        elif excluded:
            checks.append(Check("max_monthly_increase", "plan", "unknown",
                                f"priced part adds ${delta:,.2f} per month (limit ${limit:,.2f}){ex}: "
                                + ", ".join(a for a, _ in excluded)))
        else:
            checks.append(Check("max_monthly_increase", "plan", "pass",
                                f"the plan adds ${delta:,.2f} per month (limit ${limit:,.2f})", delta))
    return checks


#: Group label of a team / owner tag whose value is known only after apply.
LATER = "(known after apply)"
#: The allocation key's shared pool, as showback labels it (:data:`finops_kit.attribution.SHARED`).
SHARED = "(shared)"


def _limit(limits: dict[str, Any], who: str) -> Any:
    """The accelerator limit of a team (owner): its own, else ``default``. The shared pool (``(shared)``: a value of
    ``allocation.shared.tag_values``) is no team: only a limit named ``(shared)`` applies to it, on the plan and on
    the bill alike."""
    return limits.get(who) if who == SHARED else limits.get(who, limits.get("default"))


def _impact(resources: list[Resource]) -> Decimal | None:
    """Monthly cost the resources add; None when one of them is not priced (a partial sum would mislead)."""
    deltas = [r.delta for r in resources]
    return None if any(d is None for d in deltas) else sum(deltas, Decimal(0))  # type: ignore[arg-type]


def _tokens(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", (text or "").lower().replace("_", "-")))


def _family_allowed(p: Pool, allowed: Iterable[str]) -> bool:
    """An allowed entry matches the instance family (``p4d``, ``a2-highgpu``) or a word of the accelerator model
    (``A100`` in 'NVIDIA A100 40GB' or 'nvidia-tesla-a100'); case and separators are ignored."""
    fam = (p.family or "").lower()
    words = _tokens(p.accelerator)
    for a in allowed:
        key = a.strip().lower()
        if key == fam or (key and key.replace("-", "") in {w.replace("-", "") for w in words}):
            return True
        if "-" in key and _tokens(key) <= words and _tokens(key):
            return True
    return False


# ------------------------------------------------------------------------------------------- from the bill
def bill_checks(con: Any, config: dict, *, as_of: Any, days: int = 14, scope: Any = None) -> list[Check]:
    """The guardrails applied to what already runs: the charges of the ``days`` up to ``as_of`` (inclusive).

    The plan and the bill tell one story: the same ``guardrails`` and ``tag_policy``, the same accelerator catalog
    (:mod:`finops_kit.units`), the same attribution. What the bill can show:

    * ``non_production``: a non-production (or untagged) accelerator resource charged through nights and weekends
      (:meth:`finops_kit.tagging.TagAudit.always_on_gpus`: no idle shutdown in effect) and mostly on demand (at
      least half of its instance-hours not Spot) — the plan rule's "spot or idle shutdown", seen in the bill;
    * ``max_accelerators_per_team`` / ``per_user``: accelerator-hours of the team's (owner's) busiest day / 24 =
      accelerators it ran on average that day (a day's average: an hour's peak may be higher), above its limit. A
      team's (an owner's) limit counts its accelerators on every provider and account, in every billing currency
      (accelerators are counts: they add up across currencies, and a warehouse billing Azure in EUR is checked one
      currency at a time, ``-p currency=USD`` and ``-p currency=EUR``, each of which saw part of a team -- 1.4 and
      16.0 accelerators, never the 17.4 above its 16; the cost is said per currency). In a scope whose providers or
      accounts leave out some of the team's accelerator usage of the window (``check -p providers=[AWS]`` and the
      team's GPUs on Azure too, or only there) the limit is not judged: a ``Check`` of status "not judged in this
      scope" whose message is the reason (``check`` lists it after its alerts, as it lists budgets). The teams are
      those with accelerator usage in the window anywhere in the warehouse, so a team whose accelerators all run
      outside the scope is listed, not silently absent. The horizon is the rule's window, not the budgets' (a
      budget's forecast is fitted on a year of history: :func:`finops_kit.forecast.narrowed`): a provider the
      company left months ago, or one whose charges start after ``as_of``, does not decide whether this window's
      count is whole; and only accelerator usage does (the team's storage on another provider leaves its count
      whole);
    * ``allowed_accelerators``: accelerator-hours of a model or family not allowed in the environment.

    Required tags are the tagging audit's (cost-weighted coverage); provisioned-throughput approvals and the
    monthly increase of a change are plan-only rules.
    """
    from datetime import date, timedelta

    from . import units
    from .attribution import UNTAGGED
    from .budgets import NOT_JUDGED
    from .currency import format_money
    from .forecast import _scope_words
    from .scope import CHARGE_PARAMETERS, Scope, bind
    from .sources.base import sql_str
    from .tagging import TagAudit
    from .warehouse import FOCUS_TABLE

    rules = Guardrails.from_dict(section(config, "guardrails", {}), "config")
    end = as_of if isinstance(as_of, date) else date.fromisoformat(str(as_of)[:10])
    start = end - timedelta(days=max(int(days), 1) - 1)
    # the ``days`` up to as_of, of the charges ``scope`` selects (providers, accounts, currency: ``check -p``); the
    # scope's own periods do not apply, the window is the rule's
    which = {k: v for k, v in (scope.parameters() if scope is not None else {}).items() if k in CHARGE_PARAMETERS}
    sc = bind(con, Scope.parse({**which, "date_start": start.isoformat(), "date_end": end.isoformat()}), config)
    attr = sc.attribution
    policy = attr.policy
    checks: list[Check] = []
    window = f"{start.isoformat()}..{end.isoformat()}"

    def bill_money(value: Any) -> str:  # the bill's amounts in the scope's currency (a plan's prices are USD lists)
        from .currency import format_money

        return format_money(value, sc.currency, 0)

    from .querycache import execute, kept, materialized  # execute: the usage tables a query reads made first

    if rules.non_production != "off":
        with TagAudit(con, scope=sc) as audit:
            gpus = audit.always_on_gpus(include_untagged=True)
        on = gpus[gpus["always_on"]] if len(gpus) else gpus
        if len(on):
            key = units.resource_key_sql()  # one resource whatever the case its id is spelled in
            ids = ", ".join(sql_str(str(i).lower()) for i in on["resource_id"])
            # these resources' rows of the scope's usage: read from its table when it is kept per connection (the
            # limits below read it too), else derived for them alone -- the same rows, as an instance's hours and
            # class depend on its own rows only
            usage = units.accelerated_usage_from(con, sc)
            rows_of = (f"(SELECT * FROM {usage}) WHERE {key} IN ({ids}) AND" if kept(usage) else
                       f"({units.accelerated_usage_sql(f'{key} IN ({ids})', sc.rows_sql())}) WHERE")
            spot = dict(execute(con, f"""
                SELECT {key}, {units.spot_share_sql("instance_hours")}
                FROM {rows_of} ChargeCategory = 'Usage' GROUP BY 1""").fetchall())
            for r in on.to_dict("records"):
                if (spot.get(str(r["resource_id"]).lower()) or 0) >= 0.5:
                    continue
                checks.append(Check(
                    "non_production", str(r["resource_id"]), "violation",
                    f"{r['instance_type']} ({policy.environment_key}={r['environment']}, team={r['team'] or UNTAGGED})"
                    f" charged {r['off_hours_charged_pct']:.0f}% of nights and weekends over {r['span_days']:.0f} "
                    f"days, on demand: no idle shutdown or spot in effect; {bill_money(r['monthly_cost'])}/month, "
                    f"{bill_money(r['monthly_saving'])} of it off-hours", Decimal(str(round(r["monthly_saving"], 2)))))

    acc = f"SELECT * FROM {units.accelerated_usage_from(con, sc)}"
    # the limits count accelerators over the scope's providers and accounts in every billing currency (counts add
    # up; with a reporting currency the scope's rows are every currency's already, converted)
    counted = units.accelerated_usage_sql(source=(sc if sc.convert else dataclasses.replace(sc, currency=None))
                                          .rows_sql())
    counted = f"SELECT * FROM {materialized(con, counted, 'usage')}"  # read by two queries per rule
    # the window's accelerator usage anywhere in the warehouse that the scope's providers and accounts leave out:
    # counted by accelerator-hours, whatever the cost -- a limit counts accelerators, so a fully credited or free GPU
    # row with hours outside the scope leaves part of the count out (a budget, counting money, ignores a 0.00 row:
    # forecast._left_out_sql)
    kept = dataclasses.replace(sc, currency=None, convert=False).where(period=False)
    anywhere = f"(SELECT f.* FROM {FOCUS_TABLE} f WHERE {Scope(start=start, end=end, basis='charge_period').where()})"
    left = units.accelerated_usage_sql(f"NOT coalesce(({kept}), FALSE)", anywhere)
    team_key = rules.team_key or attr.allocation.key
    for rule, key, limits in (("max_accelerators_per_team", team_key, rules.per_team),
                              ("max_accelerators_per_user", rules.user_key,
                               {"default": rules.per_user} if rules.per_user is not None else {})):
        if not limits or key not in policy.keys:
            continue
        # the team (owner) as every report shows it (Attribution.dimension_sql, fk.costs(by='team')): a shared
        # value of the allocation key is the (shared) pool, which only a limit named "(shared)" judges (_limit)
        rows = execute(con, f"""
            WITH d AS (SELECT {attr.dimension_sql(key)} AS who, CAST(ChargePeriodStart AS DATE) AS day,
                              {units.total('accelerator_hours')} / 24.0 AS avg_acc
                       FROM ({counted}) WHERE ChargeCategory = 'Usage' AND accelerator_hours > 0 GROUP BY ALL)
            -- the peak and the first day it was reached (exact hour sums: a tie is a tie in any scan order)
            SELECT who, arg_min(day, (-avg_acc, day)), max(avg_acc) FROM d GROUP BY who ORDER BY who""").fetchall()
        costs: dict[Any, list[str]] = {}  # per currency: amounts are never added across currencies
        for who, cur, cost in execute(con, f"""
                SELECT {attr.dimension_sql(key)}, BillingCurrency, sum(EffectiveCost) FROM ({counted})
                WHERE ChargeCategory = 'Usage' AND accelerator_hours > 0 GROUP BY ALL ORDER BY 1, 2""").fetchall():
            costs.setdefault(who, []).append(format_money(cost, cur, 0))
        # a scope naming no provider or account keeps every row (``kept`` is TRUE): nothing is left out, and the
        # query (the accelerated usage of the window's rows, none of them selected: 0.1 s a rule) is not run
        outside = {} if kept == "TRUE" else {who: (provs, accts) for who, provs, accts in con.execute(f"""
            SELECT {attr.dimension_sql(key)}, string_agg(DISTINCT ProviderName, ', ' ORDER BY ProviderName),
                   string_agg(DISTINCT coalesce(SubAccountName, SubAccountId), ', '
                              ORDER BY coalesce(SubAccountName, SubAccountId))
            FROM ({left}) WHERE ChargeCategory = 'Usage' AND accelerator_hours > 0 GROUP BY 1""").fetchall()}
        peaks = {who: (day, peak) for who, day, peak in rows}
        for who in sorted(set(peaks) | set(outside), key=str):
            limit = _limit(limits, who)
            if limit is None or who == UNTAGGED:  # untagged: the tagging audit's finding
                continue
            if who in outside:  # part (or all) of its count is outside this scope: not judged, and said why
                provs, accts = outside[who]
                where = " and ".join(filter(None, [f"on {provs}" if sc.providers else "",
                                                   f"in account {accts}" if sc.sub_accounts or sc.billing_accounts
                                                   else ""])) or "elsewhere"
                checks.append(Check(rule, f"{key}={who}", NOT_JUDGED,
                                    f"it counts accelerators {where}{' too' if who in peaks else ''} in {window}, "
                                    f"which this scope leaves out; this scope is {_scope_words(sc)} only"))
                continue
            day, peak = peaks[who]
            if peak > limit:
                checks.append(Check(rule, f"{key}={who}", "violation",
                                    f"{key}={who} ran {peak:,.1f} accelerators on average on {day} (accelerator-hours"
                                    f" / 24), above its limit of {limit}; {' and '.join(costs.get(who, []))} of "
                                    f"accelerated compute in {window}"))

    if rules.allowed_accelerators and policy.environment_key:
        rows = execute(con, f"""
            SELECT {attr.label_sql(policy.environment_key)} AS env, instance_family, accelerator,
                   sum(accelerator_hours), CAST(sum(EffectiveCost) AS DOUBLE), count(DISTINCT ResourceId),
                   string_agg(DISTINCT instance_type, ', ' ORDER BY instance_type)
            FROM ({acc}) WHERE ChargeCategory = 'Usage' AND accelerator_hours > 0 GROUP BY ALL
            ORDER BY 1, 2, 3""").fetchall()
        for env, family, model, hours, cost, n, types in rows:
            allowed = rules.allowed_accelerators.get(env if env != UNTAGGED else "",
                                                     rules.allowed_accelerators.get("default"))
            pool = Pool(types, 1, None, 1, model, family)
            if allowed is None or _family_allowed(pool, allowed) or \
                    any(_family_allowed(Pool(t, 1, None, 1, t, None), allowed) for t in (types or "").split(", ")):
                continue
            if model is None:
                continue  # a GPU attached to an N1 VM: the bill's instance type does not say which model
            checks.append(Check("allowed_accelerators", f"{policy.environment_key}={env}:{family}", "violation",
                                f"{types} ({model}) ran {hours:,.0f} accelerator-hours on {n} resource(s) in "
                                f"{policy.environment_key}={env} ({window}, {bill_money(cost)}); allowed: {', '.join(allowed)}"))
    return checks


# ----------------------------------------------------------------------------------------------- output
def _money(v: Decimal | None, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{'+' if sign and v > 0 else ''}{'-' if v < 0 else ''}${abs(v):,.2f}"


def _rows(result: GuardResult) -> list[dict[str, Any]]:
    out = []
    for r in result.resources:
        if r.change.action == "no-op":
            continue
        st = r.after or r.before
        out.append({
            "address": r.address, "type": r.change.type, "action": r.change.action,
            "instance_type": ", ".join("unknown" if p.instance_type is UNKNOWN else str(p.instance_type)
                                       for p in st.pools if p.instance_type is not None) if st else "",
            "accelerators_before": _j(r.before.accelerators()) if r.before else 0,
            "accelerators_after": _j(r.after.accelerators()) if r.after else 0,
            "monthly_before": r.cost_before.monthly if r.cost_before else Decimal(0),
            "monthly_after": r.cost_after.monthly if r.cost_after else Decimal(0),
            "monthly_delta": r.delta,
            "priced": "; ".join([f"{side}: {c.basis}" if c.status == "priced" else f"{side}: {c.status}: {c.basis}"
                                 for side, c in
                                 (("before", r.cost_before), ("after", r.cost_after)) if c is not None]
                                + ([r.change.via] if r.change.via else [])),
            "unknown": sorted(set(r.after.unknown if r.after else [])),
        })
    return out


def _j(v: Any) -> Any:
    return None if v is UNKNOWN else v


def to_dict(result: GuardResult) -> dict[str, Any]:
    t = result.totals()
    dec = lambda v: None if v is None else str(v)  # noqa: E731 - money stays exact in JSON (as a string)
    return {
        "plan": result.plan, "terraform_version": result.terraform_version,
        "exit_code": result.exit_code, "price_source": result.price_source,
        "monthly": {"before": dec(t["before"]), "after": dec(t["after"]), "delta": dec(t["delta"]),
                    "excluded": [{"address": a, "reason": why} for a, why in t["excluded"]]},
        "resources": [{**row, **{k: dec(row[k]) for k in ("monthly_before", "monthly_after", "monthly_delta")}}
                      for row in _rows(result)],
        "ignored_resources": result.ignored,
        "checks": [{"rule": c.rule, "subject": c.subject, "status": c.status, "message": c.message,
                    "monthly_impact": dec(c.impact)} for c in result.checks],
        "violations": len(result.violations), "unknown": len(result.unknowns),
    }


def _summary(result: GuardResult) -> str:
    t = result.totals()
    ex = (f"; {len(t['excluded'])} resource(s) not priced and not in this total" if t["excluded"] else "")
    return (f"{len(result.violations)} violation(s), {len(result.unknowns)} unknown until apply; monthly cost of "
            f"the priced resources {_money(t['before'])} -> {_money(t['after'])} ({_money(t['delta'], True)}){ex}")


def render_text(result: GuardResult) -> str:
    t = result.totals()
    lines = [f"finops-kit guard: {result.plan}" + (f" (Terraform {result.terraform_version})"
                                                    if result.terraform_version else "")]
    rows = _rows(result)
    if rows:
        lines.append("")
        lines.append("Monthly cost estimate (changed resources):")
        for row in rows:
            d = row["monthly_delta"]
            cost = (f"{_money(row['monthly_before'])} -> {_money(row['monthly_after'])} ({_money(d, True)})"
                    if d is not None else "not priced")
            acc = f"accelerators {row['accelerators_before']} -> {_jshow(row['accelerators_after'])}"
            lines.append(f"  {row['action']:8s} {row['address']}  {row['instance_type']}  {acc}  {cost}")
            lines.append(f"           {row['priced']}")
    lines.append(f"  total {_money(t['before'])} -> {_money(t['after'])} per month ({_money(t['delta'], True)})")
    for a, why in t["excluded"]:
        lines.append(f"  excluded from the total: {a}: {why}")
    lines.append(f"  prices: {result.price_source}")
    if result.ignored:
        lines.append(f"  {result.ignored} other resource(s) of types without AI cost rules were not checked")
    findings = [c for c in result.checks if c.status != "pass"]
    if findings:
        lines.append("")
    for c in findings:
        imp = f" [{_money(c.impact, True)}/month]" if c.impact is not None else ""
        lines.append(f"{c.status.upper()} {c.rule} {c.subject}: {c.message}{imp}")
    lines.append("")
    lines.append(_summary(result))
    return "\n".join(lines)


def _jshow(v: Any) -> str:
    return "unknown" if v is None else str(v)


def render_json(result: GuardResult) -> str:
    return json.dumps(to_dict(result), indent=2)


def render_junit(result: GuardResult) -> str:
    """JUnit XML: one test case per rule and subject; a violation is a failure, unknown is skipped."""
    cases = []
    for c in result.checks:
        body = ""
        if c.status == "violation":
            body = f"<failure message={quoteattr(c.message)} type={quoteattr(c.rule)}>{xml_escape(c.message)}</failure>"
        elif c.status == "unknown":
            body = f"<skipped message={quoteattr(c.message)}/>"
        cases.append(f'    <testcase classname={quoteattr("finops-kit.guard." + c.rule)} '
                     f'name={quoteattr(c.subject)}>{body}</testcase>')
    n, f, s = len(result.checks), len(result.violations), len(result.unknowns)
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="finops-kit guard" tests="{n}" failures="{f}" skipped="{s}">',
        f'  <testsuite name={quoteattr("finops-kit guard " + result.plan)} tests="{n}" failures="{f}" '
        f'skipped="{s}" errors="0">',
        f"    <properties><property name=\"summary\" value={quoteattr(_summary(result))}/></properties>",
        *cases, "  </testsuite>", "</testsuites>"])


def _gh(text: str, prop: bool = False) -> str:
    out = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return out.replace(":", "%3A").replace(",", "%2C") if prop else out


def render_github(result: GuardResult) -> str:
    """GitHub Actions workflow commands: ::error per violation, ::warning per unknown, ::notice summary."""
    lines = []
    for c in result.checks:
        if c.status == "pass":
            continue
        level = "error" if c.status == "violation" else "warning"
        imp = f" ({_money(c.impact, True)}/month)" if c.impact is not None else ""
        lines.append(f"::{level} file={_gh(result.plan, True)},title={_gh('finops-kit guard ' + c.rule, True)}::"
                     f"{_gh(c.subject + ': ' + c.message + imp)}")
    lines.append(f"::notice title=finops-kit guard::{_gh(_summary(result))}")
    return "\n".join(lines)


#: Characters a Markdown renderer (GitHub's, JupyterLab's) reads as markup inside a line: link and image brackets,
#: emphasis, code, LaTeX ``$``, table pipes (``.``/``-``/``+`` only matter at a line's start, where no value stands).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|$~])")


def _md(text: Any) -> str:
    """Markdown text of a value from the plan or the bill, shown as written.

    Why: tag values and resource names come from the plan under review; a tag such as ``<img src=...>`` or
    ``[x](https://...)`` rendered as an image and a link in the pull-request comment. HTML is entity-escaped and
    every Markdown special character backslash-escaped (``$``: JupyterLab and some renderers read $...$ as
    LaTeX; ``|``: table cells); a newline becomes a space."""
    escaped = html.escape(str(text), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")


def _md_code(text: Any, table: bool = True) -> str:
    """A code span showing ``text`` as written: CommonMark processes no backslash escape or HTML inside one, so only
    what could end it is neutralized: a fence longer than any backtick run in the text (padded with a space when
    the text starts or ends with a backtick), newlines as spaces, and ``|`` escaped in a table cell (GFM splits
    cells before inline parsing, so ``\\|`` shows as ``|`` even inside code)."""
    body = str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    if table:
        body = body.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def render_markdown(result: GuardResult) -> str:
    """A pull-request comment: verdict, findings and the priced change estimate."""
    t = result.totals()
    verdict = "❌ policy violations" if result.violations else ("⚠️ passed with unknowns" if result.unknowns
                                                              else "✅ passed")
    lines = [f"### finops-kit guard: {verdict}", "", _md(_summary(result)), ""]
    findings = [c for c in result.checks if c.status != "pass"]
    if findings:
        lines += ["| | Rule | Resource | Finding | Monthly impact |", "|---|---|---|---|---:|"]
        for c in findings:
            icon = "❌" if c.status == "violation" else "⚠️"
            imp = _md(_money(c.impact, True)) if c.impact is not None else ""
            lines.append(f"| {icon} | {_md(c.rule)} | {_md_code(c.subject)} | {_md(c.message)} | {imp} |")
        lines.append("")
    rows = _rows(result)
    if rows:
        lines += ["<details><summary>Monthly cost estimate</summary>", "",
                  "| Action | Resource | Type | Accelerators | Before | After | Change |",
                  "|---|---|---|---:|---:|---:|---:|"]
        for row in rows:
            d = row["monthly_delta"]
            lines.append(f"| {row['action']} | {_md_code(row['address'])} | {_md(row['instance_type'])} | "
                         f"{row['accelerators_before']} → {_jshow(row['accelerators_after'])} | "
                         f"{_md(_money(row['monthly_before']))} | {_md(_money(row['monthly_after']))} | "
                         f"{_md(_money(d, True)) if d is not None else 'not priced'} |")
        lines.append("")
        for a, why in t["excluded"]:
            lines.append(f"- not in the total: {_md_code(a, table=False)}: {_md(why)}")
        lines += ["", f"Prices: {_md(result.price_source)}", "", "</details>"]
    return "\n".join(lines)


RENDERERS = {"text": render_text, "json": render_json, "junit": render_junit, "github": render_github,
             "markdown": render_markdown}


# -------------------------------------------------------------------------------------------------- CLI
def configure_parser(parser: argparse.ArgumentParser, command: str = "guard") -> None:
    parser.description = ("Check a Terraform/OpenTofu plan (the JSON of `terraform show -json plan.out`) against "
                          "the guardrails of finops.yaml and estimate its monthly cost change, offline. "
                          "Exit 0: no violation, 1: violations, 2: bad plan or config.")
    parser.add_argument("plan", metavar="PLAN.json", help="output of `terraform show -json plan.out` (or tofu)")
    parser.add_argument("--config", help="config file (default: $FINOPS_CONFIG or ./finops.yaml)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), json, junit (CI test report), github (::error annotations), "
                             "markdown (pull-request comment)")
    parser.add_argument("--out", help="write the report to this file instead of stdout")
    parser.add_argument("--warehouse", help="warehouse file (optional): spell the plan's tag values as the bill "
                                            "does (team NLP -> nlp when the warehouse says nlp)")


def run(args: argparse.Namespace, command: str = "guard") -> int:
    result = evaluate(args.plan, args.config, warehouse=getattr(args, "warehouse", None))
    text = RENDERERS[args.format](result)
    if args.out:
        _write(args.out, text + "\n")
        print(_summary(result), file=sys.stderr)
    else:
        print(text)
    return result.exit_code


def _write(path: str, text: str) -> None:
    """Write ``text`` whole or not at all (a temp file renamed into place)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["Guardrails", "GuardResult", "evaluate", "read_plan", "resource_types", "render_text", "render_json",
           "render_junit", "render_github", "render_markdown"]
