"""Delivery folders as AWS writes them: only the assembly / execution the period's manifest names is loaded."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import finops_kit as fk
from finops_kit.cli import main
from finops_kit.delivery import plan_delivery
from finops_kit.errors import InputError
from finops_kit.ingest import ingest
from tests.test_aws_sources import AMORTIZED, BILLED, SP_RI, _rows, _totals, cur2_table

OLD, NEW = "0e3a1c52-old0-4c1f-9d1e-000000000001", "7f1b2d63-new0-4a2b-8c3d-000000000002"


def make_legacy_delivery(root: Path, report: str = "cur-hourly") -> dict:
    """A restated January 2026 in the S3 key layout: an older assembly (one file, different numbers) and the
    current one (two files) named by the period's manifest; each assembly also holds its manifest copy."""
    period = root / report / "20260101-20260201"
    lines = SP_RI.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    old_body = [ln.replace(",32.77,", ",99.99,", 1) for ln in body]  # the earlier estimate of the month
    files = {
        OLD: {f"{report}-1.csv.gz": [header, *old_body]},
        NEW: {f"{report}-1.csv.gz": [header, *body[:7]], f"{report}-2.csv.gz": [header, *body[7:]]},
    }
    for asm, parts in files.items():
        (period / asm).mkdir(parents=True)
        for name, rows in parts.items():
            (period / asm / name).write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
        manifest = {"assemblyId": asm, "reportName": report, "compression": "GZIP", "contentType": "text/csv",
                    "billingPeriod": {"start": "20260101T000000.000Z", "end": "20260201T000000.000Z"},
                    "bucket": "billing-bucket",
                    "reportKeys": [f"prefix/{report}/20260101-20260201/{asm}/{n}" for n in parts]}
        (period / asm / f"{report}-Manifest.json").write_text(json.dumps(manifest))
        if asm == NEW:
            (period / f"{report}-Manifest.json").write_text(json.dumps(manifest))
    return {"period": period, "current": sorted(str(period / NEW / n) for n in files[NEW]),
            "old": str(period / OLD / f"{report}-1.csv.gz")}


def test_restated_legacy_period_loads_only_the_current_assembly(tmp_path, con):
    d = make_legacy_delivery(tmp_path / "bucket")
    res = ingest(str(tmp_path / "bucket"), con=con)
    assert sorted(res.files) == d["current"]
    assert [s["path"] for s in res.skipped] == [d["old"]]
    assert "superseded assembly" in res.skipped[0]["reason"] and NEW in res.skipped[0]["reason"]
    assert _totals(con) == (16, BILLED, AMORTIZED)  # the old assembly's 99.99 is not in any total
    logged = json.loads(con.execute("SELECT skipped FROM ingest_log").fetchone()[0])
    assert logged[0]["path"] == d["old"]


def test_period_folder_itself_and_idempotence(tmp_path, warehouse):
    d = make_legacy_delivery(tmp_path / "bucket")
    for _ in range(2):  # same delivery twice: replaced, not added
        fk.ingest(str(d["period"]), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)
        assert con.execute("SELECT count(*) FROM ingest_log WHERE status = 'active'").fetchone()[0] == 1
    finally:
        con.close()


def test_restatement_replaces_the_earlier_assembly(tmp_path, warehouse):
    """The old assembly's file, downloaded earlier and ingested then, is replaced by the delivery's current one."""
    d = make_legacy_delivery(tmp_path / "bucket")
    earlier = tmp_path / "earlier-download" / Path(d["old"]).name
    earlier.parent.mkdir()
    earlier.write_bytes(Path(d["old"]).read_bytes())
    fk.ingest(str(earlier), warehouse=warehouse)
    fk.ingest(str(tmp_path / "bucket"), warehouse=warehouse)
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)
    finally:
        con.close()


