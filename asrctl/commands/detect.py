"""``asrctl detect``."""

from __future__ import annotations

import click

from asrctl.app import App
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
    result = Result(app.command, data={"platform": platform_json(app), "host": app.facts.as_json()})
    plat = app.platform
    result.warnings.extend(plat.warnings)
    render.detect(app, result)
    if not plat.supported:
        raise Reported(AsrctlError("ASRCTL-E010", plat.reason or "unsupported"), result)
    return result


def platform_json(app: App) -> dict[str, object]:
    facts, plat = app.facts, app.platform
    return {
        "os_family": facts.os_family,
        "distro_id": facts.distro_id or None,
        "version": facts.version or None,
        "arch": facts.arch,
        "kernel": facts.kernel,
        "os_tag": plat.os_tag,
        "supported": plat.supported,
        "reason": plat.reason,
        "name": plat.name,
        "is_admin": facts.is_admin,
        "warnings": list(plat.warnings),
    }
