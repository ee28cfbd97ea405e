"""The fault-injection suite (docs/RELIABILITY.md): asrctl against the simulators, with faults delivered at named
points — never by sleeping and hoping.

- ``ASR_SIM_PAUSE`` (scripts/asrsim, docs/SIMULATORS.md) stops a vendor tool at a named point; ``harness.py`` stops
  asrctl itself right after its journal records a step's status. Both write a *ready file* and wait; a test waits
  for that file (:meth:`Faulty.ready`), then signals, kills, fills a file system, or lets it go on (:meth:`go`).
- Every case ends with :func:`assert_clean`: the host is whole (``lifecycle/state.py``'s ``whole()``, the one
  definition), nothing is left behind (staging, private files, vendor locks, orphaned processes, files outside the
  root), the journal is valid JSON that says how the last run ended, and — with ``next_run`` — the next run of the
  same command succeeds.
- ``@pytest.mark.fault("<family>")`` names each case's family; the summary counts cases and how many hold per
  family, and ``scripts/fault_report.py`` writes those counts into docs/RELIABILITY.md and README.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from e2e import conftest as e2e
from e2e.conftest import NEW, OLD, PASSPHRASE, TAG, Run, Sandbox
from fakes.hoststate import observe_root

from asrctl.lifecycle.state import whole

# The end-to-end suite's sandbox (a root tree, bundle dir, passphrase file; no process left behind) and the
# configuration-server stand-in, shared.
sandbox = e2e.sandbox
cs = e2e.cs

HARNESS = Path(__file__).with_name("harness.py")
READY_TIMEOUT = 90.0
FAMILIES = {
    "signals": "SIGINT/SIGTERM at every step of install, upgrade, register and uninstall, and during their undo",
    "sigkill": "SIGKILL (power loss) at every step, then the next run recovers",
    "concurrent": "concurrent pairs of every changing verb",
    "enospc": "a full file system at unpack, journal and install dir",
    "state-dir": "read-only, noexec and unwritable state dirs; garbage, directories and FIFOs as asrctl's own files",
    "inputs": "FIFOs, garbage, huge files and bad values at every input path and option",
    "confinement": "paths and vendor files pointing out of the root",
    "issue-13": "every reproduction in issue 13's 'Why'",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(family): a fault-injection case of that family (docs/RELIABILITY.md)")


_results: dict[str, Counter[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    family = next((m.split("=", 1)[1] for m in report.keywords if m.startswith("fault_family=")), None)
    if family is None:
        return
    counts = _results.setdefault(family, Counter())
    if report.when == "call":
        counts["cases"] += 1
        counts["hold" if report.passed else "fail"] += 1
    elif report.when == "setup" and report.skipped:
        counts["cases"] += 1
        counts["skipped"] += 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each case gets its family's keyword; the slow cases run only with ``ASRCTL_FAULTS=all`` (``make test-faults``,
    ``make faults-report``): the default ``make test`` keeps within its time budget (docs/RELIABILITY.md)."""
    everything = os.environ.get("ASRCTL_FAULTS", "").lower() == "all"
    keep, slow = [], []
    counted: Counter[str] = Counter()
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is None:
            keep.append(item)
            continue
        family = marker.args[0]
        assert family in FAMILIES, f"{item.nodeid}: unknown fault family {family!r}"
        item.keywords[f"fault_family={family}"] = True
        if item.get_closest_marker("slow") is not None and not everything:
            slow.append(item)
        else:
            keep.append(item)
            counted[family] += 1
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
    out = os.environ.get("ASRCTL_FAULT_COLLECTED")
    if out:
        Path(out).write_text(json.dumps(dict(counted), sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    terminalreporter.section("fault families")
    for family in FAMILIES:
        c = _results.get(family)
        if c:
            skipped = f", {c['skipped']} skipped" if c["skipped"] else ""
            terminalreporter.write_line(f"{family:12} {c['cases']:3} cases, {c['hold']:3} hold{skipped}")
    out = os.environ.get("ASRCTL_FAULT_REPORT")
    if out:
        Path(out).write_text(json.dumps({f: dict(c) for f, c in _results.items()}, indent=2, sort_keys=True) + "\n")


PR_SET_CHILD_SUBREAPER = 36


def _adopted_zombies(session: int) -> list[int]:
    """This process's children that are zombies of another session: the agent's daemons (they start a session of
    their own) and vendor tools a killed asrctl left (asrctl starts each in its own session) — never a process a
    test started itself (those stay in pytest's session, and their Popen reaps them)."""
    found = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as fh:
                pids = fh.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    data = fh.read()
                state, _ppid, _pgrp, sid = data[data.rindex(")") + 2 :].split()[:4]
            except (OSError, ValueError):
                continue
            if state == "Z" and int(sid) != session:
                found.append(int(pid))
    return found


@pytest.fixture(scope="package", autouse=True)
def reap_adopted_zombies() -> Iterator[None]:
    """Reap the suite's stopped daemons and orphaned vendor tools at once, as tests/sim does for its daemons.

    The simulated daemons are double-forked orphans; Microsoft's stop script (simulated) returns only once they are
    gone from /proc, zombies included, and PID 1 on this project's machines reaps orphans about 1.5 s late — paid on
    every stop, in every case and its teardown. As a child subreaper this process adopts them (and the vendor tools
    a SIGKILLed asrctl leaves) and reaps exactly those zombies; the processes the tests start are never touched. What
    asrctl decides does not depend on a parent: it finds orphans by session, start time and run id."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        yield
        return
    session = os.getsid(0)
    done = threading.Event()

    def _reap() -> None:
        while not done.wait(0.02):
            for pid in _adopted_zombies(session):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    thread = threading.Thread(target=_reap, name="faults-zombie-reaper", daemon=True)
    thread.start()
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    done.set()
    thread.join(5)
    for pid in _adopted_zombies(session):  # what was adopted and ended since
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


# --- runs under fault injection ---------------------------------------------------------------------------------


@dataclass
class Faulty:
    """One asrctl run started in the background, with its pause points."""

    proc: subprocess.Popen[str]
    pauses: Path
    argv: list[str]

    def ready(self, name: str, timeout: float = READY_TIMEOUT) -> int:
        """Wait until the pause point ``name`` (``install.copied``, ``asrctl.unpack.started``) is reached; returns
        the pid that wrote it. Fails with the run's output if it ends first."""
        path = self.pauses / f"{name}.ready"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                pytest.fail(f"{name} was never reached; asrctl exited {self.proc.returncode}:\n{err}\n{out}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} was not reached within {timeout:.0f} s")
            time.sleep(0.01)
        for _ in range(100):
            text = path.read_text().strip()
            if text:
                return int(text)
            time.sleep(0.01)
        return 0

    def go(self, name: str) -> None:
        (self.pauses / f"{name}.go").write_text("go\n")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 180) -> Run:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"asrctl did not finish within {timeout} s:\n{err}")
        return Run(self.proc.returncode, out, err, self.argv)

    def kill(self) -> None:
        """SIGKILL, as a power loss would: nothing of asrctl runs afterwards; its vendor tool, if any, is orphaned."""
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(Exception):
            self.proc.communicate(timeout=5)


