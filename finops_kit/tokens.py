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
``other AI usage`` (training, endpoint nodes), ``not usage`` (credits and purchases on those services) or
``unmatched`` -- listed by :func:`unmatched` with the reason, never dropped. The AI service lines are the services'
rows that are AI spend: their tax and adjustments never are (:func:`finops_kit.classify.ai_charge_sql`, the rule of
the AI headline; AWS books tax per service, other providers do not), so the lines total what the AI headline counts
for those services.

Money: EffectiveCost (amortized, what was actually paid for the usage) is the basis of every unit cost; ListCost
is given beside it (what the same tokens cost at list price). Unit costs are of the token rows alone: credits on
the AI services are ``not usage`` rows in the reconciliation, not spread over tokens. Amounts are in the scope's one
currency (:mod:`finops_kit.scope`); team and application come from the tag policy (:mod:`finops_kit.attribution`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import cache
from typing import Any

import duckdb
import pandas as pd

from .classify import ai_charge_sql
from .datafiles import data_rows
from .errors import ConfigError
from .schema import MONEY
from .scope import Scope, bind
from .sources.base import ident, sql_str
from .sqlutil import derive_once, first_match

RULES_ENV = "FINOPS_AI_TOKEN_RULES"
KINDS = ("service", "capacity", "cache storage", "other", "modality", "model", "token", "tier", "unit")
TOKEN_TYPES = ("input", "output", "cache read", "cache write", "thinking")
#: Modalities of the tokens a meter counts. Rows no ``modality`` rule matches are text; a row of another modality
#: is a token row only through a model rule for that modality (column ``modality``), else it is unmatched.
MODALITIES = ("text", "audio", "image", "video", "realtime", "realtime audio")
#: Classes of an AI service row (see the module doc), in the order the reconciliation lists them.
CLASSES = ("tokens", "provisioned throughput", "cache storage", "other AI usage", "not usage", "unmatched")
#: Unit costs are shown per million tokens (DECIMAL, 6 places).
PER = 1_000_000
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
    modality: str = "text"


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
        if kind == "modality" and value not in MODALITIES[1:]:
            raise ConfigError(f"{where}, column value: {value!r}; a modality rule assigns one of "
                              f"{', '.join(MODALITIES[1:])}")
        modality = (r.get("modality") or "").strip()
        if modality and (kind != "model" or modality not in MODALITIES):
            raise ConfigError(f"{where}, column modality: {modality!r}; "
                              + (f"expected one of {', '.join(MODALITIES)} or empty (text)" if kind == "model"
                                 else "only a model rule names a modality"))
        out.append(Rule(i - 1, kind, (r.get("provider_pattern") or "").strip(), col, r.get("pattern") or "", value,
                        batch == "yes", (r.get("source") or "").strip(), modality or "text"))
    return tuple(out)


def rules(path: str | os.PathLike | None = None) -> tuple[Rule, ...]:
    """The token rules (``$FINOPS_AI_TOKEN_RULES`` or ``data/ai_token_rules.csv``), validated: a bad rule is a
    one-line :class:`ConfigError` naming the file, the rule and the column."""
    p = path or os.environ.get(RULES_ENV) or None
    return _load(str(p) if p else None)


def rules_frame(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The rule table as a DataFrame (for a report's appendix)."""
    return pd.DataFrame([{"kind": r.kind, "provider": r.provider_pattern, "column": r.column, "pattern": r.pattern,
                          "value": r.value, "batch": r.batch,
                          "modality": r.modality if r.kind == "model" else None, "source": r.source}
                         for r in rules(path)])


def _provider_test(r: Rule) -> str:
    prov = r.provider_pattern.strip()
    return "TRUE" if prov in ("", ".*", "(?i).*") else f"regexp_matches(coalesce(ProviderName, ''), {sql_str(prov)})"


def _case(kind: str, rs: tuple[Rule, ...], then: str = "value") -> str:
    """CASE over the rules of one kind (first match wins), giving the rule's value (or batch flag); consecutive
    rules of one provider test its pattern once (:func:`~finops_kit.sqlutil.first_match`)."""
    own = [r for r in rs if r.kind == kind]
    if not own:
        return "CAST(NULL AS VARCHAR)" if then == "value" else "FALSE"
    return first_match(
        [(_provider_test(r), f"regexp_matches(coalesce(CAST({ident(r.column)} AS VARCHAR), ''), {sql_str(r.pattern)})",
          sql_str(r.value) if then == "value" else ("TRUE" if r.batch else "FALSE")) for r in own],
        None if then == "value" else "FALSE")


def _model_case(rs: tuple[Rule, ...], modality: str) -> str:
    """CASE over the model rules (first match wins) among those for the row's modality (``modality``: the SQL of
    the row's modality rule value, NULL for text): an image or audio meter never takes a text model's rule."""
    own = [r for r in rs if r.kind == "model"]
    if not own:
        return "CAST(NULL AS VARCHAR)"
    out = []
    for r in own:
        gate = f"({modality}) IS NULL" if r.modality == "text" else f"({modality}) = {sql_str(r.modality)}"
        prov = _provider_test(r)
        out.append((gate if prov == "TRUE" else f"{prov} AND {gate}",
                    f"regexp_matches(coalesce(CAST({ident(r.column)} AS VARCHAR), ''), {sql_str(r.pattern)})",
                    sql_str(r.value)))
    return first_match(out)


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
    from .querycache import arrow

    rs = rules(path)
    case = _case("service", rs)
    # every token query of a report asks this first (41 times in the AI report): from the query cache after once
    got = arrow(con, f"""
        SELECT ProviderName, ServiceName FROM (SELECT DISTINCT ProviderName, ServiceName FROM {sc.rows_sql()})
        WHERE {case} IS NOT NULL ORDER BY 1, 2""")
    return list(zip(got.column(0).to_pylist(), got.column(1).to_pylist(), strict=True))


def rows_sql(con: duckdb.DuckDBPyConnection, sc: Scope, path: str | os.PathLike | None = None) -> str:
    """A FROM item: every row of the AI service lines in scope with the derived columns ``x_AiService``,
    ``x_AiModel``, ``x_TokenType``, ``x_TokenTier``, ``x_TokenBatch``, ``x_TokenCount`` (NULL unless a token row),
    ``x_TokenClass`` (see :data:`CLASSES`), ``x_TokenModality`` (:data:`MODALITIES`; of the token and unmatched rows)
    and ``x_TokenUnmatched`` (why a Usage row is unmatched), plus ``_rowid``.

    A model rule matches that model only (the table's patterns end the name at a version or token word), and only
    rows of its modality: a realtime-audio or image meter is unmatched (with its modality as the reason) unless a
    model rule for that modality exists -- never counted in the text unit cost of the model it names."""
    rs = rules(path)
    pairs = service_names(con, sc, path)
    if not pairs:
        keep = "FALSE"
    else:
        keep = "(ProviderName, ServiceName) IN (" + ", ".join(
            f"({sql_str(p)}, {sql_str(s)})" for p, s in pairs) + ")"
    block = block_size_sql("PricingUnit")
    # the rules read ProviderName and the rule columns only: matched once per distinct combination of them
    keys = ["ProviderName", *sorted({r.column for r in rs} - {"ProviderName"})]
    modality = _case("modality", rs)
    derived = {"x_AiService": _case("service", rs), "_capacity": _case("capacity", rs),
               "_cache_storage": _case("cache storage", rs), "_other": _case("other", rs),
               "_modality": modality, "x_AiModel": _model_case(rs, modality), "_token": _case("token", rs),
               "_tier": _case("tier", rs),
               "x_TokenBatch": _case("tier", rs, then="batch"), "_unit": _case("unit", rs)}
    # the lines of the AI services that are AI spend: never their tax or adjustments (classify.ai_charge_sql, the
    # AI headline's own rule), so "the AI service lines total" is the AI spend of those services
    ai_rows = f"(SELECT * FROM {sc.rows_sql(rowid=True)} WHERE {keep} AND {ai_charge_sql()})"
    return f"""(
      WITH r AS (SELECT * FROM {derive_once(ai_rows, keys, derived)}),
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
      SELECT * EXCLUDE (_capacity, _cache_storage, _other, _modality, _token, _tier, _unit),
             CASE WHEN x_TokenClass IN ('tokens', 'unmatched') THEN coalesce(_modality, 'text') END
               AS x_TokenModality,
             CASE WHEN x_TokenClass = 'tokens' THEN _token END AS x_TokenType,
             CASE WHEN x_TokenClass IN ('tokens', 'provisioned throughput') THEN coalesce(_tier, 'standard') END
               AS x_TokenTier,
             CASE WHEN x_TokenClass = 'tokens' THEN CAST(PricingQuantity * {block} AS {TOKENS}) END AS x_TokenCount,
             CASE WHEN x_TokenClass <> 'unmatched' THEN NULL
                  WHEN x_AiModel IS NULL AND _modality IS NOT NULL THEN _modality || ' tokens: no model rule for them'
                  WHEN x_AiModel IS NULL THEN 'no model rule matches'
                  WHEN _token IS NULL THEN 'no token-type rule matches'
                  WHEN _unit IS NULL THEN 'unit ' || coalesce('''' || PricingUnit || '''', 'NULL') || ' is not a token count'
                  ELSE 'no quantity' END AS x_TokenUnmatched
      FROM c)"""


#: (connection, scope, rules path) whose token rows a narrower scope's are read from (:func:`_rows_within`)
_WITHIN: contextvars.ContextVar[tuple[Any, Scope, Any] | None] = contextvars.ContextVar("_WITHIN", default=None)


def _inside(sub: Scope, sup: Scope) -> bool:
    """Whether every FOCUS row of ``sub`` is a row of ``sup``, with the same values: the same filters, currency
    and rates but the time, on the same basis, and ``sub``'s time inside ``sup``'s."""
    if sub.basis != sup.basis or sub.rows_sql(rowid=True, period=False) != sup.rows_sql(rowid=True, period=False):
        return False
    return ((sup.start is None or (sub.start is not None and sub.start >= sup.start))
            and (sup.end is None or (sub.end is not None and sub.end <= sup.end)))


@contextlib.contextmanager
def _rows_within(con: duckdb.DuckDBPyConnection, sc: Scope, path: str | os.PathLike | None = None):
    """Inside this block, the token rows of a scope inside ``sc`` (:func:`_inside`: a billing period of it) are
    ``sc``'s token rows (:func:`_rows`) filtered by that scope's predicate, not the rules matched again.

    Why: the AI report's summary derived the token rows of the current period, of the previous one and of the
    whole scope, each from the bill (the rules over the AI service lines, 65-155 ms each on the demo warehouse).
    The rows are the same: every derived column is a function of its row, and a row of the period is a row of the
    scope whose AI service (Provider, Service) pair is one of the scope's."""
    token = _WITHIN.set((con, sc, path))
    try:
        yield
    finally:
        _WITHIN.reset(token)


def _rows(con: duckdb.DuckDBPyConnection, sc: Scope, path: str | os.PathLike | None = None) -> str:
    """:func:`rows_sql` derived once per read-only connection (:func:`finops_kit.querycache.materialized`): the AI
    report's 23 token queries each matched the rules again (40-80 ms a query on the demo warehouse). For the queries
    of this module, which run through the query cache (:func:`_frame`)."""
    from .querycache import kept, materialized

    within = _WITHIN.get()
    if within is not None and within[0] is con and within[2] == path and within[1] is not sc \
            and _inside(sc, within[1]):
        whole = materialized(con, f"SELECT * FROM {rows_sql(con, within[1], path)} _tokens", "tokens")
        if kept(whole):  # else each query would derive the whole scope's rows to keep a period's
            return materialized(con, f"SELECT * FROM {whole} _t WHERE {sc.where()}", "tokens")
    return materialized(con, f"SELECT * FROM {rows_sql(con, sc, path)} _tokens", "tokens")


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A small aggregate as pandas, DECIMAL kept as Decimal (unit costs are compared exactly)."""
    from .querycache import frame

    return frame(con, sql)  # reused across kernels and runs on an unchanged warehouse


_Q6 = Decimal("0.000001")
_Q12 = Decimal("0.000000000001")


def _dec(v: Any) -> Decimal | None:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return None
    return v if isinstance(v, Decimal) else Decimal(str(v))


def per_1m(cost: Any, tokens: Any) -> Decimal | None:
    """Cost per million tokens, exact: Σ cost x 1,000,000 / Σ tokens in Decimal, rounded half up to 6 places.

    Computed in Python on the (small) aggregate because DuckDB divides DECIMALs in DOUBLE; the planted unit costs
    must be recovered to the last digit."""
    c, t = _dec(cost), _dec(tokens)
    if c is None or t is None or t == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (c * PER / t).quantize(_Q6, rounding=ROUND_HALF_UP)


def _at_rate(tokens: Any, cost: Any, rate_cost: Any, rate_tokens: Any) -> Decimal | None:
    """``tokens`` priced at the rate ``rate_cost / rate_tokens``, minus ``cost`` (exact; NULL without a rate)."""
    t, c, rc, rt = _dec(tokens), _dec(cost), _dec(rate_cost), _dec(rate_tokens)
    if None in (t, c, rc, rt) or rt == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (t * rc / rt - c).quantize(_Q12, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------------- analyses

def reconcile(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
              config: Any = None) -> pd.DataFrame:
    """Per currency, provider and AI service: EffectiveCost of each class (:data:`CLASSES`) beside the services'
    bill recomputed from the FOCUS rows; ``ok`` is true when the classes are exactly a partition of that bill.

    This is what "totals reconcile to the AI service lines" means: the token cost plus the listed remainder is the
    services' bill -- no line lost, none counted twice, none in the wrong half. The services' side (``service_*``)
    is computed apart from the classification: straight from the scope's FOCUS rows, the service rules applied to
    each row (not the list of services :func:`service_names` found, which :func:`rows_sql` filters on, nor its
    per-combination rule evaluation), split by the FOCUS ``ChargeCategory``. ``ok`` holds when

    * the classified rows, EffectiveCost and BilledCost equal the services' rows, EffectiveCost and BilledCost;
    * tokens + provisioned throughput + cache storage + other AI usage + unmatched = the EffectiveCost of the
      services' Usage lines (``service_usage_cost``), and ``not usage`` = the rest (credits, purchases).

    Both sides leave out tax and adjustments (:func:`finops_kit.classify.ai_charge_sql`): they are not AI spend.

    A provider or service present on one side only is not ok (a service the classification missed, a row it
    invented). What it cannot see: a service rule that leaves a service out defines both sides -- check the service
    rules against ``ServiceName`` of the bill (the AI lines of ``x_AiWorkload`` include SageMaker, Azure ML, ...)."""
    sc = bind(con, scope, config)
    rs = rules(path)
    service = _case("service", rs)
    cls = ", ".join(
        f"coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenClass = {sql_str(c)}), 0)::{MONEY} AS {ident(c)}"
        for c in CLASSES)
    usage = " + ".join(ident(c) for c in CLASSES if c != "not usage")
    return _frame(con, f"""
        WITH k AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiService AS service, {cls},
                 coalesce(sum(EffectiveCost), 0)::{MONEY} AS classified_cost,
                 coalesce(sum(BilledCost), 0)::{MONEY} AS _classified_billed, count(*) AS classified_rows
          FROM {_rows(con, sc, path)} GROUP BY ALL),
        f AS (SELECT BillingCurrency, ProviderName, ChargeCategory, EffectiveCost, BilledCost, {service} AS _service
              FROM {sc.rows_sql()} WHERE {ai_charge_sql()}),
        t AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, _service AS service,
                 coalesce(sum(EffectiveCost), 0)::{MONEY} AS service_cost,
                 coalesce(sum(EffectiveCost) FILTER (WHERE ChargeCategory = 'Usage'), 0)::{MONEY}
                   AS service_usage_cost,
                 coalesce(sum(BilledCost), 0)::{MONEY} AS service_billed_cost, count(*) AS service_rows
          FROM f WHERE _service IS NOT NULL GROUP BY ALL)
        SELECT currency, provider, service, {', '.join(f'k.{ident(c)}' for c in CLASSES)},
               t.service_cost, t.service_usage_cost, t.service_billed_cost, t.service_rows,
               k.classified_cost, k.classified_rows,
               coalesce(k.classified_rows = t.service_rows AND k.classified_cost = t.service_cost
                        AND k._classified_billed = t.service_billed_cost
                        AND ({usage}) = t.service_usage_cost
                        AND k."not usage" = t.service_cost - t.service_usage_cost, FALSE) AS ok
        FROM k FULL JOIN t USING (currency, provider, service)
        ORDER BY currency, provider, service""")


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
        FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'unmatched'
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
    df = _frame(con, f"""
        WITH g AS (
          SELECT BillingCurrency AS currency, {sel}, sum(x_TokenCount) AS tokens_exact,
                 sum(EffectiveCost)::{MONEY} AS cost,
                 CASE WHEN count(*) = count(ListCost) THEN sum(ListCost) END::{MONEY} AS list_cost,
                 sum(BilledCost)::{MONEY} AS billed_cost, count(*) AS rows
          FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL)
        SELECT *, CAST(tokens_exact / nullif(sum(tokens_exact) OVER (PARTITION BY currency), 0) AS DOUBLE)
                    AS token_share
        FROM g ORDER BY currency, cost DESC NULLS LAST, {names}""")
    df["tokens"] = [float(v) if v is not None else None for v in df["tokens_exact"]]
    df["cost_per_1m"] = [per_1m(c, t) for c, t in zip(df["cost"], df["tokens_exact"], strict=True)]
    df["list_per_1m"] = [per_1m(c, t) for c, t in zip(df["list_cost"], df["tokens_exact"], strict=True)]
    return df[["currency", *[n for n, _ in dims], "tokens", "cost", "list_cost", "billed_cost", "cost_per_1m",
               "list_per_1m", "token_share", "rows", "tokens_exact"]]


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
    df = _frame(con, f"""
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
          FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL),
        s AS (
          SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiModel AS model,
                 sum(EffectiveCost)::{MONEY} AS storage_cost
          FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'cache storage' GROUP BY ALL),
        m AS (
          SELECT *, row_number() OVER (PARTITION BY currency, provider, model ORDER BY cache_read_tokens DESC, tier)
                   AS _first
          FROM t WHERE cache_read_tokens > 0 OR cache_write_tokens > 0)
        SELECT m.* EXCLUDE (_first),
               -- a model's storage hours are counted once, on its tier with the most cache reads
               CASE WHEN _first = 1 THEN coalesce(s.storage_cost, 0) ELSE 0 END::{MONEY} AS storage_cost
        FROM m LEFT JOIN s USING (currency, provider, model)
        ORDER BY m.currency, m.provider, m.model, m.tier""")
    rows = []
    for r in df.to_dict("records"):
        prompt = r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
        read = _at_rate(r["cache_read_tokens"], r["cache_read_cost"], r["input_cost"], r["input_tokens"])
        premium = _at_rate(r["cache_write_tokens"], r["cache_write_cost"], r["input_cost"], r["input_tokens"])
        premium = -premium if premium is not None else None
        rows.append({
            "currency": r["currency"], "provider": r["provider"], "model": r["model"], "tier": r["tier"],
            "input_tokens": float(r["input_tokens"]), "cache_read_tokens": float(r["cache_read_tokens"]),
            "cache_write_tokens": float(r["cache_write_tokens"]),
            "cache_hit_share": float(r["cache_read_tokens"] / prompt) if prompt else None,
            "input_per_1m": per_1m(r["input_cost"], r["input_tokens"]),
            "cache_read_per_1m": per_1m(r["cache_read_cost"], r["cache_read_tokens"]),
            "cache_read_cost": r["cache_read_cost"], "cache_write_cost": r["cache_write_cost"],
            "read_savings": read, "write_premium": premium, "storage_cost": r["storage_cost"],
            "net_savings": (read - premium - r["storage_cost"]) if read is not None and premium is not None else None,
        })
    cols = ["currency", "provider", "model", "tier", "input_tokens", "cache_read_tokens", "cache_write_tokens",
            "cache_hit_share", "input_per_1m", "cache_read_per_1m", "cache_read_cost", "cache_write_cost",
            "read_savings", "write_premium", "storage_cost", "net_savings"]
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        return out
    key = out["net_savings"].map(lambda v: float(v) if v is not None else float("-inf"))
    return out.assign(_k=key).sort_values(["currency", "_k", "provider", "model", "tier"],
                                          ascending=[True, False, True, True, True]).drop(columns="_k").reset_index(
        drop=True)


def batch_vs_on_demand(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *,
                       path: str | os.PathLike | None = None, config: Any = None) -> pd.DataFrame:
    """Per provider, model and token type: tokens, cost and cost per 1M on batch tiers and on the others
    (on-demand), the batch discount, and what the on-demand tokens would have cost at the batch rate
    (``batch_opportunity``: only where the model has batch usage in scope -- a rate seen on the bill, not a price
    list)."""
    sc = bind(con, scope, config)
    df = _frame(con, f"""
        SELECT BillingCurrency AS currency, ProviderName AS provider, x_AiModel AS model, x_TokenType AS token_type,
               coalesce(sum(x_TokenCount) FILTER (WHERE NOT x_TokenBatch), 0) AS on_demand_tokens,
               coalesce(sum(EffectiveCost) FILTER (WHERE NOT x_TokenBatch), 0)::{MONEY} AS on_demand_cost,
               coalesce(sum(x_TokenCount) FILTER (WHERE x_TokenBatch), 0) AS batch_tokens,
               coalesce(sum(EffectiveCost) FILTER (WHERE x_TokenBatch), 0)::{MONEY} AS batch_cost
        FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'tokens' GROUP BY ALL
        ORDER BY currency, sum(EffectiveCost) DESC, provider, model, token_type""")
    rows = []
    for r in df.to_dict("records"):
        od, b = per_1m(r["on_demand_cost"], r["on_demand_tokens"]), per_1m(r["batch_cost"], r["batch_tokens"])
        total = r["on_demand_tokens"] + r["batch_tokens"]
        opp = _at_rate(r["on_demand_tokens"], r["on_demand_cost"], r["batch_cost"], r["batch_tokens"])
        rows.append({
            "currency": r["currency"], "provider": r["provider"], "model": r["model"], "token_type": r["token_type"],
            "on_demand_tokens": float(r["on_demand_tokens"]), "on_demand_cost": r["on_demand_cost"],
            "on_demand_per_1m": od, "batch_tokens": float(r["batch_tokens"]), "batch_cost": r["batch_cost"],
            "batch_per_1m": b, "batch_share": float(r["batch_tokens"] / total) if total else None,
            "batch_discount": float(1 - b / od) if od and b is not None else None,
            "batch_opportunity": -opp if opp is not None and r["on_demand_tokens"] else None,
        })
    return pd.DataFrame(rows, columns=["currency", "provider", "model", "token_type", "on_demand_tokens",
                                       "on_demand_cost", "on_demand_per_1m", "batch_tokens", "batch_cost",
                                       "batch_per_1m", "batch_share", "batch_discount", "batch_opportunity"])


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
        FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'provisioned throughput'
        GROUP BY ALL ORDER BY currency, cost DESC""")


