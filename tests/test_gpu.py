"""Idle GPU dollars (finops_kit.gpu): the planted idle instance of the samples is recovered exactly, and every
utilization reader refuses hostile input with one line naming the file, row or series and what was expected."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import gpu
from finops_kit.errors import ConfigError, InputError
from finops_kit.scope import resolve

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
GPU_DIR = SAMPLES / "_ai_units" / "gpu"
HEADER = "timestamp, index, uuid, utilization.gpu [%], memory.used [MiB]\n"


@pytest.fixture(scope="module")
def planted() -> dict:
    return json.loads((SAMPLES / "PLANTED.json").read_text())["ai_units"]["idle_gpu"]


@pytest.fixture(scope="module")
def idle(sample_warehouse: str):
    con = fk.connect(sample_warehouse, read_only=True)
    loaded = gpu.load_utilization(con, GPU_DIR, GPU_DIR / "hosts.csv")
    sc = resolve(con, str(REPO / "finops.yaml"), {})
    yield loaded, gpu.idle_gpu(con, sc), (con, sc)
    con.close()


def test_planted_idle_instance_recovered_exactly(idle, planted) -> None:
    _loaded, r, _ = idle
    row = r.by_resource.set_index("resource_id").loc[planted["resource_id"]]
    assert row["team"] == planted["team"] and row["owner"] == "(untagged)"  # the forgotten box has no owner tag
    assert row["billed_gpu_hours"] == planted["billed_gpu_hours"]
    assert row["idle_gpu_hours"] == planted["idle_gpu_hours"]
    assert Decimal(f"{row['cost']:.6f}") == Decimal(planted["billed_cost"])
    assert Decimal(f"{row['idle_cost']:.6f}") == Decimal(planted["idle_cost"])
    assert row["schedulable_hours"] == planted["schedulable_hours"]
    assert Decimal(f"{row['schedule_savings']:.6f}") == Decimal(planted["schedule_savings"])
    # it is the top idle resource, and what idle costs is stated at the price paid (on-demand here)
    assert r.by_resource.iloc[0]["resource_id"] == planted["resource_id"]
    assert r.by_pricing.set_index("pricing").loc["On-demand", "idle_cost"] >= float(planted["idle_cost"])


def test_split_reconciles_and_sides_reported(idle, planted) -> None:
    loaded, r, _ = idle
    t = r.totals
    assert abs(t["idle_cost"] + t["utilized_cost"] + t["unmeasured_cost"] - t["monitored_cost"]) < 1e-6
    assert t["cost_per_utilized_gpu_hour"] == pytest.approx(
        (t["idle_cost"] + t["utilized_cost"]) / t["utilized_gpu_hours"])
    # the workstation is in the host map but on no bill: metrics without billed cost
    assert list(r.unbilled["host"]) == [planted["unbilled_host"]]
    assert not r.unbilled["resource_billed"].any()
    # accelerated resources billed in the window without metrics are listed with their cost
    assert t["unmonitored_resources"] == len(r.unmonitored) > 0
    assert planted["resource_id"] not in set(r.unmonitored["resource_id"])
    # three formats were read (nvidia-smi, CloudWatch, Prometheus DCGM), the committed chat-api box is not idle
    assert set(loaded.files["format"]) == {"nvidia-smi", "cloudwatch", "prometheus-dcgm"}
    committed = r.by_pricing.set_index("pricing").loc["Committed"]
    assert committed["idle_cost"] == 0 and committed["utilized_cost"] > 0


def test_ingest_skips_the_side_folder(sample_warehouse: str) -> None:
    con = fk.connect(sample_warehouse, read_only=True)
    files = {r[0] for r in con.execute("SELECT DISTINCT x_SourceFile FROM focus").fetchall()}
    con.close()
    assert not any("_ai_units" in f for f in files)
    from finops_kit.inputs import resolve as resolve_inputs

    got = resolve_inputs([str(SAMPLES)])
    side = [s for s in got.skipped if "_ai_units" in s["path"]]
    assert side and all("side file" in s["reason"] for s in side)
    assert not any("_ai_units" in f for f in got.files)


# ------------------------------------------------------------------------------------------- hostile inputs
def _hosts(tmp: Path, rows: str = "gpu-a,i-0aaa,UTC\n") -> Path:
    p = tmp / "hosts.csv"
    p.write_text("host,resource_id,timezone\n" + rows)
    return p


def _load(tmp: Path, files: list[Path], hosts: Path | None = None):
    con = duckdb.connect()
    got = gpu.load_utilization(con, files, hosts)
    rows = con.execute(f"SELECT resource_id, gpu_index, hour, utilization, samples FROM {gpu.TABLE} "
                       "ORDER BY ALL").fetchall()
    return got, rows


def _refused(tmp: Path, files: list[Path], hosts: Path | None = None) -> str:
    """The one-line error loading ``files`` fails with."""
    with pytest.raises(InputError) as e:
        _load(tmp, files, hosts)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_nvidia_smi_percent_na_and_timezone(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path, "gpu-a,i-0aaa,Europe/Berlin\n")
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + "2026/10/05 09:10:00.123, 0, GPU-1, 40 %, 100 MiB\n"
                   "2026/10/05 09:20:00.456, 0, GPU-1, [N/A], [N/A]\n"
                   "2026/10/05 09:30:00.000, 0, GPU-1, 20, 100\n")
    got, rows = _load(tmp_path, [log], hosts)
    # 09:xx in Berlin (CEST, +02:00) is 07:00 UTC; [N/A] is a missing sample, not zero
    assert rows == [("i-0aaa", 0, dt.datetime(2026, 10, 5, 7), 30.0, 2)]
    assert got.files.iloc[0]["missing_values"] == 1


def test_duplicated_samples_count_once(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    body = "2026/10/05 09:10:00.000, 0, GPU-1, 90 %, 1 MiB\n2026/10/05 09:40:00.000, 0, GPU-1, 10 %, 1 MiB\n"
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + body + body)  # the log appended twice
    copy = tmp_path / "copy" / "gpu-a.csv.gz"
    copy.parent.mkdir()
    copy.write_bytes(gzip.compress((HEADER + body).encode()))  # and the same samples in a second file
    got, rows = _load(tmp_path, [log, copy], hosts)
    assert rows == [("i-0aaa", 0, dt.datetime(2026, 10, 5, 9), 50.0, 2)]
    assert got.duplicates == 4


def test_appended_log_with_a_second_header_counts_once(tmp_path: Path) -> None:
    """A restarted ``nvidia-smi ... -l 60 >> host.csv`` writes its header again in the middle of the log."""
    hosts = _hosts(tmp_path)
    body = "2026/10/05 09:10:00.000, 0, GPU-1, 90 %, 1 MiB\n2026/10/05 09:40:00.000, 0, GPU-1, 10 %, 1 MiB\n"
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + body + "\n" + HEADER + body)
    got, rows = _load(tmp_path, [log], hosts)
    assert rows == [("i-0aaa", 0, dt.datetime(2026, 10, 5, 9), 50.0, 2)]
    assert (got.samples, got.duplicates) == (4, 2)


def test_appended_log_with_other_columns_refused(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + "2026/10/05 09:10:00.000, 0, GPU-1, 90 %, 1 MiB\n"
                   "timestamp, index, utilization.gpu [%]\n2026/10/05 09:20:00.000, 0, 80 %\n")
    msg = _refused(tmp_path, [log], hosts)
    assert msg.startswith(f"{log}, row 3: ") and "header" in msg and "differs from row 1" in msg


def _ny_log(start_utc: dt.datetime, minutes: int, every: int, util, gpus: int = 1) -> str:
    """An nvidia-smi log as a New York host writes it: local wall time without an offset, in time order."""
    ny = ZoneInfo("America/New_York")
    out = [HEADER]
    for k in range(0, minutes, every):
        u = start_utc + dt.timedelta(minutes=k)
        for g in range(gpus):
            out.append(f"{u.astimezone(ny):%Y/%m/%d %H:%M:%S}.000, {g}, GPU-{g}, {util(u)} %, 1 MiB\n")
    return "".join(out)


def test_nvidia_smi_fall_back_hour_resolved_from_the_sequence(tmp_path: Path) -> None:
    """2026-11-01 in New York: 01:00-01:59 local happens twice (EDT, then EST). The log runs in time order, so the
    local time stepping back at the transition is the second occurrence: five UTC hours stay five, nothing merged."""
    hosts = _hosts(tmp_path, "gpu-a,i-0aaa,America/New_York\n")
    busy = dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC)  # 01:xx EDT busy, the repeated 01:xx EST idle
    log = tmp_path / "gpu-a.csv"
    log.write_text(_ny_log(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC), 5 * 60, 10,
                           lambda u: 95 if busy <= u < busy + dt.timedelta(hours=1) else 0, gpus=2))
    got, rows = _load(tmp_path, [log], hosts)
    hours = [(g, h.hour, u, n) for _r, g, h, u, n in rows]
    assert hours == [(g, h, 95.0 if h == 5 else 0.0, 6) for g in (0, 1) for h in (4, 5, 6, 7, 8)]
    assert (got.samples, got.duplicates, got.hours) == (60, 0, 10)
    assert got.files.iloc[0]["ambiguous_times"] == 0


def test_nvidia_smi_unresolvable_repeated_hour_counted_not_merged(tmp_path: Path) -> None:
    """A log that starts inside the repeated hour cannot say which 01:xx it is: those samples are left out and
    counted (reported by describe()), never guessed into one of the two hours."""
    hosts = _hosts(tmp_path, "gpu-a,i-0aaa,America/New_York\n")
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + "2026/11/01 01:30:00.000, 0, GPU-1, 50 %, 1 MiB\n"
                   "2026/11/01 01:40:00.000, 0, GPU-1, 50 %, 1 MiB\n"
                   "2026/11/01 02:10:00.000, 0, GPU-1, 7 %, 1 MiB\n")
    got, rows = _load(tmp_path, [log], hosts)
    assert rows == [("i-0aaa", 0, dt.datetime(2026, 11, 1, 7), 7.0, 1)]  # 02:10 EST
    assert got.files.iloc[0]["ambiguous_times"] == 2 and got.samples == 1
    assert "2 samples at an ambiguous local time" in got.describe()


def test_nvidia_smi_nonexistent_local_time_refused(tmp_path: Path) -> None:
    """2026-03-08 in New York skips 02:00-02:59: a log with 02:30 is not on that clock (a wrong time zone in the
    host map), and read as EST it would land on the real 03:30 EDT sample."""
    hosts = _hosts(tmp_path, "gpu-a,i-0aaa,America/New_York\n")
    log = tmp_path / "gpu-a.csv"
    log.write_text(HEADER + "2026/03/08 01:50:00.000, 0, GPU-1, 5 %, 1 MiB\n"
                   "2026/03/08 02:30:00.000, 0, GPU-1, 5 %, 1 MiB\n")
    msg = _refused(tmp_path, [log], hosts)
    assert msg.startswith(f"{log}, row 3, column 'timestamp': ") and "does not exist in America/New_York" in msg


@pytest.mark.parametrize("body, expect", [
    ("timestamp, index, uuid, memory.used [MiB]\n2026/10/05 09:10:00.000, 0, GPU-1, 1 MiB\n",
     "row 1, column 'utilization.gpu': missing column"),
    (HEADER + "2026/10/05 09:10:00.000, 0, GPU-1\n", "row 2: 3 fields; expected 5"),
    (HEADER + "2026/10/05 09:10:00.000, 0, GPU-1, busy, 1 MiB\n",
     "row 2, column 'utilization.gpu [%]': 'busy' is not a utilization"),
    (HEADER + "2026/10/05 09:10:00.000, 0, GPU-1, 140 %, 1 MiB\n", "row 2, column 'utilization.gpu [%]': "
     "utilization '140 %' outside 0-100"),
    (HEADER + "05.10.2026 09:10, 0, GPU-1, 40 %, 1 MiB\n", "row 2, column 'timestamp': '05.10.2026 09:10' "
     "is not a timestamp"),
    (HEADER + "2026/10/05 09:10:00.000, x, GPU-1, 40 %, 1 MiB\n", "row 2, column 'index': 'x' is not a GPU index"),
    ("", "empty nvidia-smi log"),
])
def test_nvidia_smi_malformed_rows(tmp_path: Path, body: str, expect: str) -> None:
    hosts = _hosts(tmp_path)
    log = tmp_path / "gpu-a.csv"
    log.write_text(body)
    msg = _refused(tmp_path, [log], hosts)
    assert (msg.startswith(f"{log}, ") or msg.startswith(f"{log}: ")) and expect in msg


def test_unknown_host_and_bad_map(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path)
    log = tmp_path / "gpu-z.csv"
    log.write_text(HEADER + "2026/10/05 09:10:00.000, 0, GPU-1, 40 %, 1 MiB\n")
    with pytest.raises(InputError, match=r"gpu-z.csv: host 'gpu-z' \(the file name\) is not in the host map"):
        _load(tmp_path, [log], hosts)
    bad = _hosts(tmp_path, "gpu-z,i-0zzz,Mars/Olympus\n")
    with pytest.raises(InputError, match=r"hosts.csv, row 2, column 'timezone': unknown time zone 'Mars/Olympus'"):
        _load(tmp_path, [log], bad)
    (tmp_path / "hosts.csv").write_text("name,instance\nx,y\n")
    with pytest.raises(InputError, match=r"hosts.csv, column 'host': missing column"):
        _load(tmp_path, [log], tmp_path / "hosts.csv")
    with pytest.raises(InputError, match="give a host map"):
        _load(tmp_path, [log], None)


def _cw(tmp: Path, doc: object) -> Path:
    p = tmp / "cw.json"
    p.write_text(json.dumps(doc))
    return p


def _query(qid: str, metric: str = "nvidia_smi_utilization_gpu") -> dict:
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": "CWAgent", "MetricName": metric, "Dimensions": [
        {"Name": "InstanceId", "Value": "i-0abc"}, {"Name": "index", "Value": "1"}]}, "Period": 300,
        "Stat": "Average"}}


def test_cloudwatch_offsets_labels_and_other_metrics(tmp_path: Path) -> None:
    doc = {"MetricDataQueries": [_query("a"), _query("m", "nvidia_smi_memory_used")],
           "MetricDataResults": [
               {"Id": "a", "Label": "x", "Timestamps": ["2026-10-05T11:05:00+02:00", "2026-10-05T09:10:00Z"],
                "Values": [10.0, 30.0], "StatusCode": "Complete"},
               {"Id": "m", "Label": "mem", "Timestamps": ["2026-10-05T09:00:00Z"], "Values": [5000],
                "StatusCode": "Complete"},
               {"Id": "b", "Label": "i-0def 3", "Timestamps": ["2026-10-05T09:00:00Z"], "Values": [1.5]}]}
    got, rows = _load(tmp_path, [_cw(tmp_path, doc)])
    assert rows == [("i-0abc", 1, dt.datetime(2026, 10, 5, 9), 20.0, 2),  # 11:05+02:00 is 09:05 UTC
                    ("i-0def", 3, dt.datetime(2026, 10, 5, 9), 1.5, 1)]  # dimensions from the dynamic label
    assert got.files.iloc[0]["other_metrics"] == 1


@pytest.mark.parametrize("doc, expect", [
    ({"MetricDataResults": {"Id": "a"}}, "document: expected a get-metric-data response with a MetricDataResults list"),
    ({"MetricDataResults": [{"Id": "a", "Timestamps": ["2026-10-05T09:00:00Z"], "Values": [1, 2]}]},
     "MetricDataResults[1] (Id a): 1 Timestamps but 2 Values"),
    ({"MetricDataResults": [{"Id": "a", "Label": "gpu", "Timestamps": [], "Values": []}]},
     "no InstanceId/index dimensions"),
    ({"MetricDataQueries": [_query("a")], "MetricDataResults": [
        {"Id": "a", "Timestamps": ["2026-10-05T09:00:00Z"], "Values": ["high"]}]}, "value 'high' is not a "
     "utilization percentage"),
    ([1, 2], "page 1: expected a get-metric-data response"),
])
def test_cloudwatch_wrong_shape(tmp_path: Path, doc: object, expect: str) -> None:
    p = tmp_path / "cw.json"
    p.write_text(json.dumps(doc))
    if isinstance(doc, list):  # a list of pages is only CloudWatch when its first page says so
        with pytest.raises(InputError, match="neither a CloudWatch"):
            _load(tmp_path, [p])
        return
    msg = _refused(tmp_path, [p])
    assert msg.startswith(f"{p}: ") and expect in msg


def _page(ts: list[str], status: str = "Complete", token: str | None = None, queries: bool = True) -> dict:
    page: dict = {"MetricDataResults": [{"Id": "a", "Label": "nvidia_smi_utilization_gpu", "Timestamps": ts,
                                         "Values": [2.0] * len(ts), "StatusCode": status}]}
    if queries:
        page["MetricDataQueries"] = [_query("a")]
    if token:
        page["NextToken"] = token
    return page


_TS = [f"2026-10-05T{h:02d}:00:00Z" for h in range(4)]


@pytest.mark.parametrize("doc, expect", [
    (_page(_TS[:2], "PartialData", "AAAA"), "document: NextToken"),
    (_page(_TS[:2], "Complete", "AAAA"), "document: NextToken"),
    (_page(_TS[:2], "PartialData"), "MetricDataResults[1] (Id a): StatusCode 'PartialData'"),
    (_page(_TS[:2], "InternalError"), "MetricDataResults[1] (Id a): StatusCode 'InternalError'"),
    ([_page(_TS[:1], "PartialData", "A"), _page(_TS[1:2], "PartialData", "B", queries=False)], "page 2: NextToken"),
    ([_page(_TS[:2], "PartialData", "A"), {"MetricDataResults": []}], "page 1, MetricDataResults[1] (Id a): "
     "StatusCode 'PartialData'"),
])
def test_cloudwatch_truncated_response_refused(tmp_path: Path, doc: object, expect: str) -> None:
    """A page with a NextToken and no following page, or a result that is not Complete, is a response cut short:
    loading it would turn the missing hours into unmeasured dollars without a word."""
    p = _cw(tmp_path, doc)
    msg = _refused(tmp_path, [p])
    assert msg.startswith(f"{p}: ") and expect in msg and "fetch every page" in msg


def test_cloudwatch_pages_combined(tmp_path: Path) -> None:
    """The pages of one paginated response saved as a JSON list, the request's queries once: results are combined
    by Id (their Timestamps and Values concatenated)."""
    doc = [_page(_TS[:2], "PartialData", "AAAA"), _page(_TS[2:], queries=False)]
    got, rows = _load(tmp_path, [_cw(tmp_path, doc)])
    assert rows == [("i-0abc", 1, dt.datetime(2026, 10, 5, h), 2.0, 1) for h in range(4)]
    assert got.files.iloc[0]["samples"] == 4


def test_cloudwatch_pages_with_conflicting_queries_refused(tmp_path: Path) -> None:
    other = _query("a")
    other["MetricStat"]["Metric"]["Dimensions"][0]["Value"] = "i-0fff"
    doc = [_page(_TS[:2], "PartialData", "AAAA"), {**_page(_TS[2:]), "MetricDataQueries": [other]}]
    p = _cw(tmp_path, doc)
    assert _refused(tmp_path, [p]).startswith(f"{p}: page 2: query Id 'a' differs from page 1")


def _prom(tmp: Path, result: list, rtype: str = "matrix", status: str = "success") -> Path:
    p = tmp / "prom.json"
    p.write_text(json.dumps({"status": status, "data": {"resultType": rtype, "result": result}}))
    return p


def test_prometheus_dcgm(tmp_path: Path) -> None:
    hosts = _hosts(tmp_path, "node-1,i-0n1,\n")
    t0 = int(dt.datetime(2026, 10, 5, 9, tzinfo=dt.UTC).timestamp())
    series = [{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": "2", "UUID": "GPU-9", "Hostname": "node-1"},
               "values": [[t0, "3"], [t0 + 600, "NaN"], [t0 + 1200, "5"]]},
              {"metric": {"__name__": "DCGM_FI_DEV_FB_USED", "gpu": "2", "Hostname": "node-1"}, "values": []},
              {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": "0", "instance": "node-1:9400"},
               "values": [[t0 + 3600, "80"]]}]
    got, rows = _load(tmp_path, [_prom(tmp_path, series)], hosts)
    assert rows == [("i-0n1", 0, dt.datetime(2026, 10, 5, 10), 80.0, 1),
                    ("i-0n1", 2, dt.datetime(2026, 10, 5, 9), 4.0, 2)]
    f = got.files.iloc[0]
    assert (f["missing_values"], f["other_metrics"]) == (1, 1)


@pytest.mark.parametrize("make, expect", [
    (lambda t: _prom(t, [], rtype="vector"), "data.resultType 'vector'; expected a matrix"),
    (lambda t: _prom(t, [], status="error"), "query status 'error'"),
    (lambda t: _prom(t, [{"metric": {"gpu": "0", "Hostname": "ghost"}, "values": []}]),
     "series 1: host 'ghost' is not in the host map"),
    (lambda t: _prom(t, [{"metric": {"gpu": "0", "Hostname": "node-1"}, "values": [["x", "1"]]}]),
     "series 1: time 'x'; expected unix seconds"),
    (lambda t: _prom(t, [{"metric": {"gpu": "zero", "Hostname": "node-1"}, "values": []}]),
     "series 1: gpu label 'zero'"),
    (lambda t: _prom(t, [{"values": []}]), "series 1: expected an object with metric labels"),
])
def test_prometheus_wrong_shape(tmp_path: Path, make, expect: str) -> None:
    hosts = _hosts(tmp_path, "node-1,i-0n1,\n")
    p = make(tmp_path)
    msg = _refused(tmp_path, [p], hosts)
    assert msg.startswith(f"{p}: ") and expect in msg


def test_invalid_json_and_unknown_file(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"status": ')
    with pytest.raises(InputError, match=r"x.json: invalid JSON at line 1"):
        _load(tmp_path, [p])
    q = tmp_path / "x.json"
    q.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="neither a CloudWatch get-metric-data response"):
        _load(tmp_path, [q])


# ------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("sec, expect", [
    ({"idle_threshold": 0}, "unit_economics.idle_threshold: 0; expected a GPU utilization percentage"),
    ({"idle_threshold": "5%"}, "unit_economics.idle_threshold: '5%'"),
    ({"schedule_min_idle_hours": 0.5}, "unit_economics.schedule_min_idle_hours: 0.5"),
    ({"idle_treshold": 5}, "unit_economics.idle_treshold: unknown setting"),
])
def test_settings_validated(sec: dict, expect: str) -> None:
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(").replace(".", r"\.")):
        gpu.load_settings({"unit_economics": sec})


def test_threshold_and_run_length_change_the_answer(idle) -> None:
    """The settings are read, not constants: a higher threshold finds more idle hours; a run length longer than
    any idle stretch leaves nothing to schedule."""
    _loaded, base, (con, sc) = idle
    assert gpu.load_settings(str(REPO / "finops.yaml")) == gpu.Settings(5.0, 4)
    more = gpu.idle_gpu(con, sc, settings=gpu.Settings(50.0, 4))
    assert more.totals["idle_gpu_hours"] > base.totals["idle_gpu_hours"]
    assert more.totals["idle_cost"] > base.totals["idle_cost"]
    none = gpu.idle_gpu(con, sc, settings=gpu.Settings(5.0, 24 * 8))
    assert none.totals["schedule_savings"] == 0 and base.totals["schedule_savings"] > 0


def test_metrics_quote_the_same_idle_and_run_figures(idle, sample_warehouse) -> None:
    """`finops-kit metrics` gains the ai_units table only when utilization files or a runs file are given, and its
    figures are the report's (one definition)."""
    _loaded, r, (con, sc) = idle
    plain = fk.metrics(con, sc)
    assert plain.ai_units is None and "ai_units" not in plain.tables
    m = fk.metrics(con, sc, gpu_metrics=GPU_DIR, host_map=GPU_DIR / "hosts.csv",
                   runs_file=SAMPLES / "_ai_units" / "training_runs.csv")
    row = m.to_dict()["ai_units"][0]
    assert row["idle_cost"] == pytest.approx(r.totals["idle_cost"], abs=1e-6)
    assert row["schedule_savings"] == pytest.approx(r.totals["schedule_savings"], abs=1e-6)
    from finops_kit import unit_economics as ue

    runs = ue.training_runs(con, sc, SAMPLES / "_ai_units" / "training_runs.csv").table
    assert row["training_runs"] == len(runs) >= 4
    assert row["training_run_cost"] == pytest.approx(float(runs["cost"].sum()), abs=1e-6)
    assert "ai_units" in m.to_text()


