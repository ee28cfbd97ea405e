"""Facts: reading release files through --root (confined), parsing them, and the injectable uname/Windows sources."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import pytest

import asrctl.facts as facts_mod
from asrctl.errors import AsrctlError
from asrctl.facts import (
    MAX_RELEASE_FILE,
    collect_linux,
    collect_windows,
    identify,
    normalize_arch,
    parse_os_release,
    read_in_root,
)
from asrctl.system.paths import Paths

Uname = namedtuple("Uname", "system node release version machine")
WinVer = namedtuple("WinVer", "major minor build platform service_pack service_pack_major product_type")
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n'


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def symlink(root: Path, rel: str, target: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file next to the root, which no read through the root may reach."""
    write(tmp_path, "outside/os-release", "ID=outside\n")
    write(tmp_path, "outside/etc/os-release", "ID=outside\n")
    return tmp_path / "outside"


# --- read_in_root: symlink confinement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        # (symlinks to create: (path, target)), what /etc/os-release reads as
        ([("etc/os-release", "../usr/lib/os-release")], UBUNTU),
        ([("etc/os-release", "/usr/lib/os-release")], UBUNTU),  # absolute: resolved against the root
        ([("etc/os-release", "../../../../../../../../usr/lib/os-release")], UBUNTU),  # '..' stops at the root
        ([("etc/os-release", "/etc/../usr/./lib//os-release")], UBUNTU),
        ([("etc/os-release", "a"), ("etc/a", "b"), ("etc/b", "/usr/lib/os-release")], UBUNTU),  # a chain
        ([("etc", "usr/lib")], UBUNTU),  # a relative directory link on the way
        ([("etc/os-release", "/nonexistent")], None),  # dangling: as absent
    ],
    ids=["relative", "absolute", "dotdot-above-root", "messy-absolute", "chain", "dir-link", "dangling"],
)
def test_symlinks_resolve_inside_the_root(
    root: Path, links: list[tuple[str, str]], expected: str | None, outside: Path
) -> None:
    write(root, "usr/lib/os-release", UBUNTU)
    for rel, target in links:
        symlink(root, rel, target)
    assert read_in_root(Paths.for_root(root), "/etc/os-release") == expected


def test_absolute_symlink_to_a_host_path_does_not_leave_the_root(root: Path, outside: Path) -> None:
    symlink(root, "etc/os-release", str(outside / "os-release"))
    assert read_in_root(Paths.for_root(root), "/etc/os-release") is None


def test_absolute_directory_symlink_does_not_leave_the_root(root: Path, outside: Path) -> None:
    # <root>/etc -> <outside>/etc: the old code followed it on the host and read the outside file.
    symlink(root, "etc", str(outside / "etc"))
    assert read_in_root(Paths.for_root(root), "/etc/os-release") is None


def test_relative_escape_is_clamped_at_the_root(root: Path, outside: Path) -> None:
    symlink(root, "etc/os-release", "../../outside/os-release")
    assert read_in_root(Paths.for_root(root), "/etc/os-release") is None
    write(root, "outside/os-release", "ID=inside\n")
    assert read_in_root(Paths.for_root(root), "/etc/os-release") == "ID=inside\n"


def test_symlink_loop_is_an_error(root: Path) -> None:
    symlink(root, "etc/os-release", "loop")
    symlink(root, "etc/loop", "os-release")
    with pytest.raises(AsrctlError) as err:
        read_in_root(Paths.for_root(root), "/etc/os-release")
    assert err.value.code == "ASRCTL-E011"
    assert "too many levels of symbolic links" in err.value.message


# --- read_in_root: what is not a readable small text file ------------------------------------------------------


def test_missing_file_is_none(root: Path) -> None:
    assert read_in_root(Paths.for_root(root), "/etc/os-release") is None
    write(root, "etc", "a file where a directory should be")
    assert read_in_root(Paths.for_root(root), "/etc/os-release") is None


def test_directory_is_an_error(root: Path) -> None:
    (root / "etc/os-release").mkdir(parents=True)
    with pytest.raises(AsrctlError) as err:
        read_in_root(Paths.for_root(root), "/etc/os-release")
    assert err.value.code == "ASRCTL-E011"
    assert err.value.exit_code == 3
    assert "/etc/os-release" in err.value.message and "is a directory" in err.value.message


