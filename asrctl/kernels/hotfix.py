"""``asrctl drivers install PACKAGE``: Microsoft's driver hotfix procedure (hotfix_install.sh) as a plan whose every
step has an undo, and that never reports success unless the driver is really loaded.

The procedure, for the running kernel (and with ``--kernel K`` for a kernel that boots later):

1. (a known-faulty driver 9.66.7691.1-9.66.7749.1 loaded: only with ``-Y``/a yes on the terminal, after saying that
   every protected disk resyncs) stop the agent, stop filtering on every disk (``inm_dmit --op=stop_flt_all``),
   ``rmmod involflt``;
2. stop the agent (when the driver is to be loaded now);
3. copy the driver file Microsoft's rules pick (:mod:`.choice`) to ``/lib/modules/<k>/kernel/drivers/char/
   involflt.ko``, keeping the old one for the undo; ``depmod -a <k>``;
4. ``modprobe involflt`` (SLES: ``--allow-unsupported-modules``), then check ``/proc/modules`` itself; create
   ``/dev/involflt`` from the "Character devices" major of ``/proc/devices`` when it is missing;
5. regenerate the initrd with the agent's ``<Vx>/scripts/initrd/install.sh regenerate <k>``;
6. start the agent; verify driver, device and services.

A driver that is loaded and not faulty is never unloaded (that would stop filtering on every protected disk and
force a resync): the new file is installed for the next restart, and the result says a restart is needed. Any
failure undoes the steps before it in reverse: the old driver file back (depmod and initrd again), the old driver
loaded again if one was, the agent started. The traps of Microsoft's script this avoids are listed in
docs/KERNELS.md.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.agent.base import AgentBackend, InstalledAgent
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.kernels import choice, host, procfs
from asrctl.kernels.package import Package
from asrctl.output import Result
from asrctl.plan import Plan, Session, Step
from asrctl.system import rootfs
from asrctl.system.runner import Completed, TimedOut

LOG = logging.getLogger("asrctl")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DRIVER_DIR = "kernel/drivers/char"
TOOL_TIMEOUT = 300.0
INITRD_TIMEOUT = 900.0
EFI_SECURE_BOOT = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
RESYNC_WARNING = (
    "the loaded driver {version} is one of Microsoft's known-faulty builds ({range}); replacing it stops filtering "
    "on EVERY protected disk (inm_dmit --op=stop_flt_all), and EVERY protected disk then resyncs in full"
)


@dataclass
class Target:
    kernel: str
    role: str  # "running" | "given"
    choice: choice.Choice
    load: bool  # load it now (the running kernel, when no healthy driver is loaded)

    def as_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "role": self.role,
            "file": self.choice.file,
            "rule": self.choice.rule,
            "target": f"/lib/modules/{self.kernel}/{DRIVER_DIR}/involflt.ko",
            "action": "load now" if self.load else "at the next boot",
        }


@dataclass
class Decision:
    """What the plan does, decided before anything changes (and shown by --dry-run)."""

    targets: list[Target]
    before: host.DriverState
    faulty: bool
    replace_loaded: bool  # unload the loaded (faulty) driver first
    warnings: list[str] = field(default_factory=list)


def secure_boot(app: App) -> bool | None:
    """Secure Boot from the EFI variable under the root (what ``mokutil --sb-state`` reads: 4 attribute bytes, then
    1 or 0); None: not an EFI boot."""
    if not app.paths.host("/sys/firmware/efi").is_dir():
        return None
    try:
        raw = rootfs.read_file(app.paths, EFI_SECURE_BOOT, 64)
    except rootfs.Refused:
        raw = None
    return raw is not None and len(raw) >= 5 and raw[4] == 1


def find_tool(app: App, name: str) -> str:
    """The absolute path of a system tool. In a sandbox root the host's own tool is never run (it would change
    this machine's kernel, not the root's): only a stand-in that is first on PATH is."""
    path = os.environ.get("PATH", "")
    found = shutil.which(name, path=path if app.paths.sandboxed else f"{path}{os.pathsep}{SYSTEM_PATH}")
    if found is None:
        raise AsrctlError("ASRCTL-E101", f"{name} is not on PATH", remedy=f"Install {name} (kmod) and run it again.")
    if app.paths.sandboxed:
        mine = shutil.which(name, path=SYSTEM_PATH)
        if mine is not None and os.path.realpath(mine) == os.path.realpath(found):
            raise AsrctlError(
                "ASRCTL-E101",
                f"{found} belongs to this host, not to the sandbox {app.paths.root}; it is not run",
                remedy="Put the simulated kernel tools (scripts/asrsim/kerneltools/bin) first on PATH.",
            )
    return found


def decide(
    app: App,
    tag: str,
    package: Package,
    kernels: list[tuple[str, str]],
    before: host.DriverState,
) -> Decision:
    """Which file each kernel takes and whether the driver is loaded now; refusals before anything changes."""
    sb = secure_boot(app) if tag.startswith("SLES") else None
    faulty = before.loaded is True and before.faulty
    healthy_loaded = before.loaded is True and not faulty
    targets: list[Target] = []
    for kernel, role in kernels:
        modules = app.paths.host(f"/lib/modules/{kernel}")
        if not modules.is_dir():
            raise AsrctlError(
                "ASRCTL-E002" if role == "given" else "ASRCTL-E101",
                f"kernel {kernel} is not installed here (no /lib/modules/{kernel})",
                remedy="Install the kernel package first; asrctl prepares kernels that are installed.",
            )
        picked = choice.choose(tag, kernel, package.files, secure_boot=sb)
        targets.append(Target(kernel, role, picked, load=role == "running" and not healthy_loaded))
    decision = Decision(targets, before, faulty, replace_loaded=faulty)
    if healthy_loaded:
        decision.warnings.append(
            "a driver is loaded and stays loaded until the next restart (unloading it would stop filtering on every "
            "protected disk and force a resync); the new driver loads at the next boot"
        )
    return decision


class _Tools:
    """argv of the system tools and the agent's own, resolved once for the plan."""

    def __init__(self, app: App, agent: InstalledAgent) -> None:
        vx = Path(agent.details.get("vx_dir") or agent.install_dir / "Vx")
        self.vx = vx
        self.app = app
        self.inm_dmit = vx / "bin" / "inm_dmit"
        self.initrd = vx / "scripts" / "initrd" / "install.sh"
        self.stop = [str(vx / "bin" / "stop")]
        self.start = [str(vx / "bin" / "start")]
        self._found: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self._found:
            self._found[name] = find_tool(self.app, name)
        return self._found[name]


