"""AI/ML workload classification of normalized rows, driven by ``data/ai_workloads.csv``.

Why a table and not code: which instance families and services count as "AI spend" is a policy a FinOps team
reviews and extends (a new accelerator family, an in-house model gateway). The table compiles into one SQL
``CASE`` expression evaluated by DuckDB over the normalized rows.
"""

from __future__ import annotations

import os
from functools import cache

import duckdb

from .datafiles import data_rows
from .sources.base import ident, sql_str

AI_RULES_ENV = "FINOPS_AI_RULES"


@cache
def _rules(path: str | None) -> tuple[dict[str, str], ...]:
    return tuple(data_rows("ai_workloads.csv", path))


def ai_rules(path: str | None = None) -> tuple[dict[str, str], ...]:
    """The classification rules (a user may point $FINOPS_AI_RULES to a reviewed copy of their own)."""
    return _rules(path or os.environ.get(AI_RULES_ENV))


def _re(pattern: str) -> str:
    # DuckDB's RE2 accepts (?i) inline; strip a duplicated flag for readability of generated SQL
    return sql_str(pattern)


@cache
def _provider_matches(provider: str, pattern: str) -> bool:
    """Whether a fixed ProviderName matches a rule's provider pattern, decided by DuckDB's own regex engine."""
    with duckdb.connect() as con:
        return bool(con.execute("SELECT regexp_matches(?, ?)", [provider, pattern]).fetchone()[0])


def ai_workload_case(available_columns: set[str] | None = None, path: str | None = None,
                     provider: str | None = None) -> str:
    """SQL expression giving the x_AiWorkload category of a normalized row, or NULL.

    This runs on every ingested row, so the rules are arranged to test little per row: consecutive rules with the
    same provider pattern share one provider test, and rules for other providers are not tried once a row's
    provider group has matched. When the source format has one fixed ``provider`` (every row of an AWS CUR is
    'AWS'), the provider tests are decided here, once, and only that provider's rules remain. First match wins,
    as in the table.
    """
    from .units import instance_type_sql

    groups: list[tuple[str, list[str]]] = []
    type_cols = {"ProviderName", "x_InstanceType", "x_UsageType"}
    for r in ai_rules(path):
        col = r["column"]
        if available_columns is not None and col not in available_columns:
            continue
        value = f"CAST({ident(col)} AS VARCHAR)"
        if col == "x_InstanceType" and (available_columns is None or type_cols <= available_columns):
            # the instance type as the units read it: x_InstanceType, else from the usage type (an AWS FOCUS export
            # names the type only in x_UsageType); one definition of a row's type for the classifier and the units
            value = instance_type_sql(provider)
        when = (f"WHEN regexp_matches(coalesce({value}, ''), {_re(r['pattern'])}) "
                f"THEN {sql_str(r['category'])}")
        if groups and groups[-1][0] == r["provider_pattern"]:
            groups[-1][1].append(when)
        else:
            groups.append((r["provider_pattern"], [when]))
    if not groups:
        return "CAST(NULL AS VARCHAR)"
    parts = []
    for pattern, whens in groups:
        rules = "CASE " + " ".join(whens) + " END"
        if pattern.strip() in ("", ".*", "(?i).*"):
            parts.append(rules)
        elif provider is not None:
            if _provider_matches(provider, pattern):
                parts.append(rules)
        else:
            parts.append(f"CASE WHEN regexp_matches(coalesce(ProviderName, ''), {_re(pattern)}) THEN {rules} END")
    if not parts:
        return "CAST(NULL AS VARCHAR)"
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


#: Charge categories that are never AI spend, whatever service they are booked on (:func:`ai_workload_sql`).
NOT_AI_CHARGES = ("Tax", "Adjustment")


