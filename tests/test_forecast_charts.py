"""The forecast report's charts (finops_kit.charts.forecast_*): the period's cumulative actual, the forecast whose
fan ends at the stated interval of the period total, budget lines of the series they cover, anomalies marked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from finops_kit import charts as ch
from finops_kit.forecast import Forecast


@dataclass
class _Budget:
    name: str
    scope: dict
    monthly: Decimal
    months: dict

    def amount(self, month: str) -> Decimal:
        return self.months.get(month, self.monthly)


def _forecast(value: str = "Total", daily_cost: float = 100.0) -> Forecast:
    """26 days of November at ``daily_cost`` (plus 40 October days), 4 days to forecast at 110/day."""
    hist = pd.DataFrame({"day": pd.date_range("2026-10-01", "2026-11-26"), "actual": daily_cost})
    future = pd.date_range("2026-11-27", "2026-11-30")
    daily = pd.DataFrame({"day": future, "expected": 110.0, "lo": 100.0, "hi": 120.0})
    f = Forecast("team" if value != "Total" else "total", value, date(2026, 11, 26), date(2026, 11, 1),
                 date(2026, 11, 30), 80, "ets", hist, daily, Decimal(str(26 * daily_cost)))
    f.expected_total = 26 * daily_cost + 440.0
    f.total_lo, f.total_hi = f.expected_total - 30.0, f.expected_total + 50.0
    return f


def test_frame_ends_at_the_stated_actual_to_date_and_the_total_interval():
    f = _forecast()
    df = ch.forecast_frame([f])
    actual = df[df["kind"] == "actual"]
    assert actual["day"].iloc[0] == "2026-11-01" and len(actual) == 26  # the period only, not October
    assert actual["cum"].iloc[-1] == pytest.approx(2600.0)
    fc_ = df[df["kind"] == "forecast"]
    first, last = fc_.iloc[0], fc_.iloc[-1]
    assert (first["day"], first["cum"], first["lo"], first["hi"]) == ("2026-11-26", 2600.0, 2600.0, 2600.0)
    assert last["day"] == "2026-11-30" and last["cum"] == pytest.approx(f.expected_total)
    assert (last["lo"], last["hi"]) == (pytest.approx(f.total_lo), pytest.approx(f.total_hi))
    widths = (fc_["hi"] - fc_["lo"]).to_numpy()
    assert np.all(np.diff(widths) >= 0)  # the fan only opens


def test_budget_lines_cover_only_the_series_they_budget():
    budgets = [_Budget("Cloud total", {}, Decimal(500), {}), _Budget("nlp", {"team": "nlp"}, Decimal(100),
                                                                    {"2026-12": Decimal(300)}),
               _Budget("AI", {"ai": "AI"}, Decimal(50), {}), _Budget("mixed", {"team": "nlp", "env": "dev"},
                                                                     Decimal(7), {})]
    assert ch.budget_lines(budgets, "team", date(2026, 11, 1), date(2026, 11, 30)) == {"Total": 500.0, "nlp": 100.0}
    # a quarter: the months' amounts add up, a planned month included
    assert ch.budget_lines(budgets, "team", date(2026, 10, 1), date(2026, 12, 31))["nlp"] == 500.0


def test_period_chart_has_the_fan_the_budget_line_and_the_anomalies():
    f = _forecast()
    events = pd.DataFrame([{"dimension": "total", "value": "Total", "direction": "up", "start": date(2026, 11, 10),
                            "end": date(2026, 11, 10), "peak_day": date(2026, 11, 10), "impact": 250.0}])
    spec = ch.forecast_period(f, [_Budget("Cloud total", {}, Decimal(5000), {})], events).to_dict()
    text = json.dumps(spec)
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks.count("area") == 1 and "rule" in marks and "point" in marks
    assert '"budget": 5000.0' in text and "anomaly 2026-11-10..2026-11-10: up $250" in text


def test_small_multiples_one_panel_per_series_with_its_own_axis():
    spec = ch.forecast_small_multiples([_forecast(), _forecast("nlp", 10.0), _forecast("vision", 20.0)],
                                       [_Budget("nlp", {"team": "nlp"}, Decimal(400), {})]).to_dict()
    values = next(iter(spec["datasets"].values()))
    assert {v["value"] for v in values} == {"nlp", "vision"}  # the total has its own chart
    assert {v.get("budget") for v in values if v["value"] == "nlp"} == {400.0}
    assert spec["resolve"]["scale"]["y"] == "independent" and spec["facet"]["field"] == "value"


def test_budget_lines_skip_a_period_a_months_only_budget_does_not_cover():
    from finops_kit import budgets as bu

    (only_dec,) = bu.load_budgets({"budgets": {"items": [{"name": "launch", "scope": {"team": "nlp"},
                                                           "months": {"2026-12": 1000}}]}})[0]
    # November has no budget: no line (was a $0 line the forecast ran over); a quarter holding December: its $1,000
    assert ch.budget_lines([only_dec], "team", date(2026, 11, 1), date(2026, 11, 30)) == {}
    assert ch.budget_lines([only_dec], "team", date(2026, 10, 1), date(2026, 12, 31)) == {"nlp": 1000.0}
