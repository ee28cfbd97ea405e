"""Options more than one verb takes: the digest policy, the network check, --dry-run and --yes.

@bundles.command()
@digest_options
def extract(..., sha256: str | None, require_digest: bool) -> Result:
    policy = digest_policy(sha256, require_digest)

Each is a :func:`~asrctl.commands.settings.setting`: one environment variable and one config key wherever it
appears (``require_digest = true`` in a --config file holds for install, upgrade and every ``bundles`` verb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from asrctl.commands.settings import setting

if TYPE_CHECKING:
    from asrctl.bundles.digest import DigestPolicy

F = TypeVar("F", bound=Callable[..., Any])


class Seconds(click.types.FloatParamType):
    """A duration in seconds: a finite number above 0 and at most ``most``. ``--timeout -1`` used to reach the
    runner (which stopped the installer at once) and ``--timeout nan`` failed with "internal error"; 0 would mean
    "no time at all". TOML's ``nan``/``inf`` in a --config file are refused the same way (configfile.py converts
    through this type)."""

    name = "seconds"

    def __init__(self, most: float) -> None:
        self.most = most

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        number = float(super().convert(value, param, ctx))
        if not math.isfinite(number) or number <= 0 or number > self.most:
            self.fail(f"{value!r} is not a number of seconds above 0 and at most {self.most:g}", param, ctx)
        return number


def _check_sha256(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from asrctl.bundles.digest import normalize_hex
    from asrctl.errors import AsrctlError

    try:
        return normalize_hex(value)
    except AsrctlError:
        raise click.BadParameter(f"{value!r} is not a SHA-256 digest (64 hex digits)") from None


# Not in the config file: a digest belongs to one bundle (and `bundles verify --all` refuses one).
sha256_option = setting(
    "--sha256",
    "sha256",
    metavar="HEX",
    config=False,
    callback=_check_sha256,
    help="The bundle's expected SHA-256 (64 hex digits); used instead of SHA256SUMS beside the bundle.",
)

require_digest_option = setting(
    "--require-digest",
    "require_digest",
    is_flag=True,
    help="Refuse a bundle that has no digest (no --sha256 and no SHA256SUMS line) instead of warning. For fleets.",
)


def digest_options(func: F) -> F:
    """Both options, in the order --help shows them."""
    return sha256_option(require_digest_option(func))


def digest_policy(sha256: str | None, require_digest: bool) -> DigestPolicy:
    """The :class:`~asrctl.bundles.digest.DigestPolicy` for the options given."""
    from asrctl.bundles.digest import DigestPolicy

    return DigestPolicy(sha256=sha256, require=require_digest)


dry_run_option = setting(
    "--dry-run",
    is_flag=True,
    config=False,
    help="Print the plan (exact commands) and change nothing; the JSON says would_change.",
)
yes_option = setting("-Y", "--yes", is_flag=True, config=False, help="Do not ask; answer yes.")

# The network check before registration, and doctor's.
cs_fingerprint_option = setting(
    "--cs-fingerprint", metavar="SHA256", help="Pin the configuration server's certificate (its SHA-256)."
)
connect_timeout_option = setting(
    "--connect-timeout", type=Seconds(600), default=5.0, show_default=True, help="Seconds per network check."
)
ps_port_option = setting(
    "--ps-port",
    type=click.IntRange(1, 65535),
    default=9443,
    show_default=True,
    help="Process server data port to check.",
)


# A copy of Microsoft's SupportedKernels tree (docs/KERNELS.md): kernel check, drivers install, install, upgrade.
lists_option = setting(
    "--lists",
    "lists_dir",
    metavar="DIR",
    help="A copy of Microsoft's SupportedKernels tree (MobilityAgent/<Scenario>/SupportedKernels/<build>/"
    "<TAG>_supported_kernels.txt, or one scenario of it): which agent builds support each kernel. Default: the "
    "tree `kernel lists fetch` put in <root>/var/lib/asrctl/supported-kernels, if any.",
)
