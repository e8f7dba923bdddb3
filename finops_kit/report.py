"""``finops-kit report``: run curated notebooks with papermill and render self-contained, offline HTML reports.

    finops-kit report [NOTEBOOK...|--all] --warehouse data/warehouse.duckdb --out reports/2026-10 \\
                      -p billing_period_start=2026-10 -p providers=[AWS] [--config finops.yaml]
                      [--show-code | --hide-code]
    finops-kit report --list

What a scheduled monthly run can rely on:

* parameters (``-p name=value``, values parsed as YAML scalars or lists) are checked against each notebook's
  ``parameters`` cell BEFORE anything runs: an unknown name or a wrong type is a one-line ConfigError (exit 2);
* all notebooks run from this one Python process (papermill is imported once), up to ``--jobs`` at once
  (default: the CPU cores available), each in its own kernel, with the working directory = the current
  directory; ``warehouse`` / ``config_path`` are injected relative to it;
* every cell has a timeout (``--timeout-cell``) and every notebook an overall budget (``--timeout-notebook``,
  enforced by shrinking the cell timeouts as the budget runs out); a timeout or a dead kernel is retried once
  (nbclient has an intermittent hang on widget cells) and then reported as a timeout;
* a failing notebook does not stop the others: it yields an error page (its executed notebook rendered with
  the failing cell and traceback, plus a banner linking the ``.ipynb``), the index marks it failed, and the
  command exits 1; exit 0 means every report rendered;
* ``<out>/<name>.html`` + ``<out>/<name>.ipynb`` per report, ``<out>/index.html`` and ``index.json`` listing
  every report in the folder with status, parameters and links; names derived from parameters are slugs and
  cannot leave ``<out>``;
* code is folded by default: each input cell behind a "code" toggle, a "show all code" button for the page
  (plain ``<details>`` and a few lines of inline script: works offline), papermill's injected parameters shown
  once as a table; ``--show-code`` gives the notebook layout, ``--hide-code`` no code at all;
* no absolute local path in a report: ``warehouse`` / ``config_path`` are injected relative to the project (the
  working directory), and any other absolute path in an output is rewritten relative to it;
* the HTML is exported with the kit's nbconvert template (``finops_kit/templates/finops``): no CDN, the Vega
  bundle and the ipywidgets HTML manager inlined once per page, read once per run from the asset cache
  (``python -m finops_kit.assets``);
* secrets never reach a report: variables that look like credentials are removed from the environment the
  kernels inherit, and any such value found in an output file is replaced by ``[redacted]`` -- as is any value
  shaped like a credential (an AWS key id, a GitHub/Slack/OpenAI token, a JWT, a PEM key) that billing data brings
  into a table, a chart or a CSV download.

Config (``reports`` section of finops.yaml, all optional; the command line wins)::

    reports:
      notebooks_dir: notebooks
      timeout_cell: 600          # seconds per cell
      timeout_notebook: 1800     # seconds per notebook (per attempt)
      code: folded               # folded (default) | shown (--show-code) | hidden (--hide-code)
      jobs: 2                    # reports run at once (default: the CPU cores available; --jobs)
      parameters: {}             # default -p values, e.g. {providers: [AWS]}
"""

from __future__ import annotations

import argparse
import ast
import bisect
import contextlib
import datetime as dt
import hashlib
import html
import json
import math
import os
import re
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, FinopsError, strip_credentials

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "finops"
DEFAULT_NOTEBOOKS_DIR = "notebooks"
DEFAULT_TIMEOUT_CELL = 600
DEFAULT_TIMEOUT_NOTEBOOK = 1800
INJECTED = ("warehouse", "config_path")
#: How a report shows its code: ``folded`` (default: each input cell collapsed behind a "code" toggle, a
#: whole-page toggle, papermill's injected parameters as a table), ``shown`` (every cell's code inline, the
#: notebook layout) or ``hidden`` (no code at all, for stakeholders).
CODE_MODES = ("folded", "shown", "hidden")

#: Environment variable names that look like credentials: removed from the kernels' environment and their
#: values redacted from every output file. Broad on purpose (a kernel needs none of these to read the warehouse):
#: DATABASE_URL, SLACK_WEBHOOK_URL, SENTRY_DSN and MY_PASS all carry secrets under names without "SECRET".
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASS|PWD|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY|APIKEY|SESSION|AUTH|"
                         r"CONNECTION_STRING|CONN_STR|DSN|WEBHOOK|COOKIE|SIGNING|SALT|DATABASE_URL|DB_URL|"
                         r"_KEY$|^KEY$|^GOOGLE_APPLICATION)", re.IGNORECASE)
#: Values that are credentials whatever the variable is called: URLs with a user-info part, and the token formats
#: of common providers (AWS key ids, GitHub, Slack, OpenAI-style, Google API keys, JWTs, PEM private keys).
SECRET_VALUE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^/\s@]+@|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|"
    r"xox[abposr]-|hooks\.slack\.com/services/|sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{30,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ|-----BEGIN [A-Z ]*PRIVATE KEY-----", re.IGNORECASE)


_RANDOM_RUN = re.compile(r"[A-Za-z0-9]{20,}")
_KEY_PREFIX = re.compile(r"sk-(?:proj|svcacct|admin)-")


def _api_key(token: str) -> bool:
    """An ``sk-`` key (OpenAI, Anthropic ``sk-ant-``, OpenRouter ``sk-or-``, ...): its random part shows as a run of
    20+ letters and digits holding both, or -- after ``sk-proj-|svcacct-|admin-`` -- 20+ characters with upper,
    lower and a digit. Names built of words (``sk-ProdCluster-2026-westeurope``, ``sk-proj-billing-migration-2026``)
    have neither."""
    if any(any(c.isdigit() for c in r) and any(c.isalpha() for c in r) for r in _RANDOM_RUN.findall(token)):
        return True
    rest = token[m.end():] if (m := _KEY_PREFIX.match(token)) else ""
    return (len(rest) >= 20 and any(c.isupper() for c in rest) and any(c.islower() for c in rest)
            and any(c.isdigit() for c in rest))


def _digit_after_team_id(token: str) -> bool:
    """A Slack token's parts after its first number (``xoxb-<team>-<bot>-<secret>``) hold a digit too."""
    return any(c.isdigit() for c in token.split("-", 2)[2])


#: A line break in a PEM block: a real one, or as JSON writes it (``\n`` in the ``.ipynb`` and chart data)
_PEM_BREAK = r"(?:\r\n|\r|\n|\\r\\n|\\n|\\r)"
#: Between the base64 lines of a PEM block: line breaks, or spaces (a key pasted into a one-line tag value)
_PEM_SEP = rf"(?:{_PEM_BREAK}|[ \t])+"
#: A base64 body line: 16+ characters, a short last line padded with ``=``, or a cut-off one before ``...``/``…``
_PEM_CHUNK = r"(?:[A-Za-z0-9+/]{16,}+=*+|[A-Za-z0-9+/]++=++|[A-Za-z0-9+/]{4,}+(?=\.\.\.|\u2026))"
#: Where a base64 body line of a PEM block may end: a line break, white space, the end of the text, the quote or tag
#: after it, a CSV/prose delimiter, or a cut-off mark
_PEM_LINE_END = r"(?=\r|\n|\\[nr]|[\"'<,;.\s\u2026]|\Z)"

#: The token formats of :data:`SECRET_VALUE`, matched whole so :func:`redact` can replace them in report text:
#: (pattern, check of the matched text or None); a pattern's group 1 is kept (the Slack webhook's host and path).
#: Stricter than SECRET_VALUE, which only picks environment variables to strip: a report page is mostly ordinary
#: data (tag values, resource groups, campaign names), so each pattern is the format's real shape at a word edge:
#:
#: * AWS key ids are base32 -- ``AKIA|ASIA|ABIA|ACCA`` and 16 of ``A-Z2-7``, no letter or digit on either side: an
#:   upper-cased Azure resource group ``ASIASOUTHEASTPROD001`` (a ``0``, a ``1``) is not one, a hash's middle never;
#: * ``sk-`` API keys (OpenAI, Anthropic, OpenRouter) hold a random run (:func:`_api_key`):
#:   ``sk-ProdCluster-2026-westeurope`` and ``sk-proj-billing-migration-2026`` do not;
#: * Slack tokens are ``xox[abposr]-`` and a number (the team id): ``xoxo-campaign-2026-summer`` is not;
#: * a PEM private key runs from its BEGIN line to its END line; with no END line in reach, only the header and
#:   the base64 lines that follow it (on new lines or after spaces; the last one cut off at ``,`` or ``...``)
#:   go -- never the prose after a header.
#:
#: (No possessive quantifier on a group here or in errors.py: Python 3.11.2, Debian's, mis-matches them -- a
#: possessive repeat of a group kept the space before the prose after a PEM body; possessive character classes are
#: fine.) Every pattern starts with a literal (the regex engine finds it by a fast substring search: ~8 ms for all of
#: them on a 2 MB page) and checks the word edge *after* it, so a start inside a run of token characters is refused
#: at once; runs are possessive where a failed match would otherwise back up: linear time on any text.
SECRET_TOKENS: tuple[tuple[re.Pattern[str], Any], ...] = tuple(
    (re.compile(pat), check) for pat, check in (
        (r"A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]....)[A-Z2-7]{16}(?![A-Za-z0-9])", None),  # AWS access key id
        (r"gh(?<![A-Za-z0-9]gh)[pousr]_[A-Za-z0-9]{36,}", None),                         # GitHub tokens
        (r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{22,}", None),             # GitHub fine-grained
        (r"xox(?<![A-Za-z0-9-]xox)[abposr]-[0-9]++-[0-9A-Za-z-]{8,}", _digit_after_team_id),  # Slack tokens
        (r"(hooks\.slack\.com/services/)[A-Za-z0-9_/-]{8,}", None),                      # Slack webhook
        (r"sk-(?<![A-Za-z0-9_-]sk-)[A-Za-z0-9_-]{16,}+", _api_key),                       # sk- API keys
        (r"AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", None),         # Google API keys
        (r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)?", None),  # JWT
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:(?:[A-Za-z0-9+/=\s]|\\[nr])*-----END [A-Z ]*PRIVATE KEY-----|"
         rf"(?:{_PEM_SEP}{_PEM_CHUNK}{_PEM_LINE_END})*)", None),                         # PEM private key
    ))


def redact_tokens(text: str) -> str:
    """``text`` with every credential-shaped value (:data:`SECRET_TOKENS`) replaced by ``[redacted]``.

    Why: the environment is not the only way a credential reaches a report -- billing data carries whatever was
    typed into a tag (an access key id ``AKIA...``, a ``ghp_`` token: ~100 times per page, in tables and chart
    data), and a kernel cannot know those values. Their shape is enough."""
    def repl(m: re.Match[str], check: Any) -> str:
        if check is not None and not check(m.group(0)):
            return m.group(0)
        return (m.group(1) if m.re.groups else "") + REDACTED

    for pattern, check in SECRET_TOKENS:
        text = pattern.sub(lambda m, c=check: repl(m, c), text)
    return text


#: Shorter values are not redacted: replacing every "admin" in a report would hide data, not secrets.
MIN_SECRET_LENGTH = 6
REDACTED = "[redacted]"


# --------------------------------------------------------------------------------------------------------------
# notebooks and their parameters

@dataclass
class Param:
    name: str
    type: str          # str | int | float | bool | list | none | any
    default: Any
    help: str = ""


@dataclass
class NotebookInfo:
    path: Path
    name: str
    title: str
    params: dict[str, Param]
    order: float = 1000.0   # place in the index's reading order (notebook metadata ``finops.order``)
    question: str = ""      # the one line the index shows: what the report answers


#: Reading order of a notebook without ``finops.order`` metadata: after the curated ones, by name.
DEFAULT_ORDER = 1000.0


def _question(nb: Any) -> str:
    """What a notebook answers, in one line: its ``finops.question`` metadata, else the paragraph its first
    Markdown cell opens with "**What this answers.**", else the first italic or plain paragraph after the title."""
    meta = nb.metadata.get("finops") or {}
    if isinstance(meta, dict) and isinstance(meta.get("question"), str) and meta["question"].strip():
        return " ".join(meta["question"].split())
    md = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    m = re.search(r"\*\*What (?:this|it) answers\.?\*\*\s*(.+?)(?:\n\s*\n|$)", md, flags=re.DOTALL | re.IGNORECASE)
    paragraphs = [x.strip() for x in re.split(r"\n\s*\n", md) if x.strip() and not x.lstrip().startswith("#")]
    text = m.group(1) if m else (paragraphs[0] if paragraphs else "")
    text = " ".join(re.sub(r"[*_`]", "", text).split())
    return text if len(text) <= 240 else text[:239].rsplit(" ", 1)[0] + "\u2026"


