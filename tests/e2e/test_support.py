"""doctor and logs collect in a sandbox."""

from __future__ import annotations

import json
import tarfile

from e2e.conftest import OLD, PASSPHRASE, Sandbox


def _members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_doctor_reports_every_check_and_fails_on_a_missing_bundle(sandbox: Sandbox, cs) -> None:
    before = sandbox.files()
    r = sandbox.asrctl("--json", "doctor")
    assert r.returncode == 4
    checks = {c["name"]: c["status"] for c in r.json["data"]["checks"]}
    assert checks["platform"] == "ok" and checks["bundle"] == "fail" and checks["disk space"] == "ok"
    assert r.json["error"]["code"] == "ASRCTL-E020"
    bundle = next(c for c in r.json["data"]["checks"] if c["name"] == "bundle")
    assert {k: bundle[k] for k in ("status", "code", "ok")} == {"status": "fail", "code": "ASRCTL-E020", "ok": False}
    assert "--bundle-dir" in bundle["remedy"]
    assert sandbox.files() == before, "doctor must not change anything"


def test_doctor_with_the_configuration_server(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = sandbox.asrctl("--json", "doctor", "--cs-endpoint", cs.endpoint)
    assert r.returncode == 0, r.stderr
    assert {c["name"] for c in r.json["data"]["connectivity"]} >= {"cs_tcp", "cs_tls"}
    assert any(c["name"] == "digest" and c["status"] == "ok" for c in r.json["data"]["checks"])
    cs.stop()
    down = sandbox.asrctl("--json", "doctor", "--cs-endpoint", cs.endpoint, "--connect-timeout", "1")
    assert down.returncode == 8
    assert down.json["error"]["code"] == "ASRCTL-E082"
    # The TLS check could not run: the table says so and why, never "ok".
    tls_row = " ".join(line for line in down.stderr.splitlines() if "network: cs_tls" in line)
    assert "– skipped" in tls_row and "not tried" in tls_row and "✓ ok" not in tls_row


def test_logs_collect_is_redacted(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert (
        sandbox.asrctl("install", "--cs-endpoint", cs.endpoint, "--passphrase-stdin", stdin=PASSPHRASE).returncode == 0
    )
    # A log line that carries a secret asrctl never saw must be masked too; so must the passphrase wherever the
    # vendor's configurator keeps its copy and a log quotes it.
    with open(sandbox.root / "var/log/ua_install.log", "a") as fh:
        fh.write("debug: passphrase=OtherSecret-123\n")
        fh.write(f"debug: cs rejected {PASSPHRASE}, retrying\n")
    vendor_copy = sandbox.root / "usr/local/InMage/private/connection.passphrase"
    vendor_copy.parent.mkdir(parents=True, exist_ok=True)
    vendor_copy.write_text(PASSPHRASE + "\n")
    out = sandbox.base / "support.tar.gz"
    r = sandbox.asrctl("--json", "logs", "collect", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    members = _members(out)
    names = set(members)
    assert {"support/reports/status.json", "support/reports/doctor.json", "support/manifest.json"} <= names
    assert "support/files/var/log/ua_install.log" in names
    assert any(n.endswith("drscout.conf") for n in names)
    assert not any(n.endswith("connection.passphrase") for n in names)
    for name, data in members.items():  # every member, the manifest and the reports included
        assert b"OtherSecret-123" not in data and PASSPHRASE.encode() not in data, name
    assert PASSPHRASE not in r.stdout and PASSPHRASE not in r.stderr
    manifest = r.json["data"]["manifest"]
    assert json.loads(members["support/manifest.json"]) == manifest
    ua = next(f for f in manifest["files"] if f["path"] == "/var/log/ua_install.log")
    assert ua["redacted"] == 2 and ua["truncated"] is False
    # The agent is registered: the doctor report checked its configuration server.
    doctor = json.loads(members["support/reports/doctor.json"])
    assert {c["name"] for c in doctor["data"]["connectivity"]} >= {"cs_tcp", "cs_tls"}
    status = json.loads(members["support/reports/status.json"])
    assert status["data"]["agent"]["installed"] is True
    again = sandbox.asrctl("--json", "logs", "collect", "-o", str(out))
    assert (again.returncode, again.json["error"]["code"]) == (6, "ASRCTL-E037")


def test_logs_collect_never_follows_a_link_out(sandbox: Sandbox, tmp_path) -> None:
    """Issue 13 item 6: ``var/log/ua_install.log -> /etc/passwd`` was archived."""
    (sandbox.root / "var/log").mkdir(parents=True, exist_ok=True)
    (sandbox.root / "var/log/ua_install.log").symlink_to("/etc/passwd")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST-ONLY-CONTENT\n")
    (sandbox.root / "var/log/ua_uninstall.log").symlink_to(secret)
    out = sandbox.base / "support.tar.gz"
    r = sandbox.asrctl("--json", "logs", "collect", "-o", str(out))
    assert r.returncode == 0, r.stderr
    blob = b"".join(_members(out).values())
    assert b"root:x:0:0" not in blob and b"HOST-ONLY-CONTENT" not in blob
    skipped = {s["path"]: s for s in r.json["data"]["manifest"]["skipped"]}
    assert skipped["/var/log/ua_install.log"]["kind"] == "link-out"
    assert "(to /etc/passwd" in skipped["/var/log/ua_install.log"]["reason"]
    assert skipped["/var/log/ua_uninstall.log"]["kind"] == "link-out"
    assert "skipped /var/log/ua_install.log: a symbolic link leads out of /var/log" in r.stderr


# Run asrctl in a child and report its peak resident set size and psutil's view at the end. The peak is VmHWM from
# /proc/self/status: the high-water mark of the child's own address space, made new by exec. getrusage's ru_maxrss
# is not: Linux carries the pre-exec address space's mark over exec, and subprocess forks (vfork) from this pytest
# process, so it reports the test runner's peak whenever that is larger (seen: 298 MiB in a full parallel run).
_PEAK = """
import json, re, sys
import psutil
from asrctl.cli import run
code = run(sys.argv[1:])
with open("/proc/self/status") as fh:
    peak_kib = int(re.search(r"^VmHWM:\\s+(\\d+) kB", fh.read(), re.M).group(1))
print(json.dumps({"code": code, "peak": peak_kib * 1024, "rss_end": psutil.Process().memory_info().rss}),
      file=sys.stderr)
"""


def test_logs_collect_reads_only_the_tail_of_a_3_gb_log(sandbox: Sandbox) -> None:
    """Issue 13 item 6: a 3 GB log was read whole (3.2 GB RSS). A sparse file: no disk used."""
    import json
    import subprocess
    import sys

    big = sandbox.root / "var/log/svagents_curr_1.log"
    big.parent.mkdir(parents=True, exist_ok=True)
    # Sparse but for its last 24 MiB: real lines (some with a secret to mask), so the kept 16 MiB tail is text.
    line = b"2025-01-01 12:00:00 svagents INFO resync progress 42% token=abc123 of disk /dev/sdb\n"
    text = line * ((24 << 20) // len(line)) + b"the last line here\n"
    with open(big, "wb") as fh:
        fh.truncate((3 << 30) - len(text))
        fh.seek(0, 2)
        fh.write(text)
    out = sandbox.base / "support.tar.gz"
    argv = ["--root", str(sandbox.root), "logs", "collect", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, timeout=600)
    measured = json.loads(proc.stderr.strip().splitlines()[-1])
    assert measured["code"] == 0, proc.stderr
    print(f"peak RSS {measured['peak'] / 2**20:.0f} MiB for a 3 GiB log")
    assert measured["peak"] < 200 * 2**20  # a memory bound, not a time limit
    members = _members(out)
    kept = members["support/files/var/log/svagents_curr_1.log"]
    assert kept.endswith(b"the last line here\n") and 15 << 20 < len(kept) <= 16 << 20
    assert kept.startswith(b"2025-01-01 ") and b"abc123" not in kept
    manifest = json.loads(members["support/manifest.json"])
    entry = next(f for f in manifest["files"] if f["path"] == "/var/log/svagents_curr_1.log")
    assert (entry["size"], entry["kept"], entry["truncated"]) == (3 << 30, len(kept), True)
    assert entry["redacted"] == kept.count(b"token=********")


def test_a_one_digit_passphrase_leaves_journal_status_and_archive_whole(sandbox: Sandbox) -> None:
    """Issue 13 item 7 end to end: with the passphrase "1" journal.json was invalid, status lost the last run."""
    from asrsim import csserver

    pf = sandbox.base / "one.passphrase"
    pf.write_text("1\n")
    pf.chmod(0o600)
    server = csserver.start(sandbox.base / "cs1", pf, max_lifetime=300)
    try:
        sandbox.bundle(OLD)
        r = sandbox.asrctl("--json", "install", "--cs-endpoint", server.endpoint, "--passphrase-file", str(pf))
        assert r.returncode == 0, r.stderr
        # The run that knows the passphrase masks it wherever it is a whole token, the last part of a version too
        # (the price of a one-character passphrase); the document stays valid, and later runs show it whole.
        assert r.json["data"]["agent"]["version"] == OLD.rsplit(".", 1)[0] + ".********"
        state = sandbox.root / "var/lib/asrctl"
        journal = json.loads((state / "journal.json").read_text())
        assert journal["status"] == "ok" and journal["command"] == "install"
        assert [json.loads(line)["status"] for line in (state / "history.jsonl").read_text().splitlines()] == ["ok"]
        status = sandbox.asrctl("--json", "status")
        assert status.json["data"]["last_run"]["status"] == "ok"
        assert status.json["data"]["last_run"]["run_id"] == journal["run_id"]
        assert status.json["data"]["agent"]["version"] == OLD
        out = sandbox.base / "support.tar.gz"
        assert sandbox.asrctl("logs", "collect", "-o", str(out)).returncode == 0
        members = _members(out)
        for name, data in members.items():
            if name.endswith((".json", ".jsonl")):
                for doc in data.decode().splitlines() if name.endswith(".jsonl") else [data.decode()]:
                    json.loads(doc)  # every JSON member still parses
    finally:
        server.stop()
