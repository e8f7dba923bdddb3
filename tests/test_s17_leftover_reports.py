"""Leftovers of the s17 reviews found in the rendered demo reports: money kept at the warehouse's scale (12 places,
exact) where a Python or SQL step divides it, the attributed team in the guardrail findings, and zero-cost rows
outside a budget's scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from finops_kit import commitments as cm
from finops_kit import scope
from finops_kit.testing import focus_rows
from tests.test_commitments import _days, _vm

REPO = Path(__file__).resolve().parents[1]


def _places(d: Decimal) -> int:
    return -d.as_tuple().exponent


# --------------------------------------------------------------------------- 1. expiry calendar at MONEY's scale
def test_expiry_scales_a_part_month_to_money_places_not_28_digits():
    """An RI bought 2026-03-20 at 13.00/h billed 12 days of March with one hour fewer every third day (3,692.00 for
    284 h). Scaled to March's 31 days its monthly value is 3,692.00 x 31/12 = 9,537.6666...: the calendar held
    Decimal('9537.666666666666666666666667') and a bill change of 6573.653333333333333333333333 (28 significant
    digits, Decimal's default context); now 9537.666666666667 and 6573.653333333333, the 12 places of every
    amount the warehouse returns (schema.MONEY)."""
    rows = [_vm("AWS", d, "p4d.24xlarge", 24 if i % 3 else 23, "21.96", "13.00", cid="ri-mid", res="i-1",
                end="2027-03-20T00:00:00Z") for i, d in enumerate(_days("2026-03-20", 12))]
    rows += [_vm("AWS", d, "p4d.24xlarge", 24, "21.96", "13.00", cid="ri-mid", res="i-1",
                 end="2027-03-20T00:00:00Z") for d in _days("2026-04-01", 5)]
    con = focus_rows(rows)
    sc = scope.resolve(con, str(REPO / "finops.yaml"))
    ri = cm.expiry(con, sc).set_index("commitment_id").loc["ri-mid"]
    assert ri["value_period"] == dt.date(2026, 3, 1) and ri["value_days"] == 12
    assert ri["monthly_value"] == Decimal("9537.666666666667") and _places(ri["monthly_value"]) == 12
    assert ri["lapses_to_on_demand"] == Decimal("16111.32")
    assert ri["bill_change_if_lapsed"] == Decimal("6573.653333333333")
    for c in ("monthly_value", "lapses_to_on_demand", "bill_change_if_lapsed"):
        assert _places(ri[c]) <= 12, (c, ri[c])