def _failed(code: str, what: str, done: Completed) -> AsrctlError:
    said = done.output.strip()[-1500:] or "no output"
    return AsrctlError(code, f"{what} exited {done.returncode}: {said}", exit_status=done.returncode, argv=done.argv)


def build_plan(
    app: App,
    backend: AgentBackend,
    agent: InstalledAgent,
    tag: str,
    package: Package,
    decision: Decision,
    run_id: str,
    staging: Path,
) -> Plan:
    tools = _Tools(app, agent)
    runner = backend.runner
    paths = app.paths
    sles = tag.startswith("SLES")
    loading = any(t.load for t in decision.targets)
    restart_agent = loading or decision.replace_loaded
    plan = Plan(
        "drivers install",
        summary={
            "package": str(package.source),
            "build": package.build,
            "run_id": run_id,
            "kernels": [t.as_json() for t in decision.targets],
            "resync": decision.replace_loaded,
        },
    )
    plan.cleanup.append(staging)
    backups = staging / "backup"
    state: dict[str, Any] = {"regenerated": set(), "device_made": False, "loaded_by_us": False}

    def run(argv: list[str], what: str, code: str = "ASRCTL-E101", timeout: float = TOOL_TIMEOUT) -> Completed:
        try:
            done = runner.run(argv, timeout=timeout)
        except TimedOut as exc:
            raise AsrctlError(
                "ASRCTL-E063", f"{what} did not finish within {exc.timeout:.0f} s and was stopped"
            ) from None
        except OSError as exc:
            raise AsrctlError(code, f"{what} could not run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise _failed(code, what, done)
        return done

    def quietly(argv: list[str], what: str, timeout: float = TOOL_TIMEOUT) -> None:
        """An undo action: it must not stop the other undos; its failure is logged and reported."""
        try:
            done = runner.run(argv, timeout=timeout)
        except (TimedOut, OSError) as exc:
            raise AsrctlError("ASRCTL-E101", f"undo: {what} failed: {exc}") from None
        if done.returncode != 0:
            raise _failed("ASRCTL-E101", f"undo: {what}", done)

    # -- the agent ----------------------------------------------------------------------------------------
    def stop_agent() -> dict[str, Any]:
        run(tools.stop, "the agent's bin/stop", "ASRCTL-E062")
        return {}

    def start_agent() -> dict[str, Any]:
        run(tools.start, "the agent's bin/start")
        return {}

    if restart_agent:
        plan.add(
            Step(
                "stop-agent",
                "Stop the Mobility Service agent",
                stop_agent,
                argv=tools.stop,
                undo=lambda: quietly(tools.start, "start the agent"),
                undo_describe="start the agent again",
            )
        )

    # -- the faulty driver (only with -Y / a yes on the terminal) -----------------------------------------
    if decision.replace_loaded:
        stop_flt = [str(tools.inm_dmit), "--op=stop_flt_all"]

        def stop_filtering() -> dict[str, Any]:
            run(stop_flt, "inm_dmit --op=stop_flt_all")
            return {"resync": True}

        plan.add(
            Step(
                "stop-filtering",
                "Stop filtering on EVERY protected disk (each one resyncs in full afterwards)",
                stop_filtering,
                argv=stop_flt,
                undo_describe="cannot be undone: the protected disks resync",
            )
        )
        rmmod = [tools("rmmod"), procfs.MODULE]
        modprobe_old = [tools("modprobe"), *(["--allow-unsupported-modules"] if sles else []), procfs.MODULE]

        def unload() -> dict[str, Any]:
            run(rmmod, "rmmod involflt")
            if host.loaded_module(paths)[0]:
                raise AsrctlError("ASRCTL-E101", "rmmod involflt exited 0, but involflt is still in /proc/modules")
            return {}

        plan.add(
            Step(
                "unload-faulty",
                f"Unload the faulty driver {decision.before.version.agent_version if decision.before.version else ''}".rstrip(),
                unload,
                argv=rmmod,
                undo=lambda: quietly(modprobe_old, "load the previous driver again"),
                undo_describe="load the previous driver again",
            )
        )

    # -- the files, per kernel ----------------------------------------------------------------------------
    for target in decision.targets:
        k = target.kernel
        dest = paths.host(f"/lib/modules/{k}/{DRIVER_DIR}/involflt.ko")
        source = package.drivers / target.choice.file
        backup = backups / k / "involflt.ko"
        depmod = [tools("depmod"), "-a", k]
        regenerate = [str(tools.initrd), "regenerate", k]

        def copy(dest: Path = dest, source: Path = source, backup: Path = backup) -> dict[str, Any]:
            created = not dest.parent.is_dir()
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):
                backup.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copy2(dest, backup, follow_symlinks=False)
            tmp = dest.with_name(f".involflt.ko.{run_id}")
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            return {"target": str(dest), "created_dir": created}

        def restore(
            dest: Path = dest,
            backup: Path = backup,
            depmod: list[str] = depmod,
            regen: list[str] = regenerate,
            k: str = k,
        ) -> None:
            if backup.exists():
                tmp = dest.with_name(f".involflt.ko.{run_id}.old")
                shutil.copy2(backup, tmp)
                os.replace(tmp, dest)
            else:
                dest.unlink(missing_ok=True)
            quietly(depmod, f"depmod -a {k}")
            if k in state["regenerated"]:
                quietly(regen, f"regenerate the initrd of {k}", INITRD_TIMEOUT)

        def index(depmod: list[str] = depmod, k: str = k) -> dict[str, Any]:
            run(depmod, f"depmod -a {k}")
            return {}

        plan.add(
            Step(
                f"copy-{k}",
                f"Install {target.choice.file} as /lib/modules/{k}/{DRIVER_DIR}/involflt.ko ({target.choice.rule})",
                copy,
                undo=restore,
                undo_describe=f"put the previous involflt.ko of {k} back (or remove it), depmod and initrd again",
            )
        )
        plan.add(
            Step(
                f"depmod-{k}",
                f"Update the module index of {k}",
                index,
                argv=depmod,
            )
        )

    # -- load it now ----------------------------------------------------------------------------------------
    if loading:
        modprobe = [tools("modprobe"), "-v", *(["--allow-unsupported-modules"] if sles else []), procfs.MODULE]
        rmmod_new = [tools("rmmod"), procfs.MODULE]

        def load() -> dict[str, Any]:
            done = run(modprobe, "modprobe involflt", "ASRCTL-E100")
            loaded, line = host.loaded_module(paths)
            if not loaded:
                raise AsrctlError(
                    "ASRCTL-E100",
                    "modprobe involflt exited 0, but involflt is not in /proc/modules (Microsoft's hotfix script would "
                    f"have reported success here): {done.output.strip()[-500:] or 'no output'}",
                )
            state["loaded_by_us"] = True
            return {"module": line.state if line else None}

        def unload_new() -> None:
            if state["loaded_by_us"] and host.loaded_module(paths)[0]:
                quietly(rmmod_new, "rmmod involflt")

        plan.add(
            Step(
                "load",
                "Load the driver and check /proc/modules",
                load,
                argv=modprobe,
                undo=unload_new,
                undo_describe="unload the new driver",
            )
        )

        def device() -> dict[str, Any]:
            major = host.char_major(paths)
            if major is None:
                raise AsrctlError(
                    "ASRCTL-E100", "involflt is loaded but registered no character device in /proc/devices"
                )
            exists, problem = host.device_problem(paths, major)
            if exists and problem is None:
                return {"major": major, "created": False}
            if exists:
                raise AsrctlError(
                    "ASRCTL-E101", f"{problem}; remove it and run again", remedy=f"rm {host.DEVICE}, then run again."
                )
            argv = [tools("mknod"), str(paths.host(host.DEVICE)), "c", str(major), "0"]
            run(argv, f"mknod {host.DEVICE}")
            state["device_made"] = True
            return {"major": major, "created": True}

        def remove_device() -> None:
            if state["device_made"]:
                paths.host(host.DEVICE).unlink(missing_ok=True)

        plan.add(
            Step(
                "device",
                f"Create {host.DEVICE} from the driver's major in /proc/devices when it is missing",
                device,
                undo=remove_device,
                undo_describe=f"remove the {host.DEVICE} this run made",
            )
        )

    # -- initrd ---------------------------------------------------------------------------------------------
    for target in decision.targets:
        k = target.kernel
        regenerate = [str(tools.initrd), "regenerate", k]

        def initrd(argv: list[str] = regenerate, k: str = k) -> dict[str, Any]:
            if not tools.initrd.is_file():
                raise AsrctlError(
                    "ASRCTL-E101",
                    f"the agent has no {rootfs.target_of(paths, tools.initrd)}: the initrd of {k} cannot be regenerated",
                )
            state["regenerated"].add(k)
            run(argv, f"initrd regenerate {k}", timeout=INITRD_TIMEOUT)
            return {}

        plan.add(
            Step(
                f"initrd-{k}",
                f"Regenerate the initrd of {k} with the driver (the agent's scripts/initrd/install.sh)",
                initrd,
                argv=regenerate,
            )
        )

    if restart_agent:
        plan.add(Step("start-agent", "Start the Mobility Service agent", start_agent, argv=tools.start))
    plan.add(
        Step(
            "verify",
            "Check the driver, /dev/involflt and the agent's services",
            _verify(app, backend, agent, loading, restart_agent),
        )
    )
    return plan


