"""The fault-injection counts in docs/RELIABILITY.md and README are the suite's, not typed by hand: the families are
the suite's, the number of cases per family is what pytest collects (all of them, and the default part `make test`
runs), and every case holds. `make faults-report` rewrites both tables from a run (scripts/fault_report.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `([a-z0-9-]+)` \| .* \| (\d+) \| (\d+)(?: \((\d+) skipped\))? \| (\d+) \|$")


def _table(path: Path) -> dict[str, tuple[int, int, int, int]]:
    text = path.read_text(encoding="utf-8")
    block = text.split("<!-- faults:begin -->", 1)[1].split("<!-- faults:end -->", 1)[0]
    rows = {}
    for line in block.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), int(m.group(4) or 0), int(m.group(5)))
    return rows


def _collected(everything: bool, tmp_path: Path) -> dict[str, int]:
    out = tmp_path / ("all.json" if everything else "default.json")
    env = {k: v for k, v in os.environ.items() if k != "ASRCTL_FAULTS"}
    env["ASRCTL_FAULT_COLLECTED"] = str(out)
    if everything:
        env["ASRCTL_FAULTS"] = "all"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", "tests/faults"],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return {k: int(v) for k, v in json.loads(out.read_text()).items()}


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[str, tuple[int, int, int, int]]]:
    return {name: _table(REPO / name) for name in ("docs/RELIABILITY.md", "README.md")}


def test_both_documents_carry_the_same_generated_table(tables: dict[str, dict[str, tuple[int, int, int, int]]]) -> None:
    assert tables["docs/RELIABILITY.md"], "run `make faults-report`: docs/RELIABILITY.md has no counts"
    assert tables["docs/RELIABILITY.md"] == tables["README.md"]


def test_the_table_is_the_suite_as_collected_and_every_case_holds(
    tables: dict[str, dict[str, tuple[int, int, int, int]]], tmp_path: Path
) -> None:
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
    from faults.conftest import FAMILIES

    table = tables["docs/RELIABILITY.md"]
    assert list(table) == list(FAMILIES)
    everything, default = _collected(True, tmp_path), _collected(False, tmp_path)
    for family, (cases, hold, skipped, in_default) in table.items():
        assert cases == everything.get(family, 0), f"{family}: the docs say {cases} cases; run `make faults-report`"
        assert in_default == default.get(family, 0), f"{family}: the default part changed; run `make faults-report`"
        assert hold + skipped == cases, f"{family}: {cases - hold - skipped} case(s) do not hold"
