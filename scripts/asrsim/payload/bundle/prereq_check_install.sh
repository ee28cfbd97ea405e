#!/bin/sh
# Simulated prereq_check_install.sh: the bundle's own prerequisite checker, POSIX sh (Microsoft's is bash).
#
# Follows Microsoft's checker (index 11978803657; docs/SIMULATORS.md has the table and what is assumed):
#   prereq_check_install.sh -r <Agent|MasterTarget> -j <errors json> [-v VMWARE|AZURE] [-l <log>]
# - run from the bundle directory: ./libcommon.sh, ./OS_details.sh, ./supported_kernels and the check list
#   ./prereq_check_installer.json are read relative to the current directory;
# - exit 2: -j missing or its directory missing, a bad switch, an empty or invalid role (the last three also log
#   ASRMobilityServiceInternalError); exit 1: ./libcommon.sh missing, an unknown CheckName or CheckType, or any
#   check failed; 0: every check passed. It does not stop at the first failure;
# - the -j file is deleted first and written only when a check fails ("no file" = "no errors").
#
# Simulated checks (the rest pass): CLocaleAvailable (`locale -a`, or ASR_SIM_LOCALES), HostNameSet
# (<root>/etc/hostname in a sandbox), SecureBoot (`mokutil --sb-state` when mokutil is on PATH), FreeSpaceOnRoot
# (`df -Pk` of the root, or ASR_SIM_FREE_KB), KernelSupported (Microsoft's per-family rules and
# ./supported_kernels), KernelDirectoryExists (<root>/lib/modules/<kernel>/kernel/drivers/char),
# CheckMTKernelVersion. ASR_SIM_PREREQ_FAIL=<CheckName>[,<CheckName>...] makes any listed check fail with
# Microsoft's error name. The kernel is ASRCTL_KERNEL in a sandbox (libcommon.sh, asrsim_kernel).

USAGE="Usage: prereq_check_install.sh -r <Agent Role, Agent or MasterTarget> -j <Output json file>"
ROLE=
JSON=
WORKFLOW=VMWARE
LOG_FILE=
BAD_SWITCH=

while getopts ":r:j:v:l:h" opt; do
    case $opt in
        r) ROLE=$OPTARG ;;
        j) JSON=$OPTARG ;;
        v) WORKFLOW=$OPTARG ;;
        l) LOG_FILE=$OPTARG ;;
        *) BAD_SWITCH=$OPTARG ;;
    esac
done

if [ -z "$JSON" ] || [ ! -d "$(dirname "$JSON")" ]; then
    echo "$USAGE"
    exit 2
fi
if [ ! -f ./libcommon.sh ]; then
    echo "./libcommon.sh not found: run this script from the directory it is in."
    exit 1
fi
. ./libcommon.sh

