"""Simulated kernel-module tools for a sandbox root: ``modprobe``, ``rmmod``, ``depmod``, ``lsmod``, ``mknod``.

A sandbox root has no kernel of its own, so these tools keep the kernel's side as plain files under
``$ASRCTL_ROOT`` (docs/SIMULATORS.md, "Kernel tools"):

- ``/proc/modules`` and ``/proc/devices``: what the kernel would show. Loading ``involflt`` adds its line to the
  first and its character major (``ASR_SIM_INVOLFLT_MAJOR``, default 240) to the "Character devices:" section of
  the second; no ``/dev`` node is made (the real driver makes none either);
- ``/var/lib/asrsim/involflt.module``: a copy of the loaded module (``inm_dmit`` reads its version from it);
- ``/var/lib/asrsim/involflt.protected``: how many disks the driver filters; it is the module's use count, so
  ``rmmod`` refuses while it is above 0 (``inm_dmit --op=stop_flt_all`` sets it to 0);
- ``/lib/modules/<k>/modules.dep``: written by ``depmod``; ``modprobe`` finds a module only through it;
- every call is appended to ``/var/log/asrsim-kmod.calls`` (one JSON argv per line).

A simulated module file is text whose first line is ``\\x7fELF simulated involflt driver`` followed by
``key=value`` words: ``kernel=`` (the kernel it was built for: ``modprobe`` refuses it on another kernel, "Exec
format error"), ``version=`` (the agent build, for ``inm_dmit``), ``signed=1`` (signed: the only kind that loads
while the root's SecureBoot EFI variable says enabled, "Key was rejected by service"). On a SLES root ``modprobe``
needs ``--allow-unsupported-modules`` (or its prefix ``--allow-unsupported``).

Knobs: ``ASR_SIM_MODPROBE=fail`` (exit 1, "Unknown symbol in module"; ``fail:<version>``: only a module of that
version= fails), ``ASR_SIM_MODPROBE=lie`` (exit 0 without
loading anything, as Microsoft's hotfix script would report), ``ASR_SIM_RMMOD=fail``, ``ASR_SIM_DEPMOD=fail``,
``ASR_SIM_MKNOD=fail``. Without ``ASRCTL_ROOT`` (or with ``/``) every tool refuses to run (exit 97): it can never
touch the machine the tests run on. Standard library only.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys

MODULE = "involflt"
REL = "kernel/drivers/char/involflt.ko"
HEADER = b"\x7fELF simulated involflt driver"
EFI_SECURE_BOOT = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
BASE_DEVICES = (
    "Character devices:\n  1 mem\n  4 /dev/vc/0\n  4 tty\n  5 /dev/tty\n 10 misc\n\n"
    "Block devices:\n  8 sd\n253 device-mapper\n"
)


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def root() -> str:
    value = os.environ.get("ASRCTL_ROOT", "")
    if not value or os.path.abspath(value) == "/" or not os.path.isdir(value):
        raise Refused(97, "ASRCTL_ROOT is not set to a sandbox root; refusing to touch this machine's kernel")
    return os.path.abspath(value)


def rpath(path: str) -> str:
    """A target path under the root; a path already under it (asrctl passes host paths) stays as it is."""
    base = root()
    full = os.path.abspath(path) if os.path.abspath(path).startswith(base + os.sep) else base + "/" + path.lstrip("/")
    if not os.path.realpath(full).startswith(os.path.realpath(base) + os.sep):
        raise Refused(1, f"{path}: outside the sandbox root {base}")
    return full


def running_kernel() -> str:
    return os.environ.get("ASRCTL_KERNEL") or platform.release()


def read(path: str) -> str:
    try:
        with open(rpath(path), encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def write(path: str, text: str) -> None:
    full = rpath(path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = full + ".asrsim-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, full)


def record(tool: str, args: list[str]) -> None:
    log = rpath("/var/log/asrsim-kmod.calls")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps([tool, *args]) + "\n")


def module_info(data: bytes) -> dict[str, str]:
    first = data.split(b"\n", 1)[0]
    if not first.startswith(HEADER):
        return {}
    words = first[len(HEADER) :].decode("ascii", "replace").split()
    return dict(w.split("=", 1) for w in words if "=" in w)


def loaded() -> bool:
    return any(line.split(" ", 1)[0] == MODULE for line in read("/proc/modules").splitlines())


def protected() -> int:
    text = read("/var/lib/asrsim/involflt.protected").strip()
    return int(text) if text.isdigit() else 0


def secure_boot() -> bool:
    try:
        with open(rpath("/" + EFI_SECURE_BOOT), "rb") as fh:
            return fh.read()[4:5] == b"\x01"
    except FileNotFoundError:
        return False


def is_sles() -> bool:
    text = read("/etc/os-release")
    return bool(re.search(r'^ID="?(sles|sled|sle_hpc)"?$', text, re.M))


def _devices_with(major: int | None) -> str:
    """/proc/devices with (or without) the driver's character major."""
    text = read("/proc/devices") or BASE_DEVICES
    chars: list[str] = []
    blocks: list[str] = []
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Character devices:", "Block devices:"):
            section = chars if stripped.startswith("Character") else blocks
            continue
        if not stripped or section is None:
            continue
        if section is chars and stripped.split()[1:] == [MODULE]:
            continue
        section.append(line)
    if major is not None:
        chars.append(f"{major:3d} {MODULE}")
    return (
        "Character devices:\n"
        + "".join(f"{c}\n" for c in chars)
        + "\nBlock devices:\n"
        + "".join(f"{b}\n" for b in blocks)
    )


