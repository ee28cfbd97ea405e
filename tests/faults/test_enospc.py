"""A full file system at unpack, while the journal is written, and in the install dir: the run fails with the
catalogued error for a full disk (never "a bug"), undoes what it did — the rollback runs even when the journal
cannot be written — leaves a whole host and nothing behind, and the next run succeeds once there is space.

Real full file systems are small tmpfs mounts inside the test's temp dir (root only; skipped with the reason
otherwise); the journal's own failure is also injected without root (harness.py's ASRCTL_FAULT_JOURNAL_FAIL).
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import OLD, assert_clean, fill, install_args, spawn, with_passphrase_env


def _install(sb: Sandbox, server: Any, **kw: Any) -> Any:
    return sb.asrctl(*install_args(sb, server), env=with_passphrase_env(), **kw)


@pytest.mark.fault("enospc")
def test_a_full_state_dir_at_unpack(sandbox: Sandbox, cs: Any, tmpfs: Any) -> None:
    sandbox.bundle(OLD)
    state = tmpfs(sandbox.root / "var/lib/asrctl", "size=1m")
    filler = state / ".filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 96 * 1024))  # leave ~96 KiB: the lock and journal fit, the bundle not
    r = _install(sandbox, cs)
    assert r.returncode in (5, 6), r.stderr
    assert r.json["error"]["code"] in ("ASRCTL-E041", "ASRCTL-E111"), r.json["error"]
    assert "internal error" not in r.stderr
    assert r.json["changed"] is False
    filler.unlink()
    assert_clean(sandbox, "absent")
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("enospc")
def test_a_full_state_dir_while_the_journal_is_written_still_rolls_back(sandbox: Sandbox, cs: Any, tmpfs: Any) -> None:
    """Issue 13: ENOSPC while writing the journal skipped the rollback entirely. The installer is stopped after
    copying its files, the state dir is filled, then the installer fails: every journal write now fails, and the
    half-installed agent must still be removed."""
    sandbox.bundle(OLD)
    state = tmpfs(sandbox.root / "var/lib/asrctl", "size=4m")
    run = spawn(
        sandbox,
        *install_args(sandbox, cs),
        env={**with_passphrase_env(), "ASR_SIM_FAIL_AT": "start"},
        vendor_pause="install:copied",
    )
    run.ready("install.copied")
    filler = fill(state)
    run.go("install.copied")
    done = run.finish()
    assert done.returncode == 7, done.stderr
    assert done.json["error"]["code"] == "ASRCTL-E060"
    assert "could not write the journal" in done.stderr
    assert "nothing of the Mobility Service is installed" in done.json["error"]["message"]
    filler.unlink()
    assert_clean(sandbox, "absent", journal=False)
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("enospc")
@pytest.mark.parametrize("errno_name", ["ENOSPC", pytest.param("EROFS", marks=pytest.mark.slow)])
def test_a_journal_that_cannot_be_written_never_stops_a_rollback(sandbox: Sandbox, cs: Any, errno_name: str) -> None:
    """The same without root: every journal write after the first few fails (harness.py)."""
    sandbox.bundle(OLD)
    env = {**with_passphrase_env(), "ASR_SIM_FAIL_AT": "start", "ASRCTL_FAULT_JOURNAL_FAIL": f"{errno_name}:3"}
    run = spawn(sandbox, *install_args(sandbox, cs), env=env, asrctl_pause="never:never")
    done = run.finish()
    assert done.returncode == 7, done.stderr
    assert "could not write the journal" in done.stderr
    assert "rolled back (remove the partly installed agent)" in done.json["error"]["message"]
    assert_clean(sandbox, "absent", journal=False)
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("enospc")
def test_a_full_install_dir(sandbox: Sandbox, cs: Any, tmpfs: Any) -> None:
    """/usr/local fills up while Microsoft's installer copies the agent (after asrctl's own free-space check)."""
    sandbox.bundle(OLD)
    usr_local = tmpfs(sandbox.root / "usr/local", "size=260m")
    run = spawn(sandbox, *install_args(sandbox, cs), env=with_passphrase_env(), vendor_pause="install:begin")
    run.ready("install.begin")
    filler = fill(usr_local)
    run.go("install.begin")
    done = run.finish()
    filler.unlink()
    assert done.returncode == 7, done.stderr
    assert done.json["error"]["code"] == "ASRCTL-E060"
    assert "No space left" in done.json["error"]["message"]
    assert_clean(sandbox, "absent")
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)
