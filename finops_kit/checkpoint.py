"""Checkpoint/interruption simulator for training on spot capacity.

The question an ML platform engineer asks is not "how cheap is spot?" but "what does *my* job cost, and how much
later does it finish, once interruptions, lost work, checkpoint writes and restarts are paid for?". This module
answers it three ways that must agree where they overlap:

* the **closed form** of Daly (FGCS 2006) for exponential interruptions (``expected_wall_clock``);
* a seeded, vectorized **Monte Carlo** of exactly the process that formula models (``monte_carlo``), which also
  gives the spread of outcomes, not only their mean;
* **trace replay** (``replay_trace``) of an availability/preemption trace, the honest test of a policy, because
  real interruptions are neither exponential nor independent of time.

Notation (``../shared/notes/methods.md``): ``M`` mean time between interruptions of the *job*, ``delta`` checkpoint
write time, ``R`` restart time (new capacity, image pull, reload of the last checkpoint), ``tau`` work between
checkpoints, ``T_s`` failure-free run time. All times are in hours. An N-node synchronous job is interrupted when
any node is: ``M_job = M_node / N``.

The model (Daly 2006): the job alternates work segments of ``tau`` followed by a checkpoint of ``delta``. An
interruption loses the work since the last completed checkpoint; the job then restarts (``R``), and a restart can
itself be interrupted. With exponential interruptions of mean ``M`` the expected wall clock is
``T_w = M e^{R/M} (e^{(tau+delta)/M} - 1) T_s / tau``; spot cost is ``p_spot N T_w`` (capacity is billed while it
runs, restarts included) and on-demand cost ``p_od N T_s`` (on-demand capacity is assumed not to be interrupted).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .datafiles import data_rows
from .errors import ConfigError, InputError

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12: the month in which the Spot Advisor counts interruptions


# --------------------------------------------------------------------------------------------------- job spec
@dataclass(frozen=True)
class JobSpec:
    """A training job: how much work, on how many nodes, with which checkpoint/restart costs and prices.

    ``work_hours`` is T_s, the wall-clock hours the job needs on ``nodes`` nodes when nothing goes wrong
    (use :meth:`from_gpu_hours` when you know the GPU-hours instead). Prices are per node-hour (one instance).
    """

    work_hours: float
    nodes: int = 1
    checkpoint_hours: float = 5 / 60
    restart_hours: float = 10 / 60
    od_price: float = 1.0
    spot_price: float = 0.4
    gpus_per_node: int = 1
    name: str = "job"

    def __post_init__(self) -> None:
        for key in ("work_hours", "od_price", "spot_price"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"job spec: {key} must be > 0, got {getattr(self, key)!r}")
        for key in ("checkpoint_hours", "restart_hours"):
            if getattr(self, key) < 0:
                raise ConfigError(f"job spec: {key} must be >= 0, got {getattr(self, key)!r}")
        if int(self.nodes) != self.nodes or self.nodes < 1:
            raise ConfigError(f"job spec: nodes must be a positive integer, got {self.nodes!r}")

    @classmethod
    def from_gpu_hours(cls, gpu_hours: float, *, nodes: int, gpus_per_node: int, **kw) -> JobSpec:
        """A job given as total GPU-hours of work spread over ``nodes`` x ``gpus_per_node`` GPUs."""
        if nodes < 1 or gpus_per_node < 1:
            raise ConfigError("job spec: nodes and gpus_per_node must be >= 1")
        return cls(work_hours=gpu_hours / (nodes * gpus_per_node), nodes=nodes, gpus_per_node=gpus_per_node, **kw)

    @property
    def gpu_hours(self) -> float:
        return self.work_hours * self.nodes * self.gpus_per_node

    @property
    def od_cost(self) -> float:
        """On-demand baseline: N nodes for T_s hours, no interruptions, no checkpoint overhead."""
        return self.od_price * self.nodes * self.work_hours

    def with_(self, **kw) -> JobSpec:
        return replace(self, **kw)


# ------------------------------------------------------------------------------------------- closed forms
def job_mtbf(node_mtbf_hours: float, nodes: int) -> float:
    """Mean time between interruptions of a synchronous N-node job (any node's loss stops all of them)."""
    return node_mtbf_hours / nodes


def young_interval(delta: float, mtbf: float) -> float:
    """Young (1974): tau = sqrt(2 delta M), the first-order optimum."""
    return math.sqrt(2 * delta * mtbf)


def daly_interval(delta: float, mtbf: float) -> float:
    """Daly (2006) higher-order optimum; falls back to tau = M when delta >= 2M (checkpointing barely helps).

    Limits: a free checkpoint (delta = 0) gives tau = 0, checkpointing continuously (the formula's value at
    delta = 0, where nothing is ever redone and T_w = T_s e^{R/M}); no interruptions (M = inf) give tau = inf.
    """
    if delta < 0:
        raise ConfigError(f"checkpoint time must be >= 0, got {delta!r}")
    if delta == 0:
        return 0.0
    if math.isinf(mtbf):
        return math.inf
    if delta >= 2 * mtbf:
        return mtbf
    x = delta / (2 * mtbf)
    return math.sqrt(2 * delta * mtbf) * (1 + math.sqrt(x) / 3 + x / 9) - delta


def expected_wall_clock(work: float, tau, delta: float, restart: float, mtbf):
    """Daly's expected wall clock T_w for T_s = ``work`` (numpy-broadcast over ``tau`` and ``mtbf``).

    At the formula's limits, where it reads 0/0 or inf x 0, the limit is returned instead of NaN: continuous
    checkpointing (tau = delta = 0) gives T_w = T_s e^{R/M}, the restarts only; no interruptions (M = inf) give
    T_w = T_s (tau + delta)/tau, the checkpoint writes only (T_s + delta for one final save at tau = T_s).
    """
    tau = np.asarray(tau, dtype=float)
    m = np.asarray(mtbf, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        finite_m = np.where(np.isinf(m), 1.0, m)
        out = finite_m * np.exp(restart / finite_m) * np.expm1((tau + delta) / finite_m) * work / tau
        out = np.where(np.isinf(m), work * (tau + delta) / tau, out)
        if delta == 0:
            out = np.where(tau == 0, work * np.exp(restart / m), out)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class Estimate:
    """Expected outcome of one job under one interruption assumption (closed form)."""

    scenario: str
    node_mtbf_hours: float
    job_mtbf_hours: float
    tau_hours: float
    wall_clock_hours: float
    billed_hours: float
    od_wall_clock_hours: float
    expected_interruptions: float
    spot_cost: float
    od_cost: float

    @property
    def cost_saving(self) -> float:
        """1 - spot cost / on-demand cost (fraction; negative when spot is the dearer choice)."""
        return 1 - self.spot_cost / self.od_cost

    @property
    def wall_clock_increase(self) -> float:
        return self.wall_clock_hours / self.od_wall_clock_hours - 1

    def as_dict(self) -> dict:
        return asdict(self) | {"cost_saving": self.cost_saving, "wall_clock_increase": self.wall_clock_increase}


def _tau_or_optimal(job: JobSpec, m_job: float, tau: float | None) -> float:
    """The checkpoint interval every model uses (closed form, Monte Carlo, replay): ``tau``, else Daly's optimum
    at the job MTBF, at most the job's work T_s (an interval past the end of the job is one final save; this is
    also the value at M = inf, where Daly's tau is infinite). 0 when the checkpoint is free (delta = 0)."""
    if tau is not None:
        if not tau > 0:
            raise ConfigError(f"checkpoint interval must be > 0 hours, got {tau!r}")
        return float(tau)
    return min(daly_interval(job.checkpoint_hours, m_job), job.work_hours)


def closed_form(job: JobSpec, node_mtbf_hours: float, tau: float | None = None, scenario: str = "",
                wait_hours: float = 0.0) -> Estimate:
    """Expected wall clock and cost of ``job`` on spot with exponential interruptions (Daly's tau by default).

    ``wait_hours`` is the mean time spent waiting for spot capacity after each interruption: unbilled, but it
    delays the job. Daly's model has none (a replacement is assumed at once, after R); the 2023 GPU traces show
    outages of 0.8-3.5 h on average, so set it when you know your capacity pool.
    """
    if not node_mtbf_hours > 0:
        raise ConfigError(f"MTBF must be > 0 hours, got {node_mtbf_hours!r}")
    m = job_mtbf(node_mtbf_hours, job.nodes)
    t = _tau_or_optimal(job, m, tau)
    tw = expected_wall_clock(job.work_hours, t, job.checkpoint_hours, job.restart_hours, m)
    n_int = tw / m  # Wald: a Poisson process of rate 1/M over the billed time
    return Estimate(scenario=scenario, node_mtbf_hours=node_mtbf_hours, job_mtbf_hours=m, tau_hours=t,
                    wall_clock_hours=tw + wait_hours * n_int, billed_hours=tw, od_wall_clock_hours=job.work_hours,
                    expected_interruptions=n_int, spot_cost=job.spot_price * job.nodes * tw, od_cost=job.od_cost)


def sweep_intervals(job: JobSpec, node_mtbf_hours: float, taus: Iterable[float],
                    wait_hours: float = 0.0) -> pd.DataFrame:
    """Expected wall clock/cost/saving for each checkpoint interval (hours): shows how flat the optimum is."""
    rows = [closed_form(job, node_mtbf_hours, tau=t, wait_hours=wait_hours).as_dict() for t in taus]
    return pd.DataFrame(rows)


def scenario_table(job: JobSpec, scenarios: Mapping[str, float], tau: float | None = None,
                   wait_hours: float = 0.0) -> pd.DataFrame:
    """One row per named interruption scenario {name: node MTBF hours}, each at its own optimal interval."""
    return pd.DataFrame([closed_form(job, m, tau=tau, scenario=name, wait_hours=wait_hours).as_dict()
                         for name, m in scenarios.items()])


# ------------------------------------------------------------------------------ Spot Advisor band -> MTBF
@dataclass(frozen=True)
class Band:
    r: int
    label: str
    lower_pct: float
    mid_pct: float
    upper_pct: float


def advisor_bands(path: str | os.PathLike | None = None) -> dict[int, Band]:
    """The Spot Advisor interruption bands and the frequencies assumed for each (``data/spot_advisor_bands.csv``)."""
    out = {}
    for rec in data_rows("spot_advisor_bands.csv", path):
        b = Band(int(rec["r"]), rec["label"], float(rec["lower_pct"]), float(rec["mid_pct"]), float(rec["upper_pct"]))
        out[b.r] = b
    return out


def band_to_mtbf(r: int, assumption: str = "mid", hours_per_month: float = HOURS_PER_MONTH) -> float:
    """Node MTBF (hours) implied by an Advisor band, under a documented assumption.

    Assumption: the band's "frequency of interruption" f is the share of spot instances of that type reclaimed
    during a trailing month; a running instance is reclaimed as a Poisson process, so
    P(interrupted within a month) = f gives MTBF = month / -ln(1 - f). ``assumption`` picks f at the band's
    ``lower`` edge, ``mid`` point or ``upper`` edge (the ">20%" band has no upper edge; the CSV caps it).
    A "<5%" band thus means ~14,000 h at its upper edge and ~29,000 h at its midpoint (the default), far longer
    than the 1.4-3.2 h uninterrupted runs measured in the 2023 GPU traces: treat band-based MTBFs as optimistic
    and check them against a trace.
    """
    bands = advisor_bands()
    if r not in bands:
        raise ConfigError(f"Spot Advisor band r={r!r} unknown; expected one of {sorted(bands)}")
    if assumption not in ("lower", "mid", "upper"):
        raise ConfigError(f"band assumption {assumption!r}: expected 'lower', 'mid' or 'upper'")
    pct = getattr(bands[r], f"{assumption}_pct")
    f = max(pct, 0.5) / 100  # a 0% lower edge would mean "never interrupted": floor it at 0.5% per month
    return hours_per_month / -math.log1p(-f)


# ------------------------------------------------------------------------------------------- Monte Carlo
@dataclass
class MonteCarloResult:
    """Per-run outcomes of the simulated process; ``summary`` gives mean, its CI, and percentiles."""

    job: JobSpec
    node_mtbf_hours: float
    tau_hours: float
    wall_clock_hours: np.ndarray
    billed_hours: np.ndarray
    interruptions: np.ndarray
    seed: int
    extras: dict = field(default_factory=dict)

    @property
    def spot_cost(self) -> np.ndarray:
        return self.job.spot_price * self.job.nodes * self.billed_hours

    @property
    def cost_saving(self) -> np.ndarray:
        return 1 - self.spot_cost / self.job.od_cost

    @property
    def wall_clock_increase(self) -> np.ndarray:
        return self.wall_clock_hours / self.job.work_hours - 1

    def mean_ci(self, z: float = 2.576) -> tuple[float, float, float]:
        """Mean wall clock and its normal-approximation confidence interval (default 99%)."""
        x = self.wall_clock_hours
        half = z * x.std(ddof=1) / math.sqrt(len(x))
        return float(x.mean()), float(x.mean() - half), float(x.mean() + half)

    def summary(self, lo: float = 5, hi: float = 95) -> dict:
        s = {}
        for name, x in (("wall_clock_hours", self.wall_clock_hours), ("spot_cost", self.spot_cost),
                        ("cost_saving", self.cost_saving), ("wall_clock_increase", self.wall_clock_increase),
                        ("interruptions", self.interruptions.astype(float))):
            s[name] = {"mean": float(x.mean()), f"p{lo:g}": float(np.percentile(x, lo)),
                       "p50": float(np.percentile(x, 50)), f"p{hi:g}": float(np.percentile(x, hi))}
        return s


def _sum_truncated_exp(rng: np.random.Generator, counts: np.ndarray, limit: float, mean: float) -> np.ndarray:
    """Per entry i, the sum of counts[i] draws of an exponential(mean) conditioned on being < limit."""
    total = int(counts.sum())
    if total == 0 or limit <= 0:
        return np.zeros(len(counts))
    u = rng.random(total)
    x = -mean * np.log1p(u * np.expm1(-limit / mean))  # inverse CDF of the truncated exponential
    owner = np.repeat(np.arange(len(counts)), counts)
    return np.bincount(owner, weights=x, minlength=len(counts))


def _segments_time(rng, n_segments: int, seg: float, restart: float, m: float, size: int):
    """Total time and interruptions of ``n_segments`` attempts-until-success of length ``seg`` (Daly's model)."""
    if n_segments == 0:
        return np.zeros(size), np.zeros(size, dtype=np.int64)
    # failures before n successes, success probability e^{-seg/m}: negative binomial (exact, no loop per event)
    fails = rng.negative_binomial(n_segments, math.exp(-seg / m), size=size)
    lost = _sum_truncated_exp(rng, fails, seg, m)
    # each failure needs a restart that can fail in turn: failed restart attempts before `fails` successes
    lost_restart, rfails = _restarts_time(rng, fails, restart, m)
    time = n_segments * seg + lost + fails * restart + lost_restart
    return time, fails + rfails


def _restarts_time(rng, fails: np.ndarray, restart: float, m: float):
    """Time lost to restarts cut short by the next preemption after ``fails`` interruptions (beyond the ``fails``
    x R of the restarts that succeed), and how many restarts were cut short."""
    if restart > 0:
        rfails = np.where(fails > 0, rng.negative_binomial(np.maximum(fails, 1), math.exp(-restart / m)), 0)
        return _sum_truncated_exp(rng, rfails, restart, m), rfails
    return np.zeros(len(fails)), np.zeros(len(fails), dtype=np.int64)


def _continuous_time(rng, work: float, restart: float, m: float, size: int):
    """Continuous checkpointing (tau = delta = 0): T_s of work, Poisson(T_s/M) interruptions during it, each
    followed by a restart; the expectation is T_s e^{R/M}, the closed form's limit."""
    fails = rng.poisson(work / m, size=size) if math.isfinite(m) else np.zeros(size, dtype=np.int64)
    lost_restart, rfails = _restarts_time(rng, fails, restart, m)
    return work + fails * restart + lost_restart, fails + rfails


#: Most interruptions per run :func:`monte_carlo` simulates (each one is an array element), and the interruptions one
#: chunk of runs may hold (about 8 bytes each, a few arrays at once: ~100 MB).
MAX_SIMULATED_INTERRUPTIONS = 1e6
CHUNK_INTERRUPTIONS = 4e6


def monte_carlo(job: JobSpec, node_mtbf_hours: float, tau: float | None = None, runs: int = 2000,
                seed: int = 0, chunk: int = 250, wait_hours: float = 0.0) -> MonteCarloResult:
    """Simulate ``runs`` executions of ``job`` with exponential interruptions (seeded, vectorized).

    The job is floor(T_s/tau) segments of tau + delta plus, if T_s is not a multiple of tau, one last segment
    of the remainder + delta (the final save). When T_s/tau is an integer the expectation is exactly Daly's
    closed form; otherwise it differs from it by well under one segment's overhead. ``wait_hours`` adds an
    exponential, unbilled wait for capacity after each interruption (as in :func:`closed_form`).
    """
    if runs < 2:
        raise ConfigError("Monte Carlo needs runs >= 2")
    if not node_mtbf_hours > 0:
        raise ConfigError(f"MTBF must be > 0 hours, got {node_mtbf_hours!r}")
    m = job_mtbf(node_mtbf_hours, job.nodes)
    t = _tau_or_optimal(job, m, tau)
    # every interruption is an array element: bound the events a chunk of runs holds, and refuse a job that no
    # chunk can hold (an MTBF of minutes: ~1e15 interruptions per run -- it allocated 168 GiB or numpy refused the
    # negative binomial's p ~ 1e-261), where the closed form still gives the expectation
    cf = closed_form(job, node_mtbf_hours, tau=tau, wait_hours=wait_hours)
    expected = cf.expected_interruptions
    if not expected <= MAX_SIMULATED_INTERRUPTIONS:
        raise ConfigError(f"Monte Carlo: about {expected:.3g} interruptions per run (job MTBF {m:.4g} h, checkpoint "
                          f"every {t:.4g} h) are too many to simulate; the closed form gives the expected wall "
                          f"clock ({cf.wall_clock_hours:.4g} h)")
    chunk = max(1, min(chunk, int(CHUNK_INTERRUPTIONS // max(expected, 1.0))))
    n_full = int(math.floor(job.work_hours / t + 1e-9)) if t > 0 else 0
    rem = job.work_hours - n_full * t
    rem = 0.0 if t > 0 and rem <= 1e-9 * t else rem
    rng = np.random.default_rng(seed)
    walls, billed, ints = [], [], []
    for start in range(0, runs, chunk):
        size = min(chunk, runs - start)
        if t == 0:  # continuous checkpointing (delta = 0): no work is redone, each interruption costs a restart
            w1, i1 = _continuous_time(rng, job.work_hours, job.restart_hours, m, size)
            w2, i2 = np.zeros(size), np.zeros(size, dtype=np.int64)
        else:
            w1, i1 = _segments_time(rng, n_full, t + job.checkpoint_hours, job.restart_hours, m, size)
            w2, i2 = _segments_time(rng, 1 if rem else 0, rem + job.checkpoint_hours, job.restart_hours, m, size)
        n = i1 + i2
        waits = rng.gamma(np.maximum(n, 1), wait_hours) * (n > 0) if wait_hours > 0 else np.zeros(size)
        billed.append(w1 + w2)
        walls.append(w1 + w2 + waits)
        ints.append(n)
    return MonteCarloResult(job, node_mtbf_hours, t, np.concatenate(walls), np.concatenate(billed),
                            np.concatenate(ints), seed)


# ------------------------------------------------------------------------------------------- trace replay
#: How a trace's interruptions reach an N-node job (:class:`Trace` ``model``); one definition for the scenario table
#: (closed form), the Monte Carlo and the replay.
TRACE_MODELS = {
    "group": "the trace is the node group's: the job runs while the trace shows at least N instances (a 1-instance "
             "trace: all N nodes are preempted and come back together); job MTBF = the trace's MTBF",
    "per_node": "each node is preempted on its own at the trace's rate (node k follows a 1-instance trace shifted by "
                "k/N of its length); job MTBF = the trace's MTBF / N",
}


def check_trace_model(model: str) -> str:
    if model not in TRACE_MODELS:
        raise ConfigError(f"trace model {model!r}: expected one of {', '.join(TRACE_MODELS)}")
    return model


def equivalent_node_mtbf(mtbf_hours: float, nodes: int, model: str) -> float:
    """The node MTBF to give :func:`closed_form` / :func:`monte_carlo` (which divide by N) for an interruption rate
    measured on a trace or a pool under ``model``: ``group`` -> mtbf x N (the job's MTBF stays the measured one),
    ``per_node`` -> mtbf (the job's MTBF is mtbf / N)."""
    check_trace_model(model)
    return mtbf_hours * nodes if model == "group" else mtbf_hours


@dataclass
class Trace:
    """An availability or preemption trace: a value per tick of ``gap_seconds``, and how it reaches an N-node job.

    The value is the number of spot instances obtainable (availability traces) or 1/0 for running/preempted
    (preemption traces), as in skypilot-org/spot-traces (``{"metadata": {"gap_seconds": N}, "data": [...]}``).
    ``model`` (see :data:`TRACE_MODELS`) says what the trace means for a job of several nodes; the scenario table
    (:meth:`node_mtbf`), the default checkpoint interval and :func:`replay_trace` all follow it.
    """

    values: np.ndarray
    gap_seconds: float
    name: str = "trace"
    model: str = "group"

    def __post_init__(self) -> None:
        check_trace_model(self.model)

    @classmethod
    def from_json(cls, path: str | os.PathLike, model: str = "group") -> Trace:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(str(p), "trace file not found") from None
        except json.JSONDecodeError as exc:
            raise InputError(str(p), f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict) or "data" not in doc:
            raise InputError(str(p), "expected a JSON object with 'metadata.gap_seconds' and 'data'")
        gap = (doc.get("metadata") or {}).get("gap_seconds")
        if not isinstance(gap, (int, float)) or gap <= 0:
            raise InputError(str(p), "expected a positive number", column="metadata.gap_seconds")
        data = doc["data"]
        if not isinstance(data, list) or not data or not all(isinstance(v, (int, float)) for v in data):
            raise InputError(str(p), "expected a non-empty list of numbers", column="data")
        return cls(np.asarray(data, dtype=float), float(gap), name=p.stem, model=model)

    @property
    def hours(self) -> float:
        return len(self.values) * self.gap_seconds / 3600

    def up(self, nodes: int = 1) -> np.ndarray:
        """True where at least ``nodes`` instances are obtainable (capped at the trace's maximum)."""
        need = min(nodes, max(1.0, float(self.values.max())))
        return self.values >= need

    def job_up(self, nodes: int = 1) -> np.ndarray:
        """True where an N-node job can run under the trace's ``model``."""
        if self.model == "group" or nodes == 1:
            return self.up(nodes)
        if float(self.values.max()) > 1:
            raise ConfigError(f"trace {self.name}: model 'per_node' needs a 1-instance trace (this one counts up to "
                              f"{self.values.max():g} instances: use model 'group')")
        one = self.up(1)
        shift = len(one) / nodes
        return np.logical_and.reduce([np.roll(one, -round(k * shift)) for k in range(nodes)])

    @staticmethod
    def _runs(up: np.ndarray, gap_seconds: float) -> tuple[np.ndarray, np.ndarray]:
        edges = np.diff(np.concatenate([[0], up.astype(np.int8), [0]]))
        gap_h = gap_seconds / 3600
        return np.flatnonzero(edges == 1) * gap_h, np.flatnonzero(edges == -1) * gap_h

    def intervals(self, nodes: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (hours) of the maximal runs in which at least ``nodes`` instances are obtainable."""
        return self._runs(self.up(nodes), self.gap_seconds)

    def job_intervals(self, nodes: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Start and end (hours) of the runs in which an N-node job can run under the trace's ``model``."""
        return self._runs(self.job_up(nodes), self.gap_seconds)

    def _stats(self, s: np.ndarray, e: np.ndarray) -> dict:
        runs = e - s
        # a run cut by the end of the trace is not an interruption
        ended = runs[:-1] if len(runs) and e[-1] >= self.hours - 1e-9 else runs
        up_hours = float(runs.sum())
        n_int = len(ended)
        return {"trace": self.name, "hours": self.hours, "availability": up_hours / self.hours if self.hours else 0,
                "preemptions": n_int, "mean_run_hours": float(runs.mean()) if len(runs) else 0.0,
                "mtbf_hours": up_hours / n_int if n_int else math.inf,
                "mean_outage_hours": float((s[1:] - e[:-1]).mean()) if len(s) > 1 else 0.0}

    def stats(self, nodes: int = 1) -> dict:
        """Empirical figures of the trace itself (at least ``nodes`` instances up): availability share,
        preemptions, mean uninterrupted run, MTBF = running time / preemptions, mean outage."""
        return self._stats(*self.intervals(nodes))

    def job_stats(self, nodes: int = 1) -> dict:
        """The same figures for an N-node job under the trace's ``model`` (what :func:`replay_trace` lives through)."""
        return self._stats(*self.job_intervals(nodes)) | {"model": self.model, "nodes": nodes}

    def node_mtbf(self, nodes: int = 1) -> float:
        """Node MTBF for :func:`closed_form` / :func:`scenario_table` that gives an N-node job the interruption
        rate of this trace under its ``model`` (see :func:`equivalent_node_mtbf`)."""
        if self.model == "group":
            return equivalent_node_mtbf(self.stats(nodes)["mtbf_hours"], nodes, "group")
        return equivalent_node_mtbf(self.stats(1)["mtbf_hours"], nodes, "per_node")

    def job_mtbf(self, nodes: int = 1) -> float:
        """The job MTBF of the model (the closed form's M, and the MTBF of the default checkpoint interval)."""
        return self.node_mtbf(nodes) / nodes


def _tiled_intervals(trace: Trace, nodes: int, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """The job's up-intervals of the trace repeated ``cycles`` times, with runs that touch across the seam merged.

    A repeat continues the trace after its startup: the ticks before the first up-tick (the instance being
    started when the recording began) are not repeated. Why: they are not a preemption (:meth:`Trace.stats`
    counts none), but repeated they cut the job at every seam -- a GCP trace of 45.6 h without a single
    preemption (gcp-04-30-2023/us-central1-a) became a preemption every 45.6 h, and a 96 h job at Daly's tau for
    M = inf (one final save) never finished in 50 repeats.
    """
    s, e = trace.job_intervals(nodes)
    lead = float(s[0]) if len(s) else 0.0
    k = np.arange(cycles)
    # repeat k >= 1 starts where repeat k - 1 ended, at its first up-tick: it lasts trace.hours - lead
    offs = np.where(k > 0, k * (trace.hours - lead), 0.0)[:, None]
    s, e = (s[None, :] + offs).ravel(), (e[None, :] + offs).ravel()
    keep = np.concatenate([[True], s[1:] > e[:-1] + 1e-9])  # an interval starting where the last ended continues it
    group = np.cumsum(keep) - 1
    ends = np.full(int(group[-1]) + 1, -np.inf)
    np.maximum.at(ends, group, e)
    return s[keep], ends


def _replay_once(starts: np.ndarray, ends: np.ndarray, t0: float, job: JobSpec, tau: float) -> dict:
    """Replay from time t0 through the (tiled) up-intervals; see :func:`replay_trace` for the rules."""
    d, r = job.checkpoint_hours, job.restart_hours
    remaining = job.work_hours
    billed = 0.0
    interruptions = 0
    first = True
    for k in range(int(np.searchsorted(ends, t0, side="right")), len(starts)):
        a, b = max(float(starts[k]), t0), float(ends[k])
        avail = b - a
        # a restart (not needed for the very first start) can itself be cut short by the next preemption
        setup = 0.0 if first else r
        if avail <= setup:
            billed += avail
            interruptions += 1
            continue
        first = False
        t = a + setup
        left = b - t
        if tau == 0:  # continuous checkpointing (delta = 0): all work done is kept
            done = min(left, remaining)
            remaining -= done
            left -= done
            t += done
        else:
            # committed segments: tau of work + delta of checkpoint each; the last one holds the remainder
            full = min(math.floor(left / (tau + d) + 1e-12), math.floor(remaining / tau + 1e-12))
            remaining -= full * tau
            left -= full * (tau + d)
            t += full * (tau + d)
        if remaining <= 1e-9:
            remaining = 0.0
        if remaining == 0.0 or left >= remaining + d - 1e-12:
            t += (remaining + d) if remaining > 0 else 0.0
            billed += t - a
            return {"wall_clock_hours": t - t0, "billed_hours": billed, "interruptions": interruptions,
                    "finished": True}
        billed += avail
        interruptions += 1  # the partial segment in progress is lost
    return {"wall_clock_hours": math.nan, "billed_hours": billed, "interruptions": interruptions, "finished": False}


def replay_trace(job: JobSpec, trace: Trace, tau: float | None = None, start_hours: Iterable[float] | None = None,
                 max_cycles: int = 50) -> pd.DataFrame:
    """Run ``job`` against the trace from each start time (hours into the trace); one row per start.

    Which ticks the N-node job can run in follows the trace's ``model`` (:data:`TRACE_MODELS`): ``group``, all
    nodes are preempted together when the trace shows fewer than N instances; ``per_node``, each node follows its
    own shifted copy of a 1-instance trace and the job stops when any node is preempted. Rules: the job waits
    (unbilled) while it cannot run; it is billed from the moment capacity is up until it is preempted or
    finishes; after each preemption it pays ``R`` of restart, then redoes the work since its last completed
    checkpoint; a checkpoint counts only once its write of ``delta`` finished. If the job outlives the trace, the
    trace is repeated (up to ``max_cycles`` times). ``tau`` defaults to Daly's optimum at the job MTBF of the
    model (:meth:`Trace.job_mtbf`), the same M the scenario table's closed form uses for this trace. A job that
    never gets capacity (e.g. 4 independent nodes on a pool that is up a third of the time) or does not finish
    within ``max_cycles`` repetitions is a row with ``finished`` False and no wall clock.
    """
    starts = [0.0] if start_hours is None else list(start_hours)
    s, e = trace.job_intervals(job.nodes)
    if len(s) == 0:
        return pd.DataFrame([{"wall_clock_hours": math.nan, "billed_hours": 0.0, "interruptions": 0,
                              "finished": False, "start_hour": float(t0), "tau_hours": math.nan, "trace": trace.name,
                              "model": trace.model, "spot_cost": 0.0, "od_cost": job.od_cost,
                              "cost_saving": math.nan, "wall_clock_increase": math.nan} for t0 in starts])
    if tau is None:
        tau = _tau_or_optimal(job, trace.job_mtbf(job.nodes), None)
    ts, te = _tiled_intervals(trace, job.nodes, max_cycles)
    rows = []
    for t0 in starts:
        res = _replay_once(ts, te, float(t0), job, float(tau))
        res.update(start_hour=float(t0), tau_hours=float(tau), trace=trace.name, model=trace.model,
                   spot_cost=res["billed_hours"] * job.spot_price * job.nodes, od_cost=job.od_cost)
        res["cost_saving"] = 1 - res["spot_cost"] / job.od_cost
        res["wall_clock_increase"] = res["wall_clock_hours"] / job.work_hours - 1
        rows.append(res)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- named scenarios
@dataclass(frozen=True)
class Scenario:
    """One interruption assumption: the node MTBF for :func:`closed_form` / :func:`monte_carlo`, the mean unbilled
    wait for capacity after each interruption, and the words naming where both come from."""

    name: str
    node_mtbf_hours: float
    wait_hours: float
    source: str


class Scenarios(dict):
    """The interruption scenarios of a plan, by name: every figure of one scenario -- its row in the table, its
    Monte Carlo, its closed form, its sweep -- is computed from the same MTBF *and the same wait*.

    Why: the report passed the wait twice, once per scenario to the table and once as ``capacity_wait_hours`` to
    the Monte Carlo and closed form behind the headline; with ``interruption_source=trace`` the table said 224.5 h
    (+133.9%) and the headline +26.1% for the same scenario (the traces' 3.99 h wait left out of the second).
    """

    def add(self, name: str, node_mtbf_hours: float, wait_hours: float, source: str) -> Scenario:
        sc = Scenario(name, float(node_mtbf_hours), float(wait_hours), source)
        self[name] = sc
        return sc

    def closed_form(self, job: JobSpec, name: str, tau: float | None = None) -> Estimate:
        sc = self[name]
        return closed_form(job, sc.node_mtbf_hours, tau=tau, scenario=name, wait_hours=sc.wait_hours)

    def monte_carlo(self, job: JobSpec, name: str, **kw) -> MonteCarloResult:
        sc = self[name]
        return monte_carlo(job, sc.node_mtbf_hours, wait_hours=sc.wait_hours, **kw)

    def sweep(self, job: JobSpec, name: str, taus: Iterable[float]) -> pd.DataFrame:
        sc = self[name]
        return sweep_intervals(job, sc.node_mtbf_hours, taus, wait_hours=sc.wait_hours).assign(scenario=name)

    def table(self, job: JobSpec) -> pd.DataFrame:
        """One closed-form row per scenario at its Daly-optimal interval, with its ``wait_hours``."""
        return pd.DataFrame([self.closed_form(job, n).as_dict() | {"wait_hours": sc.wait_hours}
                             for n, sc in self.items()])


@dataclass(frozen=True)
class TraceScenario:
    """What a set of traces says an N-node job lives through (medians over the traces)."""

    job_mtbf_hours: float
    node_mtbf_hours: float
    wait_hours: float
    nodes: int
    model: str
    stats: pd.DataFrame


def trace_scenario(traces: Sequence[Trace], nodes: int) -> TraceScenario | None:
    """The scenario of the traces for an N-node job: the median job MTBF (:meth:`Trace.job_mtbf`) and the median
    outage the job waits through (:meth:`Trace.job_stats`), per trace under its ``model``; None without traces.

    Why the job's figures and not :meth:`Trace.stats`: ``stats()`` counts a tick as up when one instance is,
    while the replay runs the 4-node job only when four are (``group``). On the 4-node aws-08-03-2023 traces the
    scenario took 1-instance figures while the replay lived through the 4-instance ones: median job MTBF 3.75 h,
    wait 3.51 h, Daly tau 44.2 min, +151.7% wall clock, 57.2% saving are the job's. ``node_mtbf_hours`` is what
    :func:`closed_form` takes (it divides by N): job MTBF x N.
    """
    if not traces:
        return None
    stats = pd.DataFrame([t.job_stats(nodes) for t in traces])
    models = sorted({t.model for t in traces})
    if len(models) > 1:
        raise ConfigError(f"traces: one trace model per scenario, got {models}")
    job_m = float(np.median([t.job_mtbf(nodes) for t in traces]))
    return TraceScenario(job_mtbf_hours=job_m, node_mtbf_hours=job_m * nodes,
                         wait_hours=float(np.median(stats.mean_outage_hours)), nodes=nodes, model=models[0],
                         stats=stats)


# ------------------------------------------------------------------------------------------ stress scenarios
@dataclass(frozen=True)
class StressScenario:
    """A documented interruption regime from published figures (``data/spot_stress_scenarios.csv``).

    It exists so that the savings headline always has a stress test beside it, also in a plain clone where no
    trace can be replayed: ``mtbf_hours`` is the measured time between interruptions under ``model`` (as for a
    :class:`Trace`), ``wait_hours`` the mean unbilled wait for capacity after one, ``source`` the publication.
    """

    name: str
    mtbf_hours: float
    model: str
    wait_hours: float
    source: str

    def node_mtbf(self, nodes: int) -> float:
        return equivalent_node_mtbf(self.mtbf_hours, nodes, self.model)

    def job_mtbf(self, nodes: int) -> float:
        return self.node_mtbf(nodes) / nodes


def stress_scenarios(path: str | os.PathLike | None = None) -> dict[str, StressScenario]:
    """The stress scenarios of ``data/spot_stress_scenarios.csv`` (or your own table), by name, in file order."""
    out: dict[str, StressScenario] = {}
    where = str(path or "spot_stress_scenarios.csv")
    for i, rec in enumerate(data_rows("spot_stress_scenarios.csv", path), start=1):
        try:
            sc = StressScenario(rec["name"], float(rec["mtbf_hours"]), check_trace_model(rec["model"]),
                                float(rec["wait_hours"]), rec["source"])
        except (KeyError, ValueError, TypeError, ConfigError) as exc:
            raise InputError(where, f"expected name, mtbf_hours > 0, model ({'/'.join(TRACE_MODELS)}), "
                                    f"wait_hours >= 0, source ({exc})", row=i) from None
        if not (sc.mtbf_hours > 0 and sc.wait_hours >= 0 and sc.source.strip()):
            raise InputError(where, "expected mtbf_hours > 0, wait_hours >= 0 and a source", row=i)
        out[sc.name] = sc
    return out


def required_node_mtbf(job: JobSpec, max_increase: float = 0.05, wait_hours: float = 0.0) -> float:
    """The smallest node MTBF (hours) at which the job's expected wall clock stays within ``max_increase``
    (0.05 = +5%) of the failure-free run, checkpointing at Daly's optimum (closed form, bisection).

    Why: a band or a trace is an assumption; this is the number to hold it against ("the plan holds if a node
    survives at least this long on average").
    """
    if not max_increase > 0:
        raise ConfigError(f"max_increase must be > 0, got {max_increase!r}")

    def over(m: float) -> bool:
        return closed_form(job, m, wait_hours=wait_hours).wall_clock_increase > max_increase

    lo, hi = 1e-3, 1.0
    while over(hi):
        lo, hi = hi, hi * 2
        if hi > 1e9:
            raise ConfigError("no MTBF keeps this job within the wall-clock target (checkpoint or restart too slow)")
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if over(mid) else (lo, mid)
        if hi / lo < 1 + 1e-9:
            break
    return hi


# -------------------------------------------------------------------------------------------- the headline
def headline(job: JobSpec, mc: MonteCarloResult, lo: float = 5, hi: float = 95) -> dict:
    """Cost saving and wall-clock increase vs on-demand with their [lo, hi] percentile range."""
    s = mc.summary(lo, hi)
    cs, wi = s["cost_saving"], s["wall_clock_increase"]
    return {"cost_saving": cs["mean"], "cost_saving_lo": cs[f"p{lo:g}"],
            "cost_saving_hi": cs[f"p{hi:g}"], "wall_clock_increase": wi["mean"],
            "wall_clock_increase_lo": wi[f"p{lo:g}"], "wall_clock_increase_hi": wi[f"p{hi:g}"],
            "spot_cost": s["spot_cost"]["mean"], "od_cost": job.od_cost, "tau_hours": mc.tau_hours,
            "interruptions": s["interruptions"]["mean"], "runs": len(mc.wall_clock_hours), "lo": lo, "hi": hi,
            "job_mtbf_hours": job_mtbf(mc.node_mtbf_hours, job.nodes)}


def _outcome(h: Mapping, ranges: bool = True) -> str:
    """'Spot would reduce training costs by X% (p5-p95: ..) with Y% wall-clock increase (..)' of a
    :func:`headline` dict: a conditional, because it is a simulated job, not a saving achieved ("Reduced training
    costs by 67%" read as done).

    When spot comes out dearer (interruptions eat the discount) it says so instead of printing a negative saving.
    """
    lo_pct, hi_pct = 100 * h["cost_saving_lo"], 100 * h["cost_saving_hi"]
    if h["cost_saving"] >= 0:
        lead = f"Spot would reduce training costs by {100 * h['cost_saving']:.0f}%"
    else:
        lead = f"Spot would raise training costs by {-100 * h['cost_saving']:.0f}%"
        lo_pct, hi_pct = -hi_pct, -lo_pct
    rng = f" (p{h['lo']:g}–p{h['hi']:g}: {lo_pct:.0f}–{hi_pct:.0f}%)" if ranges else ""
    wrng = (f" (p{h['lo']:g}–p{h['hi']:g}: {100 * h['wall_clock_increase_lo']:.1f}–"
            f"{100 * h['wall_clock_increase_hi']:.1f}%)") if ranges else ""
    return f"{lead}{rng} with {100 * h['wall_clock_increase']:.1f}% wall-clock increase{wrng}"


def savings_sentence(h: Mapping, job: JobSpec | None = None, *, mtbf_source: str, price_source: str) -> str:
    """'Spot would reduce training costs by X% with Y% wall-clock increase', with the assumptions it rests on.

    ``mtbf_source`` says where the interruption rate comes from (e.g. "Spot Advisor band 10-15%, midpoint") and
    ``price_source`` where the spot price comes from (e.g. "median of a synthetic price cache"): both are required,
    because the same job reads 67% or 54% cheaper depending on them and a reader must see which.
    """
    if not mtbf_source.strip() or not price_source.strip():
        raise ConfigError("savings sentence: name the MTBF source and the price source")
    txt = _outcome(h)
    if job is not None:
        txt += (f" for a {job.gpu_hours:,.0f} GPU-hour job on {job.nodes} node(s): "
                f"${h['spot_cost']:,.0f} on spot vs ${h['od_cost']:,.0f} on demand")
        txt += (f", assuming a node MTBF of {h['job_mtbf_hours'] * job.nodes:,.0f} h ({mtbf_source})"
                if "job_mtbf_hours" in h else f", assuming interruptions as in {mtbf_source}")
        txt += f" and spot at ${job.spot_price:,.2f}/h ({price_source})"
    else:
        txt += f", assuming interruptions as in {mtbf_source} and spot prices from {price_source}"
    return txt + "."


def replay_headline(job: JobSpec, replay: pd.DataFrame, lo: float = 5, hi: float = 95) -> dict:
    """A :func:`headline` dict from :func:`replay_trace` rows: the figures are those of the finished runs;
    ``starts`` is the number of replayed starts (rows), ``runs`` the finished ones and ``finished`` their share.

    Why both counts: the report said "8 starts, 33% of them finished" for 24 starts of which 8 finished, reading
    the finished count as the starts."""
    done = replay[replay["finished"].astype(bool)]
    if done.empty:
        raise ConfigError("trace replay: no run finished; nothing to summarize")
    cs, wi = done["cost_saving"], done["wall_clock_increase"]
    return {"cost_saving": float(cs.mean()), "cost_saving_lo": float(np.percentile(cs, lo)),
            "cost_saving_hi": float(np.percentile(cs, hi)), "wall_clock_increase": float(wi.mean()),
            "wall_clock_increase_lo": float(np.percentile(wi, lo)),
            "wall_clock_increase_hi": float(np.percentile(wi, hi)), "spot_cost": float(done["spot_cost"].mean()),
            "od_cost": job.od_cost, "runs": len(done), "starts": len(replay), "finished": len(done) / len(replay),
            "lo": lo, "hi": hi}


def headline_lines(job: JobSpec, expected: Mapping, stresses: Sequence[tuple[Mapping, str]], *, mtbf_source: str,
                   price_source: str, max_increase: float = 0.05, wait_hours: float = 0.0,
                   context: Sequence[str] = ()) -> list[str]:
    """The savings report: the expected outcome, each stress test beside it in the same form, and the MTBF the
    plan needs. Each line is a complete sentence (Markdown; the outcomes all bold: equal weight by construction).
    ``context``: sentences that come first, in one paragraph (:func:`finops_kit.spot.scenario_context`: a
    scenario from parameters, and what the bill in scope holds of it).

    ``expected`` is a :func:`headline` dict of the chosen interruption assumption; ``stresses`` pairs a headline
    dict (of a :class:`StressScenario`'s Monte Carlo or of :func:`replay_headline`) with the words naming its
    source; at least one is required. ``max_increase`` is the wall-clock budget the required MTBF is computed
    for (:func:`required_node_mtbf`).
    """
    if not stresses:
        raise ConfigError("savings report: a stress test is required beside the expected outcome")
    need = required_node_mtbf(job, max_increase, wait_hours)
    return [
        *([" ".join(context)] if context else []),
        f"**Expected: {savings_sentence(expected, job, mtbf_source=mtbf_source, price_source=price_source)}**",
        *(f"**Stress test: {_outcome(h)}, {src}, at the same prices.**" for h, src in stresses),
        f"To stay under +{100 * max_increase:.0f}% wall clock this job needs a node MTBF of at least {need:,.0f} h "
        f"(job MTBF {need / job.nodes:,.0f} h on {job.nodes} node(s)); hold the interruption assumption against it.",
    ]


# ------------------------------------------------------------------------------ interactive chart (offline)
def tradeoff_chart(job: JobSpec, node_mtbf_hours: float, tau_minutes: float | None = None,
                   max_tau_minutes: int = 720, mtbf_range_hours: tuple[float, float] = (0.25, 20000.0)):
    """Expected cost and wall clock vs checkpoint interval, with sliders for the interval and the node MTBF.

    Everything is computed in the browser from Daly's closed form (Vega expressions over a grid of intervals),
    so the sliders work in the offline HTML report without a kernel. Only the job's constants are embedded.
    The chart opens at ``node_mtbf_hours`` (the job spec's interruption assumption) and at ``tau_minutes``
    (default: Daly's optimum for it); both slider ranges are widened to contain them. The MTBF slider moves in
    log10 hours, because plausible MTBFs span 1 h (GPU pools under pressure) to 10,000 h (an Advisor "<5%" band).
    """
    import altair as alt

    if not node_mtbf_hours > 0:
        raise ConfigError(f"MTBF must be > 0 hours, got {node_mtbf_hours!r}")
    n, ts, d, r = job.nodes, job.work_hours, job.checkpoint_hours, job.restart_hours
    ps, po = job.spot_price, job.od_price
    # no interruptions at all (a trace without preemptions): open at the slider's top, the nearest it can show;
    # a finite MTBF above the range widens the slider instead (below)
    if math.isinf(node_mtbf_hours):
        node_mtbf_hours = mtbf_range_hours[1]
    tau0 = (60 * _tau_or_optimal(job, job_mtbf(node_mtbf_hours, n), None) if tau_minutes is None
            else float(tau_minutes))
    tau0 = max(tau0, 1.0)  # the slider's first minute (a free checkpoint's optimum is 0: continuous)
    max_tau = int(max(max_tau_minutes, math.ceil(1.5 * tau0)))
    log_m = math.log10(node_mtbf_hours)
    lo_m = math.floor(min(math.log10(mtbf_range_hours[0]), log_m) * 100) / 100
    hi_m = math.ceil(max(math.log10(mtbf_range_hours[1]), log_m) * 100) / 100
    grid = pd.DataFrame({"tau_min": np.unique(np.round(np.geomspace(1, max_tau, 160), 2))})
    mtbf = alt.param(name="log_mtbf", value=log_m,
                     bind=alt.binding_range(min=lo_m, max=hi_m, step=0.01,
                                            name="node MTBF, log10 hours (0 = 1 h, 2 = 100 h, 4 = 10,000 h) "))
    tau = alt.param(name="tau", value=tau0,
                    bind=alt.binding_range(min=1, max=max_tau, step=1, name="checkpoint every (min) "))
    m = f"(pow(10, log_mtbf) / {n})"  # job MTBF, hours

    def tw(tau_h: str) -> str:
        return f"{m} * exp({r!r} / {m}) * (exp(({tau_h} + {d!r}) / {m}) - 1) * {ts!r} / ({tau_h})"

    x = f"({d!r} / (2 * {m}))"
    daly = f"({d!r} < 2 * {m} ? sqrt(2 * {d!r} * {m}) * (1 + sqrt({x}) / 3 + {x} / 9) - {d!r} : {m})"
    base = alt.Chart(grid).transform_calculate(
        wall=tw("datum.tau_min / 60")).transform_calculate(
        cost=f"{ps!r} * {n} * datum.wall", saving=f"1 - {ps!r} * datum.wall / ({po!r} * {ts!r})").transform_filter(
        f"datum.wall <= {10 * ts!r}")
    xenc = alt.X("tau_min:Q", scale=alt.Scale(type="log"), title="checkpoint interval (minutes, log scale)")
    cost = base.mark_line(color="#1f77b4").encode(
        xenc, alt.Y("cost:Q", title="expected spot cost", axis=alt.Axis(format="$,.0f")),
        tooltip=[alt.Tooltip("tau_min:Q", title="interval (min)"), alt.Tooltip("cost:Q", format="$,.0f"),
                 alt.Tooltip("saving:Q", format=".1%", title="saving vs on-demand")])
    wall = base.mark_line(color="#ff7f0e").encode(
        xenc, alt.Y("wall:Q", title="expected wall clock (h)"),
        tooltip=[alt.Tooltip("tau_min:Q", title="interval (min)"), alt.Tooltip("wall:Q", format=",.1f")])
    od_line = alt.Chart(pd.DataFrame({"y": [po * n * ts]})).mark_rule(strokeDash=[4, 4], color="#d62728").encode(
        y="y:Q")
    one = alt.Chart(pd.DataFrame({"k": [0]}))
    chosen = one.transform_calculate(tau_min="tau").encode(x="tau_min:Q").mark_rule(color="black")
    optimum = one.transform_calculate(tau_min=f"{daly} * 60").encode(x="tau_min:Q").mark_rule(
        color="#2ca02c", strokeDash=[2, 2])
    text = one.transform_calculate(
        wall=tw("tau / 60")).transform_calculate(
        label=(f"'at ' + format(tau, ',.0f') + ' min (Daly optimum ' + format({daly} * 60, ',.0f') + ' min, node MTBF '"
               f" + format(pow(10, log_mtbf), ',.0f') + ' h, job MTBF '"
               f" + format({m}, ',.1f') + ' h): spot $' + format({ps!r} * {n} * datum.wall, ',.0f') + ' vs on-demand $'"
               f" + format({po * n * ts!r}, ',.0f') + ' = ' + format(1 - {ps!r} * datum.wall / ({po!r} * {ts!r}), '.1%')"
               f" + ' saved, wall clock ' + format(datum.wall, ',.1f') + ' h (+' + format(datum.wall / {ts!r} - 1, '.1%') + ')'")
    ).mark_text(align="left", fontSize=12).encode(text="label:N", x=alt.value(0), y=alt.value(0))
    left = alt.layer(cost, od_line, chosen, optimum).properties(width=330, height=230,
                                                               title="Expected cost (red: on-demand)")
    right = alt.layer(wall, chosen, optimum).properties(width=330, height=230,
                                                         title="Expected wall clock (green: Daly optimum)")
    return alt.vconcat(text.properties(width=680, height=14), alt.hconcat(left, right)).add_params(mtbf, tau)
