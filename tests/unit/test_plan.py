"""Plans: apply runs steps in order under the lock, journals them, undoes on failure and on Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrctl.errors import AsrctlError
from asrctl.output import Output, Result
from asrctl.plan import Plan, Step, apply, collect_warnings, dry_run, hold, nothing_to_do, undone_by
from asrctl.system.journal import Journal
from asrctl.system.lock import HostLock


def _plan(log: list[str], fail_at: str | None = None, interrupt_at: str | None = None) -> Plan:
    def action(name: str):
        def run():
            log.append(f"run {name}")
            if name == fail_at:
                raise AsrctlError("ASRCTL-E060", f"{name} failed")
            if name == interrupt_at:
                raise KeyboardInterrupt
            return {"did": name}

        return run

    plan = Plan("install")
    for name in ("a", "b", "c"):
        plan.add(
            Step(
                name,
                f"step {name}",
                action(name),
                undo=lambda n=name: log.append(f"undo {n}"),
                abort=lambda n=name: log.append(f"abort {n}"),
            )
        )
    return plan


def test_apply_runs_in_order_and_journals(tmp_path: Path) -> None:
    log: list[str] = []
    applied = apply(_plan(log), Output(verbosity=-1), tmp_path)
    assert log == ["run a", "run b", "run c"]
    assert applied.completed == ["a", "b", "c"]
    assert applied.results["b"] == {"did": "b"}
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "ok"
    assert [s["status"] for s in journal["steps"]] == ["done", "done", "done"]
    assert (tmp_path / "history.jsonl").read_text().count("\n") == 1


def test_failure_aborts_the_failed_step_and_undoes_done_ones_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    with pytest.raises(AsrctlError):
        apply(_plan(log, fail_at="c"), Output(verbosity=-1), tmp_path)
    assert log == ["run a", "run b", "run c", "abort c", "undo b", "undo a"]
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "failed"
    assert journal["error"]["code"] == "ASRCTL-E060"
    statuses = {s["id"]: s["status"] for s in journal["steps"]}
    assert statuses == {"a": "undone", "b": "undone", "c": "undone"}


def test_ctrl_c_undoes_and_marks_interrupted(tmp_path: Path) -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        apply(_plan(log, interrupt_at="b"), Output(verbosity=-1), tmp_path)
    assert log == ["run a", "run b", "abort b", "undo a"]
    assert json.loads((tmp_path / "journal.json").read_text())["status"] == "interrupted"


def test_cleanup_dirs_removed_on_success_and_failure(tmp_path: Path) -> None:
    for fail in (None, "b"):
        scratch = tmp_path / f"scratch-{fail}"
        scratch.mkdir()
        plan = _plan([], fail_at=fail)
        plan.cleanup.append(scratch)
        try:
            apply(plan, Output(verbosity=-1), tmp_path)
        except AsrctlError:
            pass
        assert not scratch.exists()


def test_a_dead_runs_journal_is_reported_and_its_leftovers_removed(tmp_path: Path, capsys) -> None:
    leftover = tmp_path / "staging" / "dead"
    leftover.mkdir(parents=True)
    journal = Journal(tmp_path)
    journal.begin("install", {})
    journal.note_cleanup(leftover)
    journal.step("install", "Install the agent", "started")
    # The process "died" here: status stays "running".
    applied = apply(_plan([]), Output(verbosity=0), tmp_path)
    assert applied.recovered is not None and applied.recovered["command"] == "install"
    assert not leftover.exists()
    assert "was interrupted during: Install the agent" in capsys.readouterr().err
    history = (tmp_path / "history.jsonl").read_text().splitlines()
    assert json.loads(history[0])["status"] == "interrupted"


def test_lock_held_by_another_run_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    holder = HostLock(tmp_path, "upgrade").acquire()
    try:
        with pytest.raises(AsrctlError) as err:
            apply(_plan([]), Output(verbosity=-1), tmp_path)
        assert err.value.code == "ASRCTL-E042"
        assert err.value.exit_code == 6
        assert "upgrade" in err.value.message and "pid" in err.value.message
    finally:
        holder.release()


def test_stale_lock_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "lock").write_text(json.dumps({"pid": 999999999, "command": "install", "started": "x"}))
    applied = apply(_plan([]), Output(verbosity=-1), tmp_path)
    assert applied.stale_lock is not None and applied.stale_lock["pid"] == 999999999
    # Released afterwards: a new lock can be taken.
    HostLock(tmp_path, "status").acquire().release()


def test_plan_json_redacts_secrets() -> None:
    from asrctl.system import redact

    redact.register("s3cret-pass")
    plan = Plan("register")
    plan.add(Step("r", "Register with s3cret-pass", lambda: None, argv=["tool", "-P", "s3cret-pass"]))
    text = json.dumps(plan.as_json())
    assert "s3cret-pass" not in text
    assert redact.MASK in text


# --- what every verb does with a plan -------------------------------------------------------------------------


def test_dry_run_shows_the_plan_and_changes_nothing(tmp_path: Path, capsys) -> None:
    log: list[str] = []
    plan = _plan(log)
    plan.add(Step("cmd", "run a tool", lambda: None, argv=["/opt/tool", "--flag"]))
    result = dry_run(plan, Output(), Result("install"))
    assert log == []  # no step ran
    assert not (tmp_path / "journal.json").exists()
    assert result.data["dry_run"] is True
    assert [s["id"] for s in result.data["plan"]["steps"]] == ["a", "b", "c", "cmd"]
    assert result.data["plan"]["steps"][-1]["argv"] == ["/opt/tool", "--flag"]
    err = capsys.readouterr().err
    assert "/opt/tool --flag" in err and "Dry run: nothing was changed." in err


def test_collect_warnings_gathers_warnings_and_reboots(tmp_path: Path) -> None:
    plan = Plan("install")
    plan.add(Step("a", "a", lambda: {"warning": "exit 98"}))
    plan.add(Step("b", "b", lambda: {"reboot_required": True}))
    plan.add(Step("c", "c", lambda: None))
    result = Result("install")
    collect_warnings(apply(plan, Output(), tmp_path), result)
    assert result.warnings == ["exit 98"]
    assert result.reboot_required is True


def test_collect_warnings_without_any(tmp_path: Path) -> None:
    plan = Plan("install")
    plan.add(Step("a", "a", lambda: {"version": "9.66"}))
    result = Result("install")
    collect_warnings(apply(plan, Output(), tmp_path), result)
    assert result.warnings == [] and result.reboot_required is False


# --- decide under the lock ------------------------------------------------------------------------------------


def test_hold_takes_the_lock_before_the_state_is_read_and_keeps_it_until_done(tmp_path: Path) -> None:
    out = Output(verbosity=-1)
    with hold(tmp_path, "install", out) as session:
        assert session.locked
        # Another changing run (or this verb's own plan under a lock of its own) is refused meanwhile.
        with pytest.raises(AsrctlError) as err:
            HostLock(tmp_path, "uninstall").acquire()
        assert err.value.code == "ASRCTL-E042"
        assert HostLock.held_by(tmp_path)["command"] == "install"
        apply(_plan([]), out, session)  # the plan runs under the same hold
    assert HostLock.held_by(tmp_path) is None
    HostLock(tmp_path, "uninstall").acquire().release()


def test_under_the_lock_a_running_journal_is_a_dead_run(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.begin("install", {"fresh_install": True})
    journal.data["pid"] = 1  # alive (init), but it cannot hold the lock we are about to take: the run is dead
    journal.step("install", "Install", "started")
    with hold(tmp_path, "install", Output(verbosity=-1)) as session:
        assert session.dead_run is not None and session.dead_run["command"] == "install"


def test_a_dry_run_takes_no_lock_writes_nothing_and_names_a_busy_holder(tmp_path: Path, capsys) -> None:
    out = Output(verbosity=0)
    with hold(tmp_path, "install", out, dry_run=True) as session:
        assert not session.locked and session.busy is None
        with pytest.raises(RuntimeError):
            apply(_plan([]), out, session)
    assert list(tmp_path.iterdir()) == [], "a dry run creates no lock file, no journal"
    holder = HostLock(tmp_path, "upgrade").acquire()
    try:
        before = (tmp_path / "lock").read_text()
        with hold(tmp_path, "install", out, dry_run=True) as session:
            assert session.busy is not None and session.busy["command"] == "upgrade"
        assert (tmp_path / "lock").read_text() == before
        assert "is changing this host right now" in capsys.readouterr().err
    finally:
        holder.release()


def test_a_failed_precheck_runs_nothing_of_its_step_and_undoes_the_rest(tmp_path: Path) -> None:
    log: list[str] = []
    plan = _plan(log)

    def changed() -> None:
        raise AsrctlError("ASRCTL-E070", "the host changed")

    plan.steps[1].precheck = changed
    with pytest.raises(AsrctlError) as err:
        apply(plan, Output(verbosity=-1), tmp_path)
    assert log == ["run a", "undo a"], "b neither ran nor was aborted"
    assert undone_by(err.value) == ["step a"]
    statuses = {s["id"]: s["status"] for s in json.loads((tmp_path / "journal.json").read_text())["steps"]}
    assert statuses == {"a": "undone", "b": "not-run"}


def test_what_the_rollback_undid_travels_with_the_exception(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt) as err:
        apply(_plan([], interrupt_at="c"), Output(verbosity=-1), tmp_path)
    assert undone_by(err.value) == ["step c", "step b", "step a"]


def test_nothing_to_do_and_would_change() -> None:
    assert nothing_to_do(Result("install"), dry=False).data == {}
    dry = nothing_to_do(Result("install"), dry=True)
    assert dry.data == {"plan": {"summary": {}, "steps": []}, "dry_run": True, "would_change": False}
    assert dry_run(_plan([]), Output(verbosity=-1), Result("install")).data["would_change"] is True
