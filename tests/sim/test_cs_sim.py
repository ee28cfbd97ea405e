"""The configuration-server stand-in and registration through the simulated configurator."""

from __future__ import annotations

import base64
import fcntl
import json
import os
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
    for text in outputs:
        assert PASSPHRASE not in text
    for path in list(box.root.rglob("*")) + [cs.state_dir / "cs_sim.log", cs.state_dir / "registered.json"]:
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path


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
    proc = box.register(cs)
    assert proc.returncode == 0, proc.stderr
    values = box.vx_version()
    assert values["AGENT_CONFIGURATION_STATUS"] == "Succeeded"
    conf = box.drscout()
    ident = json.loads((box.vx / "etc/asrsim_identity.json").read_text())
    assert conf["HostId"] == ident["host_id"]
    assert (conf["Hostname"], conf["Port"]) == ("127.0.0.1", str(cs.port))
    assert conf["CSType"] == "CSLegacy"
    (entry,) = entries_for(cs, box)
    assert entry["host_id"] == ident["host_id"]
    assert entry["hostname"] == "sim-host-01"
    assert entry["mode"] == "classic" and entry["cs_type"] == "CSLegacy"
    fingerprint = box.root / f"usr/local/InMage/fingerprints/127.0.0.1_{cs.port}.fingerprint"
    assert len(fingerprint.read_text().strip()) == 64
    assert (box.root / "usr/local/drscout.conf.lck").exists()
    assert_no_secret(box, cs, proc.stdout, proc.stderr)
    # Re-registering updates the same host entry.
    assert box.register(cs).returncode == 0
    assert len(entries_for(cs, box)) == 1


def test_register_wrong_passphrase_exits_14(installed, cs_factory):
    cs = cs_factory(passphrase="a-different-one")
    proc = installed.register(cs)
    assert proc.returncode == 14
    assert "invalid passphrase or CS endpoint" in proc.stderr
    assert installed.vx_version()["AGENT_CONFIGURATION_STATUS"] == "Failed"
    assert "HostId" not in installed.drscout()
    assert cs.registered() == []
    assert_no_secret(installed, cs, proc.stdout, proc.stderr)


def test_register_server_down_exits_17(installed, cs_factory):
    cs = cs_factory()
    cs.stop()
    proc = installed.register(cs)
    assert proc.returncode == 17
    assert proc.stderr.strip() == "post request: (7) - Couldn't connect to server"
    assert "post request: (7) - Couldn't connect to server" in installed.install_log.read_text()


def test_register_expired_certificate_exits_17(installed, cs_factory):
    cs = cs_factory(cert_mode="expired")
    proc = installed.register(cs)
    assert proc.returncode == 17
    assert proc.stderr.strip() == PEER_CERT
    log = installed.install_log.read_text()
    assert PEER_CERT in log and "expired" in log
    assert cs.registered() == []


def test_wrong_host_certificate_passes_unless_a_ca_is_pinned(installed, cs_factory):
    cs = cs_factory(cert_mode="wrong-host")
    pinned = installed.register(cs, knobs={"ASR_SIM_CS_CAFILE": str(cs.ca_file)})
    assert pinned.returncode == 17 and pinned.stderr.strip() == PEER_CERT
    assert cs.registered() == []
    # Like the real agent, no CA trust is required by default (self-signed CS certificates).
    assert installed.register(cs).returncode == 0
    assert len(cs.registered()) == 1


def test_ok_certificate_verifies_against_the_ca(installed, cs):
    proc = installed.register(cs, knobs={"ASR_SIM_CS_CAFILE": str(cs.ca_file)})
    assert proc.returncode == 0, proc.stderr


def test_fail_first_answers_503_then_succeeds(installed, cs_factory):
    cs = cs_factory(fail_first=2)
    for _ in range(2):
        proc = installed.register(cs)
        assert proc.returncode == 17
        assert proc.stderr.strip() == "post request: (22) - The requested URL returned error: 503"
    assert installed.register(cs).returncode == 0
    assert len(cs.registered()) == 1


def test_passphrase_file_newline_handling(installed, cs):
    crlf = installed.secrets / "crlf"
    crlf.write_bytes(PASSPHRASE.encode() + b"\r\n")
    assert installed.configure("-i", cs.endpoint, "-P", crlf).returncode == 0
    two = installed.secrets / "two-newlines"
    two.write_text(PASSPHRASE + "\n\n")
    assert installed.configure("-i", cs.endpoint, "-P", two).returncode == 14


