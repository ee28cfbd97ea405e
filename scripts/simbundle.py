#!/usr/bin/env python3
"""Build simulated Mobility Service bundles.

    python scripts/simbundle.py build --version 9.66.7567.1 --tag UBUNTU-22.04-64 \
        [--date 20Sep2025] --out DIR [--pad-mb N] [--name-version 9.66.0.0] [--compression lzma]

Prints the path of the bundle it wrote.  See docs/SIMULATORS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asrsim.bundle import COMPRESSIONS, DEFAULT_DATE, build_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simbundle.py", description="Simulated ASR Mobility Service bundles")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write Microsoft-ASR_UA_<version>_<TAG>_GA_<date>_release.tar.gz")
    build.add_argument("--version", required=True, help="agent version, e.g. 9.66.7567.1")
    build.add_argument("--tag", required=True, help="bundle OS tag, e.g. UBUNTU-22.04-64")
    build.add_argument("--date", default=DEFAULT_DATE, help=f"release date DDMonYYYY (default {DEFAULT_DATE})")
    build.add_argument("--out", required=True, type=Path, help="output directory")
    build.add_argument("--pad-mb", type=int, default=0, help="add N MiB of incompressible filler (benchmarks)")
    build.add_argument("--name-version", help="version used in the file name only (e.g. 9.66.0.0)")
    build.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        help="how the tar is packed (default: Microsoft's per tag, asrsim.bundle.default_compression); the name "
        "says .tar.gz either way",
    )
    args = parser.parse_args(argv)
    try:
        path = build_bundle(
            args.version,
            args.tag,
            args.out,
            date=args.date,
            pad_mb=args.pad_mb,
            name_version=args.name_version,
            compression=args.compression,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
