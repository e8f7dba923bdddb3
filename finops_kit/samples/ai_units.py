"""Side files of the AI unit economics sample: GPU utilization exports (nvidia-smi CSV, CloudWatch get-metric-data
JSON, Prometheus DCGM query_range JSON) with their host map, for resources of the sample bill.

They are written under ``<out>/_ai_units/``: ``finops-kit ingest`` does not read folders whose name starts with
``_`` (side files, like Hive's ``_SUCCESS``), so ``finops-kit ingest data/samples`` lists them as skipped.

Planted (recorded in PLANTED.json ``ai_units``): the forgotten nlp dev box (g5.48xlarge, 8 x A10G, on-demand,
24/7) is idle except for GPUs 0-3 on weekday office hours; its idle GPU-hours and idle dollars over the window
follow from its billed on-demand rate. Every other resource is busy enough not to matter, except the lab
notebook (idle outside its user's hours, in New York time) and a workstation that is in the host map but not on
any bill (metrics with no billed cost).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from . import aws_common, gcp, model
from .model import fmt, money

FOLDER = "_ai_units"
GPU_FOLDER = "gpu"
#: the metrics window: one week of October 2026 (a closed billing period), Monday to Monday, UTC
WINDOW_START = dt.datetime(2026, 10, 5)
WINDOW_DAYS = 7
IDLE_THRESHOLD = 5.0  # the default of unit_economics.idle_threshold
SCHEDULE_MIN_HOURS = 4

_NVSMI_HEADER = "timestamp, index, uuid, utilization.gpu [%], memory.used [MiB]"


def _workload(provider: str, name: str) -> model.Workload:
    return next(w for w in model.workloads(provider) if w.name == name)


def _aws_rid(name: str) -> str:
    w = _workload("aws", name)
    return aws_common._resource_ids(w, aws_common.ACCOUNTS[w.account][2])[0]


def _gcp_rids(name: str) -> list[str]:
    """The VM resource names the GCP writer gives a workload's instances (same formula as gcp._workload_day)."""
    w = _workload("gcp", name)
    zone = f"{w.region}-{'abcf'[int(aws_common.stable_hex(2, w.name), 16) % 4]}"
    pid = gcp.PROJECTS[w.account][0]
    return [f"//compute.googleapis.com/projects/{pid}/zones/{zone}/instances/{int(aws_common.stable_hex(15, w.name, i), 16)}"
            for i in range(w.instances)]


def _hours() -> list[dt.datetime]:
    return [WINDOW_START + dt.timedelta(hours=h) for h in range(WINDOW_DAYS * 24)]


def _uuid(*parts: object) -> str:
    h = aws_common.stable_hex(32, *parts)
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _busy(local: dt.datetime, start: int, end: int) -> bool:
    return local.weekday() < 5 and start <= local.hour < end


def _nvsmi(path: Path, tz: dt.tzinfo, gpus: int, host: str, busy_gpus: int, office: tuple[int, int],
           rng: random.Random, days: int = WINDOW_DAYS, step_min: int = 10) -> None:
    """An nvidia-smi log in the host's local time: ``busy_gpus`` GPUs busy during office hours, idle otherwise."""
    lines = [_NVSMI_HEADER]
    for k in range(days * 24 * 60 // step_min):
        t = WINDOW_START + dt.timedelta(minutes=k * step_min)
        local = t.replace(tzinfo=dt.UTC).astimezone(tz)
        for g in range(gpus):
            on = g < busy_gpus and _busy(local, *office)
            util = rng.randint(55, 97) if on else rng.randint(0, 3)
            mem = rng.randint(14000, 21000) if on else rng.randint(0, 600)
            stamp = local.strftime("%Y/%m/%d %H:%M:%S.") + f"{rng.randint(0, 999):03d}"
            lines.append(f"{stamp}, {g}, {_uuid(host, g)}, {util} %, {mem} MiB")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))


