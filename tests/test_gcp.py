"""GCP Cloud Billing export -> FOCUS: net cost arithmetic by hand, every export form, corpus files, bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.errors import InputError
from finops_kit.ingest import ingest

FIX = Path(__file__).parent / "fixtures" / "gcp"
JSONL = FIX / "credits_export.jsonl"
FLAT = FIX / "credits_export_flattened.csv"

# Hand computation for credits_export.jsonl (7 export rows; 0, 1 or several credits each):
#   cost    = 10.5 + 20 + 5 + 7.123456789012 + 3 + 1.23 + 4                      = 50.853456789012
#   credits = -2.25 + (-0.5 - 1.25 - 0.1) - 0.000000000012 - 3 - 0.4             = -7.500000000012
#   net     = 50.853456789012 - 7.500000000012                                    = 43.353456789000
COST, CREDITS, NET = Decimal("50.853456789012"), Decimal("-7.500000000012"), Decimal("43.353456789000")


def _ingest(path, con):
    return ingest([str(path)], con=con, progress=False)


@pytest.mark.parametrize("form", ["jsonl", "jsonl.gz", "parquet", "flattened-csv"])
def test_net_cost_by_hand_in_every_form(form, tmp_path):
    con = fk.connect(":memory:")
    if form == "jsonl":
        path = JSONL
    elif form == "jsonl.gz":
        import gzip

        path = tmp_path / "export.jsonl.gz"
        path.write_bytes(gzip.compress(JSONL.read_bytes()))
    elif form == "parquet":  # BigQuery's nested export: REPEATED RECORD columns stay nested in parquet
        path = tmp_path / "export.parquet"
        con.execute(f"COPY (SELECT * FROM read_json('{JSONL}', format='newline_delimited')) TO '{path}' (FORMAT parquet)")
    else:
        path = FLAT
    res = _ingest(path, con)
    assert res.source_format == "gcp"
    (rec,) = res.reconciliation
    assert rec["ok"] and rec["source_billed"] == NET and rec["source_rows"] == 7
    got = con.execute("""SELECT sum(BilledCost), sum(EffectiveCost), sum(BilledCost) FILTER (ChargeCategory <> 'Credit'),
                                sum(BilledCost) FILTER (ChargeCategory = 'Credit'), count(*) FILTER (ChargeCategory = 'Credit'),
                                count(*) FILTER (ChargeCategory <> 'Credit') FROM focus""").fetchone()
    # cost never repeated (7 charge rows = 7 export rows, incl. the ones without credits), one Credit row per credit
    assert got == (NET, NET, COST, CREDITS, 7, 7)


def test_credit_rows_by_type_and_row_semantics():
    con = fk.connect(":memory:")
    _ingest(JSONL, con)
    by_type = dict(con.execute("SELECT x_CreditType, sum(BilledCost) FROM focus WHERE ChargeCategory = 'Credit' "
                               "GROUP BY 1").fetchall())
    assert by_type == {
        "Sustained use discount": Decimal("-2.75"),
        "Committed use discount (resource-based)": Decimal("-1.25"),
        "Committed use discount (spend-based fee offset)": Decimal("-3"),
        "Promotion": Decimal("-0.1"),
        "Free tier": Decimal("-0.000000000012"),
        "Other credit": Decimal("-0.4"),  # an unknown type is kept, never dropped
    }

    def one(sku):
        return con.execute(
            "SELECT ChargeCategory, PricingCategory, CommitmentDiscountStatus, x_InstanceType, x_AiWorkload, Tags, "
            "ChargeFrequency, BillingPeriodStart, ListCost, ContractedCost FROM focus WHERE x_UsageType = ? "
            "AND ChargeCategory <> 'Credit'", [sku]).fetchone()

    a2 = one("A2 Instance Core running in Americas")
    assert a2[3] == "a2-highgpu-1g" and a2[4] == "Accelerated compute"
    # resource labels as they are, project labels under the 'project:' prefix; the apostrophe survives (UDF path)
    assert json.loads(a2[5]) == {"team": "ml", "model": "it's-llama", "project:env": "prod", "project:team": "research"}
    assert str(a2[7]) == "2026-10-01 00:00:00"
    spot = one("Spot Preemptible Nvidia H100 80GB GPU running in Americas")
    assert spot[1] == "Dynamic" and spot[3] == "nvidia-h100-80gb" and spot[4] == "Accelerated compute"
    n2 = one("N2 Instance Core running in Americas")
    assert n2[1] == "Committed" and n2[2] == "Used"
    fee = one("Commitment - dollar based v1: GCE for 1 year")
    assert fee[0] == "Purchase" and fee[6] == "Recurring"
    tax = one("Tax: US sales tax")
    assert tax[0] == "Tax" and tax[1] is None
    gpu = one("Nvidia Tesla A100 GPU running in Americas")
    assert gpu[4] == "Accelerated compute" and gpu[1] == "Standard"
    credit_cols = con.execute("SELECT DISTINCT ListCost, ContractedCost FROM focus WHERE ChargeCategory = 'Credit'"
                              ).fetchall()
    assert credit_cols == [(Decimal(0), Decimal(0))]
    svc = dict(con.execute("SELECT ServiceName, ServiceCategory || '/' || ServiceSubcategory FROM focus").fetchall())
    assert svc["Compute Engine"] == "Compute/Virtual Machines"
    assert svc["Vertex AI"] == "AI and Machine Learning/AI Platforms"


def test_reingest_same_account_month_replaces():
    con = fk.connect(":memory:")
    _ingest(JSONL, con)
    res = _ingest(FLAT, con)
    assert res.replaced_rows == 14
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (14, NET)


def test_corpus_files_load_and_reconcile(shared):
    files = sorted((shared / "corpus" / "raw" / "gcp").glob("*.csv"))
    assert len(files) >= 4
    for f in files:
        con = fk.connect(":memory:")
        res = _ingest(f, con)
        assert res.source_format == "gcp" and all(r["ok"] for r in res.reconciliation), f
        src = con.execute(f"""SELECT count(*) FROM read_csv('{f}', all_varchar=true)""").fetchone()[0]
        assert sum(r["source_rows"] for r in res.reconciliation) == src
    # the promotion credits of the 2020-11 file net the Security Command Center cost to zero, row by row
    con = fk.connect(":memory:")
    _ingest(shared / "corpus" / "raw" / "gcp" / "koku__evidence-2020-11-16.csv", con)
    net = con.execute("SELECT sum(BilledCost) FROM focus WHERE ServiceName = 'Security Command Center'").fetchone()[0]
    assert net == 0
    assert con.execute("SELECT count(*) FROM focus WHERE ChargeCategory = 'Credit'").fetchone()[0] == 38


def _bad_copy(tmp_path, replace_from, replace_to, name="bad.csv"):
    text = FLAT.read_text()
    assert replace_from in text
    p = tmp_path / name
    p.write_text(text.replace(replace_from, replace_to, 1))
    return p


@pytest.mark.parametrize("old,new,column,row", [
    ("'amount': -2.25", "'amount': -2.25,, oops", "credits", 2),
    ("[{'key': 'team', 'value': 'ml'}]", "[{'key': 'team', 'value': 'ml'", "labels", 2),
    ("202610,tax", "2026-10,tax", "invoice.month", 6),
    (",10.5,USD", ",ten,USD", "cost", 1),
    ("202610,tax", "202610,surcharge", "cost_type", 6),
])
def test_bad_input_one_line_error_and_warehouse_unchanged(tmp_path, old, new, column, row):
    wh = str(tmp_path / "wh.duckdb")
    ingest([str(JSONL)], warehouse=wh, progress=False)
    bad = _bad_copy(tmp_path, old, new)
    with pytest.raises(InputError) as err:
        ingest([str(bad)], warehouse=wh, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and f"row {row}" in msg and f"column '{column}'" in msg, msg
    con = fk.connect(wh, read_only=True)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (14, NET)
    assert con.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 1
    con.close()


def test_missing_invoice_month_column_is_named(tmp_path):
    p = tmp_path / "no_invoice.csv"
    lines = FLAT.read_text().splitlines()
    p.write_text("\n".join(ln.rsplit(",", 2)[0] + "," + ln.rsplit(",", 1)[1] for ln in lines) + "\n")
    with pytest.raises(InputError, match="missing required column.*'invoice.month'"):
        ingest([str(p)], warehouse=":memory:", progress=False)


def test_non_iso_usage_time_is_refused_not_misread(tmp_path):
    """DuckDB alone reads '4/1/25' as the year 4; GCP times go through the same ISO 8601 guard as FOCUS files."""
    import json

    import finops_kit as fk

    row = json.loads(JSONL.read_text(encoding="utf-8").splitlines()[0])
    row["usage_start_time"] = "4/1/25 00:00"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    wh = str(tmp_path / "wh.duckdb")
    with pytest.raises(fk.InputError, match=r"bad\.jsonl.*not an ISO 8601 date/time: 4/1/25 00:00"):
        fk.ingest(str(bad), warehouse=wh)
    assert not Path(wh).exists()  # nothing written: not even the new, empty warehouse


def _export_row(sku: str, cost: str, *, amount: float, pricing_amount: str, pricing_unit: str, credits: list,
                subscription: str | None = None, day: str = "2026-10-05") -> dict:
    row = {"billing_account_id": "01ABCD-234567-89EFAB",
           "project": {"id": "ml-train-prod", "number": "123456789", "name": "ML training", "labels": []},
           "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": None},
           "usage_start_time": f"{day} 00:00:00 UTC", "usage_end_time": f"{day} 00:00:00 UTC".replace(
               day, f"{day[:8]}{int(day[8:]) + 1:02d}"),
           "export_time": f"{day} 06:00:00 UTC", "currency": "USD", "currency_conversion_rate": 1.0,
           "invoice": {"month": day[:7].replace("-", "")}, "cost_type": "regular",
           "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
           "sku": {"id": "SKU-" + sku[:6].upper(), "description": sku}, "cost": cost, "cost_at_list": cost,
           "labels": [], "system_labels": [],
           "usage": {"amount": amount, "unit": "seconds", "amount_in_pricing_units": pricing_amount,
                     "pricing_unit": pricing_unit}, "credits": credits}
    if subscription:
        row["subscription"] = {"instance_id": subscription}
    return row


def test_resource_based_cud_fee_carries_its_commitment_and_unused_part(tmp_path):
    """A resource-based CUD of 10 A100 GPU-hours a day at 2.00 (fee 20.00, subscription.instance_id on the fee row)
    covers 8 GPU-hours of usage priced 3.00 on demand (credit -24.00). By hand: applied = 20.00 x 8 / 10 = 16.00,
    unused = fee - applied = 4.00 (2 hours); the credit's EffectiveCost = -24.00 + 16.00 = -8.00 and the fee's
    Purchase row 0. The credit and the covered usage carry the fee's commitment id; totals stay 20.00."""
    sub = "6f3a1c9e-2b7d-4e58-9a14-0c8d5e2f7b31"
    cud = {"name": "Committed use discount: A100 GPU", "amount": "-24.0", "full_name": "Committed use discount",
           "id": "CommittedUsageDiscount: A100 GPU", "type": "COMMITTED_USAGE_DISCOUNT"}
    rows = [_export_row("Commitment v1: A100 GPU in Americas for 1 Year", "20.0", amount=36000.0,
                        pricing_amount="10", pricing_unit="hour", credits=[], subscription=sub),
            _export_row("Nvidia Tesla A100 GPU running in Americas", "24.0", amount=28800.0, pricing_amount="8",
                        pricing_unit="hour", credits=[cud])]
    path = tmp_path / "cud.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    con = fk.connect(":memory:")
    _ingest(path, con)
    got = con.execute("""
        SELECT ChargeCategory, CommitmentDiscountStatus, CommitmentDiscountId, BilledCost, EffectiveCost,
               CommitmentDiscountQuantity, CommitmentDiscountUnit
        FROM focus ORDER BY ChargeCategory, CommitmentDiscountStatus NULLS FIRST""").fetchall()
    by = {(r[0], r[1]): r[2:] for r in got}
    assert by[("Purchase", None)] == (sub, Decimal("20"), Decimal("0"), Decimal("10"), "Hours")
    assert by[("Credit", None)][:3] == (sub, Decimal("-24"), Decimal("-8"))
    assert by[("Usage", "Used")][:3] == (sub, Decimal("24"), Decimal("24"))
    assert by[("Usage", "Unused")][:3] == (sub, Decimal("0"), Decimal("4"))
    assert by[("Usage", "Unused")][3:] == (Decimal("2"), "Hours")
    assert con.execute("SELECT sum(BilledCost), sum(EffectiveCost) FROM focus").fetchall()[0] == (Decimal("20"),
                                                                                                  Decimal("20"))
    import finops_kit.commitments as cm
    from finops_kit import scope

    sc = scope.resolve(con, str(Path(__file__).resolve().parents[1] / "finops.yaml"))
    inv = cm.inventory(con, sc).set_index("commitment_id").loc[sub]
    assert (inv["used_cost"], inv["unused_cost"]) == (Decimal("16"), Decimal("4"))
    assert inv["utilization"] == pytest.approx(0.8) and bool(inv["unused_observable"])


