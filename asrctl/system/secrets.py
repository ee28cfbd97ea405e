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
    """The passphrase in ``path``: a regular file (a FIFO is refused, never waited on), opened non-blocking, its
    mode checked on the open descriptor, and at most :data:`MAX_LEN` characters read — a 1 GB file is refused from
    its size, without reading it (it used to be read whole: 2.1 GB of memory before the refusal)."""
    from asrctl.system import rootfs

    try:
        opened = rootfs.open_host(path)
    except rootfs.Refused as exc:
        raise AsrctlError("ASRCTL-E050", f"passphrase file {path} {exc.reason}") from None
    if opened is None:
        raise AsrctlError("ASRCTL-E050", f"passphrase file {path}: no such file")
    with opened:
        mode = os.fstat(opened.fd).st_mode
        if os.name == "posix" and mode & 0o077 and not insecure_ok:
            raise AsrctlError(
                "ASRCTL-E049",
                f"passphrase file {path} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
            )
        try:
            # UTF-8 takes up to 4 bytes a character, plus a line ending.
            raw = opened.read(MAX_LEN * 4 + 2).decode("utf-8")
        except rootfs.Refused:
            raise AsrctlError(
                "ASRCTL-E050", f"passphrase file {path} is larger than a passphrase can be ({MAX_LEN} characters)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AsrctlError("ASRCTL-E050", f"cannot read passphrase file {path}: {exc}") from None
    return Passphrase(_normalize(raw, str(path)), "file", path)


def from_stdin(stream: TextIO | None = None) -> Passphrase:
    stream = stream or sys.stdin
    if stream.isatty():
        import getpass

        raw = getpass.getpass("Configuration server passphrase: ")
    else:
        # One line, bounded: a stream that never ends a line (cat /dev/zero |) is refused, not read into memory.
        raw = stream.readline(MAX_LEN + 3)
        if len(raw) > MAX_LEN + 2:
            raise AsrctlError("ASRCTL-E050", f"the passphrase from standard input is longer than {MAX_LEN} characters")
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
