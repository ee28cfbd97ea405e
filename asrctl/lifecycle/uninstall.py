"""``asrctl uninstall``: Microsoft's uninstaller, after saying what goes and asking (unless ``-Y``)."""

from __future__ import annotations

from collections.abc import Callable

from asrctl.agent import factory
from asrctl.app import App
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.preconditions import require_privileges
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.status import agent_json
from asrctl.output import Result
from asrctl.plan import Plan, apply, collect_warnings, dry_run


def uninstall(app: App, req: Request, confirm: Callable[[str], bool]) -> Result:
    result = Result(app.command)
    require_privileges(app)
    backend = factory.backend_for(app)
    current = backend.installed()
    if current is None:
        app.out.success("the Mobility Service is not installed; nothing to do")
        result.data["agent"] = agent_json(backend, None)
        return result
    result.data["agent"] = agent_json(backend, current)
    plan = Plan("uninstall", summary={"version": current.version, "install_dir": str(current.install_dir)})
    for step in backend.uninstall_steps(current):
        plan.add(step)
    plan.add(postchecks.after_uninstall(backend, current))
    app.out.keyvalues(
        "This removes",
        [
            ("Mobility Service", current.version),
            ("Install dir", current.install_dir),
            ("Registration", current.cs_endpoint if current.registered else "not registered"),
            ("Services", ", ".join(s.name for s in backend.services(current) if s.running) or "none running"),
        ],
    )
    if req.dry_run:
        return dry_run(plan, app.out, result)
    if not req.yes and not confirm(f"Remove Mobility Service {current.version}?"):
        app.out.info("Nothing was changed.")
        result.data["declined"] = True
        return result
    applied = apply(plan, app.out, app.paths.state_dir)
    collect_warnings(applied, result)
    from asrctl import identity

    identity.forget(app.paths)
    result.changed = True
    result.data["agent"] = agent_json(backend, None)
    result.warnings.append("restart the machine before you configure replication for it again (Microsoft's advice)")
    for w in result.warnings:
        app.out.warn(w)
    app.out.success(f"Mobility Service {current.version} removed")
    return result
