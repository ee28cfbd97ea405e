"""Registration with a configuration server or replication appliance: inputs checked before anything changes,
the connectivity check, the steps (a private passphrase file, the configurator) and their retry on transient
failures. Used by install (register after installing) and register.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from asrctl.agent.base import AgentBackend, InstalledAgent, Registration
from asrctl.app import App
from asrctl.errors import AsrctlError, Reported
from asrctl.lifecycle.request import RegistrationInput, Request
from asrctl.lifecycle.state import HostState, endpoint_key
from asrctl.output import Result
from asrctl.plan import Plan, Step
from asrctl.system import secrets


@dataclass
class PreparedRegistration:
    registration: Registration
    passphrase: secrets.Passphrase | None
    private_file: Path | None  # written during apply, removed after


def resolve_cs_type(inp: RegistrationInput) -> str:
    """The CS type from the inputs, never a silent guess: an appliance's ``--config-file`` is CSPrime, a
    ``--cs-endpoint`` or a passphrase source CSLegacy; ``--cs-type`` may say the same, and must when nothing else
    does (``--no-register``). A contradiction is a usage error (ASRCTL-E086), a missing type too (ASRCTL-E085)."""
    implied: str | None = None
    why = ""
    if inp.config_file and (inp.endpoint or inp.passphrase_file or inp.passphrase_stdin):
        raise AsrctlError(
            "ASRCTL-E086",
            "--config-file (a modernized appliance) and --cs-endpoint or a passphrase (a classic configuration "
            "server) do not go together",
        )
    if inp.config_file:
        implied, why = "CSPrime", "--config-file (an appliance's configuration: CSPrime)"
    elif inp.endpoint or inp.passphrase_file or inp.passphrase_stdin:
        implied, why = "CSLegacy", "--cs-endpoint or a passphrase (a classic configuration server: CSLegacy)"
    if inp.cs_type is not None and implied is not None and inp.cs_type != implied:
        raise AsrctlError("ASRCTL-E086", f"--cs-type {inp.cs_type} contradicts {why}")
    told = inp.cs_type or implied
    if told is None and inp.no_register:
        raise AsrctlError(
            "ASRCTL-E085",
            "--no-register needs --cs-type CSLegacy or CSPrime: Microsoft's installer is told which kind of server "
            "the agent will register with, and asrctl does not guess it",
        )
    if told is None:
        raise AsrctlError(
            "ASRCTL-E085",
            "no configuration server given: pass --cs-endpoint HOST[:PORT] with a passphrase source, --cs-type "
            "CSPrime for a modernized appliance, or --no-register --cs-type CSLegacy|CSPrime",
        )
    return told


def with_cs_type(req: Request) -> Request:
    """The request with its CS type taken from the inputs (:func:`resolve_cs_type`), in the registration inputs and
    the installer's options alike."""
    cs_type = resolve_cs_type(req.registration)
    return replace(
        req, registration=replace(req.registration, cs_type=cs_type), options=replace(req.options, cs_type=cs_type)
    )


def prepare_registration(
    app: App, inp: RegistrationInput, run_id: str, environ: Mapping[str, str]
) -> PreparedRegistration | None:
    """Validate registration inputs before anything changes. None means: do not register now. ``inp.cs_type`` is
    the resolved one (:func:`resolve_cs_type`)."""
    if inp.no_register:
        return None
    if inp.cs_type == "CSPrime":
        if not inp.config_file:
            return None  # modernized install: print the agent config input, register later
        cfg = Path(inp.config_file)
        if not cfg.exists():
            raise AsrctlError("ASRCTL-E085", f"--config-file {cfg}: no such file")
        if not cfg.is_file():  # a FIFO would hang the configurator that reads it
            raise AsrctlError("ASRCTL-E085", f"--config-file {cfg} is not a regular file")
        reg = Registration("CSPrime", config_file=cfg.resolve(), run_dir=str(app.paths.run_dir(run_id)))
        return PreparedRegistration(reg, None, None)
    passphrase = secrets.obtain(inp.passphrase_file, inp.passphrase_stdin, environ, inp.insecure_passphrase_file)
    if not inp.endpoint and passphrase is None:
        raise AsrctlError(
            "ASRCTL-E085",
            "no configuration server given: pass --cs-endpoint HOST[:PORT] with a passphrase source, "
            "or --no-register to install without registering",
        )
    if not inp.endpoint:
        raise AsrctlError("ASRCTL-E085", "a passphrase was given but no --cs-endpoint HOST[:PORT]")
    if passphrase is None:
        raise AsrctlError(
            "ASRCTL-E050",
            f"--cs-endpoint {inp.endpoint} needs a passphrase: --passphrase-file FILE, --passphrase-stdin or "
            f"{secrets.ENV_VAR}",
        )
    from asrctl.net.endpoint import parse_endpoint

    parse_endpoint(inp.endpoint)
    private = None
    if passphrase.path is None:
        private = secrets.private_path(app.paths.state_dir, run_id)
        file_for_vendor = private
    else:
        file_for_vendor = passphrase.path.resolve()
    reg = Registration(
        "CSLegacy", endpoint=inp.endpoint, passphrase_file=file_for_vendor, run_dir=str(app.paths.run_dir(run_id))
    )
    return PreparedRegistration(reg, passphrase, private)


