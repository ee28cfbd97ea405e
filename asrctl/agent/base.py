"""The backend protocol: what the lifecycle needs from an OS-specific agent backend.

The lifecycle (asrctl/lifecycle/) decides *what* happens; a backend knows *how* on its OS: where the agent
lives, the vendor tools' exact argv, what their exit codes mean. Backends take an injected runner and root, so
the Windows backend is tested on Linux.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from asrctl.agent import vendor_errors
from asrctl.agent.vendor_errors import VendorError
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.output import Output
from asrctl.plan import Step
from asrctl.system.runner import Completed, Runner, TimedOut

StepResult = dict[str, Any]
# What asrctl tells Microsoft's tools it is (their -m / /Invoker, recorded in the summary's InvokerType). Microsoft's
# default; the push installer says vmtools or PushInstall, and with those the agent leaves its telemetry to the push
# service. asrctl is neither: it is a command line, so the agent reports as it does when run by hand.
INVOKER = "CommandLine"
# asrctl's own equivalent of the bundle's prerequisite checker, for a bundle that has none: Microsoft's error names
# for what failed (the lifecycle decides what can be checked without the bundle's script, lifecycle/prereq.py).
OwnChecks = Callable[[], list[VendorError]]
# Runs a step's action, again on a transient failure: the lifecycle decides the policy (lifecycle/registration.py),
# the backend only marks which failures are transient (VendorOutcome.transient).
Retry = Callable[[Callable[[], StepResult]], StepResult]


@dataclass(frozen=True)
class Service:
    name: str
    running: bool
    pids: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "running": self.running, "pids": list(self.pids)}


@dataclass(frozen=True)
class InstalledAgent:
    version: str
    install_dir: Path  # the install root (Linux: /usr/local/ASR; Windows: ...\Microsoft Azure Site Recovery)
    build: str | None = None
    registered: bool = False
    cs_endpoint: str | None = None
    cs_type: str | None = None
    host_id: str | None = None
    platform: str | None = None  # VmWare | Azure
    role: str | None = None  # MS | MT, from the agent's own configuration (drscout.conf Role)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Presence:
    """The raw signs of the agent on the host, each read on its own (``AgentBackend.presence``), so that half an
    agent shows as half: the marker that says "installed" (Linux ``.vx_version``, Windows the MSI product key),
    the agent's own files, and a lock a vendor tool left behind. Each is a path (or key) when there, else None."""

    marker: str | None
    files: str | None
    vendor_lock: str | None = None


@dataclass(frozen=True)
class Registration:
    """What to register with. Exactly one of the classic or modernized inputs is set."""

    cs_type: str  # "CSLegacy" | "CSPrime"
    endpoint: str | None = None  # classic: host[:port]
    passphrase_file: Path | None = None  # classic: a file the vendor tool reads (never the value itself)
    config_file: Path | None = None  # modernized: the appliance-generated config
    run_dir: str | None = None  # asrctl's private directory of this run, where the vendor tool writes its JSON files
    # register --force to another server: Microsoft's configurator refuses to replace the server drscout.conf names
    # (exit 13), so the backend first forgets it, as a failed registration does.
    replace_existing: bool = False


@dataclass(frozen=True)
class InstallOptions:
    role: str = "MS"
    vm_platform: str = "VmWare"
    install_dir: str | None = None  # target-system path; None = the vendor default
    cs_type: str = "CSLegacy"
    timeout: float = 3600.0
    run_dir: str | None = None  # asrctl's private directory of this run, where the vendor tool writes its JSON files
    vendor_log: str | None = None  # target path of the tools' -l log; None = Microsoft's /var/log/ua_install.log


@dataclass(frozen=True)
class VendorOutcome:
    """What a vendor exit code means for asrctl."""

    ok: bool
    warning: str | None = None
    reboot_required: bool = False
    error_code: str | None = None  # ASRCTL-E... when not ok
    message: str | None = None
    transient: bool = False  # worth retrying (server busy, connection refused), never a wrong passphrase