def load(module_file: str) -> None:
    with open(module_file, "rb") as fh:
        data = fh.read()
    lines = [ln for ln in read("/proc/modules").splitlines() if ln.split(" ", 1)[0] != MODULE]
    lines.insert(0, f"{MODULE} {max(len(data), 16384)} {protected()} - Live 0x0000000000000000 (OE)")
    write("/proc/modules", "".join(f"{ln}\n" for ln in lines))
    write("/proc/devices", _devices_with(int(os.environ.get("ASR_SIM_INVOLFLT_MAJOR", "240"))))
    full = rpath("/var/lib/asrsim/involflt.module")
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as fh:
        fh.write(data)


def unload() -> None:
    lines = [ln for ln in read("/proc/modules").splitlines() if ln.split(" ", 1)[0] != MODULE]
    write("/proc/modules", "".join(f"{ln}\n" for ln in lines))
    if read("/proc/devices"):
        write("/proc/devices", _devices_with(None))
    try:
        os.unlink(rpath("/var/lib/asrsim/involflt.module"))
    except FileNotFoundError:
        pass


# --- the tools ------------------------------------------------------------------------------------------------


def modprobe(args: list[str]) -> int:
    names = [a for a in args if not a.startswith("-")]
    if names != [MODULE]:
        raise Refused(1, f"modprobe (asrsim): only `modprobe [-v] [-s] [--allow-unsupported-modules] {MODULE}`")
    if loaded():
        return 0
    knob = os.environ.get("ASR_SIM_MODPROBE", "")
    if knob == "lie":
        return 0
    kernel = running_kernel()
    dep = read(f"/lib/modules/{kernel}/modules.dep")
    if not any(line.startswith(REL + ":") for line in dep.splitlines()):
        raise Refused(1, f"modprobe: FATAL: Module {MODULE} not found in directory /lib/modules/{kernel}")
    path = rpath(f"/lib/modules/{kernel}/{REL}")
    with open(path, "rb") as fh:
        info = module_info(fh.read())
    if knob == "fail" or (knob.startswith("fail:") and info.get("version") == knob[5:]):
        raise Refused(
            1, f"modprobe: ERROR: could not insert '{MODULE}': Unknown symbol in module, or unknown parameter"
        )
    if info.get("kernel") not in (None, kernel):
        raise Refused(1, f"modprobe: ERROR: could not insert '{MODULE}': Exec format error")
    if secure_boot() and info.get("signed") != "1":
        raise Refused(1, f"modprobe: ERROR: could not insert '{MODULE}': Key was rejected by service")
    if is_sles() and not any(a.startswith("--allow-unsupported") for a in args):
        raise Refused(
            1,
            f"modprobe: ERROR: module '{MODULE}' is unsupported\nmodprobe: ERROR: Use --allow-unsupported or set "
            "allow_unsupported_modules 1 in\nmodprobe: ERROR: /etc/modprobe.d/10-unsupported-modules.conf",
        )
    if "-v" in args:
        print(f"insmod /lib/modules/{kernel}/{REL}")
    load(path)
    return 0


def rmmod(args: list[str]) -> int:
    if [a for a in args if not a.startswith("-")] != [MODULE]:
        raise Refused(1, f"rmmod (asrsim): only `rmmod {MODULE}`")
    if not loaded():
        raise Refused(1, f"rmmod: ERROR: Module {MODULE} is not currently loaded")
    if os.environ.get("ASR_SIM_RMMOD") == "fail" or protected() > 0:
        raise Refused(1, f"rmmod: ERROR: Module {MODULE} is in use")
    unload()
    return 0


def depmod(args: list[str]) -> int:
    kernels = [a for a in args if not a.startswith("-")] or [running_kernel()]
    if os.environ.get("ASR_SIM_DEPMOD") == "fail":
        raise Refused(1, "depmod: ERROR: could not write modules.dep (simulated failure)")
    for kernel in kernels:
        base = rpath(f"/lib/modules/{kernel}")
        if not os.path.isdir(base):
            raise Refused(
                1, f"depmod: ERROR: could not open directory /lib/modules/{kernel}: No such file or directory"
            )
        found = []
        for top, _dirs, files in os.walk(os.path.join(base, "kernel")):
            for name in files:
                if name.endswith(".ko"):
                    found.append(os.path.relpath(os.path.join(top, name), base) + ":")
        write(f"/lib/modules/{kernel}/modules.dep", "".join(f"{line}\n" for line in sorted(found)))
    return 0


def lsmod(args: list[str]) -> int:
    print("Module                  Size  Used by")
    for line in read("/proc/modules").splitlines():
        f = line.split()
        if len(f) >= 4:
            print(f"{f[0]:<24}{f[1]:>6}  {f[2]}")
    return 0


def mknod(args: list[str]) -> int:
    if len(args) != 4 or args[1] not in ("c", "b") or not args[2].isdigit() or not args[3].isdigit():
        raise Refused(1, "mknod (asrsim): only `mknod PATH c|b MAJOR MINOR`")
    if os.environ.get("ASR_SIM_MKNOD") == "fail":
        raise Refused(1, f"mknod: {args[0]}: Operation not permitted")
    target = rpath(args[0])
    if os.path.lexists(target):
        raise Refused(1, f"mknod: {args[0]}: File exists")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # No device node can be made without privileges: a regular file says what the node would be.
    with open(target, "x", encoding="utf-8") as fh:
        fh.write(f"{args[1]} {args[2]} {args[3]}\n")
    return 0


TOOLS = {"modprobe": modprobe, "rmmod": rmmod, "depmod": depmod, "lsmod": lsmod, "mknod": mknod}


def main(tool: str) -> int:
    args = sys.argv[1:]
    try:
        root()
        record(tool, args)
        return TOOLS[tool](args)
    except Refused as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
