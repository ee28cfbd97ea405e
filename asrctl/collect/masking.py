"""How one file's bytes become a member of the support archive: only the tail is kept (a cut tail starts at the
next whole line, so no secret is cut in half), a rotated ``.gz``/``.xz``/``.bz2`` log is decompressed as a stream,
secrets are masked in line-aligned pieces (JSON documents field by field, so they stay valid; a PEM block never
split), and the masked result is fitted to the room the archive has left."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from asrctl.system import redact, rootfs

DECOMPRESS_LIMIT = 256 << 20  # a rotated .gz is decompressed up to here (a decompression bomb stops here)
CHUNK = 1 << 20
JSON_PARSE_LIMIT = 4 << 20  # a larger JSON file is masked as text (parsed, 16 MiB of JSON is ~10x in objects)

DECOMPRESSORS: dict[str, Callable[[Any], Any]] = {
    ".gz": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    ".xz": lambda f: lzma.LZMAFile(f),
    ".bz2": lambda f: bz2.BZ2File(f),
}


def _first_whole_line(raw: bytes | bytearray, start: int = 0) -> int:
    """Where a cut tail's first whole line starts: a token cut in half could not be recognised as a secret."""
    nl = raw.find(b"\n", start)
    return len(raw) if nl < 0 else nl + 1


def decompressed_tail(opened: rootfs.Opened, limit: int, suffix: str) -> tuple[bytearray, int, bool]:
    """(the last ``limit`` decompressed bytes, how many were decompressed, whether the stream ended)."""
    buf = bytearray()
    total = 0
    with DECOMPRESSORS[suffix](opened.stream()) as stream:
        while total < DECOMPRESS_LIMIT:
            chunk = stream.read(min(CHUNK, DECOMPRESS_LIMIT - total))
            if not chunk:
                return buf, total, True
            total += len(chunk)
            buf += chunk
            if len(buf) > limit:
                del buf[: len(buf) - limit]  # cheap: bytearray drops a prefix without copying the rest
        complete = not stream.read(1)
    return buf, total, complete


@dataclass
class Piece:
    """Masked output of ``raw[start:end]``: the source span is kept so a piece can be cut and masked again."""

    data: bytes
    count: int
    start: int
    end: int


def scrub(raw: bytes | bytearray, cut: bool, name: str, room: int) -> tuple[list[Piece], bool]:
    """Mask secrets in one file's kept bytes (JSON documents by field, JSON lines line by line, everything else
    as text, in line-aligned pieces) and keep at most ``room`` bytes of the result, whole lines from the end.
    Returns the pieces and whether the file was cut."""
    start = _first_whole_line(raw) if cut else 0
    lower = name.lower()
    if lower.endswith(".json") and not cut and len(raw) <= JSON_PARSE_LIMIT:
        try:
            doc = json.loads(str(memoryview(raw), "utf-8"))
        except ValueError:
            pass  # the vendor's JSON is not always valid (unescaped quotes): masked as text below
        else:
            masked, count = redact.scrub_json(doc)
            data = (json.dumps(masked, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            if len(data) <= room:
                return [Piece(data, count, 0, len(raw))], False
    if lower.endswith(".jsonl"):
        pieces = [_scrub_json_line(raw, a, b) for a, b in _lines(raw, start)]
    else:
        pieces = [_scrub_span(raw, a, b, cut and a == start) for a, b in _spans(raw, start)]
    return _fit(raw, pieces, room, cut)


def _fit(raw: bytes | bytearray, pieces: list[Piece], room: int, cut: bool) -> tuple[list[Piece], bool]:
    """Drop whole pieces from the front, then cut the first one at a line, until the masked output fits."""
    total = sum(len(p.data) for p in pieces)
    while pieces and total > room:
        first = pieces[0]
        excess = total - room
        total -= len(first.data)
        cut = True
        if excess >= len(first.data):
            pieces.pop(0)
            continue
        again = _scrub_span(raw, _first_whole_line(raw, first.start + excess), first.end, True)
        pieces[0] = again
        total += len(again.data)
    return pieces, cut


def _lines(raw: bytes | bytearray, start: int) -> Iterator[tuple[int, int]]:
    pos = start
    while pos < len(raw):
        end = _first_whole_line(raw, pos)
        yield pos, end
        pos = end


def _scrub_json_line(raw: bytes | bytearray, a: int, b: int) -> Piece:
    line = str(memoryview(raw)[a:b], "utf-8", "replace")
    try:
        masked, count = redact.scrub_json(json.loads(line))
        text = json.dumps(masked, sort_keys=True, ensure_ascii=False) + "\n"
    except ValueError:
        text, count = redact.scrub_text(line)
    return Piece(text.encode("utf-8"), count, a, b)


def _spans(raw: bytes | bytearray, start: int) -> Iterator[tuple[int, int]]:
    """~1 MiB spans that end at a line end, and never inside a PEM block (which spans lines)."""
    pos = start
    while pos < len(raw):
        end = raw.find(b"\n", min(len(raw), pos + CHUNK))
        end = len(raw) if end < 0 else end + 1
        begin = raw.rfind(b"-----BEGIN ", pos, end)
        if begin >= 0 and raw.find(b"-----END ", begin, end) < 0:
            close = raw.find(b"-----END ", end)
            close = -1 if close < 0 else raw.find(b"\n", close)
            end = len(raw) if close < 0 else close + 1
        yield pos, end
        pos = end


def _scrub_span(raw: bytes | bytearray, a: int, b: int, first_of_cut: bool) -> Piece:
    text = str(memoryview(raw)[a:b], "utf-8", "replace")
    masked, count = redact.scrub_cut_text(text) if first_of_cut else redact.scrub_text(text)
    return Piece(masked.encode("utf-8"), count, a, b)


class Pieces(io.RawIOBase):
    """The pieces as one stream for tarfile, without joining them into one more copy."""

    def __init__(self, pieces: list[Piece]) -> None:
        self._rest = [memoryview(p.data) for p in pieces if p.data]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            return 0
        head = self._rest[0]
        n = min(len(buffer), len(head))
        buffer[:n] = head[:n]
        if n == len(head):
            self._rest.pop(0)
        else:
            self._rest[0] = head[n:]
        return n


# --- the verb -----------------------------------------------------------------------------------------------
