"""Idle GPU dollars: GPU utilization exports read offline, joined to the accelerator-hours the bill charged.

Why: the bill says how many GPU-hours were paid for, never whether the GPUs did anything. OpenCost-style "GPU cost"
is requested GPUs x hours; the question a FinOps team is asked is "which GPUs are we paying for while they sit
idle, and who owns them". This module answers it from the utilization files teams already have:

* ``nvidia-smi --query-gpu=timestamp,index,uuid,utilization.gpu,memory.used --format=csv`` logs, one file per host
  (the host is the file name without its suffixes: ``ip-10-0-1-23.csv``), with a **host map**: a CSV with columns
  ``host,resource_id[,timezone]``. nvidia-smi writes local time without an offset, so the map's ``timezone`` (IANA
  name, default UTC) says which clock a host's log uses. The hour repeated when the clocks go back is placed by
  the log's order (the local time stepping back is the second occurrence); samples the log cannot place are left
  out and counted, and a local time the clocks skipped is refused (the map's time zone is wrong for that host);
* CloudWatch ``get-metric-data`` JSON of the CloudWatch agent's ``nvidia_smi_utilization_gpu`` (namespace CWAgent,
  dimensions ``InstanceId`` and ``index``). The response carries no dimensions, so the file is the response with the
  request's ``MetricDataQueries`` saved beside ``MetricDataResults`` (matched by ``Id``), or a response whose
  labels are the dynamic label ``${PROP('Dim.InstanceId')} ${PROP('Dim.index')}``. The InstanceId is the resource id.
  A paginated response is a JSON list of all its pages (the queries saved once); a response cut short (a last
  page with a ``NextToken``, a result not ``Complete``) is refused;
* a Prometheus ``query_range`` JSON of DCGM exporter ``DCGM_FI_DEV_GPU_UTIL`` series (labels ``gpu``, ``UUID``,
  ``Hostname``, else ``instance``), with the host map.

Every reader validates its input: a wrong shape, a missing column, a value that is not a percentage, an unknown
host, an unknown time zone is one :class:`~finops_kit.errors.InputError` line naming the file, the row (or series)
and what was expected. ``[N/A]`` / ``[Not Supported]`` utilization (MIG, a GPU that fell off the bus) and
Prometheus ``NaN`` are missing samples, counted and not guessed. A sample repeated (a log appended twice, the same
series in two files) counts once.

The tidy table (:func:`load_utilization`) holds one row per resource, GPU and UTC hour: the mean utilization of
the hour's samples. Rules of :func:`idle_gpu` (the one answer every report gives):

* **billed GPU-hours and cost** per resource and charge period come from :mod:`finops_kit.units`
  (``accelerated_usage_sql``: accelerator-hours, EffectiveCost of the instance's compute rows incl. credits and
  without the data transfer or storage billed on its id, its pricing
  class) -- never a private hour rule. A metric hour joins the charge period of the same resource (ResourceId,
  compared without case: ``units.resource_key_sql``) that contains it, so hourly and daily bills both work; every
  table groups a resource by that key too, so one VM spelled in two cases is one row.
* an observed GPU-hour is **idle** when its mean utilization is below ``idle_threshold`` (percent,
  ``unit_economics.idle_threshold`` in finops.yaml, default 5). Observed GPU-hours beyond the billed ones (clock
  skew, per-second billing) are scaled down to the billed hours.
* per charge period the cost splits exactly into **idle**, **utilized** and **unmeasured** (billed GPU-hours
  without metrics) dollars in proportion to GPU-hours: idle dollars are at the cost actually paid (on-demand, spot
  or committed: EffectiveCost), and the three add up to the billed cost (checked).
* **cost per utilized GPU-hour** = measured cost (idle + utilized dollars) / utilized GPU-hours: what one GPU-hour
  of real work costs once idle time is paid for.
* **scheduling savings**: hours in which every GPU of the instance was idle, in runs of at least
  ``schedule_min_idle_hours`` consecutive hours (default 4), priced at the instance's cost per instance-hour: what a
  stop/start schedule would have saved (a GPU cannot be stopped alone; a one-hour lull is not schedulable).
* the **window** is the metrics' first to last hour; accelerated resources billed in it without any metric are
  listed (cost with no metrics), and so are metric resources with no billed accelerator-hours at those hours.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd

from . import units
from .attribution import SHARED, UNTAGGED
from .config import load_config, reject_unknown, section
from .errors import ConfigError, InputError
from .schema import MONEY
from .sources.base import sql_str

#: The tidy table :func:`load_utilization` creates (a TEMP table of the connection).
TABLE = "gpu_utilization"
#: nvidia-smi values meaning "no reading" (MIG mode, unsupported field, a GPU in error)
NA_VALUES = ("[n/a]", "n/a", "[not supported]", "[unknown error]", "[gpu is lost]", "")
CLOUDWATCH_METRIC = "nvidia_smi_utilization_gpu"
DCGM_METRIC = "DCGM_FI_DEV_GPU_UTIL"
_NVSMI_COLUMNS = {"timestamp": "timestamp", "index": "index", "uuid": "uuid", "utilization.gpu": "utilization",
                  "memory.used": "memory_used"}
_NVSMI_REQUIRED = ("timestamp", "index", "utilization")


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class Settings:
    """``unit_economics`` settings of finops.yaml used here (the defaults apply when the section is absent)."""

    idle_threshold: float = 5.0
    schedule_min_idle_hours: int = 4


#: Keys of the ``unit_economics`` section (read by this module and :mod:`finops_kit.unit_economics`).
SECTION_KEYS = {"idle_threshold", "schedule_min_idle_hours", "run_tags", "run_resource_patterns", "application_key"}


def unit_section(config: Any = None) -> dict[str, Any]:
    """The ``unit_economics`` section of a config (dict, path or None = ./finops.yaml), unknown keys refused."""
    cfg = config if isinstance(config, dict) else load_config(config)
    sec = section(cfg, "unit_economics", {}) or {}
    if not isinstance(sec, dict):
        raise ConfigError("unit_economics: expected a mapping of settings")
    reject_unknown(sec, SECTION_KEYS, "unit_economics")
    return sec


def load_settings(config: Any = None) -> Settings:
    """Validated idle-GPU settings: ``idle_threshold`` a percentage in (0, 100], ``schedule_min_idle_hours`` >= 1."""
    sec = unit_section(config)
    thr = sec.get("idle_threshold", Settings.idle_threshold)
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not 0 < thr <= 100:
        raise ConfigError(f"unit_economics.idle_threshold: {thr!r}; expected a GPU utilization percentage "
                          "above 0 and at most 100 (e.g. 5)")
    hrs = sec.get("schedule_min_idle_hours", Settings.schedule_min_idle_hours)
    if isinstance(hrs, bool) or not isinstance(hrs, int) or hrs < 1:
        raise ConfigError(f"unit_economics.schedule_min_idle_hours: {hrs!r}; expected a whole number of hours >= 1")
    return Settings(float(thr), hrs)


# ------------------------------------------------------------------------------------------------ host map
@dataclass(frozen=True)
class Host:
    resource_id: str
    tz: dt.tzinfo


def read_host_map(path: str | Path) -> dict[str, Host]:
    """The host map CSV: ``host,resource_id[,timezone]`` -> {host (lower case): Host}."""
    p = Path(path)
    rows = _csv_rows(p)
    if not rows:
        raise InputError(str(p), "empty host map; expected a header host,resource_id[,timezone] and one row per host")
    header = [h.strip().lower() for h in rows[0]]
    for need in ("host", "resource_id"):
        if need not in header:
            raise InputError(str(p), f"missing column; expected a header host,resource_id[,timezone], "
                                     f"saw {','.join(rows[0])}", column=need)
    hi, ri = header.index("host"), header.index("resource_id")
    ti = header.index("timezone") if "timezone" in header else None
    out: dict[str, Host] = {}
    for n, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        if len(r) < len(header):
            raise InputError(str(p), f"{len(r)} fields; expected {len(header)} ({','.join(header)})", row=n)
        host, rid = r[hi].strip(), r[ri].strip()
        if not host or not rid:
            raise InputError(str(p), "empty host or resource_id", row=n, column="host" if not host else "resource_id")
        tzname = r[ti].strip() if ti is not None else ""
        try:
            tz: dt.tzinfo = ZoneInfo(tzname) if tzname else dt.UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(str(p), f"unknown time zone {tzname!r}; expected an IANA name such as "
                                     "Europe/Berlin or UTC", row=n, column="timezone") from None
        if host.lower() in out and out[host.lower()].resource_id != rid:
            raise InputError(str(p), f"host {host!r} mapped twice (to {out[host.lower()].resource_id} and {rid})",
                             row=n, column="host")
        out[host.lower()] = Host(rid, tz)
    return out


def _open_text(p: Path) -> str:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(str(p), f"cannot read ({exc.strerror or exc})") from None
    if p.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(str(p), f"not a readable gzip file ({exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"not UTF-8 text (byte {exc.start})") from None


def _csv_rows(p: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_open_text(p)), skipinitialspace=True))


# ------------------------------------------------------------------------------------------------ samples
@dataclass
class Samples:
    """Parsed samples of one or more files (parallel lists) and what was not usable."""

    resource_id: list[str] = field(default_factory=list)
    host: list[str | None] = field(default_factory=list)
    gpu_index: list[int] = field(default_factory=list)
    gpu_uuid: list[str | None] = field(default_factory=list)
    ts: list[dt.datetime] = field(default_factory=list)
    utilization: list[float] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # per file: format, samples, missing values

    def add(self, rid: str, host: str | None, idx: int, uuid: str | None, ts: dt.datetime, util: float,
            src: str) -> None:
        self.resource_id.append(rid)
        self.host.append(host)
        self.gpu_index.append(idx)
        self.gpu_uuid.append(uuid)
        self.ts.append(ts)
        self.utilization.append(util)
        self.source.append(src)


def _percent(value: str, file: str, row: int | str, column: str) -> float | None:
    """A utilization value: ``87``, ``87 %``; None for nvidia-smi's no-reading markers; else an InputError."""
    v = value.strip()
    if v.lower() in NA_VALUES:
        return None
    v = v.removesuffix("%").strip()
    try:
        x = float(v)
    except ValueError:
        raise InputError(file, f"{value!r} is not a utilization; expected a percentage such as 87 or 87 %",
                         row=row if isinstance(row, int) else None, column=column) from None
    if not math.isfinite(x) or not 0 <= x <= 100:
        raise InputError(file, f"utilization {value!r} outside 0-100 %", row=row if isinstance(row, int) else None,
                         column=column)
    return x


