"""Test doubles that run as real programs: a simulated package manager and Azure VM agent daemon (bin/)."""
