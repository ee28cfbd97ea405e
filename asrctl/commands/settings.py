"""Options where people type them: before or after the verb, in ``ASRCTL_*`` variables, in a ``--config`` file.

An option declared with :func:`setting` gets its environment variable (``--cs-endpoint`` → ``ASRCTL_CS_ENDPOINT``)
and its config-file key (``cs_endpoint``) from its long name, and ``--help`` shows both; a new option takes one
declaration and no code::

    @setting("--no-vm-agent", is_flag=True, help="Leave the Azure VM agent alone.")

Precedence, highest first: the command line, the environment variable, the ``--config`` file, the default. click
does this itself (``default_map`` is its slot for a config file); this module fills the slot.

The global options (``--root``, ``--bundle-dir``, ``--json``, ``-v``, ``-q``, ``--color``, ``--exit-codes``,
``--config``) are also added to every verb and subcommand (:func:`add_global_options`), so ``asrctl detect --json``
works as ``azcmagent show -j`` or ``gh … --json`` do. Given in both places, the one after the verb wins, as when an
option is repeated; repeatable ones add up (``--bundle-dir``, ``-v``). Each place records what it parsed, and the
App is updated from the merged values before the verb runs.

Only click is imported here: this module builds the top-level group, so ``asrctl --version`` pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click import ParameterSource

if TYPE_CHECKING:
    from asrctl.app import App

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "ASRCTL_"
PRECEDENCE = (
    "Options go before or after the verb; given in both places, the one after the verb wins. Each value comes "
    "from the command line, else from its environment variable, else from the --config file (TOML), else from "
    "the default shown."
)
_STATE = "asrctl.globals"  # ctx.meta: what each level of the command line gave for each global option
_CONFIG = "asrctl.config"  # ctx.meta: the loaded --config file
_CONFIG_DEPTH = "asrctl.config.depth"  # ctx.meta: the level of the command line that named it
_MARK = "_asrctl_globals"
# How explicit a source is (click >= 8.3 orders ParameterSource the same way; 8.1 does not order it).
_RANK = {
    ParameterSource.COMMANDLINE: 3,
    ParameterSource.ENVIRONMENT: 2,
    ParameterSource.DEFAULT_MAP: 1,
    ParameterSource.DEFAULT: 0,
}


def option_key(param: click.Parameter) -> str:
    """``--cs-endpoint`` → ``cs_endpoint``: the config key, and the env var after the prefix."""
    opts = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
    long = next((o for o in opts if o.startswith("--")), None)
    if long is None:
        raise ValueError(f"option {opts} has no long name to derive its settings from")
    return long[2:].replace("-", "_")


class Setting(click.Option):
    """A click option whose environment variable and config key come from its long name.

    ``env``: True (``ASRCTL_<KEY>``), False (none) or a name. ``config``: whether the ``--config`` file may set it;
    False for what is per run (``--dry-run``, ``--yes``, ``--force``) or would weaken a check unseen
    (``--insecure-passphrase-file``).
    """

    def __init__(
        self, param_decls: Sequence[str] | None = None, *, env: bool | str = True, config: bool = True, **attrs: Any
    ) -> None:
        super().__init__(param_decls, **attrs)
        key = option_key(self)
        if env is True:
            self.envvar = ENV_PREFIX + key.upper()
        elif isinstance(env, str):
            self.envvar = env
        self.show_envvar = bool(self.envvar)
        self.config_key: str | None = key if config else None

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or self.config_key is None:
            return record
        spec, text = record
        extra = f"config: {self.config_key}"
        if text.endswith("]") and "  [" in text:
            return spec, f"{text[:-1]}; {extra}]"
        return spec, f"{text}  [{extra}]" if text else f"[{extra}]"


def setting(*param_decls: str, env: bool | str = True, config: bool = True, **attrs: Any) -> Callable[[F], F]:
    """``@click.option`` for a :class:`Setting`."""
    return click.option(*param_decls, cls=Setting, env=env, config=config, **attrs)


# --- the global options -------------------------------------------------------------------------------------


def global_params() -> list[click.Parameter]:
    """Fresh instances for one command (the top-level group, or a verb they are added to)."""
    record = _remember
    return [
        Setting(
            ["--root"],
            config=False,
            metavar="DIR",
            callback=record,
            expose_value=False,
            help="Alternate filesystem root (like rpm --root); nothing is written outside it. Default /.",
        ),
        Setting(
            ["--bundle-dir", "bundle_dirs"],
            multiple=True,
            type=click.Path(),
            metavar="DIR",
            callback=record,
            expose_value=False,
            help="Where to look for Microsoft-ASR_UA_* bundles (repeatable; env: ':'-separated). "
            "Default: bundles/ next to the executable, then <root>/var/lib/asrctl/bundles.",
        ),
        Setting(
            ["--json", "json_mode"],
            is_flag=True,
            config=False,
            callback=record,
            expose_value=False,
            help="Print one JSON result on stdout.",
        ),
        click.Option(
            ["-v", "--verbose"], count=True, callback=record, expose_value=False, help="More detail on stderr."
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            callback=record,
            expose_value=False,
            help="Only warnings and errors on stderr.",
        ),
        click.Option(
            ["--color/--no-color"],
            default=None,
            callback=record,
            expose_value=False,
            help="Force or disable colour (NO_COLOR is honoured).",
        ),
        Setting(
            ["--exit-codes"],
            type=click.Choice(["asrctl", "msi"]),
            default="asrctl",
            config=False,
            callback=record,
            expose_value=False,
            help="Exit code convention; 'msi' maps outcomes to Windows Installer codes for SCCM/Intune.",
        ),
        Setting(
            ["--config", "config_path"],
            metavar="FILE",  # a plain string: each click.Path() costs a gettext lookup at start-up
            config=False,
            is_eager=True,
            callback=_load_config,
            expose_value=False,
            help="TOML file of option values (keys as shown: config: KEY); the command line and ASRCTL_* "
            "variables win over it. Never a passphrase.",
        ),
    ]


GLOBAL_NAMES = ("root", "bundle_dirs", "json_mode", "verbose", "quiet", "color", "exit_codes")


def add_global_options(cmd: click.Command) -> click.Command:
    """Accept the global options after this verb too (and after each of its subcommands)."""
    if getattr(cmd, _MARK, False):
        return cmd
    taken = {o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    for param in global_params():
        clash = taken & {*param.opts, *param.secondary_opts}
        if clash:
            raise RuntimeError(f"{cmd.name}: its own {', '.join(sorted(clash))} hides a global option")
        cmd.params.append(param)
    cmd.epilog = f"{cmd.epilog}\n\n{PRECEDENCE}" if cmd.epilog else PRECEDENCE
    setattr(cmd, _MARK, True)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_global_options(sub)
    return cmd


class GlobalValues:
    """The global options once both places, the environment and the config file are merged. (A plain class: this
    module is imported by ``asrctl --version``, and a dataclass costs a millisecond to make.)"""

    __slots__ = ("root", "bundle_dirs", "json_mode", "verbose", "quiet", "color", "exit_codes")

    def __init__(
        self,
        root: str | None = None,
        bundle_dirs: tuple[str, ...] = (),
        json_mode: bool = False,
        verbose: int = 0,
        quiet: bool = False,
        color: bool | None = None,
        exit_codes: str = "asrctl",
    ) -> None:
        self.root = root
        self.bundle_dirs = bundle_dirs
        self.json_mode = json_mode
        self.verbose = verbose
        self.quiet = quiet
        self.color = color
        self.exit_codes = exit_codes

    @property
    def verbosity(self) -> int:
        return -1 if self.quiet else self.verbose


def _depth(ctx: click.Context) -> int:
    depth = 0
    while ctx.parent is not None:
        ctx, depth = ctx.parent, depth + 1
    return depth


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record what this level gave for a global option; once the App exists (a verb is being parsed), update it."""
    if ctx.resilient_parsing or param.name is None:
        return value
    source = ctx.get_parameter_source(param.name) or ParameterSource.DEFAULT
    levels: dict[int, tuple[ParameterSource, Any]] = ctx.meta.setdefault(_STATE, {}).setdefault(param.name, {})
    levels[_depth(ctx)] = (source, value)
    if ctx.obj is not None:
        configure(ctx.obj, merged(ctx))
    return value


