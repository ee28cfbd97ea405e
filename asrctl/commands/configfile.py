"""``--config FILE``: option values from a TOML file, checked before anything runs.

The file holds top-level keys named like the long options (``--cs-endpoint`` → ``cs_endpoint``); a key applies to
every verb that has that option and is ignored by the others (``role`` means nothing to ``upgrade``). Every
problem is ``ASRCTL-E006`` (exit 2, a usage error) naming the file and the key: a key no verb knows (with the
closest one), a value of the wrong type or outside the choices, bad TOML (with its line), a table. Values are
never echoed for a key asrctl does not know: a misplaced secret stays out of the message and the log.

What the file may not hold, by design:
- a ``passphrase``: refused with its own message. A config file is copied around, templated and read by
  deployment tools; the passphrase lives in a 0600 file named by ``passphrase_file`` (or on stdin, or in
  ``ASRCTL_PASSPHRASE``).
- per-run choices (``dry_run``, ``yes``, ``force``, ...) and ``insecure_passphrase_file``: each verb's ``--help``
  marks the keys it takes with ``config: KEY``.

The file names the install directory and the passphrase file an administrator's run uses, so one that others
can change is refused (like sudoers): it must belong to the user running asrctl or to root, and not be writable
by group or others. Relative paths in path-valued keys are taken from the file's directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from asrctl.errors import AsrctlError

if TYPE_CHECKING:
    from asrctl.commands.settings import Setting

CODE = "ASRCTL-E006"
REFUSED = {
    "passphrase": "a passphrase never goes into a config file",
}
PASSPHRASE_REMEDY = (
    "Put the passphrase in a file only root can read (chmod 600) and name it with passphrase_file = "
    '"/root/cs.passphrase", or use --passphrase-stdin or ASRCTL_PASSPHRASE.'
)


@dataclass(frozen=True)
class Config:
    path: Path
    values: dict[str, Any] = field(default_factory=dict)


MAX_CONFIG = 1 << 20  # a config file is a few lines


def _fail(path: Path, message: str, remedy: str | None = None) -> AsrctlError:
    return AsrctlError(CODE, f"{path}: {message}", remedy=remedy)


def load(path_arg: str | os.PathLike[str], known: Mapping[str, Sequence[tuple[str, Setting]]]) -> Config:
    """Read, check and convert the file; ``known`` maps each config key to the options that declare it."""
    import tomllib

    from asrctl.system import rootfs

    path = Path(path_arg)
    try:
        # A regular file, opened non-blocking (a FIFO never hangs asrctl), read bounded (MAX_CONFIG).
        opened = rootfs.open_host(path)
        if opened is None:
            raise FileNotFoundError(2, "No such file or directory")
        with opened:
            st = os.fstat(opened.fd)
            raw = opened.read(MAX_CONFIG)
    except rootfs.Refused as exc:
        raise _fail(path, f"the config file {exc.reason}", "Give --config a regular TOML file.") from None
    except OSError as exc:
        raise _fail(path, f"cannot read the config file: {exc.strerror or exc}", "Check the --config path.") from None
    _check_ownership(path, st)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "the config file is not UTF-8 text", "Save it as UTF-8 TOML.") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, f"not valid TOML: {exc}", "Fix the line named; TOML strings need quotes.") from None
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key in REFUSED:
            raise _fail(path, f"key '{key}': {REFUSED[key]}", PASSPHRASE_REMEDY)
        if isinstance(value, dict):
            raise _fail(
                path,
                f"key '{key}' is a table; the config file has top-level keys only",
                "Write each option as `name = value` at the top of the file, before any [table].",
            )
        if key not in known:
            raise _fail(path, f"unknown key '{key}'{_did_you_mean(key, known)}", _keys_remedy(known))
        values[key] = _convert(path, key, known[key][0][1], value)
    return Config(path, values)


def _check_ownership(path: Path, st: os.stat_result) -> None:
    if not hasattr(os, "geteuid"):  # Windows: ACLs, not modes; the file's directory protects it
        return
    if st.st_uid not in (0, os.geteuid()):
        raise _fail(
            path,
            f"the config file belongs to uid {st.st_uid}, not to you or root",
            "Use a config file you or root own.",
        )
    if st.st_mode & 0o022:
        raise _fail(
            path,
            f"other users can change the config file (mode {st.st_mode & 0o777:04o})",
            f"Run `chmod go-w {path}`: it says which passphrase file and install directory to use.",
        )


def _did_you_mean(key: str, known: Mapping[str, object]) -> str:
    import difflib

    close = difflib.get_close_matches(key.replace("-", "_"), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _keys_remedy(known: Mapping[str, object]) -> str:
    return (
        "The keys are the long option names with _ for - (`asrctl VERB --help` shows `config: KEY`): "
        + ", ".join(sorted(known))
        + "."
    )


def _kind(value: Any) -> str:
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), type(value).__name__)


def _convert(path: Path, key: str, option: Setting, value: Any) -> Any:
    if option.is_flag and option.is_bool_flag:
        if not isinstance(value, bool):
            raise _fail(path, f"key '{key}' must be true or false, not {_kind(value)}")
        return value
    if option.multiple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _fail(path, f"key '{key}' must be a string or a list of strings, not {_kind(value)}")
        return [_scalar(path, key, option, i) for i in items]
    return _scalar(path, key, option, value)


def _scalar(path: Path, key: str, option: Setting, value: Any) -> Any:
    kind = option.type
    if isinstance(kind, click.Choice):
        choices = [str(c) for c in kind.choices]
        if not isinstance(value, str) or value not in choices:
            shown = f"'{value}'" if isinstance(value, str) else _kind(value)
            raise _fail(path, f"key '{key}' must be one of {', '.join(choices)}, not {shown}")
        return value
    if isinstance(kind, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"key '{key}' must be an integer, not {_kind(value)}")
    elif isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, f"key '{key}' must be a number, not {_kind(value)}")
    elif not isinstance(value, str):
        raise _fail(path, f"key '{key}' must be a string, not {_kind(value)}")
    elif isinstance(kind, click.Path) and value and not os.path.isabs(value):
        value = str(path.absolute().parent / value)
    try:
        kind.convert(value, option, None)
    except click.BadParameter as exc:
        raise _fail(path, f"key '{key}': {exc.message}") from None
    return value
