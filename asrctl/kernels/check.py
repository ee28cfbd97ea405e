"""The answer to "is this kernel supported?", from every source given, and which source decides.

Sources, each optional: a **bundle** (its own ``supported_kernels`` and the rules for its tag, read as Microsoft's
installer reads them), the **installed agent** (its build's own list: :func:`asrctl.kernels.host.installed_list`,
else that exact build in the tree), and a **SupportedKernels tree** (every build that published a list for the
tag). The answer for a kernel is the bundle's when one is given; else the installed agent's when its build's list is
known; else whether any build in the tree lists it; else the rules alone (RHEL/OL); else unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asrctl import versions
from asrctl.kernels import kver, rules
from asrctl.kernels.lists import KernelList
from asrctl.kernels.tree import Tree

BUNDLE, INSTALLED, LISTS, RULES, NONE = "bundle", "installed", "lists", "rules", "none"


@dataclass(frozen=True)
class Subject:
    """A bundle or the installed agent: one build, one list (None: not known)."""

    kind: str  # BUNDLE | INSTALLED
    label: str
    version: str
    tag: str
    listed: KernelList | None
    installer: bool  # judge as Microsoft's installer reads the list (a bundle about to be installed)
    source: str = ""  # where the list came from


@dataclass
class Answer:
    kernel: str
    roles: list[str]
    tag: str
    status: str = rules.UNKNOWN
    decided_by: str = NONE
    why: str = ""
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    nearest: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "roles": list(self.roles),
            "tag": self.tag,
            "status": self.status,
            "decided_by": self.decided_by,
            "why": self.why,
            **self.parts,
            "nearest": list(self.nearest),
        }


def judge_subject(kernel: str, subject: Subject) -> dict[str, Any]:
    out: dict[str, Any] = {"label": subject.label, "version": subject.version, "list": subject.source or None}
    # A bundle without supported_kernels supports nothing (Microsoft's checker); an installed agent whose list is
    # not on this host is unknown.
    if subject.listed is None and rules.uses_list(subject.tag) and subject.kind != BUNDLE:
        out.update(status=rules.UNKNOWN, how="no-list", why=f"the list of {subject.label} is not available here")
        return out
    verdict = rules.judge(kernel, subject.tag, subject.listed, installer=subject.installer)
    out.update(verdict.as_json())
    return out


def judge_tree(kernel: str, tag: str, tree: Tree) -> dict[str, Any]:
    """Every build of the tree that published a list for ``tag``: which list ``kernel``, which dropped it."""
    refs = tree.refs_for(tag)
    out: dict[str, Any] = {"directory": str(tree.directory), "scenarios": sorted(tree.scenarios)}
    if not rules.uses_list(tag):
        verdict = rules.judge(kernel, tag, None)
        out.update(verdict.as_json())
        out["why"] = f"{verdict.why} (the lists for {tag} are rule-based, not lists)"
        return out
    if not refs:
        out.update(
            status=rules.UNKNOWN,
            how="no-list",
            why=f"no build in {tree.directory} published a list for {tag}",
            builds=[],
        )
        return out
    builds: list[dict[str, Any]] = []
    dropped: list[dict[str, str]] = []
    last: dict[str, bool] = {}
    for ref in refs:  # by scenario, then build
        listed = tree.load(ref)
        verdict = rules.judge(kernel, tag, listed, installer=False)
        is_listed = kernel in listed
        row: dict[str, Any] = {"scenario": ref.scenario, "build": ref.build, "listed": is_listed}
        if is_listed and listed.entries[kernel] is not None:
            row["sp"] = listed.entries[kernel]
        if kernel == listed.unterminated:
            row["note"] = "last line without a final newline: Microsoft's installer never reads it"
        row["status"] = verdict.status
        builds.append(row)
        if last.get(ref.scenario) and not is_listed:
            dropped.append({"scenario": ref.scenario, "build": ref.build})
        last[ref.scenario] = is_listed
    supporting = [b for b in builds if b["status"] == rules.SUPPORTED]
    latest = {}
    for b in builds:
        latest[b["scenario"]] = b  # refs are ordered by build within a scenario
    out["builds"] = builds
    out["supported_by"] = [{"scenario": b["scenario"], "build": b["build"]} for b in supporting]
    out["dropped_by"] = dropped
    out["latest"] = [{"scenario": s, "build": b["build"], "listed": b["listed"]} for s, b in sorted(latest.items())]
    if supporting:
        by = ", ".join(f"{b['build']} ({b['scenario']})" for b in supporting[-4:])
        more = f" and {len(supporting) - 4} more" if len(supporting) > 4 else ""
        why = f"supported by {len(supporting)} build(s): {by}{more}"
        if any(b["status"] == rules.SUPPORTED and not b["listed"] for b in supporting):
            why = "every -default SLES kernel passes Microsoft's installer; " + why
        gone = [s for s, b in latest.items() if b["status"] != rules.SUPPORTED]
        if gone:
            why += "; not in the latest list of " + ", ".join(f"{s} ({latest[s]['build']})" for s in sorted(gone))
        out.update(status=rules.SUPPORTED, how="list", why=why)
    else:
        out.update(status=rules.UNSUPPORTED, how="list", why=f"no build in the lists has it for {tag}")
    return out


def _tree_kernels(tree: Tree, tag: str) -> set[str]:
    found: set[str] = set()
    for ref in tree.refs_for(tag):
        found.update(tree.load(ref).kernels())
    return found


def installed_from_tree(subject: Subject, tree: Tree | None) -> Subject:
    """The installed agent's list from the tree when the agent keeps none: that exact build (full version)."""
    if subject.listed is not None or tree is None or not rules.uses_list(subject.tag):
        return subject
    refs = tree.find(subject.version, subject.tag)
    if not refs:
        return subject
    ref = refs[0]
    return Subject(
        subject.kind,
        subject.label,
        subject.version,
        subject.tag,
        tree.load(ref),
        subject.installer,
        f"{tree.directory}: {ref.scenario}/{ref.build}/{ref.tag}",
    )


