"""Hostile inputs and faults (issue 15): every case is refused with exit 2 and ONE stderr line that names the file,
row/column or setting, and leaves the warehouse exactly as it was (row count, money total, content hash).

The cases are the findings of an adversarial run against the CLI, the S3 path and the report runner; each one
failed before its fix (a traceback, a silent exit 0, a file written outside the cache, a leaked secret). The
fuzz step at the end mutates the committed samples with a fixed seed and asserts the same three properties.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import nbformat
import pytest

import finops_kit as fk
from finops_kit import report
from finops_kit.cli import main

REPO = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"
GOOD_FOCUS = FIX / "focus" / "quirky_focus_1_2.csv"
LEAK_NB = FIX / "notebooks" / "secret_leak.ipynb"
SMOKE_NB = FIX / "notebooks" / "report_smoke.ipynb"


# -- the three properties ---------------------------------------------------------------------------------------

def state(warehouse: Path) -> tuple | None:
    """(row count, money total, content hash) of a warehouse; None when there is no file.

    The hash covers every row of the FOCUS table, the ingest log and the reconciliation proof, and the column
    lists, so a dropped table, a half-written ingest or an added column all change it.
    """
    if not warehouse.exists():
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows, money = con.execute("SELECT count(*), sum(BilledCost) FROM focus").fetchone()
        h = hashlib.sha256()
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            digest = con.execute(f"SELECT md5(coalesce(string_agg(md5(CAST(t AS VARCHAR)), ',' ORDER BY "
                                 f"md5(CAST(t AS VARCHAR))), '')) FROM {table} t").fetchone()[0]
            h.update(f"{table}:{cols}:{digest};".encode())
        return rows, money, h.hexdigest()
    finally:
        con.close()


def refused(args: list[str], warehouse: Path, capsys, pattern: str, code: int = 2) -> str:
    """Run the CLI; assert the exit code, ONE stderr line matching ``pattern`` and the warehouse unchanged."""
    before = state(warehouse)
    got = main(args)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("finops-kit: "), err
    assert "Traceback" not in err
    assert re.search(pattern, err), err
    assert state(warehouse) == before
    return err


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("template") / "wh.duckdb"
    fk.ingest(str(GOOD_FOCUS), warehouse=str(wh), progress=False)
    return wh


@pytest.fixture()
def wh(template, tmp_path) -> Path:
    """A copy of a small loaded warehouse for one test."""
    target = tmp_path / "wh.duckdb"
    shutil.copy(template, target)
    return target


def _focus_rows() -> list[list[str]]:
    return list(csv.reader(GOOD_FOCUS.open(newline="", encoding="utf-8")))


def _csv(path: Path, rows: list[list[str]], tail: str = "") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue() + tail, encoding="utf-8")
    return str(path)


def _ingest(paths: list[str], warehouse: Path) -> list[str]:
    return ["ingest", *paths, "--warehouse", str(warehouse), "--no-progress"]


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
           "SOMETHING": "ghp_" + "a" * 36, "PWD": "/work/project-dir", "OLDPWD": "/work/old-dir"}
    vals = report.secret_values(env)
    for name in ("DATABASE_URL", "SLACK_WEBHOOK_URL", "SENTRY_DSN", "MY_PASS", "AWS_SECRET_ACCESS_KEY"):
        assert PLANTED[name] in vals, name
    assert "Pl4nted-DB-pass" in vals  # the password alone, as a cell printing a parsed URL shows it
    assert "tok3n-in-url" in vals and "ghp_" + "a" * 36 in vals  # credentials recognised by their value
    assert "/root/home-dir" not in vals and PLANTED["HARMLESS_SETTING"] not in vals
    assert "/work/project-dir" not in vals and "/work/old-dir" not in vals  # PWD is no password
    # settings of the cloud SDKs are no secrets: redacting "us-east-1" and "default" blanked every region and
    # profile name in the pages, CSV downloads and report names of a run with AWS_DEFAULT_REGION set
    sdk = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_PROFILE": "default", "AWS_REGION": "eu-west-1",
           "AZURE_CLIENT_ID": "00000000-1111-2222-3333-444444444444", "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEB0aD",
           "AZURE_CLIENT_SECRET": "az-client-s3cret"}
    assert set(report.secret_values(sdk)) == {"FwoGZXIvYXdzEB0aD", "az-client-s3cret"}
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


# -- configuration never reaches SQL as text (issue 15.3) -------------------------------------------------------

def test_pio_environment_variable_is_not_pasted_into_sql(wh, tmp_path, monkeypatch, capsys):
    """PIO='false; DROP TABLE ingest_log' dropped the table before the (failing) ingest started."""
    monkeypatch.setenv("PIO", "false; DROP TABLE ingest_log")
    bad = _focus_rows()
    bad[1][1] = "ten"
    refused(_ingest([_csv(tmp_path / "bad.csv", bad)], wh), wh, capsys, r"bad\.csv, row 1, column 'BilledCost'")
    assert main(_ingest([str(GOOD_FOCUS)], wh)) == 0  # and a good ingest ignores it
    con = fk.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 2
    con.close()


@pytest.mark.parametrize("value", ["1GB'; DROP TABLE ingest_log; --", "2 GBB", "lots", "-1GB", "0MB"])
def test_memory_limit_is_validated(wh, monkeypatch, capsys, value):
    monkeypatch.setenv("FINOPS_MEMORY_LIMIT", value)
    refused(_ingest([str(GOOD_FOCUS)], wh), wh, capsys,
            r"FINOPS_MEMORY_LIMIT=.*expected a memory size such as 2GB")
    refused(["reconcile", "--warehouse", str(wh)], wh, capsys, r"FINOPS_MEMORY_LIMIT=")


def test_memory_limit_accepts_sizes(wh, monkeypatch):
    for value in ("2GB", "512MiB", "1.5 GB", "50%"):
        monkeypatch.setenv("FINOPS_MEMORY_LIMIT", value)
        fk.connect(str(wh), read_only=True).close()


# -- bounded reads (issue 15.4) ---------------------------------------------------------------------------------

def test_gzip_whose_first_line_expands_to_2_gib_fails_fast(wh, tmp_path, capsys):
    """2 MB of gzip members expanding to one 2 GiB line: the header read used to take it all into memory."""
    member = gzip.compress(b"A" * (1 << 20), 1)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(member * 2048)
    t0 = time.monotonic()
    refused(_ingest([str(bomb)], wh), wh, capsys, r"bomb\.csv\.gz, row 1: the first line is longer than 8 MiB")
    assert time.monotonic() - t0 < 10


def test_yaml_alias_bomb_is_refused(wh, tmp_path, capsys):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    cfg = tmp_path / "finops.yaml"
    cfg.write_text("budgets:\n  items: []\nalerts:\n  bomb:\n" + "\n".join("    " + x for x in lines) + "\n")
    t0 = time.monotonic()
    refused(["check", "--warehouse", str(wh), "--config", str(cfg)], wh, capsys,
            r"finops\.yaml: the YAML expands to more than 200,000 values through aliases")
    assert time.monotonic() - t0 < 10


# -- configuration files (issue 15.9, 15.11) --------------------------------------------------------------------

def test_config_problems_are_one_line(wh, tmp_path, capsys):
    folder = tmp_path / "conf.yaml"
    folder.mkdir()
    refused(["check", "--warehouse", str(wh), "--config", str(folder)], wh, capsys, r"conf\.yaml: is a folder")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"budgets:\n  items:\n    - name: caf\xe9\n      monthly: 5\n")
    refused(["check", "--warehouse", str(wh), "--config", str(latin)], wh, capsys,
            r"latin\.yaml: line 3: not UTF-8 text \(byte 0xe9\)")
    text = tmp_path / "thresholds.yaml"
    text.write_text("budgets:\n  thresholds: [eighty, 100]\n  items:\n    - name: all\n      monthly: 5\n")
    refused(["check", "--warehouse", str(wh), "--config", str(text)], wh, capsys,
            r"budgets\.thresholds: expected a list of % numbers")
    typo = tmp_path / "typo.yaml"
    typo.write_text("budgetz:\n  items:\n    - name: all\n      monthly: 1\n")
    refused(["check", "--warehouse", str(wh), "--config", str(typo)], wh, capsys,
            r"typo\.yaml: budgetz: unknown section \(did you mean 'budgets'\?")
    refused(["report", str(SMOKE_NB), "--warehouse", str(wh), "--out", str(tmp_path / "o"), "--config", str(typo)],
            wh, capsys, r"budgetz: unknown section")
    assert not (tmp_path / "o").exists()


def test_a_config_read_again_is_a_copy_and_an_edited_or_broken_file_is_read_anew(tmp_path):
    # load_config keeps what it parsed (a report asks 3-10 times): never at the price of a stale or shared config
    from finops_kit.config import load_config
    from finops_kit.errors import ConfigError

    conf = tmp_path / "finops.yaml"
    conf.write_text("budgets:\n  items:\n    - name: all\n      monthly: 5\n")
    first = load_config(conf)
    first["budgets"]["items"][0]["monthly"] = 999  # a caller changing its copy
    assert load_config(conf)["budgets"]["items"][0]["monthly"] == 5
    conf.write_text("budgets:\n  items:\n    - name: all\n      monthly: 7\n")  # same size, new contents
    assert load_config(conf)["budgets"]["items"][0]["monthly"] == 7
    conf.write_text("budgetz: {}\n")
    with pytest.raises(ConfigError, match="budgetz: unknown section"):
        load_config(conf)
    with pytest.raises(ConfigError, match="budgetz: unknown section"):  # an error is never kept as an answer
        load_config(conf)


# -- opening the warehouse (issue 15.9) -------------------------------------------------------------------------

def _commands(target: Path, tmp_path: Path) -> list[list[str]]:
    return [_ingest([str(GOOD_FOCUS)], target), ["reconcile", "--warehouse", str(target)],
            ["export", "--out", str(tmp_path / "x.parquet"), "--warehouse", str(target)],
            ["check", "--warehouse", str(target), "--config", str(tmp_path / "none.yaml")]]


@pytest.mark.parametrize("kind, pattern", [
    ("directory", r"is a folder; --warehouse expects a \.duckdb file"),
    ("empty", r"empty \(0 bytes\); expected a finops-kit warehouse"),
    ("garbage", r"not a DuckDB warehouse file \(4,096 bytes\)"),
    ("truncated", r"truncated or damaged .*expected a finops-kit warehouse"),
    ("parent_is_file", r"is a file, not a folder"),
])
def test_warehouse_that_cannot_be_opened(template, tmp_path, capsys, kind, pattern):
    (tmp_path / "none.yaml").write_text("{}\n")
    target = tmp_path / "wh.duckdb"
    if kind == "directory":
        target.mkdir()
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "garbage":
        target.write_bytes(bytes(range(256)) * 16)
    elif kind == "truncated":
        data = template.read_bytes()
        target.write_bytes(data[: len(data) // 3])
    else:
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "wh.duckdb"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for args in _commands(target, tmp_path):
        # readers of a path whose parent is a file report a missing warehouse
        pattern_here = r"no warehouse here" if kind == "parent_is_file" and args[0] != "ingest" else pattern
        got = main(args)
        err = capsys.readouterr().err.strip()
        assert got == 2 and len(err.splitlines()) == 1 and re.search(pattern_here, err), (args[0], err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created, nothing changed


def test_a_warehouse_that_shrank_is_not_called_damaged(tmp_path):
    """DuckDB cuts free blocks off the end of the file at a checkpoint but still counts them in total_blocks when the
    file is opened again: a restatement smaller than the month it replaced left a healthy warehouse that every
    command refused as "truncated or damaged" (a review found it after an ingest that exited 0). Only the used
    blocks must be in the file."""
    import duckdb

    import finops_kit as fk

    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE keep AS SELECT range AS i FROM range(1000)")
    con.execute("CHECKPOINT")
    con.execute("CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(300000)")
    con.execute("CHECKPOINT")
    con.execute("DROP TABLE big")
    con.execute("CHECKPOINT")
    con.close()
    with duckdb.connect(str(path), read_only=True) as plain:
        size, blocks, free = plain.execute(
            "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()").fetchone()
    assert free > 0 and path.stat().st_size < 3 * 4096 + blocks * size  # the shape the review found
    with fk.connect(str(path), read_only=True) as opened:
        assert opened.execute("SELECT count(*) FROM keep").fetchone() == (1000,)


HOLDER = """
import sys, time
import finops_kit as fk
con = fk.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_locked_warehouse_names_the_holder(wh, tmp_path, capsys, mode):
    """A lock held by another ingest (rw) or a report kernel / notebook (ro): who holds it and what to do."""
    before = state(wh)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(wh), mode], stdout=subprocess.PIPE, text=True,
                              cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "ready"
        got = main(_ingest([str(GOOD_FOCUS)], wh))
        err = capsys.readouterr().err.strip()
        assert got == 75 and len(err.splitlines()) == 1, err  # temporary (EX_TEMPFAIL): a scheduler retries
        assert f"the warehouse is in use by PID {holder.pid} (python" in err and "retry" in err
        if mode == "ro":
            assert "close that session" in err and "read_only=True" not in err  # the reader's owner can act
        else:
            assert main(["reconcile", "--warehouse", str(wh)]) == 75  # a writer blocks readers too
            err = capsys.readouterr().err.strip()
            assert f"in use by PID {holder.pid}" in err and len(err.splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    assert state(wh) == before


# -- failed commands change nothing (issue 15.8) ----------------------------------------------------------------

def test_failed_ingest_into_a_missing_folder_creates_nothing(tmp_path, capsys):
    bad = _focus_rows()
    bad[2][1] = "ten"
    target = tmp_path / "new" / "deeper" / "wh.duckdb"
    refused(_ingest([_csv(tmp_path / "bad.csv", bad)], target), target, capsys,
            r"bad\.csv, row 2, column 'BilledCost': cannot parse 'ten'")
    assert not (tmp_path / "new").exists()
    # the same from Python: fk.ingest left new/deeper/wh.duckdb behind
    import finops_kit as fk
    from finops_kit.errors import InputError

    with pytest.raises(InputError, match="cannot parse 'ten'"):
        fk.ingest(str(tmp_path / "bad.csv"), warehouse=str(target))
    assert not (tmp_path / "new").exists()


def test_export_where_errors_are_one_line_and_write_nothing(wh, tmp_path, capsys):
    out = tmp_path / "sub" / "x.parquet"
    for where in ("nosuchcolumn = 1", "BilledCost >", "1; DROP TABLE focus"):
        refused(["export", "--out", str(out), "--warehouse", str(wh), "--where", where], wh, capsys,
                r"--where .*(Binder Error|Parser Error|not several statements)")
    assert not (tmp_path / "sub").exists()
    (tmp_path / "adir.parquet").mkdir()
    refused(["export", "--out", str(tmp_path / "adir.parquet"), "--warehouse", str(wh)], wh, capsys, r"is a folder")


def test_report_out_that_is_a_file(wh, tmp_path, capsys):
    out = tmp_path / "reports"
    out.write_text("not a folder")
    refused(["report", str(SMOKE_NB), "--warehouse", str(wh), "--out", str(out)], wh, capsys,
            r"--out .*reports: is a file; expected a folder")


def test_report_names_of_different_values_never_collide():
    """-p top_n=-5 overwrote the top_n=5 report (the slug dropped the sign)."""
    names = {report.report_name("nb", {"top_n": v}) for v in (5, -5, "5", "-5", "+5", "5.0", " 5")}
    assert len(names) == 5  # 5 and "5", -5 and "-5" are the same -p value on the command line
    assert report.report_name("nb", {"top_n": 5}) == "nb__top_n-5"  # plain values keep their readable name


# -- interrupts (issue 15.9) ------------------------------------------------------------------------------------

def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux /proc): the ingest has opened the warehouse."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("existing", [False, True])
def test_sigint_exits_130_with_one_line_and_writes_nothing(template, tmp_path, existing):
    """Ctrl-C during an ingest: DuckDB turned it into "RuntimeError: Query interrupted" and a traceback."""
    target = tmp_path / "out" / "wh.duckdb"
    if existing:
        target.parent.mkdir()
        shutil.copy(template, target)
    before = state(target)
    proc = subprocess.Popen([sys.executable, "-m", "finops_kit.cli",
                             *_ingest([str(REPO / "data" / "samples" / "aws-cur2")], target)],
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 60
    while not _has_open(proc.pid, target) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # the warehouse is open: the ingest is staging and mapping (~3 s of work)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["finops-kit: interrupted (Ctrl-C); an interrupted ingest writes nothing"]
    if existing:
        assert state(target) == before
    else:
        assert not (tmp_path / "out").exists()


# -- misleading one-liners (issue 15.10) ------------------------------------------------------------------------

def test_malformed_csv_rows_are_named_not_reported_as_missing_columns(wh, tmp_path, capsys):
    """A ragged row or an unterminated quote made DuckDB's sniffer read one column: "missing BilledCost"."""
    rows = _focus_rows()
    short = _csv(tmp_path / "short.csv", rows[:2] + [rows[2][:10]] + rows[3:])
    refused(_ingest([short], wh), wh, capsys,
            r"short\.csv, row 2: malformed CSV row: 10 fields where the header has 28")
    long = _csv(tmp_path / "long.csv", rows[:3] + [rows[3] + ["x", "y"]])
    refused(_ingest([long], wh), wh, capsys, r"long\.csv, row 3: malformed CSV row: 30 fields")
    quote = _csv(tmp_path / "quote.csv", rows[:3], ",".join(rows[3][:9]) + ',"unterminated,' + ",".join(rows[3][10:]))
    refused(_ingest([quote], wh), wh, capsys, r"quote\.csv, row 3: malformed CSV \(unexpected end of data")


def test_required_column_twice_in_different_case(wh, tmp_path, capsys):
    rows = _focus_rows()
    twice = _csv(tmp_path / "twice.csv", [rows[0] + ["billedcost"]] + [r + [r[1]] for r in rows[1:]])
    refused(_ingest([twice], wh), wh, capsys,
            r"twice\.csv, column 'BilledCost': column 'BilledCost' appears more than once in different case "
            r"\('BilledCost', 'billedcost'\)")


def test_valid_3_mib_cell_is_accepted(wh, tmp_path, capsys):
    """DuckDB's default 2 MB line limit rejected it as "CSV Error on Line: 1"."""
    rows = _focus_rows()
    rows[2][rows[0].index("ChargeDescription")] = "x" * (3 << 20)
    path = _csv(tmp_path / "big_cell.csv", rows)
    assert main(_ingest([path], wh)) == 0, capsys.readouterr().err
    con = fk.connect(str(wh), read_only=True)
    assert con.execute("SELECT max(length(ChargeDescription)) FROM focus").fetchone()[0] == 3 << 20
    con.close()


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_export_then_ingest_round_trip(wh, tmp_path, capsys, suffix):
    """The kit's own export could not be re-ingested: Binder Error ... x_SourceFormat_1."""
    out = tmp_path / f"focus.{suffix}"
    assert main(["export", "--out", str(out), "--warehouse", str(wh)]) == 0
    again = tmp_path / "again.duckdb"
    assert main(_ingest([str(out)], again)) == 0, capsys.readouterr().err
    cols = ("count(*), sum(BilledCost), sum(EffectiveCost), string_agg(DISTINCT x_AiWorkload), "
            "string_agg(DISTINCT x_Team ORDER BY x_Team)")
    a, b = (duckdb.connect(str(w), read_only=True) for w in (wh, again))
    try:
        assert a.execute(f"SELECT {cols} FROM focus").fetchone() == b.execute(f"SELECT {cols} FROM focus").fetchone()
        assert b.execute("SELECT DISTINCT x_SourceFormat FROM focus").fetchall() == [("focus",)]
        assert b.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 1
    finally:
        a.close()
        b.close()
    assert main(["reconcile", "--warehouse", str(again)]) == 0


# -- a full or read-only disk (issue 15.9, 15.10) ---------------------------------------------------------------

INSIDE = """
import json, shutil, subprocess, sys
from pathlib import Path
from tests.test_hostile import state
mnt, template, mode, inputs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
wh = mnt / "wh.duckdb"
shutil.copy(template, wh)
if mode == "ro":
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
before = state(wh)
out = []
for target in (wh, mnt / "new" / "wh.duckdb"):
    p = subprocess.run([sys.executable, "-m", "finops_kit.cli", "ingest", *inputs, "--warehouse", str(target),
                        "--no-progress"], capture_output=True, text=True)
    out.append([p.returncode, p.stderr])
print(json.dumps({"runs": out, "same": state(wh) == before, "files": sorted(p.name for p in mnt.rglob("*"))}))
"""


def _in_tmpfs(tmp_path: Path, size: str, template: Path, mode: str, inputs: list[str]) -> dict:
    """Run INSIDE in a private mount namespace on a small tmpfs (nothing is mounted for anyone else)."""
    import json

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {mnt}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount a private tmpfs here (needs unshare and mount privileges)")
    cmd = (f"mount -t tmpfs -o size={size} tmpfs {mnt} && "
           f"{sys.executable} -c '{INSIDE}' {mnt} {template} {mode} " + " ".join(inputs))
    p = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("size", ["2M", "4M"])
def test_out_of_space_is_reported_as_such_and_changes_nothing(template, tmp_path, size):
    """Out of space was "cannot convert to FOCUS", or "no transaction is active" from the rollback at COMMIT."""
    got = _in_tmpfs(tmp_path, size, template, "rw", [str(REPO / "data" / "samples" / "aws-cur2")])
    for code, err in got["runs"]:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert re.search(r"wh\.duckdb: out of disk space while (writing|opening) the warehouse", err), err
    assert "nothing was written" in got["runs"][0][1]
    assert got["same"]
    assert "new" not in got["files"]  # the failed ingest into a new folder left nothing behind


def test_read_only_file_system(template, tmp_path):
    got = _in_tmpfs(tmp_path, "8M", template, "ro", [str(GOOD_FOCUS)])
    for code, err in got["runs"]:
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "read-only file system; the warehouse cannot be written here" in err
    assert got["same"]


GCP_FIX = FIX / "gcp" / "credits_export.jsonl"


def test_malformed_gcp_json_line_names_the_row(wh, tmp_path, capsys):
    """A broken NDJSON line was a traceback (the diagnosis re-read the file and raised)."""
    lines = GCP_FIX.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:-40]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused(_ingest([str(path)], wh), wh, capsys,
            r"broken\.jsonl, row 3: malformed JSON \(Unterminated string .*\); expected one JSON object per line")


