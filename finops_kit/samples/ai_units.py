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


def _aws_cost(w: model.Workload, seed: int) -> dict[str, Decimal]:
    """Per day, the EffectiveCost the AWS writer bills a workload without commitments (same arithmetic as
    aws_common.AwsLines._usage_day: quantity per resource rounded to 8 places, cost to 10)."""
    if w.sku in aws_common.EC2:
        od, saving, *_ = aws_common.EC2[w.sku]
        price, kind = (money(od * (1 - saving), 6) if w.pricing == "spot" else od), "hours"
    else:
        price, kind = aws_common.CATALOG[w.sku][6], aws_common.CATALOG[w.sku][7]
    out: dict[str, Decimal] = {}
    n = max(1, w.instances)
    for u in model.usage(w, seed):
        qty = u.quantity / n
        if kind in ("gbmo", "objmo"):
            qty = qty / model.days_in_month(u.day)
        out[u.day.isoformat()] = out.get(u.day.isoformat(), Decimal(0)) + n * money(money(qty, 8) * price, 10)
    return out


def _planted_run(seed: int) -> dict:
    """Cost, GPU-hours and spot GPU-hours of the tagged fine-tuning run, from the generator's own lines."""
    parts = {"compute": Decimal(0), "storage": Decimal(0), "transfer": Decimal(0)}
    gpu_hours = spot_hours = Decimal(0)
    for w in model.unit_economics_workloads():
        if ("training-run", "llm-ft-20261014") not in w.extra_tags:
            continue
        cost = sum(_aws_cost(w, seed).values(), Decimal(0))
        kind = ("compute" if w.sku in aws_common.EC2 else "storage" if w.sku.startswith("ebs") else "transfer")
        parts[kind] += cost
        if w.sku in aws_common.EC2:
            hours = sum((Decimal(repr(u.quantity)) for u in model.usage(w, seed)), Decimal(0))
            gpus = aws_common.EC2[w.sku][4]
            gpu_hours += hours * gpus
            if w.pricing == "spot":
                spot_hours += hours * gpus
    return {"run_id": "llm-ft-20261014", "identified_by": "tag training-run", "team": "nlp",
            "cost": fmt(sum(parts.values(), Decimal(0))), "compute_cost": fmt(parts["compute"]),
            "storage_cost": fmt(parts["storage"]), "transfer_cost": fmt(parts["transfer"]),
            "gpu_hours": fmt(gpu_hours), "spot_gpu_hours": fmt(spot_hours),
            "note": "g5.12xlarge spot (2 instances x 20 h) and on-demand (8 h) for two days, a tagged gp3 "
                    "checkpoint volume and a tagged inter-region copy"}


#: applications of the business-metrics file: (name, requests a weekday, weekend factor, tokens per request,
#: revenue per request)
APPS = (("chat-api", 420_000, 0.7, 1350, Decimal("0.002")), ("detector-api", 2_400_000, 0.8, 0, None),
        ("ranker-api", 8_000_000, 0.9, 0, None), ("embed-api", 110_000, 0.5, 0, None))
METRICS_START, METRICS_END = dt.date(2026, 9, 1), dt.date(2026, 11, 27)
PLANTED_APP_DAY = ("embed-api", dt.date(2026, 10, 7))


def write_business(out: Path, seed: int) -> dict:
    """``business_metrics.csv`` (one row per day and application) and ``training_runs.csv``; the planted facts."""
    rng = random.Random(f"{seed}|ai_units|business")
    lines = ["date,application,requests,tokens,revenue"]
    planted_requests = 0
    d = METRICS_START
    while d < METRICS_END:
        for app, base, weekend, per, rev in APPS:
            grow = 1 + 0.01 * (d - METRICS_START).days / 7
            req = base * grow * (weekend if d.weekday() >= 5 else 1) * rng.uniform(0.85, 1.15)
            req = int(round(req / 1000)) * 1000  # whole thousands
            tokens = str(req * per + rng.randint(0, 999) * 1000) if per else ""
            revenue = fmt(money(Decimal(req) * rev, 2)) if rev is not None else ""
            lines.append(f"{d.isoformat()},{app},{req},{tokens},{revenue}")
            if (app, d) == PLANTED_APP_DAY:
                planted_requests = req
        d += dt.timedelta(days=1)
    folder = out / FOLDER
    (folder / "business_metrics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # the runs file: a recsys retraining identified by its resources and time window (partial days prorated)
    g5 = _aws_rid("recsys-train-g5")
    copy = _aws_rid("recsys-inter-region")
    (folder / "training_runs.csv").write_text(
        "run_id,start,end,resource_ids\n"
        f"ranker-retrain-2026-10,2026-10-06T06:00:00Z,2026-10-08T18:00:00Z,{g5};{copy}\n", encoding="utf-8")
    app, day = PLANTED_APP_DAY
    w = next(x for x in model.unit_economics_workloads() if x.project == app)
    cost = _aws_cost(w, seed)[day.isoformat()]
    return {"training_run": _planted_run(seed),
            "runs_file_run": {"run_id": "ranker-retrain-2026-10", "resources": [g5, copy],
                              "start": "2026-10-06T06:00:00Z", "end": "2026-10-08T18:00:00Z"},
            "inference": {"application": app, "date": day.isoformat(), "cost": fmt(cost),
                          "requests": planted_requests,
                          "cost_per_1k_requests": fmt((cost * 1000 / planted_requests).quantize(Decimal("1e-9"))),
                          "note": "embed-api runs on one on-demand g6.xlarge 24 h a day and nothing else"}}


def write(out: str | Path, seed: int) -> dict:
    """Write every side file under ``<out>/_ai_units/``; return the ``ai_units`` section of PLANTED.json."""
    out = Path(out)
    return {"folder": FOLDER, "idle_gpu": write_gpu(out, seed), **write_business(out, seed)}
