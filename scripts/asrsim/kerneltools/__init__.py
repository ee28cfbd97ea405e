"""Stand-ins for the kernel tools and the agent's driver tools, for sandbox roots (docs/SIMULATORS.md)."""
