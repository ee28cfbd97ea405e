"""Run asrctl in-process in a sandbox that can be laid out again, identically, at the same path.

Comparing two command lines byte for byte needs two runs that see the same machine: :class:`Box` lays out an
Ubuntu 22.04 root, a bundle dir with a simulated bundle and its SHA256SUMS, and a 0600 passphrase file, and
``reset()`` puts exactly that back.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TAG = "UBUNTU-22.04-64"
VERSION = "9.65.7417.1"
_TEMPLATE: dict[str, Path] = {}


def _template(cache: Path) -> Path:
    """The sandbox once, built on first use (the bundle builder is the slow part)."""
    if "box" not in _TEMPLATE:
        from asrsim.bundle import build_bundle

        from asrctl.bundles.digest import write_sums

        tpl = cache / "template"
        shutil.copytree(REPO / "tests/fixtures/distros/ubuntu-22.04", tpl / "root", symlinks=True)
        (tpl / "root/etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
        (tpl / "bundles").mkdir()
        build_bundle(VERSION, TAG, tpl / "bundles", date="23Apr2025")
        write_sums(tpl / "bundles")
        pf = tpl / "cs.passphrase"
        pf.write_text("Sandbox-Passphrase-41\n")
        pf.chmod(0o600)
        _TEMPLATE["box"] = tpl
    return _TEMPLATE["box"]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@dataclass
class Box:
    base: Path
    template: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def bundles(self) -> Path:
        return self.base / "bundles"

    @property
    def passphrase_file(self) -> Path:
        return self.base / "cs.passphrase"

    @property
    def bundle(self) -> Path:
        return next(self.bundles.glob("Microsoft-ASR_UA_*"))

    def reset(self) -> None:
        if self.base.exists():
            shutil.rmtree(self.base)
        shutil.copytree(self.template, self.base, symlinks=True)

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.base)): p.read_bytes() for p in sorted(self.base.rglob("*")) if p.is_file()}

    def globals(self) -> list[str]:
        return ["--root", str(self.root), "--bundle-dir", str(self.bundles)]


def make_box(tmp_path_factory: pytest.TempPathFactory, base: Path) -> Box:
    box = Box(base, _template(tmp_path_factory.getbasetemp() / "asrctl-cli-template"))
    box.reset()
    return box


def run_captured(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    from asrctl.cli import run

    capsys.readouterr()
    code = run(argv)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


@pytest.fixture
def fixed_run_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans name a random run id (the staging directory); two runs compared byte for byte need the same one."""
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=0x5EED))


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it) and never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
