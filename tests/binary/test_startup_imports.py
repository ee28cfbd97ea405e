"""Start-up stays fast: ``asrctl --version`` and ``--help`` import none of the heavy libraries.

Not marked ``binary``: this runs with every ``make test`` (from the source; the binary runs the same code).
``make bench-startup`` measures the time itself.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from binsupport import REPO, clean_env

HEAVY = ("rich", "requests", "urllib3", "psutil", "distro", "charset_normalizer", "idna", "certifi", "ssl", "tomllib")


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_no_heavy_import_at_start_up(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "asrctl", *args],
        capture_output=True,
        text=True,
        env={**clean_env(None), "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`asrctl {' '.join(args)}` imports {heavy}: import them where they are used"
