"""The FOCUS rules that realistic export shapes broke, checked directly (the validator run is in the slow tests)."""

from __future__ import annotations

import pytest

import finops_kit as fk

from .shapes import OTHER_AWS_SERVICES, aws_cur2_variant, azure_variant


@pytest.fixture(scope="module")
def shaped(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("shapes")
    out = {}
    for name, paths in (("aws", [aws_cur2_variant(base / "aws")]), ("azure", azure_variant(base / "azure"))):
        wh = str(base / f"{name}.duckdb")
        fk.ingest([str(p) for p in paths], warehouse=wh, progress=False)
        out[name] = wh
    return out


@pytest.mark.parametrize("provider", ["aws", "azure"])
def test_one_service_category_per_service_name(shaped, provider):
    con = fk.connect(shaped[provider], read_only=True)
    split = con.execute("SELECT ServiceName, string_agg(DISTINCT ServiceCategory, ', ') FROM focus GROUP BY 1 "
                        "HAVING count(DISTINCT ServiceCategory) > 1").fetchall()
    assert split == []


def test_ec2_data_transfer_and_other_services_are_categorized_by_their_product(shaped):
    con = fk.connect(shaped["aws"], read_only=True)
    got = dict(con.execute("SELECT ServiceName, any_value(ServiceCategory) FROM focus GROUP BY 1").fetchall())
    assert got["Amazon Elastic Compute Cloud"] == "Compute"
    assert got["Amazon Relational Database Service"] == "Databases"
    assert {n for _, n in OTHER_AWS_SERVICES} <= set(got)
    # the data transfer line items are still there, under EC2
    assert con.execute("SELECT count(*) FROM focus WHERE ServiceName = 'Amazon Elastic Compute Cloud' "
                       "AND x_UsageType LIKE '%DataTransfer%'").fetchone()[0] > 0


@pytest.mark.parametrize("provider", ["aws", "azure"])
def test_a_region_name_always_has_its_id(shaped, provider):
    con = fk.connect(shaped[provider], read_only=True)
    assert con.execute("SELECT count(*) FROM focus WHERE RegionName IS NOT NULL AND RegionId IS NULL").fetchone()[0] == 0
    regions = dict(con.execute("SELECT RegionId, count(*) FROM focus WHERE RegionId IS NOT NULL GROUP BY 1").fetchall())
    # ids recovered from 'US West (Oregon)' (AWS, no region code) and 'East US' / 'US East' (Azure display names)
    assert ("us-west-2" in regions) if provider == "aws" else (set(regions) == {"eastus"})


def test_azure_price_id_only_with_its_sku_and_the_meter_is_kept(shaped):
    con = fk.connect(shaped["azure"], read_only=True)
    assert con.execute("SELECT count(*) FROM focus WHERE SkuPriceId IS NOT NULL AND SkuId IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM focus WHERE SkuId IS NULL AND x_SkuMeterId IS NOT NULL").fetchone()[0] > 0
    assert con.execute("SELECT count(DISTINCT x_ResourceLocation) FROM focus").fetchone()[0] == 3
