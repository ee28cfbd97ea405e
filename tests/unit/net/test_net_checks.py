"""The check result, its JSON, the table, the catalogue error, and what a retry may cure.

Nothing here leaves 127.0.0.1/::1: proxy variables are cleared (conftest.py), names that need DNS go through an
injected resolver, and the test proxy tunnels to loopback only.
"""

from __future__ import annotations

import json

import pytest
from helpers_tls import (
    FAST,
    self_signed,
    tls_server,
)

from asrctl.errors import AsrctlError
from asrctl.net.checks import Check, Status, is_transient, render, to_json, worst
from asrctl.net.preflight import check_cs
from asrctl.output import Output

# --- Check ------------------------------------------------------------------------------------------------


def test_check_cannot_contradict_itself_and_serialises() -> None:
    # ``ok`` follows the status (it used to be a field that had to agree with it): a failure is never ok.
    assert [Check("x", s, "d").ok for s in ("ok", "warn", "fail", "skipped")] == [True, True, False, True]
    with pytest.raises(TypeError):
        Check("x", "fail", "d", ok=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown check status"):
        Check("x", "fine", "d")  # type: ignore[arg-type]
    check = Check("x", "warn", "d", target="h:1", remedy="r", data={"k": 1})
    assert check.status is Status.WARN and check.status == "warn"
    assert check.as_json() == {
        "name": "x",
        "target": "h:1",
        "ok": True,
        "status": "warn",
        "detail": "d",
        "remedy": "r",
        "code": None,
        "data": {"k": 1},
    }
    assert json.loads(json.dumps(check.as_json()))["status"] == "warn"


def test_one_mark_per_status() -> None:
    """The connectivity table and doctor's show a status the same way; a check that did not run is never "ok"."""
    assert [s.mark for s in Status] == ["✓ ok", "! warn", "✗ FAIL", "– skipped"]
    assert worst([]) is Status.OK
    assert worst([Check("a", "skipped", "why"), Check("b", "ok", "")]).severity == Status.OK.severity
    assert worst([Check("a", "ok", ""), Check("b", "fail", ""), Check("c", "warn", "")]) is Status.FAIL


# --- output -----------------------------------------------------------------------------------------------


def test_render_table_and_remedies(capsys, serve, tmp_path, closed) -> None:
    server = tls_server(serve, tmp_path, self_signed("CS01"))
    checks = check_cs(server.endpoint, ps_port=closed.port, timeout=FAST, strict_ps=True)
    checks.append(Check("cs_tcp", "ok", "[bold]not markup[/bold]", target="[fe80::1]:443"))
    render(Output(color=False), checks)
    err = " ".join(capsys.readouterr().err.split())
    assert "Connectivity" in err and "TLS certificate" in err and "! warn" in err and "✗ FAIL" in err
    assert "[fe80::1]:443" in err and "[bold]not markup[/bold]" in err
    assert "--cs-fingerprint" in err  # the warning's remedy
    assert f"ASRCTL-E084: 127.0.0.1:{closed.port} (process server TCP)" in err
    json.dumps(to_json(checks))


# --- retry ------------------------------------------------------------------------------------------------


def test_registration_retry_uses_is_transient() -> None:
    """The retry loop itself is tested in test_retry.py; here: with this module's predicate, an unreachable
    server is tried again and a wrong passphrase is not."""
    from asrctl.system.retry import retry

    outcomes = [AsrctlError("ASRCTL-E082", "configuration server unreachable"), "registered"]
    sleeps: list[float] = []

    def register() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert retry(register, is_transient=is_transient, base_delay=2, sleep=sleeps.append) == "registered"
    assert sleeps == [2]
    outcomes[:] = [AsrctlError("ASRCTL-E081", "wrong passphrase"), "never"]
    with pytest.raises(AsrctlError, match="wrong passphrase"):
        retry(register, is_transient=is_transient, base_delay=2, sleep=sleeps.append)
    assert sleeps == [2] and outcomes == ["never"]


def test_is_transient() -> None:
    import requests

    assert is_transient(AsrctlError("ASRCTL-E082", "x"))
    assert not is_transient(AsrctlError("ASRCTL-E081", "x"))
    assert not is_transient(AsrctlError("ASRCTL-E083", "x"))
    assert not is_transient(AsrctlError("ASRCTL-E082", "x", reason="dns"))
    assert is_transient(AsrctlError("ASRCTL-E080", "x", transient=True))
    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    assert is_transient(requests.exceptions.ConnectTimeout())
    assert is_transient(requests.exceptions.ConnectionError())
    assert not is_transient(requests.exceptions.SSLError())
    assert not is_transient(ValueError())
