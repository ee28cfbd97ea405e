"""Reading files of the target system: confined to ``--root``, regular files only, non-blocking, bounded.

Every file asrctl reads from the machine it manages (release files, vendor logs and configuration, files a
vendor file points to) can be a symbolic link, a FIFO, a device or a 3 GB log. This module is the one way to
read them:

- **Confined.** A path is resolved like a chroot would: component by component from a directory descriptor of
  the root (``openat`` with ``O_NOFOLLOW`` on every step, so a link swapped in half-way is not followed on the
  host), every symbolic link (relative or absolute, in the last component or on the way) followed *inside* the
  root, ``..`` never above it. ``within`` narrows it further: the file must resolve under that directory
  (resolved the same way), so ``/var/log/ua_install.log -> /etc/passwd`` is refused as a link out of
  ``/var/log`` even when the root is ``/``.
- **Regular files only, never blocking.** The last component is checked with ``lstat`` before it is opened (a
  device is never opened), then opened ``O_NONBLOCK | O_NOFOLLOW | O_NOCTTY`` (a FIFO swapped in meanwhile
  cannot hang the open) and checked again on the descriptor: it must be the file that was checked.
- **Bounded.** :meth:`Opened.read` refuses more than ``limit`` bytes; :meth:`Opened.tail` reads only the last
  ``limit`` bytes (a sparse 3 GB log costs ``limit`` bytes of memory, not 3 GB).

Where the platform has no ``dir_fd`` (Windows), the same resolution is done on path strings and the opened file
is compared with what was checked; on a Windows host that is not sandboxed, paths are the host's own.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from asrctl.system.paths import Paths

MAX_SYMLINKS = 40  # like the kernel's limit for one path lookup
CHUNK = 1 << 20

# Why a path was refused (Refused.kind): stable words for a manifest or a test.
LINK_OUT = "link-out"
NOT_REGULAR = "not-regular"
DIRECTORY = "directory"
LOOP = "symlink-loop"
UNREADABLE = "unreadable"
TOO_LARGE = "too-large"
CHANGED = "changed"

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_READ_FILE = (
    os.O_RDONLY
    | _O_NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
    | _O_CLOEXEC
)
_O_READ_DIR = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
HAVE_DIR_FD = all(f in os.supports_dir_fd for f in (os.open, os.stat, os.readlink)) and os.listdir in os.supports_fd


class Refused(Exception):
    """A path that exists but cannot be read safely. ``kind`` is one of the constants above, ``reason`` says why in
    words (it names target-system paths only)."""

    def __init__(self, path: str, kind: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.kind = kind
        self.reason = reason


class _Missing(Exception):
    """Not there. ``target`` is where the path would have resolved (so a dangling link out is still a link out)."""

    def __init__(self, target: PurePosixPath, via: list[str]) -> None:
        self.target = target
        self.via = via


def _lexical(base: PurePosixPath, names: list[str]) -> PurePosixPath:
    for name in names:
        if name == "..":
            base = base.parent
        elif name not in ("", "."):
            base = base / name
    return base


@dataclass
class Opened:
    """A regular file opened for reading. ``size`` is its size when it was opened (a log that grows meanwhile is
    read up to there); ``target`` is where it resolved on the target system, ``via`` the links followed."""

    fd: int
    size: int
    target: str
    host: Path
    via: list[str] = field(default_factory=list)
    mtime: float = 0.0

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self, limit: int) -> bytes:
        """The whole file; :class:`Refused` (``too-large``) when it holds more than ``limit`` bytes."""
        if self.size > limit:
            raise Refused(self.target, TOO_LARGE, f"is larger than {limit} bytes ({self.size})")
        data = self._read_range(0, self.size + 1)  # one more: a file that grew past the limit meanwhile
        if len(data) > limit:
            raise Refused(self.target, TOO_LARGE, f"is larger than {limit} bytes")
        return bytes(data)

    def tail(self, limit: int) -> bytearray:
        """The last ``limit`` bytes (of the size the file had when opened); the file itself is never read whole."""
        start = max(0, self.size - limit)
        return self._read_range(start, self.size - start)

    def stream(self) -> BinaryIO:
        """A buffered reader over the descriptor (for a decompressor); closing it leaves the descriptor open."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        return io.BufferedReader(io.FileIO(self.fd, "rb", closefd=False), CHUNK)

    def _read_range(self, start: int, count: int) -> bytearray:
        """Read into one buffer of the final size (no second copy of a 16 MiB tail)."""
        buf = bytearray(count)
        view = memoryview(buf)
        got = 0
        with io.FileIO(self.fd, "rb", closefd=False) as f:
            f.seek(start)
            while got < count:
                n = f.readinto(view[got : got + CHUNK])
                if not n:
                    break
                got += n
        view.release()
        del buf[got:]
        return buf


