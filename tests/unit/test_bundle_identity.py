"""A Linux bundle's own .vx_version against its file name: renamed or mislabelled bundles are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asrctl.bundles.names import parse as parse_name
from asrctl.bundles.vxversion import BundleIdentity, check_identity, mismatch, parse, read_identity
from asrctl.errors import AsrctlError
from asrctl.versions import same_release

NAME = "Microsoft-ASR_UA_{v}_{t}_GA_20Sep2025_release.tar.gz"
VX = """VERSION=9.66.7567.1
PROD_VERSION=9.66
PARTNER=InMage
INSTALLATION_DIR=RUNTIME_INSTALL_PATH
AGENT_MODE=RUNTIME_AGENT_MODE
VERSION_FILE_PARENT_DIR=/usr/local
BUILD_TAG=RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE
OS_BUILT_FOR=UBUNTU-22.04-64
CONFIG=release
TAR_FILE_NAME=InMage_VX_9.66.7567.1_UBUNTU-22.04-64.tar
"""


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("9.66.7567.1", "9.66.7567.1", True),
        ("9.66.0.0", "9.66.7567.1", True),  # Microsoft's x.y.0.0 name for the release
        ("9.66.7567.1", "9.66.0.0", True),
        ("9.67.0.0", "9.67.0.0", True),
        ("9.66.7567.1", "9.66.7604.1", False),
        ("9.67.0.0", "9.66.7567.1", False),
        ("9.66", "9.66.7567.1", False),
        ("", "9.66.0.0", False),
        ("9.6٥.0.0", "9.65.0.0", False),  # only ASCII digits are digits
    ],
)
def test_same_release(a: str, b: str, same: bool) -> None:
    assert same_release(a, b) is same
    assert same_release(b, a) is same


def test_parse_reads_shell_assignments() -> None:
    keys = parse(VX + '# comment\nnot a line\nQUOTED="x"\n')
    assert keys["VERSION"] == "9.66.7567.1" and keys["OS_BUILT_FOR"] == "UBUNTU-22.04-64"
    assert keys["QUOTED"] == "x" and "not a line" not in keys
    ident = BundleIdentity(keys)
    assert (ident.payload, ident.rpm_package) == ("InMage_VX_9.66.7567.1_UBUNTU-22.04-64.tar", None)
    rpm = BundleIdentity(parse(VX.replace("TAR_FILE_NAME", "RPM_NAME") + "RPM_PACKAGE=InMageVx\n"))
    assert rpm.rpm_package == "InMageVx" and rpm.payload == "InMage_VX_9.66.7567.1_UBUNTU-22.04-64.tar"


@pytest.mark.parametrize(
    ("name_version", "name_tag", "inner_version", "inner_tag", "wrong"),
    [
        ("9.66.7567.1", "UBUNTU-22.04-64", "9.66.7567.1", "UBUNTU-22.04-64", []),
        ("9.66.0.0", "UBUNTU-22.04-64", "9.66.7567.1", "UBUNTU-22.04-64", []),
        ("9.66.7567.1", "ubuntu-22.04-64", "9.66.7567.1", "UBUNTU-22.04-64", []),
        ("9.66.7567.1", "UBUNTU-22.04-64", "9.65.7417.1", "UBUNTU-22.04-64", ["9.66.7567.1", "VERSION=9.65.7417.1"]),
        ("9.67.0.0", "UBUNTU-22.04-64", "9.66.7567.1", "UBUNTU-22.04-64", ["9.67.0.0", "VERSION=9.66.7567.1"]),
        (
            "9.66.7567.1",
            "UBUNTU-22.04-64",
            "9.66.7567.1",
            "DEBIAN12-64",
            ["UBUNTU-22.04-64", "OS_BUILT_FOR=DEBIAN12-64"],
        ),
        ("9.66.7567.1", "RHEL8-64", "9.65.7417.1", "RHEL9-64", ["VERSION=9.65.7417.1", "OS_BUILT_FOR=RHEL9-64"]),
    ],
)
def test_mismatch_names_both_values(name_version, name_tag, inner_version, inner_tag, wrong) -> None:
    name = parse_name(NAME.format(v=name_version, t=name_tag))
    ident = BundleIdentity({"VERSION": inner_version, "OS_BUILT_FOR": inner_tag})
    why = mismatch(name, ident)
    if not wrong:
        assert why is None
        check_identity(name, ident)
        return
    assert why is not None and all(w in why for w in wrong)
    with pytest.raises(AsrctlError) as caught:
        check_identity(name, ident)
    err = caught.value
    assert (err.code, err.exit_code) == ("ASRCTL-E038", 5)
    assert "renamed or mislabelled" in err.message and all(w in err.message for w in wrong)
    assert (err.details["vx_version"], err.details["os_built_for"]) == (inner_version, inner_tag)
    assert (err.details["name_version"], err.details["name_os_tag"]) == (name_version, name_tag)


def test_read_identity(tmp_path: Path) -> None:
    (tmp_path / ".vx_version").write_text(VX)
    assert read_identity(tmp_path, "b.tar.gz").version == "9.66.7567.1"


@pytest.mark.parametrize("shape", ["missing", "symlink", "directory", "no-version", "fifo"])
def test_no_usable_vx_version_is_not_a_linux_bundle(tmp_path: Path, shape: str) -> None:
    target = tmp_path / ".vx_version"
    if shape == "symlink":
        (tmp_path / "elsewhere").write_text(VX)
        target.symlink_to(tmp_path / "elsewhere")
    elif shape == "directory":
        target.mkdir()
    elif shape == "no-version":
        target.write_text(VX.replace("VERSION=9.66.7567.1\n", ""))
    elif shape == "fifo":
        os.mkfifo(target)
    with pytest.raises(AsrctlError) as caught:
        read_identity(tmp_path, "b.tar.gz")
    assert (caught.value.code, caught.value.exit_code) == ("ASRCTL-E039", 5)
    assert caught.value.message.startswith("b.tar.gz is not a Microsoft Linux bundle: ")
