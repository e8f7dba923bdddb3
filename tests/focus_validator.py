"""Run the official FOCUS validator (focus-validator 2.2.1, MIT) as a test oracle.

It needs Python >= 3.12 and its own virtual environment (it pins duckdb<2 and numpy<2); the environment is made
once in ``.venv-fv`` at the repo root by the first test that needs it. Quirks handled here (see
../shared/tools/focus-validator/README.md): exit code 0 even on failures (we read the JUnit XML), a relative path
to ``focus_validator/rules/currency_codes.csv`` (we run it in a temporary folder holding a link to it), and the
rules folder with three upstream fixes from ../shared.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-fv"
TOP_RULE = "CostAndUsage-D-000-M"


def find_python312() -> str | None:
    candidates = [shutil.which("python3.12"), "/usr/bin/python3.12", "/usr/local/bin/python3.12",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for c in candidates:
        if not c:
            continue
        try:
            subprocess.run([c, "--version"], check=True, capture_output=True, timeout=30)
            return c
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def ensure_validator() -> Path:
    """Path of the focus-validator executable, creating its venv on first use (serialized across workers)."""
    exe = VENV / "bin" / "focus-validator"
    lock = REPO / ".venv-fv.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not exe.exists():
            py = find_python312()
            if py is None:
                raise RuntimeError("python3.12 not found")
            subprocess.run([py, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "focus-validator==2.2.1", "pyarrow<26"],
                           check=True)
    return exe


def validate(parquet: Path, rules_dir: Path, workdir: Path) -> dict[str, str]:
    """Validate a typed FOCUS parquet file; returns {rule id: 'ok' | failure message} for every rule."""
    exe = ensure_validator()
    site = subprocess.run([str(VENV / "bin" / "python"), "-c",
                           "import focus_validator, os; print(os.path.dirname(focus_validator.__file__))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (workdir / "focus_validator" / "rules").mkdir(parents=True, exist_ok=True)
    link = workdir / "focus_validator" / "rules" / "currency_codes.csv"
    if not link.exists():
        link.symlink_to(Path(site) / "rules" / "currency_codes.csv")
    out = workdir / "fv.xml"
    subprocess.run([str(exe), "--data-file", str(parquet), "--validate-version", "1.2",
                    "--applicability-criteria", "ALL", "--rule-set-path", str(rules_dir),
                    "--output-type", "unittest", "--output-destination", str(out)],
                   cwd=workdir, check=True, capture_output=True, timeout=600)
    results = {}
    for tc in ET.parse(out).iter("testcase"):
        rule = (tc.get("name") or "").split(" :: ")[0].strip()
        bad = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
        results[rule] = "ok" if bad is None else (bad.get("message") or bad.text or "failed").strip()
    return results


if __name__ == "__main__":  # python tests/focus_validator.py out.parquet  -> prints failing rules
    import tempfile

    shared = Path(os.environ.get("FINOPS_SHARED", REPO.parent / "shared"))
    with tempfile.TemporaryDirectory() as d:
        res = validate(Path(sys.argv[1]).resolve(), shared / "tools" / "focus-validator", Path(d))
    for rule, msg in sorted(res.items()):
        if msg != "ok":
            print(f"{rule}: {msg[:200]}")
    print(f"{TOP_RULE}: {res.get(TOP_RULE)}")
