"""system/rootfs.py: files of the target system read confined to --root, regular files only, non-blocking, bounded.

Most cases run twice: with directory descriptors (openat, Linux) and on path strings (the fallback where there
is no dir_fd, as on Windows).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from asrctl.system import rootfs
from asrctl.system.paths import Paths


@pytest.fixture(params=["openat", "by-name"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "by-name":
        monkeypatch.setattr(rootfs, "HAVE_DIR_FD", False)
    yield request.param


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "var/log").mkdir(parents=True)
    (r / "etc").mkdir()
    return r


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return out


def refused(paths: Paths, path: str, within: str | None = None) -> rootfs.Refused:
    with pytest.raises(rootfs.Refused) as err:
        rootfs.open_regular(paths, path, within)
    return err.value


def test_a_regular_file_is_opened_and_read(mode: str, root: Path) -> None:
    (root / "var/log/ua_install.log").write_text("hello\n")
    with rootfs.open_regular(Paths.for_root(root), "/var/log/ua_install.log", within="/var/log") as f:
        assert (f.size, f.read(100), f.target, f.via) == (6, b"hello\n", "/var/log/ua_install.log", [])


def test_missing_is_none(mode: str, root: Path) -> None:
    paths = Paths.for_root(root)
    assert rootfs.open_regular(paths, "/var/log/nothing.log") is None
    assert rootfs.open_regular(paths, "/var/log/x.log", within="/var/nolog") is None
    (root / "var/log/file").write_text("x")
    assert rootfs.open_regular(paths, "/var/log/file/below") is None  # a file where a directory should be


def test_a_link_out_of_within_is_refused_and_says_where(mode: str, root: Path, outside: Path) -> None:
    """Issue 13 item 6: ``var/log/ua_install.log -> /etc/passwd`` was archived by logs collect."""
    os.symlink(outside / "passwd", root / "var/log/ua_install.log")
    os.symlink("/etc/passwd", root / "var/log/ua_uninstall.log")
    paths = Paths.for_root(root)
    for name, target in (("ua_install.log", str(outside / "passwd")), ("ua_uninstall.log", "/etc/passwd")):
        err = refused(paths, f"/var/log/{name}", within="/var/log")
        assert err.kind == rootfs.LINK_OUT
        assert f"out of /var/log (to {target}" in err.reason


def test_confined_even_on_the_real_root(mode: str, tmp_path: Path, outside: Path) -> None:
    """With --root / there is no "outside the root": ``within`` is what keeps /etc/passwd out of a log archive."""
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink(outside / "passwd", logs / "ua_install.log")
    err = refused(Paths.for_root("/"), str(logs / "ua_install.log"), within=str(logs))
    assert err.kind == rootfs.LINK_OUT


def test_links_inside_are_followed_and_reported(mode: str, root: Path) -> None:
    (root / "var/log/svagents_curr_7.log").write_text("agent\n")
    os.symlink("svagents_curr_7.log", root / "var/log/svagents.log")
    with rootfs.open_regular(Paths.for_root(root), "/var/log/svagents.log", within="/var/log") as f:
        assert f.read(100) == b"agent\n" and f.target == "/var/log/svagents_curr_7.log"
        assert f.via and f.via[-1].startswith("/var/log/svagents.log -> ") and "svagents_curr_7" in f.via[-1]


def test_a_log_directory_that_is_a_link_is_followed(mode: str, root: Path) -> None:
    """/var/log -> /data/log (a separate disk): within is resolved too, so its files are inside."""
    (root / "var/log").rmdir()
    (root / "data/log").mkdir(parents=True)
    (root / "data/log/ua_install.log").write_text("x\n")
    os.symlink("/data/log", root / "var/log")
    paths = Paths.for_root(root)
    assert rootfs.resolve_dir(paths, "/var/log").as_posix() == "/data/log"
    with rootfs.open_regular(paths, "/var/log/ua_install.log", within="/var/log") as f:
        assert f.read(10) == b"x\n" and f.target == "/data/log/ua_install.log"
    assert rootfs.list_dir(paths, "/var/log") == ["ua_install.log"]


def test_absolute_and_dotdot_links_stay_inside_the_root(mode: str, root: Path, outside: Path) -> None:
    (root / "etc/passwd").write_text("inside\n")
    os.symlink("/etc/passwd", root / "etc/abs")
    os.symlink("../../../../../../etc/passwd", root / "etc/dots")
    os.symlink(str(outside), root / "etc/dir")  # a directory link to the host's outside dir
    paths = Paths.for_root(root)
    for link in ("/etc/abs", "/etc/dots"):
        assert rootfs.read_file(paths, link, 100) == b"inside\n"
    assert rootfs.read_file(paths, "/etc/dir/passwd", 100) is None  # <root><outside>/passwd: absent
    assert rootfs.read_file(paths, "/../../etc/passwd", 100) == b"inside\n"


def test_a_symlink_loop_is_refused(mode: str, root: Path) -> None:
    os.symlink("b", root / "var/log/a")
    os.symlink("a", root / "var/log/b")
    assert refused(Paths.for_root(root), "/var/log/a").kind == rootfs.LOOP


def test_a_fifo_is_refused_without_blocking(mode: str, root: Path) -> None:
    os.mkfifo(root / "var/log/ua_install.log")
    err = refused(Paths.for_root(root), "/var/log/ua_install.log")
    assert (err.kind, err.reason) == (rootfs.NOT_REGULAR, "is not a regular file")


def test_a_fifo_swapped_in_after_the_check_does_not_block(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: lstat saw a regular file, a FIFO is there at open time. O_NONBLOCK returns at once, the
    descriptor check refuses it."""
    os.mkfifo(root / "var/log/ua_install.log")
    regular = os.stat(root / "etc")  # any stat result
    real_stat = os.stat

    def lie(path: object, *args: object, **kwargs: object) -> os.stat_result:
        st = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if stat.S_ISFIFO(st.st_mode):
            fields = list(st)
            fields[0] = stat.S_IFREG | 0o644
            return os.stat_result(fields)
        return st if path != "never" else regular

    monkeypatch.setattr(os, "stat", lie)
    assert refused(Paths.for_root(root), "/var/log/ua_install.log").kind == rootfs.CHANGED


