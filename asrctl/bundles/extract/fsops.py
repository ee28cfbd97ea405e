"""File-system helpers around an extraction: opening the bundle, the private staging directory, the final
no-replace rename, and removal that a second Ctrl-C cannot interrupt."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from asrctl.errors import AsrctlError
from asrctl.system.signals import shielded

LOG = logging.getLogger("asrctl.extract")

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_Renameat2 = Callable[[int, bytes, int, bytes, int], int]
_renameat2: _Renameat2 | None = None
_renameat2_loaded = False


def open_bundle(path: Path) -> int:
    """A read-only descriptor on a non-empty regular file (``O_NONBLOCK``: a FIFO named like a bundle must not
    hang the open). Missing: ``ASRCTL-E022``; anything else unreadable: ``ASRCTL-E033``."""
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


def make_staging(dest: Path) -> Path:
    """A fresh 0700 directory beside ``dest`` (same file system, so the final rename is atomic)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".asrctl-staging", dir=dest.parent))
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise AsrctlError(
            "ASRCTL-E040",
            f"cannot create a directory in {dest.parent}: {exc.strerror}",
            path=str(dest.parent),
        ) from None


def _load_renameat2() -> _Renameat2 | None:
    global _renameat2, _renameat2_loaded
    if not _renameat2_loaded:
        _renameat2_loaded = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            func = libc.renameat2
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            func.restype = ctypes.c_int
            _renameat2 = func
        except (OSError, AttributeError):
            _renameat2 = None
    return _renameat2


def rename_noreplace(src: Path, dst: Path) -> None:
    """rename(2) would silently replace an empty directory that appeared at ``dst`` meanwhile; renameat2 with
    RENAME_NOREPLACE cannot. Where it is missing, check and rename."""
    func = _load_renameat2()
    if func is not None:
        if func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise AsrctlError("ASRCTL-E037", f"{dst} already exists", path=str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        raise AsrctlError("ASRCTL-E037", f"{dst} already exists", path=str(dst))
    os.rename(src, dst)


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (renameat2 RENAME_EXCHANGE): a reader sees the old tree or the new one,
    never neither. False where the kernel or file system cannot (the caller then renames twice)."""
    func = _load_renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove_tree(path: Path) -> None:
    """Remove the staging directory, even if Ctrl-C is pressed again meanwhile."""
    with shielded(deliver=False):
        shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        LOG.warning("could not remove the staging directory %s", path)