@pytest.mark.parametrize("amount", [float("nan"), "NaN", "two"])
def test_unparseable_gcp_credit_names_row_and_column(wh, tmp_path, capsys, amount):
    """A NaN credit gave "cannot convert to FOCUS (Conversion Error ...)" with no row or column."""
    import json

    recs = [json.loads(x) for x in GCP_FIX.read_text(encoding="utf-8").splitlines()]
    row = next(i for i, r in enumerate(recs, 1) if r.get("credits"))
    recs[row - 1]["credits"][0]["amount"] = amount
    path = tmp_path / "credit.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf-8")
    refused(_ingest([str(path)], wh), wh, capsys,
            rf"credit\.jsonl, row {row}, column 'credits\.amount': cannot parse credit amount '(NaN|two)'; "
            r"expected a number")


# -- fuzz: seeded mutations of the committed samples ------------------------------------------------------------

SAMPLES = REPO / "data" / "samples"
FUZZ_SEED = 1515
#: one committed file per format (the first month): small enough for ~25 ingests in well under a minute
FUZZ_FILES = {
    "aws-cur": "aws-cur-legacy/**/*.csv.gz",
    "aws-cur2": "aws-cur2/**/*.snappy.parquet",
    "gcp": "gcp/*.jsonl.gz",
    "azure": "azure/**/*.csv.gz",
}
#: mutations that destroy data must be refused; the others keep every value and may also be accepted, but then
#: the warehouse must hold exactly the same charges as before
DESTRUCTIVE = {"truncate", "flip"}
MUTATIONS = [(fmt, kind) for fmt in FUZZ_FILES for kind in ("truncate", "flip", "flip", "shuffle_columns",
                                                              "header_case", "duplicate")
             # a parquet page has no checksum unless its writer adds one: a flipped bit inside a snappy page is
             # undetectable by any reader, so flips are fuzzed on the gzip formats (which carry a CRC-32) only
             if not (fmt == "aws-cur2" and kind == "flip")]


