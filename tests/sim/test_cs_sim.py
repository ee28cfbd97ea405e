"""The configuration-server stand-in and registration through the simulated configurator."""

from __future__ import annotations

import base64
import json
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import PASSPHRASE, SCRIPTS, entries_for, wait_for

PEER_CERT = "post request: (60) - Peer certificate cannot be authenticated with given CA certificates"


def https_json(cs, path: str, payload: dict | None = None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cafile=str(cs.ca_file))
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(cs.url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def agent_input(box) -> str:
    proc = box.run([box.vx / "bin/AzureRcmCli", "--getagentconfiginput"])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def assert_no_secret(box, cs, *outputs: str) -> None:
    """The passphrase is in no output and no file, but Microsoft's configurator's own copy (mode 0700)."""
    vendor_copy = box.root / "usr/local/InMage/private/connection.passphrase"
    for text in outputs:
        assert PASSPHRASE not in text
    for path in list(box.root.rglob("*")) + [cs.state_dir / "cs_sim.log", cs.state_dir / "registered.json"]:
        if path.is_file() and path != vendor_copy:
            assert PASSPHRASE.encode() not in path.read_bytes(), path


def errors_in(path: Path) -> list[dict]:
    return json.loads(path.read_text())["Errors"]


# --------------------------------------------------------------------------- the server itself
def test_server_basics(cs_factory):
    cs = cs_factory()
    assert cs.alive()
    info = json.loads((cs.state_dir / "server.json").read_text())
    assert (info["host"], info["port"]) == ("127.0.0.1", cs.port)
    assert (cs.state_dir / "port").read_text().strip() == str(cs.port)
    assert "BEGIN CERTIFICATE" in cs.ca_file.read_text()
    assert https_json(cs, "/health") == (200, {"cert_mode": "ok", "registered": 0, "status": "ok"})
    assert https_json(cs, "/api/hosts") == (200, {"hosts": []})
    assert https_json(cs, "/nope")[0] == 404
    status, body = https_json(cs, "/api/register", {"host_id": "x", "hostname": "y"})
    assert status == 401
    assert cs.registered() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_on_signals(cs_factory, sig):
    cs = cs_factory(name=f"cs-{int(sig)}")
    cs.process.send_signal(sig)
    assert cs.process.wait(timeout=10) == 0
    assert not (cs.state_dir / "server.json").exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", cs.port), timeout=2):
        pass


def test_server_exits_when_its_stdin_closes(cs_factory):
    cs = cs_factory()
    cs.process.stdin.close()
    assert cs.process.wait(timeout=10) == 0


def test_server_lifetime_is_bounded(cs_factory):
    cs = cs_factory(max_lifetime=0.5)
    assert cs.process.wait(timeout=10) == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "localhost"])
