"""The Windows vendor tools' exit codes (asrctl/agent/windows_codes.py): pure tables, no backend needed."""

from __future__ import annotations

import pytest

from asrctl.agent.windows_codes import (
    MSI_CODES,
    SUCCESS_CODES,
    VENDOR_CODES,
    configurator_outcome,
    installer_outcome,
    msiexec_outcome,
)
from asrctl.errors import CATALOGUE
from asrctl.system.runner import Completed


@pytest.mark.parametrize(
    ("rc", "code", "exit_code"),
    [
        (62, "ASRCTL-E043", 6),  # restart pending
        (16, "ASRCTL-E053", 6),  # .NET missing
        (42, "ASRCTL-E010", 3),  # unsupported OS
        (15, "ASRCTL-E045", 6),  # downgrade
        (41, "ASRCTL-E054", 6),  # another instance
        (43, "ASRCTL-E062", 7),  # services would not stop
        (1, "ASRCTL-E060", 7),
        (97, "ASRCTL-E060", 7),
    ],
)
def test_documented_codes_map_to_asrctl_outcomes(rc: int, code: str, exit_code: int) -> None:
    outcome = installer_outcome(rc)
    assert not outcome.ok and outcome.error_code == code
    assert CATALOGUE[code].exit == exit_code


def test_every_mapped_code_is_in_the_catalogue() -> None:
    for code, _ in VENDOR_CODES.values():
        assert code in CATALOGUE
    for code, _ in MSI_CODES.values():
        assert code in (None, "fail") or code in CATALOGUE


@pytest.mark.parametrize("rc", sorted(SUCCESS_CODES))
def test_success_codes_are_ok_for_the_installer_and_the_configurator(rc: int) -> None:
    installer = installer_outcome(rc)
    configurator = configurator_outcome(Completed(["UnifiedAgentConfigurator.exe"], rc))
    for outcome in (installer, configurator):
        assert outcome.ok and outcome.error_code is None
        assert outcome.reboot_required is (rc in (3010, 1641))
    if rc == 98:
        assert "ASRUnifiedAgentInstaller.log" in (installer.warning or "")
        assert "ASRUnifiedAgentConfigurator.log" in (configurator.warning or "")


@pytest.mark.parametrize(
    ("output", "code"),
    [
        ("curl: (7) Failed to connect", "ASRCTL-E082"),
        ("Couldn't connect to server", "ASRCTL-E082"),
        ("curl: (60) SSL certificate problem", "ASRCTL-E083"),
        ("", "ASRCTL-E080"),
    ],
)
def test_configurator_failures_read_its_output_first(output: str, code: str) -> None:
    outcome = configurator_outcome(Completed(["UnifiedAgentConfigurator.exe"], 1, stdout=output))
    assert not outcome.ok and outcome.error_code == code


def test_a_plain_installer_failure_is_a_registration_failure_for_the_configurator() -> None:
    assert installer_outcome(1).error_code == "ASRCTL-E060"
    assert configurator_outcome(Completed(["UnifiedAgentConfigurator.exe"], 1)).error_code == "ASRCTL-E080"
    assert configurator_outcome(Completed(["UnifiedAgentConfigurator.exe"], 14)).error_code == "ASRCTL-E081"


@pytest.mark.parametrize(
    ("rc", "ok", "code", "reboot"),
    [
        (0, True, None, False),
        (3010, True, None, True),
        (1641, True, None, True),
        (1605, True, None, False),
        (1618, False, "ASRCTL-E054", False),
        (1603, False, "ASRCTL-E065", False),
        (12345, False, "ASRCTL-E065", False),
    ],
)
def test_msiexec_outcome(rc: int, ok: bool, code: str | None, reboot: bool) -> None:
    outcome = msiexec_outcome(rc, "ASRCTL-E065")
    assert (outcome.ok, outcome.error_code, outcome.reboot_required) == (ok, code, reboot)
    assert (outcome.warning is None) is (rc == 0 or not ok)
