"""The Windows backend on Linux: a recording runner that replays Windows, an in-memory registry and files.

Exact argv for every step (checked against Microsoft's documented command lines, with the quoting Windows
sees), every exit-code mapping, pending reboot, signature failures, not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.runner import Scripted
from fakes.windows import (
    DEFAULT_DIR,
    ServiceInfo,
    World,
    install_agent,
    signature_json,
    split_windows,
    switches,
    world,
)

from asrctl.agent.base import InstallOptions, Registration
from asrctl.agent.windows import (
    CBS_REBOOT_PENDING,
    PRODUCT_CODE,
    SESSION_MANAGER,
    UNINSTALL_KEYS,
    WU_REBOOT_REQUIRED,
)
from asrctl.agent.windows_codes import SUCCESS_CODES, VENDOR_CODES
from asrctl.agent.windows_signing import DEFENDER_SCRIPT, SIGNATURE_ENV, SIGNATURE_SCRIPT
from asrctl.bundles.catalog import Bundle
from asrctl.bundles.names import parse
from asrctl.errors import AsrctlError

STAGED = "C:\\ProgramData\\asrctl\\staging\\0123abcd\\bundle"
BUNDLE_NAME = "Microsoft-ASR_UA_9.66.7567.1_Windows_GA_20Sep2025_release.exe"


def bundle_in(tmp_path: Path, name: str = BUNDLE_NAME) -> Bundle:
    path = tmp_path / name
    path.write_bytes(b"MZ" + b"\0" * 64)
    return Bundle(path, parse(name))


def run_steps(steps) -> dict:
    results = {}
    for step in steps:
        results[step.id] = step.run() or {}
    return results


def unpacked(w: World, staged: str = STAGED) -> None:
    """What Microsoft's self-extractor leaves in the staging dir."""
    w.files.add(staged + "\\UnifiedAgent.exe", "MZ")


# --- command lines -----------------------------------------------------------------------------------------


RUN_DIR = "C:\\ProgramData\\asrctl\\runs\\0123abcd"
LOGS = "C:\\ProgramData\\ASRSetupLogs"


def test_fresh_install_argv_is_the_push_installers_command() -> None:
    """The push installer's options, in its order (index 12464269575); the log, invoker and JSON files are asrctl's
    (the invoker is Microsoft's default: asrctl is neither vmtools nor the push service)."""
    w = world()
    argv = w.backend.install_argv(STAGED, InstallOptions(cs_type="CSLegacy", run_dir=RUN_DIR), upgrade=False)
    assert argv == [
        STAGED + "\\UnifiedAgent.exe",
        "/Role", "MS", "/Platform", "VmWare", "/Silent", "/InstallationType", "Install", "/CSType", "CSLegacy",
        "/InstallLocation", "C:\\Program Files (x86)\\Microsoft Azure Site Recovery",
        "/LogFilePath", LOGS + "\\ASRUnifiedAgentInstaller.log",
        "/Invoker", "CommandLine",
        "/ValidationsOutputJsonFilePath", RUN_DIR + "\\installerextendederrors.json",
        "/SummaryFilePath", RUN_DIR + "\\installerjson.json",
    ]  # fmt: skip
    line = subprocess.list2cmdline(argv)
    assert split_windows(line) == argv
    push = (
        '"<F>\\UnifiedAgent.exe"  /Role "MS" /Platform VmWare /Silent  /InstallationType Install /CSType CSLegacy  '
        '/InstallLocation "C:\\Program Files (x86)\\Microsoft Azure Site Recovery"  /LogFilePath "<F>\\stdout.txt" '
        '/Invoker "vmtools" /ValidationsOutputJsonFilePath "<F>\\installerextendederrors.json" '
        '/SummaryFilePath "<F>\\installerjson.json"'
    )
    assert list(switches(split_windows(line))) == list(switches(split_windows(push)))  # the same switches, in order