_NVSMI_TS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


def _parse_time(value: str, file: str, row: int | None, column: str) -> dt.datetime:
    """A timestamp as written: aware for ISO 8601 with an offset, naive for nvidia-smi's local
    ``YYYY/MM/DD HH:MM:SS.mmm`` (or ISO 8601 without one)."""
    v = value.strip()
    for f in _NVSMI_TS:
        try:
            return dt.datetime.strptime(v, f)
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(file, f"{value!r} is not a timestamp; expected YYYY/MM/DD HH:MM:SS.mmm "
                               "(nvidia-smi) or ISO 8601", row=row, column=column) from None


def _timestamp(value: str, tz: dt.tzinfo, file: str, row: int | None, column: str) -> dt.datetime:
    """A timestamp as UTC: ISO 8601 with an offset as written, else read on the clock ``tz`` (used with UTC; a
    local clock with changes is read by :func:`_resolve_local`, which needs the log's sequence)."""
    t = _parse_time(value, file, row, column)
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return t.astimezone(dt.UTC).replace(tzinfo=None)


def _resolve_local(times: Sequence[dt.datetime], tz: dt.tzinfo, file: str, rows: Sequence[int],
                   values: Sequence[str]) -> list[dt.datetime | None]:
    """UTC (naive) of a log's timestamps, in the order written; None where a local time cannot be placed.

    A naive time is on the host's clock ``tz``. When the clocks go back, one local hour happens twice and the time
    alone does not say which: the log does, since samples are written in time order. In a run of consecutive
    samples at such times, the local time stepping back is the clock change: before it the first occurrence
    (fold 0), after it the second (fold 1). A run that never steps back (the log starts or stops inside the
    repeated hour) or steps back twice cannot be placed: None, counted by the caller, never merged into one
    hour. A local time the clocks skipped does not exist on that clock: an InputError (the host map's time zone is
    not the one the log was written in)."""
    out: list[dt.datetime | None] = [None] * len(times)
    hours: dict[dt.datetime, dt.timedelta | None] = {}  # per local hour: its one offset, None when it has a change
    offsets: dict[dt.datetime, tuple[dt.timedelta, dt.timedelta]] = {}  # per local minute: fold 0, fold 1 offset

    def offset(t: dt.datetime, fold: int) -> dt.timedelta:
        return t.replace(tzinfo=tz, fold=fold).utcoffset() or dt.timedelta(0)

    cand: dict[int, tuple[dt.datetime, dt.datetime]] = {}  # a run's samples at a repeated time: UTC at fold 0, 1
    run: list[int] = []

    def close() -> None:
        steps = [j for j in range(1, len(run)) if times[run[j]] < times[run[j - 1]]]
        if steps:
            second = steps[1] if len(steps) > 1 else len(run)
            for j, i in enumerate(run[:second]):
                out[i] = cand[i][0] if j < steps[0] else cand[i][1]
        run.clear()
        cand.clear()

    for i, t in enumerate(times):
        if t.tzinfo is not None:
            close()
            out[i] = t.astimezone(dt.UTC).replace(tzinfo=None)
            continue
        hour = t.replace(minute=0, second=0, microsecond=0)
        if hour not in hours:
            end = hour.replace(minute=59, second=59, microsecond=999999)
            found = {offset(hour, 0), offset(hour, 1), offset(end, 0), offset(end, 1)}
            hours[hour] = found.pop() if len(found) == 1 else None
        one = hours[hour]
        if one is not None:
            close()
            out[i] = t - one
            continue
        minute = t.replace(second=0, microsecond=0)
        off = offsets.get(minute)
        if off is None:
            off = offsets[minute] = (offset(minute, 0), offset(minute, 1))
        if off[0] == off[1]:
            close()
            out[i] = t - off[0]
        elif off[0] < off[1]:
            raise InputError(file, f"{values[i].strip()!r} does not exist in {tz} (the clocks skipped it); the "
                                   "host map's timezone for this host is not the clock the log was written in",
                             row=rows[i], column="timestamp")
        else:
            if run and times[run[-1]].date() != t.date():
                close()
            run.append(i)
            cand[i] = (t - off[0], t - off[1])
    close()
    return out


