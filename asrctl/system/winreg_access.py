"""Windows-only access (registry, elevation), behind a small interface so the Windows code runs anywhere.

``winreg`` and ``ctypes.windll`` are imported inside the functions that need them, never at module import, so
the whole test suite imports this module on Linux. :class:`WinRegistry` reads the real HKLM (64-bit view);
:class:`MemoryRegistry` is the in-memory stand-in the Windows backend is tested with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Registry(Protocol):
    """Read-only HKLM access. Key paths are relative to HKLM, with backslashes; names are case-insensitive."""

    def read(self, key: str, value: str) -> Any:
        """The value's data, or None when the key or the value does not exist."""
        ...

    def exists(self, key: str) -> bool: ...

    def subkeys(self, key: str) -> list[str]:
        """Names of the direct subkeys; empty when the key does not exist."""
        ...


def _winreg() -> Any:
    """The ``winreg`` module (Windows only), typed loosely: its stubs are empty on other platforms."""
    import winreg

    return winreg


def read_hklm(key: str, value: str, view64: bool = True) -> Any:
    """Read ``HKLM\\key\\value``; None when the key or value does not exist."""
    winreg = _winreg()

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access) as handle:
            data, _kind = winreg.QueryValueEx(handle, value)
            return data
    except OSError:  # FileNotFoundError included
        return None


def key_exists(key: str, view64: bool = True) -> bool:
    winreg = _winreg()

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access):
            return True
    except OSError:
        return False


def subkeys_of(key: str, view64: bool = True) -> list[str]:
    winreg = _winreg()

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    names: list[str] = []
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access) as handle:
            index = 0
            while True:
                try:
                    names.append(winreg.EnumKey(handle, index))
                except OSError:  # no more subkeys
                    break
                index += 1
    except OSError:
        return []
    return names


class WinRegistry:
    """The real registry (HKLM, 64-bit view: explicit ``Wow6432Node`` paths reach the 32-bit hive)."""

    def read(self, key: str, value: str) -> Any:
        return read_hklm(key, value)

    def exists(self, key: str) -> bool:
        return key_exists(key)

    def subkeys(self, key: str) -> list[str]:
        return subkeys_of(key)


def _norm(key: str) -> str:
    return "\\".join(part for part in key.replace("/", "\\").split("\\") if part).lower()


class MemoryRegistry:
    """An in-memory HKLM: ``{key path: {value name: data}}``. Every parent of a listed key exists too."""

    def __init__(self, keys: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._keys: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, values in (keys or {}).items():
            self.set(key, values)

    def set(self, key: str, values: Mapping[str, Any] | None = None) -> None:
        name = "\\".join(part for part in key.replace("/", "\\").split("\\") if part)
        _, existing = self._keys.get(_norm(key), (name, {}))
        existing.update({k.lower(): v for k, v in (values or {}).items()})
        self._keys[_norm(key)] = (name, existing)

    def delete(self, key: str) -> None:
        prefix = _norm(key)
        for k in [k for k in self._keys if k == prefix or k.startswith(prefix + "\\")]:
            del self._keys[k]

    def read(self, key: str, value: str) -> Any:
        entry = self._keys.get(_norm(key))
        return None if entry is None else entry[1].get(value.lower())

    def exists(self, key: str) -> bool:
        want = _norm(key)
        return any(k == want or k.startswith(want + "\\") for k in self._keys)

    def subkeys(self, key: str) -> list[str]:
        want = _norm(key)
        found: dict[str, str] = {}
        for k, (name, _values) in self._keys.items():
            if k.startswith(want + "\\"):
                depth = want.count("\\") + 1
                child = name.split("\\")[depth]
                found.setdefault(child.lower(), child)
        return sorted(found.values(), key=str.lower)


def is_admin() -> bool:
    """True in an elevated process (a member of Administrators with the full token)."""
    import ctypes

    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False
