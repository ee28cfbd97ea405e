"""The support matrix: ``platforms/*.toml`` loaded once, and one pure ``select(facts)``.

``select`` answers which bundle OS tag a host uses, or why it is refused. It has no I/O: the facts carry the
release-file texts, and the matrix data is passed in (tests hand it tables of facts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.facts import HostFacts
from asrctl.versions import key as vkey


@dataclass(frozen=True)
class Platform:
    os_tag: str
    name: str  # "Ubuntu 22.04", "Windows Server 2022"
    family: str  # matrix family id: "ubuntu", "rhel", ..., "windows"
    version: str
    warnings: tuple[str, ...] = ()
    supported: bool = True
    reason: None = None


@dataclass(frozen=True)
class Unsupported:
    reason: str
    family: str | None = None
    name: str | None = None
    version: str | None = None
    warnings: tuple[str, ...] = field(default=())
    supported: bool = False
    os_tag: None = None


def _load_toml(name: str) -> dict[str, Any]:
    import tomllib

    from asrctl.resources import platform_data

    try:
        return tomllib.loads(platform_data(name))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AsrctlError("ASRCTL-E013", f"cannot load platforms/{name}: {exc}") from None


@cache
def load_matrix() -> dict[str, Any]:
    return {"linux": _load_toml("linux.toml"), "windows": _load_toml("windows.toml")}


def select(facts: HostFacts, matrix: dict[str, Any] | None = None) -> Platform | Unsupported:
    """Which bundle OS tag this host uses, or why none fits. Pure."""
    m = matrix if matrix is not None else load_matrix()
    if facts.os_family == "windows":
        return _select_windows(facts, m["windows"])
    if facts.os_family == "linux":
        return _select_linux(facts, m["linux"])
    return Unsupported(f"{facts.os_family or 'this operating system'} is not supported; only Linux and Windows are")


# --- Linux -------------------------------------------------------------------------------------------------

# Architectures that are 32-bit, to say so in the refusal (an aarch64 host is 64-bit, just not x86).
_ARCH_32BIT = frozenset({"i386", "i486", "i586", "i686", "x86", "armv6l", "armv7l", "armhf", "ppc", "s390"})


def _version_in(version: str, versions: list[str]) -> bool:
    """``version`` is one of ``versions``, or a point release of one ("13" covers "13.1", "9.0" covers "9.0.1")."""
    return any(version == v or version.startswith(v + ".") for v in versions)


def _release_label(rel: dict[str, Any]) -> str:
    if "version" in rel:
        return str(rel["version"])
    if "patchlevel" in rel:
        return f"{rel['major']} SP{rel['patchlevel']}"
    lo, hi = rel.get("min"), rel.get("max")
    if lo and hi:
        return f"{lo}-{hi}"
    if lo:
        return f"{lo}+"
    if hi:
        return f"{rel['major']}.0-{hi}" if hi != f"{rel['major']}.0" else str(hi)
    return str(rel["major"])


def _listed(family: dict[str, Any]) -> str:
    out: list[str] = []
    for rel in family["release"]:
        label = _release_label(rel)
        if label not in out:
            out.append(label)
    return ", ".join(out)


def _release_for(family: dict[str, Any], version: str, patchlevel: int | None) -> dict[str, Any] | None:
    vt = vkey(version)
    releases: list[dict[str, Any]] = family["release"]
    for rel in releases:
        if family.get("exact"):
            if rel["version"] == version:
                return rel
            continue
        if not vt or vt[0] != rel["major"]:
            continue
        if "patchlevel" in rel and rel["patchlevel"] != patchlevel:
            continue
        return rel
    return None


def _in_range(rel: dict[str, Any], version: str) -> str | None:
    """None when ``version`` is inside the release's min/max; else which bound it breaks."""
    vt = vkey(version)
    if "min" in rel and vt < vkey(rel["min"]):
        return "too_old"
    if "max" in rel and vt[: len(vkey(rel["max"]))] > vkey(rel["max"]):
        return "too_new"
    return None


def _fmt(template: str, **kw: Any) -> str:
    return template.format(**kw)


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0].strip() if stripped else "(empty file)"


def _select_linux(facts: HostFacts, data: dict[str, Any]) -> Platform | Unsupported:
    files = facts.release_files
    if not files:
        return Unsupported(_fmt(data["no_release_files"], root=facts.root))
    for family in data["family"]:
        text = files.get(family["file"])
        if text is None:
            continue
        only_if = family.get("only_if")
        if only_if and not re.search(only_if, text):
            continue
        return _select_in_family(facts, data, family, text)
    # None of Microsoft's branches applies: explain by os-release ID.
    reason = data.get("others", {}).get(facts.distro_id)
    label = f"{facts.distro_name or facts.distro_id} {facts.version}".strip()
    if reason:
        return Unsupported(f"{label}: {reason}", name=facts.distro_name or None, version=facts.version or None)
    if not facts.distro_id and not facts.distro_name:
        shown = next(iter(files))
        return Unsupported(_fmt(data["no_id"], file=shown, root=facts.root))
    return Unsupported(
        _fmt(data["unknown"], name=facts.distro_name or facts.distro_id, version=facts.version).replace("  ", " "),
        name=facts.distro_name or None,
        version=facts.version or None,
    )


