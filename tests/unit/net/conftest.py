"""Fixtures for the asrctl.net tests: no proxy from the environment, loopback servers stopped after each test."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from helpers_tls import ClosedPort


@pytest.fixture(autouse=True)
def _no_proxy_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,::1,localhost")


@pytest.fixture
def serve(request: pytest.FixtureRequest):
    """Start a helper server and stop it when the test ends, whatever happens."""

    def start(server):
        request.addfinalizer(server.close)
        return server

    return start


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def closed(serve) -> ClosedPort:
    return serve(ClosedPort())
