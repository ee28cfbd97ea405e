"""Passphrase sources: permissions, empty, newline, one source only, never in repr, private copies."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from asrctl.errors import AsrctlError
from asrctl.system import redact, secrets


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "cs.pass"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_file_newline_stripped_and_registered_for_redaction(tmp_path: Path) -> None:
    p = secrets.from_file(_file(tmp_path, "Pa55-word\n"))
    assert p.value == "Pa55-word"
    assert p.source == "file"
    assert redact.redact("x Pa55-word y") == f"x {redact.MASK} y"
    assert "Pa55" not in repr(p)


def test_crlf_stripped(tmp_path: Path) -> None:
    assert secrets.from_file(_file(tmp_path, "abc\r\n")).value == "abc"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o666])
def test_group_or_world_readable_file_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(AsrctlError) as err:
        secrets.from_file(_file(tmp_path, "x", mode))
    assert err.value.code == "ASRCTL-E049"
    assert "chmod 600" in err.value.message
    assert err.value.exit_code == 6


def test_insecure_file_accepted_when_asked(tmp_path: Path) -> None:
    assert secrets.from_file(_file(tmp_path, "x", 0o644), insecure_ok=True).value == "x"


@pytest.mark.parametrize("text", ["", "\n", "   \n"])
def test_empty_passphrase_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(AsrctlError) as err:
        secrets.from_file(_file(tmp_path, text))
    assert err.value.code == "ASRCTL-E050"


def test_multi_line_refused(tmp_path: Path) -> None:
    with pytest.raises(AsrctlError, match="more than one line"):
        secrets.from_file(_file(tmp_path, "a\nb\n"))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AsrctlError, match="no such file"):
        secrets.from_file(tmp_path / "nope")
    with pytest.raises(AsrctlError, match="not a regular file"):
        secrets.from_file(tmp_path)


def test_stdin_reads_one_line() -> None:
    p = secrets.from_stdin(io.StringIO("from-stdin\nignored\n"))
    assert (p.value, p.source) == ("from-stdin", "stdin")


def test_obtain_env_and_precedence(tmp_path: Path) -> None:
    assert secrets.obtain(None, False, {"ASRCTL_PASSPHRASE": "envpass"}).value == "envpass"
    path = _file(tmp_path, "filepass")
    assert secrets.obtain(str(path), False, {"ASRCTL_PASSPHRASE": "envpass"}).value == "filepass"
    assert secrets.obtain(None, False, {}) is None
    with pytest.raises(AsrctlError) as err:
        secrets.obtain(str(path), True, {})
    assert err.value.code == "ASRCTL-E002"


def test_private_copy_is_0600_in_a_0700_dir_and_refuses_to_overwrite(tmp_path: Path) -> None:
    p = secrets.Passphrase("v4lue", "env")
    target = secrets.private_path(tmp_path, "run1")
    secrets.write_private(p, target)
    assert target.read_text() == "v4lue"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    with pytest.raises(FileExistsError):
        secrets.write_private(p, target)


def test_private_copy_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = secrets.private_path(tmp_path, "run2")
    target.parent.parent.mkdir(parents=True)
    target.parent.mkdir(mode=0o700)
    os.symlink(tmp_path / "elsewhere", target)
    # The run dir already exists (planted): refused before anything is written.
    with pytest.raises(FileExistsError):
        secrets.write_private(secrets.Passphrase("v", "env"), target)
    assert not (tmp_path / "elsewhere").exists()
