"""The kit's configuration file (``finops.yaml``): one YAML file, one section per concern.

Sections: ``tag_policy`` (tagging audit), ``allocation`` (showback of shared costs), ``budgets`` and ``roadmap``
(forecast vs actual), ``alerts`` (``finops-kit check``), ``currency`` (optional reporting-currency conversion),
``reports`` (report defaults). Each analysis module validates its own section and raises a one-line
:class:`~finops_kit.errors.ConfigError` naming the key that is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_CONFIG = "finops.yaml"


def load_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load the YAML config: the argument, else $FINOPS_CONFIG, else ./finops.yaml; {} when none exists."""
    target = path or os.environ.get("FINOPS_CONFIG") or DEFAULT_CONFIG
    p = Path(target)
    if not p.exists():
        if path:
            raise ConfigError(f"{p}: config file not found")
        return {}
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top level")
    return data


def section(config: dict[str, Any], name: str, default: Any = None) -> Any:
    """One section of a loaded config (``default`` when absent)."""
    value = config.get(name, default)
    return default if value is None else value


def reject_unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    """One-line error for the first setting of a config mapping that the reader does not know (a typo, usually)."""
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting (expected one of {', '.join(sorted(known))})")
