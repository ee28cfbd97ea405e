"""The one-file binary on this host: version, exit codes, the private runtime directory, the environment its
Python process sees (and what children get back), signals."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import termios
import time
from pathlib import Path

import psutil
import pytest
from binsupport import FIXTURES, NEW, REPO, TAG, build_bundles, clean_env, in_namespace, need_root, run

from asrctl import __version__
from asrctl.system.childenv import host_environ

pytestmark = pytest.mark.binary


def test_version_is_embedded(exe: Path, env: dict[str, str], runtime_dir: Path) -> None:
    r = run([str(exe), "--version"], env)
    assert (r.returncode, r.stdout) == (0, f"asrctl {__version__}\n"), r
    assert list(runtime_dir.iterdir()) == [], "the runtime directory must be empty after the run"


def test_help_lists_the_verbs(exe: Path, env: dict[str, str]) -> None:
    r = run([str(exe), "--help"], env)
    assert r.returncode == 0, r
    for verb in ("detect", "bundles"):
        assert verb in r.stdout


def test_exit_codes_pass_through_every_stage(exe: Path, env: dict[str, str], tmp_path: Path) -> None:
    assert run([str(exe), "no-such-verb"], env).returncode == 2
    unsupported = run([str(exe), "--root", str(REPO / "tests/fixtures/distros/alpine-3.23"), "detect"], env)
    assert unsupported.returncode == 3, unsupported


def test_the_launcher_refuses_a_runtime_directory_others_can_write(exe: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable, no sticky bit: anyone could swap what we unpack
    r = run([str(exe), "--version"], clean_env(shared / "rt"))
    assert r.returncode == 6, r
    assert "not private" in r.stderr and "writable by group or others" in r.stderr


def test_the_launcher_refuses_a_runtime_directory_of_another_user(exe: Path, tmp_path: Path) -> None:
    need_root()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    r = run([str(exe), "--version"], clean_env(theirs))
    assert r.returncode == 6 and "not private" in r.stderr, r


def test_the_launcher_tightens_its_own_directory(exe: Path, tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o755)
    rt.chmod(0o755)
    assert run([str(exe), "--version"], clean_env(rt)).returncode == 0
    assert rt.stat().st_mode & 0o777 == 0o700


def test_as_root_the_default_is_var_lib_and_tmpdir_is_ignored(exe: Path, tmp_path: Path) -> None:
    """Root with a TMPDIR a user controls: the launcher must not unpack there. /var/lib is a fresh tmpfs in a
    private mount namespace, so the host's /var/lib stays untouched."""
    need_root()
    evil = tmp_path / "user-tmp"
    evil.mkdir(mode=0o777)
    evil.chmod(0o777)
    env = clean_env(None, TMPDIR=str(evil))
    report = in_namespace(
        ["--mount", "--propagation", "private"],
        {
            "mounts": [["tmpfs", "/var/lib", "mode=0755"]],
            "runs": [{"argv": [str(exe), "--version"], "env": env}],
            "list": ["/var/lib/asrctl/tmp", str(evil)],
        },
    )
    r = report["runs"][0]
    assert (r["returncode"], r["stdout"]) == (0, f"asrctl {__version__}\n"), r
    assert report["list"]["/var/lib/asrctl/tmp"] == {"mode": "0o700", "entries": []}
    assert report["list"][str(evil)]["entries"] == []


