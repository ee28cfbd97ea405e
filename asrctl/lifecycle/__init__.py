"""install / upgrade / register / uninstall / status: detect → choose → plan → apply → verify.

Nothing else decides what happens to the machine. Each verb checks its preconditions without changing
anything, builds a :class:`Plan`, prints it (``--dry-run``) or applies it, then checks the result.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.agent import factory
from asrctl.agent.base import InstalledAgent, InstallOptions, Registration
from asrctl.agent.vmagent import vm_agent_steps
from asrctl.app import App
from asrctl.bundles.catalog import Bundle, load_bundle, resolve_dirs, scan
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Result
from asrctl.plan import Plan, Step, apply, collect_warnings, dry_run
from asrctl.system import secrets
from asrctl.versions import release_cmp, version_jump

LOG = logging.getLogger("asrctl")

MIN_FREE_ROOT = 2 * 1024**3  # Microsoft, Linux: 2 GB free on /
MIN_FREE_INSTALL = 250 * 1024**2  # and 250 MB for the install folder
MIN_FREE_INSTALL_WINDOWS = 500 * 1024**2  # Windows: 500 MB on the install folder
SUPPORTED_JUMP = 4  # N-4: a supported upgrade jumps at most 4 versions


@dataclass
class BundleChoice:
    path: str | None = None  # --bundle FILE
    sha256: str | None = None
    require_digest: bool = False


@dataclass
class RegistrationInput:
    cs_type: str = "CSLegacy"
    endpoint: str | None = None
    passphrase_file: str | None = None
    passphrase_stdin: bool = False
    insecure_passphrase_file: bool = False
    config_file: str | None = None
    no_register: bool = False
    force: bool = False
    skip_connectivity_check: bool = False
    cs_fingerprint: str | None = None
    connect_timeout: float = 5.0
    ps_port: int = 9443


@dataclass
class Request:
    dry_run: bool = False
    yes: bool = False
    bundle: BundleChoice = field(default_factory=BundleChoice)
    registration: RegistrationInput = field(default_factory=RegistrationInput)
    options: InstallOptions = field(default_factory=InstallOptions)
    allow_downgrade: bool = False


# --- wiring ------------------------------------------------------------------------------------------------


def require_privileges(app: App) -> None:
    """Root/Administrator, only when the root is the real one (CLI contract)."""
    if app.paths.sandboxed or app.facts.is_admin:
        return
    raise AsrctlError("ASRCTL-E040", "changing the Mobility Service needs root (Linux) or Administrator (Windows)")


def require_supported(app: App) -> str:
    plat = app.platform
    if not plat.supported or not plat.os_tag:
        raise AsrctlError("ASRCTL-E010", plat.reason or "unsupported platform")
    for w in plat.warnings:
        app.out.warn(w)
    return plat.os_tag


def choose_bundle(app: App, choice: BundleChoice, tag: str) -> Bundle:
    if choice.path:
        bundle = load_bundle(Path(choice.path))
        if not bundle.name.matches_tag(tag):
            raise AsrctlError(
                "ASRCTL-E023",
                f"{bundle.path.name} is for {bundle.os_tag}, but this host ({app.platform.name}) needs {tag}",
            )
        return bundle
    dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
    catalog = scan(dirs)
    best = catalog.newest_for(tag)
    if best is None:
        others = sorted({b.os_tag for b in catalog.bundles})
        seen = f"; found bundles for {', '.join(others)} only" if others else ""
        where = ", ".join(str(d) for d in dirs)
        raise AsrctlError(
            "ASRCTL-E020",
            f"no {tag} bundle (Microsoft-ASR_UA_*_{tag}_GA_*_release.tar.gz) in {where}{seen}",
        )
    return best


def check_disk(app: App, install_dir: str) -> None:
    import psutil

    def free(path: Path) -> int:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return int(psutil.disk_usage(str(probe)).free)

    windows = app.facts.os_family == "windows"
    root = app.paths.root
    root_free = free(root)
    if not windows and root_free < MIN_FREE_ROOT:
        raise AsrctlError(
            "ASRCTL-E041",
            f"{_gb(root_free)} free on {root}; the Mobility Service needs {_gb(MIN_FREE_ROOT)}",
            free_bytes=root_free,
        )
    target = Path(install_dir) if windows else app.paths.host(install_dir)
    target_free = free(target)
    needed = MIN_FREE_INSTALL_WINDOWS if windows else MIN_FREE_INSTALL
    if target_free < needed:
        raise AsrctlError(
            "ASRCTL-E041",
            f"{_gb(target_free)} free for {target}; the install folder needs {_gb(needed)}",
            free_bytes=target_free,
        )


def _gb(n: int) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def digest_for(app: App, bundle: Bundle, choice: BundleChoice) -> str | None:
    from asrctl.bundles.digest import DigestPolicy, expected_digest, unverified_warning

    digest, source = expected_digest(bundle.path, DigestPolicy(choice.sha256, choice.require_digest))
    if digest is None:
        app.out.warn(unverified_warning(bundle.path, source))
    else:
        app.out.detail(f"digest from {source}")
    return digest


# --- registration ------------------------------------------------------------------------------------------


@dataclass
class PreparedRegistration:
    registration: Registration
    passphrase: secrets.Passphrase | None
    private_file: Path | None  # written during apply, removed after


def prepare_registration(app: App, inp: RegistrationInput, run_id: str, environ: Any) -> PreparedRegistration | None:
    """Validate registration inputs before anything changes. None means: do not register now."""
    if inp.no_register:
        return None
    if inp.cs_type == "CSPrime":
        if not inp.config_file:
            return None  # modernized install: print the agent config input, register later
        cfg = Path(inp.config_file)
        if not cfg.is_file():
            raise AsrctlError("ASRCTL-E085", f"--config-file {cfg}: no such file")
        return PreparedRegistration(Registration("CSPrime", config_file=cfg.resolve()), None, None)
    passphrase = secrets.obtain(inp.passphrase_file, inp.passphrase_stdin, environ, inp.insecure_passphrase_file)
    if not inp.endpoint and passphrase is None:
        raise AsrctlError(
            "ASRCTL-E085",
            "no configuration server given: pass --cs-endpoint HOST[:PORT] with a passphrase source, "
            "or --no-register to install without registering",
        )
    if not inp.endpoint:
        raise AsrctlError("ASRCTL-E085", "a passphrase was given but no --cs-endpoint HOST[:PORT]")
    if passphrase is None:
        raise AsrctlError(
            "ASRCTL-E050",
            f"--cs-endpoint {inp.endpoint} needs a passphrase: --passphrase-file FILE, --passphrase-stdin or "
            f"{secrets.ENV_VAR}",
        )
    from asrctl.net.endpoint import parse_endpoint

    parse_endpoint(inp.endpoint)
    private = None
    if passphrase.path is None:
        private = secrets.private_path(app.paths.state_dir, run_id)
        file_for_vendor = private
    else:
        file_for_vendor = passphrase.path.resolve()
    reg = Registration("CSLegacy", endpoint=inp.endpoint, passphrase_file=file_for_vendor)
    return PreparedRegistration(reg, passphrase, private)


def check_connectivity(app: App, inp: RegistrationInput, result: Result) -> None:
    """Before anything changes: can this host reach the configuration server? (exit 8 if not)."""
    if inp.skip_connectivity_check or not inp.endpoint or inp.cs_type != "CSLegacy":
        return
    from asrctl.net import checks as net_checks
    from asrctl.net.endpoint import parse_endpoint
    from asrctl.net.preflight import check_cs

    endpoint = parse_endpoint(inp.endpoint)
    checks = check_cs(endpoint, ps_port=inp.ps_port, timeout=inp.connect_timeout, fingerprint=inp.cs_fingerprint)
    result.data["connectivity"] = net_checks.to_json(checks)
    net_checks.render(app.out, checks)
    error = net_checks.error_for(checks)
    if error is not None:
        raise Reported(error, result)  # the table already named the failure


def registration_steps(app: App, backend: Any, prepared: PreparedRegistration, install_dir: str, plan: Plan) -> None:
    if prepared.private_file is not None:
        target = prepared.private_file
        passphrase = prepared.passphrase
        assert passphrase is not None
        plan.cleanup.append(target.parent)
        plan.add(
            Step(
                "passphrase",
                f"Put the passphrase in a private file for the configurator ({target}, mode 0600)",
                lambda: {"file": str(secrets.write_private(passphrase, target))},
            )
        )
    plan.add(backend.register_step(prepared.registration, install_dir, retry=_registration_retry(app)))


def _registration_retry(app: App) -> Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]:
    """Retry registration on transient failures (connection refused, timeout), never on a wrong passphrase."""
    from asrctl.net.checks import is_transient
    from asrctl.system import retry

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, AsrctlError) and (exc.code == "ASRCTL-E063" or is_transient(exc))

    def on_retry(attempt: int, delay: float, exc: Exception) -> None:
        app.out.warn(f"registration attempt {attempt} failed ({retry.describe(exc)}); retrying in {delay:.0f} s")

    def run(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return retry.retry(
            fn,
            attempts=4,
            base_delay=2.0,
            max_delay=60.0,
            max_total=30.0,
            jitter=0.2,  # a fleet registering at once spreads out
            is_transient=transient,
            on_retry=on_retry,
        )

    return run


# --- verbs -------------------------------------------------------------------------------------------------


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def staging_for(app: App, run_id: str) -> tuple[Path, Path]:
    """(directory to remove afterwards, where the bundle is unpacked). Private, on the state dir's filesystem."""
    holder = app.paths.state_dir / "staging" / run_id
    return holder, holder / "bundle"


