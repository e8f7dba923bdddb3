"""Session 14 ingest review: each test reproduces one reviewed problem (see the commit messages) with a small
fixture built here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_kit.errors import InputError
from finops_kit.ingest import ingest
from tests.test_aws_sources import BILLED, SP_RI, _rows, _totals, cur2_table


def _write_legacy(path: Path, rows: list[dict], id_prefix: str = "", account: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            r = dict(r)
            r["identity/LineItemId"] = id_prefix + r["identity/LineItemId"]
            if account is not None:
                r["lineItem/UsageAccountId"] = account
            w.writerow(r)
    return path


# ---- 1. two reports / exports of one payer and month in one call are two copies, not parts ------------------------
def test_two_legacy_reports_of_one_month_in_one_call_are_refused_not_summed(tmp_path, con):
    rows = _rows(SP_RI)
    daily = _write_legacy(tmp_path / "cur" / "daily-report-1.csv", rows)
    hourly = _write_legacy(tmp_path / "cur" / "hourly-report-1.csv", rows, id_prefix="h")
    with pytest.raises(InputError) as got:
        ingest(str(tmp_path / "cur"), con=con)
    text = str(got.value)
    assert "\n" not in text and daily.name in text and hourly.name in text
    assert "two reports" in text
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0


def test_parts_of_one_legacy_report_are_still_summed(tmp_path, con):
    rows = _rows(SP_RI)
    _write_legacy(tmp_path / "cur" / "daily-report-1.csv", rows[:7])
    _write_legacy(tmp_path / "cur" / "daily-report-2.csv", rows[7:])
    ingest(str(tmp_path / "cur"), con=con)
    assert _totals(con)[1] == BILLED


def test_reports_of_different_usage_accounts_of_one_payer_are_added(tmp_path, con):
    """A member account's own report and another member's: disjoint charges of one payer's month, both kept."""
    rows = _rows(SP_RI)
    _write_legacy(tmp_path / "cur" / "team-a-1.csv", rows, account="333333333333")
    _write_legacy(tmp_path / "cur" / "team-b-1.csv", rows, id_prefix="b", account="444444444444")
    ingest(str(tmp_path / "cur"), con=con)
    assert _totals(con)[1] == 2 * BILLED


def test_member_reports_are_added_when_only_one_has_rows_without_a_usage_account(tmp_path, con):
    """Regression review 14 (R4): member B's report had a credit with a blank usage account, and the two members'
    reports were refused as 'both hold its charges without a usage account' -- only one did."""
    rows = _rows(SP_RI)
    _write_legacy(tmp_path / "cur" / "team-a-1.csv", rows, account="333333333333")
    b = [dict(r) for r in rows]
    _write_legacy(tmp_path / "cur" / "team-b-1.csv", b, id_prefix="b", account="444444444444")
    text = (tmp_path / "cur" / "team-b-1.csv").read_text().splitlines()
    head = text[0].split(",")
    col = head.index("lineItem/UsageAccountId")
    last = text[-1].split(",")
    last[col] = ""
    (tmp_path / "cur" / "team-b-1.csv").write_text("\n".join(text[:-1] + [",".join(last)]) + "\n")
    ingest(str(tmp_path / "cur"), con=con)
    assert _totals(con)[1] == 2 * BILLED


def _cur2_export(root: Path, export: str, table) -> None:
    data = root / export / "data" / "BILLING_PERIOD=2026-01"
    data.mkdir(parents=True)
    pq.write_table(table, data / f"{export}-00001.snappy.parquet")
    meta = root / export / "metadata" / "BILLING_PERIOD=2026-01"
    meta.mkdir(parents=True)
    (meta / f"{export}-Manifest.json").write_text(json.dumps({
        "exportName": export, "billingPeriod": {"start": "2026-01-01T00:00:00.000Z"}, "dataFiles": [
            f"s3://bucket/exports/{export}/data/BILLING_PERIOD=2026-01/{export}-00001.snappy.parquet"]}))


def test_two_cur2_exports_of_one_month_in_one_call_are_refused_not_summed(tmp_path, con):
    rows = _rows(SP_RI)
    _cur2_export(tmp_path / "bucket", "cur-daily", cur2_table(rows))
    hourly = [dict(r, **{"identity/LineItemId": "h" + r["identity/LineItemId"]}) for r in rows]
    _cur2_export(tmp_path / "bucket", "cur-hourly", cur2_table(hourly))
    with pytest.raises(InputError) as got:
        ingest(str(tmp_path / "bucket"), con=con)
    text = str(got.value)
    assert "\n" not in text and "cur-daily" in text and "cur-hourly" in text
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0


