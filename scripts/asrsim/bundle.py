"""Build simulated Mobility Service bundles, laid out as Microsoft builds the real ones.

``Microsoft-ASR_UA_<ver>_<TAG>_GA_<date>_release.tar.gz`` holds, flat (no leading directory, no subdirectory; the
member list and order of Microsoft's UA bundle makefile, index 12130928631):

- the payload: ``InMage_VX_<ver>_<TAG>.tar`` (Ubuntu and Debian: an uncompressed tar whose top directories are
  ``bin etc scripts transport``, laid into ``<install dir>/Vx``) or, for the RPM families (RHEL, OL, SLES), an
  *RPM-shaped* ``InMageVx-<ver>-1.x86_64.rpm`` (see :func:`rpm_shaped`);
- ``install``, ``uninstall.sh``, ``install_vx``, ``teleAPIs.sh``, ``jq``, ``conf_file``, ``ApplyCustomChanges.sh``,
  ``.vx_version``, ``OS_details.sh``, ``Third-Party_Notices.txt``, ``csgetfingerprint``, ``gencert``,
  ``genpassphrase``, ``prereq_check_install.sh``, ``prereq_check_installer.json``, ``libcommon.sh``,
  ``supported_kernels``, ``inm_list_part``, ``spv.json``, ``AgentUpgrade.sh``.

Microsoft compresses per tag (``TAR_OPT``; whatever the name says, it ends in ``.tar.gz``): DEBIAN7-11 and the RPM
families gzip, every other tag (Ubuntu, DEBIAN12) ``tar --lzma``, i.e. LZMA-alone — :func:`default_compression`.
``compression`` chooses; the default is Microsoft's choice. The tools inside are the stdlib-only simulators under ``scripts/asrsim/payload`` (``bundle/`` the top
level, ``Vx/`` the payload); see docs/SIMULATORS.md. Output is deterministic: same arguments, same bytes (the
default ``supported_kernels`` includes the kernel of the machine that builds it, see :func:`kernel_lines`).
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import gzip
import io
import json
import lzma
import os
import random
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

from asrsim.host import sandbox_kernel

PAYLOAD_DIR = Path(__file__).resolve().parent / "payload"
TOP_DIR = PAYLOAD_DIR / "bundle"
VX_DIR = PAYLOAD_DIR / "Vx"
DEFAULT_DATE = "20Sep2025"
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
TAG_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9.]+)*-64$")
DATE_RE = re.compile(r"^(\d{2})([A-Z][a-z]{2})(\d{4})$")
MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
PAD_CHUNK = 1 << 20
PAD_MEMBER = "bin/padding.bin"  # benchmark filler inside the payload; the installers skip it
COMPRESSIONS = ("gzip", "lzma", "xz", "tar")
COMPANY = "InMage"  # $(COMPANY): not resolved in the index; the /usr/local/InMage paths point to it
RPM_PACKAGE = "InMageVx"
RPM_ARCH = "x86_64"
RPM_META = ".asrsim-rpm.json"
# TAR_OPT's explicit gzip list for NON_RPM builds; every other NON_RPM tag is packed with tar --lzma.
GZIP_NON_RPM = ("DEBIAN7-64", "DEBIAN8-64", "DEBIAN9-64", "DEBIAN10-64", "DEBIAN11-64")
# Microsoft's member order (the UA makefile); the payload comes first.
TOP_MEMBERS = (
    "install",
    "uninstall.sh",
    "install_vx",
    "teleAPIs.sh",
    "jq",
    "conf_file",
    "ApplyCustomChanges.sh",
    ".vx_version",
    "OS_details.sh",
    "Third-Party_Notices.txt",
    "csgetfingerprint",
    "gencert",
    "genpassphrase",
    "prereq_check_install.sh",
    "prereq_check_installer.json",
    "libcommon.sh",
    "supported_kernels",
    "inm_list_part",
    "spv.json",
    "AgentUpgrade.sh",
)
# Top-level tools that the Vx package also carries in bin/ (its COMMON_LIST, index 12015563372).
ALSO_IN_VX_BIN = ("libcommon.sh", "teleAPIs.sh", "jq", "csgetfingerprint", "gencert", "genpassphrase", "inm_list_part")
# A few real lines of Microsoft's lists (Azure/Azure-SiteRecovery 5fcd149, MobilityAgent/OnPremiseToAzure/
# SupportedKernels/9.66.7643.1/<TAG>_supported_kernels.txt); the RHEL and OL lists are empty (rule-based).
REAL_KERNELS: Mapping[str, tuple[str, ...]] = {
    "UBUNTU-22.04-64": ("5.15.0-1090-azure", "5.15.0-25-generic", "6.8.0-87-generic"),
    "DEBIAN12-64": ("6.1.0-35-amd64", "6.1.0-35-cloud-amd64", "6.1.0-41-amd64"),
    "SLES15-64": ("6.4.0-150700.53.22-default:7",),
}


def parse_date(date: str) -> dt.date:
    """'20Sep2025' -> date(2025, 9, 20) (locale independent)."""
    match = DATE_RE.match(date)
    if not match or match.group(2) not in MONTHS:
        raise ValueError(f"bad bundle date {date!r}: expected DDMonYYYY, e.g. 20Sep2025")
    return dt.date(int(match.group(3)), MONTHS[match.group(2)], int(match.group(1)))


def bundle_name(version: str, tag: str, date: str = DEFAULT_DATE) -> str:
    return f"Microsoft-ASR_UA_{version}_{tag}_GA_{date}_release.tar.gz"


def build_tag(version: str, date: str = DEFAULT_DATE, build: str | None = None) -> str:
    """RELEASE_<ver>_GA_<build>_<Mon>_<DD>_<YYYY>_INMAGE; the build number is the 5th '_' field of the line.
    Microsoft's real VERSION is x.y.0.0-like and the build number lives only here; by default the simulator
    takes it from the version's third field."""
    day = parse_date(date)
    number = build or version.split(".")[2]
    return f"RELEASE_{version}_GA_{number}_{calendar.month_abbr[day.month]}_{day.day:02d}_{day.year}_INMAGE"


