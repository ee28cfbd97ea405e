"""The pieces of ``make release`` that need no build: release notes from CHANGELOG.md, SHA256SUMS, and the SBOM
made from a described artefact (scripts/binary/sbom.py), validated against the CycloneDX 1.6 schema offline.

Not marked ``binary``: these run with every ``make test``. tests/binary/test_release.py checks a real release.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from binary import release, sbom
from binary.layers import trailer

CHANGELOG = """# Changelog

## 0.3.0 — 2027-01-05

### Added
- three

## 0.2.0 — 2026-12-01

### Fixed
- two

## 0.1.0
- one
"""


def test_release_notes_are_the_versions_section() -> None:
    notes = release.release_notes(CHANGELOG, "0.2.0")
    assert notes == "## 0.2.0 — 2026-12-01\n\n### Fixed\n- two\n"
    assert release.release_notes(CHANGELOG, "0.1.0") == "## 0.1.0\n- one\n"  # the last section runs to the end


def test_release_notes_do_not_match_a_longer_version() -> None:
    with pytest.raises(SystemExit, match="no '## 0.3' section"):
        release.release_notes(CHANGELOG, "0.3")


def test_release_notes_refuse_an_empty_section() -> None:
    with pytest.raises(SystemExit, match="is empty"):
        release.release_notes("## 1.0.0\n\n## 0.9.0\n- x\n", "1.0.0")


def test_sha256sums_is_what_sha256sum_checks(tmp_path: Path) -> None:
    for name, data in (("b.bin", b"\x00\x01"), ("a b.md", "notes é\n".encode())):
        (tmp_path / name).write_bytes(data)
    text = release.sha256sums(tmp_path, ["b.bin", "a b.md"])
    assert [line.split("  ", 1)[1] for line in text.splitlines()] == ["a b.md", "b.bin"]
    (tmp_path / "SHA256SUMS").write_text(text, encoding="utf-8")
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    ok = subprocess.run([tool, "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "b.bin").write_bytes(b"tampered")
    bad = subprocess.run([tool, "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "b.bin: FAILED" in bad.stdout


def test_the_platform_comes_from_the_launchers_elf_header(tmp_path: Path) -> None:
    def built(machine: int) -> Path:
        launcher = b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 9 + b"\x02\x00" + machine.to_bytes(2, "little") + b"\0" * 40
        path = tmp_path / f"asrctl-{machine}"
        path.write_bytes(launcher + b"payload" + trailer(len(launcher), len(b"payload")))
        return path

    assert release.platform_of(built(0x3E)) == "linux-x86_64"
    assert release.platform_of(built(0xB7)) == "linux-aarch64"
    with pytest.raises(SystemExit, match="unknown ELF machine"):
        release.platform_of(built(0x99))


# --- the SBOM, from a described artefact -----------------------------------------------------------------------

SHA = "ab" * 32
BUILD_ID = {"pyinstaller": "11" * 20, "nssfix": "22" * 20}
COMMIT = "c" * 40
CLICK_HASHES = ["cc" * 32, "cd" * 32]


def inventory(**changes: Any) -> sbom.Inventory:
    f = sbom.BundledFile
    inv = sbom.Inventory(
        binary_name="asrctl-1.0.0-linux-x86_64",
        binary_sha256=SHA,
        version={
            "version": "1.0.0",
            "commit": COMMIT,
            "build_date": "2026-12-01T10:00:00Z",
            "python": "3.11.7 (CPython)",
        },
        files=[
            f("launcher", "launcher", "01" * 32, "aa" * 20, True),
            f("staticx", "(bootloader)", "02" * 32, None, True),
            f("staticx", "(pyinstaller program)", "03" * 32, BUILD_ID["pyinstaller"], True),
            f("staticx", "libc.so.6", "04" * 32, "c6" * 20, True),
            f("staticx", "ld-linux-x86-64.so.2", "05" * 32, "1d" * 20, True),
            f("staticx", "libnssfix.so", "06" * 32, BUILD_ID["nssfix"], True),
            f("pyinstaller", "libssl.so.3", "07" * 32, "55" * 20, True),
            f("pyinstaller", "libmystery.so.1", "08" * 32, "99" * 20, True),
            f("pyinstaller", "libpython3.11.so.1.0", "09" * 32, "77" * 20, True),
            f("pyinstaller", "python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", "0a" * 32, None, True),
            f("pyinstaller", "base_library.zip", "0b" * 32),
            f("pyinstaller", "PYZ.pyz", "0c" * 32),
            f("pyinstaller", "click-8.5.1.dist-info/METADATA", "0d" * 32),
            f("pyinstaller", "asrctl/platforms/linux.toml", "0e" * 32),
        ],
        modules=[
            "<script __main__>",
            "_asrctl_build",
            "asrctl",
            "asrctl.cli",
            "click",
            "click.core",
            "json",
            "pyimod01_archive",
            "pyi_rth_inspect",
            "struct",
        ],  # fmt: skip
        floor={"glibc_bundled": "2.36", "glibc_needed": "2.35", "kernel_min": "3.2.0"},
    )
    for key, value in changes.items():
        setattr(inv, key, value)
    return inv


def environment(**changes: Any) -> sbom.Environment:
    packages = {"c6" * 20: ("libc6", "2.36-9+deb12u14", "amd64"), "1d" * 20: ("libc6", "2.36-9+deb12u14", "amd64"),
                "55" * 20: ("libssl3", "3.0.19-1~deb12u2", "amd64")}  # fmt: skip
    env = sbom.Environment(
        module_owner=lambda top: {"click": "click", "pyinstaller": None}.get(top),
        installed_version=lambda name: {"click": "8.5.1", "pyinstaller": "6.22.3", "staticx": "0.14.2"}.get(name),
        locks={
            "constraints/binary.txt": {
                "click": ("8.5.1", CLICK_HASHES),
                "pyinstaller": ("6.22.3", ["d1" * 32]),
                "staticx": ("0.14.2", ["d2" * 32]),
            }
        },
        is_stdlib=lambda top: top in ("json", "struct"),
        host_package=lambda _name, bid: packages.get(bid or ""),
        host_distro="debian-12",
        bootloader_ids=dict(BUILD_ID),
        bootloader_hashes={"pyinstaller": "e1" * 32, "staticx": "e2" * 32, "nssfix": "e3" * 32},
        static_libc=("libc6-dev", "2.36-9+deb12u14", "amd64"),
        tools={"asrctl scripts/binary/sbom.py": "1.0.0"},
    )
    for key, value in changes.items():
        setattr(env, key, value)
    return env


def validate(bom: dict[str, Any]) -> None:
    validation = pytest.importorskip("cyclonedx.validation.json", reason="cyclonedx-python-lib is in the dev lock")
    from cyclonedx.schema import SchemaVersion

    error = validation.JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.dumps(bom))
    assert error is None, str(error)[:1500]


def by_ref(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in bom["components"]}


def test_the_sbom_is_valid_cyclonedx_1_6() -> None:
    bom = sbom.make_bom(inventory(), environment())
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    validate(bom)


def test_the_sbom_names_every_layer_from_its_evidence() -> None:
    bom = sbom.make_bom(inventory(), environment())
    comps = by_ref(bom)
    click = comps["pypi:click"]
    assert (click["version"], click["purl"]) == ("8.5.1", "pkg:pypi/click@8.5.1")
    assert sorted(h["content"] for h in click["hashes"]) == sorted(CLICK_HASHES)  # the lock's hashes
    assert [c["name"] for c in click["components"]] == ["pyinstaller:click-8.5.1.dist-info/METADATA"]
    assert comps["cpython"]["version"] == "3.11.7"
    assert {c["name"] for c in comps["cpython"]["components"]} == {
        "pyinstaller:base_library.zip",
        "pyinstaller:libpython3.11.so.1.0",
        "pyinstaller:python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
    }
    libc = comps["deb:libc6"]
    assert libc["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"
    assert {c["name"] for c in libc["components"]} == {"staticx:libc.so.6", "staticx:ld-linux-x86-64.so.2"}
    assert {"name": "asrctl:glibc", "value": "2.36"} in libc["properties"]
    assert comps["deb:libssl3"]["version"] == "3.0.19-1~deb12u2"
    assert "version" not in comps["file:pyinstaller:libmystery.so.1"]  # found, hashed, not named by a guess
    pyi = comps["pypi:pyinstaller"]
    assert {"name": "asrctl:bootloader-build-id-matches", "value": "True"} in pyi["properties"]
    assert {c["name"] for c in comps["pypi:staticx"]["components"]} == {"staticx:(bootloader)", "staticx:libnssfix.so"}
    assert comps["deb:libc6-dev:static"]["name"] == "libc6-dev"
    subject = bom["metadata"]["component"]
    assert subject["hashes"] == [{"alg": "SHA-256", "content": SHA}]
    assert subject["pedigree"] == {"commits": [{"uid": COMMIT}]}
    assert bom["metadata"]["timestamp"] == "2026-12-01T10:00:00Z"
    assert bom["dependencies"][0]["dependsOn"] == sorted(comps)


def test_the_purls_parse_back() -> None:
    packageurl = pytest.importorskip("packageurl")
    bom = sbom.make_bom(inventory(), environment())
    for comp in bom["components"]:
        if "purl" in comp:
            parsed = packageurl.PackageURL.from_string(comp["purl"])
            assert parsed.version == comp["version"], comp["purl"]
    epoch = packageurl.PackageURL.from_string(sbom.deb_purl("zlib1g", "1:1.2.13.dfsg-1", "amd64", "debian-12"))
    assert (epoch.name, epoch.version, epoch.qualifiers["arch"]) == ("zlib1g", "1:1.2.13.dfsg-1", "amd64")


def test_the_sbom_is_deterministic_and_its_serial_follows_the_binary() -> None:
    first = sbom.dumps(sbom.make_bom(inventory(), environment()))
    again = sbom.dumps(sbom.make_bom(inventory(), environment()))
    assert first == again
    other = sbom.make_bom(inventory(binary_sha256="cd" * 32), environment())
    assert json.loads(first)["serialNumber"] != other["serialNumber"]
    import uuid

    assert json.loads(first)["serialNumber"] == f"urn:uuid:{uuid.uuid5(sbom.SERIAL_NAMESPACE, 'sha256:' + SHA)}"


def test_a_module_nobody_owns_stops_the_sbom() -> None:
    inv = inventory(modules=[*inventory().modules, "mysterymod"])
    with pytest.raises(SystemExit, match="(?s)cannot name what these are.*module mysterymod"):
        sbom.make_bom(inv, environment())


def test_a_frozen_distribution_missing_from_the_lock_stops_the_sbom() -> None:
    env = environment(module_owner=lambda top: {"click": "click", "attr": "attrs"}.get(top))
    inv = inventory(modules=[*inventory().modules, "attr"])
    with pytest.raises(SystemExit, match="attrs is frozen into the binary but pinned in no lock"):
        sbom.make_bom(inv, env)


def test_a_build_from_other_versions_than_the_lock_stops_the_sbom() -> None:
    env = environment(installed_version=lambda name: {"click": "8.1.0"}.get(name, "6.22.3"))
    with pytest.raises(SystemExit, match="click: the lock pins 8.5.1, the build used 8.1.0"):
        sbom.make_bom(inventory(), env)


def test_parse_lock_reads_versions_and_hashes() -> None:
    text = "click==8.5.1 \\\n    --hash=sha256:" + "b" * 64 + " \\\n    --hash=sha256:" + "a" * 64 + "\n    # via x\n"
    assert sbom.parse_lock(text) == {"click": ("8.5.1", ["a" * 64, "b" * 64])}


def test_a_tree_with_changes_is_not_released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release, "source_commit", lambda: "c" * 40 + "-dirty")
    with pytest.raises(SystemExit, match="not a clean commit"):
        release.make_release(tmp_path / "asrctl", tmp_path / "release")
    monkeypatch.setattr(release, "source_commit", lambda: "c" * 40)
    with pytest.raises(SystemExit, match="does not exist"):
        release.make_release(tmp_path / "asrctl", tmp_path / "release")
    assert not (tmp_path / "release").exists()
