"""The bundle's prerequisite checker (prereq_check_install.sh) and the installer's use of it, without asrctl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from asrsim.bundle import build_bundle
from asrsim.host import prepare_root, set_secure_boot

from .conftest import TAG, V1


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> dict[str, Path]:
    """One bundle per family the kernel rules are tested on."""
    out = tmp_path_factory.mktemp("tagged")
    return {
        tag: build_bundle(V1, tag, out / tag)
        for tag in ("UBUNTU-22.04-64", "RHEL7-64", "RHEL8-64", "RHEL9-64", "SLES15-64", "DEBIAN12-64")
    }


def check(box, staged: Path, *args: str, knobs: dict | None = None, role: str = "Agent"):
    """Run the checker the way the installer (and asrctl) do: from the bundle dir, with -r and -j."""
    out = box.root / "var/tmp/prereq.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = ["/bin/sh", "./prereq_check_install.sh", *(args or ("-r", role, "-j", str(out)))]
    proc = subprocess.run(argv, cwd=staged, env=box.env(**(knobs or {})), capture_output=True, text=True, timeout=60)
    return proc, out


def names(path: Path) -> list[str]:
    return [e["error_name"] for e in json.loads(path.read_text())["Errors"]] if path.exists() else []


def test_a_healthy_sandbox_passes_and_a_stale_file_is_removed(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    stale = sandbox.root / "var/tmp/prereq.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("old errors")
    proc, out = check(sandbox, staged)
    assert proc.returncode == 0, proc.stdout
    assert not out.exists()  # no file = no errors
    assert "prerequisite checks passed" in sandbox.install_log.read_text()


def test_microsofts_error_file_shape(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    set_secure_boot(sandbox.root, True)
    proc, out = check(sandbox, staged, knobs={"ASR_SIM_FREE_KB": "1000"})
    assert proc.returncode == 1
    text = out.read_text()
    assert text.startswith(
        '{\n\t"Errors":\n\t[\n\t\t{\n\t\t\t"error_name":"ASRMobilityServiceSecureBootEnabled",\n'
        '\t\t\t"error_params":{"VMName":"sim-host-01"},\n\t\t\t"default_message":"Secure Boot is enabled on sim-host-01."\n'
        "\t\t},\n\t\t{\n"
    )
    assert text.endswith("\t\t}\n\t]\n}\n")
    errors = json.loads(text)["Errors"]
    assert [(e["error_name"], e["error_params"]) for e in errors] == [
        ("ASRMobilityServiceSecureBootEnabled", {"VMName": "sim-host-01"}),
        ("ASRMobilityServiceFreeSpaceOnRootNotSufficient", {"FreeSpace": "1048576"}),
    ]


@pytest.mark.parametrize(
    ("setup", "knobs", "expected", "params"),
    [
        ("secure-boot", {}, "ASRMobilityServiceSecureBootEnabled", {"VMName": "sim-host-01"}),
        (
            None,
            {"ASR_SIM_FREE_KB": "524288"},
            "ASRMobilityServiceFreeSpaceOnRootNotSufficient",
            {"FreeSpace": "1048576"},
        ),
        (None, {"ASR_SIM_LOCALES": "en_US.utf8 de_DE.utf8"}, "ASRMobilityServiceCLocaleNotAvailable", {}),
        ("no-hostname", {}, "ASRMobilityServiceHostNameNotSet", {}),
        ("unlisted-kernel", {}, "ASRMobilityServiceKernelNotSupported", {"KernelVersion": "5.15.0-1096-azure"}),
        ("no-kernel-dir", {}, "ASRMobilityServiceKernelDirectoryNotExist", None),
    ],
)
def test_each_simulated_failure(sandbox, bundles, setup, knobs, expected, params):
    staged = sandbox.extract(bundles["v1"])
    if setup == "secure-boot":
        set_secure_boot(sandbox.root, True)
    elif setup == "no-hostname":
        (sandbox.root / "etc/hostname").write_text("")
    elif setup == "unlisted-kernel":
        knobs = {"ASRCTL_KERNEL": "5.15.0-1096-azure"}  # added to Microsoft's list only by 9.66.7604.1
        prepare_root(sandbox.root, "5.15.0-1096-azure")
    elif setup == "no-kernel-dir":
        for path in sorted((sandbox.root / "lib/modules").rglob("*"), reverse=True):
            path.rmdir()
    proc, out = check(sandbox, staged, knobs=knobs)
    assert proc.returncode == 1, proc.stdout
    (error,) = json.loads(out.read_text())["Errors"]
    assert error["error_name"] == expected
    if params is not None:
        assert error["error_params"] == params
    assert error["default_message"] in proc.stdout


def test_secure_boot_disabled_or_not_efi_passes(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    assert check(sandbox, staged)[0].returncode == 0  # no EFI: mokutil says it is not supported
    set_secure_boot(sandbox.root, False)
    assert check(sandbox, staged)[0].returncode == 0
    assert check(sandbox, staged, knobs={"ASR_SIM_LOCALES": "C.UTF-8"})[0].returncode == 0  # a word match, as grep -w


def test_any_check_can_be_made_to_fail(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    proc, out = check(sandbox, staged, knobs={"ASR_SIM_PREREQ_FAIL": "DhcpClientAvailable,RunlevelCommandCheck"})
    assert proc.returncode == 1
    errors = json.loads(out.read_text())["Errors"]
    assert [(e["error_name"], e["error_params"]) for e in errors] == [
        ("ASRMobilityServiceDhcpClientNotAvailable", {"Package": "dhclient"}),
        ("ASRMobilityServiceRunlevelCommandFailure", {"Runlevel": "null"}),
    ]


@pytest.mark.parametrize(
    ("args", "rc", "internal"),
    [
        (("-r", "Agent"), 2, False),  # no -j
        (("-r", "Agent", "-j", "/nonexistent/dir/x.json"), 2, False),
        (("-r", "MS", "-j", "{out}"), 2, True),  # the installer's role names are not the checker's
        (("-r", "", "-j", "{out}"), 2, True),
        (("-r", "Agent", "-j", "{out}", "-x"), 2, True),
        (("-r", "AGENT", "-j", "{out}"), 0, False),  # case-insensitive
        (("-r", "mastertarget", "-j", "{out}"), 0, False),
    ],
)
def test_command_line(sandbox, bundles, args, rc, internal):
    staged = sandbox.extract(bundles["v1"])
    out = sandbox.root / "var/tmp/prereq.json"
    out.parent.mkdir(parents=True)
    proc, _ = check(sandbox, staged, *[a.format(out=out) for a in args])
    assert proc.returncode == rc, proc.stdout
    assert names(out) == (["ASRMobilityServiceInternalError"] if internal else [])


def test_it_must_run_from_the_bundle_dir(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    out = sandbox.root / "var/tmp/prereq.json"
    out.parent.mkdir(parents=True)
    argv = ["/bin/sh", str(staged / "prereq_check_install.sh"), "-r", "Agent", "-j", str(out)]
    proc = subprocess.run(argv, cwd=sandbox.root, env=sandbox.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "libcommon.sh not found" in proc.stdout


RELEASES = {
    "UBUNTU-22.04-64": {"lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n"},
    "DEBIAN12-64": {"debian_version": "12.5\n"},
    "RHEL7-64": {"redhat-release": "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"},
    "RHEL8-64": {"redhat-release": "Red Hat Enterprise Linux release 8.10 (Ootpa)\n"},
    "RHEL9-64": {"redhat-release": "Red Hat Enterprise Linux release 9.4 (Plow)\n"},
    "SLES15-64": {"os-release": 'NAME="SLES"\nVERSION="15-SP5"\nVERSION_ID="15.5"\n'},
}


@pytest.mark.parametrize(
    ("tag", "kernel", "supported"),
    [
        ("UBUNTU-22.04-64", "5.15.0-1090-azure", True),  # a line of the list
        ("UBUNTU-22.04-64", "5.15.0-1096-azure", False),
        ("UBUNTU-22.04-64", "5.15.0-1090", False),  # the whole line must match
        ("DEBIAN12-64", "6.1.0-35-cloud-amd64", True),
        ("DEBIAN12-64", "6.1.0-13-cloud-amd64", False),
        ("RHEL7-64", "3.10.0-1160.119.1.el7.x86_64", True),
        ("RHEL8-64", "4.18.0-553.el8_10.x86_64", True),
        ("RHEL8-64", "4.18.0-305.10.2.el8_4.x86_64", False),  # 305 needs 305.30.1 or later
        ("RHEL8-64", "4.18.0-305.30.1.el8_4.x86_64", True),
        ("RHEL8-64", "4.18.0-348.2.1.el8_5.x86_64", False),  # 348 needs 348.5.1 or later
        ("RHEL8-64", "5.14.0-427.13.1.el9_4.x86_64", False),
        ("RHEL9-64", "5.14.0-427.13.1.el9_4.x86_64", True),  # assumed: the indexed checker has no RHEL9 rule
        ("SLES15-64", "5.14.21-150500.55.19-default", True),  # any -default kernel
        ("SLES15-64", "5.14.21-150500.33.29-azure", False),  # an -azure one must be listed
    ],
)
def test_kernel_rules(tmp_path, python_dir, tagged, tag, kernel, supported):
    from .conftest import Sandbox

    box = Sandbox(tmp_path / "k", python_dir)
    for name in ("lsb-release", "debian_version", "os-release"):
        (box.root / "etc" / name).unlink(missing_ok=True)
    for name, text in RELEASES[tag].items():
        (box.root / "etc" / name).write_text(text)
    prepare_root(box.root, kernel)
    staged = box.extract(tagged[tag])
    proc, out = check(box, staged, knobs={"ASRCTL_KERNEL": kernel})
    assert (proc.returncode == 0) == supported, proc.stdout
    assert names(out) == ([] if supported else ["ASRMobilityServiceKernelNotSupported"])


@pytest.mark.parametrize(
    ("text", "kernel", "supported"),
    [
        ("6.8.0-84-generic\n6.8.0-87-generic\n", "6.8.0-87-generic", True),
        ("6.8.0-84-generic\n6.8.0-87-generic", "6.8.0-87-generic", False),  # no final newline: never read
        ("6.8.0-87-generic\r\n", "6.8.0-87-generic", False),  # synthetic CRLF: the line is not the kernel
    ],
)
def test_supported_kernels_quirks(sandbox, tmp_path, text, kernel, supported):
    bundle = build_bundle(V1, TAG, tmp_path / "b", supported_kernels=text)
    staged = sandbox.extract(bundle)
    prepare_root(sandbox.root, kernel)
    proc, _ = check(sandbox, staged, knobs={"ASRCTL_KERNEL": kernel})
    assert (proc.returncode == 0) == supported


def test_installer_exits_99_with_the_errors_in_its_file_and_installs_nothing(sandbox, bundles):
    staged = sandbox.extract(bundles["v1"])
    set_secure_boot(sandbox.root, True)
    errors = sandbox.root / "var/tmp/errors.json"
    errors.parent.mkdir(parents=True)
    argv = [staged / "install", "-r", "MS", "-v", "VmWare", "-q", "-c", "CSLegacy", "-d", sandbox.install_dir]
    proc = sandbox.run([*argv, "-e", errors])
    assert proc.returncode == 99
    assert names(errors) == ["ASRMobilityServiceSecureBootEnabled"]
    assert not sandbox.vx_version_path.exists() and not sandbox.install_dir.exists()
    mt = sandbox.run([staged / "install", "-r", "MT", "-v", "VmWare", "-q", "-e", errors])
    assert mt.returncode == 99  # -r MT goes to the checker as MasterTarget (MS/MT would be refused)
    assert names(errors) == ["ASRMobilityServiceSecureBootEnabled"]
