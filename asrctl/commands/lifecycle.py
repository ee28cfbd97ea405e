"""``asrctl install | upgrade | register | uninstall | status``: parse → lifecycle → render."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from asrctl.commands.common import begin, confirm_on_terminal, examples
from asrctl.commands.options import (
    Seconds,
    connect_timeout_option,
    cs_fingerprint_option,
    digest_options,
    dry_run_option,
    lists_option,
    ps_port_option,
    yes_option,
)
from asrctl.commands.settings import setting
from asrctl.output import Result

if TYPE_CHECKING:
    from asrctl.lifecycle.request import BundleChoice, RegistrationInput

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stack(*decorators: Decorator) -> Decorator:
    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn

    return apply


no_vm_agent_option = setting(
    "--no-vm-agent", is_flag=True, help="Leave the Azure VM agent alone (install/upgrade do not install it)."
)
# Not in the config file: it weakens a check, so it is asked for per run (and it is loud: stderr, JSON, the log).
skip_kernel_check_option = setting(
    "--skip-kernel-check",
    is_flag=True,
    config=False,
    help="Go on when the running or next-boot kernel is not in the bundle's supported_kernels (a loud warning; "
    "Microsoft's own checker still runs).",
)

bundle_options = _stack(
    setting(
        "--bundle",
        "bundle_path",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Use this bundle instead of choosing one.",
    ),
    digest_options,
    setting(
        "--timeout", type=Seconds(7 * 86400), default=3600.0, show_default=True, help="Seconds the installer may take."
    ),
)

registration_options = _stack(
    setting("--cs-endpoint", metavar="HOST[:PORT]", help="Classic configuration server (port 443 by default)."),
    setting(
        "--cs-type",
        type=click.Choice(["CSLegacy", "CSPrime"]),
        help="Classic configuration server or modernized replication appliance; always passed to the vendor tools. "
        "Taken from the inputs (--config-file: CSPrime, --cs-endpoint: CSLegacy); --no-register needs it.",
    ),
    setting(
        "--passphrase-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="File holding the configuration server passphrase (0600).",
    ),
    setting(
        "--passphrase-stdin", is_flag=True, config=False, help="Read the passphrase from standard input (no echo)."
    ),
    setting("--insecure-passphrase-file", is_flag=True, config=False, help="Accept a passphrase file others can read."),
    setting(
        "--config-file",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="Modernized: the appliance-generated configuration file (not --config).",
    ),
    setting("--skip-connectivity-check", is_flag=True, help="Do not check the configuration server first."),
    cs_fingerprint_option,
    connect_timeout_option,
    ps_port_option,
)


def _registration(kw: dict[str, Any]) -> RegistrationInput:
    from asrctl.lifecycle.request import RegistrationInput

    return RegistrationInput(
        cs_type=kw["cs_type"],
        endpoint=kw["cs_endpoint"],
        passphrase_file=kw["passphrase_file"],
        passphrase_stdin=kw["passphrase_stdin"],
        insecure_passphrase_file=kw["insecure_passphrase_file"],
        config_file=kw["config_file"],
        no_register=kw.get("no_register", False),
        force=kw.get("force", False),
        skip_connectivity_check=kw["skip_connectivity_check"],
        cs_fingerprint=kw["cs_fingerprint"],
        connect_timeout=kw["connect_timeout"],
        ps_port=kw["ps_port"],
    )


def _bundle(kw: dict[str, Any]) -> BundleChoice:
    from asrctl.lifecycle.request import BundleChoice

    return BundleChoice(path=kw["bundle_path"], sha256=kw["sha256"], require_digest=kw["require_digest"])


@click.command(
    epilog=examples(
        "asrctl install --cs-endpoint 10.0.0.5 --passphrase-file /root/cs.passphrase",
        "asrctl install --cs-endpoint cs01.corp.example --passphrase-stdin < /run/secrets/cs-passphrase",
        "asrctl install --bundle-dir /mnt/asr --require-digest --dry-run --json",
        "asrctl install --cs-type CSPrime       # prints the agent config input for the appliance",
        "asrctl --config /etc/asrctl.toml install --json",
    )
)
@bundle_options
@registration_options
@setting("--no-register", is_flag=True, help="Install only; register later with `asrctl register`.")
@setting(
    "--role",
    type=click.Choice(["MS", "MT"]),
    default="MS",
    show_default=True,
    help="Mobility Service or master target.",
)
@setting(
    "--vm-platform",
    type=click.Choice(["VmWare", "Azure"]),
    default="VmWare",
    show_default=True,
    help="The machine's platform, passed to the installer.",
)
@setting(
    "--install-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Install location (default /usr/local/ASR on Linux).",
)
@no_vm_agent_option
@skip_kernel_check_option
@lists_option
@dry_run_option
@yes_option
@click.pass_context
def install(ctx: click.Context, dry_run: bool, yes: bool, **kw: Any) -> Result:
    """Preflight → choose bundle → verify → unpack → vendor installer → register → post-checks."""
    from asrctl.agent.base import InstallOptions
    from asrctl.lifecycle import install as verb
    from asrctl.lifecycle.request import Request

    app = begin(ctx, changes_machine=not dry_run)
    req = Request(
        dry_run=dry_run,
        yes=yes,
        bundle=_bundle(kw),
        registration=_registration(kw),
        options=InstallOptions(
            role=kw["role"],
            vm_platform=kw["vm_platform"],
            install_dir=kw["install_dir"],
            timeout=kw["timeout"],  # the CS type: the lifecycle takes it from the registration inputs
        ),
        vm_agent=not kw["no_vm_agent"],
        skip_kernel_check=kw["skip_kernel_check"],
        kernel_lists=kw["lists_dir"],
    )
    return verb.install(app, req, os.environ)


@click.command(
    epilog=examples(
        "asrctl upgrade --bundle-dir /mnt/asr --dry-run",
        "asrctl upgrade --bundle /mnt/asr/Microsoft-ASR_UA_9.66.7567.1_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz",
        "asrctl upgrade --json --exit-codes msi      # Windows Installer exit codes, for SCCM/Intune",
    )
)
@bundle_options
@registration_options
@setting(
    "--allow-downgrade",
    is_flag=True,
    config=False,
    help="Go back to an older bundle (uninstall + install; needs the installed version's bundle, and the "
    "registration options when it is registered, so a failure can be undone).",
)
@no_vm_agent_option
@skip_kernel_check_option
@lists_option
@dry_run_option
@yes_option
@click.pass_context
def upgrade(ctx: click.Context, dry_run: bool, yes: bool, allow_downgrade: bool, **kw: Any) -> Result:
    """Upgrade when the chosen bundle is newer than the installed agent; the registration is kept.

    Registration options are optional: given, they say which registration the agent must have (one registered
    elsewhere is refused, an unregistered one is registered after the upgrade)."""
    from asrctl.agent.base import InstallOptions
    from asrctl.lifecycle import upgrade as verb
    from asrctl.lifecycle.request import Request

    app = begin(ctx, changes_machine=not dry_run)
    registration = _registration(kw)
    explicit_type = ctx.get_parameter_source("cs_type") not in (None, click.core.ParameterSource.DEFAULT)
    given = [kw["cs_endpoint"], kw["passphrase_file"], kw["passphrase_stdin"], kw["config_file"], explicit_type]
    registration.no_register = not any(given)  # nothing asked: keep the agent's registration as it is
    req = Request(
        dry_run=dry_run,
        yes=yes,
        bundle=_bundle(kw),
        registration=registration,
        allow_downgrade=allow_downgrade,
        options=InstallOptions(timeout=kw["timeout"]),
        vm_agent=not kw["no_vm_agent"],
        skip_kernel_check=kw["skip_kernel_check"],
        kernel_lists=kw["lists_dir"],
    )
    return verb.upgrade(app, req, os.environ)


@click.command(
    "register",
    epilog=examples(
        "asrctl register --cs-endpoint 10.0.0.5 --passphrase-file /root/cs.passphrase",
        "asrctl register --cs-endpoint 10.0.0.7 --passphrase-file /root/cs.passphrase --force   # move it",
        "asrctl register --cs-type CSPrime --config-file /root/MobilityAgentConfig.json",
    ),
)
@registration_options
@setting("--force", is_flag=True, config=False, help="Move an agent registered elsewhere (or on a cloned host).")
@dry_run_option
@click.pass_context
def register_cmd(ctx: click.Context, dry_run: bool, **kw: Any) -> Result:
    """(Re)register the installed agent with a configuration server or replication appliance."""
    from asrctl.lifecycle import register as verb
    from asrctl.lifecycle.request import Request

    app = begin(ctx, changes_machine=not dry_run)
    req = Request(dry_run=dry_run, registration=_registration(kw))
    return verb.register(app, req, os.environ)


@click.command(
    epilog=examples(
        "asrctl uninstall                # shows what it removes, then asks",
        "asrctl uninstall -Y --json      # unattended; nothing installed: exit 0, changed false",
        "asrctl uninstall --dry-run",
    )
)
@yes_option
@dry_run_option
@click.pass_context
def uninstall(ctx: click.Context, yes: bool, dry_run: bool) -> Result:
    """Remove the agent (uninstall.sh -Y on Linux, MsiExec on Windows); asks first unless -Y."""
    from asrctl.lifecycle import uninstall as verb
    from asrctl.lifecycle.request import Request

    app = begin(ctx, changes_machine=not dry_run)
    return verb.uninstall(app, Request(dry_run=dry_run, yes=yes), confirm_on_terminal("uninstall"))


@click.command(
    epilog=examples(
        "asrctl status",
        "asrctl status --json | jq -r .data.agent.version",
        "asrctl status --check     # exit 0 ok, 9 degraded, 10 broken: for monitoring and Ansible",
    )
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit by health, like `systemctl is-active`: 0 ok, 9 degraded, 10 broken (for monitoring and Ansible).",
)
@click.pass_context
def status(ctx: click.Context, check: bool) -> Result:
    """Installed?, version, install dir, registration, services, health, newer bundle available?"""
    from asrctl import render
    from asrctl.errors import Reported
    from asrctl.lifecycle import status as verb

    app = begin(ctx)
    result = verb.status(app)
    render.status(app, result)
    error = verb.check_error(result.data["health"]) if check else None
    if error is not None:
        app.out.error(error.code, error.message, error.remedy)
        raise Reported(error, result)
    return result
