"""The checkpoint/interruption simulator: Daly's published table, MC vs closed form, hand-computed trace replay."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from finops_kit import checkpoint as ck
from finops_kit.errors import ConfigError, InputError

MIN = 1 / 60

# Daly (FGCS 2006), delta = 5 min, R = 10 min, T_s = 500 h. tau in minutes (paper: 117 / 57 / 9.1) and T_w/T_s.
DALY = [(24.0, 116.7, 1.096), (6.0, 56.7, 1.220), (0.25, 9.1, 5.008)]


@pytest.mark.parametrize("mtbf, tau_min, ratio", DALY)
def test_daly_2006_table(mtbf, tau_min, ratio):
    delta, restart, work = 5 * MIN, 10 * MIN, 500.0
    tau = ck.daly_interval(delta, mtbf)
    # tolerance: the table is printed to 0.1 min and 3 decimals, so +-0.05 min and +-0.0005
    assert abs(tau * 60 - tau_min) <= 0.05
    assert abs(ck.expected_wall_clock(work, tau, delta, restart, mtbf) / work - ratio) <= 0.0005


def test_young_and_daly_limits():
    assert ck.young_interval(5 * MIN, 24) * 60 == pytest.approx(120.0)  # sqrt(2 * 5 min * 1440 min)
    assert ck.daly_interval(3.0, 1.0) == 1.0  # delta >= 2M: tau = M
    # Daly's optimum is a minimum of the closed form: neighbours cost more
    tau = ck.daly_interval(5 * MIN, 6.0)
    tw = [ck.expected_wall_clock(100, t, 5 * MIN, 10 * MIN, 6.0) for t in (tau * 0.8, tau, tau * 1.25)]
    assert tw[1] < tw[0] and tw[1] < tw[2]


def test_closed_form_costs_and_nodes():
    job = ck.JobSpec(work_hours=100, nodes=4, checkpoint_hours=5 * MIN, restart_hours=10 * MIN,
                     od_price=20.0, spot_price=6.0, gpus_per_node=8)
    est = ck.closed_form(job, node_mtbf_hours=48.0)
    assert est.job_mtbf_hours == 12.0  # 4 synchronous nodes: any loss stops the job
    tw = ck.expected_wall_clock(100, est.tau_hours, 5 * MIN, 10 * MIN, 12.0)
    assert est.wall_clock_hours == pytest.approx(tw)
    assert est.spot_cost == pytest.approx(6.0 * 4 * tw)
    assert est.od_cost == 20.0 * 4 * 100
    assert est.cost_saving == pytest.approx(1 - 6.0 * tw / (20.0 * 100))
    assert job.gpu_hours == 3200
    # waiting for capacity delays the job but is not billed
    waited = ck.closed_form(job, 48.0, wait_hours=1.0)
    assert waited.spot_cost == pytest.approx(est.spot_cost)
    assert waited.wall_clock_hours == pytest.approx(tw + tw / 12.0)


@pytest.mark.parametrize("mtbf, tau", [(24.0, 1.0), (2.0, 0.5), (0.25, 0.125)])
def test_monte_carlo_agrees_with_closed_form(mtbf, tau):
    # T_s a multiple of tau: the simulated process is exactly the one Daly's formula is the expectation of
    job = ck.JobSpec(work_hours=50, checkpoint_hours=5 * MIN, restart_hours=10 * MIN, od_price=3.0, spot_price=1.0)
    mc = ck.monte_carlo(job, mtbf, tau=tau, runs=3000, seed=7)
    mean, lo, hi = mc.mean_ci()  # 99% CI of the mean
    expected = ck.closed_form(job, mtbf, tau=tau).wall_clock_hours
    assert lo <= expected <= hi
    assert hi - lo < 0.02 * expected  # and the CI is tight enough for that to mean something
    # interruptions: Wald's identity, E[N] = E[billed time] / M
    assert mc.interruptions.mean() == pytest.approx(expected / mtbf, rel=0.03)
    # reproducible with the seed
    again = ck.monte_carlo(job, mtbf, tau=tau, runs=3000, seed=7)
    assert np.array_equal(mc.wall_clock_hours, again.wall_clock_hours)


def test_monte_carlo_no_interruptions_is_deterministic():
    job = ck.JobSpec(work_hours=10, checkpoint_hours=0.1, restart_hours=0.2, od_price=2, spot_price=1)
    mc = ck.monte_carlo(job, 1e12, tau=2.5, runs=10)
    assert np.allclose(mc.wall_clock_hours, 10 + 4 * 0.1)  # 4 segments, 4 checkpoints, nothing lost
    mc = ck.monte_carlo(job, 1e12, tau=3.0, runs=10)
    assert np.allclose(mc.wall_clock_hours, 10 + 4 * 0.1)  # 3 + 3 + 3 + last 1: four checkpoints too


def test_monte_carlo_waits_are_unbilled():
    job = ck.JobSpec(work_hours=20, checkpoint_hours=0.1, restart_hours=0.2, od_price=2, spot_price=1)
    mc = ck.monte_carlo(job, 2.0, tau=0.5, runs=4000, seed=3, wait_hours=1.5)
    cf = ck.closed_form(job, 2.0, tau=0.5, wait_hours=1.5)
    assert mc.billed_hours.mean() == pytest.approx(cf.billed_hours, rel=0.01)
    assert mc.wall_clock_hours.mean() == pytest.approx(cf.wall_clock_hours, rel=0.02)
    assert (mc.wall_clock_hours >= mc.billed_hours).all()


def test_trace_replay_hand_computed(tmp_path):
    # one tick = 1 h: up 0-3, down 3-5, up 5-10
    p = tmp_path / "hand.json"
    p.write_text(json.dumps({"metadata": {"gap_seconds": 3600}, "data": [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]}))
    trace = ck.Trace.from_json(p)
    job = ck.JobSpec(work_hours=4, checkpoint_hours=0.5, restart_hours=0.5, od_price=1.0, spot_price=0.5)
    df = ck.replay_trace(job, trace, tau=1.5, start_hours=[0, 1, 3.5]).set_index("start_hour")
    # start 0: 1.5 work + 0.5 ckpt -> t=2 (1.5 done); segment 2 cut at t=3, lost. Wait to 5, restart to 5.5;
    #          1.5 + 0.5 -> 7.5 (3.0 done); last 1.0 + 0.5 -> 9.0. Billed 3 + 4 = 7 h.
    assert df.loc[0.0, "wall_clock_hours"] == pytest.approx(9.0)
    assert df.loc[0.0, "billed_hours"] == pytest.approx(7.0)
    assert df.loc[0.0, "interruptions"] == 1
    assert df.loc[0.0, "spot_cost"] == pytest.approx(3.5)
    # start 1: 1.5 + 0.5 -> 3 (1.5 done, preempted right after the checkpoint); 5 -> 5.5 restart; 7.5; 9.0.
    assert df.loc[1.0, "wall_clock_hours"] == pytest.approx(8.0)
    assert df.loc[1.0, "billed_hours"] == pytest.approx(6.0)
    # start 3.5: waits to 5 (first start, no restart); the trace repeats and its last and first ticks are both
    # up, so 5 -> 13 is one uninterrupted run: 3 x 2 h + (1 + 0.5) = 5.5 h -> done at 10.5.
    assert df.loc[3.5, "wall_clock_hours"] == pytest.approx(7.0)
    assert df.loc[3.5, "billed_hours"] == pytest.approx(5.5)
    assert df.loc[3.5, "interruptions"] == 0
    st = trace.stats()
    assert st["preemptions"] == 1 and st["availability"] == pytest.approx(0.8)


def test_trace_replay_restart_cut_short_and_multi_node(tmp_path):
    # 30-min ticks: up 1 h, down, up 0.5 h (shorter than the 1 h restart: billed, lost), down, up for long
    trace = ck.Trace(np.array([2, 2, 0, 2, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2]), 1800, "t")
    job = ck.JobSpec(work_hours=2, nodes=2, checkpoint_hours=0.5, restart_hours=1.0, od_price=1, spot_price=1)
    df = ck.replay_trace(job, trace, tau=1.0)
    # 0-1: ckpt not finished (1 + 0.5 > 1): lost. 1.5-2: restart cut. 2.5 (1 node only: down). 3-4 restart,
    # 4-5.5 seg 1, 5.5-7 seg 2 done -> 7 h wall; billed 1 + 0.5 + 4 = 5.5 node-group hours
    assert df.loc[0, "wall_clock_hours"] == pytest.approx(7.0)
    assert df.loc[0, "billed_hours"] == pytest.approx(5.5)
    assert df.loc[0, "interruptions"] == 2
    assert df.loc[0, "spot_cost"] == pytest.approx(5.5 * 2)


def test_trace_replay_matches_closed_form_on_billed_time(shared):
    # the honest test: a real p3.2xlarge preemption trace (read from ../shared only, never copied)
    path = shared / "corpus/raw/spot-traces/preemption/1-node/aws-04-22-2023/us-west-2b_v100_1.json"
    trace = ck.Trace.from_json(path)
    st = trace.stats()
    assert 1.4 <= st["mtbf_hours"] <= 3.3  # methods.md: uninterrupted runs of 1.4-3.2 h
    job = ck.JobSpec(work_hours=48, checkpoint_hours=5 * MIN, restart_hours=10 * MIN, od_price=3.06,
                     spot_price=0.918)
    df = ck.replay_trace(job, trace, start_hours=np.arange(0, trace.hours, 6))
    assert df["finished"].all()
    cf = ck.closed_form(job, st["mtbf_hours"], tau=df["tau_hours"].iloc[0])
    assert df["billed_hours"].mean() == pytest.approx(cf.billed_hours, rel=0.15)
    assert (df["wall_clock_hours"] > df["billed_hours"]).all()  # waiting for capacity is real


def test_band_to_mtbf_assumption():
    # "<5%" at its upper edge: 730 h / -ln(0.95) ~ 14,000 h (methods.md)
    assert ck.band_to_mtbf(0, "upper") == pytest.approx(730 / -math.log(0.95))
    assert 14000 < ck.band_to_mtbf(0, "upper") < 14500
    mids = [ck.band_to_mtbf(r) for r in range(5)]
    assert mids == sorted(mids, reverse=True)  # riskier band, shorter MTBF
    with pytest.raises(ConfigError, match="band r=7"):
        ck.band_to_mtbf(7)


def test_headline_sentence():
    job = ck.JobSpec(work_hours=100, nodes=2, checkpoint_hours=5 * MIN, restart_hours=10 * MIN,
                     od_price=10.0, spot_price=3.0, gpus_per_node=8)
    mc = ck.monte_carlo(job, 100.0, runs=500, seed=1)
    h = ck.headline(job, mc)
    assert h["cost_saving_lo"] <= h["cost_saving"] <= h["cost_saving_hi"]
    assert h["cost_saving"] == pytest.approx(1 - 3.0 * mc.billed_hours.mean() / 1000, rel=1e-9)
    text = ck.savings_sentence(h, job, mtbf_source="Spot Advisor band 10-15%, midpoint",
                               price_source="median of a synthetic price cache")
    assert text.startswith(f"Spot would reduce training costs by {100 * h['cost_saving']:.0f}%")
    assert "1,600 GPU-hour" in text
    # the assumptions are in the sentence: MTBF and its source, spot price and its source
    assert "node MTBF of 100 h (Spot Advisor band 10-15%, midpoint)" in text
    assert "spot at $3.00/h (median of a synthetic price cache)" in text
    with pytest.raises(ConfigError, match="MTBF source"):
        ck.savings_sentence(h, job, mtbf_source="", price_source="x")
    with pytest.raises(TypeError):
        ck.savings_sentence(h, job)  # a headline without its assumptions cannot be written
    dear = ck.JobSpec(work_hours=10, checkpoint_hours=0.2, restart_hours=0.5, od_price=1.0, spot_price=0.9)
    h2 = ck.headline(dear, ck.monte_carlo(dear, 0.5, runs=300, seed=2))
    assert ck.savings_sentence(h2, mtbf_source="a", price_source="b").startswith("Spot would raise training costs by")


# the review's demo job: 3,072 GPU-hours of p4d.24xlarge on 4 nodes, delta 5 min, R 10 min
DEMO_JOB = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, checkpoint_hours=5 * MIN,
                                     restart_hours=10 * MIN, od_price=21.96, spot_price=7.22)


def test_required_mtbf_for_the_wall_clock_budget():
    need = ck.required_node_mtbf(DEMO_JOB, 0.05)
    assert need == pytest.approx(311, abs=0.5)  # the independent review: >= 311 h per node
    assert ck.closed_form(DEMO_JOB, need).wall_clock_increase == pytest.approx(0.05, abs=1e-6)
    assert ck.closed_form(DEMO_JOB, 0.99 * need).wall_clock_increase > 0.05
    # waiting for capacity after each interruption makes the requirement stricter
    assert ck.required_node_mtbf(DEMO_JOB, 0.05, wait_hours=1.0) > need


def test_savings_report_carries_assumptions_stress_and_required_mtbf():
    """The demo headline read '67% cheaper with 1.2% wall-clock increase' on the Advisor band alone; the report
    must give the stress test in the same form beside it and the MTBF the plan needs."""
    advisor_mtbf = ck.band_to_mtbf(2, "mid")  # p4d.24xlarge us-east-1: 10-15%
    expected = ck.headline(DEMO_JOB, ck.monte_carlo(DEMO_JOB, advisor_mtbf, runs=2000, seed=7))
    stress_sc = ck.stress_scenarios()["GPU spot pool reclaimed every ~2 h"]
    stress = ck.headline(DEMO_JOB, ck.monte_carlo(DEMO_JOB, stress_sc.node_mtbf(DEMO_JOB.nodes), runs=2000, seed=7,
                                                  wait_hours=stress_sc.wait_hours))
    lines = ck.headline_lines(DEMO_JOB, expected, [(stress, f"if {stress_sc.name} ({stress_sc.source})")],
                              mtbf_source="Spot Advisor band 10-15%, midpoint",
                              price_source="median of a SYNTHETIC price cache")
    assert len(lines) == 3 and lines[0].startswith("**Expected: Spot would reduce training costs by 67%")
    assert "node MTBF of 5,467 h (Spot Advisor band 10-15%, midpoint)" in lines[0]
    assert "spot at $7.22/h (median of a SYNTHETIC price cache)" in lines[0]
    # the stress figure: same form, same emphasis, with its published source
    assert lines[1].startswith("**Stress test: Spot would reduce training costs by 52%") and lines[1].endswith("**")
    assert "wall-clock increase" in lines[1] and "Can't Be Late (NSDI '24)" in lines[1]
    assert 1.0 < stress["wall_clock_increase"] < 1.5
    assert "node MTBF of at least 311 h (job MTBF 78 h on 4 node(s))" in lines[2]
    with pytest.raises(ConfigError, match="stress test is required"):
        ck.headline_lines(DEMO_JOB, expected, [], mtbf_source="a", price_source="b")
    # the context (spot.scenario_context) comes first, one paragraph, before the outcomes
    ctx = ck.headline_lines(DEMO_JOB, expected, [(stress, "x")], mtbf_source="a", price_source="b",
                            context=["This is a scenario.", "The bill has no accelerated compute."])
    assert ctx[0] == "This is a scenario. The bill has no accelerated compute." and ctx[1].startswith("**Expected")


def test_stress_scenarios_table(tmp_path):
    table = ck.stress_scenarios()
    first = next(iter(table.values()))
    assert first.model == "group" and first.mtbf_hours == 2.0 and first.wait_hours == 1.0
    # group: the pool is reclaimed together, so the job's MTBF is the pool's, whatever the node count
    assert first.job_mtbf(4) == 2.0 and first.node_mtbf(4) == 8.0
    bad = tmp_path / "s.csv"
    bad.write_text("name,mtbf_hours,model,wait_hours,source\nx,2,together,1,paper\n")
    with pytest.raises(InputError, match="row 1"):
        ck.stress_scenarios(bad)


def test_one_trace_model_for_scenario_table_and_replay(tmp_path):
    """A 1-instance trace for a 4-node job: the scenario table (closed form) and the replay read the trace the same
    way. Before, the table divided the trace's MTBF by the node count while the replay preempted the whole group
    together (and chose tau for the undivided MTBF)."""
    rng = np.random.default_rng(3)
    ticks = []
    while len(ticks) < 20000:  # 10-min ticks: up ~3 h on average, down ~1 h
        ticks += [1] * max(1, int(rng.exponential(18))) + [0] * max(1, int(rng.exponential(6)))
    p = tmp_path / "pool.json"
    p.write_text(json.dumps({"metadata": {"gap_seconds": 600}, "data": ticks[:20000]}))
    job = ck.JobSpec(work_hours=40, nodes=4, checkpoint_hours=5 * MIN, restart_hours=10 * MIN, od_price=1,
                     spot_price=0.3)
    for model in ck.TRACE_MODELS:
        trace = ck.Trace.from_json(p, model=model)
        table = ck.scenario_table(job, {"trace": trace.node_mtbf(job.nodes)})
        replay = ck.replay_trace(job, trace, start_hours=np.arange(0, trace.hours, 50))
        assert (replay["model"] == model).all()
        # the replay checkpoints at the closed form's optimum: one job MTBF for both sections
        assert replay["tau_hours"].iloc[0] == pytest.approx(table["tau_hours"].iloc[0])
        assert table["job_mtbf_hours"].iloc[0] == pytest.approx(trace.job_mtbf(job.nodes))
        # and the replayed job really lives through that MTBF
        assert trace.job_stats(job.nodes)["mtbf_hours"] == pytest.approx(trace.job_mtbf(job.nodes), rel=0.25)
    single = ck.Trace.from_json(p).stats()["mtbf_hours"]
    assert ck.Trace.from_json(p, "group").job_mtbf(4) == pytest.approx(single)
    assert ck.Trace.from_json(p, "per_node").job_mtbf(4) == pytest.approx(single / 4)
    with pytest.raises(ConfigError, match="trace model 'nodes'"):
        ck.Trace.from_json(p, model="nodes")


def test_per_node_trace_model_hand_computed():
    # 1-h ticks; node 0 follows the trace, node 1 the trace shifted by half its length (2 ticks)
    trace = ck.Trace(np.array([1, 1, 0, 1]), 3600, "t", model="per_node")
    assert trace.job_up(2).tolist() == [False, True, False, True]
    assert ck.Trace(np.array([1, 1, 0, 1]), 3600, "t").job_up(2).tolist() == [True, True, False, True]
    with pytest.raises(ConfigError, match="1-instance trace"):
        ck.Trace(np.array([2, 1, 0, 2]), 3600, "t", model="per_node").job_up(2)
    # two independent nodes on a pool that is up half the time, never at the same moment: the job never runs
    never = ck.Trace(np.array([1, 1, 0, 0]), 3600, "t", model="per_node")
    df = ck.replay_trace(ck.JobSpec(work_hours=1, nodes=2), never, start_hours=[0, 1])
    assert not df["finished"].any() and df["wall_clock_hours"].isna().all() and (df["billed_hours"] == 0).all()
    with pytest.raises(ConfigError, match="no run finished"):
        ck.replay_headline(ck.JobSpec(work_hours=1, nodes=2), df)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="work_hours"):
        ck.JobSpec(work_hours=0)
    with pytest.raises(ConfigError, match="nodes"):
        ck.JobSpec(work_hours=1, nodes=0)
    with pytest.raises(InputError, match="trace file not found"):
        ck.Trace.from_json("/nonexistent/trace.json")


def test_tradeoff_chart_computes_the_closed_form_in_the_browser():
    vlc = pytest.importorskip("vl_convert")
    job = ck.JobSpec(work_hours=96, nodes=4, checkpoint_hours=5 * MIN, restart_hours=10 * MIN, od_price=21.96,
                     spot_price=7.2, gpus_per_node=8)
    svg = vlc.vegalite_to_svg(ck.tradeoff_chart(job, node_mtbf_hours=48.0, tau_minutes=60).to_dict())
    est = ck.closed_form(job, node_mtbf_hours=48.0, tau=1.0)
    daly = ck.daly_interval(5 * MIN, 12.0) * 60
    assert f"Daly optimum {daly:,.0f} min, node MTBF 48 h, job MTBF 12.0 h" in svg
    assert f"spot ${est.spot_cost:,.0f} vs on-demand ${est.od_cost:,.0f} = {100 * est.cost_saving:.1f}% saved" in svg
    assert f"wall clock {est.wall_clock_hours:,.1f} h" in svg


def test_tradeoff_chart_opens_at_the_job_spec():
    """The demo job's Advisor MTBF (5,467 h per node) and its Daly interval (902 min) are where the chart opens.
    Before, the rate slider was clamped to 0.01 interruptions/node-day (2,400 h) and the interval slider was set to
    902 min with a maximum of 720."""
    vlc = pytest.importorskip("vl_convert")
    mtbf = ck.band_to_mtbf(2, "mid")
    daly = 60 * ck.daly_interval(DEMO_JOB.checkpoint_hours, mtbf / DEMO_JOB.nodes)
    spec = ck.tradeoff_chart(DEMO_JOB, node_mtbf_hours=mtbf).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    m, tau = params["log_mtbf"], params["tau"]
    assert 10 ** m["value"] == pytest.approx(mtbf) and m["bind"]["min"] <= m["value"] <= m["bind"]["max"]
    assert tau["value"] == pytest.approx(daly) and tau["bind"]["min"] <= tau["value"] <= tau["bind"]["max"]
    svg = vlc.vegalite_to_svg(spec)
    est = ck.closed_form(DEMO_JOB, mtbf)
    assert f"at {daly:,.0f} min (Daly optimum {daly:,.0f} min, node MTBF {mtbf:,.0f} h" in svg
    assert f"wall clock {est.wall_clock_hours:,.1f} h" in svg


# ------------------------------------------------------------------ limits: a free checkpoint, no interruptions
P4D_JOB = dict(checkpoint_hours=5 * MIN, restart_hours=10 * MIN, od_price=21.96, spot_price=7.22)


def test_free_checkpoint_is_the_continuous_limit_everywhere():
    """checkpoint_hours = 0 is a valid JobSpec; before, closed_form, monte_carlo and required_node_mtbf raised
    "checkpoint time must be > 0" (`report spot_analysis -p checkpoint_minutes=0` died in cell 15). Daly's tau at
    delta = 0 is 0 (continuous checkpointing) and T_w -> T_s e^{R/M}: 96 e^{(1/6)/6} = 98.70 h at M = 6 h."""
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **(P4D_JOB | {"checkpoint_hours": 0.0}))
    limit = 96 * math.exp((10 * MIN) / 6)
    cf = ck.closed_form(job, 24)  # node MTBF 24 h -> job MTBF 6 h
    assert cf.tau_hours == 0
    assert cf.wall_clock_hours == pytest.approx(limit) and limit == pytest.approx(98.704, abs=1e-3)
    # the limit of the formula itself, from explicit tiny intervals
    assert ck.closed_form(job, 24, tau=1e-6).wall_clock_hours == pytest.approx(limit, rel=1e-6)
    mc = ck.monte_carlo(job, 24, runs=4000, seed=3)
    mean, lo, hi = mc.mean_ci()
    assert lo <= limit <= hi
    assert ck.required_node_mtbf(job, 0.05) == pytest.approx(4 * (10 * MIN) / math.log(1.05), rel=1e-6)


def test_no_interruptions_is_the_failure_free_run_plus_the_final_save():
    """A trace without preemptions has MTBF inf. Before: closed_form NaN, monte_carlo ValueError. Daly's tau is
    then infinite and capped at T_s (one segment, one final save), in every model alike: T_w = T_s + delta."""
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **P4D_JOB)
    cf = ck.closed_form(job, math.inf)
    assert (cf.tau_hours, cf.expected_interruptions) == (96.0, 0.0)
    assert cf.wall_clock_hours == pytest.approx(96 + 5 * MIN)
    assert cf.cost_saving == pytest.approx(1 - 7.22 * (96 + 5 * MIN) / (21.96 * 96))  # 67.1%
    mc = ck.monte_carlo(job, math.inf, runs=10)
    assert np.allclose(mc.wall_clock_hours, cf.wall_clock_hours) and mc.interruptions.sum() == 0
    # continuous in M: a huge finite MTBF gives the same figure
    assert ck.closed_form(job, 1e12).wall_clock_hours == pytest.approx(cf.wall_clock_hours, rel=1e-9)


def test_replay_repeats_a_trace_without_its_startup_tick():
    """A 1-instance trace that starts with one down tick (the instance starting) and never drops: before, each
    repeat of the trace began with that tick, counted as a preemption at every seam; a 96 h job on a 45.6 h trace
    never finished (-681% saving). A repeat continues after the startup: no interruption, T_w = T_s + delta."""
    trace = ck.Trace(np.array([0.0] + [1.0] * 5475), gap_seconds=30.0, name="no-preemption")
    assert trace.stats()["preemptions"] == 0
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **P4D_JOB)
    r = ck.replay_trace(job, trace, start_hours=np.arange(0, trace.hours, 6))
    assert r.finished.all() and (r.interruptions == 0).all()
    assert r.billed_hours.to_numpy() == pytest.approx(np.full(len(r), 96 + 5 * MIN))
    assert r.tau_hours.iloc[0] == ck.closed_form(job, math.inf).tau_hours


def test_replay_headline_counts_starts_and_finished_runs_apart():
    """24 starts of which 8 finished read "8 starts, 33% of them finished": ``runs`` is the finished count."""
    job = ck.JobSpec(work_hours=10, **P4D_JOB)
    replay = pd.DataFrame({"finished": [True] * 8 + [False] * 16, "cost_saving": 0.5, "wall_clock_increase": 0.1,
                           "spot_cost": 1.0})
    h = ck.replay_headline(job, replay)
    assert (h["starts"], h["runs"], h["finished"]) == (24, 8, pytest.approx(1 / 3))


def test_no_preemption_gcp_traces_replay_and_finish(shared):
    """The real traces of the finding (read from ../shared only, never copied): gcp-04-30-2023 us-central1-a and
    -b have no preemption. Before: 0 of 8 starts finished on each; after: all finish at 67.1% saving."""
    d = shared / "corpus/raw/spot-traces/preemption/1-node/gcp-04-30-2023"
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **P4D_JOB)
    for name in ("us-central1-a_c3-88.json", "us-central1-b_c3-88.json"):
        t = ck.Trace.from_json(d / name)
        r = ck.replay_trace(job, t, start_hours=np.arange(0, t.hours, 6))
        assert len(r) == 8 and r.finished.all() and (r.interruptions == 0).all()
        assert r.cost_saving.to_numpy() == pytest.approx(np.full(8, 1 - 7.22 * (96 + 5 * MIN) / (21.96 * 96)))


# ------------------------------------------------------------- one scenario, one MTBF and one wait everywhere
def test_a_scenario_s_table_row_monte_carlo_and_closed_form_share_its_wait():
    """The report passed a scenario's wait to its table row but capacity_wait_hours (0) to the Monte Carlo and
    closed form of the headline: 224.5 h (+133.9%) in the table, +26.1% in the headline for the trace scenario.
    A :class:`Scenarios` entry carries its wait into every figure."""
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **P4D_JOB)
    sc = ck.Scenarios()
    sc.add("traces", 4 * 3.75, 3.5, "median of the traces")
    sc.add("no wait", 4 * 3.75, 0.0, "same MTBF, no wait")
    row = sc.table(job).set_index("scenario").loc["traces"]
    cf = sc.closed_form(job, "traces")
    assert row.wall_clock_hours == pytest.approx(cf.wall_clock_hours)
    assert row.wait_hours == 3.5
    assert cf.wall_clock_hours == pytest.approx(cf.billed_hours + 3.5 * cf.expected_interruptions)
    mean, lo, hi = sc.monte_carlo(job, "traces", runs=4000, seed=1).mean_ci()
    assert lo <= cf.wall_clock_hours <= hi
    assert sc.closed_form(job, "no wait").wall_clock_hours < cf.wall_clock_hours - 50
    sweep = sc.sweep(job, "traces", [cf.tau_hours])
    assert sweep.wall_clock_hours.iloc[0] == pytest.approx(cf.wall_clock_hours)


def test_trace_scenario_is_what_the_n_node_job_lives_through():
    """A 4-instance group trace in which one instance drops often but all four rarely are up together: the
    job's MTBF counts '>= 4 up' (as the replay), not '>= 1 up' (Trace.stats(), which the report used)."""
    # 10 h cycles of 30 s ticks: 4 up for 6 h, then 3 up for 4 h (one instance preempted; the job stops)
    cycle = [4.0] * 720 + [3.0] * 480
    t = ck.Trace(np.array(cycle * 10), gap_seconds=30.0, name="g4", model="group")
    assert t.stats()["mtbf_hours"] == math.inf  # one instance is never lost
    s = ck.trace_scenario([t], 4)
    assert s.job_mtbf_hours == pytest.approx(t.job_mtbf(4)) and s.job_mtbf_hours == pytest.approx(6.0)
    assert s.wait_hours == pytest.approx(4.0)
    assert s.node_mtbf_hours == pytest.approx(24.0)  # closed_form divides by the 4 nodes
    assert ck.trace_scenario([], 4) is None


