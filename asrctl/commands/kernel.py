"""``asrctl kernel check`` and ``asrctl kernel lists fetch`` (docs/KERNELS.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from asrctl.commands.common import begin, examples
from asrctl.commands.options import lists_option, sha256_option
from asrctl.commands.settings import setting
from asrctl.errors import AsrctlError, Reported
from asrctl.output import Result

if TYPE_CHECKING:
    from asrctl.app import App
    from asrctl.kernels.check import Answer

SCENARIOS = ("AzureToAzure", "OnPremiseToAzure")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")  # as bundles/names.py reads a tag from a bundle name


@click.group(
    epilog=examples(
        "asrctl kernel check                           # the running and the next-boot kernel",
        "asrctl kernel check --kernel 5.15.0-1103-azure --lists /srv/asr/SupportedKernels",
        "asrctl kernel check --bundle /mnt/asr/Microsoft-ASR_UA_9.66.7567.1_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz",
        "asrctl kernel lists fetch https://mirror.corp.example/asr/SupportedKernels.tar.gz --to /srv/asr/kernels",
    )
)
def kernel() -> None:
    """Is a kernel supported by the agent, a bundle or Microsoft's published lists? Fetch the lists."""


@kernel.command("check")
@click.option(
    "--kernel",
    "kernels",
    multiple=True,
    metavar="VERSION",
    help="A kernel to check instead of the running and next-boot ones (repeatable), as `uname -r` prints it.",
)
@lists_option
@setting(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Check against this bundle's own supported_kernels (unpacked privately; nothing runs).",
)
@setting(
    "--scenario",
    type=click.Choice(SCENARIOS),
    help="Only this scenario's lists (default: every scenario in --lists).",
)
@click.option("--tag", metavar="TAG", help="The bundle OS tag to check for (default: this host's, or the bundle's).")
@click.pass_context
def kernel_check(
    ctx: click.Context,
    kernels: tuple[str, ...],
    lists_dir: str | None,
    bundle_path: str | None,
    scenario: str | None,
    tag: str | None,
) -> Result:
    """Is each kernel supported, by which builds, for which tag and scenario?

    Without --kernel: the running kernel and the one that boots next (from the boot loader's files, with the
    source named). The answer is the bundle's with --bundle; else the installed agent's when its build's list is
    known; else whether any build in --lists supports it; RHEL/OL kernels by Microsoft's rules. Exit 0: every
    kernel supported; 11 (ASRCTL-E091): one is not; 12 (ASRCTL-E092): one cannot be told here.
    """
    from asrctl.kernels import check, host, kver, sources
    from asrctl.kernels.tree import open_tree

    app = begin(ctx)
    if tag is not None and _TAG.fullmatch(tag) is None:
        # It reaches a file name (the installed build's saved list) and the verdict: a typo must not read as
        # "cannot be told here" (exit 12).
        raise AsrctlError(
            "ASRCTL-E002",
            f"--tag {tag!r} is not a bundle OS tag (ASCII letters, digits, '.' and '-', as in UBUNTU-22.04-64)",
        )
    wanted: list[tuple[str, list[str]]] = [(kver.require(k, "--kernel"), ["given"]) for k in kernels]
    bundle = None
    if bundle_path:
        from asrctl.bundles.catalog import load_bundle

        bundle = load_bundle(Path(bundle_path))
    tag = tag or (bundle.os_tag if bundle is not None else None) or app.platform.os_tag
    if not tag:
        raise AsrctlError(
            "ASRCTL-E010",
            f"this host has no bundle OS tag ({app.platform.reason}); name one with --tag",
        )
    result = Result(app.command, data={"tag": tag})
    if not wanted:
        running = app.facts.kernel
        nxt = host.next_boot(app.paths, running)
        result.data["next_boot"] = nxt.as_json()
        if kver.problem(running) is None:
            wanted.append((running, ["running"]))
        else:
            result.warnings.append(f"the running kernel {running!r} is not a kernel release string")
        if nxt.kernel and nxt.kernel == running:
            wanted[-1][1].append("next_boot")
        elif nxt.kernel:
            wanted.append((nxt.kernel, ["next_boot"]))
        else:
            result.warnings.append(f"the kernel that boots next is unknown: {nxt.detail}")
    from asrctl.kernels.tree import default_lists

    lists_dir = default_lists(app.paths, lists_dir)
    tree = open_tree(lists_dir, scenario) if lists_dir else None
    subject = sources.bundle_subject(app, bundle) if bundle is not None else None
    installed = None
    if bundle is None:
        from asrctl.agent import factory

        agent = factory.backend_for(app).installed() if app.facts.os_family == "linux" else None
        if agent is not None:
            installed = sources.installed_subject(app, agent, tag)
            result.data["agent"] = {"version": agent.version, "list": installed.source or None}
    answers = check.check(wanted, tag, bundle=subject, installed=installed, tree=tree)
    result.data["kernels"] = [a.as_json() for a in answers]
    if tree is not None:
        result.data["lists"] = {"directory": str(tree.directory), "scenarios": sorted(tree.scenarios)}
    status = check.overall(answers)
    result.data["status"] = status
    _render(app, answers, result)
    if status in ("unsupported", "unknown"):
        code = "ASRCTL-E091" if status == "unsupported" else "ASRCTL-E092"
        err = AsrctlError(code, _summary([a for a in answers if a.status == status]))
        app.out.error(err.code, err.message, err.remedy)
        raise Reported(err, result)
    app.out.success(f"supported: {', '.join(a.kernel for a in answers)} ({tag})")
    return result


