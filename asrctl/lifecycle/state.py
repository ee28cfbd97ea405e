"""What the host holds, and whether that is a *whole* state — the invariant every changing verb keeps.

**Whole** (:func:`whole`), precisely: the host holds either

- **no agent**: no marker (Linux ``/usr/local/.vx_version``, Windows the MSI product key), none of the agent's
  files (Linux ``<install dir>/Vx``), no agent process and no lock a vendor tool left behind; or
- **one agent**: a marker that reads as an agent (a version and an install dir), its files, *every* agent service
  running, no vendor lock left behind. Registered or not is part of *which* whole state it is, not of being whole
  (an agent installed with ``--no-register``, or kept after a wrong passphrase, is whole and not registered).

Every failure or interruption of install, upgrade, register and uninstall leaves a whole state, and the result
says which (lifecycle/outcome.py): the previous one, the one asked for, or — named — another whole one (the agent
installed but not registered when registration failed). Anything else is a defect; ``whole()`` lists its
reasons, ``status`` reports them as health (lifecycle/health.py), and the fault-injection suite asserts
``whole(observe(backend)) == []`` after every fault.

:func:`observe` reads the host through the backend (no lock needed, nothing written); everything else here is
pure and table-tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asrctl.agent.base import AgentBackend, InstalledAgent, Presence, Service
from asrctl.errors import AsrctlError
from asrctl.versions import release_cmp


@dataclass(frozen=True)
class HostState:
    """One reading of the host: the agent as its marker describes it, the raw signs of it, its services."""

    agent: InstalledAgent | None
    presence: Presence
    services: tuple[Service, ...] = ()
    unreadable: str | None = None  # the marker is there but does not read as an agent (ASRCTL-E051's message)
    # ... and which error that is: ASRCTL-E051 (garbage, a FIFO, keys missing) or ASRCTL-E115 (it points out of the
    # root: hostile or broken, never acted on, not even by uninstall's repair).
    unreadable_code: str = "ASRCTL-E051"

    def refuse_unreadable(self) -> None:
        """Raise the error of an unreadable marker (a verb cannot decide on a state it cannot read)."""
        if self.unreadable is not None:
            raise AsrctlError(self.unreadable_code, self.unreadable)

    @property
    def half_installed(self) -> bool:
        """Something of the agent is there, but not an agent that reads as one: a marker that cannot be read, the
        agent's files (or a marker) with no agent the marker describes, or a marker naming files that are not
        there. ``uninstall -Y`` removes it."""
        p = self.presence
        if self.agent is not None:
            return p.files is None
        return self.unreadable is not None or p.marker is not None or p.files is not None

    @property
    def installed(self) -> bool:
        return self.agent is not None

    @property
    def absent(self) -> bool:
        """Nothing of the agent at all (what a whole "no agent" state is)."""
        p = self.presence
        return (
            self.agent is None
            and self.unreadable is None
            and p.marker is None
            and p.files is None
            and p.vendor_lock is None
            and not any(s.running for s in self.services)
        )

    @property
    def stopped(self) -> list[str]:
        return [s.name for s in self.services if not s.running]

    def key(self) -> tuple[Any, ...]:
        """Which state this is, for "is it the same state as before?": installed, version, install dir, and the
        registration (whether, with which endpoint and CS type)."""
        a = self.agent
        if a is None:
            return (False,)
        return (True, a.version, str(a.install_dir), a.registered, endpoint_key(a.cs_endpoint), _lower(a.cs_type))

    def as_json(self) -> dict[str, Any]:
        """``data.agent`` of every verb (the shape ``status`` has always had)."""
        a = self.agent
        return {
            "installed": a is not None,
            "version": a.version if a else None,
            "build": a.build if a else None,
            "install_dir": str(a.install_dir) if a else None,
            "registered": bool(a and a.registered),
            "cs_endpoint": a.cs_endpoint if a else None,
            "cs_type": a.cs_type if a else None,
            "services": [s.as_json() for s in self.services] if a else [],
        }


def observe(backend: AgentBackend) -> HostState:
    """Read the host's state (read-only). An unreadable or incomplete marker is part of the state, not an error."""
    presence = backend.presence()
    agent: InstalledAgent | None = None
    unreadable: str | None = None
    code = "ASRCTL-E051"
    try:
        agent = backend.installed()
    except AsrctlError as exc:
        if exc.code not in ("ASRCTL-E051", "ASRCTL-E115"):
            raise
        unreadable, code = exc.message, exc.code
    return HostState(agent, presence, tuple(backend.services(agent)), unreadable, code)


