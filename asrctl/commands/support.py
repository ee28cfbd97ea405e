"""``asrctl doctor`` and ``asrctl logs collect``."""

from __future__ import annotations

import click

from asrctl.commands.common import begin, examples
from asrctl.commands.options import connect_timeout_option, cs_fingerprint_option, ps_port_option
from asrctl.commands.settings import setting
from asrctl.output import Result


@click.command(
    epilog=examples(
        "asrctl doctor",
        "asrctl doctor --cs-endpoint 10.0.0.5 --cs-fingerprint 93e83659…b333",
        "asrctl --config /etc/asrctl.toml doctor --json      # checks the endpoint the file names",
    )
)
@setting("--cs-endpoint", metavar="HOST[:PORT]", help="Also check the network path to this configuration server.")
@ps_port_option
@connect_timeout_option
@cs_fingerprint_option
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


@logs.command(
    "collect",
    epilog=examples(
        "asrctl logs collect",
        "asrctl logs collect -o /tmp/asr-support.tar.gz --json",
    ),
)
@click.option(
    "-o", "--output", metavar="FILE", help="Archive to write (default: <root>/var/log/asrctl-support-*.tar.gz)."
)
@click.pass_context
def logs_collect(ctx: click.Context, output: str | None) -> Result:
    """A redacted support archive of installer, agent and asrctl logs."""
    from asrctl import support

    app = begin(ctx, changes_machine=True)
    return support.collect(app, output)
