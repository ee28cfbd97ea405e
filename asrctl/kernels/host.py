"""The kernels and the filter driver of the machine under ``--root``: read through the confined, bounded reader
(:mod:`asrctl.system.rootfs`), the agent's ``inm_dmit`` run with a timeout, nothing changed.

- the installed kernels: ``/lib/modules/<k>`` with ``modules.dep`` (or ``kernel/``) *and* ``/boot/vmlinuz-<k>``,
  the filter Microsoft's own driver copier uses;
- the kernel that boots next (:mod:`.boot` for the rules), with its source;
- the driver: ``involflt`` in ``/proc/modules``, ``/dev/involflt``, the major in ``/proc/devices``, the loaded
  driver's version from ``<Vx>/bin/inm_dmit --op=get_driver_version``;
- the installed build's own kernel list: ``<Vx>/bin/drivers/supported_kernels`` (the agent keeps it on SLES), else
  the copy of the bundle's list that asrctl saved when it installed that build (:func:`save_installed_list`).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.agent.base import InstalledAgent
from asrctl.kernels import boot, kver, lists, procfs
from asrctl.system import rootfs
from asrctl.system.paths import Paths
from asrctl.system.runner import Runner, TimedOut

LOG = logging.getLogger("asrctl")

MAX_BOOT_FILE = 1 << 20  # grub.cfg is ~10-50 KB; grubenv 1 KB; a BLS entry < 1 KB
MAX_PROC = 1 << 20
GRUBENV = ("/boot/grub2/grubenv", "/boot/grub/grubenv")
GRUB_CFG = ("/boot/grub2/grub.cfg", "/boot/grub/grub.cfg")
BLS_DIR = "/boot/loader/entries"
DEVICE = "/dev/involflt"
INM_DMIT_TIMEOUT = 20.0
SAVED_LISTS = "/var/lib/asrctl/supported_kernels"


def read_text(paths: Paths, path: str, limit: int = MAX_BOOT_FILE) -> str | None:
    """A small text file of the target system, or None when it is missing or cannot be read safely (a FIFO, a
    link out of the root, too large: logged, never fatal, never a hang)."""
    try:
        data = rootfs.read_file(paths, path, limit)
    except rootfs.Refused as exc:
        LOG.info("not read: %s", exc)
        return None
    return None if data is None else data.decode("utf-8", errors="replace")


def _is_dir(paths: Paths, path: str) -> bool:
    try:
        return rootfs.resolve_dir(paths, path) is not None
    except rootfs.Refused:
        return False


def _is_file(paths: Paths, path: str) -> bool:
    try:
        return rootfs.resolve(paths, path).is_file()
    except (rootfs.Refused, OSError):
        return False


def installed_kernels(paths: Paths) -> list[str]:
    """Kernels under /lib/modules that can boot (their vmlinuz is in /boot), oldest first."""
    found = []
    try:
        names = rootfs.list_dir(paths, "/lib/modules")
    except rootfs.Refused:
        return []
    for name in names:
        if kver.problem(name) is not None:
            continue
        base = f"/lib/modules/{name}"
        if not (_is_file(paths, f"{base}/modules.dep") or _is_dir(paths, f"{base}/kernel")):
            continue
        if _is_file(paths, f"/boot/vmlinuz-{name}"):
            found.append(name)
    return sorted(found, key=lambda k: (kver.key(k), k))


def _grubenv(paths: Paths) -> tuple[dict[str, str], str | None]:
    for path in GRUBENV:
        text = read_text(paths, path, 64 << 10)
        if text is not None:
            return boot.parse_grubenv(text), path
    return {}, None


def _grub_cfg(paths: Paths) -> tuple[boot.GrubConfig | None, str | None]:
    candidates = list(GRUB_CFG)
    try:
        candidates += [f"/boot/efi/EFI/{d}/grub.cfg" for d in rootfs.list_dir(paths, "/boot/efi/EFI")]
    except rootfs.Refused:
        pass
    for path in candidates:
        text = read_text(paths, path)
        if text is None:
            continue
        cfg = boot.parse_grub_cfg(text)
        if cfg.items or cfg.blscfg:  # the ESP copy on Ubuntu/Debian/SLES is a stub that chains to the real one
            return cfg, path
    return None, None


def _bls_entries(paths: Paths) -> list[boot.BlsEntry]:
    try:
        names = rootfs.list_dir(paths, BLS_DIR)
    except rootfs.Refused:
        return []
    out = []
    for name in names:
        if not name.endswith(".conf"):
            continue
        text = read_text(paths, f"{BLS_DIR}/{name}", 64 << 10)
        if text is not None:
            out.append(boot.parse_bls_entry(name[: -len(".conf")], text))
    return out


def next_boot(paths: Paths, running: str | None = None) -> boot.NextBoot:
    """The kernel GRUB boots next, with the source of that answer (module docstring of :mod:`.boot`)."""
    env, env_path = _grubenv(paths)
    cfg, cfg_path = _grub_cfg(paths)
    with_env = f" ({env_path})" if env_path else ""
    entries = _bls_entries(paths)
    if entries and (cfg is None or cfg.blscfg):
        found = boot.bls_default(entries, env)
        if found.kernel:
            return boot.NextBoot(found.kernel, found.source + with_env, found.detail)
    if cfg is not None and cfg.items:
        found = boot.grub_default(cfg, env)
        if found.kernel:
            return boot.NextBoot(found.kernel, f"{found.source} ({cfg_path}){with_env}", found.detail)
    installed = installed_kernels(paths)
    if installed:
        want = kver.flavour(running) if running else None
        same = [k for k in installed if want is None or kver.flavour(k) == want] or installed
        newest = kver.newest(same)
        flavours = {kver.flavour(k) for k in installed}
        note = "no boot loader entry could be read"
        if len(flavours) > 1:
            note += f"; kernels of several flavours are installed ({', '.join(sorted(flavours))}), and only the boot "
            note += "loader's order decides between them"
        return boot.NextBoot(newest, "the newest installed kernel", note)
    return boot.NextBoot(None, "unknown", "no boot loader configuration and no installed kernel could be read")


# --- the driver ---------------------------------------------------------------------------------------------


@dataclass
class DriverState:
    loaded: bool | None  # None: /proc/modules could not be read (a sandbox without a simulated kernel)
    module: procfs.ModuleLine | None = None
    device: bool | None = None  # /dev/involflt exists (None: not asked, the driver is not loaded)
    device_problem: str | None = None
    major: int | None = None  # from /proc/devices
    version: procfs.DriverVersion | None = None
    version_note: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def faulty(self) -> bool:
        return self.version is not None and self.version.faulty

    def as_json(self) -> dict[str, Any]:
        return {
            "module": procfs.MODULE,
            "loaded": self.loaded,
            "state": self.module.state if self.module else None,
            "taint": self.module.taint if self.module else None,
            "device": self.device,
            "device_problem": self.device_problem,
            "major": self.major,
            "version": self.version.agent_version if self.version else None,
            "version_note": self.version_note,
            "faulty": self.faulty,
            "notes": list(self.notes),
        }


def loaded_module(paths: Paths) -> tuple[bool | None, procfs.ModuleLine | None]:
    text = read_text(paths, "/proc/modules", MAX_PROC)
    if text is None:
        return None, None
    line = procfs.parse_modules(text).get(procfs.MODULE)
    return line is not None, line


def char_major(paths: Paths) -> int | None:
    text = read_text(paths, "/proc/devices", MAX_PROC)
    return procfs.char_major(text) if text is not None else None


def device_problem(paths: Paths, major: int | None) -> tuple[bool, str | None]:
    """(exists, what is wrong with it). A real /dev/involflt is a character device with the driver's major; in a
    sandbox, where no device node can be made without privileges, the simulated ``mknod`` leaves a regular file."""
    host = paths.host(DEVICE)
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        return False, None
    except OSError as exc:
        return False, f"{DEVICE}: {exc.strerror}"
    if stat.S_ISCHR(st.st_mode):
        if major is not None and os.major(st.st_rdev) != major:
            return True, f"{DEVICE} has major {os.major(st.st_rdev)}, the driver has {major} (a stale node)"
        return True, None
    if paths.sandboxed and stat.S_ISREG(st.st_mode):
        return True, None
    return True, f"{DEVICE} is not a character device"


def inm_dmit(agent: InstalledAgent | None) -> Path | None:
    if agent is None:
        return None
    vx = agent.details.get("vx_dir")
    return Path(vx) / "bin" / "inm_dmit" if vx else None


def driver_version(runner: Runner, tool: Path | None) -> tuple[procfs.DriverVersion | None, str | None]:
    """The loaded driver's version from the agent's own tool (present and executable), with a timeout."""
    if tool is None or not tool.is_file() or not os.access(tool, os.X_OK):
        return None, "the agent has no executable bin/inm_dmit"
    try:
        done = runner.run([str(tool), "--op=get_driver_version"], timeout=INM_DMIT_TIMEOUT)
    except TimedOut:
        return None, f"inm_dmit did not answer within {INM_DMIT_TIMEOUT:.0f} s"
    except OSError as exc:
        return None, f"inm_dmit could not run: {exc.strerror or exc}"
    found = procfs.parse_driver_version(done.stdout)
    if found is None:
        said = done.output.strip().splitlines()[-1:] or ["no output"]
        return None, f"inm_dmit --op=get_driver_version exited {done.returncode}: {said[0][:200]}"
    return found, None


def driver_state(paths: Paths, runner: Runner, agent: InstalledAgent | None) -> DriverState:
    loaded, line = loaded_module(paths)
    state = DriverState(loaded, line)
    if loaded is None:
        state.notes.append("/proc/modules cannot be read under this root: the driver's state is unknown")
        return state
    state.major = char_major(paths)
    if loaded:
        state.device, state.device_problem = device_problem(paths, state.major)
        state.version, state.version_note = driver_version(runner, inm_dmit(agent))
    return state


# --- the installed build's kernel list ----------------------------------------------------------------------


def saved_list_path(version: str, tag: str) -> str:
    return f"{SAVED_LISTS}/{version}_{tag}_supported_kernels"


def installed_list(paths: Paths, agent: InstalledAgent, tag: str) -> lists.KernelList | None:
    """The installed build's own list: the agent's ``bin/drivers/supported_kernels`` (SLES), else asrctl's copy of
    the bundle's list saved at install; None when neither is there."""
    vx = agent.details.get("vx_dir")
    candidates = [f"{rootfs.target_of(paths, Path(vx))}/bin/drivers/supported_kernels"] if vx else []
    candidates.append(saved_list_path(agent.version, tag))
    for path in candidates:
        try:
            data = rootfs.read_file(paths, path, lists.MAX_BYTES)
        except rootfs.Refused as exc:
            LOG.info("not read: %s", exc)
            continue
        if data is not None:
            return lists.parse(data, str(paths.host(path)))
    return None


def save_installed_list(paths: Paths, version: str, tag: str, data: bytes) -> Path:
    """Keep the bundle's list of the build being installed, for status and ``kernel check`` later (the agent keeps
    none of its own on Ubuntu and Debian). Written atomically."""
    target = paths.host(saved_list_path(version, tag))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target
