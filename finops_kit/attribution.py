"""Attribution: which team, environment, owner, project, model or cost centre a charge belongs to, and what is shared.

One answer for every analysis (tagging audit, showback, storage, egress, spot, forecast, budgets, anomaly). It comes
from ``tag_policy`` in ``finops.yaml`` only -- no module keeps its own alias list:

* **keys**: a tag counts for a policy key when its name is the key, one of its ``aliases`` or (with
  ``consolidate_variants``) a case/separator variant of them (``TEAM``, ``owner-team`` = ``owner_team``). When a charge
  carries several, the canonical name wins, then an alias, then a variant; ties break on the raw key.
* **values**: ``value_aliases`` map spellings to a canonical value (``stg``/``preprod`` -> ``staging``, ``qa`` ->
  ``test``), compared without case and separators; a key without ``allowed`` values folds case/separator variants
  onto one spelling: a valid one when any is (an invalid spelling never absorbs a valid one), then the one with
  the most dollars. A value is *valid* when it is in ``allowed`` or matches ``pattern``. A namespaced key
  (``project:team``, a GCP project's label; ``aws:createdBy``) is no spelling of a plain one: it counts only when
  the policy names it.
* a charge is **untagged** for a key when the tag is missing, empty or invalid.
* a charge is **shared** (``allocation.shared`` in ``finops.yaml``) when its charge category, service or commitment
  status says so, or its allocation key's value is one of ``shared.tag_values``. Showback, budgets and forecasts use
  this one definition, so ``platform`` is a shared pool in all of them.

How: one aggregate scan of the whole FOCUS table (every period, provider, account and currency, so a value is
spelled the same in every report) collects the distinct (tag key, value) pairs and their dollars; two small tables
map raw keys to policy keys and raw values to canonical values (the SQL the tagging audit joins); from them,
:meth:`Attribution.value_sql` writes a row-level SQL expression (CASE over the few raw keys and values seen), so an
analysis adds ``team`` to its own set-based query without any per-row Python.
"""

from __future__ import annotations

import json
import os
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from .errors import ConfigError
from .sources.base import ident, sql_str

UNTAGGED = "(untagged)"
SHARED = "(shared)"

#: Separators ignored when comparing key and value spellings ("cost_center" ~ "Cost-Center" ~ "costcenter").
_NORM_RE = r"[\s_\-.:/]+"
#: The same for tag keys, except ':': it names a namespace, not a separator -- a GCP project's label is stored as
#: ``project:<label>`` and an AWS-generated tag as ``aws:<tag>`` (README, multi-cloud notes), and
#: ``project:name`` is not a spelling of ``project_name``. It counts only when the policy lists it.
_KEY_NORM_RE = r"[\s_\-./]+"


def norm_sql(expr: str) -> str:
    """SQL: a spelling folded for comparison (lower case, no whitespace or separators)."""
    return f"regexp_replace(lower(trim({expr})), {sql_str(_NORM_RE)}, '', 'g')"


def key_norm_sql(expr: str) -> str:
    """SQL: a tag key folded for comparison like :func:`norm_sql`, keeping ``:`` (a namespace prefix)."""
    return f"regexp_replace(lower(trim({expr})), {sql_str(_KEY_NORM_RE)}, '', 'g')"


def _namespaced(expr: str) -> str:
    return f"(strpos({expr}, ':') > 0)"


def values_sql(rows: list[tuple], columns: list[str], types: list[str]) -> str:
    """A small literal table (SELECT ... FROM VALUES) with typed columns; an empty one when there are no rows."""
    cols = ", ".join(f"CAST({ident('c' + str(i))} AS {t}) AS {ident(c)}"
                     for i, (c, t) in enumerate(zip(columns, types, strict=True)))
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {ident(c)}" for c, t in zip(columns, types, strict=True))
        return f"SELECT {nulls} WHERE FALSE"
    vals = ", ".join("(" + ", ".join(_lit(v) for v in r) + ")" for r in rows)
    names = ", ".join(ident("c" + str(i)) for i in range(len(columns)))
    return f"SELECT {cols} FROM (VALUES {vals}) AS v({names})"


def _lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float):
        return repr(v)
    return sql_str(v)


