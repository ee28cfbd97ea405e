"""Two builds of the same tree (and the same lock, constraints/binary.txt) are byte-identical: a second build, in
another directory, must equal dist/asrctl."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from binsupport import REPO

pytestmark = pytest.mark.binary


def test_a_second_build_is_byte_identical(exe: Path, tmp_path: Path) -> None:
    if os.environ.get("ASRCTL_TEST_REBUILD") != "1":
        pytest.skip("rebuilds the binary (~20 s): set ASRCTL_TEST_REBUILD=1, as `make test-binary` does")
    if exe != REPO / "dist" / "asrctl":
        pytest.skip("compares against dist/asrctl, the binary built from this tree")
    for module in ("PyInstaller", "staticx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[binary]')")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "binary",
            "--out",
            str(tmp_path / "asrctl"),
            "--work",
            str(tmp_path / "work"),
            "--compare-with",
            str(exe),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "scripts")},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "byte-identical" in proc.stdout
