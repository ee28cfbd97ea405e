"""Microsoft's extended-errors file: what the vendor tool itself says went wrong, read leniently and safely.

Microsoft's installer (``-e``), configurator (``-f``), prerequisite checker (``-j``) and the Windows tools
(``/ValidationsOutputJsonFilePath``) write one shape (index 11958283975 ``log_to_json_errors_file``; Windows
12797467950 ``ErrorLogger``)::

    {"Errors": [{"error_name": "ASRMobilityService…", "error_params": {"K": "V"}, "default_message": "…"}]}

created only when there is an error ("no file" means "no errors"). The Linux writer escapes nothing, so a quote or
a backslash in a message makes the file invalid JSON: :func:`parse` tries JSON first and then reads the fields line
by line. A file from a vendor tool never confuses asrctl: :func:`read` takes only a regular file inside asrctl's
own run directory, never follows a link, never blocks on a FIFO and reads at most :data:`MAX_BYTES`.

:data:`KNOWN` is asrctl's own table (Microsoft's file has no causes or actions): for the names it knows, the
asrctl error code, the likely causes and what to do. Unknown names pass through with Microsoft's words.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_BYTES = 256 * 1024  # a real file holds a few errors; anything bigger is not one


@dataclass(frozen=True)
class VendorError:
    name: str
    message: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Known:
    code: str  # the ASRCTL-E… code a failure with this error gets
    causes: str
    action: str  # may name params: {KernelVersion}


# asrctl's table of Microsoft's error names (the prerequisite checker's, index 11978803657, and the tools'). Where
# no better code exists, ASRCTL-E053 "a prerequisite is missing", with the action here as its remedy.
KNOWN: Mapping[str, Known] = {
    "ASRMobilityServiceSecureBootEnabled": Known(
        "ASRCTL-E055",
        'Secure Boot is on: `mokutil --sb-state` says "SecureBoot enabled", and Microsoft\'s installer refuses it '
        "on Linux (its filter driver is not signed for it).",
        "Turn Secure Boot off in the machine's firmware settings (vSphere: VM Options, Boot Options), restart "
        "the machine, then run asrctl again.",
    ),
    "ASRMobilityServiceKernelNotSupported": Known(
        "ASRCTL-E056",
        "The running kernel {KernelVersion} is not one this agent build has a driver for (the bundle's "
        "supported_kernels, or Microsoft's version rules for RHEL, OL and SLES).",
        "Boot a kernel this build supports, or use a newer Mobility Service bundle that supports {KernelVersion} "
        "(Microsoft's supported-kernel lists: github.com/Azure/Azure-SiteRecovery, SupportedKernels).",
    ),
    "ASRMobilityServiceKernelDirectoryNotExist": Known(
        "ASRCTL-E057",
        "/lib/modules/{KernelVersion}/kernel/drivers/char does not exist: the running kernel's modules are "
        "missing or incomplete.",
        "Reinstall the package of the running kernel {KernelVersion} so that its module directory exists, then "
        "run asrctl again.",
    ),
    "ASRMobilityServiceFreeSpaceOnRootNotSufficient": Known(
        "ASRCTL-E041",
        "Less than {FreeSpace} KB is free on / (Microsoft's checker reads `df -Pk /`).",
        "Free at least {FreeSpace} KB on /, then run asrctl again.",
    ),
    "ASRMobilityServiceCLocaleNotAvailable": Known(
        "ASRCTL-E058",
        "The C locale is not installed: `locale -a` does not list it.",
        "Install the C locale (e.g. the glibc-langpack-en or locales package) so that `locale -a` lists C.",
    ),
    "ASRMobilityServiceHostNameNotSet": Known(
        "ASRCTL-E059",
        "`hostname` prints nothing.",
        "Set a host name (`hostnamectl set-hostname NAME`), then run asrctl again.",
    ),
    "ASRMobilityServiceLisDriversNotAvailable": Known(
        "ASRCTL-E053",
        "The Hyper-V LIS drivers (hv_storvsc) are not in the initrd of this RHEL 5/6 machine.",
        "Add the LIS drivers to the initrd (dracut/mkinitrd --with hv_storvsc), then run asrctl again.",
    ),
    "ASRMobilityServiceSystemDiskNotFound": Known(
        "ASRCTL-E053",
        "Microsoft's checker could not find the disk that holds /.",
        "Check that / is on a partition, LVM volume or disk the machine lists (lsblk, blkid).",
    ),
    "ASRMobilityServiceBootDiskNotFound": Known(
        "ASRCTL-E053",
        "Microsoft's checker could not find the disk that holds /boot.",
        "Check that /boot is on a partition or disk the machine lists (lsblk, blkid).",
    ),
    "ASRMobilityServiceLvmPackageMissing": Known(
        "ASRCTL-E053",
        "/ is on LVM but the LVM tools (vgdisplay) are not installed.",
        "Install the lvm2 package, then run asrctl again.",
    ),
    "ASRMobilityServiceBootOnLVMFromMultipleDisks": Known(
        "ASRCTL-E053",
        "/boot is on the LVM volume {LVMDevice}, which spans more than one disk ({BootDisks}).",
        "Move /boot to a single disk; Azure Site Recovery cannot replicate it otherwise.",
    ),
    "ASRMobilityServiceBootPartitionNotMounted": Known(
        "ASRCTL-E053",
        "The boot partition {BootPartition} is not mounted on /boot.",
        "Mount it on /boot (and in /etc/fstab), then run asrctl again.",
    ),
    "ASRMobilityServiceUnsupportedRootFileSystem": Known(
        "ASRCTL-E053",
        "The root file system {RootFileSystem} is not one Microsoft supports ({SupportedRootFileSystems}).",
        "Azure Site Recovery cannot protect this machine with its root on {RootFileSystem}.",
    ),
    "ASRMobilityServiceUnsupportedBootFileSystem": Known(
        "ASRCTL-E053",
        "The /boot file system {BootFileSystem} is not one Microsoft supports ({SupportedBootFileSystems}).",
        "Azure Site Recovery cannot protect this machine with /boot on {BootFileSystem}.",
    ),
    "ASRMobilityServiceDirsNotWritable": Known(
        "ASRCTL-E053",
        "These directories are not writable: {DirList}.",
        "Make them writable for root (a read-only mount?), then run asrctl again.",
    ),
    "ASRMobilityServiceAcpiEqualsToZeroSet": Known(
        "ASRCTL-E053",
        "The kernel command line has acpi=0.",
        "Remove acpi=0 from the boot loader's kernel command line and restart the machine.",
    ),
    "ASRMobilityServiceDeviceNotExist": Known(
        "ASRCTL-E053",
        "The grub configuration names an LVM volume that does not exist: {Device}.",
        "Fix rd.lvm.lv= in /etc/default/grub and regenerate grub.cfg.",
    ),
    "ASRMobilityServiceGrubDeviceNameChange": Known(
        "ASRCTL-E053",
        "The grub configuration names {Device} by its /dev name, which can change after failover.",
        "Refer to it by UUID or LABEL in the grub configuration and regenerate grub.cfg.",
    ),
    "ASRMobilityServiceDhcpClientNotAvailable": Known(
        "ASRCTL-E053",
        "No DHCP client is installed; the machine would have no network after failover to Azure.",
        "Install the {Package} package, then run asrctl again.",
    ),
    "ASRMobilityServiceRunlevelCommandFailure": Known(
        "ASRCTL-E053",
        "The runlevel ({Runlevel}) is not 2, 3 or 5, or the machine is shutting down.",
        "Run the installation in multi-user mode.",
    ),
    "ASRMobilityServiceInstallerBlockOldOnePassEncryption": Known(
        "ASRCTL-E053",
        "The machine uses the old single-pass Azure Disk Encryption, which the agent cannot work with.",
        "Move the machine off single-pass Azure Disk Encryption first.",
    ),
    "ASRMobilityServiceInternalError": Known(
        "ASRCTL-E060",
        "Microsoft's tool failed internally (for the checker: a bad switch or role).",
        "Read the installer log named above.",
    ),
    "ASRMobilityServiceVMPlatformNotSet": Known(
        "ASRCTL-E080",
        "The agent's drscout.conf has no VmPlatform of VmWare or Azure.",
        "Reinstall the agent (`asrctl uninstall -Y`, then `asrctl install`).",
    ),
    "ConfiguratorInternalError": Known(
        "ASRCTL-E080",
        "Microsoft's configurator failed and reported its own code as 97 (it does so for every modernized failure).",
        "Read the configurator's message above and /var/log/ua_install.log.",
    ),
}


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _fill(template: str, params: Mapping[str, str]) -> str:
    """Put Microsoft's params into asrctl's text (a missing one shows as '?'); the values are never templates."""
    return string.Formatter().vformat(template, (), _Blank(params))


def parse(text: str) -> list[VendorError]:
    """The errors in a file's text: JSON first; when that fails (Microsoft escapes nothing), field by field."""
    with contextlib.suppress(ValueError):
        doc = json.loads(text)
        if isinstance(doc, dict) and isinstance(doc.get("Errors"), list):
            return [e for e in (_from_json(item) for item in doc["Errors"]) if e is not None]
    return _lenient(text)


