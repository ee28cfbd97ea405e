"""The result tells the truth: what a changing verb reports is read from the host after the run, never assumed.

After a plan ran — or failed, or was interrupted and rolled back — :func:`carry_out` reads the host again
(lifecycle/state.py) and puts into the result:

- ``data.agent``: the agent as it is now (also on failure; the error path used to drop it);
- ``changed``: whether the host differs from before the run (a rolled-back upgrade is ``false``; an agent kept
  after a failed registration or post-check is ``true``);
- ``data.outcome``: ``{"state": "requested" | "previous" | "other", "whole": bool, "reasons": [...],
  "summary": "..."}`` — which whole state the host holds (state.py defines "whole");
- on failure, a note appended to the error message that names what the host was left with ("rolled back (remove
  the partly installed agent): nothing of the Mobility Service is installed", "the agent was kept as it was:
  Mobility Service 9.65.7417.1, registered with …, running").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.errors import AsrctlError, attach, attached
from asrctl.lifecycle.state import HostState, describe, observe, same, whole
from asrctl.output import Result
from asrctl.plan import Applied, Plan, Session, apply, undone_by
from asrctl.system.signals import shielded

LOG = logging.getLogger("asrctl")

Reached = Callable[[HostState], bool]


def outcome_json(before: HostState, after: HostState, reached: bool) -> dict[str, object]:
    reasons = whole(after)
    if not reasons and reached:
        state = "requested"
    elif same(before, after):
        state = "previous"
    else:
        state = "other"
    return {"state": state, "whole": not reasons, "reasons": reasons, "summary": describe(after)}


def left_with(before: HostState, after: HostState, reached: bool, undone: list[str]) -> str:
    """What a failed run left, in words for the error message."""
    rolled = f"rolled back ({'; '.join(undone)}): " if undone else ""
    reasons = whole(after)
    if reasons:
        return (
            f"{rolled}the host is NOT in a whole state: {describe(after)}. Run `asrctl status` and the command "
            "again (it cleans up after an interrupted run), or `asrctl uninstall -Y`"
        )
    if same(before, after):
        if after.agent is None:
            return f"{rolled}nothing of the Mobility Service is installed"
        if undone:
            return f"{rolled}the previous state holds again: {describe(after)}"
        return f"the agent was kept as it was: {describe(after)}"
    if reached:
        return f"{rolled}the host has what was asked: {describe(after)}"
    if before.agent is None and after.agent is not None:
        return f"{rolled}the agent that was installed is kept: {describe(after)}"
    return f"{rolled}the host now has {describe(after)}"


def settle(result: Result, backend: AgentBackend, before: HostState, reached: Reached) -> HostState:
    """Read the host after the run into the result (``data.agent``, ``data.outcome``). A signal that arrives while
    it is read waits: the run is over, and the result must say what it left."""
    with shielded(deliver=False) as ignored:
        after = observe(backend)
        result.data["agent"] = after.as_json()
        result.data["outcome"] = outcome_json(before, after, reached(after))
    if ignored:
        LOG.warning("signal(s) %s arrived while the result was read; the run had already finished", ignored)
    return after


def carry_out(
    app: App, backend: AgentBackend, plan: Plan, session: Session, result: Result, before: HostState, reached: Reached
) -> Applied:
    """Apply ``plan`` and report the truth, on success and on failure (see the module docstring)."""
    try:
        applied = apply(plan, app.out, session)
    except BaseException as exc:
        try:
            after = settle(result, backend, before, reached)
        except Exception:  # the failure wins; the result then has no outcome
            LOG.exception("could not read the host after the failure")
            raise exc from None
        result.changed = not same(before, after)
        note = left_with(before, after, reached(after), undone_by(exc))
        if isinstance(exc, AsrctlError):
            exc.message = f"{exc.message}; {note}"
            attach(exc, result)
        else:
            attach(exc, result, note)
        raise
    settle(result, backend, before, reached)
    result.changed = True
    return applied


@contextlib.contextmanager
def reported(result: Result, backend: AgentBackend) -> Iterator[None]:
    """A changing verb's failures carry its result to ``cli.run()``, with ``data.agent`` as read (read now if the
    verb failed before it read the host), so every changing verb's JSON names the agent, also on failure."""
    try:
        yield
    except (AsrctlError, KeyboardInterrupt) as exc:
        if attached(exc)[0] is None:
            if "agent" not in result.data:
                with contextlib.suppress(Exception):
                    result.data["agent"] = observe(backend).as_json()
            attach(exc, result)
        raise
