"""``asrctl vm-agent status|install`` on Linux, end to end in a sandbox root with a simulated package manager.

The CLI runs in-process (``asrctl.cli.run``) with the real runner: the package tools it starts are the stdlib
fakes in scripts/asrsim/pkgtools/bin (first on PATH), which record their argv under the root and "install" by writing a
marker there. The host's own package manager is never run: in a sandbox asrctl refuses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from fakes.cli import ensure_vm_agent_command

from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]
DISTROS = REPO / "tests/fixtures/distros"
FAKES = REPO / "scripts/asrsim/pkgtools/bin"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the Linux VM agent path")


@dataclass
class Box:
    root: Path
    bundles: Path
    capsys: pytest.CaptureFixture[str]

    def asrctl(self, *args: str) -> tuple[int, dict]:
        self.capsys.readouterr()
        rc = run(["--json", "--root", str(self.root), "--bundle-dir", str(self.bundles), *args])
        out = self.capsys.readouterr().out
        return rc, json.loads(out)

    def calls(self) -> list[list[str]]:
        log = self.root / "var/log/fakepkg.calls"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def installed(self, package: str) -> str | None:
        marker = self.root / "var/lib/fakepkg" / package
        return marker.read_text().strip() if marker.exists() else None

    def repo(self, **packages: str) -> None:
        (self.root / "etc/fakepkg").mkdir(parents=True, exist_ok=True)
        (self.root / "etc/fakepkg/repo").write_text("".join(f"{k}={v}\n" for k, v in packages.items()))


@pytest.fixture
def make_box(tmp_path: Path, monkeypatch, capsys) -> Iterator:
    ensure_vm_agent_command()
    shim = tmp_path / "python-shim"
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)  # what the fakes' #!/usr/bin/env python3 finds
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    started: list[subprocess.Popen] = []

    def make(distro: str) -> Box:
        root = tmp_path / distro
        shutil.copytree(DISTROS / distro, root, symlinks=True)
        bundles = tmp_path / f"{distro}-bundles"
        bundles.mkdir()
        return Box(root, bundles, capsys)

    make.started = started  # type: ignore[attr-defined]
    yield make
    for proc in started:
        proc.kill()
        proc.wait()
    left = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(tmp_path) in (a or "") for a in (p.info["cmdline"] or []))
    ]
    assert not left, f"processes left behind: {left}"


def test_ubuntu_status_install_and_process(make_box) -> None:
    box = make_box("ubuntu-22.04")
    box.repo(walinuxagent="2.9.1.1-0ubuntu0.22.04.1")

    rc, doc = box.asrctl("vm-agent", "status")
    assert rc == 0
    agent = doc["data"]["vm_agent"]
    assert (agent["installed"], agent["package"], agent["service"], agent["running"]) == (
        False,
        "walinuxagent",
        "walinuxagent",
        False,
    )

    rc, doc = box.asrctl("vm-agent", "install", "--dry-run")
    assert rc == 0 and doc["data"]["dry_run"] and not doc["changed"]
    (step,) = doc["data"]["plan"]["steps"]
    assert step["argv"] == [str(FAKES / "apt-get"), "install", "-y", "walinuxagent"]
    assert box.installed("walinuxagent") is None

    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 0, doc
    assert doc["ok"] and doc["changed"] and not doc["reboot_required"]
    assert doc["data"]["vm_agent"]["installed"] is True
    assert doc["data"]["vm_agent"]["version"] == "2.9.1.1-0ubuntu0.22.04.1"
    assert box.installed("walinuxagent") == "2.9.1.1-0ubuntu0.22.04.1"
    assert ["apt-get", "install", "-y", "walinuxagent"] in box.calls()
    assert all(call[0] in ("dpkg-query", "apt-get") for call in box.calls())
    assert json.loads((box.root / "var/lib/asrctl/journal.json").read_text())["status"] == "ok"

    # Running is a process: the daemon (here the stand-in) started from this root.
    daemon = subprocess.Popen([sys.executable, str(FAKES / "waagent"), "-daemon", "-root", str(box.root)])
    make_box.started.append(daemon)
    rc, doc = box.asrctl("vm-agent", "status")
    assert doc["data"]["vm_agent"]["running"] is True and daemon.pid in doc["data"]["vm_agent"]["pids"]

    before = len(box.calls())
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 0 and not doc["changed"]
    assert [c[0] for c in box.calls()[before:]] == ["dpkg-query"], "nothing installed twice"


def test_rhel_air_gapped_from_a_package_file(make_box) -> None:
    box = make_box("rhel-8.10")  # no repository has it
    for version in ("2.2.49-1.el8", "2.9.1.1-1.el8"):
        (box.bundles / f"WALinuxAgent-{version}.noarch.rpm").write_bytes(b"\xed\xab\xee\xdb")
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 0, doc
    assert box.installed("WALinuxAgent") == "2.9.1.1-1.el8"
    assert ["dnf", "install", "-y", str(box.bundles / "WALinuxAgent-2.9.1.1-1.el8.noarch.rpm")] in box.calls()
    assert doc["data"]["vm_agent"]["service"] == "waagent"


@pytest.mark.parametrize(
    ("distro", "package", "tool"),
    [
        ("sles-15-sp6", "python-azure-agent", "zypper"),
        ("debian-12.11", "waagent", "apt-get"),
        ("ol-8.10", "WALinuxAgent", "dnf"),
        ("centos-7.9", "WALinuxAgent", "dnf"),
    ],
)
def test_right_package_and_manager_per_distro(make_box, distro: str, package: str, tool: str) -> None:
    box = make_box(distro)
    box.repo(**{package: "2.9.1.1-1"})
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 0, doc
    installs = [c for c in box.calls() if "install" in c]
    assert len(installs) == 1 and installs[0][0] == tool and installs[0][-1] == package
    assert box.installed(package) == "2.9.1.1-1"


def test_package_manager_failure_is_exit_7(make_box, monkeypatch) -> None:
    box = make_box("ubuntu-22.04")
    rc, doc = box.asrctl("vm-agent", "install", "-Y")  # empty repository: "Unable to locate package"
    assert rc == 7
    assert doc["error"]["code"] == "ASRCTL-E065"
    assert "Unable to locate package walinuxagent" in doc["error"]["message"]
    assert "apt-get update" in doc["error"]["message"]

    box.repo(walinuxagent="2.9.1.1")
    monkeypatch.setenv("FAKEPKG_FAIL", "apt-get")
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 7 and "simulated failure" in doc["error"]["message"]
    assert box.installed("walinuxagent") is None


def test_the_hosts_package_manager_is_never_run(make_box, monkeypatch, tmp_path: Path) -> None:
    box = make_box("ubuntu-22.04")
    monkeypatch.setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    rc, doc = box.asrctl("vm-agent", "status")
    assert rc == 0 and doc["data"]["vm_agent"]["installed"] is None
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 7 and doc["error"]["code"] == "ASRCTL-E065"
    assert box.calls() == []


def test_unknown_distribution_is_refused(make_box) -> None:
    box = make_box("fedora-42")
    rc, doc = box.asrctl("vm-agent", "install", "-Y")
    assert rc == 4 and doc["error"]["code"] == "ASRCTL-E024"
    assert box.calls() == []
