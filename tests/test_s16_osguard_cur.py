"""AWS CUR: tenancy and licence model pass through as x_ columns (legacy slash, Athena snake_case, CUR 2.0 MAP).

Review finding (operating systems, 8): data/aws_cur_extra_columns.csv said the instance type identifies the OS and the
tenancy; it does not (the kit reads the OS from x_Operation), and product/tenancy and product/licenseModel were
dropped, so Dedicated and BYOL usage could only be told from operation codes, most BYOL ones unmapped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from finops_kit.ingest import ingest
from finops_kit.sources.aws_cur import snake

from .test_aws_sources import SP_RI, _rows, cur2_table

EXTRA = ("product/tenancy", "product/licenseModel")


def _with_tenancy() -> list[dict]:
    """The SP/RI fixture's rows; li-01 (a p4d.24xlarge hour) Dedicated and BYOL, the others Shared, licence included."""
    rows = _rows(SP_RI)
    for r in rows:
        byol = r["identity/LineItemId"] == "li-01"
        r["product/tenancy"] = "Dedicated" if byol else "Shared"
        r["product/licenseModel"] = "Bring your own license" if byol else "License included"
    return rows


def _write_csv(path: Path, rows: list[dict], header) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([header(c) for c in rows[0]])
        w.writerows([list(r.values()) for r in rows])
    return str(path)


def _got(con) -> dict[str, tuple]:
    return {i: (t, lm) for i, t, lm in con.execute(
        "SELECT x_identity_line_item_id, x_product_tenancy, x_product_license_model FROM focus "
        "WHERE x_identity_line_item_id IN ('li-01', 'li-02')").fetchall()}


WANT = {"li-01": ("Dedicated", "Bring your own license"), "li-02": ("Shared", "License included")}


@pytest.mark.parametrize("spelling", ["slash", "athena"])
def test_legacy_cur_keeps_tenancy_and_licence_model(tmp_path, con, spelling):
    rows = _with_tenancy()
    path = _write_csv(tmp_path / f"{spelling}.csv", rows, (lambda c: c) if spelling == "slash" else snake)
    assert snake("product/licenseModel") == "product_license_model"
    ingest(path, con=con)
    assert _got(con) == WANT
    # the OS still comes from the operation, which stays kept
    assert con.execute("SELECT x_Operation FROM focus WHERE x_identity_line_item_id = 'li-01'").fetchone()[0] == \
        "RunInstances"


def test_cur2_product_map_keys_pass_through(tmp_path, con):
    """CUR 2.0 carries them as keys of the product MAP (tenancy, license_model): looked up like product_gpu."""
    path = tmp_path / "export-00001.snappy.parquet"
    pq.write_table(cur2_table(_with_tenancy()), path)
    ingest(str(path), con=con)
    assert _got(con) == WANT
