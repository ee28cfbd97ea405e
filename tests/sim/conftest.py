"""Fixtures for the simulator tests: bundles, a sandbox root per test, the CS stand-in.

Every process a test starts is stopped by a finalizer; every file lands under tmp_path; the only
network peer is 127.0.0.1.
"""

from __future__ import annotations

import configparser
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from asrsim.bundle import build_bundle
from asrsim.host import HOSTTOOLS_BIN, PKGTOOLS_BIN, prepare_root

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

V1 = "9.66.7567.1"
V2 = "9.67.7789.1"
V0 = "9.65.7417.1"
TAG = "UBUNTU-22.04-64"
PASSPHRASE = "Corr3ct-Horse-Battery"

UBUNTU_2204 = {
    "os-release": 'NAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nID=ubuntu\nID_LIKE=debian\n',
    "lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"
    'DISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"\n',
    "debian_version": "bookworm/sid\n",
    "hostname": "sim-host-01\n",
}
KNOBS = ("ASR_SIM_INSTALL_EXIT", "ASR_SIM_FAIL_AT", "ASR_SIM_HANG", "ASR_SIM_ARCH", "ASR_SIM_CS_CAFILE")
RHEL8_KERNEL = "4.18.0-553.el8_10.x86_64"
RHEL8_RELEASE = "Red Hat Enterprise Linux release 8.10 (Ootpa)\n"


def _state(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text(errors="replace")
        return data[data.rindex(")") + 2 :].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is dead)."""
    return _state(pid) not in (None, "Z", "X")


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains *text*."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(int(entry)):
            found.append(int(entry))
    return found


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Sandbox:
    """A sandbox root (Ubuntu 22.04 release files) plus helpers to drive the simulated tools."""

    def __init__(self, base: Path, python_dir: Path | None = None, rhel8: bool = False) -> None:
        self.base = base
        self.python_dir = python_dir
        self.kernel = RHEL8_KERNEL if rhel8 else None
        self.root = base / "root"
        # Bundles are unpacked inside the root, like asrctl's private staging dir (not under /usr/local).
        self.stage = self.root / "var/lib/asrsim-stage"
        self.secrets = base / "secrets"
        for d in (self.root / "etc", self.stage, self.secrets, base / "home", base / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        if rhel8:
            (self.root / "etc/redhat-release").write_text(RHEL8_RELEASE)
            (self.root / "etc/hostname").write_text(UBUNTU_2204["hostname"])
        else:
            for name, text in UBUNTU_2204.items():
                (self.root / "etc" / name).write_text(text)
        prepare_root(self.root, self.kernel)
        self.passphrase_file = self.secrets / "passphrase"
        self.passphrase_file.write_text(PASSPHRASE + "\n")

    # paths -----------------------------------------------------------------
    @property
    def install_dir(self) -> Path:
        return self.root / "usr/local/ASR"

    @property
    def vx(self) -> Path:
        return self.install_dir / "Vx"

    @property
    def vx_version_path(self) -> Path:
        return self.root / "usr/local/.vx_version"

    @property
    def install_log(self) -> Path:
        return self.root / "var/log/ua_install.log"

    @property
    def uninstall_log(self) -> Path:
        return self.root / "var/log/ua_uninstall.log"

    # state -----------------------------------------------------------------
    def vx_version(self) -> dict[str, str]:
        out = {}
        for line in self.vx_version_path.read_text().splitlines():
            key, _, value = line.partition("=")
            out[key] = value
        return out

    def drscout(self) -> configparser.SectionProxy:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str
        parser.read(self.vx / "etc/drscout.conf")
        return parser["vxagent"]

    def daemon_pids(self) -> dict[str, list[int]]:
        result: dict[str, list[int]] = {"svagents": [], "appservice": []}
        for pid in processes_mentioning(str(self.root)):
            with contextlib.suppress(OSError):
                name = comm(pid)
                if name in result:
                    result[name].append(pid)
        return result

    def files(self) -> list[str]:
        """Files under the root, the staged bundles left out."""
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if not p.is_dir() and self.stage not in p.parents
        )

    # running tools ---------------------------------------------------------
    def env(self, **knobs: str) -> dict[str, str]:
        # The sandbox's host tools (mokutil) and the simulated rpm first: they answer for the sandbox.
        path = os.pathsep.join([str(HOSTTOOLS_BIN), str(PKGTOOLS_BIN), os.environ.get("PATH", "/usr/bin:/bin")])
        if self.python_dir is not None:
            path = f"{self.python_dir}{os.pathsep}{path}"
        env = {
            "PATH": path,
            "HOME": str(self.base / "home"),
            "TMPDIR": str(self.base / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "ASRCTL_ROOT": str(self.root),
        }
        if self.kernel:
            env["ASRCTL_KERNEL"] = self.kernel
        env.update({k: str(v) for k, v in knobs.items()})
        return env

    def run(self, argv, knobs: dict | None = None, timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(
            [str(a) for a in argv],
            env=self.env(**(knobs or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,
        )

    def extract(self, bundle: Path) -> Path:
        dest = self.stage / bundle.name.replace(".tar.gz", "")
        if not dest.exists():
            dest.mkdir(parents=True)
            with tarfile.open(bundle) as tar:
                tar.extractall(dest, filter="data")
        return dest

    def install(self, bundle: Path, *extra: str, action: str = "Install", cs_type: str = "CSLegacy", knobs=None):
        staged = self.extract(bundle)
        argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", cs_type, "-a", action]
        argv += ["-d", self.install_dir, *extra]
        return self.run(argv, knobs)

    def upgrade(self, bundle: Path, knobs=None):
        staged = self.extract(bundle)
        argv = [staged / "install", "-v", "VmWare", "-q", "-a", "Upgrade", "-c", "CSLegacy", "-d", self.install_dir]
        return self.run(argv, knobs)

    def uninstall(self, *args: str, knobs=None):
        return self.run([self.install_dir / "uninstall.sh", *args], knobs)

    def configure(self, *args, knobs=None):
        return self.run([self.vx / "bin/UnifiedAgentConfigurator.sh", *args], knobs)

    def register(self, cs, knobs=None):
        return self.configure("-i", cs.host, "-P", self.passphrase_file, "-c", "CSLegacy", "-p", cs.port, knobs=knobs)

    def cleanup(self) -> list[int]:
        """Kill whatever still runs from this sandbox; return what was found."""
        leftovers = processes_mentioning(str(self.base))
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in leftovers), timeout=5)
        return leftovers


PR_SET_CHILD_SUBREAPER = 36
DAEMON_NAMES = ("svagents", "appservice")


@pytest.fixture(scope="package", autouse=True)
def reap_orphaned_daemons():
    """Adopt and reap the simulated daemons while the sim tests run.

    bin/stop waits until a stopped daemon has disappeared from /proc (so callers never see a
    zombie named svagents).  The daemons are orphans; on machines whose PID 1 reaps orphans late
    (about 1.5 s on this project's VMs) that wait dominates the suite.  As a child subreaper this
    process adopts them and reaps exactly those zombies (by name) at once; nothing else is touched.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield
        return
    me = os.getpid()
    done = threading.Event()

    def _reap() -> None:
        while not done.wait(0.01):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    data = Path(f"/proc/{entry}/stat").read_text(errors="replace")
                except OSError:
                    continue
                name = data[data.find("(") + 1 : data.rindex(")")]
                state, ppid = data[data.rindex(")") + 2 :].split()[:2]
                if state == "Z" and int(ppid) == me and name in DAEMON_NAMES:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(entry), os.WNOHANG)

    thread = threading.Thread(target=_reap, name="sim-daemon-reaper", daemon=True)
    thread.start()
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    done.set()
    thread.join(5)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bundles")
    return {
        "v1": build_bundle(V1, TAG, out, date="20Sep2025"),
        "v2": build_bundle(V2, TAG, out, date="30Apr2026"),
        "v0": build_bundle(V0, TAG, out, date="23Apr2025"),
        "rhel8": build_bundle(V1, "RHEL8-64", out, date="20Sep2025"),
    }


