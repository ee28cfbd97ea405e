"""The Linux backend: Microsoft's ``install``, ``UnifiedAgentConfigurator.sh``, ``uninstall.sh``.

Facts (../shared/reference/asr-facts.md §1; Microsoft's own scripts, /work/notes/ms-bundles-facts.md): install root
``/usr/local/ASR`` (the seed's ``/user/local/ASR`` is a typo), agent files in ``<root>/Vx``, version file
``/usr/local/.vx_version`` whose ``INSTALLATION_DIR`` names the Vx dir, ``AGENT_CONFIGURATION_STATUS=Succeeded``
when registered, the CS address in ``Vx/etc/drscout.conf`` ``[vxagent] Hostname = <ip>`` / ``Port = <port>``
with the CS type (``CSType``, missing means CSLegacy), role (``Role``, ``MasterTarget`` for a master target) and
platform (``VmPlatform``), daemons ``svagents`` and ``appservice``. Installer exit 0 is success and 98
"succeeded with warnings". The argv is the push installer's (index 12464269575) without what only the portal
knows: see docs/LIFECYCLE.md and tests/unit/test_vendor_argv.py.
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from asrctl import versions
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
    VendorOutcome,
    private_dir,
    run_vendor,
    vendor_result,
)
from asrctl.agent.vendor_errors import VendorError
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.output import Output
from asrctl.plan import Step
from asrctl.system.paths import Paths
from asrctl.system.runner import Completed, Runner, TimedOut

LOG = logging.getLogger("asrctl")

VX_VERSION = "/usr/local/.vx_version"
DEFAULT_DIR = "/usr/local/ASR"
INSTALL_LOG = "/var/log/ua_install.log"
UNINSTALL_LOG = "/var/log/ua_uninstall.log"
DAEMONS = ("svagents", "appservice")
SUCCEEDED_WITH_WARNINGS = 98
RPM_PACKAGE = "InMageVx"  # the RPM families' payload package (the Vx makefile's RPM branch)
# What the agent puts outside its install dir (Microsoft's Vx package and install scripts; unit location assumed).
AGENT_PATHS = ("/etc/vxagent",)
UNIT_PATHS = ("/etc/systemd/system/{name}.service", "/usr/lib/systemd/system/{name}.service", "/etc/init.d/{name}")
SERVICE_UNITS = ("vxagent", "uarespawnd")
DRIVER = "kernel/drivers/char/involflt.ko"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREREQS_FAILED = 99  # assumed for Linux: Windows' ProductPrereqsValidationFailed, the checker's RecordOP 99
HOST_ID_PLACEHOLDER = "1234_45466_67689"  # drscout.conf's HostId before the configurator generated one
PREREQ_CHECKER = "prereq_check_install.sh"
# The vendor's JSON files, in asrctl's private run dir (the push installer's names where it has them).
PREREQ_ERRORS = "prereqerrors.json"
INSTALLER_ERRORS = "installerextendederrors.json"
INSTALLER_SUMMARY = "installerjson.json"
CONFIGURATOR_ERRORS = "configuratorextendederrors.json"
CONFIGURATOR_SUMMARY = "configuratorjson.json"
MAX_VENDOR_FILE = 64 * 1024  # .vx_version is a dozen lines


def parse_kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip('"')
    return out


def build_number(build_tag: str) -> str | None:
    """``RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE`` → ``7567``. Microsoft's scripts take field 5 of the whole
    ``BUILD_TAG=...`` line split on ``_`` (``cut -d_ -f5``), which is field 4 of the value."""
    fields = build_tag.split("_")
    return fields[3] if len(fields) > 3 and versions.is_number(fields[3]) else None


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a vendor log for an error message: a regular file only, never blocking (a FIFO in its
    place), only its last 16 KiB read."""
    from asrctl.system import rootfs

    try:
        opened = rootfs.open_host(path, follow=False)
    except (rootfs.Refused, OSError):
        return ""
    if opened is None:
        return ""
    with opened:
        data = opened.tail(16384).decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def installer_outcome(rc: int) -> VendorOutcome:
    if rc == 0:
        return VendorOutcome(ok=True)
    if rc == SUCCEEDED_WITH_WARNINGS:
        return VendorOutcome(ok=True, warning="the installer succeeded with warnings (exit 98); read ua_install.log")
    known = {
        1: "installation failed",
        2: "invalid command line",
        3: "invalid arguments",
        11: "upgrade not supported from this version",
        15: "downgrade not supported",
        42: "the installer says this OS is not supported by the bundle",
        43: "could not stop the agent services",
        44: "could not start the agent services",
        75: "changing the role of the installed agent is not allowed",
        76: "changing the platform of the installed agent is not allowed",
        97: "failed with errors",
    }
    if rc == PREREQS_FAILED:
        return VendorOutcome(ok=False, error_code="ASRCTL-E053", message="the bundle's prerequisite checks failed")
    return VendorOutcome(ok=False, error_code="ASRCTL-E060", message=known.get(rc, "installation failed"))


