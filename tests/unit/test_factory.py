"""The backend factory (asrctl/agent/factory.py): a pure selector over the OS family, and its getter."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.windows import world

from asrctl.agent.factory import select_backend
from asrctl.agent.linux import LinuxBackend
from asrctl.agent.windows import WindowsBackend


@pytest.mark.parametrize(
    ("os_family", "backend"),
    [
        ("linux", LinuxBackend),
        ("windows", WindowsBackend),
        # Refused by the support matrix already; status and doctor still look for a Linux agent.
        ("darwin", LinuxBackend),
        ("freebsd", LinuxBackend),
        ("", LinuxBackend),
        ("Windows", LinuxBackend),  # HostFacts.os_family is lower-case; nothing else is guessed
    ],
)
def test_select_backend(os_family: str, backend: type) -> None:
    assert select_backend(os_family) is backend


def test_the_getter_builds_the_windows_backend_on_windows(tmp_path: Path) -> None:
    from asrctl.agent.factory import backend_for
    from asrctl.app import App
    from asrctl.facts import HostFacts
    from asrctl.output import Output

    app = App(root_arg=str(tmp_path), bundle_dir_args=(), out=Output())
    app.__dict__["facts"] = HostFacts("windows", "windows", "Windows Server 2022", "10.0.20348", "x86_64", "", True, "")
    backend = backend_for(app, world().runner)
    assert isinstance(backend, WindowsBackend) and backend.name == "windows"
    for method in (
        "default_install_dir",
        "installed",
        "services",
        "pending_reboot",
        "stage_steps",
        "install_steps",
        "register_step",
        "config_input_step",
        "uninstall_steps",
        "leftovers",
    ):
        assert callable(getattr(backend, method))


def test_the_getter_builds_the_linux_backend_on_linux(tmp_path: Path) -> None:
    from asrctl.agent.factory import backend_for
    from asrctl.app import App
    from asrctl.facts import HostFacts
    from asrctl.output import Output

    app = App(root_arg=str(tmp_path), bundle_dir_args=(), out=Output())
    app.__dict__["facts"] = HostFacts("linux", "ubuntu", "Ubuntu", "22.04", "x86_64", "6.1.0", True, str(tmp_path))
    backend = backend_for(app)
    assert isinstance(backend, LinuxBackend) and backend.name == "linux"
    assert backend.paths is app.paths and backend.out is app.out
