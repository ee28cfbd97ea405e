"""FIFOs, garbage and huge files at every input path, and bad values for every duration and endpoint: a clear
catalogued error (never a hang, never "internal error, a bug"), nothing changed, and the next run with a good
input succeeds.

Every file asrctl opens from an input or the host is opened non-blocking, checked to be a regular file and read
bounded (system/rootfs.py): a FIFO named SHA256SUMS used to hang ``install`` and ``bundles verify`` forever, and a
1 GB passphrase file was read whole before it was refused.
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

from .conftest import OLD, assert_clean, install_args, with_passphrase_env

NO_HANG = 60  # seconds: a run that takes longer is hanging (the subprocess timeout fails the test)


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.mkfifo(path)
    return path


def _huge(path: Path, size: int = 1 << 30) -> Path:
    """A sparse file of ``size`` bytes (costs no disk): reading it whole would cost ``size`` bytes of memory."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    path.chmod(0o600)
    return path


def _refused(r: Any, exit_code: int, code: str, *words: str) -> dict[str, Any]:
    assert r.returncode == exit_code, r.stderr
    doc = r.json
    assert doc["error"]["code"] == code, doc["error"]
    for word in words:
        assert word in doc["error"]["message"], doc["error"]["message"]
    assert doc["changed"] is False
    assert "internal error" not in r.stderr
    return doc


def _default_part(cases: dict[str, Any], default: set[str]) -> list[Any]:
    """All the cases; those not in ``default`` only with ``make test-faults`` (docs/RELIABILITY.md, the budget)."""
    return [pytest.param(k, marks=[] if k in default else [pytest.mark.slow], id=k) for k in sorted(cases)]


# --- SHA256SUMS ---------------------------------------------------------------------------------------------------

