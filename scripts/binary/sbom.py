"""A CycloneDX 1.6 SBOM of what is inside a built ``dist/asrctl``, read from the file itself and from the lock.

    PYTHONPATH=scripts .venv/bin/python -m binary.sbom dist/asrctl > asrctl.cdx.json

Every component is found in the artefact first, then named from a record that says what it is -- never guessed
from what "should" be there:

- **asrctl** (the BOM's subject): the file's sha256, and the commit and build date the binary reports itself
  (``--version -v --json``, baked in at build time);
- **Python distributions**: every top-level module, extension module and data file of the PyInstaller archive is
  mapped to the installed distribution that owns it (``importlib.metadata``, i.e. its RECORD); version and
  hashes come from the lock (constraints/binary.txt, else dev.txt, which constrains it), and the build refuses
  a distribution whose installed version is not the locked one;
- **CPython**: the version the binary reports running; its files (libpython, lib-dynload, base_library.zip);
  stdlib modules are those found in the build interpreter's stdlib;
- **PyInstaller's bootloader** (matched by ELF build-id to the pinned PyInstaller's ``run``) and **staticx**
  (its bootloader stage and ``libnssfix.so``, build-id), versions from the lock;
- **native libraries** (the staticx archive: loader, glibc, ...; the PyInstaller archive: libssl, libffi, ...):
  each bundled file's GNU build-id is matched to a file on the build host, and dpkg names its package and
  version (``pkg:deb/...``). A file nothing matches is listed with its hash and no version. glibc's version and
  the kernel floor come from floor.py. The launcher's static C library is the build host's ``libc.a``.

Deterministic: no clock, no random UUID. The serial number is a UUID5 of the binary's sha256, the timestamp is
the build date (SOURCE_DATE_EPOCH, the commit's time), every list is sorted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from binary.common import REPO, fail
from binary.layers import split_final, staticx_members, staticx_program

SPEC_VERSION = "1.6"
SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"
SERIAL_NAMESPACE = uuid.UUID("5c1b1f7e-2a5e-5d0a-9a57-a5c7c7100001")  # asrctl's; fixed forever
LOCKS = (REPO / "constraints" / "binary.txt", REPO / "constraints" / "dev.txt")
PROP = "asrctl:"  # namespace of this project's properties (CycloneDX property taxonomy: a private prefix)


# --- reading the artefact -------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_id(data: bytes) -> str | None:
    """The GNU build-id note of an ELF file (kept by strip and patchelf): what names a library's origin."""
    if not data.startswith(b"\x7fELF"):
        return None
    from elftools.elf.elffile import ELFFile

    for section in ELFFile(io.BytesIO(data)).iter_sections():
        if section["sh_type"] == "SHT_NOTE":
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return str(note["n_desc"])
    return None


@dataclass
class BundledFile:
    layer: str  # "launcher", "staticx", "pyinstaller"
    name: str  # path inside its layer
    sha256: str
    build_id: str | None = None
    elf: bool = False


@dataclass
class Inventory:
    """What one built file holds, read from it (and what it says about itself when run)."""

    binary_name: str
    binary_sha256: str
    version: dict[str, str]  # --version -v --json
    files: list[BundledFile]  # every ELF and data file of every layer
    modules: list[str]  # every module of the PYZ and every entry script
    floor: dict[str, object]


def read_inventory(binary: Path, version: dict[str, str]) -> Inventory:
    from binary.floor import analyse
    from binary.layers import frozen_code, pyinstaller_entries

    launcher, payload = split_final(binary)
    files = [BundledFile("launcher", "launcher", sha256_bytes(launcher), build_id(launcher), True)]
    files.append(BundledFile("staticx", "(bootloader)", sha256_bytes(payload), build_id(payload), True))
    members = staticx_members(payload)
    prog_name, _prog = staticx_program(payload)
    for name, data in sorted(members.items()):
        layer_name = "(pyinstaller program)" if name == prog_name else name
        files.append(BundledFile("staticx", layer_name, sha256_bytes(data), build_id(data), data[:4] == b"\x7fELF"))
    with tempfile.TemporaryDirectory(prefix="asrctl-sbom-") as tmp:
        exe = Path(tmp) / "program"
        exe.write_bytes(members[prog_name])
        entries = pyinstaller_entries(exe)
        from PyInstaller.archive.readers import CArchiveReader

        reader = CArchiveReader(str(exe))
        for name, (typecode, _blob) in sorted(entries.items()):
            if typecode in ("b", "x", "z"):
                data = reader.extract(name)
                if isinstance(data, bytes):
                    files.append(
                        BundledFile("pyinstaller", name, sha256_bytes(data), build_id(data), data[:4] == b"\x7fELF")
                    )
        # the PYZ's modules and the entry scripts, and the bootstrap modules stored beside them ("m")
        modules = sorted({*frozen_code(exe), *(n for n, (tc, _b) in entries.items() if tc == "m")})
        floor = analyse(launcher, payload, entries)
    return Inventory(binary.name, sha256_bytes(binary.read_bytes()), version, files, modules, floor)


