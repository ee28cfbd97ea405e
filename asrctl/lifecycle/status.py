"""``asrctl status``: the installed agent, its health, a newer bundle, the last run, the VM agent, a pending
reboot. Read-only; no lock is taken (it never waits for, blocks or fails a changing run, and says when one is
under way).

``agent_json`` (lifecycle/state.py) is also how every other verb reports the agent it leaves behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asrctl.agent import factory
from asrctl.app import App
from asrctl.bundles.catalog import resolve_dirs, scan
from asrctl.errors import AsrctlError
from asrctl.lifecycle import health
from asrctl.lifecycle.state import HostState, agent_json, observe
from asrctl.output import Result
from asrctl.versions import release_cmp

__all__ = ["agent_json", "status", "health_facts", "check_error"]


def status(app: App) -> Result:
    from asrctl.system.journal import Journal

    result = Result(app.command)
    backend = factory.backend_for(app)
    state = observe(backend)
    agent = state.agent
    result.data["agent"] = state.as_json()
    if agent:
        result.data["agent"]["details"] = agent.details
    plat = app.platform
    newer = None
    if plat.os_tag:
        try:
            dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
            best = scan(dirs).newest_for(plat.os_tag)
        except AsrctlError as exc:
            result.warnings.append(f"bundle dirs: {exc.message}")
            best = None
        if best is not None and (agent is None or release_cmp(agent.version, best.version) < 0):
            newer = {"path": str(best.path), "version": best.version}
    result.data["newer_bundle"] = newer
    result.data["platform"] = {"os_tag": plat.os_tag, "supported": plat.supported, "reason": plat.reason}
    last = Journal(app.paths.state_dir).last()
    if last:
        result.data["last_run"] = {k: last.get(k) for k in ("command", "status", "started", "ended", "run_id")}
    from asrctl.agent import vmagent

    result.data["vm_agent"] = vmagent.status(app, backend).as_json()
    driver: tuple[health.Reason, ...] = ()
    if app.facts.os_family == "linux":
        from asrctl.kernels.report import driver_report

        result.data["driver"], found = driver_report(app.paths, backend.runner, agent, plat.os_tag, app.facts.kernel)
        driver = tuple(health.Reason(rid, severity, message) for rid, severity, message in found)
    facts = health_facts(app, state, last, backend.pending_reboot(), driver)
    verdict = health.verdict(facts)
    result.data["health"] = verdict.as_json()
    for reason in verdict.reasons:
        if reason.id in ("interrupted_run", "reboot_pending", "leftovers", "run_in_progress"):
            result.warnings.append(reason.message)
    return result


def health_facts(
    app: App,
    state: HostState,
    last: dict[str, Any] | None,
    pending_reboot: str | None,
    driver: tuple[health.Reason, ...] = (),
) -> health.Facts:
    """Gather what health is judged from: the agent's state, what asrctl recorded and left, the lock, and the filter
    driver's reasons (asrctl/kernels/verdict.py)."""
    from asrctl.system.lock import HostLock, pid_alive

    state_dir = app.paths.state_dir
    busy = HostLock.held_by(state_dir)
    dead = None
    if busy is None and last and last.get("status") == "running" and not pid_alive(int(last.get("pid") or 0)):
        dead = last
    leftovers: tuple[str, ...] = ()
    if busy is None:
        leftovers = tuple(str(p) for p in _children(state_dir / "staging") + _children(state_dir / "private"))
    return health.Facts(
        state=state,
        registration_recorded=_recorded(app, state),
        dead_run=dead,
        leftovers=leftovers,
        busy=busy,
        pending_reboot=pending_reboot,
        driver=driver,
    )


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _recorded(app: App, state: HostState) -> bool:
    """identity.json names this agent's host id: asrctl registered it (and nothing since said to forget it)."""
    from asrctl import identity

    agent = state.agent
    return agent is not None and bool(agent.host_id) and identity.recorded_host_id(app.paths) == agent.host_id


def check_error(verdict: dict[str, Any]) -> AsrctlError | None:
    """``status --check``: the error a health that is not ok exits with (9 degraded, 10 broken), else None."""
    if verdict["status"] == health.OK:
        return None
    code = "ASRCTL-E074" if verdict["status"] == health.BROKEN else "ASRCTL-E073"
    reasons = "; ".join(r["message"] for r in verdict["reasons"])
    return AsrctlError(code, f"health: {verdict['status']}: {reasons}", reasons=[r["id"] for r in verdict["reasons"]])