# ------------------------------------------------------------------------------------------- billed vs measured
def _g5_hours(rid: str, hours, t0: dt.datetime = dt.datetime(2026, 10, 6), **extra) -> list[dict]:
    """A g5.12xlarge (4 GPUs) billed hourly on demand at $5.672 for ``hours`` after ``t0``."""
    row = dict(ResourceId=rid, x_InstanceType="g5.12xlarge", x_AiWorkload="Accelerated compute",
               x_UsageType="BoxUsage:g5.12xlarge", PricingUnit="Hours", PricingQuantity="1", ConsumedUnit="Hours",
               ConsumedQuantity="1", cost="5.672", BillingPeriodStart=dt.datetime(2026, 10, 1),
               BillingPeriodEnd=dt.datetime(2026, 11, 1), tags={"team": "ml"}) | extra
    return [row | dict(ChargePeriodStart=t0 + dt.timedelta(hours=h), ChargePeriodEnd=t0 + dt.timedelta(hours=h + 1))
            for h in hours]


def _nvsmi(path: Path, minutes, util, gpus: int = 4, t0: dt.datetime = dt.datetime(2026, 10, 6)) -> Path:
    path.write_text(HEADER + "".join(f"{t0 + dt.timedelta(minutes=m):%Y/%m/%d %H:%M:%S}.000, {g}, GPU-{g:04d}, "
                                     f"{util} %, 100 MiB\n" for m in minutes for g in range(gpus)))
    return path