def uninstaller_outcome(rc: int) -> VendorOutcome:
    """``uninstall.sh``: 0 ok; 1 nothing installed, its lock held, answered N or bad arguments; 2 the services
    could not be stopped (retry later, or Microsoft's workaround)."""
    if rc == 0:
        return VendorOutcome(ok=True)
    if rc == 2:
        return VendorOutcome(False, error_code="ASRCTL-E062", message="the agent services could not be stopped")
    if rc == 1:
        why = "nothing installed, its lock (.uninstall.lck) is held, or bad arguments"
        return VendorOutcome(False, error_code="ASRCTL-E061", message=why)
    return VendorOutcome(False, error_code="ASRCTL-E061", message="failed")


def configurator_outcome(done: Completed) -> VendorOutcome:
    rc, text = done.returncode, done.output
    if rc == 0:
        return VendorOutcome(ok=True)
    if "(7)" in text or "Couldn't connect" in text:
        return VendorOutcome(
            False, error_code="ASRCTL-E082", message="could not connect to the configuration server", transient=True
        )
    if re.search(r"\(22\).*\b5\d\d\b", text):
        return VendorOutcome(
            False, error_code="ASRCTL-E080", message="the configuration server answered with an error", transient=True
        )
    if "(60)" in text or "certificate" in text.lower():
        return VendorOutcome(
            False,
            error_code="ASRCTL-E083",
            message="(60) Peer certificate cannot be authenticated: the configuration server's certificate was "
            "rejected (expired certificate or TLS settings)",
        )
    if rc == 13:
        return VendorOutcome(
            False, error_code="ASRCTL-E048", message="the agent is configured with another configuration server"
        )
    if rc == 14:
        # Microsoft's configurator says 14 when its fingerprint step fails: a wrong passphrase or a CS it cannot
        # reach (asrctl's connectivity check has normally ruled the second out by now).
        return VendorOutcome(
            False,
            error_code="ASRCTL-E081",
            message="the configuration server refused the passphrase (or could not be reached: exit 14 means either)",
        )
    if "Invalid source config file" in text:
        return VendorOutcome(False, error_code="ASRCTL-E080", message="the configuration file is not valid")
    return VendorOutcome(False, error_code="ASRCTL-E080", message=f"the configurator failed (exit {rc})")


