"""Microsoft's supported_kernels lists (asrctl/kernels/lists.py): the real lines of tests/fixtures/supported-kernels
(source and commit in its README.md), and synthetic bad copies made here, marked as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrctl.errors import AsrctlError
from asrctl.kernels import lists

TREE = Path(__file__).resolve().parents[1] / "fixtures/supported-kernels/MobilityAgent"
ONPREM = TREE / "OnPremiseToAzure/SupportedKernels"


def _read(path: Path) -> lists.KernelList:
    return lists.parse(path.read_bytes(), str(path))


def test_ubuntu_debian_lines_are_exact_kernels() -> None:
    ub = _read(ONPREM / "9.66.7643.1/UBUNTU-22.04-64_supported_kernels.txt")
    assert "5.15.0-1101-azure" in ub and "6.8.0-87-generic" in ub and len(ub) == 10
    assert not ub.sles and ub.unterminated is None and ub.entries["5.15.0-25-generic"] is None
    deb = _read(ONPREM / "9.66.7643.1/DEBIAN12-64_supported_kernels.txt")
    assert "6.1.0-13-amd64" in deb and "6.1.0-13-cloud-amd64" not in deb  # not always paired
    assert "6.5.0-0.deb12.4-cloud-amd64" in deb


def test_sles_lines_carry_the_service_pack() -> None:
    sles = _read(ONPREM / "9.66.7643.1/SLES15-64_supported_kernels.txt")
    assert sles.sles
    assert sles.entries["6.4.0-150700.53.22-default"] == 7
    assert sles.entries["4.12.14-lp150.11-default"] == 0
    assert sles.entries["5.14.21-150400.14.49-azure"] == 4
    assert "6.4.0-150700.53.22-default:7" not in sles


def test_a_real_file_without_final_newline_is_read_and_its_last_line_remembered() -> None:
    ub16 = _read(ONPREM / "9.66.7567.1/UBUNTU-16.04-64_supported_kernels.txt")
    assert "4.8.0-58-generic" in ub16 and ub16.unterminated == "4.8.0-58-generic"
    # Microsoft's checker reads the list with `while read`, which never sees that last line.
    assert not ub16.seen_by_installer("4.8.0-58-generic")
    assert ub16.seen_by_installer("4.8.0-56-generic")


def test_unterminated_sles_line_is_remembered_without_its_sp() -> None:
    got = lists.parse(b"5.3.18-24.46-default:2\n6.4.0-150700.53.6-default:7", "x")
    assert got.unterminated == "6.4.0-150700.53.6-default" and got.entries[got.unterminated] == 7


def test_an_empty_file_is_an_empty_list() -> None:
    # The RHEL/OL files of AzureToAzure 9.65.7417.1 are 0 bytes: their support is rule-based.
    assert len(lists.parse(b"", "RHEL8-64_supported_kernels.txt")) == 0


# Synthetic bad copies (not Microsoft's): each is refused, naming the file and the line.
@pytest.mark.parametrize(
    ("data", "line", "why"),
    [
        (b"5.15.0-25-generic\r\n5.15.0-26-generic\r\n", 1, "CRLF"),
        (b"5.15.0-25-generic\n5.15.0-26-generic\r\n", 2, "CRLF"),
        (b"5.15.0-25-generic\n\n5.15.0-26-generic\n", 2, "blank"),
        (b"5.15.0-25-generic\n   \n", 2, "blank"),
        (b"5.15.0-25-generic \n", 1, "spaces"),
        (b" 5.15.0-25-generic\n", 1, "spaces"),
        (b"\xef\xbb\xbf5.15.0-25-generic\n", 1, "byte-order mark"),
        (b"5.15.0-25-generic\n5.15.0-26-g\xc3\xa9n\xc3\xa9ric\n", 2, "not ASCII"),
        (b"# supported kernels\n5.15.0-25-generic\n", 1, "not a kernel release string"),
        (b"5.15.0-25 generic\n", 1, "white space"),
        (b"5.15.0..25-generic\n", 1, "'..'"),
        (b"6.4.0-150700.53.22-default:x\n", 1, "service pack"),
        (b"6.4.0-150700.53.22-default:7\n6.4.0-150700.53.22-default:6\n", 2, "different service packs"),
    ],
)
def test_damaged_copies_are_refused_with_file_and_line(data: bytes, line: int, why: str) -> None:
    with pytest.raises(AsrctlError) as err:
        lists.parse(data, "bundle/supported_kernels")
    assert err.value.code == "ASRCTL-E094" and err.value.exit_code == 5
    assert f"bundle/supported_kernels line {line}:" in err.value.message
    assert why in err.value.message
    assert err.value.details == {"source": "bundle/supported_kernels", "line": line}


def test_mixing_sles_and_plain_lines_is_refused() -> None:
    with pytest.raises(AsrctlError, match="mixes kver:SP lines"):
        lists.parse(b"5.3.18-24.46-default:2\n5.15.0-25-generic\n", "x")


def test_a_huge_file_is_not_a_list() -> None:
    with pytest.raises(AsrctlError, match="larger than"):
        lists.parse(b"5.15.0-25-generic\n" * (lists.MAX_BYTES // 10), "x")
