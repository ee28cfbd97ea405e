"""Which driver file of a Microsoft driver package a kernel takes: Microsoft's rules (hotfix_install.sh), as data
(platforms/drivers.toml), applied here. Pure: the package's file names go in, one file (or a clear refusal) comes
out.

Where Microsoft's script is wrong, this is not: a glob that matches no file or several is a refusal, never "copy
whatever is there" (its ``cp -f <glob>`` fails, and the UEK branch ignores the failure and loads an old
``involflt.ko``); the SLES Signed/UnSigned choice follows Secure Boot itself, not a platform string compared in the
wrong case (the script's brownfield branch lower-cases the platform and then compares with ``"Azure"``, so it always
takes UnSigned, which cannot load under Secure Boot).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from typing import Any

from asrctl.errors import AsrctlError

SIGNED, UNSIGNED = "Signed", "UnSigned"
PREFIX = "involflt.ko."


@dataclass(frozen=True)
class Choice:
    file: str  # relative to the package's Drivers/ directory
    rule: str  # the rule that picked it, for the plan and the JSON


@cache
def load() -> dict[str, Any]:
    import tomllib

    from asrctl.resources import platform_data

    try:
        data = tomllib.loads(platform_data("drivers.toml"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AsrctlError("ASRCTL-E013", f"cannot load platforms/drivers.toml: {exc}") from None
    if data.get("schema") != 1 or not data.get("package") or not data.get("scheme"):
        raise AsrctlError("ASRCTL-E013", "platforms/drivers.toml is broken: schema 1 with package and scheme")
    return data


def package_keys(data: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """KEY → the host tags its package serves."""
    return {p["key"]: list(p["tags"]) for p in (data or load())["package"]}


def keys_for(tag: str, data: dict[str, Any] | None = None) -> list[str]:
    return [key for key, tags in package_keys(data).items() if tag in tags]


def _none(tag: str, kernel: str, why: str, **details: Any) -> AsrctlError:
    return AsrctlError(
        "ASRCTL-E099",
        f"the driver package has no driver for {kernel} ({tag}): {why}",
        kernel=kernel,
        tag=tag,
        **details,
    )


def _parts(kernel: str) -> tuple[int | None, int | None, int | None]:
    """minor, upd, third of ``<base>-<minor>.<upd>.<third>...``; None where a field is not a number."""
    after = kernel.partition("-")[2].split(".")

    def num(i: int) -> int | None:
        return int(after[i]) if i < len(after) and after[i].isascii() and after[i].isdigit() else None

    return num(0), num(1), num(2)


def _row_holds(row: dict[str, Any], minor: int | None, upd: int | None, third: int | None) -> bool:
    if "minor" in row:
        wanted = row["minor"] if isinstance(row["minor"], list) else [row["minor"]]
        if minor not in wanted:
            return False
    if "upd_below" in row and upd is not None and upd >= row["upd_below"]:
        return False
    for key in ("at_least", "exactly"):
        if key in row:
            a, b = (int(x) for x in row[key].split("."))
            if upd is None or third is None:
                return False
            if key == "at_least" and (upd, third) < (a, b):
                return False
            if key == "exactly" and (upd, third) != (a, b):
                return False
    return True


def table_pick(table: list[dict[str, Any]], kernel: str) -> tuple[str, str | None]:
    """(pick, why-none) from a mapping table: the first row that holds."""
    minor, upd, third = _parts(kernel)
    for row in table:
        if _row_holds(row, minor, upd, third):
            pick = str(row["pick"]).format(minor=minor, upd=upd, third=third)
            return pick, row.get("why")
    return "", "no row of Microsoft's table matches"


def scheme_for(tag: str, kernel: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    for scheme in (data or load())["scheme"]:
        if not any(fnmatch.fnmatchcase(tag, t) for t in scheme["tags"]):
            continue
        if "if_contains" in scheme and scheme["if_contains"] not in kernel:
            continue
        return dict(scheme)
    return None


def _one(tag: str, kernel: str, pattern: str, files: set[str], rule: str) -> Choice:
    matches = sorted(f for f in files if "/" not in f and fnmatch.fnmatchcase(f, pattern))
    if not matches:
        raise _none(tag, kernel, f"no file matches {pattern} ({rule})", pattern=pattern)
    if len(matches) > 1:
        raise _none(
            tag,
            kernel,
            f"{len(matches)} files match {pattern} ({', '.join(matches)}); Microsoft's rule needs exactly one",
            pattern=pattern,
        )
    return Choice(matches[0], rule)


def choose(
    tag: str,
    kernel: str,
    files: set[str],
    *,
    secure_boot: bool | None = None,
    data: dict[str, Any] | None = None,
) -> Choice:
    """The file of the package (names relative to ``Drivers/``) that ``kernel`` on a ``tag`` host takes;
    ``ASRCTL-E099`` when the package has none (or Microsoft's rule is ambiguous for it)."""
    data = data or load()
    scheme = scheme_for(tag, kernel, data)
    if scheme is None:
        raise _none(tag, kernel, "Microsoft publishes no driver package for this OS")
    method = scheme["method"]
    if method == "exact":
        name = PREFIX + kernel
        if name not in files:
            raise _none(tag, kernel, f"{name} is not in the package (Ubuntu/Debian need the exact kernel)")
        return Choice(name, "exact kernel name")
    if method == "sles":
        return _sles(tag, kernel, files, secure_boot)
    if method == "uek":
        base = kernel.split("-", 1)[0]
        for special in scheme.get("special", []):
            if special["base"] == base and special.get("contains", "") in kernel:
                base = special["use"]
                break
        return _one(tag, kernel, f"{PREFIX}{base}*uek.x86_64", files, "UEK: the kernel's base version")
    if method == "table":
        pick, why = table_pick(data["table"][scheme["table"]], kernel)
        if not pick:
            raise _none(tag, kernel, why or "Microsoft has no driver for it")
        return _one(tag, kernel, f"{PREFIX}{scheme['base']}-{pick}*", files, f"{scheme['table']} table: {pick}")
    raise AsrctlError("ASRCTL-E013", f"platforms/drivers.toml: unknown method {method!r}")


def _sles(tag: str, kernel: str, files: set[str], secure_boot: bool | None) -> Choice:
    signed, unsigned = f"{SIGNED}/{PREFIX}{kernel}", f"{UNSIGNED}/{PREFIX}{kernel}"
    if secure_boot:
        if signed in files:
            return Choice(signed, "SLES, Secure Boot on: the signed driver")
        raise _none(
            tag,
            kernel,
            f"Secure Boot is on and {signed} is not in the package (an unsigned driver cannot load)",
        )
    if unsigned in files:
        why = "off" if secure_boot is False else "not in use (no EFI Secure Boot variable)"
        return Choice(unsigned, f"SLES, Secure Boot {why}: the unsigned driver (Microsoft's default)")
    if signed in files:
        return Choice(signed, "SLES, Secure Boot off: only the signed driver is in the package")
    raise _none(tag, kernel, f"neither {unsigned} nor {signed} is in the package")
