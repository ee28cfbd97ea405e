"""Parse and order Microsoft's bundle file names.

``Microsoft-ASR_UA_<version>_<OSTAG>_GA_<DDMonYYYY>_release.<tar.gz|exe>``; Microsoft sometimes spells the
suffix ``Release``, so matching is case-insensitive. Ordering is on the parsed version, never on the name; only
ASCII digits count (``9.6٥`` is not version 9.65).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from asrctl.versions import key

PREFIX = "microsoft-asr_ua"

_NAME = re.compile(
    r"""^Microsoft-ASR_UA_
        (?P<version>\d+(?:\.\d+){1,3})_
        (?P<tag>[A-Za-z0-9][A-Za-z0-9.\-]*?)_
        GA_
        (?P<date>\d{1,2}[A-Za-z]{3}\d{4})_
        release\.
        (?P<ext>tar\.gz|exe)$""",
    re.IGNORECASE | re.VERBOSE | re.ASCII,  # ASCII: \d is 0-9 only (asrctl/versions.py says why)
)


@dataclass(frozen=True)
class BundleName:
    filename: str
    version: str
    os_tag: str
    date: _dt.date
    kind: str  # "linux" (tar.gz) | "windows" (exe)

    @property
    def version_key(self) -> tuple[int, ...]:
        return key(self.version)

    @property
    def sort_key(self) -> tuple[tuple[int, ...], _dt.date, str]:
        return (self.version_key, self.date, self.filename)

    def matches_tag(self, tag: str) -> bool:
        return self.os_tag.upper() == tag.upper()


class BundleNameError(ValueError):
    """A file that looks like a bundle but whose name does not parse; the message says why."""


def looks_like_bundle(filename: str) -> bool:
    return filename.lower().startswith(PREFIX)


def parse(filename: str) -> BundleName:
    m = _NAME.match(filename)
    if not m:
        raise BundleNameError(_why_not(filename))
    try:
        date = _dt.datetime.strptime(m.group("date").title(), "%d%b%Y").date()
    except ValueError:
        raise BundleNameError(f"date {m.group('date')!r} is not a date like 20Sep2025") from None
    ext = m.group("ext").lower()
    tag = m.group("tag")
    kind = "windows" if ext == "exe" else "linux"
    if (kind == "windows") != (tag.lower() == "windows"):
        raise BundleNameError(f"OS tag {tag} does not go with a .{ext} file")
    return BundleName(filename=filename, version=m.group("version"), os_tag=tag, date=date, kind=kind)


def _why_not(filename: str) -> str:
    lower = filename.lower()
    if not (lower.endswith(".tar.gz") or lower.endswith(".exe")):
        return "not a .tar.gz or .exe file"
    if not re.match(r"(?ai)^Microsoft-ASR_UA_\d+(\.\d+){1,3}_", filename):
        return "no version after Microsoft-ASR_UA_ (expected e.g. 9.66.7567.1)"
    if not re.search(r"(?i)_GA_", filename):
        return "no _GA_<date>_ part"
    if not re.search(r"(?i)_release\.(tar\.gz|exe)$", filename):
        return "does not end in _release.tar.gz or _release.exe"
    return "does not follow Microsoft-ASR_UA_<version>_<OSTAG>_GA_<DDMonYYYY>_release.<tar.gz|exe>"
