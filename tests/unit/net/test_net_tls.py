"""The certificate report against TLS servers on loopback: healthy, expired, wrong name, self-signed, pinned,
old TLS, silent, not TLS.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socketserver

import pytest
from helpers_tls import (
    FP,
    NOW,
    Loopback,
    by_name,
    from_trustme,
    run,
    self_signed,
    tls_server,
)

from asrctl.errors import EXIT_REGISTRATION, AsrctlError
from asrctl.net import tls as net_tls
from asrctl.net.certinfo import CertificateParseError, CertInfo
from asrctl.net.checks import error_for, is_transient, raise_for
from asrctl.net.endpoint import colon_hex

# --- TLS outcomes -----------------------------------------------------------------------------------------


def test_healthy_server_trusted_with_ca_bundle(serve, tmp_path, ca, ca_bundle, closed) -> None:
    pair = from_trustme(ca.issue_cert("127.0.0.1"))
    server = tls_server(serve, tmp_path, pair)
    checks = run(server, closed, ca_bundle=ca_bundle)
    assert list(checks) == ["cs_dns", "cs_tcp", "cs_tls", "ps_tcp"]
    assert checks["cs_dns"].status == checks["cs_tcp"].status == "ok"
    tls = checks["cs_tls"]
    assert tls.status == "ok", tls.detail
    assert tls.data["trusted"] is True and tls.data["name_matches"] is True
    assert tls.data["sha256"] == colon_hex(hashlib.sha256(pair.der).digest())
    assert tls.data["http_status"] == 200
    assert tls.data["not_after"] == "3000-01-01T00:00:00Z"
    assert "trusted by" in tls.detail and tls.data["sha256"] in tls.detail
    assert tls.remedy is None and tls.code is None


def test_untrusted_is_reported_with_fingerprint_not_failed(serve, tmp_path, ca, closed) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    checks = list(run(server, closed).values())
    tls = by_name(checks)["cs_tls"]
    assert tls.status == "warn" and tls.ok
    assert tls.data["reason"] == "untrusted" and tls.data["trusted"] is False
    assert "unable to get local issuer" in tls.detail
    assert f"--cs-fingerprint {tls.data['sha256']}" in tls.remedy
    assert error_for(checks) is None
    raise_for(checks)  # nothing failed


def test_trust_comes_from_the_system_store_not_certifi(serve, tmp_path, ca, ca_bundle, closed, monkeypatch) -> None:
    import requests.adapters

    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca_bundle)  # as if certifi knew the CA
    assert run(server, closed)["cs_tls"].data["trusted"] is False
    monkeypatch.setenv("SSL_CERT_FILE", ca_bundle)  # OpenSSL's default store: what the system store means here
    tls = run(server, closed)["cs_tls"]
    assert tls.data["trusted"] is True and "the system CA store" in tls.detail


def test_configuration_server_style_self_signed_cert_warns(serve, tmp_path, closed) -> None:
    server = tls_server(serve, tmp_path, self_signed("CS01"))
    tls = run(server, closed)["cs_tls"]
    assert tls.status == "warn"
    reasons = [f["reason"] for f in tls.data["findings"]]
    assert reasons[:2] == ["untrusted", "name_mismatch"]
    assert tls.data["self_signed"] is True
    assert "self-signed; expected for a configuration server" in tls.detail
    assert "the certificate is for CS01, not 127.0.0.1" in tls.detail


def test_expired_certificate_fails_with_the_curl_60_explanation(serve, tmp_path, ca, ca_bundle, closed) -> None:
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=3))
    server = tls_server(serve, tmp_path, from_trustme(leaf))
    checks = list(run(server, closed, ca_bundle=ca_bundle).values())
    tls = by_name(checks)["cs_tls"]
    assert tls.status == "fail" and not tls.ok
    assert tls.data["reason"] == "expired" and tls.code == "ASRCTL-E083"
    assert "(60) Peer certificate cannot be authenticated" in tls.detail
    assert "expired on" in tls.detail
    assert "RenewCerts" in tls.remedy
    with pytest.raises(AsrctlError) as info:
        raise_for(checks)
    err = info.value
    assert (err.code, err.exit_code) == ("ASRCTL-E083", EXIT_REGISTRATION)
    assert server.endpoint in err.message and "TLS certificate" in err.message
    assert err.details["port"] == server.port and err.remedy == tls.remedy
    assert not is_transient(err)


def test_expired_self_signed_fails_even_untrusted(serve, tmp_path, closed) -> None:
    pair = self_signed(not_before=NOW - dt.timedelta(days=1200), not_after=NOW - dt.timedelta(days=1))
    tls = run(tls_server(serve, tmp_path, pair), closed)["cs_tls"]
    assert (tls.status, tls.data["reason"]) == ("fail", "expired")


def test_not_yet_valid_points_at_the_clock(serve, tmp_path, closed) -> None:
    pair = self_signed(not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=900))
    tls = run(tls_server(serve, tmp_path, pair), closed)["cs_tls"]
    assert (tls.status, tls.data["reason"]) == ("fail", "not_yet_valid")
    assert "clock" in tls.detail and "clock" in tls.remedy


def test_expiring_soon_warns(serve, tmp_path, ca, ca_bundle, closed) -> None:
    leaf = ca.issue_cert("127.0.0.1", not_after=NOW + dt.timedelta(days=20))
    tls = run(tls_server(serve, tmp_path, from_trustme(leaf)), closed, ca_bundle=ca_bundle)["cs_tls"]
    assert (tls.status, tls.data["reason"]) == ("warn", "expires_soon")
    assert "Renew Certificates" in tls.remedy


def test_trusted_certificate_for_another_name_warns(serve, tmp_path, ca, ca_bundle, closed) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("other.example")))
    tls = run(server, closed, ca_bundle=ca_bundle)["cs_tls"]
    assert tls.status == "warn"
    assert tls.data["reason"] == "name_mismatch"
    assert tls.data["trusted"] is True and tls.data["name_matches"] is False
    assert "the certificate is for other.example, not 127.0.0.1" in tls.detail
    assert "Hostname mismatch" in tls.data["verify_error"] or "IP address mismatch" in tls.data["verify_error"]


def test_pinned_fingerprint_match_makes_a_self_signed_cert_ok(serve, tmp_path, closed) -> None:
    pair = self_signed("CS01")
    fingerprint = hashlib.sha256(pair.der).hexdigest()  # any spelling
    tls = run(tls_server(serve, tmp_path, pair), closed, fingerprint=fingerprint)["cs_tls"]
    assert tls.status == "ok", tls.detail
    assert tls.data["pinned"] is True
    assert "matches the pinned fingerprint" in tls.detail
    assert "not 127.0.0.1" in tls.detail  # still said, no longer a warning


def test_pinned_fingerprint_mismatch_fails(serve, tmp_path, ca, ca_bundle, closed) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    checks = list(run(server, closed, ca_bundle=ca_bundle, fingerprint=FP).values())
    tls = by_name(checks)["cs_tls"]
    assert (tls.status, tls.data["reason"], tls.code) == ("fail", "pin_mismatch", "ASRCTL-E083")
    assert tls.data["pinned"] is False and FP in tls.detail
    assert "do not register" in tls.remedy
    with pytest.raises(AsrctlError, match="not the pinned one"):
        raise_for(checks)


def test_pin_does_not_excuse_an_expired_certificate(serve, tmp_path, closed) -> None:
    pair = self_signed(not_before=NOW - dt.timedelta(days=1200), not_after=NOW - dt.timedelta(days=1))
    tls = run(tls_server(serve, tmp_path, pair), closed, fingerprint=hashlib.sha256(pair.der).hexdigest())["cs_tls"]
    assert (tls.status, tls.data["reason"], tls.data["pinned"]) == ("fail", "expired", True)


def test_tls10_only_server_is_named(serve, tmp_path, closed) -> None:
    tls = run(tls_server(serve, tmp_path, self_signed(), legacy=True), closed)["cs_tls"]
    assert tls.status == "warn"
    assert tls.data["reason"] == "legacy_tls" and tls.data["tls_version"] == "TLSv1"
    assert tls.data["trusted"] is None
    assert "TLS 1.2 on the configuration server" in tls.remedy


def test_server_silent_after_the_handshake_is_still_judged(serve, tmp_path, ca, ca_bundle, closed) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")), respond=False)
    tls = run(server, closed, ca_bundle=ca_bundle, timeout=0.3)["cs_tls"]
    assert tls.status == "ok" and tls.data["trusted"] is True and tls.data["http_status"] is None


def test_unreadable_certificate_still_judged_by_the_verified_handshake(
    serve, tmp_path, ca, ca_bundle, closed, monkeypatch
) -> None:
    def unreadable(der: bytes) -> CertInfo:
        raise CertificateParseError("unexpected multi-byte tag")

    monkeypatch.setattr(net_tls, "parse_certificate", unreadable)
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=3))
    tls = run(tls_server(serve, tmp_path, from_trustme(leaf)), closed, ca_bundle=ca_bundle)["cs_tls"]
    assert (tls.status, tls.data["reason"]) == ("fail", "expired")
    assert [f["reason"] for f in tls.data["findings"]][:2] == ["unreadable", "expired"]
    assert "unexpected multi-byte tag" in tls.detail and tls.data["sha256"] in tls.detail


class _PlainHTTP(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            self.request.recv(4096)
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass


def test_plain_http_on_the_port_is_not_tls(serve, closed) -> None:
    server = serve(Loopback(_PlainHTTP))
    tls = run(server, closed)["cs_tls"]
    assert (tls.status, tls.data["reason"], tls.code) == ("fail", "not_tls", "ASRCTL-E084")