def test_upgrade_argv_is_the_push_installers_upgrade_command() -> None:
    w = world()
    target = "D:\\Apps\\Azure Site Recovery"
    options = InstallOptions(cs_type="CSPrime", install_dir=target, run_dir=RUN_DIR)
    argv = w.backend.install_argv(STAGED, options, upgrade=True)
    push = (
        "UnifiedAgent.exe /Platform VmWare /Silent  /InstallationType Upgrade /CSType CSPrime  "
        '/InstallLocation "D:\\Apps\\Azure Site Recovery" /LogFilePath "<F>\\stdout.txt" /Invoker "vmtools" '
        '/ValidationsOutputJsonFilePath "<F>\\e.json" /SummaryFilePath "<F>\\s.json"'
    )
    assert list(switches(split_windows(subprocess.list2cmdline(argv)))) == list(switches(split_windows(push)))
    assert "/Role" not in argv  # an upgrade keeps the installed role, as the push installer's line has no /Role
    assert '/InstallLocation "D:\\Apps\\Azure Site Recovery"' in subprocess.list2cmdline(argv)


def test_installer_name_follows_what_the_bundle_contains() -> None:
    w = world()
    w.files.add(STAGED + "\\UnifiedAgentInstaller.exe")
    assert w.backend.installer_path(STAGED) == STAGED + "\\UnifiedAgentInstaller.exe"
    w.files.add(STAGED + "\\UnifiedAgent.exe")
    assert w.backend.installer_path(STAGED) == STAGED + "\\UnifiedAgent.exe"


def test_register_argv_classic_and_modernized() -> None:
    w = world()
    passfile = "C:\\Users\\Admin User\\Desktop\\MobSvc.passphrase"
    reg = Registration("CSLegacy", endpoint="10.0.0.5:8443", passphrase_file=Path(passfile), run_dir=RUN_DIR)
    classic = w.backend.register_argv(DEFAULT_DIR, reg)
    assert classic == [
        DEFAULT_DIR + "\\agent\\UnifiedAgentConfigurator.exe",
        "/CSEndPoint", "10.0.0.5", "/PassphraseFilePath", passfile,
        "/LogFilePath", LOGS + "\\ASRUnifiedAgentConfigurator.log", "/Invoker", "CommandLine",
        "/ValidationsOutputJsonFilePath", RUN_DIR + "\\configuratorextendederrors.json",
        "/SummaryFilePath", RUN_DIR + "\\configuratorjson.json",
        "/CSType", "CSLegacy", "/CSPort", "8443",
    ]  # fmt: skip
    line = subprocess.list2cmdline(classic)
    assert split_windows(line) == classic
    push = (
        '"<path>\\agent\\UnifiedAgentConfigurator.exe" /CSEndPoint "10.0.0.5" /PassphraseFilePath '
        '"<F>\\connection.passphrase" /LogFilePath "<F>\\stdout.txt" /Invoker "vmtools" '
        '/ValidationsOutputJsonFilePath "<F>\\installerextendederrors.json" /SummaryFilePath '
        '"<F>\\configuratorjson.json" /CSType CSLegacy /CSPort 8443'
    )
    assert list(switches(split_windows(line))) == list(switches(split_windows(push)))  # the same switches, in order
    default_port = Registration("CSLegacy", endpoint="cs01.contoso.local", passphrase_file=Path(passfile))
    assert w.backend.register_argv(DEFAULT_DIR, default_port)[-2:] == ["/CSPort", "443"]

    config = "C:\\Temp\\appliance config\\config.json"
    modern = w.backend.register_argv(DEFAULT_DIR, Registration("CSPrime", config_file=Path(config)))
    assert modern[1:] == [
        "/SourceConfigFilePath", config, "/LogFilePath", LOGS + "\\ASRUnifiedAgentConfigurator.log",
        "/Invoker", "CommandLine", "/CSType", "CSPrime",
    ]  # fmt: skip
    assert split_windows(subprocess.list2cmdline(modern)) == modern