def _verify(
    app: App, backend: AgentBackend, agent: InstalledAgent, loading: bool, restarted: bool
) -> Callable[[], dict[str, Any]]:
    def verify() -> dict[str, Any]:
        state = host.driver_state(app.paths, backend.runner, agent)
        problems = []
        if loading and not state.loaded:
            problems.append("involflt is not in /proc/modules")
        if loading and not state.device:
            problems.append(f"{host.DEVICE} does not exist")
        if loading and state.device_problem:
            problems.append(state.device_problem)
        stopped = [s.name for s in backend.services(agent) if not s.running] if restarted else []
        if stopped:
            problems.append(f"agent services not running: {', '.join(stopped)}")
        if problems:
            raise AsrctlError("ASRCTL-E101", "after the driver install: " + "; ".join(problems))
        return {"driver": state.as_json()}

    return verify


# --- the verb ---------------------------------------------------------------------------------------------


@dataclass
class Request:
    package: Path
    kernels: tuple[str, ...] = ()
    build: str | None = None
    lists: str | None = None
    sha256: str | None = None
    require_digest: bool = False
    dry_run: bool = False
    yes: bool = False


def install(
    app: App,
    backend: AgentBackend,
    tag: str,
    req: Request,
    confirm: Callable[[str], bool],
    mend: Callable[[Session], None] | None = None,
) -> Result:
    """Under the host lock (decide under it: the driver's state and the agent are read there): preconditions
    (agent, package, build, kernels, the loaded driver) → plan → confirmation → apply → result. ``mend`` is the
    lifecycle's repair of what a killed run left (its services stopped, a stale vendor lock), run first under the
    lock as every changing verb does; it is passed in because the lifecycle sits above this layer."""
    from asrctl.plan import hold

    with hold(app.paths.state_dir, app.command, app.out, dry_run=req.dry_run) as session:
        if mend is not None and not req.dry_run:
            mend(session)
        return _install(app, backend, tag, req, confirm, session)


