"""Which driver file of a package a kernel takes: Microsoft's rules (platforms/drivers.toml, asrctl/kernels/choice.py),
one row per rule of hotfix_install.sh, and the refusals where its glob copy would fail or copy the wrong file."""

from __future__ import annotations

import pytest

from asrctl.errors import AsrctlError
from asrctl.kernels import choice

# File names as Microsoft's packages and agent spec name them (docs/KERNELS.md).
RHEL8 = {
    f"involflt.ko.4.18.0-{v}"
    for v in (
        "80.el8.x86_64",
        "147.el8.x86_64",
        "305.el8.x86_64",
        "305.148.1.el8_4.x86_64",
        "348.el8.x86_64",
        "425.3.1.el8.x86_64",
        "425.10.1.el8_7.x86_64",
    )
}
RHEL9 = {
    f"involflt.ko.5.14.0-{v}"
    for v in (
        "70.13.1.0.3.el9_0.x86_64",
        "70.36.1.el9_0.x86_64",
        "162.6.1.el9_1.x86_64",
        "162.22.2.el9_1.x86_64",
        "284.11.1.el9_2.x86_64",
        "362.8.1.el9_3.x86_64",
        "362.18.1.el9_3.x86_64",
        "427.13.1.el9_4.x86_64",
        "503.11.1.el9_5.x86_64",
        "570.12.1.el9_6.x86_64",
        "611.5.1.el9_7.x86_64",
        "687.el9.x86_64",
    )
}
UEK = {
    "involflt.ko.4.14.35-1818.3.3.el7uek.x86_64",
    "involflt.ko.4.14.35-1902.3.2.el7uek.x86_64",
    "involflt.ko.5.4.17-2136.el8uek.x86_64",
}


@pytest.mark.parametrize(
    ("tag", "kernel", "files", "expected"),
    [
        # Ubuntu, Debian: the exact kernel.
        ("UBUNTU-22.04-64", "5.15.0-1103-azure", {"involflt.ko.5.15.0-1103-azure"}, "involflt.ko.5.15.0-1103-azure"),
        (
            "DEBIAN12-64",
            "6.1.0-41-cloud-amd64",
            {"involflt.ko.6.1.0-41-cloud-amd64", "involflt.ko.6.1.0-41-amd64"},
            "involflt.ko.6.1.0-41-cloud-amd64",
        ),
        # RHEL8 mapping (and OL8 RHCK, which uses the same table).
        ("RHEL8-64", "4.18.0-80.11.2.el8_0.x86_64", RHEL8, "involflt.ko.4.18.0-80.el8.x86_64"),
        ("RHEL8-64", "4.18.0-193.28.1.el8_2.x86_64", RHEL8, "involflt.ko.4.18.0-147.el8.x86_64"),
        ("RHEL8-64", "4.18.0-240.22.1.el8_3.x86_64", RHEL8, "involflt.ko.4.18.0-147.el8.x86_64"),
        ("RHEL8-64", "4.18.0-305.148.1.el8_4.x86_64", RHEL8, "involflt.ko.4.18.0-305.148.1.el8_4.x86_64"),
        ("RHEL8-64", "4.18.0-305.150.1.el8_4.x86_64", RHEL8, "involflt.ko.4.18.0-305.148.1.el8_4.x86_64"),
        ("RHEL8-64", "4.18.0-305.3.1.el8_4.x86_64", RHEL8, "involflt.ko.4.18.0-305.el8.x86_64"),
        ("RHEL8-64", "4.18.0-348.2.1.el8_5.x86_64", RHEL8, "involflt.ko.4.18.0-348.el8.x86_64"),
        ("RHEL8-64", "4.18.0-372.9.1.el8.x86_64", RHEL8, "involflt.ko.4.18.0-348.el8.x86_64"),
        ("RHEL8-64", "4.18.0-425.3.1.el8.x86_64", RHEL8, "involflt.ko.4.18.0-425.3.1.el8.x86_64"),
        ("RHEL8-64", "4.18.0-425.13.1.el8_7.x86_64", RHEL8, "involflt.ko.4.18.0-425.10.1.el8_7.x86_64"),
        ("RHEL8-64", "4.18.0-553.22.1.el8_10.x86_64", RHEL8, "involflt.ko.4.18.0-425.10.1.el8_7.x86_64"),
        ("OL8-64", "4.18.0-477.10.1.el8_8.x86_64", RHEL8, "involflt.ko.4.18.0-425.10.1.el8_7.x86_64"),
        # RHEL9 mapping (and OL9 RHCK).
        ("RHEL9-64", "5.14.0-70.13.1.el9_0.x86_64", RHEL9, "involflt.ko.5.14.0-70.13.1.0.3.el9_0.x86_64"),
        ("RHEL9-64", "5.14.0-70.36.1.el9_0.x86_64", RHEL9, "involflt.ko.5.14.0-70.36.1.el9_0.x86_64"),
        ("RHEL9-64", "5.14.0-162.6.1.el9_1.x86_64", RHEL9, "involflt.ko.5.14.0-162.6.1.el9_1.x86_64"),
        ("RHEL9-64", "5.14.0-162.23.1.el9_1.x86_64", RHEL9, "involflt.ko.5.14.0-162.22.2.el9_1.x86_64"),
        ("RHEL9-64", "5.14.0-284.30.1.el9_2.x86_64", RHEL9, "involflt.ko.5.14.0-284.11.1.el9_2.x86_64"),
        ("RHEL9-64", "5.14.0-362.8.1.el9_3.x86_64", RHEL9, "involflt.ko.5.14.0-362.8.1.el9_3.x86_64"),
        # Microsoft's quirk: 362.24.1 takes the 362.18.1 driver (the third field of the running kernel).
        ("RHEL9-64", "5.14.0-362.24.1.el9_3.x86_64", RHEL9, "involflt.ko.5.14.0-362.18.1.el9_3.x86_64"),
        ("RHEL9-64", "5.14.0-427.13.1.el9_4.x86_64", RHEL9, "involflt.ko.5.14.0-427.13.1.el9_4.x86_64"),
        ("OL9-64", "5.14.0-503.15.1.el9_5.x86_64", RHEL9, "involflt.ko.5.14.0-503.11.1.el9_5.x86_64"),
        ("RHEL9-64", "5.14.0-611.5.1.el9_7.x86_64", RHEL9, "involflt.ko.5.14.0-611.5.1.el9_7.x86_64"),
        ("RHEL9-64", "5.14.0-700.1.1.el9_8.x86_64", RHEL9, "involflt.ko.5.14.0-687.el9.x86_64"),
        # UEK (OL): the base version, 4.14.35 split by -18.
        ("OL7-64", "4.14.35-1818.5.4.el7uek.x86_64", UEK, "involflt.ko.4.14.35-1818.3.3.el7uek.x86_64"),
        ("OL7-64", "4.14.35-2047.510.5.el7uek.x86_64", UEK, "involflt.ko.4.14.35-1902.3.2.el7uek.x86_64"),
        ("OL8-64", "5.4.17-2136.300.7.el8uek.x86_64", UEK, "involflt.ko.5.4.17-2136.el8uek.x86_64"),
    ],
)
def test_driver_file_per_family(tag: str, kernel: str, files: set[str], expected: str) -> None:
    assert choice.choose(tag, kernel, files).file == expected


