"""Can this machine reach its configuration server? The checks the preflight of install/upgrade/register and
``doctor`` share.

For a configuration server (CS) endpoint ``check_cs`` resolves the name, connects over TCP (443 by default),
looks at the TLS certificate the server presents, and connects to the process server's data port (9443 by
default). Each step is one ``Check`` with a status (ok / warn / fail / skipped), a line for people, a remedy and
data for ``--json``. ``raise_for`` turns the first failure into the catalogue error (exit 8); ``render`` prints
the table; ``is_transient`` says which failures a retry (asrctl.system.retry) may cure. Decisions (what warns and what fails) are in docs/CONNECTIVITY.md.

The certificate is read twice on purpose. A handshake without verification captures it whatever it is (a real
configuration server presents a self-signed certificate), and a small DER reader below takes subject, issuer,
validity and names from it: ``cryptography`` is only a development dependency, and ``ssl`` only decodes a
certificate it has verified. A second, verified request with ``requests`` then tells whether this machine's CA
store (or ``ca_bundle``) trusts it.

Nothing here imports ``requests`` or ``ssl`` until a check runs: the module sits on the start-up path of verbs.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from asrctl.certinfo import CertificateParseError, CertInfo, hostname_matches, parse_certificate
from asrctl.errors import AsrctlError

if TYPE_CHECKING:
    import ssl

    from asrctl.output import Output

CS_PORT = 443
PS_PORT = 9443
DEFAULT_TIMEOUT = 3.0
# The portal and the e-mail notices start two months before a configuration server certificate expires.
EXPIRY_WARN_DAYS = 60

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"
STATUSES = (OK, WARN, FAIL, SKIPPED)
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

# --- endpoints --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str  # a lower-case DNS name (IDNA/ASCII form) or a normalised IP address, without brackets
    port: int

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None

    def with_port(self, port: int) -> Endpoint:
        return Endpoint(self.host, port)

    @property
    def url(self) -> str:
        host = f"[{self.host.replace('%', '%25')}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def parse_endpoint(text: str, default_port: int = CS_PORT) -> Endpoint:
    """``host``, ``host:port``, an IPv4 address, an IPv6 address (bare or in brackets) or ``[v6]:port``.

    Raises ASRCTL-E002 with the reason for anything else, URLs included: the endpoint is handed to the
    configurator as it is, so what is checked must be exactly what registers.
    """
    raw = text.strip() if isinstance(text, str) else ""

    def bad(why: str) -> AsrctlError:
        return AsrctlError(
            "ASRCTL-E002",
            f"bad endpoint {text!r}: {why}",
            remedy="Give HOST, HOST:PORT, an IP address or [IPv6]:PORT, e.g. cs01.contoso.local or 10.0.0.5:443.",
            value=str(text),
        )

    if not raw:
        raise bad("it is empty")
    if any(c.isspace() for c in raw):
        raise bad("it contains white space")
    if "/" in raw or "@" in raw:
        raise bad("give a host name or address, not a URL")
    port = default_port
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise bad("no closing ']'")
        host, rest = raw[1:close], raw[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise bad(f"unexpected {rest!r} after ']'")
            port = _parse_port(rest[1:], bad)
        if not isinstance(_ip(host), ipaddress.IPv6Address):
            raise bad(f"{host!r} in brackets is not an IPv6 address")
    elif raw.count(":") > 1:
        host = raw
        if not isinstance(_ip(host), ipaddress.IPv6Address):
            raise bad("not an IPv6 address (write [ADDRESS]:PORT to give a port)")
    elif ":" in raw:
        host, _, port_text = raw.partition(":")
        port = _parse_port(port_text, bad)
    else:
        host = raw
    if not 0 < port < 65536:
        raise bad(f"port {port} is out of range")
    return Endpoint(_check_host(host, bad), port)


def _parse_port(text: str, bad: Callable[[str], AsrctlError]) -> int:
    if not text.isascii() or not text.isdigit():
        raise bad(f"port {text!r} is not a number" if text else "the port after ':' is missing")
    port = int(text)
    if not 0 < port < 65536:
        raise bad(f"port {port} is out of range (1-65535)")
    return port


def _check_host(host: str, bad: Callable[[str], AsrctlError]) -> str:
    address = _ip(host)
    if address is not None:
        return str(address)
    name = host[:-1] if host.endswith(".") else host
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise bad(f"{host!r} is not a valid host name") from None
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise bad(f"{host!r} is not a valid host name")
    if all(label.isdigit() for label in labels):
        raise bad(f"{host!r} is not a valid IPv4 address")
    return name


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint in any common spelling (``AB:CD:…``, ``abcd…``, ``SHA256:…``, ``sha256 Fingerprint=…``)
    as 32 upper-case hex pairs joined by colons. ASRCTL-E002 for anything else."""
    value = re.sub(r"^\s*sha-?256\s*(fingerprint)?\s*[:=]?\s*", "", text or "", flags=re.IGNORECASE)
    digits = re.sub(r"[\s:]", "", value)
    if re.fullmatch(r"[0-9A-Fa-f]{64}", digits):
        return _colon_hex(bytes.fromhex(digits))
    if re.fullmatch(r"[0-9A-Fa-f]{40}", digits):
        why = "that is a 40-digit SHA-1 thumbprint (what Windows shows); the SHA-256 fingerprint has 64 hex digits"
    else:
        why = "expected 64 hex digits, optionally in colon-separated pairs"
    raise AsrctlError(
        "ASRCTL-E002",
        f"bad --cs-fingerprint {text!r}: {why}",
        remedy="Give the SHA-256 fingerprint that `asrctl doctor` shows for the configuration server, "
        "after checking it against the server's own.",
    )


