"""The tar stream parser alone: bytes in, operations or a refusal out. No disk, no threads.

Every hostile case also checks that the parser emitted nothing for the refused member before refusing it (the
rule the writer relies on), and the good cases are fed in chunks of every awkward size, so headers and data
split across chunks come out the same.
"""

from __future__ import annotations

import tarfile

import pytest
from helpers_archives import MTIME, M, header, ordinary_members, pax_member, raw_member, tar_bytes

from asrctl.bundles.extract.limits import Limits
from asrctl.bundles.extract.tarstream import (
    BLOCK,
    EXT_HEADER_LIMIT,
    EXT_RUN_LIMIT,
    TRAILING_LIMIT,
    CloseFile,
    Hardlink,
    MakeDir,
    Op,
    OpenFile,
    Symlink,
    TarParser,
    Write,
    WriteFile,
)
from asrctl.errors import AsrctlError

Tree = dict[str, tuple[object, ...]]


def pieces(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def parse(data: bytes, size: int | None = None, limits: Limits = Limits()) -> tuple[list[Op], TarParser]:  # noqa: B008
    parser = TarParser(limits)
    ops: list[Op] = []
    for piece in pieces(data, size):
        ops += parser.feed(piece)
    parser.finish()
    return ops, parser


def tree(ops: list[Op]) -> Tree:
    """What a writer would make of the operations, in memory."""
    out: Tree = {}
    current: str | None = None
    for op in ops:
        if isinstance(op, MakeDir):
            assert op.rel not in out
            out[op.rel] = ("dir",)
        elif isinstance(op, WriteFile):
            assert op.rel not in out
            out[op.rel] = ("file", op.mode, bytes(op.data))
        elif isinstance(op, OpenFile):
            assert current is None and op.rel not in out
            current = op.rel
            out[op.rel] = ("file", op.mode, b"")
        elif isinstance(op, Write):
            assert current is not None
            kind, fmode, data = out[current]
            out[current] = (kind, fmode, bytes(data) + bytes(op.data))  # type: ignore[arg-type]
        elif isinstance(op, CloseFile):
            assert current is not None
            current = None
        elif isinstance(op, Symlink):
            out[op.rel] = ("symlink", op.target)
        elif isinstance(op, Hardlink):
            assert out[op.target][0] == "file", "a hardlink is emitted only after its target"
            out[op.rel] = ("hardlink", op.target)
    assert current is None, "a file was left open"
    return out


def refused(
    data: bytes,
    size: int | None = None,
    limits: Limits = Limits(),  # noqa: B008
) -> tuple[AsrctlError, list[Op]]:
    parser = TarParser(limits)
    ops: list[Op] = []
    with pytest.raises(AsrctlError) as err:
        for piece in pieces(data, size):
            ops += parser.feed(piece)
        parser.finish()
    return err.value, ops


def before_refusal(members: list[M], limits: Limits = Limits()) -> Tree:  # noqa: B008
    """The tree of the longest run of leading members that is a clean archive by itself: exactly what the parser
    may have emitted before it refused the next member."""
    for k in range(len(members) - 1, 0, -1):
        try:
            ops, _ = parse(tar_bytes(members[:k], end=False), limits=limits)
        except AsrctlError:
            continue
        return tree(ops)
    return {}


# --- good archives ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [None, 1, 7, 511, 512, 513, 1024, 4096])
def test_ordinary_bundle_in_chunks_of_any_size(size: int | None) -> None:
    ops, parser = parse(tar_bytes(ordinary_members()), size)
    got = tree(ops)
    assert got == {
        "install": ("file", 0o755, b"#!/bin/bash\necho install\n"),
        "OS_details.sh": ("file", 0o755, b"#!/bin/bash\necho UBUNTU-22.04-64\n"),
        "uninstall.sh": ("file", 0o755, b"#!/bin/bash\nexit 0\n"),
        "Vx": ("dir",),
        "Vx/bin": ("dir",),
        "Vx/bin/start": ("file", 0o755, b"#!/bin/sh\nexit 0\n"),
        "Vx/etc": ("dir",),
        "Vx/etc/drscout.conf": ("file", 0o640, b"[vxagent]\nHostId=\n"),
        "Vx/lib": ("dir",),
        "Vx/lib/libasr.so.1": ("file", 0o644, b"\x7fELF" + bytes(2000)),
        "Vx/lib/libasr.so": ("symlink", "libasr.so.1"),
        "Vx/bin/libasr.so": ("symlink", "../lib/libasr.so.1"),
        "Vx/lib/libasr-hard.so": ("hardlink", "Vx/lib/libasr.so.1"),
        "Vx/scripts": ("dir",),
        "Vx/scripts/empty.txt": ("file", 0o644, b""),
    }
    assert parser.members == 13
    assert parser.total == sum(len(m.data) for m in ordinary_members() if m.kind == "file")
    # Directory modes are kept aside for the end; an implicit directory gets 0755.
    assert parser.dir_modes == {"Vx": 0o755, "Vx/bin": 0o755, "Vx/etc": 0o750, "Vx/lib": 0o755, "Vx/scripts": 0o755}


def test_a_file_in_one_chunk_is_one_operation_and_a_split_one_is_open_write_close() -> None:
    data = tar_bytes([M("a", data=b"x" * 3000)])
    whole, _ = parse(data)
    assert [type(op) for op in whole] == [WriteFile]
    split, _ = parse(data, 1024)
    assert [type(op) for op in split] == [OpenFile, Write, Write, Write, Write, CloseFile]  # 512 + 1024 + 1024 + 440
    assert b"".join(bytes(op.data) for op in split if isinstance(op, Write)) == b"x" * 3000


def test_modes_are_neutralised() -> None:
    members = [
        M("suid", data=b"x", mode=0o4755),
        M("world", data=b"x", mode=0o666),
        M("ro", data=b"x", mode=0o444),
        M("d", "dir", mode=0o1777),
        M("locked", "dir", mode=0o500),
    ]
    ops, parser = parse(tar_bytes(members))
    modes = {op.rel: op.mode for op in ops if isinstance(op, WriteFile)}
    assert modes == {"suid": 0o755, "world": 0o644, "ro": 0o644}
    assert parser.dir_modes == {"d": 0o755, "locked": 0o700}


def test_mtime_is_kept_from_the_header_and_from_pax() -> None:
    members = [M("a", data=b"1"), *pax_member({"mtime": "1700000000.5"}, M("b", data=b"2"))]
    ops, _ = parse(tar_bytes(members))
    assert {op.rel: op.mtime for op in ops if isinstance(op, WriteFile)} == {"a": MTIME, "b": 1700000000.5}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_links(fmt: int) -> None:
    long = "Vx/" + "/".join(["d" * 60] * 4) + "/file.txt"
    link = "Vx/" + "l" * 120
    ops, _ = parse(tar_bytes([M(long, data=b"deep"), M(link, "symlink", link=long[3:])], fmt=fmt), 700)
    got = tree(ops)
    assert got[long] == ("file", 0o644, b"deep")
    assert got[link] == ("symlink", long[3:])


def test_dot_slash_names_root_entry_and_directory_entry_after_its_contents() -> None:
    members = [M(".", "dir"), M("./Vx/a", data=b"a"), M("./Vx/", "dir", mode=0o750), M("./install", data=b"x")]
    ops, parser = parse(tar_bytes(members))
    assert tree(ops) == {"Vx": ("dir",), "Vx/a": ("file", 0o644, b"a"), "install": ("file", 0o644, b"x")}
    assert parser.dir_modes == {"Vx": 0o750}


def test_hardlink_target_is_normalised() -> None:
    ops, _ = parse(tar_bytes([M("d/f", data=b"x"), M("h", "hardlink", link="./d//f")]))
    assert Hardlink("h", "d/f") in ops


def test_pax_global_header_applies_until_reset() -> None:
    glob = raw_member("pax_global_header", typeflag=tarfile.XGLTYPE, data=b"20 comment=anything\n")
    ops, _ = parse(tar_bytes([glob, M("a", data=b"1")]))
    assert tree(ops) == {"a": ("file", 0o644, b"1")}


def test_no_end_marker_is_accepted() -> None:
    ops, _ = parse(tar_bytes([M("a", data=b"1" * 512)], end=False))
    assert tree(ops) == {"a": ("file", 0o644, b"1" * 512)}


def test_padding_after_the_end_marker_is_accepted() -> None:
    ops, parser = parse(tar_bytes([M("a", data=b"1")]) + bytes(1 << 20), 4096)
    assert tree(ops) == {"a": ("file", 0o644, b"1")}
    assert parser.trailing > 1 << 20


# --- hostile archives: E032, nothing emitted for the member ------------------------------------------------

GLOBAL_DOTDOT = raw_member("pax_global_header", typeflag=tarfile.XGLTYPE, data=b"16 path=../evil\n")

UNSAFE: dict[str, tuple[list[M], str, str]] = {
    # names
    "dotdot first": ([M("ok", data=b"1"), M("../x", data=b"x")], "../x", "'..' in the path"),
    "dotdot inside": ([M("a/../../x", data=b"x")], "a/../../x", "'..' in the path"),
    "dotdot staying inside": ([M("a/../b", data=b"x")], "a/../b", "'..' in the path"),
    "absolute": ([M("/etc/cron.d/x", data=b"x")], "/etc/cron.d/x", "an absolute path"),
    "double slash": ([M("//etc/x", data=b"x")], "//etc/x", "an absolute path"),
    "pax path": (pax_member({"path": "../via-pax"}, M("innocent", data=b"x")), "../via-pax", "'..'"),
    "pax global path": ([GLOBAL_DOTDOT, M("innocent", data=b"x")], "../evil", "'..' in the path"),
    "NUL in pax path": (pax_member({"path": "a\x00b"}, M("i", data=b"x")), "a\x00b", "NUL"),
    "component too long": ([M("d/" + "z" * 256, data=b"x")], "d/" + "z" * 256, "component longer than 255"),
    "file named '.'": ([raw_member("./", data=b"x")], "./", "a file without a name"),
    # symlinks
    "symlink absolute": ([M("etc", "symlink", link="/etc")], "etc", "absolute path '/etc'"),
    "symlink up": ([M("a", "dir"), M("a/up", "symlink", link="../../x")], "a/up", "outside the bundle"),
    "symlink to ..": ([M("up", "symlink", link="..")], "up", "outside the bundle"),
    "symlink dotdot after a name": ([M("a", "symlink", link="b/../../x")], "a", "'..' after a name"),
    "symlink without target": ([M("s", "symlink", link="")], "s", "without a target"),
    "chain of links": (
        [
            M("x", "dir"),
            M("x/l1", "symlink", link="../l2"),
            M("l2", "symlink", link="x/l3"),
            M("x/l3", "symlink", link="../../o"),
        ],
        "x/l3",
        "outside the bundle",
    ),
    "through a symlink": (
        [M("real", "dir"), M("link", "symlink", link="real"), M("link/f", data=b"x")],
        "link/f",
        "through the symlink 'link'",
    ),
    "through a link to dot": (
        [M("here", "symlink", link="."), M("here/here/x", data=b"x")],
        "here/here/x",
        "through the symlink 'here'",
    ),
    "directory through a symlink": (
        [M("d", "dir"), M("s", "symlink", link="d"), M("s/sub", "dir")],
        "s/sub",
        "through the symlink 's'",
    ),
    "through a file": ([M("f", data=b"x"), M("f/g", data=b"x")], "f/g", "through the file 'f'"),
    # hardlinks
    "hardlink absolute": ([M("h", "hardlink", link="/etc/shadow")], "h", "a hardlink to the absolute path"),
    "hardlink dotdot": ([M("h", "hardlink", link="../x")], "h", "outside the bundle"),
    "hardlink to a later member": (
        [M("h", "hardlink", link="later"), M("later", data=b"x")],
        "h",
        "not an earlier file",
    ),
    "hardlink to a directory": ([M("d", "dir"), M("h", "hardlink", link="d")], "h", "not an earlier file"),
    "hardlink to a symlink": ([M("s", "symlink", link="x"), M("h", "hardlink", link="s")], "h", "not an earlier file"),
    "hardlink without target": ([M("h", "hardlink", link="")], "h", "without a target"),
    "rewrite through a hardlink": (
        [M("f", data=b"original"), M("h", "hardlink", link="f"), M("h", data=b"rewritten")],
        "h",
        "same name",
    ),
    # duplicates
    "duplicate file": ([M("install", data=b"good"), M("install", data=b"evil")], "install", "same name"),
    "duplicate via ./": ([M("install", data=b"good"), M("./install", data=b"evil")], "./install", "same name"),
    "duplicate via //": ([M("a/b", data=b"good"), M("a//b", data=b"evil")], "a//b", "same name"),
    "duplicate directory": ([M("d", "dir"), M("d", "dir")], "d", "same name"),
    "file where a directory was": ([M("d/f", data=b"x"), M("d", data=b"x")], "d", "same name"),
    "symlink replaced by a file": ([M("s", "symlink", link="t"), M("s", data=b"x")], "s", "same name"),
    "directory where a file was": ([M("f", data=b"x"), M("f", "dir")], "f", "same name"),
    # special files
    "character device": ([M("ok", data=b"1"), M("dev/c", "chr")], "dev/c", "a character device"),
    "block device": ([M("dev/b", "blk")], "dev/b", "a block device"),
    "FIFO": ([M("p", "fifo")], "p", "a FIFO"),
    "socket mode bits": ([raw_member("sock", mode=0o140644)], "sock", "a socket"),
    "device mode bits on a file": ([raw_member("cdev", mode=0o020644)], "cdev", "a character device"),
    "unknown type": ([raw_member("vol", typeflag=b"V")], "vol", "unsupported member type"),
    "GNU sparse type": ([raw_member("sp", typeflag=tarfile.GNUTYPE_SPARSE)], "sp", "a sparse file"),
    "pax sparse": (pax_member({"GNU.sparse.major": "1"}, M("sparse", data=b"x")), "sparse", "sparse"),
    # extended headers
    "pax header over 1 MB": (
        [raw_member("big-pax", typeflag=tarfile.XHDTYPE, data=b"x" * (EXT_HEADER_LIMIT + 1)), M("a", data=b"")],
        "big-pax",
        "extended header of 1048577 bytes",
    ),
    "GNU long link too long": (
        [raw_member("././@LongLink", typeflag=tarfile.GNUTYPE_LONGLINK, data=b"l" * 2000), M("s", "symlink")],
        "././@LongLink",
        "a link target of 2000 bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
@pytest.mark.parametrize("size", [None, BLOCK])
def test_unsafe_member_is_refused_before_anything_is_emitted_for_it(case: str, size: int | None) -> None:
    """Fed whole, the refusal returns no operation at all; fed block by block, the operations returned before it
    are exactly those of the members before the refused one."""
    members, member, words = UNSAFE[case]
    err, ops = refused(tar_bytes(members), size)
    assert err.code == "ASRCTL-E032", err.message
    assert err.exit_code == 5
    assert err.details.get("member") == member
    assert words in err.message, err.message
    assert "nothing was unpacked" in err.message
    assert tree(ops) == ({} if size is None else before_refusal(members)), "emitted for the refused member"


LIMITED: dict[str, tuple[list[M], Limits, str, str]] = {
    "members": ([M(f"f{i}", data=b"x") for i in range(5)], Limits(max_members=4), "f4", "more than 4 members"),
    "total": ([M("a", data=b"x" * 600), M("b", data=b"x" * 600)], Limits(max_total_bytes=1000), "b", "add up to"),
    "member": ([M("big", data=b"x" * 2000)], Limits(max_member_bytes=1000), "big", "per member"),
    "path": ([M("d/" + "x" * 70, data=b"x")], Limits(max_path_len=64), "d/" + "x" * 70, "longer than 64 bytes"),
    "GNU long name": ([M("y" * 200, data=b"x")], Limits(max_path_len=100), "././@LongLink", "a name of 201 bytes"),
    "symlink target": (
        [M("s", "symlink", link="t" * 80)],
        Limits(max_path_len=64),
        "s",
        "target that is too long",
    ),
}


@pytest.mark.parametrize("case", sorted(LIMITED))
def test_limits(case: str) -> None:
    members, limits, member, words = LIMITED[case]
    err, ops = refused(tar_bytes(members), BLOCK, limits=limits)
    assert err.code == "ASRCTL-E032" and err.details.get("member") == member
    assert words in err.message, err.message
    assert tree(ops) == before_refusal(members, limits)


def test_a_bomb_after_the_end_marker() -> None:
    err, _ = refused(tar_bytes([M("a", data=b"1")]) + bytes(TRAILING_LIMIT + BLOCK), 1 << 20)
    assert err.code == "ASRCTL-E032"
    assert "after the end of the tar archive" in err.message


# --- damaged streams: E033 ----------------------------------------------------------------------------------


def fix_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def negative_size_header(name: str) -> bytes:
    block = bytearray(header(name))
    block[124:136] = b"\xff" * 12  # base-256: -1
    return fix_checksum(block)


CORRUPT: dict[str, tuple[bytes, str]] = {
    "empty stream": (b"", "not a tar archive (the bundle holds no tar data)"),
    "starts with an empty block": (bytes(1024), "not a tar archive (it starts with an empty block)"),
    "first header invalid": (b"\x01" * 512, "not a tar archive (the first header is invalid)"),
    "later header invalid": (
        tar_bytes([M("a", data=b"x")], end=False) + b"\x01" * 512,
        "corrupted tar header at byte 1024",
    ),
    "ends inside a header": (tar_bytes([M("a", data=b"x")], end=False) + header("b")[:300], "ends inside a header"),
    "ends inside a member": (tar_bytes([M("a", data=b"x" * 5000)])[:2048], "ends inside member 'a'"),
    "ends inside the padding": (tar_bytes([M("a", data=b"x" * 100)])[:600], "ends inside member 'a'"),
    "negative size": (negative_size_header("neg") + bytes(1024), "negative size"),
    "pax size not a number": (
        tar_bytes(pax_member({"size": "lots"}, M("a", data=b"x"))),
        "pax size b'lots' is not a number",
    ),
    "malformed pax record": (
        tar_bytes([raw_member("p", typeflag=tarfile.XHDTYPE, data=b"99 path=x\n"), M("a", data=b"x")]),
        "a malformed pax extended header",
    ),
    "pax record without '='": (
        tar_bytes([raw_member("p", typeflag=tarfile.XHDTYPE, data=b"8 pathx\n"), M("a", data=b"x")]),
        "a malformed pax extended header",
    ),
    "too many extended headers in a row": (
        tar_bytes(
            [raw_member("p", typeflag=tarfile.XHDTYPE, data=b"11 path=ab\n") for _ in range(EXT_RUN_LIMIT + 1)]
            + [M("a", data=b"x")]
        ),
        f"{EXT_RUN_LIMIT + 1} extended headers in a row",
    ),
    "extended header then the end marker": (
        tar_bytes([raw_member("p", typeflag=tarfile.XHDTYPE, data=b"11 path=ab\n")]),
        "an extended header is followed by the end marker",
    ),
    "extended header then nothing": (
        tar_bytes([raw_member("p", typeflag=tarfile.XHDTYPE, data=b"11 path=ab\n")], end=False),
        "it ends after an extended header",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("size", [None, 100])
def test_damaged_stream_is_a_corrupted_bundle(case: str, size: int | None) -> None:
    data, words = CORRUPT[case]
    err, _ = refused(data, size)
    assert err.code == "ASRCTL-E033", err.message
    assert err.exit_code == 5
    assert words in err.message, err.message


def test_pax_record_helper_is_what_tarfile_writes() -> None:
    """The hand-made pax records above follow the '<length> key=value\\n' rule, or the test proves nothing."""
    good = tar_bytes([raw_member("p", typeflag=tarfile.XHDTYPE, data=b"11 path=ab\n"), M("a", data=b"x")])
    ops, _ = parse(good)
    assert tree(ops) == {"ab": ("file", 0o644, b"x")}
