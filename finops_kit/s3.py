"""Ingest straight from S3: ``finops-kit ingest s3://bucket/prefix/``.

Reads the delivery's manifests with boto3 (standard credential chain: env, profile, SSO, instance role), decides
with :func:`finops_kit.delivery.plan_delivery` which objects are current (the same rules as for a local folder),
and downloads only those into a cache folder (``data/cache/s3/<bucket>/<key>`` by default). An object already in
the cache with the same ETag is not fetched again, so a daily run only downloads what AWS rewrote. The endpoint
can be overridden with ``AWS_ENDPOINT_URL`` (or ``endpoint_url=``), which is how the tests talk to a local moto
server. Missing credentials, a missing bucket or access denied become one-line :class:`FinopsError`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .delivery import is_billing_file, is_manifest, local_path, plan_delivery
from .errors import FinopsError
from .inputs import ResolvedInputs

DEFAULT_CACHE = "data/cache/s3"
ETAG_INDEX = ".etags.json"
#: S3 bucket naming rules (3-63 lower-case letters, digits, dots, hyphens): the bucket is a folder of the cache,
#: so a "bucket" such as ``..`` must never get that far
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass
class FetchReport:
    """What :func:`sync_delivery` did: local files to ingest, skipped objects, and the download counts."""

    files: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)  # keys fetched in this run
    cached: list[str] = field(default_factory=list)  # keys already in the cache with the same ETag


def parse_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise FinopsError(f"{url}: not an s3:// URL")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise FinopsError(f"{url}: no bucket name; expected s3://bucket/prefix/")
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise FinopsError(f"{url}: {bucket!r} is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")
    return bucket, prefix


def _client(endpoint_url: str | None):
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    # a fresh session: boto3's module-level default session caches credentials across calls
    try:
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint, config=Config(retries={"max_attempts": 3, "mode": "standard"}))
    except ValueError as exc:  # "Invalid endpoint: ..." (FinopsError strips any password from the URL)
        raise FinopsError(f"S3 endpoint {endpoint!r} (AWS_ENDPOINT_URL): {exc}") from None


def _error(url: str, exc: Exception) -> FinopsError:
    """One line a user can act on, from a botocore exception."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return FinopsError(f"{url}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                           "AWS_SECRET_ACCESS_KEY, or run 'aws sso login'")
    if isinstance(exc, EndpointConnectionError):
        return FinopsError(f"{url}: cannot reach the S3 endpoint ({exc})")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404", "NotFound"):
            return FinopsError(f"{url}: bucket does not exist (or is in another partition/endpoint)")
        if code in ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "ExpiredToken"):
            return FinopsError(f"{url}: access denied ({code}); the credentials need s3:ListBucket and s3:GetObject "
                               "on the CUR bucket")
        return FinopsError(f"{url}: S3 error {code}: {exc.response.get('Error', {}).get('Message', '')}")
    return FinopsError(f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def sync_delivery(url: str, cache_dir: str | None = None, *, endpoint_url: str | None = None,
                  progress: bool | None = None) -> FetchReport:
    """Download the current files of the AWS delivery under ``url`` into the cache; see the module docstring."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    root = Path(cache_dir or DEFAULT_CACHE) / bucket
    report = FetchReport()
    try:
        s3 = _client(endpoint_url)
        objects: dict[str, dict] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                objects[obj["Key"]] = obj
        if not objects:
            raise FinopsError(f"{url}: no objects under this prefix")
        base = prefix if prefix.endswith("/") or not prefix else prefix.rsplit("/", 1)[0] + "/"
        base = base if all(k.startswith(base) for k in objects) else ""
        rel = {k[len(base):]: k for k in objects}
        manifests: dict[str, dict] = {}

        def read(relkey: str) -> dict:
            body = s3.get_object(Bucket=bucket, Key=rel[relkey])["Body"].read()
            manifests[relkey] = json.loads(body)
            return manifests[relkey]

        def newest(relkeys: list[str]) -> str:
            return max(relkeys, key=lambda k: (objects[rel[k]]["LastModified"], k))

        plan = plan_delivery(rel, read, newest)
        if plan is None:  # no manifest: every billing file under the prefix
            load = [k for k in rel if is_billing_file(k)]
            skipped = []
        else:
            load, skipped = plan.load, plan.skipped
        if not load:
            raise FinopsError(f"{url}: no current billing files under this prefix")
        report.skipped = [{"path": f"s3://{bucket}/{rel[s['path']]}", "reason": s["reason"]} for s in skipped]
        # every local path is checked before the first byte is written: keys are chosen by whoever can write to
        # the bucket, and `../x` or `/x` are valid keys
        targets = {}
        for k in [*load, *(m for m in manifests if is_manifest(m))]:
            local_path(root, rel[k], f"s3://{bucket}/{rel[k]}")
            targets[rel[k]] = root / rel[k]
        index_path = root / ETAG_INDEX
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        show = sys.stderr.isatty() if progress is None else progress
        total = sum(objects[rel[k]]["Size"] for k in load)
        bar = None
        if show:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"s3://{bucket}", leave=False)
        try:
            for k in sorted(load):
                key = rel[k]
                etag = objects[key].get("ETag", "")
                local = targets[key]
                if local.exists() and index.get(key) == etag and local.stat().st_size == objects[key]["Size"]:
                    report.cached.append(key)
                    if bar:
                        bar.update(objects[key]["Size"])
                else:
                    local.parent.mkdir(parents=True, exist_ok=True)
                    tmp = local.with_name(local.name + ".part")
                    s3.download_file(bucket, key, str(tmp),
                                     Callback=(bar.update if bar else None))
                    os.replace(tmp, local)
                    index[key] = etag
                    report.downloaded.append(key)
                report.files.append(str(local))
        finally:
            if bar:
                bar.close()
        root.mkdir(parents=True, exist_ok=True)
        for k, m in manifests.items():  # keep the manifests next to the data: the cache is a browsable delivery
            if is_manifest(k):
                mp = targets[rel[k]]
                mp.parent.mkdir(parents=True, exist_ok=True)
                mp.write_text(json.dumps(m, indent=1), encoding="utf-8")
        index_path.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    except FinopsError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise _error(url, exc) from None
    return report


def fetch_delivery(url: str, cache_dir: str | None = None, *, endpoint_url: str | None = None) -> ResolvedInputs:
    """Local copies of the current files of an S3 delivery (what :func:`finops_kit.inputs.resolve` needs)."""
    rep = sync_delivery(url, cache_dir, endpoint_url=endpoint_url)
    return ResolvedInputs(files=rep.files, skipped=rep.skipped)


def sync_prefix(url: str, cache_dir: str | os.PathLike, *, required: str | None = None,
                endpoint_url: str | None = None, allow_empty: bool = False) -> Path:
    """Mirror every object under ``s3://bucket/prefix/`` into ``cache_dir/bucket/prefix/`` and return that folder.

    For a FOCUS dataset (:mod:`finops_kit.dataset`) kept in a bucket: DuckDB 2.0.1 wheels have no S3 reader
    (httpfs needs the internet to install), so the objects are fetched with boto3 as an S3 delivery is. An
    object already in the cache with the same ETag and size is not fetched again; a cached file whose object is
    gone is removed, so the mirror never mixes an old partition into a re-exported dataset. ``required``: a key
    (relative to the prefix) that must exist -- the dataset's manifest -- checked before anything is written.
    Every local path is checked to stay inside the cache before the first byte is written. ``allow_empty``: an
    empty prefix gives an empty mirror (a dataset about to be written there) instead of an error.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    prefix = prefix.strip("/")
    base = f"{prefix}/" if prefix else ""
    root = Path(cache_dir) / bucket
    dest = root / prefix if prefix else root
    try:
        s3 = _client(endpoint_url)
        objects: dict[str, dict] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):  # folder markers of some consoles
                    objects[obj["Key"]] = obj
        if not objects and not allow_empty:
            raise FinopsError(f"{url}: no objects under this prefix")
        if required and objects and f"{base}{required}" not in objects:
            raise FinopsError(f"{url}: no {required} under this prefix (not a FOCUS dataset; write one with "
                              "'finops-kit export --dataset DIR' and upload the folder)")
        targets = {k: local_path(root, k, f"s3://{bucket}/{k}") for k in objects}
        dest.mkdir(parents=True, exist_ok=True)
        index_path = dest / ETAG_INDEX
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        for key in sorted(objects):
            local, obj = targets[key], objects[key]
            if local.exists() and index.get(key) == obj.get("ETag") and local.stat().st_size == obj["Size"]:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(local.name + ".part")
            s3.download_file(bucket, key, str(tmp))
            os.replace(tmp, local)
            index[key] = obj.get("ETag")
        keep = {p.resolve() for p in targets.values()} | {index_path.resolve()}
        for f in sorted(dest.rglob("*"), reverse=True):  # files of objects that are gone, then empty folders
            if f.is_file() and f.resolve() not in keep:
                f.unlink()
            elif f.is_dir() and not any(f.iterdir()):
                f.rmdir()
        index = {k: v for k, v in index.items() if k in objects}
        index_path.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    except FinopsError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise _error(url, exc) from None
    return dest


