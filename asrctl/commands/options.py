"""Click options shared by the verbs that use a bundle: ``--sha256`` and ``--require-digest``.

@bundles.command()
@digest_options
def extract(..., sha256: str | None, require_digest: bool) -> Result:
    policy = digest_policy(sha256, require_digest)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from asrctl.bundles.digest import DigestPolicy

F = TypeVar("F", bound=Callable[..., Any])


def _check_sha256(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from asrctl.bundles.digest import normalize_hex
    from asrctl.errors import AsrctlError

    try:
        return normalize_hex(value)
    except AsrctlError:
        raise click.BadParameter(f"{value!r} is not a SHA-256 digest (64 hex digits)") from None


sha256_option = click.option(
    "--sha256",
    "sha256",
    metavar="HEX",
    callback=_check_sha256,
    help="The bundle's expected SHA-256 (64 hex digits); used instead of SHA256SUMS beside the bundle.",
)

require_digest_option = click.option(
    "--require-digest",
    "require_digest",
    is_flag=True,
    envvar="ASRCTL_REQUIRE_DIGEST",
    show_envvar=True,
    help="Refuse a bundle that has no digest (no --sha256 and no SHA256SUMS line) instead of warning. For fleets.",
)


def digest_options(func: F) -> F:
    """Both options, in the order --help shows them."""
    return sha256_option(require_digest_option(func))


def digest_policy(sha256: str | None, require_digest: bool) -> DigestPolicy:
    """The :class:`~asrctl.bundles.digest.DigestPolicy` for the options given."""
    from asrctl.bundles.digest import DigestPolicy

    return DigestPolicy(sha256=sha256, require=require_digest)