def _sample(fmt: str) -> Path:
    return sorted(SAMPLES.glob(FUZZ_FILES[fmt]))[0]


def data_state(warehouse: Path, fold_key_case: bool = False) -> tuple:
    """(rows, money, hash of every charge without the per-ingest lineage): what an identical re-ingest keeps.

    JSON objects (Tags, cost categories) are compared as objects: member order carries no meaning, and a file
    with its columns in another order lists its tags in another order. ``fold_key_case``: tag keys compared
    without case, for a header whose case was changed (a CUR tag key is spelled by its column name).
    """
    import json

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute("SELECT * EXCLUDE (x_IngestId, x_SourceFile) FROM focus")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()

    def canon(name: str, v: object) -> object:
        if isinstance(v, str) and v.startswith("{") and name in ("Tags", "x_CostCategories"):
            obj = json.loads(v)
            return json.dumps({(k.lower() if fold_key_case else k): x for k, x in obj.items()}, sort_keys=True)
        return v

    digests = sorted(hashlib.md5(repr([canon(n, v) for n, v in zip(names, r, strict=True)]).encode()).hexdigest()
                     for r in rows)
    money = sum((r[names.index("BilledCost")] for r in rows if r[names.index("BilledCost")] is not None), start=0)
    return len(rows), money, hashlib.md5(",".join(digests).encode()).hexdigest()


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("fuzz") / "base.duckdb"
    for fmt in FUZZ_FILES:
        fk.ingest([str(_sample(fmt))], warehouse=str(wh), progress=False)
    return wh