def actions(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, owner_key: str | None = None,
            path: str | os.PathLike | None = None, config: Any = None) -> pd.DataFrame:
    """What a FinOps Champion can act on, in dollars, with an owner (the allocation key's value with the most
    token spend on that model, through the tag policy):

    * ``batch``: a model's on-demand tokens at the batch rate the same bill shows (:func:`batch_vs_on_demand`);
    * ``unmatched``: AI usage no rule explains -- its cost is in no unit cost until a rule is added.

    Columns: kind, what, dollars (over the scope), owner, section (the report heading that backs it); for a batch
    action ``span_days`` (the days of the model's on-demand tokens) and ``dollars_per_month`` (its saving per month,
    :func:`finops_kit.summary.per_month`: what the summary ranks, as every report's savings)."""
    from . import summary as sm

    sc = bind(con, scope, config)
    key = owner_key or sc.attribution.allocation.key
    own = unit_costs(con, sc, (key, "provider", "model"), path=path)
    top = {} if own.empty else {
        (r["provider"], r["model"]): r[key]
        for r in own.sort_values("cost", ascending=False).drop_duplicates(["provider", "model"]).to_dict("records")}
    rows = []
    bv = batch_vs_on_demand(con, sc, path=path)
    if not bv.empty:
        by_model = bv[bv["batch_opportunity"].notna()].groupby(["provider", "model"], as_index=False).agg(
            dollars=("batch_opportunity", lambda v: sum(v, Decimal(0))))
        # the days the model's on-demand tokens span: what its saving per month divides by (summary.per_month)
        span = {(p, m): d for p, m, d in _frame(con, f"""
            SELECT ProviderName, x_AiModel, epoch(max(ChargePeriodEnd) - min(ChargePeriodStart)) / 86400.0
            FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'tokens' AND NOT x_TokenBatch
            GROUP BY ALL""").itertuples(index=False, name=None)}
        for r in by_model.to_dict("records"):
            if r["dollars"] > 0:
                days = span.get((r["provider"], r["model"]))
                rows.append({"kind": "batch", "what": f"Move work that can wait on {r['model']} ({r['provider']}) to "
                             "batch", "dollars": r["dollars"], "owner": top.get((r["provider"], r["model"])),
                             "section": "5. Batch vs on-demand", "span_days": days,
                             "dollars_per_month": sm.per_month(r["dollars"], days)})
    un = unmatched(con, sc, path=path)
    for r in un.to_dict("records"):
        if r["cost"]:
            rows.append({"kind": "unmatched", "what": f"Add a token rule for {r['usage_type']} ({r['provider']}): "
                         f"{r['reason']}", "dollars": r["cost"], "owner": None,
                         "section": "1. Token spend at a glance — and does it reconcile?"})
    return pd.DataFrame(rows, columns=["kind", "what", "dollars", "owner", "section", "span_days",
                                       "dollars_per_month"])


