"""AI unit economics (finops_kit.unit_economics): the planted training run and app-day of the samples are recovered
exactly, runs are found by tag, resource id and runs file, and bad side files are refused with one line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import finops_kit as fk
from finops_kit import unit_economics as ue
from finops_kit.errors import ConfigError, InputError
from finops_kit.scope import resolve

REPO = Path(__file__).resolve().parents[1]
SIDE = REPO / "data" / "samples" / "_ai_units"


@pytest.fixture(scope="module")
def planted() -> dict:
    return json.loads((REPO / "data" / "samples" / "PLANTED.json").read_text())["ai_units"]


@pytest.fixture(scope="module")
def bound(sample_warehouse: str):
    con = fk.connect(sample_warehouse, read_only=True)
    yield con, resolve(con, str(REPO / "finops.yaml"), {})
    con.close()


@pytest.fixture(scope="module")
def runs(bound):
    con, sc = bound
    return ue.training_runs(con, sc, SIDE / "training_runs.csv")


def _d(x: float, places: int = 6) -> Decimal:
    return Decimal(f"{x:.{places}f}")


def test_tagged_run_recovered_exactly(runs, planted) -> None:
    p = planted["training_run"]
    r = runs.run(p["run_id"])
    assert r["identified_by"] == p["identified_by"] and r["team"] == p["team"]
    assert _d(r["cost"]) == Decimal(p["cost"]).quantize(Decimal("1e-6"))
    assert _d(r["compute_cost"]) == Decimal(p["compute_cost"]).quantize(Decimal("1e-6"))
    assert _d(r["storage_cost"]) == Decimal(p["storage_cost"]).quantize(Decimal("1e-6"))  # its checkpoint volume
    assert _d(r["transfer_cost"]) == Decimal(p["transfer_cost"]).quantize(Decimal("1e-6"))  # its inter-region copy
    assert r["accelerator_hours"] == float(p["gpu_hours"]) and r["spot_accelerator_hours"] == float(p["spot_gpu_hours"])
    assert r["spot_share"] == pytest.approx(float(p["spot_gpu_hours"]) / float(p["gpu_hours"]))
    assert r["cost_per_gpu_hour"] == pytest.approx(float(p["cost"]) / float(p["gpu_hours"]))


def test_runs_by_label_resource_id_and_file(runs, bound, planted) -> None:
    t = runs.table.set_index("run_id")
    assert t.loc["8512934470312345678", "identified_by"] == "tag vertex-ai-pipelines-run-billing-id"
    sm = t[t["identified_by"] == "resource id"]
    assert len(sm) == 1 and sm.index[0].startswith("segmenter-")  # the SageMaker training job name
    # the runs-file run: its resources between 06:00 on the 6th and 18:00 on the 8th, partial days prorated
    f = planted["runs_file_run"]
    con, sc = bound
    ids = ", ".join(f"'{i}'" for i in f["resources"])
    day = con.execute(f"""SELECT ChargePeriodStart::DATE AS d, sum(EffectiveCost)::DOUBLE FROM focus
        WHERE ResourceId IN ({ids}) AND ChargePeriodStart >= '2026-10-06' AND ChargePeriodStart < '2026-10-09'
        GROUP BY ALL ORDER BY 1""").fetchall()
    assert len(day) == 3
    expect = day[0][1] * 18 / 24 + day[1][1] + day[2][1] * 18 / 24
    assert t.loc[f["run_id"], "identified_by"] == "runs file"
    assert t.loc[f["run_id"], "cost"] == pytest.approx(expect, abs=1e-6)
    assert t.loc[f["run_id"], "transfer_cost"] > 0
    assert 0 < runs.unattributed_gpu_cost < runs.gpu_cost
    assert "runs file training_runs.csv" in runs.numerator


def test_the_runs_denominator_is_the_accelerated_compute_headline(runs, bound) -> None:
    """"Not attributed to any run: $X of the $Y accelerated compute in scope": Y is the headline figure of that label
    (the accelerated instances' usage, :func:`finops_kit.units.accelerated_usage_sql`), not a third total. A review
    found $2,382,600.40 here against $2,408,961.24 in the spot report: this sum left out the unused commitments of
    accelerated instances, which no run can claim. Failed before."""
    from finops_kit import units

    con, sc = bound
    sql = f"SELECT sum(EffectiveCost) FROM ({units.accelerated_usage_sql(source=sc.rows_sql())})"
    headline = con.execute(sql).fetchall()[0][0]
    assert runs.gpu_cost == headline  # exact: both DECIMAL
    # and the runs' part of it is what the table says; the rest of the runs' cost is outside it, by reason
    _adds_up(runs)
    assert runs.table["cost"].sum() == pytest.approx(runs.table["accelerated_cost"].sum() + runs.outside["cost"].sum(),
                                                     abs=1e-5)


def test_inference_unit_cost_of_planted_app_day(bound, planted) -> None:
    con, sc = bound
    p = planted["inference"]
    u = ue.inference_unit_costs(con, sc, SIDE / "business_metrics.csv")
    row = u.daily[(u.daily["application"] == p["application"]) & (u.daily["date"] == pd.Timestamp(p["date"]))]
    assert len(row) == 1
    row = row.iloc[0]
    assert _d(row["cost"]) == Decimal(p["cost"]).quantize(Decimal("1e-6"))
    assert row["requests"] == p["requests"]
    assert _d(row["cost_per_1k_requests"], 9) == Decimal(p["cost_per_1k_requests"])
    apps = u.by_application.set_index("application")
    # a fixed-capacity app: its daily cost does not move with volume, so unit cost falls 1:1 (slope -1)
    assert apps.loc["embed-api", "elasticity"] == pytest.approx(-1.0, abs=1e-9)
    # per-token billing makes chat-api partly variable: its slope lies between -1 and 0
    assert -1 < apps.loc["chat-api", "elasticity"] < 0
    assert apps.loc["chat-api", "cost_per_1m_tokens"] > 0
    # cost on the same days without a project tag is stated, not dropped
    assert u.unattributed.set_index("application").loc["(no project tag)", "cost"] > 0
    assert "project tag" in u.numerator


def test_elasticity_needs_spread() -> None:
    assert ue.elasticity(pd.Series([1.0, 1.0, 1.0]), pd.Series([2.0, 3.0, 4.0])) == (None, None)
    b, r2 = ue.elasticity(pd.Series([1.0, 2.0, 4.0]), pd.Series([8.0, 8.0, 8.0]))
    assert b == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("body, expect", [
    ("run,start,end\n", "column 'run_id': missing column"),
    ("run_id,start,end,resource_ids\nr1,2026-10-06,2026-10-05,i-1\n", "row 2, column 'end': end 2026-10-05 is not "
     "after start"),
    ("run_id,start,end,resource_ids\nr1,yesterday,2026-10-05,i-1\n", "row 2, column 'start': 'yesterday' is not a "
     "time"),
    ("run_id,start,end,resource_ids\nr1,2026-10-01,2026-10-05,\n", "row 2, column 'resource_ids': no resource ids"),
    ("run_id,start,end,resource_ids\nr1,2026-10-01,2026-10-05,i-1\nr1,2026-10-01,2026-10-05,i-2\n",
     "row 3, column 'run_id': run 'r1' listed twice"),
    ("run_id,start,end,resource_ids\nr1,2026-10-01\n", "row 2: 2 fields; expected 4"),
])
def test_runs_file_validated(tmp_path: Path, body: str, expect: str) -> None:
    p = tmp_path / "runs.csv"
    p.write_text(body)
    with pytest.raises(InputError) as e:
        ue.read_runs_file(p)
    assert str(e.value).startswith(str(p)) and expect in str(e.value)


def test_runs_file_time_zones(tmp_path: Path) -> None:
    p = tmp_path / "runs.csv"
    p.write_text("run_id,start,end,resource_ids\nr1,2026-10-06T08:00:00+02:00,2026-10-07T00:00:00Z,i-1; i-2\n")
    df = ue.read_runs_file(p)
    assert list(df["resource_id"]) == ["i-1", "i-2"]
    assert str(df["start"].iloc[0]) == "2026-10-06 06:00:00"


@pytest.mark.parametrize("body, expect", [
    ("date,app,requests,tokens\n", "column 'application': missing column"),
    ("date,application,requests,tokens\n2026-13-01,a,1,1\n", "row 2, column 'date': '2026-13-01' is not a date"),
    ("date,application,requests,tokens\n2026-10-01,a,-5,1\n", "row 2, column 'requests': -5 is not a count"),
    ("date,application,requests,tokens\n2026-10-01,a,many,1\n", "row 2, column 'requests': 'many' is not a number"),
    ("date,application,requests,tokens\n2026-10-01,a,1,1\n2026-10-01,a,2,2\n", "row 3: 2026-10-01 a listed twice"),
    ("date,application,requests,tokens\n", "no rows"),
])
def test_business_metrics_validated(tmp_path: Path, body: str, expect: str) -> None:
    p = tmp_path / "bm.csv"
    p.write_text(body)
    with pytest.raises(InputError) as e:
        ue.read_business_metrics(p)
    assert str(e.value).startswith(str(p)) and expect in str(e.value)


def test_business_metrics_parquet(tmp_path: Path) -> None:
    p = tmp_path / "bm.parquet"
    pd.DataFrame({"Date": ["2026-10-01"], "Application": ["a"], "Requests": [1000], "Tokens": [None],
                  "Revenue": [2.5]}).to_parquet(p)
    df = ue.read_business_metrics(p)
    assert df.iloc[0]["requests"] == 1000 and pd.isna(df.iloc[0]["tokens"]) and df.iloc[0]["revenue"] == 2.5


@pytest.mark.parametrize("sec, expect", [
    ({"run_tags": "training-run"}, "unit_economics.run_tags"),
    ({"run_resource_patterns": ["training-job/[^/]+$"]}, "has 0 capture groups"),
    ({"run_resource_patterns": ["("]}, "is not a regular expression"),
])
def test_run_rules_validated(sec: dict, expect: str) -> None:
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(")):
        ue.load_run_rules({"unit_economics": sec})


def test_run_tags_are_read_from_config(bound) -> None:
    """Without the training-run tag in the rules the tagged run is not found: the tag list is configuration."""
    con, sc = bound
    got = ue.training_runs(con, sc, rules=ue.RunRules(tags=("vertex-ai-pipelines-run-billing-id",),
                                                      resource_patterns=()))
    assert list(got.table["run_id"]) == ["8512934470312345678"]


# ------------------------------------------------------------------------------------------------ hand-made bills
def _gpu_hours(rid: str | None, tags: dict | None = None, *, cost: str = "5.672", hours: int = 24,
               **extra) -> list[dict]:
    """``hours`` hourly rows from 2026-10-06 00:00 of one g5.12xlarge (4 GPUs), $5.672 an hour, accelerated compute."""
    import datetime as dt

    t0 = dt.datetime(2026, 10, 6)
    row = dict(ResourceId=rid, x_InstanceType="g5.12xlarge", x_AiWorkload="Accelerated compute",
               x_UsageType="BoxUsage:g5.12xlarge", PricingUnit="Hours", PricingQuantity="1", ConsumedUnit="Hours",
               ConsumedQuantity="1", cost=cost, BillingPeriodStart=dt.datetime(2026, 10, 1),
               BillingPeriodEnd=dt.datetime(2026, 11, 1), tags=tags) | extra
    return [row | dict(ChargePeriodStart=t0 + dt.timedelta(hours=h), ChargePeriodEnd=t0 + dt.timedelta(hours=h + 1))
            for h in range(hours)]


def _bound(rows: list[dict]):
    from finops_kit.testing import focus_rows

    con = focus_rows(rows)
    return con, resolve(con, str(REPO / "finops.yaml"), {})


def _runs_csv(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "runs.csv"
    p.write_text("run_id,start,end,resource_ids\n" + body)
    return p


def _adds_up(r: ue.Runs) -> None:
    """attributed + unattributed = the accelerated compute in scope, and the attributed part is the runs' share
    of it, to the cent (exact decimals)."""
    assert r.attributed_gpu_cost + r.unattributed_gpu_cost == r.gpu_cost
    assert Decimal(str(r.table["accelerated_cost"].sum())).quantize(Decimal("1e-6")) == \
        Decimal(r.attributed_gpu_cost).quantize(Decimal("1e-6"))


def test_runs_file_run_claims_only_its_window(tmp_path: Path) -> None:
    """A resource listed in the runs file is the run's only between start and end: a 2-hour run on a 24-hour
    instance leaves 22 h x $5.672 = $124.784 not attributed to any run. Failed before: every listed resource left
    the unattributed figure for the whole scope ($0.00)."""
    con, sc = _bound(_gpu_hours("i-aaa"))
    r = ue.training_runs(con, sc, _runs_csv(tmp_path, "r1,2026-10-06T00:00:00Z,2026-10-06T02:00:00Z,i-aaa\n"))
    assert r.gpu_cost == Decimal("136.128")
    assert r.run("r1")["cost"] == pytest.approx(11.344, abs=1e-9)
    assert r.unattributed_gpu_cost == Decimal("124.784")
    _adds_up(r)


def test_run_cost_outside_the_accelerated_compute_total_is_stated(tmp_path: Path) -> None:
    """A SageMaker training job (x_AiWorkload 'ML platform', not 'Accelerated compute') is a run, but none of its
    cost is in the accelerated compute total the unattributed figure is a part of: the run says so (its
    accelerated_cost is 0) and Runs.outside names the class, so the runs no longer sum to more than 'attributed'
    without a word. Failed before: the run table had no such split."""
    sm = "arn:aws:sagemaker:us-east-1:1:training-job/seg-1"
    rows = (_gpu_hours("i-run", {"training-run": "ft-1"}) + _gpu_hours("i-free")
            + _gpu_hours(sm, cost="40", hours=2, ServiceName="Amazon SageMaker", x_AiWorkload="ML platform",
                         x_InstanceType=None, x_UsageType="USE1-Train:ml.p4d.24xlarge"))
    con, sc = _bound(rows)
    r = ue.training_runs(con, sc)
    assert r.gpu_cost == Decimal("272.256") and r.unattributed_gpu_cost == Decimal("136.128")
    assert r.attributed_gpu_cost == Decimal("136.128")
    t = r.table.set_index("run_id")
    assert t.loc["seg-1", "cost"] == 80 and t.loc["seg-1", "accelerated_cost"] == 0
    assert t.loc["ft-1", "accelerated_cost"] == pytest.approx(136.128, abs=1e-9)
    out = r.outside.set_index("run_id")
    assert out.loc["seg-1", "cost"] == 80 and "ML platform" in out.loc["seg-1", "why"]
    assert "ft-1" not in out.index
    _adds_up(r)


def test_unattributed_gpu_cost_is_null_safe() -> None:
    """A run-tagged row without a ResourceId (a data-transfer line) must not empty the unattributed figure.
    Failed before: NOT IN over a list with a NULL made it $0.00 for the whole scope."""
    xfer = dict(ResourceId=None, ServiceName="AWS Data Transfer", x_UsageType="USE1-USW2-AWS-Out-Bytes",
                PricingUnit="GB", PricingQuantity="100", cost="2.00", day="2026-10-06", tags={"training-run": "ft-1"})
    con, sc = _bound(_gpu_hours("i-run", {"training-run": "ft-1"}) + _gpu_hours("i-inference") + [xfer])
    r = ue.training_runs(con, sc)
    assert r.gpu_cost == Decimal("272.256") and r.unattributed_gpu_cost == Decimal("136.128")
    assert r.run("ft-1")["cost"] == pytest.approx(138.128, abs=1e-9)
    _adds_up(r)


def test_resource_listed_twice_in_a_run_counts_once(tmp_path: Path) -> None:
    """i-aaa;I-AAA in one run is one resource: $136.128 and 96 GPU-hours, not twice that. Failed before."""
    con, sc = _bound(_gpu_hours("i-aaa"))
    p = _runs_csv(tmp_path, "r1,2026-10-06T00:00:00Z,2026-10-07T00:00:00Z,i-aaa;I-AAA\n")
    assert list(ue.read_runs_file(p)["resource_id"]) == ["i-aaa"]
    r = ue.training_runs(con, sc, p)
    assert r.run("r1")["cost"] == pytest.approx(136.128, abs=1e-9) and r.run("r1")["accelerator_hours"] == 96
    assert r.unattributed_gpu_cost == 0
    _adds_up(r)


def test_overlapping_runs_sharing_a_resource_are_refused(tmp_path: Path) -> None:
    """Two runs listing one resource for overlapping times would each claim the shared hours (counted twice):
    refused with one line naming the file, both runs and the resource. Runs that only touch are fine."""
    p = _runs_csv(tmp_path, "r1,2026-10-06T00:00:00Z,2026-10-06T18:00:00Z,i-aaa\n"
                            "r2,2026-10-06T06:00:00Z,2026-10-07T00:00:00Z,i-bbb; I-AAA\n")
    with pytest.raises(InputError) as e:
        ue.read_runs_file(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "row 3, column 'resource_ids'" in msg
    assert "'r1'" in msg and "'r2'" in msg and "i-aaa" in msg.lower() and "\n" not in msg
    ok = _runs_csv(tmp_path, "r1,2026-10-06T00:00:00Z,2026-10-06T18:00:00Z,i-aaa\n"
                             "r2,2026-10-06T18:00:00Z,2026-10-07T00:00:00Z,i-aaa\n")
    con, sc = _bound(_gpu_hours("i-aaa"))
    r = ue.training_runs(con, sc, ok)
    assert r.table["cost"].sum() == pytest.approx(136.128, abs=1e-9) and r.unattributed_gpu_cost == 0
    _adds_up(r)


def _apps_bill(days: tuple[str, ...], cost: str, apps: tuple[str, ...]):
    return _bound([dict(ResourceId=f"i-{a}", x_UsageType="BoxUsage:g6.xlarge", cost=cost, day=d,
                        tags={"project": a}) for d in days for a in apps])


def test_app_day_without_metrics_row_is_listed_not_dropped(tmp_path: Path) -> None:
    """embed-api has no metrics row on the 7th: that day's $19.3152 is listed as not attributed, and attributed +
    unattributed = the bill of the metrics' days. Failed before: it was in neither ($19.3152 vanished)."""
    con, sc = _apps_bill(("2026-10-05", "2026-10-06", "2026-10-07"), "19.3152", ("chat-api", "embed-api"))
    p = tmp_path / "bm.csv"
    p.write_text("date,application,requests,tokens\n2026-10-05,chat-api,1000,1000000\n"
                 "2026-10-06,chat-api,1000,1000000\n2026-10-07,chat-api,1000,1000000\n"
                 "2026-10-05,embed-api,1000,1000000\n2026-10-06,embed-api,1000,1000000\n")
    u = ue.inference_unit_costs(con, sc, p)
    assert u.total_cost == Decimal("115.8912")
    assert u.attributed_cost == Decimal("96.5760") and u.unattributed_cost() == pytest.approx(19.3152, abs=1e-9)
    un = u.unattributed.set_index("application")
    assert un.loc["embed-api", "cost"] == pytest.approx(19.3152, abs=1e-9)
    assert "no row" in un.loc["embed-api", "reason"]
    assert Decimal(str(u.by_application["cost"].sum())).quantize(Decimal("1e-6")) == Decimal("96.576000")


def test_cost_per_1m_tokens_divides_only_days_with_a_token_count(tmp_path: Path) -> None:
    """Day 2 has no token count: only day 1's $100 is divided by day 1's 1M tokens ($100 per 1M, not $200); day
    2's cost is stated as not measured in tokens. Failed before ($200)."""
    con, sc = _apps_bill(("2026-10-05", "2026-10-06"), "100", ("chat-api",))
    p = tmp_path / "bm.csv"
    p.write_text("date,application,requests,tokens\n2026-10-05,chat-api,1000,1000000\n2026-10-06,chat-api,1000,\n")
    u = ue.inference_unit_costs(con, sc, p)
    a = u.by_application.set_index("application").loc["chat-api"]
    assert a["cost"] == 200 and a["cost_per_1k_requests"] == 100
    assert a["cost_per_1m_tokens"] == 100 and a["token_days"] == 1
    assert a["cost_without_tokens"] == 100
    assert "without a token count" in u.denominator


def test_runs_read_only_claimable_rows_with_the_same_figures(tmp_path: Path) -> None:
    """training_runs derives the measures of the rows a run can claim only (a claim, or a resource of the runs
    file compared without case; speed, session 19): a tagged instance, a runs-file instance billed as I-BBB and
    listed as i-bbb for 2 of its 24 hours, a tagged instance also listed in the file (the tag wins) and one
    instance of no run keep their figures: $136.128 per instance-day, 2 h x $5.672 = $11.344 for r1."""
    rows = (_gpu_hours("i-run", {"training-run": "ft-1"}) + _gpu_hours("I-BBB") + _gpu_hours("i-other")
            + _gpu_hours("i-both", {"training-run": "ft-2"}))
    con, sc = _bound(rows)
    p = _runs_csv(tmp_path, "r1,2026-10-06T00:00:00Z,2026-10-06T02:00:00Z,i-bbb;i-both\n")
    r = ue.training_runs(con, sc, p)
    assert r.gpu_cost == Decimal("544.512")
    assert r.run("ft-1")["cost"] == pytest.approx(136.128, abs=1e-9)
    assert r.run("ft-2")["cost"] == pytest.approx(136.128, abs=1e-9)
    assert r.run("r1")["cost"] == pytest.approx(11.344, abs=1e-9) and r.run("r1")["accelerator_hours"] == 8
    assert r.unattributed_gpu_cost == Decimal("136.128") + Decimal("124.784")
    _adds_up(r)
