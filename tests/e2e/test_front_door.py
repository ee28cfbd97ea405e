"""The front door end to end: a real install whose inputs come from a --config file and the environment, options
after the verb, the stand-in's pin and its free process-server port."""

from __future__ import annotations

import json

from e2e.conftest import OLD, PASSPHRASE, Sandbox


def test_install_from_a_config_file_with_the_pin_and_a_free_process_server_port(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    config = sandbox.base / "asrctl.toml"
    config.write_text(
        f'cs_endpoint = "{cs.endpoint}"\n'
        'passphrase_file = "cs.passphrase"\n'  # relative: next to the config file
        f'cs_fingerprint = "{cs.fingerprint}"\n'
        "require_digest = true\n"
        "connect_timeout = 5\n"
    )
    config.chmod(0o600)
    # The process server port comes from ASRCTL_PS_PORT (set by the cs fixture); the output options follow the verb.
    r = sandbox.asrctl("install", "--config", str(config), "--json", "-q")
    assert r.returncode == 0, r.stderr
    doc = r.json
    assert doc["ok"] and doc["changed"] and doc["data"]["agent"]["registered"]
    checks = {c["name"]: c for c in doc["data"]["connectivity"]}
    assert checks["cs_tls"]["status"] == "ok" and "pinned" in checks["cs_tls"]["detail"]
    assert checks["ps_tcp"]["status"] == "ok" and checks["ps_tcp"]["target"].endswith(f":{cs.ps_port}")
    assert len(cs.registered()) == 1
    log = (sandbox.root / "var/log/asrctl.log").read_text()
    assert str(config) in log and PASSPHRASE not in log
    assert PASSPHRASE not in r.stdout + r.stderr

    status = sandbox.asrctl("status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["data"]["agent"]["registered"] is True
    assert sandbox.asrctl("uninstall", "-Y", "--json").returncode == 0


def test_a_wrong_pin_from_the_environment_stops_before_anything_changes(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    before = sandbox.files()
    r = sandbox.asrctl(
        "install",
        "--json",
        env={
            "ASRCTL_CS_ENDPOINT": cs.endpoint,
            "ASRCTL_PASSPHRASE_FILE": str(sandbox.passphrase_file),
            "ASRCTL_CS_FINGERPRINT": "00" * 32,
        },
    )
    assert r.returncode == 8, r.stderr
    assert r.json["error"]["code"].startswith("ASRCTL-E08")
    assert not sandbox.vx_version.exists() and cs.registered() == []
    # Only asrctl's own log and state may have appeared; no agent file.
    assert not any(f.startswith("root/usr/local") for f in sandbox.files() - before)
