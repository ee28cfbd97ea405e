"""What a verb is asked to do: the request the command line builds (options only, nothing checked yet)."""

from __future__ import annotations

from dataclasses import dataclass, field

from asrctl.agent.base import InstallOptions


@dataclass
class BundleChoice:
    path: str | None = None  # --bundle FILE
    sha256: str | None = None
    require_digest: bool = False


@dataclass
class RegistrationInput:
    cs_type: str | None = None  # as given; registration.resolve_cs_type says what it is
    endpoint: str | None = None
    passphrase_file: str | None = None
    passphrase_stdin: bool = False
    insecure_passphrase_file: bool = False
    config_file: str | None = None
    no_register: bool = False
    force: bool = False
    skip_connectivity_check: bool = False
    cs_fingerprint: str | None = None
    connect_timeout: float = 5.0
    ps_port: int = 9443


@dataclass
class Request:
    dry_run: bool = False
    yes: bool = False
    bundle: BundleChoice = field(default_factory=BundleChoice)
    registration: RegistrationInput = field(default_factory=RegistrationInput)
    options: InstallOptions = field(default_factory=InstallOptions)
    allow_downgrade: bool = False
    vm_agent: bool = True  # --no-vm-agent: install/upgrade leave the Azure VM agent alone
    skip_kernel_check: bool = False  # --skip-kernel-check: a kernel refusal becomes a loud warning
    kernel_lists: str | None = None  # --lists DIR: which builds support a refused kernel
