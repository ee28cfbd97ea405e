"""``make release``: ``dist/release/``, what is published for one version (docs/BINARY.md, "Releases").

    asrctl-<version>-linux-x86_64                  the one-file binary (dist/asrctl, renamed)
    asrctl-<version>-linux-x86_64.cdx.json         CycloneDX 1.6 SBOM of what is inside it (sbom.py)
    asrctl-<version>-release-notes.md              the "## <version>" section of CHANGELOG.md
    SHA256SUMS                                     GNU format: ``sha256sum -c SHA256SUMS`` checks the three

Run after ``make binary`` (``make release`` does both). A release is built from a commit: a tree with changes is
refused (``--allow-dirty`` for trying it out; the binary then says ``<commit>-dirty``), and so is a binary that
says it was built from another commit or version. Every file depends only on the commit and the lock -- no clock,
no random -- so two ``make release`` runs of one commit give the same bytes; the directory is replaced whole.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

from binary.build import source_commit, source_date_epoch, source_version, version_facts
from binary.common import REPO, fail, log, sha256
from binary.layers import split_final

CHANGELOG = REPO / "CHANGELOG.md"
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x03: "i686"}


def release_notes(changelog: str, version: str) -> str:
    """The ``## <version>`` section of a Keep-a-Changelog style file, heading included, up to the next ``## ``."""
    lines = changelog.splitlines()
    head = re.compile(rf"^## \[?{re.escape(version)}\]?(\s|$)")
    start = next((i for i, line in enumerate(lines) if head.match(line)), None)
    if start is None:
        raise fail(f"CHANGELOG.md has no '## {version}' section: write the release notes first")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = "\n".join(lines[start:end]).strip()
    if body == lines[start].strip():
        raise fail(f"the '## {version}' section of CHANGELOG.md is empty")
    return body + "\n"


def platform_of(binary: Path) -> str:
    """``linux-<arch>`` from the ELF header of the binary's launcher (the file says what it runs on)."""
    launcher, _payload = split_final(binary)
    if launcher[:4] != b"\x7fELF" or len(launcher) < 20:
        raise fail(f"{binary}: the launcher is not an ELF file")
    (machine,) = struct.unpack_from("<H", launcher, 18)
    if machine not in ELF_MACHINES:
        raise fail(f"{binary}: unknown ELF machine {machine:#x}")
    return f"linux-{ELF_MACHINES[machine]}"


def sha256sums(directory: Path, names: list[str]) -> str:
    """GNU coreutils format: ``<hex>, two spaces, <name>`` (text mode), one per line, sorted by name."""
    return "".join(f"{sha256(directory / name)}  {name}\n" for name in sorted(names))


def make_release(binary: Path, out: Path, allow_dirty: bool = False) -> list[Path]:
    version, commit, sde = source_version(), source_commit(), source_date_epoch()
    if (commit == "unknown" or commit.endswith("-dirty")) and not allow_dirty:
        raise fail(f"the tree is not a clean commit ({commit}): commit first (or --allow-dirty to try it out)")
    if not binary.is_file():
        raise fail(f"{binary} does not exist: run make release (it builds the binary first)")
    with tempfile.TemporaryDirectory(prefix="asrctl-release-rt-") as rt:
        facts = version_facts(binary.resolve(), Path(rt))
    said = {"version": facts.get("version"), "commit": facts.get("commit")}
    if said != {"version": version, "commit": commit}:
        raise fail(f"{binary} says it is {said}, this tree is version {version} at {commit}: rebuild it (make release)")
    notes = release_notes(CHANGELOG.read_text(encoding="utf-8"), version)
    if re.match(rf"^## \[?{re.escape(version)}\]?\s*[-—]+\s*unreleased", notes, re.I):
        log(f"WARNING: CHANGELOG.md still calls {version} unreleased: date the heading in the release commit")

    stem = f"asrctl-{version}-{platform_of(binary)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        exe = partial / stem
        shutil.copyfile(binary, exe)
        os.chmod(exe, 0o755)
        from binary.sbom import sbom_for

        (partial / f"{stem}.cdx.json").write_text(sbom_for(exe, facts), encoding="utf-8")
        (partial / f"asrctl-{version}-release-notes.md").write_text(notes, encoding="utf-8")
        names = sorted(p.name for p in partial.iterdir())
        (partial / "SHA256SUMS").write_text(sha256sums(partial, names), encoding="utf-8")
        for path in partial.iterdir():
            if path.name != stem:
                os.chmod(path, 0o644)
            os.utime(path, (sde, sde))
        os.chmod(partial, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    files = sorted(out.iterdir())
    for path in files:
        log(f"release: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}  {sha256(path)}")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m binary.release", description="Write dist/release/ (make release)")
    parser.add_argument("--binary", type=Path, default=REPO / "dist" / "asrctl", help="the built file (dist/asrctl)")
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "release", help="output directory (dist/release)")
    parser.add_argument("--allow-dirty", action="store_true", help="release a tree with uncommitted changes (a trial)")
    args = parser.parse_args(argv)
    make_release(args.binary, args.out.resolve(), args.allow_dirty)
    return 0


if __name__ == "__main__":
    sys.exit(main())
