"""finops-kit metrics / fk.metrics: every headline figure on a small bill whose answers are planted by hand."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest
import yaml

import finops_kit as fk
from finops_kit import metrics as metrics_mod
from finops_kit.cli import main
from finops_kit.errors import ConfigError
from finops_kit.testing import focus_rows

CONFIG = {
    "tag_policy": {"keys": {"team": {"required": True, "aliases": ["Team"]},
                            "env": {"required": True, "allowed": ["prod", "dev"]}}},
    "allocation": {"key": "team", "method": "none",
                   "shared": {"tag_values": ["platform"], "charge_categories": ["Tax"], "unused_commitments": True}},
}
S3 = dict(ServiceName="Amazon Simple Storage Service", ServiceCategory="Storage")
EC2 = dict(ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute")
VPC = dict(ServiceName="Amazon Virtual Private Cloud", ServiceCategory="Networking")
VISION = {"team": "vision", "env": "prod"}
OCT, NOV = "2026-10-05", "2026-11-10"

ROWS = [
    # storage: S3 capacity (ServiceCategory Storage) and an EBS volume billed under EC2 (ServiceCategory Compute)
    dict(S3, day=OCT, cost=100, ConsumedQuantity=4000, ConsumedUnit="GB-Months", x_UsageType="TimedStorage-ByteHrs",
         tags=VISION),
    dict(EC2, day=OCT, cost=50, ConsumedQuantity=625, ConsumedUnit="GB-Months", x_UsageType="EBS:VolumeUsage.gp3",
         tags={"Team": "vision", "env": "prod"}),
    # transfer: internet egress billed under S3 (ServiceCategory Storage: not storage cost) and NAT bytes
    dict(S3, day=OCT, cost=30, ConsumedQuantity=300, ConsumedUnit="GB", x_UsageType="DataTransfer-Out-Bytes",
         tags=VISION),
    dict(VPC, day=OCT, cost=20, ConsumedQuantity=450, ConsumedUnit="GB", x_UsageType="NatGateway-Bytes",
         tags={"team": "platform", "env": "prod"}),
    # GPUs: 10 h p4d on demand ($21.96/h) and 10 h on spot ($10/h): 160 GPU-hours, half of them on spot
    dict(EC2, day=OCT, cost=219.6, ConsumedQuantity=10, ConsumedUnit="Hours", x_InstanceType="p4d.24xlarge",
         x_UsageType="BoxUsage:p4d.24xlarge", x_AiWorkload="Accelerated compute", tags={"team": "nlp", "env": "dev"}),
    dict(EC2, day=OCT, cost=100, ConsumedQuantity=10, ConsumedUnit="Hours", x_InstanceType="p4d.24xlarge",
         x_UsageType="SpotUsage:p4d.24xlarge", PricingCategory="Dynamic", x_AiWorkload="Accelerated compute",
         tags={"team": "nlp", "env": "dev"}),
    dict(ServiceName="Amazon Bedrock", ServiceCategory="AI and Machine Learning", day=OCT, cost=10,
         x_AiWorkload="Managed AI service", tags={"team": "nlp", "env": "prod"}),
    # shared: tax, and the shared 'platform' team (the NAT row above too); untagged: an m5 without tags
    dict(EC2, day=OCT, cost=40, ChargeCategory="Tax", PricingCategory=None),
    dict(EC2, day=OCT, cost=60, ConsumedQuantity=100, ConsumedUnit="Hours", x_InstanceType="m5.xlarge",
         x_UsageType="BoxUsage:m5.xlarge"),
    # November runs to the 10th only: an open period
    dict(EC2, day=NOV, cost=5, ConsumedQuantity=1, ConsumedUnit="Hours", x_InstanceType="m5.xlarge",
         x_UsageType="BoxUsage:m5.xlarge", tags=VISION),
    # another billing currency: never added to the USD figures
    dict(EC2, day=OCT, cost=999, BillingCurrency="EUR", x_InstanceType="p4d.24xlarge", ConsumedQuantity=10,
         ConsumedUnit="Hours", x_UsageType="BoxUsage:p4d.24xlarge", x_AiWorkload="Accelerated compute",
         BillingAccountId="acct-eu", tags=VISION),
]
USD_TOTAL = Decimal("634.6")  # 100 + 50 + 30 + 20 + 219.6 + 100 + 10 + 40 + 60 + 5


@pytest.fixture(scope="module")
def bill():
    return focus_rows(ROWS)


def test_headline_figures(bill):
    m = fk.metrics(bill, config=CONFIG, currency="USD")
    t = m.totals.set_index("currency").loc["USD"]
    assert list(m.totals.currency) == ["USD"]  # the EUR row is another currency: left out, never summed
    assert t.effective_cost == USD_TOTAL and t.billed_cost == USD_TOTAL
    assert t.ai_cost == Decimal("329.6")
    assert t.storage_cost == 150 and t.storage_gb_months == pytest.approx(4625)  # EBS counts, S3 egress does not
    assert t.transfer_cost == 50 and t.transfer_gb == pytest.approx(750)
    assert t.shared_cost == 60  # tax 40 + the platform team's NAT bytes 20
    assert t.unallocated_cost == 60  # the untagged m5 (the tax row is shared, not untagged)
    assert m.total("storage_cost") == 150
    ai = dict(zip(m.ai.category, m.ai.cost, strict=True))
    assert ai == {"Accelerated compute": Decimal("319.6"), "Managed AI service": Decimal("10")}


def test_accelerators_and_spot_share(bill):
    m = fk.metrics(bill, config=CONFIG, currency="USD")
    acc = m.accelerators.set_index(["family", "pricing"])
    assert acc.loc[("p4d", "On-demand"), "rate_per_instance_hour"] == Decimal("21.96")
    assert acc.loc[("p4d", "Spot"), "rate_per_accelerator_hour"] == Decimal("1.25")
    assert acc.accelerator_hours.sum() == pytest.approx(160)
    spot = m.spot.set_index("provider")
    assert spot.loc["(all)", "spot_share"] == pytest.approx(0.5)
    assert spot.loc["AWS", "spot_accelerator_hours"] == pytest.approx(80)


def test_tag_coverage_and_completeness(bill):
    m = fk.metrics(bill, config=CONFIG, currency="USD")
    cov = m.tag_coverage.set_index("key")
    positive = float(USD_TOTAL)
    # team: valid on everything but the tax (40) and the untagged m5 (60); 'Team' is an alias
    assert cov.loc["team", "untagged_cost"] == pytest.approx(100)
    assert cov.loc["team", "total_cost"] == pytest.approx(positive)
    assert (cov.untagged_cost <= cov.total_cost + 1e-9).all() and (cov.total_cost <= positive + 1e-9).all()
    c = m.completeness.set_index("billing_period")
    assert bool(c.iloc[0]["closed"]) and not bool(c.iloc[-1]["closed"])
    assert "1\u201310 Nov 2026, open" in c.iloc[-1]["label"]


def test_scope_parameters_select_the_figures(bill):
    m = fk.metrics(bill, config=CONFIG, currency="USD", billing_period_start="2026-11", billing_period_end="2026-11")
    assert m.total("effective_cost") == 5 and len(m.completeness) == 1
    eur = fk.metrics(bill, config=CONFIG, currency="EUR")
    assert eur.total("effective_cost") == 999 and eur.totals.currency.tolist() == ["EUR"]
    with pytest.raises(ConfigError, match="several billing currencies"):
        fk.metrics(bill, config=CONFIG)


def test_tables_computes_only_the_tables_asked_each_the_same_as_in_the_whole(bill, monkeypatch):
    """``fk.metrics(..., tables=[...])`` computes only those tables -- each equal to its table in the whole result --
    and shows only them; the others are None (not computed, never an empty answer). Why: the tagging audit and the
    storage report quote totals only, the spot report spot shares and unknown types, and all ten tables were
    computed for them."""
    from finops_kit import scope as S

    whole = fk.metrics(bill, config=CONFIG, currency="USD")
    called = []
    for name, fn in list(metrics_mod._TABLE_FUNCTIONS.items()):
        monkeypatch.setitem(metrics_mod._TABLE_FUNCTIONS, name,
                            lambda con, sc, _fn=fn, _name=name: called.append(_name) or _fn(con, sc))
    for name in metrics_mod.TABLES:
        called.clear()
        sc = S.Scope(currency="USD").resolve(bill, CONFIG)  # a fresh scope: nothing memoized on it
        one = fk.metrics(bill, sc, tables=[name])
        assert called == [name]
        pd.testing.assert_frame_equal(getattr(one, name), getattr(whole, name))
        assert one.tables == (name,)  # shown even when empty (tokens: this bill has no token lines)
        assert all(getattr(one, other) is None for other in metrics_mod.TABLES if other != name)
        assert list(one.to_dict()) == ["schema_version", "scope", "parameters", "currency", name]
    only_spot = fk.metrics(bill, config=CONFIG, currency="USD", tables="spot")
    with pytest.raises(ConfigError, match="totals table, which was not asked for"):
        only_spot.total("storage_cost")
    both = fk.metrics(bill, config=CONFIG, currency="USD", tables=["spot", "totals"])
    assert both.tables == ("totals", "spot") and both.total("storage_cost") == 150
    with pytest.raises(ConfigError, match="expected some of totals, ai"):
        fk.metrics(bill, config=CONFIG, currency="USD", tables=["total"])
    # the whole result's optional tables still appear only when they have rows
    assert "tokens" not in whole.tables and "totals" in whole.tables


def test_cli_json_and_table(bill, tmp_path, capsys):
    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows(ROWS, con)
    con.close()
    cfg = tmp_path / "finops.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    base = ["metrics", "--warehouse", str(wh), "--config", str(cfg)]
    assert main(base + ["--json", "-p", "currency=USD", "-p", "billing_period_end=2026-10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == metrics_mod.SCHEMA_VERSION == 3 and doc["currency"] == "USD"
    assert set(doc) >= {"scope", "parameters", "totals", "ai", "accelerators", "spot", "tag_coverage", "completeness"}
    assert doc["totals"][0]["effective_cost"] == "629.600000"  # exact decimal text: 634.6 without November's 5
    assert doc["parameters"]["billing_period_end"] == "2026-10"
    assert main(base + ["-p", "currency=USD"]) == 0
    out = capsys.readouterr().out
    assert "storage_cost" in out and "634.60" in out
    assert main(base + ["-p", "team=nlp"]) == 2
    assert "not a scope parameter" in capsys.readouterr().err
    assert main(base) == 2  # two currencies and no choice: exit 2 naming them
    assert "EUR, USD" in capsys.readouterr().err


@pytest.mark.parametrize("imports", [
    "import finops_kit as fk",                                   # the package first: fk.metrics loads lazily
    "import finops_kit.metrics\nimport finops_kit as fk",        # the submodule first (what `finops-kit metrics` does)
    "import finops_kit as fk\nfrom finops_kit import metrics",   # the package, then the name
])
def test_fk_metrics_is_the_function_in_every_import_order(imports: str, sample_warehouse: str) -> None:
    """The metrics layer loads on first use (a CLI start such as `finops-kit ingest` need not import pandas), and
    `fk.metrics(con, scope)` must still be the function whichever import binds the name first."""
    import subprocess
    import sys

    code = (imports + "\ncon = fk.connect(" + repr(sample_warehouse) + ", read_only=True)\n"
            "m = fk.metrics(con, billing_period_start='2026-08')\n"
            "print(type(m).__name__, m.scope.start, isinstance(m, fk.Metrics))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Metrics", "2026-08-01", "True"]


def test_importing_the_package_does_not_import_pandas() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import finops_kit, finops_kit.ingest, finops_kit.cli, sys; "
                           "print(sorted(m for m in ('pandas', 'statsmodels', 'altair') if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_connections_never_draw_duckdb_progress_bars_on_stdout(sample_warehouse: str) -> None:
    """Under load a metrics query passed DuckDB's 2 s threshold and its progress bar went to stdout, ahead of the
    figures (seen in this file's import-order test on a 2-core machine running 8 jobs). A kit connection whose
    stdout is not a terminal (pytest captures it, like a pipe or a kernel) turns it off."""
    con = fk.connect(sample_warehouse, read_only=True)
    try:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
    finally:
        con.close()


def test_docs_state_the_schema_version_the_code_writes():
    """docs/metrics.md is what a scheduler's author reads: its heading, its example and its version table must name
    the version the code writes, or a consumer pins the wrong one."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text(encoding="utf-8")
    v = metrics_mod.SCHEMA_VERSION
    assert f"schema version {v}\n" in text
    assert f'"schema_version": {v},' in text
    assert f"\n| {v} | " in text  # a row of the "Schema versions" table says what changed
