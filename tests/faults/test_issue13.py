"""Every reproduction in issue 13's "Why", as a test that holds.

Most reproductions are cases of a fault family (the file named in ``ISSUE13``); the ones that fit no family are
here. ``test_every_reproduction_has_a_test`` keeps the list honest: each reproduction names at least one test
function, found in the suite's files (read with ast, so it costs nothing to run).
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Sandbox
from fakes.hoststate import observe_root

from asrctl.lifecycle.state import whole

from .conftest import (
    NEW,
    OLD,
    PASSPHRASE,
    assert_clean,
    install_args,
    orphans,
    spawn,
    with_passphrase_env,
)

HERE = Path(__file__).parent

# id → (the reproduction, in the issue's words; the tests that hold it, "file::function").
ISSUE13: dict[str, tuple[str, list[str]]] = {
    "1a": (
        "a concurrent run decided before the lock and its undo removed the other run's good agent",
        ["test_issue13.py::test_a_concurrent_install_never_removes_the_other_runs_agent"],
    ),
    "1b": (
        "install during uninstall -Y (and the reverse) exited 0 for a state that no longer held",
        ["test_concurrent.py::test_a_second_changing_run_is_refused_while_the_first_works"],
    ),
    "2a": (
        "a failed or interrupted upgrade left the services stopped, said changed:false data:{}, and status was ok",
        ["test_signals.py::test_upgrade", "test_issue13.py::test_an_upgrade_whose_new_agent_never_starts_is_put_back"],
    ),
    "2b": (
        "a failed --allow-downgrade left no agent and no registration",
        ["test_issue13.py::test_a_failed_downgrade_puts_the_agent_back_registered"],
    ),
    "3a": (
        "vendor processes outlived a SIGKILLed asrctl and the next run recovered beside an orphaned installer",
        [
            "test_sigkill.py::test_the_orphaned_vendor_tree_is_stopped_first_and_only_it",
            "test_sigkill.py::test_install",
        ],
    ),
    "3b": (
        "the next run failed (vendor exit 41) while an orphaned configurator held its lock",
        ["test_sigkill.py::test_register"],
    ),
    "3c": (
        "a kill after registration stranded the staging copy and the 0600 passphrase file; 'nothing to do' runs "
        "never cleaned them",
        ["test_sigkill.py::test_a_kill_after_registration_is_cleaned_up_by_a_run_with_nothing_to_do"],
    ),
    "4a": (
        "a second SIGTERM during rollback aborted the undo (half an agent, journal 'running')",
        ["test_issue13.py::test_a_second_sigterm_during_the_rollback_waits_for_it"],
    ),
    "4b": (
        "at other timings the exit status was -15 instead of 130/143",
        ["test_issue13.py::test_a_signal_while_asrctl_starts_still_exits_143", "test_signals.py::test_install"],
    ),
    "4c": (
        "a killed uninstall.sh left its .uninstall.lck (or an orphan) and every later uninstall -Y failed",
        [
            "test_issue13.py::test_a_killed_uninstall_sh_leaves_no_lock_that_blocks_the_next_uninstall",
            "test_sigkill.py::test_uninstall",
        ],
    ),  # fmt: skip
    "5a": ("a FIFO named SHA256SUMS hung install and bundles verify forever", ["test_inputs.py::test_sha256sums"]),
    "5b": (
        "a full, read-only or noexec state directory gave exit 1 'a bug' on every run",
        [
            "test_state_dir.py::test_a_read_only_state_dir",
            "test_state_dir.py::test_a_noexec_state_dir",
            "test_enospc.py::test_a_full_state_dir_at_unpack",
        ],
    ),  # fmt: skip
    "5c": (
        "a lock file holding garbage or being a directory gave exit 1 'a bug' until removed by hand",
        ["test_state_dir.py::test_a_broken_lock_file_is_taken_over"],
    ),
    "5d": (
        "ENOSPC while writing the journal skipped the rollback entirely",
        [
            "test_enospc.py::test_a_full_state_dir_while_the_journal_is_written_still_rolls_back",
            "test_enospc.py::test_a_journal_that_cannot_be_written_never_stops_a_rollback",
        ],
    ),  # fmt: skip
    "6a": (
        "--install-dir /../../../../x reached the installer as -d <root>/../../../../x",
        ["test_confinement.py::test_install_dir_that_climbs_out"],
    ),
    "6b": (
        "a crafted INSTALLATION_DIR made uninstall -Y execute a script outside the root",
        ["test_confinement.py::test_a_crafted_installation_dir_never_runs_a_script_outside_the_root"],
    ),
    "6c": (
        "logs collect followed var/log/ua_install.log -> /etc/passwd and archived it",
        ["test_confinement.py::test_logs_collect_never_follows_a_vendor_log_out_of_its_directory"],
    ),
    "6d": (
        "logs collect read a 3 GB log whole (3.2 GB RSS)",
        ["test_issue13.py::test_logs_collect_reads_only_the_tail_of_a_huge_log"],
    ),
    "6e": (
        "a 1 GB passphrase file was read whole (2.1 GB RSS) before it was refused",
        ["test_inputs.py::test_a_1_gb_passphrase_file_is_refused_without_reading_it"],
    ),
    "7": (
        "with the passphrase '1' every digit in journal.json was masked: invalid JSON, status lost its last run",
        ["test_issue13.py::test_the_passphrase_1_leaves_the_journal_valid"],
    ),
    "8a": (
        "Unicode digits were accepted as bundle versions (9.6٥)",
        ["test_issue13.py::test_unicode_digits_are_no_version"],
    ),
    "8b": (
        "endpoints with a leading space, a trailing newline or 0.0.0.0 were accepted",
        ["test_inputs.py::test_an_endpoint_is_taken_exactly_as_given"],
    ),
    "8c": (
        "--timeout -1 was accepted (and killed the installer), --timeout nan gave 'internal error'",
        ["test_inputs.py::test_a_duration_must_be_positive_and_finite"],
    ),
    "8d": (
        "stdout on a full device gave a traceback",
        [
            "test_state_dir.py::test_stdout_on_a_full_device",
            "test_state_dir.py::test_stdout_closed_and_a_reader_that_went_away",
        ],
    ),
    "8e": (
        "after an exit 7/8 post-check failure the agent stayed installed but JSON said changed:false and the error "
        "did not say the agent was kept",
        ["test_issue13.py::test_a_failed_registration_says_the_agent_is_kept"],
    ),
}


def _functions() -> set[str]:
    found = set()
    for path in HERE.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.add(f"{path.name}::{node.name}")
    return found


@pytest.mark.fault("issue-13")
def test_every_reproduction_has_a_test() -> None:
    known = _functions()
    missing = {rid: t for rid, (_, tests) in ISSUE13.items() for t in tests if t not in known}
    assert not missing, f"reproductions naming tests that do not exist: {missing}"
    assert all(tests for _, tests in ISSUE13.values())


# --- the reproductions no family holds ---------------------------------------------------------------------------


def _reading_stdin(pid: int) -> bool:
    """The process is blocked in read(0, …) (x86-64 syscall 0 on file descriptor 0)."""
    try:
        with open(f"/proc/{pid}/syscall", encoding="ascii") as fh:
            fields = fh.read().split()
    except OSError:
        return False
    return fields[:2] == ["0", "0x0"]


@pytest.mark.fault("issue-13")
def test_a_concurrent_install_never_removes_the_other_runs_agent(sandbox: Sandbox, cs: Any) -> None:
    """Run B, whose installer would fail, reads its passphrase first (the lock is never held while a person
    types); A installs meanwhile. B then decides under the lock: A's agent is there, registered as B asks —
    nothing to do. Before the fix, B's undo ran uninstall.sh -Y on A's agent."""
    import time

    sandbox.bundle(OLD)
    argv = [sys.executable, "-m", "asrctl", "--root", str(sandbox.root), "--bundle-dir", str(sandbox.bundles),
            "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-stdin", "--no-vm-agent"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    env.update({"NO_COLOR": "1", "NO_PROXY": "*", "ASR_SIM_INSTALL_EXIT": "1"})
    b = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)  # fmt: skip
    try:
        for _ in range(3000):
            if _reading_stdin(b.pid):
                break
            time.sleep(0.01)
        else:
            pytest.fail("run B never asked for its passphrase")
        a = sandbox.asrctl(*install_args(sandbox, cs, "--passphrase-file", str(sandbox.passphrase_file)))
        assert a.returncode == 0, a.stderr
        out, err = b.communicate(PASSPHRASE + "\n", timeout=120)
    finally:
        if b.poll() is None:
            b.kill()
            b.wait()
    assert b.returncode == 0, err
    assert json.loads(out)["changed"] is False and "uninstall.sh" not in err
    assert_clean(sandbox, OLD)
    assert observe_root(sandbox.root).agent.registered  # type: ignore[union-attr]


@pytest.mark.fault("issue-13")
def test_an_upgrade_whose_new_agent_never_starts_is_put_back(installed: Sandbox, cs: Any) -> None:
    """The new agent's services never start, and even its own start script fails (the undo used to stop there:
    services down, "not whole"). With the installed release's bundle at hand and the registration options given,
    asrctl removes the new agent, installs the previous one from its bundle and registers it again."""
    sb = installed
    sb.bundle(NEW)
    r = sb.asrctl(
        "--json", "upgrade", "--no-vm-agent", "--cs-endpoint", cs.endpoint,
        env={**with_passphrase_env(), "ASR_SIM_FAIL_AT": "start", "ASR_SIM_KNOB_VERSION": NEW},
    )  # fmt: skip
    assert (r.returncode, r.json["error"]["code"]) == (7, "ASRCTL-E060"), r.stderr
    message = r.json["error"]["message"]
    assert f"putting Microsoft-ASR_UA_{OLD}" in r.stderr
    assert f"the previous state holds again: Mobility Service {OLD}, registered with {cs.endpoint}, running" in message
    assert r.json["changed"] is False and r.json["data"]["outcome"]["state"] == "previous"
    assert_clean(sb, OLD)
    st = sb.asrctl("--json", "status", "--check")
    assert st.returncode == 0, st.stderr


@pytest.mark.fault("issue-13")
@pytest.mark.slow
def test_a_failed_downgrade_puts_the_agent_back_registered(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(NEW)
    assert sandbox.asrctl(*install_args(sandbox, cs, "--passphrase-file", str(sandbox.passphrase_file))).returncode == 0
    older = sandbox.bundle(OLD)
    r = sandbox.asrctl(
        "--json", "upgrade", "--bundle", str(older), "--allow-downgrade", "--no-vm-agent",
        "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
        env={"ASR_SIM_INSTALL_EXIT": "1", "ASR_SIM_KNOB_VERSION": OLD},
    )  # fmt: skip
    assert (r.returncode, r.json["error"]["code"]) == (7, "ASRCTL-E060"), r.stderr
    assert r.json["data"]["outcome"]["state"] == "previous" and r.json["data"]["agent"]["registered"]
    assert_clean(sandbox, NEW)


@pytest.mark.fault("issue-13")
def test_a_second_sigterm_during_the_rollback_waits_for_it(sandbox: Sandbox, cs: Any) -> None:
    """SIGTERM while the installer runs; the rollback runs Microsoft's uninstall.sh to remove what it left; a
    second SIGTERM arrives while it does. The rollback finishes, the exit is 143, the host has no agent."""
    sandbox.bundle(OLD)
    run = spawn(sandbox, *install_args(sandbox, cs), env=with_passphrase_env(),
                vendor_pause="install:versioned,uninstall:locked")  # fmt: skip
    run.ready("install.versioned")
    run.signal(signal.SIGTERM)
    run.ready("uninstall.locked")  # the undo is under way
    run.signal(signal.SIGTERM)
    run.signal(signal.SIGINT)
    run.go("uninstall.locked")
    done = run.finish()
    assert (done.returncode, done.json["error"]["code"]) == (143, "ASRCTL-E005"), done.stderr
    assert (
        "rolled back (remove the partly installed agent): nothing of the Mobility Service is installed"
        in (done.json["error"]["message"])
    )
    journal = json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())
    assert journal["status"] == "interrupted"
    assert_clean(sandbox, "absent")


@pytest.mark.fault("issue-13")
def test_a_signal_while_asrctl_starts_still_exits_143(sandbox: Sandbox) -> None:
    """From asrctl's first line on (``__main__``), a SIGTERM is kept until the run can handle it: 143 and a JSON
    error, never the raw -15 of a process the signal killed. (Before that line, the Python interpreter itself is
    starting; nothing of asrctl runs there.)"""
    pauses = sandbox.base / "pauses"
    pauses.mkdir()
    code = (
        "import os, sys, time\n"
        "from asrctl.system.signals import hold_early, after_the_end\n"
        "hold_early()\n"
        f"open({str(pauses / 'early.ready')!r}, 'w').write(str(os.getpid()))\n"
        f"while not os.path.exists({str(pauses / 'early.go')!r}): time.sleep(0.01)\n"
        "from asrctl.cli import run\n"
        "code = run(sys.argv[1:])\n"
        "after_the_end()\n"
        "sys.exit(code)\n"
    )
    argv = [sys.executable, "-c", code, "--root", str(sandbox.root), "--json", "status"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    while not (pauses / "early.ready").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    (pauses / "early.go").write_text("go")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert json.loads(out)["error"]["code"] == "ASRCTL-E005"


@pytest.mark.fault("issue-13")
def test_a_killed_uninstall_sh_leaves_no_lock_that_blocks_the_next_uninstall(installed: Sandbox) -> None:
    """Microsoft's uninstall.sh is killed outright (SIGKILL: its trap never runs) while it holds .uninstall.lck:
    asrctl's undo starts the agent again and clears the stale lock, saying so; the next uninstall -Y works."""
    import psutil

    sb = installed
    run = spawn(sb, "--json", "uninstall", "-Y", vendor_pause="uninstall:locked")
    helper = run.ready("uninstall.locked")
    script = psutil.Process(helper).parent()
    assert script is not None and any("uninstall.sh" in part for part in script.cmdline())
    assert (sb.install_dir / ".uninstall.lck").exists()
    script.kill()
    psutil.Process(helper).kill()
    done = run.finish()
    assert (done.returncode, done.json["error"]["code"]) == (7, "ASRCTL-E061"), done.stderr
    assert "removed the stale vendor lock" in done.stderr
    assert done.json["data"]["outcome"] == {
        "state": "previous",
        "whole": True,
        "reasons": [],
        "summary": done.json["data"]["outcome"]["summary"],
    }
    assert_clean(sb, OLD)
    again = sb.asrctl("--json", "uninstall", "-Y")
    assert again.returncode == 0, again.stderr
    assert_clean(sb, "absent")


