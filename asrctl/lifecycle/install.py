"""``asrctl install``: preconditions → bundle → digest → plan (stage, install, register, VM agent, verify) → apply.

An installed agent of the same version is not reinstalled: install converges on the registration asked for.
A fresh install killed outright (power loss, SIGKILL) is found in the journal and its leftovers removed first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asrctl.agent import factory
from asrctl.agent.vmagent import vm_agent_steps
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.preconditions import (
    check_disk,
    choose_bundle,
    digest_for,
    killed_fresh_install,
    require_privileges,
    require_supported,
)
from asrctl.lifecycle.registration import (
    check_connectivity,
    prepare_registration,
    registration_steps,
    same_registration,
)
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.staging import new_run_id, stage
from asrctl.lifecycle.status import agent_json
from asrctl.output import Result
from asrctl.plan import Plan, Step, apply, collect_warnings, dry_run
from asrctl.versions import release_cmp


def install(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    require_privileges(app)
    tag = require_supported(app)
    backend = factory.backend_for(app)
    bundle = choose_bundle(app, req.bundle, tag)
    result.data["bundle"] = {"path": str(bundle.path), "version": bundle.version, "os_tag": bundle.os_tag}
    killed = killed_fresh_install(app)
    # What a killed install left is not an install to keep or upgrade: it is removed below, then installed anew.
    current = None if killed else backend.installed()
    run_id = new_run_id()
    prepared = prepare_registration(app, req.registration, run_id, environ)
    options = req.options
    install_dir = options.install_dir or backend.default_install_dir()

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
        # Same version: converge on the registration asked for, else nothing to do.
        result.data["agent"] = agent_json(backend, current)
        if prepared is None or same_registration(current, prepared.registration):
            app.out.success(f"Mobility Service {current.version} is already installed; nothing to do")
            return result
        if current.registered:
            app.out.info(
                f"Mobility Service {current.version} is installed and registered with {current.cs_endpoint}; "
                "use `asrctl register --force` to move it"
            )
            return result
        plan = Plan("install", summary={"bundle": bundle.path.name, "action": "register", "run_id": run_id})
        check_connectivity(app, req.registration, result)
        registration_steps(app, backend, prepared, str(current.install_dir), plan)
        if req.dry_run:
            return dry_run(plan, app.out, result)
        apply(plan, app.out, app.paths.state_dir)
        result.changed = True
        result.data["agent"] = agent_json(backend, backend.installed())
        app.out.success(f"registered the installed Mobility Service {current.version}")
        return result

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
        before = killed.get("summary") or {}
        app.out.warn(
            f"the previous install (pid {killed.get('pid')}, started {killed.get('started')}) was killed while "
            "Microsoft's installer ran; the half-installed agent it left is removed first"
        )
        plan.summary["install_dir_existed"] = bool(before.get("install_dir_existed"))
        killed_dir = str(before.get("install_dir") or install_dir)
        killed_existed = bool(before.get("install_dir_existed"))

        def remove_partial() -> dict[str, Any]:
            backend.remove_partial(killed_dir, killed_existed)
            return {"removed": killed_dir}

        plan.add(Step("remove-partial", "Remove the agent a killed install left half-done", remove_partial))
    staged = stage(app, backend, bundle, digest, run_id, plan)
    for step in backend.install_steps(staged, options, False, None):
        plan.add(step)
    if prepared is not None:
        registration_steps(app, backend, prepared, install_dir, plan)
    elif options.cs_type == "CSPrime":
        plan.add(backend.config_input_step(install_dir))
    plan.extend(vm_agent_steps(app, backend, bundle))
    plan.add(postchecks.after_install(backend, bundle, prepared is not None))
    if req.dry_run:
        return dry_run(plan, app.out, result)
    applied = apply(plan, app.out, app.paths.state_dir)
    result.changed = True
    collect_warnings(applied, result)
    result.data["agent"] = agent_json(backend, backend.installed())
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
