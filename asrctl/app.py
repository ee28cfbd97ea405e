"""The application object every verb receives: options, the root mapping, output, and lazily built facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from asrctl.output import Output

if TYPE_CHECKING:
    from asrctl.facts import HostFacts
    from asrctl.matrix import Platform, Unsupported
    from asrctl.system.paths import Paths


@dataclass
class App:
    root_arg: str | None
    bundle_dir_args: tuple[str, ...]
    out: Output
    exit_codes: str = "asrctl"
    command: str = "asrctl"
    log_file: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def configure(
        self,
        *,
        root: str | None,
        bundle_dirs: tuple[str, ...],
        json_mode: bool,
        verbosity: int,
        color: bool | None,
        exit_codes: str,
    ) -> None:
        """Set the global options. Called again while the verb's own options are parsed, since they may also
        follow the verb (``asrctl detect --json --root R``); what was detected under another root is forgotten."""
        if root != self.root_arg:
            for cached in ("paths", "facts", "platform"):
                self.__dict__.pop(cached, None)
        self.root_arg = root
        self.bundle_dir_args = tuple(bundle_dirs)
        self.exit_codes = exit_codes
        self.out.json_mode = json_mode
        self.out.verbosity = verbosity
        self.out.color = color

    @cached_property
    def paths(self) -> Paths:
        from asrctl.system.paths import Paths

        return Paths.for_root(self.root_arg)

    @cached_property
    def facts(self) -> HostFacts:
        from asrctl.facts import detect

        return detect(self.paths)

    @cached_property
    def platform(self) -> Platform | Unsupported:
        from asrctl.matrix import select

        return select(self.facts)

    def platform_json(self) -> dict[str, object]:
        """What detection found, as ``detect`` and the support archive report it."""
        facts, plat = self.facts, self.platform
        return {
            "os_family": facts.os_family,
            "distro_id": facts.distro_id or None,
            "version": facts.version or None,
            "arch": facts.arch,
            "kernel": facts.kernel,
            "os_tag": plat.os_tag,
            "supported": plat.supported,
            "reason": plat.reason,
            "name": plat.name,
            "is_admin": facts.is_admin,
            "warnings": list(plat.warnings),
        }

    def start_log(self, changes_machine: bool) -> None:
        """Verbs that change the machine always log. Read-only verbs log only on the real root, where the log
        directory already exists: pointing ``--root`` at someone's release tree never writes into it."""
        from asrctl.system import log

        if self.log_file is None and (changes_machine or not self.paths.sandboxed):
            self.log_file = log.setup(self.paths, create_dirs=changes_machine)
        elif self.log_file is None:
            log.detach()
