"""After a run that was killed outright: what the next changing run puts right on the host, under the lock.

plan.hold already stopped the killed run's orphaned vendor tools and removed its staging copy and private files
(for every changing verb, also one that then finds nothing to do). What is left is the agent's side, which only
the lifecycle knows how to mend:

- a vendor lock left by a killed ``uninstall.sh`` (``.uninstall.lck``, whose pid is gone) is cleared, with a
  warning (Microsoft's script refuses to run while it is there, so every later ``uninstall -Y`` failed);
- a killed upgrade, register or uninstall had no chance to start the agent's services again (the undo an
  interrupted upgrade gets): they are started now, so the host holds the previous agent, whole, before the verb
  decides anything — except for ``uninstall``, which is about to stop them anyway;
- a killed *fresh install* is different: what it left is half an agent the next ``install`` removes first
  (:func:`killed_fresh_install`; lifecycle/install.py plans it), and ``uninstall -Y`` removes it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle.state import HostState, observe
from asrctl.output import Result
from asrctl.plan import Session, hold
from asrctl.system.journal import Journal


def killed_fresh_install(dead_run: dict[str, Any] | None) -> dict[str, Any] | None:
    """The journal of a fresh install whose process died (power loss, SIGKILL) while Microsoft's installer ran, or
    while its rollback removed what the installer left.

    ``dead_run`` is a journal that still said "running" while the host lock was free (plan.hold recovered it and
    marked it ``died``), or the last journal, marked so by an earlier run that stopped before it could remove the
    half-installed agent. Its abort action never ran (or never finished), so the agent may be half there; the next
    install removes that first."""
    last = dead_run
    if not last or last.get("command") != "install":
        return None
    if last.get("status") != "running" and not last.get("died"):
        return None
    summary = last.get("summary") or {}
    if not summary.get("fresh_install"):
        return None
    unfinished = ("started", "interrupted", "failed", "undo-failed")
    if not any(s.get("id") == "install" and s.get("status") in unfinished for s in last.get("steps") or []):
        return None
    return last


def last_killed_install(app: App, session: Session) -> dict[str, Any] | None:
    """The killed fresh install this run must clean up after: the one recovered just now, or the last journal's."""
    return killed_fresh_install(session.dead_run) or killed_fresh_install(Journal(app.paths.state_dir).last())


def mend(app: App, backend: AgentBackend, session: Session, command: str) -> None:
    """Under the lock, before the verb reads the state it decides on (the module docstring says what and why)."""
    if not session.locked:
        return
    for said in backend.clear_stale_locks():
        app.out.warn(said)
    dead = session.dead_run
    if dead is None or command == "uninstall" or killed_fresh_install(dead) is not None:
        return
    state = observe(backend)
    if state.agent is None or not state.stopped or state.presence.files is None:
        return
    app.out.warn(
        f"the killed run ({dead.get('command')}, pid {dead.get('pid')}) left the agent's services stopped "
        f"({', '.join(state.stopped)}); starting them again"
    )
    try:
        backend.start_services(state.agent)
    except AsrctlError as exc:
        app.out.warn(f"they did not start: {exc.message}")


@contextlib.contextmanager
def under_lock(
    app: App, backend: AgentBackend, command: str, dry_run: bool, result: Result
) -> Iterator[tuple[Session, HostState]]:
    """How every changing verb begins: the host lock, then what a killed run left mended, then the host read (the
    state it decides on, also the result's ``agent`` until the run changes it). Deciding before the lock is how a
    concurrent run once removed a good agent."""
    with hold(app.paths.state_dir, command, app.out, dry_run) as session:
        mend(app, backend, session, command)
        before = observe(backend)
        result.data["agent"] = before.as_json()
        yield session, before
