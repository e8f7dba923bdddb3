"""The kit's reviewed data tables (``finops_kit/data/*.csv``) and user-supplied replacements of them.

Every mapping table starts with ``#`` comment lines that give its provenance; readers skip them. A user may point a
function at their own copy (a dated price list, a stricter AI rule set) with the same columns.
"""

from __future__ import annotations

import csv
import os
from importlib import resources
from pathlib import Path


def data_text(name: str, path: str | os.PathLike | None = None) -> str:
    """Text of ``finops_kit/data/<name>``, or of ``path`` when a user supplies their own table."""
    if path:
        return Path(path).read_text(encoding="utf-8-sig")
    return resources.files("finops_kit").joinpath(f"data/{name}").read_text(encoding="utf-8")


def csv_lines(text: str) -> list[str]:
    """The CSV lines of a data table: blank lines and ``#`` comment (provenance) lines removed."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def data_rows(name: str, path: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """Rows of a data table as dicts keyed by its header."""
    return list(csv.DictReader(csv_lines(data_text(name, path))))
