"""Find bundles in the bundle directories and choose the one a host uses."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asrctl.bundles.formats import EXE_MAGIC, EXPECTED, SNIFF_BYTES, describe, sniff
from asrctl.bundles.names import BundleName, BundleNameError, looks_like_bundle, parse
from asrctl.errors import AsrctlError
from asrctl.system.paths import Paths

EXE = "exe"


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: BundleName
    # gzip | lzma | xz | tar from the first bytes (Microsoft names them all .tar.gz), "exe" for Windows;
    # None for a Bundle made without looking at the file.
    format: str | None = None

    @property
    def version(self) -> str:
        return self.name.version

    @property
    def os_tag(self) -> str:
        return self.name.os_tag


@dataclass(frozen=True)
class Ignored:
    path: Path
    reason: str


@dataclass(frozen=True)
class Catalog:
    bundles: tuple[Bundle, ...]
    ignored: tuple[Ignored, ...]
    dirs: tuple[Path, ...]

    def for_tag(self, tag: str) -> list[Bundle]:
        """Bundles for ``tag``, newest first."""
        found = [b for b in self.bundles if b.name.matches_tag(tag)]
        return sorted(found, key=lambda b: b.name.sort_key, reverse=True)

    def newest_for(self, tag: str) -> Bundle | None:
        found = self.for_tag(tag)
        return found[0] if found else None


def default_dirs(paths: Paths) -> list[Path]:
    """``bundles/`` next to the executable, then ``<root>/var/lib/asrctl/bundles`` (CLI contract)."""
    from asrctl.system.childenv import launched_executable

    beside: Path | None = None
    exe = launched_executable()  # the file the operator ran, not the binary's unpacked copy of Python
    if exe is not None:
        beside = exe.resolve().parent / "bundles"
    elif sys.argv and Path(sys.argv[0]).name in ("asrctl", "asrctl.exe"):
        # The console script; ``python -m asrctl`` has no executable of its own to sit beside.
        beside = Path(sys.argv[0]).resolve().parent / "bundles"
    return [p for p in (beside, paths.default_bundle_dir) if p is not None]


def resolve_dirs(given: Sequence[str], paths: Paths) -> tuple[list[Path], bool]:
    """The bundle dirs to search and whether the operator named them (then each must exist)."""
    if given:
        dirs = []
        for raw in given:
            p = Path(raw)
            if not p.exists():
                raise AsrctlError("ASRCTL-E021", f"bundle dir {raw}: no such directory")
            if not p.is_dir():
                raise AsrctlError("ASRCTL-E021", f"bundle dir {raw}: not a directory")
            dirs.append(p)
        return dirs, True
    return default_dirs(paths), False


def _sniff(path: Path, kind: str) -> tuple[str | None, str | None]:
    """(format, None) for a file that starts like what its name says, else (None, why). Reads the first 512
    bytes, never more: `bundles list` stays cheap on a share full of large bundles."""
    try:
        if not path.is_file():
            return None, "not a regular file"
        size = path.stat().st_size
        if size == 0:
            return None, "empty file (0 bytes)"
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror}"
    if kind != "linux":
        return (EXE, None) if head.startswith(EXE_MAGIC) else (None, "not a Windows executable")
    fmt = sniff(head)
    if fmt is None:
        return None, f"not a bundle format asrctl knows: it starts with {describe(head)}; a Linux bundle is {EXPECTED}"
    return fmt, None


def scan(dirs: Iterable[Path]) -> Catalog:
    bundles: list[Bundle] = []
    ignored: list[Ignored] = []
    seen: set[Path] = set()
    searched: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            continue
        searched.append(d)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            raise AsrctlError("ASRCTL-E021", f"bundle dir {d}: {exc.strerror}") from None
        for entry in entries:
            if not looks_like_bundle(entry.name):
                continue
            path = Path(entry.path)
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                name = parse(entry.name)
            except BundleNameError as exc:
                ignored.append(Ignored(path, str(exc)))
                continue
            fmt, why = _sniff(path, name.kind)
            if why:
                ignored.append(Ignored(path, why))
                continue
            bundles.append(Bundle(path, name, fmt))
    return Catalog(tuple(bundles), tuple(ignored), tuple(searched))


def load_bundle(path: Path) -> Bundle:
    """A bundle the operator named explicitly: it must parse and look like what its name says."""
    if not path.exists():
        raise AsrctlError("ASRCTL-E022", f"{path}: no such file")
    try:
        name = parse(path.name)
    except BundleNameError as exc:
        raise AsrctlError("ASRCTL-E022", f"{path.name}: {exc}") from None
    fmt, why = _sniff(path, name.kind)
    if why:
        raise AsrctlError("ASRCTL-E033", f"{path.name}: {why}")
    return Bundle(path, name, fmt)
