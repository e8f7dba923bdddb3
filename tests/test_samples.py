"""The sample generator: deterministic, native layouts, and PLANTED.json totals that the files really hold.

Totals are recomputed here from the written files with DuckDB and each provider's documented rules (AWS
amortization rules, GCP cost + credits, Azure actual vs amortized), independently of the generator's code.
Ingesting each generated folder must give the same FOCUS totals per period.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from finops_kit.samples import generate, model

PERIODS = [f"{bp:%Y-%m}" for bp in model.billing_periods()]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("samples")
    doc = generate(out)
    return out, doc


def _totals(doc: dict, dataset: str) -> dict[str, tuple[Decimal, Decimal]]:
    return {t["billing_period"]: (Decimal(t["billed"]), Decimal(t["amortized"]))
            for t in doc["totals"] if t["dataset"] == dataset}


def _first_line(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.readline()


def _check(got: dict, want: dict, tol: Decimal = Decimal("0.000001")) -> None:
    assert sorted(got) == sorted(want)
    for period, (billed, amortized) in want.items():
        assert abs(Decimal(str(got[period][0])) - billed) <= tol, (period, "billed", got[period][0], billed)
        assert abs(Decimal(str(got[period][1])) - amortized) <= tol, (period, "amortized", got[period][1], amortized)


def test_window_and_periods():
    assert PERIODS[0] == "2025-10" and PERIODS[-1] == "2026-11" and len(PERIODS) == 14
    assert max(model.days()).isoformat() == "2026-11-26"  # the last billing period is partial


def test_same_seed_gives_identical_bytes(sample, tmp_path):
    out, _ = sample
    again = tmp_path / "again"
    generate(again)
    first = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second
    for rel in first:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_changes_data_not_structure(sample, tmp_path):
    a = {"totals": [t for t in sample[1]["totals"] if t["dataset"] == "gcp"]}
    b = generate(tmp_path / "b", providers=["gcp"], seed=2)
    assert [t["billing_period"] for t in a["totals"]] == [t["billing_period"] for t in b["totals"]]
    assert [t["billed"] for t in a["totals"]] != [t["billed"] for t in b["totals"]]


def test_aws_cur2_layout_manifests_and_schema(sample):
    out, doc = sample
    root = out / "aws-cur2" / "acme-ai-cur2"
    for period in PERIODS:
        data = root / "data" / f"BILLING_PERIOD={period}" / "acme-ai-cur2-00001.snappy.parquet"
        manifest = json.loads((root / "metadata" / f"BILLING_PERIOD={period}" / "acme-ai-cur2-Manifest.json")
                              .read_text())
        assert data.exists()
        assert [f.split("/cur2/", 1)[1] for f in manifest["dataFiles"]] == [str(data.relative_to(out / "aws-cur2"))]
        assert manifest["billingPeriod"]["start"].startswith(f"{period}-01T00:00:00")
        schema = pq.read_schema(data)
        assert [c["name"] for c in manifest["columns"]] == schema.names
        for col in ("product", "resource_tags", "cost_category", "discount"):
            assert str(schema.field(col).type).startswith("map<string, string"), col
        for col in ("bill_billing_period_start_date", "bill_payer_account_id", "line_item_usage_account_id",
                    "line_item_line_item_type", "line_item_usage_type", "line_item_operation",
                    "line_item_unblended_cost", "pricing_public_on_demand_cost", "product_servicecode",
                    "savings_plan_savings_plan_effective_cost", "reservation_effective_cost",
                    "line_item_resource_id", "product_region_code", "line_item_availability_zone",
                    "savings_plan_savings_plan_a_r_n", "reservation_reservation_a_r_n", "product_instance_type"):
            assert col in schema.names, col
    assert doc["datasets"]["aws-cur2"]["files"][0].startswith("aws-cur2/acme-ai-cur2/data/BILLING_PERIOD=2025-10/")


def test_aws_cur2_totals_follow_the_amortization_rules(sample):
    out, doc = sample
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT strftime(bill_billing_period_start_date, '%Y-%m') AS p,
               sum(CAST(line_item_unblended_cost AS DECIMAL(38,10))),
               sum(CAST(CASE line_item_line_item_type
                   WHEN 'SavingsPlanCoveredUsage' THEN savings_plan_savings_plan_effective_cost
                   WHEN 'SavingsPlanRecurringFee' THEN savings_plan_total_commitment_to_date
                                                       - savings_plan_used_commitment
                   WHEN 'SavingsPlanNegation' THEN 0 WHEN 'SavingsPlanUpfrontFee' THEN 0
                   WHEN 'DiscountedUsage' THEN reservation_effective_cost
                   WHEN 'RIFee' THEN reservation_unused_amortized_upfront_fee_for_billing_period
                                     + reservation_unused_recurring_fee
                   ELSE CASE WHEN line_item_line_item_type = 'Fee' AND reservation_reservation_a_r_n IS NOT NULL
                             THEN 0 ELSE line_item_unblended_cost END END AS DECIMAL(38,10)))
        FROM read_parquet('{out}/aws-cur2/**/*.parquet') GROUP BY 1""").fetchall()
    _check({p: (b, a) for p, b, a in rows}, _totals(doc, "aws-cur2"), tol=Decimal("0.0001"))
    kinds = {r[0] for r in con.execute(f"SELECT DISTINCT line_item_line_item_type FROM "
                                       f"read_parquet('{out}/aws-cur2/**/*.parquet')").fetchall()}
    assert {"Usage", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee",
            "SavingsPlanUpfrontFee", "DiscountedUsage", "RIFee", "Fee", "Credit", "Refund", "Tax"} <= kinds
    # billed != amortized in the month the All Upfront plan was bought (the upfront fee is billed at once)
    t = _totals(doc, "aws-cur2")["2026-05"]
    assert t[0] - t[1] > 40000