def kv_sql(rows_sql: str, cost: str = "EffectiveCost") -> str:
    """SQL: the distinct (raw_key, raw_value) tag pairs of the rows of ``rows_sql`` (a FROM item with ``Tags`` and
    ``cost``) with ``rows`` (BIGINT: rows carrying the pair, once per occurrence in a row's JSON) and
    ``positive_cost`` (the exact sum of the positive costs of those rows, NULL when none): :func:`build_maps`' input.

    Why per distinct tag set: a bill has far fewer distinct tag sets than rows (60 for the 67k sample rows), so
    the rows and dollars are added up per tag set first and each set's JSON is parsed once; parsing every row's
    Tags cost 30 ms of every report kernel's attribution maps, the same again for the tag audit's. The sums are
    DECIMAL, exact in any grouping: the same table."""
    return f"""
        WITH t AS (SELECT Tags, count(*) AS rows, sum({cost}) FILTER (WHERE {cost} > 0) AS positive_cost
                   FROM {rows_sql} GROUP BY Tags)
        SELECT j.key AS raw_key, j.value ->> '$' AS raw_value, CAST(sum(t.rows) AS BIGINT) AS rows,
               sum(t.positive_cost) AS positive_cost
        FROM t, json_each(t.Tags) j GROUP BY ALL"""


