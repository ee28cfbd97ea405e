#!/bin/sh
# Simulated ApplyCustomChanges.sh: master-target customisations.
# A stand-in with Microsoft's member name (the bundle's top level, docs/SIMULATORS.md); asrctl never runs it.
echo "ApplyCustomChanges.sh: not simulated" >&2
exit 1
