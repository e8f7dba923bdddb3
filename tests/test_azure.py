"""Azure Cost Management exports -> FOCUS: every corpus file, the EA actual+amortized pair, header variants, bad input."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.errors import InputError
from finops_kit.ingest import ingest
from finops_kit.sources.azure import canonical_header

RAW = ("corpus", "raw", "azure")
# file -> None (loads and reconciles) or the error it must give, and why
EXPECTED_ERRORS = {
    # header-only demo: one row whose only value is the date; a cost-less row cannot become a FOCUS charge
    "BOM.csv": "row 1, column 'PreTaxCost': cannot use an empty value; expected a number",
    # reduced opencost fixtures without any currency column: rejected unless the user states the currency
    "values_MissingBrackets.csv": "no currency column",
    "values_Template.csv": "no currency column",
    "values_VirtualMachine.csv": "no currency column",
}


def _csv_total(path: Path, cost_col: str) -> Decimal:
    """The file's own cost total, read with Python's csv module (independent of the DuckDB reader); each row is
    rounded to the warehouse's 12 decimals first, as DECIMAL(38,12) stores it."""
    import csv
    from decimal import ROUND_HALF_UP

    q = Decimal("1e-12")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return sum((Decimal(r[cost_col]).quantize(q, ROUND_HALF_UP) for r in csv.DictReader(fh) if r[cost_col]),
                   Decimal(0))


def _azure_files(shared: Path) -> list[Path]:
    base = shared.joinpath(*RAW)
    files = sorted(base.glob("*.csv")) + sorted((base / "opencost_headersets").glob("*.csv"))
    files += sorted((shared / "corpus" / "focus" / "provider-native" / "azure").glob("*.csv"))
    return files


def test_every_corpus_file_loads_and_reconciles_or_says_why(shared, monkeypatch, tmp_path):
    files = _azure_files(shared)
    assert len(files) >= 19
    for f in files:
        con = fk.connect(":memory:")
        if f.name in EXPECTED_ERRORS:
            with pytest.raises(InputError) as err:
                ingest([str(f)], con=con, progress=False)
            assert EXPECTED_ERRORS[f.name] in str(err.value) and "\n" not in str(err.value), str(err.value)
            assert con.execute("SELECT count(*) FROM focus").fetchone()[0] == 0
            continue
        res = ingest([str(f)], con=con, progress=False)
        assert res.source_format == "azure", f
        assert res.reconciliation and all(r["ok"] for r in res.reconciliation), f
        # single dataset: every row is one FOCUS row, BilledCost = the file's own cost total
        n = con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone()
        assert n[0] == sum(r["source_rows"] for r in res.reconciliation)
    # the currency-less fixtures load once the user states their currency (never a silent default)
    cfg = tmp_path / "finops.yaml"
    cfg.write_text("currency:\n  assume_source_currency: USD\n")
    monkeypatch.setenv("FINOPS_CONFIG", str(cfg))
    base = shared.joinpath(*RAW) / "opencost_headersets"
    for name, total in (("values_VirtualMachine.csv", Decimal(4)), ("values_MissingBrackets.csv", Decimal(4))):
        con = fk.connect(":memory:")
        res = ingest([str(base / name)], con=con, progress=False)
        assert all(r["ok"] for r in res.reconciliation)
        row = con.execute("SELECT BilledCost, BillingCurrency, Tags, x_InstanceType FROM focus").fetchone()
        assert row[0] == total and row[1] == "USD" and row[3] == "Standard_DS2_v2"
        assert json.loads(row[2])["resourceNameSuffix"] == "12345678"  # EA tags without braces parsed
    con = fk.connect(":memory:")
    ingest([str(base / "values_Template.csv")], con=con, progress=False)
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == _csv_total(base / "values_Template.csv",
                                                                                         "costinbillingcurrency")


