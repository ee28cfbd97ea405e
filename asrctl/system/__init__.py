"""Everything that touches processes and files lives here, and is injected into the rest."""
