"""The streaming extractor on good bundles, damaged files, digests, interruption and the stdlib fallback.

Every test that is not about one decompressor runs once per bundle format (gzip, LZMA, xz, plain tar), through
the ``compression`` fixture; the bundle is always named ``.tar.gz``, as Microsoft names its LZMA bundles too.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest
from helpers_archives import (
    FORMATS,
    MTIME,
    NAME,
    M,
    compress,
    flip_crc,
    gz,
    lzma_alone,
    not_a_tar,
    ordinary_members,
    random_gzip,
    raw_member,
    tar_bytes,
    truncate,
    write_bundle,
    write_raw,
    xz,
)

from asrctl.bundles.extract import Extracted, Limits, driver, extract, inflate, inflate_backend
from asrctl.errors import AsrctlError


@pytest.fixture(params=FORMATS)
def compression(request: pytest.FixtureRequest) -> str:
    """The bundle format of this run of the test."""
    return str(request.param)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(where the bundle is, an empty parent for the destination)."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    return src, out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_nothing_left(out: Path) -> None:
    assert list(out.iterdir()) == [], "a staging directory or a partial destination was left behind"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- good bundles -------------------------------------------------------------------------------------------


def test_ordinary_bundle_unpacks_with_exec_bits(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    dest = out / "b"
    got = extract(bundle, dest, expected_sha256=sha(bundle))
    assert got == Extracted(path=dest, sha256=sha(bundle), members=13, bytes=got.bytes, format=compression)
    assert got.bytes == sum(len(m.data) for m in ordinary_members() if m.kind == "file")
    assert mode(dest) == 0o700
    assert (dest / "install").read_bytes() == b"#!/bin/bash\necho install\n"
    for script in ("install", "OS_details.sh", "uninstall.sh", "Vx/bin/start"):
        assert mode(dest / script) == 0o755, script
    assert mode(dest / "Vx/etc/drscout.conf") == 0o640
    assert mode(dest / "Vx/etc") == 0o750
    assert mode(dest / "Vx/lib") == 0o755  # implicit directory
    assert os.readlink(dest / "Vx/lib/libasr.so") == "libasr.so.1"
    assert (dest / "Vx/bin/libasr.so").read_bytes().startswith(b"\x7fELF")
    assert os.stat(dest / "Vx/lib/libasr-hard.so").st_ino == os.stat(dest / "Vx/lib/libasr.so.1").st_ino
    assert (dest / "Vx/scripts/empty.txt").read_bytes() == b""
    assert int(os.stat(dest / "install").st_mtime) == MTIME
    assert sorted(p.name for p in out.iterdir()) == ["b"]  # no staging directory left


def test_without_expected_digest_still_reports_it(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    assert extract(bundle, out / "b", expected_sha256=None).sha256 == sha(bundle)


def test_expected_digest_in_upper_case_is_accepted(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    extract(bundle, out / "b", expected_sha256=sha(bundle).upper())
    assert (out / "b/install").exists()


def test_dot_slash_names_and_root_entry(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    members = [M(".", "dir"), M("./install", data=b"x", mode=0o755), M("./Vx/", "dir"), M("./Vx/a", data=b"a")]
    bundle = write_bundle(src, members, compression=compression)
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/install").read_bytes() == b"x"
    assert (out / "b/Vx/a").read_bytes() == b"a"
    assert mode(out / "b") == 0o700


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_in_gnu_and_pax_form(dirs: tuple[Path, Path], compression: str, fmt: int) -> None:
    src, out = dirs
    long = "Vx/" + "/".join(["d" * 60] * 4) + "/file.txt"
    link = "Vx/" + "l" * 120
    members = [M(long, data=b"deep"), M(link, "symlink", link=long[3:])]
    bundle = write_bundle(src, members, fmt=fmt, compression=compression)
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b" / long).read_bytes() == b"deep"
    assert os.readlink(out / "b" / link) == long[3:]


def test_big_files_span_many_chunks(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    big = os.urandom(inflate.INFLATE_SIZE + 12345) + bytes(3 * inflate.INFLATE_SIZE)
    members = [M("a", data=b"1"), M("big.bin", data=big, mode=0o755), M("z", data=b"2" * 700)]
    bundle = write_bundle(src, members, compression=compression)
    got = extract(bundle, out / "b", expected_sha256=sha(bundle))
    assert (out / "b/big.bin").read_bytes() == big
    assert (out / "b/z").read_bytes() == b"2" * 700
    assert got.bytes == len(big) + 701


def test_many_small_files(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    members = [M(f"d{i % 7}/f{i}", data=str(i).encode() * (i % 50)) for i in range(600)]
    bundle = write_bundle(src, members, compression=compression)
    got = extract(bundle, out / "b", expected_sha256=None)
    assert got.members == 600
    for i in (0, 1, 77, 599):
        assert (out / f"b/d{i % 7}/f{i}").read_bytes() == str(i).encode() * (i % 50)


@pytest.mark.parametrize(("writers", "compression"), [(1, "gzip"), (2, "gzip"), (3, "gzip"), (2, "lzma"), (2, "tar")])
def test_writer_threads_keep_each_members_dependencies(
    dirs: tuple[Path, Path], monkeypatch, writers: int, compression: str
) -> None:
    """Files are spread over writer threads by directory; hardlinks across directories, files spanning chunks
    and directories created late must still come out right (also with LZMA's and plain tar's piece sizes; xz
    inflates like LZMA)."""
    monkeypatch.setattr(driver, "WRITERS", writers)
    src, out = dirs

    def big(i: int) -> bytes:
        # LZMA compresses random bytes at ~3 MB/s: its run gets distinct, compressible files of the same size.
        if compression == "lzma":
            return (b"%d:" % i * (inflate.INFLATE_SIZE // 3))[: inflate.INFLATE_SIZE // 3]
        return os.urandom(inflate.INFLATE_SIZE // 3)

    members: list[M] = []
    for i in range(30):
        members += [
            M(f"d{i}/f", data=os.urandom(300)),
            M(f"e{i % 4}/h{i}", "hardlink", link=f"d{i}/f"),
            M(f"d{i}/big", data=big(i)),
            M(f"d{i}/sub", "dir", mode=0o750),
            M(f"d{i}/sub/s", "symlink", link="../f"),
        ]
    bundle = write_bundle(src, members, compression=compression)
    extract(bundle, out / "b", expected_sha256=None)
    b = out / "b"
    for i in range(30):
        assert os.stat(b / f"e{i % 4}/h{i}").st_ino == os.stat(b / f"d{i}/f").st_ino
        assert (b / f"d{i}/big").read_bytes() == members[5 * i + 2].data
        assert (b / f"d{i}/sub/s").read_bytes() == members[5 * i].data
        assert mode(b / f"d{i}/sub") == 0o750


def test_concatenated_gzip_members(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    tar = tar_bytes(ordinary_members())
    cut = 1024  # on a block boundary
    bundle = write_raw(src, gz(tar[:cut]) + gz(tar[cut:]) + b"\0" * 100)
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/install").exists()


def test_archive_without_end_marker_is_accepted(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_raw(src, compress(tar_bytes([M("a", data=b"1" * 512)], end=False), compression))
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/a").read_bytes() == b"1" * 512


def test_special_bits_and_group_world_write_are_cleared(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    members = [
        M("suid", data=b"x", mode=0o4755),
        M("sgid", data=b"x", mode=0o2775),
        M("world", data=b"x", mode=0o666),
        M("all", data=b"x", mode=0o7777),
        M("readonly", data=b"x", mode=0o444),
        M("sticky", "dir", mode=0o1777),
        M("locked", "dir", mode=0o500),
        M("locked/inside", data=b"still written"),
    ]
    bundle = write_bundle(src, members, compression=compression)
    extract(bundle, out / "b", expected_sha256=None)
    b = out / "b"
    assert mode(b / "suid") == 0o755
    assert mode(b / "sgid") == 0o755
    assert mode(b / "world") == 0o644
    assert mode(b / "all") == 0o755
    assert mode(b / "readonly") == 0o644  # the owner keeps read/write
    assert mode(b / "sticky") == 0o755
    assert mode(b / "locked") == 0o700  # set last, so it could be filled
    assert (b / "locked/inside").read_bytes() == b"still written"


def test_owner_is_never_taken_from_the_archive(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(
        src, [M("f", data=b"x", uid=4242, gid=4343), M("d", "dir", uid=4242, gid=4343)], compression=compression
    )
    extract(bundle, out / "b", expected_sha256=None)
    for rel in ("f", "d"):
        st = os.lstat(out / "b" / rel)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


# --- digests, destination -----------------------------------------------------------------------------------


def test_digest_mismatch_names_both_and_leaves_nothing(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    wrong = "0" * 64
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=wrong)
    assert err.value.code == "ASRCTL-E030"
    assert err.value.exit_code == 5
    assert wrong in err.value.message and sha(bundle) in err.value.message
    assert err.value.details["expected"] == wrong and err.value.details["actual"] == sha(bundle)
    assert_nothing_left(out)


def test_bad_expected_digest_is_a_usage_error(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256="abc")
    assert err.value.code == "ASRCTL-E002"
    assert_nothing_left(out)


def test_existing_destination_is_refused_and_untouched(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    (out / "b").mkdir()
    (out / "b/keep").write_text("mine")
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E037"
    assert [p.name for p in out.iterdir()] == ["b"]
    assert (out / "b/keep").read_text() == "mine"


def test_destination_appearing_meanwhile_is_not_replaced(
    dirs: tuple[Path, Path], compression: str, monkeypatch
) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    real = driver._Extraction.run

    def run_then_race(self):  # type: ignore[no-untyped-def]
        result = real(self)
        (out / "b").mkdir()  # an empty directory: plain rename(2) would silently replace it
        return result

    monkeypatch.setattr(driver._Extraction, "run", run_then_race)
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E037"
    assert [p.name for p in out.iterdir()] == ["b"]
    assert list((out / "b").iterdir()) == []


def test_missing_parent_is_refused(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "no/such/b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E002"
    assert_nothing_left(out)


def test_missing_bundle(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    with pytest.raises(AsrctlError) as err:
        extract(src / NAME, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E022"
    assert_nothing_left(out)


def test_staging_directory_is_private_and_beside_dest(dirs: tuple[Path, Path], compression: str, monkeypatch) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    seen: list[tuple[Path, int]] = []
    real = driver._Extraction.run

    def spy(self):  # type: ignore[no-untyped-def]
        seen.append((self.staging, mode(self.staging)))
        return real(self)

    monkeypatch.setattr(driver._Extraction, "run", spy)
    extract(bundle, out / "b", expected_sha256=None)
    staging, staging_mode = seen[0]
    assert staging.parent == out and staging_mode == 0o700
    assert not staging.exists()


# --- damaged files: ASRCTL-E033 -----------------------------------------------------------------------------


def _good_tar() -> bytes:
    return tar_bytes(ordinary_members() + [M("pad.bin", data=os.urandom(40_000))])


def _good_gz() -> bytes:
    return gz(_good_tar())


CORRUPT = {
    "zero-byte file": (lambda: b"", "empty file"),
    "not gzip": (lambda: b"this is not a bundle\n" * 10, "not a bundle format asrctl knows"),
    "only zeros": (lambda: bytes(4096), "it starts with 512 zero bytes"),
    "truncated gzip": (lambda: truncate(_good_gz(), 0.6), "truncated"),
    "truncated gzip trailer": (lambda: _good_gz()[:-3], "truncated"),
    "bad CRC": (lambda: flip_crc(_good_gz()), "CRC"),
    "not a tar": (lambda: random_gzip(), "not a tar archive"),
    "empty gzip": (lambda: gz(b""), "not a tar archive"),
    "tar cut inside a member": (lambda: gz(tar_bytes([M("a", data=b"x" * 5000)])[:2048]), "inside member 'a'"),
    "garbage after gzip": (lambda: _good_gz() + b"GARBAGE!", "after the end of the gzip stream"),
    "bad header checksum": (
        lambda: gz(tar_bytes([M("a", data=b"x")])[: 512 * 2] + b"\x01" * 512 + bytes(1024)),
        "corrupted tar header",
    ),
}


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def _xz_block_check_at(data: bytes) -> int:
    """Where the CRC64 of the (only) block of an xz stream is: just before the index, which the footer locates."""
    backward = (int.from_bytes(data[-8:-4], "little") + 1) * 4
    return len(data) - 12 - backward - 8


CORRUPT_BY_FORMAT = {
    "lzma": {
        "truncated LZMA": (lambda: truncate(lzma_alone(_good_tar()), 0.6), "truncated: the LZMA data stops"),
        "LZMA cut inside its header": (lambda: lzma_alone(_good_tar())[:12], "not a bundle format asrctl knows"),
        "LZMA around something that is not a tar": (lambda: not_a_tar("lzma"), "not a tar archive"),
        "empty LZMA": (lambda: lzma_alone(b""), "not a tar archive"),
        "garbage after LZMA": (lambda: lzma_alone(_good_tar()) + b"GARBAGE!", "after the end of the LZMA stream"),
        "zeros after LZMA": (lambda: lzma_alone(_good_tar()) + bytes(8), "after the end of the LZMA stream"),
        "LZMA tar cut inside a member": (
            lambda: lzma_alone(tar_bytes([M("a", data=b"x" * 5000)])[:2048]),
            "inside member 'a'",
        ),
    },
    "xz": {
        "truncated xz": (lambda: truncate(xz(_good_tar()), 0.6), "truncated: the xz data stops"),
        "xz without its footer": (lambda: xz(_good_tar())[:-12], "truncated: the xz data stops"),
        "xz around something that is not a tar": (lambda: not_a_tar("xz"), "not a tar archive"),
        "garbage after xz": (lambda: xz(_good_tar()) + b"GARBAGE!", "after the end of the xz stream"),
        "xz padding not a multiple of 4": (lambda: xz(_good_tar()) + bytes(3), "after the end of the xz stream"),
        "xz block check (CRC64) wrong": (
            lambda: _flip(xz(_good_tar()), _xz_block_check_at(xz(_good_tar()))),
            "invalid xz data: the data is damaged",
        ),
        "xz footer CRC32 wrong": (lambda: _flip(xz(_good_tar()), -10), "invalid xz data: the data is damaged"),
    },
    "tar": {
        "truncated tar": (lambda: truncate(_good_tar(), 0.6), "truncated tar data"),
        "tar cut inside a header": (lambda: _good_tar()[:1124], "truncated tar data: it ends inside a header"),
    },
    "unknown": {
        "an HTML page": (
            lambda: b"<!DOCTYPE html><html><body>Sign in to continue</body></html>\n" * 20,
            "it starts with 3c 21 44 4f 43 54 59 50 ('<!DOCTYPE html><')",
        ),
        "a zip file": (lambda: b"PK\x03\x04\x14\x00" + os.urandom(2000), "it starts with 50 4b 03 04 14 00"),
        "bzip2": (lambda: b"BZh91AY&SY" + os.urandom(2000), "not a bundle format asrctl knows"),
        "zstd": (lambda: b"\x28\xb5\x2f\xfd" + os.urandom(2000), "not a bundle format asrctl knows"),
        "a tiny file": (lambda: b"\x1f", "it starts with 1f ('.')"),
    },
}
CORRUPT_ALL = {("gzip", case): make for case, make in CORRUPT.items()} | {
    (fmt, case): make for fmt, cases in CORRUPT_BY_FORMAT.items() for case, make in cases.items()
}


@pytest.mark.parametrize(("fmt", "case"), sorted(CORRUPT_ALL))
def test_damaged_file_is_a_corrupted_bundle(dirs: tuple[Path, Path], fmt: str, case: str) -> None:
    src, out = dirs
    make, words = CORRUPT_ALL[fmt, case]
    bundle = write_raw(src, make())
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E033", err.value.message
    assert err.value.exit_code == 5
    assert words in err.value.message
    assert err.value.message.startswith(f"{NAME}"), "the file is named"
    assert "Copy the bundle again" in err.value.remedy
    assert_nothing_left(out)


def test_tar_damage_is_found_in_every_format(dirs: tuple[Path, Path], compression: str) -> None:
    """Damage inside the tar stream is the parser's to find, whatever carried it."""
    src, out = dirs
    cases = {
        "cut inside a member": (tar_bytes([M("a", data=b"x" * 5000)])[:2048], "inside member 'a'"),
        "bad header checksum": (
            tar_bytes([M("a", data=b"x")])[: 512 * 2] + b"\x01" * 512 + bytes(1024),
            "corrupted tar header at byte 1024",
        ),
    }
    for i, (data, words) in enumerate(cases.values()):
        bundle = write_raw(src / str(i), compress(data, compression))
        with pytest.raises(AsrctlError) as err:
            extract(bundle, out / "b", expected_sha256=None)
        assert err.value.code == "ASRCTL-E033" and words in err.value.message, err.value.message
        assert err.value.details["format"] == compression
        assert_nothing_left(out)


