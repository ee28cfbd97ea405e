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
@setting(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also run this bundle's own prerequisite checker (on a private unpacked copy, removed afterwards).",
)
@setting("--prereq", is_flag=True, help="Also run the prerequisite checker of the bundle install would choose.")
@click.pass_context
def doctor(
    ctx: click.Context,
    cs_endpoint: str | None,
    ps_port: int,
    connect_timeout: float,
    cs_fingerprint: str | None,
    bundle_path: str | None,
    prereq: bool,
) -> Result:
    """Every preflight check as a table, without changing anything."""
    from asrctl import support

    app = begin(ctx)
    return support.doctor(
        app, cs_endpoint, ps_port, connect_timeout, cs_fingerprint, prereq=prereq or bundle_path is not None,
        bundle=bundle_path,
    )  # fmt: skip


@click.group()
def logs() -> None:
    """Support logs."""


class Size(click.ParamType):
    """A size in bytes: ``4096``, ``512K``, ``16M``, ``1G`` (powers of 1024)."""

    name = "size"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        import re

        found = re.fullmatch(r"([0-9]+)([KMG]?)(?:i?B)?", str(value).strip(), re.IGNORECASE)
        if not found or int(found[1]) == 0:
            self.fail(f"{value!r} is not a positive size such as 4096, 512K, 16M or 1G", param, ctx)
        return int(found[1]) * self._UNITS[found[2].upper()]


@logs.command(
    "collect",
    epilog=examples(
        "asrctl logs collect",
        "asrctl logs collect -o /tmp/asr-support.tar.gz --json",
        "asrctl logs collect --max-file-size 64M --max-size 1G     # more of each log",
    ),
)
@click.option(
    "-o", "--output", metavar="FILE", help="Archive to write (default: <root>/var/log/asrctl-support-*.tar.gz)."
)
@click.option(
    "--max-file-size",
    type=Size(),
    default="16M",
    show_default=True,
    help="Keep at most this much of each file (its end: the newest lines).",
)
@click.option(
    "--max-size", type=Size(), default="128M", show_default=True, help="Cap on the archive's content (uncompressed)."
)
@setting(
    "--cs-endpoint",
    metavar="HOST[:PORT]",
    help="Have the doctor report check this configuration server (default: the one the agent is registered with).",
)
@click.pass_context
def logs_collect(
    ctx: click.Context, output: str | None, max_file_size: int, max_size: int, cs_endpoint: str | None
) -> Result:
    """A redacted support archive: agent, installer and asrctl logs, detect/status/doctor reports, host facts.

    Every file is read confined to --root (links out of its directory are skipped), only its last
    --max-file-size bytes; secrets are masked; manifest.json in the archive lists what was included, cut,
    masked and skipped.
    """
    from asrctl import collect

    app = begin(ctx, changes_machine=True)
    return collect.collect(app, output, max_file_size, max_size, cs_endpoint)
