"""The environment for child processes: the host's, as the operator had it, without asrctl's own traces.

When asrctl runs as the one-file binary (docs/BINARY.md), three stages change the environment before Python
starts:

- the launcher sets ``TMPDIR`` to its private runtime directory (the operator's value, if any, is kept in
  ``ASRCTL_TMPDIR_ORIG``), moves ``LD_LIBRARY_PATH``, ``LD_PRELOAD`` and ``LD_AUDIT`` out of the bundle's way (to
  ``ASRCTL_<NAME>_ORIG``) and adds ``ASRCTL_RUNTIME_DIR`` and ``ASRCTL_EXE``;
- staticx adds ``STATICX_BUNDLE_DIR`` and ``STATICX_PROG_PATH``;
- PyInstaller puts its unpacked bundle first in ``LD_LIBRARY_PATH`` (the operator's value, if any, is kept in
  ``LD_LIBRARY_PATH_ORIG``) and adds ``_PYI_*`` bookkeeping.

A vendor script, package manager, ``systemctl`` or PowerShell started with that environment would load the
bundle's libraries, built against a newer glibc than the host's, instead of the host's own. :func:`host_environ`
undoes all of it, and also drops the passphrase variable, which no child may ever see.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

#: Never passed to a child, frozen or not.
SECRET_VARS = frozenset({"ASRCTL_PASSPHRASE"})
#: The dynamic loader's variables, which the launcher keeps away from the bundle and children get back.
LOADER_VARS = ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT")
#: Set by the launcher in front of the one-file binary (scripts/binary/launcher.c).
LAUNCHER_VARS = frozenset(
    {"ASRCTL_TMPDIR_ORIG", "ASRCTL_RUNTIME_DIR", "ASRCTL_EXE", *(f"ASRCTL_{v}_ORIG" for v in LOADER_VARS)}
)
#: Bookkeeping of the self-extracting stages: PyInstaller's bootloader and staticx.
INTERNAL_PREFIXES = ("_PYI_", "_MEIPASS", "STATICX_")
LIBRARY_PATH = "LD_LIBRARY_PATH"
LIBRARY_PATH_ORIG = "LD_LIBRARY_PATH_ORIG"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def bundle_dirs(environ: Mapping[str, str]) -> list[str]:
    """Directories that belong to the running binary: the unpacked PyInstaller bundle, the staticx directory and
    the launcher's runtime directory that holds both."""
    found: list[str] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        found.append(str(meipass))
    for key in ("STATICX_BUNDLE_DIR", "_PYI_APPLICATION_HOME_DIR", "ASRCTL_RUNTIME_DIR"):
        value = environ.get(key)
        if value:
            found.append(value)
    return found


def host_environ(
    environ: Mapping[str, str] | None = None,
    *,
    frozen: bool | None = None,
    bundle: Sequence[str] | None = None,
) -> dict[str, str]:
    """The environment for a child process.

    ``environ`` defaults to ``os.environ``; ``frozen`` (default: whether this is the one-file binary) and
    ``bundle`` (default: :func:`bundle_dirs`) exist for tests. The result:

    - never contains ``ASRCTL_PASSPHRASE``;
    - has no launcher, staticx or PyInstaller variables;
    - has ``LD_LIBRARY_PATH``, ``LD_PRELOAD`` and ``LD_AUDIT`` as the operator had them: from the launcher's
      saved values; without the launcher (a plain PyInstaller build), ``LD_LIBRARY_PATH`` from
      ``LD_LIBRARY_PATH_ORIG``, or, when frozen and there is no saved value, removed (the bootloader set it to the
      bundle alone);
    - has ``TMPDIR`` as the operator had it, when the launcher replaced it;
    - has no entry inside the bundle's directories in any path list (``PATH``, ``PYTHONPATH``, …): such entries
      are dropped, and a variable left empty is removed.
    """
    source: Mapping[str, str] = os.environ if environ is None else environ
    env = dict(source)
    if frozen is None:
        frozen = is_frozen()
    dirs = _normalised(bundle_dirs(source) if bundle is None else bundle)

    runtime_dir = source.get("ASRCTL_RUNTIME_DIR")
    if runtime_dir is not None:  # started through the launcher
        env.pop(LIBRARY_PATH_ORIG, None)
        for var in LOADER_VARS:
            saved = source.get(f"ASRCTL_{var}_ORIG")
            if saved is not None:
                env[var] = saved
            else:
                env.pop(var, None)
        if "ASRCTL_TMPDIR_ORIG" in source:
            env["TMPDIR"] = source["ASRCTL_TMPDIR_ORIG"]
        elif env.get("TMPDIR") == runtime_dir:
            del env["TMPDIR"]
    elif frozen:  # a plain PyInstaller build
        saved = env.pop(LIBRARY_PATH_ORIG, None)
        if saved is not None:
            env[LIBRARY_PATH] = saved
        else:
            env.pop(LIBRARY_PATH, None)

    for key in list(env):
        if key in SECRET_VARS or key in LAUNCHER_VARS or key.startswith(INTERNAL_PREFIXES):
            del env[key]

    if dirs:
        for key, value in list(env.items()):
            if not any(d in value for d in dirs):
                continue
            parts = value.split(os.pathsep)
            kept = [p for p in parts if not _inside(p, dirs)]
            if len(kept) == len(parts):
                continue  # mentions the directory, but not as a path entry: not ours to edit
            kept = [p for p in kept if p]
            if kept:
                env[key] = os.pathsep.join(kept)
            else:
                del env[key]
    return env


def launched_executable(environ: Mapping[str, str] | None = None) -> Path | None:
    """The file the operator ran, when asrctl is the one-file binary: not the unpacked copy that Python runs from
    (``sys.executable`` is inside the runtime directory). None when not frozen."""
    if not is_frozen():
        return None
    env = os.environ if environ is None else environ
    for key in ("ASRCTL_EXE", "STATICX_PROG_PATH"):
        value = env.get(key)
        if value and os.path.isfile(value):
            return Path(value)
    return Path(sys.executable)


def _normalised(dirs: Iterable[str]) -> list[str]:
    out: list[str] = []
    for d in dirs:
        if not d:
            continue
        for form in (os.path.normpath(d), os.path.realpath(d)):
            if form not in out and form != os.sep:
                out.append(form)
    return out


def _inside(entry: str, dirs: Sequence[str]) -> bool:
    if not entry:
        return False
    path = os.path.normpath(entry)
    return any(path == d or path.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)
