"""Install, daemons, upgrade, uninstall and every knob of the simulated bundle (no asrctl)."""

from __future__ import annotations

import base64
import json
import os
import platform
import signal
import subprocess
import time

import pytest

from .conftest import PASSPHRASE, TAG, V0, V1, V2, alive, comm, processes_mentioning, wait_for

VX_KEYS = [
    "VERSION",
    "PROD_VERSION",
    "PARTNER",
    "INSTALLATION_DIR",
    "AGENT_MODE",
    "VERSION_FILE_PARENT_DIR",
    "DEFAULT_UPGRADE_DIR",
    "BUILD_TAG",
    "OS_BUILT_FOR",
    "CONFIG",
    "TAR_FILE_NAME",
]


def assert_not_installed(box) -> None:
    assert not box.vx_version_path.exists()
    assert box.daemon_pids() == {"svagents": [], "appservice": []}


def calls(box) -> list[list[str]]:
    path = box.root / "var/log/asrsim.calls"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------- install
def test_install_lays_out_the_agent(installed, bundles):
    box = installed
    values = box.vx_version()
    assert list(values) == VX_KEYS  # Microsoft's order; no AGENT_CONFIGURATION_STATUS until the configurator ran
    assert values["VERSION"] == V1
    assert values["INSTALLATION_DIR"] == str(box.vx)  # a host path, root prefix included
    assert values["VERSION_FILE_PARENT_DIR"] == "/usr/local"  # build-time, as Microsoft writes it
    assert values["BUILD_TAG"] == "RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE"
    assert values["OS_BUILT_FOR"] == TAG
    assert values["AGENT_MODE"] == "MS"
    assert values["TAR_FILE_NAME"] == f"InMage_VX_{V1}_{TAG}.tar"  # the payload's name, not the bundle's
    conf = box.drscout()
    assert (conf["VmPlatform"], conf["Role"], conf["CSType"]) == ("VmWare", "Agent", "CSLegacy")
    assert conf["HostId"] == "1234_45466_67689"  # Microsoft's "not generated yet"
    assert "Hostname = \n" in (box.vx / "etc/drscout.conf").read_text()  # Microsoft's spacing
    uninstaller = box.install_dir / "uninstall.sh"
    assert uninstaller.is_file() and os.access(uninstaller, os.X_OK)
    assert "SET_OS_PLACE_HOLER" not in uninstaller.read_text() and f'OS="{TAG}"' in uninstaller.read_text()
    assert (box.install_dir / "Third-Party_Notices.txt").is_file()
    assert sorted(p.name for p in box.vx.iterdir()) == ["bin", "etc", "scripts", "transport", "var"]
    for tool in ("start", "stop", "uninstall", "UnifiedAgentConfigurator.sh", "AzureRcmCli", "svagents", "appservice"):
        assert os.access(box.vx / "bin" / tool, os.X_OK), tool
    assert (box.vx / "scripts/vCon/OS_details.sh").is_file()
    # Outside the install dir: /etc/vxagent, the units (systemd on UBUNTU-22.04-64), the driver, loaded.
    assert (box.root / "etc/vxagent/involflt").is_dir()
    assert sorted(p.name for p in (box.root / "etc/systemd/system").iterdir()) == [
        "uarespawnd.service",
        "vxagent.service",
    ]
    kernel = platform.release()
    assert (box.root / f"lib/modules/{kernel}/kernel/drivers/char/involflt.ko").read_bytes().startswith(b"\x7fELF")
    assert (box.root / "proc/modules").read_text().startswith("involflt ")
    assert "completed successfully" in box.install_log.read_text()
    assert calls(box)[0][:3] == ["install", "-r", "MS"]
    # Nothing but the root got written: the staged bundle has no new files (no __pycache__).
    staged = box.extract(bundles["v1"])
    assert not list(staged.rglob("__pycache__"))


