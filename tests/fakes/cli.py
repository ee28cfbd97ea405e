"""Helpers for driving ``asrctl.cli.run`` in-process."""

from __future__ import annotations


def ensure_vm_agent_command() -> None:
    """Register ``vm-agent`` on the CLI group if asrctl/commands/__init__.py does not list it (yet)."""
    from asrctl.cli import cli
    from asrctl.commands import vmagent

    if "vm-agent" not in cli.commands:
        vmagent.register(cli)