def _colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)


# --- checks -----------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One row of the table and one object of the JSON list. ``ok`` is false exactly when ``status`` is fail;
    ``code`` is the catalogue code a failure raises."""

    name: str
    target: str
    ok: bool
    status: str
    detail: str
    remedy: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    code: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")
        if self.ok != (self.status != FAIL):
            raise ValueError(f"check {self.name}: ok={self.ok} contradicts status {self.status!r}")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "remedy": self.remedy,
            "code": self.code,
            "data": dict(self.data),
        }


def _check(
    name: str,
    target: str,
    status: str,
    detail: str,
    remedy: str | None = None,
    code: str | None = None,
    **data: Any,
) -> Check:
    return Check(name, target, status != FAIL, status, detail, remedy, data, code if status == FAIL else None)


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
    trust = _trust_context(ca_bundle)
    proxy = proxy_for(ep, proxies)
    resolve = resolver or _system_resolver

    checks: list[Check] = []
    unchecked = _unsupported_proxy(ep, proxy) if proxy is not None else None
    if unchecked is not None:
        proxy = None
    dns, addresses = _dns_check(ep, timeout, resolve, proxied=proxy is not None)
    checks.append(dns)
    if unchecked is not None:
        checks.append(unchecked)

    opener: Callable[[], socket.socket] | None = None
    if proxy is not None:
        proxy_check = _proxy_check(ep, proxy, timeout)
        checks.append(proxy_check)
        checks.append(_skipped("cs_tcp", str(ep), f"not tried directly: connections go through {_redact_url(proxy)}"))
        if proxy_check.status != FAIL:

            def opener() -> socket.socket:
                return _proxy_connect(proxy, ep, timeout)
    elif addresses:
        tcp = _tcp_check("cs_tcp", ep, addresses, timeout, role="cs")
        checks.append(tcp)
        if tcp.status != FAIL:

            def opener() -> socket.socket:
                return _connect(addresses, ep.port, timeout)
    else:
        checks.append(_skipped("cs_tcp", str(ep), "not tried: the name does not resolve"))

    if opener is not None:
        checks.append(_tls_check(ep, opener, timeout, pin=pin, trust=trust, ca_bundle=ca_bundle, proxy=proxy))
    else:
        checks.append(_skipped("cs_tls", str(ep), "not tried: no connection to the configuration server"))

    checks.append(_ps_check(ps, ep, addresses, timeout, resolve, strict=strict_ps))
    return checks


def _skipped(name: str, target: str, why: str) -> Check:
    return _check(name, target, SKIPPED, why)


# --- name resolution --------------------------------------------------------------------------------------


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _resolve(host: str, port: int, timeout: float, resolve: Callable[[str, int], Sequence[str]]) -> list[str]:
    """getaddrinfo has no timeout and a broken DNS server makes it hang for half a minute: run it in a thread
    and stop waiting after ``timeout``."""
    if _ip(host) is not None:
        return [host]
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["addresses"] = list(resolve(host, port))
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer from the name servers within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return list(dict.fromkeys(box["addresses"]))


def _dns_check(
    ep: Endpoint, timeout: float, resolve: Callable[[str, int], Sequence[str]], *, proxied: bool
) -> tuple[Check, list[str]]:
    target = str(ep)
    if ep.is_ip:
        return _check(
            "cs_dns", target, OK, "an IP address: nothing to resolve", host=ep.host, port=ep.port, addresses=[ep.host]
        ), [ep.host]
    try:
        addresses = _resolve(ep.host, ep.port, timeout, resolve)
    except (OSError, UnicodeError) as exc:
        timed_out = isinstance(exc, TimeoutError)
        reason = "dns_timeout" if timed_out else "dns"
        why = str(exc) if timed_out else _os_text(exc)
        if proxied:
            return _check(
                "cs_dns",
                target,
                WARN,
                f"{ep.host} does not resolve here ({why}); the proxy resolves it",
                "Nothing to do if the proxy can reach the configuration server; the proxy check below says.",
                host=ep.host,
                port=ep.port,
                reason=reason,
            ), []
        return _check(
            "cs_dns",
            target,
            FAIL,
            f"cannot resolve {ep.host}: {why}",
            "Check the name and this machine's DNS settings (resolv.conf, the hosts file), or give the "
            "configuration server's IP address as the endpoint.",
            E_UNREACHABLE,
            host=ep.host,
            port=ep.port,
            reason=reason,
        ), []
    if not addresses:
        return _check(
            "cs_dns",
            target,
            FAIL,
            f"{ep.host} resolves to no address",
            "Check the DNS record of the configuration server.",
            E_UNREACHABLE,
            host=ep.host,
            port=ep.port,
            reason="dns",
        ), []
    return _check(
        "cs_dns", target, OK, ", ".join(addresses), host=ep.host, port=ep.port, addresses=addresses
    ), addresses


def _os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# --- TCP --------------------------------------------------------------------------------------------------


def _connect(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    """Connect to the first address that answers; raise the first address's error when none does."""
    errors: list[OSError] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            return sock
        except OSError as exc:
            sock.close()
            exc.address = address  # type: ignore[attr-defined]
            errors.append(exc)
    if not errors:
        raise OSError("no address to connect to")
    first = errors[0]
    first.others = errors[1:]  # type: ignore[attr-defined]
    raise first


