"""``asrctl bundles verify|checksum|extract`` as a subprocess: exit codes, messages, JSON, nothing left behind."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers_archives import (
    FORMATS,
    NAME,
    M,
    lzma_alone,
    not_a_tar,
    ordinary_members,
    tar_bytes,
    truncate,
    write_bundle,
    write_raw,
    xz,
)

RHEL = NAME.replace("UBUNTU-22.04-64", "RHEL8-64")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass
class Box:
    root: Path
    bundles: Path
    out: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        full = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
        full.update({"NO_COLOR": "1", "COLUMNS": "200", "NO_PROXY": "*"})
        full.update(env or {})
        argv = [sys.executable, "-m", "asrctl", "--root", str(self.root), "--bundle-dir", str(self.bundles), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=full, stdin=subprocess.DEVNULL, timeout=60)
        return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    root, bundles, out = tmp_path / "root", tmp_path / "bundles", tmp_path / "out"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\nID_LIKE=debian\n')
    (root / "etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n")
    bundles.mkdir()
    out.mkdir()
    return Box(root, bundles, out)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def empty(path: Path) -> bool:
    return list(path.iterdir()) == []


# --- checksum -----------------------------------------------------------------------------------------------


def test_checksum_writes_sums_coreutils_reads(box: Box) -> None:
    ubuntu = write_bundle(box.bundles, ordinary_members())
    rhel = write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)
    r = box.run("--json", "bundles", "checksum", str(box.bundles))
    assert r.code == 0, r.stderr
    assert r.json["changed"] is True
    assert r.json["data"]["bundles"] == [
        {"filename": n, "sha256": sha(p)} for n, p in sorted([(NAME, ubuntu), (RHEL, rhel)])
    ]
    assert f"wrote {box.bundles / 'SHA256SUMS'} (2 bundles)" in r.stderr
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=box.bundles, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_checksum_of_a_dir_without_bundles(box: Box) -> None:
    r = box.run("bundles", "checksum", str(box.bundles))
    assert r.code == 4
    assert "ASRCTL-E020" in r.stderr and "no bundles in" in r.stderr


# --- verify -------------------------------------------------------------------------------------------------


def test_verify_without_argument_checks_this_hosts_bundle(box: Box) -> None:
    ubuntu = write_bundle(box.bundles, ordinary_members())
    write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)
    box.run("bundles", "checksum", str(box.bundles))
    r = box.run("--json", "bundles", "verify")
    assert r.code == 0, r.stderr
    [row] = r.json["data"]["bundles"]
    assert row["filename"] == NAME and row["status"] == "verified" and row["sha256"] == sha(ubuntu)
    assert row["source"] == "SHA256SUMS beside the bundle"
    assert "SHA-256 matches SHA256SUMS beside the bundle" in r.stderr


def test_verify_all(box: Box) -> None:
    write_bundle(box.bundles, ordinary_members())
    write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)
    box.run("bundles", "checksum", str(box.bundles))
    r = box.run("--json", "bundles", "verify", "--all")
    assert r.code == 0, r.stderr
    assert [b["status"] for b in r.json["data"]["bundles"]] == ["verified", "verified"]


def test_verify_mismatch_exits_5_naming_both_digests(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    wrong = "f" * 64
    (box.bundles / "SHA256SUMS").write_text(f"{wrong}  {NAME}\n")
    r = box.run("--json", "bundles", "verify", str(bundle))
    assert r.code == 5
    assert "ASRCTL-E030" in r.stderr and wrong in r.stderr and sha(bundle) in r.stderr
    assert r.json["error"]["code"] == "ASRCTL-E030"
    assert r.json["data"]["bundles"][0]["status"] == "MISMATCH"


def test_verify_all_with_one_bad_bundle(box: Box) -> None:
    write_bundle(box.bundles, ordinary_members())
    write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)
    box.run("bundles", "checksum", str(box.bundles))
    (box.bundles / RHEL).write_bytes((box.bundles / RHEL).read_bytes() + b"\0")
    r = box.run("--json", "bundles", "verify", "--all")
    assert r.code == 5
    assert "1 of 2 bundles failed verification" in r.stderr and RHEL in r.stderr
    assert {b["filename"]: b["status"] for b in r.json["data"]["bundles"]} == {NAME: "verified", RHEL: "MISMATCH"}


def test_verify_with_sha256_option(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    assert box.run("bundles", "verify", str(bundle), "--sha256", sha(bundle).upper()).code == 0
    r = box.run("bundles", "verify", str(bundle), "--sha256", "0" * 64)
    assert r.code == 5 and "from --sha256" in r.stderr


def test_verify_without_digest_warns_and_passes(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    r = box.run("bundles", "verify", str(bundle))
    assert r.code == 0
    assert "NOT VERIFIED" in r.stderr and f"asrctl bundles checksum {box.bundles}" in r.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_require_digest_makes_a_missing_digest_fatal(box: Box, how: str) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    if how == "option":
        r = box.run("bundles", "verify", str(bundle), "--require-digest")
    else:
        r = box.run("bundles", "verify", str(bundle), env={"ASRCTL_REQUIRE_DIGEST": "1"})
    assert r.code == 5
    assert "ASRCTL-E031" in r.stderr and NAME in r.stderr


def test_bad_sha256_option_is_a_usage_error(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    r = box.run("bundles", "verify", str(bundle), "--sha256", "1234")
    assert r.code == 2
    assert "not a SHA-256 digest" in r.stderr


def test_malformed_sums_file(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    (box.bundles / "SHA256SUMS").write_text("this is not it\n")
    r = box.run("bundles", "verify", str(bundle))
    assert r.code == 2
    assert "ASRCTL-E035" in r.stderr and "line 1" in r.stderr


def test_verify_when_this_host_has_no_bundle(box: Box) -> None:
    write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)
    r = box.run("bundles", "verify")
    assert r.code == 4 and "ASRCTL-E020" in r.stderr and "UBUNTU-22.04-64" in r.stderr


# --- extract ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", FORMATS)
def test_extract_verified_with_exec_bits_and_step_lines(box: Box, compression: str) -> None:
    bundle = write_bundle(box.bundles, ordinary_members(), compression=compression)
    box.run("bundles", "checksum", str(box.bundles))
    dest = box.out / "b"
    r = box.run("--json", "bundles", "extract", str(bundle), str(dest))
    assert r.code == 0, r.stderr
    data = r.json["data"]
    assert data["verified"] is True and data["source"] == "SHA256SUMS beside the bundle"
    assert data["sha256"] == sha(bundle) and data["members"] == 13 and data["dest"] == str(dest)
    assert data["format"] == compression
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert os.access(dest / "install", os.X_OK) and stat.S_IMODE((dest / "install").stat().st_mode) == 0o755
    # stderr is not a terminal here: a few plain step lines instead of a bar.
    assert f"• Verifying and unpacking {NAME}" in r.stderr
    assert f"Verifying and unpacking {NAME}: done" in r.stderr
    assert [p.name for p in box.out.iterdir()] == ["b"]


def test_extract_quiet_prints_nothing(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    r = box.run("-q", "bundles", "extract", str(bundle), str(box.out / "b"), "--sha256", sha(bundle))
    assert r.code == 0 and r.stderr == ""


def test_extract_without_digest_warns(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    r = box.run("-q", "--json", "bundles", "extract", str(bundle), str(box.out / "b"))
    assert r.code == 0
    assert "NOT VERIFIED" in r.stderr  # even with -q
    assert r.json["data"]["verified"] is False


def test_extract_require_digest_refuses_before_unpacking(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    r = box.run("bundles", "extract", str(bundle), str(box.out / "b"), "--require-digest")
    assert r.code == 5 and "ASRCTL-E031" in r.stderr
    assert empty(box.out)


@pytest.mark.parametrize("compression", FORMATS)
def test_extract_digest_mismatch_leaves_nothing(box: Box, compression: str) -> None:
    bundle = write_bundle(box.bundles, ordinary_members(), compression=compression)
    r = box.run("--json", "bundles", "extract", str(bundle), str(box.out / "b"), "--sha256", "e" * 64)
    assert r.code == 5
    assert "ASRCTL-E030" in r.stderr and "e" * 64 in r.stderr and sha(bundle) in r.stderr
    assert r.json["error"]["details"]["actual"] == sha(bundle)
    assert empty(box.out)


@pytest.mark.parametrize("compression", FORMATS)
def test_extract_unsafe_archive_names_the_member(box: Box, compression: str) -> None:
    members = [M("install", data=b"x"), M("../../etc/cron.d/x", data=b"* * * * * root x")]
    bundle = write_bundle(box.bundles, members, compression=compression)
    r = box.run("--json", "bundles", "extract", str(bundle), str(box.out / "b"))
    assert r.code == 5
    assert "ASRCTL-E032" in r.stderr and "'../../etc/cron.d/x'" in r.stderr
    assert r.json["error"]["details"]["member"] == "../../etc/cron.d/x"
    assert empty(box.out)


@pytest.mark.parametrize("compression", FORMATS)
def test_extract_corrupted_bundle(box: Box, compression: str) -> None:
    good = write_bundle(box.bundles, ordinary_members() + [M("pad", data=os.urandom(30_000))], compression=compression)
    bundle = write_raw(box.bundles, truncate(good.read_bytes()))
    r = box.run("bundles", "extract", str(bundle), str(box.out / "b"))
    assert r.code == 5
    assert "ASRCTL-E033" in r.stderr and "truncated" in r.stderr
    assert empty(box.out)


def _good_tar() -> bytes:
    return tar_bytes(ordinary_members() + [M("pad", data=os.urandom(30_000))])


BAD_INPUT = {
    "truncated LZMA": (lambda: truncate(lzma_alone(_good_tar())), "truncated: the LZMA data stops"),
    "truncated xz": (lambda: truncate(xz(_good_tar())), "truncated: the xz data stops"),
    "LZMA outside, not a tar inside": (lambda: not_a_tar("lzma"), "(lzma): not a tar archive"),
    "garbage after the LZMA stream": (
        lambda: lzma_alone(_good_tar()) + b"\n<html>",
        "(lzma): unexpected data after the end of the LZMA stream",
    ),
    "garbage after the xz stream": (
        lambda: xz(_good_tar()) + b"\n<html>",
        "(xz): unexpected data after the end of the xz stream",
    ),
    "zero-byte bundle": (lambda: b"", "empty file (0 bytes)"),
    "unknown format": (
        lambda: b"<!DOCTYPE html><title>proxy login</title>" + bytes(600),
        "not a bundle format asrctl knows: it starts with 3c 21 44 4f 43 54 59 50",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_extract_bad_input_exits_5_naming_the_file(box: Box, case: str) -> None:
    make, words = BAD_INPUT[case]
    bundle = write_raw(box.bundles, make())
    r = box.run("--json", "bundles", "extract", str(bundle), str(box.out / "b"))
    assert r.code == 5, r.stderr
    assert "ASRCTL-E033" in r.stderr and NAME in r.stderr
    assert words in r.json["error"]["message"], r.json["error"]["message"]
    assert r.json["error"]["code"] == "ASRCTL-E033"
    assert empty(box.out), "no staging directory, no destination"


@pytest.mark.parametrize("compression", FORMATS)
def test_list_and_verify_show_the_format(box: Box, compression: str) -> None:
    bundle = write_bundle(box.bundles, ordinary_members(), compression=compression)
    write_bundle(box.bundles, [M("x", data=b"x")], name=RHEL)  # gzip, as Microsoft builds the RPM families
    box.run("bundles", "checksum", str(box.bundles))
    r = box.run("--json", "bundles", "list")
    assert r.code == 0, r.stderr
    assert {b["filename"]: b["format"] for b in r.json["data"]["bundles"]} == {NAME: compression, RHEL: "gzip"}
    table = box.run("bundles", "list")
    assert "format" in table.stderr and compression in table.stderr
    r = box.run("--json", "bundles", "verify", "--all")
    assert r.code == 0, r.stderr
    assert {b["filename"]: b["format"] for b in r.json["data"]["bundles"]} == {NAME: compression, RHEL: "gzip"}
    assert "format" in r.stderr  # the table's column
    one = box.run("bundles", "verify", str(bundle))
    assert f"{NAME} ({compression}): SHA-256 matches" in one.stderr


def test_list_names_what_an_unknown_file_starts_with(box: Box) -> None:
    write_raw(box.bundles, b"PK\x03\x04" + bytes(100))
    r = box.run("--json", "bundles", "list")
    assert r.code == 0
    [ignored] = r.json["data"]["ignored"]
    assert "not a bundle format asrctl knows: it starts with 50 4b 03 04" in ignored["reason"]
    assert r.json["data"]["bundles"] == []


def test_extract_into_an_existing_destination(box: Box) -> None:
    bundle = write_bundle(box.bundles, ordinary_members())
    (box.out / "b").mkdir()
    r = box.run("bundles", "extract", str(bundle), str(box.out / "b"))
    assert r.code == 6 and "ASRCTL-E037" in r.stderr
    assert [p.name for p in box.out.iterdir()] == ["b"]


def test_extract_refuses_a_windows_bundle(box: Box) -> None:
    exe = box.bundles / "Microsoft-ASR_UA_9.66.7567.1_Windows_GA_20Sep2025_release.exe"
    exe.write_bytes(b"MZ" + bytes(100))
    r = box.run("bundles", "extract", str(exe), str(box.out / "b"))
    assert r.code == 4 and "ASRCTL-E022" in r.stderr and "Windows installer" in r.stderr
    assert empty(box.out)


def test_help_names_the_env_var(box: Box) -> None:
    r = box.run("bundles", "extract", "--help")
    assert r.code == 0
    assert "--require-digest" in r.stdout and "ASRCTL_REQUIRE_DIGEST" in r.stdout and "--sha256 HEX" in r.stdout
