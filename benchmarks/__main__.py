"""``python -m benchmarks [--rows 1000000,10000000] [--skip-peer]`` (= ``make bench``).

``python -m benchmarks forecast-calibration [--series 250]`` instead measures the forecast's interval coverage
(:mod:`benchmarks.forecast_calibration`); ``python -m benchmarks spark [--rows 1000000]`` only the Spark ingest
beside the DuckDB ingest (:mod:`benchmarks.spark_bench`, also part of the default run unless ``--skip-spark``).

For each size N, in one run, side by side:

* **finops-kit**: ``finops-kit ingest <legacy CUR N rows>.csv.gz --format aws-cur`` into a fresh warehouse file
  (full path: read, map to FOCUS 1.2, cast to DECIMAL, reconcile, commit);
* **duckdb floor**: a bare ``CREATE TABLE AS SELECT * FROM read_csv(..., all_varchar)`` of the same file into a
  DuckDB file — the practical floor for reading and persisting those bytes;
* **focus-converter 1.0.0** (FinOps Foundation), in its own virtual environment created here, converting its
  own AWS legacy CUR sample replicated to N rows (the generated file is not in a shape it accepts). finops-kit and
  the DuckDB floor are also run on that same file, so that the peer ratios compare like with like and show how
  much faster than the peer anything built on DuckDB can be on it.

Every tool runs in a child process; wall time is measured around it and peak RSS is the child's
``ru_maxrss`` (a wrapper process reports RUSAGE_CHILDREN, so grandchildren are included). The input files are
made by the sample generator (:func:`finops_kit.samples.aws_cur_legacy.write_benchmark_file`), streamed
through DuckDB, never built in pandas.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FINOPS_SHARED", REPO.parent / "shared"))
PEER_SAMPLE = SHARED / "corpus/raw/aws/legacy_cur/focus_converters__sample-anonymous-aws-export-dataset.csv"
PEER_PINS = ["focus-converter==1.0.0", "multimethod<2", "click<8.2"]

_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "dt = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(json.dumps({'seconds': dt, 'peak_rss': rss, 'rc': p.returncode, 'err': p.stderr[-2000:]}))\n"
)


def measure(argv: list[str], env: dict | None = None) -> dict:
    """Run ``argv`` in a child of a small wrapper; return seconds, peak RSS bytes, return code, stderr tail."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, env=env)
    if out.returncode != 0 or not out.stdout.strip():
        return {"seconds": float("nan"), "peak_rss": 0, "rc": out.returncode, "err": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_input(work: Path, rows: int) -> Path:
    from finops_kit.samples.aws_cur_legacy import write_benchmark_file

    path = work / f"legacy-cur-{rows}.csv.gz"
    if not path.exists():
        t = time.perf_counter()
        info = write_benchmark_file(path, rows)
        print(f"  generated {info['rows']:,} rows x {info['columns']} columns -> {path} "
              f"({path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - t:.0f} s)", flush=True)
    return path


def run_finops_kit(work: Path, data: Path) -> dict:
    wh = work / "bench-warehouse.duckdb"
    for p in (wh, Path(str(wh) + ".wal")):
        p.unlink(missing_ok=True)
    exe = str(Path(sys.executable).with_name("finops-kit"))
    env = {**os.environ, "TERM": "dumb"}
    return measure([exe, "ingest", str(data), "--format", "aws-cur", "--warehouse", str(wh)], env=env)


def run_floor(work: Path, data: Path) -> dict:
    db = work / "bench-floor.duckdb"
    Path(str(db) + ".wal").unlink(missing_ok=True)
    db.unlink(missing_ok=True)
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "con.execute(\"CREATE TABLE cur AS SELECT * FROM read_csv(?, all_varchar = true)\", [sys.argv[2]]); "
            "con.close()")
    return measure([sys.executable, "-c", code, str(db), str(data)])


