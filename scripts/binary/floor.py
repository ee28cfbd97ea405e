"""The floor of a built file: the newest glibc symbol version any bundled ELF needs, the glibc bundled to meet
it, and the oldest kernel the result runs on -- and so which target releases it covers.

    PYTHONPATH=scripts .venv/bin/python -m binary.floor dist/asrctl [--json]

The build prints this report and writes it to ``build/binary/<app>/floor.json``. It reads facts the ELF files
declare, not guesses: ``GLIBC_x.y`` entries of the version-need sections (what a file needs), of the
version-definition sections (what a glibc provides), and the ``NT_GNU_ABI_TAG`` note (the oldest kernel a glibc,
or a program linked statically against one, accepts -- older kernels get "FATAL: kernel too old").
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from binary.common import fail
from binary.layers import pyinstaller_entries, split_final, staticx_members, staticx_program

Version = tuple[int, ...]

# Target releases and the kernel each ships (the oldest kernel of the release: its GA kernel). The report says
# which of them the bundled glibc's minimum kernel admits. Kept in step with docs/BINARY.md.
TARGETS = [
    ("RHEL / CentOS / Oracle Linux 6", "2.6.32"),
    ("SLES 11 SP1", "2.6.32"),
    ("SLES 11 SP2-SP4", "3.0.13"),
    ("Debian 7", "3.2.0"),
    ("RHEL / CentOS / Oracle Linux 7", "3.10.0"),
    ("SLES 12", "3.12.28"),
    ("Ubuntu 14.04", "3.13.0"),
    ("Debian 8", "3.16.0"),
    ("Ubuntu 16.04", "4.4.0"),
    ("RHEL / Oracle Linux 8", "4.18.0"),
    ("SLES 15", "4.12.14"),
]


def vstr(v: Version | None) -> str:
    return ".".join(map(str, v)) if v else "-"


def parse_version(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


def glibc_version(name: str) -> Version | None:
    """``GLIBC_2.17`` -> (2, 17); None for other names and for ``GLIBC_PRIVATE``."""
    if not name.startswith("GLIBC_"):
        return None
    parts = name[6:].split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


@dataclass
class ElfFacts:
    name: str
    needs: set[Version] = field(default_factory=set)  # GLIBC_x.y symbol versions it needs
    defines: set[Version] = field(default_factory=set)  # GLIBC_x.y versions it provides (glibc itself)
    kernel: Version | None = None  # NT_GNU_ABI_TAG: the oldest kernel it supports


def elf_facts(name: str, data: bytes) -> ElfFacts | None:
    """What one file declares, or None when it is not an ELF file."""
    if not data.startswith(b"\x7fELF"):
        return None
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
    from elftools.elf.sections import NoteSection

    facts = ElfFacts(name)
    elf = ELFFile(io.BytesIO(data))
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _verneed, auxes in section.iter_versions():
                for aux in auxes:
                    v = glibc_version(aux.name)
                    if v:
                        facts.needs.add(v)
        elif isinstance(section, GNUVerDefSection):
            for _verdef, auxes in section.iter_versions():
                for aux in auxes:
                    v = glibc_version(aux.name)
                    if v:
                        facts.defines.add(v)
        elif isinstance(section, NoteSection):
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_ABI_TAG":
                    desc = note["n_desc"]
                    facts.kernel = (desc["abi_major"], desc["abi_minor"], desc["abi_tiny"])
    return facts


def analyse(launcher: bytes, staticx: bytes, pyinstaller: dict[str, tuple[str, bytes | None]]) -> dict[str, object]:
    """The floor of the three layers: the launcher, the staticx executable (its bootloader and every file in
    its archive) and the binaries in the PyInstaller archive (``pyinstaller_entries``)."""
    pieces: list[ElfFacts] = []
    for name, data in [("launcher", launcher), ("staticx bootloader", staticx)]:
        f = elf_facts(name, data)
        if f:
            pieces.append(f)
    for name, data in sorted(staticx_members(staticx).items()):
        f = elf_facts(f"staticx:{name}", data)
        if f:
            pieces.append(f)
    for name, (typecode, blob) in sorted(pyinstaller.items()):
        if typecode == "b" and blob is not None:
            f = elf_facts(f"pyinstaller:{name}", blob)
            if f:
                pieces.append(f)

    libc = [p for p in pieces if p.name.startswith("staticx:libc.so") and p.defines]
    if not libc:
        raise fail("no glibc (libc.so.6) in the staticx archive: the binary would use the host's C library")
    bundled = max(libc[0].defines)
    needed = max((v for p in pieces for v in p.needs), default=())
    needed_by = sorted(p.name for p in pieces if p.needs and max(p.needs) == needed)
    if needed > bundled:
        raise fail(f"GLIBC_{vstr(needed)} needed by {needed_by}, but the bundled glibc is only {vstr(bundled)}")
    kernel = max((p.kernel for p in pieces if p.kernel), default=None)
    kernel_from = sorted(p.name for p in pieces if p.kernel == kernel)
    covered = [name for name, k in TARGETS if kernel is None or parse_version(k) >= kernel]
    not_covered = [f"{name} (kernel {k})" for name, k in TARGETS if kernel is not None and parse_version(k) < kernel]
    return {
        "glibc_needed": vstr(needed),
        "glibc_needed_by": needed_by,
        "glibc_bundled": vstr(bundled),
        "kernel_min": vstr(kernel),
        "kernel_min_from": kernel_from,
        "elf_files": len(pieces),
        "targets_covered": covered,
        "targets_not_covered": not_covered,
    }


def analyse_file(final: Path) -> dict[str, object]:
    """The floor of a built file, read from the file alone."""
    launcher, payload = split_final(final)
    _name, program = staticx_program(payload)
    with tempfile.TemporaryDirectory(prefix="asrctl-floor-") as tmp:
        exe = Path(tmp) / "program"
        exe.write_bytes(program)
        entries = pyinstaller_entries(exe)
    return analyse(launcher, payload, entries)


def report(floor: dict[str, object]) -> list[str]:
    """The report for people, one line per fact."""

    def joined(key: str, sep: str = ", ") -> str:
        value = floor[key]
        assert isinstance(value, list)
        return sep.join(value)

    lines = [
        f"needs GLIBC_{floor['glibc_needed']} at most ({joined('glibc_needed_by')}), satisfied by the bundled "
        f"glibc {floor['glibc_bundled']}: the host's C library is never used",
        f"minimum kernel {floor['kernel_min']} (from {joined('kernel_min_from')})",
        f"covers: {joined('targets_covered', '; ')}",
    ]
    if floor["targets_not_covered"]:
        lines.append(f"does NOT cover: {joined('targets_not_covered', '; ')} -- see docs/BINARY.md, 'Older kernels'")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The glibc and kernel floor of a file built by scripts/binary")
    parser.add_argument("file", type=Path, help="a built file, e.g. dist/asrctl")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    floor = analyse_file(args.file)
    if args.json:
        print(json.dumps(floor, indent=2))
    else:
        print("\n".join(report(floor)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
