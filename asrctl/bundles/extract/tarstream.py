"""The tar stream parser: bytes in, checked file-system operations (or a refusal) out. The security core.

It touches no disk and starts no thread, so every rule below is tested by feeding it bytes
(tests/unit/test_extract_parser.py). Each member is checked completely *before* the operation that creates it is
emitted, and the parser keeps the kind of every path it has emitted (directory, file, symlink, hardlink), so it
can refuse what only the history of the archive reveals:

- names that are absolute, contain ``..``, are empty, too long, or contain NUL (never rewritten: an archive that
  needs rewriting was not built by Microsoft's recipe);
- a second member with the name of an earlier one, ``./install`` vs ``install`` included (a later member could
  otherwise rewrite an earlier file, or a file through an earlier hardlink);
- symlinks whose target is absolute, has ``..`` after a name (``a/../..``: a later member could make ``a`` a
  link), or climbs above the bundle's top; each link is checked when it appears, so no chain of links leaves
  the tree;
- any member whose path goes through a symlink or a file of an earlier member;
- hardlinks to anything but an earlier regular file of the same bundle;
- devices, FIFOs, sparse files, socket mode bits, and any member type that is not a file, directory or link;
- more members, bytes or path length than :class:`~asrctl.bundles.extract.limits.Limits` allows, pax headers over
  1 MB, runs of extended headers, and piles of data after the end of the tar (a decompression bomb behind it).

Ustar, GNU (long names and links) and pax (local and global headers) are read; only the 512-byte header decoding
is borrowed from :mod:`tarfile` (``TarInfo.frombuf``: checksum, octal and base-256 numbers, the ustar prefix).
Modes are neutralised here too: setuid/setgid/sticky and group/world write go, the owner keeps read/write (and
search on directories). Owners are never taken from the archive.
"""

from __future__ import annotations

import contextlib
import re
import stat
import tarfile
from dataclasses import dataclass

from asrctl.bundles.extract.limits import Limits, corrupt, unsafe
from asrctl.errors import AsrctlError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
TRAILING_LIMIT = 16 << 20  # decompressed bytes tolerated after the tar end marker (record padding is < 1 MB)
EXT_HEADER_LIMIT = 1 << 20  # pax extended header size
EXT_RUN_LIMIT = 8  # extended headers in a row before a real member
NAME_MAX = 255

_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_LONG = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_EXTENDED = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.XGLTYPE, *_LONG)
_SPECIAL_TYPES = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_SPECIAL_MODES = {
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
}
_PAX_RECORD = re.compile(rb"(\d+) ")


# --- the operations it emits, in archive order ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MakeDir:
    rel: str


@dataclass(frozen=True, slots=True)
class WriteFile:
    """A whole file whose data is in one decompressed chunk (most files of a bundle): one operation."""

    rel: str
    mode: int
    mtime: float
    data: memoryview


@dataclass(frozen=True, slots=True)
class OpenFile:
    """A file whose data spans chunks: ``Write`` operations and a ``CloseFile`` follow."""

    rel: str
    mode: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Write:
    data: memoryview


@dataclass(frozen=True, slots=True)
class CloseFile:
    pass


@dataclass(frozen=True, slots=True)
class Symlink:
    rel: str
    target: str


@dataclass(frozen=True, slots=True)
class Hardlink:
    rel: str
    target: str  # the earlier regular file, as a clean relative path


Op = MakeDir | WriteFile | OpenFile | Write | CloseFile | Symlink | Hardlink
CLOSE = CloseFile()

# Parser states.
_HEADER, _DATA, _PAD, _END = range(4)
# Where DATA bytes go.
_SKIP, _TO_WRITER, _TO_EXT = range(3)
# What a path is in the tree being built.
_K_DIR, _K_IMPLICIT_DIR, _K_FILE, _K_SYMLINK, _K_HARDLINK = range(5)


