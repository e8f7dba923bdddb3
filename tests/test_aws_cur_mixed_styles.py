"""A legacy CUR with slash columns and one with Athena snake_case columns, ingested in one call.

Both spellings are the same format (``aws-cur``), so they are staged as one view over all the files; the two
spellings of one column (``identity/LineItemId``, ``identity_line_item_id``) must become one column with one
``x_`` name, and a column only one style has must still be found by the mapping.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.ingest import ingest
from finops_kit.sources.base import ident

SLASH_HEADER = ["identity/LineItemId", "identity/TimeInterval", "bill/PayerAccountId", "bill/BillingPeriodStartDate",
                "bill/BillingPeriodEndDate", "lineItem/UsageAccountId", "lineItem/LineItemType",
                "lineItem/UsageStartDate", "lineItem/UsageEndDate", "lineItem/ProductCode", "lineItem/UsageType",
                "lineItem/UsageAmount", "lineItem/CurrencyCode", "lineItem/UnblendedCost",
                "lineItem/NormalizationFactor", "lineItem/BlendedCost", "resourceTags/user:team",
                "resourceTags/user:Env"]
SLASH_ROWS = [
    ["li-a1", "2026-01-05T00:00:00Z/2026-01-05T01:00:00Z", "111111111111", "2026-01-01T00:00:00Z",
     "2026-02-01T00:00:00Z", "222222222222", "Usage", "2026-01-05T00:00:00Z", "2026-01-05T01:00:00Z", "AmazonEC2",
     "BoxUsage:m5.large", "1", "USD", "1.000000000001", "8", "1.5", "ml", "Prod"],
    ["li-a2", "2026-01-06T00:00:00Z/2026-01-06T01:00:00Z", "111111111111", "2026-01-01T00:00:00Z",
     "2026-02-01T00:00:00Z", "222222222222", "Usage", "2026-01-06T00:00:00Z", "2026-01-06T01:00:00Z", "AmazonS3",
     "TimedStorage-ByteHrs", "10", "USD", "2.5", "", "2.5", "", ""],
    ["li-a3", "2026-01-01T00:00:00Z/2026-02-01T00:00:00Z", "111111111111", "2026-01-01T00:00:00Z",
     "2026-02-01T00:00:00Z", "222222222222", "Tax", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "AmazonEC2",
     "", "1", "USD", "0.123456789012", "", "", "", ""],
]
# Athena spelling; pricing_public_on_demand_cost, line_item_unblended_rate and product_clock_speed exist only here
SNAKE_HEADER = ["identity_line_item_id", "identity_time_interval", "bill_payer_account_id",
                "bill_billing_period_start_date", "bill_billing_period_end_date", "line_item_usage_account_id",
                "line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
                "line_item_product_code", "line_item_usage_type", "line_item_usage_amount", "line_item_currency_code",
                "line_item_unblended_cost", "line_item_normalization_factor", "line_item_blended_cost",
                "resource_tags_user_team", "pricing_public_on_demand_cost", "line_item_unblended_rate",
                "product_clock_speed"]
SNAKE_ROWS = [
    ["li-b1", "2026-02-03T00:00:00Z/2026-02-03T01:00:00Z", "111111111111", "2026-02-01T00:00:00Z",
     "2026-03-01T00:00:00Z", "222222222222", "Usage", "2026-02-03T00:00:00Z", "2026-02-03T01:00:00Z", "AmazonEC2",
     "BoxUsage:m5.xlarge", "1", "USD", "3.000000000003", "4", "2.25", "web", "4.5", "3.000000000003", "3.1 GHz"],
    ["li-b2", "2026-02-04T00:00:00Z/2026-02-04T01:00:00Z", "111111111111", "2026-02-01T00:00:00Z",
     "2026-03-01T00:00:00Z", "222222222222", "Usage", "2026-02-04T00:00:00Z", "2026-02-04T01:00:00Z", "AmazonEC2",
     "BoxUsage:m5.xlarge", "1", "USD", "0.000000000001", "", "", "", "", "", ""],
]
PERIODS = {"2026-01": (3, Decimal("3.623456789013")), "2026-02": (2, Decimal("3.000000000004"))}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


@pytest.fixture()
def both_styles(tmp_path: Path) -> tuple[str, str]:
    return (_write(tmp_path / "slash.csv", SLASH_HEADER, SLASH_ROWS),
            _write(tmp_path / "athena.csv", SNAKE_HEADER, SNAKE_ROWS))


def _per_period(con) -> dict[str, tuple[int, Decimal]]:
    return {p: (n, billed) for p, n, billed in con.execute(
        "SELECT strftime(BillingPeriodStart, '%Y-%m'), count(*), sum(BilledCost) FROM focus GROUP BY 1").fetchall()}


def _x(con, column: str) -> dict[str, str | None]:
    return dict(con.execute(f'SELECT x_identity_line_item_id, "{column}" FROM focus').fetchall())


def _x_columns(con) -> set[str]:
    return {r[0] for r in con.execute("DESCRIBE focus").fetchall() if r[0].startswith("x_")}


@pytest.mark.parametrize("order", [1, -1], ids=["slash-first", "athena-first"])
def test_both_styles_in_one_call(both_styles, con, order):
    res = ingest(list(both_styles[::order]), con=con)
    assert res.source_format == "aws-cur"
    assert _per_period(con) == PERIODS
    # one x_ column per meaning, whichever spelling the row came from
    assert _x(con, "x_identity_line_item_id") == {i: i for i in ("li-a1", "li-a2", "li-a3", "li-b1", "li-b2")}
    assert _x(con, "x_line_item_normalization_factor") == {"li-a1": "8", "li-a2": None, "li-a3": None,
                                                           "li-b1": "4", "li-b2": None}
    # a curated column only the Athena file has
    assert _x(con, "x_line_item_unblended_rate")["li-b1"] == "3.000000000003"
    assert not any(c.endswith("_1") or "~" in c for c in _x_columns(con))
    # columns only one style has are still mapped (ListCost from pricing_public_on_demand_cost)
    assert _x(con, "ListCost")["li-b1"] == Decimal("4.5")
    tags = {k: json.loads(v) if v else None for k, v in _x(con, "Tags").items()}
    assert tags == {"li-a1": {"team": "ml", "Env": "Prod"}, "li-a2": None, "li-a3": None, "li-b1": {"team": "web"},
                    "li-b2": None}


@pytest.mark.parametrize("order", [1, -1], ids=["slash-first", "athena-first"])
def test_both_styles_keep_source_columns(both_styles, warehouse, capsys, order):
    args = ["ingest", *both_styles[::order], "--warehouse", warehouse, "--no-progress", "--keep-source-columns"]
    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _per_period(con) == PERIODS
        assert _x(con, "x_line_item_blended_cost") == {"li-a1": "1.5", "li-a2": "2.5", "li-a3": None,
                                                       "li-b1": "2.25", "li-b2": None}
        assert _x(con, "x_identity_time_interval")["li-a1"] == "2026-01-05T00:00:00Z/2026-01-05T01:00:00Z"
        assert _x(con, "x_identity_time_interval")["li-b1"] == "2026-02-03T00:00:00Z/2026-02-03T01:00:00Z"
        assert _x(con, "x_product_clock_speed") == {"li-a1": None, "li-a2": None, "li-a3": None,
                                                    "li-b1": "3.1 GHz", "li-b2": None}
        xs = _x_columns(con)
        assert not any(c.endswith("_1") or "~" in c or "/" in c for c in xs)
        assert not any(c.startswith("x_resource_tags") for c in xs)
    finally:
        con.close()


def _all_rows(con) -> list[tuple]:
    """Every written row and column except the ingest id, in a stable order (x_ columns sorted by name)."""
    cols = sorted(r[0] for r in con.execute("DESCRIBE focus").fetchall() if r[0] != "x_IngestId")
    rows = con.execute(f"SELECT {', '.join(f'CAST({ident(c)} AS VARCHAR)' for c in cols)} FROM focus").fetchall()
    return [tuple(cols)] + sorted(rows, key=lambda r: tuple((v is None, v or "") for v in r))


@pytest.mark.parametrize("keep", [False, True], ids=["curated", "keep-source-columns"])
def test_mixed_call_equals_each_style_alone(both_styles, tmp_path, keep):
    """Every column of every row is what the file gives when ingested on its own."""
    mixed, alone = fk.connect(str(tmp_path / "mixed.duckdb"), write=True), fk.connect(str(tmp_path / "alone.duckdb"),
                                                                                      write=True)
    try:
        ingest(list(both_styles), con=mixed, keep_source_columns=keep)
        for f in both_styles:
            ingest(f, con=alone, keep_source_columns=keep)
        assert _per_period(alone) == PERIODS
        assert _all_rows(mixed) == _all_rows(alone)
    finally:
        mixed.close()
        alone.close()


def test_corpus_koku_slash_and_athena_in_one_call(shared, tmp_path):
    """The reported case: koku's slash-column test CUR and its Athena snake_case export, in one call."""
    base = shared / "corpus" / "raw" / "aws" / "legacy_cur"
    files = [str(base / "koku__test_cur.csv"), str(base / "koku__athena_snake_case_2022-07-01-alt-columns.csv")]
    if not all(Path(f).exists() for f in files):
        pytest.skip("koku CUR exports not in the corpus")
    mixed, alone = fk.connect(str(tmp_path / "mixed.duckdb"), write=True), fk.connect(str(tmp_path / "alone.duckdb"),
                                                                                      write=True)
    try:
        ingest(files, con=mixed)
        assert _per_period(mixed) == {"2018-06": (19, Decimal("0.082749984125")), "2022-07": (2, Decimal("0"))}
        assert mixed.execute("SELECT count(x_identity_line_item_id) FROM focus").fetchone()[0] == 21
        for f in files:
            ingest(f, con=alone)
        assert _all_rows(mixed) == _all_rows(alone)
    finally:
        mixed.close()
        alone.close()


