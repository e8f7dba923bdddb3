"""The one-line API (``fk.costs``, ``fk.change``) on the sample data: the same answers as the semantic layer
(``finops-kit metrics``, the attribution under tag_policy), money exact and displayed as money."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit import warehouse
from finops_kit.errors import ConfigError
from finops_kit.metrics import metrics
from finops_kit.scope import resolve

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "finops.yaml")


@pytest.fixture()
def con(sample_con):  # these tests only read the sample warehouse
    return sample_con


def test_gpu_spend_by_team_consolidates_tag_spellings_and_ties_to_metrics(con):
    got = fk.costs(by="team", gpu_only=True, con=con, config=CONFIG)
    assert isinstance(got, fk.CostFrame) and list(got.columns) == ["team", "cost", "accelerator_hours",
                                                                   "spot_share", "unknown_accelerator_cost",
                                                                   "share"]
    m = metrics(con, resolve(con, CONFIG, {}))
    spot_all = m.spot[m.spot["provider"] == "(all)"].iloc[0]
    assert sum(got["cost"]) == spot_all["cost"]  # exact Decimal, the metrics' accelerated cost
    assert abs(sum(got["accelerator_hours"]) - float(spot_all["accelerator_hours"])) < 1e-6
    # the naive query on the 'team' tag alone leaves far more untagged: Team/owner_team/... are the same key
    naive = con.sql(f"""SELECT sum(EffectiveCost) FROM ({__import__('finops_kit').units.accelerated_usage_sql()})
                        WHERE json_extract_string(Tags, '$.team') IS NULL""").fetchall()[0][0]
    untagged = got.loc[got["team"] == "(untagged)", "cost"].sum()
    assert naive > 3 * untagged
    assert {"nlp", "vision"} <= set(got["team"])


def test_ai_only_and_the_whole_scope_tie_to_metrics(con):
    sc = resolve(con, CONFIG, {"billing_period_start": "2026-10", "billing_period_end": "2026-10"})
    m = metrics(con, sc)
    ai = fk.costs(by=["team", "service"], period="2026-10", ai_only=True, con=con, config=CONFIG)
    assert sum(ai["cost"]) == m.total("ai_cost")
    every = fk.costs(period="2026-10", con=con, config=CONFIG)
    assert len(every) == 1 and every["cost"].iloc[0] == m.total("effective_cost")
    by_acct = fk.costs(by="account", where={"team": "(untagged)"}, period="2026-10", con=con, config=CONFIG)
    assert sum(by_acct["cost"]) == m.total("unallocated_cost")  # showback's (untagged) line, split by account


def test_dimensions_are_named_in_words(con):
    got = fk.costs(by=["environment", "application", "owner", "model"], period="2026-10", ai_only=True,
                   con=con, config=CONFIG)
    assert list(got.columns[:4]) == ["environment", "application", "owner", "model"]
    assert set(got["environment"]) <= {"prod", "staging", "dev", "test", "sandbox", "(untagged)"}
    with pytest.raises(ConfigError, match="unknown dimension 'colour'"):
        fk.costs(by="colour", con=con, config=CONFIG)
    with pytest.raises(ConfigError, match="gpu_only=True"):
        fk.costs(by="instance_family", con=con, config=CONFIG)


def test_last_closed_month_and_month_over_month(con):
    top = fk.costs(by="service", period="last closed", con=con, config=CONFIG)
    assert top.scope.start.isoformat() == "2026-10-01"  # November is open in the sample data
    assert "Every billing period in scope is closed" in top.completeness
    ch = fk.change(by="service", con=con, config=CONFIG)
    sep = fk.costs(by="service", period="2026-09", con=con, config=CONFIG)
    assert sum(ch["after"]) == sum(top["cost"]) and sum(ch["before"]) == sum(sep["cost"])
    assert all(c == a - b for a, b, c in zip(ch["after"], ch["before"], ch["change"], strict=True))
    assert list(ch["change"].map(abs)) == sorted(ch["change"].map(abs), reverse=True)


def test_money_is_exact_but_displayed_as_money(con):
    got = fk.costs(by="service", period="2026-10", con=con, config=CONFIG)
    assert all(isinstance(v, Decimal) for v in got["cost"])
    text = repr(got.head(3))  # a derived frame keeps the display
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d{2}", text) and not re.search(r"\d{7}\.\d{6,}", text)
    assert "Scope: billing periods 2026-10 .. 2026-10" in text and "closed" in text
    page = got._repr_html_()
    assert "finops-table" in page and "$" in page and "finops-scope" in page


def test_spot_share_by_family(con):
    fam = fk.costs(by="instance_family", gpu_only=True, con=con, config=CONFIG)
    m = metrics(con, resolve(con, CONFIG, {}))
    acc = m.accelerators.groupby("family")["accelerator_hours"].sum()
    row = fam.set_index("instance_family")
    for family, hours in acc.items():
        assert abs(row.loc[family, "accelerator_hours"] - float(hours)) < 1e-6
    assert all(0 <= s <= 1 for s in fam["spot_share"].dropna())


def test_the_default_connection_is_the_project_warehouse_read_only(sample_warehouse, monkeypatch):
    monkeypatch.setenv("FINOPS_WAREHOUSE", sample_warehouse)
    monkeypatch.setitem(warehouse._DEFAULT, "con", None)
    monkeypatch.chdir(REPO / "notebooks")  # finops.yaml found from the notebooks folder
    got = fk.costs(by="provider", period="2026-10")
    try:
        assert set(got["provider"]) == {"AWS", "Google Cloud", "Microsoft"}
        con = warehouse._DEFAULT["con"]
        assert fk.info(con).read_only and Path(fk.info(con).path) == Path(sample_warehouse)
        mine = fk.connect()  # the user's own connection becomes the API's
        assert warehouse._DEFAULT["con"] is mine and con is not mine
        con.close()
        mine.close()
        again = fk.costs(by="provider", period="2026-10")  # a closed default is reopened, not an error
        assert list(again["cost"]) == list(got["cost"])
    finally:
        if warehouse._DEFAULT["con"] is not None:
            warehouse._DEFAULT["con"].close()