def is_rpm_tag(tag: str) -> bool:
    """RHEL, OL and SLES are RPM builds; Ubuntu and Debian NON_RPM (the Vx makefile's branches)."""
    return tag.startswith(("RHEL", "OL", "SLES"))


def default_compression(tag: str) -> str:
    if is_rpm_tag(tag) or tag in GZIP_NON_RPM:
        return "gzip"
    return "lzma"


def payload_name(version: str, tag: str) -> str:
    if is_rpm_tag(tag):
        return f"{RPM_PACKAGE}-{version}-1.{RPM_ARCH}.rpm"
    return f"{COMPANY}_VX_{version}_{tag}.tar"


def kernel_lines(tag: str, kernels: Iterable[str] | None = None) -> list[str]:
    """The lines of ``supported_kernels``. By default a few real lines of Microsoft's list for the tag plus the
    kernel a sandbox on this machine runs (ASRCTL_KERNEL, else this machine's): so a sandbox that does not pretend
    another kernel passes the kernel check, and one that does (ASRCTL_KERNEL=…) is refused. RHEL and OL lists
    stay empty, as Microsoft's are (their support is rule-based). SLES lines are ``kver:SP``."""
    if kernels is not None:
        return list(kernels)
    if tag.startswith(("RHEL", "OL")):
        return []
    own = sandbox_kernel()
    lines = list(REAL_KERNELS.get(tag, ()))
    lines.append(f"{own}:0" if tag.startswith("SLES") else own)
    return lines


def vx_version_keys(version: str, tag: str, date: str, build: str | None = None) -> dict[str, str]:
    """The bundle's own .vx_version, keys in the Vx makefile's order; RUNTIME_* are filled in at install."""
    major, minor = version.split(".")[:2]
    keys = {
        "VERSION": version,
        "PROD_VERSION": f"{major}.{minor}",
        "PARTNER": COMPANY,
        "INSTALLATION_DIR": "RUNTIME_INSTALL_PATH",
    }
    if is_rpm_tag(tag):
        keys["RPM_PACKAGE"] = RPM_PACKAGE
        keys["RPM_NAME"] = payload_name(version, tag)
    keys.update(
        {
            "AGENT_MODE": "RUNTIME_AGENT_MODE",
            "VERSION_FILE_PARENT_DIR": "/usr/local",
            "DEFAULT_UPGRADE_DIR": "/usr/local/ASR",
            "BUILD_TAG": build_tag(version, date, build),
            "OS_BUILT_FOR": tag,
            "CONFIG": "release",
        }
    )
    if not is_rpm_tag(tag):
        keys["TAR_FILE_NAME"] = payload_name(version, tag)
    return keys


