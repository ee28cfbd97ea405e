"""Simulated UnifiedAgentConfigurator (Linux), stdlib only; started by bin/UnifiedAgentConfigurator.sh.

Classic:    -i <CS host>[:port] -P <passphrase file, full path> [-c CSLegacy] [-q]
Modernized: -S <config.json> [-q] -c CSPrime [-D true|false]

TLS: like the real tool it does not require the configuration server's certificate to chain to a
trusted CA (configuration servers use self-signed certificates), but it rejects a certificate that
is expired or not yet valid (the DER validity is read with a tiny stdlib parser).  When the
environment has ASR_SIM_CS_CAFILE=<PEM>, it verifies the chain and the host name against that CA.
Any TLS problem is reported as curl's error 60, as the real tool's log does.

The passphrase is never printed or logged; it only keys an HMAC over the request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getopt
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import ssl
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import asrsim_agent as rt  # noqa: E402

COMPONENT = "UnifiedAgentConfigurator"
USAGE = (
    "Usage: UnifiedAgentConfigurator.sh -i <CS IP>[:<port>] -P <passphrase file (full path)> [-c CSLegacy]\n"
    "       UnifiedAgentConfigurator.sh -S <config.json> -q -c CSPrime [-D true]"
)
CONFIG_FORMAT = "asrsim-mobility-agent-config/1"
MSG_CONNECT = "post request: (7) - Couldn't connect to server"
MSG_RESOLVE = "post request: (6) - Couldn't resolve host name"
MSG_TIMEOUT = "post request: (28) - Timeout was reached"
MSG_PEER_CERT = "post request: (60) - Peer certificate cannot be authenticated with given CA certificates"
MSG_RECV = "post request: (56) - Failure when receiving data from the peer"


class TransportError(Exception):
    """A curl-style failure: the quoted line that goes to the log and stderr, plus a detail."""

    def __init__(self, line: str, detail: str = "") -> None:
        super().__init__(line)
        self.line = line
        self.detail = detail


def logfile() -> str:
    return rt.rpath(rt.INSTALL_LOG)


def fail(code: int, message: str) -> int:
    rt.log(logfile(), "ERROR", COMPONENT, message)
    rt.err(message)
    return code


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
def parse_endpoint(value: str) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not host:
        raise ValueError("empty host")
    number = int(port) if port else 443
    if not 0 < number < 65536:
        raise ValueError("bad port")
    return host, number


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
    """Like the real agent, keep the CS certificate and fingerprint under /usr/local/InMage."""
    name = f"{host.replace(':', '_')}_{port}"
    base = rt.rpath(rt.INMAGE_DIR)
    rt.write_file_atomic(
        os.path.join(base, "fingerprints", f"{name}.fingerprint"), hashlib.sha256(der).hexdigest() + "\n"
    )
    rt.write_file_atomic(os.path.join(base, "certs", f"{name}.crt"), ssl.DER_cert_to_PEM_cert(der))


def http_failure(status: int, data: bytes, auth_code: int, other_code: int) -> int:
    if status in (401, 403):
        return fail(auth_code, f"Registration failed: invalid passphrase or CS endpoint (HTTP {status}).")
    rt.log(logfile(), "INFO", COMPONENT, f"server answered HTTP {status}: {data[:200].decode(errors='replace')}")
    return fail(other_code, f"post request: (22) - The requested URL returned error: {status}")


def transport_failure(exc: TransportError, code: int) -> int:
    if exc.detail:
        rt.log(logfile(), "INFO", COMPONENT, f"transport detail: {exc.detail}")
    return fail(code, exc.line)


def registration_payload(vx_dir: str, version: dict[str, str], ident: dict[str, str], cs_type: str) -> dict:
    conf = rt.read_drscout(vx_dir)
    return {
        "host_id": ident["host_id"],
        "bios_id": ident["bios_id"],
        "hostname": rt.local_hostname(),
        "agent_version": version.get("VERSION", ""),
        "os_tag": version.get("OS_BUILT_FOR", ""),
        "role": version.get("AGENT_MODE", ""),
        "platform": conf.get("vxagent", "VmPlatform", fallback=""),
        "cs_type": cs_type,
    }


def mark_registered(vx_dir: str, host_id: str, host: str, port: int, cs_type: str, **extra: str) -> None:
    rt.update_drscout(vx_dir, HostId=host_id, Hostname=host, Port=str(port), CSType=cs_type, **extra)
    rt.set_vx_version(AGENT_CONFIGURATION_STATUS="Succeeded")


def mark_failed() -> None:
    current = rt.read_vx_version() or {}
    if current.get("AGENT_CONFIGURATION_STATUS") != "Succeeded":
        rt.set_vx_version(AGENT_CONFIGURATION_STATUS="Failed")


# --------------------------------------------------------------------------- flows
def register_classic(vx_dir, version, ident, endpoint: str, passphrase_file: str) -> int:
    try:
        host, port = parse_endpoint(endpoint)
    except ValueError:
        return fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid arguments: bad CS endpoint '{endpoint}'")
    try:
        passphrase = rt.read_passphrase(passphrase_file)
    except (OSError, UnicodeDecodeError):
        return fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid arguments: cannot read the passphrase file {passphrase_file}")
    if not passphrase:
        return fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid arguments: the passphrase file {passphrase_file} is empty")
    payload = registration_payload(vx_dir, version, ident, "CSLegacy")
    path = "/api/register"
    body = json.dumps(payload, sort_keys=True).encode()
    rt.log(logfile(), "INFO", COMPONENT, f"registering host {ident['host_id']} with configuration server {host}:{port}")
    try:
        status, data, der = https_post(
            host, port, path, payload, {"Authorization": sign(passphrase, "POST", path, body)}
        )
    except TransportError as exc:
        mark_failed()
        return transport_failure(exc, rt.EXIT_REGISTRATION_FAILED)
    if status != 200:
        mark_failed()
        return http_failure(status, data, rt.EXIT_INVALID_PASSPHRASE, rt.EXIT_REGISTRATION_FAILED)
    record_server_certificate(host, port, der)
    mark_registered(vx_dir, ident["host_id"], host, port, "CSLegacy")
    rt.log(logfile(), "INFO", COMPONENT, f"registration with {host}:{port} succeeded")
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


def register_modernized(vx_dir, version, ident, config_path: str, credential_less: str) -> int:
    try:
        cfg = load_source_config(config_path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return fail(rt.EXIT_INVALID_SOURCE_CONFIG, f"Invalid source config file {config_path}: {exc}")
    agent = cfg["agent"]
    if agent["bios_id"].lower() != ident["bios_id"].lower() or agent["host_id"] != ident["host_id"]:
        return fail(
            rt.EXIT_BIOS_ID_MISMATCH, "The source config file was generated for another machine (BIOS ID mismatch)."
        )
    host, port = cfg["appliance"]["host"], cfg["appliance"]["port"]
    payload = registration_payload(vx_dir, version, ident, "CSPrime")
    payload["registration_key"] = cfg["registration_key"]
    payload["credential_less_discovery"] = credential_less == "true"
    rt.log(logfile(), "INFO", COMPONENT, f"registering host {ident['host_id']} with appliance {host}:{port}")
    try:
        status, data, der = https_post(host, port, "/api/rcm/register", payload, {})
    except TransportError as exc:
        mark_failed()
        return transport_failure(exc, rt.EXIT_RCM_REGISTRATION_FAILURE)
    if status != 200:
        mark_failed()
        return http_failure(status, data, rt.EXIT_CSPRIME_LOGIN_FAILURE, rt.EXIT_RCM_REGISTRATION_FAILURE)
    record_server_certificate(host, port, der)
    rcm_info = os.path.join(vx_dir, "etc", "RCMInfo.conf")
    rt.write_file_atomic(
        rcm_info,
        f"[rcm]\nApplianceHost={host}\nAppliancePort={port}\nApplianceId={cfg['appliance'].get('id', '')}\n",
    )
    mark_registered(
        vx_dir,
        ident["host_id"],
        host,
        port,
        "CSPrime",
        RcmSettingsPath=rcm_info,
        IsCredentialLessDiscovery=credential_less,
    )
    rt.log(logfile(), "INFO", COMPONENT, f"registration with appliance {host}:{port} succeeded")
    rt.say(f"Registration with the appliance {host}:{port} succeeded.")
    return rt.EXIT_SUCCESS


def main(argv: list[str]) -> int:
    try:
        opts, rest = getopt.getopt(argv, "i:P:S:c:D:qh")
    except getopt.GetoptError as exc:
        return fail(rt.EXIT_INVALID_COMMAND_LINE, f"Invalid command line: {exc}\n{USAGE}")
    if rest:
        return fail(rt.EXIT_INVALID_COMMAND_LINE, f"Invalid command line: unexpected {' '.join(rest)}\n{USAGE}")
    args: dict[str, str] = {}
    for flag, value in opts:
        if flag == "-h":
            rt.say(USAGE)
            return rt.EXIT_SUCCESS
        args[flag] = value

    modernized = "-S" in args
    if modernized:
        if "-i" in args or "-P" in args:
            return fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid arguments: use either -i/-P or -S\n{USAGE}")
        if args.get("-c", "CSPrime") != "CSPrime":
            return fail(rt.EXIT_INVALID_ARGUMENTS, "Invalid arguments: -S needs -c CSPrime")
        credential_less = args.get("-D", "false").lower()
        if credential_less not in ("true", "false"):
            return fail(rt.EXIT_INVALID_ARGUMENTS, "Invalid arguments: -D takes true or false")
    else:
        if "-i" not in args or "-P" not in args:
            return fail(rt.EXIT_INVALID_ARGUMENTS, f"Invalid arguments: both -i and -P are mandatory\n{USAGE}")
        if args.get("-c", "CSLegacy") != "CSLegacy":
            return fail(rt.EXIT_INVALID_ARGUMENTS, "Invalid arguments: -i/-P registration needs -c CSLegacy")
        if not os.path.isabs(args["-P"]):
            return fail(rt.EXIT_INVALID_ARGUMENTS, "Invalid arguments: -P needs the full path of the passphrase file")

    vx_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = rt.read_vx_version()
    if version is None:
        return fail(rt.EXIT_FAILED, "The Mobility Service is not installed (/usr/local/.vx_version not found).")
    platform = rt.read_drscout(vx_dir).get("vxagent", "VmPlatform", fallback="")
    if platform not in ("VmWare", "Azure"):
        return fail(
            rt.EXIT_FAILED, "Aborting configuration as VM_PLATFORM value is either null or it is not VmWare/Azure"
        )
    try:
        ident = rt.load_identity(vx_dir)
    except (OSError, ValueError):
        return fail(rt.EXIT_FAILED, "The Mobility Service installation is inconsistent (host identity missing).")

    lock_path = rt.rpath(rt.DRSCOUT_LOCK)
    try:
        rt.makedirs(os.path.dirname(lock_path))
        lock_fd = os.open(rt.guard(lock_path), os.O_RDWR | os.O_CREAT, 0o644)
    except (OSError, rt.OutsideRootError) as exc:
        return fail(rt.EXIT_FAILED, f"Cannot open {lock_path}: {exc}")
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return fail(rt.EXIT_ANOTHER_INSTANCE, "Another instance of the configurator is running.")
        rt.maybe_hang("configure", logfile(), COMPONENT)
        if rt.knob_fail_at("configure"):
            mark_failed()
            return fail(rt.EXIT_REGISTRATION_FAILED, "ASR_SIM_FAIL_AT=configure: registration failed (simulated)")
        if modernized:
            return register_modernized(vx_dir, version, ident, args["-S"], credential_less)
        return register_classic(vx_dir, version, ident, args["-i"], args["-P"])
    except rt.OutsideRootError as exc:
        return fail(rt.EXIT_FAILED, str(exc))
    finally:
        with contextlib.suppress(OSError):
            os.close(lock_fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
