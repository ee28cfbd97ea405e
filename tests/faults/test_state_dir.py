"""asrctl's own state — the state dir, its lock, journal, history and identity files, and standard output — when
the environment is hostile: read-only, noexec, not a directory; a lock that holds garbage, is a directory, a FIFO
or a link; a journal or history that is garbage, a directory or a FIFO. Never "internal error, a bug", never a
hang: a catalogued error with what to fix, or (for asrctl's own damaged files) a warning and the file moved aside
so the run goes on; nothing changed on the host when the run cannot start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import OLD, assert_clean, install_args, remount, with_passphrase_env

NO_HANG = 60


def _state(sb: Sandbox) -> Path:
    return sb.root / "var/lib/asrctl"


def _install(sb: Sandbox, server: Any) -> Any:
    return sb.asrctl(*install_args(sb, server), env=with_passphrase_env(), timeout=NO_HANG)


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _default_part(cases: dict[str, Any], default: set[str]) -> list[Any]:
    """All the cases; those not in ``default`` only with ``make test-faults`` (docs/RELIABILITY.md, the budget)."""
    return [pytest.param(k, marks=[] if k in default else [pytest.mark.slow], id=k) for k in sorted(cases)]


# --- the state dir itself -------------------------------------------------------------------------------------


@pytest.mark.fault("state-dir")
def test_a_read_only_state_dir(sandbox: Sandbox, cs: Any, tmpfs: Any) -> None:
    sandbox.bundle(OLD)
    state = tmpfs(_state(sandbox), "size=8m")
    remount(state, "ro")
    r = _install(sandbox, cs)
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E110"), r.stderr
    assert "Read-only file system" in r.json["error"]["message"]
    assert sandbox.asrctl("--json", "status").returncode == 0  # read-only verbs still work
    assert observe_absent(sandbox)
    remount(state, "rw")
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("state-dir")
def test_a_noexec_state_dir(sandbox: Sandbox, cs: Any, tmpfs: Any) -> None:
    """The bundle is unpacked into the state dir and its installer runs from there."""
    sandbox.bundle(OLD)
    state = tmpfs(_state(sandbox), "size=64m", "noexec")
    r = _install(sandbox, cs)
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E112"), r.stderr
    assert "noexec" in r.json["error"]["message"]
    assert_clean(sandbox, "absent")
    remount(state, "exec")
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("state-dir")
def test_a_state_dir_asrctl_may_not_write(sandbox: Sandbox, cs: Any) -> None:
    """EACCES: the state dir is mode 0555 and asrctl runs without the capability to override permissions (root
    without CAP_DAC_OVERRIDE, through setpriv)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("dropping CAP_DAC_OVERRIDE for one run needs root and setpriv (util-linux)")
    sandbox.bundle(OLD)
    state = _state(sandbox)
    state.mkdir(parents=True)
    state.chmod(0o555)
    drop = "-dac_override,-dac_read_search"
    argv = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--",
            *_argv(sandbox, *install_args(sandbox, cs))]  # fmt: skip
    env = {**_env(), **sandbox.env, **with_passphrase_env()}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=NO_HANG, check=False)
    assert proc.returncode == 6, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "ASRCTL-E110" and "Permission denied" in error["message"], error
    assert observe_absent(sandbox)
    state.chmod(0o755)
    again = _install(sandbox, cs)
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("state-dir")
def test_a_state_dir_that_is_a_file(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(OLD)
    state = _state(sandbox)
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("not a directory\n")
    r = _install(sandbox, cs)
    assert r.returncode == 6 and r.json["error"]["code"] in ("ASRCTL-E110", "ASRCTL-E113"), r.stderr
    assert "internal error" not in r.stderr
    assert observe_absent(sandbox)
    state.unlink()
    assert _install(sandbox, cs).returncode == 0


def observe_absent(sb: Sandbox) -> bool:
    from fakes.hoststate import observe_root

    return observe_root(sb.root).absent


# --- the lock -----------------------------------------------------------------------------------------------------

LOCKS = {
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot json at all\n" * 10),
    "huge-garbage": lambda p: p.write_bytes(b"x" * (1 << 20)),
    "directory": lambda p: (p.mkdir(), (p / "inside").write_text("x")),
    "fifo": _fifo,
    "symlink": lambda p: p.symlink_to("/etc/passwd"),
}


@pytest.mark.fault("state-dir")
@pytest.mark.parametrize("kind", _default_part(LOCKS, {"garbage", "directory"}))
def test_a_broken_lock_file_is_taken_over(sandbox: Sandbox, cs: Any, kind: str) -> None:
    sandbox.bundle(OLD)
    lock = _state(sandbox) / "lock"
    lock.parent.mkdir(parents=True)
    LOCKS[kind](lock)
    dry = sandbox.asrctl(
        "--json", "install", "--no-register", "--cs-type", "CSLegacy", "--no-vm-agent", "--dry-run", timeout=NO_HANG
    )
    assert dry.returncode == 0, dry.stderr
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    assert "lock" in r.stderr and ("garbage" in r.stderr or "moved it to" in r.stderr), r.stderr
    assert lock.is_file() and not lock.is_symlink()
    assert_clean(sandbox, OLD)
    assert Path("/etc/passwd").read_text().startswith("root:")


# --- the journal, history and identity -----------------------------------------------------------------------------

OWN = {
    "journal-garbage": ("journal.json", lambda p: p.write_bytes(b"{not json")),
    "journal-directory": ("journal.json", lambda p: p.mkdir()),
    "journal-fifo": ("journal.json", _fifo),
    "journal-huge": ("journal.json", lambda p: p.write_bytes(b" " * (9 << 20))),
    "history-directory": ("history.jsonl", lambda p: p.mkdir()),
    "history-fifo": ("history.jsonl", _fifo),
    "identity-fifo": ("identity.json", _fifo),
    "identity-garbage": ("identity.json", lambda p: p.write_bytes(b"\xff\xfe")),
}


@pytest.mark.fault("state-dir")
@pytest.mark.parametrize("kind", _default_part(OWN, {"journal-garbage", "journal-fifo", "history-fifo"}))
def test_a_damaged_state_file_never_stops_a_run(sandbox: Sandbox, cs: Any, kind: str) -> None:
    sandbox.bundle(OLD)
    name, make = OWN[kind]
    path = _state(sandbox) / name
    path.parent.mkdir(parents=True)
    make(path)
    st = sandbox.asrctl("--json", "status", timeout=NO_HANG)
    assert st.returncode == 0, st.stderr
    r = _install(sandbox, cs)
    assert r.returncode == 0, r.stderr
    if name == "journal.json":
        assert "moved aside" in r.stderr
    assert_clean(sandbox, OLD)


# --- standard output ---------------------------------------------------------------------------------------------


def _argv(sb: Sandbox, *args: str) -> list[str]:
    return [sys.executable, "-m", "asrctl", "--root", str(sb.root), "--bundle-dir", str(sb.bundles), *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    env.update({"NO_COLOR": "1", "NO_PROXY": "*"})
    return env


@pytest.mark.fault("state-dir")
def test_stdout_on_a_full_device(sandbox: Sandbox) -> None:
    """Issue 13: `asrctl --json detect > /dev/full` gave a traceback."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run(_argv(sandbox, "--json", "detect"), stdout=full, stderr=subprocess.PIPE, text=True,
                              env=_env(), timeout=NO_HANG, check=False)  # fmt: skip
    assert proc.returncode == 6, proc.stderr
    assert "ASRCTL-E116" in proc.stderr and "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


@pytest.mark.fault("state-dir")
def test_stdout_closed_and_a_reader_that_went_away(sandbox: Sandbox) -> None:
    closed = subprocess.run(_argv(sandbox, "--json", "status"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=_env(), timeout=NO_HANG, check=False, pass_fds=(),
                            preexec_fn=lambda: os.close(1))  # fmt: skip
    assert closed.returncode == 6 and "ASRCTL-E116" in closed.stderr, closed.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before asrctl writes (`| head` that already exited)
    try:
        broken = subprocess.run(_argv(sandbox, "--json", "status"), stdout=write_end, stderr=subprocess.PIPE,
                                text=True, env=_env(), timeout=NO_HANG, check=False)  # fmt: skip
    finally:
        os.close(write_end)
    assert broken.returncode == 6, broken.stderr
    assert (
        "ASRCTL-E116" in broken.stderr
        and "Traceback" not in broken.stderr
        and "Exception ignored" not in (broken.stderr)
    )
