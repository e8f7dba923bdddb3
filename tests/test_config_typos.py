"""A misspelled or mistyped setting is exit 2 and one line naming the config file and the key, for every command.

A typo that is silently ignored changes the answer without saying so: ``anomalys:`` meant "no alerts", exit 0;
``threshhold: 2`` kept 3.5; ``tag_policy.keyz`` reported 6x the unallocated cost; ``allocation.key: teem`` made
``check`` drop the team alerts. Each case goes through the CLI, as a scheduled job runs it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import finops_kit as fk  # noqa: E402
from finops_kit.cli import main  # noqa: E402
from finops_kit.testing import focus_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

BASE = """\
tag_policy:
  keys:
    team: {required: true}
allocation:
  key: team
budgets:
  thresholds: [80, 100]
  items:
    - name: Team A
      scope: {team: alpha}
      monthly: 100000
      months: {"2026-12": 120000}
alerts:
  budgets: true
  forecast: false
  guardrails: false
  anomalies: {dimensions: [total, team], lookback_days: 2, threshold: 3.5, min_impact: 500}
"""

# (name, text replaced, replacement, key the error must name)
CASES = [
    ("alerts section typo", "  anomalies:", "  anomalys:", "alerts.anomalys"),
    ("anomaly setting typo", "threshold: 3.5", "threshhold: 2", "alerts.anomalies.threshhold"),
    ("alerts.budget", "  budgets: true", "  budget: false", "alerts.budget"),
    ("string boolean", "  budgets: true", '  budgets: "false"', "alerts.budgets"),
    ("non-numeric window", "threshold: 3.5", 'threshold: 3.5, window: "abc"', "alerts.anomalies.window"),
    ("budget item typo", '      months: {"2026-12"', '      montsh: {"2026-12"', "budgets.items[0].montsh"),
    ("negative budget", "monthly: 100000", "monthly: -5", "items[0].monthly"),
    ("allocation key", "  key: team", "  key: teem", "allocation.key"),
    ("tag_policy keys", "  keys:\n    team:", "  keyz:\n    team:", "tag_policy.keyz"),
]


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> str:
    """60 days of one team at ~$1000/day with a +$5000 spike on the last day (anomaly and budget alerts fire)."""
    path = str(tmp_path_factory.mktemp("typos") / "wh.duckdb")
    rng = np.random.default_rng(2)
    rows = [dict(day=str(d.date()), cost=round(1000 + rng.normal(0, 20) + (5000.0 if str(d.date()) == "2026-11-14"
                                                                              else 0.0), 2), tags={"team": "alpha"})
            for d in pd.date_range("2026-09-16", "2026-11-14", freq="D")]
    con = fk.connect(path, write=True)
    focus_rows(rows, con)
    con.close()
    return path


def _write(tmp_path: Path, old: str, new: str) -> str:
    assert old in BASE
    p = tmp_path / "finops.yaml"
    p.write_text(BASE.replace(old, new, 1))
    return str(p)


def _one_line_error(capsys, cfg: str, key: str) -> None:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"finops-kit: error: {cfg}: "), err
    assert key in err, err


def test_base_config_is_accepted(wh, tmp_path, capsys):
    """The unmodified base fires alerts (exit 1), so each case below fails because of its typo alone."""
    cfg = _write(tmp_path, "", "")
    assert main(["check", "--warehouse", wh, "--config", cfg]) == 1
    assert "[anomaly]" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "old", "new", "key"), CASES, ids=[c[0] for c in CASES])
def test_typo_in_check_is_exit_2_naming_file_and_key(wh, tmp_path, capsys, name, old, new, key):
    cfg = _write(tmp_path, old, new)
    assert main(["check", "--warehouse", wh, "--config", cfg]) == 2
    _one_line_error(capsys, cfg, key)


@pytest.mark.parametrize(("name", "old", "new", "key"), [c for c in CASES if c[0] in ("allocation key",
                                                                                      "tag_policy keys")],
                         ids=["allocation key", "tag_policy keys"])
def test_tag_and_allocation_typos_in_metrics(wh, tmp_path, capsys, name, old, new, key):
    """``metrics`` reads the same sections through the same scope: the same line."""
    cfg = _write(tmp_path, old, new)
    assert main(["metrics", "--warehouse", wh, "--config", cfg]) == 2
    _one_line_error(capsys, cfg, key)


def test_did_you_mean(wh, tmp_path, capsys):
    cfg = _write(tmp_path, "  anomalies:", "  anomalys:")
    assert main(["check", "--warehouse", wh, "--config", cfg]) == 2
    assert "did you mean 'anomalies'?" in capsys.readouterr().err


def test_repo_config_sections_validate():
    """The committed finops.yaml passes every section reader touched here (its check/metrics figures were compared
    before and after the change by hand: identical)."""
    from finops_kit.alerts import settings
    from finops_kit.budgets import load_budgets
    from finops_kit.config import load_config
    from finops_kit.scope import attribution_settings

    cfg = load_config(REPO / "finops.yaml")
    s = settings(cfg)
    assert s.budgets and s.forecast and s.anomalies.threshold == 3.5 and s.dimensions == ("total", "team", "service")
    assert len(load_budgets(cfg)[0]) == 7
    policy, allocation = attribution_settings(cfg)
    assert allocation.key == "team" and "team" in policy.keys


@pytest.mark.parametrize("text, key, line", [
    ("budgets:\n  items:\n    - {name: a, monthly: 100}\nbudgets:\n  items:\n    - {name: b, monthly: 1}\n",
     "budgets", 4),
    ("alerts:\n  anomalies:\n    threshold: 3\n    threshold: 5\n", "threshold", 4),
])
def test_a_key_twice_in_one_mapping_is_refused(tmp_path, text, key, line):
    """YAML lets a repeated key silently replace the first: a second 'budgets:' block replaced the first and
    'finops-kit check' fired on the second block's $1 budget (found by a review). One line names the key and the
    line of its second occurrence."""
    from finops_kit.config import load_config
    from finops_kit.errors import ConfigError

    cfg = tmp_path / "dup.yaml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{cfg}: line {line}: {key!r} appears twice"):
        load_config(str(cfg))
    # anchors and merge keys stay allowed
    ok = tmp_path / "merge.yaml"
    ok.write_text("alerts:\n  anomalies: &a {threshold: 3}\nroadmap:\n  - {<<: *a, name: x}\n", encoding="utf-8")
    assert load_config(str(ok))["alerts"]["anomalies"] == {"threshold": 3}
