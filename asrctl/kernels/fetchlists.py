"""``asrctl kernel lists fetch URL``: Microsoft's SupportedKernels tree from a site's internal mirror.

The mirror format (docs/KERNELS.md): one gzip'd tar of the tree as Microsoft's repository lays it out
(``AzureToAzure/SupportedKernels/<build>/<TAG>_supported_kernels.txt`` and the same for ``OnPremiseToAzure``,
optionally under ``MobilityAgent/``), e.g. ``git archive`` or ``tar -czf SupportedKernels.tar.gz -C
Azure-SiteRecovery/MobilityAgent AzureToAzure/SupportedKernels OnPremiseToAzure/SupportedKernels``, with
``SHA256SUMS`` beside it. One archive, not a file per list: it is verified as a whole, and the tree it holds is
replaced as a whole (Microsoft relabels build directories after publication, so a merge would keep stale ones).

The download is ``bundles fetch``'s (HTTPS, ``--ca-bundle``, the environment's proxies, resume, retries with
backoff, ``--sha256`` or ``SHA256SUMS`` on the mirror, size and magic checks); the archive is unpacked by the bundle
extractor (no traversal, links out, devices or duplicates; size caps) into a private directory beside the target;
every list is parsed (a damaged one is refused, naming its line); only then does the new tree take the old one's
place, in one rename where the kernel can swap two directories.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from asrctl.errors import AsrctlError
from asrctl.kernels.tree import open_tree
from asrctl.system import redact
from asrctl.system.signals import shielded

if TYPE_CHECKING:
    from asrctl.output import Output

LOG = logging.getLogger("asrctl")
GZIP = (b"\x1f\x8b",)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(?:tar\.gz|tgz)")
SOURCE_FILE = ".asrctl-source.json"


def archive_name(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc:
        raise AsrctlError("ASRCTL-E002", f"{url}: not an https:// URL", remedy="Give the archive's https:// URL.")
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if not _NAME.fullmatch(name):
        raise AsrctlError(
            "ASRCTL-E002",
            f"{url}: does not end in an archive name (NAME.tar.gz or NAME.tgz): {name or 'empty'}",
            remedy="Publish the tree on the mirror as one .tar.gz (docs/KERNELS.md) and give its URL.",
        )
    return name


def _recorded(target: Path) -> dict[str, Any]:
    try:
        data = json.loads((target / SOURCE_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _check_target(target: Path) -> None:
    """The target is replaced whole: it must be absent, empty, or a tree this command wrote."""
    if not target.exists():
        return
    if not target.is_dir():
        raise AsrctlError("ASRCTL-E037", f"{target} exists and is not a directory")
    if any(target.iterdir()) and not (target / SOURCE_FILE).is_file():
        raise AsrctlError(
            "ASRCTL-E037",
            f"{target} holds files that `kernel lists fetch` did not put there; it replaces its directory whole",
            remedy="Give --to a new directory, or the one an earlier `asrctl kernel lists fetch` filled.",
        )


def _record_source(new: Path, name: str, record: dict[str, Any]) -> None:
    """Where the tree came from, beside it. The archive is the mirror's, so it may hold this name itself: a
    directory or a link there is refused (written through a link, the record would overwrite a list that was just
    parsed); a regular file (a mirror republishing a fetched tree) is replaced by a new name, never written into,
    so a hard link to a list cannot carry the write either."""
    import stat

    path = new / SOURCE_FILE
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise AsrctlError(
            "ASRCTL-E032",
            f"{name}: its {SOURCE_FILE} is not a regular file (the name asrctl keeps its own record under)",
            remedy="Publish the SupportedKernels tree alone (docs/KERNELS.md); the old lists are kept.",
        )
    tmp = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=new, prefix=f"{SOURCE_FILE}.", delete=False)
    with tmp:  # O_EXCL: a fresh file, whatever names the archive left
        tmp.write(json.dumps(record, indent=2) + "\n")
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def fetch_lists(
    url: str,
    target: Path,
    *,
    sha256: str | None,
    ca_bundle: str | None,
    out: Output | None,
    retries: int = 5,
    timeout: float = 30.0,
    require_digest: bool = False,
    backoff: float = 1.0,
) -> dict[str, Any]:
    from asrctl.bundles.extract import extract
    from asrctl.bundles.extract.fsops import exchange, remove_tree
    from asrctl.bundles.fetch import fetch_file

    name = archive_name(url)
    target = Path(os.path.abspath(target))
    _check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AsrctlError("ASRCTL-E040", f"cannot create {target.parent}: {exc.strerror}") from None
    downloads = target.parent / f".{target.name}.download"
    got = fetch_file(
        url,
        downloads,
        filename=name,
        sha256=sha256,
        ca_bundle=ca_bundle,
        out=out,
        retries=retries,
        timeout=timeout,
        require_digest=require_digest,
        backoff=backoff,
        magic=GZIP,
        local_sums=False,
    )
    recorded = _recorded(target)
    if recorded.get("sha256") == got.sha256 and target.is_dir():
        tree = open_tree(target)
        return _summary(target, url, got.sha256, got.source, got.verified, False, tree)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as tmp:
        new = Path(tmp) / "tree"
        extract(got.path, new, expected_sha256=got.sha256, out=out)
        tree = open_tree(new)
        for ref in tree.refs:  # every list must parse before the old tree goes
            tree.load(ref)
        _record_source(new, name, {"url": redact.redact(url), "sha256": got.sha256, "source": got.source})
        os.chmod(new, 0o755)
        with shielded():  # the old tree or the new one, whatever signal comes
            if target.exists():
                if not exchange(new, target):
                    old = Path(tmp) / "old"
                    os.rename(target, old)
                    os.rename(new, target)
            else:
                os.rename(new, target)
        with contextlib.suppress(OSError):
            remove_tree(Path(tmp) / "tree")
    LOG.info("kernel lists from %s (sha256 %s) in %s", url, got.sha256, target)
    return _summary(target, url, got.sha256, got.source, got.verified, True, open_tree(target))


def _summary(
    target: Path, url: str, digest: str, source: str, verified: bool, changed: bool, tree: Any
) -> dict[str, Any]:
    builds = sorted({f"{r.scenario}/{r.build}" for r in tree.refs})
    return {
        "directory": str(target),
        "url": url,
        "sha256": digest,
        "source": source,
        "verified": verified,
        "changed": changed,
        "lists": len(tree.refs),
        "builds": builds,
        "tags": tree.tags(),
        "ignored": [{"path": p, "reason": r} for p, r in tree.ignored],
    }
