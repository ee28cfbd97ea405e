"""Is a kernel supported by a bundle of a given OS tag? Microsoft's installer rules, with the rules as data
(platforms/kernels.toml, whose header cites the source) and this module only applying them.

Three answers, never a guess: ``supported``, ``unsupported``, ``unknown`` (asrctl has no rule, or the known copies
of Microsoft's checker disagree: the bundle's own checker, which runs before the installer changes anything,
decides).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.kernels.lists import KernelList

SUPPORTED, UNSUPPORTED, UNKNOWN = "supported", "unsupported", "unknown"
VERDICTS = (SUPPORTED, UNSUPPORTED, UNKNOWN)
_RANK = {SUPPORTED: 0, UNKNOWN: 1, UNSUPPORTED: 2}


@dataclass(frozen=True)
class Verdict:
    status: str  # SUPPORTED | UNSUPPORTED | UNKNOWN
    how: str  # "list", "sles-default", "rule", "no-rule", "no-list"
    why: str
    sp: int | None = None  # SLES: the service pack the list names for the kernel

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "how": self.how, "why": self.why}
        if self.sp is not None:
            out["sp"] = self.sp
        return out


def worst(statuses: list[str]) -> str:
    """The verdict of several: unsupported beats unknown beats supported (none at all: unknown)."""
    return max(statuses, key=_RANK.__getitem__) if statuses else UNKNOWN


@cache
def load() -> dict[str, Any]:
    import tomllib

    from asrctl.resources import platform_data

    try:
        data = tomllib.loads(platform_data("kernels.toml"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AsrctlError("ASRCTL-E013", f"cannot load platforms/kernels.toml: {exc}") from None
    validate(data)
    return data


def validate(data: dict[str, Any]) -> None:
    """The shape of kernels.toml, so a bad edit fails loudly at load time and not on one host's kernel."""
    problems = []
    if data.get("schema") != 1:
        problems.append("schema must be 1")
    for n, entry in enumerate(data.get("tag", []), 1):
        method = entry.get("method")
        if not entry.get("match") or method not in ("list", "sles", "rules"):
            problems.append(f"tag #{n}: needs match and a method of list, sles or rules")
        if method == "rules":
            for rule in [*entry.get("rule", []), entry.get("default", {})]:
                if rule.get("verdict") not in VERDICTS or not rule.get("why"):
                    problems.append(f"tag #{n} ({entry['match']}): each rule and the default need verdict and why")
    if problems:
        raise AsrctlError("ASRCTL-E013", "platforms/kernels.toml is broken: " + "; ".join(problems))


def method_for(tag: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    for entry in (data or load())["tag"]:
        if any(fnmatch.fnmatchcase(tag, pattern) for pattern in entry["match"]):
            return dict(entry)
    return None


def uses_list(tag: str, data: dict[str, Any] | None = None) -> bool:
    """Whether the bundle's supported_kernels decides for this tag (Ubuntu, Debian, SLES 12/15)."""
    entry = method_for(tag, data)
    return entry is not None and entry["method"] in ("list", "sles")


def _minor(kernel: str) -> int | None:
    after = kernel.partition("-")[2]
    head = after.split(".", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else None


def _patch(kernel: str) -> tuple[int, int] | None:
    fields = kernel.split(".")
    if len(fields) < 5:
        return None
    a, b = fields[3], fields[4]
    if not (a.isascii() and a.isdigit() and b.isascii() and b.isdigit()):
        return None
    return int(a), int(b)


def _holds(rule: dict[str, Any], kernel: str) -> bool:
    if "prefix" in rule and not any(kernel.startswith(p) for p in rule["prefix"]):
        return False
    if "suffix" in rule and not any(kernel.endswith(s) for s in rule["suffix"]):
        return False
    if "contains" in rule and not any(c in kernel for c in rule["contains"]):
        return False
    if "minor" in rule:
        minor = _minor(kernel)
        lo, hi = (rule["minor"], rule["minor"]) if isinstance(rule["minor"], int) else rule["minor"]
        if minor is None or not lo <= minor <= hi:
            return False
    if "patch_below" in rule:
        a, b = (int(x) for x in rule["patch_below"].split("."))
        patch = _patch(kernel)
        if patch is not None and patch >= (a, b):
            return False
    return True


def judge(
    kernel: str,
    tag: str,
    listed: KernelList | None,
    *,
    installer: bool = True,
    data: dict[str, Any] | None = None,
) -> Verdict:
    """Whether a bundle for ``tag`` whose ``supported_kernels`` is ``listed`` (None: the bundle has none) supports
    ``kernel``. ``installer``: judge as Microsoft's checker reads the list (a last line without a final newline is
    not seen); False for a published list in the SupportedKernels tree, where the line counts and a note says so."""
    entry = method_for(tag, data)
    if entry is None:
        return Verdict(UNKNOWN, "no-rule", f"asrctl has no kernel rule for {tag}; the bundle's own checker decides")
    method = entry["method"]
    if method == "rules":
        for rule in entry.get("rule", []):
            if _holds(rule, kernel):
                return Verdict(rule["verdict"], "rule", rule["why"])
        default = entry["default"]
        return Verdict(default["verdict"], "rule", default["why"])
    if method == "sles" and kernel.endswith("-default"):
        sp = listed.entries.get(kernel) if listed is not None else None
        return Verdict(
            SUPPORTED,
            "sles-default",
            "Microsoft's installer accepts every -default kernel without its list"
            + (f" (listed for SP{sp})" if sp is not None else " (not listed: the agent uses its SP driver)"),
            sp,
        )
    if listed is None:
        return Verdict(
            UNSUPPORTED, "no-list", f"the bundle has no supported_kernels; Microsoft's checker refuses {kernel}"
        )
    if kernel in listed:
        sp = listed.entries[kernel]
        if kernel == listed.unterminated:
            if installer:
                return Verdict(
                    UNSUPPORTED,
                    "list",
                    f"{kernel} is the last line of {listed.source}, which has no final newline: Microsoft's checker "
                    "never reads that line",
                    sp,
                )
            return Verdict(
                SUPPORTED,
                "list",
                "listed (last line, no final newline: a bundle with this file refuses it at install)",
                sp,
            )
        return Verdict(SUPPORTED, "list", "listed", sp)
    return Verdict(UNSUPPORTED, "list", "not listed", None)