def _type_name(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    for t in (int, float, str, list):
        if isinstance(value, t):
            return t.__name__
    if isinstance(value, tuple):
        return "list"
    return "any"


def read_notebook_info(path: Path) -> NotebookInfo:
    """Parameters (name, type, default, help comment) of the cell tagged ``parameters``, and the title."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read notebook ({exc})") from None
    title = path.stem.replace("_", " ").capitalize()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#{1,2}\s+(.+)$", cell.source, re.MULTILINE)
            if m:
                title = m.group(1).strip()
                break
    params: dict[str, Param] = {}
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is not None:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            raise ConfigError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from None
        lines = cell.source.splitlines()
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
                node.target if isinstance(node, ast.AnnAssign) else None)
            if not isinstance(target, ast.Name) or node.value is None:
                continue
            try:
                default = ast.literal_eval(node.value)
                typ = _type_name(default)
            except (ValueError, SyntaxError):
                default, typ = ast.get_source_segment(cell.source, node.value), "any"
            line = lines[node.end_lineno - 1] if node.end_lineno else ""
            help_text = line.split("#", 1)[1].strip() if "#" in line[node.value.end_col_offset:] else ""
            params[target.id] = Param(target.id, typ, default, help_text)
    meta = nb.metadata.get("finops") or {}
    order = meta.get("order") if isinstance(meta, dict) else None
    if isinstance(order, bool) or not isinstance(order, int | float):
        order = DEFAULT_ORDER
    return NotebookInfo(path=path, name=path.stem, title=title, params=params, order=float(order),
                        question=_question(nb))


def parse_cli_value(raw: str) -> Any:
    """``-p`` values are YAML scalars or lists (``7``, ``0.5``, ``true``, ``[a, b]``, ``2026-10``)."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError):  # ValueError: a date-shaped value that is no date (2026-02-30)
        return raw  # the parameter's own check then names it


def coerce(nb: NotebookInfo, name: str, raw: str | Any, value: Any) -> Any:
    """Check ``value`` against the type of the parameter's default; returns the value to inject."""
    p = nb.params[name]
    where = f"{nb.path}: parameter {name!r}"
    if p.type in ("any", "none"):
        return value
    if p.type == "str":
        if isinstance(value, list | dict):
            raise ConfigError(f"{where} expects a string, got {raw!r}")
        return raw if isinstance(raw, str) else str(value)  # '-p team=123' stays the string "123"
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} expects true or false, got {raw!r}")
    if p.type == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} expects an integer, got {raw!r}")
    if p.type == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} expects a number, got {raw!r}")
    if p.type == "list":
        items = value if isinstance(value, list) else [value]
        elem_types = {_type_name(v) for v in (p.default or [])}
        if len(elem_types) == 1 and elem_types <= {"str", "int", "float", "bool"}:
            want = elem_types.pop()
            out = []
            for v in items:
                if want == "str" and not isinstance(v, list | dict):
                    out.append(str(v) if not isinstance(v, dt.date) else v.isoformat())
                elif want == "float" and isinstance(v, int | float) and not isinstance(v, bool):
                    out.append(float(v))
                elif _type_name(v) == want:
                    out.append(v)
                else:
                    raise ConfigError(f"{where} expects a list of {want}, got {raw!r}")
            return out
        return items
    return value


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    s = re.sub(r"-{2,}", "-", s)
    if len(s) > limit:
        s = s[:limit - 9].rstrip("-._") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return s or "x"


def report_name(notebook: str, cli_params: dict[str, Any], secrets: list[str] | None = None) -> str:
    """``tagging_audit`` or ``tagging_audit__billing_period-2026-10__team-vision``: a safe file-name stem.

    A value the slug cannot spell exactly (``-5`` would become ``5``, ``a b`` and ``a/b`` both ``a-b``) gets a short
    hash of its text, so different parameter values never share a file (``-p top_n=-5`` overwrote ``top_n=5``) --
    except values that differ only in a secret (two passwords in one URL): those name the same report on purpose,
    since no digest of a password may reach a file name.

    Secrets never reach the name: each value is :func:`redact`-ed first (the user-info of a URL, and ``secrets``,
    default: the secret values of the current environment), and the hash is of the redacted text, so the name
    does not carry even a digest of a password.
    """
    secrets = secret_values() if secrets is None else secrets
    parts = [_slug(notebook)]
    for k, v in cli_params.items():
        text = redact(v if isinstance(v, str) else json.dumps(v, default=str), secrets)
        slug, digest = _slug(text), hashlib.sha256(text.encode()).hexdigest()[:8]
        if slug != text and not slug.endswith(digest):  # long values already end in this hash
            slug = f"{slug[:51].rstrip('-._')}-{digest}"
        parts.append(f"{_slug(k, 30)}-{slug}")
    name = "__".join(parts)
    return name if len(name) <= 200 else name[:191] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _inside(out: Path, name: str, suffix: str) -> Path:
    target = (out / f"{name}{suffix}").resolve()
    if target.parent != out.resolve():
        raise ConfigError(f"report name {name!r} would leave the output folder {out}")
    return target


# --------------------------------------------------------------------------------------------------------------
# paths: a report names files relative to the project, never by their absolute local path

#: An absolute POSIX path (optionally as a file:// URL) not inside a word, a URL or a relative path -- or right after
#: an ANSI colour code (IPython tracebacks write ``\x1b[0;32m/tmp/x.py``: the ``m`` alone would look like a word).
#: Group ``ansi`` is the code's tail (kept), group 1 the path.
_ABS_PATH = re.compile(r"(?:(?<=\x1b\[)(?P<ansi>[0-9;]*m)|(?<![\w.:/~\\-]))(?:file://)?(?P<path>/(?:[\w.@+-]+/)+[\w.@+-]*)")


def project_relative(path: str | os.PathLike[str], root: Path | None = None) -> str:
    """``path`` relative to the project root (the folder ``finops-kit report`` runs in, which is also the
    kernels' working directory), so the notebook still opens it and no report shows where the project lives."""
    return os.path.relpath(Path(path).resolve(), (root or Path.cwd()).resolve())


#: The same path as Markdown text made by :func:`finops_kit.notebook.text`: every ``/ . _ @ + - :`` backslash-escaped
#: (``\\/tmp\\/rev\\-html\\/costs\\.csv``), which is how a data value sits in a Markdown output of the ``.ipynb``.
#: A segment character is a letter or digit or one escaped ``_ . @ + -``: the two cannot overlap, so no backtracking.
_MD_ABS_PATH = re.compile(r"(?<![\w.:/~\\-])(?:file\\:\\/\\/)?(?P<path>\\/(?:(?:[^\W_]|\\[_.@+-])+\\/)+(?:[^\W_]|\\[_.@+-])*)")
_MD_PATH_ESCAPE = re.compile(r"([/._@+\-])")


def localize_paths(text: str, root: Path | None = None) -> str:
    """Every absolute local path in ``text`` rewritten relative to the project root.

    Which strings are paths: a ``/``-rooted string of two or more segments whose first segment exists at the
    file-system root (``/home/..``, ``/tmp/..``, ``/usr/lib/..``); ``/per/month`` or a URL's path is left alone. The
    same path written as Markdown-escaped text (``\\/tmp\\/x\\.csv``, what ``nb.md``/``nb.text`` store in the
    ``.ipynb``) is rewritten too, and stays escaped: the rendered page showed the absolute path of a value passed
    through ``nb.text()`` because only the plain form was recognized.
    """
    base = (root or Path.cwd()).resolve()
    tops: dict[str, bool] = {}

    def local(path: str) -> str | None:
        """``path`` relative to the project, or None when it is no local path."""
        top = path.split("/", 2)[1]
        if top not in tops:
            tops[top] = bool(top) and Path("/", top).is_dir()
        if not tops[top]:
            return None
        rel = os.path.relpath(path, base)
        return rel + "/" if path.endswith("/") and not rel.endswith("/") else rel

    def repl(m: re.Match[str]) -> str:
        rel = local(m.group("path"))
        return m.group(0) if rel is None else (m.group("ansi") or "") + rel

    def repl_md(m: re.Match[str]) -> str:
        rel = local(re.sub(r"\\(.)", r"\1", m.group("path")))
        return m.group(0) if rel is None else _MD_PATH_ESCAPE.sub(r"\\\1", rel)

    text = _ABS_PATH.sub(repl, text)
    return _MD_ABS_PATH.sub(repl_md, text) if "\\/" in text else text


#: Where what :func:`localize_html` leaves alone starts: script and style elements and comments (the Vega
#: bundle's JavaScript has regular expressions like ``/run/g``; the chart data in them came from the already
#: localized ``.ipynb``) and base64 ``data:`` URIs (embedded images, CSV downloads: ``+/tmp/`` can occur in base64)
_RAW_START = re.compile(r"<(script|style)\b|<!--|data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)
_RAW_END = {"script": re.compile(r"</script\s*>", re.IGNORECASE), "style": re.compile(r"</style\s*>", re.IGNORECASE),
            None: re.compile("-->")}
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]*")
#: A character after which no absolute path starts (what ``_ABS_PATH``'s look-behind refuses): ``x/tmp/y``,
#: ``service/dev/api-1`` in an ECS ARN, ``a/run/g``
_NO_PATH_BEFORE = frozenset(".:/~\\-_")
_ANSI_BEFORE = re.compile(r"\x1b\[[0-9;]*m\Z")


def _raw_ranges(page: str) -> tuple[list[int], list[int]]:
    """The (starts, ends) of the parts of ``page`` :func:`localize_html` leaves alone, in order, found in one pass:
    each search goes on from the end of the previous part. An element or comment that is never closed runs to the
    end of the page (as a browser reads it)."""
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    while (m := _RAW_START.search(page, pos)) is not None:
        if m.group(0).endswith(";base64,"):
            end = _BASE64_RUN.match(page, m.end()).end()
        else:
            close = _RAW_END[m.group(1) and m.group(1).lower()].search(page, m.end())
            end = len(page) if close is None else close.end()
        starts.append(m.start())
        ends.append(end)
        pos = max(end, m.start() + 1)
    return starts, ends


def _root_dirs_pattern() -> re.Pattern[str] | None:
    """``/tmp/``, ``/home/``, ... (or ``/tmp\\``, escaped) for every folder at the file-system root: what every
    local path :func:`localize_paths` rewrites starts with. Starts with a literal ``/``, so it is a fast search."""
    try:
        tops = sorted(d for d in os.listdir("/") if os.path.isdir(os.path.join("/", d)))
    except OSError:
        return None
    return re.compile("/(?:" + "|".join(map(re.escape, tops)) + r")[/\\]") if tops else None


def _path_may_start(page: str, i: int) -> bool:
    """Whether a path starting with the ``/`` at ``i`` may be one :func:`localize_paths` rewrites: at a path
    boundary (start of text, after white space, a quote, ``>``, ``(``, ``=``...), after ``file://``, after the
    backslash of a Markdown-escaped path, or after an ANSI colour code -- never after a word character or ``/``."""
    if page.endswith("file://", 0, i):
        i -= 7
    elif page.endswith("\\", 0, i):
        i -= 1
        if page.endswith("file\\:\\/\\/", 0, i):
            i -= 10
    if i == 0:
        return True
    c = page[i - 1]
    if c == "m" and _ANSI_BEFORE.search(page, max(0, i - 32), i):
        return True
    return not (c.isalnum() or c in _NO_PATH_BEFORE)


