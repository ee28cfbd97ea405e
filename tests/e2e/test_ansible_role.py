"""The Ansible collection asrctl.mobility for real: ansible-playbook (ansible-core from the dev lock) runs the role
mobility_service against localhost, with asrctl under test confined to the sandbox root and the simulators
(bundles built by scripts/asrsim, the configuration-server stand-in on loopback with free ports).

One sandbox carries the whole sequence, as an operator would run it: check mode on a fresh host, converge,
idempotence, check mode of an upgrade, the upgrade with its restart notice, check mode of a removal, the removal
and its idempotence. A second test fails on purpose (a binary whose digest does not match, then a bundle whose
digest does not match) and finds the support archive fetched to the controller. A third takes asrctl, the bundles
and their SHA256SUMS from an internal mirror (an HTTP server on loopback) instead of the controller.

Everything Ansible writes (its home, temporary directories, the fetched archive) stays under the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from e2e.conftest import NEW, OLD, PASSPHRASE, REPO, TAG, Sandbox

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
CALLBACKS = Path(__file__).resolve().parent / "ansible_callbacks"
PLAYBOOK = """\
- name: The Mobility Service through asrctl
  hosts: all
  gather_facts: false
  roles:
    - role: asrctl.mobility.mobility_service
"""


@dataclass
class PlayRun:
    returncode: int
    stdout: str
    stderr: str
    record: dict[str, Any]
    """What tests/e2e/ansible_callbacks/record.py wrote: every task result (no_log values masked) and the stats."""

    @property
    def output(self) -> str:
        return self.stdout[-4000:] + self.stderr[-2000:]

    @property
    def stats(self) -> dict[str, int]:
        return self.record["stats"]["localhost"]

    def results(self, name: str) -> list[dict[str, Any]]:
        """The localhost results of every task (handlers included) named ``name``."""
        return [t["result"] for t in self.record["tasks"] if t["name"].endswith(name) and t["host"] == "localhost"]

    def result(self, name: str) -> dict[str, Any]:
        found = self.results(name)
        assert len(found) == 1, f"{len(found)} results for {name!r}: {self.output}"
        return found[0]

    def status(self, name: str) -> str:
        """ok, failed or skipped: how the task named ``name`` ended (exactly one run of it)."""
        found = [t["status"] for t in self.record["tasks"] if t["name"].endswith(name) and t["host"] == "localhost"]
        assert len(found) == 1, f"{len(found)} results for {name!r}: {self.output}"
        return found[0]

    def changed_tasks(self) -> list[str]:
        return [t["name"] for t in self.record["tasks"] if t["result"].get("changed")]


class Controller:
    """The controller's side: the collection on its path, an inventory of localhost, the asrctl under test as the
    "binary" to copy (a wrapper that runs ``python -m asrctl``) with its SHA256SUMS, and the role's variables."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.dir = sb.base / "controller"
        collections = self.dir / "collections/ansible_collections/asrctl"
        collections.mkdir(parents=True)
        (collections / "mobility").symlink_to(REPO / "ansible")
        for sub in ("home", "tmp", "remote-tmp", "dist"):
            (self.dir / sub).mkdir()
        self.binary = self.dir / "dist/asrctl"
        self.binary.write_text(f'#!/bin/sh\nexec {sys.executable} -m asrctl "$@"\n')
        self.binary.chmod(0o755)
        self.binary_sums = self.dir / "dist/SHA256SUMS"
        self.binary_sums.write_text(f"{hashlib.sha256(self.binary.read_bytes()).hexdigest()}  asrctl\n")
        (self.dir / "inventory").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        )
        (self.dir / "site.yml").write_text(PLAYBOOK)
        self.logs = self.dir / "asrctl-logs"
        self.vars: dict[str, Any] = {
            "mobility_service_root": str(sb.root),
            "mobility_service_asrctl_path": str(sb.base / "sbin/asrctl"),
            "mobility_service_asrctl_src": str(self.binary),
            "mobility_service_asrctl_sha256sums_src": str(self.binary_sums),
            "mobility_service_bundle_dir": str(sb.root / "var/lib/asrctl/bundles"),
            "mobility_service_bundles_sha256sums_src": str(sb.bundles / "SHA256SUMS"),
            "mobility_service_logs_dest": str(self.logs),
        }
        (sb.base / "sbin").mkdir()

    def bundles(self) -> list[str]:
        return sorted(str(p) for p in self.sb.bundles.glob("Microsoft-ASR_UA_*"))

    def play(self, *args: str, **variables: Any) -> PlayRun:
        merged = {**self.vars, "mobility_service_bundles_src": self.bundles(), **variables}
        extra = self.dir / "vars.json"
        extra.write_text(json.dumps(merged))
        record = self.dir / "record.json"
        record.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_", "ANSIBLE_"))}
        env.update(
            {
                "ANSIBLE_HOME": str(self.dir / "home"),
                "ANSIBLE_LOCAL_TEMP": str(self.dir / "tmp"),
                "ANSIBLE_REMOTE_TEMP": str(self.dir / "remote-tmp"),
                "ANSIBLE_COLLECTIONS_PATH": str(self.dir / "collections"),
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
                "ANSIBLE_CALLBACKS_ENABLED": "record",
                "ASRCTL_TEST_ANSIBLE_RECORD": str(record),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_PIPELINING": "1",
                "TMPDIR": str(self.sb.base / "tmp"),
                "NO_COLOR": "1",
                "NO_PROXY": "*",
            }
        )
        argv = [str(ANSIBLE_PLAYBOOK), "-i", "inventory", "-e", f"@{extra}", *args, "site.yml"]
        proc = subprocess.run(
            argv, cwd=self.dir, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
        )
        extra.unlink()
        assert record.exists(), f"ansible-playbook recorded nothing (exit {proc.returncode}): {proc.stderr[-3000:]}"
        return PlayRun(proc.returncode, proc.stdout, proc.stderr, json.loads(record.read_text()))


