"""Safe, streaming, verified unpacking of a bundle: ``extract(bundle, dest, expected_sha256=...)``.

The pipeline, one module each (docs/BUNDLES.md has the rules and the reasons):

- :mod:`.driver` — ``extract()``: reads the bundle once; a thread hashes it while it is inflated, parsed and
  written; renames the private staging directory to ``dest`` only when everything, the digest included, held;
- :mod:`.inflate` — the decompressors, with bounded output per call (no disk, no threads);
- :mod:`.tarstream` — the tar parser: bytes in, checked operations or a refusal out (no disk, no threads: the
  security core, tested by feeding it bytes);
- :mod:`.writer` — carries the operations out through directory descriptors on writer threads, never following a
  symlink;
- :mod:`.fsops` — opening the bundle, the staging directory, the no-replace rename, removal;
- :mod:`.limits` — the ceilings and the two refusals (unsafe ``ASRCTL-E032``, corrupted ``ASRCTL-E033``).
"""

from asrctl.bundles.extract.driver import Extracted, extract
from asrctl.bundles.extract.inflate import INFLATE_SIZE, inflate_backend
from asrctl.bundles.extract.limits import Limits
from asrctl.bundles.extract.tarstream import TRAILING_LIMIT

__all__ = ["INFLATE_SIZE", "TRAILING_LIMIT", "Extracted", "Limits", "extract", "inflate_backend"]
