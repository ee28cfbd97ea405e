"""``asrctl status``: the installed agent, a newer bundle, the last run, the VM agent, a pending reboot. Read-only.

``agent_json`` is also how every other verb reports the agent it leaves behind.
"""

from __future__ import annotations

from typing import Any

from asrctl.agent import factory
from asrctl.agent.base import AgentBackend, InstalledAgent
from asrctl.app import App
from asrctl.bundles.catalog import resolve_dirs, scan
from asrctl.errors import AsrctlError
from asrctl.output import Result
from asrctl.versions import release_cmp


def agent_json(backend: AgentBackend, agent: InstalledAgent | None) -> dict[str, Any]:
    services = backend.services(agent) if agent else []
    return {
        "installed": agent is not None,
        "version": agent.version if agent else None,
        "build": agent.build if agent else None,
        "install_dir": str(agent.install_dir) if agent else None,
        "registered": bool(agent and agent.registered),
        "cs_endpoint": agent.cs_endpoint if agent else None,
        "cs_type": agent.cs_type if agent else None,
        "services": [s.as_json() for s in services],
    }


def status(app: App) -> Result:
    from asrctl.system.journal import Journal

    result = Result(app.command)
    backend = factory.backend_for(app)
    agent = backend.installed()
    result.data["agent"] = agent_json(backend, agent)
    if agent:
        result.data["agent"]["details"] = agent.details
    plat = app.platform
    newer = None
    if plat.os_tag:
        try:
            dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
            best = scan(dirs).newest_for(plat.os_tag)
        except AsrctlError as exc:
            result.warnings.append(f"bundle dirs: {exc.message}")
            best = None
        if best is not None and (agent is None or release_cmp(agent.version, best.version) < 0):
            newer = {"path": str(best.path), "version": best.version}
    result.data["newer_bundle"] = newer
    result.data["platform"] = {"os_tag": plat.os_tag, "supported": plat.supported, "reason": plat.reason}
    last = Journal(app.paths.state_dir).last()
    if last:
        result.data["last_run"] = {k: last.get(k) for k in ("command", "status", "started", "ended", "run_id")}
        if last.get("status") == "running":
            from asrctl.system.lock import pid_alive

            if not pid_alive(int(last.get("pid") or 0)):
                result.warnings.append(
                    f"the last run ({last.get('command')}, started {last.get('started')}) was interrupted; the next "
                    "install/upgrade/uninstall cleans up after it"
                )
    from asrctl.agent import vmagent

    result.data["vm_agent"] = vmagent.status(app, backend).as_json()
    reboot = backend.pending_reboot()
    if reboot:
        result.warnings.append(reboot)
    return result