class AgentBackend(Protocol):
    """What the lifecycle (and the VM agent's Linux steps) call on a backend (``LinuxBackend``, ``WindowsBackend``)."""

    name: str

    @property
    def runner(self) -> Runner: ...

    def default_install_dir(self) -> str: ...

    def installed(self) -> InstalledAgent | None: ...

    def services(self, agent: InstalledAgent | None) -> list[Service]: ...

    def pending_reboot(self) -> str | None: ...

    def stage_steps(self, bundle: Bundle, staging: Path, expected_sha256: str | None) -> list[Step]: ...

    def prereq_steps(self, staged: Path, options: InstallOptions, fallback: OwnChecks) -> list[Step]: ...

    def install_steps(
        self, staged: Path, options: InstallOptions, upgrade: bool, previous: InstalledAgent | None
    ) -> list[Step]: ...

    def register_step(self, reg: Registration, install_dir: str, retry: Retry | None = None) -> Step: ...

    def config_input_step(self, install_dir: str) -> Step: ...

    def uninstall_steps(self, agent: InstalledAgent) -> list[Step]: ...

    def leftovers(self, agent: InstalledAgent) -> list[str]: ...

    def remove_partial(self, install_dir: str, existed_before: bool) -> list[str]: ...

    def presence(self) -> Presence: ...

    def start_services(self, agent: InstalledAgent) -> None: ...

    def clear_stale_locks(self) -> list[str]: ...

    def remove_remains(self) -> list[str]: ...


def private_dir(path: str | None) -> None:
    """asrctl's private run directory, where a vendor tool writes its JSON files: mode 0700, and so is the
    ``runs`` directory above it (the lifecycle removes the run's directory with the run)."""
    if not path:
        return
    run = Path(path)
    for directory in (run.parent, run):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)


def run_vendor(
    runner: Runner,
    argv: list[str],
    *,
    tool: str,
    timeout: float,
    cwd: Path | None = None,
    log: str | Path | None = None,
) -> Completed:
    """Run a vendor tool; a timeout (the runner already stopped the whole process tree) is ``ASRCTL-E063``."""
    try:
        return runner.run(argv, cwd=cwd, timeout=timeout)
    except TimedOut as exc:
        see = f"; see {log}" if log else ""
        raise AsrctlError(
            "ASRCTL-E063", f"{tool} did not finish within {exc.timeout:.0f} s and was stopped{see}"
        ) from None


# The codes that only say "the tool failed": Microsoft's own error names (vendor_errors.KNOWN) say better.
GENERIC_CODES = frozenset({"ASRCTL-E053", "ASRCTL-E060", "ASRCTL-E080"})


def vendor_result(
    done: Completed,
    outcome: VendorOutcome,
    *,
    tool: str,
    default_code: str,
    out: Output,
    log: str | Path | None = None,
    detail: str = "",
    vendor: Sequence[VendorError] = (),
) -> StepResult:
    """A vendor tool's outcome as a step result; a failure raises its catalogued error with the vendor's exit code,
    the log to read, ``detail`` (a log tail, the tool's own words) and Microsoft's own errors (``vendor``, from its
    extended-errors file) as ``details.vendor_errors``. When Microsoft names an error asrctl knows, its code and
    remedy replace a code that only says the tool failed."""
    if not outcome.ok:
        code = outcome.error_code or default_code
        remedy = None
        said = ""
        if vendor:
            said = f"; Microsoft says {vendor_errors.summary_line(vendor)}"
            known = vendor_errors.mapped(vendor)
            if known is not None and code in GENERIC_CODES:
                code, remedy = known
        see = f"; log {log}" if log else ""
        extra: dict[str, object] = {"vendor_errors": vendor_errors.details(vendor)} if vendor else {}
        raise AsrctlError(
            code,
            f"{tool} exited {done.returncode} ({outcome.message}){said}{see}{detail}",
            remedy,
            vendor_exit_code=done.returncode,
            log=str(log) if log else None,
            transient=outcome.transient,
            **extra,
        )
    if outcome.warning:
        out.warn(outcome.warning)
    result: StepResult = {
        "vendor_exit_code": done.returncode,
        "warning": outcome.warning,
        "reboot_required": outcome.reboot_required,
    }
    if vendor:  # exit 98, "succeeded with warnings": the warnings are in the same file
        result["vendor_errors"] = vendor_errors.details(vendor)
    return result
