#!/usr/bin/env python3
"""Run `make demo` (scripts/demo.py) N times in a row on the current tree and count passes and failures.

    make demo-loop                       # 20 runs
    .venv/bin/python scripts/demo_loop.py --runs 50

Each run gets a private temporary directory (TMPDIR) for its sandbox. A run passes when the demo exits 0 and
leaves nothing behind: that directory empty, no process that mentions it, no change to the agent's paths on the
real host (``/usr/local/ASR``, ``/var/lib/asrctl``, ...). The output of each failed run is kept in a directory named at the
end; a passing run's output is dropped. Exits 1 when any run failed. Runs are sequential: the demo is the thing
under test, not the machine's parallelism.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE / "demo.py"
# What a sandboxed run must never touch on the real host (the e2e tests watch the same paths).
HOST_PATHS = (
    "/usr/local/ASR",
    "/usr/local/.vx_version",
    "/var/lib/asrctl",
    "/var/log/asrctl.log",
    "/var/log/ua_install.log",
    "/var/log/ua_uninstall.log",
)


def host_state() -> dict[str, float | None]:
    state: dict[str, float | None] = {}
    for path in HOST_PATHS:
        try:
            state[path] = os.lstat(path).st_mtime
        except FileNotFoundError:
            state[path] = None
    return state


def stray_processes(marker: str) -> list[str]:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(marker in (part or "") for part in proc.info["cmdline"] or []):
                found.append(str(proc.info["pid"]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def one_run(index: int, keep: Path) -> tuple[bool, str, float]:
    """One demo run; returns (passed, why not, seconds)."""
    host_before = host_state()
    tmp = keep / f"tmp-{index:03d}"
    tmp.mkdir()
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env["TMPDIR"] = str(tmp)
    proc = subprocess.run(
        [sys.executable, str(DEMO)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        check=False,
    )
    took = time.monotonic() - started
    problems = []
    if proc.returncode != 0:
        problems.append(f"exit {proc.returncode}")
    left = sorted(p.name for p in tmp.iterdir())
    if left:
        problems.append(f"left {', '.join(left)} in its temporary directory {tmp}")
    strays = stray_processes(str(tmp))
    if strays:
        problems.append(f"left processes {', '.join(strays)}")
    if not left:
        tmp.rmdir()
    if host_state() != host_before:
        problems.append("changed the agent's paths on the real host")
    if problems:
        (keep / f"run-{index:03d}.log").write_bytes(proc.stdout)
    return not problems, "; ".join(problems), took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="how many runs (default 20)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    keep = Path(tempfile.mkdtemp(prefix="asrctl-demo-loop-"))
    passed = failed = 0
    times = []
    for i in range(1, args.runs + 1):
        ok, why, took = one_run(i, keep)
        times.append(took)
        passed += ok
        failed += not ok
        print(f"run {i:>3}/{args.runs}: {'pass' if ok else 'FAIL: ' + why} ({took:.1f} s)", flush=True)
    times.sort()
    median = times[len(times) // 2]
    print(f"\nmake demo: {passed} passed, {failed} failed of {args.runs} runs in a row (median {median:.1f} s a run)")
    if failed:
        print(f"output of the failed runs: {keep}")
        return 1
    keep.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