def ai_charge_sql(alias: str | None = None) -> str:
    """SQL: whether a row's ChargeCategory can be AI spend: not one of :data:`NOT_AI_CHARGES`.

    The one definition of which lines of an AI service are AI spend: the classification (``x_AiWorkload``, the AI
    headline of metrics and the tagging audit) and the token reconciliation's "AI service lines"
    (:func:`finops_kit.tokens.rows_sql`) both apply it. Found by a review: the token reconciliation took every row
    of the services, so its "AI service lines total" held AWS's per-service tax (on the demo Bedrock was
    $237,484.62 there, $12,121.54 of it tax, and $225,363.08 in the AI headline)."""
    a = alias + "." if alias else ""
    cats = ", ".join(sql_str(c) for c in NOT_AI_CHARGES)
    return f"(coalesce({a}ChargeCategory, '') NOT IN ({cats}))"


def ai_workload_sql(source_value: str = "NULL", available_columns: set[str] | None = None, path: str | None = None,
                    provider: str | None = None) -> str:
    """SQL for a normalized row's ``x_AiWorkload``: the source's own value (``source_value``) or else the rules'
    (:func:`ai_workload_case`) -- and NULL for every tax and adjustment line.

    Why tax is never AI spend: providers book tax differently. AWS writes a Tax line per service (Amazon Bedrock,
    SageMaker, the ML Savings Plans), GCP one on an "Invoice" service, Azure none per line. Classified by service,
    the AI headline counted AWS's tax on AI services and no other provider's (a review of the demo found $2,117.10
    of one month's tax in it), while the showback treats every tax line as a shared cost. Adjustments (refunds,
    corrections) likewise: a GPU SKU's adjustment was accelerated compute by row class but not part of the
    accelerated instances' usage (:func:`finops_kit.units.accelerated_usage_sql`), so the two figures of one label
    differed by it. "AI/ML spend" is usage, purchases and credits of AI workloads, for every provider alike; the
    other rows of an accelerated instance are classed by :func:`complete_accelerated_instances`. The charge
    categories left out are :func:`ai_charge_sql`'s, the token reconciliation's too.
    """
    rules = ai_workload_case(available_columns, path, provider)
    return f"CASE WHEN NOT {ai_charge_sql()} THEN NULL ELSE coalesce({source_value}, {rules}) END"


def complete_accelerated_instances(con: duckdb.DuckDBPyConnection, table: str = "focus") -> int:
    """Class the other rows of every accelerated instance as 'Accelerated compute'; the number of rows changed.

    Why: a GCP VM bills its GPU, vCPU, RAM, licence and IP as separate SKUs, and only the GPU SKU says
    "accelerated". The kit's instance usage (:func:`finops_kit.units.accelerated_usage_sql`) counts all of a
    resource's Usage and Credit rows of a charge period in which one row is accelerated compute, so the row class
    and the instance usage gave two figures for one label (on the demo $2,401,567.40 vs $2,408,961.24: the N1
    cores and RAM of GPU VMs, net of their credits). The ingest runs this over the whole table before it commits,
    so an instance whose rows arrived in two ingests is classed too; it is idempotent, and the grouping key and
    charge categories are exactly those of the instance usage.

    A SageMaker instance row (``ml.m5.xlarge``, or ``USE1-Host:ml.m5.xlarge`` where only the usage type names it:
    :func:`finops_kit.units.sagemaker_row_sql`) is classed by its own instance type, never completed from another
    row of its ARN -- one SageMaker ARN can bill several instance types (an endpoint's production and shadow
    variants, a HyperPod CPU controller beside GPU workers), and completion made their CPU instances accelerated
    compute (a regression review of review 14).
    """
    from .units import INSTANCE_KEY, accelerated_row_sql, instance_charges_sql, sagemaker_row_sql

    same = " AND ".join(f"f.{c} = k.{c}" if c == "ResourceId" else f"f.{c} IS NOT DISTINCT FROM k.{c}"
                        for c in INSTANCE_KEY)
    n = con.execute(f"""
        UPDATE {table} AS f SET x_AiWorkload = 'Accelerated compute'
        FROM (SELECT DISTINCT {', '.join(INSTANCE_KEY)} FROM {table}
              WHERE {accelerated_row_sql()} AND {instance_charges_sql()} AND ResourceId IS NOT NULL) k
        WHERE {same} AND {instance_charges_sql('f')} AND f.x_AiWorkload IS DISTINCT FROM 'Accelerated compute'
          AND NOT {sagemaker_row_sql('f')}
    """).fetchone()
    return int(n[0]) if n else 0
