"""The ``finops-kit`` command line.

Subcommands are a small registry of modules (papermill's style): each module defines
``configure_parser(parser)`` and ``run(args) -> int``. Only the chosen command's module is imported, so
``finops-kit reconcile`` does not pay for importing papermill or statsmodels.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import FinopsError

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("finops_kit.commands", "normalize billing exports (files, globs, folders, s3://) into the warehouse"),
    "reconcile": ("finops_kit.commands", "print source vs normalized totals per source, billing period, currency"),
    "formats": ("finops_kit.commands", "list the billing-export formats the kit reads"),
    "export": ("finops_kit.commands", "write the FOCUS table to a typed parquet or CSV file"),
    "samples": ("finops_kit.samples", "generate the seeded sample billing exports in native formats"),
    "report": ("finops_kit.report", "run curated notebooks with parameters and render offline HTML reports"),
    "metrics": ("finops_kit.metrics", "the headline figures of a scope (billed, AI, GPU hours, tags, storage, transfer)"),
    "check": ("finops_kit.alerts", "evaluate budget and anomaly alert rules; exit 1 when any alert fires, 3 when there is "
                                      "nothing to judge (no charges in the scope)"),
    "guard": ("finops_kit.guard", "check a Terraform/OpenTofu plan against AI cost guardrails, with a priced estimate"),
}


#: What ``--config`` defaults to, for every command that takes it (see :func:`_find_config`).
CONFIG_HELP = ("config file (default: $FINOPS_CONFIG, else the finops.yaml of the working directory or its parents "
               "up to the project root; none found: the kit's defaults, said in one stderr line)")


def _module_for(command: str):
    module_name, _ = COMMANDS[command]
    return importlib.import_module(module_name)


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-kit", description="FinOps for AI: FOCUS 1.2 in DuckDB, reconciled.")
    parser.add_argument("--version", action="version", version=f"finops-kit {_version()}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        if name == command:
            _module_for(name).configure_parser(sub, name)
            for action in sub._actions:  # one wording of the one rule (cli._find_config), whichever module
                if "--config" in action.option_strings:
                    action.help = CONFIG_HELP
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("finops-kit")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one stderr line (exit 2: input/config, 1: unexpected, 130: Ctrl-C)."""
    try:
        # as every report kernel does (report.KERNEL_ARGUMENTS): the commands import jsonschema through nbformat
        # and validate nothing with an IRI format, and the IRI parser it would build costs 0.7 s of every start
        sys.modules.setdefault("rfc3987_syntax", None)
        if (ingest := sys.modules.get("finops_kit.ingest")) is not None:
            ingest.last_commit = None  # only a commit of this command tells _interrupted that rows were stored
        argv = list(sys.argv[1:] if argv is None else argv)
        command = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        _find_config(args)
        _validate_config(args)
        with _sigterm_as_interrupt(args.command != "report"):
            return int(_module_for(args.command).run(args, args.command) or 0)
    except FinopsError as exc:
        print(f"finops-kit: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        return _interrupted()
    except (OSError, MemoryError) as exc:  # the machine, not the input: disk full, no memory, I/O error
        print(f"finops-kit: error: {_environment_error(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a scheduler log gets one line, never a traceback
        if "interrupted" in str(exc).lower() and type(exc).__module__.startswith(("duckdb", "_duckdb", "builtins")):
            return _interrupted()  # DuckDB turns Ctrl-C during a query into "Query interrupted"
        if os.environ.get("FINOPS_DEBUG"):
            raise
        if type(exc).__name__ == "OutOfMemoryException":
            print("finops-kit: error: out of memory (DuckDB reached its memory limit); raise FINOPS_MEMORY_LIMIT "
                  "(e.g. 4GB) or ingest fewer files per call", file=sys.stderr)
            return 2
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):
            from .warehouse import write_error

            disk = write_error("warehouse", exc)
            if disk is not None:
                print(f"finops-kit: error: {disk}", file=sys.stderr)
                return 2
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"finops-kit: error: unexpected {type(exc).__name__}: {_one_line(exc)} (at {Path(where.filename).name}:"
              f"{where.lineno}; FINOPS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _find_config(args: argparse.Namespace) -> None:
    """``--config``, else the one rule of :func:`finops_kit.config.find_config` ($FINOPS_CONFIG, else the project's
    finops.yaml from any folder of the project), written into ``args.config`` so that the command -- and the
    report kernels it starts -- read that file; when there is none, one stderr line says the defaults apply."""
    if not hasattr(args, "config") or args.config or getattr(args, "list", False):
        return
    from .config import find_config, no_config_note

    found = find_config()
    if found is not None:
        args.config = str(found)
    elif not getattr(args, "quiet", False):  # check --quiet in a cron job: no mail for a documented default
        print(no_config_note(), file=sys.stderr)


def _validate_config(args: argparse.Namespace) -> None:
    """``metrics`` and ``check``: every section of the config checked before the warehouse is read, as ``report``
    does (:func:`finops_kit.config.validate`): a typo in a section it does not read is still exit 2, not ignored."""
    if args.command in ("metrics", "check") and getattr(args, "config", None):
        from .config import load_config, validate

        validate(load_config(args.config))


#: Set when SIGTERM stopped the command (:func:`_sigterm_as_interrupt`): exit 143 instead of Ctrl-C's 130.
_TERMINATED = {"yes": False}


@contextlib.contextmanager
def _sigterm_as_interrupt(active: bool = True) -> Iterator[None]:
    """SIGTERM handled as Ctrl-C while the command runs: schedulers (Airflow's execution_timeout, timeout(1),
    Kubernetes, systemd) stop a job with SIGTERM, whose default kills the process before an interrupted first
    ingest removes the folder and the empty warehouse it created. ``report`` keeps the default (killed at once;
    its outputs are written under temporary names and moved into place only when complete, and the kernels
    exit when their parent is gone) -- as an interrupt it would wait for the running notebooks to finish."""
    _TERMINATED["yes"] = False
    previous = None
    if active:
        def handler(signum: int, frame: Any) -> None:
            _TERMINATED["yes"] = True
            raise KeyboardInterrupt

        try:
            previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread: signals cannot be handled here
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupted() -> int:
    """Ctrl-C (or SIGTERM: exit 143): exit 130, and nothing was written -- unless this command's ingest had committed. An ingest holds a
    Ctrl-C back from COMMIT to the end of its cleanup and reports it in a note (exit 0); one that reaches this point
    after the commit (while the summary prints) cannot undo it, so the line says the rows are stored and the exit
    code is 0: the work is complete, and re-running it would only replace the same rows."""
    ingest = sys.modules.get("finops_kit.ingest")
    done = getattr(ingest, "last_commit", None)
    what = "terminated (SIGTERM)" if _TERMINATED["yes"] else "interrupted (Ctrl-C)"
    if done is not None and (done[0] is None or Path(done[0]).exists()):
        print(f"finops-kit: {what} after the ingest was committed: {done[1]:,} rows are stored; "
              "nothing was lost, only its report was cut short", file=sys.stderr)
        return 0
    print(f"finops-kit: {what}; an interrupted ingest writes nothing", file=sys.stderr)
    return 143 if _TERMINATED["yes"] else 130


def _one_line(exc: BaseException) -> str:
    from .errors import strip_credentials

    return strip_credentials(" ".join(str(exc).split())[:300])


def _environment_error(exc: BaseException) -> str:
    import errno

    if isinstance(exc, MemoryError):
        return "out of memory; lower FINOPS_MEMORY_LIMIT or ingest fewer files per call"
    name = getattr(exc, "filename", None)
    what = {errno.ENOSPC: "out of disk space", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EDQUOT: "disk quota exceeded"}.get(
        getattr(exc, "errno", None), getattr(exc, "strerror", None) or type(exc).__name__)
    return f"{name}: {what}" if name else f"{what} ({_one_line(exc)})"


if __name__ == "__main__":
    sys.exit(main())
