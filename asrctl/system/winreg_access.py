"""Windows-only access (registry, elevation). Imported lazily, only on Windows, so the suite runs anywhere."""

from __future__ import annotations

from typing import Any


def read_hklm(key: str, value: str, view64: bool = True) -> Any:
    """Read ``HKLM\\key\\value``; None when the key or value does not exist."""
    import winreg  # type: ignore[import-not-found]

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access) as handle:
            data, _kind = winreg.QueryValueEx(handle, value)
            return data
    except FileNotFoundError:
        return None
    except OSError:
        return None


def key_exists(key: str, view64: bool = True) -> bool:
    import winreg  # type: ignore[import-not-found]

    access = winreg.KEY_READ | (winreg.KEY_WOW64_64KEY if view64 else 0)
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key, 0, access):
            return True
    except OSError:
        return False


def is_admin() -> bool:
    import ctypes

    try:
        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False
