"""``asrctl install``: preconditions → bundle → digest → plan (stage, install, register, VM agent, verify) → apply.

The inputs are checked (and a passphrase read) first; then the host lock is taken and the host's state read, and
everything after that is decided under the lock (plan.hold): a concurrent run can neither change the state this
run decided on nor have its agent removed by this run's undo.

An installed agent of the same version is not reinstalled: install converges on the registration asked for, and
refuses (``ASRCTL-E071``) when the agent is registered elsewhere. A fresh install killed outright (power loss,
SIGKILL) is found in the journal and its leftovers removed first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from asrctl.agent import factory
from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.lifecycle import kernelcheck, postchecks, prereq
from asrctl.lifecycle.outcome import carry_out, reported
from asrctl.lifecycle.preconditions import (
    check_disk,
    choose_bundle,
    digest_for,
    require_privileges,
    require_supported,
)
from asrctl.lifecycle.recovery import last_killed_install, under_lock
from asrctl.lifecycle.registration import (
    PreparedRegistration,
    check_connectivity,
    drift,
    prepare_registration,
    registered_as,
    registration_steps,
    same_registration,
    with_cs_type,
)
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.staging import new_run_id, stage, with_run_dir
from asrctl.lifecycle.state import HostState, describe, whole
from asrctl.lifecycle.steps import fresh_install_steps, vm_agent
from asrctl.output import Result
from asrctl.plan import Plan, Session, Step, collect_warnings, dry_run, nothing_to_do
from asrctl.versions import release_cmp


def install(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    backend = factory.backend_for(app)
    with reported(result, backend):
        require_privileges(app)
        tag = require_supported(app)
        bundle = choose_bundle(app, req.bundle, tag)
        result.data["bundle"] = {"path": str(bundle.path), "version": bundle.version, "os_tag": bundle.os_tag}
        run_id = new_run_id()
        req = with_cs_type(req)  # from the inputs, never a silent guess
        prepared = prepare_registration(app, req.registration, run_id, environ)
        with under_lock(app, backend, "install", req.dry_run, result) as (session, before):
            return _decide(app, req, backend, bundle, tag, prepared, run_id, session, before, result)


def _decide(
    app: App,
    req: Request,
    backend: AgentBackend,
    bundle: Bundle,
    tag: str,
    prepared: PreparedRegistration | None,
    run_id: str,
    session: Session,
    before: HostState,
    result: Result,
) -> Result:
    killed = last_killed_install(app, session)
    if killed is not None and before.agent is not None and not whole(before):
        if release_cmp(before.agent.version, str((killed.get("summary") or {}).get("version") or "")) != 0:
            killed = None  # a whole agent of another version came since: not what the killed run left
    if not killed:
        if before.unreadable_code == "ASRCTL-E115":
            before.refuse_unreadable()
        if before.half_installed:
            # Half an agent that no asrctl run explains (someone else's install, a copy, a crash before asrctl):
            # the installer never runs over it. `uninstall -Y` removes it (what ASRCTL-E051's remedy says).
            raise AsrctlError(
                "ASRCTL-E051",
                f"{describe(before)}; no asrctl run explains it, so install does not run over it",
            )
    # What a killed install left is not an install to keep or upgrade: it is removed below, then installed anew.
    current = None if killed else before.agent
    if current is not None:
        order = release_cmp(current.version, bundle.version)
        if order < 0:
            raise AsrctlError(
                "ASRCTL-E046",
                f"Mobility Service {current.version} is installed; {bundle.path.name} is newer: run `asrctl upgrade`",
            )
        if order > 0:
            raise AsrctlError(
                "ASRCTL-E045",
                f"Mobility Service {current.version} is installed, newer than {bundle.version}; nothing to install",
            )
        mismatch = drift(current, req.registration, prepared)
        if mismatch is not None:
            raise mismatch
        # Same version: converge on the registration asked for, else nothing to do.
        if prepared is None or same_registration(current, prepared.registration):
            app.out.success(f"Mobility Service {current.version} is already installed; nothing to do")
            return nothing_to_do(result, req.dry_run)
        plan = Plan("install", summary={"bundle": bundle.path.name, "action": "register", "run_id": run_id})
        check_connectivity(app, req.registration, result)
        registration_steps(app, backend, prepared, str(current.install_dir), plan)
        plan.add(postchecks.after_register(backend, prepared.registration))
        if req.dry_run:
            return dry_run(plan, app.out, result)
        carry_out(app, backend, plan, session, result, before, registered_as(prepared.registration))
        app.out.success(f"registered the installed Mobility Service {current.version}")
        return result

    options = req.options
    install_dir = options.install_dir or backend.default_install_dir()
    check_disk(app, install_dir)
    check_connectivity(app, req.registration, result)
    digest = digest_for(app, bundle, req.bundle)
    plan = Plan(
        "install",
        summary={
            "bundle": bundle.path.name,
            "version": bundle.version,
            "os_tag": tag,
            "run_id": run_id,
            "fresh_install": True,
            "install_dir": install_dir,
            "install_dir_existed": app.paths.host(install_dir).exists() if not killed else False,
        },
    )
    if killed:
        previous = killed.get("summary") or {}
        app.out.warn(
            f"the previous install (pid {killed.get('pid')}, started {killed.get('started')}) was killed while "
            "Microsoft's installer ran; the half-installed agent it left is removed first"
        )
        plan.summary["install_dir_existed"] = bool(previous.get("install_dir_existed"))
        killed_dir = str(previous.get("install_dir") or install_dir)
        killed_existed = bool(previous.get("install_dir_existed"))

        def remove_partial() -> dict[str, Any]:
            left = backend.remove_partial(killed_dir, killed_existed)
            if left:
                raise AsrctlError(
                    "ASRCTL-E051", "the agent a killed install left could not be removed: " + "; ".join(left)
                )
            return {"removed": killed_dir}

        plan.add(Step("remove-partial", "Remove the agent a killed install left half-done", remove_partial))
    staged = stage(app, backend, bundle, digest, run_id, plan)
    options = replace(options, run_dir=with_run_dir(app, run_id, plan))
    kernel_check, keep_list = kernelcheck.kernel_step(app, backend, bundle, tag, staged, result, req)
    plan.extend(kernel_check)  # the running and next-boot kernels against the bundle's own list, before any change
    plan.extend(prereq.steps(app, backend, staged, options))  # Microsoft's checks, before any change
    plan.extend(fresh_install_steps(backend, bundle, backend.install_steps(staged, options, False, None)))
    if prepared is not None:
        registration_steps(app, backend, prepared, install_dir, plan)
    elif options.cs_type == "CSPrime":
        plan.add(backend.config_input_step(install_dir))
    vm_agent(app, backend, bundle, plan, req.vm_agent)
    plan.add(postchecks.after_install(backend, bundle, prepared is not None))
    plan.extend(keep_list)
    if req.dry_run:
        return dry_run(plan, app.out, result)
    reached = _installed(bundle, prepared)
    applied = carry_out(app, backend, plan, session, result, before, reached)
    collect_warnings(applied, result)
    if prepared is not None:
        from asrctl import identity

        after = backend.installed()
        identity.record(app.paths, after.host_id if after else None)
    config_input = applied.results.get("config-input", {}).get("agent_config_input")
    if config_input:
        result.data["agent_config_input"] = config_input
        app.out.info("Paste this agent config input into the replication appliance (Mobility service configuration")
        app.out.info("details), then run `asrctl register --cs-type CSPrime --config-file FILE` with its config:")
        app.out.info(config_input)
    elif prepared is None:
        app.out.warn("installed without registering; run `asrctl register` to connect it to a configuration server")
    app.out.success(f"Mobility Service {bundle.version} installed" + (" and registered" if prepared else ""))
    return result


def _installed(bundle: Bundle, prepared: PreparedRegistration | None) -> Callable[[HostState], bool]:
    def reached(state: HostState) -> bool:
        agent = state.agent
        if agent is None or release_cmp(agent.version, bundle.version) != 0:
            return False
        return prepared is None or same_registration(agent, prepared.registration)

    return reached