SUMS_CASES = {
    "fifo": lambda p: _fifo(p),
    "directory": lambda p: (p.unlink(missing_ok=True), p.mkdir()),
    "huge": lambda p: _huge(p, 64 << 20),
    "garbage": lambda p: p.write_bytes(b"\x00\xff" * 100),
}


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("kind", _default_part(SUMS_CASES, {"fifo"}))
def test_sha256sums(sandbox: Sandbox, cs: Any, kind: str) -> None:
    sandbox.bundle(OLD)
    sums = sandbox.bundles / "SHA256SUMS"
    good = sums.read_bytes()
    SUMS_CASES[kind](sums)
    r = sandbox.asrctl(*install_args(sandbox, cs), env=with_passphrase_env(), timeout=NO_HANG)
    _refused(r, 2, "ASRCTL-E035", "SHA256SUMS")
    verify = sandbox.asrctl("--json", "bundles", "verify", timeout=NO_HANG)
    assert verify.returncode == 2 and verify.json["error"]["code"] == "ASRCTL-E035", verify.stderr
    assert_clean(sandbox, "absent")
    if sums.is_dir():
        sums.rmdir()
    else:
        sums.unlink()
    sums.write_bytes(good)
    again = sandbox.asrctl(*install_args(sandbox, cs), env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert_clean(sandbox, OLD)


@pytest.mark.fault("inputs")
def test_a_bundle_that_is_a_fifo_is_ignored_not_waited_on(sandbox: Sandbox) -> None:
    _fifo(sandbox.bundles / f"Microsoft-ASR_UA_{OLD}_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz")
    r = sandbox.asrctl("--json", "bundles", "list", timeout=NO_HANG)
    assert r.returncode == 0, r.stderr
    assert r.json["data"]["ignored"][0]["reason"] == "not a regular file"
    v = sandbox.asrctl("--json", "bundles", "verify", timeout=NO_HANG)
    assert v.returncode == 4 and v.json["error"]["code"] == "ASRCTL-E020", v.stderr


# --- the passphrase -----------------------------------------------------------------------------------------------


def _peak_rss_run(sb: Sandbox, *args: str) -> tuple[int, dict[str, Any], int]:
    """asrctl in a child that reports its own peak RSS (bytes): VmHWM, the high-water mark of the child's own
    address space. Not getrusage's ru_maxrss: Linux carries the pre-exec mark over exec, so that would be the forking
    test runner's peak whenever it is larger (a pytest-xdist worker's, in a full run)."""
    code = (
        "import json, re, sys\n"
        "from asrctl.cli import run\n"
        "rc = run(sys.argv[1:])\n"
        "with open('/proc/self/status') as fh:\n"
        "    peak = int(re.search(r'^VmHWM:\\s+(\\d+) kB', fh.read(), re.M).group(1)) * 1024\n"
        "print(json.dumps({'rc': rc, 'peak': peak}), file=sys.stderr)\n"
    )
    argv = [sys.executable, "-c", code, "--root", str(sb.root), "--bundle-dir", str(sb.bundles), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    env.update({"NO_COLOR": "1", "NO_PROXY": "*"})
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=NO_HANG, check=False)
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    return stats["rc"], json.loads(proc.stdout), stats["peak"]


@pytest.mark.fault("inputs")
def test_a_1_gb_passphrase_file_is_refused_without_reading_it(sandbox: Sandbox, cs: Any) -> None:
    """Issue 13: a 1 GB passphrase file was read whole (2.1 GB RSS) before it was refused."""
    sandbox.bundle(OLD)
    big = _huge(sandbox.base / "tmp/big.passphrase")
    rc, doc, peak = _peak_rss_run(
        sandbox, "--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(big), "--no-vm-agent"
    )
    assert (rc, doc["error"]["code"]) == (6, "ASRCTL-E050"), doc["error"]
    assert "larger than a passphrase can be" in doc["error"]["message"]
    assert peak < 200 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB: the file was read"
    assert_clean(sandbox, "absent")


PASSPHRASE_CASES = {
    "fifo": (lambda p: _fifo(p), (6, "ASRCTL-E050"), "is not a regular file"),
    "directory": (lambda p: (p.unlink(missing_ok=True), p.mkdir()), (2, "ASRCTL-E002"), "is a directory"),
    "not-utf8": (lambda p: (p.write_bytes(b"\xff\xfe\x00secret\n"), p.chmod(0o600)), (6, "ASRCTL-E050"), "cannot read"),
    "empty": (lambda p: (p.write_bytes(b""), p.chmod(0o600)), (6, "ASRCTL-E050"), "is empty"),
    "two-lines": (lambda p: (p.write_bytes(b"one\ntwo\n"), p.chmod(0o600)), (6, "ASRCTL-E050"), "more than one line"),
}


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("kind", sorted(PASSPHRASE_CASES))
def test_passphrase_file(sandbox: Sandbox, cs: Any, kind: str) -> None:
    sandbox.bundle(OLD)
    path = sandbox.base / "tmp/cs.passphrase"
    make, (exit_code, code), words = PASSPHRASE_CASES[kind]
    make(path)
    args = ["--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(path), "--no-vm-agent"]
    r = sandbox.asrctl(*args, timeout=NO_HANG)
    _refused(r, exit_code, code, words)
    assert_clean(sandbox, "absent")


@pytest.mark.fault("inputs")
def test_a_passphrase_on_stdin_that_never_ends_a_line_is_refused(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(OLD)
    args = ["--json", "install", "--cs-endpoint", cs.endpoint, "--passphrase-stdin", "--no-vm-agent"]
    r = sandbox.asrctl(*args, stdin="x" * 100_000, timeout=NO_HANG)
    _refused(r, 6, "ASRCTL-E050", "longer than")
    assert_clean(sandbox, "absent")


# --- --config and --config-file -----------------------------------------------------------------------------------

CONFIG_CASES = {
    "fifo": (lambda p: _fifo(p), "is not a regular file"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "huge": (lambda p: _huge(p, 64 << 20), "larger than"),
    "garbage": (lambda p: p.write_bytes(b"\x00\x01\x02 = = ["), "not"),
    "nan-timeout": (lambda p: p.write_text("timeout = nan\n"), "above 0"),
    "negative-timeout": (lambda p: p.write_text("timeout = -1\n"), "above 0"),
}


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("kind", sorted(CONFIG_CASES))
def test_config_file(sandbox: Sandbox, kind: str) -> None:
    sandbox.bundle(OLD)
    path = sandbox.base / "tmp/asrctl.toml"
    make, words = CONFIG_CASES[kind]
    make(path)
    r = sandbox.asrctl(
        "--json",
        "--config",
        str(path),
        "install",
        "--no-register",
        "--cs-type",
        "CSLegacy",
        "--no-vm-agent",
        timeout=NO_HANG,
    )
    assert r.returncode == 2, r.stderr
    assert r.json["error"]["code"] == "ASRCTL-E006" and words in r.json["error"]["message"], r.json["error"]
    assert_clean(sandbox, "absent")


@pytest.mark.fault("inputs")
def test_a_csprime_config_file_that_is_a_fifo_is_refused(sandbox: Sandbox) -> None:
    sandbox.bundle(OLD)
    fifo = _fifo(sandbox.base / "tmp/MobilityAgentConfig.json")
    args = ["--json", "install", "--cs-type", "CSPrime", "--config-file", str(fifo), "--no-vm-agent"]
    r = sandbox.asrctl(*args, timeout=NO_HANG)
    _refused(r, 2, "ASRCTL-E085", "not a regular file")
    assert_clean(sandbox, "absent")


# --- files of the host: the version file, drscout.conf, release files, asrctl's log -------------------------------

VX_CASES = {
    "fifo": lambda p: _fifo(p),
    "directory": lambda p: (p.unlink(), p.mkdir()),
    "huge": lambda p: _huge(p, 64 << 20),
    "garbage": lambda p: p.write_bytes(b"\x00garbage\xff\n"),
}


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("kind", _default_part(VX_CASES, {"fifo", "garbage"}))
def test_version_file(installed: Sandbox, cs: Any, kind: str) -> None:
    """An unreadable .vx_version: status reports it (never hangs), install/upgrade/register refuse with ASRCTL-E051
    whose remedy — `asrctl uninstall -Y` — really removes what is left; then install works again."""
    sb = installed
    VX_CASES[kind](sb.vx_version)
    st = sb.asrctl("--json", "status", timeout=NO_HANG)
    assert st.returncode == 0, st.stderr
    assert "half_installed" in [r["id"] for r in st.json["data"]["health"]["reasons"]]
    r = sb.asrctl(*install_args(sb, cs), env=with_passphrase_env(), timeout=NO_HANG)
    doc = _refused(r, 6, "ASRCTL-E051")
    assert "asrctl uninstall -Y" in doc["error"]["remedy"]
    fix = sb.asrctl("--json", "uninstall", "-Y", timeout=NO_HANG)
    assert fix.returncode == 0, fix.stderr
    assert_clean(sb, "absent")
    again = sb.asrctl(*install_args(sb, cs), env=with_passphrase_env())
    assert again.returncode == 0, again.stderr
    assert_clean(sb, OLD)


@pytest.mark.fault("inputs")
def test_drscout_conf_as_a_fifo_never_hangs_status(installed: Sandbox) -> None:
    conf = installed.install_dir / "Vx/etc/drscout.conf"
    _fifo(conf)
    st = installed.asrctl("--json", "status", timeout=NO_HANG)
    assert st.returncode == 0, st.stderr
    assert st.json["data"]["agent"]["installed"] is True


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_a_release_file_that_is_a_fifo_or_huge(sandbox: Sandbox, kind: str) -> None:
    target = sandbox.root / "etc/os-release"
    real = target.resolve()
    target.unlink()
    if kind == "fifo":
        _fifo(target)
    else:
        _huge(target, 64 << 20)
    r = sandbox.asrctl("--json", "detect", timeout=NO_HANG)
    assert r.returncode == 3 and r.json["error"]["code"] == "ASRCTL-E011", r.stderr
    del real


@pytest.mark.fault("inputs")
def test_asrctl_log_as_a_fifo_does_not_hang_a_changing_run(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(OLD)
    _fifo(sandbox.root / "var/log/asrctl.log")
    r = sandbox.asrctl(*install_args(sandbox, cs), env=with_passphrase_env(), timeout=NO_HANG)
    assert r.returncode == 0, r.stderr
    assert_clean(sandbox, OLD)


# --- durations and endpoints --------------------------------------------------------------------------------------

TIMEOUTS = [
    ("install", "--timeout", "-1"),
    ("install", "--timeout", "nan"),
    ("install", "--timeout", "inf"),
    ("install", "--timeout", "0"),
    ("upgrade", "--timeout", "-5"),
    ("install", "--connect-timeout", "nan"),
    ("doctor", "--connect-timeout", "-1"),
    ("bundles fetch", "--timeout", "nan"),
]


@pytest.mark.fault("inputs")
@pytest.mark.parametrize(("verb", "option", "value"), TIMEOUTS, ids=lambda v: str(v).replace(" ", "-"))
def test_a_duration_must_be_positive_and_finite(sandbox: Sandbox, verb: str, option: str, value: str) -> None:
    """Issue 13: `--timeout -1` was accepted (and stopped the installer at once), `--timeout nan` was "internal
    error"."""
    sandbox.bundle(OLD)
    extra = ["https://127.0.0.1:9/x.tar.gz"] if verb == "bundles fetch" else []
    r = sandbox.asrctl(
        "--json", *verb.split(), f"{option}={value}", *extra, "--no-register", "--cs-type", "CSLegacy", timeout=NO_HANG
    )
    if verb != "install":
        r = sandbox.asrctl("--json", *verb.split(), f"{option}={value}", *extra, timeout=NO_HANG)
    assert r.returncode == 2, r.stderr
    assert r.json["error"]["code"] == "ASRCTL-E002" and "above 0" in r.json["error"]["message"], r.json["error"]
    assert_clean(sandbox, "absent")


ENDPOINTS = [" 127.0.0.1", "127.0.0.1\n", "127.0.0.1 ", "0.0.0.0", "0.0.0.0:443", "[::]:443"]


@pytest.mark.fault("inputs")
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=repr)
def test_an_endpoint_is_taken_exactly_as_given(sandbox: Sandbox, endpoint: str) -> None:
    sandbox.bundle(OLD)
    args = ["--json", "install", "--cs-endpoint", endpoint, "--no-vm-agent"]
    r = sandbox.asrctl(*args, env=with_passphrase_env(), timeout=NO_HANG)
    assert r.returncode == 2 and r.json["error"]["code"] == "ASRCTL-E002", r.stderr
    assert "bad endpoint" in r.json["error"]["message"]
    assert_clean(sandbox, "absent")
