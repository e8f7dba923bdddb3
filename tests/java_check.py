"""``python tests/java_check.py --ensure`` (``make java``, part of ``make test``): Java for the Spark tests.

The Spark parity tests (tests/test_spark_parity.py) start a local PySpark, which needs a JVM (Java 17+). When
``java`` is missing: as root (or with passwordless sudo) on a Debian-like system, install Debian's
``openjdk-17-jre-headless`` as ``.ci/run`` does; otherwise, or when that fails, print one line saying how to get
it and exit 1, so ``make test`` never goes green without its Spark tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PACKAGE = "openjdk-17-jre-headless"
INSTALL_HINT = (f"no Java for the Spark tests: install Java 17+ (sudo apt-get install {PACKAGE}, as .ci/run does) "
                "or set JAVA_HOME")


def java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def ensure_debian_package(package: str, purpose: str, found: Callable[[], bool], hint: str) -> int:
    """0 when ``found()``; else, as root (or with passwordless sudo) on a Debian-like system, ``apt-get install
    package`` as ``.ci/run`` does and 0 when that made it found; otherwise one line ``make test: hint`` and 1.

    Shared by this script (Java) and ``tests/browser_check.py --ensure`` (chromium): one install rule for both.
    """
    if found():
        return 0
    apt = shutil.which("apt-get")
    sudo: list[str] = []
    if apt and os.geteuid() != 0:
        ok = shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
        sudo = ["sudo", "-n"] if ok else []
    if apt and (os.geteuid() == 0 or sudo):
        print(f"installing Debian's {package} for {purpose} (apt-get, ~1 min)", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
            if subprocess.run(sudo + cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
                break
        if found():
            return 0
    print(f"make test: {hint}", file=sys.stderr)
    return 1


def ensure_java() -> int:
    return ensure_debian_package(PACKAGE, "the Spark tests", java_found, INSTALL_HINT)


if __name__ == "__main__":
    if sys.argv[1:] != ["--ensure"]:
        print("usage: python tests/java_check.py --ensure", file=sys.stderr)
        sys.exit(2)
    sys.exit(ensure_java())
