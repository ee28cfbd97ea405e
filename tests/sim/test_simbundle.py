"""The bundle builder and the shipped OS_details.sh."""

from __future__ import annotations

import ast
import calendar
import gzip
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from asrsim.bundle import PAYLOAD_DIR, build_bundle, build_tag, bundle_name

from .conftest import SCRIPTS, TAG, V1


def members(bundle: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(bundle) as tar:
        return tar.getmembers()


def test_name_layout_modes_and_mtimes(bundles):
    bundle = bundles["v1"]
    assert bundle.name == "Microsoft-ASR_UA_9.66.7567.1_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz"
    infos = members(bundle)
    names = {i.name for i in infos}
    assert {n.split("/")[0] for n in names} == {"install", "OS_details.sh", "uninstall.sh", "Vx"}
    for required in (
        "Vx/bin/start",
        "Vx/bin/stop",
        "Vx/bin/uninstall",
        "Vx/bin/svagents",
        "Vx/bin/appservice",
        "Vx/bin/UnifiedAgentConfigurator.sh",
        "Vx/bin/AzureRcmCli",
        "Vx/etc/build.vx_version",
        "Vx/scripts/vCon/OS_details.sh",
    ):
        assert required in names
    mtime = calendar.timegm((2025, 9, 20, 0, 0, 0))
    for info in infos:
        assert info.isfile() or info.isdir(), info.name
        assert not info.name.startswith(("/", "./")) and ".." not in info.name.split("/")
        assert info.mtime == mtime
        assert (info.uid, info.gid) == (0, 0)
    by_name = {i.name: i for i in infos}
    for script in ("install", "OS_details.sh", "uninstall.sh", "Vx/bin/start", "Vx/bin/svagents", "Vx/bin/AzureRcmCli"):
        assert by_name[script].mode & 0o111 == 0o111, script
    assert by_name["Vx/lib/asrsim_agent.py"].mode & 0o111 == 0


def test_build_is_deterministic(tmp_path):
    a = build_bundle(V1, TAG, tmp_path / "a")
    b = build_bundle(V1, TAG, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    with gzip.open(a) as fh:
        fh.read(1)
    assert a.read_bytes()[4:8] == calendar.timegm((2025, 9, 20, 0, 0, 0)).to_bytes(4, "little")


def test_build_time_version_keys(bundles):
    with tarfile.open(bundles["v2"]) as tar:
        text = tar.extractfile("Vx/etc/build.vx_version").read().decode()
    keys = dict(line.split("=", 1) for line in text.splitlines())
    assert keys["VERSION"] == "9.67.7789.1"
    assert keys["BUILD_TAG"] == "RELEASE_9.67.7789.1_GA_7789_Apr_30_2026_INMAGE"
    # Microsoft's scripts take the build with `grep -w BUILD_TAG | cut -d_ -f5` on the whole line.
    line = next(ln for ln in text.splitlines() if ln.startswith("BUILD_TAG="))
    assert line.split("_")[4] == "7789"
    assert keys["OS_BUILT_FOR"] == TAG
    assert keys["TAR_FILE_NAME"] == bundles["v2"].name
    assert build_tag("9.66.7567.1", "20Sep2025") == "RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE"


def test_name_version_changes_only_the_file_name(tmp_path):
    bundle = build_bundle("9.65.7417.1", "SLES15-64", tmp_path, date="23Apr2025", name_version="9.65.0.0")
    assert bundle.name == bundle_name("9.65.0.0", "SLES15-64", "23Apr2025")
    with tarfile.open(bundle) as tar:
        text = tar.extractfile("Vx/etc/build.vx_version").read().decode()
    assert "VERSION=9.65.7417.1\n" in text


def test_padding_is_incompressible(tmp_path):
    small = build_bundle(V1, TAG, tmp_path / "small")
    padded = build_bundle(V1, TAG, tmp_path / "padded", pad_mb=2)
    assert padded.stat().st_size - small.stat().st_size > 2 * 1024 * 1024 * 0.99
    with tarfile.open(padded) as tar:
        data = tar.extractfile("Vx/lib/padding.bin").read()
    assert len(data) == 2 * 1024 * 1024
    assert len(zlib.compress(data[:65536])) > 65000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"version": "9.66", "tag": TAG},
        {"version": V1, "tag": "Windows"},
        {"version": V1, "tag": "ubuntu-22.04-64"},
        {"version": V1, "tag": TAG, "date": "2025-09-20"},
        {"version": V1, "tag": TAG, "pad_mb": -1},
    ],
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        build_bundle(out_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_the_path(tmp_path):
    cmd = [sys.executable, SCRIPTS / "simbundle.py", "build", "--version", "9.64.7374.1", "--tag", "RHEL9-64"]
    cmd += ["--date", "11Mar2025", "--out", tmp_path]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == tmp_path / "Microsoft-ASR_UA_9.64.7374.1_RHEL9-64_GA_11Mar2025_release.tar.gz"
    assert path.is_file()
    bad = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "simbundle.py"),
            "build",
            "--version",
            "x",
            "--tag",
            TAG,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "bad version" in bad.stderr


