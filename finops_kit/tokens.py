"""Token costs from the bill: what one million tokens of each model costs, on every cloud.

Managed generative-AI services bill one line item per model, token type and tier: AWS Bedrock usage types
(``USE1-Claude4Sonnet-cache-read-input-token-count-cross-region-global``), Azure OpenAI / Foundry meters
(``gpt-4o-mini-0718-Inp-glbl``, ``GPT 5 cached Inp glbl``), Vertex AI SKU descriptions (``Gemini 2.5 Pro Thinking
Text Output``). The reviewed rule table ``data/ai_token_rules.csv`` (override with ``$FINOPS_AI_TOKEN_RULES``) maps
them to ``x_AiModel``, ``x_TokenType`` (input / output / cache read / cache write / thinking), ``x_TokenTier`` and
a token count: PricingQuantity times the block size of the FOCUS PricingUnit (``1000 Tokens``, ``1000000 Units``),
so 1K and 1M meters count the same tokens.

Why at query time, not stored at ingest: the rules change faster than bills (a new model every month), and the
answer for last year's rows must follow the reviewed table of today -- without re-ingesting, which the warehouse
may rightly refuse (an older CUR delivery after a newer one). The derivation never touches money, so it cannot
disturb the ingest reconciliation; it reads only FOCUS and ``x_`` columns of the scope (``scope.rows_sql``) and
touches only the rows of the AI services (a few thousand per month), selected by service name first.

Every Usage row of the AI services ends in exactly one class, and :func:`reconcile` proves it: ``tokens``,
``provisioned throughput`` (Bedrock 1K TPM Hour, Azure PTU), ``cache storage`` (Vertex caching storage hours),
``other AI usage`` (training, endpoint nodes), ``not usage`` (credits, tax, purchases on those services) or
``unmatched`` -- listed by :func:`unmatched` with the reason, never dropped.

Money: EffectiveCost (amortized, what was actually paid for the usage) is the basis of every unit cost; ListCost
is given beside it (what the same tokens cost at list price). Unit costs are of the token rows alone: credits on
the AI services are ``not usage`` rows in the reconciliation, not spread over tokens. Amounts are in the scope's one
currency (:mod:`finops_kit.scope`); team and application come from the tag policy (:mod:`finops_kit.attribution`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import duckdb
import pandas as pd

from .datafiles import data_rows
from .errors import ConfigError
from .schema import MONEY
from .scope import Scope, bind
from .sources.base import ident, sql_str

RULES_ENV = "FINOPS_AI_TOKEN_RULES"
KINDS = ("service", "capacity", "cache storage", "other", "model", "token", "tier", "unit")
TOKEN_TYPES = ("input", "output", "cache read", "cache write", "thinking")
#: Classes of an AI service row (see the module doc), in the order the reconciliation lists them.
CLASSES = ("tokens", "provisioned throughput", "cache storage", "other AI usage", "not usage", "unmatched")
#: Unit costs are shown per million tokens (DECIMAL, 6 places).
PER = 1_000_000
RATE = "DECIMAL(38,6)"
TOKENS = "DECIMAL(38,6)"
COLUMNS = {"ProviderName", "ServiceName", "x_UsageType", "SkuMeter", "SkuId", "ChargeDescription", "PricingUnit",
           "ConsumedUnit", "x_SkuMeterCategory", "x_Operation", "ResourceId", "ServiceSubcategory"}


@dataclass(frozen=True)
class Rule:
    """One row of the token rule table."""

    line: int
    kind: str
    provider_pattern: str
    column: str
    pattern: str
    value: str
    batch: bool
    source: str


@cache
def _load(path: str | None) -> tuple[Rule, ...]:
    name = path or "finops_kit/data/ai_token_rules.csv"
    out = []
    for i, r in enumerate(data_rows("ai_token_rules.csv", path), start=2):
        where = f"{name}: rule {i - 1}"
        kind = (r.get("kind") or "").strip()
        if kind not in KINDS:
            raise ConfigError(f"{where}, column kind: {kind!r}; expected one of {', '.join(KINDS)}")
        col = (r.get("column") or "").strip()
        if col not in COLUMNS:
            raise ConfigError(f"{where}, column column: {col!r}; expected one of {', '.join(sorted(COLUMNS))}")
        value = (r.get("value") or "").strip()
        if not value:
            raise ConfigError(f"{where}, column value: empty; every rule assigns a value")
        if kind == "token" and value not in TOKEN_TYPES:
            raise ConfigError(f"{where}, column value: {value!r}; a token rule assigns one of {', '.join(TOKEN_TYPES)}")
        for c in ("provider_pattern", "pattern"):
            try:
                re.compile(r.get(c) or "")
            except re.error as e:
                raise ConfigError(f"{where}, column {c}: {r.get(c)!r} is not a regular expression ({e})") from None
        batch = (r.get("batch") or "").strip().lower()
        if batch not in ("", "yes", "no"):
            raise ConfigError(f"{where}, column batch: {batch!r}; expected yes, no or empty")
        out.append(Rule(i - 1, kind, (r.get("provider_pattern") or "").strip(), col, r.get("pattern") or "", value,
                        batch == "yes", (r.get("source") or "").strip()))
    return tuple(out)


def rules(path: str | os.PathLike | None = None) -> tuple[Rule, ...]:
    """The token rules (``$FINOPS_AI_TOKEN_RULES`` or ``data/ai_token_rules.csv``), validated: a bad rule is a
    one-line :class:`ConfigError` naming the file, the rule and the column."""
    p = path or os.environ.get(RULES_ENV) or None
    return _load(str(p) if p else None)


def rules_frame(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The rule table as a DataFrame (for a report's appendix)."""
    return pd.DataFrame([{"kind": r.kind, "provider": r.provider_pattern, "column": r.column, "pattern": r.pattern,
                          "value": r.value, "batch": r.batch, "source": r.source} for r in rules(path)])