def test_a_link_swapped_in_after_the_check_is_not_followed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.symlink("/etc/shadow", root / "var/log/ua_install.log")
    real_stat = os.stat

    def lie(path: object, *args: object, **kwargs: object) -> os.stat_result:
        st = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if stat.S_ISLNK(st.st_mode):
            fields = list(st)
            fields[0] = stat.S_IFREG | 0o644
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(os, "stat", lie)
    assert refused(Paths.for_root(root), "/var/log/ua_install.log").kind == rootfs.CHANGED


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_is_refused_and_never_opened(mode: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mknod(root / "var/log/ua_install.log", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
    real_open = os.open
    opened: list[object] = []

    def record(path: object, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", record)
    assert refused(Paths.for_root(root), "/var/log/ua_install.log").kind == rootfs.NOT_REGULAR
    assert not any(str(p).endswith("ua_install.log") for p in opened)


def test_a_directory_is_refused(mode: str, root: Path) -> None:
    (root / "var/log/ua_install.log").mkdir()
    assert refused(Paths.for_root(root), "/var/log/ua_install.log").kind == rootfs.DIRECTORY
    assert refused(Paths.for_root(root), "/var/log/..").kind == rootfs.DIRECTORY


def test_read_is_bounded(mode: str, root: Path) -> None:
    (root / "etc/big").write_bytes(b"x" * 101)
    paths = Paths.for_root(root)
    assert rootfs.read_file(paths, "/etc/big", 101) == b"x" * 101
    with pytest.raises(rootfs.Refused) as err:
        rootfs.read_file(paths, "/etc/big", 100)
    assert err.value.kind == rootfs.TOO_LARGE and "larger than 100 bytes (101)" in err.value.reason


def test_tail_of_a_sparse_3_gb_file_reads_only_the_tail(mode: str, root: Path) -> None:
    big = root / "var/log/svagents_curr_1.log"
    with open(big, "wb") as fh:
        fh.truncate(3 << 30)  # sparse: no disk used
        fh.seek((3 << 30) - 6)
        fh.write(b"\nlast\n")
    with rootfs.open_regular(Paths.for_root(root), "/var/log/svagents_curr_1.log") as f:
        assert f.size == 3 << 30
        tail = f.tail(1 << 20)
    assert len(tail) == 1 << 20 and tail.endswith(b"\nlast\n")


def test_a_file_that_grows_is_read_up_to_its_size_when_opened(root: Path) -> None:
    log = root / "var/log/ua_install.log"
    log.write_text("one\n")
    with rootfs.open_regular(Paths.for_root(root), "/var/log/ua_install.log") as f:
        with open(log, "a") as fh:
            fh.write("two\n")
        assert f.tail(100) == b"one\n"


def test_list_dir_is_confined(mode: str, root: Path, outside: Path) -> None:
    os.symlink(str(outside), root / "var/log/vendor")
    paths = Paths.for_root(root)
    assert rootfs.list_dir(paths, "/var/log/vendor") == []  # <root><outside>: absent, never the host's dir
    (root / "var/log/b.log").write_text("")
    (root / "var/log/a.log").write_text("")
    assert rootfs.list_dir(paths, "/var/log") == ["a.log", "b.log", "vendor"]
    assert rootfs.list_dir(paths, "/var/nothing") == []


def test_the_descriptors_are_closed(root: Path) -> None:
    (root / "var/log/a.log").write_text("a")
    before = len(os.listdir("/proc/self/fd"))
    paths = Paths.for_root(root)
    for _ in range(20):
        rootfs.read_file(paths, "/var/log/a.log", 10)
        rootfs.list_dir(paths, "/var/log")
        with pytest.raises(rootfs.Refused):
            rootfs.read_file(paths, "/var/log", 10)
    assert len(os.listdir("/proc/self/fd")) == before
