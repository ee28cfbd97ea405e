"""Helpers for driving ``asrctl.cli.run`` in-process."""

from __future__ import annotations


def ensure_vm_agent_command() -> None:
    """Every verb, ``vm-agent`` included, is registered lazily by ``asrctl.cli.COMMANDS``; nothing to do."""
