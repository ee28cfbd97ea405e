"""Cloned-host detection.

When asrctl registers an agent it records the agent's host identity (drscout.conf HostId) next to this machine's
identity (``/etc/machine-id``, or the Windows MachineGuid). A VM cloned from a protected machine carries the same
agent HostId on a different machine: registering it would make two machines fight over one replication
identity, so ``register`` refuses without ``--force``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from asrctl.system.journal import atomic_write
from asrctl.system.paths import Paths

LOG = logging.getLogger("asrctl")
MAX_ID_FILE = 64 * 1024


def _read_json(path: Path) -> Any:
    """A small JSON file of asrctl's own, read bounded and non-blocking (never a FIFO, never through a link)."""
    from asrctl.system import rootfs

    try:
        raw = rootfs.read_host(path, MAX_ID_FILE, follow=False)
        return json.loads(raw) if raw is not None else None
    except (rootfs.Refused, OSError, ValueError):
        return None


def machine_id(paths: Paths) -> str | None:
    from asrctl.system import rootfs

    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            raw = rootfs.read_file(paths, candidate, 4096)
        except (rootfs.Refused, OSError):
            continue
        value = (raw or b"").decode("utf-8", errors="replace").strip()
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
    try:
        atomic_write(_path(paths), json.dumps(data, indent=2) + "\n")
    except OSError as exc:  # clone detection is a safety net; a full disk must not fail a registration that worked
        LOG.warning("could not record the agent's identity in %s: %s", _path(paths), exc)


def recorded_host_id(paths: Paths) -> str | None:
    """The agent HostId asrctl recorded when it registered it (None: none recorded, or forgotten on uninstall)."""
    data = _read_json(_path(paths))
    value = data.get("host_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def forget(paths: Paths) -> None:
    try:
        _path(paths).unlink(missing_ok=True)
    except OSError as exc:
        LOG.warning("could not remove %s: %s", _path(paths), exc)


def check_clone(paths: Paths, host_id: str | None) -> str | None:
    """A message when this looks like a clone of the machine the agent was registered on, else None."""
    data = _read_json(_path(paths))
    if not isinstance(data, dict):
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
