#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: asrctl contributors. MIT License (see the repository's LICENSE).
#
# This file runs on the managed host, under whatever Python Ansible finds there (RHEL 7's 2.7 with ansible-core
# 2.16, RHEL 8's platform-python 3.6, ...), not under asrctl's 3.11: so no annotations, no f-strings, no walrus,
# and only the standard library plus ansible.module_utils. tests/unit/test_ansible_module.py parses it with the
# 3.6 grammar and checks that the documented options are the argument spec.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: asrctl
short_description: Run asrctl, the Azure Site Recovery Mobility Service tool, and report its JSON result
version_added: "0.2.0"
description:
  - Runs the C(asrctl) executable on the managed host with an argument list (never a shell string), always with
    C(--json), and sets C(changed), C(failed), C(msg) and C(rc) from asrctl's result envelope, not from guesses.
  - In check mode a changing verb runs with C(--dry-run), which changes nothing and takes no lock; C(changed) is
    then asrctl's C(data.would_change), and the plan is returned.
  - The passphrase reaches asrctl on standard input (C(--passphrase-stdin)); it never appears in the argument
    list, the result or the module's log.
  - Read-only verbs (C(status), C(detect), C(doctor), C(bundles_verify)) also run in check mode.
    C(logs_collect) writes an archive and is skipped in check mode.
options:
  verb:
    description: What to run. C(logs_collect) is C(asrctl logs collect), C(bundles_verify) C(asrctl bundles verify).
    type: str
    required: true
    choices: [install, upgrade, register, uninstall, status, detect, doctor, bundles_verify, logs_collect]
  executable:
    description: The asrctl executable on the managed host (the one-file binary, or C(python3 -m asrctl) wrapped).
    type: path
    default: /usr/local/sbin/asrctl
  root:
    description: C(--root); an alternate file-system root (sandboxes, tests). The real root by default.
    type: path
    default: /
  bundle_dirs:
    description: C(--bundle-dir), in order.
    type: list
    elements: path
    default: []
  bundle:
    description: C(--bundle); use this bundle file instead of the newest one for the host (a pinned version).
    type: path
  require_digest:
    description: C(--require-digest); a bundle without a digest in C(SHA256SUMS) is an error, not a warning.
    type: bool
    default: true
  sha256:
    description: C(--sha256); the bundle's expected SHA-256, instead of C(SHA256SUMS).
    type: str
  cs_endpoint:
    description: C(--cs-endpoint HOST[:PORT]); the classic configuration server.
    type: str
  cs_type:
    description: C(--cs-type); classic configuration server or modernized appliance.
    type: str
    choices: [CSLegacy, CSPrime]
  cs_fingerprint:
    description: C(--cs-fingerprint); the SHA-256 of the server certificate (not of its CA).
    type: str
  ps_port:
    description: C(--ps-port); the process server's data port to check (asrctl's default is 9443).
    type: int
  connect_timeout:
    description: C(--connect-timeout); seconds per network check.
    type: int
  skip_connectivity_check:
    description: C(--skip-connectivity-check).
    type: bool
    default: false
  passphrase:
    description:
      - The configuration server passphrase, handed to asrctl on standard input (C(--passphrase-stdin)).
      - Mutually exclusive with I(passphrase_file). Must not contain a line break.
    type: str
  passphrase_file:
    description: C(--passphrase-file); a file on the managed host holding the passphrase (mode 0600).
    type: path
  config_file:
    description: C(--config-file); the modernized appliance's generated configuration (with I(cs_type=CSPrime)).
    type: path
  no_register:
    description: C(--no-register) (install only, with I(cs_type)); install and register later.
    type: bool
    default: false
  no_vm_agent:
    description: C(--no-vm-agent) (install, upgrade); leave the Azure VM agent alone.
    type: bool
    default: false
  agent_role:
    description: C(--role) (install only); Mobility Service or master target.
    type: str
    choices: [MS, MT]
  vm_platform:
    description: C(--vm-platform) (install only).
    type: str
    choices: [VmWare, Azure]
  install_dir:
    description: C(--install-dir) (install only).
    type: path
  timeout:
    description: C(--timeout); seconds Microsoft's installer may take.
    type: int
  force:
    description: C(--force) (register only); move the registration to another endpoint, or register a cloned host.
    type: bool
    default: false
  allow_downgrade:
    description: C(--allow-downgrade) (upgrade only).
    type: bool
    default: false
  check_health:
    description:
      - With I(verb=status), run C(status --check) and fail unless the agent is healthy.
    type: bool
    default: false
  accept_degraded:
    description: With I(check_health), a degraded agent (asrctl exit 9) does not fail the task; it warns.
    type: bool
    default: false
  output:
    description: C(logs collect -o); where the support archive goes on the managed host (default chosen by asrctl).
    type: path