ROOT=$(asrsim_root)
LOG_FILE=${LOG_FILE:-$ROOT/var/log/ua_install.log}
if [ -n "$ROOT" ]; then
    for _p in "$JSON" "$LOG_FILE"; do
        case $_p in
            "$ROOT"/*) ;;
            *)
                echo "Refusing to write $_p outside ASRCTL_ROOT=$ROOT"
                exit 1
                ;;
        esac
    done
fi
mkdir -p "$(dirname "$LOG_FILE")" 2>/dev/null
rm -f "$JSON"

Log() {
    echo "$(date '+%Y-%m-%d %H:%M:%S') : $1 : prereq_check_install.sh : $2" >>"$LOG_FILE" 2>/dev/null
}

if [ -n "$BAD_SWITCH" ]; then
    Log ERROR "invalid switch -$BAD_SWITCH"
    log_to_json_errors_file "$JSON" ASRMobilityServiceInternalError "Invalid switch -$BAD_SWITCH. $USAGE"
    echo "$USAGE"
    exit 2
fi
ROLE_LC=$(printf '%s' "$ROLE" | tr '[:upper:]' '[:lower:]')
case $ROLE_LC in
    agent | mastertarget) ;;
    *)
        Log ERROR "invalid agent role '$ROLE'"
        log_to_json_errors_file "$JSON" ASRMobilityServiceInternalError "Invalid agent role '$ROLE'. $USAGE"
        echo "$USAGE"
        exit 2
        ;;
esac

OS=$(sh ./OS_details.sh 1 2>/dev/null)
KERNEL=$(asrsim_kernel)
HOST_NAME=
FAILED=0
Log INFO "prerequisite checks: role $ROLE, workflow $WORKFLOW, OS ${OS:-unknown}, kernel $KERNEL"
asrsim_pause prereq begin

Fail() {
    # Fail <error name> <message> [KEY VALUE]...
    FAILED=1
    Log ERROR "$2"
    echo "$2"
    log_to_json_errors_file "$JSON" "$@"
}

Number() {
    case $1 in '' | *[!0-9]*) echo -1 ;; *) echo "$1" ;; esac
}

# "minor": the number between the first '-' and the next '.' of the kernel release.
KernelMinor() {
    _k=${1#*-}
    Number "${_k%%.*}"
}

# RHEL8/OL8: minor 305 needs 4.18.0-305.30.1 or later, minor 348 needs 4.18.0-348.5.1 or later (dot fields 4/5).
El8Patch() {
    _minor=$(KernelMinor "$1")
    _f4=$(Number "$(printf '%s' "$1" | cut -d. -f4)")
    _f5=$(Number "$(printf '%s' "$1" | cut -d. -f5)")
    case $_minor in
        305) [ "$_f4" -gt 30 ] || { [ "$_f4" -eq 30 ] && [ "$_f5" -ge 1 ]; } ;;
        348) [ "$_f4" -gt 5 ] || { [ "$_f4" -eq 5 ] && [ "$_f5" -ge 1 ]; } ;;
        *) return 0 ;;
    esac
}

Between() {
    [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

InSupportedKernels() {
    [ -f ./supported_kernels ] || return 1
    # Like Microsoft's `while read` loop, a last line without a final newline is never read.
    while IFS= read -r _line; do
        [ "$_line" = "$1" ] && return 0
    done <./supported_kernels
    return 1
}

KernelSupported() {
    _k=$1
    case $OS in
        RHEL5-64)
            case $_k in 2.6.18*.el5 | 2.6.18*.el5xen) return 0 ;; esac ;;
        RHEL6-64)
            case $_k in 2.6.32*.el6.x86_64 | 2.6.32*.el6.centos.plus.x86_64) Between "$(KernelMinor "$_k")" 71 754 ;; *) return 1 ;; esac
            return ;;
        RHEL7-64)
            case $_k in *.el7.x86_64) return 0 ;; esac ;;
        RHEL8-64)
            case $_k in *.el8*) El8Patch "$_k"; return ;; esac ;;
        OL6-64)
            case $_k in
                2.6.32*.el6.x86_64) Between "$(KernelMinor "$_k")" 358 754; return ;;
                3.8.13*.el6uek.x86_64* | 4.1.12*.el6uek.x86_64*) return 0 ;;
            esac ;;
        OL7-64)
            case $_k in *.el7.x86_64 | *.el7uek.x86_64*) return 0 ;; esac ;;
        OL8-64)
            case $_k in
                *.el8uek.x86_64*) return 0 ;;
                *.el8*) Between "$(KernelMinor "$_k")" 80 348 && El8Patch "$_k"; return ;;
            esac ;;
        RHEL9-64 | OL9-64)
            # Assumed: Microsoft's checker of the indexed release has no RHEL9/OL9 branch (it predates them).
            case $_k in *.el9*) return 0 ;; esac ;;
        RHEL10-64 | OL10-64)
            case $_k in *.el10*) return 0 ;; esac ;;
        SLES11-SP3-64 | SLES11-SP4-64)
            case $_k in 3.0*-default | 3.0*-xen) return 0 ;; esac ;;
        SLES12-64 | SLES15-64)
            case $_k in *-default) return 0 ;; esac
            [ -f ./supported_kernels ] && grep -q "^$_k:" ./supported_kernels && return 0 ;;
        UBUNTU* | DEBIAN*)
            InSupportedKernels "$_k" && return 0 ;;
    esac
    return 1
}

Forced() {
    case ",${ASR_SIM_PREREQ_FAIL:-}," in *",$1,"*) return 0 ;; esac
    return 1
}

# What Microsoft's checker writes when the named check fails (error name and params), for ASR_SIM_PREREQ_FAIL.
ForcedFailure() {
    case $1 in
        CLocaleAvailable) Fail ASRMobilityServiceCLocaleNotAvailable "The C locale is not available." ;;
        HostNameSet) Fail ASRMobilityServiceHostNameNotSet "The host name is not set." ;;
        SecureBoot) Fail ASRMobilityServiceSecureBootEnabled "Secure Boot is enabled on $HOST_NAME." VMName "$HOST_NAME" ;;
        FreeSpaceOnRoot) Fail ASRMobilityServiceFreeSpaceOnRootNotSufficient "Not enough free space on /." FreeSpace "${P_FreeSpace:-1048576}" ;;
        LisDriversAvailable) Fail ASRMobilityServiceLisDriversNotAvailable "LIS drivers are not in the initrd." ;;
        KernelSupported) Fail ASRMobilityServiceKernelNotSupported "This version of mobility service doesn't support the operating system kernel version $KERNEL." KernelVersion "$KERNEL" ;;
        KernelDirectoryExists) Fail ASRMobilityServiceKernelDirectoryNotExist "/lib/modules/$KERNEL/kernel/drivers/char does not exist." KernelVersion "$KERNEL" ;;
        SystemDiskAvailable) Fail ASRMobilityServiceSystemDiskNotFound "The disk holding / was not found." ;;
        BootDiskAvailable) Fail ASRMobilityServiceBootDiskNotFound "The disk holding /boot was not found." ;;
        LVMPackageInstalled) Fail ASRMobilityServiceLvmPackageMissing "/ is on LVM but the LVM tools are missing." ;;
        BootOnLVMFromMultipleDisks) Fail ASRMobilityServiceBootOnLVMFromMultipleDisks "/boot is on an LV spanning several disks." LVMDevice /dev/mapper/vg-boot BootDisks "/dev/sda,/dev/sdb" ;;
        BootPartitionMounted) Fail ASRMobilityServiceBootPartitionNotMounted "The boot partition is not mounted on /boot." BootPartition /dev/sda1 ;;
        IsRootFsSupported) Fail ASRMobilityServiceUnsupportedRootFileSystem "The root file system is not supported." SupportedRootFileSystems "${P_SupportedFileSystems:-}" RootFileSystem zfs ;;
        IsBootFsSupported) Fail ASRMobilityServiceUnsupportedBootFileSystem "The boot file system is not supported." SupportedBootFileSystems "${P_SupportedFileSystems:-}" BootFileSystem zfs ;;
        DirsWritable) Fail ASRMobilityServiceDirsNotWritable "Some directories are not writable." DirList "${P_Dirs:-}" ;;
        AcpiEqualsToZeroSet) Fail ASRMobilityServiceAcpiEqualsToZeroSet "acpi=0 is set on the kernel command line." ;;
        DeviceExistInGrubFiles) Fail ASRMobilityServiceDeviceNotExist "A device named in the grub files does not exist." Device /dev/mapper/vg-lv ;;
        GrubDeviceNameChange) Fail ASRMobilityServiceGrubDeviceNameChange "The grub files name a device by its /dev name." Device /dev/sda2 ;;
        DhcpClientAvailable) Fail ASRMobilityServiceDhcpClientNotAvailable "No DHCP client is installed." Package dhclient ;;
        OldOnePassEncryption) Fail ASRMobilityServiceInstallerBlockOldOnePassEncryption "Old single-pass Azure disk encryption is in use." ;;
        RunlevelCommandCheck) Fail ASRMobilityServiceRunlevelCommandFailure "The runlevel is not 2, 3 or 5." Runlevel null ;;
        CheckMTKernelVersion) FAILED=1; Log ERROR "the master target kernel must be 4.15.*" ;;
    esac
}

RunCheck() {
    if Forced "$1"; then
        ForcedFailure "$1"
        return
    fi
    case $1 in
        CLocaleAvailable)
            _want=${P_Locale:-C}
            if [ -n "${ASR_SIM_LOCALES+set}" ]; then
                _have=$(printf '%s' "$ASR_SIM_LOCALES" | tr ', ' '\n\n')
            else
                _have=$(locale -a 2>/dev/null)
            fi
            printf '%s\n' "$_have" | grep -iqw "$_want" ||
                Fail ASRMobilityServiceCLocaleNotAvailable "The $_want locale is not available (locale -a)."
            ;;
        HostNameSet)
            HOST_NAME=$(asrsim_hostname)
            [ -n "$HOST_NAME" ] || Fail ASRMobilityServiceHostNameNotSet "The host name is not set."
            ;;
        SecureBoot)
            if command -v mokutil >/dev/null 2>&1; then
                case $(mokutil --sb-state 2>&1) in
                    *"SecureBoot enabled"*)
                        Fail ASRMobilityServiceSecureBootEnabled "Secure Boot is enabled on $HOST_NAME." VMName "$HOST_NAME"
                        ;;
                esac
            fi
            ;;
        FreeSpaceOnRoot)
            _need=${P_FreeSpace:-1048576}
            _free=${ASR_SIM_FREE_KB:-$(df -Pk "$ROOT/" 2>/dev/null | awk 'NR == 2 { print $4 }')}
            if [ "$(Number "$_free")" -lt "$_need" ]; then
                Fail ASRMobilityServiceFreeSpaceOnRootNotSufficient "Only ${_free} KB free on /; $_need KB are needed." FreeSpace "$_need"
            fi
            ;;
        KernelSupported)
            KernelSupported "$KERNEL" ||
                Fail ASRMobilityServiceKernelNotSupported "This version of mobility service doesn't support the operating system kernel version $KERNEL." KernelVersion "$KERNEL"
            ;;
        KernelDirectoryExists)
            [ -d "$ROOT/lib/modules/$KERNEL/kernel/drivers/char" ] ||
                Fail ASRMobilityServiceKernelDirectoryNotExist "/lib/modules/$KERNEL/kernel/drivers/char does not exist." KernelVersion "$KERNEL"
            ;;
        CheckMTKernelVersion)
            if [ "$OS" = UBUNTU-16.04-64 ]; then
                case $KERNEL in 4.15.*) ;; *) FAILED=1; Log ERROR "install the hwe-16.04 kernel (4.15.*) on a master target" ;; esac
            fi
            ;;
        LisDriversAvailable | SystemDiskAvailable | BootDiskAvailable | LVMPackageInstalled | \
            BootOnLVMFromMultipleDisks | BootPartitionMounted | IsRootFsSupported | IsBootFsSupported | \
            IsRootFsSupportedAzure | IsBootFsSupportedAzure | DirsWritable | AcpiEqualsToZeroSet | \
            DeviceExistInGrubFiles | GrubDeviceNameChange | DhcpClientAvailable | OldOnePassEncryption | \
            RunlevelCommandCheck)
            Log INFO "$1: not simulated, passes"
            ;;
        *)
            Log ERROR "unknown check $1"
            echo "Unknown check $1"
            exit 1
            ;;
    esac
}

# The check list: one line per entry, "CheckName|CheckType|key=value;key=value" (Microsoft reads it with jq).
CHECKS=$(python3 -c '
import json, sys
with open(sys.argv[1], encoding="utf-8") as fh:
    entries = json.load(fh)["Checks"]
for e in entries:
    params = ";".join("%s=%s" % kv for kv in (e.get("Params") or {}).items())
    print("%s|%s|%s" % (e.get("CheckName"), e.get("CheckType"), params))
' ./prereq_check_installer.json) || {
    echo "Cannot read ./prereq_check_installer.json"
    exit 1
}

OLD_IFS=$IFS
IFS='
'
for _entry in $CHECKS; do
    IFS=$OLD_IFS
    _name=${_entry%%|*}
    _rest=${_entry#*|}
    _type=${_rest%%|*}
    _params=${_rest#*|}
    [ "$_name" = None ] && continue
    case $_type in
        Common) ;;
        MobilityService) [ "$ROLE_LC" = mastertarget ] && continue ;;
        MasterTarget) [ "$ROLE_LC" = agent ] && continue ;;
        *)
            log_to_json_errors_file "$JSON" ASRMobilityServiceInternalError "Unknown CheckType $_type for $_name."
            exit 1
            ;;
    esac
    unset P_Locale P_FreeSpace P_Drivers P_SupportedFileSystems P_Dirs
    _oifs=$IFS
    IFS=';'
    for _kv in $_params; do
        case ${_kv%%=*} in
            Locale | FreeSpace | Drivers | SupportedFileSystems | Dirs) eval "P_${_kv%%=*}=\${_kv#*=}" ;;
        esac
    done
    IFS=$_oifs
    RunCheck "$_name"
done
IFS=$OLD_IFS

if [ "$FAILED" -ne 0 ]; then
    Log ERROR "prerequisite checks failed; see $JSON"
    exit 1
fi
Log INFO "prerequisite checks passed"
exit 0