def _validate(version: str, tag: str, date: str) -> None:
    if not VERSION_RE.match(version):
        raise ValueError(f"bad version {version!r}: expected major.minor.build.revision, e.g. 9.66.7567.1")
    if not TAG_RE.match(tag):
        raise ValueError(f"bad OS tag {tag!r}: expected a Linux bundle tag such as UBUNTU-22.04-64 or RHEL8-64")
    parse_date(date)


def _files_under(base: Path) -> dict[str, bytes]:
    return {
        path.relative_to(base).as_posix(): path.read_bytes()
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _vx_files(tag: str, version: str) -> dict[str, bytes]:
    """The Vx package tree (bin etc scripts transport), as the payload carries it; the simulator's own runtime in
    scripts/asrsim knows which bundle version it came from (ASR_SIM_KNOB_VERSION)."""
    top = _files_under(TOP_DIR)
    files = _files_under(VX_DIR)
    files["scripts/asrsim/VERSION"] = f"{version}\n".encode()
    for name in ALSO_IN_VX_BIN:
        files[f"bin/{name}"] = top[name]
    files["scripts/vCon/OS_details.sh"] = top["OS_details.sh"]
    files["bin/drivers/involflt.ko"] = b"\x7fELF simulated involflt driver for " + tag.encode() + b"\n"
    return dict(sorted(files.items()))


class _Filler(io.RawIOBase):
    """Deterministic incompressible bytes, produced chunk by chunk (no big buffer in memory)."""

    def __init__(self, size: int, seed: str) -> None:
        self._left = size
        self._rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        n = min(n, self._left, PAD_CHUNK)
        self._left -= n
        return self._rng.randbytes(n) if n else b""


def _info(name: str, mtime: int, size: int = 0, data: bytes | None = None, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o755 if data is not None and data.startswith(b"#!") else 0o644
    return info


def _write_tree(tar: tarfile.TarFile, files: Mapping[str, bytes], mtime: int) -> None:
    """Files with their parent directories before them (a directory entry once, in sorted order)."""
    dirs: set[str] = set()
    for rel in sorted(files):
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in dirs:
                dirs.add(parent)
                tar.addfile(_info(parent, mtime, directory=True))
        data = files[rel]
        tar.addfile(_info(rel, mtime, len(data), data), io.BytesIO(data))


def rpm_shaped(out: IO[bytes], version: str, files: Mapping[str, bytes], mtime: int, pad: tuple[int, str]) -> None:
    """An RPM-shaped payload: **not** a real RPM (building one needs rpmbuild), but a file the simulated ``rpm``
    (scripts/asrsim/pkgtools) installs and records in its database, so ``rpm -q InMageVx`` answers and
    ``rpm -e InMageVx`` removes exactly its files. It is an uncompressed tar whose first member, ``.asrsim-rpm.json``,
    holds the header (name, version, release, arch, the default prefix, the config files kept on upgrade) and whose
    other members are the package's files relative to the prefix (the Vx dir)."""
    header = {
        "name": RPM_PACKAGE,
        "version": version,
        "release": "1",
        "arch": RPM_ARCH,
        "prefix": "/usr/local/ASR/Vx",
        "config": ["etc/drscout.conf", "etc/RCMInfo.conf"],
    }
    raw = (json.dumps(header, indent=2, sort_keys=True) + "\n").encode()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info(RPM_META, mtime, len(raw)), io.BytesIO(raw))
        _write_tree(tar, files, mtime)
        _pad(tar, mtime, *pad)


def _payload_tar(out: IO[bytes], files: Mapping[str, bytes], mtime: int, pad: tuple[int, str]) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _write_tree(tar, files, mtime)
        _pad(tar, mtime, *pad)


def _pad(tar: tarfile.TarFile, mtime: int, size: int, seed: str) -> None:
    if size:
        tar.addfile(_info(PAD_MEMBER, mtime, size), _Filler(size, seed))


def _compressed(
    raw: IO[bytes], compression: str, mtime: int, fast: bool
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """The stream the bundle's tar is written into: *raw*, through the compressor *compression* names (gzip with no
    file name and a fixed mtime, LZMA-alone as ``tar --lzma`` writes, xz, or none)."""
    if compression == "gzip":
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=1 if fast else 6)
    if compression in ("lzma", "xz"):
        fmt = lzma.FORMAT_ALONE if compression == "lzma" else lzma.FORMAT_XZ
        check = -1 if compression == "lzma" else lzma.CHECK_CRC64
        return lzma.LZMAFile(raw, "wb", format=fmt, check=check, preset=1 if fast else 6)
    return contextlib.nullcontext(raw)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def build_bundle(
    version: str,
    tag: str,
    out_dir: str | os.PathLike[str],
    date: str = DEFAULT_DATE,
    pad_mb: int = 0,
    name_version: str | None = None,
    compression: str | None = None,
    supported_kernels: Iterable[str] | str | None = None,
    vx_version: Mapping[str, str | None] | None = None,
    omit: Iterable[str] = (),
    build: str | None = None,
) -> Path:
    """Write the bundle into *out_dir* and return its path.

    - *name_version* puts another version in the file name only (a bundle named 9.66.0.0 for an inner 9.66.x);
    - *compression*: one of :data:`COMPRESSIONS`; None = Microsoft's choice for the tag (:func:`default_compression`);
    - *supported_kernels*: the list's lines (or, as a string, the file's exact text: no final newline, CRLF …);
      None = :func:`kernel_lines`;
    - *vx_version*: keys to change in the bundle's ``.vx_version`` (None removes one), e.g. a mislabelled
      ``OS_BUILT_FOR``; *omit*: top-level members to leave out (e.g. ``.vx_version``);
    - *build*: the build number in BUILD_TAG (default: the version's third field).
    """
    _validate(version, tag, date)
    if name_version is not None and not VERSION_RE.match(name_version):
        raise ValueError(f"bad name version {name_version!r}")
    if pad_mb < 0:
        raise ValueError("pad_mb must be >= 0")
    compression = compression or default_compression(tag)  # as Microsoft packs it: Ubuntu and DEBIAN12 LZMA
    if compression not in COMPRESSIONS:
        raise ValueError(f"bad compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = bundle_name(name_version or version, tag, date)
    day = parse_date(date)
    mtime = calendar.timegm((day.year, day.month, day.day, 0, 0, 0))

    top = _files_under(TOP_DIR)
    keys: dict[str, str] = vx_version_keys(version, tag, date, build)
    for key, value in (vx_version or {}).items():
        if value is None:
            keys.pop(key, None)
        else:
            keys[key] = value
    top[".vx_version"] = "".join(f"{k}={v}\n" for k, v in keys.items()).encode()
    if isinstance(supported_kernels, str):
        top["supported_kernels"] = supported_kernels.encode()
    else:
        top["supported_kernels"] = "".join(f"{line}\n" for line in kernel_lines(tag, supported_kernels)).encode()
    missing = set(TOP_MEMBERS) - set(top)
    assert not missing, f"payload/bundle lacks {missing}"
    skip = set(omit)
    payload = payload_name(version, tag)
    pad = (pad_mb * PAD_CHUNK, f"{version}/{tag}/{date}")

    tmp = out / f".{name}.tmp.{os.getpid()}"
    with _temporary(out / f".{payload}.tmp.{os.getpid()}") as inner, _temporary(tmp):
        with open(inner, "wb") as fh:
            if is_rpm_tag(tag):
                rpm_shaped(fh, version, _vx_files(tag, version), mtime, pad)
            else:
                _payload_tar(fh, _vx_files(tag, version), mtime, pad)
        with open(tmp, "wb") as raw, _compressed(raw, compression, mtime, fast=bool(pad_mb)) as stream:
            with tarfile.open(fileobj=stream, mode="w", format=tarfile.GNU_FORMAT) as tar:
                if payload not in skip:
                    with open(inner, "rb") as payload_fh:
                        tar.addfile(_info(payload, mtime, inner.stat().st_size), payload_fh)
                for member in TOP_MEMBERS:
                    if member not in skip:
                        data = top[member]
                        tar.addfile(_info(member, mtime, len(data), data), io.BytesIO(data))
        os.replace(tmp, out / name)
    return out / name
