"""Turn what the user typed (files, globs, folders, s3:// URLs) into the list of files to ingest.

Folders laid out as AWS delivers CUR (``<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/`` with ``Manifest.json``,
or CUR 2.0 ``data/BILLING_PERIOD=YYYY-MM/`` with a manifest) are resolved by :mod:`finops_kit.delivery` so
that only the current assembly of each billing period is read; superseded assemblies are reported as skipped.

Every file is read once, however it was reached: paths are compared by their real path (a symlink, a ``..`` or a
recursive glob through a self-referencing symlink name the same file many times), and two files with the same
bytes are one delivery copied twice (the second is listed as skipped). Files found by walking a folder or
expanding a glob that are plainly not billing data (YAML, Markdown, ...) are listed as skipped; whether a JSON
file found that way is billing data is decided by the format detection (see :func:`finops_kit.ingest.ingest`).
Files below a folder whose name starts with ``_`` (side files such as ``data/samples/_ai_units/``: GPU utilization
logs, business metrics -- the Hive/Spark convention of ``_SUCCESS`` and ``_temporary``) are listed as skipped too
when a folder is walked; a file named on the command line is always read.
"""

from __future__ import annotations

import glob
import hashlib
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
    #: files reached by walking a folder or expanding a glob (not named one by one): one that no reader claims
    #: and that is not tabular (JSON that is not billing records) is skipped instead of refused
    found: set[str] = field(default_factory=set)


def is_manifest_name(name: str) -> bool:
    low = name.lower()
    return "manifest" in low and low.endswith(".json")


def _is_billing_file(p: Path) -> bool:
    name = p.name.lower()
    if is_manifest_name(name):
        return False
    return name.endswith(BILLING_SUFFIXES) and not name.startswith(".")


def side_folder(p: Path, root: Path) -> str | None:
    """The first folder between ``root`` and ``p`` whose name starts with ``_`` (side files), else None."""
    try:
        parts = p.relative_to(root).parts[:-1]
    except ValueError:
        return None
    return next((part for part in parts if part.startswith("_")), None)


def not_billing_reason(p: Path, root: Path | None = None) -> str | None:
    """Why a file found in a folder is not read (None: it may be billing data, or it is a manifest)."""
    side = side_folder(p, root) if root is not None else None
    if side:
        return f"side file, not a billing export (in folder {side}/)"
    if is_manifest_name(p.name) or _is_billing_file(p):
        return None
    suffix = "".join(p.suffixes[-2:]) or p.name
    return f"not a billing export ({suffix})"


def walk(folder: Path) -> list[Path]:
    """Every file below ``folder``, each real file once (symlinked folders are not followed: no loops)."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def resolve(inputs: list[str], *, cache_dir: str | None = None) -> ResolvedInputs:
    out = ResolvedInputs()
    plans: dict[Path, ResolvedInputs | None] = {}  # delivery root -> its plan (None: no manifest there)
    for item in inputs:
        if item.startswith("s3://"):
            from . import s3

            got = s3.fetch_delivery(item, cache_dir=cache_dir)
            out.files += got.files
            out.skipped += got.skipped
            continue
        # an existing path is what the user named, even with glob characters in it ('costs [final].csv' would
        # otherwise be the pattern "costs f.csv, costs i.csv, ..." and match nothing); only a path that does not
        # exist is expanded as a pattern
        magic = glob.has_magic(item) and not os.path.lexists(item)
        matches = sorted(glob.glob(item, recursive=True)) if magic else [item]
        if not matches:
            raise InputError(item, "no file matches this path or pattern")
        for m in matches:
            p = Path(m)
            if _inside_delivery(p, out, plans):
                continue
            if p.is_dir():
                from . import delivery

                got = delivery.resolve_folder(p)
                if got is None:  # not a delivery layout: every billing file below it
                    files = []
                    for f in walk(p):
                        reason = not_billing_reason(f, p)
                        if reason:
                            out.skipped.append({"path": str(f), "reason": reason})
                        elif _is_billing_file(f):
                            files.append(str(f))
                    if not files:
                        raise InputError(str(p), "folder holds no billing files (.csv, .csv.gz, .parquet, .json)")
                    out.files += files
                    out.found.update(files)
                else:
                    out.files += got.files
                    out.skipped += got.skipped
                    out.found.update(got.files)
            elif p.exists():
                if magic and not _is_billing_file(p):
                    reason = not_billing_reason(p)
                    if reason:
                        out.skipped.append({"path": str(p), "reason": reason})
                    continue
                out.files.append(str(p))
                if magic:
                    out.found.add(str(p))
            else:
                raise InputError(str(p), "file not found")
    _drop_repeats(out)
    _one_assembly_per_period(out)
    return out


def _inside_delivery(p: Path, out: ResolvedInputs, plans: dict[Path, ResolvedInputs | None]) -> bool:
    """Resolve a file, glob match or folder inside an AWS delivery by the delivery's manifests; False if it is not
    inside one or no manifest governs it (then it is read as it is).

    Whatever the user points at (one file of an assembly, a glob over a period's files, an assembly folder), the
    manifest of its billing period decides, exactly as when the whole delivery folder is given: a file of a
    superseded assembly is listed as skipped, never added to the current one.
    """
    from . import delivery

    root = delivery.delivery_root(p)
    if root is None or not p.exists():
        return False
    if root not in plans:
        plans[root] = delivery.resolve_folder(root)
    plan = plans[root]
    if plan is None:
        return False
    load = set(plan.files)
    reasons = {s["path"]: s["reason"] for s in plan.skipped}
    wanted = [str(f) for f in walk(p)] if p.is_dir() else [str(p)]
    for f in wanted:
        reason = reasons.get(f)
        if f in load or (reason and reason.startswith("no manifest")):
            out.files.append(f)  # a current file, or one of a period no manifest governs yet (checked below)
            out.found.add(f)
        elif reason:
            out.skipped.append({"path": f, "reason": reason})
    return True


def _one_assembly_per_period(out: ResolvedInputs) -> None:
    """Refuse files of two assemblies of one legacy CUR billing period that no manifest decided between: each
    assembly holds the whole month, so reading both counts it twice."""
    from . import delivery

    for period, assemblies in delivery.assemblies_of(out.files).items():
        if len(assemblies) > 1:
            (a, fa), (b, fb) = sorted(assemblies.items())[:2]
            raise InputError(period, f"billing period {Path(period).name} comes from two assemblies, {a} ({fa}) and "
                                     f"{b} ({fb}), and no Manifest.json says which is current; each holds the whole "
                                     "month: ingest the files of one assembly, or the delivery with its manifest")


def _drop_repeats(out: ResolvedInputs) -> None:
    """Keep each file once: by real path (silently: it is the same file), then by content (listed as skipped)."""
    seen: set[str] = set()
    files = []
    for f in out.files:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            files.append(f)
    by_size: dict[int, list[str]] = {}
    for f in files:
        by_size.setdefault(os.path.getsize(f), []).append(f)
    copies: set[str] = set()
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue  # only files of equal size can be equal: most inputs are never hashed here
        first: dict[str, str] = {}
        for f in same_size:
            digest = sha256_of(f)
            if digest in first:
                copies.add(f)
                out.skipped.append({"path": f, "reason": f"same content as {first[digest]} (read once)"})
            else:
                first[digest] = f
    out.files = [f for f in files if f not in copies]
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for s in out.skipped:  # one line per real file and reason (a symlink loop lists the same skip many times)
        unique.setdefault((os.path.realpath(s["path"]), s["reason"]), s)
    out.skipped = list(unique.values())


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
