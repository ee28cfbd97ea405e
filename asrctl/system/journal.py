"""The journal: what the current (or last) changing run did, step by step, written atomically.

``<state>/journal.json`` holds the last run; ``<state>/history.jsonl`` keeps one line per finished run. A run
that died (power loss, kill -9) leaves ``status: running`` behind; the next run reports it and cleans up the
staging directories it recorded. Secrets never reach it: the data is masked field by field (``redact_data``) and
serialized afterwards, so the file stays valid JSON whatever the passphrase is.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asrctl.system.redact import redact_data

# asrctl's own identifiers, never a secret: masked, they would hide what a dead run left behind (redact_data).
OWN_FIELDS = frozenset(
    {
        "run_id",
        "command",
        "pid",
        "started",
        "ended",
        "status",
        "cleanup",
        "id",
        "children",
        "pgid",
        "sid",
        "create_time",
    }
)
LOG = logging.getLogger("asrctl")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


MAX_JOURNAL = 8 * 1024 * 1024  # a run's journal is a few KiB; anything this large is not one


class Journal:
    """The journal of the current (or last) run.

    Writing it is **best-effort**: a full or read-only state dir must never stop a rollback (ENOSPC while the
    journal was written used to skip the rollback entirely). A failed write is logged, remembered in
    :attr:`failures` and passed to :attr:`warn` once; the run goes on. Reading it is bounded and non-blocking, and
    a journal that is garbage, a directory or a FIFO reads as "no journal" with :attr:`damaged` saying why (a
    changing run moves it aside: :meth:`set_aside_if_damaged`).
    """

    def __init__(self, state_dir: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = state_dir / "journal.json"
        self.history = state_dir / "history.jsonl"
        self.data: dict[str, Any] = {}
        self.warn = warn
        self.failures: list[str] = []
        self.damaged: str | None = None

    def last(self) -> dict[str, Any] | None:
        from asrctl.system import rootfs

        self.damaged = None
        try:
            raw = rootfs.read_host(self.path, MAX_JOURNAL, follow=False)
        except rootfs.Refused as exc:
            self.damaged = exc.reason
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            self.damaged = "holds no valid JSON"
            return None
        if not isinstance(data, dict):
            self.damaged = "is not a JSON object"
            return None
        return data

    def set_aside_if_damaged(self) -> str | None:
        """Under the lock: a journal (or history) that cannot be read as one is moved out of the way (kept for a
        look), so it neither fails nor misleads every later run. Returns what was done, for a warning."""
        from asrctl.system.lock import set_aside

        said = []
        if self.last() is None and self.damaged is not None:
            said.append(f"{self.path} {self.damaged}: moved to {set_aside(self.path, self.damaged)}")
        try:
            st = os.lstat(self.history)
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            said.append(f"{self.history} is not a regular file: moved to {set_aside(self.history, 'not a file')}")
        return "; ".join(said) or None

    def begin(self, command: str, summary: dict[str, Any]) -> None:
        self.data = {
            "run_id": uuid.uuid4().hex[:12],
            "command": command,
            "pid": os.getpid(),
            "started": _now(),
            "status": "running",
            "summary": summary,
            "steps": [],
            "cleanup": [],
            "children": [],
        }
        self._save()

    @property
    def run_id(self) -> str | None:
        value = self.data.get("run_id")
        return value if isinstance(value, str) else None

    def note_cleanup(self, path: Path) -> None:
        """A directory the run creates and must remove; a later run removes it if this one dies."""
        self.data.setdefault("cleanup", []).append(str(path))
        self._save()

    def child(self, record: dict[str, Any]) -> None:
        """A vendor process this run started (its pid, process group, session and start time, system/runner.py):
        if this run is killed outright, the next one stops that tree first (system/orphans.py)."""
        children = self.data.setdefault("children", [])
        entry = next((c for c in children if c.get("pid") == record.get("pid")), None)
        if entry is None:
            children.append(dict(record))
        else:
            entry.update(record)
        self._save()

    def step(self, step_id: str, describe: str, status: str, **extra: Any) -> None:
        steps = self.data.setdefault("steps", [])
        entry = next((s for s in steps if s["id"] == step_id), None)
        if entry is None:
            entry = {"id": step_id, "describe": describe}
            steps.append(entry)
        entry["status"] = status
        entry[f"{status}_at"] = _now()
        entry.update(extra)
        self._save()

    def finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        self.data["status"] = status
        self.data["ended"] = _now()
        if error:
            self.data["error"] = error
        self._save()
        line = json.dumps(redact_data(self.data, OWN_FIELDS), sort_keys=True) + "\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
        try:
            # Non-blocking and never through a link: a FIFO put in its place must not hang the end of a run.
            fd = os.open(self.history, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(errno.EINVAL, "not a regular file", str(self.history))
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._failed(f"could not add this run to {self.history}: {exc.strerror or exc}")

    def _save(self) -> None:
        text = json.dumps(redact_data(self.data, OWN_FIELDS), indent=2, sort_keys=True) + "\n"
        try:
            atomic_write(self.path, text)
        except OSError as exc:
            self._failed(f"could not write the journal {self.path}: {exc.strerror or exc}")

    def _failed(self, message: str) -> None:
        LOG.warning("%s", message)
        first = not self.failures
        self.failures.append(message)
        if first and self.warn is not None:
            self.warn(message + " (the run goes on; if it is killed now, the next run cannot tell what it did)")
