#!/usr/bin/env python3
"""Benchmark: asrctl's verify+extract of gzip, LZMA and xz bundles against ``sha256sum B && tar -x… B``.

Builds (once, cached under build/bench/) a synthetic bundle shaped like a real one — the vendor scripts, a tree of
many small files, a few large partly-compressible binaries, some symlinks — and packs the same tree three ways,
each named ``.tar.gz`` as Microsoft names them: ``tar -cf - | gzip -6`` (DEBIAN7–11, the RPM families),
``tar -cf - | lzma -6`` (what ``tar --lzma`` writes with upstream tar: every Ubuntu tag and DEBIAN12) and
``tar -cJf`` (xz, one thread). The
tree is generated in a child process and packed by tar/gzip/xz, so this process stays small: a child's peak RSS
from wait4 can never be below its parent's at the time of the fork, and the figure is asrctl's own.

Then, in one run, it times each way of unpacking each bundle on the ordinary disk (never tmpfs) several times,
interleaved: one round runs every method once, each format's methods back to back (alternately forwards and
backwards, the formats in a rotating order), so a round's asrctl run and its baselines meet the same load from
the rest of the machine; the first round warms the page cache, checks that asrctl and tar unpacked the same
tree, and is not counted. It prints the median of each method, the ratio of the medians, the median of the
rounds' own ratios (steadier on a shared machine), asrctl's peak RSS, and the load average. Peak RSS is measured
again on bundles of a second size, to show it does not grow with the bundle.

    make bench                                   # or: .venv/bin/python scripts/bench_extract.py
    .venv/bin/python scripts/bench_extract.py --runs 9 --size-mb 300 --rss-size-mb 150 --dir /var/tmp/asrctl-bench

Nothing here runs in the test suite: wall-clock figures belong in docs/BUNDLES.md, not in assertions.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUNDLE_NAME = "Microsoft-ASR_UA_9.99.0.0_UBUNTU-22.04-64_GA_01Jan2026_release.tar.gz"
FORMAT_VERSION = 6  # bump when the generated tree or the packing changes, to rebuild cached bundles
FORMATS = ("gzip", "lzma", "xz")
# How each format is packed from the tree, and how tar unpacks it: what a fleet host would run without asrctl.
PACK = {
    "gzip": "tar -C {tree} -cf - . | gzip -6 -n > {out}",
    # What `tar --lzma -cf` writes where tar runs `lzma` (upstream's default). Debian's tar 1.34 runs `xz` for
    # --lzma and writes the xz format instead, so the pipe is spelled out.
    "lzma": "tar -C {tree} -cf - . | xz --format=lzma -6 > {out}",
    "xz": "XZ_OPT='-6 -T1' tar -C {tree} -cJf {out} .",
}
TAR_FLAGS = {"gzip": ["-xzf"], "lzma": ["--lzma", "-xf"], "xz": ["-xJf"]}
TARGET = {"gzip": 0.55, "lzma": 1.0, "xz": 1.0}


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


def _make_tree(tree: Path, size_mb: int) -> None:
    """In a child process: generating the tree takes a few hundred MB of pools the bench must not carry."""
    subprocess.run(
        [sys.executable, __file__, "--make-tree", str(tree), "--size-mb", str(size_mb)], check=True, cwd=REPO
    )


def ensure_bundles(work: Path, size_mb: int, formats: tuple[str, ...]) -> dict[str, Path]:
    """One bundle per format, packed from one tree, cached: ``work/v<N>-<size>mb/<format>/BUNDLE_NAME``."""
    base = work / f"v{FORMAT_VERSION}-{size_mb}mb"
    bundles = {fmt: base / fmt / BUNDLE_NAME for fmt in formats}
    missing = [fmt for fmt, path in bundles.items() if not (path.parent / "done").exists()]
    if not missing:
        return bundles
    for old in work.glob("v*-*mb"):
        if not old.name.startswith(f"v{FORMAT_VERSION}-"):
            shutil.rmtree(old, ignore_errors=True)  # an older generator's bundles
    shutil.rmtree(work / "bundles", ignore_errors=True)  # the layout before FORMAT_VERSION 6
    for stamp in work.glob("bundle-v*.stamp"):
        stamp.unlink()
    tree = base / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    print(f"building the ~{size_mb} MB synthetic bundle tree in {base} (once) ...", flush=True)
    t0 = time.perf_counter()
    _make_tree(tree, size_mb)
    print(f"  tree in {time.perf_counter() - t0:.0f} s", flush=True)
    # The packers run side by side: lzma and xz compress on one thread each, and that is most of the build.
    t0 = time.perf_counter()
    packing = {}
    for fmt in missing:
        out = bundles[fmt]
        shutil.rmtree(out.parent, ignore_errors=True)
        out.parent.mkdir(parents=True)
        packing[fmt] = subprocess.Popen(["bash", "-c", PACK[fmt].format(tree=f"'{tree}'", out=f"'{out}'")])
    for fmt, proc in packing.items():
        if proc.wait() != 0:
            raise SystemExit(f"packing the {fmt} bundle failed")
        (bundles[fmt].parent / "done").touch()
        print(f"  {fmt}: {bundles[fmt].stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t0:.0f} s)", flush=True)
    shutil.rmtree(tree)
    return bundles


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


def _order(methods: dict[str, object], formats: tuple[str, ...], run: int) -> list[str]:
    """One round: each format's methods back to back (so a round's asrctl and its baselines meet the same load
    from the rest of the machine), the formats in a rotating order, the methods forwards and backwards in turn."""
    start = run % len(formats)
    order: list[str] = []
    for fmt in formats[start:] + formats[:start]:
        group = [name for name in methods if name.startswith(f"{fmt}: ")]
        order += group if run % 2 else group[::-1]
    return order


class Bench:
    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.out = work / "out"
        self.py = sys.executable

    def asrctl(self, bundle: Path) -> list[str]:
        return [self.py, "-m", "asrctl", "-q", "bundles", "extract", str(bundle), str(self.out / "dest")]

    def methods(self, bundles: dict[str, Path], with_stdlib: bool) -> dict[str, tuple[list[str], dict[str, str]]]:
        dest = str(self.out / "dest")
        found: dict[str, tuple[list[str], dict[str, str]]] = {}
        for fmt, bundle in bundles.items():
            flags = " ".join(TAR_FLAGS[fmt])
            found[f"{fmt}: asrctl"] = (self.asrctl(bundle), self.env)
            found[f"{fmt}: sha256sum && tar {flags}"] = (
                ["bash", "-c", f'sha256sum "$1" >/dev/null && tar -C "$2" {flags} "$1"', "-", str(bundle), dest],
                self.env,
            )
            found[f"{fmt}: tar {flags}"] = (["tar", "-C", dest, *TAR_FLAGS[fmt], str(bundle)], self.env)
            if fmt == "gzip" and with_stdlib:
                found["gzip: asrctl, stdlib zlib"] = (self.asrctl(bundle), dict(self.env, ASRCTL_GZIP="stdlib"))
        return found

    def once(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        if ": asrctl" not in name:
            (self.out / "dest").mkdir()
        os.sync()  # the previous run's dirty pages are written back before this one starts
        return _timed(argv, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each method (default 5)")
    ap.add_argument("--size-mb", type=int, default=150, help="gzipped size of the timed bundle (default 150)")
    ap.add_argument(
        "--rss-size-mb", type=int, default=50, help="a second size, for peak RSS only (default 50; 0: skip)"
    )
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of gzip,lzma,xz")
    ap.add_argument("--dir", type=Path, default=REPO / "build" / "bench", help="work dir on an ordinary disk")
    ap.add_argument(
        "--with-stdlib",
        action="store_true",
        help="also time asrctl with the standard library's zlib (ASRCTL_GZIP=stdlib)",
    )
    ap.add_argument("--build-only", action="store_true", help="build (and cache) the bundles, time nothing")
    ap.add_argument("--make-tree", type=Path, help=argparse.SUPPRESS)  # the child that generates the tree
    args = ap.parse_args()
    if args.make_tree:
        build_tree(args.make_tree, args.size_mb)
        return 0
    formats = tuple(f for f in args.formats.split(",") if f)
    if not formats or set(formats) - set(FORMATS):
        ap.error(f"--formats: a subset of {','.join(FORMATS)}")

    work: Path = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True).stdout.strip()
    if fs in ("tmpfs", "ramfs"):
        print(f"warning: {work} is on {fs}; the figures will not be comparable", file=sys.stderr)
    bundles = ensure_bundles(work, args.size_mb, formats)
    small = ensure_bundles(work, args.rss_size_mb, formats) if args.rss_size_mb else {}
    if args.build_only:
        return 0

    env = dict(os.environ, NO_COLOR="1")
    env.pop("ASRCTL_JSON", None)
    # asrctl runs with --root inside the work dir, so its log lands there and nothing is written outside it.
    sandbox = work / "root"
    sandbox.mkdir(exist_ok=True)
    env["ASRCTL_ROOT"] = str(sandbox)
    bench = Bench(work, env)
    for bundle in [*bundles.values(), *small.values()]:
        # The digest comes from SHA256SUMS beside the bundle, exactly as on a fleet host.
        argv = [sys.executable, "-m", "asrctl", "-q", "bundles", "checksum", str(bundle.parent)]
        subprocess.run(argv, env=env, check=True, cwd=REPO)

    methods = bench.methods(bundles, args.with_stdlib)
    names = list(methods)
    times: dict[str, list[float]] = {m: [] for m in methods}
    rss: dict[str, list[int]] = {m: [] for m in methods if ": asrctl" in m}
    sizes = ", ".join(f"{fmt} {path.stat().st_size / 1e6:.0f} MB" for fmt, path in bundles.items())
    print(f"bundles: {sizes}; {args.runs} runs each, interleaved, in {work} ({fs or '?'})", flush=True)
    load_before = os.getloadavg()
    for run in range(args.runs + 1):  # the first round warms the page cache and is not counted
        order = _order(methods, formats, run)
        listings: dict[str, list[tuple[str, int, str]]] = {}
        for name in order:
            elapsed, peak = bench.once(name, *methods[name])
            if run:
                times[name].append(elapsed)
                if name in rss:
                    rss[name].append(peak)
            elif name.endswith(": asrctl") or ": tar " in name:
                listings[name] = _listing(bench.out / "dest")
        if not run:
            for fmt in formats:
                tar_name = f"{fmt}: tar {' '.join(TAR_FLAGS[fmt])}"
                if listings[f"{fmt}: asrctl"] != listings[tar_name]:
                    raise SystemExit(f"{fmt}: asrctl and tar unpacked different trees")
        else:
            print(f"  run {run}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True)

    small_rss: dict[str, int] = {}
    for fmt, bundle in small.items():
        bench.once(f"{fmt}: asrctl", bench.asrctl(bundle), env)  # warm the page cache
        small_rss[fmt] = bench.once(f"{fmt}: asrctl", bench.asrctl(bundle), env)[1]
    shutil.rmtree(bench.out, ignore_errors=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    mb = 1 << 20
    print()
    for fmt in formats:
        flags = " ".join(TAR_FLAGS[fmt])
        a, s, t = med[f"{fmt}: asrctl"], med[f"{fmt}: sha256sum && tar {flags}"], med[f"{fmt}: tar {flags}"]
        size = bundles[fmt].stat().st_size
        print(f"{fmt} ({size / 1e6:.0f} MB bundle)")
        print(f"  median asrctl verify+extract      {a:6.2f} s   ({size / a / 1e6:.0f} MB/s of bundle)")
        print(f"  median sha256sum && tar {flags:<9} {s:6.2f} s")
        print(f"  median tar {flags:<22} {t:6.2f} s")
        both = f"sha256sum && tar {flags}"
        paired = statistics.median(x / y for x, y in zip(times[f"{fmt}: asrctl"], times[f"{fmt}: {both}"], strict=True))
        print(f"  ratio asrctl / ({both}): of the medians {a / s:.2f}x, median of the rounds' {paired:.2f}x")
        print(f"      (target <= {TARGET[fmt]:.2f}x)")
        print(f"  ratio asrctl / tar {flags:<21}  {a / t:.2f}x")
        if fmt == "gzip" and "gzip: asrctl, stdlib zlib" in med:
            z = med["gzip: asrctl, stdlib zlib"]
            print(f"  median asrctl, stdlib zlib        {z:6.2f} s   ratio {z / s:.2f}x")
        peaks = rss[f"{fmt}: asrctl"] + ([] if fmt != "gzip" else rss.get("gzip: asrctl, stdlib zlib", []))
        line = f"  asrctl peak RSS {max(peaks) / mb:.1f} MB at {args.size_mb} MB"
        if fmt in small_rss:
            line += f", {small_rss[fmt] / mb:.1f} MB at {args.rss_size_mb} MB"
        print(line + "   (target < 64 MB, not growing with the bundle)")
    # Other work on the machine shows in every wall-clock figure; say how much there was.
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark's own peak RSS: {own:.1f} MB; a child's figure from wait4 is never below it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
