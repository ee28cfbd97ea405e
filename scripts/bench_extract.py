#!/usr/bin/env python3
"""Benchmark: asrctl's verify+extract against ``sha256sum B && tar -xzf B`` and ``tar -xzf B``.

Builds (once, cached under build/bench/) a realistic synthetic bundle of about 300 MB: the vendor scripts, a tree
of many small files, a few large partly-compressible binaries and some symlinks, packed with GNU tar and
``gzip -6``. Then, in one run, it times each way of unpacking it on the ordinary disk (never tmpfs) several times,
interleaved, and prints the median of each, the ratios of the medians and asrctl's peak RSS (from wait4).

    make bench                                   # or: .venv/bin/python scripts/bench_extract.py
    .venv/bin/python scripts/bench_extract.py --runs 7 --size-mb 300 --dir /var/tmp/asrctl-bench

Nothing here runs in the test suite: wall-clock figures belong in docs/BUNDLES.md, not in assertions.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUNDLE_NAME = "Microsoft-ASR_UA_9.99.0.0_UBUNTU-22.04-64_GA_01Jan2026_release.tar.gz"
FORMAT_VERSION = 5  # bump when the generated tree changes, to rebuild cached bundles


# --- the synthetic bundle -----------------------------------------------------------------------------------


class _Pools:
    """Byte pools sliced at random offsets: slices repeat only farther apart than deflate's 32 KB window, so
    random slices stay incompressible and 'machine code' slices compress like code does (about 3:1)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.random = os.urandom(16 << 20)
        tokens = [rnd.randbytes(rnd.randint(2, 8)) for _ in range(384)]
        self.code = b"".join(rnd.choice(tokens) for _ in range(1_200_000))
        words = [
            bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz_=$./") for _ in range(rnd.randint(2, 11)))
            for _ in range(3000)
        ]
        self.text = b"".join(rnd.choice(words) + (b"\n" if rnd.random() < 0.12 else b" ") for _ in range(900_000))

    def _slice(self, pool: bytes, n: int) -> bytes:
        off = self.rnd.randrange(0, len(pool) - n)
        return pool[off : off + n]

    def binary(self, size: int, random_fraction: float) -> bytes:
        out = bytearray()
        block = 64 << 10
        while len(out) < size:
            r = int(block * random_fraction)
            out += self._slice(self.random, r)
            out += self._slice(self.code, block - r)
        return bytes(out[:size])

    def text_file(self, size: int) -> bytes:
        return self._slice(self.text, size)


def build_tree(root: Path, size_mb: int, seed: int = 7) -> None:
    """A tree shaped like a Mobility Service bundle, about ``size_mb`` MB once gzipped."""
    rnd = random.Random(seed)
    pools = _Pools(rnd)
    root.mkdir(parents=True)

    def write(rel: str, data: bytes, mode: int = 0o644) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)

    # Vendor scripts, executable.
    for name in ("install", "OS_details.sh", "uninstall.sh", "Vx/bin/start", "Vx/bin/stop", "Vx/bin/uninstall"):
        write(name, b"#!/bin/bash\nset -e\n" + pools.text_file(rnd.randint(2_000, 40_000)), 0o755)
    write("prereq_check_installer.json", pools.text_file(6_000))
    # Many small files: libraries' data, configs, locale files, docs.
    for i in range(4000):
        d = f"Vx/{rnd.choice(['lib', 'etc', 'share/locale', 'share/doc', 'scripts', 'transport/conf'])}/{i % 37:02d}"
        if rnd.random() < 0.3:
            write(f"{d}/blob{i}.bin", pools.binary(rnd.randint(500, 48_000), 0.4))
        else:
            write(f"{d}/file{i}.txt", pools.text_file(rnd.randint(200, 24_000)), 0o755 if rnd.random() < 0.1 else 0o644)
    # A few large partly-compressible binaries take most of the bytes (most of the gzipped size).
    big = [0.34, 0.22, 0.16, 0.12, 0.09, 0.07]
    budget = size_mb * 0.76 * (1 << 20) / 0.60  # these compress to about 60%
    for i, share in enumerate(big):
        write(f"Vx/bin/svagent{i}", pools.binary(int(budget * share), 0.3), 0o755)
    for i in range(3):
        (root / f"Vx/lib/libasr{i}.so").symlink_to(f"libasr{i}.so.1")
        write(f"Vx/lib/libasr{i}.so.1", pools.binary(3 << 20, 0.5))


def ensure_bundle(work: Path, size_mb: int) -> Path:
    stamp = work / f"bundle-v{FORMAT_VERSION}-{size_mb}mb.stamp"
    bundle = work / "bundles" / BUNDLE_NAME
    if stamp.exists() and bundle.exists():
        return bundle
    shutil.rmtree(work / "tree", ignore_errors=True)
    shutil.rmtree(work / "bundles", ignore_errors=True)
    for old in work.glob("bundle-*.stamp"):
        old.unlink()
    print(f"building a ~{size_mb} MB synthetic bundle in {work} (once) ...", flush=True)
    t0 = time.perf_counter()
    build_tree(work / "tree", size_mb)
    bundle.parent.mkdir(parents=True)
    with open(bundle, "wb") as fh:
        tar = subprocess.Popen(["tar", "-C", str(work / "tree"), "-cf", "-", "."], stdout=subprocess.PIPE)
        gz = subprocess.run(["gzip", "-6", "-n"], stdin=tar.stdout, stdout=fh, check=True)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or gz.returncode != 0:
            raise SystemExit("building the bundle failed")
    shutil.rmtree(work / "tree")
    stamp.touch()
    print(f"  {bundle.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s", flush=True)
    return bundle


