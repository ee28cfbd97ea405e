"""Passphrase sources: ``--passphrase-file``, ``--passphrase-stdin``, ``ASRCTL_PASSPHRASE``. Never argv.

The value is registered for redaction the moment it is read. The vendor configurator takes a *file* (``-P``):
the operator's own file is handed over as it is; a passphrase from stdin or the environment is written to a
private file (0600 in a 0700 directory under the state dir) that is removed when the run ends.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from asrctl.errors import AsrctlError
from asrctl.system import redact

ENV_VAR = "ASRCTL_PASSPHRASE"
MAX_LEN = 4096


@dataclass(frozen=True)
class Passphrase:
    value: str
    source: str  # "file" | "stdin" | "env"
    path: Path | None = None  # the operator's file, when the source is a file

    def __repr__(self) -> str:  # never the value, not even in a traceback
        return f"Passphrase(source={self.source!r}, path={self.path!r})"


def _normalize(raw: str, where: str) -> str:
    value = raw[:-2] if raw.endswith("\r\n") else raw[:-1] if raw.endswith("\n") else raw
    if not value.strip():
        raise AsrctlError("ASRCTL-E050", f"the passphrase from {where} is empty")
    if "\n" in value:
        raise AsrctlError("ASRCTL-E050", f"the passphrase from {where} has more than one line")
    if len(value) > MAX_LEN:
        raise AsrctlError("ASRCTL-E050", f"the passphrase from {where} is longer than {MAX_LEN} characters")
    redact.register(value)
    return value


def from_file(path: Path, insecure_ok: bool = False) -> Passphrase:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AsrctlError("ASRCTL-E050", f"passphrase file {path}: no such file") from None
    except OSError as exc:
        raise AsrctlError("ASRCTL-E050", f"passphrase file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AsrctlError("ASRCTL-E050", f"passphrase file {path} is not a regular file")
    if os.name == "posix" and st.st_mode & 0o077 and not insecure_ok:
        raise AsrctlError(
            "ASRCTL-E049",
            f"passphrase file {path} is readable or writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}",
        )
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AsrctlError("ASRCTL-E050", f"cannot read passphrase file {path}: {exc}") from None
    return Passphrase(_normalize(raw, str(path)), "file", path)


def from_stdin(stream: TextIO | None = None) -> Passphrase:
    stream = stream or sys.stdin
    if stream.isatty():
        import getpass

        raw = getpass.getpass("Configuration server passphrase: ")
    else:
        raw = stream.readline()
    return Passphrase(_normalize(raw, "standard input"), "stdin")


def obtain(
    file: str | None,
    use_stdin: bool,
    environ: Mapping[str, str],
    insecure_ok: bool = False,
    stream: TextIO | None = None,
) -> Passphrase | None:
    """The one passphrase source given, or None. Two sources at once is a usage error."""
    env_value = environ.get(ENV_VAR)
    given = [name for name, on in (("--passphrase-file", file), ("--passphrase-stdin", use_stdin)) if on]
    if len(given) > 1:
        raise AsrctlError("ASRCTL-E002", "give only one of --passphrase-file and --passphrase-stdin")
    if file:
        return from_file(Path(file), insecure_ok)
    if use_stdin:
        return from_stdin(stream)
    if env_value is not None:
        return Passphrase(_normalize(env_value, ENV_VAR), "env")
    return None


def private_path(state_dir: Path, run_id: str) -> Path:
    """Where a passphrase from stdin or the environment is put for the vendor tool during one run."""
    return state_dir / "private" / run_id / "passphrase"


def write_private(passphrase: Passphrase, target: Path) -> Path:
    """Write the passphrase to ``target`` (0600) in a fresh 0700 directory. Fails if it exists."""
    target.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.parent.mkdir(mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(passphrase.value)
    return target
