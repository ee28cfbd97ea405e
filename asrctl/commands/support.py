"""``asrctl doctor`` and ``asrctl logs collect``."""

from __future__ import annotations

import click

from asrctl.commands.common import begin
from asrctl.output import Result


@click.command()
@click.option("--cs-endpoint", metavar="HOST[:PORT]", help="Also check the network path to this configuration server.")
@click.option("--ps-port", type=int, default=9443, show_default=True, help="Process server data port to check.")
@click.option("--connect-timeout", type=float, default=5.0, show_default=True, help="Seconds per network check.")
@click.option("--cs-fingerprint", metavar="SHA256", help="Expected SHA-256 fingerprint of the server certificate.")
@click.pass_context
def doctor(
    ctx: click.Context, cs_endpoint: str | None, ps_port: int, connect_timeout: float, cs_fingerprint: str | None
) -> Result:
    """Every preflight check as a table, without changing anything."""
    from asrctl import support

    app = begin(ctx)
    return support.doctor(app, cs_endpoint, ps_port, connect_timeout, cs_fingerprint)


@click.group()
def logs() -> None:
    """Support logs."""


@logs.command("collect")
@click.option(
    "-o", "--output", metavar="FILE", help="Archive to write (default: <root>/var/log/asrctl-support-*.tar.gz)."
)
@click.pass_context
def logs_collect(ctx: click.Context, output: str | None) -> Result:
    """A redacted support archive of installer, agent and asrctl logs."""
    from asrctl import support

    app = begin(ctx, changes_machine=True)
    return support.collect(app, output)