def _rewrite_text(raw: bytes, gz: bool, change) -> bytes:
    text = (gzip.decompress(raw) if gz else raw).decode("utf-8")
    out = change(text).encode("utf-8")
    return gzip.compress(out, 6, mtime=0) if gz else out


def _shuffle_csv(rng):
    def change(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        order = list(range(len(rows[0])))
        rng.shuffle(order)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([[r[i] for i in order] for r in rows if r])
        return out.getvalue()
    return change


def _shuffle_json(rng):
    import json

    def change(text: str) -> str:
        recs = [json.loads(x) for x in text.splitlines() if x.strip()]
        keys = list(recs[0])
        rng.shuffle(keys)
        return "".join(json.dumps({k: r[k] for k in keys if k in r} | r) + "\n" for r in recs)
    return change


def mutate(fmt: str, kind: str, index: int, folder: Path) -> list[Path]:
    """The mutated file(s) for one fuzz case, from the committed sample and a seed fixed per case."""
    import pyarrow.parquet as pq

    rng = __import__("random").Random(FUZZ_SEED * 100 + index)
    src = _sample(fmt)
    raw = src.read_bytes()
    suffix = "".join(src.suffixes[-2:])
    target = folder / f"{fmt}-{kind}-{index}{suffix}"
    gz = src.name.endswith(".gz")
    if kind == "truncate":
        target.write_bytes(raw[: rng.randrange(len(raw) // 10, len(raw) * 9 // 10)])
    elif kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
    elif kind == "duplicate":
        twin = folder / f"{fmt}-{kind}-{index}-copy{suffix}"
        target.write_bytes(raw)
        twin.write_bytes(raw)
        return [target, twin]
    elif fmt == "aws-cur2":
        table = pq.read_table(src)
        if kind == "shuffle_columns":
            names = list(table.column_names)
            rng.shuffle(names)
            table = table.select(names)
        else:
            table = table.rename_columns([n.upper() for n in table.column_names])
        pq.write_table(table, target, compression="snappy")
    elif kind == "shuffle_columns":
        target.write_bytes(_rewrite_text(raw, gz, _shuffle_json(rng) if fmt == "gcp" else _shuffle_csv(rng)))
    else:  # header_case: the first line (CSV header) or every JSON key in upper case
        import json

        def upper(text: str) -> str:
            if fmt == "gcp":
                return "".join(json.dumps({k.upper(): v for k, v in json.loads(x).items()}) + "\n"
                               for x in text.splitlines() if x.strip())
            head, _, rest = text.partition("\n")
            return head.upper() + "\n" + rest
        target.write_bytes(_rewrite_text(raw, gz, upper))
    return [target]


@pytest.mark.parametrize("index, fmt, kind", [(i, f, k) for i, (f, k) in enumerate(MUTATIONS)],
                         ids=[f"{i}-{f}-{k}" for i, (f, k) in enumerate(MUTATIONS)])
def test_fuzz_mutated_samples(fuzz_base, tmp_path, capsys, index, fmt, kind):
    wh = tmp_path / "wh.duckdb"
    shutil.copy(fuzz_base, wh)
    files = mutate(fmt, kind, index, tmp_path)
    fold = kind == "header_case"
    before, before_data = state(wh), data_state(wh, fold)
    code = main(_ingest([str(f) for f in files], wh))
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    if code == 2:  # refused: one line naming the mutated file, nothing changed
        assert len(err.splitlines()) == 1 and err.startswith("finops-kit: error: "), err
        assert any(f.name in err for f in files), err
        assert state(wh) == before
    else:  # accepted: only a mutation that kept every value, and then the same charges as before
        assert code == 0 and kind not in DESTRUCTIVE, (code, err)
        assert data_state(wh, fold) == before_data


# -- FOCUS input checks (issue 15.10/15.11; implemented with the FOCUS data-quality rules) -----------------------

@pytest.mark.parametrize("case, pattern", [
    ("tags_array", r"tags_array\.csv, row 2, column 'Tags': .*expected a JSON object"),
    ("tags_bad_json", r"tags_bad_json\.csv, row 2, column 'Tags': cannot parse .*expected a JSON object"),
    ("no_currency", r"no_currency\.csv, row 1, column 'BillingCurrency': .*expected an ISO 4217 currency code"),
    ("billed_twice", r"billed_twice\.csv, column 'BilledCost': column 'BilledCost' appears more than once 2 times"),
])
def test_focus_input_problems_are_named(wh, tmp_path, capsys, case, pattern):
    rows = _focus_rows()
    head = rows[0]
    tags, cur, billed = head.index("Tags"), head.index("BillingCurrency"), head.index("BilledCost")
    if case == "tags_array":
        rows[2][tags] = '["team", "vision"]'
    elif case == "tags_bad_json":
        rows[2][tags] = '{"team": "vision"'
    elif case == "no_currency":
        for r in rows[1:]:
            r[cur] = ""
    else:
        rows = [r + [r[billed]] for r in rows]
    refused(_ingest([_csv(tmp_path / f"{case}.csv", rows)], wh), wh, capsys, pattern)


# -- extra columns, encodings, archives and literal paths (hostile-input review, round 2) ---------------------------

@pytest.mark.parametrize("extra, expected", [
    (["cost center", "cost-center"], ["x_cost_center", "x_cost_center_2"]),
    (["MyTag", "x_MyTag"], ["x_MyTag_2", "x_MyTag"]),  # the column spelled as its x_ name keeps it
    (["Kostenstelle_ü", "Kostenstelle_é"], ["x_Kostenstelle", "x_Kostenstelle_2"]),
    (["cost center 2", "cost center", "cost-center"], ["x_cost_center_2", "x_cost_center", "x_cost_center_3"]),
    (["x_sourcefile"], ["x_sourcefile_2"]),  # DuckDB names are case-insensitive: not the lineage x_SourceFile
])
def test_extra_columns_whose_x_names_coincide_are_all_kept(tmp_path, capsys, extra, expected):
    """Two harmless extra columns with one x_ name were refused: 'Binder Error ... x_cost_center_1'."""
    rows = _focus_rows()
    values = [f"v{i}" for i in range(len(extra))]
    path = _csv(tmp_path / "extra.csv", [rows[0] + extra] + [r + values for r in rows[1:]])
    wh = tmp_path / "wh.duckdb"
    for _ in range(2):  # a re-ingest of the same file writes the same names
        assert main(_ingest([path], wh)) == 0, capsys.readouterr().err
        con = duckdb.connect(str(wh), read_only=True)
        try:
            got = con.execute(f"SELECT DISTINCT {', '.join(expected)}, x_SourceFile FROM focus").fetchall()
        finally:
            con.close()
        assert got == [(*values, path)]


def _unicode_focus() -> str:
    """The good FOCUS file with one accented letter on line 2 (and nothing Latin-1 cannot encode)."""
    text = GOOD_FOCUS.read_text(encoding="utf-8").replace("größe-😀", "gross")
    assert text.index("Acme") < text.index("\n", text.index("\n") + 1)
    return text.replace("Acme", "Café", 1)


def _zipped(name: str, text: str) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(name, text)
    return out.getvalue()


@pytest.mark.parametrize("name, content, pattern", [
    ("utf16.csv", lambda t: t.encode("utf-16"),
     r"utf16\.csv: not UTF-8 text \(UTF-16 little-endian, by its byte order mark\); expected UTF-8"),
    ("utf16be.csv", lambda t: t.encode("utf-16-be"),
     r"utf16be\.csv: not UTF-8 text \(UTF-16 big-endian: every other byte is NUL\); expected UTF-8"),
    ("latin1.csv", lambda t: t.encode("latin-1"),
     r"latin1\.csv: line 2: not UTF-8 text \(byte 0xe9 at byte offset {offset}; Windows-1252 or Latin-1\?\); "
     r"expected UTF-8"),
    ("latin1.csv.gz", lambda t: gzip.compress(t.encode("latin-1")),
     r"latin1\.csv\.gz: line 2: not UTF-8 text \(byte 0xe9 at byte offset {offset} of the uncompressed text"),
    ("header.csv", lambda t: t.replace("VendorExtra", "Kostenstelle_ü").encode("cp1252"),
     r"header\.csv: line 1: not UTF-8 text \(byte 0xfc at byte offset \d+;"),
    ("zipped.csv", lambda t: _zipped("zipped.csv", t), r"zipped\.csv: a ZIP archive, not CSV text"),
    ("gzipped.csv", lambda t: gzip.compress(t.encode()), r"gzipped\.csv: gzip-compressed, but not named \.gz"),
])
def test_a_file_that_is_not_utf8_text_says_so(wh, tmp_path, capsys, name, content, pattern):
    """Non-UTF-8 exports were 'malformed CSV' or 'unknown format; saw columns [<NUL bytes>...]'."""
    text = _unicode_focus()
    path = tmp_path / name
    path.write_bytes(content(text))
    offset = text.encode("latin-1").index(b"\xe9")
    err = refused(_ingest([str(path)], wh), wh, capsys, pattern.format(offset=offset))
    assert err.isprintable(), repr(err)


def test_a_bad_byte_beyond_the_first_mib_is_named_too(wh, tmp_path, capsys):
    """Past the part read_header checks, DuckDB's sniffer meets it at staging: still an encoding error, with its
    line (long rows: 1,200 of them are 1.6 MB, within the rows the sniffer reads)."""
    rows = _focus_rows()
    rows[1][rows[0].index("ChargeDescription")] = "GPU hours " + "x" * 1000
    body = [rows[1]] * 1200
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([rows[0], *body])
    bad = io.StringIO()
    csv.writer(bad, lineterminator="\n").writerow([v.replace("Acme", "Caf\xe9") for v in rows[2]])
    assert len(out.getvalue()) > 1 << 20
    path = tmp_path / "deep.csv"
    path.write_bytes(out.getvalue().encode() + bad.getvalue().encode("latin-1"))
    refused(_ingest([str(path)], wh), wh, capsys, r"deep\.csv: line 1202: not UTF-8 text \(byte 0xe9 at byte")


@pytest.mark.parametrize("name, pattern", [
    ("report.csv.zip", r"report\.csv\.zip: ZIP archives are not read; expected \.csv, \.csv\.gz"),
    ("report.tsv", r"report\.tsv: tab-separated files are not read; expected comma-separated \.csv"),
])
def test_zip_and_tsv_are_refused_up_front(wh, tmp_path, capsys, name, pattern):
    """Both suffixes were accepted, then read as binary ('saw columns [PK...]') or as one comma column."""
    text = GOOD_FOCUS.read_text(encoding="utf-8")
    path = tmp_path / name
    if name.endswith(".zip"):
        path.write_bytes(_zipped("report.csv", text))
    else:
        path.write_text("\n".join("\t".join(r) for r in _focus_rows()) + "\n", encoding="utf-8")
    err = refused(_ingest([str(path)], wh), wh, capsys, pattern)
    assert err.isprintable(), repr(err)


def test_an_existing_path_with_glob_characters_is_taken_literally(tmp_path, capsys):
    """'costs [final].csv' was expanded as a glob ('[final]' = one of f, i, n, a, l) and 'not found'."""
    folder = tmp_path / "exports [2026]"
    folder.mkdir()
    path = folder / "costs [final].csv"
    shutil.copy(GOOD_FOCUS, path)
    wh = tmp_path / "wh.duckdb"
    assert main(_ingest([str(path)], wh)) == 0, capsys.readouterr().err
    assert main(_ingest([str(folder)], tmp_path / "wh2.duckdb")) == 0, capsys.readouterr().err
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT x_SourceFile FROM focus").fetchall() == [(str(path),)]
    finally:
        con.close()


def test_utf8_check_is_exact_at_chunk_and_probe_boundaries(tmp_path):
    """A character split by the 1 MiB read is not an error (at the probe's limit neither); a bad byte after it is
    found at its byte offset and line, in a gzip file too."""
    from finops_kit.sources.base import ENCODING_PROBE_BYTES, first_non_utf8

    text = ("a" * ((1 << 20) - 1) + "é\n").encode() + "ok\nCaf\xe9\n".encode("latin-1")
    for name, data in (("split.csv", text), ("split.csv.gz", gzip.compress(text))):
        path = tmp_path / name
        path.write_bytes(data)
        assert first_non_utf8(str(path), ENCODING_PROBE_BYTES) is None
        assert first_non_utf8(str(path)) == (text.index(b"\xe9\n"), 3, 0xE9)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"a,b\n1,\xc3")  # the file ends inside a character
    assert first_non_utf8(str(cut)) == (6, 2, 0xC3)


def test_an_x_column_differing_only_in_case_from_a_stored_one_is_the_same_column(tmp_path, capsys):
    """DuckDB's column names are case-insensitive: a warehouse holding ``x_costcentre`` and a later FOCUS file whose
    extra column is ``x_CostCentre`` failed with 'CatalogException ... already exists' (found after the x_ naming fix);
    the stored column takes the values."""
    import finops_kit as fk

    src = (Path(__file__).parent / "fixtures" / "focus" / "quirky_focus_1_2.csv").read_text(encoding="utf-8")
    header, *rows = src.splitlines()
    first = tmp_path / "a.csv"
    first.write_text("\n".join([header + ",x_costcentre"] + [r + ",alpha" for r in rows]) + "\n", encoding="utf-8")
    wh = str(tmp_path / "wh.duckdb")
    assert main(["ingest", str(first), "--warehouse", wh, "--no-progress"]) == 0
    second = tmp_path / "b.csv"
    other = [r.replace("2026", "2025") for r in rows]  # other billing periods: added, not replacing
    second.write_text("\n".join([header + ",x_CostCentre"] + [r + ",beta" for r in other]) + "\n", encoding="utf-8")
    got = main(["ingest", str(second), "--warehouse", wh, "--no-progress"])
    err = capsys.readouterr().err
    assert got == 0, err
    with fk.connect(wh, read_only=True) as con:
        cols = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE focus) WHERE lower(column_name) = "
                                          "'x_costcentre'").fetchall()]
        assert len(cols) == 1
        assert sorted(v for (v,) in con.execute(f'SELECT DISTINCT "{cols[0]}" FROM focus').fetchall()) == \
            ["alpha", "beta"]