def test_uninstall_argv_is_the_push_installers_msiexec_line() -> None:
    w = world()
    argv = w.backend.uninstall_argv()
    assert argv == [
        "C:\\Windows\\System32\\MsiExec.exe",
        "/qn",
        "/x",
        "{275197FC-14FD-4560-A5EB-38217F80CBD1}",
        "/L+*V",
        "C:\\ProgramData\\ASRSetupLogs\\UAuninstall.log",
    ]
    push = (
        "msiExec.exe /qn /x {275197FC-14FD-4560-A5EB-38217F80CBD1} /L+*V C:\\ProgramData\\ASRSetupLogs\\UAuninstall.log"
    )
    assert split_windows(subprocess.list2cmdline(argv))[1:] == split_windows(push)[1:]
    assert argv[3] == PRODUCT_CODE


def test_uninstall_log_follows_programdata_with_spaces() -> None:
    env = {"SystemRoot": "C:\\Windows", "ProgramData": "D:\\Program Data"}
    argv = world(environ=env).backend.uninstall_argv()
    assert argv[-1] == "D:\\Program Data\\ASRSetupLogs\\UAuninstall.log"
    assert subprocess.list2cmdline(argv).endswith('/L+*V "D:\\Program Data\\ASRSetupLogs\\UAuninstall.log"')


def test_extract_argv_and_quoting(tmp_path: Path) -> None:
    w = world()
    bundle = bundle_in(tmp_path)
    argv = w.backend.extract_argv(bundle, STAGED)
    assert argv == [str(bundle.path), "/q", "/x:" + STAGED]
    spaced = "C:\\Program Data\\asrctl\\staging\\x\\bundle"
    line = subprocess.list2cmdline(w.backend.extract_argv(bundle, spaced))
    assert line.endswith('/q "/x:C:\\Program Data\\asrctl\\staging\\x\\bundle"')
    assert split_windows(line)[-1] == "/x:" + spaced


def test_programs_come_from_system32_never_from_path() -> None:
    w = world()
    assert w.backend.powershell == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert w.backend.msiexec == "C:\\Windows\\System32\\MsiExec.exe"
    assert w.backend.default_install_dir() == DEFAULT_DIR
    assert w.backend.log_dir == "C:\\ProgramData\\ASRSetupLogs"


def test_defaults_without_environment() -> None:
    w = world(environ={})
    assert w.backend.uninstall_argv()[0] == "C:\\Windows\\System32\\MsiExec.exe"
    assert w.backend.antivirus_exclusion == "C:\\ProgramData\\ASR\\agent"


# --- signature check ---------------------------------------------------------------------------------------


def test_signature_check_passes_the_path_in_the_environment_not_the_command(tmp_path: Path) -> None:
    w = world()
    tricky = "C:\\Temp\\x'; Remove-Item C:\\ -Recurse; '.exe"
    w.backend.require_microsoft_signature(tricky)
    call, env = w.runner.calls[-1], w.runner.envs[-1]
    assert call == [
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-Command",
        SIGNATURE_SCRIPT,
    ]
    assert env == {SIGNATURE_ENV: tricky}
    assert not any(tricky in arg for arg in call)
    assert '"' not in SIGNATURE_SCRIPT and '"' not in DEFENDER_SCRIPT  # nothing for the command line to mangle
    assert "-LiteralPath $env:ASRCTL_SIGNED_FILE" in SIGNATURE_SCRIPT


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Scripted(stdout=signature_json("NotSigned", None)), "signature status is NotSigned"),
        (Scripted(stdout=signature_json("HashMismatch")), "signature status is HashMismatch"),
        (Scripted(stdout=signature_json("Valid", "CN=Contoso Ltd, O=Contoso Ltd, C=US")), "not by Microsoft"),
        (Scripted(stdout=signature_json("Valid", "CN=Microsoft Corporation Fake, O=Evil")), "not by Microsoft"),
        (Scripted(stdout=signature_json("Valid", "CN=x, O=Microsoft Corporation Evil, C=US")), "not by Microsoft"),
        (Scripted(stdout=signature_json("Valid", 'CN=x, O="Microsoft Corporation, Evil", C=US')), "not by Microsoft"),
        (Scripted(returncode=1, stderr="Get-AuthenticodeSignature : not found"), "PowerShell exited 1"),
        (Scripted(stdout="garbage"), "could not check the signature"),
    ],
)
def test_unsigned_or_foreign_bundle_is_never_run(tmp_path: Path, answer: Scripted, message: str) -> None:
    w = world()
    bundle = bundle_in(tmp_path)
    w.runner.signatures[str(bundle.path)] = answer
    steps = w.backend.stage_steps(bundle, Path(STAGED), None)
    with pytest.raises(AsrctlError) as err:
        run_steps(steps)
    assert err.value.code == "ASRCTL-E034"
    assert err.value.exit_code == 5
    assert message in err.value.message
    assert w.runner.programs() == ["powershell.exe"], "nothing from the bundle may run"