def _stage(app: App, backend: Any, bundle: Bundle, digest: str | None, run_id: str, plan: Plan) -> Path:
    holder, staged = staging_for(app, run_id)
    plan.cleanup.append(holder)

    def make_holder() -> dict[str, Any]:
        holder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        holder.mkdir(mode=0o700)
        return {}

    plan.add(Step("staging", f"Create a private staging directory {holder}", make_holder))
    for step in backend.stage_steps(bundle, staged, digest):
        plan.add(step)
    return staged


def _agent_json(backend: Any, agent: InstalledAgent | None) -> dict[str, Any]:
    services = backend.services(agent) if agent else []
    return {
        "installed": agent is not None,
        "version": agent.version if agent else None,
        "build": agent.build if agent else None,
        "install_dir": str(agent.install_dir) if agent else None,
        "registered": bool(agent and agent.registered),
        "cs_endpoint": agent.cs_endpoint if agent else None,
        "cs_type": agent.cs_type if agent else None,
        "services": [s.as_json() for s in services],
    }


def _post_check_install(backend: Any, bundle: Bundle, expect_registered: bool) -> Step:
    def run() -> dict[str, Any]:
        agent = backend.installed()
        if agent is None:
            raise AsrctlError("ASRCTL-E064", "the installer exited 0 but the agent's version file is missing")
        if release_cmp(agent.version, bundle.version) != 0:
            raise AsrctlError(
                "ASRCTL-E064",
                f"the installed version is {agent.version}, expected {bundle.version} from {bundle.path.name}",
            )
        down = [s.name for s in backend.services(agent) if not s.running]
        if down:
            raise AsrctlError("ASRCTL-E064", f"agent services not running after install: {', '.join(down)}")
        if expect_registered and not agent.registered:
            raise AsrctlError("ASRCTL-E064", "the configurator exited 0 but the agent is not registered")
        return {"version": agent.version}

    return Step("verify", "Check the result: version file, services, registration", run)


