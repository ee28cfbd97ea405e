"""Concurrent runs: every verb reads the host's state and decides under the host lock, so a result never
describes a state another run is changing, and an undo never removes what its own run did not create.

The race is made deterministic with ``--passphrase-stdin``: run B reads its inputs (the passphrase) before it
takes the lock, so while B waits on stdin, run A can do its whole work; then B gets its passphrase and goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys

from e2e.conftest import OLD, PASSPHRASE, Sandbox, wait_for


def _spawn(
    sb: Sandbox, *args: str, env: dict[str, str] | None = None, stdin: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "asrctl", "--root", str(sb.root), "--bundle-dir", str(sb.bundles), *args]
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    full.update({"NO_COLOR": "1", "NO_PROXY": "*", **(env or {})})
    return subprocess.Popen(argv, env=full, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reading_stdin(proc: subprocess.Popen[str]) -> bool:
    """The process is blocked in read(0, …): x86-64 syscall 0 with file descriptor 0."""
    try:
        with open(f"/proc/{proc.pid}/syscall", encoding="ascii") as fh:
            fields = fh.read().split()
    except OSError:
        return False
    return fields[:2] == ["0", "0x0"]


def _finish(proc: subprocess.Popen[str], stdin: str = "") -> tuple[int, dict, str]:
    import json

    out, err = proc.communicate(stdin, timeout=120)
    return proc.returncode, json.loads(out), err


def test_two_installs_at_once_never_remove_the_other_ones_agent(sandbox: Sandbox, cs) -> None:
    """Run B (whose installer would fail) decided nothing before A finished: it finds A's agent and keeps it."""
    sandbox.bundle(OLD)
    b = _spawn(
        sandbox, "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-stdin",
        env={"ASR_SIM_INSTALL_EXIT": "1"},
    )  # fmt: skip
    try:
        assert wait_for(lambda: _reading_stdin(b)), "run B never asked for its passphrase"
        a = sandbox.asrctl(
            "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
        )
        assert a.returncode == 0, a.stderr
        rc, doc, err = _finish(b, PASSPHRASE + "\n")
    finally:
        if b.poll() is None:
            b.kill()
            b.wait()
    # B found A's agent, installed and registered as B asks: nothing to do, and it says so truthfully.
    assert rc == 0, err
    assert doc["changed"] is False
    assert doc["data"]["agent"]["installed"] and doc["data"]["agent"]["registered"]
    assert "uninstall.sh" not in err
    # A's agent is still there, registered and running.
    st = sandbox.asrctl("--json", "status").json["data"]["agent"]
    assert st["installed"] and st["registered"] and st["version"] == OLD
    assert all(s["running"] for s in st["services"])


def _hold_while(sb: Sandbox, args: list[str], hang: str, marker) -> subprocess.Popen[str]:
    """Start a changing run whose vendor tool hangs (ASR_SIM_HANG), and wait until it is inside it."""
    proc = _spawn(sb, "--json", *args, env={"ASR_SIM_HANG": hang}, stdin=subprocess.DEVNULL)
    assert wait_for(marker), f"{args[0]} never reached its vendor tool"
    return proc


def _stop(proc: subprocess.Popen[str]) -> int:
    import signal

    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    return proc.returncode


def test_install_while_uninstall_runs_does_not_claim_the_agent_is_there(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    install = ["install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)]
    assert sandbox.asrctl(*install).returncode == 0
    lock_file = sandbox.install_dir / ".uninstall.lck"
    u = _hold_while(sandbox, ["uninstall", "-Y"], "uninstall", lock_file.exists)
    try:
        r = sandbox.asrctl("--json", *install)
    finally:
        assert _stop(u) == 143
    # The uninstall was under way: "installed, nothing to do" would describe a state that may no longer hold.
    assert (r.returncode, r.json["ok"], r.json["error"]["code"]) == (6, False, "ASRCTL-E042")
    assert "uninstall" in r.json["error"]["message"]


def test_uninstall_while_install_runs_does_not_claim_nothing_is_installed(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    install = ["install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)]
    i = _hold_while(sandbox, install, "install", (sandbox.install_dir / "uninstall.sh").exists)
    lock = sandbox.root / "var/lib/asrctl/lock"
    try:
        r = sandbox.asrctl("--json", "uninstall", "-Y")
        held = lock.read_text()
        # A dry run neither waits nor fails: it describes what it read, and says a run is changing it.
        dry = sandbox.asrctl("--json", "uninstall", "--dry-run")
        assert lock.read_text() == held, "a dry run does not touch the lock"
    finally:
        assert _stop(i) == 143
    assert (r.returncode, r.json["ok"], r.json["error"]["code"]) == (6, False, "ASRCTL-E042")
    assert dry.returncode == 0 and dry.json["data"]["dry_run"] is True
    assert f"another asrctl run (pid {i.pid}, install) is changing this host right now" in dry.stderr
    assert not sandbox.vx_version.exists() and not sandbox.install_dir.exists()
