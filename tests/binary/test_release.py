"""``make release`` on the real dist/asrctl: the files, SHA256SUMS, a valid SBOM that describes what is inside the
binary, the release notes -- and the same bytes for every file from a second build of the same commit."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from binsupport import REPO

pytestmark = pytest.mark.binary


@pytest.fixture(scope="module")
def said(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from binary.build import version_facts

    rt = tmp_path_factory.mktemp("rt")
    rt.chmod(0o700)
    return version_facts(exe, rt)


@pytest.fixture(scope="module")
def made(exe: Path, said: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("PyInstaller", reason="reading the archive needs PyInstaller (make binary installs it)")
    from binary.build import source_commit
    from binary.release import make_release

    if said["commit"] != source_commit():
        pytest.skip(f"{exe} was built at {said['commit']}, the tree is now {source_commit()}: make test-binary")

    out = tmp_path_factory.mktemp("release") / "release"
    make_release(exe, out, allow_dirty=True)  # the tree under test may hold uncommitted work; CI's is clean
    return out


@pytest.fixture(scope="module")
def bom(made: Path) -> dict[str, Any]:
    (path,) = made.glob("*.cdx.json")
    return json.loads(path.read_text(encoding="utf-8"))


def components(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in bom["components"]}


def test_the_release_holds_four_files(made: Path, exe: Path, said: dict[str, str]) -> None:
    stem = f"asrctl-{said['version']}-linux-x86_64"
    assert sorted(p.name for p in made.iterdir()) == sorted(
        ["SHA256SUMS", stem, f"{stem}.cdx.json", f"asrctl-{said['version']}-release-notes.md"]
    )
    assert (made / stem).read_bytes() == exe.read_bytes()
    assert (made / stem).stat().st_mode & 0o777 == 0o755


def test_sha256sum_checks_the_release(made: Path) -> None:
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    proc = subprocess.run([tool, "-c", "SHA256SUMS"], cwd=made, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": OK") == 3


def test_the_sbom_is_valid_cyclonedx(made: Path) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json", reason="cyclonedx-python-lib is in the dev lock")
    from cyclonedx.schema import SchemaVersion

    (path,) = made.glob("*.cdx.json")
    error = validation.JsonStrictValidator(SchemaVersion.V1_6).validate_str(path.read_text(encoding="utf-8"))
    assert error is None, str(error)[:1500]


def test_the_sbom_describes_this_binary(bom: dict[str, Any], exe: Path, said: dict[str, str]) -> None:
    subject = bom["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(exe.read_bytes()).hexdigest()}]
    assert subject["version"] == said["version"]
    assert {"name": "asrctl:commit", "value": said["commit"]} in subject["properties"]
    assert bom["metadata"]["timestamp"] == said["build_date"]
    comps = components(bom)
    assert comps["cpython"]["version"] == said["python"].split()[0]
    from binary.floor import analyse_file

    floor = analyse_file(exe)
    libc = comps["deb:libc6"] if "deb:libc6" in comps else None
    if libc is None:
        pytest.skip("the build host's glibc is not a Debian package (no dpkg): nothing to name it by")
    assert {"name": "asrctl:glibc", "value": floor["glibc_bundled"]} in libc["properties"]
    assert {c["name"] for c in libc["components"]} >= {"staticx:libc.so.6", "staticx:ld-linux-x86-64.so.2"}


def test_only_runtime_distributions_are_frozen(bom: dict[str, Any]) -> None:
    """A distribution the dev venv merely holds must not be frozen (attrs and typing_extensions were, before the
    SBOM showed it): every Python distribution inside is a runtime or `fast` dependency, pinned in binary.txt."""
    from binary.sbom import parse_lock

    runtime = set(parse_lock((REPO / "constraints" / "runtime.txt").read_text(encoding="utf-8"))) | {"isal"}
    frozen = {c["name"] for c in bom["components"] if c["bom-ref"].startswith("pypi:")} - {"pyinstaller", "staticx"}
    assert {"click", "rich", "requests", "urllib3", "psutil"} <= frozen
    assert frozen <= runtime, f"frozen but not runtime dependencies: {sorted(frozen - runtime)}"
    for comp in bom["components"]:
        if comp["bom-ref"].startswith("pypi:"):
            assert {"name": "asrctl:lock", "value": "constraints/binary.txt"} in comp["properties"], comp["name"]
            assert comp["hashes"], comp["name"]


def test_the_release_notes_are_the_changelog_section(made: Path, said: dict[str, str]) -> None:
    from binary.release import CHANGELOG, release_notes

    notes = (made / f"asrctl-{said['version']}-release-notes.md").read_text(encoding="utf-8")
    assert notes == release_notes(CHANGELOG.read_text(encoding="utf-8"), said["version"])
    assert notes.startswith(f"## {said['version']}")


def test_a_binary_from_another_commit_is_refused(exe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from binary import release

    monkeypatch.setattr(release, "source_commit", lambda: "0" * 40)
    with pytest.raises(SystemExit, match="rebuild it"):
        release.make_release(exe, tmp_path / "release")
    assert not (tmp_path / "release").exists()


def test_a_second_build_gives_the_same_release(made: Path, rebuilt: Path, tmp_path: Path) -> None:
    from binary.release import make_release

    make_release(rebuilt, tmp_path / "again", allow_dirty=True)
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(made.iterdir())}
    second = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "again").iterdir())}
    assert len(first) == 4
    assert first == second