def test_signer_subject_components() -> None:
    from asrctl.agent.windows_signing import dn_parts

    assert dn_parts('CN=Microsoft Corporation, O="Microsoft, Corp", C=US') == [
        "CN=Microsoft Corporation",
        "O=Microsoft, Corp",
        "C=US",
    ]


def test_numeric_valid_status_is_accepted() -> None:
    w = world()
    w.runner.signatures["C:\\x.exe"] = Scripted(
        stdout=json.dumps({"Status": 0, "SignerCertificate": {"Subject": "O=Microsoft Corporation"}})
    )
    assert w.backend.require_microsoft_signature("C:\\x.exe")["status"] == "Valid"


def test_powershell_missing_is_a_signature_error() -> None:
    w = world()

    def missing(call: list[str]) -> None:
        raise FileNotFoundError(2, "No such file", call[0])

    w.runner.signatures["C:\\x.exe"] = Scripted(effect=missing)
    with pytest.raises(AsrctlError) as err:
        w.backend.require_microsoft_signature("C:\\x.exe")
    assert err.value.code == "ASRCTL-E034"


# --- staging -----------------------------------------------------------------------------------------------


def test_stage_checks_digest_then_signature_then_unpacks(tmp_path: Path) -> None:
    import hashlib

    w = world()
    bundle = bundle_in(tmp_path)
    digest = hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    w.runner.script[bundle.path.name] = Scripted(effect=lambda call: unpacked(w))
    results = run_steps(w.backend.stage_steps(bundle, Path(STAGED), digest))
    assert results["verify"]["sha256"] == digest
    assert results["verify"]["signature"]["signer"].startswith("CN=Microsoft Corporation")
    assert w.runner.calls[-1] == [str(bundle.path), "/q", "/x:" + STAGED]
    assert w.runner.envs[0] == {SIGNATURE_ENV: str(bundle.path)}
    assert w.files.exists(STAGED)


def test_digest_mismatch_stops_before_anything_runs(tmp_path: Path) -> None:
    w = world()
    bundle = bundle_in(tmp_path)
    with pytest.raises(AsrctlError) as err:
        run_steps(w.backend.stage_steps(bundle, Path(STAGED), "0" * 64))
    assert err.value.code == "ASRCTL-E030"
    assert w.runner.calls == []


def test_unpack_failure_is_a_corrupt_bundle(tmp_path: Path) -> None:
    w = world()
    bundle = bundle_in(tmp_path)
    w.runner.script[bundle.path.name] = Scripted(returncode=1)
    with pytest.raises(AsrctlError) as err:
        run_steps(w.backend.stage_steps(bundle, Path(STAGED), None))
    assert err.value.code == "ASRCTL-E033"
    assert "UnifiedAgent.exe is not in" in err.value.message


