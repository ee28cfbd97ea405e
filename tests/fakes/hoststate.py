"""Host states for tests of the whole-state invariant and health (asrctl/lifecycle/state.py, health.py)."""

from __future__ import annotations

from pathlib import Path

from asrctl.agent.base import InstalledAgent, Presence, Service
from asrctl.lifecycle.state import HostState

VX = "/r/usr/local/ASR/Vx"
MARKER = "/r/usr/local/.vx_version"
UP = (Service("svagents", True, (10,)), Service("appservice", True, (11,)))
DOWN = (Service("svagents", False), Service("appservice", False))
HALF = (Service("svagents", True, (10,)), Service("appservice", False))
NONE_RUNNING = DOWN


def agent(version: str = "9.65.7417.1", registered: bool = True, endpoint: str | None = "cs:443") -> InstalledAgent:
    return InstalledAgent(
        version=version,
        install_dir=Path("/r/usr/local/ASR"),
        registered=registered,
        cs_endpoint=endpoint if registered else None,
        cs_type="CSLegacy",
    )


def state(
    a: InstalledAgent | None = None,
    marker: str | None = MARKER,
    files: str | None = VX,
    services: tuple[Service, ...] = UP,
    lock: str | None = None,
    unreadable: str | None = None,
) -> HostState:
    return HostState(a, Presence(marker, files, lock), services, unreadable)


ABSENT = state(None, None, None, NONE_RUNNING)


def observe_root(root: Path) -> HostState:
    """The state of a sandbox root as asrctl reads it (Linux backend): for tests that assert the invariant,
    ``whole(observe_root(root)) == []``, after a fault (the reliability suite) or a failed run."""
    from asrctl.agent.linux import LinuxBackend
    from asrctl.lifecycle.state import observe
    from asrctl.output import Output
    from asrctl.system.paths import Paths
    from asrctl.system.runner import ProcessRunner

    paths = Paths.for_root(root)
    return observe(LinuxBackend(paths, ProcessRunner(paths), Output(verbosity=-1)))
