"""Runs inside a fresh namespace for tests/binary (started by ``unshare``; stdlib only).

    unshare --mount --propagation private -- python nsexec.py run  < SPEC.json   # JSON report on stdout
    unshare --net -- python nsexec.py hold                                       # lo up, "ready", wait for EOF

SPEC: {"lo_up": bool, "mounts": [[fstype, target, options]], "probe_exec": DIR,
       "runs": [{"argv": [...], "env": {...}, "timeout": S}], "list": [DIR, ...]}
Report: {"probe_exec": {"dir", "errno"}, "runs": [{"argv", "returncode", "stdout", "stderr"}],
         "list": {DIR: {"mode": "0o700", "entries": [relative paths]}}}
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def lo_up() -> None:
    """Bring the loopback interface of this network namespace up (a new one starts with it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def probe_exec(directory: str) -> int:
    """Copy /bin/true into ``directory`` and run it: 0 when that works, else the errno (EACCES on noexec)."""
    target = os.path.join(directory, "probe-true")
    shutil.copy(shutil.which("true") or "/bin/true", target)
    os.chmod(target, 0o755)
    try:
        subprocess.run([target], check=True)
        return 0
    except OSError as exc:
        return exc.errno or -1
    finally:
        os.unlink(target)


def listing(directory: str) -> dict[str, object]:
    if not os.path.isdir(directory):
        return {"mode": None, "entries": None}
    entries = []
    for base, dirs, files in os.walk(directory):
        for name in dirs + files:
            entries.append(os.path.relpath(os.path.join(base, name), directory))
    return {"mode": oct(os.stat(directory).st_mode & 0o7777), "entries": sorted(entries)}


def run(spec: dict) -> dict:
    report: dict = {"runs": [], "list": {}}
    if spec.get("lo_up"):
        lo_up()
    for fstype, target, options in spec.get("mounts", []):
        subprocess.run(["mount", "-t", fstype, "-o", options, fstype, target], check=True)
    if spec.get("probe_exec"):
        report["probe_exec"] = {"dir": spec["probe_exec"], "errno": probe_exec(spec["probe_exec"])}
    for item in spec.get("runs", []):
        proc = subprocess.run(
            item["argv"],
            env=item.get("env"),
            capture_output=True,
            text=True,
            timeout=item.get("timeout", 120),
            stdin=subprocess.DEVNULL,
            cwd=item.get("cwd"),
        )
        report["runs"].append(
            {"argv": item["argv"], "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
        )
    for directory in spec.get("list", []):
        report["list"][directory] = listing(directory)
    return report


def hold() -> int:
    lo_up()
    print("ready", flush=True)
    while sys.stdin.buffer.read(4096):
        pass
    return 0


def main() -> int:
    if sys.argv[1:] == ["run"]:
        json.dump(run(json.load(sys.stdin)), sys.stdout)
        return 0
    if sys.argv[1:] == ["hold"]:
        return hold()
    print(__doc__, file=sys.stderr)
    return errno.EINVAL


if __name__ == "__main__":
    sys.exit(main())
