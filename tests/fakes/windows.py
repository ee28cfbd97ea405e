"""A simulated Windows for the Windows backend: a recording runner that answers PowerShell, the installer,
the configurator and MsiExec like Windows would; in-memory files and services (and fakes/registry.py's
registry); a Windows command line splitter (the rules of CommandLineToArgvW / the MSVC runtime) to compare argv
with documented commands.
"""

from __future__ import annotations

import json
import ntpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.agent.windows import (
    INMAGE_KEYS,
    UNINSTALL_KEYS,
    WindowsBackend,
)
from asrctl.agent.windows_signing import DEFENDER_SCRIPT, SIGNATURE_ENV, SIGNATURE_SCRIPT
from asrctl.output import Output
from asrctl.system.paths import Paths
from fakes.registry import MemoryRegistry
from fakes.runner import RecordingRunner, Scripted

ENV = {
    "SystemRoot": "C:\\Windows",
    "SystemDrive": "C:",
    "ProgramData": "C:\\ProgramData",
    "ProgramFiles(x86)": "C:\\Program Files (x86)",
}
DEFAULT_DIR = "C:\\Program Files (x86)\\Microsoft Azure Site Recovery"
MICROSOFT = "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"


@dataclass
class MemoryFiles:
    """An in-memory Windows file system (asrctl.system.files.Files): ``{windows path: text}``; directories are
    implied by files."""

    files: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)

    @staticmethod
    def _key(path: str) -> str:
        return ntpath.normcase(ntpath.normpath(path))

    def add(self, path: str, text: str = "") -> None:
        self.files[self._key(path)] = text

    def exists(self, path: str) -> bool:
        key = self._key(path)
        return key in self.files or key in self.dirs or any(f.startswith(key + "\\") for f in self.files)

    def read_text(self, path: str) -> str | None:
        return self.files.get(self._key(path))

    def makedirs(self, path: str) -> None:
        self.dirs.add(self._key(path))


@dataclass(frozen=True)
class ServiceInfo:
    """A service as psutil's ``WindowsService`` shows it (asrctl.agent.windows.WindowsService)."""

    service_name: str
    service_status: str = "running"
    service_pid: int | None = None

    def name(self) -> str:
        return self.service_name

    def status(self) -> str:
        return self.service_status

    def pid(self) -> int | None:
        return self.service_pid


def signature_json(status: str = "Valid", subject: str | None = MICROSOFT) -> str:
    signer = {"Subject": subject, "Thumbprint": "AB" * 20, "NotAfter": "2027-01-01T00:00:00"} if subject else None
    return json.dumps({"Status": status, "StatusMessage": f"Signature {status}", "SignerCertificate": signer})


@dataclass
class WindowsRunner(RecordingRunner):
    """Answers PowerShell by script: signatures per file (default: valid, Microsoft), Defender's exclusions."""

    signatures: dict[str, Scripted] = field(default_factory=dict)
    defender: Scripted = field(default_factory=lambda: Scripted(stdout=json.dumps({"Available": False})))

    def _answer(self, call: list[str]) -> Scripted:
        if call[0].lower().endswith("powershell.exe"):
            if call[-1] == SIGNATURE_SCRIPT:
                path = self.envs[-1].get(SIGNATURE_ENV, "")
                return self.signatures.get(path, Scripted(stdout=signature_json()))
            if call[-1] == DEFENDER_SCRIPT:
                return self.defender
        return super()._answer(call)

    def programs(self) -> list[str]:
        """The program of every call, without its directory, lower-case."""
        return [c[0].replace("\\", "/").rsplit("/", 1)[-1].lower() for c in self.calls]

    def last(self, program: str) -> list[str]:
        return [c for c in self.calls if c[0].lower().endswith(program.lower())][-1]


@dataclass
class World:
    backend: WindowsBackend
    runner: WindowsRunner
    registry: MemoryRegistry
    files: MemoryFiles
    services: list[ServiceInfo]


def world(
    *,
    admin: bool = True,
    root: str = "/",
    script: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> World:
    runner = WindowsRunner(script or {})
    registry = MemoryRegistry()
    files = MemoryFiles()
    services: list[ServiceInfo] = []
    backend = WindowsBackend(
        Paths(Path(root)),
        runner,
        Output(),
        registry=registry,
        services_iter=lambda: list(services),
        environ=ENV if environ is None else environ,
        files=files,
        is_admin=lambda: admin,
    )
    return World(backend, runner, registry, files, services)


def install_agent(
    w: World,
    version: str = "9.66.7567.1",
    registered: bool = True,
    install_dir: str = DEFAULT_DIR,
    wow: bool = True,
) -> None:
    """What a finished Mobility Service install leaves in the registry (and its running services)."""
    key = UNINSTALL_KEYS[0] if wow else UNINSTALL_KEYS[1]
    w.registry.set(
        key,
        {
            "DisplayName": "Microsoft Azure Site Recovery Mobility Service/Master Target Server",
            "DisplayVersion": version,
            "InstallLocation": install_dir + "\\",
        },
    )
    w.registry.set(
        INMAGE_KEYS[0],
        {
            "InstallDirectory": install_dir,
            "AgentConfigurationStatus": "Succeeded" if registered else "Failed",
            "PostInstallActions": "Succeeded",
        },
    )
    w.services[:] = [
        ServiceInfo("svagents", "running", 4100),
        ServiceInfo("InMage Scout Application Service", "running", 4200),
    ]


def split_windows(cmdline: str) -> list[str]:
    """Split a command line the way CommandLineToArgvW does (the rules subprocess.list2cmdline targets)."""
    args: list[str] = []
    cur: list[str] = []
    in_quotes = False
    have = False
    i = 0
    while i < len(cmdline):
        c = cmdline[i]
        if c == "\\":
            n = 0
            while i < len(cmdline) and cmdline[i] == "\\":
                n += 1
                i += 1
            if i < len(cmdline) and cmdline[i] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += 1
            else:
                cur.append("\\" * n)
            continue
        if c == '"':
            in_quotes = not in_quotes
            have = True
        elif c in " \t" and not in_quotes:
            if cur or have:
                args.append("".join(cur))
                cur, have = [], False
        else:
            cur.append(c)
        i += 1
    if cur or have:
        args.append("".join(cur))
    return args


def switches(argv: list[str]) -> dict[str, str | None]:
    """``/Name value`` pairs of a vendor command line (names case-insensitive; a switch without value → None)."""
    out: dict[str, str | None] = {}
    i = 1
    while i < len(argv):
        name = argv[i].lower()
        if i + 1 < len(argv) and not argv[i + 1].startswith("/"):
            out[name] = argv[i + 1]
            i += 2
        else:
            out[name] = None
            i += 1
    return out


def simulated_windows_host(monkeypatch: Any, w: World | None = None) -> World:
    """Make the CLI see a Windows host: Windows facts, and the backend factory hands out ``w``'s simulated one."""
    from asrctl import facts
    from asrctl.agent import factory

    w = w or world()
    windows_facts = facts.HostFacts(
        os_family="windows",
        distro_id="windows",
        distro_name="Windows Server 2022 Datacenter",
        version="10.0.20348",
        arch="x86_64",
        kernel="10.0.20348.2340",
        is_admin=True,
        root="C:\\",
        windows=facts.WindowsFacts("Windows Server 2022 Datacenter", "10.0", 20348, "server"),
    )
    monkeypatch.setattr(facts, "detect", lambda paths, environ=None: windows_facts)
    monkeypatch.setattr(factory, "backend_for", lambda app, runner=None: w.backend)
    return w