def localize_html(page: str, root: Path | None = None) -> str:
    """:func:`localize_paths` applied to the text and attributes of a rendered page, outside scripts, styles,
    comments and base64 ``data:`` URIs.

    Why the page as well as the ``.ipynb``: nbconvert renders Markdown outputs from their escaped source, so a path
    that sat escaped in the notebook (``nb.md(f"**{nb.text(src)}**")``) came out of the renderer plain and
    absolute: ``<strong>/tmp/rev-html/in/costs.csv</strong>``.

    Linear time: the parts left alone are found once, in one pass (:func:`_raw_ranges`), and each ``/tmp/``...
    that starts a path is looked up among them by bisection; only the text between them that holds one is
    rewritten. (Searching back over the page from every ``/dev/``, ``/run/``, ``/tmp/`` for the last ``<script``,
    ``<!--`` and ``;base64,`` took 17.6 s on a 2 MB page of chart data, and an ECS ARN's ``cluster/dev/`` counted.)
    A page with no such path outside the raw parts is returned as it is."""
    pattern = _root_dirs_pattern()
    if pattern is None:
        return page
    hits = [m.start() for m in pattern.finditer(page) if _path_may_start(page, m.start())]
    if not hits:
        return page
    starts, ends = _raw_ranges(page)
    todo: set[int] = set()  # index k of the text between raw part k-1 and raw part k
    for h in hits:
        k = bisect.bisect_right(starts, h)  # raw parts starting at or before h: the last one may hold it
        if k == 0 or ends[k - 1] <= h:
            todo.add(k)
    if not todo:
        return page
    out: list[str] = []
    bounds = [0, *ends]
    for k in range(len(starts) + 1):
        lo, hi = bounds[k], starts[k] if k < len(starts) else len(page)
        if lo < hi:
            out.append(localize_paths(page[lo:hi], root) if k in todo else page[lo:hi])
        if k < len(starts):
            out.append(page[starts[k]:ends[k]])
    return "".join(out)


def _local_path_hint() -> re.Pattern[str] | None:
    """A fast search for what every path :func:`localize_paths` rewrites holds: ``/<d>/`` for a folder ``d`` at the
    file-system root, or the same Markdown-escaped (``\\/<d>\\/``, its ``_ . @ + -`` escaped too); a string without
    one is left as it is. None when the root cannot be listed (every string is then searched in full)."""
    try:
        tops = sorted(d for d in os.listdir("/") if os.path.isdir(os.path.join("/", d)))
    except OSError:
        return None
    tops += [".", ".."]  # /./x and /../x: ``Path("/", ".")`` is a folder too
    plain = "|".join(map(re.escape, tops))
    escaped = "|".join(re.escape(_MD_PATH_ESCAPE.sub(r"\\\1", d)) for d in tops)
    # case-blind: on a case-insensitive file system /TMP/x is a local path as well
    # the closing slash is looked ahead at, not taken: it may open the next path (/x@/tmp/y)
    return re.compile(rf"/(?:{plain})(?=/)|\\/(?:{escaped})(?=\\/)", re.IGNORECASE)


def localize_node(node: Any, root: Path | None = None) -> Any:
    """:func:`localize_paths` applied to every string of a (parsed) notebook: sources, outputs, metadata.

    Only strings that hold a root folder's name between slashes (:func:`_local_path_hint`) go through
    :func:`localize_paths`, whose path pattern is tried at every character: a report's HTML outputs (tables, chart
    embeds: ~0.4 MB each) took 0.1 s of the runner's CPU per suite of six, and none of them names a local file."""
    hint = _local_path_hint()

    def may_hold_path(text: str) -> bool:
        # a root folder's name between slashes where a path may start (not in ../../work/x: :func:`_path_may_start`)
        return hint is None or any(_path_may_start(text, m.start() + (text[m.start()] == "\\"))
                                   for m in hint.finditer(text))

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return localize_paths(node, root) if "/" in node and may_hold_path(node) else node
        if isinstance(node, dict):
            for k, v in node.items():
                node[k] = walk(v)
            return node
        if isinstance(node, list):
            for i, v in enumerate(node):
                node[i] = walk(v)
            return node
        return node

    return walk(node)


# --------------------------------------------------------------------------------------------------------------
# secrets

#: Names the broad pattern matches that are known not to be credentials (working directories, session ids,
#: socket paths): redacting their values would blank every path in a report.
NOT_SECRET = frozenset({"PWD", "OLDPWD", "XAUTHORITY", "SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "XDG_SESSION_ID",
                        "XDG_SESSION_TYPE", "XDG_SESSION_CLASS", "XDG_SESSION_DESKTOP", "XDG_SESSION_PATH"})


def is_secret(name: str, value: str) -> bool:
    """Whether an environment variable carries a credential (by its name or by what its value looks like)."""
    if name.upper() in NOT_SECRET:
        return bool(SECRET_VALUE.search(value))
    return bool(SECRET_NAME.search(name) or SECRET_VALUE.search(value))


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Every secret value of ``environ`` (default: the real environment) in the forms it can take in a report.

    Must be called on the environment *before* :func:`kernel_environment` scrubs it. Besides the value itself:
    the password of a URL's user-info (a cell may print the parsed URL; it may hold an ``@``), and the value as it appears escaped in
    the ``.ipynb`` JSON and in the HTML. Longest first, so a value containing another is replaced whole.
    """
    env = os.environ if environ is None else environ
    vals: set[str] = set()
    for k, v in env.items():
        if not is_secret(k, v):
            continue
        forms = {v}
        for m in re.finditer(r"://([^/\s:@]*):([^/\s]+)@", v):  # to the last '@': more than the mask takes
            forms.add(m.group(2))
        for f in list(forms):
            forms |= {json.dumps(f)[1:-1], html.escape(f), html.escape(json.dumps(f)[1:-1])}
        vals |= {f for f in forms if len(f) >= MIN_SECRET_LENGTH}
    return sorted(vals, key=lambda x: (-len(x), x))


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value, the user-info of every URL and every credential-shaped value
    (:func:`redact_tokens`) replaced by ``[redacted]``."""
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return redact_tokens(strip_credentials(text, REDACTED))


