"""Windows-only access (registry, elevation), behind a small interface so the Windows code runs anywhere.

``winreg`` and ``ctypes.windll`` are imported inside the functions that need them, never at module import, so
the whole test suite imports this module on Linux. :class:`WinRegistry` reads the real HKLM (64-bit view);
the tests give the Windows backend an in-memory registry instead (tests/fakes/registry.py).
"""

from __future__ import annotations

from typing import Any, Protocol

# What a registry value holds, as winreg returns it: REG_SZ/EXPAND_SZ → str, REG_DWORD/QWORD → int,
# REG_BINARY → bytes, REG_MULTI_SZ → list of str.
RegistryValue = str | int | bytes | list[str]


class Registry(Protocol):
    """Read-only HKLM access. Key paths are relative to HKLM, with backslashes; names are case-insensitive."""

    def read(self, key: str, value: str) -> RegistryValue | None:
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


def read_hklm(key: str, value: str, view64: bool = True) -> RegistryValue | None:
    """Read ``HKLM\\key\\value``; None when the key or value does not exist."""
    winreg = _winreg()

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access) as handle:
            data: RegistryValue = winreg.QueryValueEx(handle, value)[0]
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

    def read(self, key: str, value: str) -> RegistryValue | None:
        return read_hklm(key, value)

    def exists(self, key: str) -> bool:
        return key_exists(key)

    def subkeys(self, key: str) -> list[str]:
        return subkeys_of(key)


def is_admin() -> bool:
    """True in an elevated process (a member of Administrators with the full token)."""
    import ctypes

    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False
