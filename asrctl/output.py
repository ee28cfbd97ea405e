"""Output: people-facing text on stderr (rich), data on stdout (only with ``--json``).

rich is imported on first use, so ``asrctl --version`` and ``--help`` never pay for it. ``NO_COLOR`` is honoured
(rich reads it), ``--no-color`` forces it, and when stderr is not a terminal progress bars become a few plain
step lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # rich is imported on first use
    from rich.console import Console

RESULT_VERSION = 1

# Secret masking for everything printed. asrctl.system.redact installs its functions when the first secret is
# registered: output sits below system in the layers and cannot import it, and a run without secrets pays nothing.
_scrub_text: Callable[[str], str] = str
_scrub_data: Callable[[Any, frozenset[str]], Any] = lambda value, keep: value  # noqa: E731
# Values that are asrctl's own vocabulary, never a secret: scripts match on them, so they are never masked.
OWN_FIELDS = frozenset({"asrctl_result_version", "command", "code"})


def install_scrubber(text: Callable[[str], str], data: Callable[[Any, frozenset[str]], Any]) -> None:
    global _scrub_text, _scrub_data
    _scrub_text, _scrub_data = text, data


@dataclass
class Result:
    """The outcome of one verb; ``--json`` prints it as the contract's envelope."""

    command: str
    ok: bool = True
    changed: bool = False
    reboot_required: bool = False
    error: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def envelope(self) -> dict[str, Any]:
        data = dict(self.data)
        if self.warnings:
            data.setdefault("warnings", list(self.warnings))
        return {
            "asrctl_result_version": RESULT_VERSION,
            "command": self.command,
            "ok": self.ok,
            "changed": self.changed,
            "reboot_required": self.reboot_required,
            "error": self.error,
            "data": data,
        }


