"""The checkpoint/interruption simulator: Daly's published table, MC vs closed form, hand-computed trace replay."""

from __future__ import annotations

import json
import math

import numpy as np
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
    text = ck.savings_sentence(h, job)
    assert text.startswith(f"Reduced training costs by {100 * h['cost_saving']:.0f}%")
    assert "1,600 GPU-hour" in text
    dear = ck.JobSpec(work_hours=10, checkpoint_hours=0.2, restart_hours=0.5, od_price=1.0, spot_price=0.9)
    h2 = ck.headline(dear, ck.monte_carlo(dear, 0.5, runs=300, seed=2))
    assert ck.savings_sentence(h2).startswith("Spot would raise training costs by")


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
    svg = vlc.vegalite_to_svg(ck.tradeoff_chart(job, rate_per_node_day=0.5, tau_minutes=60).to_dict())
    est = ck.closed_form(job, node_mtbf_hours=48.0, tau=1.0)  # 0.5 interruptions/node-day = 48 h node MTBF
    daly = ck.daly_interval(5 * MIN, 12.0) * 60
    assert f"Daly optimum {daly:,.0f} min, job MTBF 12.0 h" in svg
    assert f"spot ${est.spot_cost:,.0f} vs on-demand ${est.od_cost:,.0f} = {100 * est.cost_saving:.1f}% saved" in svg
    assert f"wall clock {est.wall_clock_hours:,.1f} h" in svg
