"""The signal shield: SIGINT and SIGTERM wait until an undo or a final rename is done."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from asrctl.output import Output
from asrctl.plan import Plan, Step, apply
from asrctl.system.signals import EXIT_SIGINT, EXIT_SIGTERM, Terminated, exit_status, shielded, terminate_like_ctrl_c


@pytest.fixture(autouse=True)
def _restore_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_exit_status_follows_the_shell_convention() -> None:
    assert exit_status(KeyboardInterrupt()) == EXIT_SIGINT == 130
    assert exit_status(Terminated()) == EXIT_SIGTERM == 143


def test_sigterm_becomes_terminated() -> None:
    terminate_like_ctrl_c()
    with pytest.raises(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next bytecode


@pytest.mark.parametrize(("sig", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_in_the_shield_is_delivered_after_it(sig: int, raised: type[BaseException]) -> None:
    terminate_like_ctrl_c()
    finished = []
    with pytest.raises(raised):
        with shielded():
            os.kill(os.getpid(), sig)
            finished.append("work after the signal")
    assert finished == ["work after the signal"]


def test_sigterm_wins_over_sigint_when_both_arrive() -> None:
    with pytest.raises(Terminated):
        with shielded() as pending:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
    assert pending == [signal.SIGINT, signal.SIGTERM]


def test_without_deliver_the_signal_is_only_remembered() -> None:
    with shielded(deliver=False) as pending:
        os.kill(os.getpid(), signal.SIGTERM)
    assert pending == [signal.SIGTERM]


def test_the_handlers_are_restored() -> None:
    terminate_like_ctrl_c()
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with shielded(deliver=False):
        pass
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_exception_in_the_block_wins() -> None:
    with pytest.raises(ValueError):
        with shielded():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("the block's own failure")


def test_off_the_main_thread_it_is_a_no_op() -> None:
    seen: list[object] = []

    def work() -> None:
        with shielded() as pending:
            seen.append(pending)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [[]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_second_signal_during_undo_does_not_abort_it(tmp_path: Path, sig: int) -> None:
    """The reproduction from the structure issue: SIGTERM during rollback aborted the undo (journal 'running')."""
    terminate_like_ctrl_c()
    undone: list[str] = []

    def undo_first() -> None:
        os.kill(os.getpid(), sig)  # the impatient supervisor, again, while the first undo runs
        undone.append("first")

    def undo_second() -> None:
        undone.append("second")

    def fail() -> dict[str, object]:
        raise Terminated

    plan = Plan("install")
    plan.add(Step("one", "one", lambda: {}, undo=undo_second))
    plan.add(Step("two", "two", lambda: {}, undo=undo_first))
    plan.add(Step("three", "three", fail))
    with pytest.raises(Terminated):
        apply(plan, Output(), tmp_path)
    assert undone == ["first", "second"]
    import json

    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert [s["status"] for s in journal["steps"]] == ["undone", "undone", "interrupted"]
