"""HostFacts: what machine this is, read through ``--root``.

Linux facts come from the release files under the root (the ones Microsoft's detector greps, plus
``os-release`` for the id/name/version), never from a subprocess and never from the host running asrctl:
every path, including every symbolic link on the way, is resolved inside the root (see :func:`read_in_root`).
The ``distro`` package cannot do that, nor give OS_details.sh's answers (docs/PLATFORMS.md, "Why not distro").
Windows facts come from ``sys.getwindowsversion``, ``platform`` and the registry; every source is injectable
so the Windows path is unit-tested on Linux.
"""

from __future__ import annotations

import os
import platform as _platform
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.system import rootfs
from asrctl.system.paths import Paths
from asrctl.system.winreg_access import RegistryValue
from asrctl.versions import is_number

# The files Microsoft's OS_details.sh looks at, in its order.
RELEASE_FILES = (
    "/etc/oracle-release",
    "/etc/redhat-release",
    "/etc/SuSE-release",
    "/etc/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
)
# os-release(5): /etc/os-release first, /usr/lib/os-release when it is missing.
OS_RELEASE_FALLBACK = "/usr/lib/os-release"
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


def _e011(path: str, paths: Paths, what: str) -> AsrctlError:
    return AsrctlError("ASRCTL-E011", f"{path} under {paths.root}: {what}")


def read_in_root(paths: Paths, path: str, limit: int = MAX_RELEASE_FILE) -> str | None:
    """Read a small text file of the target system, following symlinks *inside* the root only (system/rootfs.py).

    ``/etc/os-release`` is usually a symlink to ``../usr/lib/os-release``; an absolute link target (or a link
    in a parent directory) must be resolved against the root, not against this host. Returns None when the
    file does not exist; raises ASRCTL-E011 when it exists but is not a readable regular file of at most
    ``limit`` bytes. Undecodable bytes are replaced, never fatal.
    """
    try:
        data = rootfs.read_file(paths, path, limit)
    except rootfs.Refused as exc:
        raise _e011(path, paths, exc.reason) from None
    return None if data is None else data.decode("utf-8", errors="replace")


# --- release-file parsing (pure) ----------------------------------------------------------------------------

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unquote(value: str) -> str:
    """A shell-quoted os-release(5) value: ``"..."`` (with backslash escapes), ``'...'`` or bare words."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(value):
        ch = value[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append(ch)
        elif ch == "\\" and i + 1 < len(value) and (quote == "" or value[i + 1] in '"\\$`'):
            i += 1
            out.append(value[i])
        elif quote == '"':
            if ch == '"':
                quote = ""
            else:
                out.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (not out or out[-1].isspace()):
            break  # a trailing comment
        else:
            out.append(ch)
        i += 1
    return "".join(out).strip()


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release(5) / lsb-release, shell quoting undone. Lines that are not assignments
    are ignored and an unterminated quote ends at the line's end, so a damaged file yields fewer keys, never an
    exception."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if _KEY.match(key):
            out[key] = _unquote(value.strip())
    return out


# Release files without os-release (RHEL/CentOS 5-6, OL6, SLES 11 SP2): "<name> release <version> (...)".
_RELEASE_LINE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>\d+(?:\.\d+)*)")
_ID_BY_NAME = (
    ("Oracle Linux", "ol"),
    ("Red Hat Enterprise Linux", "rhel"),
    ("CentOS Stream", "centos"),
    ("CentOS", "centos"),
    ("Rocky Linux", "rocky"),
    ("AlmaLinux", "almalinux"),
    ("Fedora", "fedora"),
    ("Amazon Linux", "amzn"),
    ("SUSE Linux Enterprise Server", "sles"),
    ("openSUSE", "opensuse"),
)


def _id_for(name: str) -> str:
    for prefix, ident in _ID_BY_NAME:
        if name.startswith(prefix):
            return ident
    return ""


def _more_precise(a: str, b: str) -> str:
    """The version with more numeric parts (``7.9.2009`` over ``7``), ``a`` on a tie or when ``b`` is empty."""
    if not b or not re.match(r"^\d+(\.\d+)*$", b):
        return a
    if not a:
        return b
    return b if b.count(".") > a.count(".") and b.split(".")[0] == a.split(".")[0] else a


def identify(files: Mapping[str, str], system_release: str | None = None) -> tuple[str, str, str, tuple[str, ...]]:
    """(id, name, version, like) from the release-file texts. os-release wins for id and name; the version
    is the most precise one the files agree on (CentOS ``7.9.2009``, Debian ``12.8``)."""
    osr = parse_os_release(files.get("/etc/os-release", ""))
    ident = osr.get("ID", "").lower()
    name = osr.get("NAME", "")
    version = osr.get("VERSION_ID", "")
    like = tuple(osr.get("ID_LIKE", "").lower().split())
    first = ""
    for key in ("/etc/oracle-release", "/etc/redhat-release"):
        if key in files:
            first = files[key].strip().splitlines()[0] if files[key].strip() else ""
            break
    else:
        if system_release and system_release.strip():
            first = system_release.strip().splitlines()[0]
    found = _RELEASE_LINE.match(first)
    if found:
        ident = ident or _id_for(found["name"])
        name = name or found["name"]
        version = _more_precise(version, found["version"])
    suse = files.get("/etc/SuSE-release")
    if suse:
        ver = re.search(r"(?m)^VERSION\s*=\s*(\d+(?:\.\d+)?)", suse)
        patch = re.search(r"(?m)^PATCHLEVEL\s*=\s*(\d+)", suse)
        head = suse.strip().splitlines()[0]
        name = name or re.sub(r"\s*\d.*$", "", head)
        ident = ident or _id_for(head)
        if ver:
            version = version or (f"{ver[1]}.{patch[1]}" if patch else ver[1])
    lsb = parse_os_release(files.get("/etc/lsb-release", ""))
    if lsb.get("DISTRIB_ID"):
        ident = ident or lsb["DISTRIB_ID"].lower()
        name = name or lsb["DISTRIB_ID"]
        version = version or lsb.get("DISTRIB_RELEASE", "")
    debian = files.get("/etc/debian_version", "").strip()
    if debian and ident in ("", "debian"):
        ident = ident or "debian"
        name = name or "Debian GNU/Linux"
        # testing/unstable say "trixie/sid": shown as the version when nothing numeric is known.
        version = _more_precise(version, debian) or debian.splitlines()[0]
    return ident, name, version, like


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
    release_files: dict[str, str] = {}
    for name in RELEASE_FILES:
        text = read_in_root(paths, name)
        if text is None and name == "/etc/os-release":
            text = read_in_root(paths, OS_RELEASE_FALLBACK)
        if text is not None:
            release_files[name] = text
    system_release = read_in_root(paths, "/etc/system-release")
    distro_id, distro_name, version, like = identify(release_files, system_release)

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
        distro_id=distro_id,
        distro_name=distro_name,
        version=version,
        like=like,
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
    read_registry: Callable[[str, str], RegistryValue | None] | None = None,
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
    ubr = _as_int(read_registry(NT_CURRENT_VERSION, "UBR"))  # a REG_DWORD
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
        ubr=ubr,
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


def _as_int(value: RegistryValue | None) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and is_number(value):
        return int(value)
    return 0
