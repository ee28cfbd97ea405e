"""The stand-in's certificate pin and process-server port: what `make demo` hands to asrctl.

``server-cert.pem`` holds the server certificate *and* its CA. Pinning means hashing the first block only;
reading the whole file as one certificate (``ssl.PEM_cert_to_DER_cert``) raised or pinned the wrong bytes,
depending on the random signature lengths. These tests feed :func:`leaf_fingerprint` many freshly made chains.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl

import pytest
from asrsim.csserver import leaf_fingerprint

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

PEM = serialization.Encoding.PEM
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_RSA_KEY = None  # RSA keys are slow to make; one serves every RSA chain (the signatures still differ)


def _key(kind: str):
    global _RSA_KEY
    if kind == "rsa":
        _RSA_KEY = _RSA_KEY or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _RSA_KEY
    return ec.generate_private_key(ec.SECP384R1() if kind == "p384" else ec.SECP256R1())


def _cert(subject: str, key, issuer: str, issuer_key, ca: bool):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _chain(kind: str, length: int) -> list:
    """leaf, [intermediates...], root: each signed by the next, all with fresh serials and signatures."""
    keys = [_key(kind) for _ in range(length)]
    names = [f"leaf-{kind}"] + [f"ca-{kind}-{i}" for i in range(1, length)]
    certs = []
    for i in range(length):
        issuer = min(i + 1, length - 1)
        certs.append(_cert(names[i], keys[i], names[issuer], keys[issuer], ca=i > 0))
    return certs


def _sha256(cert) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def test_the_pin_is_the_leaf_of_many_random_chains() -> None:
    naive_wrong = 0
    cases = [(kind, length) for kind in ("p256", "p384") for length in (2, 3) for _ in range(70)]
    cases += [("rsa", 2)] * 20
    for kind, length in cases:
        chain = _chain(kind, length)
        text = b"".join(c.public_bytes(PEM) for c in chain).decode()
        assert leaf_fingerprint(text) == _sha256(chain[0]), (kind, length)
        assert leaf_fingerprint(text.encode()) == _sha256(chain[0])
        assert leaf_fingerprint(text) not in {_sha256(c) for c in chain[1:]}
        try:
            naive = hashlib.sha256(ssl.PEM_cert_to_DER_cert(text)).hexdigest()
        except ValueError:
            naive = None
        naive_wrong += naive != _sha256(chain[0])
    # The set reproduces the demo's old failure (it hashed the whole chain): about a quarter of the chains give a
    # wrong pin or an exception that way (all of them right by chance: p < 1e-30), so the helper is tested exactly
    # where the old code broke.
    assert naive_wrong > 0


def test_trustme_chains_and_surrounding_text() -> None:
    trustme = pytest.importorskip("trustme")
    for _ in range(20):
        ca = trustme.CA()
        server = ca.issue_cert("localhost", "127.0.0.1")
        pems = [blob.bytes() for blob in server.cert_chain_pems]
        leaf = x509.load_pem_x509_certificate(pems[0])
        text = "subject=CN=localhost\n" + b"\r\n".join(pems).decode().replace("\n", "\r\n") + "\ntrailing words\n"
        assert leaf_fingerprint(text) == _sha256(leaf)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no PEM certificate block"),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nMIIB*xx\n-----END CERTIFICATE-----\n", "no PEM certificate block"),
        ("-----BEGIN CERTIFICATE-----\nMIIBxx=\n-----END CERTIFICATE-----\n", "not valid base64"),
        ("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", "does not hold a DER certificate"),
    ],
)
def test_bad_pem_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        leaf_fingerprint(text)


def test_the_running_stand_in_presents_the_pinned_certificate(cs_factory) -> None:
    cs = cs_factory()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", cs.port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        presented = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    info = json.loads((cs.state_dir / "server.json").read_text())
    assert presented == cs.fingerprint == info["fingerprint"]
    assert (cs.state_dir / "server-cert.sha256").read_text().strip() == presented
    assert presented != leaf_fingerprint(cs.ca_file.read_text())


def test_the_process_server_port_is_a_free_one_that_accepts(cs_factory) -> None:
    cs = cs_factory()
    info = json.loads((cs.state_dir / "server.json").read_text())
    assert info["ps_port"] == cs.ps_port and cs.ps_port not in (0, 9443, cs.port)
    with socket.create_connection(("127.0.0.1", cs.ps_port), timeout=10) as conn:
        conn.settimeout(10)
        assert conn.recv(1) == b""  # accepted, then closed by the stand-in
    second = cs_factory(name="second")
    assert second.ps_port not in (cs.ps_port, second.port)
    cs.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", cs.ps_port), timeout=2):
        pass
