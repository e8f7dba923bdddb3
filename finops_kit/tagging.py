"""Tag policy audit: cost-weighted tag coverage, violations ranked by dollars, top-N values and dev vs prod.

Why cost-weighted: a thousand untagged $0.001 API calls matter less than one untagged GPU node. Coverage of a key
is ``Σ EffectiveCost of rows where the tag is present and valid / Σ EffectiveCost`` over rows with
``EffectiveCost > 0``. Credits, refunds and other negative rows are left out of coverage (they would let a refund
"untag" spend, and a credit would push coverage above 100%); they stay in showback and top-N totals so that
those tie to the bill.

The policy (``tag_policy`` in ``finops.yaml``) names the keys, their aliases, allowed values or patterns and value
aliases. It compiles into small mapping tables (raw key -> policy key, raw value -> canonical value) that DuckDB
joins with the exploded ``Tags`` JSON; every figure is an aggregate computed in SQL and only the aggregates reach
pandas. Case and separator variants (``Env``, ``ENV``, ``e-n-v``) and near-duplicate typos (``enviroment``) are
detected automatically from the distinct keys in the data and sized in dollars.

Typical use::

    audit = TagAudit(con, "finops.yaml", start="2026-01", end="2026-06", providers=["AWS"])
    audit.coverage(by="provider")        # per key, with the maturity band of tag_policy.maturity_bands
    audit.violations()                   # ranked by dollars
    audit.export_violations("violations.csv")
"""

from __future__ import annotations

import functools
import math
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from . import units
from .attribution import UNTAGGED, Attribution, key_norm_sql, kv_sql, values_sql
from .config import load_config, reject_unknown, section
from .errors import ConfigError
from .querycache import own_objects
from .scope import Scope, bind
from .sources.base import ident, sql_str
from .warehouse import FOCUS_TABLE

OTHER = "(other)"
ALL_REQUIRED = "(all required)"

#: Default allocation maturity bands: minimum cost-weighted coverage (%) of each band, reached at or above its value.
#: These are the kit's defaults, not thresholds of a FinOps Foundation publication (the Foundation's framework names
#: crawl/walk/run stages but the kit could not match these numbers to one of its documents): set your own targets in
#: ``tag_policy.maturity_bands`` of finops.yaml.
DEFAULT_MATURITY_BANDS = {"crawl": 70.0, "walk": 85.0, "run": 90.0}

#: Hours in an average month (8766 h / 12): turns a per-hour cost rate into a monthly figure.
HOURS_PER_MONTH = 730.5

#: The columns an analysis groups by, as SQL over the FOCUS table.
DIMENSIONS: dict[str, str] = {
    "provider": "coalesce(ProviderName, '(none)')",
    "account": "coalesce(SubAccountName, SubAccountId, BillingAccountName, BillingAccountId, '(none)')",
    "service": "coalesce(ServiceName, '(none)')",
    "service_category": "coalesce(ServiceCategory, '(none)')",
    "month": "CAST(date_trunc('month', ChargePeriodStart) AS DATE)",
    "ai_workload": "coalesce(x_AiWorkload, 'Not AI')",
}



@dataclass(frozen=True)
class MaturityBands:
    """Allocation maturity bands: a coverage percentage reaches a band at or above its threshold."""

    crawl: float = DEFAULT_MATURITY_BANDS["crawl"]
    walk: float = DEFAULT_MATURITY_BANDS["walk"]
    run: float = DEFAULT_MATURITY_BANDS["run"]

    @classmethod
    def from_dict(cls, data: Any, where: str) -> MaturityBands:
        """Validate ``tag_policy.maturity_bands`` ({crawl, walk, run} percentages, increasing, within 0..100)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping crawl/walk/run -> minimum coverage %")
        reject_unknown(data, set(DEFAULT_MATURITY_BANDS), where)
        vals = dict(DEFAULT_MATURITY_BANDS)
        for name, v in data.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
                raise ConfigError(f"{where}.{name}: expected a percentage 0..100, got {v!r}")
            vals[name] = float(v)
        if not vals["crawl"] <= vals["walk"] <= vals["run"]:
            bad = "walk" if vals["walk"] < vals["crawl"] else "run"
            raise ConfigError(f"{where}.{bad}: bands must not decrease (crawl {vals['crawl']:g} <= walk "
                              f"{vals['walk']:g} <= run {vals['run']:g})")
        return cls(**vals)

    def band(self, pct: float | None) -> str:
        if pct is None or (isinstance(pct, float) and math.isnan(pct)):
            return "n/a"
        for name in ("run", "walk", "crawl"):
            if pct >= getattr(self, name):
                return name
        return "pre-crawl"

    def describe(self) -> str:
        """'crawl ≥ 70%, walk ≥ 85%, run ≥ 90% (the kit's defaults ...)' for captions and report text."""
        txt = f"crawl ≥ {self.crawl:g}%, walk ≥ {self.walk:g}%, run ≥ {self.run:g}%"
        if self == MaturityBands():
            return txt + " (the kit's defaults, not a FinOps Foundation standard; set tag_policy.maturity_bands)"
        return txt + " (tag_policy.maturity_bands)"


def maturity_band(pct: float | None, bands: MaturityBands | None = None) -> str:
    """Maturity band of an allocation percentage (0-100) under ``bands`` (default: the kit's default bands)."""
    return (bands or MaturityBands()).band(pct)


# --------------------------------------------------------------------------------------------------- the policy


def headline_maturity(summary: Any, bands: MaturityBands, key: str) -> str:
    """The maturity band of the allocation key's coverage in the period the report's summary shows (its
    ``tag_coverage`` figure, :mod:`finops_kit.summary`), as one sentence; '' when the summary has no such figure or
    shows the whole scope (the section's own sentence is then the same figure).

    Why: the tagging audit's headline read 90.8% for Oct 2026 -- the run band -- while section 2 printed only the
    whole scope's 89.3% -> walk: two verdicts on one page, one of them unnamed (review s17 prose, finding 1)."""
    from .summary import _period_name, figures_of

    value = figures_of(summary).get("tag_coverage")
    if value is None or summary.current is None:
        return ""
    pct = 100 * float(value)
    return (f"In {_period_name(summary.current)} (the period of the figures above): {pct:.1f}% of dollars carry a "
            f"valid '{key}' tag -> {bands.band(pct)}.")


@dataclass(frozen=True)
class KeyPolicy:
    """One tag key of the policy."""

    name: str
    required: str = "all"  # all | ai | no
    aliases: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    pattern: str | None = None
    value_aliases: dict[str, str] = field(default_factory=dict)  # raw spelling -> canonical value

    def describe_rule(self) -> str:
        """The value rule in words, for violation reports."""
        if self.allowed and self.pattern:
            return f"one of {', '.join(self.allowed)} or matching {self.pattern}"
        if self.allowed:
            return f"one of {', '.join(self.allowed)}"
        if self.pattern:
            return f"matching {self.pattern}"
        return "any non-empty value"