# ---- 3. CUR 2.0 maps whose values are not text (discount is map<string,double>) ------------------------------------
def test_cur2_discount_map_of_doubles_loads(tmp_path, con):
    import pyarrow as pa
    rows = _rows(SP_RI)
    table = cur2_table(rows)
    i = table.column_names.index("discount")
    disc = [[("total_discount", -1.5), ("edp_discount", -1.5)] if r["lineItem/LineItemType"] == "Usage" else []
            for r in rows]
    table = table.set_column(i, "discount", pa.array(disc, type=pa.map_(pa.string(), pa.float64())))
    pq.write_table(table, tmp_path / "cur2-00001.snappy.parquet")
    ingest(str(tmp_path / "cur2-00001.snappy.parquet"), con=con)
    assert _totals(con)[1] == BILLED
    got = con.execute("SELECT x_Discounts FROM focus WHERE x_Discounts IS NOT NULL LIMIT 1").fetchone()[0]
    assert json.loads(got) == {"total_discount": "-1.5", "edp_discount": "-1.5"}


# ---- 7a. a CUR 2.0 CSV map cell that is not JSON -----------------------------------------------------------------
def test_cur2_csv_map_cell_that_is_not_json_names_file_row_and_column(tmp_path, con):
    rows = _rows(SP_RI)
    table = cur2_table(rows)
    cols = table.column_names
    out = tmp_path / "cur2-00001.csv"
    data = table.to_pylist()
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for n, r in enumerate(data):
            cells = []
            for c in cols:
                v = r[c]
                if isinstance(v, list):
                    v = json.dumps(dict(v))
                    if c == "product" and n == 2:
                        v = "{product_name=Amazon Elastic Compute Cloud, region=us-east-1}"
                cells.append("" if v is None else v)
            w.writerow(cells)
    with pytest.raises(InputError) as got:
        ingest(str(out), con=con)
    text = str(got.value)
    assert "\n" not in text and str(out) in text and "row 3" in text and "'product'" in text and "JSON" in text


# ---- 2. Azure actual and amortized datasets in separate calls ------------------------------------------------------
AZ_HEAD = "BillingAccountId,SubscriptionId,Date,MeterCategory,MeterId,Quantity,Cost,BillingCurrency,ChargeType," \
          "PricingModel,ReservationId\n"
AZ_ACTUAL = AZ_HEAD + ("A1,sub-1,09/03/2023,Virtual Machines,m1,1,10,USD,Usage,OnDemand,\n"
                       "A1,sub-1,09/04/2023,Virtual Machines,m2,24,0,USD,Usage,Reservation,r1\n"
                       "A1,sub-1,09/04/2023,Virtual Machines,m3,1,30,USD,Purchase,Reservation,r1\n")
AZ_AMORTIZED = AZ_HEAD + ("A1,sub-1,09/03/2023,Virtual Machines,m1,1,10,USD,Usage,OnDemand,\n"
                          "A1,sub-1,09/04/2023,Virtual Machines,m2,24,1,USD,Usage,Reservation,r1\n"
                          "A1,sub-1,09/04/2023,Virtual Machines,m4,1,0.5,USD,UnusedReservation,Reservation,r1\n")


def _azure_pair(tmp_path: Path) -> tuple[Path, Path]:
    for name, text in (("actual", AZ_ACTUAL), ("amortized", AZ_AMORTIZED)):
        (tmp_path / "az" / name).mkdir(parents=True)
        (tmp_path / "az" / name / "export.csv").write_text(text)
    return tmp_path / "az" / "actual" / "export.csv", tmp_path / "az" / "amortized" / "export.csv"


def _money(con) -> tuple:
    return tuple(str(v) for v in con.execute(
        "SELECT count(*), sum(BilledCost)::DECIMAL(18,2), sum(EffectiveCost)::DECIMAL(18,2) FROM focus").fetchone())


def test_azure_datasets_in_one_call_are_paired(tmp_path, con):
    _azure_pair(tmp_path)
    ingest(str(tmp_path / "az"), con=con)
    assert _money(con) == ("4", "40.00", "11.50")


