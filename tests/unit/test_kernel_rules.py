"""Microsoft's installer rules per tag (platforms/kernels.toml applied by asrctl/kernels/rules.py), table-tested.

Each row is one fact of docs/KERNELS.md: Ubuntu/Debian exact line, SLES -default without the list, the RHEL/OL
ranges, and "unknown" wherever asrctl has no rule or the known copies of Microsoft's checker disagree."""

from __future__ import annotations

import copy

import pytest

from asrctl.errors import AsrctlError
from asrctl.kernels import lists, rules

UBUNTU = lists.parse(b"5.15.0-1090-azure\n5.15.0-25-generic\n", "supported_kernels")
UNTERMINATED = lists.parse(b"4.8.0-56-generic\n4.8.0-58-generic", "supported_kernels")
SLES = lists.parse(b"6.4.0-150700.20.15-azure:7\n6.4.0-150700.53.22-default:7\n", "supported_kernels")
EMPTY = lists.parse(b"", "supported_kernels")
S, U, K = rules.SUPPORTED, rules.UNSUPPORTED, rules.UNKNOWN


@pytest.mark.parametrize(
    ("tag", "kernel", "listed", "status", "how"),
    [
        # Ubuntu and Debian: the exact uname -r is a line of the list; no list: nothing is supported.
        ("UBUNTU-22.04-64", "5.15.0-1090-azure", UBUNTU, S, "list"),
        ("UBUNTU-22.04-64", "5.15.0-1091-azure", UBUNTU, U, "list"),
        ("UBUNTU-22.04-64", "5.15.0-1090-azure", None, U, "no-list"),
        ("DEBIAN12-64", "5.15.0-25-generic", UBUNTU, S, "list"),
        ("UBUNTU-16.04-64", "4.8.0-56-generic", UNTERMINATED, S, "list"),
        # The last line without a final newline: Microsoft's `while read` never sees it.
        ("UBUNTU-16.04-64", "4.8.0-58-generic", UNTERMINATED, U, "list"),
        # SLES 12/15: any -default kernel passes without the list; others need kver:SP (the SP is not checked).
        ("SLES15-64", "6.4.0-150700.53.22-default", SLES, S, "sles-default"),
        ("SLES15-64", "6.4.0-150700.99.1-default", SLES, S, "sles-default"),
        ("SLES15-64", "6.4.0-150700.99.1-default", None, S, "sles-default"),
        ("SLES12-64", "6.4.0-150700.20.15-azure", SLES, S, "list"),
        ("SLES15-64", "6.4.0-150700.20.16-azure", SLES, U, "list"),
        ("SLES15-64", "6.4.0-150700.20.16-azure", None, U, "no-list"),
        # SLES 11: 3.0 -default/-xen only.
        ("SLES11-SP4-64", "3.0.101-63-default", None, S, "rule"),
        ("SLES11-SP3-64", "3.0.101-63-xen", None, S, "rule"),
        ("SLES11-SP4-64", "3.12.28-4-default", None, U, "rule"),
        # RHEL5: Microsoft's range test is always true.
        ("RHEL5-64", "2.6.18-8.el5", EMPTY, S, "rule"),
        ("RHEL5-64", "2.6.18-419.el5xen", EMPTY, S, "rule"),
        ("RHEL5-64", "2.6.32-71.el6.x86_64", EMPTY, U, "rule"),
        # RHEL6: 2.6.32 minors 71-754.
        ("RHEL6-64", "2.6.32-754.35.1.el6.x86_64", EMPTY, S, "rule"),
        ("RHEL6-64", "2.6.32-71.el6.x86_64", EMPTY, S, "rule"),
        ("RHEL6-64", "2.6.32-70.el6.x86_64", EMPTY, U, "rule"),
        ("RHEL6-64", "2.6.32-755.el6.x86_64", EMPTY, U, "rule"),
        ("RHEL6-64", "2.6.32-431.el6.centos.plus.x86_64", EMPTY, S, "rule"),
        # RHEL7: any .el7.x86_64.
        ("RHEL7-64", "3.10.0-1160.119.1.el7.x86_64", EMPTY, S, "rule"),
        ("RHEL7-64", "4.18.0-80.el8.x86_64", EMPTY, U, "rule"),
        # RHEL8: el8; 8.4/8.5 GA and early kernels have no driver; where Microsoft moved the threshold: unknown.
        ("RHEL8-64", "4.18.0-553.22.1.el8_10.x86_64", EMPTY, S, "rule"),
        ("RHEL8-64", "4.18.0-305.el8.x86_64", EMPTY, U, "rule"),
        ("RHEL8-64", "4.18.0-305.1.2.el8_4.x86_64", EMPTY, U, "rule"),
        ("RHEL8-64", "4.18.0-305.3.1.el8_4.x86_64", EMPTY, K, "rule"),
        ("RHEL8-64", "4.18.0-305.25.1.el8_4.x86_64", EMPTY, K, "rule"),
        ("RHEL8-64", "4.18.0-305.30.1.el8_4.x86_64", EMPTY, S, "rule"),
        ("RHEL8-64", "4.18.0-305.148.1.el8_4.x86_64", EMPTY, S, "rule"),
        ("RHEL8-64", "4.18.0-348.el8.x86_64", EMPTY, U, "rule"),
        ("RHEL8-64", "4.18.0-348.2.1.el8_5.x86_64", EMPTY, K, "rule"),
        ("RHEL8-64", "4.18.0-348.7.1.el8_5.x86_64", EMPTY, S, "rule"),
        ("RHEL8-64", "3.10.0-1160.el7.x86_64", EMPTY, U, "rule"),
        # OL6: RHCK 358-754, UEK 3.8.13/4.1.12.
        ("OL6-64", "2.6.32-754.el6.x86_64", EMPTY, S, "rule"),
        ("OL6-64", "2.6.32-220.el6.x86_64", EMPTY, U, "rule"),
        ("OL6-64", "4.1.12-124.48.6.el6uek.x86_64", EMPTY, S, "rule"),
        ("OL6-64", "4.14.35-1902.el6uek.x86_64", EMPTY, U, "rule"),
        # OL7: RHCK or any el7uek.
        ("OL7-64", "3.10.0-1160.el7.x86_64", EMPTY, S, "rule"),
        ("OL7-64", "5.4.17-2136.300.7.el7uek.x86_64", EMPTY, S, "rule"),
        # OL8: any UEK; RHCK 80-348 known, 8.6+ is unknown (the known checker copy predates 9.66).
        ("OL8-64", "5.15.0-200.131.27.el8uek.x86_64", EMPTY, S, "rule"),
        ("OL8-64", "4.18.0-80.el8.x86_64", EMPTY, S, "rule"),
        ("OL8-64", "4.18.0-305.el8.x86_64", EMPTY, U, "rule"),
        ("OL8-64", "4.18.0-372.9.1.el8.x86_64", EMPTY, K, "rule"),
        # No rule at all: the bundle's own checker decides.
        ("RHEL9-64", "5.14.0-427.13.1.el9_4.x86_64", EMPTY, K, "no-rule"),
        ("OL9-64", "5.15.0-200.el9uek.x86_64", EMPTY, K, "no-rule"),
        ("RHEL10-64", "6.12.0-55.el10.x86_64", EMPTY, K, "no-rule"),
        ("OL10-64", "6.12.0-55.el10.x86_64", EMPTY, K, "no-rule"),
    ],
)
def test_rules(tag: str, kernel: str, listed: lists.KernelList | None, status: str, how: str) -> None:
    verdict = rules.judge(kernel, tag, listed)
    assert (verdict.status, verdict.how) == (status, how), verdict.why
    assert verdict.why


