"""What an archive may hold at most, and the two ways the extractor refuses a file.

A bundle runs as root, so a refusal is never softened into a warning: an *unsafe* archive (``ASRCTL-E032``,
naming the member) is one built to do harm or that asrctl will not reproduce safely; a *corrupted* one
(``ASRCTL-E033``) is damaged or incomplete. Both leave nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from asrctl.errors import AsrctlError


@dataclass(frozen=True)
class Limits:
    """Ceilings that a hostile archive hits long before the disk fills; real bundles are far below them
    (a Mobility Service bundle has a few hundred members and under 1 GB unpacked)."""

    max_members: int = 50_000
    max_total_bytes: int = 8 << 30
    max_member_bytes: int = 4 << 30
    max_path_len: int = 1024


DEFAULT_LIMITS = Limits()


def unsafe(name: str, why: str) -> AsrctlError:
    """``ASRCTL-E032`` for the member ``name``."""
    return AsrctlError("ASRCTL-E032", f"member {name!r}: {why}; nothing was unpacked", member=name)


def corrupt(message: str, **details: object) -> AsrctlError:
    """``ASRCTL-E033``: the file is damaged or incomplete."""
    return AsrctlError("ASRCTL-E033", message, None, **details)