notes:
  - Supports check mode through C(--dry-run). asrctl takes its host lock itself; do not run two plays at once
    against one host (the second fails with C(ASRCTL-E042), exit 6).
  - The result envelope is asrctl's contract, docs/CLI.md in asrctl's repository.
author:
  - asrctl contributors
"""

EXAMPLES = r"""
- name: Install and register the Mobility Service
  asrctl.mobility.asrctl:
    verb: install
    bundle_dirs: [/var/lib/asrctl/bundles]
    cs_endpoint: cs01.corp.example
    cs_fingerprint: "{{ cs_fingerprint }}"
    passphrase: "{{ vault_cs_passphrase }}"
  register: asr

- name: Fail unless the agent is healthy
  asrctl.mobility.asrctl:
    verb: status
    check_health: true
"""

RETURN = r"""
rc:
  description: asrctl's exit code (docs/CLI.md, "Exit codes").
  returned: when asrctl ran
  type: int
cmd:
  description: The argument list that ran (it never holds a passphrase).
  returned: when asrctl ran
  type: list
  elements: str
result:
  description: asrctl's whole JSON result envelope.
  returned: when asrctl printed one
  type: dict
reboot_required:
  description: asrctl says the machine must restart (after an upgrade, an uninstall, a vendor 3010).
  returned: always
  type: bool
