#!/usr/bin/env python3
"""The full lifecycle, for real, against simulated bundles in a sandbox root (`make demo`).

Lays out an Ubuntu 22.04 sandbox root in a fresh temporary directory, builds two simulated Mobility Service
bundles, starts the configuration-server stand-in on free 127.0.0.1 ports (HTTPS and the process server's),
and runs the real asrctl:
detect → bundles → install → status → upgrade → status → uninstall -Y → status. Then it stops everything and
checks that nothing is left: no agent process, no stand-in, no file outside the temporary directory.

    python scripts/demo.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from asrsim import csserver  # noqa: E402
from asrsim.bundle import build_bundle  # noqa: E402
from asrsim.host import HOSTTOOLS_BIN, prepare_root  # noqa: E402

OLD, NEW = "9.65.7417.1", "9.66.7567.1"
TAG = "UBUNTU-22.04-64"


def banner(text: str) -> None:
    print(f"\n\033[1m━━ {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def asrctl(root: Path, bundles: Path, *args: str, check: bool = True) -> int:
    argv = [sys.executable, "-m", "asrctl", "--root", str(root), "--bundle-dir", str(bundles), *args]
    shown = " ".join(["asrctl", "--root", "$SANDBOX", "--bundle-dir", "$BUNDLES", *args])
    print(f"$ {shown}", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    rc = subprocess.run(argv, env=env, check=False).returncode
    if check and rc != 0:
        raise SystemExit(f"demo: asrctl {args[0]} exited {rc}")
    return rc


def lay_out_ubuntu(root: Path) -> None:
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "lsb-release").write_text(
        'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\nDISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"\n'
    )
    (etc / "os-release").write_text(
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
        'VERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n'
    )
    (etc / "debian_version").write_text("bookworm/sid\n")
    (etc / "machine-id").write_text("6d1f0c1e7a0a4c55a6b3f1d6b1c2d3e4\n")
    prepare_root(root)  # the running kernel's module directory, which Microsoft's prerequisite checker wants


def leftovers(sandbox: Path) -> list[str]:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if any(str(sandbox) in (part or "") for part in proc.info["cmdline"] or []):
                found.append(f"{proc.info['name']} (pid {proc.info['pid']})")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the sandbox directory for a look afterwards")
    args = parser.parse_args()

    sandbox = Path(tempfile.mkdtemp(prefix="asrctl-demo-"))
    root, bundles, cs_state = sandbox / "root", sandbox / "bundles", sandbox / "cs"
    bundles.mkdir()
    lay_out_ubuntu(root)
    passphrase = sandbox / "cs.passphrase"
    fd = os.open(passphrase, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("demo-Passphrase-0123\n")
    # The Azure VM agent comes from a package file beside the bundles (air-gapped hosts), installed with the
    # simulated package manager: in a sandbox asrctl never runs the host's own apt-get.
    (bundles / "walinuxagent_2.10.0.8-0ubuntu1_all.deb").write_bytes(b"simulated package\n")
    # The sandbox's own mokutil answers the prerequisite checker's Secure Boot question, never this machine's.
    os.environ["PATH"] = os.pathsep.join(
        [str(HOSTTOOLS_BIN), str(HERE / "asrsim" / "pkgtools" / "bin"), os.environ.get("PATH", "")]
    )
    print(f"sandbox: {sandbox}")
    cs = csserver.start(cs_state, passphrase, max_lifetime=600)
    try:
        banner("What host is this?")
        asrctl(root, bundles, "detect")

        banner(f"Stage the {OLD} bundle with its SHA256SUMS (on the staging host)")
        build_bundle(OLD, TAG, bundles, date="23Apr2025")
        asrctl(root, bundles, "bundles", "checksum", str(bundles))
        asrctl(root, bundles, "bundles", "list")

        banner(f"Install and register with the configuration server at {cs.endpoint}")
        # The stand-in's certificate comes from a throwaway CA: pin the server certificate's own fingerprint (the
        # first block of its PEM file, which also holds the CA). Its process server port is a free one too.
        asrctl(
            root, bundles, "install", "--cs-endpoint", cs.endpoint, "--passphrase-file", str(passphrase),
            "--cs-fingerprint", cs.fingerprint, "--ps-port", str(cs.ps_port),
        )  # fmt: skip
        asrctl(root, bundles, "status")

        banner(f"A newer bundle arrives: upgrade {OLD} → {NEW}")
        build_bundle(NEW, TAG, bundles, date="20Sep2025")
        asrctl(root, bundles, "bundles", "checksum", str(bundles))
        asrctl(root, bundles, "upgrade", "--dry-run")
        asrctl(root, bundles, "upgrade")
        asrctl(root, bundles, "status")

        banner("Uninstall")
        asrctl(root, bundles, "uninstall", "-Y")
        asrctl(root, bundles, "status")
        hosts = [h.get("hostname") for h in cs.registered()]
        print(f"\nconfiguration server registrations seen: {len(hosts)}")
    finally:
        cs.stop()
        left = leftovers(sandbox)
        if not args.keep:
            shutil.rmtree(sandbox, ignore_errors=True)
    banner("Clean up")
    if left:
        print(f"demo: processes left behind: {', '.join(left)}", file=sys.stderr)
        return 1
    print("no asrctl or agent process left; " + (f"sandbox kept at {sandbox}" if args.keep else "sandbox removed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
