"""CONNECT proxies on loopback: tunnels, refusals, credentials, NO_PROXY, SOCKS.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import json

import pytest
from helpers_tls import (
    FAST,
    ClosedPort,
    ConnectProxy,
    by_name,
    from_trustme,
    run,
    tls_server,
)

from asrctl.errors import AsrctlError
from asrctl.net.checks import error_for, is_transient, raise_for, to_json
from asrctl.net.endpoint import parse_endpoint
from asrctl.net.preflight import check_cs
from asrctl.net.proxy import proxy_for

# --- proxies ----------------------------------------------------------------------------------------------


@pytest.fixture
def via_proxy(monkeypatch: pytest.MonkeyPatch):
    def use(url: str) -> None:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.setenv("HTTPS_PROXY", url)

    return use


def test_connect_proxy_that_works(serve, tmp_path, ca, ca_bundle, closed, via_proxy) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    proxy = serve(ConnectProxy())
    via_proxy(proxy.url)
    c = run(server, closed, ca_bundle=ca_bundle)
    assert list(c) == ["cs_dns", "cs_proxy", "cs_tcp", "cs_tls", "ps_tcp"]
    assert c["cs_proxy"].status == "ok" and c["cs_proxy"].target == f"{server.endpoint} via {proxy.url}"
    assert c["cs_tcp"].status == "skipped" and "through" in c["cs_tcp"].detail
    assert c["cs_tls"].status == "ok", c["cs_tls"].detail
    targets = [r["target"] for r in proxy.log.requests]
    assert len(targets) >= 3 and set(targets) == {server.endpoint}  # the check, the capture, requests
    assert {r["method"] for r in proxy.log.requests} == {"CONNECT"}


@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [("forbidden", "proxy_refused", "refused CONNECT"), ("close", "proxy_closed", "closed the connection")],
)
def test_proxy_that_refuses(serve, closed, via_proxy, mode, reason, words) -> None:
    target = serve(ClosedPort())
    proxy = serve(ConnectProxy(mode))
    via_proxy(proxy.url)
    checks = check_cs(target.endpoint, ps_port=closed.port, timeout=FAST)
    c = by_name(checks)
    assert (c["cs_proxy"].status, c["cs_proxy"].data["reason"], c["cs_proxy"].code) == ("fail", reason, "ASRCTL-E084")
    assert words in c["cs_proxy"].detail
    assert "NO_PROXY" in c["cs_proxy"].remedy
    assert c["cs_tls"].status == "skipped"
    with pytest.raises(AsrctlError) as info:
        raise_for(checks)
    assert info.value.code == "ASRCTL-E084" and not is_transient(info.value)
    if mode == "forbidden":
        assert "403 Forbidden" in c["cs_proxy"].detail


def test_proxy_that_cannot_reach_the_server_is_not_a_refusal(serve, closed, via_proxy) -> None:
    proxy = serve(ConnectProxy())
    via_proxy(proxy.url)
    checks = check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST)
    check = by_name(checks)["cs_proxy"]
    assert (check.status, check.data["reason"], check.data["http_status"]) == ("fail", "proxy_upstream", 502)
    assert "could not reach" in check.detail and "configuration server is up" in check.remedy
    assert is_transient(error_for(checks))


def test_proxy_credentials_are_sent_and_never_shown(serve, tmp_path, ca, ca_bundle, closed, via_proxy) -> None:
    import base64

    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    expected = "Basic " + base64.b64encode(b"svc-asr:s3cr:t").decode()
    proxy = serve(ConnectProxy("auth", expect_auth=expected))
    via_proxy(f"http://svc-asr:s3cr%3At@127.0.0.1:{proxy.port}")
    checks = check_cs(server.endpoint, ps_port=closed.port, ca_bundle=ca_bundle, timeout=FAST)
    assert by_name(checks)["cs_tls"].status == "ok"
    assert "s3cr" not in json.dumps(to_json(checks)) and "svc-asr" not in json.dumps(to_json(checks))

    via_proxy(f"http://svc-asr:wrong@127.0.0.1:{proxy.port}")
    bad = by_name(check_cs(server.endpoint, ps_port=closed.port, timeout=FAST))["cs_proxy"]
    assert (bad.status, bad.data["reason"]) == ("fail", "proxy_auth")
    assert "wrong" not in json.dumps(bad.as_json())


def test_proxy_that_is_down(serve, closed, via_proxy) -> None:
    down = serve(ClosedPort())
    via_proxy(f"http://127.0.0.1:{down.port}")
    proxy = by_name(check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST))["cs_proxy"]
    assert (proxy.status, proxy.data["reason"]) == ("fail", "proxy_unreachable")
    assert "cannot reach the proxy" in proxy.detail and "connection refused" in proxy.detail


def test_socks_proxy_is_named_and_the_check_goes_direct(serve, tmp_path, ca, ca_bundle, closed, via_proxy) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    via_proxy("socks5://127.0.0.1:1")
    c = run(server, closed, ca_bundle=ca_bundle)
    assert (c["cs_proxy"].status, c["cs_proxy"].data["reason"]) == ("warn", "proxy_unsupported")
    assert c["cs_tcp"].status == "ok" and c["cs_tls"].status == "ok"


def test_no_proxy_and_explicit_proxies_bypass_the_proxy(serve, tmp_path, ca, ca_bundle, closed, monkeypatch) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    proxy = serve(ConnectProxy("forbidden"))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert "cs_proxy" not in run(server, closed, ca_bundle=ca_bundle)
    monkeypatch.delenv("NO_PROXY")
    c = run(server, closed, ca_bundle=ca_bundle, proxies={})
    assert "cs_proxy" not in c and c["cs_tls"].status == "ok"
    c = run(server, closed, ca_bundle=ca_bundle, proxies={"https": proxy.url, "no_proxy": "127.0.0.1"})
    assert "cs_proxy" not in c
    assert proxy.log.requests == []
    ep = parse_endpoint(server.endpoint)
    assert proxy_for(ep) == proxy.url
    assert proxy_for(ep, {"https": "http://p:3128"}) == "http://p:3128"
