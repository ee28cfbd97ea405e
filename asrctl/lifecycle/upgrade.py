"""``asrctl upgrade``: a newer bundle over the installed agent, keeping its registration (or, with
``--allow-downgrade``, remove and install the older one — only when that can be undone).

Decided under the host lock (plan.hold). Microsoft's installer stops the agent's services before it replaces its
files, so the upgrade step's undo starts them again: a failed or interrupted upgrade leaves the old agent
running. Registration options, when given, state the desired registration: an agent registered elsewhere is
refused (``ASRCTL-E071``), an unregistered one is registered after the upgrade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from asrctl.agent import factory
from asrctl.agent.base import AgentBackend, InstalledAgent, InstallOptions
from asrctl.app import App
from asrctl.bundles.catalog import Bundle, resolve_dirs, scan
from asrctl.errors import AsrctlError
from asrctl.lifecycle import kernelcheck, postchecks, prereq
from asrctl.lifecycle.outcome import carry_out, reported
from asrctl.lifecycle.preconditions import check_disk, choose_bundle, digest_for, require_privileges, require_supported
from asrctl.lifecycle.recovery import under_lock
from asrctl.lifecycle.registration import (
    PreparedRegistration,
    check_connectivity,
    drift,
    prepare_registration,
    registration_steps,
    resolve_cs_type,
    retry_for,
    same_registration,
)
from asrctl.lifecycle.request import BundleChoice, Request
from asrctl.lifecycle.staging import new_run_id, stage, stage_also, staging_for, with_run_dir
from asrctl.lifecycle.state import HostState, describe, observe
from asrctl.lifecycle.steps import fresh_install_steps, guard_existing, restart_services, vm_agent
from asrctl.output import Result
from asrctl.plan import Plan, Session, Step, collect_warnings, dry_run, nothing_to_do
from asrctl.system import secrets
from asrctl.versions import release_cmp, version_jump

SUPPORTED_JUMP = 4  # N-4: a supported upgrade jumps at most 4 versions
RESTART = "restart the machine when convenient: the new filter driver loads only at boot"


def upgrade(app: App, req: Request, environ: Mapping[str, str]) -> Result:
    result = Result(app.command)
    backend = factory.backend_for(app)
    with reported(result, backend):
        require_privileges(app)
        tag = require_supported(app)
        bundle = choose_bundle(app, req.bundle, tag)
        result.data["bundle"] = {"path": str(bundle.path), "version": bundle.version, "os_tag": bundle.os_tag}
        run_id = new_run_id()
        if not req.registration.no_register:  # registration inputs given: their CS type, never a silent guess
            req = replace(req, registration=replace(req.registration, cs_type=resolve_cs_type(req.registration)))
        prepared = prepare_registration(app, req.registration, run_id, environ)
        with under_lock(app, backend, "upgrade", req.dry_run, result) as (session, before):
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
    before.refuse_unreadable()
    current = before.agent
    if current is None and before.half_installed:
        raise AsrctlError("ASRCTL-E051", f"{describe(before)}: there is no agent to upgrade")
    if current is None:
        raise AsrctlError("ASRCTL-E044", "the Mobility Service is not installed; nothing to upgrade")
    result.data["from_version"] = current.version
    mismatch = drift(current, req.registration, prepared)
    if mismatch is not None:
        raise mismatch
    order = release_cmp(current.version, bundle.version)
    if order == 0:
        app.out.success(f"Mobility Service {current.version} is already at {bundle.version}; nothing to do")
        return nothing_to_do(result, req.dry_run)
    if order > 0 and not req.allow_downgrade:
        raise AsrctlError(
            "ASRCTL-E045",
            f"installed {current.version} is newer than {bundle.path.name} ({bundle.version})",
        )
    downgrade = order > 0
    rollback = _undoable_downgrade(app, current, tag, prepared) if downgrade else None
    jump = version_jump(current.version, bundle.version)
    if jump > SUPPORTED_JUMP:
        result.warnings.append(
            f"{current.version} → {bundle.version} jumps {jump} versions; Microsoft supports at most "
            f"{SUPPORTED_JUMP} (N-4) and then requires a reboot: consider upgrading in two steps"
        )
    # The installed agent's own configuration says what it is (drscout.conf CSType, Role, VmPlatform): an upgrade
    # keeps it; a missing CSType is CSLegacy, as Microsoft reads it.
    options = InstallOptions(
        role=current.role or "MS",
        vm_platform=current.platform or req.options.vm_platform,
        install_dir=str(current.install_dir),
        cs_type=current.cs_type or "CSLegacy",
        timeout=req.options.timeout,
    )
    register = prepared is not None and not same_registration(current, prepared.registration)
    if register or (downgrade and prepared is not None):
        check_connectivity(app, req.registration, result)
    check_disk(app, str(current.install_dir))
    digest = digest_for(app, bundle, req.bundle)
    plan = Plan(
        "upgrade",
        summary={"bundle": bundle.path.name, "from": current.version, "to": bundle.version, "run_id": run_id},
    )
    staged = stage(app, backend, bundle, digest, run_id, plan)
    options = replace(options, run_dir=with_run_dir(app, run_id, plan))
    kernel_check, keep_list = kernelcheck.kernel_step(app, backend, bundle, tag, staged, result, req)
    plan.extend(kernel_check)  # the running and next-boot kernels against the bundle's own list, before any change
    plan.extend(prereq.steps(app, backend, staged, options))  # Microsoft's checks, before any change
    if rollback is not None:
        assert downgrade
        back = stage_also(
            app, backend, rollback, digest_for(app, rollback, _sums_only(req.bundle)), run_id, plan, "rollback"
        )
        plan.summary["rollback_bundle"] = rollback.path.name
        uninstall = guard_existing(backend, current, backend.uninstall_steps(current))
        for step in uninstall:
            if step.id == "uninstall":
                step.undo = _reinstall(app, backend, back, options, current, prepared)
                step.undo_describe = f"install {rollback.path.name} again" + (
                    " and register it" if current.registered else ""
                )
        plan.extend(uninstall)
        plan.extend(fresh_install_steps(backend, bundle, backend.install_steps(staged, options, False, None)))
        result.warnings.append(
            f"downgrade {current.version} → {bundle.version} removes the agent and installs the older one"
            + ("; it is registered again with the same configuration server" if prepared is not None else "")
        )
    else:
        steps = guard_existing(backend, current, backend.install_steps(staged, options, True, current))
        put_back = _put_back(app, backend, current, tag, prepared, req.bundle, options, run_id)
        if put_back is not None and prepared is not None and prepared.private_file is not None:
            plan.cleanup.append(prepared.private_file.parent)  # the undo may write the passphrase there
        for step in steps:
            if step.id == "upgrade":
                step.abort = step.undo = _restart_or_put_back(app, backend, put_back)
                step.abort_describe = step.undo_describe = (
                    "start the agent's services again, which the installer stopped"
                    + (f"; if they do not start, put {put_back[0]} back" if put_back is not None else "")
                )
        plan.extend(steps)
    if prepared is not None and (register or downgrade):
        registration_steps(app, backend, prepared, str(current.install_dir), plan)
    vm_agent(app, backend, bundle, plan, req.vm_agent)
    expect_registered = current.registered or prepared is not None
    plan.add(
        postchecks.after_install(backend, bundle, expect_registered=expect_registered)
        if downgrade
        else postchecks.after_upgrade(backend, bundle, current)
    )
    plan.extend(keep_list)
    if req.dry_run:
        return dry_run(plan, app.out, result)
    reached = _upgraded(bundle, current, prepared)
    applied = carry_out(app, backend, plan, session, result, before, reached)
    collect_warnings(applied, result)
    if prepared is not None and (register or downgrade):
        from asrctl import identity

        after = backend.installed()
        identity.record(app.paths, after.host_id if after else None)
    # Microsoft: a reboot is recommended after every upgrade (the new driver loads at boot) and mandatory after a
    # jump of more than N-4; asrctl says so, and reboot_required (3010 with --exit-codes msi) agrees.
    result.reboot_required = True
    if jump <= SUPPORTED_JUMP:
        result.warnings.append(RESTART)
    verb = "downgraded" if downgrade else "upgraded"
    app.out.success(f"Mobility Service {verb} {current.version} → {bundle.version}")
    return result


def _upgraded(
    bundle: Bundle, before: InstalledAgent, prepared: PreparedRegistration | None
) -> Callable[[HostState], bool]:
    def reached(state: HostState) -> bool:
        agent = state.agent
        if agent is None or release_cmp(agent.version, bundle.version) != 0:
            return False
        if prepared is not None:
            return same_registration(agent, prepared.registration)
        return agent.registered == before.registered and (
            not before.registered or agent.cs_endpoint == before.cs_endpoint
        )

    return reached


def _restart_or_put_back(
    app: App, backend: AgentBackend, back: tuple[str, Callable[[], None]] | None
) -> Callable[[], None]:
    """The undo of an upgrade step: start the agent's services again (Microsoft's installer stopped them). When
    they do not start — the new agent's files are in place and broken — and the previous release can be put back
    completely (:func:`_put_back`), it is; otherwise the failure stands and the result says the host is not whole."""
    restart = restart_services(backend)

    def run() -> None:
        try:
            restart()
            down = observe(backend).stopped
            if down:
                raise AsrctlError("ASRCTL-E060", f"the agent's services did not start again: {', '.join(down)}")
        except AsrctlError as exc:
            if back is None:
                raise
            app.out.warn(f"{exc.message.splitlines()[0]}; putting {back[0]} back")
            back[1]()

    return run


def _put_back(
    app: App,
    backend: AgentBackend,
    current: InstalledAgent,
    tag: str,
    prepared: PreparedRegistration | None,
    choice: BundleChoice,
    options: InstallOptions,
    run_id: str,
) -> tuple[str, Callable[[], None]] | None:
    """How a failed upgrade whose new agent will not even start is undone completely, or None when it cannot be.

    **choice**: the same rule as for a downgrade — asrctl puts the previous release back only when that gives the
    previous state *completely*: its bundle for this host is in a bundle dir (verified when it is needed: nothing
    is unpacked for an upgrade that goes well), and a registered agent can be registered again with the
    registration options given to this upgrade (its own registration; classic only — a CSPrime agent needs a new
    file from the appliance). Then the undo removes the new agent with its own uninstaller, installs the previous
    release from its bundle and registers it. Otherwise the undo only starts the services, and when they do not
    start the result says the host is not whole (docs/LIFECYCLE.md)."""
    if current.registered and (
        prepared is None
        or prepared.registration.cs_type != "CSLegacy"
        or not same_registration(current, prepared.registration)
    ):
        return None
    dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
    found = [b for b in scan(dirs).for_tag(tag) if release_cmp(current.version, b.version) == 0]
    if not found:
        return None
    bundle = found[0]
    try:
        digest = digest_for(app, bundle, _sums_only(choice))
    except AsrctlError:
        return None
    holder, _ = staging_for(app, run_id)
    staged = holder / "rollback"

    def run() -> None:
        now = observe(backend)
        if now.agent is not None:
            for step in backend.uninstall_steps(now.agent):
                app.out.detail(f"  {step.describe}")
                step.run()
        for step in backend.stage_steps(bundle, staged, digest):
            app.out.detail(f"  {step.describe}")
            step.run()
        _reinstall(app, backend, staged, options, current, prepared)()

    return bundle.path.name, run


def _sums_only(choice: BundleChoice) -> BundleChoice:
    """The rollback bundle's digest comes from SHA256SUMS beside it (``--sha256`` names the chosen bundle's)."""
    return BundleChoice(require_digest=choice.require_digest)


def _undoable_downgrade(app: App, current: InstalledAgent, tag: str, prepared: PreparedRegistration | None) -> Bundle:
    """``--allow-downgrade`` is uninstall + install of the older bundle (Microsoft's installer refuses to downgrade
    in place). It is done only when a failure can be undone, i.e. asrctl can put the current agent back as it was:

    - the bundle of the installed release for this host is in a bundle dir (it is verified and unpacked before
      anything is removed, so the undo can run its installer);
    - a registered agent can be registered again: the registration options are given (and they are the agent's
      own: ``ASRCTL-E071`` otherwise), so the older agent and, on failure, the current one are registered with them.
      A modernized (CSPrime) agent cannot be: the appliance's config file names the agent's host identity, which a
      reinstall changes.
    """
    dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
    found = [b for b in scan(dirs).for_tag(tag) if release_cmp(current.version, b.version) == 0]
    if not found:
        where = ", ".join(str(d) for d in dirs) or "no bundle dir"
        raise AsrctlError(
            "ASRCTL-E072",
            f"the downgrade removes Mobility Service {current.version} first, and no {tag} bundle of "
            f"{current.version} is in {where} to put it back if the older one fails to install",
        )
    if current.registered and (current.cs_type or "").lower() == "csprime":
        raise AsrctlError(
            "ASRCTL-E072",
            f"Mobility Service {current.version} is registered with a replication appliance (CSPrime): a reinstalled "
            "agent needs a new config file from the appliance, so a failed downgrade could not register it again. "
            "Uninstall, install the older bundle, then register it with the appliance's new file",
        )
    if current.registered and prepared is None:
        raise AsrctlError(
            "ASRCTL-E072",
            f"Mobility Service {current.version} is registered with {current.cs_endpoint}; the downgrade reinstalls "
            f"it, so give --cs-endpoint {current.cs_endpoint} and its passphrase: the older agent is registered with "
            "them, and so would be the current one if the downgrade fails",
        )
    return found[0]


def _reinstall(
    app: App,
    backend: AgentBackend,
    staged: Path,
    options: InstallOptions,
    previous: InstalledAgent,
    prepared: PreparedRegistration | None,
) -> Callable[[], None]:
    """The undo of a downgrade's uninstall: install the removed release again from its verified bundle, and
    register it again when it was registered. Only on a host without an agent (never over one)."""

    def run() -> None:
        now = observe(backend)
        if now.agent is not None or now.presence.marker is not None:
            raise AsrctlError(
                "ASRCTL-E070",
                f"Mobility Service {previous.version} is not installed again over {describe(now)}",
            )
        steps: list[Step] = list(backend.install_steps(staged, options, False, None))
        if prepared is not None and previous.registered:
            if prepared.private_file is not None and not prepared.private_file.exists():
                assert prepared.passphrase is not None
                secrets.write_private(prepared.passphrase, prepared.private_file)
            steps.append(backend.register_step(prepared.registration, str(previous.install_dir), retry=retry_for(app)))
        for step in steps:
            app.out.detail(f"  {step.describe}")
            step.run()

    return run