def test_fifo_is_an_error_and_does_not_block(root: Path) -> None:
    (root / "etc").mkdir()
    os.mkfifo(root / "etc/os-release")
    with pytest.raises(AsrctlError) as err:
        read_in_root(Paths.for_root(root), "/etc/os-release")
    assert "not a regular file" in err.value.message


@pytest.mark.parametrize(("size", "ok"), [(MAX_RELEASE_FILE, True), (MAX_RELEASE_FILE + 1, False)])
def test_size_limit(root: Path, size: int, ok: bool) -> None:
    write(root, "etc/os-release", b"#" * size)
    paths = Paths.for_root(root)
    if ok:
        assert len(read_in_root(paths, "/etc/os-release") or "") == size
    else:
        with pytest.raises(AsrctlError) as err:
            read_in_root(paths, "/etc/os-release")
        assert err.value.code == "ASRCTL-E011"
        assert f"larger than {MAX_RELEASE_FILE} bytes" in err.value.message


def test_size_limit_is_a_parameter(root: Path) -> None:
    write(root, "etc/debian_version", "12.11\n")
    with pytest.raises(AsrctlError):
        read_in_root(Paths.for_root(root), "/etc/debian_version", limit=3)


def test_unreadable_file_is_an_error(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(root, "etc/redhat-release", "Red Hat Enterprise Linux release 9.6 (Plow)\n")
    real_open = os.open

    def deny(path: object, *args: object, **kwargs: object) -> int:
        # By name: the file is opened relative to its directory's descriptor (system/rootfs.py).
        if os.fspath(path) in (str(target), target.name):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(facts_mod.os, "open", deny)
    with pytest.raises(AsrctlError) as err:
        read_in_root(Paths.for_root(root), "/etc/redhat-release")
    assert err.value.code == "ASRCTL-E011"
    assert "cannot read it: Permission denied" in err.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files")
def test_unreadable_file_really(root: Path) -> None:
    target = write(root, "etc/redhat-release", "x\n")
    target.chmod(0)
    try:
        with pytest.raises(AsrctlError):
            read_in_root(Paths.for_root(root), "/etc/redhat-release")
    finally:
        target.chmod(0o644)


def test_undecodable_bytes_are_replaced(root: Path) -> None:
    write(root, "etc/os-release", b'NAME="Caf\xe9"\nID=x\n')
    assert read_in_root(Paths.for_root(root), "/etc/os-release") == 'NAME="Caf\ufffd"\nID=x\n'


# --- parsing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ID=ubuntu\nVERSION_ID="22.04"\n', {"ID": "ubuntu", "VERSION_ID": "22.04"}),
        ("NAME='Single Quoted'\n", {"NAME": "Single Quoted"}),
        ('PRETTY_NAME="Debian \\"quoted\\" \\$x"\n', {"PRETTY_NAME": 'Debian "quoted" $x'}),
        ('# comment\n\n  ID = "spaced"  \n', {"ID": "spaced"}),
        ('# VERSION="20250101"\nID=x\n', {"ID": "x"}),
        ('NAME="unterminated\n', {"NAME": "unterminated"}),
        ("just garbage\n= =\n1X=bad key\n\x00\x7fELF\n", {}),
        ("", {}),
        ('VERSION_CODENAME=""\n', {"VERSION_CODENAME": ""}),
    ],
    ids=["plain", "single", "escapes", "spaces", "commented", "unbalanced", "garbage", "empty", "empty-value"],
)
def test_parse_os_release(text: str, expected: dict[str, str]) -> None:
    assert parse_os_release(text) == expected


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"/etc/redhat-release": "CentOS release 6.10 (Final)\n"}, ("centos", "CentOS", "6.10")),
        (
            {"/etc/redhat-release": "Red Hat Enterprise Linux Server release 5.11 (Tikanga)\n"},
            ("rhel", "Red Hat Enterprise Linux Server", "5.11"),
        ),
        (
            {
                "/etc/oracle-release": "Oracle Linux Server release 6.4\n",
                "/etc/redhat-release": "Red Hat Enterprise Linux Server release 6.4 (Santiago)\n",
            },
            ("ol", "Oracle Linux Server", "6.4"),
        ),
        (
            {
                "/etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n",
                "/etc/os-release": 'NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n',
            },
            ("centos", "CentOS Linux", "7.9.2009"),
        ),
        (
            {"/etc/SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 2\n"},
            ("sles", "SUSE Linux Enterprise Server", "11.2"),
        ),
        (
            {
                "/etc/debian_version": "12.11\n",
                "/etc/os-release": 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n',
            },
            ("debian", "Debian GNU/Linux", "12.11"),
        ),
        (
            {"/etc/debian_version": "trixie/sid\n", "/etc/os-release": "ID=debian\n"},
            ("debian", "Debian GNU/Linux", "trixie/sid"),
        ),
        (
            {
                "/etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n",
                "/etc/debian_version": "bookworm/sid\n",
                "/etc/os-release": UBUNTU,
            },
            ("ubuntu", "Ubuntu", "22.04"),
        ),
        ({"/etc/lsb-release": "DISTRIB_ID=LinuxMint\nDISTRIB_RELEASE=21.3\n"}, ("linuxmint", "LinuxMint", "21.3")),
        ({"/etc/os-release": "garbage"}, ("", "", "")),
        ({}, ("", "", "")),
    ],
    ids=[
        "centos6",
        "rhel5",
        "ol6",
        "centos7-precise",
        "sles11sp2",
        "debian-point",
        "debian-testing",
        "ubuntu",
        "mint",
        "garbage",
        "none",
    ],
)
def test_identify(files: dict[str, str], expected: tuple[str, str, str]) -> None:
    assert identify(files)[:3] == expected


