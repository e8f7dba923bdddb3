"""Session 17 mends found by running the whole suite after the unknown-hours merge."""

from __future__ import annotations

from pathlib import Path

import finops_kit as fk
from finops_kit import spark_metrics, units
from tests.test_s16_units import _con, _cur


def test_costs_display_shows_unknown_accelerator_cost_only_when_some_cost_has_it(tmp_path: Path) -> None:
    """``fk.costs(gpu_only=True)`` keeps ``unknown_accelerator_cost`` in the frame, but its display leaves out a
    column of $0.00 on every line (the README's GPU-spend examples) and shows it, on every line, as soon as one
    line has cost with unknown accelerator-hours (a p9.48xlarge the catalog lacks: USD 30)."""
    known = _con(_cur(tmp_path / "known.csv"))
    df = fk.costs(by="instance_family", period=None, gpu_only=True, con=known)
    assert "unknown_accelerator_cost" in df.columns and (df["unknown_accelerator_cost"] == 0).all()
    assert "unknown_accelerator_cost" not in repr(df) and "unknown_accelerator_cost" not in df._repr_html_()
    unknown = _con(_cur(tmp_path / "unknown.csv", [("BoxUsage:p9.48xlarge", "i-p9", "24", "30.00", "p9.48xlarge")]))
    df = fk.costs(by="instance_family", period=None, gpu_only=True, con=unknown)
    text = repr(df)
    assert "unknown_accelerator_cost" in text and "$30.00" in text and "$0.00" in text
    assert "unknown_accelerator_cost" in df._repr_html_()


def test_the_spark_reduction_keeps_every_column_the_unit_rules_read() -> None:
    """The Spark metrics reduction keeps only KEYS and MEASURES; a unit rule reading another column (the Azure
    licence rule reads x_Operation, usage_units.csv) made every metric over the reduced table fail with
    'Referenced column "x_Operation" not found'. Every column a usage, no-spot-market or operating-system rule
    reads (commitments, in the metrics, read the OS) is a key."""
    from finops_kit.datafiles import data_rows

    read = {r["column"] for r in [*units.usage_rules(), *data_rows("no_spot_market.csv"),
                                  *data_rows("vm_operating_systems.csv")]}
    assert read <= set(spark_metrics.KEYS) | set(spark_metrics.MEASURES), read - set(spark_metrics.KEYS)


def test_table_leaves_out_an_optional_column_of_zeros_and_shows_it_when_one_row_has_a_value() -> None:
    """The spot report's coverage and rate tables showed a 'Licence apart cost' column of $0.00 on every line of the
    demo (no licence billed apart): ``nb.table(optional=[...])`` leaves such a column out while every value is 0 or
    empty, and shows it on every line once a row has a value."""
    from decimal import Decimal

    import pandas as pd

    from finops_kit import notebook as nb

    df = pd.DataFrame({"team": ["a", "b"], "cost": [Decimal("5"), Decimal("7")],
                       "licence_apart_cost": [Decimal("0"), None]})
    html = nb.table(df, money=["cost", "licence_apart_cost"], optional=["licence_apart_cost"]).markup
    assert "Licence apart cost" not in html and "$7.00" in html
    df.loc[1, "licence_apart_cost"] = Decimal("2.5")
    html = nb.table(df, money=["cost", "licence_apart_cost"], optional=["licence_apart_cost"]).markup
    assert "Licence apart cost" in html and "$2.50" in html and "$0.00" in html


def test_check_names_the_tax_not_posted_yet_in_a_forecast_alert() -> None:
    """`finops-kit check` on a month's last day said "All: forecast $3,600 for 2026-10 = 103% of the $3,500
    budget" where $500 of the forecast is September's tax expected again, not posted yet: the report's summary
    line named it, the alert did not. Both now read the one sentence (budgets.pending_part)."""
    from finops_kit.alerts import evaluate
    from finops_kit.testing import focus_rows
    from tests.test_s16_budgets import _month_close_bill

    con = focus_rows(_month_close_bill(october_tax=False))
    alerts = evaluate(con, {"budgets": {"items": [{"name": "All", "monthly": 3500}]}}, "2026-10-31")
    (fc,) = [a for a in alerts if a.kind == "forecast"]
    assert "(of which $500 is September's tax expected again, not posted yet)" in fc.message, fc.message
