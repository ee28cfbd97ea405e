"""The recording runner: backends (Windows included) run their steps against scripted results, nothing is
started. It implements asrctl.system.runner.Runner; it lives here so that no test double ships in the product."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asrctl.system.runner import DEFAULT_TIMEOUT, Completed


@dataclass
class Scripted:
    """One expected call for the :class:`RecordingRunner`: match on argv prefix, return this result."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    effect: Callable[[list[str]], None] | None = None


@dataclass
class RecordingRunner:
    """Records every argv and answers from a script: ``{argv0 basename or full prefix: Scripted | [Scripted...]}``.

    Used to test backends (Windows included) without running anything.
    """

    script: dict[str, Scripted | list[Scripted]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    envs: list[dict[str, str]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin_text: str | None = None,
    ) -> Completed:
        if isinstance(argv, str):
            raise TypeError("argv must be a list of arguments, not a string")
        call = [os.fspath(a) for a in argv]
        self.calls.append(call)
        self.envs.append(dict(env or {}))
        answer = self._answer(call)
        if answer.effect:
            answer.effect(call)
        return Completed(call, answer.returncode, answer.stdout, answer.stderr)

    def _answer(self, call: list[str]) -> Scripted:
        joined = " ".join(call)
        base = call[0].replace("\\", "/").rsplit("/", 1)[-1].lower()
        for key in sorted(self.script, key=len, reverse=True):
            if joined.startswith(key) or base == key.lower():
                entry = self.script[key]
                if isinstance(entry, list):
                    return entry.pop(0) if len(entry) > 1 else entry[0]
                return entry
        return Scripted()
