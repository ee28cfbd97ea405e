"""The TLS check: the certificate the configuration server presents, and what it means for registration.

The certificate is read twice on purpose. A handshake without verification captures it whatever it is (a real
configuration server presents a self-signed certificate), and ``certinfo`` takes subject, issuer, validity and
names from it: ``cryptography`` is only a development dependency, and ``ssl`` only decodes a certificate it has
verified. A second, verified request (``trust``) then tells whether this machine's CA store (or ``ca_bundle``)
trusts it.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asrctl.net.certinfo import CertificateParseError, CertInfo, hostname_matches, parse_certificate
from asrctl.net.checks import (
    CURL_PEER_CERT,
    E_CERTIFICATE,
    E_CONNECTIVITY,
    E_UNREACHABLE,
    FAIL,
    OK,
    WARN,
    Check,
    Status,
    new_check,
    worst,
)
from asrctl.net.endpoint import Endpoint, colon_hex
from asrctl.net.proxy import ProxyError
from asrctl.net.tcp import net_reason, net_remedy
from asrctl.net.trust import Verdict, verify

if TYPE_CHECKING:
    import ssl

    from urllib3.util.ssltransport import SSLTransport


# The portal and the e-mail notices start two months before a configuration server certificate expires.
EXPIRY_WARN_DAYS = 60


# ssl.SSLError reasons that mean "we and the server share no protocol version or cipher".
_OLD_PROTOCOL = frozenset(
    {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
    }
)


@dataclass
class _Handshake:
    der: bytes
    version: str
    cipher: str
    legacy: bool  # only a TLS 1.0/1.1 handshake worked


class _TLSFailure(Exception):
    def __init__(self, reason: str, message: str, code: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


def _capture(ep: Endpoint, opener: Callable[[], socket.socket], timeout: float) -> _Handshake:
    """Handshake without verification and keep the server's certificate. When the server shares no protocol
    version with today's defaults, try again allowing TLS 1.0 so the report can say so."""
    import ssl

    try:
        return _handshake(ep, opener, timeout, legacy=False)
    except ssl.SSLError as exc:
        if exc.reason not in _OLD_PROTOCOL:
            raise
        first = exc
    try:
        return _handshake(ep, opener, timeout, legacy=True)
    except (OSError, ValueError):  # ssl.SSLError is an OSError; ValueError: this OpenSSL has no TLS 1.0
        raise first from None


def _handshake(ep: Endpoint, opener: Callable[[], socket.socket], timeout: float, *, legacy: bool) -> _Handshake:
    import ssl
    import warnings

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    sock = opener()
    sock.settimeout(timeout)
    try:
        with start_tls(sock, ctx, None if ep.is_ip else ep.host) as tls:
            der = tls.getpeercert(binary_form=True)
            cipher = tls.cipher()
            version = tls.version() or "?"
    finally:
        sock.close()
    if not der:
        raise _TLSFailure("tls_error", "the server sent no certificate", E_CONNECTIVITY)
    return _Handshake(der, version, cipher[0] if cipher else "?", legacy)


def start_tls(sock: socket.socket, ctx: ssl.SSLContext, server_hostname: str | None) -> ssl.SSLSocket | SSLTransport:
    """TLS with the server over ``sock``: a TCP connection, or a tunnel through a proxy.

    Through an https:// proxy the tunnel already is a TLS connection (to the proxy), and ``ssl`` cannot wrap an
    ``SSLSocket`` again: the server's first answer would be read as the proxy's (OpenSSL's UNEXPECTED_MESSAGE).
    urllib3's ``SSLTransport`` — what requests uses for the same case — runs the inner TLS in memory and sends
    its records through the outer one.
    """
    import ssl

    from urllib3.util.ssltransport import SSLTransport

    if isinstance(sock, ssl.SSLSocket):
        return SSLTransport(sock, ctx, server_hostname=server_hostname)
    return ctx.wrap_socket(sock, server_hostname=server_hostname)


def _tls_failure(exc: BaseException, ep: Endpoint, timeout: float) -> _TLSFailure:
    import ssl

    if isinstance(exc, _TLSFailure):
        return exc
    if isinstance(exc, ProxyError):
        return _TLSFailure(exc.reason, str(exc), E_CONNECTIVITY)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if isinstance(exc, ssl.SSLEOFError) or reason in ("UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION"):
            return _TLSFailure(
                "tls_closed", "the server closed the connection during the TLS handshake", E_CONNECTIVITY
            )
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"):
            return _TLSFailure("not_tls", f"the server on port {ep.port} does not speak TLS ({reason})", E_CONNECTIVITY)
        if reason in _OLD_PROTOCOL:
            return _TLSFailure(
                "tls_protocol", f"no TLS version or cipher in common with the server ({reason})", E_CONNECTIVITY
            )
        return _TLSFailure("tls_error", f"TLS handshake failed: {reason or exc}", E_CONNECTIVITY)
    if isinstance(exc, TimeoutError):
        return _TLSFailure("tls_timeout", f"connected, but no TLS answer within {timeout:g} s", E_UNREACHABLE)
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return _TLSFailure("tls_closed", "the server reset the connection during the TLS handshake", E_CONNECTIVITY)
    reason, words = net_reason(exc, timeout)
    return _TLSFailure(reason, words, E_UNREACHABLE)


