"""Build and inspect ``dist/asrctl``: one file that runs on old, air-gapped Linux hosts without Python or a recent glibc.

    make binary                                                   # = PYTHONPATH=scripts .venv/bin/python -m binary
    PYTHONPATH=scripts .venv/bin/python -m binary --check-reproducible    # build twice, compare the bytes
    PYTHONPATH=scripts .venv/bin/python -m binary --app hello             # the start-up floor
    PYTHONPATH=scripts .venv/bin/python -m binary.floor dist/asrctl       # the floor report of a built file

The pieces, one concern each:

- ``build.py``: the driver -- PyInstaller (``asrctl.spec``), staticx, the launcher, the smoke check, and what
  makes two builds byte-identical (fixed hash seed and dates, normalised tar metadata, a lock check);
- ``launcher.c``: the static C program in front of everything (private runtime directory, clean-up, signals);
- ``floor.py``: which glibc symbol versions and which kernel the bundled ELF files need, and so which releases
  the file runs on;
- ``layers.py``: reading a built file back apart (launcher, trailer, staticx archive, PyInstaller archive), for
  the floor report and the tests;
- ``common.py``: paths and messages shared by the above.

docs/BINARY.md says what each stage adds and why.
"""
