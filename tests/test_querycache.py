"""The query result cache (finops_kit/querycache.py): exact answers, reused across connections and processes on
an unchanged warehouse, never reused after the warehouse changed, never used where the answer could depend on
anything besides the warehouse file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import querycache as qc
from finops_kit import scope as S
from finops_kit.metrics import metrics

REPO = Path(__file__).resolve().parents[1]
GCP = REPO / "data" / "samples" / "gcp"
SCOPE = {"billing_period_start": "2026-08", "billing_period_end": "2026-10"}


def _gcp(month: str) -> str:
    return str(next(GCP.glob(f"*_{month}.jsonl.gz")))


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "queries"
    monkeypatch.setenv(qc.ENV, str(folder))
    qc.clear_memory()
    qc.stats.reset()
    yield folder
    qc.clear_memory()


@pytest.fixture()
def function_listings(monkeypatch) -> list[str]:
    """The listings of DuckDB's functions (``duckdb_functions()``) the cache makes, as they happen."""
    listings: list[str] = []
    rows = qc._rows

    def spy(con, sql, params=None):
        if "duckdb_functions()" in sql:
            listings.append(sql)
        return rows(con, sql, params)

    monkeypatch.setattr(qc, "_rows", spy)
    return listings


def _figures(warehouse: str) -> dict:
    """finops-kit metrics of SCOPE as its JSON document, on a fresh read-only connection."""
    con = fk.connect(warehouse, read_only=True)
    try:
        return metrics(con, S.resolve(con, str(REPO / "finops.yaml"), SCOPE)).to_dict()
    finally:
        con.close()


def _uncached(warehouse: str, monkeypatch) -> dict:
    monkeypatch.setenv(qc.ENV, "off")
    try:
        return _figures(warehouse)
    finally:
        monkeypatch.undo()


@pytest.fixture()
def gcp_warehouse(tmp_path) -> str:
    path = str(tmp_path / "wh.duckdb")
    fk.ingest([_gcp("202608"), _gcp("202609")], warehouse=path, progress=False)
    return path


def test_a_hit_is_the_exact_answer_and_comes_from_disk(sample_warehouse, cache, monkeypatch):
    monkeypatch.setenv(qc.ENV, "off")
    con = fk.connect(sample_warehouse, read_only=True)
    sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
    plain = metrics(con, sc)
    con.close()
    monkeypatch.setenv(qc.ENV, str(cache))
    qc.stats.reset()
    first = _figures(sample_warehouse)
    assert qc.stats.misses > 0 and qc.stats.hits == 0 and qc.stats.uncacheable == 0
    qc.clear_memory()  # as another kernel: only the files on disk
    qc.stats.reset()
    con = fk.connect(sample_warehouse, read_only=True)
    again = metrics(con, S.resolve(con, str(REPO / "finops.yaml"), SCOPE))
    con.close()
    assert qc.stats.hits > 0 and qc.stats.misses == 0
    assert first == again.to_dict() == plain.to_dict()
    for table in plain.tables:  # every cell and dtype (Decimal money stays Decimal)
        pd.testing.assert_frame_equal(getattr(again, table), getattr(plain, table), check_exact=True)


def test_a_new_ingest_is_never_served_stale_figures(gcp_warehouse, cache, monkeypatch):
    """The key holds the warehouse's state: after another ingest into the same file the figures are computed again
    (keyed on the SQL alone -- same scope, same config -- the August-September figures would be served)."""
    before = _figures(gcp_warehouse)
    assert qc.stats.misses > 0
    fk.ingest([_gcp("202610")], warehouse=gcp_warehouse, progress=False)
    qc.stats.reset()
    after = _figures(gcp_warehouse)
    # nothing stored before is read back (a query the figures ask twice is a memory hit of this run's own answer)
    assert qc.stats.hits == 0 and qc.stats.misses > 0
    assert after == _uncached(gcp_warehouse, monkeypatch)
    assert after["totals"] != before["totals"]  # October's charges are in the figures


