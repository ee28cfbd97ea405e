"""``doctor``: every preflight check, nothing changed. (``logs collect``, which runs it for its archive, is
the collect package.)"""

from __future__ import annotations

import os
from dataclasses import replace

from asrctl.app import App
from asrctl.errors import AsrctlError, Reported
from asrctl.net.checks import FAIL, OK, SKIPPED, WARN, Check
from asrctl.output import Result


def _from_error(name: str, err: AsrctlError) -> Check:
    return Check(name, FAIL, err.message, remedy=err.remedy, code=err.code)


def doctor(
    app: App,
    endpoint: str | None,
    ps_port: int,
    timeout: float,
    fingerprint: str | None,
    prereq: bool = False,
    bundle: str | None = None,
) -> Result:
    from asrctl.agent import factory
    from asrctl.bundles.catalog import resolve_dirs, scan
    from asrctl.lifecycle.preconditions import check_disk, require_privileges
    from asrctl.system.journal import Journal
    from asrctl.system.lock import HostLock, pid_alive

    result = Result(app.command)
    found: list[Check] = []

    try:
        require_privileges(app)
        found.append(Check("privileges", OK, "sandbox root" if app.paths.sandboxed else "root/Administrator"))
    except AsrctlError as err:
        found.append(_from_error("privileges", err))

    plat = app.platform
    if plat.supported:
        found.append(Check("platform", OK, f"{plat.name}: {plat.os_tag} bundles"))
        found.extend(Check("platform", WARN, w) for w in plat.warnings)
    else:
        found.append(Check("platform", FAIL, plat.reason or "unsupported", code="ASRCTL-E010"))

    backend = factory.backend_for(app)
    agent = None
    try:
        agent = backend.installed()
    except AsrctlError as err:
        found.append(_from_error("agent", err))
    if plat.os_tag:
        try:
            dirs, _ = resolve_dirs(app.bundle_dir_args, app.paths)
            best = scan(dirs).newest_for(plat.os_tag)
            if best is None:
                found.append(
                    Check("bundle", WARN if agent else FAIL, f"no {plat.os_tag} bundle in {', '.join(map(str, dirs))}",
                          remedy="Copy the bundle for this host into a bundle dir (--bundle-dir).", code="ASRCTL-E020")
                )  # fmt: skip
            else:
                from asrctl.bundles.digest import read_sums

                sums = best.path.parent / "SHA256SUMS"
                known = sums.is_file() and best.path.name in read_sums(sums)
                found.append(Check("bundle", OK, f"{best.path.name} ({best.version})"))
                found.append(
                    Check("digest", OK, f"listed in {sums}")
                    if known
                    else Check("digest", WARN, f"no SHA256SUMS entry for {best.path.name}",
                            remedy="Run `asrctl bundles checksum DIR` on the staging host.")
                )  # fmt: skip
        except AsrctlError as err:
            found.append(_from_error("bundle", err))

    install_dir = str(agent.install_dir) if agent else backend.default_install_dir()
    try:
        check_disk(app, install_dir)
        found.append(Check("disk space", OK, "enough free space on / and for the install folder"))
    except AsrctlError as err:
        found.append(_from_error("disk space", err))

    lock = HostLock(app.paths.state_dir, "doctor")
    holder = lock.read_holder()
    if holder and holder.get("pid") and pid_alive(int(holder["pid"])) and holder.get("pid") != os.getpid():
        found.append(Check("lock", WARN, f"held by pid {holder['pid']} ({holder.get('command')})"))
    else:
        found.append(Check("lock", OK, "no other asrctl run"))
    last = Journal(app.paths.state_dir).last()
    if last and last.get("status") == "running" and not pid_alive(int(last.get("pid") or 0)):
        found.append(
            Check("last run", WARN, f"{last.get('command')} started {last.get('started')} was interrupted",
                  remedy="The next install/upgrade/uninstall cleans up after it.")
        )  # fmt: skip
    reboot = backend.pending_reboot()
    if reboot:
        found.append(Check("reboot", WARN, reboot))

    if agent is None:
        found.append(Check("agent", OK, "not installed"))
    else:
        down = [s.name for s in backend.services(agent) if not s.running]
        reg = f"registered with {agent.cs_endpoint}" if agent.registered else "not registered"
        found.append(Check("agent", WARN if down or not agent.registered else OK,
                             f"{agent.version} in {agent.install_dir}, {reg}"
                             + (f"; not running: {', '.join(down)}" if down else "")))  # fmt: skip

    from asrctl.agent import vmagent

    vm = vmagent.status(app, backend)
    what = vm.package or vm.service or "Azure VM agent"
    if vm.installed:
        state = f"{what} {vm.version or ''} installed, {'running' if vm.running else 'not running'}".replace("  ", " ")
    else:
        state = f"{what} not installed" if vm.installed is False else f"{what}: cannot tell"
    found.append(Check("Azure VM agent", OK if vm.installed else WARN, "; ".join([state, *vm.notes])))

    if prereq:  # the bundle's own prerequisite checker, against a private unpacked copy (lifecycle/prereq.py)
        from asrctl.lifecycle import prereq as prereq_checks

        found.extend(prereq_checks.doctor_checks(app, bundle))

    result.data["checks"] = [f.as_json() for f in found]
    if endpoint:
        from asrctl.net.checks import to_json
        from asrctl.net.endpoint import parse_endpoint
        from asrctl.net.preflight import check_cs

        checks = check_cs(parse_endpoint(endpoint), ps_port=ps_port, timeout=timeout, fingerprint=fingerprint)
        result.data["connectivity"] = to_json(checks)
        found.extend(replace(c, name=f"network: {c.name}") for c in checks)  # a check that did not run says why

    app.out.table("Doctor", ["check", "result", "detail"], [(f.name, f.status.mark, f.detail) for f in found])
    for f in found:
        if f.status != OK and f.remedy:
            app.out.info(f"  {f.name}: {f.remedy}")
    failed = next((f for f in found if f.status == FAIL), None)
    if failed is not None:
        error = AsrctlError(failed.code or "ASRCTL-E084", f"doctor: {failed.name}: {failed.detail}", failed.remedy)
        app.out.error(error.code, error.message)
        raise Reported(error, result)
    clean = all(f.status in (OK, SKIPPED) for f in found)
    app.out.success("all checks passed" if clean else "no blocking problem found")
    return result