def publish_prefix(folder: str | os.PathLike, url: str, *, last: str, endpoint_url: str | None = None
                   ) -> dict[str, int]:
    """Make ``s3://bucket/prefix/`` hold exactly the files of ``folder`` (a mirror made by :func:`sync_prefix`
    and then written locally): upload what is new or changed, ``last`` (the dataset's manifest) after every other
    file, then delete the objects the folder no longer has. Returns the counts ``uploaded``, ``kept``, ``deleted``.

    Why this order: the manifest lists the partitions and their rows, and a reader validates the files against it
    (:func:`finops_kit.dataset.validate`), so a reader that lists the prefix in the moment between the upload and
    the deletes gets a one-line refusal, never a mix of old and new rows counted as one dataset. The mirror's
    ETag index is updated, so the next :func:`sync_prefix` downloads nothing that was just uploaded.
    """
    import hashlib

    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_url(url)
    prefix = prefix.strip("/")
    base = f"{prefix}/" if prefix else ""
    folder = Path(folder)
    index_path = folder / ETAG_INDEX
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    files = {f"{base}{f.relative_to(folder).as_posix()}": f for f in sorted(folder.rglob("*"))
             if f.is_file() and f != index_path}
    if f"{base}{last}" not in files:
        raise FinopsError(f"{folder}: no {last}; nothing was uploaded to {url}")
    counts = {"uploaded": 0, "kept": 0, "deleted": 0}
    from boto3.s3.transfer import TransferConfig

    # one PUT per file (up to S3's 5 GB limit): its ETag is then the file's MD5, which is how an unchanged
    # partition file is recognised on the next run instead of being uploaded again
    single_put = TransferConfig(multipart_threshold=5 * 2**30 - 1)
    try:
        s3 = _client(endpoint_url)
        remote: dict[str, dict] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                remote[obj["Key"]] = obj
        for key in sorted(files, key=lambda k: k == f"{base}{last}"):  # the manifest last
            local = files[key]
            h = hashlib.md5(usedforsecurity=False)
            with local.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            md5 = h.hexdigest()
            obj = remote.get(key)
            if obj is not None and obj.get("ETag", "").strip('"') == md5 and obj["Size"] == local.stat().st_size:
                counts["kept"] += 1
                index[key] = obj.get("ETag")
                continue
            s3.upload_file(str(local), bucket, key, Config=single_put)
            index[key] = s3.head_object(Bucket=bucket, Key=key).get("ETag")
            counts["uploaded"] += 1
        stale = sorted(k for k in remote if k not in files and not k.endswith("/"))
        for i in range(0, len(stale), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[i:i + 1000]]})
        counts["deleted"] = len(stale)
    except FinopsError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise _error(url, exc) from None
    index = {k: v for k, v in index.items() if k in files}
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    return counts
