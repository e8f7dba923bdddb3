"""AWS delivery folders: load only the assembly each billing period's manifest names.

AWS rewrites a month's report many times until the month is final; summing every delivered copy would double
count. Two layouts exist, both resolved here from a plain listing of keys, so that a local folder and an S3
prefix (:mod:`finops_kit.s3`) follow exactly the same rules:

* **Legacy CUR**: ``<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json`` names the current ``assemblyId`` and
  its ``reportKeys``; the data lives in ``<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-<n>.csv.gz`` (a copy
  of the manifest sits in the assembly folder too and is ignored). Reports set to "overwrite" write the files
  straight into the period folder; the manifest still lists them.
* **CUR 2.0 / Data Exports**: ``<export>/data/BILLING_PERIOD=YYYY-MM/<export>-<n>.snappy.parquet`` with
  ``<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`` listing ``dataFiles`` (full S3 URIs). The
  manifest is written last. With "create new report" several executions (each with its own manifest) exist for
  one period; the newest manifest wins.

Rules: a file a current manifest lists is loaded; any other billing file in a period folder that a manifest
governs is returned as *skipped* with the reason (superseded assembly, not in the manifest). A period folder with
data but no manifest yet (a delivery in progress) is skipped as a whole. Billing files outside any delivery layout
are loaded as they are. A manifest that lists a file which is not there is an error: the delivery is incomplete.
A legacy manifest governs only the delivery it belongs to (see :func:`_governs`): one of another report or month
that lies elsewhere in the listing decides nothing, because skipping the files beside it would lose their money.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import InputError
from .inputs import ResolvedInputs, not_billing_reason, side_folder, walk
from .sources.base import CSV_SUFFIXES, JSON_SUFFIXES, PARQUET_SUFFIXES

BILLING_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSON_SUFFIXES
LEGACY_PERIOD_RE = re.compile(r"^\d{8}-\d{8}$")
CUR2_PERIOD_RE = re.compile(r"^BILLING_PERIOD=\d{4}-\d{2}$")
#: the skip reason of a file of an older assembly; the ingest log keeps it, and a later ingest reads it back
#: (:func:`superseding_assembly`) to recognise a stale copy of that assembly
SUPERSEDED = "superseded assembly; the manifest {manifest} names assembly {assembly}"
_SUPERSEDED_RE = re.compile(r"^superseded assembly; the manifest (?P<manifest>.+) names assembly (?P<assembly>\S+)$")


def is_manifest(key: str) -> bool:
    name = PurePosixPath(key).name.lower()
    return "manifest" in name and name.endswith(".json")


def unsafe_key(key: str) -> str | None:
    """Why an object key cannot be mapped to a file below a folder (None when it can).

    S3 keys are arbitrary strings: ``../x``, ``/etc/x`` or a NUL byte are valid keys. Anyone who can write to the
    bucket chooses them, so a key becomes a local path only when it is a plain relative path.
    """
    if not key or "\x00" in key:
        return "empty key or NUL byte in the key"
    if key.startswith("/") or PurePosixPath(key).is_absolute():
        return "absolute key"
    if any(part in ("..", ".") for part in key.split("/")):
        return "'..' or '.' segment in the key"
    return None


def local_path(root: Path, key: str, shown: str | None = None) -> Path:
    """``root / key`` for an object key, refused (InputError) unless it stays inside ``root`` once resolved.

    Resolving also follows symlinks already planted inside ``root``: a key that is safe as text but leads
    through a link to somewhere else is refused too. ``shown`` is how the error names the key (its s3:// URL).
    """
    why = unsafe_key(key)
    target = (root / key).resolve() if why is None else None
    if target is not None and not target.is_relative_to(root.resolve()):
        why = "it resolves to a path outside the folder"
    if why is not None:
        raise InputError(shown or key, f"object key would be written outside {root} ({why}); refusing to "
                                        "download anything from this listing")
    return target


def is_billing_file(key: str) -> bool:
    name = PurePosixPath(key).name.lower()
    return name.endswith(BILLING_SUFFIXES) and not name.startswith(".") and not is_manifest(key)


@dataclass
class DeliveryPlan:
    """Which keys of a listing to load and which to skip (keys are '/'-separated, relative to the listing root)."""

    load: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)


def _period_dir_of(key: str, pattern: re.Pattern) -> str | None:
    """The key's ancestor folder whose name matches ``pattern`` (``.../20240101-20240201`` or BILLING_PERIOD=)."""
    parts = PurePosixPath(key).parts
    for i in range(len(parts) - 1, -1, -1):
        if pattern.match(parts[i]):
            return "/".join(parts[: i + 1])
    return None


def _data_dir(metadata_period: str) -> str:
    """``<export>/metadata/BILLING_PERIOD=X`` -> ``<export>/data/BILLING_PERIOD=X``."""
    parts = metadata_period.split("/")
    if len(parts) >= 2 and parts[-2] == "metadata":
        parts[-2] = "data"
    return "/".join(parts)


def _relative_key(uri_or_key: str, anchor: str) -> str | None:
    """The tail of a manifest's key/URI starting at the last ``/<anchor>/`` segment, or None."""
    text = "/" + uri_or_key.lstrip("/")
    idx = text.rfind("/" + anchor + "/")
    return None if idx < 0 else text[idx + 1:]


def plan_delivery(keys: Iterable[str], read_manifest: Callable[[str], dict],
                  newest: Callable[[list[str]], str | None] | None = None) -> DeliveryPlan | None:
    """Plan which files of a delivery to load; None when the listing holds no AWS manifest.

    ``keys``: every object key / relative file path of the listing; ``read_manifest(key)``: its parsed JSON;
    ``newest(keys)``: the most recently written of several manifests of one CUR 2.0 period when their ids and
    folders carry no time (None: cannot tell; see :func:`_current_execution`).
    """
    keys = sorted(set(keys))
    manifest_keys = [k for k in keys if is_manifest(k)]
    if not manifest_keys:
        return None
    plan = DeliveryPlan()
    keyset = set(keys)
    governed: dict[str, set[str]] = {}  # period folder -> keys to load there
    reasons: dict[str, str] = {}  # period folder -> why other files there are skipped
    labels: dict[str, str] = {}  # period folder -> how messages name it (never blank)
    legacy_manifest: dict[str, tuple[str, str]] = {}  # legacy period folder -> (its manifest, the assembly named)
    #: legacy period folder -> (its current assembly's folder + "/", why an unlisted file there is skipped): such a
    #: file is not of a superseded assembly, and must not be logged as one (the ingest reads that reason back)
    current_assembly: dict[str, tuple[str, str]] = {}
    cur2_by_period: dict[str, list[tuple[str, dict]]] = {}
    found_any = False
    for mk in manifest_keys:
        try:
            m = read_manifest(mk)
        except (ValueError, OSError) as exc:
            raise InputError(mk, f"cannot read AWS manifest ({exc})") from None
        if not isinstance(m, dict):
            continue
        if "dataFiles" in m:  # CUR 2.0 / Data Exports
            period = _period_dir_of(mk, CUR2_PERIOD_RE)
            if period is None:
                continue
            found_any = True
            cur2_by_period.setdefault(_data_dir(period), []).append((mk, m))
        elif "assemblyId" in m and "reportKeys" in m:  # legacy CUR
            mdir = str(PurePosixPath(mk).parent)
            mdir = "" if mdir == "." else mdir
            if PurePosixPath(mdir).name == m["assemblyId"]:
                found_any = True
                continue  # the copy inside the assembly folder; the period's manifest decides
            load = _legacy_report_files(m, mdir)
            stated = _legacy_period_of(m)
            if not _governs(mdir, m, load, keyset, stated, mk):
                continue  # not part of a delivery here (a manifest of another report or month lying around)
            found_any = True
            if mdir in legacy_manifest:
                first, assembly = legacy_manifest[mdir]
                if assembly == m["assemblyId"]:
                    continue  # a second copy of the same manifest: nothing to decide
                raise InputError(mk, f"two manifests for one billing period folder name different assemblies "
                                     f"({first}: {assembly}, this one: {m['assemblyId']}) and the listing does "
                                     "not say which is current: keep only the period's <report>-Manifest.json")
            current = _assembly_folder(mdir, m)
            if not load:
                _refuse_empty_manifest(mk, m, mdir, current, keys)
            governed[mdir] = load
            legacy_manifest[mdir] = (mk, m["assemblyId"])
            labels[mdir] = stated or PurePosixPath(mdir).name or mk
            reasons[mdir] = SUPERSEDED.format(manifest=mk, assembly=m["assemblyId"])
            current_assembly[mdir] = (current, f"in the current assembly {m['assemblyId']} but not listed in its "
                                               f"manifest {mk}")
            plan.manifests.append(mk)
    for data_period, items in cur2_by_period.items():
        pname = PurePosixPath(data_period).name
        chosen_key = _current_execution(items, data_period, newest)
        m = dict(items)[chosen_key]
        load = set(cur2_data_keys(chosen_key, m, data_period))
        governed[data_period] = load
        labels[data_period] = pname
        reasons[data_period] = f"not listed in the current manifest {chosen_key} of {pname}"
        plan.manifests.append(chosen_key)
    if not found_any:
        return None
    for period, load in governed.items():
        missing = sorted(k for k in load if k not in keyset)
        if missing:
            raise InputError(missing[0], f"listed in the manifest of {labels[period]} but not found; "
                                         "the delivery is incomplete (download it again or wait for AWS to finish)")
    for k in keys:
        if not is_billing_file(k):
            continue
        scope = _scope_of(k, governed)
        if scope is not None:
            if k in governed[scope]:
                plan.load.append(k)
            else:
                folder, unlisted = current_assembly.get(scope, (None, ""))
                own = folder is not None and k.startswith(folder)
                plan.skipped.append({"path": k, "reason": unlisted if own else reasons[scope]})
            continue
        period = _period_dir_of(k, CUR2_PERIOD_RE) or _period_dir_of(k, LEGACY_PERIOD_RE)
        if period and (CUR2_PERIOD_RE.match(PurePosixPath(period).name) or _has_assembly_folder(k, period)):
            plan.skipped.append({"path": k, "reason": f"no manifest for billing period {PurePosixPath(period).name} "
                                                      "(delivery in progress?)"})
        else:
            plan.load.append(k)
    return plan


#: a UTC time stamp in an execution id or folder name (``20261101T020000Z-<id>``)
_EXECUTION_TIME = re.compile(r"(?<![0-9])(\d{8}T\d{6})")


def cur2_data_keys(mk: str, m: dict, data_period: str) -> list[str]:
    """The keys (relative to the listing) of the data files a CUR 2.0 manifest ``mk`` lists, for the period's data
    folder ``data_period``."""
    export_root = data_period.rsplit("/data/", 1)[0] if "/data/" in data_period else ""
    out = []
    for uri in m.get("dataFiles") or []:
        rel = _relative_key(uri, "data")
        if rel is None:
            raise InputError(mk, f"dataFiles entry {uri!r} is not under a data/ folder")
        out.append((export_root + "/" if export_root else "") + rel)
    return out


def execution_time(mk: str, m: dict) -> str | None:
    """The time stamp an execution's id or its folder carries (``20261101T020000``), or None."""
    for text in (str(m.get("executionId") or ""), PurePosixPath(mk).parent.name):
        got = _EXECUTION_TIME.search(text)
        if got:
            return got.group(1)
    return None


def _current_execution(items: list[tuple[str, dict]], data_period: str,
                       newest: Callable[[list[str]], str | None] | None) -> str:
    """The manifest of the current execution among several of one CUR 2.0 period ("create new report").

    By evidence in the delivery, never by a local file time (a copy without preserved times reorders those and an
    older month-to-date execution would win): manifests listing the same files are one delivery; else the time
    stamps in the executions' ids or folders; else ``newest`` (an S3 listing's LastModified, or the usage days the
    executions' data cover); nothing deciding -> refused naming the manifests."""
    keys = sorted(k for k, _ in items)
    if len(items) == 1:
        return items[0][0]
    by_key = dict(items)
    if len({tuple(sorted(by_key[k].get("dataFiles") or [])) for k in keys}) == 1:
        return keys[-1]
    stamps = {k: execution_time(k, by_key[k]) for k in keys}
    if all(stamps.values()):
        best = max(stamps.values())
        winners = [k for k in keys if stamps[k] == best]
        if len(winners) == 1:
            return winners[0]
    chosen = newest(keys) if newest is not None else None
    if chosen is not None:
        return chosen
    shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    raise InputError(keys[-1], f"{len(keys)} manifests of {PurePosixPath(data_period).name} ({shown}) list "
                               "different files, and neither their execution ids, their folders nor the usage days "
                               "of their data say which execution is current (a local file time is no evidence: a "
                               "copy changes it): keep only the current execution's manifest and data, or ingest "
                               "the s3:// prefix")


def _below(mdir: str, *parts: str) -> str:
    """The key of ``parts`` below the listing folder ``mdir`` ('' is the listing's root)."""
    return "/".join(([mdir] if mdir else []) + list(parts))


def _assembly_folder(mdir: str, m: dict) -> str:
    """The key prefix ('<folder>/<assemblyId>/') of the assembly a legacy manifest in ``mdir`` names."""
    return _below(mdir, str(m["assemblyId"])) + "/"


def _legacy_report_files(m: dict, mdir: str) -> set[str]:
    """The keys (relative to the listing) of the files a legacy manifest lists, below its folder ``mdir``.

    ``reportKeys`` are full S3 keys under whatever prefix the report had when AWS wrote them; only the part after
    the period folder is stable, so that part is placed below the folder the manifest sits in."""
    load = set()
    for rk in m.get("reportKeys") or []:
        parts = [x for x in str(rk).split("/") if x]
        if not parts:
            continue
        idx = next((i for i in range(len(parts) - 1, -1, -1) if LEGACY_PERIOD_RE.match(parts[i])), None)
        tail = parts[idx + 1:] if idx is not None else [str(m["assemblyId"]), parts[-1]]
        load.add(_below(mdir, *tail))
    return load


def _refuse_empty_manifest(mk: str, m: dict, mdir: str, current: str, keys: list[str]) -> None:
    """Refuse a legacy manifest that lists no report files while its assembly's files are there.

    It names an assembly as current and lists none of that assembly's files: not a superseded delivery but an
    odd or incomplete one (a manifest written before its keys, or edited). Skipping the files would lose their
    money with nothing but a "skipped" line; loading them would trust files the manifest does not vouch for. Files
    written straight into the period folder (reports set to overwrite) count as the named assembly's. A manifest
    whose assembly has no files either leaves nothing of it to lose: the other assemblies are superseded as usual.
    """
    own = next((k for k in keys if is_billing_file(k) and (
        k.startswith(current) or str(PurePosixPath(k).parent) == (mdir or "."))), None)
    if own is not None:
        raise InputError(mk, f"this AWS manifest names assembly {m['assemblyId']} but lists no report files "
                             f"(reportKeys is empty), while the folder holds its file "
                             f"{own[len(mdir) + 1:] if mdir else own}: the delivery is "
                             "incomplete or the manifest damaged (download the billing period again)")


def _legacy_period_of(m: dict) -> str | None:
    """The billing period a legacy manifest states, as its period folder is named (``20260101-20260201``).

    From ``billingPeriod`` (``20260101T000000.000Z``); else from the period folder its ``reportKeys`` name; None
    when the manifest says neither."""
    bp = m.get("billingPeriod")
    if isinstance(bp, dict):
        days = [re.match(r"^(\d{4})-?(\d{2})-?(\d{2})", str(bp.get(e) or "")) for e in ("start", "end")]
        if all(days):
            return "-".join("".join(d.groups()) for d in days)
    for rk in m.get("reportKeys") or []:
        for part in reversed(str(rk).split("/")):
            if LEGACY_PERIOD_RE.match(part):
                return part
    return None


def _governs(mdir: str, m: dict, load: set[str], keyset: set[str], stated: str | None, mk: str) -> bool:
    """Whether a legacy manifest decides which billing files of its folder ``mdir`` are read.

    It does when it is part of a delivery there: its folder is a billing-period folder
    (``<report>/<yyyymmdd-yyyymmdd>/``, the only place AWS writes it), or -- a listing rooted at the period folder,
    or a period folder renamed after download -- its assembly folder or one of the files it lists is there. A
    manifest of another report or month lying in a downloads folder is neither, and must not turn the loose
    exports beside it into "superseded" files (their money would be lost with exit 0). A period folder whose
    manifest states another billing period cannot tell which of its files are current: refused.
    """
    folder = PurePosixPath(mdir).name
    if LEGACY_PERIOD_RE.match(folder):
        if stated is not None and stated != folder:
            raise InputError(mk, f"this AWS manifest is for billing period {stated} (report "
                                 f"{m.get('reportName') or '?'}) but sits in the period folder {folder}; it cannot "
                                 "say which files of that folder are current: put back the period's own "
                                 "<report>-Manifest.json, or move this one out of the delivery")
        return True
    assembly = _assembly_folder(mdir, m)
    return bool(load & keyset) or any(k.startswith(assembly) for k in keyset)


def superseding_assembly(reason: str) -> tuple[str, str] | None:
    """``(manifest, current assembly)`` of a skip reason written by :data:`SUPERSEDED`, else None."""
    got = _SUPERSEDED_RE.match(reason or "")
    return (got["manifest"], got["assembly"]) if got else None


def _scope_of(key: str, governed: dict[str, set[str]]) -> str | None:
    """The deepest governed folder (a period folder with a manifest) that contains ``key``."""
    best = None
    for scope in governed:
        if (scope == "" or key.startswith(scope + "/")) and (best is None or len(scope) > len(best)):
            best = scope
    return best


def _has_assembly_folder(key: str, period: str) -> bool:
    """True when a legacy key sits in an assembly folder below its period folder."""
    return key.count("/") - period.count("/") >= 2


def resolve_folder(folder: Path) -> ResolvedInputs | None:
    """Files of the current assemblies under ``folder``, or None when it is not a delivery layout."""
    found = walk(folder)
    side = [p for p in found if side_folder(p, folder)]  # side files (_ai_units/...): listed as skipped
    files = [p for p in found if not side_folder(p, folder)]
    rel = {p.relative_to(folder).as_posix(): p for p in files}

    parsed: dict[str, dict] = {}

    def read(key: str) -> dict:  # each manifest parsed once: plan_delivery and newest() both ask for it
        if key not in parsed:
            parsed[key] = json.loads(rel[key].read_text(encoding="utf-8"))
        return parsed[key]

    def newest(keys: list[str]) -> str | None:
        """The execution whose data reach the latest usage day (a month-to-date delivery grows), None on a tie or
        when the data cannot say: file times are not asked (a copy changes them)."""
        reach = {}
        for k in keys:
            data_period = _data_dir(_period_dir_of(k, CUR2_PERIOD_RE) or "")
            files = [rel[d] for d in cur2_data_keys(k, read(k), data_period) if d in rel]
            reach[k] = _last_usage_day([str(f) for f in files]) if files else None
        if None in reach.values():
            return None
        best = max(reach.values())
        winners = [k for k in keys if reach[k] == best]
        return winners[0] if len(winners) == 1 else None

    try:
        plan = plan_delivery(rel, read, newest)
    except InputError as exc:
        raise _in_folder(folder, exc) from None
    if plan is None:
        return None
    other = [{"path": str(p), "reason": reason} for p in side + files if (reason := not_billing_reason(p, folder))]
    return ResolvedInputs(
        files=[str(rel[k]) for k in plan.load],
        skipped=[{"path": str(rel[s["path"]]), "reason": s["reason"]} for s in plan.skipped] + other,
    )


def _last_usage_day(files: list[str]) -> str | None:
    """The latest usage day (``YYYY-MM-DD``) in CUR 2.0 data files, or None when they cannot be read for it."""
    import duckdb

    from .sources.base import sql_list

    col = "line_item_usage_start_date"
    parquet = all(f.lower().endswith(PARQUET_SUFFIXES) for f in files)
    reader = (f"read_parquet({sql_list(files)}, union_by_name = true)" if parquet else
              f"read_csv({sql_list(files)}, header = true, all_varchar = true, union_by_name = true)")
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT max(left(CAST({col} AS VARCHAR), 10)) FROM {reader}").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return got[0] if got and got[0] else None


def _in_folder(folder: Path, exc: InputError) -> InputError:
    """The error of :func:`plan_delivery` naming its file by a path the user can open: the plan speaks of keys
    relative to the listing's root (the report folder above the period the user named, say), not to the current
    directory."""
    key, text = exc.file, str(exc)
    if not key or not text.startswith(f"{key}: ") or PurePosixPath(key).is_absolute():
        return exc
    return InputError(str(folder / key), text[len(key) + 2:])


def delivery_root(path: Path) -> Path | None:
    """The report folder (legacy CUR) or export folder (CUR 2.0) of a path *inside* a billing-period folder.

    ``<report>/20260101-20260201/<assembly>/x.csv.gz`` -> ``<report>``;
    ``<export>/data/BILLING_PERIOD=2026-01/x.parquet`` -> ``<export>``; None when no ancestor is a period folder.
    """
    for anc in [path, *path.parents]:
        if LEGACY_PERIOD_RE.match(anc.name):
            return anc.parent
        if CUR2_PERIOD_RE.match(anc.name) and anc.parent.name in ("data", "metadata"):
            return anc.parent.parent
    return None


def assemblies_of(files: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{legacy period folder: {assembly id: first file}}`` of files that sit in an assembly folder."""
    out: dict[str, dict[str, str]] = {}
    for f in files:
        p = Path(f)
        if LEGACY_PERIOD_RE.match(p.parent.parent.name):
            out.setdefault(str(p.parent.parent), {}).setdefault(p.parent.name, f)
    return out

