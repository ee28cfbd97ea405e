"""The writer: carries out the parser's operations below the staging directory, on worker threads.

Nothing is ever written through a symlink, whatever the parser's bookkeeping let through: every directory is
opened one component at a time with ``O_NOFOLLOW|O_DIRECTORY`` relative to the staging directory's descriptor,
and files are created with ``O_CREAT|O_EXCL|O_NOFOLLOW``, so a path that is not a plain tree of fresh entries is
refused by the kernel (``ELOOP``, ``ENOTDIR``, ``EEXIST`` → ``ASRCTL-E032``). Nothing is chowned; modes are set
on the open descriptor.

Creating files is most of the cost of writing a bundle and the kernel serialises it per directory, so files are
spread over writer threads by directory (:class:`Router`), each directory's operations in archive order.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, TypeVar

from asrctl.bundles.extract.limits import unsafe
from asrctl.bundles.extract.tarstream import (
    CloseFile,
    Hardlink,
    MakeDir,
    Op,
    OpenFile,
    Symlink,
    Write,
    WriteFile,
)
from asrctl.errors import AsrctlError

DIR_FD_CACHE = 64

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeWriter:
    """Carries out operations below ``root``, through directory descriptors (one writer per thread)."""

    def __init__(self, root: Path) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.fds: OrderedDict[str, int] = OrderedDict()
        self.fd = -1
        self.cur: tuple[str, int, float] = ("", 0, 0.0)

    def apply(self, ops: Sequence[Op]) -> None:
        write = os.write
        for op in ops:
            rel = self.cur[0]
            try:
                if isinstance(op, Write):
                    data = op.data
                    while data:
                        data = data[write(self.fd, data) :]
                elif isinstance(op, WriteFile):
                    rel = op.rel
                    fd = self._create(rel)
                    try:
                        data = op.data
                        while data:
                            data = data[write(fd, data) :]
                        _finish_file(fd, op.mode, op.mtime)
                    finally:
                        os.close(fd)
                elif isinstance(op, OpenFile):
                    rel = op.rel
                    self.fd = self._create(rel)
                    self.cur = (rel, op.mode, op.mtime)
                elif isinstance(op, CloseFile):
                    fd, self.fd = self.fd, -1
                    try:
                        _finish_file(fd, self.cur[1], self.cur[2])
                    finally:
                        os.close(fd)
                elif isinstance(op, MakeDir):
                    rel = op.rel
                    parent, name = self._split(rel)
                    os.mkdir(name, 0o700, dir_fd=parent)
                elif isinstance(op, Symlink):
                    rel = op.rel
                    parent, name = self._split(rel)
                    os.symlink(op.target, name, dir_fd=parent)
                elif isinstance(op, Hardlink):
                    rel = op.rel
                    src_parent, src_name = self._split(op.target)
                    src_parent = os.dup(src_parent)  # the next _split may evict it from the cache
                    try:
                        parent, name = self._split(rel)
                        os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
                    finally:
                        os.close(src_parent)
                else:
                    raise AssertionError(f"unknown operation {op!r}")
            except OSError as exc:
                raise write_error(rel, exc) from None

    def _create(self, rel: str) -> int:
        parent, name = self._split(rel)
        return os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)

    def _split(self, rel: str) -> tuple[int, str]:
        parent, _, name = rel.rpartition("/")
        if name in ("", ".", ".."):  # the parser never lets these through; the writer does not rely on it
            raise unsafe(rel, "a path that is not a plain name below the bundle's top")
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
                raise write_error(rel, exc) from None

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


def write_error(rel: str, exc: OSError) -> AsrctlError | OSError:
    """What a kernel refusal means for the operator: an unsafe path, a full disk, no permission."""
    code = exc.errno
    if code in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST, errno.EMLINK):
        return unsafe(rel, f"cannot be created safely ({exc.strerror}): its path is not a plain directory")
    if code == errno.ENAMETOOLONG:
        return unsafe(rel, "a name too long for this file system")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return AsrctlError("ASRCTL-E041", f"no space left while unpacking {rel!r}: {exc.strerror}", member=rel)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AsrctlError("ASRCTL-E040", f"cannot write {rel!r}: {exc.strerror}", member=rel)
    return exc


# --- splitting the work between threads ---------------------------------------------------------------------


class Router:
    """Splits the parser's operations between the writer threads by directory, so files in different
    directories are created in parallel while each directory's operations keep their order. Directories are
    created here, synchronously (on ``tree``), before any operation that needs them is queued; a hardlink goes to
    the thread that writes its target, after it; the data of a file goes to the thread that opened it."""

    def __init__(self, tree: TreeWriter, n: int) -> None:
        self.tree = tree
        self.n = n
        self.current = 0

    def _index(self, rel: str) -> int:
        return zlib.crc32(rel.rpartition("/")[0].encode("utf-8", "surrogateescape")) % self.n

    def __call__(self, ops: list[Op]) -> list[list[Op]]:
        batches: list[list[Op]] = [[] for _ in range(self.n)]
        for op in ops:
            if isinstance(op, MakeDir):
                self.tree.apply([op])
                continue
            if isinstance(op, (Write, CloseFile)):
                i = self.current
            elif isinstance(op, Hardlink):
                i = self._index(op.target)
            else:
                i = self._index(op.rel)
                if isinstance(op, OpenFile):
                    self.current = i
            batches[i].append(op)
        return batches


T = TypeVar("T")


class _Stop:
    pass


_STOP = _Stop()


class Worker(threading.Thread, Generic[T]):
    """A thread that applies ``handler`` to queued items in order. The first exception stops the work; the
    producer sees it at its next ``put``/``check`` or at ``close``. Items are still drained after a failure or a
    cancel, so a producer never blocks on a full queue."""

    def __init__(self, name: str, handler: Callable[[T], None], maxsize: int) -> None:
        super().__init__(name=name, daemon=True)
        self.handler = handler
        self.q: queue.Queue[T | _Stop] = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.cancelled = False

    def run(self) -> None:
        while True:
            item = self.q.get()
            if isinstance(item, _Stop):
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

    def put(self, item: T) -> None:
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
