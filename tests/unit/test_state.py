"""What "whole" means for a host (lifecycle/state.py), table-tested: the invariant every changing verb keeps and
the fault-injection suite asserts."""

from __future__ import annotations

import pytest
from fakes.hoststate import ABSENT, DOWN, HALF, MARKER, NONE_RUNNING, UP, VX, agent, state

from asrctl.lifecycle.outcome import left_with, outcome_json
from asrctl.lifecycle.state import HostState, describe, endpoint_key, same, whole

WHOLE_CASES = [
    ("nothing at all", ABSENT, []),
    ("registered and running", state(agent()), []),
    ("installed, not registered, running", state(agent(registered=False)), []),
    ("services stopped", state(agent(), services=DOWN), ["services stopped: svagents, appservice"]),
    ("one service stopped", state(agent(), services=HALF), ["services stopped: appservice"]),
    (
        "files without the version file (a killed install)",
        state(None, None, VX, NONE_RUNNING),
        [f"half-installed: the agent's files are there in {VX}, its version file is not"],
    ),
    (
        "version file without the files",
        state(agent(), files=None, services=NONE_RUNNING),
        [
            "half-installed: the version file names /r/usr/local/ASR, but its files are missing",
            "services stopped: svagents, appservice",
        ],
    ),
    (
        "unreadable version file",
        state(None, MARKER, VX, NONE_RUNNING, unreadable="no VERSION in it"),
        ["half-installed: no VERSION in it"],
    ),
    (
        "agent processes without an agent",
        state(None, None, None, UP),
        ["agent processes run without an installed agent: svagents, appservice"],
    ),
    (
        "a vendor lock left behind",
        state(agent(), lock="/r/usr/local/ASR/.uninstall.lck"),
        ["a vendor tool's lock was left behind: /r/usr/local/ASR/.uninstall.lck (an interrupted uninstall)"],
    ),
]


@pytest.mark.parametrize(("name", "host", "reasons"), WHOLE_CASES, ids=[c[0] for c in WHOLE_CASES])
def test_whole(name: str, host: HostState, reasons: list[str]) -> None:
    assert whole(host) == reasons


@pytest.mark.parametrize(
    ("host", "text"),
    [
        (ABSENT, "nothing of the Mobility Service is installed"),
        (state(agent()), "Mobility Service 9.65.7417.1, registered with cs:443, running"),
        (state(agent(registered=False)), "Mobility Service 9.65.7417.1, not registered, running"),
        (
            state(agent(), services=DOWN),
            "Mobility Service 9.65.7417.1, registered with cs:443, is not whole (services stopped: svagents, "
            "appservice)",
        ),
    ],
)
def test_describe(host: HostState, text: str) -> None:
    assert describe(host) == text


def test_same_state_means_same_agent_and_registration_and_at_least_as_whole() -> None:
    assert same(state(agent()), state(agent()))
    assert same(ABSENT, ABSENT)
    assert not same(state(agent()), state(agent("9.66.7567.1")))
    assert not same(state(agent()), state(agent(registered=False)))
    assert not same(state(agent()), state(agent(endpoint="other:443")))
    assert not same(state(agent()), state(agent(), services=DOWN)), "less whole than before is a change"
    assert same(state(agent(), services=DOWN), state(agent())), "more whole is the same state"
    assert not same(ABSENT, state(agent()))


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("cs", "CS:443", True), ("10.0.0.5:443", "10.0.0.5", True), ("cs:8443", "cs", False), (None, None, True)],
)
def test_endpoints_compare_on_host_and_port(a: str | None, b: str | None, equal: bool) -> None:
    assert (endpoint_key(a) == endpoint_key(b)) is equal


OUTCOMES = [
    # before, after, reached, undone -> state, note
    (ABSENT, state(agent()), True, [], "requested", "the host has what was asked"),
    (state(agent()), state(agent()), False, [], "previous", "the agent was kept as it was: Mobility Service"),
    (
        state(agent()),
        state(agent()),
        False,
        ["start the services"],
        "previous",
        "rolled back (start the services): the previous state holds again: Mobility Service 9.65.7417.1",
    ),
    (ABSENT, ABSENT, False, ["remove it"], "previous", "rolled back (remove it): nothing of the Mobility Service"),
    (
        ABSENT,
        state(agent(registered=False)),
        False,
        [],
        "other",
        "the agent that was installed is kept: Mobility Service 9.65.7417.1, not registered, running",
    ),
    (state(agent()), state(agent("9.66.7567.1"), services=DOWN), False, [], "other", "NOT in a whole state"),
]


@pytest.mark.parametrize(("before", "after", "reached", "undone", "kind", "note"), OUTCOMES)
def test_outcome_and_what_the_error_says_was_left(
    before: HostState, after: HostState, reached: bool, undone: list[str], kind: str, note: str
) -> None:
    doc = outcome_json(before, after, reached)
    assert doc["state"] == kind
    assert doc["whole"] is (not whole(after))
    assert doc["summary"] == describe(after)
    assert note in left_with(before, after, reached, undone)


def test_json_is_the_status_shape() -> None:
    doc = state(agent()).as_json()
    assert set(doc) == {
        "installed",
        "version",
        "build",
        "install_dir",
        "registered",
        "cs_endpoint",
        "cs_type",
        "services",
    }
    assert ABSENT.as_json()["installed"] is False and ABSENT.as_json()["services"] == []