def test_server_refuses_non_loopback(tmp_path, host):
    pytest.importorskip("cryptography")
    pp = tmp_path / "pp"
    pp.write_text("x\n")
    cmd = [sys.executable, SCRIPTS / "cs_sim.py", "serve", "--state-dir", tmp_path / "s", "--passphrase-file", pp]
    proc = subprocess.run([str(c) for c in [*cmd, "--host", host]], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "only 127.0.0.1 and ::1" in proc.stderr


def test_server_on_ipv6_loopback(cs_factory):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    cs = cs_factory(host="::1")
    assert cs.endpoint == f"[::1]:{cs.port}"
    assert https_json(cs, "/health")[0] == 200


def test_cli_serve_prints_the_port(tmp_path):
    pytest.importorskip("cryptography")
    pp = tmp_path / "pp"
    pp.write_text("x\n")
    cmd = [sys.executable, SCRIPTS / "cs_sim.py", "serve", "--state-dir", tmp_path / "s", "--passphrase-file", pp]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("cs_sim listening on https://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


# --------------------------------------------------------------------------- classic registration
def test_register_classic(installed, cs):
    box = installed
    summary = box.root / "var/tmp/summary.json"
    summary.parent.mkdir(parents=True)
    proc = box.configure("-i", cs.host, "-P", box.passphrase_file, "-c", "CSLegacy", "-p", cs.port, "-j", summary)
    assert proc.returncode == 0, proc.stdout
    values = box.vx_version()
    assert values["AGENT_CONFIGURATION_STATUS"] == "Succeeded"
    assert list(values)[-1] == "AGENT_CONFIGURATION_STATUS"  # appended at the end, as Microsoft's does
    conf = box.drscout()
    ident = json.loads((box.vx / "etc/asrsim_identity.json").read_text())
    assert conf["HostId"] == ident["host_id"]
    assert list(conf)[:2] == ["HostId", "CSType"]  # CSType right after HostId (update_cstype_in_drscout)
    assert (conf["Hostname"], conf["Port"], conf["CSType"]) == ("127.0.0.1", str(cs.port), "CSLegacy")
    assert f"Hostname = 127.0.0.1\nPort = {cs.port}\n" in (box.vx / "etc/drscout.conf").read_text()
    (entry,) = entries_for(cs, box)
    assert entry["host_id"] == ident["host_id"]
    assert entry["hostname"] == "sim-host-01"
    assert entry["mode"] == "classic" and entry["cs_type"] == "CSLegacy"
    fingerprint = box.root / f"usr/local/InMage/fingerprints/127.0.0.1_{cs.port}.fingerprint"
    assert len(fingerprint.read_text().strip()) == 64
    copy = box.root / "usr/local/InMage/private/connection.passphrase"
    assert copy.read_bytes() == box.passphrase_file.read_bytes() and copy.stat().st_mode & 0o777 == 0o700
    done = json.loads(summary.read_text())
    assert (done["InstallType"], done["InstallStatus"], done["InvokerType"]) == (
        "Configuration",
        "Success",
        "commandline",
    )
    assert_no_secret(box, cs, proc.stdout, proc.stderr)
    # Re-registering with the same server updates the same host entry.
    assert box.register(cs).returncode == 0
    assert len(entries_for(cs, box)) == 1


def test_register_wrong_passphrase_exits_14(installed, cs_factory):
    cs = cs_factory(passphrase="a-different-one")
    proc = installed.register(cs)
    assert proc.returncode == 14
    assert "invalid passphrase or CS endpoint" in proc.stdout
    assert installed.vx_version()["AGENT_CONFIGURATION_STATUS"] == "Failed"
    assert installed.drscout()["HostId"] == "1234_45466_67689"
    assert installed.drscout()["Hostname"] == ""
    assert cs.registered() == []
    assert_no_secret(installed, cs, proc.stdout, proc.stderr)


def test_register_server_down_is_14_too(installed, cs_factory):
    """Microsoft's fingerprint step fails the same way for a CS it cannot reach and for a wrong passphrase."""
    cs = cs_factory()
    cs.stop()
    proc = installed.register(cs)
    assert proc.returncode == 14
    assert proc.stdout.strip() == "post request: (7) - Couldn't connect to server"
    assert "post request: (7) - Couldn't connect to server" in installed.install_log.read_text()


def test_register_expired_certificate_exits_14(installed, cs_factory):
    cs = cs_factory(cert_mode="expired")
    proc = installed.register(cs)
    assert proc.returncode == 14
    assert proc.stdout.strip() == PEER_CERT
    log = installed.install_log.read_text()
    assert PEER_CERT in log and "expired" in log
    assert cs.registered() == []


def test_wrong_host_certificate_passes_unless_a_ca_is_pinned(installed, cs_factory):
    cs = cs_factory(cert_mode="wrong-host")
    pinned = installed.register(cs, knobs={"ASR_SIM_CS_CAFILE": str(cs.ca_file)})
    assert pinned.returncode == 14 and pinned.stdout.strip() == PEER_CERT
    assert cs.registered() == []
    # Like the real agent, no CA trust is required by default (self-signed CS certificates).
    assert installed.register(cs).returncode == 0
    assert len(cs.registered()) == 1


def test_ok_certificate_verifies_against_the_ca(installed, cs):
    proc = installed.register(cs, knobs={"ASR_SIM_CS_CAFILE": str(cs.ca_file)})
    assert proc.returncode == 0, proc.stdout


def test_fail_first_answers_503_then_succeeds(installed, cs_factory):
    cs = cs_factory(fail_first=2)
    for _ in range(2):
        proc = installed.register(cs)
        assert proc.returncode == 17
        assert proc.stdout.strip() == "post request: (22) - The requested URL returned error: 503"
    assert installed.register(cs).returncode == 0
    assert len(cs.registered()) == 1


def test_passphrase_file_newline_handling(installed, cs):
    crlf = installed.secrets / "crlf"
    crlf.write_bytes(PASSPHRASE.encode() + b"\r\n")
    assert installed.configure("-i", cs.host, "-p", cs.port, "-P", crlf).returncode == 0
    two = installed.secrets / "two-newlines"
    two.write_text(PASSPHRASE + "\n\n")
    assert installed.configure("-i", cs.host, "-p", cs.port, "-P", two).returncode == 14


def test_another_configuration_server_exits_13(installed, cs, cs_factory):
    assert installed.register(cs).returncode == 0
    other = cs_factory(name="other")
    proc = installed.register(other)
    assert proc.returncode == 13
    assert f"127.0.0.1:{cs.port}" in proc.stdout
    assert installed.drscout()["Port"] == str(cs.port)
    assert other.registered() == []
    # Microsoft lets a platform change to CSPrime through; a blank Hostname (after a failed registration) too.
    conf = installed.vx / "etc/drscout.conf"
    conf.write_text(conf.read_text().replace(f"Port = {cs.port}", f"Port = {cs.port}\nPlatformChangeToCSPrime = true"))
    assert installed.register(other).returncode == 0


@pytest.mark.parametrize(
    "args",
    [("--bogus",), ("-i", "127.0.0.1", "-P", "/p", "-x"), ("-i", "127.0.0.1", "-P", "/p", "-c", "CSModern"), ("-h",)],
)
def test_configurator_usage_exits_0(installed, args):
    """Microsoft's usage() exits 0, also after an unknown option or an invalid -c: only the machine's state shows
    that nothing happened."""
    proc = installed.configure(*args)
    assert proc.returncode == 0
    assert "Usage" in proc.stdout
    assert "AGENT_CONFIGURATION_STATUS" not in installed.vx_version()


def test_configurator_bad_external_ip_exits_3_and_missing_passphrase_file_1(installed):
    assert installed.configure("-i", "127.0.0.1", "-P", installed.passphrase_file, "-e", "fd00::1").returncode == 3
    proc = installed.configure("-i", "127.0.0.1", "-P", "/nonexistent/passphrase")
    assert proc.returncode == 1 and "does not exist" in proc.stdout


@pytest.mark.parametrize("args", [("-P", "/p"), ("-i", "127.0.0.1"), ("-S", "/x.json", "-c", "CSPrime")])
def test_configurator_without_its_inputs_prompts_forever(installed, args):
    """Without -i/-P (classic) or -q (modernized) Microsoft's configurator asks, and at end of input asks again:
    it never ends by itself. Callers must always pass them."""
    proc = subprocess.Popen(
        [str(installed.vx / "bin/UnifiedAgentConfigurator.sh"), *map(str, args)],
        env=installed.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = b""
        while seen.count(b"Enter") < 2:  # asked twice: at end of input it asks again
            seen += proc.stdout.read1(256)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_configurator_needs_an_installed_agent(installed):
    installed.vx_version_path.rename(installed.base / "vx_version.bak")
    proc = installed.configure("-i", "127.0.0.1", "-p", "9", "-P", installed.passphrase_file)
    assert proc.returncode == 1 and "not installed" in proc.stdout
    installed.vx_version_path.write_bytes((installed.base / "vx_version.bak").read_bytes())


def test_corrupt_vm_platform_aborts(installed, cs):
    conf = installed.vx / "etc/drscout.conf"
    conf.write_text(conf.read_text().replace("VmPlatform = VmWare", "VmPlatform = garbage"))
    errors = installed.root / "var/tmp/errors.json"
    errors.parent.mkdir(parents=True)
    proc = installed.configure("-i", cs.host, "-p", cs.port, "-P", installed.passphrase_file, "-f", errors)
    assert proc.returncode == 1
    message = "Aborting configuration as VM_PLATFORM value is either null or it is not VmWare/Azure"
    assert message in proc.stdout and message in installed.install_log.read_text()
    assert [e["error_name"] for e in errors_in(errors)] == ["ASRMobilityServiceVMPlatformNotSet"]
    assert entries_for(cs, installed) == []


# --------------------------------------------------------------------------- modernized
def test_modernized_registration_via_make_config_cli(installed, cs):
    box = installed
    out = box.secrets / "config.json"
    cmd = [sys.executable, SCRIPTS / "cs_sim.py", "make-config", "--state-dir", cs.state_dir]
    cmd += ["--agent-input", agent_input(box), "--out", out]
    made = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    config = json.loads(out.read_text())
    assert config["appliance"]["port"] == cs.port and config["cs_type"] == "CSPrime"
    proc = box.configure("-q", "-S", out, "-c", "CSPrime", "-D", "true", "-r", "req-42")
    assert proc.returncode == 0, proc.stdout
    conf = box.drscout()
    assert (conf["CSType"], conf["Hostname"], conf["Port"]) == ("CSPrime", "", "443")
    assert conf["IsCredentialLessDiscovery"] == "1"
    live = box.root / "usr/local/InMage/config/RCMInfo.conf"
    assert Path(conf["RcmSettingsPath"]) == live
    rcm = live.read_text()
    assert f"ServiceUri = https://127.0.0.1:{cs.port}" in rcm and "ClientRequestId = req-42" in rcm
    assert box.vx_version()["AGENT_CONFIGURATION_STATUS"] == "Succeeded"
    (entry,) = entries_for(cs, box)
    assert entry["mode"] == "modernized" and entry["credential_less_discovery"] is True
    assert config["registration_key"] not in proc.stdout + proc.stderr + box.install_log.read_text()


def test_agent_config_endpoint(installed, cs):
    status, config = https_json(cs, "/api/rcm/agent-config", {"agent_input": agent_input(installed)})
    assert status == 200
    path = installed.secrets / "config.json"
    path.write_text(json.dumps(config))
    assert installed.configure("-S", path, "-q", "-c", "CSPrime").returncode == 0
    assert installed.drscout()["IsCredentialLessDiscovery"] == "0"
    status, body = https_json(cs, "/api/rcm/agent-config", {"agent_input": "bm90IGpzb24="})
    assert status == 400


def test_make_config_rejects_bad_input(installed, cs):
    from asrsim import csserver

    incomplete = base64.b64encode(json.dumps({"hostname": "h"}).encode()).decode()
    with pytest.raises(ValueError, match="findValue"):
        csserver.make_config(cs.state_dir, incomplete)
    cmd = [sys.executable, SCRIPTS / "cs_sim.py", "make-config", "--state-dir", cs.state_dir]
    cmd += ["--agent-input", "%%%", "--out", installed.secrets / "c.json"]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert not (installed.secrets / "c.json").exists()


def csprime(box, config: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the configurator for CSPrime with an errors file; the error names it wrote."""
    errors = box.root / "var/tmp/errors.json"
    errors.parent.mkdir(parents=True, exist_ok=True)
    errors.unlink(missing_ok=True)
    proc = box.configure("-q", "-S", config, "-c", "CSPrime", "-f", errors)
    return proc, [e["error_name"] for e in errors_in(errors)] if errors.exists() else []


@pytest.mark.parametrize("content", ["", "{not json", '{"format": "other"}', "[]", None])
def test_csprime_failures_are_97_with_configurator_internal_error(installed, content):
    """With -c CSPrime Microsoft's configurator turns every code but 0, 97 and 98 into 97."""
    path = installed.secrets / "config.json"
    if content is not None:
        path.write_text(content)
    proc, names = csprime(installed, path)
    assert proc.returncode == 97
    assert names == ["ConfiguratorInternalError"]
    assert ("Invalid source config file" if content is not None else "does not exist") in proc.stdout


def test_config_for_another_machine_exits_97(installed, cs):
    config = cs.make_config(agent_input(installed))
    config["agent"]["bios_id"] = "00000000-0000-0000-0000-000000000000"
    path = installed.secrets / "config.json"
    path.write_text(json.dumps(config))
    proc, names = csprime(installed, path)
    assert (proc.returncode, names) == (97, ["ConfiguratorInternalError"])
    assert "BIOS ID mismatch" in proc.stdout
    assert entries_for(cs, installed) == []


def test_config_with_a_bad_key_exits_97(installed, cs):
    config = cs.make_config(agent_input(installed))
    config["registration_key"] = "0" * 64
    path = installed.secrets / "config.json"
    path.write_text(json.dumps(config))
    proc, _ = csprime(installed, path)
    assert proc.returncode == 97 and "rejected the registration key" in proc.stdout
    assert entries_for(cs, installed) == []


def test_modernized_transport_failure_exits_97(installed, cs_factory):
    cs = cs_factory(cert_mode="expired")
    path = installed.secrets / "config.json"
    cs.make_config(agent_input(installed), path)
    proc, _ = csprime(installed, path)
    assert proc.returncode == 97 and PEER_CERT in proc.stdout


# --------------------------------------------------------------------------- the whole story
def test_register_then_upgrade_keeps_registration_then_uninstall(installed, cs, bundles):
    box = installed
    assert box.register(cs).returncode == 0
    host_id = box.drscout()["HostId"]
    proc = box.upgrade(bundles["v2"])
    assert proc.returncode == 0, proc.stderr
    assert box.vx_version()["VERSION"] == "9.67.7789.1"
    assert box.vx_version()["AGENT_CONFIGURATION_STATUS"] == "Succeeded"
    conf = box.drscout()
    assert (conf["HostId"], conf["Hostname"], conf["Port"]) == (host_id, "127.0.0.1", str(cs.port))
    assert box.register(cs).returncode == 0  # the upgraded configurator still registers
    assert [h["agent_version"] for h in entries_for(cs, box)] == ["9.67.7789.1"]
    assert box.uninstall("-Y").returncode == 0
    assert wait_for(lambda: box.daemon_pids() == {"svagents": [], "appservice": []}, timeout=5)
    assert [f for f in box.files() if f.startswith("usr/")] == []
    box.expect_running = False
