"""Errors a user can act on: one line that names the file, the row or column, and what was expected."""

from __future__ import annotations


class FinopsError(Exception):
    """Base class; ``str(err)`` is always a single line fit for a terminal or a scheduler's log."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class InputError(FinopsError):
    """Bad input file: unknown format, missing column, unparseable value, empty or truncated file."""

    def __init__(self, file: str | None, what: str, *, column: str | None = None, row: int | None = None):
        where = [p for p in (file, f"row {row}" if row is not None else None,
                             f"column {column!r}" if column else None) if p]
        self.file, self.column, self.row = file, column, row
        super().__init__(f"{': '.join([', '.join(where), what]) if where else what}")


class ReconciliationError(FinopsError):
    """Normalized totals differ from the source's own totals: nothing is written."""


class ConfigError(FinopsError):
    """A parameter or configuration value is invalid."""
