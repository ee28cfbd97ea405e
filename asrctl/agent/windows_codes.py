"""What the exit codes of Microsoft's Windows tools mean for asrctl: ``UnifiedAgent.exe``,
``UnifiedAgentConfigurator.exe`` (the UASetupReturnValues enum, asr-facts §2.6) and Windows Installer (msiexec).

Pure tables and their lookups, apart from the backend, so the Azure VM agent's MSI step (agent/vmagent.py) and the
tests use them without importing the Windows backend; docs/WINDOWS.md has the same table for people.
"""

from __future__ import annotations

from asrctl.agent.base import VendorOutcome
from asrctl.system.runner import Completed

# The vendor logs an outcome message points to (in %ProgramData%\ASRSetupLogs).
INSTALL_LOG = "ASRUnifiedAgentInstaller.log"
CONFIGURATOR_LOG = "ASRUnifiedAgentConfigurator.log"

# UnifiedAgent.exe / UnifiedAgentConfigurator.exe exit codes (the UASetupReturnValues enum, asr-facts §2.6):
# code -> (asrctl error code, what it means). Success codes are in SUCCESS_CODES.
SUCCESS_CODES: dict[int, tuple[str | None, bool]] = {
    0: (None, False),
    98: ("succeeded with warnings (exit 98); read {log}", False),
    3010: ("succeeded; restart the machine to complete it (exit 3010)", True),
    1641: ("succeeded; a restart is REQUIRED to complete it (exit 1641)", True),
}
VENDOR_CODES: dict[int, tuple[str, str]] = {
    1: ("ASRCTL-E060", "failed"),
    2: ("ASRCTL-E060", "invalid command line"),
    3: ("ASRCTL-E060", "invalid arguments"),
    10: ("ASRCTL-E060", "invalid install location"),
    11: ("ASRCTL-E060", "upgrade is not supported from the installed version (Microsoft supports N-4 upgrades)"),
    13: ("ASRCTL-E048", "the agent points to a different configuration server"),
    14: ("ASRCTL-E081", "invalid passphrase or configuration server endpoint"),
    15: ("ASRCTL-E045", "downgrade is not supported"),
    16: ("ASRCTL-E053", ".NET Framework is missing"),
    17: ("ASRCTL-E080", "registration failed"),
    18: ("ASRCTL-E053", "VMware Tools are missing"),
    19: ("ASRCTL-E080", "the source configuration file is not valid"),
    41: ("ASRCTL-E054", "another instance is already running"),
    42: ("ASRCTL-E010", "this operating system is not supported by the bundle"),
    43: ("ASRCTL-E062", "could not stop the agent services"),
    44: ("ASRCTL-E060", "could not start the agent services"),
    45: ("ASRCTL-E060", "installing the VSS provider failed"),
    47: ("ASRCTL-E060", "the indskflt filter is missing from UpperFilters"),
    48: ("ASRCTL-E060", "could not set the services' start type"),
    50: ("ASRCTL-E060", "VSS provider: out of memory"),
    51: ("ASRCTL-E060", "VSS provider: the service database is locked"),
    52: ("ASRCTL-E060", "VSS provider: the service already exists"),
    53: ("ASRCTL-E060", "VSS provider: the service is marked for deletion (restart the machine)"),
    54: ("ASRCTL-E060", "VSS provider: running cscript was denied"),
    55: ("ASRCTL-E060", "VSS provider: path not found"),
    56: ("ASRCTL-E060", "creating symbolic links failed"),
    57: ("ASRCTL-E060", "installing or configuring the services failed"),
    62: ("ASRCTL-E043", "a system restart is pending"),
    63: ("ASRCTL-E053", "VSS/COM+ prerequisites are missing"),
    64: ("ASRCTL-E053", "boot drivers are missing (atapi, vmbus, storflt, storvsc, intelide)"),
    65: ("ASRCTL-E060", "the Mobility Service cannot be installed on an Azure Site Recovery server"),
    75: ("ASRCTL-E060", "changing the role of an installed agent is not allowed"),
    76: ("ASRCTL-E060", "changing the platform of an installed agent is not allowed"),
    77: ("ASRCTL-E060", "CDPCLI registration failed"),
    78: ("ASRCTL-E080", "the proxy settings are not valid"),
    79: ("ASRCTL-E080", "configuring the proxy failed"),
    90: ("ASRCTL-E060", "out of memory"),
    97: ("ASRCTL-E060", "failed with errors"),
    99: ("ASRCTL-E053", "product prerequisites failed"),
    100: ("ASRCTL-E080", "the credentials file is missing"),
    101: ("ASRCTL-E080", "the credentials file is corrupt"),
    102: ("ASRCTL-E080", "the credentials file has expired"),
    103: ("ASRCTL-E060", "BIOS ID detection failed"),
    118: ("ASRCTL-E060", "BIOS ID mismatch"),
    119: ("ASRCTL-E080", "registration with the replication appliance (RCM) failed"),
    128: ("ASRCTL-E080", "logging in to the replication appliance (CSPrime) failed"),
    129: ("ASRCTL-E080", "the RCM proxy is not registered"),
    130: ("ASRCTL-E060", "getting the agent config input failed"),
    131: ("ASRCTL-E060", "unconfiguring the agent failed"),
    132: ("ASRCTL-E060", "diagnose-and-fix failed"),
}
# Windows Installer (msiexec) exit codes that matter here.
MSI_CODES: dict[int, tuple[str | None, str]] = {
    0: (None, "success"),
    3010: (None, "success; restart the machine to complete it"),
    1641: (None, "success; Windows Installer started a restart"),
    1602: ("fail", "cancelled"),
    1603: ("fail", "fatal error during installation"),
    1605: (None, "the product is not installed (nothing to remove)"),
    1618: ("ASRCTL-E054", "another installation is in progress"),
    1619: ("fail", "the package could not be opened"),
    1620: ("fail", "the package could not be opened (not a valid package)"),
    1625: ("fail", "system policy forbids this installation"),
    1638: (None, "another version of this product is already installed"),
}


