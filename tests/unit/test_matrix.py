"""The support matrix, table-driven: which bundle OS tag a host gets, or why it is refused.

Three sources of facts: the fixture trees under tests/fixtures/distros/ (real release files, read through
``collect_linux``), hand-written release-file texts for the edges of Microsoft's detector (OS_details.sh), and
Windows version tuples fed to ``collect_windows``.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest

from asrctl.facts import HostFacts, collect_linux, collect_windows, identify
from asrctl.matrix import Platform, Unsupported, load_matrix, select
from asrctl.system.paths import Paths

DISTROS = Path(__file__).resolve().parent.parent / "fixtures" / "distros"
CASES: list[dict[str, Any]] = tomllib.loads((DISTROS / "EXPECTED.toml").read_text(encoding="utf-8"))["case"]
Uname = namedtuple("Uname", "system node release version machine")

# The tags Microsoft publishes bundles for (agent 9.64-9.66), plus the two only the detector knows so far.
PUBLISHED = {
    *(f"DEBIAN{n}-64" for n in range(7, 13)),
    *(f"OL{n}-64" for n in range(6, 10)),
    *(f"RHEL{n}-64" for n in range(5, 10)),
    "SLES11-SP3-64",
    "SLES11-SP4-64",
    "SLES12-64",
    "SLES15-64",
    *(f"UBUNTU-{v}-64" for v in ("14.04", "16.04", "18.04", "20.04", "22.04", "24.04")),
}
DETECTOR_ONLY = {"OL10-64", "RHEL10-64"}

# A refusal must tell the operator what to do next: one of these phrases.
ACTIONABLE = re.compile(
    r"bundles exist for|update|upgrade|install|use |only |check|point --root|reinstall|not supported",
    re.IGNORECASE,
)


def _case_id(case: dict[str, Any]) -> str:
    return case["tree"] + (f"@{case['arch']}" if "arch" in case else "")


def facts_from_tree(tree: str, arch: str = "x86_64") -> HostFacts:
    return collect_linux(
        Paths.for_root(DISTROS / tree),
        {"ASRCTL_ARCH": arch},
        uname=lambda: Uname("Linux", "host", "6.1.0-test", "#1", "x86_64"),
        is_admin=lambda: True,
    )


def linux(
    files: dict[str, str], arch: str = "x86_64", distro_id: str = "", name: str = "", version: str = ""
) -> HostFacts:
    """Facts as collect_linux would build them from these release-file texts (id/name/version overridable)."""
    ident, shown, ver, _ = identify(files)
    return HostFacts(
        os_family="linux",
        distro_id=distro_id or ident,
        distro_name=name or shown,
        version=version or ver,
        arch=arch,
        kernel="5.14.0",
        is_admin=True,
        root="/sandbox",
        release_files=files,
    )


def assert_actionable(reason: str | None) -> None:
    assert reason, "a refusal needs a reason"
    assert len(reason) > 30, reason
    assert "{" not in reason and "}" not in reason, f"unformatted placeholder in {reason!r}"
    assert ACTIONABLE.search(reason), f"reason says nothing the operator can act on: {reason!r}"


# --- the fixture trees ---------------------------------------------------------------------------------------


def test_every_fixture_tree_has_an_expectation_and_vice_versa() -> None:
    trees = {p.name for p in DISTROS.iterdir() if p.is_dir()}
    expected = {c["tree"] for c in CASES}
    assert trees - expected == set(), "fixture trees without a [[case]] in EXPECTED.toml"
    assert expected - trees == set(), "cases in EXPECTED.toml without a fixture tree"
    assert len(CASES) >= 70


def test_fixtures_cover_every_tag_and_enough_refusals() -> None:
    tags = {c["tag"] for c in CASES if "tag" in c}
    assert tags == PUBLISHED | DETECTOR_ONLY
    assert sum(1 for c in CASES if "refused" in c) >= 10


@pytest.mark.parametrize("case", [c for c in CASES if "error" not in c], ids=_case_id)
def test_fixture_tree(case: dict[str, Any]) -> None:
    facts = facts_from_tree(case["tree"], case.get("arch", "x86_64"))
    plat = select(facts)
    assert facts.distro_id == case["distro_id"]
    if "version" in case:
        assert facts.version == case["version"]
    if "tag" in case:
        assert isinstance(plat, Platform), getattr(plat, "reason", None)
        assert plat.supported and plat.reason is None
        assert plat.os_tag == case["tag"]
        if case["warning"]:
            assert any(case["warning"] in w for w in plat.warnings), plat.warnings
        else:
            assert plat.warnings == ()
    else:
        assert isinstance(plat, Unsupported)
        assert not plat.supported and plat.os_tag is None
        assert case["refused"] in (plat.reason or "")
        assert_actionable(plat.reason)


def test_directory_os_release_is_a_read_error_not_a_refusal() -> None:
    from asrctl.errors import AsrctlError

    with pytest.raises(AsrctlError) as err:
        facts_from_tree("os-release-is-a-directory")
    assert err.value.code == "ASRCTL-E011"
    assert err.value.exit_code == 3
    assert "is a directory" in err.value.message


# --- hand-written release files: the edges of OS_details.sh ---------------------------------------------------

OSR_SLES = 'NAME="SLES"\nVERSION="{v}"\nVERSION_ID="{vid}"\nID="sles"\n'
LSB = "DISTRIB_ID={id}\nDISTRIB_RELEASE={v}\nDISTRIB_CODENAME=x\n"

LINUX_TABLE: list[tuple[str, dict[str, str], str, str]] = [
    # (id, release files, expected tag or "", refusal substring or "")
    # Oracle first: OL also has a Red Hat /etc/redhat-release, which must not decide.
    (
        "ol8-with-rhel-redhat-release",
        {
            "/etc/oracle-release": "Oracle Linux Server release 8.9\n",
            "/etc/redhat-release": "Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
        },
        "OL8-64",
        "",
    ),
    ("ol6.4-lower-bound", {"/etc/oracle-release": "Oracle Linux Server release 6.4\n"}, "OL6-64", ""),
    # 6.10 > 6.4 numerically (a string compare would say "6.10" < "6.4"); OS_details.sh compares 610 >= 64.
    ("ol6.10-numeric-compare", {"/etc/oracle-release": "Oracle Linux Server release 6.10\n"}, "OL6-64", ""),
    ("ol6-no-minor", {"/etc/oracle-release": "Oracle Linux Server release 6\n"}, "", "needs Oracle Linux 6.4 or later"),
    ("ol9.6-upper-bound", {"/etc/oracle-release": "Oracle Linux Server release 9.6\n"}, "OL9-64", ""),
    ("ol9.10-too-new", {"/etc/oracle-release": "Oracle Linux Server release 9.10\n"}, "", "up to 9.6"),
    ("ol10.1-too-new", {"/etc/oracle-release": "Oracle Linux Server release 10.1\n"}, "", "up to 10.0"),
    (
        "ol5-unlisted",
        {"/etc/oracle-release": "Oracle Linux Server release 5.11\n"},
        "",
        "bundles exist for Oracle Linux 6.4+",
    ),
    ("ol-garbled", {"/etc/oracle-release": "Oracle Linux\n"}, "", "not an Oracle Linux Server release"),
    (
        "rhel5.2-lower-bound",
        {"/etc/redhat-release": "Red Hat Enterprise Linux Server release 5.2 (Tikanga)\n"},
        "RHEL5-64",
        "",
    ),
    (
        "rhel5.10-numeric",
        {"/etc/redhat-release": "Red Hat Enterprise Linux Server release 5.10 (Tikanga)\n"},
        "RHEL5-64",
        "",
    ),
    ("centos5.0", {"/etc/redhat-release": "CentOS release 5 (Final)\n"}, "", "needs 5.2 or later"),
    (
        "rhel5-client",
        {"/etc/redhat-release": "Red Hat Enterprise Linux Client release 5.11 (Tikanga)\n"},
        "",
        "not a release Microsoft's detector recognises",
    ),
    (
        "rhel7-client",
        {"/etc/redhat-release": "Red Hat Enterprise Linux Client release 7.9 (Maipo)\n"},
        "",
        "Server/Workstation",
    ),
    (
        "rhel7-workstation",
        {"/etc/redhat-release": "Red Hat Enterprise Linux Workstation release 7.9 (Maipo)\n"},
        "RHEL7-64",
        "",
    ),
    ("centos-linux-6", {"/etc/redhat-release": "CentOS Linux release 6.0 (Final)\n"}, "RHEL6-64", ""),
    ("rhel9.0-lower-bound", {"/etc/redhat-release": "Red Hat Enterprise Linux release 9.0 (Plow)\n"}, "RHEL9-64", ""),
    ("rhel9.8-upper-bound", {"/etc/redhat-release": "Red Hat Enterprise Linux release 9.8 (Plow)\n"}, "RHEL9-64", ""),
    ("rhel9.10-too-new", {"/etc/redhat-release": "Red Hat Enterprise Linux release 9.10 (Plow)\n"}, "", "up to 9.8"),
    ("alma10.1-too-new", {"/etc/redhat-release": "AlmaLinux release 10.1 (Heliotrope Lion)\n"}, "", "up to 10.0"),
    ("centos-stream-8", {"/etc/redhat-release": "CentOS Stream release 8\n"}, "", "CentOS Stream is not supported"),
    ("rhel-empty-file", {"/etc/redhat-release": ""}, "", "(empty file)"),
    (
        "sles11-sp1",
        {"/etc/SuSE-release": "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 1\n"},
        "",
        "SLES 11 needs SP3 or SP4",
    ),
    (
        "sles12-ga",
        {"/etc/SuSE-release": "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 0\n"},
        "SLES12-64",
        "",
    ),
    # SuSE-release for something else (SLES 10): OS_details.sh goes on to /etc/os-release.
    (
        "suse-release-10-falls-through",
        {"/etc/SuSE-release": "SUSE Linux Enterprise Server 10 (x86_64)\nVERSION = 10\nPATCHLEVEL = 4\n"},
        "",
        "SUSE Linux Enterprise Server 10.4 is not supported by Azure Site Recovery",
    ),
    ("sles12-sp4-os-release-only", {"/etc/os-release": OSR_SLES.format(v="12-SP4", vid="12.4")}, "SLES12-64", ""),
    ("sles15-sp7", {"/etc/os-release": OSR_SLES.format(v="15-SP7", vid="15.7")}, "SLES15-64", ""),
    (
        "sles16.1",
        {"/etc/os-release": OSR_SLES.format(v="16.1", vid="16.1")},
        "",
        "no published Mobility Service bundle yet",
    ),
    ("sles-no-version-id", {"/etc/os-release": 'NAME="SLES"\nID="sles"\n'}, "", "has no VERSION_ID"),
    (
        "leap16",
        {"/etc/os-release": 'NAME="openSUSE Leap"\nVERSION="16.0"\nID="opensuse-leap"\nVERSION_ID="16.0"\n'},
        "",
        "openSUSE Leap 16.0 has no published Mobility Service bundle",
    ),
    (
        "sled-is-not-sles",
        {"/etc/os-release": 'NAME="SLED"\nVERSION_ID="15.5"\nID="sled"\n'},
        "",
        "SLED 15.5 is not supported by Azure Site Recovery",
    ),
    # /etc/lsb-release decides for every distro that has it, by DISTRIB_RELEASE alone (like OS_details.sh).
    ("pop-os-22.04", {"/etc/lsb-release": LSB.format(id="Pop", v="22.04")}, "UBUNTU-22.04-64", ""),
    (
        "mint-21.3",
        {"/etc/lsb-release": LSB.format(id="LinuxMint", v="21.3")},
        "",
        "LinuxMint 21.3 is not an LTS release",
    ),
    ("ubuntu-12.04", {"/etc/lsb-release": LSB.format(id="Ubuntu", v="12.04")}, "", "Ubuntu 12.04 is not supported"),
    ("ubuntu-28.04", {"/etc/lsb-release": LSB.format(id="Ubuntu", v="28.04")}, "", "Ubuntu 28.04 is not supported"),
    ("lsb-without-release", {"/etc/lsb-release": 'LSB_VERSION="core-4.1-amd64"\n'}, "", "has no DISTRIB_RELEASE"),
    # lsb-release comes before debian_version: an Ubuntu never falls into the Debian branch.
    (
        "ubuntu-before-debian",
        {"/etc/lsb-release": LSB.format(id="Ubuntu", v="20.04"), "/etc/debian_version": "bullseye/sid\n"},
        "UBUNTU-20.04-64",
        "",
    ),
    ("debian-9.1-no-warning", {"/etc/debian_version": "9.1\n"}, "DEBIAN9-64", ""),
    ("debian-13.0", {"/etc/debian_version": "13.0\n"}, "", "knows DEBIAN13-64"),
    ("debian-6", {"/etc/debian_version": "6.0.10\n"}, "", "bundles exist for Debian 7, 8, 9, 10, 11, 12"),
    ("debian-sid", {"/etc/debian_version": "forky/sid\n"}, "", "testing/unstable"),
]


@pytest.mark.parametrize(("files", "tag", "refused"), [c[1:] for c in LINUX_TABLE], ids=[c[0] for c in LINUX_TABLE])
def test_release_file_edges(files: dict[str, str], tag: str, refused: str) -> None:
    plat = select(linux(files))
    if tag:
        assert isinstance(plat, Platform), getattr(plat, "reason", None)
        assert plat.os_tag == tag
    else:
        assert isinstance(plat, Unsupported)
        assert refused in (plat.reason or ""), plat.reason
        assert_actionable(plat.reason)


def test_debian_9_0_tagged_with_warning_and_9_1_without() -> None:
    warned = select(linux({"/etc/debian_version": "9.0\n"}))
    assert warned.os_tag == "DEBIAN9-64"
    assert any("9.1 to 9.13" in w for w in warned.warnings)
    assert select(linux({"/etc/debian_version": "9.1\n"})).warnings == ()


@pytest.mark.parametrize(
    ("arch", "tag", "refused"),
    [
        ("x86_64", "RHEL8-64", ""),
        ("amd64", "RHEL8-64", ""),
        ("i686", "", "i686 is a 32-bit system"),
        ("armv7l", "", "armv7l is a 32-bit system"),
        ("aarch64", "", "aarch64 is not supported: Mobility Service bundles exist only for 64-bit x86"),
        ("ppc64le", "", "ppc64le is not supported"),
        ("s390x", "", "s390x is not supported"),
    ],
)
def test_only_x86_64_gets_a_tag(arch: str, tag: str, refused: str) -> None:
    plat = select(linux({"/etc/redhat-release": "Rocky Linux release 8.9 (Green Obsidian)\n"}, arch=arch))
    if tag:
        assert plat.os_tag == tag
    else:
        assert isinstance(plat, Unsupported)
        assert refused in (plat.reason or "")
        # The refusal still says which bundle the host would use on x86_64.
        assert "would use RHEL8-64" in (plat.reason or "")


@pytest.mark.parametrize(
    ("facts", "refused"),
    [
        (linux({}), "no release files"),
        (linux({"/etc/os-release": "garbage\n"}), "has no ID= line"),
        (
            linux({"/etc/os-release": 'ID=arch\nNAME="Arch Linux"\n'}, distro_id="arch", name="Arch Linux"),
            "Arch Linux is not supported",
        ),
        (
            linux({"/etc/os-release": "ID=nixos\n"}, distro_id="nixos", name="NixOS", version="24.05"),
            "NixOS 24.05 is not supported by Azure Site Recovery; supported are",
        ),
        (
            HostFacts("darwin", "", "", "", "arm64", "23.0", False, "/"),
            "darwin is not supported; only Linux and Windows are",
        ),
        (
            HostFacts("windows", "windows", "Windows", "10.0", "x86_64", "", True, "/"),
            "Windows version information is missing",
        ),
    ],
    ids=["no-files", "garbage", "arch-linux", "unknown-id", "darwin", "windows-without-version"],
)
def test_refusals_without_a_family(facts: HostFacts, refused: str) -> None:
    plat = select(facts)
    assert isinstance(plat, Unsupported)
    assert refused in (plat.reason or "")


def test_select_is_pure_given_a_matrix() -> None:
    """The matrix can be handed in; select reads nothing else (a new release is a data change)."""
    data = load_matrix()
    patched = {"linux": dict(data["linux"]), "windows": data["windows"]}
    patched["linux"]["family"] = [dict(f) for f in data["linux"]["family"]]
    ubuntu = next(f for f in patched["linux"]["family"] if f["id"] == "ubuntu")
    ubuntu["release"] = [*ubuntu["release"], {"version": "26.04", "tag": "UBUNTU-26.04-64"}]
    ubuntu["unsupported"] = []
    facts = linux({"/etc/lsb-release": LSB.format(id="Ubuntu", v="26.04")})
    assert select(facts).os_tag is None
    assert select(facts, patched).os_tag == "UBUNTU-26.04-64"


# --- the data itself ----------------------------------------------------------------------------------------


def test_linux_tags_are_published_or_known_to_the_detector() -> None:
    tags = {rel["tag"] for fam in load_matrix()["linux"]["family"] for rel in fam["release"]}
    assert tags == PUBLISHED | DETECTOR_ONLY
    # Known to Microsoft's newest detector but not published: must not be selectable.
    assert not tags & {"SLES16-64", "UBUNTU-26.04-64", "DEBIAN13-64"}


def test_families_are_in_os_details_order() -> None:
    files = [fam["file"] for fam in load_matrix()["linux"]["family"]]
    assert files == [
        "/etc/oracle-release",
        "/etc/redhat-release",
        "/etc/SuSE-release",
        "/etc/os-release",
        "/etc/lsb-release",
        "/etc/debian_version",
    ]


def _templates(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            t for key, v in node.items() for t in _templates(v) if key not in ("pattern", "only_if", "name_from", "lts")
        ]
    if isinstance(node, list):
        return [t for v in node for t in _templates(v)]
    return [node] if isinstance(node, str) and "{" in node else []


def test_every_message_template_uses_known_placeholders() -> None:
    known = {"name", "version", "listed", "arch", "tag", "text", "file", "root", "label", "build"}
    templates = _templates(load_matrix())
    assert len(templates) > 15
    for template in templates:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        assert fields <= known, (template, fields - known)


def test_every_refusal_template_is_actionable() -> None:
    kw = {k: "X" for k in ("name", "version", "listed", "arch", "tag", "text", "file", "root", "label", "build")}
    for template in _templates(load_matrix()):
        if "bundle was published" in template or "were removed" in template or "9.1 to 9.13" in template:
            continue  # warnings, not refusals
        assert_actionable(template.format(**kw))


# --- Windows ------------------------------------------------------------------------------------------------

WinVer = namedtuple("WinVer", "major minor build platform service_pack service_pack_major product_type")


def windows(
    major: int,
    minor: int,
    build: int,
    product_type: int,
    product_name: str,
    arch: str = "AMD64",
    wow64: str | None = None,
    sp: int = 0,
) -> HostFacts:
    registry = {"ProductName": product_name, "InstallationType": "Server" if product_type != 1 else "Client", "UBR": 1}
    env = {"PROCESSOR_ARCHITECTURE": arch}
    if wow64:
        env["PROCESSOR_ARCHITEW6432"] = wow64
    return collect_windows(
        Paths.for_root("/"),
        getwindowsversion=lambda: WinVer(major, minor, build, 2, f"Service Pack {sp}" if sp else "", sp, product_type),
        read_registry=lambda key, value: registry.get(value),
        environ=env,
        machine=lambda: "AMD64",
        is_admin=lambda: True,
    )


WINDOWS_TABLE = [
    # (id, facts args, expected name or "", refusal substring or "")
    ("2008r2-sp1", (6, 1, 7601, 3, "Windows Server 2008 R2 Enterprise"), "Windows Server 2008 R2 SP1", ""),
    ("2008r2-sp1-dc", (6, 1, 7601, 2, "Windows Server 2008 R2 Standard"), "Windows Server 2008 R2 SP1", ""),
    ("2012", (6, 2, 9200, 3, "Windows Server 2012 Datacenter"), "Windows Server 2012", ""),
    ("2012r2", (6, 3, 9600, 3, "Windows Server 2012 R2 Standard"), "Windows Server 2012 R2", ""),
    ("2016", (10, 0, 14393, 3, "Windows Server 2016 Datacenter"), "Windows Server 2016", ""),
    ("2019", (10, 0, 17763, 3, "Windows Server 2019 Standard"), "Windows Server 2019", ""),
    ("2022", (10, 0, 20348, 3, "Windows Server 2022 Datacenter"), "Windows Server 2022", ""),
    ("2025", (10, 0, 26100, 3, "Windows Server 2025 Datacenter"), "Windows Server 2025", ""),
    ("win7-sp1", (6, 1, 7601, 1, "Windows 7 Enterprise"), "Windows 7 SP1", ""),
    ("win8", (6, 2, 9200, 1, "Windows 8 Pro"), "Windows 8", ""),
    ("win8.1", (6, 3, 9600, 1, "Windows 8.1 Pro"), "Windows 8.1", ""),
    ("win10-1507", (10, 0, 10240, 1, "Windows 10 Enterprise"), "Windows 10", ""),
    ("win10-22h2", (10, 0, 19045, 1, "Windows 10 Pro"), "Windows 10", ""),
    ("win10-ltsc-2019", (10, 0, 17763, 1, "Windows 10 Enterprise LTSC 2019"), "Windows 10", ""),
    ("win11-21h2", (10, 0, 22000, 1, "Windows 10 Pro"), "Windows 11", ""),
    ("win11-24h2", (10, 0, 26100, 1, "Windows 10 Enterprise"), "Windows 11", ""),
    (
        "2008r2-rtm",
        (6, 1, 7600, 3, "Windows Server 2008 R2 Enterprise"),
        "",
        "without Service Pack 1 is not supported; install SP1",
    ),
    ("win7-rtm", (6, 1, 7600, 1, "Windows 7 Professional"), "", "Windows 7 without Service Pack 1"),
    ("2008-sp2", (6, 0, 6002, 3, "Windows Server (R) 2008 Standard"), "", "migration only"),
    ("server-1709-sac", (10, 0, 16299, 3, "Windows Server Datacenter"), "", "Semi-Annual Channel"),
    ("server-1909-sac", (10, 0, 18363, 3, "Windows Server Standard"), "", "Semi-Annual Channel"),
    ("server-20h2-sac", (10, 0, 19042, 3, "Windows Server Datacenter"), "", "Semi-Annual Channel"),
    ("server-23h2", (10, 0, 25398, 3, "Windows Server Datacenter"), "", "Semi-Annual Channel"),
    (
        "server-future",
        (10, 0, 30000, 3, "Windows Server 2028 Datacenter"),
        "",
        "is not supported; supported are Windows Server 2008 R2 SP1",
    ),
    ("vista", (6, 0, 6002, 1, "Windows Vista Business"), "", "Windows Vista Business (build 6002) is not supported"),
    ("2003", (5, 2, 3790, 3, "Windows Server 2003"), "", "(build 3790) is not supported"),
]


@pytest.mark.parametrize(("args", "name", "refused"), [c[1:] for c in WINDOWS_TABLE], ids=[c[0] for c in WINDOWS_TABLE])
def test_windows(args: tuple[Any, ...], name: str, refused: str) -> None:
    plat = select(windows(*args))
    if name:
        assert isinstance(plat, Platform), getattr(plat, "reason", None)
        assert plat.os_tag == "Windows"
        assert plat.name == name
    else:
        assert isinstance(plat, Unsupported)
        assert refused in (plat.reason or ""), plat.reason
        assert_actionable(plat.reason)


def test_windows_2008r2_and_7_carry_the_sha2_warning() -> None:
    for args in ((6, 1, 7601, 3, "Windows Server 2008 R2"), (6, 1, 7601, 1, "Windows 7 Enterprise")):
        plat = select(windows(*args))
        assert any("SHA-2" in w for w in plat.warnings), plat.warnings
    assert select(windows(10, 0, 20348, 3, "Windows Server 2022")).warnings == ()


@pytest.mark.parametrize(
    ("arch", "wow64", "tag", "refused"),
    [
        ("AMD64", None, "Windows", ""),
        ("x86", "AMD64", "Windows", ""),  # a 32-bit process on 64-bit Windows
        ("x86", None, "", "is 32-bit (i686): only 64-bit (x64) Windows is supported"),
        ("ARM64", None, "", "on arm64 is not supported: the Mobility Service runs only on 64-bit x86 (x64) Windows"),
    ],
)
def test_windows_architecture(arch: str, wow64: str | None, tag: str, refused: str) -> None:
    plat = select(windows(10, 0, 19045, 1, "Windows 10 Pro", arch=arch, wow64=wow64))
    if tag:
        assert plat.os_tag == tag
    else:
        assert isinstance(plat, Unsupported)
        assert refused in (plat.reason or ""), plat.reason


# --- only ASCII digits are digits (asrctl/versions.py) --------------------------------------------------------


@pytest.mark.parametrize("version", ["22.0\u0664", "2\u0662.04", "\uff12\uff12.04"])
def test_a_release_written_with_other_digits_is_not_the_ascii_release(version: str) -> None:
    """``22.0٤`` (Arabic-Indic four) or fullwidth ``２２.04`` must not pass for Ubuntu 22.04 LTS."""
    files = {
        "/etc/os-release": f'NAME="Ubuntu"\nVERSION_ID="{version}"\nID=ubuntu\n',
        "/etc/lsb-release": f"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={version}\n",
    }
    plat = select(linux(files))
    assert isinstance(plat, Unsupported), plat
    assert plat.os_tag is None


def test_a_rhel_release_with_another_scripts_digit_reads_only_the_ascii_part() -> None:
    plat = select(linux({"/etc/redhat-release": "Red Hat Enterprise Linux release 9.\u0666 (Plow)\n"}))
    assert isinstance(plat, Platform)
    assert plat.version == "9"  # not "9.٦", which int() would read as 9.6
