"""Kernel release strings (``uname -r``): which are acceptable, how they order, which are nearest.

A kernel string reaches file names (``/lib/modules/<k>``, ``involflt.ko.<k>``), argv (``depmod -a <k>``) and
lookups in Microsoft's lists, so it is checked once, here, before anything uses it: ASCII letters, digits and
``. _ + ~ -`` only, starting with a digit, no ``..``, at most 128 characters. Nothing is ever rewritten.

Order is the one a package manager uses for kernel versions (``rpmvercmp``-like): runs of digits compare as
numbers (Debian's ABI numbers: ``6.1.0-9`` < ``6.1.0-13``), runs of letters as text, a number is newer than
letters, ``~`` older than anything, and separators only separate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from asrctl.errors import AsrctlError

MAX_LEN = 128
_ALLOWED = re.compile(r"[0-9][A-Za-z0-9._+~-]*")
_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+|~")
# The flavour: the letters after the last ABI number (``-azure``, ``-cloud-amd64``, ``-default``); RHEL-style
# kernels (``.el8_10.x86_64``) have none.
_FLAVOUR = re.compile(r"-([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)$")

Key = tuple[tuple[int, int | str], ...]


def problem(kernel: str) -> str | None:
    """Why ``kernel`` is not an acceptable kernel release string, or None when it is."""
    if not kernel:
        return "it is empty"
    if len(kernel) > MAX_LEN:
        return f"it is longer than {MAX_LEN} characters"
    if any(c.isspace() for c in kernel):
        return "it contains white space"
    if ".." in kernel:
        return "it contains '..'"
    if "/" in kernel or "\\" in kernel:
        return "it contains a path separator"
    if not kernel.isascii() or _ALLOWED.fullmatch(kernel) is None:
        return "it must start with a digit and hold only ASCII letters, digits and . _ + ~ -"
    return None


def require(kernel: str, what: str = "kernel") -> str:
    """``kernel`` itself when acceptable; ``ASRCTL-E093`` naming what is wrong otherwise."""
    why = problem(kernel)
    if why is not None:
        raise AsrctlError("ASRCTL-E093", f"{what} {kernel!r} is not a kernel release string: {why}", kernel=kernel)
    return kernel


def key(kernel: str) -> Key:
    """The ordering key (module docstring)."""
    out: list[tuple[int, int | str]] = []
    for token in _TOKEN.findall(kernel):
        if token == "~":
            out.append((0, 0))
        elif token.isdigit():
            out.append((2, int(token)))
        else:
            out.append((1, token))
    out.append((0, 1))  # the end: after "~" (6.12.43~rc1 < 6.12.43), before any more digits or letters
    return tuple(out)


def newest(kernels: Iterable[str]) -> str | None:
    """The newest kernel by :func:`key` (the string breaks ties), or None."""
    found = sorted(kernels, key=lambda k: (key(k), k))
    return found[-1] if found else None


def flavour(kernel: str) -> str:
    """``5.15.0-1090-azure`` → ``azure``, ``6.1.0-41-cloud-amd64`` → ``cloud-amd64``, RHEL kernels → ``""``."""
    m = _FLAVOUR.search(kernel)
    return m.group(1) if m else ""


def nearest(kernel: str, candidates: Iterable[str], per_side: int = 2) -> list[str]:
    """Up to ``per_side`` kernels of ``candidates`` just below and just above ``kernel`` in version order, of the
    same flavour (an ``-azure`` kernel is not a neighbour of a ``-generic`` one), oldest first."""
    want = flavour(kernel)
    same = sorted({c for c in candidates if flavour(c) == want and c != kernel}, key=lambda k: (key(k), k))
    mine = key(kernel)
    below = [c for c in same if key(c) < mine][-per_side:]
    above = [c for c in same if key(c) >= mine][:per_side]
    return below + above