def test_trace_scenario_of_the_4_node_aws_traces(shared):
    """The reviewer's 4-node traces (../shared only): median job MTBF 3.75 h, wait 3.51 h, Daly tau 44.2 min,
    +151.7% wall clock, 57.2% saving (before: the 1-instance figures of Trace.stats())."""
    d = shared / "corpus/raw/spot-traces/preemption/4-node/aws-08-03-2023"
    traces = [ck.Trace.from_json(d / f"{z}_v100_1.json") for z in ("us-east-1f", "us-east-2a", "us-west-2c")]
    s = ck.trace_scenario(traces, 4)
    assert (round(s.job_mtbf_hours, 2), round(s.wait_hours, 2)) == (3.75, 3.51)
    job = ck.JobSpec.from_gpu_hours(3072, nodes=4, gpus_per_node=8, **P4D_JOB)
    e = ck.closed_form(job, s.node_mtbf_hours, wait_hours=s.wait_hours)
    assert (round(60 * e.tau_hours, 1), round(100 * e.wall_clock_increase, 1), round(100 * e.cost_saving, 1)) == (
        44.2, 151.7, 57.2)


def test_monte_carlo_refuses_a_job_interrupted_too_often_to_simulate_in_one_line():
    """An MTBF of minutes gives ~1e15 interruptions per run: the simulation allocated 168 GiB (MemoryError) or
    numpy refused p ~ 1e-261 (ValueError). The closed form still answers; the simulation says why it cannot."""
    job = ck.JobSpec(work_hours=100, checkpoint_hours=5 / 60, restart_hours=10 / 60)
    for mtbf in (0.01, 0.001):
        with pytest.raises(ConfigError, match=r"interruptions per run .* too many to simulate") as err:
            ck.monte_carlo(job, mtbf, runs=200, seed=1)
        assert "\n" not in str(err.value)
        assert ck.closed_form(job, mtbf).wall_clock_hours > 1e10  # the expectation is still given


