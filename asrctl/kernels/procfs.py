"""What the kernel and the agent's driver tool say about ``involflt`` (text in, answers out).

- ``/proc/modules``: ``involflt 892928 11 - Live 0x0000000000000000 (OE)``. The module is loaded when the *first
  field* is exactly ``involflt``; Microsoft's ``lsmod | grep -i involflt`` would also take ``involflt_old`` or
  a module named in another's dependency column.
- ``/proc/devices``: the driver registers a character device with a dynamic major and creates no ``/dev`` node;
  the major is read from the ``Character devices:`` section only (a block device of the same name does not count)
  with the name matched exactly (Microsoft greps the whole file for a substring).
- ``inm_dmit --op=get_driver_version``: ``Product Version = (9, 66, 1, 7700)`` is (major, minor, private, build),
  i.e. agent 9.66.7700.1. Driver builds 9.66.7691.1-9.66.7749.1 are the known faulty ones: replacing such a
  driver means stopping filtering on every protected disk, and that forces a full resync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODULE = "involflt"
FAULTY = ((9, 66, 1), 7691, 7749)  # (major, minor, private), first and last build


@dataclass(frozen=True)
class ModuleLine:
    name: str
    size: int
    refcount: int
    state: str  # Live | Loading | Unloading
    taint: str  # "OE" in "(OE)", "" when none


def parse_modules(text: str) -> dict[str, ModuleLine]:
    out: dict[str, ModuleLine] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].isdigit():
            continue
        refcount = int(fields[2]) if fields[2].isdigit() else 0
        taint = fields[6].strip("()") if len(fields) > 6 and fields[6].startswith("(") else ""
        out[fields[0]] = ModuleLine(fields[0], int(fields[1]), refcount, fields[4], taint)
    return out


def char_major(text: str, name: str = MODULE) -> int | None:
    """The major number of character device ``name`` in ``/proc/devices``; None when it has none."""
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("devices:"):
            section = stripped
            continue
        if section != "Character devices:":
            continue
        fields = stripped.split()
        if len(fields) == 2 and fields[1] == name and fields[0].isascii() and fields[0].isdigit():
            return int(fields[0])
    return None


_PRODUCT = re.compile(r"Product Version\s*=\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", re.ASCII)


@dataclass(frozen=True)
class DriverVersion:
    major: int
    minor: int
    private: int
    build: int

    @property
    def agent_version(self) -> str:
        """Microsoft's agent version order: major.minor.build.private."""
        return f"{self.major}.{self.minor}.{self.build}.{self.private}"

    @property
    def faulty(self) -> bool:
        head, first, last = FAULTY
        return (self.major, self.minor, self.private) == head and first <= self.build <= last


def parse_driver_version(output: str) -> DriverVersion | None:
    m = _PRODUCT.search(output)
    if m is None:
        return None
    major, minor, private, build = (int(x) for x in m.groups())
    return DriverVersion(major, minor, private, build)


def faulty_range() -> str:
    head, first, last = FAULTY
    return f"{head[0]}.{head[1]}.{first}.{head[2]}-{head[0]}.{head[1]}.{last}.{head[2]}"
