#!/bin/sh
# Simulated UnifiedAgentConfigurator.sh. Classic: -i <CS IP> -P <passphrase file> -c CSLegacy -p <port>;
# modernized: -q -S <config.json> -c CSPrime [-p <port>]; both with -l <log> -m <invoker> -f <errors.json>
# -j <summary.json>. The logic is in ../scripts/asrsim (stdlib python).
_asr_bin=$(cd "$(dirname "$0")" && pwd)
exec python3 -B "$_asr_bin/../scripts/asrsim/unified_agent_configurator.py" "$@"