def _root_state(sb: Sandbox) -> dict[str, str]:
    """Every file under the sandbox root with a digest of its content (asrctl's own log aside: it logs each run)."""
    out = {}
    for path in sorted(sb.root.rglob("*")):
        rel = str(path.relative_to(sb.root))
        if rel.startswith("var/log/asrctl"):
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _agent(sb: Sandbox) -> dict[str, Any]:
    return sb.asrctl("--json", "status").json["data"]["agent"]


def test_role_converges_is_idempotent_checks_and_removes(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD, date="23Apr2025")
    sandbox.bundle(OLD, tag="RHEL9-64", date="23Apr2025")  # another OS's bundle in the same list: never copied
    ctl = Controller(sandbox)
    registration = {
        "mobility_service_cs_endpoint": cs.endpoint,
        "mobility_service_cs_fingerprint": cs.fingerprint,
        "mobility_service_ps_port": cs.ps_port,
        "mobility_service_passphrase": PASSPHRASE,
    }
    host_bin = Path(ctl.vars["mobility_service_asrctl_path"])
    # asrctl and this host's bundle are on the host already (a previous run or a staging job put them there),
    # so check mode can ask asrctl about them.
    host_bin.write_bytes(ctl.binary.read_bytes())
    host_bin.chmod(0o755)
    staged = sandbox.root / "var/lib/asrctl/bundles"
    staged.mkdir(parents=True)
    staged.chmod(0o750)
    for path in sandbox.bundles.glob(f"*{TAG}*"):
        shutil.copyfile(path, staged / path.name)
    (staged / "SHA256SUMS").write_text((sandbox.bundles / "SHA256SUMS").read_text())
    for path in staged.iterdir():
        path.chmod(0o644)
    before = _root_state(sandbox)

    # Check mode on a fresh host: asrctl's dry run says the install would change the host; nothing changes.
    check = ctl.play("--check", **registration)
    assert check.returncode == 0, check.output
    dry = check.result("Install, upgrade or register the Mobility Service")
    assert dry["changed"] is True and dry["would_change"] is True and dry["plan"]["steps"]
    assert "--dry-run" in dry["cmd"] and dry["result"]["command"] == "install"
    assert _root_state(sandbox) == before and not cs.registered()

    # Converge: only this host's bundle copied, installed and registered, healthy.
    run = ctl.play("-vvv", **registration)
    assert run.returncode == 0, run.output
    assert run.stats["changed"] > 0 and run.stats["failures"] == 0
    installed = run.result("Install, upgrade or register the Mobility Service")
    assert installed["changed"] is True and installed["result"]["command"] == "install"
    assert installed["outcome"]["state"] == "requested"
    assert "--passphrase-stdin" in installed["cmd"] and PASSPHRASE not in " ".join(installed["cmd"])
    assert run.result("Check the agent's health (asrctl status --check)")["health"]["status"] == "ok"
    copied = sorted(p.name for p in (sandbox.root / "var/lib/asrctl/bundles").iterdir())
    assert copied == ["Microsoft-ASR_UA_9.65.7417.1_UBUNTU-22.04-64_GA_23Apr2025_release.tar.gz", "SHA256SUMS"]
    agent = _agent(sandbox)
    assert agent["installed"] and agent["version"] == OLD and agent["registered"]
    assert agent["cs_endpoint"] == cs.endpoint and len(cs.registered()) == 1
    # The passphrase went in on stdin: not in ansible's output (even at -vvv), nor in any file it or asrctl left
    # (Microsoft's configurator keeps its own copy, mode 0700, as the real one does: docs/SIMULATORS.md).
    assert PASSPHRASE not in run.stdout + run.stderr
    vendor_copy = sandbox.root / "usr/local/InMage/private/connection.passphrase"
    for path in [*sandbox.root.rglob("*"), *ctl.dir.rglob("*")]:
        if path.is_file() and not path.is_symlink() and path != vendor_copy:
            assert PASSPHRASE.encode() not in path.read_bytes(), f"passphrase found in {path}"

    # Idempotence: the same play again changes nothing.
    again = ctl.play(**registration)
    assert again.returncode == 0, again.output
    assert again.stats["changed"] == 0, again.changed_tasks()

    # A newer bundle arrives. state latest: copied and upgraded; asrctl says restart, and the handler says so
    # (mobility_service_reboot is false).
    sandbox.bundle(NEW)
    up = ctl.play(mobility_service_state="latest", **registration)
    assert up.returncode == 0, up.output
    upgraded = up.result("Install, upgrade or register the Mobility Service")
    assert upgraded["changed"] is True and upgraded["reboot_required"] is True
    assert "needs a restart" in up.result("Say that a restart is left to the operator")["msg"]
    assert up.status("Restart the machine for the Mobility Service") == "skipped"
    agent = _agent(sandbox)
    assert agent["version"] == NEW and agent["registered"] and agent["cs_endpoint"] == cs.endpoint

    # Check mode of state absent: would remove, removes nothing.
    check = ctl.play("--check", mobility_service_state="absent")
    assert check.returncode == 0, check.output
    dry = check.result("Remove the Mobility Service")
    assert dry["changed"] is True and dry["would_change"] is True
    assert _agent(sandbox)["installed"] is True

    # state absent, twice: removed, then nothing to do.
    gone = ctl.play(mobility_service_state="absent")
    assert gone.returncode == 0, gone.output
    removed = gone.result("Remove the Mobility Service")
    assert removed["changed"] is True and removed["reboot_required"] is True
    assert not sandbox.vx_version.exists() and not sandbox.install_dir.exists()
    assert _agent(sandbox)["installed"] is False
    still = ctl.play(mobility_service_state="absent")
    assert still.returncode == 0, still.output
    assert still.stats["changed"] == 0, still.changed_tasks()
    assert not ctl.logs.exists(), "no failure, so no support archive"