def installer_outcome(rc: int, log: str = INSTALL_LOG) -> VendorOutcome:
    """What an exit code of ``UnifiedAgent.exe`` means for asrctl."""
    if rc in SUCCESS_CODES:
        warning, reboot = SUCCESS_CODES[rc]
        return VendorOutcome(ok=True, warning=warning.format(log=log) if warning else None, reboot_required=reboot)
    code, what = VENDOR_CODES.get(rc, ("ASRCTL-E060", "failed"))
    return VendorOutcome(ok=False, error_code=code, message=what)


def configurator_outcome(done: Completed) -> VendorOutcome:
    """What ``UnifiedAgentConfigurator.exe`` said: network and TLS failures from its output, then its exit code.
    A failure the installer table files under "installer failed" is a registration failure here."""
    rc, text = done.returncode, done.output
    if rc in SUCCESS_CODES:
        warning, reboot = SUCCESS_CODES[rc]
        return VendorOutcome(
            ok=True, warning=warning.format(log=CONFIGURATOR_LOG) if warning else None, reboot_required=reboot
        )
    if "(7)" in text or "Couldn't connect" in text:
        return VendorOutcome(False, error_code="ASRCTL-E082", message="could not connect to the configuration server")
    if "(60)" in text:
        return VendorOutcome(
            False,
            error_code="ASRCTL-E083",
            message="(60) Peer certificate cannot be authenticated: the configuration server's certificate was "
            "rejected (expired certificate or TLS settings)",
        )
    code, what = VENDOR_CODES.get(rc, ("ASRCTL-E080", "registration failed"))
    if code == "ASRCTL-E060":
        code = "ASRCTL-E080"
    return VendorOutcome(False, error_code=code, message=f"the configurator: {what}")


def msiexec_outcome(rc: int, failure_code: str) -> VendorOutcome:
    """What a Windows Installer exit code means; ``failure_code`` is the asrctl code of a plain failure."""
    code, what = MSI_CODES.get(rc, ("fail", "failed"))
    if code is None:
        reboot = rc in (3010, 1641)
        warning = None if rc == 0 else f"Windows Installer: {what} (exit {rc})"
        return VendorOutcome(ok=True, warning=warning, reboot_required=reboot)
    return VendorOutcome(ok=False, error_code=failure_code if code == "fail" else code, message=what)