# --- naming what was found ------------------------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of a hash-pinned requirements file written by ``make lock``."""
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=\S+)*)\s*$", line)
        if m:
            hashes = sorted(h.split(":", 1)[1] for h in re.findall(r"--hash=(sha256:\S+)", m.group(3)))
            pins[canonical(m.group(1))] = (m.group(2), hashes)
    return pins


@dataclass
class Environment:
    """What names the files: the build venv's distributions, the lock, the build host's packages. Every source
    is a function, so the BOM logic is tested without a build."""

    module_owner: Callable[[str], str | None]  # top-level module/dir name -> distribution name
    installed_version: Callable[[str], str | None]
    locks: dict[str, dict[str, tuple[str, list[str]]]]  # lock file (relative) -> pins
    is_stdlib: Callable[[str], bool]
    host_package: Callable[[str, str | None], tuple[str, str, str] | None]  # (name, build-id) -> (pkg, ver, arch)
    host_distro: str  # "debian-12": the purl qualifier of the build host's packages
    bootloader_ids: dict[str, str | None]  # "pyinstaller"/"nssfix" -> build-id of the pinned tool's file
    bootloader_hashes: dict[str, str]  # "pyinstaller"/"staticx"/"nssfix" -> sha256 of the pinned tool's file
    static_libc: tuple[str, str, str] | None  # the dpkg package of the libc.a the launcher linked
    tools: dict[str, str] = field(default_factory=dict)


def pypi_purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonical(name)}@{quote(version, safe='.-_~')}"


def deb_purl(package: str, version: str, arch: str, distro: str) -> str:
    return f"pkg:deb/debian/{package}@{quote(version, safe='.-_~')}?arch={arch}&distro={distro}"


def _hashes(*digests: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": d} for d in sorted(set(digests))]


def _props(**values: object) -> list[dict[str, str]]:
    return [{"name": PROP + k.replace("_", "-"), "value": str(v)} for k, v in sorted(values.items()) if v is not None]


def _file(f: BundledFile) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "type": "file",
        "bom-ref": f"file:{f.layer}:{f.name}",
        "name": f"{f.layer}:{f.name}",
        "hashes": _hashes(f.sha256),
    }
    if f.build_id:
        comp["properties"] = _props(gnu_build_id=f.build_id)
    return comp


PYINSTALLER_OWN = re.compile(r"^(pyimod\d+_|pyiboot\d+_|pyi_rth_|_pyi_)")


def _top(name: str) -> str:
    """The top-level module or directory of an archive entry: ``click.core`` -> click, ``certifi/cacert.pem``
    -> certifi, ``click-8.5.1.dist-info/METADATA`` -> click."""
    if name.startswith("<script "):
        name = name[len("<script ") : -1]
    first = PurePosixPath(name).parts[0] if "/" in name else name.split(".")[0]
    m = re.match(r"^(.+?)-[^-]+\.dist-info$", first)
    return m.group(1) if m else first


