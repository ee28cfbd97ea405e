#!/usr/bin/env python3
"""Benchmark: how fast ``asrctl --version`` starts, against the floor of what the same packaging costs.

    make bench-startup                              # or: .venv/bin/python scripts/bench_startup.py
    .venv/bin/python scripts/bench_startup.py --runs 31 --strict

Pairs, each run interleaved (a, b, a, b, ...) after two warm-up runs, median wall time of each:

- ``dist/asrctl --version`` against the floor: a hello-world click app (scripts/binary/hello_click.py) frozen
  exactly the same way -- same spec, staticx, launcher (``python -m binary --app hello``, built here if missing);
- ``python -m asrctl --version`` against ``python -c "import click"``;
- for information: ``dist/asrctl --help`` against ``hello --help``, and each stage of the binary on its own, to
  show where the time goes (PyInstaller alone needs this host's glibc; staticx adds the C library; the launcher
  adds the private runtime directory).

The target is 1.3x of each floor. ``--strict`` exits 1 when a pair misses it; without it the verdict is printed
only (wall-clock numbers belong in docs/BINARY.md, not in test assertions).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "dist" / "asrctl"
HELLO = REPO / "build" / "binary" / "hello" / "hello"
STAGES = REPO / "build" / "binary" / "asrctl"
TARGET = 1.3


def ensure_hello() -> Path:
    sources = [p for p in (REPO / "scripts" / "binary").iterdir() if p.is_file()]
    if HELLO.is_file() and HELLO.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return HELLO
    print("building the floor app (python -m binary --app hello) ...", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    subprocess.run([sys.executable, "-m", "binary", "--app", "hello"], check=True, cwd=REPO, env=env)
    return HELLO


def time_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def compare(name: str, a: list[str], b: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    for _ in range(2):
        time_once(a, env)
        time_once(b, env)
    ta, tb = [], []
    for _ in range(runs):
        ta.append(time_once(a, env))
        tb.append(time_once(b, env))
    return statistics.median(ta), statistics.median(tb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="asrctl start-up time against its floors")
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each command (default 21)")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 when a pair is slower than {TARGET}x")
    args = parser.parse_args(argv)
    if not BINARY.is_file():
        raise SystemExit("dist/asrctl is not built: run `make binary` first")
    hello = ensure_hello()

    runtime = Path(tempfile.mkdtemp(prefix="asrctl-bench-", dir=REPO / "build"))
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    # Same disk as /var/lib/asrctl/tmp (the default for root) would be, without touching /var/lib here.
    env.update({"ASRCTL_RUNTIME_TMPDIR": str(runtime), "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    py = sys.executable
    gated = [
        ("dist/asrctl --version", [str(BINARY), "--version"], "frozen hello --version", [str(hello), "--version"]),
        (
            "python -m asrctl --version",
            [py, "-m", "asrctl", "--version"],
            'python -c "import click"',
            [py, "-c", "import click"],
        ),
    ]
    info = [("dist/asrctl --help", [str(BINARY), "--help"], "frozen hello --help", [str(hello), "--help"])]
    pyi, sx = STAGES / "pyinstaller-dist" / "asrctl", STAGES / "staticx" / "asrctl"
    if pyi.is_file() and sx.is_file():
        info += [
            ("staticx stage --version", [str(sx), "--version"], "PyInstaller stage --version", [str(pyi), "--version"]),
            ("dist/asrctl --version", [str(BINARY), "--version"], "staticx stage --version", [str(sx), "--version"]),
        ]
    stage_env = {**env, "TMPDIR": str(runtime)}  # the bare stages unpack into $TMPDIR

    print(f"{args.runs} runs each, interleaved, median wall time; runtime directory {runtime}")
    print(f"{'command':32s} {'median':>9s}   {'floor':32s} {'median':>9s}   {'ratio':>6s}")
    missed = []
    try:
        for label_a, a, label_b, b in gated:
            ma, mb = compare(label_a, a, b, env, args.runs)
            ratio = ma / mb
            verdict = "ok" if ratio <= TARGET else f"MISSES {TARGET}x"
            if ratio > TARGET:
                missed.append(label_a)
            print(f"{label_a:32s} {ma * 1000:7.1f}ms   {label_b:32s} {mb * 1000:7.1f}ms   {ratio:5.2f}x  {verdict}")
        print("for information:")
        for label_a, a, label_b, b in info:
            ma, mb = compare(label_a, a, b, stage_env, args.runs)
            print(f"{label_a:32s} {ma * 1000:7.1f}ms   {label_b:32s} {mb * 1000:7.1f}ms   {ma / mb:5.2f}x")
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    if missed:
        print(f"over {TARGET}x of the floor: {', '.join(missed)}")
        return 1 if args.strict else 0
    print(f"all within {TARGET}x of their floors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
