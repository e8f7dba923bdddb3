"""The report suite's speed-ups change how a figure is computed, never the figure.

Row classifications evaluated once per distinct input (storage/transfer rules, tag attribution) must give every row
exactly the value the row-by-row expression gives, on the sample bills (65k rows, three clouds, messy tags).
"""

from __future__ import annotations

import re

import pytest

from finops_kit import scope as scope_mod
from finops_kit.attribution import per_distinct
from finops_kit.egress import transfer_rules
from finops_kit.storage import ROW_TEXT, rule_case, storage_rules


def _row_by_row(rules: tuple[dict[str, str], ...]) -> str:
    """The rule index as the row-level CASE the kit used before (one regex chain per row)."""
    from finops_kit.sources.base import sql_str

    return "CASE " + " ".join(
        f"WHEN regexp_matches(coalesce(ProviderName, ''), {sql_str('(?i)' + r['provider_pattern'])}) "
        f"AND regexp_matches(coalesce(ServiceName, ''), {sql_str('(?i)' + r['service_pattern'])}) "
        f"AND regexp_matches({ROW_TEXT}, {sql_str('(?i)' + r['pattern'])}) THEN {i}"
        for i, r in enumerate(rules)) + " END"


@pytest.mark.parametrize("rules", [storage_rules, transfer_rules], ids=["storage", "transfer"])
def test_rule_case_per_distinct_equals_row_by_row(sample_con, rules):
    rs = rules()
    rows = sample_con.execute(
        f"SELECT rowid, {rule_case(rs)} AS fast, {_row_by_row(rs)} AS slow, ProviderName, ServiceName, {ROW_TEXT} "
        "FROM focus").fetchall()
    assert len(rows) > 60_000
    assert sum(r[1] is not None for r in rows) > 1_000  # the samples do have storage / transfer lines
    assert [r for r in rows if r[1] != r[2]] == []
    # and both agree with Python's regex engine on the first matching rule (case-insensitive, search semantics)
    seen = {}
    for _rowid, fast, _slow, prov, svc, text in rows:
        seen.setdefault((prov, svc, text), fast)
    for (prov, svc, text), fast in seen.items():
        want = next((i for i, r in enumerate(rs)
                     if re.search("(?i)" + r["provider_pattern"], prov or "")
                     and re.search("(?i)" + r["service_pattern"], svc or "")
                     and re.search("(?i)" + r["pattern"], text or "")), None)
        assert fast == want, (prov, svc, text)


def test_rule_case_keeps_nulls_apart(sample_con):
    """The per-distinct join is NULL-safe: a row with NULL ServiceName gets the rule of its own NULL group."""
    rs = storage_rules()
    got = sample_con.execute(f"""
        SELECT {rule_case(rs)} FROM (VALUES ('AWS', NULL, 'TimedStorage-ByteHrs', NULL, NULL),
                                            ('AWS', 'Amazon Simple Storage Service', 'TimedStorage-ByteHrs', NULL, NULL),
                                            (NULL, NULL, NULL, NULL, NULL))
        AS t(ProviderName, ServiceName, x_UsageType, SkuMeter, ChargeDescription)""").fetchall()
    assert got[0][0] is None and got[2][0] is None
    assert rs[got[1][0]]["storage_class"] == "S3 Standard"


def test_attribution_per_distinct_equals_row_by_row(sample_con):
    sc = scope_mod.resolve(sample_con, "finops.yaml")
    attr = sc.attribution
    checks = []
    for key in attr.policy.keys:
        checks += [attr.raw_value_sql(key), attr.value_sql(key), attr.value_sql(key, valid_only=False),
                   attr.label_sql(key), attr.dimension_sql(key)]
    checks.append(attr.owner_sql())
    checks.append(attr.shared_sql())
    inline = [re.sub(r"\(SELECT (.*?) FROM \(SELECT Tags AS _fk_tags\)\)", lambda m: m.group(1).replace(
        "_fk_tags", "Tags"), c) for c in checks]
    assert all("_fk_tags" not in c for c in inline) and inline != checks
    cols = ", ".join(f"{c} AS c{i}" for i, c in enumerate(checks + inline))
    rows = sample_con.execute(f"SELECT {cols} FROM focus").fetchall()
    n = len(checks)
    diff = [(i, r[i], r[n + i]) for r in rows for i in range(n) if r[i] != r[n + i]]
    assert diff == []
    teams = {r[checks.index(attr.owner_sql())] for r in rows}
    assert {"(shared)", "(untagged)"} <= teams and len(teams) > 4


def test_per_distinct_is_one_subquery_over_the_tags():
    assert per_distinct("upper(_fk_tags)", "s.Tags") == "(SELECT upper(_fk_tags) FROM (SELECT s.Tags AS _fk_tags))"


def test_metrics_of_one_scope_are_computed_once_and_handed_out_as_copies(sample_con):
    """The storage report quotes fk.metrics(con, sc) in two sections: the second call reads the first's tables."""
    from finops_kit.metrics import metrics

    sc = scope_mod.resolve(sample_con, "finops.yaml", billing_period_start="2026-09", billing_period_end="2026-10")
    first = metrics(sample_con, sc)
    calls = []
    sample_con_sql = type(sample_con).sql

    def counting(self, *a, **k):
        calls.append(a[0] if a else k)
        return sample_con_sql(self, *a, **k)

    type(sample_con).sql = counting
    try:
        second = metrics(sample_con, sc)
    finally:
        type(sample_con).sql = sample_con_sql
    assert calls == []
    assert second.to_dict() == first.to_dict()
    second.totals.loc[:, "storage_cost"] = 0  # a caller changing its copy
    assert metrics(sample_con, sc).total("storage_cost") == first.total("storage_cost") > 0
    other = scope_mod.resolve(sample_con, "finops.yaml", billing_period_start="2026-10", billing_period_end="2026-10")
    assert metrics(sample_con, other).total("effective_cost") < first.total("effective_cost")