class TarParser:
    """A streaming tar reader (ustar, GNU long names, pax) that turns members into operations, checking every
    member before anything is emitted for it. Feed it decompressed chunks of any size (``feed``), then call
    ``finish`` once the decompressor has ended cleanly."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.state = _HEADER
        self.carry = bytearray()
        self.offset = 0  # stream offset of the next byte fed
        self.remaining = 0
        self.pad = 0
        self.sink = _SKIP
        self.ext = bytearray()
        self.ext_kind = b""
        self.ext_run = 0
        self.pax_local: dict[bytes, bytes] = {}
        self.pax_global: dict[bytes, bytes] = {}
        self.long_name: str | None = None
        self.long_link: str | None = None
        self.current = ""
        self.kinds: dict[str, int] = {"": _K_DIR}
        self.dir_modes: dict[str, int] = {}  # applied last by the writer, deepest first
        self.members = 0
        self.total = 0  # bytes of regular files
        self.trailing = 0
        self.seen_header = False
        self.pad_for = 0
        self._last_parent = ""

    # -- the stream ------------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[Op]:
        """The operations for ``chunk``. ``Write``/``WriteFile`` data are views into ``chunk``: the caller must
        keep it unchanged until they are carried out."""
        ops: list[Op] = []
        mv = memoryview(chunk)
        n = len(chunk)
        pos = 0
        while pos < n:
            state = self.state
            if state == _DATA:
                take = min(self.remaining, n - pos)
                if self.sink == _TO_WRITER:
                    ops.append(Write(mv[pos : pos + take]))
                elif self.sink == _TO_EXT:
                    self.ext += mv[pos : pos + take]
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self._data_done(ops)
            elif state == _PAD:
                take = min(self.pad, n - pos)
                pos += take
                self.pad -= take
                if self.pad == 0:
                    self.state = _HEADER
            elif state == _HEADER:
                if self.carry or n - pos < BLOCK:
                    take = min(BLOCK - len(self.carry), n - pos)
                    self.carry += mv[pos : pos + take]
                    pos += take
                    if len(self.carry) < BLOCK:
                        break
                    block = bytes(self.carry)
                    self.carry.clear()
                    start = self.offset + pos - BLOCK
                else:
                    block = chunk[pos : pos + BLOCK]
                    start = self.offset + pos
                    pos += BLOCK
                pos = self._header(block, start, chunk, mv, pos, ops)
            else:  # _END: whatever follows the end marker is padding; a lot of it is a decompression bomb
                self.trailing += n - pos
                pos = n
                if self.trailing > TRAILING_LIMIT:
                    raise AsrctlError(
                        "ASRCTL-E032",
                        f"more than {TRAILING_LIMIT >> 20} MB of data after the end of the tar archive; "
                        "nothing was unpacked",
                    )
        self.offset += n
        return ops

    def finish(self) -> None:
        """The stream has ended: refuse it if it stopped inside a member or a header, or held no tar at all."""
        if self.state == _END:
            return
        if not self.seen_header:
            raise corrupt("not a tar archive (the bundle holds no tar data)")
        if self.state in (_DATA, _PAD) or self.carry:
            where = f"inside member {self.current!r}" if self.state != _HEADER else "inside a header"
            raise corrupt(f"truncated tar data: it ends {where}", member=self.current)
        if self.ext_run:
            raise corrupt("truncated tar data: it ends after an extended header")
        # No end marker at all: GNU tar and Python's tarfile accept that too.

    def _data_done(self, ops: list[Op]) -> None:
        if self.sink == _TO_WRITER:
            ops.append(CLOSE)
        elif self.sink == _TO_EXT:
            self._ext_done()
        self.sink = _SKIP
        self.pad = -self.pad_for % BLOCK
        self.state = _PAD if self.pad else _HEADER

    # -- headers ---------------------------------------------------------------------------------------------
    def _header(self, block: bytes, start: int, chunk: bytes, mv: memoryview, pos: int, ops: list[Op]) -> int:
        if block == ZERO_BLOCK:
            if not self.seen_header:
                raise corrupt("not a tar archive (it starts with an empty block)")
            if self.ext_run:
                raise corrupt("corrupted tar data: an extended header is followed by the end marker")
            self.state = _END
            self.trailing = len(chunk) - pos
            return len(chunk)
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            if not self.seen_header:
                raise corrupt("not a tar archive (the first header is invalid)") from None
            raise corrupt(f"corrupted tar header at byte {start} of the tar data", offset=start) from None
        self.seen_header = True
        kind = info.type
        size = info.size
        pax = {**self.pax_global, **self.pax_local} if (self.pax_local or self.pax_global) else None
        if pax is not None and b"size" in pax:
            size = _pax_int(pax[b"size"], "size")
        if size < 0 or info.size < 0:
            raise corrupt(f"corrupted tar header at byte {start}: negative size", offset=start)

        if kind in _EXTENDED:
            self.ext_run += 1
            if self.ext_run > EXT_RUN_LIMIT:
                raise corrupt(f"corrupted tar data: {self.ext_run} extended headers in a row at byte {start}")
            cap = self.limits.max_path_len + 1 if kind in _LONG else EXT_HEADER_LIMIT
            if info.size > cap:
                what = {tarfile.GNUTYPE_LONGNAME: "name", tarfile.GNUTYPE_LONGLINK: "link target"}
                raise unsafe(
                    info.name, f"a {what.get(kind, 'extended header')} of {info.size} bytes (the limit is {cap})"
                )
            self.ext_kind = kind
            self.ext.clear()
            return self._begin_data(info.size, _TO_EXT, pos)

        # A real member: resolve its name and link from the extended headers before it.
        name = info.name
        linkname = info.linkname
        if self.long_name is not None:
            name = self.long_name
        if self.long_link is not None:
            linkname = self.long_link
        mtime: float = info.mtime
        if pax is not None:
            for key in pax:
                if key.startswith(b"GNU.sparse."):
                    raise unsafe(name, "a sparse file (not supported in bundles)")
            if b"path" in pax:
                name = _pax_str(pax[b"path"])
            if b"linkpath" in pax:
                linkname = _pax_str(pax[b"linkpath"])
            if b"mtime" in pax:
                with contextlib.suppress(ValueError):
                    mtime = float(pax[b"mtime"])
        self.pax_local = {}
        self.long_name = self.long_link = None
        self.ext_run = 0
        self.current = name

        self.members += 1
        if self.members > self.limits.max_members:
            raise unsafe(name, f"more than {self.limits.max_members} members")
        if kind in _SPECIAL_TYPES:
            raise unsafe(name, f"{_SPECIAL_TYPES[kind]} (only files, directories and links are allowed)")
        special = _SPECIAL_MODES.get(stat.S_IFMT(info.mode))
        if special:
            raise unsafe(name, f"{special} (only files, directories and links are allowed)")
        if kind not in _REGULAR and kind not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
            raise unsafe(name, f"unsupported member type {kind!r} (only files, directories and links)")

        rel = self._check_name(name)
        mode = info.mode & 0o7777
        if kind == tarfile.DIRTYPE:
            if rel:
                self._dir(name, rel, ops)
                self.dir_modes[rel] = (mode & 0o755) | 0o700
            return self._begin_data(size, _SKIP, pos)
        if not rel:
            raise unsafe(name, "a file without a name")
        self._claim(name, rel, ops)
        if kind == tarfile.SYMTYPE:
            self._check_symlink(name, rel, linkname)
            self.kinds[rel] = _K_SYMLINK
            ops.append(Symlink(rel, linkname))
            return self._begin_data(size, _SKIP, pos)
        if kind == tarfile.LNKTYPE:
            target = self._check_hardlink(name, linkname)
            self.kinds[rel] = _K_HARDLINK
            ops.append(Hardlink(rel, target))
            return self._begin_data(size, _SKIP, pos)

        # A regular file.
        if size > self.limits.max_member_bytes:
            raise unsafe(name, f"{size} bytes, more than the limit of {self.limits.max_member_bytes} per member")
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise unsafe(name, f"the members add up to more than the limit of {self.limits.max_total_bytes} bytes")
        self.kinds[rel] = _K_FILE
        fmode = (mode & 0o755) | 0o600
        end = pos + size
        if end <= len(chunk):  # the whole file is in this chunk: one operation
            ops.append(WriteFile(rel, fmode, mtime, mv[pos:end]))
            self.pad_for = size
            pad = -size % BLOCK
            skip = min(pad, len(chunk) - end)
            self.pad = pad - skip
            self.state = _PAD if self.pad else _HEADER
            return end + skip
        ops.append(OpenFile(rel, fmode, mtime))
        return self._begin_data(size, _TO_WRITER, pos)

    def _begin_data(self, size: int, sink: int, pos: int) -> int:
        self.sink = sink
        self.pad_for = size
        if size:
            self.remaining = size
            self.state = _DATA
        else:
            if sink == _TO_WRITER:
                raise AssertionError("empty files are whole-file operations")
            if sink == _TO_EXT:
                self._ext_done()
            self.sink = _SKIP
            self.state = _HEADER
        return pos

    def _ext_done(self) -> None:
        data = bytes(self.ext)
        self.ext.clear()
        kind = self.ext_kind
        if kind == tarfile.GNUTYPE_LONGNAME:
            self.long_name = _pax_str(data.split(b"\0", 1)[0])
        elif kind == tarfile.GNUTYPE_LONGLINK:
            self.long_link = _pax_str(data.split(b"\0", 1)[0])
        else:
            records = _parse_pax(data)
            if kind == tarfile.XGLTYPE:
                for key, value in records.items():
                    if value:
                        self.pax_global[key] = value
                    else:
                        self.pax_global.pop(key, None)
            else:
                self.pax_local = records

    # -- checks ----------------------------------------------------------------------------------------------
    def _check_name(self, name: str) -> str:
        if "\0" in name:
            raise unsafe(name, "a NUL byte in the name")
        if len(name.encode("utf-8", "surrogateescape")) > self.limits.max_path_len:
            raise unsafe(name, f"a path longer than {self.limits.max_path_len} bytes")
        if name.startswith("/"):
            raise unsafe(name, "an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise unsafe(name, "'..' in the path")
        for part in parts:
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise unsafe(name, f"a path component longer than {NAME_MAX} bytes")
        return "/".join(parts)

    def _parents(self, name: str, rel: str, ops: list[Op]) -> None:
        """Every directory above ``rel`` must be a directory of this archive (created here if new), never a
        symlink or a file an earlier member made."""
        parent = rel.rpartition("/")[0]
        if parent == self._last_parent:
            return
        path = ""
        for part in parent.split("/"):
            path = f"{path}/{part}" if path else part
            kind = self.kinds.get(path)
            if kind is None:
                self.kinds[path] = _K_IMPLICIT_DIR
                self.dir_modes.setdefault(path, 0o755)
                ops.append(MakeDir(path))
            elif kind == _K_SYMLINK:
                raise unsafe(name, f"its path goes through the symlink {path!r} of an earlier member")
            elif kind not in (_K_DIR, _K_IMPLICIT_DIR):
                raise unsafe(name, f"its path goes through the file {path!r} of an earlier member")
        self._last_parent = parent

    def _claim(self, name: str, rel: str, ops: list[Op]) -> None:
        if rel in self.kinds:
            raise unsafe(name, "a second member with the same name")
        self._parents(name, rel, ops)

    def _dir(self, name: str, rel: str, ops: list[Op]) -> None:
        kind = self.kinds.get(rel)
        if kind == _K_IMPLICIT_DIR:  # an entry for a directory that earlier members already needed
            self.kinds[rel] = _K_DIR
            return
        if kind is not None:
            raise unsafe(name, "a second member with the same name")
        self._parents(name, rel, ops)
        self.kinds[rel] = _K_DIR
        ops.append(MakeDir(rel))

    def _check_symlink(self, name: str, rel: str, target: str) -> None:
        if not target:
            raise unsafe(name, "a symlink without a target")
        if "\0" in target or len(target.encode("utf-8", "surrogateescape")) > self.limits.max_path_len:
            raise unsafe(name, "a symlink target that is too long or has a NUL byte")
        if target.startswith("/"):
            raise unsafe(name, f"a symlink to the absolute path {target!r}")
        parts = [p for p in target.split("/") if p not in ("", ".")]
        ups = 0
        while ups < len(parts) and parts[ups] == "..":
            ups += 1
        if ".." in parts[ups:]:
            raise unsafe(name, f"a symlink to {target!r}, with '..' after a name")
        # Leading '..' climb real directories of this archive (no member's path goes through a symlink), so
        # counting them is exact; every later name is either a real directory or another symlink that was
        # checked the same way, so a chain of links cannot leave the tree either.
        if ups > rel.count("/"):
            raise unsafe(name, f"a symlink to {target!r}, outside the bundle")

    def _check_hardlink(self, name: str, target: str) -> str:
        if not target:
            raise unsafe(name, "a hardlink without a target")
        if target.startswith("/"):
            raise unsafe(name, f"a hardlink to the absolute path {target!r}")
        parts = [p for p in target.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise unsafe(name, f"a hardlink to {target!r}, outside the bundle")
        rel = "/".join(parts)
        if self.kinds.get(rel) not in (_K_FILE, _K_HARDLINK):
            raise unsafe(name, f"a hardlink to {target!r}, which is not an earlier file of the bundle")
        return rel


def _pax_str(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _pax_int(value: bytes, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise corrupt(f"corrupted tar data: pax {key} {value[:40]!r} is not a number") from None


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        m = _PAX_RECORD.match(data, pos)
        if m is None:
            if not data[pos:].strip(b"\0"):
                break
            raise corrupt("corrupted tar data: a malformed pax extended header")
        length = int(m.group(1))
        end = pos + length
        if length < 5 or end > len(data) or data[end - 1 : end] != b"\n":
            raise corrupt("corrupted tar data: a malformed pax extended header")
        key, eq, value = data[m.end() : end - 1].partition(b"=")
        if not eq:
            raise corrupt("corrupted tar data: a malformed pax extended header")
        records[key] = value
        pos = end
    return records
