"""Paths from inputs and from vendor files that lead out of --root: refused with ASRCTL-E115 (exit 6), nothing
outside the root touched, no vendor script outside the root ever run. The one helper is ``Paths.inside``
(asrctl/system/paths.py; its table test is tests/unit/test_paths_inside.py); these are the end-to-end cases with
hostile vendor files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import Sandbox

from .conftest import OLD, assert_clean, install_args, with_passphrase_env


def _trap(base: Path) -> tuple[Path, Path]:
    """A directory outside the root holding an ``uninstall.sh`` (and the Vx tools) that would leave a mark if run."""
    outside = base / "outside"
    mark = base / "outside-ran"
    for rel in ("uninstall.sh", "Vx/bin/stop", "Vx/bin/start", "Vx/bin/UnifiedAgentConfigurator.sh"):
        tool = outside / rel
        tool.parent.mkdir(parents=True, exist_ok=True)
        tool.write_text(f"#!/bin/sh\necho {rel} >> {mark}\n")
        tool.chmod(0o755)
    (outside / "Vx/etc").mkdir(parents=True, exist_ok=True)
    return outside, mark


@pytest.mark.fault("confinement")
@pytest.mark.parametrize("install_dir", ["/../../../../x", "/usr/local/../../../x", "relative/dir"])
def test_install_dir_that_climbs_out(sandbox: Sandbox, cs: Any, install_dir: str) -> None:
    """Issue 13: `--install-dir /../../../../x` reached the installer as `-d <root>/../../../../x`."""
    sandbox.bundle(OLD)
    r = sandbox.asrctl(*install_args(sandbox, cs, "--install-dir", install_dir), env=with_passphrase_env())
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E115"), r.stderr
    assert "--install-dir" in r.json["error"]["message"]
    assert not (sandbox.base.parent / "x").exists() and not Path("/x").exists()
    assert_clean(sandbox, "absent")


@pytest.mark.fault("confinement")
def test_install_dir_through_a_link_out(sandbox: Sandbox, cs: Any) -> None:
    sandbox.bundle(OLD)
    outside = sandbox.base / "outside"
    outside.mkdir()
    (sandbox.root / "opt").mkdir(exist_ok=True)
    (sandbox.root / "opt/asr").symlink_to(outside)
    r = sandbox.asrctl(*install_args(sandbox, cs, "--install-dir", "/opt/asr"), env=with_passphrase_env())
    assert (r.returncode, r.json["error"]["code"]) == (6, "ASRCTL-E115"), r.stderr
    assert "symbolic link" in r.json["error"]["message"]
    assert list(outside.iterdir()) == []
    (sandbox.root / "opt/asr").unlink()
    outside.rmdir()
    assert_clean(sandbox, "absent")


def _craft(sb: Sandbox, installation_dir: str) -> None:
    text = sb.vx_version.read_text()
    lines = [f"INSTALLATION_DIR={installation_dir}" if ln.startswith("INSTALLATION_DIR=") else ln for ln in
             text.splitlines()]  # fmt: skip
    sb.vx_version.write_text("\n".join(lines) + "\n")


HOSTILE = {
    "dotdot": lambda sb, out: f"{sb.root}/../outside/Vx",
    "link-out": lambda sb, out: (
        (sb.root / "usr/local/evil").symlink_to(out),
        f"{sb.root}/usr/local/evil/Vx",
    )[1],
}


@pytest.mark.fault("confinement")
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_crafted_installation_dir_never_runs_a_script_outside_the_root(installed: Sandbox, kind: str) -> None:
    """Issue 13: a crafted INSTALLATION_DIR made `uninstall -Y` execute a script outside the root."""
    sb = installed
    outside, mark = _trap(sb.base)
    good = sb.vx_version.read_text()
    _craft(sb, HOSTILE[kind](sb, outside))
    for args in (["uninstall", "-Y"], ["upgrade", "--no-vm-agent"], ["register", "--cs-endpoint", "127.0.0.1:9"]):
        r = sb.asrctl("--json", *args, env=with_passphrase_env())
        assert r.returncode != 0, r.stderr
        code = r.json["error"]["code"]
        assert code == "ASRCTL-E115", (args, r.json["error"])
        assert "internal error" not in r.stderr
    st = sb.asrctl("--json", "status")
    assert st.returncode == 0, st.stderr
    assert "half_installed" in [x["id"] for x in st.json["data"]["health"]["reasons"]]
    assert not mark.exists(), mark.read_text()
    # Put the real file back: the agent is whole again and uninstalls.
    sb.vx_version.write_text(good)
    if (sb.root / "usr/local/evil").is_symlink():
        (sb.root / "usr/local/evil").unlink()
    assert sb.asrctl("--json", "uninstall", "-Y").returncode == 0
    assert not mark.exists()
    shutil.rmtree(outside)
    assert_clean(sb, "absent")


@pytest.mark.fault("confinement")
def test_an_install_dir_replaced_by_a_link_out_is_refused(installed: Sandbox) -> None:
    """The version file is right, but the install dir became a link to elsewhere: its uninstall.sh is not run."""
    sb = installed
    sb.stop_agent()
    outside, mark = _trap(sb.base)
    real = sb.base / "real-asr"
    os.rename(sb.install_dir, real)
    sb.install_dir.symlink_to(outside)
    r = sb.asrctl("--json", "uninstall", "-Y")
    assert r.returncode == 6 and r.json["error"]["code"] == "ASRCTL-E115", r.stderr
    assert not mark.exists()
    sb.install_dir.unlink()
    os.rename(real, sb.install_dir)
    assert sb.asrctl("--json", "uninstall", "-Y").returncode == 0
    assert not mark.exists()
    shutil.rmtree(outside)
    assert_clean(sb, "absent")


@pytest.mark.fault("confinement")
def test_logs_collect_never_follows_a_vendor_log_out_of_its_directory(installed: Sandbox) -> None:
    """Issue 13: `logs collect` followed var/log/ua_install.log -> /etc/passwd and archived it (support track's
    reader; held here as a reproduction)."""
    import tarfile

    log = installed.root / "var/log/ua_install.log"
    log.unlink()
    log.symlink_to("/etc/passwd")
    out = installed.base / "tmp/support.tar.gz"
    r = installed.asrctl("--json", "logs", "collect", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                assert b"root:x:0:0" not in f.read()
    out.unlink()
