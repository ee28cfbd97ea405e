"""docs/CLI.md is the whole command-line contract, checked against the code: every verb, every option of every
verb (in the options table with that verb named, or in the verb's own row), every global option, every exit code
and every ``ASRCTL-E`` code of the catalogue, with its exit code and title. And the catalogue holds no dead code:
each one is used in asrctl/ or marked retired."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from asrctl import errors
from asrctl.cli import cli
from asrctl.commands.settings import all_commands

REPO = Path(__file__).resolve().parents[2]
CLI_MD = (REPO / "docs/CLI.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    start = CLI_MD.index(f"\n## {heading}\n")
    end = CLI_MD.find("\n## ", start + 1)
    return CLI_MD[start : end if end >= 0 else len(CLI_MD)]


def _rows(heading: str) -> list[list[str]]:
    """The cells of every body row of the tables in one section (`\\|` inside a cell is a literal bar)."""
    rows = []
    for line in _section(heading).splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append(cells)
    return [r for r in rows if r[0] not in ("option", "verb", "code", "exit")]  # the header rows


def _mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def _flags(param: click.Parameter) -> list[str]:
    return [o for o in (*param.opts, *getattr(param, "secondary_opts", ())) if o.startswith("-")]


def _variants(spec: str) -> set[str]:
    """``vm-agent status|install`` → both paths; ``bundles verify/extract/fetch`` → three."""
    words = spec.split()
    if not words:
        return set()
    last = re.split(r"[|/]", words[-1])
    return {" ".join([*words[:-1], w]) for w in last}


def _commands() -> dict[str, click.Command]:
    return {path: cmd for path, cmd in all_commands(click.Context(cli, info_name="asrctl"))}


def _leaves() -> dict[str, click.Command]:
    return {p: c for p, c in _commands().items() if p and not isinstance(c, click.Group)}


GLOBAL_FLAGS = {f for p in cli.params if p.name != "help" for f in _flags(p)}


def _global_table() -> str:
    return "\n".join(r[0] for r in _rows("Global options (before or after the verb)"))


def _verb_rows() -> dict[str, str]:
    """Each documented command path → the text of its row in the Verbs table."""
    found: dict[str, str] = {}
    for row in _rows("Verbs"):
        code = re.match(r"`([^`]*)`", row[0])
        assert code, f"a Verbs row that does not start with the verb in backticks: {row[0]}"
        words = []
        for word in code.group(1).split():
            if word.startswith(("[", "-")) or word.isupper():
                break
            words.append(word)
        for path in _variants(" ".join(words)):
            found[path] = " | ".join(row)
    return found


def _verb_row(path: str) -> str | None:
    """The Verbs row of a command path; ``completion`` is documented by its row ``completion bash|zsh|fish``."""
    rows = _verb_rows()
    return rows.get(path) or next((row for doc, row in rows.items() if doc.startswith(path + " ")), None)


def _option_rows() -> list[tuple[str, set[str]]]:
    """Each row of the verbs' options table: (its option cell, the command paths it names)."""
    out = []
    for row in _rows("Options of the verbs"):
        verbs = set()
        for entry in row[3].split(","):
            verbs |= _variants(entry.strip())
        out.append((row[0], verbs))
    return out


def test_the_tables_are_read() -> None:
    # The checks below pass vacuously on tables this reader cannot see: it must see all of them.
    assert len(_rows("Global options (before or after the verb)")) >= 8
    assert {"install", "bundles fetch", "vm-agent install", "kernel lists fetch", "completion bash"} <= set(
        _verb_rows()
    )
    assert len(_option_rows()) >= 25 and any("drivers install" in v for _, v in _option_rows())
    assert len(_rows("Exit codes")) >= 14 and len(_rows("Error codes")) >= len(errors.CATALOGUE)


@pytest.mark.parametrize("path", sorted(_leaves()))
def test_every_verb_has_its_row(path: str) -> None:
    assert _verb_row(path) is not None, f"docs/CLI.md's Verbs table has no row for `{path}`"


def test_every_global_option_is_in_the_global_table() -> None:
    table = _global_table()
    missing = sorted(f for f in GLOBAL_FLAGS if not _mentions(table, f))
    assert missing == [], f"global options missing from docs/CLI.md's global table: {missing}"


@pytest.mark.parametrize("path", sorted(_leaves()))
def test_every_option_of_a_verb_is_documented_for_that_verb(path: str) -> None:
    row = _verb_row(path) or ""
    options = _option_rows()
    missing = []
    for param in _leaves()[path].params:
        for flag in _flags(param):
            if flag in GLOBAL_FLAGS or flag == "--help":
                continue
            if _mentions(row, flag):
                continue
            if any(_mentions(cell, flag) and path in verbs for cell, verbs in options):
                continue
            missing.append(flag)
    assert missing == [], f"`{path}`: options docs/CLI.md does not give for it: {missing}"


def test_every_option_row_names_real_verbs_that_have_it() -> None:
    leaves = _leaves()
    wrong = []
    for cell, verbs in _option_rows():
        flags = re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", cell.split(" ")[0])
        for path in verbs:
            if path not in leaves:
                wrong.append(f"{cell}: no verb `{path}`")
                continue
            have = {f for p in leaves[path].params for f in _flags(p)}
            wrong += [f"{cell}: `{path}` has no {f}" for f in flags if f not in have]
    assert wrong == []


def test_every_exit_code_is_in_the_table_and_only_those() -> None:
    code_exits = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and isinstance(v, int)}
    table = {int(r[0]) for r in _rows("Exit codes") if r[0].isdigit()}
    assert table == code_exits


def test_every_catalogue_code_is_documented_with_its_exit_and_title() -> None:
    rows = {r[0].strip("`"): r for r in _rows("Error codes")}
    assert set(rows) == set(errors.CATALOGUE), "docs/CLI.md's Error codes table and asrctl/errors.py disagree"
    for code, spec in errors.CATALOGUE.items():
        _, exit_code, title = rows[code][:3]
        assert int(exit_code) == spec.exit, code
        assert spec.title.lower() in title.lower(), f"{code}: the table says {title!r}, the catalogue {spec.title!r}"
        assert ("retired" in title.lower()) == (code in errors.RETIRED), code


def _code_constants() -> dict[str, list[str]]:
    """Every string constant in asrctl/ that is exactly a catalogue code: a raise, a table entry, a default. In
    errors.py only its functions count (``from_os_error`` maps operating-system errors to codes), not the catalogue
    itself or RETIRED. A docstring that only mentions a code is a longer string and does not count."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "asrctl").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scopes: list[ast.AST] = [tree]
        if path == REPO / "asrctl/errors.py":
            scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in (n for scope in scopes for n in ast.walk(scope)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in errors.CATALOGUE:
                found.setdefault(node.value, []).append(str(path.relative_to(REPO)))
    return found


def test_every_code_is_used_or_retired() -> None:
    used = _code_constants()
    assert len(used) > 50  # the scan sees the codes the product raises
    dead = sorted(c for c in errors.CATALOGUE if c not in used and c not in errors.RETIRED)
    assert dead == [], f"codes nothing raises: use them or add them to errors.RETIRED (never delete or reuse): {dead}"
    revived = {c: used[c] for c in errors.RETIRED if c in used}
    assert revived == {}, f"retired codes are used again (a retired code is never reused): {revived}"