def build_maps(con: duckdb.DuckDBPyConnection, kv: str, policy: Any, keymap: str, valmap: str) -> None:
    """Create the key map (raw key -> policy key, how it matched, whether it counts, priority) and the value map
    (policy key, raw value -> canonical value, how it matched, ok/empty/invalid) from ``kv``: a table of distinct
    (raw_key, raw_value, rows, positive_cost) pairs."""
    p = policy
    # each name once (an alias listed twice, or a key listing its own name, must not match a raw key twice:
    # every join below would count its rows twice); the canonical name first
    first: dict[str, tuple[str, str, int]] = {}
    for prio, key, name in [(0, k, k.name) for k in p.keys.values()] + [
            (1, k, a) for k in p.keys.values() for a in k.aliases]:
        first.setdefault(name, (key.name, name, prio))
    names = list(first.values())
    pk = values_sql(names, ["canon_key", "name", "prio"], ["VARCHAR", "VARCHAR", "INTEGER"])
    cons = "TRUE" if p.consolidate_variants else "FALSE"
    dist = int(p.near_duplicate_distance)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {keymap} AS
        WITH pk AS ({pk}),
        dk AS (SELECT raw_key, sum(rows) AS rows, coalesce(sum(positive_cost), 0) AS positive_cost
               FROM {kv} GROUP BY raw_key),
        exact AS (SELECT dk.raw_key, pk.canon_key, pk.prio FROM dk JOIN pk ON dk.raw_key = pk.name),
        variant AS (
          SELECT dk.raw_key, min(pk.canon_key) AS canon_key FROM dk JOIN pk
            ON {key_norm_sql('dk.raw_key')} = {key_norm_sql('pk.name')}
          WHERE dk.raw_key NOT IN (SELECT raw_key FROM exact) GROUP BY dk.raw_key),
        -- the nearest policy key; at equal distance the first canonical key by name, never the scan's pick
        near AS (
          SELECT dk.raw_key, arg_min(pk.canon_key, (damerau_levenshtein({norm_sql('dk.raw_key')}, {norm_sql('pk.name')}),
                                                    pk.canon_key)) AS canon_key
          FROM dk JOIN pk
            ON damerau_levenshtein({norm_sql('dk.raw_key')}, {norm_sql('pk.name')})
               <= least({dist}, CASE WHEN length({norm_sql('pk.name')}) >= 8 THEN 2
                                     WHEN length({norm_sql('pk.name')}) >= 4 THEN 1 ELSE 0 END)
              -- a namespaced label (project:name) is no typo of a plain name (project_name), nor the reverse
              AND {_namespaced('dk.raw_key')} = {_namespaced('pk.name')}
          WHERE dk.raw_key NOT IN (SELECT raw_key FROM exact) AND dk.raw_key NOT IN (SELECT raw_key FROM variant)
          GROUP BY dk.raw_key)
        SELECT dk.raw_key, dk.rows, dk.positive_cost,
               coalesce(e.canon_key, v.canon_key, nr.canon_key) AS canon_key,
               CASE WHEN e.prio = 0 THEN 'canonical' WHEN e.prio = 1 THEN 'alias'
                    WHEN v.canon_key IS NOT NULL THEN 'variant'
                    WHEN nr.canon_key IS NOT NULL THEN 'near-duplicate' ELSE 'not in policy' END AS key_match,
               (e.canon_key IS NOT NULL OR (v.canon_key IS NOT NULL AND {cons})) AS counts,
               CASE WHEN e.prio IS NOT NULL THEN e.prio WHEN v.canon_key IS NOT NULL THEN 2 ELSE 9 END AS prio
        FROM dk LEFT JOIN exact e USING (raw_key) LEFT JOIN variant v USING (raw_key)
                LEFT JOIN near nr USING (raw_key)""")

    # policy values: allowed values and alias targets map to themselves; alias spellings to their target
    targets = []
    for k in p.keys.values():
        canon = list(dict.fromkeys([*k.allowed, *k.value_aliases.values()]))
        targets += [(k.name, v, v, "exact") for v in canon]
        targets += [(k.name, raw, tgt, "alias") for raw, tgt in k.value_aliases.items() if raw not in canon]
    pv = values_sql(targets, ["canon_key", "name", "target", "kind"], ["VARCHAR"] * 4)
    valid_cases = []
    for k in p.keys.values():
        conds = []
        if k.allowed:
            conds.append("value IN (" + ", ".join(sql_str(v) for v in k.allowed) + ")")
        if k.pattern:
            conds.append(f"regexp_full_match(value, {sql_str(k.pattern)})")
        valid_cases.append(f"WHEN {sql_str(k.name)} THEN {' OR '.join(conds) if conds else 'TRUE'}")
    valid = f"CASE canon_key {' '.join(valid_cases)} ELSE TRUE END"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {valmap} AS
        WITH pv AS ({pv}),
        v AS (SELECT km.canon_key, kv.raw_value, coalesce(sum(kv.positive_cost), 0) AS positive_cost
              FROM {kv} kv JOIN {keymap} km USING (raw_key) WHERE km.counts GROUP BY ALL),
        e AS (SELECT v.canon_key, v.raw_value, pv.target, pv.kind FROM v JOIN pv
                ON v.canon_key = pv.canon_key AND v.raw_value = pv.name),
        l AS (SELECT v.canon_key, v.raw_value, min(pv.target) AS target FROM v JOIN pv
                ON v.canon_key = pv.canon_key AND {norm_sql('v.raw_value')} = {norm_sql('pv.name')} GROUP BY ALL),
        -- a value's dominant spelling: a valid one when any spelling is valid (an invalid spelling never absorbs
        -- a valid one), then the most dollars, then the first in code-point order
        sp AS (SELECT canon_key, trim(raw_value) AS value, sum(positive_cost) AS positive_cost
               FROM v WHERE trim(coalesce(raw_value, '')) <> '' GROUP BY ALL),
        d AS (SELECT canon_key, {norm_sql('value')} AS norm,
                     arg_min(value, (NOT coalesce({valid}, FALSE), -positive_cost, value)) AS dominant
              FROM sp GROUP BY ALL),
        m AS (
          SELECT v.canon_key, v.raw_value, v.positive_cost,
                 CASE WHEN trim(coalesce(v.raw_value, '')) = '' THEN NULL
                      WHEN e.target IS NOT NULL THEN e.target
                      WHEN {cons} AND l.target IS NOT NULL THEN l.target
                      WHEN {cons} THEN d.dominant
                      ELSE v.raw_value END AS value,
                 CASE WHEN trim(coalesce(v.raw_value, '')) = '' THEN 'empty'
                      WHEN e.kind = 'alias' THEN 'alias'
                      WHEN e.target IS NOT NULL THEN 'exact'
                      WHEN {cons} AND l.target IS NOT NULL THEN 'variant'
                      WHEN {cons} AND d.dominant <> v.raw_value THEN 'variant'
                      ELSE 'exact' END AS value_match
          FROM v LEFT JOIN e USING (canon_key, raw_value) LEFT JOIN l USING (canon_key, raw_value)
                 LEFT JOIN d ON d.canon_key = v.canon_key AND d.norm = {norm_sql('v.raw_value')})
        SELECT *, CASE WHEN value IS NULL THEN 'empty' WHEN {valid} THEN 'ok' ELSE 'invalid' END AS status
        FROM m""")


