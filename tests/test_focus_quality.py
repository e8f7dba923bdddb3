"""FOCUS input is checked, not trusted: rejects name file, data row, column and value; reports and repairs are
counted in the data_quality table and in the one line report headers show.

The FOCUS files are generated: one month of the Azure sample normalized by the kit and exported as a FOCUS 1.2
CSV (about 600 realistic rows), then broken at a data row far from the top.
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.export import export_focus
from finops_kit.quality import summary_line

from .shapes import SAMPLES

ROW = 437  # the data row (1 = first row after the header) that gets broken


@pytest.fixture(scope="module")
def focus_csv(tmp_path_factory) -> Path:
    """A FOCUS 1.2 CSV export of one Azure sample month, rows in a fixed order."""
    base = tmp_path_factory.mktemp("focusq")
    wh = str(base / "src.duckdb")
    fk.ingest([str(p) for p in sorted((SAMPLES / "azure").glob("*/*_202605.csv.gz"))], warehouse=wh, progress=False)
    con = fk.connect(wh, write=True)
    # a fixed row order and no lineage columns: the file is what a provider would deliver
    con.execute("CREATE TABLE ordered AS SELECT * FROM focus ORDER BY ChargePeriodStart, ResourceId, BilledCost, "
                "ChargeCategory, x_AzureDataset")
    con.execute("DELETE FROM focus")
    con.execute("INSERT INTO focus SELECT * FROM ordered")
    out = base / "focus_1_2.csv"
    export_focus(con, str(out), focus_only=True, drop_empty=True)
    con.close()
    return out


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        r = list(csv.reader(fh))
    return r[0], r[1:]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    return str(path)


def _broken(focus_csv: Path, tmp_path: Path, name: str, column: str, value: str, row: int = ROW) -> str:
    header, rows = _rows(focus_csv)
    rows[row - 1][header.index(column)] = value
    return _write(tmp_path / name, header, rows)


def _refused(warehouse: str, path: str, pattern: str, capsys) -> str:
    code = main(["ingest", path, "--warehouse", warehouse, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err
    if Path(warehouse).exists():  # nothing partial written (a refused first ingest leaves no warehouse at all)
        con = fk.connect(warehouse, read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0
        finally:
            con.close()
    return err


def test_the_generated_file_loads_and_reconciles(focus_csv, warehouse):
    res = fk.ingest(str(focus_csv), warehouse=warehouse, progress=False)
    assert res.rows > ROW and all(r["ok"] for r in res.reconciliation)


@pytest.mark.parametrize("column, value, shown, expected", [
    ("BilledCost", "", "NULL", "a number"),
    ("EffectiveCost", "NULL", "NULL", "a number"),
    ("ChargePeriodStart", "", "NULL", "a date/time"),
    ("BillingCurrency", "US$", "'US\\$'", "an ISO 4217 currency code"),
    ("BillingCurrency", "", "NULL", "an ISO 4217 currency code"),
    ("ChargeCategory", "Refund", "'Refund'", "one of Usage, Purchase, Tax, Credit, Adjustment"),
    ("ServiceCategory", "Cloud", "'Cloud'", "one of AI and Machine Learning"),
    ("Tags", '["team", "vision"]', "'\\[\"team\", \"vision\"\\]'", "a JSON object"),
])
def test_invariant_breaks_are_refused_at_their_row(focus_csv, tmp_path, warehouse, capsys, column, value, shown,
                                                   expected):
    path = _broken(focus_csv, tmp_path, "broken.csv", column, value)
    _refused(warehouse, path, rf"broken\.csv, row {ROW}, column '{column}': {shown}; expected {re.escape(expected)}",
             capsys)


def test_end_before_start_is_refused_at_its_row(focus_csv, tmp_path, warehouse, capsys):
    path = _broken(focus_csv, tmp_path, "broken.csv", "ChargePeriodEnd", "2026-04-30 00:00:00")
    _refused(warehouse, path, rf"broken\.csv, row {ROW}, column 'ChargePeriodEnd': '2026-04-30 00:00:00'; "
             r"expected a time at or after ChargePeriodStart", capsys)


def test_bad_tags_json_names_column_and_row(focus_csv, tmp_path, warehouse, capsys):
    path = _broken(focus_csv, tmp_path, "broken.csv", "Tags", '{"team": "vision"')
    _refused(warehouse, path, rf"broken\.csv, row {ROW}, column 'Tags': cannot parse .*; expected a JSON object",
             capsys)


def test_a_money_column_twice_is_refused(focus_csv, tmp_path, warehouse, capsys):
    header, rows = _rows(focus_csv)
    i = header.index("BilledCost")
    path = _write(tmp_path / "twice.csv", [*header, "billedcost"], [[*r, r[i]] for r in rows])
    _refused(warehouse, path, r"twice\.csv, column 'BilledCost': column 'BilledCost' appears more than once in "
             r"different case \('BilledCost', 'billedcost'\); expected it once", capsys)
    # the same spelling twice: DuckDB would read the second as BilledCost_1, kept as a custom column
    path = _write(tmp_path / "same.csv", [*header, "EffectiveCost"], [[*r, r[i]] for r in rows])
    _refused(warehouse, path, r"same\.csv, column 'EffectiveCost': column 'EffectiveCost' appears .*2 times", capsys)


def test_reports_are_loaded_counted_and_summed(focus_csv, tmp_path, warehouse, capsys):
    """Charges outside their billing period and cost off price x quantity are real: loaded, counted, summed."""
    header, rows = _rows(focus_csv)
    h = {c: i for i, c in enumerate(header)}
    usage = [k for k, r in enumerate(rows) if r[h["ChargeCategory"]] == "Usage" and r[h["ListUnitPrice"]]
             and r[h["PricingQuantity"]] and Decimal(r[h["ListCost"]]) > 1]
    late, off = usage[10:13], usage[20:24]
    for k in late:  # usage of the last day of the previous month billed in this one
        rows[k][h["ChargePeriodStart"]] = "2026-04-30 00:00:00"
        rows[k][h["ChargePeriodEnd"]] = "2026-05-01 00:00:00"
    for k in off:
        rows[k][h["ListCost"]] = str(Decimal(rows[k][h["ListCost"]]) * 2)
    path = _write(tmp_path / "real.csv", header, rows)
    assert main(["ingest", path, "--warehouse", warehouse, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "data quality report: charge_outside_billing_period (ChargePeriodStart): 3 rows in 1 file(s)" in out
    assert "data quality report: list_cost_vs_price (ListCost): 4 rows in 1 file(s)" in out
    con = fk.connect(warehouse, read_only=True)
    got = {r[0]: r[1:] for r in con.execute("SELECT rule, rows, billed_cost, difference FROM data_quality "
                                            "WHERE kind = 'report'").fetchall()}
    billed = sum(Decimal(rows[k][h["BilledCost"]]) for k in late)
    assert got["charge_outside_billing_period"][:2] == (3, billed)
    assert got["list_cost_vs_price"][0] == 4
    # the difference as the rule defines it, |ListCost - ListUnitPrice x PricingQuantity| (not ListCost / 2: rows
    # priced per 1K/1M block, such as token lines, are off price x quantity by rounding before the doubling)
    exact = sum(abs(Decimal(rows[k][h["ListCost"]]) - Decimal(rows[k][h["ListUnitPrice"]])
                    * Decimal(rows[k][h["PricingQuantity"]])) for k in off)
    assert abs(got["list_cost_vs_price"][2] - exact) < Decimal("1e-9")
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == len(rows)
    line = summary_line(con)
    assert "charge outside billing period 3 rows" in line and "list cost vs price 4 rows" in line


def test_negative_unit_price_is_a_counted_repair_not_a_silent_flip(focus_csv, tmp_path, warehouse):
    header, rows = _rows(focus_csv)
    h = {c: i for i, c in enumerate(header)}
    k = next(k for k, r in enumerate(rows) if r[h["ChargeCategory"]] == "Usage" and r[h["ListUnitPrice"]]
             and Decimal(r[h["ListUnitPrice"]]) > 0 and Decimal(r[h["PricingQuantity"]]) > 0
             and Decimal(r[h["ListCost"]]) > 0)
    # a refund written as a negative price: cost and price negative, quantity positive
    for c in ("ListCost", "ContractedCost", "BilledCost", "EffectiveCost", "ListUnitPrice", "ContractedUnitPrice"):
        if rows[k][h[c]]:
            rows[k][h[c]] = str(-Decimal(rows[k][h[c]]))
    qty = Decimal(rows[k][h["PricingQuantity"]])
    path = _write(tmp_path / "refund.csv", header, rows)
    fk.ingest(path, warehouse=warehouse, progress=False)
    con = fk.connect(warehouse, read_only=True)
    price, q, repair = con.execute("SELECT ListUnitPrice, PricingQuantity, x_Repair FROM focus "
                                   "WHERE x_Repair LIKE '%negative_unit_price%'").fetchone()
    assert price > 0 and q == -qty and repair == "negative_unit_price"
    assert con.execute("SELECT rows FROM data_quality WHERE rule = 'negative_unit_price'").fetchone()[0] == 1
    assert "repaired: negative unit price 1 rows" in summary_line(con)


def test_enum_spelling_and_x_prefix_are_counted_repairs(warehouse):
    quirky = Path(__file__).parent / "fixtures" / "focus" / "quirky_focus_1_2.csv"
    fk.ingest(str(quirky), warehouse=warehouse, progress=False)
    con = fk.connect(warehouse, read_only=True)
    got = {(r[0], r[1]): r[2] for r in con.execute("SELECT rule, column_name, rows FROM data_quality "
                                                   "WHERE kind = 'repair'").fetchall()}
    # 'usage', 'usage-based'/'ONE-TIME', 'standard'/'other', 'AI and machine learning'/'compute'; VendorExtra
    assert got == {("enum_spelling", "ChargeCategory"): 1, ("enum_spelling", "ChargeFrequency"): 2,
                   ("enum_spelling", "PricingCategory"): 2, ("enum_spelling", "ServiceCategory"): 2,
                   ("x_prefix", "x_VendorExtra"): 4}


def test_every_sample_source_is_checked_and_the_header_line_says_so(sample_warehouse):
    con = fk.connect(sample_warehouse, read_only=True)
    findings = con.execute("SELECT kind, rule, sum(rows)::BIGINT FROM data_quality GROUP BY ALL").fetchall()
    assert findings  # the samples have findings (a FOCUS row with a negative unit price is repaired)
    line = summary_line(con)
    assert line.startswith("Data quality: ")
    for kind, rule, rows in findings:  # the header line names every finding with its row count
        assert f"{'reported' if kind == 'report' else 'repaired'}: " in line
        assert f"{rule.replace('_', ' ')} {rows:,} rows" in line, (rule, line)


def test_an_old_warehouse_without_the_table_says_not_recorded(tmp_path):
    con = fk.connect(str(tmp_path / "old.duckdb"), write=True)
    assert "not recorded" in summary_line(con)


def test_report_header_shows_the_data_quality_line(sample_warehouse, monkeypatch):
    import IPython.display

    from finops_kit import notebook as nb

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    con = fk.connect(sample_warehouse, read_only=True)
    nb.header(con, "Any report")
    assert summary_line(con) in shown[0]["text/html"].replace("&#x27;", "'")


def test_a_virtual_pricing_currency_is_accepted_and_reported(focus_csv, tmp_path, warehouse):
    """FOCUS 1.2: PricingCurrency is 'the national or virtual currency' a charge was priced in (the spec's own
    virtual-currency example prices in 'Token'). It was refused as 'expected an ISO 4217 currency code' (found by a
    review). Now accepted and reported as a finding; BillingCurrency stays ISO 4217 only."""
    path = _broken(focus_csv, tmp_path, "virtual.csv", "PricingCurrency", "Token")
    res = fk.ingest(path, warehouse=warehouse, progress=False)
    assert all(r["ok"] for r in res.reconciliation)
    con = fk.connect(warehouse, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM focus WHERE PricingCurrency = 'Token'").fetchone()[0] == 1
    finally:
        con.close()
    assert any(f.column == "PricingCurrency" and f.rows == 1 for f in res.quality), res.quality


@pytest.mark.parametrize("name, region_id, region_name, repaired", [
    ("id_as_name.csv", "us-sanjose-1", "us-sanjose-1", False),  # OCI writes its region id in RegionName
    ("display_name.csv", None, None, True),                      # an unknown display name: cleared, flagged
])
def test_a_region_name_without_id(focus_csv, tmp_path, warehouse, name, region_id, region_name, repaired):
    """RegionName MUST be null when RegionId is null, so an unknown name was cleared. The official FOCUS sample's
    OCI rows write the region id ('us-sanjose-1') in RegionName with no RegionId, and lost it (found by a review):
    a name spelled like a region id (lower-case words joined by hyphens) is taken as the id."""
    header, rows = _rows(focus_csv)
    rows[ROW - 1][header.index("RegionId")] = ""
    rows[ROW - 1][header.index("RegionName")] = "us-sanjose-1" if region_id else "Somewhere Nice"
    rows[ROW - 1][header.index("ChargeDescription")] = "the row under test"
    res = fk.ingest(_write(tmp_path / name, header, rows), warehouse=warehouse, progress=False)
    assert all(r["ok"] for r in res.reconciliation)
    con = fk.connect(warehouse, read_only=True)
    try:
        got = con.execute("SELECT RegionId, RegionName, coalesce(x_Repair, '') LIKE '%region_name_without_id%' "
                          "FROM focus WHERE ChargeDescription = 'the row under test'").fetchall()
    finally:
        con.close()
    assert got == [(region_id, region_name, repaired)]
