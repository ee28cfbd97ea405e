"""(a) The binary alone: an empty root that holds only the binary, fixture trees, bundles and a private runtime
directory -- no libc, no Python, no shell -- with a fresh /proc (the one thing a Linux host always has)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from binsupport import FIXTURES, NEW, OLD, TAG, build_bundles, clean_env, need_root, need_tool, run, source_asrctl

from asrctl import __version__

pytestmark = pytest.mark.binary

# Target releases the binary is for (docs/BINARY.md), and one it must refuse.
TREES = ["rhel-7.9", "ubuntu-14.04", "ubuntu-16.04", "debian-8.11", "sles-12-sp5", "alpine-3.23"]


@pytest.fixture(scope="module")
def jail(tmp_path_factory: pytest.TempPathFactory, exe: Path) -> Path:
    need_root()
    need_tool("unshare")
    root = tmp_path_factory.mktemp("jail")
    root.chmod(0o755)
    shutil.copy2(exe, root / "asrctl")
    (root / "proc").mkdir()
    (root / "rt").mkdir(mode=0o700)
    (root / "out").mkdir()
    for tree in TREES:
        shutil.copytree(FIXTURES / tree, root / "fixtures" / tree, symlinks=True)
    build_bundles(root / "bundles", [(OLD, "23Apr2025"), (NEW, "20Sep2025")], tag="UBUNTU-16.04-64")
    return root


def in_jail(jail: Path, *args: str, runtime: str | None = "/rt") -> tuple[int, str, str]:
    """Run /asrctl inside the jail: new mount and PID namespaces, root directory = the jail, /proc mounted."""
    env = {"NO_COLOR": "1", "COLUMNS": "100", "HOME": "/", "PATH": "/nonexistent", "NO_PROXY": "*"}
    if runtime:
        env["ASRCTL_RUNTIME_TMPDIR"] = runtime
    r = run(
        [need_tool("unshare"), "--mount", "--pid", "--fork", f"--root={jail}", "--mount-proc", "/asrctl", *args],
        env=env,
    )
    assert "unrecognized option" not in r.stderr, "this util-linux unshare has no --root"
    return r.returncode, r.stdout, r.stderr


def test_the_jail_has_no_libc_no_python_no_shell(jail: Path) -> None:
    names = {p.name for p in jail.rglob("*")}
    assert not [n for n in names if n.startswith(("libc.so", "ld-linux", "libpython", "python"))]
    assert not {"sh", "bash", "dash", "busybox", "env"} & names


def test_version(jail: Path) -> None:
    code, out, err = in_jail(jail, "--version")
    assert (code, out) == (0, f"asrctl {__version__}\n"), err
    assert list((jail / "rt").iterdir()) == []


@pytest.mark.parametrize("tree", TREES)
def test_detect_agrees_with_the_source(jail: Path, tree: str) -> None:
    code, out, err = in_jail(jail, "--json", "--root", f"/fixtures/{tree}", "detect")
    want = source_asrctl("--json", "--root", str(FIXTURES / tree), "detect", env=clean_env(None))
    assert code == want.returncode, err
    got = json.loads(out)
    assert got["data"]["platform"] == want.json["data"]["platform"]
    assert got["ok"] is want.json["ok"]


def test_bundles_list(jail: Path) -> None:
    code, out, err = in_jail(
        jail, "--json", "--root", "/fixtures/ubuntu-16.04", "--bundle-dir", "/bundles", "bundles", "list"
    )
    assert code == 0, err
    data = json.loads(out)["data"]
    assert [(b["version"], b["os_tag"], b["selected"]) for b in data["bundles"]] == [
        (OLD, TAG, False),
        (NEW, TAG, True),
    ]
    assert data["selected"] == f"/bundles/Microsoft-ASR_UA_{NEW}_{TAG}_GA_20Sep2025_release.tar.gz"


def test_bundles_extract(jail: Path, exe: Path) -> None:
    if run([str(exe), "bundles", "extract", "--help"], env=clean_env(jail / "rt")).returncode != 0:
        pytest.skip("this build has no `bundles extract` yet")
    bundle = f"/bundles/Microsoft-ASR_UA_{OLD}_{TAG}_GA_23Apr2025_release.tar.gz"
    code, out, err = in_jail(jail, "--json", "bundles", "extract", bundle, "/out/old")
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["verified"] is True and data["dest"] == "/out/old"
    unpacked = jail / "out" / "old"
    assert (unpacked / "install").is_file() and os.access(unpacked / "install", os.X_OK)
    assert (unpacked / "OS_details.sh").is_file()


def test_the_root_default_runtime_directory(jail: Path) -> None:
    """Without ASRCTL_RUNTIME_TMPDIR, as root: /var/lib/asrctl/tmp (here: inside the jail), 0700, empty after."""
    code, out, err = in_jail(jail, "--version", runtime=None)
    assert (code, out) == (0, f"asrctl {__version__}\n"), err
    rt = jail / "var" / "lib" / "asrctl" / "tmp"
    assert rt.stat().st_mode & 0o777 == 0o700
    assert list(rt.iterdir()) == []
    shutil.rmtree(jail / "var")


def test_nothing_else_was_written_into_the_jail(jail: Path) -> None:
    assert sorted(p.name for p in jail.iterdir()) == ["asrctl", "bundles", "fixtures", "out", "proc", "rt"]
    assert list((jail / "rt").iterdir()) == []
