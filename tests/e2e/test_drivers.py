"""``asrctl drivers install`` end to end in a sandbox root: an agent installed by the simulated installer, the
simulated kernel tools first on PATH (scripts/asrsim/kerneltools/bin: they keep /proc/modules, /proc/devices and
modules.dep under the root and record every call), Microsoft-shaped driver packages from scripts/asrsim/drivers.py.

One Ubuntu sandbox for the module (installing the agent is the slow part); each test puts the kernel side back to
"no driver" first. asrctl runs in-process; the tools it starts are real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from asrsim.bundle import build_bundle
from asrsim.drivers import KERNELTOOLS_BIN, build_package, load_driver, prepare_kernel, unpacked

from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]
K = "5.15.0-1103-azure"  # the running kernel of the sandbox (ASRCTL_KERNEL)
K2 = "5.15.0-1110-azure"  # installed, boots later
AGENT = "9.66.7567.1"
PKG_BUILD = "9.66.7643.1"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Linux kernel drivers")


@dataclass
class Host:
    base: Path
    root: Path
    capsys: pytest.CaptureFixture[str] | None = None

    @property
    def vx(self) -> Path:
        return self.root / "usr/local/ASR/Vx"

    def asrctl(self, *args: str) -> tuple[int, dict]:
        assert self.capsys is not None
        self.capsys.readouterr()
        code = run(["--json", "--root", str(self.root), *args])
        return code, json.loads(self.capsys.readouterr().out)

    def calls(self) -> list[list[str]]:
        log = self.root / "var/log/asrsim-kmod.calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def tools_called(self) -> list[str]:
        return [c[0] if c[0] != "inm_dmit" else f"inm_dmit {c[1]}" for c in self.calls()]

    def loaded(self) -> bool:
        mods = self.root / "proc/modules"
        return mods.exists() and any(line.split()[0] == "involflt" for line in mods.read_text().splitlines())

    def driver(self, kernel: str = K) -> Path:
        return self.root / "lib/modules" / kernel / "kernel/drivers/char/involflt.ko"

    def running_services(self) -> set[str]:
        found = set()
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if proc.info["name"] in ("svagents", "appservice") and any(
                    str(self.root) in (a or "") for a in proc.info["cmdline"] or []
                ):
                    found.add(proc.info["name"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def reset(self) -> None:
        """No driver loaded, no driver file, no device, no calls: the host after a kernel update."""
        for rel in ("proc", "dev/involflt", "var/lib/asrsim", "var/log/asrsim-kmod.calls", "boot"):
            p = self.root / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        for kernel in (K, K2):
            shutil.rmtree(self.root / "lib/modules" / kernel, ignore_errors=True)
            prepare_kernel(self.root, kernel)

    def snapshot(self) -> dict[str, bytes]:
        skip = (
            "var/log/asrctl",
            "var/lib/asrctl",
            "usr/local/ASR/Vx/var",
            "var/log/ua_",
            "var/log/svagents",
            "var/log/appservice",
            "var/log/asrsim-kmod.calls",  # the tools' call log: tests read it with calls()
        )
        out = {}
        for p in sorted(self.root.rglob("*")):
            rel = str(p.relative_to(self.root))
            if p.is_file() and not p.is_symlink() and not rel.startswith(skip):
                out[rel] = p.read_bytes()
        return out


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    base = tmp_path_factory.mktemp("drivers")
    root = base / "root"
    shutil.copytree(REPO / "tests/fixtures/distros/ubuntu-22.04", root, symlinks=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    bundles = base / "bundles"
    build_bundle(AGENT, "UBUNTU-22.04-64", bundles, supported_kernels=[K])
    prepare_kernel(root, K)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASRCTL_", "ASR_SIM_"))}
    env.update(ASRCTL_KERNEL=K, NO_COLOR="1", ASRCTL_LOG_FILE=str(base / "asrctl.log"))
    argv = [sys.executable, "-m", "asrctl", "--root", str(root), "--bundle-dir", str(bundles)]
    done = subprocess.run(
        [*argv, "install", "--no-register", "--cs-type", "CSLegacy", "-Y"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    box = Host(base, root)
    yield box
    done = subprocess.run([*argv, "uninstall", "-Y"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not box.running_services()


@pytest.fixture
def h(host: Host, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Host:
    monkeypatch.setenv("ASRCTL_KERNEL", K)
    monkeypatch.setenv("PATH", f"{KERNELTOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    host.capsys = capsys
    host.reset()
    if host.running_services() != {"svagents", "appservice"}:  # an earlier test's failure must not leak
        subprocess.run([str(host.vx / "bin/start")], env={**os.environ, "ASRCTL_ROOT": str(host.root)}, check=True)
    return host


def package(h: Host, key: str = "UBUNTU22", kernels: tuple[str, ...] = (K, K2), version: str = PKG_BUILD, **kw) -> Path:
    return build_package(h.base / "pkgs", key, list(kernels), version=version, **kw)


def test_the_driver_ends_up_loaded(h: Host) -> None:
    code, doc = h.asrctl("drivers", "install", str(package(h)))
    assert code == 0 and doc["ok"] is True and doc["changed"] is True, doc
    assert doc["reboot_required"] is False
    assert doc["data"]["kernels"] == [
        {
            "kernel": K,
            "role": "running",
            "file": f"involflt.ko.{K}",
            "rule": "exact kernel name",
            "target": f"/lib/modules/{K}/kernel/drivers/char/involflt.ko",
            "action": "load now",
        }
    ]
    driver = doc["data"]["driver"]
    assert (driver["loaded"], driver["device"], driver["major"], driver["version"]) == (True, True, 240, PKG_BUILD)
    assert h.loaded() and (h.root / "dev/involflt").read_text() == "c 240 0\n"
    assert f"kernel={K} version={PKG_BUILD}".encode() in h.driver().read_bytes()
    assert f"kernel={K}" in (h.root / f"boot/initrd.img-{K}").read_text()
    assert h.tools_called() == ["depmod", "modprobe", "mknod", "initrd/install.sh", "inm_dmit --op=get_driver_version"]
    assert h.running_services() == {"svagents", "appservice"}
    # The package's other kernel was not asked for: it is not touched, but the warning names the next boot's.
    assert not h.driver(K2).exists()
    assert doc["data"]["package"]["build"] == PKG_BUILD and doc["data"]["package"]["build_from"] == "the file name"


@pytest.mark.parametrize(
    ("knob", "why"),
    [("fail", "Unknown symbol in module"), ("lie", "is not in /proc/modules")],
    ids=["modprobe-fails", "modprobe-exits-0-without-loading"],
)
def test_a_driver_that_does_not_load_is_a_failure_and_the_old_state_is_back(
    h: Host, monkeypatch: pytest.MonkeyPatch, knob: str, why: str
) -> None:
    old = b"\x7fELF simulated involflt driver kernel=old version=9.66.7567.1\n"
    h.driver().write_bytes(old)
    before = h.snapshot()
    monkeypatch.setenv("ASR_SIM_MODPROBE", knob)
    code, doc = h.asrctl("drivers", "install", str(package(h)))
    assert code == 7 and doc["ok"] is False
    assert doc["error"]["code"] == "ASRCTL-E100" and why in doc["error"]["message"]
    assert not h.loaded() and not (h.root / "dev/involflt").exists()
    assert h.driver().read_bytes() == old  # the previous file is back (and depmod ran again)
    assert h.running_services() == {"svagents", "appservice"}  # the agent was started again
    after = h.snapshot()
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {f"lib/modules/{K}/modules.dep"}, changed


def test_an_initrd_failure_undoes_the_load(h: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_SIM_INITRD", "fail")
    code, doc = h.asrctl("drivers", "install", str(package(h)))
    assert code == 7 and doc["error"]["code"] == "ASRCTL-E101" and "initrd" in doc["error"]["message"]
    assert not h.loaded() and not h.driver().exists() and not (h.root / "dev/involflt").exists()
    assert "rmmod" in h.tools_called()
    assert h.running_services() == {"svagents", "appservice"}


def test_a_package_for_a_newer_agent_release_is_refused_before_anything_changes(h: Host) -> None:
    before = h.snapshot()
    code, doc = h.asrctl("drivers", "install", str(package(h, version="9.67.7830.1")))
    assert code == 6 and doc["error"]["code"] == "ASRCTL-E098"
    assert "9.67.7830.1" in doc["error"]["message"] and AGENT in doc["error"]["message"]
    assert "Upgrade the Mobility Service" in doc["error"]["remedy"]
    assert h.snapshot() == before and h.calls() == []


@pytest.mark.parametrize(
    ("make", "exit_code", "error"),
    [
        # Synthetic bad packages (not Microsoft's): members that climb out, absolute names, links out.
        (lambda h: package(h, extra=[_member("../evil.ko", b"x")]), 5, "ASRCTL-E032"),
        (lambda h: package(h, extra=[_member("/etc/evil.ko", b"x")]), 5, "ASRCTL-E032"),
        (lambda h: package(h, extra=[_link("Drivers/evil", "/etc/passwd")]), 5, "ASRCTL-E032"),
        (lambda h: package(h, kernels=(K2,)), 6, "ASRCTL-E099"),  # no driver for the running kernel
        (lambda h: package(h, key="DEBIAN12", kernels=(K,)), 4, "ASRCTL-E097"),
        (lambda h: package(h, name_version=False), 5, "ASRCTL-E096"),  # whose build nobody can tell
        (lambda h: _not_a_package(h), 5, "ASRCTL-E096"),
    ],
    ids=["traversal", "absolute", "link-out", "missing-driver", "other-platform", "unknown-build", "no-drivers-dir"],
)
def test_bad_packages_are_refused_and_nothing_changes(h: Host, make, exit_code: int, error: str) -> None:
    pkg = make(h)
    before = h.snapshot()
    code, doc = h.asrctl("drivers", "install", str(pkg))
    assert (code, doc["error"]["code"]) == (exit_code, error), doc
    assert doc["error"]["message"] and doc["error"]["remedy"]
    assert h.snapshot() == before and h.calls() == []
    assert not list((h.root / "var/lib/asrctl/staging").glob("*"))


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _not_a_package(h: Host) -> Path:
    name = "DriversPackage_UBUNTU22_9.66.7643.1.tgz"
    return build_package(
        h.base / "other", "UBUNTU22", [], version=PKG_BUILD, name=name, extra=[_member("README", b"hi")]
    )


def test_the_build_comes_from_build_or_from_the_lists(h: Host) -> None:
    pkg = package(h, name_version=False)
    code, doc = h.asrctl("drivers", "install", str(pkg), "--build", PKG_BUILD, "--dry-run")
    assert code == 0 and doc["data"]["package"]["build_from"] == "--build"
    # The A2A 9.66.7789.1 UBUNTU-22.04 list of the fixture names exactly these five kernels.
    five = ("5.15.0-1090-azure", "5.15.0-1109-azure", "5.15.0-1110-azure", "5.15.0-161-generic", "5.15.0-171-generic")
    lists = REPO / "tests/fixtures/supported-kernels"
    pkg = build_package(h.base / "pkgs5", "UBUNTU22", [*five, K], version=PKG_BUILD, name_version=False)
    code, doc = h.asrctl("drivers", "install", str(pkg), "--lists", str(lists), "--dry-run")
    assert code == 5 and doc["error"]["code"] == "ASRCTL-E096"  # six kernels: no list matches exactly
    prepare_kernel(h.root, "5.15.0-1110-azure")
    pkg = build_package(h.base / "pkgs5b", "UBUNTU22", list(five), version=PKG_BUILD, name_version=False)
    code, doc = h.asrctl(
        "drivers", "install", str(pkg), "--lists", str(lists), "--dry-run", "--kernel", "5.15.0-1110-azure"
    )
    assert doc["error"]["code"] == "ASRCTL-E099"  # the build is known (9.66.7789.1); the running kernel has no driver
    assert code == 6 and h.calls() == []


def test_same_release_newer_dlc_build_is_accepted(h: Host) -> None:
    code, doc = h.asrctl("drivers", "install", str(package(h, version="9.66.7789.1")), "--dry-run")
    assert code == 0 and doc["data"]["package"]["build"] == "9.66.7789.1" and doc["data"]["dry_run"] is True


def test_kernel_prepares_the_next_boot_too(h: Host) -> None:
    code, doc = h.asrctl("drivers", "install", str(package(h)), "--kernel", K2)
    assert code == 0 and doc["reboot_required"] is True
    assert [(k["kernel"], k["action"]) for k in doc["data"]["kernels"]] == [(K, "load now"), (K2, "at the next boot")]
    assert f"kernel={K2}".encode() in h.driver(K2).read_bytes()
    assert "kernel/drivers/char/involflt.ko:" in (h.root / f"lib/modules/{K2}/modules.dep").read_text()
    assert f"kernel={K2}" in (h.root / f"boot/initrd.img-{K2}").read_text()
    assert h.calls().count(["depmod", "-a", K2]) == 1 and h.calls().count(["modprobe", "-v", "involflt"]) == 1


@pytest.mark.parametrize(
    ("kernel", "code", "error"),
    [
        ("5.15.0 1110-azure", 2, "ASRCTL-E093"),
        ("../../../etc", 2, "ASRCTL-E093"),
        ("5.15.0-1200-azure", 2, "ASRCTL-E002"),
    ],
)
def test_a_bad_or_missing_kernel_is_refused(h: Host, kernel: str, code: int, error: str) -> None:
    before = h.snapshot()
    got, doc = h.asrctl("drivers", "install", str(package(h)), "--kernel", kernel)
    assert (got, doc["error"]["code"]) == (code, error)
    assert h.snapshot() == before and h.calls() == []


def test_a_healthy_loaded_driver_is_not_unloaded(h: Host) -> None:
    load_driver(h.root, K, "9.66.7567.1", protected=2)
    code, doc = h.asrctl("drivers", "install", str(package(h)))
    assert code == 0 and doc["reboot_required"] is True, doc
    assert doc["data"]["kernels"][0]["action"] == "at the next boot"
    assert any("stays loaded until the next restart" in w for w in doc["data"]["warnings"])
    assert doc["data"]["driver"]["version"] == "9.66.7567.1"  # still the loaded one
    assert "modprobe" not in h.tools_called() and "rmmod" not in h.tools_called()
    assert f"version={PKG_BUILD}".encode() in h.driver().read_bytes()  # on disk for the next boot


def test_a_faulty_driver_is_replaced_only_after_a_yes(h: Host) -> None:
    load_driver(h.root, K, "9.66.7722.1", protected=2)  # 9.66.7722.1: a known-faulty build
    before = h.snapshot()
    code, doc = h.asrctl("drivers", "install", str(package(h)))  # no terminal, no -Y
    assert code == 2 and doc["error"]["code"] == "ASRCTL-E004"
    assert h.snapshot() == before
    assert [c for c in h.tools_called() if not c.startswith("inm_dmit --op=get")] == []
    code, doc = h.asrctl("drivers", "install", str(package(h)), "--dry-run")
    assert code == 0 and doc["data"]["resync"] is True
    assert "EVERY protected disk" in doc["data"]["warnings"][0] and "9.66.7722.1" in doc["data"]["warnings"][0]
    assert [s["id"] for s in doc["data"]["plan"]["steps"]][:3] == ["stop-agent", "stop-filtering", "unload-faulty"]
    code, doc = h.asrctl("drivers", "install", str(package(h)), "-Y")
    assert code == 0, doc
    assert (h.root / "var/lib/asrsim/involflt.resync").exists()
    assert doc["data"]["driver"]["version"] == PKG_BUILD and doc["data"]["driver"]["faulty"] is False
    assert ["inm_dmit", "--op=stop_flt_all"] in h.calls() and ["rmmod", "involflt"] in h.calls()
    assert h.running_services() == {"svagents", "appservice"}


def test_a_failed_load_after_the_faulty_one_was_removed_loads_the_old_one_again(h: Host, monkeypatch) -> None:
    load_driver(h.root, K, "9.66.7722.1", protected=1)
    old = h.driver().read_bytes()
    monkeypatch.setenv("ASR_SIM_MODPROBE", f"fail:{PKG_BUILD}")  # the new driver does not load; the old one would
    code, doc = h.asrctl("drivers", "install", str(package(h)), "-Y")
    assert code == 7 and doc["error"]["code"] == "ASRCTL-E100"
    assert h.driver().read_bytes() == old and h.loaded()
    assert "version=9.66.7722.1" in (h.root / "var/lib/asrsim/involflt.module").read_text()
    assert (h.root / "var/lib/asrsim/involflt.resync").exists()  # that part cannot be undone, and was said so
    assert h.running_services() == {"svagents", "appservice"}


def test_an_unpacked_directory_is_accepted_but_not_verified(h: Host) -> None:
    top = unpacked(h.base / "dirs", "UBUNTU22", [K], version=PKG_BUILD)
    code, doc = h.asrctl("drivers", "install", str(top), "--dry-run")
    assert code == 0 and doc["data"]["package"]["verified"] is False
    assert any("cannot be verified" in w for w in doc["data"]["warnings"])
    code, doc = h.asrctl("drivers", "install", str(top / "Drivers"), "--dry-run")
    assert code == 0 and doc["data"]["package"]["key"] == "UBUNTU22"


def test_the_hosts_own_tools_are_never_run_in_a_sandbox(h: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    from asrctl.kernels import hotfix

    own = h.base / "host-sbin"  # stands for this machine's /sbin: its tools would change the real kernel
    own.mkdir(exist_ok=True)
    for tool in ("depmod", "modprobe", "rmmod", "mknod"):
        (own / tool).write_text(f"#!/bin/sh\ntouch {h.base}/host-tool-ran\n")
        (own / tool).chmod(0o755)
    monkeypatch.setattr(hotfix, "SYSTEM_PATH", str(own))
    monkeypatch.setenv("PATH", f"{own}{os.pathsep}{os.environ['PATH']}")
    before = h.snapshot()
    code, doc = h.asrctl("drivers", "install", str(package(h)))
    assert code == 7 and doc["error"]["code"] == "ASRCTL-E101" and "belongs to this host" in doc["error"]["message"]
    assert h.snapshot() == before and not (h.base / "host-tool-ran").exists()


def _reasons(doc: dict) -> list[str]:
    return [r["id"] for r in doc["data"]["health"]["reasons"]]


def test_status_shows_the_driver_and_an_unhealthy_one_fails_the_check(h: Host) -> None:
    def driver_reasons(doc: dict) -> list[str]:
        return [r for r in _reasons(doc) if r.startswith(("driver", "kernel", "next_boot"))]

    # The installed build's list (kept from the bundle at install) has K only, and K2 boots next.
    saved = h.root / f"var/lib/asrctl/supported_kernels/{AGENT}_UBUNTU-22.04-64_supported_kernels"
    assert saved.read_text() == f"{K}\n"
    code, doc = h.asrctl("status")
    assert code == 0 and doc["data"]["driver"]["loaded"] is None  # no /proc/modules under this root: unknown
    assert driver_reasons(doc) == ["next_boot_unsupported"]
    assert doc["data"]["driver"]["kernel"]["next_boot"] == K2

    (h.root / "proc").mkdir()
    (h.root / "proc/modules").write_text("involflt_old 16384 0 - Live 0x0000000000000000 (OE)\n")  # not ours
    code, doc = h.asrctl("status", "--check")
    assert code == 10 and doc["error"]["code"] == "ASRCTL-E074"
    assert driver_reasons(doc) == ["driver_not_loaded", "next_boot_unsupported"]
    saved.write_text("5.15.0-1090-azure\n")  # a build whose list lacks the running kernel: the cause is named
    code, doc = h.asrctl("status", "--check")
    assert code == 10 and driver_reasons(doc) == ["kernel_unsupported", "next_boot_unsupported"]
    saved.write_text(f"{K}\n{K2}\n")

    assert h.asrctl("drivers", "install", str(package(h)))[0] == 0
    code, doc = h.asrctl("status")
    driver = doc["data"]["driver"]
    assert (driver["loaded"], driver["device"], driver["version"], driver["faulty"]) == (True, True, PKG_BUILD, False)
    assert driver_reasons(doc) == []

    (h.root / "dev/involflt").unlink()
    code, doc = h.asrctl("status", "--check")
    assert code == 10 and driver_reasons(doc) == ["driver_no_device"]

    load_driver(h.root, K, "9.66.7709.1")
    code, doc = h.asrctl("status", "--check")
    assert code == 9 and driver_reasons(doc) == ["driver_faulty"] and doc["data"]["driver"]["faulty"] is True
    assert doc["data"]["health"]["status"] == "degraded"
    saved.write_text(f"{K}\n")


def test_a_run_killed_outright_leaves_the_agent_running_after_the_next_run(h: Host) -> None:
    """SIGKILL while the driver is being loaded (the agent stopped around it): the next run under the lock starts
    the agent's services again before anything else, as install, upgrade, register and uninstall do, even when
    that run itself fails (here: a package that does not exist)."""
    pkg = package(h)
    killer = h.base / "killer-bin"
    killer.mkdir(exist_ok=True)
    (killer / "modprobe").write_text("#!/bin/sh\nkill -9 $PPID\nsleep 5\n")
    (killer / "modprobe").chmod(0o755)
    env = {**os.environ, "PATH": f"{killer}{os.pathsep}{os.environ['PATH']}"}
    argv = [sys.executable, "-m", "asrctl", "--json", "--root", str(h.root), "drivers", "install", str(pkg)]
    killed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert h.running_services() == set(), "the kill came while the agent was stopped around the load"

    code, doc = h.asrctl("drivers", "install", str(h.base / "no-such-package.tar.gz"))
    assert code != 0 and doc["error"]["code"].startswith("ASRCTL-E")
    assert h.running_services() == {"svagents", "appservice"}
