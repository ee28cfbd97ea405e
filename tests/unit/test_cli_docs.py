"""The contract in the repository stays true: docs/CLI.md names every verb, option variable and config key the
code declares, and no link in README.md or docs/ leaves the repository."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from asrctl.cli import cli
from asrctl.commands.settings import Setting, all_commands

REPO = Path(__file__).resolve().parents[2]
CLI_MD = (REPO / "docs/CLI.md").read_text(encoding="utf-8")
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _commands() -> list[tuple[str, click.Command]]:
    return [(path, cmd) for path, cmd in all_commands(click.Context(cli, info_name="asrctl")) if path]


def test_every_verb_is_in_the_contract() -> None:
    for path, _ in _commands():
        assert f"`{path}" in CLI_MD or f"`{path.split()[0]} " in CLI_MD, path


def test_every_variable_and_config_key_is_in_the_contract() -> None:
    settings = [p for _, cmd in _commands() for p in cmd.params if isinstance(p, Setting)]
    assert len({p.envvar for p in settings}) >= 25
    for p in settings:
        assert f"`{p.envvar}" in CLI_MD, p.envvar
        if p.config_key:
            assert f"`{p.config_key}`" in CLI_MD, p.config_key


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_stay_in_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{doc.name} points outside the repository"
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path = target.split("#", 1)[0]
        if not path:
            continue
        resolved = (doc.parent / path).resolve()
        assert resolved.is_relative_to(REPO), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