#: The name the tags column takes inside :func:`per_distinct`.
_TAGS = "_fk_tags"


def per_distinct(expr: str, tags: str) -> str:
    """SQL: ``expr`` (written over ``_fk_tags``) evaluated once per distinct value of the row's ``tags``.

    Why: the tag expressions parse JSON (``json_exists``/``json_extract_string`` for every spelling of a key), and
    evaluated per row they were most of the time of every query that attributes rows (0.7 s of a 1 s metrics query
    on 65k rows, twice when a query also asks whether the row is shared). A bill has far fewer distinct tag sets
    than rows (60 for 65k rows in the samples; one per resource at most), and the value depends on the tags alone:
    as a correlated scalar subquery DuckDB evaluates it once per distinct tag set and joins the result back
    (NULL-safe), the same value for every row, at a fraction of the cost.
    """
    return f"(SELECT {expr} FROM (SELECT {tags} AS {_TAGS}))"


#: Per connection: (warehouse state, policy, allocation, Attribution) of the whole FOCUS table's maps built on it,
#: the latest :data:`_MEMO_ENTRIES`.
_built: weakref.WeakKeyDictionary[Any, list[tuple[str, Any, Any, Attribution]]] = weakref.WeakKeyDictionary()
_MEMO_ENTRIES = 4


def _memo_state(con: duckdb.DuckDBPyConnection, rows_sql: str) -> str | None:
    """The warehouse state under which maps of ``rows_sql`` built on ``con`` may be reused; None: never reuse.

    Why: the maps are built over the whole FOCUS table (:attr:`finops_kit.scope.Scope.attribution`), so they depend
    on the warehouse and the tag policy and allocation only, yet every scope built them again -- three times in the
    forecast report's kernel (its scope, the alerts' month scope, the guardrails' window scope), 0.03-0.07 s each.
    Reused only for the whole FOCUS table, on a connection whose warehouse cannot change under it (a read-only
    file with an ingest ledger: :func:`finops_kit.querycache.warehouse_state`, which also moves with the file's
    change stamps) and whose ``focus`` is not shadowed by a temporary object or macro (the check of the query
    cache, :func:`finops_kit.querycache.cacheable`)."""
    from .querycache import cacheable, warehouse_state
    from .warehouse import FOCUS_TABLE

    if rows_sql != FOCUS_TABLE:
        return None
    state = warehouse_state(con)
    if state is None or not cacheable(con, f"SELECT Tags, EffectiveCost FROM {FOCUS_TABLE}"):
        return None
    return state


def _json_path(key: str) -> str:
    return sql_str("$." + json.dumps(key))


