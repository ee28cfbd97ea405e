"""Which kernel boots next, from boot loader files (asrctl/kernels/boot.py, pure) and over a root
(asrctl/kernels/host.py). The grub.cfg texts are shaped like what grub-mkconfig writes on each family."""

from __future__ import annotations

from pathlib import Path

import pytest

from asrctl.kernels import boot, host
from asrctl.system.paths import Paths

UBUNTU_CFG = """\
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
menuentry 'Ubuntu' --class ubuntu $menuentry_id_option 'gnulinux-simple-7d1f' {
	recordfail
	linux	/boot/vmlinuz-5.15.0-161-generic root=UUID=7d1f ro
	initrd	/boot/initrd.img-5.15.0-161-generic
}
submenu 'Advanced options for Ubuntu' $menuentry_id_option 'gnulinux-advanced-7d1f' {
	menuentry 'Ubuntu, with Linux 5.15.0-161-generic' --class ubuntu $menuentry_id_option 'gnulinux-5.15.0-161-generic-advanced-7d1f' {
		linux	/boot/vmlinuz-5.15.0-161-generic root=UUID=7d1f ro
	}
	menuentry 'Ubuntu, with Linux 5.15.0-1090-azure' --class ubuntu $menuentry_id_option 'gnulinux-5.15.0-1090-azure-advanced-7d1f' {
		linux	/boot/vmlinuz-5.15.0-1090-azure root=UUID=7d1f ro
	}
}
"""

RHEL7_CFG = """\
set pager=1
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
else
   set default="${saved_entry}"
fi
menuentry 'Red Hat Enterprise Linux Server (3.10.0-1160.119.1.el7.x86_64) 7.9 (Maipo)' --class red --unrestricted $menuentry_id_option 'gnulinux-3.10.0-1160.119.1.el7.x86_64-advanced-ab12' {
	linux16 /vmlinuz-3.10.0-1160.119.1.el7.x86_64 root=/dev/mapper/rhel-root ro
}
menuentry 'Red Hat Enterprise Linux Server (3.10.0-1160.el7.x86_64) 7.9 (Maipo)' --class red $menuentry_id_option 'gnulinux-3.10.0-1160.el7.x86_64-advanced-ab12' {
	linuxefi /vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/mapper/rhel-root ro
}
"""

RHEL9_CFG = """\
set default="${saved_entry}"
insmod blscfg
blscfg
"""


def _bls(stem: str, kernel: str, title: str = "") -> boot.BlsEntry:
    return boot.parse_bls_entry(
        stem,
        f"title {title or 'Red Hat Enterprise Linux (' + kernel + ') 9.4 (Plow)'}\nversion {kernel}\n"
        f"linux /vmlinuz-{kernel}\ninitrd /initramfs-{kernel}.img $tuned_initrd\noptions root=/dev/sda2\n",
    )


MID = "8f1c9b3e2a0d4b6f9e7c5a3b1d2e4f60"
BLS = [
    _bls(f"{MID}-5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.13.1.el9_4.x86_64"),
    _bls(f"{MID}-5.14.0-503.11.1.el9_5.x86_64", "5.14.0-503.11.1.el9_5.x86_64"),
    _bls(f"{MID}-0-rescue", "0-rescue-8f1c9b3e2a0d4b6f9e7c5a3b1d2e4f60", "rescue"),
]


@pytest.mark.parametrize(
    ("env", "kernel", "source"),
    [
        ({}, "5.14.0-503.11.1.el9_5.x86_64", "BLS: the first entry"),
        ({"saved_entry": f"{MID}-5.14.0-427.13.1.el9_4.x86_64"}, "5.14.0-427.13.1.el9_4.x86_64", "saved_entry"),
        ({"saved_entry": "gone"}, "5.14.0-503.11.1.el9_5.x86_64", "the first entry"),
        (
            {"saved_entry": f"{MID}-5.14.0-503.11.1.el9_5.x86_64", "next_entry": f"{MID}-5.14.0-427.13.1.el9_4.x86_64"},
            "5.14.0-427.13.1.el9_4.x86_64",
            "next_entry",
        ),
    ],
)
def test_bls(env: dict[str, str], kernel: str, source: str) -> None:
    got = boot.bls_default(BLS, env)
    assert got.kernel == kernel and source in got.source


def test_bls_order_puts_rescue_last_and_the_newest_first() -> None:
    assert [e.kernel for e in boot.bls_order(BLS)][0] == "5.14.0-503.11.1.el9_5.x86_64"
    assert "rescue" in boot.bls_order(BLS)[-1].stem


def test_grubenv_block() -> None:
    text = "# GRUB Environment Block\nsaved_entry=abc-5.14\nnext_entry=\nboot_success=1\n" + "#" * 900
    assert boot.parse_grubenv(text) == {"saved_entry": "abc-5.14", "next_entry": "", "boot_success": "1"}