def host_of(path: Path) -> str:
    """The host an nvidia-smi log belongs to: its file name without suffixes (``ip-10-0-1-23.csv.gz``)."""
    name = path.name
    for suf in (".gz", ".csv", ".log", ".txt"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    return name


def _header_cells(row: Sequence[str]) -> list[str]:
    cells = [c.strip() for c in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _column_key(name: str) -> str:
    return re.sub(r"\s*\[.*\]\s*$", "", name.strip()).lower()  # 'utilization.gpu [%]' -> 'utilization.gpu'


def read_nvidia_smi(path: str | Path, hosts: dict[str, Host], out: Samples | None = None) -> Samples:
    """One nvidia-smi ``--format=csv`` log (with header) of the host named by the file (see :func:`host_of`).

    A header line repeated in the middle (a restarted ``nvidia-smi ... -l 60 >> host.csv``) is skipped when it is
    the first one; a different header (other ``--query-gpu`` fields) is refused. Local times are placed in UTC by
    :func:`_resolve_local`; samples at a repeated local hour that the log cannot place are left out and counted
    (``ambiguous_times``)."""
    p = Path(path)
    out = out if out is not None else Samples()
    f = str(p)
    host = host_of(p)
    h = hosts.get(host.lower())
    if h is None:
        raise InputError(f, f"host {host!r} (the file name) is not in the host map; add a row "
                            f"{host},<resource id>[,<timezone>]")
    rows = _csv_rows(p)
    if not rows:
        raise InputError(f, "empty nvidia-smi log; expected the header of --query-gpu=timestamp,index,uuid,"
                            "utilization.gpu,memory.used --format=csv")
    cols: dict[str, int] = {}
    for i, name in enumerate(rows[0]):
        key = _column_key(name)
        if key in _NVSMI_COLUMNS:
            cols[_NVSMI_COLUMNS[key]] = i
    for need in _NVSMI_REQUIRED:
        if need not in cols:
            src = next(k for k, v in _NVSMI_COLUMNS.items() if v == need)
            raise InputError(f, f"missing column; expected a header from nvidia-smi --query-gpu=timestamp,index,"
                                f"uuid,utilization.gpu,memory.used --format=csv (not noheader), saw "
                                f"{', '.join(rows[0])[:120]}", row=1, column=src)
    header = _header_cells(rows[0])
    width = max(cols.values()) + 1
    n_na = 0
    kept: list[tuple[int, int, str | None, float | None]] = []  # row, GPU index, uuid, utilization
    stamps: list[dt.datetime] = []
    raw: list[str] = []
    for n, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        idx_raw = r[cols["index"]].strip() if len(r) > cols["index"] else ""
        if not idx_raw.isdigit() and any(_column_key(c) in _NVSMI_COLUMNS for c in r):
            # a header line: nvidia-smi restarted and appending to the same log
            if _header_cells(r) == header:
                continue
            raise InputError(f, f"header {', '.join(_header_cells(r))[:120]!r} differs from row 1's; the log was "
                                "appended by nvidia-smi with other --query-gpu fields: keep one header per file",
                             row=n)
        if len(r) < width:
            raise InputError(f, f"{len(r)} fields; expected {len(rows[0])} like the header", row=n)
        if not idx_raw.isdigit():
            raise InputError(f, f"{idx_raw!r} is not a GPU index; expected 0, 1, ...", row=n, column="index")
        util = _percent(r[cols["utilization"]], f, n, "utilization.gpu [%]")
        stamps.append(_parse_time(r[cols["timestamp"]], f, n, "timestamp"))
        raw.append(r[cols["timestamp"]])
        uuid = r[cols["uuid"]].strip() or None if "uuid" in cols else None
        kept.append((n, int(idx_raw), uuid, util))
    utc = _resolve_local(stamps, h.tz, f, [k[0] for k in kept], raw)
    n_ok = n_amb = 0
    for (_n, idx, uuid, util), ts in zip(kept, utc, strict=True):
        if util is None:
            n_na += 1
        elif ts is None:
            n_amb += 1
        else:
            out.add(h.resource_id, host, idx, uuid, ts, util, f)
            n_ok += 1
    out.files.append({"file": f, "format": "nvidia-smi", "samples": n_ok, "missing_values": n_na,
                      "ambiguous_times": n_amb})
    return out


def _json(p: Path) -> Any:
    try:
        return json.loads(_open_text(p))
    except json.JSONDecodeError as exc:
        raise InputError(str(p), f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None


_CW_PAGES = ("fetch every page (follow NextToken until there is none; the AWS CLI does unless given --max-items "
             "or --no-paginate) and save the pages as one JSON list")


def read_cloudwatch(path: str | Path, out: Samples | None = None) -> Samples:
    """CloudWatch ``get-metric-data`` JSON of ``nvidia_smi_utilization_gpu`` (see the module doc for how the
    InstanceId and GPU index are found). Other metrics in the file are skipped and counted.

    A paginated response is saved as a JSON list of its pages, the request's ``MetricDataQueries`` once (on any
    page): results are combined by ``Id``, their Timestamps and Values concatenated. A response cut short is
    refused, never read as the whole: a last page with a ``NextToken`` (more pages were not fetched), a result
    whose last ``StatusCode`` is not ``Complete`` (``PartialData``: the rest is on a page not saved;
    ``InternalError``, ``Forbidden``)."""
    p = Path(path)
    f = str(p)
    out = out if out is not None else Samples()
    doc = _json(p)
    pages = doc if isinstance(doc, list) else [doc]
    multi = len(pages) > 1
    queries: dict[Any, tuple[int, dict]] = {}  # Id -> (page it was first saved on, query) over all pages
    for page_no, page in enumerate(pages, start=1):
        where = f"page {page_no}" if multi else "document"
        if not isinstance(page, dict) or not isinstance(page.get("MetricDataResults"), list):
            raise InputError(f, f"{where}: expected a get-metric-data response with a MetricDataResults list")
        for q in page.get("MetricDataQueries") or []:
            if isinstance(q, dict) and "Id" in q:
                seen = queries.setdefault(q["Id"], (page_no, q))
                if seen[1] != q:
                    raise InputError(f, f"{where}: query Id {q['Id']!r} differs from page {seen[0]}'s; expected the "
                                        "pages of one request (or requests with the same queries) in a file")
    if isinstance(pages[-1].get("NextToken"), str) and pages[-1]["NextToken"]:
        where = f"page {len(pages)}" if multi else "document"
        raise InputError(f, f"{where}: NextToken without the following page: the response was cut short; {_CW_PAGES}")
    last_status: dict[Any, tuple[str, Any]] = {}  # Id -> (where, StatusCode) of its last page
    n_ok = n_na = skipped = 0
    for page_no, page in enumerate(pages, start=1):
        for k, res in enumerate(page["MetricDataResults"], start=1):
            at = f"page {page_no}, MetricDataResults[{k}]" if multi else f"MetricDataResults[{k}]"
            if not isinstance(res, dict):
                raise InputError(f, f"{at}: expected an object with Id, Timestamps, Values")
            rid_ = res.get("Id", f"#{k}")
            loc = f"{at} (Id {rid_})"
            stamps, values = res.get("Timestamps"), res.get("Values")
            if not isinstance(stamps, list) or not isinstance(values, list):
                raise InputError(f, f"{loc}: expected Timestamps and Values lists")
            if len(stamps) != len(values):
                raise InputError(f, f"{loc}: {len(stamps)} Timestamps but {len(values)} Values; expected one "
                                    "value per timestamp")
            status = res.get("StatusCode")
            if status is not None:
                last_status[res.get("Id", (page_no, k))] = (loc, status)
            q = queries.get(res.get("Id"))
            metric, instance, index = _cloudwatch_dims(q[1] if q else None, res.get("Label"))
            if metric is not None and metric != CLOUDWATCH_METRIC:
                skipped += 1
                continue
            if instance is None or index is None:
                raise InputError(f, f"{loc}: no InstanceId/index dimensions; save the request's "
                                    "MetricDataQueries in the file or label the query "
                                    "${PROP('Dim.InstanceId')} ${PROP('Dim.index')}")
            for t, v in zip(stamps, values, strict=True):
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    n_na += 1
                    continue
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
                    raise InputError(f, f"{loc}: value {v!r} is not a utilization percentage (0-100)")
                if not isinstance(t, str):
                    raise InputError(f, f"{loc}: timestamp {t!r}; expected ISO 8601 text")
                out.add(instance, None, index, None, _timestamp(t, dt.UTC, f, None, f"{loc} Timestamps"),
                        float(v), f)
                n_ok += 1
    for loc, status in last_status.values():
        if status != "Complete":
            why = "the rest is on a page not saved" if status == "PartialData" else "CloudWatch did not return it all"
            raise InputError(f, f"{loc}: StatusCode {status!r}; expected Complete ({why}); {_CW_PAGES}")
    out.files.append({"file": f, "format": "cloudwatch", "samples": n_ok, "missing_values": n_na,
                      "other_metrics": skipped})
    return out


def _cloudwatch_dims(query: dict | None, label: Any) -> tuple[str | None, str | None, int | None]:
    """(metric name, InstanceId, GPU index) from the query of a result, else from its dynamic label."""
    if query is not None:
        metric = ((query.get("MetricStat") or {}).get("Metric") or {})
        dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or [] if isinstance(d, dict)}
        idx = dims.get("index")
        return (metric.get("MetricName"), dims.get("InstanceId"),
                int(idx) if isinstance(idx, str | int) and str(idx).isdigit() else None)
    m = re.fullmatch(r"\s*(i-[0-9a-f]+)\s+(\d+)\s*", str(label or ""))
    return (None, m.group(1), int(m.group(2))) if m else (None, None, None)


def read_prometheus(path: str | Path, hosts: dict[str, Host], out: Samples | None = None) -> Samples:
    """A Prometheus ``query_range`` response of ``DCGM_FI_DEV_GPU_UTIL`` (host from ``Hostname``, else
    ``instance`` without its port, looked up in the host map). Series of other metrics are skipped and counted."""
    p = Path(path)
    f = str(p)
    out = out if out is not None else Samples()
    doc = _json(p)
    if not isinstance(doc, dict) or "data" not in doc:
        raise InputError(f, "expected a Prometheus query_range response: {\"status\": \"success\", \"data\": "
                            "{\"resultType\": \"matrix\", \"result\": [...]}}")
    if doc.get("status") != "success":
        raise InputError(f, f"query status {doc.get('status')!r} ({doc.get('error', 'no error text')}); "
                            "expected success")
    data = doc["data"]
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        got = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise InputError(f, f"data.resultType {got!r}; expected a matrix (a query_range response, not an "
                            "instant query)")
    n_ok = n_na = skipped = 0
    for k, series in enumerate(data["result"], start=1):
        loc = f"series {k}"
        if not isinstance(series, dict) or not isinstance(series.get("metric"), dict) \
                or not isinstance(series.get("values"), list):
            raise InputError(f, f"{loc}: expected an object with metric labels and values [[time, \"value\"], ...]")
        lab = series["metric"]
        name = lab.get("__name__")
        if name is not None and name != DCGM_METRIC:
            skipped += 1
            continue
        host = lab.get("Hostname") or re.sub(r":\d+$", "", str(lab.get("instance") or ""))
        if not host:
            raise InputError(f, f"{loc}: no Hostname or instance label; expected the DCGM exporter's labels")
        h = hosts.get(host.lower())
        if h is None:
            raise InputError(f, f"{loc}: host {host!r} is not in the host map; add a row "
                                f"{host},<resource id>")
        gpu = str(lab.get("gpu", ""))
        if not gpu.isdigit():
            raise InputError(f, f"{loc}: gpu label {gpu!r}; expected the GPU index (0, 1, ...)")
        for pair in series["values"]:
            if not isinstance(pair, list) or len(pair) != 2:
                raise InputError(f, f"{loc}: sample {pair!r}; expected [unix time, \"value\"]")
            t, v = pair
            if isinstance(t, bool) or not isinstance(t, int | float):
                raise InputError(f, f"{loc}: time {t!r}; expected unix seconds")
            util = _percent(str(v), f, loc, DCGM_METRIC) if str(v).lower() not in ("nan", "+inf", "-inf") else None
            if util is None:
                n_na += 1
                continue
            ts = dt.datetime.fromtimestamp(float(t), dt.UTC).replace(tzinfo=None)
            out.add(h.resource_id, host, int(gpu), lab.get("UUID"), ts, util, f)
            n_ok += 1
    out.files.append({"file": f, "format": "prometheus-dcgm", "samples": n_ok, "missing_values": n_na,
                      "other_metrics": skipped})
    return out


def detect(path: Path) -> str:
    """The format of a utilization file: nvidia-smi (CSV/log), cloudwatch or prometheus (JSON)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".log", ".txt")):
        return "nvidia-smi"
    if name.endswith(".json"):
        doc = _json(path)
        first = doc[0] if isinstance(doc, list) and doc else doc
        if isinstance(first, dict) and "MetricDataResults" in first:
            return "cloudwatch"
        if isinstance(first, dict) and "data" in first and "status" in first:
            return "prometheus"
        raise InputError(str(path), "JSON that is neither a CloudWatch get-metric-data response "
                                    "(MetricDataResults) nor a Prometheus query_range response (status, data)")
    raise InputError(str(path), "not a GPU utilization file; expected nvidia-smi .csv/.log, or CloudWatch / "
                                "Prometheus .json")


def utilization_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The utilization files of a folder (recursively) or a list of files/folders; the host map is excluded."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                          and f.name.lower().removesuffix(".gz").endswith((".csv", ".log", ".json")))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(str(p), "file not found")
    return out


def read_samples(files: Iterable[str | Path], host_map: str | Path | dict[str, Host] | None = None) -> Samples:
    """All samples of ``files`` (formats detected per file)."""
    hosts = host_map if isinstance(host_map, dict) else read_host_map(host_map) if host_map else {}
    out = Samples()
    for f in files:
        p = Path(f)
        kind = detect(p)
        if kind in ("nvidia-smi", "prometheus") and not hosts and host_map is None:
            raise InputError(str(p), f"{kind} samples name hosts, not resources; give a host map "
                                     "(host,resource_id[,timezone])")
        if kind == "nvidia-smi":
            read_nvidia_smi(p, hosts, out)
        elif kind == "cloudwatch":
            read_cloudwatch(p, out)
        else:
            read_prometheus(p, hosts, out)
    return out


@dataclass
class Loaded:
    """What :func:`load_utilization` read: per file counts, duplicates dropped, rows of the hourly table."""

    table: str
    files: pd.DataFrame
    samples: int
    duplicates: int
    hours: int

    def describe(self) -> str:
        miss = int(self.files["missing_values"].sum()) if not self.files.empty else 0
        amb = int(self.files["ambiguous_times"].fillna(0).sum()) if "ambiguous_times" in self.files else 0
        left = (f"; {amb:,} samples at an ambiguous local time left out: a repeated hour at a clock change that "
                "the log cannot place, see files.ambiguous_times") if amb else ""
        return (f"{len(self.files)} utilization file(s), {self.samples:,} samples ({self.duplicates:,} repeated "
                f"samples counted once, {miss:,} without a reading{left}), {self.hours:,} GPU-hours")


def _mean(expr: str) -> str:
    """SQL aggregate: the mean of a DOUBLE (utilization %) that does not depend on the order rows are added in --
    the exact sum (:func:`finops_kit.units.total`) over the count of non-NULL values, as ``avg`` would."""
    return f"({units.total(expr)} / nullif(count({expr}), 0))"


def load_utilization(con: duckdb.DuckDBPyConnection, paths: str | Path | Sequence[str | Path],
                     host_map: str | Path | None = None, table: str = TABLE) -> Loaded:
    """Read the utilization files and create the tidy hourly table ``table`` (TEMP) on ``con``.

    Columns: ``resource_id``, ``host``, ``gpu_index``, ``gpu_uuid``, ``hour`` (UTC), ``utilization`` (mean % of
    the hour's samples), ``samples``, ``sources``. A sample repeated for the same resource, GPU and instant counts
    once (mean of the copies). Nothing is created when a file is invalid.
    """
    skip = Path(host_map).resolve() if isinstance(host_map, str | Path) else None
    files = [f for f in utilization_files(paths) if f.resolve() != skip]
    if not files:
        raise InputError(str(paths), "no GPU utilization files (.csv/.log nvidia-smi, .json CloudWatch/Prometheus)")
    s = read_samples(files, host_map)
    df = pd.DataFrame({"resource_id": s.resource_id, "host": s.host, "gpu_index": s.gpu_index,
                       "gpu_uuid": s.gpu_uuid, "ts": pd.to_datetime(s.ts), "utilization": s.utilization,
                       "source": s.source})
    raw = con.from_df(df) if len(df) else None
    if raw is None:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {table} (resource_id VARCHAR, host VARCHAR, gpu_index INTEGER,
            gpu_uuid VARCHAR, hour TIMESTAMP, utilization DOUBLE, samples BIGINT, sources VARCHAR)""")
        return Loaded(table, pd.DataFrame(s.files), 0, 0, 0)
    view = f"_fk_gpu_raw_{id(df)}"
    con.register(view, raw)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            WITH d AS (
              SELECT resource_id, gpu_index, CAST(ts AS TIMESTAMP) AS ts, {_mean("utilization")} AS utilization,
                     min(host) AS host, min(gpu_uuid) AS gpu_uuid, min(source) AS source,
                     count(*) AS copies
              FROM {view} GROUP BY resource_id, gpu_index, CAST(ts AS TIMESTAMP))
            SELECT resource_id, min(host) AS host, gpu_index, min(gpu_uuid) AS gpu_uuid,
                   date_trunc('hour', ts) AS hour, {_mean("utilization")} AS utilization, count(*) AS samples,
                   string_agg(DISTINCT source, ', ' ORDER BY source) AS sources
            FROM d GROUP BY resource_id, gpu_index, date_trunc('hour', ts)""")
        n, dup = con.execute(f"""SELECT count(*), coalesce(sum(copies - 1), 0) FROM (
            SELECT count(*) AS copies FROM {view} GROUP BY resource_id, gpu_index, CAST(ts AS TIMESTAMP))"""
                             ).fetchall()[0]
        hours = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    finally:
        con.unregister(view)
    return Loaded(table, pd.DataFrame(s.files), int(len(df)), int(dup), int(hours))


# ------------------------------------------------------------------------------------------------ analysis
@dataclass
class IdleGpu:
    """Idle GPU dollars of one scope and utilization table (see the module doc for every rule)."""

    settings: Settings
    window: tuple[Any, Any]
    currency: str | None
    by_resource: pd.DataFrame
    by_pricing: pd.DataFrame
    unmonitored: pd.DataFrame
    unbilled: pd.DataFrame
    totals: dict[str, Any]

    @property
    def overlaps(self) -> bool:
        """True when the bill in scope has accelerator-hours in the metrics' window (monitored or not): without
        them the metrics and the bill do not overlap, and "every billed GPU has metrics" would be vacuous."""
        return bool(self.totals["monitored_resources"] or self.totals["unmonitored_resources"])

    def window_text(self) -> str:
        """The metrics' window as a table caption names it: "the 7-day metrics window (05 Oct 2026 00:00 to 12 Oct
        2026 00:00 UTC)" (its end is the end of the last hour, as :meth:`note` prints it). Why: the AI report's idle
        table showed "Scheduling savings $2,084.86" without saying it is a week's, next to summary savings per month
        (review s17 prose, finding 4)."""
        a, b = (pd.Timestamp(x) for x in self.window)
        days = (b - a) / pd.Timedelta(days=1)
        length = f"{days:,.0f}-day" if abs(days - round(days)) < 0.05 else f"{days:,.1f}-day"
        return f"the {length} metrics window ({a:%d %b %Y %H:%M} to {b:%d %b %Y %H:%M} UTC)"

    def method(self) -> str:
        """The rules in words, for report text."""
        s = self.settings
        return (f"An observed GPU-hour is idle when its mean utilization is below {s.idle_threshold:g}%; its "
                "share of the instance's billed accelerator-hours (finops_kit.units) prices it at the EffectiveCost "
                "actually paid (on-demand, spot or committed). Scheduling savings count hours in which every GPU "
                f"of the instance was idle, in runs of at least {s.schedule_min_idle_hours} hours.")

    def note(self, span: str, money: Callable[[Any], str]) -> str:
        """The section's sentences (Markdown), true on any totals: no metrics overlapping the bill, no billed
        GPU-hour observed (every accelerated resource of the window without metrics), all observed hours idle, none
        idle. ``span`` is what the bill in scope covers, already Markdown text (the report's
        ``nb.text(sc.span())``); ``money`` formats an amount (the report's ``nb.money``)."""
        t = self.totals
        window = f"From {t['window_start']:%d %b %Y %H:%M} to {t['window_end']:%d %b %Y %H:%M} UTC (the metrics' window)"
        n_unbilled, unbilled_h = t["unbilled_resources"], t["unbilled_gpu_hours"]
        unbilled = (f"{_count(n_unbilled, 'monitored host')} had {unbilled_h:,.0f} GPU-hours on no bill in scope"
                    if n_unbilled else "every monitored host matches billed accelerator-hours")
        if not self.overlaps:
            return (f"**The utilization files and the bill in scope do not overlap.** {window}, the bill in scope "
                    f"({span}) has no accelerator-hours: no idle GPU dollars can be computed. {_cap(unbilled)}: "
                    "give utilization files of the bill's period (or widen the scope to the metrics' window).")
        n_un, un_cost = t["unmonitored_resources"], money(t["unmonitored_cost"])
        if not t["monitored_resources"]:  # billed GPUs in the window, none of them in the utilization files
            return (f"{window}, **no billed GPU-hour was observed**: none of the {_count(n_un, 'accelerated resource')} "
                    f"billed in the window ({un_cost}) has a utilization metric, so no idle GPU-hours, idle dollars, "
                    "cost per utilized GPU-hour or scheduling savings can be computed for them: install the "
                    "CloudWatch agent or the DCGM exporter there, or add the host to the host map (table below). "
                    f"{_cap(unbilled)}.")
        obs, idle_h = t["observed_gpu_hours"], t["idle_gpu_hours"]
        work = (f"A GPU-hour of real work cost **{money(t['cost_per_utilized_gpu_hour'])}** there. "
                if t["cost_per_utilized_gpu_hour"] is not None else
                "No observed GPU-hour did work (all idle), so there is no cost per utilized GPU-hour. ")
        unmonitored = (f"{_count(n_un, 'accelerated resource')} billed {un_cost} in the window without any "
                       "utilization metric" if n_un else
                       "every accelerated resource billed in the window has a utilization metric")
        return (f"{window}, **{money(t['idle_cost'])}** was paid for **{idle_h:,.0f} idle GPU-hours**, "
                f"{_share(idle_h, obs)} of the {obs:,.0f} GPU-hours observed on "
                f"{_count(t['monitored_resources'], 'instance')}. {work}Stopping the instances when all their GPUs "
                f"idled would have saved **{money(t['schedule_savings'])}**. {_cap(unmonitored)}, and {unbilled}.")

    def contacts(self, money: Callable[[Any], str], top: int = 10) -> str:
        """Who to ask about each of the ``top`` resources with idle dollars (Markdown): the ``owner`` tag's
        contact when it has one; when it has none but its team (the allocation key, as every report names the
        team) is known, its team; "nobody to ask: fix its tags first" only when both are missing.

        Why: the section said "a resource with (untagged) owner has nobody to ask" of i-02e9b32251ed2a9be, whose
        team (nlp) the summary at the top of the same report names as its owner (review s17 prose, finding 8):
        "owner" meant the team in one place and the ``owner`` tag in another."""
        df = self.by_resource
        if df.empty or "idle_cost" not in df:
            return ""
        df = df[df["idle_cost"].map(lambda v: v is not None and v == v and float(v) > 0)]
        if df.empty:
            return "No resource had idle GPU dollars in the metrics' window: nobody to ask."
        df = df.assign(_d=df["idle_cost"].map(float)).sort_values("_d", ascending=False).head(top)

        def known(v: Any) -> bool:
            return v is not None and v == v and str(v).strip() not in ("", UNTAGGED, SHARED)

        lines = []
        for r in df.to_dict("records"):
            head = f"`{r['resource_id']}` ({money(r['idle_cost'])} idle)"
            if known(r.get("owner")):
                lines.append(f"{head}: ask {r['owner']} (its `owner` tag)")
            elif known(r.get("team")):
                lines.append(f"{head}: no `owner` tag, so no named contact; ask its team ({r['team']}) and fix the "
                             "tag")
            else:
                lines.append(f"{head}: no `owner` tag and no team: nobody to ask, fix its tags first (the tagging "
                             "audit)")
        return "**Who to ask** about the idle resources above: " + "; ".join(lines) + "."


def _count(n: int, noun: str) -> str:
    """``3 instances``, ``1 instance``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _share(part: float, whole: float) -> str:
    """``part / whole`` as a whole percentage, never "0%" or "100%" for a share that is not."""
    r = part / whole if whole else 0.0
    if 0 < r < 0.005:
        return "under 1%"
    if 0.995 <= r < 1:
        return "over 99%"
    return f"{r:.0%}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _billed_sql(sc: Any, attr: Any, w0: str, w1: str) -> str:
    """Per resource, charge period and pricing class in the window: cost, billed GPU- and instance-hours, team."""
    owner = attr.label_sql("owner") if "owner" in attr.policy.keys else "CAST(NULL AS VARCHAR)"
    # only the instances (units.INSTANCE_KEY) with a row in the window: the accelerated usage of an instance is
    # derived from its own rows (its anchor, classes, licence split; the family of an unused commitment, which
    # reads other instances, is not used here), so its rows are the same as over the whole scope -- which derived
    # 14 months of instances for a metrics window of days (0.27 s of the AI report's idle-GPU cell)
    rows = sc.rows_sql()
    key = " AND ".join(["_w.ResourceId = _s.ResourceId"] + [f"_w.{c} IS NOT DISTINCT FROM _s.{c}"
                                                            for c in units.INSTANCE_KEY if c != "ResourceId"])
    inside = (f"(SELECT _s.* FROM {rows} _s SEMI JOIN (SELECT DISTINCT {', '.join(units.INSTANCE_KEY)} FROM {rows} "
              f"WHERE ResourceId IS NOT NULL AND ChargePeriodEnd > TIMESTAMP {sql_str(w0)} "
              f"AND ChargePeriodStart < TIMESTAMP {sql_str(w1)}) _w ON {key})")
    return f"""
      SELECT {units.resource_key_sql()} AS rid, min(ResourceId) AS ResourceId, ProviderName AS provider,
             ChargePeriodStart AS ps, ChargePeriodEnd AS pe, pricing, BillingCurrency AS currency,
             arg_max(instance_type, (coalesce(accelerator_hours, 0), instance_type)) AS instance_type,
             coalesce(sum(EffectiveCost) FILTER (WHERE has_accelerator_hours), 0) AS cost,
             coalesce({units.total("accelerator_hours")}, 0) AS gpu_hours,
             coalesce({units.total("instance_hours")}, 0) AS instance_hours,
             arg_max(_team, (EffectiveCost, _team)) AS team, arg_max(_owner, (EffectiveCost, _owner)) AS owner
      FROM (SELECT *, {attr.owner_sql()} AS _team, {owner} AS _owner
            FROM ({units.accelerated_usage_sql(source=inside)}))
      WHERE ResourceId IS NOT NULL AND has_accelerator_hours
        AND ChargePeriodEnd > TIMESTAMP {sql_str(w0)} AND ChargePeriodStart < TIMESTAMP {sql_str(w1)}
      GROUP BY ALL"""


def idle_gpu(con: duckdb.DuckDBPyConnection, sc: Any, table: str = TABLE, *, settings: Settings | None = None,
             config: Any = None, top: int | None = None) -> IdleGpu:
    """Idle GPU-hours and dollars, cost per utilized GPU-hour, scheduling savings and the resources on one side
    only, for the resolved scope ``sc`` and the utilization table ``table`` (:func:`load_utilization`)."""
    st = settings or load_settings(config if config is not None else getattr(sc, "config", None))
    thr, run_min = st.idle_threshold, st.schedule_min_idle_hours
    w = con.execute(f"SELECT min(hour), max(hour) + INTERVAL 1 HOUR FROM {table}").fetchall()[0]
    if w[0] is None:
        raise InputError(table, "no GPU utilization samples to analyse")
    w0, w1 = (str(x) for x in w)
    attr = sc.attribution
    tag = f"_fk_idle_{abs(hash((table, w0, w1))) % 10**8}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {tag}_b AS {_billed_sql(sc, attr, w0, w1)}")
    try:
        return _analyse(con, sc, table, st, thr, run_min, (w[0], w[1]), tag, top)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {tag}_b")
        con.execute(f"DROP TABLE IF EXISTS {tag}_p")


def _analyse(con: duckdb.DuckDBPyConnection, sc: Any, table: str, st: Settings, thr: float, run_min: int,
             window: tuple[Any, Any], tag: str, top: int | None) -> IdleGpu:
    b = f"{tag}_b"
    # one row per resource and charge period: billed GPU-hours and cost; observed, idle GPU-hours from the metrics
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {tag}_p AS
        WITH per AS (
          SELECT rid, ps, pe, min(ResourceId) AS ResourceId, min(provider) AS provider,
                 min(currency) AS currency, arg_max(instance_type, (gpu_hours, instance_type)) AS instance_type,
                 sum(cost) AS cost, {units.total("gpu_hours")} AS gpu_hours,
                 {units.total("instance_hours")} AS instance_hours,
                 arg_max(team, (cost, team)) AS team, arg_max(owner, (cost, owner)) AS owner
          FROM {b} GROUP BY rid, ps, pe),
        h AS (
          SELECT per.rid, per.ps, u.hour, count(*) AS gpus,
                 count(*) FILTER (WHERE u.utilization < {thr!r}) AS idle_gpus, {_mean("u.utilization")} AS util
          FROM {table} u JOIN per ON {units.resource_key_sql('u.resource_id')} = per.rid AND u.hour >= per.ps AND u.hour < per.pe
          GROUP BY ALL),
        -- hours in which every GPU of the instance was idle, and the length of their consecutive run
        allidle AS (
          SELECT h.*, h.hour - to_hours(row_number() OVER (PARTITION BY h.rid ORDER BY h.hour)) AS grp
          FROM h JOIN per USING (rid, ps)
          WHERE per.instance_hours > 0 AND h.idle_gpus = h.gpus
            AND h.gpus >= round(per.gpu_hours / per.instance_hours)),
        runs AS (SELECT rid, ps, hour, count(*) OVER (PARTITION BY rid, grp) AS run_hours FROM allidle),
        obs AS (
          SELECT h.rid, h.ps, sum(h.gpus) AS observed, sum(h.idle_gpus) AS idle,
                 {units.total("h.gpus * h.util")} AS util_sum
          FROM h GROUP BY ALL),
        sched AS (SELECT rid, ps, count(*) AS sched_hours FROM runs WHERE run_hours >= {int(run_min)} GROUP BY ALL)
        SELECT per.*, coalesce(o.observed, 0) AS observed_raw, coalesce(o.idle, 0) AS idle_raw,
               coalesce(o.util_sum, 0) AS util_sum, coalesce(s.sched_hours, 0) AS sched_hours,
               -- observed GPU-hours beyond the billed ones are scaled down to them
               CASE WHEN coalesce(o.observed, 0) > per.gpu_hours AND o.observed > 0
                    THEN per.gpu_hours / o.observed ELSE 1 END AS k
        FROM per LEFT JOIN obs o USING (rid, ps) LEFT JOIN sched s USING (rid, ps)""")
    p = f"{tag}_p"
    money_frac = lambda x: f"CAST(cost * ({x}) / nullif(gpu_hours, 0) AS DOUBLE)"  # noqa: E731
    by_res = con.execute(f"""
        WITH q AS (
          SELECT *, idle_raw * k AS idle_h, (observed_raw - idle_raw) * k AS used_h,
                 gpu_hours - least(observed_raw, gpu_hours) AS unmeasured_h
          FROM {p}),
        r AS (
          SELECT min(ResourceId) AS resource_id, provider, arg_max(instance_type, (gpu_hours, instance_type))
                   AS instance_type, arg_max(team, (cost, team)) AS team, arg_max(owner, (cost, owner)) AS owner,
                 min(currency) AS currency,
                 {units.total("gpu_hours")} AS billed_gpu_hours, {units.total("observed_raw * k")} AS observed_gpu_hours,
                 {units.total("idle_h")} AS idle_gpu_hours, {units.total("used_h")} AS utilized_gpu_hours,
                 {units.total("util_sum")} / nullif(sum(observed_raw), 0) AS mean_utilization,
                 sum(cost) AS cost,
                 {units.total(money_frac('idle_h'))} AS idle_cost,
                 {units.total(money_frac('used_h'))} AS utilized_cost,
                 {units.total(money_frac('unmeasured_h'))} AS unmeasured_cost,
                 sum(sched_hours) AS schedulable_hours,
                 {units.total("CAST(cost AS DOUBLE) * sched_hours / nullif(instance_hours, 0)")} AS schedule_savings
          FROM q GROUP BY rid, provider HAVING sum(observed_raw) > 0)
        SELECT * REPLACE (least(schedule_savings, idle_cost) AS schedule_savings),
               (idle_cost + utilized_cost) / nullif(utilized_gpu_hours, 0) AS cost_per_utilized_gpu_hour,
               idle_gpu_hours / nullif(observed_gpu_hours, 0) AS idle_share
        FROM r ORDER BY idle_cost DESC, resource_id""").df()
    by_pricing = con.execute(f"""
        WITH f AS (SELECT rid, ps, idle_raw * k / nullif(gpu_hours, 0) AS fi, (observed_raw - idle_raw) * k
                          / nullif(gpu_hours, 0) AS fu FROM {p}
                   WHERE rid IN (SELECT rid FROM {p} GROUP BY rid HAVING sum(observed_raw) > 0))
        SELECT b.pricing, b.currency, sum(b.cost)::{MONEY} AS cost, {units.total("b.gpu_hours")} AS billed_gpu_hours,
               {units.total("CAST(b.cost AS DOUBLE) * f.fi")} AS idle_cost,
               {units.total("b.gpu_hours * f.fi")} AS idle_gpu_hours,
               {units.total("CAST(b.cost AS DOUBLE) * f.fu")} AS utilized_cost
        FROM {tag}_b b JOIN f USING (rid, ps) GROUP BY ALL ORDER BY idle_cost DESC, b.pricing, b.currency""").df()
    unmonitored = con.execute(f"""
        SELECT min(ResourceId) AS resource_id, provider,
               arg_max(instance_type, (gpu_hours, instance_type)) AS instance_type,
               arg_max(team, (cost, team)) AS team, arg_max(owner, (cost, owner)) AS owner, min(currency) AS currency,
               {units.total("gpu_hours")} AS billed_gpu_hours, sum(cost)::{MONEY} AS cost
        FROM {p} GROUP BY rid, provider HAVING sum(observed_raw) = 0
        ORDER BY cost DESC, resource_id""").df()
    unbilled = con.execute(f"""
        SELECT min(u.resource_id) AS resource_id, min(u.host) AS host, count(DISTINCT u.gpu_index) AS gpus,
               count(*) AS observed_gpu_hours, min(u.hour) AS first_hour, max(u.hour) AS last_hour,
               {units.resource_key_sql('u.resource_id')} IN (SELECT rid FROM {p}) AS resource_billed
        FROM {table} u
        WHERE NOT EXISTS (SELECT 1 FROM {p} x WHERE x.rid = {units.resource_key_sql('u.resource_id')} AND u.hour >= x.ps
                          AND u.hour < x.pe)
        GROUP BY {units.resource_key_sql('u.resource_id')} ORDER BY observed_gpu_hours DESC, resource_id""").df()
    tot = con.execute(f"""
        SELECT sum(cost) FILTER (WHERE observed_raw > 0) AS monitored_cost,
               sum(cost) FILTER (WHERE observed_raw = 0) AS unmonitored_cost_all
        FROM (SELECT rid, sum(cost) AS cost, sum(observed_raw) AS observed_raw FROM {p} GROUP BY rid)""").fetchall()[0]
    for frame, cols in ((by_res, ("cost", "idle_cost", "utilized_cost", "unmeasured_cost", "schedule_savings")),
                        (by_pricing, ("idle_cost", "utilized_cost"))):
        for c in cols:
            frame[c] = frame[c].astype(float).round(6)  # DOUBLE shares of DECIMAL cost: no 1e-14 residues
    if top:
        by_res = by_res.head(top)
    f = lambda c: float(by_res[c].sum()) if len(by_res) else 0.0  # noqa: E731
    cur = by_res["currency"].dropna().unique().tolist() if len(by_res) else []
    totals = {
        "window_start": window[0], "window_end": window[1], "idle_threshold": st.idle_threshold,
        "monitored_resources": int(len(by_res)), "monitored_cost": float(tot[0] or 0),
        "billed_gpu_hours": f("billed_gpu_hours"), "observed_gpu_hours": f("observed_gpu_hours"),
        "idle_gpu_hours": f("idle_gpu_hours"), "utilized_gpu_hours": f("utilized_gpu_hours"),
        "idle_cost": f("idle_cost"), "utilized_cost": f("utilized_cost"), "unmeasured_cost": f("unmeasured_cost"),
        "schedule_savings": f("schedule_savings"),
        "cost_per_utilized_gpu_hour": ((f("idle_cost") + f("utilized_cost")) / f("utilized_gpu_hours")
                                       if f("utilized_gpu_hours") else None),
        "unmonitored_resources": int(len(unmonitored)), "unmonitored_cost": float(tot[1] or 0),
        "unbilled_resources": int(len(unbilled)),
        "unbilled_gpu_hours": float(unbilled["observed_gpu_hours"].sum()) if len(unbilled) else 0.0,
    }
    totals = {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()}
    # the split must add up to the billed cost of the monitored resources (a check that can fail)
    split = totals["idle_cost"] + totals["utilized_cost"] + totals["unmeasured_cost"]
    if not top and abs(split - totals["monitored_cost"]) > 0.01:
        raise AssertionError(f"idle GPU split {split:.6f} differs from billed cost {totals['monitored_cost']:.6f}")
    return IdleGpu(st, window, cur[0] if len(cur) == 1 else getattr(sc, "currency", None), by_res, by_pricing,
                   unmonitored, unbilled, totals)


__all__ = ["Host", "IdleGpu", "Loaded", "Samples", "Settings", "TABLE", "detect", "idle_gpu", "load_settings",
           "load_utilization", "read_cloudwatch", "read_host_map", "read_nvidia_smi", "read_prometheus",
           "read_samples", "unit_section", "utilization_files"]