def redact_value(value: Any, secrets: list[str]) -> Any:
    """:func:`redact` applied to every string of a parameter value (strings, lists, dicts; other values as they are)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    if isinstance(value, dict):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    return value


#: A CSV download link of :func:`finops_kit.notebook.csv_link`: its text is base64, which :func:`redact` cannot read
_CSV_DATA_URI = re.compile(r"data:text/csv;base64,([A-Za-z0-9+/=]+)")


def redact_output(text: str, secrets: list[str]) -> str:
    """A report page or executed notebook redacted whole: its text (:func:`redact`) and its CSV download links
    (:func:`redact_data_links`)."""
    return redact(redact_data_links(text, secrets), secrets)


def redact_data_links(text: str, secrets: list[str]) -> str:
    """``text`` with every base64 CSV ``data:`` link decoded, :func:`redact`-ed and encoded again.

    Why here and not only in the kernel: the kernels run with the secrets scrubbed from their environment
    (:func:`kernel_environment`), so a kernel cannot know a secret value that also occurs in the data; the runner,
    which has the values, cleans the links of the page and of the executed notebook."""
    import base64
    import binascii

    if "data:text/csv;base64," not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        try:
            csv = base64.b64decode(m.group(1), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return m.group(0)
        clean = redact(csv, secrets)
        if clean == csv:
            return m.group(0)
        return "data:text/csv;base64," + base64.b64encode(clean.encode("utf-8")).decode("ascii")

    return _CSV_DATA_URI.sub(repl, text)


@contextlib.contextmanager
def kernel_environment(workers: int = 1):
    """The environment the kernels inherit: secrets removed, ``FINOPS_REPORT=1`` set, DuckDB's threads per kernel
    (``FINOPS_DUCKDB_THREADS``, unless set already) the cores divided among the ``workers`` reports that run at
    once; restored afterwards.

    Why the threads: DuckDB on every core in each of two kernels of a 2-core machine spends 2-7% more CPU on the
    same queries (measured on the tag audit, AI and storage reports, one process, quiet machine) -- CPU the other
    report needs.

    Yields the secret values of the environment as it was *before* scrubbing (what the outputs must not contain).
    """
    from .warehouse import THREADS_ENV

    saved = dict(os.environ)
    secrets = secret_values(saved)
    for k, v in saved.items():
        if is_secret(k, v):
            del os.environ[k]
    os.environ["FINOPS_REPORT"] = "1"
    os.environ.setdefault(THREADS_ENV, str(max(1, available_cores() // max(1, workers))))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        yield secrets
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --------------------------------------------------------------------------------------------------------------
# kernels

_IPC_MANAGER: type | None = None

#: Seconds a report kernel gets to stop after the shutdown request before SIGTERM (half) and SIGKILL (all); see
#: :func:`ipc_kernel_manager`. jupyter_client's default is 5 s.
REPORT_KERNEL_SHUTDOWN_WAIT_S = 1.0


def ipc_kernel_manager() -> type:
    """A kernel manager class whose kernels talk over Unix-domain sockets (``ipc``) instead of local TCP ports.

    Why: on TCP, ipykernel 7 prints "Kernel is running over TCP without encryption" for every kernel (anyone on
    the machine can connect to its ports). IPC sockets are files readable only by this user, so the kernel has
    nothing to warn about. Each kernel gets its own socket path in the temp folder (jupyter_client's default,
    ``kernel-ipc`` in the working directory, would make concurrent kernels share sockets and leave files in the
    project); jupyter_client removes the socket files when the kernel shuts down.

    Also, shutdown: a report's kernel has nothing left to save once its last cell has run, and ipykernel 7 can hang
    on the way out -- its control thread, after replying to the shutdown request, flushes stdout and waits (up to
    10 s) on the IOPub thread that the main thread is stopping at the same moment, while the main thread waits for
    the control thread. jupyter_client then sends SIGTERM only after half of ``shutdown_wait_time`` (5 s by
    default): 2.5-3.5 s lost in about one kernel in eight (2 of 12 empty notebooks in a run, 3 of 36 in three). The
    report kernel's wait is 1 s: a kernel that exits normally does so in ~0.1 s, one caught in that race gets
    SIGTERM after 0.5 s.

    Also: jupyter_client interrupts (SIGINT) every kernel before it asks it to shut down. A report's kernel is idle
    by then, and ipykernel logs "ERROR | KeyboardInterrupt caught in kernel" to the terminal for a signal that
    interrupts nothing -- a false error line during ``make demo``. The manager skips that interrupt while shutting
    down; the shutdown request stops an idle kernel, and one still busy (a timed-out cell) is killed after
    jupyter_client's shutdown wait, as before.
    """
    global _IPC_MANAGER
    if _IPC_MANAGER is None:
        import tempfile
        import uuid

        from jupyter_client import AsyncKernelManager
        from traitlets import default

        class IPCKernelManager(AsyncKernelManager):
            @default("transport")
            def _default_transport(self) -> str:
                return "ipc"

            @default("ip")
            def _default_ip(self) -> str:
                return str(Path(tempfile.gettempdir()) / f"finops-kit-{os.getpid()}-{uuid.uuid4().hex[:12]}-ipc")

            @default("shutdown_wait_time")
            def _default_shutdown_wait_time(self) -> float:
                return REPORT_KERNEL_SHUTDOWN_WAIT_S

            async def _async_interrupt_kernel(self) -> None:
                if self.shutting_down:  # set by shutdown_kernel before its interrupt
                    return
                await super()._async_interrupt_kernel()

        _IPC_MANAGER = IPCKernelManager
    return _IPC_MANAGER


#: Options every report kernel starts with (``ipykernel`` command line). ``exec_lines`` runs before the first cell:
#: jsonschema (imported by Altair to validate chart specs) builds an Earley parser for RFC 3987 IRI syntax at import
#: time when ``rfc3987_syntax`` is installed (jupyterlab's dependencies install it): 1.0-1.2 s of CPU in every
#: kernel, 7 s per suite of six reports on two cores, for the ``iri``/``iri-reference`` formats, which the Vega-Lite
#: schema never uses (it has ``uri``, ``uri-reference`` and ``color-hex``). A report kernel makes that import fail
#: (jsonschema then simply has no IRI checker); every chart is validated and rendered as before. The other optional
#: format checkers jsonschema imports with it (:data:`UNUSED_FORMAT_CHECKERS`: URI, date-time, colour, URI-template,
#: host-name and duration syntax; 50 ms of every report kernel's ``import altair``) go the same way: Altair validates
#: without a format checker, so none of them ever checks a value (a chart whose usermeta href has a space validates
#: with or without them), and a report kernel does not validate its charts at all (:func:`finops_kit.notebook.setup`).
UNUSED_FORMAT_CHECKERS = ("rfc3987_syntax", "rfc3986_validator", "rfc3339_validator", "webcolors", "uri_template",
                          "fqdn", "isoduration")
#: At the kernel's exit (after the last cell; atexit runs it before IPython's own exit handler, registered earlier)
#: the objects the report made are moved out of the garbage collector's reach: IPython's exit handler resets the
#: namespace and runs a full collection (``DisplayHook.flush``), 60 ms of a report kernel's heap of frames, charts
#: and modules -- time the runner waited for, freeing memory the process is about to give back anyway.
KERNEL_ARGUMENTS = ("--IPKernelApp.exec_lines=import sys; "
                    + "; ".join(f"sys.modules.setdefault({m!r}, None)" for m in UNUSED_FORMAT_CHECKERS)
                    + "; __import__('atexit').register(__import__('gc').freeze)",)

#: The papermill engine the reports run with (:func:`papermill_engine`).
ENGINE = "finops-final-save"
_ENGINE_REGISTERED = False


def papermill_engine() -> str:
    """Register (once) and name papermill's nbclient engine with the executed notebook written when it completes.

    Why: papermill's execution manager writes the whole ``.ipynb`` at the start AND the end of every cell
    (``nbformat.writes`` with schema validation, of a notebook that grows to megabytes of chart specs): ~60 writes
    per report, 4-5 s of this process's CPU per suite of six -- while the kernels need both cores. The file is
    only read once the notebook is done, and the manager's ``notebook_complete`` runs in a ``finally``, so a
    failing, timed-out or dead-kernel notebook is still written with every output up to the cell that stopped it
    (what the error page shows). Only a live view of the file during a run is given up.

    ``notebook_complete`` writes only when the execution raised (a cell or notebook timeout, a dead kernel, a kernel
    that did not start): when it returns -- every cell run, or stopped at a failing cell --
    ``papermill.execute_notebook`` itself writes the notebook right after (with its error marker cells on a failure),
    and the manager's write of the same notebook just before it was overwritten unread (nbformat's validation and
    JSON of a 0.4-0.7 MB notebook: 0.1-0.2 s of the runner's CPU per suite of six).
    """
    global _ENGINE_REGISTERED
    if not _ENGINE_REGISTERED:
        from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

        class FinalSaveManager(NotebookExecutionManager):
            """Writes the notebook in :meth:`notebook_complete` only (called in a ``finally``), and there only when
            the execution raised (``final``, set by the engine below)."""

            final = False

            def save(self, **kwargs: Any) -> None:
                if self.final:
                    super().save(**kwargs)
                else:
                    self.last_save_time = self.now()

        class FinalSaveEngine(NBClientEngine):
            @classmethod
            def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                                 progress_bar: bool | dict[str, Any] = True, log_output: bool = False,
                                 autosave_cell_every: int = 30, **kwargs: Any) -> Any:
                # papermill's Engine.execute_notebook with the manager above
                nb_man = FinalSaveManager(nb, output_path=output_path, progress_bar=progress_bar,
                                          log_output=log_output, autosave_cell_every=autosave_cell_every)
                nb_man.notebook_start()
                try:
                    cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
                except BaseException:
                    nb_man.final = True  # papermill writes nothing after this: notebook_complete must
                    raise
                finally:
                    nb_man.cleanup_pbar()
                    nb_man.notebook_complete()
                return nb_man.nb

        papermill_engines.register(ENGINE, FinalSaveEngine)
        _ENGINE_REGISTERED = True
    return ENGINE


# --------------------------------------------------------------------------------------------------------------
# running

@dataclass
class ReportResult:
    name: str
    notebook: str
    title: str
    status: str                       # ok | failed | timeout
    parameters: dict[str, Any]
    html: str
    ipynb: str | None
    started: str
    duration_s: float
    attempts: int = 1
    error: str | None = None
    failed_cell: int | None = None
    order: float = DEFAULT_ORDER
    question: str = ""
    #: the data the report read: ``{"sha256", "files"}`` of the warehouse's active source files when its kernel
    #: started (:func:`input_fingerprint`; ``"changed": True`` when an ingest changed it while the kernel ran)
    input: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    info: NotebookInfo
    name: str
    parameters: dict[str, Any]
    cli_parameters: dict[str, Any]


class Runner:
    """Runs jobs in this process: papermill for execution, one nbconvert exporter reused for every report."""

    def __init__(self, out: Path, timeout_cell: float, timeout_notebook: float, code: str | bool = "folded",
                 progress: bool = False, kernel_name: str | None = None, retries: int = 1,
                 secrets: list[str] | None = None):
        from . import assets

        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(out)
        self.timeout_cell = float(timeout_cell)
        self.timeout_notebook = float(timeout_notebook)
        self.code = code_mode(code)
        self.progress = progress
        self._lock = threading.Lock()  # reports run in threads: one export at a time (it is GIL-bound anyway)
        self.kernel_name = kernel_name
        self.retries = retries
        self.vega_bundle = assets.load_vega_bundle()  # read once per run
        self._widget_manager: str | None | bool = False  # loaded on first notebook with widgets
        self._exporters: dict[str, Any] = {}
        self.fingerprints = InputFingerprints()  # what each report read: taken twice per report, read once per run
        # the caller passes the values found before the environment was scrubbed; computing them here, inside
        # kernel_environment(), would find none
        self.secrets = secret_values() if secrets is None else secrets

    def widget_manager(self) -> str | None:
        """The widget manager's embed.js, read at most once per run (only when a page displays a widget)."""
        if self._widget_manager is False:
            from . import assets

            self._widget_manager = assets.load_widget_manager()
        return self._widget_manager  # type: ignore[return-value]

    def exporter(self, code: str):
        """One nbconvert exporter per code mode, reused for every report of the run."""
        if code not in self._exporters:
            prompts = code == "shown"  # In [n]: / Out[n]: only belong next to visible code
            self._exporters[code] = report_exporter_class()(
                template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATE_DIR)], embed_images=True,
                # the notebook is validated once after the preprocessors, not after each of them (12 per page)
                optimistic_validation=True,
                exclude_input=code == "hidden", exclude_input_prompt=not prompts, exclude_output_prompt=not prompts)
        return self._exporters[code]

    # -- execution ------------------------------------------------------------------------------------------
    def _progress_bar(self, job: Job, slot: int) -> dict[str, Any] | bool:
        """papermill's tqdm bar (cells done / total) labelled with the report name, on line ``slot`` of the
        reports running at once; on a TTY only."""
        if not self.progress:
            return False
        return {"desc": job.name[:40], "unit": "cell", "leave": False, "file": sys.stderr, "position": slot,
                "dynamic_ncols": True, "bar_format": "{desc}: {bar} {n_fmt}/{total_fmt} cells [{elapsed}]"}

    def _execute_once(self, job: Job, ipynb: Path, slot: int = 0) -> tuple[str, str | None, int | None]:
        """One papermill attempt -> (status, error message, failing cell index)."""
        import nbformat
        import papermill as pm
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        deadline = time.monotonic() + self.timeout_notebook

        def timeout_func(cell: Any) -> int:
            # per-cell timeout, shrunk so that the notebook as a whole cannot exceed its budget
            return max(1, int(min(self.timeout_cell, deadline - time.monotonic()) + 0.999))

        nb = nbformat.read(str(job.info.path), as_version=4)
        kernel = self.kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
        try:
            pm.execute_notebook(
                nb, str(ipynb), parameters=job.parameters, kernel_name=kernel, cwd=os.getcwd(),
                progress_bar=self._progress_bar(job, slot), log_output=False, request_save_on_cell_execute=True,
                execution_timeout=int(self.timeout_cell), timeout_func=timeout_func, start_timeout=120,
                kernel_manager_class=ipc_kernel_manager(), extra_arguments=list(KERNEL_ARGUMENTS),
                engine_name=papermill_engine())
            return "ok", None, None
        except pm.PapermillExecutionError as exc:
            return "failed", f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}", exc.cell_index
        except CellTimeoutError:
            over = time.monotonic() >= deadline - 1
            what = (f"notebook timeout: the notebook exceeded {self.timeout_notebook:g} s" if over
                    else f"cell timeout: a cell exceeded {self.timeout_cell:g} s")
            cell = _mark_timed_out_cell(ipynb, what)
            return "timeout", what, cell
        except DeadKernelError as exc:
            return "timeout", f"kernel died: {' '.join(str(exc).split())[:300]}", _mark_timed_out_cell(
                ipynb, "kernel died")
        except Exception as exc:  # noqa: BLE001 - kernel start failures etc. must not stop the other reports
            return "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", None

    def run(self, job: Job, slot: int = 0) -> ReportResult:
        """Run one report. Its files are written under temporary hidden names in the output folder and moved into
        place (``os.replace``: atomic) only once both are complete, so a run killed part-way leaves the previous
        run's ``.html``/``.ipynb`` and their index entries as they were -- it used to delete each running report's
        ``.ipynb`` first, and the index kept linking to it."""
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        ipynb = _inside(self.out, job.name, ".ipynb")
        html_path = _inside(self.out, job.name, ".html")
        tmp_ipynb, tmp_html = (self.out / f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}.{job.name}{suffix}"
                               for suffix in (".ipynb", ".html"))
        attempts = 0
        status, error, cell = "failed", None, None
        read = _job_input(job, self.fingerprints)
        try:
            for attempts in range(1, self.retries + 2):  # noqa: B007 - retry only timeouts / dead kernels
                tmp_ipynb.unlink(missing_ok=True)
                status, error, cell = self._execute_once(job, tmp_ipynb, slot)
                error = redact(localize_paths(error), self.secrets) if error else error
                if status != "timeout":
                    break
            executed = tmp_ipynb if tmp_ipynb.exists() else None
            if executed is not None:
                self._redact_file(executed, ipynb.name)
            try:
                page = self.render(job, executed, status, error, cell, ipynb.name)
            except Exception as exc:  # noqa: BLE001 - an export failure is one failed report, not a crashed run
                status = "failed"
                error = redact(f"HTML export failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                               self.secrets)
                page = error_page(job, error, ipynb.name if executed else None)
            tmp_html.write_text(redact_output(localize_html(page), self.secrets), encoding="utf-8")
            if executed is not None:
                os.replace(executed, ipynb)
            else:  # this run has no executed notebook: an earlier run's would not match the new page
                ipynb.unlink(missing_ok=True)
            os.replace(tmp_html, html_path)
            after = _job_input(job, self.fingerprints)
            if read is not None and after is not None and after["sha256"] != read["sha256"]:
                read = {**after, "changed": True}  # an ingest landed while the kernel ran: it may have read both
        finally:
            for tmp in (tmp_ipynb, tmp_html):
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
        return ReportResult(
            name=job.name, notebook=project_relative(job.info.path), title=job.info.title, status=status,
            parameters=redact_value(dict(job.parameters), self.secrets), html=html_path.name,
            ipynb=ipynb.name if executed is not None else None, started=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            duration_s=round(time.monotonic() - t0, 2), attempts=attempts, error=error, failed_cell=cell,
            order=job.info.order, question=job.info.question, input=read)

    def _redact_file(self, path: Path, final_name: str | None = None) -> None:
        """Secrets out of the executed notebook, and its absolute local paths made relative to the project; the
        output path papermill recorded names the file it becomes (``final_name``), not its temporary name."""
        import nbformat

        text = path.read_text(encoding="utf-8")
        clean = redact_output(text, self.secrets)
        book = nbformat.reads(clean, as_version=4)
        pm_meta = book.metadata.get("papermill")
        if final_name and isinstance(pm_meta, dict) and pm_meta.get("output_path"):
            pm_meta["output_path"] = str(Path(pm_meta["output_path"]).with_name(final_name))
        book = localize_node(book)
        out = nbformat.writes(book) + "\n"
        if out != text:
            path.write_text(out, encoding="utf-8")

    # -- export ---------------------------------------------------------------------------------------------
    def render(self, job: Job, executed: Path | None, status: str, error: str | None, cell: int | None,
               ipynb_name: str | None = None) -> str:
        """The page of a report; ``ipynb_name``: the name its executed notebook will have (default: ``executed``'s)."""
        if executed is None:
            return error_page(job, error or "the notebook did not run", None)
        import nbformat

        nb = nbformat.read(str(executed), as_version=4)
        nb.metadata["title"] = job.info.title
        has_widgets = bool(widget_views(nb))
        if not has_widgets:
            # widgets were created (an explorer behind nb.live_only) but none is displayed: the 1.9 MB manager
            # and the stored state would render nothing, so neither goes into the page (the .ipynb keeps them)
            nb.metadata.pop("widgets", None)
        resources: dict[str, Any] = {
            "metadata": {"path": str(job.info.path.parent.resolve()), "name": job.name},
            "finops": {
                "vega_bundle": self.vega_bundle,
                "widget_manager": None,  # read under the lock below, once per run
                "error": None if status == "ok" else {
                    "status": status, "message": error or "", "ipynb": ipynb_name or executed.name,
                    "cell": cell,
                },
            },
        }
        code = self.code if status == "ok" else "shown"  # error pages always show the failing code
        resources["finops"]["code"] = code
        resources["finops"]["parameters_html"] = injected_parameters_html(nb)
        with self._lock:
            if has_widgets:
                resources["finops"]["widget_manager"] = self.widget_manager()
            body, _ = self.exporter(code).from_notebook_node(nb, resources=resources)
        return body


_REPORT_EXPORTER: type | None = None

#: The alternative text nbconvert gives an image that has none (its HTMLExporter's words).
NO_ALT_TEXT = "No description has been provided for this image"
_RAW_TEXT = re.compile(r"(<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!--.*?-->)", re.IGNORECASE | re.DOTALL)
#: :data:`_RAW_TEXT`'s openers, and the closer each one's ``.*?`` runs to (:func:`_raw_split`)
#: (told apart by group name: case-blind matching also takes ``<ſcript`` and ``<scrıpt``, which ``.lower()`` would
#: not name; the groups after the ``<``, so the regex engine still finds each candidate by a fast search for ``<``)
_RAW_OPEN = re.compile(r"<(?:(?P<script>script\b)|(?P<style>style\b)|(?P<comment>!--))", re.IGNORECASE)
_RAW_CLOSE = {"script": re.compile(r"</script\s*>", re.IGNORECASE), "style": re.compile(r"</style\s*>", re.IGNORECASE),
              "comment": re.compile(r"-->")}


def _raw_split(page: str) -> list[str]:
    """``_RAW_TEXT.split(page)``: the text between scripts, styles and comments at even indexes, those at odd ones.

    Why not the split itself: its lazy ``.*?`` tries the closing tag at every character of the 1.2 MB Vega bundle
    of every page, 11 ms a page; here each opener's closing tag is searched for once, from the opener on (the
    first closing tag after it, as ``.*?`` finds; an opener never closed is text, as there)."""
    parts: list[str] = []
    last = pos = 0
    while (m := _RAW_OPEN.search(page, pos)) is not None:
        close = _RAW_CLOSE[m.lastgroup].search(page, m.end())  # type: ignore[index]
        if close is None:  # the pattern fails here; the split goes on from the next character
            pos = m.start() + 1
            continue
        parts += [page[last:m.start()], page[m.start():close.end()]]
        last = pos = close.end()
    parts.append(page[last:])
    return parts
_IMG_WITHOUT_ALT = re.compile(r"(?i:<img)\b(?![^>]*\s(?i:alt)\s*=)")
_FOCUS_CLASSES = r"(?:jp-Cell-inputWrapper|jp-OutputArea-output)"
_FOCUSABLE_DIV = re.compile(  # a div whose class list has one of the two classes, and no tabindex yet
    rf"""(?i:<div)\b(?=[^>]*\s(?i:class)\s*=\s*(?:"(?:[^"]*\s)?{_FOCUS_CLASSES}(?:\s[^"]*)?"|"""
    rf"""'(?:[^']*\s)?{_FOCUS_CLASSES}(?:\s[^']*)?'))(?![^>]*\s(?i:tabindex)\s*=)""")


def accessible_html(page: str) -> str:
    """What nbconvert's HTMLExporter does to a page after rendering it: images without alternative text get
    nbconvert's generic one, and every cell input and output area becomes focusable (``tabindex="0"``) for
    keyboard and screen-reader users.

    Why not nbconvert's own pass: it parses and re-serializes the whole page with BeautifulSoup's pure-Python HTML
    parser -- 0.27 s for a 2 MB report, ~1.6 s of the runner's CPU per suite of six, while the kernels need both
    cores -- to add three kinds of attribute to markup that nbconvert's own templates wrote. The tags are found
    here by their opening tag instead (the test checks that the result is the same document as nbconvert's).
    """
    parts = _raw_split(page)  # odd indexes: script/style/comment, left as they are (a parser does not
    for i in range(0, len(parts), 2):  # see tags in them: the Vega bundle's JavaScript writes "<img ...")
        parts[i] = _FOCUSABLE_DIV.sub('<div tabindex="0"', _IMG_WITHOUT_ALT.sub(f'<img alt="{NO_ALT_TEXT}"', parts[i]))
    return "".join(parts)


def report_exporter_class() -> type:
    """nbconvert's HTMLExporter with its BeautifulSoup pass replaced by :func:`accessible_html` (same page)."""
    global _REPORT_EXPORTER
    if _REPORT_EXPORTER is None:
        from nbconvert import HTMLExporter
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        class ReportHTMLExporter(HTMLExporter):
            def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None,
                                   **kw: Any) -> tuple[str, dict[str, Any]]:
                # HTMLExporter.from_notebook_node (nbconvert 7.17) up to its BeautifulSoup pass
                langinfo = nb.metadata.get("language_info", {})
                lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
                highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
                resources = self._init_resources(resources)
                filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self,
                                                         resources=resources)
                self.register_filter("highlight_code", highlight_code)
                self.register_filter("filter_data_type", filter_data_type)
                page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
                return accessible_html(page), resources

        _REPORT_EXPORTER = ReportHTMLExporter
    return _REPORT_EXPORTER


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_views(book: Any) -> list[str]:
    """Model ids of the widget views a notebook's outputs display (what the page's widget manager would draw).

    papermill stores the state of every widget a kernel created, displayed or not; only a displayed view makes
    the HTML manager worth its bytes.
    """
    ids = []
    for c in book.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            view = o.get("data", {}).get(WIDGET_VIEW)
            if isinstance(view, dict) and view.get("model_id"):
                ids.append(str(view["model_id"]))
    return ids


