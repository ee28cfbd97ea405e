"""Hostile archives: each is refused with ASRCTL-E032 naming the member, and nothing is left behind.

Every archive is built by the test itself (tests/helpers_archives.py), and every test runs once per bundle format
(gzip, LZMA, xz, plain tar): the refusals live in the tar parser, after whichever decompressor. "Nothing left
behind" means the destination's parent is empty afterwards (no staging directory, no destination) and nothing
appeared outside it.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers_archives import FORMATS, M, compress, pax_member, raw_member, tar_bytes, write_bundle, write_raw

from asrctl.bundles.extract import TRAILING_LIMIT, Limits, extract
from asrctl.errors import AsrctlError


@dataclass
class Box:
    """tmp_path/{src,out,outside} (``box / "src"``…) and the format the bundles of this run are packed in."""

    root: Path
    compression: str

    def __truediv__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(params=FORMATS)
def box(tmp_path: Path, request: pytest.FixtureRequest) -> Box:
    """The bundle's dir, the destination's parent, and a place an escape would reach; once per format."""
    for d in ("src", "out", "outside"):
        (tmp_path / d).mkdir()
    return Box(tmp_path, request.param)


def refuse(box: Box, members: list[M], member: str, words: str, limits: Limits = Limits(), **kw) -> AsrctlError:  # noqa: B008
    bundle = write_bundle(box / "src", members, compression=box.compression, **kw)
    return refuse_file(box, bundle, member, words, limits)


def refuse_file(box: Box, bundle: Path, member: str, words: str, limits: Limits = Limits()) -> AsrctlError:  # noqa: B008
    with pytest.raises(AsrctlError) as err:
        extract(bundle, box / "out" / "dest", expected_sha256=None, limits=limits)
    e = err.value
    assert e.code == "ASRCTL-E032", e.message
    assert e.exit_code == 5
    assert e.details.get("member") == member, e.message
    assert repr(member) in e.message
    assert words in e.message, e.message
    assert "Do not use this bundle" in e.remedy
    assert list((box / "out").iterdir()) == [], "staging or destination left behind"
    assert list((box / "outside").iterdir()) == [], "something was written outside"
    return e


def ok(n: str = "ok.txt") -> M:
    return M(n, data=b"fine")


# --- names --------------------------------------------------------------------------------------------------


def test_dotdot_at_the_start(box: Box) -> None:
    refuse(box, [ok(), M("../outside/evil", data=b"x")], "../outside/evil", "'..' in the path")


def test_dotdot_in_the_middle(box: Box) -> None:
    refuse(box, [ok(), M("a/../../outside/x", data=b"x")], "a/../../outside/x", "'..' in the path")


def test_dotdot_that_would_stay_inside_is_refused_too(box: Box) -> None:
    refuse(box, [M("a/../b", data=b"x")], "a/../b", "'..' in the path")


def test_absolute_name_is_refused_not_rewritten(box: Box) -> None:
    target = box / "outside" / "abs"
    refuse(box, [ok(), M(str(target), data=b"x")], str(target), "an absolute path")


def test_double_slash_absolute_name(box: Box) -> None:
    refuse(box, [M("//etc/cron.d/evil", data=b"x")], "//etc/cron.d/evil", "an absolute path")


def test_pax_path_overrides_are_checked(box: Box) -> None:
    members = pax_member({"path": "../outside/via-pax"}, M("innocent", data=b"x"))
    refuse(box, members, "../outside/via-pax", "'..' in the path")


def test_gnu_long_name_is_checked(box: Box) -> None:
    name = "../" + "x" * 150
    refuse(box, [M(name, data=b"x")], name, "'..' in the path")


def test_nul_in_a_pax_path(box: Box) -> None:
    members = pax_member({"path": "a\x00b"}, M("innocent", data=b"x"))
    refuse(box, members, "a\x00b", "NUL")


# --- symlinks -----------------------------------------------------------------------------------------------


def test_absolute_symlink(box: Box) -> None:
    refuse(box, [ok(), M("etc", "symlink", link="/etc")], "etc", "absolute path '/etc'")


def test_symlink_resolving_outside(box: Box) -> None:
    refuse(box, [M("a", "dir"), M("a/up", "symlink", link="../../outside")], "a/up", "outside the bundle")


def test_symlink_to_the_parent_of_the_top(box: Box) -> None:
    refuse(box, [M("up", "symlink", link="..")], "up", "outside the bundle")


def test_symlink_with_dotdot_after_a_name(box: Box) -> None:
    # 'b' does not exist yet when 'a' is checked; a later 'b -> .' would make b/../.. climb out.
    refuse(box, [M("a", "symlink", link="b/../../outside")], "a", "'..' after a name")


def test_chain_of_links_leaving_the_tree(box: Box) -> None:
    members = [
        M("x", "dir"),
        M("x/l1", "symlink", link="../l2"),  # inside, points at l2
        M("l2", "symlink", link="x/l3"),  # inside, points at x/l3
        M("x/l3", "symlink", link="../../outside"),  # the last link of the chain leaves
    ]
    refuse(box, members, "x/l3", "outside the bundle")


def test_member_written_through_an_earlier_symlink(box: Box) -> None:
    # The link itself points inside; writing through it is still refused.
    members = [M("real", "dir"), M("link", "symlink", link="real"), M("link/file", data=b"x")]
    refuse(box, members, "link/file", "through the symlink 'link'")


def test_member_written_through_a_link_to_dot(box: Box) -> None:
    members = [M("here", "symlink", link="."), M("here/here/x", data=b"x")]
    refuse(box, members, "here/here/x", "through the symlink 'here'")


def test_directory_created_through_a_symlink(box: Box) -> None:
    members = [M("d", "dir"), M("s", "symlink", link="d"), M("s/sub", "dir")]
    refuse(box, members, "s/sub", "through the symlink 's'")


def test_symlink_replaced_by_a_file_is_a_duplicate(box: Box) -> None:
    members = [M("s", "symlink", link="target"), M("s", data=b"x")]
    refuse(box, members, "s", "a second member with the same name")


# --- hardlinks ----------------------------------------------------------------------------------------------


def test_hardlink_to_an_absolute_path(box: Box) -> None:
    secret = box / "outside" / "secret"
    members = [M("h", "hardlink", link=str(secret))]
    e = refuse(box, members, "h", "a hardlink to the absolute path")
    assert str(secret) in e.message


def test_hardlink_climbing_out(box: Box) -> None:
    refuse(box, [M("h", "hardlink", link="../outside/x")], "h", "outside the bundle")


def test_hardlink_to_an_earlier_member_then_a_rewrite_of_that_name(box: Box) -> None:
    members = [M("f", data=b"original"), M("h", "hardlink", link="f"), M("h", data=b"rewritten through h")]
    refuse(box, members, "h", "a second member with the same name")


def test_hardlink_to_something_not_yet_in_the_bundle(box: Box) -> None:
    refuse(box, [M("h", "hardlink", link="later"), M("later", data=b"x")], "h", "not an earlier file")


def test_hardlink_to_a_directory(box: Box) -> None:
    refuse(box, [M("d", "dir"), M("h", "hardlink", link="d")], "h", "not an earlier file")


def test_hardlink_to_a_symlink(box: Box) -> None:
    members = [M("s", "symlink", link="x"), M("h", "hardlink", link="s")]
    refuse(box, members, "h", "not an earlier file")


# --- duplicates ---------------------------------------------------------------------------------------------


def test_duplicate_file_names(box: Box) -> None:
    refuse(box, [M("install", data=b"good"), M("install", data=b"evil")], "install", "same name")


def test_duplicates_that_differ_only_by_dot_slash(box: Box) -> None:
    refuse(box, [M("install", data=b"good"), M("./install", data=b"evil")], "./install", "same name")


def test_duplicate_directories(box: Box) -> None:
    refuse(box, [M("d", "dir"), M("d", "dir")], "d", "same name")


def test_file_where_a_directory_was(box: Box) -> None:
    refuse(box, [M("d/f", data=b"x"), M("d", data=b"x")], "d", "same name")


def test_path_through_an_earlier_file(box: Box) -> None:
    refuse(box, [M("f", data=b"x"), M("f/g", data=b"x")], "f/g", "through the file 'f'")


# --- special files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"), [("chr", "a character device"), ("blk", "a block device"), ("fifo", "a FIFO")]
)
def test_devices_and_fifos(box: Box, kind: str, words: str) -> None:
    refuse(box, [ok(), M("dev/thing", kind)], "dev/thing", words)


def test_socket_by_its_mode_bits(box: Box) -> None:
    # tar has no socket type; a header that says "socket" in its mode bits is refused all the same.
    members = [ok(), raw_member("sock", mode=0o140644)]
    refuse(box, members, "sock", "a socket")


def test_unknown_member_type(box: Box) -> None:
    refuse(box, [raw_member("vol", typeflag=b"V")], "vol", "unsupported member type")


def test_gnu_sparse_file(box: Box) -> None:
    members = pax_member({"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}, M("sparse", data=b"x"))
    refuse(box, members, "sparse", "sparse")


# --- limits -------------------------------------------------------------------------------------------------


def test_too_many_members(box: Box) -> None:
    members = [M(f"f{i}", data=b"x") for i in range(5)]
    refuse(box, members, "f4", "more than 4 members", Limits(max_members=4))


def test_too_many_bytes_in_total(box: Box) -> None:
    members = [M("a", data=b"x" * 600), M("b", data=b"x" * 600)]
    refuse(box, members, "b", "add up to more than", Limits(max_total_bytes=1000))


def test_member_too_big(box: Box) -> None:
    refuse(box, [M("big", data=b"x" * 2000)], "big", "per member", Limits(max_member_bytes=1000))


def test_path_too_long(box: Box) -> None:
    name = "d/" + "x" * 70
    refuse(box, [M(name, data=b"x")], name, "a path longer than 64 bytes", Limits(max_path_len=64))


def test_gnu_long_name_header_too_long(box: Box) -> None:
    name = "y" * 200
    refuse(box, [M(name, data=b"x")], "././@LongLink", "a name of 201 bytes", Limits(max_path_len=100))


def test_path_component_too_long(box: Box) -> None:
    name = "d/" + "z" * 256
    refuse(box, [M(name, data=b"x")], name, "component longer than 255")


def test_decompression_bomb_after_the_end_marker(box: Box) -> None:
    data = tar_bytes([ok()]) + bytes(TRAILING_LIMIT + (1 << 20))
    bundle = write_raw(box / "src", compress(data, box.compression))
    with pytest.raises(AsrctlError) as err:
        extract(bundle, box / "out" / "dest", expected_sha256=None)
    assert err.value.code == "ASRCTL-E032"
    assert "after the end of the tar archive" in err.value.message
    assert list((box / "out").iterdir()) == []


def test_members_before_the_bad_one_are_not_kept(box: Box) -> None:
    """The refusal comes late in the stream; the good members already unpacked go with the staging dir."""
    members = [M(f"good{i}", data=os.urandom(3000)) for i in range(50)] + [M("/etc/evil", data=b"x")]
    refuse(box, members, "/etc/evil", "an absolute path", fmt=tarfile.PAX_FORMAT)