@dataclass(frozen=True)
class TagPolicy:
    """The ``tag_policy`` section: keys, aliases, value rules, and which env values are production."""

    keys: dict[str, KeyPolicy]
    consolidate_variants: bool = True
    near_duplicate_distance: int = 1
    environment_key: str | None = "env"
    production_values: tuple[str, ...] = ("prod",)
    maturity_bands: MaturityBands = MaturityBands()

    @property
    def required(self) -> list[str]:
        return [k for k, p in self.keys.items() if p.required != "no"]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "finops.yaml") -> TagPolicy:
        """Validate a ``tag_policy`` mapping; a mistake raises a one-line ConfigError naming the key."""
        pre = f"{where}: tag_policy"
        if not isinstance(data, dict):
            raise ConfigError(f"{pre}: expected a mapping")
        reject_unknown(data, {"keys", "consolidate_variants", "near_duplicate_distance", "environment_key",
                              "production_values", "maturity_bands"}, pre)
        raw_keys = data.get("keys") or {}
        if not isinstance(raw_keys, dict) or not raw_keys:
            raise ConfigError(f"{pre}.keys: expected a mapping of tag keys (e.g. team: {{required: true}})")
        keys: dict[str, KeyPolicy] = {}
        seen_names: dict[str, str] = {}
        for name, spec in raw_keys.items():
            kp = _key_policy(str(name), spec or {}, f"{pre}.keys.{name}")
            for n in (kp.name, *kp.aliases):
                if n in seen_names and seen_names[n] != kp.name:
                    raise ConfigError(f"{pre}.keys.{name}: name {n!r} is already used by key {seen_names[n]!r}")
                seen_names[n] = kp.name
            keys[kp.name] = kp
        env = data.get("environment_key", "env" if "env" in keys else None)
        if env is not None and not isinstance(env, str):
            raise ConfigError(f"{pre}.environment_key: expected a key name, one of the policy keys "
                              f"({', '.join(keys)}), got {env!r}")
        if env is not None and env not in keys:
            raise ConfigError(f"{pre}.environment_key: {env!r} is not one of the policy keys ({', '.join(keys)})")
        prod = data.get("production_values", ["prod"])
        if not isinstance(prod, list) or not all(isinstance(v, str) for v in prod):
            raise ConfigError(f"{pre}.production_values: expected a list of strings")
        dist = data.get("near_duplicate_distance", 1)
        if not isinstance(dist, int) or isinstance(dist, bool) or not 0 <= dist <= 3:
            raise ConfigError(f"{pre}.near_duplicate_distance: expected an integer 0..3, got {dist!r}")
        cons = data.get("consolidate_variants", True)
        if not isinstance(cons, bool):
            raise ConfigError(f"{pre}.consolidate_variants: expected true or false, got {cons!r}")
        return cls(keys=keys, consolidate_variants=cons, near_duplicate_distance=dist,
                   environment_key=env, production_values=tuple(prod),
                   maturity_bands=MaturityBands.from_dict(data.get("maturity_bands"), f"{pre}.maturity_bands"))


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return (str(value),)
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(str(v) for v in value)


def _key_policy(name: str, spec: Any, where: str) -> KeyPolicy:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping (required, aliases, allowed, pattern, value_aliases)")
    reject_unknown(spec, {"required", "aliases", "allowed", "pattern", "value_aliases"}, where)
    req = spec.get("required", True)
    required = {True: "all", False: "no", "ai": "ai", "all": "all", "no": "no"}.get(req)
    if required is None:
        raise ConfigError(f"{where}.required: expected true, false or ai, got {req!r}")
    pattern = spec.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}.pattern: expected a regular expression string")
        err = _re2_error(pattern)
        if err is not None:
            raise ConfigError(f"{where}.pattern: invalid regular expression for DuckDB (RE2 syntax: no lookaround "
                              f"or backreference): {err}")
    value_aliases: dict[str, str] = {}
    va = spec.get("value_aliases") or {}
    if not isinstance(va, dict):
        raise ConfigError(f"{where}.value_aliases: expected a mapping canonical value -> list of spellings")
    for canonical, spellings in va.items():
        for s in _str_list(spellings, f"{where}.value_aliases.{canonical}"):
            value_aliases[s] = str(canonical)
    allowed = _str_list(spec.get("allowed"), f"{where}.allowed")
    if allowed:
        bad = sorted({c for c in value_aliases.values() if c not in allowed})
        if bad:
            raise ConfigError(f"{where}.value_aliases.{bad[0]}: not one of the allowed values ({', '.join(allowed)})")
    # each alias once, never the key's own name: a name listed twice would match its tags twice
    aliases = tuple(dict.fromkeys(a for a in _str_list(spec.get("aliases"), f"{where}.aliases") if a != name))
    return KeyPolicy(name=name, required=required, aliases=aliases,
                     allowed=allowed, pattern=pattern, value_aliases=value_aliases)


_re2_connection: duckdb.DuckDBPyConnection | None = None
_re2_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def _re2_error(pattern: str) -> str | None:
    """Why DuckDB's regular expressions (RE2) reject ``pattern`` (one line), or None when it is valid.

    The pattern runs in DuckDB (``regexp_full_match``), not in Python: Python's ``re`` accepts lookarounds and
    backreferences that RE2 refuses, and the other way round. One in-memory connection serves every check of the
    process: opening one costs 13 ms, a check on it 0.4 ms (every report kernel checks the policy's patterns)."""
    global _re2_connection
    with _re2_lock:
        if _re2_connection is None:
            _re2_connection = duckdb.connect(":memory:")
        try:
            _re2_connection.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            msg = " ".join(str(exc).split())
            return msg.removeprefix("Invalid Input Error: ")
    return None


def load_policy(source: TagPolicy | dict | str | os.PathLike | None = None) -> TagPolicy:
    """The tag policy from a TagPolicy, a config dict (whole file or the section) or a finops.yaml path."""
    if isinstance(source, TagPolicy):
        return source
    if isinstance(source, dict):
        data = source.get("tag_policy", source) if "tag_policy" in source else source
        return TagPolicy.from_dict(data or {}, "config")
    cfg = load_config(source)
    where = str(source or os.environ.get("FINOPS_CONFIG") or "finops.yaml")
    return TagPolicy.from_dict(section(cfg, "tag_policy", {}), Path(where).name)


def _dim_scope(con: duckdb.DuckDBPyConnection, scope: Scope | None, config: Any, start: Any, end: Any,
               providers: Any) -> Scope:
    """The resolved scope of a module-level function (``scope`` wins over the legacy start/end/providers)."""
    return bind(con, scope, config, start=start, end=end, providers=providers)


# ------------------------------------------------------------------------------------------------------ audit


