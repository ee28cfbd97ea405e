"""The Azure VM agent: is it there, and the steps that put it there.

A machine that fails over to Azure needs the Azure VM agent to run extensions (asr-facts.md §6).

* Windows: the Mobility Service installer brings it from 9.7.0.0, so there is nothing to do; for an older
  bundle a ``WindowsAzureVmAgent*.msi`` from the bundle dir is installed with msiexec (signed by Microsoft,
  or not at all).
* Linux: the docs disagree whether WALinuxAgent is installed for you, so asrctl checks the package and the
  process, and installs the distribution's package, from a package file in the bundle dir (air-gapped hosts)
  or from the configured repositories, with the distribution's package manager.

Per-distribution facts (package, service, package manager, package-file names) live in platforms/vmagent.toml.
``vm_agent_steps`` is what install/upgrade add to their plan (soft: a failure there is a warning, never a
reason to call a working Mobility Service install failed); ``asrctl vm-agent install`` (lifecycle/vmagent.py, the
verb) uses it strictly. This module knows packages and the OS; it decides nothing about a run.
"""

from __future__ import annotations

import fnmatch
import logging
import ntpath
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from asrctl import versions
from asrctl.agent.base import AgentBackend, InstalledAgent, Service
from asrctl.agent.windows_codes import msiexec_outcome
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.plan import Step
from asrctl.system.files import Files
from asrctl.system.runner import Runner, TimedOut
from asrctl.system.winreg_access import Registry

LOG = logging.getLogger("asrctl")

UNINSTALL_ROOTS = (
    "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
)
# Where a distribution's own package manager lives. In a sandbox (--root) asrctl never runs that one: it would
# change the real host, not the root.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_TAIL = 1500

# The Mobility Service bundle being installed, a directory to search for package files, or None: the bundle dirs.
BundleOrDir = Bundle | Path | str | None


class WindowsHost(Protocol):
    """What the VM agent's Windows side uses of the Windows backend (agent/windows.py), named here so that this
    module does not import that backend."""

    name: str

    @property
    def runner(self) -> Runner: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def files(self) -> Files: ...

    @property
    def environ(self) -> Mapping[str, str]: ...

    def installed(self) -> InstalledAgent | None: ...

    def service_map(self) -> dict[str, Service]: ...

    def log_file(self, name: str) -> str: ...

    def msi_install_argv(self, msi: str, log: str) -> list[str]: ...

    def require_microsoft_signature(self, path: str) -> dict[str, Any]: ...


