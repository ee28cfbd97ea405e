"""``drivers install --dry-run`` on each family's host: the file Microsoft's rules pick reaches the plan and the JSON
(the rules themselves are table-tested in tests/unit/test_choice.py). The agent is only its version file here:
a dry run reads the host, plans and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from asrsim.drivers import KERNELTOOLS_BIN, build_package, prepare_kernel

from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]
SB_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
RHEL8 = ["4.18.0-80.el8.x86_64", "4.18.0-147.el8.x86_64", "4.18.0-425.10.1.el8_7.x86_64", "5.4.17-2136.el8uek.x86_64"]
RHEL9 = ["5.14.0-362.8.1.el9_3.x86_64", "5.14.0-362.18.1.el9_3.x86_64", "5.14.0-427.13.1.el9_4.x86_64"]
SLES = ["6.4.0-150700.53.22-default"]


@pytest.mark.parametrize(
    ("distro", "key", "files", "kernel", "secure_boot", "expected"),
    [
        (
            "debian-12.11",
            "DEBIAN12",
            ["6.1.0-41-cloud-amd64", "6.1.0-41-amd64"],
            "6.1.0-41-cloud-amd64",
            None,
            "involflt.ko.6.1.0-41-cloud-amd64",
        ),
        (
            "rhel-8.10",
            "RHEL8",
            RHEL8,
            "4.18.0-553.22.1.el8_10.x86_64",
            None,
            "involflt.ko.4.18.0-425.10.1.el8_7.x86_64",
        ),
        ("rhel-8.10", "RHEL8", RHEL8, "4.18.0-193.28.1.el8_2.x86_64", None, "involflt.ko.4.18.0-147.el8.x86_64"),
        ("ol-8.10", "RHEL8", RHEL8, "5.4.17-2136.300.7.el8uek.x86_64", None, "involflt.ko.5.4.17-2136.el8uek.x86_64"),
        ("rhel-9.6", "RHEL9", RHEL9, "5.14.0-362.24.1.el9_3.x86_64", None, "involflt.ko.5.14.0-362.18.1.el9_3.x86_64"),
        ("sles-15-sp6", "SLES15", SLES, SLES[0], True, f"Signed/involflt.ko.{SLES[0]}"),
        ("sles-15-sp6", "SLES15", SLES, SLES[0], False, f"UnSigned/involflt.ko.{SLES[0]}"),
        ("sles-15-sp6", "SLES15", SLES, SLES[0], None, f"UnSigned/involflt.ko.{SLES[0]}"),
    ],
)
def test_each_family_gets_the_file_microsofts_rules_pick(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    distro: str,
    key: str,
    files: list[str],
    kernel: str,
    secure_boot: bool | None,
    expected: str,
) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO / "tests/fixtures/distros" / distro, root, symlinks=True)
    vx = root / "usr/local/ASR/Vx"
    (vx / "bin").mkdir(parents=True)
    (root / "usr/local/.vx_version").write_text(f"VERSION=9.66.7567.1\nINSTALLATION_DIR={vx}\n")
    prepare_kernel(root, kernel)
    if secure_boot is not None:
        (root / SB_VAR).parent.mkdir(parents=True)
        (root / SB_VAR).write_bytes(b"\x06\x00\x00\x00" + (b"\x01" if secure_boot else b"\x00"))
    monkeypatch.setenv("ASRCTL_KERNEL", kernel)
    monkeypatch.setenv("PATH", f"{KERNELTOOLS_BIN}{os.pathsep}{os.environ['PATH']}")
    pkg = build_package(tmp_path, key, files, version="9.66.7643.1")
    before = sorted(str(p) for p in root.rglob("*"))
    capsys.readouterr()
    code = run(["--json", "--root", str(root), "drivers", "install", str(pkg), "--dry-run"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["data"]["kernels"][0]["file"] == expected
    assert doc["data"]["kernels"][0]["action"] == "load now"
    steps = [s["id"] for s in doc["data"]["plan"]["steps"]]
    assert steps == [
        "stop-agent",
        f"copy-{kernel}",
        f"depmod-{kernel}",
        "load",
        "device",
        f"initrd-{kernel}",
        "start-agent",
        "verify",
    ]
    load = next(s for s in doc["data"]["plan"]["steps"] if s["id"] == "load")
    assert ("--allow-unsupported-modules" in load["argv"]) is distro.startswith("sles")
    assert sorted(str(p) for p in root.rglob("*")) == before
