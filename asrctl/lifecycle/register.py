"""``asrctl register``: (re)register the installed agent; refuses to move a registered or cloned agent
without ``--force``. Decided under the host lock (plan.hold), after the inputs (and a passphrase) were read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from asrctl.agent import factory
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.outcome import carry_out, reported
from asrctl.lifecycle.preconditions import require_privileges
from asrctl.lifecycle.recovery import under_lock
from asrctl.lifecycle.registration import (
    check_connectivity,
    prepare_registration,
    registered_as,
    registration_steps,
    resolve_cs_type,
    same_registration,
)
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.staging import new_run_id
from asrctl.lifecycle.state import describe
from asrctl.lifecycle.steps import guard_existing
from asrctl.output import Result
from asrctl.plan import Plan, dry_run, nothing_to_do


def register(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    backend = factory.backend_for(app)
    with reported(result, backend):
        require_privileges(app)
        inp = req.registration
        if inp.no_register:
            raise AsrctlError("ASRCTL-E002", "--no-register makes no sense for register")
        inp = replace(inp, cs_type=resolve_cs_type(inp))  # from the inputs, never a silent guess
        run_id = new_run_id()
        if inp.cs_type == "CSPrime" and not inp.config_file:
            raise AsrctlError("ASRCTL-E085", "--cs-type CSPrime needs --config-file FILE (made by the appliance)")
        prepared = prepare_registration(app, inp, run_id, environ)
        assert prepared is not None
        with under_lock(app, backend, "register", req.dry_run, result) as (session, before):
            before.refuse_unreadable()
            current = before.agent
            if current is None and before.half_installed:
                raise AsrctlError("ASRCTL-E051", f"{describe(before)}: there is no agent to register")
            if current is None:
                raise AsrctlError("ASRCTL-E044", "the Mobility Service is not installed; install it first")
            from asrctl import identity

            clone = identity.check_clone(app.paths, current.host_id)
            if clone and not inp.force:
                raise AsrctlError("ASRCTL-E052", clone)
            if current.registered:
                if same_registration(current, prepared.registration) and not clone and not inp.force:
                    app.out.success(f"already registered with {current.cs_endpoint}; nothing to do")
                    return nothing_to_do(result, req.dry_run)
                if not inp.force:
                    raise AsrctlError(
                        "ASRCTL-E048",
                        f"the agent is registered with {current.cs_endpoint or 'another configuration server'}; "
                        f"pass --force to register it with {prepared.registration.endpoint or 'the appliance'} "
                        "instead",
                    )
            if current.registered and not same_registration(current, prepared.registration):
                prepared.registration = replace(prepared.registration, replace_existing=True)  # --force, above
            check_connectivity(app, inp, result)
            plan = Plan("register", summary={"endpoint": inp.endpoint, "cs_type": inp.cs_type, "run_id": run_id})
            registration_steps(app, backend, prepared, str(current.install_dir), plan)
            guard_existing(backend, current, [s for s in plan.steps if s.id == "register"])
            plan.add(postchecks.after_register(backend, prepared.registration))
            if req.dry_run:
                return dry_run(plan, app.out, result)
            carry_out(app, backend, plan, session, result, before, registered_as(prepared.registration))
            after = backend.installed()
            identity.record(app.paths, after.host_id if after else None)
            app.out.success(f"registered with {prepared.registration.endpoint or 'the replication appliance'}")
            return result