class Output:
    def __init__(
        self, json_mode: bool = False, verbosity: int = 0, color: bool | None = None, file: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self.verbosity = verbosity
        self.color = color
        self.file = file  # instead of stderr: a verb run for a report (logs collect runs doctor)
        self._console: Console | None = None
        self._emitted = False
        self._warned: set[str] = set()

    # -- consoles -------------------------------------------------------------------------------------------
    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            no_color = self.color is False or bool(os.environ.get("NO_COLOR"))
            self._console = Console(
                stderr=self.file is None,
                file=self.file,
                highlight=False,
                no_color=no_color,
                force_terminal=True if self.color else None,
                soft_wrap=False,
            )
        return self._console

    @property
    def interactive(self) -> bool:
        return self.file is None and sys.stderr.isatty()

    # -- messages -------------------------------------------------------------------------------------------
    def _print(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        # Messages are never wrapped: an operator greps logs for them, and a wrapped error is two half-errors.
        self.console.print(Text(_scrub_text(text), style=style or ""), soft_wrap=True)

    def info(self, text: str) -> None:
        if self.verbosity >= 0:
            self._print(text)

    def detail(self, text: str) -> None:
        if self.verbosity >= 1:
            self._print(text, "dim")

    def step(self, text: str) -> None:
        if self.verbosity >= 0:
            self._print(f"• {text}", "cyan")

    def success(self, text: str) -> None:
        if self.verbosity >= 0:
            self._print(f"✓ {text}", "green")

    def warn(self, text: str) -> None:
        # Warnings show even with -q: they are what an operator must not miss.
        self._warned.add(text)
        self._print(f"! {text}", "yellow")

    def warn_once(self, text: str) -> None:
        """A warning, unless this run already printed it (a result's warnings at the end of a verb)."""
        if text not in self._warned:
            self.warn(text)

    def error(self, code: str, message: str, remedy: str | None = None) -> None:
        self._print(f"✗ {code}: {message}", "bold red")
        if remedy:
            self._print(f"  → {remedy}", "red")

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.verbosity < 0:
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_lines=False)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            # Cells are data, not markup: "[fe80::1]:443" must show as it is.
            table.add_row(*(Text("" if v is None else _scrub_text(str(v))) for v in row))
        self.console.print(table)

    def keyvalues(self, title: str | None, pairs: Sequence[tuple[str, Any]]) -> None:
        if self.verbosity < 0:
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in pairs:
            table.add_row(Text(key), Text("—" if value is None or value == "" else _scrub_text(str(value))))
        self.console.print(table)

    # -- progress -------------------------------------------------------------------------------------------
    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressHandle]:
        """A byte progress bar (TTY) or a few step lines (not a TTY); nothing with -q."""
        if self.verbosity < 0:
            yield ProgressHandle(None, None)
            return
        if self.interactive:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.table import Column

            # Bundle names are long: the description gives way (ellipsis) so bytes, speed and ETA stay whole.
            fixed = 64
            bar = Progress(
                TextColumn(
                    "{task.description}",
                    table_column=Column(
                        no_wrap=True, overflow="ellipsis", max_width=max(12, self.console.width - fixed)
                    ),
                ),
                BarColumn(bar_width=24),
                DownloadColumn(table_column=Column(no_wrap=True)),
                TransferSpeedColumn(table_column=Column(no_wrap=True)),
                TimeRemainingColumn(table_column=Column(no_wrap=True)),
                console=self.console,
                transient=False,
            )
            with bar:
                task = bar.add_task(description, total=total)
                yield ProgressHandle(lambda n: bar.update(task, advance=n), None)
            return
        lines = StepLines(self, description, total)
        yield ProgressHandle(lines.advance, lines)
        lines.finish()

    # -- data -----------------------------------------------------------------------------------------------
    def emit(self, result: Result) -> None:
        """Print the JSON envelope on stdout, exactly once per run."""
        if not self.json_mode or self._emitted:
            return
        self._emitted = True
        import json

        envelope = _scrub_data(json.loads(json.dumps(result.envelope(), default=str)), OWN_FIELDS)  # data, masked
        text = json.dumps(envelope, indent=2, sort_keys=False) + "\n"
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError) as exc:  # full device, closed pipe, closed or no stdout
            raise StdoutUnwritable(exc) from None


class StdoutUnwritable(Exception):
    """Standard output could not take the JSON document (``asrctl --json detect > /dev/full``, a reader that went
    away, a closed descriptor): cli.run() makes it ``ASRCTL-E116`` instead of a traceback."""

    def __init__(self, cause: BaseException) -> None:
        if isinstance(cause, AttributeError | ValueError):
            why = "standard output is closed"
        else:
            why = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(why)
        self.why = why


class StepLines:
    """Progress for logs and CI: a line at the start and one at the end with the time and throughput (none on
    failure: the error says what happened); with -v one at each quarter too."""

    def __init__(self, out: Output, description: str, total: int | None) -> None:
        self.out = out
        self.description = description
        self.total = total
        self.done = 0
        self.next_mark = 25
        self.started = time.monotonic()
        size = f" ({_human(total)})" if total else ""
        out.step(f"{description}{size}")

    def advance(self, n: int) -> None:
        self.done += n
        if not self.total:
            return
        pct = self.done * 100 // self.total
        while pct >= self.next_mark and self.next_mark < 100:
            self.out.detail(f"  {self.description}: {self.next_mark}%")
            self.next_mark += 25

    def finish(self) -> None:
        secs = max(time.monotonic() - self.started, 1e-6)
        self.out.info(
            f"  {self.description}: done, {_human(self.done)} in {secs:.1f} s ({_human(int(self.done / secs))}/s)"
        )


class ProgressHandle:
    def __init__(self, advance: Callable[[int], object] | None, lines: StepLines | None) -> None:
        self._advance = advance
        self.lines = lines

    def advance(self, n: int) -> None:
        if self._advance is not None:
            self._advance(n)


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
