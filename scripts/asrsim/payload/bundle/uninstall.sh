#!/bin/sh
# Simulated ASR Mobility Service uninstaller (<install dir>/uninstall.sh), POSIX sh (Microsoft's is bash).
#
# Follows Microsoft's uninstall.sh (index 12224341025; docs/SIMULATORS.md lists each behaviour and its source):
#   uninstall.sh [ -Y ] [ -L <absolute log path> ] [ -h ]        default log /var/log/ua_uninstall.log
# - Usage (also -h) exits 1; options are read only when the first word starts with '-'; a stray word after
#   the options is ignored; -L relative or starting with '-' -> 1;
# - order: options -> the question unless -Y (default N; no answer = N: "Bye...", exit 1) -> log path ->
#   presence (/usr/local/.vx_version or .fx_version, else exit 1) -> lock -> stop -> uninstall -> clean up;
# - lock <script dir>/.uninstall.lck: present with a live pid -> "already running", exit 1; a dead pid ->
#   "inconsistent state", exit 1; every exit path (SEE_LOG) removes the lock, even another run's; taking it
#   appends $$, waits (Microsoft: 1 s; here ASR_SIM_LOCK_SETTLE, default 0.2 s) and re-reads its first line;
# - stop: touches /usr/local/.norespawn_vxagent first, then <INSTALLATION_DIR>/bin/stop uninstall; only exit 2
#   aborts ("Could not stop Vx agent service", the norespawn file removed again, exit 2);
# - uninstall: (cd <INSTALLATION_DIR>/bin && ./uninstall -Y -L <log>); its exit code is ignored;
# - clean up: /usr/local/InMage/{certs,fingerprints,private}, unified_uninstall, drscout.conf.lck,
#   .norespawn_*, InMage/license.txt, /etc/.appliedmtcustomchanges, and in the install dir Third-Party_Notices.txt,
#   uninstall.sh and .uninstall.lck; exit 0. The Vx-level uninstall removes the rest (.vx_version, Vx, ...).
# - a signal (HUP INT QUIT ABRT TERM) removes the lock and exits with the status of the last command.
#
# Default locations are mapped under $ASRCTL_ROOT (unset or "/" = the real root); paths outside it are refused.

ROOT_PREFIX=${ASRCTL_ROOT:-}
[ "$ROOT_PREFIX" = / ] && ROOT_PREFIX=
ROOT_PREFIX=${ROOT_PREFIX%/}
USR_LOCAL="$ROOT_PREFIX/usr/local"
VX_VERSION_FILE="$USR_LOCAL/.vx_version"
FX_VERSION_FILE="$USR_LOCAL/.fx_version"
LOG_FILE="$ROOT_PREFIX/var/log/ua_uninstall.log"
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
LOCK_FILE="$SCRIPT_DIR/.uninstall.lck"
OS="SET_OS_PLACE_HOLER"
ASSUME_YES=0

Usage() {
    echo "Usage: $(basename "$0") [ -Y ] [ -L <absolute log path> ] [ -h ]"
    echo "  -Y  uninstall without asking"
    echo "  -L  log file (absolute path, default /var/log/ua_uninstall.log)"
    exit 1
}

Log() {
    mkdir -p "$(dirname "$LOG_FILE")" 2>/dev/null
    echo "$(date '+%Y-%m-%d %H:%M:%S') : $1 : uninstall.sh : $2" >>"$LOG_FILE" 2>/dev/null
}

# Every exit goes through here, and it removes the lock whoever took it (Microsoft's SEE_LOG).
SEE_LOG() {
    rm -f "$LOCK_FILE"
    exit "$1"
}

Say() {
    Log "$1" "$2"
    echo "$2"
}

