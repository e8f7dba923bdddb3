"""``finops-kit ingest --engine spark``: the same normalization on Apache Spark, written as a partitioned dataset.

Why this design (measured, see the commit that added it): sqlglot transpiles the kit's generated mapping SQL to
Spark SQL without complaint, but the result does not run (DuckDB string slicing, ``error()``, list indexing,
``to_json``, reader options), and a second, hand-kept Spark copy of six mappings would drift. So there is **one
expression layer that both engines run**: each Spark task ingests one group of files with the kit's own DuckDB
ingest (:func:`finops_kit.ingest.ingest`: staging, mapping, conformance, quality, its own reconciliation) into a
private DuckDB file on the executor and streams the FOCUS rows back as Arrow batches with the warehouse types. Spark
distributes the file groups, writes the hive-partitioned dataset, and proves it: the normalized totals per billing
period and currency are computed **with Spark SQL over the files it wrote** and compared with the source totals
each task computed from the raw columns (independently of the mapping). Nothing is moved into place unless that
proof holds.

Grouping: AWS CUR / CUR 2.0 files are one task each (their charge identity is in the written rows, so repeats
across tasks are found on Spark); for the other formats the files of one billing period (read from the path:
``BILLING_PERIOD=2026-05``, ``..._202605.csv.gz``) form one task, files without a period in their path one task per
format. A repeated charge across tasks, the same month in two formats, or a replacement key shared by tasks
without a charge identity makes the driver merge those tasks and run them again, so every charge-level rule of
the DuckDB path (repeats refused or ``--dedupe``d, one format per billing period) is decided by the same code on
the same files: the results are identical, only the parallelism differs.

Writing: the touched partitions (and, when the input brings new ``x_`` columns, every partition, since all files
of a dataset hold the manifest's columns) are written to ``_staging-<run>/`` inside the dataset, proven there,
then renamed into place one partition folder at a time; the tables and ``finops-dataset.json`` (through
:mod:`finops_kit.dataset`, then :func:`finops_kit.dataset.validate`) come last, renamed in the same way. A failure
in any step -- the proof, a rename, the tables, the manifest's validation -- leaves the dataset as it was: the
renames done so far are undone and the old versions they set aside put back (:class:`_Swap`).

Executors need ``duckdb`` and ``finops_kit`` importable (true for ``local[*]``; on a cluster install the package
on the nodes or ship it with ``--py-files``), and the input files and the dataset folder must be paths every
node can read and the driver can write (a shared or mounted file system).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, FinopsError, InputError, ReconciliationError
from .quality import Finding
from .schema import LINEAGE_COLUMNS, MONEY, focus_columns
from .sources.base import sql_str
from .warehouse import TOLERANCE

if TYPE_CHECKING:  # pragma: no cover - pyspark is an optional extra
    from pyspark.sql import DataFrame, SparkSession

    from .ingest import Recency

from .dataset import FOCUS_DIR, MANIFEST, PARTITION_KEYS, TABLES_DIR, focus_files

INSTALL_HINT = "pip install 'finops-kit[spark]'"
JAVA_HINT = ("Spark needs Java 17 or newer: install it (Debian: apt-get install openjdk-17-jre-headless) or set "
             "JAVA_HOME")

#: a billing period in a path: CUR 2.0 BILLING_PERIOD=2026-05, legacy CUR 20260501-20260601/, Azure/GCP _202605.
_PERIOD_IN_PATH = re.compile(r"(?<!\d)(20\d\d)-?(0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])?(?!\d)")

_META = "_meta"
_EXTRA = "_extra"


def _pyspark():
    try:
        import pyspark
    except ImportError:
        raise ConfigError(f"--engine spark needs pyspark: {INSTALL_HINT}") from None
    major = int(pyspark.__version__.split(".")[0])
    if major < 4:
        raise ConfigError(f"--engine spark needs pyspark 4.0 or newer (found {pyspark.__version__}): "
                          f"{INSTALL_HINT}")
    return pyspark


def java_available() -> bool:
    """Whether a local Spark can start its JVM (``java`` on PATH or ``JAVA_HOME`` set)."""
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def session(master: str | None = None, *, cores_per_task: int = 1, shuffle_partitions: int | None = None
            ) -> SparkSession:
    """A Spark session for the ingest: ``local[*]`` by default, ``spark://...`` a cluster, ``sc://...`` Spark
    Connect. An existing active session is reused when no master is asked for (a notebook on Databricks)."""
    _pyspark()
    from pyspark.sql import SparkSession

    # pyspark 4.3 warns on every import that pandas 3 is not fully supported; the ingest uses Arrow, not pandas
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

    master = master or os.environ.get("FINOPS_SPARK_MASTER") or "local[*]"
    if master.startswith("sc://"):
        try:
            from pyspark.sql.connect.utils import check_dependencies

            check_dependencies("pyspark.sql.connect")
        except ImportError as exc:
            raise ConfigError(f"--spark-master {master}: Spark Connect needs pyspark's connect client ({exc}): "
                              "pip install 'pyspark[connect]'") from None
        return SparkSession.builder.remote(master).getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None and not os.environ.get("FINOPS_SPARK_MASTER") and master == "local[*]":
        return active
    if master.startswith("local") and not java_available():
        raise ConfigError(JAVA_HINT)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors import the same duckdb and finops_kit
    cores = os.cpu_count() or 2
    builder = SparkSession.builder
    for key, value in local_conf(master).items():
        builder = builder.config(key, value)
    builder = (builder.master(master).appName("finops-kit ingest")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions or max(2, 2 * cores)))
               .config("spark.task.cpus", str(cores_per_task))
               .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("FINOPS_SPARK_LOG_LEVEL", "ERROR"))
    return spark


def _local_cores(master: str) -> int:
    """The cores a ``local``, ``local[N]`` or ``local[*]`` master runs tasks on."""
    m = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\s*\d+)?\])?", master.strip())
    if not m or m.group(1) is None:
        return 1
    return (os.cpu_count() or 2) if m.group(1) == "*" else int(m.group(1))


def local_conf(master: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Settings for a Spark the kit starts itself, sized for the ingest's task output.

    Measured (1M legacy CUR rows in 14 monthly files, ``local[2]``): with Spark's defaults the JVM died with
    ``OutOfMemoryError: Java heap space`` (the Python workers then saw "Connection refused"). In local mode the one
    JVM is driver and executor; its default heap is 1 GB, and the tasks' rows are cached serialized (PySpark's
    storage levels are), by default with Java serialization, whose reader keeps up to 100 objects -- 100 cached
    batches of 10,000 rows, a whole task's output -- reachable while reading them back. Kryo serialization alone,
    or a 2 GB heap alone, made that run pass. Both are set here: Kryo always, the heap (1 GB per local core, at
    least 2 GB, at most a quarter of the RAM) only for a local master and only when the user chose none
    (``SPARK_DRIVER_MEMORY``, ``--driver-memory`` in ``PYSPARK_SUBMIT_ARGS``). A cluster's executors are sized
    by its own configuration."""
    env = os.environ if environ is None else environ
    conf = {"spark.serializer": "org.apache.spark.serializer.KryoSerializer"}
    chosen = env.get("SPARK_DRIVER_MEMORY") or "driver-memory" in env.get("PYSPARK_SUBMIT_ARGS", "") \
        or "spark.driver.memory" in env.get("PYSPARK_SUBMIT_ARGS", "")
    if master.strip().startswith("local") and not chosen:
        try:
            ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
        except (ValueError, OSError, AttributeError):  # not POSIX: keep Spark's default
            return conf
        conf["spark.driver.memory"] = f"{max(1, min(max(2, _local_cores(master)), ram_gb // 4))}g"
    return conf


# ---- file groups ------------------------------------------------------------------------------------------------
def period_of_path(path: str) -> str | None:
    """The billing period a delivery's path names (``YYYY-MM``), or None; only used to group files into tasks."""
    found = _PERIOD_IN_PATH.findall(path.replace("\\", "/"))
    return f"{found[0][0]}-{found[0][1]}" if found else None


