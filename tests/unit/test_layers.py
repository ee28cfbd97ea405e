"""The import-linter contracts in setup.cfg (the layers of docs/ARCHITECTURE.md) hold, and they bite: an upward
import, even a lazy one inside a function, breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e .[dev])"
)


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "src"
    shutil.copytree(REPO / "asrctl", tree / "asrctl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.cfg", tree / "setup.cfg")
    return tree


def test_the_contracts_are_kept(tmp_path: Path) -> None:
    proc = _lint(_copy(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        # the cycle that was there: the VM agent's package knowledge calling back into the lifecycle
        ("agent/vmagent.py", "asrctl.lifecycle.preconditions"),
        # the lifecycle reaching up into the command line
        ("lifecycle/status.py", "asrctl.commands.common"),
        # the pure core depending on the support matrix
        ("bundles/names.py", "asrctl.matrix"),
        # one verb calling another
        ("lifecycle/upgrade.py", "asrctl.lifecycle.install"),
        # a backend depending on the other backend
        ("agent/linux.py", "asrctl.agent.windows"),
    ],
)
def test_an_upward_import_breaks_them_even_when_lazy(tmp_path: Path, module: str, imported: str) -> None:
    tree = _copy(tmp_path)
    path = tree / "asrctl" / module
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n\ndef _sneaky() -> None:\n    import {imported}  # noqa\n",
        encoding="utf-8",
    )
    proc = _lint(tree)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    importer = "asrctl." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in proc.stdout, proc.stdout


def test_a_new_top_level_module_must_be_placed_in_a_layer(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    (tree / "asrctl" / "newthing.py").write_text('"""Not in any layer yet."""\n', encoding="utf-8")
    proc = _lint(tree)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "newthing" in proc.stdout


DOUBLES = {"RecordingRunner", "Scripted", "MemoryRegistry", "MemoryFiles", "ServiceInfo", "WindowsRunner"}


def test_no_test_double_ships_in_the_product() -> None:
    """The doubles live in tests/fakes/: nothing in asrctl/ defines one or imports the tests."""
    import ast

    found = []
    for path in sorted((REPO / "asrctl").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in DOUBLES:
                found.append(f"{path.relative_to(REPO)}: class {node.name}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("fakes", "tests"):
                found.append(f"{path.relative_to(REPO)}: from {node.module} import ...")
    assert found == []
