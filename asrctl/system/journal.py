"""The journal: what the current (or last) changing run did, step by step, written atomically.

``<state>/journal.json`` holds the last run; ``<state>/history.jsonl`` keeps one line per finished run. A run
that died (power loss, kill -9) leaves ``status: running`` behind; the next run reports it and cleans up the
staging directories it recorded. Secrets never reach it: the data is masked field by field (``redact_data``) and
serialized afterwards, so the file stays valid JSON whatever the passphrase is.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from asrctl.system.redact import redact_data

# asrctl's own identifiers, never a secret: masked, they would hide what a dead run left behind (redact_data).
OWN_FIELDS = frozenset({"run_id", "command", "pid", "started", "ended", "status", "cleanup", "id"})


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


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "journal.json"
        self.history = state_dir / "history.jsonl"
        self.data: dict[str, Any] = {}

    def last(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

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
        }
        self._save()

    def note_cleanup(self, path: Path) -> None:
        """A directory the run creates and must remove; a later run removes it if this one dies."""
        self.data.setdefault("cleanup", []).append(str(path))
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
        try:
            with open(self.history, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(redact_data(self.data, OWN_FIELDS), sort_keys=True) + "\n")
        except OSError:
            pass

    def _save(self) -> None:
        atomic_write(self.path, json.dumps(redact_data(self.data, OWN_FIELDS), indent=2, sort_keys=True) + "\n")
