"""Reading a built ``dist/asrctl`` back apart, layer by layer.

    dist/asrctl = [launcher (static ELF)] [payload: the staticx executable] [trailer: magic, offset, size]
    staticx executable = [staticx bootloader] + ELF section .staticx.archive: a tar of the dynamic loader, glibc,
                         the libraries, and the PyInstaller program (the member that .staticx.prog links to)
    PyInstaller program = [bootloader] + CArchive: binaries, data, entry scripts and the PYZ of every module

The floor report reads the ELF files in every layer; the tests read the PYZ to prove what is (and what is not)
frozen into the product. Reading the file we ship, not the build's intermediate files, is the point: the
launcher's trailer format lives here and in launcher.c only.
"""

from __future__ import annotations

import io
import marshal
import struct
import tarfile
from pathlib import Path
from types import CodeType

from binary.common import fail

TRAILER_MAGIC = b"ASRCTL-LAUNCHER1"
TRAILER = struct.Struct("<16sQQ")  # magic, payload offset, payload size (little-endian, as launcher.c reads it)
STATICX_SECTION = ".staticx.archive"
STATICX_PROG_LINK = ".staticx.prog"


def trailer(launcher_size: int, payload_size: int) -> bytes:
    return TRAILER.pack(TRAILER_MAGIC, launcher_size, payload_size)


def split_final(path: Path) -> tuple[bytes, bytes]:
    """(launcher, payload) of a built file, checked against its trailer as the launcher checks it."""
    data = path.read_bytes()
    if len(data) < TRAILER.size:
        raise fail(f"{path} is too short to hold a launcher trailer")
    magic, offset, size = TRAILER.unpack(data[-TRAILER.size :])
    if magic != TRAILER_MAGIC:
        raise fail(f"{path} has no launcher trailer (not built by scripts/binary, or stripped)")
    if offset + size + TRAILER.size != len(data):
        raise fail(f"{path}: the trailer's payload offset and size do not match the file size")
    return data[:offset], data[offset : offset + size]


def _staticx_tar(sx: bytes) -> tarfile.TarFile:
    from elftools.elf.elffile import ELFFile

    section = ELFFile(io.BytesIO(sx)).get_section_by_name(STATICX_SECTION)
    if section is None:
        raise fail(f"no {STATICX_SECTION} section: not a staticx executable")
    return tarfile.open(fileobj=io.BytesIO(section.data()), mode="r:")


def staticx_members(sx: bytes) -> dict[str, bytes]:
    """Regular files in the archive of a staticx executable (uncompressed: the build uses --no-compress)."""
    members: dict[str, bytes] = {}
    with _staticx_tar(sx) as tar:
        for member in tar.getmembers():
            if member.isreg():
                fh = tar.extractfile(member)
                assert fh is not None
                members[member.name] = fh.read()
    return members


def staticx_program(sx: bytes) -> tuple[str, bytes]:
    """(name, bytes) of the program a staticx executable runs: the member its .staticx.prog link names."""
    with _staticx_tar(sx) as tar:
        link = tar.getmember(STATICX_PROG_LINK)
        if not link.issym():
            raise fail(f"{STATICX_PROG_LINK} in the staticx archive is not a link")
        fh = tar.extractfile(link.linkname)
        if fh is None:
            raise fail(f"{STATICX_PROG_LINK} links to {link.linkname!r}, which is not a file in the archive")
        return link.linkname, fh.read()


def pyinstaller_program(final: Path, into: Path) -> Path:
    """Write the PyInstaller program inside a built file to the directory ``into`` (PyInstaller's readers need
    a file name) and return its path."""
    _launcher, payload = split_final(final)
    name, data = staticx_program(payload)
    out = into / Path(name).name
    out.write_bytes(data)
    return out


def pyinstaller_entries(exe: Path) -> dict[str, tuple[str, bytes | None]]:
    """name -> (typecode, data for binaries ``b``) of the CArchive appended to a PyInstaller program."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(exe))
    out: dict[str, tuple[str, bytes | None]] = {}
    for name, entry in reader.toc.items():
        typecode = entry[-1]
        out[name] = (typecode, reader.extract(name) if typecode == "b" else None)
    return out


def frozen_code(exe: Path) -> dict[str, CodeType | None]:
    """Every module frozen into a PyInstaller program -- the PYZ's modules and packages, and the entry scripts
    -- as code objects (None for namespace packages and data)."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(exe))
    code: dict[str, CodeType | None] = {}
    for name, entry in reader.toc.items():
        typecode = entry[-1]
        if typecode == "z":  # the PYZ: pure modules, marshalled and zlib-compressed
            pyz = reader.open_embedded_archive(name)
            for module, (item_type, _offset, _length) in pyz.toc.items():
                obj = pyz.extract(module) if item_type in (0, 1) else None  # 0 module, 1 package
                code[module] = obj if isinstance(obj, CodeType) else None
        elif typecode == "s":  # entry scripts (the program's __main__, runtime hooks): marshalled code
            data = reader.extract(name)
            obj = marshal.loads(data) if isinstance(data, bytes) else None
            code[f"<script {name}>"] = obj if isinstance(obj, CodeType) else None
    if not code:
        raise fail(f"{exe}: no PYZ archive and no scripts found")
    return code


def class_names(code: CodeType) -> set[str]:
    """Names of the classes a module defines anywhere (at top level, in functions, nested): each class body
    is a code object of its own, named after the class, among the constants of the code around it. Test
    doubles would show up here even under another module's name."""
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, CodeType):
                if _is_class_body(const):
                    names.add(const.co_name)
                stack.append(const)
    return names


def _is_class_body(code: CodeType) -> bool:
    # A class body stores __module__ and __qualname__ first thing; functions, lambdas and comprehensions never
    # assign those names.
    return "__qualname__" in code.co_names and "__module__" in code.co_names