def test_identify_uses_system_release_as_a_last_resort() -> None:
    assert identify({}, "Amazon Linux AMI release 2014.03\n")[:3] == ("amzn", "Amazon Linux AMI", "2014.03")


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "x86_64"),
        ("AMD64", "x86_64"),
        ("x64", "x86_64"),
        ("EM64T", "x86_64"),
        ("i386", "i686"),
        ("x86", "i686"),
        (" aarch64\n", "aarch64"),
    ],
)
def test_normalize_arch(machine: str, expected: str) -> None:
    assert normalize_arch(machine) == expected


# --- collect_linux ----------------------------------------------------------------------------------------


def uname(machine: str = "x86_64", release: str = "6.1.0-28-amd64") -> object:
    return lambda: Uname("Linux", "host", release, "#1 SMP", machine)


def test_collect_linux_reads_release_files_and_injected_uname(root: Path) -> None:
    write(
        root, "usr/lib/os-release", 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n'
    )
    symlink(root, "etc/os-release", "../usr/lib/os-release")
    write(root, "usr/lib/rocky-release", "Rocky Linux release 9.3 (Blue Onyx)\n")
    symlink(root, "etc/rocky-release", "../usr/lib/rocky-release")
    symlink(root, "etc/redhat-release", "rocky-release")
    facts = collect_linux(
        Paths.for_root(root), {}, uname=uname("amd64", "5.14.0-362.8.1.el9_3.x86_64"), is_admin=lambda: False
    )
    assert (facts.os_family, facts.distro_id, facts.distro_name, facts.version) == (
        "linux",
        "rocky",
        "Rocky Linux",
        "9.3",
    )
    assert facts.like == ("rhel", "centos", "fedora")
    assert facts.arch == "x86_64"
    assert facts.kernel == "5.14.0-362.8.1.el9_3.x86_64"
    assert facts.is_admin is False
    assert facts.root == str(root.resolve())
    assert set(facts.release_files) == {"/etc/os-release", "/etc/redhat-release"}
    assert facts.release_files["/etc/redhat-release"].startswith("Rocky Linux release 9.3")


def test_collect_linux_falls_back_to_usr_lib_os_release(root: Path) -> None:
    write(root, "usr/lib/os-release", UBUNTU)
    facts = collect_linux(Paths.for_root(root), {}, uname=uname())
    assert facts.release_files["/etc/os-release"] == UBUNTU
    assert facts.distro_id == "ubuntu"


