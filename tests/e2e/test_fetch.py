"""``bundles fetch`` against a loopback HTTPS mirror with a throwaway CA (trustme).

The mirror can drop the connection half-way, serve wrong bytes, ignore Range, fail with 503, or serve an HTML
page; every server listens on 127.0.0.1 only and is closed by its fixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from helpers_archives import NAME, M, gz, tar_bytes
from helpers_tls import ClosedPort, ConnectProxy

from asrctl.bundles.digest import read_sums
from asrctl.bundles.fetch import SOURCE_MIRROR, fetch_bundle
from asrctl.errors import AsrctlError

PAYLOAD = gz(tar_bytes([M("install", data=b"#!/bin/sh\n", mode=0o755), M("blob", data=os.urandom(300_000))]), 1)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
BUNDLE_PATH = f"/mirror/asr/{NAME}"


@dataclass
class Mirror:
    files: dict[str, bytes] = field(default_factory=dict)
    drop: int = 0  # this many bundle responses stop half-way and hang up
    unavailable: int = 0  # this many requests get 503
    ignore_range: bool = False
    etag: str = '"v1"'
    log: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = BUNDLE_PATH) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def bundle_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.log if r["path"] == BUNDLE_PATH]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        mirror.log.append(
            {"path": self.path, "range": self.headers.get("Range"), "if_range": self.headers.get("If-Range")}
        )
        if mirror.unavailable:
            mirror.unavailable -= 1
            return self._reply(503, b"busy")
        body = mirror.files.get(self.path)
        if body is None:
            return self._reply(404, b"not found")
        start = 0
        rng = self.headers.get("Range")
        if rng and not mirror.ignore_range and self.headers.get("If-Range") in (None, mirror.etag):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                return self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
        part = body[start:]
        headers = {"ETag": mirror.etag, "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        if self.path == BUNDLE_PATH and mirror.drop:
            mirror.drop -= 1
            self._head(206 if start else 200, len(part), headers)
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        self._reply(206 if start else 200, part, headers)

    def _head(self, code: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._head(code, len(body), headers or {})
        self.wfile.write(body)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "mirror-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def mirror(ca: trustme.CA) -> Any:
    state = Mirror(files={BUNDLE_PATH: PAYLOAD})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.mirror = state  # type: ignore[attr-defined]
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


class FakeOut:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def info(self, text: str) -> None:
        self.infos.append(text)

    def progress(self, description: str, total: int | None) -> Any:
        class Handle:
            def advance(self, n: int) -> None:
                pass

        return contextlib.nullcontext(Handle())


def get(mirror: Mirror, to: Path, ca_file: str | None, **kw: Any) -> Any:
    kw.setdefault("sha256", DIGEST)
    kw.setdefault("out", FakeOut())
    return fetch_bundle(mirror.url(), to, ca_bundle=ca_file, backoff=0, **kw)


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


# --- the ordinary path --------------------------------------------------------------------------------------


def test_fetch_verifies_and_records_the_digest(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    to = tmp_path / "bundles"
    path = fetch_bundle(mirror.url(), to, sha256=DIGEST, ca_bundle=ca_file, out=None).path
    assert path == to / NAME and path.read_bytes() == PAYLOAD
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert read_sums(to / "SHA256SUMS") == {NAME: DIGEST}
    assert leftovers(to) == []


def test_digest_from_sums_on_the_mirror(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.files["/mirror/asr/SHA256SUMS"] = f"{DIGEST}  {NAME}\n{'0' * 64}  other.tar.gz\n".encode()
    got = get(mirror, tmp_path, ca_file, sha256=None)
    assert got.verified and got.source == SOURCE_MIRROR
    assert read_sums(tmp_path / "SHA256SUMS") == {NAME: DIGEST}


def test_resumes_after_the_connection_drops_half_way(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.drop = 1
    out = FakeOut()
    got = get(mirror, tmp_path, ca_file, out=out)
    assert got.path.read_bytes() == PAYLOAD and got.verified
    first, second = mirror.bundle_requests()
    assert first["range"] is None
    offset = int(second["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset < len(PAYLOAD)
    assert second["if_range"] == '"v1"'
    assert got.downloaded == len(PAYLOAD)  # the first half once, the rest once
    assert any("retrying" in w for w in out.warnings)
    assert leftovers(tmp_path) == []


def test_resumes_a_part_left_by_an_earlier_run(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    (tmp_path / f".{NAME}.part").write_bytes(PAYLOAD[:1000])
    (tmp_path / f".{NAME}.part.validator").write_text('"v1"\n')
    got = get(mirror, tmp_path, ca_file)
    assert got.path.read_bytes() == PAYLOAD and got.resumed_from == 1000 and got.downloaded == len(PAYLOAD) - 1000
    [req] = mirror.bundle_requests()
    assert req["range"] == "bytes=1000-" and req["if_range"] == '"v1"'


def test_a_stale_part_from_another_file_is_replaced(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    (tmp_path / f".{NAME}.part").write_bytes(b"\x1f\x8b" + os.urandom(5000))  # no validator kept
    got = get(mirror, tmp_path, ca_file)
    assert got.path.read_bytes() == PAYLOAD and got.verified
    resumed, whole = mirror.bundle_requests()
    assert resumed["range"] == "bytes=5002-" and whole["range"] is None


def test_changed_on_the_mirror_meanwhile_starts_again(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    (tmp_path / f".{NAME}.part").write_bytes(PAYLOAD[:1000])
    (tmp_path / f".{NAME}.part.validator").write_text('"v0"\n')  # the server now says "v1": If-Range fails
    got = get(mirror, tmp_path, ca_file)
    assert got.path.read_bytes() == PAYLOAD
    [req] = mirror.bundle_requests()
    assert req["if_range"] == '"v0"' and got.downloaded == len(PAYLOAD)


def test_server_that_ignores_range(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.drop = 1
    mirror.ignore_range = True
    got = get(mirror, tmp_path, ca_file)
    assert got.path.read_bytes() == PAYLOAD


def test_retries_503_with_backoff(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.unavailable = 2
    out = FakeOut()
    got = get(mirror, tmp_path, ca_file, out=out)
    assert got.path.read_bytes() == PAYLOAD
    assert len(out.warnings) == 2 and "HTTP 503" in out.warnings[0] and "attempt 2 of 6" in out.warnings[0]


def test_already_there_and_verified(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(PAYLOAD)
    got = get(mirror, tmp_path, ca_file)
    assert got.changed is False and mirror.bundle_requests() == []


# --- failures -----------------------------------------------------------------------------------------------


def test_wrong_bytes_are_refused(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    wrong = gz(tar_bytes([M("install", data=b"#!/bin/sh\nevil\n")]))
    mirror.files[BUNDLE_PATH] = wrong
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, ca_file)
    e = err.value
    assert e.code == "ASRCTL-E030" and e.exit_code == 5
    assert DIGEST in e.message and hashlib.sha256(wrong).hexdigest() in e.message
    assert list(tmp_path.iterdir()) == []  # no bundle, no part, no SHA256SUMS


def test_not_found_is_not_retried(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    del mirror.files[BUNDLE_PATH]
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, ca_file)
    assert err.value.code == "ASRCTL-E036" and "HTTP 404" in err.value.message
    assert len(mirror.bundle_requests()) == 1


def test_gives_up_after_the_retries_and_keeps_the_part(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.drop = 10
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, ca_file, retries=2)
    assert err.value.code == "ASRCTL-E036"
    assert "gave up after 3 attempts" in err.value.message and "resumes" in err.value.message
    assert len(mirror.bundle_requests()) == 3
    assert (tmp_path / f".{NAME}.part").stat().st_size > 0
    assert not (tmp_path / NAME).exists()


def test_untrusted_certificate_without_ca_bundle(mirror: Mirror, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, None)
    assert err.value.code == "ASRCTL-E036" and "TLS failed" in err.value.message
    assert "--ca-bundle" in err.value.remedy
    assert mirror.log == []  # never got as far as a request, and no retries


def test_html_instead_of_a_bundle(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.files[BUNDLE_PATH] = b"<!DOCTYPE html><html>Please log in</html>"
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, ca_file, sha256=None)
    assert err.value.code == "ASRCTL-E036" and "<!DOCTYPE html>" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_no_digest_anywhere_warns(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    out = FakeOut()
    got = get(mirror, tmp_path, ca_file, sha256=None, out=out)
    assert not got.verified and got.path.read_bytes() == PAYLOAD
    assert any("NOT VERIFIED" in w for w in out.warnings)
    assert not (tmp_path / "SHA256SUMS").exists()  # an unverified digest is never recorded


def test_no_digest_with_require_digest_downloads_nothing(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    with pytest.raises(AsrctlError) as err:
        get(mirror, tmp_path, ca_file, sha256=None, require_digest=True)
    assert err.value.code == "ASRCTL-E031"
    assert mirror.bundle_requests() == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1:1/mirror/", "ASRCTL-E022"),
        ("https://127.0.0.1:1/mirror/setup.tar.gz", "ASRCTL-E022"),
        (f"http://127.0.0.1:1/{NAME}", "ASRCTL-E002"),  # plain http needs --sha256
        (f"ftp://127.0.0.1/{NAME}", "ASRCTL-E002"),
    ],
)
def test_bad_urls(tmp_path: Path, url: str, code: str) -> None:
    with pytest.raises(AsrctlError) as err:
        fetch_bundle(url, tmp_path, sha256=None, ca_bundle=None, out=None)
    assert err.value.code == code


# --- proxies ------------------------------------------------------------------------------------------------


def test_goes_through_https_proxy(mirror: Mirror, ca_file: str, tmp_path: Path, monkeypatch) -> None:
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        got = get(mirror, tmp_path, ca_file)
    finally:
        proxy.close()
    assert got.path.read_bytes() == PAYLOAD
    assert {(r["method"], r["target"]) for r in proxy.log.requests} == {("CONNECT", f"127.0.0.1:{mirror.port}")}


def test_no_proxy_bypasses_the_proxy(mirror: Mirror, ca_file: str, tmp_path: Path, monkeypatch) -> None:
    dead = ClosedPort()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        got = get(mirror, tmp_path, ca_file)
    finally:
        dead.close()
    assert got.path.read_bytes() == PAYLOAD


def test_proxy_that_refuses(mirror: Mirror, ca_file: str, tmp_path: Path, monkeypatch) -> None:
    proxy = ConnectProxy(mode="forbidden")
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        with pytest.raises(AsrctlError) as err:
            get(mirror, tmp_path, ca_file)
    finally:
        proxy.close()
    assert err.value.code == "ASRCTL-E036" and "proxy" in err.value.message
    assert "HTTPS_PROXY" in err.value.remedy


# --- the command line ---------------------------------------------------------------------------------------


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """asrctl in a sandbox root (so not even its log file lands on the real host)."""
    root.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "NO_PROXY": "*"})
    argv = [sys.executable, "-m", "asrctl", "--root", str(root), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def test_cli_fetch(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    to = tmp_path / "bundles"
    r = _cli(
        tmp_path / "root",
        "--json",
        "bundles",
        "fetch",
        mirror.url(),
        "--sha256",
        DIGEST,
        "--ca-bundle",
        ca_file,
        "--to",
        str(to),
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)["data"]
    assert data["path"] == str(to / NAME) and data["verified"] is True and data["sha256"] == DIGEST
    assert (to / NAME).read_bytes() == PAYLOAD
    assert "Downloading" in r.stderr and "fetched" in r.stderr


def test_cli_fetch_wrong_bytes_exits_5(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    mirror.files[BUNDLE_PATH] = PAYLOAD[:-10] + b"0123456789"
    to = tmp_path / "bundles"
    r = _cli(
        tmp_path / "root", "bundles", "fetch", mirror.url(), "--sha256", DIGEST, "--ca-bundle", ca_file, "--to", str(to)
    )
    assert r.returncode == 5
    assert "ASRCTL-E030" in r.stderr and DIGEST in r.stderr
    assert list(to.iterdir()) == []


def test_cli_fetch_defaults_to_the_bundle_dir_under_the_root(mirror: Mirror, ca_file: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    r = _cli(root, "bundles", "fetch", mirror.url(), "--sha256", DIGEST, "--ca-bundle", ca_file)
    assert r.returncode == 0, r.stderr
    assert (root / "var/lib/asrctl/bundles" / NAME).read_bytes() == PAYLOAD