def test_ea_actual_plus_amortized_pair(shared, tmp_path):
    base = shared.joinpath(*RAW)
    actual, amortized = base / "finops-toolkit__EA_ActualCost_Small.csv", base / "finops-toolkit__EA_AmortizedCost_Small.csv"
    folder = tmp_path / "export"
    folder.mkdir()
    for f in (actual, amortized):
        shutil.copy(f, folder / f.name)
    con = fk.connect(":memory:")
    res = ingest([str(folder)], con=con, progress=False)  # one call, files of one folder
    (rec,) = res.reconciliation
    actual_total, amortized_total = _csv_total(actual, "Cost"), _csv_total(amortized, "Cost")
    assert actual_total == Decimal("8.545007786742") and amortized_total == Decimal("16.296932136637")
    billed, effective, rows = con.execute("SELECT sum(BilledCost), sum(EffectiveCost), count(*) FROM focus").fetchone()
    assert billed == actual_total and effective == amortized_total and rec["ok"]
    # no row counted twice: 11 actual + 28 amortized source rows, 10 of them the same charges -> 29 FOCUS rows
    assert rec["source_rows"] == 39 and rows == 29
    by = {r[0]: r[1:] for r in con.execute(
        "SELECT x_AzureDataset, count(*), sum(BilledCost), sum(EffectiveCost) FROM focus GROUP BY 1").fetchall()}
    assert by["actual+amortized"] == (10, Decimal("5.295007786742"), Decimal("5.295007786742"))
    assert by["actual"] == (1, Decimal("3.25"), Decimal(0))  # the reservation purchase: billed, not amortized again
    purchase = con.execute("SELECT ChargeCategory, PricingCategory, ChargeFrequency, CommitmentDiscountType "
                           "FROM focus WHERE x_AzureDataset = 'actual'").fetchone()
    assert purchase == ("Purchase", "Committed", "Recurring", "Reservation")
    ri = con.execute("SELECT BilledCost, EffectiveCost, CommitmentDiscountStatus, CommitmentDiscountCategory "
                     "FROM focus WHERE x_PricingModel = 'Reservation' AND ChargeCategory = 'Usage'").fetchone()
    assert ri == (Decimal(0), Decimal("0.493152"), "Used", "Usage")
    dates = con.execute("SELECT min(ChargePeriodStart), max(ChargePeriodEnd), min(BillingPeriodStart), "
                        "max(BillingPeriodEnd) FROM focus").fetchone()
    assert [str(d)[:10] for d in dates] == ["2023-09-03", "2023-09-23", "2023-09-01", "2023-10-01"]  # +1 day ends
    # a re-export of only the actual dataset over the stored pair would lose the amortized view (and it holds fewer
    # usage days, 2023-09-04..21: reservation-covered usage on 09-03 and 09-22 is only in amortized): refused unless
    # --replace, which says so
    with pytest.raises(InputError, match=r"the stored rows of azure\|8611537\|2023-09 are Azure's actual and "
                                         r"amortized datasets .* and this input is the actual dataset: replacing "
                                         r"would lose the amortized view"):
        ingest([str(folder / actual.name)], con=con, progress=False)
    res2 = ingest([str(folder / actual.name)], con=con, progress=False, replace=True)
    # --replace names both what the stored pair held and this input lacks: the usage days and the subscriptions
    # whose charges are only in the amortized file
    assert res2.replaced_rows == 29 and any("7 of them are not in this input" in n for n in res2.notes)
    assert any("the warehouse holds subscription(s)" in n for n in res2.notes), res2.notes
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (11, actual_total)


def test_amortized_only_semantics(shared):
    con = fk.connect(":memory:")
    ingest([str(shared.joinpath(*RAW) / "finops-toolkit__EA_AmortizedCost_Small.csv")], con=con, progress=False)
    got = con.execute("SELECT sum(EffectiveCost), sum(BilledCost) FILTER (PricingCategory = 'Committed'), "
                      "sum(BilledCost) FROM focus").fetchone()
    # Microsoft's conversion: commitment-covered usage is billed 0 in the amortized view
    assert got == (Decimal("16.296932136637"), Decimal(0), Decimal("15.797780136169"))


