"""The simulated kernel tools and the agent's driver tools (scripts/asrsim/kerneltools), run directly: they keep
the kernel's side under the sandbox root, behave like the real tools where asrctl depends on it, and never run
without a sandbox root."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from asrsim.drivers import KERNELTOOLS_BIN, PAYLOAD_VX, driver_bytes, load_driver, prepare_kernel

K = "6.4.0-150700.53.22-default"


def tool(root: Path | None, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    agent = {"inm_dmit": PAYLOAD_VX / "bin/inm_dmit", "initrd-install.sh": PAYLOAD_VX / "scripts/initrd/install.sh"}
    path = agent.get(name, KERNELTOOLS_BIN / name)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    full.update(ASRCTL_KERNEL=K, **env)
    if root is not None:
        full["ASRCTL_ROOT"] = str(root)
    return subprocess.run([str(path), *args], env=full, capture_output=True, text=True, timeout=60)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    prepare_kernel(tmp_path, K)
    return tmp_path


def _install(root: Path, data: bytes) -> None:
    (root / f"lib/modules/{K}/kernel/drivers/char/involflt.ko").write_bytes(data)
    assert tool(root, "depmod", "-a", K).returncode == 0


@pytest.mark.parametrize(
    ("name", "where"),
    [("modprobe", None), ("modprobe", "/"), ("mknod", None), ("inm_dmit", None), ("initrd-install.sh", "/")],
)
def test_no_tool_runs_without_a_sandbox_root(name: str, where: str | None) -> None:
    done = tool(None, name, "involflt") if where is None else tool(Path(where), name, "involflt")
    assert done.returncode == 97 and "ASRCTL_ROOT" in done.stderr


def test_depmod_indexes_and_modprobe_loads_by_the_index(root: Path) -> None:
    (root / f"lib/modules/{K}/kernel/drivers/char/involflt.ko").write_bytes(driver_bytes(K, "9.66.7643.1"))
    done = tool(root, "modprobe", "-v", "--allow-unsupported-modules", "involflt")
    assert done.returncode == 1 and "not found in directory" in done.stderr  # no depmod yet
    assert tool(root, "depmod", "-a", K).returncode == 0
    assert (root / f"lib/modules/{K}/modules.dep").read_text() == "kernel/drivers/char/involflt.ko:\n"
    done = tool(root, "modprobe", "-v", "--allow-unsupported-modules", "involflt")
    assert done.returncode == 0 and "insmod" in done.stdout
    assert (root / "proc/modules").read_text().startswith("involflt ")
    assert "240 involflt" in (root / "proc/devices").read_text().split("Block devices:")[0].splitlines()
    assert not (root / "dev/involflt").exists()  # the real driver makes no node either
    assert "involflt" in tool(root, "lsmod").stdout


@pytest.mark.parametrize(
    ("data", "env", "sles", "why"),
    [
        (driver_bytes("6.4.0-150700.53.6-default", "9.66.7643.1"), {}, False, "Exec format error"),
        (driver_bytes(K, "9.66.7643.1", signed=False), {"sb": "1"}, False, "Key was rejected by service"),
        (driver_bytes(K, "9.66.7643.1"), {}, True, "is unsupported"),
        (driver_bytes(K, "9.66.7643.1"), {"ASR_SIM_MODPROBE": "fail"}, False, "Unknown symbol"),
    ],
    ids=["other-kernel", "unsigned-under-secure-boot", "sles-without-allow-unsupported", "knob"],
)
def test_modprobe_refuses_like_the_real_one(root: Path, data: bytes, env: dict, sles: bool, why: str) -> None:
    _install(root, data)
    if env.pop("sb", None):
        var = root / "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
        var.parent.mkdir(parents=True)
        var.write_bytes(b"\x06\x00\x00\x00\x01")
    if sles:
        (root / "etc").mkdir(exist_ok=True)
        (root / "etc/os-release").write_text('NAME="SLES"\nID="sles"\nVERSION="15-SP7"\n')
    done = tool(root, "modprobe", "-v", "involflt", **env)
    assert done.returncode == 1 and why in done.stderr
    assert not (root / "proc/modules").exists() or "involflt" not in (root / "proc/modules").read_text()


def test_a_signed_driver_loads_under_secure_boot(root: Path) -> None:
    _install(root, driver_bytes(K, "9.66.7643.1", signed=True))
    var = root / "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
    var.parent.mkdir(parents=True)
    var.write_bytes(b"\x06\x00\x00\x00\x01")
    assert tool(root, "modprobe", "involflt").returncode == 0


def test_lie_knob_exits_0_without_loading(root: Path) -> None:
    _install(root, driver_bytes(K, "9.66.7643.1"))
    assert tool(root, "modprobe", "involflt", ASR_SIM_MODPROBE="lie").returncode == 0
    assert not (root / "proc/modules").exists()


def test_rmmod_refuses_while_disks_are_filtered_until_stop_flt_all(root: Path, tmp_path: Path) -> None:
    load_driver(root, K, "9.66.7722.1", protected=2)
    done = tool(root, "rmmod", "involflt")
    assert done.returncode == 1 and "in use" in done.stderr
    out = tool(root, "inm_dmit", "--op=get_driver_version")
    assert out.returncode == 0 and "Product Version = (9, 66, 1, 7722)" in out.stdout
    assert tool(root, "inm_dmit", "--op=stop_flt_all").returncode == 0
    assert (root / "var/lib/asrsim/involflt.resync").exists()
    assert tool(root, "rmmod", "involflt").returncode == 0
    assert "involflt" not in (root / "proc/modules").read_text()
    assert "involflt" not in (root / "proc/devices").read_text()
    done = tool(root, "rmmod", "involflt")
    assert done.returncode == 1 and "not currently loaded" in done.stderr


def test_inm_dmit_needs_the_driver_and_the_device(root: Path) -> None:
    done = tool(root, "inm_dmit", "--op=get_driver_version")
    assert done.returncode == 2 and "/dev/involflt" in done.stderr
    load_driver(root, K, "9.66.7643.1")
    (root / "dev/involflt").unlink()
    assert tool(root, "inm_dmit", "--op=get_driver_version").returncode == 2


def test_mknod_makes_a_marker_under_the_root_only(root: Path) -> None:
    assert tool(root, "mknod", str(root / "dev/involflt"), "c", "240", "0").returncode == 0
    assert (root / "dev/involflt").read_text() == "c 240 0\n"
    done = tool(root, "mknod", str(root / "dev/involflt"), "c", "240", "0")
    assert done.returncode == 1 and "File exists" in done.stderr
    done = tool(root, "mknod", "/../../../tmp/asrsim-escape", "c", "1", "0")
    assert done.returncode == 1 and "outside the sandbox root" in done.stderr
    outside = root.parent / f"{root.name}-outside"
    assert tool(root, "mknod", str(outside), "c", "1", "0").returncode == 0  # a target path: mapped under the root
    assert not outside.exists() and (root / str(outside).lstrip("/")).exists()


def test_initrd_regenerate_holds_the_driver_of_that_kernel(root: Path) -> None:
    _install(root, driver_bytes(K, "9.66.7643.1"))
    assert tool(root, "initrd-install.sh", "regenerate", K).returncode == 0
    assert f"kernel={K}" in (root / f"boot/initrd.img-{K}").read_text()
    assert tool(root, "initrd-install.sh", "regenerate", K, ASR_SIM_INITRD="fail").returncode == 1
    assert tool(root, "initrd-install.sh", "regenerate", "9.9.9-missing").returncode == 1
