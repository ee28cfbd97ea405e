"""HTTP(S) proxies: which one applies to an endpoint, and a CONNECT tunnel through it."""

from __future__ import annotations

import base64
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from asrctl.net.checks import E_CONNECTIVITY, FAIL, OK, WARN, Check, new_check
from asrctl.net.endpoint import Endpoint
from asrctl.net.tcp import net_reason

if TYPE_CHECKING:
    import ssl


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
    """A tunnel to ``target`` through an HTTP(S) proxy (CONNECT): the socket to speak TLS to ``target`` over.

    For an ``https://`` proxy that socket is itself a TLS connection to the proxy (an ``ssl.SSLSocket``): the
    TLS to ``target`` must then run inside it (``tls.start_tls``). The proxy's certificate is checked against the
    system CA store and its name, as requests does. Raises ProxyError when the proxy refuses or its TLS fails,
    OSError when it cannot be reached.
    """
    scheme, host, port, auth = split_proxy(proxy)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if scheme == "https":
            sock = _tls_to_proxy(sock, host, redact_url(proxy))
        _connect(sock, target, auth, timeout)
        return sock
    except BaseException:
        sock.close()
        raise


def proxy_context() -> ssl.SSLContext:
    """How an https:// proxy's own certificate is checked: the system CA store, with its name (the capture
    handshake and the verified request use the same)."""
    import ssl

    return ssl.create_default_context()


def _tls_to_proxy(sock: socket.socket, host: str, shown: str) -> socket.socket:
    import ssl

    try:
        return proxy_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or exc.reason or str(exc)
        raise ProxyError(
            "proxy_tls", f"the proxy {shown} presents a certificate this machine does not trust ({why})"
        ) from None
    except ssl.SSLError as exc:
        raise ProxyError("proxy_tls", f"no TLS with the proxy {shown} ({exc.reason or exc})") from None
    except TimeoutError:  # connected, but no TLS answer: most likely a plain HTTP proxy waiting for a request
        raise ProxyError("proxy_tls", f"no TLS with the proxy {shown} (no answer to the TLS handshake)") from None


def _connect(sock: socket.socket, target: Endpoint, auth: str | None, timeout: float) -> None:
    """Send CONNECT and read the answer with the standard library's HTTP response parser."""
    import http.client

    from asrctl import __version__

    authority = str(target)  # host:port, [v6]:port
    request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: asrctl/{__version__}\r\n"
    if auth:
        request += f"Proxy-Authorization: {auth}\r\n"
    sock.sendall((request + "\r\n").encode("ascii"))
    response = http.client.HTTPResponse(sock, method="CONNECT")
    try:
        response.begin()
    except TimeoutError:
        raise ProxyError(
            "proxy_timeout", f"the proxy did not answer CONNECT to {authority} within {timeout:g} s"
        ) from None
    except (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError):
        raise ProxyError("proxy_closed", "the proxy closed the connection without answering CONNECT") from None
    except http.client.HTTPException as exc:
        raise ProxyError(
            "proxy_error", f"the proxy answered CONNECT with something that is not HTTP ({exc!r})"
        ) from None
    finally:
        response.close()  # the parser's buffer only; the socket stays open for the tunnel
    status = response.status
    if 200 <= status < 300:
        return
    words = f"{status} {response.reason}".strip()
    if status == 407:
        raise ProxyError("proxy_auth", f"the proxy wants authentication ({words})", status)
    if status in (502, 503, 504):
        raise ProxyError("proxy_upstream", f"the proxy could not reach {authority} ({words})", status)
    raise ProxyError("proxy_refused", f"the proxy refused CONNECT to {authority} ({words})", status)


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
        elif exc.reason == "proxy_tls":
            remedy = (
                f"HTTPS_PROXY names an https:// proxy, so asrctl speaks TLS to it and checks its certificate against "
                f"this machine's CA store: if the proxy expects plain HTTP, write http://; if its certificate comes "
                f"from a private CA, add that CA to the system store; {no_proxy_hint}"
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