def test_header_variants_map_to_one_name():
    assert canonical_header("\ufeffSubscriptionGuid") == "SubscriptionId"
    assert canonical_header("Abonnement-GUID (SubscriptionGuid)") == "SubscriptionId"
    assert canonical_header("costInBillingCurrency") == "Cost"
    assert canonical_header("PreTaxCost") == "Cost"
    # MCA pricing->billing rate: export column, and the Consumption API's modern usage detail spelling
    assert canonical_header("exchangeRatePricingToBilling") == "ExchangeRatePricingToBilling"
    assert canonical_header("exchangeRate") == "ExchangeRatePricingToBilling"
    assert canonical_header("Maßeinheit (UnitOfMeasure)") == "UnitOfMeasure"
    assert canonical_header("no such header") is None


def test_german_and_camel_rows_normalized(shared):
    base = shared.joinpath(*RAW) / "opencost_headersets"
    for name in ("German.csv", "YA.csv"):
        con = fk.connect(":memory:")
        ingest([str(base / name)], con=con, progress=False)
        row = con.execute("SELECT BilledCost, SubAccountId, ServiceName, ChargePeriodStart, PricingCategory "
                          "FROM focus").fetchone()
        assert row[0] == Decimal("0.075") and row[1] == "11111111-12ab-34dc-56ef-123456abcdef"
        assert str(row[3])[:10] == "2021-02-02" and row[4] == "Standard"


def test_azure_focus_export_routes_to_focus_source(tmp_path):
    p = tmp_path / "azure_focus.csv"
    p.write_text(
        "BilledCost,EffectiveCost,ListCost,ContractedCost,BillingAccountId,BillingAccountName,BillingCurrency,"
        "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeDescription,"
        "ProviderName,PublisherName,InvoiceIssuerName,ServiceName,ServiceCategory,PricingQuantity,PricingUnit,"
        "x_SkuMeterCategory,x_ResourceGroupName\n"
        "1.5,1.5,2,1.5,/providers/Microsoft.Billing/billingAccounts/1,Contoso,USD,2026-10-01T00:00:00Z,"
        "2026-11-01T00:00:00Z,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,Usage,NC24ads A100 v4,Microsoft,Microsoft,"
        "Microsoft,Virtual Machines,Compute,1,Hours,Virtual Machines,rg-ml\n")
    con = fk.connect(":memory:")
    res = ingest([str(p)], con=con, progress=False)
    assert res.source_format == "focus"
    assert con.execute("SELECT x_ResourceGroupName FROM focus").fetchone()[0] == "rg-ml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = ("SubscriptionId,Date,MeterCategory,MeterName,Cost,BillingCurrency,ChargeType,PricingModel,Tags\n"
        "sub-1,10/05/2026,Virtual Machines,NC24ads A100 v4,12.5,EUR,Usage,Spot,\"\"\"team\"\": \"\"ml\"\"\"\n")


def test_spot_and_brace_less_tags(tmp_path):
    con = fk.connect(":memory:")
    ingest([str(_write(tmp_path, "a.csv", GOOD))], con=con, progress=False)
    row = con.execute("SELECT PricingCategory, Tags, BillingCurrency, ChargePeriodStart, x_AiWorkload FROM focus"
                      ).fetchone()
    assert row[0] == "Dynamic" and json.loads(row[1]) == {"team": "ml"} and row[2] == "EUR"
    assert str(row[3]) == "2026-10-05 00:00:00" and row[4] == "Accelerated compute"