class TagAudit:
    """The tag audit of one scope of the FOCUS table under one policy.

    Construction scans the scope once to build three small temp tables: the distinct (key, value) pairs with their
    dollars, the key map (raw key -> policy key, how it matched) and the value map (raw value -> canonical value,
    status), and the judgement (status, value) of each distinct tag set per policy key. Every analysis is a SQL
    query over two temp views joining them back to the rows:

    - ``facts``: one row per (charge, applicable policy key) with status ok / missing / empty / invalid;
    - ``wide``: one row per charge with a consolidated value column per policy key (NULL unless valid).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, policy: TagPolicy | dict | str | os.PathLike | None = None,
                 *, start: Any = None, end: Any = None, providers: Any = None, scope: Scope | None = None):
        self.con = con
        self.scope = bind(con, scope, policy if isinstance(policy, dict | str | os.PathLike) else
                          getattr(scope, "config", None), start=start, end=end, providers=providers)
        if policy is None:
            self.attribution = self.scope.attribution
        else:
            # over the whole FOCUS table, like Scope.attribution: one spelling of a value in every scope
            self.attribution = Attribution.build(con, FOCUS_TABLE, policy)
        self.policy = self.attribution.policy
        tag = uuid.uuid4().hex[:10]
        self.names = {n: f"_fk_tag_{tag}_{n}" for n in ("scope", "kv", "keymap", "valmap", "facts", "wide", "raw",
                                                           "judged", "wtags", "findings", "hours")}
        self._findings_built = self._hours_built = False
        self._memo: dict[str, str] = {}  # query -> its temp table (:meth:`table`)
        with own_objects(self.con):  # the audit's own temporary views and tables (no function or macro)
            self._build()

    # ----------------------------------------------------------------------------------------------- building

    def _build(self) -> None:
        n, p = self.names, self.policy
        dims = ",\n".join(f"{sql} AS {ident(d)}" for d, sql in DIMENSIONS.items())
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['scope']} AS
            SELECT _rowid AS _rid, {dims},
                   coalesce(SubAccountId, BillingAccountId) AS account_id,
                   ResourceId, ResourceName, x_InstanceType, x_AiWorkload, ServiceName, ServiceCategory,
                   ChargeCategory, CommitmentDiscountStatus, PricingCategory, ChargePeriodStart, ChargePeriodEnd,
                   ConsumedQuantity, ConsumedUnit, EffectiveCost AS cost, Tags
            FROM {self.scope.rows_sql(rowid=True)}""")
        # every raw tag of every charge in scope (a view: re-derived, never materialized)
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['raw']} AS
            SELECT s._rid, j.key AS raw_key, j.value ->> '$' AS raw_value
            FROM {n['scope']} s, json_each(s.Tags) j""")
        # the attribution's maps (one definition for every analysis), with the rows and dollars of this scope
        attr = self.attribution
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {n['kv']} AS {kv_sql(n['scope'], cost='cost')}")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['keymap']} AS
            SELECT km.* REPLACE (k.rows AS rows, k.positive_cost AS positive_cost)
            FROM {attr.keymap} km
            JOIN (SELECT raw_key, sum(rows) AS rows, coalesce(sum(positive_cost), 0) AS positive_cost
                  FROM {n['kv']} GROUP BY raw_key) k USING (raw_key)""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['valmap']} AS
            SELECT vm.* REPLACE (k.positive_cost AS positive_cost)
            FROM {attr.valmap} vm
            JOIN (SELECT km.canon_key, kv.raw_value, coalesce(sum(kv.positive_cost), 0) AS positive_cost
                  FROM {n['kv']} kv JOIN {attr.keymap} km USING (raw_key) WHERE km.counts GROUP BY ALL) k
              ON k.canon_key = vm.canon_key AND k.raw_value IS NOT DISTINCT FROM vm.raw_value""")
        req = values_sql([(k.name, k.required) for k in p.keys.values()], ["key", "required"], ["VARCHAR", "VARCHAR"])
        self._req = req
        # the judgement of every distinct tag set in scope, per policy key: a small table (60 tag sets x keys on
        # the 67k sample rows), made once -- as a CTE of the facts view it was derived again by each of the
        # report's dozen queries over the facts (json_each and the key and value map joins, 30 ms each)
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {n['judged']} AS
            WITH raw AS (
              -- a charge's judgement depends on its tags alone: judged once per distinct tag set (60 for the
              -- 67k sample rows) and joined back, instead of parsing every row's JSON in every query
              SELECT t.Tags, j.key AS raw_key, j.value ->> '$' AS raw_value, j.id AS pos
              FROM (SELECT DISTINCT Tags FROM {n['scope']}) t, json_each(t.Tags) j),
            best AS (
              -- a charge tagged twice for one key (env and Env): the canonical name wins, then an alias, then
              -- a variant; ties break on the raw key so the choice is deterministic, and a key repeated in one
              -- JSON object is read at its first occurrence (as json_extract_string, so Attribution.value_sql, does)
              SELECT r.Tags, km.canon_key AS key,
                     arg_min(r.raw_key, (CAST(km.prio AS VARCHAR) || r.raw_key, r.pos)) AS raw_key,
                     arg_min(r.raw_value, (CAST(km.prio AS VARCHAR) || r.raw_key, r.pos)) AS raw_value
              FROM raw r JOIN {n['keymap']} km ON km.raw_key = r.raw_key AND km.counts
              GROUP BY ALL),
            judged AS (
              SELECT b.*, vm.value, vm.value_match, vm.status, km.key_match
              FROM best b JOIN {n['valmap']} vm ON vm.canon_key = b.key AND vm.raw_value IS NOT DISTINCT FROM b.raw_value
                          JOIN {n['keymap']} km ON km.raw_key = b.raw_key)
            SELECT * FROM judged""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['facts']} AS
            WITH req AS ({req})
            -- every key on every charge: a tag is read wherever it is set (showback by model attributes a non-AI
            -- charge tagged model=x to x, as Attribution.owner_sql does); `applies` says where the key is audited
            -- (a key `required: ai` only on AI spend): coverage and violations read those rows only
            SELECT s.*, req.key, req.required,
                   (req.required <> 'ai' OR s.x_AiWorkload IS NOT NULL) AS applies,
                   coalesce(j.status, 'missing') AS status,
                   j.value, j.raw_key, j.raw_value, j.key_match, j.value_match
            FROM {n['scope']} s CROSS JOIN req
            LEFT JOIN {n['judged']} j ON j.Tags = s.Tags AND j.key = req.key""")
        # per key: the consolidated value when valid, and (suffix __value) the consolidated value whatever its status.
        # A charge's values depend on its tags alone, so they are pivoted once per distinct tag set (a temp table of
        # 60 rows on the sample) and joined back on Tags: pivoted per charge from the facts view, they were derived
        # again by each of the report's queries over the wide view (showback's six, top values, environments, the
        # always-on GPUs). A charge without a judged key (no tags, none in the policy) gets NULLs either way.
        pivot = ",\n".join(
            f"max(value) FILTER (WHERE key = {sql_str(k)} AND status = 'ok') AS {ident(k)}, "
            f"max(value) FILTER (WHERE key = {sql_str(k)}) AS {ident(k + '__value')}" for k in p.keys)
        keys_sql = ", ".join(sql_str(k) for k in p.keys) or "NULL"
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {n['wtags']} AS
            SELECT Tags, {pivot}
            FROM {n['judged']} WHERE value IS NOT NULL AND key IN ({keys_sql}) GROUP BY Tags""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW {n['wide']} AS
            SELECT s.*, {', '.join('w.' + ident(k) + ', w.' + ident(k + '__value') for k in p.keys)}
            FROM {n['scope']} s LEFT JOIN {n['wtags']} w ON w.Tags = s.Tags""")

    def close(self) -> None:
        """Drop the temp tables and views (they also vanish with the connection)."""
        with own_objects(self.con):
            for kind in ("wide", "facts", "valmap", "keymap", "raw", "scope"):
                self.con.execute(f"DROP VIEW IF EXISTS {self.names[kind]}")
            self.con.execute(f"DROP TABLE IF EXISTS {self.names['judged']}")
            self.con.execute(f"DROP TABLE IF EXISTS {self.names['wtags']}")
            self.con.execute(f"DROP TABLE IF EXISTS {self.names['kv']}")
            self.con.execute(f"DROP TABLE IF EXISTS {self.names['findings']}")
            for name in self._memo.values():
                self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self._memo.clear()
            self.con.execute(f"DROP TABLE IF EXISTS {self.names['hours']}")

    def __enter__(self) -> TagAudit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run SQL where ``@scope``, ``@facts``, ``@wide``, ``@raw``, ``@keymap``, ``@valmap`` name the views."""
        return self.con.sql(self._named(query))

    def table(self, query: str) -> str:
        """The name of a temporary table of the rows of ``query`` (named as in :meth:`sql`), made on the first call
        with that query and dropped with the audit's tables (:meth:`close`).

        Why: the showback reads the same per-owner sums of the wide view for each method and for the monthly
        table; derived in each of its queries, they were the scan of every charge six times in the report."""
        if query not in self._memo:
            name = f"{self.names['scope']}_memo{len(self._memo)}"
            with own_objects(self.con):
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {self._named(query)}")
            self._memo[query] = name
        return self._memo[query]

    def _named(self, query: str) -> str:
        for kind in sorted(self.names, key=len, reverse=True):  # plain replace: a regex may contain braces
            query = query.replace("@" + kind, self.names[kind])
        return query

    # ------------------------------------------------------------------------------------------------ results

    def key_map(self) -> pd.DataFrame:
        """Every tag key seen in scope: the policy key it maps to, how (canonical/alias/variant/near-duplicate/
        not in policy), whether it counts for coverage, and the dollars (EffectiveCost > 0) of rows carrying it."""
        return self.sql("""
            SELECT raw_key, canon_key AS policy_key, key_match, counts AS counted, rows,
                   CAST(positive_cost AS DOUBLE) AS cost
            FROM @keymap ORDER BY positive_cost DESC, raw_key""").df()

    def value_map(self, key: str | None = None) -> pd.DataFrame:
        """Raw value -> canonical value per policy key, with how it matched and its status (ok/empty/invalid)."""
        where = f"WHERE canon_key = {sql_str(key)}" if key else ""
        return self.sql(f"""
            SELECT canon_key AS key, raw_value, value, value_match, status, CAST(positive_cost AS DOUBLE) AS cost
            FROM @valmap {where} ORDER BY canon_key, positive_cost DESC, raw_value""").df()

    def coverage(self, by: str | None = None, *, ai_only: bool = False, keys: Sequence[str] | None = None
                 ) -> pd.DataFrame:
        """Cost-weighted coverage per required key, plus ``(all required)`` (a charge with every applicable key
        valid), optionally per dimension (provider, account, service, service_category, month, ai_workload).

        Columns: [by], key, covered_cost, total_cost, coverage (percent), band. ``total_cost`` differs by key
        when a key is required only on AI spend.
        """
        grp = _dim(by)
        req = [k for k in (keys or self.policy.required) if k in self.policy.keys]
        keys_sql = ", ".join(sql_str(k) for k in req) or "NULL"
        ai = "AND x_AiWorkload IS NOT NULL" if ai_only else ""
        g = f"{ident(by)}, " if by else ""
        # the facts of the charges, added up per tag set first: a charge's statuses depend on its tags (and whether
        # it is AI spend, where a key `required: ai` applies) alone, so the charges of one (dimension value, tag
        # set, AI or not) are judged alike and their exact DECIMAL sum stands for them -- the same sums as per
        # charge, without joining every charge to the judgement once per key in each of the report's 9 coverages
        df = self.sql(f"""
            WITH s AS (SELECT {g}Tags, x_AiWorkload IS NOT NULL AS ai, sum(cost) AS cost
                       FROM @scope WHERE cost > 0 {ai} GROUP BY ALL),
            req AS ({self._req}),
            f AS (SELECT s.*, req.key, coalesce(j.status, 'missing') AS status
                  FROM s CROSS JOIN req LEFT JOIN @judged j ON j.Tags = s.Tags AND j.key = req.key
                  WHERE (req.required <> 'ai' OR s.ai) AND req.key IN ({keys_sql})),
            per_key AS (
              SELECT {g}key, sum(cost) FILTER (WHERE status = 'ok') AS covered, sum(cost) AS total
              FROM f GROUP BY ALL),
            per_row AS (  -- one cost per (dimension value, tag set, AI or not): its charges, each once
              SELECT {g}Tags, ai, cost, bool_and(status = 'ok') AS ok FROM f GROUP BY ALL),
            everything AS (
              SELECT {g}{sql_str(ALL_REQUIRED)} AS key, sum(cost) FILTER (WHERE ok) AS covered, sum(cost) AS total
              FROM per_row GROUP BY ALL)
            SELECT {g}key, CAST(coalesce(covered, 0) AS DOUBLE) AS covered_cost, CAST(total AS DOUBLE) AS total_cost,
                   100.0 * CAST(coalesce(covered, 0) AS DOUBLE) / nullif(CAST(total AS DOUBLE), 0) AS coverage
            FROM (SELECT * FROM per_key UNION ALL SELECT * FROM everything)""").df()
        order = {k: i for i, k in enumerate([*req, ALL_REQUIRED])}
        df["band"] = [self.policy.maturity_bands.band(v) for v in df["coverage"]]
        df["_o"] = df["key"].map(order)
        sort = ([by] if grp else []) + ["_o"]
        return df.sort_values(sort).drop(columns="_o").reset_index(drop=True)

    def _violations_sql(self) -> str:
        """Violations at (type, key, raw key, raw value, account, resource) grain, positive cost only."""
        return f"""
            SELECT type, key, raw_key, raw_value, detail, action, account, account_id, ResourceId,
                   count(*) AS rows, sum(cost) AS cost
            FROM ({self._violation_findings_sql()}) GROUP BY ALL"""

    def _violation_findings_sql(self) -> str:
        """One row per finding: (charge ``_rid``, type, key, raw key, ...) with the charge's cost. A charge with
        several findings (``Env`` and ``Team`` both misspelled) has several rows: sum ``cost`` over distinct
        ``_rid`` for the dollars of charges (:meth:`violation_totals`, :meth:`resource_work`).

        Computed once per audit into a temporary table, as the ``kv`` table is: the violations, their per-resource
        work list, the type totals and the violated spend each read the findings (the report's audit cell read
        them five times)."""
        if not self._findings_built:
            with own_objects(self.con):
                self.con.execute(self._named(
                    f"CREATE OR REPLACE TEMP TABLE @findings AS {self._violation_findings_query()}"))
            self._findings_built = True
        return "SELECT * FROM @findings"

    def _violation_findings_query(self) -> str:
        rules = {k.name: k.describe_rule() for k in self.policy.keys.values()}
        rule_case = "CASE key " + " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in rules.items()) + " END"
        return f"""
            WITH f AS (SELECT * FROM @facts WHERE applies AND cost > 0 AND required <> 'no'),
            rawk AS (SELECT r._rid, r.raw_key, r.raw_value, km.canon_key, km.key_match
                     FROM @raw r JOIN @keymap km USING (raw_key)),
            -- variant spellings of keys outside the policy (e.g. 'CostCenter' vs 'cost_center'): the spelling
            -- with the most dollars is the suggested name; on equal dollars the one on more charges, then the
            -- first in code-point order (never the one the scan met first)
            groups AS (SELECT raw_key, {key_norm_sql('raw_key')} AS norm,
                              arg_min(raw_key, (-positive_cost, -rows, raw_key))
                                OVER (PARTITION BY {key_norm_sql('raw_key')}) AS dominant,
                              count(*) OVER (PARTITION BY {key_norm_sql('raw_key')}) AS spellings
                       FROM @keymap WHERE canon_key IS NULL),
            v AS (
              SELECT 'missing key' AS type, key, NULL AS raw_key, NULL AS raw_value,
                     'tag "' || key || '" is absent' AS detail,
                     'add tag ' || key || ' (' || {rule_case} || ')' AS action, account, account_id, ResourceId, cost,
                     _rid
              FROM f WHERE status = 'missing'
              UNION ALL
              SELECT 'empty value', key, raw_key, raw_value, 'tag "' || raw_key || '" has an empty value',
                     'set a value for ' || key || ' (' || {rule_case} || ')', account, account_id, ResourceId, cost, _rid
              FROM f WHERE status = 'empty'
              UNION ALL
              SELECT 'invalid value', key, raw_key, raw_value, raw_key || '=' || raw_value || ' is not allowed',
                     'use ' || {rule_case} || ', or add a value alias', account, account_id, ResourceId, cost, _rid
              FROM f WHERE status = 'invalid'
              UNION ALL
              SELECT 'value variant', key, raw_key, raw_value, raw_key || '=' || raw_value || ' means ' || value,
                     'retag ' || key || '=' || value || ' at the source', account, account_id, ResourceId, cost, _rid
              FROM f WHERE status = 'ok' AND value_match IN ('alias', 'variant')
              UNION ALL
              SELECT 'key variant', r.canon_key, r.raw_key, NULL,
                     '"' || r.raw_key || '" is ' || CASE r.key_match WHEN 'alias' THEN 'an alias'
                        WHEN 'variant' THEN 'a case/separator variant' ELSE 'a near-duplicate (typo?)' END
                       || ' of "' || r.canon_key || '"',
                     'rename tag "' || r.raw_key || '" to "' || r.canon_key || '"', s.account, s.account_id, s.ResourceId, s.cost, s._rid
              FROM rawk r JOIN @scope s USING (_rid)
              WHERE s.cost > 0 AND r.key_match IN ('alias', 'variant', 'near-duplicate')
              UNION ALL
              SELECT 'key variant', NULL, r.raw_key, NULL,
                     '"' || r.raw_key || '" and "' || g.dominant || '" differ only by case or separators',
                     'rename tag "' || r.raw_key || '" to "' || g.dominant || '"', s.account, s.account_id, s.ResourceId, s.cost, s._rid
              FROM rawk r JOIN groups g USING (raw_key) JOIN @scope s USING (_rid)
              WHERE s.cost > 0 AND g.spellings > 1 AND r.raw_key <> g.dominant)
            SELECT * FROM v"""

    def violations(self, limit: int | None = None) -> pd.DataFrame:
        """Policy violations ranked by dollars (EffectiveCost > 0 of the charges behind them).

        Types: missing key, empty value, invalid value, key variant (an alias, a case/separator variant or a
        near-duplicate of a policy key, or spellings of one non-policy key), value variant (an alias or case
        variant of a canonical value). Each line names the accounts and resources behind it (top 3 by dollars),
        the share of in-scope spend, and what to do.
        """
        lim = f"LIMIT {int(limit)}" if limit else ""
        return self.sql(f"""
            WITH vr AS (SELECT hash(type, key, raw_key, raw_value, detail) AS vid, * FROM ({self._violations_sql()})),
            total AS (SELECT sum(cost) AS t FROM @scope WHERE cost > 0),
            acc AS (SELECT vid, account, sum(cost) AS cost FROM vr GROUP BY ALL),
            res AS (SELECT vid, ResourceId, sum(cost) AS cost FROM vr WHERE ResourceId IS NOT NULL GROUP BY ALL),
            -- one header per violation: grouped by what the id hashes (and the action, which follows from it),
            -- so a header never comes from whichever row the scan met first
            head AS (SELECT vid, type, key, detail, action, raw_key, raw_value, sum(cost) AS cost,
                            CAST(sum(rows) AS BIGINT) AS rows,
                            count(DISTINCT ResourceId) AS resources, count(DISTINCT account) AS accounts
                     FROM vr GROUP BY vid, type, key, detail, action, raw_key, raw_value),
            top_acc AS (SELECT vid, array_to_string(list(account ORDER BY cost DESC, account)[1:3], '; ') AS top_accounts
                        FROM acc GROUP BY vid),
            top_res AS (SELECT vid, array_to_string(list(ResourceId ORDER BY cost DESC, ResourceId)[1:3], '; ')
                               AS top_resources FROM res GROUP BY vid)
            SELECT h.type, h.key, h.detail, h.action, CAST(h.cost AS DOUBLE) AS cost,
                   100.0 * CAST(h.cost AS DOUBLE) / CAST((SELECT t FROM total) AS DOUBLE) AS pct_of_spend,
                   h.rows, h.resources, h.accounts, a.top_accounts, r.top_resources, h.raw_key, h.raw_value
            FROM head h LEFT JOIN top_acc a USING (vid) LEFT JOIN top_res r USING (vid)
            ORDER BY h.cost DESC, h.type, h.key, h.detail {lim}""").df()

    def violation_resources(self) -> duckdb.DuckDBPyRelation:
        """Violations per account and resource (the owners' work list), largest first, as a lazy relation."""
        return self.sql(f"""
            SELECT type, key, detail, action, account, account_id, ResourceId AS resource_id, rows, cost
            FROM ({self._violations_sql()}) ORDER BY cost DESC, type, key, detail, account, resource_id""")

    def violation_totals(self) -> pd.DataFrame:
        """Per violation type: the dollars of the charges behind it, each charge once (``cost``), how many charges
        (``charges``) and how many findings (``findings``: a charge with ``Env`` and ``Team`` misspelled is two
        key-variant findings, one charge), largest first.

        Why: summing the violation lines of a type counted such a charge once per key, and the sample's "key
        variant $8,938,481.84" exceeded its whole spend of $5,209,232.89 (a charge tagged Team/Project/Owner/Env
        counted four times); the charges behind key variants cost $2,522,880.38."""
        df = self.sql(f"""
            WITH fnd AS ({self._violation_findings_sql()}),
            per_charge AS (SELECT type, _rid, any_value(cost) AS cost, count(*) AS findings FROM fnd GROUP BY ALL)
            SELECT type, CAST(sum(cost) AS DOUBLE) AS cost, count(*) AS charges,
                   CAST(sum(findings) AS BIGINT) AS findings
            FROM per_charge GROUP BY type ORDER BY cost DESC, type""").df()
        return df

    def violated_spend(self) -> tuple[float, int, float | None]:
        """The dollars of the charges with at least one violation, each charge once, how many charges, and their
        share of the scope's spend in % (EffectiveCost > 0, as :meth:`violations`' shares; None without spend).

        Why: the per-type totals (:meth:`violation_totals`) count a charge once per type, so they add up to more
        than the spend (demo: $7.90M against $5.21M) and no line said what the violations concern altogether."""
        cost, charges, share = self.sql(f"""
            WITH fnd AS ({self._violation_findings_sql()}),
            per_charge AS (SELECT _rid, any_value(cost) AS cost FROM fnd GROUP BY _rid),
            total AS (SELECT sum(cost) AS t FROM @scope WHERE cost > 0)
            SELECT CAST(coalesce(sum(cost), 0) AS DOUBLE), count(*),
                   100.0 * CAST(sum(cost) AS DOUBLE) / nullif(CAST((SELECT t FROM total) AS DOUBLE), 0)
            FROM per_charge""").fetchall()[0]
        return float(cost), int(charges), None if share is None else float(share)

    def positive_spend(self) -> float:
        """The denominator of every "% of the spend" of the audit (coverage, violation shares): the charges with
        ``EffectiveCost > 0`` in scope, before credits (a credit is neither tagged spend nor a violation)."""
        (t,) = self.sql("SELECT CAST(coalesce(sum(cost), 0) AS DOUBLE) FROM @scope WHERE cost > 0").fetchall()[0]
        return float(t)

    def violated_spend_text(self, money: Any) -> str:
        """One sentence: the charges with at least one violation, how many, and their share of the positive charges
        (:meth:`positive_spend`), its amount named; ``money`` formats an amount (``finops_kit.notebook.money``).

        Why: the report read "74.2% of the spend in scope" while the spend it printed was the $5,209,232.89 net of
        credits (75.9%); the share's denominator was the $5,326,352.04 of positive charges, printed nowhere near
        (review s17 prose, finding 10)."""
        cost, charges, share = self.violated_spend()
        of = (f", {share:.1f}% of the {money(self.positive_spend())} of positive charges in scope (before credits)"
              if share is not None else "")
        return f"Charges with at least one violation: {money(cost)} ({charges:,} charges{of})."

    def resource_work(self, limit: int | None = None) -> pd.DataFrame:
        """The tag work per account and resource: one line per resource, whatever the number of keys to fix on it.

        ``cost`` is the dollars of the resource's charges with at least one violation, each charge once (the
        spend whose allocation the fixes settle: cost at stake, not money saved); ``keys`` the policy keys to fix
        and ``actions`` what to do, each once; ``types`` the violation types. Largest first.

        Why: the per-finding work list (:meth:`violation_resources`) lists a resource once per key, and the report's
        summary showed i-02e6e9067a46b92b2 twice in its top 3 (env, model) with the same $244,457."""
        lim = f"LIMIT {int(limit)}" if limit else ""
        return self.sql(f"""
            WITH fnd AS ({self._violation_findings_sql()}),
            per_charge AS (SELECT account, account_id, ResourceId, _rid, any_value(cost) AS cost
                           FROM fnd GROUP BY ALL),
            charges AS (SELECT account, account_id, ResourceId, sum(cost) AS cost, count(*) AS charges
                        FROM per_charge GROUP BY ALL),
            what AS (SELECT account, account_id, ResourceId,
                            array_to_string(list(DISTINCT coalesce(key, raw_key) ORDER BY coalesce(key, raw_key)),
                                             ', ') AS keys,
                            array_to_string(list(DISTINCT action ORDER BY action), '; ') AS actions,
                            array_to_string(list(DISTINCT type ORDER BY type), ', ') AS types,
                            count(DISTINCT coalesce(key, raw_key)) AS n_keys
                     FROM fnd GROUP BY ALL)
            SELECT c.account, c.account_id, c.ResourceId AS resource_id, w.keys, w.n_keys, w.types, w.actions,
                   c.charges, CAST(c.cost AS DOUBLE) AS cost
            FROM charges c JOIN what w ON w.account IS NOT DISTINCT FROM c.account
              AND w.account_id IS NOT DISTINCT FROM c.account_id AND w.ResourceId IS NOT DISTINCT FROM c.ResourceId
            ORDER BY cost DESC, c.account, resource_id {lim}""").df()

    def export_violations(self, path: str | os.PathLike) -> int:
        """Write the per-resource violation list as CSV (exact decimal dollars) and return its number of rows.

        DuckDB writes the file itself (COPY), so a million-line work list never passes through pandas.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        inner = self.violation_resources().sql_query()
        self.con.execute(f"COPY ({inner}) TO {sql_str(str(path))} (HEADER, DELIMITER ',')")
        return int(self.con.execute(f"SELECT count(*) FROM ({inner})").fetchall()[0][0])

    def top_values(self, key: str | None = None, top_n: int = 5, *, ai_only: bool = False) -> pd.DataFrame:
        """Top ``top_n`` consolidated values per policy key by EffectiveCost, then ``(other)`` and ``(untagged)``.

        Values are after alias and variant consolidation; a charge whose tag is missing, empty or invalid is
        ``(untagged)`` (it cannot be attributed). Like coverage, only charges with EffectiveCost > 0 count: a
        credit is not a cost driver, and a negative bar would hide the spend behind it.
        Columns: key, rank, value, cost, share (percent of the key's total), values (how many values a bar holds).
        """
        keys = [key] if key else list(self.policy.keys)
        for k in keys:
            if k not in self.policy.keys:
                raise ConfigError(f"tag key {k!r}: not in tag_policy.keys ({', '.join(self.policy.keys)})")
        # one scan of the rows, unpivoted to (key, value); a key required only on AI spend is ranked over AI spend
        ai_keys = [k for k in keys if ai_only or self.policy.keys[k].required == "ai"]
        ai_filter = (f"WHERE key NOT IN ({', '.join(sql_str(k) for k in ai_keys)}) OR x_AiWorkload IS NOT NULL"
                     if ai_keys else "")
        cols = ", ".join(ident(k) for k in keys)
        union = f"""
            SELECT key, value, cost
            FROM (SELECT cost, x_AiWorkload, {cols} FROM @wide WHERE cost > 0)
                 UNPIVOT INCLUDE NULLS (value FOR key IN ({cols}))
            {ai_filter}"""
        n = int(top_n)
        df = self.sql(f"""
            WITH v AS (SELECT key, value, sum(cost) AS cost FROM ({union}) GROUP BY ALL),
            r AS (SELECT *, row_number() OVER (PARTITION BY key, value IS NULL ORDER BY cost DESC, value) AS rk FROM v)
            SELECT key, CASE WHEN value IS NULL THEN {sql_str(UNTAGGED)} WHEN rk <= {n} THEN value
                             ELSE {sql_str(OTHER)} END AS value,
                   CASE WHEN value IS NULL THEN {n + 2} WHEN rk <= {n} THEN rk ELSE {n + 1} END AS rank,
                   CAST(sum(cost) AS DOUBLE) AS cost, count(*) AS "values"
            FROM r GROUP BY ALL ORDER BY key, rank""").df()
        totals = df.groupby("key")["cost"].transform("sum")
        df["share"] = 100.0 * df["cost"] / totals.where(totals != 0)
        order = {k: i for i, k in enumerate(keys)}
        df = df.sort_values(["key", "rank"], key=lambda s: s.map(order) if s.name == "key" else s)
        return df[["key", "rank", "value", "cost", "share", "values"]].reset_index(drop=True)

    # ---------------------------------------------------------------------------------------- dev vs prod

    def _env_class(self) -> str:
        env = self.policy.environment_key
        if not env:
            raise ConfigError("tag_policy.environment_key: not set; dev vs prod needs an environment tag key")
        prod = ", ".join(sql_str(v) for v in self.policy.production_values) or "NULL"
        return (f"CASE WHEN {ident(env)} IS NULL THEN 'untagged' WHEN {ident(env)} IN ({prod}) "
                f"THEN 'production' ELSE 'non-production' END")

    def environments(self) -> pd.DataFrame:
        """Spend, AI spend, accelerator instance-hours and their cost per environment value (dev vs prod).

        Columns: environment, env_class (production / non-production / untagged), cost, ai_cost, gpu_hours,
        gpu_cost, unknown_instance_cost. GPU hours are the instance-hours of accelerated instances
        (:mod:`finops_kit.units`: a GCP VM's hours from its machine type, never its vCPU or RAM seconds; fees and
        unused reservations have none): the known ones, NULL (unknown) when every accelerated instance of the
        environment has unknown instance-hours (:func:`finops_kit.units.known_total`'s rule), and
        ``unknown_instance_cost`` the cost of the instances whose instance-hours are unknown (an OCI GPU SKU, a GCP
        GPU or TPU row without machine type: no shape, so no instance count). Why: OCI's GPU spend (USD 2,336)
        showed 0 GPU hours, as if its GPUs had not run.
        """
        env = self.policy.environment_key
        cls = self._env_class()
        hours = units.total("h.instance_hours")
        return self.sql(f"""
            SELECT coalesce({ident(env)}, {sql_str(UNTAGGED)}) AS environment, {cls} AS env_class,
                   CAST(sum(cost) AS DOUBLE) AS cost,
                   CAST(coalesce(sum(cost) FILTER (WHERE x_AiWorkload IS NOT NULL), 0) AS DOUBLE) AS ai_cost,
                   CASE WHEN {hours} IS NULL AND coalesce(bool_or(h.instance_hours_unknown), FALSE) THEN NULL
                        ELSE coalesce({hours}, 0) END AS gpu_hours,
                   CAST(coalesce(sum(cost) FILTER (WHERE x_AiWorkload = 'Accelerated compute'), 0) AS DOUBLE)
                     AS gpu_cost,
                   CAST(coalesce(sum(cost) FILTER (WHERE h.instance_hours_unknown), 0) AS DOUBLE)
                     AS unknown_instance_cost
            FROM @wide LEFT JOIN {self._instance_hours()} h USING (_rid) GROUP BY ALL
            ORDER BY cost DESC, environment""").df()

    def _instance_hours(self) -> str:
        """SQL relation (_rid, instance_hours, instance_hours_unknown) of the accelerated usage rows in scope
        (:mod:`finops_kit.units`): the Usage rows with instance-hours, and every row of an instance whose
        instance-hours are unknown (its NULL hours flagged, so a total can tell unknown from none).

        Made once per audit into a temporary table of those three columns, as the findings are: the environments
        and the always-on GPUs each derived the scope's accelerated usage again (0.15-0.3 s each on the sample)."""
        if not self._hours_built:
            from .querycache import execute

            with own_objects(self.con):
                execute(self.con,
                        f"CREATE OR REPLACE TEMP TABLE {self.names['hours']} AS "
                        f"SELECT _rowid AS _rid, instance_hours, instance_hours_unknown "
                        f"FROM {units.accelerated_usage_from(self.con, self.scope, rowid=True)} "
                        f"WHERE (ChargeCategory = 'Usage' AND instance_hours IS NOT NULL) OR instance_hours_unknown")
            self._hours_built = True
        return self.names["hours"]

    def always_on_gpus(self, office_start: int = 8, office_end: int = 19,
                       office_days: Sequence[int] = (1, 2, 3, 4, 5), timezone: str = "UTC",
                       min_days: float = 7, min_off_hours_share: float = 0.95,
                       include_untagged: bool = False) -> pd.DataFrame:
        """Non-production accelerator resources charged every hour of nights and weekends, and what an
        office-hours schedule would save per month.

        Each usage charge of an 'Accelerated compute' resource is spread over the clock hours of its
        ChargePeriod; the share of each hour the resource ran is its instance-hours (:mod:`finops_kit.units`; a
        GCP VM's from its GPU or vCPU row) over the period length, so a daily row of 24 hours marks all 24 hours and a daily row of
        10 hours marks none as fully used (hourly rows are exact; daily rows cannot say *which* hours ran, so
        the rule errs towards not flagging). Off-hours are hours outside ``office_start``-``office_end`` (local
        ``timezone``) or on days outside ``office_days`` (ISO: 1 = Monday). A resource is always on when, over
        its observed span of at least ``min_days``, at least ``min_off_hours_share`` of the off-hours were fully
        charged. The monthly saving of a schedule is its off-hours cost per hour of span x 730.5 h. A resource is
        its ResourceId without case (:func:`finops_kit.units.resource_key_sql`): Azure spells one VM's id in
        several cases, and each spelling was an always-on row with the whole saving.
        """
        if not (0 <= office_start < office_end <= 24):
            raise ConfigError(f"office hours: expected 0 <= start < end <= 24, got {office_start}..{office_end}")
        days = [int(d) for d in office_days]
        if not all(1 <= d <= 7 for d in days):
            raise ConfigError(f"office days: expected ISO weekdays 1 (Monday) .. 7 (Sunday), got {list(office_days)}")
        env = self.policy.environment_key
        cls = self._env_class()
        classes = "('non-production', 'untagged')" if include_untagged else "('non-production')"
        local = f"timezone({sql_str(timezone)}, timezone('UTC', slot))"
        off = (f"NOT (isodow({local}) IN ({', '.join(map(str, days)) or 'NULL'}) "
               f"AND hour({local}) >= {int(office_start)} AND hour({local}) < {int(office_end)})")
        # the owner as showback, budgets and the summary's actions name it (Attribution.owner_sql: a team,
        # (shared) or (untagged)), not the audit's valid value alone
        attr = self.attribution
        team = attr.owner_sql() if attr.allocation.key in self.policy.keys else "CAST(NULL AS VARCHAR)"
        return self.sql(f"""
            WITH g AS (
              SELECT {units.resource_key_sql()} AS rk, ResourceId, ResourceName, provider, account, x_InstanceType,
                     {ident(env)} AS env,
                     ChargePeriodStart AS s, ChargePeriodEnd AS e, cost,
                     greatest(epoch(ChargePeriodEnd - ChargePeriodStart) / 3600.0, 1e-9) AS period_h,
                     h.instance_hours AS used_h
              FROM @wide LEFT JOIN {self._instance_hours()} h USING (_rid)
              WHERE x_AiWorkload = 'Accelerated compute' AND ChargeCategory = 'Usage' AND ResourceId IS NOT NULL
                AND {cls} IN {classes} AND ChargePeriodEnd > ChargePeriodStart),
            slots AS (
              -- each hour's share of the charge, exact from here (units.MEASURE_SUM_TYPE): a DOUBLE share summed
              -- over hours and charges changed in its last digits with the order DuckDB's threads add rows in
              SELECT rk, slot, CAST(least(used_h / period_h, 1.0) AS {units.MEASURE_SUM_TYPE}) AS frac,
                     CAST(cost / n AS {units.MEASURE_SUM_TYPE}) AS cost
              FROM (SELECT *, unnest(range(date_trunc('hour', s), e, INTERVAL 1 HOUR)) AS slot,
                           len(range(date_trunc('hour', s), e, INTERVAL 1 HOUR)) AS n FROM g)),
            per_slot AS (SELECT rk, slot, least(sum(frac), 1.0) AS frac, sum(cost) AS cost
                         FROM slots GROUP BY ALL),
            res AS (
              SELECT rk, min(slot) AS first_hour, max(slot) AS last_hour,
                     count(*) FILTER (WHERE frac >= 0.99 AND {off}) AS off_hours_charged,
                     sum(cost) AS cost, coalesce(sum(cost) FILTER (WHERE {off}), 0) AS off_hours_cost
              FROM per_slot GROUP BY rk),
            span AS (
              SELECT rk, count(*) AS span_hours, count(*) FILTER (WHERE {off}) AS off_hours
              FROM (SELECT rk, unnest(range(first_hour, last_hour + INTERVAL 1 HOUR, INTERVAL 1 HOUR)) AS slot
                    FROM res) GROUP BY rk),
            -- a resource's owner: the one with the most dollars of all its charges in scope, on equal dollars the
            -- first by name (summary.resource_owners, which names the owner of the summary's action)
            owner AS (SELECT rk, arg_min(team, (-cost, team)) AS team
                      FROM (SELECT {units.resource_key_sql()} AS rk, {team} AS team, sum(cost) AS cost FROM @wide
                            WHERE {units.resource_key_sql()} IN (SELECT rk FROM g) GROUP BY ALL) GROUP BY rk),
            meta AS (SELECT rk, min(ResourceId) AS resource_id, min(ResourceName) AS resource_name,
                            min(provider) AS provider,
                            min(account) AS account, min(x_InstanceType) AS instance_type,
                            string_agg(DISTINCT env, ', ' ORDER BY env) AS environment, min(o.team) AS team
                     FROM g JOIN owner o USING (rk) GROUP BY rk)
            SELECT m.resource_id, m.resource_name, m.provider, m.account, m.instance_type,
                   coalesce(m.environment, {sql_str(UNTAGGED)}) AS environment, m.team,
                   r.first_hour, r.last_hour, sp.span_hours / 24.0 AS span_days,
                   sp.off_hours, r.off_hours_charged,
                   100.0 * r.off_hours_charged / nullif(sp.off_hours, 0) AS off_hours_charged_pct,
                   CAST(r.cost AS DOUBLE) AS cost, CAST(r.off_hours_cost AS DOUBLE) AS off_hours_cost,
                   CAST(r.cost AS DOUBLE) / sp.span_hours * {HOURS_PER_MONTH} AS monthly_cost,
                   CAST(r.off_hours_cost AS DOUBLE) / sp.span_hours * {HOURS_PER_MONTH} AS monthly_saving,
                   (sp.span_hours / 24.0 >= {float(min_days)}
                    AND r.off_hours_charged >= {float(min_off_hours_share)} * sp.off_hours
                    AND sp.off_hours > 0) AS always_on
            FROM res r JOIN span sp USING (rk) JOIN meta m USING (rk)
            ORDER BY always_on DESC, monthly_saving DESC, resource_id""").df()


# --------------------------------------------------------------------------------------- AI spend at a glance


def _dim(by: str | None) -> str | None:
    if by is None:
        return None
    if by not in DIMENSIONS:
        raise ConfigError(f"group by {by!r}: expected one of {', '.join(DIMENSIONS)}")
    return DIMENSIONS[by]


def spend_summary(con: duckdb.DuckDBPyConnection, by: str | Sequence[str] | None = None, *, start: Any = None,
                  end: Any = None, providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Total and AI/ML spend (EffectiveCost, net of credits) per dimension(s), with the AI share in percent.

    ``by``: any of provider, account, service, service_category, month, ai_workload (or a list of them).
    Also returns billed cost, so a reader can see what commitments and credits changed.
    """
    sc = _dim_scope(con, scope, None, start, end, providers)
    dims = [by] if isinstance(by, str) else list(by or [])
    sel = ", ".join(f"{_dim(d)} AS {ident(d)}" for d in dims)
    sel = sel + ", " if sel else ""
    order = ", ".join(ident(d) for d in dims) or "1"
    return con.sql(f"""
        SELECT {sel}CAST(sum(EffectiveCost) AS DOUBLE) AS cost,
               CAST(coalesce(sum(EffectiveCost) FILTER (WHERE x_AiWorkload IS NOT NULL), 0) AS DOUBLE) AS ai_cost,
               100.0 * CAST(coalesce(sum(EffectiveCost) FILTER (WHERE x_AiWorkload IS NOT NULL), 0) AS DOUBLE)
                 / nullif(CAST(sum(EffectiveCost) AS DOUBLE), 0) AS ai_share,
               CAST(sum(BilledCost) AS DOUBLE) AS billed_cost, count(*) AS rows
        FROM {sc.rows_sql()} GROUP BY ALL ORDER BY {order}""").df()


def ai_trend(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
             providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Monthly spend per AI workload category ('Not AI' included), per provider: the trend chart's data."""
    sc = _dim_scope(con, scope, None, start, end, providers)
    return con.sql(f"""
        SELECT {DIMENSIONS['month']} AS month, {DIMENSIONS['provider']} AS provider,
               {DIMENSIONS['ai_workload']} AS ai_workload, CAST(sum(EffectiveCost) AS DOUBLE) AS cost
        FROM {sc.rows_sql()} GROUP BY ALL ORDER BY month, provider, ai_workload""").df()


def accelerator_families(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
                         providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Accelerated compute (GPU/TPU/Trainium/Inferentia) per provider, instance family and currency: cost,
    instance-hours, accelerator-hours, cost per instance-hour and per accelerator-hour, and the spot share.

    Rows, hours, families and rates come from :mod:`finops_kit.units` (the same rates as
    :func:`finops_kit.spot.effective_rates`): a GCP VM's vCPU, RAM and GPU rows are one instance, fees and unused
    reservations have no hours and no family. ``spot_share`` is the share of accelerator-hours on spot, in percent,
    of those that could run on spot (:func:`finops_kit.units.spot_share_sql`; a family of SageMaker endpoints only
    has none).
    """
    from .querycache import frame

    sc = _dim_scope(con, scope, None, start, end, providers)
    # through the query cache: a kernel whose figures all come from it (metrics of the same scope read the same
    # usage) does not derive the usage for this table alone
    return frame(con, f"""
        SELECT coalesce(ProviderName, '(none)') AS provider, instance_family AS family, BillingCurrency AS currency,
               string_agg(DISTINCT instance_type, ', ' ORDER BY instance_type) AS instance_types,
               CAST(sum(EffectiveCost) AS DOUBLE) AS cost,
               {units.total("instance_hours")} AS instance_hours,
               {units.total("accelerator_hours")} AS accelerator_hours,
               CAST({units.rate_sql()} AS DOUBLE) AS cost_per_hour,
               CAST({units.rate_sql("accelerator_hours", "has_accelerator_hours")} AS DOUBLE)
                 AS cost_per_accelerator_hour,
               100.0 * {units.spot_share_sql("accelerator_hours")} AS spot_share
        FROM {units.accelerated_usage_from(con, sc, rowid=True)}  -- the audit's table (its _rowid ignored here)
        WHERE instance_family IS NOT NULL
        GROUP BY ALL ORDER BY cost DESC, provider, family, currency""")


def managed_ai_services(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
                        providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Managed AI services and ML platforms (Bedrock, Vertex AI, Azure OpenAI, SageMaker...) per provider."""
    sc = _dim_scope(con, scope, None, start, end, providers)
    return con.sql(f"""
        SELECT {DIMENSIONS['provider']} AS provider, x_AiWorkload AS ai_workload,
               {DIMENSIONS['service']} AS service, CAST(sum(EffectiveCost) AS DOUBLE) AS cost, count(*) AS rows
        FROM {sc.rows_sql()}
        WHERE x_AiWorkload IN ('Managed AI service', 'ML platform')
        GROUP BY ALL ORDER BY cost DESC, provider, ai_workload, service""").df()


def currencies(con: duckdb.DuckDBPyConnection, *, start: Any = None, end: Any = None,
               providers: Any = None, scope: Scope | None = None) -> list[str]:
    """Billing currencies in scope: sums across more than one are not meaningful without conversion."""
    sc = _dim_scope(con, scope, None, start, end, providers)
    return [r[0] for r in con.execute(
        f"SELECT DISTINCT BillingCurrency FROM {sc.rows_sql()} ORDER BY 1").fetchall()]


# ------------------------------------------------------------------------------------ module-level shortcuts


def coverage(con: duckdb.DuckDBPyConnection, policy: Any = None, *, by: str | None = None, ai_only: bool = False,
             start: Any = None, end: Any = None, providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Cost-weighted coverage (see :meth:`TagAudit.coverage`)."""
    with TagAudit(con, policy, start=start, end=end, providers=providers, scope=scope) as a:
        return a.coverage(by, ai_only=ai_only)


def violations(con: duckdb.DuckDBPyConnection, policy: Any = None, *, limit: int | None = None,
               start: Any = None, end: Any = None, providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Violations ranked by dollars (see :meth:`TagAudit.violations`)."""
    with TagAudit(con, policy, start=start, end=end, providers=providers, scope=scope) as a:
        return a.violations(limit)


def top_values(con: duckdb.DuckDBPyConnection, policy: Any = None, key: str | None = None, top_n: int = 5, *,
               start: Any = None, end: Any = None, providers: Any = None, scope: Scope | None = None) -> pd.DataFrame:
    """Top-N consolidated values per key with (untagged) (see :meth:`TagAudit.top_values`)."""
    with TagAudit(con, policy, start=start, end=end, providers=providers, scope=scope) as a:
        return a.top_values(key, top_n)
