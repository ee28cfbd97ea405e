"""Secrets never reach argv, logs, JSON, the journal or an error message, and masking them never corrupts anything.

Every secret asrctl learns (a passphrase) is registered here the moment it is read. Two functions mask it
wherever data leaves the process:

- :func:`redact_data` walks dicts, lists and tuples and masks string *values* (keys are asrctl's own vocabulary
  and are never touched; numbers, booleans and None are not strings a secret could hide in). The journal, the
  history, the JSON envelope and plans go through it and are serialized afterwards, so the result is always
  valid JSON: masking ``json.dumps`` output by substring turned every digit of journal.json into the mask when
  the passphrase was "1" (issue 13, item 7).
- :func:`redact` masks *whole tokens* in text: an occurrence counts when the characters on both sides are not
  word characters (or are the string's edges). A passphrase "1" masks the "1" of "exit 1" but leaves "2021" and
  "x1" alone; "pass" is not found inside "passport". The log handler, plan rendering, error messages, people
  output and captured tool output use it.

The mask itself is chosen so that no registered secret is a token inside it (a passphrase "*" would otherwise
be "found" in ``********``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar

MASK = "********"
# Used when a registered secret is itself a token of MASK ("*", "**", ...).
_ALTERNATIVE_MASKS = ("[redacted]", "REDACTED", "xxxxxxxx")

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_mask = MASK

T = TypeVar("T")


def _token_pattern(secrets: list[str]) -> re.Pattern[str]:
    # Longest first, so that "a b" wins over "a" where both are tokens at the same place.
    alternatives = "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _variants(secret: str) -> set[str]:
    """The secret as it may appear in text: itself, without surrounding blanks, and escaped as inside a JSON
    string (a log line that quotes a JSON document)."""
    found: set[str] = set()
    for plain in (secret, secret.strip()):
        found.update((plain, json.dumps(plain)[1:-1], json.dumps(plain, ensure_ascii=False)[1:-1]))
    return {v for v in found if v.strip()}


def register(secret: str) -> None:
    """Mask ``secret`` from now on. Blank strings are ignored: they are never accepted as passphrases, and masking
    every space would make text unreadable without hiding anything."""
    global _pattern, _mask
    new = _variants(secret) - _secrets
    if not new:
        return
    _secrets.update(new)
    _pattern = _token_pattern(sorted(_secrets))
    _mask = next((m for m in (MASK, *_ALTERNATIVE_MASKS) if not _pattern.search(m)), "")
    from asrctl.output import install_scrubber

    install_scrubber(redact, redact_data)


def mask() -> str:
    """The mask in use (``MASK`` unless a secret is a token of it)."""
    return _mask


def known() -> bool:
    return bool(_secrets)


def redact(text: str) -> str:
    """``text`` with every whole-token occurrence of a registered secret masked."""
    if _pattern is None or not text:
        return text
    return _pattern.sub(_mask, text)


def contains_secret(text: str) -> bool:
    """True when a registered secret is a whole token of ``text`` (what :func:`redact` would mask)."""
    return _pattern is not None and _pattern.search(text) is not None


def redact_data(value: T, keep: frozenset[str] = frozenset()) -> T:
    """A copy of ``value`` with secrets masked in every string value (dict keys untouched), any depth.

    Values under a key in ``keep`` are left whole: asrctl's own identifiers (a run id, a status, the staging path
    it created) never carry a secret, and masking them because a passphrase happens to be "staging" or "running"
    would stop the next run from finding what to clean up.
    """
    if _pattern is None:
        return value
    return _walk(value, keep)


def _walk(value: Any, keep: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: v if k in keep else _walk(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, keep) for v in value]
    if isinstance(value, tuple):
        return tuple(_walk(v, keep) for v in value)
    return value


def forget_all() -> None:
    """For tests."""
    global _pattern, _mask
    _secrets.clear()
    _pattern = None
    _mask = MASK


class RedactingFormatter(logging.Formatter):
    """Masks the whole formatted record, the traceback of ``LOG.exception`` included (a filter sees only the
    message, and an exception's text can quote what a vendor tool printed)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
