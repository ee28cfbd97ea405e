"""Simulated UnifiedAgentConfigurator (Linux), stdlib only; started by bin/UnifiedAgentConfigurator.sh.

Options as Microsoft's configurator (index 12026101433, getopts ``:i:e:l:C:P:S:D:U:m:j:c:p:r:f:qh``) and the push
installer's command lines (index 12464269575):

    classic:    -i <CS IP or FQDN> -P <passphrase file> [-p <port, 443>] [-c CSLegacy] [-e <IPv4>] ...
    modernized: -q -S <config.json> -c CSPrime [-p <port>] [-D true|false] [-r <client request id>] ...
    both:       -l <log> -m <invoker> -f <errors.json> -j <summary.json>

Microsoft's quirks that matter to a caller, kept here (docs/SIMULATORS.md has the table): an unknown option or an
invalid -c prints the usage and exits **0**; a missing -i/-P (classic) or -q (modernized) makes it prompt, and at
end of input it prompts forever; exit 13 when drscout.conf already names another CS; 14 for a wrong passphrase
**or** an unreachable CS (the fingerprint step); 17 when the registration itself fails; with -c CSPrime every
code but 0, 97 and 98 becomes 97 and ``ConfiguratorInternalError`` goes to the errors file. Messages go to stdout
and the log. It deletes AGENT_CONFIGURATION_STATUS from .vx_version when it starts and appends Succeeded or Failed
at the end; a failed registration blanks Hostname/Port. The passphrase file is copied verbatim to
/usr/local/InMage/private/connection.passphrase (as Microsoft's does) and never printed or logged.

TLS: like the real tool it does not require the server certificate to chain to a trusted CA, but it rejects a
certificate that is expired or not yet valid. With ASR_SIM_CS_CAFILE=<PEM> it verifies chain and host name.
The protocol to the stand-in (an HMAC-signed JSON POST) is the simulator's own. Microsoft retries the fingerprint
step 4 times and the registration 3 times, 30 s apart; the simulator tries once.
"""

from __future__ import annotations

import datetime as dt
import getopt
import hashlib
import hmac
import http.client
import io
import ipaddress
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import asrsim_agent as rt  # noqa: E402
from asrsim_pause import pause  # noqa: E402

COMPONENT = "UnifiedAgentConfigurator"
USAGE = (
    "Usage: UnifiedAgentConfigurator.sh -i <CS IP> -P <passphrase file> [-p <CS port>] [-c CSLegacy]\n"
    "       UnifiedAgentConfigurator.sh -q -S <source config file> -c CSPrime [-p <port>] [-D true|false]\n"
    "       [-e <external IPv4>] [-l <log file>] [-m <invoker>] [-f <errors json>] [-j <summary json>]"
)
CONFIG_FORMAT = "asrsim-mobility-agent-config/1"
MSG_CONNECT = "post request: (7) - Couldn't connect to server"
MSG_RESOLVE = "post request: (6) - Couldn't resolve host name"
MSG_TIMEOUT = "post request: (28) - Timeout was reached"
MSG_PEER_CERT = "post request: (60) - Peer certificate cannot be authenticated with given CA certificates"
MSG_RECV = "post request: (56) - Failure when receiving data from the peer"
CSPRIME_CODES = (0, rt.EXIT_FAILED_WITH_ERRORS, rt.EXIT_SUCCEEDED_WITH_WARNINGS)


class TransportError(Exception):
    """A curl-style failure: the quoted line that goes to the log and stdout, plus a detail."""

    def __init__(self, line: str, detail: str = "") -> None:
        super().__init__(line)
        self.line = line
        self.detail = detail