def _legacy_manifest_files(out: Path) -> tuple[list[Path], list[Path]]:
    root = out / "aws-cur-legacy" / "helix-research-cur"
    current, superseded = [], []
    for period_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest = json.loads((period_dir / "helix-research-cur-Manifest.json").read_text())
        assert manifest["reportName"] == "helix-research-cur"
        assert manifest["billingPeriod"]["start"] == period_dir.name[:8] + "T000000.000Z"
        for key in manifest["reportKeys"]:
            assert key.startswith("cur/helix-research-cur/" + period_dir.name + "/" + manifest["assemblyId"])
            current.append(out / "aws-cur-legacy" / key.split("/", 1)[1])
        for asm in (p for p in period_dir.iterdir() if p.is_dir()):
            assert (asm / "helix-research-cur-Manifest.json").exists()
            if asm.name != manifest["assemblyId"]:
                superseded += list(asm.glob("*.csv.gz"))
    return current, superseded


def test_aws_legacy_delivery_with_a_restated_month(sample):
    out, doc = sample
    current, superseded = _legacy_manifest_files(out)
    assert len(current) == 14 and all(p.exists() for p in current)
    assert [p.parent.parent.name for p in superseded] == ["20261001-20261101"]
    con = duckdb.connect()

    def sums(files: list[Path]) -> dict:
        lst = ", ".join(f"'{f}'" for f in files)
        rows = con.execute(f"""
            SELECT left("bill/BillingPeriodStartDate", 7),
                   sum(CAST("lineItem/UnblendedCost" AS DECIMAL(38,10))),
                   sum(CAST("lineItem/UnblendedCost" AS DECIMAL(38,10)))
            FROM read_csv([{lst}], all_varchar = true, union_by_name = true) GROUP BY 1""").fetchall()
        return {p: (b, a) for p, b, a in rows}

    _check(sums(current), _totals(doc, "aws-cur-legacy"))
    old = sums(superseded)["2026-10"][0]
    assert old != _totals(doc, "aws-cur-legacy")["2026-10"][0]  # only the manifest's assembly may be counted
    header = _first_line(current[0]).split(",")
    assert header[:3] == ["identity/LineItemId", "identity/TimeInterval", "bill/InvoiceId"]
    assert "resourceTags/user:Team" in header and "pricing/term" in header
    assert not any(h.startswith("savingsPlan/") for h in header)  # the lab has no plans: column set varies
    assert doc["datasets"]["aws-cur-legacy"]["superseded_files"] == [str(superseded[0].relative_to(out))]