def _net_reason(exc: BaseException, timeout: float) -> tuple[str, str]:
    """A stable reason token and the words for people."""
    import errno

    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "reset", "the connection was reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", "no route to the host" if exc.errno == errno.EHOSTUNREACH else "network unreachable"
    return "error", _os_text(exc)


def _net_remedy(reason: str, host: str, port: int, timeout: float) -> str:
    if reason == "refused":
        return (
            f"Nothing accepts connections on {host} port {port}, or a firewall rejects them: check that the server "
            f"is running and that TCP {port} is open from this machine to it."
        )
    if reason == "timeout":
        return (
            f"{host} did not answer on port {port} within {timeout:g} s: a firewall on the way probably drops the "
            f"traffic, or the host is down. Open TCP {port} from this machine to {host} (or raise the timeout)."
        )
    if reason == "unreachable":
        return f"This machine has no route to {host}: check its address, routes and default gateway."
    return f"Check the network path from this machine to {host} port {port}."


def _tcp_check(name: str, ep: Endpoint, addresses: Sequence[str], timeout: float, *, role: str) -> Check:
    started = time.monotonic()
    try:
        sock = _connect(addresses, ep.port, timeout)
    except OSError as exc:
        reason, words = _net_reason(exc, timeout)
        detail = words
        others = getattr(exc, "others", [])
        if others:
            parts = [f"{getattr(e, 'address', '?')}: {_net_reason(e, timeout)[1]}" for e in [exc, *others]]
            detail = "; ".join(parts)
        if role == "cs" and reason == "refused":
            detail += f" (the configurator logs this as '{CURL_COULDNT_CONNECT}')"
        return _check(
            name,
            str(ep),
            FAIL,
            detail,
            _net_remedy(reason, ep.host, ep.port, timeout),
            E_UNREACHABLE if role == "cs" else E_CONNECTIVITY,
            host=ep.host,
            port=ep.port,
            role=role,
            reason=reason,
        )
    peer = sock.getpeername()[0]
    sock.close()
    ms = (time.monotonic() - started) * 1000
    return _check(name, str(ep), OK, f"connected to {peer} in {ms:.0f} ms", host=ep.host, port=ep.port, role=role)


