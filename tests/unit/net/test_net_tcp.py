"""Name lookup and TCP outcomes on loopback: refused, silent, full backlog, hanging resolver, the process server.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import socket
import time

import pytest
from helpers_tls import (
    FAST,
    ClosedPort,
    FullBacklog,
    SilentServer,
    by_name,
    from_trustme,
    run,
    tls_server,
)

from asrctl.errors import EXIT_REGISTRATION, AsrctlError
from asrctl.net.checks import is_transient, raise_for
from asrctl.net.preflight import check_cs

# --- network outcomes -------------------------------------------------------------------------------------


def test_connection_refused(closed) -> None:
    checks = check_cs(closed.endpoint, ps_port=closed.port, timeout=FAST)
    c = by_name(checks)
    tcp = c["cs_tcp"]
    assert (tcp.status, tcp.data["reason"], tcp.code) == ("fail", "refused", "ASRCTL-E082")
    assert "connection refused" in tcp.detail and "(7) Couldn't connect to server" in tcp.detail
    assert f"port {closed.port}" in tcp.remedy
    assert c["cs_tls"].status == "skipped"
    with pytest.raises(AsrctlError) as info:
        raise_for(checks)
    assert info.value.code == "ASRCTL-E082" and info.value.exit_code == EXIT_REGISTRATION
    assert closed.endpoint in info.value.message
    assert is_transient(info.value)


def test_accepts_but_never_answers_times_out_fast(serve, closed) -> None:
    server = serve(SilentServer())
    started = time.monotonic()
    c = by_name(check_cs(f"127.0.0.1:{server.port}", ps_port=closed.port, timeout=0.3))
    assert time.monotonic() - started < 3
    assert c["cs_tcp"].status == "ok"
    tls = c["cs_tls"]
    assert (tls.status, tls.data["reason"], tls.code) == ("fail", "tls_timeout", "ASRCTL-E082")
    assert "no TLS answer within 0.3 s" in tls.detail
    assert "does not answer TLS" in tls.remedy


def test_connect_timeout(serve) -> None:
    backlog = serve(FullBacklog())
    if not backlog.ready:
        pytest.skip("this kernel accepts beyond the backlog")
    c = by_name(check_cs(backlog.endpoint, ps_port=backlog.port, timeout=0.3))
    tcp = c["cs_tcp"]
    assert (tcp.status, tcp.data["reason"]) == ("fail", "timeout")
    assert "no answer within 0.3 s" in tcp.detail
    assert "firewall" in tcp.remedy and f"TCP {backlog.port}" in tcp.remedy


def test_name_that_does_not_resolve(closed) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    checks = check_cs("cs01.contoso.invalid", resolver=resolver, timeout=FAST)
    c = by_name(checks)
    assert (c["cs_dns"].status, c["cs_dns"].code) == ("fail", "ASRCTL-E082")
    assert "cannot resolve cs01.contoso.invalid: Name or service not known" in c["cs_dns"].detail
    assert [c[n].status for n in ("cs_tcp", "cs_tls", "ps_tcp")] == ["skipped"] * 3
    with pytest.raises(AsrctlError, match="cs01.contoso.invalid:443"):
        raise_for(checks)


def test_resolved_name_is_used_for_the_connection(closed) -> None:
    seen = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["127.0.0.1", "127.0.0.1"]

    c = by_name(check_cs(f"cs01.lab:{closed.port}", resolver=resolver, ps_port=closed.port, timeout=FAST))
    assert seen == [("cs01.lab", closed.port)]
    assert c["cs_dns"].detail == "127.0.0.1"
    assert c["cs_tcp"].data["reason"] == "refused"


def test_hanging_name_lookup_is_cut_short() -> None:
    def resolver(host: str, port: int) -> list[str]:
        time.sleep(2)
        return ["127.0.0.1"]

    started = time.monotonic()
    dns = by_name(check_cs("slow.lab", resolver=resolver, timeout=0.2))["cs_dns"]
    assert time.monotonic() - started < 1.5
    assert (dns.status, dns.data["reason"]) == ("fail", "dns_timeout")


def test_process_server_port_warns_unless_strict(serve, tmp_path, ca, ca_bundle, closed) -> None:
    server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("127.0.0.1")))
    checks = run(server, closed, ca_bundle=ca_bundle)
    ps = checks["ps_tcp"]
    assert (ps.status, ps.data["reason"], ps.target) == ("warn", "refused", f"127.0.0.1:{closed.port}")
    assert "Replication data" in ps.remedy
    strict = check_cs(server.endpoint, ps_port=closed.port, ca_bundle=ca_bundle, timeout=FAST, strict_ps=True)
    with pytest.raises(AsrctlError) as info:
        raise_for(strict)
    assert info.value.code == "ASRCTL-E084" and f"127.0.0.1:{closed.port}" in info.value.message
    fine = by_name(check_cs(server.endpoint, ps_port=server.port, ca_bundle=ca_bundle, timeout=FAST))
    assert fine["ps_tcp"].status == "ok"


def test_ipv6_loopback(serve, tmp_path, ca, ca_bundle) -> None:
    try:
        server = tls_server(serve, tmp_path, from_trustme(ca.issue_cert("::1")), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    closed6 = serve(ClosedPort("::1"))
    c = by_name(check_cs(f"[::1]:{server.port}", ps_port=closed6.port, ca_bundle=ca_bundle, timeout=FAST))
    assert c["cs_tls"].status == "ok", c["cs_tls"].detail
    assert c["cs_tls"].target == f"[::1]:{server.port}"


def test_bad_arguments_fail_before_the_network(closed, tmp_path) -> None:
    for kwargs, text in [
        ({"timeout": 0}, "timeout"),
        ({"ps_port": 0}, "process server port"),
        ({"fingerprint": "abc"}, "--cs-fingerprint"),
        ({"ca_bundle": str(tmp_path / "missing.pem")}, "--ca-bundle"),
    ]:
        with pytest.raises(AsrctlError, match=text) as info:
            check_cs(closed.endpoint, **kwargs)
        assert info.value.code == "ASRCTL-E002"
