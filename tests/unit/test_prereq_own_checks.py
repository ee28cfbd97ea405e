"""asrctl's own prerequisite checks (a bundle without Microsoft's checker) read their inputs as every input is read:
regular files only, never blocking. A FIFO where the Secure Boot variable or the bundle's supported_kernels should
be must neither hang the preflight nor pass as "supported"."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from asrctl.app import App
from asrctl.lifecycle import prereq
from asrctl.output import Output

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/distros"


def _app(root: Path) -> App:
    import shutil

    shutil.copytree(FIXTURES / "ubuntu-22.04", root, symlinks=True)
    app = App(root_arg=str(root), bundle_dir_args=(str(root.parent / "bundles"),), out=Output(verbosity=-1))
    (root / "lib/modules" / app.facts.kernel / "kernel/drivers/char").mkdir(parents=True)
    return app


def _checks(app: App, staged: Path) -> list[str]:
    """own_checks in a thread, so that a hang fails the test instead of stalling the suite."""
    found: list[list[str]] = []
    worker = threading.Thread(target=lambda: found.append([e.name for e in prereq.own_checks(app, staged)]))
    worker.daemon = True
    worker.start()
    worker.join(60)
    assert found, "own_checks blocked on its input"
    return found[0]


def _secure_boot(root: Path) -> Path:
    var = root / prereq.SECURE_BOOT_VAR.lstrip("/")
    var.parent.mkdir(parents=True)
    return var


def test_a_listed_kernel_passes_and_secure_boot_is_read_from_its_variable(tmp_path: Path) -> None:
    app = _app(tmp_path / "root")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "supported_kernels").write_text(f"5.15.0-25-generic\n{app.facts.kernel}\n")
    assert _checks(app, staged) == []
    _secure_boot(app.paths.root).write_bytes(b"\x06\x00\x00\x00\x01")
    assert _checks(app, staged) == ["ASRMobilityServiceSecureBootEnabled"]


@pytest.mark.parametrize("where", ["secure-boot variable", "supported_kernels"])
def test_a_fifo_never_hangs_the_checks(tmp_path: Path, where: str) -> None:
    app = _app(tmp_path / "root")
    staged = tmp_path / "staged"
    staged.mkdir()
    if where == "supported_kernels":
        os.mkfifo(staged / "supported_kernels")
        # Fail closed: a list that cannot be read supports nothing.
        assert _checks(app, staged) == ["ASRMobilityServiceKernelNotSupported"]
    else:
        (staged / "supported_kernels").write_text(app.facts.kernel + "\n")
        os.mkfifo(_secure_boot(app.paths.root))
        assert _checks(app, staged) == []