def _ps_check(
    ps: Endpoint,
    cs: Endpoint,
    cs_addresses: Sequence[str],
    timeout: float,
    resolve: Callable[[str, int], Sequence[str]],
    *,
    strict: bool,
) -> Check:
    """The process server's data port. A failure warns unless ``strict``: registration only needs 443 on the
    configuration server, and with a scale-out process server the built-in one on the CS host is not the one
    this machine will use (docs/CONNECTIVITY.md)."""
    if ps.host == cs.host:
        addresses = list(cs_addresses)
        if not addresses:
            return _skipped("ps_tcp", str(ps), "not tried: the name does not resolve here")
    else:
        try:
            addresses = _resolve(ps.host, ps.port, timeout, resolve)
        except (OSError, UnicodeError) as exc:
            why = str(exc) if isinstance(exc, TimeoutError) else _os_text(exc)
            return _ps_result(
                _check(
                    "ps_tcp",
                    str(ps),
                    FAIL,
                    f"cannot resolve {ps.host}: {why}",
                    "Check the process server's name, or give its IP address.",
                    E_CONNECTIVITY,
                    host=ps.host,
                    port=ps.port,
                    role="ps",
                    reason="dns",
                ),
                strict,
            )
    return _ps_result(_tcp_check("ps_tcp", ps, addresses, timeout, role="ps"), strict)


def _ps_result(check: Check, strict: bool) -> Check:
    if check.status != FAIL:
        return check
    remedy = (check.remedy or "") + " Replication data goes to the process server on this port once protection is on."
    if strict:
        return _check(check.name, check.target, FAIL, check.detail, remedy, E_CONNECTIVITY, **check.data)
    return _check(check.name, check.target, WARN, check.detail, remedy, **check.data)


# --- proxy ------------------------------------------------------------------------------------------------


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


def _proxy_scheme(proxy: str) -> str:
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}").scheme.lower()


