"""Recurring charges in a forecast, and which dimension values a forecast names, on a bill shaped like the sample.

The bill: usage Sep 1 .. Nov 26 (November open, as the sample export), two billing currencies (AWS in USD, Google
Cloud in EUR), taxes booked for the whole month on the 1st once the month is invoiced (none yet for November), a
team's monthly licence that already posted on Nov 1, another team's monthly port fee dated the 28th, and an idle
commitment booked day by day (a day without a row is a day the commitment was fully used). Taxes, the idle
commitment and the platform team's usage are the "(shared)" line, as in the sample's finops.yaml.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: statsmodels fits are 3-10x slower with 2 threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from datetime import date  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from finops_kit import budgets as bu  # noqa: E402
from finops_kit import scope as S  # noqa: E402
from finops_kit.forecast import daily_series, forecast  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

AS_OF = date(2026, 11, 26)
CONFIG = {
    "tag_policy": {"keys": {"team": {"aliases": ["Team"], "pattern": "[A-Za-z][A-Za-z0-9._-]{1,63}"}}},
    # taxes and idle commitments belong to nobody: the "(shared)" line, as in the sample's finops.yaml
    "allocation": {"key": "team", "shared": {"tag_values": ["platform"], "charge_categories": ["Tax"],
                                             "unused_commitments": True}},
}
WEEK = (1.0, 1.1, 1.05, 1.08, 0.95, 0.6, 0.55)
AWS = {"ProviderName": "AWS", "BillingCurrency": "USD", "BillingAccountId": "payer-1"}
GCP = {"ProviderName": "Google Cloud", "BillingCurrency": "EUR", "BillingAccountId": "0A1B2C", "InvoiceIssuerName":
       "Google Cloud", "PublisherName": "Google Cloud", "ServiceName": "Compute Engine"}


def _monthly(first: str, amount: float, **cols) -> dict:
    """A charge for the month starting ``first``: ChargePeriod [first, first + 1 month), booked once."""
    start = pd.Timestamp(first)
    return dict(day=first, cost=amount, ChargeFrequency="Recurring",
                ChargePeriodEnd=(start + pd.DateOffset(months=1)).to_pydatetime(), **cols)


def _bill(teams: dict[str, tuple[float, dict]] | None = None) -> list[dict]:
    teams = teams or {"alpha": (1000.0, AWS), "beta": (400.0, AWS), "platform": (150.0, AWS), "gamma": (300.0, GCP)}
    rows = []
    for day in pd.date_range("2026-09-01", AS_OF, freq="D"):
        for team, (scale, provider) in teams.items():
            rows.append(dict(day=str(day.date()), cost=round(scale * WEEK[day.day_of_week], 2), tags={"team": team},
                             SubAccountId=f"{team}-acct", **provider))
    for month, aws_tax, gcp_tax in (("2026-09-01", 1200.0, 800.0), ("2026-10-01", 1300.0, 900.0)):
        rows.append(_monthly(month, aws_tax, ChargeCategory="Tax", ServiceName="Amazon Elastic Compute Cloud",
                             ChargeDescription="Tax for product code AmazonEC2", SubAccountId="alpha-acct", **AWS))
        if any(provider is GCP for _, provider in teams.values()):
            rows.append(_monthly(month, gcp_tax, ChargeCategory="Tax", ChargeDescription="Tax", **GCP))
    for month in ("2026-09-01", "2026-10-01", "2026-11-01"):  # alpha's licence: November's posted already
        rows.append(_monthly(month, 500.0, ChargeCategory="Purchase", ServiceName="ML platform licence",
                             ChargeDescription="ML platform licence, monthly", tags={"team": "alpha"}, **AWS))
    for month in ("2026-09-28", "2026-10-28"):  # beta's port fee, dated the 28th: November's is still ahead
        rows.append(_monthly(month, 250.0, ChargeCategory="Purchase", ServiceName="AWS Direct Connect",
                             ChargeDescription="Dedicated port 10G, monthly", tags={"team": "beta"}, **AWS))
    # an idle Savings Plan booked per day: every day of October, November only through the 20th (fully used since)
    for day in [*pd.date_range("2026-10-01", "2026-10-31"), *pd.date_range("2026-11-01", "2026-11-20")]:
        rows.append(dict(day=str(day.date()), cost=20.0, CommitmentDiscountStatus="Unused",
                         CommitmentDiscountId="sp-1", ServiceName="Savings Plans for AWS Compute usage",
                         ChargeDescription="No Upfront Compute Savings Plan recurring fee", **AWS))
    return rows


@pytest.fixture(scope="module")
def con():
    return focus_rows(_bill())


def _scope(con, currency: str):
    return S.resolve(con, CONFIG, currency=currency)


def _recurring(r) -> dict[pd.Timestamp, float]:
    rec = r.daily.set_index("day")["recurring"]
    return {d: round(v, 2) for d, v in rec[rec != 0].items()}


def test_a_monthly_charge_not_billed_yet_this_month_is_expected_once(con):
    # October's tax (dated Oct 1) has no November counterpart yet: expected, on the first forecast day (its date has
    # passed). Alpha's licence posted on Nov 1: not expected twice. Beta's port fee (the 28th) lands on its day; the
    # idle commitment's days already past are final, only the days ahead repeat October's.
    (r,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=1, scope=_scope(con, "USD"))
    assert _recurring(r) == {pd.Timestamp("2026-11-27"): 1300.0 + 20.0, pd.Timestamp("2026-11-28"): 250.0 + 20.0,
                             pd.Timestamp("2026-11-29"): 20.0, pd.Timestamp("2026-11-30"): 20.0}
    comp = r.components.set_index("kind")["amount"]
    assert comp["recurring"] == pytest.approx(1630.0)
    # one function: the period total is actual + baseline + the recurring charges carried
    assert r.expected_total == pytest.approx(float(r.actual_to_date) + comp["baseline"] + 1630.0)
    assert r.total_lo <= r.expected_total <= r.total_hi


def test_recurring_charges_are_carried_per_billing_currency(con):
    # the EUR scope carries Google Cloud's EUR tax alone, the USD scope none of it
    (eur,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=1,
                      scope=_scope(con, "EUR"))
    assert _recurring(eur) == {pd.Timestamp("2026-11-27"): 900.0}
    (usd,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=1,
                      scope=_scope(con, "USD"))
    assert sum(_recurring(usd).values()) == pytest.approx(1630.0)


def test_each_team_carries_only_its_own_recurring_charges(con):
    sc = _scope(con, "USD")
    by_team = {r.value: r for r in forecast(con, "team", as_of=AS_OF, model="seasonal_naive", backtest_origins=1,
                                            scope=sc)}
    assert set(by_team) == {"alpha", "beta", "(shared)"}
    assert _recurring(by_team["alpha"]) == {}  # its licence posted on Nov 1
    assert _recurring(by_team["beta"]) == {pd.Timestamp("2026-11-28"): 250.0}
    assert sum(_recurring(by_team["(shared)"]).values()) == pytest.approx(1300.0 + 4 * 20.0)
    for team, r in by_team.items():  # a team's forecast is the forecast of the total filtered to the team
        (alone,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=1,
                            filters={"team": team}, scope=sc)
        assert r.daily["recurring"].tolist() == alone.daily["recurring"].tolist()
        assert r.expected_total == pytest.approx(alone.expected_total)


def test_the_shared_budget_forecast_includes_the_tax_not_billed_yet(con):
    # the shared line's month lands under 5,000 without October's tax and over it with the tax: the budget status
    # must say so, with the breach on the first forecast day (the tax is dated Nov 1, already past)
    sc = _scope(con, "USD")
    budgets, _ = bu.load_budgets({"budgets": {"items": [{"name": "Shared platform", "scope": {"team": "(shared)"},
                                                         "monthly": 5000}]}})
    status = bu.budget_status(con, budgets, as_of=AS_OF, model="seasonal_naive", scope=sc).iloc[0]
    (shared,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=0,
                         filters={"team": "(shared)"}, scope=sc)
    assert sum(_recurring(shared).values()) == pytest.approx(1300.0 + 4 * 20.0)
    assert status["forecast"] == pytest.approx(round(shared.expected_total, 2))
    assert shared.expected_total - 1300.0 < 5000 < shared.expected_total
    assert status["status"] == "forecast over budget" and status["breach_date"] == date(2026, 11, 27)


def test_future_months_repeat_last_months_charges_and_this_months_missing_ones_once(con):
    (q,) = forecast(con, "total", as_of=AS_OF, horizon="quarter", model="seasonal_naive", backtest_origins=1,
                    scope=_scope(con, "USD"))
    rec = _recurring(q)
    assert rec[pd.Timestamp("2026-11-27")] == 1320.0  # November's tax, not billed yet
    assert rec[pd.Timestamp("2026-12-01")] == 1300.0 + 500.0 + 20.0  # December's tax and licence, once each
    assert rec[pd.Timestamp("2026-12-28")] == 250.0 + 20.0
    assert sum(rec.values()) == pytest.approx(1630.0 + 1300.0 + 500.0 + 250.0 + 31 * 20.0)


def test_a_horizon_of_days_carries_no_charge_dated_before_it():
    # an N-day horizon counts the charges dated in its N days: October's tax, missing for November (dated Nov 1),
    # is not one of them; the port fee of the 28th is
    con = focus_rows(_bill({"alpha": (1000.0, AWS), "beta": (400.0, AWS)}))
    (r,) = forecast(con, "total", as_of=AS_OF, horizon=7, model="seasonal_naive", backtest_origins=1)
    assert _recurring(r) == {pd.Timestamp("2026-11-27"): 20.0, pd.Timestamp("2026-11-28"): 270.0,
                             pd.Timestamp("2026-11-29"): 20.0, pd.Timestamp("2026-11-30"): 20.0,
                             pd.Timestamp("2026-12-01"): 1300.0 + 500.0 + 20.0, pd.Timestamp("2026-12-02"): 20.0,
                             pd.Timestamp("2026-12-03"): 20.0}


# ------------------------------------------------------------------------------------------------ top and "(other)"
def test_a_single_value_is_never_folded_into_other(con):
    # three teams, top 2: folding one team into "(other)" would only hide its name
    sc = _scope(con, "USD")
    series = daily_series(con, "team", start="2026-10-01", end=AS_OF, top=2, scope=sc)
    assert set(series["value"]) == {"alpha", "beta", "(shared)"}
    res = forecast(con, "team", as_of=AS_OF, model="seasonal_naive", backtest_origins=1, top=2, scope=sc)
    assert sorted(r.value for r in res) == ["(shared)", "alpha", "beta"]


def test_other_folds_two_or_more_values_and_carries_their_recurring_charges():
    teams = {"alpha": (1000.0, AWS), "beta": (400.0, AWS), "platform": (150.0, AWS), "delta": (50.0, AWS)}
    con = focus_rows(_bill(teams))
    sc = S.resolve(con, CONFIG)
    res = {r.value: r for r in forecast(con, "team", as_of=AS_OF, model="seasonal_naive", backtest_origins=1,
                                        top=2, scope=sc)}
    assert set(res) == {"alpha", "beta", "(other)"}  # (shared) and delta: two values, folded
    other = res["(other)"]
    # (shared)'s tax not billed yet and its idle commitment's days ahead are expected in "(other)" as well
    assert sum(_recurring(other).values()) == pytest.approx(1300.0 + 4 * 20.0)
    (total,) = forecast(con, "total", as_of=AS_OF, model="seasonal_naive", backtest_origins=1, scope=sc)
    parts = sum(float(r.daily["recurring"].sum()) for r in res.values())
    assert parts == pytest.approx(float(total.daily["recurring"].sum()))


# ------------------------------------------------------------------------------ values with no usage to model
def _support_bill() -> list[dict]:
    """EC2 usage Jul 1 .. Nov 15 and a $15,000 support plan billed monthly, November's not posted yet."""
    rows = [dict(day=str(d.date()), cost=round(1000 * WEEK[d.day_of_week], 2))
            for d in pd.date_range("2026-07-01", "2026-11-15", freq="D")]
    rows += [_monthly(f"2026-{m:02d}-01", 15000.0, ChargeCategory="Purchase", ServiceName="AWS Support (Enterprise)",
                      ChargeDescription="Support") for m in (7, 8, 9, 10)]
    return rows