@pytest.mark.fault("issue-13")
@pytest.mark.slow
def test_logs_collect_reads_only_the_tail_of_a_huge_log(sandbox: Sandbox) -> None:
    big = sandbox.root / "var/log/ua_install.log"
    big.parent.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as fh:
        fh.truncate(3 << 30)
        fh.seek(0, 2)
        fh.write(b"the last line\n")
    code = (  # the child's own peak (VmHWM): ru_maxrss would carry the forking test runner's over exec
        "import json, re, sys\nfrom asrctl.cli import run\nrc = run(sys.argv[1:])\n"
        "with open('/proc/self/status') as fh:\n"
        "    peak = int(re.search(r'^VmHWM:\\s+(\\d+) kB', fh.read(), re.M).group(1)) * 1024\n"
        "print(json.dumps({'rc': rc, 'peak': peak}), file=sys.stderr)\n"
    )
    out = sandbox.base / "tmp/support.tar.gz"
    argv = [sys.executable, "-c", code, "--root", str(sandbox.root), "logs", "collect", "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    assert stats["rc"] == 0, proc.stderr
    assert stats["peak"] < 200 * 2**20


@pytest.mark.fault("issue-13")
def test_the_passphrase_1_leaves_the_journal_valid(sandbox: Sandbox) -> None:
    from asrsim import csserver

    pf = sandbox.base / "tmp/one.passphrase"
    pf.write_text("1\n")
    pf.chmod(0o600)
    server = csserver.start(sandbox.base / "cs", pf, max_lifetime=300)
    try:
        sandbox.env["ASRCTL_PS_PORT"] = str(server.ps_port)
        sandbox.bundle(OLD)
        r = sandbox.asrctl("--json", "install", "--cs-endpoint", server.endpoint, "--passphrase-file", str(pf),
                           "--no-vm-agent")  # fmt: skip
        assert r.returncode == 0, r.stderr
        journal = json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())
        assert journal["status"] == "ok"
        assert sandbox.asrctl("--json", "status").json["data"]["last_run"]["status"] == "ok"
        assert whole(observe_root(sandbox.root)) == []
    finally:
        sandbox.stop_agent()
        server.stop()


@pytest.mark.fault("issue-13")
def test_unicode_digits_are_no_version(sandbox: Sandbox) -> None:
    name = "Microsoft-ASR_UA_9.6٥.7417.1_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz"
    (sandbox.bundles / name).write_bytes(b"\x1f\x8b" + b"\0" * 64)
    r = sandbox.asrctl("--json", "bundles", "list")
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["bundles"] == [] and r.json["data"]["ignored"][0]["path"].endswith(name)


@pytest.mark.fault("issue-13")
def test_a_failed_registration_says_the_agent_is_kept(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(OLD)
    wrong = sandbox.base / "tmp/wrong.passphrase"
    wrong.write_text("not-the-passphrase\n")
    wrong.chmod(0o600)
    r = sandbox.asrctl(*install_args(sandbox, cs, "--passphrase-file", str(wrong)))
    assert (r.returncode, r.json["error"]["code"]) == (8, "ASRCTL-E081"), r.stderr
    assert r.json["changed"] is True
    assert "the agent that was installed is kept" in r.json["error"]["message"]
    assert orphans(sandbox) == []
    assert whole(observe_root(sandbox.root)) == []
