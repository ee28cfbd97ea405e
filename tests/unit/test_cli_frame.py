"""The CLI frame: --version, env vars in --help, the JSON envelope contract, usage errors, one exit path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrctl import __version__
from asrctl.cli import run
from asrctl.errors import CATALOGUE, EXIT_USAGE, msi_exit

ENVELOPE_KEYS = ["asrctl_result_version", "command", "ok", "changed", "reboot_required", "error", "data"]


def _ubuntu(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n")
    (root / "etc/os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n')
    return root


def test_version(capsys) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"asrctl {__version__}"


def test_help_names_every_env_var(capsys) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for var in ("ASRCTL_ROOT", "ASRCTL_BUNDLE_DIR", "ASRCTL_JSON", "ASRCTL_EXIT_CODES"):
        assert var in out


def test_envelope_keys_are_pinned(tmp_path: Path, capsys) -> None:
    assert run(["--root", str(_ubuntu(tmp_path)), "--json", "detect"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc) == ENVELOPE_KEYS
    assert doc["asrctl_result_version"] == 1
    assert doc["command"] == "detect"
    assert (doc["ok"], doc["changed"], doc["reboot_required"], doc["error"]) == (True, False, False, None)
    # People-facing text went to stderr only.
    assert "UBUNTU-22.04-64" in captured.err


def test_no_json_means_nothing_on_stdout(tmp_path: Path, capsys) -> None:
    assert run(["--root", str(_ubuntu(tmp_path)), "detect"]) == 0
    assert capsys.readouterr().out == ""


def test_usage_error_is_exit_2_with_an_envelope(capsys) -> None:
    assert run(["--json", "detect", "--no-such-option"]) == EXIT_USAGE
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["ok"] is False and doc["error"]["code"] == "ASRCTL-E002"
    assert "no-such-option" in captured.err


def test_bad_root_is_a_clear_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    assert run(["--json", "--root", str(tmp_path / "missing"), "detect"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "ASRCTL-E012"
    assert "Traceback" not in captured.err
    file = tmp_path / "file"
    file.write_text("x")
    assert run(["--root", str(file), "detect"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_internal_error_is_exit_1_and_names_the_log(tmp_path: Path, capsys, monkeypatch) -> None:
    from asrctl.app import App

    def boom(app):  # a bug somewhere in a verb
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(App, "platform_json", boom)
    assert run(["--json", "--root", str(_ubuntu(tmp_path)), "detect"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["error"]["code"] == "ASRCTL-E001"
    assert "ZeroDivisionError" in doc["error"]["message"]


def test_catalogue_codes_are_stable_and_complete() -> None:
    for code, spec in CATALOGUE.items():
        assert code.startswith("ASRCTL-E") and len(code) == 11
        assert spec.exit in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 130, 143)
        assert spec.remedy and spec.title


@pytest.mark.parametrize(
    ("exit_code", "code", "reboot", "expected"),
    [
        (0, None, False, 0),
        (0, None, True, 3010),
        (2, "ASRCTL-E002", False, 1639),
        (6, "ASRCTL-E042", False, 1618),
        (6, "ASRCTL-E045", False, 1638),
        (3, "ASRCTL-E010", False, 1633),
        (7, "ASRCTL-E060", False, 1603),
        (8, "ASRCTL-E081", False, 1603),
    ],
)
def test_msi_mapping(exit_code: int, code: str | None, reboot: bool, expected: int) -> None:
    assert msi_exit(exit_code, CATALOGUE[code] if code else None, reboot) == expected


def test_unsupported_exit_3_and_msi_1633(tmp_path: Path, capsys) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=23.10\n")
    assert run(["--root", str(tmp_path), "detect"]) == 3
    assert run(["--exit-codes", "msi", "--root", str(tmp_path), "detect"]) == 1633
    assert "not an LTS release" in capsys.readouterr().err
