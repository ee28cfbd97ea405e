"""What a Linux bundle really holds: its own top-level ``.vx_version``, read from the unpacked tree before anything
from it runs, and checked against the file name.

Microsoft's build writes the bundle's name and its ``.vx_version`` ``VERSION`` from the same build variable, and
``OS_BUILT_FOR`` is the tag the name carries (index 12130928631, 12015563372). A bundle whose name disagrees was
renamed or mislabelled: installing it would put another release, or a release for another OS, on the host than the
one asked for and chosen. Names use Microsoft's ``x.y.0.0`` form for a whole release as often as the full build,
so the release comparison is the one the rest of asrctl uses (:func:`asrctl.versions.same_release`). A file with no
top-level ``.vx_version`` is not a Microsoft Linux bundle at all.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from asrctl.bundles.names import BundleName
from asrctl.errors import AsrctlError
from asrctl.versions import same_release

VX_VERSION = ".vx_version"
MAX_BYTES = 64 * 1024  # a dozen short lines


@dataclass(frozen=True)
class BundleIdentity:
    keys: dict[str, str]

    @property
    def version(self) -> str:
        return self.keys.get("VERSION", "")

    @property
    def os_tag(self) -> str:
        return self.keys.get("OS_BUILT_FOR", "")

    @property
    def build_tag(self) -> str | None:
        return self.keys.get("BUILD_TAG") or None

    @property
    def payload(self) -> str | None:
        """The payload the bundle's installer lays out: ``TAR_FILE_NAME`` (Ubuntu, Debian) or ``RPM_NAME``."""
        return self.keys.get("TAR_FILE_NAME") or self.keys.get("RPM_NAME") or None

    @property
    def rpm_package(self) -> str | None:
        return self.keys.get("RPM_PACKAGE") or None

    def as_json(self) -> dict[str, str | None]:
        return {
            "version": self.version,
            "os_tag": self.os_tag,
            "build_tag": self.build_tag,
            "payload": self.payload,
            "rpm_package": self.rpm_package,
        }


def parse(text: str) -> dict[str, str]:
    """``KEY=value`` lines (it is shell: Microsoft's scripts source it); anything else is ignored."""
    keys: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            keys[key.strip()] = value.strip().strip('"')
    return keys


def read_identity(staged: Path, bundle_name: str) -> BundleIdentity:
    """The staged bundle's own ``.vx_version``: a regular file at its top (no link followed), bounded read."""
    path = Path(staged) / VX_VERSION
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise not_a_linux_bundle(bundle_name, "it has no .vx_version at its top") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_a_linux_bundle(bundle_name, "its .vx_version is not a regular file")
        text = os.read(fd, MAX_BYTES).decode("utf-8", errors="replace")
    finally:
        os.close(fd)
    keys = parse(text)
    missing = [k for k in ("VERSION", "OS_BUILT_FOR") if not keys.get(k)]
    if missing:
        raise not_a_linux_bundle(bundle_name, f"its .vx_version has no {' or '.join(missing)}")
    return BundleIdentity(keys)


def not_a_linux_bundle(bundle_name: str, why: str) -> AsrctlError:
    return AsrctlError("ASRCTL-E039", f"{bundle_name} is not a Microsoft Linux bundle: {why}", bundle=bundle_name)


def mismatch(name: BundleName, identity: BundleIdentity) -> str | None:
    """Why the name and the bundle's own .vx_version disagree, or None when they agree."""
    wrong = []
    if not same_release(name.version, identity.version):
        wrong.append(f"its name says version {name.version}, its .vx_version says VERSION={identity.version}")
    if name.os_tag.upper() != identity.os_tag.upper():
        wrong.append(f"its name says {name.os_tag}, its .vx_version says OS_BUILT_FOR={identity.os_tag}")
    return "; ".join(wrong) or None


def check_identity(name: BundleName, identity: BundleIdentity) -> None:
    why = mismatch(name, identity)
    if why is not None:
        raise AsrctlError(
            "ASRCTL-E038",
            f"{name.filename} was renamed or mislabelled: {why}",
            bundle=name.filename,
            name_version=name.version,
            name_os_tag=name.os_tag,
            vx_version=identity.version,
            os_built_for=identity.os_tag,
        )