class LinuxBackend:
    name = "linux"

    def __init__(self, paths: Paths, runner: Runner, out: Output) -> None:
        self.paths = paths
        self.runner = runner
        self.out = out

    # -- state ----------------------------------------------------------------------------------------------
    def default_install_dir(self) -> str:
        return DEFAULT_DIR

    def version_file(self) -> Path:
        return self.paths.host(VX_VERSION)

    def read_version_file(self) -> dict[str, str] | None:
        """``.vx_version`` as key=value pairs (None when there is none): read confined to the root, a regular file
        only, non-blocking and bounded (system/rootfs.py); anything else is ``ASRCTL-E051``."""
        from asrctl.system import rootfs

        path = self.version_file()
        try:
            data = rootfs.read_file(self.paths, VX_VERSION, MAX_VENDOR_FILE)
        except rootfs.Refused as exc:
            raise AsrctlError("ASRCTL-E051", f"cannot read {path}: it {exc.reason}") from None
        except OSError as exc:
            raise AsrctlError("ASRCTL-E051", f"cannot read {path}: {exc.strerror}") from None
        if data is None:
            return None
        return parse_kv(data.decode("utf-8", errors="replace"))

    def vx_dir(self, raw: str) -> Path:
        """The agent's Vx dir as ``INSTALLATION_DIR`` names it, confined to the root (``ASRCTL-E115`` otherwise: a
        crafted version file must never make asrctl run a script outside the root)."""
        return self.paths.inside(raw, f"INSTALLATION_DIR in {VX_VERSION}")

    def installed(self) -> InstalledAgent | None:
        kv = self.read_version_file()
        if kv is None:
            return None
        vx_raw = kv.get("INSTALLATION_DIR")
        if not kv.get("VERSION") or not vx_raw:
            raise AsrctlError(
                "ASRCTL-E051",
                f"{self.version_file()} has no VERSION or INSTALLATION_DIR; the agent install is incomplete",
            )
        vx = self.vx_dir(vx_raw)
        conf = self._drscout(vx)
        hostname = conf.get("hostname") or None
        port = conf.get("port") or None
        endpoint = f"{hostname}:{port}" if hostname and port else hostname
        build_tag = kv.get("BUILD_TAG", "")
        host_id = conf.get("hostid") or None
        return InstalledAgent(
            version=kv["VERSION"],
            install_dir=vx.parent,
            build=build_number(build_tag),
            registered=kv.get("AGENT_CONFIGURATION_STATUS", "").lower() == "succeeded",
            cs_endpoint=endpoint,
            # Missing or unknown means CSLegacy, as Microsoft's own setup reads it (GetCSTypeFromDrScout).
            cs_type=conf.get("cstype") if conf.get("cstype") in ("CSLegacy", "CSPrime") else "CSLegacy",
            host_id=None if host_id == HOST_ID_PLACEHOLDER else host_id,
            platform=conf.get("vmplatform") or None,
            role="MT" if conf.get("role") == "MasterTarget" else "MS",
            details={
                "vx_dir": str(vx),
                "build_tag": build_tag or None,
                "os_built_for": kv.get("OS_BUILT_FOR"),
                "rpm_package": kv.get("RPM_PACKAGE") or None,
            },
        )

    def _drscout(self, vx: Path) -> dict[str, str]:
        from asrctl.system import rootfs

        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            data = rootfs.read_file(self.paths, rootfs.target_of(self.paths, vx / "etc" / "drscout.conf"), 1 << 20)
            parser.read_string((data or b"").decode("utf-8", errors="replace"), "drscout.conf")
        except (OSError, rootfs.Refused, configparser.Error):
            return {}
        values: dict[str, str] = {}
        for section in parser.sections():
            for key, value in parser.items(section):
                values.setdefault(key.lower(), value)
        return values

    def services(self, agent: InstalledAgent | None) -> list[Service]:
        import psutil

        found: dict[str, list[int]] = {name: [] for name in DAEMONS}
        scope = str(self.paths.root) if self.paths.sandboxed else None
        for proc in psutil.process_iter(["name", "cmdline", "pid"]):
            try:
                name = proc.info["name"]
                if name not in found:
                    continue
                # In a sandbox only the daemons started from under this root count: other sandboxes (parallel
                # tests) run their own.
                if scope is not None and not any(scope in (part or "") for part in proc.info["cmdline"] or []):
                    continue
                found[name].append(proc.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return [Service(name, bool(pids), tuple(sorted(pids))) for name, pids in found.items()]

    def pending_reboot(self) -> str | None:
        # Debian/Ubuntu's flag is about package updates; reported, not blocking (docs/LIFECYCLE.md).
        flag = self.paths.host("/var/run/reboot-required")
        return "the system says a reboot is required (/var/run/reboot-required)" if flag.exists() else None

    # -- argv -----------------------------------------------------------------------------------------------
    def install_dir(self, options: InstallOptions) -> Path:
        """``--install-dir`` (or the default) on the host, confined to the root (``ASRCTL-E115``)."""
        return self.paths.inside(options.install_dir or DEFAULT_DIR, "--install-dir")

    def vendor_files(self, run_dir: str | None, errors: str, summary: str) -> tuple[str | None, str | None]:
        """Where a vendor tool writes its extended-errors and summary JSON: asrctl's private run dir."""
        if run_dir is None:
            return None, None
        return str(Path(run_dir) / errors), str(Path(run_dir) / summary)

    def vendor_report(self, run_dir: str | None, errors: str, summary: str) -> list[VendorError]:
        """Microsoft's errors from a tool's extended-errors file in the run dir; the raw text of both of its JSON
        files goes to asrctl's log (redacted like everything there), which outlives the run dir."""
        errors_file, summary_file = self.vendor_files(run_dir, errors, summary)
        if run_dir is None or errors_file is None or summary_file is None:
            return []
        found, raw = vendor_errors.read(errors_file, run_dir)
        if raw is not None:
            LOG.info("%s:\n%s", errors_file, raw)
        _, summary_raw = vendor_errors.read(summary_file, run_dir)
        if summary_raw is not None:
            LOG.info("%s:\n%s", summary_file, summary_raw)
        return found

    def prereq_argv(self, staged: Path, options: InstallOptions) -> list[str]:
        """The bundle's own checker, as its usage line says (``-r <Agent|MasterTarget> -j <json>``; ``-v`` and ``-l``
        too). It is run with bash from the bundle dir: it sources ./libcommon.sh relative to the current directory
        and is a bash script whatever its file mode says. The role is the checker's word, not the installer's
        (it refuses MS and MT)."""
        errors = str(Path(options.run_dir or staged) / PREREQ_ERRORS)
        return [
            "/bin/bash",
            str(staged / PREREQ_CHECKER),
            "-r",
            "MasterTarget" if options.role == "MT" else "Agent",
            "-j",
            errors,
            "-v",
            "AZURE" if options.vm_platform == "Azure" else "VMWARE",
            "-l",
            options.vendor_log or str(self.paths.host(INSTALL_LOG)),
        ]

    def prereq_steps(self, staged: Path, options: InstallOptions, fallback: OwnChecks) -> list[Step]:
        """Microsoft's prerequisite checker before anything changes; a failure is its first known error's code
        (Secure Boot ASRCTL-E055, kernel E056, …, exit 6) with every error in ``details.vendor_errors``. A bundle
        without the checker gets asrctl's own equivalent (*fallback*)."""
        argv = self.prereq_argv(staged, options)
        log = Path(argv[-1])
        tool = "Microsoft's prerequisite checker (prereq_check_install.sh)"

        def run() -> dict[str, Any]:
            if not (staged / PREREQ_CHECKER).is_file():
                found = fallback()
                done = Completed(argv, 1 if found else 0)
                source = "asrctl's own checks (the bundle has no prereq_check_install.sh)"
            else:
                private_dir(options.run_dir)
                done = run_vendor(self.runner, argv, tool=tool, timeout=600, cwd=staged, log=log)
                found = []
                if options.run_dir:
                    found, raw = vendor_errors.read(argv[argv.index("-j") + 1], options.run_dir)
                    if raw is not None:
                        LOG.info("%s:\n%s", argv[argv.index("-j") + 1], raw)
                source = "prereq_check_install.sh"
            if done.returncode == 0 and not found:
                return {"checker": source, "passed": True}
            outcome = VendorOutcome(False, error_code="ASRCTL-E053", message=f"{source}: the checks failed")
            return vendor_result(  # raises: the outcome is a failure
                done,
                outcome,
                tool=tool,
                default_code="ASRCTL-E053",
                out=self.out,
                log=log,
                detail="" if found else ":\n" + (done.output[-1500:] or tail(log)),
                vendor=found,
            )

        return [Step("prereq", "Run the bundle's prerequisite checks; nothing is changed yet", run, argv=argv)]

    def install_argv(self, staged: Path, options: InstallOptions, upgrade: bool) -> list[str]:
        """The push installer's line (its order): role, platform, silent, action, CS type and install dir always
        explicit (an upgrade passes no role, as the push installer's does: the installer keeps the installed one);
        then the log, the invoker and the two JSON files."""
        install_dir = self.install_dir(options)
        argv = [str(staged / "install")]
        if not upgrade:
            argv += ["-r", options.role]
        argv += [
            "-v",
            options.vm_platform,
            "-q",
            "-a",
            "Upgrade" if upgrade else "Install",
            "-c",
            options.cs_type,
            "-d",
            str(install_dir),
            "-l",
            str(self.paths.host(INSTALL_LOG)),
            "-m",
            INVOKER,
        ]
        errors, summary = self.vendor_files(options.run_dir, INSTALLER_ERRORS, INSTALLER_SUMMARY)
        if errors and summary:
            argv += ["-e", errors, "-j", summary]
        return argv

    def configurator(self, install_dir: Path) -> Path:
        return install_dir / "Vx" / "bin" / "UnifiedAgentConfigurator.sh"

    def register_argv(self, install_dir: Path, reg: Registration) -> list[str]:
        """The push installer's order: the credentials, then log, invoker and the JSON files, then the CS type and
        its port. The endpoint is split: ``-i`` takes the host alone, ``-p`` the port (443 unless given). The
        modernized port and client request id are the portal's; the port stays the configurator's default."""
        tool = str(self.configurator(install_dir))
        errors, summary = self.vendor_files(reg.run_dir, CONFIGURATOR_ERRORS, CONFIGURATOR_SUMMARY)
        tail = ["-l", str(self.paths.host(INSTALL_LOG)), "-m", INVOKER]
        if errors and summary:
            tail += ["-f", errors, "-j", summary]
        if reg.cs_type == "CSPrime":
            assert reg.config_file is not None
            return [tool, "-q", "-S", str(reg.config_file), *tail, "-c", "CSPrime"]
        assert reg.endpoint and reg.passphrase_file
        from asrctl.net.endpoint import parse_endpoint

        endpoint = parse_endpoint(reg.endpoint)
        credentials = ["-i", endpoint.host, "-P", str(reg.passphrase_file)]
        return [tool, *credentials, *tail, "-c", "CSLegacy", "-p", str(endpoint.port)]

    def uninstall_argv(self, agent: InstalledAgent) -> list[str]:
        script = self.paths.inside(agent.install_dir / "uninstall.sh", "uninstall.sh")
        return [str(script), "-Y", "-L", str(self.paths.host(UNINSTALL_LOG))]

    def agent_config_input_argv(self, install_dir: Path) -> list[str]:
        return [str(install_dir / "Vx" / "bin" / "AzureRcmCli"), "--getagentconfiginput"]

    # -- steps ----------------------------------------------------------------------------------------------
    def stage_steps(self, bundle: Bundle, staging: Path, expected_sha256: str | None) -> list[Step]:
        def run() -> dict[str, Any]:
            from asrctl.bundles.extract import extract
            from asrctl.bundles.vxversion import check_identity, read_identity

            done = extract(bundle.path, staging, expected_sha256=expected_sha256, out=self.out)
            # Before anything from the bundle runs: is it what its name says (ASRCTL-E038/E039, exit 5)?
            identity = read_identity(staging, bundle.path.name)
            check_identity(bundle.name, identity)
            return {"sha256": done.sha256, "members": done.members, "identity": identity.as_json()}

        return [
            Step(
                "unpack",
                f"Verify and unpack {bundle.path.name} into a private directory; check its own .vx_version",
                run,
            )
        ]

    def install_steps(
        self, staged: Path, options: InstallOptions, upgrade: bool, previous: InstalledAgent | None
    ) -> list[Step]:
        argv = self.install_argv(staged, options, upgrade)
        install_dir = self.install_dir(options)
        existed_before = install_dir.exists()

        def run() -> dict[str, Any]:
            log = self.paths.host(INSTALL_LOG)
            tool = "the Mobility Service installer"
            private_dir(options.run_dir)
            done = run_vendor(self.runner, argv, tool=tool, timeout=options.timeout, cwd=staged, log=log)
            return vendor_result(
                done,
                installer_outcome(done.returncode),
                tool=tool,
                default_code="ASRCTL-E060",
                out=self.out,
                log=log,
                detail=":\n" + (tail(log) or done.output[-2000:]),
                vendor=self.vendor_report(options.run_dir, INSTALLER_ERRORS, INSTALLER_SUMMARY),
            )

        def undo() -> None:
            left = self.remove_partial(str(install_dir), existed_before)
            if left:
                self.out.warn("the partly installed agent could not be removed completely: " + "; ".join(left))

        fresh = not upgrade and previous is None
        return [
            Step(
                "upgrade" if upgrade else "install",
                ("Upgrade" if upgrade else "Install") + " the Mobility Service with Microsoft's installer",
                run,
                argv=argv,
                abort=undo if fresh else None,
                abort_describe="remove the partly installed agent" if fresh else None,
            )
        ]

    def remove_partial(self, install_dir: str, existed_before: bool) -> list[str]:
        """Leave the machine as it was before a fresh install that failed or was killed half-way, the way the real
        installer's files are removed: Microsoft's uninstaller if the installer got as far as writing it; on the RPM
        families ``rpm -e InMageVx`` if the package is still there (never rm -rf over the package's files); then the
        install dir that was not there before and the version file. Returns what is still there."""
        target = self.paths.inside(install_dir, "the install dir")
        package = self.rpm_package()
        uninstaller = target / "uninstall.sh"
        if uninstaller.is_file():
            self.runner.run(
                [str(uninstaller), "-Y", "-L", str(self.paths.host(UNINSTALL_LOG))], cwd=target, timeout=600
            )
        rpm = self.rpm_tool()
        if rpm is not None and self.package_installed(package):
            self.runner.run([rpm, "-e", package], timeout=600)
        if self.package_installed(package):
            LOG.warning("%s is still installed: its files under %s are left for rpm", package, target)
        elif not existed_before and target.exists():
            shutil.rmtree(target, ignore_errors=True)
        self.version_file().unlink(missing_ok=True)
        return self.residue(None if existed_before else target)  # a dir that was there before is not ours

    # -- what is left ---------------------------------------------------------------------------------------
    def rpm_tool(self) -> str | None:
        """The ``rpm`` to ask about the InMageVx package. In a sandbox never the host's own (it would answer for the
        real machine, and ``rpm -e`` would change it): only a stand-in on PATH that is not the system's."""
        found = shutil.which("rpm")
        if found is None or not self.paths.sandboxed:
            return found
        host = shutil.which("rpm", path=SYSTEM_PATH)
        if host is not None and os.path.realpath(host) == os.path.realpath(found):
            return None
        return found

    def rpm_package(self) -> str:
        """The RPM families' package: RPM_PACKAGE of the installed .vx_version, else Microsoft's InMageVx."""
        try:
            kv = self.read_version_file() or {}
        except AsrctlError:
            kv = {}
        return kv.get("RPM_PACKAGE") or RPM_PACKAGE

    def package_installed(self, package: str) -> bool:
        rpm = self.rpm_tool()
        if rpm is None:
            return False
        try:
            return self.runner.run([rpm, "-q", package], timeout=120).returncode == 0
        except TimedOut:
            return True  # unknown: never treat it as gone

    def residue(self, install_dir: Path | None) -> list[str]:
        """What of the agent is on the machine, processes aside: the version file, a non-empty install dir, the
        InMageVx package, /etc/vxagent, the service units, the involflt driver file and module."""
        left = []
        if self.version_file().exists():
            left.append(str(self.version_file()))
        if install_dir is not None and install_dir.exists() and any(install_dir.iterdir()):
            left.append(str(install_dir))
        package = self.rpm_package()
        if self.package_installed(package):
            left.append(f"package {package} (rpm -q {package})")
        for path in (*AGENT_PATHS, *(p.format(name=n) for p in UNIT_PATHS for n in SERVICE_UNITS)):
            if self.paths.host(path).exists():
                left.append(str(self.paths.host(path)))
        left.extend(str(p) for p in sorted(self.paths.host("/lib/modules").glob(f"*/{DRIVER}")))
        modules = self.paths.host("/proc/modules")
        with contextlib.suppress(OSError):
            if any(line.split(" ", 1)[0] == "involflt" for line in modules.read_text().splitlines()):
                left.append(f"kernel module involflt (loaded, {modules})")
        return left

    def config_input_step(self, install_dir: str) -> Step:
        argv = self.agent_config_input_argv(self.paths.inside(install_dir, "the install dir"))

        def run() -> dict[str, Any]:
            done = self.runner.run(argv, timeout=120)
            for line in done.stdout.splitlines():
                if line.startswith("getagentconfiginput:"):
                    return {"agent_config_input": line.split(":", 1)[1].strip()}
            raise AsrctlError(
                "ASRCTL-E080",
                f"AzureRcmCli --getagentconfiginput gave no agent config input (exit {done.returncode})",
            )

        return Step("config-input", "Read the agent config input for the replication appliance", run, argv=argv)

    def register_step(self, reg: Registration, install_dir: str, retry: Retry | None = None) -> Step:
        root_dir = self.paths.inside(install_dir, "the install dir")
        argv = self.register_argv(root_dir, reg)

        def run() -> dict[str, Any]:
            log = self.paths.host(INSTALL_LOG)
            tool = "UnifiedAgentConfigurator.sh"
            if reg.replace_existing:
                self.forget_configuration_server(root_dir / "Vx")

            def once() -> dict[str, Any]:
                private_dir(reg.run_dir)
                done = run_vendor(self.runner, argv, tool=tool, timeout=600, log=log)
                said = done.output.strip()[-1500:] or "no output"
                outcome = configurator_outcome(done)
                vendor = self.vendor_report(reg.run_dir, CONFIGURATOR_ERRORS, CONFIGURATOR_SUMMARY)
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

            return retry(once) if retry else once()

        target = reg.endpoint if reg.cs_type == "CSLegacy" else f"the appliance in {reg.config_file}"
        return Step("register", f"Register with {target} ({reg.cs_type})", run, argv=argv)

    def forget_configuration_server(self, vx: Path) -> None:
        """Blank ``[vxagent] Hostname`` and ``Port`` in drscout.conf, leaving every other line as it is: the state
        Microsoft's configurator itself leaves after a failed registration, and the only one in which it accepts
        another configuration server (it exits 13 while drscout.conf names a different one)."""
        conf = vx / "etc" / "drscout.conf"
        try:
            lines = conf.read_text(encoding="utf-8").splitlines(keepends=True)
        except FileNotFoundError:
            return
        section = None
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped[1:-1].strip()
                continue
            key = stripped.partition("=")[0].strip()
            if section == "vxagent" and "=" in stripped and key in ("Hostname", "Port"):
                lines[i] = f"{key} = \n"
        tmp = conf.with_name(f".{conf.name}.asrctl.{os.getpid()}")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.chmod(tmp, conf.stat().st_mode & 0o7777)
        os.replace(tmp, conf)
        LOG.info("forgot the configuration server in %s before registering with another one", conf)

    def uninstall_steps(self, agent: InstalledAgent) -> list[Step]:
        argv = self.uninstall_argv(agent)
        cwd = agent.install_dir
        tool = "uninstall.sh"
        if not Path(argv[0]).exists():
            # Microsoft's uninstall.sh removes itself even when the Vx uninstall it ran failed (it ignores that exit
            # code): what it ran is left, <Vx>/bin/uninstall -Y -L, run as it runs it (from its bin dir).
            vx_bin = Path(str(agent.details.get("vx_dir") or agent.install_dir / "Vx")) / "bin"
            if not (vx_bin / "uninstall").exists():
                raise AsrctlError(
                    "ASRCTL-E051",
                    f"neither {argv[0]} nor {vx_bin / 'uninstall'} is there: the agent cannot be uninstalled the "
                    "vendor's way",
                )
            argv = [str(vx_bin / "uninstall"), *argv[1:]]
            cwd, tool = vx_bin, "the Vx uninstaller (bin/uninstall)"

        def run() -> dict[str, Any]:
            log = self.paths.host(UNINSTALL_LOG)
            done = run_vendor(self.runner, argv, tool=tool, timeout=1800, cwd=cwd, log=log)
            result = vendor_result(
                done,
                uninstaller_outcome(done.returncode),
                tool=tool,
                default_code="ASRCTL-E061",
                out=self.out,
                log=log,
                detail=":\n" + (tail(log) or done.output[-1500:]),
            )
            # Microsoft's uninstall.sh removes its own files from the install root but not the root itself.
            with contextlib.suppress(OSError):
                agent.install_dir.rmdir()
            return result

        return [
            Step("uninstall", f"Remove the Mobility Service with Microsoft's {Path(argv[0]).name} -Y", run, argv=argv)
        ]

    def leftovers(self, agent: InstalledAgent) -> list[str]:
        left = self.residue(agent.install_dir)
        for svc in self.services(agent):
            if svc.running:
                left.append(f"process {svc.name} (pid {', '.join(map(str, svc.pids))})")
        return left

    # -- whole states (lifecycle/state.py) -------------------------------------------------------------------
    def presence(self) -> Presence:
        """``.vx_version``; the Vx dir it names (or the default one when it cannot be read, where a killed install
        leaves its files); ``uninstall.sh``'s ``.uninstall.lck`` (an uninstall that was killed)."""
        marker = self.version_file()
        vx: Path | None = None
        try:
            raw = (self.read_version_file() or {}).get("INSTALLATION_DIR")
            vx = self.vx_dir(raw) if raw else None
        except AsrctlError:
            vx = None
        root = vx.parent if vx is not None else self.paths.host(DEFAULT_DIR)
        files = vx if vx is not None else root / "Vx"
        lock = root / ".uninstall.lck"
        return Presence(
            marker=str(marker) if os.path.lexists(marker) else None,
            files=str(files) if files.is_dir() else None,
            vendor_lock=str(lock) if os.path.lexists(lock) else None,
        )

    def clear_stale_locks(self) -> list[str]:
        """Remove ``uninstall.sh``'s ``.uninstall.lck`` when no uninstall holds it any more, and say so.

        Microsoft's uninstall.sh writes its pid into the lock and refuses to run while the file is there ("already
        running" when the pid is alive, "inconsistent state" when it is not), so a killed uninstall used to fail every
        later ``uninstall -Y``. The lock is stale when the pid it names is gone or is not an ``uninstall.sh`` (a
        reused pid), or, for a lock without a pid, when no process runs that install dir's ``uninstall.sh``. Called
        under the host lock, after the orphaned vendor tools of a killed run were stopped."""
        from asrctl.system import rootfs

        lock = self.presence().vendor_lock
        if lock is None:
            return []
        path = Path(lock)
        script = str(path.parent / "uninstall.sh")
        try:
            raw = rootfs.read_host(path, 4096, follow=False) or b""
        except rootfs.Refused:
            raw = b""
        first = raw.decode("utf-8", errors="replace").strip().splitlines()[:1]
        pid = int(first[0]) if first and first[0].isascii() and first[0].isdigit() else None
        holder = _uninstall_process(script, pid)
        if holder is not None:
            return []
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            return []
        except OSError as exc:
            LOG.warning("could not remove the stale %s: %s", path, exc)
            return [f"the stale vendor lock {path} could not be removed: {exc.strerror or exc}"]
        why = f"pid {pid} is gone" if pid is not None else "no uninstall.sh is running"
        LOG.warning("removed the stale vendor lock %s (%s: an interrupted uninstall left it)", path, why)
        return [f"removed the stale vendor lock {path} ({why}: an interrupted uninstall left it)"]

    def _named_vx(self) -> Path | None:
        """The Vx dir the version file names (confined to the root), whether or not it exists; None when the
        version file names none or cannot be read. A half-installed agent's files are looked for only there: an
        agent's files elsewhere (the default dir) are not what this version file describes."""
        try:
            raw = (self.read_version_file() or {}).get("INSTALLATION_DIR")
            return self.vx_dir(raw) if raw else None
        except AsrctlError:
            return None

    def remove_remains(self) -> list[str]:
        """Remove what is left of a half-installed agent — the repair ``uninstall -Y`` does when the version file is
        unreadable or missing while the agent's files are there (``ASRCTL-E051`` sends people here, so this must
        work). Microsoft's own tools first (``Vx/bin/stop``, then ``uninstall.sh -Y -L`` when there is a version file
        for it; on the RPM families ``rpm -e InMageVx`` while the package is there, never rm -rf over its files), then
        only what is recognisably the agent's: the ``Vx`` tree, the install dir's ``uninstall.sh``, ``.uninstall.lck``
        and ``Third-Party_Notices.txt``, the version file, the install dir if that leaves it empty. All of it inside
        the root."""
        removed: list[str] = []
        p = self.presence()
        package = self.rpm_package()
        vx = Path(p.files) if p.files else self._named_vx() or self.paths.host(DEFAULT_DIR) / "Vx"
        root = vx.parent
        stop = vx / "bin" / "stop"
        if stop.is_file() and os.access(stop, os.X_OK):
            self.runner.run([str(stop)], timeout=300)
        uninstaller = root / "uninstall.sh"
        if uninstaller.is_file() and p.marker is not None and os.access(uninstaller, os.X_OK):
            self.runner.run([str(uninstaller), "-Y", "-L", str(self.paths.host(UNINSTALL_LOG))], cwd=root, timeout=600)
        rpm = self.rpm_tool()
        if rpm is not None and self.package_installed(package):
            self.runner.run([rpm, "-e", package], timeout=600)
            if not self.package_installed(package):
                removed.append(f"package {package}")
        if self.package_installed(package):
            LOG.warning("%s is still installed: its files under %s are left for rpm", package, vx)
        elif vx.name == "Vx" and vx.is_dir() and not vx.is_symlink():
            shutil.rmtree(vx)
            removed.append(str(vx))
        for name in ("uninstall.sh", ".uninstall.lck", "Third-Party_Notices.txt"):
            leftover = root / name
            if os.path.lexists(leftover) and not leftover.is_dir():
                leftover.unlink()
                removed.append(str(leftover))
        marker = self.version_file()
        if os.path.lexists(marker):
            if marker.is_dir() and not marker.is_symlink():
                shutil.rmtree(marker)
            else:
                marker.unlink()
            removed.append(str(marker))
        try:
            root.rmdir()
            removed.append(str(root))
        except OSError:
            pass
        return removed

    def start_services(self, agent: InstalledAgent) -> None:
        """``<Vx>/bin/start`` (Microsoft's own start script): what an interrupted or failed upgrade's undo runs, since
        the installer stops the services before it replaces the agent's files."""
        start = self.paths.inside(agent.install_dir / "Vx" / "bin" / "start", "the agent's start script")
        done = run_vendor(self.runner, [str(start)], tool="the agent's start script", timeout=300)
        if done.returncode != 0:
            raise AsrctlError(
                "ASRCTL-E060",
                f"{start} exited {done.returncode}: the agent's services did not start:\n{done.output[-1500:]}",
                vendor_exit_code=done.returncode,
            )


def _uninstall_process(script: str, pid: int | None) -> int | None:
    """The pid of a live process running ``script`` (Microsoft's uninstall.sh of that install dir), preferring
    ``pid`` (what its lock names); None when there is none."""
    import psutil

    def runs_it(proc: psutil.Process) -> bool:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return script in proc.cmdline()[:3]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    if pid is not None:
        try:
            return pid if runs_it(psutil.Process(pid)) else None
        except psutil.NoSuchProcess:
            return None
    for proc in psutil.process_iter():
        if runs_it(proc):
            return int(proc.pid)
    return None
