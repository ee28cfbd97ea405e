"""The asrctl log file: ``<root>/var/log/asrctl.log`` (Linux), ``%ProgramData%\\ASRSetupLogs\\asrctl.log`` (Windows).

``ASRCTL_LOG_FILE`` puts it elsewhere (a CI job collecting logs; tests that run a verb on the real root).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from asrctl.system.paths import Paths
from asrctl.system.redact import RedactingFormatter

LOGGER = logging.getLogger("asrctl")
# Without a handler, logging's last resort would print records to stderr; the file handler is the only sink.
LOGGER.addHandler(logging.NullHandler())
LOGGER.propagate = False


LOG_FILE_ENV = "ASRCTL_LOG_FILE"


def log_path(paths: Paths) -> Path:
    override = os.environ.get(LOG_FILE_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32" and not paths.sandboxed:
        base = os.environ.get("ProgramData", r"C:\ProgramData")
        return Path(base) / "ASRSetupLogs" / "asrctl.log"
    return paths.log_dir / "asrctl.log"


def setup(paths: Paths, create_dirs: bool) -> Path | None:
    """Attach the file handler. Read-only verbs pass ``create_dirs=False``: they log only where the log directory
    already exists, so pointing ``--root`` at someone's release tree never writes into it."""
    path = log_path(paths)
    if not create_dirs and not path.parent.is_dir():
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not _appendable(path):
            return None
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    detach()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    return path


def _appendable(path: Path) -> bool:
    """The log may be appended to: missing (it is created) or a regular file. Opening a FIFO for writing blocks
    until a reader comes, so a FIFO (or a directory, a device) where the log belongs means: no log this run."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISREG(st.st_mode)


def detach() -> None:
    """One file per run: a previous in-process run (tests, embedding) must not keep writing to its own file."""
    for old in [h for h in LOGGER.handlers if isinstance(h, logging.FileHandler)]:
        LOGGER.removeHandler(old)
        old.close()
