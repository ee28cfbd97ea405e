"""The ``--root`` mapping: every path asrctl reads or writes itself goes through :class:`Paths`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from asrctl.errors import AsrctlError


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def for_root(cls, root: str | os.PathLike[str] | None) -> Paths:
        """Validate ``--root`` and build the mapping. A bad root is a usage error, never a traceback."""
        raw = os.fspath(root) if root else "/"
        path = Path(raw)
        if not path.exists():
            raise AsrctlError("ASRCTL-E012", f"--root {raw}: no such directory")
        if not path.is_dir():
            raise AsrctlError("ASRCTL-E012", f"--root {raw}: not a directory")
        if not os.access(path, os.R_OK | os.X_OK):
            raise AsrctlError("ASRCTL-E012", f"--root {raw}: not readable")
        return cls(path.resolve())

    @property
    def sandboxed(self) -> bool:
        return self.root != Path(self.root.anchor)

    def host(self, path: str | os.PathLike[str]) -> Path:
        """Map an absolute target-system path (``/usr/local/ASR``) to where it lives under the root.

        Paths that are already under the root (vendor tools write host paths into their own files, e.g.
        ``INSTALLATION_DIR``) are returned unchanged.
        """
        p = Path(path)
        if not self.sandboxed:
            return p
        try:
            p.relative_to(self.root)
            return p
        except ValueError:
            pass
        rel = (
            PurePosixPath(os.fspath(path).replace("\\", "/")).relative_to("/")
            if os.fspath(path).startswith(("/", "\\"))
            else PurePosixPath(os.fspath(path))
        )
        return self.root.joinpath(*rel.parts)

    # Well-known locations (Linux). Windows ones live in the Windows backend.
    @property
    def state_dir(self) -> Path:
        if sys.platform == "win32" and not self.sandboxed:
            # Under %ProgramData%, whose default ACL lets only Administrators and SYSTEM create subfolders there.
            return Path(os.environ.get("ProgramData", r"C:\ProgramData")) / "asrctl"
        return self.host("/var/lib/asrctl")

    def run_dir(self, run_id: str) -> Path:
        """asrctl's private directory of one run (0700, removed with the run): where Microsoft's tools write their
        extended-errors and summary JSON files."""
        return self.state_dir / "runs" / run_id

    @property
    def log_dir(self) -> Path:
        return self.host("/var/log")

    @property
    def default_bundle_dir(self) -> Path:
        return self.host("/var/lib/asrctl/bundles")
