"""Run child processes: argv lists only, the host's environment, timeouts, redaction.

Every process asrctl starts goes through a :class:`Runner`: the protocol the backends are written against.
:class:`ProcessRunner` is the real one; the tests hand backends a recording runner instead
(tests/fakes/runner.py), so the Windows backend runs its whole suite on Linux.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from asrctl.errors import AsrctlError
from asrctl.system.paths import Paths
from asrctl.system.redact import redact
from asrctl.system.signals import Terminated, shielded

LOG = logging.getLogger("asrctl")
DEFAULT_TIMEOUT = 3600.0
KILL_GRACE = 5.0


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


# The environment variable that marks every process a run starts (and, inherited, everything they start): the next
# run finds a killed run's vendor tree by it, and never mistakes a reused pid for it (system/orphans.py).
RUN_ENV = "ASRCTL_RUN_ID"

# Who is told about each child (plan.apply records them in the journal): ``(event, record)`` with event "start" or
# "end" and the record of :func:`_record`.
Watcher = Callable[[str, dict[str, Any]], None]
_watch: list[tuple[str, Watcher]] = []


@contextlib.contextmanager
def watching(run_id: str, watcher: Watcher) -> Iterator[None]:
    """While the block runs, every child a :class:`ProcessRunner` starts carries ``ASRCTL_RUN_ID=run_id`` and is
    reported to ``watcher`` (its pid, process group, session and start time) before anything else happens."""
    _watch.append((run_id, watcher))
    try:
        yield
    finally:
        _watch.remove((run_id, watcher))


def _record(proc: subprocess.Popen[str], argv: Sequence[str], run_id: str) -> dict[str, Any]:
    """The child as the journal keeps it. It was started in a new session (``start_new_session``), so its pid is
    its process group and session; the start time (psutil's create_time) tells it from a later process that gets
    the same pid."""
    created: float | None = None
    with contextlib.suppress(Exception):
        import psutil

        created = psutil.Process(proc.pid).create_time()
    return {
        "pid": proc.pid,
        "pgid": proc.pid,
        "sid": proc.pid,
        "create_time": created,
        "argv0": os.path.basename(argv[0]),
        "run_id": run_id,
        "status": "running",
    }


def _tell(event: str, record: dict[str, Any] | None) -> None:
    if record is None:
        return
    for _run, watcher in list(_watch):
        try:
            watcher(event, record)
        except Exception:  # the journal is best-effort; a child must never be left unwatched by an exception
            LOG.exception("could not record child %s", record.get("pid"))


def spawn_error(exc: OSError, argv: Sequence[str]) -> AsrctlError:
    """A program that could not be started, as its catalogued error: a file system mounted noexec (the staging
    dir) is ``ASRCTL-E112``; a missing or non-executable program ``ASRCTL-E114``; anything else the environment's."""
    from asrctl.errors import from_os_error

    program = str(argv[0])
    if exc.errno in (errno.EACCES, errno.EPERM) and _noexec(program):
        return AsrctlError(
            "ASRCTL-E112", f"cannot run {program}: its file system is mounted noexec", path=program, errno="EACCES"
        )
    if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR, errno.EPERM):
        why = exc.strerror or str(exc)
        return AsrctlError("ASRCTL-E114", f"cannot run {program}: {why}", path=program)
    return from_os_error(exc, f"starting {program}")


def _noexec(program: str) -> bool:
    probe = Path(program)
    while True:
        try:
            return bool(os.statvfs(probe).f_flag & getattr(os, "ST_NOEXEC", 8))
        except OSError:
            if probe == probe.parent:
                return False
            probe = probe.parent


class TimedOut(Exception):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        super().__init__(f"{argv[0]} did not finish within {timeout:.0f} s")
        self.argv = list(argv)
        self.timeout = timeout


def shown(argv: Sequence[str]) -> str:
    """argv as one line for people and logs: quoted where needed, secrets masked. Display only, never executed."""
    import shlex

    # Masked argument by argument before quoting: quoting would change a passphrase holding a quote or a space.
    return " ".join(shlex.quote(redact(a)) for a in argv)


class Runner(Protocol):
    """Runs one program to completion. ``argv`` is a list (a string is refused: no shell, ever); ``env`` is added
    to the host's environment; a timeout stops the program's whole process tree and raises :class:`TimedOut`."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin_text: str | None = None,
    ) -> Completed: ...


class ProcessRunner:
    """The real runner: a child process in its own process group, with the host's environment back."""

    def __init__(self, paths: Paths, environ: Mapping[str, str] | None = None) -> None:
        self.paths = paths
        self._environ = environ

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        from asrctl.system.childenv import host_environ

        env = host_environ(self._environ)
        if self.paths.sandboxed:
            # Real vendor tools ignore it; the simulators use it for their default locations (docs/SIMULATORS.md).
            env["ASRCTL_ROOT"] = str(self.paths.root)
        else:
            env.pop("ASRCTL_ROOT", None)
        env.update(extra or {})
        if _watch:
            env[RUN_ENV] = _watch[-1][0]
        else:
            env.pop(RUN_ENV, None)
        return env

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin_text: str | None = None,
    ) -> Completed:
        if isinstance(argv, str):  # a shell string is a bug, never a convenience
            raise TypeError("argv must be a list of arguments, not a string")
        argv = [os.fspath(a) for a in argv]
        LOG.info("run: %s%s", shown(argv), f" (cwd {cwd})" if cwd else "")
        started = time.monotonic()
        kwargs: dict[str, object] = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # its own process group: Ctrl-C and timeouts stop the whole tree
        else:
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        record: dict[str, Any] | None = None
        # From fork to the journal's record the child is unknown to anyone: a signal arriving there must wait, or
        # the child would outlive this run unrecorded. It is delivered right after, inside the try that stops the
        # child's whole tree.
        with shielded(deliver=False) as pending:
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                    argv,
                    stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=cwd,
                    env=self.environment(env),
                    text=True,
                    errors="replace",
                    **kwargs,  # type: ignore[call-overload]
                )
            except OSError as exc:
                raise spawn_error(exc, argv) from None
            if _watch and os.name == "posix":
                record = _record(proc, argv, _watch[-1][0])
                _tell("start", record)
        try:
            if pending:
                raise Terminated if signal.SIGTERM in pending else KeyboardInterrupt
            out, err = proc.communicate(stdin_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_tree(proc)
            LOG.error("timeout after %s s: %s", timeout, shown(argv))
            raise TimedOut(argv, timeout or 0) from None
        except BaseException:
            # KeyboardInterrupt (Ctrl-C) or anything else: never leave the vendor tool running behind us.
            _stop_tree(proc)
            raise
        finally:
            if record is not None:
                _tell("end", {**record, "status": "ended"})
        done = Completed(argv, proc.returncode, out or "", err or "", time.monotonic() - started)
        LOG.info("exit %s after %.1f s: %s", done.returncode, done.duration, argv[0])
        if done.output:
            LOG.debug("output of %s:\n%s", argv[0], redact(done.output[-8000:]))
        return done


def _stop_tree(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the child's process group, SIGKILL after :data:`KILL_GRACE`. Shielded: a second Ctrl-C or SIGTERM
    while the tree is being stopped must not leave it half stopped (the first one is already on its way up)."""
    with shielded(deliver=False):
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(KILL_GRACE)
    except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
        try:
            if os.name == "posix":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait(KILL_GRACE)
        except (ProcessLookupError, subprocess.TimeoutExpired, PermissionError):
            pass
    try:
        proc.communicate(timeout=1)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass
