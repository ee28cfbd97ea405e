"""Plans and their application.

A :class:`Plan` is an ordered list of :class:`Step` s: what each does in words, the exact argv (if it runs a
program), and how to undo it. ``--dry-run`` prints the plan and stops. :func:`apply` is the only place that
changes the machine: host lock → recover from an interrupted run → journal each step → run → on failure or
Ctrl-C undo what was done, in reverse.

A changing verb takes the host lock *before* it reads the host's state (:func:`hold`), and keeps it while it decides,
plans and applies: a decision can never be based on a state another run is changing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asrctl.errors import from_os_error
from asrctl.output import Output, Result
from asrctl.system import orphans
from asrctl.system.journal import Journal
from asrctl.system.lock import HostLock
from asrctl.system.redact import redact, redact_data
from asrctl.system.runner import shown, watching
from asrctl.system.signals import shielded

LOG = logging.getLogger("asrctl")


@dataclass
class Step:
    id: str
    describe: str
    run: Callable[[], dict[str, Any] | None]
    argv: list[str] | None = None
    undo: Callable[[], None] | None = None
    undo_describe: str | None = None
    # Run when this very step fails or is interrupted half-way (a vendor installer that died mid-install).
    # ``undo`` is for a later step's failure; the two are separate so that a failed registration never removes
    # an agent that installed fine.
    abort: Callable[[], None] | None = None
    abort_describe: str | None = None
    # Checked right before ``run``: the host still is what this step was planned for (a destructive step never acts
    # on a state its run did not decide on). A failed check means the step did nothing, so its ``abort`` is not run.
    precheck: Callable[[], None] | None = None

    def as_json(self) -> dict[str, Any]:
        return redact_data(
            {
                "id": self.id,
                "describe": self.describe,
                "argv": self.argv or None,
                "undo": self.undo_describe,
                "on_failure": self.abort_describe,
            }
        )


@dataclass
class Plan:
    command: str
    steps: list[Step] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    cleanup: list[Path] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, steps: list[Step]) -> None:
        self.steps.extend(steps)

    def as_json(self) -> dict[str, Any]:
        return {"summary": redact_data(self.summary), "steps": [s.as_json() for s in self.steps]}

    def render(self, out: Output) -> None:
        rows = []
        for n, s in enumerate(self.steps, 1):
            undo = s.abort_describe or s.undo_describe or ""
            rows.append((n, redact(s.describe), shown(s.argv) if s.argv else "", redact(undo)))
        out.table(f"Plan: {self.command}", ["#", "step", "command", "if it fails"], rows)


# Where a run keeps what it removes when it is done (its staging copy, the private passphrase file, the vendor
# tools' run files): all a dead run's "cleanup" may name. Anything else in a journal is never removed.
RUN_DIRS = ("staging", "private", "runs")


def recover(journal: Journal, out: Output, state_dir: Path | None = None) -> dict[str, Any] | None:
    """Clean up after a run that died (its journal still says "running" while the lock is free), with the lock held:

    1. stop what is left of its vendor tools (system/orphans.py: the sessions the journal recorded, checked to be
       really that run's), so nothing recovers beside an orphaned installer or configurator;
    2. remove what it would have removed when done — its staging copy, the private passphrase file, the vendor
       tools' run files — only inside the state dir's run directories (a journal is data, not orders);
    3. mark the journal "interrupted" (``died``: it had no chance to undo anything), which also ends up in history.

    This runs for every changing verb under the lock, also when it then finds nothing to do: a kill after
    registration used to strand the staging copy and a 0600 passphrase file that no later run cleaned.
    Returns the dead run's journal (as it was), or None."""
    state_dir = state_dir or journal.path.parent
    aside = journal.set_aside_if_damaged()
    if aside:
        out.warn(f"asrctl's journal could not be read and was moved aside: {aside}")
    last = journal.last()
    if not last or last.get("status") != "running":
        if aside:
            _remove_all_run_dirs(state_dir)  # no journal can name them any more, and no run holds the lock
        return None
    dead = dict(last)
    steps = last.get("steps") or []
    where = next((s for s in reversed(steps) if s.get("status") == "started"), None)
    out.warn(
        f"the previous run ({last.get('command')}, pid {last.get('pid')}, started {last.get('started')}) was "
        f"interrupted{' during: ' + where['describe'] if where else ''}; cleaning up after it"
    )
    stopped = orphans.stop(orphans.find(last.get("children") or [], last.get("run_id")))
    if stopped:
        out.warn("stopped what was left of its vendor tools: " + ", ".join(str(o) for o in stopped))
    removed = []
    for leftover in last.get("cleanup") or []:
        path = _run_dir(state_dir, leftover)
        if path is not None and os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    if removed:
        LOG.warning("removed what the interrupted run left: %s", ", ".join(removed))
    last["status"] = "interrupted"
    last["died"] = True
    last["recovered"] = {"by_pid": os.getpid(), "stopped": [str(o) for o in stopped], "removed": removed}
    journal.data = last
    journal.finish("interrupted", last.get("error"))
    return dead


def _run_dir(state_dir: Path, leftover: object) -> Path | None:
    """``leftover`` if it is a run directory of the state dir (``<state>/{staging,private,runs}/<name>``), else None."""
    if not isinstance(leftover, str):
        return None
    path = Path(leftover)
    try:
        rel = path.relative_to(state_dir)
    except ValueError:
        return None
    if len(rel.parts) != 2 or rel.parts[0] not in RUN_DIRS or rel.parts[1] in ("", ".", ".."):
        return None
    return path


def _remove_all_run_dirs(state_dir: Path) -> None:
    for name in RUN_DIRS:
        base = state_dir / name
        try:
            entries = list(base.iterdir())
        except OSError:
            continue
        for entry in entries:
            shutil.rmtree(entry, ignore_errors=True)


@dataclass
class Applied:
    completed: list[str]
    results: dict[str, dict[str, Any]]
    recovered: dict[str, Any] | None = None
    stale_lock: dict[str, Any] | None = None


@dataclass
class Session:
    """A run's hold on the host while it reads the state, decides, plans and applies (:func:`hold`)."""

    state_dir: Path
    command: str
    locked: bool
    # The journal of a run that died (it still says "running" while its lock is free): what it left is cleaned up
    # when this run's plan is applied; a fresh install killed half-way is removed first (lifecycle/install.py).
    dead_run: dict[str, Any] | None = None
    stale_holder: dict[str, Any] | None = None
    # --dry-run only: the run that held the lock when the state was read (the state may be changing).
    busy: dict[str, Any] | None = None


@contextlib.contextmanager
def hold(state_dir: Path, command: str, out: Output, dry_run: bool = False) -> Iterator[Session]:
    """The host lock, taken before the state is read and held until the run is done (``ASRCTL-E042`` if another
    run holds it). Under it, a journal that still says "running" belongs to a run that died: the OS dropped its lock.

    ``--dry-run`` takes no lock and writes nothing: it must never wait for, block or fail a changing run. It reads
    the state as it is and, when another run holds the lock at that moment, says so (``busy``): the plan it shows
    describes a state that run may be changing.
    """
    if dry_run:
        busy = HostLock.held_by(state_dir)
        last = Journal(state_dir).last()
        dead = last if busy is None and last and last.get("status") == "running" else None
        if busy is not None:
            out.warn(
                f"another asrctl run (pid {busy.get('pid', '?')}, {busy.get('command', '?')}) is changing this host "
                "right now: this plan describes the state before it finishes"
            )
        yield Session(state_dir, command, False, dead, None, busy)
        return
    lock = HostLock(state_dir, command)
    with lock:
        if lock.set_aside:
            out.warn(f"the lock file was not a regular file; moved it to {lock.set_aside}")
        if lock.stale_holder:
            holder = lock.stale_holder
            if holder.get("raw") is not None:
                out.warn(f"took over a lock file that held garbage ({holder.get('raw')!r})")
            else:
                out.warn(
                    f"took over a stale lock from pid {holder.get('pid')} "
                    f"({holder.get('command')}, started {holder.get('started')})"
                )
        dead = recover(Journal(state_dir, out.warn), out, state_dir)
        yield Session(state_dir, command, True, dead, lock.stale_holder)


def undone_by(exc: BaseException) -> list[str]:
    """What the rollback after ``exc`` undid, in order (what :func:`apply` recorded on the exception)."""
    value = getattr(exc, "asrctl_undone", None)
    return [str(v) for v in value] if isinstance(value, list) else []


def apply(plan: Plan, out: Output, where: Session | Path) -> Applied:
    """Run ``plan`` under the session's lock (or, given a state dir, under a lock taken for this plan alone: for
    plans whose decision did not depend on the host's state)."""
    if isinstance(where, Session):
        if not where.locked:
            raise RuntimeError("a plan is applied only under the host lock (a --dry-run session holds none)")
        return _apply(plan, out, where)
    with hold(where, plan.command, out) as session:
        return _apply(plan, out, session)


def _apply(plan: Plan, out: Output, session: Session) -> Applied:
    """The steps, journalled, with the lock already held by the caller (which recovered a dead run: :func:`hold`).

    The journal is best-effort (system/journal.py): a failed write warns once and the run, and above all its
    rollback, goes on. Every vendor process a step starts is recorded in it (pid, session, start time), so that if
    this run is killed outright the next one can stop what it left running. An operating-system failure of a step
    (a full or read-only file system) becomes its catalogued error, never "a bug"."""
    journal = Journal(session.state_dir, out.warn)
    journal.begin(plan.command, plan.summary)
    for path in plan.cleanup:
        journal.note_cleanup(path)
    done: list[Step] = []
    results: dict[str, dict[str, Any]] = {}
    current: Step | None = None

    def child(event: str, record: dict[str, Any]) -> None:
        journal.child(record)

    try:
        with watching(journal.run_id or "unknown", child):
            for step in plan.steps:
                out.step(step.describe)
                journal.step(step.id, step.describe, "started", argv=shown(step.argv) if step.argv else None)
                if step.precheck is not None:
                    try:
                        step.precheck()
                    except BaseException:
                        journal.step(step.id, step.describe, "not-run")
                        raise
                current = step
                try:
                    results[step.id] = step.run() or {}
                except OSError as exc:
                    raise from_os_error(exc, step.describe) from exc
                journal.step(step.id, step.describe, "done")
                done.append(step)
                current = None
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        error = exc.as_json() if hasattr(exc, "as_json") else {"message": redact(str(exc)) or type(exc).__name__}
        # Undo, cleanup and the journal's last word run to the end whatever signal comes next.
        with shielded(deliver=False) as ignored:
            if current is not None:
                journal.step(current.id, current.describe, "interrupted" if interrupted else "failed")
            with watching(journal.run_id or "unknown", child):
                undone = _rollback(done, current, journal, out)
            _cleanup(plan)
            journal.finish("interrupted" if interrupted else "failed", error)
        with contextlib.suppress(AttributeError):
            exc.asrctl_undone = undone  # type: ignore[attr-defined]
        if ignored:
            LOG.warning("signal(s) %s arrived during rollback; the rollback finished first", ignored)
        raise
    _cleanup(plan)
    journal.finish("ok")
    return Applied([s.id for s in done], results, session.dead_run, session.stale_holder)


def _rollback(done: list[Step], failed: Step | None, journal: Journal, out: Output) -> list[str]:
    """Abort the failed step and undo the done ones in reverse; returns what was undone (its descriptions)."""
    todo: list[tuple[Step, Callable[[], None], str]] = []
    if failed is not None and failed.abort is not None:
        todo.append((failed, failed.abort, failed.abort_describe or failed.describe))
    todo.extend((s, s.undo, s.undo_describe or s.describe) for s in reversed(done) if s.undo is not None)
    undone: list[str] = []
    for step, action, describe in todo:
        out.warn(f"undo: {describe}")
        try:
            action()
            journal.step(step.id, step.describe, "undone")
            undone.append(describe)
        except Exception as exc:  # keep undoing the rest; say what could not be undone
            LOG.exception("undo of %s failed", step.id)
            out.warn(f"could not undo '{step.describe}': {exc}")
            journal.step(step.id, step.describe, "undo-failed", error=redact(str(exc)))
    return undone


def _cleanup(plan: Plan) -> None:
    for path in plan.cleanup:
        shutil.rmtree(path, ignore_errors=True)


# --- what every verb does with a plan ---------------------------------------------------------------------


def dry_run(plan: Plan, out: Output, result: Result) -> Result:
    """``--dry-run``: show the plan (exact commands, what undoes each step), put it in the result, change nothing.
    ``would_change``: a plan with steps changes the host (Ansible's check mode reads it)."""
    plan.render(out)
    result.data["plan"] = plan.as_json()
    result.data["dry_run"] = True
    result.data["would_change"] = bool(plan.steps)
    out.info("Dry run: nothing was changed.")
    return result


def nothing_to_do(result: Result, dry: bool) -> Result:
    """The host already is as asked: ``changed`` false, and for ``--dry-run`` an empty plan, ``would_change``
    false."""
    result.changed = False
    if dry:
        result.data["plan"] = {"summary": {}, "steps": []}
        result.data["dry_run"] = True
        result.data["would_change"] = False
    return result


def collect_warnings(applied: Applied, result: Result) -> None:
    """Warnings and reboot needs that steps reported (installer exit 98, 3010/1641 on Windows, the VM agent)."""
    for value in applied.results.values():
        if value.get("warning"):
            result.warnings.append(str(value["warning"]))
        if value.get("reboot_required"):
            result.reboot_required = True