def _mark_timed_out_cell(ipynb: Path, message: str) -> int | None:
    """Add an error output to the cell that was running when the timeout hit, so the page shows it."""
    import nbformat

    if not ipynb.exists():
        return None
    nb = nbformat.read(str(ipynb), as_version=4)
    index = None
    for i, c in enumerate(nb.cells):
        meta = c.metadata.get("papermill", {})
        if c.cell_type == "code" and meta.get("start_time"):
            index = i
    if index is None:
        return None
    nb.cells[index].outputs.append(nbformat.v4.new_output(
        "error", ename="Timeout", evalue=message, traceback=[f"Timeout: {message}"]))
    nbformat.write(nb, str(ipynb))
    return index


def error_page(job: Job, message: str, ipynb_name: str | None) -> str:
    """A minimal self-contained page for a report that produced no executed notebook."""
    link = f'<p>Executed notebook: <a href="{html.escape(ipynb_name)}">{html.escape(ipynb_name)}</a></p>' \
        if ipynb_name else "<p>No executed notebook was produced.</p>"
    params = html.escape(json.dumps(job.parameters, indent=1, default=str))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>FAILED: '
            f'{html.escape(job.info.title)}</title></head><body style="font-family:system-ui,sans-serif">'
            f'<h1>Report failed: {html.escape(job.info.title)}</h1>'
            f'<p style="color:#c62828"><b>{html.escape(message)}</b></p>{link}'
            f'<h2>Parameters</h2><pre>{params}</pre></body></html>')


# --------------------------------------------------------------------------------------------------------------
# index

def write_index(out: Path, results: list[ReportResult], coverage: dict[str, Any] | None = None,
                secrets: list[str] | None = None) -> None:
    """``index.json`` (merged with earlier reports still present in the folder) and ``index.html``: the cover
    page -- what data the reports cover (:func:`data_coverage`), then the reports in reading order.

    Both files are :func:`redact`-ed (URL user-info, and ``secrets``: the run's secret values), so a parameter
    value or an error message never writes a credential into them."""
    secrets = secrets or []
    index_json = out / "index.json"
    entries: dict[str, dict[str, Any]] = {}
    previous: dict[str, Any] = {}
    if index_json.exists():
        with contextlib.suppress(ValueError, OSError):
            previous = json.loads(index_json.read_text(encoding="utf-8"))
            for e in previous.get("reports", []):
                if isinstance(e, dict) and (kept := _kept_entry(out, e)) is not None:
                    entries[str(e.get("name"))] = kept
    for r in results:
        entries[r.name] = asdict(r)
    ordered = sorted(entries.values(), key=_reading_order)
    if coverage is None and isinstance(previous.get("coverage"), dict):
        coverage = previous["coverage"]
    for entry in ordered:  # for a scheduler reading index.json: which entries read other data than "coverage"
        entry["other_data"] = other_data(entry, coverage)
    _write_atomically(index_json, redact(json.dumps({"generated": _now(), "coverage": coverage, "reports": ordered},
                                                    indent=2, default=str), secrets) + "\n")
    _write_atomically(out / "index.html", redact(index_html(ordered, coverage), secrets))


#: The status of an earlier run's entry whose page is gone while its executed notebook is there (:func:`_kept_entry`)
HTML_MISSING = "html missing"


def _file_in(out: Path, value: Any) -> str | None:
    """``value`` when it names a file directly in ``out`` (a report's own ``<name>.html``/``.ipynb``), else None:
    the index links only to files that are there, and never -- an edited or foreign index.json -- to an absolute
    path or one outside the folder."""
    name = _file_name(value)
    return name if name is not None and (out / name).is_file() else None


def _file_name(value: Any) -> str | None:
    """``value`` when it is a plain file name (no folder, not absolute), else None."""
    if not isinstance(value, str) or value in ("", ".", "..") or value != Path(value).name or "\\" in value:
        return None
    return value


def _kept_entry(out: Path, e: dict[str, Any]) -> dict[str, Any] | None:
    """An earlier run's index entry as the folder holds it now: None when neither its page nor its executed
    notebook is there; listed as :data:`HTML_MISSING` (its status and error as rendered kept under ``rendered``,
    and given back when the page is there again) when only the notebook is -- the work is not lost, and the index
    says how to get the page back instead of dropping the report."""
    rendered = e.get("rendered") if e.get("status") == HTML_MISSING else None
    if not isinstance(rendered, dict):
        rendered = e
    rendered = {"status": rendered.get("status"), "error": rendered.get("error"),
                "html": _file_name(rendered.get("html"))}
    page, book = _file_in(out, e.get("html") or rendered.get("html")), _file_in(out, e.get("ipynb"))
    if page is None and book is None:
        return None
    e = dict(e, html=page, ipynb=book)
    e.pop("rendered", None)
    if page is not None:  # there (again: rendered anew, or restored from a copy): the entry as it was
        e.update(status=rendered.get("status"), error=rendered.get("error"))
        return e
    gone = rendered["html"] or f"{e.get('name')}.html"
    notebook, command = rerun_command(out, e)
    e.update(status=HTML_MISSING, rendered=rendered,
             error=f"{HTML_MISSING}: {gone} is gone; re-run report {notebook} with its parameters to render it "
                   f"again: {command} (its executed notebook {book} is kept; it was {rendered.get('status')} when "
                   "rendered)")
    return e


def rerun_command(out: Path, e: dict[str, Any]) -> tuple[str, str]:
    """The notebook of index entry ``e`` and the ``finops-kit report`` command, quoted for a shell, that renders
    the same report (the same name) into ``out`` again: its ``-p`` parameters, ``--warehouse``/``--config`` as the
    entry received them (all relative to the project, where the command runs), ``--out`` relative too.

    The ``-p`` parameters are those the name was made of (:func:`report_name`: each ``__key-value`` part, in order):
    a default from the config is in ``parameters`` too but not in the name, and passing it would name another
    report. The values are the entry's, as :func:`redact_value` left them (a credential reads ``[redacted]``)."""
    book = e.get("notebook")
    path = Path(book) if isinstance(book, str) and book else None
    # a notebook in the default folder by its name (what --list shows); another by its path, which works anywhere
    notebook = path.stem if path is not None and path.parent == Path(DEFAULT_NOTEBOOKS_DIR) else (
        str(path) if path is not None else str(e.get("name")).split("__", 1)[0])
    params = e.get("parameters") if isinstance(e.get("parameters"), dict) else {}
    keys = [k for k in (part.split("-", 1)[0] for part in str(e.get("name")).split("__")[1:]) if k in params]
    if len(keys) != str(e.get("name")).count("__"):  # a name the parts do not spell (shortened): every -p given
        keys = [k for k in params if k not in INJECTED]
    words = ["finops-kit", "report", shlex.quote(notebook)]
    for k in keys:  # -p providers='["AWS"]': the value quoted, as one would type it
        v = params[k]
        text = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
        words += ["-p", f"{k}={shlex.quote(text)}"]
    for name, option in (("warehouse", "--warehouse"), ("config_path", "--config")):
        if isinstance(params.get(name), str) and params[name]:
            words += [option, shlex.quote(params[name])]
    return notebook, " ".join([*words, "--out", shlex.quote(project_relative(out))])


