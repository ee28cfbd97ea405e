"""The command line: parse → call → render. No OS logic lives here.

``run()`` is the one place where exceptions become exit codes and JSON errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

from asrctl import __version__
from asrctl.commands.settings import PRECEDENCE, add_global_options, global_params, merged
from asrctl.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, AsrctlError, Reported, Spec, attached, msi_exit
from asrctl.output import Output, Result

if TYPE_CHECKING:  # imported where used: the App brings pathlib, and `--version` needs neither
    from asrctl.app import App

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_current: App | None = None


# Verbs live in asrctl/commands/, one module per verb group, imported only when that verb runs (or for --help):
# `asrctl --version` and a verb pay for nothing else.
COMMANDS = {
    "detect": "asrctl.commands.detect:detect",
    "bundles": "asrctl.commands.bundles:bundles",
    "install": "asrctl.commands.lifecycle:install",
    "upgrade": "asrctl.commands.lifecycle:upgrade",
    "register": "asrctl.commands.lifecycle:register_cmd",
    "uninstall": "asrctl.commands.lifecycle:uninstall",
    "status": "asrctl.commands.lifecycle:status",
    "doctor": "asrctl.commands.support:doctor",
    "vm-agent": "asrctl.commands.vmagent:vm_agent",
    "logs": "asrctl.commands.support:logs",
    "kernel": "asrctl.commands.kernel:kernel",
    "drivers": "asrctl.commands.drivers:drivers",
    "completion": "asrctl.commands.completion:completion",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            import importlib

            module, _, attr = COMMANDS[cmd_name].partition(":")
            # The global options are accepted after every verb and subcommand too (`asrctl detect --json`).
            self.add_command(add_global_options(getattr(importlib.import_module(module), attr)), cmd_name)
        return super().get_command(ctx, cmd_name)


class VersionOption(click.Option):
    """``--version``: ``asrctl <version>``, as fast as ``import click``; ``--version -v`` adds the build facts
    (asrctl/buildinfo.py, imported only then). An eager option runs before the others are processed, in command
    line order, so ``-v`` (and ``--json``) are read from the parsed options here, wherever they stand."""

    def handle_parse_result(
        self, ctx: click.Context, opts: Mapping[str, object], args: list[str]
    ) -> tuple[object, list[str]]:
        if opts.get(self.name or "version") and not ctx.resilient_parsing:
            verbose, as_json = opts.get("verbose"), opts.get("json_mode")
            if not verbose:
                click.echo(f"asrctl {__version__}")
                ctx.exit()
            from asrctl.buildinfo import collect

            info = collect()
            if as_json:
                import json

                click.echo(json.dumps(info.as_json(), indent=2, sort_keys=True))
            else:
                click.echo("\n".join(info.lines()))
            ctx.exit()
        return super().handle_parse_result(ctx, opts, args)


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT,
    params=global_params(),
    epilog=f"{PRECEDENCE}\n\nThe command-line contract, every option, variable and config key: docs/CLI.md.",
)
@click.option(
    "--version",
    cls=VersionOption,
    is_flag=True,
    expose_value=False,
    is_eager=True,
    help="Show the version and exit; with -v also commit, build date, Python and PyInstaller versions.",
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Install, upgrade, register and remove the Azure Site Recovery Mobility Service agent.

    \b
    asrctl detect                      what this host is, which bundle it takes
    asrctl install --cs-endpoint 10.0.0.5 --passphrase-file /root/cs.passphrase
    asrctl status --json               one JSON document on stdout
    asrctl VERB --help                 a verb's options and examples
    """
    global _current
    from asrctl.app import App

    values = merged(ctx)
    out = Output(json_mode=values.json_mode, verbosity=values.verbosity, color=values.color)
    app = App(root_arg=values.root, bundle_dir_args=values.bundle_dirs, out=out, exit_codes=values.exit_codes)
    ctx.obj = app
    _current = app


# --- the one place where outcomes become exit codes ---------------------------------------------------------


def _wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv or os.environ.get("ASRCTL_JSON", "").lower() in ("1", "true", "yes", "on")


def _exit_codes_from(argv: Sequence[str]) -> str:
    """The --exit-codes convention asked for, read from argv/env: click may stop (an unknown option or command)
    before the group callback has built the App that carries it."""
    mode = os.environ.get("ASRCTL_EXIT_CODES", "asrctl")
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--exit-codes" and i + 1 < len(argv):
            mode = argv[i + 1]
        elif arg.startswith("--exit-codes="):
            mode = arg.split("=", 1)[1]
    return mode


_requested_exit_codes = "asrctl"


def _begun(app: App | None) -> bool:
    return app is not None and app.command != "asrctl"


def _output(fallback: Output) -> Output:
    """Where a failure is reported. Until a verb has begun, click may not have processed every option it parsed
    (they may follow the verb, and an eager --config fails first): what argv and the environment ask for is then
    the best knowledge of --json."""
    if _current is None:
        return fallback
    if not _begun(_current):
        _current.out.json_mode = _current.out.json_mode or fallback.json_mode
    return _current.out


def _finish(app: App | None, exit_code: int, reboot: bool, spec: object = None) -> int:
    # Until a verb has begun, argv and the environment are the best knowledge of --exit-codes too (see _output).
    mode = app.exit_codes if app is not None and _begun(app) else _requested_exit_codes
    if mode == "msi":
        return msi_exit(exit_code, spec if isinstance(spec, Spec) else None, reboot)
    return exit_code


