"""Bundle digests: SHA256SUMS files in the GNU coreutils format, and the policy for when a digest is missing.

``SHA256SUMS`` beside the bundles is exactly what ``sha256sum`` writes and ``sha256sum -c`` reads: one line per
file, ``<64 hex digits><space><space or *><file name>``; a line starting with a backslash has its name escaped
(``\\\\`` for a backslash, ``\\n`` for a newline). The BSD form ``SHA256 (<name>) = <hex>`` (``sha256sum --tag``)
is read too. ``asrctl bundles checksum DIR`` writes the file on the staging host; every verb that uses a bundle
checks it against the file (or against ``--sha256 HEX``) before anything from the bundle is used.

Policy: verify whenever a digest is available; when none is, warn loudly and say how to make one;
``--require-digest`` (``ASRCTL_REQUIRE_DIGEST=1``) turns a missing digest into ``ASRCTL-E031``. A mismatch is
always ``ASRCTL-E030``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from asrctl.errors import AsrctlError

if TYPE_CHECKING:
    from asrctl.output import Output

SUMS_NAME = "SHA256SUMS"
SOURCE_OPTION = "--sha256"
SOURCE_SUMS = "SHA256SUMS beside the bundle"
MAX_SUMS_BYTES = 1 << 20  # a SHA256SUMS file is a few lines; anything this big is not one
READ_SIZE = 1 << 20

_HEX = re.compile(r"[0-9a-fA-F]{64}")
_GNU_LINE = re.compile(r"(\\?)([0-9a-fA-F]{64}) [ *](.+)")
_BSD_LINE = re.compile(r"(\\?)SHA256 \((.+)\) = ([0-9a-fA-F]{64})")


class Progress(Protocol):
    """What hashing reports to: a progress bar's handle (``Output.progress``)."""

    def advance(self, n: int) -> None: ...


@dataclass(frozen=True)
class DigestPolicy:
    """Where the expected digest may come from and whether its absence is an error."""

    sha256: str | None = None
    require: bool = False

    def __post_init__(self) -> None:
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", normalize_hex(self.sha256))


@dataclass(frozen=True)
class VerifyOutcome:
    path: Path
    digest: str  # the bundle's actual SHA-256
    source: str  # where the expected digest came from, or why there was none
    verified: bool  # True only when an expected digest existed and matched

    def as_json(self) -> dict[str, object]:
        return {"path": str(self.path), "sha256": self.digest, "source": self.source, "verified": self.verified}


def normalize_hex(value: str) -> str:
    """A SHA-256 given by a person: 64 hex digits, either case, surrounding blanks ignored."""
    text = value.strip()
    if not _HEX.fullmatch(text):
        raise AsrctlError(
            "ASRCTL-E002",
            f"--sha256 {value!r} is not a SHA-256 digest (64 hex digits)",
            remedy="Copy the digest from SHA256SUMS or from `sha256sum BUNDLE` on the staging host.",
        )
    return text.lower()


# --- computing ----------------------------------------------------------------------------------------------


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """The SHA-256 of a file, read in 1 MB pieces; ``progress.advance(n)`` is called after each piece."""
    h = hashlib.sha256()
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    from asrctl.system import rootfs

    try:
        opened = rootfs.open_host(path)  # a regular file, opened non-blocking: a FIFO never hangs the hash
    except rootfs.Refused as exc:
        raise AsrctlError("ASRCTL-E033", f"{path}: {exc.reason}", path=str(path)) from None
    if opened is None:
        raise AsrctlError("ASRCTL-E022", f"{path}: no such file", path=str(path))
    try:
        with opened, open(opened.fd, "rb", buffering=0, closefd=False) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
                if progress is not None:
                    progress.advance(n)
    except OSError as exc:
        raise AsrctlError("ASRCTL-E033", f"{path}: cannot read: {exc.strerror}", path=str(path)) from None
    return h.hexdigest()


# --- SHA256SUMS ---------------------------------------------------------------------------------------------


