"""The collection's Python (ansible/plugins) and its declarations, without running a play.

The module builds asrctl's argument list and reads its JSON envelope; the filter reads SHA256SUMS; the module's
documentation, the role's argument spec and its defaults must say the same. tests/e2e/test_ansible_role.py runs all
of it for real.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible"
ROLE = COLLECTION / "roles/mobility_service"


def _load(relative: str) -> ModuleType:
    path = COLLECTION / relative
    spec = importlib.util.spec_from_file_location("collection_" + path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mod: ModuleType
sums: ModuleType


@pytest.fixture(autouse=True, scope="module")
def _collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Loads the plugins. With ansible.errors already imported, importing module_utils.basic loads Ansible's
    configuration, which creates ~/.ansible/tmp: here it goes to a temporary directory (nothing outside it, as for
    every test)."""
    global mod, sums
    home = tmp_path_factory.mktemp("ansible-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANSIBLE_HOME", str(home))
        mp.setenv("ANSIBLE_LOCAL_TEMP", str(home / "tmp"))
        mod = _load("plugins/modules/asrctl.py")
        sums = _load("plugins/filter/sha256sums.py")
        yield


def params(**given: Any) -> dict[str, Any]:
    """The module's parameters as AnsibleModule fills them in: every option, defaults applied."""
    out = {name: spec.get("default") for name, spec in mod.ARGUMENT_SPEC.items()}
    out.update(given)
    return out


# --- the argument list ------------------------------------------------------------------------------------------


def test_install_passes_the_passphrase_on_stdin_only() -> None:
    argv = mod.build_argv(
        params(verb="install", cs_endpoint="cs01:443", passphrase="s3cret", bundle_dirs=["/b"], ps_port=9443), False
    )
    assert argv[:4] == ["/usr/local/sbin/asrctl", "--json", "--exit-codes", "asrctl"]
    assert argv[4:7] == ["--bundle-dir", "/b", "install"]
    assert "--passphrase-stdin" in argv and "s3cret" not in argv
    assert ["--cs-endpoint", "cs01:443"] == argv[argv.index("--cs-endpoint") : argv.index("--cs-endpoint") + 2]
    assert "--require-digest" in argv and "--yes" in argv and "--dry-run" not in argv
    assert "--root" not in argv, "the real root is asrctl's default: not spelled out"


def test_check_mode_is_a_dry_run_of_changing_verbs_only() -> None:
    assert mod.build_argv(params(verb="uninstall", root="/sb"), True)[-3:] == ["uninstall", "--yes", "--dry-run"]
    assert mod.build_argv(params(verb="register", cs_endpoint="cs"), True)[-1] == "--dry-run"
    assert "--yes" not in mod.build_argv(params(verb="register", cs_endpoint="cs"), False)
    assert "--dry-run" not in mod.build_argv(params(verb="status"), True)
    assert mod.build_argv(params(verb="status", check_health=True), False)[-2:] == ["status", "--check"]
    assert mod.build_argv(params(verb="logs_collect", output="/x.tgz"), False)[-4:] == [
        "logs",
        "collect",
        "-o",
        "/x.tgz",
    ]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"verb": "install", "force": True}, "force does not apply to verb=install"),
        ({"verb": "status", "passphrase": "p"}, "passphrase does not apply to verb=status"),
        ({"verb": "uninstall", "cs_endpoint": "cs"}, "cs_endpoint does not apply to verb=uninstall"),
        ({"verb": "upgrade", "no_register": True}, "no_register does not apply to verb=upgrade"),
        ({"verb": "install", "check_health": True}, "check_health does not apply to verb=install"),
        ({"verb": "install", "passphrase": "p", "passphrase_file": "/f"}, "passphrase or passphrase_file, not both"),
        ({"verb": "install", "passphrase": "one\ntwo"}, "contains a line break"),
    ],
)
def test_parameters_that_do_not_fit_are_refused_before_asrctl_runs(given: dict[str, Any], message: str) -> None:
    with pytest.raises(mod.UsageError, match=message):
        mod.build_argv(params(**given), False)


# --- the result -------------------------------------------------------------------------------------------------


def envelope(command: str, ok: bool = True, changed: bool = False, **data: Any) -> str:
    error = None if ok else {"code": "ASRCTL-E071", "message": "registered to cs01", "remedy": "run register"}
    return json.dumps(
        {
            "asrctl_result_version": 1,
            "command": command,
            "ok": ok,
            "changed": changed,
            "reboot_required": data.pop("reboot_required", False),
            "error": error,
            "data": data,
        }
    )


def test_changed_comes_from_the_envelope_and_in_check_mode_from_would_change() -> None:
    out, warnings = mod.interpret(params(verb="upgrade"), False, 0, envelope("upgrade", changed=True, reboot_required=True, outcome={"summary": "Mobility Service 9.66"}), "")  # fmt: skip
    assert out["changed"] is True and out["reboot_required"] is True and "failed" not in out
    assert out["msg"] == "Mobility Service 9.66" and warnings == []
    dry = envelope("install", would_change=True, dry_run=True, plan={"steps": [{"name": "install"}]})
    out, _ = mod.interpret(params(verb="install"), True, 0, dry, "")
    assert out["changed"] is True and out["would_change"] is True and out["plan"]["steps"]
    out, _ = mod.interpret(params(verb="install"), True, 0, envelope("install", would_change=False, plan={}), "")
    assert out["changed"] is False and out["would_change"] is False and out["msg"] == "nothing to do"


