"""AWS delivery folders: load only the assembly each billing period's manifest names.

AWS rewrites a month's CUR many times (``<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/...``); summing every
assembly would double count. CUR 2.0 (``data/BILLING_PERIOD=YYYY-MM/``) works the same way with its own manifest.
"""

from __future__ import annotations

from pathlib import Path

from .inputs import ResolvedInputs


def resolve_folder(folder: Path) -> ResolvedInputs | None:
    """Files of the current assemblies under ``folder``, or None when it is not a delivery layout."""
    manifests = [p for p in folder.rglob("*.json") if "manifest" in p.name.lower()]
    if not manifests:
        return None
    raise NotImplementedError("delivery folders: being written (issue 2)")
