"""The certificate report is the same direct, through an http:// proxy and through an https:// proxy (TLS to the
proxy, CONNECT and the server's TLS inside it: the case that used to fail with UNEXPECTED_MESSAGE); and every way
a proxy can fail is a clear catalogued error, for both kinds.

The proxies are real CONNECT proxies on 127.0.0.1 (tests/helpers_tls.py), the https:// one terminating TLS with a
certificate from its own CA. That CA is this machine's "system store" here (SSL_CERT_FILE); the configuration
server's CA is not in it, so "untrusted" means the same on every route.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import trustme
from helpers_tls import FAST, FP, NOW, ClosedPort, ConnectProxy, by_name, from_trustme, self_signed, tls_server

from asrctl.errors import EXIT_REGISTRATION, AsrctlError
from asrctl.net.checks import error_for, is_transient
from asrctl.net.preflight import check_cs

ROUTES = ("direct", "http", "https")
REPORT_KEYS = (
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "days_left",
    "serial",
    "dns_names",
    "ip_addresses",
    "self_signed",
    "sha256",
    "trusted",
    "name_matches",
    "pinned",
    "reason",
    "tls_version",
    "http_status",
)


@pytest.fixture(scope="module")
def proxy_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def system_store(proxy_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This machine's CA store for the test: it trusts the proxy's CA, and nothing else."""
    path = tmp_path / "system-store.pem"
    proxy_ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return str(path)


@pytest.fixture
def proxies(serve, tmp_path: Path, proxy_ca: trustme.CA, system_store: str):
    """``make(scheme, mode="ok", **kw)``: a CONNECT proxy; an https:// one has a certificate from the trusted CA."""

    def make(scheme: str, mode: str = "ok", **kw: Any) -> ConnectProxy:
        if scheme == "https":
            kw.setdefault("tls", from_trustme(proxy_ca.issue_cert("127.0.0.1", "localhost")))
            kw.setdefault("tmp_dir", tmp_path)
        return serve(ConnectProxy(mode, **kw))

    return make


def through(monkeypatch: pytest.MonkeyPatch, url: str | None) -> None:
    if url is None:
        monkeypatch.delenv("HTTPS_PROXY", raising=False)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,::1,localhost")
    else:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.setenv("HTTPS_PROXY", url)


def report(checks: dict[str, Any]) -> dict[str, Any]:
    tls = checks["cs_tls"]
    facts = {k: tls.data.get(k) for k in REPORT_KEYS}
    facts["findings"] = [f["reason"] for f in tls.data["findings"]]
    return {"status": str(tls.status), "code": tls.code, "detail": tls.detail, "remedy": tls.remedy, **facts}


EXPIRED = {"not_before": NOW - dt.timedelta(days=400), "not_after": NOW - dt.timedelta(days=3)}
CS01 = self_signed("CS01")


@pytest.mark.parametrize(
    ("scenario", "pair", "kw", "expected"),
    [
        ("trusted", lambda ca: from_trustme(ca.issue_cert("127.0.0.1")), {"ca_bundle": True},
         {"status": "ok", "trusted": True, "name_matches": True, "http_status": 200}),
        ("self-signed, untrusted", lambda ca: CS01, {},
         {"status": "warn", "trusted": False, "findings": ["untrusted", "name_mismatch"], "self_signed": True}),
        ("pinned and equal", lambda ca: CS01, {"fingerprint": hashlib.sha256(CS01.der).hexdigest()},
         {"status": "ok", "pinned": True}),
        ("pinned and different", lambda ca: from_trustme(ca.issue_cert("127.0.0.1")), {"fingerprint": FP},
         {"status": "fail", "pinned": False, "reason": "pin_mismatch", "code": "ASRCTL-E083"}),
        ("expired", lambda ca: from_trustme(ca.issue_cert("127.0.0.1", **EXPIRED)), {"ca_bundle": True},
         {"status": "fail", "reason": "expired", "code": "ASRCTL-E083"}),
        ("another name", lambda ca: from_trustme(ca.issue_cert("other.example")), {"ca_bundle": True},
         {"status": "warn", "reason": "name_mismatch", "trusted": True, "name_matches": False}),
    ],
)  # fmt: skip
def test_the_certificate_report_is_the_same_on_every_route(
    scenario, pair, kw, expected, serve, tmp_path, ca, ca_bundle, closed, proxies, monkeypatch
) -> None:
    pair = pair(ca)
    server = tls_server(serve, tmp_path, pair)
    kw = {**kw, "ca_bundle": ca_bundle} if kw.get("ca_bundle") else kw
    via = {"direct": None, "http": proxies("http"), "https": proxies("https")}
    reports = {}
    for route, proxy in via.items():
        through(monkeypatch, None if proxy is None else proxy.url)
        checks = by_name(check_cs(server.endpoint, ps_port=closed.port, timeout=FAST, **kw))
        assert ("cs_proxy" in checks) == (proxy is not None)
        if proxy is not None:
            assert checks["cs_proxy"].status == "ok", checks["cs_proxy"].detail
            assert checks["cs_proxy"].target == f"{server.endpoint} via {proxy.url}"
            # the check, the capture and requests' verified attempt all went through this proxy
            assert len(proxy.log.requests) >= 3
            assert {(r["method"], r["target"]) for r in proxy.log.requests} == {("CONNECT", server.endpoint)}
        reports[route] = report(checks)
    assert reports["http"] == reports["direct"], scenario
    assert reports["https"] == reports["direct"], scenario
    got = reports["direct"]
    for key, value in expected.items():
        actual = got[key] if key != "findings" else got["findings"][: len(value)]
        assert actual == value, (scenario, key, got)
    assert got["sha256"] == ":".join(f"{b:02X}" for b in hashlib.sha256(pair.der).digest())
    assert got["subject"] and got["issuer"] and got["not_after"]


