"""Which kernel boots next, from the boot loader's own files (text in, answer out; :mod:`.host` reads them).

A kernel update installs a kernel that runs only after the next restart; whether the agent has a driver for *that*
kernel decides whether replication survives the restart. GRUB decides which kernel boots, from:

- **BLS** (RHEL/OL/Rocky/Alma 8+, Fedora: grub.cfg runs ``blscfg``): one ``/boot/loader/entries/*.conf`` per
  kernel; ``saved_entry`` in grubenv names an entry by its file stem (what ``grubby --set-default`` writes); no
  ``saved_entry``, or one that names no entry: the first entry, i.e. the newest by version (rescue entries last).
- **classic grub.cfg** (RHEL7, SLES, Ubuntu, Debian): ``menuentry``/``submenu`` blocks and ``set default=``, which
  may be an index, a title, an id, a ``submenu>entry`` path, or ``${saved_entry}`` (then grubenv decides).
- In both, grubenv's ``next_entry`` (one-shot, ``grub-reboot``) wins over everything for the next boot only.

Every answer names its source; what cannot be read is "unknown", never a guess.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from asrctl.kernels import kver

_VMLINUZ = re.compile(r"(?:^|/)vmlinuz-([^/\s]+)$")


@dataclass(frozen=True)
class NextBoot:
    kernel: str | None  # None: unknown
    source: str  # how it was found ("unknown" when it was not)
    detail: str = ""

    def as_json(self) -> dict[str, str | None]:
        return {"kernel": self.kernel, "source": self.source, "detail": self.detail or None}


def kernel_of_image(path: str) -> str | None:
    """``/vmlinuz-5.14.0-427.el9.x86_64`` → ``5.14.0-427.el9.x86_64``; None when it is not a vmlinuz path or what
    follows is not a kernel release string."""
    m = _VMLINUZ.search(path.strip())
    if m is None or kver.problem(m.group(1)) is not None:
        return None
    return m.group(1)


# --- grubenv ------------------------------------------------------------------------------------------------


def parse_grubenv(text: str) -> dict[str, str]:
    """The 1024-byte environment block: a ``#`` header, ``key=value`` lines, then ``#`` padding."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key] = value
    return out


# --- BLS ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlsEntry:
    stem: str  # the file name without .conf: what saved_entry names
    title: str
    version: str
    kernel: str | None  # from the linux line, not from the file name


def parse_bls_entry(stem: str, text: str) -> BlsEntry:
    keys: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        keys.setdefault(key, value.strip())
    kernel = kernel_of_image(keys["linux"].split()[0]) if keys.get("linux") else None
    return BlsEntry(stem, keys.get("title", ""), keys.get("version", ""), kernel)


def _rescue(entry: BlsEntry) -> bool:
    return "rescue" in entry.stem or "rescue" in (entry.kernel or "")


def bls_order(entries: list[BlsEntry]) -> list[BlsEntry]:
    """GRUB's blscfg order: newest version first, rescue entries last."""
    normal = [e for e in entries if not _rescue(e)]
    normal.sort(key=lambda e: (kver.key(e.version or e.kernel or ""), e.stem), reverse=True)
    return normal + sorted((e for e in entries if _rescue(e)), key=lambda e: e.stem)


def bls_default(entries: list[BlsEntry], env: dict[str, str]) -> NextBoot:
    if not entries:
        return NextBoot(None, "unknown", "no BLS entries")
    ordered = bls_order(entries)
    by_stem = {e.stem: e for e in entries}
    for var in ("next_entry", "saved_entry"):
        name = env.get(var, "")
        if not name:
            continue
        entry = by_stem.get(name)
        if entry is None:
            if var == "next_entry":
                continue
            break  # GRUB falls back to the first entry
        return _entry_answer(entry.kernel, f"BLS entry named by grubenv {var}", entry.stem)
    first = ordered[0]
    return _entry_answer(first.kernel, "BLS: the first entry (newest; grubenv names none)", first.stem)


def _entry_answer(kernel: str | None, source: str, name: str) -> NextBoot:
    if kernel is None:
        return NextBoot(None, "unknown", f"{source} ({name}) has no readable linux line")
    return NextBoot(kernel, source, name)


