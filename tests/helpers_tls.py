"""Loopback servers and certificates for the connectivity tests.

Every server listens on 127.0.0.1 (or ::1) on an ephemeral port, runs in daemon threads, and is stopped by
``close()``; the tests register that in a finalizer. The CONNECT proxy only ever tunnels to loopback addresses,
so a test can never reach anything else through it.
"""

from __future__ import annotations

import datetime as dt
import select
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from asrctl.net.checks import Check
from asrctl.net.preflight import check_cs

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
NOW = dt.datetime.now(dt.UTC)


# --- certificates ---------------------------------------------------------------------------------------


@dataclass
class CertPair:
    """A server certificate and its key, as PEM, plus the DER the client sees."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert_pem.decode("ascii"))

    def configure(self, ctx: ssl.SSLContext, tmp_dir: Any) -> None:
        cert_file = tmp_dir / f"cert-{id(self)}.pem"
        key_file = tmp_dir / f"key-{id(self)}.pem"
        cert_file.write_bytes(self.cert_pem)
        key_file.write_bytes(self.key_pem)
        ctx.load_cert_chain(cert_file, key_file)


def from_trustme(leaf: trustme.LeafCert) -> CertPair:
    return CertPair(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes())


def self_signed(
    common_name: str = "CS01",
    *,
    sans: tuple[x509.GeneralName, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    subject: x509.Name | None = None,
) -> CertPair:
    """Like a configuration server's own certificate: self-signed, issued to the machine name, no SAN."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=3 * 365))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return CertPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


# --- servers --------------------------------------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _V6Server(_Server):
    address_family = socket.AF_INET6


class Loopback:
    """A socketserver on loopback, served from a thread until ``close()``."""

    def __init__(self, handler: type[socketserver.BaseRequestHandler], host: str = "127.0.0.1") -> None:
        cls = _V6Server if ":" in host else _Server
        self.server = cls((host, 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class _TLSHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        owner: TLSServer = self.server.owner  # type: ignore[attr-defined]
        self.request.settimeout(5)
        try:
            tls = owner.context.wrap_socket(self.request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that only wanted the certificate, or rejected it
        owner.handshakes += 1
        if not owner.respond:
            owner.stop.wait(10)  # handshake done, then silence
            tls.close()
            return
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except (OSError, ssl.SSLError):
            pass
        finally:
            tls.close()


class TLSServer(Loopback):
    """An HTTPS server with the given certificate; ``legacy`` speaks TLS 1.0 only (an old configuration server);
    ``respond=False`` completes handshakes and then never answers the request."""

    def __init__(
        self, pair: CertPair, tmp_dir: Any, *, host: str = "127.0.0.1", legacy: bool = False, respond: bool = True
    ) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pair.configure(ctx, tmp_dir)
        if legacy:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.context = ctx
        self.handshakes = 0
        self.respond = respond
        self.stop = threading.Event()
        super().__init__(_TLSHandler, host)

    def close(self) -> None:
        self.stop.set()
        super().close()


class _SilentHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        owner: SilentServer = self.server.owner  # type: ignore[attr-defined]
        owner.stop.wait(10)  # hold the connection and say nothing


class SilentServer(Loopback):
    """Accepts connections and never answers: a TLS client times out in its handshake."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        super().__init__(_SilentHandler)

    def close(self) -> None:
        self.stop.set()
        super().close()


class ClosedPort:
    """A port bound but not listening: connecting is refused, and nobody else can take the port meanwhile."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.host = host
        self.port = self.sock.getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self.sock.close()


class FullBacklog:
    """A listener whose accept queue is full, so the kernel drops new SYNs and ``connect`` times out (Linux).

    ``ready`` is false when the platform answers anyway; the test skips then.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers: list[socket.socket] = []
        self.ready = False
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(("127.0.0.1", self.port))
            except TimeoutError:
                filler.close()
                self.ready = True
                break
            self.fillers.append(filler)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


@dataclass
class ProxyLog:
    requests: list[dict[str, Any]] = field(default_factory=list)


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        owner: ConnectProxy = self.server.owner  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.settimeout(5)
        if owner.context is not None:  # an https:// proxy: TLS to the proxy first, CONNECT inside it
            try:
                sock = owner.context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                return  # a client that does not trust us, or does not speak TLS
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
                if not head[:1].isalpha():  # not HTTP (a TLS handshake to a plain proxy): as squid does
                    sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
        except OSError:
            return
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        owner.log.requests.append({"method": method, "target": target, "headers": headers})
        if owner.mode == "close":
            return
        if owner.mode == "forbidden":
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if owner.mode == "auth" and headers.get("proxy-authorization") != owner.expect_auth:
            sock.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
            )
            return
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if method != "CONNECT" or host not in LOOPBACK:
            sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")  # never leave loopback
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _relay(sock, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until either side closes. ``a`` may be TLS (an https:// proxy): what it has already
    decrypted does not make its socket readable, so ``pending()`` is asked first."""
    try:
        while True:
            pending = [a] if isinstance(a, ssl.SSLSocket) and a.pending() else []
            readable = pending or select.select([a, b], [], [], 5)[0]
            if not readable:
                return
            for src in readable:
                data = src.recv(65536)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()


class ConnectProxy(Loopback):
    """An HTTP CONNECT proxy. ``mode``: "ok" tunnels (to loopback only), "forbidden" answers 403, "close" hangs
    up without a word, "auth" wants ``Proxy-Authorization: <expect_auth>``. With ``tls`` (a certificate and key)
    it is an https:// proxy: the client speaks TLS to it, and the CONNECT and the tunnel run inside that TLS."""

    def __init__(
        self, mode: str = "ok", expect_auth: str | None = None, *, tls: CertPair | None = None, tmp_dir: Any = None
    ) -> None:
        self.mode = mode
        self.expect_auth = expect_auth
        self.log = ProxyLog()
        self.context: ssl.SSLContext | None = None
        if tls is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.configure(self.context, tmp_dir)
        super().__init__(_ProxyHandler)

    @property
    def url(self) -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"


# --- running the checks against these servers ----------------------------------------------------------

FAST = 1.0  # seconds; every server here is local, so anything slower is a bug
FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def tls_server(serve: Any, tmp_path: Any, pair: CertPair, **kw: Any) -> TLSServer:
    server: TLSServer = serve(TLSServer(pair, tmp_path, **kw))
    return server


def run(server: Any, closed: ClosedPort, **kw: Any) -> dict[str, Check]:
    kw.setdefault("timeout", FAST)
    return by_name(check_cs(server.endpoint, ps_port=closed.port, **kw))
