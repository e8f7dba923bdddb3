"""Where the project is: one rule for finding the project's files from any folder of the project.

JupyterLab starts a kernel in the notebook's folder (``notebooks/``, or a subfolder a user made), while the CLI and
``finops-kit report`` run from the project root. A relative project path such as ``data/warehouse.duckdb``,
``finops.yaml`` or ``data/cache/spot_prices`` must mean the same file in both places, so every lookup goes through
:func:`find_in_project`: the path as given if it exists, else the same relative path in each parent folder up to
the project root (the nearest folder holding ``finops.yaml`` or ``pyproject.toml``). The warehouse
(:func:`finops_kit.warehouse.connect`), the notebooks' file parameters (:func:`finops_kit.notebook.setup`) and
the side files (spot price cache, traces) all use it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Files that mark the project root (the folder ``make demo`` and ``finops-kit`` are run from).
ROOT_MARKERS = ("finops.yaml", "pyproject.toml")
#: Without a marker above the start folder, how many parent folders are still searched (a stray checkout).
UNMARKED_DEPTH = 3


def project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding a root marker."""
    here = Path(start or Path.cwd()).resolve()
    for base in (here, *here.parents):
        if any((base / m).is_file() for m in ROOT_MARKERS):
            return base
    return None


def search_folders(start: str | os.PathLike | None = None) -> list[Path]:
    """The folders a relative project path is looked up in, nearest first: ``start`` and its parents up to the
    project root (inclusive), or ``start`` and :data:`UNMARKED_DEPTH` parents when no root marker is found."""
    here = Path(start or Path.cwd()).resolve()
    root = project_root(here)
    chain = [here, *here.parents]
    if root is None:
        return chain[:UNMARKED_DEPTH + 1]
    return chain[:chain.index(root) + 1]


def find_in_project(path: str | os.PathLike, start: str | os.PathLike | None = None) -> Path | None:
    """The existing file or folder a relative project path names, seen from ``start``; None when none exists.

    Absolute paths are returned when they exist. The first match wins, nearest folder first, so a
    ``data/warehouse.duckdb`` next to the caller is preferred over the project root's.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for base in search_folders(start):
        if (base / p).exists():
            return base / p
    return None


def resolve(path: str | os.PathLike, start: str | os.PathLike | None = None) -> Path:
    """Where a relative project path lives: the existing match of :func:`find_in_project`, else the path under
    the project root (so a cache that does not exist yet is created at the root, not in ``notebooks/``), else the
    path as given."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    found = find_in_project(p, start)
    if found is not None:
        return found
    root = project_root(start)
    return root / p if root is not None else p
