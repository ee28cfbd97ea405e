"""SIGTERM and SIGINT at every step of install, upgrade, register and uninstall: the run stops, undoes what it did
under the signal shield, exits 143 (SIGTERM) or 130 (SIGINT) with a complete JSON error, and leaves a whole host;
a second signal during the undo never aborts it; the next run of the same command succeeds.

Each point is a pause (conftest.py): ``asrctl.<step>.<status>`` stops asrctl right after its journal recorded
that; ``<tool>.<point>`` stops a simulated vendor tool (docs/SIMULATORS.md, "Pausing at a step").
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import (
    NEW,
    OLD,
    assert_clean,
    install_args,
    spawn,
    with_passphrase_env,
)

EXIT = {signal.SIGTERM: (143, "ASRCTL-E005"), signal.SIGINT: (130, "ASRCTL-E003")}

# (point, what the host holds afterwards). The install runs with the passphrase from the environment, so its plan
# has every step: staging, unpack, the kernel check, Microsoft's prerequisite checker (asrctl's step, the checker
# itself), install, the private passphrase file, register, verify, keeping the bundle's kernel list.
INSTALL_POINTS = [
    ("asrctl.staging.started", "absent"),
    ("asrctl.unpack.started", "absent"),
    ("asrctl.kernel-check.started", "absent"),
    ("asrctl.prereq.started", "absent"),
    ("prereq.begin", "absent"),
    ("asrctl.install.started", "absent"),
    ("install.begin", "absent"),
    ("install_vx.unpacked", "absent"),
    ("install.copied", "absent"),
    ("install.versioned", "absent"),
    ("install.done", "absent"),
    ("asrctl.passphrase.started", OLD),
    ("configure.begin", OLD),
    ("configure.done", OLD),
    ("asrctl.verify.started", OLD),
    ("asrctl.keep-kernel-list.started", OLD),
]
# Once the installer has written the new version file the upgrade has happened: the undo starts the services of
# what is there, and the result says the host has what was asked (whole either way).
UPGRADE_POINTS = [
    ("asrctl.unpack.started", OLD),
    ("prereq.begin", OLD),
    ("install.begin", OLD),
    ("install.stopped", OLD),
    ("install_vx.unpacked", OLD),
    ("install.replaced", OLD),
    ("install.versioned", NEW),
    ("install.done", NEW),
    ("asrctl.verify.started", NEW),
    ("asrctl.keep-kernel-list.started", NEW),
]
REGISTER_POINTS = ["asrctl.passphrase.started", "configure.begin", "configure.done", "asrctl.verify.started"]
UNINSTALL_POINTS = [
    ("asrctl.uninstall.started", OLD),
    ("uninstall.locked", OLD),
    ("uninstall.stopped", OLD),
    ("uninstall.removed", "absent"),
    ("asrctl.verify.started", "absent"),
]
# The default run covers each verb's vendor tool and asrctl's own steps with SIGTERM; the rest is slow.
FAST = {
    ("install", "install.copied", signal.SIGTERM),
    ("install", "asrctl.passphrase.started", signal.SIGINT),
    ("upgrade", "install.replaced", signal.SIGTERM),
    ("register", "configure.begin", signal.SIGTERM),
    ("uninstall", "uninstall.stopped", signal.SIGTERM),
}


def _pause_kw(point: str) -> dict[str, str]:
    if point.startswith("asrctl."):
        return {"asrctl_pause": point.removeprefix("asrctl.").replace(".", ":")}
    return {"vendor_pause": point.replace(".", ":")}


def _cases(verb: str, points: list[Any]) -> list[Any]:
    out = []
    for entry in points:
        point, after = entry if isinstance(entry, tuple) else (entry, OLD)
        for sig in (signal.SIGTERM, signal.SIGINT):
            marks = [pytest.mark.fault("signals")]
            if (verb, point, sig) not in FAST:
                marks.append(pytest.mark.slow)
            out.append(pytest.param(point, sig, after, marks=marks, id=f"{point}-{signal.Signals(sig).name}"))
    return out


def _interrupt(run: Any, point: str, sig: int) -> Any:
    run.ready(point)
    run.signal(sig)
    done = run.finish()
    code, error = EXIT[sig]
    assert done.returncode == code, done.stderr
    doc = done.json  # a complete JSON document, whatever the timing
    assert doc["ok"] is False and doc["error"]["code"] == error, doc["error"]
    return doc


@pytest.mark.parametrize(("point", "sig", "after"), _cases("install", INSTALL_POINTS))
def test_install(sandbox: Sandbox, cs: Any, point: str, sig: int, after: str) -> None:
    sandbox.bundle(OLD)
    args = install_args(sandbox, cs)
    run = spawn(sandbox, *args, env=with_passphrase_env(), **_pause_kw(point))
    doc = _interrupt(run, point, sig)
    assert doc["data"]["outcome"]["whole"] is True
    assert_clean(sandbox, after)
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert again.json["data"]["agent"]["registered"] is True
    assert_clean(sandbox, OLD)


@pytest.mark.parametrize(("point", "sig", "after"), _cases("upgrade", UPGRADE_POINTS))
def test_upgrade(installed: Sandbox, point: str, sig: int, after: str) -> None:
    sb = installed
    sb.bundle(NEW)
    run = spawn(sb, "--json", "upgrade", "--no-vm-agent", **_pause_kw(point))
    doc = _interrupt(run, point, sig)
    outcome = doc["data"]["outcome"]
    assert outcome["whole"] is True and doc["data"]["agent"]["registered"] is True, outcome
    if after == OLD:
        assert doc["changed"] is False and outcome["state"] == "previous", outcome
    else:
        assert doc["changed"] is True and outcome["state"] == "requested", outcome
    assert_clean(sb, after)
    again = sb.asrctl("--json", "upgrade", "--no-vm-agent")
    assert again.returncode == 0, again.stderr
    assert_clean(sb, NEW)


@pytest.mark.parametrize(("point", "sig", "after"), _cases("register", REGISTER_POINTS))
def test_register(sandbox: Sandbox, cs: Any, point: str, sig: int, after: str) -> None:
    sandbox.bundle(OLD)
    assert (
        sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent").returncode == 0
    )
    args = ["--json", "register", "--cs-endpoint", cs.endpoint]
    run = spawn(sandbox, *args, env=with_passphrase_env(), **_pause_kw(point))
    _interrupt(run, point, sig)
    assert_clean(sandbox, OLD)
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert again.json["data"]["agent"]["registered"] is True
    assert_clean(sandbox, OLD)


@pytest.mark.parametrize(("point", "sig", "after"), _cases("uninstall", UNINSTALL_POINTS))
def test_uninstall(installed: Sandbox, point: str, sig: int, after: str) -> None:
    run = spawn(installed, "--json", "uninstall", "-Y", **_pause_kw(point))
    _interrupt(run, point, sig)
    assert_clean(installed, after)
    again = installed.asrctl("--json", "uninstall", "-Y")
    assert again.returncode == 0, again.stderr
    assert_clean(installed, "absent")
