"""Inflaters: compressed bytes in, decompressed pieces of at most ``INFLATE_SIZE`` bytes out.

Bounded output per call is what keeps a decompression bomb (a few KB that inflate to many GB) from growing memory:
the decompressor is asked for at most ``INFLATE_SIZE`` bytes at a time and the rest stays inside it until the
parser and writers have taken the previous piece. No disk, no threads: tested by feeding bytes.

gzip goes through ISA-L (python-isal, the ``fast`` extra, about twice as fast) when it imports, else the
standard library's zlib; both check the CRC and length of every member. ``ASRCTL_GZIP=stdlib`` forces zlib.
"""

from __future__ import annotations

import os
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol

from asrctl.bundles.extract.limits import corrupt
from asrctl.errors import AsrctlError

INFLATE_SIZE = 1 << 20  # most decompressed bytes per decompress() call: a bomb cannot grow memory
GZIP_MAGIC = b"\x1f\x8b"


class Inflater(Protocol):
    """What the driver needs of a decompressor: pieces as they come, and a final check that the stream ended."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> None: ...


def inflate_backend() -> str:
    """``"isal"`` (python-isal, the ``fast`` extra, about twice as fast) when it imports, else ``"zlib"`` (the
    standard library). ``ASRCTL_GZIP=stdlib`` forces the standard library."""
    if os.environ.get("ASRCTL_GZIP", "").lower() not in ("stdlib", "zlib"):
        try:
            from isal import igzip_lib  # noqa: F401
        except ImportError:
            pass
        else:
            return "isal"
    return "zlib"


def _exception_type(value: object) -> type[Exception]:
    assert isinstance(value, type) and issubclass(value, Exception)
    return value


# --- gzip ---------------------------------------------------------------------------------------------------


class GzipMember(ABC):
    """One gzip member (CRC and length checked at its end)."""

    error: type[Exception]

    @property
    @abstractmethod
    def eof(self) -> bool: ...

    @property
    @abstractmethod
    def unused_data(self) -> bytes: ...

    @abstractmethod
    def pieces(self, data: bytes) -> Iterator[bytes]: ...


class ZlibMember(GzipMember):
    """One gzip member through the standard library's zlib."""

    error = zlib.error

    def __init__(self) -> None:
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data

    def pieces(self, data: bytes) -> Iterator[bytes]:
        d = self.d
        while True:
            piece = d.decompress(data, INFLATE_SIZE)
            if piece:
                yield piece
            data = d.unconsumed_tail
            if d.eof or not data:
                break
        while not d.eof:  # output still held inside zlib when max_length stopped it
            piece = d.decompress(b"", INFLATE_SIZE)
            if not piece:
                break
            yield piece


class IsalMember(GzipMember):
    """One gzip member through ISA-L's inflate."""

    def __init__(self) -> None:
        from isal import igzip_lib

        self.error = _exception_type(igzip_lib.IsalError)  # its stub calls the class an instance
        self.d = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused_data(self) -> bytes:
        return self.d.unused_data

    def pieces(self, data: bytes) -> Iterator[bytes]:
        d = self.d
        piece = d.decompress(data, INFLATE_SIZE)
        if piece:
            yield piece
        while not d.eof and not d.needs_input:
            piece = d.decompress(b"", INFLATE_SIZE)
            if not piece:
                break
            yield piece


class GzipInflater:
    """gzip members (one or more, as gzip and tar accept, with zero padding between them) to pieces."""

    def __init__(self, member: type[GzipMember] | None = None) -> None:
        if member is None:
            member = IsalMember if inflate_backend() == "isal" else ZlibMember
        self.member = member
        self.d: GzipMember | None = None
        self.between = b""  # bytes after a finished member: zero padding, or the start of the next member
        self.members = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self.d is None:
                data = self._start(self.between + data)
                if not data:
                    return
            d = self.d
            assert d is not None
            try:
                yield from d.pieces(data)
            except d.error as exc:
                raise self._error(exc) from None
            if not d.eof:
                return
            data = d.unused_data
            self.d = None

    def _start(self, data: bytes) -> bytes:
        """Between members: skip zero padding; the next bytes must start a gzip member."""
        stripped = data.lstrip(b"\0")
        self.between = b""
        if not stripped:
            return b""
        if len(stripped) < 2 and GZIP_MAGIC.startswith(stripped):
            self.between = stripped
            return b""
        if stripped[:2] != GZIP_MAGIC:
            if self.members == 0:
                raise corrupt("not a gzip file (a .tar.gz bundle starts with 1f 8b)")
            raise corrupt("unexpected data after the end of the gzip stream")
        self.d = self.member()
        self.members += 1
        return stripped

    def finish(self) -> None:
        if self.members == 0:
            raise corrupt("not a gzip file (it holds only zero bytes)")
        if self.d is not None and not self.d.eof:
            raise corrupt("truncated: the gzip data stops before the end of its stream (the copy is incomplete)")
        if self.between.strip(b"\0"):
            raise corrupt("unexpected data after the end of the gzip stream")

    def _error(self, exc: Exception) -> AsrctlError:
        text = str(exc)
        low = text.lower()
        if "check" in low or "checksum" in low or "crc" in low:
            why = "the gzip CRC does not match (the data is damaged)"
        elif "length" in low:
            why = "the gzip length does not match (the data is damaged)"
        else:
            why = f"invalid gzip data ({text})"
        return corrupt(why)