def test_an_edit_that_bypasses_ingest_is_never_served_stale_figures(gcp_warehouse, cache, monkeypatch):
    """Same ingest ledger, different rows (an UPDATE through a writable connection): the file's change stamp
    changes, so nothing cached before is reused."""
    before = _figures(gcp_warehouse)
    con = fk.connect(gcp_warehouse, write=True)
    con.execute("UPDATE focus SET EffectiveCost = EffectiveCost * 2")
    con.close()
    qc.stats.reset()
    after = _figures(gcp_warehouse)
    assert qc.stats.hits == 0 and qc.stats.misses > 0  # (a memory hit: a query asked twice in this run)
    assert after == _uncached(gcp_warehouse, monkeypatch) and after["totals"] != before["totals"]


def test_only_read_only_warehouse_files_are_cached(gcp_warehouse, cache, tmp_path):
    con = fk.connect(gcp_warehouse, write=True)
    assert qc.warehouse_state(con) is None  # another writer could change the rows under the key
    con.close()
    mem = duckdb.connect()
    assert qc.warehouse_state(mem) is None
    mem.close()
    con = fk.connect(gcp_warehouse, read_only=True)
    assert qc.warehouse_state(con) is not None
    con.close()


@pytest.mark.parametrize("sql, ok", [
    ("SELECT ProviderName, sum(EffectiveCost) AS c FROM focus GROUP BY ALL", True),
    ("WITH f AS (SELECT * FROM focus) SELECT count(*) FROM f", True),
    ("SELECT 'Amazon S3 now' AS service, count(*) FROM focus", True),  # words inside literals are data
    ("SELECT count(*) FROM focus WHERE ChargePeriodStart < current_date", False),
    ("SELECT count(*) FROM focus WHERE ChargePeriodStart < now()", False),
    ("SELECT random() FROM focus", False),
    ("SELECT count(*) FROM read_csv('x.csv')", False),
    ("SELECT count(*) FROM 'x.parquet'", False),
    ("SELECT count(*) FROM shadow", False),               # a temporary table
    ("SELECT count(*) FROM pandas_frame", False),         # a registered DataFrame
    ("SELECT lower(ProviderName) FROM focus", False),     # a temporary macro shadows the built-in
    ("SELECT count(*) FROM other.main.focus", False),     # another catalog
    ("SELECT 1; SELECT 2", False),
    ("DELETE FROM focus", False),
])
def test_what_may_be_cached(gcp_warehouse, cache, sql, ok):
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        con.execute("CREATE TEMP TABLE shadow AS SELECT 1 AS x")
        con.register("pandas_frame", pd.DataFrame({"x": [1]}))
        if "lower(" in sql:
            con.execute("CREATE TEMP MACRO lower(x) AS 'shadowed'")
        assert qc.cacheable(con, sql) is ok
    finally:
        con.close()


def test_a_temporary_table_shadowing_the_focus_table_is_not_cached(gcp_warehouse, cache):
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sql = "SELECT count(*) AS n FROM focus"
        assert qc.cacheable(con, sql)
        rows = qc.frame(con, sql)["n"].tolist()  # stored, in memory and on disk
        assert rows[0] > 1 and qc.stats.misses == 1
        con.execute("CREATE TEMP TABLE focus AS SELECT 1 AS x")
        assert not qc.cacheable(con, sql)
        assert qc.frame(con, sql)["n"].tolist() == [1]  # the temporary table's answer, not the stored one
        qc.clear_memory()
        assert qc.frame(con, sql)["n"].tolist() == [1]  # nor the entry on disk
        assert qc.stats.hits == qc.stats.memory_hits == 0
    finally:
        con.close()


def test_a_damaged_entry_is_a_miss_and_off_keeps_nothing(gcp_warehouse, cache, monkeypatch):
    first = _figures(gcp_warehouse)
    entries = list(cache.glob("*/*.arrow"))
    assert entries
    for p in entries:
        p.write_bytes(b"not arrow")
    qc.clear_memory()
    qc.stats.reset()
    assert _figures(gcp_warehouse) == first and qc.stats.hits == 0 and qc.stats.misses > 0
    off = cache.parent / "off-check"
    monkeypatch.setenv(qc.ENV, "off")
    qc.stats.reset()
    assert _figures(gcp_warehouse) == first and qc.stats.misses == qc.stats.hits == 0
    assert not off.exists() and json.dumps(first)


