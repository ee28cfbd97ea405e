"""Global options where people type them: before the verb, after it (after the subcommand too), or both.

For every verb, the same options in another place give the byte-identical JSON document, the same stderr and the
same exit code, in a sandbox laid out afresh for each run. Given in both places, the one after the verb wins;
repeatable options add up.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from helpers_cli import Box, closed_port, fixed_run_ids, make_box, run_captured  # noqa: F401

from asrctl.cli import cli
from asrctl.commands.settings import GLOBAL_NAMES, Setting, add_global_options

pytestmark = pytest.mark.usefixtures("fixed_run_ids")


@pytest.fixture
def box(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Box:
    return make_box(tmp_path_factory, tmp_path / "sb")


def _verbs(box: Box, port: int) -> dict[str, list[str]]:
    """Every verb and subcommand, with arguments that make it do its work (or fail the same way each time)."""
    url = f"https://127.0.0.1:{port}/{box.bundle.name}"
    return {
        "detect": ["detect"],
        "bundles list": ["bundles", "list"],
        "bundles verify": ["bundles", "verify"],
        "bundles checksum": ["bundles", "checksum", str(box.bundles)],
        "bundles extract": ["bundles", "extract", str(box.bundle), str(box.base / "unpacked")],
        "bundles fetch": ["bundles", "fetch", url, "--retries", "0", "--timeout", "1", "--to", str(box.base / "f")],
        "install": ["install", "--no-register", "--cs-type", "CSLegacy", "--dry-run"],
        "install registering": [
            "install",
            "--cs-endpoint",
            f"127.0.0.1:{port}",
            "--passphrase-file",
            str(box.passphrase_file),
            "--skip-connectivity-check",
            "--dry-run",
        ],  # fmt: skip
        "upgrade": ["upgrade", "--dry-run"],
        "register": [
            "register",
            "--cs-endpoint",
            f"127.0.0.1:{port}",
            "--passphrase-file",
            str(box.passphrase_file),
            "--dry-run",
        ],  # fmt: skip
        "uninstall": ["uninstall", "-Y"],
        "status": ["status"],
        "doctor": ["doctor", "--cs-endpoint", f"127.0.0.1:{port}", "--connect-timeout", "1", "--ps-port", str(port)],
        "vm-agent status": ["vm-agent", "status"],
        "vm-agent install": ["vm-agent", "install", "--dry-run"],
        "logs collect": ["logs", "collect", "-o", str(box.base / "support.tar.gz")],
        "completion": ["completion", "bash"],
    }


def _depth(argv: list[str]) -> int:
    """How many words name the command (``bundles list`` → 2)."""
    return 2 if argv[0] in ("bundles", "vm-agent", "logs") else 1


VERBS = [
    "detect", "bundles list", "bundles verify", "bundles checksum", "bundles extract", "bundles fetch", "install",
    "install registering", "upgrade", "register", "uninstall", "status", "doctor", "vm-agent status",
    "vm-agent install", "logs collect", "completion",
]  # fmt: skip


def _stable(out: str) -> str:
    """The document without what differs from one run to the next by nature: logs collect's manifest says when it
    was made and how many bytes it kept of each file, and asrctl's own log grows with every run."""
    doc = json.loads(out)
    manifest = (doc.get("data") or {}).get("manifest")
    if manifest:
        manifest.pop("created")
        manifest.pop("totals")
        for entry in (*manifest["files"], *manifest["reports"]):
            for key in ("size", "kept", "bytes", "redacted", "truncated"):
                entry.pop(key, None)
    return json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize("verb", VERBS)
def test_every_placement_gives_the_same_document(box: Box, capsys, verb: str) -> None:
    with closed_port() as port:
        argv = _verbs(box, port)[verb]
        n = _depth(argv)
        g = [*box.globals(), "--json", "-q"]
        placements = {
            "before": [*g, *argv],
            "after": [*argv, *g],
            "split": ["--json", *argv[:n], "-q", *argv[n:], *box.globals()],
        }
        if n == 2:  # between the group and its subcommand: `asrctl bundles --json list`
            placements["between"] = [argv[0], *g, *argv[1:]]
        outcomes = {}
        for name, line in placements.items():
            box.reset()
            outcomes[name] = run_captured(line, capsys)
    first = outcomes["before"]
    doc = json.loads(first.out)
    assert doc["command"] == " ".join(argv[:n])
    for name, outcome in outcomes.items():
        assert _stable(outcome.out) == _stable(first.out), name
        assert outcome.err == first.err, name
        assert outcome.code == first.code, name


def test_the_issue_s_two_command_lines(box: Box, capsys) -> None:
    a = run_captured(["--root", str(box.root), "detect", "--json"], capsys)
    b = run_captured(["--json", "--root", str(box.root), "detect"], capsys)
    assert a.code == b.code == 0
    assert a.out == b.out and json.loads(a.out)["data"]["platform"]["os_tag"] == "UBUNTU-22.04-64"


def test_after_the_verb_wins(box: Box, tmp_path: Path, capsys) -> None:
    ubuntu_2310 = tmp_path / "u2310"
    (ubuntu_2310 / "etc").mkdir(parents=True)
    (ubuntu_2310 / "etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=23.10\n")
    # --root: the one after the verb is the one used.
    after = run_captured(["--root", str(ubuntu_2310), "detect", "--root", str(box.root), "--json"], capsys)
    assert after.code == 0 and json.loads(after.out)["data"]["platform"]["version"] == "22.04"
    before = run_captured(["--root", str(box.root), "detect", "--root", str(ubuntu_2310), "--json"], capsys)
    assert before.code == 3 and json.loads(before.out)["data"]["platform"]["version"] == "23.10"
    # --exit-codes: the same rule.
    u2310 = ["--root", str(ubuntu_2310)]
    assert run_captured(["--exit-codes", "msi", "detect", *u2310, "--exit-codes", "asrctl"], capsys).code == 3
    assert run_captured(["--exit-codes", "asrctl", "detect", *u2310, "--exit-codes", "msi"], capsys).code == 1633