def _select_in_family(
    facts: HostFacts, data: dict[str, Any], family: dict[str, Any], text: str
) -> Platform | Unsupported:
    fid = family["id"]
    listed = _listed(family)
    first_line = _first_line(text)
    for refusal in family.get("refuse", []):
        if re.search(refusal["pattern"], text):
            return Unsupported(_fmt(refusal["text"], text=first_line, listed=listed), family=fid)
    version = None
    name = family["name"]
    patchlevel: int | None = None
    for rule in family["match"]:
        found = re.search(rule["pattern"], text, re.ASCII)
        if not found:
            continue
        version = found.group("version")
        name = rule.get("name", name)
        if "patchlevel" in rule:
            pl = re.search(rule["patchlevel"], text, re.ASCII)
            patchlevel = int(pl.group("patchlevel")) if pl else None
        break
    if "name_from" in family:
        named = re.search(family["name_from"], text)
        if named:
            name = named.group("name").strip()
    if version is None:
        other = data.get("others", {}).get(facts.distro_id)
        if other:
            return Unsupported(f"{first_line}: {other}", family=fid)
        template = family.get("nomatch", "{name}: cannot read the version from {file}: {text!r}")
        return Unsupported(_fmt(template, name=name, text=first_line, file=family["file"], listed=listed), family=fid)

    shown = f"{version} SP{patchlevel}" if patchlevel is not None else version
    kw = {"name": name, "version": shown, "listed": listed, "arch": facts.arch}
    for entry in family.get("unsupported", []):
        if _version_in(version, entry["versions"]):
            return Unsupported(_fmt(entry["text"], **kw), family=fid, name=name, version=shown)
    lts = family.get("lts")
    if lts and not re.search(lts, version, re.ASCII):
        return Unsupported(_fmt(family["not_lts"], **kw), family=fid, name=name, version=shown)
    rel = _release_for(family, version, patchlevel)
    if rel is None:
        return Unsupported(_fmt(family["unlisted"], **kw), family=fid, name=name, version=shown)
    bound = _in_range(rel, version)
    if bound == "too_old":
        return Unsupported(_fmt(family["too_old"], **kw), family=fid, name=name, version=shown)
    if bound == "too_new":
        return Unsupported(
            f"{name} {shown} is newer than the {rel['tag']} bundles cover (up to {rel['max']}); "
            "check for a newer Mobility Service release that supports it",
            family=fid,
            name=name,
            version=shown,
        )
    warnings = tuple(_fmt(w["text"], **kw) for w in family.get("warning", []) if _version_in(version, w["versions"]))
    if facts.arch not in data["arch"]:
        template = data["wrong_arch_32bit"] if facts.arch in _ARCH_32BIT else data["wrong_arch"]
        return Unsupported(
            _fmt(template, **kw, tag=rel["tag"]), family=fid, name=name, version=shown, warnings=warnings
        )
    return Platform(os_tag=rel["tag"], name=f"{name} {shown}", family=fid, version=shown, warnings=warnings)


# --- Windows -----------------------------------------------------------------------------------------------


def _build_in(entry: dict[str, Any], build: int) -> bool:
    if "builds" in entry:
        builds: list[int] = entry["builds"]
        return build in builds
    low: int = entry.get("min_build", 0)
    high: int = entry.get("max_build", 1 << 31)
    return low <= build <= high


def _select_windows(facts: HostFacts, data: dict[str, Any]) -> Platform | Unsupported:
    win = facts.windows
    if win is None:
        return Unsupported("Windows version information is missing")
    label = f"{win.product_name} (build {win.build})"
    if facts.arch not in data["arch"]:
        template = data["wrong_arch_32bit"] if facts.arch in _ARCH_32BIT else data["wrong_arch"]
        return Unsupported(_fmt(template, label=label, arch=facts.arch), family="windows", name=win.product_name)
    for entry in data.get("release", []):
        if entry["type"] == win.product_type and entry["kernel"] == win.kernel and _build_in(entry, win.build):
            warnings = (entry["warning"],) if "warning" in entry else ()
            return Platform(
                os_tag=data["tag"],
                name=entry["name"],
                family="windows",
                version=facts.version,
                warnings=warnings,
            )
    for entry in data.get("refused", []):
        if entry["type"] == win.product_type and entry["kernel"] == win.kernel and _build_in(entry, win.build):
            return Unsupported(_fmt(entry["text"], build=win.build), family="windows", name=win.product_name)
    return Unsupported(_fmt(data["unknown"], label=label), family="windows", name=win.product_name)
