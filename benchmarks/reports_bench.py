"""Report suite time vs N x an empty parameterized notebook (the floor: kernel start + papermill + export).

    python -m benchmarks.reports_bench [--warehouse data/warehouse.duckdb] [--notebooks-dir notebooks]
                                       [--jobs 1,2]

Both are measured the way ``finops-kit report --all`` runs them: in ONE process, with the Vega bundle and the
widget manager read once per run, ``--jobs`` reports at once (default: one at a time and two at a time, each
against empty notebooks run the same way). The difference between the two numbers is what the notebooks
themselves cost (queries, fits, charts, HTML size). Target (issue 17): ratio <= 6x.

The suite is timed twice per setting, in a fit cache (:mod:`finops_kit.fitcache`) and a query result cache
(:mod:`finops_kit.querycache`) of its own that start empty:

* **first run**: nothing computed yet for this warehouse (every model fit made, every query run -- once: a
  kernel reuses what another kernel of the run already asked);
* **re-run**: the same warehouse again (``make bench`` after ``make demo``, a scheduled re-run): the forecast
  fits and the cached aggregates come from the caches, every figure identical.

The floor (the empty notebooks) is timed ``--floor-runs`` times (default 3) and its median is the ratio's
denominator, every time printed: a single timing of six 0.6 s notebooks moved by a third between runs (the first
kernel of a process starts slower; a kernel caught in ipykernel's shutdown race costs 0.6 s more), and with it the
ratio, while the suite's own time moved by 2%.

The machine's load (at the end of each suite run) is printed with the numbers, and so is the CPU time (user+sys)
of this process and of the kernels: on a shared machine both the suite and the empty notebooks slow down, so the
ratio moves less than the seconds, and the CPU time is the figure that compares two versions under load.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from finops_kit import fitcache, querycache, report
from finops_kit.config import load_config


def _empty_notebook(path: Path) -> Path:
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('warehouse = "data/warehouse.duckdb"\nconfig_path = "finops.yaml"\nn = 1')
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Empty"), params, nbformat.v4.new_code_cell("n + 1")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


@dataclass
class Timed:
    """One timed run: wall seconds, CPU seconds (user+sys) of this process and of the kernels it started, load."""

    wall: float
    results: list
    cpu_runner: float
    cpu_kernels: float
    load: str

    def cpu(self) -> str:
        return f"CPU {self.cpu_runner + self.cpu_kernels:.1f} s (runner {self.cpu_runner:.1f}, kernels {self.cpu_kernels:.1f})"


def _cpu(who: int) -> float:
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime


def _timed_run(paths: list[Path], warehouse: Path, out: Path, config: str | None, workers: int | None) -> Timed:
    """Wall and CPU time of one run. The kernels' CPU is this process's reaped children's: every kernel has exited
    and been waited for when run_jobs returns. CPU time is the figure to compare on a loaded machine, where the
    wall clock also measures the other processes."""
    infos = [report.read_notebook_info(p) for p in paths]
    # the config's reports.parameters, as `make demo` passes them (the AI report's sample side files)
    defaults = ((load_config(config).get("reports") or {}).get("parameters") or {}) if config else {}
    jobs = report.plan(infos, {}, defaults, str(warehouse.resolve()), config)
    c0, k0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    results = report.run_jobs(jobs, out, timeout_cell=600, timeout_notebook=1800, workers=workers)
    wall = time.perf_counter() - t0
    return Timed(wall, results, _cpu(resource.RUSAGE_SELF) - c0, _cpu(resource.RUSAGE_CHILDREN) - k0, _load())


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load unknown"


def _jobs_list(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs {text!r}: expected numbers such as 1,2") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"--jobs {text!r}: expected numbers of 1 or more")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reports_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", default="data/warehouse.duckdb")
    ap.add_argument("--notebooks-dir", default="notebooks")
    ap.add_argument("--config", default="finops.yaml")
    ap.add_argument("--jobs", type=_jobs_list, default=[1, 2],
                    help="reports at once, one setting or several (default: 1,2)")
    ap.add_argument("--no-rerun", action="store_true", help="time the first run only (no re-run with cached fits)")
    ap.add_argument("--floor-runs", type=int, default=3,
                    help="times the empty notebooks are timed; the median is the floor (default 3)")
    args = ap.parse_args(argv)
    warehouse = Path(args.warehouse)
    suite = report.discover(Path(args.notebooks_dir))
    if not warehouse.is_file() or not suite:
        print(f"reports: skipped (need {warehouse} and notebooks in {args.notebooks_dir}; run 'make demo' first)")
        return 0
    config = str(Path(args.config).resolve()) if Path(args.config).is_file() else None
    n = len(suite)
    ok = True
    saved = {env: os.environ.get(env) for env in (fitcache.ENV, querycache.ENV)}
    lines = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            empties = [_empty_notebook(root / f"empty_{i}.ipynb") for i in range(n)]
            for jobs in args.jobs:
                workers = min(n, jobs)
                # the kernels inherit both: empty at first
                os.environ[fitcache.ENV] = str(root / f"fits-{jobs}")
                os.environ[querycache.ENV] = str(root / f"queries-{jobs}")
                floors = sorted((_timed_run(empties, warehouse, root / f"empty-out-{jobs}-{i}", config, jobs)
                                 for i in range(max(1, args.floor_runs))), key=lambda t: t.wall)
                empty = floors[len(floors) // 2]  # the median run
                floor_text = ", ".join(f"{t.wall:.1f}" for t in floors)
                runs = [("first run", _timed_run(suite, warehouse, root / f"suite-{jobs}", config, jobs))]
                if not args.no_rerun:
                    runs.append(("re-run", _timed_run(suite, warehouse, root / f"rerun-{jobs}", config, jobs)))
                for label, timed in runs:
                    results = timed.results
                    out = root / (f"suite-{jobs}" if label == "first run" else f"rerun-{jobs}")
                    sizes = {r.name: (out / r.html).stat().st_size for r in results}
                    lines.append(f"reports, {workers} at once, {label}: suite of {n} notebook(s) {timed.wall:.1f} s vs "
                                 f"{n} x empty parameterized notebook {empty.wall:.1f} s (median of {floor_text} s); ratio "
                                 f"{timed.wall / empty.wall:.1f}x (target <= 6x; {timed.load}); suite {timed.cpu()}, "
                                 f"empty {empty.cpu()}")
                    print(lines[-1], flush=True)
                    for r in results:
                        print(f"  {r.name:<28} {r.status:<8} {r.duration_s:6.1f} s  {sizes[r.name] / 1e6:5.2f} MB")
                    ok = ok and all(r.status == "ok" for r in results)
    finally:
        for env, value in saved.items():
            if value is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = value
    if len(lines) > 1:
        print("summary:")
        for line in lines:
            print("  " + line)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
