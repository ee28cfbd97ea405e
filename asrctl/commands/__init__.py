"""One module per verb (or verb group); ``asrctl.cli.COMMANDS`` names where each command lives."""
