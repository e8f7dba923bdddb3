"""The kit's configuration file (``finops.yaml``): one YAML file, one section per concern.

Sections: ``tag_policy`` (tagging audit), ``allocation`` (showback of shared costs), ``budgets`` and ``roadmap``
(forecast vs actual), ``alerts`` (``finops-kit check``), ``currency`` (optional reporting-currency conversion),
``reports`` (report defaults), ``guardrails`` (``finops-kit guard``: AI cost rules for Terraform/OpenTofu plans),
``unit_economics`` (idle GPU threshold, training-run identification).
Each analysis module validates its own section and raises a one-line :class:`~finops_kit.errors.ConfigError` naming
the key that is wrong.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_CONFIG = "finops.yaml"
#: The sections the kit reads. A misspelled section (``budgetz``) is an error, like an unknown key inside one:
#: silently ignoring it turns "no budgets configured" into "no alerts", exit 0.
SECTIONS = ("tag_policy", "allocation", "budgets", "roadmap", "alerts", "currency", "reports", "guardrails",
            "unit_economics")
#: Largest config accepted, in bytes and in YAML nodes after expanding aliases: a few anchors are normal, a
#: "billion laughs" alias bomb expands a 1 KB file to billions of nodes and exhausts memory.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 200_000


#: The environment variable naming the config file for every command and the Python API.
CONFIG_ENV = "FINOPS_CONFIG"


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The config file of the kit, one rule for every command and the Python API: ``$FINOPS_CONFIG`` when set
    (it must exist), else the ``finops.yaml`` of the working directory or its parents up to the project root
    (:func:`finops_kit.project.find_in_project`, the rule that finds the warehouse); None: none, the kit's defaults.

    Why one rule: the CLI read only ``./finops.yaml`` and the API walked up, so ``check`` run from ``notebooks/``
    said "no alerts" (exit 0) while the project's budgets fired, and ``report`` ignored ``$FINOPS_CONFIG``.
    """
    from .project import find_in_project

    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise ConfigError(f"{CONFIG_ENV}={env}: config file not found; expected the path of a finops.yaml "
                              f"(or unset {CONFIG_ENV} to use the project's)")
        return p
    return find_in_project(DEFAULT_CONFIG, start)


def no_config_note() -> str:
    """The line a command prints (stderr) when :func:`find_config` finds nothing: the results use defaults."""
    return (f"finops-kit: note: no finops.yaml found (in {Path.cwd()} or its parents up to the project root; "
            f"{CONFIG_ENV} unset): using the kit's defaults (no budgets, no tag_policy aliases, no guardrails)")


