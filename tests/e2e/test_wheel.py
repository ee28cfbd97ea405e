"""The built wheel carries platforms/ and works from a fresh venv, away from the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests/fixtures/distros/rhel-8.10"


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_detects(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("asrctl-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "asrctl/platforms/linux.toml",
        "asrctl/platforms/windows.toml",
        "asrctl/platforms/vmagent.toml",
        "asrctl/platforms/kernels.toml",
        "asrctl/platforms/drivers.toml",
    } <= set(names)
    # setup.cfg lists the packages by name: a new subpackage missing from that list is missing from the wheel.
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "asrctl").rglob("*.py")}
    assert sources - set(names) == set()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    run = subprocess.run(
        [str(venv / "bin/asrctl"), "--root", str(FIXTURE), "--json", "detect"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the source tree: the installed package must find its own data
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["data"]["platform"]["os_tag"] == "RHEL8-64"
