"""The same question gets the same answer in every report: render every curated report on the sample data for one
scope and check that each figure shown in more than one place is identical and equals ``finops-kit metrics``.

Before the shared scope/attribution/units layer the sample reports disagreed: three "untagged" totals ($530k, $502k,
$258k), storage $909k vs $774k and transfer $899k vs $576k without saying why, a scope parameter honoured by one
report of four. The figures are read from what the reports display (the executed notebooks' outputs), not from the
functions behind them, so a notebook that computes its own number fails here.
"""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest

from finops_kit.notebook import money

from .report_figures import CURATED, REPO
from .report_figures import headline as _headline
from .report_figures import one as _one
from .report_figures import texts as _texts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rendered(curated_reports):
    """Every curated report rendered once for SCOPE, as ``finops-kit report --all -p ...`` does (the session's
    shared rendering, conftest.curated_reports): the out folder and the text each report shows."""
    out, results = curated_reports
    for name, r in results.items():
        assert r.status == "ok", f"{name}: {r.error}"
    missing = set(CURATED) - set(results)
    assert not missing, f"not rendered: {missing}"
    return out, {name: _texts(out / r.ipynb) for name, r in results.items()}


@pytest.fixture(scope="module")
def headline(sample_warehouse):
    with _headline(sample_warehouse) as h:
        yield h


def test_every_report_and_the_index_state_the_same_scope(rendered, headline):
    out, texts = rendered
    sc = headline[2]
    for name, text in texts.items():
        assert sc.describe() in text, f"{name} does not state its scope"
    index = html.unescape((out / "index.html").read_text(encoding="utf-8"))
    assert index.count(f"Scope: {sc.period_text()}") == len(texts)


def test_spend_ai_shared_and_unallocated_equal_metrics(rendered, headline):
    _, texts = rendered
    m = headline[0]
    tag = texts["tagging_audit"]
    total, ai = re.findall(r"Total spend (\$[\d,]+\.\d\d); AI/ML spend (\$[\d,]+\.\d\d)", tag)[0]
    assert total == money(m.total("effective_cost")) and ai == money(m.total("ai_cost"))
    # showback: the shared pool and the untagged line (one definition of each, shared with budgets and forecasts)
    shared = _one(r"Shared = [^\n]*?\(([\d,.-]+)\)\. Method", tag, "showback shared")
    untagged = _one(r"Untagged ([\d,.-]+) is shown on its own line", tag, "showback untagged")
    assert Decimal(shared.replace(",", "")) == m.total("shared_cost").quantize(Decimal("0.01"))
    assert Decimal(untagged.replace(",", "")) == m.total("unallocated_cost").quantize(Decimal("0.01"))


def test_storage_and_transfer_equal_metrics(rendered, headline):
    _, texts = rendered
    m = headline[0]
    st = texts["storage_lifecycle"]
    # the whole-scope figures name the span they cover (session 15: "in the period" under a one-month summary)
    span = r"over the whole scope \(3 billing periods\\?, 2026\\?-08 to 2026\\?-10\): "
    assert _one(r"Storage-related spend " + span + r"\*\*(\$[\d,]+\.\d\d)\*\*", st, "storage") == \
        money(m.total("storage_cost"))
    assert _one(r"Data-transfer spend " + span + r"\*\*(\$[\d,]+\.\d\d)\*\*", st, "transfer") == \
        money(m.total("transfer_cost"))


def test_spot_share_of_accelerator_hours_equals_metrics(rendered, headline):
    _, texts = rendered
    m = headline[0]
    shown = dict(re.findall(r"(AWS|Google Cloud|Microsoft): ([\d.]+)% of the [\d,]+ accelerator-hours that could "
                            r"run on spot are on spot", texts["spot_analysis"]))
    expected = {r.provider: f"{100 * float(r.spot_share):.1f}" for r in m.spot.itertuples()
                if r.provider != "(all)" and r.spot_share == r.spot_share}
    assert shown == expected and shown


def test_forecast_month_to_date_equals_metrics_of_that_month(rendered, headline):
    """The forecast report's 'as of' is the scope's last day (31 Oct): its actual to date is October's spend."""
    _, texts = rendered
    oct_total = headline[1].total("effective_cost")
    shown = _one(r"Total: \$([\d,]+) spent so far", texts["forecast_vs_actual"], "forecast actual to date")
    assert Decimal(shown.replace(",", "")) == oct_total.quantize(Decimal(1))


