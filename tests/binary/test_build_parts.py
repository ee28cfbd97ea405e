"""The pieces of the binary build that need no build: the launcher trailer, the floor arithmetic, the lock check.

Not marked ``binary``: these run with every ``make test`` (pyelftools, where needed, comes with the dev lock only
through the binary extra, so those tests skip without it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from binary import build, floor, layers


def test_the_trailer_finds_the_payload_behind_the_launcher(tmp_path: Path) -> None:
    launcher, payload = b"\x7fELF launcher bytes", b"the staticx executable" * 100
    built = tmp_path / "asrctl"
    built.write_bytes(launcher + payload + layers.trailer(len(launcher), len(payload)))
    assert layers.split_final(built) == (launcher, payload)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"short", "too short"),
        (b"\x7fELF" + b"\0" * 100, "no launcher trailer"),
        (b"\x7fELF" + b"\0" * 100 + layers.trailer(4, 99), "do not match the file size"),
    ],
)
def test_a_damaged_file_is_refused_with_the_reason(tmp_path: Path, content: bytes, message: str) -> None:
    built = tmp_path / "asrctl"
    built.write_bytes(content)
    with pytest.raises(SystemExit, match=message):
        layers.split_final(built)


def test_glibc_symbol_versions_are_read_and_private_ones_ignored() -> None:
    assert floor.glibc_version("GLIBC_2.17") == (2, 17)
    assert floor.glibc_version("GLIBC_2.2.5") == (2, 2, 5)
    assert floor.glibc_version("GLIBC_PRIVATE") is None
    assert floor.glibc_version("GCC_3.0") is None


def test_the_report_names_what_is_not_covered() -> None:
    facts = {
        "glibc_needed": "2.35",
        "glibc_needed_by": ["pyinstaller:libpython3.11.so.1.0"],
        "glibc_bundled": "2.36",
        "kernel_min": "3.2.0",
        "kernel_min_from": ["staticx:libc.so.6"],
        "targets_covered": ["Ubuntu 16.04"],
        "targets_not_covered": ["RHEL / CentOS / Oracle Linux 6 (kernel 2.6.32)"],
    }
    lines = floor.report(facts)
    assert lines[0].startswith("needs GLIBC_2.35 at most (pyinstaller:libpython3.11.so.1.0)")
    assert "bundled glibc 2.36" in lines[0]
    assert lines[1] == "minimum kernel 3.2.0 (from staticx:libc.so.6)"
    assert lines[-1].startswith("does NOT cover: RHEL / CentOS / Oracle Linux 6 (kernel 2.6.32)")
    assert len(floor.report({**facts, "targets_not_covered": []})) == 3


def test_elf_facts_of_a_real_program_and_of_something_else() -> None:
    pytest.importorskip("elftools", reason="pyelftools comes with the binary extra (make binary)")
    true = Path(shutil.which("true") or "/bin/true").resolve()
    facts = floor.elf_facts("true", true.read_bytes())
    assert facts is not None
    assert facts.needs and max(facts.needs) >= (2, 2, 5)  # any dynamically linked x86_64 program
    assert floor.elf_facts("script", b"#!/bin/sh\n") is None


def test_the_lock_check_names_every_difference(tmp_path: Path) -> None:
    lock = tmp_path / "binary.txt"
    lock.write_text(
        "# make lock\nPyInstaller==6.10.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via asrctl\n"
        "staticx==0.14.1 \\\n    --hash=sha256:" + "b" * 64 + "\nclick==8.1.7 \\\n    --hash=sha256:" + "c" * 64 + "\n",
        encoding="utf-8",
    )
    pins = build.lock_pins(lock)
    assert pins == {"pyinstaller": "6.10.0", "staticx": "0.14.1", "click": "8.1.7"}
    installed = {"pyinstaller": "6.10.0", "staticx": "0.14.2"}
    assert build.lock_differences(pins, installed.get) == [
        "click: lock 8.1.7, installed nothing",
        "staticx: lock 0.14.1, installed 0.14.2",
    ]
    assert build.lock_differences(pins, {**installed, "staticx": "0.14.1", "click": "8.1.7"}.get) == []


def test_the_build_date_comes_from_the_environment_or_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build.source_date_epoch() == 1700000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(SystemExit, match="not a number of seconds"):
        build.source_date_epoch()


def test_the_launcher_source_is_a_real_file_the_build_compiles() -> None:
    source = build.LAUNCHER_SOURCE.read_text(encoding="utf-8")
    assert "int\nmain(int argc, char **argv)" in source
    # The trailer format is written by layers.py and read by launcher.c: the two must agree.
    assert f'#define TRAILER_MAGIC "{layers.TRAILER_MAGIC.decode()}"' in source
    assert f"#define TRAILER_SIZE {layers.TRAILER.size}" in source
