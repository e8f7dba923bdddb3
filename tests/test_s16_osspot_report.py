"""The spot report plans for the operating system it is given (OS review, finding 7) and splits its rate table by
operating system (finding 6), rendered over the sample warehouse as `make demo` does."""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

from finops_kit import report, spot

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

#: g5.12xlarge us-east-1 Windows on demand: the Linux $5.672/h + 48 vCPU x $0.046 Windows licence (the review's)
WINDOWS_PRICES = """instance_type,region,operating_system,usd_per_hour,price_date,source
g5.12xlarge,us-east-1,Linux,5.672,2026-09,test
g5.12xlarge,us-east-1,Windows,7.88,2026-09,test (Linux + 48 vCPU x 0.046)
"""


def _render(tmp_path: Path, sample_warehouse: str, params: list[str]):
    info = report.read_notebook_info(REPO / "notebooks" / "spot_analysis.ipynb")
    jobs = report.plan([info], report.parse_parameters(params), {}, str(Path(sample_warehouse).resolve()),
                       str(REPO / "finops.yaml"))
    (r,) = report.run_jobs(jobs, tmp_path, timeout_cell=300, timeout_notebook=900)
    return r


def _text(nb: nbformat.NotebookNode, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    out = []
    for o in cell.outputs:
        data = o.get("data", {})
        out.append(o.get("text") or data.get("text/markdown") or data.get("text/html") or "")
    text = html.unescape(re.sub(r"<[^>]+>", " ", " ".join(out)))
    return re.sub(r"\s+", " ", re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text))


def test_windows_job_is_ranked_and_planned_with_windows_figures(sample_warehouse, tmp_path):
    """Before: no `operating_system` parameter (a ConfigError at planning), and the ranking and the job used Linux
    Advisor figures whatever the fleet ran: g5 ranked 15th and g5.12xlarge's band read '>20%'. With
    operating_system=Windows: g5 ranks 4th, the job's band is '<5%', its on-demand price $7.88/h, and the report
    says Windows in the ranking's caption, the job spec and the savings report's assumptions."""
    prices = tmp_path / "prices.csv"
    prices.write_text(WINDOWS_PRICES)
    r = _render(tmp_path, sample_warehouse, ["operating_system=windows", f"price_table={prices}",
                                             "job_instance_type=g5.12xlarge", "job_nodes=1", "job_gpu_hours=400",
                                             "mc_runs=200"])
    assert r.status == "ok", r.error
    nb = nbformat.read(str(tmp_path / r.ipynb), as_version=4)
    ranking = _text(nb, "05e0561b")
    assert "Families ranked by net saving of a reference 100 h single-node job on Windows" in ranking
    assert re.search(r" 4 g5 NVIDIA A10G 8 60 <5% >20% ", ranking)
    spec = _text(nb, "a5590577")
    assert "g5.12xlarge / us-east-1 / Windows" in spec and "$7.8800/h (Windows, price table)" in spec
    # the demo cache holds Linux/UNIX prices only: the Windows job is priced from the Windows Advisor entry
    assert "on-demand x (1 - Advisor savings); no cached Windows spot price (product_descriptions)" in spec
    savings = _text(nb, "5a27db7f")
    adv = spot.load_advisor().get("g5.12xlarge", "us-east-1", "Windows")
    assert f"Spot Advisor band {adv['band_label']} of g5.12xlarge in us-east-1" in savings
    assert "Assumptions: g5.12xlarge on Windows in us-east-1, 1 node(s); on-demand $7.88/h" in savings
    # finding 6: the rate table names each row's operating system, the rates right after it
    rates = _text(nb, "2ba5482f")
    assert "Effective hourly rates actually paid per operating system" in rates
    assert "Instance type Operating system Pricing Rate per instance-hour" in rates
    assert re.search(r"AWS us-east-1 g5\.12xlarge Linux On-demand \$5\.67", rates)


def test_an_unknown_operating_system_stops_the_report_in_one_line(sample_warehouse, tmp_path):
    r = _render(tmp_path, sample_warehouse, ["operating_system=Linux/UNIX"])
    assert r.status != "ok"
    assert "operating_system: expected one of Linux, Windows (the Spot Advisor's operating systems), got " \
           "'Linux/UNIX'" in str(r.error)
