"""Shared helpers for the one-file binary's tests (``make test-binary``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NSEXEC = HERE / "nsexec.py"
FIXTURES = REPO / "tests" / "fixtures" / "distros"
SOURCES = [REPO / "asrctl", REPO / "platforms", REPO / "scripts" / "binary", REPO / "constraints" / "binary.txt"]
PASSPHRASE = "Bin4ry-Passphrase-2c91e0"
TAG = "UBUNTU-16.04-64"
OLD, NEW = "9.65.7417.1", "9.66.7567.1"


def binary_path() -> Path:
    given = os.environ.get("ASRCTL_TEST_BINARY")
    return Path(given).resolve() if given else REPO / "dist" / "asrctl"


def _newest_source_mtime() -> float:
    newest = 0.0
    for src in SOURCES:
        files = [src] if src.is_file() else [p for p in src.rglob("*") if p.suffix in (".py", ".toml", ".c", ".spec")]
        for f in files:
            newest = max(newest, f.stat().st_mtime)
    return newest


def why_not_testable() -> str | None:
    """Why the binary tests cannot run here, or None."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return "the one-file binary is built and tested on x86_64 Linux only"
    exe = binary_path()
    if os.environ.get("ASRCTL_TEST_BINARY"):
        return None if exe.is_file() else f"ASRCTL_TEST_BINARY={exe} does not exist"
    if not exe.is_file():
        return "dist/asrctl is not built: run `make test-binary` (or set ASRCTL_TEST_BINARY)"
    if exe.stat().st_mtime < _newest_source_mtime():
        return "dist/asrctl is older than the source: run `make test-binary` (or set ASRCTL_TEST_BINARY)"
    return None


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, chroot, mounts)")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def clean_env(runtime_dir: Path | None, **extra: str) -> dict[str, str]:
    """A plain environment for the binary: no ASRCTL_* from the caller, no colour, no proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_", "LD_LIBRARY_PATH"))}
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "NO_PROXY": "*"})
    if runtime_dir is not None:
        env["ASRCTL_RUNTIME_TMPDIR"] = str(runtime_dir)
        # Verbs run on the real root (bundles list/extract/fetch without --root) log beside the runtime dir, never
        # into the host's /var/log/asrctl.log.
        env["ASRCTL_LOG_FILE"] = str(runtime_dir.parent / "asrctl-test.log")
    env.update(extra)
    return env


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"{' '.join(self.argv)} -> {self.returncode}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"
        )


def run(argv: list[str], env: dict[str, str], timeout: float = 120, **kwargs: Any) -> Run:
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs
    )
    return Run(list(argv), proc.returncode, proc.stdout, proc.stderr)


def source_asrctl(*args: str, env: dict[str, str]) -> Run:
    """The same command from the source tree (python -m asrctl): what the binary must agree with."""
    return run([sys.executable, "-m", "asrctl", *args], env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO)


def has_verb(exe: Path, *words: str, env: dict[str, str]) -> bool:
    return run([str(exe), *words, "--help"], env=env, timeout=60).returncode == 0


def in_namespace(unshare_args: list[str], spec: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run tests/binary/nsexec.py with ``spec`` inside ``unshare <unshare_args>``; return its JSON report."""
    unshare = need_tool("unshare")
    proc = subprocess.run(
        [unshare, *unshare_args, "--", sys.executable, str(NSEXEC), "run"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"nsexec failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# --- bundles ---------------------------------------------------------------------------------------------


def build_bundles(out: Path, versions: list[tuple[str, str]], tag: str = TAG) -> list[Path]:
    """Simulated bundles (scripts/asrsim) and a SHA256SUMS beside them."""
    try:
        from asrsim.bundle import build_bundle
    except ImportError:
        pytest.skip("the bundle simulator (scripts/asrsim) is not there")
    out.mkdir(parents=True, exist_ok=True)
    paths = [build_bundle(version, tag, out, date=date) for version, date in versions]
    write_sums(out)
    return paths


def write_sums(directory: Path) -> None:
    lines = []
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.name.startswith("Microsoft-ASR_UA_"):
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n")
    (directory / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


# --- strace: which network connections did a command try? --------------------------------------------------

_INET = re.compile(
    r"sa_family=AF_INET6?,\s*sin6?_port=htons\((\d+)\).*?(?:inet_addr\(\"([^\"]+)\"\)|inet_pton\(AF_INET6,\s*\"([^\"]+)\")"
)


def have_strace() -> bool:
    return shutil.which("strace") is not None


def run_traced(prefix: list[str], argv: list[str], env: dict[str, str], log: Path, timeout: float = 600) -> Run:
    """Run ``prefix + [strace ...] + argv`` and record every connect/sendto/sendmsg of the whole process tree.

    Daemons the command leaves running (the simulated agent services) would keep ``strace -f`` waiting for ever:
    so a small shell between strace and the command writes the command's exit status to a file, and once it is
    there strace is told to detach and go. Without strace, this is plain :func:`run`.
    """
    strace = shutil.which("strace")
    if strace is None:
        return run([*prefix, *argv], env, timeout)
    tracer = [
        strace,
        "-I1",  # interruptible: with -o FILE PROG strace would otherwise ignore the SIGTERM below
        "-f",
        "-q",
        "-s",
        "256",
        "-e",
        "trace=connect,sendto,sendmsg",
        "-e",
        "signal=none",
        "-o",
        str(log),
    ]
    rc_file = log.with_suffix(".rc")
    rc_file.unlink(missing_ok=True)
    shell = ["/bin/sh", "-c", 'rc="$0"; "$@"; echo $? > "$rc.tmp" && mv "$rc.tmp" "$rc"', str(rc_file)]
    out_path, err_path = log.with_suffix(".stdout"), log.with_suffix(".stderr")
    with open(out_path, "w+") as out, open(err_path, "w+") as err:
        proc = subprocess.Popen(
            [*prefix, *tracer, *shell, *argv], env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None and not rc_file.exists():
            time.sleep(0.05)
        if proc.poll() is None:
            proc.terminate()  # strace detaches from whatever still runs and exits
        proc.wait(30)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if not rc_file.exists():
        raise AssertionError(f"{' '.join(argv)} did not finish within {timeout} s: {stderr[-2000:]}")
    return Run([*prefix, *argv], int(rc_file.read_text()), stdout, stderr)


def inet_destinations(log: Path) -> list[tuple[str, int]]:
    """(address, port) of every AF_INET/AF_INET6 connect or sendto in an strace log."""
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "AF_INET" not in line:
            continue
        m = _INET.search(line)
        if m:
            found.append((m.group(2) or m.group(3), int(m.group(1))))
        else:
            found.append((line.strip(), -1))
    return found