def _when(r: Rule) -> str:
    prov = r.provider_pattern.strip()
    test = f"regexp_matches(coalesce(CAST({ident(r.column)} AS VARCHAR), ''), {sql_str(r.pattern)})"
    if prov not in ("", ".*", "(?i).*"):
        test = f"regexp_matches(coalesce(ProviderName, ''), {sql_str(prov)}) AND {test}"
    return test


def _case(kind: str, rs: tuple[Rule, ...], then: str = "value") -> str:
    """CASE over the rules of one kind (first match wins), giving the rule's value (or batch flag)."""
    whens = [f"WHEN {_when(r)} THEN {sql_str(r.value) if then == 'value' else ('TRUE' if r.batch else 'FALSE')}"
             for r in rs if r.kind == kind]
    if not whens:
        return "CAST(NULL AS VARCHAR)" if then == "value" else "FALSE"
    default = "" if then == "value" else " ELSE FALSE"
    return "CASE " + " ".join(whens) + default + " END"


def block_size_sql(unit: str) -> str:
    """SQL: the block size of a FOCUS unit -- its leading number ('1000 Tokens' -> 1000, 'Tokens' -> 1).

    The FOCUS Unit Format writes a block-priced unit as '<block size> <unit>' (conformance turns AWS '1K tokens'
    into '1000 Tokens' and Azure '1M' into '1000000 Units', ``data/units.csv``), so the number is the one answer."""
    return (f"coalesce(TRY_CAST(nullif(regexp_extract(trim({unit}), '^([0-9]+)\\s', 1), '') AS {TOKENS}), "
            f"CAST(1 AS {TOKENS}))")


def service_names(con: duckdb.DuckDBPyConnection, sc: Scope, path: str | os.PathLike | None = None
                  ) -> list[tuple[str, str]]:
    """(ProviderName, ServiceName) pairs in scope that the service rules call AI service lines (decided once over
    the distinct names, so the row query filters on plain equality)."""
    rs = rules(path)
    case = _case("service", rs)
    got = con.execute(f"""
        SELECT ProviderName, ServiceName FROM (SELECT DISTINCT ProviderName, ServiceName FROM {sc.rows_sql()})
        WHERE {case} IS NOT NULL ORDER BY 1, 2""").fetchall()
    return [(p, s) for p, s in got]