def test_a_value_whose_only_charges_are_recurring_is_forecast_as_its_recurring_component():
    """Review (s14): a service billed only by a monthly fee had no usage series, so it had no row at all: the
    per-service rows added up to $26,930 against a $41,930 Total (the fee not posted yet). Its forecast is the
    actual to date plus its recurring component (baseline 0), and the rows add up to the Total."""
    con = focus_rows(_support_bill())
    res = {r.value: r for r in forecast(con, "service", as_of="2026-11-15", model="seasonal_naive",
                                        backtest_origins=1)}
    (total,) = forecast(con, "total", as_of="2026-11-15", model="seasonal_naive", backtest_origins=1)
    support = res["AWS Support (Enterprise)"]
    assert support.ok and support.expected_total == pytest.approx(15000.0)
    assert (support.total_lo, support.total_hi) == (pytest.approx(15000.0), pytest.approx(15000.0))
    assert support.daily["baseline"].sum() == 0 and support.daily["recurring"].sum() == pytest.approx(15000.0)
    assert support.trust.startswith("No usage-based charges")
    assert sum(r.expected_total for r in res.values()) == pytest.approx(total.expected_total)


@pytest.mark.parametrize("spelling", ["AWS Support (Business) for {ym}", "Support fee {mon} {y}", "Support {d}",
                                      "Support period {m}/{y}", "Support invoice {ymd}"])