def killed_fresh_install(app: App) -> dict[str, Any] | None:
    """The journal of a fresh install whose process died (power loss, SIGKILL) while Microsoft's installer ran.

    Its abort action never ran, so the agent may be half there; the next install removes that first."""
    from asrctl.system.journal import Journal
    from asrctl.system.lock import pid_alive

    last = Journal(app.paths.state_dir).last()
    if not last or last.get("status") != "running" or last.get("command") != "install":
        return None
    summary = last.get("summary") or {}
    if not summary.get("fresh_install") or pid_alive(int(last.get("pid") or 0)):
        return None
    if not any(s.get("id") == "install" and s.get("status") == "started" for s in last.get("steps") or []):
        return None
    return last


def install(app: App, req: Request, environ: Any) -> Result:
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
        result.data["agent"] = _agent_json(backend, current)
        if prepared is None or _same_registration(current, prepared.registration):
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
        result.data["agent"] = _agent_json(backend, backend.installed())
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
    staged = _stage(app, backend, bundle, digest, run_id, plan)
    for step in backend.install_steps(staged, options, False, None):
        plan.add(step)
    if prepared is not None:
        registration_steps(app, backend, prepared, install_dir, plan)
    elif options.cs_type == "CSPrime":
        plan.add(backend.config_input_step(install_dir))
    plan.extend(vm_agent_steps(app, backend, bundle))
    plan.add(_post_check_install(backend, bundle, prepared is not None))
    if req.dry_run:
        return dry_run(plan, app.out, result)
    applied = apply(plan, app.out, app.paths.state_dir)
    result.changed = True
    collect_warnings(applied, result)
    result.data["agent"] = _agent_json(backend, backend.installed())
    if prepared is not None:
        from asrctl import identity

        identity.record(app.paths, backend.installed())
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


def _same_registration(agent: InstalledAgent, reg: Registration) -> bool:
    if not agent.registered:
        return False
    if reg.cs_type == "CSPrime":
        return (agent.cs_type or "").lower() == "csprime"
    return _endpoint_key(agent.cs_endpoint) == _endpoint_key(reg.endpoint)


