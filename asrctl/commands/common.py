"""What every verb module shares: the app from the context, the start of a verb, asking on the terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from asrctl import __version__
from asrctl.app import App
from asrctl.errors import AsrctlError


def examples(*lines: str) -> str:
    """A verb's --help epilog: example command lines, kept as written (click's \\b: no rewrapping)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def get_app(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    assert app is not None
    return app


def begin(ctx: click.Context, changes_machine: bool = False) -> App:
    """Name the command, validate --root, open the log. Every verb starts here."""
    app = get_app(ctx)
    app.command = " ".join(ctx.command_path.split()[1:]) or "asrctl"
    app.start_log(changes_machine)
    from asrctl.system.log import LOGGER

    LOGGER.info("asrctl %s: %s (root %s)", __version__, app.command, app.paths.root)
    from asrctl.commands.settings import config_file

    config = config_file(ctx)
    if config:
        LOGGER.info("options from %s where the command line and the environment give none", config)
    return app


def confirm_on_terminal(verb: str) -> Callable[[str], bool]:
    """How ``verb`` asks before it changes the machine: on a terminal; without one, a usage error instead of
    hanging (CLI contract: exit 2, ``ASRCTL-E004``, "add -Y")."""

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            raise AsrctlError("ASRCTL-E004", f"{verb} asks for confirmation, but standard input is not a terminal")
        return click.confirm(question, default=False, err=True)

    return confirm
