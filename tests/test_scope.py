"""One scope, one attribution, one currency decision: the answers every analysis shares.

Data shaped like the real exports: a partial last month (data to 26 Nov), a second billing currency, and the tag
key/value spellings seen in real bills (TEAM, owner-team, owner_team, business_unit; stg/preprod/qa).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from finops_kit import scope as S
from finops_kit.errors import ConfigError
from finops_kit.tagging import TagAudit
from finops_kit.testing import focus_rows

CONFIG = {
    "tag_policy": {
        "keys": {
            "team": {"aliases": ["Team", "owner_team", "business_unit"], "pattern": "[A-Za-z][A-Za-z0-9._-]{1,63}"},
            "env": {"aliases": ["environment", "stage"], "allowed": ["prod", "staging", "dev", "test"],
                    "value_aliases": {"prod": ["production", "prd"], "staging": ["stg", "preprod", "stage"],
                                      "test": ["qa"]}},
        },
    },
    "allocation": {"key": "team", "shared": {"tag_values": ["platform", "shared"], "charge_categories": ["Tax"]}},
}


def _rows() -> list[dict]:
    rows = []
    # closed months Sep and Oct, Nov open (data to the 26th), like the sample export
    for month, days in (("2026-09", 30), ("2026-10", 31), ("2026-11", 26)):
        for d in range(1, days + 1):
            rows.append({"day": f"{month}-{d:02d}", "cost": Decimal("10"), "ProviderName": "AWS",
                         "tags": {"team": "vision", "env": "prod"}})
    return rows


@pytest.fixture()
def wh():
    return focus_rows(_rows())


# ---------------------------------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("params, message", [
    ({"providers": "[AWS"}, "parameter providers: '[AWS' is not a list"),
    ({"providers": ["[AWS"]}, "parameter providers"),
    ({"billing_period_start": "2026-11", "billing_period_end": "2026-10"}, "is before billing_period_start"),
    ({"date_start": "2026-11-05", "date_end": "2026-11-01"}, "date_end: 2026-11-01 is before"),
    ({"billing_period_start": "2026-13"}, "is not a billing period"),
    ({"billing_period_start": "2026-10-01"}, "use date_start/date_end"),
    ({"date_start": "2026-10"}, "is not a day"),
    ({"billing_period_start": "2026-10", "date_end": "2026-10-31"}, "not both"),
    ({"currency": "dollars"}, "parameter currency"),
])
def test_bad_scope_parameters_are_one_line_config_errors(params, message):
    with pytest.raises(ConfigError) as err:
        S.Scope.parse(params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_both_ends_inclusive_for_months_and_days(wh):
    month = S.resolve(wh, CONFIG, billing_period_start="2026-10", billing_period_end="2026-10")
    days = S.resolve(wh, CONFIG, date_start="2026-10-01", date_end="2026-10-31")
    total = "SELECT sum(EffectiveCost), count(*) FROM {}"
    assert wh.execute(total.format(month.rows_sql())).fetchone() == (Decimal("310"), 31)
    assert wh.execute(total.format(days.rows_sql())).fetchone() == (Decimal("310"), 31)
    one_day = S.resolve(wh, CONFIG, date_start="2026-10-31", date_end="2026-10-31")
    assert wh.execute(total.format(one_day.rows_sql())).fetchone() == (Decimal("10"), 1)
    # the legacy keywords mean the same: a month end is inclusive, an ISO end day too
    assert S.Scope.of("2026-10", "2026-10").resolve(wh, CONFIG).where() == month.where()
    assert S.Scope.of("2026-10-01", "2026-10-31").resolve(wh, CONFIG).where() == days.where()


@pytest.mark.parametrize("params", [{"billing_period_start": "2027-01"}, {"date_start": "2026-12-01"},
                                    {"billing_period_start": "2026-01", "billing_period_end": "2026-02"}])
def test_empty_or_future_scope_is_no_data_exit_3(wh, params):
    with pytest.raises(S.NoDataError, match="no data for this scope") as err:
        S.resolve(wh, CONFIG, **params)
    assert err.value.exit_code == 3  # session 15: "nothing to judge", no longer 1 (an alert, a failed report)


def test_a_currency_the_scope_does_not_bill_in_is_a_parameter_error_exit_2(wh):
    # regression review 14: `check -p currency=EUR` on a USD warehouse exited 1 -- the "alerts fired" code -- on
    # "no data for this scope"; a parameter naming what is not there is exit 2, as an unknown provider
    with pytest.raises(ConfigError, match=r"parameter currency: no charge billed in EUR in this scope \(it holds "):
        S.resolve(wh, CONFIG, currency="EUR")


def test_unknown_provider_names_the_ones_in_the_warehouse(wh):
    with pytest.raises(ConfigError, match=r"'Oracle' not in the warehouse \(it holds AWS\)"):
        S.resolve(wh, CONFIG, providers=["Oracle"])
    assert S.resolve(wh, CONFIG, providers=["aws"]).providers == ("aws",)  # any case


# ---------------------------------------------------------------------------------------------------- currency

def _two_currencies():
    rows = _rows() + [{"day": "2026-10-05", "cost": Decimal("100"), "ProviderName": "Microsoft",
                       "BillingCurrency": "EUR", "tags": {"team": "nlp"}}]
    return focus_rows(rows)


def test_mixed_currency_scope_without_rates_is_an_error_naming_the_currencies():
    con = _two_currencies()
    with pytest.raises(ConfigError, match=r"several billing currencies \(EUR, USD\)"):
        S.resolve(con, CONFIG)
    # choosing one keeps only the charges billed in it
    eur = S.resolve(con, CONFIG, currency="EUR")
    assert con.execute(f"SELECT sum(EffectiveCost) FROM {eur.rows_sql()}").fetchone()[0] == Decimal("100")
    assert "amounts in EUR" in eur.describe()
    # a single-currency sub-scope needs no choice
    assert S.resolve(con, CONFIG, providers=["AWS"]).currency == "USD"


def test_mixed_currency_scope_with_rates_is_converted(tmp_path):
    con = _two_currencies()
    rates = tmp_path / "fx.csv"
    rates.write_text("month,from_currency,to_currency,rate\n2026-10,EUR,USD,1.10\n")
    cfg = {**CONFIG, "currency": {"reporting_currency": "USD", "rates_file": str(rates)}}
    sc = S.resolve(con, cfg)
    assert sc.convert and sc.currency == "USD"
    total = con.execute(f"SELECT sum(EffectiveCost), count(DISTINCT BillingCurrency) FROM {sc.rows_sql()}").fetchone()
    assert total == (Decimal("870") + Decimal("110"), 1)
    rates.write_text("month,from_currency,to_currency,rate\n2026-09,EUR,USD,1.10\n")
    with pytest.raises(ConfigError, match="no rate to USD for EUR 2026-10"):
        S.resolve(con, cfg)


# ---------------------------------------------------------------------------------------------------- completeness

def test_completeness_marks_the_partial_last_month_open(wh):
    sc = S.resolve(wh, CONFIG)
    c = sc.completeness().set_index("billing_period")
    assert bool(c.loc[dt.date(2026, 10, 1), "closed"]) and bool(c.loc[dt.date(2026, 9, 1), "closed"])
    nov = c.loc[dt.date(2026, 11, 1)]
    assert not bool(nov["closed"]) and nov["last_day"] == dt.date(2026, 11, 26)
    assert nov["label"] == "1\u201326 Nov 2026, open"
    assert sc.closed_periods() == [dt.date(2026, 9, 1), dt.date(2026, 10, 1)]
    assert sc.period_labels()[dt.date(2026, 11, 1)] == "2026-11 (1\u201326, open)"
    assert "open" in sc.completeness_note()


def test_a_period_is_closed_once_a_later_period_has_data():
    # a provider whose October export stops on the 30th but whose November has started: October is final
    con = focus_rows([{"day": "2026-10-30", "cost": Decimal(1)}, {"day": "2026-11-02", "cost": Decimal(1)}])
    c = S.completeness(con).set_index("billing_period")
    assert bool(c.loc[dt.date(2026, 10, 1), "closed"]) and not bool(c.loc[dt.date(2026, 11, 1), "closed"])


def _days(month: str, first: int, last: int, **extra) -> list[dict]:
    return [{"day": f"{month}-{d:02d}", "cost": Decimal(10), **extra} for d in range(first, last + 1)]


def test_a_usage_row_spanning_the_month_does_not_close_an_open_month():
    # a Route 53 hosted zone (or the unused part of an RI fee) is one Usage row for the whole month, booked on the
    # 1st: it says nothing about how far the month has been delivered (daily EC2 usage stops on the 3rd)
    month_long = {"ChargePeriodStart": dt.datetime(2025, 11, 1), "ChargePeriodEnd": dt.datetime(2025, 12, 1),
                  "BillingPeriodStart": dt.datetime(2025, 11, 1), "BillingPeriodEnd": dt.datetime(2025, 12, 1),
                  "cost": Decimal("0.50"), "ServiceName": "Amazon Route 53"}
    con = focus_rows(_days("2025-10", 1, 31) + _days("2025-11", 1, 3) + [month_long])
    c = S.completeness(con).set_index("billing_period")
    nov = c.loc[dt.date(2025, 11, 1)]
    assert not bool(nov["closed"]) and nov["last_day"] == dt.date(2025, 11, 3)
    assert nov["label"] == "1\u20133 Nov 2025, open"
    assert bool(c.loc[dt.date(2025, 10, 1), "closed"])


def test_a_monthly_granularity_export_is_still_judged_by_its_month_long_rows():
    # an export made only of month-long rows (monthly granularity) has nothing shorter: those rows decide
    rows = [{"ChargePeriodStart": dt.datetime(2025, m, 1), "ChargePeriodEnd": dt.datetime(2025, m + 1, 1),
             "BillingPeriodStart": dt.datetime(2025, m, 1), "BillingPeriodEnd": dt.datetime(2025, m + 1, 1),
             "cost": Decimal(100)} for m in (9, 10)]
    c = S.completeness(focus_rows(rows)).set_index("billing_period")
    assert bool(c.loc[dt.date(2025, 9, 1), "closed"]) and bool(c.loc[dt.date(2025, 10, 1), "closed"])


def test_completeness_is_decided_per_billing_account():
    # two payers of one provider deliver separately: payer 111's finished November does not close payer 333's,
    # whose export has reached the 3rd -- until 333's own December arrives, or its November is invoiced
    rows = (_days("2025-10", 1, 31, BillingAccountId="111") + _days("2025-10", 1, 31, BillingAccountId="333")
            + _days("2025-11", 1, 30, BillingAccountId="111") + _days("2025-11", 1, 3, BillingAccountId="333"))
    c = S.completeness(focus_rows(rows)).set_index("billing_period")
    nov = c.loc[dt.date(2025, 11, 1)]
    assert not bool(nov["closed"]) and nov["last_day"] == dt.date(2025, 11, 3)
    assert "333" in nov["label"] and "111" not in nov["label"]
    assert bool(c.loc[dt.date(2025, 10, 1), "closed"])
    later = rows + _days("2025-12", 1, 2, BillingAccountId="333")
    assert bool(S.completeness(focus_rows(later)).set_index("billing_period").loc[dt.date(2025, 11, 1), "closed"])
    invoiced = [dict(r, InvoiceId="INV-333-11") if r["BillingAccountId"] == "333" and r["day"] >= "2025-11" else r
                for r in rows]
    invoiced = [dict(r, InvoiceId="INV-111-11") if r["BillingAccountId"] == "111" and r["day"] >= "2025-11" else r
                for r in invoiced]
    # an invoiced month is final: the account stopped using the cloud on the 3rd
    assert bool(S.completeness(focus_rows(invoiced)).set_index("billing_period").loc[dt.date(2025, 11, 1), "closed"])


def _hours(first: dt.datetime, last_end: dt.datetime, period: tuple[dt.datetime, dt.datetime]) -> list[dict]:
    out, t = [], first
    while t < last_end:
        out.append({"ChargePeriodStart": t, "ChargePeriodEnd": t + dt.timedelta(hours=1), "cost": Decimal(1),
                    "BillingPeriodStart": period[0], "BillingPeriodEnd": period[1], "ProviderName": "Google Cloud"})
        t += dt.timedelta(hours=1)
    return out


def test_a_period_is_closed_only_when_usage_reaches_its_end_instant():
    # hourly usage that stops at 05:00 UTC on the 30th has not reached the end of the month, although its last
    # row's end falls on the month's last day (GCP's invoice month even runs to 08:00 UTC on the 1st)
    nov = (dt.datetime(2025, 11, 1), dt.datetime(2025, 12, 1))
    short = _hours(dt.datetime(2025, 11, 1), dt.datetime(2025, 11, 30, 5), nov)
    c = S.completeness(focus_rows(short)).set_index("billing_period")
    assert not bool(c.loc[dt.date(2025, 11, 1), "closed"])
    # its data holds whole days through the 29th (the 30th has 5 hours): the day forecast.data_through says too
    assert c.loc[dt.date(2025, 11, 1), "last_day"] == dt.date(2025, 11, 29)
    full = _hours(dt.datetime(2025, 11, 1), dt.datetime(2025, 12, 1), nov)
    assert bool(S.completeness(focus_rows(full)).set_index("billing_period").loc[dt.date(2025, 11, 1), "closed"])


# ---------------------------------------------------------------------------------------------------- attribution

VARIANTS = [  # (tags, expected team, expected env)
    ({"team": "vision", "env": "prod"}, "vision", "prod"),
    ({"TEAM": "vision", "Environment": "production"}, "vision", "prod"),
    ({"owner-team": "nlp", "stage": "stg"}, "nlp", "staging"),
    ({"owner_team": "nlp", "env": "preprod"}, "nlp", "staging"),
    ({"business_unit": "recsys", "env": "qa"}, "recsys", "test"),
    ({"Team": "Recsys", "env": "QA"}, "recsys", "test"),   # value case variant folds onto the dominant spelling
    ({"team": "platform"}, "platform", None),              # a shared pool (allocation.shared.tag_values)
    ({"team": "", "env": "nonsense"}, None, None),          # empty and invalid values are untagged
    ({}, None, None),
]


def _variant_rows():
    return [{"day": "2026-10-01", "cost": Decimal(10 + i), "ResourceId": f"r{i}", "tags": t}
            for i, (t, _, _) in enumerate(VARIANTS)] + [
        {"day": "2026-10-02", "cost": Decimal(100), "ResourceId": "big", "tags": {"team": "recsys"}},
        {"day": "2026-10-02", "cost": Decimal(5), "ChargeCategory": "Tax", "tags": None}]


def test_every_policy_key_spelling_and_value_alias_is_attributed_once():
    con = focus_rows(_variant_rows())
    sc = S.resolve(con, CONFIG)
    a = sc.attribution
    got = con.execute(f"SELECT ResourceId, {a.value_sql('team')}, {a.value_sql('env')} FROM {sc.rows_sql()} "
                      "WHERE ResourceId LIKE 'r%' ORDER BY CAST(substr(ResourceId, 2) AS INT)").fetchall()
    assert [(t, e) for _, t, e in got] == [(t, e) for _, t, e in VARIANTS]
    owners = dict(con.execute(f"SELECT {a.owner_sql()} AS o, sum(EffectiveCost) FROM {sc.rows_sql()} "
                              "GROUP BY 1").fetchall())
    # platform-tagged cost and the tax line are shared; the empty/invalid/missing rows are untagged
    assert owners["(shared)"] == Decimal(16) + Decimal(5)
    assert owners["(untagged)"] == Decimal(17) + Decimal(18)
    assert "team <- team, Team, business_unit, owner_team, TEAM, owner-team" in a.describe_keys(["team"])


def test_attribution_expression_equals_the_tagging_audit_on_every_row():
    con = focus_rows(_variant_rows())
    sc = S.resolve(con, CONFIG)
    with TagAudit(con, scope=sc) as audit:
        for key in ("team", "env"):
            diff = audit.sql(f"""
                SELECT count(*) FROM @wide w JOIN {sc.rows_sql(rowid=True)} f ON f._rowid = w._rid
                WHERE w.{key} IS DISTINCT FROM {sc.attribution.value_sql(key, tags='f.Tags')}""").fetchall()[0][0]
            assert diff == 0, key


# ---------------------------------------------------------------------------------------------------- report -p

def _info(name: str, *params: str):
    from pathlib import Path

    from finops_kit import report

    ps = {p: report.Param(p, "str", "") for p in params}
    ps["providers"] = report.Param("providers", "list", [])
    return report.NotebookInfo(path=Path(f"/nb/{name}.ipynb"), name=name, title=name, params=ps)


def test_report_parameter_a_chosen_notebook_does_not_take_is_exit_2_naming_what_it_takes():
    from finops_kit import report

    a, b = _info("storage", "billing_period_start", "group_by"), _info("spot", "billing_period_start", "job_nodes")
    cli = report.parse_parameters(["group_by=team"])
    with pytest.raises(ConfigError, match="parameter 'group_by': notebook spot does not take it; it takes "
                                          "billing_period_start, job_nodes, providers"):
        report.plan([a, b], cli, {}, "/wh", None)
    # with --all, a parameter some notebook takes goes to those that take it; the others run without it
    jobs = report.plan([a, b], cli, {}, "/wh", None, every=True)
    assert [j.cli_parameters for j in jobs] == [{"group_by": "team"}, {}]
    with pytest.raises(ConfigError, match="unknown parameter 'colour'"):
        report.plan([a, b], report.parse_parameters(["colour=red"]), {}, "/wh", None, every=True)


def test_report_rejects_a_broken_scope_before_running():
    from finops_kit import report

    a = _info("storage", "billing_period_start", "billing_period_end")
    with pytest.raises(ConfigError, match="parameter providers"):
        report.plan([a], report.parse_parameters(["providers=[AWS"]), {}, "/wh", None)
    with pytest.raises(ConfigError, match="is before billing_period_start"):
        report.plan([a], report.parse_parameters(["billing_period_start=2026-11", "providers=[AWS]"]) |
                    {"billing_period_end": ("2026-10", "2026-10")}, {}, "/wh", None, every=True)


# ---------------------------------------------------------------------------------------------------- one answer

def test_showback_forecast_budgets_spot_and_storage_attribute_the_same_rows_alike():
    """Before: storage read TEAM/owner-team as untagged, spot owner_team/business_unit, forecast and budgets kept
    stg/preprod/qa apart, and platform was a shared pool in showback but a team in the forecast."""
    from finops_kit import budgets as bu
    from finops_kit import forecast as fc
    from finops_kit import showback as sb
    from finops_kit import spot
    from finops_kit import storage as st

    rows = []
    for i, (tags, _, _) in enumerate(VARIANTS):
        rows.append({"day": "2026-10-03", "cost": Decimal(100 + i), "ResourceId": f"gpu{i}", "tags": tags,
                     "x_AiWorkload": "Accelerated compute", "ConsumedQuantity": 24, "ConsumedUnit": "Hrs",
                     "x_InstanceType": "p4d.24xlarge", "PricingCategory": "Standard"})
        rows.append({"day": "2026-10-03", "cost": Decimal(10 + i), "ResourceId": f"bucket{i}", "tags": tags,
                     "ServiceName": "Amazon Simple Storage Service", "ServiceCategory": "Storage",
                     "x_UsageType": "USE1-TimedStorage-ByteHrs", "ConsumedQuantity": 100, "ConsumedUnit": "GB-Mo"})
    con = focus_rows(rows)
    sc = S.resolve(con, CONFIG)
    show = sb.showback(con, CONFIG, CONFIG, method="none", scope=sc).table
    by_owner = {o: Decimal(str(round(c, 6))) for o, c in zip(show["owner"], show["direct_cost"], strict=True)}
    series = fc.daily_series(con, "team", charges="all", scope=sc)
    fc_team = {v: sum(g["cost"], Decimal(0)) for v, g in series.groupby("value")}
    assert fc_team == by_owner
    assert fc_team["(shared)"] == Decimal(106 + 16)  # platform-tagged GPU + bucket rows
    budget_team = {t: sum(bu.month_actuals(con, {"team": t}, dt.date(2026, 10, 1), dt.date(2026, 10, 31),
                                           scope=sc)["actual"], Decimal(0)) for t in fc_team}
    assert budget_team == fc_team
    gpu = spot.spot_coverage(con, by=("team",), scope=sc).df()
    storage = st.inventory(con, by=["team"], scope=sc)
    # every row is a GPU or a storage row: per team, the spot and storage reports add up to the showback line
    gpu_team = {r.team: Decimal(str(r.total_cost)) for r in gpu.itertuples()}
    storage_team = dict(zip(storage["team"], storage["cost"], strict=True))
    assert {t: gpu_team[t] + storage_team[t] for t in fc_team} == by_owner
    env = fc.daily_series(con, "env", charges="all", scope=sc)
    assert set(env["value"]) == {"prod", "staging", "test", "(untagged)"}  # stg/preprod/stage and qa folded


# ---------------------------------------------------------------------------------------------------- demo data

def test_sample_tags_carry_every_policy_key_with_realistic_gaps_and_variants(sample_warehouse):
    """Before: the sample had no owner or model tag (0% coverage for both, every charge a violation)."""
    import finops_kit as fk

    con = fk.connect(sample_warehouse, read_only=True)
    try:
        sc = S.resolve(con, "finops.yaml")
        with TagAudit(con, scope=sc) as audit:
            cov = audit.coverage().set_index("key")
            total = float(con.execute(f"SELECT sum(EffectiveCost) FILTER (WHERE EffectiveCost > 0) "
                                      f"FROM {sc.rows_sql()}").fetchall()[0][0])
            for key in audit.policy.required:
                assert 0 < cov.loc[key, "coverage"] < 100, key  # tagged, with gaps
            viol = audit.violations()
            per = viol.groupby(["type", "key"])["cost"].sum()
            assert per.get(("missing key", "owner"), 0) > 0 and per.get(("missing key", "model"), 0) > 0
            # a charge counts once per key and violation type: no dollar figure can exceed the scope's spend
            assert (per <= total * (1 + 1e-9)).all(), per[per > total]
            raw = set(audit.key_map()["raw_key"])
        assert {"TEAM", "owner-team", "owner_team", "business_unit", "Env", "environment"} <= raw
        envs = {r[0] for r in con.execute(
            "SELECT DISTINCT j.value ->> '$' FROM focus, json_each(Tags) j "
            "WHERE j.key IN ('env', 'Env', 'environment', 'Environment')").fetchall()}
        assert {"stg", "qa", "prd", "production", "Prod", "DEV"} <= envs  # value aliases and case variants
    finally:
        con.close()


def test_a_notebook_shows_money_in_the_scope_currency():
    from finops_kit import notebook as nb

    con = _two_currencies()
    try:
        sc = nb.scope(con, CONFIG, {"currency": "EUR", "top_n": 5})
        assert sc.currency == "EUR"
        assert nb.money(1234.5) == "1,234.50 EUR" and "100.00 EUR" in nb.table(
            __import__("pandas").DataFrame({"cost": [Decimal(100)]})).markup
        # charts too: their "$" money formats take the locale's currency, which the page's vega-embed call sets
        assert nb.embed_options()["formatLocale"]["currency"] == ["", " EUR"]
        html = nb._offline_renderer({"mark": "bar"})["text/html"]
        assert '"formatLocale":{"currency":["", " EUR"]'.replace(", ", ",") in html.replace(", ", ",")
    finally:
        nb._state["currency"] = "USD"
    assert nb.embed_options()["formatLocale"]["currency"] == ["$", ""]


def test_alerts_and_anomaly_narratives_write_the_scope_currency():
    """Before: "was $1,234 against $100 expected" in a EUR scope, beside tables in EUR; and diagnosing an anomaly
    raised "dimension 'project': not a key of tag_policy" for a policy without a project key."""
    from finops_kit import anomaly as an
    from finops_kit.currency import format_money

    assert format_money(Decimal("1234.5"), "EUR", 0) == "1,235 EUR"
    assert format_money(-3, "USD") == "-$3.00" and format_money(3, "USD", 0, signed=True) == "+$3"
    assert format_money(Decimal("0.125"), None) == "0.13"  # half up, not to even
    con = _two_currencies()
    eur = S.resolve(con, CONFIG, currency="EUR")
    ev = {"dimension": "total", "value": "total", "start": dt.date(2026, 10, 5), "end": dt.date(2026, 10, 5),
          "actual": 1234.0, "expected": 100.0, "impact": 1134.0, "impact_pct": 1134.0}
    text = an.diagnose(con, ev, scope=eur)["narrative"]
    assert "1,234 EUR against 100 EUR expected: impact +1,134 EUR" in text and "$" not in text


@pytest.mark.parametrize("args, code, message", [
    (["-p", "billing_period_start=2027-01"], 3, "no data for this scope"),  # session 15: was 1, "failed"
    (["-p", "providers=[AWS"], 2, "parameter providers: '[AWS' is not a list"),
    (["-p", "billing_period_start=2026-11", "-p", "billing_period_end=2026-10"], 2, "is before billing_period_start"),
])
def test_report_on_an_empty_future_inverted_or_broken_scope_renders_nothing(tmp_path, capsys, args, code, message):
    """Issue 15.11: these rendered reports of $0.00 with exit 0."""
    import finops_kit as fk
    from finops_kit.cli import main

    wh = tmp_path / "wh.duckdb"
    con = fk.connect(str(wh), write=True)
    focus_rows(_rows(), con)
    con.close()
    out = tmp_path / "out"
    assert main(["report", "--all", "--warehouse", str(wh), "--out", str(out), *args]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_no_analysis_adds_amounts_across_currencies():
    """Before: forecast, budgets, anomaly, storage and egress summed EUR and USD rows as one number."""
    from finops_kit import anomaly as an
    from finops_kit import budgets as bu
    from finops_kit import egress as eg
    from finops_kit import forecast as fc
    from finops_kit import storage as st

    con = _two_currencies()
    calls = [lambda: fc.daily_series(con, "total", charges="all"),
             lambda: bu.month_actuals(con, {}, dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
             lambda: an.detect(con, "total"),
             lambda: st.inventory(con, by="provider", config=CONFIG),
             lambda: eg.by_type(con, by="provider", config=CONFIG)]
    for call in calls:
        with pytest.raises(ConfigError, match=r"several billing currencies \(EUR, USD\)"):
            call()
    eur = S.resolve(con, CONFIG, currency="EUR")
    assert sum(fc.daily_series(con, "total", charges="all", scope=eur)["cost"], Decimal(0)) == Decimal(100)


def test_every_key_of_the_demo_policy_is_attributed_through_its_aliases_and_variants():
    """project/owner/model too, with the repo's finops.yaml: the spellings the sample and real bills carry."""
    rows = [
        {"day": "2026-10-01", "cost": Decimal(1), "ResourceId": "a",
         "tags": {"app": "ranker", "contact": "recsys-leads@acme.example", "ml_model": "dlrm-v2", "TEAM": "recsys",
                  "Environment": "prd"}},
        {"day": "2026-10-01", "cost": Decimal(1), "ResourceId": "b",
         "tags": {"Project": "chat-api", "Owner": "nlp team", "model_name": "llama-3-70b", "business_unit": "nlp",
                  "stage": "preprod"}},
        {"day": "2026-10-01", "cost": Decimal(1), "ResourceId": "c",
         "tags": {"project_name": "detector-v3", "created_by": "vision-leads@acme.example", "Model": "yolo-v8",
                  "owner-team": "vision", "ENV": "QA"}},
    ]
    con = focus_rows(rows)
    sc = S.resolve(con, "finops.yaml")
    a = sc.attribution
    keys = ("project", "owner", "model", "team", "env")
    got = con.execute(f"SELECT ResourceId, {', '.join(a.value_sql(k) for k in keys)} FROM {sc.rows_sql()} "
                      "ORDER BY ResourceId").fetchall()
    assert got == [
        ("a", "ranker", "recsys-leads@acme.example", "dlrm-v2", "recsys", "prod"),
        ("b", "chat-api", None, "llama-3-70b", "nlp", "staging"),      # 'nlp team' is not an e-mail: invalid
        ("c", "detector-v3", "vision-leads@acme.example", "yolo-v8", "vision", "test"),
    ]


