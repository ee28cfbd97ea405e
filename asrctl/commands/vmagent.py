"""``asrctl vm-agent status | install``: the Azure VM agent (WALinuxAgent on Linux; bundled on Windows)."""

from __future__ import annotations

import click

from asrctl.commands.common import begin, confirm_on_terminal, examples
from asrctl.commands.options import dry_run_option, yes_option
from asrctl.output import Result


@click.group(
    "vm-agent",
    epilog=examples(
        "asrctl vm-agent status --json",
        "asrctl vm-agent install --dry-run",
    ),
)
def vm_agent() -> None:
    """The Azure VM agent a failed-over machine needs (WALinuxAgent on Linux; bundled on Windows from 9.7.0.0)."""


@vm_agent.command("status")
@click.pass_context
def vm_agent_status(ctx: click.Context) -> Result:
    """Installed (package / registry)? Running (process / service)?"""
    from asrctl import render
    from asrctl.lifecycle import vmagent as verb

    app = begin(ctx)
    result = verb.status(app)
    render.vm_agent(app, result)
    return result


@vm_agent.command("install")
@dry_run_option
@yes_option
@click.pass_context
def vm_agent_install(ctx: click.Context, dry_run: bool, yes: bool) -> Result:
    """Install it: from a package file in the bundle dir (air-gapped) or the configured repositories (Linux),
    or from a WindowsAzureVmAgent*.msi in the bundle dir (Windows, bundles older than 9.7.0.0)."""
    from asrctl.lifecycle import vmagent as verb

    app = begin(ctx, changes_machine=not dry_run)
    return verb.install(app, dry_run, yes, confirm_on_terminal("vm-agent install"))
