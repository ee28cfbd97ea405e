"""Runtime shared by the simulated Mobility Service tools (stdlib only).

It ships inside the simulated Vx payload (``<Vx>/scripts/asrsim/``; the real payload's top directories are bin,
etc, scripts and transport) and is imported by ``install``/``install_vx`` (loaded from the payload before it is
laid out), ``bin/start``, ``bin/stop``, ``bin/uninstall``, the configurator, ``AzureRcmCli`` and the two daemons.
It runs as a child of asrctl, so it only uses the standard library.

Sandbox rule: vendor *default* locations (``/usr/local/...``, ``/var/log/...``, ``/etc/...``) are mapped under
``$ASRCTL_ROOT`` when it is set to anything but ``/``; paths that come in via argv are host paths and are used as
given.  Every write goes through :func:`guard` so that nothing lands outside the root when one is set.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as _dt
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

# UASetupReturnValues (index 12647148165) and the Linux configurator's own codes (index 12026101433).
EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_INVALID_COMMAND_LINE = 2
EXIT_INVALID_ARGUMENTS = 3
EXIT_INVALID_INSTALL_LOCATION = 10
EXIT_POINTING_TO_DIFFERENT_CS = 13
EXIT_INVALID_PASSPHRASE = 14
EXIT_DOWNGRADE_NOT_SUPPORTED = 15
EXIT_REGISTRATION_FAILED = 17
EXIT_UNSUPPORTED_OS = 42
EXIT_STOP_SERVICES_FAILED = 43
EXIT_START_SERVICES_FAILED = 44
EXIT_ROLE_CHANGE = 75
EXIT_PLATFORM_CHANGE = 76
EXIT_FAILED_WITH_ERRORS = 97
EXIT_SUCCEEDED_WITH_WARNINGS = 98
EXIT_PREREQS_FAILED = 99
EXIT_CONFIGURATOR_STOP_FAILED = 115
EXIT_BIOS_ID_MISMATCH = 118
EXIT_AGENT_CONFIG_INPUT_FAILED = 130

# bin/stop's own contract (uninstall.sh relies on it): 2 = services could not be stopped.
STOP_CANNOT_STOP = 2

DAEMONS = ("svagents", "appservice")
VX_VERSION = "/usr/local/.vx_version"
DEFAULT_INSTALL_DIR = "/usr/local/ASR"
INSTALL_LOG = "/var/log/ua_install.log"
UNINSTALL_LOG = "/var/log/ua_uninstall.log"
ERRORS_JSON = "/var/log/InstallerErrors.json"
DRSCOUT_LOCK = "/usr/local/drscout.conf.lck"
INMAGE_DIR = "/usr/local/InMage"
RCM_INFO = "/usr/local/InMage/config/RCMInfo.conf"
PASSPHRASE_COPY = "/usr/local/InMage/private/connection.passphrase"
IDENTITY_FILE = "etc/asrsim_identity.json"
HOST_ID_PLACEHOLDER = "1234_45466_67689"  # drscout.conf's HostId before one is generated
CALLS_LOG = "/var/log/asrsim.calls"  # simulator only: every tool's argv, one JSON list per line

# The order Microsoft's Vx makefile writes the build-time keys in (index 12015563372); the configurator appends
# AGENT_CONFIGURATION_STATUS at the end.
VX_VERSION_KEYS = (
    "VERSION",
    "PROD_VERSION",
    "PARTNER",
    "INSTALLATION_DIR",
    "RPM_PACKAGE",
    "RPM_NAME",
    "AGENT_MODE",
    "VERSION_FILE_PARENT_DIR",
    "DEFAULT_UPGRADE_DIR",
    "BUILD_TAG",
    "OS_BUILT_FOR",
    "CONFIG",
    "TAR_FILE_NAME",
    "AGENT_CONFIGURATION_STATUS",
)

# Tags whose services go through systemctl (index 11958283975, SYSTEMCTL_DISTRO); the others use /etc/init.d.
SYSTEMCTL_DISTRO = (
    "SLES15-64 OL8-64 OL9-64 UBUNTU-20.04-64 UBUNTU-22.04-64 DEBIAN9-64 DEBIAN10-64 DEBIAN11-64 RHEL9-64".split()
)
SERVICE_UNITS = ("vxagent", "uarespawnd")


class OutsideRootError(Exception):
    """A write would land outside $ASRCTL_ROOT."""


# --------------------------------------------------------------------------- sandbox paths
def sim_root() -> str:
    """The sandbox root without a trailing slash, or '' for the real root."""
    value = os.environ.get("ASRCTL_ROOT", "")
    if not value or os.path.abspath(value) == "/":
        return ""
    return os.path.abspath(value).rstrip("/")


def rpath(vendor_path: str) -> str:
    """Map a vendor default path (absolute) under the sandbox root."""
    return sim_root() + vendor_path


def guard(path: str) -> str:
    """Return *path* if writing it stays inside the root, else raise OutsideRootError."""
    root = sim_root()
    if not root:
        return path
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise OutsideRootError(f"refusing to write {path}: outside ASRCTL_ROOT={root}")
    return path


def makedirs(path: str, mode: int = 0o755) -> None:
    guard(path)
    os.makedirs(path, mode=mode, exist_ok=True)


def write_file_atomic(path: str, data: str | bytes, mode: int = 0o644) -> None:
    guard(path)
    makedirs(os.path.dirname(path))
    tmp = f"{path}.tmp.{os.getpid()}"
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove(path: str) -> None:
    """Remove a file or a tree inside the root (nothing if it is not there)."""
    guard(path)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def sandbox_kernel() -> str:
    """The running kernel: ASRCTL_KERNEL in a sandbox (as asrctl's own detection reads it), else uname -r."""
    if sim_root() and os.environ.get("ASRCTL_KERNEL"):
        return os.environ["ASRCTL_KERNEL"]
    return platform.release()


def record_call(tool: str, argv: list[str]) -> None:
    """Simulator only: append ``[tool, *argv]`` to <root>/var/log/asrsim.calls, so a test can see the exact
    command line a vendor tool got (like the package-tool stand-ins' fakepkg.calls). Sandboxes only."""
    if not sim_root():
        return
    with contextlib.suppress(OSError, OutsideRootError):
        path = rpath(CALLS_LOG)
        makedirs(os.path.dirname(path))
        with open(guard(path), "a", encoding="utf-8") as fh:
            fh.write(json.dumps([tool, *argv]) + "\n")


# --------------------------------------------------------------------------- logging
def log(path: str, level: str, component: str, message: str) -> None:
    """Append one line to a vendor log (never pass secrets here)."""
    try:
        guard(path)
        makedirs(os.path.dirname(path))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} : {level} : {component} : {message}\n")
    except (OSError, OutsideRootError):
        pass


