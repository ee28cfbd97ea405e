"""Tests of the bundle and configuration-server simulators (scripts/asrsim)."""
