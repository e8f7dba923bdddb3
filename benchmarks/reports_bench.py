"""Report suite time vs N x an empty parameterized notebook (the floor: kernel start + papermill + export).

    python -m benchmarks.reports_bench [--warehouse data/warehouse.duckdb] [--notebooks-dir notebooks]

Both are measured the way ``finops-kit report --all`` runs them: in ONE process, with the Vega bundle and the
widget manager read once per run, up to ``--jobs`` reports at once (default: the cores available, as the CLI). The
difference between the two numbers is what the notebooks themselves cost (queries, charts, HTML size). Target
(issue 17): ratio <= 6x.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nbformat

from finops_kit import report


def _empty_notebook(path: Path) -> Path:
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('warehouse = "data/warehouse.duckdb"\nconfig_path = "finops.yaml"\nn = 1')
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Empty"), params, nbformat.v4.new_code_cell("n + 1")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


def _timed_run(paths: list[Path], warehouse: Path, out: Path, config: str | None,
               workers: int | None) -> tuple[float, list]:
    infos = [report.read_notebook_info(p) for p in paths]
    jobs = report.plan(infos, {}, {}, str(warehouse.resolve()), config)
    t0 = time.perf_counter()
    results = report.run_jobs(jobs, out, timeout_cell=600, timeout_notebook=1800, workers=workers)
    return time.perf_counter() - t0, results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reports_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", default="data/warehouse.duckdb")
    ap.add_argument("--notebooks-dir", default="notebooks")
    ap.add_argument("--config", default="finops.yaml")
    ap.add_argument("--jobs", type=int, default=None, help="reports at once (default: the cores available)")
    args = ap.parse_args(argv)
    warehouse = Path(args.warehouse)
    suite = report.discover(Path(args.notebooks_dir))
    if not warehouse.is_file() or not suite:
        print(f"reports: skipped (need {warehouse} and notebooks in {args.notebooks_dir}; run 'make demo' first)")
        return 0
    config = str(Path(args.config).resolve()) if Path(args.config).is_file() else None
    n = len(suite)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        empties = [_empty_notebook(root / f"empty_{i}.ipynb") for i in range(n)]
        t_empty, _ = _timed_run(empties, warehouse, root / "empty-out", config, args.jobs)
        t_suite, results = _timed_run(suite, warehouse, root / "suite-out", config, args.jobs)
        sizes = {r.name: (root / "suite-out" / r.html).stat().st_size for r in results}
    workers = min(n, args.jobs or report.available_cores())
    print(f"reports: suite of {n} notebook(s) {t_suite:.1f} s vs {n} x empty parameterized notebook "
          f"{t_empty:.1f} s, {workers} at once; ratio {t_suite / t_empty:.1f}x (target <= 6x)")
    for r in results:
        print(f"  {r.name:<28} {r.status:<8} {r.duration_s:6.1f} s  {sizes[r.name] / 1e6:5.2f} MB")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
