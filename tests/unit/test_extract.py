"""The streaming extractor on good bundles, damaged files, digests, interruption and the stdlib fallback."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest
from helpers_archives import (
    MTIME,
    NAME,
    M,
    flip_crc,
    gz,
    ordinary_members,
    random_gzip,
    raw_member,
    tar_bytes,
    truncate,
    write_bundle,
    write_raw,
)

from asrctl.bundles.extract import Extracted, Limits, driver, extract, inflate, inflate_backend
from asrctl.errors import AsrctlError


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


def test_ordinary_bundle_unpacks_with_exec_bits(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    dest = out / "b"
    got = extract(bundle, dest, expected_sha256=sha(bundle))
    assert got == Extracted(path=dest, sha256=sha(bundle), members=13, bytes=got.bytes)
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


def test_without_expected_digest_still_reports_it(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    assert extract(bundle, out / "b", expected_sha256=None).sha256 == sha(bundle)


def test_expected_digest_in_upper_case_is_accepted(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    extract(bundle, out / "b", expected_sha256=sha(bundle).upper())
    assert (out / "b/install").exists()


def test_dot_slash_names_and_root_entry(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    members = [M(".", "dir"), M("./install", data=b"x", mode=0o755), M("./Vx/", "dir"), M("./Vx/a", data=b"a")]
    bundle = write_bundle(src, members)
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/install").read_bytes() == b"x"
    assert (out / "b/Vx/a").read_bytes() == b"a"
    assert mode(out / "b") == 0o700


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_in_gnu_and_pax_form(dirs: tuple[Path, Path], fmt: int) -> None:
    src, out = dirs
    long = "Vx/" + "/".join(["d" * 60] * 4) + "/file.txt"
    link = "Vx/" + "l" * 120
    members = [M(long, data=b"deep"), M(link, "symlink", link=long[3:])]
    bundle = write_bundle(src, members, fmt=fmt)
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b" / long).read_bytes() == b"deep"
    assert os.readlink(out / "b" / link) == long[3:]


def test_big_files_span_many_chunks(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    big = os.urandom(inflate.INFLATE_SIZE + 12345) + bytes(3 * inflate.INFLATE_SIZE)
    members = [M("a", data=b"1"), M("big.bin", data=big, mode=0o755), M("z", data=b"2" * 700)]
    bundle = write_bundle(src, members)
    got = extract(bundle, out / "b", expected_sha256=sha(bundle))
    assert (out / "b/big.bin").read_bytes() == big
    assert (out / "b/z").read_bytes() == b"2" * 700
    assert got.bytes == len(big) + 701


def test_many_small_files(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    members = [M(f"d{i % 7}/f{i}", data=str(i).encode() * (i % 50)) for i in range(600)]
    bundle = write_bundle(src, members)
    got = extract(bundle, out / "b", expected_sha256=None)
    assert got.members == 600
    for i in (0, 1, 77, 599):
        assert (out / f"b/d{i % 7}/f{i}").read_bytes() == str(i).encode() * (i % 50)


@pytest.mark.parametrize("writers", [1, 2, 3])
def test_writer_threads_keep_each_members_dependencies(dirs: tuple[Path, Path], monkeypatch, writers: int) -> None:
    """Files are spread over writer threads by directory; hardlinks across directories, files spanning chunks
    and directories created late must still come out right."""
    monkeypatch.setattr(driver, "WRITERS", writers)
    src, out = dirs
    members: list[M] = []
    for i in range(30):
        members += [
            M(f"d{i}/f", data=os.urandom(300)),
            M(f"e{i % 4}/h{i}", "hardlink", link=f"d{i}/f"),
            M(f"d{i}/big", data=os.urandom(inflate.INFLATE_SIZE // 3)),
            M(f"d{i}/sub", "dir", mode=0o750),
            M(f"d{i}/sub/s", "symlink", link="../f"),
        ]
    bundle = write_bundle(src, members)
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


def test_archive_without_end_marker_is_accepted(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_raw(src, gz(tar_bytes([M("a", data=b"1" * 512)], end=False)))
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/a").read_bytes() == b"1" * 512


def test_special_bits_and_group_world_write_are_cleared(dirs: tuple[Path, Path]) -> None:
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
    bundle = write_bundle(src, members)
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


def test_owner_is_never_taken_from_the_archive(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, [M("f", data=b"x", uid=4242, gid=4343), M("d", "dir", uid=4242, gid=4343)])
    extract(bundle, out / "b", expected_sha256=None)
    for rel in ("f", "d"):
        st = os.lstat(out / "b" / rel)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


# --- digests, destination -----------------------------------------------------------------------------------


def test_digest_mismatch_names_both_and_leaves_nothing(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    wrong = "0" * 64
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=wrong)
    assert err.value.code == "ASRCTL-E030"
    assert err.value.exit_code == 5
    assert wrong in err.value.message and sha(bundle) in err.value.message
    assert err.value.details["expected"] == wrong and err.value.details["actual"] == sha(bundle)
    assert_nothing_left(out)


def test_bad_expected_digest_is_a_usage_error(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256="abc")
    assert err.value.code == "ASRCTL-E002"
    assert_nothing_left(out)


def test_existing_destination_is_refused_and_untouched(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
    (out / "b").mkdir()
    (out / "b/keep").write_text("mine")
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E037"
    assert [p.name for p in out.iterdir()] == ["b"]
    assert (out / "b/keep").read_text() == "mine"


def test_destination_appearing_meanwhile_is_not_replaced(dirs: tuple[Path, Path], monkeypatch) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
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


def test_missing_parent_is_refused(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
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


def test_staging_directory_is_private_and_beside_dest(dirs: tuple[Path, Path], monkeypatch) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
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


def _good_gz() -> bytes:
    return gz(tar_bytes(ordinary_members() + [M("pad.bin", data=os.urandom(40_000))]))


CORRUPT = {
    "zero-byte file": (lambda: b"", "empty file"),
    "not gzip": (lambda: b"this is not a bundle\n" * 10, "not a gzip file"),
    "only zeros": (lambda: bytes(4096), "not a gzip file"),
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


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_damaged_file_is_a_corrupted_bundle(dirs: tuple[Path, Path], case: str) -> None:
    src, out = dirs
    make, words = CORRUPT[case]
    bundle = write_raw(src, make())
    with pytest.raises(AsrctlError) as err:
        extract(bundle, out / "b", expected_sha256=None)
    assert err.value.code == "ASRCTL-E033", err.value.message
    assert err.value.exit_code == 5
    assert words in err.value.message
    assert "Copy the bundle again" in err.value.remedy
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


def test_ctrl_c_removes_the_staging_directory(dirs: tuple[Path, Path]) -> None:
    src, out = dirs
    members = [M(f"f{i}", data=os.urandom(20_000)) for i in range(60)]  # over 1 MB: several reads
    bundle = write_bundle(src, members)
    import signal

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        extract(bundle, out / "b", expected_sha256=None, out=_InterruptingOut(after=2))  # type: ignore[arg-type]
    assert_nothing_left(out)
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works again after the cleanup


def test_writer_failure_is_reported_and_cleaned_up(dirs: tuple[Path, Path], monkeypatch) -> None:
    src, out = dirs
    bundle = write_bundle(src, ordinary_members())
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


def test_limits_defaults_fit_real_bundles() -> None:
    limits = Limits()
    assert limits.max_members >= 10_000
    assert limits.max_total_bytes >= 4 << 30
    assert limits.max_member_bytes >= 2 << 30
    assert limits.max_path_len >= 255


def test_raw_member_helper_round_trips(dirs: tuple[Path, Path]) -> None:
    """The hand-made headers the unsafe-archive tests rely on are valid tar."""
    src, out = dirs
    bundle = write_raw(src, gz(tar_bytes([raw_member("plain", data=b"hello")])))
    extract(bundle, out / "b", expected_sha256=None)
    assert (out / "b/plain").read_bytes() == b"hello"