def classify(inv: Inventory, env: Environment) -> dict[str, Any]:
    """Owner of every bundled file and module: asrctl, cpython, pyinstaller, staticx, a distribution, or a
    native library (by build host package)."""
    dists: dict[str, dict[str, list[Any]]] = {}
    cpython: dict[str, list[Any]] = {"files": [], "modules": []}
    pyinstaller: dict[str, list[Any]] = {"files": [], "modules": []}
    staticx: list[BundledFile] = []
    asrctl: dict[str, list[Any]] = {"files": [], "modules": []}
    native: dict[tuple[str, str, str] | None, list[BundledFile]] = {}
    unknown: list[str] = []

    def own_by_name(name: str, item: Any, kind: str) -> bool:
        top = _top(name)
        if top in ("asrctl", "_asrctl_build", "__main__"):
            asrctl[kind].append(item)
        elif PYINSTALLER_OWN.match(top):
            pyinstaller[kind].append(item)
        elif (owner := env.module_owner(top)) is not None:
            dists.setdefault(canonical(owner), {"files": [], "modules": []})[kind].append(item)
        elif env.is_stdlib(top):
            cpython[kind].append(item)
        else:
            return False
        return True

    for module in inv.modules:
        if not own_by_name(module, module, "modules"):
            unknown.append(f"module {module}")
    for f in inv.files:
        if f.layer == "launcher":
            asrctl["files"].append(f)
        elif f.layer == "staticx" and f.name == "(bootloader)":
            staticx.append(f)
        elif f.layer == "staticx" and f.name == "(pyinstaller program)":
            pyinstaller["files"].append(f)
        elif f.build_id is not None and f.build_id == env.bootloader_ids.get("nssfix"):
            staticx.append(f)
        elif f.layer == "pyinstaller" and f.name == "PYZ.pyz":  # the archive of all modules, each owned below
            asrctl["files"].append(f)
        elif f.layer == "pyinstaller" and (f.name == "base_library.zip" or f.name.startswith(("libpython", "python3"))):
            cpython["files"].append(f)
        elif f.layer == "pyinstaller" and ("/" in f.name or not f.elf) and own_by_name(f.name, f, "files"):
            pass
        elif f.elf:
            pkg = env.host_package(PurePosixPath(f.name).name, f.build_id)
            native.setdefault(pkg, []).append(f)
        else:
            unknown.append(f"file {f.layer}:{f.name}")
    if unknown:
        raise fail("the SBOM cannot name what these are (no owner found):\n  " + "\n  ".join(unknown))
    return {
        "dists": dists,
        "cpython": cpython,
        "pyinstaller": pyinstaller,
        "staticx": staticx,
        "asrctl": asrctl,
        "native": native,
    }


def _lock_pin(env: Environment, dist: str) -> tuple[str, str, list[str]]:
    for lock, pins in env.locks.items():
        if dist in pins:
            version, hashes = pins[dist]
            return lock, version, hashes
    raise fail(f"{dist} is frozen into the binary but pinned in no lock ({', '.join(env.locks)}): run make lock")


def _pinned_component(env: Environment, dist: str, ref: str, kind: str = "library") -> dict[str, Any]:
    lock, version, hashes = _lock_pin(env, dist)
    installed = env.installed_version(dist)
    if installed != version:
        raise fail(f"{dist}: the lock pins {version}, the build used {installed}: `make binary` installs the lock")
    return {
        "type": kind,
        "bom-ref": ref,
        "name": dist,
        "version": version,
        "purl": pypi_purl(dist, version),
        "hashes": _hashes(*hashes),
        "properties": _props(lock=lock, hashes="the distribution files the lock accepts (pip --require-hashes)"),
    }