def _endpoint_key(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    from asrctl.net.endpoint import parse_endpoint

    try:
        ep = parse_endpoint(text)
    except AsrctlError:
        return (text.lower(), 443)
    return (ep.host.lower(), ep.port)


def upgrade(app: App, req: Request, environ: Any) -> Result:
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
        result.data["agent"] = _agent_json(backend, current)
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
    staged = _stage(app, backend, bundle, digest, run_id, plan)
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
        _post_check_install(backend, bundle, expect_registered=False)
        if downgrade
        else _post_check_upgrade(backend, bundle, current)
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
    result.data["agent"] = _agent_json(backend, backend.installed())
    verb = "downgraded" if downgrade else "upgraded"
    app.out.success(f"Mobility Service {verb} {current.version} → {bundle.version}")
    return result


def _post_check_upgrade(backend: Any, bundle: Bundle, before: InstalledAgent) -> Step:
    base = _post_check_install(backend, bundle, expect_registered=False)

    def run() -> dict[str, Any]:
        out = base.run() or {}
        after = backend.installed()
        if before.registered and (after is None or not after.registered or after.cs_endpoint != before.cs_endpoint):
            raise AsrctlError(
                "ASRCTL-E064",
                f"the upgrade lost the registration with {before.cs_endpoint}; run `asrctl register` again",
            )
        return out

    return Step("verify", "Check the result: version, services, registration kept", run)


def register(app: App, req: Request, environ: Any) -> Result:
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
    result.data["agent"] = _agent_json(backend, current)
    from asrctl import identity

    clone = identity.check_clone(app.paths, current)
    if clone and not inp.force:
        raise AsrctlError("ASRCTL-E052", clone)
    if current.registered:
        if _same_registration(current, prepared.registration) and not clone and not inp.force:
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
    plan.add(_post_check_registered(backend, prepared.registration))
    if req.dry_run:
        return dry_run(plan, app.out, result)
    apply(plan, app.out, app.paths.state_dir)
    identity.record(app.paths, backend.installed())
    result.changed = True
    result.data["agent"] = _agent_json(backend, backend.installed())
    app.out.success(f"registered with {prepared.registration.endpoint or 'the replication appliance'}")
    return result


def _post_check_registered(backend: Any, reg: Registration) -> Step:
    def run() -> dict[str, Any]:
        agent = backend.installed()
        if agent is None or not agent.registered:
            raise AsrctlError("ASRCTL-E064", "the configurator exited 0 but the agent is not registered")
        return {"cs_endpoint": agent.cs_endpoint}

    return Step("verify", "Check that the agent is registered", run)


def uninstall(app: App, req: Request, confirm: Callable[[str], bool]) -> Result:
    result = Result(app.command)
    require_privileges(app)
    backend = factory.backend_for(app)
    current = backend.installed()
    if current is None:
        app.out.success("the Mobility Service is not installed; nothing to do")
        result.data["agent"] = _agent_json(backend, None)
        return result
    result.data["agent"] = _agent_json(backend, current)
    plan = Plan("uninstall", summary={"version": current.version, "install_dir": str(current.install_dir)})
    for step in backend.uninstall_steps(current):
        plan.add(step)
    plan.add(_post_check_removed(backend, current))
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
    result.data["agent"] = _agent_json(backend, None)
    result.warnings.append("restart the machine before you configure replication for it again (Microsoft's advice)")
    for w in result.warnings:
        app.out.warn(w)
    app.out.success(f"Mobility Service {current.version} removed")
    return result


def _post_check_removed(backend: Any, agent: InstalledAgent) -> Step:
    def run() -> dict[str, Any]:
        left = backend.leftovers(agent)
        if left:
            raise AsrctlError(
                "ASRCTL-E061", "the uninstaller reported success but these are still there: " + "; ".join(left)
            )
        return {}

    return Step("verify", "Check that nothing of the agent is left", run)


def status(app: App) -> Result:
    from asrctl.system.journal import Journal

    result = Result(app.command)
    backend = factory.backend_for(app)
    agent = backend.installed()
    result.data["agent"] = _agent_json(backend, agent)
    if agent:
        result.data["agent"]["details"] = agent.details
    plat = app.platform
    newer = None
    if plat.os_tag:
        try:
            dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
            best = scan(dirs).newest_for(plat.os_tag)
        except AsrctlError as exc:
            result.warnings.append(f"bundle dirs: {exc.message}")
            best = None
        if best is not None and (agent is None or release_cmp(agent.version, best.version) < 0):
            newer = {"path": str(best.path), "version": best.version}
    result.data["newer_bundle"] = newer
    result.data["platform"] = {"os_tag": plat.os_tag, "supported": plat.supported, "reason": plat.reason}
    last = Journal(app.paths.state_dir).last()
    if last:
        result.data["last_run"] = {k: last.get(k) for k in ("command", "status", "started", "ended", "run_id")}
        if last.get("status") == "running":
            from asrctl.system.lock import pid_alive

            if not pid_alive(int(last.get("pid") or 0)):
                result.warnings.append(
                    f"the last run ({last.get('command')}, started {last.get('started')}) was interrupted; the next "
                    "install/upgrade/uninstall cleans up after it"
                )
    from asrctl.agent import vmagent

    result.data["vm_agent"] = vmagent.status(app, backend).as_json()
    reboot = backend.pending_reboot()
    if reboot:
        result.warnings.append(reboot)
    return result
