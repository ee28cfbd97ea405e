"""The host lock: one changing asrctl run at a time.

An OS file lock (flock on POSIX, msvcrt on Windows) on ``<state>/lock``; the file names the holder (pid,
command, start time). The OS drops the lock when its holder dies, so a lock file whose lock is free is stale:
the next run takes it over and says so.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from asrctl.errors import AsrctlError


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


class HostLock:
    def __init__(self, state_dir: Path, command: str) -> None:
        self.path = state_dir / "lock"
        self.command = command
        self._fh: IO[str] | None = None
        self.stale_holder: dict[str, Any] | None = None

    def read_holder(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return {"raw": text.strip()[:200]}
        return data if isinstance(data, dict) else None

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
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        if previous and previous.get("pid") and previous.get("pid") != os.getpid():
            # The lock was free but the file names someone: that run died without cleaning up.
            self.stale_holder = previous
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
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
        finally:
            self._fh.close()  # closing drops the OS lock
            self._fh = None

    def __enter__(self) -> HostLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
