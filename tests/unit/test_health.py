"""The health verdict (lifecycle/health.py) is a pure function: every rule of its table, and the worst wins."""

from __future__ import annotations

import pytest
from fakes.hoststate import ABSENT, DOWN, HALF, MARKER, NONE_RUNNING, VX, agent, state

from asrctl.lifecycle.health import BROKEN, DEGRADED, OK, Facts, Reason, verdict
from asrctl.lifecycle.status import check_error

HEALTHY = state(agent())
DEAD = {"command": "install", "pid": 4194000, "started": "yesterday", "status": "running"}

CASES = [
    # name, facts, status, reason ids
    ("registered and running", Facts(HEALTHY), OK, []),
    ("not installed", Facts(ABSENT), BROKEN, ["not_installed"]),
    ("services stopped", Facts(state(agent(), services=DOWN)), BROKEN, ["services_stopped"]),
    ("one service stopped", Facts(state(agent(), services=HALF)), BROKEN, ["services_stopped"]),
    ("files without version file", Facts(state(None, None, VX, NONE_RUNNING)), BROKEN, ["half_installed"]),
    ("version file without files", Facts(state(agent(), files=None)), BROKEN, ["half_installed"]),
    (
        "unreadable version file",
        Facts(state(None, MARKER, VX, NONE_RUNNING, unreadable="x")),
        BROKEN,
        ["half_installed"],
    ),
    ("never registered", Facts(state(agent(registered=False))), DEGRADED, ["not_registered"]),
    (
        "registration lost",
        Facts(state(agent(registered=False)), registration_recorded=True),
        BROKEN,
        ["registration_lost"],
    ),
    ("stray processes", Facts(state(None, None, None)), BROKEN, ["not_installed", "stray_processes"]),
    ("vendor lock left", Facts(state(agent(), lock="/r/usr/local/ASR/.uninstall.lck")), DEGRADED, ["vendor_lock"]),
    ("killed run", Facts(HEALTHY, dead_run=DEAD), DEGRADED, ["interrupted_run"]),
    ("leftovers", Facts(HEALTHY, leftovers=("/r/var/lib/asrctl/staging/abc",)), DEGRADED, ["leftovers"]),
    ("run in progress", Facts(HEALTHY, busy={"pid": 1, "command": "upgrade"}), DEGRADED, ["run_in_progress"]),
    (
        "reboot pending",
        Facts(HEALTHY, pending_reboot="the system says a reboot is required"),
        DEGRADED,
        ["reboot_pending"],
    ),
    (
        "driver reasons from the kernel work",
        Facts(HEALTHY, driver=(Reason("driver_not_loaded", BROKEN, "involflt is not loaded"),)),
        BROKEN,
        ["driver_not_loaded"],
    ),
    (
        "the worst wins",
        Facts(state(agent(), services=DOWN), pending_reboot="reboot", dead_run=DEAD),
        BROKEN,
        ["services_stopped", "interrupted_run", "reboot_pending"],
    ),
]


@pytest.mark.parametrize(("name", "facts", "status", "ids"), CASES, ids=[c[0] for c in CASES])
def test_verdict(name: str, facts: Facts, status: str, ids: list[str]) -> None:
    health = verdict(facts)
    assert health.status == status
    assert [r.id for r in health.reasons] == ids
    assert health.ok is (status == OK)
    doc = health.as_json()
    assert doc["status"] == status and all(set(r) == {"id", "severity", "message"} for r in doc["reasons"])


def test_a_stray_process_is_only_degraded_on_its_own() -> None:
    reasons = verdict(Facts(state(None, None, None))).reasons
    assert {r.id: r.severity for r in reasons} == {"not_installed": BROKEN, "stray_processes": DEGRADED}


@pytest.mark.parametrize(
    ("facts", "code", "exit_code"),
    [
        (Facts(HEALTHY), None, 0),
        (Facts(state(agent(registered=False))), "ASRCTL-E073", 9),
        (Facts(ABSENT), "ASRCTL-E074", 10),
    ],
)
def test_check_exit_codes(facts: Facts, code: str | None, exit_code: int) -> None:
    error = check_error(verdict(facts).as_json())
    if code is None:
        assert error is None
        return
    assert error is not None and (error.code, error.exit_code) == (code, exit_code)
    assert error.details["reasons"] == [r.id for r in verdict(facts).reasons]
