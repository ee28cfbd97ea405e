"""asrctl.system.childenv: what a child process gets from the one-file binary (and from python -m asrctl)."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from asrctl.system.childenv import host_environ, launched_executable

MEI = "/var/lib/asrctl/tmp/_MEIab12cd"
SX = "/var/lib/asrctl/tmp/staticx-Qw3rTy"
RT = "/var/lib/asrctl/tmp"


def frozen_env(**extra: str) -> dict[str, str]:
    """What the Python process of the one-file binary sees: launcher, staticx and PyInstaller variables."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TMPDIR": RT,
        "ASRCTL_RUNTIME_DIR": RT,
        "ASRCTL_EXE": "/root/asrctl",
        "STATICX_BUNDLE_DIR": SX,
        "STATICX_PROG_PATH": "/root/asrctl-payload",
        "LD_LIBRARY_PATH": MEI,
        "_PYI_APPLICATION_HOME_DIR": MEI,
        "_PYI_ARCHIVE_FILE": f"{SX}/asrctl",
        "_PYI_PARENT_PROCESS_LEVEL": "1",
        "_MEIPASS2": MEI,
    }
    env.update(extra)
    return env


def frozen_call(env: dict[str, str]) -> dict[str, str]:
    return host_environ(env, frozen=True, bundle=[MEI, SX, RT])


# --- the one-file binary -------------------------------------------------------------------------------------


def test_frozen_without_operator_values_gives_a_plain_host_environment() -> None:
    assert frozen_call(frozen_env()) == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
    }


def test_loader_variables_come_back_from_the_launchers_saved_values() -> None:
    env = frozen_env(
        ASRCTL_LD_LIBRARY_PATH_ORIG="/opt/vendor/lib",
        ASRCTL_LD_PRELOAD_ORIG="/usr/lib/libagent.so",
        ASRCTL_LD_AUDIT_ORIG="",
        LD_PRELOAD=f"{MEI}/x.so",
    )
    out = frozen_call(env)
    assert out["LD_LIBRARY_PATH"] == "/opt/vendor/lib"
    assert out["LD_PRELOAD"] == "/usr/lib/libagent.so"
    assert out["LD_AUDIT"] == ""
    assert not [k for k in out if k.endswith("_ORIG")]


def test_without_saved_values_the_loader_variables_are_removed() -> None:
    out = frozen_call(frozen_env(LD_PRELOAD=f"{MEI}/x.so", LD_LIBRARY_PATH_ORIG="/stale"))
    assert not {"LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH_ORIG"} & set(out)


PLAIN_PYINSTALLER = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": MEI, "_PYI_APPLICATION_HOME_DIR": MEI}


