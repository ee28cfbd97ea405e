"""``asrctl --version -v``: version, commit, build date, Python and PyInstaller, from wherever asrctl runs
(asrctl/buildinfo.py). Plain ``--version`` stays ``asrctl <version>`` and imports nothing for it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from asrctl import __version__, buildinfo
from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]


def test_plain_version_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"asrctl {__version__}\n"


@pytest.mark.parametrize("argv", [["--version", "-v"], ["-v", "--version"], ["-vv", "--version"]])
def test_version_verbose_in_either_order(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"asrctl {__version__}"
    keys = [line.split(":", 1)[0].strip() for line in out[1:]]
    assert keys == ["commit", "build date", "python", "pyinstaller", "running as"]
    assert f"python:      {sys.version.split()[0]}" in "\n".join(out)


def test_version_verbose_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--json", "--version", "-v"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"version", "commit", "build_date", "python", "pyinstaller", "source"}
    assert data["version"] == __version__
    assert data["source"] == "source tree"  # the tests run from the checkout
    assert data["pyinstaller"] == "not frozen"


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_the_source_tree_commit_is_the_checkouts(capsys: pytest.CaptureFixture[str]) -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert run(["--version", "-v", "--json"]) == 0
    commit = json.loads(capsys.readouterr().out)["commit"]
    assert commit.removesuffix("-dirty") == head.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_says_dirty(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "f").write_text("1", encoding="utf-8")
    git("add", "f")
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert buildinfo.git_commit(tmp_path) == head
    (tmp_path / "f").write_text("2", encoding="utf-8")
    assert buildinfo.git_commit(tmp_path) == f"{head}-dirty"


def test_git_commit_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    assert buildinfo.git_commit(tmp_path) == "unknown"
    assert buildinfo.source_tree(tmp_path / "asrctl") is None


def test_the_binary_reads_the_baked_module(monkeypatch: pytest.MonkeyPatch) -> None:
    baked = types.ModuleType(buildinfo.BAKED_MODULE)
    baked.VERSION, baked.COMMIT, baked.BUILD_DATE, baked.PYINSTALLER = "9.9.9", "a" * 40, "2026-01-02T03:04:05Z", "6.1"
    monkeypatch.setitem(sys.modules, buildinfo.BAKED_MODULE, baked)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    info = buildinfo.collect()
    assert (info.version, info.commit, info.build_date, info.pyinstaller, info.source) == (
        "9.9.9",
        "a" * 40,
        "2026-01-02T03:04:05Z",
        "6.1",
        "binary",
    )


def test_a_binary_without_the_baked_module_says_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, buildinfo.BAKED_MODULE, None)  # import fails
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    info = buildinfo.collect()
    assert (info.commit, info.build_date, info.source) == ("unknown", "unknown", "binary")


def _fake_dist(site: Path, name: str, version: str, direct_url: dict[str, object] | None) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url), encoding="utf-8")


def test_an_installed_wheel_reports_its_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dist(tmp_path, "asrctl_fromgit", "1.2.3", {"url": "https://x.invalid/r", "vcs_info": {"commit_id": "c0ffee"}})
    _fake_dist(tmp_path, "asrctl_fromwheel", "4.5.6", {"url": "file:///tmp/w.whl", "archive_info": {}})
    monkeypatch.syspath_prepend(str(tmp_path))
    git = buildinfo.from_metadata("asrctl_fromgit")
    wheel = buildinfo.from_metadata("asrctl_fromwheel")
    assert git is not None and (git.version, git.commit, git.source) == ("1.2.3", "c0ffee", "installed package")
    assert wheel is not None and (wheel.version, wheel.commit) == ("4.5.6", "unknown")
    assert buildinfo.from_metadata("asrctl-not-installed-anywhere") is None


def test_plain_version_imports_no_buildinfo() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "asrctl", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "asrctl.cli" in imported  # the listing is real
    assert not {"asrctl.buildinfo", "subprocess"} & imported  # (platform comes with click already)
