"""What a Linux bundle is compressed with, from its first bytes, never from its name.

Microsoft names every Linux bundle ``.tar.gz``, but its build recipe packs the non-RPM bundles (every Ubuntu tag,
DEBIAN12-64) with ``tar --lzma`` and only DEBIAN7–11 and the RPM families with gzip (MicrosoftDocs/azure-docs
issue 36187: "latestlinuxmobsvc.tar.gz is not compressed with gzip … compressed with xz"). What ``tar --lzma``
writes depends on the build host's tar: LZMA-alone where it pipes through ``lzma``, xz where it pipes through
``xz`` (Debian 12's GNU tar 1.34 does). So the name says nothing; the magic does:

- gzip: ``1f 8b``;
- xz: ``fd 37 7a 58 5a 00``;
- LZMA-alone (the ``.lzma`` format ``lzma`` writes; it has no magic): a 13-byte header — a properties
  byte below 225 (lc/lp/pb; ``5d`` from every preset), a dictionary size of at least 4 KiB that is 2^n or
  2^n + 2^(n-1) (as liblzma's own sniffing requires), and a 64-bit uncompressed size that is all ``ff``
  (unknown, what a pipe gives) or below 256 GiB;
- plain tar: ``ustar`` at byte 257 (checked before LZMA, whose header has no magic: a member name such as
  ``f0`` could pass for one), or a first 512-byte block whose header checksum holds (pre-POSIX tar). A first
  block of zeros (an empty archive) is no bundle.

Pure: bytes in, a name out.
"""

from __future__ import annotations

GZIP = "gzip"
LZMA = "lzma"
XZ = "xz"
TAR = "tar"
FORMATS = (GZIP, LZMA, XZ, TAR)
SNIFF_BYTES = 512  # enough for every rule above

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
EXE_MAGIC = b"MZ"
_LZMA_PROPS_MAX = 9 * 5 * 5  # (pb * 5 + lp) * 9 + lc, with lc <= 8, lp <= 4, pb <= 4
_LZMA_DICT_MIN = 4096  # liblzma never writes a smaller one
_LZMA_UNKNOWN_SIZE = (1 << 64) - 1
_LZMA_SIZE_MAX = 1 << 38  # liblzma's sanity bound for a known uncompressed size
_TAR_MAGIC_AT = 257

EXPECTED = "gzip (1f 8b), LZMA (5d 00 …), xz (fd 37 7a 58 5a 00) or tar ('ustar' at byte 257)"


def sniff(head: bytes) -> str | None:
    """The format of a file that starts with ``head`` (give it :data:`SNIFF_BYTES`), or None."""
    if head.startswith(GZIP_MAGIC):
        return GZIP
    if head.startswith(XZ_MAGIC):
        return XZ
    if _has_tar_magic(head):  # before LZMA: a tar's first bytes (a member name) can pass for an LZMA header
        return TAR
    if lzma_alone_header(head) is not None:
        return LZMA
    if _is_v7_tar(head):
        return TAR
    return None


def lzma_alone_header(head: bytes) -> tuple[int, int, int] | None:
    """``(properties, dictionary size, uncompressed size)`` when ``head`` starts like an LZMA-alone stream."""
    if len(head) < 13 or head[0] >= _LZMA_PROPS_MAX:
        return None
    dict_size = int.from_bytes(head[1:5], "little")
    size = int.from_bytes(head[5:13], "little")
    if dict_size != 0xFFFFFFFF and (dict_size < _LZMA_DICT_MIN or not _two_power_or_three_halves(dict_size)):
        return None
    if size != _LZMA_UNKNOWN_SIZE and size >= _LZMA_SIZE_MAX:
        return None
    return head[0], dict_size, size


def _two_power_or_three_halves(n: int) -> bool:
    if n <= 0:
        return False
    while n % 2 == 0:
        n //= 2
    return n in (1, 3)


def _has_tar_magic(head: bytes) -> bool:
    # A damaged header around the magic is the parser's to report.
    return head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar"


def _is_v7_tar(head: bytes) -> bool:
    if len(head) < 512 or not any(head[:512]):
        return False
    block = head[:512]
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-", 8)
    except ValueError:
        return False
    rest = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(rest)
    signed = sum(b - 256 if b > 127 else b for b in rest)
    return stored in (unsigned, signed)


def describe(head: bytes) -> str:
    """How a file's first bytes look, for an error message: hex, and the printable ones."""
    if not head:
        return "nothing (0 bytes)"
    if not any(head):
        return f"{len(head)} zero bytes"
    first = head[:8]
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in head[:16])
    return f"{first.hex(' ')} ({shown!r})"