def test_monte_carlo_bounds_its_memory_by_simulating_fewer_runs_at_once():
    """~750,000 interruptions per run (MTBF 3 minutes) is simulated, in chunks small enough to keep the per-event
    arrays bounded, and agrees with the closed form."""
    job = ck.JobSpec(work_hours=100, checkpoint_hours=5 / 60, restart_hours=10 / 60)
    mc = ck.monte_carlo(job, 0.05, runs=20, seed=1)
    cf = ck.closed_form(job, 0.05)
    assert abs(mc.interruptions.mean() / cf.expected_interruptions - 1) < 0.01


def test_tradeoff_chart_opens_at_a_large_finite_mtbf_as_asked():
    """Only an infinite MTBF (a trace without preemptions) opens at the slider's top; a finite one above the default
    range (an Advisor "<5%" band: 28,833 h) widens the slider and opens there, with the closed form's interval
    (it had been capped at 20,000 h: tau 1,728.7 instead of 2,076.3 min, and the asked MTBF out of reach)."""
    job = ck.JobSpec(96, nodes=4, checkpoint_hours=5 / 60, restart_hours=10 / 60, od_price=32, spot_price=12)
    m = ck.band_to_mtbf(0, "mid")
    assert m > 20000
    params = {p["name"]: p for p in ck.tradeoff_chart(job, node_mtbf_hours=m).to_dict()["params"]}
    assert params["log_mtbf"]["value"] == pytest.approx(math.log10(m))
    assert params["log_mtbf"]["bind"]["max"] >= math.log10(m)
    assert params["tau"]["value"] == pytest.approx(60 * ck.closed_form(job, m).tau_hours)
    inf = {p["name"]: p for p in ck.tradeoff_chart(job, node_mtbf_hours=math.inf).to_dict()["params"]}
    assert inf["log_mtbf"]["value"] == pytest.approx(math.log10(20000.0))