@pytest.mark.parametrize(
    ("cfg", "env", "kernel", "source"),
    [
        (UBUNTU_CFG, {}, "5.15.0-161-generic", "set default"),
        (
            UBUNTU_CFG,
            {"next_entry": "gnulinux-advanced-7d1f>gnulinux-5.15.0-1090-azure-advanced-7d1f"},
            "5.15.0-1090-azure",
            "next_entry",
        ),
        (UBUNTU_CFG, {"next_entry": "1>1"}, "5.15.0-1090-azure", "next_entry"),
        (
            UBUNTU_CFG,
            {"next_entry": "Advanced options for Ubuntu>Ubuntu, with Linux 5.15.0-1090-azure"},
            "5.15.0-1090-azure",
            "next_entry",
        ),
        (UBUNTU_CFG, {"saved_entry": "1>1"}, "5.15.0-161-generic", "set default"),  # default="0" ignores saved_entry
        (RHEL7_CFG, {}, "3.10.0-1160.119.1.el7.x86_64", "first entry"),
        (
            RHEL7_CFG,
            {"saved_entry": "Red Hat Enterprise Linux Server (3.10.0-1160.el7.x86_64) 7.9 (Maipo)"},
            "3.10.0-1160.el7.x86_64",
            "saved_entry",
        ),
        (
            RHEL7_CFG,
            {"saved_entry": "gnulinux-3.10.0-1160.el7.x86_64-advanced-ab12"},
            "3.10.0-1160.el7.x86_64",
            "saved_entry",
        ),
        (RHEL7_CFG, {"saved_entry": "7"}, "3.10.0-1160.119.1.el7.x86_64", "names no entry"),
    ],
)
def test_grub_cfg(cfg: str, env: dict[str, str], kernel: str, source: str) -> None:
    got = boot.grub_default(boot.parse_grub_cfg(cfg), env)
    assert got.kernel == kernel and source in got.source, got


def test_grub_cfg_without_entries_is_unknown() -> None:
    cfg = boot.parse_grub_cfg(RHEL9_CFG)
    assert cfg.blscfg and not cfg.items
    assert boot.grub_default(cfg, {}).kernel is None


@pytest.mark.parametrize(
    ("path", "kernel"),
    [
        ("/vmlinuz-5.14.0-427.el9.x86_64", "5.14.0-427.el9.x86_64"),
        ("/boot/vmlinuz-5.15.0-25-generic", "5.15.0-25-generic"),
        ("(hd0,gpt2)/vmlinuz-6.1.0-41-amd64", "6.1.0-41-amd64"),
        ("/boot/bzImage", None),
        ("/vmlinuz-../../x", None),
    ],
)
def test_kernel_of_image(path: str, kernel: str | None) -> None:
    assert boot.kernel_of_image(path) == kernel


# --- over a root ---------------------------------------------------------------------------------------------


def _kernel(root: Path, k: str, vmlinuz: bool = True) -> None:
    (root / "lib/modules" / k / "kernel").mkdir(parents=True)
    (root / "lib/modules" / k / "modules.dep").write_text("")
    if vmlinuz:
        (root / "boot").mkdir(exist_ok=True)
        (root / "boot" / f"vmlinuz-{k}").write_text("")


def test_installed_kernels_need_modules_and_vmlinuz(tmp_path: Path) -> None:
    _kernel(tmp_path, "5.15.0-161-generic")
    _kernel(tmp_path, "5.15.0-25-generic")
    _kernel(tmp_path, "5.15.0-170-generic", vmlinuz=False)  # modules left behind by a removed kernel
    (tmp_path / "lib/modules/not a kernel").mkdir()
    assert host.installed_kernels(Paths.for_root(tmp_path)) == ["5.15.0-25-generic", "5.15.0-161-generic"]


def test_next_boot_prefers_bls_then_grub_cfg_then_the_newest_installed(tmp_path: Path) -> None:
    paths = Paths.for_root(tmp_path)
    assert host.next_boot(paths).source == "unknown"
    _kernel(tmp_path, "5.14.0-427.13.1.el9_4.x86_64")
    _kernel(tmp_path, "5.14.0-503.11.1.el9_5.x86_64")
    got = host.next_boot(paths)
    assert (got.kernel, got.source) == ("5.14.0-503.11.1.el9_5.x86_64", "the newest installed kernel")
    (tmp_path / "boot/grub2").mkdir(parents=True)
    (tmp_path / "boot/grub2/grub.cfg").write_text(RHEL9_CFG)
    entries = tmp_path / "boot/loader/entries"
    entries.mkdir(parents=True)
    for k in ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-503.11.1.el9_5.x86_64"):
        (entries / f"{MID}-{k}.conf").write_text(f"title RHEL ({k})\nversion {k}\nlinux /vmlinuz-{k}\n")
    # RHEL 7/8 UEFI: grubenv is a relative symlink onto the ESP; followed inside the root.
    (tmp_path / "boot/efi/EFI/redhat").mkdir(parents=True)
    (tmp_path / "boot/efi/EFI/redhat/grubenv").write_text(
        f"# GRUB Environment Block\nsaved_entry={MID}-5.14.0-427.13.1.el9_4.x86_64\n" + "#" * 900
    )
    (tmp_path / "boot/grub2/grubenv").symlink_to("../efi/EFI/redhat/grubenv")
    got = host.next_boot(paths)
    assert got.kernel == "5.14.0-427.13.1.el9_4.x86_64" and "saved_entry" in got.source


def test_next_boot_says_when_flavours_make_the_newest_a_guess(tmp_path: Path) -> None:
    _kernel(tmp_path, "5.15.0-161-generic")
    _kernel(tmp_path, "5.15.0-1090-azure")
    got = host.next_boot(Paths.for_root(tmp_path), running="5.15.0-1080-azure")
    assert got.kernel == "5.15.0-1090-azure" and "several flavours" in got.detail


def test_a_grubenv_that_is_a_fifo_or_leads_out_of_the_root_is_not_read(tmp_path: Path) -> None:
    import os

    (tmp_path / "boot/grub").mkdir(parents=True)
    os.mkfifo(tmp_path / "boot/grub/grubenv")  # never opened for reading: it would hang
    (tmp_path / "boot/grub/grub.cfg").symlink_to("/etc/hostname")  # absolute: resolved inside the root (missing)
    assert host.next_boot(Paths.for_root(tmp_path)).source == "unknown"
