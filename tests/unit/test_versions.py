"""Version order, release comparison across x.y.0.0 bundle names, and the N-4 jump."""

from __future__ import annotations

import pytest

from asrctl.lifecycle import release_cmp, version_jump


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
    ],
)
def test_release_cmp(installed: str, bundle: str, expected: int) -> None:
    assert release_cmp(installed, bundle) == expected


@pytest.mark.parametrize(
    ("a", "b", "jump"),
    [("9.60.1.1", "9.66.0.0", 6), ("9.62.0.0", "9.66.0.0", 4), ("9.66.0.0", "9.65.0.0", -1), ("8.1", "9.2", 0)],
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
    ],
)
def test_build_number_from_build_tag(tag: str, build: str | None) -> None:
    from asrctl.agent.linux import build_number

    assert build_number(tag) == build