def load_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load the YAML config: the argument, else :func:`find_config` ($FINOPS_CONFIG, else the project's
    finops.yaml from any folder of the project); {} when none exists.

    Every way a config file can be unusable (a folder, unreadable, not UTF-8, too large, invalid YAML, an alias
    bomb, an unknown section) is one :class:`ConfigError` line naming the file.
    """
    target = path or find_config()
    if target is None:
        return {}
    p = Path(target)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    if not p.is_file():
        raise ConfigError(f"{p}: is a folder, not a config file; expected a YAML file such as finops.yaml")
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: {size:,} bytes; a config file is at most {MAX_CONFIG_BYTES:,} bytes")
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}: line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.strerror or exc})") from None
    # a report asks 3-10 times (scope, tag policy, allocation, budgets, alerts, ...): parsed once per path and
    # contents (not mtime, coarser than two quick writes), so an edited file is parsed again; callers get deep
    # copies and may change them
    return Config(copy.deepcopy(_parsed_sections(p, str(p.resolve()), text)), path=str(p))


class Config(dict):
    """A loaded config: the sections as a plain mapping, plus the ``path`` of the file they came from.

    A section is validated where a module reads it, often far from :func:`load_config`; the path travels with the
    mapping so that reader's one-line error can name the file, as the YAML-level errors do.
    """

    def __init__(self, data: Any = (), path: str | None = None):
        super().__init__(data)
        self.path = path


def config_file(cfg: Any) -> str | None:
    """The file a loaded config came from (None for a dict built in code)."""
    return getattr(cfg, "path", None)


@contextmanager
def naming_file(cfg: Any) -> Iterator[None]:
    """Prefix the config file to a :class:`ConfigError` raised while reading a section of ``cfg``.

    Section readers name the key (``budgets: items[0].monthly``); only the loaded config knows which file holds it,
    and "which file" is the first question when a scheduled job fails.
    """
    try:
        yield
    except ConfigError as exc:
        path = config_file(cfg)
        if path is None or str(exc).startswith(f"{path}:"):
            raise
        raise ConfigError(f"{path}: {exc}") from None


@functools.lru_cache(maxsize=8)
def _parsed_sections(p: Path, resolved: str, text: str) -> dict[str, Any]:
    """The sections of config ``text`` (read from ``p``, which the errors name), checked; kept in this process by
    path and contents (an error is raised again each time, never kept)."""
    data = _parse_yaml(p, text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top level")
    unknown = sorted(str(k) for k in data if k not in SECTIONS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], SECTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{p}: {unknown[0]}: unknown section ({hint}expected one of {', '.join(SECTIONS)})")
    return data


def _parse_yaml(p: Path, text: str) -> Any:
    """``yaml.safe_load`` with the document's size checked after alias expansion, before it is constructed."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, {}) > MAX_CONFIG_NODES:
            raise ConfigError(f"{p}: the YAML expands to more than {MAX_CONFIG_NODES:,} values through aliases "
                              "(&anchor/*alias); refusing it")
        _refuse_repeated_keys(p, node, set())
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise ConfigError(f"{p}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _refuse_repeated_keys(p: Path, node: yaml.Node, seen: set[int]) -> None:
    """Refuse a key written twice in one mapping (one line: the key and the line of its second occurrence).

    Why: YAML lets the later one silently replace the first -- a second ``budgets:`` block replaced the first and
    ``finops-kit check`` fired on the wrong budget. Merge keys (``<<: *anchor``) are not repeats."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                if k.value in keys:
                    raise ConfigError(f"{p}: line {k.start_mark.line + 1}: {k.value!r} appears twice in one mapping; "
                                      "expected each key once (YAML would keep only the later one)")
                keys.add(k.value)
            _refuse_repeated_keys(p, v, seen)
    elif isinstance(node, yaml.SequenceNode):
        for c in node.value:
            _refuse_repeated_keys(p, c, seen)


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """Number of nodes ``node`` stands for once every alias is expanded (shared nodes counted once per use)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a recursive alias refers to itself: counted as 0 while in progress
        if isinstance(node, yaml.SequenceNode):
            n = 1 + sum(_expanded_nodes(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
        else:
            n = 1
        memo[key] = min(n, MAX_CONFIG_NODES + 1)
    return memo[key]


def section(config: dict[str, Any], name: str, default: Any = None) -> Any:
    """One section of a loaded config (``default`` when absent)."""
    value = config.get(name, default)
    return default if value is None else value


def reject_unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    """One-line error for the first setting of a config mapping that the reader does not know (a typo, usually).

    An ignored typo is worse than an error: ``anomalys:`` would mean "no anomaly alerts", exit 0.
    """
    unknown = sorted(str(k) for k in set(data) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting ({hint}expected one of {', '.join(sorted(known))})")


def flag(data: dict[str, Any], key: str, default: bool, where: str) -> bool:
    """A true/false setting; anything else (``"false"``, ``0``) is an error, never taken by its truthiness."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} = {value!r}: expected true or false")
    return value


def validate(cfg: Any, base_dir: str | os.PathLike | None = None) -> None:
    """Check every section of a loaded config with the reader that uses it, before a command starts any work.

    Why: a section is validated where a module reads it -- for ``report`` inside a notebook kernel -- so a typo in
    ``budgets`` became one failed report among published ones (exit 1), and ``metrics``, which never reads
    ``budgets``, ignored it (exit 0). One file is one configuration: a mistake anywhere in it is exit 2, one line
    naming the file and the key, before anything runs. ``base_dir``: where a relative roadmap file is looked up
    besides the working directory (the config file's folder).
    """
    from . import alerts, budgets, currency, gpu, guard, scope, unit_economics

    path = config_file(cfg)
    with naming_file(cfg):
        scope.attribution_settings(cfg)
        budgets.load_budgets(cfg)
        budgets.load_roadmap(cfg=cfg, base_dir=base_dir if base_dir is not None else
                             (Path(path).resolve().parent if path else None))
        alerts.settings(cfg)
        currency.settings(cfg)
        guard.Guardrails.from_dict(section(cfg, "guardrails", {}), path or "config")
        gpu.load_settings(cfg)
        unit_economics.load_run_rules(cfg)
