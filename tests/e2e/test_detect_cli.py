"""``asrctl --root TREE --json detect`` over every fixture tree: the CLI contract end to end.

Most cases run in-process through ``asrctl.cli.run`` (fast); a handful run ``python -m asrctl`` as a real
subprocess to prove the same holds for the entry point, the exit code and the two output streams.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from asrctl.cli import run

DISTROS = Path(__file__).resolve().parent.parent / "fixtures" / "distros"
CASES: list[dict[str, Any]] = tomllib.loads((DISTROS / "EXPECTED.toml").read_text(encoding="utf-8"))["case"]
ENVELOPE_KEYS = {"asrctl_result_version", "command", "ok", "changed", "reboot_required", "error", "data"}
PLATFORM_KEYS = {"os_family", "distro_id", "version", "arch", "kernel", "os_tag", "supported", "reason"}
# Variables that would change what asrctl does; a developer's shell must not leak them into the tests.
ASRCTL_VARS = ("ASRCTL_ROOT", "ASRCTL_JSON", "ASRCTL_BUNDLE_DIR", "ASRCTL_EXIT_CODES", "ASRCTL_ARCH", "ASRCTL_KERNEL")


def _case_id(case: dict[str, Any]) -> str:
    return case["tree"] + (f"@{case['arch']}" if "arch" in case else "")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ASRCTL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("ASRCTL_ARCH", "x86_64")
    monkeypatch.setenv("ASRCTL_KERNEL", "6.1.0-test")
    return monkeypatch


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ASRCTL_VARS}
    env.update(NO_COLOR="1", COLUMNS="80", ASRCTL_ARCH="x86_64", ASRCTL_KERNEL="6.1.0-test")
    env.update(extra)
    return env


def asrctl(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asrctl", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(**env),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def check_envelope(doc: dict[str, Any], case: dict[str, Any], code: int) -> None:
    """What the contract promises for one fixture: exit code, envelope, platform data."""
    assert set(doc) == ENVELOPE_KEYS
    assert doc["asrctl_result_version"] == 1
    assert doc["command"] == "detect"
    assert doc["changed"] is False and doc["reboot_required"] is False
    if "error" in case:
        assert code == 3
        assert doc["ok"] is False
        assert doc["error"]["code"] == case["error"]
        assert case["message"] in doc["error"]["message"]
        assert doc["error"]["remedy"]
        return
    platform = doc["data"]["platform"]
    assert PLATFORM_KEYS <= set(platform)
    assert platform["os_family"] == "linux"
    assert platform["arch"] == case.get("arch", "x86_64")
    assert platform["kernel"] == "6.1.0-test"
    assert (platform["distro_id"] or "") == case["distro_id"]
    if "version" in case:
        assert platform["version"] == case["version"]
    if "tag" in case:
        assert code == 0, doc["error"]
        assert doc["ok"] is True and doc["error"] is None
        assert platform["os_tag"] == case["tag"]
        assert platform["supported"] is True and platform["reason"] is None
        if case["warning"]:
            assert any(case["warning"] in w for w in platform["warnings"])
    else:
        assert code == 3
        assert doc["ok"] is False
        assert doc["error"]["code"] == "ASRCTL-E010"
        assert platform["supported"] is False and platform["os_tag"] is None
        assert platform["reason"] and case["refused"] in platform["reason"]
        assert doc["error"]["message"] == platform["reason"]


# --- every fixture, in-process ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_detect_json(case: dict[str, Any], cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.setenv("ASRCTL_ARCH", case.get("arch", "x86_64"))
    code = run(["--root", str(DISTROS / case["tree"]), "--json", "detect"])
    out, err = capsys.readouterr()
    check_envelope(json.loads(out), case, code)
    assert "Traceback" not in err


@pytest.mark.parametrize("case", [c for c in CASES if c["tree"] in ("ubuntu-22.04", "ubuntu-23.10")], ids=_case_id)
def test_detect_human_output_goes_to_stderr_only(
    case: dict[str, Any], cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("ASRCTL_ARCH", case.get("arch", "x86_64"))
    code = run(["--root", str(DISTROS / case["tree"]), "detect"])
    out, err = capsys.readouterr()
    assert out == ""
    if "tag" in case:
        assert code == 0
        assert case["tag"] in err and "supported" in err
    else:
        assert code == 3
        assert "ASRCTL-E010" in err and case["refused"] in err.replace("\n", " ").replace("  ", " ")


def test_missing_root_is_a_usage_error(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = run(["--root", str(tmp_path / "no-such-dir"), "--json", "detect"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 2
    assert set(doc) == ENVELOPE_KEYS
    assert doc["ok"] is False and doc["error"]["code"] == "ASRCTL-E012"
    assert "no such directory" in doc["error"]["message"]
    assert "Traceback" not in err


def test_detect_writes_nothing_into_the_fixture_trees(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = listing(DISTROS)
    for case in CASES:
        run(["--root", str(DISTROS / case["tree"]), "--json", "detect"])
    capsys.readouterr()
    assert listing(DISTROS) == before


def listing(top: Path) -> list[tuple[str, str, int, int, str]]:
    """Every entry below ``top`` with its kind, size, mtime and link target (links are not followed)."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            kind = "l" if p.is_symlink() else "d" if p.is_dir() else "f"
            rows.append(
                (str(p.relative_to(top)), kind, st.st_size, st.st_mtime_ns, os.readlink(p) if kind == "l" else "")
            )
    return sorted(rows)


# --- a handful as real subprocesses -------------------------------------------------------------------------

SUBPROCESS_TREES = ("ubuntu-22.04-absolute-symlink", "rhel-9.9", "os-release-is-a-directory")


@pytest.mark.parametrize("case", [c for c in CASES if c["tree"] in SUBPROCESS_TREES and "arch" not in c], ids=_case_id)
def test_detect_subprocess(case: dict[str, Any], tmp_path: Path) -> None:
    tree = tmp_path / "root"
    shutil.copytree(DISTROS / case["tree"], tree, symlinks=True)
    before = listing(tmp_path)
    proc = asrctl("--root", str(tree), "--json", "detect", cwd=tmp_path)
    check_envelope(json.loads(proc.stdout), case, proc.returncode)
    assert "Traceback" not in proc.stderr
    assert listing(tmp_path) == before, "detect wrote into the tree"


def test_subprocess_32bit_via_sandbox_env(tmp_path: Path) -> None:
    proc = asrctl("--root", str(DISTROS / "ubuntu-22.04"), "--json", "detect", cwd=tmp_path, ASRCTL_ARCH="i686")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 3
    assert doc["data"]["platform"]["arch"] == "i686"
    assert "32-bit" in doc["data"]["platform"]["reason"]


def test_subprocess_missing_root(tmp_path: Path) -> None:
    proc = asrctl("--root", str(tmp_path / "missing"), "--json", "detect", cwd=tmp_path)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert set(doc) == ENVELOPE_KEYS
    assert doc["error"]["code"] == "ASRCTL-E012"
    assert "Traceback" not in proc.stderr
    assert "ASRCTL-E012" in proc.stderr


def test_subprocess_human_output_on_stderr_only(tmp_path: Path) -> None:
    proc = asrctl("--root", str(DISTROS / "sles-12-sp4"), "detect", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "SLES12-64" in proc.stderr