def _idle_of(tmp: Path, rows: list[dict], files: list[Path], hosts: str):
    from finops_kit.testing import focus_rows

    con = focus_rows(rows)
    gpu.load_utilization(con, files, _hosts(tmp, hosts))
    return gpu.idle_gpu(con, resolve(con, str(REPO / "finops.yaml"), {}))


def test_billed_hours_in_a_metrics_gap_are_unmeasured(tmp_path: Path) -> None:
    """Two g5.12xlarge billed 24 h ($136.128 each): gpu-a 90 % busy all day, gpu-b logging only from 12:00, idle.
    The 12 h without gpu-b's metrics are unmeasured dollars, not dropped: the old per-resource table kept only the
    charge periods with metrics and the reconciliation check crashed (split 204.192 vs billed 272.256)."""
    a = _nvsmi(tmp_path / "gpu-a.csv", range(24 * 60), 90)
    b = _nvsmi(tmp_path / "gpu-b.csv", range(12 * 60, 24 * 60), 0)
    r = _idle_of(tmp_path, _g5_hours("i-0aaa", range(24)) + _g5_hours("i-0bbb", range(24)), [a, b],
                 "gpu-a,i-0aaa,UTC\ngpu-b,i-0bbb,UTC\n")
    t = r.totals
    assert Decimal(f"{t['monitored_cost']:.6f}") == Decimal("272.256")
    assert (Decimal(f"{t['utilized_cost']:.6f}"), Decimal(f"{t['idle_cost']:.6f}"),
            Decimal(f"{t['unmeasured_cost']:.6f}")) == (Decimal("136.128"), Decimal("68.064"), Decimal("68.064"))
    row = r.by_resource.set_index("resource_id").loc["i-0bbb"]
    assert (row["billed_gpu_hours"], row["observed_gpu_hours"], row["cost"]) == (96, 48, 136.128)
    # the pricing table splits the same billed cost
    assert r.by_pricing["cost"].astype(float).sum() == pytest.approx(272.256)


