"""An in-memory HKLM for the Windows backend's tests; implements asrctl.system.winreg_access.Registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
