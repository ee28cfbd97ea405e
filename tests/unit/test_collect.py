"""logs collect (asrctl/collect/), in-process: sources, confinement, caps, redaction, manifest, the archive file.

The end-to-end runs (a real install first, the 3 GB log measured in a child process) are in
tests/e2e/test_support.py.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asrctl import collect
from asrctl.app import App
from asrctl.collect import archive, gather, masking
from asrctl.errors import AsrctlError
from asrctl.output import Output
from asrctl.system import redact

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/distros/ubuntu-22.04"
PASSPHRASE = "Tr1cky-Passphrase-7f3a9c"

# Credentials asrctl never saw, in the shapes the issue names; none of the values may reach the archive.
SHAPES = {
    "bearer": ("GET /api Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig", "eyJhbGciOiJSUzI1NiJ9"),
    "bearer-alone": ("retrying with bearer AbCdEf0123456789tok", "AbCdEf0123456789tok"),
    "basic": ("header Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    "sas": ("PUT https://a.blob.core.windows.net/c?sv=2022-11-02&sig=S4s%2Fsig%3D&se=2030 200", "S4s%2Fsig%3D"),
    "key": ("upload key=K3yValue9 done", "K3yValue9"),
    "registration_key": ("cfg registration_key=RegK3y-0042 ok", "RegK3y-0042"),
    "password": ("login PASSWORD=Hunter2Pw failed", "Hunter2Pw"),
    "passphrase": ("cs Passphrase: PhraseV4lue ok", "PhraseV4lue"),
    "secret": ("client_secret=Cl13ntS3cr3t next", "Cl13ntS3cr3t"),
    "token": ('{"access_token": "T0kenValue77", "n": 1}', "T0kenValue77"),
    "ini": ("RelaySharedKey = Sh4red Key With Spaces", "Sh4red Key With Spaces"),
    "url": ("proxy http://proxyuser:Pr0xyPw@proxy.local:3128 used", "Pr0xyPw"),
}
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The suite's session log (tests/conftest.py) would be collected too; collect itself writes no log here.
    monkeypatch.delenv("ASRCTL_LOG_FILE", raising=False)
    r = tmp_path / "root"
    shutil.copytree(FIXTURE, r, symlinks=True)
    (r / "var/log").mkdir(parents=True, exist_ok=True)
    (r / "var/lib/asrctl").mkdir(parents=True, exist_ok=True)
    return r


def make_app(root: Path) -> App:
    (root.parent / "bundles").mkdir(exist_ok=True)
    app = App(root_arg=str(root), bundle_dir_args=(str(root.parent / "bundles"),), out=Output(verbosity=-1))
    app.command = "logs collect"
    return app


def run(root: Path, **kwargs: Any) -> tuple[dict[str, Any], dict[str, bytes], Path]:
    target = root.parent / "out" / "case.tar.gz"
    result = collect.collect(make_app(root), str(target), **kwargs)
    with tarfile.open(target) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["case/manifest.json"])
    assert manifest == json.loads(json.dumps(result.data["manifest"]))
    return manifest, members, target


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def entry(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    return next(f for f in manifest["files"] if f["path"] == path)


def skipped(manifest: dict[str, Any], path: str) -> dict[str, Any]:
    return next(s for s in manifest["skipped"] if s["path"] == path)


# --- what goes in ---------------------------------------------------------------------------------------------


def test_every_source_is_collected_with_its_rotations(root: Path) -> None:
    logs = [
        "ua_install.log",
        "ua_install.log.1",
        "ua_uninstall.log",
        "UaUnInstall.log",
        "InMage_drivers.log",
        "cdpcli.log",
        "AzureRcmCli.log",
        "AzureRcmCli.log-20250101",
        "svagents_curr_0001.log",
        "svagents.log.3",
        "appservice_curr_0001.log",
        "appservice.log.old",
        "asrctl.log",
        "asrctl.log.1",
    ]
    for name in logs:
        write(root, f"var/log/{name}", f"{name} line\n")
    write(root, "var/log/ua_install.log.2.gz", gzip.compress(b"rotated gz line\n"))
    write(root, "var/log/svagents.log.4.xz", lzma.compress(b"rotated xz line\n"))
    write(root, "var/log/InstallerErrors.json", '{"Errors": []}')
    write(root, "var/log/ASRsetuptelemetry/setup.json", '{"a": 1}')
    write(root, "var/lib/asrctl/journal.json", '{"status": "ok"}')
    write(root, "var/lib/asrctl/history.jsonl", '{"status": "ok"}\n')
    write(root, "var/lib/asrctl/private/run1/installerextendederrors.json", '{"e": 1}')
    write(root, "var/lib/asrctl/private/run1/passphrase", PASSPHRASE)
    write(root, "usr/local/.vx_version", "VERSION=9.65.0.0\n")  # no INSTALLATION_DIR: the agent part says why
    write(root, "usr/local/InMage/config/RCMInfo.conf", "[rcm]\nServiceUri = https://x\n")
    write(root, "var/log/unrelated.log", "not ours\n")
    write(root, "var/log/asrctl-support-old.tar.gz", b"an earlier archive")
    manifest, members, _ = run(root)
    got = {f["path"] for f in manifest["files"]}
    expected = {f"/var/log/{n}" for n in logs} | {
        "/var/log/ua_install.log.2.gz",
        "/var/log/svagents.log.4.xz",
        "/var/log/InstallerErrors.json",
        "/var/log/ASRsetuptelemetry/setup.json",
        "/var/lib/asrctl/journal.json",
        "/var/lib/asrctl/history.jsonl",
        "/var/lib/asrctl/private/run1/installerextendederrors.json",
        "/usr/local/.vx_version",
        "/usr/local/InMage/config/RCMInfo.conf",
    }
    assert got == expected
    assert members["case/files/var/log/ua_install.log.2"] == b"rotated gz line\n"  # stored decompressed
    assert members["case/files/var/log/svagents.log.4"] == b"rotated xz line\n"
    gz = entry(manifest, "/var/log/ua_install.log.2.gz")
    assert gz["decompressed"] == {"format": "gz", "bytes": 16, "complete": True}
    assert {f"case/reports/{r}.json" for r in ("detect", "status", "doctor", "host")} <= set(members)
    assert "case/reports/doctor.txt" in members
    assert not any("passphrase" in n.rsplit("/", 1)[-1] for n in members)  # read to be masked, never archived


def test_reports_are_the_json_documents_of_the_verbs(root: Path) -> None:
    manifest, members, _ = run(root)
    detect = json.loads(members["case/reports/detect.json"])
    assert detect["command"] == "detect" and detect["data"]["platform"]["os_tag"] == "UBUNTU-22.04-64"
    status = json.loads(members["case/reports/status.json"])
    assert status["command"] == "status" and status["data"]["agent"]["installed"] is False
    doctor = json.loads(members["case/reports/doctor.json"])
    # No bundle in the sandbox: doctor fails, and the report says so instead of stopping the archive.
    assert doctor["ok"] is False and doctor["error"]["code"] == "ASRCTL-E020"
    assert "connectivity" not in doctor["data"]  # no endpoint configured: no network check
    assert "Doctor" in members["case/reports/doctor.txt"].decode()
    host = json.loads(members["case/reports/host.json"])
    assert host["facts"]["distro_id"] == "ubuntu" and "/etc/os-release" in host["release_files"]
    assert {r["member"] for r in manifest["reports"]} >= {"case/reports/status.json", "case/reports/host.json"}


def test_a_failing_report_is_recorded_and_the_archive_still_written(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(app: App) -> None:
        raise RuntimeError("status exploded")

    monkeypatch.setattr(gather, "status_report", boom)
    write(root, "var/log/ua_install.log", "x\n")
    manifest, members, _ = run(root)
    status = json.loads(members["case/reports/status.json"])
    assert status["ok"] is False and status["error"]["code"] == "ASRCTL-E001"
    assert "status exploded" in status["error"]["message"]
    assert "/var/log/ua_install.log" in {f["path"] for f in manifest["files"]}


def test_expected_files_that_are_absent_are_listed(root: Path) -> None:
    manifest, _, _ = run(root)
    assert {"/var/log/InstallerErrors.json", "/var/lib/asrctl/journal.json", "/usr/local/.vx_version"} <= set(
        manifest["absent"]
    )


# --- confinement and odd files ---------------------------------------------------------------------------------


def test_links_out_are_skipped_and_listed(root: Path, tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.txt", "HOST-ONLY\n")
    (root / "var/log/ua_install.log").symlink_to("/etc/passwd")
    (root / "var/log/ua_uninstall.log").symlink_to(outside)
    (root / "var/log/ASRsetuptelemetry").symlink_to(outside.parent)  # a directory link out: nothing listed
    write(root, "var/log/svagents_curr_7.log", "inside\n")
    (root / "var/log/svagents.log").symlink_to("svagents_curr_7.log")  # a link inside: followed, once
    manifest, members, _ = run(root)
    for name, target in (("ua_install.log", "/etc/passwd"), ("ua_uninstall.log", str(outside))):
        s = skipped(manifest, f"/var/log/{name}")
        assert s["kind"] == "link-out" and f"to {target}" in s["reason"]
    blob = b"".join(members.values())
    assert b"root:x:0:0" not in blob and b"HOST-ONLY" not in blob
    paths = {f["path"] for f in manifest["files"]}
    assert ("/var/log/svagents.log" in paths) != ("/var/log/svagents_curr_7.log" in paths)  # one of the two names
    dup = next(s for s in manifest["skipped"] if s["kind"] == "duplicate")
    assert "the same file as" in dup["reason"]


def test_fifos_devices_and_directories_named_like_logs_are_skipped(root: Path) -> None:
    os.mkfifo(root / "var/log/ua_install.log")
    os.mkfifo(root / "var/log/svagents_curr_2.log")
    (root / "var/log/appservice_dir").mkdir()
    if os.geteuid() == 0:
        os.mknod(root / "var/log/cdpcli.log", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
    manifest, _, _ = run(root)  # returns: nothing blocks on the FIFOs, nothing reads the device
    assert skipped(manifest, "/var/log/ua_install.log")["kind"] == "not-regular"
    assert skipped(manifest, "/var/log/svagents_curr_2.log")["kind"] == "not-regular"
    assert skipped(manifest, "/var/log/appservice_dir")["kind"] == "directory"
    if os.geteuid() == 0:
        assert skipped(manifest, "/var/log/cdpcli.log")["kind"] == "not-regular"


def test_a_broken_gz_is_skipped_with_the_reason(root: Path) -> None:
    write(root, "var/log/ua_install.log.1.gz", b"\x1f\x8b not really gzip")
    manifest, _, _ = run(root)
    s = skipped(manifest, "/var/log/ua_install.log.1.gz")
    assert s["kind"] == "unreadable" and "cannot read it" in s["reason"]


# --- caps -------------------------------------------------------------------------------------------------------


def test_each_file_keeps_its_tail_from_a_whole_line(root: Path) -> None:
    lines = [f"line {i:05d} password=Pw{i:05d}\n" for i in range(2000)]
    write(root, "var/log/ua_install.log", "".join(lines))
    manifest, members, _ = run(root, max_file=4096)
    e = entry(manifest, "/var/log/ua_install.log")
    kept = members["case/files/var/log/ua_install.log"]
    assert e["truncated"] is True and e["size"] == sum(map(len, lines)) and e["kept"] == len(kept) <= 4096
    assert kept.startswith(b"line ") and kept.endswith(b"line 01999 password=********\n")
    assert b"Pw0" not in kept  # the cut first line went, not half a secret
    assert e["redacted"] == kept.count(b"********")


def test_the_archive_is_capped_and_what_did_not_fit_is_listed(root: Path) -> None:
    for i in range(12):
        write(root, f"var/log/svagents_curr_{i:04d}.log", f"{i}\n" * 2000)
    manifest, members, target = run(root, max_file=2048, max_total=24 << 10)
    content = sum(len(v) for k, v in members.items() if not k.endswith("manifest.json"))
    assert content == manifest["totals"]["kept_bytes"] <= 24 << 10
    assert all(f["kept"] <= 2048 for f in manifest["files"])
    full = [s for s in manifest["skipped"] if s["kind"] == "archive-full"]
    assert full and all("cap" in s["reason"] for s in full)
    assert len(manifest["files"]) + len(full) >= 12


def test_a_gz_bomb_stops_at_the_decompression_limit(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(masking, "DECOMPRESS_LIMIT", 64 << 10)
    write(root, "var/log/ua_install.log.1.gz", gzip.compress(b"a line of a bomb\n" * 100_000))
    manifest, members, _ = run(root, max_file=1024)
    e = entry(manifest, "/var/log/ua_install.log.1.gz")
    assert e["decompressed"] == {"format": "gz", "bytes": 64 << 10, "complete": False}
    assert e["truncated"] is True and len(members["case/files/var/log/ua_install.log.1"]) <= 1024


# --- redaction -------------------------------------------------------------------------------------------------


def test_token_shapes_are_masked_in_every_kind_of_file(root: Path) -> None:
    text = "".join(f"2025-01-01 {line}\n" for line, _ in SHAPES.values())
    pem = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
    write(root, "var/log/ua_install.log", text + pem)
    write(root, "var/log/ua_install.log.1.gz", gzip.compress(text.encode()))
    write(root, "var/log/svagents_curr_0001.log", text)
    write(root, "usr/local/InMage/config/RCMInfo.conf", "[rcm.relay]\nRelaySharedKey = Sh4red Key With Spaces\n")
    vendor_json = {"Errors": [{"ErrorName": "x", "Params": {"Password": "Hunter2Pw", "Key": {"sig": "S4s%2Fsig%3D"}}}]}
    write(root, "var/log/InstallerErrors.json", json.dumps(vendor_json))
    write(root, "var/log/ASRsetuptelemetry/t.json", '{"token": "T0kenValue77", "msg": "Bearer AbCdEf0123456789tok"')
    write(root, "var/lib/asrctl/history.jsonl", json.dumps({"registration_key": "RegK3y-0042"}) + "\n")
    manifest, members, _ = run(root)
    blob = b"\n".join(members.values())
    for name, (_, value) in SHAPES.items():
        assert value.encode() not in blob, name
    assert PEM_BODY.encode() not in blob and b"-----BEGIN PRIVATE KEY-----" in blob
    for path in ("/var/log/ua_install.log", "/var/log/InstallerErrors.json", "/usr/local/InMage/config/RCMInfo.conf"):
        assert entry(manifest, path)["redacted"] >= 1
    errors = json.loads(members["case/files/var/log/InstallerErrors.json"])  # still valid JSON, keys kept
    assert errors["Errors"][0]["Params"] == {"Password": "********", "Key": "********"}
    assert errors["Errors"][0]["ErrorName"] == "x"
    history = json.loads(members["case/files/var/lib/asrctl/history.jsonl"])
    assert history == {"registration_key": "********"}
    assert entry(manifest, "/var/log/ua_install.log")["redacted"] == len(SHAPES) + 1
    # Ordinary lines stay readable.
    assert b"2025-01-01 upload key=******** done" in members["case/files/var/log/ua_install.log"]


def test_passphrases_left_on_the_machine_are_learned_and_masked(root: Path) -> None:
    write(root, "usr/local/InMage/private/connection.passphrase", PASSPHRASE + "\n")
    write(root, "var/lib/asrctl/private/dead1/passphrase", "Other-Run-Secret")
    write(root, "var/log/ua_install.log", f"configurator -P file; read {PASSPHRASE}\n")
    write(root, "var/log/svagents_curr_0001.log", "dead run used Other-Run-Secret.\n")
    write(root, "var/lib/asrctl/journal.json", json.dumps({"describe": f"with {PASSPHRASE}"}))
    manifest, members, _ = run(root)
    for name, data in members.items():
        assert PASSPHRASE.encode() not in data and b"Other-Run-Secret" not in data, name
    assert entry(manifest, "/var/log/ua_install.log")["redacted"] == 1
    assert json.loads(members["case/files/var/lib/asrctl/journal.json"]) == {"describe": "with ********"}


def test_the_manifest_never_holds_a_secret(root: Path) -> None:
    redact.register("N4me-Secret")
    write(root, "var/log/svagents-N4me-Secret.log", "x\n")  # a log name that holds the secret
    manifest, members, _ = run(root)
    assert b"N4me-Secret" not in members["case/manifest.json"]
    assert not any("N4me-Secret" in name for name in members)  # nor in a member's name
    assert any(f["path"] == "/var/log/svagents-********.log" for f in manifest["files"])


# --- the archive file ---------------------------------------------------------------------------------------------


def test_the_archive_is_0600_complete_and_leaves_no_temp_file(root: Path) -> None:
    manifest, members, target = run(root)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["case.tar.gz"]
    with tarfile.open(target) as tar:
        assert all(m.mode == 0o600 and m.name.startswith("case/") for m in tar.getmembers())
    assert manifest["format"] == "asrctl-support/1"
    assert manifest["limits"] == {"file_bytes": archive.MAX_FILE, "total_bytes": archive.MAX_TOTAL}


def test_an_existing_file_is_never_replaced(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "case.tar.gz"
    target.write_text("precious")
    with pytest.raises(AsrctlError) as err:
        collect.collect(make_app(root), str(target))
    assert (err.value.code, err.value.exit_code) == ("ASRCTL-E037", 6)
    assert target.read_text() == "precious"
    (tmp_path / "dangling.tar.gz").symlink_to(tmp_path / "nowhere")
    with pytest.raises(AsrctlError):
        collect.collect(make_app(root), str(tmp_path / "dangling.tar.gz"))
    assert not (tmp_path / "nowhere").exists()


def test_a_file_that_appears_meanwhile_is_not_replaced(root: Path, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "case.tar.gz"
    real_sources = gather.sources

    def racing(app: App) -> list[gather.Source]:
        target.write_text("someone else's")
        return real_sources(app)

    monkeypatch.setattr(gather, "sources", racing)
    with pytest.raises(AsrctlError) as err:
        collect.collect(make_app(root), str(target))
    assert err.value.code == "ASRCTL-E037"
    assert target.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failure_half_way_leaves_nothing(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(app: App) -> list[gather.Source]:
        raise KeyboardInterrupt

    monkeypatch.setattr(gather, "sources", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect.collect(make_app(root), str(tmp_path / "out/case.tar.gz"))
    assert list((tmp_path / "out").iterdir()) == []


# --- the option parser ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("512K", 512 << 10), ("16m", 16 << 20), ("1GiB", 1 << 30)])
def test_sizes(text: str, size: int) -> None:
    from asrctl.commands.support import Size

    assert Size().convert(text, None, None) == size


@pytest.mark.parametrize("text", ["0", "-1", "1.5M", "ten", "16T", ""])
def test_bad_sizes_are_usage_errors(text: str, tmp_path: Path) -> None:
    from asrctl.cli import cli

    out = CliRunner().invoke(cli, ["--root", str(tmp_path), "logs", "collect", "--max-size", text])
    assert out.exit_code == 2
    assert re.search(r"not a positive size", out.output)


def test_a_private_key_is_masked_across_piece_boundaries(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(masking, "CHUNK", 64)  # pieces of ~64 bytes: the key block spans many
    body = "\n".join(f"{PEM_BODY[:40]}{i:04d}" for i in range(30))
    write(
        root,
        "var/log/ua_install.log",
        f"before\n-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\nafter\n",
    )
    manifest, members, _ = run(root)
    kept = members["case/files/var/log/ua_install.log"]
    assert PEM_BODY[:40].encode() not in kept
    assert kept == b"before\n-----BEGIN EC PRIVATE KEY-----\n********\n-----END EC PRIVATE KEY-----\nafter\n"
    assert entry(manifest, "/var/log/ua_install.log")["redacted"] == 1


def test_a_tail_cut_inside_a_private_key_masks_the_rest_of_it(root: Path) -> None:
    body = "\n".join(f"{PEM_BODY[:40]}{i:04d}" for i in range(100))
    write(root, "var/log/ua_install.log", f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\nlast\n")
    manifest, members, _ = run(root, max_file=1024)  # the BEGIN line is cut off
    kept = members["case/files/var/log/ua_install.log"]
    assert PEM_BODY[:40].encode() not in kept
    assert kept == b"********\n-----END PRIVATE KEY-----\nlast\n"
    assert entry(manifest, "/var/log/ua_install.log")["truncated"] is True


def test_masks_longer_than_the_secrets_still_fit_the_cap(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "pwd=ab" becomes "pwd=********": the masked tail is longer than what was read and is cut again at a line."""
    monkeypatch.setattr(masking, "CHUNK", 256)
    write(root, "var/log/ua_install.log", "".join(f"{i:04d} pwd=ab\n" for i in range(1000)))
    manifest, members, _ = run(root, max_file=4096)
    kept = members["case/files/var/log/ua_install.log"]
    e = entry(manifest, "/var/log/ua_install.log")
    assert e["kept"] == len(kept) <= 4096 and e["truncated"] is True
    assert kept.endswith(b"0999 pwd=********\n") and re.fullmatch(rb"(\d{4} pwd=\*{8}\n)+", kept)
    assert e["redacted"] == kept.count(b"\n")  # one per kept line, none of the dropped ones


def test_large_json_is_masked_as_text(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(masking, "JSON_PARSE_LIMIT", 16)
    write(root, "var/log/InstallerErrors.json", json.dumps({"Password": "Hunter2Pw", "pad": "x" * 64}))
    _, members, _ = run(root)
    assert b"Hunter2Pw" not in members["case/files/var/log/InstallerErrors.json"]
    assert json.loads(members["case/files/var/log/InstallerErrors.json"])["Password"] == "********"


def test_a_log_moved_with_asrctl_log_file_is_collected_where_it_is(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = write(tmp_path, "ci-logs/asrctl.log", "moved log line\n")
    monkeypatch.setenv("ASRCTL_LOG_FILE", str(moved))
    write(root, "var/log/asrctl.log", "log of an earlier run\n")
    manifest, members, _ = run(root)
    paths = {f["path"] for f in manifest["files"]}
    assert {str(moved), "/var/log/asrctl.log"} <= paths
    assert members[f"case/files{moved}"].startswith(b"moved log line\n")
