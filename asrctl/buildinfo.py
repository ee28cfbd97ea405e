"""What ``asrctl --version -v`` shows: version, commit, build date, Python and PyInstaller versions.

Imported only for ``--version -v`` (plain ``--version`` prints ``asrctl <version>`` and stays as fast as
``import click``). Where the facts come from depends on how asrctl runs:

- **the one-file binary**: a module the build generates, ``_asrctl_build`` (scripts/binary/build.py writes it into
  the build directory and freezes it in; it is never in the source tree, so a stale copy can never be read by a
  source checkout). Its date is SOURCE_DATE_EPOCH, the commit's time, so two builds of a commit stay identical;
- **a source tree** (a git checkout, also when installed editable): ``git describe`` once, if git is there;
- **an installed wheel**: the package metadata (a ``pip install git+...`` records the commit in PEP 610's
  ``direct_url.json``; a wheel file does not, so the commit is then "unknown").
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from asrctl import __version__

UNKNOWN = "unknown"
BAKED_MODULE = "_asrctl_build"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    commit: str
    build_date: str
    python: str
    pyinstaller: str
    source: str  # "binary", "source tree" or "installed package"

    def lines(self) -> list[str]:
        return [
            f"asrctl {self.version}",
            f"  commit:      {self.commit}",
            f"  build date:  {self.build_date}",
            f"  python:      {self.python}",
            f"  pyinstaller: {self.pyinstaller}",
            f"  running as:  {self.source}",
        ]

    def as_json(self) -> dict[str, str]:
        return asdict(self)


def _python() -> str:
    return f"{platform.python_version()} ({platform.python_implementation()})"


def from_baked(module: object) -> BuildInfo:
    """The facts a build froze in (``_asrctl_build``); the Python version is the one actually running."""
    return BuildInfo(
        version=str(getattr(module, "VERSION", __version__)),
        commit=str(getattr(module, "COMMIT", UNKNOWN)),
        build_date=str(getattr(module, "BUILD_DATE", UNKNOWN)),
        python=_python(),
        pyinstaller=str(getattr(module, "PYINSTALLER", UNKNOWN)),
        source="binary",
    )


def source_tree(package_dir: Path) -> Path | None:
    """The checkout this package is imported from, when it is one (``asrctl/`` beside setup.cfg and .git)."""
    top = package_dir.parent
    if (top / "setup.cfg").is_file() and (top / ".git").exists():  # .git is a file in a worktree
        return top
    return None


def git_commit(top: Path) -> str:
    """The checkout's commit, ``-dirty`` when it has changes; "unknown" without git. One short subprocess."""
    git = shutil.which("git")
    if git is None:
        return UNKNOWN
    try:
        # A fixed argv, no shell; only for a source checkout (the binary reads its baked module), so not through
        # system/runner.py, which needs the App's --root.
        proc = subprocess.run(  # noqa: S603
            [git, "-C", str(top), "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else UNKNOWN


def from_metadata(dist_name: str = "asrctl") -> BuildInfo | None:
    """An installed distribution's version, and its commit when the installer recorded one (PEP 610)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(dist_name)
    except PackageNotFoundError:
        return None
    commit = UNKNOWN
    raw = dist.read_text("direct_url.json")
    if raw:
        try:
            vcs = json.loads(raw).get("vcs_info") or {}
        except (ValueError, AttributeError):
            vcs = {}
        commit = str(vcs.get("commit_id") or UNKNOWN)
    return BuildInfo(dist.version, commit, UNKNOWN, _python(), "not frozen", "installed package")


def collect() -> BuildInfo:
    if getattr(sys, "frozen", False):
        try:
            import importlib

            return from_baked(importlib.import_module(BAKED_MODULE))
        except ImportError:
            return BuildInfo(__version__, UNKNOWN, UNKNOWN, _python(), UNKNOWN, "binary")
    top = source_tree(Path(__file__).resolve().parent)
    if top is not None:
        return BuildInfo(
            __version__, git_commit(top), "not built (source tree)", _python(), "not frozen", "source tree"
        )
    return from_metadata() or BuildInfo(__version__, UNKNOWN, UNKNOWN, _python(), "not frozen", "installed package")
