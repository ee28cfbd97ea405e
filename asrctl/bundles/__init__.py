"""Mobility Service bundles: names, the catalog, digests, safe unpacking, fetching."""
