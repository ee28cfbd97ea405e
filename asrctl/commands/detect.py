"""``asrctl detect``."""

from __future__ import annotations

import click

from asrctl.commands.common import begin
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Result


@click.command()
@click.pass_context
def detect(ctx: click.Context) -> Result:
    """Show OS, distro, version, arch, kernel and the bundle OS tag this host uses (or why it is unsupported).

    Exits 3 when the host is unsupported; the JSON still carries everything that was detected.
    """
    from asrctl import render

    app = begin(ctx)
    result = Result(app.command, data={"platform": app.platform_json(), "host": app.facts.as_json()})
    plat = app.platform
    result.warnings.extend(plat.warnings)
    render.detect(app, result)
    if not plat.supported:
        raise Reported(AsrctlError("ASRCTL-E010", plat.reason or "unsupported"), result)
    return result
