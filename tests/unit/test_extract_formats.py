"""Recognising a bundle's format from its first bytes (asrctl/bundles/formats.py): pure, no disk."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from helpers_archives import FORMATS, NAME, M, compress, header, ordinary_members, tar_bytes, write_bundle

from asrctl.bundles import catalog
from asrctl.bundles.formats import SNIFF_BYTES, describe, lzma_alone_header, sniff


@pytest.mark.parametrize("compression", FORMATS)
def test_every_format_is_recognised_by_content(compression: str) -> None:
    data = compress(tar_bytes(ordinary_members()), compression)
    assert sniff(data[:SNIFF_BYTES]) == compression


def test_what_tar_lzma_writes() -> None:
    """``lzma`` from a pipe (what ``tar --lzma`` runs upstream): properties 5d, an 8 MiB dictionary, the size
    unknown."""
    head = bytes.fromhex("5d 00 00 80 00 ff ff ff ff ff ff ff ff 00 34 9b")
    assert sniff(head) == "lzma"
    assert lzma_alone_header(head) == (0x5D, 8 << 20, (1 << 64) - 1)


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (bytes.fromhex("5d 00 00 80 00 ff ff ff ff ff ff ff"), "12 bytes: no whole header"),
        (bytes.fromhex("e1 00 00 80 00 ff ff ff ff ff ff ff ff"), "properties byte over 224"),
        (bytes.fromhex("5d 00 00 70 00 ff ff ff ff ff ff ff ff"), "dictionary 7 MiB: not 2^n or 3 * 2^(n-1)"),
        (bytes.fromhex("5d 00 08 00 00 ff ff ff ff ff ff ff ff"), "dictionary 2 KiB: under 4 KiB"),
        (bytes.fromhex("5d 00 00 80 00 00 00 00 00 00 01 00 00"), "a known size of 1 TiB"),
    ],
)
def test_lzma_alone_header_rules(head: bytes, why: str) -> None:
    assert lzma_alone_header(head) is None, why


def test_known_lzma_sizes_and_three_halves_dictionaries_are_lzma() -> None:
    assert sniff(bytes.fromhex("5d 00 00 c0 00 00 10 00 00 00 00 00 00")) == "lzma"  # 12 MiB, 4 KiB of data


def test_a_plain_tar_whose_first_name_passes_for_an_lzma_header_is_tar() -> None:
    """'f0' + NULs reads as properties 66, a 48-byte dictionary…; the ustar magic decides first."""
    data = tar_bytes([M("f0", data=b"x")])
    assert sniff(data[:SNIFF_BYTES]) == "tar"


def test_pre_posix_tar_by_its_checksum() -> None:
    block = bytearray(header("install", size=5))
    block[257:265] = bytes(8)  # no ustar magic, no version: a v7 header
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    assert sniff(bytes(block)) == "tar"
    block[0] ^= 1  # the checksum no longer holds
    assert sniff(bytes(block)) is None


@pytest.mark.parametrize(
    ("head", "shown"),
    [
        (b"", "nothing (0 bytes)"),
        (bytes(512), "512 zero bytes"),
        (b"<!DOCTYPE html>\n<html>", "3c 21 44 4f 43 54 59 50 ('<!DOCTYPE html>.')"),
        (b"PK\x03\x04\x14\x00\x08\x00", "50 4b 03 04 14 00 08 00 ('PK......')"),
        (b"BZh91AY&SY", "42 5a 68 39 31 41 59 26 ('BZh91AY&SY')"),
    ],
)
def test_unknown_formats_are_described(head: bytes, shown: str) -> None:
    assert sniff(head) is None
    assert describe(head) == shown


def test_an_empty_tar_is_no_bundle() -> None:
    """``tar -cf x.tar --files-from /dev/null``: 10 KB of zeros, nothing to install."""
    assert sniff(bytes(10240)[:SNIFF_BYTES]) is None


def test_gnu_and_pax_tars_are_tar() -> None:
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        assert sniff(tar_bytes(ordinary_members(), fmt)[:SNIFF_BYTES]) == "tar"


@pytest.mark.parametrize("compression", FORMATS)
def test_the_catalog_reads_only_the_first_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """`bundles list` on a share of large bundles must not read them: 512 bytes each, whatever the size."""
    path = write_bundle(tmp_path, ordinary_members() + [M("big", data=os.urandom(1 << 20))], compression=compression)
    read: list[int] = []

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            read.append(len(data))
            return data

    def counting_open(file: Path, mode: str = "r") -> io.FileIO:
        assert mode == "rb"
        return Counting(file, "r")

    monkeypatch.setattr(catalog, "open", counting_open, raising=False)
    found = catalog.scan([tmp_path])
    assert [(b.path.name, b.format) for b in found.bundles] == [(NAME, compression)]
    assert 0 < sum(read) <= SNIFF_BYTES < path.stat().st_size
