"""The host lock: one changing asrctl run at a time.

An OS file lock (flock on POSIX, msvcrt on Windows) on ``<state>/lock``; the file names the holder (pid,
command, start time). The OS drops the lock when its holder dies, so a lock file whose lock is free is stale:
the next run takes it over and says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import IO, Any

from asrctl.errors import AsrctlError, from_os_error

LOG = logging.getLogger("asrctl")


def _try_lock(fh: IO[str]) -> bool:
    if os.name == "posix":
        import fcntl

        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    import msvcrt

    try:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid)
    except (OSError, ValueError):
        return False


MAX_HOLDER = 4096  # the holder record is a short JSON line; more is garbage


def set_aside(path: Path, why: str) -> Path:
    """Move one of asrctl's own files that is not what it should be (garbage, a directory, a FIFO) out of the way,
    keeping it for whoever wants to look, instead of failing every run until someone removes it by hand."""
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise from_os_error(exc, f"moving {path} ({why}) out of the way") from None
    LOG.warning("%s %s: moved to %s", path, why, aside)
    return aside


def _not_regular(path: Path) -> str | None:
    """Why ``path`` cannot be the lock file (it exists and is not a regular file), else None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise from_os_error(exc, f"reading {path}") from None
    if stat.S_ISREG(st.st_mode):
        return None
    kind = (
        "a directory"
        if stat.S_ISDIR(st.st_mode)
        else "a symbolic link"
        if stat.S_ISLNK(st.st_mode)
        else ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file")
    )
    return f"is {kind}"


class HostLock:
    def __init__(self, state_dir: Path, command: str) -> None:
        self.path = state_dir / "lock"
        self.command = command
        self._fh: IO[str] | None = None
        self.stale_holder: dict[str, Any] | None = None
        self.set_aside: str | None = None  # what was moved out of the way (a lock that was not a regular file)

    def read_holder(self) -> dict[str, Any] | None:
        """The holder's record, read bounded and non-blocking (never a FIFO, never a link); ``{"raw": ...}`` when it
        holds garbage, None when there is none."""
        from asrctl.system import rootfs

        try:
            data = rootfs.read_host(self.path, MAX_HOLDER, follow=False)
        except rootfs.Refused as exc:
            return {"raw": f"<{exc.reason}>"}
        if data is None:
            return None
        text = data.decode("utf-8", errors="replace")
        try:
            value = json.loads(text)
        except ValueError:
            return {"raw": text.strip()[:200]} if text.strip() else None
        return value if isinstance(value, dict) else {"raw": text.strip()[:200]}

    @staticmethod
    def held_by(state_dir: Path) -> dict[str, Any] | None:
        """Who holds the lock right now (its file's record, ``{}`` if unreadable), or None when it is free; the lock
        is not taken and nothing is written (``--dry-run`` changes nothing, not even the lock file). A shared
        ``flock`` probe: it fails only while a changing run holds the exclusive lock. POSIX only (None elsewhere)."""
        if os.name != "posix":
            return None
        import fcntl

        path = state_dir / "lock"
        try:
            # Non-blocking open: a FIFO put where the lock file belongs must not hang a dry run.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return HostLock(state_dir, "").read_holder() or {}
            except OSError:
                return None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> HostLock:
        """Take the lock. The state dir is created if needed; a lock "file" that is a directory, a FIFO or a link is
        moved aside (it cannot be a lock another run holds: asrctl only ever makes a regular file); a regular file
        holding garbage is taken over like a stale one. A state dir that cannot be written is ``ASRCTL-E110``/``E111``
        with what to fix, never a traceback."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        except OSError as exc:
            raise from_os_error(exc, f"creating asrctl's state directory {self.path.parent}") from None
        if not self.path.parent.is_dir():
            raise AsrctlError(
                "ASRCTL-E113", f"asrctl's state directory {self.path.parent} is not a directory", path=str(self.path)
            )
        wrong = _not_regular(self.path)
        if wrong is not None:
            self.set_aside = str(set_aside(self.path, wrong))
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise from_os_error(exc, f"opening the host lock {self.path}") from None
        fh = os.fdopen(fd, "r+", encoding="utf-8")
        if not _try_lock(fh):
            holder = self.read_holder() or {}
            fh.close()
            who = (
                f"pid {holder.get('pid', '?')} ({holder.get('command', '?')}, started {holder.get('started', '?')}"
                f" on {holder.get('host', '?')})"
            )
            raise AsrctlError(
                "ASRCTL-E042",
                f"another asrctl run holds {self.path}: {who}",
                holder=holder,
            )
        previous = self.read_holder()
        if previous and (
            previous.get("raw") is not None or (previous.get("pid") and previous.get("pid") != os.getpid())
        ):
            # The lock was free but the file names someone (or holds garbage): that run died without cleaning up.
            self.stale_holder = previous
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "command": self.command,
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "host": socket.gethostname(),
                    }
                )
            )
            fh.flush()
        except OSError as exc:
            fh.close()
            raise from_os_error(exc, f"writing the host lock {self.path}") from None
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
        except OSError:
            pass  # a full or read-only file system: the OS drops the lock anyway, and the record says who had it
        finally:
            self._fh.close()  # closing drops the OS lock
            self._fh = None

    def __enter__(self) -> HostLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