@dataclass
class Attribution:
    """Attribution of FOCUS rows (a scope's: the whole FOCUS table) under one tag policy and allocation (module doc).

    Build it with :meth:`build` (or take ``scope.attribution`` of a resolved :class:`~finops_kit.scope.Scope`).
    ``keymap``/``valmap`` name the temp tables the tagging audit joins; the row-level SQL comes from
    :meth:`value_sql`, :meth:`label_sql`, :meth:`shared_sql` and :meth:`owner_sql`.
    """

    con: duckdb.DuckDBPyConnection
    policy: Any
    allocation: Any
    keymap: str
    valmap: str
    raw_keys: dict[str, list[str]] = field(default_factory=dict)        # policy key -> raw keys, best first
    values: dict[str, dict[Any, tuple[str, str]]] = field(default_factory=dict)  # key -> raw -> (value, status)

    @classmethod
    def build(cls, con: duckdb.DuckDBPyConnection, rows_sql: str, policy: Any = None, allocation: Any = None,
              ) -> Attribution:
        """Scan the rows of ``rows_sql`` (a FROM item with Tags and EffectiveCost) once and build the maps."""
        from .showback import load_allocation
        from .tagging import load_policy

        pol = load_policy(policy)
        if allocation is None and (isinstance(policy, str | os.PathLike)
                                   or (isinstance(policy, dict) and ("tag_policy" in policy or "allocation" in policy))):
            allocation = policy  # a config file or a whole config dict holds both sections
        alloc = load_allocation(allocation)
        from .querycache import own_objects

        state = _memo_state(con, rows_sql)
        for seen, p, a, built in _built.get(con, []) if state is not None else []:
            if seen == state and p == pol and a == alloc:
                return built
        tag = uuid.uuid4().hex[:10]
        kv, keymap, valmap = (f"_fk_attr_{tag}_{n}" for n in ("kv", "keymap", "valmap"))
        with own_objects(con):  # the maps are the kit's own temporary tables (no function or macro)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {kv} AS {kv_sql(rows_sql)}")
            build_maps(con, kv, pol, keymap, valmap)
            con.execute(f"DROP TABLE IF EXISTS {kv}")
        out = cls(con, pol, alloc, keymap, valmap)
        for canon, raw, prio in con.execute(
                f"SELECT canon_key, raw_key, prio FROM {keymap} WHERE counts").fetchall():
            out.raw_keys.setdefault(canon, []).append((f"{prio}{raw}", raw))  # type: ignore[arg-type]
        out.raw_keys = {k: [r for _, r in sorted(v)] for k, v in out.raw_keys.items()}
        for canon, raw, value, status in con.execute(
                f"SELECT canon_key, raw_value, value, status FROM {valmap}").fetchall():
            out.values.setdefault(canon, {})[raw] = (value, status)
        if state is not None:
            _built[con] = [*_built.get(con, [])[-(_MEMO_ENTRIES - 1):], (state, pol, alloc, out)]
        return out

    # ------------------------------------------------------------------------------------------------ row SQL

    def _check(self, key: str) -> None:
        if key not in self.policy.keys:
            raise ConfigError(f"tag key {key!r}: not in tag_policy.keys ({', '.join(self.policy.keys)})")

    def _raw_case(self, key: str, tags: str) -> str | None:
        raws = self.raw_keys.get(key, [])
        if not raws:
            return None
        whens = " ".join(f"WHEN json_exists({tags}, {_json_path(r)}) THEN json_extract_string({tags}, {_json_path(r)})"
                         for r in raws)
        return f"(CASE {whens} END)"

    def raw_value_sql(self, key: str, tags: str = "Tags") -> str:
        """SQL: the raw value of the best tag spelling of ``key`` a row carries (NULL when none)."""
        self._check(key)
        case = self._raw_case(key, _TAGS)
        return "CAST(NULL AS VARCHAR)" if case is None else per_distinct(case, tags)

    def _map_case(self, key: str, raw: str, *, valid_only: bool) -> str | None:
        """SQL: ``raw`` (a raw value of ``key``) mapped to its canonical value (None: no value maps)."""
        pairs = [(r, v) for r, (v, status) in self.values.get(key, {}).items()
                 if r is not None and v is not None and (status == "ok" or not valid_only)]
        if not pairs:
            return None
        whens = " ".join(f"WHEN {sql_str(r)} THEN {sql_str(v)}" for r, v in sorted(pairs))
        return f"(CASE {raw} {whens} END)"

    def value_sql(self, key: str, *, valid_only: bool = True, tags: str = "Tags") -> str:
        """SQL: the canonical value of ``key`` for a FOCUS row; NULL when missing, empty or (``valid_only``) invalid."""
        self._check(key)
        case = self._raw_case(key, _TAGS)
        mapped = None if case is None else self._map_case(key, case, valid_only=valid_only)
        return "CAST(NULL AS VARCHAR)" if mapped is None else per_distinct(mapped, tags)

    def label_sql(self, key: str, tags: str = "Tags") -> str:
        """SQL: the canonical valid value of ``key``, else ``(untagged)``."""
        return f"coalesce({self.value_sql(key, tags=tags)}, {sql_str(UNTAGGED)})"

    def shared_sql(self, key: str | None = None, allocation: Any = None) -> str:
        """SQL predicate: the row is a shared cost (``allocation.shared``): nobody owns it directly."""
        a = allocation or self.allocation
        key = key or a.key
        parts = self._shared_row_parts(a)
        if a.shared_tag_values and key in self.policy.keys:
            vals = ", ".join(sql_str(v.lower()) for v in a.shared_tag_values)
            parts.append(f"lower({self.value_sql(key, valid_only=False)}) IN ({vals})")
        return "(" + (" OR ".join(f"coalesce({p}, FALSE)" for p in parts) or "FALSE") + ")"

    @staticmethod
    def _shared_row_parts(a: Any) -> list[str]:
        """The conditions of ``allocation.shared`` on a row's own columns (not its tags)."""
        parts = []
        if a.shared_charge_categories:
            parts.append("ChargeCategory IN (" + ", ".join(map(sql_str, a.shared_charge_categories)) + ")")
        if a.unused_commitments_shared:
            parts.append("CommitmentDiscountStatus = 'Unused'")
        if a.shared_service_names:
            parts.append("ServiceName IN (" + ", ".join(map(sql_str, a.shared_service_names)) + ")")
        return parts

    def shared_words(self, key: str | None = None, allocation: Any = None) -> str:
        """The shared-cost rule in words, for report text."""
        a = allocation or self.allocation
        key = key or a.key
        words = []
        if a.shared_charge_categories:
            words.append("charge categories " + ", ".join(a.shared_charge_categories))
        if a.unused_commitments_shared:
            words.append("unused commitments")
        if a.shared_service_names:
            words.append("services " + ", ".join(a.shared_service_names))
        if a.shared_tag_values:
            words.append(f"{key} = " + "/".join(a.shared_tag_values))
        return "; ".join(words) or "nothing"

    def owner_sql(self, key: str | None = None) -> str:
        """SQL: who a row is shown back to under the allocation key: its valid value, ``(shared)`` or ``(untagged)``.

        The one definition showback's direct lines, budgets' and forecasts' team dimension use.
        """
        key = key or self.allocation.key
        self._check(key)
        a = self.allocation
        case = self._raw_case(key, _TAGS)
        if not (a.shared_tag_values and case is not None):
            return (f"CASE WHEN {self.shared_sql(key)} THEN {sql_str(SHARED)} "
                    f"ELSE {self.label_sql(key)} END")
        # the same answer as shared_sql/label_sql, with the tag part decided in one lookup per distinct tag set
        # instead of two: one join less per query, and less SQL to plan
        rows = " OR ".join(f"coalesce({p}, FALSE)" for p in self._shared_row_parts(a)) or "FALSE"
        vals = ", ".join(sql_str(v.lower()) for v in a.shared_tag_values)
        any_value = self._map_case(key, case, valid_only=False) or "CAST(NULL AS VARCHAR)"
        valid = self._map_case(key, case, valid_only=True) or "CAST(NULL AS VARCHAR)"
        by_tags = per_distinct(f"CASE WHEN coalesce(lower({any_value}) IN ({vals}), FALSE) THEN {sql_str(SHARED)} "
                               f"ELSE coalesce({valid}, {sql_str(UNTAGGED)}) END", "Tags")
        return f"CASE WHEN ({rows}) THEN {sql_str(SHARED)} ELSE {by_tags} END"

    def dimension_sql(self, key: str) -> str:
        """SQL of a tag dimension as every report shows it: the allocation key (team) as :meth:`owner_sql` --
        ``(shared)`` included -- and any other policy key as :meth:`label_sql`."""
        return self.owner_sql(key) if key == self.allocation.key else self.label_sql(key)

    # ------------------------------------------------------------------------------------------------ words

    def keys_used(self, keys: list[str] | None = None) -> pd.DataFrame:
        """Raw tag keys seen in scope per policy key, how they matched and the dollars behind them (best first)."""
        want = keys or list(self.policy.keys)
        lst = ", ".join(sql_str(k) for k in want) or "NULL"
        return self.con.execute(f"""
            SELECT canon_key AS policy_key, raw_key, key_match, CAST(positive_cost AS DOUBLE) AS cost
            FROM {self.keymap} WHERE counts AND canon_key IN ({lst})
            ORDER BY canon_key, prio, raw_key""").df()

    def describe_keys(self, keys: list[str] | None = None) -> str:
        """One sentence a report prints: which tag keys (and spellings) it attributed by."""
        want = keys or list(self.policy.keys)
        parts = []
        for k in want:
            self._check(k)
            raws = self.raw_keys.get(k, [])
            parts.append(f"{k} <- {', '.join(raws) if raws else '(no such tag in the warehouse)'}")
        return "Tag keys used (tag_policy in finops.yaml): " + "; ".join(parts) + "."


__all__ = ["Attribution", "UNTAGGED", "SHARED", "build_maps", "kv_sql", "norm_sql", "per_distinct", "values_sql"]
