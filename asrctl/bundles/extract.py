"""Safe, streaming, verified unpacking of a ``.tar.gz`` bundle.

One pass over the file: each chunk read is handed to a hashing thread and to the gzip decompressor; the
decompressed tar stream is parsed here and turned into file-system operations that writer threads carry out
(split by directory, each directory's operations in archive order; see :class:`_Router`). Memory stays
constant (bounded queues of bounded chunks) whatever the bundle size. Everything lands in a fresh private
staging directory (0700) beside ``dest``; only when the stream has ended cleanly, the gzip CRC held and the
SHA-256 of the file matches is the staging directory renamed to ``dest``. Any failure, Ctrl-C included,
removes the staging directory.

What the unpacker refuses (``ASRCTL-E032``, naming the member), because a bundle runs as root:

- names that are absolute, contain ``..``, are empty, too long, or contain NUL;
- a second member with the name of an earlier one (a later member could otherwise rewrite an earlier file, or
  a file reached through an earlier hardlink);
- symlinks whose target is absolute, has ``..`` after a name (``a/../..``), or climbs above the bundle's top;
  a symlink whose target is another symlink is checked the same way, so no chain of links leaves the tree;
- any member whose path goes through a symlink (or a file) created by an earlier member; the writer also opens
  every directory component with ``O_NOFOLLOW`` and creates files with ``O_EXCL|O_NOFOLLOW``, so the kernel
  refuses what the bookkeeping would have missed;
- hardlinks to anything but an earlier regular file of the same bundle;
- devices, FIFOs, sockets, sparse files and any member type that is not a file, directory or link;
- more members, bytes, or path length than :class:`Limits` allows, and piles of data after the end of the tar.

Modes: group/world write, setuid, setgid and sticky bits are cleared; the owner always keeps read/write (and
search on directories); executable bits survive. Ownership is never taken from the archive: files belong to
whoever runs asrctl. Modification times of files are kept.

A damaged file (empty, not gzip, truncated, bad CRC, not a tar) is ``ASRCTL-E033``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import queue
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asrctl.bundles.digest import mismatch_error, normalize_hex
from asrctl.errors import AsrctlError
from asrctl.system.signals import shielded

if TYPE_CHECKING:
    from asrctl.output import Output

LOG = logging.getLogger("asrctl.extract")

READ_SIZE = 256 << 10  # compressed bytes per read (and per hashing item)
INFLATE_SIZE = 1 << 20  # most decompressed bytes per decompress() call: a gzip bomb cannot grow memory
HASH_QUEUE = 16  # items in flight to the hashing thread (16 x 256 KB)
WRITE_QUEUE = 6  # batches in flight to each writer thread (each refers to at most one 1 MB chunk)
WRITERS = 2  # writer threads
DIR_FD_CACHE = 64
TRAILING_LIMIT = 16 << 20  # decompressed bytes tolerated after the tar end marker (record padding is < 1 MB)
EXT_HEADER_LIMIT = 1 << 20  # pax extended header size
EXT_RUN_LIMIT = 8  # extended headers in a row before a real member
NAME_MAX = 255

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
GZIP_MAGIC = b"\x1f\x8b"

_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_PAX = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
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


@dataclass(frozen=True)
class Limits:
    """Ceilings that a hostile archive hits long before the disk fills; real bundles are far below them
    (a Mobility Service bundle has a few hundred members and under 1 GB unpacked)."""

    max_members: int = 50_000
    max_total_bytes: int = 8 << 30
    max_member_bytes: int = 4 << 30
    max_path_len: int = 1024


@dataclass(frozen=True)
class Extracted:
    path: Path
    sha256: str
    members: int
    bytes: int


# --- the decompressor ---------------------------------------------------------------------------------------


def inflate_backend() -> str:
    """``"isal"`` (python-isal, the ``fast`` extra, about twice as fast) when it imports, else ``"zlib"`` (the
    standard library). ``ASRCTL_GZIP=stdlib`` forces the standard library."""
    if os.environ.get("ASRCTL_GZIP", "").lower() not in ("stdlib", "zlib"):
        try:
            from isal import igzip_lib  # noqa: F401
        except ImportError:
            pass
        else:
            return "isal"
    return "zlib"


class _ZlibMember:
    """One gzip member through the standard library's zlib (CRC and length checked at its end)."""

    error: Any = zlib.error

    def __init__(self) -> None:
        self.d: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data

    def pieces(self, data: bytes) -> Iterator[bytes]:
        d = self.d
        while True:
            piece = d.decompress(data, INFLATE_SIZE)
            if piece:
                yield piece
            data = d.unconsumed_tail
            if d.eof or not data:
                break
        while not d.eof:  # output still held inside zlib when max_length stopped it
            piece = d.decompress(b"", INFLATE_SIZE)
            if not piece:
                break
            yield piece


