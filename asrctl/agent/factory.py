"""Which agent backend a host gets: a pure selector, and the thin getter the verbs call.

The shape of WALinuxAgent's ``osutil/factory.py``: :func:`select_backend` maps what detection found to a backend
class and touches nothing (a table test covers it); :func:`backend_for` builds that class from the app's root,
a runner and the output. Callers go through ``factory.backend_for(app)`` (the module attribute), so a test that
simulates Windows on Linux swaps this one getter and every verb sees the simulated backend.
"""

from __future__ import annotations

from asrctl.agent.base import AgentBackend
from asrctl.agent.linux import LinuxBackend
from asrctl.agent.windows import WindowsBackend
from asrctl.app import App
from asrctl.system.runner import ProcessRunner, Runner

BackendClass = type[LinuxBackend] | type[WindowsBackend]

# OS family (HostFacts.os_family) -> backend. Anything else is treated as Linux: the support matrix has
# already refused it, and status/doctor still report what they can.
BACKENDS: dict[str, BackendClass] = {"linux": LinuxBackend, "windows": WindowsBackend}


def select_backend(os_family: str) -> BackendClass:
    """The backend class for an OS family. Pure."""
    return BACKENDS.get(os_family, LinuxBackend)


def backend_for(app: App, runner: Runner | None = None) -> AgentBackend:
    """The backend for this host, built on the app's root and output (a real runner unless one is given)."""
    backend_class = select_backend(app.facts.os_family)
    return backend_class(app.paths, runner or ProcessRunner(app.paths), app.out)
