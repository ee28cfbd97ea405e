"""asrctl: put the Azure Site Recovery Mobility Service on a machine, exactly and safely."""

__version__ = "0.2.0"
