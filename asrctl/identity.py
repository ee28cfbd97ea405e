"""Cloned-host detection.

When asrctl registers an agent it records the agent's host identity (drscout.conf HostId) next to this machine's
identity (``/etc/machine-id``, or the Windows MachineGuid). A VM cloned from a protected machine carries the same
agent HostId on a different machine: registering it would make two machines fight over one replication
identity, so ``register`` refuses without ``--force``.
"""

from __future__ import annotations

import json
from pathlib import Path

from asrctl.system.journal import atomic_write
from asrctl.system.paths import Paths


def machine_id(paths: Paths) -> str | None:
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = paths.host(candidate).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if value:
            return value
    return None


def _path(paths: Paths) -> Path:
    return paths.state_dir / "identity.json"


def record(paths: Paths, host_id: str | None) -> None:
    """Remember the registered agent's HostId (drscout.conf) with this machine's id."""
    if not host_id:
        return
    data = {"host_id": host_id, "machine_id": machine_id(paths)}
    atomic_write(_path(paths), json.dumps(data, indent=2) + "\n")


def recorded_host_id(paths: Paths) -> str | None:
    """The agent HostId asrctl recorded when it registered it (None: none recorded, or forgotten on uninstall)."""
    try:
        data = json.loads(_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("host_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def forget(paths: Paths) -> None:
    _path(paths).unlink(missing_ok=True)


def check_clone(paths: Paths, host_id: str | None) -> str | None:
    """A message when this looks like a clone of the machine the agent was registered on, else None."""
    try:
        data = json.loads(_path(paths).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recorded_machine = data.get("machine_id")
    current = machine_id(paths)
    if not host_id or data.get("host_id") != host_id:
        return None
    if recorded_machine and current and recorded_machine != current:
        return (
            f"the agent's host identity {host_id} was registered on machine-id {recorded_machine}, but this "
            f"machine is {current}: this looks like a clone"
        )
    return None