# --- resolution ---------------------------------------------------------------------------------------------


def _target(path: str | os.PathLike[str]) -> PurePosixPath:
    return PurePosixPath("/", os.fspath(path).replace("\\", "/"))


def target_of(paths: Paths, host: Path) -> str:
    """The target-system path of a host path under the root (the inverse of ``Paths.host``)."""
    if not paths.sandboxed:
        return str(host)
    try:
        return str(PurePosixPath("/", *host.relative_to(paths.root).parts))
    except ValueError:
        return str(host)


def resolve(paths: Paths, path: str) -> Path:
    """Resolve ``path`` of the target system like a chroot would, on path strings; returns the host path of the
    result (which need not exist). Raises :class:`Refused` (``symlink-loop``) after too many links."""
    pending = list(_target(path).parts[1:])
    resolved = PurePosixPath("/")
    links = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            resolved = resolved.parent
            continue
        candidate = resolved / name
        host = paths.host(str(candidate))
        try:
            is_link = stat.S_ISLNK(os.lstat(host).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            is_link = False
        if not is_link:
            resolved = candidate
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise Refused(path, LOOP, "too many levels of symbolic links")
        target = PurePosixPath(os.readlink(host).replace("\\", "/"))
        if target.is_absolute():
            resolved = PurePosixPath("/")
            pending = list(target.parts[1:]) + pending
        else:
            pending = list(target.parts) + pending
    return paths.host(str(resolved))


class _Walk:
    """Directory descriptors from the root down to the current directory (``openat`` resolution)."""

    def __init__(self, paths: Paths) -> None:
        self.root_fd = os.open(paths.root, _O_READ_DIR)
        self.stack: list[tuple[str, int]] = []

    @property
    def fd(self) -> int:
        return self.stack[-1][1] if self.stack else self.root_fd

    @property
    def where(self) -> PurePosixPath:
        return PurePosixPath("/", *(name for name, _ in self.stack))

    def push(self, name: str) -> None:
        self.stack.append((name, os.open(name, _O_READ_DIR, dir_fd=self.fd)))

    def up(self) -> None:
        if self.stack:
            os.close(self.stack.pop()[1])

    def to_root(self) -> None:
        while self.stack:
            self.up()

    def close(self) -> None:
        self.to_root()
        os.close(self.root_fd)


@contextmanager
def _walk_from_root(paths: Paths) -> Iterator[_Walk]:
    walk = _Walk(paths)
    try:
        yield walk
    finally:
        walk.close()


def _walk(walk: _Walk, path: str, directory: bool) -> tuple[str | None, os.stat_result | None, list[str]]:
    """Walk ``path`` from the root. For a directory, every component is entered; otherwise the last one is returned
    with its ``lstat`` (None, None for a path that ends in ``.``/``..``). Raises _Missing."""
    pending = list(_target(path).parts[1:])
    via: list[str] = []
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            walk.up()
            continue
        try:
            st = os.stat(name, dir_fd=walk.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise _Missing(_lexical(walk.where, [name, *pending]), via) from None
        if stat.S_ISLNK(st.st_mode):
            if len(via) >= MAX_SYMLINKS:
                raise Refused(path, LOOP, "too many levels of symbolic links")
            link = os.readlink(name, dir_fd=walk.fd)
            via.append(f"{walk.where / name} -> {link}")
            target = PurePosixPath(link.replace("\\", "/"))
            if target.is_absolute():
                walk.to_root()
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        if pending or directory:
            if not stat.S_ISDIR(st.st_mode):
                raise _Missing(_lexical(walk.where, [name, *pending]), via)
            walk.push(name)
            continue
        return name, st, via
    return None, None, via


def _unreadable(path: str, exc: OSError) -> Refused:
    if exc.errno == errno.ELOOP:
        return Refused(path, LOOP, "too many levels of symbolic links")
    return Refused(path, UNREADABLE, f"cannot read it: {exc.strerror or exc}")


def _check_regular(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise Refused(path, DIRECTORY, "is a directory, not a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise Refused(path, NOT_REGULAR, "is not a regular file")


def _open_final(path: str, do_open: Callable[[], int]) -> int:
    try:
        return do_open()
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: the checked file became a symbolic link
            raise Refused(path, CHANGED, "was replaced while it was being opened") from None
        raise


def _opened_checked(path: str, fd: int, before: os.stat_result, target: str, host: Path, via: list[str]) -> Opened:
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Refused(path, CHANGED, "was replaced while it was being opened")
    except BaseException:
        os.close(fd)
        raise
    return Opened(fd, st.st_size, target, host, via, st.st_mtime)


def _outside(path: str, target: PurePosixPath, within: PurePosixPath | None, via: list[str]) -> Refused | None:
    if within is None or target == within or within in target.parents:
        return None
    first = via[0].split(" -> ", 1)[1] if via else str(target)
    return Refused(path, LINK_OUT, f"a symbolic link leads out of {within} (to {first}, resolved {target})")


def resolve_dir(paths: Paths, path: str) -> PurePosixPath | None:
    """Where the directory ``path`` resolves inside the root (a target-system path), or None if it is missing."""
    if not HAVE_DIR_FD:
        host = resolve(paths, path) if paths.sandboxed or os.name != "nt" else Path(os.path.realpath(path))
        return PurePosixPath(target_of(paths, host).replace("\\", "/")) if host.is_dir() else None
    try:
        with _walk_from_root(paths) as walk:
            _walk(walk, path, directory=True)
            return walk.where
    except _Missing:
        return None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def open_regular(paths: Paths, path: str, within: str | None = None) -> Opened | None:
    """Open the regular file ``path`` of the target system for reading, confined as the module says. None when it
    does not exist; :class:`Refused` when it exists but is not a regular file, leads out of ``within``, loops or
    cannot be read."""
    limit_to = resolve_dir(paths, within) if within else None
    if within and limit_to is None:
        return None
    if not HAVE_DIR_FD:
        return _open_by_name(paths, path, limit_to)
    try:
        with _walk_from_root(paths) as walk:
            name, st, via = _walk(walk, path, directory=False)
            if name is None or st is None:
                raise Refused(path, DIRECTORY, "is a directory, not a regular file")
            target = walk.where / name
            refused = _outside(path, target, limit_to, via)
            if refused is not None:
                raise refused
            _check_regular(path, st)
            fd = _open_final(path, lambda: os.open(name, _O_READ_FILE, dir_fd=walk.fd))
            return _opened_checked(path, fd, st, str(target), paths.host(str(target)), via)
    except _Missing as missing:
        refused = _outside(path, missing.target, limit_to, missing.via)
        if refused is not None:
            raise refused from None
        return None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _open_by_name(paths: Paths, path: str, within: PurePosixPath | None) -> Opened | None:
    """The same on path strings, where there is no ``dir_fd``: resolve, check, open, compare."""
    try:
        if os.name == "nt" and not paths.sandboxed:
            host = Path(os.path.realpath(path))
            via = [] if host == Path(path) else [f"{path} -> {host}"]
        else:
            host = resolve(paths, path)
            via = [] if host == paths.host(path) else [f"{path} -> {target_of(paths, host)}"]
        target = PurePosixPath(target_of(paths, host).replace("\\", "/"))
        refused = _outside(path, target, within, via)
        if refused is not None:
            raise refused
        try:
            st = os.stat(host, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        _check_regular(path, st)
        fd = _open_final(path, lambda: os.open(host, _O_READ_FILE))
        return _opened_checked(path, fd, st, str(target), host, via)
    except OSError as exc:
        raise _unreadable(path, exc) from None


def read_file(paths: Paths, path: str, limit: int, within: str | None = None) -> bytes | None:
    """The whole of a small file of the target system (None when missing; :class:`Refused` as above, or when it
    holds more than ``limit`` bytes)."""
    opened = open_regular(paths, path, within)
    if opened is None:
        return None
    with opened:
        return opened.read(limit)


def list_dir(paths: Paths, path: str) -> list[str]:
    """The names in the directory ``path`` of the target system, resolved inside the root; [] when it is missing.
    Names only: each entry is opened (and checked) on its own."""
    if not HAVE_DIR_FD:
        host = resolve(paths, path) if paths.sandboxed or os.name != "nt" else Path(path)
        try:
            return sorted(os.listdir(host))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise _unreadable(path, exc) from None
    try:
        with _walk_from_root(paths) as walk:
            _walk(walk, path, directory=True)
            return sorted(os.listdir(walk.fd))
    except _Missing:
        return []
    except OSError as exc:
        raise _unreadable(path, exc) from None


@contextmanager
def opened(paths: Paths, path: str, within: str | None = None) -> Iterator[Opened | None]:
    """``with opened(paths, p) as f:`` — :func:`open_regular`, closed afterwards."""
    f = open_regular(paths, path, within)
    try:
        yield f
    finally:
        if f is not None:
            f.close()


# --- files asrctl is handed (inputs) and its own state files ------------------------------------------------------
#
# An operator's input (a passphrase file, --config, SHA256SUMS beside a bundle, a CSPrime config file) may live
# anywhere on the host, outside --root too, and may be a symbolic link the operator made on purpose; asrctl's own
# state files (lock, journal, history, identity) live in its state dir and are never links. Either can be a FIFO
# (opening one for reading blocks until a writer comes: `install` used to hang forever on a FIFO named SHA256SUMS),
# a device, a directory or huge (a 1 GB "passphrase" was read whole before it was refused). The same rules as for
# the target system's files apply: lstat first, opened non-blocking, checked again on the descriptor, bounded.


def open_host(path: str | os.PathLike[str], follow: bool = True) -> Opened | None:
    """Open a regular file of the host (not confined to the root) for reading: None when it does not exist,
    :class:`Refused` when it is not a regular file or cannot be read. ``follow=False`` refuses a symbolic link
    (asrctl's own files: a link there was not made by asrctl)."""
    name = os.fspath(path)
    try:
        before = os.stat(name, follow_symlinks=follow)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _unreadable(name, exc) from None
    if stat.S_ISLNK(before.st_mode):
        raise Refused(name, NOT_REGULAR, "is a symbolic link, not a regular file")
    _check_regular(name, before)
    flags = _O_READ_FILE if not follow else _O_READ_FILE & ~_O_NOFOLLOW
    try:
        fd = _open_final(name, lambda: os.open(name, flags))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(name, exc) from None
    return _opened_checked(name, fd, before, name, Path(name), [])


def read_host(path: str | os.PathLike[str], limit: int, follow: bool = True) -> bytes | None:
    """The whole of a small regular file of the host, at most ``limit`` bytes (:class:`Refused` ``too-large``
    beyond, without reading it); None when it does not exist. See :func:`open_host`."""
    opened = open_host(path, follow)
    if opened is None:
        return None
    with opened:
        return opened.read(limit)
