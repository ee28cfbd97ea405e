"""Where the lists come from: a bundle (its own ``supported_kernels``), the installed agent, an unpacked bundle.

A bundle's list is read from a verified, private unpack (the same extractor every verb uses; the list is data,
nothing from the bundle runs), so an unsafe archive is refused here as anywhere. An unpacked bundle (install's
staging directory) is read in place, confined to it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from asrctl.agent.base import InstalledAgent
from asrctl.app import App
from asrctl.bundles.catalog import Bundle, resolve_dirs, scan
from asrctl.bundles.digest import DigestPolicy, expected_digest, unverified_warning
from asrctl.errors import AsrctlError
from asrctl.kernels import host, lists
from asrctl.kernels.check import BUNDLE, INSTALLED, Subject
from asrctl.system import rootfs
from asrctl.system.paths import Paths

LOG = logging.getLogger("asrctl")
LIST_NAME = "supported_kernels"


def staged_list(staged: Path) -> tuple[lists.KernelList | None, bytes | None]:
    """The ``supported_kernels`` at the top of an unpacked bundle (None when it has none), and its bytes."""
    try:
        data = rootfs.read_file(Paths.for_root(staged), f"/{LIST_NAME}", lists.MAX_BYTES)
    except rootfs.Refused as exc:
        raise AsrctlError("ASRCTL-E094", f"{staged / LIST_NAME}: {exc.reason}") from None
    if data is None:
        return None, None
    return lists.parse(data, f"{LIST_NAME} of the bundle"), data


def bundle_subject(app: App, bundle: Bundle, policy: DigestPolicy | None = None) -> Subject:
    """The bundle's list, from a private, verified unpack into a temporary directory that is removed after."""
    from asrctl.bundles.extract import extract

    if bundle.name.kind != "linux":
        raise AsrctlError("ASRCTL-E022", f"{bundle.path.name} is not a Linux bundle; it has no supported_kernels")
    expected, source = expected_digest(bundle.path, policy or DigestPolicy())
    if expected is None:
        app.out.warn(unverified_warning(bundle.path, source))
    with tempfile.TemporaryDirectory(prefix="asrctl-kernels-") as tmp:
        staged = extract(bundle.path, Path(tmp) / "bundle", expected_sha256=expected, out=app.out).path
        listed, _ = staged_list(staged)
    label = f"bundle {bundle.path.name}"
    return Subject(BUNDLE, label, bundle.version, bundle.os_tag, listed, True, str(bundle.path) if listed else "")


def installed_subject(app: App, agent: InstalledAgent, tag: str) -> Subject:
    """The installed build's list: the agent's own, asrctl's saved copy, else the bundle of that exact version in
    the bundle dirs (unpacked privately to read it)."""
    listed = host.installed_list(app.paths, agent, tag)
    source = listed.source if listed is not None else ""
    if listed is None and agent.version:
        bundle = _bundle_of(app, agent.version, tag)
        if bundle is not None:
            found = bundle_subject(app, bundle)
            listed, source = found.listed, f"{found.source} (the bundle of the installed version)"
    return Subject(INSTALLED, f"the installed agent {agent.version}", agent.version, tag, listed, False, source)


def _bundle_of(app: App, version: str, tag: str) -> Bundle | None:
    try:
        dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
        candidates = scan(dirs).for_tag(tag)
    except AsrctlError as exc:
        LOG.info("bundle dirs: %s", exc.message)
        return None
    return next((b for b in candidates if b.version == version and b.name.kind == "linux"), None)