# --- grub.cfg -----------------------------------------------------------------------------------------------


@dataclass
class MenuItem:
    title: str
    ident: str | None
    kernel: str | None = None
    children: list[MenuItem] | None = None  # a submenu

    @property
    def is_submenu(self) -> bool:
        return self.children is not None


@dataclass
class GrubConfig:
    items: list[MenuItem] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)  # every `set default=` value, in order
    blscfg: bool = False


def _words(line: str) -> list[str] | None:
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError:
        return None


def _ident(words: list[str]) -> str | None:
    for i, w in enumerate(words[:-1]):
        if w in ("$menuentry_id_option", "--id") or w.startswith("${menuentry_id_option"):
            return words[i + 1]
        if w.startswith("--id="):
            return w.split("=", 1)[1]
    return None


def parse_grub_cfg(text: str) -> GrubConfig:
    """Menu entries (with submenus), their kernels, and the ``set default=`` values. Heuristic but faithful to
    what grub-mkconfig writes: a line ending in ``{`` opens a block, a lone ``}`` closes one."""
    cfg = GrubConfig()
    stack: list[MenuItem | None] = []  # None: a block that is not a menu (a function)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        if "blscfg" in line.split():
            cfg.blscfg = True
        current = next((s for s in reversed(stack) if s is not None), None)
        if line.endswith("{"):
            words = _words(line[:-1])
            if words and words[0] in ("menuentry", "submenu") and len(words) > 1:
                item = MenuItem(words[1], _ident(words), children=[] if words[0] == "submenu" else None)
                siblings = current.children if current is not None and current.children is not None else cfg.items
                siblings.append(item)
                stack.append(item)
            else:
                stack.append(None)
            continue
        words = _words(line)
        if not words:
            continue
        if words[0] in ("linux", "linux16", "linuxefi") and len(words) > 1 and current is not None:
            if current.kernel is None and not current.is_submenu:
                current.kernel = kernel_of_image(words[1])
        elif words[0] == "set" and len(words) > 1 and words[1].startswith("default="):
            cfg.defaults.append(words[1].split("=", 1)[1])
    return cfg


def _find(items: list[MenuItem], part: str) -> MenuItem | None:
    if part.isascii() and part.isdigit():
        i = int(part)
        return items[i] if i < len(items) else None
    for item in items:
        if part in (item.title, item.ident):
            return item
    return None


def resolve(items: list[MenuItem], value: str) -> MenuItem | None:
    """A default value (index, title, id, or ``a>b`` path) → the entry it names; a submenu → its first entry."""
    level = items
    found: MenuItem | None = None
    for part in value.split(">"):
        found = _find(level, part)
        if found is None:
            return None
        level = found.children or []
    while found is not None and found.is_submenu:
        found = found.children[0] if found.children else None
    return found


def grub_default(cfg: GrubConfig, env: dict[str, str]) -> NextBoot:
    """The entry GRUB boots next according to grub.cfg and grubenv."""
    if not cfg.items:
        return NextBoot(None, "unknown", "grub.cfg has no menu entries")
    uses_next = any(v.strip() == "${next_entry}" for v in cfg.defaults)
    if uses_next and env.get("next_entry"):
        item = resolve(cfg.items, env["next_entry"])
        if item is not None:
            return _entry_answer(item.kernel, "grub.cfg entry named by grubenv next_entry", item.title)
    chosen = [v for v in cfg.defaults if v.strip() != "${next_entry}"]
    value = chosen[-1].strip() if chosen else "0"
    source = "grub.cfg set default"
    if value in ("${saved_entry}", "saved"):
        value = env.get("saved_entry", "") or "0"
        source = "grub.cfg entry named by grubenv saved_entry" if env.get("saved_entry") else "grub.cfg first entry"
    item = resolve(cfg.items, value)
    if item is None:
        item = resolve(cfg.items, "0")
        source = f"grub.cfg first entry ({value!r} names no entry)"
    if item is None:
        return NextBoot(None, "unknown", "grub.cfg: the default names no entry with a kernel")
    return _entry_answer(item.kernel, source, item.title)