def merged(ctx: click.Context) -> GlobalValues:
    """The global options' values: the most explicit source wins; on the command line the last place (after the
    verb) wins, and the repeatable ones (--bundle-dir, -v) add up over the places."""
    state: Mapping[str, Mapping[int, tuple[ParameterSource, Any]]] = ctx.meta.get(_STATE, {})
    config_depth = ctx.meta.get(_CONFIG_DEPTH, 0)
    values: dict[str, Any] = {}
    for name, levels in state.items():
        if name not in GLOBAL_NAMES:
            continue
        # A --config after the verb replaces the one before it, values and all.
        ordered = [
            levels[d] for d in sorted(levels) if not (levels[d][0] is ParameterSource.DEFAULT_MAP and d < config_depth)
        ]
        if not ordered:  # only the replaced file's values so far: this level's are still being parsed
            continue
        typed = [v for s, v in ordered if s is ParameterSource.COMMANDLINE]
        if name == "bundle_dirs" and typed:
            values[name] = tuple(d for v in typed for d in v)
        elif name == "verbose" and typed:
            values[name] = sum(typed)
        elif typed:
            values[name] = typed[-1]
        else:
            best = max(range(len(ordered)), key=lambda i: (_RANK.get(ordered[i][0], 0), i))
            values[name] = ordered[best][1]
    return GlobalValues(
        root=values.get("root"),
        bundle_dirs=tuple(values.get("bundle_dirs") or ()),
        json_mode=bool(values.get("json_mode")),
        verbose=int(values.get("verbose") or 0),
        quiet=bool(values.get("quiet")),
        color=values.get("color"),
        exit_codes=values.get("exit_codes") or "asrctl",
    )


