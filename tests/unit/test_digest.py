"""Digests: sha256_file, SHA256SUMS in coreutils format, the digest policy, verify_bundle."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers_archives import NAME, M, ordinary_members, write_bundle

from asrctl.bundles.digest import (
    SOURCE_OPTION,
    SOURCE_SUMS,
    DigestPolicy,
    VerifyOutcome,
    add_sum,
    expected_digest,
    format_sums,
    read_sums,
    sha256_file,
    verify_bundle,
    write_sums,
)
from asrctl.errors import AsrctlError

OTHER = NAME.replace("UBUNTU-22.04-64", "RHEL8-64")
A = "a" * 64
B = "b" * 64


def hexof(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeOut:
    """What verify_bundle needs of Output: warn() and progress()."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.advanced = 0

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def progress(self, description: str, total: int):  # type: ignore[no-untyped-def]
        import contextlib

        outer = self

        class Handle:
            def advance(self, n: int) -> None:
                outer.advanced += n

        return contextlib.nullcontext(Handle())


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundles", ordinary_members())


# --- sha256_file --------------------------------------------------------------------------------------------


def test_sha256_file_matches_hashlib_and_reports_progress(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * (3 << 20) + b"tail")
    out = FakeOut()
    with out.progress("x", 0) as handle:
        assert sha256_file(f, handle) == hexof(f)
    assert out.advanced == f.stat().st_size


def test_sha256_file_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AsrctlError) as err:
        sha256_file(tmp_path / "nope")
    assert err.value.code == "ASRCTL-E022"


# --- SHA256SUMS ---------------------------------------------------------------------------------------------


def test_read_sums_coreutils_forms(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(
        f"{A}  {NAME}\n"  # text mode
        f"{B.upper()} *{OTHER}\n"  # binary mode, upper-case hex
        "\n"
        f"{'c' * 64}  ./with-dot-slash.tar.gz\n"
        f"\\{'d' * 64}  back\\\\slash\\nnewline\n"  # escaped name
        f"SHA256 (bsd-style.exe) = {'e' * 64}\n"  # sha256sum --tag
    )
    assert read_sums(sums) == {
        NAME: A,
        OTHER: B,
        "with-dot-slash.tar.gz": "c" * 64,
        "back\\slash\nnewline": "d" * 64,
        "bsd-style.exe": "e" * 64,
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"{A}  {NAME}\nnot a line\n", 2),
        (f"{A[:-1]}  {NAME}\n", 1),  # 63 digits
        (f"{A}{NAME}\n", 1),  # no separator
        (f"{A}  {NAME}\n{B}  {NAME}\n", 2),  # the same name twice, two digests
        (f"\\{A}  bad\\qescape\n", 1),
    ],
)
def test_malformed_sums_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(text)
    with pytest.raises(AsrctlError) as err:
        read_sums(sums)
    assert err.value.code == "ASRCTL-E035"
    assert f"line {line}" in err.value.message
    assert str(sums) in err.value.message
    assert "asrctl bundles checksum" in err.value.remedy