def test_non_root_uses_a_private_directory_under_tmp(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    need_root()
    base = Path(os.path.realpath("/tmp")) / f"asrctl-nobody-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        base.chmod(0o755)
        copy = base / "asrctl"
        copy.write_bytes(exe.read_bytes())
        copy.chmod(0o755)
        env = clean_env(None, TMPDIR=str(base / "tmp"))
        (base / "tmp").mkdir()
        os.chown(base / "tmp", 65534, 65534)
        r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(copy), "--version"], env)
        assert (r.returncode, r.stdout) == (0, f"asrctl {__version__}\n"), r
        assert list((base / "tmp").iterdir()) == []
    finally:
        for p in sorted(base.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        base.rmdir()


# --- a running binary: its environment, and signals ----------------------------------------------------------


def _many_bundles(directory: Path, count: int = 1500) -> Path:
    """Enough (tiny, fake) bundles that `bundles list --json` writes far more than a pipe holds: the binary then
    blocks on stdout until the test reads, which gives a running process to look at."""
    directory.mkdir()
    for i in range(count):
        name = f"Microsoft-ASR_UA_9.{i // 100}.{i % 100}.0_UBUNTU-16.04-64_GA_20Sep2025_release.tar.gz"
        (directory / name).write_bytes(b"\x1f\x8b")
    return directory


class Blocked:
    """The binary listing many bundles, stuck writing to a pipe that the test has not read yet: stdout (the JSON,
    written after the command returned) or stderr (the table, written inside the command). ``tty=True`` gives
    it a terminal of its own as stdin and makes it the terminal's foreground process group."""

    def __init__(self, exe: Path, env: dict[str, str], bundles: Path, on: str = "stdout", tty: bool = False) -> None:
        self.on = on
        self.master: int | None = None
        self.spill = open(bundles.parent / "spill.txt", "w+b")  # the stream not under test
        args = ["-q", "--json"] if on == "stdout" else []
        stdin: int = subprocess.DEVNULL
        preexec = None
        if tty:
            self.master, slave = pty.openpty()
            stdin = slave
            preexec = _take_terminal
        self.proc = subprocess.Popen(
            [str(exe), *args, "--bundle-dir", str(bundles), "bundles", "list"],
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE if on == "stdout" else self.spill,
            stderr=subprocess.PIPE if on == "stderr" else self.spill,
            start_new_session=True,
            preexec_fn=preexec,
        )
        if tty:
            os.close(slave)
        stream = self.proc.stdout if on == "stdout" else self.proc.stderr
        assert stream is not None
        ready, _, _ = select.select([stream], [], [], 60)
        assert ready, "the binary wrote nothing within 60 s"
        self.first = stream.read(1)  # Python is up and writing; it blocks again once the pipe is full
        self.python = self._deepest()

    def _deepest(self) -> psutil.Process:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
            leaves = [k for k in kids if not k.children()]
            if kids and leaves:
                return leaves[0]
            time.sleep(0.02)
        raise AssertionError("no child process of the binary found")

    def tree(self) -> list[psutil.Process]:
        return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]

    def ctrl_c(self) -> None:
        assert self.master is not None
        os.write(self.master, b"\x03")  # the line discipline sends SIGINT to the foreground process group
        time.sleep(0.5)  # ... from a kernel work queue: let it arrive before the pipes are drained

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            self.spill.seek(0)
            spilled = self.spill.read()
            self.spill.close()
            if self.master is not None:
                os.close(self.master)
        text = (err if self.on == "stderr" else spilled) or b""
        return self.proc.returncode, text.decode(errors="replace")


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_the_python_process_sees_the_chain_and_children_get_the_host_environment(
    exe: Path, tmp_path: Path, runtime_dir: Path
) -> None:
    env = clean_env(
        runtime_dir, LD_LIBRARY_PATH="/opt/operator/lib", LD_PRELOAD="/no/such/preload.so", TMPDIR="/home/operator/tmp"
    )
    blocked = Blocked(exe, env, _many_bundles(tmp_path / "bundles"))
    try:
        seen = blocked.python.environ()
    finally:
        code, err = blocked.finish()
    assert code == 0, err
    assert list(runtime_dir.iterdir()) == []

    # What the launcher, staticx and PyInstaller's bootloader put there: all inside this run's own directory.
    run_dir = Path(seen["ASRCTL_RUNTIME_DIR"])
    assert run_dir.parent == runtime_dir and run_dir.name.startswith("asrctl-run-")
    mei = seen["_PYI_APPLICATION_HOME_DIR"]
    assert Path(mei).parent == run_dir and Path(mei).name.startswith("_MEI")
    assert Path(seen["STATICX_BUNDLE_DIR"]).parent == run_dir
    assert seen["TMPDIR"] == str(run_dir)
    assert seen["ASRCTL_TMPDIR_ORIG"] == "/home/operator/tmp"
    assert seen["ASRCTL_EXE"] == str(exe)
    # The host's loader variables are kept away from the bundle's own loader ...
    assert seen["LD_LIBRARY_PATH"] == mei and "LD_LIBRARY_PATH_ORIG" not in seen and "LD_PRELOAD" not in seen
    assert seen["ASRCTL_LD_LIBRARY_PATH_ORIG"] == "/opt/operator/lib"

    # What a child of that process gets (the same function the process runner calls, with the same inputs).
    child = host_environ(seen, frozen=True, bundle=[mei, seen["STATICX_BUNDLE_DIR"]])
    assert child["LD_LIBRARY_PATH"] == "/opt/operator/lib"  # ... and given back to the host's programs
    assert child["LD_PRELOAD"] == "/no/such/preload.so"
    assert child["TMPDIR"] == "/home/operator/tmp"
    assert child["PATH"] == env["PATH"]
    assert not [k for k in child if k.startswith(("_PYI_", "STATICX_", "_MEI", "ASRCTL_EXE", "ASRCTL_RUNTIME_D"))]
    assert not [k for k, v in child.items() if str(runtime_dir) in v and k != "ASRCTL_RUNTIME_TMPDIR"]
    assert {k: v for k, v in child.items() if k != "ASRCTL_RUNTIME_TMPDIR"} == {
        k: v for k, v in env.items() if k != "ASRCTL_RUNTIME_TMPDIR"
    }


