"""The kernel check of install and upgrade: the bundle's own ``supported_kernels`` and Microsoft's rules for its tag,
against the running kernel and the one that boots next, right after the bundle is verified and unpacked and before
anything from it runs (docs/KERNELS.md, "Install and upgrade").

Unsupported is refused (``ASRCTL-E090``, nothing changed: the staging directory goes with the plan's undo) with the
nearest supported kernels and, given ``--lists``, the builds that support it. Unknown (a family asrctl has no rule
for) goes on: the bundle's own prerequisite checker decides before the installer runs. ``--skip-kernel-check``
turns the refusal into a loud warning (stderr, ``data.warnings``, the log). After the run, the bundle's list is kept
for ``status`` and ``kernel check`` (the agent keeps none of its own on Ubuntu and Debian).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from asrctl.agent.base import AgentBackend
from asrctl.app import App
from asrctl.bundles.catalog import Bundle
from asrctl.errors import AsrctlError
from asrctl.kernels import check, host, kver, rules, sources
from asrctl.kernels.check import Subject
from asrctl.lifecycle.request import Request
from asrctl.output import Result
from asrctl.plan import Step

LOG = logging.getLogger("asrctl")


def kernels_to_check(app: App) -> tuple[list[tuple[str, list[str]]], dict[str, Any]]:
    """The running kernel and the one that boots next (with its source), as ``check.check`` takes them."""
    running = app.facts.kernel
    nxt = host.next_boot(app.paths, running if kver.problem(running) is None else None)
    wanted: list[tuple[str, list[str]]] = []
    if kver.problem(running) is None:
        wanted.append((running, ["running"]))
    if nxt.kernel and nxt.kernel == running and wanted:
        wanted[0][1].append("next_boot")
    elif nxt.kernel:
        wanted.append((nxt.kernel, ["next_boot"]))
    return wanted, nxt.as_json()


def _refusal(answers: list[check.Answer], label: str) -> str:
    parts = []
    for a in answers:
        text = f"{'/'.join(a.roles).replace('_', ' ')} kernel {a.kernel} is not supported by {label}: {a.why}"
        builds = check.builds_supporting(a)
        if builds:
            text += f"; supported by {', '.join(builds[:4])}"
        if a.nearest:
            text += f"; nearest supported kernels: {', '.join(a.nearest)}"
        parts.append(text)
    return "; ".join(parts)


def kernel_step(
    app: App, backend: AgentBackend, bundle: Bundle, tag: str, staged: Path, result: Result, req: Request
) -> tuple[list[Step], list[Step]]:
    """(the check, for right after unpacking; keeping the list, for the end of the plan); none for a Windows
    bundle."""
    from asrctl.kernels.tree import default_lists, open_tree

    if bundle.name.kind != "linux":
        return [], []
    lists = default_lists(app.paths, req.kernel_lists)
    tree = open_tree(lists) if lists else None  # a bad --lists is refused before the plan runs
    skip = req.skip_kernel_check
    bundle_label = f"bundle {bundle.path.name}"
    if skip:
        LOG.warning("--skip-kernel-check: the kernel check of %s only warns", bundle.path.name)
    wanted, nxt = kernels_to_check(app)
    names = " and ".join(f"{'/'.join(r).replace('_', ' ')} {k}" for k, r in wanted) or "the kernels (none readable)"
    kept: dict[str, Any] = {}

    def run() -> dict[str, Any]:
        listed, data = sources.staged_list(staged)
        if data is not None:
            kept["list"] = data
        subject = Subject(check.BUNDLE, bundle_label, bundle.version, tag, listed, True, "supported_kernels")
        answers = check.check(wanted, tag, bundle=subject, tree=tree)
        out = {"kernels": [a.as_json() for a in answers], "next_boot": nxt}
        result.data["kernel_check"] = out
        bad = [a for a in answers if a.status == rules.UNSUPPORTED]
        for a in answers:
            if a.status == rules.UNKNOWN:
                app.out.info(f"kernel {a.kernel}: {a.why}")
        if bad:
            message = _refusal(bad, bundle_label)
            if not skip:
                raise AsrctlError("ASRCTL-E090", message, kernels=[a.kernel for a in bad])
            warning = f"--skip-kernel-check: {message}; replication will not work on that kernel"
            LOG.warning("%s", warning)
            result.warnings.append(warning)
            app.out.warn(warning)
        return out

    def keep() -> dict[str, Any]:
        agent = backend.installed()
        if agent is None or "list" not in kept:
            return {}
        saved = host.save_installed_list(app.paths, agent.version, tag, kept["list"])
        kept["saved"] = saved
        return {"kernel_list": str(saved)}

    def forget() -> None:
        saved = kept.get("saved")
        if isinstance(saved, Path):
            saved.unlink(missing_ok=True)

    describe = f"Check the {names} against the bundle's supported_kernels"
    if skip:
        describe += " (--skip-kernel-check: a refusal becomes a warning)"
    return (
        [Step("kernel-check", describe, run)],
        [
            Step(
                "keep-kernel-list",
                "Keep the bundle's kernel list for status and kernel check",
                keep,
                undo=forget,
                undo_describe="remove the kept kernel list",
            )
        ],
    )