def test_bundle_tools_use_only_the_standard_library():
    """Everything in the bundle runs as a child of asrctl on a bare host: stdlib only."""
    local = {"asrsim_agent", "unified_agent_configurator"}
    checked = 0
    for path in sorted(PAYLOAD_DIR.rglob("*")):
        if not path.is_file() or not path.read_bytes().startswith((b"#!/usr/bin/env python3", b'"""')):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        checked += 1
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in local or top == "__future__", (path, name)
    assert checked >= 9


# --------------------------------------------------------------------------- OS_details.sh
RHEL = "redhat-release"
CASES = [
    (
        {"lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n", "debian_version": "bookworm/sid\n"},
        "UBUNTU-22.04-64",
    ),
    ({"lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\n"}, "UBUNTU-14.04-64"),
    ({"lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\n"}, "UBUNTU-24.04-64"),
    ({"lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=23.10\n", "debian_version": "trixie/sid\n"}, ""),
    ({"debian_version": "12.5\n", "os-release": 'ID=debian\nVERSION_ID="12"\n'}, "DEBIAN12-64"),
    ({"debian_version": "7.11\n"}, "DEBIAN7-64"),
    ({"debian_version": "13.0\n"}, ""),
    ({RHEL: "Red Hat Enterprise Linux release 8.1 (Ootpa)\n"}, "RHEL8-64"),
    ({RHEL: "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"}, "RHEL7-64"),
    ({RHEL: "Red Hat Enterprise Linux Workstation release 6.10 (Santiago)\n"}, "RHEL6-64"),
    ({RHEL: "CentOS release 6.10 (Final)\n"}, "RHEL6-64"),
    ({RHEL: "CentOS Linux release 7.9.2009 (Core)\n"}, "RHEL7-64"),
    ({RHEL: "Red Hat Enterprise Linux Server release 5.11 (Tikanga)\n"}, "RHEL5-64"),
    ({RHEL: "CentOS release 5.1 (Final)\n"}, ""),
    ({RHEL: "Rocky Linux release 8.8 (Green Obsidian)\n"}, "RHEL8-64"),
    ({RHEL: "AlmaLinux release 9.4 (Seafoam Ocelot)\n"}, "RHEL9-64"),
    ({RHEL: "Red Hat Enterprise Linux release 9.8 (Plow)\n"}, "RHEL9-64"),
    ({RHEL: "Red Hat Enterprise Linux release 9.9 (Plow)\n"}, ""),
    ({RHEL: "Red Hat Enterprise Linux release 10.0 (Coughlan)\n"}, "RHEL10-64"),
    ({RHEL: "Fedora release 40 (Forty)\n"}, ""),
    (
        {"oracle-release": "Oracle Linux Server release 6.3\n", RHEL: "Red Hat Enterprise Linux Server release 6.3\n"},
        "",
    ),
    ({"oracle-release": "Oracle Linux Server release 6.10\n"}, "OL6-64"),
    (
        {"oracle-release": "Oracle Linux Server release 8.9\n", RHEL: "Red Hat Enterprise Linux release 8.9 (Ootpa)\n"},
        "OL8-64",
    ),
    ({"oracle-release": "Oracle Linux Server release 9.6\n"}, "OL9-64"),
    ({"oracle-release": "Oracle Linux Server release 9.7\n"}, ""),
    ({"oracle-release": "Oracle Linux Server release 10.0\n"}, "OL10-64"),
    ({"SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 3\n"}, "SLES11-SP3-64"),
    ({"SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"}, "SLES11-SP4-64"),
    ({"SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 2\n"}, ""),
    ({"SuSE-release": "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n"}, "SLES12-64"),
    ({"os-release": 'NAME="SLES"\nVERSION="15-SP5"\nVERSION_ID="15.5"\nID="sles"\n'}, "SLES15-64"),
    ({"os-release": 'NAME="openSUSE Leap"\nVERSION="15.5"\nID="opensuse-leap"\n'}, "SLES15-64"),
    ({"os-release": 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\n'}, ""),
    ({}, ""),
]


def os_details(tmp_path: Path, files: dict[str, str], arch: str = "x86_64") -> str:
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    env = {"PATH": "/usr/bin:/bin", "ASRCTL_ROOT": str(tmp_path / "root"), "ASR_SIM_ARCH": arch}
    proc = subprocess.run(
        ["/bin/sh", str(PAYLOAD_DIR / "OS_details.sh"), "print"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_os_details_table(tmp_path, files, expected):
    assert os_details(tmp_path, files) == expected


def test_os_details_needs_x86_64(tmp_path):
    assert os_details(tmp_path, {"lsb-release": "DISTRIB_RELEASE=22.04\n"}, arch="aarch64") == ""


def test_os_details_sourced_sets_os_and_prints_nothing(tmp_path):
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "lsb-release").write_text("DISTRIB_RELEASE=20.04\n")
    script = f'. "{PAYLOAD_DIR / "OS_details.sh"}"; echo "OS=$OS"'
    env = {"PATH": "/usr/bin:/bin", "ASRCTL_ROOT": str(tmp_path / "root"), "ASR_SIM_ARCH": "x86_64"}
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.stdout == "OS=UBUNTU-20.04-64\n"
