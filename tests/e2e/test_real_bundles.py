"""Microsoft's real bundles and tools, end to end: the bundle's identity, its prerequisite checker before any
change, the vendor's exact argv, and the four packings Microsoft ships (docs/SIMULATORS.md)."""

from __future__ import annotations

import json
import lzma
import signal
import subprocess
import sys

import pytest
from asrsim.host import prepare_root, set_secure_boot
from e2e.conftest import NEW, OLD, TAG, Sandbox, wait_for

from asrctl.bundles.digest import write_sums


def assert_nothing_changed(sb: Sandbox) -> None:
    """No agent file, no leftover of asrctl's run: the staging and run dirs are empty, no journal says running."""
    assert not sb.vx_version.exists() and not sb.install_dir.exists()
    assert not (sb.root / "etc/vxagent").exists()
    state = sb.root / "var/lib/asrctl"
    for sub in ("staging", "runs", "private"):
        assert not (state / sub).exists() or not any((state / sub).iterdir()), sub
    journal = state / "journal.json"  # refused before a plan ran: no journal; after: it says failed, not running
    assert not journal.exists() or json.loads(journal.read_text())["status"] == "failed"
    assert not [p for p in sb.processes() if p.name() in ("install", "svagents", "appservice")]


@pytest.mark.parametrize("how", ["renamed", "mislabelled", "no .vx_version"])
def test_a_bundle_that_is_not_what_its_name_says_is_refused_with_exit_5(sandbox: Sandbox, how: str) -> None:
    if how == "renamed":
        built = sandbox.bundle(OLD, checksum=False)
        built.rename(built.with_name(built.name.replace(OLD, NEW)))
    elif how == "mislabelled":
        sandbox.bundle(NEW, checksum=False, vx_version={"OS_BUILT_FOR": "DEBIAN12-64"})
    else:
        sandbox.bundle(NEW, checksum=False, omit=[".vx_version"])
    write_sums(sandbox.bundles)
    r = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert r.returncode == 5, r.stderr
    error = r.json["error"]
    if how == "renamed":
        assert error["code"] == "ASRCTL-E038"
        assert f"version {NEW}" in error["message"] and f"VERSION={OLD}" in error["message"]
    elif how == "mislabelled":
        assert error["code"] == "ASRCTL-E038"
        assert TAG in error["message"] and "OS_BUILT_FOR=DEBIAN12-64" in error["message"]
    else:
        assert error["code"] == "ASRCTL-E039" and "no .vx_version" in error["message"]
    assert error["remedy"]
    assert_nothing_changed(sandbox)


@pytest.mark.parametrize(
    ("host", "env", "vendor_code", "asrctl_code"),
    [
        ("secure boot", {}, "ASRMobilityServiceSecureBootEnabled", "ASRCTL-E055"),
        ("low space", {"ASR_SIM_FREE_KB": "102400"}, "ASRMobilityServiceFreeSpaceOnRootNotSufficient", "ASRCTL-E041"),
        (
            "unsupported kernel",
            {"ASRCTL_KERNEL": "6.8.0-99-generic"},
            "ASRMobilityServiceKernelNotSupported",
            "ASRCTL-E056",
        ),
    ],
)
def test_a_host_microsofts_checker_refuses_is_refused_before_any_change(
    sandbox: Sandbox, host: str, env: dict[str, str], vendor_code: str, asrctl_code: str
) -> None:
    sandbox.bundle(OLD)
    if host == "secure boot":
        set_secure_boot(sandbox.root, True)
    skip = []
    if host == "unsupported kernel":
        prepare_root(sandbox.root, env["ASRCTL_KERNEL"])  # only the kernel check fails, not its directory
        # asrctl's own kernel check would refuse first (ASRCTL-E090, test_kernel_preflight.py); skipped, Microsoft's
        # checker still runs and refuses.
        skip = ["--skip-kernel-check"]
    r = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", *skip, env=env)
    assert r.returncode == 6, r.stderr
    error = r.json["error"]
    assert error["code"] == asrctl_code
    (vendor,) = error["details"]["vendor_errors"]
    assert vendor["code"] == vendor_code and vendor["asrctl_code"] == asrctl_code
    assert vendor["recommended_action"] == error["remedy"] and vendor["possible_causes"]
    assert vendor_code in error["message"]
    prereq = next(s for s in json.loads((sandbox.root / "var/lib/asrctl/journal.json").read_text())["steps"]
                  if s["id"] == "prereq")  # fmt: skip
    assert prereq["status"] == "failed"
    calls = (
        (sandbox.root / "var/log/asrsim.calls").read_text() if (sandbox.root / "var/log/asrsim.calls").exists() else ""
    )
    assert '"install"' not in calls, "Microsoft's installer must not have run"
    assert_nothing_changed(sandbox)


