"""Model fits reused across forecasts, kernels and report runs: a small on-disk cache of fitted forecasts.

Why: fitting is most of the forecast report's time (ETS/SARIMAX fits for the final forecast, the rolling-origin
backtest that picks the model and the held-out fit that calibrates the intervals, per team and per period), and the
same fits recur -- the budget table and the alert rules forecast the very series the forecast section did, and a
monthly re-run of the suite (or ``make bench`` after ``make demo``) forecasts an unchanged warehouse again.

What the key is: everything the fit reads and nothing else -- the daily series itself (its float64 bytes), the
horizon, model, level, sample paths/repetitions, seed and calibration switch -- plus the code that fits (a hash of
:mod:`finops_kit.forecast`'s source) and the numerical libraries' versions. A fit therefore depends on the
warehouse only through its series: a new ingest, another scope, a changed tag policy or currency that changes a
series changes its key (a miss, fitted afresh), and a series the change left alone keeps its fit. That is the
input fingerprint at the granularity that matters; keying on the whole warehouse fingerprint would only turn
every unrelated ingest into misses. Entries are exact (float64 arrays as ``.npz``, no pickle): a hit returns
bit-for-bit what the fit returned.

Where: ``$FINOPS_FIT_CACHE`` (``off``: every fit is computed, nothing is kept), else ``fits/`` in the kit's cache folder
(:func:`finops_kit.assets.cache_dir`, ``~/.cache/finops-kit``). Safe under concurrent report processes: an entry is
written to a temporary file and renamed into place (atomic on POSIX), so a reader sees a whole entry or none; an
unreadable entry counts as a miss and is removed. The folder is kept under :data:`MAX_BYTES` by dropping the least
recently used entries (a hit refreshes an entry's time).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENV = "FINOPS_FIT_CACHE"
#: Largest size of the cache folder before the least recently used entries are removed.
MAX_BYTES = 256 * 1024 * 1024
#: Fits kept in memory per process (one report kernel asks for the same fit from several sections).
MEMORY_ENTRIES = 512
#: Bump to invalidate every entry when the entry format changes.
FORMAT = 1

Arrays = dict[str, np.ndarray]


@dataclass
class Stats:
    """Hits and misses of this process (tests and the benchmark read them)."""

    hits: int = 0
    misses: int = 0
    memory_hits: int = 0

    def reset(self) -> None:
        self.hits = self.misses = self.memory_hits = 0


stats = Stats()
_memory: OrderedDict[str, Arrays] = OrderedDict()
_pruned: set[tuple[Path, str]] = set()  # (cache folder, entry pattern) pruned by this process
_code: dict[str, str] = {}


def folder() -> Path | None:
    """The cache folder, or None when caching is off (``FINOPS_FIT_CACHE=off``)."""
    from .assets import cache_folder

    return cache_folder(ENV, "fits")


def code_version(source: str | os.PathLike[str]) -> str:
    """What the fitting code is: the source file that fits and the versions of the libraries that compute."""
    src = str(source)
    if src not in _code:
        from importlib.metadata import PackageNotFoundError, version

        h = hashlib.sha256(f"format {FORMAT}\n".encode())
        h.update(Path(src).read_bytes())
        for pkg in ("numpy", "scipy", "statsmodels", "pandas"):
            try:
                h.update(f"{pkg} {version(pkg)}\n".encode())
            except PackageNotFoundError:
                h.update(f"{pkg} -\n".encode())
        _code[src] = h.hexdigest()
    return _code[src]


def key(y: np.ndarray, source: str | os.PathLike[str], **spec: Any) -> str:
    """The cache key of one fit: the series' bytes, the model spec and the code version."""
    h = hashlib.sha256(code_version(source).encode())
    y = np.ascontiguousarray(y, dtype=np.float64)
    h.update(f"{len(y)}:".encode())
    h.update(y.tobytes())
    h.update(repr(sorted(spec.items())).encode())
    return h.hexdigest()


def _copy(arrays: Arrays) -> Arrays:
    return {k: v.copy() for k, v in arrays.items()}


def _read(path: Path) -> Arrays:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k].copy() for k in z.files}


def _remember(k: str, arrays: Arrays) -> None:
    _memory[k] = arrays
    _memory.move_to_end(k)
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)


def cached_arrays(y: np.ndarray, compute: Callable[[], Arrays], source: str | os.PathLike[str],
                  **spec: Any) -> Arrays:
    """``compute()``'s arrays for this series and spec: from memory, else from disk, else computed and stored.

    ``source`` is the file of the code that computes (part of the key); the arrays are returned as copies, so a
    caller may change them without touching the cache.
    """
    base = folder()
    if base is None:
        return compute()
    k = key(y, source, **spec)
    if k in _memory:
        stats.memory_hits += 1
        _memory.move_to_end(k)
        return _copy(_memory[k])
    path = base / k[:2] / f"{k}.npz"
    if path.is_file():
        try:
            arrays = _read(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged entry is a miss
            with contextlib.suppress(OSError):
                path.unlink()
        else:
            stats.hits += 1
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used goes first when the folder is pruned
            _remember(k, arrays)
            return _copy(arrays)
    stats.misses += 1
    arrays = compute()
    _remember(k, _copy(arrays))
    _store(path, arrays)
    return arrays


def _store(path: Path, arrays: Arrays) -> None:
    """Write one entry atomically; a cache that cannot be written (read-only, full disk) is simply not used."""
    def write(tmp: Path) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp.write_bytes(buf.getvalue())

    write_entry(path, write, MAX_BYTES, "*/*.npz")


def write_entry(path: Path, write: Callable[[Path], None], max_bytes: int, pattern: str,
                errors: tuple[type[BaseException], ...] = (OSError,)) -> None:
    """Write a cache entry with ``write(temporary path)`` and rename it into place, so a concurrent reader sees a
    whole entry or none; on ``errors`` (read-only folder, full disk) nothing is kept. The first write of this
    process into a cache folder (``path``'s grandparent) prunes that folder to ``max_bytes`` (:func:`prune`).
    Shared by this fit cache and :mod:`finops_kit.querycache`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except errors:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return
    root = path.parent.parent
    if (root, pattern) not in _pruned:  # once per process and folder
        _pruned.add((root, pattern))
        prune(root, max_bytes, pattern=pattern)


def prune(root: Path, max_bytes: int = MAX_BYTES, pattern: str = "*/*.npz") -> int:
    """Remove the least recently used entries (files matching ``pattern``) until the folder holds at most
    ``max_bytes``; returns how many. :mod:`finops_kit.querycache` prunes its folder with it too."""
    entries = []
    for p in root.glob(pattern):
        with contextlib.suppress(OSError):
            st = p.stat()
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(e[1] for e in entries)
    removed = 0
    for _mtime, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            p.unlink()
            total -= size
            removed += 1
    return removed


def clear_memory() -> None:
    """Forget the fits held in this process (the disk entries stay)."""
    _memory.clear()
