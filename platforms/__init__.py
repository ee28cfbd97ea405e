"""The support matrix as data (TOML). Shipped as the ``asrctl.platforms`` package."""
