"""``asrctl vm-agent status | install``: the verb around agent/vmagent.py's package and OS knowledge.

Status reports; install plans the steps agent/vmagent.py builds (strictly: a failure is an error here, while
inside install/upgrade it is only a warning), shows what it will do and asks first unless ``-Y``.
"""

from __future__ import annotations

from collections.abc import Callable

from asrctl.agent import factory, vmagent
from asrctl.app import App
from asrctl.lifecycle.preconditions import require_privileges
from asrctl.output import Result
from asrctl.plan import Plan, apply, collect_warnings, dry_run, hold, nothing_to_do


def status(app: App) -> Result:
    """``asrctl vm-agent status``. Read-only."""
    st = vmagent.status(app, factory.backend_for(app))
    return Result(app.command, data={"vm_agent": st.as_json()})


def install(app: App, dry_run_only: bool, yes: bool, confirm: Callable[[str], bool]) -> Result:
    """``asrctl vm-agent install``. The question is asked first; the decision is made again under the host lock
    (another run may have installed it meanwhile: then there is nothing to do)."""
    result = Result(app.command)
    backend = factory.backend_for(app)
    before = vmagent.status(app, backend)
    result.data["vm_agent"] = before.as_json()
    if before.installed:
        app.out.success(f"the Azure VM agent is installed{f' ({before.version})' if before.version else ''}")
        return nothing_to_do(result, dry_run_only)
    require_privileges(app)
    steps = vmagent.vm_agent_steps(app, backend, None, strict=True)
    if not steps:
        app.out.success("the Azure VM agent comes with the installed Mobility Service; nothing to do")
        return nothing_to_do(result, dry_run_only)
    plan = Plan("vm-agent install", steps=steps)
    if dry_run_only:
        return dry_run(plan, app.out, result)
    if not yes and not confirm(f"{steps[-1].describe}?"):
        app.out.info("Nothing was changed.")
        result.data["declined"] = True
        return result
    with hold(app.paths.state_dir, "vm-agent install", app.out) as session:
        now = vmagent.status(app, backend)
        if now.installed:
            result.data["vm_agent"] = now.as_json()
            app.out.success(f"the Azure VM agent is installed{f' ({now.version})' if now.version else ''}")
            return result
        plan = Plan("vm-agent install", steps=vmagent.vm_agent_steps(app, backend, None, strict=True))
        applied = apply(plan, app.out, session)
    result.changed = True
    collect_warnings(applied, result)
    after = vmagent.status(app, backend)
    result.data["vm_agent"] = after.as_json()
    app.out.success(f"Azure VM agent installed{f' ({after.version})' if after.version else ''}")
    return result
