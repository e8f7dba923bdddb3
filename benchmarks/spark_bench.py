"""The Spark ingest beside the DuckDB ingest (``python -m benchmarks``, or ``python -m benchmarks spark``).

The benchmark's legacy CUR file holds every billing period in one file; a real delivery is one folder per month,
and the Spark ingest parallelizes over files (one task per format and billing period). So the same rows are
first split into one gzip CSV per billing period (``<work>/monthly-<N>/period=<YYYY-MM>/*.csv.gz``, DuckDB's
partitioned COPY, the columns unchanged), and on exactly those files, each in a child process:

* **duckdb**: ``finops-kit ingest <monthly folder> --warehouse new.duckdb`` (the default engine);
* **spark local[2]** and **spark local[1]**: ``finops-kit ingest <monthly folder> --engine spark --dataset new
  --spark-master local[K]`` (K executor cores; includes the JVM start, ~5 s).

Printed: seconds, the largest process's peak RSS, spark/duckdb and local[1]/local[2] time ratios. The 1 vs 2
core ratio is what a cluster's executors multiply: it is the basis of the README's on-paper estimate for 10^9
rows a month.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def spark_available() -> str | None:
    """None when pyspark and Java are there, else why the Spark rows are skipped."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark not installed (pip install -e '.[spark]')"
    from finops_kit.spark import java_available

    return None if java_available() else "no Java (apt-get install openjdk-17-jre-headless)"


def monthly_input(work: Path, data: Path, rows: int) -> Path:
    """The benchmark file's rows as one gzip CSV per billing period (made once per size)."""
    import duckdb

    folder = work / f"monthly-{rows}"
    if folder.is_dir() and any(folder.rglob("*.csv.gz")):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"""COPY (SELECT *, left("bill/BillingPeriodStartDate", 7) AS period
                          FROM read_csv('{data}', all_varchar = true))
                    TO '{folder}' (FORMAT csv, COMPRESSION gzip, PARTITION_BY (period), FILE_EXTENSION 'csv.gz')""")
    con.close()
    n = len(list(folder.rglob("*.csv.gz")))
    print(f"  split into {n} monthly files -> {folder} ({time.perf_counter() - t:.0f} s)", flush=True)
    return folder


def run_duckdb(measure, work: Path, folder: Path) -> dict:
    wh = work / "bench-monthly.duckdb"
    for p in (wh, Path(str(wh) + ".wal")):
        p.unlink(missing_ok=True)
    exe = str(Path(sys.executable).with_name("finops-kit"))
    return measure([exe, "ingest", str(folder), "--format", "aws-cur", "--warehouse", str(wh), "--no-progress"],
                   env={**os.environ, "TERM": "dumb"})


def run_spark(measure, work: Path, folder: Path, cores: int) -> dict:
    out = work / f"bench-dataset-local{cores}"
    shutil.rmtree(out, ignore_errors=True)
    exe = str(Path(sys.executable).with_name("finops-kit"))
    return measure([exe, "ingest", str(folder), "--format", "aws-cur", "--engine", "spark", "--dataset", str(out),
                    "--spark-master", f"local[{cores}]"], env={**os.environ, "TERM": "dumb"})


def loaded(measure):
    """``measure`` that also records the 1-minute load average before and after the run: the machine may be
    shared, and a time means little without the load it was taken under."""
    def run(argv: list[str], env: dict | None = None) -> dict:
        before = os.getloadavg()[0]
        r = measure(argv, env=env)
        r["load"] = [round(before, 2), round(os.getloadavg()[0], 2)]
        return r

    return run


def _fmt(fmt_result, r: dict) -> str:
    return " / ".join(fmt_result(r)) + f" (load average {r['load'][0]:.1f} -> {r['load'][1]:.1f})"


def bench(measure, fmt_result, work: Path, data: Path, rows: int, spark_cores: tuple[int, ...] = (2, 1)) -> dict:
    """Measure the three runs for one size; returns their results and prints them with the ratios."""
    measure = loaded(measure)
    folder = monthly_input(work, data, rows)
    res = {"rows": rows, "duckdb_monthly": run_duckdb(measure, work, folder)}
    print(f"  duckdb (monthly files)   {_fmt(fmt_result, res['duckdb_monthly'])}", flush=True)
    for cores in spark_cores:
        r = run_spark(measure, work, folder, cores)
        res[f"spark_local{cores}"] = r
        print(f"  spark local[{cores}]          {_fmt(fmt_result, r)}", flush=True)
        if r["rc"] != 0 and r["err"].strip():
            print("  spark error: " + r["err"].strip().splitlines()[-1], flush=True)
    if set(spark_cores) != {1, 2}:
        return res
    d, s2, s1 = res["duckdb_monthly"], res["spark_local2"], res["spark_local1"]
    ok = all(x["rc"] == 0 for x in (d, s2, s1))
    if ok:
        res["ratios"] = {"spark2_over_duckdb": s2["seconds"] / d["seconds"],
                         "spark1_over_spark2": s1["seconds"] / s2["seconds"]}
        print(f"  ratios: spark local[2] / duckdb = {res['ratios']['spark2_over_duckdb']:.2f}x; "
              f"local[1] / local[2] = {res['ratios']['spark1_over_spark2']:.2f}x "
              f"(2.00x = time halves with twice the cores)", flush=True)
    return res


def main(argv: list[str]) -> int:
    """``python -m benchmarks spark [--rows 1000000] [--work DIR] [--json FILE]``: only the Spark comparison."""
    import argparse

    from . import __main__ as b

    ap = argparse.ArgumentParser(prog="python -m benchmarks spark", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000000", help="comma-separated sizes (default 1M)")
    ap.add_argument("--work", default=os.environ.get("FINOPS_BENCH_DIR", "/tmp/finops-kit-bench"))
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--spark-cores", default="2,1", help="local[K] runs, comma-separated (default 2,1)")
    args = ap.parse_args(argv)
    why = spark_available()
    if why:
        print(f"spark benchmark skipped: {why}")
        return 1
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in [int(x.replace("_", "")) for x in args.rows.split(",") if x.strip()]:
        print(f"== {n:,} line items", flush=True)
        results.append(bench(b.measure, b.fmt_result, work, b.make_input(work, n), n,
                             tuple(int(c) for c in args.spark_cores.split(","))))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0
