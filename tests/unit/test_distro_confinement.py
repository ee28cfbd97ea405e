"""Why asrctl parses the release files itself instead of handing them to ``distro`` (docs/PLATFORMS.md, "Why not
the distro package").

The design card names ``distro`` as the parser of the release files. These tests are the experiment behind the
decision to keep asrctl's own parser, run against the pinned ``distro`` of constraints/dev.txt (a dev
dependency only; the product never imports it). They fail the day ``distro`` changes in a way that answers the
objections -- then the decision should be revisited:

1. ``LinuxDistribution(root_dir=R)`` opens ``R/etc/os-release`` with a plain ``open()``, so an absolute link
   (``/etc/os-release -> /usr/lib/os-release``, what systemd installs) is followed on the machine asrctl runs on.
2. Handing it the files asrctl resolved inside the root does not confine it either: the public API takes *paths*
   (the content parsers are private methods), and for a Debian-like system it opens ``<etc_dir>/debian_version``
   itself -- the host's ``/etc/debian_version`` when no ``root_dir`` is given.
3. Even fully confined (a private directory holding copies of the confined files, lsb/uname/oslevel off), its
   answers are not the ones asrctl must give, equal to Microsoft's OS_details.sh: SLES 11 without os-release loses
   its PATCHLEVEL, the ids are renamed (``ol`` -> ``oracle``), Debian loses its point release, and a damaged
   os-release raises instead of being reported.
"""

from __future__ import annotations

import sys
import tempfile
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from asrctl.facts import collect_linux
from asrctl.system.paths import Paths

distro = pytest.importorskip("distro")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "distros"
Uname = namedtuple("Uname", "system node release version machine")
UNAME = Uname("Linux", "h", "5.15.0", "#1", "x86_64")

_opened: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened.append(args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only inside opened_paths()


@contextmanager
def opened_paths() -> Iterator[list[str]]:
    """Every path a Python ``open()`` (io.open, os.open is not audited as "open") is given while active."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def confined_distro() -> Callable[..., Any]:
    return lambda **kw: distro.LinuxDistribution(include_lsb=False, include_uname=False, include_oslevel=False, **kw)


def asrctl_facts(root: Path) -> tuple[str, str, str]:
    f = collect_linux(Paths(root.resolve()), {}, uname=lambda: UNAME, is_admin=lambda: False)
    return f.distro_id, f.distro_name, f.version


def test_distro_root_dir_follows_an_absolute_link_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "os-release"
    outside.parent.mkdir()
    outside.write_text('ID=outside\nNAME="The machine asrctl runs on"\nVERSION_ID="99"\n', encoding="utf-8")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "usr" / "lib" / "os-release").write_text('ID=inside\nVERSION_ID="1"\n', encoding="utf-8")
    # Inside the root, this absolute target means ROOT/<tmp>/outside/os-release, which does not exist.
    (root / "etc" / "os-release").symlink_to(outside)

    found = confined_distro()(root_dir=str(root))
    assert (found.id(), found.version()) == ("outside", "99")  # distro read the file outside the root

    ident, _name, version = asrctl_facts(root)
    assert (ident, version) == ("inside", "1")  # asrctl: link dangling inside the root -> /usr/lib/os-release


def test_distro_given_explicit_files_still_opens_the_hosts_debian_version(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os_release = root / "etc" / "os-release"
    os_release.write_text('ID=debian\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n', encoding="utf-8")
    with opened_paths() as paths:
        confined_distro()(os_release_file=str(os_release), distro_release_file=str(root / "etc" / "none")).version()
    outside = [p for p in paths if not Path(p).is_relative_to(root)]
    assert "/etc/debian_version" in outside, paths


def best_confined_distro(root: Path) -> tuple[str, str, str]:
    """distro at its most confined: only copies of the files asrctl read inside the root, in a private
    directory, lsb/uname/oslevel off. It cannot escape -- but is it equal?"""
    f = collect_linux(Paths(root.resolve()), {}, uname=lambda: UNAME, is_admin=lambda: False)
    with tempfile.TemporaryDirectory(prefix="asrctl-distro-") as tmp:
        (Path(tmp) / "etc").mkdir()
        for name, text in f.release_files.items():
            (Path(tmp) / name.lstrip("/")).write_text(text, encoding="utf-8")
        d = confined_distro()(root_dir=tmp)
        return d.id(), d.name(), d.version()


# tree -> (what asrctl reports, equal to OS_details.sh's reading; what confined distro reports)
DEVIATIONS = {
    "sles-11-sp2": (("sles", "SUSE Linux Enterprise Server", "11.2"), ("suse", "SUSE Linux Enterprise Server", "11")),
    "ol-6.4": (("ol", "Oracle Linux Server", "6.4"), ("oracle", "Oracle Linux Server", "6.4")),
    "centos-6.10": (("centos", "CentOS", "6.10"), ("rhel", "CentOS", "6.10")),
    "debian-12.11": (("debian", "Debian GNU/Linux", "12.11"), ("debian", "Debian GNU/Linux", "12")),
    "centos-7.9": (("centos", "CentOS Linux", "7.9.2009"), ("centos", "CentOS Linux", "7")),
}


@pytest.mark.parametrize("tree", sorted(DEVIATIONS))
def test_confined_distro_is_not_equal_to_the_detector(tree: str) -> None:
    ours, theirs = DEVIATIONS[tree]
    assert asrctl_facts(FIXTURES / tree) == ours
    assert best_confined_distro(FIXTURES / tree) == theirs


def test_confined_distro_raises_on_a_damaged_os_release() -> None:
    assert asrctl_facts(FIXTURES / "garbage-os-release") == ("", "", "")
    with pytest.raises(ValueError, match="No closing quotation"):
        best_confined_distro(FIXTURES / "garbage-os-release")


def test_how_many_fixture_trees_distro_would_change() -> None:
    """The count docs/PLATFORMS.md gives: trees whose reported id, name or version would change."""
    differ = []
    for tree in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "os-release-is-a-directory"):
        try:
            theirs: object = best_confined_distro(tree)
        except ValueError as exc:
            theirs = exc
        if theirs != asrctl_facts(tree):
            differ.append(tree.name)
    assert len(differ) == 27, differ