def _split_proxy(proxy: str) -> tuple[str, str, int, str | None]:
    """(scheme, host, port, Proxy-Authorization value or None). No scheme means http, as for requests."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"bad port in proxy {_redact_url(proxy)}") from None
    if not parts.hostname:
        raise ValueError(f"no host in proxy {_redact_url(proxy)}")
    auth = None
    if parts.username is not None:
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")
    return scheme, parts.hostname, port, auth


def _redact_url(proxy: str) -> str:
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


def _unsupported_proxy(ep: Endpoint, proxy: str) -> Check | None:
    """A warning for a proxy this module cannot speak (SOCKS); the checks then go direct."""
    scheme = _proxy_scheme(proxy)
    if scheme in ("http", "https"):
        return None
    shown = _redact_url(proxy)
    return _check(
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


def _proxy_connect(proxy: str, target: Endpoint, timeout: float) -> socket.socket:
    """A TCP tunnel to ``target`` through an HTTP(S) proxy (CONNECT). Raises ProxyError when the proxy refuses,
    OSError when it cannot be reached."""
    scheme, host, port, auth = _split_proxy(proxy)
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


def _proxy_check(ep: Endpoint, proxy: str, timeout: float) -> Check:
    shown = _redact_url(proxy)
    target = f"{ep} via {shown}"
    data: dict[str, Any] = {"host": ep.host, "port": ep.port, "proxy": shown}
    no_proxy_hint = f"or add {ep.host} to NO_PROXY if this machine may reach it directly."
    try:
        sock = _proxy_connect(proxy, ep, timeout)
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
        return _check(
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
        return _check(
            "cs_proxy", target, FAIL, str(exc), "Fix HTTPS_PROXY.", E_CONNECTIVITY, reason="proxy_error", **data
        )
    except OSError as exc:
        reason, words = _net_reason(exc, timeout)
        return _check(
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
    return _check("cs_proxy", target, OK, f"{shown} opened a tunnel to {ep}", **data)


# --- TLS --------------------------------------------------------------------------------------------------

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
# X509 verify codes that mean the chain itself was trusted (OpenSSL checks the name and then the dates only
# after it built a chain to a trust anchor).
_X509_HOSTNAME_MISMATCH = frozenset({62, 64})
_X509_TIME = frozenset({9, 10})


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
        with ctx.wrap_socket(sock, server_hostname=None if ep.is_ip else ep.host) as tls:
            der = tls.getpeercert(binary_form=True)
            cipher = tls.cipher()
            version = tls.version() or "?"
    finally:
        sock.close()
    if not der:
        raise _TLSFailure("tls_error", "the server sent no certificate", E_CONNECTIVITY)
    return _Handshake(der, version, cipher[0] if cipher else "?", legacy)


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
    reason, words = _net_reason(exc, timeout)
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


def _tls_check(
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
            else _net_remedy(failure.reason, ep.host, ep.port, timeout)
        )
        return _check("cs_tls", target, FAIL, str(failure), fix, failure.code, reason=failure.reason, **base)

    fingerprint = _colon_hex(hashlib.sha256(hs.der).digest())
    data: dict[str, Any] = {**base, "sha256": fingerprint, "tls_version": hs.version, "cipher": hs.cipher}
    try:
        cert: CertInfo | None = parse_certificate(hs.der)
    except CertificateParseError as exc:
        cert = None
        data["parse_error"] = str(exc)
    if cert is not None:
        data.update(cert.as_json())

    if hs.legacy:
        verdict = _Verdict(None, f"not checked: the server only speaks {hs.version}", None)
    else:
        verdict = _verify(ep, timeout, trust, proxy)
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
    data["findings"] = [{"status": f.status, "reason": f.reason, "text": f.text} for f in findings]
    status = max((f.status for f in findings), key=_SEVERITY.__getitem__, default=OK)
    top = [f for f in findings if f.status == status]
    facts = [f.text for f in sorted(findings, key=lambda f: -_SEVERITY[f.status])]
    if cert is not None:
        facts.append(f"subject {cert.subject or '(empty)'}")
        if not cert.self_signed:
            facts.append(f"issuer {cert.issuer}")
        facts.append(f"valid until {cert.not_after:%Y-%m-%d}")
    facts.append(f"{hs.version}")
    facts.append(f"SHA-256 {fingerprint}")
    remedy = next((f.remedy for f in top if f.remedy), None) if status != OK else None
    if status != OK:
        data["reason"] = top[0].reason
    code = next((f.code for f in top if f.code), E_CERTIFICATE) if status == FAIL else None
    return _check("cs_tls", target, status, "; ".join(facts), remedy, code, **data)


@dataclass
class _Finding:
    status: str
    reason: str
    text: str
    remedy: str | None = None
    code: str | None = None


def _assess(
    ep: Endpoint,
    cert: CertInfo | None,
    hs: _Handshake,
    fingerprint: str,
    pin: str | None,
    pinned: bool | None,
    verdict: _Verdict,
    name_ok: bool | None,
    ca_bundle: str | None,
    parse_error: str | None,
) -> list[_Finding]:
    """What the certificate means for registration; see docs/CONNECTIVITY.md for why each is warn or fail."""
    out: list[_Finding] = []
    if pinned is False:
        out.append(
            _Finding(
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
            _Finding(
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
            _Finding(
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
            _Finding(
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
            _Finding(
                WARN,
                "expires_soon",
                f"the certificate expires in {days} days",
                "Renew the configuration server's certificates before they expire: in the vault, Site Recovery "
                "Infrastructure > Configuration Servers > (the server) > Renew Certificates.",
            )
        )
    if hs.legacy:
        out.append(
            _Finding(
                WARN,
                "legacy_tls",
                f"the server only negotiates {hs.version}, which current TLS defaults refuse; registration may fail "
                f"with '{CURL_PEER_CERT}'",
                "Enable TLS 1.2 on the configuration server. Microsoft's documented alternative is to enable "
                "TLS 1.0 on this machine.",
            )
        )
    if pinned:
        out.append(_Finding(OK, "pinned", "matches the pinned fingerprint"))
    elif verdict.trusted:
        out.append(_Finding(OK, "trusted", f"trusted by {ca_bundle or 'the system CA store'}"))
    elif verdict.trusted is False:
        if cert is not None and cert.self_signed:
            why = "self-signed; expected for a configuration server"
        else:
            why = f"its issuer is not trusted: {verdict.error}"
        out.append(
            _Finding(
                WARN,
                "untrusted",
                f"not trusted by {ca_bundle or 'this machine'} ({why})",
                f"Check that the SHA-256 fingerprint is your configuration server's, then pin it with "
                f"--cs-fingerprint {fingerprint}",
            )
        )
    elif not hs.legacy:
        out.append(
            _Finding(
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
            out.append(_Finding(OK, "name_mismatch", text))
        else:
            out.append(
                _Finding(
                    WARN,
                    "name_mismatch",
                    text,
                    "Usual when registering by IP address with a configuration server's own certificate. Otherwise "
                    "give the endpoint by a name the certificate carries, or pin the fingerprint.",
                )
            )
    return out


@dataclass
class _Verdict:
    trusted: bool | None  # None: could not tell
    error: str | None
    http_status: int | None
    name_mismatch: bool = False
    verify_code: int | None = None


def _verify(ep: Endpoint, timeout: float, trust: ssl.SSLContext, proxy: str | None) -> _Verdict:
    """A verified HTTPS request with requests, through the same proxy, against ``trust``."""
    import http.client
    import ssl

    import requests
    from requests.adapters import HTTPAdapter

    class TrustAdapter(HTTPAdapter):
        """Verify with our context (system store or --ca-bundle), not with certifi's bundle."""

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = trust
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = trust
            return super().proxy_manager_for(*args, **kwargs)

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, verify, cert)
            conn.ca_certs = None
            conn.ca_cert_dir = None

    from asrctl import __version__

    session = requests.Session()
    session.trust_env = False
    session.mount("https://", TrustAdapter())
    try:
        response = session.get(
            ep.url,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            proxies={"https": proxy} if proxy else {},
            headers={"User-Agent": f"asrctl/{__version__} connectivity-check"},
        )
        response.close()
        return _Verdict(True, None, response.status_code)
    except requests.exceptions.SSLError as exc:
        verify_error = _find(exc, ssl.SSLCertVerificationError)
        if verify_error is None:
            return _Verdict(None, _short(exc), None)
        code = getattr(verify_error, "verify_code", None)
        message = getattr(verify_error, "verify_message", None) or str(verify_error)
        if code in _X509_HOSTNAME_MISMATCH:
            return _Verdict(True, message, None, name_mismatch=True, verify_code=code)
        if code in _X509_TIME:
            return _Verdict(True, message, None, verify_code=code)
        return _Verdict(False, message, None, verify_code=code)
    except requests.exceptions.ReadTimeout:
        return _Verdict(True, None, None)  # the request was sent: the verified handshake had succeeded
    except requests.RequestException as exc:
        if _find(exc, http.client.RemoteDisconnected) is not None:
            return _Verdict(True, None, None)  # hung up after the handshake, without an answer
        return _Verdict(None, _short(exc), None)
    finally:
        session.close()


