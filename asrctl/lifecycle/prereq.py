"""Microsoft's prerequisite checks, before anything changes.

The bundle's own ``prereq_check_install.sh`` makes the real installer fail on Secure Boot, a kernel its driver does
not support, too little space on ``/``, a missing C locale or host name, and more (index 11978803657). asrctl runs
it itself, as a plan step after verify+unpack and before the installer (:func:`steps`): a failure is Microsoft's own
error, mapped to an asrctl code and remedy, with nothing changed yet. A Linux bundle without the script gets
asrctl's own equivalent of what can be checked without it (:func:`own_checks`). ``doctor --bundle FILE`` (or
``--prereq`` for the host's bundle) runs the same checks against a bundle unpacked into a private staging
directory that is removed afterwards (:func:`doctor_checks`).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

from asrctl.agent import factory
from asrctl.agent.base import AgentBackend, InstallOptions
from asrctl.agent.vendor_errors import VendorError
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.lifecycle.preconditions import choose_bundle
from asrctl.lifecycle.request import BundleChoice
from asrctl.lifecycle.staging import new_run_id, staging_for
from asrctl.net.checks import FAIL, OK, SKIPPED, WARN, Check
from asrctl.plan import Step
from asrctl.system import rootfs

# The EFI variable `mokutil --sb-state` reads: 4 attribute bytes, then 1 when Secure Boot is on.
SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
EFI_VAR_LIMIT = 4096  # the variable is 5 bytes
LIST_LIMIT = 16 << 20  # Microsoft's longest supported_kernels lists are a few hundred KB


def steps(app: App, backend: AgentBackend, staged: Path, options: InstallOptions) -> list[Step]:
    """The prerequisite step(s) for a plan, between unpacking the bundle and running its installer."""
    return backend.prereq_steps(staged, options, lambda: own_checks(app, staged))


def own_checks(app: App, staged: Path) -> list[VendorError]:
    """What can be checked without the bundle's script, under Microsoft's error names: the host name, Secure Boot
    (the EFI variable itself, no mokutil needed), the running kernel's module directory and, for Ubuntu and Debian,
    the kernel in the bundle's ``supported_kernels`` (exact line). Free space on / is a precondition already."""
    from asrctl.facts import read_in_root

    found: list[VendorError] = []
    kernel = app.facts.kernel
    # A sandbox's host name is its /etc/hostname when it has one (an empty file is no name), as the simulators see it.
    in_root = read_in_root(app.paths, "/etc/hostname") if app.paths.sandboxed else None
    hostname = in_root.strip() if in_root is not None else socket.gethostname()
    if not hostname:
        found.append(VendorError("ASRMobilityServiceHostNameNotSet", "The host name is not set."))
    # Read as every input is (system/rootfs): a regular file only, non-blocking, bounded. A FIFO or a device put
    # there must not hang the preflight; what cannot be read is "not enabled", as mokutil says without the variable.
    try:
        var = rootfs.read_file(app.paths, SECURE_BOOT_VAR, EFI_VAR_LIMIT)
    except (OSError, rootfs.Refused):
        var = None
    secure_boot = var is not None and var[4:5] == b"\x01"
    if secure_boot:
        found.append(
            VendorError("ASRMobilityServiceSecureBootEnabled", "Secure Boot is enabled.", {"VMName": hostname})
        )
    char = f"/lib/modules/{kernel}/kernel/drivers/char"
    if not app.paths.host(char).is_dir():
        found.append(
            VendorError(
                "ASRMobilityServiceKernelDirectoryNotExist", f"{char} does not exist.", {"KernelVersion": kernel}
            )
        )
    tag = (app.platform.os_tag or "").upper()
    listed = staged / "supported_kernels"
    if tag.startswith(("UBUNTU", "DEBIAN")):  # no list (or no regular file) lists nothing, as for Microsoft
        try:
            data = rootfs.read_host(listed, LIST_LIMIT, follow=False) or b""
        except (OSError, rootfs.Refused):
            data = b""  # a list that cannot be read lists nothing: the kernel is not supported (fail closed)
        lines = data.decode("utf-8", errors="replace").splitlines()
        if kernel not in (line.strip() for line in lines):
            found.append(
                VendorError(
                    "ASRMobilityServiceKernelNotSupported",
                    f"The kernel {kernel} is not in the bundle's supported_kernels.",
                    {"KernelVersion": kernel},
                )
            )
    return found


