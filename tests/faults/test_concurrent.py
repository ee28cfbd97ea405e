"""Concurrent pairs of every changing verb: while run A is inside its vendor tool (holding the host lock), run B of
any changing verb fails at once with ASRCTL-E042 (exit 6), changes nothing and never reports a state that A is
changing; A then finishes as if B had never run, and the host is whole.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import NEW, OLD, assert_clean, spawn, with_passphrase_env

VERBS = ("install", "upgrade", "register", "uninstall")
# A's pause point inside its vendor tool, and the state A leaves.
A_POINT = {
    "install": ("install:copied", OLD),
    "upgrade": ("install:replaced", NEW),
    "register": ("configure:begin", OLD),
    "uninstall": ("uninstall:stopped", "absent"),
}
FAST = {("install", "uninstall"), ("upgrade", "register")}


def _args(verb: str, server: Any) -> list[str]:
    if verb == "install":
        return ["--json", "install", "--cs-endpoint", server.endpoint, "--no-vm-agent"]
    if verb == "upgrade":
        return ["--json", "upgrade", "--no-vm-agent"]
    if verb == "register":
        return ["--json", "register", "--cs-endpoint", server.endpoint, "--force"]
    return ["--json", "uninstall", "-Y"]


def _setup(sb: Sandbox, server: Any, a: str) -> None:
    """The host A starts from: nothing for install, OLD registered for the others (NEW's bundle for upgrade)."""
    sb.bundle(OLD)
    if a != "install":
        r = sb.asrctl(*_args("install", server), env=with_passphrase_env())
        assert r.returncode == 0, r.stderr
    if a == "upgrade":
        sb.bundle(NEW)


def _pairs() -> list[Any]:
    out = []
    for a in VERBS:
        for b in VERBS:
            marks = [pytest.mark.fault("concurrent")]
            if (a, b) not in FAST:
                marks.append(pytest.mark.slow)
            out.append(pytest.param(a, b, marks=marks, id=f"{a}-while-{b}"))
    return out


@pytest.mark.parametrize(("a", "b"), _pairs())
def test_a_second_changing_run_is_refused_while_the_first_works(sandbox: Sandbox, cs: Any, a: str, b: str) -> None:
    _setup(sandbox, cs, a)
    point, after = A_POINT[a]
    first = spawn(sandbox, *_args(a, cs), env=with_passphrase_env(), vendor_pause=point)
    first.ready(point.replace(":", "."))
    before = (sandbox.root / "var/lib/asrctl/journal.json").read_text()
    second = sandbox.asrctl(*_args(b, cs), env=with_passphrase_env())
    assert (second.returncode, second.json["error"]["code"]) == (6, "ASRCTL-E042"), second.stderr
    assert second.json["changed"] is False
    assert f"pid {first.proc.pid}" in second.json["error"]["message"]
    # B wrote nothing: A's journal is A's.
    assert (sandbox.root / "var/lib/asrctl/journal.json").read_text() == before
    first.go(point.replace(":", "."))
    done = first.finish()
    assert done.returncode == 0, done.stderr
    assert_clean(sandbox, after)