#: Prefix of the files a report run writes before moving them into place (hidden, so never listed or published
#: half-written); a run killed part-way leaves them, and the next run into the folder removes those of dead runs.
TEMP_PREFIX = ".finops-tmp."


def _write_atomically(path: Path, text: str) -> None:
    """``path`` written under a temporary name and renamed into place: a reader never sees half a file."""
    tmp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}.{path.name}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def remove_dead_temporaries(out: Path) -> None:
    """Remove the temporary files (:data:`TEMP_PREFIX`) that runs killed part-way left in ``out``; a live run's
    (another ``finops-kit report`` into the same folder) are kept."""
    for f in out.glob(f"{TEMP_PREFIX}*"):
        pid = f.name[len(TEMP_PREFIX):].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except OSError:  # another user's process: alive
            alive = True
        if not alive:
            with contextlib.suppress(OSError):
                f.unlink()


def input_fingerprint(warehouse: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"sha256", "files"}`` of what the warehouse holds now (the digest :func:`data_coverage` shows), read from
    the ingest log only: cheap enough to take before and after every report."""
    from .warehouse import active_file_digests, connect, input_digest

    con = connect(str(warehouse), read_only=True, quiet=True)
    try:
        shas = active_file_digests(con)
    finally:
        con.close()
    return {"sha256": input_digest(shas), "files": len(shas)}


#: How long before a fingerprint is read both files of a warehouse (the file and its write-ahead log) must have been
#: left unchanged for :class:`InputFingerprints` to reuse it while their stat stays the same. Far above any file
#: system's timestamp granularity (FAT: 2 s).
FINGERPRINT_SETTLED_S = 3.0


def _warehouse_state(path: str) -> tuple[tuple[int, ...] | None, ...]:
    """(device, inode, size, mtime, ctime) of a warehouse file and of its write-ahead log (None: no such file)."""
    states: list[tuple[int, ...] | None] = []
    for p in (path, path + ".wal"):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            states.append(None)
        else:
            states.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(states)


class InputFingerprints:
    """:func:`input_fingerprint` of each warehouse a run reads, read from the warehouse again only when the file
    may have changed since.

    Why: a report's fingerprint is taken before its kernel starts and after it ends, two per report, and each one
    opens the warehouse (~20 ms of DuckDB's catalog loading): 0.25 s of the runner's CPU per suite of six, for a
    file an ordinary run never changes. A local warehouse whose stat -- device, inode, size, modification and
    change time of the file and of its write-ahead log -- is what it was when its fingerprint was read holds the
    same data, provided that stat had settled: a write in the same timestamp tick as the read could leave the
    modification time as it was (the "racy git" problem), so a fingerprint is kept only when both files were last
    changed :data:`FINGERPRINT_SETTLED_S` or more before it was read. A write after the read gives the file a
    newer time, a replaced file another inode: the next report reads the fingerprint anew and an ingest during a
    report is still seen (``"changed"``). FOCUS datasets (folders, ``s3://``) are read every time."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[tuple[int, ...] | None, ...], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, warehouse: str) -> dict[str, Any]:
        from .dataset import is_location

        if is_location(warehouse):
            return input_fingerprint(warehouse)
        before = time.time_ns()
        try:
            state = _warehouse_state(warehouse)
        except OSError:
            return input_fingerprint(warehouse)
        with self._lock:
            kept = self._kept.get(warehouse)
        if kept is not None and kept[0] == state:
            return dict(kept[1])
        value = input_fingerprint(warehouse)
        settled = before - int(FINGERPRINT_SETTLED_S * 1e9)
        if all(s is None or max(s[3], s[4]) < settled for s in state):
            with self._lock:
                self._kept[warehouse] = (state, dict(value))
        return value


def _job_input(job: Job, fingerprints: InputFingerprints | None = None) -> dict[str, Any] | None:
    """:func:`input_fingerprint` of the warehouse a job reads (None when it takes none or it cannot be read: the
    report itself then says why), through ``fingerprints`` (the run's: :class:`InputFingerprints`) if given."""
    from .dataset import is_location

    wh = job.parameters.get("warehouse")
    if not isinstance(wh, str) or not (Path(wh).is_file() or is_location(wh)):
        return None
    try:
        return fingerprints.get(wh) if fingerprints is not None else input_fingerprint(wh)
    except Exception:  # noqa: BLE001 - informative; a locked or damaged warehouse fails the report on its own
        return None


def _reading_order(entry: dict[str, Any]) -> tuple[float, str]:
    order = entry.get("order")
    order = float(order) if isinstance(order, int | float) and not isinstance(order, bool) else DEFAULT_ORDER
    return order, str(entry.get("name"))


def data_coverage(warehouse: str | os.PathLike[str]) -> dict[str, Any]:
    """What the warehouse holds, for the index's cover: per provider the billing periods, the last day with data
    and the open/closed status of each period (:func:`finops_kit.scope.completeness`, the one rule for it), the
    billing accounts (each by its latest name: an account renamed mid-period shows one), the input fingerprint (one sha256 over every active source file's sha256) and whether every
    source/period/currency total reconciles."""
    from . import scope as scope_mod
    from .warehouse import FOCUS_TABLE, connect, fingerprint, input_digest, reconciliation_table

    con = connect(str(warehouse), read_only=True)
    try:
        comp = scope_mod.completeness(con)
        accounts = con.sql(
            f"SELECT ProviderName AS provider, BillingAccountId AS id, "
            f"arg_max(coalesce(BillingAccountName, BillingAccountId), "
            f"(ChargePeriodStart, coalesce(BillingAccountName, BillingAccountId))) AS name, count(*) AS rows "
            f"FROM {FOCUS_TABLE} GROUP BY ALL ORDER BY provider, id").fetchall()
        files = con.sql("SELECT sha256, size_bytes, ingested_at FROM (" + fingerprint(con).sql_query() + ")"
                        ).fetchall()
        rec = reconciliation_table(con).fetchall()
    finally:
        con.close()
    providers = []
    for prov, g in comp.groupby("provider", sort=True):
        g = g.sort_values("billing_period")
        periods = [{"billing_period": f"{r.billing_period:%Y-%m}", "first_day": str(r.first_day),
                    "last_day": str(r.last_day), "closed": bool(r.closed), "label": str(r.label)}
                   for r in g.itertuples()]
        accts = [{"id": str(a[1]), "name": str(a[2]), "rows": int(a[3])} for a in accounts if a[0] == prov]
        providers.append({
            "provider": str(prov), "first_period": periods[0]["billing_period"],
            "last_period": periods[-1]["billing_period"], "periods": len(periods),
            "last_day": str(max(g["last_day"])), "open": [x["label"] for x in periods if not x["closed"]],
            "accounts": accts, "billing_periods": periods})
    digest = input_digest([f[0] for f in files])
    n_bad = sum(1 for r in rec if not r[-1])
    return {
        "providers": providers,
        "input": {"files": len(files), "bytes": int(sum(int(f[1] or 0) for f in files)),
                  "sha256": digest,
                  "last_ingest": str(max((f[2] for f in files if f[2] is not None), default="")) or None},
        "reconciliation": {"totals": len(rec), "failing": n_bad,
                           "status": ("nothing ingested" if not rec else
                                      f"all {len(rec)} source/period/currency totals reconcile" if n_bad == 0 else
                                      f"{n_bad} of {len(rec)} source/period/currency totals DO NOT reconcile")},
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope_text(params: dict[str, Any]) -> str:
    """The scope a report received, in words ("" when the notebook takes no scope parameter)."""
    from . import scope as scope_mod

    given = {k: v for k, v in params.items() if k in scope_mod.PARAMETERS}
    if not given:
        return ""
    try:
        return scope_mod.Scope.parse(given).describe()
    except FinopsError as exc:
        return f"invalid ({exc})"


def _coverage_html(cov: dict[str, Any] | None) -> str:
    e = html.escape
    if not cov:
        return ""
    if cov.get("error"):
        return f'<section class="coverage"><h2>Data covered</h2><p>{e(str(cov["error"]))}</p></section>'
    rows = []
    for p in cov.get("providers", []):
        open_txt = ", ".join(p.get("open") or []) or "all closed"
        accts = p.get("accounts") or []
        names = ", ".join(f'{a["name"]}' + (f' ({a["id"]})' if a["id"] != a["name"] else "") for a in accts[:4])
        if len(accts) > 4:
            names += f", +{len(accts) - 4} more"
        rows.append(
            f'<tr><td><b>{e(p["provider"])}</b></td><td>{e(p["first_period"])} \u2013 {e(p["last_period"])} '
            f'({p["periods"]})</td><td>{e(p["last_day"])}</td>'
            f'<td class="{"open" if p.get("open") else "closed"}">{e(open_txt)}</td>'
            f'<td>{len(accts)}: {e(names)}</td></tr>')
    inp, rec = cov.get("input") or {}, cov.get("reconciliation") or {}
    ok = rec.get("failing") == 0 and rec.get("totals")
    sha = inp.get("sha256") or ""
    return (
        '<section class="coverage"><h2>Data covered</h2>'
        '<table><thead><tr><th>Provider</th><th>Billing periods</th><th>Last day with data</th>'
        '<th>Open periods (data not complete)</th><th>Billing accounts</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
        f'<p class="fingerprint">Input fingerprint <code title="sha256 over the sha256 of every source file">'
        f'{e(sha[:16])}</code> \u00b7 {int(inp.get("files") or 0)} source file(s), '
        f'{int(inp.get("bytes") or 0) / 1e6:,.1f} MB \u00b7 last ingest {e(str(inp.get("last_ingest") or "never"))}</p>'
        f'<p class="reconciliation" style="color:{"#2e7d32" if ok else "#c62828"};font-weight:600">'
        f'Reconciliation: {e(str(rec.get("status", "unknown")))}</p>'
        '<p class="note">A billing period is open until the provider has billed its last day (or bills a later '
        'period); figures that compare periods use closed ones only.</p></section>')


def other_data(entry: dict[str, Any], coverage: dict[str, Any] | None) -> str | None:
    """Why a report's figures may not match the index's "Data covered" (None when they read that data): it read
    another state of the warehouse (an ingest since, or between the run's kernels), its input changed while it
    ran, or it was rendered by an older kit that did not record what it read."""
    want = ((coverage or {}).get("input") or {}).get("sha256") if not (coverage or {}).get("error") else None
    if not want:
        return None
    got = entry.get("input")
    if not isinstance(got, dict) or not got.get("sha256"):
        return 'read other data than "Data covered" may show: what it read was not recorded'
    if got.get("changed"):
        return (f'read other data than "Data covered": an ingest changed the warehouse while it ran (now '
                f'input fingerprint {str(got["sha256"])[:16]}, {int(got.get("files") or 0)} source file(s))')
    if got["sha256"] != want:
        return (f'read other data than "Data covered": input fingerprint {str(got["sha256"])[:16]}, '
                f'{int(got.get("files") or 0)} source file(s)')
    return None


def index_html(entries: list[dict[str, Any]], coverage: dict[str, Any] | None = None) -> str:
    """The cover page: data covered, then every report in reading order with the question it answers; a report
    that read another state of the warehouse says so (:func:`other_data`)."""
    e = html.escape
    n_bad = sum(1 for x in entries if x.get("status") not in ("ok", HTML_MISSING))
    n_missing = sum(1 for x in entries if x.get("status") == HTML_MISSING)
    rows = []
    for x in entries:
        status = str(x.get("status"))
        color = {"ok": "#2e7d32", "timeout": "#ef6c00", HTML_MISSING: "#ef6c00"}.get(status, "#c62828")
        params = "<br>".join(f"<code>{e(str(k))}</code> = <code>{e(json.dumps(v, default=str))}</code>"
                             for k, v in (x.get("parameters") or {}).items() if k not in INJECTED)
        scope_text = _scope_text(x.get("parameters") or {})
        if scope_text:
            params = f'<div style="font-weight:600">Scope: {e(scope_text)}</div>' + params
        # the page, else (its .html deleted: HTML_MISSING) the executed notebook
        target = x.get("html") or x.get("ipynb")
        links = " · ".join(f'<a href="{e(str(x[k]))}">{label}</a>'
                           for k, label in (("html", "report"), ("ipynb", "notebook")) if x.get(k))
        err = f'<div style="color:#c62828;font-size:12px">{e(str(x.get("error")))}</div>' if x.get("error") else ""
        if (differs := other_data(x, coverage)) is not None:
            err += f'<div class="other-data" style="color:#ef6c00;font-size:12px">{e(differs)}</div>'
        question = f'<div class="question">{e(str(x.get("question")))}</div>' if x.get("question") else ""
        rows.append(
            f'<tr data-status="{e(status)}"><td class="report"><a href="{e(str(target))}">'
            f'{e(str(x.get("title")))}</a>{question}'
            f'<div style="font-size:11px;color:#666">{e(str(x.get("name")))}</div>{err}</td>'
            f'<td style="color:{color};font-weight:600">{e(status)}</td><td>{params or "defaults"}</td>'
            f'<td style="white-space:nowrap">{e(str(x.get("started")))}</td><td style="text-align:right">{float(x.get("duration_s") or 0):.1f} s'
            f'</td><td>{links}</td></tr>')
    summary = f"{len(entries)} report(s)" + (", all rendered" if n_bad == n_missing == 0 else "")
    if n_bad:
        summary += f", {n_bad} FAILED"
    if n_missing:
        summary += f", {n_missing} page{'s' if n_missing > 1 else ''} missing: re-run {'them' if n_missing > 1 else 'it'}"
    n_other = sum(1 for x in entries if other_data(x, coverage))
    if n_other:
        summary += f", {n_other} read other data than \u201cData covered\u201d (marked)"
    css = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}"
           "table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #e0e0e0;"
           "padding:6px 10px;vertical-align:top;text-align:left}th{border-bottom:2px solid #999}"
           "h2{font-size:18px;margin:22px 0 8px 0}.question{color:#333;margin:2px 0 2px 0;max-width:560px}"
           "td.report a{font-weight:600}td.open{color:#ef6c00}td.closed{color:#2e7d32}"
           ".note{color:#666;font-size:12px}.fingerprint{font-size:13px}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>finops-kit reports</title>'
            f'<style>{css}</style></head><body><h1>FinOps reports</h1>'
            f'<p class="summary" style="color:{"#c62828" if n_bad else "#ef6c00" if n_missing else "#2e7d32"}">'
            f'{e(summary)} · '
            f'index written {e(_now())}</p>{_coverage_html(coverage)}'
            f'<section class="reports"><h2>Reports, in reading order</h2>'
            f'<table><thead><tr><th>Report and the question it answers</th><th>Status</th><th>Parameters</th>'
            f'<th>Started (UTC)</th><th>Duration</th><th>Links</th></tr></thead><tbody>{"".join(rows)}</tbody>'
            f'</table></section></body></html>')


# --------------------------------------------------------------------------------------------------------------
# CLI

def configure_parser(parser: argparse.ArgumentParser, command: str = "report") -> None:
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebook paths or names in the notebooks folder (e.g. tagging_audit)")
    parser.add_argument("--all", action="store_true",
                        help="every *.ipynb of the --notebooks-dir folder (default: notebooks) not starting with '_'")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters")
    parser.add_argument("--warehouse", help="warehouse file or FOCUS dataset (folder or s3://bucket/prefix; default: "
                                            "$FINOPS_WAREHOUSE or data/warehouse.duckdb)")
    parser.add_argument("--out", default=None, help="output folder (default: reports)")
    parser.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="notebook parameter; VALUE is a YAML scalar or list (repeatable)")
    parser.add_argument("--config", help="config file (default: $FINOPS_CONFIG, else the project's finops.yaml "
                                            "found from any folder of the project)")
    parser.add_argument("--notebooks-dir", help="where NOTEBOOK names and --all look (default: notebooks)")
    code = parser.add_mutually_exclusive_group()
    code.add_argument("--show-code", dest="code", action="store_const", const="shown",
                      help="show every code cell inline (the notebook layout)")
    code.add_argument("--hide-code", dest="code", action="store_const", const="hidden",
                      help="no code at all (stakeholders)")
    code.add_argument("--fold-code", dest="code", action="store_const", const="folded",
                      help="code folded behind per-cell and whole-page toggles (the default)")
    parser.add_argument("--timeout-cell", type=float, metavar="S",
                        help="seconds per cell, a positive number (default 600)")
    parser.add_argument("--timeout-notebook", type=float, metavar="S",
                        help="seconds per notebook and attempt, a positive number (default 1800); a timed-out "
                             "notebook is tried once more, so the worst case of a run is about 2 x this x "
                             "(notebooks / --jobs)")
    parser.add_argument("--kernel", help="Jupyter kernel name (default: the notebook's, else python3)")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="reports run at once (default: the CPU cores available)")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from .config import find_config, load_config, section, validate

    config_path = args.config
    if config_path and not Path(config_path).exists():
        raise ConfigError(f"{config_path}: config file not found")
    if not config_path:  # the rule of every command: $FINOPS_CONFIG, else the project's finops.yaml
        found = find_config()
        config_path = str(found) if found is not None else None
    cfg = load_config(config_path) if config_path else {}
    if config_path and not getattr(args, "list", False):
        validate(cfg)  # every section, before any kernel: a typo is exit 2 here, not one failed report
    rep = section(cfg, "reports", {})
    if not isinstance(rep, dict):
        raise ConfigError(f"{config_path}: 'reports' must be a mapping")
    known = {"notebooks_dir", "timeout_cell", "timeout_notebook", "code", "hide_code", "parameters", "out", "jobs"}
    unknown = set(rep) - known
    if unknown:
        raise ConfigError(f"{config_path}: reports: unknown key {sorted(unknown)[0]!r} (known: {sorted(known)})")
    defaults = rep.get("parameters") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{config_path}: reports.parameters must be a mapping of name: value")
    defaults = config_relative_files(defaults, config_path)
    for key in ("timeout_cell", "timeout_notebook"):
        v = rep.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf):
            raise ConfigError(f"{config_path}: reports.{key} must be a positive number of seconds, got {v!r}")
        flag = getattr(args, key, None)
        if flag is not None and not 0 < flag < math.inf:  # NaN fails both comparisons
            raise ConfigError(f"--{key.replace('_', '-')} {flag:g}: expected a positive number of seconds "
                              f"(default {DEFAULT_TIMEOUT_CELL if key == 'timeout_cell' else DEFAULT_TIMEOUT_NOTEBOOK})")
    return {
        "config_path": str(Path(config_path).resolve()) if config_path else None,
        "notebooks_dir": Path(args.notebooks_dir or rep.get("notebooks_dir") or DEFAULT_NOTEBOOKS_DIR),
        "timeout_cell": next(v for v in (args.timeout_cell, rep.get("timeout_cell"), DEFAULT_TIMEOUT_CELL)
                             if v is not None),
        "timeout_notebook": next(v for v in (args.timeout_notebook, rep.get("timeout_notebook"),
                                             DEFAULT_TIMEOUT_NOTEBOOK) if v is not None),
        "code": _code_setting(args, rep, config_path),
        "jobs": _jobs_setting(getattr(args, "jobs", None), rep.get("jobs"), config_path),
        "out": Path(args.out or rep.get("out") or "reports"),
        "parameters": defaults,
    }