def test_https_proxy_with_credentials(serve, tmp_path, ca, ca_bundle, closed, proxies, monkeypatch) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    expected = "Basic " + base64.b64encode(b"svc-asr:s3cr:t").decode()
    proxy = proxies("https", "auth", expect_auth=expected)
    through(monkeypatch, f"https://svc-asr:s3cr%3At@127.0.0.1:{proxy.port}")
    checks = check_cs(server.endpoint, ps_port=closed.port, ca_bundle=ca_bundle, timeout=FAST)
    assert by_name(checks)["cs_tls"].status == "ok", by_name(checks)["cs_tls"].detail
    assert "s3cr" not in json.dumps([c.as_json() for c in checks])

    through(monkeypatch, f"https://svc-asr:wrong@127.0.0.1:{proxy.port}")
    checks = check_cs(server.endpoint, ps_port=closed.port, timeout=FAST)
    bad = by_name(checks)["cs_proxy"]
    assert (bad.status, bad.code, bad.data["reason"], bad.data["http_status"]) == (
        "fail",
        "ASRCTL-E084",
        "proxy_auth",
        407,
    )
    assert "407 Proxy Authentication Required" in bad.detail and "USER:PASSWORD" in bad.remedy
    assert "wrong" not in json.dumps(bad.as_json()) and "svc-asr" not in json.dumps(bad.as_json())
    assert by_name(checks)["cs_tls"].status == "skipped"
    err = error_for(checks)
    assert err is not None and err.exit_code == EXIT_REGISTRATION and not is_transient(err)
    assert "wrong" not in err.message and f"via https://127.0.0.1:{proxy.port}" in err.message


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("mode", "reason", "words", "transient"),
    [
        ("forbidden", "proxy_refused", "refused CONNECT", False),
        ("close", "proxy_closed", "closed the connection without answering CONNECT", False),
        ("ok", "proxy_upstream", "could not reach", True),  # the server's port is closed: 502
    ],
)
def test_proxy_failures_are_catalogued_for_both_schemes(
    scheme, mode, reason, words, transient, serve, closed, proxies, monkeypatch
) -> None:
    target = serve(ClosedPort())
    proxy = proxies(scheme, mode)
    through(monkeypatch, proxy.url)
    checks = check_cs(target.endpoint, ps_port=closed.port, timeout=FAST)
    c = by_name(checks)
    check = c["cs_proxy"]
    assert (check.status, check.data["reason"], check.code) == ("fail", reason, "ASRCTL-E084")
    assert words in check.detail and "NO_PROXY" in check.remedy
    assert c["cs_tls"].status == "skipped"
    with pytest.raises(AsrctlError) as info:
        raise error_for(checks)  # type: ignore[misc]
    assert info.value.code == "ASRCTL-E084" and is_transient(info.value) is transient
    assert info.value.details["reason"] == reason


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_that_is_down(scheme, serve, closed, system_store, monkeypatch) -> None:
    down = serve(ClosedPort())
    through(monkeypatch, f"{scheme}://127.0.0.1:{down.port}")
    check = by_name(check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST))["cs_proxy"]
    assert (check.status, check.code, check.data["reason"]) == ("fail", "ASRCTL-E084", "proxy_unreachable")
    assert "cannot reach the proxy" in check.detail and "connection refused" in check.detail


def test_https_proxy_with_a_certificate_this_machine_does_not_trust(serve, tmp_path, closed, proxies, monkeypatch):
    stranger = trustme.CA()  # not in the system store
    proxy = proxies("https", tls=from_trustme(stranger.issue_cert("127.0.0.1")))
    through(monkeypatch, proxy.url)
    check = by_name(check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST))["cs_proxy"]
    assert (check.status, check.code, check.data["reason"]) == ("fail", "ASRCTL-E084", "proxy_tls")
    assert "does not trust" in check.detail and "certificate verify failed" not in check.remedy
    assert "private CA" in check.remedy
    assert proxy.log.requests == []  # no CONNECT (and no credentials) sent to a proxy that is not the one


def test_https_url_for_a_plain_http_proxy(serve, closed, proxies, monkeypatch) -> None:
    proxy = proxies("http")
    through(monkeypatch, f"https://127.0.0.1:{proxy.port}")
    check = by_name(check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST))["cs_proxy"]
    assert (check.status, check.data["reason"]) == ("fail", "proxy_tls")
    assert "no TLS with the proxy" in check.detail and "write http://" in check.remedy