# --- timing -------------------------------------------------------------------------------------------------


def _listing(top: Path) -> list[tuple[str, int, str]]:
    """Names, sizes and kinds/exec bits of a tree: what both unpackers must agree on."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            kind = "l" if path.is_symlink() else "d" if path.is_dir() else "x" if st.st_mode & 0o100 else "f"
            found.append((str(path.relative_to(top)), st.st_size if kind in "fx" else 0, kind))
    return sorted(found)


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}: {' '.join(argv)}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each method (default 5)")
    ap.add_argument("--size-mb", type=int, default=300, help="gzipped size of the synthetic bundle (default 300)")
    ap.add_argument("--dir", type=Path, default=REPO / "build" / "bench", help="work dir on an ordinary disk")
    ap.add_argument(
        "--with-stdlib",
        action="store_true",
        help="also time asrctl with the standard library's zlib (ASRCTL_GZIP=stdlib)",
    )
    args = ap.parse_args()

    work: Path = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True).stdout.strip()
    if fs in ("tmpfs", "ramfs"):
        print(f"warning: {work} is on {fs}; the figures will not be comparable", file=sys.stderr)
    bundle = ensure_bundle(work, args.size_mb)
    size = bundle.stat().st_size

    env = dict(os.environ, NO_COLOR="1")
    env.pop("ASRCTL_JSON", None)
    # asrctl runs with --root inside the work dir, so its log lands there and nothing is written outside it.
    sandbox = work / "root"
    sandbox.mkdir(exist_ok=True)
    env["ASRCTL_ROOT"] = str(sandbox)
    py = sys.executable
    # The digest comes from SHA256SUMS beside the bundle, exactly as on a fleet host.
    subprocess.run([py, "-m", "asrctl", "-q", "bundles", "checksum", str(bundle.parent)], env=env, check=True, cwd=REPO)
    out = work / "out"

    def asrctl() -> list[str]:
        return [py, "-m", "asrctl", "-q", "bundles", "extract", str(bundle), str(out / "dest")]

    methods: dict[str, tuple[list[str], dict[str, str]]] = {
        "asrctl verify+extract": (asrctl(), env),
        "sha256sum && tar -xzf": (
            ["bash", "-c", 'sha256sum "$1" >/dev/null && tar -C "$2" -xzf "$1"', "-", str(bundle), str(out / "dest")],
            env,
        ),
        "tar -xzf": (["tar", "-C", str(out / "dest"), "-xzf", str(bundle)], env),
    }
    if args.with_stdlib:
        methods["asrctl, stdlib zlib"] = (asrctl(), dict(env, ASRCTL_GZIP="stdlib"))
    times: dict[str, list[float]] = {m: [] for m in methods}
    rss: list[int] = []
    print(f"bundle {size / 1e6:.0f} MB, {args.runs} runs each, in {work} ({fs or '?'})", flush=True)
    for run in range(args.runs + 1):  # the first round warms the page cache and is not counted
        listings: dict[str, list[tuple[str, int, str]]] = {}
        for name, (argv, method_env) in methods.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            if not name.startswith("asrctl"):
                (out / "dest").mkdir()
            os.sync()  # the previous run's dirty pages are written back before this one starts
            elapsed, peak = _timed(argv, env=method_env)
            if run:
                times[name].append(elapsed)
                if name.startswith("asrctl"):
                    rss.append(peak)
            elif name in ("asrctl verify+extract", "tar -xzf"):
                listings[name] = _listing(out / "dest")
        if not run and listings["asrctl verify+extract"] != listings["tar -xzf"]:
            raise SystemExit("asrctl and tar unpacked different trees")
        if run:
            print(f"  run {run}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)
    shutil.rmtree(out, ignore_errors=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    a, s, t = med["asrctl verify+extract"], med["sha256sum && tar -xzf"], med["tar -xzf"]
    print()
    print(f"median asrctl verify+extract  {a:6.2f} s   ({size / a / 1e6:.0f} MB/s of bundle)")
    print(f"median sha256sum && tar -xzf  {s:6.2f} s")
    print(f"median tar -xzf               {t:6.2f} s")
    print(f"ratio asrctl / (sha256sum && tar -xzf)  {a / s:.2f}x   (target <= 0.55x)")
    print(f"ratio asrctl / tar -xzf                 {a / t:.2f}x")
    print(f"ratio tar -xzf / (sha256sum && tar -xzf) {t / s:.2f}x")
    if "asrctl, stdlib zlib" in med:
        z = med["asrctl, stdlib zlib"]
        print(f"median asrctl, stdlib zlib    {z:6.2f} s")
        print(f"ratio asrctl with stdlib zlib / (sha256sum && tar -xzf)  {z / s:.2f}x")
    print(f"asrctl peak RSS {max(rss) / (1 << 20):.1f} MB   (target < 64 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
