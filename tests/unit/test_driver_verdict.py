"""The driver's health reasons (asrctl/kernels/verdict.py), one row per rule of its table, and how they move the
verdict of lifecycle/health.py."""

from __future__ import annotations

import pytest

from asrctl.kernels.verdict import BROKEN, DEGRADED, DriverFacts, driver_reasons
from asrctl.lifecycle import health

RUN, NEXT = "5.15.0-1103-azure", "5.15.0-1110-azure"
OK_LOADED = {
    "loaded": True,
    "device": True,
    "running": RUN,
    "running_status": "supported",
    "agent_version": "9.66.7567.1",
}


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (DriverFacts(loaded=None), []),  # /proc/modules unreadable: unknown is not a failure
        (DriverFacts(**OK_LOADED), []),
        (DriverFacts(loaded=False, running=RUN), [("driver_not_loaded", BROKEN)]),
        (DriverFacts(loaded=False, running=RUN, running_status="unsupported"), [("kernel_unsupported", BROKEN)]),
        (DriverFacts(**{**OK_LOADED, "device": False}), [("driver_no_device", BROKEN)]),
        (DriverFacts(**{**OK_LOADED, "device_problem": "/dev/involflt has major 239"}), [("driver_no_device", BROKEN)]),
        (DriverFacts(**{**OK_LOADED, "faulty_version": "9.66.7722.1"}), [("driver_faulty", DEGRADED)]),
        # A loaded driver the list does not name (a driver package's): it works, no reason.
        (DriverFacts(**{**OK_LOADED, "running_status": "unsupported"}), []),
        (
            DriverFacts(**OK_LOADED, next_kernel=NEXT, next_status="unsupported", next_source="BLS"),
            [("next_boot_unsupported", DEGRADED)],
        ),
        (DriverFacts(**OK_LOADED, next_kernel=NEXT, next_status="unknown"), []),
        (DriverFacts(**OK_LOADED, next_kernel=RUN, next_status="unsupported"), []),  # the running one: said above
        (
            DriverFacts(
                loaded=False, running=RUN, running_status="unsupported", next_kernel=NEXT, next_status="unsupported"
            ),
            [("kernel_unsupported", BROKEN), ("next_boot_unsupported", DEGRADED)],
        ),
    ],
)
def test_driver_reasons(facts: DriverFacts, expected: list[tuple[str, str]]) -> None:
    found = driver_reasons(facts)
    assert [(rid, sev) for rid, sev, _ in found] == expected
    assert all(message for _, _, message in found)


def test_the_faulty_reason_names_the_resync_before_the_remedy() -> None:
    [(_, _, message)] = driver_reasons(DriverFacts(**{**OK_LOADED, "faulty_version": "9.66.7709.1"}))
    assert "9.66.7709.1" in message and "resyncs in full" in message and "asrctl drivers install" in message


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (DriverFacts(**{**OK_LOADED, "faulty_version": "9.66.7722.1"}), health.DEGRADED),
        (DriverFacts(loaded=False, running=RUN), health.BROKEN),
        (DriverFacts(**OK_LOADED), health.OK),
    ],
)
def test_driver_reasons_set_the_health_verdict_of_a_healthy_agent(facts: DriverFacts, status: str) -> None:
    from fakes.hoststate import agent, state

    reasons = tuple(health.Reason(*r) for r in driver_reasons(facts))
    got = health.verdict(health.Facts(state(agent()), driver=reasons))
    assert got.status == status and [r.id for r in got.reasons] == [r.id for r in reasons]
