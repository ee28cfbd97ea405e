"""The pieces the fault-injection suite relies on, one by one (docs/RELIABILITY.md): the journal's record of vendor
children and its best-effort writes, finding a killed run's orphans (and only them), the lock taking over or
moving aside what is not a lock, environmental errors as catalogued errors, durations."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from asrctl.commands.options import Seconds
from asrctl.errors import AsrctlError, from_os_error
from asrctl.output import Output
from asrctl.plan import Plan, Step, apply, hold
from asrctl.system import orphans
from asrctl.system.journal import Journal
from asrctl.system.lock import HostLock
from asrctl.system.paths import Paths
from asrctl.system.runner import RUN_ENV, ProcessRunner, spawn_error, watching

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"]


# --- the runner records each child, with the run's id in its environment -----------------------------------------


def test_every_child_is_recorded_before_it_runs_and_carries_the_run_id(tmp_path: Path) -> None:
    seen: list[tuple[str, dict]] = []
    runner = ProcessRunner(Paths.for_root(tmp_path))
    with watching("run123", lambda event, rec: seen.append((event, rec))):
        done = runner.run([sys.executable, "-c", f"import os; print(os.environ['{RUN_ENV}'])"])
    assert done.stdout.strip() == "run123"
    (start, rec), (end, rec_end) = seen
    assert (start, end) == ("start", "end")
    assert rec["pid"] == rec["sid"] == rec["pgid"] and rec["run_id"] == "run123" and rec["create_time"] > 0
    assert rec_end["status"] == "ended"
    assert RUN_ENV not in runner.environment()  # outside a run, no mark


def test_a_program_on_a_noexec_or_missing_path_is_a_catalogued_error(tmp_path: Path) -> None:
    err = spawn_error(OSError(errno.ENOENT, "No such file or directory"), [str(tmp_path / "install")])
    assert err.code == "ASRCTL-E114" and err.exit_code == 7
    with pytest.raises(AsrctlError) as raised:
        ProcessRunner(Paths.for_root(tmp_path)).run([str(tmp_path / "missing-installer")])
    assert raised.value.code == "ASRCTL-E114"


# --- orphans: a killed run's tree, and only it --------------------------------------------------------------------


def test_a_killed_runs_orphan_is_found_by_session_and_run_id_and_stopped() -> None:
    env = {**os.environ, RUN_ENV: "deadrun"}
    mine = subprocess.Popen(SLEEPER, start_new_session=True, env=env)
    other_run = subprocess.Popen(SLEEPER, start_new_session=True, env={**os.environ, RUN_ENV: "another"})
    unmarked = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        import psutil

        records = [
            {"sid": p.pid, "create_time": psutil.Process(p.pid).create_time()} for p in (mine, other_run, unmarked)
        ]
        found = orphans.find(records, "deadrun")
        assert [o.pid for o in found] == [mine.pid]
        # A record whose start time is later than the process's: a reused pid, not the child.
        assert orphans.find([{**records[0], "create_time": records[0]["create_time"] + 100}], "deadrun") == []
        orphans.stop(found, grace=5)
        # stop() waits until it is gone (reaping our own child, so Popen cannot see its status any more).
        assert not psutil.pid_exists(mine.pid) or psutil.Process(mine.pid).status() == psutil.STATUS_ZOMBIE
        assert other_run.poll() is None and unmarked.poll() is None
    finally:
        for p in (mine, other_run, unmarked):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_dead_run_is_recovered_under_the_lock_even_with_nothing_to_do(tmp_path: Path, capsys) -> None:
    """hold() stops the dead run's orphans and removes its run dirs — only those — before anything is decided."""
    state = tmp_path / "state"
    staging, private, elsewhere = state / "staging/r1", state / "private/r1", tmp_path / "not-mine"
    for d in (staging, private, elsewhere):
        d.mkdir(parents=True)
    (private / "passphrase").write_text("secret")
    child = subprocess.Popen(SLEEPER, start_new_session=True, env={**os.environ, RUN_ENV: "r1"})
    try:
        import psutil

        journal = Journal(state)
        journal.begin("install", {})
        journal.data["run_id"] = "r1"
        for path in (staging, private, elsewhere, "/"):
            journal.note_cleanup(Path(path))
        journal.child({"pid": child.pid, "sid": child.pid, "create_time": psutil.Process(child.pid).create_time()})
        with hold(state, "install", Output(verbosity=0)) as session:
            assert session.dead_run is not None and session.dead_run["status"] == "running"
            assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
            assert not staging.exists() and not private.exists()
            assert elsewhere.exists()  # a journal is data, not orders
        last = Journal(state).last()
        assert last is not None and last["status"] == "interrupted" and last["died"] is True
        assert "stopped what was left of its vendor tools" in capsys.readouterr().err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# --- the journal is best-effort -----------------------------------------------------------------------------------