def _from_json(item: object) -> VendorError | None:
    if not isinstance(item, dict) or not isinstance(item.get("error_name"), str):
        return None
    raw = item.get("error_params")
    params = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    message = item.get("default_message")
    return VendorError(item["error_name"], message if isinstance(message, str) else "", params)


_FIELD = re.compile(r'^\s*"(error_name|error_params|default_message)"\s*:\s*(.*?)\s*,?\s*$')
_PAIR = re.compile(r'"([^"]*)"\s*:\s*"(.*?)"\s*(?=,\s*"[^"]*"\s*:|$)')


def _lenient(text: str) -> list[VendorError]:
    """Microsoft's writer puts each field on a line of its own: take what lies between the first and the last
    quote of each, whatever quotes or backslashes are inside."""
    found: list[VendorError] = []
    name: str | None = None
    params: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if not match:
            continue
        key, value = match.groups()
        if key == "error_name":
            if name is not None:
                found.append(VendorError(name, "", params))
            name, params = _unquote(value), {}
        elif key == "error_params" and name is not None:
            inner = value.strip().removeprefix("{").removesuffix("}")
            params = dict(_PAIR.findall(inner))
        elif key == "default_message" and name is not None:
            found.append(VendorError(name, _unquote(value), params))
            name, params = None, {}
    if name is not None:
        found.append(VendorError(name, "", params))
    return [e for e in found if e.name]  # a file cut short may end in a name with nothing left of it


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    return value.strip('"')


