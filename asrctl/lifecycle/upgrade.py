"""``asrctl upgrade``: a newer bundle over the installed agent, keeping its registration (or, with
``--allow-downgrade``, remove and install the older one)."""

from __future__ import annotations

from collections.abc import Mapping

from asrctl.agent import factory
from asrctl.agent.base import InstallOptions
from asrctl.agent.vmagent import vm_agent_steps
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle import postchecks
from asrctl.lifecycle.preconditions import check_disk, choose_bundle, digest_for, require_privileges, require_supported
from asrctl.lifecycle.request import Request
from asrctl.lifecycle.staging import new_run_id, stage
from asrctl.lifecycle.status import agent_json
from asrctl.output import Result
from asrctl.plan import Plan, apply, collect_warnings, dry_run
from asrctl.versions import release_cmp, version_jump

SUPPORTED_JUMP = 4  # N-4: a supported upgrade jumps at most 4 versions


def upgrade(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    require_privileges(app)
    tag = require_supported(app)
    backend = factory.backend_for(app)
    current = backend.installed()
    if current is None:
        raise AsrctlError("ASRCTL-E044", "the Mobility Service is not installed; nothing to upgrade")
    bundle = choose_bundle(app, req.bundle, tag)
    result.data["bundle"] = {"path": str(bundle.path), "version": bundle.version, "os_tag": bundle.os_tag}
    result.data["from_version"] = current.version
    order = release_cmp(current.version, bundle.version)
    if order == 0:
        result.data["agent"] = agent_json(backend, current)
        app.out.success(f"Mobility Service {current.version} is already at {bundle.version}; nothing to do")
        return result
    if order > 0 and not req.allow_downgrade:
        raise AsrctlError(
            "ASRCTL-E045",
            f"installed {current.version} is newer than {bundle.path.name} ({bundle.version})",
        )
    jump = version_jump(current.version, bundle.version)
    if jump > SUPPORTED_JUMP:
        result.warnings.append(
            f"{current.version} → {bundle.version} jumps {jump} versions; Microsoft supports at most "
            f"{SUPPORTED_JUMP} (N-4) and then requires a reboot: consider upgrading in two steps"
        )
        result.reboot_required = True
    options = InstallOptions(
        role=req.options.role,
        vm_platform=current.platform or req.options.vm_platform,
        install_dir=str(current.install_dir),
        cs_type=current.cs_type or req.options.cs_type,
        timeout=req.options.timeout,
    )
    check_disk(app, str(current.install_dir))
    digest = digest_for(app, bundle, req.bundle)
    run_id = new_run_id()
    plan = Plan(
        "upgrade",
        summary={"bundle": bundle.path.name, "from": current.version, "to": bundle.version, "run_id": run_id},
    )
    staged = stage(app, backend, bundle, digest, run_id, plan)
    downgrade = order > 0
    if downgrade:
        # Microsoft's installer refuses to downgrade in place (exit 15): remove, then install the older one.
        plan.extend(backend.uninstall_steps(current))
        plan.extend(backend.install_steps(staged, options, False, None))
        result.warnings.append(
            f"downgrade {current.version} → {bundle.version} removes the agent and installs the older one: its "
            "registration is gone; run `asrctl register` afterwards"
        )
    else:
        plan.extend(backend.install_steps(staged, options, True, current))
    plan.extend(vm_agent_steps(app, backend, bundle))
    plan.add(
        postchecks.after_install(backend, bundle, expect_registered=False)
        if downgrade
        else postchecks.after_upgrade(backend, bundle, current)
    )
    if req.dry_run:
        for w in result.warnings:
            app.out.warn(w)
        return dry_run(plan, app.out, result)
    applied = apply(plan, app.out, app.paths.state_dir)
    result.changed = True
    collect_warnings(applied, result)
    if not result.reboot_required:
        result.warnings.append("restart the machine when convenient: the new filter driver loads only at boot")
    for w in result.warnings:
        app.out.warn(w)
    result.data["agent"] = agent_json(backend, backend.installed())
    verb = "downgraded" if downgrade else "upgraded"
    app.out.success(f"Mobility Service {verb} {current.version} → {bundle.version}")
    return result