def test_tag_coverage_of_the_allocation_key_equals_metrics(rendered, headline):
    _, texts = rendered
    cov = headline[0].tag_coverage.set_index("key")
    shown = _one(r"Allocation maturity on all spend: ([\d.]+)% of dollars carry a valid 'team' tag",
                 texts["tagging_audit"], "team coverage")
    assert shown == f"{float(cov.loc['team', 'coverage']):.1f}"
    every = _one(r"; ([\d.]+)% carry every required key", texts["tagging_audit"], "all-keys coverage")
    assert every == f"{float(cov.loc['(all required)', 'coverage']):.1f}"


def test_tagging_audit_states_the_storage_and_transfer_figures_of_the_storage_report(rendered, headline):
    """Before: the storage report said $909k and the tagging audit's category table $774k, with no word on why."""
    _, texts = rendered
    m = headline[0]
    storage, transfer = re.findall(r"Storage (\$[\d,]+\.\d\d) and data transfer (\$[\d,]+\.\d\d): one definition each",
                                   texts["tagging_audit"])[0]
    assert storage == money(m.total("storage_cost")) and transfer == money(m.total("transfer_cost"))
    assert storage in texts["storage_lifecycle"] and transfer in texts["storage_lifecycle"]


def test_summary_block_figures_equal_metrics_of_the_latest_closed_period(rendered, headline):
    """Every report opens with the package's summary block (finops_kit.summary): its figures are the latest closed
    period's (October for SCOPE) and equal finops-kit metrics of that period -- the same Spend in all four."""
    _, texts = rendered
    oct_ = headline[1]
    whole = lambda name: money(oct_.total(name), places=0)  # noqa: E731 - the block shows whole currency units
    expected = {
        "tagging_audit": {"Spend": whole("effective_cost"), "AI/ML spend": whole("ai_cost"),
                          "Unallocated (untagged, after shared costs are pooled)": whole("unallocated_cost")},
        "spot_analysis": {"Spend": whole("effective_cost")},
        "storage_lifecycle": {"Spend": whole("effective_cost"), "Storage": whole("storage_cost"),
                              "Data transfer": whole("transfer_cost")},
        "forecast_vs_actual": {"Spend": whole("effective_cost"), "AI/ML spend": whole("ai_cost")},
    }
    for name, figures in expected.items():
        text = texts[name]
        assert "Figures: Oct 2026 (latest closed billing period in scope), change vs Sep 2026" in text, name
        for label, value in figures.items():
            shown = _one(rf"- {re.escape(label)}: (\$[\d,]+) \(", text, f"{name} summary {label}")
            assert shown == value, (name, label)
    spot = oct_.spot[oct_.spot["provider"] == "(all)"].iloc[0]
    assert f"- Spot share of accelerator-hours: {100 * float(spot.spot_share):.1f}%" in texts["spot_analysis"]
    assert _one(r"- Accelerated compute: (\$[\d,]+) \(", texts["spot_analysis"], "accelerated") == \
        money(spot.cost, places=0)
    cov = oct_.tag_coverage.set_index("key")
    assert f"- Allocation-key tag coverage: {float(cov.loc['team', 'coverage']):.1f}%" in texts["tagging_audit"]


#: Reports whose summary block must list actions on the sample data (the others: checked when they have one).
SUMMARY_ACTIONS = ("tagging_audit", "spot_analysis", "storage_lifecycle", "forecast_vs_actual")


def test_summary_actions_link_to_a_section_of_their_page(rendered):
    """Each action of the block names its team (the allocation key) and links to the heading that backs it (an id in the same page)."""
    out, _ = rendered
    for name in CURATED:
        page = next(p for p in out.rglob("*.html") if p.name.startswith(name)).read_text(encoding="utf-8")
        # the actions, all kinds (savings, cost at stake ...: one list each), up to the end of the block
        block = re.search(r'<div class="finops-summary".*?Top actions by dollars(.*?)</div></div>', page, re.S)
        if name not in SUMMARY_ACTIONS and block is None:
            continue  # a report that has not adopted the block yet; the four below must have it
        assert block, f"{name}: no actions in the summary block"
        items = re.findall(r"<li.*?</li>", block.group(1), re.S)
        assert items and all("team <b>" in li for li in items), name  # the allocation key names the owner
        for href in re.findall(r'href="#([^"]+)"', block.group(1)):
            assert f'id="{html.unescape(href)}"' in page, f"{name}: no section #{href}"


