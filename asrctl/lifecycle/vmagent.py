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
from asrctl.plan import Plan, apply, collect_warnings, dry_run


def status(app: App) -> Result:
    """``asrctl vm-agent status``. Read-only."""
    st = vmagent.status(app, factory.backend_for(app))
    return Result(app.command, data={"vm_agent": st.as_json()})


def install(app: App, dry_run_only: bool, yes: bool, confirm: Callable[[str], bool]) -> Result:
    """``asrctl vm-agent install``."""
    result = Result(app.command)
    backend = factory.backend_for(app)
    before = vmagent.status(app, backend)
    result.data["vm_agent"] = before.as_json()
    if before.installed:
        app.out.success(f"the Azure VM agent is installed{f' ({before.version})' if before.version else ''}")
        return result
    require_privileges(app)
    steps = vmagent.vm_agent_steps(app, backend, None, strict=True)
    if not steps:
        app.out.success("the Azure VM agent comes with the installed Mobility Service; nothing to do")
        return result
    plan = Plan("vm-agent install", steps=steps)
    if dry_run_only:
        return dry_run(plan, app.out, result)
    if not yes and not confirm(f"{steps[-1].describe}?"):
        app.out.info("Nothing was changed.")
        result.data["declined"] = True
        return result
    applied = apply(plan, app.out, app.paths.state_dir)
    result.changed = True
    collect_warnings(applied, result)
    after = vmagent.status(app, backend)
    result.data["vm_agent"] = after.as_json()
    for w in result.warnings:
        app.out.warn(w)
    app.out.success(f"Azure VM agent installed{f' ({after.version})' if after.version else ''}")
    return result