def _unescape(name: str) -> str:
    out: list[str] = []
    it = iter(name)
    for ch in it:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(it, "")
        if nxt == "\\":
            out.append("\\")
        elif nxt == "n":
            out.append("\n")
        elif nxt == "r":
            out.append("\r")
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return "".join(out)


def _escape(name: str) -> tuple[str, str]:
    """(prefix, name) as sha256sum writes them: names with a backslash or newline get a leading backslash."""
    if "\\" not in name and "\n" not in name and "\r" not in name:
        return "", name
    return "\\", name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def parse_sums(text: str, where: str) -> dict[str, str]:
    """File name → lowercase hex from the text of a SHA256SUMS file; ``ASRCTL-E035`` naming the line if one
    is malformed or a name is listed twice with different digests."""
    sums: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        m = _GNU_LINE.fullmatch(line)
        if m:
            escaped, hexd, name = m.group(1), m.group(2), m.group(3)
        else:
            m = _BSD_LINE.fullmatch(line)
            if not m:
                raise AsrctlError(
                    "ASRCTL-E035",
                    f"{where}, line {number}: not a SHA-256 line ('<64 hex digits>  <file name>'): {line[:80]!r}",
                    path=where,
                    line=number,
                )
            escaped, name, hexd = m.group(1), m.group(2), m.group(3)
        if escaped:
            try:
                name = _unescape(name)
            except ValueError as exc:
                raise AsrctlError("ASRCTL-E035", f"{where}, line {number}: {exc}", path=where, line=number) from None
        hexd = hexd.lower()
        if name.startswith("./"):
            name = name[2:]
        if sums.get(name, hexd) != hexd:
            raise AsrctlError(
                "ASRCTL-E035",
                f"{where}, line {number}: {name} is listed twice with different digests",
                path=where,
                line=number,
            )
        sums[name] = hexd
    return sums