def test_repeatable_options_add_up(box: Box, tmp_path: Path, capsys) -> None:
    other = tmp_path / "more-bundles"
    other.mkdir()
    r = run_captured(
        ["--bundle-dir", str(box.bundles), "bundles", "list", "--bundle-dir", str(other), "--json"], capsys
    )
    assert r.code == 0
    assert json.loads(r.out)["data"]["dirs"] == [str(box.bundles), str(other)]
    # -v before and after: -vv (the version line shows build facts only from -v on; count it in the App instead)
    from asrctl import cli as cli_module

    run_captured(["-v", "--root", str(box.root), "detect", "-v", "--json"], capsys)
    assert cli_module._current is not None and cli_module._current.out.verbosity == 2
    run_captured(["-v", "--root", str(box.root), "detect", "-q", "--json"], capsys)
    assert cli_module._current.out.verbosity == -1


def test_environment_and_command_line_after_the_verb(box: Box, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ASRCTL_ROOT", str(box.base / "no-such-root"))
    monkeypatch.setenv("ASRCTL_JSON", "1")
    r = run_captured(["detect", "--root", str(box.root)], capsys)
    assert r.code == 0 and json.loads(r.out)["ok"] is True
    bad = run_captured(["detect"], capsys)
    assert bad.code == 2 and json.loads(bad.out)["error"]["code"] == "ASRCTL-E012"


def test_usage_error_after_the_verb_still_answers_in_json_and_msi(capsys) -> None:
    r = run_captured(["detect", "--no-such-option", "--json", "--exit-codes", "msi"], capsys)
    assert r.code == 1639
    doc = json.loads(r.out)
    assert doc["error"]["code"] == "ASRCTL-E002" and "no-such-option" in doc["error"]["message"]


def _every_command() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli, info_name="asrctl")
    found = []

    def walk(path: str, cmd: click.Command) -> None:
        found.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(f"{path} {name}".strip(), sub)

    walk("", cli)
    return found


def test_every_command_takes_the_global_options_and_shows_them(capsys) -> None:
    commands = _every_command()
    assert {p for p, _ in commands} >= {"detect", "bundles list", "vm-agent status", "logs collect", "completion"}
    for path, cmd in commands:
        names = {p.name for p in cmd.params}
        assert set(GLOBAL_NAMES) <= names, path
        r = run_captured([*path.split(), "--help"], capsys)
        assert r.code == 0, path
        for var in ("ASRCTL_ROOT", "ASRCTL_BUNDLE_DIR", "ASRCTL_JSON", "ASRCTL_EXIT_CODES", "ASRCTL_CONFIG"):
            assert var in r.out, (path, var)
        assert "the one after the verb wins" in " ".join(r.out.split()), path


@pytest.mark.parametrize("verb", ["install", "upgrade", "register"])
def test_every_option_of_the_changing_verbs_has_an_env_var_shown_in_help(verb: str, capsys) -> None:
    cmd = dict(_every_command())[verb]
    r = run_captured([verb, "--help"], capsys)
    help_text = " ".join(r.out.split())
    own = [p for p in cmd.params if p.name not in GLOBAL_NAMES and p.name not in ("help", "config_path")]
    assert len(own) >= 5
    for param in own:
        assert isinstance(param, Setting), (verb, param.name)
        key = param.opts[-1].lstrip("-").replace("-", "_")
        assert param.envvar == f"ASRCTL_{key.upper()}", (verb, param.name)
        assert f"ASRCTL_{key.upper()}" in help_text, (verb, param.name)
    # Examples in the help text.
    assert "Examples:" in r.out and f"asrctl {verb} " in r.out


@pytest.mark.parametrize(
    ("env", "value", "what"),
    [
        ("ASRCTL_DRY_RUN", "1", "dry run"),
        ("ASRCTL_ROLE", "MT", "role"),
        ("ASRCTL_INSTALL_DIR", "/opt/from-env", "install dir"),
    ],
)
def test_verb_options_come_from_their_env_vars(box: Box, capsys, monkeypatch, env: str, value: str, what: str) -> None:
    monkeypatch.setenv(env, value)
    args = ["install", "--no-register", "--cs-type", "CSLegacy", "--json", *box.globals()]
    if env != "ASRCTL_DRY_RUN":
        args.append("--dry-run")
    before = box.files()
    r = run_captured(args, capsys)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    argv = next(s for s in doc["data"]["plan"]["steps"] if s["id"] == "install")["argv"]
    if what == "role":
        assert argv[argv.index("-r") + 1] == "MT"
    elif what == "install dir":
        assert argv[argv.index("-d") + 1] == str(box.root / "opt/from-env")
    assert box.files() == before  # a dry run, whichever way it was asked for


def test_a_bad_env_value_is_a_usage_error_naming_the_option(box: Box, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ASRCTL_PS_PORT", "ninety")
    r = run_captured(["doctor", "--json", *box.globals()], capsys)
    assert r.code == 2
    assert "--ps-port" in json.loads(r.out)["error"]["message"]


def test_a_verb_option_hiding_a_global_one_is_refused() -> None:
    @click.command()
    @click.option("--json", is_flag=True)
    def clash(json: bool) -> None:  # pragma: no cover - never run
        pass

    with pytest.raises(RuntimeError, match="--json hides a global option"):
        add_global_options(clash)
