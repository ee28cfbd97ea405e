"""Run child processes: argv lists only, the host's environment, timeouts, redaction.

Every process asrctl starts goes through a :class:`Runner`: the protocol the backends are written against.
:class:`ProcessRunner` is the real one; the tests hand backends a recording runner instead
(tests/fakes/runner.py), so the Windows backend runs its whole suite on Linux.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from asrctl.system.paths import Paths
from asrctl.system.redact import redact

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
        try:
            out, err = proc.communicate(stdin_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_tree(proc)
            LOG.error("timeout after %s s: %s", timeout, shown(argv))
            raise TimedOut(argv, timeout or 0) from None
        except BaseException:
            # KeyboardInterrupt (Ctrl-C) or anything else: never leave the vendor tool running behind us.
            _stop_tree(proc)
            raise
        done = Completed(argv, proc.returncode, out or "", err or "", time.monotonic() - started)
        LOG.info("exit %s after %.1f s: %s", done.returncode, done.duration, argv[0])
        if done.output:
            LOG.debug("output of %s:\n%s", argv[0], redact(done.output[-8000:]))
        return done


def _stop_tree(proc: subprocess.Popen[str]) -> None:
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
