"""The Azure VM agent: per-distro data, the steps it plans (exact argv), Windows' bundled/MSI logic."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes.runner import RecordingRunner, Scripted
from fakes.windows import install_agent, signature_json, world

from asrctl.agent import vmagent
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.bundles.names import parse
from asrctl.errors import AsrctlError
from asrctl.output import Output

REPO = Path(__file__).resolve().parents[2]
DISTROS = REPO / "tests/fixtures/distros"
FAKES = REPO / "scripts/asrsim/pkgtools/bin"
MSI = "WindowsAzureVmAgent.2.7.41491.1010_2107131233.fre.msi"


def app_for(tree: str | Path, bundles: Path | None = None) -> App:
    root = DISTROS / tree if isinstance(tree, str) else tree
    return App(root_arg=str(root), bundle_dir_args=(str(bundles),) if bundles else (), out=Output())


@dataclass
class LinuxStub:
    runner: RecordingRunner
    name: str = "linux"


# --- data --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tree", "family", "package", "service", "managers"),
    [
        ("ubuntu-22.04", "ubuntu", "walinuxagent", "walinuxagent", ["apt-get"]),
        ("ubuntu-16.04", "ubuntu", "walinuxagent", "walinuxagent", ["apt-get"]),
        ("debian-12.11", "debian", "waagent", "walinuxagent", ["apt-get"]),
        ("rhel-8.10", "rhel", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("rhel-7.9", "rhel", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("centos-7.9", "rhel", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("rocky-9.3", "rhel", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("alma-9.6", "rhel", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("ol-8.10", "oracle", "WALinuxAgent", "waagent", ["dnf", "yum"]),
        ("sles-15-sp6", "sles", "python-azure-agent", "waagent", ["zypper"]),
        ("sles-12-sp5", "sles", "python-azure-agent", "waagent", ["zypper"]),
        ("sles-11-sp4", "sles", "python-azure-agent", "waagent", ["zypper"]),
        ("opensuse-leap-15.6", "sles", "python-azure-agent", "waagent", ["zypper"]),
    ],
)
def test_family_facts(tree: str, family: str, package: str, service: str, managers: list[str]) -> None:
    entry = vmagent.linux_family(app_for(tree))
    assert entry is not None
    assert (entry["id"], entry["package"], entry["service"], entry["managers"]) == (family, package, service, managers)
    data = vmagent.load_data()
    assert entry["query"] in data["query"]
    for manager in entry["managers"]:
        assert {"repo", "file"} <= set(data["manager"][manager])


def test_oracle_needs_the_addons_repository() -> None:
    assert "addons" in vmagent.linux_family(app_for("ol-8.10"))["repo_hint"]


def test_unknown_distribution_has_no_family() -> None:
    assert vmagent.linux_family(app_for("fedora-42")) is None
    assert vmagent.linux_family(app_for("alpine-3.23")) is None


def test_package_file_patterns() -> None:
    patterns = {e["id"]: e["package_files"] for e in vmagent.load_data()["linux"]["family"]}
    assert patterns["ubuntu"] == ["walinuxagent_*.deb"]
    assert patterns["debian"] == ["waagent_*.deb"]
    assert patterns["rhel"] == patterns["oracle"] == ["WALinuxAgent-*.rpm"]
    assert patterns["sles"] == ["python-azure-agent-*.rpm"]


def test_newest_package_file_by_version_not_name() -> None:
    files = [
        "/b/WALinuxAgent-2.10.0.8-1.el8.noarch.rpm",
        "/b/WALinuxAgent-2.9.1.1-1.el8.noarch.rpm",
        "/b/WALinuxAgent-2.2.49-1.el8.noarch.rpm",
    ]
    assert vmagent._newest(files) == files[0]
    msis = ["WindowsAzureVmAgent.amd64_2.7.41491.1172_2409121442.fre.msi", MSI]
    assert vmagent._newest(msis) == msis[0]
    assert vmagent._newest([]) is None


def test_argv_templates_fill_only_whole_placeholders() -> None:
    data = vmagent.load_data()
    assert vmagent._fill(data["query"]["dpkg"]["argv"], "/x/dpkg-query", package="waagent") == [
        "/x/dpkg-query",
        "-W",
        "-f=${Status}\t${Version}\n",
        "waagent",
    ]
    assert vmagent._fill(data["manager"]["zypper"]["file"], "/x/zypper", file="/b/p.rpm") == [
        "/x/zypper",
        "--non-interactive",
        "install",
        "/b/p.rpm",
    ]


# --- tools and processes -----------------------------------------------------------------------------------


def test_the_hosts_own_package_manager_is_never_run_in_a_sandbox(tmp_path: Path) -> None:
    app = app_for("ubuntu-22.04")
    assert app.paths.sandboxed
    tool, why = vmagent.resolve_tool("sh", app, {"PATH": "/usr/bin:/bin"})
    assert tool is None and "belongs to this host" in (why or "")
    tool, why = vmagent.resolve_tool("apt-get", app, {"PATH": f"{FAKES}:/usr/bin:/bin"})
    assert tool == str(FAKES / "apt-get") and why is None
    tool, why = vmagent.resolve_tool("no-such-tool-xyz", app, {"PATH": str(tmp_path)})
    assert tool is None and "not on PATH" in (why or "")


def test_outside_a_sandbox_the_hosts_tools_are_used() -> None:
    app = App(root_arg="/", bundle_dir_args=(), out=Output())
    tool, _ = vmagent.resolve_tool("sh", app, {"PATH": "/usr/bin:/bin"})
    assert tool is not None and os.path.isabs(tool)


def test_agent_process_is_found_only_inside_its_sandbox(tmp_path: Path) -> None:
    app = app_for("ubuntu-22.04")
    ours = subprocess.Popen([sys.executable, str(FAKES / "waagent"), "-daemon", str(app.paths.root)])
    other = subprocess.Popen([sys.executable, str(FAKES / "waagent"), "-daemon", str(tmp_path)])
    try:
        pids = vmagent.agent_processes(app, ["waagent", "walinuxagent"])
        assert ours.pid in pids and other.pid not in pids
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


# --- Linux steps (recording runner) ------------------------------------------------------------------------


@pytest.fixture
def fake_path(monkeypatch) -> None:
    monkeypatch.setenv("PATH", f"{FAKES}:{os.environ.get('PATH', '')}")


def _steps(tree: str, runner: RecordingRunner, bundles: Path | None = None, strict: bool = True):
    app = app_for(tree, bundles)
    return vmagent.vm_agent_steps(app, LinuxStub(runner), bundles, strict=strict)


def test_ubuntu_from_the_repositories(fake_path) -> None:
    runner = RecordingRunner({"dpkg-query": [Scripted(returncode=1), Scripted(stdout="install ok installed\t2.9\n")]})
    (step,) = _steps("ubuntu-22.04", runner)
    assert step.argv == [str(FAKES / "apt-get"), "install", "-y", "walinuxagent"]
    assert step.run() == {"vm_agent": {"package": "walinuxagent", "version": "2.9", "from": "repository"}}
    assert runner.calls[-2] == step.argv
    assert runner.envs[-2] == {"DEBIAN_FRONTEND": "noninteractive"}
    assert runner.calls[0] == [str(FAKES / "dpkg-query"), "-W", "-f=${Status}\t${Version}\n", "walinuxagent"]


def test_rhel_air_gapped_from_the_newest_package_file(fake_path, tmp_path: Path) -> None:
    for name in ("WALinuxAgent-2.2.49-1.el8.noarch.rpm", "WALinuxAgent-2.9.1.1-1.el8.noarch.rpm", "README"):
        (tmp_path / name).write_text("x")
    runner = RecordingRunner({"rpm": [Scripted(returncode=1), Scripted(stdout="2.9.1.1-1.el8\n")]})
    (step,) = _steps("rhel-8.10", runner, tmp_path)
    assert step.argv == [str(FAKES / "dnf"), "install", "-y", str(tmp_path / "WALinuxAgent-2.9.1.1-1.el8.noarch.rpm")]
    assert step.run()["vm_agent"]["from"].endswith("WALinuxAgent-2.9.1.1-1.el8.noarch.rpm")
    assert runner.calls[0] == [str(FAKES / "rpm"), "-q", "--qf", "%{VERSION}-%{RELEASE}\n", "WALinuxAgent"]


def test_sles_uses_zypper(fake_path) -> None:
    (step,) = _steps("sles-15-sp6", RecordingRunner({"rpm": Scripted(returncode=1)}), strict=False)
    assert step.argv == [str(FAKES / "zypper"), "--non-interactive", "install", "python-azure-agent"]


def test_already_installed_needs_no_step(fake_path) -> None:
    runner = RecordingRunner({"dpkg-query": Scripted(stdout="install ok installed\t2.2.45-1\n")})
    assert _steps("debian-12.11", runner) == []


def test_removed_but_configured_package_counts_as_missing(fake_path) -> None:
    runner = RecordingRunner({"dpkg-query": Scripted(stdout="deinstall ok config-files\t2.2.45-1\n")})
    (step,) = _steps("debian-12.11", runner)
    assert step.argv[-1] == "waagent"


@pytest.mark.parametrize("strict", [True, False])
def test_package_manager_failure(fake_path, strict: bool) -> None:
    runner = RecordingRunner(
        {"dpkg-query": Scripted(returncode=1), "apt-get": Scripted(returncode=100, stderr="E: Unable to locate")}
    )
    (step,) = _steps("ubuntu-22.04", runner, strict=strict)
    if strict:
        with pytest.raises(AsrctlError) as err:
            step.run()
        assert err.value.code == "ASRCTL-E065" and err.value.exit_code == 7
        assert "apt-get update" in err.value.message and "Unable to locate" in err.value.message
    else:
        assert "apt-get exited 100" in step.run()["warning"]


def test_installed_according_to_the_manager_but_not_really(fake_path) -> None:
    runner = RecordingRunner({"rpm": Scripted(returncode=1)})
    (step,) = _steps("ol-8.10", runner)
    with pytest.raises(AsrctlError) as err:
        step.run()
    assert "exited 0 but WALinuxAgent is not installed" in err.value.message


def test_unknown_distribution(fake_path) -> None:
    with pytest.raises(AsrctlError) as err:
        _steps("fedora-42", RecordingRunner())
    assert err.value.code == "ASRCTL-E024"
    (advice,) = _steps("fedora-42", RecordingRunner(), strict=False)
    assert advice.argv is None and "WALinuxAgent" in advice.run()["warning"]


def test_no_usable_package_manager(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AsrctlError) as err:
        _steps("ubuntu-22.04", RecordingRunner())
    assert err.value.code == "ASRCTL-E065" and "apt-get is not on PATH" in err.value.message
    (advice,) = _steps("ubuntu-22.04", RecordingRunner(), strict=False)
    assert "cannot install walinuxagent" in advice.run()["warning"]


def test_linux_status(fake_path) -> None:
    runner = RecordingRunner({"dpkg-query": Scripted(stdout="install ok installed\t2.9.1.1\n")})
    st = vmagent.status(app_for("ubuntu-22.04"), LinuxStub(runner))
    assert (st.installed, st.version, st.package, st.service, st.running) == (
        True,
        "2.9.1.1",
        "walinuxagent",
        "walinuxagent",
        False,
    )
    assert "not running" in st.notes[0]
    assert set(st.as_json()) == {"os_family", "installed", "version", "package", "service", "running", "pids"} | {
        "source",
        "notes",
    }


def test_linux_status_when_packages_cannot_be_queried(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    st = vmagent.status(app_for("rhel-9.6"), LinuxStub(RecordingRunner()))
    assert st.installed is None and "cannot tell" in st.notes[0]


# --- Windows -----------------------------------------------------------------------------------------------


def _windows_app(tmp_path: Path) -> App:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return App(root_arg=str(root), bundle_dir_args=(str(tmp_path),), out=Output())


def _bundle(tmp_path: Path, version: str) -> Bundle:
    name = f"Microsoft-ASR_UA_{version}_Windows_GA_02May2016_release.exe"
    (tmp_path / name).write_bytes(b"MZ")
    return Bundle(tmp_path / name, parse(name))


def test_windows_bundled_from_9_7(tmp_path: Path) -> None:
    w = world()
    app = _windows_app(tmp_path)
    (tmp_path / MSI).write_bytes(b"x")
    assert vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.7.0.0"), strict=True) == []
    assert vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.66.7567.1")) == []
    assert w.runner.calls == []


def test_windows_old_bundle_installs_the_msi_from_the_bundle_dir(tmp_path: Path) -> None:
    w = world()
    app = _windows_app(tmp_path)
    (tmp_path / MSI).write_bytes(b"x")
    (step,) = vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.6.0.0"), strict=True)
    msi = str(tmp_path / MSI)
    log = "C:\\ProgramData\\ASRSetupLogs\\asrctl-WindowsAzureVmAgent.log"
    assert step.argv == ["C:\\Windows\\System32\\MsiExec.exe", "/i", msi, "/quiet", "/norestart", "/L*V", log]
    assert subprocess.list2cmdline(step.argv).endswith(f"/quiet /norestart /L*V {log}")
    w.runner.script["MsiExec.exe"] = Scripted(returncode=3010)
    result = step.run()
    assert result["reboot_required"] is True and result["vm_agent"]["vendor_exit_code"] == 3010
    assert w.runner.programs() == ["powershell.exe", "msiexec.exe"]
    assert w.runner.envs[0] == {"ASRCTL_SIGNED_FILE": msi}


@pytest.mark.parametrize("strict", [True, False])
def test_windows_unsigned_msi_is_not_run(tmp_path: Path, strict: bool) -> None:
    w = world()
    (tmp_path / MSI).write_bytes(b"x")
    w.runner.signatures[str(tmp_path / MSI)] = Scripted(stdout=signature_json("NotSigned", None))
    (step,) = vmagent.vm_agent_steps(_windows_app(tmp_path), w.backend, _bundle(tmp_path, "9.6.0.0"), strict=strict)
    if strict:
        with pytest.raises(AsrctlError) as err:
            step.run()
        assert err.value.code == "ASRCTL-E034"
    else:
        assert "NotSigned" in step.run()["warning"]
    assert "msiexec.exe" not in w.runner.programs()


def test_windows_without_msi_says_where_to_get_it(tmp_path: Path) -> None:
    w = world()
    app = _windows_app(tmp_path)
    with pytest.raises(AsrctlError) as err:
        vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.6.0.0"), strict=True)
    assert err.value.code == "ASRCTL-E024" and err.value.exit_code == 4
    assert "go.microsoft.com/fwlink/?LinkID=394789" in err.value.message
    (advice,) = vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.6.0.0"))
    assert "WindowsAzureVmAgent*.msi" in advice.run()["warning"]


def test_windows_status_from_registry_and_services(tmp_path: Path) -> None:
    w = world()
    app = _windows_app(tmp_path)
    st = vmagent.status(app, w.backend)
    assert st.installed is False and st.source is None
    install_agent(w, version="9.66.7567.1")
    assert "should have installed it" in vmagent.status(app, w.backend).notes[0]
    key = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{5CF4A8C1-0000-4C4D-A0E0-6F7E9C1B1E0A}"
    w.registry.set(key, {"DisplayName": "Windows Azure VM Agent - 2.6.1198.700", "DisplayVersion": "2.6.1198.700"})
    from fakes.windows import ServiceInfo

    w.services.append(ServiceInfo("WindowsAzureGuestAgent", "running", 900))
    st = vmagent.status(app, w.backend)
    assert (st.installed, st.version, st.running, st.pids) == (True, "2.6.1198.700", True, (900,))
    assert "older than 2.6.1198.718" in st.notes[0]
    assert st.source and "bundled" in st.source
    assert vmagent.vm_agent_steps(app, w.backend, _bundle(tmp_path, "9.6.0.0")) == []


def test_windows_uses_the_installed_mobility_version_without_a_bundle(tmp_path: Path) -> None:
    w = world()
    install_agent(w, version="9.60.7000.1")
    app = App(root_arg=str(tmp_path), bundle_dir_args=(str(tmp_path),), out=Output())
    assert vmagent.vm_agent_steps(app, w.backend, None, strict=True) == []
