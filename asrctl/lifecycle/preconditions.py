"""Preconditions: everything a verb checks before anything changes (detect → *choose*).

Privileges, the platform (the support matrix's answer), the bundle choice and its digest, free disk space. Each
raises its catalogued error; none writes anything. (What an earlier, killed run left: lifecycle/recovery.py.)
"""

from __future__ import annotations

from pathlib import Path

from asrctl.app import App
from asrctl.bundles.catalog import Bundle, load_bundle, resolve_dirs, scan
from asrctl.errors import AsrctlError
from asrctl.lifecycle.request import BundleChoice

MIN_FREE_ROOT = 2 * 1024**3  # Microsoft, Linux: 2 GB free on /
MIN_FREE_INSTALL = 250 * 1024**2  # and 250 MB for the install folder
MIN_FREE_INSTALL_WINDOWS = 500 * 1024**2  # Windows: 500 MB on the install folder


def require_privileges(app: App) -> None:
    """Root/Administrator, only when the root is the real one (CLI contract)."""
    if app.paths.sandboxed or app.facts.is_admin:
        return
    raise AsrctlError("ASRCTL-E040", "changing the Mobility Service needs root (Linux) or Administrator (Windows)")


def require_supported(app: App) -> str:
    plat = app.platform
    if not plat.supported or not plat.os_tag:
        raise AsrctlError("ASRCTL-E010", plat.reason or "unsupported platform")
    for w in plat.warnings:
        app.out.warn(w)
    return plat.os_tag


def choose_bundle(app: App, choice: BundleChoice, tag: str) -> Bundle:
    if choice.path:
        bundle = load_bundle(Path(choice.path))
        if not bundle.name.matches_tag(tag):
            raise AsrctlError(
                "ASRCTL-E023",
                f"{bundle.path.name} is for {bundle.os_tag}, but this host ({app.platform.name}) needs {tag}",
            )
        return bundle
    dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
    catalog = scan(dirs)
    best = catalog.newest_for(tag)
    if best is None:
        others = sorted({b.os_tag for b in catalog.bundles})
        seen = f"; found bundles for {', '.join(others)} only" if others else ""
        where = ", ".join(str(d) for d in dirs)
        raise AsrctlError(
            "ASRCTL-E020",
            f"no {tag} bundle (Microsoft-ASR_UA_*_{tag}_GA_*_release.tar.gz) in {where}{seen}",
        )
    return best


def check_disk(app: App, install_dir: str) -> None:
    import psutil

    def free(path: Path) -> int:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return int(psutil.disk_usage(str(probe)).free)

    windows = app.facts.os_family == "windows"
    root = app.paths.root
    root_free = free(root)
    if not windows and root_free < MIN_FREE_ROOT:
        raise AsrctlError(
            "ASRCTL-E041",
            f"{_gb(root_free)} free on {root}; the Mobility Service needs {_gb(MIN_FREE_ROOT)}",
            free_bytes=root_free,
        )
    target = Path(install_dir) if windows else app.paths.host(install_dir)
    target_free = free(target)
    needed = MIN_FREE_INSTALL_WINDOWS if windows else MIN_FREE_INSTALL
    if target_free < needed:
        raise AsrctlError(
            "ASRCTL-E041",
            f"{_gb(target_free)} free for {target}; the install folder needs {_gb(needed)}",
            free_bytes=target_free,
        )


def _gb(n: int) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def digest_for(app: App, bundle: Bundle, choice: BundleChoice) -> str | None:
    from asrctl.bundles.digest import DigestPolicy, expected_digest, unverified_warning

    digest, source = expected_digest(bundle.path, DigestPolicy(choice.sha256, choice.require_digest))
    if digest is None:
        app.out.warn(unverified_warning(bundle.path, source))
    else:
        app.out.detail(f"digest from {source}")
    return digest
