"""The bundle builder and the shipped OS_details.sh."""

from __future__ import annotations

import ast
import calendar
import gzip
import io
import json
import platform
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest
from asrsim.bundle import (
    PAYLOAD_DIR,
    TOP_MEMBERS,
    build_bundle,
    build_tag,
    bundle_name,
    default_compression,
    is_rpm_tag,
    kernel_lines,
)
from asrsim.host import HOSTTOOLS_BIN, PKGTOOLS_BIN

from .conftest import SCRIPTS, TAG, V1


def members(bundle: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(bundle) as tar:
        return tar.getmembers()


def member(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle) as tar:
        fh = tar.extractfile(name)
        assert fh is not None
        return fh.read()


def keys(bundle: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in member(bundle, ".vx_version").decode().splitlines())


def test_name_flat_layout_modes_and_mtimes(bundles):
    """Microsoft's 21 members, in its order, flat: no leading directory, no subdirectory (index 12130928631)."""
    bundle = bundles["v1"]
    assert bundle.name == "Microsoft-ASR_UA_9.66.7567.1_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz"
    infos = members(bundle)
    assert [i.name for i in infos] == [f"InMage_VX_{V1}_{TAG}.tar", *TOP_MEMBERS]
    assert len(infos) == 21
    mtime = calendar.timegm((2025, 9, 20, 0, 0, 0))
    for info in infos:
        assert info.isfile(), info.name
        assert "/" not in info.name
        assert info.mtime == mtime
        assert (info.uid, info.gid) == (0, 0)
    by_name = {i.name: i for i in infos}
    for script in ("install", "install_vx", "uninstall.sh", "OS_details.sh", "prereq_check_install.sh"):
        assert by_name[script].mode & 0o111 == 0o111, script
    assert by_name["libcommon.sh"].mode & 0o111 == 0  # sourced, not run


def test_payload_is_the_vx_tree(bundles):
    """The non-RPM payload: an uncompressed tar whose top directories are bin etc scripts transport."""
    payload = tarfile.open(fileobj=io.BytesIO(member(bundles["v1"], f"InMage_VX_{V1}_{TAG}.tar")), mode="r:")
    names = payload.getnames()
    assert {n.split("/")[0] for n in names} == {"bin", "etc", "scripts", "transport"}
    for required in (
        "bin/start", "bin/stop", "bin/uninstall", "bin/svagents", "bin/appservice", "bin/UnifiedAgentConfigurator.sh",
        "bin/AzureRcmCli", "bin/libcommon.sh", "bin/drivers/involflt.ko", "etc/drscout.conf", "etc/RCMInfo.conf",
        "scripts/vCon/OS_details.sh", "scripts/asrsim/asrsim_agent.py", "transport/cxps.conf",
        "bin/inm_dmit", "scripts/initrd/install.sh",
    ):  # fmt: skip
        assert required in names, required
    assert payload.getmember("scripts/asrsim/asrsim_agent.py").mode & 0o111 == 0


def test_rpm_families_get_an_rpm_shaped_payload(bundles):
    bundle = bundles["rhel8"]
    assert members(bundle)[0].name == f"InMageVx-{V1}-1.x86_64.rpm"
    values = keys(bundle)
    assert (values["RPM_PACKAGE"], values["RPM_NAME"]) == ("InMageVx", f"InMageVx-{V1}-1.x86_64.rpm")
    assert "TAR_FILE_NAME" not in values
    assert list(values).index("RPM_PACKAGE") == list(values).index("INSTALLATION_DIR") + 1
    rpm = tarfile.open(fileobj=io.BytesIO(member(bundle, values["RPM_NAME"])), mode="r:")
    header = json.loads(rpm.extractfile(rpm.next()).read())
    assert (header["name"], header["version"], header["release"], header["arch"]) == ("InMageVx", V1, "1", "x86_64")
    assert "bin/uninstall" in rpm.getnames()
    assert member(bundle, "supported_kernels") == b""  # RHEL and OL lists are empty: their support is rule-based


def test_build_time_version_keys(bundles):
    values = keys(bundles["v2"])
    assert list(values) == [
        "VERSION", "PROD_VERSION", "PARTNER", "INSTALLATION_DIR", "AGENT_MODE", "VERSION_FILE_PARENT_DIR",
        "DEFAULT_UPGRADE_DIR", "BUILD_TAG", "OS_BUILT_FOR", "CONFIG", "TAR_FILE_NAME",
    ]  # fmt: skip
    assert values["VERSION"] == "9.67.7789.1"
    assert (values["INSTALLATION_DIR"], values["AGENT_MODE"]) == ("RUNTIME_INSTALL_PATH", "RUNTIME_AGENT_MODE")
    assert values["BUILD_TAG"] == "RELEASE_9.67.7789.1_GA_7789_Apr_30_2026_INMAGE"
    # Microsoft's scripts take the build with `grep -w BUILD_TAG | cut -d_ -f5` on the whole line.
    line = next(ln for ln in member(bundles["v2"], ".vx_version").decode().splitlines() if ln.startswith("BUILD_TAG"))
    assert line.split("_")[4] == "7789"
    assert values["OS_BUILT_FOR"] == TAG
    assert values["TAR_FILE_NAME"] == f"InMage_VX_9.67.7789.1_{TAG}.tar"  # the payload, not the bundle
    assert build_tag("9.66.7567.1", "20Sep2025") == "RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE"
    assert build_tag("9.67.0.0", "30Apr2026", build="7789") == "RELEASE_9.67.0.0_GA_7789_Apr_30_2026_INMAGE"
    # Valid shell: the configurator sources it.
    text = member(bundles["v2"], ".vx_version").decode()
    assert not any(c in text for c in " '\"")


def test_name_version_changes_only_the_file_name(tmp_path):
    bundle = build_bundle("9.65.7417.1", "SLES15-64", tmp_path, date="23Apr2025", name_version="9.65.0.0")
    assert bundle.name == bundle_name("9.65.0.0", "SLES15-64", "23Apr2025")
    assert keys(bundle)["VERSION"] == "9.65.7417.1"


def test_mislabelled_and_incomplete_bundles_for_tests(tmp_path):
    bad = build_bundle(V1, TAG, tmp_path / "a", vx_version={"OS_BUILT_FOR": "DEBIAN12-64", "CONFIG": None})
    assert keys(bad)["OS_BUILT_FOR"] == "DEBIAN12-64" and "CONFIG" not in keys(bad)
    bare = build_bundle(V1, TAG, tmp_path / "b", omit=[".vx_version", "prereq_check_install.sh"])
    names = [i.name for i in members(bare)]
    assert ".vx_version" not in names and "prereq_check_install.sh" not in names and "install" in names


@pytest.mark.parametrize(
    ("tag", "compression"),
    [
        ("UBUNTU-22.04-64", "lzma"),
        ("UBUNTU-14.04-64", "lzma"),
        ("DEBIAN12-64", "lzma"),  # not in TAR_OPT's gzip list
        ("DEBIAN7-64", "gzip"),
        ("DEBIAN11-64", "gzip"),
        ("RHEL8-64", "gzip"),
        ("OL9-64", "gzip"),
        ("SLES15-64", "gzip"),
    ],
)
def test_microsofts_compression_per_tag(tag, compression):
    assert default_compression(tag) == compression
    assert is_rpm_tag(tag) == tag.startswith(("RHEL", "OL", "SLES"))


@pytest.mark.parametrize(
    ("compression", "magic"),
    [("gzip", b"\x1f\x8b"), ("lzma", b"\x5d\x00\x00"), ("xz", b"\xfd7zXZ\x00"), ("tar", None)],
)
def test_compression_can_be_forced(tmp_path, compression, magic):
    bundle = build_bundle(V1, "DEBIAN10-64", tmp_path, compression=compression)
    head = bundle.read_bytes()[:6]
    if magic is None:
        assert head[:7] != b"\x1f\x8b" and tarfile.is_tarfile(bundle)
    else:
        assert head.startswith(magic)
    assert members(bundle)[1].name == "install"  # the same archive inside, whatever the packing


def test_supported_kernels_default_and_given(tmp_path):
    own = platform.release()
    default = member(build_bundle(V1, TAG, tmp_path / "a"), "supported_kernels").decode().splitlines()
    assert default[:2] == ["5.15.0-1090-azure", "5.15.0-25-generic"]  # real lines of Microsoft's 9.66 list
    assert default[-1] == own  # the kernel a sandbox on this machine runs
    sles = member(build_bundle(V1, "SLES15-64", tmp_path / "b"), "supported_kernels").decode().splitlines()
    assert sles == ["6.4.0-150700.53.22-default:7", f"{own}:0"]  # kver:SP
    given = build_bundle(V1, TAG, tmp_path / "c", supported_kernels=["6.8.0-87-generic"])
    assert member(given, "supported_kernels") == b"6.8.0-87-generic\n"
    raw = build_bundle(V1, TAG, tmp_path / "d", supported_kernels="5.15.0-25-generic\r\n6.8.0-87-generic")
    assert member(raw, "supported_kernels") == b"5.15.0-25-generic\r\n6.8.0-87-generic"
    assert kernel_lines(TAG, ["x"]) == ["x"] and kernel_lines("RHEL8-64") == []


def test_build_is_deterministic(tmp_path):
    a = build_bundle(V1, TAG, tmp_path / "a")  # LZMA, as Microsoft packs Ubuntu
    b = build_bundle(V1, TAG, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    g = build_bundle(V1, TAG, tmp_path / "g", compression="gzip")
    assert g.read_bytes() == build_bundle(V1, TAG, tmp_path / "h", compression="gzip").read_bytes()
    with gzip.open(g) as fh:
        fh.read(1)
    assert g.read_bytes()[4:8] == calendar.timegm((2025, 9, 20, 0, 0, 0)).to_bytes(4, "little")


def test_padding_is_incompressible_and_inside_the_payload(tmp_path):
    small = build_bundle(V1, TAG, tmp_path / "small")
    padded = build_bundle(V1, TAG, tmp_path / "padded", pad_mb=2)
    assert padded.stat().st_size - small.stat().st_size > 2 * 1024 * 1024 * 0.99
    payload = tarfile.open(fileobj=io.BytesIO(member(padded, f"InMage_VX_{V1}_{TAG}.tar")), mode="r:")
    data = payload.extractfile("bin/padding.bin").read()
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
    xz = subprocess.run([str(c) for c in [*cmd, "--compression", "xz"]], capture_output=True, text=True, timeout=60)
    assert xz.returncode == 0 and Path(xz.stdout.strip()).read_bytes().startswith(b"\xfd7zXZ\x00")
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
    """Everything in the bundle, and the stand-in host tools, runs as a child of asrctl on a bare host: stdlib only."""
    local = {"asrsim_agent", "asrsim_pause", "unified_agent_configurator", "fakepkg"}
    checked = 0
    for path in sorted([*PAYLOAD_DIR.rglob("*"), *HOSTTOOLS_BIN.parent.rglob("*"), *PKGTOOLS_BIN.parent.rglob("*")]):
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
    assert checked >= 19


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
        ["/bin/sh", str(PAYLOAD_DIR / "bundle/OS_details.sh"), "print"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
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
    script = f'. "{PAYLOAD_DIR / "bundle/OS_details.sh"}"; echo "OS=$OS"'
    env = {"PATH": "/usr/bin:/bin", "ASRCTL_ROOT": str(tmp_path / "root"), "ASR_SIM_ARCH": "x86_64"}
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.stdout == "OS=UBUNTU-20.04-64\n"
