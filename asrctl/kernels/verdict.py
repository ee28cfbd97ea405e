"""The filter driver's part of ``status``'s health verdict: facts in, reasons out (pure, table-tested in
tests/unit/test_driver_verdict.py). lifecycle/status.py gathers the facts (:mod:`.report`) and passes the reasons
to the health verdict (lifecycle/health.py), which takes the worst severity of all.

| reason (``id``)          | when (the agent is installed)                                          | severity |
|--------------------------|------------------------------------------------------------------------|----------|
| ``driver_not_loaded``    | ``involflt`` is not in ``/proc/modules``                               | broken   |
| ``driver_no_device``     | it is loaded, but ``/dev/involflt`` is missing or is not its device    | broken   |
| ``driver_faulty``        | the loaded driver is a known-faulty build (9.66.7691.1-9.66.7749.1)     | degraded |
| ``kernel_unsupported``   | the installed build's list does not have the running kernel, and no   | broken   |
|                          | driver is loaded (say so: the cause, and the remedy, differ)           |          |
| ``next_boot_unsupported``| the kernel that boots next is not the running one and the installed    | degraded |
|                          | build's list does not have it: replication stops after the restart     |          |

Broken is "not protected now": without the loaded driver and its device nothing is replicated. A faulty driver
still replicates (Microsoft replaces it only together with a full resync), and a next-boot kernel without a driver
breaks nothing until the restart: both are degraded, with the remedy named. What cannot be read (no
``/proc/modules`` under a sandbox root, no kernel list for the installed build) gives no reason: unknown is not a
failure, and status says it in ``data.driver``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEGRADED, BROKEN = "degraded", "broken"
FAULTY_REMEDY = (
    "install a fixed driver with `asrctl drivers install` (it stops filtering on every protected disk: each one "
    "resyncs in full) or upgrade the agent"
)


@dataclass(frozen=True)
class DriverFacts:
    loaded: bool | None  # None: /proc/modules unreadable
    device: bool | None = None
    device_problem: str | None = None
    faulty_version: str | None = None  # the loaded driver's version when it is a known-faulty build
    running: str = ""
    running_status: str = "unknown"  # supported | unsupported | unknown, by the installed build's list
    agent_version: str = ""
    next_kernel: str | None = None
    next_status: str = "unknown"
    next_source: str = ""


def driver_reasons(f: DriverFacts) -> list[tuple[str, str, str]]:
    """``(id, severity, message)`` for each thing wrong with the driver (module docstring)."""
    out: list[tuple[str, str, str]] = []
    if f.loaded is False:
        if f.running_status == "unsupported":
            out.append(
                (
                    "kernel_unsupported",
                    BROKEN,
                    f"the running kernel {f.running} is not supported by agent {f.agent_version}, so no driver is "
                    "loaded: install Microsoft's driver package for it (`asrctl drivers install`), boot a supported "
                    "kernel, or upgrade the agent",
                )
            )
        else:
            out.append(
                (
                    "driver_not_loaded",
                    BROKEN,
                    f"the filter driver involflt is not loaded (kernel {f.running}): nothing is replicated; "
                    "`asrctl kernel check` tells whether this kernel is supported, `asrctl drivers install` loads a "
                    "driver package's",
                )
            )
    elif f.loaded:
        if not f.device or f.device_problem:
            out.append(
                (
                    "driver_no_device",
                    BROKEN,
                    (f.device_problem or "/dev/involflt does not exist")
                    + ": the agent cannot reach the loaded driver; `asrctl drivers install` creates it from "
                    "/proc/devices",
                )
            )
        if f.faulty_version:
            out.append(
                (
                    "driver_faulty",
                    DEGRADED,
                    f"the loaded driver {f.faulty_version} is a known-faulty build: {FAULTY_REMEDY}",
                )
            )
    if f.next_kernel and f.next_kernel != f.running and f.next_status == "unsupported":
        out.append(
            (
                "next_boot_unsupported",
                DEGRADED,
                f"the kernel that boots next, {f.next_kernel} ({f.next_source}), is not supported by agent "
                f"{f.agent_version}: replication stops after the restart; prepare it with `asrctl drivers install "
                f"PACKAGE --kernel {f.next_kernel}`, or keep booting {f.running}",
            )
        )
    return out
