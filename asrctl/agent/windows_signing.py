"""Asking Windows' own PowerShell two fixed questions: who signed a file (Authenticode), and does Microsoft
Defender exclude the agent's folder.

Nothing unsigned by Microsoft is run: the bundle, the installer right before it starts and the VM agent's MSI
are checked here. The scripts are constants; the file to check travels in an environment variable, never
inside the script text (no quoting, no injection). The answers are JSON on the last line of the output.
"""

from __future__ import annotations

import json
import logging
import ntpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asrctl.errors import AsrctlError
from asrctl.system.runner import Runner, TimedOut

LOG = logging.getLogger("asrctl")

MICROSOFT_SIGNER = "O=Microsoft Corporation"

# Fixed PowerShell scripts. The file to check travels in an environment variable, never inside the script
# text (no quoting, no injection). Single quotes only: the script passes through the Windows command line.
SIGNATURE_ENV = "ASRCTL_SIGNED_FILE"
SIGNATURE_SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "$s = Get-AuthenticodeSignature -LiteralPath $env:ASRCTL_SIGNED_FILE; "
    "$c = $s.SignerCertificate; "
    "$signer = $null; "
    "if ($c) { $signer = [pscustomobject]@{ Subject = $c.Subject; Thumbprint = $c.Thumbprint; "
    "NotAfter = $c.NotAfter.ToString('o') } }; "
    "[pscustomobject]@{ Status = [string]$s.Status; StatusMessage = [string]$s.StatusMessage; "
    "SignerCertificate = $signer } | ConvertTo-Json -Compress -Depth 3"
)
DEFENDER_SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "try { $m = Get-MpPreference } catch { "
    "[pscustomobject]@{ Available = $false; Error = [string]$_.Exception.Message } | ConvertTo-Json -Compress; "
    "exit 0 }; "
    "[pscustomobject]@{ Available = $true; ExclusionPath = @($m.ExclusionPath | Where-Object { $_ }) } "
    "| ConvertTo-Json -Compress -Depth 3"
)


def first_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc
    return None


def dn_parts(subject: str) -> list[str]:
    """``CN=x, O="a, b", C=US`` → ``["CN=x", "O=a, b", "C=US"]``: split on commas outside quotes, quotes removed."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in subject:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@dataclass(frozen=True)
class Signature:
    path: str
    status: str
    subject: str | None
    thumbprint: str | None = None
    message: str | None = None

    @property
    def trusted(self) -> bool:
        """Windows says Valid, and one component of the signer's subject is exactly ``O=Microsoft Corporation``
        (not merely a subject containing that text: ``O=Microsoft Corporation Evil`` is somebody else)."""
        wanted = MICROSOFT_SIGNER.lower()
        return self.status == "Valid" and any(part.lower() == wanted for part in dn_parts(self.subject or ""))

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "signer": self.subject, "thumbprint": self.thumbprint}


@dataclass(frozen=True)
class PowerShell:
    """``powershell.exe`` at an absolute path (``%SystemRoot%\\System32\\...``), run through a runner."""

    runner: Runner
    exe: str

    def argv(self, script: str) -> list[str]:
        return [self.exe, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", script]

    def signature(self, path: str) -> Signature:
        """Ask Windows (Get-AuthenticodeSignature) who signed ``path``. The path goes in through the environment."""
        argv = self.argv(SIGNATURE_SCRIPT)
        try:
            done = self.runner.run(argv, env={SIGNATURE_ENV: path}, timeout=300)
        except (OSError, TimedOut) as exc:
            raise AsrctlError("ASRCTL-E034", f"could not check the signature of {path}: {exc}") from None
        doc = first_json(done.stdout) if done.returncode == 0 else None
        if doc is None:
            raise AsrctlError(
                "ASRCTL-E034",
                f"could not check the signature of {path}: PowerShell exited {done.returncode}: "
                f"{done.output[-500:] or 'no output'}",
            )
        signer = doc.get("SignerCertificate") or {}
        status = doc.get("Status")
        return Signature(
            path=path,
            status="Valid" if status in (0, "0") else str(status),
            subject=signer.get("Subject") if isinstance(signer, dict) else None,
            thumbprint=signer.get("Thumbprint") if isinstance(signer, dict) else None,
            message=doc.get("StatusMessage"),
        )

    def require_microsoft_signature(self, path: str) -> dict[str, Any]:
        sig = self.signature(path)
        if not sig.trusted:
            why = (
                f"its signature status is {sig.status}" + (f" ({sig.message})" if sig.message else "")
                if sig.status != "Valid"
                else f"it is signed by {sig.subject or 'nobody'}, not by Microsoft Corporation"
            )
            raise AsrctlError(
                "ASRCTL-E034",
                f"{ntpath.basename(path)} will not be run: {why}",
                signature=sig.as_json(),
            )
        LOG.info("Authenticode: %s is signed by %s (%s)", path, sig.subject, sig.thumbprint)
        return sig.as_json()

    def defender_excludes(self, folder: str, env: Callable[[str], str]) -> bool | None:
        """Does Microsoft Defender exclude ``folder`` (or a folder above it)? None when PowerShell cannot tell.
        ``env(name)`` expands the variables Defender keeps in its entries (``%ProgramData%``)."""
        try:
            done = self.runner.run(self.argv(DEFENDER_SCRIPT), timeout=120)
        except (OSError, TimedOut):
            return None
        doc = first_json(done.stdout) if done.returncode == 0 else None
        if not doc or not doc.get("Available"):
            return None
        entries = doc.get("ExclusionPath") or []
        if isinstance(entries, str):
            entries = [entries]
        if any(str(e).startswith("N/A") for e in entries):  # "N/A: Must be an administrator to view exclusions"
            return None
        target = ntpath.normcase(folder).rstrip("\\")
        for entry in entries:
            expanded = str(entry)
            for var in ("ProgramData", "ALLUSERSPROFILE", "SystemDrive"):
                expanded = expanded.replace(f"%{var}%", env(var))
            norm = ntpath.normcase(expanded).rstrip("\\*").rstrip("\\")
            if norm and (target == norm or target.startswith(norm + "\\")):
                return True
        return False