@pytest.mark.parametrize("files,needle", [
    ([("bad_tags.csv", GOOD.replace('"""team"": ""ml"""', '"team: ml, {"'))],
     "bad_tags.csv, row 1, column 'Tags': cannot use"),
    ([("bad_date.csv", GOOD.replace("10/05/2026", "5. Okt 2026"))], "bad_date.csv, row 1, column 'Date'"),
    ([("bad_charge.csv", GOOD.replace(",Usage,", ",Mystery,"))], "bad_charge.csv, row 1, column 'ChargeType'"),
    ([("unknown.csv", "Foo,Bar,Baz\n1,2,3\n")], "unknown.csv: unknown billing export format"),
    # mixed currencies in one source, one file without a currency column
    ([("eur.csv", GOOD), ("nocur.csv", GOOD.replace(",BillingCurrency", "").replace(",EUR", ""))],
     "nocur.csv: no currency column"),
])
def test_bad_input_one_line_and_warehouse_unchanged(tmp_path, files, needle):
    wh = str(tmp_path / "wh.duckdb")
    ingest([str(_write(tmp_path, "good.csv", GOOD.replace("sub-1", "sub-9")))], warehouse=wh, progress=False)
    paths = [str(_write(tmp_path, n, t)) for n, t in files]
    with pytest.raises(InputError) as err:
        ingest(paths, warehouse=wh, progress=False)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)
    con = fk.connect(wh, read_only=True)
    assert con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone() == (1, Decimal("12.5"))
    assert con.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 1
    con.close()


def test_commitment_discount_quantity_and_unit_from_the_ea_export(shared, tmp_path):
    """Microsoft's EA amortized + actual sample (finops-toolkit test assets): the reservation-covered row is counted
    in reservation hours, Quantity x AdditionalInfo.RINormalizationRatio (a Standard_DS2_v2 hour uses 2 hours of the
    DS1_v2 reservation), the savings-plan-covered row in commitment dollars (its amortized cost), the reservation
    purchase (a count of reservations) stays NULL. Expected values read here with the csv module."""
    import csv

    base = shared.joinpath(*RAW)
    files = [base / "finops-toolkit__EA_AmortizedCost_Small.csv", base / "finops-toolkit__EA_ActualCost_Small.csv"]
    with open(files[0], encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ri = next(r for r in rows if r["PricingModel"] == "Reservation" and r["ChargeType"] == "Usage")
    sp = next(r for r in rows if r["PricingModel"] == "SavingsPlan" and r["ChargeType"] == "Usage")
    ratio = Decimal(str(json.loads(ri["AdditionalInfo"])["RINormalizationRatio"]))
    assert ratio == 2 and ri["UnitOfMeasure"] == "1 Hour"
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest([str(f) for f in files], warehouse=wh, progress=False)
    con = fk.connect(wh, read_only=True)
    got = {(r[0], r[1]): r[2:] for r in con.execute("""
        SELECT CommitmentDiscountId, ChargeCategory, CommitmentDiscountQuantity, CommitmentDiscountUnit, BillingCurrency
        FROM focus WHERE CommitmentDiscountId IS NOT NULL""").fetchall()}
    con.close()
    q, unit, _ = got[(ri["benefitId"], "Usage")]
    assert (q, unit) == (Decimal(ri["Quantity"]) * ratio, "Hours")
    q, unit, cur = got[(sp["benefitId"], "Usage")]
    assert q == Decimal(sp["Cost"]) and unit == cur
    purchase = [v for (cid, cat), v in got.items() if cat == "Purchase"]
    assert purchase and all(v[0] is None and v[1] is None for v in purchase)


def test_service_table_pairs_are_focus_and_quantum_is_quantum_compute():
    """Every (ServiceCategory, ServiceSubcategory) of the reviewed Azure service table is a FOCUS 1.2 pair, and a
    service FOCUS names a subcategory for gets it: Azure Quantum was 'Other (Compute)' although FOCUS 1.2 has
    'Quantum Compute' (found by a review against the spec's table)."""
    from finops_kit.datafiles import data_rows
    from finops_kit.schema import service_subcategories

    pairs = service_subcategories()
    rows = list(data_rows("azure_services.csv"))
    assert rows and all(pairs.get(r["ServiceSubcategory"]) == r["ServiceCategory"] for r in rows)
    quantum = [r for r in rows if r["ServiceName"] == "Azure Quantum"]
    assert quantum and {r["ServiceSubcategory"] for r in quantum} == {"Quantum Compute"}


MCA_HEADER = ("billingProfileId,date,subscriptionId,meterCategory,meterId,chargeType,pricingModel,unitOfMeasure,"
              "quantity,unitPrice,payGPrice,costInBillingCurrency,costInPricingCurrency,billingCurrency,"
              "pricingCurrency,exchangeRatePricingToBilling")


def _mca_rows(con) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in con.execute(
        "SELECT SubAccountId, BillingCurrency, PricingCurrency, BilledCost, EffectiveCost, ListCost, ContractedCost, "
        "ListUnitPrice, ContractedUnitPrice, PricingCurrencyListUnitPrice, PricingCurrencyContractedUnitPrice "
        "FROM focus").fetchall()}


