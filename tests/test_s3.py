"""Ingest straight from S3 through the real boto3 client against a local S3 endpoint (moto in server mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

import finops_kit as fk
from finops_kit import s3 as s3mod
from finops_kit.cli import main
from finops_kit.errors import FinopsError
from tests.test_aws_sources import AMORTIZED, BILLED, _totals
from tests.test_delivery import NEW, OLD, make_legacy_delivery

from .conftest import local_moto_server

FOCUS_FIX = Path(__file__).parent / "fixtures" / "focus" / "quirky_focus_1_2.csv"
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def endpoint():
    with local_moto_server() as url:
        yield url


@pytest.fixture()
def aws_env(monkeypatch, endpoint, tmp_path):
    """Fake credentials for this test only, and no shared config/credentials files of the machine."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return endpoint


@pytest.fixture()
def bucket(aws_env, tmp_path):
    """A bucket holding a restated legacy CUR delivery under prefix 'cur/'."""
    name = f"cur-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    client = boto3.client("s3", endpoint_url=aws_env)
    client.create_bucket(Bucket=name)
    local = tmp_path / "upload"
    make_legacy_delivery(local)
    for f in sorted(local.rglob("*")):
        if f.is_file():
            client.upload_file(str(f), name, "cur/" + f.relative_to(local).as_posix())
    return name


def test_ingest_from_s3_downloads_only_the_current_assembly(bucket, tmp_path):
    cache = tmp_path / "cache"
    warehouse = str(tmp_path / "wh.duckdb")
    url = f"s3://{bucket}/cur/"
    rep = s3mod.sync_delivery(url, str(cache))
    assert sorted(rep.downloaded) == [f"cur/cur-hourly/20260101-20260201/{NEW}/cur-hourly-{n}.csv.gz" for n in (1, 2)]
    assert [s["path"] for s in rep.skipped] == [f"s3://{bucket}/cur/cur-hourly/20260101-20260201/{OLD}/"
                                                "cur-hourly-1.csv.gz"]
    downloaded = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.csv.gz"))
    assert all(OLD not in p for p in downloaded) and len(downloaded) == 2  # the old assembly was never fetched

    res = fk.ingest(url, warehouse=warehouse, cache_dir=str(cache))
    assert len(res.skipped) == 1 and OLD in res.skipped[0]["path"]
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)  # only the current assembly is counted
    finally:
        con.close()
    # second run: every current object is in the cache with the same ETag -> nothing downloaded
    again = s3mod.sync_delivery(url, str(cache))
    assert again.downloaded == [] and len(again.cached) == 2
    assert main(["ingest", url, "--warehouse", warehouse, "--no-progress", "--cache-dir", str(cache)]) == 0
    con = fk.connect(warehouse, read_only=True)
    try:
        assert _totals(con) == (16, BILLED, AMORTIZED)  # idempotent
    finally:
        con.close()


def test_changed_object_is_downloaded_again(bucket, tmp_path):
    cache = tmp_path / "cache"
    url = f"s3://{bucket}/cur/"
    s3mod.sync_delivery(url, str(cache))
    client = boto3.client("s3")
    key = f"cur/cur-hourly/20260101-20260201/{NEW}/cur-hourly-2.csv.gz"
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    client.put_object(Bucket=bucket, Key=key, Body=body + b"")  # same bytes, same ETag: still cached
    assert s3mod.sync_delivery(url, str(cache)).downloaded == []
    import gzip

    client.put_object(Bucket=bucket, Key=key, Body=gzip.compress(gzip.decompress(body)))  # rewritten by AWS
    rep = s3mod.sync_delivery(url, str(cache))
    assert rep.downloaded in ([], [key])  # gzip output may be byte-identical; then the ETag is too
    (cache / bucket / key).write_bytes(b"tampered")  # a damaged cache file is fetched again (size differs)
    assert s3mod.sync_delivery(url, str(cache)).downloaded == [key]


def test_missing_bucket_is_one_line(aws_env, tmp_path):
    with pytest.raises(FinopsError) as err:
        s3mod.sync_delivery("s3://no-such-bucket-finops/cur/", str(tmp_path))
    msg = str(err.value)
    assert msg == "s3://no-such-bucket-finops/cur/: bucket does not exist (or is in another partition/endpoint)"


def test_missing_credentials_is_one_line(aws_env, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    warehouse = str(tmp_path / "wh.duckdb")
    assert main(["ingest", "s3://any-bucket/cur/", "--warehouse", warehouse, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "s3://any-bucket/cur/: no AWS credentials found" in err


def test_empty_prefix(bucket, tmp_path):
    with pytest.raises(FinopsError, match="no objects under this prefix"):
        s3mod.sync_delivery(f"s3://{bucket}/nothing-here/", str(tmp_path))


@pytest.mark.parametrize("key", ["cur/../../escaped.csv", "/abs/escaped.csv", "cur/x/../../../escaped.csv"])
def test_key_leaving_the_cache_is_refused_before_any_download(aws_env, tmp_path, key, capsys):
    """Issue 15.1: a key with '..' or a leading '/' was written outside --cache-dir (on the real moto server)."""
    name = f"trav-{abs(hash(key)) % 10**8}-{tmp_path.name.lower().replace('_', '-')[-20:]}"
    if key.startswith("/"):  # an absolute key aimed at the test's own folder: a regression cannot litter '/'
        key = str(tmp_path) + key
    client = boto3.client("s3", endpoint_url=aws_env)
    client.create_bucket(Bucket=name)
    body = (FOCUS_FIX).read_bytes()
    client.put_object(Bucket=name, Key="cur/good.csv", Body=body)
    client.put_object(Bucket=name, Key=key, Body=body)
    work = tmp_path / "a" / "b" / "c"
    cache = work / "cache"
    warehouse = tmp_path / "wh" / "wh.duckdb"
    prefix = "" if key.startswith("/") else "cur/"
    code = main(["ingest", f"s3://{name}/{prefix}", "--warehouse", str(warehouse), "--no-progress",
                 "--cache-dir", str(cache)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"s3://{name}/{key}: object key would be written outside" in err
    assert list(tmp_path.rglob("escaped.csv")) == []  # nothing written anywhere, not even the safe object
    assert not (cache / name / "cur" / "good.csv").exists()
    assert not warehouse.exists()


def test_bucket_name_cannot_leave_the_cache(tmp_path):
    for url in ("s3://../cur/", "s3://./x", "s3://a..b/x"):
        with pytest.raises(FinopsError, match="not a valid S3 bucket name"):
            s3mod.sync_delivery(url, str(tmp_path / "cache"))


def test_endpoint_password_is_never_echoed(aws_env, monkeypatch, tmp_path, capsys):
    """Issue 15.4: the endpoint URL's password appeared in the error line."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:S3cr3tPa55@127.0.0.1:9/")
    code = main(["ingest", "s3://some-bucket/cur/", "--warehouse", str(tmp_path / "wh.duckdb"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "S3cr3tPa55" not in err and "cannot reach the S3 endpoint" in err and "***@127.0.0.1" in err
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ht tp://minio:S3cr3tPa55@[bad")
    code = main(["ingest", "s3://some-bucket/cur/", "--warehouse", str(tmp_path / "wh.duckdb"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "S3cr3tPa55" not in err, err