class Run:
    """One configurator run: where it logs and writes its JSON files."""

    def __init__(self, args: dict[str, str], vx_dir: str) -> None:
        self.args = args
        self.vx_dir = vx_dir
        self.cs_type = args.get("-c", "CSLegacy")
        self.logfile = args.get("-l") or rt.rpath(rt.INSTALL_LOG)
        self.errors = args.get("-f") or rt.rpath(rt.ERRORS_JSON)
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S")
        self.summary = args.get("-j") or rt.rpath(f"/var/log/ASRsetuptelemetry/ASRconfigsummary_{stamp}.json")
        self.invoker = (args.get("-m") or "CommandLine").lower()
        self.started = rt.now_iso()
        self.libcommon = os.path.join(vx_dir, "bin", "libcommon.sh")
        self.platform = ""

    def log(self, level: str, message: str) -> None:
        rt.log(self.logfile, level, COMPONENT, message)

    def fail(self, code: int, message: str) -> int:
        self.log("ERROR", message)
        rt.say(message)
        return code

    def error(self, name: str, message: str, **params: str) -> None:
        rt.json_error(self.errors, self.libcommon, name, message, **params)

    def finish(self, code: int) -> int:
        if self.cs_type == "CSPrime" and code not in CSPRIME_CODES:
            self.log("ERROR", f"configurator internal error (exit {code}), reported as 97")
            self.error("ConfiguratorInternalError", f"The configuration failed with internal error {code}.")
            code = rt.EXIT_FAILED_WITH_ERRORS
        if self.platform != "Azure":
            rt.write_summary(
                self.summary,
                StartTime=self.started,
                InstallType="Configuration",
                InstallStatus="Success" if code in (0, rt.EXIT_SUCCEEDED_WITH_WARNINGS) else "Failed",
                ExitCode=str(code),
                InstallScenario=self.platform,
                InvokerType=self.invoker,
                SilentInstall="-q" in self.args,
            )
        return code


def prompt_forever(what: str) -> None:
    """What Microsoft's configurator does without -i/-P (classic) or -q (modernized): it asks, and at end of input
    it asks again, forever. The caller's timeout ends it."""
    while True:
        rt.say(f"Enter {what}: ")
        line = sys.stdin.readline() if sys.stdin is not None else ""
        if line.strip():
            return
        time.sleep(0.2)


