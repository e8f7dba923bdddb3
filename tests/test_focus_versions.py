"""FOCUS 1.3 and 1.4 in, FOCUS 1.3 out.

Fixtures come from focus-data-toolkit (test-only dev dependency, MIT AND CC-BY-4.0): it generates provider-realistic
FOCUS 1.3 Cost and Usage and Contract Commitment files and converts 1.3 to the FOCUS 1.4 datasets, so the 1.3/1.4
inputs here are written by an independent implementation of those versions, not by this kit.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.schema import columns_by_version
from finops_kit.sources.focus import detect_version

pytest.importorskip("focus_data_toolkit", reason="focus-data-toolkit is a dev dependency: pip install -e '.[dev]'")

NEW_IN_1_3 = ("AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName",
              "AllocatedTags", "ContractApplied", "HostProviderName", "ServiceProviderName")


def toolkit(*args: str) -> str:
    """Run the focus-data-toolkit CLI (``focus-toolkit``) in this interpreter. ``convert`` exits 3 when it writes
    Cost and Usage but not the datasets that need provider facts a Cost and Usage file lacks (Billing Period...)."""
    done = subprocess.run([sys.executable, "-m", "focus_data_toolkit.cli", *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode in ((0, 3) if args[0] == "convert" else (0,)), done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """FOCUS 1.3 exports of AWS and Azure (Cost and Usage + Contract Commitment) and their strict 1.4 conversion."""
    base = tmp_path_factory.mktemp("fdt")
    out = {}
    for provider, seed in (("aws", "7"), ("azure", "3")):
        folder = base / provider
        toolkit("generate", "--provider", provider, "--focus-version", "1.3", "--rows", "400", "--seed", seed,
                "--out", str(folder))
        out[provider] = folder
        out[f"{provider}-cu"] = folder / f"focus_1_3_cost_and_usage_{provider}.csv"
        out[f"{provider}-cc"] = folder / f"focus_1_3_contract_commitment_{provider}.csv"
    toolkit("convert", "--cost-and-usage", str(out["azure-cu"]), "--out", str(base / "azure14"))
    out["azure-cu14"] = base / "azure14" / "focus_1_4_cost_and_usage.csv"
    return out


def _billed(path: Path) -> Decimal:
    """The file's BilledCost total, each value at the warehouse's 12 decimals (the toolkit writes up to 15)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return sum((Decimal(r["BilledCost"]).quantize(Decimal("1e-12"), ROUND_HALF_UP) for r in csv.DictReader(fh)),
                   Decimal(0))


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def test_versions_are_detected_from_the_columns(generated, shared):
    assert detect_version(_header(generated["aws-cu"])) == "1.3"
    assert detect_version(_header(generated["azure-cu14"])) == "1.4"
    assert detect_version(_header(shared / "corpus/focus/sample-data/FOCUS-1.0/focus_sample.csv")) == "1.0"
    levels = columns_by_version()
    assert sorted(c for c, lv in levels.items() if lv["1.3"] and not lv["1.2"]) == sorted(NEW_IN_1_3)
    assert sum(1 for lv in levels.values() if lv["1.3"]) == 65 and sum(1 for lv in levels.values() if lv["1.4"]) == 65


@pytest.mark.parametrize("provider", ["aws", "azure"])
def test_focus_1_3_cost_and_usage_reads_into_the_1_2_table(generated, warehouse, capsys, provider):
    path = generated[f"{provider}-cu"]
    assert main(["ingest", str(path), "--warehouse", warehouse, "--no-progress"]) == 0
    assert f"{path}: FOCUS 1.3 Cost and Usage" in capsys.readouterr().out
    con = fk.connect(warehouse, read_only=True)
    cols = {r[0] for r in con.execute("DESCRIBE focus").fetchall()}
    assert {f"x_{c}" for c in NEW_IN_1_3} <= cols  # the 1.3-only columns are kept as x_ columns
    n, billed, spn = con.execute("SELECT count(*), sum(BilledCost), count(x_ServiceProviderName) FROM focus").fetchone()
    assert billed == _billed(path) and spn == n
    assert con.execute("SELECT count(*) FROM focus WHERE x_AllocatedMethodId IS NOT NULL").fetchone()[0] > 0
    # no 1.3 column counted as a repair: they are spec columns of a later version, not custom columns
    assert con.execute("SELECT count(*) FROM data_quality WHERE rule = 'x_prefix'").fetchone()[0] == 0