def make_bom(inv: Inventory, env: Environment) -> dict[str, Any]:
    owned = classify(inv, env)
    v = inv.version
    commit = v.get("commit", "unknown")
    components: list[dict[str, Any]] = []

    for dist, parts in sorted(owned["dists"].items()):
        comp = _pinned_component(env, dist, f"pypi:{dist}")
        comp["properties"] += _props(frozen_modules=len(parts["modules"]))
        if parts["files"]:
            comp["components"] = [_file(f) for f in sorted(parts["files"], key=lambda f: f.name)]
        components.append(comp)

    python_version = v.get("python", "").split(" ")[0]
    cpython: dict[str, Any] = {
        "type": "framework",
        "bom-ref": "cpython",
        "name": "cpython",
        "version": python_version,
        "description": "The Python interpreter and standard library frozen into the binary",
        "purl": f"pkg:generic/cpython@{python_version}",
        "cpe": f"cpe:2.3:a:python:python:{python_version}:*:*:*:*:*:*:*",
        "properties": _props(stdlib_modules=len(owned["cpython"]["modules"]), version_from="the binary, as it runs"),
        "components": [_file(f) for f in sorted(owned["cpython"]["files"], key=lambda f: f.name)],
    }
    components.append(cpython)

    pyi = _pinned_component(env, "pyinstaller", "pypi:pyinstaller", "application")
    pyi["description"] = "PyInstaller's one-file bootloader and bootstrap modules (the program staticx runs)"
    prog = owned["pyinstaller"]["files"]
    pyi["properties"] += _props(
        bootloader_sha256=env.bootloader_hashes.get("pyinstaller"),
        bootloader_build_id_matches=bool(prog)
        and all(f.build_id == env.bootloader_ids.get("pyinstaller") for f in prog),
        bootstrap_modules=len(owned["pyinstaller"]["modules"]),
    )
    pyi["components"] = [_file(f) for f in prog]
    components.append(pyi)

    sx = _pinned_component(env, "staticx", "pypi:staticx", "application")
    sx["description"] = "staticx's bootloader (the stage that unpacks the loader, glibc and libraries) and libnssfix"
    sx["properties"] += _props(
        bootloader_sha256=env.bootloader_hashes.get("staticx"), libnssfix_sha256=env.bootloader_hashes.get("nssfix")
    )
    sx["components"] = [_file(f) for f in owned["staticx"]]
    components.append(sx)

    floor = inv.floor
    for pkg, files in sorted(owned["native"].items(), key=lambda kv: (kv[0] is None, kv[0] or ("", "", ""))):
        if pkg is None:
            for f in files:
                comp = _file(f)
                comp["type"] = "library"
                comp["properties"] = comp.get("properties", []) + _props(origin="not matched to a build host file")
                components.append(comp)
            continue
        name, version, arch = pkg
        comp = {
            "type": "library",
            "bom-ref": f"deb:{name}",
            "name": name,
            "version": version,
            "purl": deb_purl(name, version, arch, env.host_distro),
            "properties": _props(origin="build host package, matched by GNU build-id"),
            "components": [_file(f) for f in sorted(files, key=lambda f: (f.layer, f.name))],
        }
        if any(PurePosixPath(f.name).name.startswith("libc.so") for f in files):
            comp["description"] = "GNU C library bundled by staticx: the host's C library is never used"
            comp["properties"] += _props(
                glibc=floor.get("glibc_bundled"),
                glibc_needed=floor.get("glibc_needed"),
                kernel_min=floor.get("kernel_min"),
            )
        components.append(comp)

    if env.static_libc is not None:
        name, version, arch = env.static_libc
        components.append(
            {
                "type": "library",
                "bom-ref": f"deb:{name}:static",
                "name": name,
                "version": version,
                "description": "libc.a, linked statically into the launcher (gcc -static)",
                "purl": deb_purl(name, version, arch, env.host_distro),
                "properties": _props(origin="the build host's libc.a (gcc -print-file-name=libc.a)"),
            }
        )

    subject_ref = "asrctl"
    subject: dict[str, Any] = {
        "type": "application",
        "bom-ref": subject_ref,
        "name": "asrctl",
        "version": v.get("version", "unknown"),
        "description": "Installs, upgrades, registers and removes the Azure Site Recovery Mobility Service agent",
        "hashes": _hashes(inv.binary_sha256),
        "purl": f"pkg:generic/asrctl@{v.get('version', 'unknown')}",
        "properties": _props(
            commit=commit,
            build_date=v.get("build_date"),
            file=inv.binary_name,
            frozen_modules=len(owned["asrctl"]["modules"]),
            pyinstaller_reported=v.get("pyinstaller"),
        ),
        "components": [_file(f) for f in owned["asrctl"]["files"]],
    }
    if re.fullmatch(r"[0-9a-f]{40}", commit):
        subject["pedigree"] = {"commits": [{"uid": commit}]}

    serial = uuid.uuid5(SERIAL_NAMESPACE, f"sha256:{inv.binary_sha256}")
    tools = [{"type": "application", "name": name, "version": version} for name, version in sorted(env.tools.items())]
    bom: dict[str, Any] = {
        "$schema": SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "timestamp": v.get("build_date", "1970-01-01T00:00:00Z"),
            "tools": {"components": tools},
            "component": subject,
            "properties": _props(
                sbom_source="the built file (layers.py, floor.py) and the lock (constraints/)",
                locks=", ".join(env.locks),
            ),
        },
        "components": components,
        "dependencies": [
            {"ref": subject_ref, "dependsOn": sorted(c["bom-ref"] for c in components)},
            *({"ref": c["bom-ref"]} for c in sorted(components, key=lambda c: c["bom-ref"])),
        ],
    }
    return bom


def dumps(bom: dict[str, Any]) -> str:
    return json.dumps(bom, indent=2, ensure_ascii=False) + "\n"


