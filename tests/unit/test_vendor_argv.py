"""asrctl's argv for Microsoft's tools, side by side with the push installer's command lines.

The push lines are Microsoft's (index 12464269575, remoteCommandToRun / remoteCommandToConfigure; option strings from
12729994913 and 12404772545), with its placeholders: ``<F>`` the push job folder, ``<path>`` the install location,
``<csip>``/``<port>`` the configuration server. Each row says what asrctl puts where the push installer has a value
of its own (its job folder, its invoker) and which fields only the portal knows (left out). Every other token must
be the same, in the same place: that is the pin.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from fakes.windows import DEFAULT_DIR, split_windows, world

from asrctl.agent.base import InstalledAgent, InstallOptions, Registration
from asrctl.agent.linux import LinuxBackend
from asrctl.output import Output
from asrctl.system.paths import Paths

ROOT = Path("/sandbox")
RUN = "/sandbox/var/lib/asrctl/runs/0123abcd"
STAGED = Path("/sandbox/var/lib/asrctl/staging/0123abcd/bundle")
INSTALL_DIR = "/sandbox/usr/local/ASR"
LOG = "/sandbox/var/log/ua_install.log"
UNLOG = "/sandbox/var/log/ua_uninstall.log"
PASS = "/secure/cs.passphrase"
CONFIG = "/secure/config.json"
WRUN = "C:\\ProgramData\\asrctl\\runs\\0123abcd"
WSTAGED = "C:\\ProgramData\\asrctl\\staging\\0123abcd\\bundle"
WLOGS = "C:\\ProgramData\\ASRSetupLogs"

# What asrctl puts where the push installer has its own value.
LINUX_JOB = {
    "<F>/stdout.txt": LOG,  # the vendor log where Microsoft's docs say to look, not a job folder
    "vmtools": "CommandLine",  # asrctl is a command line: Microsoft's default invoker
    "<F>/installerextendederrors.json": f"{RUN}/installerextendederrors.json",
    "<F>/installerjson.json": f"{RUN}/installerjson.json",
    "<path>": INSTALL_DIR,
    "<csip>": "10.0.0.5",
    "<port>": "8443",
    "<F>/connection.passphrase": PASS,
    "<F>/config.json": CONFIG,
    "<F>/configuratorjson.json": f"{RUN}/configuratorjson.json",
}
# The push installer hands the configurator the installer's errors file again; asrctl gives each tool its own.
CONFIGURATOR_JOB = {**LINUX_JOB, "<F>/installerextendederrors.json": f"{RUN}/configuratorextendederrors.json"}
WINDOWS_JOB = {
    "<F>\\stdout.txt": None,  # per row: the installer's or the configurator's log
    "vmtools": "CommandLine",
    "<F>\\installerextendederrors.json": f"{WRUN}\\installerextendederrors.json",
    "<F>\\installerjson.json": f"{WRUN}\\installerjson.json",
    "<F>\\configuratorjson.json": f"{WRUN}\\configuratorjson.json",
    "<path>": DEFAULT_DIR,
    "<csip>": "10.0.0.5",
    "<F>\\connection.passphrase": "C:\\secure\\cs.passphrase",
    "<F>\\config.json": "C:\\secure\\config.json",
}


def linux() -> LinuxBackend:
    return LinuxBackend(Paths(ROOT), runner=None, out=Output(json_mode=True))  # type: ignore[arg-type]


def without(tokens: list[str], *portal_only: str) -> list[str]:
    """The push tokens minus the options only the portal knows (each with its value)."""
    out, skip = [], False
    for tok in tokens:
        if skip:
            skip = False
            continue
        if tok in portal_only:
            skip = True
            continue
        out.append(tok)
    return out


def linux_rows() -> list[tuple[str, str, tuple[str, ...], dict[str, str], list[str]]]:
    b = linux()
    fresh = InstallOptions(
        role="MS", vm_platform="VmWare", install_dir="/usr/local/ASR", cs_type="CSPrime", run_dir=RUN
    )
    legacy = InstallOptions(
        role="MS", vm_platform="VmWare", install_dir="/usr/local/ASR", cs_type="CSLegacy", run_dir=RUN
    )
    tail = ' -l "<F>/stdout.txt" -m "vmtools" -e "<F>/installerextendederrors.json" -j "<F>/installerjson.json"'
    reg = Registration("CSLegacy", endpoint="10.0.0.5:8443", passphrase_file=Path(PASS), run_dir=RUN)
    prime = Registration("CSPrime", config_file=Path(CONFIG), run_dir=RUN)
    agent = InstalledAgent(version="9.66.7567.1", install_dir=Path(INSTALL_DIR))
    cfg_tail = ' -l "<F>/stdout.txt" -m "vmtools" -f "<F>/installerextendederrors.json" -j "<F>/configuratorjson.json"'
    return [
        (
            "install, CSPrime, fresh",
            '"<F>/install" -r "MS" -v VmWare -q -a Install -c CSPrime -d "<path>"' + tail,
            (),
            LINUX_JOB,
            b.install_argv(STAGED, fresh, upgrade=False),
        ),
        (
            "install, CSPrime, upgrade (no -r)",
            '"<F>/install" -v VmWare -q -a Upgrade -c CSPrime -d "<path>"' + tail,
            (),
            LINUX_JOB,
            b.install_argv(STAGED, fresh, upgrade=True),
        ),
        (
            # The CS sends the CSLegacy base options (not public); the push client appends -a and -c. Assumed: the
            # same base options as CSPrime.
            "install, CSLegacy, fresh",
            '"<F>/install" -r "MS" -v VmWare -q -a Install -c CSLegacy -d "<path>"' + tail,
            (),
            LINUX_JOB,
            b.install_argv(STAGED, legacy, upgrade=False),
        ),
        (
            "configurator, CSLegacy",
            '"<path>/Vx/bin/UnifiedAgentConfigurator.sh" -i "<csip>" -P "<F>/connection.passphrase"'
            + cfg_tail
            + " -c CSLegacy -p <port>",
            ("-e",),  # the VM's IP, for physical machines: the portal's
            CONFIGURATOR_JOB,
            b.register_argv(Path(INSTALL_DIR), reg),
        ),
        (
            "configurator, CSPrime",
            '"<path>/Vx/bin/UnifiedAgentConfigurator.sh" -q -S "<F>/config.json"'
            + cfg_tail
            + ' -c CSPrime -p <port> -r "<clientRequestId>"',
            ("-e", "-p", "-r"),  # the appliance's port and the request id are the portal's
            CONFIGURATOR_JOB,
            b.register_argv(Path(INSTALL_DIR), prime),
        ),
        (
            "uninstall",
            '"<path>/uninstall.sh" -Y -L <F>/stdout.txt',
            (),
            {**LINUX_JOB, "<F>/stdout.txt": UNLOG},
            b.uninstall_argv(agent),
        ),
    ]


@pytest.mark.parametrize("row", linux_rows(), ids=lambda r: r[0])
def test_linux_argv_is_the_push_installers(row) -> None:
    _, push, portal_only, job, argv = row
    expected = [job.get(tok, tok) for tok in without(shlex.split(push), *portal_only)[1:]]
    assert argv[1:] == expected


def test_the_endpoint_reaches_the_configurator_split() -> None:
    b = linux()
    for endpoint, host, port in [
        ("10.0.0.5:8443", "10.0.0.5", "8443"),
        ("cs01.contoso.local", "cs01.contoso.local", "443"),
        ("[fd00::5]:9443", "fd00::5", "9443"),
        ("fd00::5", "fd00::5", "443"),
    ]:
        argv = b.register_argv(
            Path(INSTALL_DIR), Registration("CSLegacy", endpoint=endpoint, passphrase_file=Path(PASS))
        )
        assert argv[argv.index("-i") + 1] == host
        assert argv[argv.index("-p") + 1] == port
        assert endpoint == host or endpoint not in argv  # never host:port in one argument


def windows_rows() -> list[tuple[str, str, tuple[str, ...], dict[str, str | None], list[str]]]:
    w = world().backend
    fresh = InstallOptions(role="MS", vm_platform="VmWare", cs_type="CSPrime", run_dir=WRUN)
    tail = (
        ' /LogFilePath "<F>\\stdout.txt" /Invoker "vmtools" /ValidationsOutputJsonFilePath '
        '"<F>\\installerextendederrors.json" /SummaryFilePath "<F>\\installerjson.json"'
    )
    install_job = {**WINDOWS_JOB, "<F>\\stdout.txt": f"{WLOGS}\\ASRUnifiedAgentInstaller.log"}
    cfg_job = {
        **WINDOWS_JOB,
        "<F>\\stdout.txt": f"{WLOGS}\\ASRUnifiedAgentConfigurator.log",
        "<F>\\installerextendederrors.json": f"{WRUN}\\configuratorextendederrors.json",
    }
    cfg_tail = (
        ' /LogFilePath "<F>\\stdout.txt" /Invoker "vmtools" /ValidationsOutputJsonFilePath '
        '"<F>\\installerextendederrors.json" /SummaryFilePath "<F>\\configuratorjson.json"'
    )
    reg = Registration(
        "CSLegacy", endpoint="10.0.0.5:8443", passphrase_file=Path("C:\\secure\\cs.passphrase"), run_dir=WRUN
    )
    prime = Registration("CSPrime", config_file=Path("C:\\secure\\config.json"), run_dir=WRUN)
    return [
        (
            "install, CSPrime, fresh",
            '"<F>\\UnifiedAgent.exe"  /Role "MS" /Platform VmWare /Silent  /InstallationType Install /CSType CSPrime  '
            '/InstallLocation "<path>" ' + tail,
            (),
            install_job,
            w.install_argv(WSTAGED, fresh, upgrade=False),
        ),
        (
            "install, CSPrime, upgrade (no /Role)",
            '"<F>\\UnifiedAgent.exe" /Platform VmWare /Silent  /InstallationType Upgrade /CSType CSPrime  '
            '/InstallLocation "<path>" ' + tail,
            (),
            install_job,
            w.install_argv(WSTAGED, fresh, upgrade=True),
        ),
        (
            "configurator, CSLegacy",
            '"<path>\\agent\\UnifiedAgentConfigurator.exe" /CSEndPoint "<csip>" /PassphraseFilePath '
            '"<F>\\connection.passphrase"' + cfg_tail + " /CSType CSLegacy /CSPort 8443",
            ("/ExternalIP",),
            cfg_job,
            w.register_argv(DEFAULT_DIR, reg),
        ),
        (
            "configurator, CSPrime",
            '"<path>\\agent\\UnifiedAgentConfigurator.exe" /SourceConfigFilePath "<F>\\config.json"'
            + cfg_tail
            + ' /CSType CSPrime /CSPort 443 /ClientRequestId "<id>"',
            ("/ExternalIP", "/CSPort", "/ClientRequestId"),
            cfg_job,
            w.register_argv(DEFAULT_DIR, prime),
        ),
        (
            # asrctl starts MsiExec from System32 by its full path (never a bare name searched for).
            "uninstall",
            "msiExec.exe /qn /x {275197FC-14FD-4560-A5EB-38217F80CBD1} /L+*V C:\\ProgramData\\ASRSetupLogs\\UAuninstall.log",
            (),
            WINDOWS_JOB,
            w.uninstall_argv(),
        ),
    ]


@pytest.mark.parametrize("row", windows_rows(), ids=lambda r: r[0])
def test_windows_argv_is_the_push_installers(row) -> None:
    _, push, portal_only, job, argv = row
    tokens = without(split_windows(push.replace("<path>\\", DEFAULT_DIR + "\\")), *portal_only)
    expected = [job.get(tok) or tok for tok in tokens[1:]]
    assert argv[1:] == expected


@pytest.mark.parametrize(
    ("role", "platform", "checker_role", "workflow"),
    [("MS", "VmWare", "Agent", "VMWARE"), ("MT", "Azure", "MasterTarget", "AZURE")],
)
def test_the_prerequisite_checker_gets_its_own_role_names(role, platform, checker_role, workflow) -> None:
    """Its usage line: -r <Agent|MasterTarget> -j <json> (index 11978803657); it refuses the installer's MS/MT."""
    argv = linux().prereq_argv(STAGED, InstallOptions(role=role, vm_platform=platform, run_dir=RUN))
    assert argv == [
        "/bin/bash", f"{STAGED}/prereq_check_install.sh", "-r", checker_role, "-j", f"{RUN}/prereqerrors.json",
        "-v", workflow, "-l", LOG,
    ]  # fmt: skip
