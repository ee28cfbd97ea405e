# Simulated teleAPIs.sh: Microsoft's telemetry library (StartSummary, RecordOP, EndSummaryOP) that writes the
# summary JSON named by -j. The simulated tools write that file themselves (asrsim_agent.write_summary, the same
# keys); this member is here because the real bundle has it. Sourcing it defines nothing.