def test_functions_are_listed_once_per_catalog_version_and_a_later_macro_or_udf_is_still_seen(
        gcp_warehouse, cache, function_listings):
    """Listing the session's functions (duckdb_functions(), 9 ms) was most of a hit's cost, on every lookup. It now
    runs once per catalog version for queries that call only built-ins; a macro created later (it may shadow a
    built-in, and moves the version) and a UDF (it cannot shadow one) are both still seen."""
    listings = function_listings
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sql = "SELECT lower(ProviderName) AS p, count(*) AS n FROM focus GROUP BY ALL ORDER BY p"
        first = qc.frame(con, sql)
        for _ in range(5):
            pd.testing.assert_frame_equal(qc.frame(con, sql), first)
        assert qc.stats.memory_hits == 5 and len(listings) <= 2  # the miss (parse + store) and nothing after

        con.execute("CREATE TEMP MACRO lower(x) AS 'shadowed'")  # after the listing was kept
        assert not qc.cacheable(con, sql)
        assert qc.frame(con, sql)["p"].tolist() == ["shadowed"]  # the macro's answer, not the stored one

        con.create_function("fk_test_double", lambda x: 2 * x, ["BIGINT"], "BIGINT")  # no version change
        udf = "SELECT fk_test_double(count(*)) AS n FROM focus"
        assert not qc.cacheable(con, udf)
    finally:
        con.close()


def test_a_hit_asks_the_catalog_nothing_until_the_session_changes(gcp_warehouse, cache, monkeypatch):
    """The warehouse state and the table listing were two catalog queries on every lookup (3.4 ms of a 3.4 ms hit,
    ~100 lookups per report kernel). They are read once per catalog version: a hit asks DuckDB nothing, and a
    setting that changes how values print (SET moves the version) is a new key, not a stale answer."""
    calls: list[str] = []
    rows = qc._rows
    monkeypatch.setattr(qc, "_rows", lambda con, sql, params=None: calls.append(sql) or rows(con, sql, params))
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sql = "SELECT CAST(CAST(min(ChargePeriodStart) AS TIMESTAMPTZ) AS VARCHAR) AS first FROM focus"
        utc = qc.frame(con, sql)
        calls.clear()
        for _ in range(5):
            pd.testing.assert_frame_equal(qc.frame(con, sql), utc)
        assert calls == [] and qc.stats.memory_hits == 5
        con.execute("SET TimeZone = 'Asia/Kolkata'")
        shifted = qc.frame(con, sql)
        assert calls and qc.stats.misses == 2  # a new key: the settings are part of the state
        assert shifted["first"][0].endswith("+05:30") and utc["first"][0].endswith("+00")  # under each time zone
        con.execute("CREATE TEMP VIEW focus AS SELECT TIMESTAMPTZ '2020-01-01 00:00:00+00' AS ChargePeriodStart")
        assert not qc.cacheable(con, sql)  # the temporary view is seen at once
    finally:
        con.close()


def test_a_query_answers_as_its_relation_would_and_warns_nothing(gcp_warehouse, cache, recwarn):
    """:func:`querycache._run` asks DuckDB once (``execute``) instead of a relation's bind-then-run: the same
    Arrow table, column types included (DECIMAL money, HUGEINT sums, timestamps with a zone, lists, structs, NULLs),
    on a miss, a hit and an uncacheable query -- and DuckDB's copy warning never reaches the user."""
    sql = """SELECT ProviderName, BillingCurrency, sum(EffectiveCost) AS cost, sum(EffectiveCost)::DECIMAL(38,12) AS c38,
                    sum(CAST(1 AS HUGEINT)) AS n, min(ChargePeriodStart) AS first, max(ChargePeriodEnd) AS last,
                    list(DISTINCT ServiceName ORDER BY ServiceName) AS services,
                    {'rows': count(*), 'none': NULL::VARCHAR} AS info, NULL::DOUBLE AS nothing
             FROM focus GROUP BY ALL ORDER BY ALL"""
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        expected = con.sql(sql).to_arrow_table()
        miss = qc.arrow(con, sql)
        hit = qc.arrow(con, sql)
        volatile = qc.arrow(con, sql.replace("NULL::DOUBLE", "random()*0"))
    finally:
        con.close()
    assert qc.stats.misses == 1 and qc.stats.memory_hits == 1 and qc.stats.uncacheable == 1
    assert miss.schema == expected.schema and miss.equals(expected) and hit.equals(expected)
    assert volatile.schema.names == expected.schema.names and volatile.num_rows == expected.num_rows
    assert not [w for w in recwarn if "DB-API" in str(w.message)]


