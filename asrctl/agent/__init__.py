"""OS backends for the Mobility Service agent."""
