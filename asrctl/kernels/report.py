"""The driver as ``status`` shows it (``data.driver``) and the facts its health reasons come from."""

from __future__ import annotations

from typing import Any

from asrctl.agent.base import InstalledAgent
from asrctl.errors import AsrctlError
from asrctl.kernels import host, kver, rules
from asrctl.kernels.verdict import DriverFacts, driver_reasons
from asrctl.system.paths import Paths
from asrctl.system.runner import Runner


def _support(kernel: str | None, tag: str | None, listed: Any) -> tuple[str, str]:
    if kernel is None or tag is None:
        return rules.UNKNOWN, "no kernel or no OS tag"
    if listed is None and rules.uses_list(tag):
        return (
            rules.UNKNOWN,
            "the installed build's kernel list is not on this host (`asrctl kernel check --lists DIR`)",
        )
    verdict = rules.judge(kernel, tag, listed, installer=False)
    return verdict.status, verdict.why


def driver_report(
    paths: Paths, runner: Runner, agent: InstalledAgent | None, tag: str | None, running: str
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """(``data.driver``, the health reasons). Nothing is reported without an installed agent."""
    if agent is None:
        return {"installed_agent": False}, []
    state = host.driver_state(paths, runner, agent)
    listed = None
    list_note = None
    if tag:
        try:
            listed = host.installed_list(paths, agent, tag)
        except AsrctlError as exc:  # a damaged list: said, not fatal for status
            list_note = exc.message
    valid = kver.problem(running) is None
    nxt = host.next_boot(paths, running if valid else None)
    run_status, run_why = _support(running if valid else None, tag, listed)
    next_status, next_why = _support(nxt.kernel, tag, listed) if nxt.kernel else (rules.UNKNOWN, nxt.detail)
    facts = DriverFacts(
        loaded=state.loaded,
        device=state.device,
        device_problem=state.device_problem,
        faulty_version=state.version.agent_version if state.version and state.version.faulty else None,
        running=running,
        running_status=run_status,
        agent_version=agent.version,
        next_kernel=nxt.kernel,
        next_status=next_status,
        next_source=nxt.source,
    )
    data = state.as_json()
    data["kernel"] = {
        "running": running,
        "supported": run_status,
        "why": run_why,
        "next_boot": nxt.kernel,
        "next_boot_source": nxt.source,
        "next_boot_supported": next_status,
        "next_boot_why": next_why,
        "list": listed.source if listed is not None else None,
    }
    if list_note:
        data["notes"].append(list_note)
    return data, driver_reasons(facts)