def test_the_scopes_usage_is_derived_once_per_connection_and_its_queries_stay_cacheable(gcp_warehouse, cache,
                                                                                       monkeypatch):
    """``units.accelerated_usage_from`` names a temporary table of the scope's accelerated usage, made on a read-only
    connection when the first query reading it runs (not when a query comes from the cache), with the same figures
    as the query that derives it inline; the queries reading it are kept and read back on another connection
    without making it there. Writable connections and warehouses past MATERIALIZE_MAX_ROWS derive it inline."""
    from finops_kit import units

    expected = _uncached(gcp_warehouse, monkeypatch)  # metrics reads the usage twice (families, spot shares)
    monkeypatch.setenv(qc.ENV, str(cache))
    made = []
    real_ensure = qc.ensure

    def counting(con, sql):
        before = set(qc._made.get(con, set()))
        real_ensure(con, sql)
        made.extend(sorted(set(qc._made.get(con, set())) - before))

    monkeypatch.setattr(qc, "ensure", counting)
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
        name = units.accelerated_usage_from(con, sc)
        assert name.startswith("_fk_usage_") and made == []  # named, not made yet
        assert metrics(con, sc).to_dict() == expected
        # made once, for the first of the queries that read it (and the usage with its OS, which reads it)
        assert made.count(name) == 1 and len(made) == len(set(made)) and made[0] == name
        inline = con.sql(f"SELECT count(*), sum(EffectiveCost) FROM ({units.accelerated_usage_sql(source=sc.rows_sql())})"
                         ).fetchall()
        assert con.sql(f"SELECT count(*), sum(EffectiveCost) FROM {name}").fetchall() == inline and inline[0][0] > 0
    finally:
        con.close()
    qc.clear_memory()
    qc.stats.reset()
    made.clear()
    assert _figures(gcp_warehouse) == expected
    assert qc.stats.hits > 0 and qc.stats.misses == 0 and made == []  # every query from the cache: nothing derived
    monkeypatch.setattr(qc, "MATERIALIZE_MAX_ROWS", 10)
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
        assert units.accelerated_usage_from(con, sc).startswith("(")  # too many rows to keep: derived inline
    finally:
        con.close()
    monkeypatch.setattr(qc, "MATERIALIZE_MAX_ROWS", 10**9)
    con = fk.connect(gcp_warehouse, write=True)
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
        assert units.accelerated_usage_from(con, sc).startswith("(")  # a writer may change the rows: inline
    finally:
        con.close()


