"""One check's result — for the network checks and for every other line of ``doctor`` — and what verbs do with a
list of them: the JSON, the table, the catalogue error.

Each step of the path (name, proxy, TCP, TLS, process server) is one ``Check`` with a status (ok / warn / fail /
skipped), a line for people, a remedy and data for ``--json``; ``doctor`` adds its own (privileges, platform,
bundle, disk, ...) of the same type. A check that did not run is ``skipped`` and its detail says why, never "ok".
``raise_for`` turns the first failure into the catalogue error (exit 8); ``render`` prints the table;
``is_transient`` says which failures a retry (asrctl.system.retry) may cure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from asrctl.errors import AsrctlError

if TYPE_CHECKING:
    from asrctl.output import Output


class Status(StrEnum):
    """A check's outcome. A ``str``: it compares equal to "ok", "warn", ... and goes into JSON as such."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"

    @property
    def mark(self) -> str:
        """The result column of every table that shows checks."""
        return _MARKS[self]

    @property
    def severity(self) -> int:
        """For "the worst of these": a skipped check is no worse than one that passed."""
        return _SEVERITY[self]


OK, WARN, FAIL, SKIPPED = Status.OK, Status.WARN, Status.FAIL, Status.SKIPPED
STATUSES = tuple(Status)
_MARKS = {OK: "✓ ok", WARN: "! warn", FAIL: "✗ FAIL", SKIPPED: "– skipped"}
_SEVERITY = {SKIPPED: 0, OK: 0, WARN: 1, FAIL: 2}

E_UNREACHABLE = "ASRCTL-E082"
E_CERTIFICATE = "ASRCTL-E083"
E_CONNECTIVITY = "ASRCTL-E084"


# Reasons a retry can cure: the server was restarting, a link flapped, a firewall rule is being changed.
TRANSIENT_REASONS = frozenset(
    {"refused", "timeout", "reset", "unreachable", "dns_timeout", "tls_timeout", "proxy_upstream", "proxy_timeout"}
)


# The configurator logs curl's messages; these are the ones the troubleshooting docs name (asr-facts §8 item 6).
CURL_COULDNT_CONNECT = "(7) Couldn't connect to server"
CURL_PEER_CERT = "(60) Peer certificate cannot be authenticated"


@dataclass
class Check:
    """One row of a table and one object of a JSON list.

    ``ok`` is false exactly when the status is fail (it is derived, so it cannot contradict the status);
    ``target`` is what was checked (``host:port``), None for a check of this machine; ``remedy`` says what to do
    about a warning or failure; ``code`` is the catalogue code a failure raises; ``data`` holds facts for
    ``--json``.
    """

    name: str
    status: Status
    detail: str
    target: str | None = None
    remedy: str | None = None
    code: str | None = None
    data: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.status = Status(self.status)
        except ValueError:
            raise ValueError(f"unknown check status {self.status!r}") from None

    @property
    def ok(self) -> bool:
        return self.status is not FAIL

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "target": self.target,
            "ok": self.ok,
            "status": str(self.status),
            "detail": self.detail,
            "remedy": self.remedy,
            "code": self.code,
            "data": dict(self.data),
        }


def worst(checks: Iterable[Check]) -> Status:
    """The most severe status among ``checks`` (ok for none)."""
    return max((c.status for c in checks), key=lambda s: s.severity, default=OK)


def new_check(
    name: str,
    target: str,
    status: Status,
    detail: str,
    remedy: str | None = None,
    code: str | None = None,
    **data: object,
) -> Check:
    """A network check: ``code`` is kept only for a failure (a warning raises nothing)."""
    return Check(name, status, detail, target, remedy, code if status == FAIL else None, data)


def skipped(name: str, target: str, why: str) -> Check:
    """A check that did not run, and why."""
    return Check(name, SKIPPED, why, target)


LABELS = {
    "cs_dns": "name lookup",
    "cs_proxy": "proxy",
    "cs_tcp": "configuration server TCP",
    "cs_tls": "TLS certificate",
    "ps_tcp": "process server TCP",
}


def label(check: Check) -> str:
    return LABELS.get(check.name, check.name)


def to_json(checks: Iterable[Check]) -> list[dict[str, object]]:
    """The list ``--json`` carries (under ``data.connectivity``, say)."""
    return [c.as_json() for c in checks]


def error_for(checks: Iterable[Check]) -> AsrctlError | None:
    """The catalogue error for the first failed check (exit 8), or None when nothing failed."""
    for check in checks:
        if check.status != FAIL:
            continue
        details = {
            "check": check.name,
            "host": check.data.get("host"),
            "port": check.data.get("port"),
            "reason": check.data.get("reason"),
        }
        return AsrctlError(
            check.code or E_CONNECTIVITY,
            f"{check.target} ({label(check)}): {check.detail}",
            remedy=check.remedy,
            **{k: v for k, v in details.items() if v is not None},
        )
    return None


def raise_for(checks: Iterable[Check]) -> None:
    """Raise ``error_for(checks)`` when a check failed. A verb that already rendered the table raises
    ``Reported(error_for(checks), result)`` instead, so the failure is not printed twice."""
    error = error_for(checks)
    if error is not None:
        raise error


def render(out: Output, checks: Sequence[Check]) -> None:
    """The table on stderr, then what to do about each warning and failure."""
    rows = [(label(c), c.target or "", c.status.mark, c.detail) for c in checks]
    out.table("Connectivity", ["check", "endpoint", "result", "detail"], rows)
    for check in checks:
        if check.status == WARN and check.remedy:
            out.warn(f"{check.target} ({label(check)}): {check.remedy}")
        elif check.status == FAIL:
            out.error(check.code or E_CONNECTIVITY, f"{check.target} ({label(check)}): {check.detail}", check.remedy)


def is_transient(exc: BaseException) -> bool:
    """Worth another try: the server refused or did not answer, or the connection broke. Never a wrong
    passphrase (ASRCTL-E081), a rejected certificate, a proxy that refuses, or a bug."""
    if isinstance(exc, AsrctlError):
        if "transient" in exc.details:
            return bool(exc.details["transient"])
        if "reason" in exc.details:
            return exc.details["reason"] in TRANSIENT_REASONS
        return exc.code == E_UNREACHABLE
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | ConnectionAbortedError | TimeoutError):
        return True
    import sys

    requests = sys.modules.get("requests")
    if requests is not None:
        if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
            return False
        return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout)
    return False


def os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
