#!/usr/bin/env python3
"""Benchmark: how fast ``asrctl --version`` starts, against the floor of what the same packaging costs.

    make bench-startup                              # or: .venv/bin/python scripts/bench_startup.py
    .venv/bin/python scripts/bench_startup.py --runs 31 --strict
    .venv/bin/python scripts/bench_startup.py --no-binary          # the Python pairs only, nothing frozen

Pairs, each run interleaved (a, b, a, b, ...) after two warm-up rounds, median wall time of each:

- ``python -m asrctl --version`` against ``python -c "import click"``, in two fresh venvs made here, each with the
  locked runtime dependencies (constraints/runtime.txt) and nothing else: one with asrctl installed **from its
  wheel** (built here from this tree), one with asrctl installed **editable** from this tree. The commands run
  from a directory outside the tree, so ``-m`` finds the installed asrctl, not ./asrctl. An editable install
  costs every start something (setuptools' import hook, set up by a .pth file), the floor's too;
- ``dist/asrctl --version`` against the floor: a hello-world click app (scripts/binary/hello_click.py) frozen
  exactly the same way -- same spec, staticx, launcher (``python -m binary --app hello``, built here if missing);
- for information: ``dist/asrctl --help`` against ``hello --help``, each stage of the binary on its own (where
  the time goes: PyInstaller alone needs this host's glibc; staticx adds the C library; the launcher adds the
  private runtime directory), and what ``-X importtime`` says asrctl imports on top of click.

The target is 1.3x of each floor. ``--strict`` exits 1 when a pair misses it; without it the verdict is printed
only (wall-clock numbers belong in docs/BINARY.md and README, not in test assertions).
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
RUNTIME_LOCK = REPO / "constraints" / "runtime.txt"
TARGET = 1.3

Pair = tuple[str, list[str], str, list[str]]


def ensure_hello() -> Path:
    sources = [p for p in (REPO / "scripts" / "binary").iterdir() if p.is_file()]
    if HELLO.is_file() and HELLO.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return HELLO
    print("building the floor app (python -m binary --app hello) ...", flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    subprocess.run([sys.executable, "-m", "binary", "--app", "hello"], check=True, cwd=REPO, env=env)
    return HELLO


def quiet(argv: list[str], **kwargs: object) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")


def fresh_venv(path: Path, install: list[str]) -> Path:
    """A venv without pip or setuptools (nothing but what asrctl needs), filled by this interpreter's pip: the
    locked runtime dependencies with their hashes, then ``install`` (asrctl itself) without dependencies."""
    quiet([sys.executable, "-m", "venv", "--without-pip", str(path)])
    py = path / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(py), "install", "-q"]
    quiet([*pip, "--require-hashes", "-r", str(RUNTIME_LOCK)])
    quiet([*pip, "--no-deps", *install])
    return py


def build_wheels(work: Path) -> tuple[Path, Path]:
    """The wheel and the editable wheel (PEP 660: a .pth file and an import hook pointing at this tree), both
    built with this venv's locked setuptools: nothing is fetched to build them."""
    from build import ProjectBuilder

    builder = ProjectBuilder(REPO)
    log = work / "build.log"
    saved = [os.dup(1), os.dup(2)]  # setuptools talks a lot: into a log, shown when the build fails
    with open(log, "w") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            wheel = builder.build("wheel", work / "wheel")
            editable = builder.build("editable", work / "editable")
        except Exception:
            os.dup2(saved[1], 2)
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
    return Path(wheel), Path(editable)


def python_pairs(work: Path) -> list[Pair]:
    print("building the wheel and two fresh venvs (wheel, editable) ...", flush=True)
    wheel, editable = build_wheels(work)
    wheel_py = fresh_venv(work / "wheel-venv", [str(wheel)])
    editable_py = fresh_venv(work / "editable-venv", [str(editable)])
    pairs = []
    for kind, py in (("wheel", wheel_py), ("editable", editable_py)):
        pairs.append(
            (
                f"{kind}: python -m asrctl --version",
                [str(py), "-m", "asrctl", "--version"],
                'python -c "import click"',
                [str(py), "-c", "import click"],
            )
        )
    return pairs