def test_every_figure_is_the_same_whether_derived_relations_are_kept_or_not(sample_warehouse, monkeypatch):
    """The demo warehouse's figures that read a kept relation (querycache.materialized: the usage, the usage with
    each VM's OS, token rows, storage rows) equal the ones derived inline in each query (MATERIALIZE_MAX_ROWS
    below the warehouse's size): metrics, commitment coverage and recommendations, spot coverage, rates and
    what-if, accelerator families, token figures, storage and egress tables, and the bill guardrails (whose
    per-resource spot shares read the kept usage filtered, or derive those resources' usage alone)."""
    import datetime as dt

    from finops_kit import commitments as cm
    from finops_kit import egress as eg
    from finops_kit import guard, spot
    from finops_kit import storage as st
    from finops_kit import tagging as tg
    from finops_kit import tokens as tk
    from finops_kit.config import load_config

    monkeypatch.setenv(qc.ENV, "off")
    cfg = load_config(str(REPO / "finops.yaml"))

    def figures(kept: bool) -> list:
        monkeypatch.setattr(qc, "MATERIALIZE_MAX_ROWS", 10**9 if kept else -1)
        con = fk.connect(sample_warehouse, read_only=True)
        try:
            sc = S.resolve(con, str(REPO / "finops.yaml"), {})
            out = [metrics(con, sc).to_dict(),
                   cm.coverage(con, sc, by=("provider", "instance_family", "operating_system")).to_csv(),
                   cm.recommend(con, sc)[0].to_csv(),
                   spot.spot_coverage(con, scope=sc, by=("month", "team")).df().to_csv(),
                   spot.effective_rates(con, scope=sc, by=("provider", "instance_type", "operating_system")).df()
                   .to_csv(),
                   spot.spot_what_if(con, scope=sc).to_csv(),
                   tg.accelerator_families(con, scope=sc).to_csv(),
                   tk.unit_costs(con, sc).to_csv(), tk.trend(con, sc, by=("provider", "model")).to_csv(),
                   st.inventory(con, by=["provider", "storage_class"]).to_csv(),
                   eg.by_type(con, by=["provider", "transfer_type"]).to_csv(),
                   repr(guard.bill_checks(con, cfg, as_of=dt.date(2026, 11, 26), scope=sc))]
            made = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
                    if r[0].startswith(("_fk_usage", "_fk_tokens", "_fk_rows"))]
            return out, made
        finally:
            con.close()

    inline, none = figures(False)
    kept, made = figures(True)
    assert none == [] and len(made) >= 4  # usage, usage with OS, tokens, storage rows
    assert "non_production" in inline[-1]  # the guardrails' per-resource spot shares are exercised
    for a, b in zip(inline, kept, strict=True):
        assert a == b


def test_the_kits_own_temporary_objects_do_not_make_the_next_lookup_list_duckdbs_functions_again(
        gcp_warehouse, cache, function_listings):
    """A temporary table, view or frame the kit makes itself (querycache.own_objects: the derived relations, the
    attribution maps, the tag audit's views) defines no function, so the next lookup reuses the listing of the
    session's functions; a statement outside it (a macro a user defines) still makes the next lookup list them
    and see the macro."""
    listings = function_listings
    sql = "SELECT BillingCurrency, lower(ServiceName) AS s, sum(BilledCost) AS cost FROM focus GROUP BY ALL ORDER BY ALL"
    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        first = qc.frame(con, sql)
        assert len(listings) == 1
        with qc.own_objects(con):
            con.execute("CREATE TEMP TABLE _fk_probe AS SELECT 1 AS x")
            con.execute("DROP TABLE _fk_probe")
        assert qc.frame(con, sql).equals(first) and len(listings) == 1  # carried over: not listed again
        con.execute("CREATE TEMP TABLE probe AS SELECT 1 AS x")  # not the kit's: listed again
        assert qc.frame(con, sql).equals(first) and len(listings) == 2
        con.execute("CREATE TEMP MACRO lower(x) AS upper(x)")
        shadowed = qc.frame(con, sql)
        assert len(listings) == 3  # the macro is seen: the answer is the macro's, not the cached one
        assert shadowed["s"].tolist() == [v.upper() for v in first["s"]] != first["s"].tolist()
    finally:
        con.close()


def test_a_kept_relation_over_a_focus_table_shadowed_since_is_not_cached(gcp_warehouse, cache):
    """A query over the kit's kept relation is cacheable only while the relation's own query reads the file's tables:
    once a temporary 'focus' shadows the warehouse's, the relation (made now) would hold the temporary table's rows
    under a name that says the warehouse's, so the answer is computed and not kept."""
    from finops_kit import units

    con = fk.connect(gcp_warehouse, read_only=True)
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
        usage = units.accelerated_usage_from(con, sc)
        assert qc.kept(usage)
        con.execute("CREATE TEMP TABLE focus AS SELECT * FROM main.focus LIMIT 0")  # shadows the file's table
        qc.stats.reset()
        rows = qc.frame(con, f"SELECT count(*) AS n FROM {usage}")
        assert rows["n"].iloc[0] == 0  # the shadowing (empty) table's rows, as an inline query would read them
        assert qc.stats.uncacheable == 1 and qc.stats.misses == 0 and not list(cache.glob("*/*.arrow"))
    finally:
        con.close()