def rows_sql(con: duckdb.DuckDBPyConnection, sc: Scope, path: str | os.PathLike | None = None) -> str:
    """A FROM item: every row of the AI service lines in scope with the derived columns ``x_AiService``,
    ``x_AiModel``, ``x_TokenType``, ``x_TokenTier``, ``x_TokenBatch``, ``x_TokenCount`` (NULL unless a token row),
    ``x_TokenClass`` (see :data:`CLASSES`) and ``x_TokenUnmatched`` (why a Usage row is unmatched), plus ``_rowid``."""
    rs = rules(path)
    pairs = service_names(con, sc, path)
    if not pairs:
        keep = "FALSE"
    else:
        keep = "(ProviderName, ServiceName) IN (" + ", ".join(
            f"({sql_str(p)}, {sql_str(s)})" for p, s in pairs) + ")"
    block = block_size_sql("PricingUnit")
    return f"""(
      WITH r AS (
        SELECT *, {_case('service', rs)} AS x_AiService, {_case('capacity', rs)} AS _capacity,
               {_case('cache storage', rs)} AS _cache_storage, {_case('other', rs)} AS _other,
               {_case('model', rs)} AS x_AiModel, {_case('token', rs)} AS _token,
               {_case('tier', rs)} AS _tier, {_case('tier', rs, then='batch')} AS x_TokenBatch,
               {_case('unit', rs)} AS _unit
        FROM {sc.rows_sql(rowid=True)} WHERE {keep}),
      c AS (
        SELECT *, CASE
            WHEN ChargeCategory IS DISTINCT FROM 'Usage' THEN 'not usage'
            WHEN _capacity IS NOT NULL THEN 'provisioned throughput'
            WHEN _cache_storage IS NOT NULL THEN 'cache storage'
            WHEN _other IS NOT NULL THEN 'other AI usage'
            WHEN x_AiModel IS NOT NULL AND _token IS NOT NULL AND _unit IS NOT NULL
                 AND PricingQuantity IS NOT NULL THEN 'tokens'
            ELSE 'unmatched' END AS x_TokenClass
        FROM r)
      SELECT * EXCLUDE (_capacity, _cache_storage, _other, _token, _tier, _unit),
             CASE WHEN x_TokenClass = 'tokens' THEN _token END AS x_TokenType,
             CASE WHEN x_TokenClass IN ('tokens', 'provisioned throughput') THEN coalesce(_tier, 'standard') END
               AS x_TokenTier,
             CASE WHEN x_TokenClass = 'tokens' THEN CAST(PricingQuantity * {block} AS {TOKENS}) END AS x_TokenCount,
             CASE WHEN x_TokenClass <> 'unmatched' THEN NULL
                  WHEN x_AiModel IS NULL THEN 'no model rule matches'
                  WHEN _token IS NULL THEN 'no token-type rule matches'
                  WHEN _unit IS NULL THEN 'unit ' || coalesce('''' || PricingUnit || '''', 'NULL') || ' is not a token count'
                  ELSE 'no quantity' END AS x_TokenUnmatched
      FROM c)"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A small aggregate as pandas, DECIMAL kept as Decimal (unit costs are compared exactly)."""
    return con.sql(sql).to_arrow_table().to_pandas()


def _per_m(cost: str, tokens: str) -> str:
    return f"CAST({cost} * {PER} / nullif({tokens}, 0) AS {RATE})"


# ---------------------------------------------------------------------------------------------------- analyses

def reconcile(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
              config: Any = None) -> pd.DataFrame:
    """Per currency, provider and AI service: EffectiveCost and BilledCost of each class (:data:`CLASSES`) and of
    all the service's rows counted independently; ``ok`` is true when the classes add up to that total exactly.

    This is what "totals reconcile to the AI service lines" means: every row of those services is in exactly one
    class, so the token cost plus the listed remainder is the services' bill."""
    sc = bind(con, scope, config)
    pairs = service_names(con, sc, path)
    keep = ("(ProviderName, ServiceName) IN (" + ", ".join(f"({sql_str(p)}, {sql_str(s)})" for p, s in pairs) + ")"
            if pairs else "FALSE")
    cls = ", ".join(
        f"coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenClass = {sql_str(c)}), 0)::{MONEY} AS {ident(c)}"
        for c in CLASSES)
    return _frame(con, f"""
        WITH k AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiService AS service, {cls},
                 sum(EffectiveCost)::{MONEY} AS classified_cost, count(*) AS classified_rows
          FROM {rows_sql(con, sc, path)} GROUP BY ALL),
        t AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, sum(EffectiveCost)::{MONEY} AS service_cost,
                 sum(BilledCost)::{MONEY} AS service_billed_cost, count(*) AS service_rows
          FROM {sc.rows_sql()} WHERE {keep} GROUP BY ALL)
        SELECT k.* EXCLUDE (classified_cost, classified_rows), t.service_cost, t.service_billed_cost, t.service_rows,
               k.classified_cost, k.classified_rows,
               (k.classified_cost = t.service_cost AND k.classified_rows = t.service_rows
                AND ({' + '.join(ident(c) for c in CLASSES)}) = t.service_cost) AS ok
        FROM k FULL JOIN t USING (currency, provider)
        ORDER BY currency, provider""")


