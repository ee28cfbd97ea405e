"""Shared test settings: stable, colourless output; secrets forgotten between tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Paths on the real host that no test may touch: every run of asrctl in the suite has a sandbox --root, a private
# ASRCTL_LOG_FILE or a runtime dir of its own (tests/binary). Checked once for the whole session, whatever ran.
HOST_PATHS = [
    "/usr/local/ASR",
    "/usr/local/.vx_version",
    "/usr/local/.norespawn_vxagent",
    "/usr/local/InMage",
    "/etc/vxagent",
    "/var/lib/asrctl",
    "/var/log/asrctl.log",
    "/var/log/ua_install.log",
    "/var/log/ua_uninstall.log",
    "/var/log/InstallerErrors.json",
    "/var/log/ASRsetuptelemetry",
]


def _snapshot() -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for p in HOST_PATHS:
        try:
            out[p] = os.lstat(p).st_mtime
        except FileNotFoundError:
            out[p] = None
    return out


@pytest.fixture(scope="session", autouse=True)
def _host_untouched() -> Iterator[None]:
    before = _snapshot()
    yield
    after = _snapshot()
    changed = [p for p in HOST_PATHS if after[p] != before[p]]
    assert not changed, f"a test wrote to the real host: {', '.join(changed)}"


@pytest.fixture(scope="session")
def _test_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("asrctl-log") / "asrctl.log")


@pytest.fixture(autouse=True)
def _stable_env(monkeypatch: pytest.MonkeyPatch, _test_log: str) -> None:
    # Every option has an ASRCTL_* variable (asrctl/commands/settings.py): none from the developer's shell counts.
    # ASRCTL_TEST_* tell the test suite itself what to test (the binary).
    for var in [v for v in os.environ if v.startswith("ASRCTL_") and not v.startswith("ASRCTL_TEST_")]:
        monkeypatch.delenv(var, raising=False)
    # In-process runs without --root (the real root) log here, not into the host's /var/log/asrctl.log.
    monkeypatch.setenv("ASRCTL_LOG_FILE", _test_log)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_") or k == "ASRCTL_LOG_FILE"}
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "NO_PROXY": "*"})
    env.update(extra)
    return env
