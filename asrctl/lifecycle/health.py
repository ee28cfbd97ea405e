"""Health: is the agent protecting this machine? ``status`` reports it (``data.health``), ``status --check`` exits
by it (0 ok, 9 degraded, 10 broken), so monitoring and Ansible can act on it, like ``systemctl is-active``.

:func:`verdict` is pure: the facts go in, the verdict comes out, and a table test covers every rule.

| reason (``id``)        | when                                                                      | severity |
|------------------------|---------------------------------------------------------------------------|----------|
| ``not_installed``      | no agent at all                                                           | broken   |
| ``half_installed``     | version file without the agent's files, or the reverse, or unreadable     | broken   |
| ``services_stopped``   | an agent service is not running                                           | broken   |
| ``registration_lost``  | asrctl registered this agent (identity.json) and it is no longer          | broken   |
| ``not_registered``     | installed, never registered (``--no-register``, CSPrime waiting)          | degraded |
| ``stray_processes``    | agent processes run with no agent installed                               | degraded |
| ``vendor_lock``        | a vendor tool's lock was left behind (``uninstall.sh``'s ``.uninstall.lck``) | degraded |
| ``interrupted_run``    | the journal says "running" but that run is dead                           | degraded |
| ``leftovers``          | staging or private directories of a run that is not running               | degraded |
| ``run_in_progress``    | another asrctl run holds the lock (the state may be changing)             | degraded |
| ``reboot_pending``     | the system asks for a restart                                             | degraded |
| ``driver_*``           | from the kernel work (:attr:`Facts.driver`): the filter driver             | theirs   |

Broken is "this machine is not protected"; degraded is "it is, or will be once registered, but something needs
attention". A restart the system asks for (package updates) is only degraded: the agent runs meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asrctl.lifecycle.state import HostState

OK, DEGRADED, BROKEN = "ok", "degraded", "broken"
_RANK = {OK: 0, DEGRADED: 1, BROKEN: 2}


@dataclass(frozen=True)
class Reason:
    id: str
    severity: str  # DEGRADED | BROKEN
    message: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Facts:
    """What health is judged from; ``status`` gathers it (lifecycle/status.py)."""

    state: HostState
    registration_recorded: bool = False  # identity.json names this agent's host id: asrctl registered it
    dead_run: dict[str, Any] | None = None  # a journal saying "running" whose run is dead
    leftovers: tuple[str, ...] = ()  # staging/private directories nobody is using
    busy: dict[str, Any] | None = None  # the holder of the host lock, if a run is under way
    pending_reboot: str | None = None
    # The place for the kernel work's reasons (filter driver missing, not loaded, not for this kernel): it
    # judges them and passes them in with their severity; the verdict takes the worst of all.
    driver: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Health:
    status: str
    reasons: tuple[Reason, ...]

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": [r.as_json() for r in self.reasons]}


def verdict(facts: Facts) -> Health:
    """The health of the host from ``facts``: the worst severity among the reasons, ok when there is none."""
    reasons = _agent(facts.state, facts.registration_recorded) + _asrctl(facts) + list(facts.driver)
    status = max((r.severity for r in reasons), key=_RANK.__getitem__, default=OK)
    return Health(status, tuple(reasons))


def _agent(state: HostState, recorded: bool) -> list[Reason]:
    out: list[Reason] = []
    p = state.presence
    agent = state.agent
    if state.unreadable is not None:
        out.append(Reason("half_installed", BROKEN, state.unreadable))
    elif agent is None and (p.marker is not None or p.files is not None):
        where = p.files or p.marker
        out.append(Reason("half_installed", BROKEN, f"the agent's files are in {where}, its version file is not"))
    elif agent is not None and p.files is None:
        out.append(
            Reason("half_installed", BROKEN, f"the version file names {agent.install_dir}, its files are missing")
        )
    if agent is None and state.unreadable is None and p.marker is None and p.files is None:
        out.append(Reason("not_installed", BROKEN, "the Mobility Service is not installed"))
    if agent is not None:
        if state.stopped:
            out.append(Reason("services_stopped", BROKEN, f"not running: {', '.join(state.stopped)}"))
        if not agent.registered:
            if recorded:
                out.append(
                    Reason(
                        "registration_lost",
                        BROKEN,
                        "asrctl registered this agent, and it is no longer registered: run `asrctl register`",
                    )
                )
            else:
                out.append(Reason("not_registered", DEGRADED, "installed but not registered: run `asrctl register`"))
    elif any(s.running for s in state.services):
        running = ", ".join(s.name for s in state.services if s.running)
        out.append(Reason("stray_processes", DEGRADED, f"agent processes run with no agent installed: {running}"))
    if p.vendor_lock is not None:
        out.append(Reason("vendor_lock", DEGRADED, f"{p.vendor_lock} was left by an interrupted uninstall"))
    return out


def _asrctl(facts: Facts) -> list[Reason]:
    out: list[Reason] = []
    if facts.busy is not None:
        out.append(
            Reason(
                "run_in_progress",
                DEGRADED,
                f"asrctl {facts.busy.get('command', '?')} (pid {facts.busy.get('pid', '?')}) is changing the agent now",
            )
        )
    if facts.dead_run is not None:
        run = facts.dead_run
        out.append(
            Reason(
                "interrupted_run",
                DEGRADED,
                f"the asrctl run {run.get('command')} (pid {run.get('pid')}, started {run.get('started')}) was killed; "
                "the next install/upgrade/uninstall cleans up after it",
            )
        )
    if facts.leftovers:
        out.append(Reason("leftovers", DEGRADED, "left by an earlier run: " + ", ".join(facts.leftovers)))
    if facts.pending_reboot:
        out.append(Reason("reboot_pending", DEGRADED, facts.pending_reboot))
    return out