_TLS_REMEDIES = {
    "tls_timeout": "Something accepts connections on {host} port {port} but does not answer TLS: check that this "
    "is the configuration server (and not a load balancer or firewall that holds connections), and that its web "
    "service is running.",
    "tls_closed": "The server, or a firewall or IPS on the way, drops TLS from this machine: check the firewall "
    "rules between this machine and {host} port {port}, and that this machine's TLS versions are enabled.",
    "not_tls": "Port {port} on {host} answers, but not with TLS: check the endpoint's port.",
    "tls_protocol": "This machine and the server share no TLS version or cipher: enable TLS 1.2 on the "
    "configuration server.",
}


def tls_check(
    ep: Endpoint,
    opener: Callable[[], socket.socket],
    timeout: float,
    *,
    pin: str | None,
    trust: ssl.SSLContext,
    ca_bundle: str | None,
    proxy: str | None,
) -> Check:
    import ssl

    target = str(ep)
    base: dict[str, Any] = {"host": ep.host, "port": ep.port}
    try:
        hs = _capture(ep, opener, timeout)
    except (OSError, ssl.SSLError, _TLSFailure) as exc:
        failure = _tls_failure(exc, ep, timeout)
        template = _TLS_REMEDIES.get(failure.reason)
        fix = (
            template.format(host=ep.host, port=ep.port)
            if template
            else net_remedy(failure.reason, ep.host, ep.port, timeout)
        )
        return new_check("cs_tls", target, FAIL, str(failure), fix, failure.code, reason=failure.reason, **base)

    fingerprint = colon_hex(hashlib.sha256(hs.der).digest())
    data: dict[str, Any] = {**base, "sha256": fingerprint, "tls_version": hs.version, "cipher": hs.cipher}
    try:
        cert: CertInfo | None = parse_certificate(hs.der)
    except CertificateParseError as exc:
        cert = None
        data["parse_error"] = str(exc)
    if cert is not None:
        data.update(cert.as_json())

    if hs.legacy:
        verdict = Verdict(None, f"not checked: the server only speaks {hs.version}", None)
    else:
        verdict = verify(ep, timeout, trust, proxy)
    data["trusted"] = verdict.trusted
    data["http_status"] = verdict.http_status
    if verdict.error:
        data["verify_error"] = verdict.error
    pinned = None if pin is None else fingerprint == pin
    data["pinned"] = pinned
    name_ok = None if cert is None else hostname_matches(cert, ep.host)
    if verdict.name_mismatch:
        name_ok = False
    data["name_matches"] = name_ok

    findings = _assess(ep, cert, hs, fingerprint, pin, pinned, verdict, name_ok, ca_bundle, data.get("parse_error"))
    data["findings"] = [{"status": str(f.status), "reason": f.name, "text": f.detail} for f in findings]
    status = worst(findings)
    top = [f for f in findings if f.status == status]
    facts = [f.detail for f in sorted(findings, key=lambda f: -f.status.severity)]
    if cert is not None:
        facts.append(f"subject {cert.subject or '(empty)'}")
        if not cert.self_signed:
            facts.append(f"issuer {cert.issuer}")
        facts.append(f"valid until {cert.not_after:%Y-%m-%d}")
    facts.append(f"{hs.version}")
    facts.append(f"SHA-256 {fingerprint}")
    remedy = next((f.remedy for f in top if f.remedy), None) if status != OK else None
    if status != OK:
        data["reason"] = top[0].name
    code = next((f.code for f in top if f.code), E_CERTIFICATE) if status == FAIL else None
    return new_check("cs_tls", target, status, "; ".join(facts), remedy, code, **data)


def _finding(status: Status, reason: str, text: str, remedy: str | None = None, code: str | None = None) -> Check:
    """One thing the certificate check found: a check of its own, named by its reason token."""
    return Check(reason, status, text, remedy=remedy, code=code)