def check(
    kernels: list[tuple[str, list[str]]],
    tag: str,
    *,
    bundle: Subject | None = None,
    installed: Subject | None = None,
    tree: Tree | None = None,
) -> list[Answer]:
    """One :class:`Answer` per kernel (with the roles it plays: running, next_boot, given)."""
    if installed is not None:
        installed = installed_from_tree(installed, tree)
    answers = []
    for kernel, roles in kernels:
        ans = Answer(kernel, roles, tag)
        # The nearest kernels are those of the source that decided: the bundle's, the installed build's, the tree's.
        candidates: dict[str, set[str]] = {}
        decided = False
        if bundle is not None:
            part = judge_subject(kernel, bundle)
            ans.parts[BUNDLE] = part
            ans.status, ans.decided_by, ans.why, decided = part["status"], BUNDLE, part["why"], True
            candidates[BUNDLE] = set(bundle.listed.kernels() if bundle.listed else [])
        if installed is not None:
            part = judge_subject(kernel, installed)
            ans.parts[INSTALLED] = part
            if not decided and part["status"] != rules.UNKNOWN:
                ans.status, ans.decided_by, ans.why, decided = part["status"], INSTALLED, part["why"], True
            candidates[INSTALLED] = set(installed.listed.kernels() if installed.listed else [])
        if tree is not None:
            part = judge_tree(kernel, tag, tree)
            ans.parts[LISTS] = part
            if not decided:
                ans.status, ans.decided_by, ans.why, decided = part["status"], LISTS, part["why"], True
            if rules.uses_list(tag):
                candidates[LISTS] = _tree_kernels(tree, tag)
        if not decided:
            if rules.uses_list(tag):
                ans.why = "no list to check against: give --lists DIR or --bundle FILE"
            else:
                verdict = rules.judge(kernel, tag, None)
                ans.status, ans.decided_by, ans.why = verdict.status, RULES, verdict.why
        if ans.status != rules.SUPPORTED:
            ans.nearest = kver.nearest(kernel, candidates.get(ans.decided_by) or set().union(*candidates.values()))
        answers.append(ans)
    return answers


def overall(answers: list[Answer]) -> str:
    return rules.worst([a.status for a in answers])


def builds_supporting(answer: Answer) -> list[str]:
    """``9.66.7722.1 (AzureToAzure)`` for every tree build that supports the kernel, newest first."""
    found = answer.parts.get(LISTS, {}).get("supported_by", [])
    ordered = sorted(found, key=lambda b: versions.key(b["build"]), reverse=True)
    return [f"{b['build']} ({b['scenario']})" for b in ordered]
