"""What every verb module shares: the app from the context and the start of a verb."""

from __future__ import annotations

import click

from asrctl import __version__
from asrctl.app import App


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