def write_gpu(out: Path, seed: int) -> dict:
    """Write ``<out>/_ai_units/gpu/``; return the planted facts of the idle dev box."""
    rng = random.Random(f"{seed}|ai_units|gpu")
    gdir = out / FOLDER / GPU_FOLDER
    (gdir / "nvidia-smi").mkdir(parents=True, exist_ok=True)
    dev_box = _aws_rid("nlp-dev-box-g5")
    lab_nb = _aws_rid("lab-notebook-g6")
    chat = _aws_rid("nlp-infer-g5-a")
    t4 = _gcp_rids("gcp-recsys-t4")
    ny, berlin = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
    hosts = [("ip-10-20-3-41", dev_box, "UTC"), ("helix-nb-01", lab_nb, "America/New_York"),
             ("ws-gpu-07", "i-0f00d5eed0000c0de", "Europe/Berlin")]
    hosts += [(f"recsys-t4-{i + 1}", rid, "") for i, rid in enumerate(t4)]
    (gdir / "hosts.csv").write_text("host,resource_id,timezone\n" + "".join(f"{h},{r},{z}\n" for h, r, z in hosts),
                                    encoding="utf-8")
    # nvidia-smi: the planted idle dev box (UTC clock), the lab notebook (New York clock), an unbilled workstation
    _nvsmi(gdir / "nvidia-smi" / "ip-10-20-3-41.csv.gz", dt.UTC, 8, "ip-10-20-3-41", 4, (9, 17), rng)
    _nvsmi(gdir / "nvidia-smi" / "helix-nb-01.csv.gz", ny, 1, "helix-nb-01", 1, (10, 16), rng)
    _nvsmi(gdir / "nvidia-smi" / "ws-gpu-07.csv.gz", berlin, 1, "ws-gpu-07", 1, (8, 18), rng, days=2)
    # CloudWatch agent (hourly average) of the chat-api g5.12xlarge under the reservation: busy around the clock
    queries, results = [], []
    for g in range(4):
        qid = f"gpu{g}"
        queries.append({"Id": qid, "MetricStat": {"Metric": {
            "Namespace": "CWAgent", "MetricName": "nvidia_smi_utilization_gpu",
            "Dimensions": [{"Name": "InstanceId", "Value": chat}, {"Name": "index", "Value": str(g)},
                           {"Name": "name", "Value": "NVIDIA A10G"}, {"Name": "arch", "Value": "Ampere"}]},
            "Period": 3600, "Stat": "Average"}, "ReturnData": True})
        hrs = list(reversed(_hours()))  # CloudWatch returns TimestampDescending by default
        results.append({"Id": qid, "Label": "nvidia_smi_utilization_gpu",
                        "Timestamps": [h.strftime("%Y-%m-%dT%H:%M:%S+00:00") for h in hrs],
                        "Values": [round(rng.uniform(12, 30) if h.hour < 6 else rng.uniform(35, 80), 2) for h in hrs],
                        "StatusCode": "Complete"})
    (gdir / "cloudwatch-chat-api.json").write_text(json.dumps(
        {"MetricDataQueries": queries, "MetricDataResults": results, "Messages": []}, indent=1) + "\n",
        encoding="utf-8")
    # Prometheus DCGM exporter, 10-minute steps: three T4 inference VMs of recsys, busy (25-70 %)
    series = []
    for i in range(len(t4)):
        host = f"recsys-t4-{i + 1}"
        vals = []
        for k in range(WINDOW_DAYS * 24 * 6):
            t = WINDOW_START + dt.timedelta(minutes=10 * k)
            vals.append([int(t.replace(tzinfo=dt.UTC).timestamp()), str(rng.randint(25, 70))])
        series.append({"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": "0", "UUID": _uuid(host, 0),
                                  "device": "nvidia0", "modelName": "Tesla T4", "Hostname": host,
                                  "instance": f"10.128.0.{11 + i}:9400", "job": "dcgm-exporter"},
                       "values": vals})
    (gdir / "prometheus-dcgm.json").write_text(json.dumps(
        {"status": "success", "data": {"resultType": "matrix", "result": series}}) + "\n", encoding="utf-8")
    return _planted_idle(dev_box)


def _planted_idle(dev_box: str) -> dict:
    """Idle GPU-hours and dollars of the dev box over the window, from the generator's own rate and hours."""
    w = _workload("aws", "nlp-dev-box-g5")
    od, _saving, _fam, _vcpu, gpus, _mem = aws_common.EC2[w.sku]
    idle_hours = sched_hours = 0
    cost = Decimal(0)
    for d in range(WINDOW_DAYS):
        day = (WINDOW_START + dt.timedelta(days=d)).date()
        day_cost = money(money(Decimal(24), 8) * od, 10)  # one 24 h on-demand line a day (no commitment covers it)
        cost += day_cost
        busy = 4 * 8 if day.weekday() < 5 else 0  # GPUs 0-3, 09:00-17:00 UTC on weekdays
        idle_hours += 24 * gpus - busy
        sched_hours += 24 - (8 if day.weekday() < 5 else 0)
    rate = od / gpus
    return {"resource_id": dev_box, "workload": w.name, "team": w.team, "instance_type": w.sku,
            "window_start": WINDOW_START.isoformat(), "window_end": (WINDOW_START + dt.timedelta(days=WINDOW_DAYS)
                                                                       ).isoformat(),
            "idle_threshold": IDLE_THRESHOLD, "billed_cost": fmt(cost), "billed_gpu_hours": WINDOW_DAYS * 24 * gpus,
            "idle_gpu_hours": idle_hours, "idle_cost": fmt(rate * idle_hours),
            "schedule_min_idle_hours": SCHEDULE_MIN_HOURS, "schedulable_hours": sched_hours,
            "schedule_savings": fmt(od * sched_hours),
            "unbilled_host": "ws-gpu-07",
            "note": "GPUs 0-3 busy 09:00-17:00 UTC on weekdays, all 8 idle (0-3 %) otherwise; billed 24 h a day "
                    "on demand, so idle dollars = idle GPU-hours x on-demand rate / 8"}


def write(out: str | Path, seed: int) -> dict:
    """Write every side file under ``<out>/_ai_units/``; return the ``ai_units`` section of PLANTED.json."""
    out = Path(out)
    return {"folder": FOLDER, "idle_gpu": write_gpu(out, seed)}
