#!/bin/sh
# Simulated ASR OS detector (the decision table of asr-facts.md section 4), POSIX sh.
#
# Reads ${ASRCTL_ROOT}/etc/*release (ASRCTL_ROOT unset or "/" = the real /etc) and `uname -m`
# (ASR_SIM_ARCH overrides it). The first release file that exists decides, in this order:
# oracle-release, redhat-release, SuSE-release (VERSION 11/12), os-release (SLES/openSUSE Leap),
# lsb-release, debian_version. Every tag requires x86_64.
#
# Sourced: sets OS (empty = unsupported). Run with any argument: prints the tag (or an empty line).

_asr_root=${ASRCTL_ROOT:-}
_asr_root=${_asr_root%/}
_asr_etc="$_asr_root/etc"
_asr_arch=${ASR_SIM_ARCH:-$(uname -m)}
OS=""

# First "N" or "N.M" version that follows the word "release" in a release file.
_asr_release_version() {
    sed -n 's/.*release[[:space:]][[:space:]]*\([0-9][0-9]*\(\.[0-9][0-9]*\)\{0,1\}\).*/\1/p' "$1" | head -n 1
}

# Value of a "KEY = value" / "KEY=value" line (quotes stripped).
_asr_key() {
    sed -n "s/^$1[[:space:]]*=[[:space:]]*//p" "$2" | head -n 1 | tr -d '"'
}

_asr_split() {
    _asr_major=${1%%.*}
    case $1 in
        *.*) _asr_minor=${1#*.} ;;
        *) _asr_minor=0 ;;
    esac
    case $_asr_major in '' | *[!0-9]*) _asr_major=-1 ;; esac
    case $_asr_minor in '' | *[!0-9]*) _asr_minor=0 ;; esac
}

if [ -f "$_asr_etc/oracle-release" ]; then
    if grep -q 'Oracle Linux Server release' "$_asr_etc/oracle-release"; then
        _asr_split "$(_asr_release_version "$_asr_etc/oracle-release")"
        case $_asr_major in
            6) [ "$_asr_minor" -ge 4 ] && OS="OL6-64" ;;
            7) OS="OL7-64" ;;
            8) OS="OL8-64" ;;
            9) [ "$_asr_minor" -le 6 ] && OS="OL9-64" ;;
            10) [ "$_asr_minor" -eq 0 ] && OS="OL10-64" ;;
        esac
    fi
elif [ -f "$_asr_etc/redhat-release" ]; then
    _asr_line=$(head -n 1 "$_asr_etc/redhat-release")
    _asr_split "$(_asr_release_version "$_asr_etc/redhat-release")"
    case $_asr_line in
        "Red Hat Enterprise Linux Server release "* | "Red Hat Enterprise Linux Workstation release "*) _asr_family=rhel_sw ;;
        "Red Hat Enterprise Linux release "*) _asr_family=rhel ;;
        "CentOS release "*) _asr_family=centos_old ;;
        "CentOS Linux release "*) _asr_family=centos ;;
        "Rocky Linux release "* | "AlmaLinux release "*) _asr_family=clone ;;
        *) _asr_family=none ;;
    esac
    case $_asr_family:$_asr_major in
        rhel_sw:5 | centos_old:5)
            [ "$_asr_minor" -ge 2 ] && [ "$_asr_minor" -le 11 ] && OS="RHEL5-64" ;;
        rhel_sw:6 | centos_old:6 | centos:6) OS="RHEL6-64" ;;
        rhel_sw:7 | centos:7) OS="RHEL7-64" ;;
        rhel:8 | centos:8 | clone:8) OS="RHEL8-64" ;;
        rhel:9 | centos:9 | clone:9) [ "$_asr_minor" -le 8 ] && OS="RHEL9-64" ;;
        rhel:10 | clone:10) [ "$_asr_minor" -eq 0 ] && OS="RHEL10-64" ;;
    esac
elif [ -f "$_asr_etc/SuSE-release" ] &&
    { [ "$(_asr_key VERSION "$_asr_etc/SuSE-release")" = 11 ] || [ "$(_asr_key VERSION "$_asr_etc/SuSE-release")" = 12 ]; }; then
    _asr_v=$(_asr_key VERSION "$_asr_etc/SuSE-release")
    _asr_pl=$(_asr_key PATCHLEVEL "$_asr_etc/SuSE-release")
    case $_asr_v:$_asr_pl in
        11:3) OS="SLES11-SP3-64" ;;
        11:4) OS="SLES11-SP4-64" ;;
        12:*) OS="SLES12-64" ;;
    esac
elif [ -f "$_asr_etc/os-release" ] && grep -Eq 'SLES|openSUSE Leap' "$_asr_etc/os-release"; then
    case $(_asr_key VERSION "$_asr_etc/os-release") in
        15*) OS="SLES15-64" ;;
    esac
elif [ -f "$_asr_etc/lsb-release" ]; then
    case $(_asr_key DISTRIB_RELEASE "$_asr_etc/lsb-release") in
        14.04 | 16.04 | 18.04 | 20.04 | 22.04 | 24.04)
            OS="UBUNTU-$(_asr_key DISTRIB_RELEASE "$_asr_etc/lsb-release")-64" ;;
    esac
elif [ -f "$_asr_etc/debian_version" ]; then
    _asr_split "$(head -n 1 "$_asr_etc/debian_version")"
    case $_asr_major in
        7 | 8 | 9 | 10 | 11 | 12) OS="DEBIAN${_asr_major}-64" ;;
    esac
fi

if [ "$_asr_arch" != "x86_64" ]; then
    OS=""
fi

if [ $# -gt 0 ]; then
    echo "$OS"
fi