def test_install_takes_the_push_installers_options(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    log, errors, summary = (sandbox.root / f"var/tmp/{n}" for n in ("ua.log", "errors.json", "summary.json"))
    log.parent.mkdir(parents=True)
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-a", "Install", "-c", "CSLegacy"]
    argv += ["-d", sandbox.install_dir, "-l", log, "-m", "vmtools", "-e", errors, "-j", summary]
    proc = sandbox.run(argv)
    sandbox.expect_running = True
    assert proc.returncode == 0, proc.stdout
    assert "completed successfully" in log.read_text()
    assert not errors.exists()  # Microsoft's errors file exists only when there are errors
    done = json.loads(summary.read_text())
    assert (done["InstallStatus"], done["ExitCode"], done["InvokerType"]) == ("Success", "0", "vmtools")
    assert (done["ComponentVersion"], done["InstallRole"], done["OsDistro"]) == (V1, "MS", TAG)


@pytest.mark.parametrize("flag", ["-l", "-e", "-j"])
def test_install_log_and_json_paths_must_be_absolute(sandbox, bundles, flag):
    staged = sandbox.extract(bundles["v1"])
    proc = sandbox.run([staged / "install", "-r", "MS", "-v", "VmWare", "-q", flag, "relative.json"])
    assert proc.returncode == 2 and "not an absolute path" in proc.stdout
    assert_not_installed(sandbox)


def test_daemons_are_named_detached_and_have_pidfiles(installed):
    pids = installed.daemon_pids()
    assert len(pids["svagents"]) == 1 and len(pids["appservice"]) == 1
    for name, (pid,) in pids.items():
        assert comm(pid) == name
        assert (installed.vx / f"var/run/{name}.pid").read_text().strip() == str(pid)
        assert os.getsid(pid) != os.getsid(0)  # own session
        for fd in (0, 1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
        assert sorted(os.listdir(f"/proc/{pid}/fd")) == ["0", "1", "2"]
    psutil = pytest.importorskip("psutil")
    names = {p.name() for p in psutil.process_iter() if p.pid in pids["svagents"] + pids["appservice"]}
    assert names == {"svagents", "appservice"}


def test_start_is_idempotent_and_stop_stops(installed):
    box = installed
    before = box.daemon_pids()
    assert box.run([box.vx / "bin/start"]).returncode == 0
    assert box.daemon_pids() == before
    stop = box.run([box.vx / "bin/stop"])
    assert stop.returncode == 0, stop.stderr
    assert box.daemon_pids() == {"svagents": [], "appservice": []}
    assert not list((box.vx / "var/run").glob("*.pid"))
    assert box.run([box.vx / "bin/stop"]).returncode == 0  # nothing to stop is fine
    assert box.run([box.vx / "bin/start"]).returncode == 0
    assert all(len(p) == 1 for p in box.daemon_pids().values())


def test_daemon_exits_on_sigterm(installed):
    (pid,) = installed.daemon_pids()["appservice"]
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not alive(pid), timeout=5)
    assert wait_for(lambda: not (installed.vx / "var/run/appservice.pid").exists(), timeout=5)


def test_default_install_dir_is_mapped_under_the_root(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    proc = sandbox.run([staged / "install", "-r", "MT", "-v", "Azure", "-q", "-c", "CSLegacy"])
    sandbox.expect_running = True
    assert proc.returncode == 0, proc.stderr
    assert sandbox.vx_version()["INSTALLATION_DIR"] == str(sandbox.root / "usr/local/ASR/Vx")
    assert sandbox.vx_version()["AGENT_MODE"] == "MT"
    assert (sandbox.drscout()["VmPlatform"], sandbox.drscout()["Role"]) == ("Azure", "MasterTarget")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-r", "Agent", "-v", "VmWare", "-q"], "Invalid value for Role"),
        (["-v", "VmWare", "-q"], "Role (-r) is mandatory"),
        (["-r", "MS", "-q"], "Platform (-v) is mandatory"),
        (["-r", "MS", "-v", "Hyper-V", "-q"], "Invalid value for Platform"),
        (["-r", "MS", "-v", "VmWare", "-q", "-c", "CSModern"], "Invalid value for CSType"),
        (["-r", "MS", "-v", "VmWare", "-q", "-a", "Repair"], "Invalid value for Action"),
        (["-r", "MS", "-v", "VmWare", "-q", "-x"], "Invalid command line"),
        (["-r", "MS", "-v", "VmWare"], "use -q"),
    ],
)
def test_command_line_errors_exit_2(sandbox, bundles, argv, needle):
    staged = sandbox.extract(bundles["v1"])
    proc = sandbox.run([staged / "install", *argv])
    assert proc.returncode == 2
    assert needle in proc.stdout
    assert_not_installed(sandbox)


