"""``asrctl kernel check`` against a copy of Microsoft's real lists (tests/fixtures/supported-kernels, source and
commit in its README.md), on an Ubuntu, a Debian and a SLES host: which builds support a kernel, which dropped it,
the exit codes (0 supported, 11 unsupported, 12 unknown), and bad input refused with nothing written.

In-process (``asrctl.cli.run``), each host a copy of a distro fixture; the lists are read where they are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from asrctl.cli import run

REPO = Path(__file__).resolve().parents[2]
DISTROS = REPO / "tests/fixtures/distros"
LISTS = REPO / "tests/fixtures/supported-kernels"
A2A, ONPREM = "AzureToAzure", "OnPremiseToAzure"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("kernel-check")
    out = {}
    for distro in ("ubuntu-22.04", "debian-12.11", "debian-11.11", "sles-15-sp6"):
        shutil.copytree(DISTROS / distro, base / distro, symlinks=True)
        out[distro] = base / distro
    return out


def check(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = run(["--json", "--root", str(root), "kernel", "check", *args])
    return code, json.loads(capsys.readouterr().out)


def _builds(doc: dict, key: str) -> list[str]:
    return [b["build"] for b in doc["data"]["kernels"][0]["lists"][key]]


@pytest.mark.parametrize(
    ("distro", "kernel", "scenario", "supported_by", "dropped_by"),
    [
        # Ubuntu 22.04, OnPremiseToAzure: the lists only grow.
        ("ubuntu-22.04", "5.15.0-25-generic", ONPREM, ["9.66.7567.1", "9.66.7604.1", "9.66.7643.1"], []),
        ("ubuntu-22.04", "5.15.0-1096-azure", ONPREM, ["9.66.7604.1", "9.66.7643.1"], []),
        ("ubuntu-22.04", "6.8.0-87-generic", ONPREM, ["9.66.7643.1"], []),
        # AzureToAzure: 5.15.0-1103-azure is in 9.66.7722.1 and dropped by 9.66.7789.1.
        ("ubuntu-22.04", "5.15.0-1103-azure", A2A, ["9.66.7722.1"], ["9.66.7789.1"]),
        ("ubuntu-22.04", "5.15.0-1110-azure", A2A, ["9.66.7789.1"], []),
        # Debian 12: 6.1.0-41-* added by 9.66.7643.1 (OnPrem); in A2A, 6.1.0-39-amd64 dropped by 9.66.7808.1 and
        # 6.1.0-36-amd64 only ever in 9.65.7460.1.
        ("debian-12.11", "6.1.0-41-cloud-amd64", ONPREM, ["9.66.7643.1"], []),
        ("debian-12.11", "6.1.0-13-amd64", ONPREM, ["9.66.7567.1", "9.66.7604.1", "9.66.7643.1"], []),
        ("debian-12.11", "6.1.0-39-amd64", A2A, ["9.66.7567.1", "9.66.7799.1"], ["9.66.7808.1"]),
        ("debian-12.11", "6.1.0-36-amd64", A2A, ["9.65.7460.1"], ["9.66.7567.1"]),
        # Debian 11: 5.10.0-42-cloud-amd64 dropped by 9.66.7824.1.
        ("debian-11.11", "5.10.0-42-cloud-amd64", A2A, ["9.66.7808.1"], ["9.66.7824.1"]),
        # SLES 15: -azure kernels need their line; 9.66.7604.1 published no SLES15 list (not "unsupported").
        ("sles-15-sp6", "6.4.0-150700.20.15-azure", ONPREM, ["9.66.7643.1"], []),
        ("sles-15-sp6", "5.14.21-150400.14.49-azure", ONPREM, ["9.66.7567.1", "9.66.7643.1"], []),
    ],
)
def test_which_builds_support_a_kernel(
    roots: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    distro: str,
    kernel: str,
    scenario: str,
    supported_by: list[str],
    dropped_by: list[str],
) -> None:
    code, doc = check(roots[distro], capsys, "--kernel", kernel, "--lists", str(LISTS), "--scenario", scenario)
    assert code == 0 and doc["ok"] is True
    answer = doc["data"]["kernels"][0]
    assert (answer["kernel"], answer["status"], answer["decided_by"], answer["roles"]) == (
        kernel,
        "supported",
        "lists",
        ["given"],
    )
    assert _builds(doc, "supported_by") == supported_by
    assert _builds(doc, "dropped_by") == dropped_by
    assert all(b["scenario"] == scenario for b in answer["lists"]["builds"])
    if "sles" in distro:
        assert "9.66.7604.1" not in _builds(doc, "builds")


def test_a_dropped_kernel_says_the_latest_list_lacks_it(roots: dict[str, Path], capsys) -> None:
    code, doc = check(roots["ubuntu-22.04"], capsys, "--kernel", "5.15.0-1103-azure", "--lists", str(LISTS))
    answer = doc["data"]["kernels"][0]
    assert code == 0
    latest = {x["scenario"]: x for x in answer["lists"]["latest"]}
    assert latest[A2A] == {"scenario": A2A, "build": "9.66.7789.1", "listed": False}
    assert "not in the latest list of AzureToAzure (9.66.7789.1)" in answer["why"]


def test_sles_default_kernels_pass_without_their_line(roots: dict[str, Path], capsys) -> None:
    kernel = "6.4.0-150700.53.22-default"  # listed (SP7) by 9.66.7643.1 only; -default passes anyway
    code, doc = check(roots["sles-15-sp6"], capsys, "--kernel", kernel, "--lists", str(LISTS))
    builds = {b["build"]: b for b in doc["data"]["kernels"][0]["lists"]["builds"]}
    assert code == 0
    assert builds["9.66.7643.1"]["listed"] is True and builds["9.66.7643.1"]["sp"] == 7
    assert builds["9.66.7567.1"]["listed"] is False and builds["9.66.7567.1"]["status"] == "supported"


@pytest.mark.parametrize(
    ("distro", "kernel", "scenario", "nearest"),
    [
        ("ubuntu-22.04", "5.15.0-1109-azure", ONPREM, ["5.15.0-1096-azure", "5.15.0-1101-azure", "6.8.0-1036-azure"]),
        ("debian-12.11", "6.1.0-13-cloud-amd64", ONPREM, ["6.1.0-35-cloud-amd64", "6.1.0-39-cloud-amd64"]),
    ],
)
def test_unsupported_exits_11_with_the_nearest_kernels(
    roots: dict[str, Path], capsys, distro: str, kernel: str, scenario: str, nearest: list[str]
) -> None:
    code, doc = check(roots[distro], capsys, "--kernel", kernel, "--lists", str(LISTS), "--scenario", scenario)
    assert code == 11 and doc["ok"] is False
    assert doc["error"]["code"] == "ASRCTL-E091" and kernel in doc["error"]["message"]
    answer = doc["data"]["kernels"][0]
    assert answer["status"] == "unsupported" and answer["lists"]["supported_by"] == []
    assert answer["nearest"] == nearest


def test_sles_azure_kernel_missing_from_the_only_list_is_unsupported(roots, capsys, tmp_path: Path) -> None:
    only = tmp_path / "OnPremiseToAzure/SupportedKernels/9.66.7567.1"
    only.mkdir(parents=True)
    shutil.copy(LISTS / "MobilityAgent" / only.relative_to(tmp_path) / "SLES15-64_supported_kernels.txt", only)
    code, doc = check(roots["sles-15-sp6"], capsys, "--kernel", "6.4.0-150600.8.52-azure", "--lists", str(tmp_path))
    assert code == 11 and doc["data"]["kernels"][0]["status"] == "unsupported"


def test_no_list_for_the_tag_is_unknown_exit_12(roots, capsys) -> None:
    code, doc = check(roots["ubuntu-22.04"], capsys, "--kernel", "5.15.0-25-generic")
    assert code == 12 and doc["error"]["code"] == "ASRCTL-E092"
    assert doc["data"]["kernels"][0]["status"] == "unknown"
    code, doc = check(
        roots["ubuntu-22.04"], capsys, "--kernel", "6.8.0-1-generic", "--tag", "UBUNTU-24.04-64", "--lists", str(LISTS)
    )
    assert code == 12 and "published a list for UBUNTU-24.04-64" in doc["data"]["kernels"][0]["why"]


def test_rhel_kernels_by_rule_without_lists(capsys, tmp_path: Path) -> None:
    root = tmp_path / "rhel"
    shutil.copytree(DISTROS / "rhel-8.10", root, symlinks=True)
    code, doc = check(root, capsys, "--kernel", "4.18.0-553.22.1.el8_10.x86_64", "--kernel", "4.18.0-305.el8.x86_64")
    assert code == 11
    by = {a["kernel"]: a for a in doc["data"]["kernels"]}
    assert by["4.18.0-553.22.1.el8_10.x86_64"]["status"] == "supported"
    assert (
        by["4.18.0-305.el8.x86_64"]["status"] == "unsupported" and by["4.18.0-305.el8.x86_64"]["decided_by"] == "rules"
    )
    root9 = tmp_path / "rhel9"
    shutil.copytree(DISTROS / "rhel-9.6", root9, symlinks=True)
    code, doc = check(root9, capsys, "--kernel", "5.14.0-570.12.1.el9_6.x86_64")
    assert code == 12 and "the bundle's own checker decides" in doc["data"]["kernels"][0]["why"]


@pytest.mark.parametrize("kernel", ["5.15.0 25-generic", "../../etc/passwd", "5.15.0..1-azure", ""])
def test_a_bad_kernel_string_is_exit_2_and_nothing_is_written(roots, capsys, kernel: str) -> None:
    root = roots["ubuntu-22.04"]
    before = sorted(p for p in root.rglob("*"))
    code, doc = check(root, capsys, "--kernel", kernel, "--lists", str(LISTS))
    assert code == 2 and doc["error"]["code"] == "ASRCTL-E093"
    assert "--kernel" in doc["error"]["message"] and doc["error"]["remedy"]
    assert sorted(p for p in root.rglob("*")) == before


# Synthetic damaged copies of a real list (marked: not Microsoft's bytes).
@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (lambda b: b.replace(b"\n", b"\r\n"), 1),
        (lambda b: b.replace(b"\n", b"\n\n", 1), 2),
        (lambda b: b" " + b, 1),
    ],
    ids=["crlf", "blank-line", "leading-space"],
)
def test_a_damaged_list_is_exit_5_naming_file_and_line(roots, capsys, tmp_path: Path, damage, line: int) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(LISTS, tree)
    target = tree / "MobilityAgent/OnPremiseToAzure/SupportedKernels/9.66.7604.1/UBUNTU-22.04-64_supported_kernels.txt"
    target.write_bytes(damage(target.read_bytes()))
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    code, doc = check(roots["ubuntu-22.04"], capsys, "--kernel", "5.15.0-25-generic", "--lists", str(tree))
    assert code == 5 and doc["error"]["code"] == "ASRCTL-E094"
    assert f"{target} line {line}:" in doc["error"]["message"]
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


def test_no_final_newline_is_real_and_accepted(capsys, tmp_path: Path) -> None:
    root = tmp_path / "ub16"
    shutil.copytree(DISTROS / "ubuntu-16.04", root, symlinks=True)
    code, doc = check(root, capsys, "--kernel", "4.8.0-58-generic", "--lists", str(LISTS))
    assert code == 0
    build = doc["data"]["kernels"][0]["lists"]["builds"][0]
    assert build["listed"] is True and "never reads it" in build["note"]


@pytest.mark.parametrize(
    ("layout", "scenario"),
    [("MobilityAgent/AzureToAzure", None), ("MobilityAgent/AzureToAzure/SupportedKernels", None)],
)
def test_a_dir_pointing_at_one_scenario(roots, capsys, layout: str, scenario: str | None) -> None:
    code, doc = check(roots["ubuntu-22.04"], capsys, "--kernel", "5.15.0-1103-azure", "--lists", str(LISTS / layout))
    assert code == 0 and doc["data"]["lists"]["scenarios"] == [A2A]


def test_not_a_tree_is_exit_2(roots, capsys, tmp_path: Path) -> None:
    code, doc = check(roots["ubuntu-22.04"], capsys, "--kernel", "5.15.0-25-generic", "--lists", str(tmp_path))
    assert code == 2 and doc["error"]["code"] == "ASRCTL-E095"


def _bundle(directory: Path, kernels_text: bytes, version: str = "9.66.7567.1") -> Path:
    """A minimal Linux bundle holding a supported_kernels (its name as Microsoft's; no tool inside runs)."""
    import io
    import tarfile

    path = directory / f"Microsoft-ASR_UA_{version}_UBUNTU-22.04-64_GA_20Sep2025_release.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((".vx_version", f"VERSION={version}\n".encode()), ("supported_kernels", kernels_text)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_bundle_is_judged_as_microsofts_installer_reads_its_list(roots, capsys, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where the bundle is unpacked to read its list
    bundle = _bundle(tmp_path, b"5.15.0-1090-azure\n5.15.0-1103-azure")  # the last line has no final newline
    root = roots["ubuntu-22.04"]
    code, doc = check(root, capsys, "--bundle", str(bundle), "--kernel", "5.15.0-1090-azure", "--lists", str(LISTS))
    assert code == 0 and doc["data"]["kernels"][0]["decided_by"] == "bundle"
    code, doc = check(root, capsys, "--bundle", str(bundle), "--kernel", "5.15.0-1103-azure", "--lists", str(LISTS))
    answer = doc["data"]["kernels"][0]
    assert code == 11 and answer["decided_by"] == "bundle" and "never reads that line" in answer["why"]
    assert "9.66.7722.1 (AzureToAzure)" in doc["error"]["message"]  # the builds that do support it
    assert list(private.iterdir()) == []  # the private unpack is gone


def test_the_installed_agents_own_list_decides(capsys, tmp_path: Path) -> None:
    root = tmp_path / "sles"
    shutil.copytree(DISTROS / "sles-15-sp6", root, symlinks=True)
    vx = root / "usr/local/ASR/Vx"
    (vx / "bin/drivers").mkdir(parents=True)
    (root / "usr/local/.vx_version").write_text(f"VERSION=9.66.7567.1\nINSTALLATION_DIR={vx}\n")
    (vx / "bin/drivers/supported_kernels").write_text("6.4.0-150700.20.15-azure:7\n")
    code, doc = check(root, capsys, "--kernel", "6.4.0-150700.20.15-azure", "--kernel", "6.4.0-150700.20.16-azure")
    assert code == 11
    by = {a["kernel"]: a for a in doc["data"]["kernels"]}
    assert by["6.4.0-150700.20.15-azure"]["status"] == "supported"
    assert by["6.4.0-150700.20.16-azure"]["decided_by"] == "installed"
    assert doc["data"]["agent"]["list"].endswith("bin/drivers/supported_kernels")


def test_running_and_next_boot_kernels_by_default(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asrsim.drivers import prepare_kernel

    root = tmp_path / "ub"
    shutil.copytree(DISTROS / "ubuntu-22.04", root, symlinks=True)
    monkeypatch.setenv("ASRCTL_KERNEL", "5.15.0-1090-azure")
    prepare_kernel(root, "5.15.0-1090-azure")
    prepare_kernel(root, "5.15.0-1103-azure")
    code, doc = check(root, capsys, "--lists", str(LISTS), "--scenario", A2A)
    assert code == 0
    assert [(a["kernel"], a["roles"]) for a in doc["data"]["kernels"]] == [
        ("5.15.0-1090-azure", ["running"]),
        ("5.15.0-1103-azure", ["next_boot"]),
    ]
    assert doc["data"]["next_boot"]["source"] == "the newest installed kernel"


@pytest.mark.parametrize("tag", ["../../x", "UBUNTU-22.04-64/../..", "UBUNTU\n22", ""])
def test_a_bad_tag_is_exit_2_not_an_unknown_verdict(roots, capsys, tag: str) -> None:
    """--tag reaches a file name (asrctl's saved copy of the installed build's list) and the verdict: a string no
    bundle could be named with is the operator's typo (exit 2), not "cannot be told here" (exit 12); an empty one
    is not silently this host's."""
    root = roots["ubuntu-22.04"]
    code, doc = check(root, capsys, "--kernel", "5.15.0-1103-azure", "--lists", str(LISTS), "--tag", tag)
    assert (code, doc["error"]["code"]) == (2, "ASRCTL-E002"), doc
    assert "--tag" in doc["error"]["message"]