def say(message: str) -> None:
    print(message, flush=True)


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Microsoft's JSON files
def json_error(errors_file: str | None, libcommon: str, name: str, message: str, **params: str) -> None:
    """Append one error to Microsoft's extended-errors file through libcommon.sh's log_to_json_errors_file (the
    one implementation of the format: created on the first error, nothing escaped)."""
    if not errors_file:
        return
    try:
        guard(errors_file)
    except OutsideRootError:
        return
    argv = ["/bin/sh", "-c", '. "$0"; log_to_json_errors_file "$@"', libcommon, errors_file, name, message]
    for key, value in params.items():
        argv += [key, value]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(argv, check=False, timeout=30, stdin=subprocess.DEVNULL)


def write_summary(path: str | None, **fields: object) -> None:
    """The summary file (``-j``) as teleAPIs.sh writes it (index 12369974192): one JSON object."""
    if not path:
        return
    summary = {
        "StartTime": fields.pop("StartTime", now_iso()),
        "ComponentName": "Microsoft Azure Site Recovery Unified Agent Setup",
        **fields,
        "OsType": "Linux",
        "OSkernel": sandbox_kernel(),
        "HostName": local_hostname(),
        "EndTime": now_iso(),
        "OperationDetails": fields.get("OperationDetails", []),
    }
    with contextlib.suppress(OSError, OutsideRootError):
        write_file_atomic(path, json.dumps(summary, indent=2) + "\n")


