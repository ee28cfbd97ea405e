"""Archive builders for the bundle tests: ordinary bundles, hostile ones, and damaged files.

Everything is built in memory with tarfile and gzip/lzma (or by hand, for headers tarfile would not write) and
written where the test says, under its tmp_path. Every bundle can come in each format Microsoft ships or asrctl
accepts (:data:`FORMATS`): gzip, LZMA-alone (``tar --lzma`` through ``lzma``), xz, and plain tar — always named
``.tar.gz``, as Microsoft names them all.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

TAG = "UBUNTU-22.04-64"
NAME = f"Microsoft-ASR_UA_9.66.7567.1_{TAG}_GA_20Sep2025_release.tar.gz"
MTIME = 1_758_326_400  # 20 Sep 2025


@dataclass
class M:
    """One member: ``kind`` is file | dir | symlink | hardlink | fifo | chr | blk | raw (``data`` is the
    ready-made header+data blocks)."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None
    link: str = ""
    uid: int = 0
    gid: int = 0


def _info(m: M) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(m.name)
    ti.mtime = MTIME
    ti.uid, ti.gid = m.uid, m.gid
    ti.uname = ti.gname = "root"
    kinds = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chr": tarfile.CHRTYPE,
        "blk": tarfile.BLKTYPE,
    }
    ti.type = kinds[m.kind]
    ti.mode = m.mode if m.mode is not None else (0o755 if m.kind == "dir" else 0o644)
    ti.linkname = m.link
    ti.size = len(m.data) if m.kind == "file" else 0
    return ti


def tar_bytes(members: list[M], fmt: int = tarfile.GNU_FORMAT, end: bool = True) -> bytes:
    """An uncompressed tar of ``members`` (with the two zero blocks at the end unless ``end`` is false)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            if m.kind == "raw":
                tf.fileobj.write(m.data)
                tf.offset += len(m.data)
                continue
            tf.addfile(_info(m), io.BytesIO(m.data) if m.kind == "file" else None)
    data = buf.getvalue()
    if not end:
        data = data.rstrip(b"\0")
        data += b"\0" * (-len(data) % 512)
    return data


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def lzma_alone(data: bytes, preset: int = 6) -> bytes:
    """What ``lzma`` writes from a pipe, as ``tar --lzma`` runs it (properties 5d, an 8 MiB dictionary at preset 6,
    the uncompressed size unknown (all ff), an end-of-stream marker)."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE, preset=preset)


def xz(data: bytes, preset: int = 6) -> bytes:
    """What ``tar -cJf`` writes (one stream, CRC64)."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)


FORMATS = ("gzip", "lzma", "xz", "tar")
_COMPRESS = {"gzip": gz, "lzma": lzma_alone, "xz": xz, "tar": lambda data: data}


def compress(data: bytes, compression: str = "gzip") -> bytes:
    """``data`` (a tar) packed as a bundle of ``compression``: one of :data:`FORMATS`."""
    return _COMPRESS[compression](data)


def write_bundle(
    directory: Path,
    members: list[M],
    name: str = NAME,
    fmt: int = tarfile.GNU_FORMAT,
    compression: str = "gzip",
) -> Path:
    """A bundle named like Microsoft's (``.tar.gz`` whatever ``compression`` is), in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(compress(tar_bytes(members, fmt), compression))
    return path


def write_raw(directory: Path, data: bytes, name: str = NAME) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


def ordinary_members() -> list[M]:
    """A tiny bundle shaped like the real one: scripts at the top, a Vx/ tree, a library symlink."""
    return [
        M("install", data=b"#!/bin/bash\necho install\n", mode=0o755),
        M("OS_details.sh", data=b"#!/bin/bash\necho UBUNTU-22.04-64\n", mode=0o755),
        M("uninstall.sh", data=b"#!/bin/bash\nexit 0\n", mode=0o755),
        M("Vx", "dir"),
        M("Vx/bin", "dir"),
        M("Vx/bin/start", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
        M("Vx/etc", "dir", mode=0o750),
        M("Vx/etc/drscout.conf", data=b"[vxagent]\nHostId=\n", mode=0o640),
        M("Vx/lib/libasr.so.1", data=b"\x7fELF" + bytes(2000), mode=0o644),
        M("Vx/lib/libasr.so", "symlink", link="libasr.so.1"),
        M("Vx/bin/libasr.so", "symlink", link="../lib/libasr.so.1"),
        M("Vx/lib/libasr-hard.so", "hardlink", link="Vx/lib/libasr.so.1"),
        M("Vx/scripts/empty.txt", data=b""),
    ]


def header(name: str, *, typeflag: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0) -> bytes:
    """A hand-made ustar header with any typeflag and any mode bits (tarfile masks the mode to 07777)."""
    ti = tarfile.TarInfo(name)
    ti.type = typeflag
    ti.size = size
    ti.mtime = MTIME
    block = bytearray(ti.tobuf(format=tarfile.USTAR_FORMAT))
    block[100:108] = b"%07o\0" % mode
    block[148:156] = b" " * 8
    chksum = sum(block[:512])
    block[148:156] = b"%06o\0 " % chksum
    return bytes(block[:512])


def raw_member(name: str, *, typeflag: bytes = tarfile.REGTYPE, mode: int = 0o644, data: bytes = b"") -> M:
    blocks = header(name, typeflag=typeflag, mode=mode, size=len(data)) + data + b"\0" * (-len(data) % 512)
    return M(name, "raw", data=blocks)


def pax_member(records: dict[str, str], inner: M) -> list[M]:
    """``inner`` preceded by a pax extended header with ``records`` (e.g. a path the ustar name cannot hold)."""
    body = b""
    for key, value in records.items():
        rec = f" {key}={value}\n".encode("utf-8", "surrogateescape")
        n = len(rec)
        while len(str(n).encode()) + len(rec) != n:
            n = len(str(n).encode()) + len(rec)
        body += str(n).encode() + rec
    return [raw_member("././@PaxHeader", typeflag=tarfile.XHDTYPE, data=body), inner]


# --- damaged files ------------------------------------------------------------------------------------------


def flip_crc(data: bytes) -> bytes:
    """The same gzip stream with one bit of its CRC32 trailer flipped."""
    out = bytearray(data)
    out[-8] ^= 0x01
    return bytes(out)


def truncate(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def random_gzip(size: int = 4096) -> bytes:
    """gzip around bytes that are not a tar archive."""
    return gz(os.urandom(size))


def not_a_tar(compression: str, size: int = 4096) -> bytes:
    """A well-formed stream of ``compression`` around bytes that are not a tar archive."""
    return compress(os.urandom(size), compression)