# --- preconditions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "data", "reason"),
    [
        (SESSION_MANAGER, "PendingFileRenameOperations", ["\\??\\C:\\x.tmp", ""], "PendingFileRenameOperations"),
        (CBS_REBOOT_PENDING, None, None, "Component Based Servicing"),
        (WU_REBOOT_REQUIRED, None, None, "RebootRequired"),
    ],
)
def test_pending_reboot_refuses_install_and_upgrade(tmp_path: Path, key: str, value, data, reason: str) -> None:
    w = world()
    w.registry.set(key, {value: data} if value else {})
    assert reason in (w.backend.pending_reboot() or "")
    for make in (
        lambda: w.backend.stage_steps(bundle_in(tmp_path), Path(STAGED), None),
        lambda: w.backend.install_steps(Path(STAGED), InstallOptions(), False, None),
        lambda: w.backend.install_steps(Path(STAGED), InstallOptions(), True, None),
    ):
        with pytest.raises(AsrctlError) as err:
            make()
        assert err.value.code == "ASRCTL-E043" and err.value.exit_code == 6
    assert w.runner.calls == []


def test_no_pending_reboot() -> None:
    w = world()
    w.registry.set(SESSION_MANAGER, {"PendingFileRenameOperations": [""]})
    assert w.backend.pending_reboot() is None


def test_not_elevated_is_refused() -> None:
    w = world(admin=False)
    with pytest.raises(AsrctlError) as err:
        w.backend.install_steps(Path(STAGED), InstallOptions(), False, None)
    assert err.value.code == "ASRCTL-E040"
    with pytest.raises(AsrctlError):
        w.backend.uninstall_steps(w.backend.installed() or _agent(w))


def _agent(w: World):
    install_agent(w)
    agent = w.backend.installed()
    assert agent is not None
    return agent


# --- the installer and its exit codes ----------------------------------------------------------------------


def _install(w: World, rc: int, upgrade: bool = False):
    unpacked(w)
    w.runner.script["UnifiedAgent.exe"] = Scripted(returncode=rc)
    steps = w.backend.install_steps(Path(STAGED), InstallOptions(), upgrade, None)
    assert [s.id for s in steps] == ["antivirus", "upgrade" if upgrade else "install"]
    return steps


@pytest.mark.parametrize("rc", sorted(SUCCESS_CODES))
def test_installer_success_codes(rc: int) -> None:
    w = world()
    result = run_steps(_install(w, rc))["install"]
    assert result["vendor_exit_code"] == rc
    assert result["reboot_required"] is (rc in (3010, 1641))
    assert (result["warning"] is None) is (rc == 0)
    # The installer itself was checked right before it ran.
    assert w.runner.programs()[-2:] == ["powershell.exe", "unifiedagent.exe"]
    assert w.runner.envs[-2] == {SIGNATURE_ENV: STAGED + "\\UnifiedAgent.exe"}


@pytest.mark.parametrize("rc", sorted(VENDOR_CODES) + [4, 255, 12345])
def test_installer_failure_codes(rc: int) -> None:
    w = world()
    with pytest.raises(AsrctlError) as err:
        run_steps(_install(w, rc))
    expected = VENDOR_CODES.get(rc, ("ASRCTL-E060", "failed"))[0]
    assert err.value.code == expected
    assert err.value.details["vendor_exit_code"] == rc
    assert "C:\\ProgramData\\ASRSetupLogs\\ASRUnifiedAgentInstaller.log" in err.value.message


def test_failed_fresh_install_removes_what_msi_registered() -> None:
    w = world()
    steps = _install(w, 1)
    install = steps[-1]
    w.registry.set(UNINSTALL_KEYS[0], {"DisplayVersion": "9.66.7567.1"})  # the MSI got that far
    with pytest.raises(AsrctlError):
        install.run()
    assert install.abort is not None
    install.abort()
    assert w.runner.calls[-1][0] == "C:\\Windows\\System32\\MsiExec.exe"
    assert w.runner.calls[-1][1:4] == ["/qn", "/x", PRODUCT_CODE]


def test_failed_install_over_an_existing_product_removes_nothing() -> None:
    w = world()
    install_agent(w)
    install = _install(w, 1)[-1]
    calls = len(w.runner.calls)
    assert install.abort is not None
    install.abort()
    assert len(w.runner.calls) == calls
    assert _install(world(), 1, upgrade=True)[-1].abort is None


