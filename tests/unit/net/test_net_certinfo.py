"""The stdlib DER reader, compared with ``cryptography``; RFC 6125 name matching.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import datetime as dt

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID
from helpers_tls import (
    NOW,
    from_trustme,
    self_signed,
)

from asrctl.net.certinfo import CertificateParseError, CertInfo, hostname_matches, parse_certificate

# --- the DER reader ---------------------------------------------------------------------------------------


def test_der_reader_agrees_with_cryptography(ca: trustme.CA) -> None:
    leaf = ca.issue_cert("cs01.contoso.local", "*.lab.contoso.local", "10.0.0.5", "2001:db8::5", common_name="CS01")
    der = from_trustme(leaf).der
    ref = x509.load_der_x509_certificate(der)
    info = parse_certificate(der)
    assert info.common_name == "CS01"
    assert info.subject.startswith("O=trustme") and "CN=CS01" in info.subject
    assert info.issuer.startswith("O=trustme") and "Testing CA" in info.issuer
    assert info.not_before == ref.not_valid_before_utc
    assert info.not_after == ref.not_valid_after_utc
    assert int(info.serial, 16) == ref.serial_number
    assert info.dns_names == ("cs01.contoso.local", "*.lab.contoso.local")
    assert info.ip_addresses == ("10.0.0.5", "2001:db8::5")
    assert info.self_signed is False
    assert parse_certificate(_der(ca)).self_signed is True


def _der(ca: trustme.CA) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())


def test_der_reader_string_types_and_both_time_forms() -> None:
    from cryptography.x509.name import _ASN1Type

    subject = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Zürich CS"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DR"),
                ]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso", _ASN1Type.BMPString)]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "CH")]),
        ]
    )
    before = dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)  # UTCTime, 19YY
    after = dt.datetime(2051, 1, 2, 3, 4, 5, tzinfo=dt.UTC)  # GeneralizedTime
    info = parse_certificate(self_signed(subject=subject, not_before=before, not_after=after).der)
    assert info.subject in ("CN=Zürich CS+OU=DR, O=Contoso, C=CH", "OU=DR+CN=Zürich CS, O=Contoso, C=CH")
    assert info.common_name == "Zürich CS"
    assert (info.not_before, info.not_after) == (before, after)
    assert info.self_signed is True
    assert info.names == ("Zürich CS",)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"",
        lambda d: b"\x30\x03\x02",
        lambda d: d[:-10],
        lambda d: d + b"\x00",
        lambda d: b"\x04\x00",
        lambda d: b"\x30\x84\xff\xff\xff\xff",
        lambda d: d[:4] + b"\x05\x00" + d[6:],
    ],
)
def test_der_reader_rejects_broken_input(mangle) -> None:
    der = self_signed().der
    with pytest.raises(CertificateParseError):
        parse_certificate(mangle(der))


@pytest.mark.parametrize(
    ("dns", "ips", "cn_", "host", "expected"),
    [
        (("cs01.contoso.local",), (), None, "CS01.contoso.local.", True),
        (("*.contoso.local",), (), None, "cs01.contoso.local", True),
        (("*.contoso.local",), (), None, "a.cs01.contoso.local", False),
        (("*.contoso.local",), (), None, "contoso.local", False),
        (("*.local",), (), None, "cs01.local", False),
        ((), ("10.0.0.5",), None, "10.0.0.5", True),
        (("10.0.0.5",), (), None, "10.0.0.5", False),  # an address must be an iPAddress SAN
        ((), (), "cs01", "cs01", True),  # common name only without any SAN
        (("other",), (), "cs01", "cs01", False),
        ((), ("2001:db8::5",), None, "2001:DB8:0::5", True),
    ],
)
def test_hostname_matching(dns, ips, cn_, host, expected) -> None:
    info = CertInfo("", "", cn_, NOW, NOW, "1", dns, ips, False)
    assert hostname_matches(info, host) is expected