def read(path: str | os.PathLike[str], within: str | os.PathLike[str]) -> tuple[list[VendorError], str | None]:
    """The errors in the file at ``path`` and its raw text (None when there is no file to read).

    Only a regular file inside ``within`` (asrctl's run directory) counts; a link is not followed, a FIFO or device
    is not opened for reading (O_NONBLOCK, then fstat), and at most :data:`MAX_BYTES` are read."""
    target = Path(path)
    base = Path(within).resolve()
    try:
        if target.parent.resolve() != base and base not in target.parent.resolve().parents:
            return [], None
    except OSError:
        return [], None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target, flags)
    except OSError:
        return [], None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return [], None
        data = os.read(fd, MAX_BYTES)
    except OSError:
        return [], None
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    return parse(text), text


def details(errors: Sequence[VendorError]) -> list[dict[str, Any]]:
    """For ``error.details.vendor_errors``: Microsoft's name (``code``), message and params, and asrctl's causes,
    action and code where it knows the name."""
    out: list[dict[str, Any]] = []
    for e in errors:
        item: dict[str, Any] = {"code": e.name, "message": e.message, "params": dict(e.params)}
        known = KNOWN.get(e.name)
        if known is not None:
            item["possible_causes"] = _fill(known.causes, e.params)
            item["recommended_action"] = _fill(known.action, e.params)
            item["asrctl_code"] = known.code
        out.append(item)
    return out


def mapped(errors: Sequence[VendorError]) -> tuple[str, str] | None:
    """The asrctl code and remedy of the first error asrctl knows (Microsoft's order is its checks' order)."""
    for e in errors:
        known = KNOWN.get(e.name)
        if known is not None:
            return known.code, _fill(known.action, e.params)
    return None


def summary_line(errors: Sequence[VendorError]) -> str:
    """Microsoft's words for a message: the first error, and how many more."""
    if not errors:
        return ""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first.name}: {first.message or 'no message'}{more}"
