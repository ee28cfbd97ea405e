"""A Microsoft driver package (``DriversPackage_<KEY>.tar.gz``, or its unpacked directory), made ready to use:
verified, unpacked into a private staging directory, its drivers listed, its OS key and agent build known.

Which agent build a package is for: Microsoft's packages carry no version asrctl could read (``aka.ms`` names them
``DriversPackage_<KEY>``), and its documentation says a package works only with the agent of its release. asrctl
takes the build, in this order, from ``--build VERSION``; from the name, ``DriversPackage_<KEY>_<version>`` (asrctl's
convention for a site's mirror: the build of the SupportedKernels list the package was released with, or just the
release, ``9.66``); or from ``--lists DIR``, where exactly one build's list for the host's tag names exactly the
package's kernels. A package whose build cannot be told this way is refused (``ASRCTL-E096``): without it, the
check that the installed agent is recent enough would be a guess.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl import versions
from asrctl.errors import AsrctlError
from asrctl.kernels import choice
from asrctl.kernels.tree import Tree
from asrctl.output import Output
from asrctl.system import rootfs
from asrctl.system.paths import Paths

LOG = logging.getLogger("asrctl")
MAX_DRIVER = 64 << 20  # a real involflt.ko is ~1-2 MB
_NAME = re.compile(
    r"(?:DriversPackage_(?P<key>[A-Z0-9]+)(?:_(?P<version>[0-9]+\.[0-9]+(?:\.[0-9]+\.[0-9]+)?))?"
    r"|(?P<key2>[A-Z0-9]+)_drivers)(?:\.tar\.gz|\.tgz)?"
)
SUBDIRS = (choice.SIGNED, choice.UNSIGNED)


@dataclass
class Package:
    source: Path
    drivers: Path  # the private copy's Drivers/ directory
    files: set[str]  # relative to Drivers/
    key: str | None = None
    build: str | None = None
    build_from: str | None = None
    sha256: str | None = None
    verified: bool = False
    digest_source: str = ""
    notes: list[str] = field(default_factory=list)

    def kernels(self) -> set[str]:
        return {
            f.rsplit("/", 1)[-1][len(choice.PREFIX) :]
            for f in self.files
            if f.rsplit("/", 1)[-1].startswith(choice.PREFIX)
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.source),
            "key": self.key,
            "build": self.build,
            "build_from": self.build_from,
            "sha256": self.sha256,
            "verified": self.verified,
            "digest_source": self.digest_source,
            "drivers": sorted(self.files),
        }


def parse_name(name: str) -> tuple[str | None, str | None]:
    """(KEY, version) from a package file or directory name; (None, None) when it is not named like one."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None, None
    return m.group("key") or m.group("key2"), m.group("version")


def _list_drivers(drivers: Path) -> set[str]:
    found: set[str] = set()
    for sub in ("", *SUBDIRS):
        d = drivers / sub if sub else drivers
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(choice.PREFIX) and entry.is_file(follow_symlinks=False):
                found.add(f"{sub}/{entry.name}" if sub else entry.name)
    return found


def _copy_dir(source: Path, staging: Path) -> Path:
    """The unpacked package's driver files, copied into the private staging directory: read confined to the
    package directory (a link out of it is refused), regular files only, bounded; so what is checked is what is
    copied, whatever happens to the operator's directory meanwhile."""
    top = source if (source / "Drivers").is_dir() else source.parent if source.name == "Drivers" else None
    if top is None:
        raise AsrctlError("ASRCTL-E096", f"{source}: no Drivers/ directory (not an unpacked driver package)")
    paths = Paths.for_root(top)
    target = staging / "Drivers"
    target.mkdir(parents=True, mode=0o700)
    for name in _list_drivers(top / "Drivers"):
        try:
            data = rootfs.read_file(paths, f"/Drivers/{name}", MAX_DRIVER)
        except rootfs.Refused as exc:
            raise AsrctlError("ASRCTL-E096", f"{source}: Drivers/{name}: {exc.reason}") from None
        if data is None:
            continue
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out.write_bytes(data)
    return target


