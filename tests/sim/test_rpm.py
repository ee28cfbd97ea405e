"""The RPM families: an RPM-shaped payload installed, upgraded and removed through the simulated rpm."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from asrsim.bundle import build_bundle
from asrsim.host import PKGTOOLS_BIN, tool_path

from .conftest import RHEL8_KERNEL, V1, V2, Sandbox

RHEL8 = "RHEL8-64"


@pytest.fixture(scope="module")
def rhel8_bundles(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("rhel8")
    return {"v1": build_bundle(V1, RHEL8, out), "v2": build_bundle(V2, RHEL8, out, date="30Apr2026")}


@pytest.fixture
def rhel(tmp_path, python_dir):
    box = Sandbox(tmp_path / "rhel", python_dir, rhel8=True)
    box.expect_running = False
    yield box
    running = box.daemon_pids()
    leftovers = box.cleanup()
    if leftovers and not (box.expect_running and set(leftovers) <= set(running["svagents"] + running["appservice"])):
        pytest.fail(f"test left processes behind: {leftovers}")


def rpm(box, *args: str) -> subprocess.CompletedProcess:
    return box.run([PKGTOOLS_BIN / "rpm", *args])


def test_install_upgrade_uninstall_through_the_package(rhel, rhel8_bundles):
    box = rhel
    assert box.env()["ASRCTL_KERNEL"] == RHEL8_KERNEL
    proc = box.install(rhel8_bundles["v1"])
    assert proc.returncode == 0, proc.stdout
    box.expect_running = True
    assert rpm(box, "-q", "InMageVx").stdout.strip() == f"InMageVx-{V1}-1.x86_64"
    owned = rpm(box, "-ql", "InMageVx").stdout.split()
    assert str(box.vx / "bin/start") in owned and str(box.vx / "etc/drscout.conf") in owned
    assert str(box.vx / "etc/asrsim_identity.json") not in owned  # made at install, not the package's
    assert box.vx_version()["RPM_PACKAGE"] == "InMageVx"
    assert sorted(p.name for p in (box.root / "etc/init.d").iterdir()) == ["uarespawnd", "vxagent"]  # not systemctl
    assert (box.root / f"lib/modules/{RHEL8_KERNEL}/kernel/drivers/char/involflt.ko").exists()
    calls = [json.loads(line) for line in (box.root / "var/log/fakepkg.calls").read_text().splitlines()]
    assert calls[0] == [
        "rpm",
        "-ivh",
        "--prefix",
        str(box.vx),
        str(box.extract(rhel8_bundles["v1"]) / f"InMageVx-{V1}-1.x86_64.rpm"),
    ]

    conf = box.vx / "etc/drscout.conf"
    conf.write_text(conf.read_text().replace("Hostname = \n", "Hostname = 10.0.0.5\n"))
    up = box.upgrade(rhel8_bundles["v2"])
    assert up.returncode == 0, up.stdout
    assert rpm(box, "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "InMageVx").stdout.strip() == f"{V2}-1"
    assert box.drscout()["Hostname"] == "10.0.0.5"  # %config(noreplace)

    un = box.uninstall("-Y")
    assert un.returncode == 0, un.stdout
    box.expect_running = False
    gone = rpm(box, "-q", "InMageVx")
    assert gone.returncode == 1 and "not installed" in gone.stdout
    assert not box.vx.exists() and not box.vx_version_path.exists()
    assert not (box.root / "etc/init.d/vxagent").exists() and not (box.root / "etc/vxagent").exists()


def test_without_the_simulated_rpm_nothing_is_laid_out(rhel, rhel8_bundles):
    staged = rhel.extract(rhel8_bundles["v1"])
    env = rhel.env()
    env["PATH"] = tool_path(path=os.environ.get("PATH", "/usr/bin:/bin"))  # no pkgtools: the host's rpm, if any
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", rhel.install_dir]
    proc = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "rpm is not available" in rhel.install_log.read_text()
    assert not rhel.vx_version_path.exists() and not (rhel.install_dir / "Vx/bin").exists()


def test_the_simulated_rpm_stays_in_its_sandbox(rhel, rhel8_bundles, tmp_path):
    outside = subprocess.run(
        [sys.executable, str(PKGTOOLS_BIN / "rpm"), "-e", "InMageVx"],
        env={k: v for k, v in os.environ.items() if k != "ASRCTL_ROOT"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert outside.returncode == 97
    staged = rhel.extract(rhel8_bundles["v1"])
    escape = rpm(rhel, "-ivh", "--prefix", str(tmp_path / "elsewhere"), str(staged / f"InMageVx-{V1}-1.x86_64.rpm"))
    assert escape.returncode == 1 and "outside the sandbox root" in escape.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert rpm(rhel, "-e", "InMageVx").returncode == 1
