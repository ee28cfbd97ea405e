"""The one error catalogue.

Every failure an operator can meet has a stable code (``ASRCTL-Exxx``), an exit code from the CLI contract,
a message that says what happened and a remedy that says what to do. Codes are never reused or renumbered:
scripts and runbooks match on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from asrctl.output import Result

# Exit codes of the CLI contract (docs/CLI.md).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3
EXIT_NO_BUNDLE = 4
EXIT_BUNDLE_BAD = 5
EXIT_PRECONDITION = 6
EXIT_VENDOR = 7
EXIT_REGISTRATION = 8
EXIT_DEGRADED = 9  # status --check: the agent works, with something to fix (lifecycle/health.py)
EXIT_BROKEN = 10  # status --check: the agent does not protect this machine
EXIT_KERNEL_UNSUPPORTED = 11  # kernel check: a kernel is not supported (docs/KERNELS.md)
EXIT_KERNEL_UNKNOWN = 12  # kernel check: whether a kernel is supported cannot be told here
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15


@dataclass(frozen=True)
class Spec:
    code: str
    exit: int
    title: str
    remedy: str
    # Outcome class for ``--exit-codes msi`` (see msi_exit()).
    msi: str = "failure"


def _catalogue(*specs: Spec) -> dict[str, Spec]:
    table: dict[str, Spec] = {}
    for spec in specs:
        assert spec.code not in table, spec.code
        table[spec.code] = spec
    return table


CATALOGUE = _catalogue(
    Spec("ASRCTL-E001", EXIT_INTERNAL, "internal error", "This is a bug in asrctl. Send the log file named above."),
    Spec("ASRCTL-E002", EXIT_USAGE, "bad argument", "Check the command line; see `asrctl --help`.", "usage"),
    Spec("ASRCTL-E003", EXIT_INTERRUPTED, "interrupted", "Run the same command again; it picks up where it stopped."),
    Spec(
        "ASRCTL-E005",
        EXIT_TERMINATED,
        "terminated",
        "Something sent SIGTERM (a timeout in Ansible, SCCM or systemd?). Run the same command again; it picks up "
        "where it stopped.",
    ),
    Spec(
        "ASRCTL-E004", EXIT_USAGE, "confirmation needed", "Run it from a terminal to answer, or add -Y/--yes.", "usage"
    ),
    Spec(
        "ASRCTL-E006",
        EXIT_USAGE,
        "bad config file",
        "Fix the key named in the --config file (docs/CLI.md lists the keys; `asrctl VERB --help` shows them).",
        "usage",
    ),
    # Platform
    Spec(
        "ASRCTL-E010",
        EXIT_UNSUPPORTED,
        "unsupported platform",
        "Check the Azure Site Recovery support matrix for VMware/physical machines.",
        "unsupported",
    ),
    Spec(
        "ASRCTL-E011",
        EXIT_UNSUPPORTED,
        "cannot read the host's release files",
        "Make sure the release files under the root are readable regular files.",
        "unsupported",
    ),
    Spec("ASRCTL-E012", EXIT_USAGE, "bad --root", "Give --root an existing, readable directory.", "usage"),
    Spec(
        "ASRCTL-E013",
        EXIT_INTERNAL,
        "support matrix data is broken",
        "Reinstall asrctl; the platforms/*.toml data shipped with it did not load.",
    ),
    # Bundles
    Spec(
        "ASRCTL-E020",
        EXIT_NO_BUNDLE,
        "no suitable bundle",
        "Copy the Microsoft-ASR_UA_*_<TAG>_*_release.tar.gz (or .exe) bundle for this host into a bundle dir "
        "(--bundle-dir), then run `asrctl bundles list`.",
    ),
    Spec("ASRCTL-E021", EXIT_USAGE, "bundle dir not usable", "Give --bundle-dir an existing directory.", "usage"),
    Spec(
        "ASRCTL-E022",
        EXIT_NO_BUNDLE,
        "not a bundle",
        "Use the file exactly as Microsoft publishes it: Microsoft-ASR_UA_<version>_<TAG>_GA_<date>_release.tar.gz.",
    ),
    Spec(
        "ASRCTL-E023",
        EXIT_NO_BUNDLE,
        "bundle is for another platform",
        "Use the bundle whose OS tag `asrctl detect` shows, or leave the choice to asrctl.",
    ),
    Spec(
        "ASRCTL-E024",
        EXIT_NO_BUNDLE,
        "Azure VM agent package not found",
        "Put the package file (WindowsAzureVmAgent*.msi on Windows; the distribution's WALinuxAgent package file on "
        "Linux) in a bundle dir, or enable a repository that has it; see docs/VMAGENT.md.",
    ),
    # Verification and unpacking
    Spec(
        "ASRCTL-E030",
        EXIT_BUNDLE_BAD,
        "bundle digest mismatch",
        "The copy is corrupt or was tampered with. Copy the bundle again from its source and re-check SHA256SUMS.",
    ),
    Spec(
        "ASRCTL-E031",
        EXIT_BUNDLE_BAD,
        "no digest for bundle",
        "Create one on the staging host with `asrctl bundles checksum DIR`, or pass --sha256 HEX.",
    ),
    Spec(
        "ASRCTL-E032",
        EXIT_BUNDLE_BAD,
        "unsafe archive",
        "Do not use this bundle. Get a fresh copy from Microsoft's download page and verify it.",
    ),
    Spec(
        "ASRCTL-E033",
        EXIT_BUNDLE_BAD,
        "corrupted bundle",
        "The file is damaged or incomplete. Copy the bundle again and verify it with `asrctl bundles verify`.",
    ),
    Spec(
        "ASRCTL-E034",
        EXIT_BUNDLE_BAD,
        "bad bundle signature",
        "Only run installers signed by Microsoft. Download the bundle again from Microsoft.",
    ),
    Spec("ASRCTL-E035", EXIT_USAGE, "bad SHA256SUMS", "Rewrite it with `asrctl bundles checksum DIR`.", "usage"),
    Spec(
        "ASRCTL-E036",
        EXIT_BUNDLE_BAD,
        "download failed",
        "Check the mirror URL, the proxy (HTTPS_PROXY/NO_PROXY) and --ca-bundle, then run it again; "
        "a partial download is resumed.",
    ),
    Spec("ASRCTL-E037", EXIT_PRECONDITION, "destination exists", "Choose an empty or new destination directory."),
    Spec(
        "ASRCTL-E038",
        EXIT_BUNDLE_BAD,
        "bundle renamed or mislabelled",
        "The file's name and its own .vx_version disagree. Get the bundle again from Microsoft and keep its name.",
    ),
    Spec(
        "ASRCTL-E039",
        EXIT_BUNDLE_BAD,
        "not a Microsoft Linux bundle",
        "A Microsoft Linux bundle has .vx_version at its top. Use the bundle exactly as Microsoft publishes it.",
    ),
    # Preconditions
    Spec(
        "ASRCTL-E040",
        EXIT_PRECONDITION,
        "not enough privileges",
        "Run as root (sudo asrctl ...) on Linux, or from an elevated prompt on Windows.",
    ),
    Spec(
        "ASRCTL-E041",
        EXIT_PRECONDITION,
        "not enough disk space",
        "Free space on the named file system (Microsoft needs 2 GB on / and 250 MB for the install folder).",
    ),
    Spec(
        "ASRCTL-E042",
        EXIT_PRECONDITION,
        "another asrctl run holds the lock",
        "Wait for the other run to finish. If no asrctl process is running, the lock is stale and the next run "
        "takes it over.",
        "locked",
    ),
    Spec(
        "ASRCTL-E043",
        EXIT_PRECONDITION,
        "a reboot is pending",
        "Restart the machine, then run the command again.",
    ),
    Spec(
        "ASRCTL-E044",
        EXIT_PRECONDITION,
        "Mobility Service is not installed",
        "Install it first: `asrctl install`.",
    ),
    Spec(
        "ASRCTL-E045",
        EXIT_PRECONDITION,
        "downgrade refused",
        "Use a bundle at least as new as the installed agent, or pass --allow-downgrade if you mean it.",
        "newer_installed",
    ),
    Spec(
        "ASRCTL-E046",
        EXIT_PRECONDITION,
        "an older version is installed",
        "Run `asrctl upgrade` instead of install.",
    ),
    # Retired (RETIRED, below): a dead run is recovered under the host lock by the next run (plan.hold), not refused.
    Spec(
        "ASRCTL-E047",
        EXIT_PRECONDITION,
        "a previous run was interrupted",
        "Run `asrctl status` to see what it did; the next install/upgrade/uninstall cleans up after it.",
    ),
    Spec(
        "ASRCTL-E048",
        EXIT_PRECONDITION,
        "registered elsewhere",
        "Pass --force to move the agent to the new configuration server.",
    ),
    Spec(
        "ASRCTL-E049",
        EXIT_PRECONDITION,
        "insecure passphrase file",
        "Run `chmod 600` on the passphrase file (or pass --insecure-passphrase-file).",
    ),
    Spec(
        "ASRCTL-E050",
        EXIT_PRECONDITION,
        "passphrase missing or empty",
        "Give one of --passphrase-file FILE, --passphrase-stdin or the ASRCTL_PASSPHRASE environment variable. "
        "Generate it on the configuration server with genpassphrase.exe -v.",
    ),
    Spec(
        "ASRCTL-E051",
        EXIT_PRECONDITION,
        "the agent install is incomplete",
        "Run `asrctl uninstall -Y`: it removes what is left of the agent (Microsoft's uninstaller where it is there, "
        "then the agent's files and version file), then install again.",
    ),
    Spec(
        "ASRCTL-E052",
        EXIT_PRECONDITION,
        "cloned host",
        "This machine carries another machine's agent identity. Uninstall and reinstall the agent, or pass --force.",
    ),
    Spec(
        "ASRCTL-E053",
        EXIT_PRECONDITION,
        "a prerequisite is missing",
        "Install what the message names (.NET Framework, VMware Tools, boot drivers, VSS/COM+ components), "
        "then run asrctl again; the installer log in %ProgramData%\\ASRSetupLogs has the details.",
    ),
    Spec(
        "ASRCTL-E054",
        EXIT_PRECONDITION,
        "another installation is in progress",
        "Wait for the other installer (Windows Installer, Windows Update, the Mobility Service setup) to finish, "
        "then run asrctl again.",
        "locked",
    ),
    # Microsoft's prerequisite checks (the bundle's prereq_check_install.sh; asrctl/agent/vendor_errors.py maps them)
    Spec(
        "ASRCTL-E055",
        EXIT_PRECONDITION,
        "Secure Boot is enabled",
        "Turn Secure Boot off in the machine's firmware settings, restart it, then run asrctl again.",
    ),
    Spec(
        "ASRCTL-E056",
        EXIT_PRECONDITION,
        "the running kernel is not supported by this agent build",
        "Boot a kernel the bundle's supported_kernels lists, or use a newer bundle that supports this kernel.",
    ),
    Spec(
        "ASRCTL-E057",
        EXIT_PRECONDITION,
        "the running kernel's module directory is missing",
        "Reinstall the running kernel's package so that /lib/modules/<kernel>/kernel/drivers/char exists.",
    ),
    Spec(
        "ASRCTL-E058",
        EXIT_PRECONDITION,
        "the C locale is missing",
        "Install the C locale so that `locale -a` lists it.",
    ),
    Spec(
        "ASRCTL-E059",
        EXIT_PRECONDITION,
        "the host name is not set",
        "Set a host name (`hostnamectl set-hostname NAME`), then run asrctl again.",
    ),
    # Vendor tools
    Spec(
        "ASRCTL-E060",
        EXIT_VENDOR,
        "the Mobility Service installer failed",
        "Read the installer log named above; fix the cause and run asrctl again.",
    ),
    Spec(
        "ASRCTL-E061",
        EXIT_VENDOR,
        "the Mobility Service uninstaller failed",
        "Read the uninstall log named above; fix the cause and run `asrctl uninstall -Y` again.",
    ),
    Spec(
        "ASRCTL-E062",
        EXIT_VENDOR,
        "agent services could not be stopped",
        "Retry later. If it keeps failing, use Microsoft's documented workaround: comment out the service-stop "
        "calls in the uninstall scripts, uninstall, reboot, reinstall.",
    ),
    Spec(
        "ASRCTL-E063",
        EXIT_VENDOR,
        "a vendor tool timed out",
        "Read the log named above; the tool was stopped. Run asrctl again when the cause is fixed.",
    ),
    Spec(
        "ASRCTL-E064",
        EXIT_VENDOR,
        "post-install check failed",
        "The installer reported success, but the agent is not in the expected state. Read ua_install.log.",
    ),
    Spec(
        "ASRCTL-E065",
        EXIT_VENDOR,
        "package manager failed",
        "Read the package manager's output above; fix the repository or put the package file in the bundle dir.",
    ),
    # Whole states, desired state and health (docs/LIFECYCLE.md)
    Spec(
        "ASRCTL-E070",
        EXIT_PRECONDITION,
        "the host changed during this run",
        "Another program changed the Mobility Service while asrctl was working; nothing more was done. Run "
        "`asrctl status`, then the command again.",
    ),
    Spec(
        "ASRCTL-E071",
        EXIT_PRECONDITION,
        "registered elsewhere than asked",
        "The agent is registered differently from what this command asks. To move it, run the `asrctl register "
        "--force` command named above; to keep it, leave the registration options out.",
    ),
    Spec(
        "ASRCTL-E072",
        EXIT_PRECONDITION,
        "this downgrade could not be undone",
        "Put the bundle of the installed version (and its SHA256SUMS) in a bundle dir and give the registration "
        "options, so a failed downgrade can put the agent back; see docs/LIFECYCLE.md.",
    ),
    Spec(
        "ASRCTL-E073",
        EXIT_DEGRADED,
        "the agent is degraded",
        "It works, but something needs attention: fix the reasons named above (`asrctl status` shows them).",
    ),
    Spec(
        "ASRCTL-E074",
        EXIT_BROKEN,
        "the agent is broken",
        "This machine is not protected: fix the reasons named above (`asrctl status` shows them), e.g. "
        "`asrctl install`, `asrctl register` or `asrctl upgrade` again.",
    ),
    # Kernels and the filter driver (docs/KERNELS.md)
    Spec(
        "ASRCTL-E090",
        EXIT_PRECONDITION,
        "a kernel is not supported by this agent build",
        "Boot (or keep booting) a kernel the bundle supports, or use a bundle whose supported_kernels lists it; "
        "`asrctl kernel check` shows which builds support it. --skip-kernel-check overrides this (replication "
        "will not work on that kernel).",
    ),
    Spec(
        "ASRCTL-E091",
        EXIT_KERNEL_UNSUPPORTED,
        "kernel not supported",
        "Boot a kernel one of the named builds supports, upgrade the agent to such a build, or install Microsoft's "
        "driver package for it (`asrctl drivers install`).",
    ),
    Spec(
        "ASRCTL-E092",
        EXIT_KERNEL_UNKNOWN,
        "kernel support unknown",
        "Give the lists to check against: --lists DIR (a copy of Microsoft's SupportedKernels tree, `asrctl kernel "
        "lists fetch`) or --bundle FILE; for RHEL/OL kernels without a rule the bundle's own checker decides.",
    ),
    Spec("ASRCTL-E093", EXIT_USAGE, "bad kernel version", "Give the kernel exactly as `uname -r` prints it.", "usage"),
    Spec(
        "ASRCTL-E094",
        EXIT_BUNDLE_BAD,
        "malformed kernel list",
        "Copy the list again from Microsoft's repository or the bundle, byte for byte (LF line endings, one kernel "
        "per line); do not edit it.",
    ),
    Spec(
        "ASRCTL-E095",
        EXIT_USAGE,
        "no kernel lists there",
        "Point --lists at a copy of Microsoft's MobilityAgent/<Scenario>/SupportedKernels tree (or one scenario of "
        "it); `asrctl kernel lists fetch URL` makes one.",
        "usage",
    ),
    Spec(
        "ASRCTL-E096",
        EXIT_BUNDLE_BAD,
        "not a driver package",
        "Use Microsoft's DriversPackage_<KEY>.tar.gz as downloaded (or its unpacked Drivers/ directory), with its "
        "name, or name its agent build with --build.",
    ),
    Spec(
        "ASRCTL-E097",
        EXIT_NO_BUNDLE,
        "driver package for another platform",
        "Use the DriversPackage_<KEY> for this host's OS (`asrctl detect` shows the tag; docs/KERNELS.md maps tags "
        "to keys).",
    ),
    Spec(
        "ASRCTL-E098",
        EXIT_PRECONDITION,
        "the driver package needs a newer agent",
        "Upgrade the Mobility Service to the package's build first (`asrctl upgrade`), then install the package; "
        "Microsoft's packages work only with the agent build they were made for or a later one.",
    ),
    Spec(
        "ASRCTL-E099",
        EXIT_PRECONDITION,
        "no driver for this kernel in the package",
        "Get the driver package that supports this kernel (`asrctl kernel check --kernel K --lists DIR` shows the "
        "builds), or boot a kernel the package has a driver for.",
    ),
    Spec(
        "ASRCTL-E100",
        EXIT_VENDOR,
        "the filter driver did not load",
        "Read the output named above and `dmesg`; on Secure Boot machines the driver must be signed. The previous "
        "driver was put back and the agent restarted.",
    ),
    Spec(
        "ASRCTL-E101",
        EXIT_VENDOR,
        "the driver could not be installed",
        "Read the failed step's output above; every step before it was undone (the previous driver file back, the "
        "agent started). Fix the cause and run `asrctl drivers install` again.",
    ),
    # The environment asrctl runs in (docs/RELIABILITY.md): never "a bug", always what to fix
    Spec(
        "ASRCTL-E110",
        EXIT_PRECONDITION,
        "asrctl's state directory cannot be written",
        "asrctl keeps its lock, journal and the bundle's staging copy in /var/lib/asrctl (under --root): make it a "
        "writable directory on a file system mounted read-write (fix its permissions or the mount), then run the "
        "command again.",
    ),
    Spec(
        "ASRCTL-E111",
        EXIT_PRECONDITION,
        "no space left on a file system",
        "Free space on the file system named above (the state dir holds the unpacked bundle during a run; the "
        "install folder needs 250 MB), then run the command again; what this run had done was undone.",
    ),
    Spec(
        "ASRCTL-E112",
        EXIT_PRECONDITION,
        "a program cannot be run from where it is",
        "The bundle is unpacked into /var/lib/asrctl/staging and Microsoft's installer runs from there: that file "
        "system must allow programs (not mounted noexec). Remount it with exec, or make /var/lib/asrctl a "
        "directory on one that does, then run the command again.",
    ),
    Spec(
        "ASRCTL-E113",
        EXIT_PRECONDITION,
        "a file asrctl keeps is not usable",
        "Move the file named above out of the way (asrctl recreates it); it should be a regular file only asrctl "
        "writes.",
    ),
    Spec(
        "ASRCTL-E114",
        EXIT_VENDOR,
        "a vendor tool could not be started",
        "The bundle or the installed agent is missing the program named above, or it is not executable: copy the "
        "bundle again (`asrctl bundles verify`), or run `asrctl uninstall -Y` and install again.",
    ),
    Spec(
        "ASRCTL-E115",
        EXIT_PRECONDITION,
        "a path leads out of the root",
        "A path given on the command line or written in an agent file points outside --root (through '..' or a "
        "symbolic link); asrctl never acts on it. Give a path inside the root, or check who wrote the file named "
        "above and correct it by hand.",
    ),
    Spec(
        "ASRCTL-E116",
        EXIT_PRECONDITION,
        "standard output cannot be written",
        "Standard output was closed or is on a full device, so the result did not arrive; what the run did is in "
        "`asrctl status` and the journal. Send standard output to a file or pipe that takes it.",
    ),
    # Registration / connectivity
    Spec(
        "ASRCTL-E080",
        EXIT_REGISTRATION,
        "registration failed",
        "Read the configurator's message above and /var/log/ua_install.log; check endpoint and passphrase.",
    ),
    Spec(
        "ASRCTL-E081",
        EXIT_REGISTRATION,
        "wrong passphrase",
        "Get the current passphrase from the configuration server (genpassphrase.exe -v) and try again.",
    ),
    Spec(
        "ASRCTL-E082",
        EXIT_REGISTRATION,
        "configuration server unreachable",
        "Check that the configuration server is up and that TCP 443 is open from this machine to it.",
    ),
    Spec(
        "ASRCTL-E083",
        EXIT_REGISTRATION,
        "configuration server certificate rejected",
        "Renew the configuration server's certificate, check the clock, and check --cs-fingerprint.",
    ),
    Spec(
        "ASRCTL-E084",
        EXIT_REGISTRATION,
        "connectivity check failed",
        "Fix the network path named above, or pass --skip-connectivity-check if you know better.",
    ),
    Spec(
        "ASRCTL-E085",
        EXIT_USAGE,
        "registration input missing",
        "Give --cs-endpoint HOST[:PORT] with a passphrase source (classic), or --cs-type CSPrime --config-file "
        "FILE (modernized), or --no-register with --cs-type.",
        "usage",
    ),
    Spec(
        "ASRCTL-E086",
        EXIT_USAGE,
        "--cs-type contradicts the registration inputs",
        "Leave --cs-type out (asrctl takes it from the inputs: --config-file is CSPrime, --cs-endpoint CSLegacy) or "
        "give the inputs of the type you mean.",
        "usage",
    ),
)

# Codes that nothing raises any more. They stay in the catalogue, documented as retired in docs/CLI.md, because runbooks
# may still match them and a code is never reused; tests/unit/test_cli_contract.py fails on a code that is neither
# used nor listed here, and on a listed one that is used again.
RETIRED = frozenset({"ASRCTL-E047"})


class AsrctlError(Exception):
    """A failure with a catalogue entry. The CLI turns it into an exit code and a JSON error, in one place."""

    def __init__(self, code: str, message: str, remedy: str | None = None, **details: object) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"unknown error code {code}")
        self.spec = CATALOGUE[code]
        self.message = message
        self.remedy = remedy or self.spec.remedy
        self.details = details
        super().__init__(f"{code}: {message}")

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def exit_code(self) -> int:
        return self.spec.exit

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message, "remedy": self.remedy}
        if self.details:
            out["details"] = self.details
        return out


def from_os_error(exc: OSError, what: str) -> AsrctlError:
    """An operating-system failure of the environment (a full, read-only or noexec file system, a permission, a
    directory where a file belongs) as its catalogued error: never "internal error, a bug". ``what`` says what
    asrctl was doing ("writing the journal", "Create a private staging directory ...")."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    why = exc.strerror or str(exc)
    message = f"{what}: {why}{where}"
    number = exc.errno
    if number in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        code = "ASRCTL-E111"
    elif number in (errno.EROFS, errno.EACCES, errno.EPERM):
        code = "ASRCTL-E110"
    else:
        code = "ASRCTL-E113"
    return AsrctlError(code, message, errno=errno.errorcode.get(number or 0), path=exc.filename)


