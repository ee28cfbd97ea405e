"""How each verb's result looks to a person (stderr). Data goes out separately as JSON."""

from __future__ import annotations

from typing import Any

from asrctl.app import App
from asrctl.output import Result


def _warnings(app: App, result: Result) -> None:
    for w in result.warnings:
        app.out.warn(w)


def detect(app: App, result: Result) -> None:
    p: dict[str, Any] = result.data["platform"]
    facts = app.facts
    app.out.keyvalues(
        "Host",
        [
            ("OS family", p["os_family"]),
            ("Distribution", f"{facts.distro_name} ({facts.distro_id})" if facts.distro_id else facts.distro_name),
            ("Version", p["version"]),
            ("Architecture", p["arch"]),
            ("Kernel", p["kernel"]),
            ("Administrator", "yes" if p["is_admin"] else "no"),
            ("Root", facts.root),
            ("Bundle OS tag", p["os_tag"] or "none"),
        ],
    )
    _warnings(app, result)
    if p["supported"]:
        app.out.success(f"supported: {p['name']} uses {p['os_tag']} bundles")
    else:
        app.out.error("ASRCTL-E010", f"unsupported: {p['reason']}")


def bundles_list(app: App, result: Result) -> None:
    data = result.data
    rows = [
        ("→" if b["selected"] else "", b["version"], b["os_tag"], b["date"], b["kind"], b["format"], b["filename"])
        for b in data["bundles"]
    ]
    if rows:
        app.out.table("Bundles", ["", "version", "OS tag", "date", "kind", "format", "file"], rows)
    else:
        app.out.info(f"No bundles found in {', '.join(data['dirs']) or 'any bundle dir (none exists)'}.")
    for ign in data["ignored"]:
        app.out.warn(f"ignored {ign['path']}: {ign['reason']}")
    _warnings(app, result)
    if data["selected"]:
        app.out.success(f"this host ({data['host_os_tag']}) would use {data['selected']}")


def status(app: App, result: Result) -> None:
    agent = result.data["agent"]
    services = ", ".join(f"{s['name']} {'running' if s['running'] else 'stopped'}" for s in agent["services"]) or None
    newer = result.data.get("newer_bundle")
    last = result.data.get("last_run")
    app.out.keyvalues(
        "Mobility Service",
        [
            ("Installed", "yes" if agent["installed"] else "no"),
            ("Version", agent["version"]),
            ("Build", agent["build"]),
            ("Install dir", agent["install_dir"]),
            ("Registered", ("yes, with " + str(agent["cs_endpoint"])) if agent["registered"] else "no"),
            ("Services", services),
            ("Health", _health(result.data.get("health"))),
            ("Filter driver", _driver(result.data.get("driver"))),
            ("Azure VM agent", _vm_agent(result.data.get("vm_agent"))),
            ("Newer bundle", f"{newer['version']} ({newer['path']})" if newer else "none found"),
            ("Last asrctl run", f"{last['command']}: {last['status']} ({last['started']})" if last else None),
        ],
    )
    _warnings(app, result)


def _health(health: dict[str, Any] | None) -> str | None:
    if not health:
        return None
    reasons = [r["message"] for r in health["reasons"]]
    return health["status"] + (": " + "; ".join(reasons) if reasons else "")


def _driver(driver: dict[str, Any] | None) -> str | None:
    if not driver or "loaded" not in driver:
        return None
    if driver["loaded"] is None:
        return "unknown (/proc/modules cannot be read)"
    kernel = driver.get("kernel") or {}
    support = f"kernel {kernel.get('running')}: {kernel.get('supported')}"
    if kernel.get("next_boot") and kernel.get("next_boot") != kernel.get("running"):
        support += f"; next boot {kernel['next_boot']}: {kernel.get('next_boot_supported')}"
    if not driver["loaded"]:
        return f"involflt not loaded ({support})"
    state = "loaded" + (f", {driver['version']}" if driver.get("version") else "")
    state += (
        ", /dev/involflt present" if driver.get("device") and not driver.get("device_problem") else ", no /dev/involflt"
    )
    if driver.get("faulty"):
        state += ", a KNOWN-FAULTY build"
    return f"involflt {state} ({support})"


def vm_agent(app: App, result: Result) -> None:
    vm: dict[str, Any] = result.data["vm_agent"]
    installed = {True: "yes", False: "no", None: "unknown"}[vm["installed"]]
    pids = vm["pids"]
    running = "yes" + (f" (pid {', '.join(map(str, pids))})" if pids else "") if vm["running"] else "no"
    app.out.keyvalues(
        "Azure VM agent",
        [
            ("Installed", installed),
            ("Version", vm["version"]),
            ("Package", vm["package"]),
            ("Service", vm["service"]),
            ("Running", running),
            ("Source", vm["source"]),
        ],
    )
    for note in vm["notes"]:
        app.out.warn(note)


def _vm_agent(vm: dict[str, Any] | None) -> str | None:
    if not vm:
        return None
    name = vm.get("package") or vm.get("service") or "Azure VM agent"
    if vm.get("installed") is None:
        return f"{name}: cannot tell"
    if not vm["installed"]:
        return f"{name} not installed"
    version = f" {vm['version']}" if vm.get("version") else ""
    return f"{name}{version}, {'running' if vm.get('running') else 'not running'}"