class _IsalMember(_ZlibMember):
    """One gzip member through ISA-L's inflate (CRC and length checked at its end)."""

    def __init__(self) -> None:
        from isal import igzip_lib

        self.error = igzip_lib.IsalError
        self.d = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        d = self.d
        piece = d.decompress(data, INFLATE_SIZE)
        if piece:
            yield piece
        while not d.eof and not d.needs_input:
            piece = d.decompress(b"", INFLATE_SIZE)
            if not piece:
                break
            yield piece


# --- public entry point -------------------------------------------------------------------------------------


def extract(
    bundle_path: Path,
    dest: Path,
    *,
    expected_sha256: str | None,
    out: Output | None = None,
    limits: Limits = Limits(),  # frozen: one shared default is fine
) -> Extracted:
    """Verify and unpack ``bundle_path`` into ``dest``, which must not exist yet (``ASRCTL-E037``).

    With ``expected_sha256`` the digest is checked before ``dest`` appears (``ASRCTL-E030`` on a mismatch);
    without it the digest is still computed and returned, and deciding whether that is acceptable is the
    caller's business (see :mod:`asrctl.bundles.digest`). ``dest`` ends up mode 0700.
    """
    bundle_path = Path(bundle_path)
    dest = Path(os.path.abspath(dest))
    expected = None if expected_sha256 is None else normalize_hex(expected_sha256)
    if os.path.lexists(dest):
        raise AsrctlError("ASRCTL-E037", f"{dest} already exists", path=str(dest))
    if not dest.parent.is_dir():
        raise AsrctlError(
            "ASRCTL-E002",
            f"{dest.parent} does not exist (the parent of the destination)",
            remedy="Create the parent directory first, or choose a destination inside an existing directory.",
        )
    fd = _open_bundle(bundle_path)
    try:
        size = os.fstat(fd).st_size
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".asrctl-staging", dir=dest.parent))
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise AsrctlError(
                "ASRCTL-E040",
                f"cannot create a directory in {dest.parent}: {exc.strerror}",
                path=str(dest.parent),
            ) from None
        try:
            what = "Verifying and unpacking" if expected else "Unpacking"
            with _progress(out, f"{what} {bundle_path.name}", size) as progress:
                members, nbytes, digest = _Extraction(fd, staging, limits, progress.advance).run()
            if expected is not None and digest != expected:
                raise mismatch_error(bundle_path, expected, digest)
            with shielded():  # a signal now is delivered once dest is whole
                _rename_noreplace(staging, dest)
        except BaseException:
            _remove_tree(staging)
            raise
    finally:
        os.close(fd)
    LOG.info("unpacked %s into %s: %d members, %d bytes, sha256 %s", bundle_path, dest, members, nbytes, digest)
    return Extracted(path=dest, sha256=digest, members=members, bytes=nbytes)


