"""Simulators for asrctl's tests and demo: Mobility Service bundles and a configuration server.

- :mod:`asrsim.bundle` builds ``Microsoft-ASR_UA_*.tar.gz`` bundles whose tools (installer,
  configurator, daemons, uninstallers) are stdlib-only simulators of the vendor interface.
- :mod:`asrsim.csserver` is an HTTPS configuration-server / appliance stand-in on loopback.

See docs/SIMULATORS.md.
"""

__all__ = ["bundle", "csserver"]