def test_gcp_export_rows_and_net_cost(sample):
    out, doc = sample
    files = sorted((out / "gcp").glob("*.jsonl.gz"))
    assert len(files) == 14
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT invoice.month, sum(CAST(cost AS DECIMAL(38,6)) + coalesce((SELECT sum(CAST(c.amount AS DECIMAL(38,6)))
               FROM unnest(credits) AS t(c)), 0)), count(*),
               count(*) FILTER (WHERE len(credits) = 0), count(*) FILTER (WHERE len(credits) = 1),
               count(*) FILTER (WHERE len(credits) > 1)
        FROM read_json('{out}/gcp/*.jsonl.gz', format = 'newline_delimited') GROUP BY 1""").fetchall()
    want = _totals(doc, "gcp")
    _check({f"{m[:4]}-{m[4:]}": (v, v) for m, v, *_ in rows}, want)
    assert sum(r[3] for r in rows) and sum(r[4] for r in rows) and sum(r[5] for r in rows)  # 0, 1, >1 credits
    types = {r[0] for r in con.execute(f"""SELECT DISTINCT c.type FROM read_json('{out}/gcp/*.jsonl.gz',
        format = 'newline_delimited'), unnest(credits) AS t(c)""").fetchall()}
    assert types == {"SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT", "FEE_UTILIZATION_OFFSET",
                     "PROMOTION", "FREE_TIER"}
    cost_types = {r[0] for r in con.execute(f"SELECT DISTINCT cost_type FROM read_json('{out}/gcp/*.jsonl.gz', "
                                            "format = 'newline_delimited')").fetchall()}
    assert cost_types == {"regular", "tax", "adjustment", "rounding error"}
    first = json.loads(_first_line(files[0]))
    for key in ("service", "sku", "project", "labels", "system_labels", "location", "resource", "cost",
                "currency", "usage", "credits", "invoice", "cost_type", "usage_start_time", "cost_at_list"):
        assert key in first, key
    assert first["usage_start_time"].endswith(" UTC")


def test_azure_actual_and_amortized(sample):
    out, doc = sample
    con = duckdb.connect()
    got = {}
    for kind in ("actual", "amortized"):
        files = sorted((out / "azure" / kind).glob("*.csv.gz"))
        assert len(files) == 14
        for p, v in con.execute(f"""
                SELECT right(BillingPeriodStartDate, 4) || '-' || left(BillingPeriodStartDate, 2),
                       sum(CAST(CostInBillingCurrency AS DECIMAL(38,10)))
                FROM read_csv('{out}/azure/{kind}/*.csv.gz', all_varchar = true) GROUP BY 1""").fetchall():
            got.setdefault(p, [None, None])[0 if kind == "actual" else 1] = v
    _check(got, _totals(doc, "azure"))
    charge = dict(con.execute(f"""SELECT 'actual:' || ChargeType, count(*) FROM read_csv('{out}/azure/actual/*.csv.gz',
        all_varchar = true) GROUP BY 1 UNION ALL SELECT 'amortized:' || ChargeType, count(*)
        FROM read_csv('{out}/azure/amortized/*.csv.gz', all_varchar = true) GROUP BY 1""").fetchall())
    assert {"actual:Usage", "actual:Purchase", "actual:Refund", "amortized:Usage", "amortized:UnusedReservation",
            "amortized:UnusedSavingsPlan"} <= set(charge)
    assert "amortized:Purchase" not in charge and "actual:UnusedReservation" not in charge
    header = _first_line(sorted((out / "azure" / "actual").glob("*.csv.gz"))[0]).strip().split(",")
    for col in ("BillingAccountId", "BillingPeriodStartDate", "Date", "CostInBillingCurrency", "BillingCurrency",
                "MeterCategory", "MeterSubCategory", "MeterName", "ResourceId", "ResourceLocation", "Tags",
                "ChargeType", "Frequency", "PricingModel", "benefitId", "benefitName"):
        assert col in header, col


def test_planted_spikes(sample):
    out, doc = sample
    spikes = {s["event"]: s for s in doc["spikes"]}
    assert set(spikes) == {"aws-runaway-training", "gcp-egress-spike", "azure-masked-pair"}
    run = spikes["aws-runaway-training"]
    # 4 x p5.48xlarge x 24 h x 3 days at the $55.04 list price, computed by hand
    assert Decimal(run["extra_cost"]) == Decimal("55.04") * 4 * 24 * 3
    assert (run["start"], run["end_inclusive"], run["teams"]) == ("2026-06-10", "2026-06-12", ["nlp"])
    con = duckdb.connect()
    runaway = con.execute(f"""SELECT sum(line_item_unblended_cost) FROM read_parquet('{out}/aws-cur2/**/*.parquet')
        WHERE line_item_usage_type = 'BoxUsage:p5.48xlarge' AND resource_tags['user_Team'] = 'nlp'
        AND line_item_usage_start_date BETWEEN '2026-06-10' AND '2026-06-12'
        AND resource_tags['user_Env'] = 'Dev'""").fetchone()[0]
    assert runaway == pytest.approx(float(run["extra_cost"]))
    egress = spikes["gcp-egress-spike"]
    spike_days = con.execute(f"""SELECT sum(cost) FROM read_json('{out}/gcp/*.jsonl.gz', format = 'newline_delimited')
        WHERE sku.description LIKE 'Network Internet%' AND usage_start_time LIKE '2026-08-2_ %'
        AND usage_start_time < '2026-08-22'""").fetchone()[0]
    assert Decimal(egress["extra_cost"]) == pytest.approx(Decimal(str(spike_days)) * 11 / 12, abs=Decimal("0.01"))
    pair = spikes["azure-masked-pair"]
    sides = [Decimal(v) for v in pair["services"].values()]
    assert len(sides) == 2 and sides[0] * sides[1] < 0  # opposite changes...
    assert abs(Decimal(pair["extra_cost"])) < Decimal("0.1") * min(abs(s) for s in sides)  # ...that nearly cancel


def test_tags_have_variants_gaps_and_seasonality(sample):
    out, _ = sample
    con = duckdb.connect()
    keys = {r[0] for r in con.execute(f"""SELECT DISTINCT unnest(map_keys(resource_tags))
        FROM read_parquet('{out}/aws-cur2/**/*.parquet')""").fetchall()}
    assert {"user_env", "user_Env", "user_environment", "user_team", "user_Team"} <= keys
    values = {r[0] for r in con.execute(f"""SELECT DISTINCT coalesce(resource_tags['user_env'],
        resource_tags['user_Env'], resource_tags['user_environment'], resource_tags['user_Environment'])
        FROM read_parquet('{out}/aws-cur2/**/*.parquet')""").fetchall()}
    assert {"prod", "Prod", "production", "prd"} <= values
    untagged = con.execute(f"""SELECT count(*) FROM read_parquet('{out}/aws-cur2/**/*.parquet')
        WHERE line_item_line_item_type = 'Usage' AND cardinality(resource_tags) = 0""").fetchone()[0]
    assert untagged > 100
    weekday, weekend = con.execute(f"""SELECT avg(c) FILTER (WHERE dow NOT IN (0, 6)), avg(c) FILTER (WHERE dow IN (0, 6))
        FROM (SELECT line_item_usage_start_date AS d, dayofweek(line_item_usage_start_date) AS dow, sum(line_item_unblended_cost) AS c
              FROM read_parquet('{out}/aws-cur2/**/*.parquet')
              WHERE line_item_line_item_type IN ('Usage', 'SavingsPlanCoveredUsage', 'DiscountedUsage')
              GROUP BY 1, 2)""").fetchone()
    assert weekend < 0.85 * weekday


def test_rows_scales_the_population(sample, tmp_path):
    base = {"totals": [t for t in sample[1]["totals"] if t["dataset"] == "gcp"]}
    n = sum(t["rows"] for t in base["totals"])
    big = generate(tmp_path / "big", rows=3 * n, providers=["gcp"])
    assert sum(t["rows"] for t in big["totals"]) == 3 * n
    for a, b in zip(base["totals"], big["totals"], strict=True):
        assert Decimal(b["billed"]) == 3 * Decimal(a["billed"])
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM read_json('{tmp_path}/big/gcp/*.jsonl.gz', "
                       "format = 'newline_delimited')").fetchone()[0] == 3 * n


def test_cli_bad_provider_is_one_line(tmp_path, capsys):
    from finops_kit.cli import main

    assert main(["samples", "--out", str(tmp_path), "--providers", "aws,oracle"]) == 2
    err = capsys.readouterr().err.strip()
    assert "oracle" in err and "\n" not in err


# ---- ingest: FOCUS totals per period equal PLANTED.json -----------------------------------------------------
INGEST = ["aws-cur2", "aws-cur-legacy", "gcp", "azure"]  # folder = dataset name


@pytest.mark.parametrize("folder", INGEST)
def test_ingested_focus_totals_equal_planted(sample, folder):
    dataset = folder
    import finops_kit as fk
    from finops_kit.ingest import ingest

    out, doc = sample
    con = fk.connect(":memory:")
    result = ingest([str(out / folder)], con=con)
    rows = con.execute("""SELECT strftime(BillingPeriodStart, '%Y-%m'), sum(BilledCost), sum(EffectiveCost)
        FROM focus GROUP BY 1""").fetchall()
    _check({p: (b, e) for p, b, e in rows}, _totals(doc, dataset), tol=Decimal("0.0001"))
    if folder == "aws-cur-legacy":
        assert len(result.skipped) >= 1  # the superseded assembly of the restated month