def test_contract_commitment_dataset_loads_into_its_own_table(generated, warehouse):
    """The folder a 1.3 provider delivers (Cost and Usage + Contract Commitment) is one ingest call."""
    res = fk.ingest(str(generated["aws"]), warehouse=warehouse, progress=False)
    with open(generated["aws-cc"], newline="", encoding="utf-8") as fh:
        commitments = list(csv.DictReader(fh))
    con = fk.connect(warehouse, read_only=True)
    n, cost, version = con.execute("SELECT count(*), sum(ContractCommitmentCost), any_value(x_FocusVersion) "
                                   "FROM focus_contract_commitment").fetchone()
    assert (n, cost, version) == (len(commitments), sum(Decimal(c["ContractCommitmentCost"]) for c in commitments),
                                  "1.3")
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == _billed(generated["aws-cu"])
    assert {p.source_format for p in res.parts} == {"focus", "focus-contract-commitment"}
    con.close()
    fk.ingest(str(generated["aws-cc"]), warehouse=warehouse, progress=False)  # re-delivered: replaces, not adds
    con = fk.connect(warehouse, read_only=True)
    assert con.execute("SELECT count(*) FROM focus_contract_commitment").fetchone()[0] == len(commitments)


def test_contract_commitment_with_an_end_before_its_start_is_refused(generated, tmp_path, warehouse, capsys):
    with open(generated["aws-cc"], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    i = rows[0].index("ContractCommitmentPeriodEnd")
    rows[3][i] = "2020-01-01T00:00:00Z"
    path = tmp_path / "cc.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    assert main(["ingest", str(path), "--warehouse", warehouse, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cc.csv, row 3, column 'ContractCommitmentPeriodEnd': '2020-01-01T00:00:00Z'; expected a time at or " \
           "after ContractCommitmentPeriodStart" in err


def test_focus_1_4_cost_and_usage_reads_with_its_service_provider(generated, warehouse, capsys):
    path = generated["azure-cu14"]
    assert "ProviderName" not in _header(path)
    assert main(["ingest", str(path), "--warehouse", warehouse, "--no-progress"]) == 0
    assert f"{path}: FOCUS 1.4 Cost and Usage" in capsys.readouterr().out
    con = fk.connect(warehouse, read_only=True)
    # ProviderName and PublisherName (removed in 1.4) come from ServiceProviderName, which is kept as well
    assert con.execute("SELECT count(*) FROM focus WHERE ProviderName IS NULL OR PublisherName IS NULL "
                       "OR ProviderName <> x_ServiceProviderName").fetchone()[0] == 0
    assert con.execute("SELECT sum(BilledCost) FROM focus").fetchone()[0] == _billed(generated["azure-cu"])


def test_export_focus_1_3_is_a_1_3_cost_and_usage_file(generated, warehouse, tmp_path):
    """The independent toolkit recognizes our 1.3 export as FOCUS 1.3 and converts it to 1.4 in strict mode with
    its lint passing; 1.2 stays the default."""
    fk.ingest(str(generated["azure-cu"]), warehouse=warehouse, progress=False)
    out13, out12 = tmp_path / "f13.csv", tmp_path / "f12.csv"
    assert main(["export", "--warehouse", warehouse, "--out", str(out13), "--focus-version", "1.3"]) == 0
    assert main(["export", "--warehouse", warehouse, "--out", str(out12)]) == 0
    spec13 = {c for c, lv in columns_by_version().items() if lv["1.3"]}
    header = _header(out13)
    assert {c for c in header if not c.startswith("x_")} == spec13
    assert not any(f"x_{c}" in header for c in NEW_IN_1_3)
    assert {c for c in _header(out12) if not c.startswith("x_")} == {c for c, lv in columns_by_version().items()
                                                                     if lv["1.2"]}
    with open(out13, newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    assert first["ChargePeriodStart"].endswith("Z") and "T" in first["ChargePeriodStart"]
    assert "version=1.3" in toolkit("detect", str(out13))
    report = toolkit("convert", "--cost-and-usage", str(out13), "--out", str(tmp_path / "to14"))
    assert "lint [Cost and Usage]: lint OK" in report
    assert _billed(out13) == _billed(generated["azure-cu"])