def spawn(
    sb: Sandbox,
    *args: str,
    asrctl_pause: str | None = None,
    vendor_pause: str | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> Faulty:
    """Start ``asrctl ARGS`` in the sandbox, pausing where asked (see the module docstring)."""
    pauses = sb.base / "pauses"
    pauses.mkdir(exist_ok=True)
    entry = [str(HARNESS)] if asrctl_pause else ["-m", "asrctl"]
    argv = [sys.executable, *entry, "--root", str(sb.root), "--bundle-dir", str(sb.bundles), *args]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    full.update({"NO_COLOR": "1", "COLUMNS": "100", "NO_PROXY": "*", "TMPDIR": str(sb.base / "tmp")})
    full.update(sb.env)
    if asrctl_pause:
        full.update({"ASRCTL_FAULT_PAUSE": asrctl_pause, "ASRCTL_FAULT_DIR": str(pauses)})
    if vendor_pause:
        full.update({"ASR_SIM_PAUSE": vendor_pause, "ASR_SIM_PAUSE_DIR": str(pauses)})
    full.update(env or {})
    proc = subprocess.Popen(
        argv,
        env=full,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    return Faulty(proc, pauses, argv)


def install_args(sb: Sandbox, server: Any, *extra: str) -> list[str]:
    return ["--json", "install", "--cs-endpoint", server.endpoint, "--no-vm-agent", *extra]


def with_passphrase_env() -> dict[str, str]:
    """The passphrase from the environment: asrctl writes the private 0600 copy the configurator reads."""
    return {"ASRCTL_PASSPHRASE": PASSPHRASE}


# --- what every case asserts -----------------------------------------------------------------------------------


def orphans(sb: Sandbox) -> list[str]:
    """Processes of this sandbox that should not be there: anything but the agent's own daemons and the CS stand-in
    (asrctl itself, a vendor tool, a pause helper)."""
    left = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = [part or "" for part in proc.info["cmdline"] or []]
            if not any(str(sb.base) in part for part in cmd):
                continue
            if proc.info["name"] in ("svagents", "appservice") or any("cs_sim.py" in part for part in cmd):
                continue
            left.append(f"{proc.info['pid']} {' '.join(cmd)[:200]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return left


def residue(sb: Sandbox) -> list[str]:
    """What a finished run must never leave: staging copies, private passphrase files, run dirs, a vendor lock."""
    state = sb.root / "var/lib/asrctl"
    left = []
    for name in ("staging", "private", "runs"):
        d = state / name
        if d.is_dir():
            left += [str(p) for p in d.iterdir()]
    lock = sb.install_dir / ".uninstall.lck"
    if os.path.lexists(lock):
        left.append(str(lock))
    return left


def outside_root(sb: Sandbox, allowed: tuple[str, ...] = ()) -> list[str]:
    """Top-level entries of the sandbox base that no test made: anything asrctl wrote outside its --root."""
    known = {"root", "bundles", "tmp", "cs", "cs.passphrase", "pauses", *allowed}
    return sorted(p.name for p in sb.base.iterdir() if p.name not in known)


def journal_ok(sb: Sandbox) -> dict[str, Any] | None:
    """The journal parses and says how the last run ended (never "running" once no run is alive); every history
    line parses."""
    state = sb.root / "var/lib/asrctl"
    path = state / "journal.json"
    doc = None
    if path.exists():
        doc = json.loads(path.read_text())
        assert isinstance(doc, dict) and doc.get("status") in ("ok", "failed", "interrupted"), doc
    history = state / "history.jsonl"
    if history.exists():
        for line in history.read_text().splitlines():
            assert isinstance(json.loads(line), dict)
    return doc


def assert_clean(sb: Sandbox, expect: str | None = None, journal: bool = True) -> None:
    """The invariant of every case: whole, nothing left behind, a valid journal. ``expect`` "absent" or a
    version: which whole state. ``journal=False`` after a run whose journal could not be written (a full disk):
    it still says "running" until the next run recovers it."""
    state = observe_root(sb.root)
    assert whole(state) == [], whole(state)
    if expect == "absent":
        assert state.absent, state
    elif expect is not None:
        assert state.agent is not None and state.agent.version == expect, state
    assert residue(sb) == []
    assert orphans(sb) == []
    assert outside_root(sb) == []
    if journal:
        journal_ok(sb)
    leaked = [p for p in (sb.root / "var/lib/asrctl").rglob("*") if PASSPHRASE in _text(p)]
    assert leaked == [], f"the passphrase is in {leaked}"


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace") if path.is_file() and not path.is_symlink() else ""
    except OSError:
        return ""


def health_ids(sb: Sandbox) -> list[str]:
    r = sb.asrctl("--json", "status")
    assert r.returncode == 0, r.stderr
    return [reason["id"] for reason in r.json["data"]["health"]["reasons"]]


@pytest.fixture
def installed(sandbox: Sandbox, cs: Any) -> Iterator[Sandbox]:
    """A sandbox with OLD installed and registered (and NEW's bundle beside it, for upgrades)."""
    sandbox.bundle(OLD)
    r = sandbox.asrctl(*install_args(sandbox, cs, "--passphrase-file", str(sandbox.passphrase_file)))
    assert r.returncode == 0, r.stderr
    yield sandbox


def sig_name(sig: int) -> str:
    return signal.Signals(sig).name


__all__ = ["NEW", "OLD", "TAG", "PASSPHRASE"]


# --- small file systems (root only) -----------------------------------------------------------------------------


@pytest.fixture
def tmpfs(sandbox: Sandbox) -> Iterator[Any]:
    """``tmpfs(path, "size=256k", "noexec")`` mounts a small tmpfs at ``path`` (inside the test's temp dir) for the
    rest of the test; it is unmounted afterwards (the agent's daemons stopped first, so nothing keeps it busy).
    Needs root: skipped otherwise, with the reason."""
    mounts: list[Path] = []

    def mount(path: Path, *options: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small file system for this fault is a tmpfs mount, which needs root")
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(("mode=0755", *options)), "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    sandbox.stop_agent()
    for path in reversed(mounts):
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        if os.path.ismount(path):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount(path: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(("remount", *options)), str(path)], check=True, capture_output=True)


def fill(mount: Path) -> Path:
    """Fill the file system at ``mount`` to the last byte; delete the returned file to free it again."""
    filler = mount / ".filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        st = os.statvfs(mount)
        free = st.f_bavail * st.f_frsize
        if free > 0:
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, free)
        os.lseek(fd, 0, os.SEEK_END)
        chunk = b"\0" * 4096
        while True:
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError:
                break
        # The last partial page or inode: a byte at a time.
        while True:
            try:
                if os.write(fd, b"\0") == 0:
                    break
            except OSError:
                break
    finally:
        os.close(fd)
    return filler
