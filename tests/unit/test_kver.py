"""Kernel release strings: what is accepted, how they order, which are nearest (asrctl/kernels/kver.py)."""

from __future__ import annotations

import pytest

from asrctl.errors import AsrctlError
from asrctl.kernels import kver


@pytest.mark.parametrize(
    "kernel",
    [
        "5.15.0-1090-azure",
        "6.1.0-41-cloud-amd64",
        "5.10.0-0.bpo.11-amd64",
        "6.12.43+deb12-cloud-amd64",
        "6.4.0-150700.53.22-default",
        "4.18.0-553.22.1.el8_10.x86_64",
        "5.4.17-2136.300.7.el8uek.x86_64",
        "4.12.14-lp150.11-default",
    ],
)
def test_real_kernel_strings_are_accepted(kernel: str) -> None:
    assert kver.problem(kernel) is None
    assert kver.require(kernel) == kernel


@pytest.mark.parametrize(
    ("kernel", "why"),
    [
        ("", "empty"),
        ("5.15.0-25 generic", "white space"),
        (" 5.15.0-25-generic", "white space"),
        ("5.15.0-25-generic\n", "white space"),
        ("5.15.0-25-generic\t", "white space"),
        ("5.15.0..25-generic", "'..'"),
        ("../../etc/passwd", "'..'"),
        ("5.15.0-25/generic", "path separator"),
        ("generic-5.15", "start with a digit"),
        ("5.15.0-25-génériq", "ASCII"),
        ("5.15.0;rm -rf", "white space"),
        ("5.15.0;reboot", "start with a digit and hold only"),
        ("5.15.0-$(id)", "start with a digit and hold only"),
        ("5" * 129, "longer than 128"),
    ],
)
def test_bad_kernel_strings_are_refused_with_the_reason(kernel: str, why: str) -> None:
    assert why in (kver.problem(kernel) or "")
    with pytest.raises(AsrctlError) as err:
        kver.require(kernel, "--kernel")
    assert err.value.code == "ASRCTL-E093" and err.value.exit_code == 2
    assert "--kernel" in err.value.message and why in err.value.message


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("6.1.0-9-amd64", "6.1.0-13-amd64"),  # Debian ABI numbers compare as numbers
        ("5.15.0-25-generic", "5.15.0-160-generic"),
        ("5.15.0-1090-azure", "5.15.0-1103-azure"),
        ("4.18.0-305.el8.x86_64", "4.18.0-305.3.1.el8_4.x86_64"),
        ("6.4.0-150600.23.47-default", "6.4.0-150700.53.6-default"),
        ("5.10.0-0.bpo.11-amd64", "5.10.0-38-amd64"),
        ("6.12.43~rc1", "6.12.43"),
    ],
)
def test_version_order(older: str, newer: str) -> None:
    assert kver.key(older) < kver.key(newer)
    assert kver.newest([newer, older]) == newer


@pytest.mark.parametrize(
    ("kernel", "flavour"),
    [
        ("5.15.0-1090-azure", "azure"),
        ("5.15.0-25-generic", "generic"),
        ("6.1.0-41-cloud-amd64", "cloud-amd64"),
        ("6.1.0-41-amd64", "amd64"),
        ("6.4.0-150700.53.22-default", "default"),
        ("4.18.0-553.el8_10.x86_64", ""),
    ],
)
def test_flavour(kernel: str, flavour: str) -> None:
    assert kver.flavour(kernel) == flavour


def test_nearest_are_neighbours_of_the_same_flavour_in_version_order() -> None:
    listed = [
        "5.15.0-1090-azure",
        "5.15.0-1091-azure",
        "5.15.0-1101-azure",
        "5.15.0-1110-azure",
        "5.15.0-1096-generic",  # another flavour: never a neighbour of an -azure kernel
        "5.15.0-99-azure",
    ]
    assert kver.nearest("5.15.0-1095-azure", listed) == [
        "5.15.0-1090-azure",
        "5.15.0-1091-azure",
        "5.15.0-1101-azure",
        "5.15.0-1110-azure",
    ]
    assert kver.nearest("5.15.0-1200-azure", listed, per_side=1) == ["5.15.0-1110-azure"]
    assert kver.nearest("5.15.0-1-azure", listed, per_side=1) == ["5.15.0-99-azure"]
    assert kver.nearest("6.8.0-1-aws", listed) == []