def test_role_failure_collects_and_fetches_logs(sandbox: Sandbox, cs) -> None:
    sandbox.bundle(OLD, date="23Apr2025")
    ctl = Controller(sandbox)
    registration = {
        "mobility_service_cs_endpoint": cs.endpoint,
        "mobility_service_ps_port": cs.ps_port,
        "mobility_service_passphrase": PASSPHRASE,
    }
    host_bin = Path(ctl.vars["mobility_service_asrctl_path"])

    # A binary that does not match its SHA256SUMS is refused on the controller: nothing is copied.
    bad_sums = ctl.dir / "dist/BAD-SHA256SUMS"
    bad_sums.write_text("0" * 64 + "  asrctl\n")
    run = ctl.play(mobility_service_asrctl_sha256sums_src=str(bad_sums), **registration)
    assert run.returncode != 0
    assert "as its SHA256SUMS says: nothing was copied" in run.result("Fail with what went wrong")["msg"]
    assert not host_bin.exists()

    # A bundle that does not match its SHA256SUMS: asrctl refuses it before anything runs (exit 5); the role
    # collects asrctl's support archive on the host, fetches it and fails with asrctl's error.
    sums = sandbox.bundles / "SHA256SUMS"
    name = Path(ctl.bundles()[0]).name
    sums.write_text(f"{'1' * 64}  {name}\n")
    run = ctl.play(**registration)
    assert run.returncode != 0
    failed = run.result("Install, upgrade or register the Mobility Service")
    assert run.status("Install, upgrade or register the Mobility Service") == "failed"
    assert failed["rc"] == 5 and failed["error"]["code"].startswith("ASRCTL-E03")
    assert failed["msg"].startswith(failed["error"]["code"])
    assert run.result("Fail with what went wrong")["msg"].endswith(failed["msg"])
    archive_on_host = Path(run.result("Collect asrctl's support archive on the host")["archive"])
    fetched = ctl.logs / "localhost" / archive_on_host.name
    assert fetched.read_bytes() == archive_on_host.read_bytes()
    with tarfile.open(fetched) as tar:
        members = tar.getnames()
        manifest = json.load(tar.extractfile(next(m for m in members if m.endswith("/manifest.json"))))
    assert manifest["format"] == "asrctl-support/1"
    assert any(m.endswith("/reports/status.json") for m in members)
    assert _agent(sandbox)["installed"] is False and not sandbox.vx_version.exists()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _mirror(directory: Path) -> Iterator[str]:
    """An internal mirror: ``directory`` over HTTP on 127.0.0.1, a free port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_role_takes_asrctl_and_bundles_from_an_internal_url(sandbox: Sandbox, cs) -> None:
    """mobility_service_asrctl_url, mobility_service_bundle_urls and their *_sha256sums_url: downloaded on the
    host, each checked against its SHA256SUMS by get_url before it lands; a second run downloads nothing."""
    sandbox.bundle(OLD, date="23Apr2025")
    sandbox.bundle(OLD, tag="RHEL9-64", date="23Apr2025")  # another OS's bundle on the mirror: never downloaded
    ctl = Controller(sandbox)
    mirror = sandbox.base / "mirror"
    shutil.copytree(ctl.dir / "dist", mirror / "asrctl")
    shutil.copytree(sandbox.bundles, mirror / "bundles")
    names = sorted(p.name for p in (mirror / "bundles").glob("Microsoft-ASR_UA_*"))
    registration = {
        "mobility_service_cs_endpoint": cs.endpoint,
        "mobility_service_cs_fingerprint": cs.fingerprint,
        "mobility_service_ps_port": cs.ps_port,
        "mobility_service_passphrase": PASSPHRASE,
    }
    host_bin = Path(ctl.vars["mobility_service_asrctl_path"])
    with _mirror(mirror) as url:
        from_url = {
            "mobility_service_asrctl_src": "",
            "mobility_service_asrctl_sha256sums_src": "",
            "mobility_service_asrctl_url": f"{url}/asrctl/asrctl",
            "mobility_service_asrctl_sha256sums_url": f"{url}/asrctl/SHA256SUMS",
            "mobility_service_bundles_src": [],
            "mobility_service_bundles_sha256sums_src": "",
            "mobility_service_bundle_urls": [f"{url}/bundles/{name}" for name in names],
            "mobility_service_bundles_sha256sums_url": f"{url}/bundles/SHA256SUMS",
            **registration,
        }
        # A mirror whose asrctl does not match its SHA256SUMS: get_url refuses it, nothing lands on the host.
        genuine = (mirror / "asrctl/asrctl").read_bytes()
        (mirror / "asrctl/asrctl").write_bytes(genuine + b"# tampered\n")
        tampered = ctl.play(**from_url)
        assert tampered.returncode != 0
        assert tampered.status("Download asrctl on the host") == "failed"
        assert not host_bin.exists() and not sandbox.vx_version.exists()
        (mirror / "asrctl/asrctl").write_bytes(genuine)

        run = ctl.play(**from_url)
        assert run.returncode == 0, run.output
        assert run.status("Download asrctl on the host") == "ok" and host_bin.read_bytes() == genuine
        installed = run.result("Install, upgrade or register the Mobility Service")
        assert installed["changed"] is True and installed["result"]["command"] == "install"
        assert run.result("Check the agent's health (asrctl status --check)")["health"]["status"] == "ok"
        landed = sorted(p.name for p in (sandbox.root / "var/lib/asrctl/bundles").iterdir())
        assert landed == [n for n in names if f"_{TAG}_" in n] + ["SHA256SUMS"]
        agent = _agent(sandbox)
        assert agent["version"] == OLD and agent["registered"] and agent["cs_endpoint"] == cs.endpoint

        again = ctl.play(**from_url)
        assert again.returncode == 0, again.output
        assert again.stats["changed"] == 0, again.changed_tasks()