@pytest.fixture(scope="session")
def python_dir(tmp_path_factory) -> Path:
    """A PATH entry whose python3 is this interpreter's real binary.

    The bundle's tools start with ``#!/usr/bin/env python3``; going through a version-manager
    shim (pyenv) would cost ~0.2 s per tool call.
    """
    target = tmp_path_factory.mktemp("pybin")
    (target / "python3").symlink_to(os.path.realpath(sys.executable))
    return target


@pytest.fixture
def sandbox(tmp_path, python_dir):
    """A fresh sandbox; at teardown its daemons are stopped and any leaked process is an error."""
    box = Sandbox(tmp_path / "sbx", python_dir)
    box.expect_running = False  # a test that leaves the agent installed sets this
    yield box
    running = box.daemon_pids()
    leftovers = box.cleanup()
    if leftovers and not (box.expect_running and set(leftovers) <= set(running["svagents"] + running["appservice"])):
        pytest.fail(f"test left processes behind: {leftovers}")


@pytest.fixture
def installed(sandbox, bundles):
    """The sandbox with 9.66.7567.1 installed (CSLegacy) and its daemons running."""
    proc = sandbox.install(bundles["v1"])
    assert proc.returncode == 0, proc.stderr
    sandbox.expect_running = True
    return sandbox


def _cs_starter(base: Path):
    pytest.importorskip("cryptography", reason="the CS stand-in needs the cryptography package (dev extra)")
    from asrsim import csserver

    servers = []

    def _start(name: str = "cs", passphrase: str = PASSPHRASE, **kw):
        pp = base / f"{name}.passphrase"
        pp.write_text(passphrase + "\n")
        server = csserver.start(base / name, pp, **kw)
        servers.append(server)
        return server

    return _start, servers


def _stop_all(servers) -> None:
    for server in servers:
        server.stop()
        assert not server.alive()


@pytest.fixture
def cs_factory(tmp_path):
    """Start configuration-server stand-ins; all are stopped at teardown."""
    start, servers = _cs_starter(tmp_path)
    yield start
    _stop_all(servers)


@pytest.fixture(scope="module")
def cs(tmp_path_factory):
    """A configuration server shared by a module's tests (cert ok, standard passphrase).

    Tests tell their hosts apart by host id (see :func:`entries_for`).
    """
    start, servers = _cs_starter(tmp_path_factory.mktemp("shared-cs"))
    yield start()
    _stop_all(servers)


def entries_for(cs, box) -> list[dict]:
    """The CS's registered.json entries for this sandbox's host id."""
    import json

    host_id = json.loads((box.vx / "etc/asrsim_identity.json").read_text())["host_id"]
    return [e for e in cs.registered() if e["host_id"] == host_id]