def test_no_markdown_output_of_a_curated_report_renders_money_as_math(rendered):
    """Every text/markdown output of the executed curated notebooks has its ``$`` escaped and wrapped out of
    MathJax's reach (nb.md): otherwise two dollar signs are one LaTeX span in JupyterLab
    (tests/test_markdown_dollars.py; tests/test_live_lab.py checks the rendered page)."""
    from .test_markdown_dollars import markdown_outputs, unsafe_markdown_output

    out, _texts = rendered
    seen = 0
    for name in CURATED:
        (executed,) = out.glob(f"{name}*.ipynb")  # a scoped run names the report after its parameters too
        for cell_id, text in markdown_outputs(executed):
            seen += 1
            assert not unsafe_markdown_output(text), f"{name} cell {cell_id}: {unsafe_markdown_output(text)}"
    assert seen >= 10  # the storage and spot notebooks' headlines and notes are Markdown


def test_token_figures_of_the_ai_report_equal_metrics(rendered, headline):
    """The AI unit economics report states the token spend and the cost per 1M tokens of each model and token type
    that `finops-kit metrics` gives (its `tokens` table)."""
    _, texts = rendered
    m = headline[0]
    assert not m.tokens.empty, "the sample data has token lines: metrics must show them"
    text = texts["ai_unit_economics"]
    assert f"{money(sum(m.tokens['cost']))} of token spend" in text.replace("**", "")  # Markdown bold removed
    rows = [ln.split(" | ") for ln in text.splitlines() if " | " in ln]  # the tables' plain-text rows
    for r in m.tokens.sort_values("cost", ascending=False).head(10).itertuples():
        # the first row naming the provider, model and token type is the unit-cost table's (section 2)
        shown = [cells for cells in rows if {r.provider, r.model, r.token_type} <= set(cells)]
        assert shown, f"{r.provider} {r.model} {r.token_type}: not in the report's unit-cost table"
        assert money(r.cost_per_1m) in shown[0], (shown[0], r.cost_per_1m)


def test_ai_unit_economics_idle_gpu_and_runs_equal_metrics_and_planted(rendered, headline):
    """The report's idle GPU dollars are `finops-kit metrics --gpu-metrics` figures, and the planted idle dev box and
    the planted tagged training run show with the generator's amounts (data/samples/PLANTED.json)."""
    import finops_kit as fk

    _, texts = rendered
    text = texts["ai_unit_economics"]
    side = REPO / "data" / "samples" / "_ai_units"
    planted = json.loads((REPO / "data" / "samples" / "PLANTED.json").read_text())["ai_units"]
    sc = headline[2]
    m = fk.metrics(sc.con, sc, gpu_metrics=side / "gpu", host_map=side / "gpu" / "hosts.csv",
                   runs_file=side / "training_runs.csv").ai_units.iloc[0]
    idle = _one(r"(\$[\d,]+\.\d\d)\*?\*? was paid for \*?\*?([\d,]+) idle GPU-hours", text, "idle GPU dollars")
    assert idle[0] == money(m["idle_cost"]) and idle[1] == f"{m['idle_gpu_hours']:,.0f}"
    dev = planted["idle_gpu"]
    # a table row: from the resource id (or run id) to the next row's id
    row = _one(re.escape(dev["resource_id"]) + r"(.*?)(?= i-0| //compute|\n|$)", text, "planted idle instance")
    assert money(float(dev["idle_cost"])) in row and money(float(dev["schedule_savings"])) in row
    run = planted["training_run"]
    row = _one(re.escape(run["run_id"]) + r"(.*?)(?=\n|$)", text, "planted training run")
    cells = [c.strip() for c in row.split(" | ")]
    assert run["team"] in cells[:4] and run["identified_by"] in cells[:4] and money(float(run["cost"])) in cells


def test_no_report_run_writes_into_a_live_only_widget(rendered):
    """A report run never feeds an ``ipywidgets.Output`` of a live-only explorer: those are not shown in a report,
    and nbclient's capture of Output-widget messages is where report runs stalled until the 600 s cell timeout
    (spot_analysis in the demo, nbclient issue 312). papermill keeps every widget's state in the executed .ipynb,
    so an Output widget that received output during the run is visible there."""
    out, texts = rendered
    books = sorted(out.glob("*.ipynb"))
    assert len(books) >= len(CURATED)
    fed = []
    for book in books:
        meta = json.loads(book.read_text(encoding="utf-8"))["metadata"]
        state = meta.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        fed += [f"{book.stem}: {model_id}" for model_id, s in state.items()
                if s.get("model_name") == "OutputModel" and s.get("state", {}).get("outputs")]
    assert fed == []