def test_a_published_list_counts_its_unterminated_last_line_with_a_note() -> None:
    verdict = rules.judge("4.8.0-58-generic", "UBUNTU-16.04-64", UNTERMINATED, installer=False)
    assert verdict.status == S and "no final newline" in verdict.why


def test_sles_sp_is_reported_when_listed() -> None:
    assert rules.judge("6.4.0-150700.53.22-default", "SLES15-64", SLES).sp == 7
    assert rules.judge("6.4.0-150700.20.15-azure", "SLES15-64", SLES).sp == 7


def test_uses_list() -> None:
    assert rules.uses_list("UBUNTU-24.04-64") and rules.uses_list("DEBIAN12-64") and rules.uses_list("SLES15-64")
    assert not rules.uses_list("RHEL8-64") and not rules.uses_list("RHEL9-64")


def test_worst() -> None:
    assert rules.worst([S, K, S]) == K and rules.worst([S, U, K]) == U and rules.worst([S]) == S
    assert rules.worst([]) == K


def test_broken_data_is_refused_at_load_time() -> None:
    data = copy.deepcopy(rules.load())
    data["tag"][2]["rule"][0]["verdict"] = "maybe"
    with pytest.raises(AsrctlError) as err:
        rules.validate(data)
    assert err.value.code == "ASRCTL-E013"
    with pytest.raises(AsrctlError):
        rules.validate({"schema": 2, "tag": []})