def test_mca_costs_from_prices_are_converted_to_the_billing_currency(tmp_path):
    """MCA billed in EUR, priced in USD: unitPrice/payGPrice are USD, costInBillingCurrency EUR. FOCUS 1.2: every cost
    and ListUnitPrice/ContractedUnitPrice are in BillingCurrency (x exchangeRatePricingToBilling), the file's own
    prices go to PricingCurrencyListUnitPrice/ContractedUnitPrice, PricingCurrency is the file's. Without a rate the
    USD product is not passed off as EUR: the cost is NULL, or paygCostInBillingCurrency when the file has it."""
    p = _write(tmp_path, "mca.csv", MCA_HEADER + "\n"
               "bp-1,10/05/2026,sub-rate,Storage,m-1,Usage,OnDemand,1 Hour,100,1.0,1.2,90,100,EUR,USD,0.9\n"
               "bp-1,10/05/2026,sub-norate,Storage,m-1,Usage,OnDemand,1 Hour,10,1.0,1.2,9,10,EUR,usd,\n")
    con = fk.connect(":memory:")
    res = ingest([str(p)], con=con, progress=False)
    assert res.reconciliation and all(r["ok"] for r in res.reconciliation)
    got = _mca_rows(con)
    D = Decimal
    assert got["sub-rate"] == ("EUR", "USD", D(90), D(90), D(108), D(90), D("1.08"), D("0.9"), D("1.2"), D(1))
    # no rate: the EUR costs from USD prices are unknown (NULL, reported by the quality check), the prices stay
    assert got["sub-norate"][:6] == ("EUR", "USD", D(9), D(9), None, None)
    assert got["sub-norate"][8:] == (D("1.2"), D(1))
    # the costs agree with the prices in the billing currency: no price-vs-cost finding on the converted row
    assert con.execute("SELECT count(*) FROM data_quality WHERE rule LIKE '%_cost_vs_price'").fetchone()[0] == 0

    # paygCostInBillingCurrency is already in EUR: ListCost with or without the rate; ContractedCost needs it
    p2 = _write(tmp_path, "mca_payg.csv", MCA_HEADER + ",paygCostInBillingCurrency\n"
                "bp-2,10/05/2026,sub-norate,Storage,m-1,Usage,OnDemand,1 Hour,10,1.0,1.2,9,10,EUR,USD,,10.8\n")
    con = fk.connect(":memory:")
    ingest([str(p2)], con=con, progress=False)
    assert _mca_rows(con)["sub-norate"][4:6] == (D("10.8"), None)


