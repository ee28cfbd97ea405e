"""Configuration server endpoints as the operator gives them, and SHA-256 fingerprints in any spelling.

The endpoint is handed to the configurator as it is, so what is checked must be exactly what registers: a host
name or an address with an optional port, never a URL.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from asrctl.errors import AsrctlError

CS_PORT = 443
PS_PORT = 9443


@dataclass(frozen=True)
class Endpoint:
    host: str  # a lower-case DNS name (IDNA/ASCII form) or a normalised IP address, without brackets
    port: int

    @property
    def is_ip(self) -> bool:
        return as_ip(self.host) is not None

    def with_port(self, port: int) -> Endpoint:
        return Endpoint(self.host, port)

    @property
    def url(self) -> str:
        host = f"[{self.host.replace('%', '%25')}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}/"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def parse_endpoint(text: str, default_port: int = CS_PORT) -> Endpoint:
    """``host``, ``host:port``, an IPv4 address, an IPv6 address (bare or in brackets) or ``[v6]:port``.

    Raises ASRCTL-E002 with the reason for anything else, URLs included: the configurator gets exactly this host
    (``-i``) and port (``-p``), so what is checked must be exactly what registers.
    """
    # Not stripped: the configurator gets the text exactly as given, so " cs01" or "cs01\n" (a value pasted from a
    # file) would register something other than what was checked.
    raw = text if isinstance(text, str) else ""

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
        raise bad("it contains white space (a leading or trailing space or newline counts)")
    if any(not c.isprintable() for c in raw):
        raise bad("it contains a control character")
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
        if not isinstance(as_ip(host), ipaddress.IPv6Address):
            raise bad(f"{host!r} in brackets is not an IPv6 address")
    elif raw.count(":") > 1:
        host = raw
        if not isinstance(as_ip(host), ipaddress.IPv6Address):
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
    address = as_ip(host)
    if address is not None:
        if address.is_unspecified:
            raise bad(f"{address} means 'any address', not a server to connect to")
        if address.is_multicast or (isinstance(address, ipaddress.IPv4Address) and address == _BROADCAST):
            raise bad(f"{address} is a multicast or broadcast address, not a server")
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


def as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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
        return colon_hex(bytes.fromhex(digits))
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


def colon_hex(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data)