def unmatched(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
              config: Any = None) -> pd.DataFrame:
    """The Usage rows of the AI services no rule explains, grouped by what a reviewer would add a rule for:
    provider, service, usage type / meter / SKU, pricing unit and the reason -- with rows, quantity and cost."""
    sc = bind(con, scope, config)
    return _frame(con, f"""
        SELECT BillingCurrency AS currency, ProviderName AS provider, ServiceName AS service,
               coalesce(x_UsageType, SkuMeter, ChargeDescription) AS usage_type, PricingUnit AS pricing_unit,
               x_TokenUnmatched AS reason, count(*) AS rows, CAST(sum(PricingQuantity) AS DOUBLE) AS quantity,
               sum(EffectiveCost)::{MONEY} AS cost
        FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'unmatched'
        GROUP BY ALL ORDER BY currency, cost DESC, provider, usage_type""")


_DIMS = {"provider": "ProviderName", "service": "x_AiService", "model": "x_AiModel", "token_type": "x_TokenType",
         "tier": "x_TokenTier", "batch": "x_TokenBatch", "month": "CAST(date_trunc('month', ChargePeriodStart) AS DATE)",
         "billing_period": "CAST(BillingPeriodStart AS DATE)", "account": "coalesce(SubAccountName, SubAccountId)"}


def _dims(by: tuple[str, ...] | list[str], sc: Scope) -> list[tuple[str, str]]:
    out = []
    for d in by:
        if d in _DIMS:
            out.append((d, _DIMS[d]))
        else:  # a tag_policy key: the one attribution every report uses
            out.append((d, sc.attribution.dimension_sql(d)))
    return out


def unit_costs(con: duckdb.DuckDBPyConnection, scope: Scope | None = None,
               by: tuple[str, ...] | list[str] = ("provider", "model", "token_type"), *,
               path: str | os.PathLike | None = None, config: Any = None) -> pd.DataFrame:
    """Tokens and cost of the token rows per ``by`` (any of provider, service, model, token_type, tier, batch,
    month, billing_period, account, or a tag_policy key such as team / project), with the unit costs:

    * ``cost_per_1m`` = Σ EffectiveCost / Σ tokens x 1,000,000 (what a million tokens actually cost),
    * ``list_per_1m`` = Σ ListCost / Σ tokens x 1,000,000 (at list price; NULL when a row has no ListCost),
    * ``billed_cost`` beside them; ``token_share`` = the group's share of all tokens of its currency.
    """
    sc = bind(con, scope, config)
    dims = _dims(by, sc)
    sel = ", ".join(f"{expr} AS {ident(name)}" for name, expr in dims)
    names = ", ".join(ident(n) for n, _ in dims)
    return _frame(con, f"""
        WITH g AS (
          SELECT BillingCurrency AS currency, {sel}, sum(x_TokenCount) AS tokens,
                 sum(EffectiveCost)::{MONEY} AS cost, sum(BilledCost)::{MONEY} AS billed_cost,
                 CASE WHEN count(*) = count(ListCost) THEN sum(ListCost) END::{MONEY} AS list_cost,
                 count(*) AS rows
          FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL)
        SELECT currency, {names}, CAST(tokens AS DOUBLE) AS tokens, cost, list_cost, billed_cost,
               {_per_m('cost', 'tokens')} AS cost_per_1m, {_per_m('list_cost', 'tokens')} AS list_per_1m,
               CAST(tokens / nullif(sum(tokens) OVER (PARTITION BY currency), 0) AS DOUBLE) AS token_share,
               rows, tokens AS tokens_exact
        FROM g ORDER BY currency, cost DESC NULLS LAST, {names}""")


def trend(con: duckdb.DuckDBPyConnection, scope: Scope | None = None,
          by: tuple[str, ...] | list[str] = ("provider", "model"), *, path: str | os.PathLike | None = None,
          config: Any = None) -> pd.DataFrame:
    """Monthly (charge month) tokens, cost and cost per 1M tokens per ``by``: the unit-cost trend."""
    return unit_costs(con, scope, ("month", *by), path=path, config=config).sort_values(
        ["currency", "month", *by]).reset_index(drop=True)


