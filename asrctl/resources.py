"""Find the data shipped with asrctl (``platforms/``) in every install mode: wheel, editable, frozen."""

from __future__ import annotations

import sys
from pathlib import Path


def platform_data(name: str) -> str:
    """The text of ``platforms/<name>``."""
    frozen_dir = getattr(sys, "_MEIPASS", None)
    if frozen_dir:
        candidate = Path(frozen_dir) / "asrctl" / "platforms" / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    try:
        from importlib.resources import files

        resource = files("asrctl.platforms").joinpath(name)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except ModuleNotFoundError:
        pass
    # A source checkout run without installing (PYTHONPATH=.): platforms/ sits beside the package.
    return (Path(__file__).resolve().parent.parent / "platforms" / name).read_text(encoding="utf-8")
