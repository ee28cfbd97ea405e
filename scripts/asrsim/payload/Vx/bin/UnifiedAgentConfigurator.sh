#!/bin/sh
# Simulated UnifiedAgentConfigurator.sh (classic: -i <CS>[:port] -P <passphrase file> [-c CSLegacy];
# modernized: -S <config.json> -q -c CSPrime [-D true]). The logic is in ../lib (stdlib python).
_asr_bin=$(cd "$(dirname "$0")" && pwd)
exec python3 -B "$_asr_bin/../lib/unified_agent_configurator.py" "$@"
