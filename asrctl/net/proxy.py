"""HTTP(S) proxies: which one applies to an endpoint, and a CONNECT tunnel through it."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from asrctl.net.checks import E_CONNECTIVITY, FAIL, OK, WARN, Check, new_check
from asrctl.net.endpoint import Endpoint
from asrctl.net.tcp import net_reason


def proxy_for(endpoint: Endpoint, proxies: Mapping[str, str] | None = None) -> str | None:
    """The proxy an HTTPS connection to ``endpoint`` goes through, or None.

    ``proxies`` None follows requests' reading of the environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY, lower-case
    spellings first; on Windows and macOS the system proxy settings when those are unset). A mapping is used as
    given; its ``no_proxy`` entry, if any, still excludes hosts.
    """
    from requests.utils import get_environ_proxies, select_proxy, should_bypass_proxies

    url = endpoint.url
    if proxies is None:
        chosen: Mapping[str, str] = get_environ_proxies(url)
    else:
        no_proxy = proxies.get("no_proxy")
        if no_proxy and should_bypass_proxies(url, no_proxy=no_proxy):
            return None
        chosen = proxies
    return select_proxy(url, dict(chosen)) or None


def proxy_scheme(proxy: str) -> str:
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}").scheme.lower()


def split_proxy(proxy: str) -> tuple[str, str, int, str | None]:
    """(scheme, host, port, Proxy-Authorization value or None). No scheme means http, as for requests."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"bad port in proxy {redact_url(proxy)}") from None
    if not parts.hostname:
        raise ValueError(f"no host in proxy {redact_url(proxy)}")
    auth = None
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
    return scheme, parts.hostname, port, auth


def redact_url(proxy: str) -> str:
    """The proxy as people may see it: never its user name or password."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def unsupported_proxy(ep: Endpoint, proxy: str) -> Check | None:
    """A warning for a proxy this module cannot speak (SOCKS); the checks then go direct."""
    scheme = proxy_scheme(proxy)
    if scheme in ("http", "https"):
        return None
    shown = redact_url(proxy)
    return new_check(
        "cs_proxy",
        f"{ep} via {shown}",
        WARN,
        f"{scheme} proxies are not checked; the checks below go direct",
        "Nothing to do if this machine reaches the configuration server directly.",
        host=ep.host,
        port=ep.port,
        proxy=shown,
        reason="proxy_unsupported",
    )


class ProxyError(OSError):
    """The proxy answered, but not with a tunnel."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def open_tunnel(proxy: str, target: Endpoint, timeout: float) -> socket.socket:
    """A TCP tunnel to ``target`` through an HTTP(S) proxy (CONNECT). Raises ProxyError when the proxy refuses,
    OSError when it cannot be reached."""
    scheme, host, port, auth = split_proxy(proxy)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if scheme == "https":
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        authority = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
        request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: asrctl\r\n"
        if auth:
            request += f"Proxy-Authorization: {auth}\r\n"
        sock.sendall((request + "\r\n").encode("ascii"))
        try:
            head = _read_head(sock)
        except TimeoutError:
            raise ProxyError(
                "proxy_timeout", f"the proxy did not answer CONNECT to {authority} within {timeout:g} s"
            ) from None
        if not head:
            raise ProxyError("proxy_closed", "the proxy closed the connection without answering CONNECT")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        match = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})\s*(.*)", status_line)
        if not match:
            raise ProxyError("proxy_error", f"the proxy answered CONNECT with {status_line[:80]!r}")
        status = int(match.group(1))
        if 200 <= status < 300:
            return sock
        words = f"{status} {match.group(2)}".strip()
        if status == 407:
            raise ProxyError("proxy_auth", f"the proxy wants authentication ({words})", status)
        if status in (502, 503, 504):
            raise ProxyError("proxy_upstream", f"the proxy could not reach {authority} ({words})", status)
        raise ProxyError("proxy_refused", f"the proxy refused CONNECT to {authority} ({words})", status)
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """The response head, read a byte at a time so nothing of the tunnel after it is consumed."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        if len(head) >= limit:
            raise ProxyError("proxy_error", "the proxy's answer to CONNECT is too long")
        try:
            byte = sock.recv(1)
        except (ConnectionResetError, ConnectionAbortedError):
            byte = b""
        if not byte:
            if head:
                raise ProxyError("proxy_closed", "the proxy closed the connection in the middle of its answer")
            return b""
        head += byte
    return bytes(head)


def proxy_check(ep: Endpoint, proxy: str, timeout: float) -> Check:
    shown = redact_url(proxy)
    target = f"{ep} via {shown}"
    data: dict[str, Any] = {"host": ep.host, "port": ep.port, "proxy": shown}
    no_proxy_hint = f"or add {ep.host} to NO_PROXY if this machine may reach it directly."
    try:
        sock = open_tunnel(proxy, ep, timeout)
    except ProxyError as exc:
        if exc.reason == "proxy_auth":
            remedy = f"Put the proxy's user name and password in HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT), {no_proxy_hint}"
        elif exc.reason in ("proxy_upstream", "proxy_timeout"):
            remedy = (
                f"The proxy cannot reach {ep.host} port {ep.port}: check that the configuration server is up and "
                f"that the proxy may connect to it, {no_proxy_hint}"
            )
        elif exc.reason == "proxy_refused":
            remedy = (
                f"Ask the proxy's administrators to allow CONNECT to {ep.host} port {ep.port} "
                f"(many proxies allow CONNECT to port 443 only), {no_proxy_hint}"
            )
        else:
            remedy = f"Check the proxy in HTTPS_PROXY ({shown}), {no_proxy_hint}"
        return new_check(
            "cs_proxy",
            target,
            FAIL,
            str(exc),
            remedy,
            E_CONNECTIVITY,
            reason=exc.reason,
            http_status=exc.status,
            **data,
        )
    except ValueError as exc:  # a malformed proxy URL
        return new_check(
            "cs_proxy", target, FAIL, str(exc), "Fix HTTPS_PROXY.", E_CONNECTIVITY, reason="proxy_error", **data
        )
    except OSError as exc:
        reason, words = net_reason(exc, timeout)
        return new_check(
            "cs_proxy",
            target,
            FAIL,
            f"cannot reach the proxy {shown}: {words}",
            f"Check HTTPS_PROXY ({shown}) and that the proxy is up, {no_proxy_hint}",
            E_CONNECTIVITY,
            reason="proxy_unreachable",
            network_reason=reason,
            **data,
        )
    sock.close()
    return new_check("cs_proxy", target, OK, f"{shown} opened a tunnel to {ep}", **data)
