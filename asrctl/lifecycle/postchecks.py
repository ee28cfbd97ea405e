"""Verify: the last step of every plan checks the machine itself, not the vendor tool's exit code.

An installer can exit 0 and leave no version file, a stopped service or no registration; an uninstaller can
report success and leave its files. Each check here is a plan step (``verify``), so it is journalled and a
failure rolls the plan back like any other step (exit 7, ``ASRCTL-E064``/``E061``).
"""

from __future__ import annotations

from typing import Any

from asrctl.agent.base import AgentBackend, InstalledAgent, Registration
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.plan import Step
from asrctl.versions import release_cmp


def after_install(backend: AgentBackend, bundle: Bundle, expect_registered: bool) -> Step:
    def run() -> dict[str, Any]:
        agent = backend.installed()
        if agent is None:
            raise AsrctlError("ASRCTL-E064", "the installer exited 0 but the agent's version file is missing")
        if release_cmp(agent.version, bundle.version) != 0:
            raise AsrctlError(
                "ASRCTL-E064",
                f"the installed version is {agent.version}, expected {bundle.version} from {bundle.path.name}",
            )
        down = [s.name for s in backend.services(agent) if not s.running]
        if down:
            raise AsrctlError("ASRCTL-E064", f"agent services not running after install: {', '.join(down)}")
        if expect_registered and not agent.registered:
            raise AsrctlError("ASRCTL-E064", "the configurator exited 0 but the agent is not registered")
        return {"version": agent.version}

    return Step("verify", "Check the result: version file, services, registration", run)


def after_upgrade(backend: AgentBackend, bundle: Bundle, before: InstalledAgent) -> Step:
    base = after_install(backend, bundle, expect_registered=False)

    def run() -> dict[str, Any]:
        out = base.run() or {}
        after = backend.installed()
        if before.registered and (after is None or not after.registered or after.cs_endpoint != before.cs_endpoint):
            raise AsrctlError(
                "ASRCTL-E064",
                f"the upgrade lost the registration with {before.cs_endpoint}; run `asrctl register` again",
            )
        return out

    return Step("verify", "Check the result: version, services, registration kept", run)


def after_register(backend: AgentBackend, reg: Registration) -> Step:
    def run() -> dict[str, Any]:
        agent = backend.installed()
        if agent is None or not agent.registered:
            raise AsrctlError("ASRCTL-E064", "the configurator exited 0 but the agent is not registered")
        return {"cs_endpoint": agent.cs_endpoint}

    return Step("verify", "Check that the agent is registered", run)


def after_uninstall(backend: AgentBackend, agent: InstalledAgent) -> Step:
    def run() -> dict[str, Any]:
        left = backend.leftovers(agent)
        if left:
            raise AsrctlError(
                "ASRCTL-E061", "the uninstaller reported success but these are still there: " + "; ".join(left)
            )
        return {}

    return Step("verify", "Check that nothing of the agent is left", run)


def after_repair(backend: AgentBackend) -> Step:
    """After removing a half-installed agent: nothing of it is left (no version file, files, process, lock)."""

    def run() -> dict[str, Any]:
        from asrctl.lifecycle.state import observe, whole

        now = observe(backend)
        if not now.absent:
            raise AsrctlError("ASRCTL-E061", "these are still there: " + ("; ".join(whole(now)) or str(now.presence)))
        return {}

    return Step("verify", "Check that nothing of the agent is left", run)
