"""The simulated host a sandbox root stands for: its kernel, Secure Boot, and the stand-in host tools.

A sandbox root (``asrctl --root DIR``; ``ASRCTL_ROOT`` for the simulated tools) is a fake machine. What the
bundle's prerequisite checker looks at on a real one, it finds here under the root:

- the running kernel: ``ASRCTL_KERNEL`` (the variable asrctl's own detection honours in a sandbox), else this
  machine's ``uname -r``; its module directory ``<root>/lib/modules/<kernel>/kernel/drivers/char`` (Microsoft's
  checker requires it) is made by :func:`prepare_root`;
- Secure Boot: the EFI variable ``<root>/sys/firmware/efi/efivars/SecureBoot-<guid>`` that the stand-in
  ``mokutil`` (``hosttools/bin``) reads, written by :func:`set_secure_boot`;
- the host name: ``<root>/etc/hostname`` (an empty file is an empty host name).

Tests and the demo put :data:`HOSTTOOLS_BIN` first on PATH so that ``mokutil`` answers for the sandbox, never for
the machine the tests run on; :data:`PKGTOOLS_BIN` (``rpm`` and the package managers) is added where a test wants
them. See docs/SIMULATORS.md.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTTOOLS_BIN = HERE / "hosttools" / "bin"
PKGTOOLS_BIN = HERE / "pkgtools" / "bin"
EFI_GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"  # the EFI global-variable GUID SecureBoot lives under
SECURE_BOOT_VAR = f"sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL}"


def sandbox_kernel(environ: Mapping[str, str] | None = None) -> str:
    """The kernel a sandbox runs: ASRCTL_KERNEL when set, else this machine's."""
    env = os.environ if environ is None else environ
    return env.get("ASRCTL_KERNEL") or platform.release()


def kernel_dir(root: Path, kernel: str | None = None) -> Path:
    return Path(root) / "lib/modules" / (kernel or sandbox_kernel()) / "kernel/drivers/char"


def prepare_root(root: Path, kernel: str | None = None) -> Path:
    """Give a sandbox root what a real host has and the prerequisite checker requires: the running kernel's
    module directory. Returns it."""
    path = kernel_dir(root, kernel)
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_secure_boot(root: Path, enabled: bool) -> Path:
    """Write the SecureBoot EFI variable under the root: 4 attribute bytes, then 1 (enabled) or 0."""
    var = Path(root) / SECURE_BOOT_VAR
    var.parent.mkdir(parents=True, exist_ok=True)
    var.write_bytes(b"\x06\x00\x00\x00" + (b"\x01" if enabled else b"\x00"))
    return var


def tool_path(*dirs: Path, path: str | None = None) -> str:
    """PATH with the given stand-in directories first."""
    rest = os.environ.get("PATH", "/usr/bin:/bin") if path is None else path
    return os.pathsep.join([*(str(d) for d in dirs), rest])
