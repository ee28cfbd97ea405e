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

    def inside(self, path: str | os.PathLike[str], what: str) -> Path:
        """The host path of ``path`` — a target-system path (``--install-dir /opt/asr``) or a host path a vendor file
        wrote (``INSTALLATION_DIR=<root>/usr/local/ASR/Vx``) — *only if it stays inside the root*; ``ASRCTL-E115``
        otherwise. Every path built from an input or a vendor file goes through here before asrctl uses it or hands
        it to a vendor tool (which runs on the host, not in a chroot):

        - ``..`` is resolved lexically and may not climb above the root (``/../../x`` is refused, not clamped:
          such a path is a mistake or an attack, never what someone meant);
        - the host resolves the existing part of the path (its symbolic links) to a place under the root's own
          real path, so a link to ``/etc`` — relative or absolute — is refused too.

        ``what`` names the path in the error ("--install-dir", "INSTALLATION_DIR in /usr/local/.vx_version").
        On the real root every path is inside; only ``..`` above ``/`` and a relative path are refused."""
        raw = os.fspath(path).replace("\\", "/") if self.sandboxed or os.name != "nt" else os.fspath(path)
        if not self.sandboxed and os.name == "nt":
            return Path(raw)
        root_text = self.root.as_posix().rstrip("/")
        rel = raw
        if self.sandboxed and (raw == root_text or raw.startswith(root_text + "/")):
            rel = raw[len(root_text) :] or "/"
        if not rel.startswith("/"):
            raise _outside(what, raw, "it is not an absolute path")
        parts: list[str] = []
        for name in rel.split("/"):
            if name in ("", "."):
                continue
            if name == "..":
                if not parts:
                    raise _outside(what, raw, "'..' leads out of the root")
                parts.pop()
                continue
            parts.append(name)
        host = self.root.joinpath(*parts)
        if self.sandboxed:
            real_root = os.path.realpath(self.root)
            real = os.path.realpath(host)
            if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
                raise _outside(what, raw, f"a symbolic link leads out of the root (to {real})")
        return host

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


def _outside(what: str, raw: str, why: str) -> AsrctlError:
    return AsrctlError("ASRCTL-E115", f"{what} {raw!r} is refused: {why}", path=raw)
