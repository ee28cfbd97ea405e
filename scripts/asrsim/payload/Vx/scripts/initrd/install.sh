#!/bin/sh
# Simulated <Vx>/scripts/initrd/install.sh: `install.sh regenerate <kernel>` rebuilds that kernel's initrd with the
# driver in it. In a sandbox it writes $ASRCTL_ROOT/boot/initrd.img-<kernel>: a header line and the first line of
# /lib/modules/<kernel>/kernel/drivers/char/involflt.ko when there is one (so a test sees which driver it holds).
# ASR_SIM_INITRD=fail: exit 1 without writing. Refuses to run without ASRCTL_ROOT (exit 97).
ROOT=${ASRCTL_ROOT:-}
if [ -z "$ROOT" ] || [ "$ROOT" = / ]; then
    echo "initrd install.sh (asrsim): ASRCTL_ROOT is not set; refusing to run outside a sandbox" >&2
    exit 97
fi
if [ "$#" -ne 2 ] || [ "$1" != regenerate ]; then
    echo "usage: install.sh regenerate <kernel>" >&2
    exit 2
fi
KERNEL=$2
mkdir -p "$ROOT/var/log"
echo "[\"initrd/install.sh\", \"$1\", \"$KERNEL\"]" >>"$ROOT/var/log/asrsim-kmod.calls"
if [ "${ASR_SIM_INITRD:-}" = fail ]; then
    echo "dracut: FAILED: /boot/initrd.img-$KERNEL (simulated)" >&2
    exit 1
fi
if [ ! -d "$ROOT/lib/modules/$KERNEL" ]; then
    echo "install.sh: /lib/modules/$KERNEL does not exist" >&2
    exit 1
fi
mkdir -p "$ROOT/boot"
{
    echo "asrsim initrd for $KERNEL"
    DRIVER="$ROOT/lib/modules/$KERNEL/kernel/drivers/char/involflt.ko"
    [ -f "$DRIVER" ] && head -n 1 "$DRIVER"
} >"$ROOT/boot/initrd.img-$KERNEL.tmp" && mv "$ROOT/boot/initrd.img-$KERNEL.tmp" "$ROOT/boot/initrd.img-$KERNEL"
