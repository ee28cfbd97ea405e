"""``asrctl uninstall``: Microsoft's uninstaller, after saying what goes and asking (unless ``-Y``).

The question is asked before the host lock is taken (a person may take minutes to answer); the decision is made
under the lock from the state read then, and if the agent is no longer the one the question named, nothing is
removed (``ASRCTL-E070``)."""

from __future__ import annotations

from collections.abc import Callable

from asrctl.agent import factory
from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.outcome import carry_out, reported
from asrctl.lifecycle.preconditions import require_privileges
from asrctl.lifecycle.recovery import under_lock
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.state import HostState, describe, observe
from asrctl.lifecycle.steps import guard_existing, settle_uninstall
from asrctl.output import Result
from asrctl.plan import Plan, Session, Step, collect_warnings, dry_run, nothing_to_do

RESTART = "restart the machine before you configure replication for it again (Microsoft's advice)"


def uninstall(app: App, req: Request, confirm: Callable[[str], bool]) -> Result:
    result = Result(app.command)
    backend = factory.backend_for(app)
    with reported(result, backend):
        require_privileges(app)
        asked: HostState | None = None
        if not req.dry_run and not req.yes:
            seen = observe(backend)
            if seen.agent is not None or seen.half_installed:
                _show(app, backend, seen)
                question = (
                    f"Remove Mobility Service {seen.agent.version}?"
                    if seen.agent is not None
                    else "Remove what is left of the half-installed Mobility Service?"
                )
                if not confirm(question):
                    app.out.info("Nothing was changed.")
                    result.data["agent"] = seen.as_json()
                    result.data["declined"] = True
                    return result
                asked = seen
        with under_lock(app, backend, "uninstall", req.dry_run, result) as (session, before):
            if before.unreadable_code == "ASRCTL-E115":
                before.refuse_unreadable()  # never act on what a hostile or broken file points to
            current = before.agent
            if before.half_installed:
                return _repair(app, backend, req, session, before, asked, result)
            if current is None:
                app.out.success("the Mobility Service is not installed; nothing to do")
                return nothing_to_do(result, req.dry_run)
            if asked is not None and asked.key()[:3] != before.key()[:3]:
                raise AsrctlError(
                    "ASRCTL-E070",
                    f"you were asked about {describe(asked)}, but the host now has {describe(before)}; nothing was "
                    "removed",
                )
            plan = Plan("uninstall", summary={"version": current.version, "install_dir": str(current.install_dir)})
            steps = guard_existing(backend, current, backend.uninstall_steps(current))
            for step in steps:
                if step.id == "uninstall" and step.abort is None:
                    step.abort = settle_uninstall(backend, app.out.warn)
                    step.abort_describe = (
                        "start the agent's services again, or, once its files are gone, remove what is left"
                    )
            plan.extend(steps)
            plan.add(postchecks.after_uninstall(backend, current))
            return _remove(
                app, backend, req, plan, session, before, asked, result, f"Mobility Service {current.version} removed"
            )


def _repair(
    app: App,
    backend: AgentBackend,
    req: Request,
    session: Session,
    before: HostState,
    asked: HostState | None,
    result: Result,
) -> Result:
    """``uninstall -Y`` of a half-installed agent (an unreadable version file, or the agent's files without one):
    remove what is left, Microsoft's scripts first (``AgentBackend.remove_remains``). This is what the error for a
    half-installed agent (``ASRCTL-E051``) tells people to run, so it must not itself refuse with that error."""
    if asked is not None and not asked.half_installed:
        raise AsrctlError(
            "ASRCTL-E070",
            f"you were asked about {describe(asked)}, but the host now has {describe(before)}; nothing was removed",
        )
    plan = Plan("uninstall", summary={"repair": describe(before)})

    def remove() -> dict[str, object]:
        return {"removed": backend.remove_remains()}

    plan.add(Step("remove-remains", f"Remove what is left of the agent ({describe(before)})", remove))
    plan.add(postchecks.after_repair(backend))
    return _remove(
        app, backend, req, plan, session, before, asked, result, "what was left of the Mobility Service was removed"
    )


def _remove(
    app: App,
    backend: AgentBackend,
    req: Request,
    plan: Plan,
    session: Session,
    before: HostState,
    asked: HostState | None,
    result: Result,
    done: str,
) -> Result:
    """The end both removals share: the plan shown (or only shown, with --dry-run), carried out to "absent", the
    host's identity forgotten, and the restart it needs said the same way everywhere."""
    if req.dry_run:
        _show(app, backend, before)
        return dry_run(plan, app.out, result)
    if asked is None:
        _show(app, backend, before)  # a confirmed run showed it before asking
    applied = carry_out(app, backend, plan, session, result, before, lambda s: s.absent)
    collect_warnings(applied, result)
    from asrctl import identity

    identity.forget(app.paths)
    result.reboot_required = True  # it says "restart": reboot_required (3010 with --exit-codes msi) agrees
    result.warnings.append(RESTART)
    app.out.success(done)
    return result


def _show(app: App, backend: AgentBackend, state: HostState) -> None:
    agent = state.agent
    if agent is None:
        p = state.presence
        app.out.keyvalues(
            "This removes what is left of a half-installed Mobility Service",
            [
                ("Version file", p.marker or "missing"),
                ("Agent files", p.files or "missing"),
                ("Why", state.unreadable or "the version file and the agent's files do not match"),
            ],
        )
        return
    app.out.keyvalues(
        "This removes",
        [
            ("Mobility Service", agent.version),
            ("Install dir", agent.install_dir),
            ("Registration", agent.cs_endpoint if agent.registered else "not registered"),
            ("Services", ", ".join(s.name for s in state.services if s.running) or "none running"),
        ],
    )
