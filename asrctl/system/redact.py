"""Secrets never reach argv, logs, JSON, the journal or an error message.

Every secret asrctl learns (a passphrase) is registered here the moment it is read; ``redact`` replaces it
everywhere text leaves the process: the log handler, plan rendering, error messages, captured tool output.
"""

from __future__ import annotations

import logging

MASK = "********"
_secrets: set[str] = set()


def register(secret: str) -> None:
    if secret:
        _secrets.add(secret)
        stripped = secret.strip()
        if stripped:
            _secrets.add(stripped)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def forget_all() -> None:
    """For tests."""
    _secrets.clear()


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True
