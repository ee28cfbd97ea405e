"""asrctl/versions.py: version parsing and order (ASCII digits only), release comparison across x.y.0.0 bundle
names, and the N-4 jump."""

from __future__ import annotations

import pytest

from asrctl import versions
from asrctl.versions import VersionError, release_cmp, version_jump

# Digits of other scripts that str.isdigit(), int() and re's \d all accept.
ARABIC_INDIC_FIVE = "\u0665"
DEVANAGARI_SIX = "\u096c"
FULLWIDTH_NINE = "\uff19"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9.66.7567.1", (9, 66, 7567, 1)),
        ("7.9.2009", (7, 9, 2009)),
        ("10", (10,)),
        ("10.0", (10, 0)),
        ("", ()),
        ("15-SP5", (15,)),
        ("1.2rc1", (1, 2)),
        ("1..2", (1,)),
        ("v1.2", ()),
        ("trixie/sid", ()),
        ("6.10", (6, 10)),
        # A digit of another script is not a digit: it ends the version like any other suffix.
        (f"9.6{ARABIC_INDIC_FIVE}", (9, 6)),
        (f"9.{ARABIC_INDIC_FIVE}", (9,)),
        (f"{FULLWIDTH_NINE}.66", ()),
        (f"9.66.{DEVANAGARI_SIX}", (9, 66)),
    ],
)
def test_key(text: str, expected: tuple[int, ...]) -> None:
    assert versions.key(text) == expected


@pytest.mark.parametrize(
    ("low", "high"),
    [("6.4", "6.10"), ("5.2", "5.11"), ("9.8", "9.10"), ("9.65.7417.1", "9.66.7567.1"), ("9", "9.0"), ("9.9", "10.0")],
)
def test_key_orders_numerically(low: str, high: str) -> None:
    assert versions.key(low) < versions.key(high)


def test_int_would_read_other_digits_which_is_why_versions_does_not() -> None:
    """The trap this module exists for: Python's own digit tests say yes."""
    text = f"6{ARABIC_INDIC_FIVE}"
    assert text.isdigit() and int(text) == 65
    assert not versions.is_number(text)
    assert versions.key(f"9.{text}") == (9, 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("9.66.7567.1", (9, 66, 7567, 1)), ("10", (10,)), ("0.0", (0, 0)), ("9.065", (9, 65))],
)
def test_parse(text: str, expected: tuple[int, ...]) -> None:
    assert versions.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"9.6{ARABIC_INDIC_FIVE}",
        f"9.{DEVANAGARI_SIX}6",
        f"{FULLWIDTH_NINE}.66",
        "",
        "9.",
        ".9",
        "9..66",
        "v9.66",
        "9.66-1",
        "9.66 ",
        " 9.66",
        "9.66\n",
        "+9.66",
        "-9",
    ],
)
def test_parse_rejects_what_is_not_a_version(text: str) -> None:
    with pytest.raises(VersionError, match="not a version"):
        versions.parse(text)


def test_version_error_is_a_value_error() -> None:
    assert issubclass(VersionError, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", True), ("7567", True), ("", False), ("12a", False), (f"1{ARABIC_INDIC_FIVE}", False), (" 1", False)],
)
def test_is_number(text: str, expected: bool) -> None:
    assert versions.is_number(text) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("WALinuxAgent-2.9.1.1-1.el8.noarch.rpm", "2.9.1.1"),
        ("WindowsAzureVmAgent.amd64_2.7.41491.1172_2409121442.fre.msi", "2.7.41491.1172"),
        ("walinuxagent_2.2.45-0ubuntu1_all.deb", "2.2.45"),
        ("package-7.rpm", None),
        (f"WALinuxAgent-2.{ARABIC_INDIC_FIVE}.1-1.rpm", None),
        ("", None),
    ],
)
def test_find(name: str, expected: str | None) -> None:
    assert versions.find(name) == expected


@pytest.mark.parametrize(
    ("installed", "bundle", "expected"),
    [
        ("9.9.0.0", "9.21.5091.1", -1),
        ("9.21.5091.1", "9.9.0.0", 1),
        ("9.66.7567.1", "9.66.7567.1", 0),
        ("9.65.7417.1", "9.65.0.0", 0),  # bundle named with .0.0 compares on major.minor
        ("9.64.7374.1", "9.65.0.0", -1),
        ("9.66.7567.1", "9.65.0.0", 1),
        ("9.66.7567.1", "9.66.7600.1", -1),
        (f"9.6{ARABIC_INDIC_FIVE}.7567.1", "9.65.0.0", -1),  # 9.6…, not 9.65
    ],
)
def test_release_cmp(installed: str, bundle: str, expected: int) -> None:
    assert release_cmp(installed, bundle) == expected


@pytest.mark.parametrize(
    ("a", "b", "jump"),
    [
        ("9.60.1.1", "9.66.0.0", 6),
        ("9.62.0.0", "9.66.0.0", 4),
        ("9.66.0.0", "9.65.0.0", -1),
        ("8.1", "9.2", 0),
        (f"9.6{ARABIC_INDIC_FIVE}", "9.66", 60),
        ("9", "9.66", 0),
    ],
)
def test_version_jump(a: str, b: str, jump: int) -> None:
    assert version_jump(a, b) == jump


@pytest.mark.parametrize(
    ("tag", "build"),
    [
        ("RELEASE_9.66.7567.1_GA_7567_Sep_20_2025_INMAGE", "7567"),
        ("RELEASE_9.67.0.0_GA_7789_Apr_30_2026_INMAGE", "7789"),
        ("", None),
        ("garbage", None),
        (f"RELEASE_9.66.7567.1_GA_75{ARABIC_INDIC_FIVE}7_Sep_20_2025_INMAGE", None),
    ],
)
def test_build_number_from_build_tag(tag: str, build: str | None) -> None:
    from asrctl.agent.linux import build_number

    assert build_number(tag) == build
