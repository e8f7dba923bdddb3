"""Hostile inputs and faults (issue 15): every case is refused with exit 2 and ONE stderr line that names the file,
row/column or setting, and leaves the warehouse exactly as it was (row count, money total, content hash).

The cases are the findings of an adversarial run against the CLI, the S3 path and the report runner; each one
failed before its fix (a traceback, a silent exit 0, a file written outside the cache, a leaked secret). The
fuzz step at the end mutates the committed samples with a fixed seed and asserts the same three properties.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

import finops_kit as fk
from finops_kit import report
from finops_kit.cli import main

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"
GOOD_FOCUS = FIX / "focus" / "quirky_focus_1_2.csv"
LEAK_NB = FIX / "notebooks" / "secret_leak.ipynb"


# -- report redaction (issue 15.2) ------------------------------------------------------------------------------

#: credentials under names the old pattern missed, plus classic ones; each value is printed by a notebook cell
PLANTED = {
    "DATABASE_URL": "postgresql://billing:Pl4nted-DB-pass@db.internal:5432/finops",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0PLANT/B0PLANT/PlantedWebhookSecret42",
    "SENTRY_DSN": "https://PlantedSentryKey0123@o42.ingest.sentry.io/4242",
    "MY_PASS": "planted-my-pass-7788",
    "AWS_SECRET_ACCESS_KEY": "FAKEplantedKEYwJalrXUtnFEMI0K7MDENG",
    "HARMLESS_SETTING": "visible-value-12345",  # not a credential: must stay visible
}


def test_secret_values_are_found_by_name_and_by_value():
    env = {**PLANTED, "HOME": "/root/home-dir", "TEAM_CHANNEL": "https://u:tok3n-in-url@example.com/x",
           "SOMETHING": "ghp_" + "a" * 36}
    vals = report.secret_values(env)
    for name in ("DATABASE_URL", "SLACK_WEBHOOK_URL", "SENTRY_DSN", "MY_PASS", "AWS_SECRET_ACCESS_KEY"):
        assert PLANTED[name] in vals, name
    assert "Pl4nted-DB-pass" in vals  # the password alone, as a cell printing a parsed URL shows it
    assert "tok3n-in-url" in vals and "ghp_" + "a" * 36 in vals  # credentials recognised by their value
    assert "/root/home-dir" not in vals and PLANTED["HARMLESS_SETTING"] not in vals
    text = f"url={PLANTED['DATABASE_URL']} pw=Pl4nted-DB-pass other=https://x:y@h/ home=/root/home-dir"
    assert report.redact(text, vals) == ("url=[redacted] pw=[redacted] other=https://[redacted]@h/ "
                                         "home=/root/home-dir")


def test_kernel_environment_yields_the_secrets_it_scrubbed(monkeypatch):
    """The bug: the value list was built after scrubbing, so it was always empty."""
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    with report.kernel_environment() as secrets:
        assert PLANTED["DATABASE_URL"] in secrets and PLANTED["MY_PASS"] in secrets
        assert "DATABASE_URL" not in os.environ and "SENTRY_DSN" not in os.environ
        assert os.environ["HARMLESS_SETTING"] == PLANTED["HARMLESS_SETTING"]
    assert os.environ["DATABASE_URL"] == PLANTED["DATABASE_URL"]  # restored afterwards


@pytest.mark.slow
def test_secret_printed_by_a_cell_is_redacted_from_html_and_ipynb(tmp_path, monkeypatch):
    """A cell prints planted secrets (read from a file) and the credential variables of its environment."""
    wh = tmp_path / "wh.duckdb"
    fk.ingest(str(GOOD_FOCUS), warehouse=str(wh), progress=False)
    secret_file = tmp_path / "leak.txt"
    secret_file.write_text("\n".join(f"{k}={v}" for k, v in PLANTED.items()), encoding="utf-8")
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "out"
    code = main(["report", str(LEAK_NB), "--warehouse", str(wh), "--out", str(out),
                 "-p", f"secret_file={secret_file}", "-p", f"names=[{', '.join(PLANTED)}]"])
    assert code == 0
    html_text = next(out.glob("secret_leak*.html")).read_text(encoding="utf-8")
    ipynb_text = next(out.glob("secret_leak*.ipynb")).read_text(encoding="utf-8")
    for text in (html_text, ipynb_text):
        for name, value in PLANTED.items():
            if name == "HARMLESS_SETTING":
                assert value in text  # the cell really printed the file...
            else:
                assert value not in text, f"{name} leaked"  # ...but no credential survived
        assert "Pl4nted-DB-pass" not in text and "[redacted]" in text
    executed = nbformat.reads(ipynb_text, as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.output_type == "stream")
    assert "'DATABASE_URL': None" in printed and "'SENTRY_DSN': None" in printed  # scrubbed from the kernel
    assert f"'HARMLESS_SETTING': '{PLANTED['HARMLESS_SETTING']}'" in printed