def open_package(
    source: Path,
    staging: Path,
    *,
    sha256: str | None,
    require_digest: bool,
    out: Output,
) -> Package:
    """Verify and unpack (a file) or copy (a directory) the package into ``staging`` (a fresh private directory)."""
    from asrctl.bundles.digest import DigestPolicy, expected_digest, unverified_warning
    from asrctl.bundles.extract import extract

    source = Path(source)
    if not source.exists():
        raise AsrctlError("ASRCTL-E096", f"{source}: no such file or directory")
    key, version = parse_name(source.name)
    if source.is_dir():
        if sha256 or require_digest:
            raise AsrctlError(
                "ASRCTL-E031",
                f"{source} is a directory: there is no file to check a digest against",
                remedy="Give the DriversPackage_<KEY>.tar.gz itself, with SHA256SUMS beside it or --sha256.",
            )
        drivers = _copy_dir(source, staging)
        if key is None and source.name == "Drivers":
            key, version = parse_name(source.parent.name)
        package = Package(source, drivers, _list_drivers(drivers), key, digest_source="a directory: not verified")
        package.notes.append(f"{source} is a directory: it cannot be verified; prefer the .tar.gz with SHA256SUMS")
    else:
        if not stat.S_ISREG(source.stat().st_mode):
            raise AsrctlError("ASRCTL-E096", f"{source}: not a regular file")
        expected, digest_source = expected_digest(source, DigestPolicy(sha256, require_digest))
        if expected is None:
            out.warn(unverified_warning(source, digest_source))
        done = extract(source, staging / "package", expected_sha256=expected, out=out)
        drivers = done.path / "Drivers"
        if not drivers.is_dir() or drivers.is_symlink():
            raise AsrctlError(
                "ASRCTL-E096", f"{source.name}: holds no Drivers/ directory (not a Microsoft driver package)"
            )
        package = Package(
            source,
            drivers,
            _list_drivers(drivers),
            key,
            sha256=done.sha256,
            verified=expected is not None,
            digest_source=digest_source,
        )
    if version:
        package.build, package.build_from = version, "the file name"
    if not package.files:
        raise AsrctlError("ASRCTL-E096", f"{source.name}: Drivers/ holds no involflt.ko.* driver")
    LOG.info("driver package %s: key %s, %d drivers", source, package.key, len(package.files))
    return package


def build_from_lists(package: Package, tree: Tree, tag: str) -> list[str]:
    """The builds (full versions) whose list for ``tag`` names exactly the package's kernels."""
    wanted = package.kernels()
    found = []
    for ref in tree.refs_for(tag):
        if set(tree.load(ref).kernels()) == wanted:
            found.append(ref.build)
    return sorted(set(found), key=versions.key)


def settle_build(package: Package, given: str | None, tree: Tree | None, tag: str) -> None:
    """Which agent build the package is for (module docstring); ``ASRCTL-E096`` when it cannot be told."""
    if given:
        try:
            parsed = versions.parse(given)
        except versions.VersionError:
            raise AsrctlError("ASRCTL-E002", f"--build {given!r}: not a version such as 9.66.7643.1") from None
        if len(parsed) not in (2, 4):
            raise AsrctlError("ASRCTL-E002", f"--build {given}: give the release (9.66) or the build (9.66.7643.1)")
        if package.build and versions.key(package.build) != parsed:
            package.notes.append(f"--build {given} overrides {package.build} from the file name")
        package.build, package.build_from = given, "--build"
        return
    if package.build:
        return
    if tree is not None:
        builds = build_from_lists(package, tree, tag)
        if len(builds) == 1:
            package.build, package.build_from = builds[0], f"--lists: the {tag} list of {builds[0]}"
            return
        if len(builds) > 1:
            # The same kernels in several builds (a release relabelled): the oldest is the safe requirement.
            package.build, package.build_from = builds[0], f"--lists: the {tag} lists of {', '.join(builds)}"
            return
    raise AsrctlError(
        "ASRCTL-E096",
        f"{package.source.name}: cannot tell which agent build this package is for (Microsoft's packages carry no "
        "version)",
        remedy="Name it with --build VERSION (the SupportedKernels build it was released with, or the release, "
        "9.66), keep it as DriversPackage_<KEY>_<version>.tar.gz on your mirror, or give --lists DIR so asrctl "
        "can find the build whose list matches the package.",
    )


def release_order(package_build: str, agent_version: str) -> int:
    """-1, 0, 1: the package's release (major.minor) against the installed agent's. Microsoft: a package works only
    with the agent of its release; its build number is a driver (DLC) release of that same agent."""
    a, b = versions.key(package_build)[:2], versions.key(agent_version)[:2]
    return (a > b) - (a < b)


def remove(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
