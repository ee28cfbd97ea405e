"""``status`` reports health and ``status --check`` exits by it (0 ok, 9 degraded, 10 broken), for each reason a
real host can show; ``status`` without ``--check`` always exits 0. One agent, put through each condition in turn."""

from __future__ import annotations

import json
import os
import subprocess

from e2e.conftest import OLD, Sandbox


def _health(sb: Sandbox) -> tuple[int, dict, str]:
    plain = sb.asrctl("status")
    assert plain.returncode == 0, plain.stderr
    r = sb.asrctl("--json", "status", "--check")
    doc = r.json
    reasons = [x["id"] for x in doc["data"]["health"]["reasons"]]
    if r.returncode:
        code = {9: "ASRCTL-E073", 10: "ASRCTL-E074"}[r.returncode]
        assert (doc["ok"], doc["error"]["code"], doc["error"]["details"]["reasons"]) == (False, code, reasons)
        assert doc["error"]["code"] in r.stderr
    return r.returncode, doc["data"]["health"], r.stderr


def _vx(sb: Sandbox, tool: str) -> None:
    env = {**os.environ, "ASRCTL_ROOT": str(sb.root)}
    subprocess.run([str(sb.install_dir / "Vx/bin" / tool)], env=env, capture_output=True, timeout=60, check=True)


def _ids(health: dict) -> list[str]:
    return [r["id"] for r in health["reasons"]]


def test_health_for_each_reason(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    rc, health, _ = _health(sandbox)
    assert (rc, health["status"], _ids(health)) == (10, "broken", ["not_installed"])

    assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent").returncode == 0
    rc, health, _ = _health(sandbox)
    assert (rc, health["status"], _ids(health)) == (9, "degraded", ["not_registered"])

    reg = ["register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)]
    assert sandbox.asrctl(*reg).returncode == 0
    rc, health, err = _health(sandbox)
    assert (rc, health) == (0, {"status": "ok", "reasons": []})
    assert "Health           ok" in sandbox.asrctl("status").stderr

    reboot = sandbox.root / "var/run/reboot-required"
    reboot.parent.mkdir(parents=True, exist_ok=True)
    reboot.touch()
    rc, health, _ = _health(sandbox)
    assert (rc, _ids(health)) == (9, ["reboot_pending"])
    reboot.unlink()

    _vx(sandbox, "stop")
    rc, health, err = _health(sandbox)
    assert (rc, _ids(health)) == (10, ["services_stopped"])
    assert "not running: svagents, appservice" in err
    _vx(sandbox, "start")

    text = sandbox.vx_version.read_text()
    sandbox.vx_version.write_text(
        text.replace("AGENT_CONFIGURATION_STATUS=Succeeded", "AGENT_CONFIGURATION_STATUS=Failed")
    )
    rc, health, _ = _health(sandbox)
    assert (rc, _ids(health)) == (10, ["registration_lost"])
    sandbox.vx_version.write_text(text)

    hidden = sandbox.vx_version.with_name(".vx_version.away")
    sandbox.vx_version.rename(hidden)
    rc, health, _ = _health(sandbox)
    assert (rc, _ids(health)) == (10, ["half_installed", "stray_processes"])
    hidden.rename(sandbox.vx_version)

    lock = sandbox.install_dir / ".uninstall.lck"
    lock.touch()
    rc, health, _ = _health(sandbox)
    assert (rc, _ids(health)) == (9, ["vendor_lock"])
    lock.unlink()

    # What a killed run leaves: its journal still says "running", its staging directory is still there.
    state = sandbox.root / "var/lib/asrctl"
    journal = json.loads((state / "journal.json").read_text())
    (state / "journal.json").write_text(json.dumps({**journal, "status": "running", "pid": 4194000}))
    (state / "staging/0123456789ab").mkdir(parents=True)
    rc, health, err = _health(sandbox)
    assert (rc, _ids(health)) == (9, ["interrupted_run", "leftovers"])
    assert "was killed; the next install/upgrade/uninstall cleans up after it" in err

    # A run under way (it holds the lock): status says so and does not wait for it.
    from asrctl.system.lock import HostLock

    with HostLock(state, "upgrade"):
        rc, health, _ = _health(sandbox)
    assert (rc, _ids(health)) == (9, ["run_in_progress"])