def doctor_checks(app: App, bundle_path: str | None) -> list[Check]:
    """The bundle's prerequisite checks as doctor rows: one per error Microsoft's checker reports, or one that says
    it passed. The bundle is verified and unpacked into a private staging directory, removed afterwards."""
    from asrctl.bundles.digest import DigestPolicy, expected_digest

    plat = app.platform
    if not plat.supported or not plat.os_tag:
        return [Check("prerequisites", SKIPPED, "not checked: this platform is not supported")]
    backend = factory.backend_for(app)
    if backend.name == "windows":
        return [
            Check(
                "prerequisites", SKIPPED, "the Windows bundle has no separate checker; UnifiedAgent.exe checks itself"
            )
        ]
    rows: list[Check] = []
    try:
        bundle = choose_bundle(app, BundleChoice(path=bundle_path), plat.os_tag)
        digest, source = expected_digest(bundle.path, DigestPolicy(None, False))
    except AsrctlError as err:
        return [Check("prerequisites", FAIL, err.message, remedy=err.remedy, code=err.code)]
    if digest is None:
        rows.append(
            Check("prerequisites", WARN, f"{bundle.path.name} has no digest ({source}): its checker runs unverified",
                  remedy="Run `asrctl bundles checksum DIR` on the staging host.")
        )  # fmt: skip
    agent = None
    try:
        agent = backend.installed()
    except AsrctlError:
        pass
    run_id = new_run_id()
    holder, staged = staging_for(app, run_id)
    run_dir = app.paths.run_dir(run_id)
    # doctor changes nothing: the directories it has to create go again (when empty), the checker logs into the run
    # dir, which goes too.
    made = _missing_dirs(app.paths.root, run_dir, holder)
    options = InstallOptions(
        role=(agent.role if agent and agent.role else "MS"),
        vm_platform=(agent.platform if agent and agent.platform else "VmWare"),
        run_dir=str(run_dir),
        vendor_log=str(run_dir / "ua_install.log"),
    )
    try:
        holder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        holder.mkdir(mode=0o700)
        for step in [*backend.stage_steps(bundle, staged, digest), *steps(app, backend, staged, options)]:
            step.run()
    except AsrctlError as err:
        vendor = err.details.get("vendor_errors")
        if isinstance(vendor, list) and vendor:
            rows.extend(_vendor_row(item, err) for item in vendor)
        else:
            rows.append(Check("prerequisites", FAIL, err.message, remedy=err.remedy, code=err.code))
        return rows
    finally:
        shutil.rmtree(holder, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        for directory in made:
            with contextlib.suppress(OSError):
                directory.rmdir()
    rows.append(Check("prerequisites", OK, f"the checks of {bundle.path.name} passed"))
    return rows


def _missing_dirs(root: Path, *paths: Path) -> list[Path]:
    """The directories above *paths* (up to the root) that do not exist yet, deepest first."""
    missing: set[Path] = set()
    for path in paths:
        for parent in path.parents:
            if parent == root or parent.exists():
                break
            missing.add(parent)
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _vendor_row(item: object, err: AsrctlError) -> Check:
    e = item if isinstance(item, dict) else {}
    return Check(
        f"prerequisite {e.get('code', '?')}",
        FAIL,
        str(e.get("message") or e.get("code") or err.message),
        remedy=str(e.get("recommended_action") or err.remedy),
        code=str(e.get("asrctl_code") or err.code),
        data={"vendor_error": e},
    )
