"""Endpoints as the operator types them, and fingerprints in any spelling.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import ipaddress

import pytest
from helpers_tls import (
    FP,
)

from asrctl.errors import EXIT_USAGE, AsrctlError
from asrctl.net.endpoint import normalize_fingerprint, parse_endpoint

# --- endpoints --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("cs01", "cs01", 443),
        ("CS01.Contoso.Local.", "cs01.contoso.local", 443),
        ("cs01.contoso.local:8443", "cs01.contoso.local", 8443),
        ("10.0.0.5", "10.0.0.5", 443),
        ("::1", "::1", 443),
        ("[::1]:9443", "::1", 9443),
        ("[2001:DB8::1]", "2001:db8::1", 443),
        ("bücher.example", "xn--bcher-kva.example", 443),
        ("_cs-01.lab", "_cs-01.lab", 443),
    ],
)
def test_parse_endpoint_accepts(text: str, host: str, port: int) -> None:
    ep = parse_endpoint(text)
    assert (ep.host, ep.port) == (host, port)


def test_parse_endpoint_default_port_and_display() -> None:
    assert parse_endpoint("cs01", default_port=9443).port == 9443
    assert str(parse_endpoint("[::1]:443")) == "[::1]:443"
    assert parse_endpoint("::1").url == "https://[::1]:443/"
    assert str(parse_endpoint("cs01:444")) == "cs01:444"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("cs 01", "white space"),
        ("https://cs01/", "not a URL"),
        ("root@cs01", "not a URL"),
        ("cs01:", "port after ':' is missing"),
        ("cs01:0", "out of range"),
        ("cs01:65536", "out of range"),
        ("cs01:https", "not a number"),
        ("[::1", "closing"),
        ("[::1]443", "after ']'"),
        ("[cs01]:443", "not an IPv6 address"),
        ("1:2:3", "not an IPv6 address"),
        ("999.1.1.1", "not a valid IPv4"),
        ("10.0.0", "not a valid IPv4"),
        ("-cs01", "not a valid host name"),
        ("cs..local", "not a valid host name"),
        ("cs01!", "not a valid host name"),
        # Issue 13: the text goes to the configurator as it is, so what is checked must be exactly that.
        (" 10.0.0.5:443", "white space"),
        ("10.0.0.5:443 ", "white space"),
        ("cs01\n", "white space"),
        ("cs01\x00", "control character"),
        ("0.0.0.0", "'any address'"),
        ("0.0.0.0:443", "'any address'"),
        ("[::]:443", "'any address'"),
        ("::", "'any address'"),
        ("224.0.0.1", "multicast or broadcast"),
        ("255.255.255.255", "multicast or broadcast"),
    ],
)
def test_parse_endpoint_rejects_garbage_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(AsrctlError) as info:
        parse_endpoint(text)
    assert info.value.code == "ASRCTL-E002"
    assert info.value.exit_code == EXIT_USAGE
    assert why in info.value.message
    assert "HOST:PORT" in info.value.remedy


# --- fingerprints -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [FP, FP.lower(), FP.replace(":", ""), f"SHA256:{FP}", f"sha256 Fingerprint={FP}", FP.replace(":", " ")],
)
def test_fingerprint_spellings(text: str) -> None:
    assert normalize_fingerprint(text) == FP


def test_fingerprint_sha1_thumbprint_is_explained() -> None:
    with pytest.raises(AsrctlError, match="SHA-1 thumbprint"):
        normalize_fingerprint("A" * 40)
    with pytest.raises(AsrctlError, match="64 hex digits") as info:
        normalize_fingerprint("not-a-fingerprint")
    assert info.value.code == "ASRCTL-E002"


def test_ip_helpers_agree_with_ipaddress() -> None:
    assert parse_endpoint("[fe80::1%eth0]:443").host == str(ipaddress.ip_address("fe80::1%eth0"))
