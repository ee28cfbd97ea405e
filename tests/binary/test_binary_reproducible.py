"""Two builds of the same tree (and the same lock, constraints/binary.txt) are byte-identical: a second build, in
another directory, must equal dist/asrctl (tests/binary/test_release.py compares the releases made from both)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.binary


def test_a_second_build_is_byte_identical(exe: Path, rebuilt: Path) -> None:
    first, second = exe.read_bytes(), rebuilt.read_bytes()
    assert len(first) > 1_000_000  # a real build, not an empty file on both sides
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
