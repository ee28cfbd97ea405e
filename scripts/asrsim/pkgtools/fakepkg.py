"""A simulated package manager: ``dpkg-query``, ``apt-get``, ``rpm``, ``yum``, ``dnf``, ``zypper`` in one file.

Standard library only. Every state it keeps lives under ``$ASRCTL_ROOT`` (the sandbox root asrctl passes to
its children); without it, it refuses to run, so it can never touch the real host.

* every call is appended to ``$ASRCTL_ROOT/var/log/fakepkg.calls`` (one JSON list of argv per line, argv[0]
  reduced to the tool name);
* an installed package is a file ``$ASRCTL_ROOT/var/lib/fakepkg/<name>`` holding its version;
* the "configured repositories" are ``$ASRCTL_ROOT/etc/fakepkg/repo``, lines ``name=version``;
* ``FAKEPKG_FAIL=<tool>`` makes that tool's installs fail (exit 100).

``rpm`` also installs *RPM-shaped* files (scripts/asrsim/bundle.py, ``rpm_shaped``: a tar whose first member is the
header ``.asrsim-rpm.json``, the rest the package's files relative to its prefix): ``rpm -i|-U [-vh] [--prefix DIR]
FILE`` lays the files under the prefix (inside the root, or it refuses) and records them in
``$ASRCTL_ROOT/var/lib/fakepkg/<name>.rpm.json``; ``rpm -q [--qf FMT] NAME`` answers (``NAME-VER-REL.ARCH``, or the
stored ``VER-REL`` with ``--qf``), ``rpm -ql NAME`` lists the files, ``rpm -e NAME`` removes exactly them (and the
directories they leave empty). ``-U`` keeps an existing config file (``%config(noreplace)``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
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
        return _rpm(root, args)
    if "install" not in args:
        print(f"{tool}: only 'install' is simulated", file=sys.stderr)
        return 2
    targets = [a for a in args[args.index("install") + 1 :] if not a.startswith("-")]
    return _install(root, tool, targets)


RPM_META = ".asrsim-rpm.json"
PAD_NAME = "padding.bin"  # the bundle builder's benchmark filler, never installed


def _inside(root: Path, path: Path) -> Path:
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise ValueError(f"{path} is outside the sandbox root {root}")
    return path


def _meta_path(root: Path, name: str) -> Path:
    return _db(root) / f"{name}.rpm.json"


def _rpm(root: Path, args: list[str]) -> int:
    mode = next((a for a in args if a.startswith("-") and a[1:2] in ("i", "U", "e", "q")), None)
    if mode is None:
        print("rpm (asrsim): only -i, -U, -e and -q are simulated", file=sys.stderr)
        return 2
    rest = [a for a in args if a != mode]
    if mode[1:2] == "q":
        fmt = None
        if "--qf" in rest:
            fmt = rest[rest.index("--qf") + 1]
        name = rest[-1]
        version = _installed(root, name)
        if version is None:
            print(f"package {name} is not installed")
            return 1
        meta = _load_meta(root, name)
        if "l" in mode[2:]:
            print("\n".join((meta or {}).get("files", [])))
        elif fmt is None and meta is not None:
            print(f"{name}-{version}.{meta['arch']}")
        else:
            print(version)
        return 0
    if os.environ.get("FAKEPKG_FAIL") == "rpm":
        print("rpm: simulated failure", file=sys.stderr)
        return 100
    if mode[1:2] == "e":
        return _rpm_erase(root, rest[-1])
    prefix = None
    if "--prefix" in rest:
        prefix = rest[rest.index("--prefix") + 1]
    upgrade = mode[1:2] == "U"
    return _rpm_install(root, Path(rest[-1]), prefix, upgrade)


def _load_meta(root: Path, name: str) -> dict | None:
    try:
        return json.loads(_meta_path(root, name).read_text())
    except FileNotFoundError:
        return None


def _rpm_install(root: Path, package: Path, prefix: str | None, upgrade: bool) -> int:
    try:
        with tarfile.open(package, "r:") as tar:
            first = tar.next()
            if first is None or first.name != RPM_META:
                print(f"error: {package}: not an RPM package (asrsim)", file=sys.stderr)
                return 1
            header = json.loads(tar.extractfile(first).read())
            name = header["name"]
            if _installed(root, name) is not None and not upgrade:
                print(f"package {name}-{header['version']}-{header['release']}.{header['arch']} is already installed")
                return 1
            base = Path(prefix) if prefix else Path(str(root) + header["prefix"])
            _inside(root, base)
            old = _load_meta(root, name) or {}
            config = set(header.get("config", []))
            files: list[str] = []
            dirs: list[str] = [str(base)]
            base.mkdir(parents=True, exist_ok=True)
            for member in tar:
                rel = member.name
                if rel == RPM_META or rel.startswith("/") or ".." in rel.split("/") or rel.endswith(PAD_NAME):
                    continue
                target = _inside(root, base / rel)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    dirs.append(str(target))
                    continue
                if not member.isfile():
                    print(f"error: {rel}: only files and directories are simulated", file=sys.stderr)
                    return 1
                files.append(str(target))
                if upgrade and rel in config and target.exists():
                    continue  # %config(noreplace)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.rpmnew")
                tmp.write_bytes(tar.extractfile(member).read())
                tmp.chmod(member.mode & 0o7777)
                os.replace(tmp, target)
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        print(f"error: {package}: {exc}", file=sys.stderr)
        return 1
    for gone in set(old.get("files", [])) - set(files):
        Path(gone).unlink(missing_ok=True)
    version = f"{header['version']}-{header['release']}"
    meta = {**header, "prefix": str(base), "files": files, "dirs": sorted(set(dirs))}
    _db(root).mkdir(parents=True, exist_ok=True)
    _meta_path(root, name).write_text(json.dumps(meta, indent=2) + "\n")
    (_db(root) / name).write_text(version + "\n")
    print(f"{'Upgrading' if upgrade else 'Installing'} {name}-{version}.{header['arch']}")
    return 0


def _rpm_erase(root: Path, name: str) -> int:
    if _installed(root, name) is None:
        print(f"error: package {name} is not installed", file=sys.stderr)
        return 1
    meta = _load_meta(root, name) or {}
    for path in meta.get("files", []):
        Path(_inside(root, Path(path))).unlink(missing_ok=True)
    for path in sorted(meta.get("dirs", []), key=len, reverse=True):
        try:
            _inside(root, Path(path)).rmdir()
        except OSError:
            pass  # not empty: files the package does not own (logs, state) stay, as with a real rpm -e
    _meta_path(root, name).unlink(missing_ok=True)
    (_db(root) / name).unlink(missing_ok=True)
    return 0
