"""Every failure ends in a whole state, and the result says which (docs/LIFECYCLE.md, lifecycle/state.py).

After a failed or interrupted upgrade the old agent runs again, registered; after a failed downgrade the removed
agent is installed and registered again; when even that cannot be done, the result and ``status`` say so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from e2e.conftest import NEW, OLD, Sandbox, wait_for
from fakes.hoststate import observe_root

from asrctl.lifecycle.state import whole


def _install(sb: Sandbox, cs, *extra: str, env: dict[str, str] | None = None):
    return sb.asrctl(
        "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sb.passphrase_file), *extra, env=env
    )


def _running(agent: dict) -> bool:
    return bool(agent["services"]) and all(s["running"] for s in agent["services"])


def _upgrade_interrupted(sb: Sandbox) -> tuple[int, dict]:
    """``upgrade`` whose installer hangs after stopping the services and replacing the files; then SIGTERM."""
    argv = [
        sys.executable, "-m", "asrctl", "--root", str(sb.root), "--bundle-dir", str(sb.bundles), "--json", "upgrade",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    env.update({"ASR_SIM_HANG": "install", "NO_COLOR": "1", "NO_PROXY": "*"})
    log = sb.root / "var/log/ua_install.log"
    mark = log.read_text().count("hanging until killed")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: log.read_text().count("hanging until killed") > mark), "the installer never hung"
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, json.loads(out)


@pytest.mark.parametrize("how", ["timeout", "sigterm"])
def test_failed_or_interrupted_upgrade_leaves_the_old_agent_running_and_says_so(sandbox: Sandbox, cs, how) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    sandbox.bundle(NEW)
    if how == "timeout":
        r = sandbox.asrctl("--json", "upgrade", "--timeout", "5", env={"ASR_SIM_HANG": "install"})
        rc, doc = r.returncode, r.json
        assert (rc, doc["error"]["code"]) == (7, "ASRCTL-E063")
    else:
        rc, doc = _upgrade_interrupted(sandbox)
        assert (rc, doc["error"]["code"]) == (143, "ASRCTL-E005")
    message = doc["error"]["message"]
    assert "start the agent's services again" in message
    assert f"the previous state holds again: Mobility Service {OLD}, registered with {cs.endpoint}, running" in message
    assert doc["changed"] is False and doc["reboot_required"] is False
    agent = doc["data"]["agent"]
    assert (agent["version"], agent["registered"], _running(agent)) == (OLD, True, True)
    assert doc["data"]["outcome"] == {
        "state": "previous",
        "whole": True,
        "reasons": [],
        "summary": f"Mobility Service {OLD}, registered with {cs.endpoint}, running",
    }
    assert whole(observe_root(sandbox.root)) == []
    st = sandbox.asrctl("--json", "status", "--check")
    assert st.returncode == 0, st.stderr
    assert st.json["data"]["health"] == {"status": "ok", "reasons": []}
    # And the next upgrade goes through.
    again = sandbox.asrctl("--json", "upgrade")
    assert again.returncode == 0, again.stderr
    assert again.json["data"]["agent"]["version"] == NEW and again.json["data"]["agent"]["registered"]


def test_upgrade_that_cannot_be_undone_says_the_host_is_not_whole(sandbox: Sandbox, cs) -> None:
    """The new agent's services never start (and its own start script fails the undo too): asrctl cannot put the
    old agent back by restarting it. The result must not pretend: it names the state, and status is broken."""
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    sandbox.bundle(NEW)
    r = sandbox.asrctl("--json", "upgrade", env={"ASR_SIM_FAIL_AT": "start", "ASR_SIM_KNOB_VERSION": NEW})
    assert (r.returncode, r.json["error"]["code"]) == (7, "ASRCTL-E060")
    assert "NOT in a whole state" in r.json["error"]["message"]
    assert "services stopped: svagents, appservice" in r.json["error"]["message"]
    assert r.json["changed"] is True
    assert r.json["data"]["outcome"]["whole"] is False and r.json["data"]["outcome"]["state"] == "other"
    assert r.json["data"]["outcome"]["reasons"] == whole(observe_root(sandbox.root)) != []
    st = sandbox.asrctl("--json", "status", "--check")
    assert (st.returncode, st.json["error"]["code"]) == (10, "ASRCTL-E074")
    health = st.json["data"]["health"]
    assert health["status"] == "broken"
    assert [r["id"] for r in health["reasons"]] == ["services_stopped"]
    # Without --check, status reports and exits 0 (the contract).
    assert sandbox.asrctl("status").returncode == 0


def test_failed_downgrade_puts_the_newer_agent_back_registered(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(NEW)
    assert _install(sandbox, cs).returncode == 0
    older = sandbox.bundle(OLD)
    r = sandbox.asrctl(
        "--json", "upgrade", "--bundle", str(older), "--allow-downgrade",
        "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
        env={"ASR_SIM_INSTALL_EXIT": "1", "ASR_SIM_KNOB_VERSION": OLD},
    )  # fmt: skip
    assert (r.returncode, r.json["error"]["code"]) == (7, "ASRCTL-E060")
    message = r.json["error"]["message"]
    assert "install Microsoft-ASR_UA_9.66.7567.1" in message and "and register it" in message
    assert f"the previous state holds again: Mobility Service {NEW}, registered with {cs.endpoint}, running" in message
    assert r.json["changed"] is False and r.json["data"]["outcome"]["state"] == "previous"
    agent = r.json["data"]["agent"]
    assert (agent["version"], agent["registered"], _running(agent)) == (NEW, True, True)
    assert whole(observe_root(sandbox.root)) == []
    assert sandbox.asrctl("status", "--check").returncode == 0


def test_failed_fresh_install_says_nothing_is_installed(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = _install(sandbox, cs, env={"ASR_SIM_FAIL_AT": "start"})  # files in place, no daemon: installer exit 44
    assert (r.returncode, r.json["error"]["code"]) == (7, "ASRCTL-E060")
    assert (
        "rolled back (remove the partly installed agent): nothing of the Mobility Service is installed"
        in (r.json["error"]["message"])
    )
    assert r.json["changed"] is False
    assert r.json["data"]["agent"]["installed"] is False
    assert r.json["data"]["outcome"]["state"] == "previous"
    assert not sandbox.vx_version.exists() and not sandbox.install_dir.exists()
    assert observe_root(sandbox.root).absent and whole(observe_root(sandbox.root)) == []