def test_a_fee_whose_description_names_its_month_is_one_charge(spelling):
    """Review (s14, case B5): a fee with no SkuId whose description names the month ('... for 2026-10', then
    '... for 2026-11') was two charges: November's posted and October's expected again (+$3,000). Dates and month
    names are not part of a charge's identity."""
    def desc(m: int) -> str:
        ts = pd.Timestamp(f"2026-{m:02d}-01")
        return spelling.format(ym=f"{ts:%Y-%m}", mon=f"{ts:%B}", y=ts.year, d=f"{ts:%d.%m.%Y}", m=ts.month,
                               ymd=f"{ts:%Y%m%d}")

    rows = [dict(day=str(d.date()), cost=1000.0) for d in pd.date_range("2026-09-01", "2026-11-15", freq="D")]
    rows += [_monthly(f"2026-{m:02d}-01", 3000.0, ChargeCategory="Purchase", ServiceName="AWS Support (Business)",
                      ChargeDescription=desc(m)) for m in (9, 10, 11)]
    con = focus_rows(rows)
    (r,) = forecast(con, "total", as_of="2026-11-15", model="seasonal_naive", backtest_origins=1)
    assert r.daily["recurring"].sum() == 0  # November's fee has posted: nothing more expected
    assert r.expected_total == pytest.approx(30 * 1000.0 + 3000.0)