def _install(
    app: App, backend: AgentBackend, tag: str, req: Request, confirm: Callable[[str], bool], session: Session
) -> Result:
    import tempfile
    import uuid

    from asrctl.kernels import kver
    from asrctl.kernels.package import open_package, release_order, remove, settle_build
    from asrctl.kernels.tree import open_tree
    from asrctl.plan import apply, dry_run

    result = Result(app.command)
    agent = backend.installed()
    if agent is None:
        raise AsrctlError("ASRCTL-E044", "the Mobility Service is not installed; a driver package needs its agent")
    running = kver.require(app.facts.kernel, "the running kernel")
    kernels = [(running, "running")] + [(kver.require(k, "--kernel"), "given") for k in req.kernels if k != running]
    run_id = uuid.uuid4().hex[:12]
    if req.dry_run:  # a dry run writes nothing under the root: the package is looked at in a private temp dir
        staging = Path(tempfile.mkdtemp(prefix=f"asrctl-drivers-{run_id}-"))
    else:
        staging = app.paths.state_dir / "staging" / run_id
        staging.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging.mkdir(mode=0o700)
    try:
        package = open_package(req.package, staging, sha256=req.sha256, require_digest=req.require_digest, out=app.out)
        result.warnings.extend(package.notes)
        keys = choice.keys_for(tag)
        if package.key is not None and package.key not in keys:
            raise AsrctlError(
                "ASRCTL-E097",
                f"{package.source.name} is Microsoft's {package.key} package; this host ({tag}) needs "
                + (
                    " or ".join(f"DriversPackage_{k}" for k in keys) if keys else "a package Microsoft does not publish"
                ),
            )
        from asrctl.kernels.tree import default_lists

        lists = default_lists(app.paths, req.lists)
        tree = open_tree(lists) if lists else None
        settle_build(package, req.build, tree, tag)
        assert package.build is not None
        order = release_order(package.build, agent.version)
        if order > 0:
            raise AsrctlError(
                "ASRCTL-E098",
                f"{package.source.name} is for agent {package.build} (from {package.build_from}); the installed agent is "
                f"{agent.version}, of an older release",
                package_build=package.build,
                agent_version=agent.version,
            )
        if order < 0:
            result.warnings.append(
                f"{package.source.name} is for agent {package.build}, an older release than the installed {agent.version}; "
                "Microsoft builds driver packages for the agent of their own release"
            )
        before = host.driver_state(app.paths, backend.runner, agent)
        decision = decide(app, tag, package, kernels, before)
        result.warnings.extend(decision.warnings)
        nxt = host.next_boot(app.paths, running)
        if nxt.kernel and nxt.kernel not in {k for k, _ in kernels}:
            result.warnings.append(
                f"the kernel that boots next, {nxt.kernel} ({nxt.source}), is not prepared: add --kernel {nxt.kernel}"
            )
        plan = build_plan(app, backend, agent, tag, package, decision, run_id, staging)
        result.data.update(
            package=package.as_json(),
            agent={"version": agent.version, "install_dir": str(agent.install_dir)},
            kernels=[t.as_json() for t in decision.targets],
            driver_before=before.as_json(),
            resync=decision.replace_loaded,
        )
        warning = None
        if decision.replace_loaded:
            assert before.version is not None
            warning = RESYNC_WARNING.format(version=before.version.agent_version, range=procfs.faulty_range())
            result.warnings.insert(0, warning)
        if req.dry_run:
            for w in result.warnings:
                app.out.warn(w)
            return dry_run(plan, app.out, result)
        plan.render(app.out)
        for w in result.warnings:
            app.out.warn(w)
        if warning is not None and not req.yes and not confirm(f"{warning}. Go on?"):
            app.out.info("Nothing was changed.")
            result.data["declined"] = True
            return result
        applied = apply(plan, app.out, session)
    finally:
        remove(staging)
    after = (
        applied.results.get("verify", {}).get("driver") or host.driver_state(app.paths, backend.runner, agent).as_json()
    )
    result.changed = True
    result.data["driver"] = after
    later = [t.kernel for t in decision.targets if not t.load]
    result.reboot_required = bool(later)
    if any(t.load for t in decision.targets):
        app.out.success(f"the driver for {running} is loaded ({after.get('version') or 'version unknown'})")
    if later:
        app.out.info(f"installed for the next boot of {', '.join(later)}: restart the machine to load it")
    return result
