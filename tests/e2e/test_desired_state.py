"""Desired state and consistent signals: a drifted registration is not a success, ``--dry-run`` says whether it
would change anything, a second identical run changes nothing, ``reboot_required`` (and ``--exit-codes msi``'s
3010) agree with every "restart" asrctl prints, every verb prints its warnings, ``--no-vm-agent`` is honoured."""

from __future__ import annotations

from e2e.conftest import NEW, OLD, Sandbox

ELSEWHERE = "10.9.9.9"  # never contacted: a drifted install is refused before any network check


def _install(sb: Sandbox, endpoint: str, *extra: str, env: dict[str, str] | None = None):
    return sb.asrctl(
        "--json", "install", "--cs-endpoint", endpoint, "--passphrase-file", str(sb.passphrase_file), *extra, env=env
    )


def test_a_drifted_registration_is_refused_never_a_silent_success(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert _install(sandbox, cs.endpoint).returncode == 0
    for extra in ((), ("--dry-run",)):
        r = _install(sandbox, ELSEWHERE, *extra)
        assert (r.returncode, r.json["ok"], r.json["error"]["code"]) == (6, False, "ASRCTL-E071"), r.stderr
        assert r.json["changed"] is False
        message = r.json["error"]["message"]
        assert f"registered to {cs.endpoint} (CSLegacy)" in message
        assert f"`asrctl register --force --cs-endpoint {ELSEWHERE}`" in message
        assert r.json["data"]["agent"]["cs_endpoint"] == cs.endpoint
    prime = sandbox.asrctl("--json", "install", "--cs-type", "CSPrime")
    assert (prime.returncode, prime.json["error"]["code"]) == (6, "ASRCTL-E071")
    assert "--cs-type CSPrime --config-file FILE" in prime.json["error"]["message"]
    # upgrade: the same rule, before anything is staged or stopped.
    sandbox.bundle(NEW)
    up = sandbox.asrctl(
        "--json", "upgrade", "--cs-endpoint", ELSEWHERE, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert (up.returncode, up.json["error"]["code"]) == (6, "ASRCTL-E071")
    assert up.json["data"]["agent"]["version"] == OLD
    # The same inputs as the registration are the desired state: upgrade goes through.
    same = sandbox.asrctl(
        "--json", "upgrade", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert same.returncode == 0, same.stderr
    assert same.json["data"]["agent"]["version"] == NEW and same.json["data"]["agent"]["cs_endpoint"] == cs.endpoint
    assert len(cs.registered()) == 1, "an upgrade with the same registration does not register again"


def test_dry_run_says_would_change_and_a_second_run_changes_nothing(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    first = _install(sandbox, cs.endpoint, "--dry-run")
    assert first.returncode == 0 and first.json["changed"] is False
    assert first.json["data"]["would_change"] is True and first.json["data"]["plan"]["steps"]
    assert _install(sandbox, cs.endpoint).json["changed"] is True
    again = _install(sandbox, cs.endpoint)
    assert (again.returncode, again.json["ok"], again.json["changed"]) == (0, True, False)
    for argv in (
        ["install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)],
        ["upgrade"],
        ["register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)],
    ):
        dry = sandbox.asrctl("--json", *argv, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert (dry.json["data"]["would_change"], dry.json["data"]["plan"]["steps"]) == (False, []), argv
    gone = sandbox.asrctl("--json", "uninstall", "--dry-run")
    assert gone.json["data"]["would_change"] is True and sandbox.vx_version.exists()


def _says_restart(run) -> bool:
    return "restart the machine" in run.stderr


def test_reboot_required_3010_and_restart_advice_agree_on_every_verb(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    msi = ("--exit-codes", "msi", "--json")
    runs = {}
    runs["install"] = sandbox.asrctl(*msi, "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent")
    runs["register"] = sandbox.asrctl(
        *msi, "register", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    sandbox.bundle(NEW)
    runs["upgrade"] = sandbox.asrctl(*msi, "upgrade", "--no-vm-agent")
    runs["uninstall"] = sandbox.asrctl(*msi, "uninstall", "-Y")
    expected = {"install": False, "register": False, "upgrade": True, "uninstall": True}
    for verb, r in runs.items():
        doc = r.json
        assert doc["ok"], (verb, r.stderr)
        assert doc["reboot_required"] is expected[verb], verb
        assert _says_restart(r) is expected[verb], (verb, r.stderr)
        # A POSIX exit status keeps the low 8 bits: 3010 arrives as 194 (Windows gets all of it).
        assert r.returncode == (3010 & 0xFF if expected[verb] else 0), verb


def test_install_prints_its_warnings_and_no_vm_agent_leaves_it_alone(sandbox: Sandbox) -> None:
    sandbox.bundle(OLD)
    dry = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent", "--dry-run")
    assert "vm-agent" not in [s["id"] for s in dry.json["data"]["plan"]["steps"]]
    assert dry.json["data"]["plan"]["summary"]["vm_agent"] == "left alone (--no-vm-agent)"
    assert "The Azure VM agent is left alone (--no-vm-agent)." in dry.stderr
    with_agent = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert with_agent.returncode == 0, with_agent.stderr
    warnings = with_agent.json["data"]["warnings"]
    assert [w for w in warnings if "walinuxagent" in w], (
        warnings
    )  # the sandbox refuses the host's package manager: the VM agent could not be installed
    for w in warnings:
        assert f"! {w}" in with_agent.stderr, f"warning only in the JSON: {w}"
    assert sandbox.asrctl("uninstall", "-Y").returncode == 0
    without = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent")
    assert without.returncode == 0
    assert not [w for w in without.json["data"].get("warnings", []) if "walinuxagent" in w]
    assert "walinuxagent" not in without.stderr