def add_to_summary(block: Any, con: duckdb.DuckDBPyConnection, sc: Scope, *,
                   path: str | os.PathLike | None = None) -> Any:
    """Put the token figures and actions into a report's summary block (:mod:`finops_kit.summary`).

    Figures follow the block's rule (the latest closed billing period in scope, compared with the closed period
    before it; the whole scope when none is closed): token spend and the blended cost per 1M tokens. Actions are
    :func:`actions` over the whole scope, a batch saving per month of its model's span. Returns the block."""
    from . import summary as sm
    from .scope import NoDataError

    def period(p: Any) -> Summary | None:
        if p is None:
            return None
        try:
            with _rows_within(con, sc, path):  # a period's token rows: the scope's, filtered
                return summary(con, sm.period_scope(sc, p), path=path)
        except NoDataError:
            return None

    cur = period(block.current) or summary(con, sc, path=path)
    prev = period(block.previous)
    block.add_figure("Token spend", cur.token_cost, "money", prev.token_cost if prev else None, key="token_cost",
                     note="EffectiveCost of the token lines")
    # a number with cents (money figures of the block are whole dollars: $0.57 would read "$1"); blended over every
    # model and token type, its mix said under the figures (review s17 prose, finding 13)
    cur_sc = sm.period_scope(sc, block.current) if block.current is not None else sc
    try:
        with _rows_within(con, sc, path):
            mix = mix_text(con, cur_sc, path=path)
    except NoDataError:
        mix = mix_text(con, sc, path=path)
    block.add_figure(f"Cost per 1M tokens, blended ({sc.currency or 'no currency'})", cur.cost_per_1m, "number",
                     prev.cost_per_1m if prev else None, key="cost_per_1m",
                     note="all models and token types: mix below", detail=mix)
    for a in actions(con, sc, path=path).to_dict("records"):
        # moving to batch saves money, per month as every saving of the block (review s17 prose, finding 4: it was
        # "$27,101 over the scope", 14 billing periods); an unmatched line's cost is what a token rule would
        # explain, not a saving
        if a["kind"] == "batch" and a["dollars_per_month"] is not None:
            months = sm.months_of_span(a["span_days"])
            block.add_action(f"{a['what']} ({sm._money(a['dollars'], sc.currency)} over the {months:,.1f} months of "
                             f"its on-demand tokens)", a["dollars_per_month"], a["owner"], a["section"],
                             basis="per month")
        else:
            batch = a["kind"] == "batch"
            block.add_action(a["what"], a["dollars"], a["owner"], a["section"],
                             basis="over the scope" if batch else "in scope", kind="saving" if batch else "at stake")
    return block