def _assess(
    ep: Endpoint,
    cert: CertInfo | None,
    hs: _Handshake,
    fingerprint: str,
    pin: str | None,
    pinned: bool | None,
    verdict: Verdict,
    name_ok: bool | None,
    ca_bundle: str | None,
    parse_error: str | None,
) -> list[Check]:
    """What the certificate means for registration; see docs/CONNECTIVITY.md for why each is warn or fail."""
    out: list[Check] = []
    if pinned is False:
        out.append(
            _finding(
                FAIL,
                "pin_mismatch",
                f"the certificate is not the pinned one (pinned {pin})",
                "The server presents another certificate than the one you pinned. If the configuration server's "
                "certificate was renewed, check and pin the new fingerprint; otherwise something else (another "
                "server at this address, a TLS-inspecting firewall or proxy) answers: do not register.",
                E_CERTIFICATE,
            )
        )
    now = datetime.now(UTC)
    if cert is None:
        out.append(
            _finding(
                WARN,
                "unreadable",
                f"could not read the certificate ({parse_error}), so its dates and names were not checked",
                "Check the configuration server's certificate by hand (openssl x509 -text) and report this to the "
                "asrctl developers.",
            )
        )
    if (cert is not None and now > cert.not_after) or (cert is None and verdict.verify_code == 10):
        when = (
            "" if cert is None else f" on {cert.not_after:%Y-%m-%d %H:%M} UTC ({(now - cert.not_after).days} days ago)"
        )
        out.append(
            _finding(
                FAIL,
                "expired",
                f"the certificate expired{when}: this is the documented cause of the configurator's "
                f"'{CURL_PEER_CERT}', so registration will fail",
                "Renew the configuration server's certificates. Once expired they cannot be renewed from the "
                "portal: on the configuration server, run RenewCerts from C:\\ProgramData\\ASR\\home\\svsystems\\bin "
                "as administrator. If that date is not really past, fix this machine's clock.",
                E_CERTIFICATE,
            )
        )
    elif cert is not None and now < cert.not_before:
        out.append(
            _finding(
                FAIL,
                "not_yet_valid",
                f"the certificate is not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC: this machine's clock is "
                f"probably wrong (it reads {now:%Y-%m-%d %H:%M} UTC)",
                "Fix this machine's clock and time zone (NTP), then run again.",
                E_CERTIFICATE,
            )
        )
    elif cert is not None and cert.not_after - now < timedelta(days=EXPIRY_WARN_DAYS):
        days = (cert.not_after - now).days
        out.append(
            _finding(
                WARN,
                "expires_soon",
                f"the certificate expires in {days} days",
                "Renew the configuration server's certificates before they expire: in the vault, Site Recovery "
                "Infrastructure > Configuration Servers > (the server) > Renew Certificates.",
            )
        )
    if hs.legacy:
        out.append(
            _finding(
                WARN,
                "legacy_tls",
                f"the server only negotiates {hs.version}, which current TLS defaults refuse; registration may fail "
                f"with '{CURL_PEER_CERT}'",
                "Enable TLS 1.2 on the configuration server. Microsoft's documented alternative is to enable "
                "TLS 1.0 on this machine.",
            )
        )
    if pinned:
        out.append(_finding(OK, "pinned", "matches the pinned fingerprint"))
    elif verdict.trusted:
        out.append(_finding(OK, "trusted", f"trusted by {ca_bundle or 'the system CA store'}"))
    elif verdict.trusted is False:
        if cert is not None and cert.self_signed:
            why = "self-signed; expected for a configuration server"
        else:
            why = f"its issuer is not trusted: {verdict.error}"
        out.append(
            _finding(
                WARN,
                "untrusted",
                f"not trusted by {ca_bundle or 'this machine'} ({why})",
                f"Check that the SHA-256 fingerprint is your configuration server's, then pin it with "
                f"--cs-fingerprint {fingerprint}",
            )
        )
    elif not hs.legacy:
        out.append(
            _finding(
                WARN,
                "unverified",
                f"trust could not be checked: {verdict.error}",
                f"Check that the SHA-256 fingerprint is your configuration server's, then pin it with "
                f"--cs-fingerprint {fingerprint}",
            )
        )
    if name_ok is False:
        names = ", ".join(cert.names) if cert is not None and cert.names else "no name"
        text = f"the certificate is for {names}, not {ep.host}"
        if pinned:
            out.append(_finding(OK, "name_mismatch", text))
        else:
            out.append(
                _finding(
                    WARN,
                    "name_mismatch",
                    text,
                    "Usual when registering by IP address with a configuration server's own certificate. Otherwise "
                    "give the endpoint by a name the certificate carries, or pin the fingerprint.",
                )
            )
    return out
