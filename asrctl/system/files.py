"""File access on the target machine, by path string: the seam the Windows backend reads and creates through.

The Windows backend handles the target's paths as strings (``C:\\Program Files (x86)\\...``, never ``pathlib``
arithmetic, which would use ``/`` on Linux), so it needs file access that takes such strings. :class:`LocalFiles`
is the machine asrctl runs on; the backend's tests hand it an in-memory Windows file system instead
(tests/fakes/windows.py).
"""

from __future__ import annotations

import os
from typing import Protocol

MAX_READ = 1024 * 1024  # the files read here are small config files; a huge one is not read whole


class Files(Protocol):
    def exists(self, path: str) -> bool: ...

    def read_text(self, path: str) -> str | None:
        """The text (at most MAX_READ characters; bad bytes replaced), or None when it cannot be read."""
        ...

    def makedirs(self, path: str) -> None: ...


class LocalFiles:
    """The local file system."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read(MAX_READ)
        except OSError:
            return None

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