@pytest.mark.parametrize(
    "tail",
    [b"", bytes(4), bytes(1024)],
    ids=["nothing", "4 zero bytes", "1 KB of zeros"],
)
def test_xz_concatenated_streams_and_stream_padding_are_accepted(dirs: tuple[Path, Path], tail: bytes) -> None:
    """As ``xz -d`` accepts them: streams one after another, zeros in multiples of 4 between and after."""
    src, out = dirs
    tar = tar_bytes(ordinary_members())
    bundle = write_raw(src, xz(tar[:1024]) + tail + xz(tar[1024:]) + tail)
    got = extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/install").exists() and got.format == "xz"


def test_plain_tar_ignores_data_after_its_end_marker(dirs: tuple[Path, Path]) -> None:
    """As GNU tar does (up to 16 MB; more is a bomb, see test_extract_unsafe)."""
    src, out = dirs
    bundle = write_raw(src, tar_bytes(ordinary_members()) + b"GARBAGE!" * 100)
    got = extract(bundle, out / "b", expected_sha256=None)
    assert got.format == "tar" and (out / "b/install").read_bytes() == b"#!/bin/bash\necho install\n"


@pytest.mark.parametrize("compression", ["lzma", "xz"])
def test_damaged_lzma_is_never_unpacked_with_a_digest(dirs: tuple[Path, Path], compression: str) -> None:
    """LZMA-alone has no checksum of its own (its range decoder notices much damage, not all of it); xz has
    CRC64. With a digest, no damaged copy is ever unpacked, whichever check catches it."""
    src, out = dirs
    good = compress(tar_bytes([M("a", data=os.urandom(3000)), M("b", data=bytes(range(256)) * 40)]), compression)
    expected = hashlib.sha256(good).hexdigest()
    codes = set()
    for at in range(20, len(good), max(1, len(good) // 40)):
        with pytest.raises(AsrctlError) as err:
            extract(write_raw(src / str(at), _flip(good, at)), out / "b", expected_sha256=expected)
        assert err.value.code in ("ASRCTL-E030", "ASRCTL-E032", "ASRCTL-E033"), err.value.message
        codes.add(err.value.code)
        assert_nothing_left(out)
    assert "ASRCTL-E033" in codes  # the decoder itself refused some


def test_lzma_header_asking_for_a_huge_dictionary_is_refused(dirs: tuple[Path, Path]) -> None:
    """liblzma would allocate what the header asks for (1 GiB here); the memory limit refuses it first."""
    src, out = dirs
    good = lzma_alone(tar_bytes(ordinary_members()))
    bomb = good[:1] + (1 << 30).to_bytes(4, "little") + good[5:]
    with pytest.raises(AsrctlError) as err:
        extract(write_raw(src, bomb), out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E032" and err.value.exit_code == 5
    assert "1024 MiB dictionary" in err.value.message and "more than 96 MiB" in err.value.message
    assert err.value.message.startswith(NAME)
    assert_nothing_left(out)


def test_a_directory_is_not_a_bundle(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    (src / NAME).mkdir()
    with pytest.raises(AsrctlError) as err:
        extract(src / NAME, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E033"
    assert_nothing_left(out)


# --- failures half-way: everything is cleaned up ------------------------------------------------------------


class _InterruptingOut:
    """An Output stand-in whose progress handle raises KeyboardInterrupt (Ctrl-C) after ``after`` calls."""

    def __init__(self, after: int) -> None:
        self.after = after

    def progress(self, description: str, total: int):  # type: ignore[no-untyped-def]
        import contextlib

        outer = self

        class Handle:
            calls = 0

            def advance(self, n: int) -> None:
                Handle.calls += 1
                if Handle.calls > outer.after:
                    raise KeyboardInterrupt

        return contextlib.nullcontext(Handle())


def test_ctrl_c_removes_the_staging_directory(dirs: tuple[Path, Path], compression: str) -> None:
    src, out = dirs
    members = [M(f"f{i}", data=os.urandom(20_000)) for i in range(60)]  # over 1 MB: several reads
    bundle = write_bundle(src, members, compression=compression)
    import signal

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        extract(bundle, out / "b", expected_sha256=None, out=_InterruptingOut(after=2))  # type: ignore[arg-type]
    assert_nothing_left(out)
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works again after the cleanup


def test_writer_failure_is_reported_and_cleaned_up(dirs: tuple[Path, Path], compression: str, monkeypatch) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members(), compression=compression)
    real_open = os.open

    def full_disk(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if path == "drscout.conf":
            raise OSError(28, "No space left on device")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", full_disk)
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    monkeypatch.undo()
    assert err.value.code == "ASRCTL-E041"
    assert "Vx/etc/drscout.conf" in err.value.message
    assert_nothing_left(out)


def test_no_worker_threads_survive(dirs: tuple[Path, Path]) -> None:
    import threading

    src, out = dirs
    bundle = write_raw(src, flip_crc(_good_gz()))
    with pytest.raises(AsrctlError):
        extract(bundle, out / "b", expected_sha256=None)
    assert not [t for t in threading.enumerate() if t.name.startswith("asrctl-")]


# --- the decompressor ---------------------------------------------------------------------------------------


def test_isal_is_used_when_installed() -> None:
    pytest.importorskip("isal")
    assert inflate_backend() == "isal"


def test_falls_back_to_the_stdlib_without_isal(dirs: tuple[Path, Path], monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "isal", None)  # import isal → ImportError, as on a host without it
    monkeypatch.delitem(sys.modules, "isal.igzip_lib", raising=False)
    assert inflate_backend() == "zlib"
    src, out = dirs
    bundle = write_bundle(src, ordinary_members() + [M("big", data=os.urandom(3 << 20))])
    got = extract(bundle, out / "b", expected_sha256=sha(bundle))
    assert (out / "b/install").exists() and got.sha256 == sha(bundle)
    with pytest.raises(AsrctlError) as err:
        extract(write_raw(src / "bad", flip_crc(_good_gz())), out / "c", expected_sha256=None)
    assert err.value.code == "ASRCTL-E033" and "CRC" in err.value.message


def test_stdlib_can_be_forced(monkeypatch) -> None:
    monkeypatch.setenv("ASRCTL_GZIP", "stdlib")
    assert inflate_backend() == "zlib"


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_gzip_bomb_is_inflated_in_bounded_pieces(backend: str) -> None:
    if backend == "isal":
        pytest.importorskip("isal")
    member = inflate.IsalMember if backend == "isal" else inflate.ZlibMember
    inflater = inflate.GzipInflater(member)
    bomb = gz(bytes(64 << 20), level=9)  # 64 MB of zeros in about 64 KB
    sizes = [len(piece) for piece in inflater.feed(bomb)]
    inflater.finish()
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= inflate.INFLATE_SIZE


@pytest.mark.parametrize("piece", [None, 100])
@pytest.mark.parametrize("compression", ["lzma", "xz"])
def test_lzma_bomb_is_inflated_in_bounded_pieces(compression: str, piece: int | None) -> None:
    """64 MB of zeros in about 10 KB: liblzma is asked for at most 1 MB per call, as zlib and ISA-L are."""
    bomb = compress(bytes(64 << 20), compression)
    assert len(bomb) < 64 << 10
    inflater = inflate.LzmaInflater(compression)
    chunks = [bomb] if piece is None else [bomb[i : i + piece] for i in range(0, len(bomb), piece)]
    sizes = [len(out) for chunk in chunks for out in inflater.feed(chunk)]
    inflater.finish()
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= inflate.INFLATE_SIZE


def test_limits_defaults_fit_real_bundles() -> None:
    limits = Limits()
    assert limits.max_members >= 10_000
    assert limits.max_total_bytes >= 4 << 30
    assert limits.max_member_bytes >= 2 << 30
    assert limits.max_path_len >= 255


def test_raw_member_helper_round_trips(dirs: tuple[Path, Path], compression: str) -> None:
    """The hand-made headers the unsafe-archive tests rely on are valid tar."""
    src, out = dirs
    bundle = write_raw(src, compress(tar_bytes([raw_member("plain", data=b"hello")]), compression))
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/plain").read_bytes() == b"hello"