@pytest.mark.parametrize(
    "args",
    [
        ("-i", "127.0.0.1:9"),
        ("-P", "/nonexistent"),
        ("-i", "127.0.0.1:9", "-P", "relative/passphrase"),
        ("-i", "127.0.0.1:9", "-P", "/nonexistent/passphrase"),
        ("-i", "127.0.0.1:99999", "-P", "/etc/hostname"),
        ("-i", "127.0.0.1:9", "-P", "/etc/hostname", "-c", "CSPrime"),
        ("-S", "/x.json", "-i", "127.0.0.1:9"),
        ("-S", "/x.json", "-c", "CSPrime", "-D", "maybe"),
    ],
)
def test_configurator_invalid_arguments_exit_3(installed, args):
    proc = installed.configure(*args)
    assert proc.returncode == 3, proc.stderr
    assert "nvalid arguments" in proc.stderr


def test_configurator_unknown_flag_exits_2(installed):
    assert installed.configure("-i", "127.0.0.1", "-P", "/p", "--bogus").returncode == 2


def test_configurator_needs_an_installed_agent(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    cmd = [staged / "Vx/bin/UnifiedAgentConfigurator.sh", "-i", "127.0.0.1:9", "-P", sandbox.passphrase_file]
    proc = sandbox.run(cmd)
    assert proc.returncode == 1 and "not installed" in proc.stderr


def test_corrupt_vm_platform_aborts(installed, cs):
    conf = installed.vx / "etc/drscout.conf"
    conf.write_text(conf.read_text().replace("VmPlatform=VmWare", "VmPlatform=garbage"))
    proc = installed.register(cs)
    assert proc.returncode == 1
    message = "Aborting configuration as VM_PLATFORM value is either null or it is not VmWare/Azure"
    assert message in proc.stderr and message in installed.install_log.read_text()
    assert entries_for(cs, installed) == []


def test_second_configurator_instance_exits_41(installed, cs):
    lock = installed.root / "usr/local/drscout.conf.lck"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        proc = installed.register(cs)
    assert proc.returncode == 41
    assert installed.register(cs).returncode == 0


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
    proc = box.configure("-S", out, "-q", "-c", "CSPrime", "-D", "true")
    assert proc.returncode == 0, proc.stderr
    conf = box.drscout()
    assert conf["CSType"] == "CSPrime"
    assert conf["IsCredentialLessDiscovery"] == "true"
    assert Path(conf["RcmSettingsPath"]) == box.vx / "etc/RCMInfo.conf"
    assert f"AppliancePort={cs.port}" in (box.vx / "etc/RCMInfo.conf").read_text()
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
    assert installed.drscout()["IsCredentialLessDiscovery"] == "false"
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


@pytest.mark.parametrize("content", ["", "{not json", '{"format": "other"}', "[]"])
def test_invalid_source_config_exits_19(installed, content):
    path = installed.secrets / "config.json"
    path.write_text(content)
    proc = installed.configure("-S", path, "-q", "-c", "CSPrime")
    assert proc.returncode == 19
    assert installed.configure("-S", installed.secrets / "missing.json", "-q", "-c", "CSPrime").returncode == 19


def test_config_for_another_machine_exits_118(installed, cs):
    config = cs.make_config(agent_input(installed))
    config["agent"]["bios_id"] = "00000000-0000-0000-0000-000000000000"
    path = installed.secrets / "config.json"
    path.write_text(json.dumps(config))
    assert installed.configure("-S", path, "-q", "-c", "CSPrime").returncode == 118
    assert entries_for(cs, installed) == []


def test_config_with_a_bad_key_exits_128(installed, cs):
    config = cs.make_config(agent_input(installed))
    config["registration_key"] = "0" * 64
    path = installed.secrets / "config.json"
    path.write_text(json.dumps(config))
    assert installed.configure("-S", path, "-q", "-c", "CSPrime").returncode == 128
    assert entries_for(cs, installed) == []


def test_modernized_transport_failure_exits_119(installed, cs_factory):
    cs = cs_factory(cert_mode="expired")
    path = installed.secrets / "config.json"
    cs.make_config(agent_input(installed), path)
    proc = installed.configure("-S", path, "-q", "-c", "CSPrime")
    assert proc.returncode == 119 and proc.stderr.strip() == PEER_CERT


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
    assert os.listdir(box.root / "usr/local") == []
