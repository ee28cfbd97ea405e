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
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.state import HostState, describe, observe
from asrctl.lifecycle.steps import guard_existing
from asrctl.output import Result
from asrctl.plan import Plan, collect_warnings, dry_run, hold, nothing_to_do

RESTART = "restart the machine before you configure replication for it again (Microsoft's advice)"


def uninstall(app: App, req: Request, confirm: Callable[[str], bool]) -> Result:
    result = Result(app.command)
    backend = factory.backend_for(app)
    with reported(result, backend):
        require_privileges(app)
        asked: HostState | None = None
        if not req.dry_run and not req.yes:
            seen = observe(backend)
            if seen.agent is not None:
                _show(app, backend, seen)
                if not confirm(f"Remove Mobility Service {seen.agent.version}?"):
                    app.out.info("Nothing was changed.")
                    result.data["agent"] = seen.as_json()
                    result.data["declined"] = True
                    return result
                asked = seen
        with hold(app.paths.state_dir, "uninstall", app.out, req.dry_run) as session:
            before = observe(backend)
            result.data["agent"] = before.as_json()
            if before.unreadable is not None:
                raise AsrctlError("ASRCTL-E051", before.unreadable)
            current = before.agent
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
            plan.extend(guard_existing(backend, current, backend.uninstall_steps(current)))
            plan.add(postchecks.after_uninstall(backend, current))
            if req.dry_run:
                _show(app, backend, before)
                return dry_run(plan, app.out, result)
            if asked is None:
                _show(app, backend, before)
            applied = carry_out(app, backend, plan, session, result, before, lambda s: s.absent)
            collect_warnings(applied, result)
            from asrctl import identity

            identity.forget(app.paths)
            result.reboot_required = True  # it says "restart": reboot_required (3010 with --exit-codes msi) agrees
            result.warnings.append(RESTART)
            app.out.success(f"Mobility Service {current.version} removed")
            return result


def _show(app: App, backend: AgentBackend, state: HostState) -> None:
    agent = state.agent
    assert agent is not None
    app.out.keyvalues(
        "This removes",
        [
            ("Mobility Service", agent.version),
            ("Install dir", agent.install_dir),
            ("Registration", agent.cs_endpoint if agent.registered else "not registered"),
            ("Services", ", ".join(s.name for s in state.services if s.running) or "none running"),
        ],
    )