def test_manifest_naming_a_missing_file_is_an_error(tmp_path):
    d = make_legacy_delivery(tmp_path / "bucket")
    Path(d["current"][1]).unlink()
    with pytest.raises(InputError, match=r"cur-hourly-2\.csv\.gz: listed in the manifest of 20260101-20260201 but "
                                         r"not found; the delivery is incomplete"):
        ingest(str(tmp_path / "bucket"), con=fk.connect(":memory:"))


def make_cur2_export(root: Path, export: str = "cur2-daily") -> dict:
    """CUR 2.0 Data Exports layout: a January with a manifest (one listed part, one stale unlisted part) and a
    February whose data is there but whose manifest is not written yet."""
    table = cur2_table(_rows(SP_RI))
    out = {}
    for period in ("2026-01", "2026-02"):
        data = root / export / "data" / f"BILLING_PERIOD={period}"
        data.mkdir(parents=True)
        pq.write_table(table, data / f"{export}-00001.snappy.parquet")
        out[period] = str(data / f"{export}-00001.snappy.parquet")
    stale = root / export / "data" / "BILLING_PERIOD=2026-01" / f"{export}-00002.snappy.parquet"
    pq.write_table(table, stale)
    meta = root / export / "metadata" / "BILLING_PERIOD=2026-01"
    meta.mkdir(parents=True)
    (meta / f"{export}-Manifest.json").write_text(json.dumps({
        "executionId": "3f1c0e7a-0000-4000-8000-000000000001",
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:111111111111:export/cur2-daily-abc",
        "billingPeriod": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-02-01T00:00:00.000Z"},
        "columns": [], "dataFiles": [
            f"s3://billing-bucket/exports/{export}/data/BILLING_PERIOD=2026-01/{export}-00001.snappy.parquet"]}))
    return {"current": out["2026-01"], "stale": str(stale), "unfinished": out["2026-02"]}


def test_cur2_export_folder(tmp_path, con):
    d = make_cur2_export(tmp_path / "exports")
    res = ingest(str(tmp_path / "exports"), con=con)
    assert res.source_format == "aws-cur2"
    assert res.files == [d["current"]]
    reasons = {s["path"]: s["reason"] for s in res.skipped}
    assert "not listed in the current manifest" in reasons[d["stale"]]
    assert "no manifest for billing period BILLING_PERIOD=2026-02" in reasons[d["unfinished"]]
    assert _totals(con) == (16, BILLED, AMORTIZED)


def test_folder_without_manifest_loads_every_file(tmp_path, con):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.csv").write_bytes(SP_RI.read_bytes())
    res = ingest(str(tmp_path / "loose"), con=con)
    assert res.skipped == [] and _totals(con) == (16, BILLED, AMORTIZED)


def test_superseded_assembly_named_directly_is_skipped_by_the_manifest(tmp_path, con):
    """Naming files (or a glob) inside a delivery applies the period's manifest as a folder ingest does."""
    d = make_legacy_delivery(tmp_path / "bucket")
    res = ingest([d["old"], *d["current"]], con=con)
    assert sorted(res.files) == d["current"]
    assert [s["path"] for s in res.skipped] == [d["old"]] and NEW in res.skipped[0]["reason"]
    assert _totals(con) == (16, BILLED, AMORTIZED)
    with pytest.raises(InputError, match=r"nothing to ingest \(.*cur-hourly-1\.csv\.gz skipped: superseded"):
        ingest(d["old"], con=con)



# ---- a manifest decides only for the delivery it belongs to ------------------------------------------------------
#: a legacy CUR manifest of another report and month, as found loose in a downloads folder (the shape of
#: rudderlabs/ice's manifest-2019-12.json test resource: no reportKeys, a placeholder assembly id)
STRAY_EMPTY = {"assemblyId": "11111111-2222-3333-4444-555555555555", "reportName": "ReportName",
               "billingPeriod": {"start": "20191201T000000.000Z", "end": "20200101T000000.000Z"},
               "bucket": "ReportBucket", "reportKeys": []}
