"""SIGKILL (or a power loss) at every step of install, upgrade, register and uninstall: asrctl gets no chance to undo
anything, and the vendor tool it was running carries on, orphaned, in its own session. ``status`` says a run was
interrupted; the next run of the same command stops the orphaned vendor tree first (checked to be that run's),
cleans the dead run's staging copy and private passphrase file (also when it then has nothing to do), clears a
stale vendor lock, puts the agent right, and succeeds; the host is whole and nothing is left behind.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import (
    NEW,
    OLD,
    assert_clean,
    health_ids,
    install_args,
    orphans,
    residue,
    spawn,
    with_passphrase_env,
)
from .test_signals import INSTALL_POINTS, REGISTER_POINTS, UNINSTALL_POINTS, UPGRADE_POINTS, _pause_kw

# install.copied is the orphan test's point (below), so the default run kills install at configure.begin.
FAST = {
    ("install", "configure.begin"),
    ("upgrade", "install.replaced"),
    ("register", "configure.begin"),
    ("uninstall", "uninstall.locked"),
}


def _cases(verb: str, points: list[Any]) -> list[Any]:
    out = []
    for entry in points:
        point = entry[0] if isinstance(entry, tuple) else entry
        marks = [pytest.mark.fault("sigkill")]
        if (verb, point) not in FAST:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(point, marks=marks, id=point))
    return out


def _killed(sb: Sandbox, run: Any, point: str) -> None:
    """SIGKILL at ``point``; a vendor tool paused there is left running, orphaned (that is the fault)."""
    run.ready(point)
    run.kill()
    ids = health_ids(sb)
    assert "interrupted_run" in ids, ids


@pytest.mark.parametrize("point", _cases("install", INSTALL_POINTS))
def test_install(sandbox: Sandbox, cs: Any, point: str) -> None:
    sandbox.bundle(OLD)
    args = install_args(sandbox, cs)
    _killed(sandbox, spawn(sandbox, *args, env=with_passphrase_env(), **_pause_kw(point)), point)
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert "interrupted" in again.stderr
    assert again.json["data"]["agent"]["registered"] is True
    assert_clean(sandbox, OLD)


@pytest.mark.parametrize("point", _cases("upgrade", UPGRADE_POINTS))
def test_upgrade(installed: Sandbox, point: str) -> None:
    sb = installed
    sb.bundle(NEW)
    _killed(sb, spawn(sb, "--json", "upgrade", "--no-vm-agent", **_pause_kw(point)), point)
    again = sb.asrctl("--json", "upgrade", "--no-vm-agent")
    assert again.returncode == 0, again.stderr
    assert again.json["data"]["agent"]["registered"] is True
    assert_clean(sb, NEW)


@pytest.mark.parametrize("point", _cases("register", REGISTER_POINTS))
def test_register(sandbox: Sandbox, cs: Any, point: str) -> None:
    sandbox.bundle(OLD)
    assert (
        sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent").returncode == 0
    )
    args = ["--json", "register", "--cs-endpoint", cs.endpoint]
    _killed(sandbox, spawn(sandbox, *args, env=with_passphrase_env(), **_pause_kw(point)), point)
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert again.json["data"]["agent"]["registered"] is True
    assert_clean(sandbox, OLD)


@pytest.mark.parametrize("point", _cases("uninstall", UNINSTALL_POINTS))
def test_uninstall(installed: Sandbox, point: str) -> None:
    _killed(installed, spawn(installed, "--json", "uninstall", "-Y", **_pause_kw(point)), point)
    again = installed.asrctl("--json", "uninstall", "-Y")
    assert again.returncode == 0, again.stderr
    assert_clean(installed, "absent")


@pytest.mark.fault("sigkill")
def test_a_kill_after_registration_is_cleaned_up_by_a_run_with_nothing_to_do(sandbox: Sandbox, cs: Any) -> None:
    """Issue 13: a kill after registration stranded the staging copy and the 0600 passphrase file, and the next
    runs ("nothing to do") never cleaned them, though status promised they would."""
    sandbox.bundle(OLD)
    args = install_args(sandbox, cs)
    run = spawn(sandbox, *args, env=with_passphrase_env(), asrctl_pause="verify:started")
    run.ready("asrctl.verify.started")
    run.kill()
    private = sandbox.root / "var/lib/asrctl/private"
    assert any(private.rglob("passphrase")), "the 0600 copy should be there after the kill"
    assert residue(sandbox) != []
    ids = health_ids(sandbox)
    assert "leftovers" in ids and "interrupted_run" in ids, ids
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0 and again.json["changed"] is False, again.stderr
    assert "nothing to do" in again.stderr
    assert not any(private.rglob("passphrase"))
    assert_clean(sandbox, OLD)
    assert health_ids(sandbox) == []


@pytest.mark.fault("sigkill")
def test_the_orphaned_vendor_tree_is_stopped_first_and_only_it(sandbox: Sandbox, cs: Any) -> None:
    """The installer outlives a killed asrctl (its own session); the next run stops that tree before it recovers,
    and a process that merely looks alike (same tool, another run) is left alone."""
    sandbox.bundle(OLD)
    args = install_args(sandbox, cs)
    run = spawn(sandbox, *args, env=with_passphrase_env(), vendor_pause="install:copied")
    installer = run.ready("install.copied")
    run.kill()
    assert orphans(sandbox), "the paused installer should outlive asrctl"
    journal = (sandbox.root / "var/lib/asrctl/journal.json").read_text()
    assert '"sid"' in journal and '"create_time"' in journal
    again = sandbox.asrctl(*args, env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert "stopped what was left of its vendor tools" in again.stderr
    assert f"pid {installer}" in again.stderr or "install" in again.stderr
    assert_clean(sandbox, OLD)
