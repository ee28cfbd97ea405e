"""(c) /tmp mounted noexec (as CIS hardening guides ask): the binary still runs, and unpacks nothing there.

Each case runs in a private mount namespace with a fresh noexec tmpfs on /tmp and a fresh tmpfs on /var/lib (so
the root default, /var/lib/asrctl/tmp, is created there and not on this host). Test data lives under /var/tmp.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from binsupport import FIXTURES, NEW, OLD, TAG, build_bundles, clean_env, in_namespace, need_root

from asrctl import __version__

pytestmark = pytest.mark.binary

NOEXEC_TMP = ["tmpfs", "/tmp", "noexec,nosuid,nodev,mode=1777"]
FRESH_VAR_LIB = ["tmpfs", "/var/lib", "mode=0755"]


@pytest.fixture(scope="module")
def outside_tmp(exe: Path) -> Iterator[Path]:
    """The binary, a fixture tree and bundles, where the tmpfs over /tmp does not hide them; readable by all."""
    need_root()
    base = Path(tempfile.mkdtemp(prefix="asrctl-noexec-", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        shutil.copy2(exe, base / "asrctl")
        shutil.copytree(FIXTURES / "rhel-7.9", base / "rhel-7.9", symlinks=True)
        build_bundles(base / "bundles", [(OLD, "23Apr2025"), (NEW, "20Sep2025")], tag=TAG)
        for p in base.rglob("*"):
            p.chmod(0o755 if p.is_dir() or p.name == "asrctl" else 0o644)
        yield base
    finally:
        shutil.rmtree(base)


def commands(base: Path) -> list[list[str]]:
    exe = str(base / "asrctl")
    return [
        [exe, "--version"],
        [exe, "--json", "--root", str(base / "rhel-7.9"), "detect"],
        [exe, "--json", "--root", str(base / "rhel-7.9"), "--bundle-dir", str(base / "bundles"), "bundles", "list"],
    ]


def test_as_root_with_noexec_tmp(outside_tmp: Path) -> None:
    env = clean_env(None, TMPDIR="/tmp")  # what most root shells have: ignored by the launcher
    report = in_namespace(
        ["--mount", "--propagation", "private"],
        {
            "mounts": [NOEXEC_TMP, FRESH_VAR_LIB],
            "probe_exec": "/tmp",
            "runs": [{"argv": argv, "env": env} for argv in commands(outside_tmp)],
            "list": ["/tmp", "/var/lib/asrctl/tmp"],
        },
    )
    assert report["probe_exec"]["errno"] == errno.EACCES, "the test setup did not make /tmp noexec"
    version, detect, listing = report["runs"]
    assert (version["returncode"], version["stdout"]) == (0, f"asrctl {__version__}\n"), version
    assert detect["returncode"] == 0, detect
    assert '"os_tag": "RHEL7-64"' in detect["stdout"]
    assert listing["returncode"] == 0, listing
    assert f'"version": "{NEW}"' in listing["stdout"]
    assert report["list"]["/tmp"]["entries"] == [], "nothing may be unpacked in /tmp"
    assert report["list"]["/var/lib/asrctl/tmp"] == {"mode": "0o700", "entries": []}


def test_as_another_user_with_noexec_tmp(outside_tmp: Path) -> None:
    """A user who cannot write /var/lib: /tmp is skipped because it is noexec, /var/tmp is used."""
    env = clean_env(None)
    env.pop("TMPDIR", None)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    report = in_namespace(
        ["--mount", "--propagation", "private"],
        {
            "mounts": [NOEXEC_TMP, FRESH_VAR_LIB],
            "runs": [{"argv": [*nobody, *argv], "env": env} for argv in commands(outside_tmp)[:2]],
            "list": ["/tmp"],
        },
    )
    version, detect = report["runs"]
    assert (version["returncode"], version["stdout"]) == (0, f"asrctl {__version__}\n"), version
    assert detect["returncode"] == 0, detect
    assert report["list"]["/tmp"]["entries"] == []
    leftovers = [p for p in Path("/var/tmp").iterdir() if p.name.startswith(("asrctl-run-", "staticx-", "_MEI"))]
    assert leftovers == []


def test_an_explicit_runtime_directory_on_a_noexec_filesystem_is_refused(outside_tmp: Path) -> None:
    report = in_namespace(
        ["--mount", "--propagation", "private"],
        {
            "mounts": [NOEXEC_TMP],
            "runs": [
                {
                    "argv": [
                        "/bin/sh",
                        "-c",
                        'mkdir -m 700 /tmp/rt && exec "$0" --version',
                        str(outside_tmp / "asrctl"),
                    ],
                    "env": clean_env(Path("/tmp/rt")),
                }
            ],
        },
    )
    r = report["runs"][0]
    assert r["returncode"] == 6, r
    assert "noexec" in r["stderr"] and "ASRCTL_RUNTIME_TMPDIR" in r["stderr"]