def test_a_journal_that_cannot_be_written_warns_once_and_the_rollback_runs(tmp_path: Path, monkeypatch) -> None:
    from asrctl.system import journal as journal_module

    calls = {"n": 0}
    real = journal_module.atomic_write

    def failing(path: Path, text: str, mode: int = 0o644) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text, mode)

    monkeypatch.setattr(journal_module, "atomic_write", failing)
    undone: list[str] = []

    def boom() -> None:
        raise AsrctlError("ASRCTL-E060", "installer failed")

    plan = Plan("install")
    plan.add(Step("a", "step a", lambda: None, undo=lambda: undone.append("a")))
    plan.add(Step("b", "step b", boom))
    warnings: list[str] = []
    out = Output(verbosity=0)
    monkeypatch.setattr(out, "warn", warnings.append)
    with pytest.raises(AsrctlError):
        apply(plan, out, tmp_path)
    assert undone == ["a"]
    assert sum("could not write the journal" in w for w in warnings) == 1


def test_a_damaged_journal_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text("{not json")
    journal = Journal(tmp_path)
    assert journal.last() is None and journal.damaged == "holds no valid JSON"
    said = journal.set_aside_if_damaged()
    assert said is not None and "moved to" in said
    assert not (tmp_path / "journal.json").exists()
    assert [p.name.startswith("journal.json.broken-") for p in tmp_path.iterdir()] == [True]


# --- the lock -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "directory", "fifo", "symlink"])
def test_a_lock_that_is_not_a_lock_is_taken_over(tmp_path: Path, kind: str) -> None:
    lock = tmp_path / "lock"
    if kind == "garbage":
        lock.write_bytes(b"\xff\x00 garbage")
    elif kind == "directory":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock)
    else:
        lock.symlink_to(tmp_path / "elsewhere")
    with HostLock(tmp_path, "install") as held:
        assert (held.stale_holder is not None) == (kind == "garbage")
        assert (held.set_aside is not None) == (kind != "garbage")
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (tmp_path / "elsewhere").exists()


def test_a_state_dir_that_cannot_be_created_is_a_catalogued_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file")
    with pytest.raises(AsrctlError) as err:
        HostLock(blocker / "sub", "install").acquire()
    assert err.value.code in ("ASRCTL-E110", "ASRCTL-E113") and err.value.exit_code == 6


@pytest.mark.parametrize(
    ("number", "code"),
    [(errno.ENOSPC, "ASRCTL-E111"), (errno.EROFS, "ASRCTL-E110"), (errno.EACCES, "ASRCTL-E110"),
     (errno.EISDIR, "ASRCTL-E113")],
)  # fmt: skip
def test_environmental_os_errors_map_to_their_codes(number: int, code: str) -> None:
    err = from_os_error(OSError(number, os.strerror(number), "/var/lib/asrctl/journal.json"), "writing the journal")
    assert err.code == code and err.exit_code == 6
    assert err.message.startswith("writing the journal: ") and "/var/lib/asrctl/journal.json" in err.message


# --- durations ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "1e9", "x"])
def test_a_duration_is_positive_finite_and_bounded(value: str) -> None:
    with pytest.raises(click.BadParameter):
        Seconds(600).convert(value, None, None)


def test_a_good_duration() -> None:
    assert Seconds(600).convert("2.5", None, None) == 2.5
    assert Seconds(600).convert(600, None, None) == 600.0


def test_a_passphrase_stdin_stream_without_a_line_end_is_refused_bounded() -> None:
    import io

    from asrctl.system import secrets

    start = time.monotonic()
    with pytest.raises(AsrctlError) as err:
        secrets.from_stdin(io.StringIO("x" * 10_000_000))
    assert err.value.code == "ASRCTL-E050"
    del start
