"""A small DER reader for X.509 certificates, standard library only.

The connectivity check must report the certificate of a configuration server that this machine does not trust
(they are self-signed), so it reads the certificate from an unverified handshake. ``cryptography`` would do
it, but it is not a runtime dependency; ``ssl._ssl._test_decode_cert`` is private and needs a file. This reads
just what the check reports: names, validity, serial, subjectAltNames. The tests compare it with
``cryptography``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class CertificateParseError(ValueError):
    pass


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    common_name: str | None
    not_before: datetime
    not_after: datetime
    serial: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    self_signed: bool  # subject and issuer are the same name (the signature is not checked)

    @property
    def names(self) -> tuple[str, ...]:
        """What the certificate says it is for: its subjectAltNames, else its common name."""
        if self.dns_names or self.ip_addresses:
            return self.dns_names + self.ip_addresses
        return (self.common_name,) if self.common_name else ()

    def as_json(self) -> dict[str, object]:
        now = datetime.now(UTC)
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "days_left": (self.not_after - now).days,
            "serial": self.serial,
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "self_signed": self.self_signed,
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_OID_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
_OID_SAN = "2.5.29.17"


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start, end) of the contents of the DER element at ``pos``."""
    if pos + 2 > end:
        raise CertificateParseError("truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise CertificateParseError("unexpected multi-byte tag")
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or pos + count > end:
            raise CertificateParseError("bad length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise CertificateParseError("truncated")
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    pos = start
    while pos < end:
        item = _tlv(buf, pos, end)
        items.append(item)
        pos = item[2]
    return items


def _expect(item: tuple[int, int, int], tag: int, what: str) -> tuple[int, int, int]:
    if item[0] != tag:
        raise CertificateParseError(f"{what}: expected tag 0x{tag:02x}, found 0x{item[0]:02x}")
    return item


def _oid(data: bytes) -> str:
    if not data:
        raise CertificateParseError("empty OID")
    first = data[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in data[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _string(tag: int, data: bytes) -> str:
    if tag == 0x1E:  # BMPString
        return data.decode("utf-16-be", "replace")
    if tag == 0x1C:  # UniversalString
        return data.decode("utf-32-be", "replace")
    if tag == 0x14:  # T61String: in practice Latin-1
        return data.decode("latin-1")
    return data.decode("utf-8", "replace")  # UTF8String, PrintableString, IA5String, VisibleString


def _name(buf: bytes, item: tuple[int, int, int]) -> tuple[str, str | None]:
    """A Name as ``CN=…, O=…`` in the order it is encoded, and its (last) common name."""
    rdns = []
    common_name = None
    for rdn in _children(buf, item[1], item[2]):
        _expect(rdn, 0x31, "name")
        parts = []
        for atv in _children(buf, rdn[1], rdn[2]):
            _expect(atv, 0x30, "name attribute")
            oid_item, value_item = _children(buf, atv[1], atv[2])[:2]
            oid = _oid(buf[oid_item[1] : oid_item[2]])
            value = _string(value_item[0], buf[value_item[1] : value_item[2]])
            if oid == "2.5.4.3":
                common_name = value
            parts.append(f"{_OID_NAMES.get(oid, oid)}={value}")
        rdns.append("+".join(parts))
    return ", ".join(rdns), common_name


def _time(buf: bytes, item: tuple[int, int, int]) -> datetime:
    text = buf[item[1] : item[2]].decode("ascii", "replace")
    try:
        if item[0] == 0x17:  # UTCTime YYMMDDHHMM[SS]Z
            moment = datetime.strptime(text, "%y%m%d%H%M%SZ" if len(text) == 13 else "%y%m%d%H%MZ")
            if moment.year >= 2050:  # RFC 5280: YY >= 50 is 19YY
                moment = moment.replace(year=moment.year - 100)
        elif item[0] == 0x18:  # GeneralizedTime YYYYMMDDHHMMSS[.fff]Z
            moment = datetime.strptime(re.sub(r"\.\d+Z$", "Z", text), "%Y%m%d%H%M%SZ")
        else:
            raise CertificateParseError(f"unexpected time tag 0x{item[0]:02x}")
    except ValueError:
        raise CertificateParseError(f"bad time {text!r}") from None
    return moment.replace(tzinfo=UTC)


def parse_certificate(der: bytes) -> CertInfo:
    """Subject, issuer, validity, serial and subjectAltNames of an X.509 certificate in DER, with nothing but the
    standard library. Raises CertificateParseError on anything it cannot read."""
    try:
        outer = _expect(_tlv(der, 0, len(der)), 0x30, "certificate")
        if outer[2] != len(der):
            raise CertificateParseError("trailing bytes after the certificate")
        tbs = _expect(_children(der, outer[1], outer[2])[0], 0x30, "tbsCertificate")
        fields = _children(der, tbs[1], tbs[2])
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        if len(fields) < 6:
            raise CertificateParseError("tbsCertificate is too short")
        serial_item = _expect(fields[0], 0x02, "serial number")
        issuer_item = _expect(fields[2], 0x30, "issuer")
        validity = _children(der, *_expect(fields[3], 0x30, "validity")[1:])
        subject_item = _expect(fields[4], 0x30, "subject")
        if len(validity) != 2:
            raise CertificateParseError("validity: expected two times")
        issuer, _ = _name(der, issuer_item)
        subject, common_name = _name(der, subject_item)
        dns_names: list[str] = []
        ip_addresses: list[str] = []
        for extra in fields[6:]:
            if extra[0] == 0xA3:  # [3] extensions
                _san(der, extra, dns_names, ip_addresses)
        serial = int.from_bytes(der[serial_item[1] : serial_item[2]], "big", signed=True)
        return CertInfo(
            subject=subject,
            issuer=issuer,
            common_name=common_name,
            not_before=_time(der, validity[0]),
            not_after=_time(der, validity[1]),
            serial=f"{serial:X}" if serial >= 0 else f"-{-serial:X}",
            dns_names=tuple(dns_names),
            ip_addresses=tuple(ip_addresses),
            self_signed=der[issuer_item[1] : issuer_item[2]] == der[subject_item[1] : subject_item[2]],
        )
    except IndexError:
        raise CertificateParseError("truncated") from None
    except ValueError as exc:
        if isinstance(exc, CertificateParseError):
            raise
        raise CertificateParseError(str(exc)) from None


def _san(der: bytes, extensions: tuple[int, int, int], dns_names: list[str], ip_addresses: list[str]) -> None:
    seq = _expect(_children(der, extensions[1], extensions[2])[0], 0x30, "extensions")
    for ext in _children(der, seq[1], seq[2]):
        parts = _children(der, ext[1], ext[2])
        if _oid(der[parts[0][1] : parts[0][2]]) != _OID_SAN:
            continue
        value = _expect(parts[-1], 0x04, "extension value")
        names = _expect(_tlv(der, value[1], value[2]), 0x30, "subjectAltName")
        for tag, start, end in _children(der, names[1], names[2]):
            if tag == 0x82:  # dNSName
                dns_names.append(der[start:end].decode("ascii", "replace"))
            elif tag == 0x87 and end - start in (4, 16):  # iPAddress
                ip_addresses.append(str(ipaddress.ip_address(der[start:end])))


def hostname_matches(cert: CertInfo, host: str) -> bool:
    """RFC 6125 as browsers and curl apply it: an IP address must be an iPAddress SAN; a name must match a
    dNSName SAN (a ``*`` only as the whole left-most label, not on a public-suffix-like ``*.tld``); the common
    name counts only when the certificate has no SAN at all."""
    address = _ip(host)
    if address is not None:
        return any(_ip(a) == address for a in cert.ip_addresses)
    name = host.rstrip(".").lower()
    if cert.dns_names:
        return any(_dns_match(pattern, name) for pattern in cert.dns_names)
    if cert.ip_addresses or not cert.common_name:
        return False
    return _dns_match(cert.common_name, name)


def _dns_match(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if pattern.startswith("*."):
        suffix = pattern[2:]
        head, _, rest = host.partition(".")
        return suffix.count(".") >= 1 and bool(head) and rest == suffix
    return pattern == host