# Refuse paths that would escape the sandbox root (only when ASRCTL_ROOT is set).
UnderRoot() {
    [ -z "$ROOT_PREFIX" ] && return 0
    case $1 in
        "$ROOT_PREFIX"/*) return 0 ;;
        *) return 1 ;;
    esac
}

# Simulator only: the command line, as a JSON list, in <root>/var/log/asrsim.calls (sandboxes only).
RecordCall() {
    [ -n "$ROOT_PREFIX" ] || return 0
    _line='["uninstall.sh"'
    for _a in "$@"; do
        _a=$(printf '%s' "$_a" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
        _line="$_line, \"$_a\""
    done
    mkdir -p "$ROOT_PREFIX/var/log" 2>/dev/null && printf '%s]\n' "$_line" >>"$ROOT_PREFIX/var/log/asrsim.calls"
}
RecordCall "$@"

case ${1:-} in
    -*)
        while getopts ":YL:h" opt; do
            case $opt in
                Y) ASSUME_YES=1 ;;
                L)
                    case $OPTARG in
                        /*) LOG_FILE=$OPTARG ;;
                        *)
                            echo "The log path must be absolute: $OPTARG"
                            Usage
                            ;;
                    esac
                    ;;
                *) Usage ;;
            esac
        done
        ;;
    "") ;;
    *) Usage ;;
esac
if ! UnderRoot "$LOG_FILE"; then
    echo "Refusing to write $LOG_FILE outside ASRCTL_ROOT=$ROOT_PREFIX"
    exit 1
fi

if [ "$ASSUME_YES" != 1 ]; then
    printf "Do you want to uninstall the Mobility Service? (Y/N) [N]: "
    ANSWER=N
    read -r ANSWER || ANSWER=N
    case $ANSWER in
        Y | y) ;;
        *)
            echo "Bye..."
            exit 1
            ;;
    esac
fi

if [ ! -f "$VX_VERSION_FILE" ] && [ ! -f "$FX_VERSION_FILE" ]; then
    Say ERROR "The Mobility Service is not installed ($VX_VERSION_FILE not found)."
    exit 1
fi
INSTALLATION_DIR=$(grep '^INSTALLATION_DIR=' "$VX_VERSION_FILE" 2>/dev/null | head -n 1 | cut -d'=' -f2-)
if [ -n "$INSTALLATION_DIR" ] && ! UnderRoot "$INSTALLATION_DIR"; then
    Say ERROR "Refusing to uninstall $INSTALLATION_DIR: outside ASRCTL_ROOT=$ROOT_PREFIX."
    exit 1
fi

# ASR_SIM_PAUSE (docs/SIMULATORS.md, simulator only): the shared helper waits at a named point of this script. Its
# text and the tools' version are kept when the knob is set (read once the install dir is known): the Vx dir the
# helper lives in is gone by "removed".
if [ -n "${ASR_SIM_PAUSE:-}" ] && [ -n "$INSTALLATION_DIR" ]; then
    PAUSE_PY=$(cat "$INSTALLATION_DIR/scripts/asrsim/asrsim_pause.py" 2>/dev/null)
    PAUSE_VERSION=$(cat "$INSTALLATION_DIR/scripts/asrsim/VERSION" 2>/dev/null)
fi
Pause() {
    [ -n "${PAUSE_PY:-}" ] && python3 -c "$PAUSE_PY" uninstall "$1" "${PAUSE_VERSION:-}"
    return 0
}

OnSignal() {
    Log ERROR "interrupted by a signal"
    [ -n "${SLEEP_PID:-}" ] && kill "$SLEEP_PID" 2>/dev/null
    rm -f "$LOCK_FILE"
    exit
}
trap OnSignal HUP INT QUIT ABRT TERM

if [ -f "$LOCK_FILE" ]; then
    HOLDER=$(head -n 1 "$LOCK_FILE" 2>/dev/null)
    if [ -n "$HOLDER" ] && kill -0 "$HOLDER" 2>/dev/null; then
        Say ERROR "Another uninstallation (pid $HOLDER) is already running."
    else
        Say ERROR "The last uninstallation left an inconsistent state ($LOCK_FILE)."
    fi
    SEE_LOG 1
fi
echo "$$" >>"$LOCK_FILE"
sleep "${ASR_SIM_LOCK_SETTLE:-0.2}"
if [ "$(head -n 1 "$LOCK_FILE" 2>/dev/null)" != "$$" ]; then
    Say ERROR "Another uninstallation started at the same time."
    SEE_LOG 1
fi
Log INFO "uninstalling the Mobility Service from ${INSTALLATION_DIR:-?}"
Pause locked

StopServices() {
    if [ "${ASR_SIM_HANG:-}" = uninstall ]; then
        # Simulates the documented hang while stopping services; dies on a signal.
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

mkdir -p "$USR_LOCAL" && : >"$USR_LOCAL/.norespawn_vxagent"
StopServices
RC=$?
if [ "$RC" -eq 2 ]; then
    rm -f "$USR_LOCAL/.norespawn_vxagent"
    Say ERROR "Could not stop Vx agent service. Retry the uninstallation later."
    SEE_LOG 2
elif [ "$RC" -ne 0 ]; then
    Log WARNING "stop returned $RC; continuing"
fi
Pause stopped

if [ -x "$INSTALLATION_DIR/bin/uninstall" ]; then
    (cd "$INSTALLATION_DIR/bin" && ./uninstall -Y -L "$LOG_FILE")
    Log INFO "Vx uninstall returned $? (ignored)"
fi
Pause removed

case $OS in
    RHEL7-64 | RHEL8-64 | RHEL9-64) Log INFO "systemctl daemon-reload (simulated)" ;;
esac
rm -rf "$USR_LOCAL/InMage/certs" "$USR_LOCAL/InMage/fingerprints" "$USR_LOCAL/InMage/private"
rm -f "$USR_LOCAL/unified_uninstall" "$USR_LOCAL/drscout.conf.lck" "$USR_LOCAL"/.norespawn_* \
    "$USR_LOCAL/InMage/license.txt" "$ROOT_PREFIX/etc/.appliedmtcustomchanges"
if [ -n "$INSTALLATION_DIR" ]; then
    INSTALL_ROOT=$(dirname "$INSTALLATION_DIR")
    rm -f "$INSTALL_ROOT/Third-Party_Notices.txt" "$INSTALL_ROOT/uninstall.sh" "$INSTALL_ROOT/.uninstall.lck"
fi
Say INFO "Mobility Service uninstalled."
SEE_LOG 0