# --- the real environment ------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def _ldconfig_paths() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    text = _run(["ldconfig", "-p"]) or _run(["/sbin/ldconfig", "-p"]) or ""
    for line in text.splitlines():
        m = re.match(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", line)
        if m and "x86-64" in m.group(2):
            out.setdefault(m.group(1), []).append(m.group(3))
    return out


def _dpkg_owner(path: str) -> tuple[str, str, str] | None:
    if shutil.which("dpkg") is None:
        return None
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[4:])
        elif p.startswith("/lib/"):
            candidates.append("/usr" + p)
    for p in candidates:
        out = _run(["dpkg", "-S", p])
        if out:
            pkg_arch = out.splitlines()[0].split(": ", 1)[0]  # "libssl3:amd64: /usr/lib/..." -> libssl3:amd64
            fields = (_run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}", pkg_arch]) or "").split()
            if len(fields) == 3:
                return fields[0], fields[1], fields[2]
    return None


def host_package_finder() -> Callable[[str, str | None], tuple[str, str, str] | None]:
    """(file name, build-id) -> (package, version, arch) of the build host file with that build-id."""
    by_name = _ldconfig_paths()
    libdirs = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"]

    def find(name: str, wanted: str | None) -> tuple[str, str, str] | None:
        if wanted is None:
            return None
        base = re.sub(r"(\.so\.\d+)(\.\d+)*$", r"\1", name)  # libz.so.1.2.13 -> libz.so.1 (the soname)
        paths = by_name.get(name, []) + by_name.get(base, []) + [f"{d}/{n}" for d in libdirs for n in (name, base)]
        for path in dict.fromkeys(paths):
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            if build_id(data) == wanted:
                return _dpkg_owner(path)
        return None

    return find


def _host_distro() -> str:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, re.M))
    return f"{fields.get('ID', 'unknown')}-{fields.get('VERSION_ID', 'unknown')}"


def real_environment() -> Environment:
    from importlib.metadata import PackageNotFoundError, packages_distributions
    from importlib.metadata import version as dist_version

    owners = packages_distributions()

    def module_owner(top: str) -> str | None:
        names = [n for n in owners.get(top, []) if canonical(n) != "asrctl"]
        return names[0] if names else None

    def installed(name: str) -> str | None:
        try:
            return dist_version(name)
        except PackageNotFoundError:
            return None

    stdlib = Path(sysconfig.get_paths()["stdlib"])

    def is_stdlib(top: str) -> bool:
        return (
            top in sys.stdlib_module_names
            or top in sys.builtin_module_names
            or (stdlib / f"{top}.py").is_file()
            or (stdlib / top / "__init__.py").is_file()
            or any((stdlib / "lib-dynload").glob(f"{top}.*.so"))
        )

    import PyInstaller
    import staticx

    pyi_boot = Path(PyInstaller.__file__).parent / "bootloader" / "Linux-64bit-intel" / "run"
    sx_assets = Path(staticx.__file__).parent / "assets" / "release"
    hashes, ids = {}, {}
    for key, path in (
        ("pyinstaller", pyi_boot),
        ("staticx", sx_assets / "bootloader"),
        ("nssfix", sx_assets / "libnssfix.so"),
    ):
        if path.is_file():
            data = path.read_bytes()
            hashes[key], ids[key] = sha256_bytes(data), build_id(data)

    libc_a = (_run([os.environ.get("CC", "gcc"), "-print-file-name=libc.a"]) or "").strip()
    static_libc = _dpkg_owner(libc_a) if libc_a and Path(libc_a).is_file() else None

    locks = {str(p.relative_to(REPO)): parse_lock(p.read_text(encoding="utf-8")) for p in LOCKS if p.is_file()}
    from binary.build import source_version

    return Environment(
        module_owner=module_owner,
        installed_version=installed,
        locks=locks,
        is_stdlib=is_stdlib,
        host_package=host_package_finder(),
        host_distro=_host_distro(),
        bootloader_ids=ids,
        bootloader_hashes=hashes,
        static_libc=static_libc,
        tools={"asrctl scripts/binary/sbom.py": source_version()},
    )


def sbom_for(binary: Path, version: dict[str, str]) -> str:
    return dumps(make_bom(read_inventory(binary, version), real_environment()))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m binary.sbom", description="CycloneDX SBOM of a built asrctl")
    parser.add_argument("file", type=Path, help="a built file, e.g. dist/asrctl")
    args = parser.parse_args(list(argv) if argv is not None else None)
    from binary.build import version_facts

    with tempfile.TemporaryDirectory(prefix="asrctl-sbom-rt-") as rt:
        version = version_facts(args.file.resolve(), Path(rt))
    sys.stdout.write(sbom_for(args.file, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
