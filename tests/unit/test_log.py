"""Where asrctl's log goes, and that one run never writes into another run's log file."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrctl.cli import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "distros"


def test_asrctl_log_file_moves_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "elsewhere" / "asrctl.log"
    log.parent.mkdir()
    monkeypatch.setenv("ASRCTL_LOG_FILE", str(log))
    assert run(["detect"]) in (0, 3)  # the real root: a read-only verb logs where the directory exists
    assert "detect (root /)" in log.read_text()


def test_a_read_only_verb_in_a_release_tree_writes_into_no_earlier_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "first.log"
    monkeypatch.setenv("ASRCTL_LOG_FILE", str(first))
    run(["detect"])
    before = first.read_text()
    monkeypatch.delenv("ASRCTL_LOG_FILE")
    tree = FIXTURES / "ubuntu-22.04"
    assert run(["--root", str(tree), "detect"]) == 0
    assert first.read_text() == before  # the earlier run's handler was detached
    assert not (tree / "var" / "log").exists()  # and nothing was written into the fixture tree
