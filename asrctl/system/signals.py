"""Signals: SIGTERM stops a run like Ctrl-C does, and a shield keeps both out of work that must finish.

Ansible, SCCM and systemd stop a run with SIGTERM. asrctl turns it into :class:`Terminated` (a
``KeyboardInterrupt``), so one code path stops the vendor tree and rolls back; the exit status says which signal
it was (130 for SIGINT, 143 for SIGTERM). :func:`shielded` defers both signals while an undo or a final rename
runs: a second Ctrl-C or a second SIGTERM from an impatient supervisor must never leave half an agent behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python was when it arrived (like KeyboardInterrupt for SIGINT)."""

    signum = signal.SIGTERM


def exit_status(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal number."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def terminate_like_ctrl_c() -> None:
    """Install the SIGTERM handler (main thread only; elsewhere Python delivers no signals), and the SIGINT one
    back (Python's own, raising KeyboardInterrupt). A signal :func:`hold_early` kept is raised now, where the caller
    turns it into its exit status."""
    if not _on_main_thread():
        return
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if _early:
        first = _early[0]
        _early.clear()
        if first == getattr(signal, "SIGTERM", None):
            raise Terminated
        raise KeyboardInterrupt


_early: list[int] = []


def _keep(signum: int, frame: FrameType | None) -> None:
    _early.append(signum)


def hold_early() -> None:
    """From the first line of asrctl (``__main__``) until :func:`terminate_like_ctrl_c`: SIGINT and SIGTERM are kept,
    not acted on, so one that arrives while Python imports asrctl ends in 130/143 like any other, never in a
    traceback or the signal's raw status (-15)."""
    if _on_main_thread():
        for sig in _signals():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, _keep)


def after_the_end() -> None:
    """The run is over and its result written: a signal now changes nothing (it must not turn a finished run into
    an unhandled KeyboardInterrupt at interpreter exit)."""
    if _on_main_thread():
        for sig in _signals():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, signal.SIG_IGN)


def _signals() -> tuple[signal.Signals, ...]:
    return tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


@contextlib.contextmanager
def shielded(deliver: bool = True) -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM until the block is done.

    A signal that arrives meanwhile is remembered (the yielded list). With ``deliver`` it is raised when the block
    ends normally, so the run still stops, but after the rename is complete. Without it (an undo, whose caller
    re-raises the interruption or failure that started it) it is only remembered. When the block ends with an
    exception, that exception wins. Outside the main thread this is a no-op: such threads never see signals.
    """
    pending: list[int] = []
    if not _on_main_thread():
        yield pending
        return

    def remember(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[int, object] = {}
    for sig in _signals():
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, remember)
    failed = False
    try:
        yield pending
    except BaseException:
        failed = True
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if pending and deliver and not failed:
            if signal.SIGTERM in pending and hasattr(signal, "SIGTERM"):
                raise Terminated
            raise KeyboardInterrupt