def check_connectivity(app: App, inp: RegistrationInput, result: Result) -> None:
    """Before anything changes: can this host reach the configuration server? (exit 8 if not)."""
    if inp.skip_connectivity_check or not inp.endpoint or inp.cs_type != "CSLegacy":
        return
    from asrctl.net import checks as net_checks
    from asrctl.net.endpoint import parse_endpoint
    from asrctl.net.preflight import check_cs

    endpoint = parse_endpoint(inp.endpoint)
    checks = check_cs(endpoint, ps_port=inp.ps_port, timeout=inp.connect_timeout, fingerprint=inp.cs_fingerprint)
    result.data["connectivity"] = net_checks.to_json(checks)
    net_checks.render(app.out, checks)
    error = net_checks.error_for(checks)
    if error is not None:
        raise Reported(error, result)  # the table already named the failure


def registration_steps(
    app: App, backend: AgentBackend, prepared: PreparedRegistration, install_dir: str, plan: Plan
) -> None:
    if prepared.private_file is not None:
        target = prepared.private_file
        passphrase = prepared.passphrase
        assert passphrase is not None
        plan.cleanup.append(target.parent)
        plan.add(
            Step(
                "passphrase",
                f"Put the passphrase in a private file for the configurator ({target}, mode 0600)",
                lambda: {"file": str(secrets.write_private(passphrase, target))},
            )
        )
    if prepared.registration.run_dir and Path(prepared.registration.run_dir) not in plan.cleanup:
        plan.cleanup.append(Path(prepared.registration.run_dir))
    plan.add(backend.register_step(prepared.registration, install_dir, retry=retry_for(app)))


def retry_for(app: App) -> Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]:
    """Retry registration on transient failures (connection refused, timeout), never on a wrong passphrase."""
    from asrctl.net.checks import is_transient
    from asrctl.system import retry

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, AsrctlError) and (exc.code == "ASRCTL-E063" or is_transient(exc))

    def on_retry(attempt: int, delay: float, exc: Exception) -> None:
        app.out.warn(f"registration attempt {attempt} failed ({retry.describe(exc)}); retrying in {delay:.0f} s")

    def run(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return retry.retry(
            fn,
            attempts=4,
            base_delay=2.0,
            max_delay=60.0,
            max_total=30.0,
            jitter=0.2,  # a fleet registering at once spreads out
            is_transient=transient,
            on_retry=on_retry,
        )

    return run


def same_registration(agent: InstalledAgent, reg: Registration) -> bool:
    if not agent.registered:
        return False
    if reg.cs_type == "CSPrime":
        return (agent.cs_type or "").lower() == "csprime"
    return (agent.cs_type or "CSLegacy").lower() == "cslegacy" and endpoint_key(agent.cs_endpoint) == endpoint_key(
        reg.endpoint
    )


def registered_as(reg: Registration) -> Callable[[HostState], bool]:
    """The host has an agent registered as ``reg`` asks (what a register step is for)."""

    def reached(state: HostState) -> bool:
        return state.agent is not None and same_registration(state.agent, reg)

    return reached


def drift(agent: InstalledAgent, inp: RegistrationInput, prepared: PreparedRegistration | None) -> AsrctlError | None:
    """``install``/``upgrade`` inputs that ask for another registration than the agent has (desired state,
    ``ASRCTL-E071``), else None. Only a registered agent can drift: an unregistered one is registered as asked.
    The inputs ask for a registration when they name one (endpoint and passphrase, or a CSPrime config file) or
    the CS type alone (``--cs-type CSPrime``: the appliance's config comes later); ``--no-register`` asks none."""
    if not agent.registered or inp.no_register:
        return None
    wanted = prepared.registration if prepared is not None else None
    wanted_type = wanted.cs_type if wanted is not None else inp.cs_type
    if wanted is None and wanted_type != "CSPrime":
        return None
    if wanted is not None and same_registration(agent, wanted):
        return None
    if wanted is None and (agent.cs_type or "").lower() == "csprime":
        return None
    now = f"{agent.cs_endpoint or 'a configuration server'} ({agent.cs_type or 'CSLegacy'})"
    if wanted_type == "CSPrime":
        asked = "a replication appliance (CSPrime)"
        command = "`asrctl register --force --cs-type CSPrime --config-file FILE` with the appliance's file"
    else:
        asked = f"{wanted.endpoint if wanted else inp.endpoint} (CSLegacy)"
        command = (
            f"`asrctl register --force --cs-endpoint {wanted.endpoint if wanted else inp.endpoint}` with its passphrase"
        )
    return AsrctlError(
        "ASRCTL-E071",
        f"Mobility Service {agent.version} is registered to {now}, not to {asked} as asked; to move it, run {command}",
        registered_to=agent.cs_endpoint,
        registered_cs_type=agent.cs_type,
        asked=asked,
    )
