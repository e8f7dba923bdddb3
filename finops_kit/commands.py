"""Warehouse commands of the CLI: ingest, reconcile, formats, export."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import FinopsError


def configure_parser(p: argparse.ArgumentParser, command: str) -> None:
    if command in ("ingest", "reconcile", "export"):
        p.add_argument("--warehouse", help="warehouse file or FOCUS dataset (folder or s3://bucket/prefix; default: "
                            "$FINOPS_WAREHOUSE or data/warehouse.duckdb)")
    if command == "ingest":
        p.add_argument("paths", nargs="+", metavar="PATH_OR_GLOB", help="files, globs, folders or s3://bucket/prefix/")
        p.add_argument("--format", default="auto", dest="source_format",
                       help="source format (default: auto-detect); see 'finops-kit formats'")
        p.add_argument("--cache-dir", help="where s3:// downloads are kept (default: data/cache/s3)")
        p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
        p.add_argument("--dedupe", action="store_true",
                       help="drop rows that are exact copies of a charge in another file of this call (printed with "
                            "their count) instead of refusing them; two runs of one Azure export that also differ "
                            "are refused even so (a differing row may be a revision)")
        p.add_argument("--replace", action="store_true",
                       help="replace a stored billing period even when this input does not cover all its usage days "
                            "(default: refuse such a partial replacement)")
        p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                       help="duckdb (default): into the warehouse file; spark: on Apache Spark into the partitioned "
                            "FOCUS dataset given by --dataset (needs finops-kit[spark] and Java 17)")
        p.add_argument("--dataset", help="--engine spark: the dataset folder written (focus/provider=../"
                                         "billing_period=../*.parquet, tables/, finops-dataset.json), or "
                                         "s3://bucket/prefix (written to a local mirror, then uploaded)")
        p.add_argument("--spark-master", help="--engine spark: local[*] (default), spark://host:7077 or "
                                              "sc://host:15002 (Spark Connect)")
        p.add_argument("--keep-source-columns", action="store_true",
                       help="AWS CUR: keep every source column the FOCUS mapping does not use as an x_ column "
                            "(default: the curated list in finops_kit/data/aws_cur_extra_columns.csv)")
    elif command == "export":
        out = p.add_mutually_exclusive_group(required=True)
        out.add_argument("--out", help="output file (.parquet or .csv)")
        out.add_argument("--dataset", metavar="DIR",
                         help="write the whole warehouse as a FOCUS dataset folder instead: hive-partitioned parquet "
                              "(focus/provider=/billing_period=), its other tables and finops-dataset.json; "
                              "'fk.connect(DIR)' and every --warehouse open it read-only; DIR may be "
                              "s3://bucket/prefix (written to a local mirror, then uploaded, manifest last)")
        p.add_argument("--where", help="optional SQL filter on the FOCUS table, e.g. \"ProviderName = 'AWS'\"")
        p.add_argument("--focus-version", default="1.2", choices=("1.2", "1.3"),
                       help="FOCUS version of the file: 1.2 (default, the warehouse's schema) or 1.3 Cost and Usage")


def run(args: argparse.Namespace, command: str) -> int:
    if command == "ingest" and args.engine == "spark":
        return _ingest_spark(args)
    if command == "ingest":
        from .ingest import ingest
        from .warehouse import removed_if_failed

        with removed_if_failed(args.warehouse):  # a failed ingest leaves no new folder or empty warehouse
            result = ingest(args.paths, warehouse=args.warehouse, source_format=args.source_format,
                            cache_dir=args.cache_dir, progress=False if args.no_progress else None,
                            keep_source_columns=args.keep_source_columns, dedupe=args.dedupe,
                            replace=args.replace)
        return _print_ingest(result)
    if command == "reconcile":
        return _reconcile(args)
    if command == "formats":
        from .sources import registry

        for name, cls in registry().items():
            print(f"{name:12s} {cls.description}")
        return 0
    if command == "export":
        return _export(args)
    raise FinopsError(f"unknown command {command}")


def _ingest_spark(args: argparse.Namespace) -> int:
    """``finops-kit ingest --engine spark``: the same mapping run on Spark into a partitioned dataset."""
    from .errors import ConfigError
    from .spark import ingest_spark

    if not args.dataset:
        raise ConfigError("--engine spark writes a partitioned dataset: pass --dataset FOLDER")
    if args.warehouse:
        raise ConfigError("--engine spark writes --dataset FOLDER, not a warehouse file: drop --warehouse")
    result = ingest_spark(args.paths, args.dataset, master=args.spark_master, source_format=args.source_format,
                          cache_dir=args.cache_dir, keep_source_columns=args.keep_source_columns,
                          dedupe=args.dedupe, replace=args.replace)
    return _print_ingest(result)


def _print_ingest(result: Any) -> int:
    """What an ingest prints, whichever engine ran it: skipped files, dropped copies and notes on stderr; the
    summary and the data-quality findings on stdout."""
    from .quality import finding_lines

    for s in result.skipped:
        print(f"skipped {s['path']}: {s['reason']}", file=sys.stderr)
    for d in result.dropped:
        print(f"dropped {d['rows']:,} duplicate row(s) of {d['path']}: exact copies of charges in {d['first']}",
              file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.summary())
    findings = [f for r in (getattr(result, "parts", None) or [result]) for f in r.quality]
    for line in finding_lines(findings):
        print(line)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from .warehouse import connect, reconciliation_table

    con = connect(args.warehouse, read_only=True, quiet=True)
    rows = reconciliation_table(con).fetchall()
    cols = ["format", "ingest", "period", "currency", "src rows", "focus rows", "source billed", "BilledCost",
            "source amortized", "EffectiveCost", "ok"]
    if not rows:
        print("the warehouse holds no ingests yet")
        return 0
    table = [cols] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
    for r in table:
        print("  ".join(v.rjust(w) if i >= 4 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))))
    failed = sum(1 for r in rows if not r[-1])
    print(f"{len(rows)} period/currency total(s), {failed} failing")
    return 1 if failed else 0


def _fmt(v: object) -> str:
    from decimal import Decimal

    if isinstance(v, Decimal):
        return f"{v:,.6f}"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return "" if v is None else str(v)


def _export(args: argparse.Namespace) -> int:
    from .export import export_focus
    from .warehouse import connect

    if args.dataset:
        return _export_dataset(args)
    con = connect(args.warehouse, read_only=True, quiet=True)
    try:
        n = export_focus(con, args.out, where=args.where, focus_version=args.focus_version)
    finally:
        con.close()
    print(f"wrote {n:,} rows to {args.out}")
    return 0


def _export_dataset(args: argparse.Namespace) -> int:
    """``export --dataset DIR``: the whole warehouse, so that the dataset carries its reconciliation proof (a
    filtered or FOCUS 1.3 copy would not reconcile, hence no --where / --focus-version here)."""
    from .dataset import writable, write_dataset
    from .errors import ConfigError
    from .warehouse import connect

    if args.where or args.focus_version != "1.2":
        raise ConfigError("--dataset writes the whole warehouse as stored (FOCUS 1.2 with its reconciliation); "
                          "--where and --focus-version apply to --out files only")
    con = connect(args.warehouse, read_only=True, quiet=True)
    try:
        with writable(args.dataset) as folder:  # s3://bucket/prefix: written to its mirror, then published
            m = write_dataset(con, folder)
    finally:
        con.close()
    print(f"wrote FOCUS dataset {args.dataset}: {m.rows:,} rows in {len(m.raw.get('partitions', []))} "
          f"partition(s) (provider, billing_period), tables {', '.join(m.tables)}")
    return 0
