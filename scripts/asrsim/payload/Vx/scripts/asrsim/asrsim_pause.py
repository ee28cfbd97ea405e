"""ASR_SIM_PAUSE: stop a simulated vendor tool at a named point until a test lets it go or kills it (stdlib only).

The fault-injection suite (asrctl's tests/faults/) delivers SIGKILL and SIGTERM while a vendor tool is at a chosen
point of its work. Sleeping and hoping is not deterministic; this is: the tool announces that it has arrived by
writing a *ready file*, then waits. The test waits for that file, does its worst, and either kills (asrctl, the
tool, both) or writes the *go file* so the tool carries on.

    ASR_SIM_PAUSE=<tool>:<point>[,<tool>:<point>...]   e.g. install:copied, uninstall:stopped
    ASR_SIM_PAUSE_DIR=<dir>                             where the files go (default $ASRCTL_ROOT/var/run/asrsim-pause)

At a matching point the tool writes ``<dir>/<tool>.<point>.ready`` (its pid, written atomically) and waits until
``<dir>/<tool>.<point>.go`` exists (then it removes both and goes on) or a signal ends it: SIGTERM exits 143,
SIGINT 130, as the hang knob does. ``ASR_SIM_KNOB_VERSION`` scopes it like the other knobs, by the bundle version
the tools come from (the version the bundle's installer loaded this module with, or the simulator's ``VERSION``
file beside it in ``<Vx>/scripts/asrsim``).

This module is deliberately separate from the tools' shared runtime: every simulated tool calls :func:`pause` (the
bundle's ``install`` loads it from the payload as it loads the runtime; ``uninstall.sh`` runs its text through
``python3 -c``), so a rewrite of the tools keeps the knob by calling it again at the same points. The points and
what has happened by then are listed in docs/SIMULATORS.md ("Pausing at a step").
"""

from __future__ import annotations

import os
import signal
import sys
import time

POLL = 0.01  # the tool polls for the go file; the test never sleeps, it waits for the ready file


def _wanted(tool: str, point: str) -> bool:
    spec = os.environ.get("ASR_SIM_PAUSE", "")
    return f"{tool}:{point}" in {part.strip() for part in spec.split(",") if part.strip()}


def _tools_version() -> str | None:
    given = globals().get("BUNDLE_VERSION")
    if isinstance(given, str) and given:
        return given
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _version_applies(version: str | None) -> bool:
    only = os.environ.get("ASR_SIM_KNOB_VERSION", "").strip()
    if not only:
        return True
    return (version if version is not None else _tools_version()) == only


def pause_dir() -> str:
    given = os.environ.get("ASR_SIM_PAUSE_DIR", "").strip()
    if given:
        return given
    root = os.environ.get("ASRCTL_ROOT", "").rstrip("/")
    return f"{root}/var/run/asrsim-pause"


def pause(tool: str, point: str, version: str | None = None) -> None:
    """Wait here if ``ASR_SIM_PAUSE`` names ``tool:point`` (see the module docstring); return at once otherwise.
    ``version``: the bundle version the calling tool belongs to, for ``ASR_SIM_KNOB_VERSION`` (default: the one
    this module came with)."""
    if not _wanted(tool, point) or not _version_applies(version):
        return
    where = pause_dir()
    os.makedirs(where, exist_ok=True)
    ready = os.path.join(where, f"{tool}.{point}.ready")
    go = os.path.join(where, f"{tool}.{point}.go")

    def _die(signum: int, _frame: object) -> None:
        os._exit(130 if signum == signal.SIGINT else 143)

    before = {sig: signal.signal(sig, _die) for sig in (signal.SIGTERM, signal.SIGINT)}
    tmp = f"{ready}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{os.getpid()}\n")
    os.replace(tmp, ready)
    while not os.path.exists(go):
        time.sleep(POLL)
    for path in (ready, go):
        try:
            os.unlink(path)
        except OSError:
            pass
    for sig, handler in before.items():
        signal.signal(sig, handler)


if __name__ == "__main__":
    # From a shell tool: python3 asrsim_pause.py <tool> <point> [<bundle version>], or python3 -c "<this file>" ...
    # (uninstall.sh keeps this file's text, since it removes the Vx dir it lives in before its last point).
    if len(sys.argv) in (3, 4):
        pause(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    sys.exit(0)