def read_sums(path: Path) -> dict[str, str]:
    """Parse a SHA256SUMS file (``ASRCTL-E035`` if it is malformed). A regular file only, opened non-blocking and
    read bounded: a FIFO named SHA256SUMS used to hang ``install`` and ``bundles verify`` forever."""
    from asrctl.system import rootfs

    try:
        data = rootfs.read_host(path, MAX_SUMS_BYTES)
    except rootfs.Refused as exc:
        why = f"larger than {MAX_SUMS_BYTES} bytes" if exc.kind == rootfs.TOO_LARGE else exc.reason
        raise AsrctlError("ASRCTL-E035", f"{path}: {why}", path=str(path)) from None
    if data is None:
        raise AsrctlError("ASRCTL-E035", f"{path}: no such file", path=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AsrctlError("ASRCTL-E035", f"{path}: not UTF-8 text", path=str(path)) from None
    return parse_sums(text, str(path))


def format_sums(sums: dict[str, str]) -> str:
    lines = []
    for name in sorted(sums):
        prefix, shown = _escape(name)
        lines.append(f"{prefix}{sums[name]}  {shown}\n")
    return "".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_sums(directory: Path, out: Output | None = None) -> Path:
    """Write ``DIR/SHA256SUMS`` for every bundle in DIR (what ``bundles list`` would find there), replacing the
    file atomically. Files whose name is not a bundle's, or that are not what their name says, are left out."""
    from asrctl.bundles.catalog import scan

    directory = Path(directory)
    if not directory.is_dir():
        raise AsrctlError("ASRCTL-E021", f"{directory}: no such directory", path=str(directory))
    catalog = scan([directory])
    if not catalog.bundles:
        raise AsrctlError(
            "ASRCTL-E020",
            f"no bundles in {directory}",
            remedy="Copy the Microsoft-ASR_UA_*_release.tar.gz (or .exe) bundles into the directory first.",
            path=str(directory),
        )
    sums: dict[str, str] = {}
    for bundle in sorted(catalog.bundles, key=lambda b: b.path.name):
        sums[bundle.path.name] = _hash_with_progress(bundle.path, out, f"Hashing {bundle.path.name}")
    target = directory / SUMS_NAME
    try:
        _write_atomic(target, format_sums(sums))
    except OSError as exc:
        raise AsrctlError("ASRCTL-E040", f"cannot write {target}: {exc.strerror}", path=str(target)) from None
    return target


def add_sum(directory: Path, filename: str, digest: str) -> Path:
    """Record one file's digest in ``DIR/SHA256SUMS``, keeping the other lines (used after a verified fetch)."""
    target = Path(directory) / SUMS_NAME
    sums = read_sums(target) if target.exists() else {}
    sums[filename] = normalize_hex(digest)
    _write_atomic(target, format_sums(sums))
    return target


def _hash_with_progress(path: Path, out: Output | None, description: str) -> str:
    if out is None:
        return sha256_file(path)
    with out.progress(description, path.stat().st_size) as progress:
        return sha256_file(path, progress)


# --- policy -------------------------------------------------------------------------------------------------


def expected_digest(bundle_path: Path, policy: DigestPolicy) -> tuple[str | None, str]:
    """The digest the bundle must have and where it came from (``"--sha256"`` or
    ``"SHA256SUMS beside the bundle"``); ``(None, why)`` when there is none, or ``ASRCTL-E031`` when the
    policy requires one. ``--sha256`` wins: SHA256SUMS is not read then (so it is the way past a broken one);
    a malformed SHA256SUMS is ``ASRCTL-E035`` otherwise."""
    bundle_path = Path(bundle_path)
    if policy.sha256 is not None:
        return policy.sha256, SOURCE_OPTION
    sums_path = bundle_path.parent / SUMS_NAME
    present = os.path.lexists(sums_path)
    listed = read_sums(sums_path).get(bundle_path.name) if present else None
    if listed is not None:
        return listed, SOURCE_SUMS
    why = (
        f"{sums_path} has no line for {bundle_path.name}"
        if present
        else f"no {SUMS_NAME} beside the bundle and no --sha256"
    )
    if policy.require:
        raise AsrctlError(
            "ASRCTL-E031",
            f"{bundle_path.name}: no digest to verify it against ({why}); --require-digest is set",
            bundle=str(bundle_path),
        )
    return None, why


def unverified_warning(bundle_path: Path, why: str) -> str:
    """The loud warning for a bundle used without a digest, with what to do about it."""
    bundle_path = Path(bundle_path)
    return (
        f"NOT VERIFIED: {bundle_path.name} has no digest ({why}). Anyone who could change the file could run "
        f"code as root here. On the staging host run `asrctl bundles checksum {bundle_path.parent}` and copy "
        f"{SUMS_NAME} along with the bundle, or pass --sha256 HEX; --require-digest (ASRCTL_REQUIRE_DIGEST=1) "
        "makes this an error."
    )


def mismatch_error(bundle_path: Path, expected: str, actual: str, source: str | None = None) -> AsrctlError:
    """``ASRCTL-E030`` naming both digests (and where the expected one came from, when known)."""
    bundle_path = Path(bundle_path)
    origin = f" (from {source})" if source else ""
    err = AsrctlError(
        "ASRCTL-E030",
        f"{bundle_path.name}: SHA-256 is {actual}, expected {expected}{origin}",
        bundle=str(bundle_path),
        expected=expected,
        actual=actual,
    )
    if source:
        err.details["source"] = source
    return err


def verify_bundle(bundle_path: Path, policy: DigestPolicy, out: Output | None) -> VerifyOutcome:
    """Hash the bundle and compare. ``ASRCTL-E030`` on a mismatch; a warning on ``out`` when there is no digest
    (``ASRCTL-E031`` instead with ``policy.require``)."""
    bundle_path = Path(bundle_path)
    expected, source = expected_digest(bundle_path, policy)
    actual = _hash_with_progress(bundle_path, out, f"Verifying {bundle_path.name}")
    if expected is None:
        if out is not None:
            out.warn(unverified_warning(bundle_path, source))
        return VerifyOutcome(bundle_path, actual, source, verified=False)
    if actual != expected:
        raise mismatch_error(bundle_path, expected, actual, source)
    return VerifyOutcome(bundle_path, actual, source, verified=True)
