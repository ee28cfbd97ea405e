"""``extract()``: one pass over the bundle that hashes, inflates, parses and writes, and the rename into place.

Each chunk read goes to a hashing thread and to the inflater; the inflated tar stream is parsed on this thread and
the parser's operations are carried out by writer threads (directories on this thread, before anything is queued
for them). Memory stays constant (bounded queues of bounded chunks) whatever the bundle size. Everything lands in
a fresh private staging directory (0700) beside ``dest``; only when the stream has ended cleanly, the
decompressor's own checks held and the SHA-256 of the file matches is the staging directory renamed to ``dest``.
Any failure, Ctrl-C and SIGTERM included, stops and joins the threads and removes the staging directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asrctl.bundles.digest import Progress, mismatch_error, normalize_hex
from asrctl.bundles.extract.fsops import make_staging, open_bundle, remove_tree, rename_noreplace
from asrctl.bundles.extract.inflate import inflater_for
from asrctl.bundles.extract.limits import DEFAULT_LIMITS, Limits
from asrctl.bundles.extract.tarstream import Op, TarParser
from asrctl.bundles.extract.writer import Router, TreeWriter, Worker
from asrctl.bundles.formats import EXPECTED, SNIFF_BYTES, describe, sniff
from asrctl.errors import AsrctlError
from asrctl.system.signals import shielded

if TYPE_CHECKING:
    from asrctl.output import Output

LOG = logging.getLogger("asrctl.extract")

READ_SIZE = 256 << 10  # compressed bytes per read (and per hashing item)
HASH_QUEUE = 16  # items in flight to the hashing thread (16 x 256 KB)
WRITE_QUEUE = 6  # batches in flight to each writer thread (each refers to at most one 1 MB chunk)
WRITERS = 2  # writer threads


@dataclass(frozen=True)
class Extracted:
    path: Path
    sha256: str
    members: int
    bytes: int
    format: str = ""  # gzip | lzma | xz | tar, from the file's first bytes


def extract(
    bundle_path: Path,
    dest: Path,
    *,
    expected_sha256: str | None,
    out: Output | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Extracted:
    """Verify and unpack ``bundle_path`` into ``dest``, which must not exist yet (``ASRCTL-E037``).

    With ``expected_sha256`` the digest is checked before ``dest`` appears (``ASRCTL-E030`` on a mismatch);
    without it the digest is still computed and returned, and deciding whether that is acceptable is the
    caller's business (see :mod:`asrctl.bundles.digest`). ``dest`` ends up mode 0700.
    """
    bundle_path = Path(bundle_path)
    dest = Path(os.path.abspath(dest))
    expected = None if expected_sha256 is None else normalize_hex(expected_sha256)
    if os.path.lexists(dest):
        raise AsrctlError("ASRCTL-E037", f"{dest} already exists", path=str(dest))
    if not dest.parent.is_dir():
        raise AsrctlError(
            "ASRCTL-E002",
            f"{dest.parent} does not exist (the parent of the destination)",
            remedy="Create the parent directory first, or choose a destination inside an existing directory.",
        )
    fd = open_bundle(bundle_path)
    try:
        size = os.fstat(fd).st_size
        fmt = _format(fd, bundle_path)
        staging = make_staging(dest)
        try:
            what = "Verifying and unpacking" if expected else "Unpacking"
            with _progress(out, f"{what} {bundle_path.name}", size) as progress:
                try:
                    members, nbytes, digest = _Extraction(fd, staging, limits, progress.advance, fmt).run()
                except AsrctlError as exc:
                    raise _named(exc, bundle_path, fmt) from None
            if expected is not None and digest != expected:
                raise mismatch_error(bundle_path, expected, digest)
            with shielded():  # a signal now is delivered once dest is whole
                rename_noreplace(staging, dest)
        except BaseException:
            remove_tree(staging)
            raise
    finally:
        os.close(fd)
    LOG.info(
        "unpacked %s (%s) into %s: %d members, %d bytes, sha256 %s", bundle_path, fmt, dest, members, nbytes, digest
    )
    return Extracted(path=dest, sha256=digest, members=members, bytes=nbytes, format=fmt)


def _format(fd: int, bundle_path: Path) -> str:
    """gzip, lzma, xz or tar from the first bytes (the name says .tar.gz for all of them); anything else is
    ``ASRCTL-E033`` naming the file and what it starts with, before any directory is made."""
    head = os.pread(fd, SNIFF_BYTES, 0)
    fmt = sniff(head)
    if fmt is None:
        raise AsrctlError(
            "ASRCTL-E033",
            f"{bundle_path.name}: not a bundle format asrctl knows: it starts with {describe(head)}; a Linux bundle "
            f"is {EXPECTED}",
            path=str(bundle_path),
            head=head[:16].hex(),
        )
    return fmt


def _named(exc: AsrctlError, bundle_path: Path, fmt: str) -> AsrctlError:
    """A refusal from inside the stream, with the bundle's name (and format) in front."""
    if exc.code not in ("ASRCTL-E032", "ASRCTL-E033"):
        return exc
    named = AsrctlError(exc.code, f"{bundle_path.name} ({fmt}): {exc.message}", exc.remedy, **exc.details)
    named.details.setdefault("bundle", str(bundle_path))
    named.details.setdefault("format", fmt)
    return named


class _Quiet:
    def advance(self, n: int) -> None:
        pass


@contextlib.contextmanager
def _progress(out: Output | None, description: str, total: int) -> Iterator[Progress]:
    if out is None:
        yield _Quiet()
        return
    with out.progress(description, total) as handle:
        yield handle


class _Extraction:
    """One pass: read → (hash thread) + inflate → parse → route → writer threads."""

    def __init__(self, fd: int, staging: Path, limits: Limits, advance: Callable[[int], None], fmt: str) -> None:
        self.fd = fd
        self.staging = staging
        self.limits = limits
        self.advance = advance
        self.format = fmt

    def run(self) -> tuple[int, int, str]:
        sha = hashlib.sha256()
        hasher: Worker[bytes] = Worker("asrctl-sha256", sha.update, HASH_QUEUE)
        tree = TreeWriter(self.staging)  # directories, on this thread: they exist before anything goes in them
        files = [TreeWriter(self.staging) for _ in range(WRITERS)]
        writers: list[Worker[list[Op]]] = [
            Worker(f"asrctl-writer-{i}", w.apply, WRITE_QUEUE) for i, w in enumerate(files)
        ]
        route = Router(tree, len(writers))
        parser = TarParser(self.limits)
        inflater = inflater_for(self.format)
        workers: list[Worker[bytes] | Worker[list[Op]]] = [hasher, *writers]
        for w in workers:
            w.start()
        try:
            while chunk := os.read(self.fd, READ_SIZE):
                hasher.put(chunk)
                for piece in inflater.feed(chunk):
                    ops = parser.feed(piece)
                    if ops:
                        for writer, batch in zip(writers, route(ops), strict=True):
                            if batch:
                                writer.put(batch)
                for ww in writers:  # a writer that failed stops the whole extraction now, not at its next batch
                    ww.check()
                self.advance(len(chunk))
            inflater.finish()
            parser.finish()
            for w in workers:
                w.close()
            tree.finish(parser.dir_modes)
        except BaseException:
            with shielded(deliver=False):  # a second signal must not leave a writer running while we clean up
                for w in workers:
                    w.cancel()
            raise
        finally:
            for open_writer in (tree, *files):
                open_writer.close_fds()
        LOG.debug("inflated %s, wrote with %d threads", inflater.backend, len(writers))
        return parser.members, parser.total, sha.hexdigest()
