"""Paths and messages shared by the build driver, the floor report and the layer reader."""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def log(message: str) -> None:
    print(f"[binary] {message}", flush=True)


def fail(message: str) -> SystemExit:
    """The build's one way to stop: a message, exit status 1, no traceback (every failure here is about the
    build host or the input, and the message says which)."""
    return SystemExit(f"[binary] error: {message}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
