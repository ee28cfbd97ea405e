"""Run asrctl with a pause at one of its own steps, for the fault-injection suite (a test tool, never shipped).

    python tests/faults/harness.py ASRCTL-ARGS...

``ASRCTL_FAULT_PAUSE=<step id>:<journal status>`` (e.g. ``unpack:started``, ``install:undone``,
``passphrase:done``) stops asrctl right after its journal records that status for that step: the journal on disk
says exactly that, as a killed run's would. It writes ``$ASRCTL_FAULT_DIR/asrctl.<step>.<status>.ready`` (its pid)
and waits until ``….go`` exists or a signal ends it — SIGTERM and SIGINT go through asrctl's own handlers (the
pause is an ordinary interruptible wait), SIGKILL kills it where it stands. The vendor tools' pause is the
simulators' ``ASR_SIM_PAUSE`` (docs/SIMULATORS.md); the two together reach every step of every verb.

``ASRCTL_FAULT_JOURNAL_FAIL=<errno name>[:<after>]`` makes every journal write after the first ``after`` fail with
that error (ENOSPC, EROFS), where a real full file system would be too coarse (it fails the lock first).
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

POLL = 0.01


def _pause_at(step_id: str, status: str) -> None:
    wanted = os.environ.get("ASRCTL_FAULT_PAUSE", "")
    if f"{step_id}:{status}" not in {p.strip() for p in wanted.split(",")}:
        return
    where = Path(os.environ["ASRCTL_FAULT_DIR"])
    ready = where / f"asrctl.{step_id}.{status}.ready"
    go = where / f"asrctl.{step_id}.{status}.go"
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, ready)
    while not go.exists():
        time.sleep(POLL)  # interruptible: asrctl's SIGTERM/SIGINT handlers raise here
    ready.unlink(missing_ok=True)
    go.unlink(missing_ok=True)


def _install() -> None:
    from asrctl.system import journal

    original_step = journal.Journal.step

    def step(self: journal.Journal, step_id: str, describe: str, status: str, **extra: object) -> None:
        original_step(self, step_id, describe, status, **extra)
        _pause_at(step_id, status)

    journal.Journal.step = step  # type: ignore[method-assign]

    failing = os.environ.get("ASRCTL_FAULT_JOURNAL_FAIL", "")
    if failing:
        name, _, after = failing.partition(":")
        number = getattr(errno, name)
        left = [int(after or 0)]
        original_write = journal.atomic_write

        def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
            if path.name == "journal.json":
                if left[0] <= 0:
                    raise OSError(number, os.strerror(number), str(path))
                left[0] -= 1
            original_write(path, text, mode)

        journal.atomic_write = atomic_write  # type: ignore[assignment]


if __name__ == "__main__":
    _install()
    from asrctl.cli import run

    sys.exit(run(sys.argv[1:]))