def test_doctor_runs_the_bundles_checker_and_changes_nothing(sandbox: Sandbox) -> None:
    bundle = sandbox.bundle(OLD)
    before = sandbox.files()
    ok = sandbox.asrctl("--json", "doctor", "--prereq")
    assert ok.returncode == 0, ok.stderr
    row = next(c for c in ok.json["data"]["checks"] if c["name"] == "prerequisites")
    assert row["status"] == "ok" and bundle.name in row["detail"]
    assert sandbox.files() == before, "doctor must not change anything"
    set_secure_boot(sandbox.root, True)
    before = sandbox.files()
    bad = sandbox.asrctl("--json", "doctor", "--bundle", str(bundle))
    assert bad.returncode == 6
    assert bad.json["error"]["code"] == "ASRCTL-E055"
    row = next(c for c in bad.json["data"]["checks"] if c["name"] == "prerequisite ASRMobilityServiceSecureBootEnabled")
    assert row["status"] == "fail" and "firmware" in row["remedy"]
    assert "prerequisite ASRMobilityServiceSecureBootEnabled" in bad.stderr
    assert sandbox.files() == before, "doctor must not change anything"


def test_a_bundle_without_the_checker_gets_asrctls_own_checks(sandbox: Sandbox) -> None:
    sandbox.bundle(OLD, omit=["prereq_check_install.sh"])
    set_secure_boot(sandbox.root, True)
    r = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert r.returncode == 6, r.stderr
    assert r.json["error"]["code"] == "ASRCTL-E055"
    assert "asrctl's own checks" in r.json["error"]["message"]
    assert_nothing_changed(sandbox)


RHEL8_KERNEL = "4.18.0-553.el8_10.x86_64"


def rpm_calls(sb: Sandbox) -> list[list[str]]:
    log = sb.root / "var/log/fakepkg.calls"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_killed_rpm_install_is_removed_through_the_package(sandbox: Sandbox) -> None:
    """Killed after the InMageVx package went in and before the version file: Microsoft's uninstall.sh refuses (no
    .vx_version), so asrctl removes the package with rpm -e, never with rm -rf over its files."""
    sandbox.become("rhel-8.10", RHEL8_KERNEL, rpm=True)
    sandbox.bundle(OLD, tag="RHEL8-64")
    argv = [sys.executable, "-m", "asrctl", "--root", str(sandbox.root), "--bundle-dir", str(sandbox.bundles),
            "--json", "install", "--no-register", "--cs-type", "CSLegacy"]  # fmt: skip
    package = sandbox.root / "var/lib/fakepkg/InMageVx"
    proc = subprocess.Popen(argv, env=sandbox.environ(ASR_SIM_HANG="install"), stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: package.exists() and (sandbox.install_dir / "uninstall.sh").exists())
        assert wait_for(lambda: "hanging" in (sandbox.root / "var/log/ua_install.log").read_text())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out
    assert ["rpm", "-e", "InMageVx"] in rpm_calls(sandbox)
    assert not package.exists()
    assert not sandbox.install_dir.exists() and not sandbox.vx_version.exists()


def test_the_residue_check_names_what_the_uninstaller_left(sandbox: Sandbox) -> None:
    """Microsoft's uninstall.sh exits 0 whatever its Vx uninstall did: asrctl looks at the machine."""
    sandbox.become("rhel-8.10", RHEL8_KERNEL, rpm=True)
    sandbox.bundle(OLD, tag="RHEL8-64")
    assert sandbox.asrctl("install", "--no-register", "--cs-type", "CSLegacy").returncode == 0
    r = sandbox.asrctl("--json", "uninstall", "-Y", env={"ASR_SIM_FAIL_AT": "uninstall"})
    assert r.returncode == 7
    error = r.json["error"]
    assert error["code"] == "ASRCTL-E061"
    for left in (
        "usr/local/.vx_version", "usr/local/ASR", "package InMageVx", "etc/vxagent", "etc/init.d/vxagent",
        f"lib/modules/{RHEL8_KERNEL}/kernel/drivers/char/involflt.ko", "kernel module involflt",
    ):  # fmt: skip
        assert left in error["message"], left
    again = sandbox.asrctl("--json", "uninstall", "-Y")
    assert again.returncode == 0, again.stderr
    assert ["rpm", "-e", "InMageVx"] in rpm_calls(sandbox)
    assert not (sandbox.root / "var/lib/fakepkg/InMageVx").exists() and not sandbox.install_dir.exists()


# The four packings Microsoft ships (index 12130928631, TAR_OPT): Ubuntu and DEBIAN12 tar --lzma (LZMA-alone), an
# xz one as operators have met (MicrosoftDocs/azure-docs issue 36187), DEBIAN7-11 and the RPM families gzip.
FORMATS = [
    pytest.param("UBUNTU-22.04-64", "ubuntu-22.04", None, None, id="lzma-UBUNTU-22.04"),
    pytest.param("UBUNTU-22.04-64", "ubuntu-22.04", None, "xz", id="xz-UBUNTU-22.04"),
    pytest.param("UBUNTU-22.04-64", "ubuntu-22.04", None, "gzip", id="gzip-UBUNTU-22.04"),
    pytest.param("DEBIAN10-64", "debian-10.13", None, None, id="gzip-DEBIAN10"),
    pytest.param("RHEL8-64", "rhel-8.10", RHEL8_KERNEL, None, id="gzip-RHEL8-rpm"),
]