def test_sigterm_to_the_launcher_stops_everything_and_cleans_up(exe: Path, tmp_path: Path, runtime_dir: Path) -> None:
    blocked = Blocked(exe, clean_env(runtime_dir), _many_bundles(tmp_path / "bundles"), on="stderr")
    tree = blocked.tree()
    assert len(tree) == 4, [p.cmdline() for p in tree]  # launcher, staticx, PyInstaller parent, Python
    os.kill(blocked.proc.pid, signal.SIGTERM)
    code, err = blocked.finish()
    # Python got it (once): asrctl stops as on Ctrl-C, with the SIGTERM status (143), or, without a handler yet,
    # dies of it.
    assert code in (143, -signal.SIGTERM), err[-3000:]
    assert "Traceback" not in err
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert list(runtime_dir.iterdir()) == []


def test_ctrl_c_on_the_terminal_interrupts_python_once(exe: Path, tmp_path: Path, runtime_dir: Path) -> None:
    """Every stage gets the terminal's SIGINT; only Python acts on it, once: click's Abort, exit 130."""
    blocked = Blocked(exe, clean_env(runtime_dir), _many_bundles(tmp_path / "bundles"), on="stderr", tty=True)
    blocked.ctrl_c()
    code, err = blocked.finish()
    assert code == 130, err[-3000:]
    assert "Traceback" not in err and "ASRCTL-E003" in err
    assert list(runtime_dir.iterdir()) == []


def test_sigint_sent_to_the_launcher_reaches_python_once(exe: Path, tmp_path: Path, runtime_dir: Path) -> None:
    blocked = Blocked(exe, clean_env(runtime_dir), _many_bundles(tmp_path / "bundles"), on="stderr")
    os.kill(blocked.proc.pid, signal.SIGINT)
    code, err = blocked.finish()
    assert code == 130, err[-3000:]
    assert "Traceback" not in err
    assert list(runtime_dir.iterdir()) == []


def test_a_killed_launcher_leaves_a_run_directory_that_the_next_run_removes(
    exe: Path, tmp_path: Path, runtime_dir: Path
) -> None:
    blocked = Blocked(exe, clean_env(runtime_dir), _many_bundles(tmp_path / "bundles"))
    os.kill(blocked.proc.pid, signal.SIGKILL)
    code, _err = blocked.finish()  # reading stdout lets the orphaned stages finish
    assert code == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running_from(runtime_dir):
        time.sleep(0.05)
    left = [p.name for p in runtime_dir.iterdir()]
    assert len(left) == 1 and left[0].startswith("asrctl-run-"), left
    assert run([str(exe), "--version"], clean_env(runtime_dir)).returncode == 0
    assert list(runtime_dir.iterdir()) == []


def test_python_outliving_a_killed_staticx_stage_is_waited_for(exe: Path, tmp_path: Path, runtime_dir: Path) -> None:
    blocked = Blocked(exe, clean_env(runtime_dir), _many_bundles(tmp_path / "bundles"))
    staticx = psutil.Process(blocked.proc.pid).children()[0]
    staticx.kill()
    time.sleep(0.3)
    assert blocked.proc.poll() is None, "the launcher must wait for Python, which still runs from the directory"
    assert blocked.python.is_running()
    code, _err = blocked.finish()
    assert code == -signal.SIGKILL  # the staticx stage's fate is what the launcher reports
    assert list(runtime_dir.iterdir()) == []


def _running_from(directory: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["exe"]):
        if proc.info["exe"] and proc.info["exe"].startswith(str(directory) + "/"):
            found.append(proc.pid)
    return found


def test_bundles_beside_the_binary_are_found(exe: Path, tmp_path: Path, runtime_dir: Path) -> None:
    """CLI contract: the default bundle dirs are bundles/ next to the executable, then <root>/var/lib/..."""
    copy = tmp_path / "media" / "asrctl"
    copy.parent.mkdir()
    shutil.copy2(exe, copy)
    (bundle,) = build_bundles(copy.parent / "bundles", [(NEW, "20Sep2025")], tag=TAG)
    r = run([str(copy), "--json", "--root", str(FIXTURES / "ubuntu-16.04"), "bundles", "list"], clean_env(runtime_dir))
    assert r.returncode == 0, r
    assert r.json["data"]["selected"] == str(bundle)
