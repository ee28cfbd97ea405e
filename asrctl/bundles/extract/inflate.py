"""Inflaters: compressed bytes in, decompressed pieces of at most ``INFLATE_SIZE`` bytes out.

Bounded output per call is what keeps a decompression bomb (a few KB that inflate to many GB) from growing memory:
the decompressor is asked for at most ``INFLATE_SIZE`` bytes at a time and the rest stays inside it until the
parser and writers have taken the previous piece. No disk, no threads: tested by feeding bytes.

- gzip goes through ISA-L (python-isal, the ``fast`` extra, about twice as fast) when it imports, else the
  standard library's zlib; both check the CRC and length of every member. ``ASRCTL_GZIP=stdlib`` forces zlib.
  Concatenated members and zero padding between them are accepted, as gzip accepts them.
- LZMA-alone and xz go through liblzma (the standard library's :mod:`lzma`), with a memory limit so that a
  header asking for a huge dictionary is refused instead of allocated. xz checks its own integrity (CRC64 from
  ``xz``/``tar -J``); LZMA-alone has no check at all, so for it the SHA-256 (and the tar header checksums) are
  the only protection against a damaged copy. After the end of the stream nothing may follow an LZMA-alone stream
  (``xz``/``tar --lzma`` refuse even zeros there); xz streams may be concatenated and followed by stream padding
  (zeros, a multiple of 4 bytes), as ``xz -d`` accepts.
- a plain tar passes through unchanged.
"""

from __future__ import annotations

import lzma
import os
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Protocol

from asrctl.bundles.extract.limits import corrupt
from asrctl.bundles.formats import GZIP, LZMA, TAR, XZ, XZ_MAGIC, lzma_alone_header
from asrctl.errors import AsrctlError

INFLATE_SIZE = 1 << 20  # most decompressed bytes per decompress() call: a bomb cannot grow memory
GZIP_MAGIC = b"\x1f\x8b"
# liblzma allocates the dictionary a header asks for. `tar --lzma` (preset 6) asks for 8 MiB, xz -9 for 64 MiB
# (65 MiB to decode); a header asking for more is a memory bomb, not a bundle.
LZMA_MEMLIMIT = 96 << 20


class Inflater(Protocol):
    """What the driver needs of a decompressor: pieces as they come, and a final check that the stream ended."""

    backend: str

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> None: ...


def inflater_for(fmt: str) -> Inflater:
    """The inflater for a format of :mod:`asrctl.bundles.formats`."""
    if fmt == GZIP:
        return GzipInflater()
    if fmt in (LZMA, XZ):
        return LzmaInflater(fmt)
    if fmt == TAR:
        return PlainTar()
    raise ValueError(f"no inflater for {fmt!r}")


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


def _drain(d: _NeedsInput, data: bytes) -> Iterator[bytes]:
    """Feed ``data`` to a decompressor that keeps unconsumed input itself (liblzma, ISA-L: ``needs_input``) and
    yield its output, at most INFLATE_SIZE bytes per call, until it wants more input or the stream ends."""
    piece = d.decompress(data, INFLATE_SIZE)
    if piece:
        yield piece
    while not d.eof and not d.needs_input:
        piece = d.decompress(b"", INFLATE_SIZE)
        if not piece:
            break
        yield piece


class _NeedsInput(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


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
        return _drain(self.d, data)


class GzipInflater:
    """gzip members (one or more, as gzip and tar accept, with zero padding between them) to pieces."""

    def __init__(self, member: type[GzipMember] | None = None) -> None:
        if member is None:
            member = IsalMember if inflate_backend() == "isal" else ZlibMember
        self.member = member
        self.backend = "gzip (ISA-L)" if member is IsalMember else "gzip (zlib)"
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


# --- LZMA-alone and xz --------------------------------------------------------------------------------------


class LzmaInflater:
    """An LZMA-alone stream, or xz streams (concatenated, with stream padding), through liblzma."""

    def __init__(self, fmt: str, memlimit: int = LZMA_MEMLIMIT) -> None:
        if fmt not in (LZMA, XZ):
            raise ValueError(fmt)
        self.fmt = fmt
        self.memlimit = memlimit
        self.label = "LZMA" if fmt == LZMA else "xz"
        self.backend = f"{fmt} (liblzma)"
        self.d: lzma.LZMADecompressor | None = self._decompressor()
        self.head = b""  # the first bytes of an LZMA-alone stream, to name its dictionary in an error
        self.streams = 1
        self.ended = False  # LZMA-alone: the one stream is over
        self.between = b""  # xz: the start of the next stream, not yet whole
        self.padding = 0  # xz: zero bytes since the last stream ended

    def _decompressor(self) -> lzma.LZMADecompressor:
        form = lzma.FORMAT_ALONE if self.fmt == LZMA else lzma.FORMAT_XZ
        return lzma.LZMADecompressor(format=form, memlimit=self.memlimit)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.fmt == LZMA and len(self.head) < 13:
            self.head += data[: 13 - len(self.head)]
        while data:
            if self.ended:
                raise corrupt(f"unexpected data after the end of the {self.label} stream")
            if self.d is None:
                data = self._next_stream(data)
                if not data:
                    return
            d = self.d
            assert d is not None
            try:
                yield from _drain(d, data)
            except lzma.LZMAError as exc:
                raise self._error(exc) from None
            if not d.eof:
                return
            data = d.unused_data
            if self.fmt == LZMA:
                self.ended = True
            else:
                self.d = None

    def _next_stream(self, data: bytes) -> bytes:
        """xz between streams: stream padding (zeros, a multiple of 4 bytes), then another stream or the end."""
        data = self.between + data
        self.between = b""
        stripped = data.lstrip(b"\0")
        self.padding += len(data) - len(stripped)
        if not stripped:
            return b""
        if len(stripped) < len(XZ_MAGIC) and XZ_MAGIC.startswith(stripped):
            self.between = stripped
            return b""
        if not stripped.startswith(XZ_MAGIC) or self.padding % 4:
            raise corrupt("unexpected data after the end of the xz stream")
        self.padding = 0
        self.d = self._decompressor()
        self.streams += 1
        return stripped

    def finish(self) -> None:
        if self.d is not None and not self.d.eof:
            raise corrupt(
                f"truncated: the {self.label} data stops before the end of its stream (the copy is incomplete)"
            )
        if self.between or self.padding % 4:
            raise corrupt("unexpected data after the end of the xz stream")

    def _error(self, exc: lzma.LZMAError) -> AsrctlError:
        text = str(exc)
        if "memory" in text.lower():
            header = lzma_alone_header(self.head) if self.fmt == LZMA else None
            asks = f" (its header asks for a {header[1] >> 20} MiB dictionary)" if header else ""
            return AsrctlError(
                "ASRCTL-E032",
                f"the {self.label} stream needs more than {self.memlimit >> 20} MiB of memory to decompress{asks}; "
                "preset 6, the default of lzma and xz, needs 9 MiB; nothing was unpacked",
            )
        return corrupt(f"invalid {self.label} data: the data is damaged (liblzma: {text})")


class PlainTar:
    """An uncompressed tar: the bytes as they are read."""

    backend = "tar (uncompressed)"

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def finish(self) -> None:
        pass
