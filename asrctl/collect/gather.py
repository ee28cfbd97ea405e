"""What goes into the support archive: the files of the target system, in the order the archive cap gives way
(the vendor's rotated agent logs last), the passphrase files read only to be masked, and the reports run in-process
(each the JSON document ``--json`` would print)."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.output import Output, Result
from asrctl.system import rootfs

LOG = logging.getLogger("asrctl")

CONNECT_TIMEOUT = 3.0  # seconds per network check of the doctor report (docs/CLI.md, "logs collect")


def _rotated(*names: str) -> str:
    """A log and its rotations: ``x.log``, ``x.log.1``, ``x.log.2.gz``, ``x.log-20250101``, ``x.log.old``."""
    return rf"(?:{'|'.join(map(re.escape, names))})(?:[.-](?:\d+|old|bak))*(?:\.(?:gz|xz|bz2))?"


@dataclass(frozen=True)
class Source:
    """Entries of one directory of the target system. ``directory`` may end in ``/*``: every subdirectory (the
    private directory of each run). ``expected`` names a file whose absence the manifest reports."""

    directory: str
    pattern: str
    what: str
    expected: str | None = None
    newest_first: bool = False
    on_host: bool = False  # a path of the machine asrctl runs on, not of --root (ASRCTL_LOG_FILE)


def sources(app: App) -> list[Source]:
    """Where the files are (docs/CLI.md, "logs collect"). Facts on paths: /work/notes/ms-bundles-facts.md."""
    from asrctl.system.log import LOG_FILE_ENV

    p = app.paths
    state = rootfs.target_of(p, p.state_dir)
    windows_host = os.name == "nt" and not p.sandboxed
    setup_logs = str(Path(os.environ.get("ProgramData", r"C:\ProgramData")) / "ASRSetupLogs")
    found = [Source(setup_logs if windows_host else "/var/log", _rotated("asrctl.log"), "asrctl log", "asrctl.log")]
    moved = os.environ.get(LOG_FILE_ENV)
    if moved:  # the operator moved the log (system/log.py): it is read where they put it
        where = Path(moved).absolute()
        found.append(Source(str(where.parent), _rotated(where.name), "asrctl log", on_host=True))
    found += [
        Source(state, r"journal\.json", "asrctl journal", expected="journal.json"),
        Source(state, r"history\.jsonl|identity\.json", "asrctl history"),
        Source(f"{state}/private/*", r".+\.json", "vendor JSON of a run"),
        Source(f"{state}/runs/*", r".+\.json", "vendor JSON of a run"),  # a dead run's (lifecycle/staging.py)
    ]
    if windows_host:
        vendor = r"(?i)(?!asrctl\.log).+\.(?:log|json|txt)"
        return [*found, Source(setup_logs, vendor, "vendor setup log", newest_first=True)]
    installer = ("ua_install.log", "ua_uninstall.log", "UaUnInstall.log", "InMage_drivers.log")
    return [
        *found,
        Source("/var/log", _rotated(*installer), "vendor installer log", newest_first=True),
        Source("/var/log", r"InstallerErrors\.json", "vendor errors JSON", expected="InstallerErrors.json"),
        Source("/var/log/ASRsetuptelemetry", r".+", "vendor setup telemetry"),
        Source("/var/log", _rotated("cdpcli.log", "AzureRcmCli.log"), "agent tool log", newest_first=True),
        Source("/usr/local", r"\.vx_version", "agent version file", expected=".vx_version"),
        *_agent_config(app),
        Source("/usr/local/InMage/config", r"RCMInfo\.conf", "agent configuration"),
        Source("/var/log", r"(?:svagents|appservice).*", "agent log", newest_first=True),
    ]


def _agent_config(app: App) -> list[Source]:
    """The installed agent's own configuration (drscout.conf, the RCMInfo.conf template), found through its
    version file: the path is the vendor's, so it is resolved inside the root like any other."""
    from asrctl.agent import factory

    try:
        agent = factory.backend_for(app).installed()
    except AsrctlError as err:
        LOG.warning("logs collect: the agent's configuration is left out: %s", err.message)
        return []
    if agent is None:
        return []
    vx = Path(str(agent.details.get("vx_dir") or agent.install_dir / "Vx"))
    etc = rootfs.target_of(app.paths, vx / "etc")
    return [Source(etc, r"drscout\.conf|RCMInfo\.conf", "agent configuration", expected="drscout.conf")]


# Passphrases left on the machine: read only to mask them everywhere, never archived. The vendor's configurator
# keeps a copy of -P (ms-bundles-facts.md, "Outside the install dir"); a killed asrctl run leaves its private copy.
SECRET_FILES = (
    ("/usr/local/InMage/private", r"connection\.passphrase"),
    ("{state}/private/*", r"passphrase"),
)


# --- the archive ------------------------------------------------------------------------------------------------


# --- the reports ------------------------------------------------------------------------------------------------


def _quiet(app: App, command: str, console: io.StringIO | None = None) -> App:
    """The same host and options, output captured: a verb run for a report draws nothing on the terminal."""
    return App(
        root_arg=app.root_arg,
        bundle_dir_args=app.bundle_dir_args,
        out=Output(verbosity=0, color=False, file=console or io.StringIO()),
        exit_codes=app.exit_codes,
        command=command,
    )


def detect_report(app: App) -> Result:
    quiet = _quiet(app, "detect")
    result = Result("detect", data={"platform": quiet.platform_json(), "host": quiet.facts.as_json()})
    result.warnings.extend(quiet.platform.warnings)
    if not quiet.platform.supported:
        result.ok = False
        result.error = AsrctlError("ASRCTL-E010", quiet.platform.reason or "unsupported").as_json()
    return result


def status_report(app: App) -> Result:
    from asrctl.lifecycle.status import status

    return status(_quiet(app, "status"))


def doctor_report(app: App, endpoint: str | None, console: io.StringIO) -> Result:
    from asrctl.support import doctor

    quiet = _quiet(app, "doctor", console)
    if endpoint is None:  # the configuration server this agent is registered with, if any
        from asrctl.agent import factory

        try:
            agent = factory.backend_for(quiet).installed()
        except AsrctlError:
            agent = None
        endpoint = agent.cs_endpoint if agent and agent.registered else None
    return doctor(quiet, endpoint, 9443, CONNECT_TIMEOUT, None)


def host_report(app: App) -> dict[str, Any]:
    """What support asks first about the machine (the host running asrctl; release files from the root)."""
    import platform

    import psutil

    from asrctl import buildinfo

    p = app.paths
    disks: dict[str, Any] = {}
    for label, where in (("root", p.root), ("state", p.state_dir), ("log", p.log_dir)):
        probe = next((d for d in (where, *where.parents) if d.exists()), None)
        if probe is not None:
            usage = psutil.disk_usage(str(probe))
            disks[label] = {"path": str(probe), "total": usage.total, "free": usage.free}
    memory = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timezone": list(time.tzname),
        "boot_time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(psutil.boot_time())),
        "uname": platform.uname()._asdict(),
        "cpus": os.cpu_count(),
        "memory": {"total": memory.total, "available": memory.available},
        "disks": disks,
        "locale": {k: os.environ.get(k) for k in ("LANG", "LC_ALL", "LC_CTYPE")},
        "root": str(p.root),
        "sandboxed": p.sandboxed,
        "facts": app.facts.as_json(),
        "release_files": dict(app.facts.release_files),
        "asrctl": buildinfo.collect().__dict__,
    }
