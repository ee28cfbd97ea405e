"""The Windows backend: Microsoft's ``UnifiedAgent.exe``, ``UnifiedAgentConfigurator.exe`` and ``MsiExec``.

Facts from ../shared/reference/asr-facts.md §2 (docs/WINDOWS.md has the command lines and the exit-code table):
the bundle is a self-extracting ``.exe`` (``/q /x:<dir>``); the agent installs into
``C:\\Program Files (x86)\\Microsoft Azure Site Recovery`` with the configurator in its ``agent\\`` folder; the MSI
product code is ``{275197FC-14FD-4560-A5EB-38217F80CBD1}``; the state lives in
``HKLM\\SOFTWARE\\Wow6432Node\\InMage Systems\\Installed Products\\5``; the services are ``svagents`` and
``InMage Scout Application Service``; logs go to ``%ProgramData%\\ASRSetupLogs``.

Everything that touches Windows is injected (runner, registry, file access, service list, environment,
elevation check), so this module is imported and tested on Linux; nothing here uses a POSIX-only call, and the
defaults reach for the Windows APIs only when first used. Paths of the target machine are strings handled with
:mod:`ntpath`, never :class:`pathlib.Path` arithmetic (which would use ``/`` on Linux).

Every program starts from an absolute path (``%SystemRoot%\\System32\\…`` for Windows' own tools): a bare
``MsiExec.exe`` would be searched for in the application's and the current directory first.
"""

from __future__ import annotations

import configparser
import hashlib
import logging
import ntpath
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from asrctl.agent import vendor_errors
from asrctl.agent.base import (
    INVOKER,
    InstalledAgent,
    InstallOptions,
    OwnChecks,
    Presence,
    Registration,
    Retry,
    Service,
    run_vendor,
    vendor_result,
)
from asrctl.agent.vendor_errors import VendorError
from asrctl.agent.windows_codes import (
    CONFIGURATOR_LOG,
    INSTALL_LOG,
    configurator_outcome,
    installer_outcome,
    msiexec_outcome,
)
from asrctl.agent.windows_signing import DEFENDER_SCRIPT, SIGNATURE_SCRIPT, PowerShell, Signature
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.output import Output
from asrctl.plan import Step
from asrctl.system.files import Files, LocalFiles
from asrctl.system.paths import Paths
from asrctl.system.runner import Runner
from asrctl.system.winreg_access import Registry, RegistryValue

LOG = logging.getLogger("asrctl")

PRODUCT_CODE = "{275197FC-14FD-4560-A5EB-38217F80CBD1}"
# The MSI is 32-bit: its uninstall key is in the Wow6432Node hive; SCCM's detection names the plain path.
UNINSTALL_KEYS = (
    "SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\" + PRODUCT_CODE,
    "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\" + PRODUCT_CODE,
)
INMAGE_KEYS = (
    "SOFTWARE\\Wow6432Node\\InMage Systems\\Installed Products\\5",
    "SOFTWARE\\InMage Systems\\Installed Products\\5",
)
SESSION_MANAGER = "SYSTEM\\CurrentControlSet\\Control\\Session Manager"
CBS_REBOOT_PENDING = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending"
WU_REBOOT_REQUIRED = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\RebootRequired"

SERVICES = ("svagents", "InMage Scout Application Service")
INSTALL_DIR_NAME = "Microsoft Azure Site Recovery"
SETUP_LOGS = "ASRSetupLogs"
UNINSTALL_LOG = "UAuninstall.log"  # the push installer's MsiExec line (index 12464269575)
INSTALLERS = ("UnifiedAgent.exe", "UnifiedAgentInstaller.exe")

# --- injectable pieces -------------------------------------------------------------------------------------


class WindowsService(Protocol):
    """A Windows service as psutil's ``WindowsService`` shows it: the three calls the backend makes."""

    def name(self) -> str: ...

    def status(self) -> str: ...

    def pid(self) -> int | None: ...


def _psutil_services() -> Iterable[WindowsService]:
    import psutil

    win_service_iter = getattr(psutil, "win_service_iter", None)
    if win_service_iter is None:  # not Windows
        return []
    return win_service_iter()


def _default_is_admin() -> bool:
    from asrctl.system.winreg_access import is_admin

    return is_admin()