def agent_json(backend: AgentBackend, agent: InstalledAgent | None) -> dict[str, Any]:
    """``data.agent`` for an agent read earlier (its services read now)."""
    return HostState(agent, Presence(None, None), tuple(backend.services(agent))).as_json()


# --- the invariant (pure) ----------------------------------------------------------------------------------


def whole(state: HostState) -> list[str]:
    """Why ``state`` is not whole; ``[]`` when it is (the definition is the module docstring). Pure."""
    if state.absent:
        return []
    p = state.presence
    reasons: list[str] = []
    if state.unreadable is not None:
        reasons.append(f"half-installed: {state.unreadable}")
    elif p.marker is None and p.files is not None:
        reasons.append(f"half-installed: the agent's files are there in {p.files}, its version file is not")
    elif state.agent is not None and p.files is None:
        reasons.append(f"half-installed: the version file names {state.agent.install_dir}, but its files are missing")
    if state.agent is not None and state.stopped:
        reasons.append(f"services stopped: {', '.join(state.stopped)}")
    if state.agent is None and any(s.running for s in state.services):
        running = ", ".join(s.name for s in state.services if s.running)
        reasons.append(f"agent processes run without an installed agent: {running}")
    if p.vendor_lock is not None:
        reasons.append(f"a vendor tool's lock was left behind: {p.vendor_lock} (an interrupted uninstall)")
    return reasons


def describe(state: HostState) -> str:
    """The state in words, for messages: "Mobility Service 9.65.7417.1, registered with cs:443, running"."""
    reasons = whole(state)
    a = state.agent
    if a is None:
        if not reasons:
            return "nothing of the Mobility Service is installed"
        return "the Mobility Service is half there (" + "; ".join(reasons) + ")"
    reg = (
        f"registered with {a.cs_endpoint or a.cs_type or 'a configuration server'}"
        if a.registered
        else "not registered"
    )
    if reasons:
        return f"Mobility Service {a.version}, {reg}, is not whole (" + "; ".join(reasons) + ")"
    return f"Mobility Service {a.version}, {reg}, running"


def same(before: HostState, after: HostState) -> bool:
    """``after`` is ``before`` again, completely: the same state, and at least as whole."""
    return before.key() == after.key() and set(whole(after)) <= set(whole(before))


def endpoint_key(text: str | None) -> tuple[str, int] | None:
    """An endpoint compared as host (any case) and port (443 when not given)."""
    if not text:
        return None
    from asrctl.net.endpoint import parse_endpoint

    try:
        ep = parse_endpoint(text)
    except AsrctlError:
        return (text.strip().lower(), 443)
    return (ep.host.lower(), ep.port)


def _lower(text: str | None) -> str | None:
    return text.lower() if text else None


# --- re-checks right before a destructive step -------------------------------------------------------------


def expect(backend: AgentBackend, wanted: Callable[[HostState], bool], planned_for: str) -> Callable[[], None]:
    """A step's ``precheck``: the host must still be in the state the step was planned for, else ``ASRCTL-E070``
    (the step does nothing; what was done before it is undone)."""

    def check() -> None:
        now = observe(backend)
        if not wanted(now):
            raise AsrctlError(
                "ASRCTL-E070",
                f"this step was planned for {planned_for}, but the host now has {describe(now)}; it was not run",
            )

    return check


def is_absent(state: HostState) -> bool:
    """No agent at all: no marker, none of its files (a fresh install never runs over half an agent)."""
    p = state.presence
    return p.marker is None and p.files is None and state.agent is None and state.unreadable is None


def is_agent(version: str, install_dir: str) -> Callable[[HostState], bool]:
    def wanted(state: HostState) -> bool:
        a = state.agent
        return a is not None and release_cmp(a.version, version) == 0 and str(a.install_dir) == install_dir

    return wanted
