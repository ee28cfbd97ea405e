"""The lock (constraints/*.txt, written by ``make lock``) covers what setup.cfg declares, with hashes.

setup.cfg keeps the ``>=`` lower bounds (it is the metadata home); the constraints pin one resolve of them for
Python 3.11 on x86_64 Linux. A dependency added to setup.cfg without ``make lock`` fails here, not in
``make venv`` on someone's fresh clone.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "constraints"
# lock file -> what it must pin: the runtime requirements plus these extras (Makefile, target `lock`).
CONTENTS = {"runtime.txt": (), "dev.txt": ("dev", "fast"), "binary.txt": ("fast", "binary"), "windows.txt": ("fast",)}


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a hash-pinned requirements file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=\S+)*)\s*$", line)
        if m is None:
            raise ValueError(f"not a hash-pinned requirement: {line!r}")
        hashes = re.findall(r"--hash=(\S+)", m.group(3))
        pins[canonicalize_name(m.group(1))] = (m.group(2), hashes)
    return pins


def declared(*extras: str) -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def locks() -> dict[str, dict[str, tuple[str, list[str]]]]:
    return {name: parse_lock((LOCKS / name).read_text(encoding="utf-8")) for name in CONTENTS}


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_every_declared_requirement_is_pinned_within_its_bounds(
    name: str, locks: dict[str, dict[str, tuple[str, list[str]]]]
) -> None:
    pins = locks[name]
    for req in declared(*CONTENTS[name]):
        key = canonicalize_name(req.name)
        assert key in pins, f"{req} (setup.cfg) is not in constraints/{name}: run `make lock`"
        version = pins[key][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"constraints/{name} pins {req.name}=={version}, outside setup.cfg's {req}: run `make lock`"
        )


@pytest.mark.parametrize("name", sorted(CONTENTS))
def test_every_pin_has_sha256_hashes(name: str, locks: dict[str, dict[str, tuple[str, list[str]]]]) -> None:
    assert locks[name], f"constraints/{name} pins nothing"
    for pkg, (_version, hashes) in locks[name].items():
        assert hashes, f"{pkg} in constraints/{name} has no --hash: pip --require-hashes would refuse it"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (pkg, hashes)


def test_one_venv_can_hold_every_lock(locks: dict[str, dict[str, tuple[str, list[str]]]]) -> None:
    # make venv installs dev.txt and make binary adds binary.txt to the same venv: a package pinned in two files
    # must be pinned to one version, or the second install would change what the first one tested.
    seen: dict[str, tuple[str, str]] = {}
    for name, pins in locks.items():
        for pkg, (version, _hashes) in pins.items():
            if pkg in seen:
                other, other_version = seen[pkg]
                assert version == other_version, f"{pkg}: {other_version} in {other}, {version} in {name}"
            seen[pkg] = (name, version)


def test_the_windows_build_is_locked_at_the_linux_builds_versions(
    locks: dict[str, dict[str, tuple[str, list[str]]]],
) -> None:
    # docs/WINDOWS.md builds asrctl.exe from constraints/windows.txt with the spec `make binary` uses.
    for pkg in ("pyinstaller", "pyelftools", "click", "psutil"):
        assert locks["windows.txt"][pkg][0] == locks["binary.txt"][pkg][0], pkg
    assert "pywin32-ctypes" in locks["windows.txt"], "resolved for Windows (PyInstaller needs it there)"
    assert "staticx" not in locks["windows.txt"]


def test_the_lock_tool_and_pip_are_locked_too(locks: dict[str, dict[str, tuple[str, list[str]]]]) -> None:
    assert "uv" in locks["dev.txt"], "make lock runs the venv's uv: it must come from the lock"
    assert "pip" in locks["dev.txt"], "make venv installs pip from the lock before anything else"


def test_parse_lock_refuses_an_unpinned_or_unhashed_line() -> None:
    assert parse_lock("click==8.1.7 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via asrctl\n") == {
        "click": ("8.1.7", ["sha256:" + "a" * 64])
    }
    with pytest.raises(ValueError, match="not a hash-pinned"):
        parse_lock("click>=8.1\n")
    assert parse_lock("click==8.1.7\n") == {"click": ("8.1.7", [])}  # caught by the hash test above