#: ... and one that lists two files of its own delivery, which are not in this folder (ice's manifestTest.json shape)
STRAY_LISTING = {"assemblyId": "abcdefgh-e98d-48d6-86b4-29967358fe6c", "reportName": "hourly-cost-and-usage",
                 "billingPeriod": {"start": "20170801T000000.000Z", "end": "20170901T000000.000Z"},
                 "bucket": "cost-and-usage-reports", "reportKeys": [
                     "hourly/hourly-cost-and-usage/20170801-20170901/abcdefgh-e98d-48d6-86b4-29967358fe6c/"
                     f"hourly-cost-and-usage-0{n}.csv.gz" for n in (1, 2)]}


def _loose_cur(path: Path) -> Path:
    """SP_RI moved to November 2025 and another payer: a CUR download of its own, no charge shared with January."""
    text = SP_RI.read_text(encoding="utf-8").replace("2026-02-01T", "2025-12-01T").replace("2026-01-", "2025-11-")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("111111111111", "333333333333"), encoding="utf-8")
    return path


@pytest.mark.parametrize("stray", [STRAY_EMPTY, STRAY_LISTING], ids=["no-report-keys", "lists-absent-files"])
@pytest.mark.parametrize("where", ["", "downloads/"], ids=["root", "subfolder"])
def test_stray_manifest_governs_no_unrelated_files(tmp_path, con, stray, where):
    """A manifest outside any billing-period folder, whose assembly and files are not there, is not part of a
    delivery: the loose CUR beside it loads (it was skipped as a 'superseded assembly', exit 0, its money lost),
    and the real delivery in the same folder is still read by its own manifest."""
    d = make_legacy_delivery(tmp_path / "bucket")
    loose = _loose_cur(tmp_path / "bucket" / f"{where}november.csv")
    (tmp_path / "bucket" / f"{where}manifest-2019-12.json").write_text(json.dumps(stray))
    res = ingest(str(tmp_path / "bucket"), con=con)
    assert sorted(res.files) == sorted([*d["current"], str(loose)])
    assert [s["path"] for s in res.skipped] == [d["old"]]
    assert _totals(con) == (32, 2 * BILLED, 2 * AMORTIZED)


def test_stray_manifest_alone_leaves_a_plain_folder(tmp_path, con):
    _loose_cur(tmp_path / "dl" / "november.csv")
    (tmp_path / "dl" / "manifest-2019-12.json").write_text(json.dumps(STRAY_EMPTY))
    res = ingest(str(tmp_path / "dl"), con=con)
    assert res.skipped == [] and _totals(con) == (16, BILLED, AMORTIZED)


def _period_listing(missing: bool = False) -> tuple[list[str], dict[str, dict]]:
    """The keys of an S3 prefix that ends at a period folder (``.../20260101-20260201/``): the period's manifest
    sits at the root of the listing, so no folder name says which billing period it is."""
    manifest = {"assemblyId": NEW, "reportName": "cur-hourly",
                "billingPeriod": {"start": "20260101T000000.000Z", "end": "20260201T000000.000Z"},
                "reportKeys": [f"p/cur-hourly/20260101-20260201/{NEW}/cur-hourly-{n}.csv.gz" for n in (1, 2)]}
    keys = ["cur-hourly-Manifest.json", f"{NEW}/cur-hourly-1.csv.gz", f"{OLD}/cur-hourly-1.csv.gz",
            f"{NEW}/cur-hourly-Manifest.json"]
    if not missing:
        keys.append(f"{NEW}/cur-hourly-2.csv.gz")
    return keys, {"cur-hourly-Manifest.json": manifest, f"{NEW}/cur-hourly-Manifest.json": manifest}


def test_manifest_at_the_root_of_a_period_listing_still_governs():
    keys, manifests = _period_listing()
    plan = plan_delivery(keys, manifests.__getitem__)
    assert plan.load == [f"{NEW}/cur-hourly-1.csv.gz", f"{NEW}/cur-hourly-2.csv.gz"]
    assert [s["path"] for s in plan.skipped] == [f"{OLD}/cur-hourly-1.csv.gz"]