def run(argv: Sequence[str] | None = None) -> int:
    global _current, _requested_exit_codes
    _current = None
    args = list(sys.argv[1:] if argv is None else argv)
    from asrctl.system.signals import terminate_like_ctrl_c

    _requested_exit_codes = _exit_codes_from(args)
    fallback = Output(json_mode=_wants_json(args))
    try:
        terminate_like_ctrl_c()  # raises a signal that arrived while asrctl was starting: handled below
        rv = cli.main(args=args, prog_name="asrctl", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.ClickException as exc:  # usage errors: click's message, and the envelope with --json
        out = _output(fallback)
        exc.show(file=sys.stderr)
        err = AsrctlError("ASRCTL-E002", exc.format_message())
        _emit(out, Result(_current.command if _current else "asrctl", ok=False, error=err.as_json()))
        return _finish(_current, EXIT_USAGE, False, err.spec)
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        from asrctl.system.signals import Terminated

        # click turns a KeyboardInterrupt inside a command into Abort, keeping it as the cause.
        if isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated):
            stopped = AsrctlError("ASRCTL-E005", "terminated (SIGTERM)")
        else:
            stopped = AsrctlError("ASRCTL-E003", "interrupted")
        result, note = attached(exc)
        if note:
            stopped.message += f"; {note}"
        return _fail(stopped, result or _empty(), fallback, stopped.exit_code)
    except Reported as rep:  # a failure the verb already showed: only the envelope and the exit code are left
        out = _output(fallback)
        _say_warnings(out, rep.result)
        _emit(out, rep.result)
        return _finish(_current, rep.error.exit_code, False, rep.error.spec)
    except AsrctlError as err:
        result, note = attached(err)
        if note and note not in err.message:
            err.message += f"; {note}"
        return _fail(err, result or _empty(), fallback, err.exit_code)
    except Exception as exc:  # a bug: say so, say where the log is
        from asrctl.system.log import LOGGER

        LOGGER.exception("internal error")
        where = str(_current.log_file) if _current and _current.log_file else "stderr (run with -v)"
        bug = AsrctlError("ASRCTL-E001", f"internal error: {type(exc).__name__}: {exc} (details: {where})")
        if _current and _current.out.verbosity > 0:
            import traceback

            traceback.print_exc(file=sys.stderr)
        return _fail(bug, Result(_current.command if _current else "asrctl"), fallback, EXIT_INTERNAL)
    if not isinstance(rv, Result):
        return EXIT_OK if rv is None else int(rv)
    app = _current
    assert app is not None
    from asrctl.output import StdoutUnwritable
    from asrctl.system.signals import exit_status, shielded

    try:
        _say_warnings(app.out, rv)
        # The document is written whole: a signal that arrives meanwhile waits until it is, then the exit status
        # says it came (130/143), as it does at any other moment.
        with shielded(deliver=True):
            app.out.emit(rv)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM around the JSON: still the interrupted exit
        return _finish(app, exit_status(exc), False, None)
    except StdoutUnwritable as exc:
        return _stdout_failed(app.out, exc)
    code = EXIT_OK if rv.ok else EXIT_INTERNAL
    return _finish(app, code, rv.reboot_required)


def _empty() -> Result:
    return Result(_current.command if _current else "asrctl")


def _say_warnings(out: Output, result: Result) -> None:
    """Every verb's warnings reach people on stderr, not only the JSON: those a step already printed are not
    repeated (``Output.warn`` remembers them)."""
    for warning in result.warnings:
        out.warn_once(warning)


def _fail(err: AsrctlError, result: Result, fallback: Output, code: int) -> int:
    from asrctl.system.redact import redact

    out = _output(fallback)
    _say_warnings(out, result)
    err.message = redact(err.message)
    from asrctl.system.log import LOGGER

    LOGGER.error("%s: %s", err.code, err.message)
    out.error(err.code, err.message, err.remedy)
    result.ok = False
    result.error = err.as_json()
    _emit(out, result)
    return _finish(_current, code, False, err.spec)


def _emit(out: Output, result: Result) -> None:
    """The JSON of a failure: written whole (signals wait; the run is already failing), and a stdout that cannot
    take it is said on stderr — the failure's own exit code stands."""
    from asrctl.output import StdoutUnwritable
    from asrctl.system.signals import shielded

    try:
        with shielded(deliver=False):
            out.emit(result)
    except StdoutUnwritable as exc:
        _stdout_failed(out, exc)


def _stdout_failed(out: Output, exc: Exception) -> int:
    """``ASRCTL-E116``: said on stderr, logged, and stdout silenced (so Python's own flush at exit adds no
    traceback); the exit code is the catalogue's, whatever happened to the document."""
    from asrctl.system.log import LOGGER

    err = AsrctlError("ASRCTL-E116", f"the JSON result could not be written to standard output: {exc}")
    LOGGER.error("%s: %s", err.code, err.message)
    _silence_stdout()
    try:
        out.error(err.code, err.message, err.remedy)
    except (OSError, ValueError):
        pass
    return _finish(_current, err.exit_code, False, err.spec)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    sys.stdout = open(os.devnull, "w", encoding="utf-8")