def test_wrong_os_tag_exits_42(sandbox, bundles):
    proc = sandbox.install(bundles["rhel8"])
    assert proc.returncode == 42
    assert "Unsupported OS" in proc.stdout
    assert "built for RHEL8-64, the OS is detected as UBUNTU-22.04-64" in sandbox.install_log.read_text()
    assert_not_installed(sandbox)
    assert not sandbox.install_dir.exists()


def test_arch_knob_makes_the_host_unsupported(sandbox, bundles):
    proc = sandbox.install(bundles["v1"], knobs={"ASR_SIM_ARCH": "aarch64"})
    assert proc.returncode == 42
    assert "detected as unknown" in proc.stdout
    assert_not_installed(sandbox)


def test_install_outside_the_root_is_refused(sandbox, bundles, tmp_path):
    staged = sandbox.extract(bundles["v1"])
    outside = tmp_path / "outside"
    proc = sandbox.run([staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", outside])
    assert proc.returncode == 10
    assert not outside.exists()
    assert_not_installed(sandbox)


def test_bundle_extracted_under_usr_local_is_refused(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    moved = sandbox.root / "usr/local/bundle"
    moved.parent.mkdir(parents=True)
    staged.rename(moved)
    proc = sandbox.run([moved / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy"])
    assert proc.returncode == 1
    assert "must not be extracted under /usr/local" in proc.stdout
    assert not sandbox.vx_version_path.exists()


def test_install_twice_and_upgrade_without_install_exit_1(sandbox, bundles):
    proc = sandbox.install(bundles["v1"], action="Upgrade")
    assert proc.returncode == 1 and "not installed" in proc.stdout
    assert sandbox.install(bundles["v1"]).returncode == 0
    sandbox.expect_running = True
    again = sandbox.install(bundles["v1"])
    assert again.returncode == 1
    assert "already installed" in again.stdout and "-a Upgrade" in again.stdout


def test_cs_prime_install_prints_the_agent_config_input_only_when_explicit(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    proc = sandbox.run([staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-d", sandbox.install_dir])
    sandbox.expect_running = True
    assert proc.returncode == 0, proc.stderr
    assert "Agent Config Input" not in proc.stdout  # -c omitted: CSPrime by default, but silent (I#112967)
    assert sandbox.drscout()["CSType"] == "CSPrime"
    assert sandbox.uninstall("-Y").returncode == 0
    proc = sandbox.install(bundles["v1"], cs_type="CSPrime")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Agent Config Input: "))
    data = json.loads(base64.b64decode(line.split(": ", 1)[1]))
    assert data["hostname"] == "sim-host-01"


def test_azure_rcm_cli(sandbox, bundles):
    assert sandbox.install(bundles["v1"]).returncode == 0
    sandbox.expect_running = True
    proc = sandbox.run([sandbox.vx / "bin/AzureRcmCli", "--getagentconfiginput"])
    assert proc.returncode == 0
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("getagentconfiginput:")]
    data = json.loads(base64.b64decode(line.split(":", 1)[1]))
    ident = json.loads((sandbox.vx / "etc/asrsim_identity.json").read_text())
    assert data["host_id"] == ident["host_id"] and data["bios_id"] == ident["bios_id"]
    assert data["hostname"] == "sim-host-01" and data["agent_version"] == V1
    assert sandbox.run([sandbox.vx / "bin/AzureRcmCli", "--bogus"]).returncode == 2
    saved = sandbox.vx_version_path.read_bytes()
    sandbox.vx_version_path.unlink()
    assert sandbox.run([sandbox.vx / "bin/AzureRcmCli", "--getagentconfiginput"]).returncode == 130
    sandbox.vx_version_path.write_bytes(saved)


def test_bios_id_comes_from_dmi_when_present(sandbox, bundles):
    dmi = sandbox.root / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text("4C4C4544-0042-3010-8052-B4C04F4B4E32\n")
    assert sandbox.install(bundles["v1"]).returncode == 0
    sandbox.expect_running = True
    ident = json.loads((sandbox.vx / "etc/asrsim_identity.json").read_text())
    assert ident["bios_id"] == "4C4C4544-0042-3010-8052-B4C04F4B4E32"


# --------------------------------------------------------------------------- upgrade
def test_upgrade_replaces_payload_and_restarts(installed, bundles):
    box = installed
    old_pids = box.daemon_pids()
    ident = (box.vx / "etc/asrsim_identity.json").read_text()
    with box.vx_version_path.open("a") as fh:
        fh.write("AGENT_CONFIGURATION_STATUS=Succeeded\n")
    conf = (box.vx / "etc/drscout.conf").read_text()
    conf = conf.replace("HostId = 1234_45466_67689", "HostId = keep-me").replace(
        "Hostname = \n", "Hostname = 10.0.0.5\n"
    )
    (box.vx / "etc/drscout.conf").write_text(conf.replace("Port = \n", "Port = 4443\n"))
    proc = box.upgrade(bundles["v2"])
    assert proc.returncode == 0, proc.stdout
    values = box.vx_version()
    assert values["VERSION"] == V2
    assert values["BUILD_TAG"] == "RELEASE_9.67.7789.1_GA_7789_Apr_30_2026_INMAGE"
    assert values["AGENT_CONFIGURATION_STATUS"] == "Succeeded"
    assert values["INSTALLATION_DIR"] == str(box.vx)
    assert values["AGENT_MODE"] == "MS"  # -r omitted on upgrade, like push install does
    conf = box.drscout()
    assert (conf["HostId"], conf["Hostname"], conf["Port"], conf["Role"]) == ("keep-me", "10.0.0.5", "4443", "Agent")
    assert (box.vx / "etc/asrsim_identity.json").read_text() == ident
    new_pids = box.daemon_pids()
    assert all(len(p) == 1 for p in new_pids.values())
    assert not set(new_pids["svagents"]) & set(old_pids["svagents"])
    assert not any(alive(p) for p in old_pids["svagents"] + old_pids["appservice"])


def test_downgrade_exits_15(installed, bundles):
    proc = installed.upgrade(bundles["v0"])
    assert proc.returncode == 15
    assert installed.vx_version()["VERSION"] == V1
    assert V0 in installed.install_log.read_text()


def test_role_change_on_upgrade_exits_75(installed, bundles):
    staged = installed.extract(bundles["v2"])
    proc = installed.run([staged / "install", "-r", "MT", "-v", "VmWare", "-q", "-a", "Upgrade", "-c", "CSLegacy"])
    assert proc.returncode == 75
    assert installed.vx_version()["VERSION"] == V1


def test_upgrade_when_services_cannot_stop_exits_43(installed, bundles):
    proc = installed.upgrade(bundles["v2"], knobs={"ASR_SIM_FAIL_AT": "stop"})
    assert proc.returncode == 43
    assert installed.vx_version()["VERSION"] == V1
    assert all(len(p) == 1 for p in installed.daemon_pids().values())


# --------------------------------------------------------------------------- uninstall
def test_uninstall_removes_everything(installed, cs_factory):
    box = installed
    cs = cs_factory()
    assert box.register(cs).returncode == 0
    assert (box.root / "usr/local/InMage/fingerprints").is_dir()
    pids = box.daemon_pids()
    proc = box.uninstall("-Y")
    assert proc.returncode == 0, proc.stdout
    assert not any(alive(p) for p in pids["svagents"] + pids["appservice"])
    assert box.daemon_pids() == {"svagents": [], "appservice": []}
    assert [f for f in box.files() if f.startswith("usr/")] == []
    assert not [p for p in box.root.joinpath("usr/local").rglob("*") if p.is_file()]
    assert not any(box.install_dir.iterdir())  # Microsoft's uninstall.sh leaves the (empty) install root
    assert not (box.root / "etc/vxagent").exists()
    assert not list((box.root / "etc/systemd/system").iterdir())
    assert "involflt" not in (box.root / "proc/modules").read_text()
    assert not list(box.root.joinpath("lib/modules").rglob("involflt.ko"))
    assert "Mobility Service uninstalled" in box.uninstall_log.read_text()
    box.expect_running = False


def test_uninstall_custom_log(installed, tmp_path):
    log = installed.root / "var/log/custom-uninstall.log"
    proc = installed.uninstall("-Y", "-L", str(log))
    assert proc.returncode == 0, proc.stdout
    assert "removed" in log.read_text()
    assert calls(installed)[-2:] == [["uninstall.sh", "-Y", "-L", str(log)], ["Vx/bin/uninstall", "-Y", "-L", str(log)]]
    installed.expect_running = False


@pytest.mark.parametrize("args", [(), ("-Z",), ("-L", "relative.log"), ("-L", "-Y"), ("-h",), ("now",)])
def test_uninstall_usage_and_no_answer_exit_1(installed, args):
    proc = installed.uninstall(*args)
    assert proc.returncode == 1
    assert ("Bye..." if args == () else "Usage") in proc.stdout
    assert installed.vx_version_path.exists()
    assert all(len(p) == 1 for p in installed.daemon_pids().values())


def test_uninstall_ignores_a_stray_word_after_the_options(installed):
    assert installed.uninstall("-Y", "extra").returncode == 0
    installed.expect_running = False


def test_uninstall_lock(installed):
    """A lock whose pid is alive: "already running"; dead: "inconsistent state". Either way exit 1, and the lock is
    removed on the way out (Microsoft's SEE_LOG), so the next run works."""
    lock = installed.install_dir / ".uninstall.lck"
    lock.write_text(f"{os.getpid()}\n")
    proc = installed.uninstall("-Y")
    assert proc.returncode == 1 and "already running" in proc.stdout
    assert not lock.exists()
    lock.write_text("4194000\n")
    proc = installed.uninstall("-Y")
    assert proc.returncode == 1 and "inconsistent state" in proc.stdout
    assert not lock.exists()
    installed.vx_version_path.rename(installed.base / "vx_version.bak")
    proc = installed.uninstall("-Y")
    assert proc.returncode == 1 and "not installed" in proc.stdout
    installed.vx_version_path.write_bytes((installed.base / "vx_version.bak").read_bytes())
    assert installed.uninstall("-Y").returncode == 0
    installed.expect_running = False


def test_uninstall_when_services_cannot_stop_exits_2_and_keeps_the_install(installed):
    proc = installed.uninstall("-Y", knobs={"ASR_SIM_FAIL_AT": "stop"})
    assert proc.returncode == 2
    assert "Could not stop Vx agent service" in proc.stdout
    assert installed.vx_version_path.exists() and (installed.install_dir / "uninstall.sh").exists()
    assert not (installed.install_dir / ".uninstall.lck").exists()  # a retry is possible
    assert not (installed.root / "usr/local/.norespawn_vxagent").exists()
    assert all(len(p) == 1 for p in installed.daemon_pids().values())
    assert installed.uninstall("-Y").returncode == 0
    installed.expect_running = False


def test_uninstall_ignores_the_vx_uninstallers_exit_code(installed):
    """Microsoft's uninstall.sh exits 0 whatever <Vx>/bin/uninstall returned: only a look at the machine shows
    that nothing was removed."""
    proc = installed.uninstall("-Y", knobs={"ASR_SIM_FAIL_AT": "uninstall"})
    assert proc.returncode == 0
    assert installed.vx_version_path.exists() and installed.vx.exists()
    assert not (installed.install_dir / "uninstall.sh").exists()  # the outer script removed itself
    assert (installed.root / "etc/vxagent").exists()


# --------------------------------------------------------------------------- knobs
def test_install_exit_98_installs_with_a_warning(sandbox, bundles):
    proc = sandbox.install(bundles["v1"], knobs={"ASR_SIM_INSTALL_EXIT": "98"})
    sandbox.expect_running = True
    assert proc.returncode == 98
    assert sandbox.vx_version()["VERSION"] == V1
    assert all(len(p) == 1 for p in sandbox.daemon_pids().values())
    assert " : WARNING : " in sandbox.install_log.read_text()


@pytest.mark.parametrize("code", [1, 3, 62])
def test_install_exit_other_codes_change_nothing(sandbox, bundles, code):
    before = sandbox.files()
    proc = sandbox.install(bundles["v1"], knobs={"ASR_SIM_INSTALL_EXIT": str(code)})
    assert proc.returncode == code
    assert " : ERROR : " in sandbox.install_log.read_text()
    assert sorted(set(sandbox.files()) - set(before)) == ["var/log/asrsim.calls", "var/log/ua_install.log"]


def test_fail_at_install_exits_1(sandbox, bundles):
    proc = sandbox.install(bundles["v1"], knobs={"ASR_SIM_FAIL_AT": "install"})
    assert proc.returncode == 1
    assert_not_installed(sandbox)


def test_fail_at_start_exits_44_without_daemons(sandbox, bundles):
    proc = sandbox.install(bundles["v1"], knobs={"ASR_SIM_FAIL_AT": "start"})
    assert proc.returncode == 44
    assert sandbox.daemon_pids() == {"svagents": [], "appservice": []}
    assert sandbox.vx_version_path.exists()  # installed, services down
    assert sandbox.run([sandbox.vx / "bin/start"], knobs={"ASR_SIM_FAIL_AT": "start"}).returncode == 1


def test_knob_version_scopes_the_knobs_to_one_bundle_version(sandbox, bundles):
    other = {"ASR_SIM_INSTALL_EXIT": "3", "ASR_SIM_KNOB_VERSION": "9.1.0.1"}
    assert sandbox.install(bundles["v1"], knobs=other).returncode == 0, "another version's knob does not act"
    sandbox.expect_running = True
    vx = sandbox.vx
    stop = {"ASR_SIM_FAIL_AT": "stop", "ASR_SIM_KNOB_VERSION": V1}
    assert sandbox.run([vx / "bin/stop"], knobs=stop).returncode == 2, "this version's knob acts"
    assert sandbox.run([vx / "bin/stop"], knobs={**stop, "ASR_SIM_KNOB_VERSION": V2}).returncode == 0
    assert sandbox.run([vx / "bin/start"]).returncode == 0


def _hang(box, argv, knob, sig, expected_rc, marker_file):
    proc = subprocess.Popen(
        [str(a) for a in argv],
        env=box.env(ASR_SIM_HANG=knob),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: marker_file.exists() and "hanging" in marker_file.read_text(), timeout=15)
        time.sleep(0.1)
        assert proc.poll() is None
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == expected_rc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_hang_install_dies_on_signal_without_daemons(sandbox, bundles, sig, rc):
    staged = sandbox.extract(bundles["v1"])
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", sandbox.install_dir]
    _hang(sandbox, argv, "install", sig, rc, sandbox.install_log)
    assert (sandbox.vx / "bin/svagents").exists()  # it had written files ...
    assert not sandbox.vx_version_path.exists()  # ... but not finished
    assert sandbox.daemon_pids() == {"svagents": [], "appservice": []}
    assert processes_mentioning(str(staged)) == []


def test_hang_uninstall_dies_on_signal_and_releases_the_lock(installed):
    argv = [installed.install_dir / "uninstall.sh", "-Y"]
    _hang(installed, argv, "uninstall", signal.SIGTERM, 143, installed.uninstall_log)
    assert not (installed.install_dir / ".uninstall.lck").exists()
    assert processes_mentioning(str(installed.install_dir / "uninstall.sh")) == []
    assert installed.vx_version_path.exists()
    assert installed.uninstall("-Y").returncode == 0
    installed.expect_running = False


def test_hang_configure_dies_on_signal(installed):
    argv = [
        installed.vx / "bin/UnifiedAgentConfigurator.sh",
        "-i",
        "127.0.0.1",
        "-p",
        "9",
        "-P",
        installed.passphrase_file,
    ]
    _hang(installed, argv, "configure", signal.SIGTERM, 143, installed.install_log)
    assert installed.vx_version().get("AGENT_CONFIGURATION_STATUS") != "Succeeded"


def _paused(box, argv, knob: str, pauses) -> subprocess.Popen:
    proc = subprocess.Popen([str(a) for a in argv], env=box.env(ASR_SIM_PAUSE=knob, ASR_SIM_PAUSE_DIR=str(pauses)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    ready = pauses / f"{knob.replace(':', '.')}.ready"
    assert wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=30), f"{knob} never reached"
    assert proc.poll() is None and ready.read_text().strip().isdigit()
    return proc


def test_pause_waits_at_the_named_point_until_go(sandbox, bundles, tmp_path):
    """ASR_SIM_PAUSE (docs/SIMULATORS.md): the installer stops after copying its files, before .vx_version, writes
    the ready file and carries on when the go file appears; the files are removed again."""
    pauses = tmp_path / "pauses"
    staged = sandbox.extract(bundles["v1"])
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", sandbox.install_dir]
    proc = _paused(sandbox, argv, "install:copied", pauses)
    try:
        assert (sandbox.vx / "bin/svagents").exists() and not sandbox.vx_version_path.exists()
        (pauses / "install.copied.go").write_text("go")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert sorted(p.name for p in pauses.iterdir()) == []
    assert sandbox.vx_version_path.exists()
    sandbox.expect_running = True


def test_pause_in_uninstall_sh_after_the_vx_tree_is_gone_and_sigterm(installed, tmp_path):
    """uninstall.sh keeps the helper's text: it still pauses once Vx/ (where the helper lives) is removed. By then
    the Vx-level uninstall has removed .vx_version too; uninstall.sh's own files are what a SIGTERM leaves (its trap
    removes the lock)."""
    pauses = tmp_path / "pauses"
    proc = _paused(installed, [installed.install_dir / "uninstall.sh", "-Y"], "uninstall:removed", pauses)
    try:
        assert not installed.vx.exists() and not installed.vx_version_path.exists()
        assert (installed.install_dir / ".uninstall.lck").exists()
        os.killpg(proc.pid, signal.SIGTERM)  # the script and the helper it waits on, as a runner's timeout would
        assert proc.wait(timeout=30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert processes_mentioning(str(installed.install_dir / "uninstall.sh")) == []
    assert not (installed.install_dir / ".uninstall.lck").exists()
    assert (installed.install_dir / "uninstall.sh").exists()
    assert installed.daemon_pids() == {"svagents": [], "appservice": []}
    installed.expect_running = False


def test_pause_in_the_checker_and_scoped_by_knob_version(sandbox, bundles, tmp_path):
    """The bundle's shell checker pauses through libcommon.sh (the helper read from the payload); with
    ASR_SIM_KNOB_VERSION naming another version the same knob does nothing."""
    pauses = tmp_path / "pauses"
    staged = sandbox.extract(bundles["v1"])
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", sandbox.install_dir]
    proc = _paused(sandbox, argv, "prereq:begin", pauses)
    try:
        assert not sandbox.install_dir.exists()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.stdout.close()
        proc.stderr.close()
    assert not sandbox.vx_version_path.exists() and not sandbox.install_dir.exists()
    (pauses / "prereq.begin.ready").unlink()  # SIGKILL leaves it; the next run must not write one
    other = sandbox.run(argv, knobs={"ASR_SIM_PAUSE": "prereq:begin,install:copied", "ASR_SIM_KNOB_VERSION": V2,
                                     "ASR_SIM_PAUSE_DIR": str(pauses)}, timeout=120)  # fmt: skip
    assert other.returncode == 0, other.stdout + other.stderr
    assert list(pauses.iterdir()) == []
    sandbox.expect_running = True


def test_fail_at_configure_exits_17(installed):
    proc = installed.configure(
        "-i", "127.0.0.1", "-p", "9", "-P", installed.passphrase_file, knobs={"ASR_SIM_FAIL_AT": "configure"}
    )
    assert proc.returncode == 17
    assert PASSPHRASE not in proc.stdout + proc.stderr


def _run_on_a_terminal(box, argv, answer: str) -> tuple[int, str]:
    """Run *argv* with a pseudo-terminal on stdin and type *answer*."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(a) for a in argv], env=box.env(), stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        os.write(master, answer.encode())
        out, _ = proc.communicate(timeout=30)
        return proc.returncode, out.decode(errors="replace")
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(("answer", "rc"), [("\n", 1), ("n\n", 1), ("Y\n", 0)])
def test_uninstall_prompt_on_a_terminal(installed, answer, rc):
    code, out = _run_on_a_terminal(installed, [installed.install_dir / "uninstall.sh"], answer)
    assert code == rc, out
    assert "(Y/N) [N]" in out and ("Bye..." in out) == (rc == 1)
    assert installed.vx_version_path.exists() == (rc != 0)
    installed.expect_running = rc != 0


def test_install_prompt_on_a_terminal(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-c", "CSLegacy"]
    code, out = _run_on_a_terminal(sandbox, argv, "n\n")
    assert code == 1 and "cancelled" in out
    assert_not_installed(sandbox)
    code, out = _run_on_a_terminal(sandbox, argv, "y\n")
    sandbox.expect_running = True
    assert code == 0, out
    assert sandbox.vx_version()["VERSION"] == V1