def test_incomplete_delivery_message_always_names_the_period():
    """The listing root has no folder name: the message names the manifest's own billing period, never a blank."""
    keys, manifests = _period_listing(missing=True)
    with pytest.raises(InputError, match=rf"^{NEW}/cur-hourly-2\.csv\.gz: listed in the manifest of "
                                         r"20260101-20260201 but not found; the delivery is incomplete"):
        plan_delivery(keys, manifests.__getitem__)


def test_manifest_of_another_month_in_a_period_folder_is_refused(tmp_path):
    """A period folder whose manifest states another billing period cannot say which files are current there:
    one line naming the manifest and both periods (it used to skip the whole month as superseded, exit 0)."""
    d = make_legacy_delivery(tmp_path / "bucket")
    (d["period"] / "cur-hourly-Manifest.json").write_text(json.dumps(STRAY_EMPTY))
    with pytest.raises(InputError, match=r"cur-hourly/20260101-20260201/cur-hourly-Manifest\.json: .*billing period "
                                         r"20191201-20200101 .* folder 20260101-20260201"):
        ingest(str(tmp_path / "bucket"), con=fk.connect(":memory:"))


def test_two_manifests_naming_different_assemblies_of_one_period_are_refused(tmp_path):
    """Which one is current is not in the listing (before, the one sorted last silently won)."""
    d = make_legacy_delivery(tmp_path / "bucket")
    other = json.loads((d["period"] / "cur-hourly-Manifest.json").read_text()) | {"assemblyId": OLD, "reportKeys": [
        f"prefix/cur-hourly/20260101-20260201/{OLD}/cur-hourly-1.csv.gz"]}
    (d["period"] / "copy-of-Manifest.json").write_text(json.dumps(other))
    with pytest.raises(InputError, match=rf"two manifests .*{OLD}.*{NEW}|two manifests .*{NEW}.*{OLD}"):
        ingest(str(tmp_path / "bucket"), con=fk.connect(":memory:"))


# ---- a final (invoiced) month is never replaced by an estimate of it ---------------------------------------------
INVOICED = "3f5a7b9c-fin0-4d2e-9a1b-000000000003"


def add_invoiced_assembly(period: Path, report: str = "cur-hourly") -> None:
    """AWS finalizes the month: a new assembly whose rows carry bill/InvoiceId, named by the period's manifest."""
    rows = _rows(SP_RI)
    for r in rows:
        r["bill/InvoiceId"] = "EUINGB26-000123"
    (period / INVOICED).mkdir(parents=True)
    with gzip.open(period / INVOICED / f"{report}-1.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    manifest = {"assemblyId": INVOICED, "reportName": report,
                "billingPeriod": {"start": "20260101T000000.000Z", "end": "20260201T000000.000Z"},
                "reportKeys": [f"prefix/{report}/{period.name}/{INVOICED}/{report}-1.csv.gz"]}
    for where in (period, period / INVOICED):
        (where / f"{report}-Manifest.json").write_text(json.dumps(manifest))


def _cli(args: list[str], warehouse: str, capsys) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--warehouse", warehouse, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def _state(warehouse: str) -> tuple:
    con = fk.connect(warehouse, read_only=True)
    try:
        return (con.execute("SELECT count(*), count(InvoiceId), sum(BilledCost), sum(EffectiveCost) FROM focus")
                .fetchone(), con.execute("SELECT count(*), string_agg(status ORDER BY ingest_id) FROM ingest_log")
                .fetchone(), con.execute("SELECT count(*) FROM reconciliation").fetchone())
    finally:
        con.close()


