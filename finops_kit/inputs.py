"""Turn what the user typed (files, globs, folders, s3:// URLs) into the list of files to ingest.

Folders laid out as AWS delivers CUR (``<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/`` with ``Manifest.json``,
or CUR 2.0 ``data/BILLING_PERIOD=YYYY-MM/`` with a manifest) are resolved by :mod:`finops_kit.delivery` so
that only the current assembly of each billing period is read; superseded assemblies are reported as skipped.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .sources.base import CSV_SUFFIXES, JSON_SUFFIXES, PARQUET_SUFFIXES

BILLING_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSON_SUFFIXES


@dataclass
class ResolvedInputs:
    files: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{"path": ..., "reason": ...}]


def _is_billing_file(p: Path) -> bool:
    name = p.name.lower()
    if "manifest" in name and name.endswith(".json"):
        return False
    return name.endswith(BILLING_SUFFIXES) and not name.startswith(".")


def resolve(inputs: list[str], *, cache_dir: str | None = None) -> ResolvedInputs:
    out = ResolvedInputs()
    for item in inputs:
        if item.startswith("s3://"):
            from . import s3

            got = s3.fetch_delivery(item, cache_dir=cache_dir)
            out.files += got.files
            out.skipped += got.skipped
            continue
        matches = sorted(glob.glob(item, recursive=True)) if glob.has_magic(item) else [item]
        if not matches:
            raise InputError(item, "no file matches this path or pattern")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                from . import delivery

                got = delivery.resolve_folder(p)
                if got is None:  # not a delivery layout: every billing file below it
                    files = sorted(str(f) for f in p.rglob("*") if f.is_file() and _is_billing_file(f))
                    if not files:
                        raise InputError(str(p), "folder holds no billing files (.csv, .csv.gz, .parquet, .json)")
                    out.files += files
                else:
                    out.files += got.files
                    out.skipped += got.skipped
            elif p.exists():
                out.files.append(str(p))
            else:
                raise InputError(str(p), "file not found")
    seen: set[str] = set()
    out.files = [f for f in out.files if not (os.path.abspath(f) in seen or seen.add(os.path.abspath(f)))]
    return out
