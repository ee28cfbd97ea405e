"""``asrctl register``: (re)register the installed agent; refuses to move a registered or cloned agent
without ``--force``."""

from __future__ import annotations

from collections.abc import Mapping

from asrctl.agent import factory
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.preconditions import require_privileges
from asrctl.lifecycle.registration import (
    check_connectivity,
    prepare_registration,
    registration_steps,
    same_registration,
)
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.staging import new_run_id
from asrctl.lifecycle.status import agent_json
from asrctl.output import Result
from asrctl.plan import Plan, apply, dry_run


def register(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    require_privileges(app)
    backend = factory.backend_for(app)
    current = backend.installed()
    if current is None:
        raise AsrctlError("ASRCTL-E044", "the Mobility Service is not installed; install it first")
    inp = req.registration
    if inp.no_register:
        raise AsrctlError("ASRCTL-E002", "--no-register makes no sense for register")
    run_id = new_run_id()
    if inp.cs_type == "CSPrime" and not inp.config_file:
        raise AsrctlError("ASRCTL-E085", "--cs-type CSPrime needs --config-file FILE (made by the appliance)")
    prepared = prepare_registration(app, inp, run_id, environ)
    assert prepared is not None
    result.data["agent"] = agent_json(backend, current)
    from asrctl import identity

    clone = identity.check_clone(app.paths, current.host_id)
    if clone and not inp.force:
        raise AsrctlError("ASRCTL-E052", clone)
    if current.registered:
        if same_registration(current, prepared.registration) and not clone and not inp.force:
            app.out.success(f"already registered with {current.cs_endpoint}; nothing to do")
            return result
        if not inp.force:
            raise AsrctlError(
                "ASRCTL-E048",
                f"the agent is registered with {current.cs_endpoint or 'another configuration server'}; "
                f"pass --force to register it with {prepared.registration.endpoint or 'the appliance'} instead",
            )
    check_connectivity(app, inp, result)
    plan = Plan("register", summary={"endpoint": inp.endpoint, "cs_type": inp.cs_type, "run_id": run_id})
    registration_steps(app, backend, prepared, str(current.install_dir), plan)
    plan.add(postchecks.after_register(backend, prepared.registration))
    if req.dry_run:
        return dry_run(plan, app.out, result)
    apply(plan, app.out, app.paths.state_dir)
    after = backend.installed()
    identity.record(app.paths, after.host_id if after else None)
    result.changed = True
    result.data["agent"] = agent_json(backend, after)
    app.out.success(f"registered with {prepared.registration.endpoint or 'the replication appliance'}")
    return result