@pytest.mark.parametrize("first", ["actual", "amortized"])
def test_azure_other_dataset_in_a_later_call_is_refused_not_replaced(tmp_path, con, first):
    actual, amortized = _azure_pair(tmp_path)
    a, b = (actual, amortized) if first == "actual" else (amortized, actual)
    ingest(str(a), con=con)
    before = _money(con)
    with pytest.raises(InputError) as got:
        ingest(str(b), con=con)
    text = str(got.value)
    assert "\n" not in text and str(b) in text and "together" in text and "actual" in text and "amortized" in text
    assert _money(con) == before
    res = ingest(str(b), con=con, replace=True)  # --replace keeps only this dataset, and says so
    assert res.replaced_rows == 3 and any("dataset" in n for n in res.notes)


def test_azure_actual_over_actual_still_replaces(tmp_path, con):
    actual, _ = _azure_pair(tmp_path)
    ingest(str(actual), con=con)
    res = ingest(str(actual), con=con)
    assert res.replaced_rows == 3 and _money(con) == ("3", "40.00", "40.00")


def test_azure_later_single_dataset_over_a_stored_pair_is_refused(tmp_path, con):
    actual, _ = _azure_pair(tmp_path)
    ingest(str(tmp_path / "az"), con=con)
    with pytest.raises(InputError, match="together"):
        ingest(str(actual), con=con)
    assert _money(con) == ("4", "40.00", "11.50")


# ---- OCI: blank currency / usage start (5, 7d), usage reports beside cost reports (7b), x_ pass-through (8) ------
OCI_HEAD = ["lineItem/referenceNo", "lineItem/tenantId", "lineItem/intervalUsageStart", "lineItem/intervalUsageEnd",
            "product/service", "product/compartmentId", "product/compartmentName", "product/region",
            "product/resourceId", "usage/billedQuantity", "usage/billedQuantityOverage", "cost/myCost",
            "cost/myCostOverage", "cost/unitPrice", "cost/unitPriceOverage", "cost/overageFlag",
            "cost/currencyCode", "cost/skuUnitDescription", "cost/productSku", "product/Description",
            "cost/attributedCost"]
TENANCY = "ocid1.tenancy.oc1..aaaa"


def _oci_row(n: int, cost: str = "1.25", currency: str = "USD", start: str = "2023-11-13T06:00Z") -> list[str]:
    return [f"DC{n:05d}", TENANCY, start, "2023-11-13T07:00:00Z", "COMPUTE", TENANCY, "root", "us-ashburn-1",
            f"ocid1.instance.{n}", "2", "0.5", cost, "0.25", "0.625", "0.5", "Y" if n % 2 else "", currency,
            "OCPU Per Hour", "B91962", "Standard - E4 - OCPU", "9.99"]


