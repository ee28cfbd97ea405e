"""The lifecycle: what each verb does to the machine, named after the pipeline every verb runs.

    detect      facts.py, matrix.py (the app's ``facts``/``platform``)  →  preconditions.require_supported
    choose      preconditions.py: privileges, bundle, digest, disk, a killed earlier run
    plan        install.py, upgrade.py, register.py, uninstall.py, vmagent.py (one module per verb) build a
                ``Plan`` from staging.py, registration.py and the backend's steps; ``--dry-run`` stops here
    apply       plan.apply(): journal, run, undo on failure, under the lock plan.hold() took before the state
                was read (state.py reads it); outcome.py reads the host again and reports what it holds
    verify      postchecks.py: the last step of every plan checks the machine itself

``state.py`` defines a *whole* state (the invariant every failure keeps) and reads the host; ``steps.py`` guards
the destructive steps (re-check before, undo only what this run made); ``health.py`` is status's verdict.

``request.py`` is what the command line asks for; ``status.py`` reports (and changes nothing). Nothing else
decides what happens to the machine. This package imports agent/, bundles/ and the connectivity code, never
the commands above it (docs/ARCHITECTURE.md, the import-linter contract in setup.cfg).
"""