def _parquet(path: Path, header: list[str], rows: list[list[str]], typed: set[str]) -> str:
    """The rows as parquet; ``typed`` columns as DOUBLE / TIMESTAMP, as Athena parquet has them, the rest text."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    def value(column: str, v: str) -> object:
        if not v or column not in typed:
            return v or None
        return dt.datetime.fromisoformat(v.removesuffix("Z")) if column.endswith("_date") else float(v)

    pq.write_table(pa.table({h: [value(h, r[i]) for r in rows] for i, h in enumerate(header)}), path)
    return str(path)


def test_parquet_of_both_styles_with_different_types(tmp_path):
    """Slash parquet with text values and Athena parquet with typed ones: one column per meaning all the same."""
    files = [_parquet(tmp_path / "slash.parquet", SLASH_HEADER, SLASH_ROWS, set()),
             _parquet(tmp_path / "athena.parquet", SNAKE_HEADER, SNAKE_ROWS,
                      {"line_item_unblended_cost", "line_item_usage_amount", "bill_billing_period_start_date",
                       "line_item_usage_start_date", "line_item_usage_end_date"})]
    mixed, alone = fk.connect(str(tmp_path / "mixed.duckdb"), write=True), fk.connect(str(tmp_path / "alone.duckdb"),
                                                                                      write=True)
    try:
        ingest(files, con=mixed)
        for f in files:
            ingest(f, con=alone)
        assert _per_period(mixed) == PERIODS
        assert _all_rows(mixed) == _all_rows(alone)
    finally:
        mixed.close()
        alone.close()


def test_bad_value_in_the_athena_file_names_its_own_column(both_styles, warehouse, capsys):
    """The merged view spells the cost column the slash way; the error names the column the bad file has."""
    path = Path(both_styles[1])
    path.write_text(path.read_text(encoding="utf-8").replace("0.000000000001", "abc"), encoding="utf-8")
    assert main(["ingest", *both_styles, "--warehouse", warehouse, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"finops-kit: error: {path}, row 2, column 'line_item_unblended_cost': cannot parse 'abc'")
    assert len(err.splitlines()) == 1
