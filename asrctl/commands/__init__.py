"""One module per verb (or verb group). Each has ``register(group)``."""

from asrctl.commands import bundles, detect, lifecycle, support, vmagent

COMMAND_MODULES = (detect, bundles, lifecycle, vmagent, support)