def test_installer_timeout() -> None:
    from asrctl.system.runner import TimedOut

    w = world()

    def slow(call: list[str]) -> None:
        raise TimedOut(call, 5)

    unpacked(w)
    w.runner.script["UnifiedAgent.exe"] = Scripted(effect=slow)
    with pytest.raises(AsrctlError) as err:
        run_steps(w.backend.install_steps(Path(STAGED), InstallOptions(timeout=5), False, None))
    assert err.value.code == "ASRCTL-E063"


# --- antivirus ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "warned"),
    [
        (["C:\\ProgramData\\ASR\\agent"], False),
        (["c:\\programdata\\asr\\AGENT\\"], False),
        (["C:\\ProgramData\\ASR"], False),
        (["%ProgramData%\\ASR\\agent"], False),
        (["C:\\ProgramData\\ASR\\*"], False),
        (["C:\\ProgramData\\ASRX"], True),
        ([], True),
        (["N/A: Must be an administrator to view exclusions"], True),
    ],
)
def test_defender_exclusion_check(paths: list[str], warned: bool) -> None:
    w = world()
    w.runner.defender = Scripted(stdout=json.dumps({"Available": True, "ExclusionPath": paths}))
    result = w.backend.antivirus_step().run() or {}
    assert bool(result.get("warning")) is warned
    if warned:
        assert "C:\\ProgramData\\ASR\\agent" in result["warning"]


def test_defender_unavailable_still_warns() -> None:
    w = world()
    result = w.backend.antivirus_step().run() or {}
    assert result["defender_excludes_agent_folder"] is None
    assert "exclude C:\\ProgramData\\ASR\\agent" in result["warning"]


# --- state: registry, services -----------------------------------------------------------------------------


def test_not_installed() -> None:
    w = world()
    assert w.backend.installed() is None
    assert [(s.name, s.running) for s in w.backend.services(None)] == [
        ("svagents", False),
        ("InMage Scout Application Service", False),
    ]


@pytest.mark.parametrize("wow", [True, False])
def test_installed_from_the_registry(wow: bool) -> None:
    w = world()
    install_agent(w, "9.66.7567.1", registered=True, install_dir="D:\\ASR", wow=wow)
    w.files.add(
        "D:\\ASR\\agent\\Application Data\\etc\\drscout.conf",
        "[vxagent]\nHostId=1b2c\nHostname=10.0.0.5\nPort=443\nVmPlatform=VmWare\n",
    )
    agent = w.backend.installed()
    assert agent is not None
    assert (agent.version, agent.build, agent.registered) == ("9.66.7567.1", "7567", True)
    assert str(agent.install_dir) == "D:\\ASR"
    assert (agent.cs_endpoint, agent.host_id, agent.platform, agent.cs_type) == (
        "10.0.0.5:443",
        "1b2c",
        "VmWare",
        "CSLegacy",
    )
    assert agent.details["agent_configuration_status"] == "Succeeded"


def test_installed_but_not_registered_with_install_dir_from_the_msi() -> None:
    w = world()
    w.registry.set(UNINSTALL_KEYS[0], {"DisplayVersion": "9.65.7417.1", "InstallLocation": "E:\\Site Recovery\\"})
    agent = w.backend.installed()
    assert agent is not None and not agent.registered
    assert str(agent.install_dir) == "E:\\Site Recovery"
    assert agent.cs_endpoint is None and agent.cs_type is None


def test_install_directory_pointing_at_the_agent_folder() -> None:
    w = world()
    install_agent(w, install_dir=DEFAULT_DIR + "\\agent")
    assert str(w.backend.installed().install_dir) == DEFAULT_DIR


def test_incomplete_install_is_reported() -> None:
    w = world()
    w.registry.set(UNINSTALL_KEYS[1], {"DisplayName": "x"})
    with pytest.raises(AsrctlError) as err:
        w.backend.installed()
    assert err.value.code == "ASRCTL-E051"


