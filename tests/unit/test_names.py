"""Bundle file names: parsed strictly (ASCII digits only), ordered on the parsed version, never on the name."""

from __future__ import annotations

import datetime as dt

import pytest

from asrctl.bundles.names import BundleNameError, parse

UBUNTU = "Microsoft-ASR_UA_{v}_UBUNTU-22.04-64_GA_{d}_release.tar.gz"


def test_parse_a_published_name() -> None:
    name = parse(UBUNTU.format(v="9.66.7567.1", d="20Sep2025"))
    assert (name.version, name.os_tag, name.date, name.kind) == (
        "9.66.7567.1",
        "UBUNTU-22.04-64",
        dt.date(2025, 9, 20),
        "linux",
    )
    assert name.version_key == (9, 66, 7567, 1)


@pytest.mark.parametrize(
    "name",
    [
        UBUNTU.format(v="9.6\u0665.7567.1", d="20Sep2025"),  # Arabic-Indic five: int() reads 9.65
        UBUNTU.format(v="\uff19.66.7567.1", d="20Sep2025"),  # fullwidth nine
        UBUNTU.format(v="9.66.7567.1", d="2\u0660Sep2025"),  # the date's digits too
        "Microsoft-ASR_UA_9.66.7567.1_UBUNTU-22.04-64_GA_20Sep202\u0665_release.tar.gz",
    ],
)
def test_a_name_with_other_digits_is_not_a_bundle_name(name: str) -> None:
    with pytest.raises(BundleNameError):
        parse(name)


def test_order_is_numeric_not_textual() -> None:
    older = parse(UBUNTU.format(v="9.9.0.0", d="01Jan2021"))
    newer = parse(UBUNTU.format(v="9.21.5091.1", d="01Jan2020"))
    assert older.filename > newer.filename  # as text "9.9" sorts after "9.21"
    assert newer.sort_key > older.sort_key


def test_the_catalog_lists_such_a_file_as_ignored_with_the_reason(tmp_path) -> None:
    from asrctl.bundles.catalog import scan

    name = UBUNTU.format(v="9.6\u0665.7567.1", d="20Sep2025")
    (tmp_path / name).write_bytes(b"\x1f\x8b" + b"\0" * 30)
    catalog = scan([tmp_path])
    assert catalog.bundles == ()
    assert [(i.path.name, i.reason) for i in catalog.ignored] == [
        (name, "no version after Microsoft-ASR_UA_ (expected e.g. 9.66.7567.1)")
    ]
