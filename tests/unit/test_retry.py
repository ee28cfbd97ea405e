"""asrctl.system.retry: the schedule as a table, run with a recording ``sleep`` (nothing here waits)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from asrctl.errors import AsrctlError
from asrctl.system.retry import backoff, describe, retry


class Transient(Exception):
    pass


class Fatal(Exception):
    pass


class Recorder:
    """``fn`` for retry(): plays ``outcomes`` (an exception is raised, anything else returned), the last one
    again when they run out; records the calls, the waits and the on_retry calls."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.sleeps: list[float] = []
        self.retries: list[tuple[int, float, str]] = []
        self.last: Any = None

    def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else self.last
        self.last = outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        return {
            "sleep": self.sleeps.append,
            "on_retry": lambda attempt, delay, exc: self.retries.append((attempt, delay, describe(exc))),
            "is_transient": lambda exc: isinstance(exc, Transient | ConnectionError | TimeoutError),
            "jitter": 0.0,
            **extra,
        }


T, F = Transient("again"), Fatal("no")


@pytest.mark.parametrize(
    ("outcomes", "policy", "result", "calls", "sleeps"),
    [
        # succeeds at once: no wait
        (["ok"], {"attempts": 3, "base_delay": 1}, "ok", 1, []),
        # doubling waits
        ([T, T, "ok"], {"attempts": 5, "base_delay": 2}, "ok", 3, [2, 4]),
        # the cap on one wait
        ([T, T, T, T, "ok"], {"attempts": 5, "base_delay": 10, "max_delay": 25}, "ok", 5, [10, 20, 25, 25]),
        # the budget: the last wait is cut to fit, then nothing is left
        ([T], {"attempts": 10, "base_delay": 10, "max_total": 25}, Transient, 3, [10, 15]),
        # the budget exactly used up by whole waits
        ([T], {"attempts": 10, "base_delay": 1, "max_total": 3}, Transient, 3, [1, 2]),
        # out of attempts
        ([T], {"attempts": 3, "base_delay": 1}, Transient, 3, [1, 2]),
        # one attempt: never waits
        ([T], {"attempts": 1, "base_delay": 1}, Transient, 1, []),
        # not transient: raised at once
        ([T, F, "never"], {"attempts": 5, "base_delay": 1}, Fatal, 2, [1]),
        # zero delays (tests, a caller that wants no pause) retry at once, within any budget
        ([T, T, "ok"], {"attempts": 3, "base_delay": 0, "max_total": 0}, "ok", 3, [0, 0]),
        # no budget given: unbounded sum, bounded by attempts
        ([T] * 6 + ["ok"], {"attempts": 7, "base_delay": 1, "max_delay": math.inf}, "ok", 7, [1, 2, 4, 8, 16, 32]),
    ],
)
def test_schedule(outcomes: list[Any], policy: dict[str, Any], result: Any, calls: int, sleeps: list[float]) -> None:
    rec = Recorder(outcomes)
    if isinstance(result, type):
        with pytest.raises(result):
            retry(rec, **rec.kwargs(**policy))
    else:
        assert retry(rec, **rec.kwargs(**policy)) == result
    assert rec.calls == calls
    assert rec.sleeps == sleeps
    assert [r[:2] for r in rec.retries] == list(enumerate(sleeps, start=1))


def test_retry_fails_twice_then_succeeds() -> None:
    rec = Recorder([ConnectionRefusedError("refused"), TimeoutError("timed out"), "registered"])
    assert retry(rec, **rec.kwargs(attempts=5, base_delay=2, max_total=60)) == "registered"
    assert rec.calls == 3
    assert rec.sleeps == [2, 4]
    assert rec.retries == [(1, 2, "ConnectionRefusedError: refused"), (2, 4, "TimeoutError: timed out")]


def test_retry_never_retries_a_wrong_passphrase() -> None:
    rec = Recorder([AsrctlError("ASRCTL-E081", "wrong passphrase"), "never"])
    with pytest.raises(AsrctlError, match="wrong passphrase"):
        retry(rec, **rec.kwargs(attempts=5, base_delay=1, max_total=60))
    assert (rec.calls, rec.sleeps, rec.retries) == (1, [], [])


def test_retry_total_wait_is_bounded() -> None:
    rec = Recorder([AsrctlError("ASRCTL-E082", "configuration server unreachable")])
    with pytest.raises(AsrctlError, match="unreachable"):
        retry(rec, **rec.kwargs(attempts=10, base_delay=10, max_total=25, is_transient=lambda e: True))
    assert rec.sleeps == [10, 15]
    assert rec.calls == 3
    assert sum(rec.sleeps) <= 25
    assert rec.retries[0] == (1, 10, "configuration server unreachable")


def test_retry_gives_up_after_the_last_attempt_and_jitter_stays_in_bounds() -> None:
    rec = Recorder([ConnectionResetError("reset")])
    with pytest.raises(ConnectionResetError):
        retry(rec, **rec.kwargs(attempts=4, base_delay=1, max_total=1000, jitter=0.5))
    assert rec.calls == 4 and len(rec.sleeps) == 3
    for sleep, nominal in zip(rec.sleeps, [1, 2, 4], strict=True):
        assert 0.5 * nominal <= sleep <= 1.5 * nominal


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_spreads_around_the_nominal_wait(rand: float, factor: float) -> None:
    rec = Recorder([T, T, "ok"])
    retry(rec, **rec.kwargs(attempts=3, base_delay=10, jitter=0.2, rand=lambda: rand))
    assert rec.sleeps == pytest.approx([10 * factor, 20 * factor], rel=1e-5)


def test_retry_does_not_swallow_interrupts_or_bugs() -> None:
    for exc in (KeyboardInterrupt(), ValueError("bug")):
        rec = Recorder([exc])
        with pytest.raises(type(exc)):
            retry(rec, **rec.kwargs(attempts=3, base_delay=1, max_total=10))
        assert rec.calls == 1
    rec = Recorder([KeyboardInterrupt()])  # not even a predicate that says yes to everything retries Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        retry(rec, **rec.kwargs(attempts=3, base_delay=1, is_transient=lambda e: True))
    assert rec.calls == 1
    with pytest.raises(ValueError, match="attempts"):
        retry(lambda: 1, attempts=0, is_transient=lambda e: True)


@pytest.mark.parametrize(
    "bad",
    [{"attempts": 0}, {"base_delay": -1}, {"max_delay": -1}, {"max_total": -1}, {"jitter": 1.0}, {"jitter": -0.1}],
)
def test_bad_policy_is_refused_before_any_call(bad: dict[str, Any]) -> None:
    rec = Recorder(["never"])
    with pytest.raises(ValueError, match="retry"):
        retry(rec, **rec.kwargs(**bad))
    assert rec.calls == 0


@pytest.mark.parametrize(("attempt", "expected"), [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 60.0), (30, 60.0)])
def test_backoff_doubles_up_to_the_cap(attempt: int, expected: float) -> None:
    assert backoff(attempt, base_delay=5, max_delay=60) == expected


def test_describe() -> None:
    assert describe(AsrctlError("ASRCTL-E082", "cs01:443 unreachable")) == "cs01:443 unreachable"
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(OSError("boom")) == "OSError: boom"