# -- credentials in -p values and in CSV download links ------------------------------------------------------------

def _decoded_csv_links(text: str) -> list[str]:
    import base64

    return [base64.b64decode(m).decode("utf-8") for m in re.findall(r"data:text/csv;base64,([A-Za-z0-9+/=]+)", text)]


@pytest.mark.slow
def test_credentials_in_parameters_and_csv_links_never_reach_the_output_folder(tmp_path, monkeypatch):
    """``-p url=https://bob:Secret@host/x`` was written into index.html, index.json and the report's file names;
    a secret value that also occurs in the data was redacted from the page text but not from the base64 CSV
    download link (the kernel, scrubbed of the secret, cannot see it)."""
    wh = tmp_path / "wh.duckdb"
    fk.ingest(str(GOOD_FOCUS), warehouse=str(wh), progress=False)
    secret = "S3cretPassw0rd-planted"
    (tmp_path / "data.txt").write_text(f"db-{secret}\n", encoding="utf-8")
    book = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('warehouse = "data/warehouse.duckdb"\ndata_file = ""\nurl = ""')
    params.metadata["tags"] = ["parameters"]
    book.cells = [nbformat.v4.new_markdown_cell("# Leak via CSV"), params, nbformat.v4.new_code_cell(
        "import pandas as pd\nfrom IPython.display import display\nimport finops_kit.notebook as nb\n"
        "nb.setup(globals())\nvalue = open(data_file).read().strip()\n"
        "df = pd.DataFrame({'resource': [value, url, 'plain'], 'cost': [1.0, 2.0, 3.0]})\n"
        "display(nb.table(df, max_rows=1))")]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb_path = tmp_path / "csv_leak.ipynb"
    nbformat.write(book, str(nb_path))
    monkeypatch.setenv("SERVICE_PASSWORD", secret)
    out = tmp_path / "out"
    url = "https://bob:Hunter2Secret99@files.internal.example/advisor.json"
    code = main(["report", str(nb_path), "--warehouse", str(wh), "--out", str(out),
                 "-p", f"data_file={tmp_path / 'data.txt'}", "-p", f"url={url}"])
    assert code == 0
    files = sorted(out.iterdir())
    assert len(files) == 4  # index.html, index.json, the report and its executed notebook
    for f in files:
        text = f.read_text(encoding="utf-8")
        for leak in ("Hunter2Secret99", secret, "bob:"):
            assert leak not in f.name and leak not in text, (f.name, leak)
        if f.suffix in (".html", ".ipynb") and f.stem != "index":
            links = _decoded_csv_links(text)
            assert links and all("Hunter2Secret99" not in c and secret not in c for c in links), f.name
            assert "db-[redacted]" in links[0] and "https://[redacted]@files.internal.example" in links[0]
    index = (out / "index.json").read_text(encoding="utf-8")
    assert "https://[redacted]@files.internal.example/advisor.json" in index
