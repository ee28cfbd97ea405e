"""Shared test settings: stable, colourless output; secrets forgotten between tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _stable_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    for var in ("ASRCTL_ROOT", "ASRCTL_BUNDLE_DIR", "ASRCTL_JSON", "ASRCTL_PASSPHRASE", "ASRCTL_REQUIRE_DIGEST"):
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    from asrctl.system import redact

    redact.forget_all()
    yield
    redact.forget_all()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess run of asrctl in tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "NO_PROXY": "*"})
    env.update(extra)
    return env
