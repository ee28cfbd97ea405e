"""Paths.inside: every path built from an input or a vendor file is confined to --root before asrctl uses it or hands
it to a vendor tool (which runs on the host, not in a chroot). A table of what is allowed and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrctl.errors import AsrctlError
from asrctl.system.paths import Paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "usr/local/ASR/Vx").mkdir(parents=True)
    (r / "opt").mkdir()
    (tmp_path / "outside").mkdir()
    (r / "opt/out-abs").symlink_to(tmp_path / "outside")
    (r / "opt/out-rel").symlink_to("../../outside")
    (r / "opt/in-rel").symlink_to("../usr/local")
    (r / "usr/local/ASR/uninstall.sh").symlink_to("/etc/passwd")
    return r


ALLOWED = [
    ("/usr/local/ASR", "usr/local/ASR"),
    ("/usr/local/ASR/", "usr/local/ASR"),
    ("/usr/local/./ASR", "usr/local/ASR"),
    ("/usr/local/x/../ASR", "usr/local/ASR"),
    ("/opt/new/dir/not/there/yet", "opt/new/dir/not/there/yet"),
    ("/opt/in-rel/ASR", "opt/in-rel/ASR"),  # a link that stays inside the root
    ("{root}/usr/local/ASR/Vx", "usr/local/ASR/Vx"),  # a host path a vendor file wrote (root prefix included)
    ("{root}", ""),
    ("/", ""),
]

REFUSED = [
    ("/../../../../x", "'..' leads out of the root"),
    ("/usr/local/../../../x", "'..' leads out of the root"),
    ("{root}/../outside/Vx", "'..' leads out of the root"),
    ("relative/dir", "not an absolute path"),
    ("", "not an absolute path"),
    ("/opt/out-abs", "symbolic link leads out of the root"),
    ("/opt/out-abs/Vx/bin/start", "symbolic link leads out of the root"),
    ("/opt/out-rel/x", "symbolic link leads out of the root"),
    ("/usr/local/ASR/uninstall.sh", "symbolic link leads out of the root"),
    ("{root}/opt/out-abs/Vx", "symbolic link leads out of the root"),
]


@pytest.mark.parametrize(("given", "expected"), ALLOWED)
def test_allowed(root: Path, given: str, expected: str) -> None:
    paths = Paths.for_root(root)
    assert paths.inside(given.format(root=paths.root), "x") == paths.root.joinpath(*Path(expected).parts)


@pytest.mark.parametrize(("given", "why"), REFUSED)
def test_refused(root: Path, given: str, why: str) -> None:
    paths = Paths.for_root(root)
    with pytest.raises(AsrctlError) as err:
        paths.inside(given.format(root=paths.root), "--install-dir")
    assert err.value.code == "ASRCTL-E115" and err.value.exit_code == 6
    assert why in err.value.message and err.value.message.startswith("--install-dir ")


def test_on_the_real_root_everything_absolute_is_inside() -> None:
    paths = Paths(Path("/"))
    assert paths.inside("/usr/local/ASR", "x") == Path("/usr/local/ASR")
    assert paths.inside("/usr/local/../local/ASR", "x") == Path("/usr/local/ASR")
    with pytest.raises(AsrctlError):
        paths.inside("/../x", "x")