def test_one_resource_in_two_letter_cases_is_one_resource(tmp_path: Path) -> None:
    """Azure spells one VM's ResourceId with two casings on different days: one monitored resource, its cost once
    (was two rows, monitored_resources 2)."""
    a = "/subscriptions/5e2c/resourceGroups/rg-vision-dev/providers/Microsoft.Compute/virtualMachines/vm-01"
    b = a.replace("resourceGroups/rg-vision-dev", "resourcegroups/RG-VISION-DEV")
    rows = _g5_hours(a, range(12)) + _g5_hours(b, range(12, 24))
    r = _idle_of(tmp_path, rows, [_nvsmi(tmp_path / "vm-01.csv", range(24 * 60), 0)], f"vm-01,{b},UTC\n")
    assert r.totals["monitored_resources"] == 1 and len(r.by_resource) == 1
    row = r.by_resource.iloc[0]
    assert row["billed_gpu_hours"] == 96 and row["idle_cost"] == pytest.approx(136.128)
    assert row["schedulable_hours"] == 24


def test_idle_dollars_are_the_instances_compute_not_its_data_transfer(tmp_path: Path) -> None:
    """A g5.12xlarge idle all day ($136.128 of compute) that also billed $20/h of internet egress on its instance
    id: idle dollars and the schedule saving are the compute's (were $616.128, egress included)."""
    t0 = dt.datetime(2026, 10, 6)
    egress = [dict(ResourceId="i-0aaa", x_UsageType="USE1-DataTransfer-Out-Bytes", ServiceCategory="Networking",
                   ServiceName="AWS Data Transfer", PricingUnit="GB", PricingQuantity="222.2", ConsumedUnit="GB",
                   ConsumedQuantity="222.2", cost="20.00", ChargePeriodStart=t0 + dt.timedelta(hours=h),
                   ChargePeriodEnd=t0 + dt.timedelta(hours=h + 1), BillingPeriodStart=dt.datetime(2026, 10, 1),
                   BillingPeriodEnd=dt.datetime(2026, 11, 1), tags={"team": "ml"}) for h in range(24)]
    r = _idle_of(tmp_path, _g5_hours("i-0aaa", range(24)) + egress, [_nvsmi(tmp_path / "gpu-a.csv", range(24 * 60), 0)],
                 "gpu-a,i-0aaa,UTC\n")
    t = r.totals
    assert (t["monitored_cost"], t["idle_cost"], t["schedule_savings"]) == (136.128, 136.128, 136.128)