def test_cud_renamed_mid_month_names_its_credits_by_the_latest_fee_whatever_the_row_order(tmp_path):
    """One resource-based CUD whose fee SKU is described one way on the 4th and another on the 5th: the credits it
    is amortized into carry one CommitmentDiscountName, the latest fee's, from either export order (any_value of
    the fee names followed the scan: the old name from one order, the new from the other)."""
    sub = "6f3a1c9e-2b7d-4e58-9a14-0c8d5e2f7b31"
    old, new = "Commitment v1: A100 GPU in Americas for 1 Year", "Commitment v1: Nvidia A100 GPU in Americas for 1 Year"
    cud = {"name": "Committed use discount: A100 GPU", "amount": "-24.0", "full_name": "Committed use discount",
           "id": "CommittedUsageDiscount: A100 GPU", "type": "COMMITTED_USAGE_DISCOUNT"}
    rows = [_export_row(old, "20.0", amount=36000.0, pricing_amount="10", pricing_unit="hour", credits=[],
                        subscription=sub, day="2026-10-04"),
            _export_row(new, "20.0", amount=36000.0, pricing_amount="10", pricing_unit="hour", credits=[],
                        subscription=sub, day="2026-10-05"),
            _export_row("Nvidia Tesla A100 GPU running in Americas", "24.0", amount=28800.0, pricing_amount="8",
                        pricing_unit="hour", credits=[cud], day="2026-10-05")]
    names = []
    for i, ordered in enumerate((rows, rows[::-1])):
        path = tmp_path / f"cud{i}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in ordered) + "\n", encoding="utf-8")
        con = fk.connect(":memory:")
        con.execute("SET threads = 1")  # one thread reads and maps in file order: the two orders really differ
        _ingest(path, con)
        names.append(con.execute("SELECT DISTINCT CommitmentDiscountName FROM focus "
                                 "WHERE ChargeCategory = 'Credit'").fetchall())
        con.close()
    assert names[0] == names[1] == [(new,)]
