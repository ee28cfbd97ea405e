"""The agent's steps as a verb plans them, guarded: each destructive step re-checks, right before it runs, that
the host is still what it was planned for, and an undo never removes what its own run did not create."""

from __future__ import annotations

from collections.abc import Callable

from asrctl.agent.base import AgentBackend, InstalledAgent
from asrctl.agent.vmagent import vm_agent_steps
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.lifecycle.state import describe, expect, is_absent, is_agent, observe
from asrctl.plan import Plan, Step
from asrctl.versions import release_cmp


def fresh_install_steps(backend: AgentBackend, bundle: Bundle, steps: list[Step]) -> list[Step]:
    """The backend's install steps for a host without the agent, guarded both ways: the installer runs only if
    the host still has no agent, and its abort (remove what a failed installer left) removes only an agent of the
    version this run was installing — never one that appeared meanwhile from elsewhere; it refuses, and says so."""
    for step in steps:
        if step.id != "install":
            continue
        step.precheck = expect(backend, is_absent, "a host without the Mobility Service")
        if step.abort is not None:
            step.abort = own_only(backend, bundle, step.abort)
    return steps


def own_only(backend: AgentBackend, bundle: Bundle, abort: Callable[[], None]) -> Callable[[], None]:
    def guarded() -> None:
        now = observe(backend)
        if now.agent is not None and release_cmp(now.agent.version, bundle.version) != 0:
            raise AsrctlError(
                "ASRCTL-E070",
                f"refused to remove {describe(now)}: it is not the {bundle.version} this run was installing; "
                "it was left alone",
            )
        abort()

    return guarded


def vm_agent(app: App, backend: AgentBackend, bundle: Bundle, plan: Plan, wanted: bool) -> None:
    """The Azure VM agent's steps, unless ``--no-vm-agent`` (the plan's summary says it is left alone)."""
    if wanted:
        plan.extend(vm_agent_steps(app, backend, bundle))
    else:
        plan.summary["vm_agent"] = "left alone (--no-vm-agent)"
        app.out.info("The Azure VM agent is left alone (--no-vm-agent).")


def guard_existing(backend: AgentBackend, agent: InstalledAgent, steps: list[Step]) -> list[Step]:
    """Steps that act on the installed ``agent`` (upgrade, uninstall, register) run only while it is still that
    agent: the same version in the same install dir."""
    check = expect(backend, is_agent(agent.version, str(agent.install_dir)), describe_agent(agent))
    for step in steps:
        if step.precheck is None:
            step.precheck = check
    return steps


def describe_agent(agent: InstalledAgent) -> str:
    return f"Mobility Service {agent.version} in {agent.install_dir}"


def restart_services(backend: AgentBackend) -> Callable[[], None]:
    """Start the agent's services again if they are stopped (the undo of an upgrade: Microsoft's installer stops
    them first, and a failed or interrupted upgrade used to leave replication down)."""

    def run() -> None:
        now = observe(backend)
        if now.agent is None:
            raise AsrctlError("ASRCTL-E070", f"no agent to start again: the host has {describe(now)}")
        if now.stopped:
            backend.start_services(now.agent)

    return run


def settle_uninstall(backend: AgentBackend, warn: Callable[[str], None]) -> Callable[[], None]:
    """The abort of an uninstall step that failed or was interrupted half-way: leave a whole host, whichever is
    still possible. While the agent is there (its version file and files), it is put back as it was: its services,
    which Microsoft's ``uninstall.sh`` stops first, are started again. Once the uninstaller has removed the agent's
    files there is nothing to start: what is left is removed (**choice**: the uninstall is finished rather than
    leaving half an agent; nothing else could restore it without its bundle)."""

    def run() -> None:
        now = observe(backend)
        if now.absent:
            return
        for said in backend.clear_stale_locks():
            warn(said)
        if now.agent is not None and now.presence.files is not None:
            if now.stopped:
                backend.start_services(now.agent)
            return
        backend.remove_remains()

    return run