def test_services_via_the_service_list() -> None:
    w = world()
    install_agent(w)
    w.services[1] = ServiceInfo("inmage scout application service", "stopped", None)

    class Broken:
        def name(self) -> str:
            raise PermissionError("access denied")

    w.services.append(Broken())  # type: ignore[arg-type]
    svcs = {s.name: s for s in w.backend.services(w.backend.installed())}
    assert svcs["svagents"].running and svcs["svagents"].pids == (4100,)
    assert not svcs["InMage Scout Application Service"].running


def test_psutil_default_lister_is_lazy_and_harmless_off_windows() -> None:
    from asrctl.agent.windows import _psutil_services

    if sys.platform != "win32":
        assert list(_psutil_services()) == []


# --- registration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rc", "output", "code"),
    [
        (1, "post request: (7) - Couldn't connect to server", "ASRCTL-E082"),
        (1, "(60) - Peer certificate cannot be authenticated", "ASRCTL-E083"),
        (14, "", "ASRCTL-E081"),
        (19, "", "ASRCTL-E080"),
        (13, "", "ASRCTL-E048"),
        (41, "", "ASRCTL-E054"),
        (97, "", "ASRCTL-E080"),
        (128, "", "ASRCTL-E080"),
        (7777, "", "ASRCTL-E080"),
    ],
)
def test_configurator_failures(rc: int, output: str, code: str) -> None:
    w = world()
    w.runner.script["UnifiedAgentConfigurator.exe"] = Scripted(returncode=rc, stdout=output)
    reg = Registration("CSLegacy", endpoint="10.0.0.5", passphrase_file=Path("C:\\p.txt"))
    with pytest.raises(AsrctlError) as err:
        w.backend.register_step(reg, DEFAULT_DIR).run()
    assert err.value.code == code
    assert "ASRUnifiedAgentConfigurator.log" in err.value.message


def test_registration_success_goes_through_the_retry_wrapper() -> None:
    w = world()
    seen = []

    def retry(fn):
        seen.append(fn)
        return fn()

    step = w.backend.register_step(Registration("CSPrime", config_file=Path("C:\\c.json")), DEFAULT_DIR, retry)
    assert step.run() == {"vendor_exit_code": 0, "warning": None, "reboot_required": False}
    assert seen and step.argv == w.runner.calls[-1]


def test_config_input_when_the_tool_is_there_or_not() -> None:
    w = world()
    step = w.backend.config_input_step(DEFAULT_DIR)
    assert "Agent Config Input" in (step.run() or {})["warning"]
    assert w.runner.calls == []
    w.files.add(DEFAULT_DIR + "\\agent\\AzureRcmCli.exe")
    w.runner.script["AzureRcmCli.exe"] = Scripted(stdout="noise\ngetagentconfiginput:QUJD\n")
    assert step.run() == {"agent_config_input": "QUJD"}


# --- uninstall ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rc", "code", "reboot"),
    [(0, None, False), (3010, None, True), (1641, None, True), (1605, None, False), (1618, "ASRCTL-E054", False)]
    + [(1603, "ASRCTL-E061", False), (1602, "ASRCTL-E061", False), (42, "ASRCTL-E061", False)],
)
def test_uninstall_exit_codes(rc: int, code: str | None, reboot: bool) -> None:
    w = world()
    agent = _agent(w)
    w.runner.script["MsiExec.exe"] = Scripted(returncode=rc)
    (step,) = w.backend.uninstall_steps(agent)
    assert step.argv == w.backend.uninstall_argv()
    if code is None:
        result = step.run() or {}
        assert result["reboot_required"] is reboot
    else:
        with pytest.raises(AsrctlError) as err:
            step.run()
        assert err.value.code == code


def test_leftovers_after_uninstall() -> None:
    w = world()
    agent = _agent(w)
    assert w.backend.leftovers(agent) == [
        "HKLM\\" + UNINSTALL_KEYS[0],
        "service svagents (running)",
        "service InMage Scout Application Service (running)",
    ]
    w.registry.delete(UNINSTALL_KEYS[0])
    w.services.clear()
    assert w.backend.leftovers(agent) == []


