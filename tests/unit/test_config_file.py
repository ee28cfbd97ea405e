"""``--config FILE``: values for the verbs' options from TOML, below the command line and the environment.

Every bad file is ``ASRCTL-E006``, exit 2, with the file and the key named, the envelope on stdout with --json,
and nothing on the machine changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers_cli import Box, fixed_run_ids, make_box, run_captured  # noqa: F401

from asrctl.commands.settings import Setting

pytestmark = pytest.mark.usefixtures("fixed_run_ids")
SECRET = "Never-In-A-Config-7731"


@pytest.fixture
def box(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Box:
    return make_box(tmp_path_factory, tmp_path / "sb")


def _config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _install_argv(doc: dict) -> list[str]:
    return next(s for s in doc["data"]["plan"]["steps"] if s["id"] == "install")["argv"]


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_precedence_command_line_then_env_then_file_then_default(box: Box, tmp_path: Path, capsys, monkeypatch) -> None:
    cfg = _config(
        tmp_path / "asrctl.toml",
        'role = "MT"\nvm_platform = "Azure"\ninstall_dir = "/opt/from-file"\n'
        f'bundle_dir = "{box.bundles}"\nno_register = true\ncs_type = "CSPrime"\n',
    )
    monkeypatch.setenv("ASRCTL_VM_PLATFORM", "VmWare")
    monkeypatch.setenv("ASRCTL_INSTALL_DIR", "/opt/from-env")
    r = run_captured(
        ["--root", str(box.root), "--config", str(cfg), "install", "--dry-run", "--json", "--install-dir", "/opt/cli"],
        capsys,
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    argv = _install_argv(doc)
    assert _after(argv, "-r") == "MT"  # file (nothing above it)
    assert _after(argv, "-v") == "VmWare"  # env over file
    assert _after(argv, "-d") == str(box.root / "opt/cli")  # command line over env and file
    assert _after(argv, "-c") == "CSPrime"  # file (nothing above it)
    assert doc["data"]["bundle"]["path"].startswith(str(box.bundles))  # a global option from the file
    assert "register" not in [s["id"] for s in doc["data"]["plan"]["steps"]]  # no_register = true


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_the_file_can_be_named_anywhere(box: Box, tmp_path: Path, capsys, monkeypatch, where: str) -> None:
    cfg = _config(tmp_path / "c.toml", 'role = "MT"\nno_register = true\ncs_type = "CSLegacy"\n')
    verb = ["install", "--dry-run", "--json", *box.globals()]
    argv = {"before": ["--config", str(cfg), *verb], "after": [*verb, "--config", str(cfg)], "env": verb}[where]
    if where == "env":
        monkeypatch.setenv("ASRCTL_CONFIG", str(cfg))
    r = run_captured(argv, capsys)
    assert r.code == 0, r.err
    assert _after(_install_argv(json.loads(r.out)), "-r") == "MT"


def test_a_config_after_the_verb_replaces_the_one_before(box: Box, tmp_path: Path, capsys) -> None:
    first = _config(tmp_path / "first.toml", f'bundle_dir = "{tmp_path / "nowhere"}"\nrole = "MT"\n')
    second = _config(tmp_path / "second.toml", "no_register = true\n")
    r = run_captured(
        ["--config", str(first), "--root", str(box.root), "install", "--dry-run", "--json", "--config", str(second)],
        capsys,
    )
    # Neither the first file's bundle dir nor its role: the default bundle dir has no bundle (exit 4).
    assert r.code == 4, r.err
    assert json.loads(r.out)["error"]["code"] == "ASRCTL-E020"


def test_relative_paths_are_taken_from_the_file_s_directory(box: Box, tmp_path: Path, capsys, monkeypatch) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    cfg = _config(conf_dir / "asrctl.toml", 'bundle_dir = ["../sb/bundles"]\n')
    monkeypatch.chdir(box.root)
    r = run_captured(["--root", str(box.root), "--config", str(cfg), "bundles", "list", "--json"], capsys)
    assert r.code == 0, r.err
    assert json.loads(r.out)["data"]["dirs"] == [str(conf_dir / "../sb/bundles")]


def test_a_key_other_verbs_use_is_ignored_by_this_one(box: Box, tmp_path: Path, capsys) -> None:
    cfg = _config(tmp_path / "c.toml", 'role = "MT"\ntimeout = 60\ncs_endpoint = "10.0.0.5"\n')
    r = run_captured(["--config", str(cfg), "detect", "--json", "--root", str(box.root)], capsys)
    assert r.code == 0 and json.loads(r.out)["ok"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('cs_endpoint = "10.0.0.5\n', "not valid TOML: "),
        ("role = MT\n", "not valid TOML: "),
        ('cs_endpont = "10.0.0.5"\n', "unknown key 'cs_endpont' (did you mean 'cs_endpoint'?)"),
        ('cs-endpoint = "10.0.0.5"\n', "unknown key 'cs-endpoint' (did you mean 'cs_endpoint'?)"),
        ("dry_run = true\n", "unknown key 'dry_run'"),
        ('frobnicate = "x"\n', "unknown key 'frobnicate'"),
        ('[install]\nrole = "MT"\n', "key 'install' is a table"),
        ('timeout = "an hour"\n', "key 'timeout' must be a number, not a string"),
        ("timeout = true\n", "key 'timeout' must be a number, not true/false"),
        ('ps_port = "9443"\n', "key 'ps_port' must be an integer, not a string"),
        ("ps_port = 70000\n", "key 'ps_port': 70000 is not in the range 1<=x<=65535"),
        ("ps_port = 1.5\n", "key 'ps_port' must be an integer, not a number"),
        ('cs_type = "CSModern"\n', "key 'cs_type' must be one of CSLegacy, CSPrime, not 'CSModern'"),
        ("role = 1\n", "key 'role' must be one of MS, MT, not an integer"),
        ('require_digest = "yes"\n', "key 'require_digest' must be true or false, not a string"),
        ("cs_endpoint = 10\n", "key 'cs_endpoint' must be a string, not an integer"),
        ("bundle_dir = [1, 2]\n", "key 'bundle_dir' must be a string or a list of strings"),
        (b"role = '\xff'\n", "not UTF-8"),
    ],
)
def test_bad_files_are_usage_errors_naming_file_and_key(
    box: Box, tmp_path: Path, capsys, text: str | bytes, message: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    cfg.chmod(0o600)
    before = box.files()
    r = run_captured(["install", "--json", *box.globals(), "--config", str(cfg), "--no-register"], capsys)
    assert r.code == 2
    err = json.loads(r.out)["error"]
    assert err["code"] == "ASRCTL-E006"
    assert err["message"].startswith(f"{cfg}: ") and message in err["message"]
    assert err["remedy"]
    assert f"ASRCTL-E006: {cfg}: " in r.err
    assert box.files() == before


def test_a_passphrase_in_the_file_is_refused_and_never_repeated(box: Box, tmp_path: Path, capsys) -> None:
    cfg = _config(tmp_path / "c.toml", f'cs_endpoint = "10.0.0.5"\npassphrase = "{SECRET}"\n')
    before = box.files()
    r = run_captured(["--config", str(cfg), "register", "--json", *box.globals()], capsys)
    assert r.code == 2
    err = json.loads(r.out)["error"]
    assert err["code"] == "ASRCTL-E006"
    assert "key 'passphrase': a passphrase never goes into a config file" in err["message"]
    assert "passphrase_file" in err["remedy"]
    assert SECRET not in r.out + r.err
    assert box.files() == before  # nothing written, the log included
    # A misspelt key holding a secret is not echoed either.
    cfg.write_text(f'cs_passphrase = "{SECRET}"\n')
    r = run_captured(["--config", str(cfg), "register", "--json", *box.globals()], capsys)
    assert r.code == 2 and SECRET not in r.out + r.err


def test_a_file_others_can_change_is_refused(box: Box, tmp_path: Path, capsys) -> None:
    cfg = _config(tmp_path / "c.toml", 'role = "MT"\n', mode=0o666)
    r = run_captured(["--config", str(cfg), "install", "--json", "--dry-run", *box.globals()], capsys)
    assert r.code == 2
    err = json.loads(r.out)["error"]
    assert err["code"] == "ASRCTL-E006" and "other users can change the config file (mode 0666)" in err["message"]
    assert "chmod go-w" in err["remedy"]
    cfg.chmod(0o644)
    assert (
        run_captured(
            ["--config", str(cfg), "install", "--dry-run", "--no-register", "--cs-type", "CSLegacy", *box.globals()],
            capsys,
        ).code
        == 0
    )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the file away")
def test_a_file_owned_by_another_user_is_refused(box: Box, tmp_path: Path, capsys) -> None:
    cfg = _config(tmp_path / "c.toml", 'role = "MT"\n', mode=0o600)
    os.chown(cfg, 4321, 4321)
    r = run_captured(["--config", str(cfg), "detect", "--json", *box.globals()], capsys)
    assert r.code == 2
    assert "belongs to uid 4321, not to you or root" in json.loads(r.out)["error"]["message"]


def test_a_missing_file_is_a_usage_error(box: Box, tmp_path: Path, capsys) -> None:
    r = run_captured(["detect", "--json", "--config", str(tmp_path / "none.toml")], capsys)
    assert r.code == 2
    err = json.loads(r.out)["error"]
    assert err["code"] == "ASRCTL-E006" and "cannot read the config file" in err["message"]
    # For SCCM/Intune a bad config file is bad arguments, wherever --exit-codes stood.
    msi = run_captured(["detect", "--config", str(tmp_path / "none.toml"), "--exit-codes", "msi"], capsys)
    assert msi.code == 1639


def test_help_shows_the_keys_and_the_precedence(capsys) -> None:
    r = run_captured(["install", "--help"], capsys)
    text = " ".join(r.out.split())
    for key in ("cs_endpoint", "passphrase_file", "role", "vm_platform", "install_dir", "require_digest", "timeout"):
        assert f"config: {key}" in text
    assert "config: dry_run" not in text and "config: passphrase_stdin" not in text
    assert "else from its environment variable, else from the --config file (TOML), else from the default" in text


def test_every_declaration_of_a_key_agrees_on_its_type() -> None:
    import click

    from asrctl.cli import cli
    from asrctl.commands.settings import settings_by_key

    ctx = click.Context(cli, info_name="asrctl")
    found = settings_by_key(ctx)
    assert {"cs_endpoint", "passphrase_file", "bundle_dir", "require_digest", "install_dir"} <= set(found)
    assert "passphrase" not in found and "sha256" not in found and "yes" not in found
    for key, declarations in found.items():
        shapes = {
            (type(o.type).__name__, o.multiple, o.is_flag, str(getattr(o.type, "choices", ""))) for _, o in declarations
        }
        assert len(shapes) == 1, (key, [p for p, _ in declarations])
        assert all(isinstance(o, Setting) for _, o in declarations)