def time_once(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def measure(pairs: list[Pair], env: dict[str, str], cwd: Path, runs: int) -> list[tuple[float, float]]:
    """Medians of every command of ``pairs``, all interleaved in one round-robin: a drift in the machine's load
    (2 cores, other jobs) hits every command alike."""
    commands = [argv for _la, a, _lb, b in pairs for argv in (a, b)]
    times: list[list[float]] = [[] for _ in commands]
    for round_no in range(runs + 2):
        for i, argv in enumerate(commands):
            t = time_once(argv, env, cwd)
            if round_no >= 2:  # two warm-up rounds: page cache, .pyc files of the editable tree
                times[i].append(t)
    medians = [statistics.median(t) for t in times]
    return [(medians[2 * i], medians[2 * i + 1]) for i in range(len(pairs))]


def extra_imports(py: str, env: dict[str, str], cwd: Path, top: int = 8) -> list[tuple[str, int]]:
    """Modules ``asrctl --version`` imports that ``import click`` does not, by their own import time (us)."""

    def imported(argv: list[str]) -> dict[str, int]:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=True)
        out = {}
        for line in proc.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                self_us, _cumulative, name = line[len("import time:") :].split("|")
                if self_us.strip().isdigit():
                    out[name.strip()] = int(self_us)
        return out

    ours = imported([py, "-X", "importtime", "-m", "asrctl", "--version"])
    floor = imported([py, "-X", "importtime", "-c", "import click"])
    extra = sorted(((m, us) for m, us in ours.items() if m not in floor), key=lambda x: -x[1])
    return extra[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="asrctl start-up time against its floors")
    parser.add_argument("--runs", type=int, default=21, help="timed runs of each command (default 21)")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 when a pair is slower than {TARGET}x")
    parser.add_argument("--no-binary", action="store_true", help="only the Python pairs (no dist/asrctl needed)")
    args = parser.parse_args(argv)
    if not args.no_binary and not BINARY.is_file():
        raise SystemExit("dist/asrctl is not built: run `make binary` first (or pass --no-binary)")

    (REPO / "build").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="asrctl-bench-startup-"))
    runtime = Path(tempfile.mkdtemp(prefix="asrctl-bench-", dir=REPO / "build"))
    runtime.chmod(0o700)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "PYTHON"))}
    base.update({"NO_COLOR": "1"})
    # Same disk as /var/lib/asrctl/tmp (the default for root) would be, without touching /var/lib here.
    frozen_env = {**base, "ASRCTL_RUNTIME_TMPDIR": str(runtime), "PYTHONDONTWRITEBYTECODE": "1"}
    stage_env = {**frozen_env, "TMPDIR": str(runtime)}  # the bare stages unpack into $TMPDIR
    missed: list[str] = []

    def table(title: str, pairs: list[Pair], env: dict[str, str], gated: bool) -> None:
        print(title)
        for (label_a, _a, label_b, _b), (ma, mb) in zip(pairs, measure(pairs, env, work, args.runs), strict=True):
            ratio = ma / mb
            verdict = ("ok" if ratio <= TARGET else f"MISSES {TARGET}x") if gated else ""
            if gated and ratio > TARGET:
                missed.append(label_a)
            print(f"  {label_a:36s} {ma * 1000:7.1f}ms   {label_b:28s} {mb * 1000:7.1f}ms   {ratio:5.2f}x  {verdict}")

    try:
        python = python_pairs(work)
        print(f"{args.runs} runs each, interleaved, median wall time; commands run in {work}")
        table("Python, fresh venvs (gated):", python, base, True)
        extra = extra_imports(python[0][1][0], base, work)
        print("  what the wheel's `python -m asrctl --version` imports beyond `import click` (own time):")
        print("    " + ", ".join(f"{m} {us / 1000:.1f}ms" for m, us in extra))
        if not args.no_binary:
            hello = ensure_hello()
            frozen = [
                (
                    "dist/asrctl --version",
                    [str(BINARY), "--version"],
                    "frozen hello --version",
                    [str(hello), "--version"],
                )
            ]
            table("One-file binary (gated):", frozen, frozen_env, True)
            info = [("dist/asrctl --help", [str(BINARY), "--help"], "frozen hello --help", [str(hello), "--help"])]
            pyi, sx = STAGES / "pyinstaller-dist" / "asrctl", STAGES / "staticx" / "asrctl"
            if pyi.is_file() and sx.is_file():
                info += [
                    (
                        "staticx stage --version",
                        [str(sx), "--version"],
                        "PyInstaller stage --version",
                        [str(pyi), "--version"],
                    ),
                    (
                        "dist/asrctl --version",
                        [str(BINARY), "--version"],
                        "staticx stage --version",
                        [str(sx), "--version"],
                    ),
                ]
            table("for information:", info, stage_env, False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    if missed:
        print(f"over {TARGET}x of the floor: {', '.join(missed)}")
        return 1 if args.strict else 0
    print(f"all within {TARGET}x of their floors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