def test_a_failure_carries_asrctls_code_message_and_remedy_and_its_warnings() -> None:
    doc = envelope("install", ok=False, warnings=["the Azure VM agent was not installed"])
    out, warnings = mod.interpret(params(verb="install"), False, 6, doc, "✗ ASRCTL-E071 ...")
    assert out["failed"] is True and out["rc"] == 6
    assert out["msg"] == "ASRCTL-E071: registered to cs01 (remedy: run register)"
    assert out["error"]["code"] == "ASRCTL-E071" and warnings == ["the Azure VM agent was not installed"]


def test_output_that_is_no_asrctl_result_fails_with_what_was_printed() -> None:
    out, _ = mod.interpret(params(verb="status"), False, 127, "", "sh: asrctl: not found")
    assert out["failed"] is True and "printed no asrctl JSON result (exit 127)" in out["msg"]
    assert "not found" in out["msg"]
    out, _ = mod.interpret(params(verb="status"), False, 0, '["a list"]', "")
    assert out["failed"] is True


def test_health_check_fails_on_degraded_unless_accepted() -> None:
    health = {"status": "degraded", "reasons": [{"id": "not_registered", "severity": "degraded", "message": "m"}]}
    doc = envelope("status", ok=False, health=health, agent={"installed": True})
    out, _ = mod.interpret(params(verb="status", check_health=True), False, 9, doc, "")
    assert out["failed"] is True
    out, warnings = mod.interpret(params(verb="status", check_health=True, accept_degraded=True), False, 9, doc, "")
    assert "failed" not in out and out["msg"] == "degraded: not_registered"
    assert warnings == ["the Mobility Service is degraded (not_registered); accepted (accept_degraded)"]
    broken = envelope("status", ok=False, health={"status": "broken", "reasons": []})
    out, _ = mod.interpret(params(verb="status", check_health=True, accept_degraded=True), False, 10, broken, "")
    assert out["failed"] is True


# --- declarations agree -----------------------------------------------------------------------------------------


def test_documented_options_are_the_argument_spec() -> None:
    documented = yaml.safe_load(mod.DOCUMENTATION)["options"]
    assert set(documented) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        doc = documented[name]
        assert doc["type"] == spec["type"], name
        assert doc.get("default") == spec.get("default"), name
        assert doc.get("choices") == spec.get("choices"), name
        assert doc.get("required", False) == spec.get("required", False), name
        assert doc.get("elements") == spec.get("elements"), name
    assert mod.ARGUMENT_SPEC["passphrase"]["no_log"] is True


def test_role_argument_spec_and_defaults_name_the_same_variables_with_the_same_defaults() -> None:
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert set(spec) == set(defaults)
    for name, value in defaults.items():
        assert spec[name].get("default") == value, name
    assert spec["mobility_service_passphrase"]["no_log"] is True
    assert defaults["mobility_service_root"] == "/", "the role must default to the real root"
    assert defaults["mobility_service_reboot"] is False, "restarting is opt-in"
    assert defaults["mobility_service_require_digest"] is True


@pytest.mark.parametrize("path", ["plugins/modules/asrctl.py", "plugins/filter/sha256sums.py"])
def test_plugins_parse_as_python_3_6(path: str) -> None:
    """The module runs under the managed host's Python (RHEL 8's platform-python is 3.6): no newer syntax."""
    ast.parse((COLLECTION / path).read_text(), feature_version=(3, 6))


# --- the filter -------------------------------------------------------------------------------------------------

A, B = "a" * 64, "B" * 64


@pytest.mark.parametrize(
    ("text", "name", "digest"),
    [
        (f"{A}  asrctl\n{B}  other\n", "asrctl", A),
        (f"{B} *asrctl-0.2.0-linux-x86_64\n", "/dist/asrctl-0.2.0-linux-x86_64", B.lower()),
        (f"{A}  ./bundle.tar.gz\r\n", "bundle.tar.gz", A),
        (f"{A}  asrctl\n{A}  asrctl\n", "asrctl", A),
    ],
)
def test_sha256_from_sums_finds_the_line_for_the_file(text: str, name: str, digest: str) -> None:
    assert sums.sha256_from_sums(text, name) == digest


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        (f"{A}  other\n", "asrctl", "asrctl is not listed"),
        (f"{A}  asrctl\n{B}  asrctl\n", "asrctl", "listed with 2 different digests"),
        ("<html>not found</html>", "asrctl", "no 'DIGEST  NAME' line"),
        (f"{A[:-1]}  asrctl\n", "asrctl", "no 'DIGEST  NAME' line"),
        (f"{A}  asrctl\n", "", "no file name"),
    ],
)
def test_sha256_from_sums_refuses_what_it_cannot_check(text: str, name: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        sums.sha256_from_sums(text, name)