def _summary(answers: list[Answer]) -> str:
    from asrctl.kernels.check import builds_supporting

    parts = []
    for a in answers:
        text = f"{a.kernel} ({'/'.join(a.roles)}, {a.tag}): {a.status}: {a.why}"
        builds = builds_supporting(a)
        if builds and a.decided_by != "lists":
            text += f"; supported by {', '.join(builds[:3])}"
        if a.nearest:
            text += f"; nearest supported: {', '.join(a.nearest)}"
        parts.append(text)
    return "; ".join(parts)


def _render(app: App, answers: list[Answer], result: Result) -> None:
    from asrctl.kernels.check import builds_supporting

    nxt = result.data.get("next_boot")
    if nxt:
        app.out.detail(f"next boot: {nxt['kernel'] or 'unknown'} (from {nxt['source']})")
    rows = [(a.kernel, ", ".join(a.roles), a.status, a.decided_by) for a in answers]
    app.out.table(f"Kernels ({result.data['tag']})", ["kernel", "role", "verdict", "decided by"], rows)
    for a in answers:
        builds = a.parts.get("lists", {}).get("builds", [])
        if builds and app.out.verbosity > 0:
            app.out.table(
                f"{a.kernel} in the SupportedKernels lists",
                ["scenario", "build", "listed"],
                [(b["scenario"], b["build"], _listed(b)) for b in builds],
            )
        app.out.info(f"{a.kernel}: {a.why}")
        supporting = builds_supporting(a)
        if supporting and a.decided_by != "lists":
            app.out.info(f"  supported by: {', '.join(supporting)}")
        if a.nearest:
            app.out.info(f"  nearest listed kernels: {', '.join(a.nearest)}")
    for w in result.warnings:
        app.out.warn(w)


def _listed(build: dict[str, Any]) -> str:
    text = "yes" if build["listed"] else "no"
    if build.get("sp") is not None:
        text += f" (SP{build['sp']})"
    if build["status"] == "supported" and not build["listed"]:
        text = "no (-default: the installer accepts it)"
    return text


# --- lists fetch --------------------------------------------------------------------------------------------


@kernel.group("lists")
def kernel_lists() -> None:
    """Microsoft's SupportedKernels lists."""


@kernel_lists.command("fetch")
@click.argument("url")
@click.option(
    "--to",
    "to_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where the tree goes (replaced as a whole). Default: <root>/var/lib/asrctl/supported-kernels.",
)
@sha256_option
@click.option(
    "--ca-bundle",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="PEM file with the CA(s) that signed the mirror's certificate (default: the system's).",
)
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True, help="Retries after a failure.")
@click.option(
    "--timeout", type=click.FloatRange(1, 600), default=30.0, show_default=True, help="Network timeout in seconds."
)
@setting(
    "--require-digest",
    "require_digest",
    is_flag=True,
    help="Refuse an archive that has no digest (no --sha256, no SHA256SUMS line on the mirror).",
)
@click.pass_context
def kernel_lists_fetch(
    ctx: click.Context,
    url: str,
    to_dir: Path | None,
    sha256: str | None,
    ca_bundle: str | None,
    retries: int,
    timeout: float,
    require_digest: bool,
) -> Result:
    """Download Microsoft's SupportedKernels tree from an internal HTTPS mirror, as one archive.

    URL names a .tar.gz (or .tar.xz, .tar) of the tree as Microsoft's repository lays it out (AzureToAzure/ and
    OnPremiseToAzure/ with SupportedKernels/ below, optionally under MobilityAgent/). Verified against --sha256 or
    SHA256SUMS beside it on the mirror, unpacked with the bundle extractor's safety rules, every list parsed, then
    put in place of the old tree in one rename. Proxies and retries as `bundles fetch`.
    """
    from asrctl.kernels.fetchlists import fetch_lists
    from asrctl.system import redact

    redact.register_url_password(url)  # before anything can print or record the URL
    app = begin(ctx)
    from asrctl.kernels.tree import FETCHED

    target = to_dir or app.paths.host(FETCHED)
    got = fetch_lists(
        url,
        target,
        sha256=sha256,
        ca_bundle=ca_bundle,
        out=app.out,
        retries=retries,
        timeout=timeout,
        require_digest=require_digest,
    )
    result = Result(app.command, changed=got["changed"], data={"url": url, **got})
    if not got["verified"]:
        result.warnings.append(f"{url}: not verified ({got['source']})")
    app.out.success(
        f"{got['lists']} lists of {len(got['builds'])} builds in {got['directory']}"
        + ("" if got["changed"] else " (unchanged)")
    )
    return result