def _oci_file(path: Path, rows: list[list[str]], head: list[str] = OCI_HEAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        w.writerows(rows)
    return path


def test_oci_blank_currency_is_refused_naming_file_row_and_column(tmp_path, con):
    f = _oci_file(tmp_path / "0001000000000105.csv",
                  [_oci_row(1), _oci_row(2), _oci_row(3, cost="5000.00", currency=""), _oci_row(4)])
    with pytest.raises(InputError) as got:
        ingest(str(f), con=con)
    text = str(got.value)
    assert "\n" not in text and str(f) in text and "row 3" in text and "cost/currencyCode" in text, text
    assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0


def test_oci_blank_usage_start_names_the_source_column(tmp_path, con):
    f = _oci_file(tmp_path / "0001000000000107.csv", [_oci_row(1), _oci_row(2, start="")])
    with pytest.raises(InputError) as got:
        ingest(str(f), con=con)
    text = str(got.value)
    assert "row 2" in text and "lineItem/intervalUsageStart" in text and "BillingPeriodStart" not in text, text


def test_oci_usage_reports_beside_cost_reports_are_skipped_and_listed(tmp_path, con):
    cost = _oci_file(tmp_path / "reports" / "cost-csv" / "0001000000000201.csv", [_oci_row(1), _oci_row(2)])
    usage_head = [c for c in OCI_HEAD if not c.startswith("cost/")] + ["usage/consumedQuantity"]
    keep = [i for i, c in enumerate(OCI_HEAD) if not c.startswith("cost/")]
    usage = _oci_file(tmp_path / "reports" / "usage-csv" / "0001000000000201.csv",
                      [[_oci_row(n)[i] for i in keep] + ["2"] for n in (1, 2)], usage_head)
    res = ingest(str(tmp_path / "reports"), con=con)
    assert res.files == [str(cost)] and res.rows == 2
    reasons = {s["path"]: s["reason"] for s in res.skipped}
    assert "usage report" in reasons[str(usage)]
    with pytest.raises(InputError, match="usage report.*cost-csv"):  # named on its own: told where the costs are
        ingest(str(usage), con=con)


def test_oci_overage_and_unknown_columns_pass_through_as_x_columns(tmp_path, con):
    f = _oci_file(tmp_path / "0001000000000101.csv", [_oci_row(1), _oci_row(2)])
    ingest(str(f), con=con)
    row = con.execute("SELECT BilledCost, x_cost_myCostOverage, x_usage_billedQuantityOverage, "
                      "x_cost_unitPriceOverage, x_cost_overageFlag, x_cost_attributedCost FROM focus "
                      "ORDER BY x_LineItemId LIMIT 1").fetchone()
    assert [str(v) for v in row] == ["1.250000000000", "0.25", "0.5", "0.5", "Y", "9.99"]


# ---- Azure dates: DD/MM with every day <= 12 (6), ISO with 7 fractional digits (7c) ------------------------------
AZ_DATE_HEAD = "SubscriptionId,Date,MeterCategory,MeterName,Cost,BillingCurrency,ChargeType,PricingModel"


def _az_dates(tmp_path: Path, name: str, dates: list[str], period: tuple[str, str] | None = None) -> Path:
    head = AZ_DATE_HEAD + (",BillingPeriodStartDate,BillingPeriodEndDate" if period else "")
    lines = [head] + [f"sub-1,{d},Virtual Machines,D2,{i + 1},EUR,Usage,OnDemand" + (f",{period[0]},{period[1]}"
                                                                                     if period else "")
                      for i, d in enumerate(dates)]
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _days(con) -> list[str]:
    return [str(d)[:10] for (d,) in con.execute("SELECT ChargePeriodStart FROM focus ORDER BY 1").fetchall()]


def test_azure_ddmm_dates_all_le_12_follow_the_billing_period(tmp_path, con):
    f = _az_dates(tmp_path, "a.csv", ["12/08/2023", "01/08/2023", "02/08/2023", "03/08/2023"],
                  ("01/08/2023", "31/08/2023"))
    ingest(str(f), con=con)
    assert _days(con) == ["2023-08-01", "2023-08-02", "2023-08-03", "2023-08-12"]
    assert con.execute("SELECT DISTINCT strftime(BillingPeriodStart, '%Y-%m') FROM focus").fetchall() == [("2023-08",)]


def test_azure_dates_that_read_both_ways_without_other_evidence_are_mmdd(tmp_path, con):
    # regression review 14: "one month under DD/MM, several under MM/DD" was a guess; Microsoft writes MM/DD
    f = _az_dates(tmp_path, "a.csv", ["12/08/2023", "01/08/2023", "02/08/2023", "03/08/2023"])
    ingest(str(f), con=con)
    assert _days(con) == ["2023-01-08", "2023-02-08", "2023-03-08", "2023-12-08"]


def test_azure_monthly_charges_on_one_day_stay_in_their_months(tmp_path, con):
    # regression review 14 (R1): a quarter of monthly charges on the 5th, no billing period columns, was read day
    # first and moved into May
    f = _az_dates(tmp_path, "a.csv", ["3/5/2024", "4/5/2024"])
    ingest(str(f), con=con)
    assert _days(con) == ["2024-03-05", "2024-04-05"]


def test_azure_a_period_end_that_reads_only_mmdd_decides(tmp_path, con):
    # regression review 14 (R2): the corpus Enterprise.csv, Date 02/02/2021 in period 05/01/2021..05/31/2021, was
    # read day first (period 2021-01-05..02-05) because 05/31 does not read day first; it is the evidence
    f = _az_dates(tmp_path, "a.csv", ["02/02/2021"], ("05/01/2021", "05/31/2021"))
    ingest(str(f), con=con)
    assert _days(con) == ["2021-02-02"]
    assert con.execute("SELECT DISTINCT strftime(BillingPeriodStart, '%Y-%m') FROM focus").fetchall() == [("2021-05",)]


def test_azure_mmdd_dates_stay_mmdd(tmp_path, con):
    f = _az_dates(tmp_path, "a.csv", ["08/12/2023", "08/01/2023", "08/02/2023"], ("08/01/2023", "08/31/2023"))
    ingest(str(f), con=con)
    assert _days(con) == ["2023-08-01", "2023-08-02", "2023-08-12"]


def test_azure_ddmm_dates_with_a_day_over_12_load(tmp_path, con):
    f = _az_dates(tmp_path, "a.csv", ["13/08/2023", "01/08/2023"])
    ingest(str(f), con=con)
    assert _days(con) == ["2023-08-01", "2023-08-13"]


def test_azure_firsts_of_several_months_load_as_microsoft_writes_them(tmp_path, con):
    # regression review 14 (R3): monthly fees on the 1st were refused as undecidable; they are MM/DD, and a late row
    # outside its billing period is a quality note, not a refusal
    f = _az_dates(tmp_path, "a.csv", ["1/1/2024", "2/1/2024", "3/1/2024"])
    ingest(str(f), con=con)
    assert _days(con) == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_azure_iso_dates_with_seven_fractional_digits_load(tmp_path, con):
    f = _az_dates(tmp_path, "a.csv", ["2023-08-01T00:00:00.0000000Z", "2023-08-02T00:00:00.0000000Z"],
                  ("2023-08-01T00:00:00.0000000Z", "2023-08-31T00:00:00.0000000Z"))
    ingest(str(f), con=con)
    assert _days(con) == ["2023-08-01", "2023-08-02"]


# ---- 4. CUR 2.0 executions of one period: chosen by evidence, never by file time ---------------------------------
def _cur2_execution(root: Path, execution: str, rows: list[dict]) -> Path:
    data = root / "cur2" / "data" / "BILLING_PERIOD=2026-01" / execution
    data.mkdir(parents=True)
    pq.write_table(cur2_table(rows), data / "cur2-00001.snappy.parquet")
    meta = root / "cur2" / "metadata" / "BILLING_PERIOD=2026-01" / execution
    meta.mkdir(parents=True)
    manifest = meta / "cur2-Manifest.json"
    manifest.write_text(json.dumps({"executionId": execution, "exportName": "cur2", "dataFiles": [
        f"s3://b/p/cur2/data/BILLING_PERIOD=2026-01/{execution}/cur2-00001.snappy.parquet"]}))
    return manifest


def _month_to_date(later_days: bool) -> list[dict]:
    rows = _rows(SP_RI)
    if not later_days:
        return rows
    out = []
    for i, r in enumerate(rows):  # the full month: half of the charges fall on a later day
        if i % 2:
            r = dict(r, **{"lineItem/UsageStartDate": "2026-01-20T00:00:00Z", "lineItem/UsageEndDate":
                           "2026-01-20T01:00:00Z"})
        out.append(r)
    return out


def _touch_later(path: Path) -> None:
    import os
    later = path.stat().st_mtime + 3600
    os.utime(path, (later, later))


def test_cur2_execution_chosen_by_its_time_stamp_not_file_time(tmp_path, con):
    old = _cur2_execution(tmp_path, "20260111T020000Z-aaaa", _month_to_date(False))
    _cur2_execution(tmp_path, "20260201T020000Z-bbbb", _month_to_date(True))
    _touch_later(old)  # a copy that did not keep file times
    res = ingest(str(tmp_path / "cur2"), con=con)
    assert all("20260201T020000Z-bbbb" in f for f in res.files)
    assert con.execute("SELECT count(DISTINCT CAST(ChargePeriodStart AS DATE)) FROM focus").fetchone()[0] == 2


def test_cur2_execution_without_time_stamp_chosen_by_the_usage_days_it_covers(tmp_path, con):
    old = _cur2_execution(tmp_path, "3f1c0e7a-aaaa", _month_to_date(False))
    _cur2_execution(tmp_path, "0b2d9e11-bbbb", _month_to_date(True))
    _touch_later(old)
    res = ingest(str(tmp_path / "cur2"), con=con)
    assert all("0b2d9e11-bbbb" in f for f in res.files)


def test_cur2_executions_told_apart_only_by_file_time_are_refused(tmp_path, con):
    old = _cur2_execution(tmp_path, "3f1c0e7a-aaaa", _month_to_date(False))
    _cur2_execution(tmp_path, "0b2d9e11-bbbb", _month_to_date(False))
    _touch_later(old)
    with pytest.raises(InputError) as got:
        ingest(str(tmp_path / "cur2"), con=con)
    text = str(got.value)
    assert "\n" not in text and "3f1c0e7a-aaaa" in text and "0b2d9e11-bbbb" in text, text
