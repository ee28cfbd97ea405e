"""Can this machine reach its configuration server? The checks the preflight of install/upgrade/register and
``doctor`` share, one module per layer of the path:

- ``endpoint``: what the operator typed (``HOST[:PORT]``, ``[v6]:PORT``) and certificate fingerprints;
- ``dns``, ``tcp``, ``proxy``, ``tls`` (with ``trust`` and ``certinfo``): one check each;
- ``preflight``: ``check_cs``, the checks in order for one configuration server;
- ``checks``: the check result, the catalogue errors it turns into, the table, what a retry may cure.

Decisions (what warns and what fails) are in docs/CONNECTIVITY.md. Nothing here imports ``requests`` or ``ssl``
until a check runs: these modules sit on the start-up path of verbs.
"""
