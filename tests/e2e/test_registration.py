"""Registration end to end: the modernized appliance flow, retries, re-registration, clones, passphrase hygiene."""

from __future__ import annotations

from asrsim import csserver
from e2e.conftest import NEW, OLD, Sandbox


def _register(sb: Sandbox, endpoint: str, *extra: str):
    return sb.asrctl(
        "--json", "register", "--cs-endpoint", endpoint, "--passphrase-file", str(sb.passphrase_file), *extra
    )


def test_modernized_appliance_flow(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    r = sandbox.asrctl("--json", "install", "--cs-type", "CSPrime")
    assert r.returncode == 0, r.stderr
    doc = r.json
    install = doc["data"]["agent"]
    assert install["installed"] and not install["registered"]
    agent_input = doc["data"]["agent_config_input"]
    assert agent_input and "Paste this agent config input" in r.stderr
    # The operator pastes it into the appliance, which makes the config file.
    config = sandbox.base / "config.json"
    cs.make_config(agent_input, config)
    dry = sandbox.asrctl("--json", "register", "--cs-type", "CSPrime", "--config-file", str(config), "--dry-run")
    step = next(s for s in dry.json["data"]["plan"]["steps"] if s["id"] == "register")
    run_dir = sandbox.root / "var/lib/asrctl/runs" / dry.json["data"]["plan"]["summary"]["run_id"]
    assert step["argv"][1:] == [
        "-q", "-S", str(config), "-l", str(sandbox.root / "var/log/ua_install.log"), "-m", "CommandLine",
        "-f", f"{run_dir}/configuratorextendederrors.json", "-j", f"{run_dir}/configuratorjson.json",
        "-c", "CSPrime",
    ]  # fmt: skip
    reg = sandbox.asrctl("--json", "register", "--cs-type", "CSPrime", "--config-file", str(config))
    assert reg.returncode == 0, reg.stderr
    assert reg.json["data"]["agent"]["registered"]
    assert len(cs.registered()) == 1


def test_csprime_register_needs_a_config_file(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy").returncode == 0
    r = sandbox.asrctl("--json", "register", "--cs-type", "CSPrime")
    assert (r.returncode, r.json["error"]["code"]) == (2, "ASRCTL-E085")
    missing = sandbox.asrctl("--json", "register", "--cs-type", "CSPrime", "--config-file", "/nonexistent.json")
    assert missing.returncode == 2 and "no such file" in missing.json["error"]["message"]


def test_transient_failures_are_retried_then_succeed(sandbox: Sandbox) -> None:
    sandbox.bundle(OLD)
    flaky = csserver.start(sandbox.base / "flaky", sandbox.passphrase_file, fail_first=2, max_lifetime=120)
    try:
        assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy").returncode == 0
        r = _register(sandbox, flaky.endpoint)
        # 503 twice: the configurator reports it, asrctl says what it does and tries again.
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("retrying in") == 2
        assert len(flaky.registered()) == 1
    finally:
        flaky.stop()


def test_re_registration_needs_force_and_same_endpoint_is_a_no_op(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy").returncode == 0
    assert _register(sandbox, cs.endpoint).returncode == 0
    same = _register(sandbox, cs.endpoint)
    assert same.returncode == 0 and same.json["changed"] is False
    other = csserver.start(sandbox.base / "cs2", sandbox.passphrase_file, max_lifetime=120)
    try:
        moved = _register(sandbox, other.endpoint)
        assert (moved.returncode, moved.json["error"]["code"]) == (6, "ASRCTL-E048")
        assert cs.endpoint in moved.json["error"]["message"] and "--force" in moved.json["error"]["message"]
        forced = _register(sandbox, other.endpoint, "--force")
        assert forced.returncode == 0, forced.stderr
        assert forced.json["data"]["agent"]["cs_endpoint"] == other.endpoint
    finally:
        other.stop()


def test_cloned_host_is_refused_without_force(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy").returncode == 0
    assert _register(sandbox, cs.endpoint).returncode == 0
    # The VM was cloned: same agent identity, another machine.
    (sandbox.root / "etc/machine-id").write_text("ffffffffffffffffffffffffffffffff\n")
    r = _register(sandbox, cs.endpoint)
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E052")
    assert "clone" in r.json["error"]["message"]
    assert _register(sandbox, cs.endpoint, "--force").returncode == 0


def test_passphrase_file_readable_by_others_is_refused_before_anything_changes(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    sandbox.passphrase_file.chmod(0o644)
    r = sandbox.asrctl(
        "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
    )
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E049")
    assert f"chmod 600 {sandbox.passphrase_file}" in r.json["error"]["message"]
    assert not sandbox.vx_version.exists()
    ok = sandbox.asrctl(
        "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
        "--insecure-passphrase-file",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_missing_registration_inputs_are_usage_errors(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    nothing = sandbox.asrctl("--json", "install")
    assert (nothing.returncode, nothing.json["error"]["code"]) == (2, "ASRCTL-E085")
    no_pass = sandbox.asrctl("--json", "install", "--cs-endpoint", cs.endpoint)
    assert (no_pass.returncode, no_pass.json["error"]["code"]) == (6, "ASRCTL-E050")
    empty = sandbox.base / "empty.pass"
    empty.write_text("\n")
    empty.chmod(0o600)
    e = sandbox.asrctl("--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(empty))
    assert (e.returncode, e.json["error"]["code"]) == (6, "ASRCTL-E050")
    assert not sandbox.vx_version.exists()


def test_expired_certificate_stops_install_before_anything_changes(sandbox: Sandbox) -> None:
    sandbox.bundle(OLD)
    expired = csserver.start(sandbox.base / "expired", sandbox.passphrase_file, cert_mode="expired", max_lifetime=120)
    try:
        r = sandbox.asrctl(
            "--json", "install", "--cs-endpoint", expired.endpoint, "--passphrase-file", str(sandbox.passphrase_file)
        )
        assert (r.returncode, r.json["error"]["code"]) == (8, "ASRCTL-E083")
        assert "(60)" in r.json["error"]["message"]
        tls = next(c for c in r.json["data"]["connectivity"] if c["name"] == "cs_tls")
        assert tls["status"] == "fail"
        assert not sandbox.vx_version.exists()
    finally:
        expired.stop()


def test_microsofts_errors_file_reaches_the_error(sandbox: Sandbox, cs) -> None:
    """The configurator's extended-errors file (-f, in asrctl's private run dir) ends up in error.details; the run
    dir goes with the run, the raw text stays in asrctl's log."""
    sandbox.bundle(OLD)
    assert sandbox.asrctl("install", "--cs-type", "CSPrime").returncode == 0
    bogus = sandbox.base / "config.json"
    bogus.write_text('{"format": "not-the-appliance-s"}')
    r = sandbox.asrctl("--json", "register", "--cs-type", "CSPrime", "--config-file", str(bogus))
    assert r.returncode == 8
    error = r.json["error"]
    assert error["code"] == "ASRCTL-E080" and error["details"]["vendor_exit_code"] == 97
    (vendor,) = error["details"]["vendor_errors"]
    assert vendor["code"] == "ConfiguratorInternalError"
    assert vendor["message"] and vendor["recommended_action"] and vendor["possible_causes"]
    assert "Microsoft says ConfiguratorInternalError" in error["message"]
    runs = sandbox.root / "var/lib/asrctl/runs"
    assert runs.stat().st_mode & 0o777 == 0o700 and list(runs.iterdir()) == []
    assert "ConfiguratorInternalError" in (sandbox.root / "var/log/asrctl.log").read_text()


def test_the_cs_type_comes_from_the_inputs(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD)
    before = sandbox.files()
    untold = sandbox.asrctl("--json", "install", "--no-register")
    assert (untold.returncode, untold.json["error"]["code"]) == (2, "ASRCTL-E085")
    assert "--no-register needs --cs-type" in untold.json["error"]["message"]
    contradiction = sandbox.asrctl(
        "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(sandbox.passphrase_file),
        "--cs-type", "CSPrime",
    )  # fmt: skip
    assert (contradiction.returncode, contradiction.json["error"]["code"]) == (2, "ASRCTL-E086")
    assert sandbox.files() - before <= {"root/var", "root/var/log", "root/var/log/asrctl.log"}
    # A config file says CSPrime by itself.
    assert sandbox.asrctl("install", "--cs-type", "CSPrime").returncode == 0
    config = sandbox.base / "config.json"
    cs.make_config(_agent_input(sandbox), config)
    r = sandbox.asrctl("--json", "register", "--config-file", str(config))
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["agent"]["cs_type"] == "CSPrime"


def _agent_input(sb: Sandbox) -> str:
    import subprocess

    proc = subprocess.run(
        [str(sb.install_dir / "Vx/bin/AzureRcmCli"), "--getagentconfiginput"],
        env={**sb.environ(), "ASRCTL_ROOT": str(sb.root)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.strip()


def test_upgrade_keeps_the_installed_type_role_and_platform(sandbox: Sandbox) -> None:
    """Upgrade reads them from the agent's drscout.conf (CSType, Role, VmPlatform); it passes no -r, as the push
    installer's upgrade line has none, and the installed role stays."""
    sandbox.bundle(OLD, date="23Apr2025")
    installed = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSPrime", "--role", "MT",
                               "--vm-platform", "Azure")  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    sandbox.bundle(NEW)
    dry = sandbox.asrctl("--json", "upgrade", "--dry-run")
    argv = next(s for s in dry.json["data"]["plan"]["steps"] if s["id"] == "upgrade")["argv"]
    assert "-r" not in argv
    assert (argv[argv.index("-c") + 1], argv[argv.index("-v") + 1]) == ("CSPrime", "Azure")
    up = sandbox.asrctl("--json", "upgrade")
    assert up.returncode == 0, up.stderr
    drscout = (sandbox.install_dir / "Vx/etc/drscout.conf").read_text()
    assert "Role = MasterTarget" in drscout and "CSType = CSPrime" in drscout and "VmPlatform = Azure" in drscout
    assert up.json["data"]["agent"]["cs_type"] == "CSPrime" and up.json["data"]["agent"]["version"] == NEW
