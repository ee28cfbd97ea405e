"""HostFacts: what machine this is, read through ``--root``.

Linux facts come from the release files under the root (the ``distro`` package with ``root_dir`` for the
id/name/version, plus the raw release files Microsoft's detector greps), never from a subprocess. Windows facts
come from ``sys.getwindowsversion``, ``platform`` and the registry; every source is injectable so the Windows
path is unit-tested on Linux.
"""

from __future__ import annotations

import os
import platform as _platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.system.paths import Paths

# The files Microsoft's OS_details.sh looks at, in its order.
RELEASE_FILES = (
    "/etc/oracle-release",
    "/etc/redhat-release",
    "/etc/SuSE-release",
    "/etc/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
)
MAX_RELEASE_FILE = 64 * 1024

ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "em64t": "x86_64", "i386": "i686", "x86": "i686"}


@dataclass(frozen=True)
class WindowsFacts:
    product_name: str
    kernel: str  # "10.0"
    build: int
    product_type: str  # "server" | "client"
    service_pack: int = 0
    installation_type: str = ""
    ubr: int = 0


@dataclass(frozen=True)
class HostFacts:
    os_family: str  # "linux" | "windows" | other platform.system() lower-case
    distro_id: str
    distro_name: str
    version: str
    arch: str
    kernel: str
    is_admin: bool
    root: str
    like: tuple[str, ...] = ()
    release_files: Mapping[str, str] = field(default_factory=dict)
    windows: WindowsFacts | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "os_family": self.os_family,
            "distro_id": self.distro_id,
            "distro_name": self.distro_name,
            "version": self.version,
            "arch": self.arch,
            "kernel": self.kernel,
            "is_admin": self.is_admin,
            "root": self.root,
        }


def normalize_arch(machine: str) -> str:
    m = machine.strip().lower()
    return ARCH_ALIASES.get(m, m)


def read_in_root(paths: Paths, path: str, limit: int = MAX_RELEASE_FILE) -> str | None:
    """Read a small text file of the target system, following symlinks *inside* the root only.

    ``/etc/os-release`` is usually a symlink to ``../usr/lib/os-release``; an absolute link target must be
    resolved against the root, not against this host. Returns None when the file does not exist; raises
    ASRCTL-E011 when it exists but cannot be read as text.
    """
    current = PurePosixPath(path)
    for _ in range(16):
        real = paths.host(str(current))
        try:
            if real.is_symlink():
                target = PurePosixPath(os.readlink(real))
                current = target if target.is_absolute() else PurePosixPath(os.path.normpath(current.parent / target))
                continue
            if not real.exists():
                return None
            if not real.is_file():
                raise AsrctlError("ASRCTL-E011", f"{path} under {paths.root} is not a regular file")
            with open(real, "rb") as fh:
                data = fh.read(limit + 1)
        except AsrctlError:
            raise
        except OSError as exc:
            raise AsrctlError("ASRCTL-E011", f"cannot read {path} under {paths.root}: {exc.strerror}") from None
        if len(data) > limit:
            raise AsrctlError("ASRCTL-E011", f"{path} under {paths.root} is larger than {limit} bytes")
        return data.decode("utf-8", errors="replace")
    raise AsrctlError("ASRCTL-E011", f"{path} under {paths.root}: too many levels of symbolic links")


def _is_admin_posix() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)


def detect(paths: Paths, environ: Mapping[str, str] | None = None) -> HostFacts:
    """Collect facts for this host (or the sandbox root)."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        return collect_windows(paths)
    return collect_linux(paths, env)


def collect_linux(
    paths: Paths,
    environ: Mapping[str, str],
    uname: Callable[[], Any] = _platform.uname,
    is_admin: Callable[[], bool] = _is_admin_posix,
) -> HostFacts:
    import distro

    release_files: dict[str, str] = {}
    for name in RELEASE_FILES:
        text = read_in_root(paths, name)
        if text is None and name == "/etc/os-release":
            text = read_in_root(paths, "/usr/lib/os-release")
        if text is not None:
            release_files[name] = text

    info = distro.LinuxDistribution(root_dir=str(paths.root), include_lsb=False, include_uname=False)
    u = uname()
    arch = normalize_arch(u.machine)
    kernel = u.release
    # Arch and kernel are properties of the running kernel, not of the files under --root. A sandbox may
    # pretend to be another host (tests, and acceptance runs against fixture trees): only then do these
    # environment variables count.
    if paths.sandboxed:
        arch = normalize_arch(environ.get("ASRCTL_ARCH", arch))
        kernel = environ.get("ASRCTL_KERNEL", kernel)
    return HostFacts(
        os_family="linux",
        distro_id=info.id(),
        distro_name=info.name(),
        version=info.version(best=True),
        like=tuple(info.like().split()),
        arch=arch,
        kernel=kernel,
        is_admin=is_admin(),
        root=str(paths.root),
        release_files=release_files,
    )


# --- Windows -----------------------------------------------------------------------------------------------

NT_CURRENT_VERSION = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"


def collect_windows(
    paths: Paths,
    getwindowsversion: Callable[[], Any] | None = None,
    read_registry: Callable[[str, str], Any] | None = None,
    environ: Mapping[str, str] | None = None,
    machine: Callable[[], str] = _platform.machine,
    is_admin: Callable[[], bool] | None = None,
) -> HostFacts:
    """Windows facts. ``read_registry(key, value)`` reads HKLM and returns None when absent."""
    env = os.environ if environ is None else environ
    if getwindowsversion is None:
        getwindowsversion = sys.getwindowsversion  # type: ignore[attr-defined]
    if read_registry is None:
        from asrctl.system.winreg_access import read_hklm

        read_registry = read_hklm
    if is_admin is None:
        from asrctl.system.winreg_access import is_admin as _win_admin

        is_admin = _win_admin
    wv = getwindowsversion()
    product_type = "client" if getattr(wv, "product_type", 1) == 1 else "server"
    product_name = str(read_registry(NT_CURRENT_VERSION, "ProductName") or "Windows")
    installation_type = str(read_registry(NT_CURRENT_VERSION, "InstallationType") or "")
    build = int(getattr(wv, "build", 0))
    ubr = read_registry(NT_CURRENT_VERSION, "UBR") or 0
    # A 32-bit process on 64-bit Windows sees "x86"; the OS architecture is in PROCESSOR_ARCHITEW6432.
    arch = normalize_arch(env.get("PROCESSOR_ARCHITEW6432") or env.get("PROCESSOR_ARCHITECTURE") or machine())
    if build >= 22000 and product_type == "client" and "Windows 10" in product_name:
        # Windows 11 still says "Windows 10" in ProductName; the build number is what counts.
        product_name = product_name.replace("Windows 10", "Windows 11")
    win = WindowsFacts(
        product_name=product_name,
        kernel=f"{wv.major}.{wv.minor}",
        build=build,
        product_type=product_type,
        service_pack=int(getattr(wv, "service_pack_major", 0)),
        installation_type=installation_type,
        ubr=int(ubr),
    )
    return HostFacts(
        os_family="windows",
        distro_id="windows",
        distro_name=product_name,
        version=f"{wv.major}.{wv.minor}.{build}",
        arch=arch,
        kernel=f"{wv.major}.{wv.minor}.{build}.{ubr}",
        is_admin=is_admin(),
        root=str(paths.root),
        windows=win,
    )