def peer_venv(work: Path) -> Path | None:
    venv = work / "focus-converter-venv"
    py = venv / "bin" / "python"
    if py.exists():
        return py
    print("  creating focus-converter 1.0.0 venv (pip install; needs network once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    got = subprocess.run([str(py), "-m", "pip", "install", "--quiet", *PEER_PINS], capture_output=True, text=True)
    if got.returncode != 0:
        print(f"  focus-converter install failed: {got.stderr.strip().splitlines()[-1:]}", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return py


def peer_input(work: Path, rows: int) -> Path:
    """focus-converter's own legacy CUR sample, data rows repeated to ``rows`` (header once)."""
    folder = work / f"peer-{rows}"
    path = folder / "cur.csv"
    if path.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    lines = PEER_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header)
        written = 0
        while written < rows:
            chunk = body[: rows - written]
            fh.writelines(chunk)
            written += len(chunk)
    return folder


def run_peer(work: Path, py: Path, rows: int) -> dict:
    data = peer_input(work, rows)
    export = work / f"peer-out-{rows}"
    shutil.rmtree(export, ignore_errors=True)
    return measure([str(py), "-m", "focus_converter.main", "convert", "--provider", "aws-cur", "--data-format",
                    "csv", "--data-path", str(data / "cur.csv"), "--export-path", str(export),
                    "--no-export-include-source-columns"])


def fmt_result(r: dict | None) -> tuple[str, str]:
    if r is None:
        return "skipped", "-"
    if r["rc"] != 0:
        return f"failed rc={r['rc']}", f"{r['peak_rss'] / 2**30:.2f} GiB"
    return f"{r['seconds']:.1f} s", f"{r['peak_rss'] / 2**30:.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spark"]:
        from . import spark_bench

        return spark_bench.main(argv[1:])
    if argv[:1] == ["forecast-calibration"]:
        from . import forecast_calibration

        return forecast_calibration.main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000000,10000000", help="comma-separated sizes (default 1M,10M)")
    ap.add_argument("--skip-peer", action="store_true", help="do not run focus-converter")
    ap.add_argument("--skip-spark", action="store_true",
                    help="do not run the Spark ingest (benchmarks/spark_bench.py; needs pyspark and Java)")
    ap.add_argument("--work", default=os.environ.get("FINOPS_BENCH_DIR", "/tmp/finops-kit-bench"),
                    help="scratch folder for inputs, venv and outputs")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--reports", action="store_true",
                    help="also time the curated report suite against empty parameterized notebooks (needs make demo)")
    ap.add_argument("--only-reports", action="store_true", help="time only the report suite")
    args = ap.parse_args(argv)
    if args.reports or args.only_reports:
        from . import reports_bench

        rc = reports_bench.main([])
        if args.only_reports:
            return rc
    sizes = [int(x.replace("_", "")) for x in args.rows.split(",") if x.strip()]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    py = None
    if not args.skip_peer:
        if not PEER_SAMPLE.exists():
            print(f"  focus-converter sample not found at {PEER_SAMPLE}; skipping the peer", flush=True)
        else:
            py = peer_venv(work)
    results = []
    for n in sizes:
        print(f"== {n:,} line items", flush=True)
        data = make_input(work, n)
        fk = run_finops_kit(work, data)
        print(f"  finops-kit       {' / '.join(fmt_result(fk))}", flush=True)
        if fk["rc"] != 0 and fk["err"].strip():
            print("  finops-kit error: " + fk["err"].strip().splitlines()[-1], flush=True)
        floor = run_floor(work, data)
        print(f"  duckdb floor    {' / '.join(fmt_result(floor))}", flush=True)
        peer = run_peer(work, py, n) if py else None
        same = same_floor = None
        if PEER_SAMPLE.exists() and not args.skip_peer:
            # finops-kit and the floor on exactly the peer's input, so the peer ratios compare like with like
            same = run_finops_kit(work, peer_input(work, n) / "cur.csv")
            print(f"  finops-kit on the peer's input {' / '.join(fmt_result(same))}", flush=True)
            same_floor = run_floor(work, peer_input(work, n) / "cur.csv")
            print(f"  duckdb floor on the peer's input {' / '.join(fmt_result(same_floor))}", flush=True)
        if peer is not None:
            print(f"  focus-converter {' / '.join(fmt_result(peer))}", flush=True)
            if peer["rc"] != 0 and peer["err"].strip():
                print("  focus-converter error: " + peer["err"].strip().splitlines()[-1], flush=True)
        spark = None
        if not args.skip_spark:
            from . import spark_bench

            why = spark_bench.spark_available()
            if why:
                print(f"  spark skipped: {why}", flush=True)
            else:
                spark = spark_bench.bench(measure, fmt_result, work, data, n)
        results.append({"rows": n, "finops_kit": fk, "duckdb_floor": floor, "focus_converter": peer,
                        "finops_kit_on_peer_input": same, "duckdb_floor_on_peer_input": same_floor,
                        "spark": spark})
    print()
    head = (f"{'rows':>12} | {'finops-kit':>20} | {'duckdb floor':>20} | {'focus-converter':>20} | "
            f"{'fk/floor time':>13} | {'fc/fk time':>10} | {'fc/fk RSS':>9} | {'fc/floor time':>13}")
    print(head)
    print("-" * len(head))
    for r in results:
        fk, fl, fc = r["finops_kit"], r["duckdb_floor"], r["focus_converter"]
        same = r["finops_kit_on_peer_input"] or fk

        def cell(x):
            t, m = fmt_result(x)
            return f"{t} / {m}"

        def ratio(a, b, key):
            ok = a and b and a["rc"] == 0 and b["rc"] == 0 and b[key]
            return f"{a[key] / b[key]:.2f}x" if ok else "-"

        print(f"{r['rows']:>12,} | {cell(fk):>20} | {cell(fl):>20} | {cell(fc):>20} | "
              f"{ratio(fk, fl, 'seconds'):>13} | {ratio(fc, same, 'seconds'):>10} | {ratio(fc, same, 'peak_rss'):>9} | "
              f"{ratio(fc, r['duckdb_floor_on_peer_input'], 'seconds'):>13}")
    print("(fc/fk ratios use finops-kit on the peer's own input file when it was measured; fc/floor is the most any\n"
          " DuckDB-based tool could be faster than focus-converter on that file: a bare read+write of it)")
    print("\ntargets (issue 2): finops-kit <= 1.5x the floor in time; at 1M >= 3x faster and >= 5x less peak RSS "
          "than focus-converter; <= 1.5 GB peak RSS at 10M; time linear in rows")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
