"""(b) The binary in a network namespace that has only loopback: the sandbox lifecycle against the simulators,
and which network connections anything in the process tree tries (strace, where installed).

The namespace is held open by ``nsexec.py hold`` (started with ``unshare --net``); every command, the
configuration-server simulator included, enters it with ``nsenter --net``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from binsupport import (
    FIXTURES,
    NEW,
    NSEXEC,
    OLD,
    PASSPHRASE,
    REPO,
    TAG,
    build_bundles,
    clean_env,
    has_verb,
    have_strace,
    inet_destinations,
    need_root,
    need_tool,
    private_dir,
    run,
    run_traced,
    write_sums,
)

pytestmark = pytest.mark.binary

LIFECYCLE_TAG = "UBUNTU-22.04-64"


@pytest.fixture(scope="module")
def netns() -> Iterator[list[str]]:
    """The command prefix that enters a network namespace with only `lo` (up)."""
    need_root()
    unshare, nsenter = need_tool("unshare"), need_tool("nsenter")
    holder = subprocess.Popen(
        [unshare, "--net", "--", sys.executable, str(NSEXEC), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    prefix = [nsenter, f"--net=/proc/{holder.pid}/ns/net", "--"]
    try:
        links = run([*prefix, sys.executable, "-c", "import socket; print(socket.if_nameindex())"], os.environ.copy())
        assert links.stdout.strip() == "[(1, 'lo')]", links
        yield prefix
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def assert_only(log: Path, allowed_hosts: set[str]) -> None:
    if not have_strace():
        return  # no strace here: the namespace still guarantees that nothing but loopback was reachable
    bad = [d for d in inet_destinations(log) if d[0] not in allowed_hosts]
    assert bad == [], f"network connections to hosts not named on the command line: {bad}"


# --- every verb that exists today: no network at all --------------------------------------------------------


def test_read_only_verbs_open_no_connection(netns: list[str], exe: Path, tmp_path: Path, env: dict[str, str]) -> None:
    bundles = tmp_path / "bundles"
    build_bundles(bundles, [(OLD, "23Apr2025"), (NEW, "20Sep2025")], tag=TAG)
    root = str(FIXTURES / "ubuntu-16.04")
    log = tmp_path / "strace.log"
    runs = [
        ["--version"],
        ["--json", "--root", root, "detect"],
        ["--json", "--root", root, "--bundle-dir", str(bundles), "bundles", "list"],
    ]
    if has_verb(exe, "bundles", "extract", env=env):
        runs.append(["--json", "bundles", "extract", str(next(bundles.glob("*.tar.gz"))), str(tmp_path / "x")])
    for args in runs:
        r = run_traced(netns, [str(exe), *args], env, log)
        assert r.returncode == 0, r
        assert_only(log, allowed_hosts=set())


def test_fetch_talks_only_to_the_mirror_on_the_command_line(
    netns: list[str], exe: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    if not has_verb(exe, "bundles", "fetch", env=env):
        pytest.skip("this build has no `bundles fetch` yet")
    mirror = tmp_path / "mirror"
    (bundle,) = build_bundles(mirror, [(NEW, "20Sep2025")], tag=TAG)
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    port = 18080  # a fresh namespace: nothing else listens there
    server = subprocess.Popen(
        [*netns, sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(mirror)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait = [*netns, sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"]
        deadline = time.monotonic() + 20
        while run(wait, env).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        log = tmp_path / "strace.log"
        url = f"http://127.0.0.1:{port}/{bundle.name}"
        r = run_traced(
            netns,
            [str(exe), "--json", "bundles", "fetch", url, "--sha256", digest, "--to", str(tmp_path / "got")],
            env,
            log,
        )
        assert r.returncode == 0, r
        assert hashlib.sha256((tmp_path / "got" / bundle.name).read_bytes()).hexdigest() == digest
        assert_only(log, allowed_hosts={"127.0.0.1"})
        if have_strace():
            assert ("127.0.0.1", port) in inet_destinations(log)
    finally:
        server.terminate()
        server.wait(10)


# --- the lifecycle ---------------------------------------------------------------------------------------------


def ubuntu_2204(root: Path) -> None:
    """A sandbox root holding the Ubuntu 22.04 fixture tree (as the distro ships it), a machine-id and the running
    kernel's module directory (the bundle's prerequisite checker requires it, as on a real host)."""
    from asrsim.host import prepare_root

    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures/distros/ubuntu-22.04", root, symlinks=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    prepare_root(root)


def dump_env_in_installer(bundle: Path, dump_to_var: str) -> None:
    """Rewrite a simulated bundle so that its ./install first writes its environment (JSON) to the file named by
    the variable ``dump_to_var``: the script asrctl runs, printing the environment it was given. The bundle is
    written back in the compression it came in (Microsoft's Ubuntu bundles are LZMA-alone)."""
    hook = (
        "import json as _j, os as _o\n"
        f"with open(_o.environ[{dump_to_var!r}], 'w') as _f:\n"
        "    _j.dump(dict(_o.environ), _f)\n"
    )
    raw = bundle.read_bytes()
    if raw.startswith(b"\x1f\x8b"):
        plain, pack = gzip.decompress(raw), lambda b: gzip.compress(b, mtime=0)
    else:
        fmt = lzma.FORMAT_XZ if raw.startswith(b"\xfd7zXZ\x00") else lzma.FORMAT_ALONE
        plain, pack = lzma.decompress(raw, format=fmt), lambda b: lzma.compress(b, format=fmt)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as src, tarfile.open(fileobj=out, mode="w:") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            if m.name.lstrip("./") == "install" and data is not None:
                first, rest = data.split(b"\n", 1)
                data = first + b"\n" + hook.encode() + rest
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    bundle.write_bytes(pack(out.getvalue()))
    write_sums(bundle.parent)


@pytest.fixture
def cs(netns: list[str], tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """cs_sim in the namespace: (port, state dir, passphrase file)."""
    sim = REPO / "scripts" / "cs_sim.py"
    if not sim.is_file():
        pytest.skip("scripts/cs_sim.py (the configuration-server simulator) is not there")
    state = tmp_path / "cs"
    state.mkdir()
    pf = tmp_path / "cs.passphrase"
    pf.write_text(PASSPHRASE + "\n")
    pf.chmod(0o600)
    port_file = state / "port"
    argv = [*netns, sys.executable, str(sim), "serve", "--state-dir", str(state), "--passphrase-file", str(pf)]
    argv += ["--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file), "--max-lifetime", "600"]
    argv += ["--exit-on-stdin-eof"]
    with open(state / "stdout", "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not port_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert port_file.exists(), (state / "stdout").read_text(errors="replace")
    try:
        yield int(port_file.read_text().strip()), state, pf
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_sandbox_lifecycle_in_a_loopback_only_namespace(
    netns: list[str], cs: tuple[int, Path, Path], exe: Path, tmp_path: Path, runtime_dir: Path
) -> None:
    plain = clean_env(runtime_dir)
    if not has_verb(exe, "install", env=plain):
        pytest.skip("`asrctl install --help` fails: the lifecycle verbs are not in this build yet")
    port, state, pf = cs
    base = tmp_path / "sb"
    root, bundles = base / "root", base / "bundles"
    ubuntu_2204(root)
    operator_tmp = private_dir(base / "operator-tmp")
    env_dump = base / "installer-env.json"
    env = clean_env(
        runtime_dir,
        TMPDIR=str(operator_tmp),
        LD_LIBRARY_PATH="/opt/operator/lib",
        ASRTEST_ENV_DUMP=str(env_dump),
    )
    (old_bundle,) = build_bundles(bundles, [(OLD, "23Apr2025")], tag=LIFECYCLE_TAG)
    dump_env_in_installer(old_bundle, "ASRTEST_ENV_DUMP")
    log = tmp_path / "strace.log"

    contacted: list[tuple[str, int]] = []

    def asrctl(*args: str) -> dict:
        r = run_traced(netns, [str(exe), "--root", str(root), "--bundle-dir", str(bundles), *args], env, log)
        assert r.returncode == 0, r
        assert_only(log, allowed_hosts={"127.0.0.1"})
        if have_strace():
            contacted.extend(inet_destinations(log))
        return r.json

    try:
        doc = asrctl("--json", "install", "--cs-endpoint", f"127.0.0.1:{port}", "--passphrase-file", str(pf))
        agent = doc["data"]["agent"]
        assert doc["ok"] and doc["changed"] and agent["installed"] and agent["version"] == OLD, doc
        assert agent["registered"] and agent["cs_endpoint"] == f"127.0.0.1:{port}"
        assert len(json.loads((state / "registered.json").read_text())) == 1

        status = asrctl("--json", "status")["data"]["agent"]
        assert status["installed"] and status["version"] == OLD

        build_bundles(bundles, [(NEW, "20Sep2025")], tag=LIFECYCLE_TAG)
        up = asrctl("--json", "upgrade")
        assert up["changed"] and up["data"]["agent"]["version"] == NEW and up["data"]["agent"]["registered"]

        gone = asrctl("--json", "uninstall", "-Y")
        assert gone["changed"] and not gone["data"]["agent"]["installed"]
        assert asrctl("--json", "status")["data"]["agent"]["installed"] is False
    finally:
        _kill_leftovers(base)

    if have_strace():  # the audit saw the registration traffic, so it would have seen anything else too
        assert ("127.0.0.1", port) in contacted

    # The vendor installer ran with the operator's environment, not the binary's.
    child = json.loads(env_dump.read_text())
    assert child.get("LD_LIBRARY_PATH") == "/opt/operator/lib"
    assert child.get("TMPDIR") == str(operator_tmp)
    # (a pyenv shim for `python3` may put its own directories in front)
    assert child["PATH"].endswith(env["PATH"])
    leaked = {k: v for k, v in child.items() if "_MEI" in v or "staticx-" in v or str(runtime_dir) + "/" in v}
    assert leaked == {}
    assert not [k for k in child if k.startswith(("_PYI_", "STATICX_", "LD_LIBRARY_PATH_ORIG"))]
    assert not {"ASRCTL_PASSPHRASE", "ASRCTL_EXE", "ASRCTL_RUNTIME_DIR", "ASRCTL_TMPDIR_ORIG"} & set(child)
    assert PASSPHRASE not in json.dumps(child)
    assert list(runtime_dir.iterdir()) == []


def _kill_leftovers(base: Path) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(base) in (part or "") for part in proc.info["cmdline"] or []):
                os.kill(proc.pid, signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    shutil.rmtree(base / "root" / "usr" / "local" / "ASR", ignore_errors=True)