def _open_bundle(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise AsrctlError("ASRCTL-E022", f"{path}: no such file", path=str(path)) from None
    except IsADirectoryError:
        raise AsrctlError("ASRCTL-E033", f"{path.name}: not a regular file", path=str(path)) from None
    except OSError as exc:
        raise AsrctlError("ASRCTL-E033", f"{path.name}: cannot read: {exc.strerror}", path=str(path)) from None
    st = os.fstat(fd)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "not a regular file"
    elif st.st_size == 0:
        why = "empty file (0 bytes)"
    if why:
        os.close(fd)
        raise AsrctlError("ASRCTL-E033", f"{path.name}: {why}", path=str(path))
    return fd


@contextlib.contextmanager
def _progress(out: Output | None, description: str, total: int) -> Iterator[Any]:
    if out is None:

        class _Quiet:
            def advance(self, n: int) -> None:
                pass

        yield _Quiet()
        return
    with out.progress(description, total) as handle:
        yield handle


# --- one extraction -----------------------------------------------------------------------------------------


class _Extraction:
    def __init__(self, fd: int, staging: Path, limits: Limits, advance: Callable[[int], None]) -> None:
        self.fd = fd
        self.staging = staging
        self.limits = limits
        self.advance = advance
        self.backend = inflate_backend()

    def run(self) -> tuple[int, int, str]:
        sha = hashlib.sha256()
        hasher = _Worker("asrctl-sha256", sha.update, HASH_QUEUE)
        tree = _Writer(self.staging)  # directories, on this thread: they exist before anything goes in them
        files = [_Writer(self.staging) for _ in range(WRITERS)]
        writers = [_Worker(f"asrctl-writer-{i}", w.apply, WRITE_QUEUE) for i, w in enumerate(files)]
        route = _Router(tree, len(writers))
        parser = _TarParser(self.limits)
        inflater = _Inflater(_IsalMember if self.backend == "isal" else _ZlibMember)
        workers = [hasher, *writers]
        for w in workers:
            w.start()
        try:
            while chunk := os.read(self.fd, READ_SIZE):
                hasher.put(chunk)
                for piece in inflater.feed(chunk):
                    ops = parser.feed(piece)
                    if ops:
                        for writer, batch in zip(writers, route(ops), strict=True):
                            if batch:
                                writer.put(batch)
                for w in writers:  # a writer that failed stops the whole extraction now, not at its next batch
                    w.check()
                self.advance(len(chunk))
            inflater.finish()
            parser.finish()
            for w in workers:
                w.close()
            tree.finish(parser.dir_modes)
        except BaseException:
            with shielded(deliver=False):  # a second signal must not leave a writer running while we clean up
                for w in workers:
                    w.cancel()
            raise
        finally:
            for open_writer in (tree, *files):
                open_writer.close_fds()
        LOG.debug("inflated with %s, wrote with %d threads", self.backend, len(writers))
        return parser.members, parser.total, sha.hexdigest()


class _Router:
    """Splits the parser's operations between the writer threads by directory, so files in different
    directories are created in parallel (creating files is most of the cost of writing a bundle, and the kernel
    serializes it per directory) while each directory's operations keep their order. Directories are created
    here, synchronously, before any operation that needs them is queued; a hardlink goes to the thread that
    writes its target, after it; the data of a file goes to the thread that opened it."""

    def __init__(self, tree: _Writer, n: int) -> None:
        self.tree = tree
        self.n = n
        self.current = 0

    def _index(self, rel: str) -> int:
        return zlib.crc32(rel.rpartition("/")[0].encode("utf-8", "surrogateescape")) % self.n

    def __call__(self, ops: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
        batches: list[list[tuple[Any, ...]]] = [[] for _ in range(self.n)]
        for op in ops:
            code = op[0]
            if code == OP_DIR:
                self.tree.apply([op])
                continue
            if code == OP_WRITE or code == OP_CLOSE:
                i = self.current
            elif code == OP_LINK:
                i = self._index(op[2])
            else:
                i = self._index(op[1])
                if code == OP_OPEN:
                    self.current = i
            batches[i].append(op)
        return batches


_STOP = object()


class _Worker(threading.Thread):
    """A thread that applies ``handler`` to queued items in order. The first exception stops the work; the
    producer sees it at its next ``put`` or at ``close``. Items are still drained after a failure or a
    cancel, so a producer never blocks on a full queue."""

    def __init__(self, name: str, handler: Callable[[Any], None], maxsize: int) -> None:
        super().__init__(name=name, daemon=True)
        self.handler = handler
        self.q: queue.Queue[Any] = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.cancelled = False

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is _STOP:
                return
            if self.error is not None or self.cancelled:
                continue
            try:
                self.handler(item)
            except BaseException as exc:
                self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, item: Any) -> None:
        self.check()
        self.q.put(item)

    def close(self) -> None:
        self.q.put(_STOP)
        self.join()
        self.check()

    def cancel(self) -> None:
        if not self.is_alive():
            return
        self.cancelled = True
        # The queue is drained without work now, so this put returns quickly.
        self.q.put(_STOP)
        self.join()


# --- gzip ---------------------------------------------------------------------------------------------------


def _corrupt(message: str, **details: object) -> AsrctlError:
    return AsrctlError("ASRCTL-E033", message, None, **details)


class _Inflater:
    """gzip members (one or more, as gzip and tar accept) to decompressed pieces of at most INFLATE_SIZE."""

    def __init__(self, member: type[_ZlibMember]) -> None:
        self.member = member
        self.d: _ZlibMember | None = None
        self.between = b""  # bytes after a finished member: zero padding, or the start of the next member
        self.members = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self.d is None:
                data = self._start(self.between + data)
                if not data:
                    return
            d = self.d
            assert d is not None
            try:
                yield from d.pieces(data)
            except d.error as exc:
                raise self._error(exc) from None
            if not d.eof:
                return
            data = d.unused_data
            self.d = None

    def _start(self, data: bytes) -> bytes:
        """Between members: skip zero padding; the next bytes must start a gzip member."""
        stripped = data.lstrip(b"\0")
        self.between = b""
        if not stripped:
            return b""
        if len(stripped) < 2 and GZIP_MAGIC.startswith(stripped):
            self.between = stripped
            return b""
        if stripped[:2] != GZIP_MAGIC:
            if self.members == 0:
                raise _corrupt("not a gzip file (a .tar.gz bundle starts with 1f 8b)")
            raise _corrupt("unexpected data after the end of the gzip stream")
        self.d = self.member()
        self.members += 1
        return stripped

    def finish(self) -> None:
        if self.members == 0:
            raise _corrupt("not a gzip file (it holds only zero bytes)")
        if self.d is not None and not self.d.eof:
            raise _corrupt("truncated: the gzip data stops before the end of its stream (the copy is incomplete)")
        if self.between.strip(b"\0"):
            raise _corrupt("unexpected data after the end of the gzip stream")

    def _error(self, exc: Exception) -> AsrctlError:
        text = str(exc)
        low = text.lower()
        if "check" in low or "checksum" in low or "crc" in low:
            why = "the gzip CRC does not match (the data is damaged)"
        elif "length" in low:
            why = "the gzip length does not match (the data is damaged)"
        else:
            why = f"invalid gzip data ({text})"
        return _corrupt(why)


# --- tar ----------------------------------------------------------------------------------------------------

# Operations for the writer thread, in archive order.
OP_FILE = 0  # (OP_FILE, rel, mode, mtime, data): a whole small file
OP_OPEN = 1  # (OP_OPEN, rel, mode, mtime)
OP_WRITE = 2  # (OP_WRITE, data)
OP_CLOSE = 3  # (OP_CLOSE,)
OP_DIR = 4  # (OP_DIR, rel)
OP_SYMLINK = 5  # (OP_SYMLINK, rel, target)
OP_LINK = 6  # (OP_LINK, rel, target_rel)

_HEADER, _DATA, _PAD, _END = range(4)

# What a path is in the tree being built.
_K_DIR, _K_IMPLICIT_DIR, _K_FILE, _K_SYMLINK, _K_HARDLINK = range(5)


def _unsafe(name: str, why: str) -> AsrctlError:
    return AsrctlError("ASRCTL-E032", f"member {name!r}: {why}; nothing was unpacked", member=name)


class _TarParser:
    """A streaming tar reader (ustar, GNU long names, pax) that turns members into writer operations, checking
    every member before anything is written for it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.state = _HEADER
        self.carry = bytearray()
        self.offset = 0  # stream offset of the next byte fed
        self.remaining = 0
        self.pad = 0
        self.sink = 0  # what DATA bytes go to: 0 skip, 1 writer, 2 extended header buffer
        self.ext = bytearray()
        self.ext_kind = b""
        self.ext_run = 0
        self.pax_local: dict[bytes, bytes] = {}
        self.pax_global: dict[bytes, bytes] = {}
        self.long_name: str | None = None
        self.long_link: str | None = None
        self.current = ""
        self.kinds: dict[str, int] = {"": _K_DIR}
        self.dir_modes: dict[str, int] = {}
        self.members = 0
        self.total = 0
        self.trailing = 0
        self.seen_header = False
        self.pad_for = 0
        self._last_parent = ""

    # -- the stream ------------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        mv = memoryview(chunk)
        n = len(chunk)
        pos = 0
        while pos < n:
            state = self.state
            if state == _DATA:
                take = min(self.remaining, n - pos)
                if self.sink == 1:
                    ops.append((OP_WRITE, mv[pos : pos + take]))
                elif self.sink == 2:
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
        if self.state == _END:
            return
        if not self.seen_header:
            raise _corrupt("not a tar archive (the gzip stream holds no tar data)")
        if self.state in (_DATA, _PAD) or self.carry:
            where = f"inside member {self.current!r}" if self.state != _HEADER else "inside a header"
            raise _corrupt(f"truncated tar data: it ends {where}", member=self.current)
        if self.ext_run:
            raise _corrupt("truncated tar data: it ends after an extended header")
        # No end marker at all: GNU tar and Python's tarfile accept that too.

    def _data_done(self, ops: list[tuple[Any, ...]]) -> None:
        if self.sink == 1:
            ops.append((OP_CLOSE,))
        elif self.sink == 2:
            self._ext_done()
        self.sink = 0
        self.pad = -self.pad_for % BLOCK
        self.state = _PAD if self.pad else _HEADER

    # -- headers ---------------------------------------------------------------------------------------------
    def _header(
        self, block: bytes, start: int, chunk: bytes, mv: memoryview, pos: int, ops: list[tuple[Any, ...]]
    ) -> int:
        if block == ZERO_BLOCK:
            if not self.seen_header:
                raise _corrupt("not a tar archive (it starts with an empty block)")
            if self.ext_run:
                raise _corrupt("corrupted tar data: an extended header is followed by the end marker")
            self.state = _END
            self.trailing = len(chunk) - pos
            return len(chunk)
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            if not self.seen_header:
                raise _corrupt("not a tar archive (the first header is invalid)") from None
            raise _corrupt(f"corrupted tar header at byte {start} of the tar data", offset=start) from None
        self.seen_header = True
        kind = info.type
        size = info.size
        pax = {**self.pax_global, **self.pax_local} if (self.pax_local or self.pax_global) else None
        if pax is not None and b"size" in pax:
            size = _pax_int(pax[b"size"], "size")
        if size < 0 or info.size < 0:
            raise _corrupt(f"corrupted tar header at byte {start}: negative size", offset=start)

        if kind in _PAX or kind == tarfile.XGLTYPE or kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            self.ext_run += 1
            if self.ext_run > EXT_RUN_LIMIT:
                raise _corrupt(f"corrupted tar data: {self.ext_run} extended headers in a row at byte {start}")
            cap = EXT_HEADER_LIMIT if kind not in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) else None
            if cap is None:
                cap = self.limits.max_path_len + 1
            if info.size > cap:
                what = (
                    "name"
                    if kind == tarfile.GNUTYPE_LONGNAME
                    else "link target"
                    if kind == tarfile.GNUTYPE_LONGLINK
                    else "extended header"
                )
                raise _unsafe(info.name, f"a {what} of {info.size} bytes (the limit is {cap})")
            self.ext_kind = kind
            self.ext.clear()
            return self._begin_data(info.size, 2, pos)

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
                    raise _unsafe(name, "a sparse file (not supported in bundles)")
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
            raise _unsafe(name, f"more than {self.limits.max_members} members")
        if kind in _SPECIAL_TYPES:
            raise _unsafe(name, f"{_SPECIAL_TYPES[kind]} (only files, directories and links are allowed)")
        special = _SPECIAL_MODES.get(stat.S_IFMT(info.mode))
        if special:
            raise _unsafe(name, f"{special} (only files, directories and links are allowed)")
        if kind not in _REGULAR and kind not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
            raise _unsafe(name, f"unsupported member type {kind!r} (only files, directories and links)")

        rel = self._check_name(name)
        mode = info.mode & 0o7777
        if kind == tarfile.DIRTYPE:
            if rel:
                self._dir(name, rel, ops)
                self.dir_modes[rel] = (mode & 0o755) | 0o700
            return self._begin_data(size, 0, pos)
        if not rel:
            raise _unsafe(name, "a file without a name")
        self._claim(name, rel, ops)
        if kind == tarfile.SYMTYPE:
            self._check_symlink(name, rel, linkname)
            self.kinds[rel] = _K_SYMLINK
            ops.append((OP_SYMLINK, rel, linkname))
            return self._begin_data(size, 0, pos)
        if kind == tarfile.LNKTYPE:
            target = self._check_hardlink(name, linkname)
            self.kinds[rel] = _K_HARDLINK
            ops.append((OP_LINK, rel, target))
            return self._begin_data(size, 0, pos)

        # A regular file.
        if size > self.limits.max_member_bytes:
            raise _unsafe(name, f"{size} bytes, more than the limit of {self.limits.max_member_bytes} per member")
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise _unsafe(name, f"the members add up to more than the limit of {self.limits.max_total_bytes} bytes")
        self.kinds[rel] = _K_FILE
        fmode = (mode & 0o755) | 0o600
        end = pos + size
        if end <= len(chunk):  # the whole file is in this chunk: one operation
            ops.append((OP_FILE, rel, fmode, mtime, mv[pos:end]))
            self.pad_for = size
            pad = -size % BLOCK
            skip = min(pad, len(chunk) - end)
            self.pad = pad - skip
            self.state = _PAD if self.pad else _HEADER
            return end + skip
        ops.append((OP_OPEN, rel, fmode, mtime))
        return self._begin_data(size, 1, pos)

    def _begin_data(self, size: int, sink: int, pos: int) -> int:
        self.sink = sink
        self.pad_for = size
        if size:
            self.remaining = size
            self.state = _DATA
        else:
            if sink == 1:
                raise AssertionError("empty files are whole-file operations")
            if sink == 2:
                self._ext_done()
            self.sink = 0
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
            raise _unsafe(name, "a NUL byte in the name")
        if len(name.encode("utf-8", "surrogateescape")) > self.limits.max_path_len:
            raise _unsafe(name, f"a path longer than {self.limits.max_path_len} bytes")
        if name.startswith("/"):
            raise _unsafe(name, "an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise _unsafe(name, "'..' in the path")
        for part in parts:
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
                raise _unsafe(name, f"a path component longer than {NAME_MAX} bytes")
        return "/".join(parts)

    def _parents(self, name: str, rel: str, ops: list[tuple[Any, ...]]) -> None:
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
                ops.append((OP_DIR, path))
            elif kind == _K_SYMLINK:
                raise _unsafe(name, f"its path goes through the symlink {path!r} of an earlier member")
            elif kind not in (_K_DIR, _K_IMPLICIT_DIR):
                raise _unsafe(name, f"its path goes through the file {path!r} of an earlier member")
        self._last_parent = parent

    def _claim(self, name: str, rel: str, ops: list[tuple[Any, ...]]) -> None:
        if rel in self.kinds:
            raise _unsafe(name, "a second member with the same name")
        self._parents(name, rel, ops)

    def _dir(self, name: str, rel: str, ops: list[tuple[Any, ...]]) -> None:
        kind = self.kinds.get(rel)
        if kind == _K_IMPLICIT_DIR:  # an entry for a directory that earlier members already needed
            self.kinds[rel] = _K_DIR
            return
        if kind is not None:
            raise _unsafe(name, "a second member with the same name")
        self._parents(name, rel, ops)
        self.kinds[rel] = _K_DIR
        ops.append((OP_DIR, rel))

    def _check_symlink(self, name: str, rel: str, target: str) -> None:
        if not target:
            raise _unsafe(name, "a symlink without a target")
        if "\0" in target or len(target.encode("utf-8", "surrogateescape")) > self.limits.max_path_len:
            raise _unsafe(name, "a symlink target that is too long or has a NUL byte")
        if target.startswith("/"):
            raise _unsafe(name, f"a symlink to the absolute path {target!r}")
        parts = [p for p in target.split("/") if p not in ("", ".")]
        ups = 0
        while ups < len(parts) and parts[ups] == "..":
            ups += 1
        if ".." in parts[ups:]:
            raise _unsafe(name, f"a symlink to {target!r}, with '..' after a name")
        # Leading '..' climb real directories of this archive (no member's path goes through a symlink), so
        # counting them is exact; every later name is either a real directory or another symlink that was
        # checked the same way, so a chain of links cannot leave the tree either.
        if ups > rel.count("/"):
            raise _unsafe(name, f"a symlink to {target!r}, outside the bundle")

    def _check_hardlink(self, name: str, target: str) -> str:
        if not target:
            raise _unsafe(name, "a hardlink without a target")
        if target.startswith("/"):
            raise _unsafe(name, f"a hardlink to the absolute path {target!r}")
        parts = [p for p in target.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise _unsafe(name, f"a hardlink to {target!r}, outside the bundle")
        rel = "/".join(parts)
        if self.kinds.get(rel) not in (_K_FILE, _K_HARDLINK):
            raise _unsafe(name, f"a hardlink to {target!r}, which is not an earlier file of the bundle")
        return rel


def _pax_str(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _pax_int(value: bytes, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _corrupt(f"corrupted tar data: pax {key} {value[:40]!r} is not a number") from None


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        m = _PAX_RECORD.match(data, pos)
        if m is None:
            if not data[pos:].strip(b"\0"):
                break
            raise _corrupt("corrupted tar data: a malformed pax extended header")
        length = int(m.group(1))
        end = pos + length
        if length < 5 or end > len(data) or data[end - 1 : end] != b"\n":
            raise _corrupt("corrupted tar data: a malformed pax extended header")
        key, eq, value = data[m.end() : end - 1].partition(b"=")
        if not eq:
            raise _corrupt("corrupted tar data: a malformed pax extended header")
        records[key] = value
        pos = end
    return records


# --- the writer ---------------------------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _Writer:
    """Carries out the parser's operations below the staging directory. Directories are walked one component at
    a time with O_NOFOLLOW and files are created with O_EXCL|O_NOFOLLOW, so nothing is ever written through a
    symlink. Never chowns; modes are set on the open descriptor."""

    def __init__(self, root: Path) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.fds: OrderedDict[str, int] = OrderedDict()
        self.fd = -1
        self.cur: tuple[str, int, float] = ("", 0, 0.0)

    def apply(self, ops: list[tuple[Any, ...]]) -> None:
        write = os.write
        for op in ops:
            code = op[0]
            rel = op[1] if code != OP_WRITE and code != OP_CLOSE else self.cur[0]
            try:
                if code == OP_WRITE:
                    data = op[1]
                    while data:
                        data = data[write(self.fd, data) :]
                elif code == OP_FILE:
                    fd = self._create(rel)
                    try:
                        data = op[4]
                        while data:
                            data = data[write(fd, data) :]
                        _finish_file(fd, op[2], op[3])
                    finally:
                        os.close(fd)
                elif code == OP_OPEN:
                    self.fd = self._create(rel)
                    self.cur = (rel, op[2], op[3])
                elif code == OP_CLOSE:
                    fd, self.fd = self.fd, -1
                    try:
                        _finish_file(fd, self.cur[1], self.cur[2])
                    finally:
                        os.close(fd)
                elif code == OP_DIR:
                    parent, name = self._split(rel)
                    os.mkdir(name, 0o700, dir_fd=parent)
                elif code == OP_SYMLINK:
                    parent, name = self._split(rel)
                    os.symlink(op[2], name, dir_fd=parent)
                elif code == OP_LINK:
                    src_parent, src_name = self._split(op[2])
                    src_parent = os.dup(src_parent)
                    try:
                        parent, name = self._split(rel)
                        os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
                    finally:
                        os.close(src_parent)
            except OSError as exc:
                raise _write_error(rel, exc) from None

    def _create(self, rel: str) -> int:
        parent, name = self._split(rel)
        return os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)

    def _split(self, rel: str) -> tuple[int, str]:
        parent, _, name = rel.rpartition("/")
        if name in ("", ".", ".."):  # the parser never lets these through; the writer does not rely on it
            raise _unsafe(rel, "a path that is not a plain name below the bundle's top")
        return self._dir_fd(parent), name

    def _dir_fd(self, rel: str) -> int:
        if not rel:
            return self.root_fd
        fd = self.fds.get(rel)
        if fd is not None:
            self.fds.move_to_end(rel)
            return fd
        parent, name = self._split(rel)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        self.fds[rel] = fd
        if len(self.fds) > DIR_FD_CACHE:
            os.close(self.fds.popitem(last=False)[1])
        return fd

    def finish(self, dir_modes: dict[str, int]) -> None:
        """Directory modes last (deepest first), as tar does: a read-only directory could not be filled."""
        for rel in sorted(dir_modes, key=lambda r: r.count("/"), reverse=True):
            try:
                parent, name = self._split(rel)
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                try:
                    os.fchmod(fd, dir_modes[rel])
                finally:
                    os.close(fd)
            except OSError as exc:
                raise _write_error(rel, exc) from None

    def close_fds(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1


def _finish_file(fd: int, mode: int, mtime: float) -> None:
    os.fchmod(fd, mode)
    with contextlib.suppress(OverflowError, ValueError, OSError):
        ns = int(mtime * 1_000_000_000)
        os.utime(fd, ns=(ns, ns))


def _write_error(rel: str, exc: OSError) -> AsrctlError | OSError:
    code = exc.errno
    if code in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.EMLINK):
        return _unsafe(rel, f"cannot be created safely ({exc.strerror}): its path is not a plain directory")
    if code == errno.ENAMETOOLONG:
        return _unsafe(rel, "a name too long for this file system")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return AsrctlError("ASRCTL-E041", f"no space left while unpacking {rel!r}: {exc.strerror}", member=rel)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AsrctlError("ASRCTL-E040", f"cannot write {rel!r}: {exc.strerror}", member=rel)
    return exc


# --- into place, and cleaning up ----------------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_renameat2: Any = None


def _load_renameat2() -> Any:
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            func = libc.renameat2
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            func.restype = ctypes.c_int
            _renameat2 = func
        except (OSError, AttributeError):
            _renameat2 = False
    return _renameat2


def _rename_noreplace(src: Path, dst: Path) -> None:
    """rename(2) would silently replace an empty directory that appeared at ``dst`` meanwhile; renameat2 with
    RENAME_NOREPLACE cannot. Where it is missing, check and rename."""
    func = _load_renameat2()
    if func:
        at_fdcwd = -100
        if func(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise AsrctlError("ASRCTL-E037", f"{dst} already exists", path=str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        raise AsrctlError("ASRCTL-E037", f"{dst} already exists", path=str(dst))
    os.rename(src, dst)


def _remove_tree(path: Path) -> None:
    """Remove the staging directory, even if Ctrl-C is pressed again meanwhile."""
    with shielded(deliver=False):
        shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        LOG.warning("could not remove the staging directory %s", path)