@pytest.mark.parametrize(("tag", "distro", "kernel", "compression"), FORMATS)
def test_install_status_upgrade_uninstall(
    sandbox: Sandbox, tag: str, distro: str, kernel: str | None, compression: str | None
) -> None:
    """install → status → upgrade → uninstall through a bundle packed as Microsoft packs it for the tag."""
    rpm = tag.startswith(("RHEL", "OL", "SLES"))
    if distro != "ubuntu-22.04":
        sandbox.become(distro, kernel, rpm=rpm)
    old = sandbox.bundle(OLD, tag=tag, date="23Apr2025", compression=compression)
    magic = {"gzip": b"\x1f\x8b", "lzma": b"\x5d\x00\x00", "xz": b"\xfd7zXZ\x00"}
    packed = compression or ("gzip" if rpm or tag.startswith("DEBIAN") else "lzma")
    assert old.read_bytes()[:6].startswith(magic[packed])
    installed = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert installed.returncode == 0, installed.stderr
    assert installed.json["data"]["agent"]["version"] == OLD
    status = sandbox.asrctl("--json", "status")
    assert status.json["data"]["agent"]["installed"] and status.json["data"]["platform"]["os_tag"] == tag
    sandbox.bundle(NEW, tag=tag, compression=compression)
    upgraded = sandbox.asrctl("--json", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.json["data"]["agent"]["version"] == NEW
    if rpm:
        assert ["rpm", "-Uvh", "--prefix", str(sandbox.install_dir / "Vx")] in [c[:4] for c in rpm_calls(sandbox)]
    removed = sandbox.asrctl("--json", "uninstall", "-Y")
    assert removed.returncode == 0, removed.stderr
    assert not sandbox.vx_version.exists() and not sandbox.install_dir.exists()
    if rpm:
        assert ["rpm", "-e", "InMageVx"] in rpm_calls(sandbox)
        assert not (sandbox.root / "var/lib/fakepkg/InMageVx").exists()


def test_the_configurator_gets_the_endpoint_split(sandbox: Sandbox) -> None:
    """`--cs-endpoint 10.0.0.5:8443` reaches Microsoft's configurator as `-i 10.0.0.5 -p 8443` (the simulated one
    records its argv and, with ASR_SIM_FAIL_AT=configure, stops before any network traffic)."""
    sandbox.bundle(OLD)
    r = sandbox.asrctl(
        "--json", "install", "--cs-endpoint", "10.0.0.5:8443", "--passphrase-file", str(sandbox.passphrase_file),
        "--skip-connectivity-check", env={"ASR_SIM_FAIL_AT": "configure"},
    )  # fmt: skip
    assert r.returncode == 8, r.stderr
    calls = [json.loads(line) for line in (sandbox.root / "var/log/asrsim.calls").read_text().splitlines()]
    (configure,) = [c for c in calls if c[0] == "UnifiedAgentConfigurator.sh"]
    assert configure[configure.index("-i") + 1] == "10.0.0.5"
    assert configure[configure.index("-p") + 1] == "8443"
    assert "10.0.0.5:8443" not in configure
    assert configure[configure.index("-P") + 1] == str(sandbox.passphrase_file)


def _not_a_tar_inside(data: bytes) -> bytes:
    return lzma.compress(data[-4096:], format=lzma.FORMAT_ALONE)  # LZMA outside, compressed bytes inside


DAMAGE = {
    "zero-byte": (None, lambda data: b"", "empty file"),
    "truncated LZMA": ("lzma", lambda data: data[: len(data) * 2 // 3], "truncated: the LZMA data stops"),
    "truncated xz": ("xz", lambda data: data[: len(data) * 2 // 3], "truncated: the xz data stops"),
    "LZMA outside, not a tar inside": ("lzma", _not_a_tar_inside, "(lzma): not a tar archive"),
}


@pytest.mark.parametrize("bad", list(DAMAGE))
def test_a_damaged_bundle_is_exit_5_named_and_leaves_nothing(sandbox: Sandbox, bad: str) -> None:
    compression, damage, words = DAMAGE[bad]
    good = sandbox.bundle(OLD, compression=compression)  # SHA256SUMS names it: the copy went wrong after
    good.write_bytes(damage(good.read_bytes()))
    r = sandbox.asrctl("--json", "install", "--bundle", str(good), "--no-register", "--cs-type", "CSLegacy")
    assert r.returncode == 5, r.stderr
    assert r.json["error"]["code"] == "ASRCTL-E033" and good.name in r.json["error"]["message"]
    assert words in r.json["error"]["message"], r.json["error"]["message"]
    assert_nothing_changed(sandbox)