def cache_savings(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *,
                  path: str | os.PathLike | None = None, config: Any = None) -> pd.DataFrame:
    """Prompt caching per provider, model and tier: how many prompt tokens came from the cache and what it saved.

    * ``cache_hit_share`` = cache-read tokens / (input + cache-read + cache-write tokens): the share of prompt tokens
      served from the cache.
    * ``input_per_1m``: the rate the model's uncached input tokens actually cost in that tier (EffectiveCost).
    * ``read_savings`` = cache-read tokens priced at that input rate − what the cache reads cost.
    * ``write_premium`` = what cache writes cost − the same tokens at the input rate (Anthropic models charge more
      to write the cache; Azure and Gemini have no write line).
    * ``storage_cost``: context-cache storage hours of the model (Vertex), a cost of caching too.
    * ``net_savings`` = read_savings − write_premium − storage_cost. NULL when the tier has no input tokens in scope
      to price the reads with (shown, not guessed).
    """
    sc = bind(con, scope, config)
    return _frame(con, f"""
        WITH t AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiModel AS model,
                 coalesce(x_TokenTier, 'standard') AS tier,
                 coalesce(sum(x_TokenCount) FILTER (WHERE x_TokenType = 'input'), 0) AS input_tokens,
                 coalesce(sum(x_TokenCount) FILTER (WHERE x_TokenType = 'cache read'), 0) AS cache_read_tokens,
                 coalesce(sum(x_TokenCount) FILTER (WHERE x_TokenType = 'cache write'), 0) AS cache_write_tokens,
                 coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenType = 'input'), 0)::{MONEY} AS input_cost,
                 coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenType = 'cache read'), 0)::{MONEY} AS cache_read_cost,
                 coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenType = 'cache write'), 0)::{MONEY}
                   AS cache_write_cost
          FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL),
        s AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiModel AS model,
                 sum(EffectiveCost)::{MONEY} AS storage_cost
          FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'cache storage' GROUP BY ALL),
        m AS (
          SELECT *, CAST(input_cost / nullif(input_tokens, 0) AS DECIMAL(38,18)) AS input_rate,
                 row_number() OVER (PARTITION BY currency, provider, model ORDER BY cache_read_tokens DESC, tier)
                   AS _first
          FROM t WHERE cache_read_tokens > 0 OR cache_write_tokens > 0)
        SELECT m.currency, m.provider, m.model, m.tier,
               CAST(input_tokens AS DOUBLE) AS input_tokens, CAST(cache_read_tokens AS DOUBLE) AS cache_read_tokens,
               CAST(cache_write_tokens AS DOUBLE) AS cache_write_tokens,
               CAST(cache_read_tokens / nullif(input_tokens + cache_read_tokens + cache_write_tokens, 0) AS DOUBLE)
                 AS cache_hit_share,
               CAST(input_rate * {PER} AS {RATE}) AS input_per_1m,
               {_per_m('cache_read_cost', 'cache_read_tokens')} AS cache_read_per_1m,
               cache_read_cost, cache_write_cost,
               CAST(cache_read_tokens * input_rate - cache_read_cost AS {MONEY}) AS read_savings,
               CAST(cache_write_cost - cache_write_tokens * input_rate AS {MONEY}) AS write_premium,
               -- a model's storage hours are counted once, on its tier with the most cache reads
               CASE WHEN _first = 1 THEN coalesce(s.storage_cost, 0) ELSE 0 END::{MONEY} AS storage_cost,
               CAST(cache_read_tokens * input_rate - cache_read_cost - (cache_write_cost - cache_write_tokens * input_rate)
                    - CASE WHEN _first = 1 THEN coalesce(s.storage_cost, 0) ELSE 0 END AS {MONEY}) AS net_savings
        FROM m LEFT JOIN s USING (currency, provider, model)
        ORDER BY m.currency, net_savings DESC NULLS LAST, m.provider, m.model, m.tier""")


