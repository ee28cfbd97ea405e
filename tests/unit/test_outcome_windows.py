"""The result tells the truth on a simulated Windows host, through ``asrctl.cli.run`` (in-process): a post-check
that fails after the installer succeeded leaves the agent installed, and the result says so (``changed`` true,
``data.agent`` read afterwards, the error naming what was kept); an upgrade's undo starts the services again
with ``sc start``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.runner import Scripted
from fakes.windows import ServiceInfo, install_agent, simulated_windows_host, world

from asrctl.cli import run

BUNDLE = "Microsoft-ASR_UA_9.66.7567.1_Windows_GA_20Sep2025_release.exe"
OLD_BUNDLE = "Microsoft-ASR_UA_9.65.7417.1_Windows_GA_23Apr2025_release.exe"


@pytest.fixture
def host(tmp_path: Path, monkeypatch):
    w = world()
    simulated_windows_host(monkeypatch, w)
    root, bundles = tmp_path / "root", tmp_path / "bundles"
    root.mkdir()
    bundles.mkdir()
    for name in (BUNDLE, OLD_BUNDLE):
        (bundles / name).write_bytes(b"MZ" + b"\0" * 64)

    def unpacked(call: list[str]) -> None:  # the self-extracting bundle leaves the installer in /x:<dir>
        w.files.add(call[-1][len("/x:") :] + "\\UnifiedAgent.exe", "MZ")

    for name in (BUNDLE, OLD_BUNDLE):
        w.runner.script[name.lower()] = Scripted(effect=unpacked)
    passphrase = tmp_path / "cs.passphrase"
    passphrase.write_text("Tr1cky-Passphrase\n")
    passphrase.chmod(0o600)
    return w, ["--json", "--root", str(root), "--bundle-dir", str(bundles)], passphrase


def _run(argv: list[str], capsys) -> tuple[int, dict, str]:
    capsys.readouterr()
    rc = run(argv)
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


def test_post_check_failure_keeps_the_agent_and_says_so(host, capsys) -> None:
    w, base, passphrase = host

    def installs(call: list[str]) -> None:  # the installer succeeds
        install_agent(w, registered=False)

    w.runner.script["UnifiedAgent.exe"] = Scripted(effect=installs)
    # The configurator exits 0, but the agent is not registered afterwards: the post-check catches it.
    rc, doc, err = _run(
        [*base, "install", "--cs-endpoint", "10.0.0.5:443", "--passphrase-file", str(passphrase),
         "--skip-connectivity-check", "--no-vm-agent"],
        capsys,
    )  # fmt: skip
    assert (rc, doc["error"]["code"]) == (7, "ASRCTL-E064")
    assert doc["changed"] is True, "the agent is installed now: that is a change"
    assert doc["data"]["agent"]["installed"] is True and doc["data"]["agent"]["version"] == "9.66.7567.1"
    assert doc["data"]["outcome"]["state"] == "other" and doc["data"]["outcome"]["whole"] is True
    message = doc["error"]["message"]
    assert "the agent that was installed is kept: Mobility Service 9.66.7567.1, not registered, running" in message
    assert "is kept: Mobility Service 9.66.7567.1, not registered, running" in err


def test_failed_upgrade_starts_the_services_again_with_sc(host, capsys) -> None:
    w, base, _passphrase = host
    install_agent(w, version="9.65.7417.1")

    def stops_and_fails(call: list[str]) -> None:  # the installer stops the services, then fails
        w.services[:] = [ServiceInfo(s.service_name, "stopped") for s in w.services]

    def starts(call: list[str]) -> None:
        name = call[-1]
        w.services[:] = [ServiceInfo(s.service_name, "running" if s.service_name == name else s.service_status, 7)
                         for s in w.services]  # fmt: skip

    w.runner.script["UnifiedAgent.exe"] = Scripted(returncode=1, effect=stops_and_fails)
    w.runner.script["sc.exe"] = Scripted(effect=starts)
    rc, doc, _err = _run([*base, "upgrade", "--bundle", str(Path(base[-1]) / BUNDLE), "--no-vm-agent"], capsys)
    assert (rc, doc["error"]["code"]) == (7, "ASRCTL-E060")
    started = [c[-1] for c in w.runner.calls if c[0].lower().endswith("sc.exe")]
    assert started == ["svagents", "InMage Scout Application Service"]
    assert doc["changed"] is False and doc["data"]["outcome"]["state"] == "previous"
    assert "the previous state holds again: Mobility Service 9.65.7417.1" in doc["error"]["message"]