def test_instances_outside_the_metrics_window_change_nothing(tmp_path: Path) -> None:
    """idle_gpu derives the accelerated usage of the instances with a row in the metrics window only (speed,
    session 19): the same resource billed days before and after the window, another instance outside it and a
    one-row instance straddling the window's start (billed 23:00-01:00, the hour after 00:00 inside) leave the
    figures of the window as they are with the rows inside it alone."""
    a = _nvsmi(tmp_path / "gpu-a.csv", range(24 * 60), 0)
    inside = _g5_hours("i-0aaa", range(24))
    far = (_g5_hours("i-0aaa", range(-72, -48)) + _g5_hours("i-0aaa", range(48, 72))
           + _g5_hours("i-0ccc", range(-48, -24)))
    straddle = [r | dict(ChargePeriodStart=dt.datetime(2026, 10, 5, 23), ChargePeriodEnd=dt.datetime(2026, 10, 6, 1),
                         ConsumedQuantity="2", PricingQuantity="2", cost="11.344")
                for r in _g5_hours("i-0ddd", [0])]
    alone = _idle_of(tmp_path, inside + straddle, [a], "gpu-a,i-0aaa,UTC\n")
    more = _idle_of(tmp_path, inside + far + straddle, [a], "gpu-a,i-0aaa,UTC\n")
    assert more.totals == alone.totals
    assert more.totals["monitored_cost"] == pytest.approx(136.128)
    for name in ("by_resource", "by_pricing", "unmonitored", "unbilled"):
        pd.testing.assert_frame_equal(getattr(more, name), getattr(alone, name), check_exact=True)
    assert "i-0ddd" in set(more.unmonitored["resource_id"])
