"""``asrctl drivers install PACKAGE``: Microsoft's driver hotfix, as a plan (docs/KERNELS.md)."""

from __future__ import annotations

from pathlib import Path

import click

from asrctl.commands.common import begin, confirm_on_terminal, examples
from asrctl.commands.options import digest_options, dry_run_option, lists_option, yes_option
from asrctl.errors import AsrctlError
from asrctl.output import Result


@click.group(
    epilog=examples(
        "asrctl drivers install /srv/asr/DriversPackage_UBUNTU22_9.66.7643.1.tar.gz --dry-run",
        "asrctl drivers install DriversPackage_UBUNTU22.tar.gz --build 9.66.7643.1",
        "asrctl drivers install DriversPackage_RHEL8_9.66.tar.gz --kernel 4.18.0-553.22.1.el8_10.x86_64",
        "asrctl drivers install /root/asr-drivers/DriversPackage_DEBIAN12_9.66 --lists /srv/asr/kernels --json",
    )
)
def drivers() -> None:
    """Microsoft's involflt driver packages (DriversPackage_<KEY>) for kernels newer than the agent."""


@drivers.command("install")
@click.argument("package", type=click.Path(path_type=Path))
@click.option(
    "--kernel",
    "kernels",
    multiple=True,
    metavar="VERSION",
    help="Also prepare this installed kernel for its next boot (copy, depmod, initrd; repeatable).",
)
@click.option(
    "--build",
    metavar="VERSION",
    help="The agent build the package is for (the SupportedKernels build it came with, or the release, 9.66), when "
    "its name does not say.",
)
@lists_option
@digest_options
@dry_run_option
@yes_option
@click.pass_context
def drivers_install(
    ctx: click.Context,
    package: Path,
    kernels: tuple[str, ...],
    build: str | None,
    lists_dir: str | None,
    sha256: str | None,
    require_digest: bool,
    dry_run: bool,
    yes: bool,
) -> Result:
    """Install a driver package (DriversPackage_<KEY>.tar.gz, or its unpacked directory) for the running kernel.

    Verified (SHA256SUMS beside it or --sha256) and unpacked privately; refused when it is for a newer agent
    release than the installed one. The driver file is picked by Microsoft's rules, copied into
    /lib/modules/<kernel>/kernel/drivers/char, indexed (depmod), loaded (modprobe) and checked in /proc/modules,
    /dev/involflt made when missing, the initrd regenerated, the agent stopped and started around it. Every step
    is undone on failure. A known-faulty loaded driver (9.66.7691.1-9.66.7749.1) is replaced only after a yes
    (or -Y): that stops filtering on every protected disk, and each one resyncs.
    """
    from asrctl.agent import factory
    from asrctl.kernels import hotfix
    from asrctl.lifecycle.preconditions import require_privileges, require_supported

    app = begin(ctx, changes_machine=not dry_run)
    require_privileges(app)
    tag = require_supported(app)
    if app.facts.os_family != "linux":
        raise AsrctlError("ASRCTL-E010", "driver packages are for Linux hosts")
    req = hotfix.Request(
        package=package,
        kernels=kernels,
        build=build,
        lists=lists_dir,
        sha256=sha256,
        require_digest=require_digest,
        dry_run=dry_run,
        yes=yes,
    )
    from asrctl.lifecycle.recovery import mend

    backend = factory.backend_for(app)
    return hotfix.install(
        app,
        backend,
        tag,
        req,
        confirm_on_terminal("drivers install"),
        mend=lambda session: mend(app, backend, session, "drivers install"),
    )
