"""Microsoft's real bundles and tools, end to end: the bundle's identity, its prerequisite checker before any
change, the vendor's exact argv, and the four packings Microsoft ships (docs/SIMULATORS.md)."""

from __future__ import annotations

import json

import pytest
from e2e.conftest import NEW, OLD, TAG, Sandbox

from asrctl.bundles.digest import write_sums


def assert_nothing_changed(sb: Sandbox) -> None:
    """No agent file, no leftover of asrctl's run: the staging and run dirs are empty, the journal says failed."""
    assert not sb.vx_version.exists() and not sb.install_dir.exists()
    assert not (sb.root / "etc/vxagent").exists()
    state = sb.root / "var/lib/asrctl"
    for sub in ("staging", "runs", "private"):
        assert not (state / sub).exists() or not any((state / sub).iterdir()), sub
    assert json.loads((state / "journal.json").read_text())["status"] == "failed"
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
