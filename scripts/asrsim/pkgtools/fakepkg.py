"""A simulated package manager: ``dpkg-query``, ``apt-get``, ``rpm``, ``yum``, ``dnf``, ``zypper`` in one file.

Standard library only. Every state it keeps lives under ``$ASRCTL_ROOT`` (the sandbox root asrctl passes to
its children); without it, it refuses to run, so it can never touch the real host.

* every call is appended to ``$ASRCTL_ROOT/var/log/fakepkg.calls`` (one JSON list of argv per line, argv[0]
  reduced to the tool name);
* an installed package is a file ``$ASRCTL_ROOT/var/lib/fakepkg/<name>`` holding its version;
* the "configured repositories" are ``$ASRCTL_ROOT/etc/fakepkg/repo``, lines ``name=version``;
* ``FAKEPKG_FAIL=<tool>`` makes that tool's installs fail (exit 100).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

DEB = re.compile(r"^(?P<name>[^_]+)_(?P<version>[^_]+)_[^_]+\.deb$")
RPM = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*-[^-]+?)\.[^.]+\.rpm$")


def _root() -> Path:
    root = os.environ.get("ASRCTL_ROOT")
    if not root or not Path(root).is_dir():
        print("fakepkg: ASRCTL_ROOT is not set; refusing to run outside a sandbox", file=sys.stderr)
        sys.exit(97)
    return Path(root)


def _db(root: Path) -> Path:
    return root / "var/lib/fakepkg"


def _installed(root: Path, name: str) -> str | None:
    try:
        return (_db(root) / name).read_text().strip()
    except FileNotFoundError:
        return None


def _repo(root: Path) -> dict[str, str]:
    try:
        text = (root / "etc/fakepkg/repo").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.split() if "=" in line)


def _record(root: Path, tool: str, args: list[str]) -> None:
    log = root / "var/log/fakepkg.calls"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps([tool, *args]) + "\n")


def _install(root: Path, tool: str, targets: list[str]) -> int:
    if os.environ.get("FAKEPKG_FAIL") == tool:
        print(f"{tool}: simulated failure", file=sys.stderr)
        return 100
    for target in targets:
        if "/" in target:
            path = Path(target)
            m = (DEB if target.endswith(".deb") else RPM).match(path.name)
            if not path.is_file() or m is None:
                print(f"{tool}: cannot open package file {target}", file=sys.stderr)
                return 100
            name, version = m["name"], m["version"]
        else:
            name, version = target, _repo(root).get(target, "")
            if not version:
                print(f"{tool}: Unable to locate package {target}", file=sys.stderr)
                return 100
        _db(root).mkdir(parents=True, exist_ok=True)
        (_db(root) / name).write_text(version + "\n")
        print(f"{tool}: installed {name} {version}")
    return 0


def main(tool: str) -> int:
    args = sys.argv[1:]
    root = _root()
    _record(root, tool, args)
    if tool == "dpkg-query":
        name = args[-1]
        version = _installed(root, name)
        if version is None:
            print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
            return 1
        print(f"install ok installed\t{version}")
        return 0
    if tool == "rpm":
        name = args[-1]
        version = _installed(root, name)
        if version is None:
            print(f"package {name} is not installed")
            return 1
        print(version)
        return 0
    if "install" not in args:
        print(f"{tool}: only 'install' is simulated", file=sys.stderr)
        return 2
    targets = [a for a in args[args.index("install") + 1 :] if not a.startswith("-")]
    return _install(root, tool, targets)