def batch_vs_on_demand(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *,
                       path: str | os.PathLike | None = None, config: Any = None) -> pd.DataFrame:
    """Per provider, model and token type: tokens, cost and cost per 1M on batch tiers and on the others
    (on-demand), the batch discount, and what the on-demand tokens would have cost at the batch rate
    (``batch_opportunity``: only where the model has batch usage in scope -- a rate seen on the bill, not a price
    list)."""
    sc = bind(con, scope, config)
    return _frame(con, f"""
        WITH g AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiModel AS model, x_TokenType AS token_type,
                 coalesce(sum(x_TokenCount) FILTER (WHERE NOT x_TokenBatch), 0) AS on_demand_tokens,
                 coalesce(sum(EffectiveCost) FILTER (WHERE NOT x_TokenBatch), 0)::{MONEY} AS on_demand_cost,
                 coalesce(sum(x_TokenCount) FILTER (WHERE x_TokenBatch), 0) AS batch_tokens,
                 coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenBatch), 0)::{MONEY} AS batch_cost
          FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL)
        SELECT currency, provider, model, token_type,
               CAST(on_demand_tokens AS DOUBLE) AS on_demand_tokens, on_demand_cost,
               {_per_m('on_demand_cost', 'on_demand_tokens')} AS on_demand_per_1m,
               CAST(batch_tokens AS DOUBLE) AS batch_tokens, batch_cost,
               {_per_m('batch_cost', 'batch_tokens')} AS batch_per_1m,
               CAST(batch_tokens / nullif(batch_tokens + on_demand_tokens, 0) AS DOUBLE) AS batch_share,
               CAST(1 - (batch_cost / nullif(batch_tokens, 0)) / nullif(on_demand_cost / nullif(on_demand_tokens, 0), 0)
                    AS DOUBLE) AS batch_discount,
               CASE WHEN batch_tokens > 0 THEN
                 CAST(on_demand_cost - on_demand_tokens * batch_cost / batch_tokens AS {MONEY}) END
                 AS batch_opportunity
        FROM g ORDER BY currency, on_demand_cost + batch_cost DESC, provider, model, token_type""")


def capacity(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
             config: Any = None) -> pd.DataFrame:
    """Provisioned throughput / PTU lines (hourly capacity, no token count on the bill) per provider, service,
    model and usage type: hours and cost. Whether the capacity paid off is a commitment question (the
    commitments report); here it is the part of the AI bill that is not priced per token."""
    sc = bind(con, scope, config)
    return _frame(con, f"""
        SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiService AS service, x_AiModel AS model,
               coalesce(x_UsageType, SkuMeter) AS usage_type, PricingUnit AS pricing_unit,
               CAST(sum(PricingQuantity) AS DOUBLE) AS quantity, sum(EffectiveCost)::{MONEY} AS cost,
               count(*) AS rows
        FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'provisioned throughput'
        GROUP BY ALL ORDER BY currency, cost DESC""")


@dataclass
class Summary:
    """The headline token figures of a scope (one currency)."""

    currency: str | None
    tokens: float
    token_cost: Any
    cost_per_1m: Any
    service_cost: Any
    other_cost: Any
    unmatched_cost: Any
    unmatched_rows: int
    cache_net_savings: Any
    reconciled: bool


def summary(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
            config: Any = None) -> Summary:
    """Token count, token cost and blended cost per 1M tokens; the AI service lines' total, what is not tokens,
    what is unmatched; net cache savings; whether the reconciliation holds. ``scope`` holds one currency."""
    from decimal import Decimal

    sc = bind(con, scope, config)
    rec = reconcile(con, sc, path=path)
    cur = sc.currency
    zero = Decimal(0)
    tok = _frame(con, f"""SELECT sum(x_TokenCount) AS tokens, coalesce(sum(EffectiveCost), 0)::{MONEY} AS cost,
        {_per_m('sum(EffectiveCost)', 'sum(x_TokenCount)')} AS per_1m
        FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'tokens'""").iloc[0]
    un = _frame(con, f"""SELECT count(*) AS n FROM {rows_sql(con, sc, path)} WHERE x_TokenClass = 'unmatched'""")
    cs = cache_savings(con, sc, path=path)
    service = sum(rec["service_cost"].dropna(), zero)
    token_cost = tok["cost"] if tok["cost"] is not None else zero
    unmatched_cost = sum(rec["unmatched"].dropna(), zero)
    return Summary(cur, float(tok["tokens"] or 0), token_cost, tok["per_1m"], service,
                   service - token_cost - unmatched_cost, unmatched_cost, int(un.iloc[0]["n"]),
                   sum(cs["net_savings"].dropna(), zero), bool(rec["ok"].all()) if len(rec) else True)


__all__ = ["CLASSES", "KINDS", "RULES_ENV", "TOKEN_TYPES", "Rule", "Summary", "batch_vs_on_demand",
           "block_size_sql", "cache_savings", "capacity", "reconcile", "rows_sql", "rules", "rules_frame",
           "service_names", "summary", "trend", "unit_costs", "unmatched"]
