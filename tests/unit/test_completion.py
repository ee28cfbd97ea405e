"""``asrctl completion bash|zsh|fish``: the scripts, and the answers asrctl gives them when a shell asks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers_cli import run_captured

MARKERS = {
    "bash": "complete -o nosort -F _asrctl_completion asrctl",
    "zsh": "#compdef asrctl",
    "fish": "complete --no-files --command asrctl",
}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_script_is_printed(shell: str, capsys, tmp_path) -> None:
    r = run_captured(["completion", shell], capsys)
    assert r.code == 0
    assert MARKERS[shell] in r.out and "_ASRCTL_COMPLETE" in r.out
    assert r.err == ""
    checker = shutil.which(shell)
    if checker is None:
        if shell == "bash":
            pytest.fail("bash is needed to check the bash script")
        pytest.skip(f"{shell} is not installed here")
    script = tmp_path / f"asrctl.{shell}"
    script.write_text(r.out)
    check = [checker, "--no-execute", str(script)] if shell == "fish" else [checker, "-n", str(script)]
    proc = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_bash_accepts_the_script_and_a_broken_one_is_caught(capsys, tmp_path) -> None:
    """The syntax check can fail: it is not a formality."""
    bash = shutil.which("bash")
    assert bash is not None
    r = run_captured(["completion", "bash"], capsys)
    broken = tmp_path / "broken.bash"
    broken.write_text(r.out.replace("}", "", 1))
    proc = subprocess.run([bash, "-n", str(broken)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0


def test_json_carries_the_script(capsys) -> None:
    r = run_captured(["completion", "fish", "--json"], capsys)
    doc = json.loads(r.out)
    assert doc["command"] == "completion" and doc["data"]["shell"] == "fish"
    assert MARKERS["fish"] in doc["data"]["script"]


def test_an_unknown_shell_is_a_usage_error(capsys) -> None:
    r = run_captured(["--json", "completion", "tcsh"], capsys)
    assert r.code == 2
    assert json.loads(r.out)["error"]["code"] == "ASRCTL-E002" and "tcsh" in r.err


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("asrctl ins", {"install"}),
        ("asrctl vm-agent ", {"status", "install"}),
        ("asrctl detect --js", {"--json"}),  # a global option after the verb
        ("asrctl bundles list --ro", {"--root"}),
        ("asrctl install --cs-type ", {"CSLegacy", "CSPrime"}),
        ("asrctl completion ", {"bash", "zsh", "fish"}),
    ],
)
def test_the_shell_s_questions_are_answered(words: str, expected: set[str]) -> None:
    parts = words.split(" ")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env.update(_ASRCTL_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    proc = subprocess.run(
        [sys.executable, "-m", "asrctl"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    offered = {line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line}
    assert expected <= offered, offered