@cache
def load_data() -> dict[str, Any]:
    import tomllib

    from asrctl.resources import platform_data

    try:
        return tomllib.loads(platform_data("vmagent.toml"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AsrctlError("ASRCTL-E013", f"cannot load platforms/vmagent.toml: {exc}") from None


@dataclass
class VmAgentStatus:
    os_family: str
    installed: bool | None  # None: could not tell
    version: str | None = None
    package: str | None = None
    service: str | None = None
    running: bool = False
    pids: tuple[int, ...] = ()
    source: str | None = None  # how it got (or gets) there
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "os_family": self.os_family,
            "installed": self.installed,
            "version": self.version,
            "package": self.package,
            "service": self.service,
            "running": self.running,
            "pids": list(self.pids),
            "source": self.source,
            "notes": list(self.notes),
        }


# --- Linux -------------------------------------------------------------------------------------------------


def linux_family(app: App, data: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The vmagent.toml entry for this host: by the support matrix's family when the host is supported, else by
    os-release ID/ID_LIKE."""
    entries = (data or load_data())["linux"]["family"]
    family = app.platform.family if app.platform.supported else None
    for entry in entries:
        if family and family in entry["families"]:
            return dict(entry)
    ids = [app.facts.distro_id, *app.facts.like]
    for ident in ids:
        for entry in entries:
            if ident and ident.lower() in entry["distro_ids"]:
                return dict(entry)
    return None


def resolve_tool(name: str, app: App, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(absolute path of ``name`` on PATH, or None; why not). In a sandbox the host's own tool is refused."""
    env = os.environ if environ is None else environ
    found = shutil.which(name, path=env.get("PATH") or SYSTEM_PATH)
    if found is None:
        return None, f"{name} is not on PATH"
    if app.paths.sandboxed:
        host = shutil.which(name, path=SYSTEM_PATH)
        if host is not None and os.path.realpath(host) == os.path.realpath(found):
            return None, f"{found} belongs to this host, not to the sandbox {app.paths.root}; it is not run"
    return found, None


def _fill(template: list[str], tool: str, **values: str) -> list[str]:
    """argv from a vmagent.toml template: the resolved tool, and ``{name}`` arguments replaced whole (other
    braces, such as dpkg-query's ``${Status}``, stay as they are)."""
    return [tool] + [values.get(a[1:-1], a) if a.startswith("{") and a.endswith("}") else a for a in template[1:]]


def query_package(app: App, runner: Runner, entry: Mapping[str, Any]) -> tuple[bool | None, str | None, str | None]:
    """(installed?, version, why unknown) from dpkg-query / rpm."""
    query = load_data()["query"][entry["query"]]
    tool, why = resolve_tool(query["argv"][0], app)
    if tool is None:
        return None, None, why
    argv = _fill(query["argv"], tool, package=entry["package"])
    try:
        done = runner.run(argv, timeout=60)
    except (OSError, TimedOut) as exc:
        return None, None, f"{query['argv'][0]} failed: {exc}"
    if done.returncode != 0:
        return False, None, None
    line = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    if entry["query"] == "dpkg":
        status, _, version = line.partition("\t")
        if status.split()[-1:] != ["installed"]:
            return False, None, None
        return True, version.strip() or None, None
    return True, line.strip() or None, None


def agent_processes(app: App, names: list[str]) -> list[int]:
    """PIDs of the Linux agent daemon (``waagent``/``walinuxagent``, also as ``python3 -u /usr/sbin/waagent``).
    In a sandbox only processes whose command line mentions the root count."""
    import psutil

    wanted = {n.lower() for n in names}
    scope = str(app.paths.root) if app.paths.sandboxed else None
    pids = []
    for proc in psutil.process_iter(["name", "cmdline", "pid"]):
        try:
            cmdline = proc.info["cmdline"] or []
            heads = [(proc.info["name"] or "").lower()] + [os.path.basename(a).lower() for a in cmdline[:3]]
            if not wanted.intersection(heads):
                continue
            if scope is not None and not any(scope in (a or "") for a in cmdline):
                continue
            pids.append(int(proc.info["pid"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(pids)


def _linux_status(app: App, backend: AgentBackend) -> VmAgentStatus:
    data = load_data()
    entry = linux_family(app, data)
    pids = agent_processes(app, data["linux"]["processes"])
    if entry is None:
        return VmAgentStatus(
            "linux",
            None,
            running=bool(pids),
            pids=tuple(pids),
            notes=[f"no Azure VM agent package is known for {app.facts.distro_name or app.facts.distro_id or 'this'}"],
        )
    installed, version, why = query_package(app, backend.runner, entry)
    notes = [f"cannot tell whether {entry['package']} is installed: {why}"] if why else []
    if installed and not pids:
        notes.append(
            f"{entry['package']} is installed but not running; that is expected outside Azure (after failover: "
            f"service {entry['service']} start)"
        )
    return VmAgentStatus(
        "linux",
        installed,
        version=version,
        package=entry["package"],
        service=entry["service"],
        running=bool(pids),
        pids=tuple(pids),
        source="package" if installed else None,
        notes=notes,
    )


def _newest(files: list[str]) -> str | None:
    """The package file with the highest version in its name (``WALinuxAgent-2.9.1.1-1.el8.noarch.rpm``,
    ``WindowsAzureVmAgent.amd64_2.7.41491.1172_2409121442.fre.msi``), the name breaking ties."""

    def key(path: str) -> tuple[versions.Key, str]:
        name = os.path.basename(path)
        found = versions.find(name)
        return (versions.key(found) if found else ()), name

    return max(files, key=key) if files else None


def _package_files(dirs: list[Path], patterns: list[str]) -> tuple[str | None, str | None]:
    """(newest matching package file, the pattern it matched)."""
    for pattern in patterns:
        found = []
        for d in dirs:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            found += [str(Path(d) / n) for n in names if fnmatch.fnmatch(n, pattern) and (Path(d) / n).is_file()]
        if found:
            return _newest(found), pattern
    return None, None


def _linux_steps(app: App, backend: AgentBackend, dirs: list[Path], strict: bool) -> list[Step]:
    data = load_data()
    entry = linux_family(app, data)
    releases = data["linux"]["releases"]
    if entry is None:
        return _advice(
            strict,
            "ASRCTL-E024",
            f"no Azure VM agent package is known for {app.facts.distro_name or app.facts.distro_id or 'this host'}; "
            f"install WALinuxAgent from the distribution ({releases})",
        )
    st = _linux_status(app, backend)
    if st.installed:
        return []
    package = entry["package"]
    package_file, _pattern = _package_files(dirs, entry["package_files"])
    tool, manager, why = None, None, None
    for name in entry["managers"]:
        tool, why = resolve_tool(name, app)
        if tool is not None:
            manager = name
            break
    if tool is None or manager is None:
        return _advice(strict, "ASRCTL-E065", f"cannot install {package}: {why}")
    spec = data["manager"][manager]
    if package_file:
        argv = _fill(spec["file"], tool, file=package_file)
        describe = f"Install the Azure VM agent ({package}) from {package_file} with {manager}"
    else:
        argv = _fill(spec["repo"], tool, package=package)
        describe = f"Install the Azure VM agent ({package}) from the configured repositories with {manager}"
    hints = [h for h in (spec.get("hint"), entry.get("repo_hint")) if h]
    env = dict(spec.get("env", {}))

    def run() -> dict[str, Any]:
        try:
            done = backend.runner.run(argv, env=env, timeout=1800)
        except TimedOut as exc:
            return _fail(strict, "ASRCTL-E063", f"{manager} did not finish within {exc.timeout:.0f} s")
        if done.returncode != 0:
            return _fail(
                strict,
                "ASRCTL-E065",
                f"{manager} exited {done.returncode} installing {package}"
                + (f" ({'; '.join(hints)})" if hints else "")
                + f":\n{done.output[-OUTPUT_TAIL:]}",
            )
        installed, version, why = query_package(app, backend.runner, entry)
        if not installed:
            return _fail(
                strict,
                "ASRCTL-E065",
                f"{manager} exited 0 but {package} is not installed" + (f" ({why})" if why else ""),
            )
        return {"vm_agent": {"package": package, "version": version, "from": package_file or "repository"}}

    return [Step("vm-agent", describe, run, argv=argv)]


# --- Windows -----------------------------------------------------------------------------------------------


def _windows_status(app: App, backend: WindowsHost) -> VmAgentStatus:
    data = load_data()["windows"]
    reg = backend.registry
    version = None
    for root in UNINSTALL_ROOTS:
        for sub in reg.subkeys(root):
            name = str(reg.read(f"{root}\\{sub}", "DisplayName") or "")
            if name.lower().startswith(data["display_name"].lower()):
                version = str(reg.read(f"{root}\\{sub}", "DisplayVersion") or "") or None
                break
        if version:
            break
    services = backend.service_map()
    present = [services[n.lower()] for n in data["services"] if n.lower() in services]
    exe = ntpath.join(backend.environ.get("SystemDrive", "C:") + "\\", data["executable"])
    installed = bool(version or present or backend.files.exists(exe))
    agent = backend.installed()
    bundled = agent is not None and versions.key(agent.version) >= versions.key(data["bundled_from"])
    notes = []
    if version and versions.key(version) < versions.key(data["min_version"]):
        notes.append(f"version {version} is older than {data['min_version']}, which Microsoft expects after failover")
    if not installed and bundled and agent is not None:
        notes.append(f"Mobility Service {agent.version} should have installed it (from {data['bundled_from']})")
    source = f"bundled with the Mobility Service (from {data['bundled_from']})" if bundled else None
    return VmAgentStatus(
        "windows",
        installed,
        version=version,
        package=data["display_name"],
        service=data["services"][0],
        running=any(s.running for s in present),
        pids=tuple(p for s in present for p in s.pids),
        source=source if installed or bundled else None,
        notes=notes,
    )


def _windows_steps(
    app: App, backend: WindowsHost, bundle_or_dir: BundleOrDir, dirs: list[Path], strict: bool
) -> list[Step]:
    data = load_data()["windows"]
    if isinstance(bundle_or_dir, Bundle):
        version: str | None = bundle_or_dir.version
    else:
        agent = backend.installed()
        version = agent.version if agent else None
    if version and versions.key(version) >= versions.key(data["bundled_from"]):
        return []  # the Mobility Service installer brings it
    if _windows_status(app, backend).installed:
        return []
    msi, _pattern = _package_files(dirs, [data["msi"]])
    if msi is None:
        where = ", ".join(str(d) for d in dirs) or "no bundle dir"
        why = f"Mobility Service {version} does not bundle it" if version else "it is not installed"
        return _advice(
            strict,
            "ASRCTL-E024",
            f"Azure VM agent: {why}, and there is no {data['msi']} in {where}; download it from "
            f"{data['download']} ({data['releases']}) into the bundle dir and run `asrctl vm-agent install`",
        )
    log = backend.log_file("asrctl-WindowsAzureVmAgent.log")
    argv = backend.msi_install_argv(msi, log)

    def run() -> dict[str, Any]:
        try:
            signature = backend.require_microsoft_signature(msi)
        except AsrctlError as exc:
            if strict:
                raise
            return {"warning": f"Azure VM agent not installed: {exc.message}"}
        try:
            done = backend.runner.run(argv, timeout=1800)
        except TimedOut as exc:
            return _fail(strict, "ASRCTL-E063", f"msiexec did not finish within {exc.timeout:.0f} s; see {log}")
        outcome = msiexec_outcome(done.returncode, "ASRCTL-E065")
        if not outcome.ok:
            return _fail(
                strict,
                outcome.error_code or "ASRCTL-E065",
                f"msiexec /i {ntpath.basename(msi)} exited {done.returncode} ({outcome.message}); see {log}",
            )
        return {
            "vm_agent": {"msi": msi, "vendor_exit_code": done.returncode, "signature": signature},
            "warning": outcome.warning,
            "reboot_required": outcome.reboot_required,
        }

    return [
        Step(
            "vm-agent",
            f"Install the Azure VM agent from {ntpath.basename(msi)} (after checking it is signed by Microsoft)",
            run,
            argv=argv,
        )
    ]


# --- shared ------------------------------------------------------------------------------------------------


def _fail(strict: bool, code: str, message: str) -> dict[str, Any]:
    if strict:
        raise AsrctlError(code, message)
    return {"warning": f"Azure VM agent: {message}"}


def _advice(strict: bool, code: str, message: str) -> list[Step]:
    """Nothing asrctl can install: an error for `vm-agent install`, a warning step inside install/upgrade."""
    if strict:
        raise AsrctlError(code, message)
    return [Step("vm-agent", "Azure VM agent: nothing to install here (see the warning)", lambda: {"warning": message})]


def _dirs(app: App, bundle_or_dir: BundleOrDir) -> list[Path]:
    if isinstance(bundle_or_dir, Bundle):
        return [bundle_or_dir.path.parent]
    if bundle_or_dir is not None:
        path = Path(bundle_or_dir)
        return [path if path.is_dir() else path.parent]
    from asrctl.bundles.catalog import resolve_dirs

    dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
    return [d for d in dirs if d.is_dir()]


def _is_windows(backend: AgentBackend) -> TypeGuard[WindowsHost]:
    """The factory gives a Windows host the Windows backend (agent/factory.py): its name says which it is."""
    return backend.name == "windows"


def status(app: App, backend: AgentBackend) -> VmAgentStatus:
    """Is the Azure VM agent installed (package / registry) and running (process / service)?"""
    return _windows_status(app, backend) if _is_windows(backend) else _linux_status(app, backend)


def vm_agent_steps(app: App, backend: AgentBackend, bundle_or_dir: BundleOrDir, strict: bool = False) -> list[Step]:
    """The steps that make sure the Azure VM agent is there; [] when nothing needs doing.

    ``bundle_or_dir``: the Mobility Service bundle being installed (its directory is searched for package
    files, and on Windows its version decides whether the installer brings the agent), a directory, or None
    for the bundle dirs (--bundle-dir). ``strict``: raise when it cannot be installed (``vm-agent install``);
    otherwise that becomes a warning in the step result, so install/upgrade never fail over it.
    """
    dirs = _dirs(app, bundle_or_dir)
    if _is_windows(backend):
        return _windows_steps(app, backend, bundle_or_dir, dirs, strict)
    return _linux_steps(app, backend, dirs, strict)
