"""Kernel support and the filter driver (docs/KERNELS.md).

The Mobility Service replicates through a kernel filter driver, ``involflt``; a kernel the installed agent build
has no driver for stops replication. This package answers "is this kernel supported, by which builds" and installs
Microsoft's driver packages:

- pure core (text in, answers out; no machine): :mod:`.kver` (kernel strings, their order, nearest),
  :mod:`.lists` (``supported_kernels`` files), :mod:`.rules` (per-family rules, data in platforms/kernels.toml),
  :mod:`.boot` (boot loader files), :mod:`.procfs` (``/proc/modules``, ``/proc/devices``, ``inm_dmit``),
  :mod:`.choice` (which driver file a kernel takes, data in platforms/drivers.toml);
- over a root or a directory: :mod:`.host` (running, next-boot and installed kernels; the driver's state),
  :mod:`.tree` (a copy of Microsoft's SupportedKernels tree), :mod:`.check` (the verdicts),
  :mod:`.package` (a driver package), :mod:`.hotfix` (``drivers install``), :mod:`.fetchlists`
  (``kernel lists fetch``).
"""
