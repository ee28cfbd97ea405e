# Simulated libcommon.sh: the shell library Microsoft's bundle ships at its top level and in <Vx>/bin.
# POSIX sh; sourced (". ./libcommon.sh") by prereq_check_install.sh, relative to the current directory as
# Microsoft's checker does, and run by the Python tools for the one function they share (the JSON errors file).
#
# What the simulator keeps here:
#   log_to_json_errors_file FILE NAME MESSAGE [KEY VALUE]...   Microsoft's extended-errors file (shape below)
#   asrsim_root / asrsim_kernel / asrsim_hostname              the sandbox's view of this host
#   asrsim_pause TOOL POINT                                    ASR_SIM_PAUSE for the bundle's shell tools
#
# The errors file has Microsoft's exact shape (index 11958283975, log_to_json_errors_file): created on the first
# error only, later errors spliced in before the closing "]", every value a string, nothing escaped.

# The sandbox root ("" for the real root): vendor default paths live under it (docs/SIMULATORS.md).
asrsim_root() {
    _asr_r=${ASRCTL_ROOT:-}
    [ "$_asr_r" = / ] && _asr_r=
    printf '%s' "${_asr_r%/}"
}

# The running kernel as this host sees it: in a sandbox ASRCTL_KERNEL (the variable asrctl's own detection
# honours there) when it is set, else `uname -r`.
asrsim_kernel() {
    if [ -n "$(asrsim_root)" ] && [ -n "${ASRCTL_KERNEL:-}" ]; then
        printf '%s' "$ASRCTL_KERNEL"
    else
        uname -r
    fi
}

# `hostname` as the checker sees it: in a sandbox the first line of <root>/etc/hostname when that file exists
# (an empty file is an empty host name), else the real one.
asrsim_hostname() {
    _asr_r=$(asrsim_root)
    if [ -n "$_asr_r" ] && [ -f "$_asr_r/etc/hostname" ]; then
        head -n 1 "$_asr_r/etc/hostname" | tr -d '\r\n'
    else
        hostname 2>/dev/null
    fi
}

# ASR_SIM_PAUSE=<tool>:<point> (docs/SIMULATORS.md, "Pausing at a step"; simulator only): the shared helper,
# the Vx payload's scripts/asrsim/asrsim_pause.py, read from the bundle's payload (tar or RPM-shaped, both tar
# inside) named by ./.vx_version, as ./install loads it; run from the bundle dir. Returns at once when unset.
asrsim_pause() {
    [ -n "${ASR_SIM_PAUSE:-}" ] && [ -f ./.vx_version ] || return 0
    python3 -B -c '
import sys, tarfile
with open(".vx_version", encoding="utf-8") as fh:
    build = dict(line.rstrip("\n").split("=", 1) for line in fh if "=" in line)
with tarfile.open(build.get("TAR_FILE_NAME") or build.get("RPM_NAME") or "", "r:") as tar:
    source = tar.extractfile("scripts/asrsim/asrsim_pause.py").read()
helper = {"__name__": "asrsim_pause", "BUNDLE_VERSION": build.get("VERSION", "")}
exec(compile(source, "asrsim_pause.py", "exec"), helper)
helper["pause"](sys.argv[1], sys.argv[2])
' "$1" "$2"
    return 0
}

log_to_json_errors_file() {
    _asr_file=$1
    _asr_name=$2
    _asr_msg=$3
    shift 3
    _asr_params=
    while [ $# -ge 2 ]; do
        _asr_params="${_asr_params:+$_asr_params,}\"$1\":\"$2\""
        shift 2
    done
    _asr_entry=$(printf '\t\t{\n\t\t\t"error_name":"%s",\n\t\t\t"error_params":{%s},\n\t\t\t"default_message":"%s"\n\t\t}' \
        "$_asr_name" "$_asr_params" "$_asr_msg")
    if [ ! -s "$_asr_file" ]; then
        printf '{\n\t"Errors":\n\t[\n%s\n\t]\n}\n' "$_asr_entry" >"$_asr_file"
        return
    fi
    # Splice: drop the closing "\t]" and "}", put a comma after the last entry, append, close again.
    _asr_tmp="$_asr_file.tmp.$$"
    sed -e '$d' "$_asr_file" | sed -e '$d' | sed -e '$s/$/,/' >"$_asr_tmp" &&
        printf '%s\n\t]\n}\n' "$_asr_entry" >>"$_asr_tmp" &&
        mv -f "$_asr_tmp" "$_asr_file"
}