def wjoin(*parts: str | os.PathLike[str]) -> str:
    return ntpath.join(*(os.fspath(p) for p in parts))


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class WindowsBackend:
    name = "windows"

    def __init__(
        self,
        paths: Paths,
        runner: Runner,
        out: Output,
        registry: Registry | None = None,
        services_iter: Callable[[], Iterable[WindowsService]] | None = None,
        environ: Mapping[str, str] | None = None,
        files: Files | None = None,
        is_admin: Callable[[], bool] | None = None,
    ) -> None:
        self.paths = paths
        self.runner = runner
        self.out = out
        self._registry = registry
        self.services_iter = services_iter or _psutil_services
        self.environ = os.environ if environ is None else environ
        self.files = files or LocalFiles()
        self.is_admin = is_admin or _default_is_admin

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from asrctl.system.winreg_access import WinRegistry

            self._registry = WinRegistry()
        return self._registry

    # -- well-known places ----------------------------------------------------------------------------------
    def _env(self, name: str, default: str) -> str:
        return self.environ.get(name) or default

    @property
    def system32(self) -> str:
        return wjoin(self._env("SystemRoot", "C:\\Windows"), "System32")

    @property
    def program_data(self) -> str:
        return self._env("ProgramData", "C:\\ProgramData")

    @property
    def log_dir(self) -> str:
        return wjoin(self.program_data, SETUP_LOGS)

    def log_file(self, name: str) -> str:
        return wjoin(self.log_dir, name)

    @property
    def powershell(self) -> str:
        return wjoin(self.system32, "WindowsPowerShell", "v1.0", "powershell.exe")

    @property
    def msiexec(self) -> str:
        return wjoin(self.system32, "MsiExec.exe")

    @property
    def antivirus_exclusion(self) -> str:
        return wjoin(self.program_data, "ASR", "agent")

    def default_install_dir(self) -> str:
        return wjoin(self._env("ProgramFiles(x86)", "C:\\Program Files (x86)"), INSTALL_DIR_NAME)

    # -- state ----------------------------------------------------------------------------------------------
    def _read_first(self, keys: Iterable[str], value: str) -> RegistryValue | None:
        for key in keys:
            data = self.registry.read(key, value)
            if data not in (None, ""):
                return data
        return None

    def uninstall_key(self) -> str | None:
        return next((k for k in UNINSTALL_KEYS if self.registry.exists(k)), None)

    def installed(self) -> InstalledAgent | None:
        key = self.uninstall_key()
        if key is None:
            return None
        version = self.registry.read(key, "DisplayVersion")
        if not version:
            raise AsrctlError(
                "ASRCTL-E051",
                f"HKLM\\{key} has no DisplayVersion; the Mobility Service install is incomplete",
            )
        install_dir = str(
            self._read_first(INMAGE_KEYS, "InstallDirectory")
            or self.registry.read(key, "InstallLocation")
            or self.default_install_dir()
        ).rstrip("\\")
        if ntpath.basename(install_dir).lower() == "agent":
            install_dir = ntpath.dirname(install_dir)
        status = str(self._read_first(INMAGE_KEYS, "AgentConfigurationStatus") or "")
        conf = self._drscout(install_dir)
        hostname = conf.get("hostname") or None
        port = conf.get("port") or None
        cs_type = conf.get("cstype") or ("CSPrime" if conf.get("rcmsettingspath") else "CSLegacy" if hostname else None)
        parts = str(version).split(".")
        return InstalledAgent(
            version=str(version),
            install_dir=Path(install_dir),
            build=parts[2] if len(parts) > 2 else None,
            registered=status.strip().lower() == "succeeded",
            cs_endpoint=f"{hostname}:{port}" if hostname and port else hostname,
            cs_type=cs_type,
            host_id=conf.get("hostid") or None,
            platform=conf.get("vmplatform") or None,
            details={
                "uninstall_key": f"HKLM\\{key}",
                "display_name": self.registry.read(key, "DisplayName"),
                "agent_configuration_status": status or None,
                "post_install_actions": self._read_first(INMAGE_KEYS, "PostInstallActions"),
                "log_dir": self.log_dir,
            },
        )

    def drscout_path(self, install_dir: str) -> str:
        return wjoin(install_dir, "agent", "Application Data", "etc", "drscout.conf")

    def _drscout(self, install_dir: str) -> dict[str, str]:
        text = self.files.read_text(self.drscout_path(install_dir))
        if not text:
            return {}
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read_string(text, "drscout.conf")
        except configparser.Error:
            return {}
        values: dict[str, str] = {}
        for section in parser.sections():
            for key, value in parser.items(section):
                values.setdefault(key.lower(), value)
        return values

    def service_map(self) -> dict[str, Service]:
        """Every service the lister shows, by lower-case name."""
        found: dict[str, Service] = {}
        for svc in self.services_iter():
            try:
                name = svc.name()
                status = svc.status()
                pid = svc.pid()
            except Exception as exc:  # psutil raises per service (access denied, deleted meanwhile)
                LOG.debug("service query failed: %s", exc)
                continue
            found[name.lower()] = Service(name, status == "running", (pid,) if pid else ())
        return found

    def services(self, agent: InstalledAgent | None) -> list[Service]:
        present = self.service_map()
        found = [present.get(name.lower()) for name in SERVICES]
        return [
            Service(name, svc.running, svc.pids) if svc else Service(name, False)
            for name, svc in zip(SERVICES, found, strict=True)
        ]

    def pending_reboot(self) -> str | None:
        reasons = []
        renames = self.registry.read(SESSION_MANAGER, "PendingFileRenameOperations")
        if renames and any(str(r).strip() for r in (renames if isinstance(renames, list | tuple) else [renames])):
            reasons.append("pending file renames (Session Manager\\PendingFileRenameOperations)")
        if self.registry.exists(CBS_REBOOT_PENDING):
            reasons.append("Component Based Servicing\\RebootPending")
        if self.registry.exists(WU_REBOOT_REQUIRED):
            reasons.append("WindowsUpdate\\Auto Update\\RebootRequired")
        if not reasons:
            return None
        return "Windows has a restart pending: " + "; ".join(reasons)

    # -- preconditions --------------------------------------------------------------------------------------
    def require_admin(self) -> None:
        if not self.paths.sandboxed and not self.is_admin():
            raise AsrctlError(
                "ASRCTL-E040", "changing the Mobility Service needs an elevated prompt (Run as administrator)"
            )

    def refuse_if_reboot_pending(self) -> None:
        reason = self.pending_reboot()
        if reason:
            raise AsrctlError(
                "ASRCTL-E043",
                f"{reason}. The Mobility Service installer refuses to run (exit 62) until the machine restarts",
            )

    # -- argv -----------------------------------------------------------------------------------------------
    def installer_path(self, staged: str | os.PathLike[str]) -> str:
        """``UnifiedAgent.exe`` in the unpacked bundle; ``UnifiedAgentInstaller.exe`` when only that is there."""
        for name in INSTALLERS:
            candidate = wjoin(staged, name)
            if self.files.exists(candidate):
                return candidate
        return wjoin(staged, INSTALLERS[0])

    def extract_argv(self, bundle: Bundle, staged: str | os.PathLike[str]) -> list[str]:
        return [os.fspath(bundle.path), "/q", "/x:" + os.fspath(staged)]

    def vendor_files(self, run_dir: str | None, prefix: str) -> list[str]:
        """``/ValidationsOutputJsonFilePath`` and ``/SummaryFilePath`` in asrctl's private run dir."""
        if run_dir is None:
            return []
        errors, summary = wjoin(run_dir, f"{prefix}extendederrors.json"), wjoin(run_dir, f"{prefix}json.json")
        return ["/ValidationsOutputJsonFilePath", errors, "/SummaryFilePath", summary]

    def vendor_report(self, run_dir: str | None, prefix: str) -> list[VendorError]:
        """Microsoft's errors from a tool's ``/ValidationsOutputJsonFilePath`` file (the same ``Errors`` shape as on
        Linux); its raw text goes to asrctl's log."""
        if run_dir is None:
            return []
        path = wjoin(run_dir, f"{prefix}extendederrors.json")
        text = self.files.read_text(path) if self.files.exists(path) else None
        if text is None:
            return []
        text = text[: vendor_errors.MAX_BYTES]
        LOG.info("%s:\n%s", path, text)
        return vendor_errors.parse(text)

    def install_argv(self, staged: str | os.PathLike[str], options: InstallOptions, upgrade: bool) -> list[str]:
        """The push installer's order (index 12464269575): role (not on an upgrade: the installed one is kept),
        platform, silent, the installation type, CS type and location, then the log, invoker and JSON files."""
        argv = [self.installer_path(staged)]
        if not upgrade:
            argv += ["/Role", options.role]
        argv += [
            "/Platform",
            options.vm_platform,
            "/Silent",
            "/InstallationType",
            "Upgrade" if upgrade else "Install",
            "/CSType",
            options.cs_type,
            "/InstallLocation",
            options.install_dir or self.default_install_dir(),
            "/LogFilePath",
            self.log_file(INSTALL_LOG),
            "/Invoker",
            INVOKER,
        ]
        return argv + self.vendor_files(options.run_dir, "installer")

    def configurator(self, install_dir: str) -> str:
        return wjoin(install_dir, "agent", "UnifiedAgentConfigurator.exe")

    def register_argv(self, install_dir: str, reg: Registration) -> list[str]:
        """The endpoint split as the push installer passes it: ``/CSEndPoint`` the host, ``/CSPort`` the port. The
        modernized port and client request id are the portal's."""
        tool = self.configurator(install_dir)
        tail = ["/LogFilePath", self.log_file(CONFIGURATOR_LOG), "/Invoker", INVOKER]
        tail += self.vendor_files(reg.run_dir, "configurator")
        if reg.cs_type == "CSPrime":
            assert reg.config_file is not None
            return [tool, "/SourceConfigFilePath", os.fspath(reg.config_file), *tail, "/CSType", "CSPrime"]
        assert reg.endpoint and reg.passphrase_file
        from asrctl.net.endpoint import parse_endpoint

        endpoint = parse_endpoint(reg.endpoint)
        credentials = ["/CSEndPoint", endpoint.host, "/PassphraseFilePath", os.fspath(reg.passphrase_file)]
        return [tool, *credentials, *tail, "/CSType", "CSLegacy", "/CSPort", str(endpoint.port)]

    def uninstall_argv(self) -> list[str]:
        return [self.msiexec, "/qn", "/x", PRODUCT_CODE, "/L+*V", self.log_file(UNINSTALL_LOG)]

    def msi_install_argv(self, msi: str, log: str) -> list[str]:
        return [self.msiexec, "/i", msi, "/quiet", "/norestart", "/L*V", log]

    @property
    def ps(self) -> PowerShell:
        return PowerShell(self.runner, self.powershell)

    def powershell_argv(self, script: str) -> list[str]:
        return self.ps.argv(script)

    def agent_config_input_argv(self, install_dir: str) -> list[str]:
        return [wjoin(install_dir, "agent", "AzureRcmCli.exe"), "--getagentconfiginput"]

    # -- signatures and antivirus ---------------------------------------------------------------------------
    def signature(self, path: str) -> Signature:
        return self.ps.signature(path)

    def require_microsoft_signature(self, path: str) -> dict[str, Any]:
        return self.ps.require_microsoft_signature(path)

    def defender_excludes(self) -> bool | None:
        return self.ps.defender_excludes(self.antivirus_exclusion, lambda var: self._env(var, ""))

    def antivirus_step(self) -> Step:
        folder = self.antivirus_exclusion

        def run() -> dict[str, Any]:
            excluded = self.defender_excludes()
            if excluded:
                self.out.detail(f"Microsoft Defender excludes {folder}")
                return {"defender_excludes_agent_folder": True}
            if excluded is False:
                warning = (
                    f"Microsoft Defender does not exclude {folder}: Microsoft requires that antivirus software "
                    f"exclude it (Add-MpPreference -ExclusionPath '{folder}')"
                )
            else:
                warning = f"exclude {folder} from antivirus scanning: Microsoft requires it for the Mobility Service"
            self.out.warn(warning)
            return {"defender_excludes_agent_folder": excluded, "warning": warning}

        return Step(
            "antivirus",
            f"Check that antivirus (Microsoft Defender) excludes {folder}",
            run,
            argv=self.powershell_argv(DEFENDER_SCRIPT),
        )

    # -- steps ----------------------------------------------------------------------------------------------
    def stage_steps(self, bundle: Bundle, staging: Path, expected_sha256: str | None) -> list[Step]:
        self.require_admin()
        self.refuse_if_reboot_pending()
        exe = os.fspath(bundle.path)
        staged = os.fspath(staging)

        def verify() -> dict[str, Any]:
            result: dict[str, Any] = {}
            if expected_sha256:
                actual = _sha256(bundle.path)
                if actual.lower() != expected_sha256.lower():
                    raise AsrctlError(
                        "ASRCTL-E030",
                        f"{bundle.path.name}: SHA-256 is {actual}, expected {expected_sha256}",
                    )
                result["sha256"] = actual
            result["signature"] = self.require_microsoft_signature(exe)
            return result

        argv = self.extract_argv(bundle, staged)

        def unpack() -> dict[str, Any]:
            self.files.makedirs(staged)
            done = run_vendor(self.runner, argv, tool=f"unpacking {bundle.path.name}", timeout=1800)
            installer = self.installer_path(staged)
            if done.returncode != 0 or not self.files.exists(installer):
                raise AsrctlError(
                    "ASRCTL-E033",
                    f"unpacking {bundle.path.name} failed (exit {done.returncode}); "
                    f"{ntpath.basename(installer)} is not in {staged}",
                    vendor_exit_code=done.returncode,
                )
            return {"staged": staged}

        return [
            Step(
                "verify",
                f"Check {bundle.path.name}: digest, and Authenticode signature by Microsoft",
                verify,
                argv=self.powershell_argv(SIGNATURE_SCRIPT),
            ),
            Step("unpack", f"Unpack {bundle.path.name} into a private directory", unpack, argv=argv),
        ]

    def prereq_steps(self, staged: Path, options: InstallOptions, fallback: OwnChecks) -> list[Step]:
        """The Windows bundle has no separate checker: UnifiedAgent.exe validates itself (exit 99, its errors in
        /ValidationsOutputJsonFilePath, read like Linux's). What asrctl can check without it, free space and a
        pending restart, it already did among the preconditions."""
        return []

    def install_steps(
        self, staged: Path, options: InstallOptions, upgrade: bool, previous: InstalledAgent | None
    ) -> list[Step]:
        self.require_admin()
        self.refuse_if_reboot_pending()
        argv = self.install_argv(staged, options, upgrade)
        log = self.log_file(INSTALL_LOG)
        had_product = self.uninstall_key() is not None

        def run() -> dict[str, Any]:
            installer = self.installer_path(staged)
            argv[0] = installer
            if options.run_dir:
                self.files.makedirs(options.run_dir)
            # Checked again right before it runs: nothing unsigned from the staging dir is ever started.
            signature = self.require_microsoft_signature(installer)
            tool = "the Mobility Service installer"
            done = run_vendor(
                self.runner, argv, tool=tool, timeout=options.timeout, cwd=Path(os.fspath(staged)), log=log
            )
            outcome = installer_outcome(done.returncode, log)
            vendor = self.vendor_report(options.run_dir, "installer")
            result = vendor_result(
                done, outcome, tool=tool, default_code="ASRCTL-E060", out=self.out, log=log, vendor=vendor
            )
            return {**result, "signature": signature}

        def undo() -> None:
            if not had_product:
                self.remove_partial(options.install_dir or self.default_install_dir(), False)

        fresh = not upgrade and previous is None
        return [
            self.antivirus_step(),
            Step(
                "upgrade" if upgrade else "install",
                ("Upgrade" if upgrade else "Install") + " the Mobility Service with Microsoft's UnifiedAgent.exe",
                run,
                argv=argv,
                abort=undo if fresh else None,
                abort_describe="remove the partly installed agent (MsiExec /x)" if fresh else None,
            ),
        ]

    def remove_partial(self, install_dir: str, existed_before: bool) -> list[str]:
        """A fresh install that failed or was killed half-way: remove what Windows Installer registered, if
        anything (Windows Installer rolls back its own files). Returns what is still registered."""
        if self.uninstall_key() is not None:
            self.runner.run(self.uninstall_argv(), timeout=1800)
        key = self.uninstall_key()
        return [f"HKLM\\{key}"] if key is not None else []

    def config_input_step(self, install_dir: str) -> Step:
        """The agent config input for a modernized appliance. Microsoft documents it for Windows only in the
        configurator's window; ``agent\\AzureRcmCli.exe`` is tried when present (an inference from Linux)."""
        argv = self.agent_config_input_argv(install_dir)
        advice = (
            "copy the Agent Config Input from the UnifiedAgentConfigurator window "
            f"({self.configurator(install_dir)}) into the replication appliance, then run "
            "`asrctl register --cs-type CSPrime --config-file FILE`"
        )

        def run() -> dict[str, Any]:
            if not self.files.exists(argv[0]):
                return {"warning": advice}
            done = self.runner.run(argv, timeout=120)
            for line in done.stdout.splitlines():
                if line.startswith("getagentconfiginput:"):
                    return {"agent_config_input": line.split(":", 1)[1].strip()}
            return {"warning": advice}

        return Step("config-input", "Read the agent config input for the replication appliance", run, argv=argv)

    def register_step(self, reg: Registration, install_dir: str, retry: Retry | None = None) -> Step:
        argv = self.register_argv(install_dir, reg)
        log = self.log_file(CONFIGURATOR_LOG)

        def once() -> dict[str, Any]:
            tool = "UnifiedAgentConfigurator.exe"
            if reg.run_dir:
                self.files.makedirs(reg.run_dir)
            done = run_vendor(self.runner, argv, tool=tool, timeout=600, log=log)
            said = done.output.strip()[-1500:] or "no output"
            outcome = configurator_outcome(done)
            vendor = self.vendor_report(reg.run_dir, "configurator")
            return vendor_result(
                done,
                outcome,
                tool=tool,
                default_code="ASRCTL-E080",
                out=self.out,
                log=log,
                detail=f": {said}",
                vendor=vendor,
            )

        def run() -> dict[str, Any]:
            return retry(once) if retry else once()

        target = reg.endpoint if reg.cs_type == "CSLegacy" else f"the appliance in {reg.config_file}"
        return Step("register", f"Register with {target} ({reg.cs_type})", run, argv=argv)

    def uninstall_steps(self, agent: InstalledAgent) -> list[Step]:
        self.require_admin()
        argv = self.uninstall_argv()
        log = argv[-1]

        def run() -> dict[str, Any]:
            done = run_vendor(self.runner, argv, tool="MsiExec /x", timeout=1800, log=log)
            outcome = msiexec_outcome(done.returncode, "ASRCTL-E061")
            return vendor_result(done, outcome, tool="MsiExec /x", default_code="ASRCTL-E061", out=self.out, log=log)

        return [Step("uninstall", "Remove the Mobility Service with Windows Installer (MsiExec /x)", run, argv=argv)]

    def leftovers(self, agent: InstalledAgent) -> list[str]:
        left = []
        key = self.uninstall_key()
        if key is not None:
            left.append(f"HKLM\\{key}")
        for svc in self.services(agent):
            if svc.running:
                left.append(f"service {svc.name} (running)")
        return left

    # -- whole states (lifecycle/state.py) -------------------------------------------------------------------
    def presence(self) -> Presence:
        """Windows Installer puts the product key and the files in place, or rolls both back, in one transaction:
        the product key stands for both."""
        key = self.uninstall_key()
        where = f"HKLM\\{key}" if key else None
        return Presence(marker=where, files=where)

    def clear_stale_locks(self) -> list[str]:
        """Windows Installer keeps its own mutex (``ASRCTL-E054`` while it is held); no vendor lock file to clear."""
        return []

    def remove_remains(self) -> list[str]:
        """A half-installed agent on Windows is a product key without its files (or the reverse, which Windows
        Installer does not leave): MsiExec /x removes it."""
        if self.uninstall_key() is None:
            return []
        self.runner.run(self.uninstall_argv(), timeout=1800)
        return [f"HKLM\\{self.uninstall_key() or 'the Mobility Service product'}"]

    def start_services(self, agent: InstalledAgent) -> None:
        """``sc start`` for each agent service that is not running (Microsoft's own docs control them with sc)."""
        sc = wjoin(self.system32, "sc.exe")
        for svc in self.services(agent):
            if svc.running:
                continue
            done = run_vendor(self.runner, [sc, "start", svc.name], tool=f"sc start {svc.name}", timeout=300)
            if done.returncode not in (0, 1056):  # 1056: ERROR_SERVICE_ALREADY_RUNNING
                raise AsrctlError(
                    "ASRCTL-E060", f"sc start {svc.name} exited {done.returncode}: the service did not start"
                )
