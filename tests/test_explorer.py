"""``fk.explore()``: opens populated, its filters and drill-down change the view exactly as ``fk.costs`` answers,
breadcrumbs go back up, and "export this view" writes the exact amounts shown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

import finops_kit as fk

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "finops.yaml")


@pytest.fixture()
def con(sample_con):  # these tests only read the sample warehouse
    return sample_con


def test_explorer_opens_populated_and_drills_team_service_resource(con, tmp_path):
    ex = fk.explore(con, config=CONFIG, export_dir=tmp_path)
    assert ex.level == "team" and ex.current is not None and len(ex.current)
    assert ex.chart_out.outputs and ex.table_out.outputs  # chart and table shown before any control changes
    assert "finops-chart" in ex.chart_out.outputs[0]["data"]["text/html"]  # the kit's offline renderer
    table = ex.table_out.outputs[0]["data"]["text/html"]
    assert "finops-table" in table and "$" in table
    top = fk.costs("team", period=ex.periods.value, con=con, config=CONFIG)
    assert list(ex.current["cost"]) == list(top["cost"])
    assert list(ex.pick.options) == [str(v) for v in top["team"]]

    ex.drill("nlp")
    assert ex.level == "service" and ex.path == [("team", "nlp")]
    svc = fk.costs("service", period=ex.periods.value, where={"team": "nlp"}, con=con, config=CONFIG)
    assert list(ex.current["cost"]) == list(svc["cost"]) and sum(ex.current["cost"]) == \
        top.loc[top["team"] == "nlp", "cost"].iloc[0]
    assert [b.description for b in ex.crumbs.children if hasattr(b, "on_click")] == ["all teams", "team: nlp"]
    first = ex.pick.options[0]
    ex.drill(first)
    assert ex.level == "resource" and ex.pick.options == ()  # the last level: nothing to drill into
    assert sum(ex.current["cost"]) == svc.loc[svc["service"] == first, "cost"].iloc[0]
    ex.up(1)
    assert ex.level == "service" and ex.path == [("team", "nlp")]
    ex.up(0)
    assert ex.level == "team" and list(ex.current["cost"]) == list(top["cost"])


def test_filters_and_gpu_toggle_change_the_view(con, tmp_path):
    ex = fk.explore(con, config=CONFIG, export_dir=tmp_path)
    before = sum(ex.current["cost"])
    ex.mode.value = "GPU only"  # an observed control: the view is recomputed
    gpu = fk.costs("team", period=ex.periods.value, gpu_only=True, con=con, config=CONFIG)
    assert list(ex.current["cost"]) == list(gpu["cost"]) and sum(gpu["cost"]) < before
    ex.provider.value = "AWS"
    aws = fk.costs("team", period=ex.periods.value, gpu_only=True, providers=["AWS"], con=con, config=CONFIG)
    assert list(ex.current["cost"]) == list(aws["cost"])
    last = ex.periods.options[-1]
    ex.periods.value = (last, last)
    assert ex.current.scope.start.strftime("%Y-%m") == last


def test_export_this_view_writes_the_exact_amounts(con, tmp_path):
    ex = fk.explore(con, config=CONFIG, export_dir=tmp_path / "exports")
    ex.drill("vision")
    written = ex.export()
    assert written.parent == tmp_path / "exports" and written.suffix == ".csv"
    got = pd.read_csv(written, dtype=str)
    assert list(got["service"]) == list(ex.current["service"])
    assert [Decimal(v) for v in got["cost"]] == list(ex.current["cost"])
    ex.fmt.value = "parquet"
    pq = ex.export()
    back = pd.read_parquet(pq)
    assert [Decimal(str(v)) for v in back["cost"]] == list(ex.current["cost"])
    assert "wrote" in ex.message.value
