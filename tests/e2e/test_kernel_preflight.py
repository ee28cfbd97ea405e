"""The kernel check of install and upgrade, end to end (subprocess asrctl, sandbox root, simulated bundles whose own
supported_kernels includes or excludes a kernel): refused before anything changes, with the code, the nearest
kernels and the builds that support it; installs when listed; the next-boot kernel counts; --skip-kernel-check is
loud."""

from __future__ import annotations

from pathlib import Path

from asrsim.drivers import prepare_kernel
from conftest import NEW, OLD, Sandbox

REPO = Path(__file__).resolve().parents[2]
LISTS = REPO / "tests/fixtures/supported-kernels"
K = "5.15.0-1103-azure"  # the running kernel (ASRCTL_KERNEL)
K2 = "5.15.0-1110-azure"  # installed, boots next (the newest; no boot loader files here)


def _agent_files(sandbox: Sandbox) -> list[str]:
    """Every file under the root but asrctl's own state and logs."""
    skip = ("var/lib/asrctl", "var/log")
    found = (str(p.relative_to(sandbox.root)) for p in sandbox.root.rglob("*") if p.is_file())
    return sorted(f for f in found if not f.startswith(skip))


def test_install_is_refused_when_the_running_kernel_is_not_listed(sandbox: Sandbox) -> None:
    sandbox.become("ubuntu-22.04", K)
    sandbox.bundle(NEW, supported_kernels=["5.15.0-1090-azure", "5.15.0-1101-azure", "5.15.0-1109-azure"])
    before = _agent_files(sandbox)
    run = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--lists", str(LISTS))
    assert run.returncode == 6, run.stderr
    doc = run.json
    assert doc["error"]["code"] == "ASRCTL-E090" and doc["changed"] is False
    message = doc["error"]["message"]
    assert f"running kernel {K} is not supported" in message
    assert "nearest supported kernels: 5.15.0-1090-azure, 5.15.0-1101-azure, 5.15.0-1109-azure" in message
    assert "supported by 9.66.7722.1 (AzureToAzure)" in message  # from --lists
    assert "--skip-kernel-check" in doc["error"]["remedy"]
    assert not sandbox.vx_version.exists() and not sandbox.install_dir.exists()
    assert _agent_files(sandbox) == before
    assert not list((sandbox.root / "var/lib/asrctl/staging").glob("*"))
    assert "Check the running" in run.stderr and "nothing of the Mobility Service is installed" in message


def test_listed_installs_then_a_next_boot_kernel_the_new_bundle_lacks_stops_the_upgrade(sandbox: Sandbox) -> None:
    sandbox.become("ubuntu-22.04", K)
    sandbox.bundle(OLD, supported_kernels=[K])
    run = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy")
    assert run.returncode == 0, run.stderr
    assert run.json["data"]["kernel_check"]["kernels"][0]["status"] == "supported"
    saved = sandbox.root / f"var/lib/asrctl/supported_kernels/{OLD}_UBUNTU-22.04-64_supported_kernels"
    assert saved.read_text() == f"{K}\n"  # kept for status and kernel check

    prepare_kernel(sandbox.root, K)
    prepare_kernel(sandbox.root, K2)  # a kernel update: K2 boots next
    sandbox.bundle(NEW, supported_kernels=[K])
    run = sandbox.asrctl("--json", "upgrade")
    assert run.returncode == 6 and run.json["error"]["code"] == "ASRCTL-E090", run.stderr
    assert f"next boot kernel {K2} is not supported" in run.json["error"]["message"]
    assert f"VERSION={OLD}" in sandbox.vx_version.read_text()
    status = sandbox.asrctl("--json", "status").json
    assert {s["name"] for s in status["data"]["agent"]["services"] if s["running"]} == {"svagents", "appservice"}
    # The installed build's list lacks the next boot's kernel: status says so before the restart does.
    assert "next_boot_unsupported" in [r["id"] for r in status["data"]["health"]["reasons"]]

    run = sandbox.asrctl("--json", "upgrade", "--skip-kernel-check")
    assert run.returncode == 0, run.stderr
    warnings = run.json["data"]["warnings"]
    assert any(w.startswith("--skip-kernel-check:") and K2 in w for w in warnings)
    assert "--skip-kernel-check" in run.stderr and K2 in run.stderr
    assert f"VERSION={NEW}" in sandbox.vx_version.read_text()
    log = (sandbox.root / "var/log/asrctl.log").read_text()
    assert "--skip-kernel-check" in log
    assert (sandbox.root / f"var/lib/asrctl/supported_kernels/{NEW}_UBUNTU-22.04-64_supported_kernels").exists()


def test_dry_run_shows_the_check_and_rules_families_without_a_rule_go_on(sandbox: Sandbox) -> None:
    sandbox.become("rhel-9.6", "5.14.0-570.12.1.el9_6.x86_64", rpm=True)
    sandbox.bundle(NEW, tag="RHEL9-64")
    run = sandbox.asrctl("--json", "install", "--no-register", "--cs-type", "CSLegacy", "--dry-run")
    assert run.returncode == 0, run.stderr
    steps = [s["id"] for s in run.json["data"]["plan"]["steps"]]
    assert steps.index("kernel-check") < steps.index("install") and steps[-1] == "keep-kernel-list"
