"""Configuration-server / replication-appliance stand-in: HTTPS on loopback only.

CLI (see ``scripts/cs_sim.py``)::

    cs_sim.py serve --state-dir DIR --passphrase-file F [--host 127.0.0.1] [--port 0] [--port-file FILE]
                    [--ps-port 0] [--cert-mode ok|expired|wrong-host] [--fail-first N] [--max-lifetime S]
                    [--exit-on-stdin-eof]
    cs_sim.py make-config --state-dir DIR --agent-input STR --out config.json [--endpoint HOST:PORT]

Python API for pytest: :func:`start` (returns a :class:`RunningCS`), :func:`make_config`,
:func:`leaf_fingerprint` (the pin for ``asrctl --cs-fingerprint``).

State directory (all written by ``serve``): ``ca.pem`` (throwaway CA), ``server-cert.pem``,
``server-key.pem``, ``passphrase`` (0600 copy), ``appliance_id``, ``registered.json`` (list of
registered hosts), ``server.json`` (host/port/ps_port/pid/fingerprint while running),
``cs_sim.log`` (requests; never the passphrase).

Beside HTTPS it listens on a second free port, the process server's data port (9443 on a real CS): it accepts
TCP connections and closes them, which is all asrctl's connectivity check asks of it (``--ps-port``).

HTTP API (JSON):
    GET  /health                200 {"status": "ok", "cert_mode", "registered"}
    GET  /api/hosts             200 {"hosts": [...]}
    POST /api/register          classic registration; header
                                ``Authorization: ASRSIM-HMAC-SHA256 nonce=<hex>, signature=<hex>``
                                with signature = HMAC-SHA256(passphrase,
                                "POST\\n/api/register\\n<nonce>\\n<sha256 hex of body>"); 401 on mismatch
    POST /api/rcm/register      modernized registration; body carries ``registration_key`` from
                                config.json; 401 when it does not match
    POST /api/rcm/agent-config  {"agent_input": "<getagentconfiginput string>"} -> config.json body
The two register endpoints answer 503 to the first ``--fail-first`` requests (counted together).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1")
CERT_MODES = ("ok", "expired", "wrong-host")
CONFIG_FORMAT = "asrsim-mobility-agent-config/1"
WRONG_HOST_NAME = "cs.wrong-host.invalid"
CS_SIM_SCRIPT = Path(__file__).resolve().parent.parent / "cs_sim.py"
MAX_BODY = 1 << 20


# --------------------------------------------------------------------------- small helpers
def read_secret(path: str | os.PathLike[str]) -> str:
    """File content minus one trailing newline (LF or CRLF), like the configurator."""
    text = Path(path).read_text(encoding="utf-8")
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----")


def leaf_fingerprint(pem: str | bytes) -> str:
    """SHA-256 (hex) of the first certificate in a PEM text: the server's own certificate, which is what
    ``asrctl --cs-fingerprint`` pins.

    ``server-cert.pem`` holds the server certificate followed by its CA (TLS servers send the chain).
    ``ssl.PEM_cert_to_DER_cert`` over that whole text decodes both blocks and the armour between them as one
    base64 run: depending on the signature lengths it raises or returns a DER with trailing bytes, whose digest
    pins nothing the server presents. Only the first block counts here, decoded strictly.
    """
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise ValueError("no PEM certificate block (-----BEGIN CERTIFICATE-----) in the text")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the first PEM certificate block is not valid base64: {exc}") from None
    if not der.startswith(b"\x30"):  # a DER certificate is a SEQUENCE
        raise ValueError("the first PEM certificate block does not hold a DER certificate")
    return hashlib.sha256(der).hexdigest()


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}.{threading.get_ident()}")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def registration_key(passphrase: str, host_id: str, bios_id: str) -> str:
    return hmac.new(passphrase.encode(), f"rcm\n{host_id}\n{bios_id}".encode(), hashlib.sha256).hexdigest()


def _appliance_id(state_dir: Path) -> str:
    path = state_dir / "appliance_id"
    with contextlib.suppress(OSError):
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
    value = str(uuid.uuid4())
    _write(path, value + "\n")
    return value


# --------------------------------------------------------------------------- certificates
def make_certificates(state_dir: Path, cert_mode: str) -> dict[str, Path]:
    """Throwaway CA + server certificate (EC P-256) for loopback, in the state dir."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(f"cs_sim needs the 'cryptography' package: {exc}") from None

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asrsim throwaway CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    if cert_mode == "wrong-host":
        common_name = WRONG_HOST_NAME
        names: list[x509.GeneralName] = [x509.DNSName(WRONG_HOST_NAME)]
    else:
        common_name = "localhost"
        names = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    if cert_mode == "expired":
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    else:
        not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=300)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = {
        "ca": state_dir / "ca.pem",
        "cert": state_dir / "server-cert.pem",
        "key": state_dir / "server-key.pem",
    }
    _write(paths["ca"], ca_cert.public_bytes(pem))
    _write(paths["cert"], cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    _write(
        paths["key"],
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    # The pin, from the certificate object itself (leaf_fingerprint reads the same from the PEM file).
    paths["fingerprint"] = state_dir / "server-cert.sha256"
    _write(paths["fingerprint"], cert.fingerprint(hashes.SHA256()).hex() + "\n")
    return paths


# --------------------------------------------------------------------------- modernized config
def decode_agent_input(agent_input: str) -> dict[str, str]:
    """The AzureRcmCli --getagentconfiginput string (with or without its prefix) -> dict."""
    text = agent_input.strip()
    if text.startswith("getagentconfiginput:"):
        text = text.split(":", 1)[1]
    try:
        data = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the agent config input is not valid base64 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the agent config input is not a JSON object")
    for key in ("hostname", "host_id", "bios_id"):
        if not isinstance(data.get(key), str) or not data[key]:
            # The real RcmProxyAgent fails with ArgumentNullException ("findValue"), I#102753.
            raise ValueError(f"Value cannot be null. (Parameter 'findValue'): agent config input lacks {key}")
    return data


def make_config(
    state_dir: str | os.PathLike[str],
    agent_input: str,
    out: str | os.PathLike[str] | None = None,
    endpoint: tuple[str, int] | None = None,
) -> dict:
    """Turn a getagentconfiginput string into the config.json that ``-S`` accepts.

    The endpoint comes from the running server's ``server.json`` unless given.  When *out* is
    given the file is written (mode 0600).  Raises ValueError/FileNotFoundError.
    """
    state = Path(state_dir)
    agent = decode_agent_input(agent_input)
    if endpoint is None:
        info = json.loads((state / "server.json").read_text(encoding="utf-8"))
        endpoint = (info["host"], int(info["port"]))
    passphrase = read_secret(state / "passphrase")
    config = {
        "format": CONFIG_FORMAT,
        "cs_type": "CSPrime",
        "appliance": {"host": endpoint[0], "port": endpoint[1], "id": _appliance_id(state)},
        "agent": {"hostname": agent["hostname"], "host_id": agent["host_id"], "bios_id": agent["bios_id"]},
        "registration_key": registration_key(passphrase, agent["host_id"], agent["bios_id"]),
        "issued_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    if out is not None:
        _write(Path(out), json.dumps(config, indent=2, sort_keys=True) + "\n", 0o600)
    return config


# --------------------------------------------------------------------------- server
class _App:
    def __init__(self, state_dir: Path, passphrase: str, cert_mode: str, fail_first: int, host: str) -> None:
        self.state_dir = state_dir
        self.passphrase = passphrase
        self.cert_mode = cert_mode
        self.fail_left = fail_first
        self.host = host
        self.port = 0
        self.lock = threading.Lock()
        self.registered_path = state_dir / "registered.json"
        self.log_path = state_dir / "cs_sim.log"
        if not self.registered_path.exists():
            _write(self.registered_path, "[]\n")

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.lock, open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")

    def hosts(self) -> list[dict]:
        with self.lock:
            return json.loads(self.registered_path.read_text(encoding="utf-8"))

    def take_failure(self) -> bool:
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return True
            return False

    def record(self, entry: dict) -> None:
        with self.lock:
            hosts = json.loads(self.registered_path.read_text(encoding="utf-8"))
            hosts = [h for h in hosts if h.get("host_id") != entry["host_id"]]
            hosts.append(entry)
            _write(self.registered_path, json.dumps(hosts, indent=2, sort_keys=True) + "\n")

    def check_signature(self, header: str, method: str, path: str, body: bytes) -> bool:
        scheme, _, params = header.partition(" ")
        if scheme != "ASRSIM-HMAC-SHA256":
            return False
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        nonce, signature = fields.get("nonce", ""), fields.get("signature", "")
        message = f"{method}\n{path}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
        expected = hmac.new(self.passphrase.encode(), message, hashlib.sha256).hexdigest()
        return bool(nonce) and hmac.compare_digest(expected, signature)


class _Handler(BaseHTTPRequestHandler):
    server_version = "asrsim-cs/1"
    sys_version = ""

    @property
    def app(self) -> _App:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:
        self.app.log(f"{self.client_address[0]} {format % args}")

    def _send(self, status: int, payload: dict | list | str) -> None:
        body = (payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "ASR configuration server simulator\n")
        elif self.path == "/health":
            self._send(200, {"status": "ok", "cert_mode": self.app.cert_mode, "registered": len(self.app.hosts())})
        elif self.path == "/api/hosts":
            self._send(200, {"hosts": self.app.hosts()})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            self._send(400, {"error": "bad Content-Length"})
            return
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        if not isinstance(data, dict):
            self._send(400, {"error": "body is not a JSON object"})
            return
        if self.path == "/api/rcm/agent-config":
            self._agent_config(data)
        elif self.path in ("/api/register", "/api/rcm/register"):
            self._register(data, body)
        else:
            self._send(404, {"error": "not found"})

    def _agent_config(self, data: dict) -> None:
        try:
            config = make_config(
                self.app.state_dir, str(data.get("agent_input", "")), None, (self.app.host, self.app.port)
            )
        except ValueError as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, config)

    def _register(self, data: dict, body: bytes) -> None:
        if self.app.take_failure():
            self._send(503, {"error": "service unavailable (fail-first)"})
            return
        modernized = self.path == "/api/rcm/register"
        if modernized:
            expected = registration_key(self.app.passphrase, str(data.get("host_id", "")), str(data.get("bios_id", "")))
            authorized = hmac.compare_digest(expected, str(data.get("registration_key", "")))
        else:
            authorized = self.app.check_signature(self.headers.get("Authorization", ""), "POST", self.path, body)
        if not authorized:
            self._send(401, {"error": "invalid passphrase" if not modernized else "invalid registration key"})
            return
        if not all(isinstance(data.get(k), str) and data[k] for k in ("host_id", "hostname")):
            self._send(400, {"error": "host_id and hostname are required"})
            return
        entry = {
            k: data.get(k, "")
            for k in ("host_id", "hostname", "bios_id", "agent_version", "os_tag", "role", "platform", "cs_type")
        }
        entry.update(
            mode="modernized" if modernized else "classic",
            client=self.client_address[0],
            registered_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        )
        if modernized:
            entry["credential_less_discovery"] = bool(data.get("credential_less_discovery"))
        self.app.record(entry)
        self._send(200, {"status": "registered", "host_id": entry["host_id"], "mode": entry["mode"]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: _App, ssl_ctx: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.ssl_ctx = ssl_ctx
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer's getfqdn() (a reverse lookup): loopback needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        """TLS handshake in the worker thread, so one stalled client cannot block accept()."""
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.app.log(f"{client_address[0]} TLS handshake failed: {exc}")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError) as exc:
            self.app.log(f"{client_address[0]} connection error: {exc}")
        finally:
            with contextlib.suppress(OSError):
                tls.close()


class _ProcessServerPort:
    """The process server's data port: accept a TCP connection and close it.

    asrctl only checks that the port takes connections (registration needs 443 alone; replication data would
    flow here later). The stand-in binds a free port like the HTTPS one, so nothing depends on 9443 being free.
    """

    def __init__(self, host: str, port: int, app: _App) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.app = app
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ps-port", daemon=True)

    def _loop(self) -> None:
        while not self.done.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.close()
            self.app.log(f"{peer[0]} process server port: connection accepted and closed")

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()


def serve(
    state_dir: str | os.PathLike[str],
    passphrase_file: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = 0,
    port_file: str | os.PathLike[str] | None = None,
    cert_mode: str = "ok",
    fail_first: int = 0,
    max_lifetime: float = 0.0,
    exit_on_stdin_eof: bool = False,
    ps_port: int = 0,
) -> int:
    if host not in LOOPBACK:
        print(f"cs_sim: refusing to listen on {host}: only 127.0.0.1 and ::1 are allowed", file=sys.stderr)
        return 2
    if cert_mode not in CERT_MODES:
        print(f"cs_sim: unknown --cert-mode {cert_mode}", file=sys.stderr)
        return 2
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    try:
        passphrase = read_secret(passphrase_file)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cs_sim: cannot read the passphrase file: {exc}", file=sys.stderr)
        return 2
    if not passphrase:
        print("cs_sim: the passphrase file is empty", file=sys.stderr)
        return 2
    _write(state / "passphrase", passphrase + "\n", 0o600)
    _appliance_id(state)
    paths = make_certificates(state, cert_mode)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths["cert"], paths["key"])
    app = _App(state, passphrase, cert_mode, max(0, fail_first), host)
    server = _Server((host, port), app, ctx)
    app.port = server.server_address[1]
    ps = _ProcessServerPort(host, ps_port, app)
    ps.start()

    stop = threading.Event()

    def _on_signal(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if exit_on_stdin_eof:

        def _watch_stdin() -> None:
            # Raw fd reads: a daemon thread blocked in sys.stdin's buffered reader would abort
            # the interpreter at exit.
            with contextlib.suppress(OSError):
                while os.read(0, 4096):
                    pass
            stop.set()

        threading.Thread(target=_watch_stdin, name="stdin-watch", daemon=True).start()

    info = {
        "host": host,
        "port": app.port,
        "pid": os.getpid(),
        "url": f"https://{'[::1]' if host == '::1' else host}:{app.port}",
        "ps_port": ps.port,
        "ca_file": str(paths["ca"]),
        "cert_file": str(paths["cert"]),
        "fingerprint": paths["fingerprint"].read_text(encoding="ascii").strip(),
        "cert_mode": cert_mode,
        "fail_first": fail_first,
    }
    _write(state / "server.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    if port_file:
        _write(Path(port_file), f"{app.port}\n")
    app.log(
        f"listening on {info['url']}, process server port {ps.port} (cert mode {cert_mode}, fail-first {fail_first})"
    )
    print(f"cs_sim listening on {info['url']}", flush=True)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    deadline = time.monotonic() + max_lifetime if max_lifetime > 0 else None
    try:
        while not stop.wait(0.05):
            if deadline is not None and time.monotonic() > deadline:
                app.log("max lifetime reached")
                break
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        ps.close()
        with contextlib.suppress(OSError):
            (state / "server.json").unlink()
        app.log("stopped")
    return 0


# --------------------------------------------------------------------------- python API
@dataclass
class RunningCS:
    """A cs_sim server running in a subprocess (see :func:`start`)."""

    process: subprocess.Popen
    host: str
    port: int
    state_dir: Path
    passphrase_file: Path
    cert_mode: str
    ps_port: int = 0
    """The process server's data port (a free one, like ``port``): pass it to ``asrctl --ps-port``."""
    ca_file: Path = field(init=False)
    cert_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ca_file = self.state_dir / "ca.pem"
        self.cert_file = self.state_dir / "server-cert.pem"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the server's own certificate (not of its CA): the value for ``asrctl --cs-fingerprint``."""
        return leaf_fingerprint(self.cert_file.read_text(encoding="ascii"))

    @property
    def endpoint(self) -> str:
        """HOST:PORT as given to ``UnifiedAgentConfigurator.sh -i``."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.endpoint}"

    def registered(self) -> list[dict]:
        return json.loads((self.state_dir / "registered.json").read_text(encoding="utf-8"))

    def make_config(self, agent_input: str, out: str | os.PathLike[str] | None = None) -> dict:
        return make_config(self.state_dir, agent_input, out, (self.host, self.port))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdin:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        return self.process.returncode

    def __enter__(self) -> RunningCS:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(
    state_dir: str | os.PathLike[str],
    passphrase_file: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    cert_mode: str = "ok",
    fail_first: int = 0,
    python: str | None = None,
    timeout: float = 20.0,
    max_lifetime: float = 600.0,
) -> RunningCS:
    """Start ``cs_sim.py serve`` on a free port and wait until it listens.

    The server exits by itself when this process goes away (its stdin is a pipe from us) or
    after *max_lifetime* seconds, so a crashed test run leaves nothing behind.
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    port_file = state / "port"
    with contextlib.suppress(FileNotFoundError):
        port_file.unlink()
    cmd = [
        python or sys.executable,
        str(CS_SIM_SCRIPT),
        "serve",
        "--state-dir",
        str(state),
        "--passphrase-file",
        str(passphrase_file),
        "--host",
        host,
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--ps-port",
        "0",
        "--cert-mode",
        cert_mode,
        "--fail-first",
        str(fail_first),
        "--max-lifetime",
        str(max_lifetime),
        "--exit-on-stdin-eof",
    ]
    out = open(state / "cs_sim.stdout", "ab")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = (state / "cs_sim.stdout").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"cs_sim exited with {proc.returncode}: {output.strip()}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            port = int(port_file.read_text(encoding="ascii").strip())
            # server.json is written before the port file, so it is there now.
            ps_port = int(json.loads((state / "server.json").read_text(encoding="utf-8"))["ps_port"])
            return RunningCS(proc, host, port, state, Path(passphrase_file), cert_mode, ps_port)
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"cs_sim did not start within {timeout} s")


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cs_sim.py", description="ASR configuration server / appliance stand-in")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTPS stand-in on loopback")
    s.add_argument("--state-dir", required=True)
    s.add_argument("--passphrase-file", required=True)
    s.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (default) or ::1; nothing else is allowed")
    s.add_argument("--port", type=int, default=0, help="0 (default) = a free port, printed and written to --port-file")
    s.add_argument("--port-file")
    s.add_argument("--ps-port", type=int, default=0, help="process server data port; 0 (default) = a free port")
    s.add_argument("--cert-mode", choices=CERT_MODES, default="ok")
    s.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N register requests")
    s.add_argument("--max-lifetime", type=float, default=0.0, help="exit after S seconds (0 = never)")
    s.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin is closed")
    m = sub.add_parser("make-config", help="turn a getagentconfiginput string into config.json")
    m.add_argument("--state-dir", required=True)
    m.add_argument("--agent-input", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--endpoint", help="HOST:PORT to put in the config (default: the running server's)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return serve(
            args.state_dir,
            args.passphrase_file,
            host=args.host,
            port=args.port,
            port_file=args.port_file,
            cert_mode=args.cert_mode,
            fail_first=args.fail_first,
            max_lifetime=args.max_lifetime,
            exit_on_stdin_eof=args.exit_on_stdin_eof,
            ps_port=args.ps_port,
        )
    endpoint = None
    if args.endpoint:
        host, _, port = args.endpoint.rpartition(":")
        endpoint = (host.strip("[]"), int(port))
    try:
        make_config(args.state_dir, args.agent_input, args.out, endpoint)
    except ValueError as exc:
        print(f"make-config: {exc}", file=sys.stderr)
        return 2
    except (OSError, KeyError) as exc:
        print(f"make-config: the state dir has no running server or passphrase ({exc})", file=sys.stderr)
        return 1
    print(args.out)
    return 0