def test_sandbox_may_pretend_another_arch_and_kernel(root: Path) -> None:
    write(root, "etc/os-release", UBUNTU)
    env = {"ASRCTL_ARCH": "i386", "ASRCTL_KERNEL": "4.4.0-210-generic"}
    facts = collect_linux(Paths.for_root(root), env, uname=uname())
    assert (facts.arch, facts.kernel) == ("i686", "4.4.0-210-generic")


def test_real_root_ignores_the_pretend_variables() -> None:
    """Without a sandbox root the running kernel decides; ASRCTL_ARCH must not make a host look 32-bit."""
    paths = Paths.for_root("/")
    assert not paths.sandboxed
    facts = collect_linux(paths, {"ASRCTL_ARCH": "i686", "ASRCTL_KERNEL": "fake"}, uname=uname("x86_64", "6.1.0"))
    assert (facts.arch, facts.kernel) == ("x86_64", "6.1.0")


def test_collect_linux_never_reads_the_host_through_an_absolute_link(root: Path) -> None:
    """The bug this guards against: the ``distro`` package, given root_dir, followed ``etc/os-release ->
    /usr/lib/os-release`` to the *host's* file and reported the host's distribution."""
    write(root, "usr/lib/os-release", 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n')
    symlink(root, "etc/os-release", "/usr/lib/os-release")
    facts = collect_linux(Paths.for_root(root), {}, uname=uname())
    assert (facts.distro_id, facts.version) == ("amzn", "2023")


def test_collect_linux_directory_os_release_is_e011(root: Path) -> None:
    (root / "etc/os-release").mkdir(parents=True)
    with pytest.raises(AsrctlError) as err:
        collect_linux(Paths.for_root(root), {}, uname=uname())
    assert err.value.code == "ASRCTL-E011"


# --- collect_windows ----------------------------------------------------------------------------------------


def test_collect_windows_maps_every_source() -> None:
    registry = {"ProductName": "Windows 10 Enterprise", "InstallationType": "Client", "UBR": 4317}
    calls: list[tuple[str, str]] = []

    def read_registry(key: str, value: str) -> object:
        calls.append((key, value))
        return registry.get(value)

    facts = collect_windows(
        Paths.for_root("/"),
        getwindowsversion=lambda: WinVer(10, 0, 22631, 2, "", 0, 1),
        read_registry=read_registry,
        environ={"PROCESSOR_ARCHITECTURE": "AMD64"},
        machine=lambda: "ignored",
        is_admin=lambda: True,
    )
    assert facts.os_family == "windows" and facts.distro_id == "windows"
    assert facts.distro_name == "Windows 11 Enterprise"  # Windows 11 still says "Windows 10" in ProductName
    assert facts.version == "10.0.22631"
    assert facts.kernel == "10.0.22631.4317"
    assert facts.arch == "x86_64"
    assert facts.is_admin is True
    assert facts.windows is not None
    assert (facts.windows.kernel, facts.windows.build, facts.windows.product_type, facts.windows.ubr) == (
        "10.0",
        22631,
        "client",
        4317,
    )
    assert all(key == r"SOFTWARE\Microsoft\Windows NT\CurrentVersion" for key, _ in calls)


@pytest.mark.parametrize(
    ("env", "machine", "expected"),
    [
        ({"PROCESSOR_ARCHITEW6432": "AMD64", "PROCESSOR_ARCHITECTURE": "x86"}, "x86", "x86_64"),
        ({"PROCESSOR_ARCHITECTURE": "x86"}, "x86", "i686"),
        ({"PROCESSOR_ARCHITECTURE": "ARM64"}, "ARM64", "arm64"),
        ({}, "AMD64", "x86_64"),
    ],
    ids=["wow64", "32-bit", "arm64", "machine-fallback"],
)
def test_collect_windows_arch(env: dict[str, str], machine: str, expected: str) -> None:
    facts = collect_windows(
        Paths.for_root("/"),
        getwindowsversion=lambda: WinVer(10, 0, 20348, 2, "", 0, 3),
        read_registry=lambda key, value: None,
        environ=env,
        machine=lambda: machine,
        is_admin=lambda: False,
    )
    assert facts.arch == expected
    assert facts.distro_name == "Windows"  # no ProductName in the registry
    assert facts.windows is not None and facts.windows.product_type == "server"
