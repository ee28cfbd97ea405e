#!/usr/bin/env python3
"""Configuration-server / appliance stand-in for asrctl's tests (HTTPS on loopback only).

    python scripts/cs_sim.py serve --state-dir DIR --passphrase-file F [--host 127.0.0.1] [--port 0]
        [--port-file FILE] [--ps-port 0] [--cert-mode ok|expired|wrong-host] [--fail-first N]
        [--max-lifetime S] [--exit-on-stdin-eof]
    python scripts/cs_sim.py make-config --state-dir DIR --agent-input STR --out config.json
        [--endpoint HOST:PORT]

Needs the ``cryptography`` package (dev extra) for its throwaway certificates.  See
docs/SIMULATORS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asrsim.csserver import main

if __name__ == "__main__":
    sys.exit(main())