def mix_text(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
             config: Any = None) -> str:
    """What the blended cost per 1M tokens is a blend of, in one sentence: how many models, the model with the
    most tokens and its share and unit cost, and the token types' shares with their unit costs (the largest first,
    those of at least 1% of the tokens). "" without tokens.

    Why: the AI report's headline "Cost per 1M tokens (USD): 0.60" read as the price of a token, but 42% of
    October's tokens were Titan Text Embeddings at 0.02 per 1M and output tokens cost 2.87 per 1M: a shift in
    embedding volume moves the headline with no price changing (review s17 prose, finding 13)."""
    sc = bind(con, scope, config)
    by_model = unit_costs(con, sc, by=("model",), path=path)
    by_type = unit_costs(con, sc, by=("token_type",), path=path)
    by_model = by_model[by_model["tokens"].fillna(0) > 0]
    by_type = by_type[by_type["tokens"].fillna(0) > 0]
    if by_model.empty:
        return ""

    def rate(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{float(v):,.2f}"

    def pct(v: Any) -> str:
        return f"{100 * float(v):.0f}%" if float(v) >= 0.005 else "under 1%"

    top = by_model.sort_values("tokens", ascending=False).iloc[0]
    n = len(by_model)
    models = f"{n} model{'s' if n != 1 else ''}"
    types = by_type.sort_values("tokens", ascending=False)
    shown = types[types["token_share"].map(float) >= 0.01]
    type_text = ", ".join(f"{r.token_type} {pct(r.token_share)} ({rate(r.cost_per_1m)} per 1M)"
                          for r in shown.itertuples(index=False))
    rest = len(types) - len(shown)
    if rest:
        type_text += f", {rest} other type{'s' if rest != 1 else ''} under 1%"
    return (f"blended over {models} and every token type, weighted by their tokens: {top['model']} is "
            f"{pct(top['token_share'])} of the tokens at {rate(top['cost_per_1m'])} per 1M; by token type {type_text}. "
            "A change in this mix moves the blended figure with no price changing: compare models and token types "
            "in sections 2 and 3.")


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
    #: AI service lines (provider, service, currency) the reconciliation checked: 0 = nothing to reconcile
    services: int = 0


def summary(con: duckdb.DuckDBPyConnection, scope: Scope | None = None, *, path: str | os.PathLike | None = None,
            config: Any = None) -> Summary:
    """Token count, token cost and blended cost per 1M tokens; the AI service lines' total, what is not tokens,
    what is unmatched; net cache savings; whether the reconciliation holds. ``scope`` holds one currency."""
    sc = bind(con, scope, config)
    rec = reconcile(con, sc, path=path)
    cur = sc.currency
    zero = Decimal(0)
    tok = _frame(con, f"""SELECT sum(x_TokenCount) AS tokens, coalesce(sum(EffectiveCost), 0)::{MONEY} AS cost
        FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'tokens'""").iloc[0]
    un = _frame(con, f"""SELECT count(*) AS n FROM {_rows(con, sc, path)} WHERE x_TokenClass = 'unmatched'""")
    cs = cache_savings(con, sc, path=path)
    service = sum(rec["service_cost"].dropna(), zero)
    token_cost = tok["cost"] if tok["cost"] is not None else zero
    unmatched_cost = sum(rec["unmatched"].dropna(), zero)
    return Summary(cur, float(tok["tokens"] or 0), token_cost, per_1m(token_cost, tok["tokens"]), service,
                   service - token_cost - unmatched_cost, unmatched_cost, int(un.iloc[0]["n"]),
                   sum(cs["net_savings"].dropna(), zero), bool(rec["ok"].all()) if len(rec) else True, len(rec))


__all__ = ["CLASSES", "KINDS", "MODALITIES", "RULES_ENV", "TOKEN_TYPES", "Rule", "Summary", "batch_vs_on_demand",
           "actions", "add_to_summary", "block_size_sql", "cache_savings", "capacity", "mix_text", "per_1m", "reconcile", "rows_sql", "rules", "rules_frame",
           "service_names", "summary", "trend", "unit_costs", "unmatched"]
