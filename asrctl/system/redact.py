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


def register_url_password(url: str) -> None:
    """The password of a URL's user info (``https://user:password@mirror/...``, as given to ``bundles fetch`` or
    ``kernel lists fetch``) is a secret like a passphrase: masked from now on in everything printed, logged, put in
    the JSON result or written beside a fetched tree, whatever shape the text around it has."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed port: the URL is refused later, with its own error
        return
    if password:
        register(password)
        register(unquote(password))


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


# --- secrets asrctl never saw: the shapes of credentials in vendor logs and configuration (logs collect) -------

# A field whose *name* says it holds a secret: it ends in one of these words (registration_key, RelaySharedKey,
# AccountKey, access_token, client_secret, SAS sig, SharedAccessSignature), any case; "pass" only as a whole word
# (not "bypass"). Over-masking a "monkey=" costs a support engineer little; a missed key costs the customer.
SECRET_NAME = (
    r"(?:[\w.-]*?(?:key|passphrase|password|passwd|pwd|secret|token|sig|signature|credentials?)"
    r"|(?:[\w.-]*[_.-])?pass)"
)
_SECRET_KEY = re.compile(rf"(?i){SECRET_NAME}|(?:proxy-)?authorization|cookie")
_NAME_START = r"(?<![\w.-])"
_NAME_END = r"(?![\w-])"


def _shapes(current_mask: str) -> re.Pattern[str]:
    m = re.escape(current_mask)
    # A value that is already the mask (a registered passphrase masked first) is not masked again.
    unquoted = rf"(?!{m}(?:[\s&;,'\"<>]|$))[^\s&;,'\"<>]+"
    return re.compile(
        "|".join(
            (
                # A PEM private key, whole.
                r"(?P<pem>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)[\s\S]*?(?P<pem_end>-----END [A-Z0-9 ]*PRIVATE KEY-----)",
                # key = value on a line of its own (INI, .conf, env files): the value is the rest of the line.
                rf"(?im:^(?P<line>[ \t]*{SECRET_NAME}[ \t]*[:=][ \t]*)(?P<line_value>(?!{m})[^\s\"'][^\r\n]*?)[ \t]*$)",
                # Authorization / Cookie headers: everything after the name.
                r"(?P<header>\b(?:proxy-)?(?:authorization|cookie)[\"']?[ \t]*[:=][ \t]*)"
                rf"(?P<header_value>\"[^\"\r\n]*\"|'[^'\r\n]*'|(?!{m}[ \t]*$)[^\r\n\"']+)",
                # A bearer token anywhere.
                rf"(?P<bearer>\bbearer[ \t]+)(?P<bearer_value>(?!{m})[\w.~+/=-]+)",
                # The password in a URL's user info: scheme://user:password@host.
                r"(?P<url>\b[a-z][a-z0-9+.-]*://[^\s/:@\"']+:)(?P<url_value>[^\s/@\"']+)(?=@)",
                # name=value / "name": "value" inline (query strings, JSON-ish text, key: value in a sentence).
                rf"(?P<field>{_NAME_START}{SECRET_NAME}{_NAME_END}[\"']?[ \t]*[:=][ \t]*)"
                # (A quoted value as an unrolled loop: no backtracking state per character on a huge line.)
                rf"(?P<field_value>\"[^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*\"|'[^'\r\n]*'|{unquoted})",
            )
        ),
        re.IGNORECASE,
    )


_shape_cache: dict[str, re.Pattern[str]] = {}


def _masked(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{value[0]}{_mask}{value[0]}"
    return _mask


def _shape_sub(match: re.Match[str]) -> str:
    kind = match.lastgroup or ""
    if kind == "pem_end":
        return f"{match['pem']}\n{_mask}\n{match['pem_end']}"
    prefix = match[kind.removesuffix("_value")]
    return prefix + _masked(match[kind])


def scrub_text(text: str) -> tuple[str, int]:
    """Registered secrets (whole tokens) and the shapes of credentials asrctl never saw: ``Bearer …``,
    ``Authorization: …``, SAS ``sig=…``, ``key=``/``password=``/``token=``… (any case, quoted or not, JSON-ish
    ``"password": "…"``), the password of ``scheme://user:password@host``, PEM private keys. Returns the text and
    how many values were masked. For text only: JSON documents go through :func:`scrub_json`."""
    count = 0
    if _pattern is not None:
        text, count = _pattern.subn(_mask, text)
    shapes = _shape_cache.get(_mask)
    if shapes is None:
        shapes = _shape_cache[_mask] = _shapes(_mask)
    text, more = shapes.subn(_shape_sub, text)
    return text, count + more


_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


def scrub_cut_text(text: str) -> tuple[str, int]:
    """:func:`scrub_text` for the tail of a file: a private key whose BEGIN line was cut off is masked too."""
    count = 0
    end = _PEM_END.search(text)
    begin = text.find("-----BEGIN ")
    if end is not None and (begin < 0 or begin > end.start()):
        text, count = f"{_mask}\n{text[end.start() :]}", 1
    text, more = scrub_text(text)
    return text, count + more


def scrub_json(value: Any) -> tuple[Any, int]:
    """A JSON document with every value under a secret-named key masked whole (whatever its type) and every
    string scrubbed like text; keys untouched. Returns the copy and how many values were masked."""
    count = 0

    def walk(v: Any) -> Any:
        nonlocal count
        if isinstance(v, str):
            v, n = scrub_text(v)
            count += n
            return v
        if isinstance(v, Mapping):
            out = {}
            for k, item in v.items():
                if (
                    isinstance(k, str)
                    and _SECRET_KEY.fullmatch(k)
                    and not (item is None or item is True or item is False or item == "")
                ):
                    count += 1
                    out[k] = _mask
                else:
                    out[k] = walk(item)
            return out
        if isinstance(v, list):
            return [walk(i) for i in v]
        return v

    return walk(value), count