def config_relative_files(defaults: dict[str, Any], config_path: str | None) -> dict[str, Any]:
    """The config's ``reports.parameters`` with every relative file parameter (``*_path``, ``*_file``, ``*_dir``)
    read from the config file's folder, as the config's other paths are (the roadmap, the allocation file).

    Why: they were read from the working directory, so ``finops-kit report --config /project/finops.yaml`` run
    from another folder failed with "data/samples/_ai_units/gpu: file not found" (a regression review). A ``-p``
    value is the command line's and stays relative to the working directory; :func:`plan` then writes every file
    parameter relative to the project for the kernels."""
    from .notebook import _PATH_SUFFIXES as PATH_SUFFIXES

    if not config_path:
        return dict(defaults)
    base = Path(config_path).resolve().parent
    def resolved(v: Any) -> Any:
        if isinstance(v, list | tuple):  # trace_paths: each file the config's
            return [resolved(x) for x in v]
        return str(base / v) if isinstance(v, str) and v and "://" not in v and not Path(v).is_absolute() else v

    return {k: resolved(v) if k.endswith(PATH_SUFFIXES) else v for k, v in defaults.items()}


def _jobs_setting(cli: int | None, configured: Any, config_path: str | None) -> int | None:
    """``--jobs`` wins, else ``reports.jobs``; None means the cores available. Must be a positive integer."""
    if cli is not None:
        if cli < 1:
            raise ConfigError(f"--jobs must be 1 or more, got {cli}")
        return cli
    if configured is None:
        return None
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
        raise ConfigError(f"{config_path}: reports.jobs must be a positive integer, got {configured!r}")
    return configured


def code_mode(value: str | bool | None) -> str:
    """``folded`` / ``shown`` / ``hidden``; a bool is the old ``hide_code`` (True: hidden, False: the default)."""
    if value is None or value is False:
        return "folded"
    if value is True:
        return "hidden"
    if value not in CODE_MODES:
        raise ConfigError(f"code must be one of {', '.join(CODE_MODES)}, got {value!r}")
    return str(value)


def _code_setting(args: argparse.Namespace, rep: dict[str, Any], config_path: str | None) -> str:
    """The command line wins; else ``reports.code``; else the older ``reports.hide_code: true`` (= hidden)."""
    if getattr(args, "code", None):
        return str(args.code)
    if "code" in rep:
        if rep["code"] not in CODE_MODES:
            raise ConfigError(f"{config_path}: reports.code must be one of {', '.join(CODE_MODES)}, "
                              f"got {rep['code']!r}")
        return str(rep["code"])
    hide = rep.get("hide_code", False)
    if not isinstance(hide, bool):
        raise ConfigError(f"{config_path}: reports.hide_code must be true or false, got {hide!r}")
    return "hidden" if hide else "folded"


