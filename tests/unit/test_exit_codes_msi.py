"""``--exit-codes msi`` end to end through ``asrctl.cli.run``: every outcome of the CLI contract (CLI.md) maps
to the Windows Installer code SCCM and Intune expect: 0 success, 3010 success with reboot required, 1618 locked,
1638 a newer version is installed, 1633 unsupported platform, 1639 bad arguments, 1603 anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.cli import ensure_vm_agent_command
from fakes.runner import Scripted
from fakes.windows import install_agent, simulated_windows_host, world

from asrctl.cli import run
from asrctl.errors import CATALOGUE, AsrctlError
from asrctl.lifecycle import status as status_verb

# The contract's table, written out (not derived from errors.msi_exit).
EXPECTED_MSI = {
    "ASRCTL-E001": 1603,
    "ASRCTL-E002": 1639,
    "ASRCTL-E003": 1603,
    "ASRCTL-E004": 1639,
    "ASRCTL-E010": 1633,
    "ASRCTL-E011": 1633,
    "ASRCTL-E012": 1639,
    "ASRCTL-E021": 1639,
    "ASRCTL-E035": 1639,
    "ASRCTL-E042": 1618,
    "ASRCTL-E043": 1603,
    "ASRCTL-E045": 1638,
    "ASRCTL-E054": 1618,
    "ASRCTL-E060": 1603,
    "ASRCTL-E085": 1639,
}


def _expected(code: str) -> int:
    if code in EXPECTED_MSI:
        return EXPECTED_MSI[code]
    return 1639 if CATALOGUE[code].exit == 2 else 1603


@pytest.fixture
def ubuntu(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n")
    (root / "etc/os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n')
    return root


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_catalogue_error_through_run(code: str, ubuntu: Path, monkeypatch, capsys) -> None:
    def fail(app):
        raise AsrctlError(code, f"simulated {code}")

    monkeypatch.setattr(status_verb, "status", fail)
    assert run(["--exit-codes", "msi", "--root", str(ubuntu), "status"]) == _expected(code)
    assert run(["--exit-codes", "asrctl", "--root", str(ubuntu), "status"]) == CATALOGUE[code].exit
    assert run(["--root", str(ubuntu), "status"]) == CATALOGUE[code].exit
    capsys.readouterr()
    assert run(["--exit-codes", "msi", "--json", "--root", str(ubuntu), "status"]) == _expected(code)
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["error"]["code"] == code


def test_success_is_0(ubuntu: Path) -> None:
    assert run(["--exit-codes", "msi", "--root", str(ubuntu), "detect"]) == 0
    assert run(["--exit-codes", "msi", "--version"]) == 0
    assert run(["--exit-codes", "msi", "--help"]) == 0


def test_unsupported_platform_is_1633_through_a_reported_result(tmp_path: Path, capsys) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=42\n')
    assert run(["--exit-codes", "msi", "--json", "--root", str(tmp_path), "detect"]) == 1633
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["code"] == "ASRCTL-E010" and doc["data"]["platform"]["os_family"] == "linux"


@pytest.mark.parametrize(
    "argv",
    [
        ["--exit-codes", "msi", "--no-such-global-option"],
        ["--exit-codes=msi", "no-such-command"],
        ["--exit-codes", "msi", "install", "--no-such-option"],
        ["--exit-codes", "msi", "--root", "/nonexistent/asrctl-test", "detect"],
        ["--exit-codes", "msi", "install", "--role", "Agent"],
    ],
)
def test_bad_arguments_are_1639(argv: list[str]) -> None:
    assert run(argv) == 1639
    plain = [a for a in argv if a not in ("--exit-codes", "msi", "--exit-codes=msi")]
    assert run(plain) == 2


def test_environment_variable_selects_msi(monkeypatch) -> None:
    monkeypatch.setenv("ASRCTL_EXIT_CODES", "msi")
    assert run(["--no-such-global-option"]) == 1639
    assert run(["--exit-codes", "asrctl", "--no-such-global-option"]) == 2


def test_internal_error_and_interrupt_are_1603(ubuntu: Path, monkeypatch) -> None:
    def bug(app):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(status_verb, "status", bug)
    assert run(["--exit-codes", "msi", "--root", str(ubuntu), "status"]) == 1603
    assert run(["--root", str(ubuntu), "status"]) == 1

    def interrupted(app):
        raise KeyboardInterrupt

    monkeypatch.setattr(status_verb, "status", interrupted)
    assert run(["--exit-codes", "msi", "--root", str(ubuntu), "status"]) == 1603
    assert run(["--root", str(ubuntu), "status"]) == 130

    def terminated(app):
        from asrctl.system.signals import Terminated

        raise Terminated

    monkeypatch.setattr(status_verb, "status", terminated)
    assert run(["--exit-codes", "msi", "--root", str(ubuntu), "status"]) == 1603
    assert run(["--root", str(ubuntu), "status"]) == 143


# --- real verbs on a simulated Windows host ----------------------------------------------------------------

VM_AGENT_MSI = "WindowsAzureVmAgent.2.7.41491.1010_2107131233.fre.msi"


@pytest.fixture
def windows_vm_agent(tmp_path: Path, monkeypatch):
    """A Windows host with an old Mobility Service (no bundled VM agent) and the VM agent MSI in the bundle dir."""
    ensure_vm_agent_command()
    w = world()
    install_agent(w, version="9.6.4900.1")
    simulated_windows_host(monkeypatch, w)
    root, bundles = tmp_path / "root", tmp_path / "bundles"
    root.mkdir()
    bundles.mkdir()
    (bundles / VM_AGENT_MSI).write_bytes(b"\xd0\xcf\x11\xe0")
    return w, ["--root", str(root), "--bundle-dir", str(bundles)]


@pytest.mark.parametrize(("msiexec_rc", "asrctl_rc", "msi_rc"), [(0, 0, 0), (3010, 0, 3010), (1641, 0, 3010)])
def test_success_with_reboot_is_3010(windows_vm_agent, msiexec_rc: int, asrctl_rc: int, msi_rc: int, capsys) -> None:
    w, base = windows_vm_agent
    w.runner.script["MsiExec.exe"] = Scripted(returncode=msiexec_rc)
    assert run(["--exit-codes", "msi", "--json", *base, "vm-agent", "install", "-Y"]) == msi_rc
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["changed"] and doc["reboot_required"] is (msiexec_rc != 0)
    assert run([*base, "vm-agent", "install", "-Y"]) == asrctl_rc


def test_another_installation_in_progress_is_1618(windows_vm_agent) -> None:
    w, base = windows_vm_agent
    w.runner.script["MsiExec.exe"] = Scripted(returncode=1618)
    assert run(["--exit-codes", "msi", *base, "vm-agent", "install", "-Y"]) == 1618
    assert run([*base, "vm-agent", "install", "-Y"]) == 6


def test_lock_held_is_1618(windows_vm_agent) -> None:
    from asrctl.system.lock import HostLock

    _w, base = windows_vm_agent
    state = Path(base[1]) / "var/lib/asrctl"
    with HostLock(state, "another run"):
        assert run(["--exit-codes", "msi", *base, "vm-agent", "install", "-Y"]) == 1618
        assert run([*base, "vm-agent", "install", "-Y"]) == 6


def test_vendor_failure_is_1603(windows_vm_agent) -> None:
    w, base = windows_vm_agent
    w.runner.script["MsiExec.exe"] = Scripted(returncode=1603)
    assert run(["--exit-codes", "msi", *base, "vm-agent", "install", "-Y"]) == 1603
    assert run([*base, "vm-agent", "install", "-Y"]) == 7


def test_confirmation_needed_without_a_terminal_is_1639(windows_vm_agent) -> None:
    _w, base = windows_vm_agent
    assert run(["--exit-codes", "msi", *base, "vm-agent", "install"]) == 1639