def test_plain_pyinstaller_library_path_is_restored_exactly_from_its_saved_value() -> None:
    env = {**PLAIN_PYINSTALLER, "LD_LIBRARY_PATH": f"{MEI}:/opt/vendor/lib", "LD_LIBRARY_PATH_ORIG": "/opt/vendor/lib"}
    out = host_environ(env, frozen=True, bundle=[MEI])
    assert out == {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/vendor/lib"}


def test_plain_pyinstaller_an_empty_saved_library_path_stays_empty() -> None:
    env = {**PLAIN_PYINSTALLER, "LD_LIBRARY_PATH": f"{MEI}:", "LD_LIBRARY_PATH_ORIG": ""}
    assert host_environ(env, frozen=True, bundle=[MEI])["LD_LIBRARY_PATH"] == ""


def test_plain_pyinstaller_without_a_saved_value_removes_the_library_path() -> None:
    # Even when the bundle directory is not known (bundle=[]): the bootloader set it to the bundle alone.
    out = host_environ(PLAIN_PYINSTALLER, frozen=True, bundle=[])
    assert "LD_LIBRARY_PATH" not in out


def test_tmpdir_is_given_back_as_the_operator_had_it() -> None:
    assert frozen_call(frozen_env(ASRCTL_TMPDIR_ORIG="/home/op/tmp"))["TMPDIR"] == "/home/op/tmp"
    assert "TMPDIR" not in frozen_call(frozen_env())


def test_no_internal_variable_reaches_a_child() -> None:
    out = frozen_call(
        frozen_env(ASRCTL_TMPDIR_ORIG="/x", ASRCTL_LD_PRELOAD_ORIG="", _PYI_SPLASH_IPC="3", STATICX_KEEP_TEMPS="1")
    )
    leaked = [k for k in out if k.startswith(("_PYI_", "_MEIPASS", "STATICX_")) or k.startswith("ASRCTL_")]
    assert leaked == []


@pytest.mark.parametrize("var", ["PATH", "PYTHONPATH", "GCONV_PATH", "SSL_CERT_FILE", "XDG_DATA_DIRS"])
def test_bundle_entries_leave_every_path_list(var: str) -> None:
    env = frozen_env(**{var: f"{MEI}/bin:/usr/bin:{SX}:{RT}/x:/bin"})
    assert frozen_call(env)[var] == "/usr/bin:/bin"


def test_a_variable_that_only_pointed_into_the_bundle_is_removed() -> None:
    out = frozen_call(frozen_env(SSL_CERT_FILE=f"{MEI}/certifi/cacert.pem", PYTHONPATH=f"{MEI}:{MEI}/lib"))
    assert "SSL_CERT_FILE" not in out and "PYTHONPATH" not in out


def test_prefix_match_is_by_path_component() -> None:
    env = {"PATH": f"{MEI}xyz/bin:{MEI}/bin:{MEI}:{MEI}/:/usr/bin"}
    assert host_environ(env, frozen=True, bundle=[MEI])["PATH"] == f"{MEI}xyz/bin:/usr/bin"


def test_a_value_that_mentions_the_bundle_but_is_no_path_list_is_left_alone() -> None:
    env = frozen_env(JAVA_OPTS=f"-Dx={MEI}/y -Dz=1")
    assert frozen_call(env)["JAVA_OPTS"] == f"-Dx={MEI}/y -Dz=1"


def test_order_and_untouched_values_are_kept() -> None:
    env = frozen_env(PATH="/b:/a::/c", MANPATH="/usr/share/man")
    out = frozen_call(env)
    assert out["PATH"] == "/b:/a::/c"  # nothing of ours in it: not even the empty entry is touched
    assert out["MANPATH"] == "/usr/share/man"


def test_the_input_mapping_is_not_modified() -> None:
    env = frozen_env(ASRCTL_PASSPHRASE="s3cret")
    before = dict(env)
    frozen_call(env)
    assert env == before


# --- python -m asrctl / the console script -----------------------------------------------------------------


def test_not_frozen_only_the_secret_goes() -> None:
    env = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/lib", "LD_LIBRARY_PATH_ORIG": "/x", "ASRCTL_PASSPHRASE": "p"}
    assert host_environ(env, frozen=False, bundle=[]) == {
        "PATH": "/usr/bin",
        "LD_LIBRARY_PATH": "/opt/lib",
        "LD_LIBRARY_PATH_ORIG": "/x",
    }


def test_defaults_read_os_environ_and_sys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASRCTL_PASSPHRASE", "p")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    monkeypatch.delattr(sys, "frozen", raising=False)
    out = host_environ()
    assert "ASRCTL_PASSPHRASE" not in out
    assert out["LD_LIBRARY_PATH"] == "/opt/lib"
    assert out["PATH"] == os.environ["PATH"]


def test_defaults_when_frozen_use_meipass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mei = tmp_path / "_MEIxyz"
    mei.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(mei), raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(mei))
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    monkeypatch.setenv("PATH", f"{mei}:/usr/bin")
    out = host_environ()
    assert "LD_LIBRARY_PATH" not in out
    assert out["PATH"] == "/usr/bin"


def test_symlinked_bundle_paths_are_recognised(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "bin").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    out = host_environ({"PATH": f"{real}/bin:/usr/bin"}, frozen=True, bundle=[str(link)])
    assert out["PATH"] == "/usr/bin"


def test_the_passphrase_never_survives_any_combination() -> None:
    for frozen, orig, runtime in itertools.product((True, False), (None, "/o"), (None, RT)):
        env = {"ASRCTL_PASSPHRASE": "p", "PATH": "/usr/bin"}
        if orig is not None:
            env["LD_LIBRARY_PATH_ORIG"] = orig
        if runtime is not None:
            env["ASRCTL_RUNTIME_DIR"] = runtime
        assert "ASRCTL_PASSPHRASE" not in host_environ(env, frozen=frozen, bundle=[MEI])


# --- where the operator's binary is ----------------------------------------------------------------------


def test_launched_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "asrctl"
    exe.write_bytes(b"x")
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert launched_executable({"ASRCTL_EXE": str(exe)}) is None
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launched_executable({"ASRCTL_EXE": str(exe)}) == exe
    assert launched_executable({"ASRCTL_EXE": str(tmp_path / "gone")}) == Path(sys.executable)
