#!/bin/sh
# Simulated AgentUpgrade.sh: the agent's auto-update helper.
# A stand-in with Microsoft's member name (the bundle's top level, docs/SIMULATORS.md); asrctl never runs it.
echo "AgentUpgrade.sh: not simulated" >&2
exit 1
