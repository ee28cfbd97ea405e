"""Tests of the one-file executable (dist/asrctl). ``make test-binary`` builds it and runs them.

They are marked ``binary`` and skipped unless the binary is there and at least as new as the source (or
``ASRCTL_TEST_BINARY`` names one), so the normal ``make test`` never builds anything and stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from binsupport import REPO, binary_path, clean_env, private_dir, why_not_testable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "binary: tests of the one-file executable dist/asrctl (make test-binary)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = why_not_testable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("binary") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def exe() -> Path:
    return binary_path()


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Iterator[Path]:
    """A private runtime directory for one test; it must be empty again after every run of the binary."""
    path = private_dir(tmp_path / "runtime")
    yield path


@pytest.fixture
def env(runtime_dir: Path) -> dict[str, str]:
    return clean_env(runtime_dir)


@pytest.fixture(scope="session")
def rebuilt(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second build of this tree, in another directory (once per session: the reproducibility test compares it
    with dist/asrctl, the release test makes a second release from it)."""
    if os.environ.get("ASRCTL_TEST_REBUILD") != "1":
        pytest.skip("rebuilds the binary (~20 s): set ASRCTL_TEST_REBUILD=1, as `make test-binary` does")
    if exe != REPO / "dist" / "asrctl":
        pytest.skip("compares against dist/asrctl, the binary built from this tree")
    for module in ("PyInstaller", "staticx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (make binary installs constraints/binary.txt)")
    where = tmp_path_factory.mktemp("rebuild")
    proc = subprocess.run(
        [sys.executable, "-m", "binary", "--out", str(where / "asrctl"), "--work", str(where / "work")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return where / "asrctl"
