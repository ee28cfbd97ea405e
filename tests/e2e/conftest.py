"""End-to-end fixtures: the real asrctl as a subprocess, in a sandbox root, against the simulators.

Every test gets a fresh sandbox (root tree, bundle dir, passphrase file) under pytest's tmp_path. After each
test no process that mentions the sandbox may still run. (That no agent path on the real host changed is checked
for the whole session by tests/conftest.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from asrsim import csserver
from asrsim.bundle import build_bundle
from asrsim.host import HOSTTOOLS_BIN, PKGTOOLS_BIN, prepare_root, tool_path

REPO = Path(__file__).resolve().parents[2]

TAG = "UBUNTU-22.04-64"
OLD, NEW = "9.65.7417.1", "9.66.7567.1"
PASSPHRASE = "Tr1cky-Passphrase-7f3a9c"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    argv: list[str]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass
class Sandbox:
    base: Path
    root: Path
    bundles: Path
    passphrase_file: Path
    env: dict[str, str] = field(default_factory=dict)

    def asrctl(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
    ) -> Run:
        argv = [sys.executable, "-m", "asrctl", "--root", str(self.root), "--bundle-dir", str(self.bundles), *args]
        full_env = self.environ(**(env or {}))
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, argv)

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment asrctl runs with: this one without asrctl's and the simulators' variables, plus the
        sandbox's (``self.env``) and *extra*. The sandbox's own host tools (mokutil) come first on PATH: they answer
        for the sandbox, never for the machine the tests run on."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
        full_env.update({"NO_COLOR": "1", "COLUMNS": "100", "NO_PROXY": "*", "TMPDIR": str(self.base / "tmp")})
        full_env["PATH"] = tool_path(HOSTTOOLS_BIN)
        full_env.update(self.env)
        full_env.update(extra)
        return full_env

    def bundle(self, version: str, tag: str = TAG, date: str = "20Sep2025", checksum: bool = True, **kw: Any) -> Path:
        path = build_bundle(version, tag, self.bundles, date=date, **kw)
        if checksum:
            from asrctl.bundles.digest import write_sums

            write_sums(self.bundles)
        return path

    def become(self, distro: str, kernel: str | None = None, rpm: bool = False) -> None:
        """Make the root another fixture tree (tests/fixtures/distros/<distro>) running *kernel* (ASRCTL_KERNEL, as
        asrctl and the simulators read it in a sandbox); *rpm* puts the simulated rpm on PATH (RPM families)."""
        import shutil

        shutil.rmtree(self.root)
        fixture_root(self.root, distro, kernel)
        if kernel:
            self.env["ASRCTL_KERNEL"] = kernel
        if rpm:
            self.env["PATH"] = tool_path(HOSTTOOLS_BIN, PKGTOOLS_BIN)

    @property
    def vx_version(self) -> Path:
        return self.root / "usr/local/.vx_version"

    @property
    def install_dir(self) -> Path:
        return self.root / "usr/local/ASR"

    def files(self) -> set[str]:
        return {str(p.relative_to(self.base)) for p in self.base.rglob("*")}

    def stop_agent(self) -> None:
        """A test may end with the agent installed: stop its daemons the vendor's way (Vx/bin/stop)."""
        stop = self.install_dir / "Vx/bin/stop"
        if stop.exists():
            env = {**os.environ, "ASRCTL_ROOT": str(self.root)}
            subprocess.run([str(stop)], env=env, capture_output=True, timeout=60, check=False)

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(str(self.base) in (part or "") for part in proc.info["cmdline"] or []):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found


def ubuntu_root(root: Path) -> None:
    """A sandbox root holding the Ubuntu 22.04 fixture tree (as the distro ships it) and a machine-id."""
    fixture_root(root, "ubuntu-22.04")


def fixture_root(root: Path, distro: str, kernel: str | None = None) -> None:
    """A sandbox root holding a fixture tree of tests/fixtures/distros, a machine-id and the running kernel's
    module directory (Microsoft's prerequisite checker requires it)."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures/distros" / distro, root, symlinks=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    prepare_root(root, kernel)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    base = tmp_path / "sb"
    root, bundles = base / "root", base / "bundles"
    bundles.mkdir(parents=True)
    (base / "tmp").mkdir()
    ubuntu_root(root)
    pf = base / "cs.passphrase"
    pf.write_text(PASSPHRASE + "\n")
    pf.chmod(0o600)
    box = Sandbox(base, root, bundles, pf)
    yield box
    box.stop_agent()
    left = box.processes()
    for proc in left:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind: {[p.pid for p in left]}"


@pytest.fixture
def cs(sandbox: Sandbox) -> Iterator[csserver.RunningCS]:
    server = csserver.start(sandbox.base / "cs", sandbox.passphrase_file, max_lifetime=300)
    # The stand-in's process server port is a free one, not 9443: asrctl learns it from its variable.
    sandbox.env["ASRCTL_PS_PORT"] = str(server.ps_port)
    yield server
    server.stop()


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