# --- wiring and portability --------------------------------------------------------------------------------


def test_module_imports_and_runs_without_windows_modules() -> None:
    """Importing and building the backend with its defaults must not need winreg (absent on Linux)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from asrctl.agent.windows import WindowsBackend\n"
        "from asrctl.output import Output\n"
        "from asrctl.system.paths import Paths\n"
        "b = WindowsBackend(Paths(Path('/')), None, Output())\n"
        "b.default_install_dir(); b.uninstall_argv()\n"
        "assert 'winreg' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_no_posix_only_calls_in_the_windows_code() -> None:
    import asrctl.agent.windows as mod
    import asrctl.system.winreg_access as reg

    for source in (Path(mod.__file__).read_text(), Path(reg.__file__).read_text()):
        for posix_only in ("fcntl", "geteuid", "getuid", "killpg", "import pwd", "import grp", "os.fork", "termios"):
            assert posix_only not in source


# --- the registry layer ------------------------------------------------------------------------------------


def test_memory_registry() -> None:
    from fakes.registry import MemoryRegistry

    reg = MemoryRegistry({"SOFTWARE\\Vendor\\App\\5": {"Version": "1.0"}, "SOFTWARE\\Vendor\\Other": {}})
    assert reg.read("software\\vendor\\APP\\5", "version") == "1.0"
    assert reg.read("SOFTWARE\\Vendor\\App\\5", "Missing") is None
    assert reg.read("SOFTWARE\\Nope", "Version") is None
    assert reg.exists("SOFTWARE\\Vendor") and reg.exists("SOFTWARE\\Vendor\\App\\5\\")
    assert not reg.exists("SOFTWARE\\Vend")
    assert reg.subkeys("SOFTWARE\\Vendor") == ["App", "Other"]
    assert reg.subkeys("SOFTWARE\\Nope") == []
    reg.delete("SOFTWARE\\Vendor\\App")
    assert reg.subkeys("SOFTWARE\\Vendor") == ["Other"]


def test_real_registry_code_against_a_stand_in_winreg(monkeypatch) -> None:
    """WinRegistry's calls into winreg, checked with a stand-in module (winreg exists only on Windows)."""
    import types

    from asrctl.system.winreg_access import WinRegistry

    hive = {"SOFTWARE\\A": {"V": ("x", 1)}, "SOFTWARE\\A\\B": {}, "SOFTWARE\\A\\C": {}}
    opened: list[tuple] = []

    class Handle:
        def __init__(self, key: str) -> None:
            self.key = key

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            return None

    def open_key(root, key, reserved, access):
        opened.append((root, key, access))
        if key not in hive:
            raise FileNotFoundError(key)
        return Handle(key)

    def query(handle, name):
        if name not in hive[handle.key]:
            raise FileNotFoundError(name)
        return hive[handle.key][name]

    def enum_key(handle, index):
        children = sorted(k.rsplit("\\", 1)[1] for k in hive if k.startswith(handle.key + "\\"))
        if index >= len(children):
            raise OSError("no more")
        return children[index]

    fake = types.SimpleNamespace(
        HKEY_LOCAL_MACHINE="HKLM",
        KEY_READ=0x20019,
        KEY_WOW64_64KEY=0x100,
        OpenKey=open_key,
        QueryValueEx=query,
        EnumKey=enum_key,
    )
    monkeypatch.setitem(sys.modules, "winreg", fake)
    reg = WinRegistry()
    assert reg.read("SOFTWARE\\A", "V") == "x"
    assert reg.read("SOFTWARE\\A", "W") is None
    assert reg.read("SOFTWARE\\Z", "V") is None
    assert reg.exists("SOFTWARE\\A") and not reg.exists("SOFTWARE\\Z")
    assert reg.subkeys("SOFTWARE\\A") == ["B", "C"] and reg.subkeys("SOFTWARE\\Z") == []
    assert all(root == "HKLM" and access == 0x20019 | 0x100 for root, _key, access in opened)