def test_an_estimate_never_replaces_the_invoiced_month(tmp_path, warehouse, capsys):
    """Estimate -> final replaces; the old estimate ingested after the final month covers the same days, and it
    used to replace it silently (exit 0, the invoice ids gone): refused in one line naming both and --replace;
    with --replace it is replaced and a note says so."""
    estimate = make_legacy_delivery(tmp_path / "estimate")
    final_period = tmp_path / "final" / "cur-hourly" / estimate["period"].name  # only the final assembly
    add_invoiced_assembly(final_period)
    assert _cli([str(tmp_path / "estimate")], warehouse, capsys)[0] == 0
    code, out, err = _cli([str(tmp_path / "final")], warehouse, capsys)
    assert code == 0 and "replaced 16 earlier rows" in out, err
    before = _state(warehouse)
    assert before[0] == (16, 16, BILLED, AMORTIZED)
    code, _, err = _cli([str(tmp_path / "estimate")], warehouse, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("finops-kit: error: "), err
    assert re.search(r"billing period aws\|111111111111\|2026-01 was invoiced: .*EUINGB26-000123.*"
                     + re.escape(str(final_period / INVOICED)) + r".*not invoiced.*"
                     + re.escape(estimate["current"][0]) + r".*--replace", err), err
    assert _state(warehouse) == before
    code, out, err = _cli([str(tmp_path / "estimate"), "--replace"], warehouse, capsys)
    assert code == 0 and "replaced 16 earlier rows" in out, err
    assert "note: --replace: billing period aws|111111111111|2026-01 was invoiced" in err
    assert _state(warehouse)[0] == (16, 0, BILLED, AMORTIZED)


def test_a_superseded_assembly_never_replaces_the_current_one(tmp_path, warehouse, capsys):
    """Neither copy is invoiced and both cover the same days, but the stored rows' delivery named the newer
    assembly and skipped this one as superseded: a stale copy of that assembly (an older sync of the bucket) is
    refused, naming both assemblies; it used to replace the restated month with the old amounts, exit 0."""
    d = make_legacy_delivery(tmp_path / "bucket")
    stale = tmp_path / "old-sync" / "cur-hourly" / d["period"].name
    (stale / OLD).mkdir(parents=True)
    shutil.copy(d["old"], stale / OLD)
    shutil.copy(d["period"] / OLD / "cur-hourly-Manifest.json", stale / "cur-hourly-Manifest.json")
    assert _cli([str(tmp_path / "bucket")], warehouse, capsys)[0] == 0
    before = _state(warehouse)
    code, _, err = _cli([str(tmp_path / "old-sync")], warehouse, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.search(rf"billing period aws\|111111111111\|2026-01: this input .*{OLD}.*superseded by assembly "
                     rf"{NEW}.*--replace", err), err
    assert _state(warehouse) == before and before[0][2] == BILLED
    assert _cli([str(tmp_path / "old-sync"), "--replace"], warehouse, capsys)[0] == 0
    assert _state(warehouse)[0][2] != BILLED  # forced: the old estimate's 99.99 is what is stored now


def test_replacement_decision_refuses_an_estimate_over_an_invoiced_key():
    from finops_kit.ingest import Recency, replacement_decision

    coverage = [("aws|1|2026-01", 3, 3, "2026-01-01", "2026-01-03", "2026-01-01", "2026-01-03")]
    assert replacement_decision(coverage) == (["aws|1|2026-01"], [])  # nothing known about invoices: as before
    both = {"aws|1|2026-01": Recency("INV-1", "final.csv", "INV-1", "rerun.csv")}
    assert replacement_decision(coverage, recency=both) == (["aws|1|2026-01"], [])
    stale = {"aws|1|2026-01": Recency("INV-1", "final.csv", None, "estimate.csv")}
    with pytest.raises(InputError, match=r"aws\|1\|2026-01 was invoiced: .*final\.csv.*estimate\.csv.*--replace"):
        replacement_decision(coverage, recency=stale)
    notes: list[str] = []
    assert replacement_decision(coverage, True, notes, recency=stale) == (["aws|1|2026-01"], [])
    assert len(notes) == 1 and "was invoiced" in notes[0]


# ---- a manifest that lists no files of its own assembly ---------------------------------------------------------
def test_manifest_listing_no_report_files_is_refused_as_incomplete(tmp_path):
    """``"reportKeys": []`` used to skip the named assembly's own files as "superseded" by that same assembly
    (the period silently empty when ingested with other months). The manifest names an assembly whose files are
    there but lists none of them: an odd or incomplete delivery, refused in one line."""
    d = make_legacy_delivery(tmp_path / "bucket")
    manifest = d["period"] / "cur-hourly-Manifest.json"
    m = json.loads(manifest.read_text())
    m["reportKeys"] = []
    manifest.write_text(json.dumps(m))
    with pytest.raises(InputError) as err:
        ingest(str(tmp_path / "bucket"), con=fk.connect(":memory:"))
    msg = str(err.value)
    assert "\n" not in msg and "superseded" not in msg, msg
    assert msg.startswith(f"{manifest}: "), msg  # the path to open, not a key relative to the listing
    assert re.search(rf"names assembly {NEW} but lists no report files \(reportKeys is empty\), while the folder "
                     rf"holds its file {NEW}/cur-hourly-1\.csv\.gz: the delivery is incomplete", msg), msg


def test_manifest_listing_no_files_of_an_empty_assembly_skips_the_older_ones():
    """The named assembly has no files either (nothing delivered for it): nothing of it is lost, and the older
    assembly's files are superseded as before."""
    period = "cur/20260101-20260201"
    keys = [f"{period}/cur-Manifest.json", f"{period}/{OLD}/cur-1.csv.gz"]
    plan = plan_delivery(keys, lambda k: {"assemblyId": NEW, "reportKeys": []})
    assert plan.load == [] and [s["path"] for s in plan.skipped] == [f"{period}/{OLD}/cur-1.csv.gz"]
    assert "superseded assembly" in plan.skipped[0]["reason"]


def test_an_unlisted_file_of_the_current_assembly_is_not_called_superseded():
    """A file in the named assembly's folder that its manifest does not list is skipped as not listed: it is not
    of a superseded assembly (and a later ingest must not treat that assembly as an older copy)."""
    period = "cur/20260101-20260201"
    keys = [f"{period}/cur-Manifest.json", f"{period}/{NEW}/cur-1.csv.gz", f"{period}/{NEW}/cur-9.csv.gz"]
    plan = plan_delivery(keys, lambda k: {"assemblyId": NEW, "reportKeys": [f"p/{period}/{NEW}/cur-1.csv.gz"]})
    assert plan.load == [f"{period}/{NEW}/cur-1.csv.gz"]
    (skip,) = plan.skipped
    assert skip["path"] == f"{period}/{NEW}/cur-9.csv.gz"
    assert "superseded" not in skip["reason"] and "not listed" in skip["reason"] and NEW in skip["reason"], skip


def test_replacement_decision_refuses_a_copy_with_fewer_sub_accounts():
    from finops_kit.ingest import Recency, replacement_decision

    coverage = [("aws|1|2026-01", 3, 3, "2026-01-01", "2026-01-03", "2026-01-01", "2026-01-03")]
    fewer = {"aws|1|2026-01": Recency(None, "payer.csv", None, "member.csv",
                                      missing_sub_accounts="usage account(s) 2 (5 row(s), 9.00 USD billed, "
                                                           "from payer.csv) and this input only 1")}
    with pytest.raises(InputError, match=r"aws\|1\|2026-01: the warehouse holds usage account\(s\) 2 .*and this "
                                         r"input only 1 \(member\.csv\): .*--replace"):
        replacement_decision(coverage, recency=fewer)
    notes: list[str] = []
    assert replacement_decision(coverage, True, notes, recency=fewer) == (["aws|1|2026-01"], [])
    assert len(notes) == 1 and "usage account(s) 2" in notes[0]