def _find(exc: BaseException, cls: type[BaseException]) -> BaseException | None:
    """The first ``cls`` in an exception's causes, contexts, arguments and urllib3 ``reason``s."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, cls):
            return item
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def _trust_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The trust anchors of the verified attempt: ``ca_bundle`` (a PEM file or a hashed directory) instead of
    the system store, like curl's --cacert."""
    import os
    import ssl

    if not ca_bundle:
        return ssl.create_default_context()
    try:
        if os.path.isdir(ca_bundle):
            return ssl.create_default_context(capath=ca_bundle)
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise AsrctlError(
            "ASRCTL-E002",
            f"bad --ca-bundle {ca_bundle!r}: {_os_text(exc)}",
            remedy="Give a readable PEM file of CA certificates (or a directory prepared with c_rehash).",
        ) from None


# --- results ----------------------------------------------------------------------------------------------

_LABELS = {
    "cs_dns": "name lookup",
    "cs_proxy": "proxy",
    "cs_tcp": "configuration server TCP",
    "cs_tls": "TLS certificate",
    "ps_tcp": "process server TCP",
}
_MARKS = {OK: "✓ ok", WARN: "! warn", FAIL: "✗ FAIL", SKIPPED: "– skipped"}


def label(check: Check) -> str:
    return _LABELS.get(check.name, check.name)


def to_json(checks: Iterable[Check]) -> list[dict[str, Any]]:
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
    rows = [(label(c), c.target, _MARKS[c.status], c.detail) for c in checks]
    out.table("Connectivity", ["check", "endpoint", "result", "detail"], rows)
    for check in checks:
        if check.status == WARN and check.remedy:
            out.warn(f"{check.target} ({label(check)}): {check.remedy}")
        elif check.status == FAIL:
            out.error(check.code or E_CONNECTIVITY, f"{check.target} ({label(check)}): {check.detail}", check.remedy)


# --- what a retry can cure -----------------------------------------------------------------------------------


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