def test_an_account_that_ended_mid_month_does_not_keep_the_month_open_for_good():
    # a migration: account A stops on Oct 15, account B starts then and runs on; neither is invoiced (GCP and OCI
    # exports carry no invoice id). Once the provider has delivered a week into November, A is gone, not late
    rows = (_days("2025-09", 1, 30, BillingAccountId="A") + _days("2025-10", 1, 15, BillingAccountId="A")
            + _days("2025-10", 15, 31, BillingAccountId="B") + _days("2025-11", 1, 10, BillingAccountId="B"))
    c = S.completeness(focus_rows(rows)).set_index("billing_period")
    assert bool(c.loc[dt.date(2025, 10, 1), "closed"]) and not bool(c.loc[dt.date(2025, 11, 1), "closed"])
    # three days into November, A may only be late: October stays open
    early = [r for r in rows if not r["day"] >= "2025-11-04"]
    assert not bool(S.completeness(focus_rows(early)).set_index("billing_period").loc[dt.date(2025, 10, 1), "closed"])


def test_an_account_with_no_usage_in_a_period_does_not_decide_it():
    # a billing account that only carries a tax line (or only credits) on Nov 1 says nothing about delivery
    rows = (_days("2025-11", 1, 30, BillingAccountId="U") + _days("2025-12", 1, 2, BillingAccountId="U")
            + [{"day": "2025-11-01", "cost": Decimal(5), "BillingAccountId": "T", "ChargeCategory": "Tax"},
               {"day": "2025-11-01", "cost": Decimal(-5), "BillingAccountId": "C", "ChargeCategory": "Credit"}])
    c = S.completeness(focus_rows(rows)).set_index("billing_period")
    nov = c.loc[dt.date(2025, 11, 1)]
    assert bool(nov["closed"]) and nov["last_day"] == dt.date(2025, 11, 30)


def test_an_inclusive_billing_period_end_does_not_close_the_month_a_day_early():
    # FOCUS's BillingPeriodEnd is exclusive; a third-party file writing the last day (Nov 30 00:00) must not make
    # data through Nov 29 a complete November
    rows = [dict(r, BillingPeriodEnd=dt.datetime(2025, 11, 30)) for r in _days("2025-11", 1, 29)]
    c = S.completeness(focus_rows(rows)).set_index("billing_period")
    assert not bool(c.loc[dt.date(2025, 11, 1), "closed"])