def test_a_charge_identity_keeps_prices_versions_ids_and_bare_months():
    """Regression review (s14): stripping dates from descriptions also stripped prices ('$0.2048 per ... Hour'),
    versions ('Kafka 3.5.10'), ids ('Commitment ID 202611'), 'M.YYYY' numbers and bare month words: two charges
    that differed only by them became one, and the second was never expected. Only whole dates go."""
    import duckdb

    from finops_kit.forecast import _DATE_TOKENS

    con = duckdb.connect()

    def strip(text: str) -> str:
        return con.execute(f"SELECT regexp_replace(?, '{_DATE_TOKENS}', '', 'gi')", [text]).fetchone()[0]

    for kept in ("$0.2048 per On Demand Linux g5.xlarge Instance Hour", "Kafka 3.5.10", "Commitment ID 202611",
                 "Fee 1.2024", "Dec", "May maintenance", "m5.2xlarge 2024 RI", "Windows Server 2019"):
        assert strip(kept) == kept
    for dated in ("for 2026-10", "fee October 2026", "01.10.2026", "period 10/2026", "invoice 20261001",
                  "Oct. 2026", "2026/10/01", "10/01/2026", "period 10-2026", "from 2026-10-01T00:00:00Z"):
        assert not any(ch.isdigit() for ch in strip(dated)), dated