def test_single_currency_mca_and_ea_costs_unchanged(tmp_path):
    """Pricing = billing currency (the common case): costs are price x quantity as before, with or without a rate,
    and a file without pricingCurrency (EA) is priced in its billing currency."""
    p = _write(tmp_path, "mca_usd.csv", MCA_HEADER + "\n"
               "bp-1,10/05/2026,sub-rate,Storage,m-1,Usage,OnDemand,1 Hour,100,1.0,1.2,95,95,USD,USD,1.0\n"
               "bp-1,10/05/2026,sub-norate,Storage,m-1,Usage,OnDemand,1 Hour,10,1.0,1.2,9.5,9.5,USD,USD,\n")
    ea = _write(tmp_path, "ea.csv", "SubscriptionId,Date,MeterCategory,MeterId,ChargeType,PricingModel,Quantity,"
                "UnitPrice,PayGPrice,Cost,BillingCurrency\n"
                "sub-ea,10/05/2026,Storage,m-1,Usage,OnDemand,10,1.0,1.2,9.5,CAD\n")
    D = Decimal
    for f, expected in ((p, {"sub-rate": ("USD", "USD", D(95), D(95), D(120), D(100), D("1.2"), D(1), D("1.2"), D(1)),
                             "sub-norate": ("USD", "USD", D("9.5"), D("9.5"), D(12), D(10), D("1.2"), D(1), D("1.2"),
                                            D(1))}),
                        (ea, {"sub-ea": ("CAD", "CAD", D("9.5"), D("9.5"), D(12), D(10), D("1.2"), D(1), D("1.2"),
                                         D(1))})):
        con = fk.connect(":memory:")
        res = ingest([str(f)], con=con, progress=False)
        assert all(r["ok"] for r in res.reconciliation)
        assert _mca_rows(con) == expected, f.name


def test_two_runs_of_one_export_are_not_deduplicated(tmp_path):
    """Two runs of one Azure export (same scope and month) in one call: Azure re-exports restate rows in place,
    so a row that changed between the runs is a revision, not a new charge. --dedupe dropped the identical rows and
    kept both versions of the changed one (review: 711 billed instead of 611, reconcile ok); it is now refused in
    one line, with or without --dedupe, and nothing is written. Files that share no row (day partitions) add up."""
    header = "SubscriptionId,Date,MeterCategory,MeterName,Cost,BillingCurrency,ChargeType,PricingModel\n"
    rows = [f"sub-1,01/0{d}/2025,Virtual Machines,D2s,{c},USD,Usage,OnDemand\n" for d, c in ((5, 100), (6, 211),
                                                                                          (7, 300))]
    run1 = _write(tmp_path, "ActualCost_202501_run1.csv", header + "".join(rows))
    run2 = _write(tmp_path, "ActualCost_202501_run2.csv", header + rows[0].replace(",100,", ",101,") + "".join(rows[1:]))
    wh = str(tmp_path / "wh.duckdb")
    for dedupe in (False, True):
        with pytest.raises(fk.InputError, match=r"ActualCost_202501_run2\.csv: 2 row\(s\) repeat charges of "
                           r".*ActualCost_202501_run1\.csv.*" + ("re-exports restate rows in place" if dedupe else
                                                                  "would be counted twice")):
            ingest([str(run1), str(run2)], warehouse=wh, dedupe=dedupe, progress=False)
    # the same export saved twice (here with CRLF line ends): exact copies, which --dedupe drops (review: refused)
    again = tmp_path / "ActualCost_202501_again.csv"
    again.write_bytes((header + "".join(rows)).replace("\n", "\r\n").encode())
    res = ingest([str(run1), str(again)], warehouse=str(tmp_path / "copy.duckdb"), dedupe=True, progress=False)
    assert sum(d["rows"] for d in res.dropped) == 3
    con = fk.connect(str(tmp_path / "copy.duckdb"), read_only=True)
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == 611
    con.close()
    day5 = _write(tmp_path, "part_5.csv", header + rows[0])
    day67 = _write(tmp_path, "part_67.csv", header + "".join(rows[1:]))
    ingest([str(day5), str(day67)], warehouse=wh, dedupe=True, progress=False)
    con = fk.connect(wh, read_only=True)
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == 611
    con.close()
