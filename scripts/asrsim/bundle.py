"""Build simulated Mobility Service bundles (Microsoft-ASR_UA_<ver>_<TAG>_GA_<date>_release.tar.gz).

The archive mirrors the real Linux bundle's top level (no leading directory): ``install``,
``OS_details.sh``, ``uninstall.sh`` and the payload tree ``Vx/`` (bin, etc, lib, scripts).  The
tools inside are the stdlib-only simulators under ``scripts/asrsim/payload``; see
docs/SIMULATORS.md.  Output is deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import io
import os
import random
import re
import tarfile
from pathlib import Path

PAYLOAD_DIR = Path(__file__).resolve().parent / "payload"
DEFAULT_DATE = "20Sep2025"
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
TAG_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9.]+)*-64$")
DATE_RE = re.compile(r"^(\d{2})([A-Z][a-z]{2})(\d{4})$")
MONTHS = {name: index for index, name in enumerate(calendar.month_abbr) if name}
PAD_CHUNK = 1 << 20


def parse_date(date: str) -> dt.date:
    """'20Sep2025' -> date(2025, 9, 20) (locale independent)."""
    match = DATE_RE.match(date)
    if not match or match.group(2) not in MONTHS:
        raise ValueError(f"bad bundle date {date!r}: expected DDMonYYYY, e.g. 20Sep2025")
    return dt.date(int(match.group(3)), MONTHS[match.group(2)], int(match.group(1)))


def bundle_name(version: str, tag: str, date: str = DEFAULT_DATE) -> str:
    return f"Microsoft-ASR_UA_{version}_{tag}_GA_{date}_release.tar.gz"


def build_tag(version: str, date: str = DEFAULT_DATE) -> str:
    """RELEASE_<ver>_GA_<build>_<Mon>_<DD>_<YYYY>_INMAGE; the build number is the 5th '_' field."""
    day = parse_date(date)
    build = version.split(".")[2]
    return f"RELEASE_{version}_GA_{build}_{calendar.month_abbr[day.month]}_{day.day:02d}_{day.year}_INMAGE"


def _validate(version: str, tag: str, date: str) -> None:
    if not VERSION_RE.match(version):
        raise ValueError(f"bad version {version!r}: expected major.minor.build.revision, e.g. 9.66.7567.1")
    if not TAG_RE.match(tag):
        raise ValueError(f"bad OS tag {tag!r}: expected a Linux bundle tag such as UBUNTU-22.04-64 or RHEL8-64")
    parse_date(date)


def _payload_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(PAYLOAD_DIR.rglob("*")):
        rel = path.relative_to(PAYLOAD_DIR).as_posix()
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        files[rel] = path.read_bytes()
    return files


class _Filler(io.RawIOBase):
    """Deterministic incompressible bytes, produced chunk by chunk (no big buffer in memory)."""

    def __init__(self, size: int, seed: str) -> None:
        self._left = size
        self._rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        n = min(n, self._left, PAD_CHUNK)
        self._left -= n
        return self._rng.randbytes(n) if n else b""


def build_bundle(
    version: str,
    tag: str,
    out_dir: str | os.PathLike[str],
    date: str = DEFAULT_DATE,
    pad_mb: int = 0,
    name_version: str | None = None,
) -> Path:
    """Write the bundle into *out_dir* and return its path.

    *name_version* puts another version in the file name only (real bundles are sometimes named
    9.65.0.0 while .vx_version/BUILD_TAG carry the real build).
    """
    _validate(version, tag, date)
    if name_version is not None and not VERSION_RE.match(name_version):
        raise ValueError(f"bad name version {name_version!r}")
    if pad_mb < 0:
        raise ValueError("pad_mb must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = bundle_name(name_version or version, tag, date)
    major, minor = version.split(".")[:2]

    files = _payload_files()
    files["Vx/scripts/vCon/OS_details.sh"] = files["OS_details.sh"]
    build_keys = {
        "VERSION": version,
        "PROD_VERSION": f"{major}.{minor}",
        "PARTNER": "InMage",
        "BUILD_TAG": build_tag(version, date),
        "OS_BUILT_FOR": tag,
        "CONFIG": "release",
        "TAR_FILE_NAME": name,
    }
    files["Vx/etc/build.vx_version"] = "".join(f"{k}={v}\n" for k, v in build_keys.items()).encode()

    entries: dict[str, bytes | None] = {}
    for rel, data in files.items():
        parts = rel.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), None)
        entries[rel] = data
    pad_path = "Vx/lib/padding.bin"
    if pad_mb:
        entries[pad_path] = None  # placeholder, streamed below

    day = parse_date(date)
    mtime = calendar.timegm((day.year, day.month, day.day, 0, 0, 0))
    tmp = out / f".{name}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=mtime, compresslevel=1 if pad_mb else 6
            ) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                    for rel in sorted(entries):
                        info = tarfile.TarInfo(rel)
                        info.mtime = mtime
                        info.uid = info.gid = 0
                        info.uname = info.gname = "root"
                        if rel == pad_path and pad_mb:
                            info.size = pad_mb * PAD_CHUNK
                            info.mode = 0o644
                            tar.addfile(info, _Filler(info.size, f"{version}/{tag}/{date}"))
                            continue
                        data = entries[rel]
                        if data is None:
                            info.type = tarfile.DIRTYPE
                            info.mode = 0o755
                            tar.addfile(info)
                        else:
                            info.size = len(data)
                            info.mode = 0o755 if data.startswith(b"#!") else 0o644
                            tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, out / name)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out / name
