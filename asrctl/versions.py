"""Version numbers: the one place that reads them and orders them.

Bundle names, the support matrix, the installed agent's version file and package file names all carry dotted
numbers; each used to be read by its own helper. They are read here, and only ASCII ``0-9`` counts as a digit:
``str.isdigit()``, ``int()`` and ``re``'s ``\\d`` also accept other scripts' digits (``"٥"`` is 5 to ``int``), so a
name like ``9.6٥`` would otherwise pass for version 9.65 and be ordered, chosen and installed as one.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[0-9]+")
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_DOTTED = re.compile(r"[0-9]+(?:\.[0-9]+)+")

Key = tuple[int, ...]


class VersionError(ValueError):
    """Text that is not a version: dot-separated runs of the ASCII digits 0-9."""


def is_number(text: str) -> bool:
    """``text`` is one or more ASCII digits, nothing else."""
    return _NUMBER.fullmatch(text) is not None


def parse(text: str) -> Key:
    """A whole version, strictly: ``"9.66.7567.1"`` → ``(9, 66, 7567, 1)``; anything else raises ``VersionError``."""
    if _VERSION.fullmatch(text) is None:
        raise VersionError(f"{text!r} is not a version (numbers of the digits 0-9, separated by dots)")
    return tuple(int(part) for part in text.split("."))


def key(text: str) -> Key:
    """An ordering key for a version that may carry a suffix (``"15-SP5"`` → ``(15,)``, ``"1.2rc1"`` → ``(1, 2)``):
    its leading dot-separated numbers. The first part that does not start with an ASCII digit ends it, so a
    non-ASCII digit is never read as a number."""
    parts: list[int] = []
    for piece in text.split("."):
        found = _NUMBER.match(piece)
        if found is None:
            break
        parts.append(int(found.group()))
        if found.end() != len(piece):
            break
    return tuple(parts)


def find(text: str) -> str | None:
    """The first dotted version inside a longer text, such as a package file name
    (``WALinuxAgent-2.9.1.1-1.el8.noarch.rpm`` → ``2.9.1.1``); None when there is none."""
    found = _DOTTED.search(text)
    return found.group() if found else None


def release_cmp(installed: str, bundle: str) -> int:
    """-1, 0 or 1: an installed Mobility Service version against a bundle's. Bundle names sometimes say
    9.65.0.0 for 9.65.7417.1, so a bundle version ending in .0.0 compares on major.minor only."""
    a, b = key(installed), key(bundle)
    if len(b) >= 4 and b[2:] == (0, 0):
        a, b = a[:2], b[:2]
    return (a > b) - (a < b)


def same_release(a: str, b: str) -> bool:
    """Two versions of the same release: equal, or one is Microsoft's ``x.y.0.0`` name for a whole release and
    they agree on major.minor (the rule :func:`release_cmp` applies to bundle names, made symmetric)."""
    ka, kb = key(a), key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    if any(len(k) >= 4 and k[2:] == (0, 0) for k in (ka, kb)):
        return ka[:2] == kb[:2]
    return False


def version_jump(installed: str, target: str) -> int:
    """How many minor versions an upgrade jumps (9.62 → 9.66 is 4); 0 across majors or for unreadable versions.
    Microsoft supports at most 4 (N-4)."""
    a, b = key(installed), key(target)
    if len(a) < 2 or len(b) < 2 or a[0] != b[0]:
        return 0
    return b[1] - a[1]
