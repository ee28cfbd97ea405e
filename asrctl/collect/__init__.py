"""``asrctl logs collect``: one archive that Microsoft support and the operator can work from, and that is safe to send.

What goes in (``sources()``, in this order, so that when the archive cap is reached the vendor's rotated agent logs
are what gives way): the ``detect``, ``status`` and ``doctor`` results run in-process (each the JSON document
``--json`` would print) and host facts; asrctl's log, journal and history; the vendor's installer and uninstaller
logs (rotated ones too), its errors and summary JSON, its setup telemetry, the agent's version file and
configuration, the agent's logs newest first.

How (each point is a defect it replaces, issue 13 item 6 and issue 14 item 5):

- every file is opened through ``system/rootfs``: resolved inside ``--root`` and under the directory it was listed
  in (``ua_install.log -> /etc/passwd`` is skipped as a link out, also when the root is ``/``), regular files
  only (a FIFO named like a log is skipped, never opened blocking), and only its **tail** is read: at most
  ``--max-file-size`` bytes, so a 3 GB log costs that much memory, not 3 GB. A cut tail starts at the next line,
  so no secret is cut in half. Rotated ``.gz``/``.xz``/``.bz2`` logs are decompressed as a stream, keeping the
  tail, and stored as text;
- secrets are masked in every member: passphrases asrctl knows (and the ones the vendor and a dead run left
  on the machine, read only to be masked, never archived) and the shapes of credentials it never saw
  (``system/redact.scrub_text``); JSON documents field by field (``scrub_json``), so they stay valid;
- the whole archive is capped at ``--max-size`` bytes of content; what did not fit is listed;
- ``manifest.json`` says what was included (original size, kept bytes, whether cut, how many values were
  masked — never the values), what was skipped and why, and which expected files were absent;
- the archive is written 0600 to a temporary file beside the target and linked into place: never half an
  archive, never over an existing file.

The package, by what each part answers:

- ``gather``: what goes in — the files of the target system, in order (``sources()``), the passphrase files read
  only to be masked, and the ``detect``/``status``/``doctor``/host reports run in-process;
- ``masking``: how one file's bytes become a member — the tail, a rotated log decompressed as a stream, secrets
  masked in line-aligned pieces (JSON by field), the result fitted to the room left;
- ``archive``: the archive itself — the caps, the manifest, the file written 0600 and linked into place, and the
  verb's summary for people.
"""

from __future__ import annotations

from asrctl.collect.archive import collect, default_target

__all__ = ["collect", "default_target"]
