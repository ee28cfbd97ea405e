"""A local copy of Microsoft's SupportedKernels tree: ``<dir>/<Scenario>/SupportedKernels/<build>/<TAG>_supported_kernels.txt``.

Facts that shape this module (docs/KERNELS.md has the sources):

- lists are **not cumulative**: a later build can drop a kernel an earlier one listed (AzureToAzure shows it), so
  every build is read and "which builds support K" is answered per build, never by the newest alone;
- a build directory holds **only the tags that release touched**: a missing file means "no list published for this
  build", not "nothing supported";
- the same build number exists under 9.66 and 9.67 for different tags, so lists are keyed by the **full 4-part
  version** (and scenario and tag), never by the build number.

The directory may be the tree's top (holding ``AzureToAzure``/``OnPremiseToAzure``, or ``MobilityAgent/`` above
them), one scenario (holding ``SupportedKernels``), or a ``SupportedKernels`` directory itself. Files are read
confined to the directory (a link out of it is refused) and bounded; a damaged list is an error naming its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from asrctl import versions
from asrctl.errors import AsrctlError
from asrctl.kernels import lists
from asrctl.system import rootfs
from asrctl.system.paths import Paths

SCENARIOS = ("AzureToAzure", "OnPremiseToAzure")
SUFFIX = "_supported_kernels.txt"
_TAG = re.compile(r"[A-Z][A-Z0-9.-]*-64")


@dataclass(frozen=True)
class ListRef:
    scenario: str
    build: str  # the full 4-part version of the build directory
    tag: str
    path: str  # inside the tree (a target path of the tree's own Paths)

    @property
    def key(self) -> versions.Key:
        return versions.key(self.build)


@dataclass
class Tree:
    directory: Path
    paths: Paths
    scenarios: dict[str, str]  # scenario -> its SupportedKernels directory inside the tree
    refs: list[ListRef] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    _cache: dict[str, lists.KernelList] = field(default_factory=dict)

    def refs_for(self, tag: str) -> list[ListRef]:
        return sorted((r for r in self.refs if r.tag == tag), key=lambda r: (r.scenario, r.key))

    def builds(self, scenario: str) -> list[str]:
        return sorted({r.build for r in self.refs if r.scenario == scenario}, key=versions.key)

    def tags(self) -> list[str]:
        return sorted({r.tag for r in self.refs})

    def load(self, ref: ListRef) -> lists.KernelList:
        if ref.path not in self._cache:
            shown = str(self.directory / ref.path.lstrip("/"))
            try:
                data = rootfs.read_file(self.paths, ref.path, lists.MAX_BYTES)
            except rootfs.Refused as exc:
                raise AsrctlError("ASRCTL-E094", f"{shown}: {exc.reason}", source=shown) from None
            self._cache[ref.path] = lists.parse(data or b"", shown)
        return self._cache[ref.path]

    def find(self, build: str, tag: str) -> list[ListRef]:
        """The lists of exactly this build (full version) and tag, in every scenario that has one."""
        return [r for r in self.refs if r.build == build and r.tag == tag]

    def has_build(self, build: str) -> bool:
        return any(r.build == build for r in self.refs)


def _dirs(paths: Paths, where: str) -> list[str]:
    try:
        names = rootfs.list_dir(paths, where)
    except rootfs.Refused:
        return []
    return [n for n in names if _is_dir(paths, f"{where.rstrip('/')}/{n}")]


def _is_dir(paths: Paths, path: str) -> bool:
    try:
        return rootfs.resolve_dir(paths, path) is not None
    except rootfs.Refused:
        return False


def _is_build(name: str) -> bool:
    try:
        return len(versions.parse(name)) == 4
    except versions.VersionError:
        return False


def _locate(paths: Paths, directory: Path, scenario: str | None) -> dict[str, str]:
    """Scenario -> SupportedKernels directory, from the shapes the module docstring names."""
    base = "/"
    if _is_dir(paths, "/MobilityAgent"):
        base = "/MobilityAgent"
    found = {
        s: f"{base.rstrip('/')}/{s}/SupportedKernels"
        for s in SCENARIOS
        if _is_dir(paths, f"{base}/{s}/SupportedKernels")
    }
    if not found and _is_dir(paths, "/SupportedKernels"):
        name = scenario or (directory.name if directory.name in SCENARIOS else None)
        if name is None:
            raise AsrctlError(
                "ASRCTL-E095",
                f"{directory} holds one scenario's SupportedKernels but its name is not a scenario; "
                "say which with --scenario AzureToAzure|OnPremiseToAzure",
            )
        found = {name: "/SupportedKernels"}
    if not found and any(_is_build(n) for n in _dirs(paths, "/")):
        name = scenario or (directory.parent.name if directory.parent.name in SCENARIOS else None)
        if name is None:
            raise AsrctlError(
                "ASRCTL-E095",
                f"{directory} holds build directories but no scenario names it; say which with --scenario",
            )
        found = {name: "/"}
    if not found:
        raise AsrctlError(
            "ASRCTL-E095",
            f"{directory} holds no SupportedKernels tree (<Scenario>/SupportedKernels/<build>/<TAG>{SUFFIX})",
            path=str(directory),
        )
    if scenario is not None:
        if scenario not in found:
            raise AsrctlError("ASRCTL-E095", f"{directory} has no {scenario} lists (it has {', '.join(sorted(found))})")
        found = {scenario: found[scenario]}
    return found


FETCHED = "/var/lib/asrctl/supported-kernels"  # where `kernel lists fetch` puts the tree by default


def default_lists(paths: Paths, given: str | None) -> str | None:
    """``--lists`` as given, else the tree ``kernel lists fetch`` put under the root, when there is one."""
    if given:
        return given
    fetched = paths.host(FETCHED)
    return str(fetched) if fetched.is_dir() and any(fetched.iterdir()) else None


def open_tree(directory: str | Path, scenario: str | None = None) -> Tree:
    """Index the tree's lists (names only; each list is read when first needed)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AsrctlError("ASRCTL-E095", f"--lists {directory}: no such directory", path=str(directory))
    try:
        paths = Paths.for_root(directory)
    except AsrctlError as exc:
        raise AsrctlError("ASRCTL-E095", f"--lists {directory}: {exc.message}") from None
    tree = Tree(paths.root, paths, _locate(paths, paths.root, scenario))
    for name, top in sorted(tree.scenarios.items()):
        for build in _dirs(paths, top):
            where = str(PurePosixPath(top) / build)
            if not _is_build(build):
                tree.ignored.append((where, "not a build directory (a 4-part version)"))
                continue
            for file in rootfs.list_dir(paths, where):
                tag = file[: -len(SUFFIX)] if file.endswith(SUFFIX) else ""
                if not _TAG.fullmatch(tag):
                    tree.ignored.append((f"{where}/{file}", f"not <TAG>{SUFFIX}"))
                    continue
                tree.refs.append(ListRef(name, build, tag, f"{where}/{file}"))
    if not tree.refs:
        raise AsrctlError("ASRCTL-E095", f"{directory}: the SupportedKernels tree holds no lists", path=str(directory))
    return tree