def test_sums_that_are_not_text(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_bytes(b"\xff\xfe" + bytes(100))
    with pytest.raises(AsrctlError) as err:
        read_sums(sums)
    assert err.value.code == "ASRCTL-E035"


def test_the_same_line_twice_is_fine(tmp_path: Path) -> None:
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{A}  {NAME}\n{A}  {NAME}\n")
    assert read_sums(sums) == {NAME: A}


def test_format_round_trips_odd_names() -> None:
    sums = {NAME: A, "odd\\name\nwith newline": B}
    text = format_sums(sums)
    assert text.splitlines()[0] == f"{A}  {NAME}"
    from asrctl.bundles.digest import parse_sums

    assert parse_sums(text, "x") == sums


def test_write_sums_lists_exactly_the_bundles(tmp_path: Path, bundle: Path) -> None:
    d = bundle.parent
    other = write_bundle(d, [M("x", data=b"other")], name=OTHER)
    (d / "README.txt").write_text("not a bundle")
    (d / NAME.replace("9.66", "9.67")).write_bytes(b"")  # a bundle name, but empty: left out
    (d / "SHA256SUMS").write_text("stale\n")
    target = write_sums(d)
    assert target == d / "SHA256SUMS"
    assert read_sums(target) == {NAME: hexof(bundle), OTHER: hexof(other)}
    assert target.read_text() == "".join(f"{hexof(p)}  {p.name}\n" for p in sorted([bundle, other]))
    assert not [p for p in d.iterdir() if p.name.startswith(".SHA256SUMS")]  # no temp file left


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_coreutils_accepts_what_write_sums_writes(bundle: Path) -> None:
    write_sums(bundle.parent)
    proc = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=bundle.parent, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{NAME}: OK" in proc.stdout


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_read_sums_reads_what_coreutils_writes(bundle: Path) -> None:
    text = subprocess.run(["sha256sum", NAME], cwd=bundle.parent, capture_output=True, text=True, check=True).stdout
    (bundle.parent / "SHA256SUMS").write_text(text)
    assert read_sums(bundle.parent / "SHA256SUMS") == {NAME: hexof(bundle)}


def test_write_sums_without_bundles(tmp_path: Path) -> None:
    with pytest.raises(AsrctlError) as err:
        write_sums(tmp_path)
    assert err.value.code == "ASRCTL-E020"
    assert not (tmp_path / "SHA256SUMS").exists()


def test_write_sums_on_a_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(AsrctlError) as err:
        write_sums(tmp_path / "nope")
    assert err.value.code == "ASRCTL-E021"


def test_add_sum_keeps_the_other_lines(tmp_path: Path) -> None:
    (tmp_path / "SHA256SUMS").write_text(f"{A}  {OTHER}\n")
    add_sum(tmp_path, NAME, B.upper())
    assert read_sums(tmp_path / "SHA256SUMS") == {OTHER: A, NAME: B}


# --- the policy ---------------------------------------------------------------------------------------------


def test_policy_normalizes_and_validates_hex() -> None:
    assert DigestPolicy(sha256=f" {A.upper()} ").sha256 == A
    with pytest.raises(AsrctlError) as err:
        DigestPolicy(sha256="xyz")
    assert err.value.code == "ASRCTL-E002"


def test_expected_from_the_option_wins(bundle: Path) -> None:
    (bundle.parent / "SHA256SUMS").write_text("malformed, and not even read\n")
    assert expected_digest(bundle, DigestPolicy(sha256=A)) == (A, SOURCE_OPTION)
    assert SOURCE_OPTION == "--sha256"


def test_expected_from_sums_beside_the_bundle(bundle: Path) -> None:
    (bundle.parent / "SHA256SUMS").write_text(f"{B}  {NAME}\n")
    assert expected_digest(bundle, DigestPolicy()) == (B, SOURCE_SUMS)
    assert SOURCE_SUMS == "SHA256SUMS beside the bundle"


def test_no_sums_file(bundle: Path) -> None:
    digest, why = expected_digest(bundle, DigestPolicy())
    assert digest is None and "no SHA256SUMS beside the bundle" in why


def test_sums_without_a_line_for_the_bundle(bundle: Path) -> None:
    (bundle.parent / "SHA256SUMS").write_text(f"{B}  {OTHER}\n")
    digest, why = expected_digest(bundle, DigestPolicy())
    assert digest is None and f"has no line for {NAME}" in why


def test_required_digest_missing_is_e031(bundle: Path) -> None:
    with pytest.raises(AsrctlError) as err:
        expected_digest(bundle, DigestPolicy(require=True))
    assert err.value.code == "ASRCTL-E031"
    assert err.value.exit_code == 5
    assert NAME in err.value.message
    assert "asrctl bundles checksum" in err.value.remedy


def test_malformed_sums_is_e035(bundle: Path) -> None:
    (bundle.parent / "SHA256SUMS").write_text("garbage\n")
    with pytest.raises(AsrctlError) as err:
        expected_digest(bundle, DigestPolicy())
    assert err.value.code == "ASRCTL-E035"


# --- verify_bundle ------------------------------------------------------------------------------------------


def test_verify_ok(bundle: Path) -> None:
    write_sums(bundle.parent)
    out = FakeOut()
    got = verify_bundle(bundle, DigestPolicy(), out)  # type: ignore[arg-type]
    assert got == VerifyOutcome(bundle, hexof(bundle), SOURCE_SUMS, verified=True)
    assert out.warnings == []
    assert out.advanced == bundle.stat().st_size


def test_verify_mismatch_names_expected_and_actual(bundle: Path) -> None:
    (bundle.parent / "SHA256SUMS").write_text(f"{A}  {NAME}\n")
    with pytest.raises(AsrctlError) as err:
        verify_bundle(bundle, DigestPolicy(), FakeOut())  # type: ignore[arg-type]
    e = err.value
    assert e.code == "ASRCTL-E030" and e.exit_code == 5
    assert A in e.message and hexof(bundle) in e.message and SOURCE_SUMS in e.message
    assert e.details == {"bundle": str(bundle), "expected": A, "actual": hexof(bundle), "source": SOURCE_SUMS}


def test_verify_mismatch_against_the_option(bundle: Path) -> None:
    write_sums(bundle.parent)  # right, but --sha256 wins
    with pytest.raises(AsrctlError) as err:
        verify_bundle(bundle, DigestPolicy(sha256=B), None)
    assert err.value.code == "ASRCTL-E030" and "(from --sha256)" in err.value.message


def test_verify_without_digest_warns_loudly(bundle: Path) -> None:
    out = FakeOut()
    got = verify_bundle(bundle, DigestPolicy(), out)  # type: ignore[arg-type]
    assert not got.verified and got.digest == hexof(bundle)
    [warning] = out.warnings
    assert "NOT VERIFIED" in warning
    assert f"asrctl bundles checksum {bundle.parent}" in warning
    assert "--sha256" in warning and "--require-digest" in warning


def test_verify_without_digest_when_required(bundle: Path) -> None:
    out = FakeOut()
    with pytest.raises(AsrctlError) as err:
        verify_bundle(bundle, DigestPolicy(require=True), out)  # type: ignore[arg-type]
    assert err.value.code == "ASRCTL-E031"
    assert out.advanced == 0  # refused before reading the bundle
