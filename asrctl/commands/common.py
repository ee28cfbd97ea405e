"""What every verb module shares: the app from the context, the start of a verb, reported failures."""

from __future__ import annotations

import click

from asrctl import __version__
from asrctl.app import App
from asrctl.errors import AsrctlError
from asrctl.output import Result


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
    return app


class Reported(Exception):
    """A failure whose result (with data) the verb already rendered for people: ``run()`` only emits the JSON
    envelope and exits with the error's code."""

    def __init__(self, error: AsrctlError, result: Result) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result
        result.ok = False
        result.error = error.as_json()