# --------------------------------------------------------------------------- knobs
def knobs_apply() -> bool:
    """ASR_SIM_KNOB_VERSION=<version>: the failure and hang knobs act only in the tools of that version (so a
    downgrade's older installer can fail while the undo's reinstall of the newer one works). Unset: always."""
    only = os.environ.get("ASR_SIM_KNOB_VERSION", "").strip()
    if not only:
        return True
    return tools_version() == only


def tools_version() -> str | None:
    """The bundle version these tools come from: set by the bundle's install/install_vx when they load this module
    from the payload, else the simulator's own VERSION file beside it in <Vx>/scripts/asrsim."""
    given = globals().get("BUNDLE_VERSION")
    if isinstance(given, str) and given:
        return given
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def knob_fail_at(step: str) -> bool:
    return os.environ.get("ASR_SIM_FAIL_AT", "").strip() == step and knobs_apply()


def maybe_hang(step: str, logfile: str, component: str) -> None:
    """ASR_SIM_HANG=<step>: sleep until SIGTERM/SIGINT, then exit 143/130."""
    if os.environ.get("ASR_SIM_HANG", "").strip() != step or not knobs_apply():
        return

    def _die(signum, _frame):
        log(logfile, "ERROR", component, f"interrupted by signal {signum} while hanging ({step})")
        os._exit(130 if signum == signal.SIGINT else 143)

    signal.signal(signal.SIGTERM, _die)
    signal.signal(signal.SIGINT, _die)
    log(logfile, "INFO", component, f"ASR_SIM_HANG={step}: hanging until killed")
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------- key=value files
def read_kv(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def write_kv(path: str, values: dict[str, str]) -> None:
    keys = [k for k in VX_VERSION_KEYS if k in values] + [k for k in values if k not in VX_VERSION_KEYS]
    write_file_atomic(path, "".join(f"{k}={values[k]}\n" for k in keys))


def vx_version_path() -> str:
    return rpath(VX_VERSION)


def read_vx_version() -> dict[str, str] | None:
    try:
        return read_kv(vx_version_path())
    except FileNotFoundError:
        return None


def set_configuration_status(status: str | None) -> None:
    """What the configurator does (index 12026101433): delete the AGENT_CONFIGURATION_STATUS line, and at the end
    append ``=Succeeded`` or ``=Failed`` (None: only delete it)."""
    path = vx_version_path()
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [line for line in fh if not line.startswith("AGENT_CONFIGURATION_STATUS=")]
    except FileNotFoundError:
        return
    if status is not None:
        lines.append(f"AGENT_CONFIGURATION_STATUS={status}\n")
    write_file_atomic(path, "".join(lines))


def parse_version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        return ()


# --------------------------------------------------------------------------- drscout.conf
def drscout_path(vx_dir: str) -> str:
    return os.path.join(vx_dir, "etc", "drscout.conf")


def _new_parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep key case (VmPlatform, HostId, ...)
    return parser


def read_drscout(vx_dir: str) -> configparser.ConfigParser:
    parser = _new_parser()
    parser.read(drscout_path(vx_dir), encoding="utf-8")
    if not parser.has_section("vxagent"):
        parser.add_section("vxagent")
    return parser


def write_drscout(vx_dir: str, parser: configparser.ConfigParser) -> None:
    buf = io.StringIO()
    parser.write(buf, space_around_delimiters=True)  # Microsoft's "Hostname = <ip>" spacing
    write_file_atomic(drscout_path(vx_dir), buf.getvalue())


def update_drscout(vx_dir: str, **values: str) -> None:
    parser = read_drscout(vx_dir)
    for key, value in values.items():
        parser.set("vxagent", key, value)
    write_drscout(vx_dir, parser)


# --------------------------------------------------------------------------- identity
def local_hostname() -> str:
    try:
        with open(rpath("/etc/hostname"), encoding="utf-8") as fh:
            name = fh.readline().strip()
            if name:
                return name
    except OSError:
        pass
    return socket.gethostname()


def detect_bios_id() -> str | None:
    try:
        with open(rpath("/sys/class/dmi/id/product_uuid"), encoding="ascii") as fh:
            value = fh.read().strip()
            return value or None
    except OSError:
        return None


def load_identity(vx_dir: str) -> dict[str, str]:
    with open(os.path.join(vx_dir, IDENTITY_FILE), encoding="utf-8") as fh:
        return json.load(fh)


def ensure_identity(vx_dir: str) -> dict[str, str]:
    """Host id and BIOS id, created once at install and kept across upgrades."""
    try:
        return load_identity(vx_dir)
    except (OSError, ValueError):
        ident = {"host_id": str(uuid.uuid4()), "bios_id": detect_bios_id() or str(uuid.uuid4()).upper()}
        write_file_atomic(os.path.join(vx_dir, IDENTITY_FILE), json.dumps(ident, indent=2) + "\n")
        return ident


# --------------------------------------------------------------------------- what the agent puts outside its dir
def unit_paths(os_tag: str) -> list[str]:
    """Where the agent's services are registered: systemd units on SYSTEMCTL_DISTRO tags, init scripts otherwise
    (the unit directory /etc/systemd/system is assumed)."""
    if os_tag in SYSTEMCTL_DISTRO:
        return [rpath(f"/etc/systemd/system/{name}.service") for name in SERVICE_UNITS]
    return [rpath(f"/etc/init.d/{name}") for name in SERVICE_UNITS]


def driver_path(kernel: str) -> str:
    return rpath(f"/lib/modules/{kernel}/kernel/drivers/char/involflt.ko")


def proc_modules() -> str:
    """The sandbox's /proc/modules (a plain file under the root; a sandbox has no kernel of its own)."""
    return rpath("/proc/modules")


def install_host_files(vx_dir: str, os_tag: str) -> None:
    """/etc/vxagent, the service units and the involflt driver, loaded (simulated: copied and listed in
    <root>/proc/modules)."""
    etc_vxagent = rpath("/etc/vxagent")
    for sub in ("bin", "involflt", "logs", "usr", "vcon"):
        makedirs(os.path.join(etc_vxagent, sub))
    write_file_atomic(os.path.join(etc_vxagent, "usr", "vxagent.install_dir"), vx_dir + "\n")
    for unit in unit_paths(os_tag):
        name = os.path.basename(unit).removesuffix(".service")
        body = (
            f"[Unit]\nDescription=Microsoft Azure Site Recovery {name} (simulated)\n\n"
            f"[Service]\nExecStart={vx_dir}/bin/start\nExecStop={vx_dir}/bin/stop\n"
            if unit.endswith(".service")
            else f"#!/bin/sh\n# simulated init script for {name}\nexec {vx_dir}/bin/start\n"
        )
        write_file_atomic(unit, body, 0o644 if unit.endswith(".service") else 0o755)
    kernel = sandbox_kernel()
    source = os.path.join(vx_dir, "bin", "drivers", "involflt.ko")
    if os.path.isfile(source):
        target = driver_path(kernel)
        guard(target)
        makedirs(os.path.dirname(target))
        shutil.copyfile(source, target)
    load_driver()


BASE_DEVICES = "Character devices:\n  1 mem\n  4 tty\n 10 misc\n\nBlock devices:\n  8 sd\n253 device-mapper\n"


def _proc_devices(major: int | None) -> None:
    """/proc/devices with (or without) the driver's character major, as the stand-in modprobe keeps it
    (scripts/asrsim/kerneltools/kmod.py)."""
    path = rpath("/proc/devices")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        if major is None:
            return
        text = BASE_DEVICES
    chars: list[str] = []
    blocks: list[str] = []
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Character devices:", "Block devices:"):
            section = chars if stripped.startswith("Character") else blocks
        elif stripped and section is not None and not (section is chars and stripped.split()[1:] == ["involflt"]):
            section.append(line)
    if major is not None:
        chars.append(f"{major:3d} involflt")
    write_file_atomic(
        path,
        "Character devices:\n"
        + "".join(f"{c}\n" for c in chars)
        + "\nBlock devices:\n"
        + "".join(f"{b}\n" for b in blocks),
    )


def load_driver() -> None:
    """Load involflt as the real agent leaves it: listed in /proc/modules, its character major in /proc/devices, and
    /dev/involflt made from that major (the driver makes no node; the agent's start-up does), with a copy of the
    module for the stand-in inm_dmit."""
    modules = proc_modules()
    try:
        with open(modules, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    if not any(line.split(" ", 1)[0] == "involflt" for line in lines):
        lines.append("involflt 593920 0 - Live 0x0000000000000000 (OE)")
        write_file_atomic(modules, "".join(f"{line}\n" for line in lines))
    major = int(os.environ.get("ASR_SIM_INVOLFLT_MAJOR", "240"))
    _proc_devices(major)
    driver = driver_path(sandbox_kernel())
    if os.path.isfile(driver):
        with open(driver, "rb") as fh:
            write_file_atomic(rpath("/var/lib/asrsim/involflt.module"), fh.read())
    node = rpath("/dev/involflt")
    if not os.path.lexists(node):
        makedirs(os.path.dirname(node))
        write_file_atomic(node, f"c {major} 0\n")


def unload_driver() -> None:
    modules = proc_modules()
    with contextlib.suppress(FileNotFoundError):
        with open(modules, encoding="utf-8") as fh:
            lines = [line for line in fh.read().splitlines() if line.split(" ", 1)[0] != "involflt"]
        write_file_atomic(modules, "".join(f"{line}\n" for line in lines))
    _proc_devices(None)
    remove(rpath("/var/lib/asrsim/involflt.module"))
    remove(rpath("/dev/involflt"))


def remove_host_files(os_tag: str) -> None:
    """What the Vx uninstall removes outside the Vx dir: the driver (unloaded, then its file), the units (either
    kind, whatever the tag) and /etc/vxagent."""
    unload_driver()
    remove(driver_path(sandbox_kernel()))
    for unit in unit_paths(SYSTEMCTL_DISTRO[0]) + unit_paths(""):  # either kind, whatever the tag says now
        remove(unit)
    remove(rpath("/etc/vxagent"))


# --------------------------------------------------------------------------- the package tool (RPM payloads)
def rpm_tool() -> str | None:
    """The ``rpm`` to run: the first on PATH. In a sandbox only the simulated one (scripts/asrsim/pkgtools) is
    accepted: the host's rpm would install into the real host, not the root."""
    found = shutil.which("rpm")
    if found is None:
        return None
    if sim_root():
        try:
            with open(found, "rb") as fh:
                if b"fakepkg" not in fh.read(4096):
                    return None
        except OSError:
            return None
    return found


# --------------------------------------------------------------------------- daemons
def run_dir(vx_dir: str) -> str:
    return os.path.join(vx_dir, "var", "run")


def pidfile(vx_dir: str, name: str) -> str:
    return os.path.join(run_dir(vx_dir), f"{name}.pid")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
        return data[data.rindex(")") + 2 :].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def is_our_daemon(pid: int, exe: str) -> bool:
    """True when *pid* is alive (not a zombie) and runs exactly *exe*."""
    state = _state(pid)
    if state is None or state in ("Z", "X"):
        return False
    base = os.path.basename(exe)
    real = os.path.realpath(exe)
    return any(
        arg.startswith("/") and os.path.basename(arg) == base and (arg == exe or os.path.realpath(arg) == real)
        for arg in _cmdline(pid)[:3]
    )


def find_daemon_pids(vx_dir: str, name: str) -> set[int]:
    exe = os.path.join(vx_dir, "bin", name)
    pids: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        with open(pidfile(vx_dir, name), encoding="ascii") as fh:
            pid = int(fh.read().strip() or "0")
        if pid > 0 and is_our_daemon(pid, exe):
            pids.add(pid)
    # Also sweep /proc so a lost pidfile never leaves a daemon behind.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            if pid != os.getpid() and is_our_daemon(pid, exe):
                pids.add(pid)
    return pids


def spawn_detached(argv: list[str], logfile: str) -> None:
    """Double fork + setsid; the grandchild has /dev/null on 0-2 and no other fds."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.closerange(3, 65536)
                try:
                    os.execv(argv[0], argv)
                except OSError as exc:
                    log(logfile, "ERROR", "start", f"cannot execute {argv[0]}: {exc}")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def start_daemons(vx_dir: str, logfile: str, component: str, timeout: float = 30.0) -> int:
    if knob_fail_at("start"):
        log(logfile, "ERROR", component, "ASR_SIM_FAIL_AT=start: services could not be started")
        err("Failed to start the agent services.")
        return EXIT_FAILED
    makedirs(run_dir(vx_dir))
    for name in DAEMONS:
        if find_daemon_pids(vx_dir, name):
            continue
        spawn_detached([os.path.join(vx_dir, "bin", name)], logfile)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_pidfile_alive(vx_dir, name) for name in DAEMONS):
            log(logfile, "INFO", component, "services started: " + ", ".join(DAEMONS))
            return EXIT_SUCCESS
        time.sleep(0.02)
    missing = [name for name in DAEMONS if not _pidfile_alive(vx_dir, name)]
    log(logfile, "ERROR", component, f"services did not come up within {timeout:.0f} s: {', '.join(missing)}")
    return EXIT_FAILED


def _pidfile_alive(vx_dir: str, name: str) -> bool:
    try:
        with open(pidfile(vx_dir, name), encoding="ascii") as fh:
            pid = int(fh.read().strip() or "0")
    except (OSError, ValueError):
        return False
    return pid > 0 and is_our_daemon(pid, os.path.join(vx_dir, "bin", name))


def _gone(pid: int) -> bool:
    return _state(pid) is None


def stop_daemons(vx_dir: str, logfile: str, component: str, timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL; wait until the processes are gone (zombies reaped, bounded)."""
    if knob_fail_at("stop"):
        log(logfile, "ERROR", component, "ASR_SIM_FAIL_AT=stop: services could not be stopped")
        err("Failed to stop the agent services.")
        return STOP_CANNOT_STOP
    pids: set[int] = set()
    for name in DAEMONS:
        pids |= find_daemon_pids(vx_dir, name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_state(p) not in (None, "Z", "X") for p in pids):
        time.sleep(0.02)
    survivors = [p for p in pids if _state(p) not in (None, "Z", "X")]
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # An orphan's zombie lingers until init reaps it; wait (bounded) so callers that look
    # for processes named svagents/appservice right after stop see none.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.02)
    for name in DAEMONS:
        with contextlib.suppress(OSError):
            os.unlink(pidfile(vx_dir, name))
    alive = [p for p in pids if _state(p) not in (None, "Z", "X")]
    if alive:
        log(logfile, "ERROR", component, f"services could not be stopped: {alive}")
        return STOP_CANNOT_STOP
    log(logfile, "INFO", component, "services stopped" + (f" (pids {sorted(pids)})" if pids else " (none running)"))
    return EXIT_SUCCESS


def set_process_name(name: str) -> None:
    """Make /proc/PID/comm (ps, psutil.name()) show *name* instead of python3."""
    with contextlib.suppress(OSError):
        with open("/proc/self/comm", "w", encoding="ascii") as fh:
            fh.write(name[:15])


def run_daemon(exe: str) -> None:
    """Body of the svagents/appservice daemons: pidfile, idle loop, exit on SIGTERM/SIGINT."""
    exe = os.path.abspath(exe)
    name = os.path.basename(exe)
    set_process_name(name)
    vx_dir = os.path.dirname(os.path.dirname(exe))
    pid_path = pidfile(vx_dir, name)

    def _stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    runtime_log = rpath(f"/var/log/{name}_curr_0001.log")
    try:
        write_file_atomic(pid_path, f"{os.getpid()}\n")
        log(runtime_log, "INFO", name, f"started pid {os.getpid()}")
        # Exit by ourselves when the install tree disappears, so a sandbox removed without an
        # uninstall never keeps a stray daemon.
        while os.path.exists(exe):
            time.sleep(0.5)
    except (OSError, OutsideRootError) as exc:
        log(runtime_log, "ERROR", name, f"daemon failed: {exc}")
        raise SystemExit(1) from None
    finally:
        with contextlib.suppress(OSError, ValueError):
            with open(pid_path, encoding="ascii") as fh:
                if int(fh.read().strip() or "0") == os.getpid():
                    os.unlink(pid_path)
        log(runtime_log, "INFO", name, f"stopped pid {os.getpid()}")


# --------------------------------------------------------------------------- misc
def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def read_passphrase(path: str) -> str:
    """The passphrase file's content minus one trailing newline (LF or CRLF); whether Microsoft's
    csgetfingerprint trims it is not known."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text