@pytest.mark.parametrize(
    ("secure_boot", "files", "expected"),
    [
        (True, {"Signed/involflt.ko.K", "UnSigned/involflt.ko.K"}, "Signed/involflt.ko.K"),
        (False, {"Signed/involflt.ko.K", "UnSigned/involflt.ko.K"}, "UnSigned/involflt.ko.K"),
        (None, {"Signed/involflt.ko.K", "UnSigned/involflt.ko.K"}, "UnSigned/involflt.ko.K"),
        (False, {"Signed/involflt.ko.K"}, "Signed/involflt.ko.K"),
    ],
)
def test_sles_signed_follows_secure_boot(secure_boot: bool | None, files: set[str], expected: str) -> None:
    kernel = "6.4.0-150700.53.22-default"
    files = {f.replace("K", kernel) for f in files}
    assert choice.choose("SLES15-64", kernel, files, secure_boot=secure_boot).file == expected.replace("K", kernel)


def test_sles_under_secure_boot_never_takes_the_unsigned_driver() -> None:
    kernel = "6.4.0-150700.53.22-default"
    with pytest.raises(AsrctlError, match="Secure Boot is on") as err:
        choice.choose("SLES15-64", kernel, {f"UnSigned/involflt.ko.{kernel}"}, secure_boot=True)
    assert err.value.code == "ASRCTL-E099"


@pytest.mark.parametrize(
    ("tag", "kernel", "files", "why"),
    [
        ("UBUNTU-22.04-64", "5.15.0-1104-azure", {"involflt.ko.5.15.0-1103-azure"}, "not in the package"),
        ("RHEL8-64", "4.18.0-305.el8.x86_64", RHEL8, "before 4.18.0-305.3.1"),
        ("RHEL8-64", "4.18.0-348.el8.x86_64", RHEL8, "before 4.18.0-348.2.1"),
        ("RHEL8-64", "4.18.0-80.el8.x86_64", set(), "no file matches involflt.ko.4.18.0-80*"),
        # The glob must match one file; Microsoft's `cp -f <glob> involflt.ko` fails on two (and the UEK branch
        # ignores that failure).
        ("RHEL8-64", "4.18.0-80.el8.x86_64", RHEL8 | {"involflt.ko.4.18.0-80.7.1.el8_0.x86_64"}, "2 files match"),
        ("OL7-64", "5.4.17-2011.el7uek.x86_64", {"involflt.ko.4.14.35-1818.3.3.el7uek.x86_64"}, "no file matches"),
        ("RHEL7-64", "3.10.0-1160.el7.x86_64", set(), "no driver package"),
        ("SLES15-64", "6.4.0-150700.53.22-default", set(), "neither"),
    ],
)
def test_no_driver_is_a_clear_refusal(tag: str, kernel: str, files: set[str], why: str) -> None:
    with pytest.raises(AsrctlError) as err:
        choice.choose(tag, kernel, files)
    assert err.value.code == "ASRCTL-E099" and why in err.value.message and kernel in err.value.message


def test_packages_and_the_tags_they_serve() -> None:
    keys = choice.package_keys()
    assert set(keys) == {
        "UBUNTU18",
        "UBUNTU20",
        "UBUNTU22",
        "UBUNTU24",
        "DEBIAN11",
        "DEBIAN12",
        "SLES15",
        "RHEL8",
        "RHEL9",
    }
    assert choice.keys_for("OL8-64") == ["RHEL8"] and choice.keys_for("SLES12-64") == []
