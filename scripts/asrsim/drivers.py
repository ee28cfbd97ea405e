"""Simulated Microsoft driver packages (``DriversPackage_<KEY>.tar.gz``) and the kernel side of a sandbox host.

A real package unpacks to ``Drivers/`` holding ``involflt.ko.<uname -r>`` per kernel (SLES: ``Drivers/Signed/``
and ``Drivers/UnSigned/``; RHEL: Microsoft's per-minor names). The simulated driver is a text "module" the stand-in
kernel tools understand (scripts/asrsim/kerneltools/kmod.py): it names the kernel it was built for, the agent build
and whether it is signed. See docs/SIMULATORS.md, "Driver packages".

::

    python -m asrsim.drivers --key UBUNTU22 --kernel 5.15.0-1103-azure --version 9.66.7643.1 --out DIR

From Python::

    build_package(out_dir, "UBUNTU22", ["5.15.0-1103-azure"], version="9.66.7643.1")
    prepare_kernel(root, "5.15.0-1103-azure")        # /lib/modules/<k>/kernel/drivers/char + /boot/vmlinuz-<k>
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNELTOOLS_BIN = HERE / "kerneltools" / "bin"
PAYLOAD_VX = HERE / "payload" / "Vx"  # the agent's own tools: bin/inm_dmit, scripts/initrd/install.sh
HEADER = b"\x7fELF simulated involflt driver"
MTIME = 1_760_000_000  # a fixed date: the same arguments give the same bytes
SLES_KEYS = ("SLES15",)


def driver_bytes(kernel: str, version: str, signed: bool = False) -> bytes:
    words = f" kernel={kernel} version={version}" + (" signed=1" if signed else "")
    return HEADER + words.encode() + b"\n" + b"\0" * 64


def package_name(key: str, version: str | None = None) -> str:
    return f"DriversPackage_{key}" + (f"_{version}" if version else "") + ".tar.gz"


def package_files(
    key: str, kernels: Iterable[str], version: str, names: dict[str, str] | None = None
) -> dict[str, bytes]:
    """Member name -> bytes. ``names`` maps a kernel to another file name (RHEL packages name drivers by minor)."""
    files: dict[str, bytes] = {}
    for kernel in kernels:
        name = (names or {}).get(kernel, f"involflt.ko.{kernel}")
        if key in SLES_KEYS:
            files[f"Drivers/UnSigned/{name}"] = driver_bytes(kernel, version, signed=False)
            files[f"Drivers/Signed/{name}"] = driver_bytes(kernel, version, signed=True)
        else:
            files[f"Drivers/{name}"] = driver_bytes(kernel, version)
    return files


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mtime = size, kind, link, MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uname = info.gname = "root"
    return info


def build_package(
    out_dir: Path,
    key: str,
    kernels: Sequence[str],
    *,
    version: str = "9.66.7567.1",
    name: str | None = None,
    name_version: bool = True,
    names: dict[str, str] | None = None,
    extra: Sequence[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = (),
) -> Path:
    """Write a gzip'd tar package into ``out_dir`` and return its path. ``extra``: more members exactly as given
    (bad ones for tests: ``../x``, ``/etc/x``, links out, devices)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (name or package_name(key, version if name_version else None))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(Path(m).parent) for m in package_files(key, kernels, version, names)})
        for d in dirs:
            tar.addfile(_info(d, kind=tarfile.DIRTYPE))
        for member, data in sorted(package_files(key, kernels, version, names).items()):
            tar.addfile(_info(member, len(data)), io.BytesIO(data))
        for item in extra:
            info, data = item if isinstance(item, tuple) else (item, b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=MTIME) as gz:
        gz.write(raw.getvalue())
    return path


def unpacked(out_dir: Path, key: str, kernels: Sequence[str], *, version: str = "9.66.7567.1") -> Path:
    """The same package as a directory ``DriversPackage_<KEY>_<version>/Drivers/...`` (what the operator gets from
    ``tar -xzf`` into a directory named like the package)."""
    top = Path(out_dir) / f"DriversPackage_{key}_{version}"
    for member, data in package_files(key, kernels, version).items():
        target = top / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return top


# --- the sandbox host's kernel side ------------------------------------------------------------------------


def prepare_kernel(root: Path, kernel: str, vmlinuz: bool = True) -> Path:
    """An installed kernel under the root: its module directory (Microsoft needs kernel/drivers/char), an empty
    modules.dep, and /boot/vmlinuz-<k>."""
    char = Path(root) / "lib/modules" / kernel / "kernel/drivers/char"
    char.mkdir(parents=True, exist_ok=True)
    dep = Path(root) / "lib/modules" / kernel / "modules.dep"
    if not dep.exists():
        dep.write_text("")
    if vmlinuz:
        (Path(root) / "boot").mkdir(parents=True, exist_ok=True)
        (Path(root) / "boot" / f"vmlinuz-{kernel}").write_bytes(b"simulated kernel image\n")
    return char


def load_driver(root: Path, kernel: str, version: str, *, major: int = 240, protected: int = 0) -> None:
    """A driver already loaded (as the agent leaves it): its file for ``kernel``, listed in /proc/modules, its major
    in /proc/devices, /dev/involflt, and ``protected`` disks filtered (the module's use count)."""
    root = Path(root)
    data = driver_bytes(kernel, version)
    char = prepare_kernel(root, kernel)
    (char / "involflt.ko").write_bytes(data)
    (root / "lib/modules" / kernel / "modules.dep").write_text("kernel/drivers/char/involflt.ko:\n")
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/modules").write_text(f"involflt 593920 {protected} - Live 0x0000000000000000 (OE)\n")
    (root / "proc/devices").write_text(
        f"Character devices:\n  1 mem\n 10 misc\n{major:3d} involflt\n\nBlock devices:\n  8 sd\n"
    )
    (root / "var/lib/asrsim").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/asrsim/involflt.module").write_bytes(data)
    (root / "var/lib/asrsim/involflt.protected").write_text(f"{protected}\n")
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev/involflt").write_text(f"c {major} 0\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asrsim.drivers", description="Build a simulated driver package.")
    parser.add_argument(
        "--key", required=True, help="UBUNTU18|UBUNTU20|UBUNTU22|UBUNTU24|DEBIAN11|DEBIAN12|SLES15|RHEL8|RHEL9"
    )
    parser.add_argument("--kernel", action="append", required=True, help="a kernel the package has a driver for")
    parser.add_argument("--version", default="9.66.7567.1", help="the agent build the drivers belong to")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--no-version-in-name", action="store_true", help="name it DriversPackage_<KEY>.tar.gz")
    args = parser.parse_args(argv)
    print(
        build_package(args.out, args.key, args.kernel, version=args.version, name_version=not args.no_version_in_name)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
