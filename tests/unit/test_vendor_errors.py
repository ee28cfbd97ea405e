"""Microsoft's extended-errors file: parsed leniently, read safely, mapped to asrctl's codes where known."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from asrctl.agent import vendor_errors
from asrctl.agent.base import VendorOutcome, vendor_result
from asrctl.agent.vendor_errors import KNOWN, MAX_BYTES, VendorError, details, mapped, parse, read
from asrctl.errors import CATALOGUE, AsrctlError
from asrctl.output import Output
from asrctl.system.runner import Completed

# Exactly what Microsoft's log_to_json_errors_file writes (tabs, one field per line), two errors.
LINUX = (
    '{\n\t"Errors":\n\t[\n\t\t{\n\t\t\t"error_name":"ASRMobilityServiceSecureBootEnabled",\n'
    '\t\t\t"error_params":{"VMName":"web01"},\n\t\t\t"default_message":"Secure Boot is enabled on web01."\n'
    '\t\t},\n\t\t{\n\t\t\t"error_name":"ASRMobilityServiceFreeSpaceOnRootNotSufficient",\n'
    '\t\t\t"error_params":{"FreeSpace":"1048576"},\n\t\t\t"default_message":"Not enough space on /."\n\t\t}\n\t]\n}\n'
)
# Newtonsoft, indented (Windows' ErrorLogger).
WINDOWS = """{
  "Errors": [
    {
      "error_name": "ASRMobilityServiceInstallerWMIQueryFailure",
      "error_params": {},
      "default_message": "WMI query failed."
    }
  ]
}"""


def test_strict_json_both_writers() -> None:
    assert parse(LINUX) == [
        VendorError("ASRMobilityServiceSecureBootEnabled", "Secure Boot is enabled on web01.", {"VMName": "web01"}),
        VendorError(
            "ASRMobilityServiceFreeSpaceOnRootNotSufficient", "Not enough space on /.", {"FreeSpace": "1048576"}
        ),
    ]
    assert parse(WINDOWS) == [VendorError("ASRMobilityServiceInstallerWMIQueryFailure", "WMI query failed.", {})]


def test_unescaped_quotes_and_backslashes_are_read_leniently() -> None:
    """Microsoft escapes nothing: a quote in a host name or a backslash in a message breaks JSON, not asrctl."""
    text = LINUX.replace("web01", 'we"b\\01')
    with pytest.raises(ValueError):
        import json

        json.loads(text)
    errors = parse(text)
    assert [e.name for e in errors] == [
        "ASRMobilityServiceSecureBootEnabled",
        "ASRMobilityServiceFreeSpaceOnRootNotSufficient",
    ]
    assert errors[0].message == 'Secure Boot is enabled on we"b\\01.'
    assert errors[0].params == {"VMName": 'we"b\\01'}
    assert errors[1].params == {"FreeSpace": "1048576"}


@pytest.mark.parametrize(
    "text",
    ["", "not json at all", "{}", '{"Errors": "x"}', '{"Errors": [1, {"error_name": 2}]}', "\x00\xff" * 100],
)
def test_nothing_usable_is_no_error(text: str) -> None:
    assert parse(text) == []


def test_a_truncated_file_still_gives_what_it_has() -> None:
    cut = LINUX[: LINUX.index("ASRMobilityServiceFreeSpace")]
    assert [e.name for e in parse(cut)] == ["ASRMobilityServiceSecureBootEnabled"]


def test_read_a_regular_file_in_the_run_dir(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text(LINUX)
    errors, raw = read(tmp_path / "e.json", tmp_path)
    assert raw == LINUX and len(errors) == 2
    assert read(tmp_path / "missing.json", tmp_path) == ([], None)


def test_read_refuses_what_is_not_a_regular_file_inside_the_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text(LINUX)
    (run / "link.json").symlink_to(outside)
    assert read(run / "link.json", run) == ([], None)  # a link is not followed
    assert read(outside, run) == ([], None)  # not in the run dir
    assert read(run / ".." / "outside.json", run) == ([], None)
    (run / "dir.json").mkdir()
    assert read(run / "dir.json", run) == ([], None)
    os.mkfifo(run / "fifo.json")
    done: list[object] = []
    reader = threading.Thread(target=lambda: done.append(read(run / "fifo.json", run)), daemon=True)
    reader.start()
    reader.join(30)  # a generous bound on a test that must not hang; it returns at once
    assert done == [([], None)]


def test_read_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.write(LINUX.encode())
        fh.seek(50 * 1024 * 1024)
        fh.write(b"\n")
    errors, raw = read(big, tmp_path)
    assert raw is not None and len(raw) == MAX_BYTES
    assert len(errors) == 2


def test_details_add_asrctls_causes_and_action_for_known_names() -> None:
    errors = [
        VendorError("ASRMobilityServiceKernelNotSupported", "not supported", {"KernelVersion": "6.8.0-99-generic"}),
        VendorError("ASRMobilityServiceSomethingNew", "Microsoft's own words.", {"X": "1"}),
    ]
    known, unknown = details(errors)
    assert known["code"] == "ASRMobilityServiceKernelNotSupported"
    assert known["asrctl_code"] == "ASRCTL-E056"
    assert "6.8.0-99-generic" in known["possible_causes"] and "6.8.0-99-generic" in known["recommended_action"]
    assert known["params"] == {"KernelVersion": "6.8.0-99-generic"}
    assert unknown == {
        "code": "ASRMobilityServiceSomethingNew",
        "message": "Microsoft's own words.",
        "params": {"X": "1"},
    }


def test_mapped_is_the_first_known_name_in_microsofts_order() -> None:
    errors = [
        VendorError("ASRMobilityServiceSomethingNew", "x"),
        VendorError("ASRMobilityServiceFreeSpaceOnRootNotSufficient", "y", {"FreeSpace": "2097152"}),
        VendorError("ASRMobilityServiceSecureBootEnabled", "z"),
    ]
    code, remedy = mapped(errors) or ("", "")
    assert code == "ASRCTL-E041" and "2097152 KB" in remedy
    assert mapped([VendorError("ASRMobilityServiceSomethingNew", "x")]) is None


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_table_is_sound(name: str) -> None:
    known = KNOWN[name]
    assert known.code in CATALOGUE
    assert CATALOGUE[known.code].exit in (6, 7, 8)
    for text in (known.causes, known.action):
        filled = vendor_errors._fill(text, {})  # a missing param shows as "?", never an exception
        assert "{" not in filled


def _fail(errors: list[VendorError], code: str = "ASRCTL-E053", rc: int = 99) -> AsrctlError:
    outcome = VendorOutcome(False, error_code=code, message="the bundle's prerequisite checks failed")
    with pytest.raises(AsrctlError) as caught:
        vendor_result(Completed(["install"], rc), outcome, tool="the installer", default_code="ASRCTL-E060",
                      out=Output(json_mode=True), vendor=errors)  # fmt: skip
    return caught.value


def test_a_failure_carries_microsofts_errors_and_the_mapped_code() -> None:
    err = _fail([VendorError("ASRMobilityServiceSecureBootEnabled", "Secure Boot is enabled on web01.")])
    assert err.code == "ASRCTL-E055" and err.exit_code == 6
    assert "Secure Boot" in err.remedy and "firmware" in err.remedy
    assert "ASRMobilityServiceSecureBootEnabled: Secure Boot is enabled on web01." in err.message
    assert err.as_json()["details"]["vendor_errors"][0]["code"] == "ASRMobilityServiceSecureBootEnabled"
    assert err.details["vendor_exit_code"] == 99


def test_unknown_names_pass_through_verbatim_under_the_tools_code() -> None:
    err = _fail([VendorError("ASRMobilityServiceSomethingNew", "Microsoft's own words.")])
    assert err.code == "ASRCTL-E053"
    assert err.details["vendor_errors"] == [
        {"code": "ASRMobilityServiceSomethingNew", "message": "Microsoft's own words.", "params": {}}
    ]


def test_a_precise_code_is_kept() -> None:
    """A transient 'cannot connect' stays that (and retried), whatever else the errors file says."""
    err = _fail([VendorError("ConfiguratorInternalError", "x")], code="ASRCTL-E082", rc=97)
    assert err.code == "ASRCTL-E082"
    assert err.details["vendor_errors"][0]["asrctl_code"] == "ASRCTL-E080"


def test_success_with_warnings_keeps_the_warnings() -> None:
    done = vendor_result(
        Completed(["install"], 98),
        VendorOutcome(True, warning="succeeded with warnings"),
        tool="the installer",
        default_code="ASRCTL-E060",
        out=Output(json_mode=True),
        vendor=[VendorError("ASRMobilityServiceSomethingNew", "a warning")],
    )
    assert done["vendor_errors"][0]["message"] == "a warning"