def configure(app: App, values: GlobalValues) -> None:
    app.configure(
        root=values.root,
        bundle_dirs=values.bundle_dirs,
        json_mode=values.json_mode,
        verbosity=values.verbosity,
        color=values.color,
        exit_codes=values.exit_codes,
    )


# --- the config file ----------------------------------------------------------------------------------------


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Eager: runs before this level's other options, so the file's values are in ``ctx.default_map`` when click
    looks for them (after the command line and the environment)."""
    if ctx.resilient_parsing:
        return value
    source = ctx.get_parameter_source(param.name or "config_path")
    if value is not None and (ctx.parent is None or source is ParameterSource.COMMANDLINE):
        from asrctl.commands.configfile import load

        ctx.meta[_CONFIG] = load(value, settings_by_key(ctx))
        ctx.meta[_CONFIG_DEPTH] = _depth(ctx)
    config = ctx.meta.get(_CONFIG)
    if config is not None:
        ctx.default_map = {
            p.name: config.values[p.config_key]
            for p in ctx.command.params
            if isinstance(p, Setting) and p.name and p.config_key in config.values
        }
    return value


def config_file(ctx: click.Context) -> str | None:
    """The --config file in effect, if any (for the log)."""
    config = ctx.meta.get(_CONFIG)
    return str(config.path) if config is not None else None


def all_commands(ctx: click.Context) -> Iterator[tuple[str, click.Command]]:
    """Every command under the top-level group, by path (``bundles list``): loads every verb module."""
    root_ctx = ctx.find_root()

    def walk(prefix: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
        yield prefix, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(root_ctx):
                sub = cmd.get_command(root_ctx, name)
                if sub is not None:
                    yield from walk(f"{prefix} {name}".strip(), sub)

    yield from walk("", root_ctx.command)


def settings_by_key(ctx: click.Context) -> dict[str, list[tuple[str, Setting]]]:
    """Every config key any command declares, with (command path, option) for each declaration."""
    found: dict[str, list[tuple[str, Setting]]] = {}
    for path, cmd in all_commands(ctx):
        for p in cmd.params:
            if isinstance(p, Setting) and p.config_key:
                found.setdefault(p.config_key, []).append((path, p))
    return found
