"""The Linux lifecycle end to end: the real CLI in a sandbox root against the simulated vendor tools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.conftest import NEW, OLD, PASSPHRASE, Sandbox, wait_for


def _install(sb: Sandbox, cs, *extra: str, env: dict[str, str] | None = None):
    return sb.asrctl(
        "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sb.passphrase_file), *extra, env=env
    )


def _running(doc: dict) -> dict[str, bool]:
    return {s["name"]: s["running"] for s in doc["data"]["agent"]["services"]}


# --- happy paths -------------------------------------------------------------------------------------------


def test_full_lifecycle(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD, date="23Apr2025")
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    doc = r.json
    assert doc["ok"] and doc["changed"]
    agent = doc["data"]["agent"]
    assert agent["installed"] and agent["version"] == OLD and agent["registered"]
    assert agent["cs_endpoint"] == cs.endpoint
    assert _running(doc) == {"svagents": True, "appservice": True}
    assert len(cs.registered()) == 1
    # The staging directory is gone, the journal says ok.
    assert not any((sandbox.root / "var/lib/asrctl/staging").iterdir())
    assert json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())["status"] == "ok"

    st = sandbox.asrctl("--json", "status")
    assert st.returncode == 0
    sdoc = st.json
    assert set(sdoc["data"]["agent"]) >= {
        "installed",
        "version",
        "install_dir",
        "registered",
        "cs_endpoint",
        "services",
    }
    assert sdoc["data"]["agent"]["install_dir"] == str(sandbox.install_dir)
    assert sdoc["data"]["newer_bundle"] is None

    sandbox.bundle(NEW)
    assert sandbox.asrctl("--json", "status").json["data"]["newer_bundle"]["version"] == NEW
    up = sandbox.asrctl("--json", "upgrade")
    assert up.returncode == 0, up.stderr
    udoc = up.json
    assert udoc["changed"] and udoc["data"]["from_version"] == OLD
    assert udoc["data"]["agent"]["version"] == NEW
    assert udoc["data"]["agent"]["registered"], "an upgrade must never de-register"
    assert udoc["data"]["agent"]["cs_endpoint"] == cs.endpoint
    assert _running(udoc) == {"svagents": True, "appservice": True}

    again = sandbox.asrctl("--json", "upgrade")
    assert again.returncode == 0 and again.json["changed"] is False

    un = sandbox.asrctl("--json", "uninstall", "-Y")
    assert un.returncode == 0, un.stderr
    assert un.json["changed"] and not un.json["data"]["agent"]["installed"]
    assert not sandbox.vx_version.exists()
    assert not sandbox.install_dir.exists()
    assert not [p for p in sandbox.processes() if p.name() in ("svagents", "appservice")]
    assert sandbox.asrctl("--json", "status").json["data"]["agent"]["installed"] is False


def test_install_same_version_again_is_a_no_op(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    r = _install(sandbox, cs)
    assert r.returncode == 0 and r.json["changed"] is False
    assert len(cs.registered()) == 1


def test_install_with_older_installed_suggests_upgrade(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    sandbox.bundle(NEW)
    r = _install(sandbox, cs)
    assert r.returncode == 6
    assert r.json["error"]["code"] == "ASRCTL-E046"
    assert "asrctl upgrade" in r.json["error"]["message"]


def test_install_without_registering_then_register(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["agent"]["registered"] is False
    reg = sandbox.asrctl(
        "--json", "register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert reg.returncode == 0, reg.stderr
    assert reg.json["changed"] and reg.json["data"]["agent"]["registered"]
    same = sandbox.asrctl(
        "--json", "register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert same.returncode == 0 and same.json["changed"] is False


@pytest.mark.parametrize("source", ["stdin", "env"])
def test_passphrase_from_stdin_and_env_and_the_private_copy_is_removed(sandbox: Sandbox, cs, source: str) -> None:
    sandbox.bundle(OLD)
    args = ["--json", "install", "--cs-endpoint", cs.endpoint]
    if source == "stdin":
        r = sandbox.asrctl(*args, "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    else:
        r = sandbox.asrctl(*args, env={"ASRCTL_PASSPHRASE": PASSPHRASE})
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["agent"]["registered"]
    private = sandbox.root / "var/lib/asrctl/private"
    assert not private.exists() or not any(private.iterdir())


def test_dry_run_changes_nothing_and_shows_exact_argv(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    before = sandbox.files()
    r = _install(sandbox, cs, "--dry-run")
    assert r.returncode == 0, r.stderr
    steps = r.json["data"]["plan"]["steps"]
    install = next(s for s in steps if s["id"] == "install")
    run_dir = str(sandbox.root / "var/lib/asrctl/runs" / r.json["data"]["plan"]["summary"]["run_id"])
    log = str(sandbox.root / "var/log/ua_install.log")
    assert install["argv"][1:] == [
        "-r", "MS", "-v", "VmWare", "-q", "-a", "Install", "-c", "CSLegacy", "-d", str(sandbox.install_dir),
        "-l", log, "-m", "CommandLine",
        "-e", f"{run_dir}/installerextendederrors.json", "-j", f"{run_dir}/installerjson.json",
    ]  # fmt: skip
    register = next(s for s in steps if s["id"] == "register")
    assert register["argv"][1:] == [
        "-i", cs.host, "-P", str(sandbox.passphrase_file), "-l", log, "-m", "CommandLine",
        "-f", f"{run_dir}/configuratorextendederrors.json", "-j", f"{run_dir}/configuratorjson.json",
        "-c", "CSLegacy", "-p", str(cs.port),
    ]  # fmt: skip
    assert r.json["changed"] is False
    assert sandbox.files() == before
    assert not cs.registered()


# --- failure paths -----------------------------------------------------------------------------------------


def test_vendor_installer_failure_is_exit_7_and_leaves_nothing(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = _install(sandbox, cs, env={"ASR_SIM_INSTALL_EXIT": "1"})
    assert r.returncode == 7
    err = r.json["error"]
    assert err["code"] == "ASRCTL-E060"
    assert err["details"]["vendor_exit_code"] == 1
    assert "ua_install.log" in err["message"]
    assert not sandbox.vx_version.exists()
    assert not sandbox.install_dir.exists()
    assert json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())["status"] == "failed"


def test_installer_exit_98_is_success_with_the_warning_surfaced(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = _install(sandbox, cs, env={"ASR_SIM_INSTALL_EXIT": "98"})
    assert r.returncode == 0, r.stderr
    assert any("98" in w for w in r.json["data"]["warnings"])
    assert "exit 98" in r.stderr


def test_wrong_passphrase_is_exit_8_not_retried_and_a_rerun_converges(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    wrong = sandbox.base / "wrong.pass"
    wrong.write_text("not-the-passphrase\n")
    wrong.chmod(0o600)
    r = sandbox.asrctl("--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(wrong))
    assert r.returncode == 8
    assert r.json["error"]["code"] == "ASRCTL-E081"
    assert "retrying" not in r.stderr
    # The agent installed fine and stays; registering it is what is left to do. The result says so.
    assert sandbox.vx_version.exists()
    assert r.json["changed"] is True and r.json["data"]["agent"]["installed"] is True
    assert r.json["data"]["outcome"] == {
        "state": "other",
        "whole": True,
        "reasons": [],
        "summary": f"Mobility Service {OLD}, not registered, running",
    }
    assert (
        f"the agent that was installed is kept: Mobility Service {OLD}, not registered, running"
        in (r.json["error"]["message"])
    )
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert again.json["changed"] and again.json["data"]["agent"]["registered"]


def test_configuration_server_down_fails_before_anything_changes(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    endpoint = cs.endpoint
    cs.stop()
    before = sandbox.files()
    r = sandbox.asrctl(
        "--json", "install", "--cs-endpoint", endpoint, "--passphrase-file", str(sandbox.passphrase_file),
        "--connect-timeout", "1",
    )  # fmt: skip
    assert r.returncode == 8
    assert r.json["error"]["code"].startswith("ASRCTL-E08")
    assert endpoint.split(":")[-1] in r.json["error"]["message"]
    assert not sandbox.vx_version.exists()
    # Only asrctl's own log of the attempt and its host lock (taken before the state is read) were written.
    own = {"root/var/log", "root/var/log/asrctl.log", "root/var/lib", "root/var/lib/asrctl", "root/var/lib/asrctl/lock"}
    assert sandbox.files() - before <= {"root/var", *own}
    assert (sandbox.root / "var/lib/asrctl/lock").read_text() == "", "the lock is released"


def test_lock_held_is_exit_6_and_names_the_holder(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    state = sandbox.root / "var/lib/asrctl"
    state.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,json,os,sys,time;f=open(sys.argv[1],'w');fcntl.flock(f,fcntl.LOCK_EX);"
            "f.write(json.dumps({'pid':os.getpid(),'command':'upgrade','started':'now'}));f.flush();"
            "print('locked',flush=True);time.sleep(60)",
            str(state / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        r = _install(sandbox, cs)
        assert r.returncode == 6
        assert r.json["error"]["code"] == "ASRCTL-E042"
        assert str(holder.pid) in r.json["error"]["message"]
        assert not sandbox.vx_version.exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    state = sandbox.root / "var/lib/asrctl"
    state.mkdir(parents=True)
    (state / "lock").write_text(json.dumps({"pid": 4194000, "command": "install", "started": "yesterday"}))
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    assert "stale lock from pid 4194000" in r.stderr


def test_not_installed(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(NEW)
    up = sandbox.asrctl("--json", "upgrade")
    assert (up.returncode, up.json["error"]["code"]) == (6, "ASRCTL-E044")
    reg = sandbox.asrctl(
        "--json", "register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert (reg.returncode, reg.json["error"]["code"]) == (6, "ASRCTL-E044")
    un = sandbox.asrctl("--json", "uninstall", "-Y")
    assert un.returncode == 0 and un.json["changed"] is False


def test_downgrade_refused_unless_allowed_and_undoable(sandbox: Sandbox, cs) -> None:
    newer = sandbox.bundle(NEW)
    assert _install(sandbox, cs).returncode == 0
    older = sandbox.bundle(OLD)
    r = sandbox.asrctl("--json", "upgrade", "--bundle", str(older))
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E045")
    # --exit-codes msi is for Windows; a POSIX exit status keeps only the low 8 bits of 1638.
    msi = sandbox.asrctl("--exit-codes", "msi", "upgrade", "--bundle", str(older))
    assert msi.returncode == 1638 & 0xFF
    # Registered, and no registration options: a failed downgrade could not register the agent again.
    bare = sandbox.asrctl("--json", "upgrade", "--bundle", str(older), "--allow-downgrade")
    assert (bare.returncode, bare.json["error"]["code"]) == (6, "ASRCTL-E072")
    assert f"--cs-endpoint {cs.endpoint}" in bare.json["error"]["message"]
    registration = ["--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)]
    # Without the installed version's bundle, nothing could put it back.
    newer.unlink()
    lost = sandbox.asrctl("--json", "upgrade", "--bundle", str(older), "--allow-downgrade", *registration)
    assert (lost.returncode, lost.json["error"]["code"]) == (6, "ASRCTL-E072")
    assert NEW in lost.json["error"]["message"]
    for refused in (bare, lost):
        assert refused.json["changed"] is False and refused.json["data"]["agent"]["version"] == NEW
    sandbox.bundle(NEW)
    ok = sandbox.asrctl("--json", "upgrade", "--bundle", str(older), "--allow-downgrade", *registration)
    assert ok.returncode == 0, ok.stderr
    assert ok.json["changed"] and ok.json["reboot_required"]
    agent = ok.json["data"]["agent"]
    assert (agent["version"], agent["registered"], agent["cs_endpoint"]) == (OLD, True, cs.endpoint)
    assert ok.json["data"]["outcome"]["state"] == "requested"
    steps = [s["id"] for s in json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())["steps"]]
    assert steps.index("rollback-unpack") < steps.index("uninstall") < steps.index("install")


def test_big_jump_warns_and_requires_reboot(sandbox: Sandbox, cs) -> None:
    old = sandbox.bundle("9.60.7000.1")
    assert _install(sandbox, cs).returncode == 0
    old.unlink()
    sandbox.bundle(NEW)
    r = sandbox.asrctl("--json", "upgrade")
    assert r.returncode == 0, r.stderr
    assert r.json["reboot_required"] is True
    assert any("N-4" in w for w in r.json["data"]["warnings"])
    assert sandbox.asrctl("--exit-codes", "msi", "status").returncode == 0


def test_uninstall_without_yes_and_without_a_terminal_is_a_usage_error(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    r = sandbox.asrctl("--json", "uninstall")
    assert r.returncode == 2
    assert r.json["error"]["code"] == "ASRCTL-E004"
    assert sandbox.vx_version.exists()


def test_uninstall_services_will_not_stop(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs).returncode == 0
    r = sandbox.asrctl("--json", "uninstall", "-Y", env={"ASR_SIM_FAIL_AT": "stop"})
    assert r.returncode == 7
    assert r.json["error"]["code"] == "ASRCTL-E062"
    assert "workaround" in r.json["error"]["remedy"]
    assert sandbox.vx_version.exists()
    assert sandbox.asrctl("uninstall", "-Y").returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_mid_install_leaves_nothing_and_a_rerun_is_clean(sandbox: Sandbox, cs, sig: int) -> None:
    sandbox.bundle(OLD)
    argv = [
        sys.executable, "-m", "asrctl", "--root", str(sandbox.root), "--bundle-dir", str(sandbox.bundles), "--json",
        "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
    ]  # fmt: skip
    env = sandbox.environ(ASR_SIM_HANG="install")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (sandbox.install_dir).exists()), "installer never started"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    expected = (143, "ASRCTL-E005") if sig == signal.SIGTERM else (130, "ASRCTL-E003")
    doc = json.loads(out)
    assert (proc.returncode, doc["error"]["code"]) == expected, err
    assert (
        "rolled back (remove the partly installed agent): nothing of the Mobility Service is installed"
        in (doc["error"]["message"])
    )
    assert doc["changed"] is False and doc["data"]["agent"]["installed"] is False
    assert not sandbox.vx_version.exists()
    assert not sandbox.install_dir.exists()
    assert not any(p.name() in ("install", "svagents", "appservice") for p in sandbox.processes())
    journal = json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())
    assert journal["status"] == "interrupted"
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["agent"]["registered"]


def test_disk_too_small(sandbox: Sandbox, cs, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        from e2e.conftest import ubuntu_root

        ubuntu_root(small / "root")
        sandbox.bundle(OLD)
        r = subprocess.run(
            [sys.executable, "-m", "asrctl", "--root", str(small / "root"), "--bundle-dir", str(sandbox.bundles),
             "--json", "install", "--no-register", "--cs-type", "CSLegacy"],
            capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert r.returncode == 6, r.stderr
        doc = json.loads(r.stdout)
        assert doc["error"]["code"] == "ASRCTL-E041"
        assert "2.00 GB" in doc["error"]["message"]
        assert not (small / "root/usr/local/ASR").exists()
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_passphrase_appears_nowhere(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    outputs = []
    outputs.append(sandbox.asrctl("-v", "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-stdin",
                                  stdin=PASSPHRASE + "\n"))  # fmt: skip
    outputs.append(sandbox.asrctl("-v", "--json", "register", "--cs-endpoint", cs.endpoint, "--force", "--dry-run",
                                  env={"ASRCTL_PASSPHRASE": PASSPHRASE}))  # fmt: skip
    wrong = sandbox.base / "w.pass"
    wrong.write_text("Wr0ng-" + PASSPHRASE)
    wrong.chmod(0o600)
    outputs.append(sandbox.asrctl("-v", "--json", "register", "--cs-endpoint", cs.endpoint, "--force",
                                  "--passphrase-file", str(wrong)))  # fmt: skip
    assert outputs[0].returncode == 0 and outputs[1].returncode == 0 and outputs[2].returncode == 8
    for run in outputs:
        assert PASSPHRASE not in run.stdout and PASSPHRASE not in run.stderr
        assert PASSPHRASE not in " ".join(run.argv)
    # Microsoft's configurator keeps its own copy (mode 0700), as the real one does; nothing else may hold it.
    vendor_copy = sandbox.root / "usr/local/InMage/private/connection.passphrase"
    assert vendor_copy.stat().st_mode & 0o777 == 0o700
    for path in sandbox.root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != vendor_copy:
            assert PASSPHRASE.encode() not in path.read_bytes(), f"passphrase found in {path}"


def test_install_killed_outright_is_cleaned_up_by_the_next_install(sandbox: Sandbox, cs) -> None:
    """Power loss or SIGKILL: no abort action ran. The next install removes what was left, then installs."""
    sandbox.bundle(OLD)
    argv = [
        sys.executable, "-m", "asrctl", "--root", str(sandbox.root), "--bundle-dir", str(sandbox.bundles),
        "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
    ]  # fmt: skip
    env = sandbox.environ(ASR_SIM_HANG="install")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (sandbox.install_dir / "Vx").exists()), "installer never started"
    finally:
        # Everything dies at once, as in a power loss: asrctl and the installer it started.
        for p in [*sandbox.processes()]:
            if p.pid != cs.process.pid:
                p.kill()
        proc.wait(timeout=30)
    assert sandbox.install_dir.exists(), "the killed installer left files behind"
    journal = json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())
    assert journal["status"] == "running"
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    assert "was killed while Microsoft's installer ran" in r.stderr
    assert r.json["data"]["agent"]["registered"] and r.json["data"]["agent"]["version"] == OLD
    history = (sandbox.root / "var/lib/asrctl/history.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in history] == ["interrupted", "ok"]
    steps = {s["id"]: s["status"] for s in json.loads(history[-1])["steps"]}
    assert steps["remove-partial"] == "done" and steps["install"] == "done"