def injected_parameters_html(book: Any) -> str:
    """The values papermill injected (its ``injected-parameters`` cell), as a small escaped table.

    Read back from the executed cell, so the table shows exactly what the notebook ran with (after redaction
    and path localization). A value that is not a literal is shown as its source text.
    """
    cell = next((c for c in book.cells if c.cell_type == "code"
                 and "injected-parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return ""
    rows = []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return ""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        try:
            value = json.dumps(ast.literal_eval(node.value), default=str, ensure_ascii=False)
        except (ValueError, SyntaxError):
            value = ast.get_source_segment(cell.source, node.value) or ""
        rows.append(f"<tr><th>{html.escape(node.targets[0].id)}</th><td><code>{html.escape(value)}</code></td></tr>")
    if not rows:
        return ""
    return ('<table class="finops-params"><caption>Parameters of this run</caption><tbody>'
            + "".join(rows) + "</tbody></table>")


def discover(notebooks_dir: Path) -> list[Path]:
    return sorted(p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith(("_", ".")))


def _resolve_notebook(arg: str, notebooks_dir: Path) -> Path:
    p = Path(arg)
    for cand in (p, notebooks_dir / arg, notebooks_dir / f"{arg}.ipynb"):
        if cand.is_file() and cand.suffix == ".ipynb":
            return cand
    names = ", ".join(x.stem for x in discover(notebooks_dir)) or "none"
    raise ConfigError(f"{arg}: no such notebook (in {notebooks_dir}: {names})")


def parse_parameters(pairs: list[str]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"-p {pair!r}: expected NAME=VALUE with a Python identifier as NAME")
        out[name] = (raw, parse_cli_value(raw))
    return out


def plan(infos: list[NotebookInfo], cli: dict[str, tuple[str, Any]], defaults: dict[str, Any],
         warehouse: str, config_path: str | None, *, every: bool = False) -> list[Job]:
    """Validate every parameter against every selected notebook and build the jobs (nothing runs yet).

    Notebooks named on the command line must each take every ``-p`` parameter (else: the parameter and the ones
    that notebook takes). With ``every`` (``--all``) a parameter is an error only when no notebook takes it; each
    report receives the ones it takes (the index lists them). Scope parameters (:mod:`finops_kit.scope`) are
    parsed here once, so a malformed period or list fails before anything runs. ``warehouse`` and
    ``config_path`` are injected relative to the project root (the working directory, which is also the
    kernels'), so no report carries the absolute local path of the project; so is every parameter naming a file
    (``*_path``, ``*_file``, ``*_dir``: the AI unit economics report's utilization, runs and business-metrics
    files), from ``-p``, the config's defaults or the notebook's own default (URLs are left alone).
    """
    from . import scope as scope_mod
    from .notebook import _PATH_SUFFIXES as PATH_SUFFIXES  # the notebooks' own rule for file parameters

    secrets = secret_values()  # before kernel_environment() scrubs them: no report name may carry one
    for name in cli:
        if name in INJECTED:
            raise ConfigError(f"-p {name}: set it with --{name.replace('_path', '')} instead")
        takers = [i for i in infos if name in i.params]
        if not takers:
            known = sorted({p for i in infos for p in i.params} - set(INJECTED))
            raise ConfigError(f"unknown parameter {name!r}: the selected notebook(s) take {', '.join(known) or 'none'}")
        if not every:
            for i in infos:
                if name not in i.params:
                    known = sorted(set(i.params) - set(INJECTED))
                    raise ConfigError(f"parameter {name!r}: notebook {i.name} does not take it; it takes "
                                      f"{', '.join(known) or 'no parameters'}")
    scope_mod.Scope.parse({n: v for n, (_raw, v) in cli.items() if n in scope_mod.PARAMETERS})
    jobs, seen = [], set()
    for info in infos:
        params: dict[str, Any] = {}
        cli_used: dict[str, Any] = {}
        for name, value in defaults.items():
            if name in info.params and name not in INJECTED:
                params[name] = coerce(info, name, value if isinstance(value, str) else repr(value), value)
        for name, (raw, value) in cli.items():
            if name in info.params:
                params[name] = cli_used[name] = coerce(info, name, raw, value)
        for pname, prm in info.params.items():  # side files (gpu_metrics_dir, runs_file, ...) like the warehouse
            value = params.get(pname, prm.default)
            if (pname not in INJECTED and pname.endswith(PATH_SUFFIXES) and isinstance(value, str) and value
                    and "://" not in value):
                params[pname] = project_relative(value)
                if pname in cli_used:  # the file name and the index show it as the notebook receives it
                    cli_used[pname] = params[pname]
        if "warehouse" in info.params:
            params["warehouse"] = project_relative(warehouse)
        if "config_path" in info.params and config_path:
            params["config_path"] = project_relative(config_path)
        name = report_name(info.name, cli_used, secrets)
        if name in seen:
            raise ConfigError(f"{info.path}: selected twice")
        seen.add(name)
        jobs.append(Job(info=info, name=name, parameters=params, cli_parameters=cli_used))
    return jobs


def list_notebooks(notebooks_dir: Path) -> int:
    paths = discover(notebooks_dir)
    if not paths:
        print(f"no notebooks in {notebooks_dir}")
        return 0
    for p in paths:
        info = read_notebook_info(p)
        print(f"{info.name}  — {info.title}")
        for prm in info.params.values():
            if prm.name in INJECTED:  # set with --warehouse / --config
                continue
            default = json.dumps(prm.default, default=str)
            help_text = f"  # {prm.help}" if prm.help else ""
            print(f"    -p {prm.name}=<{prm.type}>  (default {default}){help_text}")
    return 0


def run(args: argparse.Namespace, command: str = "report") -> int:
    s = _settings(args)
    if args.list:
        return list_notebooks(s["notebooks_dir"])
    if args.all and args.notebooks:
        raise ConfigError("give NOTEBOOK names or --all, not both")
    if args.all:
        paths = discover(s["notebooks_dir"])
        if not paths:
            raise ConfigError(f"{s['notebooks_dir']}: no notebooks found")
    elif args.notebooks:
        paths = [_resolve_notebook(a, s["notebooks_dir"]) for a in args.notebooks]
    else:
        raise ConfigError("name the notebook(s) to run, or --all (see --list)")
    from .warehouse import warehouse_path

    out_arg: Path = s["out"]
    if out_arg.exists() and not out_arg.is_dir():
        raise ConfigError(f"--out {out_arg}: is a file; expected a folder for the reports")
    from . import dataset

    target = warehouse_path(args.warehouse)
    if dataset.is_location(target):  # a FOCUS dataset: s3:// mirrored once here, not once per kernel
        wh = dataset.local_copy(target)
    else:
        wh = Path(target)
        if not wh.is_file():
            raise FinopsError(f"{wh}: no warehouse here; run 'finops-kit ingest' first")
    from .warehouse import connect

    connect(wh, read_only=True).close()  # a locked, damaged or foreign file: one line now, not one per kernel
    infos = [read_notebook_info(p) for p in paths]
    cli = parse_parameters(args.parameter)
    jobs = plan(infos, cli, s["parameters"], str(wh.resolve()), s["config_path"], every=bool(args.all))
    check_scope(wh, cli, s["parameters"], s["config_path"])
    out: Path = s["out"]
    writable_folder(out)
    tty = sys.stderr.isatty()
    results = run_jobs(jobs, out, s["timeout_cell"], s["timeout_notebook"], s["code"], tty, args.kernel,
                       workers=s["jobs"])
    bad = [r for r in results if r.status != "ok"]
    print(f"{len(results) - len(bad)} of {len(results)} report(s) rendered; index: {out / 'index.html'}")
    return exit_code(results)


def exit_code(results: list[ReportResult]) -> int:
    """0 when every report rendered; 3 ("nothing to judge", :class:`~finops_kit.scope.NoDataError`) when every
    report that did not render stopped on "no data for this scope" (a notebook's ``as_of`` before the data: a
    parameter the scope check before the kernels cannot see); else 1.

    Why: such a run exited 1, "a report failed", while every other command says exit 3 for no data in its scope."""
    bad = [r for r in results if r.status != "ok"]
    if not bad:
        return 0
    nodata = all(r.status == "failed" and (r.error or "").split(": ", 2)[1:2] == ["NoDataError"] for r in bad)
    return 3 if nodata else 1


def writable_folder(out: Path) -> None:
    """Create ``out`` and check that files can be written and renamed in it, before any kernel starts: an
    unwritable folder (permissions, an immutable or read-only mount) was found only after every notebook had run.
    A folder this check created is removed again when it fails."""
    created = [p for p in [out, *out.parents] if not p.exists()]
    probe = out / f"{TEMP_PREFIX}{os.getpid()}.probe"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        os.replace(probe, probe.with_name(probe.name + "d"))
        probe.with_name(probe.name + "d").unlink()
    except OSError as exc:
        for p in (probe, probe.with_name(probe.name + "d")):
            with contextlib.suppress(OSError):
                p.unlink()
        for p in created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
        raise ConfigError(f"--out {out}: cannot write the reports there ({exc.strerror or exc}); expected a "
                          "writable folder") from None


def check_scope(warehouse: Path, cli: dict[str, tuple[str, Any]], defaults: dict[str, Any],
                config_path: str | None) -> None:
    """Resolve the scope of the run against the warehouse before any notebook starts: an empty, future or
    filtered-out scope is "no data for this scope" (exit 3) and a mixed-currency scope without a choice is exit 2,
    instead of reports full of $0.00."""
    from . import scope as scope_mod
    from .warehouse import connect

    values = {n: v for n, v in defaults.items() if n in scope_mod.PARAMETERS}
    values.update({n: v for n, (_raw, v) in cli.items() if n in scope_mod.PARAMETERS})
    sc = scope_mod.Scope.parse(values)
    con = connect(str(warehouse), read_only=True)
    try:
        sc.resolve(con, config_path)
    finally:
        con.close()


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, e.g. a container's CPU set), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: Per notebook, how long its last successful run took (seconds): the order reports start in (:func:`longest_first`).
DURATIONS_FILE = "report-durations.json"

#: Where the durations record lives: ``$FINOPS_DURATIONS_CACHE`` (a folder; ``off``: nothing is read or kept),
#: else the kit's cache folder. Its own variable, not ``FINOPS_ASSETS_DIR``: the test suite keeps the record of its
#: temporary notebooks out of the user's cache without moving the Vega bundle, which must stay warm.
DURATIONS_ENV = "FINOPS_DURATIONS_CACHE"


def _durations_path() -> Path | None:
    from .assets import cache_folder

    folder = cache_folder(DURATIONS_ENV, "")
    return None if folder is None else folder / DURATIONS_FILE


def past_durations() -> dict[str, float]:
    """The recorded durations (empty when none were recorded, the file is unreadable or the record is off)."""
    path = _durations_path()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0}


def _duration_key(job: Job) -> str:
    return str(job.info.path.resolve())


def record_durations(jobs: list[Job], results: list[ReportResult]) -> None:
    """Remember how long each report that rendered took (a failed or timed-out run says nothing about the next one);
    written atomically, and a cache that cannot be written is simply not used.

    What is kept is the longer of this run and 90% of the record: a re-run made short by warm caches (fits, query
    results) must not hide which report is long when they are cold, and the record still follows a report that
    really got faster."""
    by_name = {j.name: j for j in jobs}
    past = past_durations()
    new = {}
    for r in results:
        if r.status == "ok" and r.name in by_name:
            key = _duration_key(by_name[r.name])
            new[key] = round(max(r.duration_s, 0.9 * past.get(key, 0.0)), 2)
    path = _durations_path()
    if not new or path is None:
        return
    # notebooks that no longer exist (a test's or a benchmark's temporary copies) are dropped: the record stays
    # the size of the notebooks a user actually runs
    data = {k: v for k, v in {**past, **new}.items() if k in new or Path(k).is_file()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def longest_first(jobs: list[Job], past: dict[str, float]) -> list[Job]:
    """The order to start reports in when several run at once: longest (last recorded duration) first, a notebook
    never run before ahead of them (it may be the longest), ties in the given order.

    Why: the suite's wall time is bounded by its longest report (forecast_vs_actual); started last -- it sorts
    fourth by name -- it ran alone at the end while the other worker sat idle (the classic LPT rule for scheduling
    on parallel machines). Results and the index keep the given / reading order whatever the start order.
    """
    return sorted(jobs, key=lambda j: -past.get(_duration_key(j), float("inf")))


def run_jobs(jobs: list[Job], out: Path, timeout_cell: float, timeout_notebook: float, code: str | bool = "folded",
             progress: bool = False, kernel_name: str | None = None, retries: int = 1,
             workers: int | None = None) -> list[ReportResult]:
    """Run every job, up to ``workers`` at once (default: the cores available; the longest first, by the durations
    recorded in earlier runs: :func:`longest_first`), write the index after each one, and return the results in job
    order (never raises for one report).

    Why threads: each report's work happens in its own kernel process (and DuckDB's threads); this process only
    drives kernels and exports HTML. Threads share what the run reads once (the Vega bundle, the widget manager,
    the nbconvert exporters, the data coverage of the index) and need no pickling; the exports are serialized.
    """
    import logging
    from concurrent.futures import ThreadPoolExecutor, as_completed

    # parameters were validated by plan(); papermill's own regex-based parameter parsing only adds noise
    logging.getLogger("papermill").setLevel(logging.ERROR)
    workers = max(1, min(len(jobs), workers or available_cores()))
    coverage = _run_coverage(jobs)
    done: dict[str, ReportResult] = {}

    def report_line(r: ReportResult) -> None:
        line = f"[{len(done)}/{len(jobs)}] {r.name}: {r.status} ({r.duration_s:.1f} s) -> {out / r.html}"
        if r.error:
            line += f" — {r.error}"
        if progress:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)  # above the progress bars of the reports still running
        else:
            print(line, file=sys.stderr, flush=True)

    with kernel_environment(workers) as secrets:
        runner = Runner(out, timeout_cell, timeout_notebook, code, progress, kernel_name, retries, secrets)
        if workers == 1:
            for job in jobs:
                r = done[job.name] = runner.run(job)
                report_line(r)
                write_index(out, list(done.values()), coverage, runner.secrets)  # an interrupted run still leaves a correct index
        else:
            free = list(range(workers))  # progress-bar lines
            free_lock = threading.Lock()

            def task(job: Job) -> ReportResult:
                with free_lock:
                    slot = free.pop(0)
                try:
                    return runner.run(job, slot)
                finally:
                    with free_lock:
                        free.append(slot)
                        free.sort()

            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finops-report")
            try:
                for fut in as_completed([pool.submit(task, job) for job in longest_first(jobs, past_durations())]):
                    r = fut.result()
                    done[r.name] = r
                    report_line(r)
                    write_index(out, list(done.values()), coverage, runner.secrets)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: no new report starts
    results = [done[job.name] for job in jobs if job.name in done]
    record_durations(jobs, results)
    return results


def _run_coverage(jobs: list[Job]) -> dict[str, Any] | None:
    """The data coverage of the warehouse the jobs read (None when none takes a warehouse); a warehouse that
    cannot be summarized gives an ``error`` entry instead of stopping the reports."""
    wh = next((j.parameters["warehouse"] for j in jobs if isinstance(j.parameters.get("warehouse"), str)), None)
    from .dataset import is_location

    if not wh or not (Path(wh).is_file() or is_location(wh)):
        return None
    try:
        return data_coverage(wh)
    except Exception as exc:  # noqa: BLE001 - the cover is informative; the reports still run
        return {"error": f"data coverage unavailable: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
