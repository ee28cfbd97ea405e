"""The vendor processes of a run that was killed outright (SIGKILL, a crash; after a power loss there are none).

Every vendor tool asrctl starts runs in its own session (system/runner.py), so when asrctl is killed the tool
carries on, orphaned: an installer still copying files while the next run "recovers" beside it, a configurator
still holding its lock. The journal records each child (pid = process group = session, start time, the run's
id); the next run, under the host lock, stops what is left of those trees *before* it cleans up.

A process is taken for part of the dead run's tree only if all of these hold, so a reused pid or an unrelated
process is never touched:

- its session is the recorded child's session (the agent's own services leave it: they are started in a session
  of their own, and are never stopped here);
- it was started no earlier than the recorded child (a process older than the child cannot be its descendant);
- its environment carries the dead run's ``ASRCTL_RUN_ID`` (inherited by everything the child starts); only where
  the environment cannot be read at all, the session leader must be the recorded child itself (same start time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asrctl.system.runner import RUN_ENV

LOG = logging.getLogger("asrctl")
GRACE = 5.0
TIME_SLACK = 0.05  # create_time is rounded to clock ticks


@dataclass(frozen=True)
class Orphan:
    pid: int
    name: str
    session: int

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name})"


def find(children: Iterable[dict[str, Any]], run_id: str | None) -> list[Orphan]:
    """The live processes of the recorded children's sessions that belong to the run ``run_id`` (module docstring)."""
    if os.name != "posix":
        return []
    import psutil

    wanted: dict[int, float | None] = {}
    for child in children:
        sid = child.get("sid")
        if isinstance(sid, int) and sid > 1:
            created = child.get("create_time")
            wanted[sid] = float(created) if isinstance(created, int | float) else None
    if not wanted:
        return []
    me = os.getpid()
    found: list[Orphan] = []
    for proc in psutil.process_iter(["pid", "name", "create_time", "status"]):
        try:
            pid = proc.info["pid"]
            if pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            sid = os.getsid(pid)
            if sid not in wanted:
                continue
            since = wanted[sid]
            if since is not None and proc.info["create_time"] + TIME_SLACK < since:
                continue
            if not _ours(proc, sid, since, run_id):
                continue
            found.append(Orphan(pid, proc.info["name"] or "?", sid))
        except (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError, PermissionError):
            continue
        except psutil.AccessDenied:
            continue
    return found


def _ours(proc: Any, sid: int, since: float | None, run_id: str | None) -> bool:
    import psutil

    try:
        env = proc.environ()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        env = None
    if env is not None and env.get(RUN_ENV) is not None:
        return run_id is not None and env.get(RUN_ENV) == run_id
    if env is not None:
        return False  # a readable environment without the mark: not started by a run of asrctl
    # The environment cannot be read: only the recorded child itself, alive with its own start time, is taken.
    if since is None:
        return False
    try:
        leader = psutil.Process(sid)
        return abs(leader.create_time() - since) <= TIME_SLACK
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def stop(orphans: list[Orphan], grace: float = GRACE) -> list[Orphan]:
    """SIGTERM to each (its traps run: Microsoft's uninstall.sh removes its lock), SIGKILL after ``grace``
    seconds; returns those that were still there to stop. Waits until they are gone (bounded)."""
    if not orphans:
        return []
    import psutil

    procs = []
    for orphan in orphans:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            proc = psutil.Process(orphan.pid)
            proc.send_signal(signal.SIGTERM)
            procs.append(proc)
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            proc.kill()
    if alive:
        psutil.wait_procs(alive, timeout=grace)
    LOG.warning("stopped the killed run's vendor processes: %s", ", ".join(str(o) for o in orphans))
    return orphans
