#!/bin/sh
# Simulated ASR Mobility Service root uninstaller (<install dir>/uninstall.sh), POSIX sh.
#
# Usage: uninstall.sh [-Y] [-L <absolute log path>] [-h]
# Exit 0 success; 1 nothing installed, lock held (.uninstall.lck next to this script), user said
# N (no terminal = N), bad arguments or a failed payload uninstall; 2 services could not be
# stopped (<Vx>/bin/stop uninstall returned 2) - the installation is left in place.
#
# Default locations are mapped under $ASRCTL_ROOT (unset or "/" = the real root).

ROOT_PREFIX=${ASRCTL_ROOT:-}
ROOT_PREFIX=${ROOT_PREFIX%/}
VX_VERSION_FILE="$ROOT_PREFIX/usr/local/.vx_version"
LOG_FILE="$ROOT_PREFIX/var/log/ua_uninstall.log"
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
SCRIPT_PATH="$SCRIPT_DIR/$(basename "$0")"
LOCK_FILE="$SCRIPT_DIR/.uninstall.lck"
LOCK_TAKEN=0
ASSUME_YES=0

Usage() {
    echo "Usage: $(basename "$0") [-Y] [-L <absolute log path>] [-h]"
    echo "  -Y  uninstall without asking"
    echo "  -L  log file (absolute path, default /var/log/ua_uninstall.log)"
    echo "  -h  this help"
}

Log() {
    mkdir -p "$(dirname "$LOG_FILE")" 2>/dev/null
    echo "$(date '+%Y-%m-%d %H:%M:%S') : $1 : uninstall.sh : $2" >>"$LOG_FILE" 2>/dev/null
}

Fail() {
    # Fail <exit code> <message>
    Log ERROR "$2"
    echo "$2" >&2
    ReleaseLock
    exit "$1"
}

ReleaseLock() {
    if [ "$LOCK_TAKEN" = 1 ]; then
        rm -f "$LOCK_FILE"
        LOCK_TAKEN=0
    fi
}

OnSignal() {
    Log ERROR "interrupted by signal"
    [ -n "${SLEEP_PID:-}" ] && kill "$SLEEP_PID" 2>/dev/null
    ReleaseLock
    exit "$1"
}

# Refuse paths that would escape the sandbox root (only when ASRCTL_ROOT is set).
UnderRoot() {
    [ -z "$ROOT_PREFIX" ] && return 0
    case $1 in
        "$ROOT_PREFIX"/*) return 0 ;;
        *) return 1 ;;
    esac
}

while getopts ":YL:h" opt; do
    case $opt in
        Y) ASSUME_YES=1 ;;
        L)
            case $OPTARG in
                /*) LOG_FILE=$OPTARG ;;
                *)
                    echo "The log path must be absolute: $OPTARG" >&2
                    Usage >&2
                    exit 1
                    ;;
            esac
            ;;
        h)
            Usage
            exit 0
            ;;
        :)
            echo "Option -$OPTARG needs a value." >&2
            Usage >&2
            exit 1
            ;;
        *)
            echo "Invalid option: -$OPTARG" >&2
            Usage >&2
            exit 1
            ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
    echo "Unexpected argument(s): $*" >&2
    Usage >&2
    exit 1
fi
if ! UnderRoot "$LOG_FILE"; then
    echo "Refusing to write $LOG_FILE outside ASRCTL_ROOT=$ROOT_PREFIX" >&2
    exit 1
fi

if [ ! -f "$VX_VERSION_FILE" ]; then
    Fail 1 "Mobility Service is not installed ($VX_VERSION_FILE not found)."
fi
INSTALLATION_DIR=$(grep '^INSTALLATION_DIR=' "$VX_VERSION_FILE" | head -n 1 | cut -d'=' -f2-)
case $INSTALLATION_DIR in
    /*) ;;
    *) Fail 1 "Installation is inconsistent: INSTALLATION_DIR is missing in $VX_VERSION_FILE." ;;
esac
if ! UnderRoot "$INSTALLATION_DIR"; then
    Fail 1 "Refusing to uninstall $INSTALLATION_DIR: outside ASRCTL_ROOT=$ROOT_PREFIX."
fi
if [ -e "$LOCK_FILE" ]; then
    Fail 1 "Another uninstallation is running or the last one was interrupted ($LOCK_FILE exists)."
fi

if [ "$ASSUME_YES" != 1 ]; then
    ANSWER=N
    if [ -t 0 ]; then
        printf "Do you want to uninstall the Mobility Service? (Y/N) [N]: "
        read -r ANSWER || ANSWER=N
    fi
    case $ANSWER in
        Y | y | yes | YES | Yes) ;;
        *) Fail 1 "Uninstallation cancelled (answer: N)." ;;
    esac
fi

: >"$LOCK_FILE" || Fail 1 "Cannot create $LOCK_FILE."
LOCK_TAKEN=1
trap 'OnSignal 143' TERM
trap 'OnSignal 130' INT
Log INFO "uninstalling the Mobility Service from $INSTALLATION_DIR"

StopServices() {
    if [ "${ASR_SIM_HANG:-}" = uninstall ]; then
        # Simulates the documented hang while stopping services; dies on SIGTERM/SIGINT.
        Log INFO "ASR_SIM_HANG=uninstall: hanging while stopping services"
        while :; do
            sleep 1 &
            SLEEP_PID=$!
            wait "$SLEEP_PID"
        done
    fi
    if [ -x "$INSTALLATION_DIR/bin/stop" ]; then
        "$INSTALLATION_DIR/bin/stop" uninstall
        return $?
    fi
    return 0
}

StopServices
RC=$?
if [ "$RC" -eq 2 ]; then
    Fail 2 "The Mobility Service services could not be stopped. Retry the uninstallation later."
elif [ "$RC" -ne 0 ]; then
    Log WARNING "stop returned $RC; continuing"
fi

mkdir -p "$ROOT_PREFIX/usr/local" && : >"$ROOT_PREFIX/usr/local/.norespawn_vxagent"

if [ -x "$INSTALLATION_DIR/bin/uninstall" ]; then
    "$INSTALLATION_DIR/bin/uninstall" -Y -L "$LOG_FILE"
    RC=$?
    if [ "$RC" -ne 0 ]; then
        Fail 1 "Uninstallation of $INSTALLATION_DIR failed (exit $RC); see $LOG_FILE."
    fi
fi

rm -rf "$ROOT_PREFIX/usr/local/InMage/certs" "$ROOT_PREFIX/usr/local/InMage/fingerprints" \
    "$ROOT_PREFIX/usr/local/InMage/private"
rmdir "$ROOT_PREFIX/usr/local/InMage" 2>/dev/null
rm -f "$ROOT_PREFIX/usr/local/drscout.conf.lck" "$ROOT_PREFIX"/usr/local/.norespawn_* "$VX_VERSION_FILE"
Log INFO "Mobility Service uninstalled"
echo "Mobility Service uninstalled successfully."
ReleaseLock
rm -f "$SCRIPT_PATH"
rmdir "$SCRIPT_DIR" 2>/dev/null
exit 0
