"""One retry loop for everything that talks to a server: registration with the configuration server and
``bundles fetch`` from a mirror.

Both used to carry their own loop, with their own idea of backoff and of when to stop. The rules here: a bounded
number of calls; a wait that doubles after each failure, capped per wait; a budget for the sum of the waits (the
last wait is cut to fit, and when nothing is left the last error is raised); jitter, so a fleet that failed at
the same moment does not come back at the same moment; and only failures the caller's ``is_transient`` accepts
are retried — a wrong passphrase or a rejected certificate is raised at once. ``sleep`` and ``rand`` are
injected so the tests run the whole schedule without waiting.

Only ``Exception`` is caught: Ctrl-C and SIGTERM (``KeyboardInterrupt``) always stop the loop.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import TypeVar

from asrctl.errors import AsrctlError

T = TypeVar("T")


def retry(
    fn: Callable[[], T],
    *,
    is_transient: Callable[[Exception], bool],
    attempts: int = 4,
    base_delay: float = 5.0,
    max_delay: float = 60.0,
    max_total: float = math.inf,
    jitter: float = 0.0,
    on_retry: Callable[[int, float, Exception], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> T:
    """``fn()``, called at most ``attempts`` times while it fails in a way ``is_transient`` accepts.

    The wait after failed attempt *n* is ``base_delay * 2**(n-1)``, at most ``max_delay``, spread by
    ``± jitter`` (a fraction, ``rand()`` in [0, 1) picks where). The sum of the waits never exceeds
    ``max_total``. ``on_retry(attempt, delay, error)`` is called before each wait with the number of the attempt
    that failed, so the caller can say what happens. The last error is raised as it is.
    """
    if attempts < 1 or base_delay < 0 or max_delay < 0 or max_total < 0 or not 0 <= jitter < 1:
        raise ValueError("retry: attempts >= 1, delays >= 0 and 0 <= jitter < 1")
    waited = 0.0
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
            delay = backoff(attempt, base_delay=base_delay, max_delay=max_delay, jitter=jitter, rand=rand)
            left = max_total - waited
            if delay > left:
                if left <= 0:
                    raise
                delay = left
            if on_retry is not None:
                on_retry(attempt, delay, exc)
            sleep(delay)
            waited += delay
            attempt += 1


def backoff(
    attempt: int,
    *,
    base_delay: float,
    max_delay: float,
    jitter: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after failed attempt ``attempt`` (1-based), before the total budget is applied."""
    delay: float = min(max_delay, base_delay * 2.0 ** (attempt - 1))
    if jitter:
        delay *= 1 + jitter * (2 * rand() - 1)  # spreading load, not security
    return delay


def describe(exc: BaseException) -> str:
    """An error in a few words for a "retrying in N s" line: a catalogue error's message, else its type and text."""
    if isinstance(exc, AsrctlError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