# --------------------------------------------------------------------------- certificates
def _der_next(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER TLV at *pos*: (tag, content, position after it)."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(buf):
        raise ValueError("truncated DER")
    return tag, buf[pos:end], end


def _der_time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{2000 + year if year < 50 else 1900 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("unexpected time tag")
    return dt.datetime.strptime(text.rstrip("Z")[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def certificate_validity(der: bytes) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter) of an X.509 certificate in DER form."""
    _, cert, _ = _der_next(der, 0)
    _, tbs, _ = _der_next(cert, 0)
    tag, _, pos = _der_next(tbs, 0)
    if tag != 0xA0:  # no explicit version: the first element was the serial number
        pos = 0
    for _ in range(3):  # serialNumber, signature, issuer
        _, _, pos = _der_next(tbs, pos)
    _, validity, _ = _der_next(tbs, pos)
    tag1, not_before, pos = _der_next(validity, 0)
    tag2, not_after, _ = _der_next(validity, pos)
    return _der_time(tag1, not_before), _der_time(tag2, not_after)


# --------------------------------------------------------------------------- transport
def sign(secret: str, method: str, path: str, body: bytes) -> str:
    nonce = secrets.token_hex(16)
    message = f"{method}\n{path}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"ASRSIM-HMAC-SHA256 nonce={nonce}, signature={signature}"


def https_post(host: str, port: int, path: str, payload: dict, headers: dict[str, str]) -> tuple[int, bytes, bytes]:
    """POST JSON over TLS; returns (status, body, server certificate DER) or raises TransportError."""
    timeout = float(os.environ.get("ASR_SIM_CS_TIMEOUT", "15") or "15")
    cafile = os.environ.get("ASR_SIM_CS_CAFILE", "").strip()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    try:
        try:
            conn.connect()
        except ssl.SSLError as exc:
            raise TransportError(MSG_PEER_CERT, str(exc)) from None
        except TimeoutError:
            raise TransportError(MSG_TIMEOUT) from None
        except socket.gaierror as exc:
            raise TransportError(MSG_RESOLVE, str(exc)) from None
        except OSError as exc:
            raise TransportError(MSG_CONNECT, str(exc)) from None
        der = conn.sock.getpeercert(binary_form=True) or b""
        try:
            not_before, not_after = certificate_validity(der)
        except (ValueError, IndexError) as exc:
            raise TransportError(MSG_PEER_CERT, f"unreadable server certificate: {exc}") from None
        now = dt.datetime.now(dt.UTC)
        if now > not_after:
            raise TransportError(MSG_PEER_CERT, f"server certificate expired on {not_after.isoformat()}")
        if now < not_before:
            raise TransportError(MSG_PEER_CERT, f"server certificate not valid before {not_before.isoformat()}")
        body = json.dumps(payload, sort_keys=True).encode()
        all_headers = {"Content-Type": "application/json", "User-Agent": "asrsim-configurator/1", **headers}
        try:
            conn.request("POST", path, body=body, headers=all_headers)
            response = conn.getresponse()
            data = response.read()
        except TimeoutError:
            raise TransportError(MSG_TIMEOUT) from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(MSG_RECV, str(exc)) from None
        return response.status, data, der
    finally:
        conn.close()


# --------------------------------------------------------------------------- results
def record_server_certificate(host: str, port: int, der: bytes) -> None:
    """Like the real agent, keep the CS certificate and fingerprint (<csip>_<csport>) under /usr/local/InMage."""
    name = f"{host.replace(':', '_')}_{port}"
    base = rt.rpath(rt.INMAGE_DIR)
    rt.write_file_atomic(
        os.path.join(base, "fingerprints", f"{name}.fingerprint"), hashlib.sha256(der).hexdigest() + "\n"
    )
    rt.write_file_atomic(os.path.join(base, "certs", f"{name}.crt"), ssl.DER_cert_to_PEM_cert(der))


def registration_payload(run: Run, version: dict[str, str], ident: dict[str, str], cs_type: str) -> dict:
    conf = rt.read_drscout(run.vx_dir)
    role = conf.get("vxagent", "Role", fallback="")
    return {
        "host_id": ident["host_id"],
        "bios_id": ident["bios_id"],
        "hostname": rt.local_hostname(),
        "agent_version": version.get("VERSION", ""),
        "os_tag": version.get("OS_BUILT_FOR", ""),
        "role": "MT" if role == "MasterTarget" else "MS",
        "platform": run.platform,
        "cs_type": cs_type,
    }


def registration_failed(run: Run) -> None:
    """A failed registration leaves the agent pointing nowhere and says Failed."""
    rt.update_drscout(run.vx_dir, Hostname="", Port="")
    rt.set_configuration_status("Failed")


def set_host_id_and_cs_type(run: Run, host_id: str, cs_type: str, **values: str) -> None:
    """HostId first, CSType right after it (update_cstype_in_drscout), then the rest."""
    parser = rt.read_drscout(run.vx_dir)
    items = [(k, v) for k, v in parser.items("vxagent") if k not in ("HostId", "CSType", *values)]
    parser.remove_section("vxagent")
    parser.add_section("vxagent")
    parser.set("vxagent", "HostId", host_id)
    parser.set("vxagent", "CSType", cs_type)
    for key, value in [*items, *values.items()]:
        parser.set("vxagent", key, value)
    rt.write_drscout(run.vx_dir, parser)


# --------------------------------------------------------------------------- flows
def register_classic(run: Run, version: dict[str, str], ident: dict[str, str], host: str, port: int) -> int:
    passphrase_file = run.args["-P"]
    try:
        passphrase = rt.read_passphrase(passphrase_file)
    except (OSError, UnicodeDecodeError):
        return run.fail(rt.EXIT_FAILED, f"Cannot read the passphrase file {passphrase_file}.")
    copy = rt.rpath(rt.PASSPHRASE_COPY)
    rt.makedirs(os.path.dirname(copy), 0o700)
    rt.guard(copy)
    shutil.copyfile(passphrase_file, copy)
    os.chmod(copy, 0o700)
    payload = registration_payload(run, version, ident, "CSLegacy")
    path = "/api/register"
    body = json.dumps(payload, sort_keys=True).encode()
    run.log("INFO", f"registering host {ident['host_id']} with configuration server {host}:{port}")
    try:
        status, data, der = https_post(
            host, port, path, payload, {"Authorization": sign(passphrase, "POST", path, body)}
        )
    except TransportError as exc:
        registration_failed(run)
        if exc.detail:
            run.log("INFO", f"transport detail: {exc.detail}")
        # csgetfingerprint could not reach the CS: the same 14 as a wrong passphrase.
        return run.fail(rt.EXIT_INVALID_PASSPHRASE, exc.line)
    if status in (401, 403):
        registration_failed(run)
        return run.fail(
            rt.EXIT_INVALID_PASSPHRASE, f"Registration failed: invalid passphrase or CS endpoint (HTTP {status})."
        )
    if status != 200:
        registration_failed(run)
        run.log("INFO", f"server answered HTTP {status}: {data[:200].decode(errors='replace')}")
        return run.fail(rt.EXIT_REGISTRATION_FAILED, f"post request: (22) - The requested URL returned error: {status}")
    record_server_certificate(host, port, der)
    set_host_id_and_cs_type(run, ident["host_id"], "CSLegacy", Hostname=host, Port=str(port))
    parser = rt.read_drscout(run.vx_dir)
    if parser.remove_option("vxagent", "RcmSettingsPath"):
        rt.write_drscout(run.vx_dir, parser)
    rt.set_configuration_status("Succeeded")
    run.log("INFO", f"registration with {host}:{port} succeeded")
    rt.say(f"Registration with the configuration server {host}:{port} succeeded.")
    return rt.EXIT_SUCCESS


def load_source_config(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    if not isinstance(cfg, dict) or cfg.get("format") != CONFIG_FORMAT or cfg.get("cs_type") != "CSPrime":
        raise ValueError("not a mobility agent config file")
    appliance, agent = cfg.get("appliance"), cfg.get("agent")
    if not isinstance(appliance, dict) or not isinstance(agent, dict):
        raise ValueError("missing appliance/agent sections")
    if not isinstance(appliance.get("host"), str) or not isinstance(appliance.get("port"), int):
        raise ValueError("bad appliance endpoint")
    for key in ("host_id", "bios_id"):
        if not isinstance(agent.get(key), str) or not agent[key]:
            raise ValueError(f"missing agent.{key}")
    if not isinstance(cfg.get("registration_key"), str) or not cfg["registration_key"]:
        raise ValueError("missing registration_key")
    return cfg


def register_modernized(run: Run, version: dict[str, str], ident: dict[str, str], port: int) -> int:
    config_path = run.args.get("-S", "")
    if not config_path or not os.path.isfile(config_path):
        return run.fail(rt.EXIT_FAILED, f"The source config file {config_path or '(none)'} does not exist.")
    try:
        cfg = load_source_config(config_path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        rt.set_configuration_status("Failed")
        return run.fail(19, f"Invalid source config file {config_path}: {exc}")
    agent = cfg["agent"]
    if agent["bios_id"].lower() != ident["bios_id"].lower() or agent["host_id"] != ident["host_id"]:
        rt.set_configuration_status("Failed")
        return run.fail(
            rt.EXIT_BIOS_ID_MISMATCH, "The source config file was generated for another machine (BIOS ID mismatch)."
        )
    host, app_port = cfg["appliance"]["host"], cfg["appliance"]["port"]
    payload = registration_payload(run, version, ident, "CSPrime")
    payload["registration_key"] = cfg["registration_key"]
    credential_less = run.args.get("-D", "false").lower() == "true"
    payload["credential_less_discovery"] = credential_less
    run.log("INFO", f"registering host {ident['host_id']} with appliance {host}:{app_port}")
    try:
        status, data, der = https_post(host, app_port, "/api/rcm/register", payload, {})
    except TransportError as exc:
        registration_failed(run)
        if exc.detail:
            run.log("INFO", f"transport detail: {exc.detail}")
        return run.fail(119, exc.line)
    if status in (401, 403):
        registration_failed(run)
        return run.fail(128, f"Registration failed: the appliance rejected the registration key (HTTP {status}).")
    if status != 200:
        registration_failed(run)
        return run.fail(119, f"post request: (22) - The requested URL returned error: {status}")
    record_server_certificate(host, app_port, der)
    rcm_info = rt.rpath(rt.RCM_INFO)
    if not os.path.exists(rcm_info):
        rt.guard(rcm_info)
        rt.makedirs(os.path.dirname(rcm_info))
        shutil.copyfile(os.path.join(run.vx_dir, "etc", "RCMInfo.conf"), rcm_info)
    rcm = rt._new_parser()
    rcm.read(rcm_info, encoding="utf-8")
    if not rcm.has_section("rcm"):
        rcm.add_section("rcm")
    rcm.set("rcm", "ServiceUri", f"https://{host}:{app_port}")
    rcm.set("rcm", "ManagementId", str(cfg["appliance"].get("id", "")))
    rcm.set("rcm", "BiosId", ident["bios_id"])
    rcm.set("rcm", "ClientRequestId", run.args.get("-r", ""))
    buf = io.StringIO()
    rcm.write(buf, space_around_delimiters=True)
    rt.write_file_atomic(rcm_info, buf.getvalue())
    set_host_id_and_cs_type(
        run,
        ident["host_id"],
        "CSPrime",
        Hostname="",
        Port=str(port),
        RcmSettingsPath=rcm_info,
        IsCredentialLessDiscovery="1" if credential_less else "0",
    )
    rt.set_configuration_status("Succeeded")
    run.log("INFO", f"registration with appliance {host}:{app_port} succeeded")
    rt.say(f"Registration with the appliance {host}:{app_port} succeeded.")
    return rt.EXIT_SUCCESS


def points_elsewhere(run: Run, host: str, port: int) -> str | None:
    """drscout.conf's Hostname/Port when they name another CS (empty or 0.0.0.0 names none)."""
    conf = rt.read_drscout(run.vx_dir)
    old_host = conf.get("vxagent", "Hostname", fallback="").strip()
    old_port = conf.get("vxagent", "Port", fallback="").strip()
    if not old_host or old_host == "0.0.0.0":
        return None
    if conf.get("vxagent", "PlatformChangeToCSPrime", fallback="").lower() == "true":
        return None
    if old_host == host and (old_port or "443") == str(port):
        return None
    return f"{old_host}:{old_port or 443}"


def main(argv: list[str]) -> int:
    rt.record_call("UnifiedAgentConfigurator.sh", argv)
    try:
        opts, rest = getopt.getopt(argv, "i:e:l:C:P:S:D:U:m:j:c:p:r:f:qh")
    except getopt.GetoptError as exc:
        rt.say(f"{exc}\n{USAGE}")
        return rt.EXIT_SUCCESS  # Microsoft's usage() exits 0
    args = dict(opts)
    if "-h" in args or args.get("-c", "CSLegacy") not in ("CSLegacy", "CSPrime"):
        rt.say(USAGE)
        return rt.EXIT_SUCCESS
    try:
        port = int(args.get("-p", "443"))
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        rt.say(f"Invalid port {args.get('-p')}.\n{USAGE}")
        return rt.EXIT_SUCCESS
    vx_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = Run(args, vx_dir)
    return run.finish(configure(run, port))


def configure(run: Run, port: int) -> int:
    args = run.args
    if "-e" in args:
        try:
            ipaddress.IPv4Address(args["-e"])
        except ValueError:
            return run.fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid external IP address {args['-e']}.")
    if "-U" in args:
        return run.fail(rt.EXIT_FAILED, "Unconfiguring (-U) is not simulated.")
    version = rt.read_vx_version()
    if version is None:
        return run.fail(rt.EXIT_FAILED, "The Mobility Service is not installed (/usr/local/.vx_version not found).")
    run.platform = rt.read_drscout(run.vx_dir).get("vxagent", "VmPlatform", fallback="")
    if run.platform not in ("VmWare", "Azure"):
        run.error("ASRMobilityServiceVMPlatformNotSet", "VM platform is not set to VmWare or Azure.")
        return run.fail(
            rt.EXIT_FAILED, "Aborting configuration as VM_PLATFORM value is either null or it is not VmWare/Azure."
        )
    try:
        ident = rt.load_identity(run.vx_dir)
    except (OSError, ValueError):
        return run.fail(rt.EXIT_FAILED, "The Mobility Service installation is inconsistent (host identity missing).")
    try:
        if run.cs_type == "CSPrime":
            if "-q" not in args:
                prompt_forever("the source config file path")
            rt.set_configuration_status(None)
            pause("configure", "begin")
            rt.maybe_hang("configure", run.logfile, COMPONENT)
            if rt.knob_fail_at("configure"):
                rt.set_configuration_status("Failed")
                return run.fail(
                    rt.EXIT_REGISTRATION_FAILED, "ASR_SIM_FAIL_AT=configure: registration failed (simulated)"
                )
            return paused_when_done(register_modernized(run, version, ident, port))
        if "-i" not in args:
            prompt_forever("the configuration server IP address")
        if "-P" not in args:
            prompt_forever("the passphrase file path")
        host = args["-i"].strip().strip("[]")
        if not os.path.isfile(args["-P"]):
            return run.fail(rt.EXIT_FAILED, f"The passphrase file {args['-P']} does not exist.")
        other = points_elsewhere(run, host, port)
        if other is not None:
            return run.fail(
                rt.EXIT_POINTING_TO_DIFFERENT_CS,
                f"The agent is already configured with the configuration server {other}; not changing it to {host}:{port}.",
            )
        rt.set_configuration_status(None)
        pause("configure", "begin")
        rt.maybe_hang("configure", run.logfile, COMPONENT)
        if rt.knob_fail_at("configure"):
            registration_failed(run)
            return run.fail(rt.EXIT_REGISTRATION_FAILED, "ASR_SIM_FAIL_AT=configure: registration failed (simulated)")
        return paused_when_done(register_classic(run, version, ident, host, port))
    except rt.OutsideRootError as exc:
        return run.fail(rt.EXIT_FAILED, str(exc))


def paused_when_done(code: int) -> int:
    """ASR_SIM_PAUSE=configure:done: registered (the server answered, .vx_version says Succeeded), not yet exited."""
    if code == rt.EXIT_SUCCESS:
        pause("configure", "done")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
