"""``check_cs``: the checks for one configuration server, in order (name, proxy, TCP, TLS, process server).

Bad arguments raise ASRCTL-E002 before anything touches the network; network outcomes are only ever reported in
the checks.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence

from asrctl.errors import AsrctlError
from asrctl.net.checks import FAIL, Check, skipped
from asrctl.net.dns import dns_check, system_resolver
from asrctl.net.endpoint import PS_PORT, Endpoint, normalize_fingerprint, parse_endpoint
from asrctl.net.proxy import open_tunnel, proxy_check, proxy_for, redact_url, unsupported_proxy
from asrctl.net.tcp import connect, ps_check, tcp_check
from asrctl.net.tls import tls_check
from asrctl.net.trust import trust_context

DEFAULT_TIMEOUT = 3.0


def check_cs(
    endpoint: Endpoint | str,
    *,
    ps_port: int = PS_PORT,
    ps_host: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    fingerprint: str | None = None,
    proxies: Mapping[str, str] | None = None,
    ca_bundle: str | None = None,
    strict_ps: bool = False,
    resolver: Callable[[str, int], Sequence[str]] | None = None,
) -> list[Check]:
    """Run the checks for one configuration server, in order: cs_dns, cs_proxy (only when a proxy applies),
    cs_tcp, cs_tls, ps_tcp.

    ``timeout`` bounds each step (name lookup, connect, handshake, proxy answer, HTTP answer). ``proxies`` None
    reads HTTPS_PROXY/ALL_PROXY and NO_PROXY as requests does; a mapping (``{"https": url, "no_proxy": "…"}``)
    is used as given, ``{}`` means no proxy. ``ca_bundle`` replaces the system CA store for the trust check.
    ``fingerprint`` pins the certificate. The process server is ``ps_host`` (default: the CS host, where the
    built-in process server runs) on ``ps_port``; a failure there warns unless ``strict_ps``. ``resolver`` is
    for tests: ``(host, port) -> addresses``, raising OSError.

    Bad arguments raise ASRCTL-E002 before anything touches the network; network outcomes are only ever
    reported in the checks.
    """
    ep = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint)
    if not timeout > 0:
        raise AsrctlError("ASRCTL-E002", f"bad connectivity timeout {timeout!r}: it must be more than 0 seconds")
    if not 0 < ps_port < 65536:
        raise AsrctlError("ASRCTL-E002", f"bad process server port {ps_port!r}: it must be 1-65535")
    pin = normalize_fingerprint(fingerprint) if fingerprint else None
    ps = parse_endpoint(ps_host, ps_port) if ps_host else ep.with_port(ps_port)
    trust = trust_context(ca_bundle)
    proxy = proxy_for(ep, proxies)
    resolve = resolver or system_resolver

    checks: list[Check] = []
    unchecked = unsupported_proxy(ep, proxy) if proxy is not None else None
    if unchecked is not None:
        proxy = None
    dns, addresses = dns_check(ep, timeout, resolve, proxied=proxy is not None)
    checks.append(dns)
    if unchecked is not None:
        checks.append(unchecked)

    opener: Callable[[], socket.socket] | None = None
    if proxy is not None:
        tunnel = proxy_check(ep, proxy, timeout)
        checks.append(tunnel)
        checks.append(skipped("cs_tcp", str(ep), f"not tried directly: connections go through {redact_url(proxy)}"))
        if tunnel.status != FAIL:

            def opener() -> socket.socket:
                return open_tunnel(proxy, ep, timeout)
    elif addresses:
        tcp = tcp_check("cs_tcp", ep, addresses, timeout, role="cs")
        checks.append(tcp)
        if tcp.status != FAIL:

            def opener() -> socket.socket:
                return connect(addresses, ep.port, timeout)
    else:
        checks.append(skipped("cs_tcp", str(ep), "not tried: the name does not resolve"))

    if opener is not None:
        checks.append(tls_check(ep, opener, timeout, pin=pin, trust=trust, ca_bundle=ca_bundle, proxy=proxy))
    else:
        checks.append(skipped("cs_tls", str(ep), "not tried: no connection to the configuration server"))

    checks.append(ps_check(ps, ep, addresses, timeout, resolve, strict=strict_ps))
    return checks
