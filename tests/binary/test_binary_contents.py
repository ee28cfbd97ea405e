"""What is frozen into the file we ship: the product, and none of its test doubles.

The archive is read out of dist/asrctl itself (launcher trailer -> staticx archive -> PyInstaller CArchive -> PYZ),
not out of the build's intermediate files, so this checks what an operator copies to a host.
"""

from __future__ import annotations

from pathlib import Path
from types import CodeType

import pytest

pytestmark = pytest.mark.binary

# The same names tests/unit/test_layers.py looks for in the source tree (tests/fakes/ holds them all).
TEST_DOUBLES = {"RecordingRunner", "Scripted", "MemoryRegistry", "MemoryFiles", "ServiceInfo", "WindowsRunner"}


@pytest.fixture(scope="module")
def program(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("PyInstaller", reason="reading the archive needs PyInstaller (make binary installs it)")
    pytest.importorskip("elftools", reason="reading the staticx archive needs pyelftools (make binary installs it)")
    from binary.layers import pyinstaller_program

    return pyinstaller_program(exe, tmp_path_factory.mktemp("frozen"))


@pytest.fixture(scope="module")
def frozen(program: Path) -> dict[str, CodeType | None]:
    from binary.layers import frozen_code

    return frozen_code(program)


def test_the_archive_holds_the_product(frozen: dict[str, CodeType | None]) -> None:
    # The reader must see the modules it is asked about, or the checks below would pass on an empty listing.
    for module in ("asrctl", "asrctl.cli", "asrctl.errors", "click", "rich.console", "requests"):
        assert module in frozen, f"{module} is not in the frozen archive"
    assert "<script __main__>" in frozen
    from binary.layers import class_names

    errors = frozen["asrctl.errors"]
    assert errors is not None and "AsrctlError" in class_names(errors)


def test_no_test_doubles_module(frozen: dict[str, CodeType | None]) -> None:
    named_like_tests = sorted(m for m in frozen if m.split(".")[0] in ("tests", "fakes") or "fakes" in m.split("."))
    assert named_like_tests == [], f"test modules frozen into the product: {named_like_tests}"


def test_no_test_double_class(frozen: dict[str, CodeType | None]) -> None:
    from binary.layers import class_names

    found = {
        module: sorted(class_names(code) & TEST_DOUBLES)
        for module, code in frozen.items()
        if code is not None and class_names(code) & TEST_DOUBLES
    }
    assert found == {}, f"test doubles frozen into the product (they belong in tests/fakes): {found}"


def test_no_installer_records(program: Path) -> None:
    # What pip or uv wrote while installing the lock (RECORD, INSTALLER, REQUESTED) differs with how it was
    # installed, not with what: the spec leaves it out so that one lock gives one binary.
    from binary.layers import pyinstaller_entries

    names = list(pyinstaller_entries(program))
    metadata = [n for n in names if ".dist-info/" in n]
    records = [n for n in metadata if n.rsplit("/", 1)[-1] in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")]
    assert records == [], f"installer records frozen into the product: {records}"
    assert any(n.endswith(".dist-info/METADATA") for n in metadata), "the metadata the code asks for must stay"
