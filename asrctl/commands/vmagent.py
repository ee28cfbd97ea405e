"""``asrctl vm-agent status | install``: the Azure VM agent (WALinuxAgent on Linux; bundled on Windows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from asrctl.commands.common import begin
from asrctl.output import Result

if TYPE_CHECKING:
    from asrctl.agent.vmagent import VmAgentStatus
    from asrctl.app import App


@click.group("vm-agent")
def vm_agent() -> None:
    """The Azure VM agent a failed-over machine needs (WALinuxAgent on Linux; bundled on Windows from 9.7.0.0)."""


@vm_agent.command("status")
@click.pass_context
def vm_agent_status(ctx: click.Context) -> Result:
    """Installed (package / registry)? Running (process / service)?"""
    from asrctl.agent import vmagent

    app = begin(ctx)
    st = vmagent.status(app)
    result = Result(app.command, data={"vm_agent": st.as_json()})
    _render(app, st)
    return result


@vm_agent.command("install")
@click.option("--dry-run", is_flag=True, help="Print the plan (exact commands) and change nothing.")
@click.option("-Y", "--yes", is_flag=True, help="Do not ask; answer yes.")
@click.pass_context
def vm_agent_install(ctx: click.Context, dry_run: bool, yes: bool) -> Result:
    """Install it: from a package file in the bundle dir (air-gapped) or the configured repositories (Linux),
    or from a WindowsAzureVmAgent*.msi in the bundle dir (Windows, bundles older than 9.7.0.0)."""
    from asrctl.agent import vmagent

    app = begin(ctx, changes_machine=not dry_run)
    return vmagent.install(app, dry_run, yes, vmagent.confirm_on_terminal)


def _render(app: App, st: VmAgentStatus) -> None:
    installed = {True: "yes", False: "no", None: "unknown"}[st.installed]
    running = "yes" + (f" (pid {', '.join(map(str, st.pids))})" if st.pids else "") if st.running else "no"
    app.out.keyvalues(
        "Azure VM agent",
        [
            ("Installed", installed),
            ("Version", st.version),
            ("Package", st.package),
            ("Service", st.service),
            ("Running", running),
            ("Source", st.source),
        ],
    )
    for note in st.notes:
        app.out.warn(note)