#: input bytes one Spark task ingests at most when files are packed together (a single file or billing period
#: larger than this stays one task). The task's rows pass through the JVM as one partition: its size, not the
#: input's, bounds the executor memory a task needs (at 10M rows packing into 2 x cores tasks gave 2.5M rows each).
TASK_BYTES = 32 * 2**20


def file_groups(groups: dict[str, list[str]], tasks: int | None = None, task_bytes: int = TASK_BYTES
                ) -> list[list[str]]:
    """Files per Spark task: the files of one format and one billing period stay together (see the module
    docstring); with ``tasks``, such groups are packed by size (largest first into the lightest task) into that
    many tasks, or more where the input holds more than ``tasks x task_bytes`` bytes, because each task pays a fixed
    cost (a DuckDB warehouse, the quality checks) that dominates for small monthly files, while its memory grows
    with its rows. Packing only ever makes a group larger, which never changes the result."""
    from .sources.base import Source
    from .sources.base import registry as sources

    by_period: dict[tuple[str, str], list[str]] = {}
    for fmt, files in groups.items():
        # formats whose charges carry their identity into the written rows (AWS: line item id and interval) are
        # checked for repeats across tasks on Spark, so their files need not share a task: one unit per file
        per_file = fmt in sources() and sources()[fmt].focus_identity is not Source.focus_identity
        for f in files:
            by_period.setdefault((fmt, f if per_file else (period_of_path(f) or "")), []).append(f)
    units = list(by_period.values())

    def size(files: list[str]) -> int:
        return sum(os.path.getsize(f) for f in files if os.path.exists(f))

    if tasks:
        tasks = max(tasks, -(-sum(size(u) for u in units) // task_bytes))
    if not tasks or len(units) <= tasks:
        return units
    bins: list[tuple[int, list[str]]] = [(0, []) for _ in range(tasks)]
    for unit in sorted(units, key=size, reverse=True):
        i = min(range(len(bins)), key=lambda k: bins[k][0])
        bins[i] = (bins[i][0] + size(unit), bins[i][1] + unit)
    order = {f: n for n, f in enumerate(f for fs in groups.values() for f in fs)}
    return [sorted(files, key=order.__getitem__) for _, files in bins if files]


def default_tasks(spark: SparkSession) -> int | None:
    """How many tasks small files are packed into: twice the cores Spark offers (None when it cannot tell, as
    under Spark Connect: then one task per format and billing period)."""
    try:
        return 2 * int(spark.sparkContext.defaultParallelism)
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        return None


def merge_conflicting(groups: list[list[str]], owners: dict[str, set[int]]) -> list[list[str]]:
    """Groups joined where one key (replacement key or provider/account/period) came from several of them."""
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for ids in owners.values():
        first, *rest = sorted(ids)
        for other in rest:
            parent[find(other)] = find(first)
    merged: dict[int, list[str]] = {}
    for i, files in enumerate(groups):
        merged.setdefault(find(i), []).extend(files)
    return list(merged.values())


# ---- the task: the kit's DuckDB ingest of one group, streamed back as Arrow ------------------------------------
def _column_types() -> dict[str, str]:
    """Warehouse column -> DuckDB type of the FOCUS and lineage columns (x_ pass-through columns are VARCHAR)."""
    types = {c.name: c.duckdb_type for c in focus_columns()}
    types.update(LINEAGE_COLUMNS)
    return types


def _arrow_type(duck: str):
    import pyarrow as pa

    m = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    return {"TIMESTAMP": pa.timestamp("us"), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
            "BOOLEAN": pa.bool_(), "DATE": pa.date32()}.get(duck, pa.string())


def _task_arrow_schema():
    import pyarrow as pa

    fields = [pa.field(n, _arrow_type(t)) for n, t in _column_types().items()]
    fields.append(pa.field(_EXTRA, pa.map_(pa.string(), pa.string())))
    fields.append(pa.field(_META, pa.string()))
    return pa.schema(fields)


def _spark_schema():
    from pyspark.sql import types as T

    def spark_type(duck: str):
        m = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck)
        if m:
            return T.DecimalType(int(m.group(1)), int(m.group(2)))
        return {"TIMESTAMP": T.TimestampNTZType(), "BIGINT": T.LongType(), "DOUBLE": T.DoubleType(),
                "BOOLEAN": T.BooleanType(), "DATE": T.DateType()}.get(duck, T.StringType())

    fields = [T.StructField(n, spark_type(t)) for n, t in _column_types().items()]
    fields.append(T.StructField(_EXTRA, T.MapType(T.StringType(), T.StringType())))
    fields.append(T.StructField(_META, T.StringType()))
    return T.StructType(fields)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def ingest_group(files: list[str], run_id: str, options: dict) -> Iterator:
    """Run the DuckDB ingest on one group of files in a private warehouse file; yield Arrow batches of its FOCUS
    rows (``x_IngestId`` = the Spark run) and, last, one metadata row (what the driver needs: the source totals,
    keys, usage days per key, log and quality rows, or the one-line error)."""
    import duckdb
    import pyarrow as pa

    from .ingest import ingest, ingest_memory_limit
    from .warehouse import connect

    schema = _task_arrow_schema()
    types = _column_types()
    work = tempfile.mkdtemp(prefix="finops-spark-")
    meta: dict[str, Any] = {"files": files, "pid": os.getpid()}
    began = time.perf_counter()
    try:
        con = connect(os.path.join(work, "w.duckdb"), write=True, memory_limit=os.environ.get(
            "FINOPS_MEMORY_LIMIT") or ingest_memory_limit(len(files)))
        try:
            result = ingest(files, con=con, source_format=options["source_format"], progress=False,
                            keep_source_columns=options["keep_source_columns"], dedupe=options["dedupe"])
            have = [r[0] for r in con.execute("DESCRIBE focus").fetchall()]
            extras = [c for c in have if c not in types]
            select = [f"{sql_str(run_id)} AS x_IngestId" if n == "x_IngestId" else
                      f'CAST("{n}" AS VARCHAR) AS "{n}"' if t in ("JSON", "VARCHAR") else f'"{n}"'
                      for n, t in types.items()]  # in the order of the task schema
            packed = (f"map([{', '.join(repr(x) for x in extras)}], [{', '.join(f'{chr(34)}{x}{chr(34)}' for x in extras)}])"
                      if extras else "NULL")
            select.append(f"{packed} AS {_EXTRA}")
            select.append(f"CAST(NULL AS VARCHAR) AS {_META}")
            reader = con.sql(f"SELECT {', '.join(select)} FROM focus").to_arrow_reader(100_000)
            for batch in reader:
                yield pa.RecordBatch.from_arrays(
                    [batch.column(i).cast(schema.field(i).type) for i in range(len(schema))], schema=schema)
            day = "CAST(coalesce(ChargePeriodStart, BillingPeriodStart) AS DATE)"
            meta.update(
                rows=result.rows, extras=extras,
                parts=[{"format": p.source_format, "files": p.files, "rows": p.rows, "dropped": p.dropped,
                        "identity": p.identity,
                        "notes": p.notes, "quality": [_finding_json(f) for f in p.quality]}
                       for p in (result.parts or [result])],
                skipped=result.skipped,
                log=[[_jsonable(v) for v in r] for r in con.execute("SELECT * FROM ingest_log").fetchall()],
                totals=[[_jsonable(v) for v in r] for r in con.execute(
                    "SELECT source_format, billing_period_start, currency, source_rows, source_billed, "
                    "source_effective, focus_rows FROM reconciliation").fetchall()],
                quality=_quality_rows(con),
                key_days=[[k, str(d)] for k, d in con.execute(
                    f"SELECT DISTINCT x_SourceKey, {day} FROM focus ORDER BY 1, 2").fetchall()],
                facets=[[_jsonable(v) for v in r] for r in con.execute(
                    "SELECT DISTINCT ProviderName, BillingAccountId, BillingPeriodStart, "
                    "split_part(x_SourceKey, '|', 1), x_SourceKey FROM focus").fetchall()],
            )
        finally:
            con.close()
    except FinopsError as exc:
        meta["error"] = {"type": type(exc).__name__, "message": str(exc),
                         "file": getattr(exc, "file", None), "row": getattr(exc, "row", None),
                         "column": getattr(exc, "column", None)}
    except duckdb.Error as exc:  # not diagnosed by the ingest: still one line naming the files
        meta["error"] = {"type": "InputError", "message": f"{files[0]}: cannot ingest ({str(exc).splitlines()[0]})",
                         "file": files[0], "row": None, "column": None}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta["seconds"] = round(time.perf_counter() - began, 3)
    arrays = [pa.nulls(1, f.type) for f in schema]
    arrays[-1] = pa.array([json.dumps(meta)], pa.string())
    yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _finding_json(f: Finding) -> dict:
    """A data-quality finding as the task hands it to the driver (JSON; money as text, so nothing is rounded)."""
    return {k: _jsonable(v) for k, v in dataclasses.asdict(f).items()}


def _finding(d: dict) -> Finding:
    """The driver's side of :func:`_finding_json`: the same :class:`~finops_kit.quality.Finding` the DuckDB ingest
    returns, so callers of either engine get one type (money back to exact ``Decimal``)."""
    money = {k: None if d.get(k) is None else Decimal(d[k]) for k in ("billed_cost", "difference")}
    return Finding(**{**d, **money})


def _quality_rows(con) -> list[list]:
    from .quality import TABLE

    try:
        return [[_jsonable(v) for v in r] for r in con.execute(f"SELECT * FROM {TABLE}").fetchall()]
    except Exception:  # noqa: BLE001 - no findings table: no findings
        return []


def _task(run_id: str, options: dict):
    """The function Spark runs on each partition of the group table (one group per partition)."""

    def run(batches):
        for batch in batches:
            for row in batch.to_pylist():
                yield from ingest_group(json.loads(row["files"]), run_id, options)

    return run


# ---- the driver --------------------------------------------------------------------------------------------------
@dataclass
class SparkIngestResult:
    """What one Spark ingest wrote into the dataset."""

    ingest_id: str
    dataset: str
    files: list[str]
    rows: int
    replaced_rows: int
    tasks: int
    formats: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    reconciliation: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    added_to: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quality: list[Finding] = field(default_factory=list)  # as IngestResult.quality (see quality.py)

    def summary(self) -> str:
        periods = sorted({r["billing_period"] for r in self.reconciliation})
        span = f"{periods[0]}..{periods[-1]}" if len(periods) > 1 else (periods[0] if periods else "-")
        msg = (f"ingested {self.rows:,} rows of {', '.join(self.formats)} from {len(self.files)} file(s) on Spark "
               f"({self.tasks} task(s)) into {self.dataset}, billing periods {span}, reconciled "
               f"{len(self.reconciliation)} period/currency total(s) on Spark")
        if self.replaced_rows:
            msg += f", replaced {self.replaced_rows:,} earlier rows"
        if self.added_to:
            msg += f", added to {len(self.added_to)} stored billing period(s) on other usage days"
        if self.dropped:
            msg += f", dropped {sum(d['rows'] for d in self.dropped):,} duplicate source row(s)"
        if self.skipped:
            msg += f", skipped {len(self.skipped)} file(s)"
        return msg


def _raise_task_error(err: dict) -> None:
    cls = {"InputError": InputError, "ReconciliationError": ReconciliationError, "ConfigError": ConfigError}.get(
        err["type"], FinopsError)
    exc = cls(None, err["message"]) if cls is InputError else cls(err["message"])
    if isinstance(exc, InputError):  # the same one line as the DuckDB path, with its parts for callers
        exc.file, exc.row, exc.column = err["file"], err["row"], err["column"]
    raise exc


def _run_tasks(spark: SparkSession, groups: list[list[str]], run_id: str, options: dict
               ) -> tuple[DataFrame, list[dict], list[list[str]]]:
    """Run the groups as Spark tasks until no key comes from two of them: ``(rows, metadata per task, groups)``."""
    from pyspark import StorageLevel

    while True:
        table = spark.createDataFrame([(i, json.dumps(g)) for i, g in enumerate(groups)], "gid INT, files STRING")
        with warnings.catch_warnings():  # pyspark 4.3's pandas-3 FutureWarning; the ingest uses Arrow only
            warnings.simplefilter("ignore", FutureWarning)
            out = table.repartition(len(groups)).mapInArrow(_task(run_id, options), _spark_schema())
        # on disk only: kept in the heap, the cached task output (up to half the heap) left too little for the
        # running tasks at 10M rows (local[2], 2 GB heap: the JVM died); it is read back twice, from local disk
        out = out.persist(StorageLevel.DISK_ONLY)
        metas = [json.loads(r[0]) for r in out.where(f"{_META} IS NOT NULL").select(_META).collect()]
        by_files = {json.dumps(m["files"]): m for m in metas}
        metas = [by_files[json.dumps(g)] for g in groups]  # in group order: the first error is always the same
        owners: dict[str, set[int]] = {}
        for i, m in enumerate(metas):
            for provider, account, period, _family, key in m.get("facets", []):
                owners.setdefault(f"key:{key}", set()).add(i)
                owners.setdefault(f"month:{provider}|{account}|{period}", set()).add(i)
        conflicts = {k: v for k, v in owners.items() if len(v) > 1}
        conflicts = _unresolved(out, metas, conflicts) | _overflowing(metas)
        if not conflicts:
            errors = [m["error"] for m in metas if "error" in m]
            if errors:
                out.unpersist()
                _raise_task_error(errors[0])
            return out, metas, groups
        out.unpersist()
        groups = merge_conflicting(groups, conflicts)


#: the largest magnitude a DECIMAL(38,12) total holds (MONEY): beyond it DuckDB's SUM overflows
_MONEY_LIMIT = Decimal(10) ** 26


def _overflowing(metas: list[dict]) -> dict[str, set[int]]:
    """Source totals (format, billing period, currency) that several tasks share and whose sum no MONEY holds.
    Each task's total fitted, but the DuckDB ingest of the same files sums them in one statement and refuses the
    input with its one line: the tasks are merged so that the DuckDB ingest decides it (the same refusal)."""
    sums: dict[str, list] = {}
    for i, m in enumerate(metas):
        for fmt, period, cur, _n, billed, effective, _mapped in m.get("totals", []):
            acc = sums.setdefault(f"sum:{fmt}|{period}|{cur}", [Decimal(0), Decimal(0), set()])
            acc[0] += Decimal(billed or 0)
            acc[1] += Decimal(effective or 0)
            acc[2].add(i)
    return {k: ids for k, (billed, effective, ids) in sums.items()
            if len(ids) > 1 and max(abs(billed), abs(effective)) >= _MONEY_LIMIT}


def _unresolved(out: DataFrame, metas: list[dict], conflicts: dict[str, set[int]]) -> dict[str, set[int]]:
    """The conflicts that need the tasks merged. A replacement key written by several tasks is fine when every
    one of them wrote the charge identity (the files are parts of one delivery: AWS CUR splits a month into many
    files) and no identity occurs in two files -- checked here on Spark over the written rows, like the DuckDB
    ingest's check over its own rows. The same month in two formats, or a repeat, merges the tasks so that the
    DuckDB ingest decides it (refusal with its line, or ``--dedupe``)."""
    from pyspark.sql import functions as F

    keys = {k[4:]: ids for k, ids in conflicts.items() if k.startswith("key:")}
    identities = {json.dumps(p.get("identity")) for i in {i for ids in keys.values() for i in ids}
                  for p in metas[i].get("parts", [])}
    if not keys or len(identities) != 1 or json.loads(next(iter(identities))) is None:
        return conflicts
    month_keys: dict[str, set[str]] = {}
    for m in metas:
        for provider, account, period, _family, key in m.get("facets", []):
            month_keys.setdefault(f"{provider}|{account}|{period}", set()).add(key)
    if any(len(v) > 1 for v in month_keys.values()):
        return conflicts  # the same month under two keys (two formats): merge, the DuckDB rule refuses it
    identity = json.loads(next(iter(identities)))
    rows = out.where(f"{_META} IS NULL").where(F.col("x_SourceKey").isin(list(keys)))
    # one key in two formats (legacy CUR and CUR 2.0 share the 'aws' family): merge, the DuckDB rule refuses it
    # (without this, a legacy report and a CUR 2.0 export of one month, one task each, were summed)
    formats = (rows.groupBy("x_SourceKey").agg(F.countDistinct("x_SourceFormat").alias("n")).where("n > 1")
               .select("x_SourceKey").limit(1000).collect())
    if formats:
        return {f"key:{r[0]}": keys[r[0]] for r in formats}
    cols = [F.col(_EXTRA).getItem(c) if c.startswith("x_") and c not in _column_types() else F.col(c)
            for c in identity]
    repeated = (rows.groupBy("x_SourceKey", *cols).agg(F.countDistinct("x_SourceFile").alias("n"))
                .where("n > 1").select("x_SourceKey").distinct().limit(1000).collect())
    return {f"key:{r[0]}": keys[r[0]] for r in repeated}


def store_paths(root: Path) -> list[str]:
    """The files a dataset's store consists of -- its manifest, ``focus/``, ``tables/`` and staging folders of
    runs -- which an ingest never reads as input. Only those: exports kept in the dataset's folder (``lake/raw/``)
    are input like any other."""
    own = [root / MANIFEST, root / FOCUS_DIR, root / TABLES_DIR]
    if root.is_dir():
        own += [p for p in root.iterdir() if p.name.startswith("_staging-")]
    return [str(p) for p in own]


def ingest_spark(paths: list[str] | str, dataset: str, *, spark: SparkSession | None = None,
                 master: str | None = None, source_format: str = "auto", cache_dir: str | None = None,
                 keep_source_columns: bool = False, dedupe: bool = False, replace: bool = False,
                 tasks: int | None = None, _before_reconcile=None) -> SparkIngestResult:
    """Ingest billing files on Spark into the partitioned FOCUS dataset ``dataset`` (see the module docstring): a
    folder, or ``s3://bucket/prefix`` (mirrored locally, written there, then published with boto3 -- see
    :func:`finops_kit.dataset.writable`).

    The same input gives the same rows, totals and errors as :func:`finops_kit.ingest.ingest`. Re-running an
    input replaces the rows of its keys (provider | account | billing period) by the DuckDB path's rule
    (:func:`finops_kit.ingest.replacement_decision`), so a re-run is idempotent. Nothing is moved into the
    dataset unless the reconciliation computed on Spark over the written files holds.

    ``_before_reconcile(staging_focus_dir)`` is a test hook that may damage the written files before the proof.
    """
    from .ingest import plan_inputs

    if str(dataset).startswith("s3://"):  # written into the prefix's local mirror, published when it holds
        from .dataset import writable

        with writable(dataset) as folder:
            result = ingest_spark(paths, str(folder), spark=spark, master=master, source_format=source_format,
                                  cache_dir=cache_dir, keep_source_columns=keep_source_columns, dedupe=dedupe,
                                  replace=replace, tasks=tasks, _before_reconcile=_before_reconcile)
        result.dataset = str(dataset)
        return result
    if isinstance(paths, str):
        paths = [paths]
    root = Path(dataset).expanduser().absolute()  # Spark's JVM resolves paths against its own cwd
    # the dataset may lie inside the input folder: its own files are not input (the next run would read them)
    formats, skipped = plan_inputs(list(paths), cache_dir=cache_dir, source_format=source_format,
                                   exclude=store_paths(root))
    files = [f for fs in formats.values() for f in fs]
    if root.exists() and not root.is_dir():
        raise InputError(str(dataset), "--dataset must be a folder (it holds finops-dataset.json, focus/, tables/)")
    if root.is_dir() and any(root.iterdir()) and not (root / MANIFEST).is_file():
        raise InputError(str(dataset), f"not a finops-kit dataset (no {MANIFEST}) and not empty: refusing to write "
                                       "into it")
    made = [q for q in [root, *root.parents] if not q.exists() and not q.is_symlink()]  # deepest first
    try:
        return _ingest_into(root, dataset, formats, files, skipped, spark, master, source_format,
                            keep_source_columns, dedupe, replace, tasks, _before_reconcile)
    except BaseException:
        for q in made:  # a failed run leaves no new folder behind (only empty ones are removed)
            if q.is_dir():
                try:
                    q.rmdir()
                except OSError:
                    break
        raise


def _ingest_into(root: Path, dataset, formats, files, skipped, spark, master, source_format,
                 keep_source_columns, dedupe, replace, tasks, _before_reconcile) -> SparkIngestResult:
    spark = spark or session(master)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    options = {"source_format": source_format, "keep_source_columns": keep_source_columns, "dedupe": dedupe}
    started = datetime.now(UTC).replace(tzinfo=None)
    out, metas, groups = _run_tasks(spark, file_groups(formats, tasks or default_tasks(spark)), run_id,
                                    options)
    staging = root / f"_staging-{run_id}"
    try:
        result = _write(spark, root, staging, out, metas, groups, run_id, files, skipped, started, replace,
                        _before_reconcile)
        result.dataset = str(dataset)  # as the caller named it
        return result
    finally:
        out.unpersist()
        shutil.rmtree(staging, ignore_errors=True)


def _stored(spark: SparkSession, root: Path) -> DataFrame | None:
    focus_dir = root / FOCUS_DIR
    if not (root / MANIFEST).is_file() or not any(focus_dir.rglob("*.parquet")):
        return None
    spark.conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")  # 2026-05 stays a string
    return _read_parquet(spark, focus_dir)


def glob_escaped(path: str | os.PathLike) -> str:
    """``path`` with Hadoop's glob characters escaped: Spark's reader expands ``[``, ``{``, ``?``, ``*`` in the
    path it is given, so a dataset named ``p[1]`` was read as the pattern ``p1`` and not found."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", str(path))


def _read_parquet(spark: SparkSession, folder: Path) -> DataFrame:
    """The parquet files below ``folder`` (partition columns from the folder names), whatever its name holds."""
    return (spark.read.option("mergeSchema", "true").option("basePath", str(folder))
            .parquet(glob_escaped(folder)))


def _upgrade_stored_keys(spark: SparkSession, stored: DataFrame) -> DataFrame:
    """The stored rows with the keys the DuckDB ingest gives rows stored under a format's old replacement key
    (``Source.stored_key_upgrade``, a DuckDB SQL rule): evaluated by DuckDB on the distinct (format, key, file)
    triples, which are few, and joined back; the partitions this ingest rewrites are written with the new keys."""
    import duckdb
    from pyspark.sql import functions as F

    from .ingest import registry

    rules = {name: rule for name, cls in registry().items() if (rule := cls.stored_key_upgrade()) is not None}
    if not rules:
        return stored
    triples = (stored.where(F.col("x_SourceFormat").isin(list(rules)))
               .select("x_SourceFormat", "x_SourceKey", "x_SourceFile").distinct().collect())
    if not triples:
        return stored
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (x_SourceFormat VARCHAR, x_SourceKey VARCHAR, x_SourceFile VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", [tuple(r) for r in triples])
        changed = [row for name, (where, key) in rules.items() for row in con.execute(
            f"SELECT x_SourceKey, x_SourceFile, {key} FROM t WHERE x_SourceFormat = ? AND {where}", [name]).fetchall()]
    finally:
        con.close()
    if not changed:
        return stored
    mapping = spark.createDataFrame(changed, "_old_key string, _file string, _new_key string")
    joined = stored.join(F.broadcast(mapping), (stored["x_SourceKey"] == mapping["_old_key"])
                         & (stored["x_SourceFile"] == mapping["_file"]), "left")
    return (joined.withColumn("x_SourceKey", F.coalesce(F.col("_new_key"), F.col("x_SourceKey")))
            .drop("_old_key", "_file", "_new_key"))


def _refuse_stored_line_items(new: DataFrame, kept: DataFrame) -> None:
    """The DuckDB ingest's refusal of line items already stored from another file (formats with a
    ``Source.stored_identity``), over the stored rows the replacement rule keeps: the same one line."""
    from pyspark.sql import functions as F

    from .ingest import registry, stored_line_items_error

    for name, cls in registry().items():
        col = cls.stored_identity
        if col is None or col not in new.columns or col not in kept.columns:
            continue
        mine = new.where((F.col("x_SourceFormat") == name) & F.col(col).isNotNull()).select(
            col, "BillingAccountId", F.col("x_SourceFile").alias("_new_file"))
        theirs = kept.where(F.col("x_SourceFormat") == name).select(
            col, "BillingAccountId", F.col("x_SourceFile").alias("_stored_file"))
        theirs = theirs.withColumnRenamed(col, "_id").withColumnRenamed("BillingAccountId", "_account")
        # BillingAccountId IS NOT DISTINCT FROM, as the DuckDB ingest joins them (an account may be NULL)
        on = (mine[col] == theirs["_id"]) & mine["BillingAccountId"].eqNullSafe(theirs["_account"])
        hit = (mine.join(theirs, on).groupBy("_new_file", "_stored_file").count()
               .orderBy(F.desc("count"), "_new_file", "_stored_file").first())
        if hit is not None:
            raise stored_line_items_error(cls, hit["_new_file"], hit["_stored_file"], hit["count"])


def _write(spark: SparkSession, root: Path, staging: Path, out: DataFrame, metas: list[dict],
           groups: list[list[str]], run_id: str, files: list[str], skipped: list[dict], started: datetime,
           replace: bool, before_reconcile) -> SparkIngestResult:
    from pyspark.sql import functions as F

    from .ingest import replacement_decision

    types = _column_types()
    stored_extras = _stored_extras(root)
    extras = sorted({x for m in metas for x in m["extras"]} | set(stored_extras or ()))
    # every file of a dataset holds the same columns (the manifest's): new x_ columns rewrite every partition
    rewrite_all = stored_extras is not None and bool(set(extras) - set(stored_extras))
    new = out.where(f"{_META} IS NULL").select(
        *[F.col(n) for n in types], *[F.col(_EXTRA).getItem(x).alias(x) for x in extras])
    new = new.withColumn("provider", F.col("ProviderName")).withColumn(
        "billing_period", F.date_format("BillingPeriodStart", "yyyy-MM"))
    key_days: dict[str, set[str]] = {}
    for m in metas:
        for k, d in m["key_days"]:
            key_days.setdefault(k, set()).add(d)
    facets = {(p, a, per, fam) for m in metas for p, a, per, fam, _ in m["facets"]}

    def nulls_first(t: tuple) -> tuple:  # a run may hold rows without a ProviderName beside named ones
        return tuple((v is not None, v or "") for v in t)

    touched = sorted({(p, per[:7]) for p, _, per, _ in facets}, key=nulls_first)
    _one_report_per_key(new, metas)
    stored = _stored(spark, root)
    if stored is not None:
        stored = _upgrade_stored_keys(spark, stored)
    notes: list[str] = []
    replaced_keys: list[str] = []
    added_to: list[str] = []
    keep = None
    if stored is not None:
        formats = sorted({p["format"] for m in metas for p in m["parts"]})
        replaced_keys, added_to = _replacement(spark, stored, new, root, key_days, facets, replace, notes,
                                               replacement_decision, formats, run_id)
        if rewrite_all:
            touched = sorted(set(touched) | {(r[0], r[1]) for r in stored.select(*PARTITION_KEYS).distinct()
                                             .collect()}, key=nulls_first)
        in_touched = F.lit(False)
        for p, per in touched:
            # null-safe: rows without a ProviderName are stored in provider=__HIVE_DEFAULT_PARTITION__ and read
            # back as NULL; '==' never held for them, so the partition was rewritten without its stored rows
            in_touched = in_touched | (F.col("provider").eqNullSafe(p) & F.col("billing_period").eqNullSafe(per))
        keep = stored.where(in_touched)
        for x in extras:
            if x not in keep.columns:
                keep = keep.withColumn(x, F.lit(None).cast("string"))
        keep = keep.select(*new.columns)
        if replaced_keys:
            keep = keep.where(~_replaced(replaced_keys))
    if keep is not None:
        _refuse_stored_line_items(new, keep)
    gone = _gone(stored, replaced_keys) if stored is not None and replaced_keys else None
    replaced_rows = sum(g[3] for g in gone["groups"]) if gone else 0
    # the stored rows the rewritten partitions must keep, counted before the write and checked after it
    kept = (0, Decimal(0)) if keep is None else _rows_and_billed(keep)
    combined = new if keep is None else new.unionByName(keep)
    staged_focus = staging / FOCUS_DIR
    combined.write.mode("overwrite").partitionBy(*PARTITION_KEYS).parquet(str(staged_focus))
    _tidy(staged_focus)
    if before_reconcile is not None:
        before_reconcile(staged_focus)
    recon = reconcile_written(spark, staged_focus, run_id, metas)
    bad = [r for r in recon if not r["ok"]]
    if bad:
        b = bad[0]
        raise ReconciliationError(
            f"{files[0]}: reconciliation failed for {len(bad)} period/currency total(s), first "
            f"{b['billing_period']} {b['currency']}: source billed {b['source_billed']} vs FOCUS BilledCost "
            f"{b['focus_billed']}, source amortized {b['source_effective']} vs FOCUS EffectiveCost "
            f"{b['focus_effective']}; nothing was written")
    _check_kept(spark, staged_focus, run_id, kept, files[0])
    rows = sum(r["focus_rows"] for r in recon)
    finished = datetime.now(UTC).replace(tzinfo=None)
    result = SparkIngestResult(
        run_id, str(root), files, rows, replaced_rows, len(groups),
        formats=sorted({p["format"] for m in metas for p in m["parts"]}),
        skipped=skipped + [s for m in metas for s in m["skipped"] if s not in skipped],
        reconciliation=recon, dropped=[d for m in metas for p in m["parts"] for d in p["dropped"]],
        added_to=added_to, notes=notes + [n for m in metas for p in m["parts"] for n in p["notes"]],
        quality=[_finding(q) for m in metas for p in m["parts"] for q in p["quality"]])
    swap = _Swap(root)  # partitions, tables, manifest: all of them or, on any failure, none (see _Swap)
    try:
        _move_into_place(swap, root, staged_focus)
        _write_tables(root, staging, swap, result, metas, started, finished, gone)
        _write_dataset_manifest(root, staging, swap, [*types.items(), *((x, "VARCHAR") for x in extras)])
    except BaseException:
        swap.undo()
        raise
    swap.commit()
    return result


def _replaced(replaced_keys: list[str]) -> Any:
    """Spark predicate: a stored row whose replacement key this run replaces (a row without a key never is)."""
    from pyspark.sql import functions as F

    return F.coalesce(F.col("x_SourceKey").isin(replaced_keys), F.lit(False))


def _rows_and_billed(df: DataFrame) -> tuple[int, Decimal]:
    """(rows, BilledCost) of ``df``: the measure of the stored rows a rewrite keeps, taken before the write and in
    the staged files (:func:`_check_kept`); an overflowing sum is NULL, read as 0 on both sides."""
    from pyspark.sql import functions as F

    n, billed = df.agg(F.count(F.lit(1)), F.try_sum("BilledCost")).first()
    return n, billed or Decimal(0)


def _gone(stored: DataFrame, replaced_keys: list[str]) -> dict:
    """What the replacement takes out of the stored rows, as the DuckDB ingest's ``_replace_older`` measures it:
    per earlier ingest, billing period and currency the rows, BilledCost and EffectiveCost removed and the rows
    left (``groups``), and the earlier ingests that keep any row (``alive``). The tables then shrink each
    reconciliation row by what was removed, drop it when nothing is left, and mark ingests without rows
    'replaced' (:func:`_write_tables`, through :func:`finops_kit.ingest.shrink_reconciliation_row` as DuckDB)."""
    from pyspark.sql import functions as F

    is_gone = _replaced(replaced_keys)
    rows = (stored.groupBy("x_IngestId", "BillingPeriodStart", "BillingCurrency")
            .agg(F.sum(F.when(is_gone, 1).otherwise(0)).alias("gone"),
                 F.sum(F.when(is_gone, 0).otherwise(1)).alias("left"),
                 F.sum(F.when(is_gone, F.col("BilledCost"))).cast(MONEY.replace("DECIMAL", "decimal")).alias("b"),
                 F.sum(F.when(is_gone, F.col("EffectiveCost"))).cast(MONEY.replace("DECIMAL", "decimal")).alias("e"))
            .collect())
    return {"groups": [(r[0], r[1], r[2], int(r[3]), r[5] or Decimal(0), r[6] or Decimal(0), int(r[4]))
                       for r in rows if r[3]],
            "alive": sorted({r[0] for r in rows if r[4] and r[0] is not None})}


def _stored_extras(root: Path) -> list[str] | None:
    """The x_ pass-through columns of the stored dataset (None: no dataset yet)."""
    from .dataset import read_manifest

    if not (root / MANIFEST).is_file():
        return None
    types = _column_types()
    return [n for n, _ in read_manifest(root).columns if n not in types]


def _replacement(spark, stored: DataFrame, new: DataFrame, root: Path, key_days: dict[str, set[str]],
                 facets: set[tuple], replace: bool, notes: list[str], decide, formats: list[str],
                 run_id: str) -> tuple[list[str], list[str]]:
    """The DuckDB path's rules against stored rows, computed on Spark: the same provider/account/period in another
    format is refused (or with ``replace`` removed), a format's own conflict with the stored rows of its keys
    (:func:`_stored_conflicts`) refuses, and each stored key is replaced, added to or refused by its usage days and
    by what the rows say beyond them (:func:`_recency`), through :func:`finops_kit.ingest.replacement_decision`."""
    from pyspark.sql import functions as F

    months = spark.createDataFrame(
        [(p, a, datetime.fromisoformat(per), fam) for p, a, per, fam in facets],
        "ProviderName STRING, BillingAccountId STRING, BillingPeriodStart TIMESTAMP_NTZ, fam STRING")
    other = (stored.join(months, ["ProviderName", "BillingAccountId", "BillingPeriodStart"])
             .where(F.split("x_SourceKey", r"\|").getItem(0) != F.col("fam"))
             .groupBy("x_SourceKey").agg(F.min("x_SourceFormat").alias("fmt"), F.min("x_SourceFile").alias("f"))
             .orderBy("x_SourceKey").collect())
    removed: list[str] = []
    if other:
        key, fmt, file = other[0]
        if not replace:
            raise InputError(None, f"the charges of {key} ({fmt}, already stored from {file}) are also in this "
                                   "input: the same provider, billing account and billing period in two formats "
                                   "would count twice: ingest one of them, or pass --replace to replace the stored "
                                   "rows")
        removed = [r[0] for r in other]
        notes.append(f"--replace: removed the stored rows of {', '.join(removed)}: the same months in another "
                     "format")
    _stored_conflicts(stored, new, formats, run_id, replace, notes)
    keys = sorted(key_days)
    day = F.to_date(F.coalesce("ChargePeriodStart", "BillingPeriodStart")).cast("string")
    old = (stored.where(F.col("x_SourceKey").isin(keys)).select(F.col("x_SourceKey").alias("k"), day.alias("d"))
           .distinct().groupBy("k").agg(F.collect_list("d").alias("days")).collect())
    coverage = []
    for k, days in sorted(old, key=lambda r: r[0]):
        new_days = key_days[k]
        coverage.append((k, len(days), len(set(days) & new_days), min(days), max(days), min(new_days),
                         max(new_days)))
    # the evidence is only consulted for keys the days would replace (or --replace forces): gather it for those
    recency = _recency(stored, new, [c[0] for c in coverage if c[2] == c[1] or replace], root)
    replaced, added_to = decide(coverage, replace, notes, recency)
    return replaced + removed, added_to


def _one_report_per_key(new: DataFrame, metas: list[dict]) -> None:
    """The DuckDB ingest's refusal of two reports (or CUR 2.0 exports) of one account's billing period in one call
    (:func:`finops_kit.ingest.refuse_two_reports`), over the rows the tasks returned, for the keys several tasks
    wrote (a task's own ingest already applied it to its files). Why here: AWS files are one task each (their
    charge identity finds repeats across tasks), so a daily and an hourly export of one month -- different line
    items, no repeat -- reached the dataset from two tasks and were summed (twice the month, reconciled, exit 0)
    where the DuckDB ingest refuses them."""
    from pyspark.sql import functions as F

    from .ingest import refuse_two_reports, registry, several_reports

    owners: dict[str, set[int]] = {}
    for i, m in enumerate(metas):
        for *_, key in m.get("facets", []):
            owners.setdefault(key, set()).add(i)
    shared = sorted(k for k, ids in owners.items() if k is not None and len(ids) > 1)
    in_parts = [name for name, cls in registry().items() if cls.delivered_in_parts]
    if not shared or not in_parts:
        return
    rows = new.where(F.col("x_SourceFormat").isin(in_parts) & F.col("x_SourceKey").isin(shared)
                     & F.col("x_SourceFile").isNotNull())
    by_format: dict[str, list[tuple[str, str]]] = {}
    for fmt, key, f in rows.select("x_SourceFormat", "x_SourceKey", "x_SourceFile").distinct().collect():
        by_format.setdefault(fmt, []).append((key, f))
    for fmt, files in sorted(by_format.items()):
        # in the DuckDB ingest's ORDER BY ALL: the same first file of each report
        several = several_reports(sorted(files))
        if not several:
            continue
        accounts = (rows.where((F.col("x_SourceFormat") == fmt) & F.col("x_SourceKey").isin(list(several)))
                    .groupBy("x_SourceKey", "x_SourceFile")
                    .agg(F.collect_set("SubAccountId"), F.max(F.col("SubAccountId").isNull())).collect())
        refuse_two_reports(several, sorted((k, f, [*ids, *([None] if blank else [])])
                                           for k, f, ids, blank in accounts))


def _stored_conflicts(stored: DataFrame, new: DataFrame, formats: list[str], run_id: str, replace: bool,
                      notes: list[str]) -> None:
    """The DuckDB ingest's ``Source.stored_conflict`` rule (Azure: the other dataset, actual or amortized, of a
    stored month), decided by the hook's own SQL: the distinct values of the columns it reads
    (``Source.stored_conflict_columns``) of the stored and new rows of this run's keys of the format are handed to
    it as a DuckDB table of the FOCUS table's name; the outcome (refusal, or with ``replace`` a note) is
    :func:`finops_kit.ingest.stored_conflict_outcome`. Before, the Spark ingest never called the hook: a later
    amortized export replaced the stored actual one (the reservation purchase's BilledCost gone), exit 0."""
    import duckdb
    from pyspark.sql import functions as F

    from .ingest import registry, stored_conflict_outcome
    from .sources.base import ident
    from .warehouse import FOCUS_TABLE

    for name in formats:
        cls = registry().get(name)
        cols = cls.stored_conflict_columns if cls is not None else ()
        if not cols:
            continue
        mine = new.where(F.col("x_SourceFormat") == name)
        keys = sorted(r[0] for r in mine.where(F.col("x_SourceKey").isNotNull()).select("x_SourceKey")
                      .distinct().collect())
        if not keys:
            continue
        stored_side, new_side = (df.where(F.col("x_SourceKey").isin(keys)).select(
            *[(F.col(c) if c in df.columns else F.lit(None)).cast("string").alias(c) for c in cols])
            for df in (stored, mine))
        rows = stored_side.unionByName(new_side).distinct().collect()
        con = duckdb.connect()
        try:
            con.execute(f"CREATE TABLE {FOCUS_TABLE} ({', '.join(f'{ident(c)} VARCHAR' for c in cols)})")
            con.executemany(f"INSERT INTO {FOCUS_TABLE} VALUES ({', '.join('?' for _ in cols)})",
                            [tuple(r) for r in rows])
            conflict = cls.stored_conflict(con, run_id, keys, [run_id])
        finally:
            con.close()
        stored_conflict_outcome(conflict, replace, notes)


def _recency(stored: DataFrame, new: DataFrame, keys: list[str], root: Path) -> dict[str, Recency]:
    """:class:`finops_kit.ingest.Recency` of each stored key, as the DuckDB ingest computes it: the same per-key
    facts (an InvoiceId and a file of each side, the superseded assemblies the stored rows' ingests logged, this
    input's files, the stored sub-accounts this input lacks) aggregated on Spark over the stored dataset and the
    new rows, the log read from ``tables/ingest_log.parquet``, and turned into evidence by the DuckDB ingest's own
    functions. Why: without it an older copy (a superseded assembly, an estimate over the invoiced month) or a
    narrower one (a member account's CUR over its payer's month) replaced the stored month on Spark, exit 0, where
    the DuckDB ingest refuses it: one rule, so both engines must see the same evidence."""
    import duckdb
    from pyspark.sql import functions as F

    from .ingest import missing_sub_accounts_text, recency_of, registry, superseded_assemblies

    if not keys:
        return {}
    k = F.col("x_SourceKey")
    wanted = k.isin(keys)
    sides = (stored.where(wanted).select(F.lit("stored").alias("side"), "x_SourceKey", "InvoiceId", "x_SourceFile")
             .unionByName(new.where(wanted).select(F.lit("new").alias("side"), "x_SourceKey", "InvoiceId",
                                                   "x_SourceFile"))
             .groupBy("side", "x_SourceKey")
             .agg(F.min("InvoiceId"), F.coalesce(F.min(F.when(F.col("InvoiceId").isNotNull(), F.col("x_SourceFile"))),
                                                 F.min("x_SourceFile"))).collect())
    facts: dict[str, dict[str, tuple]] = {"stored": {}, "new": {}}
    for side, key, invoice, file in sides:
        facts[side][key] = (invoice, file)
    log_file = root / TABLES_DIR / "ingest_log.parquet"
    logs: dict[str, str | None] = {}
    if log_file.is_file():
        con = duckdb.connect()
        try:
            logs = dict(con.execute("SELECT ingest_id, skipped FROM read_parquet(?)", [str(log_file)]).fetchall())
        finally:
            con.close()
    owners = stored.where(wanted).select("x_SourceKey", "x_IngestId").distinct().collect()
    superseded = superseded_assemblies([(key, logs[i]) for key, i in owners if i in logs])
    input_files = ([(r[0], r[1]) for r in new.where(k.isin(list(superseded))).select("x_SourceKey", "x_SourceFile")
                    .distinct().collect()] if superseded else [])
    # sub-accounts: only keys whose input rows name one are compared (as _missing_sub_accounts does)
    subs = new.where(wanted & F.col("SubAccountId").isNotNull()).select(
        F.col("x_SourceKey").alias("k"), F.col("SubAccountId").alias("s")).distinct()
    kept: dict[str, list[str]] = {}
    for key, sub in subs.collect():
        kept.setdefault(key, []).append(sub)
    missing: dict[str, str] = {}
    if kept:
        lost = (stored.where(k.isin(list(kept)) & F.col("SubAccountId").isNotNull())
                .join(subs, (k == F.col("k")) & (F.col("SubAccountId") == F.col("s")), "left_anti")
                .groupBy("x_SourceKey", "BillingCurrency")
                .agg(F.count(F.lit(1)), F.sum("BilledCost"), F.min("x_SourceFile"), F.min("SubAccountType"),
                     F.min("ProviderName"), F.collect_set("SubAccountId")).collect())
        per_key: dict[str, list] = {}
        for key, *part in lost:  # one row per key and currency: combined per key as DuckDB's GROUP BY key does
            per_key.setdefault(key, []).append(part)
        for key, parts in per_key.items():
            file, sub_type, provider = (min((p[i] for p in parts if p[i] is not None), default=None)
                                        for i in (3, 4, 5))
            missing[key] = missing_sub_accounts_text(
                sorted({s for p in parts for s in p[6]}), sum(p[1] for p in parts), [(p[0], p[2]) for p in parts],
                file, sub_type, provider, sorted(kept[key]))
    # the files of formats delivered in numbered parts (ingest.missing_parts_text), as the DuckDB ingest lists them
    parts = [name for name, cls in registry().items() if cls.delivered_in_parts]
    in_parts = wanted & F.col("x_SourceFormat").isin(parts) & F.col("x_SourceFile").isNotNull()
    files = [(key, bool(is_new), f) for key, is_new, f in (
        stored.where(in_parts).select("x_SourceKey", F.lit(False).alias("n"), "x_SourceFile")
        .unionByName(new.where(in_parts).select("x_SourceKey", F.lit(True).alias("n"), "x_SourceFile"))
        .distinct().collect())] if parts else []
    return recency_of(keys, facts["stored"], facts["new"], superseded, input_files, missing, sorted(files))


def reconcile_written(spark: SparkSession, focus_dir: Path, run_id: str, metas: list[dict]) -> list[dict]:
    """The reconciliation proof on Spark: normalized totals per format, billing period and currency, computed with
    Spark SQL over the files written for ``run_id``, against the source totals the tasks computed from the raw
    columns. A row dropped or repeated between the task and the files shows as a difference."""
    written = _read_parquet(spark, focus_dir)
    written.createOrReplaceTempView("_finops_written")
    got = spark.sql(
        f"""SELECT x_SourceFormat, BillingPeriodStart, BillingCurrency, count(*) AS n,
                   try_cast(try_sum(BilledCost) AS {MONEY}) AS billed,
                   try_cast(try_sum(EffectiveCost) AS {MONEY}) AS effective
            FROM _finops_written WHERE x_IngestId = '{run_id}' GROUP BY 1, 2, 3""").collect()
    focus = {(r[0], r[1].strftime("%Y-%m-%dT%H:%M:%S") if r[1] else None, r[2]): (r[3], r[4], r[5]) for r in got}
    source: dict[tuple, list] = {}
    for m in metas:
        for fmt, period, cur, n, billed, effective, mapped in m["totals"]:
            key = (fmt, period[:19] if period else None, cur)
            acc = source.setdefault(key, [0, Decimal(0), Decimal(0), 0])
            acc[0] += n
            acc[1] += Decimal(billed)
            acc[2] += Decimal(effective)
            acc[3] += mapped
    tol = Decimal(TOLERANCE)
    out = []
    for key in sorted(set(focus) | set(source), key=lambda k: (k[1] or "", k[2] or "", k[0])):
        fmt, period, cur = key
        sn, sb, se, mapped = source.get(key, (0, Decimal(0), Decimal(0), 0))
        fn, fb, fe = focus.get(key, (0, Decimal(0), Decimal(0)))
        fb, fe = fb or Decimal(0), fe or Decimal(0)
        # money against the source's own totals; the row count against what the tasks' mapping produced (a source
        # row may legitimately map to no FOCUS row or to several, but no written row may be lost or repeated)
        ok = abs(sb - fb) <= tol and abs(se - fe) <= tol and fn == mapped
        out.append({"source_format": fmt, "billing_period": period[:7] if period else None,
                    "billing_period_start": period, "currency": cur, "source_rows": sn, "focus_rows": fn,
                    "source_billed": sb, "focus_billed": fb, "source_effective": se, "focus_effective": fe,
                    "ok": ok})
    return out


def _check_kept(spark: SparkSession, focus_dir: Path, run_id: str, kept: tuple, first_file: str) -> None:
    """The other half of the proof: the partitions this run rewrote hold exactly the stored rows they had to keep
    (rows and BilledCost of earlier ingests), so a stored row lost or repeated on the way refuses the run too."""
    from pyspark.sql import functions as F

    got = _rows_and_billed(_read_parquet(spark, focus_dir).where(~F.col("x_IngestId").eqNullSafe(run_id)))
    if got != kept:
        raise ReconciliationError(
            f"{first_file}: the rewritten partitions hold {got[0]:,} stored row(s) of earlier ingests (BilledCost "
            f"{got[1]}) instead of the {kept[0]:,} kept (BilledCost {kept[1]}); nothing was written")


def _tidy(focus_dir: Path) -> None:
    """Drop Hadoop's checksum and marker files: the dataset holds only parquet files and the manifest."""
    for p in focus_dir.rglob("*"):
        if p.is_file() and (p.name.endswith(".crc") or p.name.startswith("_")):
            p.unlink()


class _Swap:
    """The changes one ingest makes to a dataset, undoable until committed.

    Each :meth:`replace` renames a staged folder or file into place after setting the one it replaces aside (a
    rename into ``_trash-<id>/`` inside the dataset: the same file system, so nothing is copied). :meth:`undo`
    takes the new ones out and puts every old one back, in reverse order, and removes the folders it created;
    :meth:`commit` deletes what was set aside. Why: the partitions, then the tables, then the manifest change one
    rename at a time, and a failure in any step after the first (a rename, a table write, the manifest's
    validation) must leave the dataset as it was -- before, the partitions already swapped stayed new while the
    tables and manifest stayed old, and their old versions were deleted with the trash. (A process killed between
    two renames can still leave a mix, the old versions kept in ``_trash-<id>/``; where the files then disagree
    with the manifest, :func:`finops_kit.dataset.validate` refuses the dataset.)"""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trash = root / f"_trash-{uuid.uuid4().hex[:8]}"
        self.done: list[tuple[Path, Path | None, list[Path]]] = []  # (destination, old version set aside, made)

    def replace(self, new: Path, dest: Path) -> None:
        made = [p for p in reversed(dest.parents) if p.is_relative_to(self.root) and not p.exists()]
        aside = None
        if dest.exists():
            aside = self.trash / "old" / dest.relative_to(self.root)
            aside.parent.mkdir(parents=True, exist_ok=True)
            dest.rename(aside)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            new.rename(dest)
        except BaseException:
            if aside is not None:
                aside.rename(dest)
            _remove_empty(made)
            raise
        self.done.append((dest, aside, made))

    def undo(self) -> None:
        """Put the dataset back as it was before the first :meth:`replace` (then forget the steps). A step that
        cannot be undone does not stop the others; then the old versions stay in the trash folder, which the
        error names, instead of being deleted."""
        stuck: list[str] = []
        for i, (dest, aside, made) in enumerate(reversed(self.done)):
            try:
                out = self.trash / "new" / str(i)
                out.parent.mkdir(parents=True, exist_ok=True)
                dest.rename(out)
                if aside is not None:
                    aside.rename(dest)
                _remove_empty(made)
            except OSError as exc:
                stuck.append(f"{dest.relative_to(self.root)} ({exc})")
        self.done.clear()
        if stuck:
            raise FinopsError(f"{self.root}: the ingest failed and {len(stuck)} change(s) could not be undone, "
                              f"first {stuck[0]}: the dataset's previous versions are kept in {self.trash}")
        shutil.rmtree(self.trash, ignore_errors=True)

    def commit(self) -> None:
        """Keep the new versions; delete the old ones set aside."""
        self.done.clear()
        shutil.rmtree(self.trash, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a step created (innermost first) when nothing else was put in them since."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def _move_into_place(swap: _Swap, root: Path, staged_focus: Path) -> None:
    """Swap each staged partition folder for the dataset's (a rename per partition, undoable through ``swap``)."""
    for provider_dir in sorted(p for p in staged_focus.iterdir() if p.is_dir()):
        for part in sorted(p for p in provider_dir.iterdir() if p.is_dir()):
            swap.replace(part, root / FOCUS_DIR / provider_dir.name / part.name)


def _write_tables(root: Path, staging: Path, swap: _Swap, result: SparkIngestResult, metas: list[dict],
                  started: datetime, finished: datetime, gone: dict | None) -> None:
    """tables/ingest_log.parquet, reconciliation.parquet and data_quality.parquet, with the warehouse's columns
    (earlier ingests' rows kept; what the replacement removed taken out of their reconciliation and an ingest
    left without rows marked 'replaced', as in the warehouse -- see :func:`_gone`): written into ``staging``, then
    renamed into place through ``swap``."""
    import duckdb

    tables = root / TABLES_DIR
    con = duckdb.connect()
    try:
        _table_ddl(con)
        for name in ("ingest_log", "reconciliation", "data_quality"):
            old = tables / f"{name}.parquet"
            if old.is_file():
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet(?)", [str(old)])
        if gone:
            from .ingest import shrink_reconciliation_row

            for group in gone["groups"]:
                shrink_reconciliation_row(con, *group)
            con.execute("UPDATE ingest_log SET status = 'replaced' WHERE status = 'active' "
                        "AND ingest_id NOT IN (SELECT unnest(?::VARCHAR[]))", [gone["alive"]])
        fingerprints, inputs = [], []
        for m in metas:
            for row in m["log"]:
                inputs.extend(json.loads(row[4]))
                fingerprints.extend(json.loads(row[5]))
        keys = sorted({k for m in metas for k, _ in m["key_days"]})
        con.execute("INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
                    [result.ingest_id, started, finished, ", ".join(result.formats), json.dumps(inputs),
                     json.dumps(fingerprints), json.dumps(result.skipped), json.dumps(keys), result.rows,
                     result.replaced_rows])
        for r in result.reconciliation:
            con.execute("INSERT INTO reconciliation VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [result.ingest_id, r["source_format"], r["billing_period_start"], r["currency"],
                         r["source_rows"], r["focus_rows"], r["source_billed"], r["focus_billed"],
                         r["source_effective"], r["focus_effective"], r["ok"]])
        for m in metas:
            for q in m["quality"]:
                con.execute("INSERT INTO data_quality VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [result.ingest_id, *q[1:]])
        (staging / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        for name in ("ingest_log", "reconciliation", "data_quality"):
            staged = staging / TABLES_DIR / f"{name}.parquet"
            con.execute(f"COPY {name} TO {sql_str(str(staged))} (FORMAT parquet)")
            swap.replace(staged, tables / f"{name}.parquet")
    finally:
        con.close()


def _table_ddl(con) -> None:
    """The warehouse's ingest_log, reconciliation and data_quality tables (their DDL is the kit's, not copied)."""
    from .quality import ensure_table
    from .warehouse import _LOG_DDL

    con.execute(_LOG_DDL)
    ensure_table(con)


def _write_dataset_manifest(root: Path, staging: Path, swap: _Swap, columns: list[tuple[str, str]]) -> None:
    """finops-dataset.json through :mod:`finops_kit.dataset` (one shape for both engines), written last (into
    ``staging``, renamed into place through ``swap``), then the whole dataset validated from the parquet footers
    (:func:`finops_kit.dataset.validate`)."""
    import duckdb
    import pyspark

    from .dataset import build_manifest, input_fingerprint, table_columns, validate, write_manifest

    files = focus_files(root)
    con = duckdb.connect()
    try:
        listing = "[" + ", ".join(sql_str(str(f)) for f in files) + "]"
        parts = con.execute(
            f"SELECT ProviderName, strftime(BillingPeriodStart, '%Y-%m'), count(*) FROM read_parquet({listing}, "
            "hive_partitioning = false, union_by_name = true) GROUP BY ALL ORDER BY ALL").fetchall()
        tables = {}
        _table_ddl(con)
        for name in ("ingest_log", "reconciliation", "data_quality"):
            path = root / TABLES_DIR / f"{name}.parquet"
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet({sql_str(str(path))})")
        for name, cols in table_columns(con).items():
            tables[name] = {"rows": con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0], "columns": cols}
        # the reports' input fingerprint reads ingest_log (the focus join only adds periods, unused here)
        con.execute("CREATE TABLE focus (x_IngestId VARCHAR, x_SourceFile VARCHAR, BillingPeriodStart TIMESTAMP)")
        fingerprint = input_fingerprint(con)
    finally:
        con.close()
    manifest = build_manifest(engine="spark", engine_version=pyspark.__version__, rows=sum(p[2] for p in parts),
                              columns=columns, fingerprint=fingerprint, tables=tables,
                              partitions=[{"provider": p, "billing_period": b, "rows": n} for p, b, n in parts])
    swap.replace(write_manifest(staging, manifest), root / MANIFEST)
    validate(root)  # refuses a dataset whose files disagree with the manifest: then the caller undoes the swap


__all__ = ["ingest_spark", "session", "reconcile_written", "file_groups", "period_of_path", "java_available",
           "SparkIngestResult"]
