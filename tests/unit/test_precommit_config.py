"""The pre-commit hooks run the venv's locked tools: no hook repository is fetched, no network at commit time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".pre-commit-config.yaml"


def test_the_config_is_valid() -> None:
    pytest.importorskip("pre_commit", reason="pre-commit comes with the dev lock (make venv)")
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_hook_is_local_and_runs_a_venv_tool() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with pre-commit in the dev lock (make venv)")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    hooks = {}
    for repo in config["repos"]:
        assert repo["repo"] == "local", f"{repo['repo']}: a remote hook repository is fetched at commit time"
        for hook in repo["hooks"]:
            assert hook["language"] in ("system", "unsupported"), hook  # no environment built by pre-commit
            assert hook["entry"].startswith(".venv/bin/"), f"{hook['id']} runs {hook['entry']!r}, not a venv tool"
            hooks[hook["id"]] = hook["entry"].split()[0]
    assert sorted(hooks) == ["import-linter", "mypy", "ruff", "ruff-format"]
    # The tools come from the lock, so the hooks judge with the versions CI has.
    lock = (REPO / "constraints" / "dev.txt").read_text(encoding="utf-8")
    for tool in ("ruff", "mypy"):
        assert f"\n{tool}==" in lock, f"{tool} is not pinned in constraints/dev.txt"
