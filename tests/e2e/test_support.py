"""doctor and logs collect in a sandbox."""

from __future__ import annotations

import tarfile

from e2e.conftest import OLD, PASSPHRASE, Sandbox


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
    # A log line that carries a secret asrctl never saw must be masked too.
    with open(sandbox.root / "var/log/ua_install.log", "a") as fh:
        fh.write("debug: passphrase=OtherSecret-123\n")
    out = sandbox.base / "support.tar.gz"
    r = sandbox.asrctl("--json", "logs", "collect", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert "asrctl-status.json" in names
    assert any(n.endswith("ua_install.log") for n in names)
    assert any(n.endswith("drscout.conf") for n in names)
    assert b"OtherSecret-123" not in blob
    assert PASSPHRASE.encode() not in blob
    again = sandbox.asrctl("--json", "logs", "collect", "-o", str(out))
    assert (again.returncode, again.json["error"]["code"]) == (6, "ASRCTL-E037")
