"""/proc/modules, /proc/devices and inm_dmit's answer (asrctl/kernels/procfs.py): exact matches where Microsoft's
scripts grep substrings."""

from __future__ import annotations

import pytest

from asrctl.kernels import procfs

MODULES = """\
involflt_old 16384 0 - Live 0x0000000000000000 (OE)
dm_mod 155648 3 involflt, Live 0x0000000000000000
ext4 1007616 1 - Live 0x0000000000000000
"""
DEVICES = """\
Character devices:
  1 mem
 10 misc
240 involflt_old

Block devices:
  8 sd
241 involflt
"""


def test_only_the_exact_first_field_counts_as_loaded() -> None:
    mods = procfs.parse_modules(MODULES)
    assert procfs.MODULE not in mods  # `lsmod | grep -i involflt` would say it is loaded (twice)
    line = procfs.parse_modules("involflt 892928 11 - Live 0x0000000000000000 (OE)\n")[procfs.MODULE]
    assert (line.size, line.refcount, line.state, line.taint) == (892928, 11, "Live", "OE")
    assert procfs.parse_modules("involflt 892928 0 - Loading 0x0\n")[procfs.MODULE].state == "Loading"


def test_the_major_comes_from_the_character_section_and_the_exact_name() -> None:
    assert procfs.char_major(DEVICES) is None
    assert procfs.char_major(DEVICES.replace("240 involflt_old", "239 involflt")) == 239
    assert procfs.char_major("Character devices:\n 10 misc\n") is None


@pytest.mark.parametrize(
    ("output", "agent_version", "faulty"),
    [
        ("Product Version = (9, 66, 1, 7700)\nDriver Version = (2, 1, 3, 0)\n", "9.66.7700.1", True),
        ("Product Version = (9, 66, 1, 7691)\n", "9.66.7691.1", True),
        ("Product Version = (9, 66, 1, 7749)\n", "9.66.7749.1", True),
        ("Product Version = (9, 66, 1, 7690)\n", "9.66.7690.1", False),
        ("Product Version = (9, 66, 1, 7750)\n", "9.66.7750.1", False),
        ("Product Version = (9, 67, 1, 7700)\n", "9.67.7700.1", False),
        ("Product Version = (9, 66, 0, 7700)\n", "9.66.7700.0", False),
        ("Product Version =(9,66,1,7722)", "9.66.7722.1", True),
    ],
)
def test_driver_version_and_the_faulty_builds(output: str, agent_version: str, faulty: bool) -> None:
    found = procfs.parse_driver_version(output)
    assert found is not None and found.agent_version == agent_version and found.faulty is faulty


@pytest.mark.parametrize(
    "output", ["", "inm_dmit: open /dev/involflt: No such file or directory", "Product Version = ()"]
)
def test_no_version_in_the_output(output: str) -> None:
    assert procfs.parse_driver_version(output) is None


def test_faulty_range_in_agent_terms() -> None:
    assert procfs.faulty_range() == "9.66.7691.1-9.66.7749.1"
