"""The JavaScript the offline reports inline, obtained at setup time into a cache outside git.

    python -m finops_kit.assets            # idempotent; fast when cached (``make test`` / ``make demo`` run it)
    python -m finops_kit.assets --check    # exit 1 when an asset is missing

Two assets, none of them committed to the repository:

* the Vega + Vega-Lite + vega-embed bundle, from the installed ``vl-convert-python`` (``javascript_bundle()``;
  ~0.9 MB, ~1.6 s to build, so it is built once and cached), wrapped in an IIFE so its top-level identifiers
  cannot collide with anything else in the page;
* ``@jupyter-widgets/html-manager@1.0.15`` ``dist/embed.js`` (renders stored ipywidgets state without a
  kernel), fetched with ``npm pack`` from the npm registry; no PyPI package ships a usable copy.

Cache folder: ``$FINOPS_ASSETS_DIR``, else ``$XDG_CACHE_HOME/finops-kit`` (``~/.cache/finops-kit``). A file
``manifest.json`` records the versions and sha256 of what is there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .errors import FinopsError

HTML_MANAGER = "@jupyter-widgets/html-manager"
HTML_MANAGER_VERSION = "1.0.15"


def cache_dir() -> Path:
    """Where the assets live (created on demand)."""
    env = os.environ.get("FINOPS_ASSETS_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finops-kit"


def cache_folder(env: str, name: str) -> Path | None:
    """The folder of one of the kit's result caches (fits, queries): ``$env`` when set, ``None`` when it says
    ``off`` (every result is computed, nothing is kept), else ``name`` in :func:`cache_dir`. One rule, so every
    cache is switched off and moved the same way."""
    value = os.environ.get(env, "").strip()
    if value.lower() in ("off", "0", "false", "no", "none"):
        return None
    if value:
        return Path(value).expanduser()
    return cache_dir() / name


def _vl_convert_version() -> str:
    from importlib.metadata import version

    return version("vl-convert-python")


def vega_bundle_path() -> Path:
    return cache_dir() / f"vega-bundle-vlc{_vl_convert_version()}.js"


def widget_manager_path() -> Path:
    return cache_dir() / f"html-manager-{HTML_MANAGER_VERSION}-embed.js"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def ensure_vega_bundle() -> Path:
    """Build (once) and return the cached Vega bundle."""
    path = vega_bundle_path()
    if path.exists() and path.stat().st_size > 100_000:
        return path
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    # An IIFE keeps the bundle's top-level const/function names private; it publishes window.vegaEmbed etc.
    _write_atomic(path, "(function(){\n" + bundle + "\n})();\n")
    _write_manifest()
    return path


def ensure_widget_manager(npm: str | None = None) -> Path:
    """Fetch (once) ``@jupyter-widgets/html-manager`` with ``npm pack`` and return its cached ``embed.js``."""
    path = widget_manager_path()
    if path.exists() and path.stat().st_size > 100_000:
        return path
    npm = npm or shutil.which("npm")
    if not npm:
        raise FinopsError(f"npm not found: needed once to fetch {HTML_MANAGER}@{HTML_MANAGER_VERSION} "
                          "(install Node.js/npm, then run 'python -m finops_kit.assets')")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", f"{HTML_MANAGER}@{HTML_MANAGER_VERSION}", "--silent"],
                              cwd=tmp, capture_output=True, text=True, timeout=300)
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if proc.returncode != 0 or tgz is None:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise FinopsError(f"npm pack {HTML_MANAGER}@{HTML_MANAGER_VERSION} failed: {last[0]}")
        with tarfile.open(tgz) as tar:
            member = tar.getmember("package/dist/embed.js")
            data = tar.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
    _write_atomic(path, data)
    _write_manifest()
    return path


def _write_manifest() -> None:
    entries = {}
    for p in (vega_bundle_path(), widget_manager_path()):
        if p.exists():
            entries[p.name] = {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    manifest = {"vl-convert-python": _vl_convert_version(),
                HTML_MANAGER: HTML_MANAGER_VERSION, "files": entries}
    _write_atomic(cache_dir() / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def load_vega_bundle() -> str:
    """Text of the Vega bundle (built now if not cached)."""
    return ensure_vega_bundle().read_text(encoding="utf-8")


def load_widget_manager() -> str | None:
    """Text of the widget manager's ``embed.js``, fetching it if possible; None when it cannot be had."""
    try:
        return ensure_widget_manager().read_text(encoding="utf-8")
    except (FinopsError, OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finops_kit.assets", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 when an asset is missing")
    args = parser.parse_args(argv)
    if args.check:
        missing = [p for p in (vega_bundle_path(), widget_manager_path()) if not p.exists()]
        for p in missing:
            print(f"missing: {p}", file=sys.stderr)
        return 1 if missing else 0
    try:
        for p in (ensure_vega_bundle(), ensure_widget_manager()):
            print(f"{p} ({p.stat().st_size:,} bytes)")
    except FinopsError as exc:
        print(f"finops-kit assets: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