class Reported(Exception):
    """A failure whose result (with data) was already rendered for people: ``cli.run()`` only emits the JSON
    envelope and exits with the error's code. Raised by any layer that drew its own table (doctor, the
    connectivity check, detect), so the failure is not printed twice."""

    def __init__(self, error: AsrctlError, result: Result) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result
        result.ok = False
        result.error = error.as_json()


def attach(exc: BaseException, result: Result, note: str | None = None) -> None:
    """Give a failure the result of the verb it stopped (``data.agent`` read after the run, ``changed``), and a
    note saying what the host was left with; ``cli.run()`` emits that result and appends the note to the message
    (also for Ctrl-C and SIGTERM, whose error ``cli.run()`` makes)."""
    exc.asrctl_result = result  # type: ignore[attr-defined]
    if note:
        exc.asrctl_note = note  # type: ignore[attr-defined]


def attached(exc: BaseException) -> tuple[Result | None, str | None]:
    """The result and note :func:`attach` gave ``exc`` (or the exception click wrapped it in)."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        result = getattr(candidate, "asrctl_result", None)
        if isinstance(result, Result):
            note = getattr(candidate, "asrctl_note", None)
            return result, note if isinstance(note, str) else None
    return None, None


# Windows Installer conventions, for SCCM/Intune (``--exit-codes msi``).
MSI_SUCCESS = 0
MSI_REBOOT = 3010
MSI_LOCKED = 1618
MSI_NEWER_INSTALLED = 1638
MSI_UNSUPPORTED = 1633
MSI_BAD_ARGS = 1639
MSI_FAILURE = 1603


def msi_exit(exit_code: int, spec: Spec | None, reboot_required: bool) -> int:
    """Map an asrctl outcome onto the Windows Installer exit codes SCCM and Intune understand."""
    if exit_code == EXIT_OK:
        return MSI_REBOOT if reboot_required else MSI_SUCCESS
    if exit_code == EXIT_USAGE:
        return MSI_BAD_ARGS
    if spec is not None:
        return {
            "locked": MSI_LOCKED,
            "newer_installed": MSI_NEWER_INSTALLED,
            "unsupported": MSI_UNSUPPORTED,
            "usage": MSI_BAD_ARGS,
        }.get(spec.msi, MSI_FAILURE)
    return MSI_FAILURE