would_change:
  description: In check mode, whether the run would change the host (asrctl's C(data.would_change)).
  returned: in check mode, for a changing verb
  type: bool
plan:
  description: In check mode, asrctl's plan (each step with its exact argument list).
  returned: in check mode, for a changing verb
  type: dict
agent:
  description: The agent as asrctl read it from the host after the run (also on failure).
  returned: for install, upgrade, register, uninstall, status
  type: dict
outcome:
  description: Which whole state the host holds after a changing verb (requested, previous, other).
  returned: when a plan ran
  type: dict
health:
  description: For status, C({"status" ok|degraded|broken, "reasons" [...]}).
  returned: for status
  type: dict
error:
  description: asrctl's error, C({"code", "message", "remedy"}), or null.
  returned: when asrctl ran
  type: dict
archive:
  description: The support archive's path on the managed host (logs_collect).
  returned: for logs_collect
  type: str
stderr:
  description: asrctl's people-facing output.
  returned: when asrctl ran
  type: str
"""

import json

from ansible.module_utils.basic import AnsibleModule

CHANGING = ("install", "upgrade", "register", "uninstall")
READ_ONLY = ("status", "detect", "doctor", "bundles_verify")
# The verbs that take asrctl's registration inputs (docs/CLI.md, "Options of the verbs").
REGISTERING = ("install", "upgrade", "register")
NETWORK = REGISTERING + ("doctor",)

ARGUMENT_SPEC = dict(
    verb=dict(type="str", required=True, choices=list(CHANGING + READ_ONLY + ("logs_collect",))),
    executable=dict(type="path", default="/usr/local/sbin/asrctl"),
    root=dict(type="path", default="/"),
    bundle_dirs=dict(type="list", elements="path", default=[]),
    bundle=dict(type="path"),
    require_digest=dict(type="bool", default=True),
    sha256=dict(type="str"),
    cs_endpoint=dict(type="str"),
    cs_type=dict(type="str", choices=["CSLegacy", "CSPrime"]),
    cs_fingerprint=dict(type="str"),
    ps_port=dict(type="int"),
    connect_timeout=dict(type="int"),
    skip_connectivity_check=dict(type="bool", default=False),
    passphrase=dict(type="str", no_log=True),
    passphrase_file=dict(type="path"),
    config_file=dict(type="path"),
    no_register=dict(type="bool", default=False),
    no_vm_agent=dict(type="bool", default=False),
    agent_role=dict(type="str", choices=["MS", "MT"]),
    vm_platform=dict(type="str", choices=["VmWare", "Azure"]),
    install_dir=dict(type="path"),
    timeout=dict(type="int"),
    force=dict(type="bool", default=False),
    allow_downgrade=dict(type="bool", default=False),
    check_health=dict(type="bool", default=False),
    accept_degraded=dict(type="bool", default=False),
    output=dict(type="path"),
)


class UsageError(Exception):
    """A parameter that does not fit the verb: reported before asrctl runs."""


def _opt(argv, flag, value):
    if value is not None and value != "":
        argv.extend([flag, str(value)])


def build_argv(params, check_mode):
    """The argument list for asrctl: global options first, then the verb and its own options.

    Options a verb does not take are refused here rather than passed on, so a typo in a playbook (I(force) on an
    install) fails with the parameter's name instead of asrctl's usage error about a flag the user never typed.
    """
    verb = params["verb"]
    argv = [params["executable"], "--json", "--exit-codes", "asrctl"]
    if params["root"] and params["root"] != "/":
        argv.extend(["--root", params["root"]])
    for directory in params["bundle_dirs"] or []:
        argv.extend(["--bundle-dir", directory])

    def only(names, verbs):
        for name in names:
            value = params.get(name)
            if value not in (None, False, "", []) and verb not in verbs:
                raise UsageError("%s does not apply to verb=%s (only to %s)" % (name, verb, ", ".join(verbs)))

    only(["bundle", "timeout"], ("install", "upgrade"))
    only(["sha256"], ("install", "upgrade", "bundles_verify"))
    only(["cs_type", "passphrase", "passphrase_file", "config_file", "skip_connectivity_check"], REGISTERING)
    only(["cs_endpoint"], NETWORK + ("logs_collect",))
    only(["cs_fingerprint", "ps_port", "connect_timeout"], NETWORK)
    only(["no_register", "agent_role", "vm_platform", "install_dir"], ("install",))
    only(["no_vm_agent"], ("install", "upgrade"))
    only(["force"], ("register",))
    only(["allow_downgrade"], ("upgrade",))
    only(["check_health", "accept_degraded"], ("status",))
    only(["output"], ("logs_collect",))
    if params.get("passphrase") is not None and params.get("passphrase_file"):
        raise UsageError("give passphrase or passphrase_file, not both")
    if params.get("passphrase") is not None and ("\n" in params["passphrase"] or "\r" in params["passphrase"]):
        raise UsageError("the passphrase contains a line break; asrctl reads one line from standard input")

    if verb == "logs_collect":
        argv.extend(["logs", "collect"])
    elif verb == "bundles_verify":
        argv.extend(["bundles", "verify"])
    else:
        argv.append(verb)

    if verb in ("install", "upgrade", "bundles_verify") and params["require_digest"]:
        argv.append("--require-digest")
    _opt(argv, "--bundle", params.get("bundle"))
    _opt(argv, "--sha256", params.get("sha256"))
    _opt(argv, "--timeout", params.get("timeout"))
    _opt(argv, "--cs-endpoint", params.get("cs_endpoint"))
    _opt(argv, "--cs-type", params.get("cs_type"))
    _opt(argv, "--cs-fingerprint", params.get("cs_fingerprint"))
    _opt(argv, "--ps-port", params.get("ps_port"))
    _opt(argv, "--connect-timeout", params.get("connect_timeout"))
    _opt(argv, "--passphrase-file", params.get("passphrase_file"))
    _opt(argv, "--config-file", params.get("config_file"))
    _opt(argv, "--role", params.get("agent_role"))
    _opt(argv, "--vm-platform", params.get("vm_platform"))
    _opt(argv, "--install-dir", params.get("install_dir"))
    _opt(argv, "-o", params.get("output"))
    flags = [
        ("passphrase", "--passphrase-stdin"),
        ("skip_connectivity_check", "--skip-connectivity-check"),
        ("no_register", "--no-register"),
        ("no_vm_agent", "--no-vm-agent"),
        ("force", "--force"),
        ("allow_downgrade", "--allow-downgrade"),
        ("check_health", "--check"),
    ]
    for name, flag in flags:
        value = params.get(name)
        if value is not None and value is not False:
            argv.append(flag)
    if verb in CHANGING:
        if verb != "register":
            argv.append("--yes")
        if check_mode:
            argv.append("--dry-run")
    return argv


def _error_text(error):
    if not isinstance(error, dict):
        return "asrctl failed"
    text = "%s: %s" % (error.get("code") or "asrctl", error.get("message") or "failed")
    if error.get("remedy"):
        text += " (remedy: %s)" % error["remedy"]
    return text


def interpret(params, check_mode, rc, stdout, stderr):
    """The module's result from asrctl's run: what asrctl says, never what its exit code suggests.

    asrctl prints exactly one JSON document with --json, also on failure; a run without one (a crash before the
    CLI, the wrong executable) is a failure that shows the raw output.
    """
    verb = params["verb"]
    out = dict(rc=rc, stderr=stderr, changed=False, reboot_required=False)
    try:
        doc = json.loads(stdout)
        if not isinstance(doc, dict) or "ok" not in doc:
            raise ValueError("not an asrctl result")
    except ValueError:
        out.update(
            failed=True,
            stdout=stdout,
            msg="%s printed no asrctl JSON result (exit %s): %s" % (params["executable"], rc, stderr.strip()[-2000:]),
        )
        return out, []
    data = doc.get("data") or {}
    warnings = [w for w in data.get("warnings") or [] if isinstance(w, str)]
    out.update(result=doc, error=doc.get("error"), reboot_required=bool(doc.get("reboot_required")))
    for key in ("agent", "outcome", "health"):
        if key in data:
            out[key] = data[key]
    dry = check_mode and verb in CHANGING
    if dry:
        out["would_change"] = bool(data.get("would_change"))
        out["plan"] = data.get("plan")
        out["changed"] = out["would_change"]
    else:
        out["changed"] = bool(doc.get("changed"))
    if verb == "logs_collect":
        out["archive"] = data.get("archive")

    health = (data.get("health") or {}).get("status") if verb == "status" else None
    if doc.get("ok"):
        out["msg"] = _summary(verb, data, dry)
    elif params.get("check_health") and health == "degraded" and params.get("accept_degraded"):
        reasons = ", ".join(r.get("id", "?") for r in (data.get("health") or {}).get("reasons") or [])
        warnings.append("the Mobility Service is degraded (%s); accepted (accept_degraded)" % reasons)
        out["msg"] = "degraded: %s" % reasons
    else:
        out["failed"] = True
        out["msg"] = _error_text(doc.get("error"))
    return out, warnings


def _summary(verb, data, dry):
    if dry:
        return "would change the host" if data.get("would_change") else "nothing to do"
    outcome = data.get("outcome") or {}
    if outcome.get("summary"):
        return outcome["summary"]
    if verb == "status":
        agent = data.get("agent") or {}
        health = (data.get("health") or {}).get("status", "unknown")
        if not agent.get("installed"):
            return "Mobility Service not installed (health %s)" % health
        return "Mobility Service %s, health %s" % (agent.get("version"), health)
    if verb == "detect":
        platform = data.get("platform") or {}
        return "%s %s: %s" % (platform.get("distro_id"), platform.get("version"), platform.get("os_tag"))
    if verb == "logs_collect":
        return "support archive %s" % data.get("archive")
    return "ok"


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("passphrase", "passphrase_file")],
        supports_check_mode=True,
    )
    params = module.params
    if module.check_mode and params["verb"] == "logs_collect":
        module.exit_json(changed=False, skipped=True, msg="logs_collect writes an archive: skipped in check mode")
    try:
        argv = build_argv(params, module.check_mode)
    except UsageError as exc:
        module.fail_json(msg=str(exc))
    # Colour codes would only clutter stderr in the result; the environment is otherwise the task's own
    # (proxies: HTTPS_PROXY, NO_PROXY through the task's `environment`).
    env = {"NO_COLOR": "1", "COLUMNS": "120"}
    data = params["passphrase"] if params.get("passphrase") is not None else None
    rc, stdout, stderr = module.run_command(argv, data=data, environ_update=env, check_rc=False)
    result, warnings = interpret(params, module.check_mode, rc, stdout, stderr)
    result["cmd"] = argv
    for warning in warnings:
        module.warn(warning)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
